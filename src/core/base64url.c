/* Strict base64url (base64url.h). */
#include "core/base64url.h"

#include <stdint.h>
#include <stdlib.h>

static const char b64url__chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* 1 + the value (0..63) for the alphabet, 0 for anything else */
static const uint8_t b64url__val[256] = {
    ['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7,
    ['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14,
    ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21,
    ['V'] = 22, ['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28,
    ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35,
    ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
    ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49,
    ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['-'] = 63,
    ['_'] = 64,
};

size_t b64url_encode(const unsigned char *p, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64url__chars[v >> 18];
        out[o++] = b64url__chars[(v >> 12) & 63];
        out[o++] = b64url__chars[(v >> 6) & 63];
        out[o++] = b64url__chars[v & 63];
    }
    if (n - i == 1) {
        out[o++] = b64url__chars[p[i] >> 2];
        out[o++] = b64url__chars[(p[i] & 3) << 4];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 8 | p[i + 1];
        out[o++] = b64url__chars[v >> 10];
        out[o++] = b64url__chars[(v >> 4) & 63];
        out[o++] = b64url__chars[(v & 15) << 2];
    }
    out[o] = '\0';
    return o;
}

char *b64url_encode_dup(const unsigned char *p, size_t n)
{
    char *s = malloc(B64URL_ENCODED_LEN(n) + 1);
    if (s)
        b64url_encode(p, n, s);
    return s;
}

int b64url_decode(const char *s, size_t n, unsigned char *out, size_t cap, size_t *len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t rem = n % 4, full = n - rem;
    size_t need = full / 4 * 3 + (rem ? rem - 1 : 0);
    if (rem == 1 || need > cap)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < full; i += 4) {
        uint32_t a = b64url__val[u[i]], b = b64url__val[u[i + 1]], c = b64url__val[u[i + 2]],
                 d = b64url__val[u[i + 3]];
        if (!a || !b || !c || !d)
            return -1;
        a--, b--, c--, d--;
        uint32_t v = a << 18 | b << 12 | c << 6 | d;
        out[o++] = (unsigned char)(v >> 16);
        out[o++] = (unsigned char)(v >> 8);
        out[o++] = (unsigned char)v;
    }
    if (rem) {
        uint32_t a = b64url__val[u[full]], b = b64url__val[u[full + 1]];
        uint32_t c = rem == 3 ? b64url__val[u[full + 2]] : 1;
        if (!a || !b || !c)
            return -1;
        a--, b--, c--;
        if (rem == 2) {
            if (b & 15) /* bits past the last byte: another spelling of the same value */
                return -1;
            out[o++] = (unsigned char)(a << 2 | b >> 4);
        } else {
            if (c & 3)
                return -1;
            uint32_t v = a << 10 | b << 4 | c >> 2;
            out[o++] = (unsigned char)(v >> 8);
            out[o++] = (unsigned char)v;
        }
    }
    *len = o;
    return 0;
}
