/* Cookie header scanning (cookie.h). */
#include "http/cookie.h"

#include <stdio.h>
#include <string.h>

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

bool cookie_find(struct http_slice header, const char *name, struct http_slice *value)
{
    const char *cur = header.p, *end = header.p + header.n;
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
        return true;
    }
    return false;
}

size_t cookie_strip(struct http_slice header, const char *name, char *out)
{
    const char *cur = header.p, *end = header.p + header.n;
    struct cookie__pair c;
    size_t n = 0;
    while (cookie__next(&cur, end, &c)) {
        if (cookie__is(&c, name))
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
