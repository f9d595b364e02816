/* Unit tests of revocations (src/token/revoke.c) in a temporary state_dir: what the gateway
 * relies on when it refuses a token. A revocation covers tokens issued at or before its time
 * (its own second included) and none after; an email revocation covers every spelling of the
 * mailbox; the later time of a key is kept; session entries no token can carry any more are
 * pruned; a merge says whether it changed the file; a changed file is seen as stale; a corrupt
 * file is an error, a missing one an empty list. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "token/revoke.h"

#include "../unit.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[64];

static int setup(void **state)
{
    return unit_tmpdir(g_dir, "revoke");
}

static int teardown(void **state)
{
    return unit_rmtree(g_dir);
}

static struct revocations *load(void)
{
    char *err = NULL;
    struct revocations *r = revocations_load(g_dir, &err);
    if (!r)
        fail_msg("revocations_load: %s", err ? err : "?");
    return r;
}

static void empty_without_file(void **state)
{
    struct revocations *r = load();
    for (int k = 0; k < REVOKE_KINDS; k++)
        assert_int_equal(r->n[k], 0);
    assert_false(revocations_check(r, NULL, "a@x.com", "app", "s1", 0));
    assert_false(revocations_check(NULL, NULL, "a@x.com", "app", "s1", 0)); /* no list yet */
    revocations_unref(r);
}

static void boundaries_and_kinds(void **state)
{
    char *err = NULL;
    assert_int_equal(revocations_add(g_dir, REVOKE_EMAIL, "a@x.com", 1000, &err), 0);
    assert_int_equal(revocations_add(g_dir, REVOKE_APP, "wiki", 2000, &err), 0);
    assert_int_equal(revocations_add(g_dir, REVOKE_SESSION, "s1", 3000, &err), 0);
    struct revocations *r = load();
    assert_true(revocations_check(r, NULL, "a@x.com", NULL, NULL, 999));
    assert_true(revocations_check(r, NULL, "a@x.com", NULL, NULL, 1000)); /* its own second */
    assert_false(revocations_check(r, NULL, "a@x.com", NULL, NULL, 1001)); /* signed in again */
    assert_true(revocations_check(r, NULL, "a+tag@x.com", NULL, NULL, 1000)); /* the mailbox */
    assert_true(revocations_check(r, NULL, "A@X.COM", NULL, NULL, 1000));
    assert_true(revocations_check(r, "-", "a-tag@x.com", NULL, NULL, 1000)); /* the app's seps */
    assert_false(revocations_check(r, "-", "a+tag@x.com", NULL, NULL, 1000));
    assert_false(revocations_check(r, NULL, "b@x.com", NULL, NULL, 1));
    assert_false(revocations_check(r, NULL, "a@x.co", NULL, NULL, 1));
    assert_true(revocations_check(r, NULL, NULL, "wiki", NULL, 2000));
    assert_false(revocations_check(r, NULL, NULL, "wiki", NULL, 2001));
    assert_false(revocations_check(r, NULL, NULL, "wiki2", NULL, 1));
    assert_true(revocations_check(r, NULL, NULL, NULL, "s1", 3000));
    assert_false(revocations_check(r, NULL, NULL, NULL, "s2", 1));
    /* kinds do not mix: an app named like a session, an email like an app */
    assert_false(revocations_check(r, NULL, NULL, "s1", NULL, 1));
    assert_false(revocations_check(r, NULL, NULL, NULL, "wiki", 1));
    /* any one of the three is enough */
    assert_true(revocations_check(r, NULL, "b@x.com", "other", "s1", 1));
    revocations_unref(r);
}

