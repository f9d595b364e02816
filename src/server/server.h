/* The daemon: listening sockets, worker threads, signals (SIGHUP reload, SIGTERM/SIGINT drain,
 * SIGUSR1 log reopen) and the current runtime that reloads replace. */
#ifndef LATCH_SERVER_H
#define LATCH_SERVER_H

#include "server/runtime.h"
#include "token/keys.h"
#include "token/revoke.h"

#include <pthread.h>
#include <stdatomic.h>

struct worker;
struct metrics;
struct metrics_listener;

struct server {
    const char *config_path;
    pthread_mutex_t lock;          /* guards `rt` swaps */
    struct runtime *rt;
    struct keyset *keys;           /* signing keys: replaced on rotation */
    struct revocations *rev;       /* replaced when the revocation file changes */
    struct store *store;           /* flows, PINs, grants, boxes (embedded or Redis) */
    struct jobs *jobs;             /* blocking calls: identity providers, SMTP */
    atomic_uint_fast64_t gen;      /* bumped on every publish */
    atomic_bool draining;
    atomic_uint stopped_listening;
    atomic_uint_fast64_t news;     /* bumped by worker_signal_parked */ /* workers that took their listeners out of epoll */
    int *listen_fds;               /* parallel to the first runtime's cfg->listeners */
    char **listen_addrs;
    unsigned nlisten;
    char *admin_listen;            /* admin.listen at start (NULL: none); a reload keeps it */
    struct metrics *metrics;       /* counters of every worker; served by `admin` */
    struct metrics_listener *admin;
    struct worker *workers;
    unsigned nworkers;
};

/* Loads the config, listens, runs the workers until SIGTERM/SIGINT drained them. Returns the
 * process exit status. */
int server_run(const char *config_path);

#endif
