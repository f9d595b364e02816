/* Keys of the gateway core that bound what clients and origins can do (docs/configuration.md):
 * max_connections_per_client, hsts, and apps' keep_client_headers. */
#include "config/config-int.h"

#include "http/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_MAX_CONNS_PER_CLIENT 1000000u

/* A whole number from 0 to max, written as plain digits; false after an error. */
static bool config_count(struct config__ctx *c, const struct config__node *n, const char *key,
                         unsigned max, unsigned *out)
{
    unsigned long v = 0;
    bool ok = n->kind == CONFIG__SCALAR && n->len > 0 && n->len <= 7;
    for (size_t i = 0; ok && i < n->len; i++) {
        ok = n->text[i] >= '0' && n->text[i] <= '9';
        v = v * 10 + (unsigned long)(n->text[i] - '0');
    }
    if (!ok || v > max) {
        config__error(c, n->pos, "'%s' must be a number from 0 to %u", key, max);
        return false;
    }
    *out = (unsigned)v;
    return true;
}

void config__max_connections_per_client(struct config__ctx *c, const struct config__node *n,
                                        struct config *cfg)
{
    config_count(c, n, "max_connections_per_client", CONFIG_MAX_CONNS_PER_CLIENT,
                 &cfg->max_connections_per_client);
}

void config__listener_http2(struct config__ctx *c, const struct config__node *n, struct listener_cfg *l,
                            bool tls)
{
    l->http2 = tls ? LISTENER_H2_ALPN : LISTENER_H2_OFF;
    if (!n)
        return;
    if (n->kind == CONFIG__SCALAR && !strcmp(n->text, "prior_knowledge")) {
        if (tls)
            config__error(c, n->pos, "'http2: prior_knowledge' is for listeners without 'tls' "
                                     "(a TLS listener offers h2 by ALPN: true or false)");
        l->http2 = LISTENER_H2_PRIOR;
        return;
    }
    bool on;
    if (n->kind != CONFIG__SCALAR || (strcmp(n->text, "true") && strcmp(n->text, "false"))) {
        config__error(c, n->pos, "'http2' must be true, false or prior_knowledge");
        return;
    }
    config__bool(c, n, "http2", &on);
    if (on && !tls) {
        config__error(c, n->pos, "'http2: true' needs 'tls' on this listener (h2 by ALPN); a "
                                 "cleartext listener takes 'http2: prior_knowledge'");
        return;
    }
    l->http2 = on ? LISTENER_H2_ALPN : LISTENER_H2_OFF;
}

/* A whole number from lo to hi; false after an error. */
static bool config_range(struct config__ctx *c, const struct config__node *n, const char *key,
                         unsigned lo, unsigned hi, unsigned *out)
{
    unsigned long v = 0;
    bool ok = n->kind == CONFIG__SCALAR && n->len > 0 && n->len <= 9;
    for (size_t i = 0; ok && i < n->len; i++) {
        ok = n->text[i] >= '0' && n->text[i] <= '9';
        v = v * 10 + (unsigned long)(n->text[i] - '0');
    }
    if (!ok || v < lo || v > hi) {
        config__error(c, n->pos, "'%s' must be a number from %u to %u", key, lo, hi);
        return false;
    }
    *out = (unsigned)v;
    return true;
}

void config__http2(struct config__ctx *c, const struct config__node *n, struct config *cfg)
{
    static const char *const keys[] = {"max_concurrent_streams", "initial_window_size",
                                       "max_header_list_size", NULL};
    const struct config__node *v[3];
    if (!config__map(c, n, "http2", keys, v))
        return;
    if (v[0])
        config_range(c, v[0], "max_concurrent_streams", 1, 1000, &cfg->http2.max_concurrent_streams);
    if (v[1])
        config_range(c, v[1], "initial_window_size", 1024, 8388608, &cfg->http2.initial_window_size);
    if (v[2])
        config_range(c, v[2], "max_header_list_size", 1024, 262144, &cfg->http2.max_header_list_size);
}

