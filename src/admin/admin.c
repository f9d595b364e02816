/* The admin subcommands of admin.h: check, token issue, keys rotate, revoke, service-token
 * create, policy-test. */
#include "admin/admin.h"

#include "config/config.h"
#include "core/log.h"
#include "http/path.h"
#include "policy/policy.h"
#include "route/route.h"
#include "server/runtime.h"
#include "token/keys.h"
#include "token/jwt.h"
#include "token/mint.h"
#include "token/revoke.h"
#include "token/svctokens.h"
#include "store/cluster.h"

#include <arpa/inet.h>
#include <openssl/sha.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ADMIN_MAX_LIST 64

/* --name VALUE options; repeated ones (--group) collect into a list. */
struct admin_opts {
    const char *email, *app, *ttl, *url, *ip, *idp, *service_token, *duration, *cert_cn;
    const char *groups[ADMIN_MAX_LIST]; size_t ngroups;
    const char *amr[ADMIN_MAX_LIST]; size_t namr;
    const char *positional;
};

static int admin__opts(int argc, char **argv, struct admin_opts *o, const char *allowed)
{
    memset(o, 0, sizeof *o);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') {
            if (o->positional) {
                fprintf(stderr, "latchd: unexpected argument '%s'\n", a);
                return -1;
            }
            o->positional = a;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "latchd: %s needs a value\n", a);
            return -1;
        }
        char want[64];
        snprintf(want, sizeof want, " %s ", a + 2);
        if (strncmp(a, "--", 2) != 0 || !strstr(allowed, want)) {
            fprintf(stderr, "latchd: unknown option '%s' (this command takes:%s)\n", a, allowed);
            return -1;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--email")) o->email = v;
        else if (!strcmp(a, "--app")) o->app = v;
        else if (!strcmp(a, "--ttl")) o->ttl = v;
        else if (!strcmp(a, "--url")) o->url = v;
        else if (!strcmp(a, "--ip")) o->ip = v;
        else if (!strcmp(a, "--idp")) o->idp = v;
        else if (!strcmp(a, "--service-token")) o->service_token = v;
        else if (!strcmp(a, "--duration")) o->duration = v;
        else if (!strcmp(a, "--cert-cn")) o->cert_cn = v;
        else if (!strcmp(a, "--group") && o->ngroups < ADMIN_MAX_LIST) o->groups[o->ngroups++] = v;
        else if (!strcmp(a, "--amr") && o->namr < ADMIN_MAX_LIST) o->amr[o->namr++] = v;
    }
    return 0;
}

static struct config *admin__config(const char *path)
{
    struct config_errors errs = { 0 };
    struct config *cfg = config_load(path, &errs);
    if (!cfg) {
        config_errors_print(&errs, stderr);
        config_errors_clear(&errs);
    }
    return cfg;
}

/* The full runtime: AUDs, the secret, the auth URL and the logs, as the daemon has them. */
static struct runtime *admin__runtime(const char *path)
{
    struct config *cfg = admin__config(path);
    if (!cfg)
        return NULL;
    /* stdout is the command's answer (a token, a kid): auth events meant for stdout go to
     * stderr here */
    if (!cfg->log.auth || !strcmp(cfg->log.auth, "stdout")) {
        free(cfg->log.auth);
        cfg->log.auth = strdup("stderr");
    }
    struct config_errors errs = { 0 };
    struct runtime *rt = runtime_new(cfg, &errs);
    if (!rt) {
        config_errors_print(&errs, stderr);
        config_errors_clear(&errs);
    }
    return rt;
}

static struct keyset *admin__keys(const struct config *cfg, bool force)
{
    char *err = NULL;
    struct keyset *ks = keys_load(cfg->state_dir, cfg->key_rotation_s, cfg->key_overlap_s, force, &err);
    if (!ks) {
        fprintf(stderr, "latchd: %s\n", err ? err : "cannot load the signing keys");
        free(err);
    }
    return ks;
}

/* With a shared store, the change reaches every node now (SPEC.md §10), daemon or not. */
static void admin__share(const struct config *cfg)
{
    char *err = NULL;
    if (cluster_share(cfg, &err) != 0)
        fprintf(stderr, "latchd: warning: %s\n", err ? err : "cannot reach the shared store");
    free(err);
}

