/* What an OpenID provider sends us, checked (oidc.h): pure functions of the bytes received,
 * no network, no store. */
#include "auth/oidc.h"

#include "core/base64url.h"
#include "token/jwt.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *oidc_document(const char *p, size_t n)
{
    json_error_t je;
    json_t *j = json_loadb(p, n, 0, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

int oidc_discovery_check(json_t *d, const char *issuer, const char *url, char **err)
{
    /* OpenID Connect Discovery §4.3: the issuer in the document is identical to the one we
     * configured (not a prefix: ".../tenant1" is not ".../tenant1-evil"); the endpoints it
     * names get the client secret, the code and the keys: https when the issuer is */
    const char *iss = json_string_value(json_object_get(d, "issuer"));
    static const char *const eps[] = { "authorization_endpoint", "token_endpoint", "jwks_uri" };
    bool https = !strncmp(issuer, "https://", 8);
    const char *why = !iss ? "names no issuer" : strcmp(iss, issuer) ? "names another issuer" : NULL;
    for (size_t i = 0; !why && i < sizeof eps / sizeof *eps; i++) {
        const char *ep = json_string_value(json_object_get(d, eps[i]));
        if (!ep || (strncmp(ep, "https://", 8) && (https || strncmp(ep, "http://", 7))))
            why = https ? "lacks an endpoint, or names one that is not https://"
                        : "lacks an endpoint, or names one that is not http(s)://";
    }
    if (why) {
        if (asprintf(err, "%s: the discovery document %s (issuer '%s'; it must be identical to "
                          "the configured one)", url, why, iss ? iss : "") < 0)
            *err = NULL;
        return -1;
    }
    return 0;
}

/* --- ID token verification ---------------------------------------------------------------- */

static BIGNUM *oidc__bn(json_t *jwk, const char *name)
{
    const char *s = json_string_value(json_object_get(jwk, name));
    unsigned char buf[1024];
    size_t len;
    if (!s || b64url_decode(s, strlen(s), buf, sizeof buf, &len) != 0)
        return NULL;
    return BN_bin2bn(buf, (int)len, NULL);
}

EVP_PKEY *oidc_jwk_key(json_t *jwk)
{
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    BIGNUM *a = NULL, *b = NULL;
    unsigned char pub[65]; /* the builder keeps a pointer to it until OSSL_PARAM_BLD_to_param */
    if (!bld || !kty)
        goto out;
    if (!strcmp(kty, "RSA")) {
        a = oidc__bn(jwk, "n");
        b = oidc__bn(jwk, "e");
        if (!a || !b || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, a) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, b))
            goto out;
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    } else if (!strcmp(kty, "EC")) {
        const char *crv = json_string_value(json_object_get(jwk, "crv"));
        const char *x = json_string_value(json_object_get(jwk, "x"));
        const char *y = json_string_value(json_object_get(jwk, "y"));
        unsigned char tmp[64];
        size_t xl, yl;
        if (!crv || strcmp(crv, "P-256") || !x || !y || b64url_decode(x, strlen(x), tmp, 32, &xl) || xl != 32)
            goto out;
        pub[0] = 4;
        memcpy(pub + 1, tmp, 32);
        if (b64url_decode(y, strlen(y), tmp, 32, &yl) || yl != 32)
            goto out;
        memcpy(pub + 33, tmp, 32);
        if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
            !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub))
            goto out;
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    }
    params = OSSL_PARAM_BLD_to_param(bld);
    if (!ctx || !params || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = NULL;
out:
    BN_free(a);
    BN_free(b);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

json_t *oidc_find_jwk(json_t *jwks, const char *kid, const char *alg)
{
    json_t *keys = json_object_get(jwks, "keys");
    for (size_t i = 0; i < json_array_size(keys); i++) {
        json_t *k = json_array_get(keys, i);
        const char *use = json_string_value(json_object_get(k, "use"));
        const char *kk = json_string_value(json_object_get(k, "kid"));
        const char *ka = json_string_value(json_object_get(k, "alg"));
        if ((!use || !strcmp(use, "sig")) && (!kid || (kk && !strcmp(kk, kid))) &&
            (!ka || !strcmp(ka, alg)))
            return k;
    }
    return NULL;
}

int oidc_verify_sig(const char *tok, const char *alg, EVP_PKEY *key)
{
    const char *d2 = strrchr(tok, '.');
    unsigned char sig[1024], der[80];
    size_t siglen;
    if (!d2 || b64url_decode(d2 + 1, strlen(d2 + 1), sig, sizeof sig, &siglen) != 0)
        return -1;
    const EVP_MD *md = !strcmp(alg, "RS384") ? EVP_sha384() : !strcmp(alg, "RS512") ? EVP_sha512() : EVP_sha256();
    bool ec = !strcmp(alg, "ES256"), pss = !strcmp(alg, "PS256");
    if (ec != (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC))
        return -1;
    if (!ec && EVP_PKEY_get_bits(key) < 2048) /* RFC 7518 §3.3: 2048 bits or more */
        return -1;
    if (ec) { /* JWS carries r||s; OpenSSL wants DER (RFC 7518 §3.4) */
        if (siglen != 64)
            return -1;
        ECDSA_SIG *es = ECDSA_SIG_new();
        ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL));
        unsigned char *p = der;
        int dl = i2d_ECDSA_SIG(es, &p);
        ECDSA_SIG_free(es);
        if (dl <= 0)
            return -1;
        memcpy(sig, der, (size_t)dl);
        siglen = (size_t)dl;
    }
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = mctx && EVP_DigestVerifyInit(mctx, &pctx, md, NULL, key) == 1;
    if (ok && pss)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
    ok = ok && EVP_DigestVerify(mctx, sig, siglen, (const unsigned char *)tok, (size_t)(d2 - tok)) == 1;
    EVP_MD_CTX_free(mctx);
    return ok ? 0 : -1;
}

