/* The WebSocket frame codec (RFC 6455 §5, §7.4): see ws.h. Strict by design: every rule of
 * §5.2 that a receiver can check on a head is checked, so the tunnel above sees only frames it
 * can carry. */
#include "http/ws.h"

#include "core/strbuf.h"

#include <string.h>

static int ws_refuse(uint16_t *close_code, uint16_t code)
{
    *close_code = code;
    return -1;
}

static bool ws_opcode_known(uint8_t op)
{
    return op == WS_CONT || op == WS_TEXT || op == WS_BINARY || op == WS_CLOSE || op == WS_PING || op == WS_PONG;
}

int ws_parse_head(const uint8_t *p, size_t n, bool expect_masked, uint64_t max_len, struct ws_frame *f,
                  uint16_t *close_code)
{
    if (n < 1)
        return 0;
    uint8_t op = p[0] & 0x0F;
    bool fin = p[0] & 0x80, control = op & 0x08;
    if ((p[0] & 0x70) || !ws_opcode_known(op)) /* §5.2: RSV1-3 need an extension; none is agreed */
        return ws_refuse(close_code, WS_CLOSE_PROTOCOL);
    if (control && !fin) /* §5.5: control frames are never fragmented */
        return ws_refuse(close_code, WS_CLOSE_PROTOCOL);
    if (n < 2)
        return 0;
    bool masked = p[1] & 0x80;
    uint8_t len7 = p[1] & 0x7F;
    if (masked != expect_masked) /* §5.1: a client masks every frame, a server none */
        return ws_refuse(close_code, WS_CLOSE_PROTOCOL);
    if (control && len7 > WS_CONTROL_MAX)
        return ws_refuse(close_code, WS_CLOSE_PROTOCOL);
    size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    if (n < 2 + ext)
        return 0;
    uint64_t len = len7;
    if (ext) {
        len = 0;
        for (size_t i = 0; i < ext; i++)
            len = len << 8 | p[2 + i];
        /* §5.2: the minimal number of bytes must be used; the 64-bit form's top bit is 0 */
        if ((ext == 2 && len < 126) || (ext == 8 && (len >> 63 || len <= 0xFFFF)))
            return ws_refuse(close_code, WS_CLOSE_PROTOCOL);
    }
    if (len > max_len)
        return ws_refuse(close_code, WS_CLOSE_TOO_BIG);
    size_t head_len = 2 + ext + (masked ? 4 : 0);
    if (n < head_len)
        return 0;
    f->fin = fin;
    f->opcode = op;
    f->masked = masked;
    memset(f->mask, 0, sizeof f->mask);
    if (masked)
        memcpy(f->mask, p + 2 + ext, 4);
    f->len = len;
    f->head_len = head_len;
    return (int)head_len;
}

void ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset)
{
    uint8_t k[8];
    for (size_t i = 0; i < sizeof k; i++)
        k[i] = mask[(offset + i) & 3];
    uint64_t k64;
    memcpy(&k64, k, sizeof k64);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) { /* whole words: the key repeats every 4 bytes, so every 8 */
        uint64_t w;
        memcpy(&w, p + i, sizeof w);
        w ^= k64;
        memcpy(p + i, &w, sizeof w);
    }
    for (; i < n; i++)
        p[i] ^= k[i & 7];
}

size_t ws_write_head(uint8_t out[14], bool fin, uint8_t opcode, uint64_t len, const uint8_t *mask)
{
    size_t n = 2;
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
    if (len < 126) {
        out[1] = (uint8_t)len;
    } else if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        n = 4;
    } else {
        out[1] = 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    if (mask) {
        out[1] |= 0x80;
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

static bool ws_b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

bool ws_key_ok(const char *key, size_t key_len)
{
    if (!key || key_len != 24 || key[22] != '=' || key[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (!ws_b64_char(key[i]))
            return false;
    return true;
}

static bool ws_close_code_ok(unsigned code)
{
    /* §7.4.1-2: 1004-1006 and 1015 are never sent; 1012-1014 were registered since (IANA) */
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

bool ws_close_payload_ok(const uint8_t *p, size_t n)
{
    if (n == 0)
        return true;
    if (n < 2 || n > WS_CONTROL_MAX || !ws_close_code_ok((unsigned)p[0] << 8 | p[1]))
        return false;
    for (size_t i = 2; i < n;) { /* §5.5.1: the reason is UTF-8 */
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_len(p + i, n - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}
