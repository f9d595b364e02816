/* The embedded store: a hash table in memory, shared by the worker threads under one mutex,
 * with expiry checked on access and swept as the table grows. Nothing here survives a restart,
 * which suits what it holds (flows, PINs, grants, boxes: minutes at most). */
#include "store/backend.h"

#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct entry {
    struct entry *next;
    char *key;
    char *val;
    size_t len;
    int64_t expires; /* monotonic seconds */
    int64_t counter;
};

struct emb {
    struct store base;
    pthread_mutex_t lock;
    struct entry **slots;
    size_t nslots, count;
    unsigned char hkey[crypto_shorthash_KEYBYTES];
};

static int64_t emb__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

static size_t emb__slot(const struct emb *s, const char *key)
{
    uint64_t h;
    crypto_shorthash((unsigned char *)&h, (const unsigned char *)key, strlen(key), s->hkey);
    return (size_t)(h & (s->nslots - 1));
}

static const struct store_ops emb__ops;

struct store *store_embedded_new(void)
{
    struct emb *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->nslots = 1024;
    s->slots = calloc(s->nslots, sizeof *s->slots);
    if (!s->slots) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    randombytes_buf(s->hkey, sizeof s->hkey);
    s->base.ops = &emb__ops;
    return &s->base;
}

static void emb__free_entry(struct entry *e)
{
    sodium_memzero(e->val, e->len); /* PIN hashes, sealed boxes: do not linger in freed memory */
    free(e->val);
    free(e->key);
    free(e);
}

static void emb__free(struct store *base)
{
    struct emb *s = (struct emb *)base;
    for (size_t i = 0; i < s->nslots; i++) {
        while (s->slots[i]) {
            struct entry *e = s->slots[i];
            s->slots[i] = e->next;
            emb__free_entry(e);
        }
    }
    free(s->slots);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* Drops expired entries; doubles the table when it is full. Called with the lock held. */
static void emb__maintain(struct emb *s)
{
    int64_t now = emb__now();
    for (size_t i = 0; i < s->nslots; i++) {
        for (struct entry **pp = &s->slots[i]; *pp;) {
            struct entry *e = *pp;
            if (e->expires <= now) {
                *pp = e->next;
                emb__free_entry(e);
                s->count--;
            } else {
                pp = &e->next;
            }
        }
    }
    if (s->count < s->nslots)
        return;
    size_t n = s->nslots * 2;
    struct entry **slots = calloc(n, sizeof *slots);
    if (!slots)
        return;
    struct entry **old = s->slots;
    size_t oldn = s->nslots;
    s->slots = slots;
    s->nslots = n;
    for (size_t i = 0; i < oldn; i++) {
        while (old[i]) {
            struct entry *e = old[i];
            old[i] = e->next;
            size_t k = emb__slot(s, e->key);
            e->next = slots[k];
            slots[k] = e;
        }
    }
    free(old);
}

/* The live entry for key (and the link pointing at it), or NULL. Lock held. */
static struct entry *emb__find(struct emb *s, const char *key, struct entry ***link)
{
    int64_t now = emb__now();
    for (struct entry **pp = &s->slots[emb__slot(s, key)]; *pp;) {
        struct entry *e = *pp;
        if (e->expires <= now) {
            *pp = e->next;
            emb__free_entry(e);
            s->count--;
            continue;
        }
        if (!strcmp(e->key, key)) {
            if (link)
                *link = pp;
            return e;
        }
        pp = &e->next;
    }
    return NULL;
}

static char *emb__copy(const char *p, size_t n)
{
    char *c = malloc(n + 1);
    if (c) {
        memcpy(c, p, n);
        c[n] = '\0';
    }
    return c;
}

static enum store_result emb__put(struct store *base, const char *key, const void *val, size_t len,
                                  int64_t ttl_s, bool nx)
{
    struct emb *s = (struct emb *)base;
    char *v = emb__copy(val, len);
    if (!v)
        return STORE_NOMEM;
    pthread_mutex_lock(&s->lock);
    struct entry *e = emb__find(s, key, NULL);
    if (e && nx) {
        pthread_mutex_unlock(&s->lock);
        free(v);
        return STORE_EXISTS;
    }
    if (!e) {
        if (s->count + 1 > s->nslots)
            emb__maintain(s);
        e = calloc(1, sizeof *e);
        if (!e || !(e->key = strdup(key))) {
            free(e);
            pthread_mutex_unlock(&s->lock);
            free(v);
            return STORE_NOMEM;
        }
        size_t k = emb__slot(s, key);
        e->next = s->slots[k];
        s->slots[k] = e;
        s->count++;
    } else {
        sodium_memzero(e->val, e->len);
        free(e->val);
    }
    e->val = v;
    e->len = len;
    e->expires = emb__now() + ttl_s;
    pthread_mutex_unlock(&s->lock);
    return STORE_OK;
}

static enum store_result emb__read(struct store *base, const char *key, char **val, size_t *len, bool take)
{
    struct emb *s = (struct emb *)base;
    pthread_mutex_lock(&s->lock);
    struct entry **link = NULL;
    struct entry *e = emb__find(s, key, &link);
    enum store_result rc = STORE_NOT_FOUND;
    if (e) {
        *val = emb__copy(e->val ? e->val : "", e->len);
        *len = e->len;
        rc = *val ? STORE_OK : STORE_NOMEM;
        if (take && rc == STORE_OK) {
            *link = e->next;
            emb__free_entry(e);
            s->count--;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int64_t emb__incr(struct store *base, const char *key, int64_t ttl_s)
{
    struct emb *s = (struct emb *)base;
    pthread_mutex_lock(&s->lock);
    struct entry *e = emb__find(s, key, NULL);
    if (!e) {
        pthread_mutex_unlock(&s->lock);
        if (emb__put(base, key, "", 0, ttl_s, false) != STORE_OK)
            return STORE_NOMEM;
        pthread_mutex_lock(&s->lock);
        e = emb__find(s, key, NULL);
        if (!e) {
            pthread_mutex_unlock(&s->lock);
            return STORE_NOMEM;
        }
    }
    int64_t v = ++e->counter;
    pthread_mutex_unlock(&s->lock);
    return v;
}

static const struct store_ops emb__ops = {
    .backend = "embedded",
    .put = emb__put,
    .read = emb__read,
    .incr = emb__incr,
    .free = emb__free,
};