static void keeps_the_later_and_merges(void **state)
{
    char *err = NULL;
    assert_int_equal(revocations_add(g_dir, REVOKE_APP, "wiki", 2000, &err), 0);
    assert_int_equal(revocations_add(g_dir, REVOKE_APP, "wiki", 1500, &err), 0); /* earlier: kept 2000 */
    struct revocations *r = load();
    assert_true(revocations_check(r, NULL, NULL, "wiki", NULL, 2000));
    assert_false(revocations_stale(r, g_dir));
    json_t *same = json_pack("{s:{s:I}}", "apps", "wiki", (json_int_t)1800);
    assert_int_equal(revocations_merge(g_dir, same, 0, &err), 0); /* nothing new */
    json_t *add = json_pack("{s:{s:I,s:I},s:{s:I}}", "apps", "wiki", (json_int_t)2500, "mail",
                            (json_int_t)10, "emails", "c@y.org", (json_int_t)50);
    assert_int_equal(revocations_merge(g_dir, add, 0, &err), 1);
    assert_true(revocations_stale(r, g_dir)); /* the workers reload */
    revocations_unref(r);
    r = load();
    assert_true(revocations_check(r, NULL, NULL, "wiki", NULL, 2500));
    assert_true(revocations_check(r, NULL, NULL, "mail", NULL, 10));
    assert_true(revocations_check(r, NULL, "c@y.org", NULL, NULL, 50));
    assert_false(revocations_stale(r, g_dir));
    revocations_ref(r); /* two holders: the list lives until both let go */
    revocations_unref(r);
    assert_true(revocations_check(r, NULL, NULL, "mail", NULL, 10));
    revocations_unref(r);
    json_decref(same);
    json_decref(add);
}

static void prunes_old_sessions(void **state)
{
    char *err = NULL;
    assert_int_equal(revocations_add(g_dir, REVOKE_SESSION, "old", 100, &err), 0);
    assert_int_equal(revocations_add(g_dir, REVOKE_APP, "oldapp", 100, &err), 0);
    assert_int_equal(revocations_add_pruning(g_dir, REVOKE_SESSION, "new", 500, 200, &err), 0);
    struct revocations *r = load();
    assert_int_equal(r->n[REVOKE_SESSION], 1); /* "old" dropped: no token of it is still valid */
    assert_true(revocations_check(r, NULL, NULL, NULL, "new", 500));
    assert_false(revocations_check(r, NULL, NULL, NULL, "old", 100));
    assert_true(revocations_check(r, NULL, NULL, "oldapp", NULL, 100)); /* only sessions */
    revocations_unref(r);
}

static void many_sorted(void **state)
{
    char *err = NULL;
    json_t *add = json_pack("{s:{}}", "sessions");
    json_t *s = json_object_get(add, "sessions");
    char key[32];
    for (int i = 0; i < 300; i++) { /* looked up by binary search: any order in the file */
        snprintf(key, sizeof key, "s%d", (i * 7919) % 300);
        json_object_set_new(s, key, json_integer(1000 + (i * 7919) % 300));
    }
    assert_int_equal(revocations_merge(g_dir, add, 0, &err), 1);
    struct revocations *r = load();
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "s%d", i);
        assert_true(revocations_check(r, NULL, NULL, NULL, key, 1000 + i));
        assert_false(revocations_check(r, NULL, NULL, NULL, key, 1001 + i));
    }
    assert_false(revocations_check(r, NULL, NULL, NULL, "s300", 0));
    revocations_unref(r);
    json_decref(add);
}

static void corrupt_file(void **state)
{
    char path[128];
    snprintf(path, sizeof path, "%s/revocations.json", g_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"apps\": {\"wiki\": 12", f);
    fclose(f);
    char *err = NULL;
    assert_null(revocations_load(g_dir, &err));
    assert_non_null(err);
    free(err);
    err = NULL;
    assert_int_equal(revocations_add(g_dir, REVOKE_APP, "wiki", 1, &err), -1); /* not overwritten */
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(empty_without_file, setup, teardown),
        cmocka_unit_test_setup_teardown(boundaries_and_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(keeps_the_later_and_merges, setup, teardown),
        cmocka_unit_test_setup_teardown(prunes_old_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(many_sorted, setup, teardown),
        cmocka_unit_test_setup_teardown(corrupt_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
