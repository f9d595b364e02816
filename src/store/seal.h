/* Values kept in Redis are sealed (SPEC.md §10): XChaCha20-Poly1305 under the 32-byte key of
 * store_key_file, bound to the value's key name and to an expiry. A Redis server, or anyone who
 * can write to it, can then neither read a private key, a grant or a PIN hash, nor plant one,
 * move one under another name, or replay one past its time. */
#ifndef LATCH_STORE_SEAL_H
#define LATCH_STORE_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define STORE_KEY_BYTES 32

/* Reads a store_key_file: base64 of 32 bytes (surrounding whitespace allowed). 0 or -1 with a
 * message in why[]. */
int store_key_load(const char *path, unsigned char key[STORE_KEY_BYTES], char *why, size_t whycap);

/* Reads a one-line secret file (a Redis password): *out malloc'd, surrounding whitespace cut.
 * 0 or -1 with a message in why[]. */
int store_secret_load(const char *path, char **out, char *why, size_t whycap);

/* malloc'd sealed bytes (*out_len set); expires_at is a wall-clock second (0: never). */
unsigned char *store_seal(const unsigned char key[STORE_KEY_BYTES], const char *name, const void *p,
                          size_t n, int64_t expires_at, size_t *out_len);
/* The plain bytes (malloc'd, NUL-terminated), or NULL when the value is not ours, was made for
 * another name, or has expired. */
char *store_unseal(const unsigned char key[STORE_KEY_BYTES], const char *name, const void *p, size_t n,
                   size_t *out_len);

#endif
