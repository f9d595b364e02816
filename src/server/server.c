/* The daemon's main thread: listening sockets, worker threads, and the signals that reload
 * (SIGHUP), drain (SIGTERM, SIGINT) and reopen logs (SIGUSR1). */
#include "server/server.h"

#include "core/log.h"
#include "metrics/listener.h"
#include "metrics/metrics.h"
#include "proxy/proxy.h"
#include "server/worker.h"
#include "store/store.h"

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

static void server__log_errors(const char *what, struct config_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        log_msg("error", "%s: %s", what, errs->lines[i]);
}

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
    if (!cfg->admin_listen != !srv->admin_listen)
        return false;
    return !cfg->admin_listen || !strcmp(cfg->admin_listen, srv->admin_listen);
}

/* Each app's metrics label, before the runtime is published: an app that a reload keeps keeps
 * its counters. */
static void server__metrics_ids(struct server *srv, struct runtime *rt)
{
    for (size_t i = 0; i < rt->cfg->napps; i++)
        rt->apps[i].metrics_id = metrics_app_id(srv->metrics, rt->cfg->apps[i].name);
}

static void server__reload(struct server *srv)
{
    struct config_errors errs = { 0 };
    struct config *cfg = config_load(srv->config_path, &errs);
    if (cfg && !server__same_listeners(srv, cfg)) {
        log_msg("error", "reload refused: %s: the listen or admin.listen addresses changed; "
                         "restart latchd to apply that (the running configuration is kept)",
                srv->config_path);
        config_free(cfg);
        metrics_reload(srv->metrics, false);
        return;
    }
    struct runtime *rt = cfg ? runtime_new(cfg, &errs) : NULL;
    if (!rt) {
        server__log_errors("reload refused (the running configuration is kept)", &errs);
        config_errors_clear(&errs);
        metrics_reload(srv->metrics, false);
        return;
    }
    server__metrics_ids(srv, rt);
    pthread_mutex_lock(&srv->lock);
    struct runtime *old = srv->rt;
    srv->rt = rt;
    atomic_fetch_add(&srv->gen, 1);
    pthread_mutex_unlock(&srv->lock);
    runtime_unref(old);
    server__wake(srv);
    metrics_reload(srv->metrics, true);
    log_msg("info", "reloaded %s", srv->config_path);
}

/* Publishes new signing keys or revocations when another process (latchd keys rotate,
 * latchd revoke) changed them, or when the newest key is due for rotation. */
static void server__refresh_state(struct server *srv)
{
    const struct config *cfg = srv->rt->cfg;
    struct keyset *ks = NULL;
    struct revocations *rev = NULL;
    char *err = NULL;
    if (keyset_stale(srv->keys, cfg->state_dir) || keyset_due(srv->keys, cfg->key_rotation_s, time(NULL))) {
        ks = keys_load(cfg->state_dir, cfg->key_rotation_s, cfg->key_overlap_s, false, &err);
        if (!ks) {
            log_msg("error", "signing keys: %s", err ? err : "cannot load");
            free(err);
            err = NULL;
        } else {
            log_msg("info", "signing keys loaded: %zu, newest %s", ks->n, ks->keys[0].kid);
        }
    }
    if (revocations_stale(srv->rev, cfg->state_dir)) {
        rev = revocations_load(cfg->state_dir, &err);
        if (!rev) {
            log_msg("error", "revocations: %s", err ? err : "cannot load");
            free(err);
        }
    }
    if (!ks && !rev)
        return;
    pthread_mutex_lock(&srv->lock);
    struct keyset *old_ks = ks ? srv->keys : NULL;
    struct revocations *old_rev = rev ? srv->rev : NULL;
    if (ks)
        srv->keys = ks;
    if (rev)
        srv->rev = rev;
    atomic_fetch_add(&srv->gen, 1);
    pthread_mutex_unlock(&srv->lock);
    keyset_unref(old_ks);
    revocations_unref(old_rev);
    server__wake(srv);
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
    atomic_store(&srv->draining, true);
    server__wake(srv);
    /* close the listening sockets once every worker stopped watching them: new connections
     * are refused from then on instead of waiting in a backlog nobody reads */
    struct timespec ts = { 0, 5 * 1000 * 1000 };
    for (int i = 0; i < 2000 && atomic_load(&srv->stopped_listening) < srv->nworkers; i++)
        nanosleep(&ts, NULL);
    for (unsigned i = 0; i < srv->nlisten; i++) {
        close(srv->listen_fds[i]);
        srv->listen_fds[i] = -1;
    }
}

static unsigned server__cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

