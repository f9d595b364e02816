/* application/x-www-form-urlencoded (the login forms, query strings), per the WHATWG URL
 * standard's parser: pairs split on '&', '+' is a space, %XX decoded. */
#ifndef LATCH_FORM_H
#define LATCH_FORM_H

#include "core/strbuf.h"

#include <stddef.h>

/* Decodes the value of the first pair named `name` into out (NUL-terminated). Returns its
 * length, or -1 when the name is absent, an escape is malformed, the value holds a NUL or a
 * control character, or it does not fit in cap - 1 bytes. */
int form_get(const char *s, size_t n, const char *name, char *out, size_t cap);

/* How many pairs are named `name` (a parameter sent twice is ambiguous: RFC 6749 §3.1 says a
 * parameter is sent at most once). */
int form_count(const char *s, size_t n, const char *name);

/* Percent-decodes in[0..n) into out (cap bytes, NUL-terminated); '+' stays '+'. -1 when an
 * escape is malformed or the result does not fit. */
int form_pct_decode(const char *in, size_t n, char *out, size_t cap);

/* Appends s[0..n) percent-encoded for a query component (RFC 3986 §3.4): unreserved characters,
 * '/' and ':' are kept, every other byte becomes %XX. */
void form_urlencode(struct strbuf *sb, const char *s, size_t n);

#endif
