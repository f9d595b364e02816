/* libFuzzer target: the router on a fixed small config, with a fuzzed Host and path (first
 * byte: host length). Every answer is compared with a slow reference that ranks all patterns
 * by the rules of route.h; pattern checking is fuzzed on the whole input too. */
#include "http/path.h"
#include "route/route.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *fuzz_domains[][4] = {
    { "api", "api.example.com", NULL },
    { "api-admin", "api.example.com/admin/*", NULL },
    { "api-health", "api.example.com/health", NULL },
    { "wild", "*.example.com", NULL },
    { "wild-admin", "*.example.com/admin/*", NULL },
    { "partial", "*test.example.com", "te*st.example.com", NULL },
    { "local", "app.localhost:8080", NULL },
    { "local-any", "app.localhost", NULL },
    { "foo", "foo.example.com/foo*/bar", "foo.example.com/a*b*c", NULL },
    { "spec1", "s.test/a/*", NULL },
    { "spec2", "s.test/a/b/*", "s.test/a/*/c", NULL },
    { "v6", "[::1]:9000", "127.0.0.1:80/x", NULL },
};
#define FUZZ_NAPPS (sizeof fuzz_domains / sizeof fuzz_domains[0])

static struct config fuzz_cfg;
static struct app fuzz_apps[FUZZ_NAPPS];
static struct route_table *fuzz_rt;

static void fuzz_init(void)
{
    for (size_t i = 0; i < FUZZ_NAPPS; i++) {
        fuzz_apps[i].name = (char *)fuzz_domains[i][0];
        fuzz_apps[i].domains = (char **)&fuzz_domains[i][1];
        while (fuzz_domains[i][1 + fuzz_apps[i].ndomains])
            fuzz_apps[i].ndomains++;
    }
    fuzz_cfg.apps = fuzz_apps;
    fuzz_cfg.napps = FUZZ_NAPPS;
    char *err = NULL;
    fuzz_rt = route_build(&fuzz_cfg, &err);
    if (!fuzz_rt) {
        fprintf(stderr, "route_build: %s\n", err);
        abort();
    }
}

/* Reference glob: '*' matches any run; in hosts (`dots` false) never a '.'. */
static int ref_glob(const char *p, const char *s, size_t sn, int dots)
{
    if (*p == '\0')
        return sn == 0;
    if (*p == '*') {
        for (size_t k = 0; k <= sn; k++) {
            if (ref_glob(p + 1, s + k, sn - k, dots))
                return 1;
            if (k < sn && !dots && s[k] == '.')
                return 0;
        }
        return 0;
    }
    return sn > 0 && *p == *s && ref_glob(p + 1, s + 1, sn - 1, dots);
}

/* Rank as a tuple compared lexicographically, larger = more specific. */
struct ref_rank {
    long v[6];
};

static int ref_better(const struct ref_rank *a, const struct ref_rank *b)
{
    for (int i = 0; i < 6; i++) {
        if (a->v[i] != b->v[i])
            return a->v[i] > b->v[i];
    }
    return 0;
}

static const struct app *ref_match(const char *host, size_t hn, const char *path, size_t pn)
{
    char name[300];
    long port = -1;
    size_t nn = hn;
    const char *colon = host[0] == '[' ? memchr(host, ']', hn) : memchr(host, ':', hn);
    if (host[0] == '[' && colon) {
        nn = (size_t)(colon - host) + 1;
        colon = nn < hn ? host + nn : NULL;
    }
    if (colon) {
        nn = (size_t)(colon - host);
        port = strtol(colon + 1, NULL, 10);
    }
    if (nn >= sizeof name)
        return NULL;
    memcpy(name, host, nn);
    name[nn] = '\0';
    const struct app *best = NULL;
    struct ref_rank best_rank = { { 0 } };
    for (size_t a = 0; a < FUZZ_NAPPS; a++) {
        for (size_t d = 0; d < fuzz_apps[a].ndomains; d++) {
            char pat[128], *pp;
            snprintf(pat, sizeof pat, "%s", fuzz_apps[a].domains[d]);
            pp = strchr(pat, '/');
            char ppath[128];
            snprintf(ppath, sizeof ppath, "%s", pp ? pp : "/*");
            if (pp)
                *pp = '\0';
            char *br = strchr(pat, ']');
            char *c = strchr(br ? br : pat, ':');
            long pport = -1;
            if (c) {
                *c = '\0';
                pport = strtol(c + 1, NULL, 10);
            }
            if (pport >= 0 && pport != port)
                continue;
            bool wild = strchr(pat, '*') != NULL;
            if (wild) {
                /* a label that is only '*' must not be empty */
                if (!ref_glob(pat, name, nn, 0))
                    continue;
                if (pat[0] == '*' && pat[1] == '.' && name[0] == '.')
                    continue;
            } else if (strcmp(pat, name) != 0) {
                continue;
            }
            if (!ref_glob(ppath, path, pn, 1))
                continue;
            struct ref_rank r;
            size_t plen = strlen(ppath), lit = strcspn(ppath, "*"), stars = 0;
            for (size_t k = 0; k < plen; k++)
                stars += ppath[k] == '*';
            r.v[0] = wild ? 0 : 1;
            r.v[1] = wild ? (long)strlen(pat) : 0;
            r.v[2] = (long)lit;
            r.v[3] = -(long)stars;
            r.v[4] = (long)(plen - stars);
            r.v[5] = pport >= 0 ? 1 : 0;
            if (!best || ref_better(&r, &best_rank)) {
                best = &fuzz_apps[a];
                best_rank = r;
            }
        }
    }
    return best;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_rt)
        fuzz_init();

    char *pat = malloc(size + 1);
    memcpy(pat, data, size);
    pat[size] = '\0';
    const char *why = NULL;
    if (route_pattern_check(pat, &why) != 0 && !why)
        abort();
    free(pat);

    if (size == 0)
        return 0;
    size_t hl = data[0] % size;
    const char *host = (const char *)data + 1;
    if (hl > size - 1)
        hl = size - 1;
    const char *path = host + hl;
    size_t pl = size - 1 - hl;

    /* raw inputs must not crash the matcher (the contract wants normalized ones) */
    (void)route_match(fuzz_rt, host, hl, path, pl);

    char *h = malloc(hl + 1);
    int n = route_host_normalize(host, hl, h);
    if (n >= 0) {
        if ((size_t)n > hl || h[n] != '\0')
            abort();
        char *fwd = malloc(pl + 2), *match = malloc(pl + 2);
        size_t fl, ml;
        if (path_normalize(path, pl, fwd, &fl, match, &ml) == 0) {
            const struct app *got = route_match(fuzz_rt, h, (size_t)n, match, ml);
            const struct app *want = ref_match(h, (size_t)n, match, ml);
            if (got != want) {
                fprintf(stderr, "host %s path %s: got %s want %s\n", h, match,
                        got ? got->name : "-", want ? want->name : "-");
                abort();
            }
        }
        free(fwd);
        free(match);
    }
    free(h);
    return 0;
}
