/* Who a request is (SPEC.md §3.4): service-token headers, then the cf-access-token header,
 * then the CF_Authorization cookie; the first one present decides. Tokens are verified through
 * the worker's cache, then their claims, then revocation. A service token gets an assertion
 * minted for it (reused until shortly before it expires: RSA signing is not per request). */
#include "proxy/proxy.h"

#include "core/log.h"
#include "http/cookie.h"
#include "proxy/head.h"
#include "request/worker_ctx.h"
#include "store/store.h"
#include "token/mint.h"
#include "token/svctokens.h"
#include "token/verify.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MINT_REUSE_MARGIN_S 300

struct minted {
    struct minted *next;
    char *service;     /* service token name */
    char aud[65];
    char *token;
    int64_t exp;
    const struct keyset *ks; /* minted with (compared, never dereferenced) */
};

void proxy__minted_free(struct proxy_worker *pw)
{
    while (pw->minted) {
        struct minted *m = pw->minted;
        pw->minted = m->next;
        free(m->service);
        free(m->token);
        free(m);
    }
}

/* An app token for a service token: SPEC.md §5, `sub: ""`, `common_name: <client id>`. */
static const char *identity__mint_service(struct exchange *ex, const struct service_token_cfg *st, int64_t *exp)
{
    struct worker_ctx *w = ex->w;
    time_t now = time(NULL);
    struct minted *m;
    for (m = w->proxy->minted; m; m = m->next)
        if (!strcmp(m->service, st->name) && !strcmp(m->aud, ex->art->aud))
            break;
    if (m && m->ks == w->keys && now < m->exp - MINT_REUSE_MARGIN_S) {
        *exp = m->exp;
        return m->token;
    }
    int64_t ttl = runtime_session_s(ex->rt, ex->app, NULL);
    if (st->expires && now + ttl > st->expires)
        ttl = st->expires - now;
    struct mint_claims mc = { .type = "app", .aud = ex->art->aud, .sub = "",
                              .common_name = st->client_id, .ttl_s = ttl };
    char *tok = token_mint(w->keys, ex->rt->auth_url, &mc, now);
    if (!tok)
        return NULL;
    if (!m) {
        m = calloc(1, sizeof *m);
        if (!m || !(m->service = strdup(st->name))) {
            free(m);
            free(tok);
            return NULL;
        }
        snprintf(m->aud, sizeof m->aud, "%s", ex->art->aud);
        m->next = w->proxy->minted;
        w->proxy->minted = m;
    }
    free(m->token);
    m->token = tok;
    m->exp = now + ttl;
    m->ks = w->keys;
    *exp = m->exp;
    return tok;
}

/* Configured tokens first, then those made with a shared store (svctokens.h). */
const struct service_token_cfg *proxy__service_token(struct worker_ctx *w, const struct config *cfg,
                                                     const char *id, size_t n)
{
    for (size_t i = 0; i < cfg->nservice_tokens; i++) {
        const struct service_token_cfg *st = &cfg->service_tokens[i];
        if (strlen(st->client_id) == n && !memcmp(st->client_id, id, n))
            return st;
    }
    return store_remote(w->store) ? svc_tokens_find(w->svc, id, n) : NULL;
}

static const struct service_token_cfg *identity__service_by_id(struct exchange *ex, const char *id, size_t n)
{
    const struct service_token_cfg *st = proxy__service_token(ex->w, ex->rt->cfg, id, n);
    bool remote = st && (st < ex->rt->cfg->service_tokens ||
                         st >= ex->rt->cfg->service_tokens + ex->rt->cfg->nservice_tokens);
    if (remote && !ex->svc) { /* the worker may pick up a newer set before the exchange ends */
        svc_tokens_ref(ex->w->svc);
        ex->svc = ex->w->svc;
    }
    return st;
}

static bool identity__service_live(const struct service_token_cfg *st, time_t now)
{
    return st && (!st->expires || now < st->expires);
}

static enum token_status identity__service(struct exchange *ex, const struct http_request *req,
                                           struct request_identity *ri, bool *present)
{
    char id[256], secret[256];
    bool single = false;
    int r = head_service_credentials(req, ex->app->service_token_header, id, sizeof id, secret, sizeof secret,
                                     &single);
    ri->service_header = single;
    *present = r != 0;
    if (r <= 0)
        return TOKEN_MALFORMED;
    time_t now = time(NULL);
    const struct service_token_cfg *st = identity__service_by_id(ex, id, strlen(id));
    unsigned char md[32];
    char hex[65];
    SHA256((const unsigned char *)secret, strlen(secret), md);
    sodium_bin2hex(hex, sizeof hex, md, sizeof md);
    OPENSSL_cleanse(secret, sizeof secret);
    /* compare even when the id is unknown, so timing does not tell which ids exist */
    const char *want = st ? st->secret_sha256 : "0000000000000000000000000000000000000000000000000000000000000000";
    bool ok = CRYPTO_memcmp(hex, want, 64) == 0 && st;
    if (!ok)
        return TOKEN_BAD_SIGNATURE;
    if (!identity__service_live(st, now))
        return TOKEN_EXPIRED;
    ri->service = st;
    ri->id.service_token = st->name;
    ri->assertion = identity__mint_service(ex, st, &ri->minted_exp);
    if (!ri->assertion)
        return TOKEN_MALFORMED;
    ri->assertion_len = strlen(ri->assertion);
    ri->minted = true;
    return TOKEN_OK;
}

