/* Building runtimes (runtime.h); releasing them is request/runtime.c's. */
#include "server/runtime.h"

#include "route/served.h"
#include "token/statefile.h"
#include "store/seal.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


static void runtime__aud(const unsigned char secret[32], const char *name, char out[65])
{
    unsigned char mac[32];
    unsigned int len = sizeof mac;
    HMAC(EVP_sha256(), secret, 32, (const unsigned char *)name, strlen(name), mac, &len);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", mac[i]);
}

static int runtime__resolve(struct app_rt *a)
{
    const struct origin *o = &a->app->origin;
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    char port[8];
    snprintf(port, sizeof port, "%u", o->port);
    if (getaddrinfo(o->host, port, &hints, &res) != 0 || !res)
        return -1;
    memcpy(&a->origin_addr, res->ai_addr, res->ai_addrlen);
    a->origin_addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* SPEC.md §5: "https://<auth domain>", or http:// when a plain listener serves it. The scheme
 * is that of the listener whose public port the auth domain names (route/served.h); an auth
 * domain on a port no listener serves (a setup behind something the configuration does not
 * describe) gets https when any listener has TLS. */
char *runtime_auth_url(const struct config *cfg)
{
    const char *ad = cfg->auth_domain ? cfg->auth_domain : "localhost";
    struct served_origin o;
    char *out = NULL;
    bool tls = false;
    if (served_lookup(cfg, -1, ad, strlen(ad), &o) == 0)
        tls = o.https;
    else
        for (size_t i = 0; i < cfg->nlisteners; i++)
            tls |= cfg->listeners[i].public_https;
    return asprintf(&out, "%s://%s", tls ? "https" : "http", ad) < 0 ? NULL : out;
}

/* An oidc provider's client secret: read at each login (auth/oidc.c), so a file that is not
 * there now is a sign-in that fails later. */
static void runtime__client_secret(const struct config *cfg, const struct idp *d,
                                   struct config_errors *errs)
{
    char why[512], *secret = NULL;
    if (store_secret_load(d->client_secret_file, &secret, why, sizeof why) != 0)
        config_errors_add(errs, cfg->path, d->client_secret_file_pos, "'client_secret_file': %s", why);
    if (secret)
        sodium_memzero(secret, strlen(secret));
    free(secret);
}

/* The key that seals what is kept in Redis (with Redis only) and the AUTH password
 * (store/cluster.c reads them again when it opens the store). */
static void runtime__store_files(const struct config *cfg, struct config_errors *errs)
{
    char why[512], *password = NULL;
    unsigned char key[STORE_KEY_BYTES];
    if (!strncmp(cfg->store, "redis:", 6) && cfg->store_key_file &&
        store_key_load(cfg->store_key_file, key, why, sizeof why) != 0)
        config_errors_add(errs, cfg->path, cfg->where.store_key_file, "'store_key_file': %s", why);
    sodium_memzero(key, sizeof key);
    if (cfg->store_password_file &&
        store_secret_load(cfg->store_password_file, &password, why, sizeof why) != 0)
        config_errors_add(errs, cfg->path, cfg->where.store_password_file,
                          "'store_password_file': %s", why);
    if (password)
        sodium_memzero(password, strlen(password));
    free(password);
}

/* What runtime_check and runtime_new share, reading only: the routes, the listeners' TLS
 * contexts, the https origins' and the identity providers' files, into rt. Every error is
 * collected, at the key that names what failed. 0, or -1 after adding errors. */
static int runtime__load(struct runtime *rt, struct config_errors *errs)
{
    const struct config *cfg = rt->cfg;
    size_t nerr = errs->n;
    char *err = NULL;
    /* every invalid pattern at its position; then the table, which refuses the first */
    for (size_t i = 0; i < cfg->napps; i++)
        for (size_t j = 0; j < cfg->apps[i].ndomains; j++) {
            const char *why = NULL;
            if (route_pattern_check(cfg->apps[i].domains[j], &why) != 0)
                config_errors_add(errs, cfg->path, cfg->apps[i].domain_pos[j],
                                  "invalid domain pattern '%s': %s", cfg->apps[i].domains[j], why);
        }
    rt->routes = errs->n > nerr ? NULL : route_build(cfg, &err); /* with the pattern's position */
    if (!rt->routes && errs->n == nerr)
        config_errors_add(errs, NULL, (struct config_pos){ 0, 0 }, "%s", err ? err : "out of memory");
    free(err);
    rt->apps = calloc(cfg->napps ? cfg->napps : 1, sizeof *rt->apps);
    rt->tls = calloc(cfg->nlisteners ? cfg->nlisteners : 1, sizeof *rt->tls);
    if (!rt->apps || !rt->tls) {
        config_errors_add(errs, cfg->path, (struct config_pos){ 0, 0 }, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < cfg->napps; i++) {
        const struct app *app = rt->apps[i].app = &cfg->apps[i];
        if (app->origin.kind == ORIGIN_HTTPS)
            rt->apps[i].origin_tls = tls_origin_ctx_new(&app->origin, app->pos, cfg->path, errs);
    }
    for (size_t i = 0; i < cfg->nlisteners; i++)
        if (cfg->listeners[i].ncerts)
            rt->tls[i] = tls_server_new(&cfg->listeners[i], cfg->path, errs);
    for (size_t i = 0; i < cfg->nidps; i++)
        if (cfg->idps[i].type == IDP_OIDC && cfg->idps[i].client_secret_file)
            runtime__client_secret(cfg, &cfg->idps[i], errs);
    runtime__store_files(cfg, errs);
    config_errors_sort(errs, nerr, cfg->path);
    return errs->n > nerr ? -1 : 0;
}

/* A log file latchd will open for appending: refused when it is a directory or its directory
 * is not one; a directory that does not exist yet is only a warning (systemd's LogsDirectory=
 * makes it before latchd starts). */
static void runtime__log_check(const struct config *cfg, const char *key, const char *target,
                               struct config_pos pos, struct config_errors *errs,
                               struct config_errors *warns)
{
    if (!target || !strcmp(target, "stdout") || !strcmp(target, "stderr") || !strcmp(target, "off"))
        return;
    struct stat st;
    if (stat(target, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            config_errors_add(errs, cfg->path, pos, "'%s': %s is a directory, not a log file", key, target);
        return;
    }
    const char *slash = strrchr(target, '/');
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash == target ? 1 : slash - target) : 1,
             slash ? target : ".");
    if (stat(dir, &st) != 0)
        config_errors_add(warns, cfg->path, pos, "warning: '%s': directory %s does not exist (yet): "
                          "latchd cannot open %s unless it is made first", key, dir, target);
    else if (!S_ISDIR(st.st_mode))
        config_errors_add(errs, cfg->path, pos, "'%s': %s is not a directory", key, dir);
}

/* The first allow policy when no identity provider is configured: nobody can sign in to be
 * allowed (only `latchd token issue` tokens pass). Policies admitting service tokens alone are
 * not about people. */
static void runtime__warn_allow_without_idp(const struct config *cfg, struct config_errors *warns)
{
    if (cfg->nidps)
        return;
    const struct policy *first = NULL;
    const struct app *first_app = NULL;
    size_t more = 0;
    for (size_t i = 0; i < cfg->napps; i++) {
        for (size_t k = 0; k < cfg->apps[i].npolicies; k++) {
            const struct policy *p = &cfg->apps[i].policies[k];
            bool people = false;
            for (size_t s = 0; s < p->ninclude; s++)
                people |= p->include[s].kind != SEL_SERVICE_TOKEN &&
                          p->include[s].kind != SEL_ANY_VALID_SERVICE_TOKEN;
            if (p->decision != DECISION_ALLOW || !people)
                continue;
            if (first)
                more++;
            else
                first = p, first_app = &cfg->apps[i];
        }
    }
    if (!first)
        return;
    char others[64] = "";
    if (more)
        snprintf(others, sizeof others, " (nor by %zu more allow %s)", more, more == 1 ? "policy" : "policies");
    config_errors_add(warns, cfg->path, first->pos, "warning: policy '%s' of app '%s' allows people, "
                      "but no identity provider is configured (identity_providers:): nobody can "
                      "sign in to be allowed by it%s", first->name, first_app->name, others);
}

/* A plain listener on a network address without `public:` is taken to stand behind a TLS
 * terminator that browsers reach on https:443 (config.c): said, since links and cookies follow. */
static void runtime__warn_listeners(const struct config *cfg, struct config_errors *warns)
{
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct listener_cfg *l = &cfg->listeners[i];
        if (l->ncerts || l->public_set || !l->public_https)
            continue;
        config_errors_add(warns, cfg->path, l->pos, "warning: listener %s is plain HTTP on a network "
                          "address: latchd takes it to stand behind a TLS terminator that browsers "
                          "reach at https://…:443 (Secure cookies, https links); say so with "
                          "public: { scheme: https, port: 443 }, or give the address and port "
                          "browsers use", l->address);
    }
}

