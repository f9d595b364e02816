/* The strict JSON reader of a JWT's header and payload (claims.h). */
#include "token/claims.h"
#include "core/strbuf.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CLAIMS_NUMBER_MAX 64 /* characters of one number: longer ones are refused */

struct claims__reader {
    char *p, *end;
    struct claims *out;
};

static void claims__ws(struct claims__reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int claims__hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

/* A string at '"', unescaped in place (its text never grows: an escape is longer than what it
 * stands for) and NUL-terminated there; *s set to it. Refuses controls, bad escapes, lone or
 * misordered surrogates, \u0000 and invalid UTF-8. */
static int claims__string(struct claims__reader *r, char **s)
{
    char *w = ++r->p, *start = w;
    while (r->p < r->end) {
        unsigned char c = (unsigned char)*r->p;
        if (c == '"') {
            r->p++;
            *w = '\0';
            *s = start;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c >= 0x80) {
            size_t l = utf8_len((const unsigned char *)r->p, (size_t)(r->end - r->p));
            if (!l)
                return -1;
            memmove(w, r->p, l);
            w += l;
            r->p += l;
            continue;
        }
        if (c != '\\') {
            *w++ = (char)c;
            r->p++;
            continue;
        }
        if (r->end - r->p < 2)
            return -1;
        char e = r->p[1];
        r->p += 2;
        switch (e) {
        case '"': *w++ = '"'; continue;
        case '\\': *w++ = '\\'; continue;
        case '/': *w++ = '/'; continue;
        case 'b': *w++ = '\b'; continue;
        case 'f': *w++ = '\f'; continue;
        case 'n': *w++ = '\n'; continue;
        case 'r': *w++ = '\r'; continue;
        case 't': *w++ = '\t'; continue;
        case 'u': break;
        default: return -1;
        }
        unsigned cp, lo;
        if (r->end - r->p < 4 || claims__hex4(r->p, &cp) != 0)
            return -1;
        r->p += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return -1; /* a low surrogate first */
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u' || claims__hex4(r->p + 2, &lo) != 0 ||
                lo < 0xDC00 || lo > 0xDFFF)
                return -1;
            r->p += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (cp == 0)
            return -1; /* a NUL would cut the string short */
        if (cp < 0x80) {
            *w++ = (char)cp;
        } else if (cp < 0x800) {
            *w++ = (char)(0xC0 | cp >> 6);
            *w++ = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            *w++ = (char)(0xE0 | cp >> 12);
            *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
            *w++ = (char)(0x80 | (cp & 0x3F));
        } else {
            *w++ = (char)(0xF0 | cp >> 18);
            *w++ = (char)(0x80 | ((cp >> 12) & 0x3F));
            *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
            *w++ = (char)(0x80 | (cp & 0x3F));
        }
    }
    return -1;
}

/* A number (RFC 8259 §6): an integer when it has no fraction nor exponent and fits in int64
 * (a larger one is refused, as jansson refuses it), else a finite real. */
static int claims__number(struct claims__reader *r, struct claims_member *m)
{
    const char *s = r->p;
    const char *p = s;
    bool real = false;
    if (p < r->end && *p == '-')
        p++;
    if (p >= r->end)
        return -1;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    } else {
        return -1;
    }
    if (p < r->end && *p == '.') {
        real = true;
        if (++p >= r->end || *p < '0' || *p > '9')
            return -1;
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < r->end && (*p == 'e' || *p == 'E')) {
        real = true;
        p++;
        if (p < r->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= r->end || *p < '0' || *p > '9')
            return -1;
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    }
    size_t n = (size_t)(p - s);
    char tmp[CLAIMS_NUMBER_MAX + 1];
    if (n > CLAIMS_NUMBER_MAX)
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    errno = 0;
    if (!real) {
        long long v = strtoll(tmp, NULL, 10);
        if (errno == ERANGE)
            return -1;
        if (m) {
            m->kind = CLAIMS_INTEGER;
            m->integer = v;
        }
    } else {
        double d = strtod(tmp, NULL);
        if (errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL))
            return -1;
        if (m) {
            m->kind = CLAIMS_REAL;
            m->real = d;
        }
    }
    r->p = (char *)p;
    return 0;
}

static int claims__push(struct claims *c, const char *s)
{
    if (c->nstrs == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        const char **n = realloc(c->strs, cap * sizeof *n);
        if (!n)
            return -1;
        c->strs = n;
        c->cap = cap;
    }
    c->strs[c->nstrs++] = s;
    return 0;
}

static bool claims__word(struct claims__reader *r, const char *w, size_t n)
{
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0)
        return false;
    r->p += n;
    return true;
}

