/* TLS with OpenSSL 3: listener contexts (several certificates chosen by SNI, TLS 1.2+, ALPN
 * http/1.1, optional client certificates) and origin contexts (verification on by default). */
#ifndef LATCH_TLS_H
#define LATCH_TLS_H

#include "config/config.h"

#include <openssl/ssl.h>
#include <sys/types.h>
#include <sys/uio.h>

struct tls_server;

/* Loads every certificate of the listener, its key (which must be the certificate's, and not
 * encrypted) and its client_ca. NULL after adding to errs, at the key that names each bad file,
 * "FILE:LINE:COL: 'cert': cannot read PATH: reason", "… 'key': PATH is not the private key of
 * the certificate in PATH" and the like (FILE: the configuration's path). Every problem is
 * reported, not only the first. */
struct tls_server *tls_server_new(const struct listener_cfg *l, const char *file,
                                  struct config_errors *errs);
void tls_server_free(struct tls_server *ts);
SSL *tls_server_accept(struct tls_server *ts, int fd);

/* Client context for an https origin: system store or ca_file; verify unless opted out. NULL
 * after adding an error to errs as tls_server_new, at ca_file's position (else at `at`). */
SSL_CTX *tls_origin_ctx_new(const struct origin *o, struct config_pos at, const char *file,
                            struct config_errors *errs);
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
