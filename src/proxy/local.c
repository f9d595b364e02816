/* The gateway's own endpoints on an exchange (local.h), over any transport: the request copied
 * out of its head, the small body read in full, the endpoint found in the tables, answers,
 * parking on background jobs and long polls, and, with a remote store, the whole endpoint run
 * on the job pool with its answer kept for the worker to send. The client is reached only
 * through the exchange's transport operations (request/exchange.h). */
#include "proxy/local.h"

#include "proxy/proxy.h"
#include "request/error.h"
#include "request/worker_ctx.h"
#include "store/store.h"
#include "token/keys.h"
#include "token/revoke.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* An endpoint run on the job pool (remote store): what it answered, for the worker to send. */
enum local_answer { ANS_NONE, ANS_REPLY, ANS_PAGE, ANS_ERROR, ANS_BUSY, ANS_PARK };

struct local_defer {
    struct endpoint_job lj;
    struct endpoint_req *lr;                     /* owned while the job runs */
    const struct endpoint *ep;                   /* the endpoint, from the start; */
    endpoint_retry_fn retry;                     /* or a parked request's retry */
    bool timed_out;
    enum local_answer kind;
    int status;
    char *ctype, *body, *headers, *title, *code;
    size_t len;
    endpoint_retry_fn park;
    char *park_key;
};

static _Thread_local struct local_defer *local__cur;

/* Set once before the workers start (local_set_endpoints). */
static const struct endpoint_table *const *local__tables;
static size_t local__ntables;
static void (*local__publish)(void *node);
static void (*local__wake)(void *node);

void local_set_endpoints(const struct endpoint_table *const *tables, size_t ntables,
                         void (*publish_revocations)(void *node), void (*wake_parked)(void *node))
{
    local__tables = tables;
    local__ntables = ntables;
    local__publish = publish_revocations;
    local__wake = wake_parked;
}

/* The transport's step and the endpoint's result, one for the other. */
static enum endpoint_result local__result(enum step st)
{
    switch (st) {
    case STEP_WAIT: return ENDPOINT_WAIT;
    case STEP_PROGRESS: return ENDPOINT_DONE;
    case STEP_CLOSED: break;
    }
    return ENDPOINT_CLOSED;
}

static enum step local__step(enum endpoint_result res)
{
    switch (res) {
    case ENDPOINT_WAIT: return STEP_WAIT;
    case ENDPOINT_DONE: return STEP_PROGRESS;
    case ENDPOINT_CLOSED: break;
    }
    return STEP_CLOSED;
}

static void local__wake_parked(const struct endpoint_req *r)
{
    const struct worker_ctx *w = r->home;
    local__wake(w->node);
}

struct endpoint_req *endpoint_request(struct exchange *ex)
{
    return local__cur ? local__cur->lr : ex->lr;
}

/* --- exchanges watched across a call that may end them ------------------------------------ */

/* A job's finish or a park's retry answers, and the answer may end the exchange (the client
 * gone: the transport frees it at once); endpoint_resume comes after. A watch, on the stack
 * for the length of that call, is told when its exchange ends, so that nothing touches it
 * afterwards. */
struct local_watch {
    struct exchange *ex;
    bool ended;
    struct local_watch *outer;
};

static _Thread_local struct local_watch *local__watches;

static void local__watch(struct local_watch *lw, struct exchange *ex)
{
    lw->ex = ex;
    lw->ended = false;
    lw->outer = local__watches;
    local__watches = lw;
}

static void local__unwatch(struct local_watch *lw)
{
    local__watches = lw->outer;
}

static bool local__ended(const struct exchange *ex)
{
    for (const struct local_watch *lw = local__watches; lw; lw = lw->outer)
        if (lw->ex == ex)
            return lw->ended;
    return false;
}

/* --- the parked list: an exchange is linked from its worker's list or from a walk's --------- */

static void local__link(struct exchange **head, struct exchange *ex)
{
    ex->park_next = *head;
    if (*head)
        (*head)->park_pprev = &ex->park_next;
    *head = ex;
    ex->park_pprev = head;
}

static void local__unpark(struct exchange *ex)
{
    if (!ex->park_pprev)
        return;
    *ex->park_pprev = ex->park_next;
    if (ex->park_next)
        ex->park_next->park_pprev = ex->park_pprev;
    ex->park_next = NULL;
    ex->park_pprev = NULL;
}

