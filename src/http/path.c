/* The single path normalization of SPEC.md §4 (RFC 3986 §6.2.2, §5.2.4): one spelling per
 * resource, so the path policies are checked against is the path the origin receives. */
#include "http/path.h"

#include <stdbool.h>
#include <string.h>

static inline int path_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static inline bool path_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

/* Copies one raw segment in[0..n) to out, decoding escapes of unreserved characters and
 * uppercasing the others (RFC 3986 §6.2.2.1-2). Refuses (-1): malformed escapes; escapes of
 * '/' and '\' (they would change the segment structure at an origin that decodes them); escaped
 * NUL and controls (%00-%1F, %7F: header/log injection at the origin); raw '\', '#', SP, controls,
 * DEL and bytes >= 0x80. Other raw VCHARs pass unchanged. Returns the output length. */
static long path_segment(const char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n)
                return -1;
            hi = path_hexval((unsigned char)in[i + 1]);
            lo = path_hexval((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            unsigned char v = (unsigned char)(hi << 4 | lo);
            if (v == '/' || v == '\\' || v < 0x20 || v == 0x7f)
                return -1;
            if (path_unreserved(v)) {
                out[o++] = (char)v;
            } else {
                static const char hex[] = "0123456789ABCDEF";
                out[o++] = '%';
                out[o++] = hex[v >> 4];
                out[o++] = hex[v & 15];
            }
            i += 2;
            continue;
        }
        if (c <= 0x20 || c >= 0x7f || c == '\\' || c == '#')
            return -1;
        out[o++] = (char)c;
    }
    return (long)o;
}

/* A segment is a dot segment when its part before the first ';' is "." or "..": "..;x" is
 * read as ".." by origins that strip path parameters (Tomcat, Jetty), so it is one here too.
 * Returns 1 for ".", 2 for "..", 0 otherwise; -1 for a dot name followed by an encoded ';'
 * ("..%3B"), which an origin decoding before stripping parameters would read as "..". */
static int path_dots(const char *s, size_t n)
{
    size_t k = 0;
    while (k < n && k < 3 && s[k] == '.')
        k++;
    if (k == 0 || k > 2)
        return 0;
    if (k == n || s[k] == ';')
        return (int)k;
    if (n - k >= 3 && s[k] == '%' && s[k + 1] == '3' && s[k + 2] == 'B')
        return -1;
    return 0;
}

int path_normalize(const char *in, size_t len, char *fwd, size_t *fwd_len,
                   char *match, size_t *match_len)
{
    if (len == 0 || in[0] != '/')
        return -1;
    /* fwd is built with a '/' after every kept segment; the last one is dropped at the end
     * unless the path ends on a slash, "." or "..": "/a/b/.." is "/a/" (RFC 3986 §5.2.4). */
    size_t o = 1;
    bool trailing = true;
    fwd[0] = '/';
    size_t i = 1;
    while (i <= len) {
        const char *seg = in + i;
        const char *sl = memchr(seg, '/', len - i);
        size_t n = sl ? (size_t)(sl - seg) : len - i;
        bool last = sl == NULL;
        if (n == 0) {
            /* empty segment: "//" collapses; a final one is the trailing slash */
            trailing = true;
        } else {
            long m = path_segment(seg, n, fwd + o);
            if (m < 0)
                return -1;
            int dots = path_dots(fwd + o, (size_t)m);
            if (dots < 0)
                return -1;
            if (dots == 1) {
                trailing = true;
            } else if (dots == 2) {
                if (o > 1) { /* pop the last kept segment; ".." above the root stays at "/" */
                    o--;
                    while (fwd[o - 1] != '/')
                        o--;
                }
                trailing = true;
            } else {
                o += (size_t)m;
                fwd[o++] = '/';
                trailing = false;
            }
        }
        if (last)
            break;
        i += n + 1;
    }
    if (!trailing && o > 1)
        o--;
    fwd[o] = '\0';
    *fwd_len = o;

    /* match = fwd with ";param" cut from each segment and the segments left empty dropped:
     * "/admin;jsessionid=1/y" is judged as "/admin/y". fwd has no dot segments, with or
     * without parameters, so cutting cannot create one. */
    size_t m = 1;
    bool wrote = false, last_empty = false;
    match[0] = '/';
    i = 1;
    while (i <= o) {
        const char *seg = fwd + i;
        const char *sl = i < o ? memchr(seg, '/', o - i) : NULL;
        size_t n = sl ? (size_t)(sl - seg) : o - i;
        const char *semi = memchr(seg, ';', n);
        size_t keep = semi ? (size_t)(semi - seg) : n;
        if (keep > 0) {
            if (wrote)
                match[m++] = '/';
            memcpy(match + m, seg, keep);
            m += keep;
            wrote = true;
            last_empty = false;
        } else {
            last_empty = true;
        }
        if (!sl)
            break;
        i += n + 1;
    }
    if (wrote && last_empty)
        match[m++] = '/';
    match[m] = '\0';
    *match_len = m;
    return 0;
}
