/* HTTP/2 to origins (h2c:// with prior knowledge, h2:// with TLS and ALPN h2): libnghttp2's
 * client session over sockets our event loop reads and writes, as upstream.c does for
 * HTTP/1.1. A small pool per origin and worker: a few connections, each multiplexing up to the
 * peer's SETTINGS_MAX_CONCURRENT_STREAMS; a new one when all are full, up to H2UP_MAX_CONNS
 * (past that nghttp2 queues the stream until one ends). A GOAWAY takes its connection out of
 * the pool: the streams it still serves finish, the others fail (502).
 *
 * One stream per exchange. The request head is the one built for HTTP/1.1 origins
 * (proxy__build_origin_head: identity headers, X-Forwarded-*, the client's fields filtered)
 * read back and translated: Host becomes :authority, connection-specific fields go, `te:
 * trailers` is said (gRPC servers want it). The body streams both ways with flow control as
 * the backpressure: the request's DATA are read from the client only as the stream's window
 * takes them (nghttp2 pulls, deferred while nothing is ready), and the response's window is
 * given back (no automatic WINDOW_UPDATE) only as the client takes the bytes, so a slow client
 * never makes latchd buffer a fast origin beyond one stream window (H2UP_WINDOW). The response
 * goes to the client through its transport: to an HTTP/1.1 client chunked when the origin gave
 * no content-length, the origin's trailers in the chunked trailer section.
 *
 * nghttp2's callbacks only record what arrived and mark the stream's exchange to be woken;
 * exchanges run after the session call returned (h2up__wake_all), never inside it. Streams and
 * connections are freed at the end of the loop iteration (h2up_reap), so a pointer held while
 * other exchanges run stays valid. */
#include "proxy/proxy.h"
#include "proxy/head.h"

#include "core/log.h"
#include "metrics/metrics.h"
#include "request/worker_ctx.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define H2UP_MAX_CONNS 4          /* per origin and worker */
#define H2UP_MAX_STREAMS 256      /* per connection, whatever the peer allows */
#define H2UP_WINDOW BUF_SIZE      /* a stream's receive window: one buffer */
#define H2UP_HEAD_BYTES (64 * 1024) /* a response's header (or trailer) section */

struct h2up_pool {
    char *key;
    struct h2up_conn *conns;
    unsigned nconns;
    struct h2up_pool *next;
};

struct h2up_conn {
    struct io_handler io;
    struct worker_ctx *w;
    SSL *ssl;
    nghttp2_session *s;
    struct h2up_pool *pool;
    struct h2up_conn *prev, *next;     /* the pool's connections; next: the dead list once closed */
    struct h2up_stream *streams;       /* the exchanges' streams on it */
    struct h2up_stream *wake;          /* streams whose exchange runs after the session call */
    struct timer timer;                /* idle: no stream */
    const uint8_t *wpend;              /* nghttp2's output not yet written (valid until the */
    size_t wlen;                       /* next nghttp2_session_mem_send) */
    unsigned nstreams;
    bool connected, handshake_done, goaway, closed, rd_ready, waking;
    const char *why;                   /* why it closed */
    enum metrics_origin_error kind;
};

struct h2up_field {
    uint32_t name, name_len, value, value_len; /* offsets into the stream's `hbytes` */
};

struct h2up_stream {
    struct exchange *ex;               /* NULL once detached */
    struct h2up_conn *c;               /* NULL once its connection closed */
    int32_t id;
    struct h2up_stream *prev, *next;   /* the connection's streams */
    struct h2up_stream *wake_next, *dead_next;
    bool wake, dead;
    /* the response */
    int status;
    bool head_ready, in_trailers, end, closed, failed, deferred;
    bool unsent;                       /* failed, and may be sent again: refused (GOAWAY), or
                                        * idempotent and its connection closed before any answer */
    bool gave;                         /* window given back: to be sent */
    const char *why;
    enum metrics_origin_error kind;
    char *hbytes;
    size_t hlen, hcap;
    struct h2up_field *f;
    size_t nf, nhead;                  /* fields; the first nhead are the head's, then trailers */
    struct buf *rx;                    /* DATA not yet taken by the client (window not given back) */
    /* to an HTTP/1.1 client without content-length: chunk framing around rx's bytes */
    bool chunked, fin_built;
    char ch_hdr[20];
    uint8_t ch_hdr_len, ch_hdr_off, ch_tail;
    size_t ch_left;
    char *fin;                         /* the last chunk and the trailer section */
    size_t fin_len, fin_off;
};

struct h2up_worker {
    nghttp2_session_callbacks *cbs;
    struct h2up_pool *pools;
    struct h2up_conn *dead;
    struct h2up_stream *dead_streams;
};

static struct h2up_worker *h2up__worker(struct worker_ctx *w)
{
    struct proxy_worker *pw = w->proxy;
    if (!pw->h2up)
        pw->h2up = calloc(1, sizeof *pw->h2up);
    return pw->h2up;
}

/* --- waking exchanges ---------------------------------------------------------------------- */

static void h2up__mark(struct h2up_stream *st)
{
    if (st->wake || !st->ex || !st->c)
        return;
    st->wake = true;
    st->wake_next = st->c->wake;
    st->c->wake = st;
}

