/* Unit tests of strict JWT verification (src/token/jwt.c) with a real key set made by keys_load
 * in a temporary state_dir: our own tokens round-trip, and every hostile form of SPEC.md §3.4
 * (alg none in any case, HMAC keyed with our public key, unknown or foreign keys, header-named
 * keys, crit, oversize, malformed base64url/JSON, duplicate names, bad claim types) is refused
 * with the status that says why; then the claim checks of token_check at their boundaries. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "token/jwt.h"
#include "token/keys.h"

#include "../unit.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ISS "http://auth.example.test"
#define AUD "4a7c0c3c0c5f0e0d9e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d"

static char g_dir[64];
static struct keyset *g_ks;
static EVP_PKEY *g_foreign;
static time_t g_now;

static int group_setup(void **state)
{
    if (unit_tmpdir(g_dir, "jwt") != 0)
        return -1;
    char *err = NULL;
    g_ks = keys_load(g_dir, 0, 3600, false, &err);
    if (!g_ks) {
        fprintf(stderr, "keys_load: %s\n", err ? err : "?");
        return -1;
    }
    g_foreign = EVP_RSA_gen(2048);
    g_now = time(NULL);
    return g_foreign ? 0 : -1;
}

static int group_teardown(void **state)
{
    keyset_unref(g_ks);
    EVP_PKEY_free(g_foreign);
    unit_rmtree(g_dir);
    return 0;
}

/* --- building tokens by hand --------------------------------------------------------------- */

static char *b64u(const void *p, size_t n)
{
    size_t len = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *s = malloc(len);
    sodium_bin2base64(s, len, p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return s;
}

enum sig_mode { SIG_OURS, SIG_NONE, SIG_FOREIGN, SIG_HMAC_PUBKEY_PEM, SIG_HMAC_PUBKEY_DER, SIG_GARBAGE };

static size_t rsa_sign(EVP_PKEY *k, const char *in, size_t n, unsigned char *sig)
{
    size_t siglen = 512;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k), 1);
    assert_int_equal(EVP_DigestSign(md, sig, &siglen, (const unsigned char *)in, n), 1);
    EVP_MD_CTX_free(md);
    return siglen;
}

/* "b64(header).b64(payload).sig" (malloc'd). */
static char *make(const char *header, const char *payload, enum sig_mode mode)
{
    char *h = b64u(header, strlen(header)), *p = b64u(payload, strlen(payload));
    size_t n = strlen(h) + 1 + strlen(p);
    char *si = malloc(n + 1);
    snprintf(si, n + 1, "%s.%s", h, p);
    unsigned char sig[512];
    size_t siglen = 0;
    switch (mode) {
    case SIG_OURS:
        siglen = rsa_sign(g_ks->keys[0].pkey, si, n, sig);
        break;
    case SIG_FOREIGN:
        siglen = rsa_sign(g_foreign, si, n, sig);
        break;
    case SIG_HMAC_PUBKEY_PEM:
    case SIG_HMAC_PUBKEY_DER: {
        unsigned char *der = NULL;
        int dl = i2d_PUBKEY(g_ks->keys[0].pkey, &der);
        BIO *b = BIO_new(BIO_s_mem());
        PEM_write_bio_PUBKEY(b, g_ks->keys[0].pkey);
        char *pem;
        long pl = BIO_get_mem_data(b, &pem);
        unsigned int ml = 0;
        if (mode == SIG_HMAC_PUBKEY_PEM)
            HMAC(EVP_sha256(), pem, (int)pl, (unsigned char *)si, n, sig, &ml);
        else
            HMAC(EVP_sha256(), der, dl, (unsigned char *)si, n, sig, &ml);
        siglen = ml;
        BIO_free(b);
        OPENSSL_free(der);
        break;
    }
    case SIG_GARBAGE:
        memset(sig, 0x41, 256);
        siglen = 256;
        break;
    case SIG_NONE:
        break;
    }
    char *s = b64u(sig, siglen);
    char *out = malloc(n + 2 + strlen(s) + 1);
    sprintf(out, "%s.%s", si, s);
    free(h);
    free(p);
    free(si);
    free(s);
    return out;
}

