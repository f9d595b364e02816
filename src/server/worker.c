/* Worker threads: accept on the shared listening sockets, run connections, pick up reloaded
 * runtimes between iterations, drain on request. */
#include "server/worker.h"

#include "token/svctokens.h"

#include "core/log.h"
#include "metrics/metrics.h"
#include "proxy/proxy.h"
#include "server/server.h"

#include <errno.h>
#include <linux/filter.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define ACCEPT_BATCH 64
#define ACCEPT_PAUSE_MIN_MS 100   /* listeners out of epoll after accept ran out of descriptors */
#define ACCEPT_PAUSE_MAX_MS 1000
#define SHED_SILENT_AFTER_MS 1000 /* then, connections silent this long are closed first */

static void worker__resume_accepting(struct timer *t)
{
    struct worker *w = (struct worker *)((char *)t - offsetof(struct worker, accept_pause));
    w->accept_paused = false;
    if (!w->listening) /* a drain took the listeners meanwhile */
        return;
    for (unsigned i = 0; i < w->nlisteners; i++)
        if (loop_add_listener(w->ctx.loop, &w->listeners[i].io) != 0)
            log_msg("error", "worker %u: cannot watch listener %u again", w->id, i);
}

/* accept(2) failed for want of descriptors or memory. Connections that have sent nothing for a
 * second are closed first (a flood of silent connections then cannot hold the descriptors
 * until the header timeout); if that freed none, the listeners leave epoll for a while (they
 * are level-triggered: otherwise every loop iteration would fail the same way at once, and
 * spin), 100 ms doubling to 1 s while it lasts. The connections already open go on being
 * served. Returns true when accepting may go on at once. */
static bool worker__accept_exhausted(struct worker *w, int err)
{
    unsigned shed = conn_shed_silent(&w->ctx, SHED_SILENT_AFTER_MS);
    w->shed_total += shed;
    if (worker_ctx_notice(&w->ctx, &w->accept_notice)) {
        log_msg("error", "worker %u: accept: %s (%llu times since the last message; %llu silent "
                "connections closed): new connections wait; raise the open files limit "
                "(ulimit -n, LimitNOFILE=)", w->id, strerror(err),
                (unsigned long long)w->accept_notice.count, (unsigned long long)w->shed_total);
        w->accept_notice.count = 0;
        w->shed_total = 0;
    }
    if (shed)
        return true;
    if (!w->accept_paused) {
        for (unsigned i = 0; i < w->nlisteners; i++)
            loop_del(w->ctx.loop, &w->listeners[i].io);
        w->accept_paused = true;
        timer_queue_set(&w->accept_pause_q, w->accept_pause_ms);
        w->accept_pause.cb = worker__resume_accepting;
        timer_arm(w->ctx.loop, &w->accept_pause, &w->accept_pause_q);
        w->accept_pause_ms = w->accept_pause_ms * 2 < ACCEPT_PAUSE_MAX_MS ? w->accept_pause_ms * 2
                                                                          : ACCEPT_PAUSE_MAX_MS;
    }
    return false;
}

/* Accepts up to `max` connections; returns false once the kernel's queue is empty, or when
 * accepting must wait (worker__accept_exhausted). An error that belongs to one connection (it
 * was reset in the queue, a network error, a firewall's EPERM) skips it, as accept(2) says. */
static bool worker__accept_some(struct listen_handler *lh, int max)
{
    struct worker *w = lh->w;
    for (int i = 0; i < max; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept4(lh->io.fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
                if (worker__accept_exhausted(w, e))
                    continue;
                return false;
            }
            if (e == EINTR || e == ECONNABORTED || e == EPROTO || e == EPERM || e == ENETDOWN ||
                e == ENOPROTOOPT || e == EHOSTDOWN || e == ENONET || e == EHOSTUNREACH ||
                e == EOPNOTSUPP || e == ENETUNREACH || e == ETIMEDOUT)
                continue;
            return false; /* EAGAIN; EINVAL once a drain shut the listener */
        }
        w->accept_pause_ms = ACCEPT_PAUSE_MIN_MS;
        conn_accept(&w->ctx, fd, lh->index, (struct sockaddr *)&ss);
    }
    return true;
}

