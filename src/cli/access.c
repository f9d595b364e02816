/* A token for an app of latch's command line (SPEC.md §7): the URL read as latch reads one,
 * what the app's host says of it (discovery), the stored token, the org token's exchange, the
 * browser handoff, and the service token's credentials. Every verb that sends a token gets it
 * here (cli_access). */
#include "cli/cli.h"
#include "core/strbuf.h"
#include "http/form.h"
#include "token/handoff.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

void cli_target_free(struct cli_target *t)
{
    free(t->path);
    t->path = NULL;
}


void cli_app_info_free(struct cli_app_info *a)
{
    free(a->auth_url);
    free(a->auth_domain);
    free(a->aud);
    free(a->app);
    free(a->token_status);
    free(a->email);
    if (a->pair)
        sodium_memzero(a->pair, strlen(a->pair));
    free(a->pair);
    json_decref(a->routes);
    memset(a, 0, sizeof *a);
}

/* "scheme://host[:port]" of an origin, as its URLs are written (no default port). */
static void origin_base(const struct cli_origin *o, char *out, size_t cap)
{
    snprintf(out, cap, "%s://%s", o->scheme, o->key);
}

bool cli_service_creds(const char **id, const char **secret)
{
    *id = getenv("LATCH_CLIENT_ID");
    *secret = getenv("LATCH_CLIENT_SECRET");
    return *id && **id && *secret && **secret;
}

/* Reads a URL given to latch: its origin (which a token may reach) and its path. */
int cli_target_read(const char *cmd, const char *arg, struct cli_target *t)
{
    char why[1024];
    memset(t, 0, sizeof *t);
    if (!arg) {
        fprintf(stderr, "latch %s: give the application's URL (https://app.example.com/…)\n", cmd);
        return LATCH_EXIT_USAGE;
    }
    if (!(t->url = cli_url_scheme(arg, t->urlbuf, sizeof t->urlbuf))) {
        fprintf(stderr, "latch %s: the URL is too long\n", cmd);
        return LATCH_EXIT_USAGE;
    }
    if (cli_origin_parse(t->url, &t->origin, why, sizeof why) != 0) {
        fprintf(stderr, "latch %s: %s\n", cmd, why);
        return LATCH_EXIT_USAGE;
    }
    if (!cli_cleartext_ok(&t->origin)) {
        fprintf(stderr, "latch %s: %s is plain http to a host that is not this machine: a token would "
                        "travel in clear; use https\n", cmd, t->url);
        return LATCH_EXIT_USAGE;
    }
    char *raw = cli_url_raw_path(t->url);
    int rc = raw ? cli_path_match(raw, &t->path, why, sizeof why) : -1;
    free(raw);
    if (rc != 0) {
        fprintf(stderr, "latch %s: %s\n", cmd, raw ? why : "out of memory");
        return LATCH_EXIT_USAGE;
    }
    return LATCH_EXIT_OK;
}

/* The app at the target's path, where to log in, and, with `token`, what the gateway thinks of
 * it: GET /cdn-cgi/access/app?path=… on the app's own origin (the token goes nowhere else). */
