/* Unit tests of the TLS contexts (src/tls/tls.c) without a network: handshakes between a
 * listener context and an origin context over a socketpair. SNI picks the certificate whose
 * names cover the requested host (a wildcard included), the first certificate otherwise or
 * without SNI; ALPN settles on http/1.1; an origin context that verifies accepts the
 * certificate its ca_file vouches for under the right name and refuses it under another; data
 * crosses io_writev/io_read both ways. And a listener's bad files are all reported, each as
 * "FILE:LINE:COL: 'key': …" at the key that names it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "config/config.h"
#include "tls/tls.h"

#include "../unit.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char g_dir[64];
static char g_path[6][128]; /* a.crt a.key b.crt b.key c.key (another key) garbage.pem */
enum { A_CRT, A_KEY, B_CRT, B_KEY, C_KEY, JUNK };

/* A self-signed P-256 certificate for `cn` with subjectAltName `san`. */
static void make_cert(const char *cn, const char *san, const char *crt, const char *key)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    assert_non_null(pk);
    X509 *x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365);
    X509_set_pubkey(x, pk);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
    assert_non_null(ext);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
    FILE *f = fopen(crt, "w");
    PEM_write_X509(f, x);
    fclose(f);
    f = fopen(key, "w");
    PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(pk);
}

static int group_setup(void **state)
{
    if (unit_tmpdir(g_dir, "tls") != 0)
        return -1;
    static const char *const names[] = { "a.crt", "a.key", "b.crt", "b.key", "c.key", "junk.pem" };
    for (int i = 0; i < 6; i++)
        snprintf(g_path[i], sizeof g_path[i], "%s/%s", g_dir, names[i]);
    make_cert("a.example.test", "DNS:a.example.test", g_path[A_CRT], g_path[A_KEY]);
    make_cert("b.example.test", "DNS:b.example.test,DNS:*.b.example.test", g_path[B_CRT], g_path[B_KEY]);
    char unused[160];
    snprintf(unused, sizeof unused, "%s/c.crt", g_dir);
    make_cert("c.example.test", "DNS:c.example.test", unused, g_path[C_KEY]);
    FILE *f = fopen(g_path[JUNK], "w");
    fputs("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    return 0;
}

static int group_teardown(void **state)
{
    return unit_rmtree(g_dir);
}

static struct tls_server *server(struct tls_cert *certs, size_t n, struct config_errors *errs)
{
    struct listener_cfg l = { .address = "127.0.0.1:8443", .certs = certs, .ncerts = n,
                              .pos = { 3, 5 } };
    return tls_server_new(&l, "latch.yaml", errs);
}

/* Runs both handshakes to the end over a socketpair: 1 when both succeeded. The server's
 * certificate CN in *cn. */
static int handshake(struct tls_server *ts, SSL_CTX *cctx, const char *host, bool verify, char cn[64],
                     char *alpn)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    SSL *s = tls_server_accept(ts, sv[0]);
    SSL *c = tls_origin_connect(cctx, sv[1], host, verify);
    assert_non_null(s);
    assert_non_null(c);
    int sdone = 0, cdone = 0, failed = 0;
    for (int i = 0; i < 1000 && !failed && !(sdone && cdone); i++) {
        if (!cdone) {
            int r = SSL_do_handshake(c);
            int e = SSL_get_error(c, r);
            cdone = r == 1;
            failed |= r != 1 && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE;
        }
        if (!sdone) {
            int r = SSL_do_handshake(s);
            int e = SSL_get_error(s, r);
            sdone = r == 1;
            failed |= r != 1 && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE;
        }
    }
    ERR_clear_error();
    int ok = sdone && cdone && !failed;
    cn[0] = 0;
    if (ok) {
        X509 *peer = SSL_get1_peer_certificate(c);
        X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, 64);
        X509_free(peer);
        const unsigned char *p;
        unsigned n;
        SSL_get0_alpn_selected(c, &p, &n);
        snprintf(alpn, 16, "%.*s", (int)n, (const char *)p);
        /* data both ways through io_writev / io_read */
        struct iovec iov[3] = { { "GET / ", 6 }, { "", 0 }, { "HTTP/1.1\r\n", 10 } };
        assert_int_equal(io_writev(sv[1], c, iov, 3), 16);
        char buf[64];
        ssize_t got = 0;
        for (int i = 0; i < 100 && got < 16; i++) {
            ssize_t r = io_read(sv[0], s, buf + got, sizeof buf - (size_t)got);
            assert_true(r > 0 || r == -EAGAIN);
            got += r > 0 ? r : 0;
        }
        assert_int_equal(got, 16);
        assert_memory_equal(buf, "GET / HTTP/1.1\r\n", 16);
        assert_int_equal(io_read(sv[0], s, buf, sizeof buf), -EAGAIN); /* nothing more yet */
        SSL_shutdown(c);
        ssize_t r = -EAGAIN;
        for (int i = 0; i < 100 && r == -EAGAIN; i++)
            r = io_read(sv[0], s, buf, sizeof buf);
        assert_int_equal(r, 0); /* an orderly close reads as EOF */
    }
    SSL_free(s);
    SSL_free(c);
    close(sv[0]);
    close(sv[1]);
    return ok;
}

