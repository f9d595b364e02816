/* Tunnels to tcp:// apps: the gateway ends the client's WebSocket itself (RFC 6455) and carries
 * the payload of binary frames to and from a TCP connection to the app's origin.
 *
 * The request is admitted as any other (admit.c: route, identity, policy); who it was is kept
 * on the tunnel (claims, never the token) so that a revocation, a deleted or expired service
 * token, or a reload that no longer admits the person closes the tunnel (proxy__tunnels_recheck,
 * run by every worker when it picks up new revocations, service tokens or a runtime).
 *
 * Bytes are pulled, never pushed (request/exchange.h): a client frame's payload is unmasked in
 * place in the transport's buffer and written to the origin from there; the origin's bytes are
 * read into one buffer only when it has room, and leave it as one binary frame each. Neither
 * side is read while the other cannot take what was read. An idle tunnel holds no buffer. */
#include "proxy/proxy.h"

#include "core/log.h"
#include "http/ws.h"
#include "metrics/metrics.h"
#include "proxy/head.h"
#include "request/worker_ctx.h"
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

/* The largest frame a client may send (its payload streams through, so this bounds no buffer:
 * it keeps a client from announcing a frame it never ends). */
#define TUNNEL_FRAME_MAX (1u << 20)


struct tunnel {
    struct tunnel *prev, *next;       /* the worker's tunnels (proxy_worker.tunnels) */
    struct exchange *ex;
    bool open;                        /* 101 sent */
    bool logged;                      /* the closing line is written */

    /* who, for the re-checks: copies of the claims the admission saw */
    bool has_id;
    struct identity id;
    char *client_id;                  /* a service token's */
    char *session;                    /* the token's identity_nonce */
    int64_t iat;                      /* the token's, or the time of the upgrade */
    time_t svc_expires;               /* a service token's expiry; 0: none */
    void *id_mem;                     /* one allocation behind id's arrays */

    /* client -> origin */
    struct ws_frame in;
    uint64_t in_left, in_off;         /* payload bytes not yet unmasked; offset into the mask */
    size_t in_plain;                  /* unmasked payload at the head of the client buffer */
    bool in_msg;                      /* a fragmented binary message goes on */
    bool client_closed;               /* a close frame came (or EOF): nothing more to read */
    bool up_shut;                     /* the origin's write side is shut */

    /* origin -> client */
    uint8_t out_head[WS_HEAD_MAX];
    uint8_t out_head_len, out_head_sent;
    uint64_t out_left;                /* payload of the frame being written */
    uint8_t ctl[2 + WS_CONTROL_MAX];  /* a pong or the close frame, written whole */
    uint8_t ctl_len, ctl_sent;
    bool close_queued;                /* our close frame is in ctl or written: no more data */
    bool end_after_close;             /* end once the close frame is written */

    uint64_t to_origin, from_origin;  /* payload bytes (the log line) */
    const char *why;                  /* why it closed (the log line) */
};

/* --- the worker's list, the log line ------------------------------------------------------- */

static void tunnel__link(struct proxy_worker *pw, struct tunnel *t)
{
    t->next = pw->tunnels;
    if (pw->tunnels)
        pw->tunnels->prev = t;
    pw->tunnels = t;
}

static void tunnel__unlink(struct proxy_worker *pw, struct tunnel *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else if (pw->tunnels == t)
        pw->tunnels = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
}

void proxy__tunnel_log_fields(struct strbuf *sb, bool *first, const struct exchange *ex)
{
    const struct tunnel *t = ex->tun;
    if (!t || !t->open)
        return;
    const char *event = t->logged ? "close" : "open";
    sb_json_kv(sb, first, "tunnel", event, strlen(event));
    if (!t->logged)
        return;
    sb_json_key(sb, first, "bytes_to_origin");
    sb_addu(sb, t->to_origin);
    sb_json_key(sb, first, "bytes_from_origin");
    sb_addu(sb, t->from_origin);
    const char *why = t->why ? t->why : "closed";
    sb_json_kv(sb, first, "close_reason", why, strlen(why));
}

void proxy__tunnel_free(struct exchange *ex)
{
    struct tunnel *t = ex->tun;
    if (!t)
        return;
    if (t->open) {
        if (!t->logged) { /* closed from outside: the idle timeout, a drain, the worker stopping */
            t->logged = true;
            t->why = t->why ? t->why : ex->w->draining ? "shutdown" : "idle timeout";
            proxy__log_request(ex);
        }
        metrics_tunnel(ex->w->metrics, -1, 0, 0);
        tunnel__unlink(ex->w->proxy, t);
    }
    free(t->client_id);
    free(t->session);
    free(t->id_mem);
    free(t);
    ex->tun = NULL;
}

