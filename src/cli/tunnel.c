/* `latch tcp` and `latch ssh`: a TCP stream carried to an app's host in a WebSocket (RFC 6455),
 * the client side. The upgrade (`GET` with `Upgrade: websocket`) carries the app's token, or the
 * service token's headers, on every connection; once the gateway answers 101, stdin/stdout (a
 * ProxyCommand) or one accepted connection of a loopback listener is pumped both ways: bytes in
 * masked binary frames up, frames' payloads down, pings answered, a close on end of input. */
#include "cli/cli.h"
#include "http/http.h"
#include "http/ws.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#define TUN_CHUNK 65536            /* bytes read from one side at a time */
#define TUN_HEAD_MAX 16384         /* the gateway's answer to the upgrade, headers included */
#define TUN_CONNECT_S 10           /* one TCP (and TLS) connection attempt */
#define TUN_ANSWER_S 15            /* the gateway's answer to the upgrade */
#define TUN_CLOSE_WAIT_S 10        /* for the gateway's close after ours */
#define TUN_BACKOFF_FIRST_MS 250
#define TUN_BACKOFF_MAX_MS 4000
#define TUN_FRAME_MAX ((uint64_t)1 << 62) /* payloads stream through: no frame is held whole */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Frees a secret string, wiped first. */
static void secret_free(char **s)
{
    if (*s)
        sodium_memzero(*s, strlen(*s));
    free(*s);
    *s = NULL;
}

/* --- OpenSSL, loaded when a tunnel needs it -------------------------------------------------- */

/* libssl (and libcrypto with it) is loaded with dlopen the first time a tunnel opens, as http.c
 * loads libcurl: every other latch command starts without them (they would cost each ~1 ms of
 * relocations). Only these functions are used; OpenSSL's macros are spelled as the calls they
 * stand for (SSL_CTX_ctrl, SSL_ctrl). */
static struct {
    bool loaded;
    const SSL_METHOD *(*client_method)(void);
    SSL_CTX *(*ctx_new)(const SSL_METHOD *);
    void (*ctx_free)(SSL_CTX *);
    long (*ctx_ctrl)(SSL_CTX *, int, long, void *);
    int (*ctx_load_verify)(SSL_CTX *, const char *, const char *);
    int (*ctx_default_paths)(SSL_CTX *);
    void (*ctx_set_verify)(SSL_CTX *, int, SSL_verify_cb);
    SSL *(*ssl_new)(SSL_CTX *);
    void (*ssl_free)(SSL *);
    int (*set_fd)(SSL *, int);
    int (*set_alpn)(SSL *, const unsigned char *, unsigned int);
    long (*ctrl)(SSL *, int, long, void *);
    int (*set1_host)(SSL *, const char *);
    X509_VERIFY_PARAM *(*get0_param)(SSL *);
    int (*param_ip)(X509_VERIFY_PARAM *, const char *);
    int (*connect)(SSL *);
    int (*get_error)(const SSL *, int);
    long (*verify_result)(const SSL *);
    const char *(*verify_string)(long);
    void (*err_clear)(void);
    unsigned long (*err_peek)(void);
    const char *(*err_reason)(unsigned long);
    int (*read)(SSL *, void *, int);
    int (*write)(SSL *, const void *, int);
    int (*pending)(const SSL *);
    int (*digest)(const void *, size_t, unsigned char *, unsigned int *, const EVP_MD *, ENGINE *);
    const EVP_MD *(*sha1)(void);
} ossl;

static bool ossl_load(char *why, size_t cap)
{
    if (ossl.loaded)
        return true;
    void *h = dlopen("libssl.so.3", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(why, cap, "cannot load OpenSSL (install libssl3): %s", dlerror());
        return false;
    }
    struct { void *slot; const char *name; } syms[] = {
        { &ossl.client_method, "TLS_client_method" }, { &ossl.ctx_new, "SSL_CTX_new" },
        { &ossl.ctx_free, "SSL_CTX_free" }, { &ossl.ctx_ctrl, "SSL_CTX_ctrl" },
        { &ossl.ctx_load_verify, "SSL_CTX_load_verify_locations" },
        { &ossl.ctx_default_paths, "SSL_CTX_set_default_verify_paths" },
        { &ossl.ctx_set_verify, "SSL_CTX_set_verify" }, { &ossl.ssl_new, "SSL_new" }, { &ossl.ssl_free, "SSL_free" },
        { &ossl.set_fd, "SSL_set_fd" }, { &ossl.set_alpn, "SSL_set_alpn_protos" }, { &ossl.ctrl, "SSL_ctrl" },
        { &ossl.set1_host, "SSL_set1_host" }, { &ossl.get0_param, "SSL_get0_param" },
        { &ossl.param_ip, "X509_VERIFY_PARAM_set1_ip_asc" }, { &ossl.connect, "SSL_connect" },
        { &ossl.get_error, "SSL_get_error" }, { &ossl.verify_result, "SSL_get_verify_result" },
        { &ossl.verify_string, "X509_verify_cert_error_string" }, { &ossl.err_clear, "ERR_clear_error" },
        { &ossl.err_peek, "ERR_peek_last_error" }, { &ossl.err_reason, "ERR_reason_error_string" },
        { &ossl.read, "SSL_read" }, { &ossl.write, "SSL_write" }, { &ossl.pending, "SSL_pending" },
        { &ossl.digest, "EVP_Digest" }, { &ossl.sha1, "EVP_sha1" },
    };
    for (size_t i = 0; i < sizeof syms / sizeof *syms; i++) {
        void *f = dlsym(h, syms[i].name); /* libcrypto's too: dlsym searches what libssl loaded */
        if (!f) {
            snprintf(why, cap, "OpenSSL lacks %s", syms[i].name);
            return false;
        }
        memcpy(syms[i].slot, &f, sizeof f);
    }
    ossl.loaded = true;
    return true;
}

