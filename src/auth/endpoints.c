/* The gateway's own endpoints (SPEC.md §6): the dispatcher, and what needs no identity provider:
 * certs, app, login (with single sign-on), authorized, logout, get-identity. */
#include "auth/auth-int.h"
#include "auth/auth.h"

#include "request/binding.h"
#include "auth/redirect.h"
#include "core/strbuf.h"
#include "core/ipaddr.h"
#include "core/log.h"
#include "http/cookie.h"
#include "http/form.h"
#include "http/path.h"
#include "metrics/metrics.h"
#include "policy/policy.h"
#include "route/route.h"
#include "route/served.h"
#include "store/store.h"
#include "token/jwt.h"
#include "token/mint.h"
#include "token/revoke.h"
#include "token/verify.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


/* --- small shared pieces ------------------------------------------------------------------ */

void auth__random_id(char out[33])
{
    unsigned char raw[16];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(out, 33, raw, sizeof raw);
}

void auth__identity_free(struct auth_identity *id)
{
    free(id->email);
    free(id->sub);
    free(id->idp);
    for (size_t i = 0; i < id->ngroups; i++)
        free(id->groups[i]);
    free(id->groups);
    for (size_t i = 0; i < id->namr; i++)
        free(id->amr[i]);
    free(id->amr);
    memset(id, 0, sizeof *id);
}

static json_t *auth__strings(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

json_t *auth__identity_json(const struct auth_identity *id)
{
    return json_pack("{s:s,s:s,s:s,s:o,s:o}", "email", id->email, "sub", id->sub ? id->sub : "",
                     "idp", id->idp ? id->idp : "", "groups", auth__strings(id->groups, id->ngroups),
                     "amr", auth__strings(id->amr, id->namr));
}

static int auth__strings_in(json_t *a, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!a)
        return 0;
    if (!json_is_array(a))
        return -1;
    *out = calloc(json_array_size(a) + 1, sizeof **out);
    if (!*out)
        return -1;
    for (size_t i = 0; i < json_array_size(a); i++) {
        const char *s = json_string_value(json_array_get(a, i));
        if (s)
            (*out)[(*n)++] = strdup(s);
    }
    return 0;
}

int auth__identity_from_json(json_t *j, struct auth_identity *id)
{
    memset(id, 0, sizeof *id);
    const char *email = json_string_value(json_object_get(j, "email"));
    if (!email || !token_email_ok(email))
        return -1;
    id->email = strdup(email);
    const char *sub = json_string_value(json_object_get(j, "sub"));
    const char *idp = json_string_value(json_object_get(j, "idp"));
    id->sub = sub ? strdup(sub) : NULL;
    id->idp = idp ? strdup(idp) : NULL;
    if (auth__strings_in(json_object_get(j, "groups"), &id->groups, &id->ngroups) ||
        auth__strings_in(json_object_get(j, "amr"), &id->amr, &id->namr)) {
        auth__identity_free(id);
        return -1;
    }
    return 0;
}

char *auth__set_cookie(const struct endpoint_req *r, const char *name, const char *value,
                       const char *path, int64_t max_age)
{
    return cookie_set_line(name, value, strlen(value), path, max_age, r->secure_cookies);
}

char *auth__set_own_cookie(const struct endpoint_req *r, const char *base, const char *value,
                           const char *path, int64_t max_age)
{
    return cookie_own_set_line(base, value, path, max_age, r->self.https, r->secure_cookies);
}

char *auth__token_cookies(const struct endpoint_req *r, const char *tok, int64_t max_age)
{
    return cookie_token_lines(r->site->secret, tok, strlen(tok), max_age, r->self.https, r->secure_cookies);
}

bool auth__token_cookie(const struct endpoint_req *r, char *out, size_t cap)
{
    struct http_slice v, h = { r->cookies, strlen(r->cookies) };
    if (!cookie_token_find(r->site->secret, &h, 1, r->self.https, &v) || v.n >= cap || v.n == 0)
        return false;
    memcpy(out, v.p, v.n);
    out[v.n] = '\0';
    return true;
}

bool auth__own_cookie(const struct endpoint_req *r, const char *base, char *out, size_t cap)
{
    char name[COOKIE_OWN_NAME_MAX];
    cookie_own_name(base, r->self.https, name);
    return auth__cookie(r, name, out, cap);
}

bool auth__cookie(const struct endpoint_req *r, const char *name, char *out, size_t cap)
{
    struct http_slice v, h = { r->cookies, strlen(r->cookies) };
    if (!cookie_find(h, name, &v) || v.n >= cap || v.n == 0)
        return false;
    memcpy(out, v.p, v.n);
    out[v.n] = '\0';
    return true;
}

bool auth__query(const struct endpoint_req *r, const char *name, char *out, size_t cap)
{
    return form_get(r->query, r->query_len, name, out, cap) >= 0;
}

bool auth__form(const struct endpoint_req *r, const char *name, char *out, size_t cap)
{
    return r->form && r->body.p && form_get(r->body.p, r->body.len, name, out, cap) >= 0;
}

const struct idp *auth__idp(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nidps; i++)
        if (!strcmp(cfg->idps[i].name, name))
            return &cfg->idps[i];
    return NULL;
}

enum store_result auth__flow_load(const struct endpoint_req *r, char id[33], json_t **flow)
{
    char key[64], *val = NULL;
    size_t len;
    *flow = NULL;
    if (!auth__own_cookie(r, AUTH_FLOW_COOKIE, id, 33) || strlen(id) != 32)
        return STORE_NOT_FOUND;
    snprintf(key, sizeof key, "flow:%s", id);
    enum store_result sr = store_get(r->store, key, &val, &len);
    if (sr != STORE_OK)
        return sr;
    json_error_t je;
    *flow = json_loadb(val, len, 0, &je);
    free(val);
    return *flow ? STORE_OK : STORE_NOT_FOUND; /* not ours: as good as none */
}

json_t *auth__flow_required(struct exchange *c, struct endpoint_req *r, char id[33], enum endpoint_result *st)
{
    json_t *flow;
    enum store_result sr = auth__flow_load(r, id, &flow);
    if (sr == STORE_NOT_FOUND)
        *st = auth__error_page(c, 400, "Sign-in expired", "This sign-in has expired or was started in another "
                               "browser. Start again from the application.");
    else if (sr != STORE_OK)
        *st = endpoint_fail(c, endpoint_store_cause(sr));
    return flow;
}

