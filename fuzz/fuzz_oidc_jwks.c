/* libFuzzer target: an OpenID provider's JWKS (auth/oidc.h: oidc_document, oidc_find_jwk,
 * oidc_jwk_key, oidc_verify_sig), the bytes its jwks_uri answers. Beyond not crashing: the key
 * found for a kid and alg is a signing key with that kid whose own alg, if any, is that alg;
 * and no key made from the input verifies the tests' provider's real ID token (fuzz/oidc_seed.h)
 * unless it is that provider's key. */
#include "auth/oidc.h"
#include "oidc_seed.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static EVP_PKEY *g_provider_key;

static void fuzz_fail(const char *why)
{
    fprintf(stderr, "oidc_jwks: %s\n", why);
    abort();
}

static void fuzz_init(void)
{
    json_t *jwks = oidc_document(OIDC_SEED_JWKS, strlen(OIDC_SEED_JWKS));
    g_provider_key = oidc_jwk_key(json_array_get(json_object_get(jwks, "keys"), 0));
    if (!g_provider_key || oidc_verify_sig(OIDC_SEED_ID_TOKEN, "RS256", g_provider_key) != 0)
        fuzz_fail("the seed token does not verify with the seed key");
    json_decref(jwks);
}

static void fuzz_find(json_t *jwks, const char *kid, const char *alg)
{
    json_t *k = oidc_find_jwk(jwks, kid, alg);
    if (!k)
        return;
    const char *use = json_string_value(json_object_get(k, "use"));
    const char *kk = json_string_value(json_object_get(k, "kid"));
    const char *ka = json_string_value(json_object_get(k, "alg"));
    if ((use && strcmp(use, "sig")) || (kid && (!kk || strcmp(kk, kid))) || (ka && strcmp(ka, alg)))
        fuzz_fail("found a key that does not match");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready++)
        fuzz_init();
    if (size > 65536)
        return 0;
    json_t *jwks = oidc_document((const char *)data, size);
    if (!jwks)
        return 0;
    static const char *const algs[] = { "RS256", "RS384", "RS512", "PS256", "ES256" };
    json_t *keys = json_object_get(jwks, "keys");
    for (size_t i = 0; i < json_array_size(keys) && i < 16; i++) {
        json_t *k = json_array_get(keys, i);
        const char *kid = json_string_value(json_object_get(k, "kid"));
        for (size_t a = 0; a < sizeof algs / sizeof *algs; a++)
            fuzz_find(jwks, kid, algs[a]);
        EVP_PKEY *pk = oidc_jwk_key(k);
        if (!pk)
            continue;
        for (size_t a = 0; a < sizeof algs / sizeof *algs; a++)
            if (oidc_verify_sig(OIDC_SEED_ID_TOKEN, algs[a], pk) == 0 &&
                (strcmp(algs[a], "RS256") || EVP_PKEY_eq(pk, g_provider_key) != 1))
                fuzz_fail("a key that is not the provider's verified its token");
        EVP_PKEY_free(pk);
    }
    fuzz_find(jwks, NULL, "RS256");
    json_decref(jwks);
    return 0;
}