/* Sec-WebSocket-Accept for a key (RFC 6455 §4.2.2), as ws_accept_key computes it, with the
 * SHA-1 of the OpenSSL loaded here (ws_accept_key would link libcrypto into every latch). */
static bool accept_of(const char *key, char out[29])
{
    char text[64];
    unsigned char md[20];
    unsigned int n = 0;
    int tl = snprintf(text, sizeof text, "%s%s", key, WS_ACCEPT_GUID);
    if (tl < 0 || (size_t)tl >= sizeof text || !ossl.digest(text, (size_t)tl, md, &n, ossl.sha1(), NULL) || n != 20)
        return false;
    sodium_bin2base64(out, 29, md, sizeof md, sodium_base64_VARIANT_ORIGINAL);
    return true;
}

/* --- the connection to the gateway: TCP, or TLS over it ------------------------------------ */

struct tun_gw {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
};

static void gw_close(struct tun_gw *g)
{
    if (g->ssl)
        ossl.ssl_free(g->ssl);
    if (g->ctx)
        ossl.ctx_free(g->ctx);
    if (g->fd >= 0)
        close(g->fd);
    g->ssl = NULL;
    g->ctx = NULL;
    g->fd = -1;
}

enum { IO_AGAIN = -2, IO_ERR = -1 }; /* besides a count (>0) and 0: end of stream */

/* One read or write on the gateway connection without blocking: a count, 0 (end of stream,
 * reads only), IO_AGAIN with *ev the poll events to wait for, or IO_ERR. */
static ssize_t gw_io(struct tun_gw *g, bool write, void *buf, size_t n, short *ev)
{
    if (!g->ssl) {
        ssize_t r = write ? send(g->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT) : recv(g->fd, buf, n, MSG_DONTWAIT);
        if (r >= 0)
            return r;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            *ev = write ? POLLOUT : POLLIN;
            return IO_AGAIN;
        }
        return IO_ERR;
    }
    ossl.err_clear();
    int r = write ? ossl.write(g->ssl, buf, (int)(n > INT32_MAX ? INT32_MAX : n))
                  : ossl.read(g->ssl, buf, (int)(n > INT32_MAX ? INT32_MAX : n));
    if (r > 0)
        return r;
    switch (ossl.get_error(g->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        *ev = POLLIN;
        return IO_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        *ev = POLLOUT;
        return IO_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        return IO_ERR;
    }
}

/* Whether the host is this machine by name: "localhost" and names under .localhost (RFC 6761
 * §6.3), which curl too sends to the loopback address without asking DNS. */
static bool host_is_localhost(const char *host)
{
    size_t n = strlen(host);
    return !strcmp(host, "localhost") || (n > 10 && !strcmp(host + n - 10, ".localhost"));
}

static bool addr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24 == 127;
    return sa->sa_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

/* A TCP connection to host:port within TUN_CONNECT_S; the fd (non-blocking), or -1 with why.
 * *retry: whether the failure is of the kind a restarting gateway gives. */
static int tcp_connect(const char *host, unsigned port, char *why, size_t cap, bool *retry)
{
    char name[256], service[8];
    snprintf(service, sizeof service, "%u", port);
    if (host[0] == '[') /* [::1] */
        snprintf(name, sizeof name, "%.*s", (int)strlen(host) - 2, host + 1);
    else
        snprintf(name, sizeof name, "%s", host_is_localhost(host) ? "localhost" : host);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res = NULL;
    int gr = getaddrinfo(name, service, &hints, &res);
    *retry = false;
    if (gr != 0) {
        snprintf(why, cap, "cannot resolve %s: %s", name, gai_strerror(gr));
        *retry = gr == EAI_AGAIN;
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        if (host_is_localhost(host) && !addr_is_loopback(a->ai_addr))
            continue; /* localhost is the loopback address, whatever /etc/hosts says */
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
            err = errno;
        } else {
            struct pollfd p = { .fd = fd, .events = POLLOUT };
            socklen_t l = sizeof err;
            int pr = poll(&p, 1, TUN_CONNECT_S * 1000);
            if (pr == 0)
                err = ETIMEDOUT;
            else if (pr < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) != 0)
                err = errno;
        }
        if (err) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(why, cap, "cannot connect to %s port %u: %s", name, port, strerror(err ? err : EADDRNOTAVAIL));
        *retry = err == ECONNREFUSED || err == ECONNRESET || err == ETIMEDOUT || err == EHOSTUNREACH ||
                 err == ENETUNREACH || err == ENETDOWN || err == ECONNABORTED;
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* ssh keystrokes go at once */
    return fd;
}

/* TLS over g->fd as latch's own HTTPS requests have it (http.c): the system's CAs, or the
 * LATCH_CA_BUNDLE file instead; the certificate must name the host. 0, or -1 with why. */
