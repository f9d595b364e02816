/* latch: the command line (SPEC.md §7). `latch curl URL …` runs curl with the token of URL's
 * host, logging in through the browser first when there is none. A thin main over src/cli. */
#include "cli/cli.h"
#include "core/version.h"

#include <dirent.h>
#include <sodium.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#define FRESH_MARGIN_S 60

static const char usage_text[] =
    "usage: latch [--no-browser] [--timeout SECONDS] COMMAND …\n"
    "\n"
    "  latch login URL          make sure a valid token for URL's origin is stored; log in if not\n"
    "  latch curl URL [ARGS…]   run curl with the token added (cf-access-token header); every\n"
    "                           other argument goes to curl untouched; the exit status is curl's;\n"
    "                           every URL curl would fetch must be the token's origin, and options\n"
    "                           that would send it elsewhere are refused (latch(1) lists them)\n"
    "  latch token URL          print the stored token (for -H \"cf-access-token: $(latch token URL)\")\n"
    "  latch logout [URL|--all] end the session(s) and forget the token(s)\n"
    "\n"
    "Logging in opens a browser ($BROWSER, xdg-open, open) on the gateway's confirmation page;\n"
    "check that it shows the code printed here. With --no-browser, or over ssh, the URL is printed\n"
    "to open on any device. Tokens are kept in $XDG_CONFIG_HOME/latch (else ~/.config/latch),\n"
    "one file per host, readable by you only, and only ever sent to the origin (scheme, host,\n"
    "port) they were issued for; over plain http, only to this machine.\n"
    "Machines: with LATCH_CLIENT_ID and LATCH_CLIENT_SECRET set, latch curl sends the service\n"
    "token headers and never opens a browser.\n"
    "\n"
    "exit status: curl's for `latch curl` once curl runs; otherwise 0 ok, 1 error (network,\n"
    "gateway), 2 usage (or a curl command line latch refuses, saying why), 3 the login was not\n"
    "completed in time, 4 refused by the gateway (policy, revoked), 5 no token stored (latch token).\n";

struct opts {
    struct cli_handoff_opts handoff;
};

struct app_info {
    struct cli_origin origin, auth; /* the app's, the auth URL's */
    char *auth_url, *auth_domain, *aud, *app;
};

static void app_info_free(struct app_info *a)
{
    free(a->auth_url);
    free(a->auth_domain);
    free(a->aud);
    free(a->app);
}

/* "scheme://host[:port]" of an origin, as its URLs are written (no default port). */
static void origin_base(const struct cli_origin *o, char *out, size_t cap)
{
    snprintf(out, cap, "%s://%s", o->scheme, o->key);
}

