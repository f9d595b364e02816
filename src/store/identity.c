/* Large identities kept in the store under their identity_nonce (store.h). */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *store_identity_get(struct store *s, const char *nonce)
{
    char key[96], *val = NULL;
    size_t len;
    if (!nonce || strlen(nonce) > 64)
        return NULL;
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
    snprintf(key, sizeof key, "ident:%s", nonce);
    enum store_result rc = store_put(s, key, val, strlen(val), ttl_s);
    free(val);
    return rc;
}
