/* One answer per cause of an endpoint's failure (error.h). */
#include "request/error.h"

enum endpoint_cause endpoint_store_cause(enum store_result sr)
{
    return sr == STORE_NOMEM ? ENDPOINT_NOMEM : ENDPOINT_STORE_DOWN;
}

int endpoint_cause_status(enum endpoint_cause cause)
{
    switch (cause) {
    case ENDPOINT_NOMEM: return 500;
    case ENDPOINT_STORE_DOWN: return 503;
    }
    return 500;
}

enum endpoint_result endpoint_fail(struct exchange *ex, enum endpoint_cause cause)
{
    switch (cause) {
    case ENDPOINT_STORE_DOWN:
        return endpoint_busy(ex, "store_unavailable", "Signing in is unavailable",
                             "Signing in needs the shared session store, which cannot be reached right now. "
                             "Try again in a few seconds.", ENDPOINT_STORE_RETRY_S);
    case ENDPOINT_NOMEM:
        break;
    }
    return endpoint_error(ex, endpoint_cause_status(cause), "internal", "Out of memory.");
}
