/* The `apps:` section of the configuration (SPEC.md §2): domain patterns, origins, policies and
 * their selectors, with the cross-checks against identity providers and service tokens. */
#include "config/config-int.h"
#include "core/email.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a selector's value must be. */
enum config_selval {
    VAL_EMPTY,      /* {} : the selector takes no argument */
    VAL_EMAIL,      /* one well-formed address, lowercased */
    VAL_DOMAIN,     /* an e-mail domain without '@', lowercased */
    VAL_EMAIL_LIST, /* a non-empty list of addresses */
    VAL_CIDR,
    VAL_STRING,
    VAL_IDP,        /* the name of a configured identity provider */
    VAL_TOKEN,      /* the name of a configured service token */
};

static const struct {
    const char *key;
    enum selector_kind kind;
    enum config_selval val;
} config_selectors_table[] = {
    {"everyone", SEL_EVERYONE, VAL_EMPTY},
    {"email", SEL_EMAIL, VAL_EMAIL},
    {"email_domain", SEL_EMAIL_DOMAIN, VAL_DOMAIN},
    {"email_list", SEL_EMAIL_LIST, VAL_EMAIL_LIST},
    {"ip", SEL_IP, VAL_CIDR},
    {"group", SEL_GROUP, VAL_STRING},
    {"idp", SEL_IDP, VAL_IDP},
    {"auth_method", SEL_AUTH_METHOD, VAL_STRING},
    {"service_token", SEL_SERVICE_TOKEN, VAL_TOKEN},
    {"any_valid_service_token", SEL_ANY_VALID_SERVICE_TOKEN, VAL_EMPTY},
    {"certificate", SEL_CERTIFICATE, VAL_EMPTY},
    {"common_name", SEL_COMMON_NAME, VAL_STRING},
};

#define CONFIG_NSELECTORS (sizeof config_selectors_table / sizeof config_selectors_table[0])

/* An address for `email`/`email_list`, lowercased; NULL after an error. */
static char *config_email(struct config__ctx *c, const struct config__node *n, const char *key)
{
    char *s = config__string(c, n, key);
    const char *why;
    if (!s)
        return NULL;
    config__lower(s);
    if ((why = email_check(s))) {
        config__error(c, n->pos, "invalid e-mail address '%s' in '%s': %s", s, key, why);
        free(s);
        return NULL;
    }
    return s;
}

/* " (did you mean 'x'?)" for a name that is a likely typo of a configured identity provider's
 * (idps) or service token's. */
static const char *config_name_mean(char out[CONFIG__MEAN_MAX], const struct config *cfg,
                                    bool idps, const char *typed)
{
    size_t n = idps ? cfg->nidps : cfg->nservice_tokens;
    const char **names = calloc(n ? n : 1, sizeof *names);
    out[0] = '\0';
    if (!names)
        return out;
    for (size_t i = 0; i < n; i++)
        names[i] = idps ? cfg->idps[i].name : cfg->service_tokens[i].name;
    config__mean(out, typed, names, n);
    free(names);
    return out;
}