enum store_result auth__flow_save(const struct endpoint_req *r, const char *id, json_t *flow)
{
    char key[64];
    char *val = json_dumps(flow, JSON_COMPACT);
    if (!val)
        return STORE_NOMEM;
    snprintf(key, sizeof key, "flow:%s", id);
    enum store_result sr = store_put(r->store, key, val, strlen(val), AUTH_FLOW_TTL_S);
    free(val);
    return sr;
}

void auth__launcher_button(struct strbuf *sb, const struct endpoint_req *r)
{
    char url[SERVED_HOST_MAX + 32];
    if (!r->site->cfg->auth_domain)
        return;
    snprintf(url, sizeof url, "%s/", r->on_auth_domain ? "" : r->site->auth_url);
    page_button(sb, url, "Your applications", false);
}

void auth__home_button(struct strbuf *sb, const struct endpoint_req *r, bool primary)
{
    const struct app *home = auth__target_app(r, r->host, "/");
    char label[128];
    if (home)
        snprintf(label, sizeof label, "Go to %s", home->display_name);
    else if (r->on_auth_domain)
        snprintf(label, sizeof label, "Your applications");
    else { /* a host with apps at paths only: the launcher lists them */
        auth__launcher_button(sb, r);
        return;
    }
    page_button(sb, "/", label, primary);
}

enum endpoint_result auth__error_page(struct exchange *c, int status, const char *title, const char *message)
{
    struct strbuf sb;
    sb_init(&sb, 8192);
    page_message(&sb, title, message);
    auth__home_button(&sb, endpoint_request(c), true);
    enum endpoint_result st = endpoint_page(c, status, title, sb.p, NULL);
    sb_free(&sb);
    return st;
}

/* --- identities and policies -------------------------------------------------------------- */

static void auth__policy_identity(const struct auth_identity *id, struct identity *out)
{
    memset(out, 0, sizeof *out);
    out->email = id->email;
    out->sub = id->sub;
    out->idp = id->idp;
    out->groups = (const char *const *)id->groups;
    out->ngroups = id->ngroups;
    out->amr = (const char *const *)id->amr;
    out->namr = id->namr;
}

void auth__evaluate(const struct endpoint_req *r, const struct app *app, const struct identity *pid,
                    struct policy_result *res)
{
    struct policy_request pr = { .id = pid };
    memset(pr.client_ip, 0, 16);
    unsigned char a[16];
    if (inet_pton(AF_INET, r->client_ip, pr.client_ip + 12) == 1)
        pr.client_ip[10] = pr.client_ip[11] = 0xff;
    else if (inet_pton(AF_INET6, r->client_ip, a) == 1)
        memcpy(pr.client_ip, a, 16);
    policy_evaluate(app, &pr, res);
}

bool auth__admitted(const struct endpoint_req *r, const struct app *app, const struct auth_identity *id,
                    const struct policy **decided)
{
    struct identity pid;
    auth__policy_identity(id, &pid);
    struct policy_result res;
    auth__evaluate(r, app, &pid, &res);
    if (decided)
        *decided = res.policy;
    /* allowed IdPs: a login through another provider does not count for this app */
    if (app->nallowed_idps) {
        bool ok = false;
        for (size_t i = 0; i < app->nallowed_idps && !ok; i++)
            ok = id->idp && !strcmp(app->allowed_idps[i], id->idp);
        if (!ok)
            return false;
    }
    return res.decision == ACCESS_ALLOW || res.decision == ACCESS_BYPASS;
}

const struct app *auth__app_at(const struct endpoint_req *r, const char *host, const char *path)
{
    char norm[512];
    size_t hl = strlen(host);
    if (hl >= sizeof norm || !path || path[0] != '/')
        return NULL;
    int n = route_host_normalize(host, hl, norm);
    if (n <= 0)
        return NULL;
    size_t plen = strcspn(path, "?");
    char *fwd = malloc(plen + 2), *match = malloc(plen + 2);
    size_t fl, ml;
    const struct app *app = NULL;
    if (fwd && match && path_normalize(path, plen, fwd, &fl, match, &ml) == 0)
        app = route_match(r->site->routes, norm, (size_t)n, match, ml);
    free(fwd);
    free(match);
    return app;
}

const struct app *auth__target_app(const struct endpoint_req *r, const char *host, const char *redirect)
{
    const struct app *app = auth__app_at(r, host, redirect && redirect[0] == '/' ? redirect : "/");
    return app ? app : auth__app_at(r, host, "/");
}

char *auth__mint(const struct endpoint_req *r, const char *type, const char *aud,
                 const struct auth_identity *id, const char *session, int64_t ttl)
{
    size_t groups_len = 0;
    for (size_t i = 0; i < id->ngroups; i++)
        groups_len += strlen(id->groups[i]) + 3;
    bool inline_groups = groups_len <= AUTH_GROUPS_INLINE_MAX;
    struct mint_claims mc = { .type = type, .aud = aud, .email = id->email, .sub = id->sub,
                              .idp = id->idp, .identity_nonce = session,
                              .groups = inline_groups ? (const char *const *)id->groups : NULL,
                              .ngroups = inline_groups ? id->ngroups : 0,
                              .amr = (const char *const *)id->amr, .namr = id->namr,
                              .omit_groups = !inline_groups, .ttl_s = ttl };
    if (!inline_groups) { /* the full identity stays server-side under the nonce */
        json_t *j = auth__identity_json(id);
        int ok = j && store_identity_put(r->store, session, j, ttl + 3600) == STORE_OK;
        json_decref(j);
        if (!ok)
            return NULL;
    }
    return token_mint(r->keys, r->site->auth_url, &mc, time(NULL));
}

static char **auth__strdups(const char *const *v, size_t n)
{
    char **out = calloc(n + 1, sizeof *out);
    for (size_t i = 0; out && i < n; i++)
        if (!(out[i] = strdup(v[i]))) {
            while (i--)
                free(out[i]);
            free(out);
            return NULL;
        }
    return out;
}

int auth__token_identity(const struct endpoint_req *r, const struct token *t, struct auth_identity *id)
{
    if (!t->has_groups) { /* a large identity: kept server-side under its nonce */
        json_t *stored = t->identity_nonce ? store_identity_get(r->store, t->identity_nonce) : NULL;
        int rc = stored ? auth__identity_from_json(stored, id) : -1;
        json_decref(stored);
        return rc;
    }
    memset(id, 0, sizeof *id);
    if (!t->email || !token_email_ok(t->email) || !(id->email = strdup(t->email)) ||
        (t->sub && !(id->sub = strdup(t->sub))) || (t->idp && !(id->idp = strdup(t->idp))) ||
        !(id->groups = auth__strdups(t->groups, t->ngroups)) ||
        !(id->amr = auth__strdups(t->amr, t->namr))) {
        auth__identity_free(id);
        return -1;
    }
    id->ngroups = t->ngroups;
    id->namr = t->namr;
    return 0;
}