/* Draining: every connection the kernel already completed is accepted and will be answered. */
static void worker__accept_queued(struct listen_handler *lh)
{
    while (worker__accept_some(lh, ACCEPT_BATCH)) {
    }
}

/* Drain, in three steps, so that no connection the kernel completes is left unanswered.
 * 1. The first worker to see the drain makes every listener drop new SYNs (a socket filter:
 *    segments with SYN set and ACK clear), so the kernel starts no more handshakes; clients
 *    retransmit their SYN a second later and are refused by then.
 * 2. Every worker keeps accepting for DRAIN_GRACE_MS: handshakes already under way complete
 *    (their last ACK passes the filter) and are answered, with Connection: close. A client
 *    whose SYN came meanwhile is refused at its retransmission, a second later.
 * 3. The last worker to stop takes what is queued and shuts the listeners (shutdown(SHUT_RD)
 *    refuses from then on) and sets listeners_off; the descriptors stay valid until the main
 *    thread closes them, after joining every worker. Connections accepted meanwhile inherit the
 *    filter, which never drops a segment carrying an ACK: all of theirs. */
#define DRAIN_GRACE_MS 250 /* a handshake's last ACK: a round trip, even a long one; under the
                            * second after which a client whose SYN was dropped retries */

static void worker__refuse_syns(struct worker *w)
{
    static struct sock_filter syn_only[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),           /* the TCP header's flags */
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x10, 2, 0), /* ACK: keep */
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x02, 0, 1), /* SYN without ACK: drop */
        BPF_STMT(BPF_RET | BPF_K, 0),
        BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
    };
    struct sock_fprog prog = {.len = sizeof syn_only / sizeof *syn_only, .filter = syn_only};
    for (unsigned i = 0; i < w->nlisteners; i++)
        if (setsockopt(w->listeners[i].io.fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0)
            log_msg("warn", "drain: cannot filter listener %u (%s): a connection arriving "
                    "right now may be reset", i, strerror(errno));
}

static void worker__stop_listening(struct worker *w)
{
    struct server *srv = w->srv;
    for (unsigned i = 0; i < w->nlisteners; i++) {
        loop_del(w->ctx.loop, &w->listeners[i].io);
        worker__accept_queued(&w->listeners[i]);
    }
    w->listening = false;
    if (atomic_fetch_add(&srv->stopped_listening, 1) + 1 == srv->nworkers) {
        for (unsigned i = 0; i < w->nlisteners; i++) {
            worker__accept_queued(&w->listeners[i]);
            shutdown(w->listeners[i].io.fd, SHUT_RD);
        }
        atomic_store(&srv->listeners_off, true);
    }
}

static void worker__grace_over(struct timer *t)
{
    /* firing wakes the loop; worker__before_sleep stops listening */
}

static void worker__on_accept(struct io_handler *h, uint32_t events)
{
    struct listen_handler *lh = (struct listen_handler *)h;
    if (lh->w->listening)
        worker__accept_some(lh, ACCEPT_BATCH);
}

static void worker__on_wake(struct io_handler *h, uint32_t events)
{
    uint64_t v;
    while (read(h->fd, &v, sizeof v) > 0) {
    }
    struct worker *w = (struct worker *)((char *)h - offsetof(struct worker, wake));
    mailbox_drain(&w->ctx.mailbox);
    uint64_t news = atomic_load(&w->srv->news);
    if (news != w->news_seen) {
        w->news_seen = news;
        proxy_worker_news(&w->ctx);
    }
}

void worker_signal_parked(struct server *srv)
{
    atomic_fetch_add(&srv->news, 1);
    uint64_t one = 1;
    for (unsigned i = 0; i < srv->nworkers; i++)
        if (write(srv->workers[i].wake.fd, &one, sizeof one) < 0) {
            /* saturated: that worker is awake anyway */
        }
}

