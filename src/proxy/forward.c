/* Forwarding an admitted request to its origin and the response back (SPEC.md §3.5, §8):
 * the head rewritten once, bodies streamed through bounded buffers with backpressure, keep-alive
 * on both sides, a retry of idempotent requests that met a stale pooled connection, 502/504,
 * and the byte tunnel after 101 Switching Protocols. */
#include "proxy/proxy.h"
#include "proxy/head.h"

#include "core/ipaddr.h"

#include "core/log.h"
#include "http/cookie.h"
#include "metrics/metrics.h"
#include "request/worker_ctx.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* --- request bodies ------------------------------------------------------------------------ */

enum step proxy__read_body(struct exchange *ex, void (*take)(void *arg, const char *p, size_t n),
                           void *arg, bool *done)
{
    const struct transport_ops *tp = ex->tp->ops;
    *done = false;
    for (;;) {
        if (tp->validate(ex) != 0) {
            ex->close_after = true;
            return tp->fail(ex, 400, "bad_request", "Malformed request body.");
        }
        if (ex->rx_ready) {
            struct iovec v = tp->ready(ex);
            take(arg, v.iov_base, v.iov_len);
            tp->consume(ex, v.iov_len);
        }
        if (ex->req_done) {
            *done = true;
            return STEP_PROGRESS;
        }
        switch (tp->read(ex)) {
        case READ_DATA:
            tp->arm(ex, &ex->w->proxy->timers.client);
            continue;
        case READ_AGAIN:
            return STEP_WAIT;
        default: /* the client went away in the middle of its body */
            ex->status = 400;
            tp->abort(ex, true);
            return STEP_CLOSED;
        }
    }
}

enum { DECHUNK_SIZE, DECHUNK_EXT, DECHUNK_DATA, DECHUNK_DATA_END, DECHUNK_TRAILER };

size_t proxy__dechunk(struct exchange *ex, const char *p, size_t n,
                      size_t (*take)(void *arg, const char *p, size_t n),
                      void (*trailer)(void *arg, const char *p, size_t n), void *arg)
{
    size_t i = 0;
    while (i < n) {
        char ch = p[i];
        switch (ex->echo_state) {
        case DECHUNK_SIZE:
            if (ch == ';' || ch == ' ' || ch == '\t' || ch == '\r') {
                ex->echo_state = DECHUNK_EXT;
            } else if (ch == '\n') {
                ex->echo_state = ex->echo_left ? DECHUNK_DATA : DECHUNK_TRAILER;
            } else {
                int v = ch <= '9' ? ch - '0' : (ch | 32) - 'a' + 10;
                ex->echo_left = ex->echo_left * 16 + (uint64_t)v;
            }
            i++;
            break;
        case DECHUNK_EXT:
            if (ch == '\n')
                ex->echo_state = ex->echo_left ? DECHUNK_DATA : DECHUNK_TRAILER;
            i++;
            break;
        case DECHUNK_DATA: {
            size_t offer = n - i < ex->echo_left ? n - i : (size_t)ex->echo_left;
            size_t took = take(arg, p + i, offer);
            ex->echo_left -= took;
            i += took;
            if (!ex->echo_left)
                ex->echo_state = DECHUNK_DATA_END;
            if (took < offer)
                return i; /* the taker is full */
            break;
        }
        case DECHUNK_DATA_END: /* CRLF after the data */
            if (ch == '\n')
                ex->echo_state = DECHUNK_SIZE;
            i++;
            break;
        default: /* trailers and the final CRLF: validated, not part of the data */
            if (trailer)
                trailer(arg, p + i, n - i);
            i = n;
            break;
        }
    }
    return i;
}

/* --- heads ------------------------------------------------------------------------------- */

struct headbuf {
    struct buf *b;
    bool overflow;
};

static void hb__add(struct headbuf *h, const char *p, size_t n)
{
    if (h->overflow || buf_append(h->b, p, n) != n)
        h->overflow = true;
}

static void hb__adds(struct headbuf *h, const char *s)
{
    hb__add(h, s, strlen(s));
}

static void hb__field(struct headbuf *h, const char *name, const char *v, size_t n)
{
    hb__adds(h, name);
    hb__add(h, ": ", 2);
    hb__add(h, v, n);
    hb__add(h, "\r\n", 2);
}

