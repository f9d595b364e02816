/* Loading the YAML configuration of SPEC.md §2 (and docs/config-extras.md) into a struct config:
 * the top-level keys, listeners, identity providers and service tokens; apps are in
 * config_apps.c, the typed access to the tree that both use in config_node.c. Every error is
 * collected with its position, none stops the walk. */
#include "config/config-int.h"
#include "core/email.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_MAX_WORKERS 256

/* ---- listeners ---- */

static void config_tls_cert(struct config__ctx *c, const struct config__node *n,
                            struct tls_cert *t, char **client_ca, struct config_pos *client_ca_pos,
                            bool allow_ca)
{
    static const char *const keys[] = {"cert", "key", "client_ca", NULL};
    const struct config__node *v[3];
    if (!config__map(c, n, "tls", keys, v))
        return;
    if (v[2] && !allow_ca) {
        config__error(c, v[2]->pos, "'client_ca' belongs to the listener, not to a tls list "
                                    "entry");
    } else if (v[2]) {
        *client_ca = config__string(c, v[2], "client_ca");
        *client_ca_pos = v[2]->pos;
    }
    if (config__required(c, n, v[0], "cert", "tls")) {
        t->cert = config__string(c, v[0], "cert");
        t->cert_pos = v[0]->pos;
    }
    if (config__required(c, n, v[1], "key", "tls")) {
        t->key = config__string(c, v[1], "key");
        t->key_pos = v[1]->pos;
    }
}

/* `public: {scheme: https|http, port: N}`: how browsers reach a listener behind a load
 * balancer or a TLS terminator. A TLS listener is reached over https. */
static void config_listener_public(struct config__ctx *c, const struct config__node *n,
                                   struct listener_cfg *l, bool tls)
{
    static const char *const keys[] = {"scheme", "port", NULL};
    const struct config__node *v[2];
    if (!config__map(c, n, "public", keys, v))
        return;
    char *scheme = v[0] ? config__string(c, v[0], "scheme") : NULL;
    if (scheme && strcmp(scheme, "https") && strcmp(scheme, "http"))
        config__error(c, v[0]->pos, "'scheme' must be https or http, got '%s'", scheme);
    else if (scheme && tls && !strcmp(scheme, "http"))
        config__error(c, v[0]->pos, "a listener with 'tls' is reached over https, not http");
    else if (scheme)
        l->public_https = !strcmp(scheme, "https");
    free(scheme);
    if (v[1]) {
        int port = v[1]->kind == CONFIG__SCALAR ? config__port(v[1]->text, strlen(v[1]->text)) : -1;
        if (port < 0)
            config__error(c, v[1]->pos, "'port' must be a number from 1 to 65535");
        else
            l->public_port = (uint16_t)port;
    }
}

static void config_listener(struct config__ctx *c, const struct config__node *n,
                            struct listener_cfg *l)
{
    static const char *const keys[] = {"address", "tls", "client_ca", "public", "http2", NULL};
    const struct config__node *v[5];
    l->pos = n->pos;
    if (!config__map(c, n, "listener", keys, v))
        return;
    if (config__required(c, n, v[0], "address", "listener")) {
        l->address = config__string(c, v[0], "address");
        const char *why;
        if (l->address && (why = config__check_address(l->address, &l->addr, &l->addrlen)))
            config__error(c, v[0]->pos, "invalid listen address '%s': %s", l->address, why);
    }
    char *tls_ca = NULL;
    if (v[1] && v[1]->kind == CONFIG__SEQ) {
        /* Several certificates, chosen by SNI; the first is the default. */
        if (v[1]->n == 0)
            config__error(c, v[1]->pos, "'tls' must list at least one {cert, key}");
        l->certs = config__calloc(c, v[1]->n, sizeof *l->certs);
        for (size_t i = 0; l->certs && i < v[1]->n; i++)
            config_tls_cert(c, config__kid(c, v[1], i), &l->certs[l->ncerts++], NULL, NULL,
                            false);
    } else if (v[1] && v[1]->kind == CONFIG__MAP) {
        l->certs = config__calloc(c, 1, sizeof *l->certs);
        if (l->certs)
            config_tls_cert(c, v[1], &l->certs[l->ncerts++], &tls_ca, &l->client_ca_pos, true);
    } else if (v[1]) {
        config__error(c, v[1]->pos, "'tls' must be a mapping {cert, key} or a list of them, "
                                    "got %s", config__kind_name(v[1]));
    }
    if (v[2]) {
        l->client_ca = config__string(c, v[2], "client_ca");
        l->client_ca_pos = v[2]->pos;
        if (tls_ca) {
            config__error(c, v[2]->pos, "'client_ca' is given twice (also inside tls)");
            free(tls_ca);
            tls_ca = NULL;
        }
    } else {
        l->client_ca = tls_ca;
    }
    /* Client certificates only exist on TLS connections. */
    if (l->client_ca && !v[1])
        config__error(c, v[2] ? v[2]->pos : n->pos, "'client_ca' needs 'tls' on this listener");
    if (l->addrlen)
        l->port = ntohs(l->addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&l->addr)->sin6_port
                                                      : ((struct sockaddr_in *)&l->addr)->sin_port);
    /* by default the listener itself; but a plain listener on a network address is taken to
     * stand behind a TLS terminator on https:443, as its Secure cookies already assume */
    bool loopback = l->addr.ss_family == AF_INET6
                        ? IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&l->addr)->sin6_addr)
                        : ((const uint8_t *)&((struct sockaddr_in *)&l->addr)->sin_addr)[0] == 127;
    l->public_https = v[1] != NULL || !loopback;
    l->public_port = v[1] != NULL || loopback ? l->port : 443;
    if (v[3])
        config_listener_public(c, v[3], l, v[1] != NULL);
    l->public_set = v[3] != NULL;
    config__listener_http2(c, v[4], l, v[1] != NULL);
}