struct token_want auth__want(const struct endpoint_req *r, const char *type, const struct app *app)
{
    return (struct token_want){
        .iss = r->site->auth_url,
        .type = type,
        .aud = app ? endpoint_aud(r->site, app) : r->site->cfg->auth_domain,
        .session = !app, /* an app token may be a service token's: no session */
        .rev = r->rev,
        .seps = r->site->cfg->subaddress_separators,
        .app = app ? app->name : NULL,
    };
}

enum token_status auth__org_token(const struct endpoint_req *r, const char *tok, struct auth_identity *id,
                                  char session[33])
{
    struct token t;
    struct token_want want = auth__want(r, "org", NULL);
    enum token_status ts = token_verify(r->keys, tok, strlen(tok), time(NULL), &want, &t);
    if (ts != TOKEN_OK)
        return ts;
    memcpy(session, t.identity_nonce, 33);
    if (auth__token_identity(r, &t, id) != 0)
        ts = TOKEN_BAD_CLAIMS;
    token_free(&t);
    return ts;
}

/* The org session: CF_Authorization on the auth domain, type "org". */
bool auth__org_session(const struct endpoint_req *r, struct auth_identity *id, char session[33])
{
    char tok[JWT_MAX_LEN + 1];
    return r->on_auth_domain && auth__token_cookie(r, tok, sizeof tok) &&
           auth__org_token(r, tok, id, session) == TOKEN_OK;
}

/* --- grants: from the auth domain to the app host ----------------------------------------- */

/* The path of this gateway's logout that ends the session, then starts a sign-in to the app at
 * `host` (`redirect` there): "Sign in as someone else". On an app host its own logout. */
static void auth__switch_url(struct strbuf *sb, const struct endpoint_req *r, const char *host,
                             const char *redirect)
{
    sb_adds(sb, HTTP_ACCESS_PREFIX "logout?switch=1");
    if (r->on_auth_domain) {
        sb_adds(sb, "&to=");
        form_urlencode(sb, host, strlen(host));
    }
    sb_adds(sb, "&redirect_url=");
    form_urlencode(sb, redirect, strlen(redirect));
}

/* The person is signed in, and the app's policies refuse them: who they are, the app by its
 * display name, and the ways on: another account, or the apps they may use. */
static enum endpoint_result auth__denied(struct exchange *c, struct endpoint_req *r, const struct app *app,
                                         const struct auth_identity *id, const char *host, const char *redirect,
                                         const char *headers)
{
    log_auth(r->site->auth_log, "access_denied", id->email, id->idp, app->name, r->client_ip, false,
             "no policy admits this person");
    struct strbuf sb, sw;
    sb_init(&sb, 16384);
    sb_init(&sw, 8192);
    page_denied_html(&sb, id->email, NULL, app->display_name);
    auth__switch_url(&sw, r, host, redirect);
    if (!sw.overflow)
        page_button(&sb, sw.p, "Sign in as someone else", false);
    auth__launcher_button(&sb, r);
    enum endpoint_result st = endpoint_page(c, 403, "Access denied", sb.p, headers);
    sb_free(&sb);
    sb_free(&sw);
    return st;
}

enum endpoint_result auth__grant_and_go(struct exchange *c, struct endpoint_req *r, const char *host, const char *redirect,
                                        const char *bind, const struct auth_identity *id, const char *session,
                                        const char *headers)
{
    /* the grant goes to the very origin the login named, which the gateway serves (a login
     * target was checked, but the configuration may have been reloaded since) */
    struct served_origin to;
    char url[SERVED_HOST_MAX + 14];
    const struct app *app = auth__target_app(r, host, redirect);
    if (!app || served_lookup(r->site->cfg, -1, host, strlen(host), &to) != 0)
        return auth__error_page(c, 400, "Unknown application", "No application is served at that address.");
    if (!auth__admitted(r, app, id, NULL))
        return auth__denied(c, r, app, id, host, redirect, headers);
    served_url(&to, url);
    char grant[33], key[64];
    auth__random_id(grant);
    snprintf(key, sizeof key, "grant:%s", grant);
    json_t *g = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o}", "origin", url, "host", host, "app", app->name,
                          "redirect", redirect, "session", session, "identity", auth__identity_json(id));
    if (g && bind)
        json_object_set_new(g, "bind", json_string(bind));
    char *val = g ? json_dumps(g, JSON_COMPACT) : NULL;
    json_decref(g);
    enum store_result sr = val ? store_put(r->store, key, val, strlen(val), AUTH_GRANT_TTL_S) : STORE_NOMEM;
    free(val);
    if (sr != STORE_OK)
        return endpoint_fail(c, endpoint_store_cause(sr));
    char *loc = NULL;
    if (asprintf(&loc, "%s" AUTH_BINDING_PATH "?grant=%s", url, grant) < 0)
        return endpoint_fail(c, ENDPOINT_NOMEM);
    enum endpoint_result st = endpoint_redirect(c, loc, headers);
    free(loc);
    return st;
}

enum endpoint_result auth__complete_login(struct exchange *c, struct endpoint_req *r, json_t *flow, struct auth_identity *id,
                                          const char *headers)
{
    const char *host = json_string_value(json_object_get(flow, "host"));
    const char *redirect = json_string_value(json_object_get(flow, "redirect"));
    if (!host || !redirect)
        return auth__error_page(c, 400, "Sign-in expired", "Start again from the application.");
    free(id->sub);
    id->sub = malloc(37);
    if (!id->sub)
        return endpoint_fail(c, ENDPOINT_NOMEM);
    token_person_sub(r->site->secret, id->email, id->sub);
    char session[33]; /* every login starts a new session id: no fixation */
    auth__random_id(session);
    int64_t ttl = r->site->cfg->session_duration_s;
    char *org = auth__mint(r, "org", r->site->cfg->auth_domain, id, session, ttl);
    if (!org)
        return auth__error_page(c, 500, "Error", "The session could not be created.");
    char *c1 = auth__token_cookies(r, org, ttl);
    char *c2 = auth__set_own_cookie(r, AUTH_FLOW_COOKIE, "", HTTP_ACCESS_PREFIX, 0);
    char *both = NULL, *back = NULL;
    const char *cli = json_string_value(json_object_get(flow, "cli"));
    enum endpoint_result st;
    if (c1 && c2 && asprintf(&both, "%s%s%s", c1, c2, headers ? headers : "") >= 0) {
        log_auth(r->site->auth_log, "login", id->email, id->idp, NULL, r->client_ip, true, "signed in");
        metrics_login(r->metrics, id->idp, true);
        if (cli) /* a command line's handoff: back to its confirmation page */
            st = asprintf(&back, HTTP_ACCESS_PREFIX "cli?%s", cli) < 0
                     ? endpoint_fail(c, ENDPOINT_NOMEM)
                     : endpoint_redirect(c, back, both);
        else if (json_is_true(json_object_get(flow, "launcher"))) /* the app launcher, here */
            st = endpoint_redirect(c, "/", both);
        else
            st = auth__grant_and_go(c, r, host, redirect,
                                    json_string_value(json_object_get(flow, "bind")), id, session,
                                    both);
    } else {
        st = endpoint_fail(c, ENDPOINT_NOMEM);
    }
    free(org);
    free(c1);
    free(c2);
    free(both);
    free(back);
    return st;
}