static char g_hdr[256];

static const char *hdr_ours(void)
{
    snprintf(g_hdr, sizeof g_hdr, "{\"alg\":\"RS256\",\"kid\":\"%s\",\"typ\":\"JWT\"}", g_ks->keys[0].kid);
    return g_hdr;
}

/* A payload with our claims; `extra` (may be "") is spliced in before the closing brace. */
static char *payload(const char *email, long exp_off, const char *extra)
{
    size_t cap = strlen(extra) + 1024;
    char *s = malloc(cap);
    snprintf(s, cap,
             "{\"aud\":[\"" AUD "\"],\"email\":\"%s\",\"sub\":\"u-1\",\"iss\":\"" ISS "\","
             "\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld,\"type\":\"app\",\"groups\":[\"eng\"],"
             "\"amr\":[\"mfa\"],\"idp\":\"corp\"%s}",
             email, (long long)g_now, (long long)g_now, (long long)(g_now + exp_off), extra);
    return s;
}

static enum token_status decode(const char *tok)
{
    struct token t;
    enum token_status st = jwt_decode(g_ks, tok, strlen(tok), g_now, &t);
    if (st == TOKEN_OK) {
        enum token_status c = token_check(&t, ISS, "app", AUD, g_now);
        token_free(&t);
        return c;
    }
    assert_null(t.payload); /* nothing leaks out of a refusal */
    assert_null(t.strs);
    return st;
}

static void expect(const char *header, const char *pl, enum sig_mode mode, enum token_status want)
{
    char *tok = make(header, pl, mode);
    enum token_status got = decode(tok);
    if (got != want)
        fail_msg("%s / %s: got %s, want %s", header, pl, token_status_name(got), token_status_name(want));
    free(tok);
}

/* --- tests ---------------------------------------------------------------------------------- */

static void test_valid_roundtrip(void **state)
{
    char *pl = payload("bob@corp.com", 3600, "");
    char *tok = make(hdr_ours(), pl, SIG_OURS);
    struct token t;
    assert_int_equal(jwt_decode(g_ks, tok, strlen(tok), g_now, &t), TOKEN_OK);
    assert_string_equal(t.email, "bob@corp.com");
    assert_string_equal(t.kid, g_ks->keys[0].kid);
    assert_int_equal(t.naud, 1);
    assert_string_equal(t.aud[0], AUD);
    assert_int_equal(t.ngroups, 1);
    assert_string_equal(t.groups[0], "eng");
    assert_int_equal(t.namr, 1);
    assert_int_equal(t.exp, g_now + 3600);
    assert_int_equal(token_check(&t, ISS, "app", AUD, g_now), TOKEN_OK);
    token_free(&t);
    free(tok);
    free(pl);

    /* jwt_sign's own output decodes too */
    json_t *c = json_pack("{s:[s],s:s,s:s,s:I,s:I,s:s}", "aud", AUD, "iss", ISS, "email", "a@b.c",
                          "iat", (json_int_t)g_now, "exp", (json_int_t)g_now + 60, "type", "app");
    char *s = jwt_sign(g_ks, c);
    assert_non_null(s);
    assert_int_equal(decode(s), TOKEN_OK);
    free(s);
    json_decref(c);
}

