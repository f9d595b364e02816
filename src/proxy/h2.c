/* HTTP/2 to clients (RFC 9113), the second transport of request/exchange.h: libnghttp2 frames,
 * decodes HPACK and keeps flow control; we do the socket and TLS I/O in the worker's loop (as
 * conn.c does) and decide what is allowed. Every stream is an exchange with the same routing,
 * normalization, identity, policy, headers and log as an HTTP/1.1 request: its header list is
 * written out as an HTTP/1.1 head and read by the one strict parser (http_parse_request), so
 * the rules are not copied; admission, forwarding, the echo and the own endpoints run on it
 * unchanged.
 *
 * nghttp2's HTTP messaging checks stay on (RFC 9113 §8: pseudo-headers, upper-case or invalid
 * names, CR/LF/NUL in values, connection-specific fields, content-length against DATA): a
 * malformed request is reset with PROTOCOL_ERROR. What it leaves to us: :authority and host
 * that disagree (400), the header list's size (431), the request line's size (414), the path's
 * normalization (400), and the abuse bounds below.
 *
 * Request bodies: DATA is kept in the stream's buffer in HTTP/1.1 framing (raw with a
 * content-length, else chunked), what the exchange's read/validate/ready/consume ops and the
 * origins expect; its flow-control window is given back (nghttp2_session_consume) only as the
 * exchange passes bytes on. Responses: a data provider drains the stream's buffer, deferred
 * while it is empty, resumed when `write` adds to it.
 *
 * Abuse: streams beyond max_concurrent_streams are refused; rapid reset (CVE-2023-44487) is
 * nghttp2's reset rate limit plus our count of streams reset before their answer; CONTINUATION
 * floods and HPACK bombs are bounded by max_continuations and the header list size we count
 * ourselves; SETTINGS/PING/WINDOW_UPDATE/PRIORITY floods by max_outbound_ack, max_settings and
 * our control-frame budget. A client past a bound gets GOAWAY ENHANCE_YOUR_CALM. */
#include "proxy/h2.h"

#include "core/ipaddr.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "http/ws.h"
#include "proxy/head.h"
#include "proxy/local.h"
#include "request/worker_ctx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H2_CONN_WINDOW   (1 << 20)   /* the connection's receive window */
#define H2_TX_MAX        (64 * 1024) /* response bytes a stream holds for its data provider */
#define H2_CTRL_BUDGET   2000        /* control frames a connection may send at once… */
#define H2_CTRL_REFILL   200         /* …and per second after */
#define H2_RESET_BUDGET  200         /* streams reset by the client before their answer… */
#define H2_RESET_REFILL  50          /* …and per second after */


enum h2_stream_state {
    HS_HEAD,  /* receiving the header list */
    HS_RUN,   /* the exchange runs (origin or echo) */
    HS_FORM,  /* an own endpoint reading its form (read_all) */
    HS_WAIT,  /* an own endpoint waiting (wait): a job or a parked long poll */
    HS_DONE,  /* the exchange ended; the response may still be draining */
};

struct h2_stream {
    struct transport tp;
    struct h2conn *h;
    struct exchange *ex;
    int32_t id;
    uint8_t state;
    bool echo;
    bool ex_done, ex_logged;           /* the exchange ended (freed at the next safe point) */
    bool ex_abort;                     /* ended by abort: its origin connection not reused */
    struct timer timer;
    struct h2_stream *prev, *next;

    /* the header list, then the trailers */
    struct h2_fields fl;
    struct strbuf trl;                 /* the client's trailers, kept fields as lines */

    /* the request body in HTTP/1.1 framing */
    char *rx;
    size_t rx_start, rx_len, rx_cap;
    size_t unacked;                    /* DATA bytes whose window we have not given back */
    uint8_t ack_state;                 /* reading the framing of what was consumed (chunked) */
    uint64_t ack_left;
    bool chunked, in_end, fresh, discard;
    bool websocket;                    /* an extended CONNECT (RFC 8441) for a WebSocket */
    bool tunnel;                       /* its 200 sent: DATA both ways are the tunnel's bytes */

    /* the response */
    char *tx;
    size_t tx_start, tx_len, tx_cap;
    bool submitted, res_end, deferred, no_body;
    struct strbuf otrl;                /* an HTTP/1.1 origin's chunked trailer section */
    nghttp2_nv *trailers;
    size_t ntrailers;
    char *trailer_text;

    struct strbuf *form;
    enum step (*form_done)(struct exchange *ex);
};

struct h2_nvs {
    nghttp2_nv nv[HTTP_MAX_HEADERS + 24];
    size_t n;
    char text[HTTP_MAX_HEADER_BYTES * 2 + 4096]; /* lower-cased names */
    size_t used;
    bool overflow;
};

struct h2conn {
    struct conn *c;
    nghttp2_session *s;
    struct h2_stream *streams, *dead;
    unsigned nstreams;
    bool in_pump, again, fatal, goaway;
    struct h2_nvs *nvs;                /* a response head being built (one at a time) */
    struct strbuf head;                /* a request's list as an HTTP/1.1 head (one at a time) */
    int64_t ctrl_budget, reset_budget;
    uint64_t budget_ms;
};

static const struct transport_ops h2__ops;
static void h2__stream_timer(struct timer *t);
static void h2__run(struct h2_stream *st);
static void h2__ack(struct h2_stream *st, size_t n);

static struct h2_stream *h2__of(const struct exchange *ex)
{
    return (struct h2_stream *)((char *)ex->tp - offsetof(struct h2_stream, tp));
}

/* --- budgets --------------------------------------------------------------------------------- */

static void h2__refill(struct h2conn *h)
{
    uint64_t now = loop_now(h->c->w->loop);
    if (now <= h->budget_ms)
        return;
    uint64_t dt = now - h->budget_ms;
    h->budget_ms = now;
    h->ctrl_budget += (int64_t)(dt * H2_CTRL_REFILL / 1000);
    if (h->ctrl_budget > H2_CTRL_BUDGET)
        h->ctrl_budget = H2_CTRL_BUDGET;
    h->reset_budget += (int64_t)(dt * H2_RESET_REFILL / 1000);
    if (h->reset_budget > H2_RESET_BUDGET)
        h->reset_budget = H2_RESET_BUDGET;
}

/* A client past a bound: GOAWAY ENHANCE_YOUR_CALM, then the connection closes once it is sent. */
static void h2__calm(struct h2conn *h, const char *why)
{
    if (h->fatal)
        return;
    h->fatal = true;
    char who[INET6_ADDRSTRLEN];
    ipaddr_format(h->c->peer, who);
    log_msg("warn", "client %s: HTTP/2 connection closed: %s", who, why);
    nghttp2_session_terminate_session(h->s, NGHTTP2_ENHANCE_YOUR_CALM);
}

/* --- the exchange's end ---------------------------------------------------------------------- */

