/* Unit tests of the capped string buffer and its JSON writers (src/core/strbuf.c) and of the
 * address text (src/core/ipaddr.c): what every log line and generated answer is made of. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/ipaddr.h"
#include "core/strbuf.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *json_of(const char *s, size_t n)
{
    struct strbuf sb;
    sb_init(&sb, 1 << 20);
    assert_true(sb_json_str(&sb, s, n));
    return sb.p;
}

static void test_json_escapes(void **state)
{
    (void)state;
    char *j = json_of("a\"b\\c\nd\re\tf\x01g\x7f", 14);
    assert_string_equal(j, "\"a\\\"b\\\\c\\nd\\re\\tf\\u0001g\\u007f\"");
    free(j);
    j = json_of("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14); /* valid UTF-8 passes */
    assert_string_equal(j, "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    free(j);
    j = json_of("\xc3(\xed\xa0\x80\xc0\xaf\xff", 8); /* broken, surrogate, overlong, 0xff */
    assert_string_equal(j, "\"\\u00c3(\\u00ed\\u00a0\\u0080\\u00c0\\u00af\\u00ff\"");
    free(j);
    j = json_of("", 0);
    assert_string_equal(j, "\"\"");
    free(j);
}

/* Every single byte, and every pair, comes out as JSON that decodes back to itself (bytes
 * that are not UTF-8 as the code point of the same value). */
static void test_json_every_byte(void **state)
{
    (void)state;
    for (int a = 0; a < 256; a++) {
        for (int b = -1; b < 256; b += (a < 0x80 ? 1 : 17)) {
            char in[2] = { (char)a, (char)b };
            size_t n = b < 0 ? 1 : 2;
            char *j = json_of(in, n);
            json_error_t je;
            json_t *v = json_loads(j, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
            if (!v)
                fail_msg("bytes %02x %02x: not JSON: %s (%s)", a, b & 0xff, j, je.text);
            assert_true(json_is_string(v));
            if (a < 0x80 && (b < 0 || b < 0x80)) {
                assert_int_equal(json_string_length(v), n);
                assert_memory_equal(json_string_value(v), in, n);
            }
            json_decref(v);
            free(j);
        }
    }
}

static void test_json_keys(void **state)
{
    (void)state;
    struct strbuf sb;
    sb_init(&sb, 4096);
    bool first = true;
    sb_adds(&sb, "{");
    sb_json_kv(&sb, &first, "time", "t", 1);
    sb_json_kv(&sb, &first, "we\"ird", NULL, 0);
    sb_json_key(&sb, &first, "a-key-longer-than-sixty-four-bytes-to-take-the-general-way-out-here");
    sb_addu(&sb, 18446744073709551615ull);
    sb_json_key(&sb, &first, "n");
    sb_addu(&sb, 0);
    sb_adds(&sb, "}");
    assert_string_equal(sb.p, "{\"time\":\"t\",\"we\\\"ird\":null,"
                              "\"a-key-longer-than-sixty-four-bytes-to-take-the-general-way-out-here\":"
                              "18446744073709551615,\"n\":0}");
    sb_free(&sb);
}

static void test_cap(void **state)
{
    (void)state;
    struct strbuf sb;
    sb_init(&sb, 16);
    assert_true(sb_adds(&sb, "0123456789"));
    assert_false(sb_adds(&sb, "0123456789")); /* past the cap: refused, flagged, nothing added */
    assert_true(sb.overflow);
    assert_int_equal(sb.len, 10);
    assert_string_equal(sb.p, "0123456789");
    sb_reset(&sb);
    assert_false(sb_json_str(&sb, "0123456789abcdef", 16));
    assert_true(sb.overflow);
    sb_free(&sb);
}

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
        cmocka_unit_test(test_json_escapes),
        cmocka_unit_test(test_json_every_byte),
        cmocka_unit_test(test_json_keys),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_ipaddr),
        cmocka_unit_test(test_loopback_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
