/* The gateway's own endpoints (request/endpoint.h) on an exchange, over any transport: the
 * endpoint request copied out of the request head, its small body read in full, the tables
 * walked to find the endpoint, its answers sent, and parking on background jobs or long polls. */
#ifndef LATCH_LOCAL_H
#define LATCH_LOCAL_H

#include "request/endpoint.h"

#include <stddef.h>

struct worker_ctx;

/* conn.c's name for the auth domain's root (request/endpoint.h). */
#define LOCAL_AUTH_ROOT ENDPOINT_AUTH_ROOT

/* The tables of endpoints every worker serves, walked in order (endpoint_find; none matches:
 * 404), how an endpoint publishes revocations it wrote (publish_revocations(w->node), from
 * any thread) and how it wakes every worker's parked requests (wake_parked(w->node), from any
 * thread); set once before the workers start (server_run). The array must outlive them. */
void local_set_endpoints(const struct endpoint_table *const *tables, size_t ntables,
                         void (*publish_revocations)(void *node), void (*wake_parked)(void *node));

/* Retries every parked request of w (news about the keys they wait for). */
void local_retry_parked(struct worker_ctx *w);

#endif