static int tls_start(struct tun_gw *g, const char *host, int64_t deadline, char *why, size_t cap)
{
    const char *cab = getenv("LATCH_CA_BUNDLE");
    char name[256];
    bool ip = host[0] == '[';
    snprintf(name, sizeof name, "%.*s", ip ? (int)strlen(host) - 2 : (int)strlen(host), host + (ip ? 1 : 0));
    struct in_addr v4;
    ip = ip || inet_pton(AF_INET, name, &v4) == 1;
    static const unsigned char alpn[] = "\x08http/1.1";
    if (!(g->ctx = ossl.ctx_new(ossl.client_method())) ||
        !ossl.ctx_ctrl(g->ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, NULL) ||
        !(cab && *cab ? ossl.ctx_load_verify(g->ctx, cab, NULL) : ossl.ctx_default_paths(g->ctx))) {
        snprintf(why, cap, "cannot set up TLS%s%s", cab && *cab ? " with LATCH_CA_BUNDLE=" : "", cab && *cab ? cab : "");
        return -1;
    }
    ossl.ctx_set_verify(g->ctx, SSL_VERIFY_PEER, NULL);
    ossl.ctx_ctrl(g->ctx, SSL_CTRL_MODE, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, NULL);
    if (!(g->ssl = ossl.ssl_new(g->ctx)) || !ossl.set_fd(g->ssl, g->fd) || ossl.set_alpn(g->ssl, alpn, sizeof alpn - 1) ||
        (ip ? !ossl.param_ip(ossl.get0_param(g->ssl), name)
            : !ossl.ctrl(g->ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, name) ||
                  !ossl.set1_host(g->ssl, name))) {
        snprintf(why, cap, "cannot set up TLS");
        return -1;
    }
    for (;;) {
        ossl.err_clear();
        int r = ossl.connect(g->ssl);
        if (r == 1)
            return 0;
        int e = ossl.get_error(g->ssl, r);
        int64_t left = deadline - now_ms();
        if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) || left <= 0) {
            long v = ossl.verify_result(g->ssl);
            const char *reason = ossl.err_reason(ossl.err_peek());
            if (v != X509_V_OK)
                snprintf(why, cap, "the TLS certificate of %s is not trusted: %s (a private CA: set LATCH_CA_BUNDLE)",
                         name, ossl.verify_string(v));
            else
                snprintf(why, cap, "TLS with %s failed: %s", name, left <= 0 ? "timed out" : reason ? reason : "closed");
            return -1;
        }
        struct pollfd p = { .fd = g->fd, .events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT };
        poll(&p, 1, (int)left);
    }
}

/* Writes all of buf to the gateway by deadline; 0 or -1. */
static int gw_write_all(struct tun_gw *g, const void *buf, size_t n, int64_t deadline)
{
    const char *p = buf;
    while (n) {
        short ev = 0;
        ssize_t w = gw_io(g, true, (void *)p, n, &ev);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        int64_t left = deadline - now_ms();
        if (w != IO_AGAIN || left <= 0)
            return -1;
        struct pollfd pf = { .fd = g->fd, .events = ev };
        poll(&pf, 1, (int)left);
    }
    return 0;
}

/* --- the upgrade ------------------------------------------------------------------------------ */

/* The tunnel's settings, for every connection it opens. */
struct tun_cfg {
    const char *verb;              /* "tcp" or "ssh", for messages */
    const char *url;               /* the app, as given (--hostname) */
    const struct cli_opts *cli;
    int retry_s;                   /* how long a WebSocket that cannot be opened is retried */
    struct cli_origin origin;
    char path[1024];               /* the request target of the upgrade */
};

/* An attempt's outcome: open, worth retrying (a restarting gateway), or final. */
enum { TUN_OPEN, TUN_RETRY, TUN_FINAL };

/* One upgrade on a new connection: *status gets the gateway's answer (0 when none came);
 * leftover bytes after the head (frames already sent) land in rest[0..*rest_len). */
