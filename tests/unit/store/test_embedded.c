/* Unit tests of the embedded store (src/store/embedded.c, store.c): values come back byte for
 * byte, take reads once, del of a missing key is fine, counters count from 1 and expire, a value
 * past its time to live is gone, large identities round-trip under their nonce; store_add puts
 * only when the key is absent, leaves the value alone otherwise, and of many threads adding one
 * key at once exactly one wins. (The Redis backend's SET NX is tried against a real
 * Redis in tests/blackbox/test_cluster.py.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "store/store.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void put_get_take_del(void **state)
{
    (void)state;
    struct store *s = store_embedded_new();
    assert_non_null(s);
    assert_string_equal(store_backend(s), "embedded");
    assert_int_equal(store_up(s), 1);
    assert_false(store_remote(s));
    char *v = NULL;
    size_t n = 0;
    assert_int_equal(store_get(s, "grant:a", &v, &n), STORE_NOT_FOUND);
    static const char bin[] = { 'x', 0, 'y', (char)0xff }; /* opaque bytes, NUL included */
    assert_int_equal(store_put(s, "grant:a", bin, sizeof bin, 60), STORE_OK);
    assert_int_equal(store_get(s, "grant:a", &v, &n), STORE_OK);
    assert_int_equal(n, sizeof bin);
    assert_memory_equal(v, bin, sizeof bin);
    assert_int_equal(v[n], 0); /* NUL-terminated for convenience */
    free(v);
    assert_int_equal(store_put(s, "grant:a", "new", 3, 60), STORE_OK); /* overwrites */
    assert_int_equal(store_put(s, "grant:b", "other", 5, 60), STORE_OK);
    assert_int_equal(store_take(s, "grant:a", &v, &n), STORE_OK);
    assert_string_equal(v, "new");
    free(v);
    assert_int_equal(store_take(s, "grant:a", &v, &n), STORE_NOT_FOUND); /* single use */
    assert_int_equal(store_get(s, "grant:b", &v, &n), STORE_OK);          /* its neighbour stays */
    assert_string_equal(v, "other");
    free(v);
    assert_int_equal(store_put(s, "grant:empty", "", 0, 60), STORE_OK);
    assert_int_equal(store_get(s, "grant:empty", &v, &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_string_equal(v, "");
    free(v);
    assert_int_equal(store_del(s, "grant:b"), STORE_OK);
    assert_int_equal(store_del(s, "grant:b"), STORE_OK); /* missing: still OK */
    assert_int_equal(store_get(s, "grant:b", &v, &n), STORE_NOT_FOUND);
    assert_true(store_may_have(s, "box:x", 0)); /* the embedded store cannot rule a key out */
    store_free(s);
}

static void many_keys(void **state)
{
    (void)state;
    struct store *s = store_embedded_new();
    char key[32], val[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "otp:%d", i);
        snprintf(val, sizeof val, "v%d", i * 7);
        assert_int_equal(store_put(s, key, val, strlen(val), 600), STORE_OK);
    }
    for (int i = 0; i < 5000; i++) {
        char *v = NULL;
        size_t n;
        snprintf(key, sizeof key, "otp:%d", i);
        snprintf(val, sizeof val, "v%d", i * 7);
        assert_int_equal(store_get(s, key, &v, &n), STORE_OK);
        assert_string_equal(v, val);
        free(v);
    }
    store_free(s);
}

static void counters(void **state)
{
    (void)state;
    struct store *s = store_embedded_new();
    assert_int_equal(store_incr(s, "rate:a", 60), 1);
    assert_int_equal(store_incr(s, "rate:a", 60), 2);
    assert_int_equal(store_incr(s, "rate:b", 60), 1); /* one counter per key */
    assert_int_equal(store_incr(s, "rate:a", 60), 3);
    assert_int_equal(store_del(s, "rate:a"), STORE_OK);
    assert_int_equal(store_incr(s, "rate:a", 60), 1);
    store_free(s);
}

/* Time to live: a value put for 1 s is gone once that second passed (polled, generously). */
static void expiry(void **state)
{
    (void)state;
    struct store *s = store_embedded_new();
    assert_int_equal(store_put(s, "flow:t", "x", 1, 1), STORE_OK);
    assert_int_equal(store_put(s, "flow:keep", "y", 1, 3600), STORE_OK);
    assert_int_equal(store_incr(s, "rate:t", 1), 1);
    char *v = NULL;
    size_t n;
    enum store_result rc = STORE_OK;
    for (int i = 0; i < 300 && rc == STORE_OK; i++) {
        rc = store_get(s, "flow:t", &v, &n);
        if (rc == STORE_OK) {
            free(v);
            usleep(50 * 1000);
        }
    }
    assert_int_equal(rc, STORE_NOT_FOUND);
    assert_int_equal(store_take(s, "flow:t", &v, &n), STORE_NOT_FOUND);
    assert_int_equal(store_incr(s, "rate:t", 1), 1); /* the window started again */
    assert_int_equal(store_get(s, "flow:keep", &v, &n), STORE_OK);
    free(v);
    store_free(s);
}

static void identities(void **state)
{
    (void)state;
    struct store *s = store_embedded_new();
    json_t *id = json_pack("{s:s,s:[s,s]}", "email", "a@example.com", "groups", "g1", "g2");
    assert_int_equal(store_identity_put(s, "nonce1", id, 60), STORE_OK);
    json_t *back = store_identity_get(s, "nonce1");
    assert_non_null(back);
    assert_true(json_equal(id, back));
    json_decref(back);
    assert_null(store_identity_get(s, "nonce2"));
    assert_null(store_identity_get(s, NULL));
    char longnonce[80];
    memset(longnonce, 'n', sizeof longnonce - 1);
    longnonce[sizeof longnonce - 1] = 0;
    assert_null(store_identity_get(s, longnonce)); /* no key built from an oversized nonce */
    json_decref(id);
    store_free(s);
}

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
        cmocka_unit_test(put_get_take_del),
        cmocka_unit_test(many_keys),
        cmocka_unit_test(counters),
        cmocka_unit_test(expiry),
        cmocka_unit_test(identities),
        cmocka_unit_test(add_if_absent),
        cmocka_unit_test(one_winner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
