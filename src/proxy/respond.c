/* Answers the gateway generates itself (errors, login required, refusals) and the request log
 * line written when an exchange ends (SPEC.md §3.6, §9). */
#include "proxy/proxy.h"

#include "auth/binding.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "http/cookie.h"
#include "metrics/metrics.h"
#include "proxy/local.h"
#include "route/served.h"
#include "server/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

/* Makes sure the request body will not be taken for the next request: a body that has fully
 * arrived is dropped; otherwise the connection closes after the answer. */
static void respond__drop_body(struct conn *c)
{
    struct exchange *ex = c->ex;
    if (!ex->req_done && c->rx && proxy__body_ready(c) != 0) {
        ex->close_after = true;
        return;
    }
    if (ex->rx_ready)
        proxy__body_consume(c, ex->rx_ready);
    if (!ex->req_done)
        ex->close_after = true;
}

/* The gateway's own answers are never framed by another site (the handoff's confirmation and
 * the sign-in pages: clickjacking) and send no Referer to other sites (their URLs name hosts
 * and return paths). Not "no-referrer": browsers would then send "Origin: null" with the
 * sign-in forms' POSTs, which their CSRF check refuses. */
#define RESPOND_FRAMING "X-Frame-Options: DENY\r\nContent-Security-Policy: frame-ancestors 'none'\r\n" \
                        "Referrer-Policy: same-origin\r\n"

enum step proxy__respond(struct conn *c, int status, const char *ctype, const char *body,
                         size_t body_len, const char *extra_headers)
{
    struct exchange *ex = c->ex;
    respond__drop_body(c);
    if (!c->tx)
        c->tx = buf_get(&c->w->bufs);
    if (!c->tx) {
        proxy__close(c);
        return STEP_CLOSED;
    }
    const char *hsts = proxy__hsts(c);
    int n = snprintf(buf_tail(c->tx), buf_room(c->tx),
                     "HTTP/1.1 %d %s\r\nServer: latch\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\nCache-Control: no-store\r\n"
                     "X-Content-Type-Options: nosniff\r\n" RESPOND_FRAMING "%s%s%s\r\n",
                     status, http_reason(status), ctype, body_len, hsts ? hsts : "",
                     extra_headers ? extra_headers : "",
                     ex->close_after || c->w->draining ? "Connection: close\r\n"
                     : ex->minor == 0 ? "Connection: keep-alive\r\n" : "");
    if (n < 0 || (size_t)n >= buf_room(c->tx)) {
        proxy__close(c);
        return STEP_CLOSED;
    }
    c->tx->end += (uint32_t)n;
    if (ex->head_method) {
        /* no body */
    } else if (body_len < buf_room(c->tx)) {
        buf_append(c->tx, body, body_len);
    } else { /* sent from its own copy once the head is out */
        free(ex->tail);
        ex->tail = malloc(body_len);
        if (!ex->tail) {
            proxy__close(c);
            return STEP_CLOSED;
        }
        memcpy(ex->tail, body, body_len);
        ex->tail_len = body_len;
        ex->tail_off = 0;
    }
    ex->status = status;
    c->state = CS_RESPOND;
    return STEP_PROGRESS;
}

void local_html(struct strbuf *sb, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': sb_adds(sb, "&lt;"); break;
        case '>': sb_adds(sb, "&gt;"); break;
        case '&': sb_adds(sb, "&amp;"); break;
        case '"': sb_adds(sb, "&quot;"); break;
        case '\'': sb_adds(sb, "&#39;"); break;
        default: sb_add(sb, s, 1);
        }
    }
}

/* The one page layout of the gateway: login, PIN, denied and error pages all use it. Plain
 * HTML and CSS, no external assets, readable without JavaScript, fit for a phone. */
