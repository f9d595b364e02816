/* Sealing of values kept in Redis (seal.h). Layout: nonce (24) | AEAD(expires (8, big endian)
 * | value), with the key name as associated data. */
#include "store/seal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SEAL_NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define SEAL_TAG crypto_aead_xchacha20poly1305_ietf_ABYTES

/* The file's first 255 bytes, trimmed, into buf; the start of the text, or NULL. */
static char *seal__read_trimmed(const char *path, char buf[256], char *why, size_t whycap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whycap, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    ssize_t n = read(fd, buf, 255);
    close(fd);
    if (n < 0)
        n = 0;
    buf[n] = '\0';
    char *p = buf;
    while (*p && isspace((unsigned char)*p))
        p++;
    size_t len = strlen(p);
    while (len && isspace((unsigned char)p[len - 1]))
        p[--len] = '\0';
    return p;
}

int store_secret_load(const char *path, char **out, char *why, size_t whycap)
{
    char buf[256];
    char *p = seal__read_trimmed(path, buf, why, whycap);
    if (!p)
        return -1;
    if (!*p || strpbrk(p, "\r\n")) {
        snprintf(why, whycap, "%s must hold the secret on one line", path);
        sodium_memzero(buf, sizeof buf);
        return -1;
    }
    *out = strdup(p);
    sodium_memzero(buf, sizeof buf);
    return *out ? 0 : -1;
}

int store_key_load(const char *path, unsigned char key[STORE_KEY_BYTES], char *why, size_t whycap)
{
    char buf[256];
    char *p = seal__read_trimmed(path, buf, why, whycap);
    if (!p)
        return -1;
    size_t len = strlen(p);
    size_t bin = 0;
    unsigned char tmp[64];
    int rc = sodium_base642bin(tmp, sizeof tmp, p, len, NULL, &bin, NULL, sodium_base64_VARIANT_ORIGINAL);
    if (rc != 0 || bin != STORE_KEY_BYTES) {
        snprintf(why, whycap, "%s must hold 32 random bytes in base64 (head -c32 /dev/urandom | base64)", path);
        sodium_memzero(tmp, sizeof tmp);
        sodium_memzero(buf, sizeof buf);
        return -1;
    }
    memcpy(key, tmp, STORE_KEY_BYTES);
    sodium_memzero(tmp, sizeof tmp);
    sodium_memzero(buf, sizeof buf);
    return 0;
}

unsigned char *store_seal(const unsigned char key[STORE_KEY_BYTES], const char *name, const void *p,
                          size_t n, int64_t expires_at, size_t *out_len)
{
    size_t plen = 8 + n;
    unsigned char *plain = malloc(plen);
    unsigned char *out = malloc(SEAL_NONCE + plen + SEAL_TAG);
    if (!plain || !out) {
        free(plain);
        free(out);
        return NULL;
    }
    for (int i = 0; i < 8; i++)
        plain[i] = (unsigned char)((uint64_t)expires_at >> (56 - 8 * i));
    memcpy(plain + 8, p, n);
    randombytes_buf(out, SEAL_NONCE);
    unsigned long long clen;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + SEAL_NONCE, &clen, plain, plen,
                                               (const unsigned char *)name, strlen(name), NULL, out, key);
    sodium_memzero(plain, plen);
    free(plain);
    *out_len = SEAL_NONCE + (size_t)clen;
    return out;
}

char *store_unseal(const unsigned char key[STORE_KEY_BYTES], const char *name, const void *p, size_t n,
                   size_t *out_len)
{
    const unsigned char *in = p;
    if (n < SEAL_NONCE + SEAL_TAG + 8)
        return NULL;
    size_t clen = n - SEAL_NONCE;
    unsigned char *plain = malloc(clen + 1);
    if (!plain)
        return NULL;
    unsigned long long plen;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &plen, NULL, in + SEAL_NONCE, clen,
                                                   (const unsigned char *)name, strlen(name), in, key) != 0) {
        free(plain);
        return NULL;
    }
    uint64_t exp = 0;
    for (int i = 0; i < 8; i++)
        exp = exp << 8 | plain[i];
    if (exp && (int64_t)exp <= (int64_t)time(NULL)) {
        sodium_memzero(plain, (size_t)plen);
        free(plain);
        return NULL;
    }
    *out_len = (size_t)plen - 8;
    memmove(plain, plain + 8, *out_len);
    plain[*out_len] = '\0';
    return (char *)plain;
}
