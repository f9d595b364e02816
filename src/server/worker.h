/* A worker thread: what it gives the requests it runs (its context, request/worker_ctx.h: the
 * event loop, buffers, the proxy's state behind proxy_worker_* in proxy/proxy.h…), its share of
 * the listeners, reloads and drain. Nothing in a worker is touched by another thread: it picks
 * up (with references) the runtime, keys and revocations the server publishes; others only
 * read its atomics (the generation it picked up, whether it stopped, its connection count). */
#ifndef LATCH_WORKER_H
#define LATCH_WORKER_H

#include "core/loop.h"
#include "request/worker_ctx.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct server;

struct listen_handler {
    struct io_handler io;
    struct worker *w;
    unsigned index; /* into the runtime's cfg->listeners */
};

struct worker {
    struct worker_ctx ctx;     /* what its requests see (the proxy's `w`) */
    struct server *srv;
    unsigned id;
    pthread_t thread;
    uint64_t rt_gen;           /* the generation of ctx.rt */
    atomic_uint_fast64_t gen_seen; /* rt_gen, for the thread that waits for a publish to land */
    atomic_bool stopped;       /* worker_main returned */
    struct io_handler wake;    /* eventfd: reload published, drain started, job done */
    struct listen_handler *listeners;
    unsigned nlisteners;
    bool listening;
    uint64_t drain_deadline;
    uint64_t listen_until;     /* draining: accepting what the kernel completes until then */
    struct timer grace;        /* wakes the loop at listen_until */
    struct timer_queue grace_q;
    struct timer accept_pause; /* the listeners are out of epoll until it fires (worker.c) */
    struct timer_queue accept_pause_q;
    bool accept_paused;
    uint32_t accept_pause_ms;  /* the next pause: doubles while accepting keeps failing */
    struct worker_ctx_notice accept_notice;
    uint64_t shed_total;       /* silent connections closed since accept_notice's last line */
    uint64_t news_seen;
};

/* Runs the worker loop until drained. */
void *worker_main(void *arg);

/* Tells every worker that parked requests may have news (a handoff box was sealed); from any
 * thread. */
void worker_signal_parked(struct server *srv);

#endif
