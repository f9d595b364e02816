/* Unit tests of the redirect_url validator (src/auth/redirect.c, SPEC.md §6): paths on the app
 * host and URLs of configured apps are accepted; every open-redirect spelling is refused
 * (scheme-relative, backslashes, encoded controls, userinfo, other hosts, other schemes). The
 * route table comes from a small configuration through config_load_buffer + route_build. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/redirect.h"
#include "config/config.h"
#include "route/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char CONFIG[] =
    "listen: [{ address: \"127.0.0.1:8080\" }, { address: \"127.0.0.1:80\" },\n"
    "         { address: \"127.0.0.1:8081\", public: { scheme: https, port: 443 } }]\n"
    "auth_domain: auth.localhost:8080\n"
    "apps:\n"
    "  - name: wiki\n"
    "    domains: [\"wiki.localhost:8080\"]\n"
    "    origin: echo\n"
    "    policies: [{ name: p, decision: allow, include: [{ email_domain: example.com }] }]\n"
    "  - name: api-admin\n"
    "    domains: [\"api.example.com/admin/*\"]\n"
    "    origin: echo\n"
    "    policies: [{ name: p, decision: allow, include: [{ email_domain: example.com }] }]\n"
    "  - name: wild\n"
    "    domains: [\"*.apps.example.com\"]\n"
    "    origin: echo\n"
    "    policies: [{ name: p, decision: allow, include: [{ email_domain: example.com }] }]\n";

struct fixture {
    struct config *cfg;
    struct route_table *rt;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    struct config_errors errs = { 0 };
    f->cfg = config_load_buffer("t.yaml", CONFIG, strlen(CONFIG), &errs);
    if (!f->cfg) {
        config_errors_print(&errs, stderr);
        config_errors_clear(&errs);
        return -1;
    }
    char *err = NULL;
    f->rt = route_build(f->cfg, &err);
    if (!f->rt) {
        fprintf(stderr, "route_build: %s\n", err ? err : "?");
        free(err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    route_free(f->rt);
    config_free(f->cfg);
    free(f);
    return 0;
}

static int check(void **state, const char *url)
{
    struct fixture *f = *state;
    return redirect_check(f->cfg, f->rt, url, strlen(url));
}

#define ACCEPT(u)                                                                              \
    do {                                                                                       \
        if (check(state, u) != 0)                                                              \
            fail_msg("refused but acceptable: \"%s\"", u);                                     \
    } while (0)
#define REFUSE(u)                                                                              \
    do {                                                                                       \
        if (check(state, u) == 0)                                                              \
            fail_msg("accepted but an open redirect: \"%s\"", u);                              \
    } while (0)

static void paths_accepted(void **state)
{
    ACCEPT("/");
    ACCEPT("/a");
    ACCEPT("/a/b/c?x=1&y=2");
    ACCEPT("/a?next=//evil.example");   /* the query is the app's business */
    ACCEPT("/%7Euser/");
    ACCEPT("/x?next=%2Fhome");
    ACCEPT("/a#frag");
    ACCEPT("/a/../b");                  /* stays on the app host whatever it means */
    ACCEPT("/a//b");                    /* only a leading // leaves the host */
}

static void scheme_relative_refused(void **state)
{
    REFUSE("//evil.example");
    REFUSE("//evil.example/");
    REFUSE("///evil.example");
    REFUSE("/\\evil.example");
    REFUSE("\\\\evil.example");
    REFUSE("/\\/evil.example");
    REFUSE("\\/evil.example");
    REFUSE("/%2F/evil.example");
    REFUSE("/%2f%2fevil.example");
    REFUSE("/%5Cevil.example");
    REFUSE("/%5cevil.example");
    REFUSE("%2F%2Fevil.example");
}

static void controls_refused(void **state)
{
    REFUSE("/\t/evil.example");
    REFUSE("/%09/evil.example");
    REFUSE("/%0a/evil.example");
    REFUSE("/%0D%0A/evil.example");
    REFUSE("/%00/evil");
    REFUSE(" //evil.example");
    REFUSE("/ /evil.example");
    REFUSE("/\x7f/evil");
    REFUSE("/%7f/evil");
    REFUSE("/\xc3\xa9");                /* raw non-ASCII: a browser always escapes it */
    REFUSE("/%");                       /* a malformed escape */
    REFUSE("/%zz");
    REFUSE("/%2");
    /* a NUL inside the given length */
    struct fixture *f = *state;
    assert_int_not_equal(redirect_check(f->cfg, f->rt, "/a\0//evil", 9), 0);
}