static bool config_same_addr(const struct listener_cfg *a, const struct listener_cfg *b)
{
    return a->addrlen && a->addrlen == b->addrlen && memcmp(&a->addr, &b->addr, a->addrlen) == 0;
}

static void config_listeners(struct config__ctx *c, const struct config__node *n,
                             struct config *cfg)
{
    if (!config__list(c, n, "listen", "listeners ({address: HOST:PORT})"))
        return;
    if (n->n == 0) {
        config__error(c, n->pos, "'listen' must name at least one listener");
        return;
    }
    cfg->listeners = config__calloc(c, n->n, sizeof *cfg->listeners);
    for (size_t i = 0; cfg->listeners && i < n->n; i++) {
        struct listener_cfg *l = &cfg->listeners[cfg->nlisteners++];
        config_listener(c, config__kid(c, n, i), l);
        for (size_t j = 0; j < i; j++)
            if (config_same_addr(&cfg->listeners[j], l))
                config__error(c, l->pos, "listen address '%s' is already used by another "
                                         "listener", l->address);
    }
}

/* ---- identity providers ---- */

/* The value of the first scalar key `key` in mapping `map`, or NULL; reports nothing. */
static const struct config__node *config_find(struct config__ctx *c,
                                              const struct config__node *map, const char *key)
{
    for (size_t k = 0; map->kind == CONFIG__MAP && k + 1 < map->n; k += 2) {
        const struct config__node *kn = config__kid(c, map, k);
        if (kn->kind == CONFIG__SCALAR && !strcmp(kn->text, key))
            return config__kid(c, map, k + 1);
    }
    return NULL;
}

static void config_idp_onetimepin(struct config__ctx *c, const struct config__node *n,
                                  struct idp *d)
{
    static const char *const keys[] = {"name", "type", "mail", "from", NULL};
    const struct config__node *v[4];
    const char *what = "onetimepin identity provider";
    if (!config__map(c, n, what, keys, v))
        return;
    if (config__required(c, n, v[2], "mail", what) && (d->mail = config__string(c, v[2], "mail"))) {
        /* console (development: the PIN is printed to the log) or an SMTP server. */
        struct config__url u;
        const char *why = NULL;
        if (strcmp(d->mail, "console") != 0) {
            why = config__parse_url(d->mail, &u);
            if (!why && strcmp(u.scheme, "smtp") && strcmp(u.scheme, "smtps"))
                why = "scheme must be smtp:// or smtps://";
            if (!why && *u.path && strcmp(u.path, "/"))
                why = "an SMTP URL has no path";
            if (why)
                config__error(c, v[2]->pos, "'mail' must be console, smtp://HOST[:PORT] or "
                                            "smtps://HOST[:PORT]: %s", why);
        }
    }
    if (v[3] && (d->from = config__string(c, v[3], "from"))) {
        config__lower(d->from);
        const char *why = email_check(d->from);
        if (why)
            config__error(c, v[3]->pos, "invalid 'from' address: %s", why);
    }
    /* A mail server needs a sender; the console mailer does not. */
    if (!v[3] && d->mail && strcmp(d->mail, "console") != 0)
        config__error(c, n->pos, "missing required key 'from' in %s (needed with an SMTP "
                                 "server)", what);
}

