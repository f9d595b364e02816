/* Unit tests of what an OpenID provider sends us (src/auth/oidc_provider.c, auth/oidc.h), with
 * the real documents of the tests' provider (oidc-provider) and their hostile variants: the
 * seeds of the OIDC fuzz targets (fuzz/corpus/oidc_*, made by fuzz/seeds/oidc.py; run from the
 * repository's root, as `make unit` does). Each refusal is one a login relies on. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/oidc.h"
#include "token/jwt.h"

#include "../../../fuzz/oidc_seed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *seed(const char *target, const char *name, size_t *n)
{
    char path[256];
    snprintf(path, sizeof path, "fuzz/corpus/%s/%s", target, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot read %s (run from the repository's root)", path);
    char *p = malloc(1 << 16);
    *n = fread(p, 1, (1 << 16) - 1, f);
    p[*n] = 0;
    fclose(f);
    return p;
}

static json_t *doc(const char *target, const char *name)
{
    size_t n;
    char *p = seed(target, name, &n);
    json_t *j = oidc_document(p, n);
    free(p);
    return j;
}

static int discovery(const char *name, const char *issuer)
{
    json_t *d = doc("oidc_discovery", name);
    if (!d)
        return -2;
    char *err = NULL;
    int rc = oidc_discovery_check(d, issuer, OIDC_SEED_URL, &err);
    if (rc != 0) {
        assert_non_null(err);
        assert_non_null(strstr(err, OIDC_SEED_URL)); /* the log names the document */
        free(err);
    } else {
        assert_null(err);
    }
    json_decref(d);
    return rc;
}

static void discovery_documents(void **state)
{
    (void)state;
    assert_int_equal(discovery("provider", OIDC_SEED_ISSUER), 0);
    assert_int_equal(discovery("https-endpoints", OIDC_SEED_ISSUER), 0); /* https is fine for http */
    assert_int_equal(discovery("other-issuer", OIDC_SEED_ISSUER), -1);    /* a prefix is not it */
    assert_int_equal(discovery("no-issuer", OIDC_SEED_ISSUER), -1);
    assert_int_equal(discovery("issuer-number", OIDC_SEED_ISSUER), -1);
    assert_int_equal(discovery("no-jwks-uri", OIDC_SEED_ISSUER), -1);
    assert_int_equal(discovery("ftp-token-endpoint", OIDC_SEED_ISSUER), -1);
    assert_int_equal(discovery("provider", OIDC_SEED_ISSUER "/"), -1); /* identical, not similar */
    assert_int_equal(discovery("array", OIDC_SEED_ISSUER), -2);        /* not an object */
    assert_null(oidc_document("{\"a\":1", 6));
    assert_null(oidc_document("\"s\"", 3));
    json_t *d = doc("oidc_discovery", "provider"); /* an https issuer wants https endpoints */
    json_object_set_new(d, "issuer", json_string("https://idp.example.test"));
    char *err = NULL;
    assert_int_equal(oidc_discovery_check(d, "https://idp.example.test", OIDC_SEED_URL, &err), -1);
    assert_non_null(strstr(err, "https://"));
    free(err);
    json_decref(d);
}

/* The key the seed JWKS `name` yields for the provider's token header (kid, RS256). */
static EVP_PKEY *key_for(const char *name, const char *kid, const char *alg)
{
    json_t *jwks = doc("oidc_jwks", name);
    assert_non_null(jwks);
    json_t *k = oidc_find_jwk(jwks, kid, alg);
    EVP_PKEY *pk = k ? oidc_jwk_key(k) : NULL;
    json_decref(jwks);
    return pk;
}

static void jwks_keys(void **state)
{
    (void)state;
    const char *kid = "keystore-CHANGE-ME";
    EVP_PKEY *pk = key_for("provider", kid, "RS256");
    assert_non_null(pk);
    assert_int_equal(oidc_verify_sig(OIDC_SEED_ID_TOKEN, "RS256", pk), 0);
    assert_int_equal(oidc_verify_sig(OIDC_SEED_ID_TOKEN, "RS512", pk), -1); /* alg is not free */
    assert_int_equal(oidc_verify_sig(OIDC_SEED_ID_TOKEN, "PS256", pk), -1);
    assert_int_equal(oidc_verify_sig(OIDC_SEED_ID_TOKEN, "ES256", pk), -1); /* RSA key, EC alg */
    EVP_PKEY_free(pk);
    pk = key_for("provider", NULL, "RS256"); /* a token naming no kid: any signing key */
    assert_non_null(pk);
    EVP_PKEY_free(pk);
    assert_null(key_for("provider", "another-kid", "RS256"));
    assert_null(key_for("provider", kid, "PS256"));  /* the key states RS256 */
    assert_null(key_for("use-enc", kid, "RS256"));   /* an encryption key never verifies */
    assert_null(key_for("alg-rs512", kid, "RS256"));
    assert_null(key_for("no-kid", kid, "RS256"));
    assert_null(key_for("kty-oct", kid, "RS256"));   /* no shared secrets */
    assert_null(key_for("n-not-b64url", kid, "RS256"));
    pk = key_for("short-n", kid, "RS256"); /* a key too short to trust */
    if (pk)
        assert_int_equal(oidc_verify_sig(OIDC_SEED_ID_TOKEN, "RS256", pk), -1);
    EVP_PKEY_free(pk);
    pk = key_for("ec-p256", "ec1", "ES256");
    assert_non_null(pk);
    assert_int_equal(oidc_verify_sig(OIDC_SEED_ID_TOKEN, "ES256", pk), -1);
    assert_int_equal(oidc_verify_sig(OIDC_SEED_ID_TOKEN, "RS256", pk), -1); /* EC key, RSA alg */
    EVP_PKEY_free(pk);
    assert_null(key_for("ec-p384", "ec2", "ES256"));
    pk = key_for("two-keys", kid, "RS256"); /* picked by kid among several */
    assert_non_null(pk);
    assert_int_equal(oidc_verify_sig(OIDC_SEED_ID_TOKEN, "RS256", pk), 0);
    EVP_PKEY_free(pk);
}

