/* Open connections per client (connlimit.h). */
#include "proxy/connlimit.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define CONNLIMIT_MIN_BUCKETS 1024u

struct connlimit__entry {
    struct connlimit__entry *next;
    uint8_t key[16];
    uint32_t open;
};

struct connlimit {
    pthread_mutex_t lock;
    struct connlimit__entry **buckets;
    size_t nbuckets, nentries; /* nbuckets: a power of two */
    unsigned char seed[crypto_shorthash_KEYBYTES];
};

struct connlimit *connlimit_new(void)
{
    struct connlimit *cl = calloc(1, sizeof *cl);
    if (!cl || !(cl->buckets = calloc(CONNLIMIT_MIN_BUCKETS, sizeof *cl->buckets))) {
        free(cl);
        return NULL;
    }
    cl->nbuckets = CONNLIMIT_MIN_BUCKETS;
    randombytes_buf(cl->seed, sizeof cl->seed);
    pthread_mutex_init(&cl->lock, NULL);
    return cl;
}

void connlimit_free(struct connlimit *cl)
{
    if (!cl)
        return;
    for (size_t i = 0; i < cl->nbuckets; i++) {
        while (cl->buckets[i]) {
            struct connlimit__entry *e = cl->buckets[i];
            cl->buckets[i] = e->next;
            free(e);
        }
    }
    free(cl->buckets);
    pthread_mutex_destroy(&cl->lock);
    free(cl);
}

/* The client an address belongs to: the IPv4 address, or the IPv6 address's /64. */
static void connlimit__key(const uint8_t ip[16], uint8_t key[16])
{
    memcpy(key, ip, 16);
    if (memcmp(ip, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) != 0)
        memset(key + 8, 0, 8);
}

static size_t connlimit__slot(const struct connlimit *cl, const uint8_t key[16], size_t nbuckets)
{
    uint64_t h;
    crypto_shorthash((unsigned char *)&h, key, 16, cl->seed);
    return (size_t)h & (nbuckets - 1);
}

/* Doubles the buckets when the chains grow past two entries on average; keeps the old table
 * when memory is short (longer chains, still correct). */
static void connlimit__grow(struct connlimit *cl)
{
    size_t n = cl->nbuckets * 2;
    struct connlimit__entry **b = calloc(n, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < cl->nbuckets; i++) {
        while (cl->buckets[i]) {
            struct connlimit__entry *e = cl->buckets[i];
            cl->buckets[i] = e->next;
            size_t s = connlimit__slot(cl, e->key, n);
            e->next = b[s];
            b[s] = e;
        }
    }
    free(cl->buckets);
    cl->buckets = b;
    cl->nbuckets = n;
}

bool connlimit_take(struct connlimit *cl, const uint8_t ip[16], unsigned max)
{
    uint8_t key[16];
    connlimit__key(ip, key);
    bool ok = false;
    pthread_mutex_lock(&cl->lock);
    size_t s = connlimit__slot(cl, key, cl->nbuckets);
    struct connlimit__entry *e = cl->buckets[s];
    while (e && memcmp(e->key, key, 16) != 0)
        e = e->next;
    if (e) {
        ok = e->open < max;
        e->open += ok;
    } else if (max > 0 && (e = malloc(sizeof *e))) {
        memcpy(e->key, key, 16);
        e->open = 1;
        e->next = cl->buckets[s];
        cl->buckets[s] = e;
        if (++cl->nentries > 2 * cl->nbuckets)
            connlimit__grow(cl);
        ok = true;
    }
    pthread_mutex_unlock(&cl->lock);
    return ok;
}

void connlimit_put(struct connlimit *cl, const uint8_t ip[16])
{
    uint8_t key[16];
    connlimit__key(ip, key);
    pthread_mutex_lock(&cl->lock);
    struct connlimit__entry **pe = &cl->buckets[connlimit__slot(cl, key, cl->nbuckets)];
    while (*pe && memcmp((*pe)->key, key, 16) != 0)
        pe = &(*pe)->next;
    struct connlimit__entry *e = *pe;
    if (e && --e->open == 0) {
        *pe = e->next;
        free(e);
        cl->nentries--;
    }
    pthread_mutex_unlock(&cl->lock);
}
