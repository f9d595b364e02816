/* The metrics listener (config key `admin: { listen: … }`): `GET /metrics` on a socket of its own, served by
 * a thread of its own with a poll loop, never by the proxy's workers or on their listeners. */
#ifndef LATCH_METRICS_LISTENER_H
#define LATCH_METRICS_LISTENER_H

#include "metrics/metrics.h"

#include <sys/socket.h>

struct metrics_listener;

/* Binds `addr` (admin.listen, `name` as written, for messages) and starts the thread. NULL
 * with a message in *err (malloc'd) when the address cannot be bound. */
struct metrics_listener *metrics_listener_start(struct metrics *m, const char *name,
                                                const struct sockaddr *addr, socklen_t addrlen,
                                                char **err);
/* Stops the thread, closes every connection and the socket. NULL is ignored. */
void metrics_listener_stop(struct metrics_listener *l);

#endif
