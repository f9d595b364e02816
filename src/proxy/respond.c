/* Answers the gateway generates itself (errors, login required, refusals) and the request log
 * line written when an exchange ends (SPEC.md §3.6, §9). They are drawn on the exchange and
 * sent through its transport's `respond`; proxy__respond is that op for HTTP/1.1. */
#include "proxy/proxy.h"

#include "request/binding.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "http/cookie.h"
#include "http/form.h"
#include "metrics/metrics.h"
#include "proxy/local.h"
#include "request/page.h"
#include "request/worker_ctx.h"
#include "route/route.h"
#include "route/served.h"

#include <math.h>
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
    const char *hsts = proxy__hsts(c->ex);
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

/* An answer that could not be drawn (too large for its buffer): the exchange cannot go on. */
static enum step respond__abort(struct exchange *ex)
{
    ex->tp->ops->abort(ex, false);
    return STEP_CLOSED;
}

/* The one page layout of the gateway: login, PIN, denied and error pages all use it. Plain
 * HTML and CSS, no external assets (a logo comes inline), readable without JavaScript, fit for
 * a phone. The accent colour is a variable that `branding.accent` replaces. */
static const char page__css[] =
    ":root{--accent:#2f5bea;--on-accent:#fff;--ink:#2f5bea}"
    "*{box-sizing:border-box}body{font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
    "background:#eef1f5;color:#1d2330;margin:0;display:flex;min-height:100vh;align-items:center;"
    "justify-content:center;padding:1rem}main{background:#fff;border-radius:14px;padding:2rem 2rem 1.5rem;"
    "width:100%;max-width:26rem;box-shadow:0 4px 24px rgba(20,30,60,.10)}"
    "@media (max-width:30rem){main{padding:1.5rem 1.25rem 1.25rem}}"
    ".brand{display:flex;align-items:center;gap:.5rem;font-weight:600;color:#3a4660;margin-bottom:1.25rem}"
    ".brand b{display:inline-block;width:1.6rem;height:1.6rem;border-radius:7px;background:var(--accent);"
    "color:var(--on-accent);text-align:center;line-height:1.6rem;font-size:.95rem}"
    ".brand img{height:2rem;width:auto;max-width:10rem;object-fit:contain}"
    "h1{font-size:1.35rem;margin:0 0 .5rem}p{margin:.4rem 0;color:#4a5263}b{color:#1d2330}"
    "a{color:var(--ink)}small,.muted{color:#6b7385;font-size:.85rem}"
    "label{display:block;font-weight:600;margin:1rem 0 .35rem}"
    "input[type=email],input[type=text]{width:100%;padding:.7rem .8rem;font-size:1.05rem;"
    "border:1px solid #c7cdd9;border-radius:9px}input:focus{outline:2px solid var(--ink);border-color:var(--ink)}"
    "button,.button{display:block;width:100%;margin-top:1rem;padding:.75rem;font-size:1rem;font-weight:600;"
    "border:0;border-radius:9px;background:var(--accent);color:var(--on-accent);text-align:center;"
    "text-decoration:none;cursor:pointer;font-family:inherit}"
    ".button.secondary,button.secondary{background:#fff;color:var(--ink);border:1px solid #c7cdd9}"
    ".button+.button,form+.button{margin-top:.6rem}"
    ".code{font:600 1.6rem ui-monospace,Menlo,Consolas,monospace;letter-spacing:.15em;text-align:center;"
    "background:#f3f5f9;border-radius:9px;padding:.6rem;margin:.75rem 0}"
    ".error{background:#fdecec;color:#9b1c1c;border-radius:9px;padding:.6rem .8rem;margin:.75rem 0}"
    ".apps{list-style:none;padding:0;margin:1rem 0 0}.apps li{margin:.5rem 0}"
    ".apps a,.apps .static{display:flex;align-items:center;gap:.75rem;padding:.7rem .8rem;"
    "border:1px solid #dfe3eb;border-radius:10px;text-decoration:none;color:#1d2330}"
    ".apps a:hover,.apps a:focus{border-color:var(--ink);background:#f7f9fc}"
    ".apps .static{border-style:dashed;color:#4a5263}.apps .static i{background:#c7cdd9;color:#1d2330}"
    ".apps i{flex:none;display:inline-block;width:2.2rem;height:2.2rem;border-radius:9px;font-style:normal;"
    "background:var(--accent);color:var(--on-accent);text-align:center;line-height:2.2rem;font-weight:700}"
    ".apps span{min-width:0}.apps b,.apps small{display:block;overflow-wrap:anywhere}"
    "footer{margin-top:1.5rem;border-top:1px solid #eceff4;padding-top:.75rem;overflow-wrap:anywhere}";