/* --- admission: who, kept ------------------------------------------------------------------ */

/* Copies a NULL-able string into the arena at *p. */
static const char *tunnel__put(char **p, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    memcpy(*p, s, n);
    *p += n;
    return *p - n;
}

int proxy__tunnel_keep(struct exchange *ex, const struct request_identity *ri)
{
    struct tunnel *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    t->ex = ex;
    ex->tun = t;
    t->iat = ri->token ? ri->token->iat : (int64_t)time(NULL);
    if (!ri->ok)
        return 0; /* a bypass policy: nobody to re-check but the policy */
    const struct identity *id = &ri->id;
    size_t bytes = 0, ptrs = id->ngroups + id->namr;
    const char *one[] = { id->email, id->sub, id->idp, id->service_token };
    for (size_t i = 0; i < sizeof one / sizeof *one; i++)
        bytes += one[i] ? strlen(one[i]) + 1 : 0;
    for (size_t i = 0; i < id->ngroups; i++)
        bytes += strlen(id->groups[i]) + 1;
    for (size_t i = 0; i < id->namr; i++)
        bytes += strlen(id->amr[i]) + 1;
    const char **arr = t->id_mem = malloc(ptrs * sizeof *arr + bytes + 1);
    if (!arr)
        return -1;
    char *p = (char *)(arr + ptrs);
    t->has_id = true;
    t->id.email = tunnel__put(&p, id->email);
    t->id.sub = tunnel__put(&p, id->sub);
    t->id.idp = tunnel__put(&p, id->idp);
    t->id.service_token = tunnel__put(&p, id->service_token);
    for (size_t i = 0; i < id->ngroups; i++)
        arr[i] = tunnel__put(&p, id->groups[i]);
    for (size_t i = 0; i < id->namr; i++)
        arr[id->ngroups + i] = tunnel__put(&p, id->amr[i]);
    t->id.groups = arr;
    t->id.ngroups = id->ngroups;
    t->id.amr = arr + id->ngroups;
    t->id.namr = id->namr;
    if (ri->service) {
        t->svc_expires = ri->service->expires;
        if (!(t->client_id = strdup(ri->service->client_id)))
            return -1;
    }
    if (ri->token && ri->token->identity_nonce && !(t->session = strdup(ri->token->identity_nonce)))
        return -1;
    return 0;
}

/* --- the upgrade -------------------------------------------------------------------------- */

/* The one value of a field that must be there once; false when absent or repeated. */
static bool tunnel__one(const struct http_request *req, const char *name, struct http_slice *v)
{
    return head_one_field(req->headers, req->nheaders, name, v);
}

/* Whether a browser's Origin is this app's own (scheme://host[:port] as the browser reached it). */
static bool tunnel__same_origin(const struct exchange *ex, struct http_slice o)
{
    const char *scheme = ex->https ? "https://" : "http://";
    size_t sl = strlen(scheme);
    return o.n == sl + ex->origin_host_len && !strncasecmp(o.p, scheme, sl) &&
           !strncasecmp(o.p + sl, ex->origin_host, ex->origin_host_len);
}

bool proxy__tunnel_start(struct exchange *ex, const struct http_request *req, enum step *st)
{
    const struct transport_ops *tp = ex->tp->ops;
    struct tunnel *t = ex->tun;
    struct http_slice up = { 0 }, ver = { 0 }, key = { 0 };
    ex->close_after = true; /* whatever follows on this connection is frames, never a request */
    if (!req->upgrade || !tunnel__one(req, "upgrade", &up) || !head_upgrade_allowed(req, up)) {
        static const char hint[] = "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
        *st = proxy__respond_error_hdr(ex, 426, "websocket_required",
                                       "This application is a TCP service: it is reached with a WebSocket "
                                       "upgrade (GET with Upgrade: websocket), e.g. by `latch tcp`.", hint);
        return false;
    }
    if (!tunnel__one(req, "sec-websocket-version", &ver) || !http_slice_eq(ver, "13")) {
        *st = proxy__respond_error_hdr(ex, 426, "websocket_version", "Only WebSocket version 13 is supported.",
                                       "Sec-WebSocket-Version: 13\r\n");
        return false;
    }
    if (!tunnel__one(req, "sec-websocket-key", &key) || !ws_key_ok(key.p, key.n)) {
        *st = tp->fail(ex, 400, "websocket_key", "Sec-WebSocket-Key must be the base64 of 16 bytes.");
        return false;
    }
    /* Cross-site WebSocket hijacking: a page of another site (a sibling app's, whose requests
     * carry this host's cookie: SameSite=Lax is per site) opening a tunnel in the person's name.
     * Browsers always send Origin on a WebSocket; the command line sends none. */
    const struct http_header *o = http_find_header(req->headers, req->nheaders, "origin");
    if (o && !tunnel__same_origin(ex, o->value)) {
        *st = tp->fail(ex, 403, "cross_origin", "A page of another origin may not open a tunnel to this application.");
        return false;
    }
    ws_accept_key(key.p, key.n, (char *)t->ctl); /* kept until the 101 is written */
    return true;
}

