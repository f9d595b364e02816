/* Unit tests of path_normalize (src/http/path.c): the SPEC.md §4 table, and every spelling of
 * the classic policy-bypass family resolving to one match path or refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "http/path.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct path_case {
    const char *in;
    const char *fwd;   /* NULL: refused */
    const char *match; /* NULL: same as fwd */
};

static const struct path_case path_cases[] = {
    { "/", "/", NULL },
    { "/a", "/a", NULL },
    { "/a/", "/a/", NULL },
    { "/a/b/../c", "/a/c", NULL },
    { "/a/./b", "/a/b", NULL },
    { "/./", "/", NULL },
    { "/.", "/", NULL },
    { "/..", "/", NULL },
    { "/../../a", "/a", NULL },
    { "/a/..", "/", NULL },
    { "/a/b/..", "/a/", NULL },
    { "/a/b/.", "/a/b/", NULL },
    { "/a/b/../", "/a/", NULL },
    { "/%2e%2e/", "/", NULL },
    { "/%2E%2E/x", "/x", NULL },
    { "/.%2e/", "/", NULL },
    { "/%2e./x", "/x", NULL },
    { "/a/%2e/b", "/a/b", NULL },
    { "/a/%2e%2e/b", "/b", NULL },
    { "//a", "/a", NULL },
    { "/a//b///c", "/a/b/c", NULL },
    { "/a//", "/a/", NULL },
    { "///", "/", NULL },
    { "/a;x/../b", "/b", NULL },
    { "/a/..;x/b", "/b", NULL },
    { "/a/..;/b", "/b", NULL },
    { "/a/.;x/b", "/a/b", NULL },
    { "/a/b/..;x", "/a/", NULL },
    { "/admin;jsessionid=1/y", "/admin;jsessionid=1/y", "/admin/y" },
    { "/admin/y;v=2", "/admin/y;v=2", "/admin/y" },
    { "/a;b;c/d", "/a;b;c/d", "/a/d" },
    { "/;x", "/;x", "/" },
    { "/a/;x/b", "/a/;x/b", "/a/b" },
    { "/a/;x", "/a/;x", "/a/" },
    { "/a/;x/../b", "/a/b", NULL },
    { "/%41", "/A", NULL },
    { "/%7e", "/~", NULL },
    { "/%7E%2d%5f%2E", "/~-_.", NULL },
    { "/%3a", "/%3A", NULL },
    { "/%3b", "/%3B", NULL },
    { "/a%3Bx/y", "/a%3Bx/y", NULL },
    { "/a%3bx/../y", "/y", NULL },
    { "/%ff%c3%a9", "/%FF%C3%A9", NULL },
    { "/%20", "/%20", NULL },
    { "/a:b@c!$&'()*+,=", "/a:b@c!$&'()*+,=", NULL },
    { "/...", "/...", NULL },
    { "/a..b/.x", "/a..b/.x", NULL },
    { "/{x}|^", "/{x}|^", NULL },
    /* refused */
    { "/a%2Fb", NULL, NULL },
    { "/a%2fb", NULL, NULL },
    { "/a%5Cb", NULL, NULL },
    { "/a%5cb", NULL, NULL },
    { "/a\\b", NULL, NULL },
    { "/a%00", NULL, NULL },
    { "/a%0a", NULL, NULL },
    { "/a%0D", NULL, NULL },
    { "/a%1f", NULL, NULL },
    { "/a%7F", NULL, NULL },
    { "/a#b", NULL, NULL },
    { "/a b", NULL, NULL },
    { "/a\tb", NULL, NULL },
    { "/a\x01", NULL, NULL },
    { "/a\x7f", NULL, NULL },
    { "/caf\xc3\xa9", NULL, NULL },
    { "/%", NULL, NULL },
    { "/%4", NULL, NULL },
    { "/%4/", NULL, NULL },
    { "/%zz", NULL, NULL },
    { "/%%41", NULL, NULL },
    { "/..%3B/admin", NULL, NULL },
    { "/.%3bx/admin", NULL, NULL },
    { "/%2e%2e%3b/admin", NULL, NULL },
    { "a/b", NULL, NULL },
    { "", NULL, NULL },
    { "*", NULL, NULL },
};

