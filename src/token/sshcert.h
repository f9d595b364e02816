/* OpenSSH user certificates (PROTOCOL.certkeys in OpenSSH's source): the public key line a
 * client sends (untrusted: parsed strictly, only ssh-ed25519 and ecdsa-sha2-nistp256 keys
 * accepted), its SHA256 fingerprint as ssh-keygen prints it, principal names that are safe to
 * put in a certificate, and the certificate itself, signed by an Ed25519 CA key (OpenSSL EVP).
 * Wire format: RFC 4251 §5 (string = uint32 length + bytes, uint64 big-endian). */
#ifndef LATCH_SSHCERT_H
#define LATCH_SSHCERT_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SSH_PUBKEY_LINE_MAX 8192 /* a longer line is refused before it is read */
#define SSH_PUBKEY_BLOB_MAX 128  /* the largest blob of a type signed here (ECDSA P-256: 104) */
#define SSH_FINGERPRINT_LEN 51   /* "SHA256:" + 43 base64 characters + NUL */
#define SSH_CERT_PRINCIPALS_MAX 64

enum ssh_key_type { SSH_KEY_ED25519 = 1, SSH_KEY_ECDSA_P256 };

/* A client's public key: its type and its wire blob (RFC 4253 §6.6 / RFC 5656 §3.1). */
struct ssh_pubkey {
    enum ssh_key_type type;
    unsigned char blob[SSH_PUBKEY_BLOB_MAX];
    size_t blob_len;
};

enum ssh_parse { SSH_PK_OK = 0, SSH_PK_MALFORMED, SSH_PK_UNSUPPORTED };

/* Parses one OpenSSH public key line, "TYPE BASE64 [COMMENT]" (spaces or tabs between fields,
 * one trailing newline allowed). SSH_PK_UNSUPPORTED: a well-formed key of a type not signed here
 * (ssh-rsa, ssh-dss, other curves, security keys, certificates); SSH_PK_MALFORMED: anything else
 * that is not exactly such a line (bad base64, a blob whose type differs from the line's,
 * trailing bytes in the blob, an ECDSA point not on P-256, control characters, over
 * SSH_PUBKEY_LINE_MAX). *why (static text) says which, for the client. */
enum ssh_parse ssh_pubkey_parse(const char *line, size_t n, struct ssh_pubkey *out, const char **why);

/* "SHA256:" + unpadded base64 of SHA-256 over the blob, as `ssh-keygen -l` prints it. */
void ssh_pubkey_fingerprint(const struct ssh_pubkey *k, char out[SSH_FINGERPRINT_LEN]);

/* The principals one identity gets from a list of templates and names: "{email}", "{email_local}"
 * (the part before the last '@'), "{service_token}" (the token's name) stand for those values,
 * alone or inside a longer name; a template whose value is absent (NULL) yields nothing, and a
 * result that is not a safe name (core/sshname.h) is dropped, never passed on. Results are
 * appended to out[*n..cap) (malloc'd), each once. 0, or -1 when out of memory. */
int ssh_principals_expand(const char *const *tmpl, size_t ntmpl, const char *email, const char *service,
                          char **out, size_t *n, size_t cap);

/* What goes in a certificate. */
struct ssh_cert_req {
    const struct ssh_pubkey *key;
    uint64_t serial;
    const char *key_id;
    const char *const *principals; /* each ssh_principal_ok (core/sshname.h) */
    size_t nprincipals;
    uint64_t valid_after, valid_before; /* unix seconds */
    bool permit_pty, permit_port_forwarding;
};

/* The certificate line "TYPE-cert-v01@openssh.com BASE64 COMMENT" (malloc'd), signed by the
 * Ed25519 key `ca`; a random nonce. NULL when the request is not one (no principals, a bad
 * principal, valid_before <= valid_after) or signing fails. */
char *ssh_cert_sign(const struct ssh_cert_req *req, EVP_PKEY *ca, const char *comment);

/* The public key line "ssh-ed25519 BASE64 COMMENT" of an Ed25519 key (malloc'd), as sshd's
 * TrustedUserCAKeys takes it; NULL when the key is not Ed25519. */
char *ssh_ed25519_pubkey_line(EVP_PKEY *key, const char *comment);

/* An unencrypted OpenSSH private key file (PROTOCOL.key: "openssh-key-v1", cipher and KDF
 * "none") for the Ed25519 key `key`, as ssh and ssh-keygen read it (malloc'd); NULL when the
 * key is not Ed25519 with its private half. */
char *ssh_ed25519_private_file(EVP_PKEY *key, const char *comment);

/* A certificate line's validity, as ssh_cert_sign wrote it (the CLI reads its own files with
 * this): 0 with *valid_before set, -1 when the line is not a certificate of a type signed here. */
int ssh_cert_valid_before(const char *line, size_t n, uint64_t *valid_before);

#endif