/* One part of a JWS, decoded as a JSON object (duplicate names refused). Sized by the part,
 * which the response holding it bounds (OIDC_MAX_DOC): an ID token with hundreds of groups is
 * tens of KiB. */
static json_t *oidc__part(const char *p, size_t n)
{
    unsigned char *buf = malloc(n / 4 * 3 + 3);
    size_t len;
    json_t *j = NULL;
    json_error_t je;
    if (buf && b64url_decode(p, n, buf, n / 4 * 3 + 3, &len) == 0)
        j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &je);
    free(buf);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Whether the ID token's audience is us (OpenID Connect Core §3.1.3.7 steps 3-5): our
 * client_id, alone or among several; with several, `azp` must name us too. */
static bool oidc__audience_ok(json_t *claims, const char *client_id)
{
    json_t *aud = json_object_get(claims, "aud");
    const char *azp = json_string_value(json_object_get(claims, "azp"));
    bool ours = json_is_string(aud) && !strcmp(json_string_value(aud), client_id);
    for (size_t i = 0; json_is_array(aud) && i < json_array_size(aud); i++) {
        const char *a = json_string_value(json_array_get(aud, i));
        if (!a)
            return false;
        ours |= !strcmp(a, client_id);
    }
    if (json_is_array(aud) && json_array_size(aud) > 1 && !azp)
        return false;
    return ours && (!azp || !strcmp(azp, client_id));
}


int oidc_id_token_parse(const char *tok, struct oidc_id_token *t, char **err)
{
    const char *d1 = strchr(tok, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    *t = (struct oidc_id_token){ NULL, NULL, NULL, NULL };
    if (!d1 || !d2 || strchr(d2 + 1, '.') || !(t->header = oidc__part(tok, (size_t)(d1 - tok))) ||
        !(t->claims = oidc__part(d1 + 1, (size_t)(d2 - d1 - 1)))) {
        *err = strdup("the ID token is malformed");
        goto fail;
    }
    const char *alg = json_string_value(json_object_get(t->header, "alg"));
    if (!alg || (strcmp(alg, "RS256") && strcmp(alg, "RS384") && strcmp(alg, "RS512") &&
                 strcmp(alg, "PS256") && strcmp(alg, "ES256")) || json_object_get(t->header, "crit")) {
        *err = strdup("the ID token uses an algorithm (or a critical extension) we do not accept");
        goto fail;
    }
    t->alg = alg;
    t->kid = json_string_value(json_object_get(t->header, "kid"));
    return 0;
fail:
    oidc_id_token_free(t);
    return -1;
}

void oidc_id_token_free(struct oidc_id_token *t)
{
    json_decref(t->header);
    json_decref(t->claims);
    *t = (struct oidc_id_token){ NULL, NULL, NULL, NULL };
}

int oidc_claims_check(json_t *c, const char *issuer, const char *client_id, const char *nonce,
                      double now, char **err)
{
    const char *iss = json_string_value(json_object_get(c, "iss"));
    json_t *exp = json_object_get(c, "exp"), *iat = json_object_get(c, "iat"), *nbf = json_object_get(c, "nbf");
    const char *got_nonce = json_string_value(json_object_get(c, "nonce"));
    const char *sub = json_string_value(json_object_get(c, "sub"));
    if (!iss || strcmp(iss, issuer) || !oidc__audience_ok(c, client_id) || !sub || !*sub ||
        !json_is_number(exp) || json_number_value(exp) + JWT_LEEWAY_S < now ||
        !json_is_number(iat) || json_number_value(iat) > now + JWT_LEEWAY_S ||
        (nbf && (!json_is_number(nbf) || json_number_value(nbf) > now + JWT_LEEWAY_S)) ||
        !nonce || !got_nonce || strlen(got_nonce) != strlen(nonce) ||
        CRYPTO_memcmp(got_nonce, nonce, strlen(nonce)) != 0) {
        *err = strdup("the ID token's issuer, audience, subject, dates or nonce are wrong");
        return -1;
    }
    return 0;
}
