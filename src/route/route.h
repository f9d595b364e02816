/* Which app a request belongs to: host and path patterns of SPEC.md §4, most specific wins. */
#ifndef LATCH_ROUTE_H
#define LATCH_ROUTE_H

#include "config/config-t.h"

#include <stdbool.h>
#include <stddef.h>

struct route_table;

/* Compiles every app's `domains` patterns. Returns NULL and sets *err (malloc'd "message", as
 * "FILE:LINE:COL: message" at the pattern when the config was read from a file) when a pattern
 * is invalid or when two apps declare the very same pattern (after lowercasing and trailing-dot
 * removal; no path and "/STAR" are the same pattern); the message names both apps. The same pattern twice in one app is accepted. The table keeps pointers into `cfg`:
 * it lives as long as the config. Needs nothing from config.c. */
struct route_table *route_build(const struct config *cfg, char **err);
void route_free(struct route_table *rt);

/* Checks one "host[:port][/path]" pattern: 0 valid, -1 invalid with *why set (static text).
 * Host: an [IPv6] literal or dot-separated labels of letters, digits, '-', '_' (one trailing
 * dot allowed, no empty label, <= 253 chars); at most one '*', in the first label, and at
 * least one label after it. Port: 1-65535. Path: '/' then exactly the normalized match form
 * of path_normalize (no dot segments, "//", ";params", escaped unreserved characters or
 * lowercase escapes), '*' being the only wildcard. */
int route_pattern_check(const char *pattern, const char **why);

/* Normalizes a Host header / authority value into out (lowercase, trailing dot removed, port
 * kept without leading zeros): returns its length, or -1 when it is not a valid host[:port].
 * Names are restricted to unreserved characters (letters, digits, - . _ ~): escapes and
 * sub-delims ('*' included) never name a routable host. out holds n + 1 bytes. */
int route_host_normalize(const char *host, size_t n, char *out);

// The app for a normalized host ("name[:port]") and a match path (path_normalize's `match`).
// Host patterns: exact; "*.example.com" = exactly one label; a label partly wild
// ("*test.example.com"). A pattern with a port matches only that port; one without matches
// any port. Path patterns: none or "/*" every path; "/a/*" below /a (not /a); "/a" exactly;
// a '*' inside a segment matches any characters, across segments. Ranking, most specific
// first: exact host over wildcard host (longer literal host first), then longest literal path
// prefix, then fewest wildcards, then most literal path characters ("/a/*/c" over "/a/*"),
// then a pattern with a port over one without, then declaration order. In a partly wild label
// the '*' matches zero or more characters ("*test.example.com" matches "test.example.com");
// a label that is only '*' matches one or more; never a '.'. A port pattern matches only
// when the request host carries that port. An exact host whose paths do not match falls
// through to the wildcard hosts. NULL: no app (404).
const struct app *route_match(const struct route_table *rt, const char *host, size_t host_len,
                              const char *path, size_t path_len);

/* Every pattern that route_match would try for a normalized host ("name[:port]"), whatever the
 * path, in the order it tries them: the exact host's, then the wildcard hosts' that match the
 * name; a pattern naming another port is left out. fn gets the app and the pattern in its
 * canonical form ("host[:port]/path", lowercase, "/STAR" when it had no path). From these
 * alone, in this order, route_build and route_match choose the same app for any path of that
 * host (the command line uses this to pick a token without asking the gateway). */
void route_each_for_host(const struct route_table *rt, const char *host, size_t host_len,
                         void (*fn)(void *arg, const struct app *app, const char *pattern), void *arg);

#endif
