/* Open client connections per client address, shared by every worker: the per-client cap
 * (`max_connections_per_client`, docs/configuration.md), so that one address cannot take all
 * of the process's descriptors with connections that send nothing until the header timeout.
 * A client is an IPv4 address, or an IPv6 /64 (one subscriber's usual allocation: the addresses
 * inside it cost an attacker nothing). Exact counts in a hash table keyed with a secret (SipHash),
 * under one mutex taken once per accept and once per close; entries exist only while a
 * connection from that client is open. */
#ifndef LATCH_CONNLIMIT_H
#define LATCH_CONNLIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct connlimit;

struct connlimit *connlimit_new(void);
void connlimit_free(struct connlimit *cl);

/* Counts one more open connection from `ip` (16 bytes, IPv4-mapped for IPv4) unless `max` are
 * open already. True when counted (the caller calls connlimit_put when it closes); false when
 * over the cap, or when the table cannot grow (out of memory: refused, like the cap). */
bool connlimit_take(struct connlimit *cl, const uint8_t ip[16], unsigned max);

/* One counted connection from `ip` closed. */
void connlimit_put(struct connlimit *cl, const uint8_t ip[16]);

#endif
