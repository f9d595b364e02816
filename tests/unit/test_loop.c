/* Unit tests of the loop's generic timers (src/core/loop.c): a queue's timers fire in the order
 * they were armed, a short queue's before a long one's, never a cancelled one; re-arming moves a
 * timer to its new queue; taking a queue out of the loop cancels its timers. No assertion on
 * durations: a timer of 1 ms fires within a bounded number of iterations, one of a minute not. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/loop.h"

#include <string.h>

static char fired[16];
static size_t nfired;

static void on_a(struct timer *t) { fired[nfired++] = 'a'; }
static void on_b(struct timer *t) { fired[nfired++] = 'b'; }
static void on_c(struct timer *t) { fired[nfired++] = 'c'; }

/* Runs the loop until `n` timers fired (each iteration waits at most for the next deadline). */
static void run_until(struct loop *l, size_t n)
{
    for (int i = 0; i < 5000 && nfired < n; i++)
        loop_run_once(l, NULL, NULL);
}

static void test_order_and_cancel(void **state)
{
    struct loop *l = loop_new();
    assert_non_null(l);
    struct timer_queue fast, slow;
    loop_queue_add(l, &slow, 60000);
    loop_queue_add(l, &fast, 1);
    struct timer a = { .cb = on_a }, b = { .cb = on_b }, c = { .cb = on_c };
    nfired = 0;
    timer_arm(l, &c, &slow);
    timer_arm(l, &a, &fast);
    timer_arm(l, &b, &fast);
    assert_true(timer_armed(&a) && timer_armed(&b) && timer_armed(&c));
    timer_cancel(&b);
    assert_false(timer_armed(&b));
    run_until(l, 1);
    assert_int_equal(nfired, 1);
    assert_int_equal(fired[0], 'a');
    assert_false(timer_armed(&a));
    assert_true(timer_armed(&c)); /* a minute away */
    /* re-armed on the fast queue, the slow one's timer fires next */
    timer_arm(l, &c, &fast);
    run_until(l, 2);
    assert_int_equal(nfired, 2);
    assert_int_equal(fired[1], 'c');
    loop_queue_del(l, &fast);
    loop_queue_del(l, &slow);
    loop_free(l);
}

static void test_queue_del_cancels(void **state)
{
    struct loop *l = loop_new();
    struct timer_queue q, other;
    loop_queue_add(l, &q, 1);
    loop_queue_add(l, &other, 1);
    struct timer a = { .cb = on_a }, b = { .cb = on_b };
    nfired = 0;
    timer_arm(l, &a, &q);
    timer_arm(l, &b, &other);
    loop_queue_del(l, &q);
    assert_false(timer_armed(&a));
    run_until(l, 1);
    assert_int_equal(nfired, 1);
    assert_int_equal(fired[0], 'b'); /* the other queue still runs */
    for (int i = 0; i < 3; i++)
        loop_run_once(l, NULL, NULL);
    assert_int_equal(nfired, 1);     /* and the one taken out never fires */
    loop_queue_del(l, &other);
    loop_free(l);
}

static void test_duration_change(void **state)
{
    struct loop *l = loop_new();
    struct timer_queue q;
    loop_queue_add(l, &q, 60000);
    struct timer a = { .cb = on_a };
    nfired = 0;
    timer_queue_set(&q, 0); /* 0 counts as 1 ms */
    timer_arm(l, &a, &q);
    run_until(l, 1);
    assert_int_equal(nfired, 1);
    loop_queue_del(l, &q);
    loop_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_cancel),
        cmocka_unit_test(test_queue_del_cancels),
        cmocka_unit_test(test_duration_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
