/* Releasing runtimes (runtime.h): what the last reference frees. */
#include "request/runtime.h"

#include <openssl/crypto.h>
#include <stddef.h>
#include <stdlib.h>

void runtime_ref(struct runtime *rt)
{
    atomic_fetch_add_explicit(&rt->refs, 1, memory_order_relaxed);
}

void runtime_unref(struct runtime *rt)
{
    if (!rt || atomic_fetch_sub_explicit(&rt->refs, 1, memory_order_acq_rel) != 1)
        return;
    runtime_release(rt);
    config_free(rt->cfg);
    free(rt);
}

void runtime_release(struct runtime *rt)
{
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
}

/* The endpoints' view of a runtime is one of its members. */
static struct runtime *runtime__of_site(const struct endpoint_site *site)
{
    return (struct runtime *)((char *)site - offsetof(struct runtime, site));
}

const char *endpoint_aud(const struct endpoint_site *site, const struct app *app)
{
    return runtime_app(runtime__of_site(site), app)->aud;
}

void endpoint_site_hold(const struct endpoint_site *site)
{
    runtime_ref(runtime__of_site(site));
}

void endpoint_site_release(const struct endpoint_site *site)
{
    if (site)
        runtime_unref(runtime__of_site(site));
}
