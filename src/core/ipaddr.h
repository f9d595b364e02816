/* Client addresses as the gateway keeps them: 16 bytes, IPv4 mapped (::ffff:a.b.c.d), and
 * their text for logs and X-Forwarded-For, written on every request (a hand-rolled IPv4 form:
 * inet_ntop goes through sprintf, which cost more than the rest of the request's bookkeeping). */
#ifndef LATCH_IPADDR_H
#define LATCH_IPADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IPADDR_STRLEN INET6_ADDRSTRLEN

/* "a.b.c.d" for a mapped IPv4 address, the RFC 5952 form otherwise; returns the length. */
size_t ipaddr_format(const uint8_t ip[16], char out[IPADDR_STRLEN]);

/* Whether a host name (no port; an IPv6 literal in brackets) names this machine: localhost,
 * a name under .localhost (RFC 6761), a 127.0.0.0/8 address in dotted-quad form, [::1]. The
 * only places a token or a grant may travel over plain http. */
bool ipaddr_loopback_name(const char *host);

#endif
