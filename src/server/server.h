/* The daemon: listening sockets, worker threads, signals (SIGHUP reload, SIGTERM/SIGINT drain,
 * SIGUSR1 log reopen), the control socket (server/control.h) and the current runtime, key set and
 * revocation list that reloads, rotations and revocations replace. */
#ifndef LATCH_SERVER_H
#define LATCH_SERVER_H

#include "config/config.h"
#include "server/notify.h"
#include "server/runtime.h"
#include "token/keys.h"
#include "token/revoke.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

struct worker;
struct control;

/* What the last reload (SIGHUP or the control socket) did; `errors` as FILE:LINE:COL lines. */
struct reload_result {
    bool done;                     /* false until the first reload */
    bool ok;
    time_t at;
    struct config_errors errors;
};
struct metrics;
struct metrics_listener;

struct server {
    const char *config_path;       /* as given on the command line (the daemon's cwd) */
    char *config_abs;              /* the same made absolute, for status */
    pthread_mutex_t lock;          /* guards rt, keys, rev, config_gen and last_reload */
    pthread_mutex_t control;       /* serializes whoever changes them: the main thread (signals,
                                      the state_dir poll) and the control socket's thread */
    struct runtime *rt;
    struct keyset *keys;           /* signing keys: replaced on rotation */
    struct revocations *rev;       /* replaced when the revocation file changes */
    struct svc_tokens *svc;        /* service tokens made with a shared store (svctokens.h) */
    struct cluster *cluster;       /* with Redis: the thread keeping state_dir in sync */
    struct store *store;           /* flows, PINs, grants, boxes (embedded or Redis) */
    struct jobs *jobs;             /* blocking calls: identity providers, SMTP */
    atomic_uint_fast64_t gen;      /* bumped on every publish */
    atomic_bool draining;
    atomic_uint stopped_listening; /* workers that took their listeners out of epoll */
    atomic_bool syns_refused;      /* draining: the listeners drop new SYNs (worker.c) */
    atomic_bool listeners_off;     /* draining: the listeners are shut; the main thread closes them */
    atomic_uint_fast64_t news;     /* bumped by worker_signal_parked */
    int *listen_fds;               /* parallel to the first runtime's cfg->listeners */
    char **listen_addrs;
    unsigned nlisten;
    char *metrics_listen;          /* admin.listen at start (NULL: none); a reload keeps it */
    struct metrics *metrics;       /* counters of every worker; served by metrics_listener */
    struct connlimit *climit;      /* open client connections per client (proxy/connlimit.h) */
    struct metrics_listener *metrics_listener; /* admin.listen: GET /metrics */
    struct worker *workers;
    unsigned nworkers;
    struct control *ctl;           /* the control socket (state_dir/admin.sock) */
    struct notifier notify;        /* the service manager (sd_notify), when there is one */
    uint64_t started_ms;           /* monotonic */
    uint64_t config_gen;           /* 1 at start, +1 per applied reload (under `lock`) */
    struct reload_result last_reload; /* under `lock` */
};

/* Loads the config, listens, runs the workers until SIGTERM/SIGINT drained them. Returns the
 * process exit status (core/exitcode.h): LATCH_EXIT_OK once drained, LATCH_EXIT_CONFIG for a
 * configuration refused (latchd check's errors, or a file that fails after it), else
 * LATCH_EXIT_FAILED (a port taken, another latchd on state_dir, a worker that cannot start). */
int server_run(const char *config_path);

/* Reads the configuration file again and publishes it (SIGHUP, the control socket's reload);
 * returns once every worker uses it. 0, or -1 with the errors appended to `errs` (FILE:LINE:COL:
 * message): the running configuration is kept. Tells the service manager RELOADING=1, then
 * READY=1 with the result. Takes srv->control. */
int server_reload(struct server *srv, struct config_errors *errs);

/* Publishes a new key set and/or revocation list (NULL: unchanged; the references are taken)
 * and returns once every running worker uses them, so that the next request anywhere sees the
 * change. The caller holds srv->control. */
void server_publish(struct server *srv, struct keyset *ks, struct revocations *rev);

/* Reads state_dir's revocations again and publishes them (server_publish): a revocation this
 * process just wrote (a logout) is in force on every worker of the node when it returns.
 * Takes srv->control; never call it from a worker's loop. */
void server_revocations_reload(struct server *srv);

/* References to what is published now (for the caller to unref). */
struct runtime *server_runtime(struct server *srv);

/* Open client connections over every worker (relaxed reads: a snapshot). */
unsigned server_connections(struct server *srv);

#endif
