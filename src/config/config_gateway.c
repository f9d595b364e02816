/* Keys of the gateway core that bound what clients and origins can do (docs/config-extras.md):
 * max_connections_per_client. */
#include "config/config-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_MAX_CONNS_PER_CLIENT 1000000u

/* A whole number from 0 to max, written as plain digits; false after an error. */
static bool config_count(struct config__ctx *c, const struct config__node *n, const char *key,
                         unsigned max, unsigned *out)
{
    unsigned long v = 0;
    bool ok = n->kind == CONFIG__SCALAR && n->len > 0 && n->len <= 7;
    for (size_t i = 0; ok && i < n->len; i++) {
        ok = n->text[i] >= '0' && n->text[i] <= '9';
        v = v * 10 + (unsigned long)(n->text[i] - '0');
    }
    if (!ok || v > max) {
        config__error(c, n->pos, "'%s' must be a number from 0 to %u", key, max);
        return false;
    }
    *out = (unsigned)v;
    return true;
}

void config__max_connections_per_client(struct config__ctx *c, const struct config__node *n,
                                        struct config *cfg)
{
    config_count(c, n, "max_connections_per_client", CONFIG_MAX_CONNS_PER_CLIENT,
                 &cfg->max_connections_per_client);
}
