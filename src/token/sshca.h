/* Per-app SSH user CAs (short-lived SSH certificates): an Ed25519 key per app, made on first use
 * in state_dir/ssh_ca/<file>.pem (PKCS#8 PEM, 0600), never rotated by latch (sshd trusts it by
 * its TrustedUserCAKeys line). With a shared store the cluster thread keeps the directory as a
 * copy of the cluster's, sealed in Redis like the signing keys (store/cluster.c). */
#ifndef LATCH_SSHCA_H
#define LATCH_SSHCA_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>

#define SSHCA_DIR "ssh_ca"
#define SSHCA_FILE_MAX 300 /* a file name's bytes, NUL included */
#define SSHCA_PEM_MAX 4096

/* The file name (without ".pem") of app's CA: the name itself when it is made of letters,
 * digits, '_', '-' and inner '.' (at most 64 bytes), else '%' and the name in hex (at most 128
 * bytes of name). -1 when the name is longer. */
int sshca_file_stem(const char *app, char out[SSHCA_FILE_MAX]);

/* Whether a file stem is one sshca_file_stem makes (what the cluster accepts from Redis). */
bool sshca_stem_ok(const char *stem);

/* The CA of `app`, read from state_dir; made first when there is none and `create` (two makers
 * at once: the first file wins, the other reads it). NULL with *err (malloc'd): no CA (and not
 * `create`), a file that is not an Ed25519 private key, or it cannot be written. */
EVP_PKEY *sshca_load(const char *state_dir, const char *app, bool create, char **err);

/* Whether PEM text is an Ed25519 private key (a CA file). */
bool sshca_pem_ok(const char *pem, size_t len);

#endif
