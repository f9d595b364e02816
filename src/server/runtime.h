/* A runtime is everything built from one configuration file: the config itself, the route
 * table, TLS contexts, resolved origins, log sinks. It is immutable and reference-counted:
 * a reload builds a new one and each request keeps the one it started with. */
#ifndef LATCH_RUNTIME_H
#define LATCH_RUNTIME_H

#include "config/config.h"
#include "core/log.h"
#include "route/route.h"
#include "tls/tls.h"

#include <stdatomic.h>

struct app_rt {
    const struct app *app;
    char aud[65];                      /* SPEC.md §1: 64 hex characters */
    struct sockaddr_storage origin_addr;
    socklen_t origin_addrlen;          /* 0: could not be resolved (502 until a reload) */
    SSL_CTX *origin_tls;               /* https origins */
    char *pool_key;                    /* origins sharing a key share idle connections */
    uint32_t metrics_id;               /* the app's label in metrics (metrics_app_id); 0: none */
};

struct runtime {
    atomic_uint refs;
    struct config *cfg;
    struct route_table *routes;
    struct app_rt *apps;               /* parallel to cfg->apps */
    struct tls_server **tls;           /* parallel to cfg->listeners; NULL for plain HTTP */
    struct log_sink *request_log, *auth_log;
    unsigned char secret[32];          /* state_dir/secret: AUDs and person subs derive from it */
    char *auth_url;                    /* "https://auth.example.com" or http:// (SPEC.md §5) */
};

/* Builds a runtime from a loaded config (takes ownership of cfg, also on failure). Opens the
 * TLS files, the log files, creates state_dir (0700) and its secret. NULL with errors added
 * to `errs` as "FILE: message" lines. */
struct runtime *runtime_new(struct config *cfg, struct config_errors *errs);

/* The auth domain's URL (SPEC.md §5: https when a listener serves TLS), malloc'd; NULL when
 * out of memory. */
char *runtime_auth_url(const struct config *cfg);
/* The 32-byte secret AUD tags derive from: state_dir/secret, made once (0600); with a shared
 * store every node adopts the cluster's (store/cluster.c). 0, or -errno. */
int runtime_secret(const char *dir, unsigned char out[32]);
/* Creates state_dir (0700) and its parents. 0, or -errno. */
int runtime_mkdirs(const char *path);
/* The longest session any app or policy grants: no token outlives it. */
int64_t runtime_longest_session_s(const struct config *cfg);
void runtime_ref(struct runtime *rt);
void runtime_unref(struct runtime *rt);

/* How long a token lives (SPEC.md §2): the policy's session_duration, else the app's, else the
 * global one. */
static inline int64_t runtime_session_s(const struct runtime *rt, const struct app *app,
                                        const struct policy *p)
{
    if (p && p->session_duration_s)
        return p->session_duration_s;
    if (app && app->session_duration_s)
        return app->session_duration_s;
    return rt->cfg->session_duration_s;
}

static inline struct app_rt *runtime_app(struct runtime *rt, const struct app *app)
{
    return &rt->apps[app - rt->cfg->apps];
}

#endif