static void check_case(const char *in, size_t len, const char *want_fwd, const char *want_match)
{
    char *fwd = malloc(len + 2), *match = malloc(len + 2);
    size_t fl = 999, ml = 999;
    int rc = path_normalize(in, len, fwd, &fl, match, &ml);
    if (!want_fwd) {
        if (rc != -1)
            fail_msg("\"%s\" accepted as \"%s\"", in, fwd);
    } else {
        if (rc != 0)
            fail_msg("\"%s\" refused", in);
        if (strcmp(fwd, want_fwd) != 0 || fl != strlen(want_fwd))
            fail_msg("\"%s\": fwd \"%s\", expected \"%s\"", in, fwd, want_fwd);
        if (strcmp(match, want_match) != 0 || ml != strlen(want_match))
            fail_msg("\"%s\": match \"%s\", expected \"%s\"", in, match, want_match);
    }
    free(fwd);
    free(match);
}

static void test_path_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof path_cases / sizeof path_cases[0]; i++) {
        const struct path_case *c = &path_cases[i];
        check_case(c->in, strlen(c->in), c->fwd, c->match ? c->match : c->fwd);
    }
    /* NUL inside the slice */
    check_case("/a\0b", 4, NULL, NULL);
    check_case("/a%00b", 6, NULL, NULL);
}

/* Every spelling a client might use for /admin/x lands on the match path "/admin/x" (so the
 * admin app's policies apply), or is refused. Never on another path. */
static void test_path_bypass_family(void **state)
{
    (void)state;
    static const char *same[] = {
        "/admin/x", "//admin/x", "/admin//x", "///admin///x", "/./admin/x", "/admin/./x",
        "/foo/../admin/x", "/foo/bar/../../admin/x", "/../admin/x", "/../../../admin/x",
        "/%61dmin/x", "/%61%64%6d%69%6e/x", "/%61%64%6D%69%6E/%78", "/%2e/admin/x",
        "/%2E%2E/admin/x", "/foo/%2e%2e/admin/x", "/foo/.%2e/admin/x", "/foo/%2e./admin/x",
        "/admin;x/x", "/admin;/x", "/admin;jsessionid=ABC/x", "/admin/x;y",
        "/foo;x/../admin/x", "/foo/..;/admin/x", "/foo/..;x/admin/x", "/foo/.;/../admin/x",
        "/admin/;/x", "/admin/x/;", "/admin;a;b/;c/x",
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        const char *in = same[i];
        size_t len = strlen(in);
        char *fwd = malloc(len + 2), *match = malloc(len + 2);
        size_t fl, ml;
        if (path_normalize(in, len, fwd, &fl, match, &ml) != 0)
            fail_msg("\"%s\" refused", in);
        if (strcmp(match, "/admin/x") != 0 && strcmp(match, "/admin/x/") != 0)
            fail_msg("\"%s\" matched as \"%s\"", in, match);
        free(fwd);
        free(match);
    }
    static const char *refused[] = {
        "/admin%2fx", "/admin%2Fx", "/admin\\x", "/admin%5cx", "/%2e%2e%2fadmin/x",
        "/foo/..%2fadmin/x", "/foo/..%3B/admin/x", "/admin%00/x", "/admin#/x", "/admin%0a/x",
        "/foo/..\\admin/x",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        check_case(refused[i], strlen(refused[i]), NULL, NULL);
}

/* The output is a fixed point: normalizing it again changes nothing. */
static void test_path_idempotent(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof path_cases / sizeof path_cases[0]; i++) {
        const struct path_case *c = &path_cases[i];
        if (!c->fwd)
            continue;
        const char *m = c->match ? c->match : c->fwd;
        check_case(c->fwd, strlen(c->fwd), c->fwd, m);
        check_case(m, strlen(m), m, m);
    }
}

/* The output buffers need len + 2 bytes, never more: checked with exact-size buffers. */
static void test_path_buffer_bound(void **state)
{
    (void)state;
    static const char *ins[] = { "/a", "/a/", "/", "/%41", "/a;b/", "/a/b/.", "/x/..", "//", "/a;x" };
    for (size_t i = 0; i < sizeof ins / sizeof ins[0]; i++) {
        size_t len = strlen(ins[i]);
        char *fwd = malloc(len + 2), *match = malloc(len + 2);
        size_t fl, ml;
        assert_int_equal(path_normalize(ins[i], len, fwd, &fl, match, &ml), 0);
        assert_true(fl <= len + 1 && ml <= len + 1);
        assert_int_equal(fwd[fl], '\0');
        assert_int_equal(match[ml], '\0');
        free(fwd);
        free(match);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_table),
        cmocka_unit_test(test_path_bypass_family),
        cmocka_unit_test(test_path_idempotent),
        cmocka_unit_test(test_path_buffer_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