static const char page__css[] =
    "*{box-sizing:border-box}body{font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
    "background:#eef1f5;color:#1d2330;margin:0;display:flex;min-height:100vh;align-items:center;"
    "justify-content:center;padding:1rem}main{background:#fff;border-radius:14px;padding:2rem 2rem 1.5rem;"
    "width:100%;max-width:26rem;box-shadow:0 4px 24px rgba(20,30,60,.10)}"
    ".brand{display:flex;align-items:center;gap:.5rem;font-weight:600;color:#3a4660;margin-bottom:1.25rem}"
    ".brand b{display:inline-block;width:1.6rem;height:1.6rem;border-radius:7px;background:#2f5bea;"
    "color:#fff;text-align:center;line-height:1.6rem;font-size:.95rem}"
    "h1{font-size:1.35rem;margin:0 0 .5rem}p{margin:.4rem 0;color:#4a5263}"
    "small,.muted{color:#7d8597;font-size:.85rem}"
    "label{display:block;font-weight:600;margin:1rem 0 .35rem}"
    "input[type=email],input[type=text]{width:100%;padding:.7rem .8rem;font-size:1.05rem;"
    "border:1px solid #c7cdd9;border-radius:9px}input:focus{outline:2px solid #2f5bea;border-color:#2f5bea}"
    "button,.button{display:block;width:100%;margin-top:1rem;padding:.75rem;font-size:1rem;font-weight:600;"
    "border:0;border-radius:9px;background:#2f5bea;color:#fff;text-align:center;text-decoration:none;cursor:pointer}"
    ".button.secondary{background:#fff;color:#2f5bea;border:1px solid #c7cdd9}"
    ".code{font:600 1.6rem ui-monospace,Menlo,Consolas,monospace;letter-spacing:.15em;text-align:center;"
    "background:#f3f5f9;border-radius:9px;padding:.6rem;margin:.75rem 0}"
    ".error{background:#fdecec;color:#9b1c1c;border-radius:9px;padding:.6rem .8rem;margin:.75rem 0}"
    "footer{margin-top:1.5rem;border-top:1px solid #eceff4;padding-top:.75rem}";

enum step proxy__page(struct conn *c, int status, const char *title, const char *html,
                      const char *extra_headers)
{
    struct strbuf sb;
    sb_init(&sb, BUF_SIZE - 2048);
    sb_adds(&sb, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                 "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                 "<meta name=\"robots\" content=\"noindex\"><title>");
    local_html(&sb, title);
    sb_adds(&sb, " · latch</title><style>");
    sb_adds(&sb, page__css);
    sb_adds(&sb, "</style></head><body><main><div class=\"brand\"><b>L</b>latch access</div>");
    sb_adds(&sb, html);
    sb_addf(&sb, "<footer><small>Request ID %s</small></footer></main></body></html>\n",
            c->ex->request_id);
    enum step st = sb.overflow ? STEP_CLOSED
                               : proxy__respond(c, status, "text/html; charset=utf-8", sb.p, sb.len,
                                                extra_headers);
    sb_free(&sb);
    if (st == STEP_CLOSED && !c->closed)
        proxy__close(c);
    return st;
}

/* An error or refusal: a page for browsers, JSON for scripts (same rule as SPEC.md §3.6). */
static enum step respond__page(struct conn *c, int status, const char *code, const char *title,
                               const char *message, const char *extra_headers)
{
    struct strbuf sb;
    sb_init(&sb, 16384);
    enum step st;
    if (c->ex->wants_html) {
        sb_adds(&sb, "<h1>");
        local_html(&sb, title);
        sb_adds(&sb, "</h1><p>");
        local_html(&sb, message);
        sb_adds(&sb, "</p>");
        st = sb.overflow ? STEP_CLOSED : proxy__page(c, status, title, sb.p, extra_headers);
    } else {
        bool first = true;
        sb_adds(&sb, "{");
        sb_json_kv(&sb, &first, "error", code, strlen(code));
        sb_json_kv(&sb, &first, "message", message, strlen(message));
        sb_json_kv(&sb, &first, "request_id", c->ex->request_id, strlen(c->ex->request_id));
        sb_adds(&sb, "}\n");
        st = sb.overflow ? STEP_CLOSED
                         : proxy__respond(c, status, "application/json", sb.p, sb.len, extra_headers);
    }
    sb_free(&sb);
    if (st == STEP_CLOSED && !c->closed)
        proxy__close(c);
    return st;
}

