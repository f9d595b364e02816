/* The built-in `echo` origin: answers with the request exactly as an origin would have
 * received it (the rewritten head, so the identity headers show) as JSON, after reading the
 * whole body and reporting its size and SHA-256. The demo and the tests use it. */
#include "proxy/proxy.h"

#include "core/strbuf.h"
#include "server/worker.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <strings.h>

enum { ECHO_SIZE, ECHO_EXT, ECHO_DATA, ECHO_DATA_END, ECHO_TRAILER, ECHO_DONE };

static void echo__data(struct exchange *ex, const char *p, size_t n)
{
    EVP_DigestUpdate(ex->sha, p, n);
    ex->echo_bytes += n;
}

/* De-chunks bytes the chunked scanner already validated, so it can stay permissive. */
static void echo__feed(struct exchange *ex, const char *p, size_t n)
{
    if (ex->req_body != HTTP_BODY_CHUNKED) {
        echo__data(ex, p, n);
        return;
    }
    size_t i = 0;
    while (i < n) {
        char ch = p[i];
        switch (ex->echo_state) {
        case ECHO_SIZE:
            if (ch == ';' || ch == ' ' || ch == '\t' || ch == '\r') {
                ex->echo_state = ECHO_EXT;
            } else if (ch == '\n') {
                ex->echo_state = ex->echo_left ? ECHO_DATA : ECHO_TRAILER;
            } else {
                int v = ch <= '9' ? ch - '0' : (ch | 32) - 'a' + 10;
                ex->echo_left = ex->echo_left * 16 + (uint64_t)v;
            }
            i++;
            break;
        case ECHO_EXT:
            if (ch == '\n')
                ex->echo_state = ex->echo_left ? ECHO_DATA : ECHO_TRAILER;
            i++;
            break;
        case ECHO_DATA: {
            size_t take = n - i < ex->echo_left ? n - i : (size_t)ex->echo_left;
            echo__data(ex, p + i, take);
            ex->echo_left -= take;
            i += take;
            if (!ex->echo_left)
                ex->echo_state = ECHO_DATA_END;
            break;
        }
        case ECHO_DATA_END: /* CRLF after the data */
            if (ch == '\n')
                ex->echo_state = ECHO_SIZE;
            i++;
            break;
        default: /* trailers and the final CRLF: validated, not part of the data */
            i = n;
            break;
        }
    }
}

/* The head we built for the origin, read back line by line. It is ours and well formed, and
 * may hold more fields than a client may send (the gateway adds its own), so it is not run
 * through the client parser's limits. */
struct echo_head {
    struct http_slice method, path, query, version;
    bool has_query;
    struct http_header *fields;
    size_t nfields;
};

static int echo__read_head(const char *p, size_t n, struct echo_head *h)
{
    const char *end = p + n, *eol = memmem(p, n, "\r\n", 2);
    const char *sp1 = eol ? memchr(p, ' ', (size_t)(eol - p)) : NULL;
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp2)
        return -1;
    h->method = (struct http_slice){ p, (size_t)(sp1 - p) };
    const char *q = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1));
    h->has_query = q != NULL;
    h->path = (struct http_slice){ sp1 + 1, (size_t)((q ? q : sp2) - sp1 - 1) };
    h->query = q ? (struct http_slice){ q + 1, (size_t)(sp2 - q - 1) } : (struct http_slice){ NULL, 0 };
    h->version = (struct http_slice){ sp2 + 1, (size_t)(eol - sp2 - 1) };
    size_t cap = 16;
    h->fields = malloc(cap * sizeof *h->fields);
    h->nfields = 0;
    for (const char *line = eol + 2; h->fields && line < end;) {
        const char *le = memmem(line, (size_t)(end - line), "\r\n", 2);
        if (!le || le == line)
            break;
        const char *colon = memchr(line, ':', (size_t)(le - line));
        if (colon) {
            if (h->nfields == cap) {
                struct http_header *nf = realloc(h->fields, 2 * cap * sizeof *nf);
                if (!nf)
                    break;
                h->fields = nf;
                cap *= 2;
            }
            const char *v = colon + 1;
            while (v < le && (*v == ' ' || *v == '\t'))
                v++;
            h->fields[h->nfields++] = (struct http_header){ .name = { line, (size_t)(colon - line) },
                                                            .value = { v, (size_t)(le - v) } };
        }
        line = le + 2;
    }
    return h->fields ? 0 : -1;
}

