/* Token minting (mint.h). */
#include "token/mint.h"

#include "token/jwt.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

static json_t *mint__strings(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

char *token_mint(const struct keyset *ks, const char *iss, const struct mint_claims *m, time_t now)
{
    char nonce[33];
    if (!m->identity_nonce) {
        unsigned char raw[16];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2hex(nonce, sizeof nonce, raw, sizeof raw);
    }
    json_t *c = json_object();
    if (m->aud)
        json_object_set_new(c, "aud", json_pack("[s]", m->aud));
    if (m->email)
        json_object_set_new(c, "email", json_string(m->email));
    json_object_set_new(c, "sub", json_string(m->sub ? m->sub : ""));
    json_object_set_new(c, "iss", json_string(iss));
    json_object_set_new(c, "iat", json_integer((json_int_t)now));
    json_object_set_new(c, "nbf", json_integer((json_int_t)now));
    json_object_set_new(c, "exp", json_integer((json_int_t)(now + m->ttl_s)));
    json_object_set_new(c, "type", json_string(m->type));
    json_object_set_new(c, "identity_nonce", json_string(m->identity_nonce ? m->identity_nonce : nonce));
    if (m->common_name)
        json_object_set_new(c, "common_name", json_string(m->common_name));
    if (m->country)
        json_object_set_new(c, "country", json_string(m->country));
    if (m->idp)
        json_object_set_new(c, "idp", json_string(m->idp));
    if (m->email) {
        if (!m->omit_groups)
            json_object_set_new(c, "groups", mint__strings(m->groups, m->ngroups));
        json_object_set_new(c, "amr", mint__strings(m->amr, m->namr));
    }
    char *tok = jwt_sign(ks, c);
    json_decref(c);
    return tok;
}

void token_person_sub(const unsigned char secret[32], const char *email, char out[37])
{
    unsigned char mac[32];
    unsigned int len = sizeof mac;
    char msg[600];
    int n = snprintf(msg, sizeof msg, "sub:%s", email);
    HMAC(EVP_sha256(), secret, 32, (const unsigned char *)msg, (size_t)(n < (int)sizeof msg ? n : (int)sizeof msg - 1), mac, &len);
    mac[6] = (mac[6] & 0x0f) | 0x50; /* a name-based UUID layout (version 5 style, RFC 4122) */
    mac[8] = (mac[8] & 0x3f) | 0x80;
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], mac[6], mac[7], mac[8], mac[9],
             mac[10], mac[11], mac[12], mac[13], mac[14], mac[15]);
}
