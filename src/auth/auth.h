/* The auth domain and the gateway's own endpoints (SPEC.md §6): login pages, identity
 * providers, one-time PINs, sessions, single sign-on, grants, logout, identity, certs. */
#ifndef LATCH_AUTH_H
#define LATCH_AUTH_H

#include "proxy/local.h"

#include <stdbool.h>

/* Handles one request under /cdn-cgi/access/ whose body (if any) has been read. Returns the
 * proxy's step result (through the local_* answer functions). */
int auth_handle(struct conn *c, struct local_req *r);
/* False for the endpoints that never touch the shared store (certs, app, get-identity): with
 * Redis they are answered on the worker rather than on the job pool. */
bool auth_needs_store(const struct local_req *r);

#endif
