/* Unit tests of the signing key set (src/token/keys.c) in a temporary state_dir: the first key is
 * made when there is none; keys come out newest first whatever order the directory lists them
 * in (keys[0] signs: the header's promise), ordered by nanoseconds within one second; an older
 * key verifies until `overlap` after its successor appeared, then it is deleted; a key older
 * than rotate_after is replaced; another process's rotation makes the set stale; the certs
 * document lists the keys in the set's order; a file must carry its own kid. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "token/keys.h"

#include "../unit.h"

#include <fcntl.h>
#include <jansson.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DAY (24 * 3600)
#define YEARS (10 * 365 * DAY)

static char g_dir[64];

static int setup(void **state)
{
    return unit_tmpdir(g_dir, "keys");
}

static int teardown(void **state)
{
    return unit_rmtree(g_dir);
}

static struct keyset *load(int64_t rotate_after, int64_t overlap, bool force)
{
    char *err = NULL;
    struct keyset *ks = keys_load(g_dir, rotate_after, overlap, force, &err);
    if (!ks)
        fail_msg("keys_load: %s", err ? err : "?");
    return ks;
}

static void set_mtime(const char *kid, time_t sec, long nsec)
{
    char path[160];
    snprintf(path, sizeof path, "%s/keys/%s.pem", g_dir, kid);
    struct timespec ts[2] = { { sec, nsec }, { sec, nsec } };
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static bool file_exists(const char *kid)
{
    char path[160];
    snprintf(path, sizeof path, "%s/keys/%s.pem", g_dir, kid);
    return access(path, F_OK) == 0;
}

/* Three keys made one after the other; their kids in *kids (made order). */
static void make_three(char kids[3][33])
{
    for (int i = 0; i < 3; i++) {
        struct keyset *ks = load(0, YEARS, i > 0);
        assert_true(ks->made);
        assert_int_equal(ks->n, (size_t)i + 1);
        memcpy(kids[i], ks->keys[0].kid, 33);
        keyset_unref(ks);
    }
}

static void first_key_and_reload(void **state)
{
    struct keyset *ks = load(0, 3600, false);
    assert_int_equal(ks->n, 1);
    assert_true(ks->made);
    assert_int_equal(strlen(ks->keys[0].kid), 32);
    assert_int_equal(ks->keys[0].verify_until, 0); /* no successor */
    assert_non_null(ks->keys[0].pkey);
    assert_true(file_exists(ks->keys[0].kid));
    struct keyset *again = load(0, 3600, false);
    assert_false(again->made); /* the same key, read back */
    assert_int_equal(again->n, 1);
    assert_string_equal(again->keys[0].kid, ks->keys[0].kid);
    assert_false(keyset_due(again, 0, time(NULL))); /* 0: never rotates by age */
    /* the kid is the key's own: keys_pem_kid of the file agrees */
    char path[160], kid[33];
    snprintf(path, sizeof path, "%s/keys/%s.pem", g_dir, ks->keys[0].kid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char pem[8192];
    size_t n = fread(pem, 1, sizeof pem, f);
    fclose(f);
    assert_int_equal(keys_pem_kid(pem, n, kid), 0);
    assert_string_equal(kid, ks->keys[0].kid);
    assert_int_equal(keys_pem_kid("not a key", 9, kid), -1);
    keyset_unref(again);
    keyset_unref(ks);
}

static void newest_first(void **state)
{
    char kids[3][33];
    make_three(kids);
    time_t now = time(NULL);
    /* the order of making no longer matches the order of age: the first made is now newest */
    set_mtime(kids[0], now - 10, 0);
    set_mtime(kids[1], now - 30, 0);
    set_mtime(kids[2], now - 20, 0);
    struct keyset *ks = load(0, YEARS, false);
    assert_false(ks->made);
    assert_int_equal(ks->n, 3);
    assert_string_equal(ks->keys[0].kid, kids[0]); /* signs */
    assert_string_equal(ks->keys[1].kid, kids[2]);
    assert_string_equal(ks->keys[2].kid, kids[1]);
    for (size_t i = 1; i < ks->n; i++) {
        assert_true(ks->keys[i - 1].created_ns > ks->keys[i].created_ns);
        assert_int_equal(ks->keys[i].verify_until, ks->keys[i - 1].created + YEARS);
    }
    /* /cdn-cgi/access/certs lists them in the same order */
    json_t *doc = json_loads(ks->certs_json, 0, NULL);
    assert_non_null(doc);
    json_t *keys = json_object_get(doc, "keys");
    assert_int_equal(json_array_size(keys), 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(keys, i), "kid")),
                            ks->keys[i].kid);
    json_decref(doc);
    keyset_unref(ks);
    /* within one second, the nanoseconds decide */
    set_mtime(kids[0], now - 5, 100);
    set_mtime(kids[1], now - 5, 300);
    set_mtime(kids[2], now - 5, 200);
    ks = load(0, YEARS, false);
    assert_string_equal(ks->keys[0].kid, kids[1]);
    assert_string_equal(ks->keys[1].kid, kids[2]);
    assert_string_equal(ks->keys[2].kid, kids[0]);
    keyset_unref(ks);
}