static void config_selector_value(struct config__ctx *c, const struct config__node *v,
                                  const char *key, enum config_selval val,
                                  const struct config *cfg, struct selector *s)
{
    char mean[CONFIG__MEAN_MAX];
    switch (val) {
    case VAL_EMPTY:
        /* `everyone: {}`; a bare `everyone:` (null) means the same. Anything else is a
         * misunderstanding worth pointing out. */
        if (!(v->kind == CONFIG__MAP && v->n == 0) && !config__is_null(v))
            config__error(c, v->pos, "'%s' takes no value: write %s: {}", key, key);
        return;
    case VAL_EMAIL:
        s->value = config_email(c, v, key);
        return;
    case VAL_DOMAIN:
        if (!(s->value = config__string(c, v, key)))
            return;
        config__lower(s->value);
        if (strchr(s->value, '@'))
            config__error(c, v->pos, "'email_domain' is a domain without '@' (e.g. "
                                     "example.com)");
        else if (config__check_dns_name(s->value))
            config__error(c, v->pos, "invalid domain '%s' in 'email_domain': %s", s->value,
                          config__check_dns_name(s->value));
        return;
    case VAL_EMAIL_LIST:
        if (!config__list(c, v, key, "e-mail addresses"))
            return;
        if (v->n == 0) {
            config__error(c, v->pos, "'email_list' must list at least one address");
            return;
        }
        s->list = config__calloc(c, v->n, sizeof *s->list);
        for (size_t i = 0; s->list && i < v->n; i++) {
            char *e = config_email(c, config__kid(c, v, i), key);
            if (e)
                s->list[s->nlist++] = e;
        }
        return;
    case VAL_CIDR:
        if (!(s->value = config__string(c, v, key)))
            return;
        if (config_parse_cidr(s->value, &s->cidr) != 0)
            config__error(c, v->pos, "invalid CIDR '%s' in 'ip' (e.g. 10.0.0.0/8, "
                                     "192.168.1.7 or fd00::/8)", s->value);
        return;
    case VAL_STRING:
        s->value = config__string(c, v, key);
        return;
    case VAL_IDP:
        if (!(s->value = config__string(c, v, key)))
            return;
        for (size_t i = 0; i < cfg->nidps; i++)
            if (cfg->idps[i].name && !strcmp(cfg->idps[i].name, s->value))
                return;
        config__error(c, v->pos, "'idp' names no identity provider: '%s'%s", s->value,
                      config_name_mean(mean, cfg, true, s->value));
        return;
    case VAL_TOKEN:
        if (!(s->value = config__string(c, v, key)))
            return;
        for (size_t i = 0; i < cfg->nservice_tokens; i++)
            if (cfg->service_tokens[i].name && !strcmp(cfg->service_tokens[i].name, s->value))
                return;
        if (!strncmp(cfg->store, "redis:", 6)) /* made by `latchd service-token create`, shared */
            return;
        config__error(c, v->pos, "'service_token' names no service token: '%s'%s", s->value,
                      config_name_mean(mean, cfg, false, s->value));
        return;
    }
}

/* One selector: a one-key map from config_selectors_table. False when it is unusable. */
static bool config_selector(struct config__ctx *c, const struct config__node *n,
                            const struct config *cfg, struct selector *s)
{
    s->pos = n->pos;
    /* One key per selector, so that `{email: a, group: b}` cannot be read as AND or OR. */
    if (n->kind != CONFIG__MAP || n->n != 2) {
        config__error(c, n->pos, "a selector must be a mapping with exactly one key, e.g. "
                                 "{ email: someone@example.com }");
        return false;
    }
    const struct config__node *k = config__kid(c, n, 0);
    if (k->kind != CONFIG__SCALAR) {
        config__error(c, k->pos, "a selector's key must be a string");
        return false;
    }
    size_t i = 0;
    while (i < CONFIG_NSELECTORS && strcmp(config_selectors_table[i].key, k->text) != 0)
        i++;
    if (i == CONFIG_NSELECTORS) {
        const char *names[CONFIG_NSELECTORS];
        for (size_t j = 0; j < CONFIG_NSELECTORS; j++)
            names[j] = config_selectors_table[j].key;
        config__unknown(c, k->pos, "selector", k->text, "a policy", names, CONFIG_NSELECTORS);
        return false;
    }
    s->kind = config_selectors_table[i].kind;
    config_selector_value(c, config__kid(c, n, 1), k->text, config_selectors_table[i].val, cfg,
                          s);
    return true;
}

static void config_selector_free(struct selector *s)
{
    free(s->value);
    for (size_t i = 0; i < s->nlist; i++)
        free(s->list[i]);
    free(s->list);
}

static void config_selectors(struct config__ctx *c, const struct config__node *n,
                             const char *key, const struct config *cfg, struct selector **out,
                             size_t *nout)
{
    if (!config__list(c, n, key, "selectors"))
        return;
    *out = config__calloc(c, n->n, sizeof **out);
    for (size_t i = 0; *out && i < n->n; i++) {
        struct selector *s = &(*out)[*nout];
        if (config_selector(c, config__kid(c, n, i), cfg, s))
            (*nout)++;
        else
            config_selector_free(s);
    }
}

static bool config_decision(const char *s, enum policy_decision *d)
{
    static const struct {
        const char *name;
        enum policy_decision d;
    } names[] = {{"allow", DECISION_ALLOW},
                 {"block", DECISION_BLOCK},
                 {"bypass", DECISION_BYPASS},
                 {"service_auth", DECISION_SERVICE_AUTH}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!strcmp(s, names[i].name)) {
            *d = names[i].d;
            return true;
        }
    }
    return false;
}

