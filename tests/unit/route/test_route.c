/* Unit tests of the router (src/route/route.c): host and path patterns, ports, ranking,
 * duplicates, the host normalization requests go through first, and a host's patterns alone
 * (route_each_for_host, what the command line is given) choosing as the whole table does. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "http/path.h"
#include "route/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_APPS 32

struct fixture {
    struct config cfg;
    struct app apps[MAX_APPS];
    struct route_table *rt;
};

/* Apps: a NULL-separated list of {name, pattern, pattern..., NULL}. */
static void add_app(struct fixture *f, const char *name, const char **domains)
{
    struct app *a = &f->apps[f->cfg.napps++];
    memset(a, 0, sizeof *a);
    a->name = (char *)name;
    a->domains = (char **)domains;
    while (domains[a->ndomains])
        a->ndomains++;
    f->cfg.apps = f->apps;
}

#define APP(f, name, ...)                                                                      \
    do {                                                                                       \
        static const char *d_[] = { __VA_ARGS__, NULL };                                       \
        add_app(f, name, d_);                                                                  \
    } while (0)

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    APP(f, "api", "api.example.com");
    APP(f, "api-admin", "api.example.com/admin/*");
    APP(f, "api-health", "api.example.com/health");
    APP(f, "wild", "*.example.com");
    APP(f, "wild-admin", "*.example.com/admin/*");
    APP(f, "partial", "*test.example.com");
    APP(f, "local", "app.localhost:8080");
    APP(f, "local-any", "App.Localhost");
    APP(f, "foo", "foo.example.com/foo*/bar");
    APP(f, "alpha", "alpha.test/alpha/*");
    APP(f, "ipv6", "[::1]:9000");
    APP(f, "trail", "trail.example.com.");
    APP(f, "p1", "spec.test/a/*");
    APP(f, "p2", "spec.test/a/b/*");
    APP(f, "p3", "spec.test/a/b/c");
    APP(f, "p4", "spec.test/a/*/c");
    APP(f, "multi", "one.test", "two.test/x", "*.multi.test");
    APP(f, "root", "root.test/");
    APP(f, "pt-any", "ports.test");
    APP(f, "pt-8080", "ports.test:8080");
    char *err = NULL;
    f->rt = route_build(&f->cfg, &err);
    if (!f->rt) {
        fprintf(stderr, "route_build: %s\n", err ? err : "?");
        free(err);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    route_free(f->rt);
    free(f);
    return 0;
}

/* Routes a raw Host value and raw path the way the gateway does: normalize both, then match. */
static const char *route_name(struct fixture *f, const char *host, const char *path)
{
    char h[300], fwd[600], match[600];
    size_t fl, ml;
    int hn = route_host_normalize(host, strlen(host), h);
    if (hn < 0)
        return "<bad host>";
    if (path_normalize(path, strlen(path), fwd, &fl, match, &ml) != 0)
        return "<bad path>";
    const struct app *a = route_match(f->rt, h, (size_t)hn, match, ml);
    return a ? a->name : "<none>";
}

#define ROUTES(host, path, want) assert_string_equal(route_name(f, host, path), want)

static void test_route_exact_and_paths(void **state)
{
    struct fixture *f = *state;
    ROUTES("api.example.com", "/", "api");
    ROUTES("api.example.com", "/anything/else", "api");
    ROUTES("api.example.com", "/admin/x", "api-admin");
    ROUTES("api.example.com", "/admin/", "api-admin");
    ROUTES("api.example.com", "/admin", "api");        // "/admin/*" is below /admin only
    ROUTES("api.example.com", "/adminx", "api");
    ROUTES("api.example.com", "/health", "api-health");
    ROUTES("api.example.com", "/health/", "api");
    ROUTES("api.example.com", "/healthz", "api");
    ROUTES("API.Example.COM.", "/admin/x", "api-admin"); /* case and trailing dot */
    ROUTES("api.example.com:443", "/admin/y", "api-admin"); /* no port in pattern: any port */
    /* the bypass family reaches the admin app */
    ROUTES("api.example.com", "/x/../admin/y", "api-admin");
    ROUTES("api.example.com", "//admin/y", "api-admin");
    ROUTES("api.example.com", "/%61dmin/y", "api-admin");
    ROUTES("api.example.com", "/admin;x/y", "api-admin");
    ROUTES("api.example.com", "/%2e/admin/y", "api-admin");
    ROUTES("api.example.com", "/ADMIN/y", "api"); /* case-sensitive paths (SPEC.md §4) */
    ROUTES("alpha.test", "/alpha", "<none>");
    ROUTES("alpha.test", "/alpha/", "alpha");
    ROUTES("alpha.test", "/alpha/x/y", "alpha");
    ROUTES("alpha.test", "/alphabet", "<none>");
    ROUTES("root.test", "/", "root");
    ROUTES("root.test", "/x", "<none>");
}

