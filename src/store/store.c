/* The store interface of store.h, dispatched to its backend (backend.h). */
#include "store/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void store_free(struct store *s)
{
    if (s)
        s->ops->free(s);
}

const char *store_backend(const struct store *s)
{
    return s->ops->backend;
}

int store_up(const struct store *s)
{
    return s->ops->up ? s->ops->up(s) : 1;
}

bool store_remote(const struct store *s)
{
    return s->ops->up != NULL;
}

enum store_result store_put(struct store *s, const char *key, const void *val, size_t len, int64_t ttl_s)
{
    return s->ops->put(s, key, val, len, ttl_s, false);
}

enum store_result store_add(struct store *s, const char *key, const void *val, size_t len, int64_t ttl_s)
{
    return s->ops->put(s, key, val, len, ttl_s, true);
}

enum store_result store_get(struct store *s, const char *key, char **val, size_t *len)
{
    return s->ops->read(s, key, val, len, false);
}

enum store_result store_take(struct store *s, const char *key, char **val, size_t *len)
{
    return s->ops->read(s, key, val, len, true);
}

enum store_result store_del(struct store *s, const char *key)
{
    char *v = NULL;
    size_t n;
    enum store_result rc = s->ops->read(s, key, &v, &n, true);
    free(v);
    return rc == STORE_NOT_FOUND ? STORE_OK : rc;
}

int64_t store_incr(struct store *s, const char *key, int64_t ttl_s)
{
    return s->ops->incr(s, key, ttl_s);
}

void store_announce(struct store *s, const char *key)
{
    if (s->ops->announce)
        s->ops->announce(s, key);
}

bool store_may_have(struct store *s, const char *key, int64_t since_ms)
{
    return s->ops->may_have ? s->ops->may_have(s, key, since_ms) : true;
}

json_t *store_identity_get(struct store *s, const char *nonce)
{
    char key[96], *val = NULL;
    size_t len;
    if (!nonce || strlen(nonce) > 64)
        return NULL;
    if (s->ops->identity_get)
        return s->ops->identity_get(s, nonce);
    snprintf(key, sizeof key, "ident:%s", nonce);
    if (store_get(s, key, &val, &len) != STORE_OK)
        return NULL;
    json_error_t je;
    json_t *j = json_loadb(val, len, 0, &je);
    free(val);
    return j;
}

enum store_result store_identity_put(struct store *s, const char *nonce, json_t *identity, int64_t ttl_s)
{
    char key[96];
    char *val = json_dumps(identity, JSON_COMPACT);
    if (!val)
        return STORE_NOMEM;
    enum store_result rc;
    if (s->ops->identity_put) {
        rc = s->ops->identity_put(s, nonce, val, ttl_s);
    } else {
        snprintf(key, sizeof key, "ident:%s", nonce);
        rc = store_put(s, key, val, strlen(val), ttl_s);
    }
    free(val);
    return rc;
}