/* Why a field name cannot be in keep_client_headers, or NULL: only the fields the gateway strips
 * because origins act on them (HTTP_F_SPOOFABLE), in their '-' spelling. */
static const char *config_keep_refused(const char *name)
{
    for (const char *p = name; *p; p++) {
        if (*p == '_')
            return "is spelled with '_': only the '-' spelling can be kept (an '_' spelling is "
                   "never forwarded)";
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("!#$%&'*+-.^`|~", *p)))
            return "is not a header name";
    }
    switch (http_field_id((struct http_slice){ name, strlen(name) })) {
    case HTTP_F_SPOOFABLE:
        return NULL;
    case HTTP_F_OTHER:
    case HTTP_F_COOKIE:
    case HTTP_F_SET_COOKIE:
    case HTTP_F_STS:
        return "is not a header the gateway strips: it reaches the origin anyway";
    case HTTP_F_X_FORWARDED_FOR:
    case HTTP_F_OWNED:
    case HTTP_F_CF_ACCESS:
    case HTTP_F_HOST:
        return "is set by the gateway itself: a client's copy can never be kept";
    case HTTP_F_NEVER:
        return "is never forwarded (httpoxy)";
    default:
        return "is hop-by-hop or framing: the gateway writes its own";
    }
}

void config__keep_client_headers(struct config__ctx *c, const struct config__node *n,
                                 struct app *a)
{
    if (!config__list(c, n, "keep_client_headers", "header names"))
        return;
    a->keep_client_headers = config__calloc(c, n->n, sizeof *a->keep_client_headers);
    for (size_t i = 0; a->keep_client_headers && i < n->n; i++) {
        const struct config__node *item = config__kid(c, n, i);
        char *name = config__string(c, item, "keep_client_headers");
        if (!name)
            continue;
        config__lower(name);
        const char *why = config_keep_refused(name);
        if (why) {
            config__error(c, item->pos, "'keep_client_headers': '%s' %s", item->text, why);
            free(name);
            continue;
        }
        a->keep_client_headers[a->nkeep_client_headers++] = name;
    }
}

#define CONFIG_HSTS_PRELOAD_MIN_S (365LL * 86400) /* what the browsers' preload list requires */

/* hsts: { max_age: DURATION | 0, include_subdomains: BOOL, preload: BOOL } (RFC 6797 §6.1). */
void config__hsts(struct config__ctx *c, const struct config__node *n, struct config *cfg)
{
    static const char *const keys[] = {"max_age", "include_subdomains", "preload", NULL};
    const struct config__node *v[3];
    if (!config__map(c, n, "hsts", keys, v))
        return;
    int64_t max_age = 0;
    bool sub = false, preload = false, ok = true;
    if (!config__required(c, n, v[0], "max_age", "hsts"))
        ok = false;
    else if (!(v[0]->kind == CONFIG__SCALAR && !strcmp(v[0]->text, "0"))) /* 0: forget it */
        ok = config__duration_s(c, v[0], "max_age", &max_age);
    if (v[1])
        ok &= config__bool(c, v[1], "include_subdomains", &sub);
    if (v[2])
        ok &= config__bool(c, v[2], "preload", &preload);
    if (!ok)
        return;
    if (preload && (!sub || max_age < CONFIG_HSTS_PRELOAD_MIN_S)) {
        config__error(c, v[2]->pos, "'preload' needs include_subdomains: true and a max_age of "
                                    "at least 365d (the browsers' preload list refuses less)");
        return;
    }
    size_t https = 0;
    for (size_t i = 0; i < cfg->nlisteners; i++)
        https += cfg->listeners[i].public_https;
    if (!https) {
        config__error(c, n->pos, "'hsts' is sent only on listeners reached over https, and no "
                                 "listener has 'tls' or 'public: {scheme: https}'");
        return;
    }
    char line[128];
    snprintf(line, sizeof line, "Strict-Transport-Security: max-age=%lld%s%s\r\n",
             (long long)max_age, sub ? "; includeSubDomains" : "", preload ? "; preload" : "");
    cfg->hsts_header = config__strdup(c, line);
}
