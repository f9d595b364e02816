/* The WebSocket frame (RFC 6455 §5): reading a frame head, unmasking a payload, writing a head,
 * the handshake's Sec-WebSocket-Accept (§4.2.2) and the check of a close frame's payload
 * (§5.5.1, §7.4). No state and no allocation: the caller keeps where it is in a payload. */
#ifndef LATCH_WS_H
#define LATCH_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ws_opcode { WS_CONT = 0x0, WS_TEXT = 0x1, WS_BINARY = 0x2, WS_CLOSE = 0x8, WS_PING = 0x9, WS_PONG = 0xA };

/* Close codes (RFC 6455 §7.4.1) the gateway sends. */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_GOING_AWAY 1001
#define WS_CLOSE_PROTOCOL 1002
#define WS_CLOSE_UNSUPPORTED 1003
#define WS_CLOSE_POLICY 1008
#define WS_CLOSE_TOO_BIG 1009
#define WS_CLOSE_INTERNAL 1011

/* A control frame's payload is at most this long (§5.5). */
#define WS_CONTROL_MAX 125
/* The longest frame head: 2 bytes, a 64-bit length, a 4-byte mask. */
#define WS_HEAD_MAX 14

struct ws_frame {
    bool fin;
    uint8_t opcode;
    bool masked;
    uint8_t mask[4];
    uint64_t len;    /* payload length */
    size_t head_len; /* 2..14 */
};

/* A frame head at p[0..n): >0 its length (f filled), 0 more bytes needed, -1 a protocol
 * violation (*close_code: 1002 protocol error, 1009 too big; reserved bits, unknown opcode,
 * a control frame fragmented or > 125 bytes, masking not as `expect_masked` says, a 64-bit
 * length with its top bit set, a non-minimal length encoding, len > max_len). A violation is
 * reported as soon as the bytes that show it are there, before the rest of the head. */
int ws_parse_head(const uint8_t *p, size_t n, bool expect_masked, uint64_t max_len, struct ws_frame *f,
                  uint16_t *close_code);

/* XORs p[0..n) with the mask, `offset` bytes into the payload (§5.3): a payload unmasked in
 * pieces gives the same bytes as unmasked whole. */
void ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset);

/* Writes a frame head (2..14 bytes) into out and returns its length; mask NULL: unmasked
 * (server to client), else the mask bit set and the 4 bytes after the length. */
size_t ws_write_head(uint8_t out[14], bool fin, uint8_t opcode, uint64_t len, const uint8_t *mask);

/* The GUID a Sec-WebSocket-Accept appends to the key (§1.3). */
#define WS_ACCEPT_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key (base64(SHA-1(key + GUID)), §4.2.2 step 5.4):
 * 28 characters, out NUL-terminated. */
void ws_accept_key(const char *key, size_t key_len, char out[29]);

/* A fresh Sec-WebSocket-Key (§4.1 item 7: base64 of 16 random bytes): 24 characters, out
 * NUL-terminated. -1: no randomness. */
int ws_new_key(char out[25]);

/* Whether a Sec-WebSocket-Key is valid (§4.1 item 7): base64 of exactly 16 bytes, 24
 * characters with "==" at the end and nothing around them. */
bool ws_key_ok(const char *key, size_t key_len);

/* Whether a close frame's payload is valid (empty, or a 2-byte code RFC 6455 §7.4 allows to be
 * sent — 1000-1003, 1007-1014, 3000-4999 — then UTF-8). */
bool ws_close_payload_ok(const uint8_t *p, size_t n);

#endif
