/* OpenSSL contexts and non-blocking I/O of tls.h. */
#include "tls/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

struct tls_server {
    size_t n;
    SSL_CTX **ctx; /* one per certificate; ctx[0] is the default and the one accepted on */
    X509 **leaf;
};

static int tls__ex_index = -1;

const char *tls_last_error(void)
{
    static _Thread_local char msg[256];
    unsigned long e = ERR_get_error();
    if (!e)
        return "unknown TLS error";
    ERR_error_string_n(e, msg, sizeof msg);
    ERR_clear_error();
    return msg;
}

/* Where the errors of one load go: the configuration file and its error lines. */
struct tls__report {
    const char *file;
    struct config_errors *errs;
};

/* "'key': cannot read FILE: reason" at pos when the file named by the configuration key cannot
 * be opened or is a directory (OpenSSL's words for that are "system library::No such file or
 * directory"); 0 when it can be read. */
static int tls__readable(struct tls__report *r, const char *key, const char *path, struct config_pos pos)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    int e = fd < 0 ? errno : fstat(fd, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
    if (fd >= 0)
        close(fd);
    if (e)
        config_errors_add(r->errs, r->file, pos, "'%s': cannot read %s: %s", key, path, strerror(e));
    return e ? -1 : 0;
}

/* "'key': FILE holds no WHAT (OpenSSL's reason)" after OpenSSL refused a readable file. */
static void tls__unusable(struct tls__report *r, const char *key, const char *path, const char *what,
                          struct config_pos pos)
{
    unsigned long e = ERR_peek_error();
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    config_errors_add(r->errs, r->file, pos, "'%s': %s holds no %s (%s)", key, path, what,
                      why ? why : tls_last_error());
    ERR_clear_error();
}

/* An encrypted key would make OpenSSL ask for its passphrase on the terminal: refused instead. */
static int tls__no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return 0;
}

/* ALPN: h2 first where the listener offers it (`http2`, on by default), else http/1.1; a
 * client offering neither gets no ALPN and speaks HTTP/1.1. */
