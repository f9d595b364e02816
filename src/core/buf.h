/* Fixed-size I/O buffers from a per-worker free list: connections borrow them only while a
 * request is in flight, so an idle keep-alive connection holds none. */
#ifndef LATCH_BUF_H
#define LATCH_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define BUF_SIZE (32 * 1024)

struct buf {
    uint32_t start, end; /* unread bytes are data[start..end) */
    struct buf *next;    /* free list */
    char data[BUF_SIZE];
};

struct buf_pool {
    struct buf *free;
    unsigned nfree, max_free;
};

struct buf *buf_get(struct buf_pool *p);
void buf_put(struct buf_pool *p, struct buf *b);
void buf_pool_clear(struct buf_pool *p);

static inline size_t buf_len(const struct buf *b) { return b->end - b->start; }
static inline size_t buf_room(const struct buf *b) { return BUF_SIZE - b->end; }
static inline char *buf_head(struct buf *b) { return b->data + b->start; }
static inline char *buf_tail(struct buf *b) { return b->data + b->end; }

static inline void buf_consume(struct buf *b, size_t n)
{
    b->start += (uint32_t)n;
    if (b->start == b->end)
        b->start = b->end = 0;
}

/* Moves unread bytes to the front so that the room at the tail is as large as possible. */
static inline void buf_compact(struct buf *b)
{
    if (b->start == 0)
        return;
    memmove(b->data, b->data + b->start, buf_len(b));
    b->end -= b->start;
    b->start = 0;
}

/* Appends at most the room left; returns what was appended. */
static inline size_t buf_append(struct buf *b, const void *p, size_t n)
{
    if (n > buf_room(b))
        n = buf_room(b);
    memcpy(buf_tail(b), p, n);
    b->end += (uint32_t)n;
    return n;
}

#endif
