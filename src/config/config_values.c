/* Checkers and parsers for the configuration's scalar values: durations, CIDRs, listen addresses,
 * URLs, host names, e-mail addresses, domain patterns, hex digests and RFC 3339 times. */
#include "config/config-int.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool config_is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool config_is_ctl_or_space(unsigned char ch)
{
    return ch <= 0x20 || ch == 0x7f;
}

void config__lower(char *s)
{
    for (; s && *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* A decimal port 1..65535 of exactly n bytes: no sign, no spaces. -1 when invalid. */
int config__port(const char *s, size_t n)
{
    if (n == 0 || n > 5)
        return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!config_is_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v >= 1 && v <= 65535 ? v : -1;
}

int64_t config_parse_duration_ms(const char *s)
{
    /* A sequence of <digits><unit>, units ms s m h d w; no sign, no spaces, no fractions. */
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"ms", 1},           {"s", 1000},          {"m", 60000},
                 {"h", 3600000},      {"d", 86400000},      {"w", 604800000}};
    if (!s || !*s)
        return -1;
    int64_t total = 0;
    const char *p = s;
    while (*p) {
        if (!config_is_digit(*p))
            return -1;
        int64_t n = 0;
        for (; config_is_digit(*p); p++) {
            if (n > (INT64_MAX - (*p - '0')) / 10)
                return -1;
            n = n * 10 + (*p - '0');
        }
        int64_t mult = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t ul = strlen(units[i].unit);
            if (strncmp(p, units[i].unit, ul) == 0) {
                mult = units[i].ms;
                p += ul;
                break; /* "ms" is listed before "m" and "s" */
            }
        }
        if (mult == 0 || n > INT64_MAX / mult || total > INT64_MAX - n * mult)
            return -1;
        total += n * mult;
    }
    return total;
}

int config_parse_cidr(const char *s, struct cidr *out)
{
    char buf[INET6_ADDRSTRLEN + 8];
    uint8_t addr[16] = {0};
    int max, prefix;
    if (!s || strlen(s) >= sizeof buf)
        return -1;
    strcpy(buf, s);
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = '\0';
    if (inet_pton(AF_INET, buf, addr + 12) == 1) {
        addr[10] = addr[11] = 0xff; /* ::ffff:a.b.c.d */
        max = 32;
    } else if (inet_pton(AF_INET6, buf, addr) == 1) {
        max = 128;
    } else {
        return -1;
    }
    prefix = max;
    if (slash) {
        const char *p = slash + 1;
        size_t n = strlen(p);
        if (n == 0 || n > 3)
            return -1;
        prefix = 0;
        for (size_t i = 0; i < n; i++) {
            if (!config_is_digit(p[i]))
                return -1;
            prefix = prefix * 10 + (p[i] - '0');
        }
        if (prefix > max)
            return -1;
    }
    if (max == 32)
        prefix += 96;
    /* Host bits are cleared so that 10.1.2.3/8 means 10.0.0.0/8. */
    for (int bit = prefix; bit < 128; bit++)
        addr[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
    memcpy(out->addr, addr, 16);
    out->prefix = (uint8_t)prefix;
    return 0;
}

bool cidr_contains(const struct cidr *c, const uint8_t addr[16])
{
    unsigned full = c->prefix / 8, rest = c->prefix % 8;
    if (c->prefix > 128)
        return false;
    if (memcmp(c->addr, addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (c->addr[full] & mask) == (addr[full] & mask);
}

const char *config__check_address(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    /* host:port with an IPv4 literal or "localhost", or [IPv6]:port. No DNS at load time: a
     * listener must not depend on a resolver being up when latchd starts. */
    char host[INET6_ADDRSTRLEN + 32];
    const char *port;
    bool v6 = false;
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close)
            return "missing ']' after the IPv6 address";
        if (close[1] != ':')
            return "missing ':port' after the IPv6 address";
        hl = (size_t)(close - s - 1);
        if (hl == 0 || hl >= sizeof host)
            return "invalid IPv6 address";
        memcpy(host, s + 1, hl);
        port = close + 2;
        v6 = true;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon)
            return "missing ':port' (expected host:port or [IPv6]:port)";
        hl = (size_t)(colon - s);
        if (memchr(s, ':', hl))
            return "IPv6 addresses need brackets, e.g. [::1]:8080";
        if (hl == 0)
            return "missing host (use 0.0.0.0:PORT or [::]:PORT for every interface)";
        if (hl >= sizeof host)
            return "host too long";
        memcpy(host, s, hl);
        port = colon + 1;
    }
    host[hl] = '\0';
    int pn = config__port(port, strlen(port));
    if (pn < 0)
        return "port must be a number from 1 to 65535";
    memset(ss, 0, sizeof *ss);
    if (!v6) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)pn);
        if (strcasecmp(host, "localhost") == 0)
            sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) /* strict dotted quad */
            return "host must be an IPv4 address, [IPv6] or localhost";
        *len = sizeof *sin;
        return NULL;
    }
    /* getaddrinfo with AI_NUMERICHOST: no lookup, but scope ids (fe80::1%eth0) work. */
    struct addrinfo hints = {.ai_family = AF_INET6,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) != 0 || !res)
        return "invalid IPv6 address";
    if (res->ai_addrlen > sizeof *ss) {
        freeaddrinfo(res);
        return "invalid IPv6 address";
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = (socklen_t)res->ai_addrlen;
    freeaddrinfo(res);
    return NULL;
}

/* A DNS name or IPv4 literal: dot-separated labels of [a-z0-9-_] (lowercase expected),
 * 1..63 bytes each, 253 in all. `_` is tolerated (container host names use it). */
