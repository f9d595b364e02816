/* libFuzzer target: the JWT claims reader (src/token/claims.c), held to jansson's verdict and
 * values (json_loadb with JSON_REJECT_DUPLICATES, the way tokens were read before): whatever
 * one accepts the other accepts, with the same members, kinds, strings and numbers. The reader
 * may refuse more only past its own limits (nesting deeper than CLAIMS_MAX_DEPTH, an object
 * of more than CLAIMS_MAX_MEMBERS members, a number longer than 64 characters) and on a NUL
 * byte, which no JSON text holds and jansson sometimes reads past. Any other
 * disagreement aborts. */
#include "token/claims.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fuzz_depth(json_t *v, int d, bool *wide)
{
    int max = d;
    size_t i;
    const char *k;
    json_t *e;
    if (json_is_object(v)) {
        if (json_object_size(v) > CLAIMS_MAX_MEMBERS)
            *wide = true;
        json_object_foreach(v, k, e) {
            int x = fuzz_depth(e, d + 1, wide);
            max = x > max ? x : max;
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, e) {
            int x = fuzz_depth(e, d + 1, wide);
            max = x > max ? x : max;
        }
    }
    return max;
}

static bool fuzz_long_number(const uint8_t *d, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        bool num = (d[i] >= '0' && d[i] <= '9') || d[i] == '.' || d[i] == 'e' || d[i] == 'E' ||
                   d[i] == '+' || d[i] == '-';
        run = num ? run + 1 : 0;
        if (run > 64)
            return true;
    }
    return false;
}

static void fuzz_fail(const char *why, const uint8_t *d, size_t n)
{
    fprintf(stderr, "claims: %s: \"%.*s\"\n", why, (int)(n > 300 ? 300 : n), (const char *)d);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    struct claims c;
    int ours = claims_parse(buf, size, &c);
    json_error_t je;
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
    bool theirs = j && json_is_object(j);
    if (ours == 0 && !theirs)
        fuzz_fail("accepted what jansson refuses", data, size);
    if (ours != 0 && theirs) {
        bool wide = false;
        int depth = fuzz_depth(j, 1, &wide);
        /* jansson reads past some NUL bytes (within a number): JSON text holds none */
        if (depth <= CLAIMS_MAX_DEPTH && !wide && !fuzz_long_number(data, size) && !memchr(data, 0, size))
            fuzz_fail("refused what jansson accepts", data, size);
    }
    if (ours == 0 && theirs) {
        if (c.n != json_object_size(j))
            fuzz_fail("another number of members", data, size);
        for (size_t i = 0; i < c.n; i++) {
            const struct claims_member *m = &c.m[i];
            json_t *v = json_object_get(j, m->name);
            if (!v)
                fuzz_fail("a member jansson does not have", data, size);
            bool same = false;
            switch (m->kind) {
            case CLAIMS_STRING:
                same = json_is_string(v) && m->count == 1 && !strcmp(c.strs[m->first], json_string_value(v));
                break;
            case CLAIMS_INTEGER:
                same = json_is_integer(v) && json_integer_value(v) == m->integer;
                break;
            case CLAIMS_REAL:
                same = json_is_real(v) && json_real_value(v) == m->real;
                break;
            case CLAIMS_TRUE: same = json_is_true(v); break;
            case CLAIMS_FALSE: same = json_is_false(v); break;
            case CLAIMS_NULL: same = json_is_null(v); break;
            case CLAIMS_OBJECT: same = json_is_object(v); break;
            case CLAIMS_ARRAY: {
                size_t k;
                json_t *e;
                bool strings = true;
                json_array_foreach(v, k, e) strings &= json_is_string(e) != 0;
                same = json_is_array(v) && strings == m->strings;
                if (same && strings) {
                    same = m->count == json_array_size(v);
                    json_array_foreach(v, k, e) if (same) same = !strcmp(c.strs[m->first + k], json_string_value(e));
                }
                break;
            }
            }
            if (!same)
                fuzz_fail("a member read otherwise than jansson reads it", data, size);
        }
        claims_free(&c);
    }
    json_decref(j);
    free(buf);
    return 0;
}
