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
#include <sys/mman.h>
#include <unistd.h>

#define FRESH_MARGIN_S 60

static const char usage_text[] =
    "usage: latch [--no-browser] [--timeout SECONDS] COMMAND …\n"
    "\n"
    "  latch login URL          make sure a valid token for URL's host is stored; log in if not\n"
    "  latch curl URL [ARGS…]   run curl with the token added (cf-access-token header); every\n"
    "                           other argument goes to curl untouched; the exit status is curl's\n"
    "  latch token URL          print the stored token (for -H \"cf-access-token: $(latch token URL)\")\n"
    "  latch logout [URL|--all] end the session(s) and forget the token(s)\n"
    "\n"
    "Logging in opens a browser ($BROWSER, xdg-open, open) on the gateway's confirmation page;\n"
    "check that it shows the code printed here. With --no-browser, or over ssh, the URL is printed\n"
    "to open on any device. Tokens are kept in $XDG_CONFIG_HOME/latch (else ~/.config/latch),\n"
    "one file per host, readable by you only, and only ever sent to the host they are for.\n"
    "Machines: with LATCH_CLIENT_ID and LATCH_CLIENT_SECRET set, latch curl sends the service\n"
    "token headers and never opens a browser.\n"
    "\n"
    "exit status: curl's for `latch curl` once curl runs; otherwise 0 ok, 1 error (network,\n"
    "gateway), 2 usage, 3 the login was not completed in time, 4 refused by the gateway\n"
    "(policy, revoked), 5 no token stored (latch token).\n";

static bool cleartext_ok(const char *scheme, const char *host);

struct opts {
    struct cli_handoff_opts handoff;
};

struct app_info {
    char scheme[8], host[300];
    char *auth_url, *auth_domain, *aud, *app;
};

static void app_info_free(struct app_info *a)
{
    free(a->auth_url);
    free(a->auth_domain);
    free(a->aud);
    free(a->app);
}

/* GET /cdn-cgi/access/app on the app host: where to log in, and the app's AUD. */
static int discover(const char *url, struct app_info *a)
{
    char err[512], probe[800];
    if (cli_url_split(url, a->scheme, sizeof a->scheme, a->host, sizeof a->host) != 0) {
        fprintf(stderr, "latch: '%s' is not an http(s) URL\n", url);
        return CLI_USAGE;
    }
    snprintf(probe, sizeof probe, "%s://%s/cdn-cgi/access/app", a->scheme, a->host);
    struct cli_http h;
    if (!cli_http(probe, NULL, NULL, 15, &h, err, sizeof err)) {
        fprintf(stderr, "latch: cannot reach %s: %s\n", a->host, err);
        return CLI_ERROR;
    }
    json_error_t je;
    json_t *j = h.status == 200 ? json_loadb(h.body, h.len, 0, &je) : NULL;
    cli_http_free(&h);
    const char *au = json_string_value(json_object_get(j, "auth_url"));
    const char *ad = json_string_value(json_object_get(j, "auth_domain"));
    const char *aud = json_string_value(json_object_get(j, "aud"));
    const char *app = json_string_value(json_object_get(j, "app"));
    if (!au || !ad || !aud || !app || strncmp(au, "http", 4)) {
        json_decref(j);
        fprintf(stderr, "latch: %s is not an application behind latch (answered %ld)\n", a->host, h.status);
        return CLI_ERROR;
    }
    /* the org token is only ever sent to its auth domain: the URL the app host names must be on it */
    char ascheme[8], ahost[300], dom[300];
    if (cli_url_split(au, ascheme, sizeof ascheme, ahost, sizeof ahost) != 0 ||
        cli_host_key(ad, dom, sizeof dom) != 0 || strcmp(ahost, dom) != 0 || !cleartext_ok(ascheme, ahost)) {
        json_decref(j);
        fprintf(stderr, "latch: %s names an auth URL (%s) that is not on its auth domain (%s): refused\n",
                a->host, au, ad);
        return CLI_ERROR;
    }
    a->auth_url = strdup(au);
    a->auth_domain = strdup(ad);
    a->aud = strdup(aud);
    a->app = strdup(app);
    json_decref(j);
    return CLI_OK;
}

static char *org_key(const char *auth_domain)
{
    char key[300], *out = NULL;
    if (cli_host_key(auth_domain, key, sizeof key) != 0 || asprintf(&out, "%s.org", key) < 0)
        return NULL;
    return out;
}

