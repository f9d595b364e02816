/* The app launcher: on the auth domain, `/` (where no app is served) and `apps` list, for the
 * person of the org session (the cookie, or an org token in cf-access-token), the apps they
 * may open, as Cloudflare Access's App Launcher does. A page for browsers; for scripts (and
 * `latch apps`) {"apps":[{"name","display_name","domains","url"}]}.
 *
 * What is listed: apps people sign in to (with an allow policy) whose policies, evaluated
 * for this person from this client as for a request to the app, admit them; an app with only
 * bypass or service_auth policies is public or for machines, not something to sign in to.
 * Nothing of the policies shows, only that the app admits the person. An app's `url` is its
 * first domain that names one address (no `*` in the host; a path pattern ending in a `*`
 * segment read as that directory: "/private/") on the origin the gateway serves it at; an app whose
 * domains are all patterns (`*.example.com`) is listed with a null url. */
#include "auth/auth-int.h"

#include "core/ipaddr.h"
#include "route/route.h"
#include "route/served.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool auth__launcher_lists(const struct endpoint_req *r, const struct app *app, const struct auth_identity *id)
{
    bool people = false;
    for (size_t i = 0; i < app->npolicies && !people; i++)
        people = app->policies[i].decision == DECISION_ALLOW;
    return people && auth__admitted(r, app, id, NULL);
}

/* The path a domain pattern's path part names as one address: none, or a `*` segment alone,
 * is "/"; "/a/b/" then a `*` segment is "/a/b/"; "/health" is itself; NULL when it names many
 * (a `*` elsewhere). */
static const char *launcher__path(const char *path, char *out, size_t cap)
{
    size_t n = strlen(path);
    if (n == 0 || !strcmp(path, "/*"))
        return "/";
    if (n >= cap)
        return NULL;
    memcpy(out, path, n + 1);
    if (n >= 2 && !strcmp(out + n - 2, "/*"))
        out[n - 1] = '\0';
    return strchr(out, '*') ? NULL : out;
}

/* The app's address for a browser, into url; false when no domain names one. */
static bool launcher__url(const struct endpoint_req *r, const struct app *app, struct strbuf *url)
{
    for (size_t i = 0; i < app->ndomains; i++) {
        const char *d = app->domains[i], *slash = strchr(d, '/');
        size_t hl = slash ? (size_t)(slash - d) : strlen(d);
        char host[SERVED_HOST_MAX + 8], pathbuf[1024], base[SERVED_HOST_MAX + 14];
        const char *path = launcher__path(slash ? slash : "", pathbuf, sizeof pathbuf);
        if (!path || !hl || memchr(d, '*', hl) || hl >= sizeof host)
            continue;
        memcpy(host, d, hl);
        host[hl] = '\0';
        struct served_origin so;
        bool has_port = host[hl - 1] != ']' && strrchr(host, ':') != NULL;
        if (has_port) { /* the domain names its port: a listener's public port, or nothing */
            if (served_lookup(r->site->cfg, -1, host, hl, &so) != 0)
                continue;
        } else { /* every listener serves it: the scheme and port this page came on */
            so = r->self;
            if (hl >= sizeof so.host)
                continue;
            memcpy(so.host, host, hl + 1);
        }
        /* an https gateway signs nobody in to a plain http address of the network */
        if (!so.https && !strncmp(r->site->auth_url, "https:", 6) && !ipaddr_loopback_name(so.host))
            continue;
        served_url(&so, base);
        sb_adds(url, base);
        sb_adds(url, path);
        return !url->overflow;
    }
    return false;
}

static enum endpoint_result launcher__json(struct exchange *c, struct endpoint_req *r, const struct auth_identity *id)
{
    json_t *apps = json_array();
    for (size_t i = 0; apps && i < r->site->cfg->napps; i++) {
        const struct app *app = &r->site->cfg->apps[i];
        if (!auth__launcher_lists(r, app, id))
            continue;
        struct strbuf url;
        sb_init(&url, 4096);
        json_t *domains = json_array();
        for (size_t k = 0; domains && k < app->ndomains; k++)
            json_array_append_new(domains, json_string(app->domains[k]));
        json_array_append_new(apps, json_pack("{s:s,s:s,s:o,s:s?}", "name", app->name, "display_name",
                                              app->display_name, "domains", domains, "url",
                                              launcher__url(r, app, &url) ? url.p : NULL));
        sb_free(&url);
    }
    return endpoint_json(c, 200, json_pack("{s:o}", "apps", apps), NULL);
}