static const struct app *admin__app(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->napps; i++)
        if (!strcmp(cfg->apps[i].name, name))
            return &cfg->apps[i];
    fprintf(stderr, "latchd: no app named '%s' in the configuration\n", name);
    return NULL;
}

int admin_check(const char *config, int argc, char **argv)
{
    struct config *cfg = admin__config(config);
    if (!cfg)
        return 2;
    char *err = NULL;
    struct route_table *rt = route_build(cfg, &err);
    if (!rt) {
        printf("%s: %s\n", config, err ? err : "invalid routes");
        free(err);
        config_free(cfg);
        return 2;
    }
    route_free(rt);
    printf("%s: ok (%zu apps, %zu listeners)\n", config, cfg->napps, cfg->nlisteners);
    config_free(cfg);
    return 0;
}

int admin_token_issue(const char *config, int argc, char **argv)
{
    struct admin_opts o;
    if (admin__opts(argc, argv, &o, " app email group amr idp ttl ") != 0)
        return 64;
    if (!o.app || !o.email) {
        fprintf(stderr, "latchd token issue: --app NAME and --email ADDRESS are required\n");
        return 64;
    }
    char email[320];
    snprintf(email, sizeof email, "%s", o.email);
    for (char *p = email; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    if (!token_email_ok(email)) {
        fprintf(stderr, "latchd token issue: '%s' is not one email address\n", o.email);
        return 64;
    }
    struct runtime *rt = admin__runtime(config);
    if (!rt)
        return 2;
    int status = 1;
    struct keyset *ks = NULL;
    const struct app *app = admin__app(rt->cfg, o.app);
    if (!app)
        goto out;
    int64_t ttl = app->session_duration_s ? app->session_duration_s : rt->cfg->session_duration_s;
    if (o.ttl) {
        int64_t ms = config_parse_duration_ms(o.ttl);
        if (ms < 1000) {
            fprintf(stderr, "latchd token issue: --ttl '%s' is not a duration (e.g. 30m, 12h)\n", o.ttl);
            status = 64;
            goto out;
        }
        ttl = ms / 1000;
    }
    if (!(ks = admin__keys(rt->cfg, false)))
        goto out;
    char sub[37];
    token_person_sub(rt->secret, email, sub);
    struct mint_claims mc = { .type = "app", .aud = runtime_app(rt, app)->aud, .email = email,
                              .sub = sub, .idp = o.idp ? o.idp : "admin", .groups = o.groups,
                              .ngroups = o.ngroups, .amr = o.amr, .namr = o.namr, .ttl_s = ttl };
    char *tok = token_mint(ks, rt->auth_url, &mc, time(NULL));
    if (!tok) {
        fprintf(stderr, "latchd token issue: signing failed\n");
        goto out;
    }
    printf("%s\n", tok);
    free(tok);
    log_auth(rt->auth_log, "token_issued", email, mc.idp, app->name, NULL, true,
             "latchd token issue (break-glass)");
    status = 0;
out:
    keyset_unref(ks);
    runtime_unref(rt);
    return status;
}

int admin_keys_rotate(const char *config, int argc, char **argv)
{
    struct runtime *rt = admin__runtime(config);
    if (!rt)
        return 2;
    struct keyset *ks = admin__keys(rt->cfg, true);
    int status = 1;
    if (ks) {
        admin__share(rt->cfg);
        printf("new signing key %s; %zu key(s) verify\n", ks->keys[0].kid, ks->n);
        log_auth(rt->auth_log, "key_rotation", NULL, NULL, NULL, NULL, true, ks->keys[0].kid);
        status = 0;
    }
    keyset_unref(ks);
    runtime_unref(rt);
    return status;
}

int admin_revoke(const char *config, int argc, char **argv)
{
    struct admin_opts o;
    if (admin__opts(argc, argv, &o, " email app ") != 0)
        return 64;
    if (!o.email == !o.app) {
        fprintf(stderr, "latchd revoke: give exactly one of --email ADDRESS or --app NAME\n");
        return 64;
    }
    struct runtime *rt = admin__runtime(config);
    if (!rt)
        return 2;
    int status = 1;
    char key[320];
    snprintf(key, sizeof key, "%s", o.email ? o.email : o.app);
    if (o.email)
        for (char *p = key; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    if (o.app && !admin__app(rt->cfg, o.app))
        goto out;
    char *err = NULL;
    if (revocations_add(rt->cfg->state_dir, o.email ? REVOKE_EMAIL : REVOKE_APP, key,
                        (int64_t)time(NULL), &err) != 0) {
        fprintf(stderr, "latchd revoke: %s\n", err ? err : "failed");
        free(err);
        goto out;
    }
    admin__share(rt->cfg);
    printf("revoked every token issued until now for %s %s\n", o.email ? "user" : "app", key);
    log_auth(rt->auth_log, "revoke", o.email ? key : NULL, NULL, o.app, NULL, true, "latchd revoke");
    status = 0;
out:
    runtime_unref(rt);
    return status;
}

/* Records a service token in state_dir and shares it (svctokens.h). */
static int admin__register_service(const struct config *cfg, const char *name, const char *id_hex,
                                   const char *md_hex, time_t exp)
{
    char client_id[64], *err = NULL;
    snprintf(client_id, sizeof client_id, "%s.access", id_hex);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    json_t *add = json_pack("{s:{s:s,s:s,s:I,s:I}}", name, "client_id", client_id, "secret_sha256", md_hex,
                            "expires", (json_int_t)exp,
                            "created", (json_int_t)now.tv_sec * 1000000000 + now.tv_nsec);
    int rc = add && runtime_mkdirs(cfg->state_dir) == 0 ? svc_tokens_merge(cfg->state_dir, add, &err) : -1;
    json_decref(add);
    if (rc < 0) {
        fprintf(stderr, "latchd service-token create: %s\n", err ? err : "cannot record the token");
        free(err);
        return 1;
    }
    admin__share(cfg);
    return 0;
}

int admin_service_token_create(const char *config, int argc, char **argv)
{
    struct admin_opts o;
    if (admin__opts(argc, argv, &o, " duration ") != 0)
        return 64;
    if (!o.positional) {
        fprintf(stderr, "latchd service-token create: give the token a NAME\n");
        return 64;
    }
    struct config *cfg = admin__config(config);
    if (!cfg)
        return 2;
    int64_t dur_ms = config_parse_duration_ms(o.duration ? o.duration : "8760h");
    if (dur_ms < 1000) {
        fprintf(stderr, "latchd service-token create: --duration '%s' is not a duration\n", o.duration);
        config_free(cfg);
        return 64;
    }
    for (size_t i = 0; i < cfg->nservice_tokens; i++)
        if (!strcmp(cfg->service_tokens[i].name, o.positional))
            fprintf(stderr, "note: a service token named '%s' is already configured: replace its stanza\n",
                    o.positional);
    unsigned char id[16], secret[32], md[32];
    char id_hex[33], secret_hex[65], md_hex[65], expires[32];
    randombytes_buf(id, sizeof id);
    randombytes_buf(secret, sizeof secret);
    sodium_bin2hex(id_hex, sizeof id_hex, id, sizeof id);
    sodium_bin2hex(secret_hex, sizeof secret_hex, secret, sizeof secret);
    SHA256((const unsigned char *)secret_hex, 64, md);
    sodium_bin2hex(md_hex, sizeof md_hex, md, sizeof md);
    time_t exp = time(NULL) + (time_t)(dur_ms / 1000);
    struct tm tm;
    gmtime_r(&exp, &tm);
    strftime(expires, sizeof expires, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int status = 0;
    if (!strncmp(cfg->store, "redis:", 6)) {
        status = admin__register_service(cfg, o.positional, id_hex, md_hex, exp);
        if (status == 0)
            printf("CF-Access-Client-Id: %s.access\n"
                   "CF-Access-Client-Secret: %s\n"
                   "\n"
                   "The secret is shown once and stored nowhere. Service token '%s' works now on every\n"
                   "node sharing %s, until %s: policies name it with service_token: %s.\n",
                   id_hex, secret_hex, o.positional, cfg->store, expires, o.positional);
        sodium_memzero(secret_hex, sizeof secret_hex);
        config_free(cfg);
        return status;
    }
    config_free(cfg);
    printf("CF-Access-Client-Id: %s.access\n"
           "CF-Access-Client-Secret: %s\n"
           "\n"
           "The secret is shown once and stored nowhere. Add this to service_tokens: in %s,\n"
           "then reload latchd (kill -HUP, or latchd reload):\n"
           "\n"
           "  - name: %s\n"
           "    client_id: %s.access\n"
           "    secret_sha256: %s\n"
           "    expires: %s\n",
           id_hex, secret_hex, config, o.positional, id_hex, md_hex, expires);
    sodium_memzero(secret_hex, sizeof secret_hex);
    return 0;
}

int admin_policy_test(const char *config, int argc, char **argv)
{
    struct admin_opts o;
    if (admin__opts(argc, argv, &o, " url email group amr idp ip service-token cert-cn ") != 0)
        return 64;
    if (!o.url) {
        fprintf(stderr, "latchd policy-test: --url URL is required\n");
        return 64;
    }
    struct runtime *rt = admin__runtime(config);
    if (!rt)
        return 2;
    int status = 64;
    /* URL: scheme://host[:port]/path[?query] */
    const char *p = strstr(o.url, "://");
    p = p ? p + 3 : o.url;
    const char *slash = strchr(p, '/');
    const char *hend = slash ? slash : p + strlen(p);
    char host[512], path[8192], fwd[8194], match[8194];
    size_t fl, ml;
    const char *q = slash ? strchr(slash, '?') : NULL;
    snprintf(path, sizeof path, "%.*s", (int)(slash ? (q ? q - slash : (long)strlen(slash)) : 1), slash ? slash : "/");
    int hl = route_host_normalize(p, (size_t)(hend - p), host);
    if (hl < 0 || (size_t)hl >= sizeof host ||
        path_normalize(path, strlen(path), fwd, &fl, match, &ml) != 0) {
        fprintf(stderr, "latchd policy-test: '%s' is not a URL latchd would accept (400)\n", o.url);
        goto out;
    }
    const struct app *app = route_match(rt->routes, host, (size_t)hl, match, ml);
    printf("url:      %s\nhost:     %s\npath:     %s (matched as %s)\n", o.url, host, fwd, match);
    if (!app) {
        printf("app:      none: 404, nothing is forwarded\ndecision: deny\n");
        status = 1;
        goto out;
    }
    printf("app:      %s (origin %s)\n", app->name, app->origin.url);
    struct identity id = { 0 };
    char email[320];
    if (o.email) {
        snprintf(email, sizeof email, "%s", o.email);
        for (char *e = email; *e; e++)
            *e = (char)(*e >= 'A' && *e <= 'Z' ? *e + 32 : *e);
        id.email = email;
    }
    id.idp = o.idp;
    id.groups = o.groups;
    id.ngroups = o.ngroups;
    id.amr = o.amr;
    id.namr = o.namr;
    id.service_token = o.service_token;
    struct policy_request pr = { .id = (o.email || o.service_token) ? &id : NULL,
                                 .client_cert = o.cert_cn != NULL, .client_cn = o.cert_cn };
    memset(pr.client_ip, 0, 16);
    pr.client_ip[10] = pr.client_ip[11] = 0xff;
    pr.client_ip[12] = 127, pr.client_ip[15] = 1;
    if (o.ip) {
        unsigned char a6[16];
        if (inet_pton(AF_INET, o.ip, pr.client_ip + 12) == 1) {
        } else if (inet_pton(AF_INET6, o.ip, a6) == 1) {
            memcpy(pr.client_ip, a6, 16);
        } else {
            fprintf(stderr, "latchd policy-test: --ip '%s' is not an address\n", o.ip);
            goto out;
        }
    }
    printf("identity: %s%s%s\n", o.email ? o.email : o.service_token ? "service token " : "none (not logged in)",
           o.service_token && !o.email ? o.service_token : "", "");
    printf("evaluation (bypass and service_auth first, then allow and block; first match decides):\n");
    struct policy_result res;
    policy_explain(app, &pr, stdout, &res);
    printf("decision: %s%s%s\n", policy_decision_name(res.decision), res.policy ? " by policy " : "",
           res.policy ? res.policy->name : "");
    status = policy_admits(res.decision) ? 0 : 1;
out:
    runtime_unref(rt);
    return status;
}