static void test_alg_none_and_friends(void **state)
{
    char *pl = payload("bob@corp.com", 3600, "");
    char h[256];
    const char *algs[] = { "none", "None", "NONE", "nOnE", "HS256", "HS384", "HS512", "RS384",
                           "RS512", "PS256", "ES256", "EdDSA", "rs256", "RS256 ", "" };
    for (size_t i = 0; i < sizeof algs / sizeof *algs; i++) {
        snprintf(h, sizeof h, "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", algs[i], g_ks->keys[0].kid);
        expect(h, pl, SIG_OURS, TOKEN_BAD_HEADER);
        expect(h, pl, SIG_GARBAGE, TOKEN_BAD_HEADER);
        /* no signature at all: refused as malformed (an empty third part) or for its header */
        char *tok = make(h, pl, SIG_NONE);
        enum token_status st = decode(tok);
        assert_true(st == TOKEN_MALFORMED || st == TOKEN_BAD_HEADER);
        free(tok);
    }
    snprintf(h, sizeof h, "{\"kid\":\"%s\"}", g_ks->keys[0].kid);
    expect(h, pl, SIG_OURS, TOKEN_BAD_HEADER); /* alg missing */
    snprintf(h, sizeof h, "{\"alg\":null,\"kid\":\"%s\"}", g_ks->keys[0].kid);
    expect(h, pl, SIG_OURS, TOKEN_BAD_HEADER);
    snprintf(h, sizeof h, "{\"alg\":[\"RS256\"],\"kid\":\"%s\"}", g_ks->keys[0].kid);
    expect(h, pl, SIG_OURS, TOKEN_BAD_HEADER);
    free(pl);
}

static void test_hmac_keyed_with_our_public_key(void **state)
{
    char *pl = payload("bob@corp.com", 3600, "");
    char h[256];
    snprintf(h, sizeof h, "{\"alg\":\"HS256\",\"kid\":\"%s\",\"typ\":\"JWT\"}", g_ks->keys[0].kid);
    expect(h, pl, SIG_HMAC_PUBKEY_PEM, TOKEN_BAD_HEADER);
    expect(h, pl, SIG_HMAC_PUBKEY_DER, TOKEN_BAD_HEADER);
    /* and an HMAC value under alg RS256 is just a bad signature */
    expect(hdr_ours(), pl, SIG_HMAC_PUBKEY_PEM, TOKEN_BAD_SIGNATURE);
    free(pl);
}

static void test_keys_named_by_the_token(void **state)
{
    char *pl = payload("bob@corp.com", 3600, "");
    char h[512];
    expect("{\"alg\":\"RS256\",\"kid\":\"00000000000000000000000000000000\"}", pl, SIG_OURS, TOKEN_UNKNOWN_KEY);
    expect("{\"alg\":\"RS256\"}", pl, SIG_OURS, TOKEN_UNKNOWN_KEY);
    expect("{\"alg\":\"RS256\",\"kid\":7}", pl, SIG_OURS, TOKEN_UNKNOWN_KEY);
    snprintf(h, sizeof h, "{\"alg\":\"RS256\",\"kid\":\"%.31s\"}", g_ks->keys[0].kid);
    expect(h, pl, SIG_OURS, TOKEN_UNKNOWN_KEY); /* a prefix of our kid */
    snprintf(h, sizeof h, "{\"alg\":\"RS256\",\"kid\":\"%sx\"}", g_ks->keys[0].kid);
    expect(h, pl, SIG_OURS, TOKEN_UNKNOWN_KEY);
    snprintf(h, sizeof h, "{\"alg\":\"RS256\",\"kid\":\"../../%s\"}", g_ks->keys[0].kid);
    expect(h, pl, SIG_OURS, TOKEN_UNKNOWN_KEY);
    /* a foreign key under our kid; with jwk / jku / x5u / x5c naming it */
    expect(hdr_ours(), pl, SIG_FOREIGN, TOKEN_BAD_SIGNATURE);
    const char *inj[] = { "\"jwk\":{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}",
                          "\"jku\":\"http://evil.test/jwks\"", "\"x5u\":\"http://evil.test/c.pem\"",
                          "\"x5c\":[\"MIIB\"]" };
    for (size_t i = 0; i < 4; i++) {
        snprintf(h, sizeof h, "{\"alg\":\"RS256\",\"kid\":\"%s\",%s}", g_ks->keys[0].kid, inj[i]);
        expect(h, pl, SIG_FOREIGN, TOKEN_BAD_SIGNATURE);
        expect(h, pl, SIG_OURS, TOKEN_OK); /* ignored, not refused: the key is still ours */
    }
    free(pl);
}

