/* Unit tests of the per-client connection counts (src/proxy/connlimit.c): a client is an IPv4
 * address or an IPv6 /64; take refuses at the cap and counts nothing then; put frees a place;
 * a cap of 0 admits nobody (the caller skips the table when the cap is off); many clients make
 * the table grow without losing a count. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "proxy/connlimit.h"

#include <arpa/inet.h>
#include <string.h>

static void ip(const char *s, uint8_t out[16])
{
    memset(out, 0, 16);
    if (inet_pton(AF_INET, s, out + 12) == 1) {
        out[10] = out[11] = 0xff;
        return;
    }
    assert_int_equal(inet_pton(AF_INET6, s, out), 1);
}

static void test_cap(void **state)
{
    struct connlimit *cl = connlimit_new();
    uint8_t a[16], b[16];
    ip("192.0.2.1", a);
    ip("192.0.2.2", b);
    assert_true(connlimit_take(cl, a, 2));
    assert_true(connlimit_take(cl, a, 2));
    assert_false(connlimit_take(cl, a, 2));
    assert_false(connlimit_take(cl, a, 2)); /* a refusal counts nothing */
    assert_true(connlimit_take(cl, b, 2));  /* another client, its own budget */
    connlimit_put(cl, a);
    assert_true(connlimit_take(cl, a, 2));
    assert_false(connlimit_take(cl, a, 2));
    connlimit_put(cl, a);
    connlimit_put(cl, a);
    connlimit_put(cl, b);
    assert_true(connlimit_take(cl, a, 1)); /* all gone: a fresh entry */
    assert_false(connlimit_take(cl, b, 0));
    connlimit_put(cl, a);
    connlimit_free(cl);
}

static void test_ipv6_prefix(void **state)
{
    struct connlimit *cl = connlimit_new();
    uint8_t x[16], y[16], z[16], v4[16];
    ip("2001:db8:1:2::1", x);
    ip("2001:db8:1:2:ffff:ffff:ffff:ffff", y); /* same /64 */
    ip("2001:db8:1:3::1", z);                  /* next /64 */
    ip("0.0.0.0", v4);                          /* ::ffff:0.0.0.0 is not ::/64's */
    assert_true(connlimit_take(cl, x, 2));
    assert_true(connlimit_take(cl, y, 2));
    assert_false(connlimit_take(cl, x, 2));
    assert_true(connlimit_take(cl, z, 2));
    uint8_t zero[16] = {0};
    assert_true(connlimit_take(cl, zero, 1));
    assert_true(connlimit_take(cl, v4, 1));
    connlimit_free(cl); /* frees what is still counted */
}

/* 10.x.y.z for the number i */
static void ip_n(unsigned i, uint8_t out[16])
{
    ip("10.0.0.0", out);
    out[13] = (uint8_t)(i >> 16);
    out[14] = (uint8_t)(i >> 8);
    out[15] = (uint8_t)i;
}

static void test_many_clients(void **state)
{
    struct connlimit *cl = connlimit_new();
    uint8_t a[16];
    for (unsigned i = 0; i < 20000; i++) {
        ip_n(i, a);
        assert_true(connlimit_take(cl, a, 1));
    }
    for (unsigned i = 0; i < 20000; i++) {
        ip_n(i, a);
        assert_false(connlimit_take(cl, a, 1));
        connlimit_put(cl, a);
        assert_true(connlimit_take(cl, a, 1));
    }
    connlimit_free(cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_ipv6_prefix),
        cmocka_unit_test(test_many_clients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