/* Runs the exchanges whose streams had news, except `self` (the exchange running now: it looks
 * at its stream when the session call returns). */
static void h2up__wake_all(struct h2up_conn *c, const struct exchange *self)
{
    if (c->waking)
        return; /* the outer loop goes on */
    c->waking = true;
    while (c->wake) {
        struct h2up_stream *st = c->wake;
        c->wake = st->wake_next;
        st->wake = false;
        if (st->ex && st->ex != self)
            st->ex->tp->ops->wake(st->ex);
    }
    c->waking = false;
}

/* --- connections --------------------------------------------------------------------------- */

static void h2up__conn_close(struct h2up_conn *c, const char *why, enum metrics_origin_error kind)
{
    if (c->closed)
        return;
    struct h2up_worker *hw = c->w->proxy->h2up;
    c->closed = true;
    c->why = why;
    timer_cancel(&c->timer);
    if (c->prev)
        c->prev->next = c->next;
    else
        c->pool->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->pool->nconns--;
    while (c->streams) { /* each exchange learns it when it runs (h2up__wake_all) */
        struct h2up_stream *st = c->streams;
        c->streams = st->next;
        if (!st->closed) {
            st->failed = true;
            st->why = why;
            st->kind = kind;
            st->unsent = kind == METRICS_ORIGIN_RESET && !st->head_ready && st->ex &&
                         proxy__idempotent(st->ex);
        }
        h2up__mark(st);
        st->c = NULL;
        st->prev = st->next = NULL;
    }
    loop_del(c->w->loop, &c->io);
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    close(c->io.fd);
    nghttp2_session_del(c->s);
    c->s = NULL;
    c->next = hw->dead;
    hw->dead = c;
}

static void h2up__idle_timer(struct timer *t)
{
    struct h2up_conn *c = (struct h2up_conn *)((char *)t - offsetof(struct h2up_conn, timer));
    h2up__conn_close(c, "idle", METRICS_ORIGIN_RESET);
    h2up__wake_all(c, NULL);
}

/* Sends what nghttp2 has queued, as far as the socket takes it. false: the connection broke. */
static bool h2up__send(struct h2up_conn *c)
{
    for (;;) {
        if (!c->wlen) {
            ssize_t n = nghttp2_session_mem_send(c->s, &c->wpend);
            if (n < 0) {
                c->why = nghttp2_strerror((int)n);
                c->kind = METRICS_ORIGIN_PROTOCOL;
                return false;
            }
            if (n == 0)
                return true;
            c->wlen = (size_t)n;
        }
        struct iovec v = { (void *)c->wpend, c->wlen };
        ssize_t n = io_writev(c->io.fd, c->ssl, &v, 1);
        if (n == -EAGAIN)
            return true;
        if (n <= 0) {
            c->why = strerror(n ? (int)-n : EPIPE);
            c->kind = c->connected ? METRICS_ORIGIN_RESET : METRICS_ORIGIN_CONNECT;
            return false;
        }
        c->connected = true;
        c->wpend += n;
        c->wlen -= (size_t)n;
    }
}

static bool h2up__handshake(struct h2up_conn *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r != 1) {
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return true;
        long v = SSL_get_verify_result(c->ssl);
        static _Thread_local char why[300];
        snprintf(why, sizeof why, "TLS handshake failed: %s",
                 v != X509_V_OK ? X509_verify_cert_error_string(v) : tls_last_error());
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        c->kind = getpeername(c->io.fd, (struct sockaddr *)&ss, &len) != 0 ? METRICS_ORIGIN_CONNECT
                                                                           : METRICS_ORIGIN_TLS;
        c->why = why;
        return false;
    }
    const unsigned char *alpn = NULL;
    unsigned alen = 0;
    SSL_get0_alpn_selected(c->ssl, &alpn, &alen);
    if (alen != 2 || memcmp(alpn, "h2", 2) != 0) {
        c->why = "the origin did not agree to HTTP/2 (ALPN h2)";
        c->kind = METRICS_ORIGIN_PROTOCOL;
        return false;
    }
    c->handshake_done = c->connected = true;
    return true;
}

/* Reads, feeds nghttp2, writes; then the exchanges with news run (except `self`'s). */
static void h2up__pump(struct h2up_conn *c, const struct exchange *self)
{
    bool ok = true;
    if (c->ssl && !c->handshake_done) {
        ok = h2up__handshake(c);
        if (ok && !c->handshake_done)
            return;
    }
    while (ok && (c->rd_ready || (c->ssl && SSL_has_pending(c->ssl)))) {
        uint8_t in[16384];
        ssize_t n = io_read(c->io.fd, c->ssl, in, sizeof in);
        if (n > 0) {
            c->connected = true;
            ssize_t r = nghttp2_session_mem_recv(c->s, in, (size_t)n);
            if (r < 0) {
                c->why = nghttp2_strerror((int)r);
                c->kind = METRICS_ORIGIN_PROTOCOL;
                ok = false;
            }
        } else if (n == -EAGAIN) {
            c->rd_ready = false;
        } else {
            c->why = n == 0 ? "the origin closed the connection" : strerror((int)-n);
            c->kind = c->connected ? METRICS_ORIGIN_RESET : METRICS_ORIGIN_CONNECT;
            ok = false;
        }
    }
    if (ok)
        ok = h2up__send(c);
    if (ok && !nghttp2_session_want_read(c->s) && !nghttp2_session_want_write(c->s)) {
        c->why = "the origin ended the connection (GOAWAY)";
        c->kind = METRICS_ORIGIN_RESET;
        ok = false;
    }
    if (!ok)
        h2up__conn_close(c, c->why, c->kind);
    h2up__wake_all(c, self);
}