static void test_header_fields(void **state)
{
    char *pl = payload("bob@corp.com", 3600, "");
    char h[256];
    const char *k = g_ks->keys[0].kid;
    snprintf(h, sizeof h, "{\"alg\":\"RS256\",\"kid\":\"%s\",\"crit\":[\"exp\"],\"exp\":1}", k);
    expect(h, pl, SIG_OURS, TOKEN_BAD_HEADER);
    snprintf(h, sizeof h, "{\"alg\":\"RS256\",\"kid\":\"%s\",\"crit\":[]}", k);
    expect(h, pl, SIG_OURS, TOKEN_BAD_HEADER);
    snprintf(h, sizeof h, "{\"alg\":\"RS256\",\"kid\":\"%s\",\"typ\":\"at+jwt\"}", k);
    expect(h, pl, SIG_OURS, TOKEN_BAD_HEADER);
    snprintf(h, sizeof h, "{\"alg\":\"RS256\",\"kid\":\"%s\",\"typ\":1}", k);
    expect(h, pl, SIG_OURS, TOKEN_BAD_HEADER);
    snprintf(h, sizeof h, "{\"alg\":\"RS256\",\"kid\":\"%s\",\"typ\":\"jwt\"}", k);
    expect(h, pl, SIG_OURS, TOKEN_OK);
    snprintf(h, sizeof h, "{\"alg\":\"RS256\",\"kid\":\"%s\"}", k);
    expect(h, pl, SIG_OURS, TOKEN_OK); /* typ is optional */
    snprintf(h, sizeof h, "{\"alg\":\"none\",\"kid\":\"%s\",\"alg\":\"RS256\"}", k);
    expect(h, pl, SIG_OURS, TOKEN_MALFORMED); /* duplicate names */
    expect("[\"RS256\"]", pl, SIG_OURS, TOKEN_MALFORMED);
    expect("not json", pl, SIG_OURS, TOKEN_MALFORMED);
    free(pl);
}