static const char *config_check_labels(const char *s, size_t n, bool underscore)
{
    if (n == 0)
        return "empty host name";
    if (n > 253)
        return "host name longer than 253 characters";
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '.') {
            if (label == 0)
                return "empty label in host name";
            label = 0;
            continue;
        }
        if (!((ch >= 'a' && ch <= 'z') || config_is_digit(ch) || ch == '-' ||
              (underscore && ch == '_')))
            return "host names may only contain letters, digits, '-' and '.'";
        if (++label > 63)
            return "host name label longer than 63 characters";
    }
    if (label == 0)
        return "host name ends with '.'";
    return NULL;
}

const char *config__check_dns_name(const char *s)
{
    return config_check_labels(s, strlen(s), false);
}

const char *config__check_hostport(const char *s)
{
    /* host[:port] or [IPv6][:port]; no scheme, no path: it is a Host header value. */
    if (strstr(s, "://"))
        return "must be host[:port], not a URL";
    if (strchr(s, '/'))
        return "must be host[:port] without a path";
    const char *end = s + strlen(s);
    const char *hend;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        char v6[INET6_ADDRSTRLEN];
        struct in6_addr a;
        if (!close || (size_t)(close - s - 1) >= sizeof v6)
            return "invalid IPv6 address";
        memcpy(v6, s + 1, (size_t)(close - s - 1));
        v6[close - s - 1] = '\0';
        if (inet_pton(AF_INET6, v6, &a) != 1)
            return "invalid IPv6 address";
        hend = close + 1;
        if (hend != end && *hend != ':')
            return "unexpected text after ']'";
    } else {
        hend = strchr(s, ':');
        if (!hend)
            hend = end;
        const char *why = config_check_labels(s, (size_t)(hend - s), false);
        if (why)
            return why;
    }
    if (hend != end && config__port(hend + 1, (size_t)(end - hend - 1)) < 0)
        return "port must be a number from 1 to 65535";
    return NULL;
}

const char *config__check_hex64(const char *s)
{
    size_t n = strlen(s);
    if (n != 64)
        return "must be 64 hexadecimal characters";
    for (size_t i = 0; i < n; i++)
        if (!config_is_digit(s[i]) && !((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'f'))
            return "must be 64 hexadecimal characters";
    return NULL;
}

/* Reads exactly n digits; -1 otherwise. */
static int config_digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!config_is_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

const char *config__parse_rfc3339(const char *s, time_t *out)
{
    /* Only the UTC form YYYY-MM-DDTHH:MM:SSZ (RFC 3339 §5.6 with offset Z): one spelling, so
     * that an expiry never depends on the gateway's time zone. */
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *why = "must be an RFC 3339 UTC time such as 2027-11-28T00:00:00Z";
    if (strlen(s) != 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
        s[13] != ':' || s[16] != ':' || (s[19] != 'Z' && s[19] != 'z'))
        return why;
    int y = config_digits(s, 4), mo = config_digits(s + 5, 2), d = config_digits(s + 8, 2);
    int h = config_digits(s + 11, 2), mi = config_digits(s + 14, 2), sec = config_digits(s + 17, 2);
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
        sec < 0 || sec > 59)
        return why;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] + (mo == 2 && leap))
        return "no such day in that month";
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                    .tm_hour = h, .tm_min = mi, .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t <= 0)
        return why;
    *out = t;
    return NULL;
}

const char *config__parse_url(const char *s, struct config__url *u)
{
    /* scheme://host[:port][/path]. Refused: user info (credentials do not belong in a URL in a
     * config file), query, fragment, spaces and controls. */
    memset(u, 0, sizeof *u);
    const char *sep = strstr(s, "://");
    if (!sep || sep == s || (size_t)(sep - s) >= sizeof u->scheme)
        return "must be a URL such as https://host:port";
    memcpy(u->scheme, s, (size_t)(sep - s));
    config__lower(u->scheme);
    for (const char *p = s; *p; p++) {
        if (config_is_ctl_or_space((unsigned char)*p))
            return "URL contains a space or control character";
        if (*p == '?' || *p == '#')
            return "URL must not have a query or fragment";
    }
    const char *auth = sep + 3;
    const char *aend = strchr(auth, '/');
    if (!aend)
        aend = auth + strlen(auth);
    u->path = aend;
    if (memchr(auth, '@', (size_t)(aend - auth)))
        return "URL must not contain user info ('user@')";
    const char *hend;
    if (*auth == '[') {
        const char *close = memchr(auth, ']', (size_t)(aend - auth));
        size_t hl = close ? (size_t)(close - auth - 1) : 0;
        struct in6_addr a;
        if (!close || hl == 0 || hl >= sizeof u->host)
            return "invalid IPv6 address in URL";
        memcpy(u->host, auth + 1, hl);
        u->host[hl] = '\0';
        if (inet_pton(AF_INET6, u->host, &a) != 1)
            return "invalid IPv6 address in URL";
        u->v6 = true;
        hend = close + 1;
        if (hend != aend && *hend != ':')
            return "unexpected text after ']' in URL";
    } else {
        const char *colon = memchr(auth, ':', (size_t)(aend - auth));
        hend = colon ? colon : aend;
        size_t hl = (size_t)(hend - auth);
        if (hl == 0)
            return "URL has no host";
        if (hl >= sizeof u->host)
            return "URL host too long";
        memcpy(u->host, auth, hl);
        u->host[hl] = '\0';
        config__lower(u->host);
        if (config_check_labels(u->host, hl, true))
            return "URL host must be a host name, an IPv4 address or [IPv6]";
    }
    if (hend != aend) {
        int pn = config__port(hend + 1, (size_t)(aend - hend - 1));
        if (pn < 0)
            return "URL port must be a number from 1 to 65535";
        u->port = (uint16_t)pn;
        u->has_port = true;
    }
    return NULL;
}