static void config_idp_oidc(struct config__ctx *c, const struct config__node *n, struct idp *d)
{
    static const char *const keys[] = {"name",   "type",         "issuer", "client_id",
                                       "client_secret_file",       "scopes", "groups_claim",
                                       "email_verified", NULL};
    const struct config__node *v[8];
    const char *what = "oidc identity provider";
    if (!config__map(c, n, what, keys, v))
        return;
    if (config__required(c, n, v[2], "issuer", what) &&
        (d->issuer = config__string(c, v[2], "issuer"))) {
        /* Discovery and tokens travel over this URL: https, or plain http only to a loopback
         * IdP (tests, demos). */
        struct config__url u;
        const char *why = config__parse_url(d->issuer, &u);
        if (!why && strcmp(u.scheme, "https") != 0) {
            bool loopback = !strcmp(u.host, "localhost") || !strcmp(u.host, "127.0.0.1") ||
                            !strcmp(u.host, "::1");
            if (strcmp(u.scheme, "http") != 0)
                why = "scheme must be https://";
            else if (!loopback)
                why = "http:// is only allowed for localhost or 127.0.0.1; use https://";
        }
        if (why)
            config__error(c, v[2]->pos, "invalid 'issuer' '%s': %s", d->issuer, why);
    }
    if (config__required(c, n, v[3], "client_id", what))
        d->client_id = config__string(c, v[3], "client_id");
    if (config__required(c, n, v[4], "client_secret_file", what)) {
        d->client_secret_file = config__string(c, v[4], "client_secret_file");
        d->client_secret_file_pos = v[4]->pos;
    }
    if (v[5] && config__list(c, v[5], "scopes", "strings")) {
        bool openid = false;
        d->scopes = config__calloc(c, v[5]->n, sizeof *d->scopes);
        for (size_t i = 0; d->scopes && i < v[5]->n; i++) {
            const struct config__node *s = config__kid(c, v[5], i);
            char *scope = config__string(c, s, "scopes");
            if (!scope)
                continue;
            if (strchr(scope, ' '))
                config__error(c, s->pos, "a scope contains no spaces: list each one");
            openid |= strcmp(scope, "openid") == 0;
            d->scopes[d->nscopes++] = scope;
        }
        /* Without "openid" the IdP answers plain OAuth 2.0: no ID token to verify. */
        if (!openid)
            config__error(c, v[5]->pos, "'scopes' must include openid");
    } else if (!v[5]) {
        static const char *const def[] = {"openid", "email", "profile"};
        d->scopes = config__calloc(c, 3, sizeof *d->scopes);
        for (size_t i = 0; d->scopes && i < 3; i++)
            if ((d->scopes[d->nscopes] = config__strdup(c, def[i])))
                d->nscopes++;
    }
    d->groups_claim = v[6] ? config__string(c, v[6], "groups_claim")
                           : config__strdup(c, "groups");
    char *ev = v[7] ? config__string(c, v[7], "email_verified") : NULL;
    if (ev && !strcmp(ev, "string"))
        d->email_verified = IDP_VERIFIED_STRING;
    else if (ev && !strcmp(ev, "optional"))
        d->email_verified = IDP_VERIFIED_OPTIONAL;
    else if (ev && strcmp(ev, "required"))
        config__error(c, v[7]->pos, "'email_verified' must be required (the default: the ID "
                                    "token says true), string (\"true\" also passes) or optional "
                                    "(absent passes), not '%s'", ev);
    free(ev);
}

/* The path of each oidc provider's redirect URI: the shared callback for a lone provider, one
 * of its own for each when there are several (so that a provider's answer reaching another
 * provider's flow is seen: the mix-up attack, RFC 9207 §1). */
static void config_idp_callbacks(struct config__ctx *c, struct config *cfg)
{
    size_t noidc = 0;
    for (size_t i = 0; i < cfg->nidps; i++)
        noidc += cfg->idps[i].type == IDP_OIDC;
    for (size_t i = 0; i < cfg->nidps; i++) {
        struct idp *d = &cfg->idps[i];
        if (d->type != IDP_OIDC || !d->name)
            continue;
        if (noidc > 1 ? asprintf(&d->callback_path, "/cdn-cgi/access/callback/%s", d->name) < 0
                      : !(d->callback_path = strdup("/cdn-cgi/access/callback"))) {
            d->callback_path = NULL;
            c->oom = true;
        }
    }
}

/* A provider's name is a word of a URL (start?idp=NAME, callback/NAME): RFC 3986 unreserved
 * characters, at most 64. */
static const char *config_idp_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return "must be 1 to 64 characters";
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("-._~", *p)))
            return "may hold only letters, digits, '-', '.', '_' and '~'";
    return NULL;
}

