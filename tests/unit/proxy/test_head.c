/* Unit tests of the pure parts of the proxy's heads (src/proxy/head.c): a Connection header's
 * list nominates fields as hop-by-hop (in any case, exact tokens only); an app keeps only the
 * spoofable names it lists; on a real head, which client fields reach the origin (hop-by-hop,
 * nominated, the gateway's own and spoofable ones dropped unless kept, the service-token header
 * that carried credentials) and which origin fields reach the client (hop-by-hop, nominated,
 * the gateway's cookies, the origin's HSTS when the gateway sends its own dropped); WebSocket is the one upgrade (a GET without a body over HTTP/1.1,
 * named alone), and a 101 must switch to it with one Upgrade field; the echo origin reads back
 * the head built for it (request line, query, fields with leading white space trimmed, more
 * than its first allocation) and reflects the fields as JSON (lowercase names, repeats joined
 * with ", ", escaped), and its page marks the identity (the value of that key only) and
 * escapes HTML. What admission reads from a client's head: an X-Forwarded-For item is a bare
 * IPv4 or IPv6 address (white space around it ignored, IPv4 mapped, nothing past its length
 * read; a port, brackets, a zone, a name refused); a page is for a GET or HEAD that accepts
 * text/html; a service token's credentials come from the two headers (first of each, and they
 * win), else from the app's JSON header (both members strings, no duplicate keys, no NUL), and
 * a value too long for its buffer is refused, not cut. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "config/config-t.h"
#include "core/strbuf.h"
#include "proxy/head.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(lit) ((struct http_slice){ (lit), sizeof(lit) - 1 })

static struct http_header field(const char *name, const char *value, uint8_t id)
{
    return (struct http_header){ .name = { name, strlen(name) }, .value = { value, strlen(value) }, .id = id };
}

static void test_nominated(void **state)
{
    struct http_header c1 = field("Connection", "keep-alive, X-Secret ,\tX-Other, ", HTTP_F_CONNECTION);
    struct http_header c2 = field("connection", "Close,x-second", HTTP_F_CONNECTION);
    const struct http_header *conn[] = { &c1, &c2 };
    assert_true(head_nominated(conn, 2, S("X-Secret")));
    assert_true(head_nominated(conn, 2, S("x-secret"))); /* names are case-insensitive */
    assert_true(head_nominated(conn, 2, S("X-OTHER")));  /* after a tab */
    assert_true(head_nominated(conn, 2, S("keep-alive")));
    assert_true(head_nominated(conn, 2, S("X-Second"))); /* in the second Connection field */
    assert_false(head_nominated(conn, 1, S("X-Second"))); /* only the fields given */
    assert_false(head_nominated(conn, 2, S("X-Secre")));  /* a prefix of a token is not it */
    assert_false(head_nominated(conn, 2, S("X-Secrets"))); /* nor a longer name */
    assert_false(head_nominated(conn, 2, S("Secret")));
    assert_false(head_nominated(conn, 2, S(""))); /* the empty item after a trailing comma is none */
    assert_false(head_nominated(conn, 0, S("X-Secret")));
    struct http_header c3 = field("Connection", "", HTTP_F_CONNECTION);
    const struct http_header *empty[] = { &c3 };
    assert_false(head_nominated(empty, 1, S("")));
}

static void test_kept(void **state)
{
    char *keep[] = { "x-real-ip", "forwarded" };
    struct app app = { .keep_client_headers = keep, .nkeep_client_headers = 2 };
    assert_true(head_kept(&app, S("X-Real-IP")));
    assert_true(head_kept(&app, S("forwarded")));
    assert_false(head_kept(&app, S("CF-Connecting-IP"))); /* not listed: stripped */
    assert_false(head_kept(&app, S("X-Real-IPs")));
    assert_false(head_kept(&app, S("X-Real")));
    struct app none = { 0 };
    assert_false(head_kept(&none, S("X-Real-IP")));
}

static struct http_request request(const char *method, int minor, enum http_body body)
{
    struct http_request r;
    memset(&r, 0, sizeof r);
    r.method = (struct http_slice){ method, strlen(method) };
    r.minor = minor;
    r.body = body;
    return r;
}