/* Making a key reads the set again (rotation, force): the new key first, the older ones in
 * their order of age, each verifying until `overlap` after the key made after it. */
static void made_key_first(void **state)
{
    char kids[3][33];
    make_three(kids);
    time_t now = time(NULL);
    /* ages out of the order the keys were made in, and of any directory order */
    set_mtime(kids[0], now - 300, 0);
    set_mtime(kids[1], now - 100, 0);
    set_mtime(kids[2], now - 200, 0);
    struct keyset *ks = load(0, YEARS, true);
    assert_true(ks->made);
    assert_int_equal(ks->n, 4);
    for (int i = 0; i < 3; i++)
        assert_string_not_equal(ks->keys[0].kid, kids[i]);
    assert_string_equal(ks->keys[1].kid, kids[1]);
    assert_string_equal(ks->keys[2].kid, kids[2]);
    assert_string_equal(ks->keys[3].kid, kids[0]);
    for (size_t i = 1; i < ks->n; i++) {
        assert_true(ks->keys[i - 1].created_ns > ks->keys[i].created_ns);
        assert_int_equal(ks->keys[i].verify_until, ks->keys[i - 1].created + YEARS);
    }
    assert_int_equal(ks->keys[0].verify_until, 0);
    keyset_unref(ks);
}

static void overlap_then_deleted(void **state)
{
    char kids[3][33];
    make_three(kids);
    time_t now = time(NULL);
    set_mtime(kids[0], now - 10 * DAY, 0); /* successor (kids[1]) 5 days ago: past a 2-day overlap */
    set_mtime(kids[1], now - 5 * DAY, 0);  /* successor (kids[2]) 1 day ago: within it */
    set_mtime(kids[2], now - 1 * DAY, 0);
    struct keyset *ks = load(0, 2 * DAY, false);
    assert_int_equal(ks->n, 2);
    assert_string_equal(ks->keys[0].kid, kids[2]);
    assert_string_equal(ks->keys[1].kid, kids[1]);
    assert_false(file_exists(kids[0]));
    assert_true(file_exists(kids[1]));
    time_t until = ks->keys[1].verify_until;
    assert_int_equal(until, now - DAY + 2 * DAY);
    assert_non_null(keyset_find(ks, kids[2], 32, now));
    assert_non_null(keyset_find(ks, kids[1], 32, until - 1));
    assert_null(keyset_find(ks, kids[1], 32, until)); /* past its overlap */
    assert_non_null(keyset_find(ks, kids[2], 32, until + YEARS)); /* the signer has no end */
    assert_null(keyset_find(ks, kids[0], 32, now));               /* deleted */
    assert_null(keyset_find(ks, kids[2], 31, now));               /* a prefix is not a kid */
    keyset_unref(ks);
}

static void rotates_when_due(void **state)
{
    struct keyset *ks = load(DAY, YEARS, false);
    char old[33];
    memcpy(old, ks->keys[0].kid, 33);
    keyset_unref(ks);
    time_t now = time(NULL);
    set_mtime(old, now - 2 * DAY, 0);
    ks = load(0, YEARS, false);
    assert_true(keyset_due(ks, DAY, now));
    assert_false(keyset_due(ks, 3 * DAY, now));
    keyset_unref(ks);
    struct keyset *before = load(3 * DAY, YEARS, false); /* not due: nothing made */
    assert_false(before->made);
    assert_int_equal(before->n, 1);
    ks = load(DAY, YEARS, false); /* due: a new key signs, the old one still verifies */
    assert_true(ks->made);
    assert_int_equal(ks->n, 2);
    assert_string_not_equal(ks->keys[0].kid, old);
    assert_string_equal(ks->keys[1].kid, old);
    assert_true(ks->keys[0].created >= now - 5);
    assert_true(keyset_stale(before, g_dir)); /* another holder sees the rotation */
    keyset_unref(before);
    keyset_unref(ks);
}

static void renamed_file_refused(void **state)
{
    struct keyset *ks = load(0, YEARS, false);
    char from[160], to[160];
    snprintf(from, sizeof from, "%s/keys/%s.pem", g_dir, ks->keys[0].kid);
    snprintf(to, sizeof to, "%s/keys/%032x.pem", g_dir, 0);
    keyset_unref(ks);
    assert_int_equal(rename(from, to), 0);
    char *err = NULL;
    ks = keys_load(g_dir, 0, YEARS, false, &err);
    if (ks) { /* whatever it decides, the renamed file never signs under the name it was given */
        for (size_t i = 0; i < ks->n; i++)
            assert_string_not_equal(ks->keys[i].kid, "00000000000000000000000000000000");
        keyset_unref(ks);
    } else {
        assert_non_null(err);
        free(err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(first_key_and_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(newest_first, setup, teardown),
        cmocka_unit_test_setup_teardown(made_key_first, setup, teardown),
        cmocka_unit_test_setup_teardown(overlap_then_deleted, setup, teardown),
        cmocka_unit_test_setup_teardown(rotates_when_due, setup, teardown),
        cmocka_unit_test_setup_teardown(renamed_file_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
