/* libFuzzer target: an ID token as an OpenID provider's token endpoint returns it (auth/oidc.h:
 * oidc_id_token_parse, oidc_claims_check, oidc_verify_sig), with the tests' provider's real
 * JWKS and constants (fuzz/oidc_seed.h); the claims are checked at the token's own iat so the
 * seeds reach every check. Beyond not crashing: a parsed token has an alg we accept and no
 * crit; claims that pass name our issuer, client, nonce and a subject; and a signature that
 * verifies was made by the provider over exactly the header and claims it signed. */
#include "auth/oidc.h"
#include "oidc_seed.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *g_jwks;

static void fuzz_fail(const char *why)
{
    fprintf(stderr, "oidc_id_token: %s\n", why);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_jwks && !(g_jwks = oidc_document(OIDC_SEED_JWKS, strlen(OIDC_SEED_JWKS))))
        fuzz_fail("the seed JWKS does not read");
    if (size > 65536)
        return 0;
    char *tok = malloc(size + 1);
    if (!tok)
        return 0;
    memcpy(tok, data, size);
    tok[size] = '\0';
    struct oidc_id_token t;
    char *err = NULL;
    if (oidc_id_token_parse(tok, &t, &err) != 0) {
        if (!err || t.header || t.claims)
            fuzz_fail("a refusal without a message, or with parts left");
        free(err);
        free(tok);
        return 0;
    }
    static const char *const algs[] = { "RS256", "RS384", "RS512", "PS256", "ES256" };
    size_t a = 0;
    while (a < sizeof algs / sizeof *algs && strcmp(algs[a], t.alg))
        a++;
    if (a == sizeof algs / sizeof *algs || json_object_get(t.header, "crit") || !json_is_object(t.claims))
        fuzz_fail("parsed a token we do not accept");
    json_t *iat = json_object_get(t.claims, "iat");
    double now = json_is_number(iat) ? json_number_value(iat) + 1 : 0;
    if (oidc_claims_check(t.claims, OIDC_SEED_ISSUER, OIDC_SEED_CLIENT, OIDC_SEED_NONCE, now, &err) == 0) {
        const char *iss = json_string_value(json_object_get(t.claims, "iss"));
        const char *nonce = json_string_value(json_object_get(t.claims, "nonce"));
        const char *sub = json_string_value(json_object_get(t.claims, "sub"));
        if (!iss || strcmp(iss, OIDC_SEED_ISSUER) || !nonce || strcmp(nonce, OIDC_SEED_NONCE) || !sub || !*sub)
            fuzz_fail("claims accepted with another issuer, nonce or no subject");
    } else {
        free(err);
    }
    json_t *jwk = oidc_find_jwk(g_jwks, t.kid, t.alg);
    EVP_PKEY *key = jwk ? oidc_jwk_key(jwk) : NULL;
    if (key && oidc_verify_sig(tok, t.alg, key) == 0) {
        const char *signed_end = strrchr(OIDC_SEED_ID_TOKEN, '.');
        size_t n = (size_t)(signed_end - OIDC_SEED_ID_TOKEN);
        if (strncmp(tok, OIDC_SEED_ID_TOKEN, n) || tok[n] != '.')
            fuzz_fail("a signature verified over bytes the provider did not sign");
    }
    EVP_PKEY_free(key);
    oidc_id_token_free(&t);
    free(tok);
    return 0;
}