/* Frees a finished exchange (at a safe point: never inside one of its steps). */
static void h2__free_exchange(struct h2_stream *st)
{
    struct exchange *ex = st->ex;
    if (!ex)
        return;
    if (!st->ex_logged) {
        if (!ex->status)
            ex->status = 499;
        proxy__log_request(ex);
    }
    if (ex->up)
        upstream_release(ex->up, !st->ex_abort && ex->res_body != HTTP_BODY_CLOSE && !ex->res_close &&
                                     ex->req_done && ex->rx_ready == 0 && ex->hb && ex->hb_sent == ex->hb->end &&
                                     ex->res_done);
    ex->up = NULL;
    proxy__free_exchange(st->h->c->w, ex);
    st->ex = NULL;
    st->state = HS_DONE;
    st->discard = true; /* what is left of the body, and what still comes, gives its window back */
    h2__ack(st, st->unacked);
    st->rx_start = st->rx_len = 0;
    /* the answer may still wait for the client's window: it has timeouts.client to take it */
    timer_arm(st->h->c->w->loop, &st->timer, &st->h->c->w->proxy->timers.client);
}

static void h2__done(struct h2_stream *st, bool log)
{
    st->ex_done = true;
    if (log && st->ex && !st->ex_logged) {
        proxy__log_request(st->ex);
        st->ex_logged = true;
    }
    if (!log)
        st->ex_logged = true;
}

/* --- buffers --------------------------------------------------------------------------------- */