enum step proxy__respond_error(struct conn *c, int status, const char *code, const char *message)
{
    char title[64];
    snprintf(title, sizeof title, "%d %s", status, http_reason(status));
    return respond__page(c, status, code, title, message, NULL);
}


/* SPEC.md §3.6: login required -> 302 for browser navigations, 401 JSON otherwise;
 * refused -> 403 naming the user and the app, never the policy. */
enum step proxy__respond_refused(struct conn *c)
{
    struct exchange *ex = c->ex;
    struct runtime *rt = ex->rt;
    if (ex->decision != ACCESS_LOGIN_REQUIRED) {
        char msg[512];
        const char *who = ex->email ? ex->email : ex->service ? ex->service : "anonymous";
        snprintf(msg, sizeof msg, "You (%s) are not allowed to reach %s. If you should be, ask "
                 "your administrator; to sign in as someone else, log out first.", who,
                 ex->app ? ex->app->name : ex->host);
        return respond__page(c, 403, "forbidden", "Access denied", msg, NULL);
    }
    struct strbuf login, extra, body;
    sb_init(&login, 32768);
    sb_init(&extra, 65536);
    sb_init(&body, 65536);
    struct strbuf target;
    sb_init(&target, 32768);
    sb_add(&target, ex->path, ex->path_len);
    if (ex->has_query) {
        sb_add(&target, "?", 1);
        sb_add(&target, ex->query, ex->query_len);
    }
    /* The login names the origin the request reached (route/served.h): the listener's public
     * scheme and port, never a port the Host header claims. A browser's login is bound to it
     * (auth/binding.h): a cookie for `authorized` on this origin, its tag in the login URL. Not
     * a program's (no cookie jar), nor a browser that may not be where the grant is redeemed: a
     * Host spelled otherwise than the origin (a trailing dot, another port), or a scheme other
     * than the auth URL's (a plain port 80 beside 443). Its grant, unbound, binds it on the way,
     * at `authorized` itself. */
    char nonce[33], tag[33], name[AUTH_BINDING_NAME_MAX];
    char *ck = NULL;
    bool as_sent = ex->host_canonical && ex->origin_host_len == ex->host_len &&
                   !memcmp(ex->origin_host, ex->host, ex->host_len);
    if (ex->wants_html && as_sent && ex->https == !strncmp(rt->auth_url, "https:", 6)) {
        binding_new(nonce, tag);
        binding_cookie_base(tag, name);
        ck = cookie_own_set_line(name, nonce, AUTH_BINDING_PATH, AUTH_BINDING_TTL_S, ex->https,
                                 proxy__secure_cookies(c));
    }
    binding_login_url(&login, rt->auth_url, ex->origin_host, ex->origin_host_len, target.p, target.len,
                      ck ? tag : NULL);
    sb_free(&target);
    enum step st;
    if (ex->wants_html) {
        sb_addf(&extra, "Location: %s\r\n%s", login.p, ck ? ck : "");
        st = extra.overflow ? STEP_CLOSED
                            : proxy__respond(c, 302, "text/html; charset=utf-8", "", 0, extra.p);
    } else {
        bool first = true;
        const char *aud = ex->art->aud;
        sb_adds(&body, "{");
        sb_json_kv(&body, &first, "error", "login_required", 14);
        sb_json_kv(&body, &first, "auth_domain", rt->cfg->auth_domain ? rt->cfg->auth_domain : "",
                   rt->cfg->auth_domain ? strlen(rt->cfg->auth_domain) : 0);
        sb_json_kv(&body, &first, "aud", aud, strlen(aud));
        sb_json_kv(&body, &first, "login", login.p, login.len);
        if (ex->token_presented) { /* e.g. "expired", "revoked": the CLI tells the user */
            const char *why = token_status_name((enum token_status)ex->token_status);
            sb_json_kv(&body, &first, "token_error", why, strlen(why));
        }
        sb_adds(&body, "}\n");
        sb_addf(&extra, "WWW-Authenticate: Bearer realm=\"%s\", error=\"login_required\", "
                        "authorization_uri=\"%s\"\r\n", rt->auth_url, login.p);
        st = (body.overflow || extra.overflow)
                 ? STEP_CLOSED
                 : proxy__respond(c, 401, "application/json", body.p, body.len, extra.p);
    }
    free(ck);
    sb_free(&login);
    sb_free(&extra);
    sb_free(&body);
    if (st == STEP_CLOSED && !c->closed)
        proxy__close(c);
    return st;
}


