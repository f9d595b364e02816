/* The per-worker epoll loop: event dispatch and the timer queues of loop.h. */
#include "core/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 256

struct loop {
    int epfd;
    uint64_t now;
    struct timer_queue *queues;
};

uint64_t loop_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct loop *loop_new(void)
{
    struct loop *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        free(l);
        return NULL;
    }
    l->now = loop_clock_ms();
    return l;
}

void loop_free(struct loop *l)
{
    if (!l)
        return;
    close(l->epfd);
    free(l);
}

static int loop__ctl(struct loop *l, struct io_handler *h, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.ptr = h };
    return epoll_ctl(l->epfd, EPOLL_CTL_ADD, h->fd, &ev) == 0 ? 0 : -errno;
}

int loop_add(struct loop *l, struct io_handler *h)
{
    return loop__ctl(l, h, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
}

int loop_add_listener(struct loop *l, struct io_handler *h)
{
    return loop__ctl(l, h, EPOLLIN | EPOLLEXCLUSIVE);
}

int loop_add_in(struct loop *l, struct io_handler *h)
{
    return loop__ctl(l, h, EPOLLIN);
}

void loop_del(struct loop *l, struct io_handler *h)
{
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, h->fd, NULL);
}

uint64_t loop_now(const struct loop *l)
{
    return l->now;
}

void timer_queue_set(struct timer_queue *q, uint32_t ms)
{
    q->duration_ms = ms ? ms : 1;
}

void loop_queue_add(struct loop *l, struct timer_queue *q, uint32_t ms)
{
    q->head.next = q->head.prev = &q->head;
    q->head.deadline_ms = 0;
    timer_queue_set(q, ms);
    q->next_q = l->queues;
    l->queues = q;
}

void loop_queue_del(struct loop *l, struct timer_queue *q)
{
    while (q->head.next != &q->head)
        timer_cancel(q->head.next);
    for (struct timer_queue **p = &l->queues; *p; p = &(*p)->next_q)
        if (*p == q) {
            *p = q->next_q;
            break;
        }
}

void timer_cancel(struct timer *t)
{
    if (!t->deadline_ms)
        return;
    t->prev->next = t->next;
    t->next->prev = t->prev;
    t->prev = t->next = NULL;
    t->deadline_ms = 0;
}

void timer_arm(struct loop *l, struct timer *t, struct timer_queue *q)
{
    timer_cancel(t);
    t->deadline_ms = l->now + q->duration_ms;
    t->prev = q->head.prev;
    t->next = &q->head;
    q->head.prev->next = t;
    q->head.prev = t;
}

/* Milliseconds until the earliest deadline, -1 when no timer is armed. A duration changed by a
 * reload can leave a queue briefly out of order; its later timers then fire late, never early. */
static int loop__next_timeout(struct loop *l)
{
    uint64_t best = UINT64_MAX;
    for (struct timer_queue *q = l->queues; q; q = q->next_q) {
        struct timer *t = q->head.next;
        if (t != &q->head && t->deadline_ms < best)
            best = t->deadline_ms;
    }
    if (best == UINT64_MAX)
        return -1;
    return best <= l->now ? 0 : (int)(best - l->now > 60000 ? 60000 : best - l->now);
}

static void loop__fire_timers(struct loop *l)
{
    for (struct timer_queue *q = l->queues; q; q = q->next_q) {
        struct timer *head = &q->head;
        while (head->next != head && head->next->deadline_ms <= l->now) {
            struct timer *t = head->next;
            timer_cancel(t);
            t->cb(t);
        }
    }
}

void loop_run_once(struct loop *l, void (*before_sleep)(void *), void *arg)
{
    struct epoll_event evs[LOOP_MAX_EVENTS];
    if (before_sleep)
        before_sleep(arg);
    int timeout = loop__next_timeout(l);
    if (timeout < 0 || timeout > 1000)
        timeout = 1000; /* wake at least once a second: reloads, drains */
    int n = epoll_wait(l->epfd, evs, LOOP_MAX_EVENTS, timeout);
    l->now = loop_clock_ms();
    for (int i = 0; i < n; i++) {
        struct io_handler *h = evs[i].data.ptr;
        h->cb(h, evs[i].events);
    }
    loop__fire_timers(l);
}
