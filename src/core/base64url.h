/* base64url without padding (RFC 4648 §5, as JWTs, JWKs and PKCE write it: RFC 7515 §2),
 * strict: one spelling per value. A table decoder: a token's ~900 characters are decoded on
 * every cache miss, where libsodium's constant-time decoder cost 70 instructions a byte. The
 * values decoded here are public (token parts, keys, challenges), so time may depend on them. */
#ifndef LATCH_BASE64URL_H
#define LATCH_BASE64URL_H

#include <stddef.h>

/* Characters needed for n bytes (no NUL). */
#define B64URL_ENCODED_LEN(n) (((n) / 3) * 4 + ((n) % 3 ? (n) % 3 + 1 : 0))
/* Bytes that n characters decode to at most. */
#define B64URL_DECODED_MAX(n) ((n) / 4 * 3 + 2)

/* Encodes n bytes into out (B64URL_ENCODED_LEN(n) + 1 bytes, NUL-terminated); returns the length. */
size_t b64url_encode(const unsigned char *p, size_t n, char *out);
/* The same in a malloc'd string; NULL when out of memory. */
char *b64url_encode_dup(const unsigned char *p, size_t n);
/* Decodes n characters into out (cap bytes). Refuses (-1): a character outside A-Z a-z 0-9
 * '-' '_' (padding, '+', '/', spaces included), a length that is 1 mod 4, trailing bits that
 * are not zero, or more than cap bytes. 0 with *len set otherwise. */
int b64url_decode(const char *s, size_t n, unsigned char *out, size_t cap, size_t *len);

#endif