static int id_token(const char *name, double now_from_iat, char **why)
{
    size_t n;
    char *tok = seed("oidc_id_token", name, &n);
    struct oidc_id_token t;
    char *err = NULL;
    int rc = -1;
    if (oidc_id_token_parse(tok, &t, &err) != 0) {
        assert_null(t.header);
        assert_null(t.claims);
        *why = err;
        free(tok);
        return -1;
    }
    json_t *jwks = oidc_document(OIDC_SEED_JWKS, strlen(OIDC_SEED_JWKS));
    json_t *jwk = oidc_find_jwk(jwks, t.kid, t.alg);
    EVP_PKEY *pk = jwk ? oidc_jwk_key(jwk) : NULL;
    double now = json_number_value(json_object_get(t.claims, "iat")) + now_from_iat;
    if (!pk || oidc_verify_sig(tok, t.alg, pk) != 0)
        err = strdup("signature");
    else
        rc = oidc_claims_check(t.claims, OIDC_SEED_ISSUER, OIDC_SEED_CLIENT, OIDC_SEED_NONCE, now, &err);
    *why = err;
    EVP_PKEY_free(pk);
    json_decref(jwks);
    oidc_id_token_free(&t);
    free(tok);
    return rc;
}

#define ACCEPT(name, at)                                                                     \
    do {                                                                                     \
        char *why = NULL;                                                                    \
        if (id_token(name, at, &why) != 0)                                                   \
            fail_msg("%s refused: %s", name, why ? why : "?");                               \
    } while (0)
#define REFUSE(name, at, says)                                                               \
    do {                                                                                     \
        char *why = NULL;                                                                    \
        if (id_token(name, at, &why) == 0)                                                   \
            fail_msg("%s accepted", name);                                                   \
        if (!why || !strstr(why, says))                                                      \
            fail_msg("%s refused saying '%s', not '%s'", name, why ? why : "", says);        \
        free(why);                                                                           \
    } while (0)

static void id_tokens(void **state)
{
    (void)state;
    ACCEPT("provider", 1);
    ACCEPT("provider", 600 + JWT_LEEWAY_S);         /* exp (iat + 600) within the leeway */
    REFUSE("provider", 600 + JWT_LEEWAY_S + 1, "dates");
    ACCEPT("provider", -JWT_LEEWAY_S);              /* a provider's clock a little ahead */
    REFUSE("provider", -JWT_LEEWAY_S - 1, "dates"); /* issued in the future */
    REFUSE("two-dots", 1, "malformed");
    REFUSE("four-parts", 1, "malformed");
    REFUSE("duplicate-claim", 1, "malformed");
    REFUSE("header-alg-none", 1, "algorithm");
    REFUSE("header-alg-hs256", 1, "algorithm");
    REFUSE("header-crit", 1, "critical");
    REFUSE("header-alg-es256", 1, "signature");     /* the RSA key's signature, called ES256 */
    REFUSE("bad-signature", 1, "signature");
    REFUSE("claims-other-aud", 1, "signature");     /* edited claims: the signature fails first */
    char *tok = NULL;
    size_t n;
    struct oidc_id_token t;
    char *err = NULL;
    /* the claim checks on their own, as after a valid signature */
    static const struct {
        const char *name;
        int rc;
    } claims[] = {
        { "claims-aud-array-azp", 0 },   { "claims-aud-array-no-azp", -1 }, { "claims-other-aud", -1 },
        { "claims-no-sub", -1 },         { "claims-wrong-nonce", -1 },      { "claims-exp-string", -1 },
        { "claims-nbf-future", -1 },     { "claims-other-iss", -1 },        { "provider", 0 },
    };
    for (size_t i = 0; i < sizeof claims / sizeof *claims; i++) {
        tok = seed("oidc_id_token", claims[i].name, &n);
        assert_int_equal(oidc_id_token_parse(tok, &t, &err), 0);
        double now = json_number_value(json_object_get(t.claims, "iat")) + 1;
        int rc = oidc_claims_check(t.claims, OIDC_SEED_ISSUER, OIDC_SEED_CLIENT, OIDC_SEED_NONCE, now, &err);
        if (rc != claims[i].rc)
            fail_msg("%s: claims check %d, wanted %d", claims[i].name, rc, claims[i].rc);
        if (rc) {
            assert_non_null(err);
            free(err);
            err = NULL;
        }
        if (!strcmp(claims[i].name, "provider")) { /* no nonce, or another client: refused */
            assert_int_equal(oidc_claims_check(t.claims, OIDC_SEED_ISSUER, OIDC_SEED_CLIENT, NULL, now, &err), -1);
            free(err);
            assert_int_equal(oidc_claims_check(t.claims, OIDC_SEED_ISSUER, "latch2", OIDC_SEED_NONCE, now, &err), -1);
            free(err);
            assert_int_equal(oidc_claims_check(t.claims, OIDC_SEED_ISSUER, OIDC_SEED_CLIENT, "n-0S6_WzA2M", now, &err), -1);
            free(err);
            err = NULL;
        }
        oidc_id_token_free(&t);
        free(tok);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(discovery_documents),
        cmocka_unit_test(jwks_keys),
        cmocka_unit_test(id_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
