/* The login binding (SPEC.md §5 "bound to the flow"): a grant is redeemed only in the browser
 * that started its login. When the app host sends a browser to the auth domain it sets a random
 * nonce in a cookie that only `authorized` on that host receives, and puts a tag of it (a hash:
 * the cookie's value never travels in a URL) in the login URL; the grant records the tag, and
 * `authorized` admits it only with the cookie whose tag it is. A grant link made in another
 * browser (an attacker's own login, sent to a victim: login CSRF) never plants its identity. */
#ifndef LATCH_AUTH_BINDING_H
#define LATCH_AUTH_BINDING_H

#include "core/strbuf.h"

#include <stdbool.h>
#include <stddef.h>

#define AUTH_BINDING_COOKIE "CF_Binding"
#define AUTH_BINDING_PATH   "/cdn-cgi/access/authorized"
#define AUTH_BINDING_TTL_S  900 /* a login: the provider's pages, a PIN's email (10 min) */
#define AUTH_BINDING_PARAM  "bind"

/* A fresh nonce (32 hex digits, for the cookie) and its tag (32 hex digits, for the URL). */
void binding_new(char nonce[33], char tag[33]);
/* The tag of a nonce read back from a cookie; false when it is not 32 hex digits. */
bool binding_tag(const char *nonce, char tag[33]);
/* Whether s is a well-formed tag (32 lowercase hex digits), as a login URL must carry it. */
bool binding_tag_valid(const char *s);

/* Appends the login URL an app host sends a browser to: AUTH_URL/cdn-cgi/access/login/HOST
 * ?redirect_url=TARGET, and &bind=TAG when `tag` is not NULL. */
void binding_login_url(struct strbuf *sb, const char *auth_url, const char *host, size_t host_len,
                       const char *target, size_t target_len, const char *tag);

#endif