static int h2__grow(char **p, size_t *start, size_t *len, size_t *cap, size_t add)
{
    if (*start && *start + *len + add > *cap) {
        memmove(*p, *p + *start, *len);
        *start = 0;
    }
    if (*len + add <= *cap)
        return 0;
    size_t n = *cap ? *cap : 4096;
    while (n < *len + add)
        n *= 2;
    char *q = realloc(*p, n);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

static int h2__rx_add(struct h2_stream *st, const void *p, size_t n)
{
    if (h2__grow(&st->rx, &st->rx_start, &st->rx_len, &st->rx_cap, n) != 0)
        return -1;
    memcpy(st->rx + st->rx_start + st->rx_len, p, n);
    st->rx_len += n;
    return 0;
}

static int h2__tx_add(struct h2_stream *st, const void *p, size_t n)
{
    if (h2__grow(&st->tx, &st->tx_start, &st->tx_len, &st->tx_cap, n) != 0)
        return -1;
    memcpy(st->tx + st->tx_start + st->tx_len, p, n);
    st->tx_len += n;
    if (st->deferred && st->submitted) {
        st->deferred = false;
        nghttp2_session_resume_data(st->h->s, st->id);
    }
    return 0;
}

/* Gives back the window of `n` bytes the exchange passed on (or we dropped). */
static void h2__ack(struct h2_stream *st, size_t n)
{
    if (n > st->unacked)
        n = st->unacked;
    if (!n)
        return;
    st->unacked -= n;
    nghttp2_session_consume(st->h->s, st->id, n);
}

/* --- responses ------------------------------------------------------------------------------- */


static void h2__nv(struct h2_nvs *v, const char *name, size_t nlen, const char *value, size_t vlen)
{
    if (v->n == sizeof v->nv / sizeof *v->nv || v->used + nlen > sizeof v->text) {
        v->overflow = true;
        return;
    }
    char *lower = v->text + v->used;
    for (size_t i = 0; i < nlen; i++)
        lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    v->used += nlen;
    v->nv[v->n++] = (nghttp2_nv){ (uint8_t *)lower, (uint8_t *)value, nlen, vlen, NGHTTP2_NV_FLAG_NONE };
}

/* Whole "Name: value\r\n" lines (extra headers, Set-Cookie, HSTS) as fields. */
static void h2__nv_lines(struct h2_nvs *v, const char *lines)
{
    while (lines && *lines) {
        const char *eol = strstr(lines, "\r\n");
        const char *colon = memchr(lines, ':', eol ? (size_t)(eol - lines) : strlen(lines));
        if (!eol || !colon)
            return;
        const char *val = colon + 1;
        while (*val == ' ')
            val++;
        /* connection-specific fields have no place in HTTP/2 (RFC 9113 §8.2.2) */
        if (http_field_hop(http_field_id((struct http_slice){ lines, (size_t)(colon - lines) }))) {
            lines = eol + 2;
            continue;
        }
        h2__nv(v, lines, (size_t)(colon - lines), val, (size_t)(eol - val));
        lines = eol + 2;
    }
}

static ssize_t h2__read_body(nghttp2_session *s, int32_t id, uint8_t *out, size_t len, uint32_t *flags,
                             nghttp2_data_source *src, void *user)
{
    struct h2_stream *st = src->ptr;
    if (st->tx_len == 0) {
        if (!st->res_end) {
            st->deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (st->ntrailers) {
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            nghttp2_submit_trailer(s, id, st->trailers, st->ntrailers);
        }
        return 0;
    }
    size_t n = st->tx_len < len ? st->tx_len : len;
    memcpy(out, st->tx + st->tx_start, n);
    st->tx_start += n;
    st->tx_len -= n;
    if (!st->tx_len)
        st->tx_start = 0;
    st->h->again = true; /* an exchange waiting for room may go on */
    return (ssize_t)n;
}

/* The connection's field list for a response head, emptied. */
static struct h2_nvs *h2__nvs(struct h2conn *h)
{
    if (!h->nvs && !(h->nvs = malloc(sizeof *h->nvs)))
        return NULL;
    h->nvs->n = h->nvs->used = 0;
    h->nvs->overflow = false;
    return h->nvs;
}

static int h2__submit(struct h2_stream *st, struct h2_nvs *v, bool body)
{
    nghttp2_data_provider prd = { .source.ptr = st, .read_callback = h2__read_body };
    st->submitted = true;
    st->no_body = !body;
    return nghttp2_submit_response(st->h->s, st->id, v->nv, v->n, body ? &prd : NULL) == 0 ? 0 : -1;
}

/* --- the transport's operations -------------------------------------------------------------- */

static enum read_result h2__tp_read(struct exchange *ex)
{
    struct h2_stream *st = h2__of(ex);
    if (st->fresh) {
        st->fresh = false;
        return READ_DATA;
    }
    return st->tunnel && st->in_end ? READ_EOF : READ_AGAIN;
}

static int h2__tp_validate(struct exchange *ex)
{
    struct h2_stream *st = h2__of(ex);
    ex->rx_ready = st->websocket ? 0 : (uint32_t)st->rx_len; /* a WebSocket's DATA: the tunnel's */
    ex->req_done = st->in_end || st->websocket;
    return 0;
}

static struct iovec h2__tp_ready(const struct exchange *ex)
{
    struct h2_stream *st = h2__of(ex);
    return (struct iovec){ st->rx ? st->rx + st->rx_start : NULL, st->tunnel ? st->rx_len : ex->rx_ready };
}

enum { ACK_SIZE, ACK_DATA, ACK_CRLF, ACK_END };

/* The DATA bytes among n consumed bytes of the stream's buffer: all of them without framing;
 * with the chunked framing we wrote, the data of its chunks only (a client sending one-byte
 * frames must not earn five bytes of window per byte passed on). */
static size_t h2__data_in(struct h2_stream *st, const char *p, size_t n)
{
    if (!st->chunked)
        return n;
    size_t data = 0;
    for (size_t i = 0; i < n;) {
        switch (st->ack_state) {
        case ACK_SIZE:
            if (p[i] == '\n')
                st->ack_state = st->ack_left ? ACK_DATA : ACK_END;
            else if (p[i] != '\r')
                st->ack_left = st->ack_left * 16 + (uint64_t)(p[i] <= '9' ? p[i] - '0' : p[i] - 'a' + 10);
            i++;
            break;
        case ACK_DATA: {
            size_t take = n - i < st->ack_left ? n - i : (size_t)st->ack_left;
            data += take;
            i += take;
            st->ack_left -= take;
            if (!st->ack_left) {
                st->ack_state = ACK_CRLF;
                st->ack_left = 2;
            }
            break;
        }
        case ACK_CRLF:
            i++;
            if (!--st->ack_left)
                st->ack_state = ACK_SIZE;
            break;
        default:
            i = n;
            break;
        }
    }
    return data;
}

static void h2__tp_consume(struct exchange *ex, size_t n)
{
    struct h2_stream *st = h2__of(ex);
    h2__ack(st, h2__data_in(st, st->rx + st->rx_start, n));
    st->rx_start += n;
    st->rx_len -= n;
    if (!st->tunnel)
        ex->rx_ready -= (uint32_t)n;
    ex->bytes_in += n;
    st->h->again = true; /* WINDOW_UPDATE to send */
}

static int h2__tp_head(struct exchange *ex, const struct http_response *res, bool tunnel)
{
    struct h2_stream *st = h2__of(ex);
    /* a WebSocket's 101 is RFC 8441's 200; any other 2xx to it would tell the client a tunnel
     * opened that did not */
    if (tunnel ? !st->websocket || res->status != 101 : res->status < 200 || (st->websocket && res->status / 100 == 2))
        return -1;
    struct h2_nvs *v = h2__nvs(st->h);
    if (!v)
        return -1;
    int code = tunnel ? 200 : res->status;
    char status[4] = { (char)('0' + code / 100), (char)('0' + code / 10 % 10), (char)('0' + code % 10), 0 };
    h2__nv(v, ":status", 7, status, 3);
    const struct http_header *conn_hdrs[HTTP_MAX_HEADERS];
    size_t nconn = 0;
    const char *hsts = proxy__hsts(ex);
    for (size_t i = 0; i < res->nheaders; i++)
        if (res->headers[i].id == HTTP_F_CONNECTION)
            conn_hdrs[nconn++] = &res->headers[i];
    for (size_t i = 0; i < res->nheaders; i++) {
        const struct http_header *f = &res->headers[i];
        if (f->id == HTTP_F_UPGRADE || !head_response_passes(f, conn_hdrs, nconn, hsts != NULL) ||
            (tunnel && http_slice_eq(f->name, "sec-websocket-accept")))
            continue; /* RFC 8441 §5: no Sec-WebSocket-Accept over HTTP/2 */
        h2__nv(v, f->name.p, f->name.n, f->value.p, f->value.n);
    }
    h2__nv_lines(v, hsts);
    h2__nv_lines(v, ex->set_cookie);
    bool body = tunnel || (!ex->head_method && res->body != HTTP_BODY_NONE);
    int r = v->overflow ? -1 : h2__submit(st, v, body);
    if (res->body == HTTP_BODY_CHUNKED) { /* proxy__dechunk's state: unused by the request side then */
        ex->echo_state = 0;
        ex->echo_left = 0;
    }
    st->h->again = true;
    return r;
}

/* proxy__dechunk's taker: an HTTP/1.1 origin's chunked data into the stream's buffer, as much
 * as it has room for. */
static size_t h2__take(void *arg, const char *p, size_t n)
{
    struct h2_stream *st = arg;
    size_t take = st->tx_len >= H2_TX_MAX ? 0 : n < H2_TX_MAX - st->tx_len ? n : H2_TX_MAX - st->tx_len;
    return take && h2__tx_add(st, p, take) == 0 ? take : 0;
}

/* proxy__dechunk's trailer sink: the origin's trailer section as it comes (HTTP_MAX_HEADER_BYTES
 * at most: the chunked scanner bounded its lines; past the cap the trailers are dropped). */
static void h2__take_trailer(void *arg, const char *p, size_t n)
{
    struct h2_stream *st = arg;
    sb_add(&st->otrl, p, n);
}

static ssize_t h2__tp_write(struct exchange *ex, const struct iovec *body, int n, size_t *from_body)
{
    struct h2_stream *st = h2__of(ex);
    *from_body = 0;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        const char *p = body[i].iov_base;
        size_t len = body[i].iov_len, took;
        if (st->no_body) {
            took = len;
        } else if (ex->res_body == HTTP_BODY_CHUNKED) {
            took = proxy__dechunk(ex, p, len, h2__take, h2__take_trailer, st);
        } else {
            took = st->tx_len >= H2_TX_MAX ? 0 : len < H2_TX_MAX - st->tx_len ? len : H2_TX_MAX - st->tx_len;
            if (took && h2__tx_add(st, p, took) != 0)
                return -ENOMEM;
        }
        total += took;
        if (took < len)
            break;
    }
    *from_body = total;
    if (total)
        st->h->again = true;
    return total ? (ssize_t)total : (n && body[0].iov_len ? -EAGAIN : 0);
}

static size_t h2__tp_queued(const struct exchange *ex)
{
    return 0; /* what `write` took is the stream's: it drains after the exchange ends */
}

static void h2__tp_drop_queued(struct exchange *ex)
{
}

static void h2__tp_release(struct exchange *ex)
{
}

static bool h2__tp_client_eof(const struct exchange *ex)
{
    const struct h2_stream *st = h2__of(ex);
    return st->tunnel && st->in_end; /* a request's end is req_done; a gone client resets */
}

static int h2__tp_trailers(struct exchange *ex, const struct http_header *f, size_t n);

/* An HTTP/1.1 origin's trailer section (validated field lines, CRLF-terminated, then an empty
 * line) as the stream's trailers, those head_trailer_passes lets through. */
static int h2__origin_trailers(struct exchange *ex, const struct strbuf *sec)
{
    struct http_header f[HTTP_MAX_HEADERS];
    size_t nf = 0;
    const char *p = sec->p, *end = p + sec->len;
    while (p < end && nf < HTTP_MAX_HEADERS) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        if (le > p && le[-1] == '\r')
            le--;
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (colon && colon > p) {
            const char *v = colon + 1, *ve = le;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            struct http_header h = { { p, (size_t)(colon - p) }, { v, (size_t)(ve - v) }, 0 };
            h.id = http_field_id(h.name);
            if (head_trailer_passes(&h))
                f[nf++] = h;
        }
        if (!eol)
            break;
        p = eol + 1;
    }
    return nf ? h2__tp_trailers(ex, f, nf) : 0;
}

