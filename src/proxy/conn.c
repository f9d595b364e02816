/* Client connections, the HTTP/1.1 transport: accept, TLS handshake, reading and framing
 * request heads, handing each to admission (admit.c) and acting on its outcome (own endpoints,
 * refusal, origin), 100-continue, keep-alive, pipelining, lingering close. */
#include "proxy/proxy.h"

#include "core/ipaddr.h"

#include "core/log.h"
#include "core/strbuf.h"
#include "proxy/connlimit.h"
#include "proxy/h2.h"
#include "proxy/local.h"
#include "request/worker_ctx.h"
#include "token/svctokens.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void conn__on_io(struct io_handler *h, uint32_t events);
static void conn__on_timer(struct timer *t);
static const struct transport_ops conn__h1;
static enum step conn__to_h2(struct conn *c);

/* The peer's address as 16 bytes (IPv4-mapped for IPv4) and its port. */
static void conn__peer(const struct sockaddr *sa, uint8_t ip[16], uint16_t *port)
{
    memset(ip, 0, 16);
    *port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        ip[10] = ip[11] = 0xff;
        memcpy(ip + 12, &in->sin_addr, 4);
        *port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        memcpy(ip, &in6->sin6_addr, 16);
        *port = ntohs(in6->sin6_port);
    }
}

/* The per-client cap: true when the connection may stay (counted when a cap applies). Its
 * refusal costs no buffer and no state: the socket is closed before anything is read. */
static bool conn__admit_client(struct worker_ctx *w, const uint8_t ip[16], bool *counted)
{
    const struct config *cfg = w->rt->cfg;
    unsigned max = cfg->max_connections_per_client;
    *counted = false;
    if (!max || proxy__trusted_proxy(cfg, ip)) /* a load balancer speaks for many clients */
        return true;
    if (connlimit_take(w->proxy->climit, ip, max)) {
        *counted = true;
        return true;
    }
    if (worker_ctx_notice(w, &w->proxy->cap_notice)) {
        char who[INET6_ADDRSTRLEN];
        ipaddr_format(ip, who);
        log_msg("warn", "client %s: connection refused: %u open already (max_connections_per_client); "
                "%llu refused since the last message", who, max,
                (unsigned long long)w->proxy->cap_notice.count);
        w->proxy->cap_notice.count = 0;
    }
    return false;
}