/* An auth domain on a port no listener serves publicly: browsers sent there to sign in reach
 * nothing of latchd's. */
static void runtime__warn_auth_domain(const struct config *cfg, struct config_errors *warns)
{
    struct served_origin o;
    if (!cfg->auth_domain || !cfg->nlisteners ||
        served_lookup(cfg, -1, cfg->auth_domain, strlen(cfg->auth_domain), &o) == 0)
        return;
    char served[256] = "";
    size_t len = 0;
    for (size_t i = 0; i < cfg->nlisteners && len < sizeof served; i++)
        len += (size_t)snprintf(served + len, sizeof served - len, "%s%s:%u", i ? ", " : "",
                                cfg->listeners[i].public_https ? "https" : "http",
                                (unsigned)cfg->listeners[i].public_port);
    const char *colon = strrchr(cfg->auth_domain, ':');
    bool port = colon && !strchr(colon, ']');
    config_errors_add(warns, cfg->path, cfg->where.auth_domain, "warning: auth_domain '%s' %s, "
                      "which no listener serves publicly (they serve %s): browsers sent there to "
                      "sign in will not reach latchd; give auth_domain a listener's port, or say "
                      "where browsers reach a listener with public:", cfg->auth_domain,
                      port ? "names that port" : "names no port, so browsers go to https:443 or "
                      "http:80", served);
}

