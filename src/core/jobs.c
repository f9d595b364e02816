/* The background job pool and worker mailboxes of jobs.h. */
#include "core/jobs.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

struct jobs {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct job *head, *tail;
    bool stop;
    unsigned n;
    pthread_t *threads;
};

static void mailbox__post(struct mailbox *m, struct job *j)
{
    j->next = NULL;
    pthread_mutex_lock(&m->lock);
    if (m->tail)
        m->tail->next = j;
    else
        m->head = j;
    m->tail = j;
    pthread_mutex_unlock(&m->lock);
    uint64_t one = 1;
    if (write(m->efd, &one, sizeof one) < 0) {
        /* the counter is saturated: the worker is awake anyway */
    }
}

static void *jobs__thread(void *arg)
{
    struct jobs *js = arg;
    for (;;) {
        pthread_mutex_lock(&js->lock);
        while (!js->head && !js->stop)
            pthread_cond_wait(&js->cond, &js->lock);
        struct job *j = js->head;
        if (!j) {
            pthread_mutex_unlock(&js->lock);
            return NULL;
        }
        js->head = j->next;
        if (!js->head)
            js->tail = NULL;
        pthread_mutex_unlock(&js->lock);
        j->run(j);
        mailbox__post(j->home, j);
    }
}

struct jobs *jobs_new(unsigned threads)
{
    struct jobs *js = calloc(1, sizeof *js);
    if (!js)
        return NULL;
    pthread_mutex_init(&js->lock, NULL);
    pthread_cond_init(&js->cond, NULL);
    js->threads = calloc(threads, sizeof *js->threads);
    for (unsigned i = 0; js->threads && i < threads; i++)
        if (pthread_create(&js->threads[i], NULL, jobs__thread, js) == 0)
            js->n++;
    if (!js->n) {
        jobs_free(js);
        return NULL;
    }
    return js;
}

void jobs_free(struct jobs *js)
{
    if (!js)
        return;
    pthread_mutex_lock(&js->lock);
    js->stop = true;
    pthread_cond_broadcast(&js->cond);
    pthread_mutex_unlock(&js->lock);
    for (unsigned i = 0; i < js->n; i++)
        pthread_join(js->threads[i], NULL);
    free(js->threads);
    pthread_cond_destroy(&js->cond);
    pthread_mutex_destroy(&js->lock);
    free(js);
}

void jobs_submit(struct jobs *js, struct job *j)
{
    j->next = NULL;
    pthread_mutex_lock(&js->lock);
    if (js->tail)
        js->tail->next = j;
    else
        js->head = j;
    js->tail = j;
    pthread_cond_signal(&js->cond);
    pthread_mutex_unlock(&js->lock);
}

void mailbox_init(struct mailbox *m, int efd)
{
    pthread_mutex_init(&m->lock, NULL);
    m->head = m->tail = NULL;
    m->efd = efd;
}

void mailbox_destroy(struct mailbox *m)
{
    mailbox_drain(m);
    pthread_mutex_destroy(&m->lock);
}

void mailbox_drain(struct mailbox *m)
{
    pthread_mutex_lock(&m->lock);
    struct job *j = m->head;
    m->head = m->tail = NULL;
    pthread_mutex_unlock(&m->lock);
    while (j) {
        struct job *next = j->next;
        j->done(j);
        j = next;
    }
}