static enum step h2__tp_end(struct exchange *ex)
{
    struct h2_stream *st = h2__of(ex);
    if (st->otrl.len && !st->otrl.overflow && h2__origin_trailers(ex, &st->otrl) != 0)
        st->ntrailers = 0; /* no memory: the response ends without them */
    st->res_end = true;
    if (st->deferred) {
        st->deferred = false;
        nghttp2_session_resume_data(st->h->s, st->id);
    }
    if (!ex->req_done || (st->websocket && !st->tunnel))
        st->discard = true;
    h2__done(st, true);
    st->h->again = true;
    return STEP_CLOSED;
}

#define H2_FRAMING "x-frame-options: DENY\r\ncontent-security-policy: frame-ancestors 'none'\r\n" \
                   "referrer-policy: same-origin\r\n"

static enum step h2__tp_respond(struct exchange *ex, int status, const char *ctype, const char *body,
                                size_t body_len, const char *extra_headers)
{
    struct h2_stream *st = h2__of(ex);
    /* a 2xx to an extended CONNECT says a WebSocket opened (RFC 8441 §5): the gateway's own
     * answers (its endpoints, the echo origin) never are one */
    if (st->websocket && !st->tunnel && status / 100 == 2)
        return proxy__respond_error(ex, 501, "not_implemented", "This address does not speak WebSocket.");
    struct h2_nvs *v = h2__nvs(st->h);
    if (!v) {
        ex->tp->ops->abort(ex, false);
        return STEP_CLOSED;
    }
    char code[4], len[24];
    snprintf(code, sizeof code, "%03d", status);
    snprintf(len, sizeof len, "%zu", body_len);
    h2__nv(v, ":status", 7, code, 3);
    h2__nv(v, "server", 6, "latch", 5);
    h2__nv(v, "content-type", 12, ctype, strlen(ctype));
    h2__nv(v, "content-length", 14, len, strlen(len));
    h2__nv(v, "cache-control", 13, "no-store", 8);
    h2__nv(v, "x-content-type-options", 22, "nosniff", 7);
    h2__nv_lines(v, H2_FRAMING);
    h2__nv_lines(v, proxy__hsts(ex));
    h2__nv_lines(v, extra_headers);
    bool has_body = !ex->head_method && body_len;
    int r = v->overflow ? -1 : 0;
    if (!r && has_body)
        r = h2__tx_add(st, body, body_len);
    if (!r)
        r = h2__submit(st, v, has_body);
    if (r != 0) {
        ex->tp->ops->abort(ex, false);
        return STEP_CLOSED;
    }
    st->res_end = true;
    ex->status = status;
    ex->bytes_out += body_len;
    if (!st->in_end)
        st->discard = true; /* the rest of the body is dropped (its window given back) */
    h2__ack(st, st->unacked);
    h2__done(st, true);
    st->h->again = true;
    return STEP_CLOSED;
}

static enum step h2__tp_fail(struct exchange *ex, int status, const char *code, const char *message)
{
    return proxy__respond_error(ex, status, code, message);
}