static void h2up__on_io(struct io_handler *h, uint32_t events)
{
    struct h2up_conn *c = (struct h2up_conn *)h;
    if (c->closed)
        return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->rd_ready = true;
    h2up__pump(c, NULL);
}

/* --- nghttp2's callbacks: record, mark for waking ------------------------------------------ */

static struct h2up_stream *h2up__stream(nghttp2_session *s, int32_t id)
{
    return id > 0 ? nghttp2_session_get_stream_user_data(s, id) : NULL;
}

static int h2up__on_header(nghttp2_session *s, const nghttp2_frame *fr, const uint8_t *name,
                           size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    struct h2up_stream *st = h2up__stream(s, fr->hd.stream_id);
    if (!st || fr->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (nlen == 7 && !memcmp(name, ":status", 7)) {
        int v = 0;
        for (size_t i = 0; i < vlen && i < 3; i++)
            v = v * 10 + (value[i] - '0');
        st->status = v;
        return 0;
    }
    if (nlen && name[0] == ':')
        return 0;
    if (st->hlen + nlen + vlen > H2UP_HEAD_BYTES || st->nf >= HTTP_MAX_HEADERS) {
        st->failed = true;
        st->why = "response header section too large";
        st->kind = METRICS_ORIGIN_PROTOCOL;
        h2up__mark(st);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* the stream is reset */
    }
    if (st->hlen + nlen + vlen > st->hcap) {
        size_t cap = st->hcap ? st->hcap * 2 : 1024;
        while (cap < st->hlen + nlen + vlen)
            cap *= 2;
        char *p = realloc(st->hbytes, cap);
        if (!p)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        st->hbytes = p;
        st->hcap = cap;
    }
    if (!st->f && !(st->f = calloc(HTTP_MAX_HEADERS, sizeof *st->f)))
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    struct h2up_field *f = &st->f[st->nf++];
    f->name = (uint32_t)st->hlen;
    f->name_len = (uint32_t)nlen;
    memcpy(st->hbytes + st->hlen, name, nlen);
    st->hlen += nlen;
    f->value = (uint32_t)st->hlen;
    f->value_len = (uint32_t)vlen;
    memcpy(st->hbytes + st->hlen, value, vlen);
    st->hlen += vlen;
    return 0;
}

static int h2up__on_frame_recv(nghttp2_session *s, const nghttp2_frame *fr, void *ud)
{
    struct h2up_conn *c = ud;
    if (fr->hd.type == NGHTTP2_GOAWAY) {
        c->goaway = true; /* no new stream on it; nghttp2 closes those it will not serve */
        return 0;
    }
    struct h2up_stream *st = h2up__stream(s, fr->hd.stream_id);
    if (!st)
        return 0;
    if (fr->hd.type == NGHTTP2_HEADERS) {
        if (!st->head_ready) {
            if (st->status >= 100 && st->status < 200) { /* interim: dropped */
                st->nf = st->hlen = 0;
                st->status = 0;
                return 0;
            }
            st->head_ready = true;
            st->nhead = st->nf;
        } else {
            st->in_trailers = true;
        }
    }
    if ((fr->hd.type == NGHTTP2_HEADERS || fr->hd.type == NGHTTP2_DATA) &&
        (fr->hd.flags & NGHTTP2_FLAG_END_STREAM))
        st->end = true;
    h2up__mark(st);
    return 0;
}

static int h2up__on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    struct h2up_stream *st = h2up__stream(s, id);
    if (!st || !st->ex) {
        nghttp2_session_consume(s, id, len); /* nobody takes it */
        return 0;
    }
    struct buf *b = st->rx;
    if (!b && !(b = st->rx = buf_get(&st->ex->w->bufs)))
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (buf_room(b) < len)
        buf_compact(b);
    if (buf_room(b) < len) /* past the window we gave: nghttp2 refuses that before */
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    memcpy(buf_tail(b), data, len);
    b->end += (uint32_t)len;
    h2up__mark(st);
    return 0;
}

static int h2up__on_stream_close(nghttp2_session *s, int32_t id, uint32_t error, void *ud)
{
    struct h2up_conn *c = ud;
    if (c->nstreams)
        c->nstreams--;
    struct h2up_stream *st = h2up__stream(s, id);
    if (st) {
        st->closed = true;
        if (!st->end && !st->failed) {
            st->failed = true;
            st->kind = METRICS_ORIGIN_RESET;
            st->why = error == NGHTTP2_REFUSED_STREAM ? "the origin refused the stream"
                                                      : "the origin reset the stream";
            st->unsent = error == NGHTTP2_REFUSED_STREAM && !st->head_ready;
        }
        h2up__mark(st);
    }
    if (!c->nstreams && !c->closed) /* idle: closed at pool_idle, or soon when draining */
        timer_arm(c->w->loop, &c->timer, &c->w->proxy->timers.pool_idle);
    return 0;
}

