/* The proxy side of the gateway's own endpoints (local.h): the request copied out of its head,
 * the small body read in full, answers, and parking on background jobs. */
#include "proxy/local.h"

#include "auth/auth.h"
#include "proxy/proxy.h"
#include "server/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define OWN_PREFIX_LEN (sizeof "/cdn-cgi/access/" - 1)

struct local_req *local_request(struct conn *c)
{
    return c->ex->lr;
}

void proxy__local_free(struct exchange *ex)
{
    struct local_req *lr = ex->lr;
    if (!lr)
        return;
    free(lr->cookies);
    free(lr->origin);
    free(lr->access_token);
    sb_free(&lr->body);
    free(lr);
    ex->lr = NULL;
}

/* The client left while a job ran: the job finishes alone. */
void proxy__local_orphan(struct conn *c)
{
    if (c->state == CS_WAIT && c->ex && c->ex->lr && c->ex->lr->park_retry) {
        struct worker *w = c->w;
        for (size_t i = 0; i < w->nparked; i++)
            if (w->parked[i] == c)
                w->parked[i] = w->parked[--w->nparked];
    }
    if (c->waiting) {
        c->waiting->conn = NULL;
        c->waiting = NULL;
    }
}

static int local__dispatch(struct conn *c)
{
    return auth_handle(c, c->ex->lr);
}

enum step proxy__local_start(struct conn *c, const struct http_request *req)
{
    struct exchange *ex = c->ex;
    struct local_req *lr = calloc(1, sizeof *lr);
    if (!lr)
        goto nomem;
    ex->lr = lr;
    sb_init(&lr->body, LOCAL_MAX_BODY);
    struct strbuf ck;
    sb_init(&ck, 2 * HTTP_MAX_HEADER_BYTES);
    sb_adds(&ck, "");
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        if (http_slice_eq(h->name, "cookie")) {
            if (ck.len)
                sb_add(&ck, "; ", 2);
            sb_add(&ck, h->value.p, h->value.n);
        } else if (http_slice_eq(h->name, "cf-access-token") && !lr->access_token) {
            lr->access_token = strndup(h->value.p, h->value.n);
        } else if (http_slice_eq(h->name, "origin") && !lr->origin) {
            lr->origin = strndup(h->value.p, h->value.n);
        } else if (http_slice_eq(h->name, "content-type")) {
            lr->form = h->value.n >= 33 && !strncasecmp(h->value.p, "application/x-www-form-urlencoded", 33);
        }
    }
    lr->cookies = ck.p ? ck.p : strdup("");
    lr->name = ex->match + OWN_PREFIX_LEN;
    lr->method = ex->method;
    lr->host = ex->host;
    lr->query = ex->query;
    lr->query_len = ex->query_len;
    lr->client_ip = ex->client_ip_str;
    lr->secure_cookies = proxy__secure_cookies(c);
    lr->wants_html = ex->wants_html;
    const char *ad = ex->rt->cfg->auth_domain;
    lr->on_auth_domain = ad && !strcmp(ad, ex->host);
    lr->rt = ex->rt;
    lr->w = c->w;
    if (!lr->cookies)
        goto nomem;
    if (ex->req_body == HTTP_BODY_CHUNKED) {
        ex->close_after = true;
        return proxy__respond_error(c, 411, "length_required", "Send the form with a Content-Length.");
    }
    if (ex->req_body == HTTP_BODY_LENGTH && ex->req_left > LOCAL_MAX_BODY) {
        ex->close_after = true;
        return proxy__respond_error(c, 413, "payload_too_large", "The form is too large.");
    }
    if (!ex->req_done) {
        c->state = CS_LOCAL_FORM;
        timer_arm(c->w->loop, &c->timer, TIMER_CLIENT);
        return STEP_PROGRESS;
    }
    return (enum step)local__dispatch(c);
nomem:
    ex->close_after = true;
    return proxy__respond_error(c, 500, "internal", "Out of memory.");
}

static void local__take(struct conn *c, const char *p, size_t n)
{
    sb_add(&c->ex->lr->body, p, n);
}

enum step proxy__step_local_form(struct conn *c)
{
    bool done;
    enum step st = proxy__take_body(c, local__take, &done);
    return done ? (enum step)local__dispatch(c) : st;
}

