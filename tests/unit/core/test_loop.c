/* Unit tests of the worker loop's timers (src/core/loop.c): what every timeout of the gateway
 * relies on. Timers of one queue fire in the order they were (re-)armed, a cancelled timer never
 * fires, re-arming moves a timer to its new deadline, a timer armed from its own callback waits
 * for a later iteration, and a long timer is not fired by a short one's expiry. No assertion
 * depends on how fast the machine is: the loop runs until the expected timers fired or a
 * generous number of iterations passed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/loop.h"

#include <stdlib.h>

#define MAX_FIRED 8

/* The three timer queues this test uses (added to the loop by setup, each 60 s until set),
 * and the only two calls that name one: arming a timer on it and setting its duration. */
enum { FAST, SLOW, OTHER, NQUEUES };
static struct timer_queue cls[NQUEUES];

static void arm(struct loop *l, struct timer *t, int k)
{
    timer_arm(l, t, &cls[k]);
}

static void set(struct loop *l, int k, uint32_t ms)
{
    (void)l;
    timer_queue_set(&cls[k], ms);
}

struct probe {
    struct timer t;
    int id;
};

static int fired[MAX_FIRED];
static size_t nfired;
static struct loop *rearm_loop; /* set: the callback re-arms its timer on FAST */

static void on_fire(struct timer *t)
{
    struct probe *p = (struct probe *)t;
    if (nfired < MAX_FIRED)
        fired[nfired] = p->id;
    nfired++;
    if (rearm_loop)
        arm(rearm_loop, t, FAST);
}

static void probe_init(struct probe *p, int id)
{
    *p = (struct probe){ .t = { .cb = on_fire }, .id = id };
}

/* Runs the loop until `want` timers fired (at most ~20 s of 1 ms waits). */
static void run_until(struct loop *l, size_t want)
{
    for (int i = 0; i < 20000 && nfired < want; i++)
        loop_run_once(l, NULL, NULL);
    assert_int_equal(nfired, want);
}

static int setup(void **state)
{
    nfired = 0;
    rearm_loop = NULL;
    struct loop *l = loop_new();
    assert_non_null(l);
    for (int k = 0; k < NQUEUES; k++)
        loop_queue_add(l, &cls[k], 60000);
    *state = l;
    return 0;
}

static int teardown(void **state)
{
    for (int k = 0; k < NQUEUES; k++)
        loop_queue_del(*state, &cls[k]);
    loop_free(*state);
    return 0;
}

static void fires_in_arm_order(void **state)
{
    struct loop *l = *state;
    set(l, FAST, 1);
    struct probe a, b, c;
    probe_init(&a, 1);
    probe_init(&b, 2);
    probe_init(&c, 3);
    arm(l, &a.t, FAST);
    arm(l, &b.t, FAST);
    arm(l, &c.t, FAST);
    assert_true(timer_armed(&a.t) && timer_armed(&b.t) && timer_armed(&c.t));
    timer_cancel(&b.t);
    assert_false(timer_armed(&b.t));
    timer_cancel(&b.t); /* cancelling twice is harmless */
    arm(l, &a.t, FAST); /* re-armed: now after c */
    run_until(l, 2);
    assert_int_equal(fired[0], 3);
    assert_int_equal(fired[1], 1);
    assert_false(timer_armed(&a.t)); /* disarmed before its callback ran */
    assert_false(timer_armed(&c.t));
    /* b stays cancelled: a timer armed after its deadline passed fires, and b never did */
    struct probe d;
    probe_init(&d, 4);
    arm(l, &d.t, FAST);
    run_until(l, 3);
    assert_int_equal(fired[2], 4);
}

static void rearm_from_callback_waits(void **state)
{
    struct loop *l = *state;
    set(l, FAST, 1);
    rearm_loop = l;
    struct probe a;
    probe_init(&a, 7);
    arm(l, &a.t, FAST);
    size_t before = 0;
    for (int i = 0; i < 20000 && nfired < 3; i++) {
        before = nfired;
        loop_run_once(l, NULL, NULL);
        assert_true(nfired - before <= 1); /* never twice in one iteration */
    }
    assert_int_equal(nfired, 3);
    assert_true(timer_armed(&a.t));
    timer_cancel(&a.t);
}

static void long_timer_waits_for_its_queue(void **state)
{
    struct loop *l = *state;
    set(l, FAST, 1);
    set(l, SLOW, 3600 * 1000);
    struct probe slow, fast1, fast2;
    probe_init(&slow, 1);
    probe_init(&fast1, 2);
    probe_init(&fast2, 3);
    arm(l, &slow.t, SLOW); /* armed first, with the earliest arm time */
    arm(l, &fast1.t, FAST);
    run_until(l, 1);
    arm(l, &fast2.t, FAST);
    run_until(l, 2);
    assert_int_equal(fired[0], 2);
    assert_int_equal(fired[1], 3);
    assert_true(timer_armed(&slow.t));
    assert_true(slow.t.deadline_ms >= loop_now(l) + 3000 * 1000);
    timer_cancel(&slow.t);
}

static void duration_applies_when_armed(void **state)
{
    struct loop *l = *state;
    set(l, OTHER, 5000);
    struct probe a;
    probe_init(&a, 1);
    arm(l, &a.t, OTHER);
    assert_int_equal(a.t.deadline_ms, loop_now(l) + 5000);
    set(l, OTHER, 0); /* 0 counts as 1 ms, never "now" */
    arm(l, &a.t, OTHER);
    assert_int_equal(a.t.deadline_ms, loop_now(l) + 1);
    run_until(l, 1);
}

/* Taking a queue out of the loop cancels its timers; the other queues go on. */
static void queue_del_cancels_its_timers(void **state)
{
    struct loop *l = *state;
    set(l, FAST, 1);
    set(l, OTHER, 1);
    struct probe a, b;
    probe_init(&a, 1);
    probe_init(&b, 2);
    arm(l, &a.t, FAST);
    arm(l, &b.t, OTHER);
    loop_queue_del(l, &cls[FAST]);
    assert_false(timer_armed(&a.t));
    run_until(l, 1);
    assert_int_equal(nfired, 1);
    assert_int_equal(fired[0], 2);
    for (int i = 0; i < 3; i++)
        loop_run_once(l, NULL, NULL);
    assert_int_equal(nfired, 1); /* the one taken out never fires */
    loop_queue_add(l, &cls[FAST], 60000); /* for teardown */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(fires_in_arm_order, setup, teardown),
        cmocka_unit_test_setup_teardown(rearm_from_callback_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(long_timer_waits_for_its_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(duration_applies_when_armed, setup, teardown),
        cmocka_unit_test_setup_teardown(queue_del_cancels_its_timers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
