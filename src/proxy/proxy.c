/* The proxy's state in a worker (proxy.h: proxy_worker_*): what server/worker.c starts, drains,
 * closes and frees without reaching into it. */
#include "proxy/proxy.h"
#include "proxy/h2.h"

#include "proxy/local.h"
#include "request/worker_ctx.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINGER_MS 2000    /* reading what a client still sends after a closing response */
#define POOL_IDLE_MS 30000
#define PARKED_MS 25000   /* a long poll's wait: under the 30 s the CLI waits */

#define NQUEUES 10
#define TUNNEL_TICK_MS 1000 /* service tokens that expire close their tunnels this late at most */

static void proxy__queues(struct proxy_worker *pw, struct timer_queue *q[NQUEUES])
{
    struct timer_queue *all[NQUEUES] = { &pw->timers.header, &pw->timers.idle, &pw->timers.client,
                                         &pw->timers.origin_connect, &pw->timers.origin_response,
                                         &pw->timers.linger, &pw->timers.pool_idle, &pw->timers.parked,
                                         &pw->timers.tunnel_idle, &pw->timers.tunnel_tick };
    memcpy(q, all, sizeof all);
}

int proxy_worker_init(struct worker_ctx *w, struct connlimit *climit)
{
    struct proxy_worker *pw = calloc(1, sizeof *pw);
    if (!pw)
        return -1;
    pw->climit = climit;
    pw->tunnel_tick.cb = proxy__tunnel_tick;
    struct timer_queue *q[NQUEUES];
    proxy__queues(pw, q);
    for (size_t i = 0; i < NQUEUES; i++)
        loop_queue_add(w->loop, q[i], 60000);
    unsigned char seed[8];
    if (getentropy(seed, sizeof seed) == 0)
        memcpy(&pw->id_seed, seed, sizeof seed);
    w->proxy = pw;
    proxy_worker_reload(w);
    return 0;
}

void proxy_worker_reload(struct worker_ctx *w)
{
    struct proxy_worker *pw = w->proxy;
    const struct timeouts_cfg *t = &w->rt->cfg->timeouts;
    timer_queue_set(&pw->timers.header, t->header_ms);
    timer_queue_set(&pw->timers.idle, t->idle_ms);
    timer_queue_set(&pw->timers.client, t->client_ms);
    timer_queue_set(&pw->timers.origin_connect, t->origin_connect_ms);
    timer_queue_set(&pw->timers.origin_response, t->origin_response_ms);
    timer_queue_set(&pw->timers.linger, LINGER_MS);
    timer_queue_set(&pw->timers.pool_idle, POOL_IDLE_MS);
    timer_queue_set(&pw->timers.parked, PARKED_MS);
    timer_queue_set(&pw->timers.tunnel_idle, t->tunnel_idle_ms);
    timer_queue_set(&pw->timers.tunnel_tick, TUNNEL_TICK_MS);
    proxy__tunnels_recheck(w); /* new revocations, service tokens or policies: who may stay */
}

void proxy_worker_drain(struct worker_ctx *w)
{
    proxy__tunnels_drain(w);
    proxy__drain_conns(w);
    upstream_close_pools(w->proxy);
    h2up_close_pools(w->proxy, false);
}

void proxy_worker_close_all(struct worker_ctx *w)
{
    while (w->proxy->conns)
        proxy__close(w->proxy->conns);
    upstream_close_pools(w->proxy);
    h2up_close_pools(w->proxy, true);
}

void proxy_worker_news(struct worker_ctx *w)
{
    local_retry_parked(w);
}

void proxy_worker_reap(struct worker_ctx *w)
{
    proxy__h2_flush(w->proxy);
    proxy__reap_conns(w->proxy);
    h2up_reap(w->proxy);
}

void proxy_worker_free(struct worker_ctx *w)
{
    struct proxy_worker *pw = w->proxy;
    if (!pw)
        return;
    proxy_worker_close_all(w);
    upstream_free_pools(pw);
    h2up_free_pools(pw);
    proxy__reap_conns(pw);
    proxy__minted_free(pw);
    timer_cancel(&pw->tunnel_tick);
    struct timer_queue *q[NQUEUES];
    proxy__queues(pw, q);
    for (size_t i = 0; i < NQUEUES; i++)
        loop_queue_del(w->loop, q[i]);
    free(pw);
    w->proxy = NULL;
}
