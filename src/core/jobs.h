/* Blocking work off the event loops: calls to an identity provider, SMTP, Redis. A job runs on
 * a small pool of background threads, then its `done` callback runs back on the worker that
 * submitted it (posted to the worker's mailbox, which wakes its loop through an eventfd). */
#ifndef LATCH_JOBS_H
#define LATCH_JOBS_H

#include <pthread.h>

struct job;

struct mailbox {
    pthread_mutex_t lock;
    struct job *head, *tail;
    int efd; /* written to when a job is posted */
};

struct job {
    struct job *next;
    void (*run)(struct job *j);   /* background thread: may block */
    void (*done)(struct job *j);  /* the submitting worker's thread; frees the job */
    struct mailbox *home;
};

struct jobs;

struct jobs *jobs_new(unsigned threads);
/* Stops the threads after the queued jobs ran (their `done` is still posted). */
void jobs_free(struct jobs *js);
void jobs_submit(struct jobs *js, struct job *j);

void mailbox_init(struct mailbox *m, int efd);
void mailbox_destroy(struct mailbox *m);
/* Runs `done` for every job posted so far. Worker thread only. */
void mailbox_drain(struct mailbox *m);

#endif
