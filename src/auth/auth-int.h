/* Shared inside src/auth: identities, cookies, the org session, grants and the end of a login.
 * Names with `auth__` are internal to this folder. */
#ifndef LATCH_AUTH_INT_H
#define LATCH_AUTH_INT_H

#include "auth/auth.h"
#include "config/config-t.h"
#include "core/strbuf.h"
#include "http/http.h"
#include "request/error.h"
#include "request/page.h"
#include "token/jwt.h"
#include "token/verify.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define AUTH_FLOW_COOKIE  "latch_flow" /* __Host-latch_flow on https (http/cookie.h) */
#define AUTH_PIN_COOKIE   "latch_pin"  /* a browser that signed in with a PIN as a mailbox (otp.c) */
#define AUTH_FLOW_TTL_S   600
#define AUTH_GRANT_TTL_S  60
/* Past this many bytes of groups, tokens carry only identity_nonce (SPEC.md §5). */
#define AUTH_GROUPS_INLINE_MAX 2048

/* A person as an identity provider reported them. */
struct auth_identity {
    char *email;   /* lowercase */
    char *sub;     /* ours, derived from the email */
    char *idp;
    char **groups; size_t ngroups;
    char **amr;    size_t namr;
};

void auth__identity_free(struct auth_identity *id);
json_t *auth__identity_json(const struct auth_identity *id);
int auth__identity_from_json(json_t *j, struct auth_identity *id);

/* Random 128-bit identifier as 32 hex characters. */
void auth__random_id(char out[33]);

/* "Set-Cookie: name=value; Path=…; Max-Age=…; HttpOnly; SameSite=Lax[; Secure]\r\n"
 * (malloc'd); max_age 0 clears it. */
char *auth__set_cookie(const struct endpoint_req *r, const char *name, const char *value,
                       const char *path, int64_t max_age);
/* The value of a request cookie; false when absent or longer than cap - 1. */
bool auth__cookie(const struct endpoint_req *r, const char *name, char *out, size_t cap);
/* The gateway's own short-lived cookies (flow, binding): `base` as it is named on the origin
 * the request reached (__Host-base on https), read and set (cookie_own_set_line). */
bool auth__own_cookie(const struct endpoint_req *r, const char *base, char *out, size_t cap);
/* The token cookie (CF_Authorization, with its pair on https: http/cookie.h): the request's
 * (false when none, or only one this origin did not pair), and the Set-Cookie lines that set
 * it (max_age 0: clear it). */
bool auth__token_cookie(const struct endpoint_req *r, char *out, size_t cap);
char *auth__token_cookies(const struct endpoint_req *r, const char *tok, int64_t max_age);
char *auth__set_own_cookie(const struct endpoint_req *r, const char *base, const char *value,
                           const char *path, int64_t max_age);
/* A query parameter; false when absent or malformed. */
bool auth__query(const struct endpoint_req *r, const char *name, char *out, size_t cap);
/* A form field of a POST body; false when absent or malformed. */
bool auth__form(const struct endpoint_req *r, const char *name, char *out, size_t cap);

/* The org session of the auth domain's CF_Authorization cookie: fills id and the session id,
 * or returns false (none, expired, revoked). */
bool auth__org_session(const struct endpoint_req *r, struct auth_identity *id, char session[33]);
/* Verifies an org token (a cookie's, or the cf-access-token header's): TOKEN_OK with id and
 * session filled, or why not (expired, revoked, another type…). */
enum token_status auth__org_token(const struct endpoint_req *r, const char *tok, struct auth_identity *id,
                                  char session[33]);

/* What an org token (app NULL) or an app's token must be here (token/verify.h). */
struct token_want auth__want(const struct endpoint_req *r, const char *type, const struct app *app);

/* The person a verified token names; a large identity is read from the store by its nonce. */
struct token;
int auth__token_identity(const struct endpoint_req *r, const struct token *t, struct auth_identity *id);

/* The identity behind the request's token: the app token on an app host (cf-access-token,
 * then the cookie), the org token on the auth domain. TOKEN_OK with id, session, *app (app
 * hosts) and *exp (NULL: not wanted) filled, or why not; *presented false when the request
 * carries no token. A person's token only (a service token has no session). */
enum token_status auth__bearer(struct endpoint_req *r, struct auth_identity *id, char session[33],
                               const struct app **app, bool *presented, int64_t *exp);
/* A token that was refused: its cause in the auth log under `event`. */
void auth__bearer_refused(const struct endpoint_req *r, const char *event, const struct app *app,
                          enum token_status ts);

/* The app's policies for an identity (a person's, or a service token's) from this client. */
struct identity;
struct policy_result;
void auth__evaluate(const struct endpoint_req *r, const struct app *app, const struct identity *pid,
                    struct policy_result *res);
/* Evaluates the app's policies for a person (SPEC.md §3.3) from this client. */
bool auth__admitted(const struct endpoint_req *r, const struct app *app, const struct auth_identity *id,
                    const struct policy **decided);

/* The app that a request for host and path reaches (the path normalized and matched as a
 * request's is; a query is ignored). NULL when none does, or the path is not one. */
