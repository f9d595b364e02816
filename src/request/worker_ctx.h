/* What a worker thread gives the requests it runs: its event loop and buffers, the runtime,
 * keys and revocations it picked up, the node's shared store and job pool, its counters and
 * its request log lines. The server fills it and owns it (server/worker.h: the thread,
 * its listeners, reloads and drain); the proxy and the exchanges only read it, on the
 * worker's thread. */
#ifndef LATCH_WORKER_CTX_H
#define LATCH_WORKER_CTX_H

#include "core/buf.h"
#include "core/jobs.h"
#include "core/loop.h"
#include "core/strbuf.h"
#include "request/runtime.h"
#include "token/cache.h"
#include "token/revoke.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct proxy_worker;
struct store;
struct metrics_worker;
struct svc_tokens;

/* A log line for a condition that may repeat thousands of times a second (worker_ctx_notice). */
struct worker_ctx_notice {
    uint64_t next_ms; /* no line before then */
    uint64_t count;   /* times since the last line */
};

struct worker_ctx {
    void *node;                /* the server running it: what the callbacks it gives the
                                * proxy get (local_set_endpoints) */
    struct loop *loop;
    struct buf_pool bufs;
    struct runtime *rt;        /* the newest runtime this worker picked up */
    struct keyset *keys;       /* picked up with the runtime */
    struct revocations *rev;
    struct svc_tokens *svc;
    struct token_cache *tokens;
    struct mailbox mailbox;    /* finished background jobs, run on this thread */
    struct store *store;       /* the node's shared store */
    struct jobs *jobs;         /* the node's background pool */
    bool draining;             /* new requests get Connection: close */
    struct proxy_worker *proxy; /* client connections, origin pools, parked long polls… */
    atomic_uint nconns;        /* open client connections: written by the proxy on this thread
                                * only; others read it relaxed (status) */
    struct strbuf logbuf;      /* request log lines waiting for the write before sleeping */
    struct runtime *log_rt;    /* whose request log they go to (a reference) */
    struct metrics_worker *metrics; /* this worker's counters (only this thread writes them) */
};

/* Counts one more occurrence of a condition; true when a log line is due (at most one per
 * 10 s): the caller logs n->count (the occurrences since the last line) and sets it to 0. */
bool worker_ctx_notice(struct worker_ctx *w, struct worker_ctx_notice *n);

/* The runtime a new request should use (a reference for the caller). */
struct runtime *worker_ctx_runtime(struct worker_ctx *w);

/* Queues a request log line for rt's request log; lines are written in one system call when
 * the worker is about to sleep (worker_ctx_log_flush), or when 16 KiB are waiting. */
struct strbuf *worker_ctx_log_begin(struct worker_ctx *w, struct runtime *rt);
void worker_ctx_log_flush(struct worker_ctx *w);

#endif
