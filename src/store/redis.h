/* The Redis store (SPEC.md §10) and what the cluster thread (cluster.h) needs of it. */
#ifndef LATCH_STORE_REDIS_H
#define LATCH_STORE_REDIS_H

#include "store/seal.h"
#include "store/store.h"

#include <hiredis/hiredis.h>

/* url: redis://HOST:PORT[/DB], checked by the config loader; password: for AUTH, or NULL.
 * NULL with *err set. */
struct store *store_redis_new(const char *url, const unsigned char key[STORE_KEY_BYTES], const char *password,
                              char **err);

/* One command on this thread's connection (reconnecting once); NULL when Redis cannot be
 * reached (the store is then down until the cluster thread's ping answers). */
redisReply *store_redis_command(struct store *s, int argc, const char **argv, const size_t *lens);
/* A second connection of the caller's own (subscriptions): NULL when Redis cannot be reached. */
redisContext *store_redis_connect(struct store *s);
/* Marks the store up (a ping answered) or down. */
void store_redis_health(struct store *s, bool up);
const unsigned char *store_redis_key(const struct store *s);

/* An announcement from another node: `key` was put (store_may_have says yes from now on). */
void store_redis_seen(struct store *s, const char *key);
/* Copies a large identity from Redis into this node's memory (identities are read there only,
 * so verifying a token never waits on Redis). */
void store_redis_mirror_identity(struct store *s, const char *nonce);

#define STORE_REDIS_CHANNEL "latch:news"

#endif
