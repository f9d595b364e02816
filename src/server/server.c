/* The daemon's main thread: listening sockets, worker threads, the control socket, and the
 * signals that reload (SIGHUP), drain (SIGTERM, SIGINT) and reopen logs (SIGUSR1); publishing
 * what reloads, rotations and revocations change. */
#include "server/server.h"

#include "core/exitcode.h"
#include "auth/auth.h"
#include "core/log.h"
#include "metrics/listener.h"
#include "metrics/metrics.h"
#include "proxy/connlimit.h"
#include "proxy/local.h"
#include "proxy/proxy.h"
#include "server/control.h"
#include "server/worker.h"
#include "store/cluster.h"
#include "store/redis.h"
#include "store/store.h"
#include "token/jwt.h"
#include "token/statefile.h"
#include "token/svctokens.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void server__publish_revocations(void *srv)
{
    server_revocations_reload(srv);
}

/* The gateway's own endpoints (under /cdn-cgi/access/), in the order the proxy tries them: the
 * command line's handoff, then the auth domain's (which ends with its 404 for every other name). */
static const struct endpoint_table *const server__endpoints[] = { &auth_cli_endpoints, &auth_endpoints };

static int server__listen(const struct listener_cfg *l)
{
    int fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (l->addr.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) != 0 || listen(fd, 4096) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static void server__wake(struct server *srv)
{
    uint64_t one = 1;
    for (unsigned i = 0; i < srv->nworkers; i++)
        if (write(srv->workers[i].wake.fd, &one, sizeof one) < 0) {
            /* the counter is saturated: the worker is awake anyway */
        }
}

/* A reload must keep the same listening addresses, admin.listen included: sockets are made
 * once, at start. */
static bool server__same_listeners(struct server *srv, const struct config *cfg)
{
    if (cfg->nlisteners != srv->nlisten)
        return false;
    for (unsigned i = 0; i < srv->nlisten; i++)
        if (strcmp(cfg->listeners[i].address, srv->listen_addrs[i]))
            return false;
    if (!cfg->metrics_listen != !srv->metrics_listen)
        return false;
    return !cfg->metrics_listen || !strcmp(cfg->metrics_listen, srv->metrics_listen);
}

/* Each app's metrics label, before the runtime is published: an app that a reload keeps keeps
 * its counters. */
static void server__metrics_ids(struct server *srv, struct runtime *rt)
{
    for (size_t i = 0; i < rt->cfg->napps; i++)
        rt->apps[i].metrics_id = metrics_app_id(srv->metrics, rt->cfg->apps[i].name);
}

/* Waits until every worker still running picked up generation `gen`: a worker wakes on its
 * eventfd and takes the new pointers before it sleeps again, so this is a loop iteration. */
static void server__wait_workers(struct server *srv, uint64_t gen)
{
    uint64_t deadline = loop_clock_ms() + 2000;
    struct timespec ts = { 0, 200 * 1000 };
    for (unsigned i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        while (atomic_load(&w->gen_seen) < gen && !atomic_load(&w->stopped)) {
            if (loop_clock_ms() >= deadline) {
                log_msg("warn", "worker %u did not pick up a change within 2 s", i);
                return;
            }
            nanosleep(&ts, NULL);
        }
    }
}

/* Swaps in what is not NULL (taking the references), then waits for the workers. */
static void server__publish(struct server *srv, struct runtime *rt, struct keyset *ks,
                            struct revocations *rev, struct svc_tokens *svc)
{
    pthread_mutex_lock(&srv->lock);
    struct runtime *old_rt = rt ? srv->rt : NULL;
    struct keyset *old_ks = ks ? srv->keys : NULL;
    struct revocations *old_rev = rev ? srv->rev : NULL;
    struct svc_tokens *old_svc = svc ? srv->svc : NULL;
    if (rt) {
        srv->rt = rt;
        srv->config_gen++;
    }
    if (ks)
        srv->keys = ks;
    if (rev)
        srv->rev = rev;
    if (svc)
        srv->svc = svc;
    uint64_t gen = atomic_fetch_add(&srv->gen, 1) + 1;
    pthread_mutex_unlock(&srv->lock);
    if (ks)  /* one line however the keys changed: the control socket, a file, another node */
        log_msg("info", "signing keys loaded: %zu, newest %s", ks->n, ks->keys[0].kid);
    runtime_unref(old_rt);
    keyset_unref(old_ks);
    revocations_unref(old_rev);
    svc_tokens_unref(old_svc);
    server__wake(srv);
    server__wait_workers(srv, gen);
}

void server_publish(struct server *srv, struct keyset *ks, struct revocations *rev)
{
    server__publish(srv, NULL, ks, rev, NULL);
}

void server_revocations_reload(struct server *srv)
{
    pthread_mutex_lock(&srv->control);
    struct runtime *rt = server_runtime(srv);
    char *err = NULL;
    struct revocations *rev = revocations_load(rt->cfg->state_dir, &err);
    if (rev)
        server_publish(srv, NULL, rev);
    else
        log_msg("error", "revocations: %s", err ? err : "cannot load");
    free(err);
    pthread_mutex_unlock(&srv->control);
    runtime_unref(rt);
}

struct runtime *server_runtime(struct server *srv)
{
    pthread_mutex_lock(&srv->lock);
    struct runtime *rt = srv->rt;
    runtime_ref(rt);
    pthread_mutex_unlock(&srv->lock);
    return rt;
}

unsigned server_connections(struct server *srv)
{
    unsigned n = 0;
    for (unsigned i = 0; i < srv->nworkers; i++)
        n += atomic_load_explicit(&srv->workers[i].ctx.nconns, memory_order_relaxed);
    return n;
}

static void server__record_reload(struct server *srv, bool ok, const struct config_errors *errs)
{
    pthread_mutex_lock(&srv->lock);
    config_errors_clear(&srv->last_reload.errors);
    for (size_t i = 0; i < errs->n; i++) {
        char **n = realloc(srv->last_reload.errors.lines, (i + 1) * sizeof *n);
        if (!n || !(n[i] = strdup(errs->lines[i]))) {
            srv->last_reload.errors.lines = n ? n : srv->last_reload.errors.lines;
            break;
        }
        srv->last_reload.errors.lines = n;
        srv->last_reload.errors.n = i + 1;
    }
    srv->last_reload.done = true;
    srv->last_reload.ok = ok;
    srv->last_reload.at = time(NULL);
    pthread_mutex_unlock(&srv->lock);
}

int server_reload(struct server *srv, struct config_errors *errs)
{
    pthread_mutex_lock(&srv->control);
    notify_send(&srv->notify, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading %s",
                notify_monotonic_usec(), srv->config_path);
    size_t first = errs->n;
    struct config *cfg = config_load(srv->config_path, errs);
    if (cfg && !server__same_listeners(srv, cfg)) {
        config_errors_add(errs, srv->config_path, cfg->nlisteners ? cfg->listeners[0].pos : (struct config_pos){ 0, 0 },
                          "the listen or admin.listen addresses changed: restart latchd to apply that");
        config_free(cfg);
        cfg = NULL;
    }
    struct runtime *rt = cfg ? runtime_new(cfg, errs) : NULL;
    struct config_errors mine = { errs->n > first ? errs->lines + first : NULL, errs->n - first };
    server__record_reload(srv, rt != NULL, &mine);
    metrics_reload(srv->metrics, rt != NULL);
    if (rt) {
        server__metrics_ids(srv, rt);
        struct cluster_cfg cc = cluster_cfg_from(rt->cfg);
        cluster_update(srv->cluster, &cc);
        server__publish(srv, rt, NULL, NULL, NULL);
        log_msg("info", "reloaded %s", srv->config_path);
        notify_send(&srv->notify, "READY=1\nSTATUS=serving; reloaded %s", srv->config_path);
    } else {
        for (size_t i = first; i < errs->n; i++)
            log_msg("error", "reload refused (the running configuration is kept): %s", errs->lines[i]);
        notify_send(&srv->notify, "READY=1\nSTATUS=serving; reload refused: %zu error(s) in %s, "
                    "the running configuration is kept", errs->n - first, srv->config_path);
    }
    pthread_mutex_unlock(&srv->control);
    return rt ? 0 : -1;
}

/* Publishes new signing keys or revocations when another process (latchd keys rotate or
 * latchd revoke without a daemon to ask, another node's mirror) changed them in state_dir, or
 * when the newest key is due for rotation. Skipped while the control socket changes something:
 * it publishes what it changed itself. */
/* A state file that cannot be read now (at the open-files limit, say) is tried again every
 * poll (250 ms): its error is logged once per STATE_ERROR_EVERY_MS per kind, with a count. */
#define STATE_ERROR_EVERY_MS 10000
enum { STATE_KEYS, STATE_REVOCATIONS, STATE_SERVICE_TOKENS, STATE_KINDS };

static void server__state_error(int kind, char *err)
{
    static const char *const what[STATE_KINDS] = { "signing keys", "revocations", "service tokens" };
    static uint64_t last[STATE_KINDS];
    static unsigned quiet[STATE_KINDS];
    uint64_t now = loop_clock_ms();
    if (last[kind] && now - last[kind] < STATE_ERROR_EVERY_MS) {
        quiet[kind]++;
    } else {
        log_msg("error", "%s: %s (%u more failures since the last message)", what[kind],
                err ? err : "cannot load", quiet[kind]);
        last[kind] = now;
        quiet[kind] = 0;
    }
    free(err);
}

static void server__refresh_state(struct server *srv)
{
    if (pthread_mutex_trylock(&srv->control) != 0)
        return;
    const struct config *cfg = srv->rt->cfg;
    struct keyset *ks = NULL;
    struct revocations *rev = NULL;
    char *err = NULL;
    /* a due rotation is made by one node of a cluster (which holds the claim for half a
     * period, 30 s at most); the others load its key when it lands */
    int64_t hold_s = cfg->key_rotation_s / 2 < 30 ? cfg->key_rotation_s / 2 : 30;
    bool rotate = keyset_due(srv->keys, cfg->key_rotation_s, time(NULL)) &&
                  cluster_claim_rotation(srv->store, hold_s);
    if (rotate || keyset_stale(srv->keys, cfg->state_dir)) {
        ks = keys_load(cfg->state_dir, rotate ? cfg->key_rotation_s : 0, cfg->key_overlap_s, false, &err);
        if (!ks) {
            server__state_error(STATE_KEYS, err);
            err = NULL;
        } else if (ks->made) { /* not a key another node made and this one just read */
            log_auth(srv->rt->auth_log, "key_rotation", NULL, NULL, NULL, NULL, true, ks->keys[0].kid);
        }
    }
    if (revocations_stale(srv->rev, cfg->state_dir)) {
        rev = revocations_load(cfg->state_dir, &err);
        if (!rev) {
            server__state_error(STATE_REVOCATIONS, err);
            err = NULL;
        }
    }
    struct svc_tokens *svc = NULL;
    if (svc_tokens_stale(srv->svc, cfg->state_dir)) {
        svc = svc_tokens_load(cfg->state_dir, &err);
        if (!svc)
            server__state_error(STATE_SERVICE_TOKENS, err);
    }
    if (ks || rev || svc)
        server__publish(srv, NULL, ks, rev, svc);
    pthread_mutex_unlock(&srv->control);
}

static void server__reopen_logs(struct server *srv)
{
    pthread_mutex_lock(&srv->lock);
    int a = log_sink_reopen(srv->rt->request_log);
    int b = log_sink_reopen(srv->rt->auth_log);
    pthread_mutex_unlock(&srv->lock);
    if (a || b)
        log_msg("error", "reopening logs: %s", strerror(-(a ? a : b)));
    else
        log_msg("info", "logs reopened");
}

static void server__drain(struct server *srv)
{
    log_msg("info", "draining: no new connections; finishing requests in flight");
    notify_send(&srv->notify, "STOPPING=1\nSTATUS=draining: finishing requests in flight");
    atomic_store(&srv->draining, true);
    server__wake(srv);
    /* the last worker to stop watching the listeners shuts them (worker.c): new connections
     * are refused from then on. A worker stuck for 10 s: shut them from here. They are closed
     * only once every worker has been joined, never under a worker that may still use them. */
    struct timespec ts = { 0, 5 * 1000 * 1000 };
    for (int i = 0; i < 2000 && srv->nworkers && !atomic_load(&srv->listeners_off); i++)
        nanosleep(&ts, NULL);
    if (!atomic_load(&srv->listeners_off))
        for (unsigned i = 0; i < srv->nlisten; i++)
            shutdown(srv->listen_fds[i], SHUT_RD);
}

/* A handoff box was sealed (by an endpoint of this node, or on another node): the long polls
 * parked here look for theirs. */
static void server__news(void *srv)
{
    worker_signal_parked(srv);
}

/* The store; with Redis, this node's state_dir first becomes a copy of the cluster's. */
static int server__store(struct server *srv, const struct config *cfg)
{
    char *err = NULL;
    if (strncmp(cfg->store, "redis:", 6) != 0) {
        srv->store = store_embedded_new();
        return srv->store ? 0 : -1;
    }
    srv->store = cluster_redis_open(cfg, &err);
    struct cluster_cfg cc = cluster_cfg_from(cfg);
    int rc = !srv->store || statefile_mkdirs(cfg->state_dir) != 0 ? -1 : cluster_bootstrap(srv->store, &cc, &err);
    if (err)
        log_msg(rc ? "error" : "warn", "store %s: %s", cfg->store, err);
    else if (rc == 0)
        log_msg("info", "store %s: shared state in sync", cfg->store);
    free(err);
    return rc;
}

static unsigned server__cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

static int server__start_worker(struct server *srv, unsigned i)
{
    struct worker *w = &srv->workers[i];
    w->srv = srv;
    w->ctx.node = srv;
    w->id = i;
    w->ctx.loop = loop_new();
    w->ctx.bufs.max_free = 256;
    sb_init(&w->ctx.logbuf, 1 << 20);
    runtime_ref(srv->rt);
    w->ctx.rt = srv->rt;
    keyset_ref(srv->keys);
    w->ctx.keys = srv->keys;
    revocations_ref(srv->rev);
    w->ctx.rev = srv->rev;
    svc_tokens_ref(srv->svc);
    w->ctx.svc = srv->svc;
    w->ctx.tokens = token_cache_new(4096);
    w->rt_gen = atomic_load(&srv->gen);
    atomic_init(&w->gen_seen, w->rt_gen);
    atomic_init(&w->stopped, false);
    atomic_init(&w->ctx.nconns, 0);
    w->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    mailbox_init(&w->ctx.mailbox, w->wake.fd);
    w->ctx.store = srv->store;
    w->ctx.jobs = srv->jobs;
    w->nlisteners = srv->nlisten;
    w->listeners = calloc(srv->nlisten, sizeof *w->listeners);
    w->ctx.metrics = metrics_worker(srv->metrics, i);
    for (unsigned j = 0; w->listeners && j < srv->nlisten; j++) {
        w->listeners[j].io.fd = srv->listen_fds[j];
        w->listeners[j].index = j;
    }
    if (!w->ctx.loop || w->wake.fd < 0 || !w->listeners ||
        proxy_worker_init(&w->ctx, srv->climit) != 0 ||
        pthread_create(&w->thread, NULL, worker_main, w) != 0)
        return -1;
    return 0;
}

static void server__free_worker(struct worker *w)
{
    mailbox_destroy(&w->ctx.mailbox);
    runtime_unref(w->ctx.rt);
    keyset_unref(w->ctx.keys);
    revocations_unref(w->ctx.rev);
    svc_tokens_unref(w->ctx.svc);
    token_cache_free(w->ctx.tokens);
    proxy_worker_free(&w->ctx);
    buf_pool_clear(&w->ctx.bufs);
    sb_free(&w->ctx.logbuf);
    if (w->wake.fd >= 0)
        close(w->wake.fd);
    loop_free(w->ctx.loop);
    free(w->listeners);
}

/* Only this thread takes these signals: blocked before any thread starts (jobs, workers,
 * control socket), and SIGPIPE ignored. */
static void server__block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* A configuration latchd check refuses is refused here with the same words (on stderr) and
 * status, before anything is touched (state_dir, the store). NULL when refused. */
static struct config *server__checked_config(const char *path)
{
    struct config_errors errs = { 0 }, warns = { 0 };
    struct config *cfg = config_load(path, &errs);
    if (cfg && runtime_check(cfg, &errs, &warns) != 0) {
        config_free(cfg);
        cfg = NULL;
    }
    config_errors_print(&errs, stderr);
    config_errors_print(&warns, stderr);
    config_errors_clear(&errs);
    config_errors_clear(&warns);
    return cfg;
}

/* Claims state_dir for this daemon before anything in it is touched (a bad one: runtime_new
 * says why), opens the store, then builds the runtime from cfg (which it takes). The exit
 * status when it fails, else LATCH_EXIT_OK. */
static int server__build(struct server *srv, struct config *cfg)
{
    if (statefile_mkdirs(cfg->state_dir) == 0) {
        char *cerr = NULL;
        srv->ctl = control_claim(cfg->state_dir, &cerr);
        if (!srv->ctl) {
            fprintf(stderr, "latchd: %s\n", cerr ? cerr : "cannot make the admin socket");
            log_msg("error", "%s", cerr ? cerr : "cannot make the admin socket");
            free(cerr);
            config_free(cfg);
            return LATCH_EXIT_FAILED;
        }
    }
    if (server__store(srv, cfg) != 0) {
        config_free(cfg);
        return LATCH_EXIT_FAILED;
    }
    struct config_errors errs = { 0 };
    srv->rt = runtime_new(cfg, &errs);
    if (!srv->rt) { /* what changed since the check, or state_dir and log files */
        config_errors_print(&errs, stderr);
        config_errors_clear(&errs);
        return LATCH_EXIT_CONFIG;
    }
    return LATCH_EXIT_OK;
}

/* The signing keys, revocations and service tokens in state_dir, and the job threads. */
static int server__load_state(struct server *srv)
{
    const struct config *cfg = srv->rt->cfg;
    char *err = NULL;
    /* with Redis a rotation due at start is left to server__refresh_state, which claims it:
     * a whole cluster restarting then makes one key, not one per node */
    srv->keys = keys_load(cfg->state_dir, store_remote(srv->store) ? 0 : cfg->key_rotation_s,
                          cfg->key_overlap_s, false, &err);
    srv->rev = srv->keys ? revocations_load(cfg->state_dir, &err) : NULL;
    srv->svc = srv->rev ? svc_tokens_load(cfg->state_dir, &err) : NULL;
    if (!srv->keys || !srv->rev || !srv->svc) {
        log_msg("error", "%s", err ? err : "cannot load the signing keys, revocations or service tokens");
        free(err);
        return -1;
    }
    srv->jobs = jobs_new(store_remote(srv->store) ? 8 : 4); /* with Redis, every login step runs there */
    if (!srv->jobs) {
        log_msg("error", "cannot start the store or the job threads");
        return -1;
    }
    return 0;
}

/* The listening sockets: made once, at start (a reload keeps them). */
static int server__open_listeners(struct server *srv)
{
    const struct config *cfg = srv->rt->cfg;
    srv->nlisten = (unsigned)cfg->nlisteners;
    srv->listen_fds = calloc(srv->nlisten, sizeof *srv->listen_fds);
    srv->listen_addrs = calloc(srv->nlisten, sizeof *srv->listen_addrs);
    if (!srv->listen_fds || !srv->listen_addrs)
        return -1;
    for (unsigned i = 0; i < srv->nlisten; i++)
        srv->listen_fds[i] = -1;
    for (unsigned i = 0; i < srv->nlisten; i++) {
        srv->listen_addrs[i] = strdup(cfg->listeners[i].address);
        srv->listen_fds[i] = server__listen(&cfg->listeners[i]);
        if (srv->listen_fds[i] < 0) {
            log_msg("error", "cannot listen on %s: %s", cfg->listeners[i].address,
                    strerror(-srv->listen_fds[i]));
            return -1;
        }
    }
    return 0;
}

/* The workers' slots and counters, the per-client connection counts, and the metrics listener
 * (admin.listen). */
static int server__prepare_workers(struct server *srv)
{
    const struct config *cfg = srv->rt->cfg;
    srv->nworkers = cfg->workers ? cfg->workers : server__cores();
    srv->metrics = metrics_new(srv->nworkers, srv->store);
    srv->workers = calloc(srv->nworkers, sizeof *srv->workers);
    srv->climit = connlimit_new();
    if (!srv->metrics || !srv->workers || !srv->climit) {
        log_msg("error", "out of memory");
        return -1;
    }
    server__metrics_ids(srv, srv->rt);
    if (cfg->metrics_listen) {
        char *err = NULL;
        srv->metrics_listen = strdup(cfg->metrics_listen);
        srv->metrics_listener = metrics_listener_start(srv->metrics, cfg->metrics_listen,
                                                       (const struct sockaddr *)&cfg->metrics_addr,
                                                       cfg->metrics_addrlen, &err);
        if (!srv->metrics_listener || !srv->metrics_listen) {
            log_msg("error", "%s", err ? err : "out of memory");
            free(err);
            return -1;
        }
    }
    return 0;
}

/* Starts every worker. When one cannot start, those already running drain and -1: they are
 * joined all the same, and latchd exits 1. */
static int server__start_workers(struct server *srv)
{
    for (unsigned i = 0; i < srv->nworkers; i++) {
        if (server__start_worker(srv, i) != 0) {
            log_msg("error", "cannot start worker %u", i);
            server__free_worker(&srv->workers[i]);
            srv->nworkers = i;
            server__drain(srv);
            return -1;
        }
    }
    return 0;
}

/* Once the workers serve: the cluster thread, the control socket's thread, and the word to the
 * logs and the service manager. */
static void server__announce(struct server *srv)
{
    const struct config *cfg = srv->rt->cfg;
    if (store_remote(srv->store)) {
        struct cluster_cfg cc = cluster_cfg_from(cfg);
        srv->cluster = cluster_start(srv->store, &cc, server__news, srv);
    }
    for (unsigned i = 0; i < srv->nlisten; i++)
        log_msg("info", "latchd listening on %s%s (%u workers)", cfg->listeners[i].address,
                cfg->listeners[i].ncerts ? " (TLS)" : "", srv->nworkers);
    int rc = control_start(srv->ctl, srv);
    if (rc != 0)
        log_msg("error", "admin socket: cannot start its thread: %s", strerror(-rc));
    notify_send(&srv->notify, "READY=1\nMAINPID=%d\nSTATUS=serving on %s (%u workers)",
                (int)getpid(), srv->listen_addrs[0], srv->nworkers);
    if (srv->metrics_listener)
        log_msg("info", "metrics on http://%s/metrics", srv->metrics_listen);
}

/* The main thread's loop: the signals, and the state files' poll, until SIGTERM or SIGINT
 * (then the workers drain). */
static void server__serve(struct server *srv, const sigset_t *set)
{
    for (;;) {
        siginfo_t si;
        struct timespec ts = { 0, 250 * 1000 * 1000 };
        int sig = sigtimedwait(set, &si, &ts);
        if (sig == SIGHUP) {
            struct config_errors rerrs = { 0 };
            server_reload(srv, &rerrs); /* logs the errors itself */
            config_errors_clear(&rerrs);
        } else if (sig == SIGUSR1) {
            server__reopen_logs(srv);
        } else if (sig == SIGTERM || sig == SIGINT) {
            server__drain(srv);
            return;
        }
        server__refresh_state(srv); /* revocations take effect within a second */
    }
}

/* Waits for the workers (which drain), then stops the threads that may still serve them. */
static void server__join(struct server *srv)
{
    for (unsigned i = 0; i < srv->nworkers; i++)
        pthread_join(srv->workers[i].thread, NULL);
    cluster_stop(srv->cluster);
    control_stop(srv->ctl); /* after the workers: it may be waiting for them */
    srv->ctl = NULL;
    jobs_free(srv->jobs); /* what was still running posts its result: drained below */
    srv->jobs = NULL;
    for (unsigned i = 0; i < srv->nworkers; i++)
        server__free_worker(&srv->workers[i]);
    log_msg("info", "latchd stopped");
}

/* Frees what server_run made, whichever phase it reached. */
static void server__free(struct server *srv)
{
    control_stop(srv->ctl);
    for (unsigned i = 0; i < srv->nlisten; i++) {
        if (srv->listen_fds && srv->listen_fds[i] >= 0)
            close(srv->listen_fds[i]);
        if (srv->listen_addrs)
            free(srv->listen_addrs[i]);
    }
    free(srv->listen_fds);
    free(srv->listen_addrs);
    metrics_listener_stop(srv->metrics_listener); /* the workers are joined: nothing writes the counters */
    metrics_free(srv->metrics);
    connlimit_free(srv->climit);
    free(srv->metrics_listen);
    free(srv->workers);
    runtime_unref(srv->rt);
    keyset_unref(srv->keys);
    revocations_unref(srv->rev);
    svc_tokens_unref(srv->svc);
    jobs_free(srv->jobs);
    store_free(srv->store);
    config_errors_clear(&srv->last_reload.errors);
    notify_close(&srv->notify);
    free(srv->config_abs);
    pthread_mutex_destroy(&srv->control);
    pthread_mutex_destroy(&srv->lock);
}

int server_run(const char *config_path)
{
    struct server srv = { .config_path = config_path };
    pthread_mutex_init(&srv.lock, NULL);
    pthread_mutex_init(&srv.control, NULL);
    srv.started_ms = loop_clock_ms();
    srv.config_gen = 1;
    srv.config_abs = realpath(config_path, NULL);
    notify_open(&srv.notify); /* before any thread starts: it edits the environment */
    sigset_t set;
    server__block_signals(&set);
    /* the gateway's own endpoints: auth's tables, before any worker reads them */
    local_set_endpoints(server__endpoints, 2, server__publish_revocations, server__news);

    int status = LATCH_EXIT_CONFIG;
    struct config *cfg = server__checked_config(config_path);
    if (cfg && (status = server__build(&srv, cfg)) == LATCH_EXIT_OK) {
        status = LATCH_EXIT_FAILED;
        if (server__load_state(&srv) == 0 && server__open_listeners(&srv) == 0 &&
            server__prepare_workers(&srv) == 0) {
            if (server__start_workers(&srv) == 0) {
                server__announce(&srv);
                server__serve(&srv, &set);
                status = LATCH_EXIT_OK;
            }
            server__join(&srv); /* also the workers that ran when one could not start */
        }
    }
    server__free(&srv);
    return status;
}
