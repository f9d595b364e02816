/* The admin subcommands of admin.h: check, token issue, keys rotate, revoke, service-token
 * create, policy-test, and status and reload, which only a running daemon can answer. */
#include "admin/admin.h"
#include "core/exitcode.h"

#include "server/control_ops.h"
#include "server/control_socket.h"
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
#include "token/sshca.h"
#include "token/sshcert.h"
#include "token/statefile.h"
#include "token/svctokens.h"
#include "store/cluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <openssl/sha.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ADMIN_CALL_MS 30000 /* a reload or a rotation answers well within this */

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

/* The full runtime (AUDs, the secret, the auth URL and the logs, as the daemon has them) built
 * from a loaded config, which it takes. */
static struct runtime *admin__runtime_of(struct config *cfg)
{
    /* stdout is the command's answer (a token, a kid): auth events meant for stdout go to
     * stderr here */
    if (!cfg->log.auth || !strcmp(cfg->log.auth, "stdout")) {
        free(cfg->log.auth);
        cfg->log.auth = strdup("stderr");
    }
    char *err = NULL;
    int shared = cluster_prepare(cfg, &err); /* with Redis: the cluster's secret and keys first */
    if (err)
        fprintf(stderr, "latchd: %s%s\n", shared ? "" : "warning: ", err);
    free(err);
    if (shared != 0) {
        config_free(cfg);
        return NULL;
    }
    struct config_errors errs = { 0 };
    struct runtime *rt = runtime_new(cfg, &errs);
    if (!rt) {
        config_errors_print(&errs, stderr);
        config_errors_clear(&errs);
    }
    return rt;
}

static struct runtime *admin__runtime(const char *path)
{
    struct config *cfg = admin__config(path);
    return cfg ? admin__runtime_of(cfg) : NULL;
}

/* Asks the daemon that serves cfg's state_dir. 0 with *reply; 1 when no daemon runs there (no
 * socket, or one a killed daemon left: nobody answers); -1 when one runs but the exchange
 * failed (said on stderr). */
static int admin__ask(const struct config *cfg, const char *what, json_t *req, json_t **reply)
{
    *reply = NULL;
    int fd = control_socket_connect(cfg->state_dir);
    if (fd == -ENOENT || fd == -ECONNREFUSED || fd == -ENOTDIR) {
        json_decref(req);
        return 1;
    }
    if (fd < 0) {
        fprintf(stderr, "latchd %s: cannot reach latchd on %s/%s: %s%s\n", what, cfg->state_dir,
                CONTROL_SOCKET_NAME, strerror(-fd),
                fd == -EACCES ? " (run this as root or as latchd's user)" : "");
        json_decref(req);
        return -1;
    }
    char *err = NULL;
    *reply = control_socket_call(fd, req, ADMIN_CALL_MS, &err);
    close(fd);
    json_decref(req);
    if (!*reply) {
        fprintf(stderr, "latchd %s: %s\n", what, err ? err : "no answer from latchd");
        free(err);
        return -1;
    }
    return 0;
}

static void admin__not_running(const struct config *cfg)
{
    fprintf(stderr, "latchd is not running (no daemon on %s/%s)\n", cfg->state_dir, CONTROL_SOCKET_NAME);
}

/* Prints a refusal's "error" (and "errors") on stderr; LATCH_EXIT_FAILED. */
static int admin__failed(const char *what, const json_t *reply)
{
    const char *e = json_string_value(json_object_get(reply, "error"));
    fprintf(stderr, "latchd %s: %s\n", what, e ? e : "failed");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(reply, "errors"), i, v)
        fprintf(stderr, "%s\n", json_string_value(v) ? json_string_value(v) : "?");
    return LATCH_EXIT_FAILED;
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

/* "1 app", "2 apps" */
static const char *admin__s(size_t n)
{
    return n == 1 ? "" : "s";
}

/* What the daemon would refuse, on stderr as FILE:LINE:COL: message, like config_load's own
 * errors; then the warnings (exit 0 all the same); "FILE: ok" on stdout. Reads only. */