/* --- endpoints ---------------------------------------------------------------------------- */

/* GET login/<host>?redirect_url=… on the auth domain. `target` (normalized host[:port]) must
 * be an origin the gateway serves (route/served.h): a link naming another port of an app's
 * host name would send the grant to whoever listens there. */
static enum endpoint_result auth__login(struct exchange *c, struct endpoint_req *r, const char *target)
{
    struct served_origin to;
    char host[SERVED_HOST_MAX + 6], redirect[4096];
    if (served_lookup(r->site->cfg, -1, target, strlen(target), &to) != 0) {
        log_auth(r->site->auth_log, "login", NULL, NULL, NULL, r->client_ip, false,
                 "login for an address this gateway does not serve");
        metrics_login(r->metrics, NULL, false);
        return auth__error_page(c, 404, "Unknown application", "No application is served at that address.");
    }
    if (!to.https && !strncmp(r->site->auth_url, "https:", 6) && !ipaddr_loopback_name(to.host)) {
        /* the grant would cross the network in clear (a plain port 80 beside 443) */
        log_auth(r->site->auth_log, "login", NULL, NULL, NULL, r->client_ip, false,
                 "login for a plain http address of an https gateway");
        return auth__error_page(c, 404, "Unknown application", "No application is served at that address.");
    }
    served_hostport(&to, host); /* as the browser's Host names it, the default port left out */
    bool given = form_get(r->query, r->query_len, "redirect_url", redirect, sizeof redirect) >= 0;
    if (!given) {
        if (memmem(r->query, r->query_len, "redirect_url=", 13)) /* there, but not decodable */
            return auth__error_page(c, 400, "Invalid return address",
                                    "The address to return to after signing in is not allowed.");
        strcpy(redirect, "/");
    }
    if (redirect_check(r->site->cfg, r->site->routes, redirect, strlen(redirect)) != 0)
        return auth__error_page(c, 400, "Invalid return address",
                                "The address to return to after signing in is not allowed.");
    const struct app *app = auth__target_app(r, host, redirect);
    if (!app) {
        log_auth(r->site->auth_log, "login", NULL, NULL, NULL, r->client_ip, false, "no app at that host");
        metrics_login(r->metrics, NULL, false);
        return auth__error_page(c, 404, "Unknown application", "No application is served at that address.");
    }
    /* the binding's tag, "+" after it when the login is already a browser's second try
     * (auth__rebind): what the flow and the grant keep */
    char bind_tag[40], again[8];
    const char *bind = auth__query(r, AUTH_BINDING_PARAM, bind_tag, sizeof bind_tag) &&
                       binding_tag_valid(bind_tag) ? bind_tag : NULL;
    if (bind && auth__query(r, AUTH_BINDING_AGAIN, again, sizeof again))
        strcat(bind_tag, "+");
    struct auth_identity id;
    char session[33];
    if (auth__org_session(r, &id, session)) { /* single sign-on: no identity provider round trip */
        enum endpoint_result st = auth__grant_and_go(c, r, host, redirect, bind, &id, session, NULL);
        auth__identity_free(&id);
        return st;
    }
    return auth__begin_flow(c, r, app, host, redirect, bind, NULL);
}

void auth__sign_in_head(struct strbuf *sb, const char *title, const char *lead, const struct app *app)
{
    sb_adds(sb, "<h1>");
    page_html(sb, title);
    sb_adds(sb, "</h1><p>");
    if (lead) {
        page_html(sb, lead);
        sb_adds(sb, " ");
    }
    if (app) {
        sb_adds(sb, "to continue to <b>");
        page_html(sb, app->display_name);
        sb_adds(sb, "</b>");
    } else {
        sb_adds(sb, "to see the applications you may use");
    }
    sb_adds(sb, lead ? ".</p>" : "</p>");
}

/* A new login flow (its cookie, its state in the store), then the provider choice, or the only
 * provider directly. `cli` is the query of the handoff page to come back to, NULL for apps. */
