/* Unit tests of the Cookie header helpers (src/http/cookie.c): cookie_find returns the first
 * pair with exactly that name (case-sensitive, RFC 6265 §5.4), never a prefix or a suffix of
 * another name; cookie_name_reserved says which names are the gateway's (CF_Authorization and its
 * __Host-/__Secure- forms, latch_*, in any case); cookie_strip_reserved removes every such pair
 * and nothing else, within its documented output bound; cookie_set_reserved reads a Set-Cookie's
 * name as a browser does. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "http/cookie.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME "CF_Authorization"

static struct http_slice S(const char *s)
{
    return (struct http_slice){ s, strlen(s) };
}

/* want NULL: not found */
static void find(const char *header, const char *want)
{
    struct http_slice v = { NULL, 0 };
    bool found = cookie_find(S(header), NAME, &v);
    if (!want) {
        if (found)
            fail_msg("[%s]: found '%.*s', want nothing", header, (int)v.n, v.p);
        return;
    }
    if (!found)
        fail_msg("[%s]: not found, want '%s'", header, want);
    if (v.n != strlen(want) || memcmp(v.p, want, v.n) != 0)
        fail_msg("[%s]: got '%.*s', want '%s'", header, (int)v.n, v.p, want);
    /* the value points into the header */
    assert_true(v.p >= header && v.p + v.n <= header + strlen(header));
}

static void test_find(void **state)
{
    find(NAME "=tok", "tok");
    find("a=1; " NAME "=tok; b=2", "tok");
    find("a=1;" NAME "=tok;b=2", "tok");
    find("a=1;   " NAME "=tok   ", "tok");
    find("\t" NAME "=tok\t;", "tok");
    find(NAME "=first; " NAME "=second", "first");
    find(NAME "=\"quoted\"", "quoted");
    find(NAME "=\"", "\"");
    find(NAME "=\"\"", "");
    find(NAME "=", "");
    find(NAME "=a=b=c", "a=b=c");
    find(NAME " = spaced", "spaced");
    find("x" NAME "=no; y=1", NULL);                   /* a longer name */
    find(NAME "x=no", NULL);
    find("CF_AUTHORIZATION=no", NULL);                  /* case-sensitive */
    find("cf_authorization=no", NULL);
    find("CF-Authorization=no", NULL);
    find(NAME, NULL);                                   /* no '=' */
    find(NAME "; other=1", NULL);
    find("", NULL);
    find(";;;", NULL);
    find("   ", NULL);
    find("a=" NAME "=tok", NULL);                       /* inside another value */
    find("a=\"x; " NAME "=tok\"", "tok\"");             /* no quoting across ';' in RFC 6265 */
    find("a; " NAME "=tok", "tok");                     /* a flag before it */
}

static void test_find_bounded(void **state)
{
    /* the length bounds the scan: a match past it is not seen */
    const char *h = "a=1; " NAME "=tok";
    struct http_slice v;
    assert_false(cookie_find((struct http_slice){ h, 5 }, NAME, &v));
    assert_true(cookie_find((struct http_slice){ h, strlen(h) - 1 }, NAME, &v));
    assert_int_equal(v.n, 2);
    assert_false(cookie_find((struct http_slice){ h, 0 }, NAME, &v));
    /* bytes after the slice are never read: a heap copy without NUL */
    size_t n = strlen(h);
    char *copy = malloc(n);
    memcpy(copy, h, n);
    assert_true(cookie_find((struct http_slice){ copy, n }, NAME, &v));
    assert_int_equal(v.n, 3);
    free(copy);
}

static void strip(const char *header, const char *want)
{
    size_t n = strlen(header);
    char *out = malloc(2 * n + 2);
    memset(out, 0x5a, 2 * n + 2);
    size_t got = cookie_strip_reserved(S(header), out);
    assert_true(got <= 2 * n + 2);
    if (got != strlen(want) || memcmp(out, want, got) != 0)
        fail_msg("[%s]: got '%.*s', want '%s'", header, (int)got, out, want);
    /* whatever stays never contains our cookie */
    struct http_slice v;
    assert_false(cookie_find((struct http_slice){ out, got }, NAME, &v));
    free(out);
}

static void test_strip(void **state)
{
    strip(NAME "=tok", "");
    strip("a=1; " NAME "=tok; b=2", "a=1; b=2");
    strip(NAME "=x; a=1; " NAME "=y", "a=1");
    strip("a=1;" NAME "=tok;b=2", "a=1; b=2");
    strip("  a=1 ;  b=2  ", "a=1; b=2");
    strip("a=1; x" NAME "=keep", "a=1; x" NAME "=keep");
    strip("cf_authorization=x; CF_AUTHORIZATION=y; k=1", "k=1");
    strip("flag; " NAME "=tok", "flag");
    strip(NAME "; flag", "flag"); /* a bare name is judged too */
    strip("latch_flow=f; latch_bind_3=b; latchflow=keep; x_latch_y=keep; LATCH_X=1",
          "latchflow=keep; x_latch_y=keep");
    strip("__Host-latch_flow=1; __Secure-latch_bind_a=2; __host-CF_Authorization=3; "
          "__Secure-CF_Authorization=4; __Host-app=keep; __Host-latchx=keep",
          "__Host-app=keep; __Host-latchx=keep");
    strip("CF_Authorization2=keep; CF_Authorizatio=keep", "CF_Authorization2=keep; CF_Authorizatio=keep");
    strip(NAME " = spaced; z=9", "z=9");
    strip(";;;", "");
    strip("", "");
    strip(NAME "=\"q\"; a=\"b c\"", "a=\"b c\"");
}

