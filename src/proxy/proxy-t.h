/* Types of the proxy: a client connection, the exchange (one request and its response) and an
 * origin connection. Types only; functions are in proxy.h. */
#ifndef LATCH_PROXY_T_H
#define LATCH_PROXY_T_H

#include "core/buf.h"
#include "core/loop.h"
#include "http/http.h"
#include "policy/policy.h"
#include "token/jwt.h"

#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

struct worker;
struct runtime;
struct app_rt;
struct endpoint_req;
struct endpoint_job;

enum conn_state {
    CS_HANDSHAKE,   /* TLS handshake with the client */
    CS_IDLE,        /* between requests: no exchange, no buffer unless bytes arrived */
    CS_HEAD,        /* reading a request head */
    CS_LOCAL_BODY,  /* the built-in echo origin reading the request body */
    CS_PROXY,       /* exchanging with an origin */
    CS_RESPOND,     /* writing an answer we generated */
    CS_TUNNEL,      /* after 101 Switching Protocols: bytes both ways */
    CS_LINGER,      /* response sent, write side shut: reading what the client still sends */
    CS_LOCAL_FORM,  /* an own endpoint reading its (small) request body */
    CS_WAIT,        /* an own endpoint waiting for a background job */
};

/* One request and its response. Everything that outlives the parsed head is copied here,
 * because the client buffer is compacted while the body streams. */
struct exchange {
    struct runtime *rt;                /* reference held until the exchange ends */
    struct svc_tokens *svc;            /* held while its service token is the identity */
    const struct app *app;
    struct app_rt *art;
    char *strs;                        /* one allocation holding the strings below */
    const char *method, *host, *path, *match, *query;
    size_t method_len, host_len, path_len, match_len, query_len;
    bool has_query, head_method, upgrade, expect_continue, wants_html, close_after;
    bool host_canonical;       /* the Host as sent is ex->host (no trailing dot, default port) */
    bool https;                /* the browser's scheme: the listener's public one */
    const char *origin_host;   /* the origin reached, as a Host names it: ex->host's name and the
                                * listener's public port (route/served.h), not the Host's claim */
    size_t origin_host_len;
    uint8_t minor;
    char request_id[17];
    uint8_t client_ip[16];
    char client_ip_str[INET6_ADDRSTRLEN];

    /* request body: "ready" bytes at the head of the client buffer are validated body bytes
     * not yet passed on; req_left counts body bytes not yet validated (Content-Length) */
    enum http_body req_body;
    uint64_t req_left;
    struct http_chunked req_chunk;
    bool req_done;                     /* the whole body has been validated */
    uint32_t rx_ready;

    struct buf *hb;                    /* the head sent to the origin (echo reflects it) */
    uint32_t hb_sent;
    uint64_t body_sent;

    struct upstream *up;
    bool up_reused, retried;
    bool res_head_done, res_done, res_close;
    size_t res_scanned;
    enum http_body res_body;
    uint64_t res_left;
    struct http_chunked res_chunk;
    uint32_t ox_ready;
    int status;

    bool tun_up_shut, tun_client_shut; /* tunnel: write sides we shut after an EOF */

    EVP_MD_CTX *sha;                   /* echo: digest of the decoded body */
    uint64_t echo_bytes;
    uint8_t echo_state;                /* echo: de-chunking state over validated bytes */
    uint64_t echo_left;

    enum access_decision decision;
    const char *policy;
    char *email, *sub, *service;       /* who, for the log and the refusal page */
    char *set_cookie;                  /* a Set-Cookie line (with CRLF) to add to the response */
    char *tail;                        /* a generated body too large for one buffer (certs with */
    size_t tail_len, tail_off;         /* many keys): sent after the head in c->tx */
    struct endpoint_req *lr;              /* own endpoints (/cdn-cgi/access/…) */
    bool token_presented;
    uint8_t token_status;              /* enum token_status, when presented and refused */
    uint64_t bytes_in, bytes_out, start_us;
};

struct conn {
    struct io_handler io;
    struct worker *w;
    SSL *ssl;
    struct timer timer;
    struct conn *prev, *next;
    struct buf *rx, *tx;               /* from the client; to the client */
    struct exchange *ex;
    struct endpoint_job *waiting;         /* parked on a background job (CS_WAIT) */
    size_t head_scanned;
    uint8_t state;
    uint8_t listener;
    bool closed, in_eof, tls, served_one;
    bool heard;                        /* any event saying the client sent something */
    bool counted;                      /* counted in the worker's per-client connections */
    bool rd_ready;                     /* epoll said readable and no read drained it since */
    bool rd_hup;                       /* the peer shut its side: reads go on until they see EOF */
    uint16_t peer_port;
    uint8_t peer[16];                  /* IPv4 mapped */
};

struct origin_pool {
    char *key;
    struct upstream *idle;
    unsigned nidle;
    struct origin_pool *next;
};

struct upstream {
    struct io_handler io;
    struct worker *w;
    SSL *ssl;
    struct conn *owner;                /* NULL while idle in its pool */
    struct timer timer;                /* idle in the pool */
    struct origin_pool *pool;
    struct upstream *prev, *next;      /* pool idle list, or the worker's dead list */
    struct buf *ox;                    /* bytes from the origin */
    bool connected, handshake_done, closed, in_eof;
    bool rd_ready, rd_hup;
};

#endif
