/* The request core: an exchange is one request and its response (who asked, for which app,
 * the policy's decision, the origin side, the bodies streamed both ways, the log line),
 * separate from the client transport that carries it.
 *
 * A transport is one client connection's protocol: HTTP/1.1 today (proxy/conn.c: one exchange
 * at a time, pipelined ones waiting in its buffer), HTTP/2 streams next (several exchanges on
 * one connection). The exchange reaches its client only through the transport's operations
 * (struct transport_ops); the transport reaches its current exchange(s) through its own state.
 *
 * Backpressure is pull: an exchange asks its transport for more request bytes (read) only when
 * it has room to pass them on, and asks it to write response bytes only as fast as the client
 * takes them (write returns -EAGAIN). A transport that is pushed bytes (HTTP/2 DATA frames)
 * stops granting flow-control window while a stream's bytes wait.
 *
 * Trailers (HTTP/2, gRPC: the seam between client transports and origin kinds):
 *   - from the client: a transport that receives a trailer section (HTTP/2: a HEADERS frame
 *     after DATA, with END_STREAM) validates it as it validates a header section (no
 *     pseudo-header; names lower-case tokens; no CR, LF, NUL), drops what the gateway would drop
 *     from a header section (every field whose http_field_id is not HTTP_F_OTHER: hop-by-hop,
 *     Host, Content-Length, Cf-Access-*, X-Forwarded-*, the spoofable ones, cookies), and stores
 *     the rest in ex->req_trailers as HTTP/1.1 field lines ("name: value\r\n"…, lower-case
 *     names, no final empty line), before it sets req_done. An origin kind that can carry them
 *     (HTTP/2, chunked HTTP/1.1) sends them after the body; the others drop them. An HTTP/1.1
 *     client's chunked trailers stay refused (proxy__body_ready): they are never set from there.
 *   - to the client: when the origin's response ends with trailer fields, the origin side
 *     calls the transport's `trailers` op once, after the last body byte went to `write` and
 *     before `end`, with the fields as the origin sent them (validated by the origin side's
 *     parser). The transport copies what it keeps (HTTP/2: every field but hop-by-hop ones, as a
 *     HEADERS frame with END_STREAM; HTTP/1.1: nothing, its chunked body passes them through as
 *     they came); an origin side that has none never calls it. A gRPC answer of our own
 *     (grpc-status) goes the same way.
 *
 * An exchange can end in a byte tunnel (an origin's WebSocket after its 101; a tcp:// app's
 * WebSocket the gateway ends itself, proxy/tunnel.c): after `tunnel`, read/ready/consume carry
 * raw bytes and `shut` ends the client's direction.
 *
 * Types only, and the few protocol-independent helpers of exchange.c; the parts an owner
 * fills in (the origin connection, the own endpoint's request, the echo's digest) are opaque
 * pointers here. */
#ifndef LATCH_EXCHANGE_H
#define LATCH_EXCHANGE_H

#include "http/http.h"
#include "policy/policy.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct runtime;
struct worker_ctx;
struct svc_tokens;
struct app;
struct app_rt;
struct listener_cfg;
struct buf;
struct upstream;
struct h2up_stream;
struct endpoint_req;
struct endpoint_job;
struct strbuf;
struct timer_queue;
struct exchange;
struct tunnel;

/* The outcome of one step of a state machine (a connection's, an exchange's). */
enum step { STEP_WAIT, STEP_PROGRESS, STEP_CLOSED };

enum read_result { READ_DATA, READ_AGAIN, READ_EOF, READ_ERR };

