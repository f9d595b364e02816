/* The origins (scheme, host, port: RFC 6454) the gateway serves to browsers: an app's host
 * name on the public scheme and port of one of the gateway's listeners. A grant, a redirect
 * after login and every link the gateway makes for a browser go only to such an origin; a
 * Host header or a link naming another port of the same name is not one (cookies do not
 * tell ports apart, so another port of an app's name may belong to someone else). */
#ifndef LATCH_SERVED_H
#define LATCH_SERVED_H

#include "config/config-t.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SERVED_HOST_MAX 264 /* a 253-byte name, or a bracketed IPv6 literal */

struct served_origin {
    bool https;
    uint16_t port;
    char host[SERVED_HOST_MAX]; /* lowercase name or [IPv6] literal, no port */
};

/* The origin a request reached: its listener's public scheme and port, and the name of its
 * (normalized, route_host_normalize) Host. The Host header's own port is the client's claim,
 * not where it connected: it plays no part. -1 when `host` is not a normalized host. */
int served_of_request(const struct listener_cfg *l, const char *host, size_t n,
                      struct served_origin *out);

/* Reads a normalized "host[:port]" that a link names (a login target, a redirect URL's
 * authority). `https`: the scheme the link names, or -1 when it names none (a login target):
 * then the scheme is that of the listener whose public port it is (https when two are). A
 * port left out is the scheme's default (443, else 80 when no scheme is named). Returns 0
 * when some listener's public scheme and port are the origin's, -1 otherwise (an origin the
 * gateway does not serve). */
int served_lookup(const struct config *cfg, int https, const char *host, size_t n,
                  struct served_origin *out);

/* "host" or "host:8080" (the scheme's default port left out): how a browser's Host header
 * names the origin. out holds SERVED_HOST_MAX + 6 bytes. Returns the length. */
int served_hostport(const struct served_origin *o, char *out);
/* "https://host" or "http://host:8080". out holds SERVED_HOST_MAX + 14 bytes. */
int served_url(const struct served_origin *o, char *out);
bool served_same(const struct served_origin *a, const struct served_origin *b);
/* True when the URL (an Origin or a Referer header: scheme://host[:port][/…]) is of origin o;
 * false for anything else ("null", another scheme, port or host, garbage). */
bool served_is(const struct served_origin *o, const char *url);

#endif
