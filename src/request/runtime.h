/* A runtime is everything built from one configuration file: the config itself, the route
 * table, TLS contexts, resolved origins, log sinks. It is immutable and reference-counted:
 * a reload builds a new one and each request keeps the one it started with. The server builds
 * it (server/runtime.h); a worker's requests read it. */
#ifndef LATCH_REQUEST_RUNTIME_H
#define LATCH_REQUEST_RUNTIME_H

#include "config/config.h"
#include "core/log.h"
#include "request/endpoint.h"
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
    struct endpoint_site site;         /* what the gateway's own endpoints see of it */
};

void runtime_ref(struct runtime *rt);
/* Drops a reference; the last one frees the runtime and its config. */
void runtime_unref(struct runtime *rt);
/* Frees what a runtime holds, not its config nor rt itself (a runtime that was never
 * published: runtime_check's). */
void runtime_release(struct runtime *rt);

/* How long a token lives (SPEC.md §2): the policy's session_duration, else the app's, else the
 * global one. */
static inline int64_t runtime_session_s(const struct runtime *rt, const struct app *app,
                                        const struct policy *p)
{
    return endpoint_session_s(rt->cfg, app, p);
}

static inline struct app_rt *runtime_app(struct runtime *rt, const struct app *app)
{
    return &rt->apps[app - rt->cfg->apps];
}

#endif