int runtime_check(const struct config *cfg, struct config_errors *errs, struct config_errors *warns)
{
    size_t nerr = errs->n, nwarn = warns->n;
    struct runtime tmp = { .cfg = (struct config *)cfg };
    runtime__load(&tmp, errs);
    runtime_release(&tmp);
    struct stat st;
    if (stat(cfg->state_dir, &st) == 0 && !S_ISDIR(st.st_mode))
        config_errors_add(errs, cfg->path, cfg->where.state_dir, "'state_dir': %s is not a directory",
                          cfg->state_dir);
    runtime__log_check(cfg, "requests", cfg->log.requests, cfg->where.log_requests, errs, warns);
    runtime__log_check(cfg, "auth", cfg->log.auth, cfg->where.log_auth, errs, warns);
    if (cfg->store_key_file && strncmp(cfg->store, "redis:", 6))
        config_errors_add(warns, cfg->path, cfg->where.store_key_file, "warning: 'store_key_file' is "
                          "read only with a redis store: unused with store: %s", cfg->store);
    runtime__warn_allow_without_idp(cfg, warns);
    runtime__warn_listeners(cfg, warns);
    runtime__warn_auth_domain(cfg, warns);
    config_errors_sort(errs, nerr, cfg->path);
    config_errors_sort(warns, nwarn, cfg->path);
    return errs->n > nerr ? -1 : 0;
}

/* The endpoints' view of rt (request/endpoint.h). */
static void runtime__site(struct runtime *rt)
{
    rt->site = (struct endpoint_site){
        .cfg = rt->cfg,
        .routes = rt->routes,
        .auth_log = rt->auth_log,
        .auth_url = rt->auth_url,
        .secret = rt->secret,
        .longest_session_s = config_longest_session_s(rt->cfg),
    };
}

struct runtime *runtime_new(struct config *cfg, struct config_errors *errs)
{
    struct runtime *rt = calloc(1, sizeof *rt);
    unsigned char secret[32];
    if (!rt) {
        config_free(cfg);
        return NULL;
    }
    atomic_init(&rt->refs, 1);
    rt->cfg = cfg;
    size_t nerr = errs->n;

    if (runtime__load(rt, errs) != 0)
        goto fail;
    int rc = statefile_mkdirs(cfg->state_dir);
    if (rc == 0)
        rc = statefile_secret(cfg->state_dir, secret);
    if (rc != 0) {
        config_errors_add(errs, cfg->path, cfg->where.state_dir, "'state_dir': cannot prepare %s: %s",
                          cfg->state_dir, strerror(-rc));
        goto fail;
    }
    for (size_t i = 0; i < cfg->napps; i++) {
        struct app_rt *a = &rt->apps[i];
        if (a->app->aud)
            snprintf(a->aud, sizeof a->aud, "%s", a->app->aud);
        else
            runtime__aud(secret, a->app->name, a->aud);
        const struct origin *o = &a->app->origin;
        if (o->kind == ORIGIN_ECHO)
            continue;
        if (runtime__resolve(a) != 0)
            log_msg("warn", "app %s: cannot resolve origin %s: answering 502 until a reload",
                    a->app->name, o->url);
        if (asprintf(&a->pool_key, "%s|%s|%d|%s", o->url, o->ca_file ? o->ca_file : "",
                     o->tls_verify, o->host) < 0) {
            a->pool_key = NULL;
            goto fail;
        }
    }
    rt->request_log = log_sink_open(cfg->log.requests);
    if (!rt->request_log)
        config_errors_add(errs, cfg->path, cfg->where.log_requests, "'requests': cannot open log %s: %s",
                          cfg->log.requests, strerror(errno));
    rt->auth_log = log_sink_open(cfg->log.auth);
    if (!rt->auth_log)
        config_errors_add(errs, cfg->path, cfg->where.log_auth, "'auth': cannot open log %s: %s",
                          cfg->log.auth, strerror(errno));
    if (!rt->request_log || !rt->auth_log)
        goto fail;
    if (!(rt->auth_url = runtime_auth_url(cfg)))
        goto fail;
    memcpy(rt->secret, secret, sizeof secret);
    OPENSSL_cleanse(secret, sizeof secret);
    runtime__site(rt);
    return rt;
fail:
    OPENSSL_cleanse(secret, sizeof secret);
    if (errs->n == nerr)
        config_errors_add(errs, cfg->path, (struct config_pos){ 0, 0 }, "out of memory");
    runtime_unref(rt);
    return NULL;
}
