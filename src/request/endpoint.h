/* The gateway's own endpoints (under /cdn-cgi/access/): what an endpoint sees of a request, how
 * it answers, and the table rows a transport walks to find one (in the spirit of h2o's
 * `on_req` handlers). An endpoint knows nothing of the connection that carries its request:
 * it gets a request object with only what it may use and answers through the functions below,
 * which src/proxy/local.c implements on the request's exchange, over whichever transport
 * carries it. */
#ifndef LATCH_ENDPOINT_H
#define LATCH_ENDPOINT_H

#include "config/config-t.h"
#include "core/jobs.h"
#include "core/strbuf.h"
#include "route/served.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct exchange; /* the request's exchange (request/exchange.h), the endpoint's handle on it:
                  * passed along, never looked into */
struct keyset;
struct log_sink;
struct metrics_worker;
struct revocations;
struct route_table;
struct store;

/* The name under which the auth domain's root (where no app is served) reaches the endpoints:
 * the app launcher. No path after /cdn-cgi/access/ is named so (paths are normalized: no "//"). */
#define ENDPOINT_AUTH_ROOT "/"
#define ENDPOINT_MAX_BODY (64 * 1024)

/* What an endpoint's turn ended with: it answered (the transport sends it and carries on), it
 * waits on a job or a park (the transport resumes it), or the client connection is gone. */
enum endpoint_result { ENDPOINT_WAIT, ENDPOINT_DONE, ENDPOINT_CLOSED };

/* The running configuration as endpoints see it: built with each runtime (src/server), immutable,
 * kept alive by endpoint_site_hold/release while a job outlives its request. */
struct endpoint_site {
    const struct config *cfg;
    const struct route_table *routes;
    struct log_sink *auth_log;
    const char *auth_url;              /* "https://auth.example.com" or http:// (SPEC.md §5) */
    const unsigned char *secret;       /* 32 bytes: AUDs and person subs derive from it */
    int64_t longest_session_s;         /* no token outlives it */
};

/* An app's AUD; the runtime the site belongs to kept alive (hold) and let go (release; NULL
 * is nothing). The site is a member of its runtime (request/runtime.c). */
const char *endpoint_aud(const struct endpoint_site *site, const struct app *app);
void endpoint_site_hold(const struct endpoint_site *site);
void endpoint_site_release(const struct endpoint_site *site);

/* How long a token lives (SPEC.md §2): the policy's session_duration, else the app's, else the
 * global one. */
static inline int64_t endpoint_session_s(const struct config *cfg, const struct app *app,
                                         const struct policy *p)
{
    if (p && p->session_duration_s)
        return p->session_duration_s;
    if (app && app->session_duration_s)
        return app->session_duration_s;
    return cfg->session_duration_s;
}

/* One request to an endpoint, copied out of the request head (owned: a job may outlive the
 * exchange). */
struct endpoint_req {
    const char *name;          /* the path after /cdn-cgi/access/ ("login/app.example.com"), or
                                * ENDPOINT_AUTH_ROOT */
    const char *method;
    const char *host;          /* normalized request host[:port], as the Host header says */
    struct served_origin self; /* the origin the request reached: its listener's public scheme
                                * and port, the Host's name (route/served.h) */
    const char *query;         /* raw query, "" when none */
    size_t query_len;
    char *cookies;             /* every Cookie header joined with "; " ("" when none) */
    char *origin;              /* the Origin header, NULL when absent */
    char *referer;             /* the Referer header, NULL when absent */
    char *access_token;        /* the cf-access-token header, NULL when absent */
    char *authorization;       /* the Authorization header, NULL when absent */
    char *client_id;           /* the service-token headers (cf-access-client-id and -secret), */
    char *client_secret;       /* NULL when absent: cert_sign reads them */
    struct strbuf body;        /* the request body (forms), at most ENDPOINT_MAX_BODY */
    bool form;                 /* Content-Type: application/x-www-form-urlencoded */
    const char *client_ip;
    bool secure_cookies;       /* set cookies with Secure (all but plain HTTP on loopback) */
    bool wants_html;
    bool on_auth_domain;       /* the request is for the auth domain */
    bool foreign;              /* a browser says another page made it (Sec-Fetch-Site other than
                                * same-origin or none, or Sec-Fetch-Mode other than navigate;
                                * without Fetch metadata, an Origin or a Referer of another
                                * origin) */
    /* What the endpoint may use (each safe from any thread), references held by the request: */
    const struct endpoint_site *site;
    struct keyset *keys;
    struct revocations *rev;
    struct store *store;
    struct jobs *jobs;
    struct metrics_worker *metrics; /* the worker's counters */
    /* Tells every worker of this node that revocations were written (each reloads them before
     * it returns): publish_revocations(publish_ctx), from any thread; a job keeps both. */
    void (*publish_revocations)(void *publish_ctx);
    void *publish_ctx;
    /* Wakes the parked requests of every worker (news about a key they wait for). */
    void (*wake_parked)(const struct endpoint_req *r);
    /* src/proxy/local.c's, never looked into by an endpoint: */
    void *home;                /* the worker the request arrived on */
    enum endpoint_result (*park_retry)(struct exchange *ex, bool timed_out); /* its endpoint_park retry */
    char *park_key;            /* the store key a parked request waits for */
    int64_t tried_ms;          /* (remote store) when its retry last asked the store, monotonic */
    bool parked;               /* the park deadline is set */
};

