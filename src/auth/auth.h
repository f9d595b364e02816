/* The auth domain and the gateway's own endpoints (SPEC.md §6): login pages, identity
 * providers, one-time PINs, sessions, single sign-on, grants, logout, identity, certs, and the
 * command line's handoff. They are rows of the tables below (request/endpoint.h), which the
 * server hands to the transport at start. */
#ifndef LATCH_AUTH_H
#define LATCH_AUTH_H

#include "request/endpoint.h"

/* The command line's handoff (cli.c): app, cli, transfer/<key>, token, cli-logout. */
extern const struct endpoint_table auth_cli_endpoints;
/* Everything else under /cdn-cgi/access/ (endpoints.c); its last row answers 404 for any
 * other name, so it goes last. */
extern const struct endpoint_table auth_endpoints;

#endif
