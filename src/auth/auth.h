/* The auth domain and the gateway's own endpoints (SPEC.md §6): login pages, identity
 * providers, one-time PINs, sessions, single sign-on, grants, logout, identity, certs. */
#ifndef LATCH_AUTH_H
#define LATCH_AUTH_H

#include "proxy/local.h"

/* Handles one request under /cdn-cgi/access/ whose body (if any) has been read. Returns the
 * proxy's step result (through the local_* answer functions). */
int auth_handle(struct conn *c, struct local_req *r);

#endif