static void test_claims(void **state)
{
    char pl[2048];
    const char *h = hdr_ours();
    long long n = (long long)g_now;
#define P(fmt, ...) (snprintf(pl, sizeof pl, fmt, __VA_ARGS__), pl)
    /* aud, iss, type */
    expect(h, P("{\"aud\":[\"%064d\"],\"email\":\"b@c.d\",\"iss\":\"" ISS "\",\"iat\":%lld,\"exp\":%lld,\"type\":\"app\"}", 0, n, n + 60), SIG_OURS, TOKEN_BAD_AUDIENCE);
    expect(h, P("{\"email\":\"b@c.d\",\"iss\":\"" ISS "\",\"iat\":%lld,\"exp\":%lld,\"type\":\"app\"%s}", n, n + 60, ""), SIG_OURS, TOKEN_BAD_AUDIENCE);
    expect(h, P("{\"aud\":\"" AUD "\",\"email\":\"b@c.d\",\"iss\":\"" ISS "\",\"iat\":%lld,\"exp\":%lld,\"type\":\"app\"%s}", n, n + 60, ""), SIG_OURS, TOKEN_OK);
    expect(h, P("{\"aud\":[\"x\",\"" AUD "\"],\"email\":\"b@c.d\",\"iss\":\"" ISS "\",\"iat\":%lld,\"exp\":%lld,\"type\":\"app\"%s}", n, n + 60, ""), SIG_OURS, TOKEN_OK);
    expect(h, P("{\"aud\":[\"" AUD "\"],\"email\":\"b@c.d\",\"iss\":\"https://auth.example.test\",\"iat\":%lld,\"exp\":%lld,\"type\":\"app\"%s}", n, n + 60, ""), SIG_OURS, TOKEN_BAD_ISSUER);
    expect(h, P("{\"aud\":[\"" AUD "\"],\"email\":\"b@c.d\",\"iss\":\"" ISS "/\",\"iat\":%lld,\"exp\":%lld,\"type\":\"app\"%s}", n, n + 60, ""), SIG_OURS, TOKEN_BAD_ISSUER);
    expect(h, P("{\"aud\":[\"" AUD "\"],\"email\":\"b@c.d\",\"iat\":%lld,\"exp\":%lld,\"type\":\"app\"%s}", n, n + 60, ""), SIG_OURS, TOKEN_BAD_ISSUER);
    expect(h, P("{\"aud\":[\"" AUD "\"],\"email\":\"b@c.d\",\"iss\":\"" ISS "\",\"iat\":%lld,\"exp\":%lld,\"type\":\"org\"%s}", n, n + 60, ""), SIG_OURS, TOKEN_BAD_TYPE);
    expect(h, P("{\"aud\":[\"" AUD "\"],\"email\":\"b@c.d\",\"iss\":\"" ISS "\",\"iat\":%lld,\"exp\":%lld%s}", n, n + 60, ""), SIG_OURS, TOKEN_BAD_TYPE);
    /* dates: required, numeric */
    expect(h, P("{\"aud\":[\"" AUD "\"],\"iss\":\"" ISS "\",\"iat\":%lld,\"type\":\"app\"%s}", n, ""), SIG_OURS, TOKEN_BAD_CLAIMS);
    expect(h, P("{\"aud\":[\"" AUD "\"],\"iss\":\"" ISS "\",\"exp\":%lld,\"type\":\"app\"%s}", n + 60, ""), SIG_OURS, TOKEN_BAD_CLAIMS);
    expect(h, P("{\"aud\":[\"" AUD "\"],\"iss\":\"" ISS "\",\"iat\":%lld,\"exp\":\"%lld\",\"type\":\"app\"}", n, n + 60), SIG_OURS, TOKEN_BAD_CLAIMS);
    expect(h, P("{\"aud\":[\"" AUD "\"],\"iss\":\"" ISS "\",\"iat\":%lld,\"exp\":%lld,\"nbf\":\"%lld\",\"type\":\"app\"}", n, n + 60, n), SIG_OURS, TOKEN_BAD_CLAIMS);
    expect(h, P("{\"aud\":[\"" AUD "\"],\"iss\":\"" ISS "\",\"iat\":%lld,\"exp\":true,\"type\":\"app\"%s}", n, ""), SIG_OURS, TOKEN_BAD_CLAIMS);
    expect(h, P("{\"aud\":[\"" AUD "\"],\"iss\":\"" ISS "\",\"iat\":%lld,\"exp\":1e300,\"type\":\"app\"%s}", n, ""), SIG_OURS, TOKEN_BAD_CLAIMS);
    expect(h, P("{\"aud\":[\"" AUD "\"],\"iss\":\"" ISS "\",\"iat\":%lld,\"exp\":%lld.5,\"type\":\"app\"%s}", n, n + 60, ""), SIG_OURS, TOKEN_OK);
    /* types of the other claims */
    expect(h, P("{\"aud\":[1],\"iss\":\"" ISS "\",\"iat\":%lld,\"exp\":%lld,\"type\":\"app\"%s}", n, n + 60, ""), SIG_OURS, TOKEN_BAD_CLAIMS);
    expect(h, P("{\"aud\":[\"" AUD "\"],\"email\":[\"b@c.d\"],\"iss\":\"" ISS "\",\"iat\":%lld,\"exp\":%lld,\"type\":\"app\"%s}", n, n + 60, ""), SIG_OURS, TOKEN_BAD_CLAIMS);
    expect(h, P("{\"aud\":[\"" AUD "\"],\"groups\":\"eng\",\"iss\":\"" ISS "\",\"iat\":%lld,\"exp\":%lld,\"type\":\"app\"%s}", n, n + 60, ""), SIG_OURS, TOKEN_OK);
    expect(h, P("{\"aud\":[\"" AUD "\"],\"groups\":[\"eng\",2],\"iss\":\"" ISS "\",\"iat\":%lld,\"exp\":%lld,\"type\":\"app\"%s}", n, n + 60, ""), SIG_OURS, TOKEN_BAD_CLAIMS);
    expect(h, P("{\"aud\":[\"" AUD "\"],\"type\":1,\"iss\":\"" ISS "\",\"iat\":%lld,\"exp\":%lld%s}", n, n + 60, ""), SIG_OURS, TOKEN_BAD_CLAIMS);
    /* duplicate names in the payload */
    char *p2 = payload("mallory@evil.com", 3600, ",\"email\":\"bob@corp.com\"");
    expect(h, p2, SIG_OURS, TOKEN_MALFORMED);
    free(p2);
    p2 = payload("bob@corp.com", 3600, ",\"aud\":[\"" AUD "\"]");
    expect(h, p2, SIG_OURS, TOKEN_MALFORMED);
    free(p2);
    /* not one well-formed address */
    const char *emails[] = { "a@evil.com@corp.com", "@corp.com", "a@", "a b@corp.com", "a\\t@corp.com",
                             "a@corp.com\\n", "nobody" };
    for (size_t i = 0; i < sizeof emails / sizeof *emails; i++) {
        p2 = payload(emails[i], 3600, "");
        expect(h, p2, SIG_OURS, TOKEN_BAD_CLAIMS);
        free(p2);
    }
    /* a NUL inside a string never reaches a C string compare */
    p2 = payload("bob@corp.com\\u0000@evil.com", 3600, "");
    char *tok = make(h, p2, SIG_OURS);
    assert_int_not_equal(decode(tok), TOKEN_OK);
    free(tok);
    free(p2);
#undef P
}