/* Builds the head the origin receives: the normalized target, the client's fields except
 * hop-by-hop ones, the gateway's own (Cf-Access-*, X-Forwarded-For/Proto/Host, X-Request-Id,
 * Host), those origins act on that the gateway does not set (HTTP_F_SPOOFABLE: X-Real-IP,
 * X-Original-URL, Forwarded, CF-Connecting-IP…, unless the app keeps them), their '_' spellings,
 * and the credentials (cf-access-token, service-token headers, the gateway's own cookies:
 * CF_Authorization, latch_*…, cookie_name_reserved); then ours. Bypass requests too. `ri` is
 * the identity to assert to the origin, NULL for none. */
int proxy__build_origin_head(struct exchange *ex, const struct http_request *req,
                             const struct request_identity *ri)
{
    const struct origin *o = &ex->app->origin;
    ex->hb = buf_get(&ex->w->bufs);
    if (!ex->hb)
        return -1;
    struct headbuf h = { ex->hb, false };

    hb__add(&h, ex->method, ex->method_len);
    hb__add(&h, " ", 1);
    hb__adds(&h, o->base ? o->base : "");
    hb__add(&h, ex->path, ex->path_len);
    if (ex->has_query) {
        hb__add(&h, "?", 1);
        hb__add(&h, ex->query, ex->query_len);
    }
    hb__adds(&h, ex->minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");

    const struct http_header *conn_hdrs[HTTP_MAX_HEADERS];
    size_t nconn = 0;
    for (size_t i = 0; i < req->nheaders; i++)
        if (req->headers[i].id == HTTP_F_CONNECTION)
            conn_hdrs[nconn++] = &req->headers[i];

    const struct http_header *upgrade = NULL;
    size_t nupgrade = 0;
    struct http_slice xff[HTTP_MAX_HEADERS];
    size_t nxff = 0;
    bool service_header = ri && ri->service_header;
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct http_header *f = &req->headers[i];
        switch (head_request_fate(f, ex->app, conn_hdrs, nconn, service_header)) {
        case HEAD_PASS:
            break;
        case HEAD_FORWARDED_FOR:
            xff[nxff++] = f->value;
            continue;
        case HEAD_UPGRADE:
            upgrade = f;
            nupgrade++;
            continue;
        case HEAD_DROP:
            continue;
        }
        if (f->id == HTTP_F_COOKIE) {
            char tmp[2 * HTTP_MAX_HEADER_BYTES + 2];
            size_t n = f->value.n <= HTTP_MAX_HEADER_BYTES ? cookie_strip_reserved(f->value, tmp) : 0;
            if (n)
                hb__field(&h, "Cookie", tmp, n);
            continue;
        }
        hb__add(&h, f->name.p, f->name.n);
        hb__add(&h, ": ", 2);
        hb__add(&h, f->value.p, f->value.n);
        hb__add(&h, "\r\n", 2);
    }

    if (o->preserve_host || o->kind == ORIGIN_ECHO)
        hb__field(&h, "Host", ex->origin_host, ex->origin_host_len); /* the client's, its port ours */
    else
        hb__field(&h, "Host", o->hostport, strlen(o->hostport));

    /* X-Forwarded-For: the chain a trusted proxy reported, then the peer we saw. */
    char peer[IPADDR_STRLEN];
    if (memcmp(ex->client_ip, ex->peer, 16) == 0)
        memcpy(peer, ex->client_ip_str, sizeof peer);
    else
        ipaddr_format(ex->peer, peer);
    hb__adds(&h, "X-Forwarded-For: ");
    if (nxff && memcmp(ex->client_ip, ex->peer, 16) != 0) {
        for (size_t i = 0; i < nxff; i++) {
            hb__add(&h, xff[i].p, xff[i].n);
            hb__add(&h, ", ", 2);
        }
    }
    hb__adds(&h, peer);
    hb__add(&h, "\r\n", 2);
    /* the scheme the browser used: a listener behind a TLS terminator says so (`public`) */
    hb__adds(&h, ex->https ? "X-Forwarded-Proto: https\r\n" : "X-Forwarded-Proto: http\r\n");
    hb__field(&h, "X-Forwarded-Host", ex->origin_host, ex->origin_host_len);
    hb__field(&h, "X-Request-Id", ex->request_id, strlen(ex->request_id));
    if (ri) {
        hb__field(&h, "Cf-Access-Jwt-Assertion", ri->assertion, ri->assertion_len);
        if (ri->id.email)
            hb__field(&h, "Cf-Access-Authenticated-User-Email", ri->id.email, strlen(ri->id.email));
    }

    if (ex->req_body == HTTP_BODY_CHUNKED) {
        hb__adds(&h, "Transfer-Encoding: chunked\r\n");
    } else if (ex->req_body == HTTP_BODY_LENGTH) {
        char cl[24];
        size_t n = sizeof cl;
        uint64_t v = req->content_length;
        do
            cl[--n] = (char)('0' + v % 10);
        while (v /= 10);
        hb__field(&h, "Content-Length", cl + n, sizeof cl - n);
    }
    ex->upgrade = ex->upgrade && nupgrade == 1 && head_upgrade_allowed(req, upgrade->value);
    if (ex->upgrade) {
        hb__adds(&h, "Connection: upgrade\r\nUpgrade: websocket\r\n");
    } else if (ex->minor == 0) {
        hb__adds(&h, "Connection: keep-alive\r\n");
    }
    hb__add(&h, "\r\n", 2);
    return h.overflow ? -1 : 0;
}