/* With a stored org token: POST /cdn-cgi/access/token on the auth domain (no browser). */
static int exchange_org(const char *dir, const struct app_info *a, char **app_token)
{
    char *ok = org_key(a->auth_domain);
    json_t *rec = ok ? cli_store_read(dir, ok) : NULL;
    const char *org = json_string_value(json_object_get(rec, "org_token"));
    int st = CLI_NO_LOGIN;
    if (org && cli_jwt_fresh(org, FRESH_MARGIN_S)) {
        char url[1024], form[400], hdr[9000], err[512];
        snprintf(url, sizeof url, "%s/cdn-cgi/access/token", a->auth_url);
        snprintf(form, sizeof form, "host=%s", a->host);
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
                fprintf(stderr, "latch: the gateway refuses %s to you (policy)\n", a->host);
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

static int store_tokens(const char *dir, const struct app_info *a, const char *app_token, const char *org_token)
{
    json_t *rec = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "host", a->host, "app", a->app, "aud", a->aud,
                            "auth_domain", a->auth_domain, "auth_url", a->auth_url, "app_token", app_token);
    int rc = rec ? cli_store_write(dir, a->host, rec) : -1;
    json_decref(rec);
    if (rc == 0 && org_token) {
        char *ok = org_key(a->auth_domain);
        json_t *org = json_pack("{s:s,s:s}", "auth_domain", a->auth_domain, "org_token", org_token);
        rc = ok && org ? cli_store_write(dir, ok, org) : -1;
        json_decref(org);
        free(ok);
    }
    if (rc != 0)
        fprintf(stderr, "latch: cannot store the token in %s\n", dir);
    return rc == 0 ? CLI_OK : CLI_ERROR;
}

static char *stored_token(const char *dir, const char *host)
{
    json_t *rec = cli_store_read(dir, host);
    const char *t = json_string_value(json_object_get(rec, "app_token"));
    char *out = t && cli_jwt_fresh(t, FRESH_MARGIN_S) ? strdup(t) : NULL;
    json_decref(rec);
    return out;
}

/* A valid token for URL's host in *token: the stored one, or one from a login. */
static int ensure_token(const char *url, const struct opts *o, char **token, char *host, size_t hcap)
{
    char scheme[8];
    if (cli_url_split(url, scheme, sizeof scheme, host, hcap) != 0) {
        fprintf(stderr, "latch: '%s' is not an http(s) URL\n", url);
        return CLI_USAGE;
    }
    char *dir = cli_store_dir();
    if (!dir)
        return CLI_ERROR;
    int st = CLI_OK;
    if ((*token = stored_token(dir, host))) /* no network round trip */
        goto out;
    int lock = cli_store_lock(dir, host); /* concurrent latch processes: one login serves all */
    if ((*token = stored_token(dir, host))) {
        close(lock);
        goto out;
    }
    struct app_info a = { 0 };
    st = discover(url, &a);
    char *org = NULL;
    if (st == CLI_OK) {
        st = exchange_org(dir, &a, token);
        if (st == CLI_NO_LOGIN)
            st = cli_handoff(a.auth_url, a.host, a.aud, &o->handoff, token, &org);
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
        if (!strncmp(argv[i], "http://", 7) || !strncmp(argv[i], "https://", 8))
            return argv[i];
    return NULL;
}

/* What curl's arguments (and the config files it reads) could make it do with the token. */
enum {
    SCAN_FOLLOW = 1,   /* follows redirects: curl drops a -H Cookie when host, port or scheme change */
    SCAN_TRUSTED = 2,  /* --location-trusted: credentials follow everywhere */
    SCAN_URLS = 4,     /* more URLs than the app's: a header would go to each */
};

static bool prefix_of(const char *arg, const char *option, size_t min)
{
    size_t n = strlen(arg);
    return n >= min && n <= strlen(option) && !strncmp(arg, option, n);
}

/* A curl config file (-K, .curlrc): `location`/`-L` lines, and URLs (a `url` line or anything
 * with "://"). An unreadable file that curl may still read counts as both. */
static int config_scan(const char *path, bool must_exist)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return must_exist ? SCAN_FOLLOW | SCAN_URLS : 0;
    char line[4096];
    int flags = 0;
    while (fgets(line, sizeof line, f)) {
        char *p = line;
        while (*p == ' ' || *p == '\t' || *p == '-')
            p++;
        size_t n = strcspn(p, " \t=:\r\n");
        if ((n == 1 && *p == 'L') || (n >= 3 && !strncmp(p, "location", n < 8 ? n : 8)))
            flags |= n > 8 && !strncmp(p, "location-trusted", n < 16 ? n : 16) ? SCAN_TRUSTED : SCAN_FOLLOW;
        if ((n == 3 && !strncmp(p, "url", 3)) || strstr(line, "://"))
            flags |= SCAN_URLS;
    }
    fclose(f);
    return flags;
}

static void hostname_of(const char *hostport, char *out, size_t cap)
{
    snprintf(out, cap, "%s", hostport);
    char *colon = strchr(out, ':');
    if (colon)
        *colon = '\0';
}

/* Reads curl's command line the way curl would (short option clusters, unambiguous prefixes of
 * long options, -K files, the .curlrc files it reads unless -q comes first). Broad on purpose.
 * Returns SCAN_* flags, or -1 with *bad set when another URL is for the same host name on
 * another port: cookies know no ports (RFC 6265 §8.5), so no way of passing the token would
 * keep it from that URL. */
static int scan_curl_args(int argc, char **argv, const char *url, const char *host, const char **bad)
{
    char name[300], oname[300];
    hostname_of(host, name, sizeof name);
    int flags = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1] == '-') {
            char opt[64];
            snprintf(opt, sizeof opt, "%.*s", (int)strcspn(a, "="), a);
            if (prefix_of(opt, "--location-trusted", 11))
                flags |= SCAN_TRUSTED;
            else if (prefix_of(opt, "--location", 5))
                flags |= SCAN_FOLLOW;
            else if (prefix_of(opt, "--config", 6))
                flags |= config_scan(a[strlen(opt)] == '=' ? a + strlen(opt) + 1 : (i + 1 < argc ? argv[i + 1] : ""), true);
            else if (prefix_of(opt, "--url", 5) || prefix_of(opt, "--next", 5))
                flags |= SCAN_URLS;
        } else if (a[0] == '-' && a[1] != '\0') {
            const char *k = strchr(a + 1, 'K'), *l = strchr(a + 1, 'L');
            if (l && (!k || l < k))
                flags |= SCAN_FOLLOW;
            if (k)
                flags |= config_scan(k[1] ? k + 1 : (i + 1 < argc ? argv[i + 1] : ""), true);
            if (strchr(a + 1, ':'))
                flags |= SCAN_URLS; /* -: is --next */
        } else if (a != url && strstr(a, "://")) {
            char scheme[16], h[300];
            if (cli_url_split(a, scheme, sizeof scheme, h, sizeof h) == 0 && !strcmp(h, host))
                continue;
            hostname_of(h, oname, sizeof oname);
            if (!strcmp(oname, name)) {
                *bad = a;
                return -1;
            }
            flags |= SCAN_URLS;
        }
    }
    if (argc > 0 && (!strcmp(argv[0], "-q") || !strcmp(argv[0], "--disable")))
        return flags;
    const char *homes[] = { getenv("CURL_HOME"), getenv("XDG_CONFIG_HOME"), getenv("HOME") };
    for (size_t i = 0; i < 3; i++) {
        char path[4096];
        if (!homes[i] || !*homes[i])
            continue;
        snprintf(path, sizeof path, "%s/.curlrc", homes[i]);
        flags |= config_scan(path, false);
        snprintf(path, sizeof path, "%s/curlrc", homes[i]);
        flags |= config_scan(path, false);
    }
    return flags;
}