/* --- connecting ----------------------------------------------------------------------------- */

/* 0 connected, -EINPROGRESS not yet, or the connect's error. */
static int tunnel__connected(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        return -errno;
    if (err)
        return -err;
    struct sockaddr_storage ss;
    len = sizeof ss;
    return getpeername(fd, (struct sockaddr *)&ss, &len) == 0 ? 0 : -EINPROGRESS;
}

static enum step tunnel__connect(struct exchange *ex)
{
    const struct transport_ops *tp = ex->tp->ops;
    struct tunnel *t = ex->tun;
    if (!ex->up) {
        int r = upstream_acquire(ex, true);
        if (r != 0)
            return proxy__origin_fail(ex, 502, METRICS_ORIGIN_CONNECT, strerror(-r));
    }
    int r = tunnel__connected(ex->up->io.fd);
    if (r == -EINPROGRESS)
        return STEP_WAIT;
    if (r != 0)
        return proxy__origin_fail(ex, 502, METRICS_ORIGIN_CONNECT, strerror(-r));
    ex->up->connected = true;
    ex->up->pool = NULL; /* never pooled: its bytes are the tunnel's */
    struct http_response res = { .status = 101, .minor = 1 };
    res.reason = (struct http_slice){ "Switching Protocols", 19 };
    res.headers[0] = (struct http_header){ { "Upgrade", 7 }, { "websocket", 9 }, HTTP_F_UPGRADE };
    res.headers[1] = (struct http_header){ { "Sec-WebSocket-Accept", 20 }, { (const char *)t->ctl, 28 }, HTTP_F_OTHER };
    res.nheaders = 2;
    if (tp->head(ex, &res, true) != 0) {
        tp->abort(ex, false);
        return STEP_CLOSED;
    }
    memset(t->ctl, 0, sizeof t->ctl);
    ex->status = 101;
    ex->res_head_done = true;
    t->open = true;
    tunnel__link(ex->w->proxy, t);
    metrics_tunnel(ex->w->metrics, 1, 0, 0);
    proxy__log_line(ex); /* the opening line */
    struct proxy_worker *pw = ex->w->proxy;
    if (!timer_armed(&pw->tunnel_tick))
        timer_arm(ex->w->loop, &pw->tunnel_tick, &pw->timers.tunnel_tick);
    tp->tunnel(ex);
    return STEP_PROGRESS;
}

void proxy__tunnel_timeout(struct exchange *ex)
{
    if (proxy__origin_fail(ex, 504, METRICS_ORIGIN_TIMEOUT, "connect timeout") != STEP_CLOSED)
        ex->tp->ops->wake(ex);
}

/* --- frames ------------------------------------------------------------------------------- */

/* Queues our close frame (code 0: none) and stops both ways: the origin's write side is shut,
 * no more client bytes are read, the frame being written is finished and nothing follows. */
static void tunnel__close(struct exchange *ex, uint16_t code, const char *why)
{
    struct tunnel *t = ex->tun;
    if (t->close_queued)
        return;
    t->why = t->why ? t->why : why;
    t->close_queued = t->end_after_close = t->client_closed = true;
    t->ctl_sent = 0;
    t->ctl_len = (uint8_t)ws_write_head(t->ctl, true, WS_CLOSE, code ? 2 : 0, NULL);
    if (code) {
        t->ctl[t->ctl_len++] = (uint8_t)(code >> 8);
        t->ctl[t->ctl_len++] = (uint8_t)code;
    }
    if (ex->up && !t->up_shut) {
        shutdown(ex->up->io.fd, SHUT_WR);
        t->up_shut = true;
    }
    /* a client that reads nothing more does not keep a closing tunnel open */
    ex->tp->ops->arm(ex, &ex->w->proxy->timers.linger);
}

