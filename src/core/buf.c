/* The buffer free list of buf.h. */
#include "core/buf.h"

#include <stdlib.h>

struct buf *buf_get(struct buf_pool *p)
{
    struct buf *b = p->free;
    if (b) {
        p->free = b->next;
        p->nfree--;
    } else {
        b = malloc(sizeof *b);
        if (!b)
            return NULL;
    }
    b->start = b->end = 0;
    b->next = NULL;
    return b;
}

void buf_put(struct buf_pool *p, struct buf *b)
{
    if (!b)
        return;
    if (p->nfree >= p->max_free) {
        free(b);
        return;
    }
    b->next = p->free;
    p->free = b;
    p->nfree++;
}

void buf_pool_clear(struct buf_pool *p)
{
    while (p->free) {
        struct buf *b = p->free;
        p->free = b->next;
        free(b);
    }
    p->nfree = 0;
}
