/* Signing keys (SPEC.md §5): RS256 2048-bit, one PKCS#8 PEM file per key in
 * state_dir/keys/<kid>.pem (0600). The newest key signs; an older key keeps verifying until
 * `overlap` after its successor was made, then it is deleted. A key set is immutable and
 * reference-counted: rotation builds a new one. */
#ifndef LATCH_KEYS_H
#define LATCH_KEYS_H

#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct signing_key {
    char kid[33];          /* 32 hex: the first 16 bytes of SHA-256 over the public key (DER) */
    EVP_PKEY *pkey;        /* private for the signer, public use for the others */
    time_t created;        /* the file's modification time (seconds) */
    int64_t created_ns;    /* the same in nanoseconds: orders keys made within one second */
    time_t verify_until;   /* 0: no successor yet */
    char *cert_pem;        /* a self-signed certificate for the key (the certs endpoint) */
    char *jwk_n, *jwk_e;   /* base64url modulus and exponent */
};

struct keyset {
    atomic_uint refs;
    struct signing_key *keys; /* newest first: keys[0] signs */
    size_t n;
    char *certs_json;         /* the body of /cdn-cgi/access/certs */
    int64_t dir_mtime_ns;     /* of state_dir/keys before it was read: a change means a new key */
    bool made;                /* keys_load made keys[0] (first key, rotation, force) */
};

/* Loads every key in state_dir/keys, deleting those past their overlap; makes the first key
 * when there is none (or a new one when `rotate_after` seconds passed since the newest, or
 * `force`). NULL with *err (malloc'd) on failure. */
struct keyset *keys_load(const char *state_dir, int64_t rotate_after_s, int64_t overlap_s,
                         bool force_new, char **err);
void keyset_ref(struct keyset *ks);
void keyset_unref(struct keyset *ks);

/* The key with this kid, NULL when unknown or past its overlap at `now`. */
const struct signing_key *keyset_find(const struct keyset *ks, const char *kid, size_t kid_len, time_t now);

/* True when the newest key is older than rotate_after_s. */
bool keyset_due(const struct keyset *ks, int64_t rotate_after_s, time_t now);

/* The kid of a PEM private key that could be a latch signing key (RSA, 2048 bits or more): 0, or
 * -1 when it is not one. */
int keys_pem_kid(const char *pem, size_t len, char kid[33]);

/* True when state_dir/keys changed since the set was loaded (another process rotated). */
bool keyset_stale(const struct keyset *ks, const char *state_dir);

#endif
