/* Unit tests of the strict HTTP/1.1 parsers (src/http/parse.c): accepted and refused heads,
 * the request-smuggling corpus, limits, and the chunked scanner under every split. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "http/http.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define OK 1 /* expected: a complete head (> 0) */

struct req_case {
    const char *name;
    const char *raw;
    int expect; /* OK or an enum http_parse_result */
};

#define H11 "GET / HTTP/1.1\r\nHost: a.example\r\n"

static const struct req_case req_cases[] = {
    /* accepted */
    { "simple", H11 "\r\n", OK },
    { "query", "GET /a?b=c&d HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", OK },
    { "http10 no host", "GET / HTTP/1.0\r\n\r\n", OK },
    { "custom method", "FOO-BAR /x HTTP/1.1\r\nHost: a\r\n\r\n", OK },
    { "content-length", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", OK },
    { "content-length ows", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: \t5 \r\n\r\n", OK },
    { "content-length max", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4611686018427387903\r\n\r\n", OK },
    { "chunked", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", OK },
    { "chunked case ows", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tChunKed \r\n\r\n", OK },
    { "absolute form", "GET http://example.com HTTP/1.1\r\nHost: x\r\n\r\n", OK },
    { "absolute https", "GET HTTPS://Example.com:443/p?q HTTP/1.1\r\nHost: x\r\n\r\n", OK },
    { "ipv6 host", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", OK },
    { "ipv4 host", "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", OK },
    { "obs-text value", H11 "X: \x80\xff caf\xc3\xa9\r\n\r\n", OK },
    { "empty value", H11 "X:\r\n\r\n", OK },
    { "tab in value", H11 "X: a\tb\r\n\r\n", OK },
    { "query with odd chars", "GET /a?x={\"y\"}|^ HTTP/1.1\r\nHost: a\r\n\r\n", OK },
    { "underscore header", H11 "X_Custom: 1\r\n\r\n", OK },

    /* smuggling corpus: framing */
    { "CL then TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_ERR_BAD },
    { "TE then CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", HTTP_ERR_BAD },
    { "TE twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_ERR_BAD },
    { "TE list chunked chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", HTTP_ERR_BAD },
    { "TE xchunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", HTTP_ERR_NOT_IMPL },
    { "TE gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", HTTP_ERR_NOT_IMPL },
    { "TE gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", HTTP_ERR_NOT_IMPL },
    { "TE chunked, gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", HTTP_ERR_BAD },
    { "TE chunked params", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", HTTP_ERR_BAD },
    { "TE empty element", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n", HTTP_ERR_BAD },
    { "TE empty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n", HTTP_ERR_BAD },
    { "TE vertical tab", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\x0b\r\n\r\n", HTTP_ERR_BAD },
    { "TE leading vtab", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0b" "chunked\r\n\r\n", HTTP_ERR_BAD },
    { "TE form feed", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0c" "chunked\r\n\r\n", HTTP_ERR_BAD },
    { "TE space in token", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chun ked\r\n\r\n", HTTP_ERR_BAD },
    { "TE space before colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", HTTP_ERR_BAD },
    { "TE tab before colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\t: chunked\r\n\r\n", HTTP_ERR_BAD },
    { "TE obs-fold", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", HTTP_ERR_BAD },
    { "TE underscore", "POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\n\r\n", HTTP_ERR_BAD },
    { "CL underscore", "POST / HTTP/1.1\r\nHost: a\r\nContent_Length: 5\r\n\r\n", HTTP_ERR_BAD },
    { "CL dot", "POST / HTTP/1.1\r\nHost: a\r\nContent.Length: 5\r\n\r\n", HTTP_ERR_BAD },
    { "TE tilde", "POST / HTTP/1.1\r\nHost: a\r\nTransfer~Encoding: chunked\r\n\r\n", HTTP_ERR_BAD },
    { "CL plus", "POST / HTTP/1.1\r\nHost: a\r\nContent+length: 5\r\n\r\n", HTTP_ERR_BAD },
    { "TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_ERR_BAD },
    { "CL twice equal", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", HTTP_ERR_BAD },
    { "CL twice differ", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", HTTP_ERR_BAD },
    { "CL plus", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", HTTP_ERR_BAD },
    { "CL minus", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n", HTTP_ERR_BAD },
    { "CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,5\r\n\r\n", HTTP_ERR_BAD },
    { "CL list space", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", HTTP_ERR_BAD },
    { "CL inner space", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n", HTTP_ERR_BAD },
    { "CL hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", HTTP_ERR_BAD },
    { "CL empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", HTTP_ERR_BAD },
    { "CL 2^62", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4611686018427387904\r\n\r\n", HTTP_ERR_BAD },
    { "CL overflow", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", HTTP_ERR_BAD },
    { "CL space before colon", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", HTTP_ERR_BAD },

    /* line endings and bytes */
    { "obs-fold", H11 "X: a\r\n b\r\n\r\n", HTTP_ERR_BAD },
    { "obs-fold tab", H11 "X: a\r\n\tb\r\n\r\n", HTTP_ERR_BAD },
    { "first field folded", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", HTTP_ERR_BAD },
    { "bare LF request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", HTTP_ERR_BAD },
    { "bare LF field", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", HTTP_ERR_BAD },
    { "bare LF end", "GET / HTTP/1.1\r\nHost: a\r\n\n", HTTP_ERR_BAD },
    { "LF LF", "GET / HTTP/1.1\n\n", HTTP_ERR_BAD },
    { "bare CR field", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", HTTP_ERR_BAD },
    { "bare CR request line", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD },
    { "CR CR LF", "GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", HTTP_ERR_BAD },
    { "DEL in value", H11 "X: a\x7f\r\n\r\n", HTTP_ERR_BAD },
    { "control in value", H11 "X: a\x01\r\n\r\n", HTTP_ERR_BAD },
    { "name with space", H11 "X Y: a\r\n\r\n", HTTP_ERR_BAD },
    { "name with paren", H11 "X(Y): a\r\n\r\n", HTTP_ERR_BAD },
    { "empty name", H11 ": a\r\n\r\n", HTTP_ERR_BAD },
    { "no colon", H11 "XY\r\n\r\n", HTTP_ERR_BAD },
    { "leading CRLF", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD },

    /* request line */
    { "HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", HTTP_ERR_VERSION },
    { "HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", HTTP_ERR_VERSION },
    { "HTTP/0.9", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", HTTP_ERR_VERSION },
    { "lowercase http", "GET / http/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD },
    { "HTTP/1", "GET / HTTP/1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD },
    { "HTTP/1.10", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", HTTP_ERR_BAD },
    { "trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", HTTP_ERR_BAD },
    { "double space", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD },
    { "tab separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD },
    { "no version", "GET /\r\nHost: a\r\n\r\n", HTTP_ERR_BAD },
    { "empty method", " / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD },
    { "method non-token", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD },
    { "CONNECT", "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", HTTP_ERR_BAD },
    { "CONNECT origin-form", "CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD },
    { "TRACE", "TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_NOT_IMPL },
    { "asterisk form", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD },
    { "authority form", "GET a.example:80 HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD },
    { "relative", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD },
    { "fragment", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD },
    { "fragment in query", "GET /a?x#b HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD },
    { "userinfo", "GET http://user:pw@a.example/ HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD },
    { "userinfo empty", "GET http://@a.example/ HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD },
    { "ftp scheme", "GET ftp://a.example/ HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD },
    { "empty authority", "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD },
    { "NUL in target", "GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD },
    { "DEL in target", "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD },
    { "8bit in target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD },

    /* Host */
    { "no host 1.1", "GET / HTTP/1.1\r\n\r\n", HTTP_ERR_BAD },
    { "two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", HTTP_ERR_BAD },
    { "two equal hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", HTTP_ERR_BAD },
    { "empty host", "GET / HTTP/1.1\r\nHost: \r\n\r\n", HTTP_ERR_BAD },
    { "host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", HTTP_ERR_BAD },
    { "host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", HTTP_ERR_BAD },
    { "host with path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", HTTP_ERR_BAD },
    { "host port too big", "GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", HTTP_ERR_BAD },
    { "host empty port", "GET / HTTP/1.1\r\nHost: a:\r\n\r\n", HTTP_ERR_BAD },
    { "host alpha port", "GET / HTTP/1.1\r\nHost: a:8o\r\n\r\n", HTTP_ERR_BAD },
    { "host open bracket", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", HTTP_ERR_BAD },
    { "host bad ipv6", "GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n", HTTP_ERR_BAD },
    { "host bad escape", "GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", HTTP_ERR_BAD },
    { "authority bad port", "GET http://a:99999/ HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD },
};

/* Feeds the whole head at once, then byte by byte (the incremental contract: the first
 * non-incomplete answer is the same, and intermediate answers are HTTP_INCOMPLETE). */
static void check_req_case(const struct req_case *c, size_t len)
{
    struct http_request *req = malloc(sizeof *req);
    assert_non_null(req);
    size_t scanned = 0;
    int rc = http_parse_request(c->raw, len, &scanned, req);
    if (c->expect == OK) {
        if (rc != (int)len)
            fail_msg("case \"%s\": got %d, expected %zu", c->name, rc, len);
    } else if (rc != c->expect) {
        fail_msg("case \"%s\": got %d, expected %d", c->name, rc, c->expect);
    }
    scanned = 0;
    int inc = 0;
    for (size_t k = 1; k <= len; k++) {
        char *copy = malloc(k); /* exact size: ASan sees any over-read */
        memcpy(copy, c->raw, k);
        inc = http_parse_request(copy, k, &scanned, req);
        free(copy);
        if (inc != HTTP_INCOMPLETE)
            break;
    }
    if (c->expect == OK ? inc != (int)len : inc != c->expect)
        fail_msg("case \"%s\" byte by byte: got %d", c->name, inc);
    free(req);
}

static void test_request_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof req_cases / sizeof req_cases[0]; i++) {
        const struct req_case *c = &req_cases[i];
        size_t len = strlen(c->raw);
        if (strcmp(c->name, "NUL in target") == 0)
            len = sizeof "GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n" - 1;
        check_req_case(c, len);
    }
}

static bool slice_is(struct http_slice s, const char *want)
{
    return s.n == strlen(want) && memcmp(s.p, want, s.n) == 0;
}

static int parse_req(const char *raw, struct http_request *req)
{
    size_t scanned = 0;
    return http_parse_request(raw, strlen(raw), &scanned, req);
}

static void test_request_fields(void **state)
{
    (void)state;
    static struct http_request req;
    const char *raw = "POST /a/b?x=1 HTTP/1.1\r\nHost: Api.Example.com:8443\r\n"
                      "Content-Length: 42\r\nX-Thing:   spaced value \t\r\n\r\nBODY";
    int rc = parse_req(raw, &req);
    assert_int_equal(rc, (int)(strlen(raw) - 4));
    assert_true(slice_is(req.method, "POST"));
    assert_true(slice_is(req.target, "/a/b?x=1"));
    assert_true(slice_is(req.path, "/a/b"));
    assert_true(req.has_query);
    assert_true(slice_is(req.query, "x=1"));
    assert_int_equal(req.authority.n, 0);
    assert_true(slice_is(req.host, "Api.Example.com:8443"));
    assert_int_equal(req.minor, 1);
    assert_int_equal(req.nheaders, 3);
    assert_int_equal(req.body, HTTP_BODY_LENGTH);
    assert_int_equal(req.content_length, 42);
    assert_true(req.keep_alive);
    assert_false(req.expect_continue);
    assert_false(req.upgrade);
    const struct http_header *h = http_find_header(req.headers, req.nheaders, "x-thing");
    assert_non_null(h);
    assert_true(slice_is(h->value, "spaced value"));
    assert_null(http_find_header(req.headers, req.nheaders, "x-other"));

    rc = parse_req("GET /p HTTP/1.1\r\nHost: a\r\n\r\n", &req);
    assert_true(rc > 0);
    assert_false(req.has_query);
    assert_null(req.query.p);
    assert_int_equal(req.body, HTTP_BODY_NONE);

    rc = parse_req("GET /p? HTTP/1.1\r\nHost: a\r\n\r\n", &req);
    assert_true(rc > 0);
    assert_true(req.has_query);
    assert_int_equal(req.query.n, 0);
}

/* Every byte value at every position of a long value (the field validator works on words of
 * eight bytes): refused exactly when it is NUL, a control other than HTAB, or DEL; a value's
 * edges lose their spaces and tabs only. CR and LF end the line, so they are left out. */
static void test_field_bytes(void **state)
{
    (void)state;
    static struct http_request req;
    char raw[256];
    for (int b = 0; b < 256; b++) {
        if (b == '\r' || b == '\n')
            continue;
        bool good = b == '\t' || (b >= 0x20 && b != 0x7f);
        for (int pos = 0; pos < 24; pos++) {
            char v[25];
            memset(v, 'a', 24);
            v[24] = '\0';
            v[pos] = (char)b;
            int n = snprintf(raw, sizeof raw, "GET / HTTP/1.1\r\nHost: a\r\nX-V: z");
            memcpy(raw + n, v, 24);
            n += 24;
            n += snprintf(raw + n, sizeof raw - (size_t)n, "z\r\n\r\n");
            size_t scanned = 0;
            int rc = http_parse_request(raw, (size_t)n, &scanned, &req);
            if (good != (rc > 0))
                fail_msg("byte 0x%02x at %d: %s", b, pos, rc > 0 ? "accepted" : "refused");
        }
    }
    int rc = parse_req("GET / HTTP/1.1\r\nHost: a\r\nX-V: \t a\tb \t\r\n\r\n", &req);
    assert_true(rc > 0);
    const struct http_header *h = http_find_header(req.headers, req.nheaders, "x-v");
    assert_true(slice_is(h->value, "a\tb"));
}

static void test_request_absolute_form(void **state)
{
    (void)state;
    static struct http_request req;
    assert_true(parse_req("GET HTTP://Api.Example.com:8080 HTTP/1.1\r\nHost: other\r\n\r\n", &req) > 0);
    assert_true(slice_is(req.authority, "Api.Example.com:8080"));
    assert_true(slice_is(req.path, "/"));
    assert_false(req.has_query);
    assert_true(slice_is(req.host, "other"));

    assert_true(parse_req("GET https://a.example?q=1 HTTP/1.1\r\nHost: a\r\n\r\n", &req) > 0);
    assert_true(slice_is(req.authority, "a.example"));
    assert_true(slice_is(req.path, "/"));
    assert_true(slice_is(req.query, "q=1"));

    assert_true(parse_req("GET http://[::1]:80/x/y?z HTTP/1.1\r\nHost: a\r\n\r\n", &req) > 0);
    assert_true(slice_is(req.authority, "[::1]:80"));
    assert_true(slice_is(req.path, "/x/y"));
    assert_true(slice_is(req.query, "z"));
}

static void test_request_connection(void **state)
{
    (void)state;
    static struct http_request req;
    assert_true(parse_req("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &req) > 0);
    assert_false(req.keep_alive);
    assert_true(parse_req("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n", &req) > 0);
    assert_false(req.keep_alive);
    assert_true(parse_req("GET / HTTP/1.0\r\n\r\n", &req) > 0);
    assert_false(req.keep_alive);
    assert_int_equal(req.minor, 0);
    assert_int_equal(req.host.n, 0);
    assert_true(parse_req("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &req) > 0);
    assert_true(req.keep_alive);
    assert_true(parse_req("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", &req) > 0);
    assert_true(req.upgrade);
    assert_true(parse_req("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", &req) > 0);
    assert_false(req.upgrade);
    assert_true(parse_req("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n", &req) > 0);
    assert_false(req.upgrade);
    assert_true(parse_req("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n", &req) > 0);
    assert_true(req.expect_continue);
    assert_true(parse_req("POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 3\r\n\r\n", &req) > 0);
    assert_false(req.expect_continue);
    assert_true(parse_req("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", &req) > 0);
    assert_false(req.expect_continue);
    assert_true(parse_req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", &req) > 0);
    assert_int_equal(req.body, HTTP_BODY_CHUNKED);
}

/* Builds "GET /<pad> HTTP/1.1\r\n" whose request line is exactly `line` bytes. */
static size_t build_line(char *buf, size_t line)
{
    size_t pad = line - strlen("GET / HTTP/1.1");
    memcpy(buf, "GET /", 5);
    memset(buf + 5, 'a', pad);
    memcpy(buf + 5 + pad, " HTTP/1.1\r\n", 11);
    return line + 2;
}

static void test_request_limits(void **state)
{
    (void)state;
    static struct http_request req;
    static char buf[64 * 1024];
    size_t scanned, n;

    /* request line exactly 8192: accepted; 8193: 414 */
    n = build_line(buf, HTTP_MAX_REQUEST_LINE);
    n += (size_t)sprintf(buf + n, "Host: a\r\n\r\n");
    scanned = 0;
    assert_int_equal(http_parse_request(buf, n, &scanned, &req), (int)n);
    n = build_line(buf, HTTP_MAX_REQUEST_LINE + 1);
    n += (size_t)sprintf(buf + n, "Host: a\r\n\r\n");
    scanned = 0;
    assert_int_equal(http_parse_request(buf, n, &scanned, &req), HTTP_ERR_URI_TOO_LONG);
    /* incomplete: 8194 bytes without LF is already 414, 8193 is not yet */
    memset(buf, 'a', sizeof buf);
    memcpy(buf, "GET /", 5);
    scanned = 0;
    assert_int_equal(http_parse_request(buf, HTTP_MAX_REQUEST_LINE + 1, &scanned, &req), HTTP_INCOMPLETE);
    assert_int_equal(http_parse_request(buf, HTTP_MAX_REQUEST_LINE + 2, &scanned, &req), HTTP_ERR_URI_TOO_LONG);

    /* 100 fields accepted, 101 refused (complete and incomplete) */
    n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 1; i < HTTP_MAX_HEADERS; i++)
        n += (size_t)sprintf(buf + n, "X-%d: v\r\n", i);
    size_t before_end = n;
    n += (size_t)sprintf(buf + n, "\r\n");
    scanned = 0;
    assert_int_equal(http_parse_request(buf, n, &scanned, &req), (int)n);
    assert_int_equal(req.nheaders, HTTP_MAX_HEADERS);
    n = before_end + (size_t)sprintf(buf + before_end, "X-101: v\r\n");
    scanned = 0;
    assert_int_equal(http_parse_request(buf, n, &scanned, &req), HTTP_ERR_HEADERS_LARGE);
    n += (size_t)sprintf(buf + n, "\r\n");
    scanned = 0;
    assert_int_equal(http_parse_request(buf, n, &scanned, &req), HTTP_ERR_HEADERS_LARGE);

    /* field section exactly 16384 bytes accepted, one more refused */
    size_t rl = (size_t)sprintf(buf, "GET / HTTP/1.1\r\n");
    n = rl + (size_t)sprintf(buf + rl, "Host: a\r\nX: ");
    size_t fill = rl + HTTP_MAX_HEADER_BYTES - 2 - n;
    memset(buf + n, 'v', fill);
    n += fill;
    n += (size_t)sprintf(buf + n, "\r\n\r\n");
    scanned = 0;
    assert_int_equal(http_parse_request(buf, n, &scanned, &req), (int)n);
    memmove(buf + rl + 12, buf + rl + 11, n - rl - 11);
    n++;
    scanned = 0;
    assert_int_equal(http_parse_request(buf, n, &scanned, &req), HTTP_ERR_HEADERS_LARGE);
    /* incomplete: a never-ending field line is refused once 16 KiB + 2 are buffered */
    n = rl + (size_t)sprintf(buf + rl, "Host: a\r\nX: ");
    memset(buf + n, 'v', 20000);
    scanned = 0;
    assert_int_equal(http_parse_request(buf, rl + HTTP_MAX_HEADER_BYTES + 1, &scanned, &req), HTTP_INCOMPLETE);
    assert_int_equal(http_parse_request(buf, rl + HTTP_MAX_HEADER_BYTES + 2, &scanned, &req), HTTP_ERR_HEADERS_LARGE);
}

/* A slow client: the scan position advances, so no byte is searched for the head end twice. */
static void test_request_scanned(void **state)
{
    (void)state;
    static struct http_request req;
    const char *raw = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    size_t scanned = 0;
    for (size_t k = 1; k < strlen(raw); k++) {
        assert_int_equal(http_parse_request(raw, k, &scanned, &req), HTTP_INCOMPLETE);
        assert_int_equal(scanned, k);
    }
    assert_int_equal(http_parse_request(raw, strlen(raw), &scanned, &req), (int)strlen(raw));
    /* a bare LF fails at once, long before any limit */
    scanned = 0;
    assert_int_equal(http_parse_request("GET / HTTP/1.1\nHo", 17, &scanned, &req), HTTP_ERR_BAD);
    /* pipelined bytes after the head are not part of it */
    const char *two = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
    scanned = 0;
    int rc = http_parse_request(two, strlen(two), &scanned, &req);
    assert_int_equal(rc, (int)strlen(two) / 2);
    assert_true(slice_is(req.path, "/1"));
}

struct res_case {
    const char *name;
    const char *raw;
    bool head;
    int expect;
    enum http_body body;
    uint64_t cl;
    bool keep_alive;
};

static const struct res_case res_cases[] = {
    { "length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, OK, HTTP_BODY_LENGTH, 5, true },
    { "close delimited", "HTTP/1.1 200 OK\r\n\r\n", false, OK, HTTP_BODY_CLOSE, 0, false },
    { "chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, OK, HTTP_BODY_CHUNKED, 0, true },
    { "204", "HTTP/1.1 204 No Content\r\n\r\n", false, OK, HTTP_BODY_NONE, 0, true },
    { "304 with CL", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", false, OK, HTTP_BODY_NONE, 0, true },
    { "HEAD with CL", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true, OK, HTTP_BODY_NONE, 0, true },
    { "HEAD chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, OK, HTTP_BODY_NONE, 0, true },
    { "100", "HTTP/1.1 100 Continue\r\n\r\n", false, OK, HTTP_BODY_NONE, 0, true },
    { "101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", false, OK, HTTP_BODY_NONE, 0, true },
    { "empty reason", "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", false, OK, HTTP_BODY_LENGTH, 0, true },
    { "no reason no SP", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false, OK, HTTP_BODY_LENGTH, 0, true },
    { "1.0 default close", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false, OK, HTTP_BODY_LENGTH, 1, false },
    { "1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", false, OK, HTTP_BODY_LENGTH, 0, true },
    { "connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false, OK, HTTP_BODY_LENGTH, 0, false },
    { "599", "HTTP/1.1 599 Odd\r\nContent-Length: 0\r\n\r\n", false, OK, HTTP_BODY_LENGTH, 0, true },
    { "status 99", "HTTP/1.1 099 X\r\n\r\n", false, HTTP_ERR_BAD, 0, 0, false },
    { "status 600", "HTTP/1.1 600 X\r\n\r\n", false, HTTP_ERR_BAD, 0, 0, false },
    { "status alpha", "HTTP/1.1 2x0 X\r\n\r\n", false, HTTP_ERR_BAD, 0, 0, false },
    { "status 4 digits", "HTTP/1.1 2000 X\r\n\r\n", false, HTTP_ERR_BAD, 0, 0, false },
    { "reason glued", "HTTP/1.1 200OK\r\n\r\n", false, HTTP_ERR_BAD, 0, 0, false },
    { "reason control", "HTTP/1.1 200 O\x01K\r\n\r\n", false, HTTP_ERR_BAD, 0, 0, false },
    { "HTTP/2", "HTTP/2 200 OK\r\n\r\n", false, HTTP_ERR_BAD, 0, 0, false },
    { "HTTP/1.2", "HTTP/1.2 200 OK\r\n\r\n", false, HTTP_ERR_VERSION, 0, 0, false },
    { "CL+TE", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", false, HTTP_ERR_BAD, 0, 0, false },
    { "CL+TE on 304", "HTTP/1.1 304 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", false, HTTP_ERR_BAD, 0, 0, false },
    { "double CL", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", false, HTTP_ERR_BAD, 0, 0, false },
    { "bad CL", "HTTP/1.1 200 OK\r\nContent-Length: 5,5\r\n\r\n", false, HTTP_ERR_BAD, 0, 0, false },
    { "TE in 1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, HTTP_ERR_BAD, 0, 0, false },
    { "TE gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, HTTP_ERR_NOT_IMPL, 0, 0, false },
    { "obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", false, HTTP_ERR_BAD, 0, 0, false },
    { "bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", false, HTTP_ERR_BAD, 0, 0, false },
    { "space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", false, HTTP_ERR_BAD, 0, 0, false },
};

static void test_response_table(void **state)
{
    (void)state;
    static struct http_response res;
    for (size_t i = 0; i < sizeof res_cases / sizeof res_cases[0]; i++) {
        const struct res_case *c = &res_cases[i];
        size_t len = strlen(c->raw), scanned = 0;
        memset(&res, 0xa5, sizeof res);
        int rc = http_parse_response(c->raw, len, &scanned, c->head, &res);
        if (c->expect == OK) {
            if (rc != (int)len)
                fail_msg("response \"%s\": got %d", c->name, rc);
            if (res.body != c->body || res.content_length != c->cl || res.keep_alive != c->keep_alive)
                fail_msg("response \"%s\": body %d cl %llu keep-alive %d", c->name, (int)res.body,
                         (unsigned long long)res.content_length, (int)res.keep_alive);
        } else if (rc != c->expect) {
            fail_msg("response \"%s\": got %d, expected %d", c->name, rc, c->expect);
        }
    }
    size_t scanned = 0;
    const char *raw = "HTTP/1.1 404 Not Here\r\nServer: x\r\n\r\n";
    assert_int_equal(http_parse_response(raw, strlen(raw), &scanned, false, &res), (int)strlen(raw));
    assert_int_equal(res.status, 404);
    assert_int_equal(res.minor, 1);
    assert_true(slice_is(res.reason, "Not Here"));
    assert_int_equal(res.nheaders, 1);
}

static void test_helpers(void **state)
{
    (void)state;
    struct http_slice s = { "Keep-Alive", 10 };
    assert_true(http_slice_eq(s, "keep-alive"));
    assert_false(http_slice_eq(s, "keep-aliv"));
    assert_false(http_slice_eq(s, "keep-alivee"));
    struct http_slice v = { " foo ,\tUpgrade , bar", 20 };
    assert_true(http_has_token(v, "upgrade"));
    assert_true(http_has_token(v, "foo"));
    assert_true(http_has_token(v, "bar"));
    assert_false(http_has_token(v, "up"));
    assert_false(http_has_token((struct http_slice){ "upgrades", 8 }, "upgrade"));
    assert_true(http_field_hop(http_field_id((struct http_slice){ "Transfer-Encoding", 17 })));
    assert_true(http_field_hop(http_field_id((struct http_slice){ "TE", 2 })));
    assert_true(http_field_hop(http_field_id((struct http_slice){ "proxy-connection", 16 })));
    assert_false(http_field_hop(http_field_id((struct http_slice){ "Authorization", 13 })));
    assert_false(http_field_hop(http_field_id((struct http_slice){ "Tes", 3 })));
    assert_string_equal(http_reason(502), "Bad Gateway");
    assert_string_equal(http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(http_reason(499), "Client Error");
}

/* ---- field ids ---- */

static enum http_field id_of(const char *name)
{
    return http_field_id((struct http_slice){ name, strlen(name) });
}

/* Every name the gateway knows maps to its id in any case; its '_' spelling is never
 * forwarded (cf_access_* stays Cf-Access-*); prefixes of known names, and names a character
 * longer, are other fields. */
static void test_field_ids(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        enum http_field id;
    } known[] = {
        { "Connection", HTTP_F_CONNECTION }, { "Upgrade", HTTP_F_UPGRADE },
        { "Transfer-Encoding", HTTP_F_TRANSFER_ENCODING }, { "TE", HTTP_F_HOP },
        { "Keep-Alive", HTTP_F_HOP }, { "Proxy-Connection", HTTP_F_HOP }, { "Trailer", HTTP_F_HOP },
        { "Proxy-Authenticate", HTTP_F_HOP }, { "Proxy-Authorization", HTTP_F_HOP },
        { "Host", HTTP_F_HOST }, { "Content-Length", HTTP_F_CONTENT_LENGTH },
        { "Expect", HTTP_F_EXPECT }, { "X-Forwarded-For", HTTP_F_X_FORWARDED_FOR },
        { "X-Forwarded-Proto", HTTP_F_OWNED }, { "X-Forwarded-Host", HTTP_F_OWNED },
        { "X-Request-Id", HTTP_F_OWNED }, { "HTTP2-Settings", HTTP_F_OWNED },
        { "Cf-Access-Jwt-Assertion", HTTP_F_CF_ACCESS }, { "CF-ACCESS-TOKEN", HTTP_F_CF_ACCESS },
        { "cf-access-authenticated-user-email-and-then-some-more", HTTP_F_CF_ACCESS },
        { "Cookie", HTTP_F_COOKIE }, { "Set-Cookie", HTTP_F_SET_COOKIE },
        { "Strict-Transport-Security", HTTP_F_STS }, { "Proxy", HTTP_F_NEVER },
        { "X-Original-URL", HTTP_F_SPOOFABLE }, { "X-Rewrite-URL", HTTP_F_SPOOFABLE },
        { "X-Original-URI", HTTP_F_SPOOFABLE }, { "X-HTTP-Method-Override", HTTP_F_SPOOFABLE },
        { "X-HTTP-Method", HTTP_F_SPOOFABLE }, { "X-Method-Override", HTTP_F_SPOOFABLE },
        { "X-Real-IP", HTTP_F_SPOOFABLE }, { "X-Client-IP", HTTP_F_SPOOFABLE },
        { "True-Client-IP", HTTP_F_SPOOFABLE }, { "X-Cluster-Client-IP", HTTP_F_SPOOFABLE },
        { "Client-IP", HTTP_F_SPOOFABLE }, { "X-Originating-IP", HTTP_F_SPOOFABLE },
        { "X-Remote-IP", HTTP_F_SPOOFABLE }, { "X-Remote-Addr", HTTP_F_SPOOFABLE },
        { "X-Forwarded", HTTP_F_SPOOFABLE }, { "Forwarded", HTTP_F_SPOOFABLE },
        { "X-Original-Forwarded-For", HTTP_F_SPOOFABLE }, { "X-ProxyUser-Ip", HTTP_F_SPOOFABLE },
        { "Fastly-Client-IP", HTTP_F_SPOOFABLE }, { "X-Azure-ClientIP", HTTP_F_SPOOFABLE },
        { "X-Azure-SocketIP", HTTP_F_SPOOFABLE }, { "X-Url-Scheme", HTTP_F_SPOOFABLE },
        { "X-Scheme", HTTP_F_SPOOFABLE }, { "Front-End-Https", HTTP_F_SPOOFABLE },
        { "X-Original-Host", HTTP_F_SPOOFABLE }, { "X-Host", HTTP_F_SPOOFABLE },
        { "Remote-User", HTTP_F_SPOOFABLE }, { "X-Remote-User", HTTP_F_SPOOFABLE },
        { "X-WEBAUTH-USER", HTTP_F_SPOOFABLE }, { "X-Forwarded-Port", HTTP_F_SPOOFABLE },
        { "X-Forwarded-Server", HTTP_F_SPOOFABLE }, { "X-Forwarded-Prefix", HTTP_F_SPOOFABLE },
        { "x-forwarded-preferred-username-which-is-long", HTTP_F_SPOOFABLE },
        { "CF-Connecting-IP", HTTP_F_SPOOFABLE }, { "CF-IPCountry", HTTP_F_SPOOFABLE },
        { "CF-Visitor", HTTP_F_SPOOFABLE }, { "CF-Ray", HTTP_F_SPOOFABLE },
        { "X-Auth-Request-Email", HTTP_F_SPOOFABLE },
    };
    char buf[128];
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
        const char *name = known[i].name;
        if (id_of(name) != known[i].id)
            fail_msg("%s: id %d, want %d", name, id_of(name), known[i].id);
        size_t n = strlen(name);
        for (size_t k = 0; k < n; k++) /* lowercase and uppercase spellings */
            buf[k] = (char)(k % 2 ? tolower((unsigned char)name[k]) : toupper((unsigned char)name[k]));
        buf[n] = '\0';
        if (id_of(buf) != known[i].id)
            fail_msg("%s: id %d, want %d", buf, id_of(buf), known[i].id);
        if (strchr(name, '-')) { /* every '_' spelling, one dash at a time and all of them */
            enum http_field want = known[i].id == HTTP_F_CF_ACCESS ? HTTP_F_CF_ACCESS : HTTP_F_NEVER;
            for (size_t k = 0; k < n; k++) {
                if (name[k] != '-')
                    continue;
                memcpy(buf, name, n + 1);
                buf[k] = '_';
                if (id_of(buf) != want)
                    fail_msg("%s: id %d, want %d", buf, id_of(buf), want);
            }
            for (size_t k = 0; k < n; k++)
                buf[k] = name[k] == '-' ? '_' : name[k];
            if (id_of(buf) != want)
                fail_msg("%s: id %d, want %d", buf, id_of(buf), want);
        }
        bool family = !strncasecmp(name, "x-forwarded-", 12) || !strncasecmp(name, "cf-", 3);
        if (known[i].id != HTTP_F_SPOOFABLE && !family) {
            memcpy(buf, name, n);
            buf[n] = 'x';
            buf[n + 1] = '\0';
            if (id_of(buf) != HTTP_F_OTHER)
                fail_msg("%s: id %d, want other", buf, id_of(buf));
            buf[n - 1] = '\0';
            if (n > 1 && id_of(buf) != HTTP_F_OTHER)
                fail_msg("%s: id %d, want other", buf, id_of(buf));
        }
    }
    static const char *const others[] = { "Authorization", "Accept", "X-Custom_Header",
                                          "X-Forwarded", "Cf", "c", "X_Custom", "Content-Type",
                                          "Origin", "Referer", "User-Agent", "X-Forwardedfor" };
    for (size_t i = 0; i < sizeof others / sizeof *others; i++)
        if (id_of(others[i]) != (strcmp(others[i], "X-Forwarded") ? HTTP_F_OTHER : HTTP_F_SPOOFABLE))
            fail_msg("%s: id %d", others[i], id_of(others[i]));
}

/* The parser fills each field's id; the framing fields spelled with '_' are refused. */
static void test_parser_ids(void **state)
{
    (void)state;
    static const char req[] = "GET / HTTP/1.1\r\nHost: a\r\nX_Real_IP: 1\r\nX-Real-IP: 2\r\n"
                              "Accept: */*\r\nConnection: keep-alive\r\n\r\n";
    struct http_request r;
    size_t scanned = 0;
    assert_int_equal(http_parse_request(req, sizeof req - 1, &scanned, &r), (int)sizeof req - 1);
    assert_int_equal(r.nheaders, 5);
    assert_int_equal(r.headers[0].id, HTTP_F_HOST);
    assert_int_equal(r.headers[1].id, HTTP_F_NEVER);
    assert_int_equal(r.headers[2].id, HTTP_F_SPOOFABLE);
    assert_int_equal(r.headers[3].id, HTTP_F_OTHER);
    assert_int_equal(r.headers[4].id, HTTP_F_CONNECTION);
    static const char bad[] = "GET / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\n\r\n";
    scanned = 0;
    assert_int_equal(http_parse_request(bad, sizeof bad - 1, &scanned, &r), HTTP_ERR_BAD);
}

/* ---- chunked ---- */

/* Scans `body` (then the pipelined `tail`) split at every position, and byte by byte: each way
 * must consume exactly strlen(body) bytes and finish. */
static void chunked_all_splits(const char *body, size_t blen)
{
    const char *tail = "GET / HTTP/1.1\r\n";
    size_t tlen = strlen(tail);
    char *buf = malloc(blen + tlen);
    memcpy(buf, body, blen);
    memcpy(buf + blen, tail, tlen);
    size_t total = blen + tlen;

    for (size_t k = 0; k <= total; k++) {
        struct http_chunked c = { 0 };
        bool done = false;
        ssize_t a = http_chunked_scan(&c, buf, k, &done);
        if (a < 0)
            fail_msg("split %zu of \"%s\": error in first part", k, body);
        size_t used = (size_t)a;
        if (!done) {
            assert_int_equal(used, k);
            ssize_t b = http_chunked_scan(&c, buf + k, total - k, &done);
            if (b < 0)
                fail_msg("split %zu of \"%s\": error in second part", k, body);
            used += (size_t)b;
        }
        assert_true(done);
        assert_int_equal(used, blen);
    }
    /* three-way splits (quadratic: short bodies only) */
    for (size_t k1 = 0; k1 <= blen && blen <= 256; k1++) {
        for (size_t k2 = k1; k2 <= blen; k2++) {
            struct http_chunked c = { 0 };
            bool done = false;
            size_t used = 0;
            size_t cuts[3] = { k1, k2, total };
            for (int j = 0; j < 3 && !done; j++) {
                ssize_t r = http_chunked_scan(&c, buf + used, cuts[j] - used, &done);
                assert_true(r >= 0);
                used += (size_t)r;
            }
            assert_true(done);
            assert_int_equal(used, blen);
        }
    }
    /* byte by byte */
    struct http_chunked c = { 0 };
    bool done = false;
    size_t used = 0;
    while (!done && used < total) {
        ssize_t r = http_chunked_scan(&c, buf + used, 1, &done);
        assert_true(r == 1);
        used++;
    }
    assert_true(done);
    assert_int_equal(used, blen);
    /* after done, nothing more is taken */
    ssize_t r = http_chunked_scan(&c, buf + used, total - used, &done);
    assert_int_equal(r, 0);
    assert_true(done);
    free(buf);
}

static void test_chunked_good(void **state)
{
    (void)state;
    static const char *bodies[] = {
        "0\r\n\r\n",
        "5\r\nhello\r\n0\r\n\r\n",
        "A\r\n0123456789\r\n1\r\n\n\r\n0\r\n\r\n",
        "5;ext=1\r\nhello\r\n3;a;b=\"q\\\"x;y\"\r\nabc\r\n0\r\nTrailer: x\r\nT2:\r\n\r\n",
        "000000000000005\r\nhello\r\n0;last\r\n\r\n",
        "2\r\n\r\n\r\n0\r\n\r\n",
        "f\r\n0123456789abcde\r\n0\r\nX: \x80 a\tb\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        chunked_all_splits(bodies[i], strlen(bodies[i]));

    struct http_chunked c = { 0 };
    bool done = true;
    ssize_t r = http_chunked_scan(&c, "fFfF\r\n", 6, &done);
    assert_int_equal(r, 6);
    assert_false(done);
    assert_int_equal(c.remaining, 0xffff);
}

/* A bad body must be refused whether it arrives whole or byte by byte. */
static void chunked_refused(const char *body, size_t blen)
{
    struct http_chunked c = { 0 };
    bool done = false;
    ssize_t r = http_chunked_scan(&c, body, blen, &done);
    if (r != -1)
        fail_msg("whole body accepted: \"%s\" (%zd, done %d)", body, r, (int)done);
    memset(&c, 0, sizeof c);
    done = false;
    bool refused = false;
    for (size_t i = 0; i < blen && !done; i++) {
        r = http_chunked_scan(&c, body + i, 1, &done);
        if (r < 0) {
            refused = true;
            break;
        }
    }
    if (!refused)
        fail_msg("byte by byte accepted: \"%s\"", body);
}

static void test_chunked_bad(void **state)
{
    (void)state;
    static const char *bodies[] = {
        "0x5\r\nhello\r\n0\r\n\r\n",
        "-1\r\n",
        " 5\r\nhello\r\n0\r\n\r\n",
        "5 \r\nhello\r\n0\r\n\r\n",
        "\r\n",
        "\r\n5\r\nhello\r\n0\r\n\r\n",
        "0000000000000005\r\nhello\r\n0\r\n\r\n",
        "10000000000000000\r\n",
        "ffffffffffffffffff\r\n",
        "5\r\nhelloX\r\n0\r\n\r\n",
        "5\r\nhelloX\n0\r\n\r\n",
        "5\r\nhello0\r\n\r\n",
        "5\r\nhello\n0\r\n\r\n",
        "5\nhello\r\n0\r\n\r\n",
        "5\r\rhello\r\n0\r\n\r\n",
        "5 ;x\r\nhello\r\n0\r\n\r\n",
        "5; x\r\nhello\r\n0\r\n\r\n",
        "5;\r\nhello\r\n0\r\n\r\n",
        "5;=x\r\nhello\r\n0\r\n\r\n",
        "5;a=\r\nhello\r\n0\r\n\r\n",
        "5;a = b\r\nhello\r\n0\r\n\r\n",
        "5;a=\"open\r\nhello\r\n0\r\n\r\n",
        "5;a=\"x\"y\r\nhello\r\n0\r\n\r\n",
        "5;a\x01\r\nhello\r\n0\r\n\r\n",
        "0\r\nBad Name: x\r\n\r\n",
        "0\r\nName : x\r\n\r\n",
        "0\r\nA: b\r\n c\r\n\r\n",
        "0\r\n: x\r\n\r\n",
        "0\r\nA: b\rc\r\n\r\n",
        "0\r\nA: b\x7f\r\n\r\n",
        "0\r\nA: b\n\r\n",
        "0\r\n\n",
        "0\r\n\rX",
        "+5\r\nhello\r\n0\r\n\r\n",
        "5\x00\r\nhello\r\n0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        size_t blen = strlen(bodies[i]);
        if (i == sizeof bodies / sizeof bodies[0] - 1)
            blen = 15;
        chunked_refused(bodies[i], blen);
    }

    /* a size line over 4 KiB (extensions) and trailers over 16 KiB */
    static char big[40000];
    size_t n = (size_t)sprintf(big, "1;x=");
    memset(big + n, 'a', 5000);
    n += 5000;
    memcpy(big + n, "\r\na\r\n0\r\n\r\n", 10);
    chunked_refused(big, n + 10);
    n = (size_t)sprintf(big, "0\r\nX: ");
    memset(big + n, 'a', 5000);
    n += 5000;
    memcpy(big + n, "\r\n\r\n", 4);
    chunked_refused(big, n + 4);
    n = (size_t)sprintf(big, "0\r\n");
    for (int i = 0; i < 20; i++) {
        n += (size_t)sprintf(big + n, "X%d: ", i);
        memset(big + n, 'a', 1000);
        n += 1000;
        n += (size_t)sprintf(big + n, "\r\n");
    }
    n += (size_t)sprintf(big + n, "\r\n");
    chunked_refused(big, n);
    /* just under the bounds is fine */
    n = (size_t)sprintf(big, "0\r\nX: ");
    memset(big + n, 'a', 4000);
    n += 4000;
    memcpy(big + n, "\r\n\r\n", 4);
    chunked_all_splits(big, n + 4);

    /* an error is sticky */
    struct http_chunked c = { 0 };
    bool done = false;
    assert_int_equal(http_chunked_scan(&c, "z", 1, &done), -1);
    assert_int_equal(http_chunked_scan(&c, "0\r\n\r\n", 5, &done), -1);
    assert_false(done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_table),
        cmocka_unit_test(test_request_fields),
        cmocka_unit_test(test_field_bytes),
        cmocka_unit_test(test_request_absolute_form),
        cmocka_unit_test(test_request_connection),
        cmocka_unit_test(test_request_limits),
        cmocka_unit_test(test_request_scanned),
        cmocka_unit_test(test_response_table),
        cmocka_unit_test(test_helpers),
        cmocka_unit_test(test_field_ids),
        cmocka_unit_test(test_parser_ids),
        cmocka_unit_test(test_chunked_good),
        cmocka_unit_test(test_chunked_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