static void h2__tp_abort(struct exchange *ex, bool log)
{
    struct h2_stream *st = h2__of(ex);
    if (st->tunnel && st->res_end && st->in_end) { /* a tunnel both sides ended: no reset */
        h2__tp_end(ex);
        return;
    }
    st->ex_abort = true;
    h2__done(st, log);
    nghttp2_submit_rst_stream(st->h->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    st->h->again = true;
}

static void h2__tp_tunnel(struct exchange *ex)
{
    struct h2_stream *st = h2__of(ex);
    if (!st->websocket) {
        h2__tp_abort(ex, true); /* no 101 on HTTP/2 but to an extended CONNECT */
        return;
    }
    st->tunnel = true;
    st->fresh = true; /* DATA that came before the 200 */
    st->h->again = true;
}

/* The tunnel's bytes to the client end: END_STREAM after what is queued. */
static void h2__tp_shut(struct exchange *ex)
{
    struct h2_stream *st = h2__of(ex);
    st->res_end = true;
    if (st->deferred) {
        st->deferred = false;
        nghttp2_session_resume_data(st->h->s, st->id);
    }
    st->h->again = true;
}

static void h2__tp_arm(struct exchange *ex, struct timer_queue *q)
{
    struct h2_stream *st = h2__of(ex);
    timer_arm(st->h->c->w->loop, &st->timer, q);
}

/* An origin's news: the stream runs now; its frames are written before the worker sleeps,
 * with those of the other streams woken meanwhile (proxy__h2_flush). */
static void h2__tp_wake(struct exchange *ex)
{
    struct h2_stream *st = h2__of(ex);
    struct h2conn *h = st->h;
    struct conn *c = h->c;
    if (c->closed)
        return;
    if (h->in_pump) {
        h->again = true;
        return;
    }
    if (st->state == HS_RUN || st->state == HS_FORM)
        h2__run(st);
    else { /* a job or a long poll's news: the connection's loop runs it */
        proxy__pump(c);
        return;
    }
    if (!c->h2_dirty) {
        struct proxy_worker *pw = c->w->proxy;
        c->h2_dirty = true;
        c->h2_dirty_next = pw->h2_dirty;
        pw->h2_dirty = c;
    }
}

void proxy__h2_flush(struct proxy_worker *pw)
{
    while (pw->h2_dirty) {
        struct conn *c = pw->h2_dirty;
        pw->h2_dirty = c->h2_dirty_next;
        c->h2_dirty = false;
        if (!c->closed)
            proxy__pump(c);
    }
}

static void h2__tp_client_cert(const struct exchange *ex, bool *verified, char *cn, size_t cncap)
{
    proxy__client_cert(h2__of(ex)->h->c->ssl, verified, cn, cncap);
}

static const struct listener_cfg *h2__tp_listener(const struct exchange *ex)
{
    return &ex->rt->cfg->listeners[h2__of(ex)->h->c->listener];
}

static bool h2__tp_tls(const struct exchange *ex)
{
    return h2__of(ex)->h->c->tls;
}

static void h2__form_take(void *arg, const char *p, size_t n)
{
    sb_add(arg, p, n);
}

static enum step h2__tp_read_all(struct exchange *ex, struct strbuf *into, enum step (*done)(struct exchange *ex))
{
    struct h2_stream *st = h2__of(ex);
    st->form = into;
    st->form_done = done;
    st->state = HS_FORM;
    timer_arm(st->h->c->w->loop, &st->timer, &st->h->c->w->proxy->timers.client);
    return STEP_PROGRESS;
}

static void h2__tp_wait(struct exchange *ex, bool keep_deadline)
{
    struct h2_stream *st = h2__of(ex);
    st->state = HS_WAIT;
    if (!keep_deadline)
        timer_cancel(&st->timer);
}

static int h2__tp_trailers(struct exchange *ex, const struct http_header *f, size_t n)
{
    struct h2_stream *st = h2__of(ex);
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += f[i].name.n + f[i].value.n;
    free(st->trailers);
    free(st->trailer_text);
    st->trailers = calloc(n ? n : 1, sizeof *st->trailers);
    st->trailer_text = malloc(bytes + 1);
    st->ntrailers = 0;
    if (!st->trailers || !st->trailer_text)
        return -1;
    char *t = st->trailer_text;
    for (size_t i = 0; i < n; i++) {
        if (http_field_hop(f[i].id))
            continue;
        char *name = t;
        for (size_t k = 0; k < f[i].name.n; k++)
            *t++ = (char)(f[i].name.p[k] >= 'A' && f[i].name.p[k] <= 'Z' ? f[i].name.p[k] + 32 : f[i].name.p[k]);
        memcpy(t, f[i].value.p, f[i].value.n);
        st->trailers[st->ntrailers++] = (nghttp2_nv){ (uint8_t *)name, (uint8_t *)t, f[i].name.n, f[i].value.n,
                                                      NGHTTP2_NV_FLAG_NONE };
        t += f[i].value.n;
    }
    return 0;
}

static const struct transport_ops h2__ops = {
    .read = h2__tp_read,
    .validate = h2__tp_validate,
    .ready = h2__tp_ready,
    .consume = h2__tp_consume,
    .head = h2__tp_head,
    .write = h2__tp_write,
    .queued = h2__tp_queued,
    .drop_queued = h2__tp_drop_queued,
    .release = h2__tp_release,
    .client_eof = h2__tp_client_eof,
    .end = h2__tp_end,
    .respond = h2__tp_respond,
    .fail = h2__tp_fail,
    .abort = h2__tp_abort,
    .tunnel = h2__tp_tunnel,
    .shut = h2__tp_shut,
    .arm = h2__tp_arm,
    .wake = h2__tp_wake,
    .client_cert = h2__tp_client_cert,
    .listener = h2__tp_listener,
    .tls = h2__tp_tls,
    .read_all = h2__tp_read_all,
    .wait = h2__tp_wait,
    .trailers = h2__tp_trailers,
};

/* --- streams --------------------------------------------------------------------------------- */

static struct h2_stream *h2__stream_new(struct h2conn *h, int32_t id)
{
    struct h2_stream *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->tp.ops = &h2__ops;
    st->h = h;
    st->id = id;
    st->timer.cb = h2__stream_timer;
    proxy__h2_fields_init(&st->fl);
    sb_init(&st->trl, HTTP_MAX_HEADER_BYTES);
    sb_init(&st->otrl, HTTP_MAX_HEADER_BYTES);
    st->next = h->streams;
    if (h->streams)
        h->streams->prev = st;
    h->streams = st;
    h->nstreams++;
    nghttp2_session_set_stream_user_data(h->s, id, st);
    timer_arm(h->c->w->loop, &st->timer, &h->c->w->proxy->timers.header);
    return st;
}

static void h2__stream_free(struct h2_stream *st)
{
    timer_cancel(&st->timer);
    sb_free(&st->fl.hdr);
    sb_free(&st->trl);
    sb_free(&st->otrl);
    free(st->rx);
    free(st->tx);
    free(st->trailers);
    free(st->trailer_text);
    free(st);
}

/* Runs a stream's exchange until it waits; frees it once it ended. */
static void h2__run(struct h2_stream *st)
{
    enum step s = STEP_PROGRESS;
    while (s == STEP_PROGRESS && st->ex && !st->ex_done) {
        switch ((enum h2_stream_state)st->state) {
        case HS_RUN:
            s = st->echo ? proxy__step_echo(st->ex) : st->tunnel ? proxy__step_tunnel(st->ex)
                                                                 : proxy__step_proxy(st->ex);
            break;
        case HS_FORM: {
            bool done;
            s = proxy__read_body(st->ex, h2__form_take, st->form, &done);
            if (done && !st->ex_done)
                s = st->form_done(st->ex);
            break;
        }
        default:
            s = STEP_WAIT;
            break;
        }
    }
    if (st->ex && st->ex_done)
        h2__free_exchange(st);
}

/* The header list as an HTTP/1.1 head, read by the one parser, then admission. */
static void h2__start(struct h2_stream *st)
{
    struct h2conn *h = st->h;
    struct worker_ctx *w = h->c->w;
    struct proxy_worker *pw = w->proxy;
    struct exchange *ex = exchange_new(&st->tp, w, h->c->peer, pw->id_seed, ++pw->request_seq);
    if (!ex) {
        nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    ex->rt = worker_ctx_runtime(w);
    st->ex = ex;
    st->state = HS_RUN;
    timer_cancel(&st->timer);
    struct strbuf *head = &h->head;
    sb_reset(head);
    struct http_request req;
    char ws_key[25] = ""; /* drawn only for an extended CONNECT: not a cost of every stream */
    int status = st->fl.p_protocol >= 0 && ws_new_key(ws_key) != 0
                     ? 500
                     : proxy__h2_request(&st->fl, st->in_end, head, &st->chunked, ws_key, &st->websocket, &req);
    ex->bytes_in = st->fl.list_size;
    if (status) {
        const char *code = status == 414 ? "uri_too_long" : status == 431 ? "headers_too_large"
                         : status == 501 ? "not_implemented" : "bad_request";
        proxy__respond_error(ex, status, code, "The request could not be accepted.");
        h2__run(st);
        return;
    }
    ex->minor = 1;
    ex->head_method = http_slice_eq(req.method, "head");
    ex->req_body = req.body;
    ex->req_left = req.body == HTTP_BODY_LENGTH ? req.content_length : 0;
    ex->req_done = st->in_end || st->websocket; /* a WebSocket's handshake has no body */
    ex->upgrade = st->websocket && req.upgrade; /* only an extended CONNECT asks for one */
    const char *own = NULL;
    enum step sst = STEP_CLOSED;
    switch (proxy__admit(ex, &req, &own, &sst)) {
    case ADMIT_ANSWERED:
        break;
    case ADMIT_OWN:
        proxy__local_start(ex, &req, own);
        break;
    case ADMIT_ORIGIN:
        /* a tcp:// app is reached by a WebSocket upgrade: an extended CONNECT's (RFC 8441);
         * without one, the answer HTTP/1.1 gets (426) */
        if (ex->tun && !proxy__tunnel_start(ex, &req, &sst))
            break;
        st->echo = ex->app->origin.kind == ORIGIN_ECHO;
        timer_arm(w->loop, &st->timer, st->echo ? &pw->timers.client : &pw->timers.origin_connect);
        break;
    }
    h2__run(st);
}

static void h2__stream_timer(struct timer *t)
{
    struct h2_stream *st = (struct h2_stream *)((char *)t - offsetof(struct h2_stream, timer));
    struct h2conn *h = st->h;
    if (h->c->closed)
        return;
    struct exchange *ex = st->ex;
    if (!ex || st->ex_done) { /* a header list that never ended, or an answer not taken */
        nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
    } else if (st->tunnel) { /* an idle tunnel (or a closing one that lingered): as HTTP/1.1 closes it */
        ex->tp->ops->abort(ex, true);
    } else if (st->state == HS_RUN && !st->echo) {
        proxy__origin_timeout(ex);
    } else if (st->state == HS_WAIT && proxy__local_timeout(ex)) {
        /* a long poll answered */
    } else {
        ex->status = ex->status ? ex->status : 408;
        ex->tp->ops->abort(ex, true);
    }
    if (st->ex && st->ex_done)
        h2__free_exchange(st);
    proxy__pump(h->c);
}

/* --- nghttp2's callbacks --------------------------------------------------------------------- */

static ssize_t h2__send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *user)
{
    struct h2conn *h = user;
    struct conn *c = h->c;
    if (!c->tx && !(c->tx = buf_get(&c->w->bufs)))
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (buf_room(c->tx) == 0)
        buf_compact(c->tx);
    size_t n = buf_append(c->tx, data, len);
    return n ? (ssize_t)n : NGHTTP2_ERR_WOULDBLOCK;
}

static int h2__begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
    struct h2conn *h = user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if (h->goaway) {
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_REFUSED_STREAM);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (!h2__stream_new(h, frame->hd.stream_id))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static int h2__header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name, size_t nlen,
                      const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    struct h2conn *h = user;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (!st)
        return 0;
    size_t max = h->c->w->rt->cfg->http2.max_header_list_size;
    if (frame->headers.cat == NGHTTP2_HCAT_HEADERS) { /* trailers */
        if (proxy__h2_field_check(name, nlen, value, vlen) != 0 || name[0] == ':')
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        if (http_field_id((struct http_slice){ (const char *)name, nlen }) != HTTP_F_OTHER)
            return 0; /* what the gateway drops from a header section */
        if (st->trl.len + nlen + vlen + 4 > max)
            return 0;
        sb_add(&st->trl, name, nlen);
        sb_adds(&st->trl, ": ");
        sb_add(&st->trl, value, vlen);
        sb_adds(&st->trl, "\r\n");
        return 0;
    }
    return proxy__h2_field_add(&st->fl, name, nlen, value, vlen, max) == 0 ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

static int h2__data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *user)
{
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, id);
    if (!st || st->discard || !st->ex || st->ex_done) {
        nghttp2_session_consume(s, id, len);
        return 0;
    }
    st->unacked += len;
    char size[24];
    int n = st->chunked ? snprintf(size, sizeof size, "%zx\r\n", len) : 0;
    if ((n && h2__rx_add(st, size, (size_t)n) != 0) || h2__rx_add(st, data, len) != 0 ||
        (n && h2__rx_add(st, "\r\n", 2) != 0))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    st->fresh = true;
    return 0;
}