static void test_route_wildcards(void **state)
{
    struct fixture *f = *state;
    ROUTES("x.example.com", "/", "wild");
    ROUTES("x.example.com", "/admin/1", "wild-admin");
    ROUTES("example.com", "/", "<none>");       /* not the apex */
    ROUTES("a.b.example.com", "/", "<none>");   /* exactly one label */
    ROUTES(".example.com", "/", "<none>");
    ROUTES("xexample.com", "/", "<none>");
    /* exact host wins over a wildcard host, even with a less specific path */
    ROUTES("api.example.com", "/admin/1", "api-admin");
    /* partial label: longer literal wins over "*.example.com" */
    ROUTES("mytest.example.com", "/", "partial");
    ROUTES("test.example.com", "/", "partial");
    ROUTES("my.test.example.com", "/", "<none>");
    ROUTES("testx.example.com", "/", "wild");
    /* an exact host whose paths do not match falls back to the wildcards */
    ROUTES("foo.example.com", "/foo/bar", "foo");
    ROUTES("foo.example.com", "/foox/y/bar", "foo");
    ROUTES("foo.example.com", "/foo/baz", "wild");
    ROUTES("foo.example.com", "/bar", "wild");
    ROUTES("foo.example.com", "/foo/bar/x", "wild");
    ROUTES("a.multi.test", "/", "multi");
    ROUTES("one.test", "/z", "multi");
    ROUTES("two.test", "/x", "multi");
    ROUTES("two.test", "/y", "<none>");
}

static void test_route_ports_and_literals(void **state)
{
    struct fixture *f = *state;
    ROUTES("app.localhost:8080", "/", "local");
    ROUTES("app.localhost:08080", "/", "local");
    ROUTES("app.localhost:9090", "/", "local-any");
    ROUTES("app.localhost", "/", "local-any");
    ROUTES("[::1]:9000", "/", "ipv6");
    ROUTES("[::1]:9001", "/", "<none>");
    ROUTES("[::1]", "/", "<none>");
    ROUTES("trail.example.com", "/", "trail");
    ROUTES("trail.example.com.", "/", "trail");
    ROUTES("unknown.test", "/", "<none>");
    /* a pattern naming the port wins over one for any port, whatever the declaration order */
    ROUTES("ports.test:8080", "/", "pt-8080");
    ROUTES("ports.test:8081", "/", "pt-any");
    ROUTES("ports.test", "/", "pt-any");
}

static void test_route_most_specific(void **state)
{
    struct fixture *f = *state;
    ROUTES("spec.test", "/a/b/c", "p3");
    ROUTES("spec.test", "/a/b/x", "p2");
    ROUTES("spec.test", "/a/x/c", "p4");
    ROUTES("spec.test", "/a/x/y/c", "p4");
    ROUTES("spec.test", "/a/x", "p1");
    ROUTES("spec.test", "/a", "<none>");
}