int local_reply(struct conn *c, int status, const char *ctype, const char *body, size_t len,
                const char *headers)
{
    return (int)proxy__respond(c, status, ctype, body, len, headers);
}

int local_json(struct conn *c, int status, json_t *j, const char *headers)
{
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!body)
        return (int)proxy__respond_error(c, 500, "internal", "Out of memory.");
    size_t n = strlen(body);
    char *nl = realloc(body, n + 2);
    if (nl) {
        body = nl;
        body[n++] = '\n';
        body[n] = '\0';
    }
    int st = local_reply(c, status, "application/json", body, n, headers);
    free(body);
    return st;
}

int local_redirect(struct conn *c, const char *location, const char *headers)
{
    struct strbuf sb;
    sb_init(&sb, 3 * BUF_SIZE / 4);
    sb_addf(&sb, "Location: %s\r\n%s", location, headers ? headers : "");
    int st = sb.overflow ? (int)proxy__respond_error(c, 500, "internal", "Redirect too long.")
                         : local_reply(c, 302, "text/html; charset=utf-8", "", 0, sb.p);
    sb_free(&sb);
    return st;
}

int local_page(struct conn *c, int status, const char *title, const char *html, const char *headers)
{
    return (int)proxy__page(c, status, title, html, headers);
}

static void local__job_done(struct job *j)
{
    struct local_job *lj = (struct local_job *)j;
    struct conn *c = lj->conn;
    if (c)
        c->waiting = NULL;
    lj->finish(lj, c);
}

int local_wait(struct conn *c, struct local_job *lj, struct jobs *js)
{
    lj->conn = c;
    lj->job.done = local__job_done;
    lj->job.home = &c->w->mailbox;
    c->waiting = lj;
    c->state = CS_WAIT;
    timer_cancel(&c->timer); /* the job has its own timeouts (libcurl's) */
    jobs_submit(js, &lj->job);
    return STEP_WAIT;
}

void local_detach(struct local_job *lj, struct worker *w)
{
    lj->conn = NULL;
    lj->job.done = local__job_done;
    lj->job.home = &w->mailbox;
    jobs_submit(w->jobs, &lj->job);
}

int local_park(struct conn *c, int (*retry)(struct conn *c, bool timed_out))
{
    struct worker *w = c->w;
    if (w->nparked == w->parked_cap) {
        size_t cap = w->parked_cap ? 2 * w->parked_cap : 16;
        struct conn **p = realloc(w->parked, cap * sizeof *p);
        if (!p)
            return (int)proxy__respond_error(c, 503, "busy", "Try again.");
        w->parked = p;
        w->parked_cap = cap;
    }
    w->parked[w->nparked++] = c;
    c->ex->lr->park_retry = retry;
    c->state = CS_WAIT;
    if (!c->ex->lr->parked) { /* parked again after news: keep the first deadline */
        c->ex->lr->parked = true;
        timer_arm(w->loop, &c->timer, TIMER_PARKED);
    }
    return STEP_WAIT;
}

static void local__unpark(struct conn *c)
{
    struct worker *w = c->w;
    for (size_t i = 0; i < w->nparked; i++) {
        if (w->parked[i] == c) {
            w->parked[i] = w->parked[--w->nparked];
            return;
        }
    }
}

/* A parked request's retry, from news or its timer; it answers, or parks again. */
void proxy__local_retry(struct conn *c, bool timed_out)
{
    local__unpark(c);
    c->ex->lr->park_retry(c, timed_out);
    local_resume(c);
}

void local_retry_parked(struct worker *w)
{
    /* a retry may park again (appending): walk a copy of what is parked now */
    size_t n = w->nparked;
    struct conn **copy = n ? malloc(n * sizeof *copy) : NULL;
    if (!copy)
        return;
    memcpy(copy, w->parked, n * sizeof *copy);
    for (size_t i = 0; i < n; i++)
        if (!copy[i]->closed && copy[i]->state == CS_WAIT && copy[i]->ex && copy[i]->ex->lr &&
            copy[i]->ex->lr->park_retry)
            proxy__local_retry(copy[i], false);
    free(copy);
}

void local_resume(struct conn *c)
{
    if (!c->closed)
        proxy__pump(c);
}
