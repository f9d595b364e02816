/* HTTP/2 to clients (h2.c): conn.c hands a connection over after ALPN chose h2, or when a
 * cleartext listener with `http2: prior_knowledge` sees the client preface. */
#ifndef LATCH_PROXY_H2_H
#define LATCH_PROXY_H2_H

#include "proxy/proxy.h"

#include <nghttp2/nghttp2.h>

/* The connection speaks HTTP/2 from now on (state CS_H2): its session, our SETTINGS queued;
 * bytes already in c->rx are the client's first. -1: no memory. */
int proxy__h2_start(struct conn *c);
/* One step of the connection: reads frames, runs its streams' exchanges, writes. */
enum step proxy__step_h2(struct conn *c);
/* The connection's own timer: idle with no stream, or a client that takes nothing. */
void proxy__h2_timer(struct conn *c);
/* Draining: GOAWAY; the streams begun finish. */
void proxy__h2_drain(struct conn *c);
/* Before the connection is freed: its streams and their exchanges. */
void proxy__h2_free(struct conn *c);
/* Whether p[0..n) is the client preface or its beginning (*complete: all of it). */
bool proxy__h2_preface(const char *p, size_t n, bool *complete);

#endif