static int try_upgrade(const struct tun_cfg *c, const char *token, const char *svc, struct tun_gw *g, long *status,
                       uint8_t *rest, size_t *rest_len, char *why, size_t cap)
{
    bool retry = false;
    *status = 0;
    if (!ossl_load(why, cap))
        return TUN_FINAL;
    g->fd = tcp_connect(c->origin.host, c->origin.port, why, cap, &retry);
    if (g->fd < 0)
        return retry ? TUN_RETRY : TUN_FINAL;
    int64_t deadline = now_ms() + TUN_ANSWER_S * 1000;
    if (!strcmp(c->origin.scheme, "https") && tls_start(g, c->origin.host, now_ms() + TUN_CONNECT_S * 1000, why, cap) != 0)
        return TUN_FINAL;
    unsigned char raw[16];
    char key[32], expect[29], *req = NULL;
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(key, sizeof key, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
    if (!accept_of(key, expect)) {
        snprintf(why, cap, "cannot compute the WebSocket key's answer");
        return TUN_FINAL;
    }
    int n = asprintf(&req,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nUser-Agent: latch-cli/0.2\r\n"
                     "%s%s%s\r\n",
                     c->path, c->origin.key, key, token ? "cf-access-token: " : "", token ? token : "",
                     token ? "\r\n" : svc);
    if (n < 0) {
        snprintf(why, cap, "out of memory");
        return TUN_FINAL;
    }
    int wr = gw_write_all(g, req, (size_t)n, deadline);
    sodium_memzero(req, (size_t)n);
    free(req);
    if (wr != 0) {
        snprintf(why, cap, "%s closed the connection before the upgrade was sent", c->origin.key);
        return TUN_RETRY;
    }
    char head[TUN_HEAD_MAX];
    size_t got = 0, scanned = 0;
    struct http_response res;
    int hl = 0;
    while (hl == 0) {
        short ev = POLLIN;
        ssize_t r = got < sizeof head ? gw_io(g, false, head + got, sizeof head - got, &ev) : IO_ERR;
        if (r > 0) {
            got += (size_t)r;
            hl = http_parse_response(head, got, &scanned, false, &res);
            continue;
        }
        int64_t left = deadline - now_ms();
        if (r == IO_AGAIN && left > 0) {
            struct pollfd pf = { .fd = g->fd, .events = ev };
            poll(&pf, 1, (int)left);
            continue;
        }
        snprintf(why, cap, "%s %s", c->origin.key,
                 r == IO_AGAIN ? "did not answer the upgrade in time"
                 : got < sizeof head ? "closed the connection without answering the upgrade"
                                     : "answered with a head too long");
        return got < sizeof head ? TUN_RETRY : TUN_FINAL;
    }
    if (hl < 0 || res.minor != 1) { /* the gateway's own strict reader (http/parse.c) */
        snprintf(why, cap, "%s answered something that is not HTTP/1.1", c->origin.key);
        return TUN_FINAL;
    }
    *status = res.status;
    if (res.status != 101)
        return TUN_FINAL; /* the caller says what it means */
    const struct http_header *up = http_find_header(res.headers, res.nheaders, "upgrade");
    const struct http_header *conn = http_find_header(res.headers, res.nheaders, "connection");
    const struct http_header *acc = http_find_header(res.headers, res.nheaders, "sec-websocket-accept");
    if (!up || !http_slice_eq(up->value, "websocket") || !conn || !http_has_token(conn->value, "upgrade")) {
        snprintf(why, cap, "%s answered 101 without switching to the WebSocket protocol", c->origin.key);
        return TUN_FINAL;
    }
    if (!acc || acc->value.n != strlen(expect) || memcmp(acc->value.p, expect, acc->value.n)) {
        snprintf(why, cap, "%s answered the upgrade with a wrong Sec-WebSocket-Accept", c->origin.key);
        return TUN_FINAL;
    }
    *rest_len = got - (size_t)hl;
    memcpy(rest, head + hl, *rest_len);
    return TUN_OPEN;
}

/* Who the token says you are: its email, or the service token's id. */
static void whoami(const char *token, char *out, size_t cap)
{
    const char *id = getenv("LATCH_CLIENT_ID");
    json_t *p = token ? cli_jwt_payload(token) : NULL;
    const char *email = json_string_value(json_object_get(p, "email"));
    if (email)
        snprintf(out, cap, "%s", email);
    else if (!token && id)
        snprintf(out, cap, "the service token %s", id);
    else
        snprintf(out, cap, "your login");
    json_decref(p);
}

/* Opens the WebSocket to the app: a token (cli_access) and the upgrade, retried with backoff
 * (0.25 s doubling to 4 s) while the gateway cannot be reached or answers 502/503/504, for
 * c->retry_s seconds; a stored token the gateway refuses (401) is forgotten and a login done
 * again, once. 0 with g open and rest holding the first frame bytes, or a LATCH_EXIT_* status
 * with the message printed. */
static int tunnel_open(const struct tun_cfg *c, struct tun_gw *g, uint8_t *rest, size_t *rest_len)
{
    int64_t give_up = now_ms() + (int64_t)c->retry_s * 1000, delay = TUN_BACKOFF_FIRST_MS;
    bool relogged = false, said = false;
    char *token = NULL, *svc = NULL, *origin = NULL, why[768];
    int st = cli_access(c->verb, c->url, c->cli, &token, &svc, &origin);
    while (st == LATCH_EXIT_OK) {
        long status;
        int r = try_upgrade(c, token, svc, g, &status, rest, rest_len, why, sizeof why);
        if (r == TUN_OPEN)
            break;
        gw_close(g);
        if (status == 502 || status == 503 || status == 504) {
            snprintf(why, sizeof why, "%s answered %ld (its origin or the gateway is restarting)", c->origin.key, status);
            r = TUN_RETRY;
        }
        if (r == TUN_RETRY && now_ms() + delay < give_up) {
            if (!said)
                fprintf(stderr, "latch %s: %s; retrying for up to %d s\n", c->verb, why, c->retry_s);
            said = true;
            struct timespec ts = { delay / 1000, (delay % 1000) * 1000000 };
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
            }
            delay = delay * 2 > TUN_BACKOFF_MAX_MS ? TUN_BACKOFF_MAX_MS : delay * 2;
            continue;
        }
        char who[300];
        whoami(token, who, sizeof who);
        if (status == 401 && token && !relogged) { /* revoked, expired, another app's now: a login again */
            fprintf(stderr, "latch %s: the gateway refused the stored token for %s (401); logging in again\n", c->verb,
                    c->origin.key);
            cli_access_forget(c->url, token);
            secret_free(&token);
            free(origin);
            origin = NULL;
            relogged = true;
            st = cli_access(c->verb, c->url, c->cli, &token, &svc, &origin);
            continue;
        }
        if (status == 401 || status == 403) {
            struct cli_target t;
            char *app = cli_target_read(c->verb, c->url, &t) == LATCH_EXIT_OK ? cli_stored_app_name(&t) : NULL;
            cli_target_free(&t);
            fprintf(stderr, "latch %s: %s refused by policy: the gateway does not admit %s to %s%s (%ld)%s\n",
                    c->verb, c->origin.key, who, app ? "the app " : "", app ? app : c->origin.key, status,
                    status == 401 && !token ? ": check LATCH_CLIENT_ID and LATCH_CLIENT_SECRET, and that a service_auth "
                                              "policy of the app names the token"
                    : status == 403 ? "; ask your administrator for access" : "");
            free(app);
            st = LATCH_EXIT_REFUSED;
        } else if (status >= 200 && status < 500) {
            fprintf(stderr, "latch %s: %s is not a TCP application (it answered the WebSocket upgrade with %ld, not 101): "
                            "check the host name; an HTTP app is reached with latch curl\n", c->verb, c->origin.key, status);
            st = LATCH_EXIT_NOT_TCP;
        } else if (status && status != 101) {
            fprintf(stderr, "latch %s: cannot open a tunnel to %s: it answered %ld\n", c->verb, c->origin.key, status);
            st = LATCH_EXIT_FAILED;
        } else {
            fprintf(stderr, "latch %s: cannot open a tunnel to %s: %s%s\n", c->verb, c->origin.key, why,
                    r == TUN_RETRY ? " (gave up retrying)" : "");
            st = LATCH_EXIT_FAILED;
        }
    }
    secret_free(&token);
    secret_free(&svc);
    free(origin);
    if (st == LATCH_EXIT_OK && said)
        fprintf(stderr, "latch %s: the tunnel to %s is open\n", c->verb, c->origin.key);
    return st;
}

