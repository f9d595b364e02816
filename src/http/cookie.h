/* The Cookie request header (RFC 6265 §4.2, §5.4): finding one cookie, and removing it before
 * the header is forwarded; and the one way the gateway writes a Set-Cookie line. */
#ifndef LATCH_COOKIE_H
#define LATCH_COOKIE_H

#include "http/http.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Finds the value of the cookie `name` (case-sensitive, as RFC 6265 says) in one Cookie header
 * value. Pairs are separated by ';' and optional spaces; a pair without '=' is skipped; a
 * value in double quotes is returned without them. Returns true and sets *value when found
 * (the first occurrence). */
bool cookie_find(struct http_slice header, const char *name, struct http_slice *value);

/* Copies the header value into out without every cookie named `name`; returns the new
 * length (0: nothing left, drop the header). out holds 2 * header.n + 2 bytes (pairs are
 * joined again with "; "). */
size_t cookie_strip(struct http_slice header, const char *name, char *out);

/* "Set-Cookie: NAME=VALUE; Path=PATH; Max-Age=N; HttpOnly; SameSite=Lax[; Secure]\r\n" (SPEC.md
 * §5), malloc'ed; max_age <= 0 clears the cookie (empty value, Max-Age=0). `value_len` bytes of
 * value (values are tokens, ids, base64url: never quoted). NULL when out of memory. */
char *cookie_set_line(const char *name, const char *value, size_t value_len, const char *path,
                      int64_t max_age, bool secure);

/* The gateway's own short-lived cookies (a login's flow, its binding…). On an origin reached
 * over https their name takes the "__Host-" prefix and their Path is / (RFC 6265bis
 * §4.1.3.2): a browser takes such a cookie only from that very origin, over TLS, without
 * Domain, so a sibling host can neither plant nor overwrite it. On plain http (loopback
 * setups) the base name, at `path`. */
#define COOKIE_HOST_PREFIX "__Host-"
#define COOKIE_OWN_NAME_MAX 64
/* The name the cookie `base` has on such an origin (base is at most 56 bytes). */
void cookie_own_name(const char *base, bool https, char out[COOKIE_OWN_NAME_MAX]);
/* Its Set-Cookie line (cookie_set_line); max_age <= 0 clears it. */
char *cookie_own_set_line(const char *base, const char *value, const char *path, int64_t max_age,
                          bool https, bool secure);

#endif
