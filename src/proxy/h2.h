/* HTTP/2 to clients (h2.c): conn.c hands a connection over after ALPN chose h2, or when a
 * cleartext listener with `http2: prior_knowledge` sees the client preface. */
#ifndef LATCH_PROXY_H2_H
#define LATCH_PROXY_H2_H

#include "proxy/proxy.h"
#include "core/strbuf.h"

#include <nghttp2/nghttp2.h>

/* The connection speaks HTTP/2 from now on (state CS_H2): its session, our SETTINGS queued;
 * bytes already in c->rx are the client's first. -1: no memory. */
int proxy__h2_start(struct conn *c);
/* One step of the connection: reads frames, runs its streams' exchanges, writes. */
enum step proxy__step_h2(struct conn *c);
/* The connection's own timer: idle with no stream, or a client that takes nothing. */
void proxy__h2_timer(struct conn *c);
/* Before the worker sleeps: the connections whose streams moved (an origin's answer woke them)
 * run once, so the frames of all their streams go out in one write. */
void proxy__h2_flush(struct proxy_worker *pw);
/* Draining: GOAWAY; the streams begun finish. */
void proxy__h2_drain(struct conn *c);
/* Before the connection is freed: its streams and their exchanges. */
void proxy__h2_free(struct conn *c);
/* The header list of a stream, as it arrives (pure: the fuzz target drives these too). */
struct h2_field {
    uint32_t name, name_len, value, value_len; /* offsets in hdr */
};
struct h2_fields {
    struct strbuf hdr;                 /* names and values */
    struct h2_field f[HTTP_MAX_HEADERS];
    size_t nf;
    int32_t p_method, p_scheme, p_authority, p_path, p_protocol; /* field indices, -1 absent */
    size_t list_size;                  /* RFC 9113 §6.5.2 accounting (name + value + 32) */
    bool too_large;                    /* past max_header_list_size or HTTP_MAX_HEADERS: 431 */
};
void proxy__h2_fields_init(struct h2_fields *fl); /* sb_free(&fl->hdr) after */
/* -1: a name or value HTTP/2 calls malformed (CR, LF, NUL in a value; upper case, a colon,
 * controls or spaces in a name; an empty name): the stream is reset. */
int proxy__h2_field_check(const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen);
/* Adds one field (a repeated pseudo-header: -1). Past max_list bytes (name + value + 32 each)
 * fields are counted, not kept (too_large). */
int proxy__h2_field_add(struct h2_fields *fl, const uint8_t *name, size_t nlen, const uint8_t *value,
                        size_t vlen, size_t max_list);
/* The list as an HTTP/1.1 head in `head` (`in_end`: the HEADERS frame ended the stream), read
 * by http_parse_request into req: 0, or the status that refuses it (400: :authority and host
 * disagree, neither, two hosts, what the HTTP/1.1 parser refuses; 414; 431; 501: a CONNECT
 * that is not RFC 8441's for websocket). *chunked: the body (no content-length, more frames to
 * come) is framed chunked for HTTP/1.1.
 * An extended CONNECT (RFC 8441: :protocol websocket, with :scheme and :path) becomes the
 * HTTP/1.1 WebSocket handshake: GET :path with Upgrade: websocket, Connection: upgrade,
 * Sec-WebSocket-Version (the client's, else 13) and Sec-WebSocket-Key `ws_key` (24 characters,
 * ours: a client's is not used over HTTP/2), no body (the stream's DATA are the tunnel's
 * bytes); *websocket is set then. */
int proxy__h2_request(const struct h2_fields *fl, bool in_end, struct strbuf *head, bool *chunked,
                      const char *ws_key, bool *websocket, struct http_request *req);

/* Whether p[0..n) is the client preface or its beginning (*complete: all of it). */
bool proxy__h2_preface(const char *p, size_t n, bool *complete);

#endif