/* SPEC.md §9 request event, and the same request counted in metrics (also when the request
 * log is off). Nothing secret: no token, cookie or query string. */
#define LOG_TRANSFER "/cdn-cgi/access/transfer/"

void proxy__log_request(struct conn *c)
{
    struct exchange *ex = c->ex;
    struct log_sink *sink = ex->rt->request_log;
    uint64_t duration_us = proxy__now_us() - ex->start_us;
    metrics_request(c->w->metrics, ex->app ? runtime_app(ex->rt, ex->app)->metrics_id : 0,
                    ex->decision, ex->status, duration_us);
    if (log_sink_off(sink))
        return;
    char ts[32];
    log_time_now(ts);
    struct strbuf *sb = worker_log_begin(c->w, ex->rt);
    size_t start = sb->len;
    bool first = true;
    sb_adds(sb, "{");
    sb_json_kv(sb, &first, "time", ts, strlen(ts));
    sb_json_kv(sb, &first, "request_id", ex->request_id, strlen(ex->request_id));
    sb_json_kv(sb, &first, "client_ip", ex->client_ip_str, strlen(ex->client_ip_str));
    sb_json_kv(sb, &first, "host", ex->host, ex->host_len);
    sb_json_kv(sb, &first, "method", ex->method, ex->method_len);
    /* the command line's poll names its public key, which opens its confirmation link: kept
     * out of the log (a log reader could claim the link first) */
    size_t path_len = ex->path_len;
    if (path_len > sizeof LOG_TRANSFER - 1 && !memcmp(ex->path, LOG_TRANSFER, sizeof LOG_TRANSFER - 1))
        path_len = sizeof LOG_TRANSFER - 1;
    sb_json_kv(sb, &first, "path", ex->path, path_len);
    sb_json_kv(sb, &first, "app", ex->app ? ex->app->name : NULL, ex->app ? strlen(ex->app->name) : 0);
    const char *d = policy_decision_name(ex->decision);
    sb_json_kv(sb, &first, "decision", d, strlen(d));
    sb_json_kv(sb, &first, "policy", ex->policy, ex->policy ? strlen(ex->policy) : 0);
    sb_json_kv(sb, &first, "email", ex->email, ex->email ? strlen(ex->email) : 0);
    sb_json_kv(sb, &first, "sub", ex->sub, ex->sub ? strlen(ex->sub) : 0);
    sb_json_kv(sb, &first, "service_token", ex->service, ex->service ? strlen(ex->service) : 0);
    sb_json_key(sb, &first, "status");
    sb_addu(sb, (uint64_t)ex->status);
    sb_json_key(sb, &first, "bytes_in");
    sb_addu(sb, ex->bytes_in);
    sb_json_key(sb, &first, "bytes_out");
    sb_addu(sb, ex->bytes_out);
    sb_json_key(sb, &first, "duration_us");
    sb_addu(sb, duration_us);
    sb_adds(sb, "}\n");
    if (sb->overflow) { /* drop the one line that did not fit, keep the others */
        sb->len = start;
        sb->overflow = false;
    }
}
