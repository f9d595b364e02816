/* TLS with OpenSSL 3: listener contexts (several certificates chosen by SNI, TLS 1.2+, ALPN
 * http/1.1, optional client certificates) and origin contexts (verification on by default). */
#ifndef LATCH_TLS_H
#define LATCH_TLS_H

#include "config/config-t.h"

#include <openssl/ssl.h>
#include <sys/types.h>
#include <sys/uio.h>

struct tls_server;

/* Loads every certificate of the listener. NULL with *err (malloc'd) naming the file. */
struct tls_server *tls_server_new(const struct listener_cfg *l, char **err);
void tls_server_free(struct tls_server *ts);
SSL *tls_server_accept(struct tls_server *ts, int fd);

/* Client context for an https origin: system store or ca_file; verify unless opted out. */
SSL_CTX *tls_origin_ctx_new(const struct origin *o, char **err);
/* A client session on fd, with SNI and host name verification for `host` (not for IPs' SNI). */
SSL *tls_origin_connect(SSL_CTX *ctx, int fd, const char *host, bool verify);

/* Non-blocking I/O over a plain fd (ssl == NULL) or a TLS session.
 * Returns > 0 bytes, 0 on orderly EOF, -EAGAIN when it would block, another -errno (or -EIO
 * for a TLS failure) when the connection is broken. */
ssize_t io_read(int fd, SSL *ssl, void *p, size_t n);
ssize_t io_writev(int fd, SSL *ssl, const struct iovec *iov, int iovcnt);

/* One line describing the last OpenSSL error (for logs). */
const char *tls_last_error(void);

#endif