static void local__req_free(struct endpoint_req *lr)
{
    if (!lr)
        return;
    free(lr->cookies);
    free(lr->origin);
    free(lr->referer);
    free(lr->access_token);
    free(lr->authorization);
    if (lr->client_secret)
        sodium_memzero(lr->client_secret, strlen(lr->client_secret));
    free(lr->client_id);
    free(lr->client_secret);
    free((char *)lr->name);
    free((char *)lr->method);
    free((char *)lr->host);
    free((char *)lr->query);
    free((char *)lr->client_ip);
    free(lr->park_key);
    endpoint_site_release(lr->site);
    keyset_unref(lr->keys);
    revocations_unref(lr->rev);
    sb_free(&lr->body);
    free(lr);
}

/* The exchange ends (answered, or its client gone): out of the parked list, and a job that
 * runs for it meanwhile finishes alone. */
void proxy__local_free(struct exchange *ex)
{
    local__unpark(ex);
    if (ex->waiting) {
        ex->waiting->ex = NULL;
        ex->waiting = NULL;
    }
    for (struct local_watch *lw = local__watches; lw; lw = lw->outer)
        if (lw->ex == ex)
            lw->ended = true;
    local__req_free(ex->lr);
    ex->lr = NULL;
}

static void local__defer_free(struct local_defer *d)
{
    local__req_free(d->lr);
    free(d->ctype);
    free(d->body);
    free(d->headers);
    free(d->title);
    free(d->code);
    free(d->park_key);
    free(d);
}

static void local__defer_run(struct job *j)
{
    struct local_defer *d = (struct local_defer *)j;
    local__cur = d;
    if (d->retry)
        d->retry(NULL, d->timed_out);
    else
        d->ep->handle(NULL, d->lr);
    local__cur = NULL;
}

static enum step local__defer(struct exchange *ex, const struct endpoint *ep, endpoint_retry_fn retry, bool timed_out);
static void local__job_done(struct job *j);

/* Back on the worker: sends what the endpoint answered. */
static void local__defer_finish(struct endpoint_job *lj, struct exchange *ex)
{
    struct local_defer *d = (struct local_defer *)lj;
    if (!ex) {
        local__defer_free(d);
        return;
    }
    ex->lr = d->lr;
    d->lr = NULL;
    switch (d->kind) {
    case ANS_REPLY:
        endpoint_reply(ex, d->status, d->ctype, d->body, d->len, d->headers);
        break;
    case ANS_PAGE:
        endpoint_page(ex, d->status, d->title, d->body, d->headers);
        break;
    case ANS_ERROR:
        endpoint_error(ex, d->status, d->code, d->body);
        break;
    case ANS_BUSY:
        endpoint_busy(ex, d->code, d->title, d->body, (unsigned)d->status);
        break;
    case ANS_PARK:
        if (d->lj.late || ex->w->draining) { /* its time is up meanwhile: it answers now */
            if (local__defer(ex, NULL, d->park, true) != STEP_WAIT)
                endpoint_resume(ex);
        } else if (store_may_have(ex->w->store, d->park_key, ex->lr->tried_ms)) { /* news meanwhile */
            if (local__defer(ex, NULL, d->park, false) != STEP_WAIT)
                endpoint_resume(ex);
        } else if (endpoint_park(ex, d->park, d->park_key) != ENDPOINT_WAIT) {
            endpoint_resume(ex);
        }
        local__defer_free(d);
        return;
    case ANS_NONE:
        ex->tp->ops->fail(ex, 500, "internal", "The endpoint did not answer.");
        break;
    }
    local__defer_free(d);
    endpoint_resume(ex);
}

/* Runs the endpoint (or a parked request's retry) on the job pool. A retry keeps the park's
 * deadline: when it passes meanwhile, the job is marked late. */
static enum step local__defer(struct exchange *ex, const struct endpoint *ep, endpoint_retry_fn retry, bool timed_out)
{
    struct local_defer *d = calloc(1, sizeof *d);
    if (!d)
        return local__step(endpoint_fail(ex, ENDPOINT_NOMEM));
    d->lr = ex->lr;
    ex->lr = NULL;
    d->lr->tried_ms = (int64_t)proxy__now_us() / 1000;
    d->ep = ep;
    d->retry = retry;
    d->timed_out = timed_out;
    d->lj.job.run = local__defer_run;
    d->lj.finish = local__defer_finish;
    d->lj.ex = ex;
    d->lj.job.done = local__job_done;
    d->lj.job.home = &ex->w->mailbox;
    ex->waiting = &d->lj;
    ex->tp->ops->wait(ex, retry && !timed_out);
    jobs_submit(ex->w->jobs, &d->lj.job);
    return STEP_WAIT;
}