/* The response head for an HTTP/1.1 client (the `head` of conn.c's transport): hop-by-hop
 * fields and the origin's Set-Cookie for the gateway's own cookie names dropped, our HSTS
 * (replacing the origin's), framing and connection fields added. -1 when it does not fit. */
int proxy__response_head_h1(struct conn *c, const struct http_response *res, bool tunnel)
{
    struct exchange *ex = c->ex;
    if (!c->tx)
        c->tx = buf_get(&c->w->bufs);
    if (!c->tx)
        return -1;
    struct headbuf h = { c->tx, false };
    char line[] = "HTTP/1.1 000 "; /* the parser took three digits */
    line[9] = (char)('0' + res->status / 100);
    line[10] = (char)('0' + res->status / 10 % 10);
    line[11] = (char)('0' + res->status % 10);
    hb__add(&h, line, sizeof line - 1);
    hb__add(&h, res->reason.p, res->reason.n);
    hb__add(&h, "\r\n", 2);

    const struct http_header *conn_hdrs[HTTP_MAX_HEADERS];
    size_t nconn = 0;
    const struct http_header *upgrade = NULL;
    const char *hsts = proxy__hsts(c->ex); /* ours replaces the origin's */
    if (hsts)
        hb__adds(&h, hsts);
    for (size_t i = 0; i < res->nheaders; i++)
        if (res->headers[i].id == HTTP_F_CONNECTION)
            conn_hdrs[nconn++] = &res->headers[i];
    for (size_t i = 0; i < res->nheaders; i++) {
        const struct http_header *f = &res->headers[i];
        if (f->id == HTTP_F_UPGRADE)
            upgrade = f;
        if (!head_response_passes(f, conn_hdrs, nconn, hsts != NULL))
            continue;
        hb__add(&h, f->name.p, f->name.n);
        hb__add(&h, ": ", 2);
        hb__add(&h, f->value.p, f->value.n);
        hb__add(&h, "\r\n", 2);
    }
    if (res->body == HTTP_BODY_CHUNKED)
        hb__adds(&h, "Transfer-Encoding: chunked\r\n");
    if (ex->set_cookie)
        hb__adds(&h, ex->set_cookie);
    if (tunnel) {
        hb__adds(&h, "Connection: upgrade\r\n");
        if (upgrade)
            hb__field(&h, "Upgrade", upgrade->value.p, upgrade->value.n);
    } else if (ex->close_after) {
        hb__adds(&h, "Connection: close\r\n");
    } else if (ex->minor == 0) {
        hb__adds(&h, "Connection: keep-alive\r\n");
    }
    hb__add(&h, "\r\n", 2);
    return h.overflow ? -1 : 0;
}

/* --- failures ------------------------------------------------------------------------------ */