/* A control frame from the client, whole in p[0..n) (unmasked here). false: wait (a pong is
 * still being written). */
static bool tunnel__control(struct exchange *ex, const struct ws_frame *f, uint8_t *p, size_t n)
{
    struct tunnel *t = ex->tun;
    ws_unmask(p, n, f->mask, 0);
    switch (f->opcode) {
    case WS_PING:
        if (t->ctl_len)
            return false;
        t->ctl_len = (uint8_t)ws_write_head(t->ctl, true, WS_PONG, n, NULL);
        memcpy(t->ctl + t->ctl_len, p, n);
        t->ctl_len += (uint8_t)n;
        t->ctl_sent = 0;
        return true;
    case WS_PONG:
        return true;
    default: /* WS_CLOSE: answered with the code it carried (RFC 6455 §5.5.1) */
        if (!ws_close_payload_ok(p, n)) {
            tunnel__close(ex, WS_CLOSE_PROTOCOL, "protocol error: bad close frame");
            return true;
        }
        if (t->ctl_len && !t->close_queued && t->ctl_sent)
            return false; /* a pong half written */
        t->ctl_len = 0;
        tunnel__close(ex, n ? (uint16_t)(p[0] << 8 | p[1]) : 0, "client closed");
        return true;
    }
}

/* client -> origin: frames out of the client's buffer, payload to the origin. false: the
 * tunnel must end now (an I/O error). */
static bool tunnel__up(struct exchange *ex, bool *progress)
{
    const struct transport_ops *tp = ex->tp->ops;
    struct tunnel *t = ex->tun;
    struct upstream *up = ex->up;
    for (;;) {
        if (t->up_shut && (t->in_plain || t->in_left)) { /* nothing more reaches the origin */
            t->in_plain = 0;
            t->in_left = 0;
        }
        if (t->in_plain) {
            struct iovec v = tp->ready(ex);
            v.iov_len = t->in_plain;
            ssize_t n = io_writev(up->io.fd, NULL, &v, 1);
            if (n == -EAGAIN)
                return true;
            if (n < 0) {
                t->why = "origin write error";
                return false;
            }
            tp->consume(ex, (size_t)n);
            t->in_plain -= (size_t)n;
            t->to_origin += (uint64_t)n;
            metrics_tunnel(ex->w->metrics, 0, (uint64_t)n, 0);
            *progress = true;
            continue;
        }
        struct iovec v = tp->ready(ex);
        if (t->in_left && v.iov_len) {
            size_t k = v.iov_len < t->in_left ? v.iov_len : (size_t)t->in_left;
            ws_unmask(v.iov_base, k, t->in.mask, t->in_off);
            t->in_off += k;
            t->in_left -= k;
            t->in_plain = k;
            continue;
        }
        if (t->client_closed) {
            if (v.iov_len)
                tp->consume(ex, v.iov_len); /* after a close frame: nothing more is read */
            return true;
        }
        if (!t->in_left && v.iov_len) {
            struct ws_frame f;
            uint16_t code = 0;
            int h = ws_parse_head(v.iov_base, v.iov_len, true, TUNNEL_FRAME_MAX, &f, &code);
            if (h < 0) {
                tunnel__close(ex, code, code == WS_CLOSE_TOO_BIG ? "frame too big" : "protocol error");
                return true;
            }
            if (h > 0 && (f.opcode & 8)) {
                if (v.iov_len < f.head_len + f.len)
                    goto more; /* a control frame is taken whole (at most 131 bytes) */
                if (!tunnel__control(ex, &f, (uint8_t *)v.iov_base + f.head_len, (size_t)f.len))
                    return true;
                tp->consume(ex, f.head_len + (size_t)f.len);
                *progress = true;
                continue;
            }
            if (h > 0) {
                if (f.opcode == WS_TEXT) {
                    tunnel__close(ex, WS_CLOSE_UNSUPPORTED, "text frame");
                    return true;
                }
                if ((f.opcode == WS_CONT) != t->in_msg) { /* §5.4: a continuation continues */
                    tunnel__close(ex, WS_CLOSE_PROTOCOL, "protocol error: fragmentation");
                    return true;
                }
                t->in_msg = !f.fin;
                t->in = f;
                t->in_left = f.len;
                t->in_off = 0;
                tp->consume(ex, f.head_len);
                *progress = true;
                continue;
            }
        }
    more:
        if (tp->client_eof(ex)) {
            t->client_closed = true;
            t->why = t->why ? t->why : "client disconnected";
            if (!t->up_shut) { /* the client's half-close reaches the origin */
                shutdown(up->io.fd, SHUT_WR);
                t->up_shut = true;
            }
            return true;
        }
        switch (tp->read(ex)) {
        case READ_DATA:
        case READ_EOF:
            *progress = true;
            continue;
        case READ_AGAIN:
            return true;
        case READ_ERR:
            t->why = "client read error";
            return false;
        }
    }
}

