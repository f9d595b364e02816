/* Short-lived shared state (SPEC.md §10): login flows, one-time PINs, grants, handoff boxes,
 * large identities, rate-limit counters. One interface, one implementation per backend: the
 * embedded store (memory shared by the workers of one node) now, Redis for several nodes.
 * Values are opaque bytes with a time to live; `take` reads and deletes in one step, which is
 * what makes grants and handoff boxes single-use. */
#ifndef LATCH_STORE_H
#define LATCH_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

enum store_result {
    STORE_OK = 0,
    STORE_NOT_FOUND = -1,
    STORE_UNAVAILABLE = -2, /* the backend cannot be reached: answer 503 */
    STORE_NOMEM = -3,
    STORE_EXISTS = -4,      /* store_add: the key is already there */
};

struct store *store_embedded_new(void);
void store_free(struct store *s);

/* "embedded" or "redis": for status and metrics. */
const char *store_backend(const struct store *s);
/* 1 while the backend answers (the embedded store always does), 0 while it cannot be reached. */
int store_up(const struct store *s);
/* True when calls may wait on the network (Redis): never make them on a worker's loop. */
bool store_remote(const struct store *s);

/* Namespaced keys (del of a missing key is STORE_OK): "flow:…", "otp:…", "grant:…", "box:…", "ident:…", "rate:…". */
enum store_result store_put(struct store *s, const char *key, const void *val, size_t len, int64_t ttl_s);
/* Puts only when `key` is absent (Redis SET NX), in one step: of two callers adding the same
 * key, exactly one gets STORE_OK, the other STORE_EXISTS. What makes a claim first-come. */
enum store_result store_add(struct store *s, const char *key, const void *val, size_t len, int64_t ttl_s);
/* Copies the value into a malloc'd buffer (NUL-terminated for convenience). */
enum store_result store_get(struct store *s, const char *key, char **val, size_t *len);
/* Get and delete atomically: at most one caller ever sees the value. */
enum store_result store_take(struct store *s, const char *key, char **val, size_t *len);
enum store_result store_del(struct store *s, const char *key);
/* Adds 1 to a counter that expires ttl_s after its first increment; returns the new value or
 * a negative store_result. */
int64_t store_incr(struct store *s, const char *key, int64_t ttl_s);

/* Tells the other nodes that `key` was just put (a handoff box: their parked polls wake). */
void store_announce(struct store *s, const char *key);
/* Without a network call: false when `key` surely did not appear since `since_ms` (monotonic;
 * no announcement seen for it), so a parked poll need not ask the backend. The embedded store
 * always says true. */
bool store_may_have(struct store *s, const char *key, int64_t since_ms);


#include <jansson.h>

/* Large identities (SPEC.md §5): kept under their session's identity_nonce, the token carries
 * only the nonce. NULL when absent. */
json_t *store_identity_get(struct store *s, const char *nonce);
enum store_result store_identity_put(struct store *s, const char *nonce, json_t *identity, int64_t ttl_s);

#endif
