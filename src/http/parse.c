/* Strict HTTP/1.1 head parsing and chunked framing (RFC 9110, RFC 9112): the gateway's
 * anti-smuggling core. Never allocates; anything two parsers could read differently is refused. */
#include "http/http.h"

#include <arpa/inet.h>
#include <stdint.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <string.h>

/* Character classes, one table lookup per byte. */
enum {
    HTTP_C_TCHAR = 1,  /* token (RFC 9110 §5.6.2) */
    HTTP_C_FIELD = 2,  /* field-vchar / SP / HTAB, obs-text included (RFC 9110 §5.5) */
    HTTP_C_HOST = 4,   /* reg-name: unreserved / sub-delims / '%' (RFC 3986 §3.2.2) */
    HTTP_C_HEX = 8,
    HTTP_C_QDTEXT = 16, /* quoted-string text without '"' and '\\' (RFC 9110 §5.6.4) */
};

static const uint8_t http_ctype[256] = {
     0,  0,  0,  0,  0,  0,  0,  0,  0, 18,  0,  0,  0,  0,  0,  0, /* 0x00 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, /* 0x10 */
    18, 23,  2, 19, 23, 23, 23, 23, 22, 22, 23, 23, 22, 23, 23, 18, /* 0x20 */
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 18, 22, 18, 22, 18, 18, /* 0x30 */
    18, 31, 31, 31, 31, 31, 31, 23, 23, 23, 23, 23, 23, 23, 23, 23, /* 0x40 */
    23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 18,  2, 18, 19, 23, /* 0x50 */
    19, 31, 31, 31, 31, 31, 31, 23, 23, 23, 23, 23, 23, 23, 23, 23, /* 0x60 */
    23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 18, 19, 18, 23,  0, /* 0x70 */
    18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, /* 0x80 */
    18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, /* 0x90 */
    18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, /* 0xa0 */
    18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, /* 0xb0 */
    18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, /* 0xc0 */
    18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, /* 0xd0 */
    18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, /* 0xe0 */
    18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, /* 0xf0 */
};

#define HTTP_IS(c, cls) (http_ctype[(unsigned char)(c)] & (cls))

/* Largest Content-Length we accept, exclusive: 2^62 (far beyond any real body, and far from
 * any signed 64-bit overflow in callers' arithmetic). */
#define HTTP_MAX_CONTENT_LENGTH (UINT64_C(1) << 62)

/* The path of an absolute-form target with an empty path (RFC 9112 §3.2.2: "/" is sent). */
static const char http_root_path[] = "/";

static inline char http_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

bool http_slice_eq(struct http_slice s, const char *lower)
{
    size_t i = 0;
    for (; i < s.n; i++) {
        if (lower[i] == '\0' || http_lower(s.p[i]) != lower[i])
            return false;
    }
    return lower[i] == '\0';
}

const struct http_header *http_find_header(const struct http_header *h, size_t n, const char *lower)
{
    size_t len = strlen(lower); /* names of another length are passed over at once */
    for (size_t i = 0; i < n; i++) {
        if (h[i].name.n == len && http_slice_eq(h[i].name, lower))
            return &h[i];
    }
    return NULL;
}

/* A name character other than a letter, a digit or '-' (the tchar punctuation of RFC 9110
 * §5.6.2: ! # $ % & ' * + . ^ _ ` | ~). CGI, FastCGI and SCGI servers turn every such character
 * into '_' (lighttpd) or '-' and '_' alike (the HTTP_ environment variables), so "X.Real.IP"
 * and "X_Real_IP" reach an origin as X-Real-IP would: names are compared with all of them
 * folded to '-'. */
static inline bool http_name_punct(char c)
{
    return !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-');
}

static inline bool http_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Whether every byte is a field-vchar, SP or HTAB (RFC 9110 §5.5, obs-text included): no
 * NUL, CR, LF, other control or DEL. Eight bytes at a time (a header line may be a kilobyte
 * token): a word with no byte below 0x20 and none equal to 0x7F is good as a whole; one that
 * has some (a tab, or a bad byte) is looked at byte by byte. The tests are exact: a borrow
 * only starts at a byte below the bound, which the word then holds anyway. */
static bool http_field_bytes_ok(const char *p, size_t n)
{
    const uint64_t ones = UINT64_C(0x0101010101010101), highs = UINT64_C(0x8080808080808080);
    size_t i = 0;
#ifdef __SSE2__
    /* sixteen at a time: a signed byte below 0x20 and not negative (obs-text), or 0x7F */
    const __m128i space = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7F), neg = _mm_set1_epi8(-1);
    for (; i + 16 <= n; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        __m128i bad = _mm_or_si128(_mm_and_si128(_mm_cmplt_epi8(x, space), _mm_cmpgt_epi8(x, neg)),
                                   _mm_cmpeq_epi8(x, del));
        if (_mm_movemask_epi8(bad))
            for (size_t k = i; k < i + 16; k++)
                if (!HTTP_IS(p[k], HTTP_C_FIELD))
                    return false;
    }