/* WCAG 2 relative luminance of "#rrggbb" scaled by f (f < 1 darkens). */
static double page__luminance(const char *hex, double f)
{
    double l = 0;
    static const double weight[3] = { 0.2126, 0.7152, 0.0722 };
    for (int i = 0; i < 3; i++) {
        char two[3] = { hex[1 + 2 * i], hex[2 + 2 * i], 0 };
        double v = (double)strtol(two, NULL, 16) / 255.0 * f;
        l += weight[i] * (v <= 0.03928 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4));
    }
    return l;
}

static double page__contrast(double a, double b)
{
    return a > b ? (a + 0.05) / (b + 0.05) : (b + 0.05) / (a + 0.05);
}

/* The branding accent as CSS variables: buttons in the accent with whichever text colour reads
 * better on it, and the accent darkened until it reads on white (4.5:1) for links and outlines. */
static void page__accent(struct strbuf *sb, const char *accent)
{
    double l = page__luminance(accent, 1.0), f = 1.0;
    const char *on = page__contrast(l, 1.0) >= page__contrast(l, 0.0) ? "#fff" : "#111";
    while (f > 0.2 && page__contrast(page__luminance(accent, f), 1.0) < 4.5)
        f *= 0.9;
    int ink[3];
    for (int i = 0; i < 3; i++) {
        char two[3] = { accent[1 + 2 * i], accent[2 + 2 * i], 0 };
        ink[i] = (int)((double)strtol(two, NULL, 16) * f + 0.5);
    }
    sb_addf(sb, ":root{--accent:%s;--on-accent:%s;--ink:#%02x%02x%02x}", accent, on, ink[0], ink[1], ink[2]);
}

enum step proxy__page(struct exchange *ex, int status, const char *title, const char *html,
                      const char *extra_headers)
{
    const struct branding *b = &ex->rt->cfg->branding;
    struct strbuf sb;
    sb_init(&sb, 256 * 1024 + (b->logo ? strlen(b->logo) : 0));
    sb_adds(&sb, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                 "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                 "<meta name=\"robots\" content=\"noindex\"><title>");
    page_html(&sb, title);
    sb_adds(&sb, " · ");
    page_html(&sb, b->name ? b->name : "latch");
    sb_adds(&sb, "</title><style>");
    sb_adds(&sb, page__css);
    if (b->accent[0])
        page__accent(&sb, b->accent);
    sb_adds(&sb, "</style></head><body><main><div class=\"brand\">");
    if (b->logo) { /* the name beside it says what it is; alone, it is the organization's */
        sb_adds(&sb, "<img src=\"");
        sb_adds(&sb, b->logo); /* a data: URI of base64 characters only */
        sb_adds(&sb, b->name ? "\" alt=\"\">" : "\" alt=\"Logo\">");
    } else {
        sb_adds(&sb, "<b>");
        page_first(&sb, b->name ? b->name : "L");
        sb_adds(&sb, "</b>");
    }
    if (b->name)
        page_html(&sb, b->name);
    else if (!b->logo)
        sb_adds(&sb, "latch access");
    sb_adds(&sb, "</div>");
    sb_adds(&sb, html);
    sb_addf(&sb, "<footer><small>Request ID %s</small></footer></main></body></html>\n",
            ex->request_id);
    enum step st = sb.overflow ? respond__abort(ex)
                               : ex->tp->ops->respond(ex, status, "text/html; charset=utf-8", sb.p, sb.len,
                                                      extra_headers);
    sb_free(&sb);
    return st;
}

