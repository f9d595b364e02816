/* The proxy: client connections, origin connections and the exchange between them.
 * Functions with a `proxy__` prefix are internal to src/proxy/ but shared across its files. */
#ifndef LATCH_PROXY_H
#define LATCH_PROXY_H

#include "metrics/metrics.h"
#include "proxy/proxy-t.h"

#include <jansson.h>
#include <sys/socket.h>


/* Who a request proved to be (identity.c). Pointers stay valid while the request head is being
 * handled (they point into the worker's token cache and the request buffer): what outlives
 * that is copied into the exchange. */
struct request_identity {
    bool presented;            /* some credential was there */
    bool ok;                   /* and it proved an identity */
    enum token_status status;  /* why not, when presented and not ok */
    struct identity id;
    const struct token *token;
    const struct service_token_cfg *service;
    const char *assertion;     /* the app token for Cf-Access-Jwt-Assertion */
    size_t assertion_len;
    bool minted;               /* minted for a service token (not presented by the client) */
    bool service_header;       /* the app's single JSON header carried it (not forwarded) */
    int64_t minted_exp;
    json_t *stored;            /* a large identity fetched by identity_nonce (owned) */
    const char **stored_groups;
};

/* The proxy's state in a worker: client connections, origin pools, parked long polls, minted
 * assertions, and the timer queues of its timeouts. server/worker.c calls only these and
 * conn_accept/conn_shed_silent below, with the context it fills (request/worker_ctx.h). */
/* Before the worker's thread starts; climit: the node's open connections per client
 * (connlimit.h), shared by every worker. -1: no memory. */
int proxy_worker_init(struct worker_ctx *w, struct connlimit *climit);
void proxy_worker_reload(struct worker_ctx *w);    /* w->rt is a new runtime: its timeouts */
/* Starts draining: idle connections close now, busy ones after their response (with
 * Connection: close); the origin pools close. */
void proxy_worker_drain(struct worker_ctx *w);
void proxy_worker_close_all(struct worker_ctx *w); /* every client and pooled origin connection, now */
void proxy_worker_news(struct worker_ctx *w);      /* parked long polls may have news: they look */
void proxy_worker_reap(struct worker_ctx *w);      /* frees what closed during this loop iteration */
void proxy_worker_free(struct worker_ctx *w);      /* after the worker's thread ended */

/* Called by a worker for each accepted socket. A client (an address not in trusted_proxies)
 * with max_connections_per_client open already has it closed at once. */
void conn_accept(struct worker_ctx *w, int fd, unsigned listener, const struct sockaddr *peer);
/* Closes the connections that have sent nothing since they were accepted at least min_age_ms
 * ago (the worker ran out of descriptors); returns how many. */
unsigned conn_shed_silent(struct worker_ctx *w, uint64_t min_age_ms);

/* --- internal, shared by the files of src/proxy --- */
void proxy__pump(struct conn *c);
static inline uint64_t proxy__now_us(void) { return exchange_now_us(); }
bool proxy__secure_cookies(const struct exchange *ex);
/* The Strict-Transport-Security line for an answer on this connection: the configured `hsts`
 * on a listener browsers reach over https (TLS, or `public: {scheme: https}` behind a TLS
 * terminator); NULL otherwise, and never on plain HTTP. */
const char *proxy__hsts(const struct exchange *ex);
void proxy__close(struct conn *c);
/* Frees an exchange and what its owner holds (origin connection, head, own endpoint, references). */
void proxy__free_exchange(struct worker_ctx *w, struct exchange *ex);
enum step proxy__finish(struct conn *c);
void proxy__drain_conns(struct worker_ctx *w);
void proxy__reap_conns(struct proxy_worker *pw);

enum read_result proxy__read_client(struct conn *c);
/* Validates newly arrived request body bytes; sets rx_ready and req_done. -1: bad framing. */
int proxy__body_ready(struct conn *c);
/* Reads the whole request body into `take` (a local endpoint's form, the echo's digest), over
 * any transport: `take` gets the body's bytes as they arrive. *done is set when all of it
 * arrived; otherwise the step to return (wait, closed, or a 400 already answered). */
