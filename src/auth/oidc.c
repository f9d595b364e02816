/* OpenID Connect (OpenID Connect Core 1.0, RFC 6749, RFC 7636): discovery, the authorization
 * code flow with PKCE S256, state and nonce bound to the browser's flow, and the ID token
 * verified against the provider's JWKS (cached, fetched again once on an unknown kid). The
 * back-channel uses libcurl on a background job, never on a worker's loop. */
#include "auth/auth-int.h"

#include "core/base64url.h"
#include "core/log.h"
#include "http/form.h"
#include "metrics/metrics.h"
#include "store/store.h"
#include "token/jwt.h"

#include <curl/curl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OIDC_CACHE_TTL_S 3600
#define OIDC_MAX_DOC     (1024 * 1024)

/* --- the back-channel (blocking, job threads only) ---------------------------------------- */

struct oidc__buf {
    char *p;
    size_t n;
};

static size_t oidc__write(char *data, size_t size, size_t n, void *arg)
{
    struct oidc__buf *b = arg;
    size_t add = size * n;
    if (b->n + add > OIDC_MAX_DOC)
        return 0;
    char *np = realloc(b->p, b->n + add + 1);
    if (!np)
        return 0;
    memcpy(np + b->n, data, add);
    b->p = np;
    b->n += add;
    b->p[b->n] = '\0';
    return add;
}

/* GET (form == NULL) or POST a form; the JSON answer, or NULL with *err. */
static json_t *oidc__http(const char *url, const char *form, const char *user, const char *pass, char **err)
{
    CURL *curl = curl_easy_init();
    struct oidc__buf b = { NULL, 0 };
    json_t *j = NULL;
    long status = 0;
    if (!curl) {
        *err = strdup("cannot start an HTTP client");
        return NULL;
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, oidc__write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    if (form)
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, form);
    if (user) { /* client_secret_basic (RFC 6749 §2.3.1) */
        curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(curl, CURLOPT_USERNAME, user);
        curl_easy_setopt(curl, CURLOPT_PASSWORD, pass);
    }
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) {
        if (asprintf(err, "%s: %s", url, curl_easy_strerror(rc)) < 0)
            *err = NULL;
    } else if (status != 200) {
        if (asprintf(err, "%s answered %ld", url, status) < 0)
            *err = NULL;
    } else {
        json_error_t je;
        j = b.p ? json_loadb(b.p, b.n, 0, &je) : NULL;
        if (!json_is_object(j)) {
            json_decref(j);
            j = NULL;
            if (asprintf(err, "%s did not answer a JSON object", url) < 0)
                *err = NULL;
        }
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    free(b.p);
    return j;
}

/* A JSON document cached in the store (discovery, JWKS). */
static json_t *oidc__cached(struct store *st, const char *url, bool refresh, char **err)
{
    char key[1100], *val = NULL;
    size_t len;
    snprintf(key, sizeof key, "oidc:%s", url);
    if (!refresh && store_get(st, key, &val, &len) == STORE_OK) {
        json_error_t je;
        json_t *j = json_loadb(val, len, 0, &je);
        free(val);
        if (j)
            return j;
    }
    json_t *j = oidc__http(url, NULL, NULL, NULL, err);
    char *dump = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (dump)
        store_put(st, key, dump, strlen(dump), OIDC_CACHE_TTL_S);
    free(dump);
    return j;
}

static json_t *oidc__discovery(struct store *st, const struct idp *idp, char **err)
{
    char url[1024];
    size_t n = strlen(idp->issuer);
    snprintf(url, sizeof url, "%.*s/.well-known/openid-configuration",
             (int)(n && idp->issuer[n - 1] == '/' ? n - 1 : n), idp->issuer);
    json_t *d = oidc__cached(st, url, false, err);
    if (!d)
        return NULL;
    /* OpenID Connect Discovery §4.3: the issuer in the document is identical to the one we
     * configured (not a prefix: ".../tenant1" is not ".../tenant1-evil"); the endpoints it
     * names get the client secret, the code and the keys: https when the issuer is */
    const char *iss = json_string_value(json_object_get(d, "issuer"));
    static const char *const eps[] = { "authorization_endpoint", "token_endpoint", "jwks_uri" };
    bool https = !strncmp(idp->issuer, "https://", 8);
    const char *why = !iss ? "names no issuer" : strcmp(iss, idp->issuer) ? "names another issuer" : NULL;
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
        json_decref(d);
        return NULL;
    }
    return d;
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

