/* Building and releasing runtimes (runtime.h). */
#include "server/runtime.h"

#include "route/served.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void runtime__err(struct config_errors *errs, const char *file, const char *fmt, const char *arg)
{
    char *line = NULL;
    char msg[512];
    snprintf(msg, sizeof msg, fmt, arg);
    if (asprintf(&line, "%s: %s", file, msg) < 0)
        return;
    char **n = realloc(errs->lines, (errs->n + 1) * sizeof *n);
    if (!n) {
        free(line);
        return;
    }
    errs->lines = n;
    errs->lines[errs->n++] = line;
}

/* mkdir -p with mode 0700 for what it creates; refuses a state_dir others can write. */
int runtime_mkdirs(const char *path)
{
    char tmp[4096];
    if (strlen(path) >= sizeof tmp)
        return -ENAMETOOLONG;
    strcpy(tmp, path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int runtime_secret(const char *dir, unsigned char out[32])
{
    char path[4096];
    snprintf(path, sizeof path, "%s/secret", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, out, 32);
        close(fd);
        return n == 32 ? 0 : -EINVAL;
    }
    if (errno != ENOENT)
        return -errno;
    if (RAND_bytes(out, 32) != 1)
        return -EIO;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    ssize_t w = write(fd, out, 32);
    int rc = (w == 32 && fsync(fd) == 0) ? 0 : -EIO;
    close(fd);
    if (rc == 0 && link(tmp, path) != 0) /* lost a race: use the winner's */
        rc = errno == EEXIST ? 1 : -errno;
    unlink(tmp);
    return rc == 1 ? runtime_secret(dir, out) : rc;
}

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

struct runtime *runtime_new(struct config *cfg, struct config_errors *errs)
{
    struct runtime *rt = calloc(1, sizeof *rt);
    char *err = NULL;
    unsigned char secret[32];
    if (!rt) {
        config_free(cfg);
        return NULL;
    }
    atomic_init(&rt->refs, 1);
    rt->cfg = cfg;
    size_t nerr = errs->n;

    int rc = runtime_mkdirs(cfg->state_dir);
    if (rc == 0)
        rc = runtime_secret(cfg->state_dir, secret);
    if (rc != 0) {
        runtime__err(errs, cfg->state_dir, "cannot prepare state_dir: %s", strerror(-rc));
        goto fail;
    }
    rt->routes = route_build(cfg, &err);
    if (!rt->routes) {
        runtime__err(errs, cfg->path, "%s", err ? err : "cannot build routes");
        free(err);
        goto fail;
    }
    rt->apps = calloc(cfg->napps ? cfg->napps : 1, sizeof *rt->apps);
    rt->tls = calloc(cfg->nlisteners ? cfg->nlisteners : 1, sizeof *rt->tls);
    if (!rt->apps || !rt->tls)
        goto fail;
    for (size_t i = 0; i < cfg->napps; i++) {
        struct app_rt *a = &rt->apps[i];
        a->app = &cfg->apps[i];
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
        if (o->kind == ORIGIN_HTTPS) {
            a->origin_tls = tls_origin_ctx_new(o, &err);
            if (!a->origin_tls) {
                runtime__err(errs, cfg->path, "%s", err);
                free(err);
                goto fail;
            }
        }
        if (asprintf(&a->pool_key, "%s|%s|%d|%s", o->url, o->ca_file ? o->ca_file : "",
                     o->tls_verify, o->host) < 0)
            goto fail;
    }
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        if (!cfg->listeners[i].ncerts)
            continue;
        rt->tls[i] = tls_server_new(&cfg->listeners[i], &err);
        if (!rt->tls[i]) {
            runtime__err(errs, cfg->path, "%s", err ? err : "cannot load TLS");
            free(err);
            goto fail;
        }
    }
    rt->request_log = log_sink_open(cfg->log.requests);
    if (!rt->request_log)
        runtime__err(errs, cfg->log.requests, "cannot open log: %s", strerror(errno));
    rt->auth_log = log_sink_open(cfg->log.auth);
    if (!rt->auth_log)
        runtime__err(errs, cfg->log.auth, "cannot open log: %s", strerror(errno));
    if (!rt->request_log || !rt->auth_log)
        goto fail;
    if (!(rt->auth_url = runtime_auth_url(cfg)))
        goto fail;
    memcpy(rt->secret, secret, sizeof secret);
    OPENSSL_cleanse(secret, sizeof secret);
    return rt;
fail:
    OPENSSL_cleanse(secret, sizeof secret);
    if (errs->n == nerr)
        runtime__err(errs, cfg->path, "%s", "out of memory");
    runtime_unref(rt);
    return NULL;
}

void runtime_ref(struct runtime *rt)
{
    atomic_fetch_add_explicit(&rt->refs, 1, memory_order_relaxed);
}

void runtime_unref(struct runtime *rt)
{
    if (!rt || atomic_fetch_sub_explicit(&rt->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (rt->apps) {
        for (size_t i = 0; i < rt->cfg->napps; i++) {
            SSL_CTX_free(rt->apps[i].origin_tls);
            free(rt->apps[i].pool_key);
        }
    }
    if (rt->tls)
        for (size_t i = 0; i < rt->cfg->nlisteners; i++)
            tls_server_free(rt->tls[i]);
    OPENSSL_cleanse(rt->secret, sizeof rt->secret);
    log_sink_close(rt->request_log);
    log_sink_close(rt->auth_log);
    route_free(rt->routes);
    free(rt->apps);
    free(rt->tls);
    free(rt->auth_url);
    config_free(rt->cfg);
    free(rt);
}

int64_t runtime_longest_session_s(const struct config *cfg)
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