enum step proxy__read_body(struct exchange *ex, void (*take)(void *arg, const char *p, size_t n),
                           void *arg, bool *done);
/* De-chunks validated chunked body bytes p[0..n) (the state in ex->echo_state/echo_left: the
 * chunked scanner checked the framing, so this stays permissive): the data goes to `take`,
 * which returns how much it took; it stops when `take` took less. The trailer section's bytes
 * (its field lines and the final CRLF, as they come) go to `trailer` when not NULL. The bytes
 * of p used. */
size_t proxy__dechunk(struct exchange *ex, const char *p, size_t n,
                      size_t (*take)(void *arg, const char *p, size_t n),
                      void (*trailer)(void *arg, const char *p, size_t n), void *arg);
/* Gives up `n` ready body bytes from the client buffer. */
void proxy__body_consume(struct conn *c, size_t n);

/* Answers we generate (respond.c). They set the state to CS_RESPOND. */
enum step proxy__respond(struct conn *c, int status, const char *ctype, const char *body,
                         size_t body_len, const char *extra_headers);
enum step proxy__page(struct exchange *ex, int status, const char *title, const char *html,
                      const char *extra_headers);
enum step proxy__respond_error(struct exchange *ex, int status, const char *code, const char *message);
/* The same with header lines of ours (whole lines with CRLF). */
enum step proxy__respond_error_hdr(struct exchange *ex, int status, const char *code, const char *message,
                                   const char *extra_headers);
/* 503 with Retry-After: retry_s, and a page whose button tries again (endpoint_busy). */
enum step proxy__respond_busy(struct exchange *ex, const char *code, const char *title, const char *message,
                              unsigned retry_s);
enum step proxy__respond_refused(struct exchange *ex);
void proxy__log_request(struct exchange *ex);
/* The request log line alone (no metrics): a tunnel's opening line. */
void proxy__log_line(struct exchange *ex);

/* Admission (admit.c): from a parsed request head to a decision, on the exchange alone. The
 * transport has filled in the framing (method kind, body, keep-alive) and dropped the head from
 * its buffer (req stays readable); the outcome says what it does next:
 *   ADMIT_ANSWERED  answered already (an error, the login, the refusal), *st the step;
 *   ADMIT_OWN       a gateway's own endpoint, *own its name (proxy__local_start);
 *   ADMIT_ORIGIN    admitted, the origin's head built (ex->hb): to the origin (or the echo). */
enum admission { ADMIT_ANSWERED, ADMIT_OWN, ADMIT_ORIGIN };
enum admission proxy__admit(struct exchange *ex, const struct http_request *req, const char **own,
                            enum step *st);
bool proxy__trusted_proxy(const struct config *cfg, const uint8_t ip[16]);

/* Identity (identity.c). */
void proxy__identify(struct exchange *ex, const struct http_request *req, struct request_identity *ri);
void proxy__identity_release(struct request_identity *ri);
void proxy__client_cert(SSL *ssl, bool *verified, char *cn, size_t cncap);
void proxy__minted_free(struct proxy_worker *pw);

/* Forwarding (forward.c). */
int proxy__build_origin_head(struct exchange *ex, const struct http_request *req,
                             const struct request_identity *ri);
/* The response head as HTTP/1.1 writes it, into c->tx (conn.c's `head`). */
int proxy__response_head_h1(struct conn *c, const struct http_response *res, bool tunnel);
/* The exchange with the origin, and the tunnel after a 101: over the exchange's transport. */
enum step proxy__step_proxy(struct exchange *ex);
enum step proxy__step_tunnel(struct exchange *ex);
void proxy__origin_timeout(struct exchange *ex);
/* The request's method is idempotent (RFC 9110 §9.2.2): it may be sent again. */
bool proxy__idempotent(const struct exchange *ex);
/* The origin failed (its connection released by the caller): counted, logged, and a 502/504 to
 * the client, or the response cut when part of it went out already. */