/* A public key from an RSA or P-256 JWK (RFC 7518 §6). */
static EVP_PKEY *oidc__jwk_key(json_t *jwk)
{
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    BIGNUM *a = NULL, *b = NULL;
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
        unsigned char pub[65], tmp[64];
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

/* The signing key `kid` names (any signing key when the token names none) whose own `alg`,
 * if it states one, is the token's (RFC 7517 §4.2, §4.4). */
static json_t *oidc__find_jwk(json_t *jwks, const char *kid, const char *alg)
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

/* Checks the signature of a compact JWS with the provider's key for alg RS256/384/512, PS256
 * or ES256. 0 when valid. */
static int oidc__verify_sig(const char *tok, const char *alg, EVP_PKEY *key)
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

/* The provider's keys that can check a token signed by `kid` with `alg`: the cached JWKS, or
 * once fetched again when it holds no such key (the provider rotated) but at most once a
 * minute per provider, so that tokens naming unknown keys cannot make us hammer it. */
static json_t *oidc__jwk_for(struct store *st, const char *jwks_uri, const char *kid, const char *alg,
                             json_t **jwks, char **err)
{
    char key[1100];
    *jwks = oidc__cached(st, jwks_uri, false, err);
    json_t *jwk = *jwks ? oidc__find_jwk(*jwks, kid, alg) : NULL;
    snprintf(key, sizeof key, "oidc:refetch:%s", jwks_uri);
    if (!jwk && store_incr(st, key, 60) == 1) {
        json_decref(*jwks);
        free(*err);
        *err = NULL;
        *jwks = oidc__cached(st, jwks_uri, true, err);
        jwk = *jwks ? oidc__find_jwk(*jwks, kid, alg) : NULL;
    }
    return jwk;
}

/* OpenID Connect Core §3.1.3.7: the signature with the provider's key for one of the
 * asymmetric algorithms (never none, never HMAC, no critical extension), iss identical to the
 * provider's, aud (and azp), exp, iat, nbf, sub, and the flow's nonce. The claims, or NULL
 * with *err. */
static json_t *oidc__id_token(struct store *st, json_t *disc, const struct idp *idp, const char *tok,
                              const char *nonce, char **err)
{
    const char *d1 = strchr(tok, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    json_t *h = NULL, *c = NULL, *jwks = NULL;
    EVP_PKEY *key = NULL;
    if (!d1 || !d2 || strchr(d2 + 1, '.') || !(h = oidc__part(tok, (size_t)(d1 - tok))) ||
        !(c = oidc__part(d1 + 1, (size_t)(d2 - d1 - 1)))) {
        *err = strdup("the ID token is malformed");
        goto fail;
    }
    const char *alg = json_string_value(json_object_get(h, "alg"));
    const char *kid = json_string_value(json_object_get(h, "kid"));
    if (!alg || (strcmp(alg, "RS256") && strcmp(alg, "RS384") && strcmp(alg, "RS512") &&
                 strcmp(alg, "PS256") && strcmp(alg, "ES256")) || json_object_get(h, "crit")) {
        *err = strdup("the ID token uses an algorithm (or a critical extension) we do not accept");
        goto fail;
    }
    const char *jwks_uri = json_string_value(json_object_get(disc, "jwks_uri"));
    json_t *jwk = oidc__jwk_for(st, jwks_uri, kid, alg, &jwks, err);
    if (!jwk || !(key = oidc__jwk_key(jwk)) || oidc__verify_sig(tok, alg, key) != 0) {
        free(*err);
        *err = strdup("the ID token's signature does not verify with the provider's keys");
        goto fail;
    }
    const char *iss = json_string_value(json_object_get(c, "iss"));
    json_t *exp = json_object_get(c, "exp"), *iat = json_object_get(c, "iat"), *nbf = json_object_get(c, "nbf");
    const char *got_nonce = json_string_value(json_object_get(c, "nonce"));
    const char *sub = json_string_value(json_object_get(c, "sub"));
    double now = (double)time(NULL);
    if (!iss || strcmp(iss, idp->issuer) || !oidc__audience_ok(c, idp->client_id) || !sub || !*sub ||
        !json_is_number(exp) || json_number_value(exp) + JWT_LEEWAY_S < now ||
        !json_is_number(iat) || json_number_value(iat) > now + JWT_LEEWAY_S ||
        (nbf && (!json_is_number(nbf) || json_number_value(nbf) > now + JWT_LEEWAY_S)) ||
        !nonce || !got_nonce || strlen(got_nonce) != strlen(nonce) ||
        CRYPTO_memcmp(got_nonce, nonce, strlen(nonce)) != 0) {
        *err = strdup("the ID token's issuer, audience, subject, dates or nonce are wrong");
        goto fail;
    }
    json_decref(h);
    json_decref(jwks);
    EVP_PKEY_free(key);
    return c;
fail:
    json_decref(h);
    json_decref(c);
    json_decref(jwks);
    EVP_PKEY_free(key);
    return NULL;
}

/* --- the flow ---------------------------------------------------------------------------- */

/* The redirect URI of a provider (config: its callback_path), as registered with it. */
static char *oidc__redirect_uri(const struct endpoint_site *site, const struct idp *idp)
{
    char *s = NULL;
    if (!idp->callback_path || asprintf(&s, "%s%s", site->auth_url, idp->callback_path) < 0)
        return NULL;
    return s;
}

struct oidc_job {
    struct endpoint_job lj;
    const struct endpoint_site *site;
    struct store *store;
    const struct idp *idp;
    json_t *flow;
    char flow_id[33];
    char *code;        /* callback */
    bool iss_seen;     /* callback: the answer named its issuer (RFC 9207), and rightly */
    json_t *disc;      /* result */
    json_t *claims;    /* result: the verified ID token's claims */
    char *err;
    bool refused;      /* result: the answer did not check out (rather than: no provider) */
};

static void oidc__job_free(struct oidc_job *j)
{
    json_decref(j->flow);
    json_decref(j->disc);
    json_decref(j->claims);
    free(j->code);
    free(j->err);
    endpoint_site_release(j->site);
    free(j);
}

static void oidc__discover_run(struct job *job)
{
    struct oidc_job *j = (struct oidc_job *)job;
    j->disc = oidc__discovery(j->store, j->idp, &j->err);
}

static void oidc__provider_down(struct conn *c, struct endpoint_req *r, const struct idp *idp, const char *why)
{
    log_auth(r->site->auth_log, "login", NULL, idp->name, NULL, r->client_ip, false, why ? why : "provider error");
    metrics_login(r->metrics, idp->name, false);
    log_msg("error", "identity provider %s: %s", idp->name, why ? why : "error");
    auth__error_page(c, 502, "Sign-in is unavailable",
                     "The identity provider could not be reached. Sessions already open keep working; "
                     "try signing in again in a few minutes.");
}

static void oidc__discover_finish(struct endpoint_job *lj, struct conn *c)
{
    struct oidc_job *j = (struct oidc_job *)lj;
    if (!c)
        goto out;
    struct endpoint_req *r = endpoint_request(c);
    if (!j->disc) {
        oidc__provider_down(c, r, j->idp, j->err);
        goto resume;
    }
    unsigned char raw[32], md[32];
    char state[33], nonce[33], verifier[64], challenge[64];
    auth__random_id(state);
    auth__random_id(nonce);
    randombytes_buf(raw, sizeof raw);
    b64url_encode(raw, sizeof raw, verifier);
    SHA256((const unsigned char *)verifier, strlen(verifier), md);
    b64url_encode(md, sizeof md, challenge);
    /* the redirect URI goes with the flow: its answer must come back there, and the code is
     * redeemed with that very URI (RFC 6749 §4.1.3), whatever a reload changes meanwhile */
    char *redirect_uri = oidc__redirect_uri(r->site, j->idp);
    json_object_set_new(j->flow, "state", json_string(state));
    json_object_set_new(j->flow, "nonce", json_string(nonce));
    json_object_set_new(j->flow, "verifier", json_string(verifier));
    json_object_set_new(j->flow, "redirect_uri", json_string(redirect_uri ? redirect_uri : ""));
    json_object_set_new(j->flow, "callback", json_string(j->idp->callback_path ? j->idp->callback_path : ""));
    enum store_result sr = redirect_uri ? auth__flow_save(r, j->flow_id, j->flow) : STORE_NOMEM;
    if (sr != STORE_OK) {
        free(redirect_uri);
        endpoint_fail(c, endpoint_store_cause(sr));
        goto resume;
    }
    CURL *curl = curl_easy_init();
    struct strbuf sb;
    sb_init(&sb, 16384);
    const char *ep = json_string_value(json_object_get(j->disc, "authorization_endpoint"));
    sb_addf(&sb, "%s%sresponse_type=code&client_id=", ep, strchr(ep, '?') ? "&" : "?");
    char *e = curl ? curl_easy_escape(curl, j->idp->client_id, 0) : NULL;
    sb_adds(&sb, e ? e : "");
    curl_free(e);
    e = curl && redirect_uri ? curl_easy_escape(curl, redirect_uri, 0) : NULL;
    sb_addf(&sb, "&redirect_uri=%s&scope=", e ? e : "");
    curl_free(e);
    for (size_t i = 0; i < j->idp->nscopes; i++)
        sb_addf(&sb, "%s%s", i ? "%20" : "", j->idp->scopes[i]);
    if (!j->idp->nscopes)
        sb_adds(&sb, "openid%20email%20profile");
    sb_addf(&sb, "&state=%s&nonce=%s&code_challenge=%s&code_challenge_method=S256", state, nonce, challenge);
    if (sb.overflow || !curl)
        endpoint_fail(c, ENDPOINT_NOMEM);
    else
        endpoint_redirect(c, sb.p, NULL);
    sb_free(&sb);
    free(redirect_uri);
    curl_easy_cleanup(curl);
resume:
    endpoint_resume(c);
out:
    oidc__job_free(j);
}

enum endpoint_result auth__oidc_start(struct conn *c, struct endpoint_req *r, json_t *flow, const char *flow_id, const struct idp *idp)
{
    struct oidc_job *j = calloc(1, sizeof *j);
    if (!j)
        return endpoint_fail(c, ENDPOINT_NOMEM);
    j->site = r->site;
    endpoint_site_hold(r->site);
    j->store = r->store;
    j->idp = idp;
    j->flow = json_incref(flow);
    snprintf(j->flow_id, sizeof j->flow_id, "%s", flow_id);
    j->lj.job.run = oidc__discover_run;
    j->lj.finish = oidc__discover_finish;
    return endpoint_wait(c, &j->lj, r->jobs);
}

static char *oidc__read_secret(const char *path)
{
    if (!path)
        return NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    char *s = strdup(buf);
    sodium_memzero(buf, sizeof buf);
    return s;
}

static void oidc__exchange_run(struct job *job)
{
    struct oidc_job *j = (struct oidc_job *)job;
    j->disc = oidc__discovery(j->store, j->idp, &j->err);
    if (!j->disc)
        return;
    /* RFC 9207 §2.4: a provider that says it names itself in its answers must have done so in
     * this one (the callback checked the value when there was one) */
    if (!j->iss_seen && json_is_true(json_object_get(j->disc, "authorization_response_iss_parameter_supported"))) {
        j->err = strdup("the answer has no iss parameter, which this provider always sends (RFC 9207): "
                        "a mix-up attempt, or a forged answer");
        j->refused = true;
        return;
    }
    char *secret = oidc__read_secret(j->idp->client_secret_file);
    const char *redirect_uri = json_string_value(json_object_get(j->flow, "redirect_uri"));
    CURL *curl = curl_easy_init();
    const char *verifier = json_string_value(json_object_get(j->flow, "verifier"));
    char *ecode = curl ? curl_easy_escape(curl, j->code, 0) : NULL;
    char *eredir = curl && redirect_uri ? curl_easy_escape(curl, redirect_uri, 0) : NULL;
    char *form = NULL;
    if (ecode && eredir && verifier &&
        asprintf(&form, "grant_type=authorization_code&code=%s&redirect_uri=%s&code_verifier=%s",
                 ecode, eredir, verifier) >= 0) {
        json_t *resp = oidc__http(json_string_value(json_object_get(j->disc, "token_endpoint")), form,
                                  j->idp->client_id, secret ? secret : "", &j->err);
        const char *idt = json_string_value(json_object_get(resp, "id_token"));
        if (resp && !idt && !j->err)
            j->err = strdup("the token endpoint returned no id_token");
        if (idt && !(j->claims = oidc__id_token(j->store, j->disc, j->idp, idt,
                                                json_string_value(json_object_get(j->flow, "nonce")),
                                                &j->err)))
            j->refused = true;
        json_decref(resp);
    } else if (!j->err) {
        j->err = strdup("the sign-in flow is incomplete");
    }
    if (secret) {
        sodium_memzero(secret, strlen(secret));
        free(secret);
    }
    free(form);
    curl_free(ecode);
    curl_free(eredir);
    curl_easy_cleanup(curl);
}

/* Whether the provider vouches for the email (its `email_verified`, as the provider's
 * configuration says to read it): JSON true; the exact string "true" from providers known to
 * send strings (`email_verified: string`); absent only from providers that never send it
 * (`email_verified: optional`). Anything else present ("false", "yes", 1, null) refuses. */
static bool oidc__email_verified(const struct idp *idp, json_t *claims)
{
    json_t *v = json_object_get(claims, "email_verified");
    if (!v)
        return idp->email_verified == IDP_VERIFIED_OPTIONAL;
    return json_is_true(v) || (idp->email_verified == IDP_VERIFIED_STRING && json_is_string(v) &&
                               !strcmp(json_string_value(v), "true"));
}

/* The provider's claims as our identity: one plain email address the provider vouches for,
 * groups from the configured claim, amr. */
static int oidc__identity(const struct idp *idp, json_t *claims, struct auth_identity *id)
{
    memset(id, 0, sizeof *id);
    const char *email = json_string_value(json_object_get(claims, "email"));
    if (!email || !oidc__email_verified(idp, claims))
        return -1;
    id->email = strdup(email);
    for (char *p = id->email; p && *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    if (!id->email || !token_email_ok(id->email))
        return -1;
    id->idp = strdup(idp->name);
    json_t *g = json_object_get(claims, idp->groups_claim ? idp->groups_claim : "groups");
    json_t *amr = json_object_get(claims, "amr");
    id->groups = calloc(json_is_array(g) ? json_array_size(g) + 1 : 2, sizeof *id->groups);
    id->amr = calloc(json_is_array(amr) ? json_array_size(amr) + 1 : 1, sizeof *id->amr);
    if (!id->groups || !id->amr || !id->idp)
        return -1;
    if (json_is_string(g))
        id->groups[id->ngroups++] = strdup(json_string_value(g));
    for (size_t i = 0; json_is_array(g) && i < json_array_size(g); i++)
        if (json_is_string(json_array_get(g, i)))
            id->groups[id->ngroups++] = strdup(json_string_value(json_array_get(g, i)));
    for (size_t i = 0; json_is_array(amr) && i < json_array_size(amr); i++)
        if (json_is_string(json_array_get(amr, i)))
            id->amr[id->namr++] = strdup(json_string_value(json_array_get(amr, i)));
    return 0;
}

static void oidc__exchange_finish(struct endpoint_job *lj, struct conn *c)
{
    struct oidc_job *j = (struct oidc_job *)lj;
    if (!c)
        goto out;
    struct endpoint_req *r = endpoint_request(c);
    if (!j->claims && j->refused) {
        log_auth(r->site->auth_log, "login", NULL, j->idp->name, NULL, r->client_ip, false,
                 j->err ? j->err : "the provider's answer did not check out");
        metrics_login(r->metrics, j->idp->name, false);
        auth__error_page(c, 403, "Sign-in refused", "The identity provider's answer could not be "
                         "verified. Start again from the application.");
    } else if (!j->claims) {
        oidc__provider_down(c, r, j->idp, j->err);
    } else {
        struct auth_identity id;
        if (oidc__identity(j->idp, j->claims, &id) != 0) {
            log_auth(r->site->auth_log, "login", NULL, j->idp->name, NULL, r->client_ip, false,
                     "the provider gave no verified email");
            metrics_login(r->metrics, j->idp->name, false);
            auth__error_page(c, 403, "Sign-in refused", "Your identity provider did not confirm an email address.");
        } else {
            auth__complete_login(c, r, j->flow, &id, NULL);
        }
        auth__identity_free(&id);
    }
    endpoint_resume(c);
out:
    oidc__job_free(j);
}

/* A callback that reached another address than its flow's redirect URI (another provider's
 * callback: RFC 9207 §1's mix-up), or that names another issuer than its flow's provider
 * (RFC 9207 §2.4): refused, the flow spent. */
static enum endpoint_result oidc__mixed_up(struct conn *c, struct endpoint_req *r, const struct idp *idp, json_t *flow,
                                           const char *why)
{
    log_auth(r->site->auth_log, "login", NULL, idp->name, NULL, r->client_ip, false, why);
    metrics_login(r->metrics, idp->name, false);
    json_decref(flow);
    return auth__error_page(c, 400, "Sign-in refused", "This answer from an identity provider does "
                            "not belong to this sign-in. Start again from the application.");
}

/* GET callback[/<provider>]?code=…&state=…[&iss=…] (RFC 6749 §4.1.2, RFC 9207): the state must
 * be the one this browser's flow holds (its cookie), once; the answer must arrive at the flow's
 * redirect URI and name the flow's provider when it names one. */
enum endpoint_result auth__oidc_callback(struct conn *c, struct endpoint_req *r)
{
    char flow_id[33], state[128], code[2048], iss[1024], here[600];
    json_t *flow;
    enum store_result sr = auth__flow_load(r, flow_id, &flow);
    if (sr != STORE_OK && sr != STORE_NOT_FOUND)
        return endpoint_fail(c, endpoint_store_cause(sr));
    const char *want = json_string_value(json_object_get(flow, "state"));
    const char *idp_name = json_string_value(json_object_get(flow, "idp"));
    const struct idp *idp = idp_name ? auth__idp(r->site->cfg, idp_name) : NULL;
    /* RFC 6749 §3.1: each parameter at most once; two states, codes or issuers are ambiguous */
    bool once = form_count(r->query, r->query_len, "state") == 1 &&
                form_count(r->query, r->query_len, "code") <= 1 &&
                form_count(r->query, r->query_len, "iss") <= 1 &&
                form_count(r->query, r->query_len, "error") <= 1;
    bool state_ok = once && want && auth__query(r, "state", state, sizeof state) &&
                    strlen(state) == strlen(want) && CRYPTO_memcmp(state, want, strlen(want)) == 0;
    if (!flow || !idp || idp->type != IDP_OIDC || !state_ok) {
        log_auth(r->site->auth_log, "login", NULL, idp_name, NULL, r->client_ip, false,
                 "callback without this browser's flow, or with another state");
        metrics_login(r->metrics, idp_name, false);
        json_decref(flow);
        return auth__error_page(c, 400, "Sign-in expired",
                                "This sign-in has expired, was already used, or was started in another browser. "
                                "Start again from the application.");
    }
    char key[64];
    snprintf(key, sizeof key, "flow:%s", flow_id);
    char *taken = NULL;
    size_t tl;
    sr = store_take(r->store, key, &taken, &tl);
    if (sr == STORE_UNAVAILABLE) {
        json_decref(flow);
        return endpoint_fail(c, ENDPOINT_STORE_DOWN);
    }
    if (sr != STORE_OK) { /* a replayed callback */
        json_decref(flow);
        return auth__error_page(c, 400, "Sign-in expired", "This sign-in was already used. Start again from the application.");
    }
    free(taken);
    const char *callback = json_string_value(json_object_get(flow, "callback"));
    snprintf(here, sizeof here, HTTP_ACCESS_PREFIX "%s", r->name);
    if (!callback || strcmp(callback, here) != 0)
        return oidc__mixed_up(c, r, idp, flow, "the answer reached another provider's callback");
    bool iss_seen = auth__query(r, "iss", iss, sizeof iss);
    if (form_count(r->query, r->query_len, "iss") && (!iss_seen || strcmp(iss, idp->issuer) != 0))
        return oidc__mixed_up(c, r, idp, flow, "the answer names another issuer (RFC 9207)");
    if (!auth__query(r, "code", code, sizeof code)) {
        char why[256] = "no code";
        auth__query(r, "error", why, sizeof why);
        log_auth(r->site->auth_log, "login", NULL, idp->name, NULL, r->client_ip, false, why);
        metrics_login(r->metrics, idp->name, false);
        json_decref(flow);
        return auth__error_page(c, 403, "Sign-in cancelled", "The identity provider did not sign you in.");
    }
    struct oidc_job *j = calloc(1, sizeof *j);
    if (!j || !(j->code = strdup(code))) {
        free(j);
        json_decref(flow);
        return endpoint_fail(c, ENDPOINT_NOMEM);
    }
    j->site = r->site;
    endpoint_site_hold(r->site);
    j->store = r->store;
    j->idp = idp;
    j->flow = flow;
    j->iss_seen = iss_seen;
    snprintf(j->flow_id, sizeof j->flow_id, "%s", flow_id);
    j->lj.job.run = oidc__exchange_run;
    j->lj.finish = oidc__exchange_finish;
    return endpoint_wait(c, &j->lj, r->jobs);
}
