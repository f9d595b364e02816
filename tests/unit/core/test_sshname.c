/* Unit tests of src/core/sshname.c: which principal names go in an SSH certificate. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/sshname.h"

#include <string.h>

static void test_principal_names(void **state)
{
    (void)state;
    const char *ok[] = { "root", "alice", "a.b_c-d", "deploy@host", "u1", "x+y" };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        assert_true(ssh_principal_ok(ok[i], strlen(ok[i])));
    const char *bad[] = { "", "a b", "a,b", "-oProxyCommand=x", "@all", "a*", "a?", "!a", "a\"b", "a'b",
                          "a\\b", "a{b}", "a\tb", "\xc3\xa9t\xc3\xa9" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (ssh_principal_ok(bad[i], strlen(bad[i])))
            fail_msg("accepted %s", bad[i]);
    char longname[SSH_PRINCIPAL_MAX + 2];
    memset(longname, 'a', sizeof longname);
    assert_true(ssh_principal_ok(longname, SSH_PRINCIPAL_MAX));
    assert_false(ssh_principal_ok(longname, SSH_PRINCIPAL_MAX + 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_principal_names) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