/* What a client transport does for an exchange it carries. */
struct transport_ops {
    /* Pulls more request bytes from the client (the request body, or the tunnel's bytes). */
    enum read_result (*read)(struct exchange *ex);
    /* Validates the request bytes that arrived (the body's framing); -1: a malformed body. */
    int (*validate)(struct exchange *ex);
    /* The request bytes validated and not yet passed on (in a tunnel: every byte read). */
    struct iovec (*ready)(const struct exchange *ex);
    /* `n` of those bytes were passed on. */
    void (*consume)(struct exchange *ex, size_t n);
    /* Write head: queues the response head for `res` (`tunnel`: a 101 that switches to a byte
     * tunnel). -1 when it cannot be represented (too large). */
    int (*head)(struct exchange *ex, const struct http_response *res, bool tunnel);
    /* Write body: sends what is queued (the head), then `body`; the bytes written (head and
     * body; *from_body of them from `body`), -EAGAIN, or another negative errno. */
    ssize_t (*write)(struct exchange *ex, const struct iovec *body, int n, size_t *from_body);
    /* Bytes queued for the client and not yet written. */
    size_t (*queued)(const struct exchange *ex);
    /* Drops a queued interim head (100 Continue) that a final answer replaces. */
    void (*drop_queued)(struct exchange *ex);
    /* Nothing to do until the next event: the transport lets go of its empty buffers (an idle
     * tunnel holds none). */
    void (*release)(struct exchange *ex);
    /* The client's side ended (EOF seen). */
    bool (*client_eof)(const struct exchange *ex);
    /* The response is complete: the exchange ends (logged and freed); the transport goes on. */
    enum step (*end)(struct exchange *ex);
    /* Answers of our own instead of an origin's response: a complete one (extra_headers:
     * whole lines, or NULL), or an error (a page or JSON, as the client prefers). */
    enum step (*respond)(struct exchange *ex, int status, const char *ctype, const char *body,
                         size_t body_len, const char *extra_headers);
    enum step (*fail)(struct exchange *ex, int status, const char *code, const char *message);
    /* The exchange cannot go on (a client gone, a response cut): logged when `log`, freed, and
     * the client's connection (HTTP/1.1) or stream (HTTP/2) reset. */
    void (*abort)(struct exchange *ex, bool log);
    /* Upgrades to a byte tunnel: from now on bytes both ways, no framing. */
    void (*tunnel)(struct exchange *ex);
    /* Tunnel: no more bytes to the client (its write side shut). */
    void (*shut)(struct exchange *ex);
    /* The deadline that applies now (a timer queue of the transport's owner). */
    void (*arm)(struct exchange *ex, struct timer_queue *q);
    /* Something happened on the exchange's other side (the origin): run it. */
    void (*wake)(struct exchange *ex);
    /* The client's certificate, when one was verified against the listener's client_ca:
     * *verified and its common name (empty when none). */
    void (*client_cert)(const struct exchange *ex, bool *verified, char *cn, size_t cncap);
    /* The listener the client reached (its public scheme and port: route/served.h). */
    const struct listener_cfg *(*listener)(const struct exchange *ex);
    /* The client's connection is TLS (to us; a TLS terminator in front is the listener's). */
    bool (*tls)(const struct exchange *ex);

    /* The gateway's own endpoints (proxy/local.c): */
    /* Reads the rest of a small request body (a form: its length checked already) into `into`,
     * then runs `done` (its step is the exchange's); meanwhile the transport runs its own loop
     * and the client timeout applies between reads. The step to return now. */
    enum step (*read_all)(struct exchange *ex, struct strbuf *into, enum step (*done)(struct exchange *ex));
    /* The exchange waits on something other than its client (a background job, a long poll's
     * news) until `wake`: the transport reads and writes nothing for it meanwhile, and ends it
     * (the exchange freed) if the client goes away. keep_deadline: the deadline armed stays (a
     * long poll's, set by `arm`; when it passes, the transport hands the exchange back to the
     * own endpoints: proxy__local_timeout); otherwise none (a job has its own timeouts). */
    void (*wait)(struct exchange *ex, bool keep_deadline);

    /* Trailers to the client (see the header comment): the response's trailer fields, after
     * its last body byte and before `end`. -1: they cannot be represented (too large); the
     * caller aborts the exchange. NULL in a transport that has no trailers to send (HTTP/1.1). */
    int (*trailers)(struct exchange *ex, const struct http_header *f, size_t n);
};

struct transport {
    const struct transport_ops *ops;
};

/* One request and its response. Everything that outlives the parsed head is copied here,
 * because a transport's buffer is compacted while the body streams. */
struct exchange {
    struct transport *tp;              /* the client side that carries it */
    struct worker_ctx *w;                  /* the worker thread that runs it */

