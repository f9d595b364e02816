/* Unit tests of the capped string buffer and its JSON writers (src/core/strbuf.c): what every
 * log line and generated answer is made of. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/strbuf.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_escapes),
        cmocka_unit_test(test_json_every_byte),
        cmocka_unit_test(test_json_keys),
        cmocka_unit_test(test_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