bool proxy__idempotent(const struct exchange *ex)
{
    static const char *const m[] = { "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE" };
    for (size_t i = 0; i < sizeof m / sizeof *m; i++)
        if (!strcmp(ex->method, m[i]))
            return true;
    return false;
}

/* A pooled connection the origin had already closed: send again on a new one, once, when
 * nothing of the body went out and nothing came back (RFC 9110 §9.2.2). */
static bool forward__can_retry(const struct exchange *ex)
{
    return ex->up_reused && !ex->retried && ex->body_sent == 0 && !ex->res_head_done &&
           (!ex->up->ox || buf_len(ex->up->ox) == 0) && proxy__idempotent(ex);
}

/* An I/O error on the origin connection: before it was up, the connect failed. */
static enum metrics_origin_error forward__io_kind(const struct exchange *ex)
{
    return ex->up && ex->up->connected ? METRICS_ORIGIN_RESET : METRICS_ORIGIN_CONNECT;
}

/* A TLS handshake that failed because the TCP connection never came up failed to connect. */
static enum metrics_origin_error forward__tls_kind(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    return getpeername(fd, (struct sockaddr *)&ss, &len) != 0 ? METRICS_ORIGIN_CONNECT
                                                             : METRICS_ORIGIN_TLS;
}


static enum step forward__fail(struct exchange *ex, int status, enum metrics_origin_error kind,
                               const char *why)
{
    if (ex->up && forward__can_retry(ex) && status == 502) {
        upstream_close(ex->up);
        ex->up = NULL;
        ex->hb_sent = 0;
        ex->retried = true;
        return STEP_PROGRESS;
    }
    if (ex->up) {
        upstream_close(ex->up);
        ex->up = NULL;
    }
    return proxy__origin_failed(ex, status, kind, why);
}

enum step proxy__origin_failed(struct exchange *ex, int status, enum metrics_origin_error kind,
                               const char *why)
{
    metrics_origin_error(ex->w->metrics, ex->art->metrics_id, kind);
    log_msg("warn", "request %s app %s: origin %s: %s", ex->request_id, ex->app->name,
            ex->app->origin.url, why);
    if (ex->res_head_done) { /* the client already has part of the response: cut it */
        ex->status = ex->status ? ex->status : status;
        ex->tp->ops->abort(ex, true);
        return STEP_CLOSED;
    }
    ex->tp->ops->drop_queued(ex); /* a queued 100 Continue: the final answer replaces it */
    if (!ex->req_done)
        ex->close_after = true;
    return ex->tp->ops->fail(ex, status, status == 504 ? "gateway_timeout" : "bad_gateway",
                             status == 504 ? "The application did not answer in time."
                                           : "The application could not be reached.");
}

enum step proxy__origin_fail(struct exchange *ex, int status, enum metrics_origin_error kind, const char *why)
{
    return forward__fail(ex, status, kind, why);
}

void proxy__origin_timeout(struct exchange *ex)
{
    if (ex->app->origin.h2) {
        proxy__h2up_timeout(ex);
        return;
    }
    const struct transport_ops *tp = ex->tp->ops;
    if (ex->tun) {
        proxy__tunnel_timeout(ex);
        return;
    }
    if (ex->up && ex->up->connected && !ex->req_done && !ex->res_head_done) {
        /* the client stopped in the middle of its body (timeouts.client) */
        ex->status = 408;
        ex->close_after = true;
        if (ex->up)
            upstream_close(ex->up);
        if (tp->fail(ex, 408, "request_timeout", "The request body stopped arriving.") != STEP_CLOSED)
            tp->wake(ex);
        return;
    }
    if (forward__fail(ex, 504, METRICS_ORIGIN_TIMEOUT, ex->up && ex->up->connected ? "response timeout" : "connect timeout") !=
        STEP_CLOSED)
        tp->wake(ex); /* not closed: the exchange answers 504 */
}

/* --- the exchange ------------------------------------------------------------------------- */

