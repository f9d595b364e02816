/* What a store backend provides (store.h dispatches to it): the embedded table and Redis. */
#ifndef LATCH_STORE_BACKEND_H
#define LATCH_STORE_BACKEND_H

#include "store/store.h"

#include <stdbool.h>

struct store_ops {
    const char *backend;
    /* nx: only when absent (STORE_EXISTS otherwise) */
    enum store_result (*put)(struct store *s, const char *key, const void *val, size_t len, int64_t ttl_s,
                             bool nx);
    enum store_result (*read)(struct store *s, const char *key, char **val, size_t *len, bool take);
    int64_t (*incr)(struct store *s, const char *key, int64_t ttl_s);
    void (*free)(struct store *s);
    /* Optional (NULL: always up, local, nothing to announce). */
    int (*up)(const struct store *s);
    void (*announce)(struct store *s, const char *key);
    bool (*may_have)(struct store *s, const char *key, int64_t since_ms);
    json_t *(*identity_get)(struct store *s, const char *nonce);
    enum store_result (*identity_put)(struct store *s, const char *nonce, const char *val, int64_t ttl_s);
};

struct store {
    const struct store_ops *ops;
};

#endif
