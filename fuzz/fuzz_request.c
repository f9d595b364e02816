/* libFuzzer target: the request head parser, then the chunked scanner on what follows. Aborts
 * when an invariant breaks: slices outside the head, incremental answers differing from the
 * one-shot answer, or the chunked scanner disagreeing with itself across splits. */
#include "http/http.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void fuzz_slice_in(struct http_slice s, const uint8_t *base, size_t len)
{
    const char *b = (const char *)base;
    if (s.n == 0)
        return;
    if (!s.p || s.p < b || s.p + s.n > b + len || s.n > len)
        abort();
}

static void fuzz_check_request(const struct http_request *req, const uint8_t *data, int head)
{
    size_t h = (size_t)head;
    fuzz_slice_in(req->method, data, h);
    fuzz_slice_in(req->target, data, h);
    if (!(req->path.n == 1 && req->path.p[0] == '/'))
        fuzz_slice_in(req->path, data, h);
    if (req->path.n == 0)
        abort();
    fuzz_slice_in(req->query, data, h);
    fuzz_slice_in(req->authority, data, h);
    fuzz_slice_in(req->host, data, h);
    if (req->method.n == 0 || req->target.n == 0 || (req->minor != 0 && req->minor != 1))
        abort();
    if (req->nheaders > HTTP_MAX_HEADERS)
        abort();
    for (size_t i = 0; i < req->nheaders; i++) {
        fuzz_slice_in(req->headers[i].name, data, h);
        fuzz_slice_in(req->headers[i].value, data, h);
        if (req->headers[i].name.n == 0)
            abort();
        /* a field's id ignores case; a '_' spelling of a known name is never forwarded */
        struct http_slice nm = req->headers[i].name;
        char up[HTTP_MAX_HEADER_BYTES];
        for (size_t k = 0; k < nm.n; k++)
            up[k] = (char)(nm.p[k] >= 'a' && nm.p[k] <= 'z' ? nm.p[k] - 32 : nm.p[k]);
        uint8_t id = req->headers[i].id;
        if (id != http_field_id(nm) || id != http_field_id((struct http_slice){ up, nm.n }))
            abort();
        if (memchr(nm.p, '_', nm.n) && id != HTTP_F_OTHER && id != HTTP_F_NEVER &&
            id != HTTP_F_CF_ACCESS)
            abort();
        for (size_t k = 0; k < req->headers[i].value.n; k++) {
            unsigned char c = (unsigned char)req->headers[i].value.p[k];
            if (c == '\r' || c == '\n' || c == 0)
                abort();
        }
    }
    /* never both framings; CL and TE never coexist */
    bool cl = http_find_header(req->headers, req->nheaders, "content-length") != NULL;
    bool te = http_find_header(req->headers, req->nheaders, "transfer-encoding") != NULL;
    if (cl && te)
        abort();
    if (req->body == HTTP_BODY_CHUNKED && !te)
        abort();
    if (req->body == HTTP_BODY_LENGTH && !cl)
        abort();
    if (req->body == HTTP_BODY_CLOSE)
        abort();
    if (req->minor == 1 && req->host.n == 0)
        abort();
}

/* The chunked body at p[0..n): whole, byte by byte and split in two must agree. */
static void fuzz_chunked(const uint8_t *p, size_t n, size_t split)
{
    struct http_chunked c1 = { 0 }, c2 = { 0 }, c3 = { 0 };
    bool d1 = false, d2 = false, d3 = false;
    ssize_t r1 = http_chunked_scan(&c1, (const char *)p, n, &d1);
    if (r1 > (ssize_t)n || r1 < -1 || (r1 >= 0 && !d1 && (size_t)r1 != n))
        abort();

    ssize_t r2 = 0;
    for (size_t i = 0; i < n && !d2; i++) {
        ssize_t r = http_chunked_scan(&c2, (const char *)p + i, 1, &d2);
        if (r < 0) {
            r2 = -1;
            break;
        }
        r2 += r;
    }
    if ((r1 < 0) != (r2 < 0) || (r1 >= 0 && (r1 != r2 || d1 != d2)))
        abort();

    if (split > n)
        split = n;
    ssize_t a = http_chunked_scan(&c3, (const char *)p, split, &d3);
    ssize_t r3 = a;
    if (a >= 0 && !d3) {
        ssize_t b = http_chunked_scan(&c3, (const char *)p + split, n - split, &d3);
        r3 = b < 0 ? -1 : a + b;
    }
    if ((r1 < 0) != (r3 < 0) || (r1 >= 0 && (r1 != r3 || d1 != d3)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct http_request req, req2;
    size_t scanned = 0;
    int whole = http_parse_request((const char *)data, size, &scanned, &req);
    if (whole > (int)size || whole < HTTP_ERR_NOT_IMPL)
        abort();
    if (whole > 0)
        fuzz_check_request(&req, data, whole);

    /* the same bytes arriving in two reads give the same answer */
    size_t split = size ? data[0] % (size + 1) : 0;
    if (size > 64)
        split = (size_t)data[0] * size / 256;
    scanned = 0;
    int first = http_parse_request((const char *)data, split, &scanned, &req2);
    if (first < 0 && whole >= 0)
        abort();
    if (first > 0 && first != whole)
        abort();
    if (first == HTTP_INCOMPLETE) {
        int second = http_parse_request((const char *)data, size, &scanned, &req2);
        if (second != whole)
            abort();
        if (whole > 0 && (req2.nheaders != req.nheaders || req2.body != req.body ||
                          req2.content_length != req.content_length))
            abort();
    }

    if (whole > 0 && req.body == HTTP_BODY_CHUNKED)
        fuzz_chunked(data + whole, size - (size_t)whole, (size - (size_t)whole) / 2);
    return 0;
}
