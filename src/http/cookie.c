/* Cookie header scanning (cookie.h). */
#include "http/cookie.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Calls back for each "name=value" pair: [p, end) is the whole pair, trimmed. */
struct cookie__pair {
    const char *start, *end;      /* the pair */
    const char *name, *name_end;
    const char *val, *val_end;    /* NULL when the pair has no '=' */
};

static bool cookie__next(const char **cur, const char *end, struct cookie__pair *out)
{
    const char *p = *cur;
    while (p < end && (*p == ' ' || *p == '\t' || *p == ';'))
        p++;
    if (p >= end)
        return false;
    const char *semi = memchr(p, ';', (size_t)(end - p));
    const char *pe = semi ? semi : end;
    const char *te = pe;
    while (te > p && (te[-1] == ' ' || te[-1] == '\t'))
        te--;
    out->start = p;
    out->end = te;
    const char *eq = p;
    while (eq < te && *eq != '=')
        eq++;
    if (eq == te)
        eq = NULL;
    out->name = p;
    out->name_end = eq ? eq : te;
    while (out->name_end > p && (out->name_end[-1] == ' ' || out->name_end[-1] == '\t'))
        out->name_end--;
    if (eq) {
        out->val = eq + 1;
        while (out->val < te && (*out->val == ' ' || *out->val == '\t'))
            out->val++;
        out->val_end = te;
    } else {
        out->val = out->val_end = NULL;
    }
    *cur = pe;
    return true;
}

static bool cookie__is(const struct cookie__pair *c, const char *name)
{
    size_t n = strlen(name);
    return c->val && (size_t)(c->name_end - c->name) == n && !memcmp(c->name, name, n);
}

bool cookie_find_from(struct http_slice header, const char *name, size_t *pos, struct http_slice *value)
{
    const char *cur = header.p + (*pos < header.n ? *pos : header.n), *end = header.p + header.n;
    struct cookie__pair c;
    while (cookie__next(&cur, end, &c)) {
        if (!cookie__is(&c, name))
            continue;
        const char *v = c.val, *ve = c.val_end;
        if (ve - v >= 2 && *v == '"' && ve[-1] == '"') {
            v++;
            ve--;
        }
        value->p = v;
        value->n = (size_t)(ve - v);
        *pos = (size_t)(cur - header.p);
        return true;
    }
    *pos = header.n;
    return false;
}

bool cookie_find(struct http_slice header, const char *name, struct http_slice *value)
{
    size_t pos = 0;
    return cookie_find_from(header, name, &pos, value);
}

bool cookie_name_reserved(const char *name, size_t n)
{
    static const char *const exact[] = { "cf_authorization", "__host-cf_authorization",
                                         "__secure-cf_authorization" };
    static const char *const prefix[] = { "latch_", "__host-latch_", "__secure-latch_" };
    for (size_t i = 0; i < sizeof exact / sizeof *exact; i++)
        if (n == strlen(exact[i]) && !strncasecmp(name, exact[i], n))
            return true;
    for (size_t i = 0; i < sizeof prefix / sizeof *prefix; i++)
        if (n >= strlen(prefix[i]) && !strncasecmp(name, prefix[i], strlen(prefix[i])))
            return true;
    return false;
}

size_t cookie_strip_reserved(struct http_slice header, char *out)
{
    const char *cur = header.p, *end = header.p + header.n;
    struct cookie__pair c;
    size_t n = 0;
    while (cookie__next(&cur, end, &c)) {
        if (cookie_name_reserved(c.name, (size_t)(c.name_end - c.name)))
            continue;
        if (n) {
            memcpy(out + n, "; ", 2);
            n += 2;
        }
        memcpy(out + n, c.start, (size_t)(c.end - c.start));
        n += (size_t)(c.end - c.start);
    }
    return n;
}

