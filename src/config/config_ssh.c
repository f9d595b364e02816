/* `ssh:` on an app (short-lived SSH certificates: whom cert_sign signs for, as which principals,
 * for how long) and on a service token (its principals). */
#include "config/config-int.h"

#include "core/sshname.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const config_ssh_vars[] = { "email", "email_local", "service_token" };

/* Why a principal entry cannot be used, or NULL: it names only known templates, and with each
 * template standing for "x" it is a safe name (so its literal parts are safe). */
static const char *config_ssh_principal_why(const char *s)
{
    char probe[SSH_PRINCIPAL_MAX + 2];
    size_t np = 0;
    for (const char *p = s; *p && np <= SSH_PRINCIPAL_MAX;) {
        if (*p != '{') {
            probe[np++] = *p++;
            continue;
        }
        const char *e = strchr(p, '}');
        size_t n = e ? (size_t)(e - p - 1) : 0, k;
        for (k = 0; e && k < sizeof config_ssh_vars / sizeof *config_ssh_vars; k++)
            if (strlen(config_ssh_vars[k]) == n && !strncmp(p + 1, config_ssh_vars[k], n))
                break;
        if (!e || k == sizeof config_ssh_vars / sizeof *config_ssh_vars)
            return "names an unknown template (known: {email}, {email_local}, {service_token})";
        probe[np++] = 'x';
        p = e + 1;
    }
    if (!ssh_principal_ok(probe, np))
        return "is not a safe login name (1 to 256 printable ASCII characters without spaces, ',', "
               "quotes, '\\', '*', '?', '!'; not starting with '-' or '@')";
    return NULL;
}

static void config_ssh_principals(struct config__ctx *c, const struct config__node *n, const char *key,
                                  char ***out, size_t *nout)
{
    if (!config__list(c, n, key, "principal names or templates"))
        return;
    *out = config__calloc(c, n->n ? n->n : 1, sizeof **out);
    for (size_t i = 0; *out && i < n->n; i++) {
        const struct config__node *item = config__kid(c, n, i);
        char *s = config__string(c, item, key);
        if (!s)
            continue;
        const char *why = config_ssh_principal_why(s);
        if (why) {
            config__error(c, item->pos, "'%s': '%s' %s", key, s, why);
            free(s);
            continue;
        }
        (*out)[(*nout)++] = s;
    }
}

/* principals_by_group: {GROUP: [names…]} / principals_by_email: {ADDRESS: [names…]}. */
static void config_ssh_map(struct config__ctx *c, const struct config__node *n, const char *key, bool email,
                           struct ssh_principal_map **out, size_t *nout)
{
    if (n->kind != CONFIG__MAP) {
        config__error(c, n->pos, "'%s' must be a mapping of %s to lists of principals, got %s", key,
                      email ? "e-mail addresses" : "group names", config__kind_name(n));
        return;
    }
    *out = config__calloc(c, n->n / 2 ? n->n / 2 : 1, sizeof **out);
    for (size_t i = 0; *out && i + 1 < n->n; i += 2) {
        const struct config__node *k = config__kid(c, n, i), *v = config__kid(c, n, i + 1);
        char *name = config__string(c, k, key);
        if (!name)
            continue;
        if (email) {
            config__lower(name);
            if (!strchr(name, '@'))
                config__error(c, k->pos, "'%s': '%s' is not an e-mail address", key, name);
        }
        for (size_t j = 0; j < *nout; j++)
            if (!strcmp((*out)[j].key, name))
                config__error(c, k->pos, "'%s': '%s' is listed twice", key, name);
        struct ssh_principal_map *m = &(*out)[(*nout)++];
        m->key = name;
        config_ssh_principals(c, v, key, &m->principals, &m->nprincipals);
    }
}

void config__app_ssh(struct config__ctx *c, const struct config__node *n, struct app *a)
{
    static const char *const keys[] = { "principals", "principals_by_group", "principals_by_email",
                                        "cert_duration", "permit_pty", "permit_port_forwarding", NULL };
    const struct config__node *v[6];
    if (!config__map(c, n, "ssh", keys, v))
        return;
    struct app_ssh *s = a->ssh = config__calloc(c, 1, sizeof *s);
    if (!s)
        return;
    s->pos = n->pos;
    s->cert_duration_s = APP_SSH_CERT_DEFAULT_S;
    s->permit_pty = s->permit_port_forwarding = true;
    if (v[0])
        config_ssh_principals(c, v[0], "principals", &s->principals, &s->nprincipals);
    if (v[1])
        config_ssh_map(c, v[1], "principals_by_group", false, &s->by_group, &s->nby_group);
    if (v[2])
        config_ssh_map(c, v[2], "principals_by_email", true, &s->by_email, &s->nby_email);
    if (v[3] && config__duration_s(c, v[3], "cert_duration", &s->cert_duration_s) &&
        s->cert_duration_s > APP_SSH_CERT_MAX_S)
        config__error(c, v[3]->pos, "'cert_duration' must be at most 1h (a certificate is renewed, "
                                    "not kept)");
    if (v[4])
        config__bool(c, v[4], "permit_pty", &s->permit_pty);
    if (v[5])
        config__bool(c, v[5], "permit_port_forwarding", &s->permit_port_forwarding);
}

void config__token_ssh(struct config__ctx *c, const struct config__node *n, struct service_token_cfg *t)
{
    static const char *const keys[] = { "principals", NULL };
    const struct config__node *v[1];
    if (!config__map(c, n, "service token's ssh", keys, v))
        return;
    if (config__required(c, n, v[0], "principals", "service token's ssh"))
        config_ssh_principals(c, v[0], "principals", &t->ssh_principals, &t->nssh_principals);
}

static void config_ssh_names_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void config_ssh_map_free(struct ssh_principal_map *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(m[i].key);
        config_ssh_names_free(m[i].principals, m[i].nprincipals);
    }
    free(m);
}

void config__app_ssh_free(struct app_ssh *s)
{
    if (!s)
        return;
    config_ssh_names_free(s->principals, s->nprincipals);
    config_ssh_map_free(s->by_group, s->nby_group);
    config_ssh_map_free(s->by_email, s->nby_email);
    free(s);
}

void config__token_ssh_free(struct service_token_cfg *t)
{
    config_ssh_names_free(t->ssh_principals, t->nssh_principals);
}