int admin_check(const struct admin_args *a)
{
    const char *config = a->config;
    struct config *cfg = admin__config(config);
    if (!cfg)
        return LATCH_EXIT_CONFIG;
    struct config_errors errs = { 0 }, warns = { 0 };
    int bad = runtime_check(cfg, &errs, &warns);
    config_errors_print(&errs, stderr);
    config_errors_print(&warns, stderr);
    size_t nwarn = warns.n;
    config_errors_clear(&errs);
    config_errors_clear(&warns);
    if (bad) {
        config_free(cfg);
        return LATCH_EXIT_CONFIG;
    }
    printf("%s: ok (%zu app%s, %zu listener%s", config, cfg->napps, admin__s(cfg->napps),
           cfg->nlisteners, admin__s(cfg->nlisteners));
    if (nwarn)
        printf("; %zu warning%s above", nwarn, admin__s(nwarn));
    printf(")\n");
    char *auth_url = runtime_auth_url(cfg);
    for (size_t i = 0; auth_url && i < cfg->nidps; i++)
        if (cfg->idps[i].type == IDP_OIDC)
            printf("identity provider %s: register the redirect URI %s%s\n", cfg->idps[i].name,
                   auth_url, cfg->idps[i].callback_path);
    free(auth_url);
    config_free(cfg);
    return LATCH_EXIT_OK;
}