/* --- the pump ---------------------------------------------------------------------------------- */

/* One tunnel's state: the local side (in/out: stdin/stdout, or one socket twice) and the
 * WebSocket. Up: a frame being written to the gateway (head + masked payload), filled from the
 * local side or a control frame only when the last one is all written. Down: the gateway's
 * bytes, a data frame's payload passed on as it comes (never held whole). */
struct tun {
    const struct tun_cfg *c;
    int in, out;
    bool in_sock, out_sock;
    int out_flags;          /* the output's file status flags before O_NONBLOCK, or -1 */
    short gw_read_ev, gw_write_ev; /* what TLS waits for to go on reading, writing */
    struct tun_gw g;
    uint8_t up[WS_HEAD_MAX + TUN_CHUNK];
    size_t up_off, up_len;
    uint8_t ctrl[WS_HEAD_MAX + WS_CONTROL_MAX]; /* a pong or a close waiting for its turn */
    size_t ctrl_len;
    bool ctrl_is_close;
    uint8_t dn[WS_HEAD_MAX + WS_CONTROL_MAX + TUN_CHUNK];
    size_t dn_off, dn_len;
    uint64_t dn_left;       /* payload bytes of the current data frame still to pass on */
    bool dn_message;        /* a fragmented message goes on (continuation frames follow) */
    bool in_eof, out_done, gw_eof;
    bool close_queued, close_sent, peer_closed;
    int64_t close_deadline;
    uint16_t peer_code;     /* the gateway's close code (0: none given) */
    char peer_reason[WS_CONTROL_MAX + 1];
    uint64_t bytes_up, bytes_down;
    const char *failure;    /* set when the tunnel broke */
};

/* Queues a control frame (masked, as a client sends every frame) for after the frame being
 * written; a close replaces a pending pong, and nothing follows a close. */
static void queue_control(struct tun *t, uint8_t opcode, const uint8_t *payload, size_t n)
{
    if (t->close_queued)
        return;
    uint8_t mask[4];
    randombytes_buf(mask, sizeof mask);
    size_t h = ws_write_head(t->ctrl, true, opcode, n, mask);
    memcpy(t->ctrl + h, payload, n);
    ws_unmask(t->ctrl + h, n, mask, 0);
    t->ctrl_len = h + n;
    t->ctrl_is_close = opcode == WS_CLOSE;
    if (opcode == WS_CLOSE) {
        t->close_queued = true;
        t->close_deadline = now_ms() + TUN_CLOSE_WAIT_S * 1000;
    }
}

static void queue_close(struct tun *t, uint16_t code)
{
    uint8_t p[2] = { (uint8_t)(code >> 8), (uint8_t)code };
    queue_control(t, WS_CLOSE, p, 2);
}

/* The local output has ended (its reader went away, or the gateway closed): nothing more
 * goes there; a socket gets its FIN, stdout is closed. */
static void out_end(struct tun *t)
{
    if (t->out_done)
        return;
    t->out_done = true;
    if (t->out_sock)
        shutdown(t->out, SHUT_WR);
    else if (t->out != t->in)
        close(t->out);
}

/* Writes to the local output without blocking: a socket or a pipe is non-blocking (ours), a
 * terminal or a file (shared with the shell) gets at most PIPE_BUF bytes after poll said it
 * may, so that write does not block either. */
static ssize_t out_write(struct tun *t, const void *p, size_t n)
{
    if (t->out_flags >= 0)
        return write(t->out, p, n);
    struct pollfd pf = { .fd = t->out, .events = POLLOUT };
    if (poll(&pf, 1, 0) != 1) {
        errno = EAGAIN;
        return -1;
    }
    return write(t->out, p, n > PIPE_BUF ? PIPE_BUF : n);
}

/* Passes the gateway's bytes on: data payloads to the output, pings answered, a close taken.
 * Returns when it needs more bytes from the gateway, or the output to drain. *need_out: the
 * output was full. */