const struct app *auth__app_at(const struct endpoint_req *r, const char *host, const char *path);
/* The app for a login target host (and redirect path): auth__app_at, else the app at the
 * host's root. NULL when the host serves none. */
const struct app *auth__target_app(const struct endpoint_req *r, const char *host, const char *redirect);

/* Signs an org or app token for the person under session `session`. */
char *auth__mint(const struct endpoint_req *r, const char *type, const char *aud,
                 const struct auth_identity *id, const char *session, int64_t ttl);

/* With an identity in hand (after a login or from the org session): checks the app's policy,
 * stores a single-use grant and redirects to the app host's `authorized` endpoint; or answers
 * the denied page. `bind` is the login's binding tag (request/binding.h), NULL when the login URL
 * carried none. `headers` (Set-Cookie lines) go with either answer. */
enum endpoint_result auth__grant_and_go(struct exchange *c, struct endpoint_req *r, const char *host, const char *redirect,
                                        const char *bind, const struct auth_identity *id, const char *session,
                                        const char *headers);

/* Ends a successful login: a new session id, the org cookie, then auth__grant_and_go.
 * `headers` (Set-Cookie lines of the provider's own, or NULL) go with the answer. */
enum endpoint_result auth__complete_login(struct exchange *c, struct endpoint_req *r, json_t *flow, struct auth_identity *id,
                                          const char *headers);

/* A new login flow for app/host; `bind` as for auth__grant_and_go; `cli` (a query string)
 * brings the browser back to the command line's confirmation page instead of the app. */
enum endpoint_result auth__begin_flow(struct exchange *c, struct endpoint_req *r, const struct app *app, const char *host,
                                      const char *redirect, const char *bind, const char *cli);

/* POST cert_sign on an app host: an SSH certificate for the bearer (ssh_sign.c). */
enum endpoint_result auth__cert_sign(struct exchange *c, struct endpoint_req *r);

/* The app launcher (launcher.c): the auth domain's root and apps. */
enum endpoint_result auth__launcher(struct exchange *c, struct endpoint_req *r);
/* Whether the launcher lists `app` for the person: an app people sign in to (an allow policy)
 * whose policies admit them from this client. Also decides whether a launcher sign-in mails
 * a PIN (to nobody who would see no app). */
bool auth__launcher_lists(const struct endpoint_req *r, const struct app *app, const struct auth_identity *id);

/* Ends session `session`: every token minted under it is refused, on every worker of this node
 * before answer(c, r, session, ended) answers the request (the revocation is written on the job
 * pool, then published: r->publish_revocations); `ended` false when it could not be written
 * (logged). */
typedef enum endpoint_result (*auth_session_ended_fn)(struct exchange *c, struct endpoint_req *r,
                                                      const char *session, bool ended);
enum endpoint_result auth__end_session(struct exchange *c, struct endpoint_req *r, const char *session,
                                       auth_session_ended_fn answer);

/* Pages. An error page ends with the way on (auth__home_button). */
enum endpoint_result auth__not_found(struct exchange *c, struct endpoint_req *r); /* 404 "No such page." */
enum endpoint_result auth__error_page(struct exchange *c, int status, const char *title, const char *message);
/* A button to this host's start page: the app served at "/" here ("Go to <display name>"),
 * else the app launcher (on the auth domain, or there from a host with apps at paths only).
 * Nothing without an auth domain. */
void auth__home_button(struct strbuf *sb, const struct endpoint_req *r, bool primary);
/* A button to the app launcher on the auth domain ("Your applications"). */
void auth__launcher_button(struct strbuf *sb, const struct endpoint_req *r);
/* The head of a sign-in page: the title, then `lead` (a sentence's start, or NULL) and what
 * the sign-in leads to: the app by its display name, or (app NULL) the launcher. */
void auth__sign_in_head(struct strbuf *sb, const char *title, const char *lead, const struct app *app);
enum endpoint_result auth__login_page(struct exchange *c, struct endpoint_req *r, const struct app *app, const char *host);

/* Identity providers. */
enum endpoint_result auth__start_idp(struct exchange *c, struct endpoint_req *r, json_t *flow, const char *flow_id, const struct idp *idp);
enum endpoint_result auth__otp(struct exchange *c, struct endpoint_req *r);
enum endpoint_result auth__oidc_start(struct exchange *c, struct endpoint_req *r, json_t *flow, const char *flow_id, const struct idp *idp);
enum endpoint_result auth__oidc_callback(struct exchange *c, struct endpoint_req *r);

/* Flows: the state of one login in the store, keyed by the id in the latch_flow cookie. */
/* STORE_OK with *flow; STORE_NOT_FOUND when this browser has none (no cookie, expired, not
 * ours); else why the store failed (down, out of memory: endpoint_store_cause). */
enum store_result auth__flow_load(const struct endpoint_req *r, char id[33], json_t **flow);
/* The flow an endpoint cannot go on without; NULL once it answered in *st: a sign-in that
 * expired (400), or the store's failure (request/error.h). */
json_t *auth__flow_required(struct exchange *c, struct endpoint_req *r, char id[33], enum endpoint_result *st);
enum store_result auth__flow_save(const struct endpoint_req *r, const char *id, json_t *flow);

const struct idp *auth__idp(const struct config *cfg, const char *name);

#endif
