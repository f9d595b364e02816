/* The per-worker epoll loop: event dispatch and the timer class lists of loop.h. */
#include "core/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 256

struct timer_list {
    struct timer head; /* sentinel: head.next is the earliest */
    uint32_t duration_ms;
};

struct loop {
    int epfd;
    uint64_t now;
    struct timer_list timers[TIMER_CLASSES];
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
    for (int i = 0; i < TIMER_CLASSES; i++) {
        l->timers[i].head.next = l->timers[i].head.prev = &l->timers[i].head;
        l->timers[i].duration_ms = 60000;
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

void loop_set_duration(struct loop *l, enum timer_class c, uint32_t ms)
{
    l->timers[c].duration_ms = ms ? ms : 1;
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

void timer_arm(struct loop *l, struct timer *t, enum timer_class c)
{
    struct timer_list *tl = &l->timers[c];
    timer_cancel(t);
    t->deadline_ms = l->now + tl->duration_ms;
    t->prev = tl->head.prev;
    t->next = &tl->head;
    tl->head.prev->next = t;
    tl->head.prev = t;
}

/* Milliseconds until the earliest deadline, -1 when no timer is armed. A duration changed by a
 * reload can leave a list briefly out of order; its later timers then fire late, never early. */
static int loop__next_timeout(struct loop *l)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < TIMER_CLASSES; i++) {
        struct timer *t = l->timers[i].head.next;
        if (t != &l->timers[i].head && t->deadline_ms < best)
            best = t->deadline_ms;
    }
    if (best == UINT64_MAX)
        return -1;
    return best <= l->now ? 0 : (int)(best - l->now > 60000 ? 60000 : best - l->now);
}

static void loop__fire_timers(struct loop *l)
{
    for (int i = 0; i < TIMER_CLASSES; i++) {
        struct timer *head = &l->timers[i].head;
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
