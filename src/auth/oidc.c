/* OpenID Connect (OpenID Connect Core 1.0, RFC 6749, RFC 7636): discovery, the authorization
 * code flow with PKCE S256, state and nonce bound to the browser's flow, and the ID token
 * verified against the provider's JWKS (cached, fetched again once on an unknown kid). The
 * back-channel uses libcurl on a background job, never on a worker's loop. What the provider
 * sends is checked by the pure functions of oidc.h (oidc_provider.c), which fuzz/ exercises. */
#include "auth/auth-int.h"
#include "auth/oidc.h"

#include "core/base64url.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "http/form.h"
#include "metrics/metrics.h"
#include "store/store.h"
#include "token/jwt.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OIDC_CACHE_TTL_S 3600
#define OIDC_MAX_DOC     (1024 * 1024)

/* --- the back-channel (blocking, job threads only) ---------------------------------------- */

/* The answer's body: at most OIDC_MAX_DOC bytes (a longer one fails the transfer). */
static size_t oidc__write(char *data, size_t size, size_t n, void *arg)
{
    return sb_add(arg, data, size * n) ? size * n : 0;
}

/* GET (form == NULL) or POST a form; the JSON answer, or NULL with *err. */
static json_t *oidc__http(const char *url, const char *form, const char *user, const char *pass, char **err)
{
    CURL *curl = curl_easy_init();
    struct strbuf b;
    json_t *j = NULL;
    long status = 0;
    if (!curl) {
        *err = strdup("cannot start an HTTP client");
        return NULL;
    }
    sb_init(&b, OIDC_MAX_DOC + 1);
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
        j = b.p ? oidc_document(b.p, b.len) : NULL;
        if (!j) {
            if (asprintf(err, "%s did not answer a JSON object", url) < 0)
                *err = NULL;
        }
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    sb_free(&b);
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
    if (oidc_discovery_check(d, idp->issuer, url, err) != 0) {
        json_decref(d);
        return NULL;
    }
    return d;
}

/* --- ID token verification ---------------------------------------------------------------- */

/* The provider's keys that can check a token signed by `kid` with `alg`: the cached JWKS, or
 * once fetched again when it holds no such key (the provider rotated) but at most once a
 * minute per provider, so that tokens naming unknown keys cannot make us hammer it. */
static json_t *oidc__jwk_for(struct store *st, const char *jwks_uri, const char *kid, const char *alg,
                             json_t **jwks, char **err)
{
    char key[1100];
    *jwks = oidc__cached(st, jwks_uri, false, err);
    json_t *jwk = *jwks ? oidc_find_jwk(*jwks, kid, alg) : NULL;
    snprintf(key, sizeof key, "oidc:refetch:%s", jwks_uri);
    if (!jwk && store_incr(st, key, 60) == 1) {
        json_decref(*jwks);
        free(*err);
        *err = NULL;
        *jwks = oidc__cached(st, jwks_uri, true, err);
        jwk = *jwks ? oidc_find_jwk(*jwks, kid, alg) : NULL;
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
    struct oidc_id_token t;
    json_t *jwks = NULL;
    EVP_PKEY *key = NULL;
    if (oidc_id_token_parse(tok, &t, err) != 0)
        return NULL;
    const char *jwks_uri = json_string_value(json_object_get(disc, "jwks_uri"));
    json_t *jwk = oidc__jwk_for(st, jwks_uri, t.kid, t.alg, &jwks, err);
    if (!jwk || !(key = oidc_jwk_key(jwk)) || oidc_verify_sig(tok, t.alg, key) != 0) {
        free(*err);
        *err = strdup("the ID token's signature does not verify with the provider's keys");
        goto fail;
    }
    if (oidc_claims_check(t.claims, idp->issuer, idp->client_id, nonce, (double)time(NULL), err) != 0)
        goto fail;
    json_t *c = json_incref(t.claims);
    oidc_id_token_free(&t);
    json_decref(jwks);
    EVP_PKEY_free(key);
    return c;
fail:
    oidc_id_token_free(&t);
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

static void oidc__provider_down(struct exchange *c, struct endpoint_req *r, const struct idp *idp, const char *why)
{
    log_auth(r->site->auth_log, "login", NULL, idp->name, NULL, r->client_ip, false, why ? why : "provider error");
    metrics_login(r->metrics, idp->name, false);
    log_msg("error", "identity provider %s: %s", idp->name, why ? why : "error");
    auth__error_page(c, 502, "Sign-in is unavailable",
                     "The identity provider could not be reached. Sessions already open keep working; "
                     "try signing in again in a few minutes.");
}

static void oidc__discover_finish(struct endpoint_job *lj, struct exchange *c)
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

enum endpoint_result auth__oidc_start(struct exchange *c, struct endpoint_req *r, json_t *flow, const char *flow_id, const struct idp *idp)
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

static void oidc__exchange_finish(struct endpoint_job *lj, struct exchange *c)
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
static enum endpoint_result oidc__mixed_up(struct exchange *c, struct endpoint_req *r, const struct idp *idp, json_t *flow,
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
enum endpoint_result auth__oidc_callback(struct exchange *c, struct endpoint_req *r)
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
