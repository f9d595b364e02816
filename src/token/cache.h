/* A per-worker cache of tokens whose form and signature were verified (SPEC.md §3.4), so that
 * RSA verification stays off the hot path. Entries are looked up by a keyed hash and compared
 * byte for byte; claim checks and revocation still run on every request. Bounded: one entry
 * per slot, the newest wins; expired entries are dropped when met. */
#ifndef LATCH_TOKEN_CACHE_H
#define LATCH_TOKEN_CACHE_H

#include "token/jwt.h"

struct token_cache;

struct token_cache *token_cache_new(unsigned slots);
void token_cache_free(struct token_cache *c);

/* Returns the verified token (owned by the cache, valid until the next call), or NULL with
 * *status saying why it was refused. */
const struct token *token_cache_get(struct token_cache *c, const struct keyset *ks,
                                    const char *tok, size_t len, time_t now,
                                    enum token_status *status);

/* Running totals since the cache was made: lookups answered from the cache, and lookups that
 * had to verify the token (whatever the verification said). Oversized tokens count as neither. */
void token_cache_counts(const struct token_cache *c, uint64_t *hits, uint64_t *misses);

#endif
