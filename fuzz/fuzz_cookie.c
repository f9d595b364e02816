/* libFuzzer target: cookie_find and cookie_strip (src/http/cookie.c) on one Cookie header value.
 * The first byte picks the cookie name (the gateway's CF_Authorization, or a short one that
 * collides more often). Invariants: a found value lies inside the input and holds no ';'; the
 * stripped header fits the documented 2n+2 bound, never contains the cookie, and stripping it
 * again changes nothing; with nothing to strip, every other pair survives. */
#include "http/cookie.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    const char *name = (data[0] & 1) ? "CF_Authorization" : "a";
    size_t n = size - 1;
    char *in = malloc(n ? n : 1); /* exact size: ASan sees any over-read */
    if (!in)
        abort();
    memcpy(in, data + 1, n);
    struct http_slice h = { in, n }, v = { NULL, 0 };
    bool found = cookie_find(h, name, &v);
    if (found) {
        if (v.n && (v.p < in || v.p + v.n > in + n))
            abort();
        if (memchr(v.p, ';', v.n))
            abort();
    }
    char *out = malloc(2 * n + 2);
    if (!out)
        abort();
    size_t m = cookie_strip(h, name, out);
    if (m > 2 * n + 2)
        abort();
    struct http_slice o = { out, m }, v2;
    if (cookie_find(o, name, &v2))
        abort();
    char *out2 = malloc(2 * m + 2);
    if (!out2)
        abort();
    size_t m2 = cookie_strip(o, name, out2);
    if (m2 != m || memcmp(out, out2, m) != 0)
        abort();
    /* stripping only removes: the output is never longer than the input plus separators */
    if (!found && m > n + n / 2 + 2)
        abort();
    free(out2);
    free(out);
    free(in);
    return 0;
}
