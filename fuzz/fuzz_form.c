/* libFuzzer target: the form / query decoder (src/http/form.c). The first input byte picks a
 * field name and an output size; the rest is the form. form_get is compared with a slow
 * reference decoder (WHATWG application/x-www-form-urlencoded: first pair of that exact name,
 * '+' a space, %XX, refusal on a malformed escape, a control character or no room), and
 * form_pct_decode with the same reference without '+', form_count with a count of the pairs of
 * that name. Empty pairs are skipped (WHATWG). Any difference aborts. */
#include "http/form.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *fuzz_names[] = { "csrf", "code", "email", "redirect_url", "a", "idp" };
#define FUZZ_NNAMES (sizeof fuzz_names / sizeof fuzz_names[0])

static int ref_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes s[0..n) into out (unbounded, the caller sized it); -1 on a malformed escape. */
static long ref_decode(const char *s, size_t n, char *out, int plus)
{
    long o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n)
                return -1;
            int h = ref_hex((unsigned char)s[i + 1]), l = ref_hex((unsigned char)s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            out[o++] = (char)(h * 16 + l);
            i += 2;
        } else {
            out[o++] = plus && s[i] == '+' ? ' ' : s[i];
        }
    }
    return o;
}

static long ref_get(const char *s, size_t n, const char *name, char *out, size_t cap)
{
    size_t start = 0;
    while (start <= n) {
        size_t end = start;
        while (end < n && s[end] != '&')
            end++;
        size_t eq = start;
        while (eq < end && s[eq] != '=')
            eq++;
        if (end > start && eq - start == strlen(name) && !memcmp(s + start, name, eq - start)) {
            size_t vs = eq < end ? eq + 1 : end;
            char *tmp = malloc(end - vs + 1);
            long len = ref_decode(s + vs, end - vs, tmp, 1);
            if (len >= 0) {
                for (long i = 0; i < len; i++)
                    if ((unsigned char)tmp[i] < 0x20 || tmp[i] == 0x7f)
                        len = -1;
            }
            if (len >= 0 && (size_t)len + 1 > cap)
                len = -1;
            if (len >= 0) {
                memcpy(out, tmp, (size_t)len);
                out[len] = '\0';
            }
            free(tmp);
            return len;
        }
        if (end >= n)
            break;
        start = end + 1;
    }
    return -1;
}

/* How many pairs carry exactly that name (form_count's reference). */
static int ref_count(const char *s, size_t n, const char *name)
{
    int count = 0;
    for (size_t start = 0; start <= n;) {
        size_t end = start, eq;
        while (end < n && s[end] != '&')
            end++;
        for (eq = start; eq < end && s[eq] != '='; eq++)
            ;
        count += eq - start == strlen(name) && !memcmp(s + start, name, eq - start);
        start = end + 1;
    }
    return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *name = fuzz_names[data[0] % FUZZ_NNAMES];
    size_t cap = 1 + (size_t)(data[0] >> 3);        /* 1..32: exercises the bound */
    const char *s = (const char *)data + 1;
    size_t n = size - 1;

    char *got = malloc(cap), *want = malloc(cap);
    int g = form_get(s, n, name, got, cap);
    long w = ref_get(s, n, name, want, cap);
    if (g != w || (g >= 0 && memcmp(got, want, (size_t)g + 1) != 0)) {
        fprintf(stderr, "form_get(%s, cap %zu) = %d, reference %ld\n", name, cap, g, w);
        abort();
    }
    if (g >= 0 && (size_t)g >= cap)
        abort();
    /* form_count: the pairs of that name; a value form_get found is one of them */
    int count = form_count(s, n, name);
    if (count != ref_count(s, n, name) || (g >= 0 && count < 1)) {
        fprintf(stderr, "form_count(%s) = %d, reference %d\n", name, count, ref_count(s, n, name));
        abort();
    }

    char *dg = malloc(n + 1), *dw = malloc(n + 1);
    int pg = form_pct_decode(s, n, dg, n + 1);
    long pw = ref_decode(s, n, dw, 0);
    if (pg != pw || (pg >= 0 && memcmp(dg, dw, (size_t)pg) != 0) || (pg >= 0 && dg[pg] != '\0')) {
        fprintf(stderr, "form_pct_decode = %d, reference %ld\n", pg, pw);
        abort();
    }
    /* the same with a tight output: refused exactly when the result does not fit */
    if (pw >= 0) {
        int tight = form_pct_decode(s, n, dg, (size_t)pw + 1);
        int shorter = pw > 0 ? form_pct_decode(s, n, dg, (size_t)pw) : -1;
        if (tight != pw || shorter != -1)
            abort();
    }
    free(got);
    free(want);
    free(dg);
    free(dw);
    return 0;
}