int cli_discover(const struct cli_target *t, const char *token, struct cli_app_info *a)
{
    char err[512], base[300], why[512], hdr[9000];
    memset(a, 0, sizeof *a);
    if (strlen(t->path) >= HANDOFF_PATH_MAX) { /* the gateway's sign-in would not carry it */
        fprintf(stderr, "latch: the URL's path is longer than %d bytes, more than a sign-in carries; "
                        "log in with a shorter URL of the same app (latch login), then run this again\n",
                HANDOFF_PATH_MAX - 1);
        return LATCH_EXIT_USAGE;
    }
    origin_base(&t->origin, base, sizeof base);
    struct strbuf url;
    sb_init(&url, CLI_HANDOFF_URL_MAX);
    sb_addf(&url, "%s/cdn-cgi/access/app?path=", base);
    form_urlencode(&url, t->path, strlen(t->path));
    if (url.overflow) {
        sb_free(&url);
        fprintf(stderr, "latch: the URL's path is too long\n");
        return LATCH_EXIT_USAGE;
    }
    const char *hdrs[] = { hdr, NULL };
    if (token)
        snprintf(hdr, sizeof hdr, "cf-access-token: %s", token);
    struct cli_http h;
    bool ok = cli_http(url.p, NULL, token ? hdrs : NULL, 15, &h, err, sizeof err);
    sb_free(&url);
    sodium_memzero(hdr, sizeof hdr);
    if (!ok) {
        fprintf(stderr, "latch: cannot reach %s: %s\n", t->origin.key, err);
        return LATCH_EXIT_FAILED;
    }
    json_error_t je;
    json_t *j = h.status == 200 ? json_loadb(h.body, h.len, 0, &je) : NULL;
    long status = h.status;
    cli_http_free(&h);
    const char *au = json_string_value(json_object_get(j, "auth_url"));
    const char *ad = json_string_value(json_object_get(j, "auth_domain"));
    const char *aud = json_string_value(json_object_get(j, "aud"));
    const char *app = json_string_value(json_object_get(j, "app"));
    if (!au || !ad || !aud || !app) {
        json_decref(j);
        if (status == 404)
            fprintf(stderr, "latch: %s%s is not an application behind latch (%s answered 404 for that host "
                            "and path): check the URL, its path too\n", base, t->path, t->origin.key);
        else
            fprintf(stderr, "latch: %s is not an application behind latch (answered %ld)\n", t->origin.key, status);
        return LATCH_EXIT_FAILED;
    }
    /* the org token is only ever sent to its auth domain: the URL the app names must be on it,
     * and be one a token may go to */
    char domain_url[400];
    struct cli_origin dom;
    snprintf(domain_url, sizeof domain_url, "%s://%s", !strncasecmp(au, "https:", 6) ? "https" : "http", ad);
    if (cli_origin_parse(au, &a->auth, why, sizeof why) != 0 || cli_origin_parse(domain_url, &dom, why, sizeof why) != 0 ||
        !cli_origin_same(&a->auth, &dom) || !cli_cleartext_ok(&a->auth)) {
        fprintf(stderr, "latch: %s names an auth URL (%s) that is not on its auth domain (%s), or is plain "
                        "http to another machine: refused\n", t->origin.key, au, ad);
        json_decref(j);
        return LATCH_EXIT_FAILED;
    }
    a->auth_url = strdup(au);
    a->auth_domain = strdup(ad);
    a->aud = strdup(aud);
    a->app = strdup(app);
    const char *ts = json_string_value(json_object_get(j, "token"));
    const char *em = json_string_value(json_object_get(j, "email"));
    json_t *routes = json_object_get(j, "routes");
    const char *pair = json_string_value(json_object_get(j, "pair"));
    a->pair = pair && strlen(pair) == 32 ? strdup(pair) : NULL;
    a->token_status = ts ? strdup(ts) : NULL;
    a->email = em ? strdup(em) : NULL;
    a->routes = json_is_array(routes) ? json_incref(routes) : NULL;
    json_decref(j);
    return a->auth_url && a->auth_domain && a->aud && a->app ? LATCH_EXIT_OK : LATCH_EXIT_FAILED;
}

/* Why the gateway would refuse a token, in words. */
const char *cli_refusal_words(const char *status)
{
    if (!status)
        return "refused";
    if (!strcmp(status, "revoked"))
        return "revoked: the session was ended (latch logout, latchd revoke)";
    if (!strcmp(status, "expired"))
        return "expired";
    if (!strcmp(status, "bad_audience"))
        return "it is another app's: the path belongs to another app now";
    return status;
}

/* With a stored org token for the app's auth origin: POST /cdn-cgi/access/token there (no
 * browser), naming the app by host and path. */
