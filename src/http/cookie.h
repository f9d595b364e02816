/* The Cookie request header (RFC 6265 §4.2, §5.4): finding one cookie, and removing the
 * gateway's own before the header is forwarded; an origin's Set-Cookie for the gateway's own
 * names; and the one way the gateway writes a Set-Cookie line. */
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

/* Whether a cookie name is one of the gateway's own, which an origin never receives and never
 * sets: CF_Authorization, __Host-CF_Authorization, __Secure-CF_Authorization, and every name
 * starting with latch_, __Host-latch_ or __Secure-latch_ (flow, binding and later cookies).
 * Case-insensitive: browsers match the __Host-/__Secure- prefixes in any case, and an origin's
 * cookie differing from ours only in case would still shadow ours in some parser. */
bool cookie_name_reserved(const char *name, size_t n);

/* The same, from byte *pos of the header on, and *pos after the pair found: for a name the
 * header holds more than once (a cookie a sibling host set with Domain= beside our own). */
bool cookie_find_from(struct http_slice header, const char *name, size_t *pos, struct http_slice *value);

/* Copies the header value into out without every cookie whose name is reserved (a pair without
 * '=' is judged by its whole text); returns the new length (0: nothing left, drop the header).
 * out holds 2 * header.n + 2 bytes (pairs are joined again with "; "). */
size_t cookie_strip_reserved(struct http_slice header, char *out);

/* Whether a Set-Cookie field value (RFC 6265 §5.2) sets a reserved cookie: its name is what
 * precedes the first '=' of the part before the first ';', trimmed; without '=' that whole
 * part (a browser then sets a cookie with an empty name whose value is that text). */
bool cookie_set_reserved(struct http_slice set_cookie);

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


/* The token cookie, CF_Authorization (SPEC.md §5: its name is the contract), and on an https
 * origin its pair, __Host-latch_pair: a keyed tag of the very token. Cookies do not tell ports
 * apart, and a sibling host may set one with Domain=: a CF_Authorization that another port or
 * host planted (the attacker's own token: the victim would act as him) comes without the pair,
 * which only this origin over TLS can set, and is not taken. On plain http (loopback setups)
 * every port of a host name is trusted: there is no pair. `key` is the runtime secret. */
#define COOKIE_TOKEN "CF_Authorization"
#define COOKIE_TOKEN_PAIR "latch_pair"
/* Set-Cookie lines (malloc'd) for the token: CF_Authorization at Path=/ and, on https, its
 * pair; max_age <= 0 clears them. */
char *cookie_token_lines(const unsigned char key[32], const char *tok, size_t n, int64_t max_age,
                         bool https, bool secure);
/* The pair's value for a token: 32 hex digits, a keyed hash of the token's last 64 bytes (its
 * signature: tokens we signed differ there). Given to the holder of a valid token, for clients
 * that carry it as a cookie (latch curl -L). */
void cookie_token_pair(const unsigned char key[32], const char *tok, size_t n, char out[33]);
/* The token a request's Cookie headers (`hdrs`, n of them) carry: on plain http the first
 * CF_Authorization; on https the one whose tag the pair holds. False when there is none. */
bool cookie_token_find(const unsigned char key[32], const struct http_slice *hdrs, size_t n,
                       bool https, struct http_slice *tok);

#endif
