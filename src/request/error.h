/* The error contract: how a failure carries its cause from where it happens to what the client,
 * the logs and the shell see. Written once; every layer follows it.
 *
 * 1. Where it happens, the cause is kept, never a bare bool:
 *    - core, http, store, token, tls: negative errno, or the module's own enum that names the
 *      cause (enum http_err, enum store_result, enum token_status…). A parser of a request head
 *      returns enum http_err; the store says STORE_UNAVAILABLE (down) apart from STORE_NOMEM.
 *    - config: "FILE:LINE:COL: message" added to a struct config_errors (config.h), at the key
 *      that is wrong, for latchd check and a daemon's start alike (on stderr).
 *    - setup steps that can only fail one way and log it themselves return 0 / -1.
 * 2. Where it is answered, one function maps a cause to the HTTP status, so the same cause is
 *    the same answer everywhere:
 *    - a request head the parser refused: http_error_status() (http/http.h);
 *    - an endpoint's own failure (out of memory, the shared store down): endpoint_fail() with an
 *      enum endpoint_cause below (endpoint_store_cause() for a store_result);
 *    - a refused token: SPEC.md §3.6 decides the answer (401 login_required / a sign-in for
 *      browsers; get-identity 401), and the token_status goes to the client as `token_error`
 *      where SPEC.md says so (the handoff, the gateway's 401 JSON).
 * 3. The auth log (SPEC.md §9) gets the cause's name as its `reason` (token_status_name, or the
 *    step that failed), with `allowed: false`; operational failures go to stderr (log_msg).
 * 4. The programs turn what failed into their exit status through named statuses shared by
 *    latchd and latch (a bad configuration, a refused token, usage…); the man pages list them.
 */
#ifndef LATCH_REQUEST_ERROR_H
#define LATCH_REQUEST_ERROR_H

#include "request/endpoint.h"
#include "store/store.h"

/* An endpoint's own failures, each with one answer (endpoint_fail). */
enum endpoint_cause {
    ENDPOINT_NOMEM,      /* 500 "internal": out of memory */
    ENDPOINT_STORE_DOWN, /* 503 "store_unavailable" with Retry-After: the shared store (Redis)
                          * cannot be reached (SPEC.md §10) */
};

/* Retry-After when the shared store is down: a node notices it is back within 1 s. */
#define ENDPOINT_STORE_RETRY_S 5

/* The cause of a failed store call: STORE_NOMEM is out of memory, any other the store down. */
enum endpoint_cause endpoint_store_cause(enum store_result sr);
/* The HTTP status a cause is answered with. */
int endpoint_cause_status(enum endpoint_cause cause);
/* Answers a cause: a page for browsers, {"error": …, "message": …} for scripts. */
enum endpoint_result endpoint_fail(struct exchange *ex, enum endpoint_cause cause);

#endif
