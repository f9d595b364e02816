/* Origin connections: non-blocking connect (TLS when the origin is https) and a keep-alive
 * pool per origin and worker. The pool is shared by every app and user with the same origin, so
 * a connection is reused only when it is provably clean: whatever the origin sent beyond a
 * response (a second response nobody asked for, garbage, a close) would otherwise be read as
 * the answer to someone else's request. An idle pooled connection the origin closes or writes
 * to is dropped at once. */
#include "proxy/proxy.h"

#include "request/worker_ctx.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define POOL_MAX_IDLE 1024

static void upstream__on_io(struct io_handler *h, uint32_t events)
{
    struct upstream *up = (struct upstream *)h;
    if (up->closed)
        return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        up->rd_ready = true;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        up->rd_hup = true;
    if (up->owner) {
        up->owner->tp->ops->wake(up->owner);
        return;
    }
    /* idle in the pool: the origin closed it or sent bytes nobody asked for */
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        upstream_close(up);
}

/* Whether nothing from the origin waits to be read: no byte in our buffer, none decrypted or
 * buffered by TLS, no close_notify or EOF seen, and nothing in the kernel, which a peek proves.
 * `peek`: always (reuse), or only when an edge-triggered readiness was not drained by a read
 * (`rd_ready`; with TLS, or after a read that filled the buffer, it is also set without bytes
 * behind it). A connection without it saw no byte since its last read emptied the socket: a
 * later one raises an event, which closes it in the pool. */
static bool upstream__clean(struct upstream *up, bool peek)
{
    if (up->in_eof || up->rd_hup || (up->ox && buf_len(up->ox)))
        return false;
    if (up->ssl && (SSL_has_pending(up->ssl) || (SSL_get_shutdown(up->ssl) & SSL_RECEIVED_SHUTDOWN)))
        return false;
    if (!peek && !up->rd_ready)
        return true;
    char b;
    ssize_t n = recv(up->io.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        up->rd_ready = false; /* drained: the next byte raises a new edge */
        return true;
    }
    return false; /* bytes, EOF or an error */
}

static void upstream__on_timer(struct timer *t)
{
    struct upstream *up = (struct upstream *)((char *)t - offsetof(struct upstream, timer));
    upstream_close(up);
}

static struct origin_pool *upstream__pool(struct worker_ctx *w, const char *key)
{
    for (struct origin_pool *p = w->proxy->pools; p; p = p->next)
        if (!strcmp(p->key, key))
            return p;
    struct origin_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->key = strdup(key))) {
        free(p);
        return NULL;
    }
    p->next = w->proxy->pools;
    w->proxy->pools = p;
    return p;
}

static void upstream__unlink_idle(struct upstream *up)
{
    struct origin_pool *p = up->pool;
    if (up->prev)
        up->prev->next = up->next;
    else
        p->idle = up->next;
    if (up->next)
        up->next->prev = up->prev;
    up->prev = up->next = NULL;
    p->nidle--;
}

int proxy__origin_dial(const struct exchange *ex, int *fd, SSL **ssl)
{
    const struct app_rt *art = ex->art;
    *ssl = NULL;
    *fd = socket(art->origin_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (*fd < 0)
        return -errno;
    int one = 1;
    setsockopt(*fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(*fd, (struct sockaddr *)&art->origin_addr, art->origin_addrlen) != 0 &&
        errno != EINPROGRESS) {
        int e = errno;
        close(*fd);
        return -e;
    }
    if (art->origin_tls) {
        const struct origin *o = &ex->app->origin;
        *ssl = tls_origin_connect(art->origin_tls, *fd, o->host, o->tls_verify);
        if (!*ssl) {
            close(*fd);
            return -ENOMEM;
        }
    }
    return 0;
}

int upstream_acquire(struct exchange *ex, bool fresh)
{
    struct worker_ctx *w = ex->w;
    struct app_rt *art = ex->art;
    if (!art->origin_addrlen)
        return -EHOSTUNREACH;
    struct origin_pool *pool = upstream__pool(w, art->pool_key);
    if (!pool)
        return -ENOMEM;
    while (!fresh && pool->idle) {
        struct upstream *up = pool->idle;
        upstream__unlink_idle(up);
        timer_cancel(&up->timer);
        /* checked again now: the origin may have written or closed since it was pooled, with
         * its event still queued behind this request's in the same epoll batch */
        if (!upstream__clean(up, true)) {
            upstream_close(up);
            continue;
        }
        up->owner = ex;
        ex->up = up;
        ex->up_reused = true;
        return 0;
    }
    int fd;
    SSL *ssl;
    int r = proxy__origin_dial(ex, &fd, &ssl);
    if (r != 0)
        return r;
    struct upstream *up = calloc(1, sizeof *up);
    if (!up) {
        SSL_free(ssl);
        close(fd);
        return -ENOMEM;
    }
    up->io.fd = fd;
    up->io.cb = upstream__on_io;
    up->w = w;
    up->pool = pool;
    up->timer.cb = upstream__on_timer;
    up->ssl = ssl;
    if (loop_add(w->loop, &up->io) != 0) {
        int e = errno;
        SSL_free(up->ssl);
        close(fd);
        free(up);
        return -e;
    }
    up->owner = ex;
    ex->up = up;
    ex->up_reused = false;
    return 0;
}

void upstream_close(struct upstream *up)
{
    if (up->closed)
        return;
    struct worker_ctx *w = up->w;
    up->closed = true;
    timer_cancel(&up->timer);
    if (!up->owner && up->pool && (up->prev || up->next || up->pool->idle == up))
        upstream__unlink_idle(up);
    if (up->owner && up->owner->up == up)
        up->owner->up = NULL;
    up->owner = NULL;
    loop_del(w->loop, &up->io);
    if (up->ssl) {
        SSL_free(up->ssl);
        up->ssl = NULL;
    }
    close(up->io.fd);
    buf_put(&w->bufs, up->ox);
    up->ox = NULL;
    up->next = w->proxy->dead_up;
    w->proxy->dead_up = up;
}

void upstream_release(struct upstream *up, bool reuse)
{
    struct worker_ctx *w = up->w;
    struct origin_pool *p = up->pool;
    if (up->owner && up->owner->up == up)
        up->owner->up = NULL;
    if (!reuse || w->draining || !p || p->nidle >= POOL_MAX_IDLE || !upstream__clean(up, false)) {
        upstream_close(up);
        return;
    }
    up->owner = NULL;
    buf_put(&w->bufs, up->ox);
    up->ox = NULL;
    up->prev = NULL;
    up->next = p->idle;
    if (p->idle)
        p->idle->prev = up;
    p->idle = up;
    p->nidle++;
    timer_arm(w->loop, &up->timer, &w->proxy->timers.pool_idle);
}

void upstream_close_pools(struct proxy_worker *pw)
{
    for (struct origin_pool *p = pw->pools; p; p = p->next)
        while (p->idle)
            upstream_close(p->idle);
}

void upstream_free_pools(struct proxy_worker *pw)
{
    upstream_close_pools(pw);
    while (pw->pools) {
        struct origin_pool *p = pw->pools;
        pw->pools = p->next;
        free(p->key);
        free(p);
    }
}
