/* Unit tests of the per-worker cache of verified tokens (src/token/cache.c) with real key sets:
 * a token verified once is answered from the cache (same claims, counted as a hit); a refused
 * token is never cached and stays refused; a byte changed anywhere is a miss and a refusal, not
 * a hit; a cached token past its expiry (and the leeway) is verified again, and one whose key is
 * no longer in the key set is refused; oversized tokens count as neither. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "token/cache.h"
#include "token/jwt.h"
#include "token/keys.h"

#include "../unit.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char g_dir[2][64];
static struct keyset *g_ks[2];
static time_t g_now;

static int group_setup(void **state)
{
    g_now = time(NULL);
    for (int i = 0; i < 2; i++) {
        if (unit_tmpdir(g_dir[i], "cache") != 0)
            return -1;
        char *err = NULL;
        g_ks[i] = keys_load(g_dir[i], 0, 3600, false, &err);
        if (!g_ks[i])
            return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    for (int i = 0; i < 2; i++) {
        keyset_unref(g_ks[i]);
        if (unit_rmtree(g_dir[i]) != 0)
            return -1;
    }
    return 0;
}

static char *sign(const struct keyset *ks, const char *email, time_t exp)
{
    json_t *c = json_pack("{s:s,s:s,s:s,s:[s],s:I,s:I,s:I}", "iss", "https://auth.example.test",
                          "type", "app", "email", email, "aud", "aud1", "iat", (json_int_t)g_now,
                          "nbf", (json_int_t)g_now, "exp", (json_int_t)exp);
    char *t = jwt_sign(ks, c);
    json_decref(c);
    assert_non_null(t);
    return t;
}

static void hits_after_one_verification(void **state)
{
    struct token_cache *c = token_cache_new(64);
    assert_non_null(c);
    char *a = sign(g_ks[0], "a@example.com", g_now + 600);
    char *b = sign(g_ks[0], "b@example.com", g_now + 600);
    enum token_status st = TOKEN_MALFORMED;
    uint64_t hits, misses;
    const struct token *t = token_cache_get(c, g_ks[0], a, strlen(a), g_now, &st);
    assert_int_equal(st, TOKEN_OK);
    assert_non_null(t);
    assert_string_equal(t->email, "a@example.com");
    token_cache_counts(c, &hits, &misses);
    assert_int_equal(hits, 0);
    assert_int_equal(misses, 1);
    for (int i = 0; i < 3; i++) {
        t = token_cache_get(c, g_ks[0], a, strlen(a), g_now, &st);
        assert_int_equal(st, TOKEN_OK);
        assert_string_equal(t->email, "a@example.com");
    }
    token_cache_counts(c, &hits, &misses);
    assert_int_equal(hits, 3);
    assert_int_equal(misses, 1);
    /* another token is never answered with the first one's claims */
    t = token_cache_get(c, g_ks[0], b, strlen(b), g_now, &st);
    assert_int_equal(st, TOKEN_OK);
    assert_string_equal(t->email, "b@example.com");
    /* the same bytes from a copy: still a hit (compared by content, not by pointer) */
    char *copy = strdup(a);
    t = token_cache_get(c, g_ks[0], copy, strlen(copy), g_now, &st);
    assert_int_equal(st, TOKEN_OK);
    assert_string_equal(t->email, "a@example.com");
    free(copy);
    free(a);
    free(b);
    token_cache_free(c);
}

