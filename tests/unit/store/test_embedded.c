/* Unit tests of the embedded store's add-if-absent (src/store/embedded.c, store.h): store_add
 * puts only when the key is absent, leaves the value alone otherwise, and of many threads
 * adding one key at once exactly one wins. (The Redis backend's SET NX is tried against a real
 * Redis in tests/blackbox/test_cluster.py.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "store/store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void add_if_absent(void **state)
{
    struct store *s = store_embedded_new();
    char *v = NULL;
    size_t n;
    assert_int_equal(store_add(s, "cli:k", "first", 5, 60), STORE_OK);
    assert_int_equal(store_add(s, "cli:k", "second", 6, 60), STORE_EXISTS);
    assert_int_equal(store_get(s, "cli:k", &v, &n), STORE_OK);
    assert_string_equal(v, "first");
    free(v);
    assert_int_equal(store_put(s, "cli:k", "third", 5, 60), STORE_OK); /* put still overwrites */
    assert_int_equal(store_del(s, "cli:k"), STORE_OK);
    assert_int_equal(store_add(s, "cli:k", "again", 5, 60), STORE_OK);
    assert_int_equal(store_add(s, "cli:gone", "x", 1, 0), STORE_OK);     /* expired at once: */
    assert_int_equal(store_add(s, "cli:gone", "y", 1, 60), STORE_OK);    /* absent again */
    store_free(s);
}

struct race {
    struct store *s;
    int won;
};

static void *racer(void *arg)
{
    struct race *r = arg;
    r->won = store_add(r->s, "clidone:k", "1", 1, 60) == STORE_OK;
    return NULL;
}

static void one_winner(void **state)
{
    struct store *s = store_embedded_new();
    for (int round = 0; round < 50; round++) {
        pthread_t t[8];
        struct race r[8];
        for (int i = 0; i < 8; i++) {
            r[i] = (struct race){ s, 0 };
            pthread_create(&t[i], NULL, racer, &r[i]);
        }
        int won = 0;
        for (int i = 0; i < 8; i++) {
            pthread_join(t[i], NULL);
            won += r[i].won;
        }
        assert_int_equal(won, 1);
        assert_int_equal(store_del(s, "clidone:k"), STORE_OK);
    }
    store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(add_if_absent),
        cmocka_unit_test(one_winner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
