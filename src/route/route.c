/* Which app a request belongs to (SPEC.md §4): the apps' "host[:port][/path]" patterns compiled
 * once into a ranked table, so a lookup returns the most specific matching app. */
#include "route/route.h"

#include "http/path.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUTE_MAX_HOST 253 /* RFC 1035 §2.3.4, without the trailing dot */

struct route_entry {
    const struct app *app;
    size_t app_idx, dom_idx; /* declaration order, the last tie-break */
    char *host;              /* lowercase, without port and trailing dot; '*' kept */
    size_t host_len;
    bool wild;
    size_t star;             /* index of the '*' in host (wild only) */
    int port;                /* -1: any port */
    char *path;              // glob; "/*" when the pattern had none
    size_t path_len;
    size_t path_lit;         /* bytes before the first '*' */
    size_t path_wild;        /* number of '*' */
    size_t path_chars;       /* bytes other than '*' */
    char *canon;             /* "host[:port]path": duplicates and messages */
};

/* Exact hosts: open addressing over the distinct host names, each naming its run of entries
 * in `exact` (sorted by host, then rank). */
struct route_slot {
    const char *host; /* NULL: empty slot */
    size_t host_len;
    size_t first, count;
};

struct route_table {
    struct route_entry *exact;
    size_t nexact;
    struct route_entry *wild; /* in rank order */
    size_t nwild;
    struct route_slot *slots;
    size_t nslots; /* power of two */
};

static void route_seterr(char **err, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    *err = NULL;
    if (n < 0)
        return;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    *err = s;
}

static inline char route_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

static inline bool route_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* 1 to 5 digits, at most 65535; -1 otherwise. */
static long route_port(const char *p, size_t n)
{
    long v = 0;
    if (n == 0 || n > 5)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!route_digit(p[i]))
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v <= 65535 ? v : -1;
}

/* "[v6]" with the brackets: a valid IPv6 address inside (no zone id, no IPvFuture). */
static bool route_ipv6_literal(const char *p, size_t n)
{
    char tmp[INET6_ADDRSTRLEN + 1];
    struct in6_addr a6;
    if (n < 3 || p[0] != '[' || p[n - 1] != ']' || n - 2 >= sizeof tmp)
        return false;
    memcpy(tmp, p + 1, n - 2);
    tmp[n - 2] = '\0';
    return inet_pton(AF_INET6, tmp, &a6) == 1;
}

/* The parts of a pattern, as offsets into it. */
struct route_parts {
    size_t host_n;        /* host is pattern[0..host_n), trailing dot included */
    long port;            /* -1: none */
    size_t path_off;      /* path is pattern[path_off..), empty when none */
};

/* Splits and checks "host[:port][/path]". Host: an [IPv6] literal, or dot-separated labels of
 * letters, digits, '-' and '_' (one trailing dot allowed), with at most one '*', in the first
 * label, and at least one label after that one ("*" alone, a wildcard for every host, is
 * refused). Port: 1-65535. Path: starts with
 * '/' and is already in the normalized match form of path_normalize (no dot segments, no "//",
 * no ";param", unreserved characters not escaped, escapes uppercase), so that it can be
 * compared with requests byte for byte; '*' is the only wildcard. */