static void config_idps(struct config__ctx *c, const struct config__node *n, struct config *cfg)
{
    if (!config__list(c, n, "identity_providers", "identity providers"))
        return;
    cfg->idps = config__calloc(c, n->n, sizeof *cfg->idps);
    for (size_t i = 0; cfg->idps && i < n->n; i++) {
        const struct config__node *item = config__kid(c, n, i);
        if (item->kind != CONFIG__MAP) {
            config__error(c, item->pos, "an identity provider must be a mapping, got %s",
                          config__kind_name(item));
            continue;
        }
        /* Pass 1: name and type, which decide the keys the rest may use (pass 2 reports
         * unknown and duplicate keys). */
        const struct config__node *v[2] = {config_find(c, item, "name"),
                                           config_find(c, item, "type")};
        struct idp *d = &cfg->idps[cfg->nidps++];
        d->pos = item->pos;
        if (config__required(c, item, v[0], "name", "identity provider") &&
            (d->name = config__string(c, v[0], "name"))) {
            const char *why = config_idp_name(d->name);
            if (why)
                config__error(c, v[0]->pos, "identity provider name '%s' %s", d->name, why);
            for (size_t j = 0; j + 1 < cfg->nidps; j++)
                if (cfg->idps[j].name && !strcmp(cfg->idps[j].name, d->name))
                    config__error(c, v[0]->pos, "duplicate identity provider name '%s'",
                                  d->name);
        }
        char *type = NULL;
        if (config__required(c, item, v[1], "type", "identity provider"))
            type = config__string(c, v[1], "type");
        if (type && !strcmp(type, "onetimepin")) {
            d->type = IDP_ONETIMEPIN;
            config_idp_onetimepin(c, item, d);
        } else if (type && !strcmp(type, "oidc")) {
            d->type = IDP_OIDC;
            config_idp_oidc(c, item, d);
        } else {
            static const char *const types[] = {"onetimepin", "oidc"};
            static const char *const any[] = {"name", "type", "mail", "from", "issuer",
                                              "client_id", "client_secret_file", "scopes",
                                              "groups_claim", "email_verified", NULL};
            const struct config__node *all[10];
            config__map(c, item, "identity provider", any, all);
            char mean[CONFIG__MEAN_MAX];
            if (type)
                config__error(c, v[1]->pos, "'type' must be onetimepin or oidc, not '%s'%s", type,
                              config__mean(mean, type, types, 2));
        }
        free(type);
    }
    config_idp_callbacks(c, cfg);
}

/* ---- service tokens ---- */

static void config_service_token(struct config__ctx *c, const struct config__node *n,
                                 struct config *cfg, struct service_token_cfg *t)
{
    static const char *const keys[] = {"name", "client_id", "secret_sha256", "expires", "ssh", NULL};
    const struct config__node *v[5];
    const char *what = "service token";
    const char *why;
    t->pos = n->pos;
    if (!config__map(c, n, what, keys, v))
        return;
    size_t self = (size_t)(t - cfg->service_tokens);
    if (config__required(c, n, v[0], "name", what) && (t->name = config__string(c, v[0], "name")))
        for (size_t j = 0; j < self; j++)
            if (cfg->service_tokens[j].name && !strcmp(cfg->service_tokens[j].name, t->name))
                config__error(c, v[0]->pos, "duplicate service token name '%s'", t->name);
    if (config__required(c, n, v[1], "client_id", what) &&
        (t->client_id = config__string(c, v[1], "client_id")))
        /* The client id alone picks the token on a request: it must be unique. */
        for (size_t j = 0; j < self; j++)
            if (cfg->service_tokens[j].client_id &&
                !strcmp(cfg->service_tokens[j].client_id, t->client_id))
                config__error(c, v[1]->pos, "client_id '%s' is already used by service token "
                                            "'%s'", t->client_id,
                              cfg->service_tokens[j].name ? cfg->service_tokens[j].name : "?");
    if (config__required(c, n, v[2], "secret_sha256", what) &&
        (t->secret_sha256 = config__string(c, v[2], "secret_sha256"))) {
        config__lower(t->secret_sha256);
        if ((why = config__check_hex64(t->secret_sha256)))
            config__error(c, v[2]->pos, "'secret_sha256' %s (the SHA-256 of the secret)", why);
    }
    char *exp = config__string(c, v[3], "expires");
    if (exp && (why = config__parse_rfc3339(exp, &t->expires)))
        config__error(c, v[3]->pos, "'expires' %s", why);
    free(exp);
    if (v[4])
        config__token_ssh(c, v[4], t);
}

static void config_service_tokens(struct config__ctx *c, const struct config__node *n,
                                  struct config *cfg)
{
    if (!config__list(c, n, "service_tokens", "service tokens"))
        return;
    cfg->service_tokens = config__calloc(c, n->n, sizeof *cfg->service_tokens);
    for (size_t i = 0; cfg->service_tokens && i < n->n; i++)
        config_service_token(c, config__kid(c, n, i), cfg,
                             &cfg->service_tokens[cfg->nservice_tokens++]);
}

