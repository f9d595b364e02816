/* Unit tests of the client address text (src/core/ipaddr.c): the form every log line and
 * X-Forwarded-For carries, and the names a token may travel to over plain http. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/ipaddr.h"

#include <arpa/inet.h>
#include <string.h>

static void test_ipaddr(void **state)
{
    (void)state;
    char out[IPADDR_STRLEN];
    uint8_t ip[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0 };
    for (unsigned v = 0; v < 256; v++) { /* every octet value, in every place */
        for (int k = 12; k < 16; k++) {
            memset(ip + 12, k == 12 ? 1 : 255, 4);
            ip[k] = (uint8_t)v;
            char want[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, ip + 12, want, sizeof want);
            assert_int_equal(ipaddr_format(ip, out), strlen(want));
            assert_string_equal(out, want);
        }
    }
    uint8_t v6[16];
    inet_pton(AF_INET6, "2001:db8::1", v6);
    assert_int_equal(ipaddr_format(v6, out), 11);
    assert_string_equal(out, "2001:db8::1");
}

static void test_loopback_names(void **state)
{
    (void)state;
    static const char *const yes[] = { "localhost", "a.localhost", "x.y.localhost", "127.0.0.1",
                                       "127.255.1.2", "[::1]" };
    static const char *const no[] = { "127.attacker.example", "127.1", "0x7f.0.0.1", "0177.0.0.1",
                                      "localhost.example", "evil-localhost", "128.0.0.1", "::1",
                                      "[::2]", "10.0.0.1", "", ".localhost" };
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        if (!ipaddr_loopback_name(yes[i]))
            fail_msg("%s is this machine", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        if (ipaddr_loopback_name(no[i]))
            fail_msg("%s is not this machine's name", no[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipaddr),
        cmocka_unit_test(test_loopback_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
