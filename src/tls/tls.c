/* OpenSSL contexts and non-blocking I/O of tls.h. */
#include "tls/tls.h"

#include <errno.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

static char *tls__errf(const char *what, const char *file)
{
    char *s = NULL;
    if (asprintf(&s, "%s %s: %s", what, file, tls_last_error()) < 0)
        return NULL;
    return s;
}

/* ALPN: we speak http/1.1 only; a client offering only h2 gets no ALPN and falls back. */
static int tls__alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                     const unsigned char *in, unsigned inlen, void *arg)
{
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

static SSL_CTX *tls__server_ctx(const struct tls_cert *c, const char *client_ca, char **err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        *err = tls__errf("cannot create TLS context for", c->cert);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, c->cert) != 1) {
        *err = tls__errf("cannot load certificate", c->cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, c->key, SSL_FILETYPE_PEM) != 1) {
        *err = tls__errf("cannot load key", c->key);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        *err = tls__errf("key does not match certificate", c->cert);
        goto fail;
    }
    SSL_CTX_set_alpn_select_cb(ctx, tls__alpn, NULL);
    if (client_ca) {
        if (SSL_CTX_load_verify_locations(ctx, client_ca, NULL) != 1) {
            *err = tls__errf("cannot load client CA", client_ca);
            goto fail;
        }
        /* Ask for a certificate, do not require one: policies decide (certificate selector). */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls__verify_any);
        SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(client_ca));
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

struct tls_server *tls_server_new(const struct listener_cfg *l, char **err)
{
    struct tls_server *ts = calloc(1, sizeof *ts);
    if (!ts)
        return NULL;
    ts->ctx = calloc(l->ncerts, sizeof *ts->ctx);
    ts->leaf = calloc(l->ncerts, sizeof *ts->leaf);
    if (!ts->ctx || !ts->leaf)
        goto fail;
    if (tls__ex_index < 0)
        tls__ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    for (size_t i = 0; i < l->ncerts; i++) {
        ts->ctx[i] = tls__server_ctx(&l->certs[i], l->client_ca, err);
        if (!ts->ctx[i])
            goto fail;
        ts->n = i + 1;
        ts->leaf[i] = SSL_CTX_get0_certificate(ts->ctx[i]);
        SSL_CTX_set_tlsext_servername_callback(ts->ctx[i], tls__sni);
        SSL_CTX_set_tlsext_servername_arg(ts->ctx[i], ts);
    }
    return ts;
fail:
    tls_server_free(ts);
    return NULL;
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

SSL_CTX *tls_origin_ctx_new(const struct origin *o, char **err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        *err = tls__errf("cannot create TLS context for", o->url);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (o->tls_verify) {
        int ok = o->ca_file ? SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL)
                            : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            *err = tls__errf("cannot load origin CA", o->ca_file ? o->ca_file : "(system)");
            SSL_CTX_free(ctx);
            return NULL;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    static const unsigned char alpn[] = "\x08http/1.1";
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