static void down_process(struct tun *t, bool *need_out)
{
    *need_out = false;
    while (!t->failure && !t->peer_closed) {
        if (t->dn_left > 0) {
            if (t->dn_off == t->dn_len)
                break;
            size_t n = t->dn_len - t->dn_off;
            if (n > t->dn_left)
                n = (size_t)t->dn_left;
            if (t->out_done) { /* nobody reads it any more: dropped */
                t->dn_off += n;
                t->dn_left -= n;
                continue;
            }
            ssize_t w = out_write(t, t->dn + t->dn_off, n);
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                *need_out = true;
                break;
            }
            if (w <= 0) { /* the reader went away: the stream ends from our side */
                out_end(t);
                queue_close(t, WS_CLOSE_NORMAL);
                continue;
            }
            t->dn_off += (size_t)w;
            t->dn_left -= (uint64_t)w;
            t->bytes_down += (uint64_t)w;
            continue;
        }
        struct ws_frame f;
        uint16_t code = 0;
        int h = ws_parse_head(t->dn + t->dn_off, t->dn_len - t->dn_off, false, TUN_FRAME_MAX, &f, &code);
        if (h < 0) {
            t->failure = "the gateway broke the WebSocket framing";
            queue_close(t, code);
            break;
        }
        bool control = f.opcode & 0x08;
        if (h == 0 || (control && t->dn_len - t->dn_off < (size_t)h + f.len)) {
            if (t->dn_off) { /* room for the rest of the frame's head or control payload */
                memmove(t->dn, t->dn + t->dn_off, t->dn_len - t->dn_off);
                t->dn_len -= t->dn_off;
                t->dn_off = 0;
            }
            break;
        }
        if (!control) { /* §5.4: a message is one data frame, or one then continuations */
            if ((f.opcode == WS_CONT) != t->dn_message) {
                t->failure = "the gateway broke the WebSocket framing (a message's fragments out of order)";
                queue_close(t, WS_CLOSE_PROTOCOL);
                break;
            }
            t->dn_message = !f.fin;
            t->dn_left = f.len;
            t->dn_off += (size_t)h;
            continue;
        }
        const uint8_t *pl = t->dn + t->dn_off + h;
        size_t pn = (size_t)f.len;
        t->dn_off += (size_t)h + pn;
        if (f.opcode == WS_PING) {
            if (!t->ctrl_len) /* a pong already waiting answers this one too (§5.5.3) */
                queue_control(t, WS_PONG, pl, pn);
        } else if (f.opcode == WS_CLOSE) { /* §5.5.1: answered with a close; then the stream is over */
            t->peer_closed = true;
            if (!ws_close_payload_ok(pl, pn)) {
                t->failure = "the gateway sent a malformed close";
                queue_close(t, WS_CLOSE_PROTOCOL);
            } else {
                t->peer_code = pn >= 2 ? (uint16_t)(pl[0] << 8 | pl[1]) : 0;
                snprintf(t->peer_reason, sizeof t->peer_reason, "%.*s", pn > 2 ? (int)pn - 2 : 0, (const char *)pl + 2);
                if (!t->close_queued) {
                    t->ctrl_len = 0; /* a pong no longer matters */
                    queue_close(t, t->peer_code ? t->peer_code : WS_CLOSE_NORMAL);
                }
            }
            out_end(t);
        }
    }
}

/* Reads the local input into a masked binary frame (the up buffer is empty). */
static void up_fill(struct tun *t)
{
    uint8_t *payload = t->up + WS_HEAD_MAX;
    ssize_t n = t->in_sock ? recv(t->in, payload, TUN_CHUNK, MSG_DONTWAIT) : read(t->in, payload, TUN_CHUNK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) { /* end of input (an error ends it too): a close says so */
        t->in_eof = true;
        queue_close(t, WS_CLOSE_NORMAL);
        return;
    }
    uint8_t mask[4], head[WS_HEAD_MAX];
    randombytes_buf(mask, sizeof mask);
    size_t h = ws_write_head(head, true, WS_BINARY, (uint64_t)n, mask);
    ws_unmask(payload, (size_t)n, mask, 0); /* masking is the same XOR */
    memcpy(payload - h, head, h);
    t->up_off = WS_HEAD_MAX - h;
    t->up_len = WS_HEAD_MAX + (size_t)n;
    t->bytes_up += (uint64_t)n;
}

/* Pumps until both directions have ended. LATCH_EXIT_OK when the stream ended as TCP streams
 * do, else a status with the message printed. */