static void forward__response_ready(struct exchange *ex, struct buf *ox)
{
    size_t avail = buf_len(ox) - ex->ox_ready;
    if (avail == 0 || ex->res_done)
        return;
    switch (ex->res_body) {
    case HTTP_BODY_LENGTH: {
        size_t take = avail < ex->res_left ? avail : (size_t)ex->res_left;
        ex->ox_ready += (uint32_t)take;
        ex->res_left -= take;
        ex->res_done = ex->res_left == 0;
        break;
    }
    case HTTP_BODY_CHUNKED: {
        bool done = false;
        ssize_t r = http_chunked_scan(&ex->res_chunk, buf_head(ox) + ex->ox_ready, avail, &done);
        if (r < 0) {
            ex->res_close = true;
            ex->close_after = true;
            ex->res_done = true; /* stop at the bad framing: the client sees a cut body */
            break;
        }
        ex->ox_ready += (uint32_t)r;
        ex->res_done = done;
        break;
    }
    case HTTP_BODY_CLOSE:
        ex->ox_ready += (uint32_t)avail;
        break;
    case HTTP_BODY_NONE:
        ex->res_done = true;
        break;
    }
}

/* Parses response heads in the origin buffer. Returns STEP_PROGRESS after a final head,
 * STEP_WAIT when more bytes are needed, STEP_CLOSED when the exchange ended (forward__fail). */
static enum step forward__response_head(struct exchange *ex, bool *tunnel)
{
    struct buf *ox = ex->up->ox;
    while (buf_len(ox) > 0) {
        struct http_response res;
        int r = http_parse_response(buf_head(ox), buf_len(ox), &ex->res_scanned, ex->head_method, &res);
        if (r == 0) {
            if (buf_room(ox) == 0 && ox->start == 0)
                return forward__fail(ex, 502, METRICS_ORIGIN_PROTOCOL, "response head too large");
            return STEP_WAIT;
        }
        if (r < 0)
            return forward__fail(ex, 502, METRICS_ORIGIN_PROTOCOL, "malformed response head");
        ex->res_scanned = 0;
        if (res.status >= 100 && res.status < 200 && res.status != 101) {
            buf_consume(ox, (size_t)r); /* interim answers: we answered 100-continue ourselves */
            continue;
        }
        if (res.status == 101) {
            if (!ex->upgrade)
                return forward__fail(ex, 502, METRICS_ORIGIN_PROTOCOL, "101 to a request that asked no upgrade");
            if (!head_switches_to_websocket(&res))
                return forward__fail(ex, 502, METRICS_ORIGIN_PROTOCOL, "101 to another protocol than the websocket asked for");
            if (!head_ws_accept_ok((const char *)ex->hb->data, ex->hb->end, &res))
                return forward__fail(ex, 502, METRICS_ORIGIN_PROTOCOL, "101 without the Sec-WebSocket-Accept of its key");
            *tunnel = true;
        }
        if (res.body == HTTP_BODY_CLOSE || !res.keep_alive)
            ex->res_close = true;
        if (res.body == HTTP_BODY_CLOSE || ex->w->draining || (ex->minor == 0 && res.body == HTTP_BODY_CHUNKED))
            ex->close_after = true;
        if (ex->tp->ops->head(ex, &res, *tunnel) != 0)
            return forward__fail(ex, 502, METRICS_ORIGIN_PROTOCOL, "response head too large");
        buf_consume(ox, (size_t)r);
        ex->res_head_done = true;
        ex->status = res.status;
        ex->res_body = *tunnel ? HTTP_BODY_NONE : res.body;
        ex->res_left = res.body == HTTP_BODY_LENGTH ? res.content_length : 0;
        ex->res_done = ex->res_body == HTTP_BODY_NONE ||
                       (ex->res_body == HTTP_BODY_LENGTH && ex->res_left == 0);
        return STEP_PROGRESS;
    }
    return STEP_WAIT;
}

/* The deadline that applies now: the origin's connect, the client's body (when we wait for
 * it with nothing of it left to send), else the origin's answer. */
static void forward__arm(struct exchange *ex)
{
    struct proxy_worker *pw = ex->w->proxy;
    struct timer_queue *t = &pw->timers.origin_response;
    if (!ex->up || !ex->up->connected)
        t = &pw->timers.origin_connect;
    else if (!ex->req_done && ex->rx_ready == 0 && ex->hb_sent == ex->hb->end)
        t = &pw->timers.client;
    ex->tp->ops->arm(ex, t);
}