/* Runs the endpoint the request names: on the job pool when it needs a remote store. */
static enum step local__dispatch(struct exchange *ex)
{
    const struct endpoint *ep = endpoint_find(local__tables, local__ntables, ex->lr);
    if (!ep)
        return ex->tp->ops->fail(ex, 404, "not_found", "No such page.");
    if (store_remote(ex->w->store) && ep->needs_store)
        return local__defer(ex, ep, NULL, false);
    return local__step(ep->handle(ex, ex->lr));
}

/* Keeps an answer made on the job pool. */
static enum endpoint_result local__keep(enum local_answer kind, int status, const char *ctype,
                                        const char *body, size_t len, const char *headers,
                                        const char *title, const char *code)
{
    struct local_defer *d = local__cur;
    free(d->ctype); /* a second answer replaces the first */
    free(d->body);
    free(d->headers);
    free(d->title);
    free(d->code);
    d->kind = kind;
    d->status = status;
    d->ctype = ctype ? strdup(ctype) : NULL;
    d->body = malloc(len + 1);
    if (d->body) {
        memcpy(d->body, body ? body : "", len);
        d->body[len] = '\0';
    }
    d->len = len;
    d->headers = headers ? strdup(headers) : NULL;
    d->title = title ? strdup(title) : NULL;
    d->code = code ? strdup(code) : NULL;
    if (!d->body || (ctype && !d->ctype) || (headers && !d->headers) || (title && !d->title) ||
        (code && !d->code))
        d->kind = ANS_NONE;
    return ENDPOINT_WAIT;
}

/* The endpoint's request (ex->lr), copied out of the head and the exchange: any transport.
 * -1: out of memory. */
static int local__request(struct exchange *ex, const struct http_request *req, const char *name)
{
    struct endpoint_req *lr = calloc(1, sizeof *lr);
    if (!lr)
        return -1;
    ex->lr = lr;
    sb_init(&lr->body, ENDPOINT_MAX_BODY);
    struct strbuf ck;
    bool fetch_metadata = false;
    sb_init(&ck, 2 * HTTP_MAX_HEADER_BYTES);
    sb_adds(&ck, "");
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        if (http_slice_eq(h->name, "cookie")) {
            if (ck.len)
                sb_add(&ck, "; ", 2);
            sb_add(&ck, h->value.p, h->value.n);
        } else if (http_slice_eq(h->name, HTTP_H_ACCESS_TOKEN) && !lr->access_token) {
            lr->access_token = strndup(h->value.p, h->value.n);
        } else if (http_slice_eq(h->name, "authorization") && !lr->authorization) {
            lr->authorization = strndup(h->value.p, h->value.n);
        } else if (http_slice_eq(h->name, HTTP_H_CLIENT_ID) && !lr->client_id) {
            lr->client_id = strndup(h->value.p, h->value.n);
        } else if (http_slice_eq(h->name, HTTP_H_CLIENT_SECRET) && !lr->client_secret) {
            lr->client_secret = strndup(h->value.p, h->value.n);
        } else if (http_slice_eq(h->name, "origin") && !lr->origin) {
            lr->origin = strndup(h->value.p, h->value.n);
        } else if (http_slice_eq(h->name, "referer") && !lr->referer) {
            lr->referer = strndup(h->value.p, h->value.n);
        } else if (http_slice_eq(h->name, "sec-fetch-site")) {
            fetch_metadata = true;
            lr->foreign |= !http_slice_eq(h->value, "same-origin") && !http_slice_eq(h->value, "none");
        } else if (http_slice_eq(h->name, "sec-fetch-mode")) {
            fetch_metadata = true;
            lr->foreign |= !http_slice_eq(h->value, "navigate");
        } else if (http_slice_eq(h->name, "content-type")) {
            lr->form = h->value.n >= 33 && !strncasecmp(h->value.p, "application/x-www-form-urlencoded", 33);
        }
    }
    lr->cookies = ck.p ? ck.p : strdup("");
    lr->name = strdup(name);
    lr->method = strdup(ex->method);
    lr->host = strdup(ex->host);
    served_of_request(ex->tp->ops->listener(ex), ex->host, ex->host_len, &lr->self);
    /* a browser without Fetch metadata: the page that sent it, by its Origin or Referer */
    if (!fetch_metadata)
        lr->foreign = (lr->origin && !served_is(&lr->self, lr->origin)) ||
                      (lr->referer && !served_is(&lr->self, lr->referer));
    lr->query = strndup(ex->query, ex->query_len);
    lr->query_len = ex->query_len;
    lr->client_ip = strdup(ex->client_ip_str);
    lr->secure_cookies = proxy__secure_cookies(ex);
    lr->wants_html = ex->wants_html;
    const char *ad = ex->rt->cfg->auth_domain;
    lr->on_auth_domain = ad && !strcmp(ad, ex->host);
    endpoint_site_hold(&ex->rt->site);
    lr->site = &ex->rt->site;
    keyset_ref(ex->w->keys);
    lr->keys = ex->w->keys;
    revocations_ref(ex->w->rev);
    lr->rev = ex->w->rev;
    lr->store = ex->w->store;
    lr->jobs = ex->w->jobs;
    lr->metrics = ex->w->metrics;
    lr->publish_revocations = local__publish;
    lr->publish_ctx = ex->w->node;
    lr->wake_parked = local__wake_parked;
    lr->home = ex->w;
    if (!lr->cookies || !lr->name || !lr->method || !lr->host || !lr->query || !lr->client_ip)
        return -1;
    return 0;
}