static int tunnel_pump(struct tun *t)
{
    for (;;) {
        bool need_out = false;
        down_process(t, &need_out); /* what came before an end of stream goes out first */
        if (t->up_off == t->up_len && t->ctrl_len && !t->close_sent) { /* a control frame's turn */
            memcpy(t->up, t->ctrl, t->ctrl_len);
            t->up_off = 0;
            t->up_len = t->ctrl_len;
            if (t->ctrl_is_close)
                t->close_sent = true;
            t->ctrl_len = 0;
        }
        bool up_busy = t->up_off < t->up_len;
        if (!up_busy && t->close_sent && (t->peer_closed || t->gw_eof || t->failure))
            break; /* both directions over */
        if (t->close_sent && now_ms() > t->close_deadline)
            break; /* the gateway never answered our close */
        if (t->gw_eof && !t->close_sent && !need_out) { /* dropped without a close: the stream is gone */
            if (!t->failure)
                t->failure = "the connection to the gateway dropped";
            break;
        }
        up_busy = t->up_off < t->up_len;
        bool read_gw = !t->gw_eof && !need_out && (t->dn_left == 0 || t->dn_off == t->dn_len) && !t->peer_closed;
        if (read_gw && t->g.ssl && ossl.pending(t->g.ssl) > 0)
            goto gw_read; /* TLS holds decrypted bytes poll cannot see */
        struct pollfd p[3] = { { .fd = -1 }, { .fd = -1 }, { .fd = -1 } };
        if (!t->in_eof && !t->close_queued && !up_busy && !t->ctrl_len)
            p[0] = (struct pollfd){ .fd = t->in, .events = POLLIN };
        if (read_gw || up_busy) /* else its hangup would wake poll for nothing */
            p[1] = (struct pollfd){ .fd = t->g.fd, .events = (short)((read_gw ? t->gw_read_ev : 0) | (up_busy ? t->gw_write_ev : 0)) };
        if (need_out && !t->out_done)
            p[2] = (struct pollfd){ .fd = t->out, .events = POLLOUT };
        int wait = -1;
        if (t->close_sent) {
            int64_t left = t->close_deadline - now_ms();
            wait = left < 0 ? 0 : (int)left;
        }
        if (poll(p, 3, wait) < 0 && errno != EINTR) {
            t->failure = "poll failed";
            break;
        }
        if (p[2].revents & (POLLERR | POLLHUP) && !(p[2].revents & POLLOUT)) {
            out_end(t);
            queue_close(t, WS_CLOSE_NORMAL);
        }
        if (p[1].revents && up_busy) {
            short ev;
            ssize_t w = gw_io(&t->g, true, t->up + t->up_off, t->up_len - t->up_off, &ev);
            t->gw_write_ev = w == IO_AGAIN ? ev : POLLOUT;
            if (w > 0)
                t->up_off += (size_t)w;
            else if (w != IO_AGAIN) {
                t->gw_eof = true;
                if (!t->close_sent)
                    t->failure = "the connection to the gateway dropped";
                continue;
            }
        }
        if (p[0].revents)
            up_fill(t);
        if (!p[1].revents || !read_gw)
            continue;
    gw_read:
        if (t->dn_off == t->dn_len)
            t->dn_off = t->dn_len = 0;
        if (t->dn_len < sizeof t->dn) {
            short ev;
            ssize_t r = gw_io(&t->g, false, t->dn + t->dn_len, sizeof t->dn - t->dn_len, &ev);
            t->gw_read_ev = r == IO_AGAIN ? ev : POLLIN;
            if (r > 0)
                t->dn_len += (size_t)r;
            else if (r != IO_AGAIN)
                t->gw_eof = true;
        }
    }
    bool dropped = t->failure || (!t->peer_closed && !t->close_sent);
    if (t->peer_closed && !t->failure) {
        if (t->peer_code == 0 || t->peer_code == WS_CLOSE_NORMAL)
            return LATCH_EXIT_OK;
        fprintf(stderr, "latch %s: the gateway closed the tunnel to %s (%u%s%s)%s\n", t->c->verb, t->c->origin.key,
                t->peer_code, t->peer_reason[0] ? ": " : "", t->peer_reason,
                t->peer_code == WS_CLOSE_POLICY ? ": its policy no longer admits you (a revoked session, a changed policy)"
                : t->peer_code == WS_CLOSE_GOING_AWAY ? ": the gateway node is shutting down; the TCP stream cannot be resumed, "
                                                        "connect again"
                                                      : "");
        return t->peer_code == WS_CLOSE_POLICY ? LATCH_EXIT_REFUSED : LATCH_EXIT_TUNNEL_LOST;
    }
    if (dropped) {
        fprintf(stderr, "latch %s: the tunnel to %s dropped mid-stream (%s, after %llu bytes up and %llu down); the "
                        "TCP stream to the service is gone and cannot be resumed: connect again\n", t->c->verb,
                t->c->origin.key, t->failure ? t->failure : "no close from the gateway",
                (unsigned long long)t->bytes_up, (unsigned long long)t->bytes_down);
        return LATCH_EXIT_TUNNEL_LOST;
    }
    return LATCH_EXIT_OK; /* we closed; the gateway's answer did not come in time */
}