enum endpoint_result auth__begin_flow(struct exchange *c, struct endpoint_req *r, const struct app *app, const char *host,
                                      const char *redirect, const char *bind, const char *cli)
{
    char flow_id[33], csrf[33];
    auth__random_id(flow_id);
    auth__random_id(csrf);
    json_t *flow = json_pack("{s:s,s:s,s:s}", "host", host, "redirect", redirect, "csrf", csrf);
    if (flow) /* an app's sign-in, or the app launcher's (no app: every provider) */
        json_object_set_new(flow, app ? "app" : "launcher", app ? json_string(app->name) : json_true());
    if (flow && cli)
        json_object_set_new(flow, "cli", json_string(cli));
    if (flow && bind)
        json_object_set_new(flow, "bind", json_string(bind));
    enum store_result sr = flow ? auth__flow_save(r, flow_id, flow) : STORE_NOMEM;
    if (sr != STORE_OK) {
        json_decref(flow);
        return endpoint_fail(c, endpoint_store_cause(sr));
    }
    json_decref(flow);
    char *ck = auth__set_own_cookie(r, AUTH_FLOW_COOKIE, flow_id, HTTP_ACCESS_PREFIX, AUTH_FLOW_TTL_S);
    /* the only provider: go straight to it */
    const struct idp *only = NULL;
    bool some = app && app->nallowed_idps;
    size_t n = some ? app->nallowed_idps : r->site->cfg->nidps;
    if (n == 1)
        only = auth__idp(r->site->cfg, some ? app->allowed_idps[0] : r->site->cfg->idps[0].name);
    enum endpoint_result st;
    if (only) {
        char *loc = NULL;
        st = asprintf(&loc, HTTP_ACCESS_PREFIX "start?idp=%s", only->name) < 0
                 ? endpoint_fail(c, ENDPOINT_NOMEM)
                 : endpoint_redirect(c, loc, ck);
        free(loc);
    } else {
        struct strbuf sb;
        sb_init(&sb, 16384);
        auth__sign_in_head(&sb, "Sign in", NULL, app);
        for (size_t i = 0; i < r->site->cfg->nidps; i++) {
            const struct idp *p = &r->site->cfg->idps[i];
            bool allowed = !some;
            for (size_t k = 0; some && k < app->nallowed_idps && !allowed; k++)
                allowed = !strcmp(app->allowed_idps[k], p->name);
            if (!allowed)
                continue;
            sb_adds(&sb, "<a class=\"button\" href=\"" HTTP_ACCESS_PREFIX "start?idp=");
            page_html(&sb, p->name);
            sb_adds(&sb, "\">");
            sb_adds(&sb, p->type == IDP_ONETIMEPIN ? "Email me a sign-in code" : "Continue with ");
            if (p->type != IDP_ONETIMEPIN)
                page_html(&sb, p->name);
            sb_adds(&sb, "</a>");
        }
        if (n == 0)
            sb_adds(&sb, "<div class=\"error\">No way to sign in is configured for this application.</div>");
        st = endpoint_page(c, 200, "Sign in", sb.p, ck);
        sb_free(&sb);
    }
    free(ck);
    return st;
}

/* GET start?idp=NAME: the flow (from its cookie) goes to that provider. */
static enum endpoint_result auth__start(struct exchange *c, struct endpoint_req *r)
{
    char flow_id[33], name[128];
    enum endpoint_result st;
    json_t *flow = auth__flow_required(c, r, flow_id, &st);
    if (!flow)
        return st;
    const char *app_name = json_string_value(json_object_get(flow, "app"));
    const struct idp *idp = auth__query(r, "idp", name, sizeof name) ? auth__idp(r->site->cfg, name) : NULL;
    const struct app *app = NULL;
    for (size_t i = 0; app_name && i < r->site->cfg->napps; i++)
        if (!strcmp(r->site->cfg->apps[i].name, app_name))
            app = &r->site->cfg->apps[i];
    bool launcher = json_is_true(json_object_get(flow, "launcher"));
    bool allowed = idp && (launcher || (app && !app->nallowed_idps));
    for (size_t k = 0; idp && app && k < app->nallowed_idps && !allowed; k++)
        allowed = !strcmp(app->allowed_idps[k], idp->name);
    st = allowed ? auth__start_idp(c, r, flow, flow_id, idp)
                 : auth__error_page(c, 400, "Unknown sign-in method", "That way to sign in is not offered for this application.");
    json_decref(flow);
    return st;
}

enum endpoint_result auth__start_idp(struct exchange *c, struct endpoint_req *r, json_t *flow, const char *flow_id, const struct idp *idp)
{
    json_object_set_new(flow, "idp", json_string(idp->name));
    if (idp->type == IDP_OIDC)
        return auth__oidc_start(c, r, flow, flow_id, idp);
    enum store_result sr = auth__flow_save(r, flow_id, flow);
    if (sr != STORE_OK)
        return endpoint_fail(c, endpoint_store_cause(sr));
    return auth__otp(c, r);
}

/* A grant bound to no browser (its login URL carried no tag: a direct visit, a program's
 * login link), or to a login this browser no longer holds: it is spent, its identity is not
 * planted here (that is the login CSRF), and this browser signs in again as itself, bound this
 * time; its own org session, if any, makes that a pair of redirects (single sign-on). */
static enum endpoint_result auth__rebind(struct exchange *c, struct endpoint_req *r, const char *host, const char *redirect)
{
    char nonce[33], tag[33], name[AUTH_BINDING_NAME_MAX];
    binding_new(nonce, tag);
    binding_cookie_base(tag, name);
    char *ck = auth__set_own_cookie(r, name, nonce, AUTH_BINDING_PATH, AUTH_BINDING_TTL_S);
    struct strbuf loc;
    sb_init(&loc, 16384);
    binding_login_url(&loc, r->site->auth_url, host, strlen(host), redirect, strlen(redirect), tag);
    sb_addf(&loc, "&%s=1", AUTH_BINDING_AGAIN);
    enum endpoint_result st = ck && !loc.overflow ? endpoint_redirect(c, loc.p, ck)
                                 : endpoint_fail(c, ENDPOINT_NOMEM);
    sb_free(&loc);
    free(ck);
    return st;
}

/* What this browser holds of the login a grant is bound to (binding.h): its cookie (the one
 * binding), another login's in the same cookie (a login in another tab since, or an attacker's
 * grant), or nothing at all (another browser, or cookies off). */
enum bound { BOUND_HERE, BOUND_OTHER, BOUND_NONE };

static enum bound auth__bound(const struct endpoint_req *r, const char *bound, char name[AUTH_BINDING_NAME_MAX])
{
    char nonce[40], tag[33];
    binding_cookie_base(bound, name);
    if (!auth__own_cookie(r, name, nonce, sizeof nonce))
        return BOUND_NONE;
    return binding_tag(nonce, tag) && sodium_memcmp(tag, bound, 32) == 0 ? BOUND_HERE : BOUND_OTHER;
}

/* GET authorized?grant=… on the app host: the grant becomes the app's cookie (SPEC.md §6),
 * in the browser that started its login only (request/binding.h). */
