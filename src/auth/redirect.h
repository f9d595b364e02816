/* Where a login may send the browser afterwards (SPEC.md §6): a path on the app host that
 * started the login, or the URL of a configured app. Never an open redirect. */
#ifndef LATCH_REDIRECT_H
#define LATCH_REDIRECT_H

#include "route/route.h"

#include <stddef.h>

/* Accepts:
 *   - a path: exactly one leading '/', then anything but '/' or '\'; printable ASCII only
 *     (no spaces, controls, backslashes), also after one round of percent-decoding, so
 *     "/%09/evil" and "/%5Cevil" fail like "/\t/evil" and "/\evil";
 *   - an absolute http(s) URL of an origin the gateway serves (route/served.h: the scheme and
 *     port, the default one when left out, of one of its listeners' public addresses) whose host
 *     and path reach a configured app, with no userinfo ("https://user@evil"), same character
 *     rules; another port of an app's host name is not such an origin.
 * Refuses everything else: "//evil", "/\evil", "javascript:…", "https://evil-example.com",
 * "http://app.example.com:9999/" (a port the gateway does not serve), empty. Returns 0 when
 * acceptable. */
int redirect_check(const struct config *cfg, const struct route_table *routes, const char *url,
                   size_t n);

#endif
