/* Strict HTTP/1.1 message heads and body framing (RFC 9110, RFC 9112; SPEC.md §8).
 * The parser never allocates: it fills fixed arrays of slices pointing into the caller's buffer.
 * Anything two parsers could read differently is refused (request smuggling, RFC 9112 §6.3,
 * §11.2): the caller answers 400 and closes. */
#ifndef LATCH_HTTP_H
#define LATCH_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HTTP_MAX_HEADERS      100
#define HTTP_MAX_REQUEST_LINE 8192   /* longer: 414 */
#define HTTP_MAX_HEADER_BYTES 16384  /* header section (after the request line) longer: 431 */

/* Protocol names (SPEC.md §3.4, §5, §6), spelled once. The token cookie is COOKIE_TOKEN
 * (http/cookie.h). Header names are in lowercase, as http_find_header compares them. */
#define HTTP_ACCESS_PREFIX    "/cdn-cgi/access/"        /* the gateway's own endpoints, on every host */
#define HTTP_H_ACCESS_TOKEN   "cf-access-token"         /* a token presented by a program */
#define HTTP_H_CLIENT_ID      "cf-access-client-id"     /* a service token's id… */
#define HTTP_H_CLIENT_SECRET  "cf-access-client-secret" /* …and its secret */

/* Results of the head parsers: > 0 is the head's length in bytes (through the blank line). */
enum http_parse_result {
    HTTP_INCOMPLETE        = 0,
    HTTP_ERR_BAD           = -1,  /* 400, then close */
    HTTP_ERR_URI_TOO_LONG  = -2,  /* 414 */
    HTTP_ERR_HEADERS_LARGE = -3,  /* 431: more than HTTP_MAX_HEADERS or HTTP_MAX_HEADER_BYTES */
    HTTP_ERR_VERSION       = -4,  /* 505: not HTTP/1.0 or HTTP/1.1 */
    HTTP_ERR_NOT_IMPL      = -5,  /* 400: Transfer-Encoding other than a final chunked; TRACE */
};

/* The status a refused request head is answered with, the same on every listener (then the
 * connection closes). HTTP_ERR_NOT_IMPL is 400, not the 501 RFC 9112 §6.1 suggests for a
 * transfer coding we do not implement: SPEC.md §8 refuses such a request as malformed framing
 * (a smuggling attempt more than a feature request), and TRACE likewise. */
int http_error_status(enum http_parse_result err);

struct http_slice {
    const char *p;
    size_t n;
};

/* The fields the gateway treats specially, recognized once, by the parser, for every field line
 * (http_field_id): whoever forwards a head switches on the id and never compares names again. */
enum http_field {
    HTTP_F_OTHER = 0,          /* passes as sent */
    /* hop-by-hop (RFC 9110 §7.6.1) */
    HTTP_F_CONNECTION,
    HTTP_F_UPGRADE,
    HTTP_F_TRANSFER_ENCODING,
    HTTP_F_HOP,                /* keep-alive, proxy-connection, te, trailer, proxy-authenticate,
                                  proxy-authorization */
    /* written by the gateway itself: a client's copy is dropped (SPEC.md §3.5) */
    HTTP_F_HOST,
    HTTP_F_CONTENT_LENGTH,
    HTTP_F_EXPECT,
    HTTP_F_X_FORWARDED_FOR,    /* believed from trusted_proxies only, as the chain's start */
    HTTP_F_OWNED,              /* x-forwarded-proto, x-forwarded-host, x-request-id, http2-settings */
    HTTP_F_CF_ACCESS,          /* cf-access-*, also spelled with '_' */
    HTTP_F_COOKIE,
    HTTP_F_SET_COOKIE,
    HTTP_F_STS,                /* strict-transport-security */
    /* what origins act on and the gateway does not set: client addresses (x-real-ip, forwarded,
     * true-client-ip, …), URL and method overrides (x-original-url, x-http-method-override, …),
     * the rest of x-forwarded-*, cf-* (Cloudflare's edge), other proxies' user headers
     * (remote-user, x-auth-request-*, …). Dropped from requests unless the app keeps them. */
    HTTP_F_SPOOFABLE,
    /* never forwarded, never kept: a field above spelled with '_' for '-' (CGI-style origins
     * read X_Real_IP as X-Real-IP), and Proxy (httpoxy: CGI turns it into HTTP_PROXY) */
    HTTP_F_NEVER,
};

struct http_header {
    struct http_slice name, value; /* value without leading/trailing OWS */
    uint8_t id;                    /* enum http_field */
};

enum http_body {
    HTTP_BODY_NONE,
    HTTP_BODY_LENGTH,   /* Content-Length bytes */
    HTTP_BODY_CHUNKED,  /* chunked transfer coding; use http_chunked_scan */
    HTTP_BODY_CLOSE,    /* responses only: until the origin closes */
};

struct http_request {
    struct http_slice method;
    struct http_slice target;     /* request-target as sent */
    struct http_slice path;       /* origin-form path, or the path of an absolute-form target ("/" if empty) */
    struct http_slice query;      /* after '?', without it; n == 0 and p == NULL when absent */
    bool has_query;
    struct http_slice authority;  /* absolute-form only: host[:port]; else n == 0 */
    struct http_slice host;       /* the Host header value (exactly one required) */
    int minor;                    /* 0 or 1 */
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t nheaders;
    enum http_body body;
    uint64_t content_length;
    bool keep_alive;              /* after this request, per version and Connection */
    bool expect_continue;         /* Expect: 100-continue */
    bool upgrade;                 /* Connection: upgrade + Upgrade present */
};

struct http_response {
    int status;
    int minor;
    struct http_slice reason;
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t nheaders;
    enum http_body body;
    uint64_t content_length;
    bool keep_alive;
};

