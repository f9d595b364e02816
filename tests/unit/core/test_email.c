/* Unit tests of src/core/email.c: which addresses are one plain address, and the two ways of
 * comparing them (exact for what admits, by mailbox for what refuses). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/email.h"

#include <string.h>

static void test_check_accepts(void **state)
{
    (void)state;
    const char *ok[] = {
        "a@b", "a@corp.com", "first.last+tag@corp.example.com", "Bob@Example.COM",
        "o'brien@corp.com", "x_y-z=1#$&*/?^`{|}~@corp.com", "a@xn--bcher-kva.example",
        "a@1corp.com", "a@corp.c0m", "a@a-b.c-d.com",
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        if (email_check(ok[i]))
            fail_msg("refused %s: %s", ok[i], email_check(ok[i]));
}

static void test_check_refuses(void **state)
{
    (void)state;
    char local65[80], dom[300];
    memset(local65, 'a', 65);
    strcpy(local65 + 65, "@corp.com");
    strcpy(dom, "a@");
    for (int i = 0; i < 5; i++)
        strcat(dom, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.");
    strcat(dom, "com");
    const char *bad[] = {
        "", "a", "@corp.com", "a@", "a@evil.com@corp.com", "a@@corp.com",
        "\"a@evil.com\"@corp.com", "\"a\"@corp.com", "a(comment)@corp.com", "a\\@corp.com",
        "a b@corp.com", " a@corp.com", "a@corp.com ", "a@corp.com\r", "a\n@corp.com",
        "a\t@corp.com", "a\x7f@corp.com", "a,b@corp.com", "a;b@corp.com", "<a@corp.com>",
        "a@[192.0.2.1]", "a@[IPv6:::1]", "a@192.0.2.1", "a@127.0.0.1", "a@1", "a@corp.com.",
        "a@corp..com", "a@.corp.com", "a@-corp.com", "a@corp-.com", "a@corp.com-",
        "a@co_rp.com", "a@corp.com:25", "a@corp.com/x", "a@corp.com%0a",
        ".a@corp.com", "a.@corp.com", "a..b@corp.com",
        "caf\xc3\xa9@corp.com", "a@b\xc3\xbc" "cher.example", "\xef\xbc\xa1@corp.com",
        local65, dom,
        /* routes to another mailbox: the percent hack and UUCP bang paths */
        "contractor%example.com@example.com", "example.com!contractor@example.com", "a!b@corp.com",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (!email_check(bad[i]))
            fail_msg("accepted '%s'", bad[i]);
    assert_string_equal(email_check("a@evil.com@corp.com"), "an e-mail address has exactly one '@'");
    assert_non_null(strstr(email_check("a@corp.com."), "ending in '.'"));
    assert_non_null(strstr(email_check("a@[192.0.2.1]"), "IP-literal"));
}

static void test_exact(void **state)
{
    (void)state;
    assert_true(email_matches("a@corp.com", "a@corp.com", NULL, EMAIL_EXACT));
    assert_true(email_matches("a@corp.com", "A@CORP.com", NULL, EMAIL_EXACT));
    /* an allow for a@x admits neither sub-addresses nor other spellings */
    assert_false(email_matches("a@corp.com", "a+x@corp.com", NULL, EMAIL_EXACT));
    assert_false(email_matches("john.doe@gmail.com", "johndoe@gmail.com", NULL, EMAIL_EXACT));
    assert_false(email_matches("a@gmail.com", "a@googlemail.com", NULL, EMAIL_EXACT));
    assert_false(email_matches("a@corp.com", "ab@corp.com", NULL, EMAIL_EXACT));
    assert_false(email_matches("a@corp.com", "a@corp.co", NULL, EMAIL_EXACT));
    assert_false(email_matches("a@corp.com", "a@corp.com.", NULL, EMAIL_EXACT));
    assert_false(email_matches("a@corp.com", NULL, NULL, EMAIL_EXACT));
    assert_false(email_matches(NULL, "a@corp.com", NULL, EMAIL_EXACT));
}

static void test_mailbox_match(void **state)
{
    (void)state;
    const char *rule = "contractor@example.com";
    const char *same[] = {
        "contractor@example.com", "Contractor@EXAMPLE.com", "contractor+x@example.com",
        "contractor+@example.com", "contractor+x+y@example.com", "CONTRACTOR+Tag@example.com",
    };
    for (size_t i = 0; i < sizeof same / sizeof *same; i++)
        if (!email_matches(rule, same[i], NULL, EMAIL_MAILBOX))
            fail_msg("%s does not match %s", same[i], rule);
    const char *other[] = {
        "contractors@example.com", "contracto@example.com", "contractor-x@example.com",
        "contractor.x@example.com", "contractor+x@example.co", "contractor+x@sub.example.com",
        "x+contractor@example.com", "contractor@example.com@evil.com",
        "contractor+x@example.com@evil.com", "contractor", "",
    };
    for (size_t i = 0; i < sizeof other / sizeof *other; i++)
        if (email_matches(rule, other[i], NULL, EMAIL_MAILBOX))
            fail_msg("%s matches %s", other[i], rule);
    /* a mail system that reads '-' (qmail, some Postfix setups): configured separators */
    assert_true(email_matches(rule, "contractor-x@example.com", "+-", EMAIL_MAILBOX));
    assert_true(email_matches(rule, "contractor+x@example.com", "+-", EMAIL_MAILBOX));
    assert_false(email_matches(rule, "contractor+x@example.com", "-", EMAIL_MAILBOX));
    assert_false(email_matches(rule, "contractor_x@example.com", "+-", EMAIL_MAILBOX));
    /* a rule with a tag covers that tag and its own sub-tags only */
    assert_true(email_matches("a+x@corp.com", "a+x@corp.com", NULL, EMAIL_MAILBOX));
    assert_true(email_matches("a+x@corp.com", "a+x+y@corp.com", NULL, EMAIL_MAILBOX));
    assert_false(email_matches("a+x@corp.com", "a+xy@corp.com", NULL, EMAIL_MAILBOX));
    assert_false(email_matches("a+x@corp.com", "a@corp.com", NULL, EMAIL_MAILBOX));
    /* Gmail: dots do not count, googlemail.com is gmail.com, '+' always tags */
    const char *g = "john.doe@gmail.com";
    assert_true(email_matches(g, "johndoe@gmail.com", NULL, EMAIL_MAILBOX));
    assert_true(email_matches(g, "j.o.h.n.d.o.e@gmail.com", NULL, EMAIL_MAILBOX));
    assert_true(email_matches(g, "JohnDoe+work@GoogleMail.com", NULL, EMAIL_MAILBOX));
    assert_true(email_matches(g, "john.doe.+x@gmail.com", NULL, EMAIL_MAILBOX));
    assert_true(email_matches(g, "john.doe+x@gmail.com", "-", EMAIL_MAILBOX));
    assert_false(email_matches(g, "john.doe.x@gmail.com", NULL, EMAIL_MAILBOX));
    assert_false(email_matches(g, "johndoe@example.com", NULL, EMAIL_MAILBOX));
    assert_false(email_matches("john.doe@example.com", "johndoe@example.com", NULL, EMAIL_MAILBOX));
}

static void test_domain(void **state)
{
    (void)state;
    assert_true(email_domain_matches("corp.com", "a@corp.com", EMAIL_EXACT));
    assert_true(email_domain_matches("corp.com", "a@CORP.COM", EMAIL_EXACT));
    assert_false(email_domain_matches("corp.com", "a@evil.com@corp.com", EMAIL_MAILBOX));
    assert_false(email_domain_matches("corp.com", "a@sub.corp.com", EMAIL_MAILBOX));
    assert_false(email_domain_matches("corp.com", "a@evilcorp.com", EMAIL_MAILBOX));
    assert_false(email_domain_matches("corp.com", "corp.com", EMAIL_MAILBOX));
    assert_false(email_domain_matches("gmail.com", "a@googlemail.com", EMAIL_EXACT));
    assert_true(email_domain_matches("gmail.com", "a@googlemail.com", EMAIL_MAILBOX));
}

static void test_mailbox_key(void **state)
{
    (void)state;
    char out[EMAIL_MAX_LEN + 1];
    assert_true(email_mailbox("Contractor+X@Example.com", NULL, out, sizeof out));
    assert_string_equal(out, "contractor@example.com");
    assert_true(email_mailbox("a-b+c@corp.com", "-+", out, sizeof out));
    assert_string_equal(out, "a@corp.com");
    assert_true(email_mailbox("+x@corp.com", NULL, out, sizeof out)); /* no mailbox before it */
    assert_string_equal(out, "+x@corp.com");
    assert_true(email_mailbox("J.Doe+w@googlemail.com", "-", out, sizeof out));
    assert_string_equal(out, "jdoe@gmail.com");
    assert_false(email_mailbox("a@b@c", NULL, out, sizeof out));
    assert_false(email_mailbox("abcdef@corp.com", NULL, out, 8));
    assert_true(email_mailbox("ab@c", NULL, out, 5));
    assert_string_equal(out, "ab@c");
    assert_false(email_mailbox("ab@c", NULL, out, 4));
}

static void test_separators(void **state)
{
    (void)state;
    assert_true(email_separator_ok('+'));
    assert_true(email_separator_ok('-'));
    assert_true(email_separator_ok('='));
    assert_false(email_separator_ok('.'));
    assert_false(email_separator_ok('@'));
    assert_false(email_separator_ok('a'));
    assert_false(email_separator_ok('1'));
    assert_false(email_separator_ok(' '));
    assert_false(email_separator_ok('\0'));
    assert_false(email_separator_ok('"'));
    assert_false(email_separator_ok('%'));
    assert_false(email_separator_ok('!'));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_accepts), cmocka_unit_test(test_check_refuses),
        cmocka_unit_test(test_exact),         cmocka_unit_test(test_mailbox_match),
        cmocka_unit_test(test_domain),        cmocka_unit_test(test_mailbox_key),
        cmocka_unit_test(test_separators),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
