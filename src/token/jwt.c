/* Strict JWT decoding, claim checks and RS256 signing (jwt.h). */
#include "token/jwt.h"

#include "core/base64url.h"
#include "core/email.h"
#include "token/claims.h"

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *token_status_name(enum token_status s)
{
    static const char *const names[] = {
        "ok", "too_large", "malformed", "bad_header", "unknown_key", "bad_signature",
        "bad_claims", "bad_issuer", "bad_audience", "bad_type", "expired", "not_yet_valid",
        "revoked", "unpaired_cookie",
    };
    return (size_t)s < sizeof names / sizeof *names ? names[s] : "invalid";
}

/* SHA-256 with the algorithm fetched once: OpenSSL 3 looks names up in its provider tables
 * on every implicit fetch, which showed in profiles of cache misses. */
static EVP_MD *jwt__md;

static void jwt__fetch(void)
{
    jwt__md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
}

static int jwt__sha256(const unsigned char *p, size_t n, unsigned char out[32])
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    unsigned int len = 0;
    pthread_once(&once, jwt__fetch);
    return jwt__md && EVP_Digest(p, n, out, &len, jwt__md, NULL) == 1 && len == 32 ? 0 : -1;
}

/* RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017 §8.2.2) over a digest. OpenSSL 3's EVP path sets up
 * a provider context per call, which cost as much as the RSA operation itself in profiles of
 * cache misses; the RSA key's own verify does not. The key never changes after loading. */
static int jwt__rsa_verify(const struct signing_key *key, const unsigned char digest[32],
                           const unsigned char *sig, size_t siglen)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    const RSA *rsa = EVP_PKEY_get0_RSA(key->pkey);
    int ok = rsa && RSA_verify(NID_sha256, digest, 32, sig, (unsigned int)siglen, (RSA *)rsa) == 1;
#pragma GCC diagnostic pop
    return ok ? 0 : -1;
}

/* One part of a token, base64url-decoded into buf (cap bytes, NUL-terminated), read as a JSON
 * object (token/claims.h: strings then point into buf). */
static int jwt__part(const char *p, size_t n, char *buf, size_t cap, struct claims *c)
{
    size_t len;
    if (b64url_decode(p, n, (unsigned char *)buf, cap - 1, &len) != 0)
        return -1;
    buf[len] = '\0';
    return claims_parse(buf, len, c);
}

/* An optional string claim: absent or null is fine, another type is not. */
static int jwt__str(const struct claims *c, const char *name, const char **out)
{
    const struct claims_member *m = claims_get(c, name);
    *out = NULL;
    if (!m || m->kind == CLAIMS_NULL)
        return 0;
    if (m->kind != CLAIMS_STRING)
        return -1;
    *out = c->strs[m->first];
    return 0;
}

/* A string or an array of strings (aud may be either, RFC 7519 §4.1.3). */
static int jwt__strs(const struct claims *c, const char *name, const char ***out, size_t *n)
{
    const struct claims_member *m = claims_get(c, name);
    *out = NULL;
    *n = 0;
    if (!m || m->kind == CLAIMS_NULL)
        return 0;
    if ((m->kind != CLAIMS_STRING && m->kind != CLAIMS_ARRAY) || !m->strings)
        return -1;
    *out = c->strs + m->first;
    *n = m->count;
    return 0;
}

/* NumericDate (RFC 7519 §2): a JSON number, never a string. */
static int jwt__date(const struct claims *c, const char *name, bool required, int64_t *out)
{
    const struct claims_member *m = claims_get(c, name);
    *out = 0;
    if (!m)
        return required ? -1 : 0;
    if (m->kind == CLAIMS_INTEGER) {
        *out = m->integer;
        return 0;
    }
    if (m->kind == CLAIMS_REAL && m->real > -1e15 && m->real < 1e15) {
        *out = (int64_t)m->real;
        return 0;
    }
    return -1;
}

void token_free(struct token *t)
{
    free(t->payload);
    free(t->strs);
    memset(t, 0, sizeof *t);
}

static enum token_status jwt__header(const struct claims *h, const struct keyset *ks, time_t now,
                                     const struct signing_key **key, char kid_out[33])
{
    const char *alg, *kid, *typ;
    if (jwt__str(h, "alg", &alg) || !alg || strcmp(alg, "RS256") != 0)
        return TOKEN_BAD_HEADER; /* none, HS256 keyed with our public key, …: never */
    const struct claims_member *t = claims_get(h, "typ");
    if (t && (jwt__str(h, "typ", &typ) || !typ || strcasecmp(typ, "JWT") != 0))
        return TOKEN_BAD_HEADER;
    if (claims_get(h, "crit")) /* we implement no extension (RFC 7515 §4.1.11) */
        return TOKEN_BAD_HEADER;
    if (jwt__str(h, "kid", &kid) || !kid)
        return TOKEN_UNKNOWN_KEY;
    *key = keyset_find(ks, kid, strlen(kid), now);
    if (!*key)
        return TOKEN_UNKNOWN_KEY;
    memcpy(kid_out, (*key)->kid, 33);
    return TOKEN_OK;
}

enum token_status jwt_decode(const struct keyset *ks, const char *tok, size_t len, time_t now,
                             struct token *out)
{
    memset(out, 0, sizeof *out);
    if (len > JWT_MAX_LEN)
        return TOKEN_TOO_LARGE;
    const char *d1 = memchr(tok, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(tok + len - d1 - 1)) : NULL;
    if (!d1 || !d2 || d1 == tok || d2 == d1 + 1 || d2 + 1 == tok + len ||
        memchr(d2 + 1, '.', (size_t)(tok + len - d2 - 1)))
        return TOKEN_MALFORMED;

