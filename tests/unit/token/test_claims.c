/* Unit tests of the JWT claims reader (src/token/claims.c): members and their kinds, strings
 * unescaped in place, numbers, arrays of strings, and every refusal (duplicates at any depth,
 * bad escapes and surrogates, NUL, invalid UTF-8, trailing text, non-objects, limits). The
 * libFuzzer target fuzz/fuzz_claims.c holds it to jansson on any input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "token/claims.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse(const char *text, struct claims *c, char **buf)
{
    size_t n = strlen(text);
    *buf = malloc(n + 1);
    memcpy(*buf, text, n + 1);
    return claims_parse(*buf, n, c);
}

static void test_members(void **state)
{
    (void)state;
    struct claims c;
    char *buf;
    assert_int_equal(parse(" {\"aud\":[\"a\",\"b\"],\"email\":\"x\\u0040y.z\",\"exp\":1700000000,"
                           "\"iat\":1.5e9,\"n\":null,\"t\":true,\"o\":{\"k\":[1,{}]},"
                           "\"g\":[],\"mix\":[\"s\",1],\"s\":\"caf\\u00e9 \\ud83d\\ude00\\n\"} ", &c, &buf), 0);
    assert_int_equal(c.n, 10);
    const struct claims_member *m = claims_get(&c, "aud");
    assert_true(m->kind == CLAIMS_ARRAY && m->strings && m->count == 2);
    assert_string_equal(c.strs[m->first], "a");
    assert_string_equal(c.strs[m->first + 1], "b");
    m = claims_get(&c, "email");
    assert_true(m->kind == CLAIMS_STRING);
    assert_string_equal(c.strs[m->first], "x@y.z");
    assert_true(claims_get(&c, "exp")->kind == CLAIMS_INTEGER && claims_get(&c, "exp")->integer == 1700000000);
    assert_true(claims_get(&c, "iat")->kind == CLAIMS_REAL && claims_get(&c, "iat")->real == 1.5e9);
    assert_true(claims_get(&c, "n")->kind == CLAIMS_NULL && claims_get(&c, "t")->kind == CLAIMS_TRUE);
    assert_true(claims_get(&c, "o")->kind == CLAIMS_OBJECT);
    assert_true(claims_get(&c, "g")->kind == CLAIMS_ARRAY && claims_get(&c, "g")->strings &&
                claims_get(&c, "g")->count == 0);
    assert_false(claims_get(&c, "mix")->strings);
    assert_string_equal(c.strs[claims_get(&c, "s")->first], "caf\xc3\xa9 \xf0\x9f\x98\x80\n");
    assert_null(claims_get(&c, "missing"));
    claims_free(&c);
    free(buf);
}

static void test_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", " ", "[]", "\"s\"", "1", "null", "{", "{\"a\":1", "{\"a\":1,}", "{\"a\" 1}", "{a:1}",
        "{\"a\":1} x", "{\"a\":1}{}", "{\"a\":1,\"a\":2}", "{\"o\":{\"b\":1,\"b\":2}}",
        "{\"a\":\"\\u0000\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00\\ud800\"}", "{\"a\":\"\\x\"}",
        "{\"a\":\"\\u12\"}", "{\"a\":\"tab\there\"}", "{\"a\":\"\xc3\"}", "{\"a\":\"\xc0\xaf\"}",
        "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":01}", "{\"a\":+1}", "{\"a\":.5}", "{\"a\":1.}",
        "{\"a\":1e}", "{\"a\":-}", "{\"a\":9223372036854775808}", "{\"a\":1e999}", "{\"a\":tru}",
        "{\"a\":nul}", "{\"a\":[1,]}", "{\"a\":[,1]}", "\xef\xbb\xbf{}",
        "{\"a\":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}", /* deeper than CLAIMS_MAX_DEPTH */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct claims c;
        char *buf;
        if (parse(bad[i], &c, &buf) == 0)
            fail_msg("accepted: %s", bad[i]);
        assert_null(c.strs);
        free(buf);
    }
    char many[4096] = "{";
    for (int i = 0; i <= CLAIMS_MAX_MEMBERS; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%s\"k%d\":%d", i ? "," : "", i, i);
    strcat(many, "}");
    struct claims c;
    char *buf;
    assert_int_equal(parse(many, &c, &buf), -1); /* past CLAIMS_MAX_MEMBERS */
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_members),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