static int tls__alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                     const unsigned char *in, unsigned inlen, void *arg)
{
    for (unsigned i = 0; arg && i < inlen; i += 1u + in[i]) {
        if (in[i] == 2 && i + 3 <= inlen && !memcmp(in + i + 1, "h2", 2)) {
            *out = in + i + 1;
            *outlen = 2;
            return SSL_TLSEXT_ERR_OK;
        }
    }
    for (unsigned i = 0; i < inlen; i += 1u + in[i]) {
        if (in[i] == 8 && i + 9 <= inlen && !memcmp(in + i + 1, "http/1.1", 8)) {
            *out = in + i + 1;
            *outlen = 8;
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

/* SNI (RFC 6066 §3): picks the first certificate whose names cover the requested host. */
static int tls__sni(SSL *ssl, int *alert, void *arg)
{
    struct tls_server *ts = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name)
        return SSL_TLSEXT_ERR_OK;
    for (size_t i = 0; i < ts->n; i++) {
        if (X509_check_host(ts->leaf[i], name, 0, 0, NULL) == 1) {
            if (i > 0)
                SSL_set_SSL_CTX(ssl, ts->ctx[i]);
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_OK; /* the default certificate */
}

static int tls__verify_any(int ok, X509_STORE_CTX *x)
{
    return ok;
}

/* One certificate of a listener: every problem of its cert, its key and (report_ca) the
 * listener's client_ca is reported, not only the first. */
static SSL_CTX *tls__server_ctx(const struct tls_cert *c, const struct listener_cfg *l, bool report_ca,
                                struct tls__report *r)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        config_errors_add(r->errs, r->file, c->cert_pos, "cannot create a TLS context: %s",
                          tls_last_error());
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_default_passwd_cb(ctx, tls__no_passphrase);
    /* the key first: loaded after the certificate, a key of another certificate would be
     * refused as unreadable ("key values mismatch") rather than named for what it is below */
    bool key = tls__readable(r, "key", c->key, c->key_pos) == 0;
    if (key && SSL_CTX_use_PrivateKey_file(ctx, c->key, SSL_FILETYPE_PEM) != 1) {
        tls__unusable(r, "key", c->key, "unencrypted PEM private key", c->key_pos);
        key = false;
    }
    bool cert = tls__readable(r, "cert", c->cert, c->cert_pos) == 0;
    if (cert && SSL_CTX_use_certificate_chain_file(ctx, c->cert) != 1) {
        tls__unusable(r, "cert", c->cert, "PEM certificate", c->cert_pos);
        cert = false;
    }
    bool ok = cert && key;
    if (ok && SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        config_errors_add(r->errs, r->file, c->key_pos, "'key': %s is not the private key of the "
                          "certificate in %s", c->key, c->cert);
        ok = false;
    }
    SSL_CTX_set_alpn_select_cb(ctx, tls__alpn, l->http2 == LISTENER_H2_ALPN ? (void *)1 : NULL);
    const char *client_ca = l->client_ca;
    if (client_ca) {
        struct tls__report quiet = { r->file, NULL }, *rr = report_ca ? r : &quiet;
        struct config_errors none = { 0 };
        quiet.errs = &none;
        if (tls__readable(rr, "client_ca", client_ca, l->client_ca_pos) != 0) {
            ok = false;
        } else if (SSL_CTX_load_verify_locations(ctx, client_ca, NULL) != 1) {
            tls__unusable(rr, "client_ca", client_ca, "PEM certificate", l->client_ca_pos);
            ok = false;
        }
        config_errors_clear(&none);
        /* Ask for a certificate, do not require one: policies decide (certificate selector). */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls__verify_any);
        SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(client_ca));
    }
    if (!ok) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

struct tls_server *tls_server_new(const struct listener_cfg *l, const char *file,
                                  struct config_errors *errs)
{
    struct tls__report r = { file, errs };
    struct tls_server *ts = calloc(1, sizeof *ts);
    if (ts) {
        ts->ctx = calloc(l->ncerts, sizeof *ts->ctx);
        ts->leaf = calloc(l->ncerts, sizeof *ts->leaf);
    }
    if (!ts || !ts->ctx || !ts->leaf) {
        config_errors_add(errs, file, l->pos, "out of memory");
        tls_server_free(ts);
        return NULL;
    }
    if (tls__ex_index < 0)
        tls__ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    bool ok = true;
    for (size_t i = 0; i < l->ncerts; i++) {
        ts->ctx[i] = tls__server_ctx(&l->certs[i], l, i == 0, &r);
        ts->n = i + 1;
        if (!ts->ctx[i]) {
            ok = false;
            continue;
        }
        ts->leaf[i] = SSL_CTX_get0_certificate(ts->ctx[i]);
        SSL_CTX_set_tlsext_servername_callback(ts->ctx[i], tls__sni);
        SSL_CTX_set_tlsext_servername_arg(ts->ctx[i], ts);
    }
    if (!ok) {
        tls_server_free(ts);
        return NULL;
    }
    return ts;
}

void tls_server_free(struct tls_server *ts)
{
    if (!ts)
        return;
    for (size_t i = 0; i < ts->n; i++)
        SSL_CTX_free(ts->ctx[i]);
    free(ts->ctx);
    free(ts->leaf);
    free(ts);
}

SSL *tls_server_accept(struct tls_server *ts, int fd)
{
    SSL *ssl = SSL_new(ts->ctx[0]);
    if (!ssl)
        return NULL;
    SSL_set_fd(ssl, fd);
    SSL_set_accept_state(ssl);
    return ssl;
}

SSL_CTX *tls_origin_ctx_new(const struct origin *o, struct config_pos at, const char *file,
                            struct config_errors *errs)
{
    struct tls__report r = { file, errs };
    struct config_pos pos = o->ca_file ? o->ca_file_pos : at;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        config_errors_add(errs, file, pos, "cannot create a TLS context for %s: %s", o->url,
                          tls_last_error());
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (o->tls_verify) {
        if (o->ca_file && tls__readable(&r, "ca_file", o->ca_file, pos) != 0) {
            SSL_CTX_free(ctx);
            return NULL;
        }
        int ok = o->ca_file ? SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL)
                            : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            if (o->ca_file)
                tls__unusable(&r, "ca_file", o->ca_file, "PEM certificate", pos);
            else
                config_errors_add(errs, file, pos, "cannot load the system's certificate authorities "
                                  "for %s: %s", o->url, tls_last_error());
            SSL_CTX_free(ctx);
            return NULL;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    static const unsigned char alpn[] = "\x08http/1.1", alpn_h2[] = "\x02h2";
    if (o->h2) /* h2:// speaks HTTP/2 only: the handshake's ALPN must agree (proxy/h2origin.c) */
        SSL_CTX_set_alpn_protos(ctx, alpn_h2, sizeof alpn_h2 - 1);
    else
        SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
    return ctx;
}

static bool tls__is_ip(const char *host)
{
    unsigned char tmp[16];
    return inet_pton(AF_INET, host, tmp) == 1 || inet_pton(AF_INET6, host, tmp) == 1;
}

SSL *tls_origin_connect(SSL_CTX *ctx, int fd, const char *host, bool verify)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl)
        return NULL;
    SSL_set_fd(ssl, fd);
    SSL_set_connect_state(ssl);
    bool ip = tls__is_ip(host);
    if (!ip)
        SSL_set_tlsext_host_name(ssl, host);
    if (verify) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
        if (ip)
            X509_VERIFY_PARAM_set1_ip_asc(vp, host);
        else
            SSL_set1_host(ssl, host);
    }
    return ssl;
}

static ssize_t tls__err(SSL *ssl, int r)
{
    switch (SSL_get_error(ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        return errno ? -errno : -EPIPE;
    default:
        ERR_clear_error();
        return -EIO;
    }
}

ssize_t io_read(int fd, SSL *ssl, void *p, size_t n)
{
    if (ssl) {
        ERR_clear_error();
        int r = SSL_read(ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
        return r > 0 ? r : tls__err(ssl, r);
    }
    for (;;) {
        ssize_t r = read(fd, p, n);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

ssize_t io_writev(int fd, SSL *ssl, const struct iovec *iov, int iovcnt)
{
    if (ssl) {
        ssize_t total = 0;
        for (int i = 0; i < iovcnt; i++) {
            if (iov[i].iov_len == 0)
                continue;
            ERR_clear_error();
            int r = SSL_write(ssl, iov[i].iov_base, (int)iov[i].iov_len);
            if (r <= 0) {
                ssize_t e = tls__err(ssl, r);
                return total > 0 ? total : (e == 0 ? -EPIPE : e);
            }
            total += r;
            if ((size_t)r < iov[i].iov_len)
                break;
        }
        return total;
    }
    struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
    for (;;) {
        ssize_t r = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}
