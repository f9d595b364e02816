/* The pure parts of the heads the proxy writes and reads, apart so they can be unit-tested:
 * which fields pass to the origin and back to the client (hop-by-hop fields a Connection
 * header nominates, spoofable client fields an app keeps), what admission reads from a client's
 * head (an X-Forwarded-For address, whether it wants a page, a service token's credentials),
 * the one upgrade latch tunnels, and the built-in echo origin's reading back of the head built
 * for it (as JSON, and as a page).
 * No I/O, no exchange: slices in, a verdict or a strbuf out. */
#ifndef LATCH_PROXY_HEAD_H
#define LATCH_PROXY_HEAD_H

#include "config/config-t.h"
#include "http/cookie.h"
#include "http/http.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

struct strbuf;

/* Whether one of the nconn Connection fields names this field as hop-by-hop (RFC 9110 §7.6.1):
 * a token of their comma-separated lists equal to name in any case. An empty name never is.
 * Called for every field of a head that has a Connection field (most responses): inline here,
 * as it was in forward.c. */
static inline bool head_nominated(const struct http_header *conn_hdrs[], size_t nconn, struct http_slice name)
{
    for (size_t i = 0; i < nconn; i++) {
        const char *p = conn_hdrs[i]->value.p, *end = p + conn_hdrs[i]->value.n;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            const char *t = p;
            while (p < end && *p != ',' && *p != ' ' && *p != '\t')
                p++;
            if ((size_t)(p - t) == name.n && name.n && !strncasecmp(t, name.p, name.n))
                return true;
        }
    }
    return false;
}

/* Whether the app keeps this field from clients (keep_client_headers: spoofable names only). */
bool head_kept(const struct app *app, struct http_slice name);

/* What becomes of a client's field on its way to the origin (proxy__build_origin_head). */
enum head_fate {
    HEAD_DROP,           /* hop-by-hop, set by the gateway, credentials, spoofable, nominated */
    HEAD_PASS,           /* as sent (a Cookie: without the gateway's own cookies) */
    HEAD_FORWARDED_FOR,  /* the start of the X-Forwarded-For chain the gateway writes */
    HEAD_UPGRADE,        /* the gateway writes Upgrade itself, when head_upgrade_allowed */
};

/* The fate of client field f for app: fields origins act on that the gateway does not set
 * (HTTP_F_SPOOFABLE: X-Real-IP, Forwarded…) pass only when the app keeps them; hop-by-hop
 * fields, those the gateway sets (Host, X-Forwarded-*, Cf-Access-*, their '_' spellings), and
 * fields one of the nconn Connection fields nominates are dropped, and so is the app's
 * service-token header when it carried the credentials (service_header). Per request field:
 * inline, as it was inside the loop. */
static inline enum head_fate head_request_fate(const struct http_header *f, const struct app *app,
                                               const struct http_header *conn_hdrs[], size_t nconn,
                                               bool service_header)
{
    switch ((enum http_field)f->id) {
    case HTTP_F_OTHER:
    case HTTP_F_COOKIE:
    case HTTP_F_SET_COOKIE: /* meaningless in a request: the origin's business */
    case HTTP_F_STS:
        break;
    case HTTP_F_SPOOFABLE:
        if (app->nkeep_client_headers && head_kept(app, f->name))
            break;
        return HEAD_DROP;
    case HTTP_F_X_FORWARDED_FOR:
        return HEAD_FORWARDED_FOR;
    case HTTP_F_UPGRADE:
        return HEAD_UPGRADE;
    default: /* hop-by-hop, set by the gateway, Cf-Access-*, '_' spellings, Proxy */
        return HEAD_DROP;
    }
    if ((nconn && head_nominated(conn_hdrs, nconn, f->name)) ||
        (service_header && http_slice_eq(f->name, app->service_token_header)))
        return HEAD_DROP;
    return HEAD_PASS;
}

/* Whether an origin's response field reaches the client (proxy__response_head_h1): not a
 * hop-by-hop field nor one the response's nconn Connection fields nominate, not a Set-Cookie
 * for one of the gateway's own cookie names, not the origin's HSTS when the gateway sends its
 * own (own_hsts). */
