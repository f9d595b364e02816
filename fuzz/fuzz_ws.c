/* libFuzzer target: the WebSocket frame codec (src/http/ws.c) reading a stream of frames as the
 * gateway does. The first byte chooses masked (client to server) or unmasked frames, the frame
 * limit and how the payload arrives in pieces; the rest is the stream. Each head is read from
 * every prefix first (0 "more", or the same refusal, never a head longer than the bytes), then
 * whole. Invariants: a head is 2..14 bytes; written back with ws_write_head it gives the same
 * bytes (the reader takes only minimal encodings); its length respects the limit and a control
 * frame's 125; a refusal's code is 1002 or 1009; unmasking in pieces equals unmasking whole and
 * twice gives the input back; a close payload ws_close_payload_ok accepts starts with a code. */
#include "http/ws.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const uint64_t fuzz_limits[4] = { 125, 4096, 65536, UINT64_MAX };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 20)
        return 0;
    bool masked = data[0] & 1;
    uint64_t max = fuzz_limits[(data[0] >> 1) & 3];
    size_t piece = (size_t)(data[0] >> 3) + 1; /* 1..32 */
    size_t n = size - 1;
    uint8_t *in = malloc(n ? n : 1); /* exact size: ASan sees any over-read */
    if (!in)
        abort();
    memcpy(in, data + 1, n);

    size_t at = 0;
    while (at < n) {
        struct ws_frame f;
        uint16_t code = 0;
        int r = ws_parse_head(in + at, n - at, masked, max, &f, &code);
        int first = 0; /* the answer at the shortest prefix that decides */
        uint16_t first_code = 0;
        for (size_t k = 0; k <= n - at && k <= WS_HEAD_MAX; k++) {
            struct ws_frame g;
            uint16_t c = 0;
            int q = ws_parse_head(in + at, k, masked, max, &g, &c);
            if (q > 0 && (size_t)q > k)
                abort();
            if (q != 0) {
                first = q, first_code = c;
                break;
            }
        }
        if (r != first || (r < 0 && code != first_code))
            abort(); /* a longer input never changes what a prefix decided */
        if (r == 0)
            break;
        if (r < 0) {
            if (code != WS_CLOSE_PROTOCOL && code != WS_CLOSE_TOO_BIG)
                abort();
            break;
        }
        if (r < 2 || r > WS_HEAD_MAX || (size_t)r != f.head_len || f.masked != masked || f.len > max)
            abort();
        if ((f.opcode & 8) && (!f.fin || f.len > WS_CONTROL_MAX))
            abort();
        uint8_t back[WS_HEAD_MAX];
        size_t bn = ws_write_head(back, f.fin, f.opcode, f.len, f.masked ? f.mask : NULL);
        if (bn != f.head_len || memcmp(back, in + at, bn))
            abort();
        at += f.head_len;
        size_t plen = f.len < n - at ? (size_t)f.len : n - at; /* what arrived of it */
        uint8_t *whole = malloc(plen ? plen : 1), *pieces = malloc(plen ? plen : 1);
        if (!whole || !pieces)
            abort();
        memcpy(whole, in + at, plen);
        memcpy(pieces, in + at, plen);
        ws_unmask(whole, plen, f.mask, 0);
        for (size_t off = 0; off < plen; off += piece)
            ws_unmask(pieces + off, plen - off < piece ? plen - off : piece, f.mask, off);
        if (memcmp(whole, pieces, plen))
            abort();
        if (f.opcode == WS_CLOSE && plen == f.len && ws_close_payload_ok(whole, plen)) {
            if (plen == 1)
                abort();
            unsigned c = plen ? (unsigned)whole[0] << 8 | whole[1] : 1000;
            if (c < 1000 || c > 4999)
                abort();
        }
        ws_unmask(pieces, plen, f.mask, 0);
        if (memcmp(pieces, in + at, plen))
            abort();
        free(whole);
        free(pieces);
        at += plen;
    }

    if (n >= 24) { /* the handshake's key check and accept value on the first 24 bytes */
        char out[29];
        ws_accept_key((const char *)in, 24, out);
        if (strlen(out) != 28)
            abort();
        (void)ws_key_ok((const char *)in, 24);
    }
    free(in);
    return 0;
}