static int exchange_org(const char *dir, const struct cli_target *t, const struct cli_app_info *a, char **app_token)
{
    char *org = cli_org_token(dir, &a->auth, CLI_FRESH_MARGIN_S);
    if (!org)
        return LATCH_EXIT_NO_LOGIN;
    char err[512], base[300], hdr[9000];
    origin_base(&a->auth, base, sizeof base);
    struct strbuf url, form;
    sb_init(&url, 1024);
    sb_init(&form, CLI_HANDOFF_URL_MAX);
    sb_addf(&url, "%s/cdn-cgi/access/token", base);
    sb_addf(&form, "host=%s&path=", t->origin.key);
    form_urlencode(&form, t->path, strlen(t->path));
    snprintf(hdr, sizeof hdr, "cf-access-token: %s", org);
    const char *hdrs[] = { hdr, NULL };
    struct cli_http h;
    int st = LATCH_EXIT_NO_LOGIN;
    if (!url.overflow && !form.overflow && cli_http(url.p, form.p, hdrs, 15, &h, err, sizeof err)) {
        json_error_t je;
        json_t *j = h.status == 200 ? json_loadb(h.body, h.len, 0, &je) : NULL;
        const char *tok = json_string_value(json_object_get(j, "app_token"));
        if (tok && cli_jwt_has_aud(tok, a->aud)) {
            *app_token = strdup(tok);
            st = *app_token ? LATCH_EXIT_OK : LATCH_EXIT_FAILED;
        } else if (h.status == 403) {
            fprintf(stderr, "latch: the gateway refuses %s (app %s) to you (its policy): ask your administrator "
                            "for access\n", t->url, a->app);
            st = LATCH_EXIT_REFUSED;
        } else if (h.status == 401) {
            cli_org_remove(dir, &a->auth); /* revoked or expired: a browser login is next */
        }
        json_decref(j);
        cli_http_free(&h);
    }
    sodium_memzero(hdr, sizeof hdr);
    sodium_memzero(org, strlen(org));
    free(org);
    sb_free(&url);
    sb_free(&form);
    return st;
}

/* The stored token for the target's app, when the stored patterns say which app its path is.
 * No network. */
char *cli_stored_token(const char *dir, const struct cli_target *t)
{
    json_t *rec = cli_record_read(dir, &t->origin);
    const char *aud = rec ? cli_routes_aud(json_object_get(rec, "routes"), t->origin.key, t->path) : NULL;
    const char *tok = aud ? cli_record_token(rec, aud, CLI_FRESH_MARGIN_S) : NULL;
    char *out = tok ? strdup(tok) : NULL;
    json_decref(rec);
    return out;
}

char *cli_stored_app_name(const struct cli_target *t)
{
    char *dir = cli_store_dir();
    json_t *rec = dir ? cli_record_read(dir, &t->origin) : NULL;
    const char *aud = rec ? cli_routes_aud(json_object_get(rec, "routes"), t->origin.key, t->path) : NULL;
    const char *app = aud ? json_string_value(json_object_get(json_object_get(json_object_get(rec, "apps"), aud), "app"))
                          : NULL;
    char *out = app ? strdup(app) : NULL;
    json_decref(rec);
    free(dir);
    return out;
}

/* Stores an app token the gateway just confirmed (with the host's patterns it sent along), and
 * the org token when a login brought one. The caller holds the origin's lock. */
static int save_token(const char *dir, const struct cli_target *t, const struct cli_app_info *a, const struct cli_app_info *chk,
                      const char *token, const char *org)
{
    json_t *rec = cli_record_read(dir, &t->origin);
    if (!rec)
        rec = cli_record_new(&t->origin);
    int rc = -1;
    if (rec) {
        json_object_set_new(rec, "auth_url", json_string(a->auth_url));
        json_object_set_new(rec, "auth_domain", json_string(a->auth_domain));
        json_object_set_new(rec, "auth_origin", json_string(a->auth.text));
        if (chk->routes)
            json_object_set(rec, "routes", chk->routes);
        json_object_set_new(json_object_get(rec, "apps"), a->aud,
                            json_pack("{s:s,s:s}", "app", a->app, "app_token", token));
        rc = cli_record_write(dir, &t->origin, rec);
        json_decref(rec);
    }
    if (rc == 0 && org)
        rc = cli_org_write(dir, &a->auth, a->auth_domain, org);
    if (rc != 0)
        fprintf(stderr, "latch: cannot store the token in %s\n", dir);
    return rc == 0 ? LATCH_EXIT_OK : LATCH_EXIT_FAILED;
}

/* Drops the stored token of one app (refused by the gateway), and the host's patterns when the
 * refusal says they are out of date. */