static inline bool head_response_passes(const struct http_header *f, const struct http_header *conn_hdrs[],
                                        size_t nconn, bool own_hsts)
{
    if (http_field_hop(f->id) || (nconn && head_nominated(conn_hdrs, nconn, f->name)))
        return false;
    if ((f->id == HTTP_F_SET_COOKIE && cookie_set_reserved(f->value)) || (f->id == HTTP_F_STS && own_hsts))
        return false; /* the gateway's cookies are the gateway's; its HSTS policy too */
    return true;
}

/* Whether an origin's trailer field (any origin kind) reaches the client: what a header section
 * would not pass dropped (hop-by-hop fields), and framing, cookies and HSTS, which have no place
 * in a trailer section. */
static inline bool head_trailer_passes(const struct http_header *f)
{
    return head_response_passes(f, NULL, 0, false) && f->id != HTTP_F_CONTENT_LENGTH &&
           f->id != HTTP_F_SET_COOKIE && f->id != HTTP_F_STS;
}

/* One item of an X-Forwarded-For list (s[0..n), spaces and tabs around it ignored) as 16 bytes
 * in out (IPv4 mapped). -1: not a bare IPv4 or IPv6 address (empty, a port, brackets, a zone,
 * a name, too long), out then unspecified. */
int head_parse_ip(const char *s, size_t n, uint8_t out[16]);

/* Whether the client is a browser that wants a page rather than JSON (SPEC.md §3.6): a GET or
 * HEAD whose Accept mentions text/html. Once per request: inline, as it was in admit.c. */
static inline bool head_wants_html(const struct http_request *req)
{
    if (!http_slice_eq(req->method, "get") && !http_slice_eq(req->method, "head"))
        return false;
    const struct http_header *a = http_find_header(req->headers, req->nheaders, "accept");
    return a && memmem(a->value.p, a->value.n, "text/html", 9) != NULL;
}

/* A service token's credentials in a client's head (SPEC.md §3.4), copied into id and secret
 * (NUL-terminated): the CF-Access-Client-Id and CF-Access-Client-Secret fields (the first of
 * each) when both are there; else the app's single JSON header `hname` (NULL: the app has none):
 * an object with both names as string members ({"cf-access-client-id": …, …}; duplicate keys
 * refused), *single then set. 1: found; 0: none (a header of another shape is another use of
 * it, an API key: it is left alone); -1: there, but a value does not fit idcap or seccap. The
 * header's value is the client's: any bytes. */
int head_service_credentials(const struct http_request *req, const char *hname, char *id, size_t idcap,
                             char *secret, size_t seccap, bool *single);

/* Whether a request may be tunnelled with this single Upgrade field's value: WebSocket only. */
bool head_upgrade_allowed(const struct http_request *req, struct http_slice value);

/* Whether a 101 switches to what was asked for: one Upgrade field naming websocket alone. */
bool head_switches_to_websocket(const struct http_response *res);
/* The one field named `lower` (lowercase) among the n fields, in *out; false when it is absent
 * or repeated. */
bool head_one_field(const struct http_header *f, size_t n, const char *lower, struct http_slice *out);
/* Whether the 101's one Sec-WebSocket-Accept answers the one Sec-WebSocket-Key of the head
 * sent to the origin (sent[0..sent_len)): an origin that did not read the handshake (a TCP
 * service, a confused intermediary) does not get a tunnel (RFC 6455 §4.1). */
bool head_ws_accept_ok(const char *sent, size_t sent_len, const struct http_response *res);

/* The head we built for the origin (the echo origin's request), read back line by line. */
struct head_lines {
    struct http_slice method, path, query, version;
    bool has_query;
    struct http_header *fields; /* malloc'ed: the caller frees it after a 0 */
    size_t nfields;
};

/* Reads p[0..n) into h, its slices pointing into p. 0, or -1 for a request line without two
 * spaces or no memory. */
int head_lines_read(const char *p, size_t n, struct head_lines *h);

/* The n fields as one JSON object: lowercase names in order of first appearance, the values
 * of repeated names joined with ", " (RFC 9110 §5.3). */
void head_fields_json(struct strbuf *sb, const struct http_header *f, size_t n);

/* Writes the compact JSON j (ours: valid, no white space outside strings) indented,
 * HTML-escaped, its keys and values in spans; the value of cf-access-authenticated-user-email
 * (the identity the gateway added) marked `id`. */
void head_json_pretty(struct strbuf *sb, const char *j, size_t n);

#endif
