/* A runtime is everything built from one configuration file: the config itself, the route
 * table, TLS contexts, resolved origins, log sinks. It is immutable and reference-counted:
 * a reload builds a new one and each request keeps the one it started with. */
#ifndef LATCH_RUNTIME_H
#define LATCH_RUNTIME_H

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

/* What the daemon would refuse in a loaded configuration beyond config_load's own checks, found
 * by reading only (nothing is created or written: state_dir neither): the routes (every invalid
 * domain pattern); every file it names (TLS certificates, that they parse and that each key is
 * its certificate's; client_ca bundles; origin_tls.ca_file; client_secret_file; with Redis,
 * store_key_file and store_password_file); a state_dir or log path that is not what it must be. Each error is added to errs as "FILE:LINE:COL: message" at the key that names what
 * failed, in the words runtime_new uses. Adds "FILE:LINE:COL: warning: message" to warns for
 * what works but is likely not meant: an allow policy with no identity provider to sign in
 * with, a plain listener on a network address without `public:`, an auth_domain on a port no
 * listener serves, a log directory that does not exist yet, a store_key_file without Redis.
 * 0, or -1 when it added errors. */
int runtime_check(const struct config *cfg, struct config_errors *errs, struct config_errors *warns);

/* Builds a runtime from a loaded config (takes ownership of cfg, also on failure): loads what
 * runtime_check loads, with the same errors, then creates state_dir (0700) and its secret and
 * opens the log files. NULL with errors added to `errs` ("FILE:LINE:COL: message"). */
struct runtime *runtime_new(struct config *cfg, struct config_errors *errs);

/* The auth domain's URL (SPEC.md §5: https when a listener serves TLS), malloc'd; NULL when
 * out of memory. */
char *runtime_auth_url(const struct config *cfg);
void runtime_ref(struct runtime *rt);
void runtime_unref(struct runtime *rt);

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