void cli_forget_token(const char *dir, const struct cli_origin *o, const char *aud, bool patterns)
{
    int lock = cli_store_lock(dir, o->key);
    json_t *rec = cli_record_read(dir, o);
    if (rec) {
        json_object_del(json_object_get(rec, "apps"), aud);
        if (patterns)
            json_object_del(rec, "routes");
        cli_record_write(dir, o, rec);
        json_decref(rec);
    }
    if (lock >= 0)
        close(lock);
}

/* A token for the target's app: the stored one (no network), or under the origin's lock (one
 * login serves concurrent latch processes): discovery, then a stored token whose patterns were
 * missing, the org token's exchange, or the browser; the gateway confirms the token (and gives
 * the host's patterns) before it is stored. *checked: whether the gateway confirmed it now;
 * *email then says whose it is. */
int cli_ensure_token(const struct cli_target *t, const struct cli_opts *o, char **token, bool *checked, char **email)
{
    char *dir = cli_store_dir();
    int st = LATCH_EXIT_OK, lock = -1;
    *token = NULL;
    *checked = false;
    if (email)
        *email = NULL;
    if (!dir)
        return LATCH_EXIT_FAILED;
    if ((*token = cli_stored_token(dir, t))) /* no network round trip */
        goto out;
    lock = cli_store_lock(dir, t->origin.key);
    if ((*token = cli_stored_token(dir, t)))
        goto out;
    struct cli_app_info a, chk = { 0 };
    if ((st = cli_discover(t, NULL, &a)) != LATCH_EXIT_OK)
        goto out;
    json_t *rec = cli_record_read(dir, &t->origin);
    const char *have = rec ? cli_record_token(rec, a.aud, CLI_FRESH_MARGIN_S) : NULL;
    char *tok = have ? strdup(have) : NULL, *org = NULL;
    json_decref(rec);
    if (tok) { /* stored, but the patterns that name its app were not: the gateway says */
        st = cli_discover(t, tok, &chk);
        if (st == LATCH_EXIT_OK && (!chk.token_status || strcmp(chk.token_status, "ok") || strcmp(chk.aud, a.aud))) {
            cli_app_info_free(&chk);
            free(tok);
            tok = NULL;
        }
    }
    if (st == LATCH_EXIT_OK && !tok) {
        st = exchange_org(dir, t, &a, &tok);
        if (st == LATCH_EXIT_NO_LOGIN)
            st = cli_handoff(a.auth_url, t->origin.key, t->path, a.aud, &o->handoff, &tok, &org);
        if (st == LATCH_EXIT_OK)
            st = cli_discover(t, tok, &chk);
        if (st == LATCH_EXIT_OK && (!chk.token_status || strcmp(chk.token_status, "ok") || strcmp(chk.aud, a.aud))) {
            fprintf(stderr, "latch: the gateway refuses the token it just issued for %s (%s): try again\n",
                    t->url, cli_refusal_words(chk.token_status));
            st = LATCH_EXIT_REFUSED;
        }
    }
    if (st == LATCH_EXIT_OK)
        st = save_token(dir, t, &a, &chk, tok, org);
    if (st == LATCH_EXIT_OK) {
        *token = tok;
        tok = NULL;
        *checked = true;
        if (email) {
            *email = chk.email;
            chk.email = NULL;
        }
    }
    if (tok)
        sodium_memzero(tok, strlen(tok));
    free(tok);
    if (org)
        sodium_memzero(org, strlen(org));
    free(org);
    cli_app_info_free(&a);
    cli_app_info_free(&chk);
out:
    if (lock >= 0)
        close(lock);
    free(dir);
    return st;
}

/* A fresh org token for the gateway of the target: the stored one, or one a browser login
 * brings (the target's app is logged in to on the way). */