/* The request's end (END_STREAM), after its last DATA or trailers. */
static void h2__request_end(struct h2_stream *st)
{
    st->in_end = true;
    st->fresh = true;
    if (st->chunked && st->ex && !st->ex_done)
        h2__rx_add(st, "0\r\n\r\n", 5);
}

static int h2__frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
    struct h2conn *h = user;
    h2__refill(h);
    switch (frame->hd.type) {
    case NGHTTP2_PING:
    case NGHTTP2_SETTINGS:
    case NGHTTP2_WINDOW_UPDATE:
    case NGHTTP2_PRIORITY:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK)
            break;
        if (--h->ctrl_budget < 0)
            h2__calm(h, "too many control frames (SETTINGS, PING, WINDOW_UPDATE, PRIORITY)");
        break;
    case NGHTTP2_DATA:
        if (frame->hd.length == 0 && !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && --h->ctrl_budget < 0)
            h2__calm(h, "too many empty DATA frames");
        break;
    default:
        break;
    }
    struct h2_stream *st = frame->hd.stream_id ? nghttp2_session_get_stream_user_data(s, frame->hd.stream_id) : NULL;
    if (!st)
        return 0;
    bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (frame->hd.type == NGHTTP2_HEADERS) {
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
            st->in_end = end;
            h2__start(st);
            return 0;
        }
        if (st->ex && !st->ex_done && st->trl.len && !st->trl.overflow) {
            free(st->ex->req_trailers);
            st->ex->req_trailers = malloc(st->trl.len + 1);
            if (st->ex->req_trailers) {
                memcpy(st->ex->req_trailers, st->trl.p, st->trl.len + 1);
                st->ex->req_trailers_len = st->trl.len;
            }
        }
    }
    if (end && (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA))
        h2__request_end(st);
    return 0;
}

static int h2__frame_send(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
    struct h2_stream *st = frame->hd.stream_id ? nghttp2_session_get_stream_user_data(s, frame->hd.stream_id) : NULL;
    /* the answer is out before the request's end: the rest of it is not wanted (RFC 9113 §8.1) */
    if (st && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && !st->in_end)
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    return 0;
}

static int h2__stream_close(nghttp2_session *s, int32_t id, uint32_t error, void *user)
{
    struct h2conn *h = user;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, id);
    if (!st)
        return 0;
    nghttp2_session_set_stream_user_data(s, id, NULL);
    if (st->unacked) { /* the connection's window, whatever became of the stream */
        nghttp2_session_consume_connection(s, st->unacked);
        st->unacked = 0;
    }
    if (st->ex && !st->ex_done) { /* the client reset it (or we did) before the answer ended */
        h2__refill(h);
        if (error != NGHTTP2_NO_ERROR && --h->reset_budget < 0)
            h2__calm(h, "too many streams reset before their answer (rapid reset)");
        st->ex_abort = true;
        if (!st->ex->status)
            st->ex->status = 499;
    }
    if (st->ex)
        h2__free_exchange(st);
    if (st->prev)
        st->prev->next = st->next;
    else
        h->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    h->nstreams--;
    timer_cancel(&st->timer);
    st->next = h->dead;
    h->dead = st;
    return 0;
}

/* --- the connection -------------------------------------------------------------------------- */