/* A private, in-memory file holding `text` for curl to read (-H @file, -b file): a secret
 * never sits in curl's argv, where any local user could read it with ps. */
static const char *memfile(const char *text, char path[32])
{
    int fd = memfd_create("latch", 0); /* no CLOEXEC: curl inherits it */
    if (fd < 0 || dprintf(fd, "%s", text) < 0 || lseek(fd, 0, SEEK_SET) != 0)
        return NULL;
    snprintf(path, 32, "/proc/self/fd/%d", fd);
    return path;
}

/* Plain HTTP only on this machine: a token never travels in clear over a network. */
static bool cleartext_ok(const char *scheme, const char *host)
{
    char name[300];
    hostname_of(host, name, sizeof name);
    size_t n = strlen(name);
    return strcmp(scheme, "http") != 0 || !strcmp(name, "localhost") || !strncmp(name, "127.", 4) ||
           (n > 10 && !strcmp(name + n - 10, ".localhost"));
}

static int cmd_curl(int argc, char **argv, const struct opts *o)
{
    const char *url = find_url(argc, argv);
    char scheme[8], host[300];
    if (!url || cli_url_split(url, scheme, sizeof scheme, host, sizeof host) != 0) {
        fprintf(stderr, "latch curl: give the URL (http:// or https://) to fetch\n");
        return CLI_USAGE;
    }
    const char *bad = NULL;
    int scan = scan_curl_args(argc, argv, url, host, &bad);
    if (scan < 0) {
        fprintf(stderr, "latch curl: %s is another port of %s's host name; the token is only ever "
                        "sent to its own host: run latch curl once per URL\n", bad, host);
        return CLI_USAGE;
    }
    if (scan & SCAN_TRUSTED) {
        fprintf(stderr, "latch curl: --location-trusted would let curl send the token to any host a "
                        "redirect names; use -L (the token then stays on %s)\n", host);
        return CLI_USAGE;
    }
    if (!cleartext_ok(scheme, host)) {
        fprintf(stderr, "latch curl: %s is plain http: the token would travel in clear; use https\n", url);
        return CLI_USAGE;
    }
    char **args = calloc((size_t)argc + 4, sizeof *args);
    char path[32], text[9100];
    const char *file = NULL, *flag = "-H";
    char *token = NULL;
    const char *id = getenv("LATCH_CLIENT_ID"), *secret = getenv("LATCH_CLIENT_SECRET");
    int n = 0;
    if (!args)
        return CLI_ERROR;
    args[n++] = "curl";
    if (id && *id && secret && *secret) { /* machines: the service token, never a browser */
        if (scan) { /* these headers would follow any redirect or go to every URL */
            fprintf(stderr, "latch curl: with a service token, latch does not let curl follow redirects or "
                            "fetch other URLs (the secret would go along); drop -L or the extra URLs\n");
            free(args);
            return CLI_USAGE;
        }
        snprintf(text, sizeof text, "CF-Access-Client-Id: %s\nCF-Access-Client-Secret: %s\n", id, secret);
        file = memfile(text, path);
    } else {
        int st = ensure_token(url, o, &token, host, sizeof host);
        if (st != CLI_OK) {
            free(args);
            return st;
        }
        if (scan == SCAN_FOLLOW) {
            /* a Cookie header: since 7.83 curl drops it when a redirect changes the host, the
             * port or the protocol (CVE-2022-27776); it would keep any other header */
            snprintf(text, sizeof text, "Cookie: CF_Authorization=%s\n", token);
        } else if (scan) {
            /* several URLs: a cookie scoped to this host name in a cookie file, so curl sends
             * it to that host only */
            char hostname[300];
            hostname_of(host, hostname, sizeof hostname);
            snprintf(text, sizeof text, "%s\tFALSE\t/\tFALSE\t0\tCF_Authorization\t%s\n", hostname, token);
            flag = "-b";
        } else {
            snprintf(text, sizeof text, "cf-access-token: %s\n", token);
        }
        file = memfile(text, path);
        free(token);
    }
    sodium_memzero(text, sizeof text);
    if (!file) {
        fprintf(stderr, "latch: cannot hand the token to curl: %s\n", strerror(errno));
        free(args);
        return CLI_ERROR;
    }
    static char at[40];
    snprintf(at, sizeof at, "@%s", file);
    args[n++] = (char *)flag;
    args[n++] = !strcmp(flag, "-H") ? at : (char *)file;
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
    char scheme[8], host[300];
    if (!url || cli_url_split(url, scheme, sizeof scheme, host, sizeof host) != 0) {
        fprintf(stderr, "latch token: give the application's URL (http:// or https://)\n");
        return CLI_USAGE;
    }
    const char *id = getenv("LATCH_CLIENT_ID"), *secret = getenv("LATCH_CLIENT_SECRET");
    if (id && *id && secret && *secret) { /* machines: the app token the gateway mints for them */
        char h1[600], h2[600], err[512];
        snprintf(h1, sizeof h1, "CF-Access-Client-Id: %s", id);
        snprintf(h2, sizeof h2, "CF-Access-Client-Secret: %s", secret);
        const char *hdrs[] = { h1, h2, NULL };
        struct cli_http h;
        if (!cli_http(url, NULL, hdrs, 15, &h, err, sizeof err)) {
            fprintf(stderr, "latch: cannot reach %s: %s\n", host, err);
            return CLI_ERROR;
        }
        int st = CLI_NO_TOKEN;
        if (h.status == 401 || h.status == 403) {
            fprintf(stderr, "latch: %s refuses this service token (%ld)\n", host, h.status);
            st = CLI_REFUSED;
        } else if (h.cookie) {
            printf("%s\n", h.cookie);
            st = CLI_OK;
        } else {
            fprintf(stderr, "latch: %s admits this service token by its headers and issues no token "
                            "for it; send CF-Access-Client-Id and CF-Access-Client-Secret (latch curl "
                            "does)\n", host);
        }
        cli_http_free(&h);
        return st;
    }
    char *dir = cli_store_dir();
    char *t = dir ? stored_token(dir, host) : NULL;
    free(dir);
    if (!t) {
        fprintf(stderr, "latch: no valid token stored for %s; run: latch login %s\n", host, url);
        return CLI_NO_TOKEN;
    }
    printf("%s\n", t);
    free(t);
    return CLI_OK;
}