static SSL_CTX *origin_ctx(const char *ca_file, bool verify)
{
    struct origin o = { .url = "https://a.example.test", .ca_file = (char *)ca_file, .tls_verify = verify };
    struct config_errors errs = { 0 };
    SSL_CTX *ctx = tls_origin_ctx_new(&o, (struct config_pos){ 9, 3 }, "latch.yaml", &errs);
    assert_non_null(ctx);
    assert_int_equal(errs.n, 0);
    return ctx;
}

static void sni_picks_the_certificate(void **state)
{
    struct tls_cert certs[2] = { { g_path[A_CRT], g_path[A_KEY], { 4, 9 }, { 5, 9 } },
                                 { g_path[B_CRT], g_path[B_KEY], { 6, 9 }, { 7, 9 } } };
    struct config_errors errs = { 0 };
    struct tls_server *ts = server(certs, 2, &errs);
    assert_non_null(ts);
    assert_int_equal(errs.n, 0);
    SSL_CTX *any = origin_ctx(NULL, false);
    char cn[64], alpn[16];
    static const struct {
        const char *host, *cn;
    } cases[] = {
        { "a.example.test", "a.example.test" }, { "b.example.test", "b.example.test" },
        { "x.b.example.test", "b.example.test" }, /* the wildcard */
        { "x.y.b.example.test", "a.example.test" }, /* a wildcard covers one label */
        { "unknown.example", "a.example.test" },  /* no match: the first */
        { "127.0.0.1", "a.example.test" },        /* an IP sends no SNI */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(handshake(ts, any, cases[i].host, false, cn, alpn), 1);
        if (strcmp(cn, cases[i].cn))
            fail_msg("SNI %s got %s, wanted %s", cases[i].host, cn, cases[i].cn);
        assert_string_equal(alpn, "http/1.1");
    }
    SSL_CTX_free(any);
    tls_server_free(ts);
}

static void origin_verification(void **state)
{
    struct tls_cert certs[2] = { { g_path[A_CRT], g_path[A_KEY], { 4, 9 }, { 5, 9 } },
                                 { g_path[B_CRT], g_path[B_KEY], { 6, 9 }, { 7, 9 } } };
    struct config_errors errs = { 0 };
    struct tls_server *ts = server(certs, 2, &errs);
    assert_non_null(ts);
    SSL_CTX *trust_a = origin_ctx(g_path[A_CRT], true);
    char cn[64], alpn[16];
    assert_int_equal(handshake(ts, trust_a, "a.example.test", true, cn, alpn), 1);
    assert_int_equal(handshake(ts, trust_a, "b.example.test", true, cn, alpn), 0); /* not vouched for */
    assert_int_equal(handshake(ts, trust_a, "evil.example", true, cn, alpn), 0);   /* A's cert, wrong name */
    assert_int_equal(handshake(ts, trust_a, "127.0.0.1", true, cn, alpn), 0);      /* no IP in it */
    assert_int_equal(handshake(ts, trust_a, "evil.example", false, cn, alpn), 1);  /* verify: false */
    SSL_CTX_free(trust_a);
    tls_server_free(ts);
}

static bool has_error(const struct config_errors *errs, const char *prefix, const char *part)
{
    for (size_t i = 0; i < errs->n; i++)
        if (!strncmp(errs->lines[i], prefix, strlen(prefix)) && strstr(errs->lines[i], part))
            return true;
    return false;
}

static void bad_files_reported(void **state)
{
    char missing[160];
    snprintf(missing, sizeof missing, "%s/missing.crt", g_dir);
    /* every problem, each at its own key: a missing certificate, a key of another certificate,
     * a file that holds no certificate, a directory */
    struct tls_cert certs[4] = { { missing, g_path[A_KEY], { 4, 9 }, { 5, 9 } },
                                 { g_path[B_CRT], g_path[C_KEY], { 6, 9 }, { 7, 9 } },
                                 { g_path[JUNK], g_path[A_KEY], { 8, 9 }, { 9, 9 } },
                                 { g_path[A_CRT], g_dir, { 10, 9 }, { 11, 9 } } };
    struct config_errors errs = { 0 };
    assert_null(server(certs, 4, &errs));
    assert_true(has_error(&errs, "latch.yaml:4:9: 'cert': cannot read ", missing));
    assert_true(has_error(&errs, "latch.yaml:7:9: 'key': ", "is not the private key of the certificate"));
    assert_true(has_error(&errs, "latch.yaml:8:9: 'cert': ", "holds no PEM certificate"));
    assert_true(has_error(&errs, "latch.yaml:11:9: 'key': cannot read ", "directory"));
    assert_int_equal(errs.n, 4);
    config_errors_clear(&errs);
    /* an origin's ca_file, at its own position */
    struct origin o = { .url = "https://x", .ca_file = missing, .ca_file_pos = { 12, 7 }, .tls_verify = true };
    assert_null(tls_origin_ctx_new(&o, (struct config_pos){ 2, 2 }, "latch.yaml", &errs));
    assert_true(has_error(&errs, "latch.yaml:12:7: 'ca_file': cannot read ", missing));
    config_errors_clear(&errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sni_picks_the_certificate),
        cmocka_unit_test(origin_verification),
        cmocka_unit_test(bad_files_reported),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