static enum endpoint_result launcher__page(struct exchange *c, struct endpoint_req *r, const struct auth_identity *id)
{
    struct strbuf sb;
    sb_init(&sb, 256 * 1024);
    sb_adds(&sb, "<h1>Your applications</h1><p>Signed in as <b>");
    page_html(&sb, id->email);
    sb_adds(&sb, "</b></p><ul class=\"apps\">");
    size_t listed = 0;
    for (size_t i = 0; i < r->site->cfg->napps; i++) {
        const struct app *app = &r->site->cfg->apps[i];
        if (!auth__launcher_lists(r, app, id))
            continue;
        struct strbuf url;
        sb_init(&url, 4096);
        bool link = launcher__url(r, app, &url);
        if (link) {
            sb_adds(&sb, "<li><a href=\"");
            page_html(&sb, url.p);
            sb_adds(&sb, "\">");
        } else {
            sb_adds(&sb, "<li><div class=\"static\">");
        }
        sb_adds(&sb, "<i aria-hidden=\"true\">");
        page_initial(&sb, app->display_name);
        sb_adds(&sb, "</i><span><b>");
        page_html(&sb, app->display_name);
        sb_adds(&sb, "</b><small>");
        if (link) { /* the address as one reads it: no scheme, no lone "/" */
            const char *at = strstr(url.p, "://");
            at = at ? at + 3 : url.p;
            size_t n = strlen(at);
            page_html_n(&sb, at, n && at[n - 1] == '/' && !memchr(at, '/', n - 1) ? n - 1 : n);
        } else { /* many addresses: no one to open */
            sb_adds(&sb, "at addresses such as ");
            for (size_t k = 0; k < app->ndomains; k++) {
                if (k)
                    sb_adds(&sb, ", ");
                page_html(&sb, app->domains[k]);
            }
        }
        sb_adds(&sb, link ? "</small></span></a></li>" : "</small></span></div></li>");
        sb_free(&url);
        listed++;
    }
    sb_adds(&sb, "</ul>");
    if (!listed)
        sb_adds(&sb, "<p>No application is open to you yet. If you need one, ask your administrator "
                     "for access.</p>");
    page_button(&sb, HTTP_ACCESS_PREFIX "logout", "Sign out", false);
    enum endpoint_result st = sb.overflow ? auth__error_page(c, 500, "Error", "Too many applications to list.")
                         : endpoint_page(c, 200, "Your applications", sb.p, NULL);
    sb_free(&sb);
    return st;
}

/* Not signed in: a script is told so (401, as for an app: SPEC.md §3.6), a browser signs in
 * to come back here. */
static enum endpoint_result launcher__anonymous(struct exchange *c, struct endpoint_req *r, bool json, const char *why)
{
    if (!json) {
        char host[SERVED_HOST_MAX + 6];
        served_hostport(&r->self, host);
        return auth__begin_flow(c, r, NULL, host, "/", NULL, NULL);
    }
    char *login = NULL, *hdr = NULL;
    enum endpoint_result st;
    if (asprintf(&login, "%s/", r->site->auth_url) < 0 ||
        asprintf(&hdr, "WWW-Authenticate: Bearer realm=\"%s\", error=\"login_required\"\r\n",
                 r->site->auth_url) < 0) {
        st = endpoint_json(c, 500, json_pack("{s:s}", "error", "internal"), NULL);
    } else {
        json_t *j = json_pack("{s:s,s:s,s:s}", "error", "login_required", "auth_domain",
                              r->site->cfg->auth_domain, "login", login);
        if (j && why)
            json_object_set_new(j, "token_error", json_string(why));
        st = endpoint_json(c, 401, j, hdr);
    }
    free(login);
    free(hdr);
    return st;
}

enum endpoint_result auth__launcher(struct exchange *c, struct endpoint_req *r)
{
    if (strcmp(r->method, "GET") && strcmp(r->method, "HEAD"))
        return endpoint_reply(c, 405, "application/json", "{\"error\":\"method_not_allowed\"}\n", 31,
                           "Allow: GET, HEAD\r\n");
    /* a program (the command line) sends its org token; a browser has its cookie */
    bool json = r->access_token || !r->wants_html;
    struct auth_identity id;
    char session[33];
    if (r->access_token) {
        enum token_status ts = auth__org_token(r, r->access_token, &id, session);
        if (ts != TOKEN_OK)
            return launcher__anonymous(c, r, true, token_status_name(ts));
    } else if (!auth__org_session(r, &id, session)) {
        return launcher__anonymous(c, r, json, NULL);
    }
    enum endpoint_result st = json ? launcher__json(c, r, &id) : launcher__page(c, r, &id);
    auth__identity_free(&id);
    return st;
}