static void test_route_duplicates(void **state)
{
    (void)state;
    struct fixture *f = calloc(1, sizeof *f);
    APP(f, "first", "x.example.com/p");
    APP(f, "second", "X.Example.com./p");
    char *err = NULL;
    assert_null(route_build(&f->cfg, &err));
    assert_non_null(err);
    assert_non_null(strstr(err, "\"first\""));
    assert_non_null(strstr(err, "\"second\""));
    free(err);

    // no path and "/*" are the same pattern
    memset(f, 0, sizeof *f);
    APP(f, "first", "x.example.com");
    APP(f, "second", "x.example.com/*");
    err = NULL;
    assert_null(route_build(&f->cfg, &err));
    assert_non_null(err);
    free(err);

    /* the same pattern twice in one app is harmless; different ports are different patterns */
    memset(f, 0, sizeof *f);
    APP(f, "first", "x.example.com", "x.example.com");
    APP(f, "second", "x.example.com:8080");
    err = NULL;
    struct route_table *rt = route_build(&f->cfg, &err);
    assert_non_null(rt);
    assert_null(err);
    route_free(rt);

    /* an invalid pattern names the app */
    memset(f, 0, sizeof *f);
    APP(f, "broken", "a..example.com");
    err = NULL;
    assert_null(route_build(&f->cfg, &err));
    assert_non_null(err);
    assert_non_null(strstr(err, "broken"));
    free(err);

    /* an empty config routes nothing */
    memset(f, 0, sizeof *f);
    rt = route_build(&f->cfg, &err);
    assert_non_null(rt);
    assert_null(route_match(rt, "a", 1, "/", 1));
    route_free(rt);
    free(f);
}

static void test_route_pattern_check(void **state)
{
    (void)state;
    static const char *good[] = {
        "a.example.com", "*.example.com", "*x.example.com", "x*.example.com",
        "a.example.com:8080/x/*", "[::1]:80", "[::1]", "127.0.0.1:8080", "app.localhost:8080",
        "A.Example.COM.", "a.example.com/", "a.example.com/foo*/bar", "a.example.com/%3A",
        "*.localhost", "a_b.example.com",
    };
    static const char *bad[] = {
        "", "a..b", ".a", "*", "*.", "*.*.example.com", "a.*.example.com", "**.example.com",
        "a.example.com:0", "a.example.com:70000", "a.example.com:", "a.example.com:8o",
        "a.example.com/../x", "a.example.com/a//b", "a.example.com/%61", "a.example.com/a;x",
        "a.example.com/a%2Fb", "a.example.com/a/./b", "a.example.com/%3a", "a b.com", "[zz]",
        "[::1", "a.example.com x", "a@b.example.com", ":80", "/x", "a.example.com?x",
    };
    const char *why;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        why = NULL;
        if (route_pattern_check(good[i], &why) != 0)
            fail_msg("\"%s\" refused: %s", good[i], why);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        if (route_pattern_check(bad[i], &why) != -1)
            fail_msg("\"%s\" accepted", bad[i]);
        assert_non_null(why);
    }
}

/* A table built from route_each_for_host's patterns for one host, in its order, one app per
 * pattern (as the command line builds it, src/cli/routes.c). */
struct host_view {
    struct config cfg;
    struct app apps[64];
    const char *pats[64];
    char *owned[64];
    const struct app *real[64];
};

static void view_add(void *arg, const struct app *app, const char *pattern)
{
    struct host_view *v = arg;
    size_t i = v->cfg.napps;
    assert_true(i < 64);
    v->owned[i] = strdup(pattern);
    v->pats[i] = v->owned[i];
    v->real[i] = app;
    v->apps[i].name = (char *)app->name;
    v->apps[i].domains = (char **)&v->pats[i];
    v->apps[i].ndomains = 1;
    v->cfg.apps = v->apps;
    v->cfg.napps = i + 1;
}

