/* The exchange's protocol-independent parts (exchange.h): its birth (request id, start time,
 * the client as the transport saw it) and the strings it owns. */
#include "request/exchange.h"

#include "core/ipaddr.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t exchange_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* 16 hex digits from a per-worker random seed and sequence number (splitmix64): unique per
 * worker, unguessable across restarts. */
static void exchange__id(char id[17], uint64_t seed, uint64_t seq)
{
    uint64_t v = seed + seq * 0x9E3779B97F4A7C15ull;
    v = (v ^ (v >> 30)) * 0xBF58476D1CE4E5B9ull;
    v = (v ^ (v >> 27)) * 0x94D049BB133111EBull;
    v ^= v >> 31;
    for (int i = 15; i >= 0; i--, v >>= 4)
        id[i] = "0123456789abcdef"[v & 15];
    id[16] = '\0';
}

struct exchange *exchange_new(struct transport *tp, struct worker_ctx *w, const uint8_t peer[16],
                              uint64_t seed, uint64_t seq)
{
    struct exchange *ex = calloc(1, sizeof *ex);
    if (!ex)
        return NULL;
    ex->tp = tp;
    ex->w = w;
    ex->start_us = exchange_now_us();
    ex->minor = 1;
    ex->decision = ACCESS_DENY;
    memcpy(ex->peer, peer, 16);
    memcpy(ex->client_ip, peer, 16);
    ipaddr_format(peer, ex->client_ip_str);
    exchange__id(ex->request_id, seed, seq);
    return ex;
}

void exchange_free(struct exchange *ex)
{
    free(ex->strs);
    free(ex->email);
    free(ex->sub);
    free(ex->service);
    free(ex->set_cookie);
    free(ex->tail);
    free(ex->req_trailers);
    free(ex);
}