enum step proxy__local_start(struct exchange *ex, const struct http_request *req, const char *name)
{
    if (local__request(ex, req, name) != 0)
        goto nomem;
    if (ex->req_body == HTTP_BODY_CHUNKED) {
        ex->close_after = true;
        return ex->tp->ops->fail(ex, 411, "length_required", "Send the form with a Content-Length.");
    }
    if (ex->req_body == HTTP_BODY_LENGTH && ex->req_left > ENDPOINT_MAX_BODY) {
        ex->close_after = true;
        return ex->tp->ops->fail(ex, 413, "payload_too_large", "The form is too large.");
    }
    if (!ex->req_done)
        return ex->tp->ops->read_all(ex, &ex->lr->body, local__dispatch);
    return local__dispatch(ex);
nomem:
    ex->close_after = true;
    return local__step(endpoint_fail(ex, ENDPOINT_NOMEM));
}

enum endpoint_result endpoint_reply(struct exchange *ex, int status, const char *ctype, const char *body, size_t len,
                                    const char *headers)
{
    if (local__cur)
        return local__keep(ANS_REPLY, status, ctype, body, len, headers, NULL, NULL);
    return local__result(ex->tp->ops->respond(ex, status, ctype, body, len, headers));
}

enum endpoint_result endpoint_json(struct exchange *ex, int status, json_t *j, const char *headers)
{
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!body)
        return endpoint_fail(ex, ENDPOINT_NOMEM);
    size_t n = strlen(body);
    char *nl = realloc(body, n + 2);
    if (nl) {
        body = nl;
        body[n++] = '\n';
        body[n] = '\0';
    }
    enum endpoint_result st = endpoint_reply(ex, status, "application/json", body, n, headers);
    free(body);
    return st;
}

enum endpoint_result endpoint_redirect(struct exchange *ex, const char *location, const char *headers)
{
    struct strbuf sb;
    sb_init(&sb, 3 * BUF_SIZE / 4);
    sb_addf(&sb, "Location: %s\r\n%s", location, headers ? headers : "");
    enum endpoint_result st = sb.overflow ? endpoint_error(ex, 500, "internal", "Redirect too long.")
                                          : endpoint_reply(ex, 302, "text/html; charset=utf-8", "", 0, sb.p);
    sb_free(&sb);
    return st;
}

enum endpoint_result endpoint_page(struct exchange *ex, int status, const char *title, const char *html,
                                   const char *headers)
{
    if (local__cur)
        return local__keep(ANS_PAGE, status, NULL, html, strlen(html), headers, title, NULL);
    return local__result(proxy__page(ex, status, title, html, headers));
}

enum endpoint_result endpoint_error(struct exchange *ex, int status, const char *code, const char *message)
{
    if (local__cur)
        return local__keep(ANS_ERROR, status, NULL, message, strlen(message), NULL, NULL, code);
    return local__result(ex->tp->ops->fail(ex, status, code, message));
}

enum endpoint_result endpoint_busy(struct exchange *ex, const char *code, const char *title, const char *message,
                                   unsigned retry_s)
{
    if (local__cur)
        return local__keep(ANS_BUSY, (int)retry_s, NULL, message, strlen(message), NULL, title, code);
    return local__result(proxy__respond_busy(ex, code, title, message, retry_s));
}

/* A job is done: its finish runs with the exchange (NULL: it ended meanwhile), which carries
 * on unless the answer ended it (endpoint_resume). */