static void other_hosts_refused(void **state)
{
    REFUSE("https://evil-example.com");
    REFUSE("https://evil-example.com/");
    REFUSE("http://evil.example/x");
    REFUSE("https://user@evil.example");
    REFUSE("https://user:pw@evil.example/");
    REFUSE("https://wiki.localhost:8080@evil.example/");
    REFUSE("http://auth.localhost:8080@evil.example");
    REFUSE("http://evil.example#@wiki.localhost:8080");
    REFUSE("http://evil.example?@wiki.localhost:8080/");
    REFUSE("http://evil.example\\@wiki.localhost:8080/");
    REFUSE("http://wiki.localhost:8080.evil.example/");
    REFUSE("http://wiki.localhost:8080%2F@evil.example/");
    REFUSE("http://wiki.localhost:8080%40evil.example/");
    REFUSE("http://wiki.localhost:9999/");   /* the app's pattern names port 8080 */
    REFUSE("http://auth.localhost:8080/");   /* the auth domain is not an app */
    REFUSE("http://api.example.com/");       /* only the admin paths of that host are an app */
    REFUSE("http://a.b.apps.example.com/");  /* '*' is one label */
    REFUSE("http://");
    REFUSE("https://");
    REFUSE("http:///evil.example");
    REFUSE("http://[::1]/");
}

static void other_schemes_refused(void **state)
{
    REFUSE("");
    REFUSE("javascript:alert(1)");
    REFUSE("JavaScript:alert(1)");
    REFUSE("javascript://%0aalert(1)");
    REFUSE(" javascript:alert(1)");
    REFUSE("data:text/html,<script>alert(1)</script>");
    REFUSE("vbscript:msgbox(1)");
    REFUSE("http:evil.example");
    REFUSE("http:/evil.example");
    REFUSE("https:\\\\evil.example");
    REFUSE("ftp://wiki.localhost:8080/");
    REFUSE("evil.example");
    REFUSE("wiki.localhost:8080/x");
    REFUSE("./x");
    REFUSE("?x=1");
    REFUSE("#x");
}

static void app_urls_accepted(void **state)
{
    ACCEPT("http://wiki.localhost:8080/");
    ACCEPT("http://wiki.localhost:8080");
    ACCEPT("http://wiki.localhost:8080/x?y=1");
    ACCEPT("HTTP://WIKI.localhost:8080/x");
    ACCEPT("http://api.example.com/admin/users");
    ACCEPT("https://x.apps.example.com/a");
    ACCEPT("https://x.apps.example.com:443/a");
}

/* Only an origin the gateway serves (a listener's public scheme and port, route/served.h):
 * another port of an app's host name may be someone else's server. */
static void other_ports_refused(void **state)
{
    REFUSE("https://wiki.localhost:8080/x");     /* 8080 is plain http */
    REFUSE("http://x.apps.example.com:9999/a");  /* no listener on 9999 */
    REFUSE("http://x.apps.example.com:8443/a");
    REFUSE("https://x.apps.example.com:8080/a"); /* the scheme is not that port's */
    REFUSE("http://x.apps.example.com:443/a");
    REFUSE("https://x.apps.example.com:80/a");
    REFUSE("https://api.example.com:8081/admin/users"); /* the listener's own port, not its public one */
    REFUSE("http://api.example.com:65535/admin/users");
    REFUSE("http://api.example.com/admin/../x");    /* normalizes out of the app */
    REFUSE("http://api.example.com/%61dmin/../x");
}

static void lengths(void **state)
{
    struct fixture *f = *state;
    static char big[8192];
    big[0] = '/';
    memset(big + 1, 'a', sizeof big - 2);
    assert_int_not_equal(redirect_check(f->cfg, f->rt, big, sizeof big - 1), 0); /* past the bound */
    assert_int_equal(redirect_check(f->cfg, f->rt, big, 4000), 0);
    assert_int_not_equal(redirect_check(f->cfg, f->rt, "/", 0), 0);
    /* only the given length counts */
    assert_int_equal(redirect_check(f->cfg, f->rt, "/a//evil.example", 2), 0);
    assert_int_not_equal(redirect_check(f->cfg, f->rt, "//evil.example", 2), 0);
}

/* Escaped spaces and UTF-8 in an app's own path are ordinary (file names, search queries): the
 * gateway's own login redirect sends them, so they must come back. */
static void escaped_text_accepted(void **state)
{
    ACCEPT("/My%20Docs/");
    ACCEPT("/search?q=a%20b");
    ACCEPT("/caf%C3%A9");
    ACCEPT("http://wiki.localhost:8080/r%C3%A9sum%C3%A9");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(paths_accepted),
        cmocka_unit_test(scheme_relative_refused),
        cmocka_unit_test(controls_refused),
        cmocka_unit_test(other_hosts_refused),
        cmocka_unit_test(other_schemes_refused),
        cmocka_unit_test(app_urls_accepted),
        cmocka_unit_test(other_ports_refused),
        cmocka_unit_test(lengths),
        cmocka_unit_test(escaped_text_accepted),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