/* Parses a request head from buf[0..len). `scanned` is the caller's state between calls on the
 * same growing buffer (start at 0; reset to 0 for the next message, or when the buffer's start
 * moves): bytes already checked for the head's end are not scanned again, so a slow client
 * costs linear work. A bare LF is refused as soon as it arrives; the 414/431 limits are also
 * enforced while the head is incomplete (8 KiB + CR buffered without the first LF; a field
 * section that can no longer fit in 16 KiB; a 101st complete field line).
 * Refuses (HTTP_ERR_BAD unless noted):
 *   - bare CR or bare LF where CRLF is due; obs-fold (a line starting with SP/HTAB);
 *   - NUL, controls (except HTAB in values), DEL in the request line, names or values;
 *   - whitespace between a header name and the colon; empty or non-token names or methods;
 *   - a request line that is not exactly "METHOD SP target SP HTTP/1.x";
 *   - both Content-Length and Transfer-Encoding; several Content-Length (even equal) or one
 *     that is not 1*DIGIT within 2^62; Transfer-Encoding other than exactly "chunked"
 *     (HTTP_ERR_NOT_IMPL for other codings, HTTP_ERR_BAD for duplicates or odd lists);
 *   - a missing Host in HTTP/1.1, or more than one Host; a Host or authority with characters
 *     outside reg-name/IP-literal/port;
 *   - a target that is not origin-form ("/…") or absolute-form ("http(s)://authority/…");
 *     CONNECT and asterisk-form are refused; '#' anywhere in the target; userinfo ('@') in
 *     an absolute-form authority; SP, controls and bytes >= 0x80 in the target;
 *   - TRACE (HTTP_ERR_NOT_IMPL: it would echo credentials back);
 *   - "Content_Length" / "Transfer_Encoding" (some origins fold '_' into '-');
 *   - a leading empty line before the request line;
 *   - a Transfer-Encoding in an HTTP/1.0 request.
 * On success returns the head length and fills `req`. Content-Length: 0 gives
 * HTTP_BODY_LENGTH with content_length 0; no framing field gives HTTP_BODY_NONE. An Expect
 * other than "100-continue" leaves expect_continue false and the header in `headers`: the
 * caller answers 417 (RFC 9110 §10.1.1); 100-continue in HTTP/1.0 is ignored. */
int http_parse_request(const char *buf, size_t len, size_t *scanned, struct http_request *req);

/* Parses a response head. `head_method` tells that the request was HEAD (no body); a 1xx,
 * 204 or 304 has no body either (RFC 9112 §6.3). Same strictness as requests (CL+TE, bad or
 * repeated CL, TE other than exactly chunked: HTTP_ERR_NOT_IMPL / HTTP_ERR_BAD, TE in
 * HTTP/1.0, all refused even where the status has no body); a response with neither length
 * nor chunked is HTTP_BODY_CLOSE with keep_alive false. The status line is
 * "HTTP/1.x SP 3DIGIT [SP reason]" with 100 <= status <= 599; a missing SP before an empty
 * reason is tolerated. For a response every negative result means "bad gateway". */
int http_parse_response(const char *buf, size_t len, size_t *scanned, bool head_method,
                        struct http_response *res);

/* Case-insensitive ASCII comparison of a slice with a NUL-terminated lowercase name. */
bool http_slice_eq(struct http_slice s, const char *lower);

/* Finds the first header with this (lowercase) name; NULL when absent. */
const struct http_header *http_find_header(const struct http_header *h, size_t n, const char *lower);

/* True when a comma-separated header value contains the token (case-insensitive). */
bool http_has_token(struct http_slice value, const char *lower);

/* Chunked transfer coding (RFC 9112 §7.1) seen as a byte stream that passes through unchanged:
 * the scanner tells how many of the offered bytes belong to the body and validates them.
 * Refuses: sizes that are empty, not hex, longer than 15 hex digits; whitespace in the size
 * line (BWS is read differently by different parsers); chunk extensions other than
 * ;token[=token/quoted-string]; a missing CRLF after chunk data; bare LF or CR; trailer lines
 * that are not valid header fields (no obs-fold); a size/trailer line over 4 KiB; a trailer
 * section over 16 KiB. Start from a zeroed struct; the input may be split anywhere. An error
 * is sticky. */
struct http_chunked {
    uint8_t state;
    uint8_t digits;
    bool trailers;       /* the body ended with trailer fields (not only the final CRLF) */
    uint16_t line;       /* length of the current size or trailer line (bounded at 4 KiB) */
    uint64_t remaining;  /* data bytes left in the current chunk */
};

/* Consumes from p[0..len). Returns the number of bytes that belong to the chunked body
 * (<= len), or -1 on a framing error. `*done` becomes true when the last-chunk and trailer
 * section have been consumed: bytes after the returned count belong to the next message. */
ssize_t http_chunked_scan(struct http_chunked *c, const char *p, size_t len, bool *done);

/* The id of a field name (enum http_field): case-insensitive; a name with '_' or any other
 * punctuation ('.', '~', '+'…) where a known name has '-' is HTTP_F_NEVER (HTTP_F_CF_ACCESS
 * for cf_access_*, cf.access.*): CGI-style origins read them all as the known name. The
 * parsers fill http_header.id with it. */
enum http_field http_field_id(struct http_slice name);

/* Hop-by-hop fields (RFC 9110 §7.6.1): connection, keep-alive, proxy-connection, te, trailer,
 * transfer-encoding, upgrade, proxy-authenticate, proxy-authorization. */
static inline bool http_field_hop(uint8_t id)
{
    return id >= HTTP_F_CONNECTION && id <= HTTP_F_HOP;
}

/* The reason phrase for a status code we generate ("Bad Gateway"). */
const char *http_reason(int status);

#endif
