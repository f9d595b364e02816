/* The capped string buffer and JSON writers of strbuf.h. */
#include "core/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sb_init(struct strbuf *sb, size_t max)
{
    memset(sb, 0, sizeof *sb);
    sb->max = max;
}

void sb_free(struct strbuf *sb)
{
    free(sb->p);
    sb->p = NULL;
    sb->len = sb->cap = 0;
}

void sb_reset(struct strbuf *sb)
{
    sb->len = 0;
    sb->overflow = false;
}

static bool sb__grow(struct strbuf *sb, size_t need)
{
    if (sb->len + need + 1 <= sb->cap)
        return true;
    if (sb->len + need + 1 > sb->max) {
        sb->overflow = true;
        return false;
    }
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap < sb->len + need + 1)
        cap *= 2;
    if (cap > sb->max)
        cap = sb->max;
    char *p = realloc(sb->p, cap);
    if (!p) {
        sb->overflow = true;
        return false;
    }
    sb->p = p;
    sb->cap = cap;
    return true;
}

bool sb_add(struct strbuf *sb, const void *p, size_t n)
{
    if (!sb__grow(sb, n))
        return false;
    memcpy(sb->p + sb->len, p, n);
    sb->len += n;
    sb->p[sb->len] = '\0';
    return true;
}

bool sb_adds(struct strbuf *sb, const char *s)
{
    return sb_add(sb, s, strlen(s));
}

bool sb_addf(struct strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !sb__grow(sb, (size_t)n))
        return false;
    va_start(ap, fmt);
    vsnprintf(sb->p + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
    return true;
}

bool sb_addu(struct strbuf *sb, uint64_t v)
{
    char tmp[24];
    int i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return sb_add(sb, tmp + i, sizeof tmp - (size_t)i);
}

size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; min = 0x10000; }
    else return 0;
    if (len > n)
        return 0;
    unsigned cp = c & (0x3F >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* 1 for the bytes a JSON string holds as they are: printable ASCII but '"' and '\\'. */
static const unsigned char sb__json_plain[256] = {
    [0x20] = 1, [0x21] = 1, [0x23 ... 0x5B] = 1, [0x5D ... 0x7E] = 1,
};

bool sb_json_str(struct strbuf *sb, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    if (!sb__grow(sb, n + 2)) /* most strings need no escape: one growth, then copies */
        return false;
    sb->p[sb->len++] = '"';
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (i < n && sb__json_plain[u[i]])
            i++;
        if (i > run && !sb_add(sb, s + run, i - run))
            return false;
        if (i == n)
            break;
        unsigned c = u[i];
        size_t l = c >= 0x80 ? utf8_len(u + i, n - i) : 0;
        if (l) {
            sb_add(sb, s + i, l);
            i += l;
            continue;
        }
        char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
        if (c == '"' || c == '\\') {
            esc[1] = (char)c;
            sb_add(sb, esc, 2);
        } else if (c == '\n') {
            sb_add(sb, "\\n", 2);
        } else if (c == '\r') {
            sb_add(sb, "\\r", 2);
        } else if (c == '\t') {
            sb_add(sb, "\\t", 2);
        } else {
            sb_add(sb, esc, 6);
        }
        i++;
    }
    return sb_add(sb, "\"", 1);
}

bool sb_json_key(struct strbuf *sb, bool *first, const char *key)
{
    size_t n = strlen(key);
    char lit[64];
    bool plain = n + 4 <= sizeof lit;
    for (size_t i = 0; plain && i < n; i++)
        plain = sb__json_plain[(unsigned char)key[i]];
    if (!plain) { /* a key to escape, or a long one */
        if (!*first)
            sb_add(sb, ",", 1);
        *first = false;
        sb_json_str(sb, key, n);
        return sb_add(sb, ":", 1);
    }
    size_t o = 0; /* `,"key":` in one copy: every key the gateway writes */
    if (!*first)
        lit[o++] = ',';
    *first = false;
    lit[o++] = '"';
    memcpy(lit + o, key, n);
    o += n;
    lit[o++] = '"';
    lit[o++] = ':';
    return sb_add(sb, lit, o);
}

bool sb_json_kv(struct strbuf *sb, bool *first, const char *key, const char *value, size_t n)
{
    sb_json_key(sb, first, key);
    if (!value)
        return sb_add(sb, "null", 4);
    return sb_json_str(sb, value, n);
}
