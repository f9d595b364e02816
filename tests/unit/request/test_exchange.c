/* Unit tests of the exchange's protocol-independent parts (src/request/exchange.c): a new
 * exchange names its transport and worker, its client as the transport saw it, a request id of
 * 16 hex digits that differs from one request to the next, the decision "deny" until one is
 * made. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "request/exchange.h"

#include <stdlib.h>
#include <string.h>

static void test_new(void **state)
{
    struct transport tp = { 0 };
    uint8_t peer[16] = { [10] = 0xff, [11] = 0xff, [12] = 192, [13] = 0, [14] = 2, [15] = 7 };
    struct exchange *a = exchange_new(&tp, NULL, peer, 42, 1);
    struct exchange *b = exchange_new(&tp, NULL, peer, 42, 2);
    struct exchange *c = exchange_new(&tp, NULL, peer, 43, 1);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_ptr_equal(a->tp, &tp);
    assert_int_equal(strlen(a->request_id), 16);
    assert_int_equal(strspn(a->request_id, "0123456789abcdef"), 16);
    assert_string_not_equal(a->request_id, b->request_id);
    assert_string_not_equal(a->request_id, c->request_id);
    assert_string_equal(a->client_ip_str, "192.0.2.7");
    assert_memory_equal(a->client_ip, peer, 16);
    assert_memory_equal(a->peer, peer, 16);
    assert_int_equal(a->decision, ACCESS_DENY);
    assert_int_equal(a->minor, 1);
    assert_true(a->start_us > 0);
    a->email = strdup("x@example.com"); /* the strings it owns are freed with it */
    exchange_free(a);
    exchange_free(b);
    exchange_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