int server_run(const char *config_path)
{
    struct server srv = { .config_path = config_path };
    struct config_errors errs = { 0 };
    int status = 1;
    pthread_mutex_init(&srv.lock, NULL);
    /* blocked before any thread starts (jobs, workers): only this thread takes them */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct config *cfg = config_load(config_path, &errs);
    if (!cfg) {
        config_errors_print(&errs, stderr);
        config_errors_clear(&errs);
        return 2;
    }
    srv.rt = runtime_new(cfg, &errs);
    if (!srv.rt) {
        config_errors_print(&errs, stderr);
        config_errors_clear(&errs);
        return 1;
    }
    cfg = srv.rt->cfg;
    char *err = NULL;
    srv.keys = keys_load(cfg->state_dir, cfg->key_rotation_s, cfg->key_overlap_s, false, &err);
    srv.rev = srv.keys ? revocations_load(cfg->state_dir, &err) : NULL;
    if (!srv.keys || !srv.rev) {
        log_msg("error", "%s", err ? err : "cannot load the signing keys or revocations");
        free(err);
        goto out;
    }
    srv.store = store_embedded_new();
    srv.jobs = jobs_new(4);
    if (!srv.store || !srv.jobs) {
        log_msg("error", "cannot start the store or the job threads");
        goto out;
    }
    srv.nlisten = (unsigned)cfg->nlisteners;
    srv.listen_fds = calloc(srv.nlisten, sizeof *srv.listen_fds);
    srv.listen_addrs = calloc(srv.nlisten, sizeof *srv.listen_addrs);
    for (unsigned i = 0; i < srv.nlisten; i++) {
        srv.listen_addrs[i] = strdup(cfg->listeners[i].address);
        srv.listen_fds[i] = server__listen(&cfg->listeners[i]);
        if (srv.listen_fds[i] < 0) {
            log_msg("error", "cannot listen on %s: %s", cfg->listeners[i].address,
                    strerror(-srv.listen_fds[i]));
            goto out;
        }
    }

    srv.nworkers = cfg->workers ? cfg->workers : server__cores();
    srv.metrics = metrics_new(srv.nworkers, srv.store);
    srv.workers = calloc(srv.nworkers, sizeof *srv.workers);
    if (!srv.metrics || !srv.workers) {
        log_msg("error", "out of memory");
        goto out;
    }
    server__metrics_ids(&srv, srv.rt);
    if (cfg->admin_listen) {
        srv.admin_listen = strdup(cfg->admin_listen);
        srv.admin = metrics_listener_start(srv.metrics, cfg->admin_listen,
                                           (const struct sockaddr *)&cfg->admin_addr,
                                           cfg->admin_addrlen, &err);
        if (!srv.admin || !srv.admin_listen) {
            log_msg("error", "%s", err ? err : "out of memory");
            free(err);
            goto out;
        }
    }
    for (unsigned i = 0; i < srv.nworkers; i++) {
        struct worker *w = &srv.workers[i];
        w->srv = &srv;
        w->id = i;
        w->loop = loop_new();
        w->bufs.max_free = 256;
        sb_init(&w->logbuf, 1 << 20);
        runtime_ref(srv.rt);
        w->rt = srv.rt;
        keyset_ref(srv.keys);
        w->keys = srv.keys;
        revocations_ref(srv.rev);
        w->rev = srv.rev;
        w->tokens = token_cache_new(4096);
        w->rt_gen = atomic_load(&srv.gen);
        w->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        mailbox_init(&w->mailbox, w->wake.fd);
        w->store = srv.store;
        w->jobs = srv.jobs;
        w->nlisteners = srv.nlisten;
        w->listeners = calloc(srv.nlisten, sizeof *w->listeners);
        w->metrics = metrics_worker(srv.metrics, i);
        unsigned char seed[8];
        if (getentropy(seed, sizeof seed) == 0)
            memcpy(&w->id_seed, seed, sizeof seed);
        for (unsigned j = 0; j < srv.nlisten; j++) {
            w->listeners[j].io.fd = srv.listen_fds[j];
            w->listeners[j].index = j;
        }
        if (!w->loop || w->wake.fd < 0 || pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            log_msg("error", "cannot start worker %u", i);
            srv.nworkers = i;
            server__drain(&srv);
            goto join;
        }
    }
    for (unsigned i = 0; i < srv.nlisten; i++)
        log_msg("info", "latchd listening on %s%s (%u workers)", cfg->listeners[i].address,
                cfg->listeners[i].ncerts ? " (TLS)" : "", srv.nworkers);
    if (srv.admin)
        log_msg("info", "metrics on http://%s/metrics", srv.admin_listen);

    for (;;) {
        siginfo_t si;
        struct timespec ts = { 0, 250 * 1000 * 1000 };
        int sig = sigtimedwait(&set, &si, &ts);
        if (sig == SIGHUP) {
            server__reload(&srv);
        } else if (sig == SIGUSR1) {
            server__reopen_logs(&srv);
        } else if (sig == SIGTERM || sig == SIGINT) {
            server__drain(&srv);
            break;
        }
        server__refresh_state(&srv); /* revocations take effect within a second */
    }
join:
    for (unsigned i = 0; i < srv.nworkers; i++)
        pthread_join(srv.workers[i].thread, NULL);
    jobs_free(srv.jobs); /* what was still running posts its result: drained below */
    srv.jobs = NULL;
    for (unsigned i = 0; i < srv.nworkers; i++) {
        struct worker *w = &srv.workers[i];
        mailbox_destroy(&w->mailbox);
        runtime_unref(w->rt);
        keyset_unref(w->keys);
        revocations_unref(w->rev);
        token_cache_free(w->tokens);
        proxy_minted_free(w);
        buf_pool_clear(&w->bufs);
        sb_free(&w->logbuf);
        while (w->pools) {
            struct origin_pool *p = w->pools;
            w->pools = p->next;
            free(p->key);
            free(p);
        }
        close(w->wake.fd);
        free(w->parked);
        loop_free(w->loop);
        free(w->listeners);
    }
    status = 0;
    log_msg("info", "latchd stopped");
out:
    for (unsigned i = 0; i < srv.nlisten; i++) {
        if (srv.listen_fds && srv.listen_fds[i] > 0)
            close(srv.listen_fds[i]);
        if (srv.listen_addrs)
            free(srv.listen_addrs[i]);
    }
    free(srv.listen_fds);
    free(srv.listen_addrs);
    metrics_listener_stop(srv.admin); /* the workers are joined: nothing writes the counters */
    metrics_free(srv.metrics);
    free(srv.admin_listen);
    free(srv.workers);
    runtime_unref(srv.rt);
    keyset_unref(srv.keys);
    revocations_unref(srv.rev);
    jobs_free(srv.jobs);
    store_free(srv.store);
    pthread_mutex_destroy(&srv.lock);
    return status;
}