    char hbuf[JWT_MAX_LEN];
    struct claims h;
    if (jwt__part(tok, (size_t)(d1 - tok), hbuf, sizeof hbuf, &h) != 0)
        return TOKEN_MALFORMED;
    const struct signing_key *key = NULL;
    enum token_status st = jwt__header(&h, ks, now, &key, out->kid);
    claims_free(&h);
    if (st != TOKEN_OK)
        return st;

    unsigned char sig[1024];
    size_t siglen;
    if (b64url_decode(d2 + 1, (size_t)(tok + len - d2 - 1), sig, sizeof sig, &siglen) != 0)
        return TOKEN_MALFORMED;
    if (siglen != (size_t)EVP_PKEY_get_size(key->pkey))
        return TOKEN_BAD_SIGNATURE;
    unsigned char digest[32];
    if (jwt__sha256((const unsigned char *)tok, (size_t)(d2 - tok), digest) != 0 ||
        jwt__rsa_verify(key, digest, sig, siglen) != 0)
        return TOKEN_BAD_SIGNATURE;

    size_t plen = (size_t)(d2 - d1 - 1);
    struct claims c;
    if (!(out->payload = malloc(B64URL_DECODED_MAX(plen) + 1)) ||
        jwt__part(d1 + 1, plen, out->payload, B64URL_DECODED_MAX(plen) + 1, &c) != 0) {
        token_free(out);
        return TOKEN_MALFORMED;
    }
    out->strs = c.strs; /* the token owns the strings' pointers from now on */
    if (jwt__str(&c, "email", &out->email) || jwt__str(&c, "sub", &out->sub) ||
        jwt__str(&c, "type", &out->type) || jwt__str(&c, "idp", &out->idp) ||
        jwt__str(&c, "common_name", &out->common_name) ||
        jwt__str(&c, "identity_nonce", &out->identity_nonce) ||
        jwt__str(&c, "country", &out->country) || jwt__str(&c, "iss", &out->iss) ||
        jwt__strs(&c, "aud", &out->aud, &out->naud) ||
        jwt__strs(&c, "groups", &out->groups, &out->ngroups) ||
        jwt__strs(&c, "amr", &out->amr, &out->namr) || jwt__date(&c, "exp", true, &out->exp) ||
        jwt__date(&c, "iat", true, &out->iat) || jwt__date(&c, "nbf", false, &out->nbf)) {
        token_free(out);
        return TOKEN_BAD_CLAIMS;
    }
    out->has_groups = claims_get(&c, "groups") != NULL;
    if (out->email && !token_email_ok(out->email)) {
        token_free(out);
        return TOKEN_BAD_CLAIMS;
    }
    return TOKEN_OK;
}

enum token_status token_check(const struct token *t, const char *iss, const char *type,
                              const char *aud, time_t now)
{
    if (!t->iss || strcmp(t->iss, iss) != 0)
        return TOKEN_BAD_ISSUER;
    if (!t->type || strcmp(t->type, type) != 0)
        return TOKEN_BAD_TYPE;
    if (aud) {
        bool found = false;
        for (size_t i = 0; i < t->naud && !found; i++)
            found = !strcmp(t->aud[i], aud);
        if (!found)
            return TOKEN_BAD_AUDIENCE;
    }
    /* written so that no sum can overflow, whatever dates a token carries */
    if (now - JWT_LEEWAY_S > t->exp)
        return TOKEN_EXPIRED;
    if (t->nbf > now + JWT_LEEWAY_S || t->iat > now + JWT_LEEWAY_S)
        return TOKEN_NOT_YET_VALID; /* a future iat would also outlive a revocation */
    return TOKEN_OK;
}

char *jwt_sign(const struct keyset *ks, json_t *claims)
{
    if (!ks->n)
        return NULL;
    const struct signing_key *key = &ks->keys[0];
    char header[96];
    int hl = snprintf(header, sizeof header, "{\"alg\":\"RS256\",\"kid\":\"%s\",\"typ\":\"JWT\"}", key->kid);
    char *payload = json_dumps(claims, JSON_COMPACT);
    char *h64 = b64url_encode_dup((const unsigned char *)header, (size_t)hl);
    char *p64 = payload ? b64url_encode_dup((const unsigned char *)payload, strlen(payload)) : NULL;
    char *out = NULL, *s64 = NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!h64 || !p64 || !md)
        goto done;
    size_t sl = strlen(h64), pl = strlen(p64);
    char *input = malloc(sl + 1 + pl + 1);
    if (!input)
        goto done;
    memcpy(input, h64, sl);
    input[sl] = '.';
    memcpy(input + sl + 1, p64, pl + 1);
    unsigned char sig[1024];
    size_t siglen = sizeof sig;
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key->pkey) == 1 &&
        EVP_DigestSign(md, sig, &siglen, (const unsigned char *)input, sl + 1 + pl) == 1 &&
        (s64 = b64url_encode_dup(sig, siglen))) {
        size_t tl = strlen(s64);
        out = malloc(sl + 1 + pl + 1 + tl + 1);
        if (out) {
            memcpy(out, input, sl + 1 + pl);
            out[sl + 1 + pl] = '.';
            memcpy(out + sl + 2 + pl, s64, tl + 1);
        }
    }
    free(input);
done:
    EVP_MD_CTX_free(md);
    free(payload);
    free(h64);
    free(p64);
    free(s64);
    return out;
}

bool token_email_ok(const char *email)
{
    return email_check(email) == NULL;
}