int admin_token_issue(const struct admin_args *a)
{
    const struct admin_args o = *a;
    if (!o.app || !o.email) {
        fprintf(stderr, "latchd token issue: --app NAME and --email ADDRESS are required\n");
        return LATCH_EXIT_USAGE;
    }
    char email[320];
    snprintf(email, sizeof email, "%s", o.email);
    for (char *p = email; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    if (!token_email_ok(email)) {
        fprintf(stderr, "latchd token issue: '%s' is not one email address\n", o.email);
        return LATCH_EXIT_USAGE;
    }
    struct runtime *rt = admin__runtime(a->config);
    if (!rt)
        return LATCH_EXIT_CONFIG;
    int status = LATCH_EXIT_FAILED;
    struct keyset *ks = NULL;
    const struct app *app = admin__app(rt->cfg, o.app);
    if (!app)
        goto out;
    int64_t ttl = app->session_duration_s ? app->session_duration_s : rt->cfg->session_duration_s;
    if (o.ttl) {
        int64_t ms = config_parse_duration_ms(o.ttl);
        if (ms < 1000) {
            fprintf(stderr, "latchd token issue: --ttl '%s' is not a duration (e.g. 30m, 12h)\n", o.ttl);
            status = LATCH_EXIT_USAGE;
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
    status = LATCH_EXIT_OK;
out:
    keyset_unref(ks);
    runtime_unref(rt);
    return status;
}

static int admin__print_rotated(const json_t *reply)
{
    if (!json_is_true(json_object_get(reply, "ok")))
        return admin__failed("keys rotate", reply);
    json_t *pid = json_object_get(reply, "pid");
    printf("new signing key %s; %zu key(s) verify%s", json_string_value(json_object_get(reply, "kid")),
           json_array_size(json_object_get(reply, "keys")), pid ? " (latchd pid " : "\n");
    if (pid)
        printf("%lld signs with it now)\n", (long long)json_integer_value(pid));
    return LATCH_EXIT_OK;
}

int admin_keys_rotate(const struct admin_args *a)
{
    const char *config = a->config;
    struct config *cfg = admin__config(config);
    if (!cfg)
        return LATCH_EXIT_CONFIG;
    json_t *reply = NULL;
    int asked = admin__ask(cfg, "keys rotate", json_pack("{s:s}", "cmd", CONTROL_CMD_KEYS_ROTATE), &reply);
    if (asked < 0) {
        config_free(cfg);
        return LATCH_EXIT_FAILED;
    }
    if (asked > 0) {
        admin__not_running(cfg);
        fprintf(stderr, "latchd keys rotate: making the key in %s/keys directly; a daemon started "
                "later signs with it\n", cfg->state_dir);
        struct runtime *rt = admin__runtime_of(cfg);
        if (!rt)
            return LATCH_EXIT_CONFIG;
        reply = control_op_keys_rotate(rt, NULL);
        if (json_is_true(json_object_get(reply, "ok")))
            admin__share(rt->cfg);
        runtime_unref(rt);
    } else {
        config_free(cfg);
    }
    int status = admin__print_rotated(reply);
    json_decref(reply);
    return status;
}

static int admin__print_revoked(const json_t *reply)
{
    if (!json_is_true(json_object_get(reply, "ok")))
        return admin__failed("revoke", reply);
    const char *kind = json_string_value(json_object_get(reply, "revoked"));
    json_t *pid = json_object_get(reply, "pid");
    printf("revoked every token issued until now for %s %s", kind && !strcmp(kind, "email") ? "user" : "app",
           json_string_value(json_object_get(reply, "key")));
    if (pid)
        printf(" (latchd pid %lld refuses them from now on)", (long long)json_integer_value(pid));
    printf("\n");
    return LATCH_EXIT_OK;
}

int admin_revoke(const struct admin_args *a)
{
    const struct admin_args o = *a;
    const char *config = a->config;
    if (!o.email == !o.app) {
        fprintf(stderr, "latchd revoke: give exactly one of --email ADDRESS or --app NAME\n");
        return LATCH_EXIT_USAGE;
    }
    struct config *cfg = admin__config(config);
    if (!cfg)
        return LATCH_EXIT_CONFIG;
    json_t *req = json_pack("{s:s,s:s}", "cmd", CONTROL_CMD_REVOKE, o.email ? "email" : "app",
                            o.email ? o.email : o.app);
    json_t *reply = NULL;
    int asked = admin__ask(cfg, "revoke", json_incref(req), &reply);
    if (asked < 0) {
        json_decref(req);
        config_free(cfg);
        return LATCH_EXIT_FAILED;
    }
    if (asked > 0) {
        admin__not_running(cfg);
        fprintf(stderr, "latchd revoke: writing %s/revocations.json directly; a daemon started later "
                "reads it\n", cfg->state_dir);
        struct runtime *rt = admin__runtime_of(cfg);
        if (!rt) {
            json_decref(req);
            return LATCH_EXIT_CONFIG;
        }
        reply = control_op_revoke(rt, req, NULL);
        if (json_is_true(json_object_get(reply, "ok")))
            admin__share(rt->cfg);
        runtime_unref(rt);
    } else {
        config_free(cfg);
    }
    json_decref(req);
    int status = admin__print_revoked(reply);
    json_decref(reply);
    return status;
}

static void admin__age(char *out, size_t n, long long s)
{
    if (s < 120)
        snprintf(out, n, "%llds", s);
    else if (s < 7200)
        snprintf(out, n, "%lldm", s / 60);
    else if (s < 172800)
        snprintf(out, n, "%lldh%02lldm", s / 3600, s / 60 % 60);
    else
        snprintf(out, n, "%lldd%02lldh", s / 86400, s / 3600 % 24);
}

static const char *admin__str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "?";
}

static long long admin__int(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

static void admin__print_status(const json_t *r)
{
    char age[32];
    admin__age(age, sizeof age, admin__int(r, "uptime_s"));
    printf("latchd %s is running (pid %lld, up %s)%s\n", admin__str(r, "version"), admin__int(r, "pid"),
           age, json_is_true(json_object_get(r, "draining")) ? ", draining" : "");
    printf("config:        %s (generation %lld)\n", admin__str(r, "config"),
           admin__int(r, "config_generation"));
    const json_t *last = json_object_get(r, "last_reload");
    if (json_is_object(last)) {
        size_t nerr = json_array_size(json_object_get(last, "errors"));
        printf("last reload:   %s %s", admin__str(last, "at"),
               json_is_true(json_object_get(last, "ok")) ? "applied\n" : "refused, the running configuration kept:\n");
        for (size_t i = 0; i < nerr; i++)
            printf("               %s\n", json_string_value(json_array_get(json_object_get(last, "errors"), i)));
    } else {
        printf("last reload:   none since start\n");
    }
    printf("state_dir:     %s\n", admin__str(r, "state_dir"));
    printf("workers:       %lld (%lld open connections)\n", admin__int(r, "workers"),
           admin__int(r, "connections"));
    const json_t *store = json_object_get(r, "store");
    printf("store:         %s (%s)\n", admin__str(store, "backend"),
           json_is_true(json_object_get(store, "up")) ? "up" : "DOWN: verifying issued tokens only");
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(r, "keys"), i, k) {
        admin__age(age, sizeof age, admin__int(k, "age_s"));
        printf("%s%s  %s, made %s (%s ago)", i == 0 ? "signing keys:  " : "               ",
               admin__str(k, "kid"), json_is_true(json_object_get(k, "signing")) ? "signs" : "verifies",
               admin__str(k, "created"), age);
        if (json_object_get(k, "verify_until"))
            printf(", until %s", admin__str(k, "verify_until"));
        printf("\n");
    }
    printf("revocations:   %lld\n", admin__int(r, "revocations"));
}

int admin_status(const struct admin_args *a)
{
    const char *config = a->config;
    bool as_json = a->json;
    struct config *cfg = admin__config(config);
    if (!cfg)
        return LATCH_EXIT_CONFIG;
    json_t *reply = NULL;
    int asked = admin__ask(cfg, "status", json_pack("{s:s}", "cmd", CONTROL_CMD_STATUS), &reply);
    int status = LATCH_EXIT_FAILED;
    if (asked > 0)
        admin__not_running(cfg);
    if (asked != 0)
        goto out;
    if (as_json) {
        char *s = json_dumps(reply, JSON_COMPACT);
        printf("%s\n", s ? s : "{}");
        free(s);
        status = json_is_true(json_object_get(reply, "ok")) ? LATCH_EXIT_OK : LATCH_EXIT_FAILED;
    } else if (!json_is_true(json_object_get(reply, "ok"))) {
        status = admin__failed("status", reply);
    } else {
        admin__print_status(reply);
        status = LATCH_EXIT_OK;
    }
out:
    json_decref(reply);
    config_free(cfg);
    return status;
}

int admin_reload(const struct admin_args *a)
{
    const char *config = a->config;
    struct config *cfg = admin__config(config);
    if (!cfg)
        return LATCH_EXIT_CONFIG;
    json_t *reply = NULL;
    int asked = admin__ask(cfg, "reload", json_pack("{s:s}", "cmd", CONTROL_CMD_RELOAD), &reply);
    int status = LATCH_EXIT_FAILED;
    if (asked > 0)
        admin__not_running(cfg);
    if (asked != 0)
        goto out;
    const char *used = json_string_value(json_object_get(reply, "config"));
    if (json_is_true(json_object_get(reply, "ok"))) {
        printf("reloaded %s (generation %lld)\n", used ? used : "the configuration",
               admin__int(reply, "config_generation"));
        char mine[PATH_MAX];
        if (used && realpath(config, mine) && strcmp(mine, used))
            fprintf(stderr, "note: latchd runs with %s, not %s: that is the file it reloaded\n",
                    used, mine);
        status = LATCH_EXIT_OK;
    } else {
        admin__failed("reload", reply);
        status = json_object_get(reply, "errors") ? LATCH_EXIT_CONFIG : LATCH_EXIT_FAILED;
    }
out:
    json_decref(reply);
    config_free(cfg);
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
    int rc = add && statefile_mkdirs(cfg->state_dir) == 0 ? svc_tokens_merge(cfg->state_dir, add, &err) : -1;
    json_decref(add);
    if (rc < 0) {
        fprintf(stderr, "latchd service-token create: %s\n", err ? err : "cannot record the token");
        free(err);
        return LATCH_EXIT_FAILED;
    }
    admin__share(cfg);
    return LATCH_EXIT_OK;
}

int admin_service_token_create(const struct admin_args *a)
{
    const struct admin_args o = *a;
    const char *config = a->config;
    struct config *cfg = admin__config(config);
    if (!cfg)
        return LATCH_EXIT_CONFIG;
    int64_t dur_ms = config_parse_duration_ms(o.duration ? o.duration : "8760h");
    if (dur_ms < 1000) {
        fprintf(stderr, "latchd service-token create: --duration '%s' is not a duration\n", o.duration);
        config_free(cfg);
        return LATCH_EXIT_USAGE;
    }
    for (size_t i = 0; i < cfg->nservice_tokens; i++)
        if (!strcmp(cfg->service_tokens[i].name, o.name))
            fprintf(stderr, "note: a service token named '%s' is already configured: replace its stanza\n",
                    o.name);
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
    int status = LATCH_EXIT_OK;
    if (!strncmp(cfg->store, "redis:", 6)) {
        char *err = NULL;
        status = cluster_prepare(cfg, &err) == 0 ? admin__register_service(cfg, o.name, id_hex, md_hex, exp) : LATCH_EXIT_FAILED;
        if (err)
            fprintf(stderr, "latchd service-token create: %s\n", err);
        free(err);
        if (status == 0)
            printf("CF-Access-Client-Id: %s.access\n"
                   "CF-Access-Client-Secret: %s\n"
                   "\n"
                   "The secret is shown once and stored nowhere. Service token '%s' works now on every\n"
                   "node sharing %s, until %s: policies name it with service_token: %s.\n",
                   id_hex, secret_hex, o.name, cfg->store, expires, o.name);
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
           id_hex, secret_hex, config, o.name, id_hex, md_hex, expires);
    sodium_memzero(secret_hex, sizeof secret_hex);
    return LATCH_EXIT_OK;
}

int admin_policy_test(const struct admin_args *a)
{
    const struct admin_args o = *a;
    const char *config = a->config;
    if (!o.url) {
        fprintf(stderr, "latchd policy-test: --url URL is required\n");
        return LATCH_EXIT_USAGE;
    }
    struct runtime *rt = admin__runtime(config);
    if (!rt)
        return LATCH_EXIT_CONFIG;
    int status = LATCH_EXIT_USAGE;
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
        status = LATCH_EXIT_FAILED;
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
    status = policy_admits(res.decision) ? LATCH_EXIT_OK : LATCH_EXIT_FAILED;
out:
    runtime_unref(rt);
    return status;
}

int admin_ssh_ca(const struct admin_args *a)
{
    if (!a->app) {
        fprintf(stderr, "latchd ssh-ca: --app NAME is required\n");
        return LATCH_EXIT_USAGE;
    }
    struct config *cfg = admin__config(a->config);
    if (!cfg)
        return LATCH_EXIT_CONFIG;
    int status = LATCH_EXIT_FAILED;
    char *err = NULL, *line = NULL, comment[512];
    EVP_PKEY *ca = NULL;
    const struct app *app = admin__app(cfg, a->app);
    if (!app)
        goto out;
    if (!app->ssh)
        fprintf(stderr, "latchd ssh-ca: warning: app '%s' has no ssh: section; cert_sign refuses to "
                        "sign for it until one is added\n", app->name);
    /* with Redis: the cluster's CA first; a new one is offered to the cluster, whose CA wins */
    int shared = cluster_prepare(cfg, &err);
    if (err)
        fprintf(stderr, "latchd: %s%s\n", shared ? "" : "warning: ", err);
    free(err);
    err = NULL;
    if (shared != 0 || statefile_mkdirs(cfg->state_dir) != 0)
        goto out;
    ca = sshca_load(cfg->state_dir, app->name, true, &err);
    if (ca) {
        EVP_PKEY_free(ca);
        admin__share(cfg);
        ca = sshca_load(cfg->state_dir, app->name, false, &err);
    }
    snprintf(comment, sizeof comment, "latch-ca:%s", app->name);
    for (char *p = comment; *p; p++)
        if (*p == ' ' || *p == '\t')
            *p = '_';
    line = ca ? ssh_ed25519_pubkey_line(ca, comment) : NULL;
    if (!line) {
        fprintf(stderr, "latchd ssh-ca: %s\n", err ? err : "cannot read the CA key");
        goto out;
    }
    printf("%s\n", line);
    status = LATCH_EXIT_OK;
out:
    free(err);
    free(line);
    EVP_PKEY_free(ca);
    config_free(cfg);
    return status;
}