/* origin -> client: one binary frame per read, a pending pong or close between frames. false:
 * the tunnel must end now. */
static bool tunnel__down(struct exchange *ex, bool *progress)
{
    const struct transport_ops *tp = ex->tp->ops;
    struct tunnel *t = ex->tun;
    struct upstream *up = ex->up;
    for (;;) {
        /* read from the origin while there is room and no close was queued */
        if (!up->in_eof && !t->close_queued && up->rd_ready) {
            if (!up->ox && !(up->ox = buf_get(&ex->w->bufs)))
                return false;
            if (buf_room(up->ox) == 0 && t->out_left == 0 && t->out_head_len == 0)
                buf_compact(up->ox);
            size_t room = buf_room(up->ox);
            if (room) {
                ssize_t n = io_read(up->io.fd, NULL, buf_tail(up->ox), room);
                if (n > 0) {
                    up->ox->end += (uint32_t)n;
                    if ((size_t)n < room && !up->rd_hup)
                        up->rd_ready = false;
                    *progress = true;
                } else if (n == 0) {
                    up->in_eof = true;
                    *progress = true;
                } else if (n == -EAGAIN) {
                    up->rd_ready = false;
                } else {
                    t->why = "origin read error";
                    return false;
                }
            }
        }
        size_t avail = up->ox ? buf_len(up->ox) : 0;
        if (!t->out_head_len && !t->ctl_len && avail && !t->close_queued) { /* a new frame */
            t->out_left = avail;
            t->out_head_len = (uint8_t)ws_write_head(t->out_head, true, WS_BINARY, avail, NULL);
            t->out_head_sent = 0;
        }
        if (up->in_eof && !avail && !t->out_head_len && !t->close_queued)
            tunnel__close(ex, WS_CLOSE_NORMAL, "origin closed");
        struct iovec iov[2];
        int niov = 0;
        if (t->out_head_len) {
            iov[niov++] = (struct iovec){ t->out_head + t->out_head_sent, t->out_head_len - t->out_head_sent };
            size_t k = avail < t->out_left ? avail : (size_t)t->out_left;
            if (k)
                iov[niov++] = (struct iovec){ buf_head(up->ox), k };
        } else if (t->ctl_len) {
            iov[niov++] = (struct iovec){ t->ctl + t->ctl_sent, t->ctl_len - t->ctl_sent };
        }
        if (!niov && !tp->queued(ex))
            return true;
        size_t from_body = 0;
        ssize_t n = tp->write(ex, iov, niov, &from_body);
        if (n == -EAGAIN)
            return true;
        if (n <= 0) {
            t->why = "client write error";
            return false;
        }
        ex->bytes_out += (uint64_t)n;
        *progress = true;
        if (t->out_head_len) {
            size_t h = t->out_head_len - t->out_head_sent;
            size_t fh = from_body < h ? from_body : h;
            t->out_head_sent += (uint8_t)fh;
            size_t payload = from_body - fh;
            if (payload) {
                buf_consume(up->ox, payload);
                t->out_left -= payload;
                t->from_origin += payload;
                metrics_tunnel(ex->w->metrics, 0, 0, payload);
            }
            if (t->out_head_sent == t->out_head_len && t->out_left == 0)
                t->out_head_len = 0;
        } else if (t->ctl_len) {
            t->ctl_sent += (uint8_t)from_body;
            if (t->ctl_sent == t->ctl_len) {
                t->ctl_len = t->ctl_sent = 0;
                if (t->end_after_close)
                    return true;
            }
        }
    }
}

/* No buffer stays with an idle tunnel: the origin's and the transport's empty ones go back to
 * the worker's pool. */