static enum endpoint_result auth__authorized(struct exchange *c, struct endpoint_req *r)
{
    char grant[64], key[80], *val = NULL;
    size_t len;
    if (!auth__query(r, "grant", grant, sizeof grant) || strlen(grant) != 32)
        return auth__error_page(c, 400, "Invalid sign-in link", "Start again from the application.");
    snprintf(key, sizeof key, "grant:%s", grant);
    enum store_result sr = store_take(r->store, key, &val, &len);
    if (sr == STORE_UNAVAILABLE)
        return endpoint_fail(c, ENDPOINT_STORE_DOWN);
    if (sr != STORE_OK) /* single use */
        return auth__error_page(c, 400, "Sign-in link used or expired", "Start again from the application.");
    json_error_t je;
    json_t *g = json_loadb(val, len, 0, &je);
    free(val);
    const char *origin = json_string_value(json_object_get(g, "origin"));
    const char *host = json_string_value(json_object_get(g, "host"));
    const char *app_name = json_string_value(json_object_get(g, "app"));
    const char *redirect = json_string_value(json_object_get(g, "redirect"));
    const char *session = json_string_value(json_object_get(g, "session"));
    struct auth_identity id;
    enum endpoint_result st;
    /* redeemed only at the exact origin it was made for: the scheme and port this request
     * reached (its listener's public ones), not what its Host header claims */
    char here[SERVED_HOST_MAX + 14];
    served_url(&r->self, here);
    if (!origin || !host || !app_name || !redirect || !session || strcmp(origin, here) != 0 ||
        auth__identity_from_json(json_object_get(g, "identity"), &id) != 0) {
        json_decref(g);
        return auth__error_page(c, 400, "Invalid sign-in link", "That link was made for another address.");
    }
    const char *bound = json_string_value(json_object_get(g, "bind"));
    const struct app *app = auth__target_app(r, host, redirect);
    if (app && strcmp(app->name, app_name) != 0)
        app = NULL; /* a grant for one app is never another's, even on one host */
    char name[AUTH_BINDING_NAME_MAX], tag[33] = "";
    bool again = bound && strlen(bound) == 33 && bound[32] == '+';
    if (bound && (strlen(bound) == 32 || again)) {
        memcpy(tag, bound, 32);
        tag[32] = '\0';
    }
    enum bound b = binding_tag_valid(tag) ? auth__bound(r, tag, name) : BOUND_OTHER;
    if (b != BOUND_HERE) {
        /* bound to nothing, or to a login this browser no longer holds (another login in the
         * same cookie, an attacker's grant): this browser signs in as itself. A second try
         * that fails too (cookies off, another browser): an error, not a loop of sign-ins. */
        log_auth(r->site->auth_log, "login", id.email, id.idp, app ? app->name : NULL, r->client_ip,
                 false, again ? "sign-in link opened in another browser, or cookies are off"
                              : "sign-in link not started in this browser: signing in again");
        st = again ? auth__error_page(c, 400, "Sign-in started in another browser",
                                      "This sign-in link belongs to another browser, or this one "
                                      "does not keep cookies. Start again from the application.")
                   : auth__rebind(c, r, host, redirect);
        auth__identity_free(&id);
        json_decref(g);
        return st;
    }
    const struct policy *decided = NULL;
    if (!app || !auth__admitted(r, app, &id, &decided)) {
        st = app ? auth__denied(c, r, app, &id, host, redirect, NULL)
                 : auth__error_page(c, 404, "Unknown application", "No application is served at that address.");
    } else {
        int64_t ttl = endpoint_session_s(r->site->cfg, app, decided);
        char *tok = auth__mint(r, "app", endpoint_aud(r->site, app), &id, session, ttl);
        char *ck = tok ? auth__token_cookies(r, tok, ttl) : NULL;
        char *unbind = auth__set_own_cookie(r, name, "", AUTH_BINDING_PATH, 0);
        char *both = NULL;
        if (ck && unbind && asprintf(&both, "%s%s", ck, unbind) < 0)
            both = NULL;
        log_auth(r->site->auth_log, "app_token", id.email, id.idp, app->name, r->client_ip, both != NULL,
                 "granted after sign-in");
        st = both ? endpoint_redirect(c, redirect, both) : auth__error_page(c, 500, "Error", "Signing failed.");
        free(tok);
        free(ck);
        free(unbind);
        free(both);
    }
    auth__identity_free(&id);
    json_decref(g);
    return st;
}

/* The identity behind the request's token: the app token on an app host, the org token on
 * the auth domain. TOKEN_OK, or why not; *presented false when the request carries none. */
enum token_status auth__bearer(struct endpoint_req *r, struct auth_identity *id, char session[33],
                               const struct app **app, bool *presented, int64_t *exp)
{
    char tok[JWT_MAX_LEN + 1];
    *presented = true;
    if (r->on_auth_domain) {
        if (auth__token_cookie(r, tok, sizeof tok))
            return auth__org_token(r, tok, id, session);
        *presented = false;
        return TOKEN_MALFORMED;
    }
    if (r->access_token && strlen(r->access_token) < sizeof tok) {
        snprintf(tok, sizeof tok, "%s", r->access_token); /* the header first (SPEC.md §3.4) */
    } else if (!auth__token_cookie(r, tok, sizeof tok)) {
        *presented = false;
        return TOKEN_MALFORMED;
    }
    *app = auth__target_app(r, r->host, "/");
    if (!*app)
        return TOKEN_BAD_AUDIENCE;
    struct token t;
    struct token_want want = auth__want(r, "app", *app);
    want.session = true; /* a person's: a service token has no session to show or end */
    enum token_status ts = token_verify(r->keys, tok, strlen(tok), time(NULL), &want, &t);
    if (ts != TOKEN_OK)
        return ts;
    snprintf(session, 33, "%s", t.identity_nonce);
    if (exp)
        *exp = t.exp;
    if (auth__token_identity(r, &t, id) != 0)
        ts = TOKEN_BAD_CLAIMS;
    token_free(&t);
    return ts;
}

/* A token that was refused: its cause in the auth log (the answer stays the one SPEC.md says). */
void auth__bearer_refused(const struct endpoint_req *r, const char *event, const struct app *app,
                                 enum token_status ts)
{
    log_auth(r->site->auth_log, event, NULL, NULL, app ? app->name : NULL, r->client_ip, false,
             token_status_name(ts));
}

static enum endpoint_result auth__get_identity(struct exchange *c, struct endpoint_req *r)
{
    struct auth_identity id;
    char session[33];
    const struct app *app = NULL;
    bool presented;
    enum token_status ts = auth__bearer(r, &id, session, &app, &presented, NULL);
    if (ts != TOKEN_OK) {
        if (presented)
            auth__bearer_refused(r, "get_identity", app, ts);
        return endpoint_json(c, 401, json_pack("{s:s}", "error", "not_authenticated"), NULL);
    }
    json_t *j = auth__identity_json(&id);
    json_object_set_new(j, "identity_nonce", json_string(session));
    if (app)
        json_object_set_new(j, "app", json_string(app->name));
    auth__identity_free(&id);
    return endpoint_json(c, 200, j, NULL);
}

/* The proof, in the app host's redirect to the auth domain's logout, that `session` has just
 * been ended by its owner's choice: the auth domain then clears its cookie without asking,
 * though the browser arrives from another site (the app host) and the revocation may not have
 * reached its worker yet. Worth nothing for a live session: it is made after the revocation. */
