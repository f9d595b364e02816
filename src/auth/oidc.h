/* What an OpenID provider sends us, checked without the network (the provider's side of
 * OpenID Connect): a JSON document as received, the discovery document, the keys of a JWKS,
 * an ID token's form, signature and claims. auth/oidc.c fetches and caches these documents and
 * runs the flow; fuzz/ feeds these functions bytes. All of it is untrusted input: a provider
 * (or whoever answers in its name) chooses every byte. Errors: NULL or -1, with *err malloc'd
 * (a sentence for the auth log) where the function takes one. */
#ifndef LATCH_AUTH_OIDC_H
#define LATCH_AUTH_OIDC_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stddef.h>

/* A provider's JSON answer: the object, or NULL when the bytes are not one JSON object. */
json_t *oidc_document(const char *p, size_t n);

/* OpenID Connect Discovery §4.3: the document `url` answered names exactly the configured
 * issuer, and its authorization, token and JWKS endpoints are https:// (http:// too when the
 * issuer is http://). 0, or -1 with *err. */
int oidc_discovery_check(json_t *d, const char *issuer, const char *url, char **err);

/* The signing key of a JWKS that `kid` names (any signing key when kid is NULL) whose own
 * `alg`, if it states one, is `alg` (RFC 7517 §4.2, §4.4); borrowed from jwks. */
json_t *oidc_find_jwk(json_t *jwks, const char *kid, const char *alg);
/* The public key of an RSA or P-256 JWK (RFC 7518 §6), NULL when it describes none. */
EVP_PKEY *oidc_jwk_key(json_t *jwk);

/* An ID token's two first parts, read and held to what we accept: three base64url parts, a
 * header and claims that are JSON objects (duplicate names refused), alg RS256/384/512, PS256
 * or ES256, no `crit`. alg and kid point into header. */
struct oidc_id_token {
    json_t *header, *claims;
    const char *alg, *kid;
};
int oidc_id_token_parse(const char *tok, struct oidc_id_token *t, char **err);
void oidc_id_token_free(struct oidc_id_token *t);

/* The signature of the compact JWS `tok` with the provider's key for `alg`: 0 when valid (RSA
 * keys of 2048 bits or more; ES256 with a P-256 key). */
int oidc_verify_sig(const char *tok, const char *alg, EVP_PKEY *key);

/* OpenID Connect Core §3.1.3.7 on the claims: iss identical to the provider's, aud our
 * client_id (azp too when there are several), sub present, exp, iat and nbf numbers that hold
 * at `now` (with JWT_LEEWAY_S), and the flow's nonce. 0, or -1 with *err. */
int oidc_claims_check(json_t *claims, const char *issuer, const char *client_id, const char *nonce,
                      double now, char **err);

#endif