static void tunnel__idle_buffers(struct exchange *ex)
{
    struct upstream *up = ex->up;
    if (up && up->ox && !buf_len(up->ox)) {
        buf_put(&ex->w->bufs, up->ox);
        up->ox = NULL;
    }
    ex->tp->ops->release(ex);
}

enum step proxy__tunnel_step(struct exchange *ex)
{
    struct tunnel *t = ex->tun;
    const struct transport_ops *tp = ex->tp->ops;
    if (!t->open)
        return tunnel__connect(ex);
    bool progress = false;
    if (!ex->up || !tunnel__up(ex, &progress) || !tunnel__down(ex, &progress)) {
        t->logged = true;
        tp->abort(ex, true);
        return STEP_CLOSED;
    }
    bool flushed = !t->ctl_len && !t->out_head_len && !tp->queued(ex);
    if (t->end_after_close && flushed) {
        t->logged = true;
        upstream_close(ex->up);
        return tp->end(ex); /* logged, then the connection lingers and closes */
    }
    tunnel__idle_buffers(ex);
    if (progress && !t->close_queued)
        tp->arm(ex, &ex->w->proxy->timers.tunnel_idle);
    return progress ? STEP_PROGRESS : STEP_WAIT;
}

/* --- re-checks ------------------------------------------------------------------------------ */

/* Why this tunnel may no longer stay open under the worker's newest runtime, revocations and
 * service tokens; NULL when it may. */
static const char *tunnel__refused(struct worker_ctx *w, struct tunnel *t, time_t now)
{
    struct exchange *ex = t->ex;
    const struct config *cfg = w->rt->cfg;
    const struct app *app = NULL;
    for (size_t i = 0; i < cfg->napps && !app; i++)
        if (!strcmp(cfg->apps[i].name, ex->app->name))
            app = &cfg->apps[i];
    if (!app || app->origin.kind != ORIGIN_TCP)
        return "app removed";
    if (revocations_check(w->rev, cfg->subaddress_separators, t->id.email, app->name, t->session, t->iat))
        return "revoked";
    if (t->client_id) {
        const struct service_token_cfg *st = proxy__service_token(w, cfg, t->client_id, strlen(t->client_id));
        if (!st || (st->expires && now >= st->expires))
            return "service token removed";
        t->svc_expires = st->expires;
    }
    char cn[256];
    struct policy_request pr = { .id = t->has_id ? &t->id : NULL, .client_cn = cn };
    memcpy(pr.client_ip, ex->client_ip, 16);
    ex->tp->ops->client_cert(ex, &pr.client_cert, cn, sizeof cn);
    struct policy_result res;
    policy_evaluate(app, &pr, &res);
    return policy_admits(res.decision) ? NULL : "policy";
}

static void tunnel__end(struct tunnel *t, uint16_t code, const char *why)
{
    tunnel__close(t->ex, code, why);
    t->why = why;
    t->ex->tp->ops->wake(t->ex);
}

void proxy__tunnels_recheck(struct worker_ctx *w)
{
    time_t now = time(NULL);
    bool closed = false;
    struct tunnel *t = w->proxy->tunnels, *next;
    for (; t; t = next) {
        next = t->next;
        const char *why = t->close_queued ? NULL : tunnel__refused(w, t, now);
        if (why) {
            tunnel__end(t, WS_CLOSE_POLICY, why);
            closed = true;
        }
    }
    if (closed) /* run between loop iterations, after this one's lines were written */
        worker_ctx_log_flush(w);
}

/* Once a second while tunnels are open: service tokens that expired since. */
void proxy__tunnel_tick(struct timer *tm)
{
    struct proxy_worker *pw = (struct proxy_worker *)((char *)tm - offsetof(struct proxy_worker, tunnel_tick));
    time_t now = time(NULL);
    struct tunnel *t = pw->tunnels, *next;
    struct worker_ctx *w = t ? t->ex->w : NULL;
    for (; t; t = next) {
        next = t->next;
        if (!t->close_queued && t->svc_expires && now >= t->svc_expires)
            tunnel__end(t, WS_CLOSE_POLICY, "service token expired");
    }
    if (pw->tunnels && w)
        timer_arm(w->loop, &pw->tunnel_tick, &pw->timers.tunnel_tick);
}

void proxy__tunnels_drain(struct worker_ctx *w)
{
    struct tunnel *t = w->proxy->tunnels, *next;
    for (; t; t = next) {
        next = t->next;
        if (!t->close_queued)
            tunnel__end(t, WS_CLOSE_GOING_AWAY, "shutdown");
    }
}
