/* Origins (scheme, host, port) of the URLs the command line deals with, read strictly, and the
 * one rule for plain HTTP (SPEC.md §7: a token is only ever sent to the origin it was issued
 * for, and never in clear over a network). Whatever this reader cannot be sure of, it refuses
 * with the reason, rather than guess what curl or a resolver would make of it. */
#include "cli/cli.h"
#include "core/ipaddr.h"
#include "http/path.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WHY(...) (snprintf(why, cap, __VA_ARGS__), -1)

static bool origin__digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Decimal 0..max without a leading zero ("0" itself is fine); -1 otherwise. */
static long origin__number(const char *s, size_t n, long max)
{
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!origin__digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= max ? v : -1;
}

/* An IPv4 address in canonical dotted-quad form: four decimal numbers 0..255, no leading
 * zeros. What curl, browsers and resolvers all read the same way. */
static bool origin__dotted_quad(const char *h, unsigned char out[4])
{
    const char *p = h;
    for (int i = 0; i < 4; i++) {
        size_t n = strcspn(p, ".");
        long v = origin__number(p, n, 255);
        if (v < 0 || (i < 3 && p[n] != '.') || (i == 3 && p[n] != '\0'))
            return false;
        out[i] = (unsigned char)v;
        p += n + 1;
    }
    return true;
}

/* A host name or address as latch accepts it: dot-separated labels of lowercase letters,
 * digits and '-', no empty label (so no trailing dot), at most 253 characters. A name whose
 * last label starts with a digit is read by curl and browsers as an IPv4 address in some
 * spelling (127.1, 0x7f.0.0.1, 2130706433, 0177.0.0.1): only the canonical dotted quad is
 * accepted. Everything else (percent-encoding, '\', '@', '[', '{', whitespace, non-ASCII) is
 * refused. */
static int origin__host(const char *h, char *why, size_t cap)
{
    size_t n = strlen(h);
    if (n == 0 || n > 253)
        return WHY("the host name is empty or too long");
    const char *last = h;
    for (const char *p = h; *p; p++) {
        char c = *p;
        if (c == '.') {
            if (p == h || p[1] == '\0' || p[-1] == '.')
                return WHY("the host name '%s' has an empty label (or a trailing dot)", h);
            last = p + 1;
        } else if (!((c >= 'a' && c <= 'z') || origin__digit(c) || c == '-')) {
            return WHY("the host '%s' has a character latch does not read in a host name ('%c')", h, c);
        }
    }
    unsigned char ip[4];
    if (origin__digit(*last) && !origin__dotted_quad(h, ip))
        return WHY("the host '%s' is an IP address in an unusual spelling: write it as four decimal "
                   "numbers (a.b.c.d)", h);
    return 0;
}

