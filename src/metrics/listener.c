/* The metrics listener of listener.h. Strict and small, because it is not the hot path: one
 * request per connection, parsed by the gateway's own strict parser (src/http/parse.c, fuzzed
 * by fuzz/fuzz_request.c); a head over 8 KiB, or one that takes more than 5 s to arrive, ends
 * the connection; the answer must be taken within 10 s; at most METRICS_CLIENTS connections at
 * once, each with its own deadline, so a slow or malicious client never holds up a scrape.
 *   GET|HEAD /metrics  200, the exposition (metrics.h)
 *   another path       404
 *   another method     405 (Allow: GET, HEAD)
 *   a malformed head   400 (414, 431, 505 as the parser says), then close. */
#include "metrics/listener.h"

#include "core/log.h"
#include "core/loop.h"
#include "http/http.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define METRICS_CLIENTS   16          /* connections served at once; more get 503 */
#define ADMIN_HEAD_MAX  8192        /* a scrape's head is a few hundred bytes */
#define ADMIN_HEAD_MS   5000        /* the whole head must arrive within this (slowloris) */
#define ADMIN_WRITE_MS  10000       /* the answer must be taken within this */
#define ADMIN_LINGER_MS 1000        /* after the answer: reading what the client still sends */
#define ADMIN_BODY_MAX  (64u << 20) /* the exposition; past it: 500 */

enum metrics_client_state { AC_FREE, AC_READ, AC_WRITE, AC_LINGER };

struct metrics_client {
    int fd;
    enum metrics_client_state state;
    uint64_t deadline; /* monotonic ms */
    size_t len, scanned;
    struct strbuf out;
    size_t sent;
    char head[ADMIN_HEAD_MAX];
};

struct metrics_listener {
    struct metrics *m;
    int fd, stop_fd;
    uint64_t accept_pause_until; /* out of file descriptors: stop accepting for a moment */
    pthread_t thread;
    struct metrics_client clients[METRICS_CLIENTS];
};

static void listener__close(struct metrics_client *cl)
{
    close(cl->fd);
    sb_free(&cl->out);
    cl->fd = -1;
    cl->state = AC_FREE;
}

/* Sends what is left of the answer; then shuts the write side and lingers, so that bytes the
 * client still sends (a body we did not read) do not reset the connection before it has read
 * the answer. */
static void listener__write(struct metrics_client *cl)
{
    while (cl->sent < cl->out.len) {
        ssize_t n = send(cl->fd, cl->out.p + cl->sent, cl->out.len - cl->sent, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            listener__close(cl);
            return;
        }
        cl->sent += (size_t)n;
    }
    shutdown(cl->fd, SHUT_WR);
    sb_free(&cl->out);
    cl->state = AC_LINGER;
    cl->deadline = loop_clock_ms() + ADMIN_LINGER_MS;
}

static void listener__answer(struct metrics_client *cl, int status, const char *ctype,
                             const char *extra, const char *body, size_t len, bool head_only)
{
    sb_init(&cl->out, ADMIN_BODY_MAX + 1024);
    sb_addf(&cl->out, "HTTP/1.1 %d %s\r\nServer: latch\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%sConnection: close\r\n\r\n",
            status, http_reason(status), ctype, len, extra ? extra : "");
    if (!head_only)
        sb_add(&cl->out, body, len);
    cl->sent = 0;
    cl->state = AC_WRITE;
    cl->deadline = loop_clock_ms() + ADMIN_WRITE_MS;
    if (cl->out.overflow) { /* cannot happen with the caps above; never send a cut answer */
        listener__close(cl);
        return;
    }
    listener__write(cl);
}

static void listener__text(struct metrics_client *cl, int status, const char *extra, bool head_only)
{
    char body[64];
    int n = snprintf(body, sizeof body, "%d %s\n", status, http_reason(status));
    listener__answer(cl, status, "text/plain; charset=utf-8", extra, body, (size_t)n, head_only);
}

static void listener__request(struct metrics_listener *l, struct metrics_client *cl,
                              const struct http_request *req)
{
    /* methods are case-sensitive (RFC 9110 §9.1): "get" is not GET */
    bool get = req->method.n == 3 && !memcmp(req->method.p, "GET", 3);
    bool head = req->method.n == 4 && !memcmp(req->method.p, "HEAD", 4);
    if (req->path.n != sizeof "/metrics" - 1 || memcmp(req->path.p, "/metrics", req->path.n)) {
        listener__text(cl, 404, NULL, head);
        return;
    }
    if (!get && !head) {
        listener__text(cl, 405, "Allow: GET, HEAD\r\n", false);
        return;
    }
    struct strbuf body;
    sb_init(&body, ADMIN_BODY_MAX);
    if (metrics_render(l->m, &body))
        listener__answer(cl, 200, METRICS_CONTENT_TYPE, NULL, body.p, body.len, head);
    else
        listener__text(cl, 500, NULL, head);
    sb_free(&body);
}

