/* The pure parts of the heads the proxy writes and reads (head.h): which fields pass, what
 * admission reads from a client's head, the upgrade rules, and the echo origin's reading of its
 * request. Called per request by admit.c, identity.c, forward.c and echo.c; unit-tested in
 * tests/unit/proxy/test_head.c. */
#include "proxy/head.h"

#include "config/config-t.h"
#include "core/strbuf.h"
#include "http/ws.h"
#include "request/page.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* --- which fields pass --------------------------------------------------------------------- */

bool head_kept(const struct app *app, struct http_slice name)
{
    for (size_t i = 0; i < app->nkeep_client_headers; i++)
        if (http_slice_eq(name, app->keep_client_headers[i]))
            return true;
    return false;
}

/* The one upgrade latch tunnels (RFC 9110 §7.8): WebSocket (RFC 6455 §4.1: a GET without a
 * body, HTTP/1.1), named alone in one Upgrade field, in any case. Anything else in Upgrade
 * (h2c, which would turn the connection into HTTP/2 requests no policy sees; a list; a second
 * field) is not forwarded and the request goes on as an ordinary one, as a server that ignores
 * Upgrade may do: `curl --http2` on http keeps working over HTTP/1.1. */
bool head_upgrade_allowed(const struct http_request *req, struct http_slice value)
{
    return req->minor == 1 && req->body == HTTP_BODY_NONE && http_slice_eq(req->method, "get") &&
           http_slice_eq(value, "websocket");
}

bool head_switches_to_websocket(const struct http_response *res)
{
    const struct http_header *up = NULL;
    for (size_t i = 0; i < res->nheaders; i++) {
        if (res->headers[i].id != HTTP_F_UPGRADE)
            continue;
        if (up)
            return false;
        up = &res->headers[i];
    }
    return up && http_slice_eq(up->value, "websocket");
}

bool head_one_field(const struct http_header *f, size_t n, const char *lower, struct http_slice *out)
{
    bool seen = false;
    for (size_t i = 0; i < n; i++) {
        if (!http_slice_eq(f[i].name, lower))
            continue;
        if (seen)
            return false;
        *out = f[i].value;
        seen = true;
    }
    return seen;
}

bool head_ws_accept_ok(const char *sent, size_t sent_len, const struct http_response *res)
{
    struct head_lines h;
    if (head_lines_read(sent, sent_len, &h) != 0)
        return false;
    struct http_slice key, accept;
    bool ok = head_one_field(h.fields, h.nfields, "sec-websocket-key", &key) &&
              head_one_field(res->headers, res->nheaders, "sec-websocket-accept", &accept);
    free(h.fields);
    if (!ok)
        return false;
    char want[29];
    ws_accept_key(key.p, key.n, want);
    return accept.n == strlen(want) && !memcmp(accept.p, want, accept.n);
}

/* --- what admission reads from a client's head ---------------------------------------------- */

int head_parse_ip(const char *s, size_t n, uint8_t out[16])
{
    char tmp[INET6_ADDRSTRLEN + 1];
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    memset(out, 0, 16);
    if (inet_pton(AF_INET, tmp, out + 12) == 1) {
        out[10] = out[11] = 0xff;
        return 0;
    }
    return inet_pton(AF_INET6, tmp, out) == 1 ? 0 : -1;
}

int head_service_credentials(const struct http_request *req, const char *hname, char *id, size_t idcap,
                             char *secret, size_t seccap, bool *single)
{
    const struct http_header *hid = http_find_header(req->headers, req->nheaders, HTTP_H_CLIENT_ID);
    const struct http_header *hsec = http_find_header(req->headers, req->nheaders, HTTP_H_CLIENT_SECRET);
    if (hid && hsec) {
        if (hid->value.n >= idcap || hsec->value.n >= seccap)
            return -1;
        memcpy(id, hid->value.p, hid->value.n);
        id[hid->value.n] = '\0';
        memcpy(secret, hsec->value.p, hsec->value.n);
        secret[hsec->value.n] = '\0';
        return 1;
    }
    const struct http_header *h = hname ? http_find_header(req->headers, req->nheaders, hname) : NULL;
    if (!h)
        return 0;
    json_error_t je;
    json_t *j = json_loadb(h->value.p, h->value.n, JSON_REJECT_DUPLICATES, &je);
    const char *i = json_string_value(json_object_get(j, HTTP_H_CLIENT_ID));
    const char *s = json_string_value(json_object_get(j, HTTP_H_CLIENT_SECRET));
    int rc = 0; /* not JSON of that shape: another use of the header (e.g. an API key) */
    if (i && s) {
        *single = true;
        rc = strlen(i) < idcap && strlen(s) < seccap ? 1 : -1;
        if (rc == 1) {
            snprintf(id, idcap, "%s", i);
            snprintf(secret, seccap, "%s", s);
        }
    }
    json_decref(j);
    return rc;
}

/* --- the echo origin's request --------------------------------------------------------------- */

/* The head is ours and well formed, and may hold more fields than a client may send (the
 * gateway adds its own), so it is not run through the client parser's limits. */
int head_lines_read(const char *p, size_t n, struct head_lines *h)
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

void head_fields_json(struct strbuf *sb, const struct http_header *f, size_t n)
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

#define HEAD_IDENTITY "\"cf-access-authenticated-user-email\""

void head_json_pretty(struct strbuf *sb, const char *j, size_t n)
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
            mark = key && e + 1 - i == sizeof HEAD_IDENTITY - 1 && !memcmp(j + i, HEAD_IDENTITY, e + 1 - i);
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