static int route_parse(const char *pat, struct route_parts *out, const char **why)
{
    size_t n = strlen(pat);
    size_t i = 0;
    if (n == 0) {
        *why = "empty pattern";
        return -1;
    }
    if (pat[0] == '[') {
        const char *close = memchr(pat, ']', n);
        if (!close || !route_ipv6_literal(pat, (size_t)(close - pat) + 1)) {
            *why = "invalid IPv6 literal";
            return -1;
        }
        i = (size_t)(close - pat) + 1;
    } else {
        size_t label = 0, stars = 0, dots = 0;
        bool star_label = false;
        for (; i < n && pat[i] != ':' && pat[i] != '/'; i++) {
            char c = route_lower(pat[i]);
            if (c == '.') {
                if (label == 0) {
                    *why = "empty label in host";
                    return -1;
                }
                dots++;
                label = 0;
                continue;
            }
            if (c == '*') {
                if (++stars > 1 || dots > 0) {
                    *why = "a '*' is allowed once, in the first label of the host";
                    return -1;
                }
                star_label = true;
            } else if (!((c >= 'a' && c <= 'z') || route_digit(c) || c == '-' || c == '_')) {
                *why = "invalid character in host";
                return -1;
            }
            label++;
        }
        if (i == 0 || (label == 0 && dots == 0)) {
            *why = "empty host";
            return -1;
        }
        size_t name_n = label == 0 ? i - 1 : i; /* without the trailing dot */
        if (name_n > ROUTE_MAX_HOST) {
            *why = "host longer than 253 characters";
            return -1;
        }
        if (star_label && (dots == 0 || (dots == 1 && label == 0))) {
            *why = "a wildcard host needs a domain after its first label";
            return -1;
        }
    }
    out->host_n = i;
    out->port = -1;
    if (i < n && pat[i] == ':') {
        size_t ps = ++i;
        while (i < n && pat[i] != '/')
            i++;
        out->port = route_port(pat + ps, i - ps);
        if (out->port <= 0) {
            *why = "port must be a number from 1 to 65535";
            return -1;
        }
    }
    out->path_off = i;
    if (i == n)
        return 0;
    if (pat[i] != '/') {
        *why = "invalid host";
        return -1;
    }
    size_t pn = n - i;
    char *fwd = malloc(pn + 2), *match = malloc(pn + 2);
    int rc = -1;
    size_t fl, ml;
    if (!fwd || !match) {
        *why = "out of memory";
    } else if (path_normalize(pat + i, pn, fwd, &fl, match, &ml) != 0) {
        *why = "invalid path (escapes, controls, backslash or '#')";
    } else if (ml != pn || memcmp(match, pat + i, pn) != 0) {
        *why = "path is not in normalized form (dot segments, '//', ';params', escaped unreserved "
               "characters or lowercase escapes)";
    } else {
        rc = 0;
    }
    free(fwd);
    free(match);
    return rc;
}

int route_pattern_check(const char *pattern, const char **why)
{
    struct route_parts parts;
    const char *dummy;
    return route_parse(pattern, &parts, why ? why : &dummy);
}

int route_host_normalize(const char *host, size_t n, char *out)
{
    size_t i = 0, o = 0;
    if (n == 0)
        return -1;
    if (host[0] == '[') {
        const char *close = memchr(host, ']', n);
        if (!close || !route_ipv6_literal(host, (size_t)(close - host) + 1))
            return -1;
        for (; host + i <= close; i++)
            out[o++] = route_lower(host[i]);
    } else {
        /* reg-name restricted to unreserved characters: sub-delims and escapes never name a
         * real host, and '*' must not reach the wildcard matcher. */
        for (; i < n && host[i] != ':'; i++) {
            char c = route_lower(host[i]);
            if (!((c >= 'a' && c <= 'z') || route_digit(c) || c == '-' || c == '.' || c == '_' ||
                  c == '~'))
                return -1;
            out[o++] = c;
        }
        if (o > 0 && out[o - 1] == '.')
            o--; /* "example.com." is "example.com" */
        if (o == 0)
            return -1;
    }
    if (i < n) {
        if (host[i] != ':')
            return -1;
        long port = route_port(host + i + 1, n - i - 1);
        if (port < 0)
            return -1;
        o += (size_t)sprintf(out + o, ":%ld", port); /* canonical: no leading zeros */
    }
    out[o] = '\0';
    return (int)o;
}

/* Ranking (route.h): wildcard hosts with more literal characters first; then the longest
 * literal path prefix; then the fewest '*'; then the most literal path characters (for
 * "/a/x/c", the pattern "/a/STAR/c" wins over "/a/STAR"); then a pattern naming the port
 * before one matching any port; then declaration order. Exact hosts are also grouped by name. */
