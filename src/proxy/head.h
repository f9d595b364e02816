/* The pure parts of the heads the proxy writes and reads, apart so they can be unit-tested:
 * which fields pass to the origin and back to the client (hop-by-hop fields a Connection
 * header nominates, spoofable client fields an app keeps), the one upgrade latch tunnels, and
 * the built-in echo origin's reading back of the head built for it (as JSON, and as a page).
 * No I/O, no exchange: slices in, a verdict or a strbuf out. */
#ifndef LATCH_PROXY_HEAD_H
#define LATCH_PROXY_HEAD_H

#include "http/http.h"

#include <stdbool.h>
#include <stddef.h>

struct app;
struct strbuf;

/* Whether one of the nconn Connection fields names this field as hop-by-hop (RFC 9110 §7.6.1):
 * a token of their comma-separated lists equal to name in any case. An empty name never is. */
bool head_nominated(const struct http_header *conn_hdrs[], size_t nconn, struct http_slice name);

/* Whether the app keeps this field from clients (keep_client_headers: spoofable names only). */
bool head_kept(const struct app *app, struct http_slice name);

/* Whether a request may be tunnelled with this single Upgrade field's value: WebSocket only. */
bool head_upgrade_allowed(const struct http_request *req, struct http_slice value);

/* Whether a 101 switches to what was asked for: one Upgrade field naming websocket alone. */
bool head_switches_to_websocket(const struct http_response *res);

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