/* ---- smaller sections ---- */

static void config_workers(struct config__ctx *c, const struct config__node *n,
                           struct config *cfg)
{
    if (n->kind == CONFIG__SCALAR && !strcmp(n->text, "auto")) {
        cfg->workers = 0;
        return;
    }
    unsigned v = 0;
    bool ok = n->kind == CONFIG__SCALAR && n->len > 0 && n->len <= 3;
    for (size_t i = 0; ok && i < n->len; i++) {
        ok = n->text[i] >= '0' && n->text[i] <= '9';
        v = v * 10 + (unsigned)(n->text[i] - '0');
    }
    if (!ok || v < 1 || v > CONFIG_MAX_WORKERS) {
        config__error(c, n->pos, "'workers' must be auto or a number from 1 to %d",
                      CONFIG_MAX_WORKERS);
        return;
    }
    cfg->workers = v;
}

static void config_store(struct config__ctx *c, const struct config__node *n, struct config *cfg)
{
    char *s = config__string(c, n, "store");
    if (!s)
        return;
    free(cfg->store);
    cfg->store = s;
    if (!strcmp(s, "embedded"))
        return;
    struct config__url u;
    const char *why = config__parse_url(s, &u);
    if (!why && strcmp(u.scheme, "redis") != 0)
        why = "scheme must be redis://";
    if (!why && !u.has_port)
        why = "missing :PORT";
    if (!why && *u.path) {
        /* /db: a database number. */
        const char *p = u.path + 1;
        size_t len = strlen(p);
        bool digits = len > 0 && len <= 5;
        for (size_t i = 0; digits && i < len; i++)
            digits = p[i] >= '0' && p[i] <= '9';
        if (!digits)
            why = "the path is a database number (redis://HOST:PORT/0)";
    }
    if (why)
        config__error(c, n->pos, "'store' must be embedded or redis://HOST:PORT[/DB]: %s", why);
}

static void config_admin(struct config__ctx *c, const struct config__node *n, struct config *cfg)
{
    static const char *const keys[] = {"listen", NULL};
    const struct config__node *v[1];
    if (!config__map(c, n, "admin", keys, v) || !v[0])
        return;
    cfg->metrics_listen = config__string(c, v[0], "listen");
    struct listener_cfg tmp = {0};
    const char *why;
    if (cfg->metrics_listen &&
        (why = config__check_address(cfg->metrics_listen, &tmp.addr, &tmp.addrlen))) {
        config__error(c, v[0]->pos, "invalid admin listen address '%s': %s", cfg->metrics_listen,
                      why);
        return;
    }
    /* /metrics has no authentication: serve it on loopback or on one chosen address (a
     * management network), never on every interface by default. */
    bool any = (tmp.addr.ss_family == AF_INET &&
                ((const struct sockaddr_in *)&tmp.addr)->sin_addr.s_addr == htonl(INADDR_ANY)) ||
               (tmp.addr.ss_family == AF_INET6 &&
                IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&tmp.addr)->sin6_addr));
    if (cfg->metrics_listen && any) {
        config__error(c, v[0]->pos, "admin listen address '%s' is every interface: metrics have no "
                      "authentication; use a loopback address (127.0.0.1:9145) or a specific one",
                      cfg->metrics_listen);
        return;
    }
    if (cfg->metrics_listen) {
        memcpy(&cfg->metrics_addr, &tmp.addr, sizeof tmp.addr);
        cfg->metrics_addrlen = tmp.addrlen;
    }
    for (size_t i = 0; cfg->metrics_listen && i < cfg->nlisteners; i++)
        if (config_same_addr(&cfg->listeners[i], &tmp))
            config__error(c, v[0]->pos, "admin listen address '%s' is also a listen address",
                          cfg->metrics_listen);
}

static void config_trusted_proxies(struct config__ctx *c, const struct config__node *n,
                                   struct config *cfg)
{
    if (!config__list(c, n, "trusted_proxies", "CIDRs"))
        return;
    cfg->trusted_proxies = config__calloc(c, n->n, sizeof *cfg->trusted_proxies);
    for (size_t i = 0; cfg->trusted_proxies && i < n->n; i++) {
        const struct config__node *item = config__kid(c, n, i);
        char *s = config__string(c, item, "trusted_proxies");
        if (s && config_parse_cidr(s, &cfg->trusted_proxies[cfg->ntrusted_proxies]) == 0)
            cfg->ntrusted_proxies++;
        else if (s)
            config__error(c, item->pos, "invalid CIDR '%s' in 'trusted_proxies' (e.g. "
                                        "10.0.0.0/8 or fd00::/8)", s);
        free(s);
    }
}