static int route_rank_cmp(const void *a, const void *b)
{
    const struct route_entry *x = a, *y = b;
    if (!x->wild) {
        int c = strcmp(x->host, y->host);
        if (c)
            return c;
    } else if (x->host_len != y->host_len) {
        return x->host_len > y->host_len ? -1 : 1;
    }
    if (x->path_lit != y->path_lit)
        return x->path_lit > y->path_lit ? -1 : 1;
    if (x->path_wild != y->path_wild)
        return x->path_wild < y->path_wild ? -1 : 1;
    if (x->path_chars != y->path_chars)
        return x->path_chars > y->path_chars ? -1 : 1;
    if ((x->port >= 0) != (y->port >= 0))
        return x->port >= 0 ? -1 : 1;
    if (x->app_idx != y->app_idx)
        return x->app_idx < y->app_idx ? -1 : 1;
    return x->dom_idx < y->dom_idx ? -1 : x->dom_idx > y->dom_idx;
}

static uint64_t route_hash(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3u;
    }
    return h;
}

static void route_entry_free(struct route_entry *e)
{
    free(e->host);
    free(e->path);
    free(e->canon);
}

void route_free(struct route_table *rt)
{
    if (!rt)
        return;
    for (size_t i = 0; i < rt->nexact; i++)
        route_entry_free(&rt->exact[i]);
    for (size_t i = 0; i < rt->nwild; i++)
        route_entry_free(&rt->wild[i]);
    free(rt->exact);
    free(rt->wild);
    free(rt->slots);
    free(rt);
}

/* Compiles one valid pattern into e. */
static int route_compile(const char *pat, const struct route_parts *parts, struct route_entry *e)
{
    size_t hn = parts->host_n;
    if (hn > 1 && pat[hn - 1] == '.')
        hn--;
    e->host = malloc(hn + 1);
    const char *path = pat[parts->path_off] ? pat + parts->path_off : "/*";
    e->path = strdup(path);
    e->canon = malloc(hn + 8 + strlen(path));
    if (!e->host || !e->path || !e->canon)
        return -1;
    for (size_t i = 0; i < hn; i++)
        e->host[i] = route_lower(pat[i]);
    e->host[hn] = '\0';
    e->host_len = hn;
    char *star = memchr(e->host, '*', hn);
    e->wild = star != NULL;
    e->star = star ? (size_t)(star - e->host) : 0;
    e->port = (int)parts->port;
    e->path_len = strlen(e->path);
    e->path_lit = strcspn(e->path, "*");
    e->path_wild = 0;
    for (size_t i = 0; i < e->path_len; i++)
        e->path_wild += e->path[i] == '*';
    e->path_chars = e->path_len - e->path_wild;
    if (e->port >= 0)
        sprintf(e->canon, "%s:%d%s", e->host, e->port, e->path);
    else
        sprintf(e->canon, "%s%s", e->host, e->path);
    return 0;
}

struct route_table *route_build(const struct config *cfg, char **err)
{
    struct route_table *rt = calloc(1, sizeof *rt);
    struct route_entry *all = NULL;
    size_t total = 0, nall = 0;
    if (err)
        *err = NULL;
    if (!rt)
        goto oom;
    for (size_t a = 0; a < cfg->napps; a++)
        total += cfg->apps[a].ndomains;
    all = calloc(total ? total : 1, sizeof *all);
    if (!all)
        goto oom;