int proxy__h2_start(struct conn *c)
{
    const struct config *cfg = c->w->rt->cfg;
    struct h2conn *h = calloc(1, sizeof *h);
    if (!h)
        return -1;
    h->c = c;
    h->ctrl_budget = H2_CTRL_BUDGET;
    h->reset_budget = H2_RESET_BUDGET;
    h->budget_ms = loop_now(c->w->loop);
    sb_init(&h->head, HTTP_MAX_REQUEST_LINE + HTTP_MAX_HEADER_BYTES + 64);
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cb) != 0) {
        sb_free(&h->head);
        free(h);
        return -1;
    }
    nghttp2_session_callbacks_set_send_callback(cb, h2__send);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, h2__begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, h2__header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2__data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2__frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, h2__frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2__stream_close);
    int r = nghttp2_option_new(&opt);
    if (r == 0) {
        nghttp2_option_set_no_auto_window_update(opt, 1);
        nghttp2_option_set_max_outbound_ack(opt, 1000);
        nghttp2_option_set_max_settings(opt, 32);
        nghttp2_option_set_max_continuations(opt, 8);
        nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);
        nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
        r = nghttp2_session_server_new2(&h->s, cb, h, opt);
        nghttp2_option_del(opt);
    }
    nghttp2_session_callbacks_del(cb);
    if (r != 0) {
        sb_free(&h->head);
        free(h);
        return -1;
    }
    const struct http2_cfg *hc = &cfg->http2;
    nghttp2_settings_entry iv[] = {
        { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, hc->max_concurrent_streams },
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, hc->initial_window_size },
        { NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, hc->max_header_list_size },
        { NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 4096 },
        { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
        { NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1 }, /* RFC 8441: WebSockets */
    };
    nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof *iv);
    nghttp2_session_set_local_window_size(h->s, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW);
    c->h2 = h;
    c->state = CS_H2;
    timer_arm(c->w->loop, &c->timer, &c->w->proxy->timers.idle);
    return 0;
}

void proxy__h2_free(struct conn *c)
{
    struct h2conn *h = c->h2;
    if (!h)
        return;
    for (struct h2_stream *st = h->streams, *next; st; st = next) {
        next = st->next;
        if (st->ex) {
            st->ex_abort = true;
            h2__free_exchange(st);
        }
        h2__stream_free(st);
    }
    while (h->dead) {
        struct h2_stream *st = h->dead;
        h->dead = st->next;
        h2__stream_free(st);
    }
    nghttp2_session_del(h->s);
    sb_free(&h->head);
    free(h->nvs);
    free(h);
    c->h2 = NULL;
}

/* Feeds what the client sent to the session. false: the connection is over. */
static bool h2__recv(struct h2conn *h, bool *progress)
{
    struct conn *c = h->c;
    if (h->fatal)
        return true;
    for (;;) {
        if (c->rx && buf_len(c->rx)) {
            ssize_t n = nghttp2_session_mem_recv(h->s, (const uint8_t *)buf_head(c->rx), buf_len(c->rx));
            if (n < 0) {
                if (n == NGHTTP2_ERR_FLOODED || n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS ||
                    n == NGHTTP2_ERR_TOO_MANY_SETTINGS)
                    h2__calm(h, nghttp2_strerror((int)n));
                else
                    h->fatal = true; /* nghttp2 queued its GOAWAY where one applies */
                return true;
            }
            buf_consume(c->rx, (size_t)n);
            *progress = true;
            if (h->fatal)
                return true;
        }
        switch (proxy__read_client(c)) {
        case READ_DATA:
            continue;
        case READ_AGAIN:
            return true;
        case READ_EOF:
        case READ_ERR:
            return false;
        }
    }
}

/* Writes what the session has to send. false: the connection is broken. */
static bool h2__flush(struct h2conn *h, bool *progress)
{
    struct conn *c = h->c;
    for (;;) {
        if (nghttp2_session_send(h->s) != 0)
            return false;
        if (!c->tx || !buf_len(c->tx))
            return true;
        struct iovec iov = { buf_head(c->tx), buf_len(c->tx) };
        ssize_t n = io_writev(c->io.fd, c->ssl, &iov, 1);
        if (n == -EAGAIN)
            return true;
        if (n <= 0)
            return false;
        buf_consume(c->tx, (size_t)n);
        *progress = true;
    }
}

enum step proxy__step_h2(struct conn *c)
{
    struct h2conn *h = c->h2;
    if (h->in_pump) {
        h->again = true;
        return STEP_WAIT;
    }
    h->in_pump = true;
    bool alive = true;
    for (int rounds = 0; alive && rounds < 64; rounds++) {
        bool progress = false;
        h->again = false;
        alive = h2__recv(h, &progress);
        for (struct h2_stream *st = h->streams; st; st = st->next)
            if (st->ex && (st->state == HS_RUN || st->state == HS_FORM))
                h2__run(st);
            else if (st->ex && st->ex_done)
                h2__free_exchange(st);
        if (!h2__flush(h, &progress))
            alive = false;
        while (h->dead) {
            struct h2_stream *st = h->dead;
            h->dead = st->next;
            h2__stream_free(st);
        }
        if (!progress && !h->again)
            break;
    }
    h->in_pump = false;
    bool pending = c->tx && buf_len(c->tx);
    if (!alive || (!nghttp2_session_want_read(h->s) && !nghttp2_session_want_write(h->s) && !pending) ||
        ((h->fatal || (h->goaway && !h->nstreams)) && !pending && !nghttp2_session_want_write(h->s))) {
        proxy__close(c);
        return STEP_CLOSED;
    }
    if (c->tx && !buf_len(c->tx)) {
        buf_put(&c->w->bufs, c->tx);
        c->tx = NULL;
    }
    if (h->fatal || pending)
        timer_arm(c->w->loop, &c->timer, &c->w->proxy->timers.client);
    else if (!h->nstreams)
        timer_arm(c->w->loop, &c->timer, &c->w->proxy->timers.idle);
    else
        timer_cancel(&c->timer);
    return STEP_WAIT;
}

void proxy__h2_timer(struct conn *c)
{
    proxy__close(c); /* idle with no stream, or the client took nothing we wrote */
}

void proxy__h2_drain(struct conn *c)
{
    struct h2conn *h = c->h2;
    if (h->goaway)
        return;
    h->goaway = true;
    nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->s),
                          NGHTTP2_NO_ERROR, NULL, 0);
    proxy__pump(c);
}

bool proxy__h2_preface(const char *p, size_t n, bool *complete)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    size_t k = n < sizeof preface - 1 ? n : sizeof preface - 1;
    *complete = n >= sizeof preface - 1;
    return memcmp(p, preface, k) == 0;
}

/* --- the header list, pure (h2.h; the fuzz target drives them too) ------------------------- */

void proxy__h2_fields_init(struct h2_fields *fl)
{
    memset(fl, 0, sizeof *fl);
    fl->p_method = fl->p_scheme = fl->p_authority = fl->p_path = fl->p_protocol = -1;
    sb_init(&fl->hdr, 2 * HTTP_MAX_HEADER_BYTES + 2 * HTTP_MAX_REQUEST_LINE);
}

