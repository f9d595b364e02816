/* libFuzzer target: the response head parser (first byte: 1 = answer to HEAD), then the
 * chunked scanner on the rest. Aborts when slices leave the head, when incremental and
 * one-shot answers differ, or when the framing breaks RFC 9112 §6.3. */
#include "http/http.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void fuzz_slice_in(struct http_slice s, const char *base, size_t len)
{
    if (s.n == 0)
        return;
    if (!s.p || s.p < base || s.p + s.n > base + len || s.n > len)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct http_response res, res2;
    if (size == 0)
        return 0;
    bool head = data[0] & 1;
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    size_t scanned = 0;
    int whole = http_parse_response(buf, len, &scanned, head, &res);
    if (whole > (int)len || whole < HTTP_ERR_NOT_IMPL)
        abort();
    if (whole > 0) {
        if (res.status < 100 || res.status > 599 || res.nheaders > HTTP_MAX_HEADERS)
            abort();
        fuzz_slice_in(res.reason, buf, (size_t)whole);
        for (size_t i = 0; i < res.nheaders; i++) {
            fuzz_slice_in(res.headers[i].name, buf, (size_t)whole);
            fuzz_slice_in(res.headers[i].value, buf, (size_t)whole);
        }
        bool nobody = head || res.status < 200 || res.status == 204 || res.status == 304;
        if (nobody != (res.body == HTTP_BODY_NONE))
            abort();
        if (res.body == HTTP_BODY_CLOSE && res.keep_alive)
            abort();
        bool cl = http_find_header(res.headers, res.nheaders, "content-length") != NULL;
        bool te = http_find_header(res.headers, res.nheaders, "transfer-encoding") != NULL;
        if (cl && te)
            abort();
    }

    size_t split = len / 2;
    scanned = 0;
    int first = http_parse_response(buf, split, &scanned, head, &res2);
    if ((first < 0 && whole >= 0) || (first > 0 && first != whole))
        abort();
    if (first == HTTP_INCOMPLETE && http_parse_response(buf, len, &scanned, head, &res2) != whole)
        abort();

    if (whole > 0 && res.body == HTTP_BODY_CHUNKED) {
        struct http_chunked c = { 0 }, c2 = { 0 };
        bool done = false, done2 = false;
        const char *body = buf + whole;
        size_t n = len - (size_t)whole;
        ssize_t r = http_chunked_scan(&c, body, n, &done);
        ssize_t r2 = 0;
        for (size_t i = 0; i < n && !done2; i++) {
            ssize_t x = http_chunked_scan(&c2, body + i, 1, &done2);
            if (x < 0) {
                r2 = -1;
                break;
            }
            r2 += x;
        }
        if (r != r2 || done != done2)
            abort();
    }
    return 0;
}
