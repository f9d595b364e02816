/* Sec-WebSocket-Accept (RFC 6455 §4.2.2): see ws.h. Apart from the frame codec (ws.c) because it
 * needs libcrypto's SHA-1: a program that reads and writes frames without computing it (latch,
 * which loads OpenSSL only when a tunnel needs it) does not link libcrypto for the codec. */
#include "http/ws.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

void ws_accept_key(const char *key, size_t key_len, char out[29])
{
    static const char guid[] = WS_ACCEPT_GUID;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c || !EVP_DigestInit_ex(c, EVP_sha1(), NULL) || !EVP_DigestUpdate(c, key, key_len) ||
        !EVP_DigestUpdate(c, guid, sizeof guid - 1) || !EVP_DigestFinal_ex(c, md, &md_len) || md_len != 20) {
        memset(out, 0, 29); /* an empty accept value matches no client's */
        EVP_MD_CTX_free(c);
        return;
    }
    EVP_MD_CTX_free(c);
    EVP_EncodeBlock((unsigned char *)out, md, 20); /* 28 characters and a NUL */
}

int ws_new_key(char out[25])
{
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return -1;
    EVP_EncodeBlock((unsigned char *)out, raw, sizeof raw); /* 24 characters and a NUL */
    return 0;
}
