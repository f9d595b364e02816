/* Minting the tokens latch issues (SPEC.md §5): app tokens (`aud` = [the app's AUD]) and org
 * tokens (the single sign-on session), for people and for service tokens. */
#ifndef LATCH_MINT_H
#define LATCH_MINT_H

#include "token/keys.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct mint_claims {
    const char *type;                 /* "app" or "org" */
    const char *aud;                  /* the app's AUD ("app"); NULL for "org" */
    const char *email;                /* people */
    const char *sub;                  /* people: stable user id; "" for service tokens */
    const char *idp;
    const char *common_name;          /* service tokens: the client id */
    const char *country;
    const char *identity_nonce;       /* NULL: a fresh random one */
    const char *const *groups; size_t ngroups;
    const char *const *amr; size_t namr;
    bool omit_groups;                 /* a large identity: kept server-side under the nonce */
    int64_t ttl_s;
};

/* Signs the claims with the newest key; iat = nbf = now, exp = now + ttl. NULL on failure. */
char *token_mint(const struct keyset *ks, const char *iss, const struct mint_claims *m, time_t now);

/* The stable `sub` of a person: a UUID derived from the email under the gateway's secret, so
 * the same person has the same sub whichever identity provider they used. out: 37 bytes. */
void token_person_sub(const unsigned char secret[32], const char *email, char out[37]);

#endif
