/* Unit tests of the sealing of values kept in Redis (src/store/seal.c): what a Redis server, or
 * anyone who can write to it, must not be able to do. A sealed value opens only under its own
 * key and name and before its expiry; any flipped byte, a truncation, another key or name is
 * refused; two seals of one value differ (fresh nonce). And the key and secret files read as
 * the configuration reference says. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "store/seal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const unsigned char KEY[STORE_KEY_BYTES] = "0123456789abcdef0123456789abcdef";

static void round_trip(void **state)
{
    (void)state;
    static const char v[] = "a private key\0with a NUL";
    size_t n = 0, m = 0;
    unsigned char *s = store_seal(KEY, "grant:1", v, sizeof v, 0, &n);
    assert_non_null(s);
    assert_true(n > sizeof v);
    assert_null(memmem(s, n, "private", 7)); /* not readable in Redis */
    char *p = store_unseal(KEY, "grant:1", s, n, &m);
    assert_non_null(p);
    assert_int_equal(m, sizeof v);
    assert_memory_equal(p, v, sizeof v);
    assert_int_equal(p[m], 0);
    free(p);
    size_t n2 = 0;
    unsigned char *s2 = store_seal(KEY, "grant:1", v, sizeof v, 0, &n2);
    assert_int_equal(n2, n);
    assert_memory_not_equal(s, s2, n); /* a fresh nonce each time */
    free(s2);
    unsigned char *e = store_seal(KEY, "grant:e", "", 0, 0, &n2); /* empty values too */
    p = store_unseal(KEY, "grant:e", e, n2, &m);
    assert_non_null(p);
    assert_int_equal(m, 0);
    free(p);
    free(e);
    free(s);
}

static void refuses_what_is_not_ours(void **state)
{
    (void)state;
    size_t n = 0, m = 0;
    unsigned char *s = store_seal(KEY, "grant:1", "value", 5, time(NULL) + 3600, &n);
    assert_non_null(s);
    assert_null(store_unseal(KEY, "grant:2", s, n, &m)); /* moved under another name */
    assert_null(store_unseal(KEY, "grant:1x", s, n, &m));
    assert_null(store_unseal(KEY, "", s, n, &m));
    unsigned char other[STORE_KEY_BYTES];
    memcpy(other, KEY, sizeof other);
    other[31] ^= 1;
    assert_null(store_unseal(other, "grant:1", s, n, &m)); /* another cluster's key */
    for (size_t i = 0; i < n; i++) { /* every flipped bit of nonce, ciphertext, tag */
        s[i] ^= 0x40;
        char *p = store_unseal(KEY, "grant:1", s, n, &m);
        s[i] ^= 0x40;
        if (p)
            fail_msg("byte %zu flipped and still accepted", i);
    }
    for (size_t k = 0; k < n; k++) /* every truncation */
        assert_null(store_unseal(KEY, "grant:1", s, k, &m));
    char *p = store_unseal(KEY, "grant:1", s, n, &m); /* intact: still fine */
    assert_non_null(p);
    assert_string_equal(p, "value");
    free(p);
    free(s);
}

static void expires(void **state)
{
    (void)state;
    size_t n = 0, m = 0;
    unsigned char *s = store_seal(KEY, "otp:1", "hash", 4, time(NULL) - 1, &n);
    assert_null(store_unseal(KEY, "otp:1", s, n, &m)); /* replayed past its time */
    free(s);
    s = store_seal(KEY, "otp:1", "hash", 4, time(NULL) + 60, &n);
    char *p = store_unseal(KEY, "otp:1", s, n, &m);
    assert_non_null(p);
    free(p);
    free(s);
}

static char *write_tmp(const char *text)
{
    char *path = strdup("/tmp/latch-test-seal-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void key_files(void **state)
{
    (void)state;
    char why[256];
    unsigned char key[STORE_KEY_BYTES];
    /* base64 of "0123456789abcdef0123456789abcdef", with whitespace around */
    char *good = write_tmp("  MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n\n");
    assert_int_equal(store_key_load(good, key, why, sizeof why), 0);
    assert_memory_equal(key, KEY, STORE_KEY_BYTES);
    static const char *const bad[] = {
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZQ==\n",   /* 31 bytes */
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWZn\n",   /* 33 bytes */
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\n",    /* unpadded */
        "MDEyMzQ1Njc4OWFiY2RlZjAx MjM0NTY3ODlhYmNkZWY=\n",  /* a space inside */
        "", "\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *path = write_tmp(bad[i]);
        why[0] = 0;
        if (store_key_load(path, key, why, sizeof why) != -1)
            fail_msg("key file %zu accepted", i);
        assert_non_null(strstr(why, path)); /* the message names the file */
        unlink(path);
        free(path);
    }
    assert_int_equal(store_key_load("/nonexistent/latch-key", key, why, sizeof why), -1);
    assert_non_null(strstr(why, "/nonexistent/latch-key"));
    unlink(good);
    free(good);
}

static void secret_files(void **state)
{
    (void)state;
    char why[256];
    char *out = NULL;
    char *path = write_tmp("\t s3cret pass \n");
    assert_int_equal(store_secret_load(path, &out, why, sizeof why), 0);
    assert_string_equal(out, "s3cret pass"); /* trimmed around, kept inside */
    free(out);
    unlink(path);
    free(path);
    static const char *const bad[] = { "", "  \n", "one\ntwo\n", "one\r\ntwo" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        path = write_tmp(bad[i]);
        out = NULL;
        if (store_secret_load(path, &out, why, sizeof why) != -1)
            fail_msg("secret file %zu accepted", i);
        assert_null(out);
        unlink(path);
        free(path);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(refuses_what_is_not_ours),
        cmocka_unit_test(expires),
        cmocka_unit_test(key_files),
        cmocka_unit_test(secret_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