static void test_upgrade_allowed(void **state)
{
    struct http_request get = request("GET", 1, HTTP_BODY_NONE);
    assert_true(head_upgrade_allowed(&get, S("websocket")));
    assert_true(head_upgrade_allowed(&get, S("WebSocket"))); /* in any case */
    assert_false(head_upgrade_allowed(&get, S("h2c")));     /* HTTP/2 no policy would see */
    assert_false(head_upgrade_allowed(&get, S("websocket, h2c")));
    assert_false(head_upgrade_allowed(&get, S("h2c, websocket")));
    assert_false(head_upgrade_allowed(&get, S("websocket2")));
    assert_false(head_upgrade_allowed(&get, S("")));
    struct http_request post = request("POST", 1, HTTP_BODY_NONE);
    assert_false(head_upgrade_allowed(&post, S("websocket")));
    struct http_request old = request("GET", 0, HTTP_BODY_NONE);
    assert_false(head_upgrade_allowed(&old, S("websocket")));
    struct http_request body = request("GET", 1, HTTP_BODY_LENGTH);
    assert_false(head_upgrade_allowed(&body, S("websocket")));
    struct http_request chunked = request("GET", 1, HTTP_BODY_CHUNKED);
    assert_false(head_upgrade_allowed(&chunked, S("websocket")));
}

static void test_switches_to_websocket(void **state)
{
    struct http_response res;
    memset(&res, 0, sizeof res);
    res.status = 101;
    res.headers[0] = field("Connection", "upgrade", HTTP_F_CONNECTION);
    res.headers[1] = field("Upgrade", "WebSocket", HTTP_F_UPGRADE);
    res.nheaders = 2;
    assert_true(head_switches_to_websocket(&res));
    res.headers[1] = field("Upgrade", "h2c", HTTP_F_UPGRADE);
    assert_false(head_switches_to_websocket(&res)); /* another protocol than asked for */
    res.headers[1] = field("Upgrade", "websocket, h2c", HTTP_F_UPGRADE);
    assert_false(head_switches_to_websocket(&res));
    res.nheaders = 1;
    assert_false(head_switches_to_websocket(&res)); /* no Upgrade field at all */
    res.headers[1] = field("Upgrade", "websocket", HTTP_F_UPGRADE);
    res.headers[2] = field("Upgrade", "websocket", HTTP_F_UPGRADE);
    res.nheaders = 3;
    assert_false(head_switches_to_websocket(&res)); /* two Upgrade fields */
    res.headers[2] = field("X-Upgrade", "h2c", HTTP_F_OTHER);
    assert_true(head_switches_to_websocket(&res)); /* only Upgrade fields count */
}

/* The client fields of a real request head (ids from the parser), and what becomes of each. */
static const char client_head[] =
    "GET /p HTTP/1.1\r\n"
    "Host: app.example\r\n"
    "Accept: */*\r\n"
    "Cookie: a=1\r\n"
    "Connection: keep-alive, X-Hop-Me\r\n"
    "X-Hop-Me: 1\r\n"
    "Keep-Alive: timeout=5\r\n"
    "Proxy-Connection: keep-alive\r\n"
    "TE: trailers\r\n"
    "Upgrade: websocket\r\n"
    "X-Forwarded-For: 192.0.2.1\r\n"
    "X-Forwarded-Proto: https\r\n"
    "X-Forwarded-Host: evil.example\r\n"
    "X-Request-Id: forged\r\n"
    "Cf-Access-Authenticated-User-Email: ceo@example.com\r\n"
    "Cf_Access_Jwt_Assertion: forged\r\n"
    "X-Real-IP: 10.0.0.1\r\n"
    "X_Real_IP: 10.0.0.2\r\n"
    "Forwarded: for=10.0.0.3\r\n"
    "CF-Connecting-IP: 10.0.0.4\r\n"
    "X-Api-Auth: {}\r\n"
    "X-Custom: passes\r\n"
    "\r\n";