    for (size_t a = 0; a < cfg->napps; a++) {
        const struct app *app = &cfg->apps[a];
        for (size_t d = 0; d < app->ndomains; d++) {
            const char *pat = app->domains[d];
            struct route_parts parts;
            const char *why = NULL;
            /* the pattern's place in the file, when the config was read from one */
            char at[64] = "";
            if (cfg->path && app->domain_pos && app->domain_pos[d].line)
                snprintf(at, sizeof at, ":%d:%d", app->domain_pos[d].line, app->domain_pos[d].col);
            const char *file = at[0] ? cfg->path : "", *sep = at[0] ? ": " : "";
            if (route_parse(pat, &parts, &why) != 0) {
                route_seterr(err, "%s%s%sapp \"%s\": domain \"%s\": %s", file, at, sep, app->name,
                             pat, why);
                goto fail;
            }
            struct route_entry *e = &all[nall++];
            e->app = app;
            e->app_idx = a;
            e->dom_idx = d;
            if (route_compile(pat, &parts, e) != 0)
                goto oom;
            for (size_t k = 0; k + 1 < nall; k++) {
                if (strcmp(all[k].canon, e->canon) != 0)
                    continue;
                if (all[k].app == app) { /* the same app twice: harmless, keep one */
                    route_entry_free(e);
                    memset(e, 0, sizeof *e);
                    nall--;
                    break;
                }
                route_seterr(err, "%s%s%sapps \"%s\" and \"%s\" both declare the domain \"%s\"",
                             file, at, sep, all[k].app->name, app->name, e->canon);
                goto fail;
            }
        }
    }

    /* Split into exact and wildcard arrays, each sorted by rank. */
    rt->exact = calloc(nall ? nall : 1, sizeof *rt->exact);
    rt->wild = calloc(nall ? nall : 1, sizeof *rt->wild);
    if (!rt->exact || !rt->wild)
        goto oom;
    for (size_t k = 0; k < nall; k++) {
        if (all[k].wild)
            rt->wild[rt->nwild++] = all[k];
        else
            rt->exact[rt->nexact++] = all[k];
    }
    free(all);
    all = NULL;
    nall = 0;
    qsort(rt->exact, rt->nexact, sizeof *rt->exact, route_rank_cmp);
    qsort(rt->wild, rt->nwild, sizeof *rt->wild, route_rank_cmp);

    rt->nslots = 8;
    while (rt->nslots < rt->nexact * 2)
        rt->nslots <<= 1;
    rt->slots = calloc(rt->nslots, sizeof *rt->slots);
    if (!rt->slots)
        goto oom;
    for (size_t k = 0; k < rt->nexact;) {
        const struct route_entry *e = &rt->exact[k];
        size_t run = 1;
        while (k + run < rt->nexact && strcmp(rt->exact[k + run].host, e->host) == 0)
            run++;
        size_t s = (size_t)route_hash(e->host, e->host_len) & (rt->nslots - 1);
        while (rt->slots[s].host)
            s = (s + 1) & (rt->nslots - 1);
        rt->slots[s] = (struct route_slot){ e->host, e->host_len, k, run };
        k += run;
    }
    return rt;

oom:
    route_seterr(err, "out of memory");
fail:
    for (size_t k = 0; k < nall; k++)
        route_entry_free(&all[k]);
    free(all);
    route_free(rt);
    return NULL;
}

/* '*' matches any run of bytes, '/' included (SPEC.md §4: "/foo*" crosses segments). Greedy
 * with one backtrack point: O(pattern * path) at worst, on short configured patterns. */
static bool route_glob(const char *pat, size_t pn, const char *s, size_t sn)
{
    size_t p = 0, i = 0, star_p = SIZE_MAX, star_i = 0;
    while (i < sn) {
        if (p < pn && pat[p] == '*') {
            star_p = p++;
            star_i = i;
        } else if (p < pn && pat[p] == s[i]) {
            p++;
            i++;
        } else if (star_p != SIZE_MAX) {
            p = star_p + 1;
            i = ++star_i;
        } else {
            return false;
        }
    }
    while (p < pn && pat[p] == '*')
        p++;
    return p == pn;
}