static void config_policy(struct config__ctx *c, const struct config__node *n,
                          const struct config *cfg, struct app *a, struct policy *p)
{
    static const char *const keys[] = {"name",    "decision", "include", "require",
                                       "exclude", "session_duration", NULL};
    const struct config__node *v[6];
    p->pos = n->pos;
    if (!config__map(c, n, "policy", keys, v))
        return;
    if (config__required(c, n, v[0], "name", "policy") &&
        (p->name = config__string(c, v[0], "name"))) {
        for (struct policy *q = a->policies; q < p; q++)
            if (q->name && !strcmp(q->name, p->name))
                config__error(c, v[0]->pos, "duplicate policy name '%s' in app '%s'", p->name,
                              a->name ? a->name : "?");
    }
    char *d = NULL;
    if (config__required(c, n, v[1], "decision", "policy") &&
        (d = config__string(c, v[1], "decision")) && !config_decision(d, &p->decision)) {
        p->decision = DECISION_BLOCK; /* fail closed; the config is refused anyway */
        static const char *const names[] = {"allow", "block", "bypass", "service_auth"};
        char mean[CONFIG__MEAN_MAX];
        config__error(c, v[1]->pos, "'decision' must be allow, block, bypass or service_auth, "
                                    "not '%s'%s", d, config__mean(mean, d, names, 4));
    }
    free(d);
    /* An empty include would match nobody (or, read carelessly, everybody): refused. */
    if (config__required(c, n, v[2], "include", "policy")) {
        config_selectors(c, v[2], "include", cfg, &p->include, &p->ninclude);
        if (v[2]->kind == CONFIG__SEQ && v[2]->n == 0)
            config__error(c, v[2]->pos, "'include' must list at least one selector "
                                        "(use { everyone: {} } for everybody)");
    }
    if (v[3])
        config_selectors(c, v[3], "require", cfg, &p->require, &p->nrequire);
    if (v[4])
        config_selectors(c, v[4], "exclude", cfg, &p->exclude, &p->nexclude);
    if (v[5])
        config__duration_s(c, v[5], "session_duration", &p->session_duration_s);
}

static void config_origin_tls(struct config__ctx *c, const struct config__node *n,
                              struct origin *o)
{
    static const char *const keys[] = {"ca_file", "verify", NULL};
    const struct config__node *v[2];
    if (!config__map(c, n, "origin_tls", keys, v))
        return;
    /* TLS settings for a plain-HTTP origin would be silently unused: refused. */
    if (o->kind == ORIGIN_ECHO || o->kind == ORIGIN_TCP || (o->kind == ORIGIN_HTTP && o->host))
        config__error(c, n->pos, "'origin_tls' needs an https:// or h2:// origin");
    if (v[0]) {
        o->ca_file = config__string(c, v[0], "ca_file");
        o->ca_file_pos = v[0]->pos;
    }
    if (v[1])
        config__bool(c, v[1], "verify", &o->tls_verify);
}

static void config_origin(struct config__ctx *c, const struct config__node *n, struct origin *o)
{
    struct config__url u;
    const char *why;
    if (!(o->url = config__string(c, n, "origin")))
        return;
    if (!strcmp(o->url, "echo")) {
        o->kind = ORIGIN_ECHO;
        o->host = config__strdup(c, "");
        o->hostport = config__strdup(c, "");
        o->base = config__strdup(c, "");
        return;
    }
    why = config__parse_url(o->url, &u);
    bool tcp = !why && !strcmp(u.scheme, "tcp");
    bool tls = !why && (!strcmp(u.scheme, "https") || !strcmp(u.scheme, "h2"));
    if (!why && !tcp && !tls && strcmp(u.scheme, "http") && strcmp(u.scheme, "h2c"))
        why = "scheme must be http://, https://, h2c://, h2:// or tcp://";
    else if (tcp && !u.has_port)
        why = "a tcp:// origin needs a port";
    else if (tcp && *u.path)
        why = "a tcp:// origin has no path";
    if (why) {
        config__error(c, n->pos, "invalid 'origin' '%s': %s (expected "
                                 "http(s)://HOST[:PORT][/BASE], h2c:// or h2://HOST[:PORT][/BASE], "
                                 "tcp://HOST:PORT or echo)", o->url, why);
        return;
    }
    o->kind = tcp ? ORIGIN_TCP : tls ? ORIGIN_HTTPS : ORIGIN_HTTP;
    o->h2 = !strcmp(u.scheme, "h2c") || !strcmp(u.scheme, "h2");
    o->port = u.has_port ? u.port : (o->kind == ORIGIN_HTTPS ? 443 : 80);
    o->host = config__strdup(c, u.host);
    if (asprintf(&o->hostport, u.v6 ? "[%s]:%u" : "%s:%u", u.host, (unsigned)o->port) < 0) {
        o->hostport = NULL;
        c->oom = true;
    }
    size_t bl = strlen(u.path);
    while (bl > 0 && u.path[bl - 1] == '/')
        bl--;
    o->base = strndup(u.path, bl);
    if (!o->base)
        c->oom = true;
}

