/* One epoll event loop per worker thread, with O(1) timers.
 * Timers: a timer is armed on a queue whose timers all run for the queue's duration, so each
 * queue is a list ordered by deadline (arming appends at the tail): arming, re-arming and
 * cancelling are O(1) and the next expiry is one of the queue heads. The loop knows no queue by
 * name: their owners (the proxy's header, idle, origin … timeouts; the worker's accept pause)
 * declare them, register them with loop_queue_add and set their durations. */
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

/* Timers of one duration. Registered with one loop; it must outlive its registration. */
struct timer_queue {
    struct timer head;           /* sentinel: head.next is the earliest */
    uint32_t duration_ms;
    struct timer_queue *next_q;  /* the loop's queues */
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
/* Registers an empty queue with the loop; loop_queue_del takes it out (its timers cancelled). */
void loop_queue_add(struct loop *l, struct timer_queue *q, uint32_t ms);
void loop_queue_del(struct loop *l, struct timer_queue *q);
/* A new duration for the timers armed from now on (0 counts as 1 ms). */
void timer_queue_set(struct timer_queue *q, uint32_t ms);
void timer_arm(struct loop *l, struct timer *t, struct timer_queue *q);
void timer_cancel(struct timer *t);
static inline bool timer_armed(const struct timer *t) { return t->deadline_ms != 0; }

/* Runs one iteration: waits for events (at most until the next timer), dispatches them, fires
 * expired timers, then calls the before-sleep hook. */
void loop_run_once(struct loop *l, void (*before_sleep)(void *), void *arg);

#endif
