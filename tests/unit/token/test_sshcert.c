/* Unit tests of src/token/sshcert.c: the public key line a client sends (strict: only
 * ssh-ed25519 and ecdsa-sha2-nistp256, exactly one key of the type the line names), the
 * fingerprint as ssh-keygen prints it, principal templates (an unsafe expansion dropped), and a
 * certificate signed (by a CA of token/sshca.c) and read back. (ssh-keygen and sshd read certificates in
 * tests/blackbox/test_ssh_certs.py.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "token/sshca.h"
#include "token/sshcert.h"

#include <openssl/rsa.h>

#include <stdlib.h>
#include <string.h>

#include "../unit.h"

/* made with ssh-keygen -t ed25519 / -t ecdsa -b 256; fingerprints from ssh-keygen -l */
#define ED_LINE "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGj8PBKEd9CzyfDV+wTsBfrdbGxL7eTKRtVPNFMyQHll me@host"
#define ED_FP "SHA256:NMR+twGS/MOxhNQNS8iYVp5996lgBgEPUnw5nZu6eaQ"
#define EC_B64 "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBBErX8T4MPIn5HFZhX3EhfINPwgHBxfkTcN3265UTgDaJdEoPJxfe9CL19XHsH3GAudkQwBX5CJYMg/VURR2mCA="
#define EC_FP "SHA256:vXcILKWWv00NgeNX2kBPtXl1CIxme68Acoud471lfpA"

static enum ssh_parse parse(const char *line, struct ssh_pubkey *k)
{
    const char *why = NULL;
    enum ssh_parse p = ssh_pubkey_parse(line, strlen(line), k, &why);
    if (p != SSH_PK_OK)
        assert_non_null(why);
    return p;
}

static void test_parse_accepts(void **state)
{
    (void)state;
    struct ssh_pubkey k;
    char fp[SSH_FINGERPRINT_LEN];
    const char *ed[] = { ED_LINE, (ED_LINE "\n"), (ED_LINE "\r\n"), ("  " ED_LINE),
                         "ssh-ed25519\tAAAAC3NzaC1lZDI1NTE5AAAAIGj8PBKEd9CzyfDV+wTsBfrdbGxL7eTKRtVPNFMyQHll",
                         "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGj8PBKEd9CzyfDV+wTsBfrdbGxL7eTKRtVPNFMyQHll a comment with spaces" };
    for (size_t i = 0; i < sizeof ed / sizeof *ed; i++) {
        assert_int_equal(parse(ed[i], &k), SSH_PK_OK);
        assert_int_equal(k.type, SSH_KEY_ED25519);
        assert_int_equal(k.blob_len, 51);
        ssh_pubkey_fingerprint(&k, fp);
        assert_string_equal(fp, ED_FP);
    }
    assert_int_equal(parse("ecdsa-sha2-nistp256 " EC_B64, &k), SSH_PK_OK);
    assert_int_equal(k.type, SSH_KEY_ECDSA_P256);
    ssh_pubkey_fingerprint(&k, fp);
    assert_string_equal(fp, EC_FP);
}

static void test_parse_unsupported(void **state)
{
    (void)state;
    struct ssh_pubkey k;
    const char *v[] = { "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== x", "ssh-dss AAAA", "ecdsa-sha2-nistp384 AAAA",
                        "ecdsa-sha2-nistp521 AAAA", "sk-ssh-ed25519@openssh.com AAAA",
                        "sk-ecdsa-sha2-nistp256@openssh.com AAAA", "ssh-ed25519-cert-v01@openssh.com AAAA",
                        "ecdsa-sha2-nistp256-cert-v01@openssh.com AAAA" };
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        if (parse(v[i], &k) != SSH_PK_UNSUPPORTED)
            fail_msg("not refused as unsupported: %s", v[i]);
}

static void test_parse_malformed(void **state)
{
    (void)state;
    struct ssh_pubkey k;
    char big[SSH_PUBKEY_LINE_MAX + 200];
    snprintf(big, sizeof big, "%s", ED_LINE " ");
    memset(big + strlen(big), 'x', SSH_PUBKEY_LINE_MAX);
    big[sizeof big - 1] = '\0';
    /* an ed25519 blob with a 33-byte key; one with a trailing byte; the type string differing */
    const char *v[] = {
        "", " ", "\n", "ssh-ed25519", "ssh-ed25519 ", "hello world",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGj8PBKEd9CzyfDV+wTsBfrdbGxL7eTKRtVPNFMyQHl", /* bad padding */
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGj8PBKEd9CzyfDV+wTsBfrdbGxL7eTKRtVPNFMyQHll=",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGj8PBKEd9CzyfDV+wTsBfrdbGxL7eTKRtVPNFMyQHllAA==",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIWj8PBKEd9CzyfDV+wTsBfrdbGxL7eTKRtVPNFMyQHllAA==",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE4AAAAIGj8PBKEd9CzyfDV+wTsBfrdbGxL7eTKRtVPNFMyQHll",
        "ecdsa-sha2-nistp256 AAAAC3NzaC1lZDI1NTE5AAAAIGj8PBKEd9CzyfDV+wTsBfrdbGxL7eTKRtVPNFMyQHll",
        ("ssh-ed25519 " EC_B64),
        /* the P-256 point's last byte changed: not on the curve */
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBBErX8T4MPIn5HFZhX3EhfINPwgHBxfkTcN3265UTgDaJdEoPJxfe9CL19XHsH3GAudkQwBX5CJYMg/VURR2mCE=",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGj8PBKEd9CzyfDV+wTsBfrdbGxL7eTKRtVPNFMyQHll\x01",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGj8PBKEd9CzyfDV+wTsBfrdbGxL7eTKRtVPNFMyQHll x\ny",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA IGj8PBKEd9CzyfDV+wTsBfrdbGxL7eTKRtVPNFMyQHll",
        big,
    };
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        if (parse(v[i], &k) != SSH_PK_MALFORMED)
            fail_msg("not refused as malformed: [%zu] %.80s", i, v[i]);
    /* a NUL inside the line */
    const char nul[] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGj8PBKEd9CzyfDV+wTsBfrdbGxL7eTKRtVPNFMyQHll\0x";
    const char *why;
    assert_int_equal(ssh_pubkey_parse(nul, sizeof nul - 1, &k, &why), SSH_PK_MALFORMED);
}