static void echo__headers(struct strbuf *sb, const struct http_header *f, size_t n)
{
    bool first = true;
    sb_adds(sb, "{");
    for (size_t i = 0; i < n; i++) {
        const struct http_slice name = f[i].name;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = f[j].name.n == name.n && !strncasecmp(f[j].name.p, name.p, name.n);
        if (seen)
            continue;
        char lower[256];
        size_t ln = name.n < sizeof lower ? name.n : sizeof lower - 1;
        for (size_t k = 0; k < ln; k++)
            lower[k] = (char)(name.p[k] >= 'A' && name.p[k] <= 'Z' ? name.p[k] + 32 : name.p[k]);
        if (!first)
            sb_adds(sb, ",");
        first = false;
        sb_json_str(sb, lower, ln);
        sb_adds(sb, ":");
        /* duplicates joined with ", " (RFC 9110 §5.3) */
        struct strbuf v;
        sb_init(&v, 65536);
        for (size_t j = i; j < n; j++) {
            if (f[j].name.n != name.n || strncasecmp(f[j].name.p, name.p, name.n))
                continue;
            if (v.len)
                sb_add(&v, ", ", 2);
            sb_add(&v, f[j].value.p, f[j].value.n);
        }
        sb_json_str(sb, v.p ? v.p : "", v.len);
        sb_free(&v);
    }
    sb_adds(sb, "}");
}

static enum step echo__answer(struct conn *c)
{
    struct exchange *ex = c->ex;
    struct echo_head r;
    if (echo__read_head(ex->hb->data, ex->hb->end, &r) != 0)
        return proxy__respond_error(c, 500, "internal", "The echo origin could not read its request.");
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(ex->sha, md, &mdlen);
    char hex[65];
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", md[i]);

    struct strbuf sb;
    sb_init(&sb, BUF_SIZE - 2048);
    bool first = true;
    sb_adds(&sb, "{");
    sb_json_kv(&sb, &first, "method", r.method.p, r.method.n);
    sb_json_kv(&sb, &first, "path", r.path.p, r.path.n);
    sb_json_kv(&sb, &first, "query", r.has_query ? r.query.p : NULL, r.query.n);
    sb_json_kv(&sb, &first, "version", r.version.p, r.version.n);
    sb_json_key(&sb, &first, "headers");
    echo__headers(&sb, r.fields, r.nfields);
    sb_json_key(&sb, &first, "body_bytes");
    sb_addu(&sb, ex->echo_bytes);
    sb_json_kv(&sb, &first, "body_sha256", hex, 64);
    sb_json_kv(&sb, &first, "request_id", ex->request_id, strlen(ex->request_id));
    sb_adds(&sb, "}\n");
    free(r.fields);
    enum step st = sb.overflow
                       ? proxy__respond_error(c, 500, "internal", "The echo answer is too large.")
                       : proxy__respond(c, 200, "application/json", sb.p, sb.len, ex->set_cookie);
    sb_free(&sb);
    return st;
}

static void echo__take(struct conn *c, const char *p, size_t n)
{
    echo__feed(c->ex, p, n);
}

enum step proxy__step_echo(struct conn *c)
{
    struct exchange *ex = c->ex;
    if (!ex->sha) {
        ex->sha = EVP_MD_CTX_new();
        if (!ex->sha || EVP_DigestInit_ex(ex->sha, EVP_sha256(), NULL) != 1) {
            proxy__close(c);
            return STEP_CLOSED;
        }
    }
    /* a queued 100 Continue goes out before we wait for the body */
    if (c->tx && buf_len(c->tx)) {
        struct iovec iov = { buf_head(c->tx), buf_len(c->tx) };
        ssize_t n = io_writev(c->io.fd, c->ssl, &iov, 1);
        if (n > 0) {
            buf_consume(c->tx, (size_t)n);
            ex->bytes_out += (uint64_t)n;
        } else if (n != -EAGAIN) {
            proxy__close(c);
            return STEP_CLOSED;
        }
    }
    bool done;
    enum step st = proxy__take_body(c, echo__take, &done);
    return done ? echo__answer(c) : st;
}