/* An error or refusal: a page for browsers (`html` its body: NULL for the title and the
 * message), JSON for scripts (same rule as SPEC.md §3.6). `app`: the app's name for scripts. */
static enum step respond__page(struct exchange *ex, int status, const char *code, const char *title,
                               const char *message, const char *html, const char *app,
                               const char *extra_headers)
{
    struct strbuf sb;
    sb_init(&sb, 16384);
    enum step st;
    if (ex->wants_html) {
        if (!html) {
            page_message(&sb, title, message);
        }
        st = sb.overflow ? respond__abort(ex) : proxy__page(ex, status, title, html ? html : sb.p, extra_headers);
    } else {
        bool first = true;
        sb_adds(&sb, "{");
        sb_json_kv(&sb, &first, "error", code, strlen(code));
        sb_json_kv(&sb, &first, "message", message, strlen(message));
        if (app)
            sb_json_kv(&sb, &first, "app", app, strlen(app));
        sb_json_kv(&sb, &first, "request_id", ex->request_id, strlen(ex->request_id));
        sb_adds(&sb, "}\n");
        st = sb.overflow ? respond__abort(ex)
                         : ex->tp->ops->respond(ex, status, "application/json", sb.p, sb.len, extra_headers);
    }
    sb_free(&sb);
    return st;
}

enum step proxy__respond_error_hdr(struct exchange *ex, int status, const char *code, const char *message,
                                   const char *extra_headers)
{
    char title[64];
    snprintf(title, sizeof title, "%d %s", status, http_reason(status));
    return respond__page(ex, status, code, title, message, NULL, NULL, extra_headers);
}

enum step proxy__respond_error(struct exchange *ex, int status, const char *code, const char *message)
{
    return proxy__respond_error_hdr(ex, status, code, message, NULL);
}

enum step proxy__respond_busy(struct exchange *ex, const char *code, const char *title, const char *message,
                              unsigned retry_s)
{
    char hdr[48];
    struct strbuf sb;
    sb_init(&sb, 4096);
    snprintf(hdr, sizeof hdr, "Retry-After: %u\r\n", retry_s);
    page_busy_html(&sb, title, message);
    enum step st = respond__page(ex, 503, code, title, message, sb.overflow ? NULL : sb.p, NULL, hdr);
    sb_free(&sb);
    return st;
}

/* 403 on an app host (SPEC.md §3.6): who is refused and the app by its display name, never
 * the policy; then the next steps: a person may sign in as someone else, anybody may go to
 * the start page of this host (when another app serves it) or to the app launcher. */
static enum step respond__denied(struct exchange *ex)
{
    struct runtime *rt = ex->rt;
    const char *label = ex->app ? ex->app->display_name : ex->host;
    char msg[512];
    if (ex->email || ex->service)
        snprintf(msg, sizeof msg, "You (%s) are not allowed to reach %s. If you should be, ask your "
                 "administrator.", ex->email ? ex->email : ex->service, label);
    else
        snprintf(msg, sizeof msg, "%s is not open to you from here. If you should reach it, ask your "
                 "administrator.", label);
    struct strbuf sb;
    sb_init(&sb, 16384);
    if (ex->wants_html) {
        page_denied_html(&sb, ex->email, ex->service, label);
        if (ex->email && rt->cfg->auth_domain) { /* this host's logout, then this app's sign-in */
            struct strbuf to;
            sb_init(&to, 16384);
            sb_adds(&to, HTTP_ACCESS_PREFIX "logout?switch=1&redirect_url=");
            form_urlencode(&to, ex->path, ex->path_len);
            if (ex->has_query) {
                form_urlencode(&to, "?", 1);
                form_urlencode(&to, ex->query, ex->query_len);
            }
            if (!to.overflow)
                page_button(&sb, to.p, "Sign in as someone else", false);
            sb_free(&to);
        }
        const struct app *home = route_match(rt->routes, ex->host, ex->host_len, "/", 1);
        if (home && home != ex->app) {
            char go[128];
            snprintf(go, sizeof go, "Go to %s", home->display_name);
            page_button(&sb, "/", go, false);
        }
        if (rt->cfg->auth_domain) {
            char launcher[SERVED_HOST_MAX + 32];
            snprintf(launcher, sizeof launcher, "%s/", rt->auth_url);
            page_button(&sb, launcher, "Your applications", false);
        }
    }
    enum step st = respond__page(ex, 403, "forbidden", "Access denied", msg, ex->wants_html ? sb.p : NULL,
                                 ex->app ? ex->app->name : NULL, NULL);
    sb_free(&sb);
    return st;
}