#endif
    for (; i + 8 <= n; i += 8) {
        uint64_t w, d;
        memcpy(&w, p + i, 8);
        d = w ^ (ones * 0x7F);
        if ((((w - ones * 0x20) & ~w) | ((d - ones) & ~d)) & highs)
            for (size_t k = i; k < i + 8; k++)
                if (!HTTP_IS(p[k], HTTP_C_FIELD))
                    return false;
    }
    for (; i < n; i++)
        if (!HTTP_IS(p[i], HTTP_C_FIELD))
            return false;
    return true;
}

bool http_has_token(struct http_slice value, const char *lower)
{
    size_t i = 0;
    while (i < value.n) {
        size_t start = i;
        while (i < value.n && value.p[i] != ',')
            i++;
        size_t end = i;
        while (start < end && http_ows(value.p[start]))
            start++;
        while (end > start && http_ows(value.p[end - 1]))
            end--;
        struct http_slice el = { value.p + start, end - start };
        if (http_slice_eq(el, lower))
            return true;
        i++; /* skip ',' */
    }
    return false;
}

/* Known field names, lowercase, sorted by length; http_known_start[n] is the first of length n
 * (tests/unit/http/test_parse.c looks every one of them up). */
static const struct {
    const char *name;
    uint8_t id;
} http_known[] = {
    { "te", HTTP_F_HOP },
    { "host", HTTP_F_HOST },
    { "proxy", HTTP_F_NEVER },
    { "cookie", HTTP_F_COOKIE },
    { "expect", HTTP_F_EXPECT },
    { "x-host", HTTP_F_SPOOFABLE },
    { "trailer", HTTP_F_HOP },
    { "upgrade", HTTP_F_UPGRADE },
    { "x-scheme", HTTP_F_SPOOFABLE },
    { "client-ip", HTTP_F_SPOOFABLE },
    { "forwarded", HTTP_F_SPOOFABLE },
    { "x-real-ip", HTTP_F_SPOOFABLE },
    { "connection", HTTP_F_CONNECTION },
    { "keep-alive", HTTP_F_HOP },
    { "set-cookie", HTTP_F_SET_COOKIE },
    { "remote-user", HTTP_F_SPOOFABLE },
    { "x-client-ip", HTTP_F_SPOOFABLE },
    { "x-forwarded", HTTP_F_SPOOFABLE },
    { "x-remote-ip", HTTP_F_SPOOFABLE },
    { "x-request-id", HTTP_F_OWNED },
    { "x-url-scheme", HTTP_F_SPOOFABLE },
    { "x-http-method", HTTP_F_SPOOFABLE },
    { "x-remote-addr", HTTP_F_SPOOFABLE },
    { "x-remote-user", HTTP_F_SPOOFABLE },
    { "x-rewrite-url", HTTP_F_SPOOFABLE },
    { "content-length", HTTP_F_CONTENT_LENGTH },
    { "http2-settings", HTTP_F_OWNED },
    { "true-client-ip", HTTP_F_SPOOFABLE },
    { "x-original-uri", HTTP_F_SPOOFABLE },
    { "x-original-url", HTTP_F_SPOOFABLE },
    { "x-proxyuser-ip", HTTP_F_SPOOFABLE },
    { "x-webauth-user", HTTP_F_SPOOFABLE },
    { "front-end-https", HTTP_F_SPOOFABLE },
    { "x-forwarded-for", HTTP_F_X_FORWARDED_FOR },
    { "x-original-host", HTTP_F_SPOOFABLE },
    { "fastly-client-ip", HTTP_F_SPOOFABLE },
    { "proxy-connection", HTTP_F_HOP },
    { "x-azure-clientip", HTTP_F_SPOOFABLE },
    { "x-azure-socketip", HTTP_F_SPOOFABLE },
    { "x-forwarded-host", HTTP_F_OWNED },
    { "x-originating-ip", HTTP_F_SPOOFABLE },
    { "transfer-encoding", HTTP_F_TRANSFER_ENCODING },
    { "x-forwarded-proto", HTTP_F_OWNED },
    { "x-method-override", HTTP_F_SPOOFABLE },
    { "proxy-authenticate", HTTP_F_HOP },
    { "proxy-authorization", HTTP_F_HOP },
    { "x-cluster-client-ip", HTTP_F_SPOOFABLE },
    { "x-http-method-override", HTTP_F_SPOOFABLE },
    { "x-original-forwarded-for", HTTP_F_SPOOFABLE },
    { "strict-transport-security", HTTP_F_STS },
};
#define HTTP_KNOWN_MAX 25
static const uint8_t http_known_start[HTTP_KNOWN_MAX + 2] = {
    0, 0, 0, 1, 1, 2, 3, 6, 8, 9, 12, 15, 19, 21, 25, 32, 35, 41, 44, 45, 47, 47, 47, 48, 48, 49, 50,
};

/* Families known by their prefix, after the exact names (x-forwarded-for is owned, the rest of
 * x-forwarded-* is not). */
static const struct {
    const char *prefix;
    uint8_t len, id;
} http_known_prefix[] = {
    { "cf-access-", 10, HTTP_F_CF_ACCESS },
    { "cf-", 3, HTTP_F_SPOOFABLE },
    { "x-forwarded-", 12, HTTP_F_SPOOFABLE },
    { "x-auth-request-", 15, HTTP_F_SPOOFABLE },
};