/* A wildcard host: the '*' stands for part of exactly one label (never a '.'), and a label
 * that is only "*" must not be empty: "*.example.com" matches neither the apex nor
 * "a.b.example.com". */
static bool route_wild_host(const struct route_entry *e, const char *name, size_t n)
{
    size_t pre = e->star, suf = e->host_len - e->star - 1;
    if (n < pre + suf)
        return false;
    if (memcmp(name, e->host, pre) != 0 || memcmp(name + n - suf, e->host + pre + 1, suf) != 0)
        return false;
    size_t mid = n - pre - suf;
    if (memchr(name + pre, '.', mid))
        return false;
    if (mid == 0 && pre == 0 && e->host[pre + 1] == '.')
        return false;
    return true;
}

static bool route_entry_path(const struct route_entry *e, int port, const char *path, size_t pn)
{
    if (e->port >= 0 && e->port != port)
        return false;
    return route_glob(e->path, e->path_len, path, pn);
}

/* "name[:port]" into the name's length and the port (-1: none); false when malformed. */
static bool route_split_host(const char *host, size_t host_len, size_t *name_n, int *port)
{
    const char *colon = NULL;
    *name_n = host_len;
    *port = -1;
    if (host_len == 0)
        return false;
    if (host[0] == '[') {
        const char *close = memchr(host, ']', host_len);
        if (!close)
            return false;
        *name_n = (size_t)(close - host) + 1;
        if (*name_n < host_len)
            colon = host + *name_n;
    } else {
        colon = memchr(host, ':', host_len);
        if (colon)
            *name_n = (size_t)(colon - host);
    }
    if (colon) {
        if (*colon != ':')
            return false;
        long p = route_port(colon + 1, host_len - *name_n - 1);
        if (p < 0)
            return false;
        *port = (int)p;
    }
    return true;
}

/* The run of exact entries for a host name, or NULL. */
static const struct route_slot *route_exact(const struct route_table *rt, const char *name, size_t name_n)
{
    size_t s = (size_t)route_hash(name, name_n) & (rt->nslots - 1);
    while (rt->slots[s].host) {
        const struct route_slot *sl = &rt->slots[s];
        if (sl->host_len == name_n && memcmp(sl->host, name, name_n) == 0)
            return sl;
        s = (s + 1) & (rt->nslots - 1);
    }
    return NULL;
}

const struct app *route_match(const struct route_table *rt, const char *host, size_t host_len,
                              const char *path, size_t path_len)
{
    size_t name_n;
    int port;
    if (!rt || !route_split_host(host, host_len, &name_n, &port))
        return NULL;
    const struct route_slot *sl = route_exact(rt, host, name_n);
    for (size_t k = sl ? sl->first : 0; sl && k < sl->first + sl->count; k++) {
        if (route_entry_path(&rt->exact[k], port, path, path_len))
            return rt->exact[k].app;
    }
    for (size_t k = 0; k < rt->nwild; k++) {
        const struct route_entry *e = &rt->wild[k];
        if (route_wild_host(e, host, name_n) && route_entry_path(e, port, path, path_len))
            return e->app;
    }
    return NULL;
}

void route_each_for_host(const struct route_table *rt, const char *host, size_t host_len,
                         void (*fn)(void *arg, const struct app *app, const char *pattern), void *arg)
{
    size_t name_n;
    int port;
    if (!rt || !route_split_host(host, host_len, &name_n, &port))
        return;
    const struct route_slot *sl = route_exact(rt, host, name_n);
    for (size_t k = sl ? sl->first : 0; sl && k < sl->first + sl->count; k++)
        if (rt->exact[k].port < 0 || rt->exact[k].port == port)
            fn(arg, rt->exact[k].app, rt->exact[k].canon);
    for (size_t k = 0; k < rt->nwild; k++) {
        const struct route_entry *e = &rt->wild[k];
        if (route_wild_host(e, host, name_n) && (e->port < 0 || e->port == port))
            fn(arg, e->app, e->canon);
    }
}
