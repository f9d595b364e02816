/* A worker thread: one event loop, its buffer pool, and the proxy's state (its connections
 * and origin pools, proxy_worker_* in proxy/proxy.h). Nothing in a worker is touched by another thread: it picks up (with references) the
 * runtime, keys and revocations the server publishes; others only read its atomics (the
 * generation it picked up, whether it stopped, its connection count). */
#ifndef LATCH_WORKER_H
#define LATCH_WORKER_H

#include "core/buf.h"
#include "core/jobs.h"
#include "core/loop.h"
#include "core/strbuf.h"
#include "server/runtime.h"
#include "token/cache.h"
#include "token/revoke.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct server;
struct proxy_worker;
struct store;
struct connlimit;

/* A log line for a condition that may repeat thousands of times a second (worker_notice). */
struct worker_notice {
    uint64_t next_ms; /* no line before then */
    uint64_t count;   /* times since the last line */
};

struct listen_handler {
    struct io_handler io;
    struct worker *w;
    unsigned index; /* into the runtime's cfg->listeners */
};

struct worker {
    struct server *srv;
    unsigned id;
    pthread_t thread;
    struct loop *loop;
    struct buf_pool bufs;
    struct runtime *rt;        /* the newest runtime this worker picked up */
    uint64_t rt_gen;
    atomic_uint_fast64_t gen_seen; /* rt_gen, for the thread that waits for a publish to land */
    atomic_bool stopped;       /* worker_main returned */
    struct keyset *keys;       /* picked up with the runtime */
    struct revocations *rev;
    struct svc_tokens *svc;
    struct token_cache *tokens;
    struct io_handler wake;    /* eventfd: reload published, drain started, job done */
    struct mailbox mailbox;    /* finished background jobs, run on this thread */
    struct store *store;       /* the server's shared store */
    struct jobs *jobs;         /* the server's background pool */
    struct listen_handler *listeners;
    unsigned nlisteners;
    bool listening, draining;
    uint64_t drain_deadline;
    uint64_t listen_until;     /* draining: accepting what the kernel completes until then */
    struct timer grace;        /* wakes the loop at listen_until */
    struct timer_queue grace_q;
    struct timer accept_pause; /* the listeners are out of epoll until it fires (worker.c) */
    struct timer_queue accept_pause_q;
    bool accept_paused;
    uint32_t accept_pause_ms;  /* the next pause: doubles while accepting keeps failing */
    struct worker_notice accept_notice, cap_notice;
    uint64_t shed_total;       /* silent connections closed since accept_notice's last line */
    struct connlimit *climit;  /* the server's open connections per client */
    struct proxy_worker *proxy; /* client connections, origin pools, parked long polls… */
    atomic_uint nconns;        /* open client connections: written by the proxy on this thread
                                * only; others read it relaxed (status) */
    uint64_t news_seen;
    struct strbuf logbuf;      /* request log lines waiting for the write before sleeping */
    struct runtime *log_rt;    /* whose request log they go to (a reference) */
    struct metrics_worker *metrics; /* this worker's counters (only this thread writes them) */
};

/* Counts one more occurrence of a condition; true when a log line is due (at most one per
 * 10 s): the caller logs n->count (the occurrences since the last line) and sets it to 0. */
bool worker_notice(struct worker *w, struct worker_notice *n);

/* Runs the worker loop until drained. */
void *worker_main(void *arg);

/* The runtime a new request should use (a reference for the caller). */
struct runtime *worker_runtime(struct worker *w);

/* Tells every worker that parked requests may have news (a handoff box was sealed). */
void worker_signal_parked(struct worker *w);

/* Queues a request log line for rt's request log; lines are written in one system call when
 * the worker is about to sleep (or when 16 KiB are waiting). */
struct strbuf *worker_log_begin(struct worker *w, struct runtime *rt);
void worker_log_flush(struct worker *w);

#endif
