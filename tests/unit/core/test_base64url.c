/* Unit tests of strict base64url (src/core/base64url.c): RFC 4648 §10's vectors in the URL
 * alphabet without padding, and every other spelling refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/base64url.h"

#include <stdlib.h>
#include <string.h>

static void test_vectors(void **state)
{
    (void)state;
    static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    static const char *const coded[] = { "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy" };
    for (size_t i = 0; i < 7; i++) {
        char out[16];
        unsigned char back[16];
        size_t n = strlen(plain[i]), len;
        assert_int_equal(b64url_encode((const unsigned char *)plain[i], n, out), strlen(coded[i]));
        assert_string_equal(out, coded[i]);
        assert_int_equal(B64URL_ENCODED_LEN(n), strlen(coded[i]));
        assert_int_equal(b64url_decode(coded[i], strlen(coded[i]), back, sizeof back, &len), 0);
        assert_int_equal(len, n);
        assert_memory_equal(back, plain[i], n);
    }
    unsigned char all[256], back[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    char *s = b64url_encode_dup(all, sizeof all);
    size_t len;
    assert_int_equal(b64url_decode(s, strlen(s), back, sizeof back, &len), 0);
    assert_int_equal(len, 256);
    assert_memory_equal(back, all, 256);
    assert_null(strpbrk(s, "+/="));
    free(s);
}

static void test_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Zg==", "Zm8=", "Z", "Zm9vY", "Zh", "Zm9", "Zm+v", "Zm/v", "Zm 9v", "Zm9v\n", "Zm\x80v",
        "Zm9v=", "====", "Zm\x00v",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        unsigned char out[16];
        size_t len;
        size_t n = i == 13 ? 4 : strlen(bad[i]);
        if (b64url_decode(bad[i], n, out, sizeof out, &len) == 0)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    unsigned char small[2];
    size_t len;
    assert_int_not_equal(b64url_decode("Zm9v", 4, small, sizeof small, &len), 0); /* no room */
    assert_int_equal(b64url_decode("Zm8", 3, small, sizeof small, &len), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
