/* The built-in `echo` origin: answers with the request exactly as an origin would have
 * received it (the rewritten head, so the identity headers show) as JSON, after reading the
 * whole body and reporting its size and SHA-256. The demo and the tests use it. */
#include "proxy/proxy.h"

#include "core/strbuf.h"
#include "request/page.h"

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

/* For a browser opening it as a page (a navigation that accepts HTML and whose Fetch metadata
 * says it is for a document: the demo's first page), the same JSON as a page a phone can read:
 * indented, long values wrapped, the identity the gateway added marked. The page's text is
 * exactly the JSON (what scripts read from a browser); the caption above it is CSS generated
 * content, not text. Everything else (curl, scripts, fetch()) gets the JSON itself. */
static const char echo__css[] =
    "body{margin:0;background:#eef1f5;color:#1d2330;font:15px/1.5 system-ui,-apple-system,'Segoe UI',"
    "Roboto,sans-serif}body::before{content:'latch \\00b7  echo origin \\2014  the request as the app\\2019s "
    "origin received it';display:block;padding:.8rem 1rem;background:#1d2330;color:#fff;font-weight:600}"
    "pre{margin:1rem auto;max-width:56rem;padding:1rem;background:#fff;border-radius:12px;"
    "box-shadow:0 4px 24px rgba(20,30,60,.08);font:13.5px/1.55 ui-monospace,Menlo,Consolas,monospace;"
    "white-space:pre-wrap;overflow-wrap:anywhere}"
    "@media (max-width:40rem){pre{margin:.5rem;padding:.75rem;font-size:13px}}"
    ".k{color:#5a3fb0}.s{color:#0b6b3a}.n{color:#a34a00}"
    ".id{background:#fff3bf;border-radius:4px;font-weight:700}";

#define ECHO_IDENTITY "\"cf-access-authenticated-user-email\""

/* Writes the compact JSON j (ours: valid, no white space outside strings) indented, HTML-escaped,
 * its keys and values in spans. */
static void echo__pretty(struct strbuf *sb, const char *j, size_t n)
{
    int depth = 0;
    bool mark = false; /* the next value is the identity the gateway added */
    for (size_t i = 0; i < n; i++) {
        char ch = j[i];
        if (ch == '"') {
            size_t e = i + 1;
            while (e < n && j[e] != '"')
                e += j[e] == '\\' ? 2 : 1;
            bool key = e + 1 < n && j[e + 1] == ':';
            sb_adds(sb, key ? "<span class=\"k\">" : mark ? "<span class=\"s id\">" : "<span class=\"s\">");
            page_html_n(sb, j + i, e + 1 - i);
            sb_adds(sb, "</span>");
            mark = key && e + 1 - i == sizeof ECHO_IDENTITY - 1 && !memcmp(j + i, ECHO_IDENTITY, e + 1 - i);
            i = e;
        } else if (ch == '{' || ch == '[') {
            sb_add(sb, &ch, 1);
            if (i + 1 < n && (j[i + 1] == '}' || j[i + 1] == ']'))
                continue;
            sb_addf(sb, "\n%*s", 2 * ++depth, "");
        } else if (ch == '}' || ch == ']') {
            if (i && j[i - 1] != '{' && j[i - 1] != '[')
                sb_addf(sb, "\n%*s", 2 * --depth, "");
            sb_add(sb, &ch, 1);
        } else if (ch == ',') {
            sb_addf(sb, ",\n%*s", 2 * depth, "");
        } else if (ch == ':') {
            sb_adds(sb, ": ");
        } else { /* a number, true, false or null */
            size_t e = i;
            while (e < n && !strchr(",}]", j[e]))
                e++;
            sb_adds(sb, "<span class=\"n\">");
            sb_add(sb, j + i, e - i);
            sb_adds(sb, "</span>");
            i = e - 1;
        }
    }
}

static bool echo__document(const struct exchange *ex, const struct echo_head *r)
{
    for (size_t i = 0; ex->wants_html && i < r->nfields; i++)
        if (http_slice_eq(r->fields[i].name, "sec-fetch-dest"))
            return http_slice_eq(r->fields[i].value, "document");
    return false;
}

static enum step echo__page(struct exchange *ex, const struct echo_head *r, const char *json, size_t len)
{
    struct strbuf sb;
    sb_init(&sb, 4 * len + 8192);
    sb_adds(&sb, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                 "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                 "<meta name=\"robots\" content=\"noindex\"><title>");
    char title[512];
    snprintf(title, sizeof title, "echo: %.*s %.*s%.*s", (int)r->method.n, r->method.p,
             (int)ex->host_len, ex->host, (int)(r->path.n > 200 ? 200 : r->path.n), r->path.p);
    page_html(&sb, title);
    sb_adds(&sb, "</title><style>");
    sb_adds(&sb, echo__css);
    sb_adds(&sb, "</style></head><body><pre>");
    echo__pretty(&sb, json, len);
    sb_adds(&sb, "</pre></body></html>\n");
    enum step st = sb.overflow
                       ? ex->tp->ops->fail(ex, 500, "internal", "The echo answer is too large.")
                       : ex->tp->ops->respond(ex, 200, "text/html; charset=utf-8", sb.p, sb.len, ex->set_cookie);
    sb_free(&sb);
    return st;
}

static enum step echo__answer(struct exchange *ex)
{
    struct echo_head r;
    if (echo__read_head(ex->hb->data, ex->hb->end, &r) != 0)
        return ex->tp->ops->fail(ex, 500, "internal", "The echo origin could not read its request.");
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
    enum step st = sb.overflow
                       ? ex->tp->ops->fail(ex, 500, "internal", "The echo answer is too large.")
                   : echo__document(ex, &r) ? echo__page(ex, &r, sb.p, sb.len - 1)
                                    : ex->tp->ops->respond(ex, 200, "application/json", sb.p, sb.len, ex->set_cookie);
    free(r.fields);
    sb_free(&sb);
    return st;
}

static void echo__take(void *arg, const char *p, size_t n)
{
    echo__feed(arg, p, n);
}

enum step proxy__step_echo(struct exchange *ex)
{
    const struct transport_ops *tp = ex->tp->ops;
    if (!ex->sha) {
        ex->sha = EVP_MD_CTX_new();
        if (!ex->sha || EVP_DigestInit_ex(ex->sha, EVP_sha256(), NULL) != 1) {
            tp->abort(ex, false);
            return STEP_CLOSED;
        }
    }
    /* a queued 100 Continue goes out before we wait for the body */
    if (tp->queued(ex)) {
        size_t from_body;
        ssize_t n = tp->write(ex, NULL, 0, &from_body);
        if (n > 0) {
            ex->bytes_out += (uint64_t)n;
        } else if (n != -EAGAIN) {
            tp->abort(ex, false);
            return STEP_CLOSED;
        }
    }
    bool done;
    enum step st = proxy__read_body(ex, echo__take, ex, &done);
    return done ? echo__answer(ex) : st;
}