static void test_strip_bound(void **state)
{
    /* the worst case for the output bound: many one-byte pairs */
    char h[4096];
    size_t n = 0;
    while (n + 2 < sizeof h) {
        h[n++] = 'a';
        h[n++] = ';';
    }
    h[n] = '\0';
    char *out = malloc(2 * n + 2);
    size_t got = cookie_strip_reserved((struct http_slice){ h, n }, out);
    assert_true(got <= 2 * n + 2);
    free(out);
}

static void test_set_line(void **state)
{
    (void)state;
    char *s = cookie_set_line("latch_bind_0123abcd", "abc123xyz", 6, "/cdn-cgi/access/authorized", 900, false);
    assert_string_equal(s, "Set-Cookie: latch_bind_0123abcd=abc123; Path=/cdn-cgi/access/authorized; "
                           "Max-Age=900; HttpOnly; SameSite=Lax\r\n");
    free(s);
    s = cookie_set_line("CF_Authorization", "tok", 3, "/", 60, true);
    assert_string_equal(s, "Set-Cookie: CF_Authorization=tok; Path=/; Max-Age=60; HttpOnly; "
                           "SameSite=Lax; Secure\r\n");
    free(s);
    /* clearing: no value, Max-Age=0, whatever was given */
    s = cookie_set_line("latch_flow", "secret", 6, "/cdn-cgi/access/", -5, true);
    assert_string_equal(s, "Set-Cookie: latch_flow=; Path=/cdn-cgi/access/; Max-Age=0; HttpOnly; "
                           "SameSite=Lax; Secure\r\n");
    free(s);
}

static void test_reserved(void **state)
{
    static const char *const yes[] = {
        "CF_Authorization", "cf_authorization", "__Host-CF_Authorization",
        "__HOST-cf_authorization", "__Secure-CF_Authorization", "latch_flow", "latch_bind_0",
        "latch_", "LATCH_anything", "__Host-latch_flow", "__host-LATCH_x", "__Secure-latch_bind_f",
    };
    static const char *const no[] = {
        "", "CF_Authorization2", "CF_Authorizatio", "CF-Authorization", "latch", "latchflow",
        "xlatch_flow", "__Host-latch", "__Host-CF_Authorization_", "__Secure-", "session",
        "__Host-app", "_latch_", " latch_flow",
    };
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        if (!cookie_name_reserved(yes[i], strlen(yes[i])))
            fail_msg("'%s' is the gateway's", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        if (cookie_name_reserved(no[i], strlen(no[i])))
            fail_msg("'%s' is not the gateway's", no[i]);
    /* the length bounds the name */
    assert_false(cookie_name_reserved("CF_Authorization", 15));
    assert_true(cookie_name_reserved("latch_flow", 6));
}

static void test_set_cookie(void **state)
{
    static const char *const ours[] = {
        "CF_Authorization=evil; Path=/; HttpOnly", "  CF_Authorization =evil", "cf_authorization=",
        "latch_flow=x; Path=/cdn-cgi/access/", "__Host-latch_bind_3=x; Secure; Path=/",
        "__Secure-CF_Authorization=x", "CF_Authorization", "CF_Authorization; Path=/",
        "latch_bind_a=\"q\"",
        /* nameless: RFC 6265bis browsers send the value alone, which reads as a name */
        "=CF_Authorization=x", "=x; Path=/", " =latch_flow=1",
    };
    static const char *const theirs[] = {
        "session=1; Path=/", "a=CF_Authorization", "x=1; CF_Authorization=2", "; CF_Authorization=x",
        "", "latchkey=1", "id=latch_flow; Path=/",
    };
    for (size_t i = 0; i < sizeof ours / sizeof *ours; i++)
        if (!cookie_set_reserved(S(ours[i])))
            fail_msg("Set-Cookie: %s sets the gateway's cookie", ours[i]);
    for (size_t i = 0; i < sizeof theirs / sizeof *theirs; i++)
        if (cookie_set_reserved(S(theirs[i])))
            fail_msg("Set-Cookie: %s is the origin's", theirs[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_find_bounded),
        cmocka_unit_test(test_strip),
        cmocka_unit_test(test_strip_bound),
        cmocka_unit_test(test_reserved),
        cmocka_unit_test(test_set_cookie),
        cmocka_unit_test(test_set_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
