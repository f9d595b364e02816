/* The built-in `echo` origin: answers with the request exactly as an origin would have
 * received it (the rewritten head, so the identity headers show) as JSON, after reading the
 * whole body and reporting its size and SHA-256. The demo and the tests use it. */
#include "proxy/proxy.h"
#include "proxy/head.h"

#include "core/strbuf.h"
#include "request/page.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <strings.h>

static size_t echo__data(void *arg, const char *p, size_t n)
{
    struct exchange *ex = arg;
    EVP_DigestUpdate(ex->sha, p, n);
    ex->echo_bytes += n;
    return n;
}

static void echo__feed(struct exchange *ex, const char *p, size_t n)
{
    if (ex->req_body != HTTP_BODY_CHUNKED)
        echo__data(ex, p, n);
    else
        proxy__dechunk(ex, p, n, echo__data, NULL, ex);
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

static bool echo__document(const struct exchange *ex, const struct head_lines *r)
{
    for (size_t i = 0; ex->wants_html && i < r->nfields; i++)
        if (http_slice_eq(r->fields[i].name, "sec-fetch-dest"))
            return http_slice_eq(r->fields[i].value, "document");
    return false;
}

static enum step echo__page(struct exchange *ex, const struct head_lines *r, const char *json, size_t len)
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
    head_json_pretty(&sb, json, len);
    sb_adds(&sb, "</pre></body></html>\n");
    enum step st = sb.overflow
                       ? ex->tp->ops->fail(ex, 500, "internal", "The echo answer is too large.")
                       : ex->tp->ops->respond(ex, 200, "text/html; charset=utf-8", sb.p, sb.len, ex->set_cookie);
    sb_free(&sb);
    return st;
}

static enum step echo__answer(struct exchange *ex)
{
    struct head_lines r;
    if (head_lines_read(ex->hb->data, ex->hb->end, &r) != 0)
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
    head_fields_json(&sb, r.fields, r.nfields);
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