static void refusals_are_not_cached(void **state)
{
    struct token_cache *c = token_cache_new(16);
    char *a = sign(g_ks[0], "a@example.com", g_now + 600);
    size_t n = strlen(a);
    enum token_status st;
    uint64_t hits, misses;
    assert_non_null(token_cache_get(c, g_ks[0], a, n, g_now, &st));
    /* flip a byte in each part: the header, the payload and the signature's last byte (the
     * hashed tail: same slot as the cached token) */
    size_t where[] = { 5, strchr(a, '.') - a + 5, n - 1 };
    for (size_t i = 0; i < sizeof where / sizeof *where; i++) {
        char *bad = strdup(a);
        bad[where[i]] = bad[where[i]] == 'A' ? 'B' : 'A';
        for (int round = 0; round < 2; round++) { /* and still refused the second time */
            assert_null(token_cache_get(c, g_ks[0], bad, n, g_now, &st));
            assert_int_not_equal(st, TOKEN_OK);
        }
        free(bad);
    }
    assert_null(token_cache_get(c, g_ks[0], a, n - 1, g_now, &st)); /* a prefix of a cached token */
    assert_int_not_equal(st, TOKEN_OK);
    token_cache_counts(c, &hits, &misses);
    assert_int_equal(hits, 0);
    assert_int_equal(misses, 8);
    /* signed with another key set's key: refused, cached or not */
    char *foreign = sign(g_ks[1], "a@example.com", g_now + 600);
    assert_null(token_cache_get(c, g_ks[0], foreign, strlen(foreign), g_now, &st));
    assert_int_equal(st, TOKEN_UNKNOWN_KEY);
    free(foreign);
    /* oversized: refused before anything, counted as neither */
    char *big = malloc(JWT_MAX_LEN + 2);
    memset(big, 'a', JWT_MAX_LEN + 1);
    big[JWT_MAX_LEN + 1] = 0;
    assert_null(token_cache_get(c, g_ks[0], big, JWT_MAX_LEN + 1, g_now, &st));
    assert_int_equal(st, TOKEN_TOO_LARGE);
    token_cache_counts(c, &hits, &misses);
    assert_int_equal(hits, 0);
    assert_int_equal(misses, 9);
    free(big);
    free(a);
    token_cache_free(c);
}

static void expiry_and_key_removal_beat_the_cache(void **state)
{
    struct token_cache *c = token_cache_new(16);
    char *a = sign(g_ks[0], "a@example.com", g_now + 600);
    size_t n = strlen(a);
    enum token_status st;
    uint64_t hits, misses;
    assert_non_null(token_cache_get(c, g_ks[0], a, n, g_now, &st));
    /* within the leeway past exp: still a hit (token_check decides on the claims) */
    assert_non_null(token_cache_get(c, g_ks[0], a, n, g_now + 600 + JWT_LEEWAY_S, &st));
    token_cache_counts(c, &hits, &misses);
    assert_int_equal(hits, 1);
    /* past it: not served from the cache */
    token_cache_get(c, g_ks[0], a, n, g_now + 600 + JWT_LEEWAY_S + 1, &st);
    token_cache_counts(c, &hits, &misses);
    assert_int_equal(hits, 1);
    assert_int_equal(misses, 2);
    /* cached again at a normal time, then the key set no longer holds its key (rotation past
     * the overlap, or another node's set): refused, not answered from the cache */
    assert_non_null(token_cache_get(c, g_ks[0], a, n, g_now, &st));
    assert_null(token_cache_get(c, g_ks[1], a, n, g_now, &st));
    assert_int_equal(st, TOKEN_UNKNOWN_KEY);
    free(a);
    token_cache_free(c);
}

static void full_cache_stays_correct(void **state)
{
    struct token_cache *c = token_cache_new(2); /* far fewer slots than tokens */
    enum token_status st;
    char *tok[20];
    char email[32];
    for (int i = 0; i < 20; i++) {
        snprintf(email, sizeof email, "u%d@example.com", i);
        tok[i] = sign(g_ks[0], email, g_now + 600);
    }
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 20; i++) {
            const struct token *t = token_cache_get(c, g_ks[0], tok[i], strlen(tok[i]), g_now, &st);
            assert_int_equal(st, TOKEN_OK);
            snprintf(email, sizeof email, "u%d@example.com", i);
            assert_string_equal(t->email, email);
        }
    for (int i = 0; i < 20; i++)
        free(tok[i]);
    token_cache_free(c);
    token_cache_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hits_after_one_verification),
        cmocka_unit_test(refusals_are_not_cached),
        cmocka_unit_test(expiry_and_key_removal_beat_the_cache),
        cmocka_unit_test(full_cache_stays_correct),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