/* Any value. `m`: the top-level member it belongs to (its kind and value are set), NULL for
 * a nested one; `keep`: a string inside a top-level array (kept in strs). */
static int claims__value(struct claims__reader *r, int depth, struct claims_member *m, bool keep);

static int claims__array(struct claims__reader *r, int depth, struct claims_member *m)
{
    if (depth > CLAIMS_MAX_DEPTH)
        return -1;
    r->p++;
    if (m) {
        m->kind = CLAIMS_ARRAY;
        m->first = r->out->nstrs;
        m->strings = true;
    }
    claims__ws(r);
    if (r->p < r->end && *r->p == ']') {
        r->p++;
        return 0;
    }
    for (;;) {
        claims__ws(r);
        if (r->p >= r->end)
            return -1;
        if (m && *r->p != '"')
            m->strings = false;
        if (claims__value(r, depth + 1, NULL, m != NULL) != 0)
            return -1;
        claims__ws(r);
        if (r->p >= r->end)
            return -1;
        if (*r->p == ']') {
            r->p++;
            break;
        }
        if (*r->p++ != ',')
            return -1;
    }
    if (m)
        m->count = r->out->nstrs - m->first;
    return 0;
}

/* An object; duplicate names are refused at every depth (jansson's JSON_REJECT_DUPLICATES);
 * at the top level (depth 1) its members are recorded. */
static int claims__object(struct claims__reader *r, int depth)
{
    const char *names[CLAIMS_MAX_MEMBERS]; /* a nested object's, for the duplicate check */
    size_t nnames = 0;
    if (depth > CLAIMS_MAX_DEPTH)
        return -1;
    r->p++;
    claims__ws(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        return 0;
    }
    for (;;) {
        claims__ws(r);
        char *name;
        if (r->p >= r->end || *r->p != '"' || claims__string(r, &name) != 0)
            return -1;
        claims__ws(r);
        if (r->p >= r->end || *r->p++ != ':')
            return -1;
        claims__ws(r);
        struct claims_member *m = NULL;
        if (depth == 1) {
            struct claims *c = r->out;
            for (size_t i = 0; i < c->n; i++)
                if (!strcmp(c->m[i].name, name))
                    return -1; /* a name twice: which one counts would be anybody's guess */
            if (c->n == CLAIMS_MAX_MEMBERS)
                return -1;
            m = &c->m[c->n++];
            memset(m, 0, sizeof *m);
            m->name = name;
        } else {
            for (size_t i = 0; i < nnames; i++)
                if (!strcmp(names[i], name))
                    return -1;
            if (nnames == CLAIMS_MAX_MEMBERS)
                return -1;
            names[nnames++] = name;
        }
        if (claims__value(r, depth + 1, m, false) != 0)
            return -1;
        claims__ws(r);
        if (r->p >= r->end)
            return -1;
        if (*r->p == '}') {
            r->p++;
            return 0;
        }
        if (*r->p++ != ',')
            return -1;
    }
}

static int claims__value(struct claims__reader *r, int depth, struct claims_member *m, bool keep)
{
    if (r->p >= r->end)
        return -1;
    char *s;
    switch (*r->p) {
    case '"':
        if (claims__string(r, &s) != 0)
            return -1;
        if (m) {
            m->kind = CLAIMS_STRING;
            m->first = r->out->nstrs;
            m->count = 1;
            m->strings = true;
        }
        return (m || keep) ? claims__push(r->out, s) : 0;
    case '{':
        if (m)
            m->kind = CLAIMS_OBJECT;
        return claims__object(r, depth);
    case '[':
        return claims__array(r, depth, m);
    case 't':
        if (m)
            m->kind = CLAIMS_TRUE;
        return claims__word(r, "true", 4) ? 0 : -1;
    case 'f':
        if (m)
            m->kind = CLAIMS_FALSE;
        return claims__word(r, "false", 5) ? 0 : -1;
    case 'n':
        if (m)
            m->kind = CLAIMS_NULL;
        return claims__word(r, "null", 4) ? 0 : -1;
    default:
        return claims__number(r, m);
    }
}

int claims_parse(char *buf, size_t len, struct claims *out)
{
    memset(out, 0, sizeof *out);
    struct claims__reader r = { buf, buf + len, out };
    claims__ws(&r);
    if (r.p >= r.end || *r.p != '{' || claims__object(&r, 1) != 0)
        goto bad;
    claims__ws(&r);
    if (r.p != r.end)
        goto bad;
    return 0;
bad:
    claims_free(out);
    return -1;
}

void claims_free(struct claims *c)
{
    free(c->strs);
    c->strs = NULL;
    c->n = c->nstrs = c->cap = 0;
}

const struct claims_member *claims_get(const struct claims *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->m[i].name, name))
            return &c->m[i];
    return NULL;
}
