/* Unit tests of the I/O buffers and their per-worker free list (src/core/buf.c, buf.h): a
 * returned buffer is reused empty, the list keeps at most max_free, appends stop at the room
 * left, consuming everything rewinds, compacting keeps the unread bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/buf.h"

#include <stdlib.h>
#include <string.h>

static void pool_reuses_up_to_max(void **state)
{
    (void)state;
    struct buf_pool p = { .max_free = 2 };
    struct buf *a = buf_get(&p), *b = buf_get(&p), *c = buf_get(&p);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_int_equal(buf_len(a), 0);
    assert_int_equal(buf_room(a), BUF_SIZE);
    buf_append(a, "dirty", 5);
    buf_consume(a, 1);
    buf_put(&p, a);
    buf_put(&p, b);
    buf_put(&p, c); /* past max_free: freed, not kept */
    assert_int_equal(p.nfree, 2);
    buf_put(&p, NULL); /* harmless */
    assert_int_equal(p.nfree, 2);
    struct buf *d = buf_get(&p), *e = buf_get(&p);
    assert_true((d == a || d == b) && (e == a || e == b) && d != e); /* from the list, LIFO */
    assert_int_equal(p.nfree, 0);
    assert_int_equal(buf_len(d), 0); /* handed out empty whatever it held */
    assert_int_equal(buf_len(e), 0);
    assert_int_equal(buf_room(d), BUF_SIZE);
    buf_put(&p, d);
    buf_put(&p, e);
    buf_pool_clear(&p);
    assert_null(p.free);
    assert_int_equal(p.nfree, 0);
}

static void append_consume_compact(void **state)
{
    (void)state;
    struct buf_pool p = { .max_free = 0 };
    struct buf *b = buf_get(&p);
    char big[BUF_SIZE + 100];
    memset(big, 'x', sizeof big);
    assert_int_equal(buf_append(b, "hello world", 11), 11);
    assert_int_equal(buf_append(b, big, sizeof big), BUF_SIZE - 11); /* only what fits */
    assert_int_equal(buf_room(b), 0);
    assert_int_equal(buf_append(b, "y", 1), 0);
    buf_consume(b, 6);
    assert_memory_equal(buf_head(b), "world", 5);
    assert_int_equal(buf_room(b), 0); /* consuming alone makes no room at the tail */
    buf_compact(b);
    assert_int_equal(buf_room(b), 6);
    assert_int_equal(buf_len(b), BUF_SIZE - 6);
    assert_memory_equal(buf_head(b), "world", 5); /* the unread bytes, moved to the front */
    buf_consume(b, buf_len(b)); /* all read: rewinds */
    assert_int_equal(b->start, 0);
    assert_int_equal(b->end, 0);
    assert_int_equal(buf_room(b), BUF_SIZE);
    buf_put(&p, b); /* max_free 0: freed */
    assert_int_equal(p.nfree, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pool_reuses_up_to_max),
        cmocka_unit_test(append_consume_compact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