    /* the request: target, framing, the client */
    struct runtime *rt;                /* reference held until the exchange ends */
    char *strs;                        /* one allocation holding the strings below */
    const char *method, *host, *path, *match, *query;
    size_t method_len, host_len, path_len, match_len, query_len;
    bool has_query, head_method, upgrade, expect_continue, wants_html, close_after;
    bool grpc;                 /* content-type application/grpc*: refusals answered the gRPC way */
    bool host_canonical;       /* the Host as sent is ex->host (no trailing dot, default port) */
    bool https;                /* the browser's scheme: the listener's public one */
    const char *origin_host;   /* the origin reached, as a Host names it: ex->host's name and the
                                * listener's public port (route/served.h), not the Host's claim */
    size_t origin_host_len;
    uint8_t minor;
    char request_id[17];
    uint8_t peer[16];                  /* the transport's peer (IPv4 mapped) */
    uint8_t client_ip[16];             /* the client (a trusted proxy's X-Forwarded-For) */
    char client_ip_str[INET6_ADDRSTRLEN];

    /* request body: "ready" bytes at the head of the transport's buffer are validated body
     * bytes not yet passed on; req_left counts body bytes not yet validated (Content-Length) */
    enum http_body req_body;
    uint64_t req_left;
    struct http_chunked req_chunk;
    bool req_done;                     /* the whole body has been validated */
    char *req_trailers;                /* the client's trailer fields (HTTP/2), validated and
                                        * filtered: "name: value\r\n" lines, owned; or NULL */
    size_t req_trailers_len;
    uint32_t rx_ready;

    /* identity, app, decision */
    struct svc_tokens *svc;            /* held while its service token is the identity */
    const struct app *app;
    struct app_rt *art;
    enum access_decision decision;
    const char *policy;
    char *email, *sub, *service;       /* who, for the log and the refusal page */
    bool token_presented;
    uint8_t token_status;              /* enum token_status, when presented and refused */
    char *set_cookie;                  /* a Set-Cookie line (with CRLF) to add to the response */

    /* the origin side */
    struct buf *hb;                    /* the head sent to the origin (echo reflects it) */
    uint32_t hb_sent;
    uint64_t body_sent;
    struct upstream *up;
    struct h2up_stream *h2s;           /* h2c:// and h2:// origins: its stream (proxy/h2up.c) */
    bool up_reused, retried;
    bool res_head_done, res_done, res_close;
    size_t res_scanned;
    enum http_body res_body;
    uint64_t res_left;
    struct http_chunked res_chunk;
    uint32_t ox_ready;
    int status;
    bool tun_up_shut, tun_client_shut; /* tunnel: write sides we shut after an EOF */

    /* answers of our own */
    char *tail;                        /* a generated body too large for one buffer (certs with */
    size_t tail_len, tail_off;         /* many keys): sent after the head */
    struct endpoint_req *lr;           /* own endpoints (/cdn-cgi/access/…) */
    struct endpoint_job *waiting;      /* the background job it waits for (`wait`) */
    struct exchange *park_next;        /* parked (a long poll): its worker's list of them, */
    struct exchange **park_pprev;      /* where it is linked from (NULL: not parked) */
    void *sha;                         /* echo: EVP_MD_CTX, digest of the decoded body */
    uint64_t echo_bytes;
    uint8_t echo_state;                /* echo, HTTP/2 origins: de-chunking state over validated
                                        * bytes (proxy__dechunk) */
    uint64_t echo_left;

    struct tunnel *tun;                /* a tcp:// app's tunnel (proxy/tunnel.c) */

    /* the log line */
    uint64_t bytes_in, bytes_out, start_us;
};

/* A new exchange on transport `tp`, for the worker `w`, from `peer` (16 bytes): its request id
 * drawn from (seed, seq), its start time now, its decision "deny" until one is made. */
struct exchange *exchange_new(struct transport *tp, struct worker_ctx *w, const uint8_t peer[16],
                              uint64_t seed, uint64_t seq);
/* Frees what the core owns (the strings); an owner frees its parts (origin side, own
 * endpoint, references) first. */
void exchange_free(struct exchange *ex);
/* Monotonic microseconds: request durations. */
uint64_t exchange_now_us(void);

#endif
