/* Unit tests of the background job pool and the worker mailboxes (src/core/jobs.c): every
 * submitted job runs once on a pool thread, then its `done` runs once on the thread that drains
 * the mailbox, after `run` finished; the mailbox's eventfd is written so a sleeping worker wakes;
 * jobs_free still runs the queued jobs and posts them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/jobs.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define NJOBS 200

struct tjob {
    struct job j;
    pthread_t ran_on;
    atomic_bool ran;
    int runs, dones;
};

static pthread_t main_thread;
static int ndone;

static void tjob_run(struct job *j)
{
    struct tjob *t = (struct tjob *)j;
    t->ran_on = pthread_self();
    t->runs++;
    atomic_store(&t->ran, true);
}

static void tjob_done(struct job *j)
{
    struct tjob *t = (struct tjob *)j;
    assert_true(pthread_equal(pthread_self(), main_thread));
    assert_true(atomic_load(&t->ran)); /* done only after run */
    t->dones++;
    ndone++;
}

static void submit_all(struct jobs *js, struct mailbox *m, struct tjob *t)
{
    for (int i = 0; i < NJOBS; i++) {
        t[i] = (struct tjob){ .j = { .run = tjob_run, .done = tjob_done, .home = m } };
        jobs_submit(js, &t[i].j);
    }
}

static void check_all(const struct tjob *t)
{
    assert_int_equal(ndone, NJOBS);
    for (int i = 0; i < NJOBS; i++) {
        assert_int_equal(t[i].runs, 1);
        assert_int_equal(t[i].dones, 1);
        assert_false(pthread_equal(t[i].ran_on, main_thread)); /* off the worker's thread */
    }
}

static void run_then_done_on_home(void **state)
{
    (void)state;
    main_thread = pthread_self();
    ndone = 0;
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_true(efd >= 0);
    struct mailbox m;
    mailbox_init(&m, efd);
    struct jobs *js = jobs_new(3);
    assert_non_null(js);
    static struct tjob t[NJOBS];
    submit_all(js, &m, t);
    /* a worker sleeps until the eventfd says a job came back: wait as it does */
    for (int i = 0; i < 600 && ndone < NJOBS; i++) {
        struct pollfd pfd = { .fd = efd, .events = POLLIN };
        if (poll(&pfd, 1, 100) == 1) {
            uint64_t n;
            assert_int_equal(read(efd, &n, sizeof n), sizeof n);
            assert_true(n >= 1);
        }
        mailbox_drain(&m);
    }
    check_all(t);
    jobs_free(js);
    mailbox_destroy(&m);
    close(efd);
}

static void free_runs_queued_jobs(void **state)
{
    (void)state;
    main_thread = pthread_self();
    ndone = 0;
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct mailbox m;
    mailbox_init(&m, efd);
    struct jobs *js = jobs_new(1);
    assert_non_null(js);
    static struct tjob t[NJOBS];
    submit_all(js, &m, t);
    jobs_free(js); /* returns after every queued job ran and was posted */
    mailbox_drain(&m);
    check_all(t);
    mailbox_drain(&m); /* nothing runs twice */
    assert_int_equal(ndone, NJOBS);
    mailbox_destroy(&m);
    close(efd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(run_then_done_on_home),
        cmocka_unit_test(free_runs_queued_jobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
