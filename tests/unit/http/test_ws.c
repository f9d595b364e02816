/* Unit tests of the WebSocket frame codec (src/http/ws.c, RFC 6455 §5): every refusal of
 * ws_parse_head with its close code, "more bytes needed" at every prefix of a valid head, the
 * length forms at their edges (0, 125, 126, 65535, 65536, 2^63 - 1 and 2^63), masking at any
 * offset, heads written then read back, the handshake's accept value (§1.3's example) and the
 * close payload rule (§7.4). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "http/ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOLIMIT UINT64_MAX

/* Parses p whole and expects a refusal with `code` (also at every longer input: a refusal does
 * not depend on what follows). */
static void refused(const uint8_t *p, size_t n, bool masked, uint64_t max, uint16_t code)
{
    struct ws_frame f;
    uint16_t c = 0;
    uint8_t buf[32] = { 0 };
    assert_true(n <= 16);
    memcpy(buf, p, n);
    for (size_t k = n; k <= sizeof buf; k++) {
        c = 0;
        if (ws_parse_head(buf, k, masked, max, &f, &c) != -1)
            fail_msg("head %02x %02x… (%zu bytes of %zu) not refused", p[0], n > 1 ? p[1] : 0, k, n);
        assert_int_equal(c, code);
    }
}

/* Parses a valid head: every shorter prefix asks for more, the whole gives its length. */
static struct ws_frame parsed(const uint8_t *p, size_t n, bool masked, uint64_t max)
{
    struct ws_frame f;
    uint16_t c = 0;
    for (size_t k = 0; k < n; k++)
        if (ws_parse_head(p, k, masked, max, &f, &c) != 0)
            fail_msg("a %zu-byte prefix of a %zu-byte head did not ask for more", k, n);
    memset(&f, 0xAA, sizeof f);
    assert_int_equal(ws_parse_head(p, n, masked, max, &f, &c), (int)n);
    assert_int_equal(f.head_len, n);
    return f;
}

static void refusals(void **state)
{
    static const uint8_t m[4] = { 1, 2, 3, 4 };
    uint8_t h[16];
    /* reserved bits, each */
    refused((const uint8_t[]){ 0x82 | 0x40, 0x80 }, 2, true, NOLIMIT, 1002);
    refused((const uint8_t[]){ 0x82 | 0x20, 0x80 }, 2, true, NOLIMIT, 1002);
    refused((const uint8_t[]){ 0x82 | 0x10, 0x80 }, 2, true, NOLIMIT, 1002);
    refused((const uint8_t[]){ 0x82 | 0x40 }, 1, true, NOLIMIT, 1002); /* seen on the first byte */
    /* unknown opcodes: 3-7 and B-F */
    for (uint8_t op = 3; op <= 0xF; op++)
        if (op != WS_CLOSE && op != WS_PING && op != WS_PONG)
            refused((const uint8_t[]){ (uint8_t)(0x80 | op), 0x80 }, 2, true, NOLIMIT, 1002);
    /* control frames fragmented */
    refused((const uint8_t[]){ WS_PING, 0x80 }, 2, true, NOLIMIT, 1002);
    refused((const uint8_t[]){ WS_PONG, 0x80 }, 2, true, NOLIMIT, 1002);
    refused((const uint8_t[]){ WS_CLOSE }, 1, true, NOLIMIT, 1002);
    /* control frames over 125 bytes, in any length form */
    refused((const uint8_t[]){ 0x80 | WS_PING, 0x80 | 126, 0, 126 }, 4, true, NOLIMIT, 1002);
    refused((const uint8_t[]){ 0x80 | WS_CLOSE, 0x80 | 127 }, 2, true, NOLIMIT, 1002);
    refused((const uint8_t[]){ 0x80 | WS_PONG, 0x80 | 126 }, 2, true, NOLIMIT, 1002);
    /* masking not as expected */
    refused((const uint8_t[]){ 0x82, 0x05 }, 2, true, NOLIMIT, 1002);
    refused((const uint8_t[]){ 0x82, 0x85 }, 2, false, NOLIMIT, 1002);
    refused((const uint8_t[]){ 0x89, 0x00 }, 2, true, NOLIMIT, 1002);
    /* non-minimal lengths: 16-bit under 126, 64-bit under 65536 */
    refused((const uint8_t[]){ 0x82, 0x80 | 126, 0, 0 }, 4, true, NOLIMIT, 1002);
    refused((const uint8_t[]){ 0x82, 0x80 | 126, 0, 125 }, 4, true, NOLIMIT, 1002);
    refused((const uint8_t[]){ 0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 5 }, 10, true, NOLIMIT, 1002);
    refused((const uint8_t[]){ 0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF }, 10, true, NOLIMIT, 1002);
    /* the 64-bit length's top bit: 2^63 and all ones */
    refused((const uint8_t[]){ 0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0 }, 10, true, NOLIMIT, 1002);
    refused((const uint8_t[]){ 0x82, 0x80 | 127, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF }, 10, true,
            NOLIMIT, 1002);
    /* over the limit: 1009, in each length form, before the mask arrives */
    refused((const uint8_t[]){ 0x82, 0x80 | 11 }, 2, true, 10, 1009);
    refused((const uint8_t[]){ 0x80, 0x80 | 126, 0x01, 0x00 }, 4, true, 255, 1009);
    refused((const uint8_t[]){ 0x82, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 0 }, 10, true, 65535, 1009);
    refused((const uint8_t[]){ 0x82, 0x80 | 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF }, 10, true,
            1 << 20, 1009);
    /* a protocol error wins over the size */
    refused((const uint8_t[]){ 0x82, 0x80 | 126, 0, 5 }, 4, true, 1, 1002);
    /* the frame limit applies to control frames too */
    size_t n = ws_write_head(h, true, WS_PING, 125, m);
    refused(h, n, true, 100, 1009);
}