bool cookie_set_reserved(struct http_slice set_cookie)
{
    const char *cur = set_cookie.p, *end = set_cookie.p + set_cookie.n;
    const char *semi = memchr(cur, ';', set_cookie.n);
    struct cookie__pair c;
    /* the name-value pair is what precedes the first ';', even when it is empty */
    if (!cookie__next(&cur, semi ? semi : end, &c))
        return false;
    /* a nameless cookie ("=CF_Authorization=x"): RFC 6265bis browsers keep it and send its
     * value alone, which reads as that name: never from an origin */
    return c.name_end == c.name || cookie_name_reserved(c.name, (size_t)(c.name_end - c.name));
}

char *cookie_set_line(const char *name, const char *value, size_t value_len, const char *path,
                      int64_t max_age, bool secure)
{
    char *s = NULL;
    if (asprintf(&s, "Set-Cookie: %s=%.*s; Path=%s; Max-Age=%lld; HttpOnly; SameSite=Lax%s\r\n",
                 name, max_age > 0 ? (int)value_len : 0, value, path,
                 (long long)(max_age > 0 ? max_age : 0), secure ? "; Secure" : "") < 0)
        return NULL;
    return s;
}

void cookie_own_name(const char *base, bool https, char out[COOKIE_OWN_NAME_MAX])
{
    snprintf(out, COOKIE_OWN_NAME_MAX, "%s%s", https ? COOKIE_HOST_PREFIX : "", base);
}

char *cookie_own_set_line(const char *base, const char *value, const char *path, int64_t max_age,
                          bool https, bool secure)
{
    char name[COOKIE_OWN_NAME_MAX];
    cookie_own_name(base, https, name);
    return cookie_set_line(name, value, strlen(value), https ? "/" : path, max_age, secure || https);
}

#define COOKIE_PAIR_CONTEXT "latch token cookie pair v1"

void cookie_token_pair(const unsigned char key[32], const char *tok, size_t n, char out[33])
{
    unsigned char h[16];
    size_t tail = n < 64 ? n : 64;
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, 32, sizeof h);
    crypto_generichash_update(&st, (const unsigned char *)COOKIE_PAIR_CONTEXT, sizeof COOKIE_PAIR_CONTEXT - 1);
    crypto_generichash_update(&st, (const unsigned char *)tok + n - tail, tail);
    crypto_generichash_final(&st, h, sizeof h);
    sodium_bin2hex(out, 33, h, sizeof h);
}

char *cookie_token_lines(const unsigned char key[32], const char *tok, size_t n, int64_t max_age,
                         bool https, bool secure)
{
    char *c1 = cookie_set_line(COOKIE_TOKEN, tok, n, "/", max_age, secure), *c2 = NULL, *both = NULL;
    if (!c1 || !https)
        return c1;
    char tag[33] = "";
    if (max_age > 0)
        cookie_token_pair(key, tok, n, tag);
    c2 = cookie_own_set_line(COOKIE_TOKEN_PAIR, tag, "/", max_age, true, true);
    if (c2 && asprintf(&both, "%s%s", c1, c2) < 0)
        both = NULL;
    free(c1);
    free(c2);
    return both;
}

bool cookie_token_find(const unsigned char key[32], const struct http_slice *hdrs, size_t n,
                       bool https, struct http_slice *tok)
{
    struct http_slice pair = { NULL, 0 };
    char pname[COOKIE_OWN_NAME_MAX];
    if (https) {
        cookie_own_name(COOKIE_TOKEN_PAIR, true, pname);
        for (size_t i = 0; i < n && !pair.p; i++)
            if (!cookie_find(hdrs[i], pname, &pair))
                pair.p = NULL;
        if (!pair.p || pair.n != 32)
            return false;
    }
    for (size_t i = 0; i < n; i++) {
        size_t pos = 0;
        struct http_slice v;
        while (cookie_find_from(hdrs[i], COOKIE_TOKEN, &pos, &v)) {
            if (!https) {
                *tok = v;
                return true;
            }
            char tag[33];
            cookie_token_pair(key, v.p, v.n, tag);
            if (sodium_memcmp(tag, pair.p, 32) == 0) {
                *tok = v;
                return true;
            }
        }
    }
    return false;
}
