/* libFuzzer target: the strict base64url decoder (src/core/base64url.c) that reads every
 * token, JWK and handoff challenge. It must agree with libsodium's strict decoder read to the
 * end of the input (accepting exactly what it accepts, with the same bytes), and what it accepts must encode back to the
 * very input (one spelling per value). Any disagreement aborts. */
#include "core/base64url.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    unsigned char a[4096], b[4096];
    char back[B64URL_ENCODED_LEN(4096) + 1];
    size_t la = 0, lb = 0;
    int ra = b64url_decode((const char *)data, size, a, sizeof a, &la);
    const char *end = NULL; /* libsodium stops at a byte outside the alphabet: whole input only */
    int rb = sodium_base642bin(b, sizeof b, (const char *)data, size, NULL, &lb, &end,
                               sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    if (rb == 0 && end != (const char *)data + size)
        rb = -1;
    /* libsodium 1.0.18 reads some bytes >= 0x80 as alphabet characters: another spelling of the
     * same bytes, which a strict decoder refuses */
    for (size_t i = 0; i < size && rb == 0; i++)
        if (data[i] >= 0x80)
            rb = -1;
    if ((ra == 0) != (rb == 0) || (ra == 0 && (la != lb || memcmp(a, b, la)))) {
        fprintf(stderr, "b64url_decode %s what libsodium %s: \"%.*s\"\n", ra ? "refuses" : "accepts",
                rb ? "refuses" : "accepts", (int)size, (const char *)data);
        abort();
    }
    if (ra == 0 && (b64url_encode(a, la, back) != size || memcmp(back, data, size))) {
        fprintf(stderr, "b64url: \"%.*s\" is not the one spelling of its bytes\n", (int)size, (const char *)data);
        abort();
    }
    /* a smaller output buffer: refused, never overrun */
    if (ra == 0 && la > 0 && b64url_decode((const char *)data, size, a, la - 1, &la) == 0)
        abort();
    return 0;
}