static void test_form(void **state)
{
    char *pl = payload("bob@corp.com", 3600, "");
    char *tok = make(hdr_ours(), pl, SIG_OURS);
    size_t n = strlen(tok);
    char *buf = malloc(2 * n + 64);
    char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');

    assert_int_equal(decode(tok), TOKEN_OK);
    /* extra dots, missing parts */
    snprintf(buf, 2 * n + 64, "%s.", tok);
    assert_int_equal(decode(buf), TOKEN_MALFORMED);
    snprintf(buf, 2 * n + 64, "%s.x", tok);
    assert_int_equal(decode(buf), TOKEN_MALFORMED);
    snprintf(buf, 2 * n + 64, "%.*s", (int)(d2 - tok), tok); /* signature stripped */
    assert_int_equal(decode(buf), TOKEN_MALFORMED);
    snprintf(buf, 2 * n + 64, "%.*s.", (int)(d2 - tok), tok);
    assert_int_equal(decode(buf), TOKEN_MALFORMED);
    snprintf(buf, 2 * n + 64, ".%s", d1 + 1);
    assert_int_equal(decode(buf), TOKEN_MALFORMED);
    snprintf(buf, 2 * n + 64, "%.*s.%s", (int)(d1 - tok), tok, d2 + 1);
    assert_int_equal(decode(buf), TOKEN_MALFORMED);
    const char *junk[] = { "", ".", "..", "...", "a.b.c", "a.b.c.d", "e30.e30.", "e30.e30.e30" };
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++) {
        struct token t;
        enum token_status st = jwt_decode(g_ks, junk[i], strlen(junk[i]), g_now, &t);
        assert_true(st == TOKEN_MALFORMED || st == TOKEN_UNKNOWN_KEY || st == TOKEN_BAD_HEADER);
    }
    /* base64url strictly: padding, the standard alphabet, junk, whitespace */
    snprintf(buf, 2 * n + 64, "%.*s=%s", (int)(d1 - tok), tok, d1);
    assert_int_equal(decode(buf), TOKEN_MALFORMED);
    memcpy(buf, tok, n + 1);
    buf[d2 - tok + 5] = '+';
    assert_int_not_equal(decode(buf), TOKEN_OK);
    memcpy(buf, tok, n + 1);
    buf[d1 - tok + 5] = '!'; /* the signature covers the text: refused either way */
    assert_in_set(decode(buf), ((uintmax_t[]){ TOKEN_MALFORMED, TOKEN_BAD_SIGNATURE }), 2);
    memcpy(buf, tok, n + 1);
    buf[1] = '!';
    assert_int_equal(decode(buf), TOKEN_MALFORMED);
    memcpy(buf, tok, n + 1);
    buf[d1 - tok + 5] = ' ';
    assert_in_set(decode(buf), ((uintmax_t[]){ TOKEN_MALFORMED, TOKEN_BAD_SIGNATURE }), 2);
    /* one changed payload or signature byte */
    memcpy(buf, tok, n + 1);
    buf[d1 - tok + 7] = buf[d1 - tok + 7] == 'A' ? 'B' : 'A';
    assert_int_not_equal(decode(buf), TOKEN_OK);
    memcpy(buf, tok, n + 1);
    buf[n - 3] = buf[n - 3] == 'A' ? 'B' : 'A';
    assert_int_equal(decode(buf), TOKEN_BAD_SIGNATURE);
    /* a signature of the wrong length */
    snprintf(buf, 2 * n + 64, "%.*s.QUFB", (int)(d2 - tok), tok);
    assert_int_equal(decode(buf), TOKEN_BAD_SIGNATURE);
    /* a length that lies: only `len` bytes count, even before a NUL */
    assert_int_not_equal(jwt_decode(g_ks, tok, n - 1, g_now, &(struct token){ 0 }), TOKEN_OK);
    free(buf);
    free(tok);
    free(pl);
}