static nghttp2_session_callbacks *h2up__callbacks(struct h2up_worker *hw)
{
    nghttp2_session_callbacks *cbs = hw->cbs;
    if (!cbs && nghttp2_session_callbacks_new(&cbs) == 0) {
        hw->cbs = cbs;
        nghttp2_session_callbacks_set_on_header_callback(cbs, h2up__on_header);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, h2up__on_frame_recv);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, h2up__on_data);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2up__on_stream_close);
    }
    return cbs;
}

static struct h2up_conn *h2up__conn_new(struct exchange *ex, struct h2up_pool *pool, int *err)
{
    nghttp2_session_callbacks *cbs = h2up__callbacks(ex->w->proxy->h2up);
    struct h2up_conn *c = calloc(1, sizeof *c);
    nghttp2_option *opt = NULL;
    *err = -ENOMEM;
    if (!cbs || !c || nghttp2_option_new(&opt) != 0) {
        free(c);
        return NULL;
    }
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_peer_max_concurrent_streams(opt, 100);
    int r = nghttp2_session_client_new2(&c->s, cbs, c, opt);
    nghttp2_option_del(opt);
    if (r != 0) {
        free(c);
        return NULL;
    }
    nghttp2_settings_entry iv[] = {
        { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2UP_WINDOW },
        { NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, H2UP_HEAD_BYTES },
    };
    /* the connection's window: the streams' windows bound what is buffered */
    if (nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof *iv) != 0 ||
        nghttp2_session_set_local_window_size(c->s, NGHTTP2_FLAG_NONE, 0, 1 << 30) != 0 ||
        (*err = proxy__origin_dial(ex, &c->io.fd, &c->ssl)) != 0) {
        nghttp2_session_del(c->s);
        free(c);
        return NULL;
    }
    c->io.cb = h2up__on_io;
    c->w = ex->w;
    c->pool = pool;
    c->timer.cb = h2up__idle_timer;
    if (loop_add(c->w->loop, &c->io) != 0) {
        *err = -errno;
        SSL_free(c->ssl);
        close(c->io.fd);
        nghttp2_session_del(c->s);
        free(c);
        return NULL;
    }
    c->next = pool->conns;
    if (pool->conns)
        pool->conns->prev = c;
    pool->conns = c;
    pool->nconns++;
    return c;
}

static struct h2up_pool *h2up__pool(struct h2up_worker *hw, const char *key)
{
    for (struct h2up_pool *p = hw->pools; p; p = p->next)
        if (!strcmp(p->key, key))
            return p;
    struct h2up_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->key = strdup(key))) {
        free(p);
        return NULL;
    }
    p->next = hw->pools;
    hw->pools = p;
    return p;
}

/* A connection with room for one more stream: the first not full, a new one while there are
 * fewer than H2UP_MAX_CONNS, else the least busy (nghttp2 queues the stream). */
static struct h2up_conn *h2up__conn_for(struct exchange *ex, int *err)
{
    struct h2up_worker *hw = h2up__worker(ex->w);
    struct h2up_pool *pool = hw ? h2up__pool(hw, ex->art->pool_key) : NULL;
    *err = -ENOMEM;
    if (!pool)
        return NULL;
    struct h2up_conn *least = NULL;
    for (struct h2up_conn *c = pool->conns; c; c = c->next) {
        if (c->goaway)
            continue;
        uint32_t max = nghttp2_session_get_remote_settings(c->s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
        if (max > H2UP_MAX_STREAMS)
            max = H2UP_MAX_STREAMS;
        if (c->nstreams < max)
            return c;
        if (!least || c->nstreams < least->nstreams)
            least = c;
    }
    if (pool->nconns < H2UP_MAX_CONNS || !least)
        return h2up__conn_new(ex, pool, err);
    return least;
}

/* --- the request --------------------------------------------------------------------------- */

static void h2up__nv(nghttp2_nv *nv, const char *name, size_t nlen, const char *value, size_t vlen)
{
    *nv = (nghttp2_nv){ (uint8_t *)name, (uint8_t *)value, nlen, vlen, NGHTTP2_NV_FLAG_NONE };
}


static size_t h2up__take_into(void *arg, const char *p, size_t n)
{
    struct iovec *to = arg;
    size_t k = n < to->iov_len ? n : to->iov_len;
    memcpy(to->iov_base, p, k);
    to->iov_base = (char *)to->iov_base + k;
    to->iov_len -= k;
    return k;
}

/* The client's trailers (ex->req_trailers: "name: value\r\n" lines its transport validated and
 * filtered) as the stream's trailing HEADERS. */
static int h2up__submit_trailers(nghttp2_session *s, int32_t id, const struct exchange *ex)
{
    nghttp2_nv nv[HTTP_MAX_HEADERS];
    size_t n = 0;
    const char *p = ex->req_trailers, *end = p + ex->req_trailers_len;
    while (p < end && n < HTTP_MAX_HEADERS) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *colon = memchr(p, ':', (size_t)((eol ? eol : end) - p));
        if (!eol || !colon)
            break;
        const char *v = colon + 1, *ve = eol;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        h2up__nv(&nv[n++], p, (size_t)(colon - p), v, (size_t)(ve - v));
        p = eol + 1;
    }
    return n ? nghttp2_submit_trailer(s, id, nv, n) : -1;
}