enum http_field http_field_id(struct http_slice name)
{
    char f[32]; /* the name folded: lowercase, '_' as '-'; longer names need only prefixes */
    size_t n = name.n < sizeof f ? name.n : sizeof f;
    bool underscore = false;
    for (size_t i = 0; i < n; i++) {
        char c = http_lower(name.p[i]);
        if (http_name_punct(c)) {
            c = '-';
            underscore = true;
        }
        f[i] = c;
    }
    for (size_t i = n; !underscore && i < name.n; i++)
        underscore = http_name_punct(name.p[i]);
    uint8_t id = HTTP_F_OTHER;
    if (name.n <= HTTP_KNOWN_MAX) {
        for (size_t k = http_known_start[name.n]; k < http_known_start[name.n + 1]; k++) {
            if (!memcmp(f, http_known[k].name, name.n)) {
                id = http_known[k].id;
                break;
            }
        }
    }
    for (size_t k = 0; id == HTTP_F_OTHER && k < sizeof http_known_prefix / sizeof *http_known_prefix; k++)
        if (n >= http_known_prefix[k].len && !memcmp(f, http_known_prefix[k].prefix, http_known_prefix[k].len))
            id = http_known_prefix[k].id;
    if (underscore && id != HTTP_F_OTHER && id != HTTP_F_CF_ACCESS)
        id = HTTP_F_NEVER;
    return (enum http_field)id;
}

int http_error_status(enum http_parse_result err)
{
    switch (err) {
    case HTTP_ERR_URI_TOO_LONG: return 414;
    case HTTP_ERR_HEADERS_LARGE: return 431;
    case HTTP_ERR_VERSION: return 505;
    case HTTP_ERR_NOT_IMPL: /* SPEC.md §8 */
    case HTTP_ERR_BAD:
    case HTTP_INCOMPLETE: break;
    }
    return 400;
}

const char *http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: break;
    }
    if (status >= 100 && status < 200) return "Informational";
    if (status >= 200 && status < 300) return "Success";
    if (status >= 300 && status < 400) return "Redirection";
    if (status >= 400 && status < 500) return "Client Error";
    return "Server Error";
}

/* ---- finding the end of a head ---------------------------------------------------------- */

/* Smallest buffered size at which a start line without its LF is certainly too long:
 * the line (8192 bytes) plus its CR, plus one. */
#define HTTP_LINE_CERTAIN (HTTP_MAX_REQUEST_LINE + 2)
/* Same for the field section: 16384 bytes of field lines, plus the blank line's CRLF. */
#define HTTP_FIELDS_CERTAIN (HTTP_MAX_HEADER_BYTES + 2)

/* Searches buf[*scanned..len) for the blank line ending the head, checking that every LF has
 * its CR (RFC 9112 §2.2: a bare LF is refused at once, not when a limit is hit). Returns the
 * head length, HTTP_INCOMPLETE, or an error. While incomplete, refuses as soon as the buffered
 * bytes prove the start line longer than 8 KiB (414) or the field section longer than 16 KiB
 * or 100 fields (431). Work: the new bytes once each; bytes before `scanned` are re-read only
 * to locate the start line (at most 8 KiB) when a new line completed or once 16 KiB are
 * buffered, and to count lines (at most 101) when a new line completed. */
static int http_find_head(const char *buf, size_t len, size_t *scanned)
{
    size_t start = *scanned;
    if (start > len)
        start = 0; /* the caller replaced the buffer: scan again */
    bool new_line = false;
    const char *p = buf + start;
    const char *end = buf + len;
    while (p < end) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        if (!lf)
            break;
        size_t i = (size_t)(lf - buf);
        if (i == 0 || buf[i - 1] != '\r')
            return HTTP_ERR_BAD; /* bare LF */
        if (i == 1)
            return HTTP_ERR_BAD; /* empty start line: no leading CRLF tolerated (§2.2 MAY) */
        if (buf[i - 2] == '\n') {
            /* "\r\n\r\n": buf[i-3] == '\r' was checked when that LF was found. */
            *scanned = i + 1;
            if (i + 1 > (size_t)INT32_MAX)
                return HTTP_ERR_HEADERS_LARGE;
            return (int)(i + 1);
        }
        new_line = true;
        p = lf + 1;
    }
    *scanned = len;

    if (start < HTTP_LINE_CERTAIN && len >= HTTP_LINE_CERTAIN &&
        !memchr(buf, '\n', HTTP_LINE_CERTAIN))
        return HTTP_ERR_URI_TOO_LONG;
    if (new_line || len >= HTTP_FIELDS_CERTAIN) {
        const char *lf = memchr(buf, '\n', len < HTTP_LINE_CERTAIN ? len : HTTP_LINE_CERTAIN);
        if (!lf)
            return HTTP_INCOMPLETE;
        size_t hs = (size_t)(lf - buf) + 1; /* start of the field section */
        if (len - hs >= HTTP_FIELDS_CERTAIN)
            return HTTP_ERR_HEADERS_LARGE;
        if (new_line) {
            size_t lines = 0;
            const char *q = buf + hs;
            while (q < end && (q = memchr(q, '\n', (size_t)(end - q))) != NULL) {
                if (++lines > HTTP_MAX_HEADERS)
                    return HTTP_ERR_HEADERS_LARGE;
                q++;
            }
        }
    }
    return HTTP_INCOMPLETE;
}