/* Asks the app host who the token is: tells a revoked or expired token from a good one. */
static int whoami(const char *url, const char *token, char *email, size_t cap)
{
    char scheme[8], host[300], probe[800], hdr[9000], err[512];
    cli_url_split(url, scheme, sizeof scheme, host, sizeof host);
    snprintf(probe, sizeof probe, "%s://%s/cdn-cgi/access/get-identity", scheme, host);
    snprintf(hdr, sizeof hdr, "Cookie: CF_Authorization=%s", token);
    struct cli_http h;
    const char *hdrs[] = { hdr, NULL };
    if (!cli_http(probe, NULL, hdrs, 15, &h, err, sizeof err)) {
        fprintf(stderr, "latch: cannot reach %s: %s\n", host, err);
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
    if (!url) {
        fprintf(stderr, "latch login: give the application's URL (http:// or https://)\n");
        return CLI_USAGE;
    }
    char *token = NULL, host[300], email[320];
    int st = ensure_token(url, o, &token, host, sizeof host);
    if (st != CLI_OK)
        return st;
    st = whoami(url, token, email, sizeof email);
    if (st == CLI_REFUSED) {
        fprintf(stderr, "latch: the stored token for %s was refused (revoked, or the session ended); "
                        "logging in again\n", host);
        char *dir = cli_store_dir();
        if (dir) {
            cli_store_remove(dir, host);
            free(dir);
        }
        free(token);
        token = NULL;
        st = ensure_token(url, o, &token, host, sizeof host);
        if (st == CLI_OK)
            st = whoami(url, token, email, sizeof email);
    }
    if (st == CLI_OK)
        fprintf(stderr, "latch: logged in to %s as %s\n", host, email[0] ? email : "(service)");
    else if (st == CLI_REFUSED)
        fprintf(stderr, "latch: %s refuses the new token too: ask your administrator for access\n", host);
    free(token);
    return st;
}

/* Ends the session server-side (best effort) and forgets the host's token. */
static void logout_host(const char *dir, const char *key)
{
    json_t *rec = cli_store_read(dir, key);
    const char *t = json_string_value(json_object_get(rec, "app_token"));
    const char *host = json_string_value(json_object_get(rec, "host"));
    const char *au = json_string_value(json_object_get(rec, "auth_url"));
    if (t && host && au) {
        char url[800], hdr[9000], err[256];
        snprintf(url, sizeof url, "%s://%s/cdn-cgi/access/logout", strncmp(au, "https", 5) ? "http" : "https", host);
        snprintf(hdr, sizeof hdr, "Cookie: CF_Authorization=%s", t);
        struct cli_http h;
        const char *hdrs[] = { hdr, NULL };
        if (cli_http(url, NULL, hdrs, 10, &h, err, sizeof err))
            cli_http_free(&h);
        const char *ad = json_string_value(json_object_get(rec, "auth_domain"));
        char *ok = ad ? org_key(ad) : NULL;
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
        const char *url = find_url(argc, argv);
        char scheme[8], host[300];
        if (!url || cli_url_split(url, scheme, sizeof scheme, host, sizeof host) != 0) {
            fprintf(stderr, "latch logout: give the application's URL, or --all\n");
            st = CLI_USAGE;
        } else {
            logout_host(dir, host);
            fprintf(stderr, "latch: logged out of %s\n", host);
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