static bool is_socket(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* One tunnel for the local side in/out (the same socket twice, or stdin and stdout). */
static int tunnel_run(const struct tun_cfg *c, int in, int out)
{
    struct tun *t = calloc(1, sizeof *t);
    if (!t) {
        fprintf(stderr, "latch %s: out of memory\n", c->verb);
        return LATCH_EXIT_FAILED;
    }
    t->c = c;
    t->in = in;
    t->out = out;
    t->in_sock = is_socket(in);
    t->out_sock = is_socket(out);
    t->gw_read_ev = POLLIN;
    t->gw_write_ev = POLLOUT;
    t->g.fd = -1;
    struct stat st_out;
    t->out_flags = fstat(out, &st_out) == 0 && (S_ISSOCK(st_out.st_mode) || S_ISFIFO(st_out.st_mode))
                       ? fcntl(out, F_GETFL) : -1;
    if (t->out_flags >= 0 && fcntl(out, F_SETFL, t->out_flags | O_NONBLOCK) != 0)
        t->out_flags = -1;
    int st = tunnel_open(c, &t->g, t->dn, &t->dn_len);
    if (st == LATCH_EXIT_OK)
        st = tunnel_pump(t);
    gw_close(&t->g);
    if (t->out_flags >= 0 && !t->out_done)
        fcntl(out, F_SETFL, t->out_flags);
    free(t);
    return st;
}

/* --- the verbs ------------------------------------------------------------------------------ */

/* The request target of the upgrade: the URL's path ("/" when none), when it is plain enough
 * to send as written (RFC 3986 pchar and '/'). */
static int tunnel_path(const char *verb, const char *url, char *out, size_t cap)
{
    char buf[CLI_HANDOFF_URL_MAX];
    const char *u = cli_url_scheme(url, buf, sizeof buf);
    char *raw = u ? cli_url_raw_path(u) : NULL;
    int st = LATCH_EXIT_OK;
    if (!raw || strlen(raw) >= cap ||
        strspn(raw, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/%") != strlen(raw)) {
        fprintf(stderr, "latch %s: --hostname takes the app's host name, or a URL with a plain path\n", verb);
        st = LATCH_EXIT_USAGE;
    } else {
        snprintf(out, cap, "%s", raw);
    }
    free(raw);
    return st;
}

static int tunnel_cfg(const char *verb, const char *url, const struct cli_opts *o, int retry_s, struct tun_cfg *c)
{
    struct cli_target t;
    memset(c, 0, sizeof *c);
    int st = cli_target_read(verb, url, &t);
    if (st != LATCH_EXIT_OK)
        return st;
    c->verb = verb;
    c->url = url;
    c->cli = o;
    c->retry_s = retry_s;
    c->origin = t.origin;
    cli_target_free(&t);
    signal(SIGPIPE, SIG_IGN);
    return tunnel_path(verb, url, c->path, sizeof c->path);
}

int cli_tunnel_stdio(const char *verb, const char *url, const struct cli_opts *o, int retry_s)
{
    struct tun_cfg c;
    int st = tunnel_cfg(verb, url, o, retry_s, &c);
    return st == LATCH_EXIT_OK ? tunnel_run(&c, STDIN_FILENO, STDOUT_FILENO) : st;
}

/* --url: "127.0.0.1:PORT", "localhost:PORT" or "[::1]:PORT" (a tcp:// in front allowed, as
 * cloudflared takes it): a loopback address only, since whoever connects to the listener
 * reaches the service as you. */
static int listen_addr(const char *verb, const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
    const char *s = !strncasecmp(spec, "tcp://", 6) ? spec + 6 : spec;
    const char *colon = strrchr(s, ':');
    char host[64];
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || !colon[1] || *end || port < 1 || port > 65535 || (size_t)(colon - s) >= sizeof host) {
        fprintf(stderr, "latch %s: --url takes 127.0.0.1:PORT (the local address to listen on), not '%s'\n", verb, spec);
        return LATCH_EXIT_USAGE;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - s), s);
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (!strcmp(host, "localhost") ||
        (inet_pton(AF_INET, host, &v4->sin_addr) == 1 && ntohl(v4->sin_addr.s_addr) >> 24 == 127)) {
        if (!strcmp(host, "localhost"))
            v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len = sizeof *v4;
    } else if (!strcmp(host, "[::1]")) {
        v6->sin6_family = AF_INET6;
        v6->sin6_addr = in6addr_loopback;
        v6->sin6_port = htons((uint16_t)port);
        *len = sizeof *v6;
    } else {
        fprintf(stderr, "latch %s: --url %s: latch listens on a loopback address only (127.0.0.1, localhost, [::1]): "
                        "anyone who can connect to the listener reaches the service as you\n", verb, spec);
        return LATCH_EXIT_USAGE;
    }
    return LATCH_EXIT_OK;
}

int cli_tunnel_listen(const char *verb, const char *url, const char *listen_spec, const struct cli_opts *o,
                      int retry_s)
{
    struct tun_cfg c;
    struct sockaddr_storage ss;
    socklen_t sl;
    int st = tunnel_cfg(verb, url, o, retry_s, &c);
    if (st != LATCH_EXIT_OK || (st = listen_addr(verb, listen_spec, &ss, &sl)) != LATCH_EXIT_OK)
        return st;
    /* log in now, not at the first connection: the browser's turn comes while you are here */
    char *token = NULL, *svc = NULL, *origin = NULL;
    st = cli_access(verb, url, o, &token, &svc, &origin);
    secret_free(&token);
    secret_free(&svc);
    free(origin);
    if (st != LATCH_EXIT_OK)
        return st;
    int one = 1, fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 64) != 0) {
        fprintf(stderr, "latch %s: cannot listen on %s: %s\n", verb, listen_spec, strerror(errno));
        if (fd >= 0)
            close(fd);
        return LATCH_EXIT_FAILED;
    }
    fprintf(stderr, "latch %s: listening on %s; each connection is tunnelled to %s\n", verb, listen_spec, c.origin.key);
    pid_t parent = getpid();
    for (;;) {
        while (waitpid(-1, NULL, WNOHANG) > 0) {
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 1000) <= 0)
            continue;
        int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                poll(NULL, 0, 100); /* out of descriptors: let tunnels end rather than spin */
            continue;
        }
        pid_t pid = fork();
        if (pid == 0) { /* each connection its own tunnel, its own process */
            prctl(PR_SET_PDEATHSIG, SIGTERM); /* the listener's end ends its tunnels */
            if (getppid() != parent)
                _exit(LATCH_EXIT_FAILED);
            close(fd);
            _exit(tunnel_run(&c, cfd, cfd));
        }
        if (pid < 0)
            fprintf(stderr, "latch %s: cannot start a tunnel: %s\n", verb, strerror(errno));
        close(cfd);
    }
}