static enum head_fate fate_of(const struct http_request *req, const char *name, const struct app *app,
                              bool service_header)
{
    const struct http_header *conn[HTTP_MAX_HEADERS];
    size_t nconn = 0;
    for (size_t i = 0; i < req->nheaders; i++)
        if (req->headers[i].id == HTTP_F_CONNECTION)
            conn[nconn++] = &req->headers[i];
    for (size_t i = 0; i < req->nheaders; i++)
        if (req->headers[i].name.n == strlen(name) && !memcmp(req->headers[i].name.p, name, strlen(name)))
            return head_request_fate(&req->headers[i], app, conn, nconn, service_header);
    fail_msg("no field %s", name);
    return HEAD_PASS;
}

static void test_request_fate(void **state)
{
    struct http_request req;
    size_t scanned = 0;
    assert_true(http_parse_request(client_head, sizeof client_head - 1, &scanned, &req) > 0);
    struct app app = { .service_token_header = "x-api-auth" };
    static const char *const pass[] = { "Accept", "Cookie", "X-Custom", "X-Api-Auth" };
    for (size_t i = 0; i < sizeof pass / sizeof *pass; i++)
        assert_int_equal(fate_of(&req, pass[i], &app, false), HEAD_PASS);
    static const char *const drop[] = {
        "Host", "Connection", "X-Hop-Me", "Keep-Alive", "Proxy-Connection", "TE",
        "X-Forwarded-Proto", "X-Forwarded-Host", "X-Request-Id",
        "Cf-Access-Authenticated-User-Email", "Cf_Access_Jwt_Assertion",
        "X-Real-IP", "X_Real_IP", "Forwarded", "CF-Connecting-IP",
    };
    for (size_t i = 0; i < sizeof drop / sizeof *drop; i++)
        assert_int_equal(fate_of(&req, drop[i], &app, false), HEAD_DROP);
    assert_int_equal(fate_of(&req, "X-Forwarded-For", &app, false), HEAD_FORWARDED_FOR);
    assert_int_equal(fate_of(&req, "Upgrade", &app, false), HEAD_UPGRADE);
    /* the service-token header that carried the credentials stays with the gateway */
    assert_int_equal(fate_of(&req, "X-Api-Auth", &app, true), HEAD_DROP);
    assert_int_equal(fate_of(&req, "X-Custom", &app, true), HEAD_PASS);

    /* an app that keeps X-Real-IP and Forwarded gets those two, and only those */
    char *keep[] = { "x-real-ip", "forwarded" };
    struct app keeps = { .keep_client_headers = keep, .nkeep_client_headers = 2 };
    assert_int_equal(fate_of(&req, "X-Real-IP", &keeps, false), HEAD_PASS);
    assert_int_equal(fate_of(&req, "Forwarded", &keeps, false), HEAD_PASS);
    assert_int_equal(fate_of(&req, "CF-Connecting-IP", &keeps, false), HEAD_DROP);
    assert_int_equal(fate_of(&req, "X_Real_IP", &keeps, false), HEAD_DROP); /* another spelling */
    assert_int_equal(fate_of(&req, "Cf-Access-Authenticated-User-Email", &keeps, false), HEAD_DROP);
}

