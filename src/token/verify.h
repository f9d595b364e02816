/* Whether a token of ours is accepted here, in one sequence for every place that takes one (a
 * request's, the handoff's, logout's, get-identity's): form and signature (jwt_decode, or the
 * verified-token cache), then the claims (token_check), then, for a session, its shape, then
 * revocations. The result is the cause (enum token_status): expired, revoked, another audience,
 * malformed… never a bare bool, so a caller can log why and answer as SPEC.md says. */
#ifndef LATCH_TOKEN_VERIFY_H
#define LATCH_TOKEN_VERIFY_H

#include "token/jwt.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct revocations;

/* What a token must be. */
struct token_want {
    const char *iss;                /* the auth domain's URL */
    const char *type;               /* "org" or "app" */
    const char *aud;                /* the auth domain (org) or the app's AUD */
    bool session;                   /* a person's session: email and a 32-character
                                     * identity_nonce (else TOKEN_BAD_CLAIMS) */
    const struct revocations *rev;  /* NULL: revocations are not checked */
    const char *seps;               /* sub-address separators for revocations by email */
    const char *app;                /* revocations of this app count too (NULL: none) */
};

/* The checks after the signature, on a token already decoded (or cached): TOKEN_OK, or why not. */
enum token_status token_accept(const struct token *t, time_t now, const struct token_want *want);

/* jwt_decode then token_accept: TOKEN_OK with *out filled (token_free it), or why not (*out
 * then needs no freeing). */
enum token_status token_verify(const struct keyset *ks, const char *tok, size_t len, time_t now,
                               const struct token_want *want, struct token *out);

#endif