static void test_principals_expand(void **state)
{
    (void)state;
    char *out[8];
    size_t n = 0;
    const char *t[] = { "{email_local}", "{email}", "ops", "u-{email_local}", "{service_token}", "ops",
                        "svc-{service_token}" };
    assert_int_equal(ssh_principals_expand(t, 7, "alice@corp.com", NULL, out, &n, 8), 0);
    assert_int_equal(n, 4);
    assert_string_equal(out[0], "alice");
    assert_string_equal(out[1], "alice@corp.com");
    assert_string_equal(out[2], "ops");
    assert_string_equal(out[3], "u-alice");
    for (size_t i = 0; i < n; i++)
        free(out[i]);
    /* an unsafe local part is dropped, the literal kept; the cap holds */
    n = 0;
    assert_int_equal(ssh_principals_expand(t, 7, "o'hara@corp.com", NULL, out, &n, 8), 0);
    assert_int_equal(n, 1);
    assert_string_equal(out[0], "ops");
    free(out[0]);
    n = 0;
    assert_int_equal(ssh_principals_expand(t, 7, NULL, "deploy", out, &n, 2), 0);
    assert_int_equal(n, 2);
    assert_string_equal(out[0], "ops");
    assert_string_equal(out[1], "deploy");
    free(out[0]);
    free(out[1]);
}

static void test_sign_and_read_back(void **state)
{
    (void)state;
    char dir[64];
    assert_int_equal(unit_tmpdir(dir, "sshcert"), 0);
    char *err = NULL;
    assert_null(sshca_load(dir, "app", false, &err));
    free(err);
    err = NULL;
    EVP_PKEY *ca = sshca_load(dir, "app", true, &err);
    assert_non_null(ca);
    EVP_PKEY *again = sshca_load(dir, "app", true, &err);
    char *l1 = ssh_ed25519_pubkey_line(ca, "latch-ca:app"), *l2 = ssh_ed25519_pubkey_line(again, "x");
    assert_non_null(l1);
    assert_memory_equal(l1, l2, 80); /* the same CA: made once */
    assert_int_equal(strncmp(l1, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", 37), 0);
    struct ssh_pubkey k;
    assert_int_equal(parse(ED_LINE, &k), SSH_PK_OK);
    const char *names[] = { "root", "alice" };
    struct ssh_cert_req req = { .key = &k, .serial = 7, .key_id = "alice@corp.com", .principals = names,
                                .nprincipals = 2, .valid_after = 1000, .valid_before = 1300, .permit_pty = true };
    char *cert = ssh_cert_sign(&req, ca, "alice@corp.com");
    assert_non_null(cert);
    assert_int_equal(strncmp(cert, "ssh-ed25519-cert-v01@openssh.com AAAA", 37), 0);
    uint64_t vb = 0;
    assert_int_equal(ssh_cert_valid_before(cert, strlen(cert), &vb), 0);
    assert_int_equal(vb, 1300);
    assert_int_equal(ssh_cert_valid_before(ED_LINE, strlen(ED_LINE), &vb), -1);
    /* refused: no principal, an unsafe one, an empty validity, an RSA "CA" */
    const char *bad[] = { "a,b" };
    struct ssh_cert_req r2 = req;
    r2.nprincipals = 0;
    assert_null(ssh_cert_sign(&r2, ca, NULL));
    r2 = req;
    r2.principals = bad;
    r2.nprincipals = 1;
    assert_null(ssh_cert_sign(&r2, ca, NULL));
    r2 = req;
    r2.valid_before = r2.valid_after;
    assert_null(ssh_cert_sign(&r2, ca, NULL));
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    assert_null(ssh_cert_sign(&req, rsa, NULL));
    assert_null(ssh_ed25519_pubkey_line(rsa, NULL));
    EVP_PKEY_free(rsa);
    free(cert);
    free(l1);
    free(l2);
    EVP_PKEY_free(ca);
    EVP_PKEY_free(again);
    unit_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts),      cmocka_unit_test(test_parse_unsupported),
        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_principals_expand),  cmocka_unit_test(test_sign_and_read_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