/* nghttp2 pulls the request body: what the client sent and the transport validated. */
static ssize_t h2up__read_body(nghttp2_session *s, int32_t id, uint8_t *out, size_t cap,
                               uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct h2up_stream *st = src->ptr;
    struct exchange *ex = st->ex;
    if (!ex)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    const struct transport_ops *tp = ex->tp->ops;
    struct iovec to = { out, cap };
    for (;;) {
        struct iovec v = tp->ready(ex);
        if (!v.iov_len || !to.iov_len)
            break;
        size_t used = ex->req_body == HTTP_BODY_CHUNKED ? proxy__dechunk(ex, v.iov_base, v.iov_len, h2up__take_into, NULL, &to)
                                                        : h2up__take_into(&to, v.iov_base, v.iov_len);
        tp->consume(ex, used);
    }
    size_t n = cap - to.iov_len;
    ex->body_sent += n;
    if (ex->req_done && !ex->rx_ready) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (ex->req_trailers && h2up__submit_trailers(s, id, ex) == 0)
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM; /* the trailers end it */
    }
    else if (!n) {
        st->deferred = true;
        h2up__mark(st); /* the client's side reads on */
        return NGHTTP2_ERR_DEFERRED;
    }
    if (n)
        h2up__mark(st); /* room in the client's buffer: it reads on */
    return (ssize_t)n;
}

/* The head built for HTTP/1.1 origins, as HTTP/2 fields: names lower-cased (into lower), Host
 * as :authority, the connection-specific fields dropped; `te: trailers` added. */
static int h2up__submit(struct exchange *ex, struct h2up_stream *st)
{
    struct head_lines h;
    if (head_lines_read(ex->hb->data, ex->hb->end, &h) != 0)
        return -ENOMEM;
    nghttp2_nv *nv = calloc(h.nfields + 6, sizeof *nv);
    char *lower = malloc(ex->hb->end + 1);
    char *path = malloc(h.path.n + h.query.n + 2);
    int r = -ENOMEM;
    if (!nv || !lower || !path)
        goto out;
    size_t n = 0, lo = 0, pl = 0;
    memcpy(path, h.path.p, h.path.n);
    pl = h.path.n;
    if (h.has_query) {
        path[pl++] = '?';
        memcpy(path + pl, h.query.p, h.query.n);
        pl += h.query.n;
    }
    bool tls = ex->app->origin.kind == ORIGIN_HTTPS;
    h2up__nv(&nv[n++], ":method", 7, h.method.p, h.method.n);
    h2up__nv(&nv[n++], ":scheme", 7, tls ? "https" : "http", tls ? 5 : 4);
    size_t authority = n++;
    h2up__nv(&nv[authority], ":authority", 10, "", 0);
    h2up__nv(&nv[n++], ":path", 5, path, pl);
    for (size_t i = 0; i < h.nfields; i++) {
        const struct http_header *f = &h.fields[i];
        uint8_t id = http_field_id(f->name);
        if (id == HTTP_F_HOST) {
            h2up__nv(&nv[authority], ":authority", 10, f->value.p, f->value.n);
            continue;
        }
        if (http_field_hop(id) || id == HTTP_F_EXPECT)
            continue;
        char *name = lower + lo;
        for (size_t k = 0; k < f->name.n; k++)
            name[k] = (char)(f->name.p[k] >= 'A' && f->name.p[k] <= 'Z' ? f->name.p[k] | 32 : f->name.p[k]);
        lo += f->name.n;
        h2up__nv(&nv[n++], name, f->name.n, f->value.p, f->value.n);
    }
    h2up__nv(&nv[n++], "te", 2, "trailers", 8);
    nghttp2_data_provider body = { .source.ptr = st, .read_callback = h2up__read_body };
    bool has_body = ex->req_body == HTTP_BODY_CHUNKED ||
                    (ex->req_body == HTTP_BODY_LENGTH && !(ex->req_done && !ex->rx_ready));
    int32_t id = nghttp2_submit_request(st->c->s, NULL, nv, n, has_body ? &body : NULL, st);
    r = id < 0 ? -EIO : 0;
    if (id > 0) {
        st->id = id;
        st->c->nstreams++;
        timer_cancel(&st->c->timer);
    }
out:
    free(h.fields);
    free(nv);
    free(lower);
    free(path);
    return r;
}

static int h2up__open(struct exchange *ex)
{
    if (!ex->art->origin_addrlen)
        return -EHOSTUNREACH;
    int err;
    struct h2up_conn *c = h2up__conn_for(ex, &err);
    if (!c)
        return err;
    struct h2up_stream *st = calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    st->ex = ex;
    st->c = c;
    ex->h2s = st;
    ex->upgrade = false; /* no 101 over HTTP/2 */
    st->next = c->streams;
    if (c->streams)
        c->streams->prev = st;
    c->streams = st;
    return h2up__submit(ex, st);
}