static void test_size_limit(void **state)
{
    char extra[9000];
    snprintf(extra, sizeof extra, ",\"pad\":\"%0*d\"", 7000, 0);
    char *pl = payload("bob@corp.com", 3600, extra);
    char *tok = make(hdr_ours(), pl, SIG_OURS);
    assert_true(strlen(tok) > JWT_MAX_LEN);
    struct token t;
    assert_int_equal(jwt_decode(g_ks, tok, strlen(tok), g_now, &t), TOKEN_TOO_LARGE);
    free(tok);
    free(pl);
    /* over 8 KiB of anything is refused before decoding */
    char *big = malloc(JWT_MAX_LEN + 2);
    memset(big, 'A', JWT_MAX_LEN + 1);
    big[JWT_MAX_LEN + 1] = '\0';
    assert_int_equal(jwt_decode(g_ks, big, JWT_MAX_LEN + 1, g_now, &t), TOKEN_TOO_LARGE);
    free(big);
    /* just under the limit: fine */
    snprintf(extra, sizeof extra, ",\"pad\":\"%0*d\"", 5000, 0);
    pl = payload("bob@corp.com", 3600, extra);
    tok = make(hdr_ours(), pl, SIG_OURS);
    assert_true(strlen(tok) <= JWT_MAX_LEN);
    assert_int_equal(decode(tok), TOKEN_OK);
    free(tok);
    free(pl);
}