enum step proxy__origin_failed(struct exchange *ex, int status, enum metrics_origin_error kind,
                               const char *why);

/* The origin failed before any response (502/504): logged, counted, answered (forward.c). */
enum step proxy__origin_fail(struct exchange *ex, int status, enum metrics_origin_error kind, const char *why);

/* Tunnels to tcp:// apps (tunnel.c). proxy__tunnel_keep: an admitted request to a tcp:// app
 * keeps who it is (-1: no memory); proxy__tunnel_start: the WebSocket upgrade checked, false
 * with *st when answered (4xx); then proxy__tunnel_step runs it (connect, 101, frames). */
int proxy__tunnel_keep(struct exchange *ex, const struct request_identity *ri);
bool proxy__tunnel_start(struct exchange *ex, const struct http_request *req, enum step *st);
enum step proxy__tunnel_step(struct exchange *ex);
void proxy__tunnel_timeout(struct exchange *ex);
void proxy__tunnel_free(struct exchange *ex);
void proxy__tunnel_log_fields(struct strbuf *sb, bool *first, const struct exchange *ex);
/* Closes the tunnels the worker's newest runtime, revocations and service tokens no longer
 * admit; the tick closes those whose service token expired. */
void proxy__tunnels_recheck(struct worker_ctx *w);
/* A drain closes every tunnel now (1001 Going Away: a client reconnects to another node), not
 * after the drain timeout as requests do: a tunnel has no end of its own. */
void proxy__tunnels_drain(struct worker_ctx *w);
void proxy__tunnel_tick(struct timer *t);
/* A service token by client id: the configuration's, then the shared store's (svctokens.h). */
const struct service_token_cfg *proxy__service_token(struct worker_ctx *w, const struct config *cfg,
                                                     const char *id, size_t n);

/* Own endpoints (local.c), on the exchange and its transport's operations alone: `name` is
 * what the endpoint tables are searched for (the path after /cdn-cgi/access/, or
 * ENDPOINT_AUTH_ROOT). */
enum step proxy__local_start(struct exchange *ex, const struct http_request *req, const char *name);
/* Before the exchange is freed: out of the parked list, its job left to finish alone. */
void proxy__local_free(struct exchange *ex);
/* The deadline of an exchange that waits (transport `wait`) passed: a long poll answers (or
 * its retry on the job pool is marked late). false: nothing waits on it (the transport ends it). */
bool proxy__local_timeout(struct exchange *ex);
/* Draining: every parked long poll of w answers now ("nothing yet"). */
void proxy__local_drain(struct worker_ctx *w);

/* The built-in echo origin (echo.c). */
enum step proxy__step_echo(struct exchange *ex);

/* HTTP/2 origins: h2c:// and h2:// (h2up.c). proxy__step_proxy and proxy__origin_timeout hand
 * their exchanges over; a transport that frees an exchange detaches its stream (an open one is
 * reset). */
enum step proxy__step_h2up(struct exchange *ex);
void proxy__h2up_timeout(struct exchange *ex);
void proxy__h2up_detach(struct exchange *ex);
/* Closes the idle connections (busy_too: every one); the others take no new stream. */
void h2up_close_pools(struct proxy_worker *pw, bool busy_too);
void h2up_reap(struct proxy_worker *pw);
void h2up_free_pools(struct proxy_worker *pw);

/* Origin connections (upstream.c). */
/* A non-blocking connect to the exchange's origin (its TLS client, verified as configured, when
 * the origin is https:// or h2://; not handshaken yet). 0, or a negative errno. */
int proxy__origin_dial(const struct exchange *ex, int *fd, SSL **ssl);
int upstream_acquire(struct exchange *ex, bool fresh);
void upstream_release(struct upstream *up, bool reuse);
void upstream_close(struct upstream *up);
void upstream_close_pools(struct proxy_worker *pw);
void upstream_free_pools(struct proxy_worker *pw);

#endif
