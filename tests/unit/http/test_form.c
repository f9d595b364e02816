/* Unit tests of the form and query decoder (src/http/form.c): application/x-www-form-urlencoded
 * per the WHATWG URL standard (pairs on '&', '+' a space in values, %XX escapes), the first pair
 * of a name wins, names match exactly, and a value with a malformed escape, a control character
 * or no room in the output is refused rather than truncated. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "http/form.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* want NULL: form_get must fail. */
static void get(const char *s, const char *name, const char *want)
{
    char out[256];
    memset(out, 'Z', sizeof out);
    int n = form_get(s, strlen(s), name, out, sizeof out);
    if (!want) {
        if (n >= 0)
            fail_msg("form_get(\"%s\", %s) = \"%s\", want a refusal", s, name, out);
        return;
    }
    if (n < 0)
        fail_msg("form_get(\"%s\", %s) refused, want \"%s\"", s, name, want);
    assert_int_equal(n, (int)strlen(want));
    assert_memory_equal(out, want, strlen(want) + 1);
}

static void pairs(void **state)
{
    get("csrf=abc&email=a%40b.example", "csrf", "abc");
    get("csrf=abc&email=a%40b.example", "email", "a@b.example");
    get("email=a%40b.example&csrf=abc", "csrf", "abc");
    get("a=1&b=2&c=3", "c", "3");
    get("a=1", "b", NULL);
    get("", "a", NULL);
    get("&&a=1&&", "a", "1");
    get("a=b=c", "a", "b=c");
    get("a=", "a", "");
    get("a", "a", "");                 /* a name alone: an empty value */
    get("a&b=2", "b", "2");
    get("=x&a=1", "a", "1");
}

static void first_wins_and_exact_names(void **state)
{
    get("code=1&code=2", "code", "1");
    get("codex=1&code=2", "code", "2");
    get("xcode=1&code=2", "code", "2");
    get("Code=1&code=2", "code", "2");   /* names are case-sensitive */
    get("cod=1", "code", NULL);
    get("c%6Fde=1", "code", NULL);       /* names are compared as sent */
    get("code+=1", "code", NULL);
}

static void decoding(void **state)
{
    get("q=a+b", "q", "a b");
    get("q=a%2Bb", "q", "a+b");
    get("q=%2f%2F", "q", "//");
    get("q=%41%62", "q", "Ab");
    get("q=%C3%A9", "q", "\xc3\xa9");     /* UTF-8 bytes pass */
    get("q=%25", "q", "%");
    get("q=%2525", "q", "%25");          /* one round only */
    get("q=%", "q", NULL);
    get("q=%4", "q", NULL);
    get("q=%zz", "q", NULL);
    get("q=%4g", "q", NULL);
    get("q=%%41", "q", NULL);
    get("q=%+1", "q", NULL);
}

static void controls_refused(void **state)
{
    get("q=%00", "q", NULL);
    get("q=a%00b", "q", NULL);
    get("q=%09", "q", NULL);
    get("q=%0a", "q", NULL);
    get("q=%0D%0A", "q", NULL);
    get("q=%1f", "q", NULL);
    get("q=%7f", "q", NULL);
    get("q=a\tb", "q", NULL);
    get("q=a\nb", "q", NULL);
    get("q=%20", "q", " ");              /* a space is text */
    get("q=%7e", "q", "~");
}

static void capacity(void **state)
{
    char out[4];
    assert_int_equal(form_get("a=xyz", 5, "a", out, sizeof out), 3);
    assert_string_equal(out, "xyz");
    assert_int_equal(form_get("a=wxyz", 6, "a", out, sizeof out), -1);
    assert_int_equal(form_get("a=%41%42%43", 11, "a", out, sizeof out), 3);
    assert_int_equal(form_get("a=%41%42%43%44", 14, "a", out, sizeof out), -1);
    char one[1];
    assert_int_equal(form_get("a=", 2, "a", one, sizeof one), 0);
    assert_int_equal(one[0], '\0');
    assert_int_equal(form_get("a=x", 3, "a", one, sizeof one), -1);
    /* only n bytes are read: a pair past the end does not exist */
    assert_int_equal(form_get("a=1&b=2", 3, "b", out, sizeof out), -1);
    assert_int_equal(form_get("a=12345", 3, "a", out, sizeof out), 1);
    assert_string_equal(out, "1");
    /* an escape cut by the length is malformed */
    assert_int_equal(form_get("a=%41", 4, "a", out, sizeof out), -1);
}

static void pct_decode(void **state)
{
    char out[64];
    assert_int_equal(form_pct_decode("a+b%20c", 7, out, sizeof out), 5);
    assert_string_equal(out, "a+b c");   /* '+' stays '+' */
    assert_int_equal(form_pct_decode("", 0, out, sizeof out), 0);
    assert_string_equal(out, "");
    assert_int_equal(form_pct_decode("%2F%5c", 6, out, sizeof out), 2);
    assert_string_equal(out, "/\\");
    assert_int_equal(form_pct_decode("%", 1, out, sizeof out), -1);
    assert_int_equal(form_pct_decode("%G0", 3, out, sizeof out), -1);
    assert_int_equal(form_pct_decode("abc", 3, out, 3), -1); /* no room for the NUL */
    assert_int_equal(form_pct_decode("abc", 3, out, 4), 3);
    assert_int_equal(form_pct_decode("a%00b", 5, out, sizeof out), 3);
    assert_memory_equal(out, "a\0b", 4);
}

/* form_urlencode writes every byte value with unreserved characters, '/', ':' and %XX only,
 * and what it writes decodes back to its input (form_get). */
static void urlencode_round_trip(void **state)
{
    (void)state;
    char raw[256];
    for (int i = 0; i < 256; i++)
        raw[i] = (char)i;
    struct strbuf sb;
    sb_init(&sb, 4096);
    sb_adds(&sb, "v=");
    form_urlencode(&sb, raw, sizeof raw);
    for (size_t i = 2; i < sb.len; i++)
        assert_true(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/:%",
                           sb.p[i]) != NULL);
    sb_free(&sb);
    /* form_get refuses controls once decoded: the printable range decodes back unchanged */
    char out[512];
    sb_init(&sb, 4096);
    sb_adds(&sb, "v=");
    form_urlencode(&sb, raw + 32, 95); /* ' ' .. '~' */
    assert_int_equal(form_get(sb.p, sb.len, "v", out, sizeof out), 95);
    assert_memory_equal(out, raw + 32, 95);
    sb_free(&sb);
    sb_init(&sb, 64);
    form_urlencode(&sb, "/a b?c=d&e#f", 12);
    assert_string_equal(sb.p, "/a%20b%3Fc%3Dd%26e%23f");
    sb_free(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pairs),
        cmocka_unit_test(first_wins_and_exact_names),
        cmocka_unit_test(decoding),
        cmocka_unit_test(controls_refused),
        cmocka_unit_test(capacity),
        cmocka_unit_test(pct_decode),
        cmocka_unit_test(urlencode_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
