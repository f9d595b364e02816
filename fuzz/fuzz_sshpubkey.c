/* libFuzzer target: ssh_pubkey_parse (src/token/sshcert.c), the OpenSSH public key line a
 * client sends to cert_sign, and ssh_cert_valid_before on the same bytes (the certificate
 * line the CLI reads back). Invariants: an accepted key is one of the two types signed, its blob
 * fits and starts with its type; its fingerprint is "SHA256:" and 43 base64 characters; a
 * certificate signed for it (by a CA made once) reads back with the validity it was given; a
 * refusal always says why. */
#include "token/sshcert.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static EVP_PKEY *fuzz__ca(void)
{
    static EVP_PKEY *ca;
    if (!ca)
        ca = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    return ca;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > SSH_PUBKEY_LINE_MAX + 16)
        return 0;
    char *in = malloc(size ? size : 1); /* exact size, no NUL: ASan sees any over-read */
    if (!in)
        abort();
    memcpy(in, data, size);
    struct ssh_pubkey k;
    const char *why = NULL;
    enum ssh_parse p = ssh_pubkey_parse(in, size, &k, &why);
    uint64_t vb;
    (void)ssh_cert_valid_before(in, size, &vb);
    if (p != SSH_PK_OK) {
        if (!why)
            abort();
    } else {
        const char *name = k.type == SSH_KEY_ED25519 ? "ssh-ed25519" : "ecdsa-sha2-nistp256";
        size_t nl = strlen(name);
        if ((k.type != SSH_KEY_ED25519 && k.type != SSH_KEY_ECDSA_P256) || k.blob_len > sizeof k.blob ||
            k.blob_len < 4 + nl || k.blob[3] != nl || memcmp(k.blob + 4, name, nl))
            abort();
        char fp[SSH_FINGERPRINT_LEN];
        ssh_pubkey_fingerprint(&k, fp);
        if (strncmp(fp, "SHA256:", 7) || strlen(fp) != 50)
            abort();
        const char *names[] = { "root" };
        struct ssh_cert_req req = { .key = &k, .serial = 1, .key_id = "fuzz", .principals = names,
                                    .nprincipals = 1, .valid_after = 10, .valid_before = 20 };
        char *cert = ssh_cert_sign(&req, fuzz__ca(), "fuzz");
        if (!cert || ssh_cert_valid_before(cert, strlen(cert), &vb) != 0 || vb != 20)
            abort();
        free(cert);
    }
    free(in);
    return 0;
}
