/* Unit tests of the login binding (src/request/binding.c): nonces and tags are 32 lowercase hex
 * digits, a tag is a hash of its nonce (never the nonce), each login's cookie is named after its tag's first digit, a malformed nonce has no tag,
 * and the login URL carries the tag only when asked to. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "request/binding.h"
#include <stdlib.h>
#include "http/cookie.h"

#include <sodium.h>
#include <string.h>

static void test_nonce_and_tag(void **state)
{
    (void)state;
    char n1[33], t1[33], n2[33], t2[33], again[33];
    binding_new(n1, t1);
    binding_new(n2, t2);
    assert_true(binding_tag_valid(n1) && binding_tag_valid(t1));
    assert_string_not_equal(n1, n2);
    assert_string_not_equal(n1, t1);
    assert_true(binding_tag(n1, again));
    assert_string_equal(again, t1);
    assert_true(binding_tag(n2, again));
    assert_string_equal(again, t2);
}

static void test_cookie_name(void **state)
{
    (void)state;
    char name[AUTH_BINDING_NAME_MAX];
    binding_cookie_base("0123456789abcdef0123456789abcdef", name);
    assert_string_equal(name, "latch_bind_0");
    /* on https, the gateway's own cookies are __Host- cookies at Path=/ (http/cookie.h) */
    char own[COOKIE_OWN_NAME_MAX];
    cookie_own_name(name, true, own);
    assert_string_equal(own, "__Host-latch_bind_0");
    cookie_own_name(name, false, own);
    assert_string_equal(own, "latch_bind_0");
    char *line = cookie_own_set_line(name, "v", AUTH_BINDING_PATH, 60, true, false);
    assert_string_equal(line, "Set-Cookie: __Host-latch_bind_0=v; Path=/; Max-Age=60; HttpOnly; "
                              "SameSite=Lax; Secure\r\n");
    free(line);
    line = cookie_own_set_line(name, "v", AUTH_BINDING_PATH, 60, false, false);
    assert_string_equal(line, "Set-Cookie: latch_bind_0=v; Path=" AUTH_BINDING_PATH "; Max-Age=60; "
                              "HttpOnly; SameSite=Lax\r\n");
    free(line);
}

static void test_malformed(void **state)
{
    (void)state;
    char tag[33];
    const char *bad[] = { "", "0", "0123456789abcdef0123456789abcde", "0123456789abcdef0123456789abcdef0",
                          "0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef0123456789abcdeg",
                          "0123456789abcdef 123456789abcdef" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_false(binding_tag(bad[i], tag));
        assert_false(binding_tag_valid(bad[i]));
    }
    assert_false(binding_tag(NULL, tag));
    assert_false(binding_tag_valid(NULL));
}

static void test_login_url(void **state)
{
    (void)state;
    struct strbuf sb;
    sb_init(&sb, 1024);
    binding_login_url(&sb, "http://auth.localhost:8080", "wiki.localhost:8080", 19, "/a b?x=1", 8,
                      "0123456789abcdef0123456789abcdef");
    assert_string_equal(sb.p, "http://auth.localhost:8080/cdn-cgi/access/login/wiki.localhost:8080"
                              "?redirect_url=/a%20b%3Fx%3D1&bind=0123456789abcdef0123456789abcdef");
    sb_free(&sb);
    sb_init(&sb, 1024);
    binding_login_url(&sb, "https://auth.corp", "a.corp", 6, "/", 1, NULL);
    assert_string_equal(sb.p, "https://auth.corp/cdn-cgi/access/login/a.corp?redirect_url=/");
    sb_free(&sb);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nonce_and_tag),
        cmocka_unit_test(test_cookie_name),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_login_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