static void auth__ended_proof(const struct endpoint_req *r, const char *session, char out[33])
{
    unsigned char mac[16];
    crypto_generichash(mac, sizeof mac, (const unsigned char *)session, strlen(session),
                       r->site->secret, 32);
    sodium_bin2hex(out, 33, mac, sizeof mac);
}

/* Where a logout leads: back to the app the person came from (`to`: on an app host, itself;
 * on the auth domain, an origin the gateway serves), or, with `switch=1`, to that app's
 * sign-in as someone else (at `redirect_url`, a path). Read from the query, or from the
 * confirmation's form, which carries them. Anything else is dropped: these make links and a
 * redirect to the gateway's own login, never to elsewhere. */
struct logout_next {
    bool has_to, to_switch;
    struct served_origin to;
    char redirect[2048];
};

static void auth__logout_next(const struct endpoint_req *r, struct logout_next *n)
{
    bool (*get)(const struct endpoint_req *, const char *, char *, size_t) =
        strcmp(r->method, "POST") ? auth__query : auth__form;
    char raw[SERVED_HOST_MAX + 8], host[SERVED_HOST_MAX + 8], sw[4];
    int hl;
    memset(n, 0, sizeof *n);
    if (!r->on_auth_domain) {
        n->to = r->self;
        n->has_to = true;
    } else if (get(r, "to", raw, sizeof raw) && (hl = route_host_normalize(raw, strlen(raw), host)) > 0) {
        n->has_to = served_lookup(r->site->cfg, -1, host, (size_t)hl, &n->to) == 0;
    }
    n->to_switch = n->has_to && get(r, "switch", sw, sizeof sw) && !strcmp(sw, "1");
    if (!get(r, "redirect_url", n->redirect, sizeof n->redirect) || n->redirect[0] != '/' ||
        redirect_check(r->site->cfg, r->site->routes, n->redirect, strlen(n->redirect)) != 0)
        strcpy(n->redirect, "/");
}

/* The query that carries `n` on: "to=…&switch=1&redirect_url=…", after `sep`. */
static void auth__logout_next_query(struct strbuf *sb, const struct logout_next *n, const char *sep)
{
    char hp[SERVED_HOST_MAX + 6];
    if (!n->has_to)
        return;
    int hl = served_hostport(&n->to, hp);
    sb_adds(sb, sep);
    sb_adds(sb, "to=");
    form_urlencode(sb, hp, (size_t)hl);
    if (n->to_switch) {
        sb_adds(sb, "&switch=1&redirect_url=");
        form_urlencode(sb, n->redirect, strlen(n->redirect));
    }
}

/* The signed-out page's way on: back to the app the person came from, else the launcher. */
static void auth__signed_out(struct strbuf *sb, const struct endpoint_req *r, const struct logout_next *n)
{
    char hp[SERVED_HOST_MAX + 6], url[SERVED_HOST_MAX + 16], label[128];
    const struct app *app = NULL;
    if (n->has_to) {
        served_hostport(&n->to, hp);
        app = auth__target_app(r, hp, "/");
    }
    sb_adds(sb, "<h1>You are signed out</h1><p>Your session has ended on this device.");
    if (app) {
        served_url(&n->to, url);
        strcat(url, "/");
        snprintf(label, sizeof label, "Back to %s", app->display_name);
        sb_adds(sb, " To use an application again, sign in again.</p>");
        page_button(sb, url, label, true);
    } else if (r->on_auth_domain) {
        sb_adds(sb, "</p>");
        page_button(sb, "/", "Sign in again", true);
    } else {
        sb_adds(sb, " Close this tab, or open an application again to sign in.</p>");
    }
}

/* `session`: the one just ended, NULL when there was none. */
static enum endpoint_result auth__logout_answer(struct exchange *c, struct endpoint_req *r, const char *session)
{
    char *clear = auth__token_cookies(r, "", 0);
    struct logout_next n;
    struct strbuf sb;
    sb_init(&sb, 16384);
    auth__logout_next(r, &n);
    enum endpoint_result st;
    if (!r->on_auth_domain && r->site->cfg->auth_domain) {
        char proof[33] = "";
        if (session)
            auth__ended_proof(r, session, proof);
        sb_addf(&sb, "%s" HTTP_ACCESS_PREFIX "logout", r->site->auth_url);
        if (session)
            sb_addf(&sb, "?ended=%s", proof);
        auth__logout_next_query(&sb, &n, session ? "&" : "?");
        st = sb.overflow ? endpoint_fail(c, ENDPOINT_NOMEM) : endpoint_redirect(c, sb.p, clear);
    } else if (n.to_switch) { /* this app's sign-in: the login checks the address again */
        char hp[SERVED_HOST_MAX + 6];
        int hl = served_hostport(&n.to, hp);
        binding_login_url(&sb, "", hp, (size_t)hl, n.redirect, strlen(n.redirect), NULL);
        st = sb.overflow ? endpoint_fail(c, ENDPOINT_NOMEM) : endpoint_redirect(c, sb.p, clear);
    } else {
        auth__signed_out(&sb, r, &n);
        st = endpoint_page(c, 200, "Signed out", sb.p, clear);
    }
    sb_free(&sb);
    free(clear);
    return st;
}

/* The revocation is a locked, synced file write: done on the job pool, not the worker's loop;
 * the answer waits for it, so the session is over once the client sees it. */
struct end_session_job {
    struct endpoint_job lj;
    const struct endpoint_site *site;
    void (*publish)(void *ctx);
    void *publish_ctx;
    char session[33];
    int64_t now, forget_before;
    char *err;
    int rc;
    auth_session_ended_fn answer;
};

static void auth__end_session_run(struct job *job)
{
    struct end_session_job *j = (struct end_session_job *)job;
    j->rc = revocations_add_pruning(j->site->cfg->state_dir, REVOKE_SESSION, j->session, j->now,
                                    j->forget_before, &j->err);
    if (j->rc == 0) /* in force on every worker before the answer leaves, not at the next poll */
        j->publish(j->publish_ctx);
}

static void auth__end_session_finish(struct endpoint_job *lj, struct exchange *c)
{
    struct end_session_job *j = (struct end_session_job *)lj;
    if (j->rc != 0)
        log_msg("error", "logout: %s", j->err ? j->err : "cannot revoke the session");
    if (c) {
        j->answer(c, endpoint_request(c), j->session, j->rc == 0);
        endpoint_resume(c);
    }
    free(j->err);
    endpoint_site_release(j->site);
    free(j);
}