static void config_keys(struct config__ctx *c, const struct config__node *n, struct config *cfg)
{
    static const char *const keys[] = {"rotation", "overlap", NULL};
    const struct config__node *v[2];
    if (!config__map(c, n, "keys", keys, v))
        return;
    if (v[0])
        config__duration_s(c, v[0], "rotation", &cfg->key_rotation_s);
    if (v[1])
        config__duration_s(c, v[1], "overlap", &cfg->key_overlap_s);
}

static void config_set_string(struct config__ctx *c, const struct config__node *n, const char *key,
                            char **dest)
{
    char *s = config__string(c, n, key);
    if (!s)
        return;
    free(*dest);
    *dest = s;
}

static void config_log(struct config__ctx *c, const struct config__node *n, struct config *cfg)
{
    static const char *const keys[] = {"requests", "auth", "format", NULL};
    const struct config__node *v[3];
    if (!config__map(c, n, "log", keys, v))
        return;
    if (v[0]) {
        config_set_string(c, v[0], "requests", &cfg->log.requests);
        cfg->where.log_requests = v[0]->pos;
    }
    if (v[1]) {
        config_set_string(c, v[1], "auth", &cfg->log.auth);
        cfg->where.log_auth = v[1]->pos;
    }
    char *fmt = config__string(c, v[2], "format");
    if (fmt && strcmp(fmt, "json") != 0)
        config__error(c, v[2]->pos, "'format' must be json");
    free(fmt);
}

static void config_timeouts(struct config__ctx *c, const struct config__node *n,
                            struct config *cfg)
{
    static const char *const keys[] = {"header", "idle", "client", "origin_connect",
                                       "origin_response", "drain", "tunnel_idle", NULL};
    uint32_t *dst[] = {&cfg->timeouts.header_ms,         &cfg->timeouts.idle_ms,
                       &cfg->timeouts.client_ms,         &cfg->timeouts.origin_connect_ms,
                       &cfg->timeouts.origin_response_ms, &cfg->timeouts.drain_ms,
                       &cfg->timeouts.tunnel_idle_ms};
    const struct config__node *v[7];
    if (!config__map(c, n, "timeouts", keys, v))
        return;
    for (size_t i = 0; i < 7; i++) {
        int64_t ms;
        if (v[i] && config__duration_ms(c, v[i], keys[i], UINT32_MAX, &ms))
            *dst[i] = (uint32_t)ms;
    }
}

static void config_auth_domain(struct config__ctx *c, const struct config__node *n,
                               struct config *cfg)
{
    cfg->auth_domain = config__string(c, n, "auth_domain");
    cfg->where.auth_domain = n->pos;
    if (!cfg->auth_domain)
        return;
    config__lower(cfg->auth_domain);
    const char *why = config__check_hostport(cfg->auth_domain);
    if (why)
        config__error(c, n->pos, "invalid 'auth_domain' '%s': %s", cfg->auth_domain, why);
}

/* `subaddress_separators: "+-"`: the characters after which the mail system reads a tag
 * (a+tag@x reaches a@x), so that a block or an exclude naming a@x refuses a+tag@x too. */
static void config_subaddress_separators(struct config__ctx *c, const struct config__node *n,
                                         struct config *cfg)
{
    char *s = config__string(c, n, "subaddress_separators");
    if (!s)
        return;
    for (const char *p = s; *p; p++) {
        if (!email_separator_ok(*p) || strchr(p + 1, *p)) {
            char bad[8] = "a space";
            if (*p > 0x20 && *p < 0x7f)
                snprintf(bad, sizeof bad, "'%c'", *p);
            else if (*p != ' ')
                snprintf(bad, sizeof bad, "byte %02x", (unsigned char)*p);
            config__error(c, n->pos, "'subaddress_separators' lists characters such as \"+\" or "
                                     "\"+-\", each once, from #$&'*+-/=?^_`{|}~ (not %s)", bad);
            free(s);
            return;
        }
    }
    cfg->subaddress_separators = s;
}

/* ---- the whole file ---- */

static bool config_defaults(struct config__ctx *c, struct config *cfg, const char *name)
{
    cfg->path = config__strdup(c, name);
    cfg->state_dir = config__strdup(c, "/var/lib/latch");
    cfg->store = config__strdup(c, "embedded");
    cfg->log.requests = config__strdup(c, "stdout");
    cfg->log.auth = config__strdup(c, "stdout");
    cfg->log.format = LOG_FORMAT_JSON;
    cfg->session_duration_s = 24 * 3600;
    cfg->key_rotation_s = 6 * 7 * 86400;
    cfg->key_overlap_s = 7 * 86400;
    cfg->timeouts = (struct timeouts_cfg){.header_ms = 10000,
                                          .idle_ms = 60000,
                                          .client_ms = 60000,
                                          .origin_connect_ms = 5000,
                                          .origin_response_ms = 60000,
                                          .drain_ms = 30000,
                                          .tunnel_idle_ms = 3600000};
    cfg->max_connections_per_client = 256;
    cfg->http2 = (struct http2_cfg){ .max_concurrent_streams = 100, .initial_window_size = 65535,
                                     .max_header_list_size = 32768 };
    return !c->oom;
}

