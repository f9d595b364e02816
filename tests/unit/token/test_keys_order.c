/* Unit tests of the key set's order (src/token/keys.c): keys_load lists the keys newest first,
 * whatever order the directory returns them in, both when it only reads state_dir/keys and
 * when it has just made a key (rotation, force): keys[0] signs, and each older key verifies
 * until `overlap` after the key made after it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "token/keys.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OVERLAP_S (30 * 86400)

/* Sets keys/<kid>.pem's modification time to `ago` seconds before now. */
static void set_age(const char *dir, const char *kid, time_t ago)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/keys/%s.pem", dir, kid);
    struct timespec t[2] = { { time(NULL) - ago, 0 }, { time(NULL) - ago, 0 } };
    assert_int_equal(utimensat(AT_FDCWD, path, t, 0), 0);
}

static void assert_newest_first(const struct keyset *ks)
{
    for (size_t i = 1; i < ks->n; i++) {
        assert_true(ks->keys[i - 1].created_ns > ks->keys[i].created_ns);
        assert_int_equal(ks->keys[i].verify_until, ks->keys[i - 1].created + OVERLAP_S);
    }
    assert_int_equal(ks->keys[0].verify_until, 0);
}

static void newest_first_read_and_made(void **state)
{
    char dir[] = "/tmp/latch-test-keys-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *err = NULL;
    char kid[3][33];
    for (int i = 0; i < 3; i++) {
        struct keyset *ks = keys_load(dir, 0, OVERLAP_S, i > 0, &err);
        assert_non_null(ks);
        assert_true(ks->made);
        memcpy(kid[i], ks->keys[0].kid, sizeof kid[i]);
        keyset_unref(ks);
    }
    /* ages out of the order the keys were made in, and of any directory order */
    set_age(dir, kid[0], 300);
    set_age(dir, kid[1], 100);
    set_age(dir, kid[2], 200);

    struct keyset *ks = keys_load(dir, 0, OVERLAP_S, false, &err);
    assert_non_null(ks);
    assert_false(ks->made);
    assert_int_equal(ks->n, 3);
    assert_string_equal(ks->keys[0].kid, kid[1]);
    assert_string_equal(ks->keys[1].kid, kid[2]);
    assert_string_equal(ks->keys[2].kid, kid[0]);
    assert_newest_first(ks);
    keyset_unref(ks);

    /* after making a key, the set is read again: the new key first, then the same order */
    ks = keys_load(dir, 0, OVERLAP_S, true, &err);
    assert_non_null(ks);
    assert_true(ks->made);
    assert_int_equal(ks->n, 4);
    for (int i = 0; i < 3; i++)
        assert_string_not_equal(ks->keys[0].kid, kid[i]);
    assert_string_equal(ks->keys[1].kid, kid[1]);
    assert_string_equal(ks->keys[2].kid, kid[2]);
    assert_string_equal(ks->keys[3].kid, kid[0]);
    assert_newest_first(ks);
    keyset_unref(ks);

    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(newest_first_read_and_made),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
