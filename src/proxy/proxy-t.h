/* Types of the proxy: a client connection (the HTTP/1.1 transport of request/exchange.h), an
 * origin connection and the proxy's per-worker state. Types only; functions are in proxy.h. */
#ifndef LATCH_PROXY_T_H
#define LATCH_PROXY_T_H

#include "core/buf.h"
#include "core/loop.h"
#include "http/http.h"
#include "policy/policy.h"
#include "request/exchange.h"
#include "request/worker_ctx.h"
#include "token/jwt.h"

#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

struct runtime;
struct app_rt;
struct endpoint_req;
struct minted;
struct connlimit;
struct h2conn;
struct h2up_worker;

enum conn_state {
    CS_HANDSHAKE,   /* TLS handshake with the client */
    CS_IDLE,        /* between requests: no exchange, no buffer unless bytes arrived */
    CS_HEAD,        /* reading a request head */
    CS_LOCAL_BODY,  /* the built-in echo origin reading the request body */
    CS_PROXY,       /* exchanging with an origin */
    CS_RESPOND,     /* writing an answer we generated */
    CS_TUNNEL,      /* after 101 Switching Protocols: bytes both ways */
    CS_LINGER,      /* response sent, write side shut: reading what the client still sends */
    CS_LOCAL_FORM,  /* an own endpoint reading its (small) request body (read_all) */
    CS_WAIT,        /* an own endpoint waiting for a background job or parked (wait) */
    CS_H2,          /* HTTP/2 (h2.c): its streams carry the exchanges */
};

/* A client connection: the HTTP/1.1 transport (conn.c), carrying one exchange at a time. */
struct conn {
    struct io_handler io;
    struct transport tp;               /* the operations its exchanges reach it by */
    struct worker_ctx *w;
    SSL *ssl;
    struct timer timer;
    struct conn *prev, *next;
    struct buf *rx, *tx;               /* from the client; to the client */
    struct exchange *ex;
    struct h2conn *h2;                 /* CS_H2: the HTTP/2 session (h2.c) */
    struct conn *h2_dirty_next;        /* CS_H2: in the worker's list to write before sleeping */
    bool h2_dirty;
    struct strbuf *form;               /* CS_LOCAL_FORM: the body read into it, */
    enum step (*form_done)(struct exchange *ex); /* then this */
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

/* The proxy's state in one worker (proxy_worker_* in proxy.h); only the worker's thread uses it. */
struct proxy_worker {
    struct {                           /* the proxy's timeouts (config timeouts: …) */
        struct timer_queue header, idle, client, origin_connect, origin_response, linger,
            pool_idle, parked, tunnel_idle, tunnel_tick;
    } timers;
    struct conn *conns;                /* every open client connection */
    struct tunnel *tunnels;            /* the open tunnels to tcp:// apps (tunnel.c) */
    struct timer tunnel_tick;          /* armed while there are: expiring service tokens */
    struct conn *dead;                 /* closed this iteration; freed before sleeping */
    struct conn *h2_dirty;             /* HTTP/2 connections whose streams moved: written once
                                        * before sleeping, whatever number of streams did */
    struct upstream *dead_up;
    struct origin_pool *pools;
    struct h2up_worker *h2up;          /* HTTP/2 origins' pools (h2up.c), made on first use */
    struct exchange *parked;           /* long polls waiting for news (endpoint_park), linked
                                        * through their park_next */
    struct minted *minted;             /* assertions minted for service tokens (identity.c) */
    struct connlimit *climit;          /* the node's open connections per client (connlimit.h) */
    struct worker_ctx_notice cap_notice; /* clients refused at max_connections_per_client */
    uint64_t request_seq, id_seed;     /* request ids */
};

struct upstream {
    struct io_handler io;
    struct worker_ctx *w;
    SSL *ssl;
    struct exchange *owner;            /* NULL while idle in its pool */
    struct timer timer;                /* idle in the pool */
    struct origin_pool *pool;
    struct upstream *prev, *next;      /* pool idle list, or the worker's dead list */
    struct buf *ox;                    /* bytes from the origin */
    bool connected, handshake_done, closed, in_eof;
    bool rd_ready, rd_hup;
};

#endif
