/* Unit tests of the edit distance and the "did you mean" pick (src/core/suggest.c) that
 * `latchd check` and latchd's command line use for mistyped keys, selectors and commands. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/suggest.h"

#include <string.h>

static void test_distance(void **state)
{
    (void)state;
    assert_int_equal(suggest_distance("", ""), 0);
    assert_int_equal(suggest_distance("abc", "abc"), 0);
    assert_int_equal(suggest_distance("", "abc"), 3);
    assert_int_equal(suggest_distance("abc", ""), 3);
    assert_int_equal(suggest_distance("polices", "policies"), 1);   /* a letter left out */
    assert_int_equal(suggest_distance("policiess", "policies"), 1); /* one too many */
    assert_int_equal(suggest_distance("desicion", "decision"), 2);  /* c/s swapped at a distance */
    assert_int_equal(suggest_distance("chekc", "check"), 1);        /* neighbours swapped */
    assert_int_equal(suggest_distance("kitten", "sitting"), 3);
    assert_int_equal(suggest_distance("ca", "abc"), 3);             /* OSA, not full Damerau */
    assert_int_equal(suggest_distance("Email", "email"), 1);        /* case counts */
    /* symmetric */
    const char *w[] = { "", "a", "ab", "email_domain", "emial_domian", "include", "inculde" };
    for (size_t i = 0; i < sizeof w / sizeof *w; i++)
        for (size_t j = 0; j < sizeof w / sizeof *w; j++)
            assert_int_equal(suggest_distance(w[i], w[j]), suggest_distance(w[j], w[i]));
}

static void test_distance_long_words(void **state)
{
    (void)state;
    char a[SUGGEST_MAX_LEN + 2], b[SUGGEST_MAX_LEN + 2];
    memset(a, 'x', sizeof a - 1);
    a[sizeof a - 1] = '\0';
    memcpy(b, a, sizeof a);
    assert_int_equal(suggest_distance(a, b), 0);
    b[0] = 'y';
    assert_true(suggest_distance(a, b) == SIZE_MAX);
    assert_true(suggest_distance(a, "x") == SIZE_MAX);
    a[SUGGEST_MAX_LEN] = '\0'; /* exactly the maximum is measured */
    b[SUGGEST_MAX_LEN] = '\0';
    assert_int_equal(suggest_distance(a, b), 1);
}

static const char *const KEYS[] = { "name", "domains", "origin", "origin_tls", "policies",
                                    "session_duration", "allowed_idps", NULL, "aud" };

static void test_closest(void **state)
{
    (void)state;
    size_t n = sizeof KEYS / sizeof *KEYS;
    assert_string_equal(suggest_closest("polices", KEYS, n), "policies");
    assert_string_equal(suggest_closest("domain", KEYS, n), "domains");
    assert_string_equal(suggest_closest("orgin", KEYS, n), "origin");
    assert_string_equal(suggest_closest("session_duraton", KEYS, n), "session_duration");
    assert_string_equal(suggest_closest("allowed_idp", KEYS, n), "allowed_idps");
    assert_string_equal(suggest_closest("nmae", KEYS, n), "name");
    /* too far to be a typo: nothing */
    assert_null(suggest_closest("colour", KEYS, n));
    assert_null(suggest_closest("xyz", KEYS, n));
    assert_null(suggest_closest("", KEYS, n));
    /* short words: one edit at most, and never a whole-word replacement */
    assert_null(suggest_closest("ab", KEYS, n));
    assert_string_equal(suggest_closest("aud2", KEYS, n), "aud");
    assert_null(suggest_closest("x", (const char *const[]){ "y" }, 1));
    /* the first of equally near words */
    const char *const two[] = { "group", "groups" };
    assert_string_equal(suggest_closest("grou", two, 2), "group");
    assert_null(suggest_closest("policies", KEYS, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distance),
        cmocka_unit_test(test_distance_long_words),
        cmocka_unit_test(test_closest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
