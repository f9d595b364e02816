/* Unit tests of runtime_check (src/server/runtime.c): what config_load leaves to whoever builds
 * a runtime, reported as "FILE:LINE:COL: message" at the key that names it: every invalid
 * domain pattern (config_load keeps the patterns as written), and with Redis the store's key
 * and password files (config_load keeps their paths). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HEAD "listen: [{ address: \"127.0.0.1:8080\" }]\nauth_domain: auth.example.com\n" \
             "state_dir: /tmp/latch-unit-runtime-check\n"

static void write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

/* yaml loads; runtime_check refuses it with exactly the `n` given lines, in order. */
static void expect_check_errors(const char *yaml, size_t n, ...)
{
    struct config_errors errs = { 0 }, warns = { 0 };
    struct config *cfg = config_load_buffer("t.yaml", yaml, strlen(yaml), &errs);
    if (!cfg)
        config_errors_print(&errs, stderr);
    assert_non_null(cfg);
    int rc = runtime_check(cfg, &errs, &warns);
    if (errs.n != n)
        config_errors_print(&errs, stderr);
    assert_int_equal(rc, -1);
    assert_int_equal(errs.n, n);
    char got[2048] = "", want[2048] = "";
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0, g = 0, w = 0; i < n; i++) {
        g += (size_t)snprintf(got + g, sizeof got - g, "%s\n", errs.lines[i]);
        w += (size_t)snprintf(want + w, sizeof want - w, "%s\n", va_arg(ap, const char *));
    }
    va_end(ap);
    assert_string_equal(got, want);
    config_errors_clear(&errs);
    config_errors_clear(&warns);
    config_free(cfg);
}

static void test_domain_patterns(void **state)
{
    (void)state;
    expect_check_errors(HEAD "apps:\n  - { name: a, domains: [\"a..com\", \"**.a.com\", \"a.com:0\", "
                             "\"a.com/x y\", \"a.com/#\"], origin: echo, policies: "
                             "[{name: p, decision: bypass, include: [{everyone: {}}]}] }\n",
                        5, "t.yaml:5:26: invalid domain pattern 'a..com': empty label in host",
                        "t.yaml:5:36: invalid domain pattern '**.a.com': a '*' is allowed once, in "
                        "the first label of the host",
                        "t.yaml:5:48: invalid domain pattern 'a.com:0': port must be a number from "
                        "1 to 65535",
                        "t.yaml:5:59: invalid domain pattern 'a.com/x y': invalid path (escapes, "
                        "controls, backslash or '#')",
                        "t.yaml:5:72: invalid domain pattern 'a.com/#': invalid path (escapes, "
                        "controls, backslash or '#')");
}

static void test_store_files(void **state)
{
    (void)state;
    write_file("/tmp/latch-unit-short.key", "c2hvcnQ=\n");
    expect_check_errors(HEAD "store: redis://r:6379/0\nstore_key_file: /tmp/latch-unit-short.key\n",
                        1, "t.yaml:5:17: 'store_key_file': /tmp/latch-unit-short.key must hold 32 "
                        "random bytes in base64 (head -c32 /dev/urandom | base64)");
    expect_check_errors(HEAD "store: redis://r:6379/0\nstore_key_file: /nonexistent/k\n"
                             "store_password_file: /nonexistent/p\n",
                        2, "t.yaml:5:17: 'store_key_file': cannot read /nonexistent/k: No such file "
                        "or directory",
                        "t.yaml:6:22: 'store_password_file': cannot read /nonexistent/p: No such "
                        "file or directory");
    /* the password file is read whatever the store, as the key is with Redis only */
    expect_check_errors(HEAD "store_password_file: /nonexistent/p\n", 1,
                        "t.yaml:4:22: 'store_password_file': cannot read /nonexistent/p: No such "
                        "file or directory");
    unlink("/tmp/latch-unit-short.key");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_domain_patterns),
        cmocka_unit_test(test_store_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