/* The domain patterns; the host part is lowercased (hosts compare case-insensitively), the path
 * part kept (paths match case-sensitively). */
static void config_domains(struct config__ctx *c, const struct config__node *n,
                           const struct config *cfg, struct app *a)
{
    if (!config__list(c, n, "domains", "host[:port][/path] patterns"))
        return;
    if (n->n == 0) {
        config__error(c, n->pos, "'domains' must list at least one host pattern");
        return;
    }
    a->domains = config__calloc(c, n->n, sizeof *a->domains);
    a->domain_pos = config__calloc(c, n->n, sizeof *a->domain_pos);
    for (size_t i = 0; a->domains && a->domain_pos && i < n->n; i++) {
        const struct config__node *item = config__kid(c, n, i);
        char *d = config__string(c, item, "domains");
        if (!d)
            continue;
        char *slash = strchr(d, '/');
        if (slash)
            *slash = '\0';
        config__lower(d);
        if (slash)
            *slash = '/';
        /* Its syntax is checked where routes are compiled (server/runtime.c). Two apps with
         * the same pattern: which one's rules apply would be arbitrary. */
        for (size_t j = 0; j < a->ndomains; j++)
            if (!strcmp(a->domains[j], d))
                config__error(c, item->pos, "duplicate domain pattern '%s' in app", d);
        const struct app *other = NULL;
        for (const struct app *o = cfg->apps; !other && o < a; o++)
            for (size_t j = 0; !other && j < o->ndomains; j++)
                if (!strcmp(o->domains[j], d))
                    other = o;
        if (other)
            config__error(c, item->pos, "domain pattern '%s' is already used by app '%s'", d,
                          other->name ? other->name : "?");
        a->domain_pos[a->ndomains] = item->pos;
        a->domains[a->ndomains++] = d;
    }
}

static void config_allowed_idps(struct config__ctx *c, const struct config__node *n,
                                const struct config *cfg, struct app *a)
{
    if (!config__list(c, n, "allowed_idps", "identity provider names"))
        return;
    a->allowed_idps = config__calloc(c, n->n, sizeof *a->allowed_idps);
    for (size_t i = 0; a->allowed_idps && i < n->n; i++) {
        const struct config__node *item = config__kid(c, n, i);
        char *name = config__string(c, item, "allowed_idps");
        if (!name)
            continue;
        bool known = false;
        for (size_t j = 0; j < cfg->nidps; j++)
            known |= cfg->idps[j].name && !strcmp(cfg->idps[j].name, name);
        char mean[CONFIG__MEAN_MAX];
        if (!known)
            config__error(c, item->pos, "'allowed_idps' names no identity provider: '%s'%s",
                          name, config_name_mean(mean, cfg, true, name));
        for (size_t j = 0; j < a->nallowed_idps; j++)
            if (!strcmp(a->allowed_idps[j], name))
                config__error(c, item->pos, "'%s' is listed twice in 'allowed_idps'", name);
        a->allowed_idps[a->nallowed_idps++] = name;
    }
}