enum {
    K_LISTEN, K_WORKERS, K_STATE_DIR, K_STORE, K_STORE_KEY_FILE, K_ADMIN, K_AUTH_DOMAIN,
    K_TRUSTED_PROXIES, K_SESSION_DURATION, K_KEYS, K_LOG, K_IDPS, K_SERVICE_TOKENS, K_APPS,
    K_TIMEOUTS, K_STORE_PASSWORD_FILE, K_MAX_CONNS_PER_CLIENT, K_HSTS, K_SUBADDRESS_SEPARATORS,
    K_BRANDING, K_HTTP2, K_COUNT
};

static void config_root(struct config__ctx *c, const struct config__node *root,
                        struct config *cfg)
{
    static const char *const keys[] = {
        "listen",           "workers", "state_dir", "store",              "store_key_file",
        "admin",            "auth_domain",          "trusted_proxies",    "session_duration",
        "keys",             "log",     "identity_providers", "service_tokens", "apps",
        "timeouts",         "store_password_file", "max_connections_per_client", "hsts",
        "subaddress_separators", "branding", "http2", NULL};
    const struct config__node *v[K_COUNT];
    if (!config__map(c, root, "the configuration", keys, v))
        return;
    if (config__required(c, root, v[K_LISTEN], "listen", "the configuration"))
        config_listeners(c, v[K_LISTEN], cfg);
    if (v[K_WORKERS])
        config_workers(c, v[K_WORKERS], cfg);
    if (v[K_STATE_DIR]) {
        config_set_string(c, v[K_STATE_DIR], "state_dir", &cfg->state_dir);
        cfg->where.state_dir = v[K_STATE_DIR]->pos;
    }
    if (v[K_STORE])
        config_store(c, v[K_STORE], cfg);
    if (v[K_STORE_KEY_FILE]) {
        cfg->store_key_file = config__string(c, v[K_STORE_KEY_FILE], "store_key_file");
        cfg->where.store_key_file = v[K_STORE_KEY_FILE]->pos;
    }
    /* Several nodes keep private keys in Redis: sealed with this key, never in the clear. */
    if (!strncmp(cfg->store, "redis:", 6) && !v[K_STORE_KEY_FILE])
        config__error(c, v[K_STORE]->pos, "'store_key_file' is required with a redis store");
    if (v[K_STORE_PASSWORD_FILE]) { /* Redis AUTH (requirepass) */
        cfg->store_password_file = config__string(c, v[K_STORE_PASSWORD_FILE],
                                                  "store_password_file");
        cfg->where.store_password_file = v[K_STORE_PASSWORD_FILE]->pos;
    }
    if (v[K_ADMIN])
        config_admin(c, v[K_ADMIN], cfg);
    if (v[K_AUTH_DOMAIN])
        config_auth_domain(c, v[K_AUTH_DOMAIN], cfg);
    if (v[K_TRUSTED_PROXIES])
        config_trusted_proxies(c, v[K_TRUSTED_PROXIES], cfg);
    if (v[K_SESSION_DURATION])
        config__duration_s(c, v[K_SESSION_DURATION], "session_duration",
                           &cfg->session_duration_s);
    if (v[K_KEYS])
        config_keys(c, v[K_KEYS], cfg);
    if (v[K_LOG])
        config_log(c, v[K_LOG], cfg);
    if (v[K_TIMEOUTS])
        config_timeouts(c, v[K_TIMEOUTS], cfg);
    if (v[K_MAX_CONNS_PER_CLIENT])
        config__max_connections_per_client(c, v[K_MAX_CONNS_PER_CLIENT], cfg);
    if (v[K_HSTS])
        config__hsts(c, v[K_HSTS], cfg);
    if (v[K_BRANDING])
        config__branding(c, v[K_BRANDING], cfg);
    if (v[K_HTTP2])
        config__http2(c, v[K_HTTP2], cfg);
    /* Apps refer to identity providers and service tokens by name: those come first. */
    if (v[K_IDPS])
        config_idps(c, v[K_IDPS], cfg);
    if (v[K_SERVICE_TOKENS])
        config_service_tokens(c, v[K_SERVICE_TOKENS], cfg);
    if (v[K_SUBADDRESS_SEPARATORS])
        config_subaddress_separators(c, v[K_SUBADDRESS_SEPARATORS], cfg);
    if (v[K_APPS])
        config__apps_load(c, v[K_APPS], cfg);
    for (size_t i = 0; i < cfg->napps; i++)
        cfg->apps[i].subaddress_separators = cfg->subaddress_separators;