enum endpoint_result auth__end_session(struct exchange *c, struct endpoint_req *r, const char *session,
                                       auth_session_ended_fn answer)
{
    struct end_session_job *j = calloc(1, sizeof *j);
    if (!j)
        return endpoint_fail(c, ENDPOINT_NOMEM);
    j->site = r->site;
    j->publish = r->publish_revocations;
    j->publish_ctx = r->publish_ctx;
    endpoint_site_hold(r->site);
    snprintf(j->session, sizeof j->session, "%s", session);
    j->now = (int64_t)time(NULL);
    j->forget_before = j->now - r->site->longest_session_s - JWT_LEEWAY_S;
    j->answer = answer;
    j->lj.job.run = auth__end_session_run;
    j->lj.finish = auth__end_session_finish;
    return endpoint_wait(c, &j->lj, r->jobs);
}

/* The browser's logout answers the same whether the revocation was written (it is logged). */
static enum endpoint_result auth__logout_done(struct exchange *c, struct endpoint_req *r, const char *session, bool ended)
{
    return auth__logout_answer(c, r, session);
}

/* Whether a POST came from a page of this very origin (its public scheme and port: behind a
 * TLS terminator, `public` says the browser is on https), or from no browser at all (no
 * Origin). */
static bool auth__same_origin(const struct endpoint_req *r)
{
    return !r->origin || served_is(&r->self, r->origin);
}

/* Another page sent this browser to logout (a link or an image on another site, or on a
 * sibling host of the same site): ending the session is this person's choice, not that page's,
 * so ask, with a form that posts back here. */
static enum endpoint_result auth__logout_confirm(struct exchange *c, struct endpoint_req *r, const struct auth_identity *id)
{
    struct logout_next n;
    char hp[SERVED_HOST_MAX + 6];
    struct strbuf sb;
    sb_init(&sb, 16384);
    auth__logout_next(r, &n);
    sb_adds(&sb, "<h1>Sign out?</h1><p>Another page sent you here to end your session as <b>");
    page_html(&sb, id->email);
    sb_adds(&sb, "</b>.</p><form method=\"post\" action=\"" HTTP_ACCESS_PREFIX "logout\">");
    if (n.has_to && r->on_auth_domain) {
        served_hostport(&n.to, hp);
        sb_adds(&sb, "<input type=\"hidden\" name=\"to\" value=\"");
        page_html(&sb, hp);
        sb_adds(&sb, "\">");
    }
    if (n.to_switch) {
        sb_adds(&sb, "<input type=\"hidden\" name=\"switch\" value=\"1\">"
                     "<input type=\"hidden\" name=\"redirect_url\" value=\"");
        page_html(&sb, n.redirect);
        sb_adds(&sb, "\">");
    }
    sb_adds(&sb, "<button type=\"submit\">Sign out</button></form>");
    page_button(&sb, "/", "Cancel", false); /* this host's start: the app, or the launcher */
    enum endpoint_result st = endpoint_page(c, 200, "Sign out?", sb.p, NULL);
    sb_free(&sb);
    return st;
}

/* logout: ends the session (its tokens are revoked everywhere) and clears this host's cookie;
 * an app host then sends the browser to the auth domain to clear the org cookie too. A browser
 * sent by another page is asked first (logout CSRF); a POST must come from this host. */
static enum endpoint_result auth__logout(struct exchange *c, struct endpoint_req *r)
{
    struct auth_identity id;
    char session[33];
    const struct app *app = NULL;
    bool presented;
    enum token_status ts = auth__bearer(r, &id, session, &app, &presented, NULL);
    if (ts != TOKEN_OK) { /* no live session: clearing cookies harms nobody */
        if (presented)
            auth__bearer_refused(r, "logout", app, ts);
        return auth__logout_answer(c, r, NULL);
    }
    bool post = !strcmp(r->method, "POST");
    char ended[40], proof[33];
    bool just_ended = !post && r->on_auth_domain && auth__query(r, "ended", ended, sizeof ended) &&
                      strlen(ended) == 32 && (auth__ended_proof(r, session, proof),
                                              sodium_memcmp(proof, ended, 32) == 0);
    if (post ? r->foreign || !auth__same_origin(r) : r->foreign && !just_ended) {
        enum endpoint_result st = post ? auth__error_page(c, 403, "Form expired", "This form was sent from another "
                                         "site. Sign out from the application itself.")
                      : auth__logout_confirm(c, r, &id);
        auth__identity_free(&id);
        return st;
    }
    log_auth(r->site->auth_log, "logout", id.email, id.idp, app ? app->name : NULL, r->client_ip, true,
             "session ended");
    auth__identity_free(&id);
    return auth__end_session(c, r, session, auth__logout_done);
}

static enum endpoint_result auth__certs(struct exchange *c, struct endpoint_req *r)
{
    return endpoint_reply(c, 200, "application/json", r->keys->certs_json, strlen(r->keys->certs_json), NULL);
}

/* login/<host>: the sign-in page for the app at host. */
static enum endpoint_result auth__login_at(struct exchange *c, struct endpoint_req *r)
{
    const char *name = r->name + 6;
    char host[512];
    size_t hl = strlen(name);
    if (!hl)
        return auth__not_found(c, r);
    if (hl >= sizeof host || route_host_normalize(name, hl, host) <= 0)
        return auth__error_page(c, 404, "Unknown application", "No application is served at that address.");
    return auth__login(c, r, host);
}

enum endpoint_result auth__not_found(struct exchange *c, struct endpoint_req *r)
{
    return auth__error_page(c, 404, "Not found", "No such page.");
}

/* Every host's (the first rows), then the auth domain's: the login pages live there only. */
static const struct endpoint auth__rows[] = {
    { "certs", false, false, auth__certs },
    { "authorized", true, false, auth__authorized },
    { "get-identity", false, false, auth__get_identity },
    { "logout", true, false, auth__logout },
    { "cert_sign", true, false, auth__cert_sign },
    { "login/", true, true, auth__login_at },
    { ENDPOINT_AUTH_ROOT, true, true, auth__launcher },
    { "apps", true, true, auth__launcher },
    { "start", true, true, auth__start },
    { "otp", true, true, auth__otp },
    { "callback", true, true, auth__oidc_callback }, /* one per provider: */
    { "callback/", true, true, auth__oidc_callback },
    { "", true, false, auth__not_found },
};

const struct endpoint_table auth_endpoints = { auth__rows, sizeof auth__rows / sizeof auth__rows[0] };