/* The phases of one step of the exchange (proxy__step_proxy). Each returns true when the step
 * ends there, with *st its outcome; false to go on to the next phase. */

/* 0. an origin connection, and its TLS handshake */
static bool forward__connect(struct exchange *ex, enum step *st)
{
    if (!ex->up) {
        int r = upstream_acquire(ex, ex->retried);
        if (r != 0) {
            *st = forward__fail(ex, 502, METRICS_ORIGIN_CONNECT, strerror(-r));
            return true;
        }
        forward__arm(ex);
    }
    struct upstream *up = ex->up;
    if (!up->ssl || up->handshake_done)
        return false;
    ERR_clear_error();
    int r = SSL_do_handshake(up->ssl);
    if (r != 1) {
        int e = SSL_get_error(up->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            *st = STEP_WAIT;
            return true;
        }
        char why[300];
        long v = SSL_get_verify_result(up->ssl);
        snprintf(why, sizeof why, "TLS handshake failed: %s",
                 v != X509_V_OK ? X509_verify_cert_error_string(v) : tls_last_error());
        *st = forward__fail(ex, 502, forward__tls_kind(up->io.fd), why);
        return true;
    }
    up->handshake_done = up->connected = true;
    forward__arm(ex);
    return false;
}

/* 1. the client's body into the transport's buffer (as long as there is room: backpressure) */
static bool forward__read_body(struct exchange *ex, bool *progress, enum step *st)
{
    const struct transport_ops *tp = ex->tp->ops;
    if (ex->req_done)
        return false;
    if (tp->validate(ex) != 0) {
        ex->close_after = true;
        if (ex->res_head_done) {
            tp->abort(ex, false);
            *st = STEP_CLOSED;
            return true;
        }
        upstream_close(ex->up);
        ex->up = NULL;
        *st = tp->fail(ex, 400, "bad_request", "Malformed request body.");
        return true;
    }
    if (ex->req_done || tp->client_eof(ex))
        return false;
    switch (tp->read(ex)) {
    case READ_DATA:
        *progress = true;
        tp->validate(ex); /* a framing error is seen on the next turn */
        return false;
    case READ_EOF: /* the client gave up in the middle of its body */
    case READ_ERR:
        ex->status = ex->status ? ex->status : 400;
        tp->abort(ex, true);
        *st = STEP_CLOSED;
        return true;
    case READ_AGAIN:
        break;
    }
    return false;
}

/* 2. head and body to the origin */
static bool forward__send_origin(struct exchange *ex, bool *progress, enum step *st)
{
    struct upstream *up = ex->up;
    if (ex->hb_sent == ex->hb->end && ex->rx_ready == 0)
        return false;
    struct iovec iov[2] = { { ex->hb->data + ex->hb_sent, ex->hb->end - ex->hb_sent },
                            ex->tp->ops->ready(ex) };
    ssize_t n = io_writev(up->io.fd, up->ssl, iov, 2);
    if (n > 0) {
        size_t head = iov[0].iov_len < (size_t)n ? iov[0].iov_len : (size_t)n;
        ex->hb_sent += (uint32_t)head;
        if ((size_t)n > head) {
            ex->tp->ops->consume(ex, (size_t)n - head);
            ex->body_sent += (size_t)n - head;
        }
        if (!up->connected) {
            up->connected = true;
            forward__arm(ex);
        }
        *progress = true;
    } else if (n != -EAGAIN) {
        if (ex->res_head_done || (up->ox && buf_len(up->ox))) {
            /* the origin answered and closed without reading all: relay its answer */
            ex->close_after = true;
            ex->rx_ready = 0;
            ex->req_done = true;
            ex->hb_sent = ex->hb->end;
        } else {
            *st = forward__fail(ex, 502, forward__io_kind(ex), strerror((int)-n));
            return true;
        }
    }
    return false;
}

