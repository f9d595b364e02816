/* Unit tests of src/token/sshca.c: an app's CA file name (never a path out of ssh_ca/). Making
 * and reading a CA: tests/unit/token/test_sshcert.c and the black-box tests. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "token/sshca.h"

#include <string.h>

static void test_ca_file_names(void **state)
{
    (void)state;
    char stem[SSHCA_FILE_MAX];
    assert_int_equal(sshca_file_stem("shell", stem), 0);
    assert_string_equal(stem, "shell");
    assert_int_equal(sshca_file_stem("web app", stem), 0);
    assert_string_equal(stem, "%77656220617070");
    assert_int_equal(sshca_file_stem("../x", stem), 0);
    assert_string_equal(stem, "%2e2e2f78");
    assert_int_equal(sshca_file_stem(".hidden", stem), 0);
    assert_int_equal(stem[0], '%');
    assert_true(sshca_stem_ok("shell") && sshca_stem_ok("%2e2e2f78"));
    const char *bad[] = { "", ".", "..", "../x", "a/b", "%", "%2", "%zz", "%2E", ".x" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (sshca_stem_ok(bad[i]))
            fail_msg("accepted stem %s", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_ca_file_names) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