static void test_check_dates_leeway(void **state)
{
    struct token t = { 0 };
    const char *aud[] = { AUD };
    t.iss = ISS;
    t.type = "app";
    t.aud = aud;
    t.naud = 1;
    t.exp = g_now - JWT_LEEWAY_S;
    assert_int_equal(token_check(&t, ISS, "app", AUD, g_now), TOKEN_OK);
    t.exp = g_now - JWT_LEEWAY_S - 1;
    assert_int_equal(token_check(&t, ISS, "app", AUD, g_now), TOKEN_EXPIRED);
    t.exp = g_now + 3600;
    t.nbf = g_now + JWT_LEEWAY_S;
    assert_int_equal(token_check(&t, ISS, "app", AUD, g_now), TOKEN_OK);
    t.nbf = g_now + JWT_LEEWAY_S + 1;
    assert_int_equal(token_check(&t, ISS, "app", AUD, g_now), TOKEN_NOT_YET_VALID);
    t.nbf = 0;
    assert_int_equal(token_check(&t, ISS, "app", NULL, g_now), TOKEN_OK);
    assert_int_equal(token_check(&t, ISS, "org", AUD, g_now), TOKEN_BAD_TYPE);
    assert_int_equal(token_check(&t, "http://other", "app", AUD, g_now), TOKEN_BAD_ISSUER);
    assert_int_equal(token_check(&t, ISS, "app", "x", g_now), TOKEN_BAD_AUDIENCE);
    t.naud = 0;
    assert_int_equal(token_check(&t, ISS, "app", AUD, g_now), TOKEN_BAD_AUDIENCE);
}

/* Extreme dates in a validly signed token must not overflow `exp + leeway` (signed overflow is
 * undefined behaviour; in practice INT64_MAX wraps and reads as expired). */
static void test_check_extreme_dates(void **state)
{
    struct token t = { 0 };
    const char *aud[] = { AUD };
    t.iss = ISS;
    t.type = "app";
    t.aud = aud;
    t.naud = 1;
    t.exp = INT64_MAX;
    assert_int_equal(token_check(&t, ISS, "app", AUD, g_now), TOKEN_OK);
    t.exp = INT64_MIN;
    assert_int_equal(token_check(&t, ISS, "app", AUD, g_now), TOKEN_EXPIRED);
    t.exp = g_now + 60;
    t.nbf = INT64_MAX;
    assert_int_equal(token_check(&t, ISS, "app", AUD, g_now), TOKEN_NOT_YET_VALID);
}

static void test_keyset_find(void **state)
{
    const char *kid = g_ks->keys[0].kid;
    assert_non_null(keyset_find(g_ks, kid, 32, g_now));
    assert_null(keyset_find(g_ks, kid, 31, g_now));
    assert_null(keyset_find(g_ks, "00000000000000000000000000000000", 32, g_now));
    assert_null(keyset_find(g_ks, "", 0, g_now));
    /* the certs document names the signer */
    assert_non_null(strstr(g_ks->certs_json, kid));
    assert_non_null(strstr(g_ks->certs_json, "\"public_cert\""));
}

static void test_email_ok(void **state)
{
    assert_true(token_email_ok("a@b"));
    assert_true(token_email_ok("first.last+tag@corp.example.com"));
    assert_false(token_email_ok("a@evil.com@corp.com"));
    assert_false(token_email_ok("@corp.com"));
    assert_false(token_email_ok("a@"));
    assert_false(token_email_ok("a"));
    assert_false(token_email_ok(""));
    assert_false(token_email_ok("a b@c"));
    assert_false(token_email_ok("a@c\r"));
    assert_false(token_email_ok("a\x7f@c"));
}

static void test_status_names(void **state)
{
    assert_string_equal(token_status_name(TOKEN_OK), "ok");
    assert_string_equal(token_status_name(TOKEN_REVOKED), "revoked");
    assert_string_equal(token_status_name(TOKEN_UNKNOWN_KEY), "unknown_key");
    assert_string_equal(token_status_name((enum token_status)99), "invalid");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_roundtrip),
        cmocka_unit_test(test_alg_none_and_friends),
        cmocka_unit_test(test_hmac_keyed_with_our_public_key),
        cmocka_unit_test(test_keys_named_by_the_token),
        cmocka_unit_test(test_header_fields),
        cmocka_unit_test(test_claims),
        cmocka_unit_test(test_form),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_check_dates_leeway),
        cmocka_unit_test(test_check_extreme_dates),
        cmocka_unit_test(test_keyset_find),
        cmocka_unit_test(test_email_ok),
        cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
