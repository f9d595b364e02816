/* What the gateway's own endpoints (under /cdn-cgi/access/, written in src/auth) see of a
 * request and how they answer it: the narrow interface between the proxy and the logins. */
#ifndef LATCH_LOCAL_H
#define LATCH_LOCAL_H

#include "core/jobs.h"
#include "core/strbuf.h"
#include "route/served.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct conn;
struct runtime;
struct worker;

/* The name under which the auth domain's root (where no app is served) reaches the endpoints:
 * the app launcher. No path after /cdn-cgi/access/ is named so (paths are normalized: no "//"). */
#define LOCAL_AUTH_ROOT "/"

/* Copied out of the request head (owned: a job may outlive the connection). */
struct local_req {
    const char *name;          /* the path after /cdn-cgi/access/ ("login/app.example.com"), or
                                * LOCAL_AUTH_ROOT */
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
    struct strbuf body;        /* the request body (forms), at most LOCAL_MAX_BODY */
    bool form;                 /* Content-Type: application/x-www-form-urlencoded */
    const char *client_ip;
    bool secure_cookies;       /* set cookies with Secure (all but plain HTTP on loopback) */
    bool wants_html;
    bool on_auth_domain;       /* the request is for the auth domain */
    bool foreign;              /* a browser says another page made it (Sec-Fetch-Site other than
                                * same-origin or none, or Sec-Fetch-Mode other than navigate;
                                * without Fetch metadata, an Origin or a Referer of another
                                * origin) */
    struct runtime *rt;        /* references held by the request: */
    struct keyset *keys;
    struct revocations *rev;
    struct worker *w;          /* w->store and w->jobs are safe from any thread; nothing else */
    int (*park_retry)(struct conn *c, bool timed_out);
    char *park_key;            /* the store key a parked request waits for */
    int64_t tried_ms;          /* (remote store) when its retry last asked the store, monotonic */
    bool parked;               /* the park deadline is set */
};

#define LOCAL_MAX_BODY (64 * 1024)

/* Work parked on a background job; `finish` runs back on the worker with the connection, or
 * with NULL when the client went away meanwhile; it frees the job either way. */
struct local_job {
    struct job job;
    struct conn *conn;
    void (*finish)(struct local_job *lj, struct conn *c);
    bool late;                 /* the request's park deadline passed while the job ran */
};

/* With a remote store (Redis), the endpoints run on the job pool, never on a worker's loop:
 * their answers (local_reply … local_park below) are kept and sent by the worker afterwards,
 * and `c` is then only a handle to pass along, never to be looked into. */
struct local_req *local_request(struct conn *c);

/* Answers (each ends the handler's turn: return what they return). `headers` are extra lines,
 * each ending in CRLF (Set-Cookie, Location…), or NULL. */
int local_reply(struct conn *c, int status, const char *ctype, const char *body, size_t len,
                const char *headers);
int local_json(struct conn *c, int status, json_t *j, const char *headers); /* steals j */
int local_redirect(struct conn *c, const char *location, const char *headers);
/* A page in the gateway's look; `html` is the inner body, already escaped. */
int local_page(struct conn *c, int status, const char *title, const char *html, const char *headers);
/* An error: a page for browsers, {"error": code, "message": …} for scripts. */
int local_error(struct conn *c, int status, const char *code, const char *message);
/* 503 with Retry-After: retry_s: a page (title, message, a button that tries again) for
 * browsers, {"error": code, "message": …} for scripts. */
int local_busy(struct conn *c, const char *code, const char *title, const char *message, unsigned retry_s);
/* Parks the request on a background job (jobs.h). */
int local_wait(struct conn *c, struct local_job *lj, struct jobs *js);
/* Parks the request until `retry` answers it: retry(c, false) runs whenever another worker
 * (or, with Redis, another node) signals news about `key` (worker_signal_parked), retry(c, true)
 * once the park's 25 s (TIMER_PARKED, under the CLI's 30 s) have passed since it first parked:
 * it must answer then. The handoff's long poll (SPEC.md §7). */
int local_park(struct conn *c, int (*retry)(struct conn *c, bool timed_out), const char *key);
/* Runs retry on every request parked on this worker (worker thread). */
void local_retry_parked(struct worker *w);

/* Runs a job that no request waits for (sending mail); `finish` gets NULL. */
void local_detach(struct local_job *lj, struct worker *w);
/* After `finish` answered on a connection: lets it carry on. */
void local_resume(struct conn *c);

/* HTML-escapes s (n bytes of it) into sb. */
void local_html(struct strbuf *sb, const char *s);
void local_html_n(struct strbuf *sb, const char *s, size_t n);

/* Pieces of the gateway's pages (respond.c), written into sb:
 * a link that looks like a button (primary: filled in the accent colour; else outlined);
 * the first character of s, capitalized (an app's or an organization's initial);
 * a "try again later" page body (title, message, a button that loads the page again);
 * the head of a refusal (app denied, path blocked): who is refused (a person by email, a
 * service token by name, else nobody signed in) and the app by its display name, never the
 * policy; the caller adds the next steps (buttons). */
void local_button(struct strbuf *sb, const char *href, const char *label, bool primary);
void local_initial(struct strbuf *sb, const char *s);
void local_busy_html(struct strbuf *sb, const char *title, const char *message);
void local_denied_html(struct strbuf *sb, const char *email, const char *service, const char *app_label);

#endif
