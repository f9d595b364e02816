/* libFuzzer target: jwt_decode and token_check (src/token/jwt.c) with a fixed key set made once
 * by keys_load in a temporary state_dir. The first byte picks the mode:
 *   'P'  the rest is a payload, signed with our key under our header: reaches the claim parser;
 *   'H'  the rest is a header, over a fixed payload, signed with our key;
 *   else the whole input is a token.
 * Invariants: over 8 KiB is always TOO_LARGE; a refusal leaves no claims; OK means three
 * non-empty parts, alg RS256 in the header, a kid of ours, and (when an email is claimed) one
 * well-formed address; a validly signed payload is never refused for its key, header or
 * signature; token_check never crashes on a decoded token. */
#include "token/jwt.h"
#include "token/keys.h"

#include <openssl/evp.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_ISS "http://auth.fuzz.test"
#define FUZZ_AUD "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static struct keyset *g_ks;
static char g_dir[64];
static time_t g_now;
static char g_header[128];

static void fuzz_cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_jwt: cannot remove %s\n", g_dir);
    keyset_unref(g_ks);
}

static void fuzz_init(void)
{
    if (g_ks)
        return;
    snprintf(g_dir, sizeof g_dir, "/tmp/latch-fuzz-jwt-XXXXXX");
    char *err = NULL;
    if (!mkdtemp(g_dir) || !(g_ks = keys_load(g_dir, 0, 3600, false, &err))) {
        fprintf(stderr, "fuzz_jwt: cannot make a key set: %s\n", err ? err : "mkdtemp");
        abort();
    }
    g_now = 1800000000;
    snprintf(g_header, sizeof g_header, "{\"alg\":\"RS256\",\"kid\":\"%s\",\"typ\":\"JWT\"}",
             g_ks->keys[0].kid);
    atexit(fuzz_cleanup);
}

static char *fuzz_b64u(const uint8_t *p, size_t n)
{
    size_t len = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *s = malloc(len);
    if (!s)
        abort();
    sodium_bin2base64(s, len, p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return s;
}

/* header.payload.signature with our key; the caller frees. */
static char *fuzz_sign(const uint8_t *h, size_t hn, const uint8_t *p, size_t pn)
{
    char *h64 = fuzz_b64u(h, hn), *p64 = fuzz_b64u(p, pn);
    size_t n = strlen(h64) + 1 + strlen(p64);
    char *out = malloc(n + 400);
    if (!out)
        abort();
    snprintf(out, n + 1, "%s.%s", h64, p64);
    unsigned char sig[512];
    size_t siglen = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, g_ks->keys[0].pkey) != 1 ||
        EVP_DigestSign(md, sig, &siglen, (const unsigned char *)out, n) != 1)
        abort();
    EVP_MD_CTX_free(md);
    char *s64 = fuzz_b64u(sig, siglen);
    out[n] = '.';
    memcpy(out + n + 1, s64, strlen(s64) + 1);
    free(h64);
    free(p64);
    free(s64);
    return out;
}

static enum token_status fuzz_decode(const char *tok, size_t len)
{
    struct token t;
    enum token_status st = jwt_decode(g_ks, tok, len, g_now, &t);
    if (len > JWT_MAX_LEN && st != TOKEN_TOO_LARGE)
        abort();
    if (st != TOKEN_OK) {
        if (t.payload || t.strs || t.aud || t.groups || t.amr)
            abort();
        return st;
    }
    /* three non-empty parts */
    const char *d1 = memchr(tok, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(tok + len - d1 - 1)) : NULL;
    if (!d1 || !d2 || d1 == tok || d2 == d1 + 1 || d2 + 1 == tok + len ||
        memchr(d2 + 1, '.', (size_t)(tok + len - d2 - 1)))
        abort();
    if (!t.payload || !keyset_find(g_ks, t.kid, strlen(t.kid), g_now))
        abort();
    if (t.email && !token_email_ok(t.email))
        abort();
    for (size_t i = 0; i < t.naud; i++)
        if (!t.aud[i])
            abort();
    for (size_t i = 0; i < t.ngroups; i++)
        if (!t.groups[i])
            abort();
    enum token_status c = token_check(&t, FUZZ_ISS, "app", FUZZ_AUD, g_now);
    if (c == TOKEN_OK && (!t.iss || strcmp(t.iss, FUZZ_ISS) || !t.type || strcmp(t.type, "app")))
        abort();
    (void)token_check(&t, FUZZ_ISS, "org", NULL, g_now);
    token_free(&t);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    if (size > 3 * JWT_MAX_LEN)
        return 0;
    if (size >= 1 && data[0] == 'P') {
        char *tok = fuzz_sign((const uint8_t *)g_header, strlen(g_header), data + 1, size - 1);
        enum token_status st = fuzz_decode(tok, strlen(tok));
        if (st == TOKEN_BAD_HEADER || st == TOKEN_UNKNOWN_KEY || st == TOKEN_BAD_SIGNATURE)
            abort();
        free(tok);
    } else if (size >= 1 && data[0] == 'H') {
        static const char payload[] =
            "{\"aud\":[\"" FUZZ_AUD "\"],\"email\":\"a@b.c\",\"iss\":\"" FUZZ_ISS "\","
            "\"iat\":1800000000,\"exp\":1800000600,\"type\":\"app\"}";
        char *tok = fuzz_sign(data + 1, size - 1, (const uint8_t *)payload, sizeof payload - 1);
        enum token_status st = fuzz_decode(tok, strlen(tok));
        /* accepted only with our algorithm named in the header */
        if (st == TOKEN_OK && !memmem(data + 1, size - 1, "RS256", 5))
            abort();
        free(tok);
    } else {
        char *copy = malloc(size ? size : 1); /* exact size: ASan sees any over-read */
        if (!copy)
            abort();
        memcpy(copy, data, size);
        fuzz_decode(copy, size);
        free(copy);
    }
    return 0;
}
