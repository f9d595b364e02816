/* libFuzzer target: an OpenID provider's discovery document (auth/oidc.h: oidc_document,
 * oidc_discovery_check), the bytes the provider's /.well-known/openid-configuration answers.
 * Checked for an http:// issuer (the tests' provider, fuzz/oidc_seed.h) and an https:// one.
 * Beyond not crashing: a document the check accepts names exactly the issuer, and the three
 * endpoints it hands our client secret, codes and keys to are https:// (http:// only for an
 * http:// issuer); a refusal always says why. */
#include "auth/oidc.h"
#include "oidc_seed.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fuzz_fail(const char *why, const char *issuer)
{
    fprintf(stderr, "oidc_discovery (issuer %s): %s\n", issuer, why);
    abort();
}

static void fuzz_one(json_t *d, const char *issuer)
{
    char *err = NULL;
    int rc = oidc_discovery_check(d, issuer, OIDC_SEED_URL, &err);
    if (rc != 0) {
        if (rc != -1 || !err || !strstr(err, OIDC_SEED_URL))
            fuzz_fail("a refusal without a message naming the document", issuer);
        free(err);
        return;
    }
    if (err)
        fuzz_fail("an error message on success", issuer);
    const char *iss = json_string_value(json_object_get(d, "issuer"));
    if (!iss || strcmp(iss, issuer))
        fuzz_fail("accepted another issuer", issuer);
    bool https = !strncmp(issuer, "https://", 8);
    static const char *const eps[] = { "authorization_endpoint", "token_endpoint", "jwks_uri" };
    for (size_t i = 0; i < sizeof eps / sizeof *eps; i++) {
        const char *ep = json_string_value(json_object_get(d, eps[i]));
        if (!ep || (strncmp(ep, "https://", 8) && (https || strncmp(ep, "http://", 7))))
            fuzz_fail("accepted an endpoint of another scheme", issuer);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    json_t *d = oidc_document((const char *)data, size);
    if (!d)
        return 0;
    if (!json_is_object(d))
        fuzz_fail("a document that is not an object", "-");
    fuzz_one(d, OIDC_SEED_ISSUER);
    fuzz_one(d, "https://idp.example.test");
    json_decref(d);
    return 0;
}