/* ---- pieces of a head ------------------------------------------------------------------- */

/* "HTTP/1.0" or "HTTP/1.1" (8 bytes, case-sensitive, RFC 9112 §2.3). Another well-formed
 * "HTTP/d.d" is HTTP_ERR_VERSION; anything else HTTP_ERR_BAD. */
static int http_parse_version(const char *p, size_t n, int *minor)
{
    if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' ||
        p[5] < '0' || p[5] > '9' || p[7] < '0' || p[7] > '9')
        return HTTP_ERR_BAD;
    if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
        return HTTP_ERR_VERSION;
    *minor = p[7] - '0';
    return 0;
}

/* Host / authority (RFC 9110 §7.2, RFC 3986 §3.2.2): reg-name (unreserved / sub-delims /
 * pct-encoded), which covers IPv4, or an IPv6 literal in brackets; then optionally ':' and
 * 1 to 5 digits not above 65535. Refused: empty, userinfo, IPvFuture, zone ids, empty port. */
static bool http_host_valid(const char *p, size_t n)
{
    size_t i = 0;
    if (n == 0)
        return false;
    if (p[0] == '[') {
        char tmp[INET6_ADDRSTRLEN + 1];
        struct in6_addr a6;
        const char *close = memchr(p, ']', n);
        if (!close)
            return false;
        size_t alen = (size_t)(close - p) - 1;
        if (alen == 0 || alen >= sizeof tmp)
            return false;
        for (size_t k = 0; k < alen; k++) {
            char c = p[1 + k];
            if (!HTTP_IS(c, HTTP_C_HEX) && c != ':' && c != '.')
                return false;
        }
        memcpy(tmp, p + 1, alen);
        tmp[alen] = '\0';
        if (inet_pton(AF_INET6, tmp, &a6) != 1)
            return false;
        i = alen + 2;
    } else {
        while (i < n && p[i] != ':') {
            if (!HTTP_IS(p[i], HTTP_C_HOST))
                return false;
            if (p[i] == '%') {
                if (i + 2 >= n || !HTTP_IS(p[i + 1], HTTP_C_HEX) || !HTTP_IS(p[i + 2], HTTP_C_HEX))
                    return false;
                i += 2;
            }
            i++;
        }
        if (i == 0)
            return false;
    }
    if (i == n)
        return true;
    if (p[i] != ':')
        return false;
    i++;
    size_t digits = n - i;
    if (digits == 0 || digits > 5)
        return false;
    unsigned port = 0;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        port = port * 10 + (unsigned)(p[i] - '0');
    }
    return port <= 65535;
}

/* Content-Length = 1*DIGIT (RFC 9110 §8.6). Refused: empty, a sign, inner spaces, a list
 * ("5, 5": several values are an ambiguity we never resolve), 2^62 or more. */
