/* libFuzzer target: path_normalize. Invariants (SPEC.md §4): outputs start with '/', contain no
 * "//" and no dot segment, `match` has no ';', both fit in len + 2 bytes, and normalizing an
 * output again gives the same output (idempotence). */
#include "http/path.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void fuzz_check_form(const char *s, size_t n, int is_match)
{
    if (n == 0 || s[0] != '/' || s[n] != '\0' || strlen(s) != n)
        abort();
    if (strstr(s, "//"))
        abort();
    if (is_match && memchr(s, ';', n))
        abort();
    /* each segment's part before ';' is never "." or ".." */
    size_t i = 1;
    while (i <= n) {
        size_t e = i;
        while (e < n && s[e] != '/')
            e++;
        size_t k = i;
        while (k < e && s[k] != ';')
            k++;
        size_t name = k - i;
        if ((name == 1 && s[i] == '.') || (name == 2 && s[i] == '.' && s[i + 1] == '.'))
            abort();
        i = e + 1;
    }
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c <= 0x20 || c >= 0x7f || c == '\\' || c == '#')
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    char *fwd = malloc(size + 2), *match = malloc(size + 2);
    size_t fl = 0, ml = 0;
    if (!fwd || !match)
        abort();
    if (path_normalize(in, size, fwd, &fl, match, &ml) == 0) {
        if (fl > size + 1 || ml > size + 1 || ml > fl)
            abort();
        fuzz_check_form(fwd, fl, 0);
        fuzz_check_form(match, ml, 1);
        char *f2 = malloc(fl + 2), *m2 = malloc(fl + 2);
        size_t fl2, ml2;
        if (path_normalize(fwd, fl, f2, &fl2, m2, &ml2) != 0)
            abort();
        if (fl2 != fl || memcmp(f2, fwd, fl) != 0 || ml2 != ml || memcmp(m2, match, ml) != 0)
            abort();
        if (path_normalize(match, ml, f2, &fl2, m2, &ml2) != 0)
            abort();
        if (fl2 != ml || memcmp(f2, match, ml) != 0 || ml2 != ml || memcmp(m2, match, ml) != 0)
            abort();
        free(f2);
        free(m2);
    }
    free(fwd);
    free(match);
    return 0;
}