static void config_app(struct config__ctx *c, const struct config__node *n,
                       const struct config *cfg, struct app *a)
{
    static const char *const keys[] = {"name",         "domains", "origin",
                                       "origin_tls",   "preserve_host",
                                       "session_duration", "allowed_idps", "aud", "policies",
                                       "read_service_tokens_from_header", "keep_client_headers",
                                       "display_name", "ssh", NULL};
    const struct config__node *v[13];
    a->pos = n->pos;
    a->origin.tls_verify = true;
    a->origin.preserve_host = true;
    if (!config__map(c, n, "app", keys, v))
        return;
    if (config__required(c, n, v[0], "name", "app") &&
        (a->name = config__string(c, v[0], "name"))) {
        for (const struct app *o = cfg->apps; o < a; o++)
            if (o->name && !strcmp(o->name, a->name))
                config__error(c, v[0]->pos, "duplicate app name '%s'", a->name);
    }
    if (config__required(c, n, v[1], "domains", "app"))
        config_domains(c, v[1], cfg, a);
    config__display_name(c, v[11], a);
    if (config__required(c, n, v[2], "origin", "app"))
        config_origin(c, v[2], &a->origin);
    if (v[3])
        config_origin_tls(c, v[3], &a->origin);
    if (v[4])
        config__bool(c, v[4], "preserve_host", &a->origin.preserve_host);
    if (v[4] && a->origin.kind == ORIGIN_TCP) /* no HTTP reaches a tcp:// origin: silently unused */
        config__error(c, v[4]->pos, "'preserve_host' needs an http:// or https:// origin");
    if (v[5])
        config__duration_s(c, v[5], "session_duration", &a->session_duration_s);
    if (v[6])
        config_allowed_idps(c, v[6], cfg, a);
    if (v[7] && (a->aud = config__string(c, v[7], "aud"))) {
        config__lower(a->aud);
        const char *why = config__check_hex64(a->aud);
        if (why)
            config__error(c, v[7]->pos, "'aud' %s", why);
        /* The AUD is what a token is bound to: two apps sharing one would accept each other's
         * tokens. */
        for (const struct app *o = cfg->apps; !why && o < a; o++)
            if (o->aud && !strcmp(o->aud, a->aud))
                config__error(c, v[7]->pos, "'aud' is already used by app '%s'",
                              o->name ? o->name : "?");
    }
    /* The single-header form of service tokens, for clients that can set only one header. */
    if (v[9] && (a->service_token_header = config__string(c, v[9], "read_service_tokens_from_header"))) {
        config__lower(a->service_token_header);
        for (const char *p = a->service_token_header; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
                config__error(c, v[9]->pos, "'read_service_tokens_from_header' must be a header name");
    }
    if (v[10])
        config__keep_client_headers(c, v[10], a);
    if (v[12])
        config__app_ssh(c, v[12], a);
    /* Policies are the point of an app: without one every request would be denied. */
    if (config__required(c, n, v[8], "policies", "app") &&
        config__list(c, v[8], "policies", "policies")) {
        if (v[8]->n == 0)
            config__error(c, v[8]->pos, "'policies' must list at least one policy");
        a->policies = config__calloc(c, v[8]->n, sizeof *a->policies);
        for (size_t i = 0; a->policies && i < v[8]->n; i++)
            config_policy(c, config__kid(c, v[8], i), cfg, a, &a->policies[a->npolicies++]);
    }
}

void config__apps_load(struct config__ctx *c, const struct config__node *apps,
                       struct config *cfg)
{
    if (!config__list(c, apps, "apps", "apps"))
        return;
    cfg->apps = config__calloc(c, apps->n, sizeof *cfg->apps);
    for (size_t i = 0; cfg->apps && i < apps->n; i++)
        config_app(c, config__kid(c, apps, i), cfg, &cfg->apps[cfg->napps++]);
}

static void config_selectors_free(struct selector *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        config_selector_free(&s[i]);
    free(s);
}

void config__app_free(struct app *a)
{
    free(a->name);
    free(a->display_name);
    for (size_t i = 0; i < a->ndomains; i++)
        free(a->domains[i]);
    free(a->domains);
    free(a->domain_pos);
    free(a->origin.url);
    free(a->origin.host);
    free(a->origin.hostport);
    free(a->origin.base);
    free(a->origin.ca_file);
    free(a->service_token_header);
    for (size_t i = 0; i < a->nkeep_client_headers; i++)
        free(a->keep_client_headers[i]);
    free(a->keep_client_headers);
    config__app_ssh_free(a->ssh);
    for (size_t i = 0; i < a->npolicies; i++) {
        struct policy *p = &a->policies[i];
        free(p->name);
        config_selectors_free(p->include, p->ninclude);
        config_selectors_free(p->require, p->nrequire);
        config_selectors_free(p->exclude, p->nexclude);
    }
    free(a->policies);
    for (size_t i = 0; i < a->nallowed_idps; i++)
        free(a->allowed_idps[i]);
    free(a->allowed_idps);
    free(a->aud);
}