static bool http_parse_content_length(struct http_slice v, uint64_t *out)
{
    uint64_t x = 0;
    if (v.n == 0)
        return false;
    for (size_t i = 0; i < v.n; i++) {
        char c = v.p[i];
        if (c < '0' || c > '9')
            return false;
        uint64_t d = (uint64_t)(c - '0');
        if (x > (HTTP_MAX_CONTENT_LENGTH - 1 - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *out = x;
    return true;
}

/* Transfer-Encoding (RFC 9112 §6.1, §6.3): 0 when exactly "chunked" (any case, OWS around);
 * HTTP_ERR_NOT_IMPL when only other codings, or chunked last after other codings (we do not
 * decode them); HTTP_ERR_BAD when the list is malformed (empty elements, non-token), chunked
 * is repeated, carries parameters or is not the final coding. */
static int http_te_classify(struct http_slice v)
{
    size_t i = 0, nelem = 0, nchunked = 0;
    bool chunked_last = false;
    if (v.n == 0)
        return HTTP_ERR_BAD;
    while (i <= v.n) {
        size_t s = i;
        while (i < v.n && v.p[i] != ',')
            i++;
        size_t e = i;
        while (s < e && http_ows(v.p[s]))
            s++;
        while (e > s && http_ows(v.p[e - 1]))
            e--;
        size_t t = s;
        while (t < e && HTTP_IS(v.p[t], HTTP_C_TCHAR))
            t++;
        if (t == s)
            return HTTP_ERR_BAD; /* empty element or not a token */
        struct http_slice name = { v.p + s, t - s };
        bool is_chunked = http_slice_eq(name, "chunked");
        if (t < e) {
            /* transfer-parameter: OWS ";" ... — chunked has none; other codings are 501. */
            size_t k = t;
            while (k < e && http_ows(v.p[k]))
                k++;
            if (k == e || v.p[k] != ';' || is_chunked)
                return HTTP_ERR_BAD;
        }
        nelem++;
        if (is_chunked)
            nchunked++;
        chunked_last = is_chunked;
        i++; /* past ',' (or past the end, ending the loop) */
    }
    if (nchunked > 1 || (nchunked == 1 && !chunked_last))
        return HTTP_ERR_BAD;
    if (nchunked == 1 && nelem == 1)
        return 0;
    return HTTP_ERR_NOT_IMPL;
}

/* "content_length" / "Transfer_Encoding": some origins (CGI-style environments) fold '_'
 * into '-', so such a field would frame the body there and not here: refused. */
static bool http_slice_eq_underscore(struct http_slice s, const char *lower)
{
    bool underscore = false;
    size_t i = 0;
    for (; i < s.n; i++) {
        char c = http_lower(s.p[i]);
        if (lower[i] == '\0')
            return false;
        if (http_name_punct(c) && lower[i] == '-')
            underscore = true;
        else if (c != lower[i])
            return false;
    }
    return lower[i] == '\0' && underscore;
}

/* What the field section says about framing and the connection. */
struct http_fields {
    size_t ncl, nte, nhost;
    uint64_t cl;
    int te; /* http_te_classify of the (single) Transfer-Encoding */
    struct http_slice host;
    bool conn_close, conn_keep_alive, conn_upgrade, has_upgrade, expect_continue;
};

/* Parses the field lines in buf[from..to) (to = start of the blank line). Each line: a token
 * name, ':' right after it (no whitespace before the colon, RFC 9112 §5.1), OWS, a value of
 * field-vchar / SP / HTAB (RFC 9110 §5.5), OWS, CRLF. Refused: obs-fold (a line starting with
 * SP/HTAB, RFC 9112 §5.2), empty names, NUL/CR/controls in values, more than 100 fields or
 * 16 KiB (HTTP_ERR_HEADERS_LARGE), several Content-Length or Transfer-Encoding fields, and
 * those two names spelled with '_'. */
static int http_parse_fields(const char *buf, size_t from, size_t to, struct http_header *hdrs,
                             size_t *nhdrs, struct http_fields *f)
{
    size_t n = 0;
    size_t i = from;
    if (to - from > HTTP_MAX_HEADER_BYTES)
        return HTTP_ERR_HEADERS_LARGE;
    memset(f, 0, sizeof *f);
    while (i < to) {
        const char *lf = memchr(buf + i, '\n', to - i);
        size_t eol = (size_t)(lf - buf) - 1; /* the CR, checked by http_find_head */
        if (n == HTTP_MAX_HEADERS)
            return HTTP_ERR_HEADERS_LARGE;
        size_t k = i;
        while (k < eol && HTTP_IS(buf[k], HTTP_C_TCHAR))
            k++;
        if (k == i || k == eol || buf[k] != ':')
            return HTTP_ERR_BAD; /* obs-fold, empty name, space before ':', bad name byte */
        struct http_slice name = { buf + i, k - i };
        size_t vs = k + 1;
        while (vs < eol && http_ows(buf[vs]))
            vs++;
        if (!http_field_bytes_ok(buf + vs, eol - vs))
            return HTTP_ERR_BAD; /* NUL, bare CR, controls, DEL */
        size_t ve = eol;
        while (ve > vs && http_ows(buf[ve - 1]))
            ve--;
        struct http_slice value = { buf + vs, ve - vs };
        hdrs[n].name = name;
        hdrs[n].value = value;
        hdrs[n].id = (uint8_t)http_field_id(name);

        switch (hdrs[n].id) {
        case HTTP_F_HOST:
            f->nhost++;
            f->host = value;
            break;
        case HTTP_F_EXPECT:
            if (http_slice_eq(value, "100-continue"))
                f->expect_continue = true;
            break;
        case HTTP_F_UPGRADE:
            f->has_upgrade = true;
            break;
        case HTTP_F_CONNECTION:
            if (http_has_token(value, "close"))
                f->conn_close = true;
            if (http_has_token(value, "keep-alive"))
                f->conn_keep_alive = true;
            if (http_has_token(value, "upgrade"))
                f->conn_upgrade = true;
            break;
        case HTTP_F_CONTENT_LENGTH:
            if (++f->ncl > 1 || !http_parse_content_length(value, &f->cl))
                return HTTP_ERR_BAD;
            break;
        case HTTP_F_TRANSFER_ENCODING:
            if (++f->nte > 1)
                return HTTP_ERR_BAD;
            f->te = http_te_classify(value);
            break;
        case HTTP_F_NEVER:
            if (http_slice_eq_underscore(name, "content-length") ||
                http_slice_eq_underscore(name, "transfer-encoding"))
                return HTTP_ERR_BAD;
            break;
        default:
            break;
        }
        n++;
        i = eol + 2;
    }
    *nhdrs = n;
    if (f->ncl && f->nte)
        return HTTP_ERR_BAD; /* RFC 9112 §6.3: the classic smuggling pair, never forwarded */
    if (f->nte && f->te != 0)
        return f->te;
    return 0;
}

/* request-target (RFC 9112 §3.2): origin-form "/path[?query]" or absolute-form
 * "http(s)://authority[/path][?query]". Bytes are VCHAR only (no SP, controls, obs-text);
 * '#' is refused (a fragment is never sent, RFC 9110 §7.1); userinfo is refused (RFC 9110
 * §4.2.4); asterisk-form and authority-form are refused. */
static int http_parse_target(const char *p, size_t n, struct http_request *req)
{
    size_t i = 0;
    req->authority.p = NULL;
    req->authority.n = 0;
    if (n > 0 && p[0] == '/') {
        i = 0;
    } else {
        size_t sl;
        if (n >= 7 && http_slice_eq((struct http_slice){ p, 7 }, "http://"))
            sl = 7;
        else if (n >= 8 && http_slice_eq((struct http_slice){ p, 8 }, "https://"))
            sl = 8;
        else
            return HTTP_ERR_BAD;
        size_t a = sl;
        while (a < n && p[a] != '/' && p[a] != '?') {
            if (p[a] == '@')
                return HTTP_ERR_BAD;
            a++;
        }
        if (!http_host_valid(p + sl, a - sl))
            return HTTP_ERR_BAD;
        req->authority.p = p + sl;
        req->authority.n = a - sl;
        i = a;
    }
    size_t ps = i;
    while (i < n && p[i] != '?')
        i++;
    if (i == ps) {
        req->path.p = http_root_path;
        req->path.n = 1;
    } else {
        req->path.p = p + ps;
        req->path.n = i - ps;
    }
    if (i < n) {
        req->has_query = true;
        req->query.p = p + i + 1;
        req->query.n = n - i - 1;
    } else {
        req->has_query = false;
        req->query.p = NULL;
        req->query.n = 0;
    }
    return 0;
}

/* request-line = method SP request-target SP HTTP-version (RFC 9112 §3), exactly one SP
 * each. CONNECT is refused (a tunnel to anywhere is not an app); TRACE is refused with
 * HTTP_ERR_NOT_IMPL (it would echo credentials back, cross-site tracing). */
static int http_parse_request_line(const char *p, size_t n, struct http_request *req)
{
    size_t i = 0;
    while (i < n && HTTP_IS(p[i], HTTP_C_TCHAR))
        i++;
    if (i == 0 || i == n || p[i] != ' ')
        return HTTP_ERR_BAD;
    req->method.p = p;
    req->method.n = i;
    size_t ts = ++i;
    while (i < n && (unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f && p[i] != '#')
        i++;
    if (i == ts || i == n || p[i] != ' ')
        return HTTP_ERR_BAD;
    req->target.p = p + ts;
    req->target.n = i - ts;
    i++;
    int rc = http_parse_version(p + i, n - i, &req->minor);
    if (rc != 0)
        return rc;
    if (req->method.n == 7 && memcmp(p, "CONNECT", 7) == 0)
        return HTTP_ERR_BAD;
    if (req->method.n == 5 && memcmp(p, "TRACE", 5) == 0)
        return HTTP_ERR_NOT_IMPL;
    return http_parse_target(req->target.p, req->target.n, req);
}

int http_parse_request(const char *buf, size_t len, size_t *scanned, struct http_request *req)
{
    int head = http_find_head(buf, len, scanned);
    if (head <= 0)
        return head;
    const char *lf = memchr(buf, '\n', (size_t)head);
    size_t line = (size_t)(lf - buf) - 1;
    if (line > HTTP_MAX_REQUEST_LINE)
        return HTTP_ERR_URI_TOO_LONG;
    int rc = http_parse_request_line(buf, line, req);
    if (rc != 0)
        return rc;

    struct http_fields f;
    rc = http_parse_fields(buf, line + 2, (size_t)head - 2, req->headers, &req->nheaders, &f);
    if (rc != 0)
        return rc;
    if (f.nhost > 1 || (f.nhost == 0 && req->minor == 1))
        return HTTP_ERR_BAD; /* RFC 9112 §3.2: exactly one Host in HTTP/1.1 */
    if (f.nhost == 1 && !http_host_valid(f.host.p, f.host.n))
        return HTTP_ERR_BAD;
    if (f.nte && req->minor == 0)
        return HTTP_ERR_BAD; /* RFC 9112 §6.1: chunked is not HTTP/1.0, a smuggling vector */
    req->host = f.nhost ? f.host : (struct http_slice){ NULL, 0 };

    req->content_length = 0;
    if (f.nte) {
        req->body = HTTP_BODY_CHUNKED;
    } else if (f.ncl) {
        req->body = HTTP_BODY_LENGTH;
        req->content_length = f.cl;
    } else {
        req->body = HTTP_BODY_NONE;
    }
    req->keep_alive = req->minor == 1 ? !f.conn_close : (f.conn_keep_alive && !f.conn_close);
    /* RFC 9110 §10.1.1: 100-continue in an HTTP/1.0 request is ignored. */
    req->expect_continue = f.expect_continue && req->minor == 1;
    req->upgrade = f.conn_upgrade && f.has_upgrade;
    return head;
}

/* status-line = HTTP-version SP status-code SP [reason-phrase] (RFC 9112 §4). The SP after a
 * status code with no reason is tolerated when missing (harmless, and common in origins). */
static int http_parse_status_line(const char *p, size_t n, struct http_response *res)
{
    if (n < 12 || p[8] != ' ')
        return HTTP_ERR_BAD;
    int rc = http_parse_version(p, 8, &res->minor);
    if (rc != 0)
        return rc;
    int status = 0;
    for (size_t i = 9; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9')
            return HTTP_ERR_BAD;
        status = status * 10 + (p[i] - '0');
    }
    if (status < 100 || status > 599)
        return HTTP_ERR_BAD;
    res->status = status;
    res->reason.p = p + n;
    res->reason.n = 0;
    if (n > 12) {
        if (p[12] != ' ')
            return HTTP_ERR_BAD;
        for (size_t i = 13; i < n; i++) {
            if (!HTTP_IS(p[i], HTTP_C_FIELD))
                return HTTP_ERR_BAD;
        }
        res->reason.p = p + 13;
        res->reason.n = n - 13;
    }
    return 0;
}

int http_parse_response(const char *buf, size_t len, size_t *scanned, bool head_method,
                        struct http_response *res)
{
    int head = http_find_head(buf, len, scanned);
    if (head <= 0)
        return head;
    const char *lf = memchr(buf, '\n', (size_t)head);
    size_t line = (size_t)(lf - buf) - 1;
    if (line > HTTP_MAX_REQUEST_LINE)
        return HTTP_ERR_URI_TOO_LONG;
    int rc = http_parse_status_line(buf, line, res);
    if (rc != 0)
        return rc;

    struct http_fields f;
    rc = http_parse_fields(buf, line + 2, (size_t)head - 2, res->headers, &res->nheaders, &f);
    if (rc != 0)
        return rc;
    if (f.nte && res->minor == 0)
        return HTTP_ERR_BAD; /* RFC 9112 §6.1: no Transfer-Encoding in HTTP/1.0 */

    res->content_length = 0;
    res->keep_alive = res->minor == 1 ? !f.conn_close : (f.conn_keep_alive && !f.conn_close);
    /* RFC 9112 §6.3, in its order: HEAD, 1xx, 204, 304 have no body whatever the fields say. */
    if (head_method || res->status < 200 || res->status == 204 || res->status == 304) {
        res->body = HTTP_BODY_NONE;
    } else if (f.nte) {
        res->body = HTTP_BODY_CHUNKED;
    } else if (f.ncl) {
        res->body = HTTP_BODY_LENGTH;
        res->content_length = f.cl;
    } else {
        res->body = HTTP_BODY_CLOSE;
        res->keep_alive = false;
    }
    return head;
}

/* ---- chunked transfer coding ------------------------------------------------------------ */

enum http_chunked_state {
    HTTP_CH_SIZE = 0,    /* hex digits of chunk-size */
    HTTP_CH_EXT_NAME0,   /* after ';': first byte of chunk-ext-name */
    HTTP_CH_EXT_NAME,
    HTTP_CH_EXT_VAL0,    /* after '=' */
    HTTP_CH_EXT_TOKEN,
    HTTP_CH_EXT_QUOTED,
    HTTP_CH_EXT_QESC,
    HTTP_CH_EXT_QEND,    /* after the closing '"' */
    HTTP_CH_SIZE_LF,     /* CR seen at the end of the size line */
    HTTP_CH_DATA,
    HTTP_CH_DATA_CR,
    HTTP_CH_DATA_LF,
    HTTP_CH_TRAILER0,    /* start of a trailer line or of the final CRLF */
    HTTP_CH_TRAILER_NAME,
    HTTP_CH_TRAILER_VALUE,
    HTTP_CH_TRAILER_LF,
    HTTP_CH_FINAL_LF,
    HTTP_CH_DONE,
    HTTP_CH_ERROR,
};

#define HTTP_CHUNK_MAX_DIGITS 15   /* 60 bits: no overflow, far above any real chunk */
#define HTTP_CHUNK_MAX_LINE 4096   /* one size line or trailer line */
#define HTTP_CHUNK_MAX_TRAILERS 16384

static inline int http_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* chunked-body (RFC 9112 §7.1): chunk-size [chunk-ext] CRLF data CRLF ... "0" [chunk-ext]
 * CRLF trailer-section CRLF. Refused: empty or non-hex sizes ("0x5", "-1", " 5"), more than 15
 * digits, whitespace anywhere in the size line (BWS around ';' and '=' is read differently by
 * different parsers), extensions that are not token[=token/quoted-string], data not followed by
 * CRLF, bare LF or CR, trailer lines that are not "token:value" (no obs-fold), a size line or
 * trailer line over 4 KiB, a trailer section over 16 KiB. The state lives in `c` (zeroed to
 * start), so the input may be split anywhere. During the trailer section `remaining` counts
 * trailer bytes. */
ssize_t http_chunked_scan(struct http_chunked *c, const char *p, size_t len, bool *done)
{
    size_t i = 0;
    *done = false;
    if (c->state == HTTP_CH_DONE) {
        *done = true;
        return 0;
    }
    while (i < len) {
        unsigned char ch = (unsigned char)p[i];
        switch (c->state) {
        case HTTP_CH_SIZE: {
            int v = http_hexval(ch);
            if (v >= 0) {
                if (++c->digits > HTTP_CHUNK_MAX_DIGITS)
                    goto fail;
                c->remaining = (c->remaining << 4) | (uint64_t)v;
            } else if (c->digits == 0) {
                goto fail;
            } else if (ch == ';') {
                c->state = HTTP_CH_EXT_NAME0;
            } else if (ch == '\r') {
                c->state = HTTP_CH_SIZE_LF;
            } else {
                goto fail;
            }
            c->line++;
            i++;
            break;
        }
        case HTTP_CH_EXT_NAME0:
        case HTTP_CH_EXT_VAL0:
            if (HTTP_IS(ch, HTTP_C_TCHAR))
                c->state = c->state == HTTP_CH_EXT_NAME0 ? HTTP_CH_EXT_NAME : HTTP_CH_EXT_TOKEN;
            else if (ch == '"' && c->state == HTTP_CH_EXT_VAL0)
                c->state = HTTP_CH_EXT_QUOTED;
            else
                goto fail;
            goto ext_byte;
        case HTTP_CH_EXT_NAME:
        case HTTP_CH_EXT_TOKEN:
        case HTTP_CH_EXT_QEND:
            if (HTTP_IS(ch, HTTP_C_TCHAR) && c->state != HTTP_CH_EXT_QEND)
                ;
            else if (ch == '=' && c->state == HTTP_CH_EXT_NAME)
                c->state = HTTP_CH_EXT_VAL0;
            else if (ch == ';')
                c->state = HTTP_CH_EXT_NAME0;
            else if (ch == '\r')
                c->state = HTTP_CH_SIZE_LF;
            else
                goto fail;
            goto ext_byte;
        case HTTP_CH_EXT_QUOTED:
            if (ch == '"')
                c->state = HTTP_CH_EXT_QEND;
            else if (ch == '\\')
                c->state = HTTP_CH_EXT_QESC;
            else if (!HTTP_IS(ch, HTTP_C_QDTEXT))
                goto fail;
            goto ext_byte;
        case HTTP_CH_EXT_QESC:
            /* quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) */
            if (!HTTP_IS(ch, HTTP_C_FIELD))
                goto fail;
            c->state = HTTP_CH_EXT_QUOTED;
        ext_byte:
            if (++c->line > HTTP_CHUNK_MAX_LINE)
                goto fail;
            i++;
            break;
        case HTTP_CH_SIZE_LF:
            if (ch != '\n')
                goto fail;
            i++;
            c->line = 0;
            c->digits = 0;
            c->state = c->remaining ? HTTP_CH_DATA : HTTP_CH_TRAILER0;
            break;
        case HTTP_CH_DATA: {
            size_t avail = len - i;
            size_t take = c->remaining < avail ? (size_t)c->remaining : avail;
            i += take;
            c->remaining -= take;
            if (c->remaining == 0)
                c->state = HTTP_CH_DATA_CR;
            break;
        }
        case HTTP_CH_DATA_CR:
            if (ch != '\r')
                goto fail;
            c->state = HTTP_CH_DATA_LF;
            i++;
            break;
        case HTTP_CH_DATA_LF:
            if (ch != '\n')
                goto fail;
            c->state = HTTP_CH_SIZE;
            i++;
            break;
        case HTTP_CH_TRAILER0:
            if (ch == '\r')
                c->state = HTTP_CH_FINAL_LF;
            else if (HTTP_IS(ch, HTTP_C_TCHAR)) {
                c->state = HTTP_CH_TRAILER_NAME;
                c->trailers = true;
            } else {
                goto fail; /* obs-fold, empty name, controls */
            }
            goto trailer_byte;
        case HTTP_CH_TRAILER_NAME:
            if (ch == ':')
                c->state = HTTP_CH_TRAILER_VALUE;
            else if (!HTTP_IS(ch, HTTP_C_TCHAR))
                goto fail; /* includes whitespace before ':' */
            goto trailer_byte;
        case HTTP_CH_TRAILER_VALUE:
            if (ch == '\r')
                c->state = HTTP_CH_TRAILER_LF;
            else if (!HTTP_IS(ch, HTTP_C_FIELD))
                goto fail;
            goto trailer_byte;
        case HTTP_CH_TRAILER_LF:
            if (ch != '\n')
                goto fail;
            c->state = HTTP_CH_TRAILER0;
            c->line = 0;
            i++;
            if (++c->remaining > HTTP_CHUNK_MAX_TRAILERS)
                goto fail;
            break;
        trailer_byte:
            if (++c->line > HTTP_CHUNK_MAX_LINE || ++c->remaining > HTTP_CHUNK_MAX_TRAILERS)
                goto fail;
            i++;
            break;
        case HTTP_CH_FINAL_LF:
            if (ch != '\n')
                goto fail;
            i++;
            c->state = HTTP_CH_DONE;
            *done = true;
            return (ssize_t)i;
        default:
            goto fail;
        }
    }
    return (ssize_t)i;
fail:
    c->state = HTTP_CH_ERROR;
    return -1;
}