int cli_ensure_org(const struct cli_target *t, const struct cli_opts *o, const struct cli_app_info *a, char **org)
{
    char *dir = cli_store_dir();
    if (!dir)
        return LATCH_EXIT_FAILED;
    int st = LATCH_EXIT_OK;
    if ((*org = cli_org_token(dir, &a->auth, CLI_FRESH_MARGIN_S)))
        goto out;
    int lock = cli_store_lock(dir, t->origin.key);
    char *tok = NULL;
    struct cli_app_info chk = { 0 };
    if (!(*org = cli_org_token(dir, &a->auth, CLI_FRESH_MARGIN_S))) {
        st = cli_handoff(a->auth_url, t->origin.key, t->path, a->aud, &o->handoff, &tok, org);
        if (st == LATCH_EXIT_OK && !*org) {
            fprintf(stderr, "latch: the gateway sent no organization token\n");
            st = LATCH_EXIT_FAILED;
        }
        if (st == LATCH_EXIT_OK && (st = cli_discover(t, tok, &chk)) == LATCH_EXIT_OK &&
            (!chk.token_status || strcmp(chk.token_status, "ok") || strcmp(chk.aud, a->aud))) {
            fprintf(stderr, "latch: the gateway refuses the token it just issued for %s (%s): try again\n",
                    t->url, cli_refusal_words(chk.token_status));
            st = LATCH_EXIT_REFUSED;
        }
        if (st == LATCH_EXIT_OK)
            st = save_token(dir, t, a, &chk, tok, *org);
    }
    cli_app_info_free(&chk);
    if (tok)
        sodium_memzero(tok, strlen(tok));
    free(tok);
    if (st != LATCH_EXIT_OK && *org) {
        sodium_memzero(*org, strlen(*org));
        free(*org);
        *org = NULL;
    }
    if (lock >= 0)
        close(lock);
out:
    free(dir);
    return st;
}

/* A header value from the environment: printable, no CR or LF (a line of its own would be a
 * header latch did not mean to send). */
static bool header_value_ok(const char *v)
{
    for (; *v; v++)
        if ((unsigned char)*v < 0x20 || *v == 0x7f)
            return false;
    return true;
}

int cli_access(const char *verb, const char *url, const struct cli_opts *o, char **token, char **svc_headers,
               char **origin)
{
    struct cli_target t;
    *token = NULL;
    *svc_headers = NULL;
    *origin = NULL;
    int st = cli_target_read(verb, url, &t);
    if (st != LATCH_EXIT_OK)
        return st;
    const char *id, *secret;
    if (cli_service_creds(&id, &secret)) { /* machines: the service token's headers, never a browser */
        if (!header_value_ok(id) || !header_value_ok(secret)) {
            fprintf(stderr, "latch %s: LATCH_CLIENT_ID or LATCH_CLIENT_SECRET holds a control character\n", verb);
            st = LATCH_EXIT_USAGE;
        } else if (asprintf(svc_headers, "CF-Access-Client-Id: %s\r\nCF-Access-Client-Secret: %s\r\n", id,
                            secret) < 0) {
            *svc_headers = NULL;
            st = LATCH_EXIT_FAILED;
        }
    } else {
        bool checked;
        st = cli_ensure_token(&t, o, token, &checked, NULL);
    }
    if (st == LATCH_EXIT_OK && !(*origin = strdup(t.origin.text)))
        st = LATCH_EXIT_FAILED;
    if (st != LATCH_EXIT_OK) {
        if (*token)
            sodium_memzero(*token, strlen(*token));
        if (*svc_headers)
            sodium_memzero(*svc_headers, strlen(*svc_headers));
        free(*token);
        free(*svc_headers);
        *token = *svc_headers = NULL;
    }
    cli_target_free(&t);
    return st;
}

void cli_access_forget(const char *url, const char *token)
{
    char buf[CLI_HANDOFF_URL_MAX], why[512];
    const char *u = cli_url_scheme(url, buf, sizeof buf);
    struct cli_origin o;
    char *dir = u && cli_origin_parse(u, &o, why, sizeof why) == 0 ? cli_store_dir() : NULL;
    char *aud = dir ? cli_jwt_aud(token) : NULL;
    int lock = aud ? cli_store_lock(dir, o.key) : -1;
    json_t *rec = aud ? cli_record_read(dir, &o) : NULL;
    json_t *apps = json_object_get(rec, "apps");
    const char *stored = json_string_value(json_object_get(json_object_get(apps, aud), "app_token"));
    if (stored && !strcmp(stored, token)) { /* not a newer one another latch stored meanwhile */
        json_object_del(apps, aud);
        cli_record_write(dir, &o, rec);
    }
    json_decref(rec);
    if (lock >= 0)
        close(lock);
    free(aud);
    free(dir);
}