    /* People log in on the auth domain: an app that admits people needs one. */
    if (!v[K_AUTH_DOMAIN]) {
        for (size_t i = 0; i < cfg->napps; i++) {
            const struct app *a = &cfg->apps[i];
            size_t p = 0;
            while (p < a->npolicies && a->policies[p].decision != DECISION_ALLOW)
                p++;
            if (p < a->npolicies) {
                config__error(c, a->policies[p].pos, "'auth_domain' is required: policy '%s' "
                              "of app '%s' allows people, who log in there",
                              a->policies[p].name ? a->policies[p].name : "?",
                              a->name ? a->name : "?");
                break;
            }
        }
    }
}

struct config *config_load_buffer(const char *name, const char *data, size_t len,
                                  struct config_errors *errs)
{
    struct config__ctx c = {.name = name ? name : "<config>"};
    struct config *cfg = config__calloc(&c, 1, sizeof *cfg);
    if (cfg && config_defaults(&c, cfg, c.name)) {
        const struct config__node *root = config__tree_load(&c, data ? data : "", data ? len : 0);
        if (root)
            config_root(&c, root, cfg);
    }
    if (c.nerrs || c.oom) {
        config__errors_flush(&c, errs);
        config_free(cfg);
        cfg = NULL;
    }
    config__ctx_free(&c);
    return cfg;
}

struct config *config_load(const char *path, struct config_errors *errs)
{
    struct config *cfg = NULL;
    struct config__ctx c = {.name = path};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        config__error(&c, (struct config_pos){1, 1}, "cannot open: %s", strerror(errno));
        goto out;
    }
    buf = malloc(CONFIG__MAX_INPUT + 1);
    if (!buf) {
        c.oom = true;
        goto out;
    }
    len = fread(buf, 1, CONFIG__MAX_INPUT + 1, f);
    if (ferror(f)) {
        config__error(&c, (struct config_pos){1, 1}, "cannot read: %s", strerror(errno));
        goto out;
    }
    cfg = config_load_buffer(path, buf, len, errs);
out:
    if (f)
        fclose(f);
    free(buf);
    config__errors_flush(&c, errs);
    config__ctx_free(&c);
    return cfg;
}

static void config_strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int64_t config_longest_session_s(const struct config *cfg)
{
    int64_t max = cfg->session_duration_s;
    for (size_t i = 0; i < cfg->napps; i++) {
        const struct app *a = &cfg->apps[i];
        if (a->session_duration_s > max)
            max = a->session_duration_s;
        for (size_t k = 0; k < a->npolicies; k++)
            if (a->policies[k].session_duration_s > max)
                max = a->policies[k].session_duration_s;
    }
    return max;
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    free(cfg->path);
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        struct listener_cfg *l = &cfg->listeners[i];
        free(l->address);
        for (size_t j = 0; j < l->ncerts; j++) {
            free(l->certs[j].cert);
            free(l->certs[j].key);
        }
        free(l->certs);
        free(l->client_ca);
    }
    free(cfg->listeners);
    free(cfg->state_dir);
    free(cfg->store);
    free(cfg->store_key_file);
    free(cfg->store_password_file);
    free(cfg->metrics_listen);
    free(cfg->auth_domain);
    free(cfg->trusted_proxies);
    free(cfg->hsts_header);
    config__branding_free(&cfg->branding);
    free(cfg->subaddress_separators);
    free(cfg->log.requests);
    free(cfg->log.auth);
    for (size_t i = 0; i < cfg->nidps; i++) {
        struct idp *d = &cfg->idps[i];
        free(d->name);
        free(d->mail);
        free(d->from);
        free(d->issuer);
        free(d->client_id);
        free(d->client_secret_file);
        config_strv_free(d->scopes, d->nscopes);
        free(d->groups_claim);
        free(d->callback_path);
    }
    free(cfg->idps);
    for (size_t i = 0; i < cfg->nservice_tokens; i++) {
        free(cfg->service_tokens[i].name);
        free(cfg->service_tokens[i].client_id);
        free(cfg->service_tokens[i].secret_sha256);
        config__token_ssh_free(&cfg->service_tokens[i]);
    }
    free(cfg->service_tokens);
    for (size_t i = 0; i < cfg->napps; i++)
        config__app_free(&cfg->apps[i]);
    free(cfg->apps);
    free(cfg);
}
