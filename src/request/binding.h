/* The login binding (SPEC.md §5 "bound to the flow"): a grant is redeemed only in the browser
 * that started its login. When the app host sends a browser to the auth domain it sets a random
 * nonce in a cookie that only `authorized` on that host receives, and puts a tag of it (a hash)
 * in the login URL; the grant records the tag, and `authorized` admits it only with the cookie
 * whose tag it is. A grant link made in another browser (an attacker's own login, sent to a
 * victim: login CSRF) never plants its identity. A login's cookie is named after the first
 * digit of its tag (16 names): logins in several tabs seldom share one, and a browser never
 * holds more than 16 of them.
 * What protects is the tag's secrecy while the login lasts: whoever reads a login URL within
 * AUTH_BINDING_TTL_S (browser history, a front proxy's access log) could bind a grant of his own
 * to that browser. The hash keeps the cookie's value itself out of every URL. */
#ifndef LATCH_REQUEST_BINDING_H
#define LATCH_REQUEST_BINDING_H

#include "core/strbuf.h"
#include "http/http.h"

#include <stdbool.h>
#include <stddef.h>

#define AUTH_BINDING_COOKIE_PREFIX "latch_bind_"
#define AUTH_BINDING_NAME_MAX (sizeof AUTH_BINDING_COOKIE_PREFIX + 1)
#define AUTH_BINDING_PATH   HTTP_ACCESS_PREFIX "authorized"
#define AUTH_BINDING_TTL_S  900 /* a login: the provider's pages, a PIN's email (10 min) */
#define AUTH_BINDING_PARAM  "bind"
#define AUTH_BINDING_AGAIN  "again" /* a browser's second try: no third (cookies off) */

/* A fresh nonce (32 hex digits, for the cookie) and its tag (32 hex digits, for the URL). */
void binding_new(char nonce[33], char tag[33]);
/* The tag of a nonce read back from a cookie; false when it is not 32 hex digits. */
bool binding_tag(const char *nonce, char tag[33]);
/* The cookie holding the nonce of the login tagged `tag`: latch_bind_ and its first digit
 * (its base name: on https it is a __Host- cookie, http/cookie.h cookie_own_*). */
void binding_cookie_base(const char tag[33], char out[AUTH_BINDING_NAME_MAX]);
/* Whether s is a well-formed tag (32 lowercase hex digits), as a login URL must carry it. */
bool binding_tag_valid(const char *s);

/* Appends the login URL an app host sends a browser to: AUTH_URL/cdn-cgi/access/login/HOST
 * ?redirect_url=TARGET, and &bind=TAG when `tag` is not NULL. */
void binding_login_url(struct strbuf *sb, const char *auth_url, const char *host, size_t host_len,
                       const char *target, size_t target_len, const char *tag);

#endif