void conn_accept(struct worker_ctx *w, int fd, unsigned listener, const struct sockaddr *peer)
{
    uint8_t ip[16];
    uint16_t port;
    bool counted;
    conn__peer(peer, ip, &port);
    if (!conn__admit_client(w, ip, &counted)) {
        close(fd);
        return;
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        goto fail;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->io.fd = fd;
    c->io.cb = conn__on_io;
    c->tp.ops = &conn__h1;
    c->w = w;
    c->timer.cb = conn__on_timer;
    c->listener = (uint8_t)listener;
    memcpy(c->peer, ip, 16);
    c->peer_port = port;
    c->counted = counted;
    struct tls_server *ts = w->rt->tls[listener];
    c->state = CS_IDLE;
    if (ts) {
        c->tls = true;
        c->ssl = tls_server_accept(ts, fd);
        if (!c->ssl)
            goto fail;
        c->state = CS_HANDSHAKE;
    }
    if (loop_add(w->loop, &c->io) != 0)
        goto fail;
    struct proxy_worker *pw = w->proxy;
    c->next = pw->conns;
    if (pw->conns)
        pw->conns->prev = c;
    pw->conns = c;
    atomic_fetch_add_explicit(&w->nconns, 1, memory_order_relaxed);
    timer_arm(w->loop, &c->timer, &pw->timers.header);
    /* no read yet: with edge-triggered epoll the first event tells when bytes are there */
    return;
fail:
    if (c)
        SSL_free(c->ssl);
    free(c);
    close(fd);
    if (counted)
        connlimit_put(w->proxy->climit, ip);
}

unsigned conn_shed_silent(struct worker_ctx *w, uint64_t min_age_ms)
{
    /* accepted at (header deadline - header timeout): only a silent connection keeps it */
    int64_t newest = (int64_t)loop_now(w->loop) + (int64_t)w->rt->cfg->timeouts.header_ms -
                     (int64_t)min_age_ms;
    unsigned n = 0;
    for (struct conn *c = w->proxy->conns, *next; c; c = next) {
        next = c->next;
        if (c->heard || c->served_one || !timer_armed(&c->timer) ||
            (int64_t)c->timer.deadline_ms > newest)
            continue;
        proxy__close(c);
        n++;
    }
    return n;
}

void proxy__free_exchange(struct worker_ctx *w, struct exchange *ex)
{
    if (ex->tun) /* a tcp:// app's: no call on the HTTP path */
        proxy__tunnel_free(ex);
    if (ex->up)
        upstream_close(ex->up);
    if (ex->h2s)
        proxy__h2up_detach(ex);
    buf_put(&w->bufs, ex->hb);
    if (ex->sha)
        EVP_MD_CTX_free(ex->sha);
    proxy__local_free(ex);
    runtime_unref(ex->rt);
    svc_tokens_unref(ex->svc);
    exchange_free(ex);
}

static void conn__free_exchange(struct conn *c)
{
    if (!c->ex)
        return;
    proxy__free_exchange(c->w, c->ex);
    c->ex = NULL;
}

void proxy__close(struct conn *c)
{
    if (c->closed)
        return;
    struct worker_ctx *w = c->w;
    c->closed = true;
    timer_cancel(&c->timer);
    conn__free_exchange(c);
    proxy__h2_free(c);
    loop_del(w->loop, &c->io);
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    close(c->io.fd);
    buf_put(&w->bufs, c->rx);
    buf_put(&w->bufs, c->tx);
    c->rx = c->tx = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->proxy->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    atomic_fetch_sub_explicit(&w->nconns, 1, memory_order_relaxed);
    if (c->counted)
        connlimit_put(w->proxy->climit, c->peer);
    /* freed before the loop sleeps: a later event of this iteration may still name it */
    c->next = w->proxy->dead;
    w->proxy->dead = c;
}

void proxy__reap_conns(struct proxy_worker *pw)
{
    while (pw->dead) {
        struct conn *c = pw->dead;
        pw->dead = c->next;
        free(c);
    }
    while (pw->dead_up) {
        struct upstream *up = pw->dead_up;
        pw->dead_up = up->next;
        free(up);
    }
}

/* Reads what the client sent into its buffer. Skips the system call when the last read
 * drained the socket and epoll has not reported new bytes since (nginx's "ready" flag): with
 * edge-triggered epoll every arrival raises an event. */
enum read_result proxy__read_client(struct conn *c)
{
    bool fresh = false;
    if (!c->rd_ready && !(c->ssl && SSL_has_pending(c->ssl)))
        return READ_AGAIN;
    if (!c->rx) {
        c->rx = buf_get(&c->w->bufs);
        if (!c->rx)
            return READ_ERR;
        fresh = true;
    }
    if (buf_room(c->rx) == 0)
        buf_compact(c->rx);
    if (buf_room(c->rx) == 0)
        return READ_AGAIN;
    size_t room = buf_room(c->rx);
    ssize_t n = io_read(c->io.fd, c->ssl, buf_tail(c->rx), room);
    if (n > 0) {
        if ((size_t)n < room && !c->ssl && !c->rd_hup)
            c->rd_ready = false;
        c->rx->end += (uint32_t)n;
        if (c->ex && c->state == CS_TUNNEL)
            c->ex->bytes_in += (uint64_t)n;
        return READ_DATA;
    }
    if (fresh || buf_len(c->rx) == 0) { /* an idle connection holds no buffer */
        buf_put(&c->w->bufs, c->rx);
        c->rx = NULL;
    }
    if (n == -EAGAIN) {
        c->rd_ready = false;
        return READ_AGAIN;
    }
    if (n == 0) {
        c->in_eof = true;
        return READ_EOF;
    }
    return READ_ERR;
}

/* --- request bodies (HTTP/1.1 framing over the client buffer) ------------------------------- */

int proxy__body_ready(struct conn *c)
{
    struct exchange *ex = c->ex;
    if (ex->req_done || !c->rx)
        return 0;
    size_t avail = buf_len(c->rx) - ex->rx_ready;
    if (avail == 0)
        return 0;
    if (ex->req_body == HTTP_BODY_LENGTH) {
        size_t take = avail < ex->req_left ? avail : (size_t)ex->req_left;
        ex->rx_ready += (uint32_t)take;
        ex->req_left -= take;
        ex->req_done = ex->req_left == 0;
        return 0;
    }
    if (ex->req_body == HTTP_BODY_CHUNKED) {
        bool done = false;
        ssize_t r = http_chunked_scan(&ex->req_chunk, buf_head(c->rx) + ex->rx_ready, avail, &done);
        /* Request trailers are refused: an origin that merges them into the header section
         * would take a Cf-Access-* or X-Forwarded-* field from the client there. */
        if (r < 0 || ex->req_chunk.trailers)
            return -1;
        ex->rx_ready += (uint32_t)r;
        ex->req_done = done;
        return 0;
    }
    ex->req_done = true;
    return 0;
}

void proxy__body_consume(struct conn *c, size_t n)
{
    buf_consume(c->rx, n);
    c->ex->rx_ready -= (uint32_t)n;
    c->ex->bytes_in += n; /* the request's bytes: head (counted at parse) + body */
}

/* --- request heads ------------------------------------------------------------------------ */

/* A bare exchange for answering a request we could not parse: logged like any other. */
static struct exchange *conn__bare_exchange(struct conn *c)
{
    struct proxy_worker *pw = c->w->proxy;
    struct exchange *ex = exchange_new(&c->tp, c->w, c->peer, pw->id_seed, ++pw->request_seq);
    if (!ex)
        return NULL;
    ex->rt = worker_ctx_runtime(c->w);
    c->ex = ex;
    return ex;
}

static enum step conn__refuse_framing(struct conn *c, int status)
{
    if (!c->ex && !conn__bare_exchange(c)) {
        proxy__close(c);
        return STEP_CLOSED;
    }
    c->ex->close_after = true; /* a framing error leaves no way to find the next request */
    c->ex->bytes_in += c->rx ? buf_len(c->rx) : 0;
    const char *code = status == 414 ? "uri_too_long" : status == 431 ? "headers_too_large"
                     : status == 505 ? "version_not_supported" : status == 501 ? "not_implemented"
                     : status == 408 ? "request_timeout" : "bad_request";
    return proxy__respond_error(c->ex, status, code, "The request could not be accepted.");
}

static enum step conn__start(struct conn *c, const struct http_request *req, size_t head_len)
{
    struct exchange *ex = conn__bare_exchange(c);
    if (!ex) {
        proxy__close(c);
        return STEP_CLOSED;
    }
    ex->bytes_in = head_len;
    ex->minor = (uint8_t)req->minor;
    ex->head_method = http_slice_eq(req->method, "head");
    ex->upgrade = req->upgrade;
    ex->expect_continue = req->expect_continue;
    ex->close_after = !req->keep_alive;
    ex->req_body = req->body;
    ex->req_left = req->body == HTTP_BODY_LENGTH ? req->content_length : 0;
    ex->req_done = req->body == HTTP_BODY_NONE ||
                   (req->body == HTTP_BODY_LENGTH && req->content_length == 0);
    /* the head stays readable where it is (req points into it) until the buffer is read into */
    buf_consume(c->rx, head_len);

    const char *own = NULL;
    enum step st = STEP_CLOSED;
    switch (proxy__admit(ex, req, &own, &st)) {
    case ADMIT_ANSWERED:
        return st;
    case ADMIT_OWN:
        return proxy__local_start(ex, req, own);
    case ADMIT_ORIGIN:
        break;
    }
    if (ex->tun && !proxy__tunnel_start(ex, req, &st)) /* a tcp:// app: a WebSocket, else 4xx */
        return st;
    if (ex->expect_continue && !ex->req_done && buf_len(c->rx) == 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (!c->tx)
            c->tx = buf_get(&c->w->bufs);
        if (!c->tx) {
            proxy__close(c);
            return STEP_CLOSED;
        }
        buf_append(c->tx, cont, sizeof cont - 1);
    }
    if (ex->app->origin.kind == ORIGIN_ECHO) {
        c->state = CS_LOCAL_BODY;
        timer_arm(c->w->loop, &c->timer, &c->w->proxy->timers.client);
    } else {
        c->state = CS_PROXY;
        timer_arm(c->w->loop, &c->timer, &c->w->proxy->timers.origin_connect);
    }
    return STEP_PROGRESS;
}

static enum step conn__step_head(struct conn *c)
{
    if (c->rx && buf_len(c->rx) > 0) {
        if (c->state == CS_IDLE) {
            c->state = CS_HEAD;
            if (c->served_one)
                timer_arm(c->w->loop, &c->timer, &c->w->proxy->timers.header);
        }
        bool whole;
        if (!c->served_one && !c->tls && c->w->rt->cfg->listeners[c->listener].http2 == LISTENER_H2_PRIOR &&
            proxy__h2_preface(buf_head(c->rx), buf_len(c->rx), &whole)) {
            if (whole)
                return conn__to_h2(c);
            goto more; /* the beginning of the preface: wait for the rest */
        }
        struct http_request req;
        int r = http_parse_request(buf_head(c->rx), buf_len(c->rx), &c->head_scanned, &req);
        if (r > 0) {
            c->head_scanned = 0;
            return conn__start(c, &req, (size_t)r);
        }
        if (r < 0)
            return conn__refuse_framing(c, http_error_status(r));
        if (c->in_eof) {
            proxy__close(c);
            return STEP_CLOSED;
        }
    } else if (c->in_eof) {
        proxy__close(c);
        return STEP_CLOSED;
    }
more:
    if (c->in_eof) {
        proxy__close(c);
        return STEP_CLOSED;
    }
    switch (proxy__read_client(c)) {
    case READ_DATA:
    case READ_EOF:
        return STEP_PROGRESS;
    case READ_AGAIN:
        return STEP_WAIT;
    case READ_ERR:
        break;
    }
    proxy__close(c);
    return STEP_CLOSED;
}

/* The connection speaks HTTP/2 from now on (h2.c). */
static enum step conn__to_h2(struct conn *c)
{
    if (proxy__h2_start(c) != 0) {
        proxy__close(c);
        return STEP_CLOSED;
    }
    return STEP_PROGRESS;
}

static enum step conn__step_handshake(struct conn *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        const unsigned char *alpn;
        unsigned alpn_len;
        SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
        if (alpn_len == 2 && !memcmp(alpn, "h2", 2))
            return conn__to_h2(c);
        c->state = CS_IDLE;
        return STEP_PROGRESS;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return STEP_WAIT;
    ERR_clear_error();
    proxy__close(c);
    return STEP_CLOSED;
}

/* Writes what we generated (the head and a short body in c->tx, a long body after it from
 * ex->tail), gathered in one write; then the exchange ends. */
static enum step conn__step_respond(struct conn *c)
{
    struct exchange *ex = c->ex;
    for (;;) {
        size_t head = c->tx ? buf_len(c->tx) : 0;
        size_t tail = ex->tail ? ex->tail_len - ex->tail_off : 0;
        if (head + tail == 0)
            return proxy__finish(c);
        struct iovec iov[2] = { { head ? buf_head(c->tx) : NULL, head },
                                { ex->tail ? ex->tail + ex->tail_off : NULL, tail } };
        ssize_t n = io_writev(c->io.fd, c->ssl, iov, 2);
        if (n == -EAGAIN)
            return STEP_WAIT;
        if (n <= 0) {
            proxy__close(c);
            return STEP_CLOSED;
        }
        size_t from_head = (size_t)n < head ? (size_t)n : head;
        if (from_head)
            buf_consume(c->tx, from_head);
        ex->tail_off += (size_t)n - from_head;
        ex->bytes_out += (uint64_t)n;
        timer_arm(c->w->loop, &c->timer, &c->w->proxy->timers.client);
    }
}

/* After a response that closes the connection: shut our write side, then read and drop what
 * the client still sends, so that the kernel does not answer it with a reset that could
 * destroy the response before the client read it. */
static enum step conn__step_linger(struct conn *c)
{
    char sink[4096];
    if (!c->rd_ready)
        return STEP_WAIT;
    for (;;) {
        ssize_t n = c->ssl ? io_read(c->io.fd, c->ssl, sink, sizeof sink)
                           : read(c->io.fd, sink, sizeof sink);
        if (n > 0)
            continue;
        if (n == -EAGAIN || (n < 0 && !c->ssl && (errno == EAGAIN || errno == EWOULDBLOCK))) {
            c->rd_ready = false;
            return STEP_WAIT;
        }
        proxy__close(c);
        return STEP_CLOSED;
    }
}

static void conn__shut_write(struct conn *c)
{
    if (c->ssl)
        SSL_shutdown(c->ssl);
    shutdown(c->io.fd, SHUT_WR);
}

static void conn__linger(struct conn *c)
{
    conn__shut_write(c);
    c->state = CS_LINGER;
    timer_arm(c->w->loop, &c->timer, &c->w->proxy->timers.linger);
}

enum step proxy__finish(struct conn *c)
{
    struct worker_ctx *w = c->w;
    struct exchange *ex = c->ex;
    bool close_after = ex->close_after || w->draining || c->in_eof;
    proxy__log_request(c->ex);
    if (ex->up) {
        upstream_release(ex->up, ex->res_body != HTTP_BODY_CLOSE && !ex->res_close &&
                                     ex->req_done && ex->rx_ready == 0 && ex->hb_sent == ex->hb->end);
        ex->up = NULL;
    }
    conn__free_exchange(c);
    buf_put(&w->bufs, c->tx);
    c->tx = NULL;
    c->served_one = true;
    if (close_after) {
        conn__linger(c);
        return STEP_PROGRESS;
    }
    if (c->rx && buf_len(c->rx) == 0) {
        buf_put(&w->bufs, c->rx);
        c->rx = NULL;
    }
    c->state = CS_IDLE;
    timer_arm(w->loop, &c->timer, &w->proxy->timers.idle);
    return STEP_PROGRESS; /* a pipelined request may be waiting in the buffer */
}

/* --- the HTTP/1.1 transport of request/exchange.h ------------------------------------------ */

static struct conn *conn__of(const struct exchange *ex)
{
    return (struct conn *)((char *)ex->tp - offsetof(struct conn, tp));
}

static enum read_result conn__tp_read(struct exchange *ex)
{
    return proxy__read_client(conn__of(ex));
}

static int conn__tp_validate(struct exchange *ex)
{
    return proxy__body_ready(conn__of(ex));
}

static struct iovec conn__tp_ready(const struct exchange *ex)
{
    const struct conn *c = conn__of(ex);
    if (!c->rx)
        return (struct iovec){ NULL, 0 };
    return (struct iovec){ buf_head(c->rx), c->state == CS_TUNNEL ? buf_len(c->rx) : ex->rx_ready };
}

static void conn__tp_consume(struct exchange *ex, size_t n)
{
    struct conn *c = conn__of(ex);
    if (c->state == CS_TUNNEL)
        buf_consume(c->rx, n); /* counted in bytes_in as it was read */
    else
        proxy__body_consume(c, n);
}

static int conn__tp_head(struct exchange *ex, const struct http_response *res, bool tunnel)
{
    return proxy__response_head_h1(conn__of(ex), res, tunnel);
}

static ssize_t conn__tp_write(struct exchange *ex, const struct iovec *body, int n, size_t *from_body)
{
    struct conn *c = conn__of(ex);
    struct iovec iov[4] = { { c->tx ? buf_head(c->tx) : NULL, c->tx ? buf_len(c->tx) : 0 } };
    if (n > 3)
        n = 3;
    if (n > 0)
        memcpy(iov + 1, body, (size_t)n * sizeof *body);
    ssize_t w = io_writev(c->io.fd, c->ssl, iov, 1 + n);
    *from_body = 0;
    if (w <= 0)
        return w;
    size_t head = iov[0].iov_len < (size_t)w ? iov[0].iov_len : (size_t)w;
    if (head)
        buf_consume(c->tx, head);
    *from_body = (size_t)w - head;
    return w;
}

static size_t conn__tp_queued(const struct exchange *ex)
{
    const struct conn *c = conn__of(ex);
    return c->tx ? buf_len(c->tx) : 0;
}

static void conn__tp_drop_queued(struct exchange *ex)
{
    struct conn *c = conn__of(ex);
    buf_put(&c->w->bufs, c->tx);
    c->tx = NULL;
}

static void conn__tp_release(struct exchange *ex)
{
    struct conn *c = conn__of(ex);
    if (c->rx && buf_len(c->rx) == 0) {
        buf_put(&c->w->bufs, c->rx);
        c->rx = NULL;
    }
    if (c->tx && buf_len(c->tx) == 0) {
        buf_put(&c->w->bufs, c->tx);
        c->tx = NULL;
    }
}

static bool conn__tp_client_eof(const struct exchange *ex)
{
    return conn__of(ex)->in_eof;
}

static enum step conn__tp_end(struct exchange *ex)
{
    return proxy__finish(conn__of(ex));
}

static enum step conn__tp_respond(struct exchange *ex, int status, const char *ctype, const char *body,
                                  size_t body_len, const char *extra_headers)
{
    return proxy__respond(conn__of(ex), status, ctype, body, body_len, extra_headers);
}

static enum step conn__tp_fail(struct exchange *ex, int status, const char *code, const char *message)
{
    return proxy__respond_error(ex, status, code, message);
}

static void conn__tp_abort(struct exchange *ex, bool log)
{
    struct conn *c = conn__of(ex);
    if (log)
        proxy__log_request(c->ex);
    proxy__close(c);
}

static void conn__tp_tunnel(struct exchange *ex)
{
    struct conn *c = conn__of(ex);
    c->state = CS_TUNNEL;
    timer_arm(c->w->loop, &c->timer, &c->w->proxy->timers.idle);
}

static void conn__tp_shut(struct exchange *ex)
{
    conn__shut_write(conn__of(ex));
}

static void conn__tp_arm(struct exchange *ex, struct timer_queue *q)
{
    struct conn *c = conn__of(ex);
    timer_arm(c->w->loop, &c->timer, q);
}

static void conn__tp_wake(struct exchange *ex)
{
    struct conn *c = conn__of(ex);
    if (!c->closed)
        proxy__pump(c);
}

static void conn__tp_client_cert(const struct exchange *ex, bool *verified, char *cn, size_t cncap)
{
    proxy__client_cert(conn__of(ex)->ssl, verified, cn, cncap);
}

static const struct listener_cfg *conn__tp_listener(const struct exchange *ex)
{
    const struct conn *c = conn__of(ex);
    return &ex->rt->cfg->listeners[c->listener];
}

static bool conn__tp_tls(const struct exchange *ex)
{
    return conn__of(ex)->tls;
}

static void conn__form_take(void *arg, const char *p, size_t n)
{
    sb_add(arg, p, n);
}

/* CS_LOCAL_FORM: an own endpoint's body, read whole, then its endpoint runs. */
static enum step conn__step_form(struct conn *c)
{
    bool done;
    enum step st = proxy__read_body(c->ex, conn__form_take, c->form, &done);
    return done ? c->form_done(c->ex) : st;
}

static enum step conn__tp_read_all(struct exchange *ex, struct strbuf *into, enum step (*done)(struct exchange *ex))
{
    struct conn *c = conn__of(ex);
    c->form = into;
    c->form_done = done;
    c->state = CS_LOCAL_FORM;
    timer_arm(c->w->loop, &c->timer, &c->w->proxy->timers.client);
    return STEP_PROGRESS;
}

static void conn__tp_wait(struct exchange *ex, bool keep_deadline)
{
    struct conn *c = conn__of(ex);
    c->state = CS_WAIT;
    if (!keep_deadline)
        timer_cancel(&c->timer);
}

static const struct transport_ops conn__h1 = {
    .read = conn__tp_read,
    .validate = conn__tp_validate,
    .ready = conn__tp_ready,
    .consume = conn__tp_consume,
    .head = conn__tp_head,
    .write = conn__tp_write,
    .queued = conn__tp_queued,
    .drop_queued = conn__tp_drop_queued,
    .release = conn__tp_release,
    .client_eof = conn__tp_client_eof,
    .end = conn__tp_end,
    .respond = conn__tp_respond,
    .fail = conn__tp_fail,
    .abort = conn__tp_abort,
    .tunnel = conn__tp_tunnel,
    .shut = conn__tp_shut,
    .arm = conn__tp_arm,
    .wake = conn__tp_wake,
    .client_cert = conn__tp_client_cert,
    .listener = conn__tp_listener,
    .tls = conn__tp_tls,
    .read_all = conn__tp_read_all,
    .wait = conn__tp_wait,
};

void proxy__pump(struct conn *c)
{
    enum step s = STEP_PROGRESS;
    while (s == STEP_PROGRESS && !c->closed) {
        switch ((enum conn_state)c->state) {
        case CS_HANDSHAKE: s = conn__step_handshake(c); break;
        case CS_IDLE:
        case CS_HEAD: s = conn__step_head(c); break;
        case CS_LOCAL_BODY: s = proxy__step_echo(c->ex); break;
        case CS_PROXY: s = proxy__step_proxy(c->ex); break;
        case CS_RESPOND: s = conn__step_respond(c); break;
        case CS_TUNNEL: s = proxy__step_tunnel(c->ex); break;
        case CS_LINGER: s = conn__step_linger(c); break;
        case CS_LOCAL_FORM: s = conn__step_form(c); break;
        case CS_WAIT: s = STEP_WAIT; break;
        case CS_H2: s = proxy__step_h2(c); break;
        }
    }
}

static void conn__on_io(struct io_handler *h, uint32_t events)
{
    struct conn *c = (struct conn *)h;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->rd_ready = c->heard = true;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->rd_hup = true; /* the EOF may sit behind data a short read leaves: no edge will come */
    if (c->rd_hup && c->state == CS_WAIT && !c->closed) {
        proxy__close(c); /* gone while parked or waiting on a job: nobody to answer */
        return;
    }
    if (!c->closed)
        proxy__pump(c);
}

static void conn__on_timer(struct timer *t)
{
    struct conn *c = (struct conn *)((char *)t - offsetof(struct conn, timer));
    if (c->closed)
        return;
    switch ((enum conn_state)c->state) {
    case CS_HEAD:
        if (conn__refuse_framing(c, 408) != STEP_CLOSED)
            proxy__pump(c);
        return;
    case CS_PROXY:
        proxy__origin_timeout(c->ex);
        return;
    case CS_WAIT:
        if (!c->ex || !proxy__local_timeout(c->ex))
            proxy__close(c);
        return;
    case CS_H2:
        proxy__h2_timer(c);
        return;
    default:
        proxy__close(c);
        return;
    }
}

/* An idle keep-alive connection may be closed by a draining server (RFC 9112 §9.3); one that
 * was just accepted, or has a request waiting in the kernel, must still get its answer. */
static bool conn__idle_closable(struct conn *c)
{
    if (!c->served_one || (c->rx && buf_len(c->rx) > 0))
        return false;
    char b;
    return recv(c->io.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Starts a drain: idle connections close now; the others answer what they were sent with
 * Connection: close (w->draining), and the drain deadline bounds the rest. */
void proxy__drain_conns(struct worker_ctx *w)
{
    struct conn *c = w->proxy->conns, *next;
    for (; c; c = next) {
        next = c->next;
        if (c->state == CS_H2) {
            proxy__h2_drain(c);
        } else if (c->state == CS_IDLE || c->state == CS_HANDSHAKE) {
            if (conn__idle_closable(c))
                proxy__close(c);
        } else if (c->ex) {
            c->ex->close_after = true;
        }
    }
    proxy__local_drain(w);
}
