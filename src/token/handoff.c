/* The handoff verification code of handoff.h. */
#include "token/handoff.h"

#include <sodium.h>
#include <stdint.h>

void handoff_code(const unsigned char pk[32], char out[10])
{
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"; /* no I, L, O, U */
    unsigned char md[32];
    crypto_hash_sha256(md, pk, 32);
    uint64_t v = ((uint64_t)md[0] << 32) | ((uint64_t)md[1] << 24) | ((uint64_t)md[2] << 16) |
                 ((uint64_t)md[3] << 8) | md[4];
    for (int i = 7; i >= 0; i--) {
        out[i < 4 ? i : i + 1] = alphabet[v & 31];
        v >>= 5;
    }
    out[4] = '-';
    out[9] = '\0';
}