static void test_route_host_view_agrees(void **state)
{
    struct fixture *f = *state;
    static const char *hosts[] = { "api.example.com", "x.example.com", "footest.example.com", "test.example.com",
                                   "foo.example.com", "app.localhost:8080", "app.localhost:9", "app.localhost",
                                   "spec.test", "ports.test", "ports.test:8080", "ports.test:9", "one.test",
                                   "two.test", "a.multi.test", "[::1]:9000", "trail.example.com", "none.test" };
    static const char *paths[] = { "/", "/admin", "/admin/", "/admin/x", "/health", "/health/x", "/foo/bar",
                                   "/foo1/x/bar", "/alpha/a", "/a/x", "/a/b/x", "/a/b/c", "/a/z/c", "/x", "/y" };
    for (size_t h = 0; h < sizeof hosts / sizeof *hosts; h++) {
        struct host_view v;
        memset(&v, 0, sizeof v);
        route_each_for_host(f->rt, hosts[h], strlen(hosts[h]), view_add, &v);
        char *err = NULL;
        struct route_table *rt = v.cfg.napps ? route_build(&v.cfg, &err) : NULL;
        if (v.cfg.napps && !rt)
            fail_msg("%s: the host's patterns do not build: %s", hosts[h], err ? err : "?");
        for (size_t p = 0; p < sizeof paths / sizeof *paths; p++) {
            const struct app *want = route_match(f->rt, hosts[h], strlen(hosts[h]), paths[p], strlen(paths[p]));
            const struct app *got = rt ? route_match(rt, hosts[h], strlen(hosts[h]), paths[p], strlen(paths[p])) : NULL;
            const char *gname = got ? got->name : NULL, *wname = want ? want->name : NULL;
            if ((gname == NULL) != (wname == NULL) || (gname && strcmp(gname, wname)))
                fail_msg("%s%s: the whole table says %s, the host's patterns %s", hosts[h], paths[p],
                         wname ? wname : "none", gname ? gname : "none");
        }
        route_free(rt);
        for (size_t i = 0; i < v.cfg.napps; i++)
            free(v.owned[i]);
    }
    /* a port the pattern does not name is left out; an exact host lists its own first */
    struct host_view v;
    memset(&v, 0, sizeof v);
    route_each_for_host(f->rt, "ports.test:9", 12, view_add, &v);
    assert_int_equal(v.cfg.napps, 1);
    assert_string_equal(v.pats[0], "ports.test/*");
    free(v.owned[0]);
    memset(&v, 0, sizeof v);
    route_each_for_host(f->rt, "api.example.com", 15, view_add, &v);
    assert_true(v.cfg.napps == 5);
    assert_string_equal(v.apps[0].name, "api-health");
    assert_string_equal(v.apps[3].name, "wild-admin");
    for (size_t i = 0; i < v.cfg.napps; i++)
        free(v.owned[i]);
}

static void test_route_host_normalize(void **state)
{
    (void)state;
    static const struct { const char *in, *out; } cases[] = {
        { "Example.COM.", "example.com" },
        { "a:08080", "a:8080" },
        { "A.B:1", "a.b:1" },
        { "a.:80", "a:80" },
        { "[::1]:80", "[::1]:80" },
        { "[FE80::1]", "[fe80::1]" },
        { "127.0.0.1", "127.0.0.1" },
        { "", NULL }, { ".", NULL }, { "a b", NULL }, { "a:", NULL }, { "a:99999", NULL },
        { "%41", NULL }, { "*.example.com", NULL }, { "[::1", NULL }, { "a@b", NULL },
        { "a:1:2", NULL }, { "[::1]x", NULL }, { ":80", NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        size_t n = strlen(cases[i].in);
        int rc = route_host_normalize(cases[i].in, n, out);
        if (!cases[i].out) {
            if (rc != -1)
                fail_msg("\"%s\" accepted as \"%s\"", cases[i].in, out);
            continue;
        }
        if (rc < 0 || strcmp(out, cases[i].out) != 0 || (size_t)rc != strlen(cases[i].out))
            fail_msg("\"%s\" -> %d \"%s\"", cases[i].in, rc, rc >= 0 ? out : "");
        assert_true((size_t)rc <= n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_route_exact_and_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_wildcards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_ports_and_literals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_most_specific, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_host_view_agrees, setup, teardown),
        cmocka_unit_test(test_route_duplicates),
        cmocka_unit_test(test_route_pattern_check),
        cmocka_unit_test(test_route_host_normalize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
