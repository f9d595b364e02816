/* The verified-token cache of cache.h. */
#include "token/cache.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct cache_entry {
    char *tok;
    size_t len;
    uint64_t hash;
    struct token t;
};

struct token_cache {
    unsigned mask;
    uint64_t hits, misses;
    unsigned char key[crypto_shorthash_KEYBYTES]; /* SipHash key: slots are not predictable */
    struct cache_entry *slots;
};

struct token_cache *token_cache_new(unsigned slots)
{
    unsigned n = 1;
    while (n < slots)
        n <<= 1;
    struct token_cache *c = calloc(1, sizeof *c);
    if (!c || !(c->slots = calloc(n, sizeof *c->slots))) {
        free(c);
        return NULL;
    }
    c->mask = n - 1;
    randombytes_buf(c->key, sizeof c->key);
    return c;
}

static void cache__clear(struct cache_entry *e)
{
    free(e->tok);
    token_free(&e->t);
    memset(e, 0, sizeof *e);
}

void token_cache_free(struct token_cache *c)
{
    if (!c)
        return;
    for (unsigned i = 0; i <= c->mask; i++)
        cache__clear(&c->slots[i]);
    free(c->slots);
    free(c);
}

/* The slot of a token: a keyed hash of its length and its last CACHE_HASHED bytes, which lie
 * in the signature: two tokens we signed differ there, and a slot holds only verified tokens,
 * each confirmed by a comparison of every byte. A forged token that lands in a used slot is
 * only a miss, then refused by the verification. Hashing the whole token (~900 bytes) cost
 * more than the rest of a cached request's identity. */
#define CACHE_HASHED 32
static uint64_t cache__hash(const struct token_cache *c, const char *tok, size_t len)
{
    unsigned char in[CACHE_HASHED + sizeof(uint64_t)];
    size_t n = len < CACHE_HASHED ? len : CACHE_HASHED;
    uint64_t l = len, h;
    memcpy(in, tok + len - n, n);
    memcpy(in + n, &l, sizeof l);
    crypto_shorthash((unsigned char *)&h, in, n + sizeof l, c->key);
    return h;
}

const struct token *token_cache_get(struct token_cache *c, const struct keyset *ks,
                                    const char *tok, size_t len, time_t now,
                                    enum token_status *status)
{
    if (len > JWT_MAX_LEN) {
        *status = TOKEN_TOO_LARGE;
        return NULL;
    }
    uint64_t h = cache__hash(c, tok, len);
    struct cache_entry *e = &c->slots[h & c->mask];
    if (e->tok && e->hash == h && e->len == len && !memcmp(e->tok, tok, len)) {
        /* the key may have passed its overlap since: ask the current key set */
        if (now - JWT_LEEWAY_S <= e->t.exp && keyset_find(ks, e->t.kid, 32, now)) {
            c->hits++;
            *status = TOKEN_OK;
            return &e->t;
        }
        cache__clear(e);
    }
    c->misses++;
    struct token t;
    *status = jwt_decode(ks, tok, len, now, &t);
    if (*status != TOKEN_OK)
        return NULL;
    char *copy = malloc(len);
    if (!copy) { /* still a verified token: hand it over through the slot anyway */
        token_free(&t);
        *status = TOKEN_MALFORMED;
        return NULL;
    }
    memcpy(copy, tok, len);
    cache__clear(e);
    e->tok = copy;
    e->len = len;
    e->hash = h;
    e->t = t;
    return &e->t;
}

void token_cache_counts(const struct token_cache *c, uint64_t *hits, uint64_t *misses)
{
    *hits = c ? c->hits : 0;
    *misses = c ? c->misses : 0;
}