static enum token_status identity__token(struct exchange *ex, const char *tok, size_t len,
                                         struct request_identity *ri)
{
    struct worker_ctx *w = ex->w;
    time_t now = time(NULL);
    enum token_status st;
    const struct token *t = token_cache_get(w->tokens, w->keys, tok, len, now, &st);
    if (!t)
        return st;
    struct token_want want = { .iss = ex->rt->auth_url, .type = "app", .aud = ex->art->aud, .rev = w->rev,
                               .seps = ex->rt->cfg->subaddress_separators, .app = ex->app->name };
    st = token_accept(t, now, &want);
    if (st != TOKEN_OK)
        return st;
    ri->token = t;
    ri->assertion = tok;
    ri->assertion_len = len;
    if (t->common_name && (!t->sub || !*t->sub)) {
        const struct service_token_cfg *svc =
            identity__service_by_id(ex, t->common_name, strlen(t->common_name));
        if (!identity__service_live(svc, now))
            return TOKEN_REVOKED; /* the service token was deleted or expired since */
        ri->service = svc;
        ri->id.service_token = svc->name;
        return TOKEN_OK;
    }
    if (!t->email)
        return TOKEN_BAD_CLAIMS;
    ri->id.email = t->email;
    ri->id.sub = t->sub;
    ri->id.idp = t->idp;
    ri->id.groups = t->groups;
    ri->id.ngroups = t->ngroups;
    if (!t->has_groups && t->identity_nonce) { /* a large identity, kept under its nonce */
        ri->stored = store_identity_get(w->store, t->identity_nonce);
        if (!ri->stored)
            return TOKEN_BAD_CLAIMS; /* lost (a restart): sign in again */
        json_t *g = json_object_get(ri->stored, "groups");
        ri->stored_groups = calloc(json_array_size(g) + 1, sizeof *ri->stored_groups);
        if (!ri->stored_groups)
            return TOKEN_BAD_CLAIMS;
        for (size_t i = 0; i < json_array_size(g); i++)
            if (json_is_string(json_array_get(g, i)))
                ri->stored_groups[ri->id.ngroups++] = json_string_value(json_array_get(g, i));
        ri->id.groups = ri->stored_groups;
    }
    ri->id.amr = t->amr;
    ri->id.namr = t->namr;
    return TOKEN_OK;
}

void proxy__identify(struct exchange *ex, const struct http_request *req, struct request_identity *ri)
{
    memset(ri, 0, sizeof *ri);
    bool present = false;
    ri->status = identity__service(ex, req, ri, &present);
    if (!present) {
        const struct http_header *h = http_find_header(req->headers, req->nheaders, HTTP_H_ACCESS_TOKEN);
        struct http_slice v = { NULL, 0 };
        if (h) {
            v = h->value;
            present = true;
        } else {
            struct http_slice cookies[8]; /* the Cookie headers (HTTP/1.1 sends one; a few at most) */
            size_t n = 0;
            bool any = false;
            for (size_t i = 0; i < req->nheaders; i++) {
                if (req->headers[i].id != HTTP_F_COOKIE)
                    continue;
                if (n < sizeof cookies / sizeof *cookies)
                    cookies[n++] = req->headers[i].value;
                any |= cookie_find(req->headers[i].value, COOKIE_TOKEN, &v);
            }
            /* on https only the cookie this origin paired with its token (http/cookie.h): one
             * another port or a sibling host planted is presented, but proves nobody */
            present = any;
            if (any && !cookie_token_find(ex->rt->secret, cookies, n, ex->https, &v)) {
                ri->presented = true;
                ri->status = TOKEN_UNPAIRED;
                return;
            }
        }
        if (present)
            ri->status = identity__token(ex, v.p, v.n, ri);
    }
    ri->presented = present;
    ri->ok = present && ri->status == TOKEN_OK;
}

void proxy__identity_release(struct request_identity *ri)
{
    json_decref(ri->stored);
    free(ri->stored_groups);
    ri->stored = NULL;
    ri->stored_groups = NULL;
}

/* A client certificate verified against the listener's client_ca (the certificate and
 * common_name selectors). */
void proxy__client_cert(SSL *ssl, bool *verified, char *cn, size_t cncap)
{
    *verified = false;
    cn[0] = '\0';
    if (!ssl)
        return;
    X509 *x = SSL_get0_peer_certificate(ssl);
    if (!x || SSL_get_verify_result(ssl) != X509_V_OK)
        return;
    *verified = true;
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, (int)cncap);
}