static void lengths(void **state)
{
    static const uint8_t m[4] = { 0xDE, 0xAD, 0xBE, 0xEF };
    static const struct { uint64_t len; size_t head; } cases[] = {
        { 0, 2 }, { 1, 2 }, { 125, 2 }, { 126, 4 }, { 127, 4 }, { 65535, 4 }, { 65536, 10 },
        { UINT32_MAX, 10 }, { (uint64_t)1 << 32, 10 }, { INT64_MAX, 10 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        for (int masked = 0; masked <= 1; masked++) {
            uint8_t h[WS_HEAD_MAX];
            memset(h, 0x55, sizeof h);
            size_t n = ws_write_head(h, i & 1, WS_BINARY, cases[i].len, masked ? m : NULL);
            assert_int_equal(n, cases[i].head + (masked ? 4 : 0));
            struct ws_frame f = parsed(h, n, masked, NOLIMIT);
            assert_int_equal(f.len, cases[i].len);
            assert_int_equal(f.fin, (bool)(i & 1));
            assert_int_equal(f.opcode, WS_BINARY);
            assert_int_equal(f.masked, (bool)masked);
            if (masked)
                assert_memory_equal(f.mask, m, 4);
            /* exactly at the limit passes, one under refuses with 1009 */
            uint16_t c = 0;
            assert_int_equal(ws_parse_head(h, n, masked, cases[i].len, &f, &c), (int)n);
            if (cases[i].len > 0) {
                assert_int_equal(ws_parse_head(h, n, masked, cases[i].len - 1, &f, &c), -1);
                assert_int_equal(c, 1009);
            }
        }
    }
    /* the wire bytes of the edges (§5.2's examples) */
    uint8_t h[WS_HEAD_MAX];
    assert_int_equal(ws_write_head(h, true, WS_TEXT, 5, NULL), 2);
    assert_memory_equal(h, ((const uint8_t[]){ 0x81, 0x05 }), 2);
    assert_int_equal(ws_write_head(h, true, WS_BINARY, 256, NULL), 4);
    assert_memory_equal(h, ((const uint8_t[]){ 0x82, 0x7E, 0x01, 0x00 }), 4);
    assert_int_equal(ws_write_head(h, true, WS_BINARY, 65536, NULL), 10);
    assert_memory_equal(h, ((const uint8_t[]){ 0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0 }), 10);
    assert_int_equal(ws_write_head(h, false, WS_CONT, 0, (const uint8_t[]){ 9, 8, 7, 6 }), 6);
    assert_memory_equal(h, ((const uint8_t[]){ 0x00, 0x80, 9, 8, 7, 6 }), 6);
}

static void control_frames(void **state)
{
    static const uint8_t m[4] = { 1, 2, 3, 4 };
    uint8_t ops[] = { WS_CLOSE, WS_PING, WS_PONG };
    for (size_t i = 0; i < sizeof ops; i++) {
        uint8_t h[WS_HEAD_MAX];
        size_t n = ws_write_head(h, true, ops[i], 125, m);
        struct ws_frame f = parsed(h, n, true, NOLIMIT);
        assert_int_equal(f.opcode, ops[i]);
        assert_int_equal(f.len, 125);
        n = ws_write_head(h, true, ops[i], 0, NULL);
        f = parsed(h, n, false, NOLIMIT);
        assert_int_equal(f.len, 0);
    }
    /* a text frame and a continuation are data frames: they may be fragmented */
    struct ws_frame f = parsed((const uint8_t[]){ 0x01, 0x80, 0, 0, 0, 0 }, 6, true, NOLIMIT);
    assert_false(f.fin);
    assert_int_equal(f.opcode, WS_TEXT);
    f = parsed((const uint8_t[]){ 0x00, 0x00 }, 2, false, NOLIMIT);
    assert_int_equal(f.opcode, WS_CONT);
}

static void unmasking(void **state)
{
    /* §5.7: "Hello" masked with 37 fa 21 3d */
    static const uint8_t mask[4] = { 0x37, 0xfa, 0x21, 0x3d };
    uint8_t hello[] = { 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
    ws_unmask(hello, sizeof hello, mask, 0);
    assert_memory_equal(hello, "Hello", 5);
    /* any split into pieces at any offsets gives the whole's result */
    uint8_t plain[300], whole[300], pieces[300];
    for (size_t i = 0; i < sizeof plain; i++)
        plain[i] = (uint8_t)(i * 7 + 3);
    memcpy(whole, plain, sizeof whole);
    ws_unmask(whole, sizeof whole, mask, 0);
    for (size_t i = 0; i < sizeof plain; i++)
        assert_int_equal(whole[i], plain[i] ^ mask[i & 3]);
    for (size_t step = 1; step <= 19; step++) {
        for (size_t start = 0; start < 9; start++) {
            memcpy(pieces, plain, sizeof pieces);
            ws_unmask(pieces, start, mask, 0);
            for (size_t off = start; off < sizeof pieces; off += step) {
                size_t k = sizeof pieces - off < step ? sizeof pieces - off : step;
                ws_unmask(pieces + off, k, mask, off);
            }
            assert_memory_equal(pieces, whole, sizeof whole);
        }
    }
    /* an offset past 2^32 keeps its place in the mask */
    uint8_t b[3] = { 0, 0, 0 };
    ws_unmask(b, 3, mask, ((uint64_t)1 << 32) + 1);
    assert_memory_equal(b, ((const uint8_t[]){ 0xfa, 0x21, 0x3d }), 3);
    ws_unmask(b, 0, mask, 0); /* nothing to do */
    /* unmasking twice gives the bytes back */
    ws_unmask(whole, sizeof whole, mask, 0);
    assert_memory_equal(whole, plain, sizeof plain);
}

static void accept_key(void **state)
{
    char out[29];
    memset(out, 'Z', sizeof out);
    ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out); /* §1.3 */
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_true(ws_key_ok("dGhlIHNhbXBsZSBub25jZQ==", 24));
    assert_true(ws_key_ok("AAAAAAAAAAAAAAAAAAAAAA==", 24));
    assert_true(ws_key_ok("+/+/+/+/+/+/+/+/+/+/+w==", 24));
    assert_false(ws_key_ok("dGhlIHNhbXBsZSBub25jZQ=", 23));
    assert_false(ws_key_ok("dGhlIHNhbXBsZSBub25jZQ===", 25));
    assert_false(ws_key_ok("dGhlIHNhbXBsZSBub25jZQ", 22));
    assert_false(ws_key_ok("dGhlIHNhbXBsZSBub25jZ===", 24));
    assert_false(ws_key_ok("dGhlIHNhbXBsZSBub25j-Q==", 24)); /* base64url is not base64 */
    assert_false(ws_key_ok("dGhlIHNhbXBsZSBub25j Q==", 24));
    assert_false(ws_key_ok("dGhlIHNhbXBsZSBub25jZWFi", 24)); /* 18 bytes */
    assert_false(ws_key_ok("", 0));
    assert_false(ws_key_ok(NULL, 24));
}

static void close_payloads(void **state)
{
    assert_true(ws_close_payload_ok(NULL, 0));
    assert_false(ws_close_payload_ok((const uint8_t *)"\x03", 1));
    static const unsigned ok[] = { 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999 };
    static const unsigned bad[] = { 0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535 };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        uint8_t p[2] = { (uint8_t)(ok[i] >> 8), (uint8_t)ok[i] };
        if (!ws_close_payload_ok(p, 2))
            fail_msg("close code %u refused", ok[i]);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint8_t p[2] = { (uint8_t)(bad[i] >> 8), (uint8_t)bad[i] };
        if (ws_close_payload_ok(p, 2))
            fail_msg("close code %u accepted", bad[i]);
    }
    assert_true(ws_close_payload_ok((const uint8_t *)"\x03\xe8" "bye", 5));
    assert_true(ws_close_payload_ok((const uint8_t *)"\x03\xe8" "\xc3\xa9t\xc3\xa9", 7));
    assert_false(ws_close_payload_ok((const uint8_t *)"\x03\xe8" "\xc3", 3));         /* cut */
    assert_false(ws_close_payload_ok((const uint8_t *)"\x03\xe8" "\xed\xa0\x80", 5)); /* surrogate */
    assert_false(ws_close_payload_ok((const uint8_t *)"\x03\xe8" "\xc0\xaf", 4));     /* overlong */
    assert_false(ws_close_payload_ok((const uint8_t *)"\x03\xe8" "\xff", 3));
    uint8_t longp[126];
    memset(longp, 'a', sizeof longp);
    longp[0] = 0x03, longp[1] = 0xe8;
    assert_true(ws_close_payload_ok(longp, 125));
    assert_false(ws_close_payload_ok(longp, 126));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refusals),     cmocka_unit_test(lengths),    cmocka_unit_test(control_frames),
        cmocka_unit_test(unmasking),    cmocka_unit_test(accept_key), cmocka_unit_test(close_payloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