static const char origin_head[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 0\r\n"
    "Connection: keep-alive, X-Internal\r\n"
    "X-Internal: secret\r\n"
    "Keep-Alive: timeout=5\r\n"
    "Proxy-Authenticate: Basic\r\n"
    "Set-Cookie: CF_Authorization=forged; Path=/\r\n"
    "Set-Cookie: app=1; Path=/\r\n"
    "Strict-Transport-Security: max-age=1\r\n"
    "X-App: 1\r\n"
    "\r\n";

static void test_response_passes(void **state)
{
    struct http_response res;
    size_t scanned = 0;
    assert_true(http_parse_response(origin_head, sizeof origin_head - 1, &scanned, false, &res) > 0);
    const struct http_header *conn[HTTP_MAX_HEADERS];
    size_t nconn = 0;
    for (size_t i = 0; i < res.nheaders; i++)
        if (res.headers[i].id == HTTP_F_CONNECTION)
            conn[nconn++] = &res.headers[i];
    static const bool passes[] = { true, true, false, false, false, false, false, true, true, true };
    static const bool passes_own_hsts[] = { true, true, false, false, false, false, false, true, false, true };
    assert_int_equal(res.nheaders, sizeof passes / sizeof *passes);
    for (size_t i = 0; i < res.nheaders; i++) {
        assert_int_equal(head_response_passes(&res.headers[i], conn, nconn, false), passes[i]);
        assert_int_equal(head_response_passes(&res.headers[i], conn, nconn, true), passes_own_hsts[i]);
    }
}

static void test_lines_read(void **state)
{
    static const char head[] = "POST /a/b?x=1&y HTTP/1.1\r\nHost: app.example\r\n"
                               "X-Pad:\t  padded value\r\nno colon here\r\nEmpty:\r\n\r\nbody: not a field\r\n";
    struct head_lines h;
    assert_int_equal(head_lines_read(head, sizeof head - 1, &h), 0);
    assert_int_equal(h.method.n, 4);
    assert_memory_equal(h.method.p, "POST", 4);
    assert_int_equal(h.path.n, 4);
    assert_memory_equal(h.path.p, "/a/b", 4);
    assert_true(h.has_query);
    assert_int_equal(h.query.n, 5);
    assert_memory_equal(h.query.p, "x=1&y", 5);
    assert_int_equal(h.version.n, 8);
    assert_memory_equal(h.version.p, "HTTP/1.1", 8);
    assert_int_equal(h.nfields, 3); /* a line without ':' is no field; the body is not read */
    assert_int_equal(h.fields[0].name.n, 4);
    assert_memory_equal(h.fields[0].name.p, "Host", 4);
    assert_int_equal(h.fields[0].value.n, 11);
    assert_memory_equal(h.fields[1].value.p, "padded value", 12);
    assert_int_equal(h.fields[1].value.n, 12);
    assert_int_equal(h.fields[2].value.n, 0);
    free(h.fields);

    static const char noquery[] = "GET / HTTP/1.0\r\n\r\n";
    assert_int_equal(head_lines_read(noquery, sizeof noquery - 1, &h), 0);
    assert_false(h.has_query);
    assert_int_equal(h.query.n, 0);
    assert_int_equal(h.path.n, 1);
    assert_int_equal(h.nfields, 0);
    free(h.fields);

    /* more fields than the first allocation: every one is read */
    char big[4096];
    size_t n = (size_t)snprintf(big, sizeof big, "GET /? HTTP/1.1\r\n");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "X-F%d: v%d\r\n", i, i);
    n += (size_t)snprintf(big + n, sizeof big - n, "\r\n");
    assert_int_equal(head_lines_read(big, n, &h), 0);
    assert_true(h.has_query);
    assert_int_equal(h.query.n, 0);
    assert_int_equal(h.nfields, 40);
    assert_int_equal(h.fields[39].name.n, 5);
    assert_memory_equal(h.fields[39].name.p, "X-F39", 5);
    assert_memory_equal(h.fields[39].value.p, "v39", 3);
    free(h.fields);

    static const char *const bad[] = { "GET /\r\n\r\n", "GET / HTTP/1.1", "", "GET\r\n / HTTP/1.1\r\n" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(head_lines_read(bad[i], strlen(bad[i]), &h), -1);
}

static void test_fields_json(void **state)
{
    struct http_header f[] = {
        field("Host", "app.example", 0),
        field("X-Multi", "one", 0),
        field("Cf-Access-Authenticated-User-Email", "a@example.com", 0),
        field("x-multi", "two", 0),
        field("X-Quote", "say \"hi\"\\", 0),
        field("X-MULTI", "three", 0),
    };
    struct strbuf sb;
    sb_init(&sb, 4096);
    head_fields_json(&sb, f, sizeof f / sizeof *f);
    assert_false(sb.overflow);
    assert_string_equal(sb.p, "{\"host\":\"app.example\",\"x-multi\":\"one, two, three\","
                              "\"cf-access-authenticated-user-email\":\"a@example.com\","
                              "\"x-quote\":\"say \\\"hi\\\"\\\\\"}");
    sb_free(&sb);
    sb_init(&sb, 64);
    head_fields_json(&sb, NULL, 0);
    assert_string_equal(sb.p, "{}");
    sb_free(&sb);
}

static void test_json_pretty(void **state)
{
    static const char j[] = "{\"cf-access-authenticated-user-email\":\"a@example.com\","
                            "\"x\":\"<b>&\",\"n\":12,\"e\":{},\"l\":[true,null,\"cf-access-authenticated-user-email\",\"v\"]}";
    struct strbuf sb;
    sb_init(&sb, 8192);
    head_json_pretty(&sb, j, sizeof j - 1);
    assert_false(sb.overflow);
    assert_string_equal(
        sb.p, "{\n"
              "  <span class=\"k\">&quot;cf-access-authenticated-user-email&quot;</span>: "
              "<span class=\"s id\">&quot;a@example.com&quot;</span>,\n"
              "  <span class=\"k\">&quot;x&quot;</span>: <span class=\"s\">&quot;&lt;b&gt;&amp;&quot;</span>,\n"
              "  <span class=\"k\">&quot;n&quot;</span>: <span class=\"n\">12</span>,\n"
              "  <span class=\"k\">&quot;e&quot;</span>: {},\n"
              "  <span class=\"k\">&quot;l&quot;</span>: [\n"
              "    <span class=\"n\">true</span>,\n"
              "    <span class=\"n\">null</span>,\n"
              "    <span class=\"s\">&quot;cf-access-authenticated-user-email&quot;</span>,\n"
              "    <span class=\"s\">&quot;v&quot;</span>\n"
              "  ]\n"
              "}");
    sb_free(&sb);
}

/* --- what admission reads from a client's head --- */

static const uint8_t v4_192_0_2_1[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1 };

static int parse_ip(const char *s, uint8_t out[16])
{
    return head_parse_ip(s, strlen(s), out);
}

static void test_parse_ip(void **state)
{
    uint8_t ip[16];
    assert_int_equal(parse_ip("192.0.2.1", ip), 0);
    assert_memory_equal(ip, v4_192_0_2_1, 16);
    assert_int_equal(parse_ip(" \t192.0.2.1\t ", ip), 0); /* the white space around a list item */
    assert_memory_equal(ip, v4_192_0_2_1, 16);
    assert_int_equal(parse_ip("::ffff:192.0.2.1", ip), 0); /* the same address written as IPv6 */
    assert_memory_equal(ip, v4_192_0_2_1, 16);
    static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
    assert_int_equal(parse_ip("2001:db8::1", ip), 0);
    assert_memory_equal(ip, v6, 16);
    assert_int_equal(parse_ip("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", ip), 0); /* the longest */

    /* only s[0..n): the rest of the X-Forwarded-For list is not read */
    const char *list = "192.0.2.1, 2001:db8::1";
    assert_int_equal(head_parse_ip(list, 9, ip), 0);
    assert_memory_equal(ip, v4_192_0_2_1, 16);
    assert_int_equal(head_parse_ip(list, 10, ip), -1); /* the comma is not white space */

    /* white space does not count toward the length limit; the address does */
    char padded[256];
    snprintf(padded, sizeof padded, "%100s192.0.2.1%100s", "", "");
    assert_int_equal(parse_ip(padded, ip), 0);
    assert_memory_equal(ip, v4_192_0_2_1, 16);
    assert_int_equal(parse_ip("1111:2222:3333:4444:5555:6666:7777:8888:9999:0000", ip), -1);

    static const char *const refused[] = {
        "", "  \t ", "192.0.2.1:8080", "[2001:db8::1]", "[2001:db8::1]:443", "fe80::1%eth0",
        "example.com", "unknown", "_hidden", "192.0.2", "192.0.2.256", "192.0.2.1 10.0.0.1",
        "for=192.0.2.1", "192.0.2.1\r", "2001:db8::1::2",
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
        assert_int_equal(parse_ip(refused[i], ip), -1);
}

/* A real head, parsed: its slices point into head, which must outlive req. */
static void parse(const char *head, struct http_request *req)
{
    size_t scanned = 0;
    assert_true(http_parse_request(head, strlen(head), &scanned, req) > 0);
}

static bool wants_html(const char *head)
{
    struct http_request req;
    parse(head, &req);
    return head_wants_html(&req);
}

static void test_wants_html(void **state)
{
    assert_true(wants_html("GET / HTTP/1.1\r\nHost: a\r\n"
                           "Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\n\r\n"));
    assert_true(wants_html("HEAD / HTTP/1.1\r\nHost: a\r\naccept: text/html\r\n\r\n"));
    assert_true(wants_html("GET / HTTP/1.1\r\nHost: a\r\nAccept: application/json, text/html;q=0.1\r\n\r\n"));
    /* a script: no Accept, any type (curl), or JSON */
    assert_false(wants_html("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert_false(wants_html("GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n"));
    assert_false(wants_html("GET / HTTP/1.1\r\nHost: a\r\nAccept: application/json\r\n\r\n"));
    /* only a navigation (GET or HEAD) gets a page: not a form's POST nor a script's PUT */
    assert_false(wants_html("POST / HTTP/1.1\r\nHost: a\r\nAccept: text/html\r\nContent-Length: 0\r\n\r\n"));
    assert_false(wants_html("PUT / HTTP/1.1\r\nHost: a\r\nAccept: text/html\r\nContent-Length: 0\r\n\r\n"));
    assert_false(wants_html("DELETE / HTTP/1.1\r\nHost: a\r\nAccept: text/html\r\n\r\n"));
}

struct creds {
    int rc;
    bool single;
    char id[16], secret[16];
};

/* The credentials in head, for an app reading the JSON header hname (NULL: none), into
 * buffers of 16 bytes. */
static struct creds creds_of(const char *head, const char *hname)
{
    struct http_request req;
    struct creds c = { 0 };
    parse(head, &req);
    c.rc = head_service_credentials(&req, hname, c.id, sizeof c.id, c.secret, sizeof c.secret, &c.single);
    return c;
}

#define HEAD(fields) "GET / HTTP/1.1\r\nHost: a\r\n" fields "\r\n"

static void test_service_credentials(void **state)
{
    struct creds c = creds_of(HEAD("CF-Access-Client-Id: ci.access\r\nCF-Access-Client-Secret: s3cret\r\n"), NULL);
    assert_int_equal(c.rc, 1);
    assert_false(c.single);
    assert_string_equal(c.id, "ci.access");
    assert_string_equal(c.secret, "s3cret");
    c = creds_of(HEAD("cf-access-client-secret: s\r\ncf-access-client-id: i\r\n"), NULL); /* any case, order */
    assert_int_equal(c.rc, 1);
    assert_string_equal(c.id, "i");
    assert_string_equal(c.secret, "s");
    c = creds_of(HEAD("CF-Access-Client-Id: first\r\nCF-Access-Client-Id: second\r\n"
                      "CF-Access-Client-Secret: s\r\n"), NULL);
    assert_int_equal(c.rc, 1);
    assert_string_equal(c.id, "first");
    /* one of the two is none */
    assert_int_equal(creds_of(HEAD("CF-Access-Client-Id: ci.access\r\n"), NULL).rc, 0);
    assert_int_equal(creds_of(HEAD("CF-Access-Client-Secret: s3cret\r\n"), NULL).rc, 0);
    assert_int_equal(creds_of(HEAD(""), NULL).rc, 0);
    /* a value that does not fit (15 bytes and the NUL) is refused, never cut to a prefix */
    assert_int_equal(creds_of(HEAD("CF-Access-Client-Id: 123456789012345\r\nCF-Access-Client-Secret: s\r\n"), NULL).rc, 1);
    assert_int_equal(creds_of(HEAD("CF-Access-Client-Id: 1234567890123456\r\nCF-Access-Client-Secret: s\r\n"), NULL).rc, -1);
    assert_int_equal(creds_of(HEAD("CF-Access-Client-Id: i\r\nCF-Access-Client-Secret: 1234567890123456\r\n"), NULL).rc, -1);

    /* the app's single JSON header */
    c = creds_of(HEAD("X-Api-Auth: {\"cf-access-client-id\": \"i.access\", \"cf-access-client-secret\": \"s\"}\r\n"),
                 "x-api-auth");
    assert_int_equal(c.rc, 1);
    assert_true(c.single);
    assert_string_equal(c.id, "i.access");
    assert_string_equal(c.secret, "s");
    /* only when the app names it */
    assert_int_equal(creds_of(HEAD("X-Api-Auth: {\"cf-access-client-id\":\"i\",\"cf-access-client-secret\":\"s\"}\r\n"),
                              NULL).rc, 0);
    assert_int_equal(creds_of(HEAD("X-Api-Auth: {\"cf-access-client-id\":\"i\",\"cf-access-client-secret\":\"s\"}\r\n"),
                              "authorization").rc, 0);
    /* the two headers win over the JSON one */
    c = creds_of(HEAD("Authorization: {\"cf-access-client-id\":\"j\",\"cf-access-client-secret\":\"t\"}\r\n"
                      "CF-Access-Client-Id: i\r\nCF-Access-Client-Secret: s\r\n"), "authorization");
    assert_int_equal(c.rc, 1);
    assert_false(c.single);
    assert_string_equal(c.id, "i");
    /* a half of the pair in headers does not stop the JSON header */
    c = creds_of(HEAD("CF-Access-Client-Id: i\r\n"
                      "Authorization: {\"cf-access-client-id\":\"j\",\"cf-access-client-secret\":\"t\"}\r\n"),
                 "authorization");
    assert_int_equal(c.rc, 1);
    assert_true(c.single);
    assert_string_equal(c.id, "j");
    assert_string_equal(c.secret, "t");
    /* another use of the header (an API key, other JSON) is none, and left alone */
    static const char *const other[] = {
        HEAD("Authorization: Bearer abc.def.ghi\r\n"),
        HEAD("Authorization: {\"cf-access-client-id\":\"i\"}\r\n"),
        HEAD("Authorization: {\"cf-access-client-id\":\"i\",\"cf-access-client-secret\":7}\r\n"),
        HEAD("Authorization: {\"cf-access-client-id\":[\"i\"],\"cf-access-client-secret\":\"s\"}\r\n"),
        HEAD("Authorization: [\"i\",\"s\"]\r\n"),
        HEAD("Authorization: \"i\"\r\n"),
        HEAD("Authorization: {\"cf-access-client-id\":\"i\",\"cf-access-client-secret\":\"s\"} trailing\r\n"),
        /* two parsers could read a duplicate key two ways: refused */
        HEAD("Authorization: {\"cf-access-client-id\":\"i\",\"cf-access-client-secret\":\"s\","
             "\"cf-access-client-id\":\"admin\"}\r\n"),
        /* a NUL would end the id early in C: refused, not cut */
        HEAD("Authorization: {\"cf-access-client-id\":\"i\\u0000x\",\"cf-access-client-secret\":\"s\"}\r\n"),
    };
    for (size_t i = 0; i < sizeof other / sizeof *other; i++) {
        c = creds_of(other[i], "authorization");
        assert_int_equal(c.rc, 0);
        assert_false(c.single);
    }
    /* too long in JSON: refused, the header recognized as the credentials' */
    c = creds_of(HEAD("Authorization: {\"cf-access-client-id\":\"1234567890123456\",\"cf-access-client-secret\":\"s\"}\r\n"),
                 "authorization");
    assert_int_equal(c.rc, -1);
    assert_true(c.single);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nominated),        cmocka_unit_test(test_kept),
        cmocka_unit_test(test_request_fate),     cmocka_unit_test(test_response_passes),
        cmocka_unit_test(test_upgrade_allowed),  cmocka_unit_test(test_switches_to_websocket),
        cmocka_unit_test(test_lines_read),       cmocka_unit_test(test_fields_json),
        cmocka_unit_test(test_json_pretty),      cmocka_unit_test(test_parse_ip),
        cmocka_unit_test(test_wants_html),       cmocka_unit_test(test_service_credentials),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