/* A gRPC call refused (content-type application/grpc*): what its client can show, a
 * trailers-only answer, HTTP 200 with grpc-status 16 UNAUTHENTICATED (no token, or one
 * refused) or 7 PERMISSION_DENIED (the policy) and a grpc-message, instead of a page it would
 * report as a protocol error. */
static enum step respond__grpc(struct exchange *ex)
{
    char extra[256];
    bool login = ex->decision == ACCESS_LOGIN_REQUIRED;
    snprintf(extra, sizeof extra, "grpc-status: %d\r\ngrpc-message: %s\r\n", login ? 16 : 7,
             login ? "a valid cf-access-token is required" : "access denied by policy");
    return ex->tp->ops->respond(ex, 200, "application/grpc", "", 0, extra);
}

/* SPEC.md §3.6: login required -> 302 for browser navigations, 401 JSON otherwise;
 * refused -> 403 naming the user and the app, never the policy; a gRPC call: respond__grpc. */
enum step proxy__respond_refused(struct exchange *ex)
{
    struct runtime *rt = ex->rt;
    if (ex->grpc)
        return respond__grpc(ex);
    if (ex->decision != ACCESS_LOGIN_REQUIRED)
        return respond__denied(ex);
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
     * (request/binding.h): a cookie for `authorized` on this origin, its tag in the login URL. Not
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
                                 proxy__secure_cookies(ex));
    }
    binding_login_url(&login, rt->auth_url, ex->origin_host, ex->origin_host_len, target.p, target.len,
                      ck ? tag : NULL);
    sb_free(&target);
    enum step st;
    if (ex->wants_html) {
        sb_addf(&extra, "Location: %s\r\n%s", login.p, ck ? ck : "");
        st = extra.overflow ? respond__abort(ex)
                            : ex->tp->ops->respond(ex, 302, "text/html; charset=utf-8", "", 0, extra.p);
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
                 ? respond__abort(ex)
                 : ex->tp->ops->respond(ex, 401, "application/json", body.p, body.len, extra.p);
    }
    free(ck);
    sb_free(&login);
    sb_free(&extra);
    sb_free(&body);
    return st;
}


/* SPEC.md §9 request event, and the same request counted in metrics (also when the request
 * log is off). Nothing secret: no token, cookie or query string. */
#define LOG_TRANSFER HTTP_ACCESS_PREFIX "transfer/"

static inline void respond__log_line(struct exchange *ex, uint64_t duration_us)
{
    struct log_sink *sink = ex->rt->request_log;
    if (log_sink_off(sink))
        return;
    char ts[32];
    log_time_now(ts);
    struct strbuf *sb = worker_ctx_log_begin(ex->w, ex->rt);
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
    if (ex->tun)
        proxy__tunnel_log_fields(sb, &first, ex);
    sb_adds(sb, "}\n");
    if (sb->overflow) { /* drop the one line that did not fit, keep the others */
        sb->len = start;
        sb->overflow = false;
    }
}

void proxy__log_request(struct exchange *ex)
{
    uint64_t duration_us = proxy__now_us() - ex->start_us;
    metrics_request(ex->w->metrics, ex->app ? runtime_app(ex->rt, ex->app)->metrics_id : 0,
                    ex->decision, ex->status, duration_us);
    respond__log_line(ex, duration_us);
}

void proxy__log_line(struct exchange *ex)
{
    respond__log_line(ex, proxy__now_us() - ex->start_us);
}