/* Between iterations: a newer runtime, the start of a drain, the end of one. */
static void worker__before_sleep(void *arg)
{
    struct worker *w = arg;
    struct server *srv = w->srv;
    worker_ctx_log_flush(&w->ctx);
    proxy_worker_reap(&w->ctx);
    uint64_t hits, misses;
    token_cache_counts(w->ctx.tokens, &hits, &misses);
    metrics_worker_sample(w->ctx.metrics, w->ctx.nconns, hits, misses);
    uint64_t gen = atomic_load(&srv->gen);
    if (gen != w->rt_gen) {
        pthread_mutex_lock(&srv->lock);
        struct runtime *rt = srv->rt;
        struct keyset *ks = srv->keys;
        struct revocations *rev = srv->rev;
        struct svc_tokens *svc = srv->svc;
        runtime_ref(rt);
        keyset_ref(ks);
        revocations_ref(rev);
        svc_tokens_ref(svc);
        w->rt_gen = atomic_load(&srv->gen);
        pthread_mutex_unlock(&srv->lock);
        atomic_store(&w->gen_seen, w->rt_gen);
        runtime_unref(w->ctx.rt);
        keyset_unref(w->ctx.keys);
        revocations_unref(w->ctx.rev);
        svc_tokens_unref(w->ctx.svc);
        w->ctx.rt = rt;
        w->ctx.keys = ks;
        w->ctx.rev = rev;
        w->ctx.svc = svc;
        proxy_worker_reload(&w->ctx);
    }
    if (!w->ctx.draining && atomic_load(&srv->draining)) {
        uint64_t drain_ms = w->ctx.rt->cfg->timeouts.drain_ms;
        uint32_t grace_ms = drain_ms < DRAIN_GRACE_MS ? (uint32_t)drain_ms : DRAIN_GRACE_MS;
        w->ctx.draining = true;
        w->drain_deadline = loop_now(w->ctx.loop) + drain_ms;
        w->listen_until = loop_now(w->ctx.loop) + grace_ms;
        if (!atomic_exchange(&srv->syns_refused, true))
            worker__refuse_syns(w);
        timer_queue_set(&w->grace_q, grace_ms);
        w->grace.cb = worker__grace_over;
        timer_arm(w->ctx.loop, &w->grace, &w->grace_q);
        proxy_worker_drain(&w->ctx);
    }
    if (w->ctx.draining && w->listening && loop_now(w->ctx.loop) >= w->listen_until)
        worker__stop_listening(w);
    if (w->ctx.draining && loop_now(w->ctx.loop) >= w->drain_deadline)
        proxy_worker_close_all(&w->ctx);
    proxy_worker_reap(&w->ctx);
}

void *worker_main(void *arg)
{
    struct worker *w = arg;
    loop_queue_add(w->ctx.loop, &w->grace_q, DRAIN_GRACE_MS);
    loop_queue_add(w->ctx.loop, &w->accept_pause_q, ACCEPT_PAUSE_MIN_MS);
    for (unsigned i = 0; i < w->nlisteners; i++) {
        w->listeners[i].io.cb = worker__on_accept;
        w->listeners[i].w = w;
        if (loop_add_listener(w->ctx.loop, &w->listeners[i].io) != 0)
            log_msg("error", "worker %u: cannot watch listener %u", w->id, i);
    }
    w->listening = true;
    w->accept_pause_ms = ACCEPT_PAUSE_MIN_MS;
    w->wake.cb = worker__on_wake;
    loop_add_in(w->ctx.loop, &w->wake);
    while (!(w->ctx.draining && !w->listening &&
             atomic_load_explicit(&w->ctx.nconns, memory_order_relaxed) == 0))
        loop_run_once(w->ctx.loop, worker__before_sleep, w);
    proxy_worker_close_all(&w->ctx);
    proxy_worker_reap(&w->ctx);
    loop_queue_del(w->ctx.loop, &w->grace_q);
    loop_queue_del(w->ctx.loop, &w->accept_pause_q);
    worker_ctx_log_flush(&w->ctx);
    atomic_store(&w->stopped, true);
    return NULL;
}