static void local__job_done(struct job *j)
{
    struct endpoint_job *lj = (struct endpoint_job *)j;
    struct exchange *ex = lj->ex;
    struct local_watch lw;
    if (!ex) {
        lj->finish(lj, NULL);
        return;
    }
    ex->waiting = NULL;
    local__watch(&lw, ex);
    lj->finish(lj, ex);
    local__unwatch(&lw);
}

enum endpoint_result endpoint_wait(struct exchange *ex, struct endpoint_job *lj, struct jobs *js)
{
    if (local__cur) { /* already on the job pool: run it and its finish here, answer kept */
        lj->job.run(&lj->job);
        lj->ex = NULL;
        lj->finish(lj, (struct exchange *)local__cur); /* a handle, never looked into */
        return ENDPOINT_WAIT;
    }
    lj->ex = ex;
    lj->job.done = local__job_done;
    lj->job.home = &ex->w->mailbox;
    ex->waiting = lj;
    ex->tp->ops->wait(ex, false); /* the job has its own timeouts (libcurl's) */
    jobs_submit(js, &lj->job);
    return ENDPOINT_WAIT;
}

void endpoint_detach(const struct endpoint_req *r, struct endpoint_job *lj)
{
    struct worker_ctx *w = r->home;
    lj->ex = NULL;
    lj->job.done = local__job_done;
    lj->job.home = &w->mailbox;
    jobs_submit(w->jobs, &lj->job);
}

enum endpoint_result endpoint_park(struct exchange *ex, endpoint_retry_fn retry, const char *key)
{
    if (local__cur) {
        local__cur->park = retry;
        local__cur->park_key = strdup(key);
        local__cur->kind = local__cur->park_key ? ANS_PARK : ANS_NONE;
        return ENDPOINT_WAIT;
    }
    struct endpoint_req *lr = ex->lr;
    if (!lr->park_key || strcmp(lr->park_key, key)) {
        free(lr->park_key);
        lr->park_key = strdup(key);
        if (!lr->park_key)
            return endpoint_fail(ex, ENDPOINT_NOMEM);
    }
    lr->park_retry = retry;
    local__link(&ex->w->proxy->parked, ex);
    ex->tp->ops->wait(ex, true);
    if (!lr->parked) { /* parked again after news: keep the first deadline */
        lr->parked = true;
        ex->tp->ops->arm(ex, &ex->w->proxy->timers.parked);
    }
    return ENDPOINT_WAIT;
}

/* A parked request's retry, from news or its deadline; it answers, or parks again. With a
 * remote store the retry runs on the job pool, and only for news that may concern it. */
static void local__retry(struct exchange *ex, bool timed_out)
{
    struct endpoint_req *lr = ex->lr;
    struct local_watch lw;
    if (store_remote(ex->w->store) && !timed_out &&
        !store_may_have(ex->w->store, lr->park_key ? lr->park_key : "", lr->tried_ms))
        return;
    local__unpark(ex);
    local__watch(&lw, ex);
    if (store_remote(ex->w->store)) {
        if (local__defer(ex, NULL, lr->park_retry, timed_out) != STEP_WAIT)
            endpoint_resume(ex);
    } else {
        lr->park_retry(ex, timed_out);
        endpoint_resume(ex);
    }
    local__unwatch(&lw);
}

bool proxy__local_timeout(struct exchange *ex)
{
    if (ex->park_pprev) {
        local__retry(ex, true);
        return true;
    }
    if (!ex->waiting || ex->waiting->job.run != local__defer_run)
        return false;
    ex->waiting->late = true;
    return true;
}

/* Retries every exchange parked on w now. A retry may park its exchange again, or end others:
 * the ones parked now move to a list of their own, each back to the worker's before its retry. */
static void local__retry_all(struct worker_ctx *w, bool timed_out)
{
    struct exchange *now = w->proxy->parked;
    w->proxy->parked = NULL;
    if (now)
        now->park_pprev = &now;
    while (now) {
        struct exchange *ex = now;
        local__unpark(ex);
        local__link(&w->proxy->parked, ex);
        local__retry(ex, timed_out);
    }
}

void local_retry_parked(struct worker_ctx *w)
{
    local__retry_all(w, false);
}

void proxy__local_drain(struct worker_ctx *w)
{
    local__retry_all(w, true); /* a long poll answers "nothing yet" now */
}

void endpoint_resume(struct exchange *ex)
{
    if (local__cur) /* on the job pool: the worker resumes it when it sends the answer */
        return;
    if (!local__ended(ex))
        ex->tp->ops->wake(ex);
}
