/* One epoll event loop per worker thread, with O(1) timers and deferred frees.
 * Timers: every timer belongs to a class whose duration is fixed when it is armed, and each
 * class keeps its timers in a list ordered by deadline (arming appends at the tail), so arming,
 * re-arming and cancelling are O(1) and the next expiry is one of the list heads. */
#ifndef LATCH_LOOP_H
#define LATCH_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop;

/* Something registered with epoll. `cb` runs for each event; `events` are EPOLL* bits. */
struct io_handler {
    void (*cb)(struct io_handler *h, uint32_t events);
    int fd;
};

struct timer {
    struct timer *prev, *next;
    uint64_t deadline_ms; /* 0: not armed */
    void (*cb)(struct timer *t);
};

enum timer_class {
    TIMER_HEADER,
    TIMER_IDLE,
    TIMER_CLIENT,
    TIMER_ORIGIN_CONNECT,
    TIMER_ORIGIN_RESPONSE,
    TIMER_LINGER,
    TIMER_POOL_IDLE,
    TIMER_PARKED,
    TIMER_DRAIN_GRACE,
    TIMER_ACCEPT_PAUSE,
    TIMER_CLASSES
};

struct loop *loop_new(void);
void loop_free(struct loop *l);

/* Registers fd edge-triggered for EPOLLIN|EPOLLOUT|EPOLLRDHUP (the callers pump until EAGAIN). */
int loop_add(struct loop *l, struct io_handler *h);
/* Level-triggered EPOLLIN with EPOLLEXCLUSIVE: listening sockets shared by all workers. */
int loop_add_listener(struct loop *l, struct io_handler *h);
/* Level-triggered EPOLLIN: eventfds. */
int loop_add_in(struct loop *l, struct io_handler *h);
void loop_del(struct loop *l, struct io_handler *h);

uint64_t loop_now(const struct loop *l); /* monotonic ms, cached per iteration */
/* Monotonic ms read now: for threads without a loop (admin, metrics, cluster, Redis). */
uint64_t loop_clock_ms(void);
void loop_set_duration(struct loop *l, enum timer_class c, uint32_t ms);
void timer_arm(struct loop *l, struct timer *t, enum timer_class c);
void timer_cancel(struct timer *t);
static inline bool timer_armed(const struct timer *t) { return t->deadline_ms != 0; }

/* Runs one iteration: waits for events (at most until the next timer), dispatches them, fires
 * expired timers, then calls the before-sleep hook. */
void loop_run_once(struct loop *l, void (*before_sleep)(void *), void *arg);

#endif