int cli_origin_parse(const char *url, struct cli_origin *o, char *why, size_t cap)
{
    memset(o, 0, sizeof *o);
    const char *p;
    if (!strncasecmp(url, "http://", 7)) {
        strcpy(o->scheme, "http");
        p = url + 7;
    } else if (!strncasecmp(url, "https://", 8)) {
        strcpy(o->scheme, "https");
        p = url + 8;
    } else {
        return WHY("'%s' is not an absolute http:// or https:// URL (latch does not guess a scheme the way curl does)",
                   url);
    }
    /* the authority runs to the first '/': a '?', '#', '@', '\' or anything else inside it is
     * refused, so no reader can end it elsewhere (userinfo, a fragment hiding a host) */
    size_t n = strcspn(p, "/");
    char auth[300];
    if (n == 0 || n >= sizeof auth)
        return WHY("'%s' has no host, or one too long", url);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        auth[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    auth[n] = '\0';
    if (strchr(auth, '@'))
        return WHY("'%s' carries a user name (userinfo): refused", url);
    /* IPv6: the loopback address in its one canonical spelling, nothing else */
    bool v6 = !strncmp(auth, "[::1]", 5) && (auth[5] == '\0' || auth[5] == ':');
    if (auth[0] == '[' && !v6)
        return WHY("'%s': latch reads no IPv6 address but [::1]", url);
    char *colon = strchr(v6 ? auth + 5 : auth, ':');
    long port = !strcmp(o->scheme, "https") ? 443 : 80;
    if (colon) {
        *colon = '\0';
        port = origin__number(colon + 1, strlen(colon + 1), 65535);
        if (port <= 0)
            return WHY("'%s' has a port latch does not read (1 to 65535, decimal, no leading zero)", url);
    }
    if (!v6 && origin__host(auth, why, cap) != 0)
        return -1;
    snprintf(o->host, sizeof o->host, "%s", auth);
    o->port = (unsigned)port;
    bool dflt = o->port == (strcmp(o->scheme, "https") ? 80u : 443u);
    if (dflt)
        snprintf(o->key, sizeof o->key, "%s", o->host);
    else
        snprintf(o->key, sizeof o->key, "%s:%u", o->host, o->port);
    snprintf(o->text, sizeof o->text, "%s://%s:%u", o->scheme, o->host, o->port);
    return 0;
}

bool cli_origin_same(const struct cli_origin *a, const struct cli_origin *b)
{
    return !strcmp(a->text, b->text);
}

/* Loopback names (RFC 6761 §6.3: localhost and names under .localhost), loopback IPv4
 * literals in dotted-quad form, and [::1]. Not "any name that starts with 127.". */
bool cli_cleartext_ok(const struct cli_origin *o)
{
    if (strcmp(o->scheme, "http") != 0)
        return true;
    return ipaddr_loopback_name(o->host);
}

const char *cli_url_scheme(const char *arg, char *buf, size_t cap)
{
    const char *sep = strstr(arg, "://"); /* a scheme only where it comes first (not in a query) */
    if (sep && (size_t)(sep - arg) < strcspn(arg, "/?#"))
        return arg;
    int n = snprintf(buf, cap, "https://%s", arg);
    return n > 0 && (size_t)n < cap ? buf : NULL;
}

static bool origin__glob_char(char c)
{
    return c == '{' || c == '}' || c == '[' || c == ']';
}

char *cli_url_raw_path(const char *url)
{
    const char *p = strstr(url, "://");
    if (!p)
        return NULL;
    p += 3;
    p += strcspn(p, "/?#"); /* the authority (cli_origin_parse refuses '?', '#' and '@' in it) */
    size_t n = *p == '/' ? strcspn(p, "?#") : 0;
    char *out = n ? strndup(p, n) : strdup("/");
    return out;
}

bool cli_path_globs(const char *raw)
{
    for (const char *p = raw; *p; p++)
        if (origin__glob_char(*p))
            return true;
    return false;
}

int cli_path_match(const char *raw, char **out, char *why, size_t cap)
{
    /* curl sends bytes >= 0x80 percent-encoded (it refuses spaces and controls): the same here,
     * then the gateway's own normalization (http/path.h) */
    size_t n = strlen(raw);
    char *enc = malloc(n * 3 + 1), *fwd = malloc(n * 3 + 2), *match = malloc(n * 3 + 2);
    size_t e = 0, fl, ml;
    int rc = -1;
    *out = NULL;
    if (!enc || !fwd || !match) {
        snprintf(why, cap, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)raw[i];
        if (c >= 0x80)
            e += (size_t)sprintf(enc + e, "%%%02X", c);
        else
            enc[e++] = (char)c;
    }
    enc[e] = '\0';
    if (e == 0 || enc[0] != '/' || path_normalize(enc, e, fwd, &fl, match, &ml) != 0) {
        snprintf(why, cap, "the path '%s' has what the gateway refuses (a space, a control character, a "
                           "backslash, an encoded '/' or NUL, or a malformed %%-escape)", raw);
        goto out;
    }
    *out = match;
    match = NULL;
    rc = 0;
out:
    free(enc);
    free(fwd);
    free(match);
    return rc;
}
