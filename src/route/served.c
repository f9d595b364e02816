/* The origins the gateway serves to browsers (served.h). */
#include "route/served.h"

#include "route/route.h"

#include <stdio.h>
#include <string.h>

/* Splits a normalized "host[:port]": the name's length, and the port (0 when none). */
static int served__split(const char *host, size_t n, size_t *name_len, unsigned *port)
{
    const char *end = host + n, *colon;
    if (n == 0)
        return -1;
    if (host[0] == '[') {
        const char *close = memchr(host, ']', n);
        if (!close)
            return -1;
        colon = close + 1 < end ? close + 1 : NULL;
        if (colon && *colon != ':')
            return -1;
    } else {
        colon = memchr(host, ':', n);
    }
    *name_len = colon ? (size_t)(colon - host) : n;
    *port = 0;
    if (colon) {
        const char *p = colon + 1;
        if (p == end || end - p > 5)
            return -1;
        for (; p < end; p++) {
            if (*p < '0' || *p > '9')
                return -1;
            *port = *port * 10 + (unsigned)(*p - '0');
        }
        if (*port == 0 || *port > 65535)
            return -1;
    }
    return *name_len > 0 && *name_len < SERVED_HOST_MAX ? 0 : -1;
}

static void served__name(struct served_origin *out, const char *host, size_t name_len)
{
    memcpy(out->host, host, name_len);
    out->host[name_len] = '\0';
}

int served_of_request(const struct listener_cfg *l, const char *host, size_t n,
                      struct served_origin *out)
{
    size_t name_len;
    unsigned port;
    if (served__split(host, n, &name_len, &port) != 0)
        return -1;
    served__name(out, host, name_len);
    out->https = l->public_https;
    out->port = l->public_port;
    return 0;
}

int served_lookup(const struct config *cfg, int https, const char *host, size_t n,
                  struct served_origin *out)
{
    size_t name_len;
    unsigned port;
    if (served__split(host, n, &name_len, &port) != 0)
        return -1;
    /* what the link may mean: its port on its scheme (any scheme when it names none); no port
     * is the scheme's default, https:443 before http:80 when it names no scheme either */
    struct try { int https; unsigned port; } tries[2] = { { https, port } };
    size_t ntries = 1;
    if (!port && https >= 0) {
        tries[0].port = https ? 443 : 80;
    } else if (!port) {
        tries[0] = (struct try){ 1, 443 };
        tries[1] = (struct try){ 0, 80 };
        ntries = 2;
    }
    for (size_t t = 0; t < ntries; t++) {
        bool found = false, found_https = false;
        for (size_t i = 0; i < cfg->nlisteners; i++) {
            const struct listener_cfg *l = &cfg->listeners[i];
            if (l->public_port != tries[t].port || (tries[t].https >= 0 && l->public_https != (tries[t].https == 1)))
                continue;
            found = true;
            found_https |= l->public_https;
        }
        if (found) {
            served__name(out, host, name_len);
            out->https = found_https;
            out->port = (uint16_t)tries[t].port;
            return 0;
        }
    }
    return -1;
}

int served_hostport(const struct served_origin *o, char *out)
{
    bool dflt = o->port == (o->https ? 443 : 80);
    return dflt ? snprintf(out, SERVED_HOST_MAX + 6, "%s", o->host)
                : snprintf(out, SERVED_HOST_MAX + 6, "%s:%u", o->host, (unsigned)o->port);
}

int served_url(const struct served_origin *o, char *out)
{
    char hp[SERVED_HOST_MAX + 6];
    served_hostport(o, hp);
    return snprintf(out, SERVED_HOST_MAX + 14, "%s://%s", o->https ? "https" : "http", hp);
}

bool served_same(const struct served_origin *a, const struct served_origin *b)
{
    return a->https == b->https && a->port == b->port && !strcmp(a->host, b->host);
}

bool served_is(const struct served_origin *o, const char *url)
{
    bool https = !strncmp(url, "https://", 8);
    if (!https && strncmp(url, "http://", 7))
        return false;
    const char *auth = url + (https ? 8 : 7);
    size_t n = strcspn(auth, "/?#");
    char host[SERVED_HOST_MAX + 8];
    size_t name_len;
    unsigned port;
    if (n == 0 || n >= SERVED_HOST_MAX || memchr(auth, '@', n))
        return false;
    int hl = route_host_normalize(auth, n, host);
    if (hl <= 0 || served__split(host, (size_t)hl, &name_len, &port) != 0)
        return false;
    host[name_len] = '\0';
    return https == o->https && (port ? port : https ? 443u : 80u) == o->port && !strcmp(host, o->host);
}
