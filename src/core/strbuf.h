/* A growable byte string with a hard cap (curl's dynbuf idea), and the JSON writing helpers
 * that log lines, the echo origin and JSON answers share. */
#ifndef LATCH_STRBUF_H
#define LATCH_STRBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strbuf {
    char *p;
    size_t len, cap, max; /* max: appends beyond it fail and set `overflow` */
    bool overflow;
};

void sb_init(struct strbuf *sb, size_t max);
void sb_free(struct strbuf *sb);
void sb_reset(struct strbuf *sb);
bool sb_add(struct strbuf *sb, const void *p, size_t n);
bool sb_adds(struct strbuf *sb, const char *s);
bool sb_addf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool sb_addu(struct strbuf *sb, uint64_t v);

/* JSON: a quoted, escaped string (RFC 8259 §7); bytes >= 0x80 pass as they are when they form
 * valid UTF-8 and are written as \u00XX otherwise, so the output is always valid JSON. */
bool sb_json_str(struct strbuf *sb, const char *s, size_t n);
/* `,"key":` (the comma only when the object already has a member: `first` tracks it). */
bool sb_json_key(struct strbuf *sb, bool *first, const char *key);
/* `,"key":"value"` or `,"key":null` when value is NULL. */
bool sb_json_kv(struct strbuf *sb, bool *first, const char *key, const char *value, size_t n);

/* Length of the valid UTF-8 sequence of 2-4 bytes at s (n bytes readable), 0 when it is not
 * one (RFC 3629 §4: no overlong forms, no surrogates, nothing past U+10FFFF). */
size_t utf8_len(const unsigned char *s, size_t n);

#endif