/* The origin of a URL given on latch's command line, and may a token go there. */
static int user_origin(const char *cmd, const char *url, struct cli_origin *o)
{
    char why[512];
    if (!url) {
        fprintf(stderr, "latch %s: give the application's URL (http:// or https://)\n", cmd);
        return CLI_USAGE;
    }
    if (cli_origin_parse(url, o, why, sizeof why) != 0) {
        fprintf(stderr, "latch %s: %s\n", cmd, why);
        return CLI_USAGE;
    }
    if (!cli_cleartext_ok(o)) {
        fprintf(stderr, "latch %s: %s is plain http to a host that is not this machine: a token would "
                        "travel in clear; use https\n", cmd, url);
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* GET /cdn-cgi/access/app on the app's origin: where to log in, and the app's AUD. */
static int discover(const struct cli_origin *origin, struct app_info *a)
{
    char err[512], probe[800], base[300], why[512];
    a->origin = *origin;
    origin_base(origin, base, sizeof base);
    snprintf(probe, sizeof probe, "%s/cdn-cgi/access/app", base);
    struct cli_http h;
    if (!cli_http(probe, NULL, NULL, 15, &h, err, sizeof err)) {
        fprintf(stderr, "latch: cannot reach %s: %s\n", origin->key, err);
        return CLI_ERROR;
    }
    json_error_t je;
    json_t *j = h.status == 200 ? json_loadb(h.body, h.len, 0, &je) : NULL;
    cli_http_free(&h);
    const char *au = json_string_value(json_object_get(j, "auth_url"));
    const char *ad = json_string_value(json_object_get(j, "auth_domain"));
    const char *aud = json_string_value(json_object_get(j, "aud"));
    const char *app = json_string_value(json_object_get(j, "app"));
    if (!au || !ad || !aud || !app) {
        json_decref(j);
        fprintf(stderr, "latch: %s is not an application behind latch (answered %ld)\n", origin->key, h.status);
        return CLI_ERROR;
    }
    /* the org token is only ever sent to its auth domain: the URL the app names must be on it,
     * and be one a token may go to */
    char domain_url[400];
    struct cli_origin dom;
    snprintf(domain_url, sizeof domain_url, "%s://%s", !strncasecmp(au, "https:", 6) ? "https" : "http", ad);
    if (cli_origin_parse(au, &a->auth, why, sizeof why) != 0 || cli_origin_parse(domain_url, &dom, why, sizeof why) != 0 ||
        !cli_origin_same(&a->auth, &dom) || !cli_cleartext_ok(&a->auth)) {
        fprintf(stderr, "latch: %s names an auth URL (%s) that is not on its auth domain (%s), or is plain "
                        "http to another machine: refused\n", origin->key, au, ad);
        json_decref(j);
        return CLI_ERROR;
    }
    a->auth_url = strdup(au);
    a->auth_domain = strdup(ad);
    a->aud = strdup(aud);
    a->app = strdup(app);
    json_decref(j);
    return a->auth_url && a->auth_domain && a->aud && a->app ? CLI_OK : CLI_ERROR;
}

static char *org_key(const struct cli_origin *auth)
{
    char *out = NULL;
    return asprintf(&out, "%s.org", auth->key) < 0 ? NULL : out;
}

/* With a stored org token for this auth origin: POST /cdn-cgi/access/token there (no browser). */
static int exchange_org(const char *dir, const struct app_info *a, char **app_token)
{
    char *ok = org_key(&a->auth);
    json_t *rec = ok ? cli_store_read(dir, ok) : NULL;
    const char *org = json_string_value(json_object_get(rec, "org_token"));
    const char *where = json_string_value(json_object_get(rec, "origin"));
    int st = CLI_NO_LOGIN;
    if (org && where && !strcmp(where, a->auth.text) && cli_jwt_fresh(org, FRESH_MARGIN_S)) {
        char url[1024], form[400], hdr[9000], err[512], base[300];
        origin_base(&a->auth, base, sizeof base);
        snprintf(url, sizeof url, "%s/cdn-cgi/access/token", base);
        snprintf(form, sizeof form, "host=%s", a->origin.key);
        snprintf(hdr, sizeof hdr, "cf-access-token: %s", org);
        struct cli_http h;
        const char *hdrs[] = { hdr, NULL };
        if (cli_http(url, form, hdrs, 15, &h, err, sizeof err)) {
            json_error_t je;
            json_t *j = h.status == 200 ? json_loadb(h.body, h.len, 0, &je) : NULL;
            const char *t = json_string_value(json_object_get(j, "app_token"));
            if (t && cli_jwt_has_aud(t, a->aud)) {
                *app_token = strdup(t);
                st = CLI_OK;
            } else if (h.status == 403) {
                fprintf(stderr, "latch: the gateway refuses %s to you (policy)\n", a->origin.key);
                st = CLI_REFUSED;
            } else if (h.status == 401) {
                cli_store_remove(dir, ok); /* revoked or expired: a browser login is next */
            }
            json_decref(j);
            cli_http_free(&h);
        }
    }
    json_decref(rec);
    free(ok);
    return st;
}

/* The records: each says the origin its token was issued for, and is only ever used there. */
static int store_tokens(const char *dir, const struct app_info *a, const char *app_token, const char *org_token)
{
    json_t *rec = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "host", a->origin.key, "origin", a->origin.text,
                            "app", a->app, "aud", a->aud, "auth_domain", a->auth_domain, "auth_url", a->auth_url,
                            "auth_origin", a->auth.text, "app_token", app_token);
    int rc = rec ? cli_store_write(dir, a->origin.key, rec) : -1;
    json_decref(rec);
    if (rc == 0 && org_token) {
        char *ok = org_key(&a->auth);
        json_t *org = json_pack("{s:s,s:s,s:s}", "auth_domain", a->auth_domain, "origin", a->auth.text,
                                "org_token", org_token);
        rc = ok && org ? cli_store_write(dir, ok, org) : -1;
        json_decref(org);
        free(ok);
    }
    if (rc != 0)
        fprintf(stderr, "latch: cannot store the token in %s\n", dir);
    return rc == 0 ? CLI_OK : CLI_ERROR;
}

/* The stored token for exactly this origin (a record without one, or for another scheme or
 * port under the same name, is not used), when it is not about to expire. */
static char *stored_token(const char *dir, const struct cli_origin *origin)
{
    json_t *rec = cli_store_read(dir, origin->key);
    const char *t = json_string_value(json_object_get(rec, "app_token"));
    const char *where = json_string_value(json_object_get(rec, "origin"));
    char *out = t && where && !strcmp(where, origin->text) && cli_jwt_fresh(t, FRESH_MARGIN_S) ? strdup(t) : NULL;
    json_decref(rec);
    return out;
}

/* A valid token for the origin in *token: the stored one, or one from a login. */
static int ensure_token(const struct cli_origin *origin, const struct opts *o, char **token)
{
    char *dir = cli_store_dir();
    if (!dir)
        return CLI_ERROR;
    int st = CLI_OK;
    if ((*token = stored_token(dir, origin))) /* no network round trip */
        goto out;
    int lock = cli_store_lock(dir, origin->key); /* concurrent latch processes: one login serves all */
    if ((*token = stored_token(dir, origin))) {
        close(lock);
        goto out;
    }
    struct app_info a = { 0 };
    st = discover(origin, &a);
    char *org = NULL;
    if (st == CLI_OK) {
        st = exchange_org(dir, &a, token);
        if (st == CLI_NO_LOGIN)
            st = cli_handoff(a.auth_url, a.origin.key, a.aud, &o->handoff, token, &org);
        if (st == CLI_OK)
            st = store_tokens(dir, &a, *token, org);
    }
    free(org);
    app_info_free(&a);
    if (lock >= 0)
        close(lock);
out:
    free(dir);
    return st;
}

static const char *find_url(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (!strncasecmp(argv[i], "http://", 7) || !strncasecmp(argv[i], "https://", 8))
            return argv[i];
    return NULL;
}

/* A private, in-memory file holding `text` for curl to read (-H @file): a secret never sits in
 * curl's argv, where any local user could read it with ps. */
static const char *memfile(const char *text, char path[32])
{
    int fd = memfd_create("latch", 0); /* no CLOEXEC: curl inherits it */
    if (fd < 0 || dprintf(fd, "%s", text) < 0 || lseek(fd, 0, SEEK_SET) != 0)
        return NULL;
    snprintf(path, 32, "/proc/self/fd/%d", fd);
    return path;
}

/* curl with the token (or the service token's headers) for the one origin every URL of its
 * command line has (curlargs.c). curl gets -q first (it then reads no .curlrc, whose options
 * latch cannot see), the credentials from a private file, then the user's arguments. */
static int cmd_curl(int argc, char **argv, const struct opts *o)
{
    struct cli_curl_plan plan;
    char why[1024];
    if (cli_curl_read(argc, argv, &plan, why, sizeof why) != 0) {
        fprintf(stderr, "latch curl: %s\n", why);
        return CLI_USAGE;
    }
    char **args = calloc((size_t)argc + 5, sizeof *args);
    if (!args)
        return CLI_ERROR;
    int n = 0;
    args[n++] = "curl";
    if (plan.info) { /* curl prints its help or version and fetches nothing: no token */
        memcpy(args + n, argv, (size_t)argc * sizeof *argv);
        execvp("curl", args);
        fprintf(stderr, "latch: cannot run curl: %s (install curl)\n", strerror(errno));
        return 127;
    }
    char path[32], text[9100];
    const char *file = NULL;
    char *token = NULL;
    const char *id = getenv("LATCH_CLIENT_ID"), *secret = getenv("LATCH_CLIENT_SECRET");
    if (id && *id && secret && *secret) { /* machines: the service token, never a browser */
        if (plan.follow) { /* curl keeps custom headers on every redirect */
            fprintf(stderr, "latch curl: with a service token, latch does not let curl follow redirects "
                            "(the secret would go along); drop -L\n");
            free(args);
            return CLI_USAGE;
        }
        snprintf(text, sizeof text, "CF-Access-Client-Id: %s\nCF-Access-Client-Secret: %s\n", id, secret);
        file = memfile(text, path);
    } else {
        int st = ensure_token(&plan.origin, o, &token);
        if (st != CLI_OK) {
            free(args);
            return st;
        }
        if (plan.follow) /* a Cookie header: since 7.83 curl drops it when a redirect changes the
                          * host, the port or the scheme (CVE-2022-27776); it keeps other headers */
            snprintf(text, sizeof text, "Cookie: CF_Authorization=%s\n", token);
        else
            snprintf(text, sizeof text, "cf-access-token: %s\n", token);
        file = memfile(text, path);
        free(token);
    }
    sodium_memzero(text, sizeof text);
    if (!file) {
        fprintf(stderr, "latch: cannot hand the token to curl: %s\n", strerror(errno));
        free(args);
        return CLI_ERROR;
    }
    if (!strcmp(plan.origin.scheme, "http")) { /* loopback only: a proxy would read the token */
        static const char *const proxies[] = { "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY" };
        for (size_t i = 0; i < sizeof proxies / sizeof *proxies; i++)
            unsetenv(proxies[i]);
    }
    static char at[40];
    snprintf(at, sizeof at, "@%s", file);
    args[n++] = "-q"; /* first, or curl reads ~/.curlrc */
    args[n++] = "-H";
    args[n++] = at;
    for (int i = 0; i < argc; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    fflush(NULL);
    execvp("curl", args);
    fprintf(stderr, "latch: cannot run curl: %s (install curl)\n", strerror(errno));
    return 127;
}

static int cmd_token(int argc, char **argv, const struct opts *o)
{
    const char *url = find_url(argc, argv);
    struct cli_origin origin;
    int st = user_origin("token", url, &origin);
    if (st != CLI_OK)
        return st;
    const char *id = getenv("LATCH_CLIENT_ID"), *secret = getenv("LATCH_CLIENT_SECRET");
    if (id && *id && secret && *secret) { /* machines: the app token the gateway mints for them */
        char h1[600], h2[600], err[512];
        snprintf(h1, sizeof h1, "CF-Access-Client-Id: %s", id);
        snprintf(h2, sizeof h2, "CF-Access-Client-Secret: %s", secret);
        const char *hdrs[] = { h1, h2, NULL };
        struct cli_http h;
        if (!cli_http(url, NULL, hdrs, 15, &h, err, sizeof err)) {
            fprintf(stderr, "latch: cannot reach %s: %s\n", origin.key, err);
            return CLI_ERROR;
        }
        st = CLI_NO_TOKEN;
        if (h.status == 401 || h.status == 403) {
            fprintf(stderr, "latch: %s refuses this service token (%ld)\n", origin.key, h.status);
            st = CLI_REFUSED;
        } else if (h.cookie) {
            printf("%s\n", h.cookie);
            st = CLI_OK;
        } else {
            fprintf(stderr, "latch: %s admits this service token by its headers and issues no token "
                            "for it; send CF-Access-Client-Id and CF-Access-Client-Secret (latch curl "
                            "does)\n", origin.key);
        }
        cli_http_free(&h);
        return st;
    }
    char *dir = cli_store_dir();
    char *t = dir ? stored_token(dir, &origin) : NULL;
    free(dir);
    if (!t) {
        fprintf(stderr, "latch: no valid token stored for %s; run: latch login %s\n", origin.text, url);
        return CLI_NO_TOKEN;
    }
    printf("%s\n", t);
    free(t);
    return CLI_OK;
}

/* Asks the app's origin who the token is: tells a revoked or expired token from a good one. */
static int whoami(const struct cli_origin *origin, const char *token, char *email, size_t cap)
{
    char probe[800], hdr[9000], err[512], base[300];
    origin_base(origin, base, sizeof base);
    snprintf(probe, sizeof probe, "%s/cdn-cgi/access/get-identity", base);
    snprintf(hdr, sizeof hdr, "Cookie: CF_Authorization=%s", token);
    struct cli_http h;
    const char *hdrs[] = { hdr, NULL };
    if (!cli_http(probe, NULL, hdrs, 15, &h, err, sizeof err)) {
        fprintf(stderr, "latch: cannot reach %s: %s\n", origin->key, err);
        return CLI_ERROR;
    }
    json_error_t je;
    json_t *j = h.status == 200 ? json_loadb(h.body, h.len, 0, &je) : NULL;
    const char *e = json_string_value(json_object_get(j, "email"));
    snprintf(email, cap, "%s", e ? e : "");
    int st = h.status == 200 ? CLI_OK : CLI_REFUSED;
    json_decref(j);
    cli_http_free(&h);
    return st;
}

static int cmd_login(int argc, char **argv, const struct opts *o)
{
    const char *url = find_url(argc, argv);
    struct cli_origin origin;
    int st = user_origin("login", url, &origin);
    if (st != CLI_OK)
        return st;
    char *token = NULL, email[320];
    st = ensure_token(&origin, o, &token);
    if (st != CLI_OK)
        return st;
    st = whoami(&origin, token, email, sizeof email);
    if (st == CLI_REFUSED) {
        fprintf(stderr, "latch: the stored token for %s was refused (revoked, or the session ended); "
                        "logging in again\n", origin.key);
        char *dir = cli_store_dir();
        if (dir) {
            cli_store_remove(dir, origin.key);
            free(dir);
        }
        free(token);
        token = NULL;
        st = ensure_token(&origin, o, &token);
        if (st == CLI_OK)
            st = whoami(&origin, token, email, sizeof email);
    }
    if (st == CLI_OK)
        fprintf(stderr, "latch: logged in to %s as %s\n", origin.key, email[0] ? email : "(service)");
    else if (st == CLI_REFUSED)
        fprintf(stderr, "latch: %s refuses the new token too: ask your administrator for access\n", origin.key);
    free(token);
    return st;
}

/* Ends the session server-side (best effort, at the origin the token was issued for) and
 * forgets the record. */
static void logout_host(const char *dir, const char *key)
{
    json_t *rec = cli_store_read(dir, key);
    const char *t = json_string_value(json_object_get(rec, "app_token"));
    const char *where = json_string_value(json_object_get(rec, "origin"));
    const char *ao = json_string_value(json_object_get(rec, "auth_origin"));
    struct cli_origin origin, auth;
    char why[512];
    if (t && where && cli_origin_parse(where, &origin, why, sizeof why) == 0 && cli_cleartext_ok(&origin) &&
        !strcmp(origin.key, key)) {
        char url[800], hdr[9000], err[256], base[300];
        origin_base(&origin, base, sizeof base);
        snprintf(url, sizeof url, "%s/cdn-cgi/access/logout", base);
        snprintf(hdr, sizeof hdr, "Cookie: CF_Authorization=%s", t);
        struct cli_http h;
        const char *hdrs[] = { hdr, NULL };
        if (cli_http(url, NULL, hdrs, 10, &h, err, sizeof err))
            cli_http_free(&h);
        char *ok = ao && cli_origin_parse(ao, &auth, why, sizeof why) == 0 ? org_key(&auth) : NULL;
        if (ok)
            cli_store_remove(dir, ok);
        free(ok);
    }
    cli_store_remove(dir, key);
    json_decref(rec);
}

static int cmd_logout(int argc, char **argv, const struct opts *o)
{
    char *dir = cli_store_dir();
    if (!dir)
        return CLI_ERROR;
    int st = CLI_OK;
    if (argc >= 1 && !strcmp(argv[0], "--all")) {
        DIR *d = opendir(dir);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            size_t n = strlen(e->d_name);
            if (n > 5 && !strcmp(e->d_name + n - 5, ".json") && e->d_name[0] != '.') {
                char key[300];
                snprintf(key, sizeof key, "%.*s", (int)(n - 5), e->d_name);
                logout_host(dir, key);
            }
        }
        if (d)
            closedir(d);
        fprintf(stderr, "latch: logged out everywhere\n");
    } else {
        struct cli_origin origin;
        char why[512];
        const char *url = find_url(argc, argv);
        if (!url || cli_origin_parse(url, &origin, why, sizeof why) != 0) {
            fprintf(stderr, "latch logout: give the application's URL, or --all\n");
            st = CLI_USAGE;
        } else {
            logout_host(dir, origin.key);
            fprintf(stderr, "latch: logged out of %s\n", origin.key);
        }
    }
    free(dir);
    return st;
}

int main(int argc, char **argv)
{
    struct opts o = { .handoff = { .timeout_s = 300 } };
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--version")) {
            printf("latch %s\n", LATCH_VERSION);
            return 0;
        } else if (!strcmp(argv[i], "--no-browser")) {
            o.handoff.no_browser = true;
        } else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
            o.handoff.timeout_s = atoi(argv[++i]);
        } else {
            fprintf(stderr, "latch: unknown option '%s'\n%s", argv[i], usage_text);
            return CLI_USAGE;
        }
    }
    if (i >= argc) {
        fputs(usage_text, stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[i++];
    if (getenv("LATCH_NO_BROWSER"))
        o.handoff.no_browser = true;
    if (i < argc && (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) && strcmp(cmd, "curl")) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (!strcmp(cmd, "curl"))
        return cmd_curl(argc - i, argv + i, &o);
    if (!strcmp(cmd, "login"))
        return cmd_login(argc - i, argv + i, &o);
    if (!strcmp(cmd, "token"))
        return cmd_token(argc - i, argv + i, &o);
    if (!strcmp(cmd, "logout"))
        return cmd_logout(argc - i, argv + i, &o);
    fprintf(stderr, "latch: unknown command '%s'\n%s", cmd, usage_text);
    return CLI_USAGE;
}
