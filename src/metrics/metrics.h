/* Prometheus metrics (text exposition format 0.0.4): one registry per daemon, one block of
 * counters per worker thread. The hot path (a request ending, an origin failing) writes only
 * its own worker's block, without a lock or an atomic read-modify-write; a scrape sums the
 * blocks with relaxed loads. Rare events (logins, handoffs, reloads) go to the registry. */
#ifndef LATCH_METRICS_H
#define LATCH_METRICS_H

#include "core/strbuf.h"
#include "policy/policy.h"

#include <stdbool.h>
#include <stdint.h>

struct metrics;
struct metrics_worker;
struct store;

/* latch_origin_errors_total{kind}: what went wrong with an origin when we answered 502/504. */
enum metrics_origin_error {
    METRICS_ORIGIN_CONNECT,  /* no connection: refused, unreachable, unresolved */
    METRICS_ORIGIN_TIMEOUT,  /* connect or response deadline (504) */
    METRICS_ORIGIN_RESET,    /* the connection broke or closed before the response ended */
    METRICS_ORIGIN_TLS,      /* TLS handshake with an https origin */
    METRICS_ORIGIN_PROTOCOL, /* the origin answered something that is not an HTTP response */
    METRICS_ORIGIN_KINDS
};

/* latch_handoffs_total{outcome} (SPEC.md §7). */
enum metrics_handoff {
    METRICS_HANDOFF_SEALED,    /* a browser confirmed; the box is stored */
    METRICS_HANDOFF_DELIVERED, /* the CLI took the box */
    METRICS_HANDOFF_PENDING,   /* a long poll ended empty */
    METRICS_HANDOFFS
};

/* The registry and `nworkers` worker blocks. `store` (may be NULL) is asked store_up() and
 * store_backend() at each scrape. NULL when out of memory. */
struct metrics *metrics_new(unsigned nworkers, struct store *store);
/* After every thread that writes or scrapes stopped. NULL is ignored. */
void metrics_free(struct metrics *m);
/* Worker i's block (i < nworkers); only that worker's thread may write it. */
struct metrics_worker *metrics_worker(struct metrics *m, unsigned i);

/* A small stable number for an app name, the same for the life of the process (so a reload
 * keeps an app's counters); 0 is "no app". Takes the registry lock: call it when a runtime is
 * built, not per request. */
uint32_t metrics_app_id(struct metrics *m, const char *name);

/* --- the hot path: the worker's own block (mw may be NULL: nothing is counted) --- */

/* A request the gateway answered or proxied, as its log line says: app id, decision, status
 * sent and the time from its head to the end of the response. */
void metrics_request(struct metrics_worker *mw, uint32_t app, enum access_decision decision,
                     int status, uint64_t duration_us);
void metrics_origin_error(struct metrics_worker *mw, uint32_t app, enum metrics_origin_error kind);
/* A tcp:// app's tunnel (proxy/tunnel.c): `open` +1 when one opens, -1 when it closes
 * (latch_tunnels_open), and payload bytes carried to and from the origin since the last call
 * (latch_tunnel_bytes_total{direction}). */
void metrics_tunnel(struct metrics_worker *mw, int open, uint64_t to_origin, uint64_t from_origin);
/* Published by the worker before it sleeps: its open client connections and its token cache's
 * running totals. */
void metrics_worker_sample(struct metrics_worker *mw, uint64_t open_conns, uint64_t cache_hits,
                           uint64_t cache_misses);

/* --- rare events: any thread --- */

/* A login that ended (latch_logins_total); idp NULL counts as "". */
void metrics_login(struct metrics_worker *mw, const char *idp, bool success);
void metrics_handoff(struct metrics_worker *mw, enum metrics_handoff outcome);
/* A SIGHUP's outcome; an accepted one also bumps latch_config_generation. */
void metrics_reload(struct metrics *m, bool ok);

/* --- the exposition --- */

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Appends every metric in the text format to `out`. false when `out` overflowed. */
bool metrics_render(struct metrics *m, struct strbuf *out);

/* Appends s as a label value: backslash, double quote and newline escaped (\\, \", \n). */
void metrics_label_value(struct strbuf *out, const char *s);

#endif