/* 3. bytes from the origin */
static bool forward__read_origin(struct exchange *ex, bool *progress, enum step *st)
{
    struct upstream *up = ex->up;
    if (ex->res_done || up->in_eof)
        return false;
    if (!up->ox && !(up->ox = buf_get(&ex->w->bufs))) {
        ex->tp->ops->abort(ex, false);
        *st = STEP_CLOSED;
        return true;
    }
    if (buf_room(up->ox) == 0 && up->ox->start > 0 && ex->ox_ready == 0)
        buf_compact(up->ox);
    size_t room = buf_room(up->ox);
    if (room == 0 || !(up->rd_ready || (up->ssl && SSL_has_pending(up->ssl))))
        return false;
    ssize_t n = io_read(up->io.fd, up->ssl, buf_tail(up->ox), room);
    if (n > 0) {
        if ((size_t)n < room && !up->ssl && !up->rd_hup)
            up->rd_ready = false;
        up->ox->end += (uint32_t)n;
        up->connected = true;
        *progress = true;
    } else if (n == 0) {
        up->in_eof = true;
        *progress = true;
    } else if (n == -EAGAIN) {
        up->rd_ready = false;
    } else {
        if (!ex->res_head_done || ex->res_body != HTTP_BODY_CLOSE) {
            *st = forward__fail(ex, 502, forward__io_kind(ex), strerror((int)-n));
            return true;
        }
        up->in_eof = true;
    }
    return false;
}

/* The response's head (a 101 turns the exchange into a tunnel), its end at the origin's EOF,
 * and how much of its body is ready for the client. */
static bool forward__response(struct exchange *ex, bool *progress, enum step *st)
{
    struct upstream *up = ex->up;
    bool tunnel = false;
    if (!ex->res_head_done && up->ox && buf_len(up->ox)) {
        enum step s = forward__response_head(ex, &tunnel);
        if (s == STEP_CLOSED || !ex->up) { /* ended, or an answer of ours replaces the origin's */
            *st = s == STEP_CLOSED ? STEP_CLOSED : STEP_PROGRESS;
            return true;
        }
        if (s == STEP_PROGRESS)
            *progress = true;
        if (tunnel) {
            ex->tp->ops->tunnel(ex);
            *st = STEP_PROGRESS;
            return true;
        }
    }
    if (up->in_eof && !ex->res_done) {
        if (!ex->res_head_done) {
            *st = forward__fail(ex, 502, METRICS_ORIGIN_RESET, "the origin closed the connection without answering");
            return true;
        }
        if (ex->res_body == HTTP_BODY_CLOSE) {
            forward__response_ready(ex, up->ox);
            ex->res_done = true;
        } else if (buf_len(up->ox) == ex->ox_ready) {
            forward__response_ready(ex, up->ox);
            if (!ex->res_done) {
                *st = forward__fail(ex, 502, METRICS_ORIGIN_RESET, "the origin closed the connection in the middle of the body");
                return true;
            }
        }
    }
    if (ex->res_head_done && up->ox)
        forward__response_ready(ex, up->ox);
    return false;
}

/* 4. to the client */
static bool forward__send_client(struct exchange *ex, bool *progress, enum step *st)
{
    struct upstream *up = ex->up;
    const struct transport_ops *tp = ex->tp->ops;
    if (!tp->queued(ex) && !ex->ox_ready)
        return false;
    struct iovec body = { up->ox ? buf_head(up->ox) : NULL, ex->ox_ready };
    size_t from_body;
    ssize_t n = tp->write(ex, &body, 1, &from_body);
    if (n > 0) {
        if (from_body) {
            buf_consume(up->ox, from_body);
            ex->ox_ready -= (uint32_t)from_body;
        }
        ex->bytes_out += (uint64_t)n;
        *progress = true;
    } else if (n != -EAGAIN) {
        ex->status = ex->status ? ex->status : 499;
        tp->abort(ex, true);
        *st = STEP_CLOSED;
        return true;
    }
    return false;
}

