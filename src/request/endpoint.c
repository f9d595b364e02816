/* Finding the endpoint a request names in the tables (endpoint.h). */
#include "request/endpoint.h"

#include <string.h>

static bool endpoint__matches(const char *row, const char *name)
{
    size_t n = strlen(row);
    if (n == 0 || row[n - 1] == '/')
        return !strncmp(name, row, n);
    return !strcmp(name, row);
}

const struct endpoint *endpoint_find(const struct endpoint_table *const *tables, size_t ntables,
                                     const struct endpoint_req *r)
{
    for (size_t t = 0; t < ntables; t++)
        for (size_t i = 0; i < tables[t]->nrows; i++) {
            const struct endpoint *e = &tables[t]->rows[i];
            if ((!e->auth_domain_only || r->on_auth_domain) && endpoint__matches(e->name, r->name))
                return e;
        }
    return NULL;
}
