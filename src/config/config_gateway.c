/* Keys of the gateway core that bound what clients and origins can do (docs/config-extras.md):
 * max_connections_per_client, and apps' keep_client_headers. */
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