enum step proxy__step_proxy(struct exchange *ex)
{
    if (ex->tun)
        return proxy__tunnel_step(ex); /* a tcp:// app: connecting */
    if (ex->app->origin.h2)
        return proxy__step_h2up(ex);
    bool progress = false;
    enum step st;
    if (forward__connect(ex, &st) || forward__read_body(ex, &progress, &st) ||
        forward__send_origin(ex, &progress, &st) || forward__read_origin(ex, &progress, &st) ||
        forward__response(ex, &progress, &st) || forward__send_client(ex, &progress, &st))
        return st;
    struct upstream *up = ex->up;
    if (ex->res_head_done && ex->res_done && ex->ox_ready == 0 && !ex->tp->ops->queued(ex)) {
        if (up->ox && buf_len(up->ox))
            ex->res_close = true; /* bytes past the response: the connection is not reusable */
        if (!ex->req_done)
            ex->close_after = true;
        return ex->tp->ops->end(ex);
    }
    if (progress)
        forward__arm(ex);
    return progress ? STEP_PROGRESS : STEP_WAIT;
}

/* --- tunnel ------------------------------------------------------------------------------- */

static void forward__shut(int fd, SSL *ssl)
{
    if (ssl)
        SSL_shutdown(ssl);
    shutdown(fd, SHUT_WR);
}

/* client -> origin; false when the tunnel must end */
static bool forward__tunnel_up(struct exchange *ex, bool *progress)
{
    const struct transport_ops *tp = ex->tp->ops;
    struct upstream *up = ex->up;
    if (!tp->client_eof(ex)) {
        enum read_result r = tp->read(ex);
        if (r == READ_DATA || r == READ_EOF)
            *progress = true;
        else if (r == READ_ERR)
            return false;
    }
    struct iovec iov = tp->ready(ex);
    if (iov.iov_len) {
        ssize_t n = io_writev(up->io.fd, up->ssl, &iov, 1);
        if (n > 0) {
            tp->consume(ex, (size_t)n);
            *progress = true;
        } else if (n != -EAGAIN) {
            return false;
        }
    }
    if (tp->client_eof(ex) && !tp->ready(ex).iov_len && !ex->tun_up_shut) {
        forward__shut(up->io.fd, up->ssl);
        ex->tun_up_shut = true;
    }
    return true;
}

/* origin -> client; false when the tunnel must end */
static bool forward__tunnel_down(struct exchange *ex, bool *progress)
{
    const struct transport_ops *tp = ex->tp->ops;
    struct upstream *up = ex->up;
    if (!up->in_eof) {
        if (!up->ox && !(up->ox = buf_get(&ex->w->bufs)))
            return false;
        if (buf_room(up->ox) == 0)
            buf_compact(up->ox);
        if (buf_room(up->ox) > 0 && (up->rd_ready || (up->ssl && SSL_has_pending(up->ssl)))) {
            ssize_t n = io_read(up->io.fd, up->ssl, buf_tail(up->ox), buf_room(up->ox));
            if (n > 0) {
                up->ox->end += (uint32_t)n;
                *progress = true;
            } else if (n == 0) {
                up->in_eof = true;
                *progress = true;
            } else if (n == -EAGAIN) {
                up->rd_ready = false;
            } else {
                return false;
            }
        }
    }
    if (tp->queued(ex) || (up->ox && buf_len(up->ox))) {
        struct iovec body = { up->ox ? buf_head(up->ox) : NULL, up->ox ? buf_len(up->ox) : 0 };
        size_t from_body;
        ssize_t n = tp->write(ex, &body, 1, &from_body);
        if (n > 0) {
            if (from_body)
                buf_consume(up->ox, from_body);
            ex->bytes_out += (uint64_t)n;
            *progress = true;
        } else if (n != -EAGAIN) {
            return false;
        }
    }
    bool to_client_empty = !tp->queued(ex) && (!up->ox || !buf_len(up->ox));
    if (up->in_eof && to_client_empty && !ex->tun_client_shut) {
        tp->shut(ex);
        ex->tun_client_shut = true;
    }
    return true;
}

enum step proxy__step_tunnel(struct exchange *ex)
{
    if (ex->tun)
        return proxy__tunnel_step(ex); /* a tcp:// app's frames */
    bool progress = false;
    if (!forward__tunnel_up(ex, &progress) || !forward__tunnel_down(ex, &progress) ||
        (ex->tun_client_shut && ex->tun_up_shut)) {
        ex->tp->ops->abort(ex, true);
        return STEP_CLOSED;
    }
    if (progress)
        ex->tp->ops->arm(ex, &ex->w->proxy->timers.idle);
    return progress ? STEP_PROGRESS : STEP_WAIT;
}
