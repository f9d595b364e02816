/* JSON Web Tokens as latch issues and accepts them (SPEC.md §3.4, §5; RFC 7515, RFC 7519):
 * RS256 only, signed with our own keys, verified strictly. Verification is split in two so the
 * gateway can cache the expensive half: jwt_decode checks the form and the signature once;
 * token_check runs the cheap claim checks (issuer, audience, type, dates) on every request. */
#ifndef LATCH_JWT_H
#define LATCH_JWT_H

#include "token/keys.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define JWT_MAX_LEN   8192  /* refused before any decoding or crypto */
#define JWT_LEEWAY_S  60

enum token_status {
    TOKEN_OK,
    TOKEN_TOO_LARGE,
    TOKEN_MALFORMED,      /* not three base64url parts of JSON objects; duplicate names */
    TOKEN_BAD_HEADER,     /* alg other than RS256 (none, HS256…), typ not JWT, any crit */
    TOKEN_UNKNOWN_KEY,    /* kid missing, unknown, or past its overlap */
    TOKEN_BAD_SIGNATURE,
    TOKEN_BAD_CLAIMS,     /* a claim of the wrong JSON type, dates that are not numbers */
    TOKEN_BAD_ISSUER,
    TOKEN_BAD_AUDIENCE,
    TOKEN_BAD_TYPE,
    TOKEN_EXPIRED,
    TOKEN_NOT_YET_VALID,
    TOKEN_REVOKED,
    TOKEN_UNPAIRED,    /* a cookie on https without this origin's pair (http/cookie.h) */
};

const char *token_status_name(enum token_status s);

/* A token whose form and signature were verified. Strings point into `payload` (its decoded
 * JSON, unescaped in place: token/claims.h), the arrays into `strs`; both owned. */
struct token {
    char *payload;
    const char **strs;
    char kid[33];
    const char *email, *sub, *type, *idp, *common_name, *identity_nonce, *country, *iss;
    const char **aud; size_t naud;
    const char **groups; size_t ngroups;
    bool has_groups;           /* a groups claim, even empty (else a large identity, kept
                                * server-side under identity_nonce: SPEC.md §5) */
    const char **amr; size_t namr;
    int64_t iat, nbf, exp;
};

/* Form, header and signature (and claim types). Never trusts the token to name a key: `jwk`,
 * `jku`, `x5u`, `x5c` are ignored; the key is ours, chosen by `kid`. */
enum token_status jwt_decode(const struct keyset *ks, const char *tok, size_t len, time_t now,
                             struct token *out);

/* Claims: iss equal, type equal, aud containing `aud`, nbf <= now <= exp with leeway. */
enum token_status token_check(const struct token *t, const char *iss, const char *type,
                              const char *aud, time_t now);

void token_free(struct token *t);

/* Signs claims with the newest key: "header.payload.signature" (malloc'd), NULL on failure. */
char *jwt_sign(const struct keyset *ks, json_t *claims);

/* One plain, well-formed address (core/email.h: email_check): "a@evil.com@corp.com", quoted
 * local parts, IP literals, trailing dots and non-ASCII addresses are not. */
bool token_email_ok(const char *email);

#endif