int proxy__h2_field_check(const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen)
{
    if (!nlen)
        return -1;
    for (size_t i = 0; i < vlen; i++)
        if (value[i] <= '\r' && (value[i] == '\r' || value[i] == '\n' || value[i] == '\0'))
            return -1;
    for (size_t i = name[0] == ':'; i < nlen; i++)
        if (name[i] == ':' || (name[i] >= 'A' && name[i] <= 'Z') || name[i] <= ' ' || name[i] >= 0x7f)
            return -1;
    return 0;
}

int proxy__h2_field_add(struct h2_fields *fl, const uint8_t *name, size_t nlen, const uint8_t *value,
                        size_t vlen, size_t max_list)
{
    /* nghttp2 refused CR, LF, NUL, upper case and colons already; a second look costs little */
    if (proxy__h2_field_check(name, nlen, value, vlen) != 0)
        return -1;
    fl->list_size += nlen + vlen + 32;
    if (fl->list_size > max_list) {
        fl->too_large = true; /* counted on, kept no more (HPACK bombs): 431 at the end */
        return 0;
    }
    if (fl->nf == HTTP_MAX_HEADERS) {
        fl->too_large = true;
        return 0;
    }
    struct h2_field *f = &fl->f[fl->nf];
    f->name = (uint32_t)fl->hdr.len;
    f->name_len = (uint32_t)nlen;
    sb_add(&fl->hdr, name, nlen);
    f->value = (uint32_t)fl->hdr.len;
    f->value_len = (uint32_t)vlen;
    sb_add(&fl->hdr, value, vlen);
    if (fl->hdr.overflow) {
        fl->too_large = true;
        return 0;
    }
    int32_t idx = (int32_t)fl->nf++;
    int32_t *p = nlen == 7 && !memcmp(name, ":method", 7)     ? &fl->p_method
               : nlen == 7 && !memcmp(name, ":scheme", 7)     ? &fl->p_scheme
               : nlen == 10 && !memcmp(name, ":authority", 10) ? &fl->p_authority
               : nlen == 5 && !memcmp(name, ":path", 5)       ? &fl->p_path
               : nlen == 9 && !memcmp(name, ":protocol", 9)   ? &fl->p_protocol
                                                               : NULL;
    if (p && *p >= 0)
        return -1; /* nghttp2 refuses a repeated pseudo-header already */
    if (p)
        *p = idx;
    return 0;
}

static bool h2__named(const struct h2_fields *fl, const struct h2_field *f, const char *lower, size_t n)
{
    return f->name_len == n && !memcmp(fl->hdr.p + f->name, lower, n);
}

int proxy__h2_request(const struct h2_fields *fl, bool in_end, struct strbuf *head, bool *chunked,
                      const char *ws_key, bool *websocket, struct http_request *req)
{
    const char *hb = fl->hdr.p;
    *chunked = *websocket = false;
    if (fl->too_large || fl->hdr.overflow)
        return 431;
    if (fl->p_method < 0)
        return 400;
    const struct h2_field *m = &fl->f[fl->p_method];
    bool connect = m->value_len == 7 && !memcmp(hb + m->value, "CONNECT", 7);
    if (connect || fl->p_protocol >= 0) { /* nghttp2 checked the shape of an extended CONNECT */
        const struct h2_field *pr = fl->p_protocol >= 0 ? &fl->f[fl->p_protocol] : NULL;
        if (!connect || !pr || pr->value_len != 9 || strncasecmp(hb + pr->value, "websocket", 9))
            return 501; /* a proxy's CONNECT, or a protocol latch does not carry */
        *websocket = true;
    }
    if (fl->p_path < 0)
        return 400;
    const struct h2_field *host = NULL;
    bool has_length = false;
    for (size_t i = 0; i < fl->nf; i++) {
        const struct h2_field *f = &fl->f[i];
        if (h2__named(fl, f, "host", 4)) {
            if (host)
                return 400;
            host = f;
        }
        has_length |= h2__named(fl, f, "content-length", 14);
    }
    /* :authority and host: the same, or one of them (RFC 9113 §8.3.1) */
    const struct h2_field *a = fl->p_authority >= 0 ? &fl->f[fl->p_authority] : NULL;
    if (a && host && (a->value_len != host->value_len || memcmp(hb + a->value, hb + host->value, a->value_len)))
        return 400;
    if (!a && !host)
        return 400;
    const struct h2_field *p = &fl->f[fl->p_path];
    if (!p->value_len || hb[p->value] != '/')
        return 400; /* origin-form only: an absolute URI's authority would override :authority */
    if (*websocket)
        sb_adds(head, "GET");
    else
        sb_add(head, hb + m->value, m->value_len);
    sb_adds(head, " ");
    sb_add(head, hb + p->value, p->value_len);
    sb_adds(head, " HTTP/1.1\r\nhost: ");
    const struct h2_field *hf = a ? a : host;
    sb_add(head, hb + hf->value, hf->value_len);
    sb_adds(head, "\r\n");
    bool ws_version = false;
    if (*websocket) {
        sb_adds(head, "upgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-key: ");
        sb_adds(head, ws_key);
        sb_adds(head, "\r\n");
    }
    for (size_t i = 0; i < fl->nf; i++) {
        const struct h2_field *f = &fl->f[i];
        if (hb[f->name] == ':' || f == host || h2__named(fl, f, "cookie", 6) ||
            (*websocket && h2__named(fl, f, "sec-websocket-key", 17)))
            continue;
        ws_version |= h2__named(fl, f, "sec-websocket-version", 21);
        sb_add(head, hb + f->name, f->name_len);
        sb_adds(head, ": ");
        sb_add(head, hb + f->value, f->value_len);
        sb_adds(head, "\r\n");
    }
    bool cookie = false; /* the cookie fields as one (RFC 9113 §8.2.3) */
    for (size_t i = 0; i < fl->nf; i++) {
        const struct h2_field *f = &fl->f[i];
        if (!h2__named(fl, f, "cookie", 6))
            continue;
        sb_adds(head, cookie ? "; " : "cookie: ");
        sb_add(head, hb + f->value, f->value_len);
        cookie = true;
    }
    if (cookie)
        sb_adds(head, "\r\n");
    if (*websocket && !ws_version)
        sb_adds(head, "sec-websocket-version: 13\r\n");
    *chunked = !in_end && !has_length && !*websocket; /* a body of unknown length: chunked */
    if (*chunked)
        sb_adds(head, "transfer-encoding: chunked\r\n");
    sb_adds(head, "\r\n");
    if (head->overflow)
        return 431;
    size_t scanned = 0;
    int r = http_parse_request(head->p, head->len, &scanned, req);
    if (r > 0 && (size_t)r != head->len)
        return 400; /* a head that ended early: nothing of ours may be read as a second message */
    return r > 0 ? 0 : http_error_status(r ? r : HTTP_ERR_BAD);
}