/* A table row: the endpoint at `name` (the path after /cdn-cgi/access/; a name ending in '/'
 * is a prefix, "" matches every name). A transport takes the first row of its tables that
 * matches and may serve the request (an auth_domain_only row only on the auth domain). Rows
 * that never touch the shared store (needs_store false) run on the worker; with a remote store
 * the others run on the job pool. */
typedef enum endpoint_result (*endpoint_fn)(struct exchange *ex, struct endpoint_req *r);
struct endpoint {
    const char *name;
    bool needs_store;
    bool auth_domain_only;
    endpoint_fn handle;
};
struct endpoint_table {
    const struct endpoint *rows;
    size_t nrows;
};

/* The first row of the tables that serves r, or NULL. */
const struct endpoint *endpoint_find(const struct endpoint_table *const *tables, size_t ntables,
                                     const struct endpoint_req *r);

/* Work parked on a background job; `finish` runs back on the worker with the exchange, or
 * with NULL when the client went away meanwhile (the exchange ended); it frees the job either
 * way. */
struct endpoint_job {
    struct job job;
    struct exchange *ex;
    void (*finish)(struct endpoint_job *ej, struct exchange *ex);
    bool late;                 /* the request's park deadline passed while the job ran */
};

/* The functions below are the proxy's (src/proxy/local.c implements them over the exchange's
 * transport operations: HTTP/1.1 today). With a remote store (Redis), the endpoints run on the
 * job pool, never on a worker's loop: their answers (endpoint_reply … endpoint_park) are kept
 * and sent by the worker afterwards, and `ex` is then only a handle to pass along. */
struct endpoint_req *endpoint_request(struct exchange *ex);

/* Answers (each ends the handler's turn: return what they return). `headers` are extra lines,
 * each ending in CRLF (Set-Cookie, Location…), or NULL. */
enum endpoint_result endpoint_reply(struct exchange *ex, int status, const char *ctype, const char *body,
                                    size_t len, const char *headers);
enum endpoint_result endpoint_json(struct exchange *ex, int status, json_t *j, const char *headers); /* steals j */
enum endpoint_result endpoint_redirect(struct exchange *ex, const char *location, const char *headers);
/* A page in the gateway's look; `html` is the inner body, already escaped. */
enum endpoint_result endpoint_page(struct exchange *ex, int status, const char *title, const char *html,
                                   const char *headers);
/* An error: a page for browsers, {"error": code, "message": …} for scripts. */
enum endpoint_result endpoint_error(struct exchange *ex, int status, const char *code, const char *message);
/* 503 with Retry-After: retry_s: a page (title, message, a button that tries again) for
 * browsers, {"error": code, "message": …} for scripts. */
enum endpoint_result endpoint_busy(struct exchange *ex, const char *code, const char *title, const char *message,
                                   unsigned retry_s);
/* Parks the request on a background job (jobs.h). */
enum endpoint_result endpoint_wait(struct exchange *ex, struct endpoint_job *ej, struct jobs *js);
/* Parks the request until `retry` answers it: retry(ex, false) runs whenever another worker
 * (or, with Redis, another node) signals news about `key` (wake_parked), retry(ex, true) once
 * the park's 25 s (under the CLI's 30 s) have passed since it first parked: it must answer
 * then. The handoff's long poll (SPEC.md §7). */
typedef enum endpoint_result (*endpoint_retry_fn)(struct exchange *ex, bool timed_out);
enum endpoint_result endpoint_park(struct exchange *ex, endpoint_retry_fn retry, const char *key);
/* Runs a job that no request waits for (sending mail); `finish` gets NULL. */
void endpoint_detach(const struct endpoint_req *r, struct endpoint_job *ej);
/* After `finish` answered on an exchange: lets it carry on (nothing when the answer ended it). */
void endpoint_resume(struct exchange *ex);

#endif