/* --- the exchange's side ------------------------------------------------------------------- */

static void h2up__stream_free(struct worker_ctx *w, struct h2up_stream *st)
{
    struct h2up_worker *hw = w->proxy->h2up;
    st->dead = true;
    st->dead_next = hw->dead_streams;
    hw->dead_streams = st;
}

void proxy__h2up_detach(struct exchange *ex)
{
    struct h2up_stream *st = ex->h2s;
    if (!st)
        return;
    ex->h2s = NULL;
    st->ex = NULL;
    struct h2up_conn *c = st->c;
    if (c) {
        if (st->id > 0) {
            nghttp2_session_set_stream_user_data(c->s, st->id, NULL);
            size_t held = st->rx ? buf_len(st->rx) : 0;
            if (!st->closed)
                nghttp2_submit_rst_stream(c->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
            if (held) /* the connection's window back; the stream's ends with it */
                nghttp2_session_consume_connection(c->s, held);
        }
        if (st->prev)
            st->prev->next = st->next;
        else
            c->streams = st->next;
        if (st->next)
            st->next->prev = st->prev;
        st->c = NULL;
        if (!c->closed && !h2up__send(c)) {
            h2up__conn_close(c, c->why, c->kind);
            h2up__wake_all(c, NULL); /* its other exchanges learn it */
                }
    }
    buf_put(&ex->w->bufs, st->rx);
    st->rx = NULL;
    h2up__stream_free(ex->w, st);
}

static enum step h2up__fail(struct exchange *ex, int status, enum metrics_origin_error kind, const char *why)
{
    struct h2up_conn *c = ex->h2s ? ex->h2s->c : NULL;
    proxy__h2up_detach(ex);
    if (c)
        h2up__wake_all(c, ex);
    return proxy__origin_failed(ex, status, kind, why);
}

void proxy__h2up_timeout(struct exchange *ex)
{
    struct h2up_stream *st = ex->h2s;
    bool connected = st && st->c && st->c->connected;
    if (connected && !ex->req_done && !ex->res_head_done && st->deferred) {
        /* the client stopped in the middle of its body (timeouts.client) */
        ex->status = 408;
        ex->close_after = true;
        proxy__h2up_detach(ex);
        if (ex->tp->ops->fail(ex, 408, "request_timeout", "The request body stopped arriving.") != STEP_CLOSED)
            ex->tp->ops->wake(ex);
        return;
    }
    if (h2up__fail(ex, 504, METRICS_ORIGIN_TIMEOUT, connected ? "response timeout" : "connect timeout") != STEP_CLOSED)
        ex->tp->ops->wake(ex);
}

static void h2up__arm(struct exchange *ex)
{
    struct proxy_worker *pw = ex->w->proxy;
    const struct h2up_stream *st = ex->h2s;
    struct timer_queue *t = &pw->timers.origin_response;
    if (!st->c || !st->c->connected)
        t = &pw->timers.origin_connect;
    else if (!ex->req_done && st->deferred)
        t = &pw->timers.client;
    ex->tp->ops->arm(ex, t);
}

/* The response head to the client's transport. */
static int h2up__head(struct exchange *ex, struct h2up_stream *st)
{
    struct http_response res = { .status = st->status, .minor = 1, .keep_alive = true };
    const char *reason = http_reason(st->status);
    res.reason = (struct http_slice){ reason, strlen(reason) };
    bool has_length = false;
    for (size_t i = 0; i < st->nhead; i++) {
        struct http_header *h = &res.headers[res.nheaders++];
        h->name = (struct http_slice){ st->hbytes + st->f[i].name, st->f[i].name_len };
        h->value = (struct http_slice){ st->hbytes + st->f[i].value, st->f[i].value_len };
        h->id = http_field_id(h->name);
        if (h->id == HTTP_F_CONTENT_LENGTH)
            has_length = true;
    }
    bool bodiless = ex->head_method || st->status == 204 || st->status == 304;
    if (bodiless)
        res.body = HTTP_BODY_NONE;
    else if (has_length)
        res.body = HTTP_BODY_LENGTH; /* nghttp2 checked it against the DATA */
    else if (ex->tp->ops->trailers && st->end && (!st->rx || !buf_len(st->rx)) && st->nf == st->nhead)
        res.body = HTTP_BODY_NONE; /* trailers-only (a gRPC status): one HEADERS to the client too */
    else if (ex->tp->ops->trailers)
        res.body = HTTP_BODY_CLOSE; /* a transport that frames the body itself (HTTP/2): until `end` */
    else if (ex->minor == 0) {
        res.body = HTTP_BODY_CLOSE;
        ex->close_after = true;
    } else {
        res.body = HTTP_BODY_CHUNKED;
        st->chunked = true;
    }
    if (ex->w->draining)
        ex->close_after = true;
    ex->res_body = res.body;
    ex->status = st->status;
    return ex->tp->ops->head(ex, &res, false);
}

/* The origin's trailers a client may get (into f, HTTP_MAX_HEADERS of them): head_trailer_passes. */
static size_t h2up__trailers(const struct h2up_stream *st, struct http_header *f)
{
    size_t n = 0;
    for (size_t i = st->nhead; i < st->nf; i++) {
        struct http_header h = {
            { st->hbytes + st->f[i].name, st->f[i].name_len },
            { st->hbytes + st->f[i].value, st->f[i].value_len },
            0,
        };
        h.id = http_field_id(h.name);
        if (head_trailer_passes(&h))
            f[n++] = h;
    }
    return n;
}

/* The end of the response: for an HTTP/1.1 client, the last chunk with the trailers (written
 * from st->fin); for a transport that carries trailers itself, its `trailers` op. */
static int h2up__fin(struct exchange *ex, struct h2up_stream *st)
{
    struct http_header f[HTTP_MAX_HEADERS];
    size_t nf = h2up__trailers(st, f);
    st->fin_built = true;
    if (!st->chunked)
        return nf && ex->tp->ops->trailers ? ex->tp->ops->trailers(ex, f, nf) : 0;
    if (!(st->fin = malloc(8 + st->hlen + 4 * nf)))
        return -1;
    size_t n = 3;
    memcpy(st->fin, "0\r\n", 3);
    for (size_t i = 0; i < nf; i++) {
        memcpy(st->fin + n, f[i].name.p, f[i].name.n);
        n += f[i].name.n;
        memcpy(st->fin + n, ": ", 2);
        n += 2;
        memcpy(st->fin + n, f[i].value.p, f[i].value.n);
        n += f[i].value.n;
        memcpy(st->fin + n, "\r\n", 2);
        n += 2;
    }
    memcpy(st->fin + n, "\r\n", 2);
    st->fin_len = n + 2;
    return 0;
}

/* The response's body to the client, as it takes it; the window given back as it goes. */
static bool h2up__to_client(struct exchange *ex, struct h2up_stream *st, bool *progress, enum step *sp)
{
    const struct transport_ops *tp = ex->tp->ops;
    for (;;) {
        size_t held = st->rx ? buf_len(st->rx) : 0;
        if (st->chunked && !st->ch_left && !st->ch_tail && held) {
            st->ch_left = held;
            st->ch_hdr_len = (uint8_t)snprintf(st->ch_hdr, sizeof st->ch_hdr, "%zx\r\n", held);
            st->ch_hdr_off = 0;
            st->ch_tail = 2;
        }
        if (st->end && !held && !st->ch_left && !st->ch_tail && !st->fin_built &&
            h2up__fin(ex, st) != 0) {
            tp->abort(ex, false);
            *sp = STEP_CLOSED;
            return true;
        }
        struct iovec iov[3];
        int n = 0;
        size_t data = st->chunked ? st->ch_left : held;
        if (st->chunked && st->ch_hdr_off < st->ch_hdr_len)
            iov[n++] = (struct iovec){ st->ch_hdr + st->ch_hdr_off, (size_t)(st->ch_hdr_len - st->ch_hdr_off) };
        if (data)
            iov[n++] = (struct iovec){ buf_head(st->rx), data };
        if (st->chunked && st->ch_tail)
            iov[n++] = (struct iovec){ (char *)"\r\n" + (2 - st->ch_tail), st->ch_tail };
        else if (st->fin && st->fin_off < st->fin_len)
            iov[n++] = (struct iovec){ st->fin + st->fin_off, st->fin_len - st->fin_off };
        if (!n && !tp->queued(ex))
            return false;
        size_t from_body;
        ssize_t w = tp->write(ex, iov, n, &from_body);
        if (w == -EAGAIN)
            return false;
        if (w <= 0) {
            ex->status = ex->status ? ex->status : 499;
            tp->abort(ex, true);
            *sp = STEP_CLOSED;
            return true;
        }
        ex->bytes_out += (uint64_t)w;
        *progress = true;
        size_t left = from_body, gave = 0;
        if (st->chunked && st->ch_hdr_off < st->ch_hdr_len) {
            size_t k = left < (size_t)(st->ch_hdr_len - st->ch_hdr_off) ? left : (size_t)(st->ch_hdr_len - st->ch_hdr_off);
            st->ch_hdr_off += (uint8_t)k;
            left -= k;
        }
        if (data && st->ch_hdr_off == st->ch_hdr_len) {
            size_t k = left < data ? left : data;
            buf_consume(st->rx, k);
            gave = k;
            if (st->chunked)
                st->ch_left -= k;
            left -= k;
        }
        if (st->chunked && st->ch_tail && !st->ch_left) {
            size_t k = left < st->ch_tail ? left : st->ch_tail;
            st->ch_tail -= (uint8_t)k;
            left -= k;
        } else if (st->fin) {
            st->fin_off += left;
        }
        if (gave && st->c && !st->c->closed) {
            nghttp2_session_consume(st->c->s, st->id, gave);
            st->gave = true;
        }
        if (!from_body && !n)
            return false;
    }
}

enum step proxy__step_h2up(struct exchange *ex)
{
    const struct transport_ops *tp = ex->tp->ops;
    bool progress = false;
    enum step sp;
    if (!ex->h2s) {
        int r = h2up__open(ex);
        if (r != 0)
            return h2up__fail(ex, 502, METRICS_ORIGIN_CONNECT, strerror(-r));
        h2up__arm(ex);
        progress = true;
    }
    struct h2up_stream *st = ex->h2s;

    /* the client's body, read as nghttp2 takes it */
    if (!ex->req_done || st->deferred) {
        if (tp->validate(ex) != 0) {
            ex->close_after = true;
            if (ex->res_head_done) {
                tp->abort(ex, false);
                return STEP_CLOSED;
            }
            proxy__h2up_detach(ex);
            return tp->fail(ex, 400, "bad_request", "Malformed request body.");
        }
        if (!ex->req_done && !ex->rx_ready && !tp->client_eof(ex)) {
            switch (tp->read(ex)) {
            case READ_DATA:
                progress = true;
                if (tp->validate(ex) != 0)
                    return STEP_PROGRESS; /* seen on the next turn */
                break;
            case READ_EOF:
            case READ_ERR:
                ex->status = ex->status ? ex->status : 400;
                tp->abort(ex, true);
                return STEP_CLOSED;
            case READ_AGAIN:
                break;
            }
        }
        if (st->deferred && st->c && (ex->rx_ready || ex->req_done)) {
            st->deferred = false;
            nghttp2_session_resume_data(st->c->s, st->id);
        }
    }
    if (st->c && !st->c->closed) {
        struct h2up_conn *c = st->c;
        h2up__pump(c, ex);
        if (!ex->h2s)
            return STEP_PROGRESS; /* cannot happen: only this exchange detaches its stream */
    }

    if (st->failed && st->unsent && !ex->retried && ex->body_sent == 0) {
        /* a connection that died under it (a pooled one the origin had closed), or a stream
         * refused by GOAWAY: once more, on another connection (RFC 9113 §8.7) */
        struct h2up_conn *c = st->c;
        proxy__h2up_detach(ex);
        if (c)
            h2up__wake_all(c, ex);
        ex->retried = true;
        return STEP_PROGRESS;
    }
    if (st->failed && !(st->end && st->head_ready))
        return h2up__fail(ex, 502, st->kind, st->why ? st->why : "the origin failed");
    if (st->head_ready && !ex->res_head_done) {
        if (h2up__head(ex, st) != 0)
            return h2up__fail(ex, 502, METRICS_ORIGIN_PROTOCOL, "response head too large");
        ex->res_head_done = true;
        progress = true;
    }
    if (ex->res_head_done && h2up__to_client(ex, st, &progress, &sp))
        return sp;
    if (st->gave && st->c && !st->c->closed) { /* the WINDOW_UPDATE out now: the origin goes on */
        st->gave = false;
        h2up__pump(st->c, ex);
    }
    bool sent = (!st->rx || !buf_len(st->rx)) && st->fin_built;
    if (st->chunked)
        sent = sent && !st->ch_left && !st->ch_tail && st->fin_off == st->fin_len;
    if (ex->res_head_done && st->end && sent && !tp->queued(ex)) {
        ex->res_done = true;
        if (!ex->req_done)
            ex->close_after = true;
        struct h2up_conn *c = st->c;
        proxy__h2up_detach(ex);
        if (c)
            h2up__wake_all(c, ex);
        return tp->end(ex);
    }
    if (progress)
        h2up__arm(ex);
    return progress ? STEP_PROGRESS : STEP_WAIT;
}

/* --- the worker's pools -------------------------------------------------------------------- */

void h2up_close_pools(struct proxy_worker *pw, bool busy_too)
{
    if (!pw->h2up)
        return;
    for (struct h2up_pool *p = pw->h2up->pools; p; p = p->next)
        for (struct h2up_conn *c = p->conns, *next; c; c = next) {
            next = c->next;
            c->goaway = true; /* no new stream; the busy ones end with their last */
            if (!busy_too && c->nstreams)
                continue;
            h2up__conn_close(c, "closing", METRICS_ORIGIN_RESET);
            h2up__wake_all(c, NULL);
        }
}

void h2up_reap(struct proxy_worker *pw)
{
    struct h2up_worker *hw = pw->h2up;
    if (!hw)
        return;
    while (hw->dead) {
        struct h2up_conn *c = hw->dead;
        hw->dead = c->next;
        free(c);
    }
    while (hw->dead_streams) {
        struct h2up_stream *st = hw->dead_streams;
        hw->dead_streams = st->dead_next;
        free(st->hbytes);
        free(st->f);
        free(st->fin);
        free(st);
    }
}

void h2up_free_pools(struct proxy_worker *pw)
{
    h2up_close_pools(pw, true);
    h2up_reap(pw);
    if (!pw->h2up)
        return;
    while (pw->h2up->pools) {
        struct h2up_pool *p = pw->h2up->pools;
        pw->h2up->pools = p->next;
        free(p->key);
        free(p);
    }
    nghttp2_session_callbacks_del(pw->h2up->cbs);
    free(pw->h2up);
    pw->h2up = NULL;
}
