/* libFuzzer target: the redirect_url validator (src/auth/redirect.c) on a small fixed config.
 * Whatever the input, an accepted value is either a path that stays on the app host (one '/',
 * then neither '/' nor '\', also after one round of percent-decoding) or an http(s) URL without
 * userinfo whose scheme and port are a listener's public ones and whose host[:port] and path reach
 * a configured app; and it holds no control, space, backslash or non-ASCII byte. Any other
 * acceptance aborts. */
#include "auth/redirect.h"
#include "config/config.h"
#include "http/form.h"
#include "http/path.h"
#include "route/route.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char fuzz_config[] =
    "listen: [{ address: \"127.0.0.1:8080\" }, { address: \"127.0.0.1:80\" },\n"
    "         { address: \"127.0.0.1:8081\", public: { scheme: https, port: 443 } }]\n"
    "auth_domain: auth.localhost:8080\n"
    "apps:\n"
    "  - name: wiki\n"
    "    domains: [\"wiki.localhost:8080\"]\n"
    "    origin: echo\n"
    "    policies: [{ name: p, decision: allow, include: [{ everyone: {} }] }]\n"
    "  - name: admin\n"
    "    domains: [\"api.example.com/admin/*\"]\n"
    "    origin: echo\n"
    "    policies: [{ name: p, decision: allow, include: [{ everyone: {} }] }]\n"
    "  - name: wild\n"
    "    domains: [\"*.apps.example.com\"]\n"
    "    origin: echo\n"
    "    policies: [{ name: p, decision: allow, include: [{ everyone: {} }] }]\n";

static struct config *fuzz_cfg;
static struct route_table *fuzz_rt;

static void fuzz_init(void)
{
    struct config_errors errs = { 0 };
    fuzz_cfg = config_load_buffer("fuzz.yaml", fuzz_config, strlen(fuzz_config), &errs);
    if (!fuzz_cfg) {
        config_errors_print(&errs, stderr);
        abort();
    }
    char *err = NULL;
    fuzz_rt = route_build(fuzz_cfg, &err);
    if (!fuzz_rt) {
        fprintf(stderr, "route_build: %s\n", err ? err : "?");
        abort();
    }
}

static void fail(const char *why, const uint8_t *data, size_t size)
{
    fprintf(stderr, "redirect_check accepted \"%.*s\": %s\n", (int)size, (const char *)data, why);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_rt)
        fuzz_init();
    const char *url = (const char *)data;
    if (redirect_check(fuzz_cfg, fuzz_rt, url, size) != 0)
        return 0;

    if (size == 0)
        fail("empty", data, size);
    for (size_t i = 0; i < size; i++)
        if (data[i] <= 0x20 || data[i] >= 0x7f || data[i] == '\\')
            fail("a control, space, backslash or non-ASCII byte", data, size);
    char *dec = malloc(size + 1);
    int dn = form_pct_decode(url, size, dec, size + 1);
    if (dn < 0)
        fail("a malformed escape", data, size);
    if (url[0] == '/') {
        if (size > 1 && (url[1] == '/' || url[1] == '\\'))
            fail("scheme-relative", data, size);
        if (dn > 1 && (dec[1] == '/' || dec[1] == '\\'))
            fail("scheme-relative once decoded", data, size);
        free(dec);
        return 0;
    }
    free(dec);
    size_t skip = size > 7 && !strncasecmp(url, "http://", 7) ? 7 : size > 8 && !strncasecmp(url, "https://", 8) ? 8 : 0;
    if (!skip)
        fail("neither a path nor an http(s) URL", data, size);
    const char *auth = url + skip, *end = url + size;
    const char *aend = auth;
    while (aend < end && *aend != '/')
        aend++;
    for (const char *p = auth; p < aend; p++)
        if (*p == '@' || *p == '?' || *p == '#' || *p == '%')
            fail("userinfo, query, fragment or escape in the authority", data, size);
    char host[600];
    if ((size_t)(aend - auth) >= sizeof host)
        fail("an oversized authority", data, size);
    int hl = route_host_normalize(auth, (size_t)(aend - auth), host);
    if (hl <= 0)
        fail("an invalid host", data, size);
    /* served: http on 8080 or 80, https on 443 (the listeners' public addresses); a default
     * port is left out of the name the app is matched by, as a browser's Host leaves it out */
    char *colon = host[0] == '[' ? strstr(host, "]:") : strchr(host, ':');
    if (colon && host[0] == '[')
        colon++;
    long dflt = skip == 8 ? 443 : 80, port = colon ? strtol(colon + 1, NULL, 10) : dflt;
    if (skip == 8 ? port != 443 : port != 8080 && port != 80)
        fail("an origin (scheme and port) the gateway does not serve", data, size);
    if (port == dflt && colon) {
        *colon = '\0';
        hl = (int)(colon - host);
    }
    const char *path = aend < end ? aend : "/";
    size_t plen = aend < end ? (size_t)(end - aend) : 1;
    for (size_t i = 0; i < plen; i++)
        if (path[i] == '?' || path[i] == '#') {
            plen = i;
            break;
        }
    char *fwd = malloc(plen + 2), *match = malloc(plen + 2);
    size_t fl, ml;
    if (path_normalize(path, plen, fwd, &fl, match, &ml) != 0 ||
        !route_match(fuzz_rt, host, (size_t)hl, match, ml))
        fail("a URL no configured app serves", data, size);
    free(fwd);
    free(match);
    return 0;
}