static void listener__read(struct metrics_listener *l, struct metrics_client *cl)
{
    if (cl->state == AC_LINGER) {
        char sink[4096];
        for (;;) {
            ssize_t n = recv(cl->fd, sink, sizeof sink, 0);
            if (n > 0)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return;
            listener__close(cl);
            return;
        }
    }
    bool eof = false;
    while (cl->len < sizeof cl->head) {
        ssize_t n = recv(cl->fd, cl->head + cl->len, sizeof cl->head - cl->len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0) {
            listener__close(cl);
            return;
        }
        if (n == 0) { /* a client may shut its side once the request is sent */
            eof = true;
            break;
        }
        cl->len += (size_t)n;
    }
    struct http_request req;
    int r = http_parse_request(cl->head, cl->len, &cl->scanned, &req);
    if (r > 0)
        listener__request(l, cl, &req);
    else if (r < 0)
        listener__text(cl, http_error_status(r), NULL, false);
    else if (eof) /* closed before a whole head: nobody to answer */
        listener__close(cl);
    else if (cl->len == sizeof cl->head)
        listener__text(cl, 431, NULL, false);
}

static void listener__accept(struct metrics_listener *l, uint64_t now)
{
    for (;;) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                log_msg("error", "admin listener: accept: %s", strerror(errno));
                l->accept_pause_until = now + 100;
            }
            return;
        }
        struct metrics_client *cl = NULL;
        for (size_t i = 0; i < METRICS_CLIENTS && !cl; i++)
            if (l->clients[i].state == AC_FREE)
                cl = &l->clients[i];
        if (!cl) { /* full: say so, best effort, and close */
            static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                       "Connection: close\r\n\r\n";
            if (send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
                /* the client will see the close */
            }
            close(fd);
            continue;
        }
        cl->fd = fd;
        cl->state = AC_READ;
        cl->len = cl->scanned = cl->sent = 0;
        cl->deadline = now + ADMIN_HEAD_MS;
    }
}

static void *listener__main(void *arg)
{
    struct metrics_listener *l = arg;
    struct pollfd pfd[2 + METRICS_CLIENTS];
    struct metrics_client *who[2 + METRICS_CLIENTS];
    for (;;) {
        uint64_t now = loop_clock_ms();
        int timeout = -1;
        nfds_t n = 0;
        pfd[n++] = (struct pollfd){ .fd = l->stop_fd, .events = POLLIN };
        if (now >= l->accept_pause_until)
            pfd[n++] = (struct pollfd){ .fd = l->fd, .events = POLLIN };
        else
            timeout = (int)(l->accept_pause_until - now);
        nfds_t first = n;
        for (size_t i = 0; i < METRICS_CLIENTS; i++) {
            struct metrics_client *cl = &l->clients[i];
            if (cl->state == AC_FREE)
                continue;
            if (now >= cl->deadline) { /* too slow: a slowloris, or a reader that stopped */
                listener__close(cl);
                continue;
            }
            int left = (int)(cl->deadline - now);
            if (timeout < 0 || left < timeout)
                timeout = left;
            who[n] = cl;
            pfd[n++] = (struct pollfd){ .fd = cl->fd, .events = cl->state == AC_WRITE ? POLLOUT : POLLIN };
        }
        int r = poll(pfd, n, timeout);
        if (r < 0 && errno != EINTR) {
            log_msg("error", "admin listener: poll: %s", strerror(errno));
            break;
        }
        if (r <= 0)
            continue;
        if (pfd[0].revents)
            break;
        now = loop_clock_ms();
        for (nfds_t i = first; i < n; i++) {
            struct metrics_client *cl = who[i];
            if (!pfd[i].revents || cl->state == AC_FREE)
                continue;
            if (cl->state == AC_WRITE)
                listener__write(cl);
            else
                listener__read(l, cl);
        }
        if (first == 2 && pfd[1].revents)
            listener__accept(l, now);
    }
    return NULL;
}

struct metrics_listener *metrics_listener_start(struct metrics *m, const char *name,
                                                const struct sockaddr *addr, socklen_t addrlen,
                                                char **err)
{
    struct metrics_listener *l = calloc(1, sizeof *l);
    const char *what = "out of memory";
    int e = ENOMEM;
    if (!l)
        goto fail;
    l->m = m;
    l->fd = l->stop_fd = -1;
    for (size_t i = 0; i < METRICS_CLIENTS; i++)
        l->clients[i].fd = -1;
    what = "socket";
    l->fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->fd < 0)
        goto fail_errno;
    int one = 1;
    setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (addr->sa_family == AF_INET6)
        setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    what = "bind";
    if (bind(l->fd, addr, addrlen) != 0)
        goto fail_errno;
    what = "listen";
    if (listen(l->fd, 64) != 0)
        goto fail_errno;
    what = "eventfd";
    if ((l->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
        goto fail_errno;
    what = "thread";
    if ((e = pthread_create(&l->thread, NULL, listener__main, l)) != 0)
        goto fail;
    return l;
fail_errno:
    e = errno;
fail:
    if (asprintf(err, "cannot listen on admin address %s: %s: %s", name, what, strerror(e)) < 0)
        *err = NULL;
    if (l) {
        if (l->fd >= 0)
            close(l->fd);
        if (l->stop_fd >= 0)
            close(l->stop_fd);
        free(l);
    }
    return NULL;
}

void metrics_listener_stop(struct metrics_listener *l)
{
    if (!l)
        return;
    uint64_t one = 1;
    if (write(l->stop_fd, &one, sizeof one) < 0) {
        /* an eventfd write fails only when saturated: the thread is being told already */
    }
    pthread_join(l->thread, NULL);
    for (size_t i = 0; i < METRICS_CLIENTS; i++)
        if (l->clients[i].state != AC_FREE)
            listener__close(&l->clients[i]);
    close(l->fd);
    close(l->stop_fd);
    free(l);
}
