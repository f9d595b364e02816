/* The redirect_url validator (redirect.h). */
#include "auth/redirect.h"

#include "http/form.h"
#include "http/path.h"
#include "route/served.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define REDIRECT_MAX 4096

static bool redirect__chars_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '\\')
            return false;
    }
    return true;
}

/* After one round of decoding: spaces and UTF-8 are fine inside a path; controls and
 * backslashes (which browsers read as '/') are not. */
static bool redirect__decoded_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f || ch == '\\')
            return false;
    }
    return true;
}

static bool redirect__path_ok(const char *s, size_t n)
{
    return n >= 1 && s[0] == '/' && (n == 1 || (s[1] != '/' && s[1] != '\\'));
}

int redirect_check(const struct config *cfg, const struct route_table *routes, const char *url,
                   size_t n)
{
    char dec[REDIRECT_MAX];
    if (n == 0 || n >= REDIRECT_MAX || !redirect__chars_ok(url, n))
        return -1;
    int dn = form_pct_decode(url, n, dec, sizeof dec);
    if (dn < 0 || !redirect__decoded_ok(dec, (size_t)dn))
        return -1;
    if (url[0] == '/')
        return redirect__path_ok(url, n) && redirect__path_ok(dec, (size_t)dn) ? 0 : -1;

    size_t skip;
    if (n > 7 && !strncasecmp(url, "http://", 7))
        skip = 7;
    else if (n > 8 && !strncasecmp(url, "https://", 8))
        skip = 8;
    else
        return -1; /* javascript:, data:, relative paths, scheme-relative … */
    const char *auth = url + skip, *end = url + n;
    const char *slash = memchr(auth, '/', (size_t)(end - auth));
    const char *aend = slash ? slash : end;
    if (memchr(auth, '@', (size_t)(aend - auth)) || memchr(auth, '?', (size_t)(aend - auth)) ||
        memchr(auth, '#', (size_t)(aend - auth)))
        return -1;
    char host[512], served_host[SERVED_HOST_MAX + 6];
    struct served_origin so;
    if ((size_t)(aend - auth) >= sizeof host)
        return -1;
    int hl = route_host_normalize(auth, (size_t)(aend - auth), host);
    if (hl <= 0 || served_lookup(cfg, skip == 8, host, (size_t)hl, &so) != 0)
        return -1;
    hl = served_hostport(&so, served_host); /* as the browser's Host will name it */
    /* the path (without its query) must normalize, and the app is found with it */
    const char *path = slash ? slash : "/";
    const char *q = slash ? memchr(slash, '?', (size_t)(end - slash)) : NULL;
    size_t plen = slash ? (size_t)((q ? q : end) - slash) : 1;
    char *fwd = malloc(plen + 2), *match = malloc(plen + 2);
    size_t fl, ml;
    int rc = -1;
    if (fwd && match && path_normalize(path, plen, fwd, &fl, match, &ml) == 0 &&
        route_match(routes, served_host, (size_t)hl, match, ml))
        rc = 0;
    free(fwd);
    free(match);
    return rc;
}
