/* The command line client's pieces (SPEC.md §7): the token store, the gateway's HTTP
 * endpoints, and the encrypted browser handoff. `latch` (src/cmd/latch.c) is a thin main. */
#ifndef LATCH_CLI_H
#define LATCH_CLI_H

#include "core/exitcode.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Exit statuses: core/exitcode.h (LATCH_EXIT_*, documented in latch(1)). curl's own status
 * passes through. */

/* --- token store: one JSON file per host, 0600 in a 0700 directory ---------------------- */

/* $XDG_CONFIG_HOME/latch or ~/.config/latch, created 0700. NULL with a message on stderr. */
char *cli_store_dir(void);
/* Reads a stored record ("<key>.json", key: a cli_origin's key); NULL when none. */
json_t *cli_store_read(const char *dir, const char *key);
/* Writes it atomically (temporary file, fsync, rename), 0600. */
int cli_store_write(const char *dir, const char *key, json_t *rec);
int cli_store_remove(const char *dir, const char *key);
/* An exclusive flock on "<key>.lock": concurrent latch processes for one host take turns;
 * the kernel releases it if a process dies. Returns the fd to close, or -1. */
int cli_store_lock(const char *dir, const char *key);

/* --- records (records.c): what the store holds ----------------------------------------------- */

struct cli_origin;

/* An origin's record, "<key>.json": {"version": 2, "origin": "scheme://host:port", "auth_url",
 * "auth_domain", "auth_origin", "routes": [{"pattern","aud"}…] (the host's patterns, as the
 * gateway gave them), "apps": {AUD: {"app": NAME, "app_token": JWT}}}. NULL when none is
 * stored, or the one stored is another origin's (same name, another scheme or port) or of
 * another format. */
json_t *cli_record_read(const char *dir, const struct cli_origin *o);
json_t *cli_record_new(const struct cli_origin *o);
int cli_record_write(const char *dir, const struct cli_origin *o, json_t *rec);
/* The app token stored for aud, when it names aud and is more than `margin` s from expiring. */
const char *cli_record_token(json_t *rec, const char *aud, int64_t margin);
/* The org token of an auth origin ("org@<key>.json"), when fresh (malloc'd), its writing and
 * removal. */
char *cli_org_token(const char *dir, const struct cli_origin *auth, int64_t margin);
int cli_org_write(const char *dir, const struct cli_origin *auth, const char *auth_domain, const char *token);
int cli_org_remove(const char *dir, const struct cli_origin *auth);
/* Forgets every stored token of session `session` (its identity_nonce), org and apps alike, or
 * every token and record when session is NULL; returns how many tokens went. */
int cli_store_forget(const char *dir, const char *session);
/* Appends {"origin", "token"} for every stored token (org records first in no order) to out. */
int cli_store_sessions(const char *dir, json_t *out);

/* --- tokens (read, not verified: the gateway verifies) --------------------------------- */

/* The payload of a JWT as JSON; NULL when malformed. */
json_t *cli_jwt_payload(const char *tok);
/* True when the token's exp is more than `margin` seconds away. */
bool cli_jwt_fresh(const char *tok, int64_t margin);
bool cli_jwt_has_aud(const char *tok, const char *aud);
/* Its (first) aud, malloc'd; NULL when none. */
char *cli_jwt_aud(const char *tok);
/* Its identity_nonce (the session it belongs to), malloc'd; NULL when none. */
char *cli_jwt_session(const char *tok);

/* --- gateway endpoints ------------------------------------------------------------------ */

struct cli_http {
    long status;
    char *body;
    size_t len;
    char *cookie; /* CF_Authorization from Set-Cookie */
};

/* GET or POST (form != NULL) with extra header lines (NULL-terminated list, or NULL); false on
 * a transport error (message in err). timeout in seconds. The answer's Set-Cookie value for
 * CF_Authorization, if any, lands in out->cookie. */
bool cli_http(const char *url, const char *form, const char *const *headers, long timeout,
              struct cli_http *out, char *err, size_t errcap);
void cli_http_free(struct cli_http *h);

/* --- origins ------------------------------------------------------------------------------ */

/* The origin of an absolute http(s) URL (RFC 6454): where a token may go. */
struct cli_origin {
    char scheme[6];  /* "http" or "https" */
    char host[254];  /* lowercase name, a dotted-quad IPv4 address, or [::1] */
    unsigned port;   /* always explicit: 80 or 443 when the URL names none */
    char key[264];   /* the token store's key: host, and ":port" unless it is the scheme's default */
    char text[300];  /* "scheme://host:port" */
};

/* Reads url's origin strictly (origin.c says what is refused: no scheme, userinfo, odd host or
 * IP spellings, anything but [a-z0-9.-] (or [::1]) and ':port' in the authority). 0, or -1 with the
 * reason in why[]. */
int cli_origin_parse(const char *url, struct cli_origin *o, char *why, size_t cap);
bool cli_origin_same(const struct cli_origin *a, const struct cli_origin *b);
/* Whether a token may go to this origin: https, or plain http to this machine only (localhost,
 * names under .localhost, 127.0.0.0/8 in dotted-quad form, [::1]). The one place the CLI
 * decides it. */
bool cli_cleartext_ok(const struct cli_origin *o);

/* A URL as latch reads one: `arg` itself when it has a scheme ("…://"), else "https://" + arg
 * in buf (a URL without a scheme is https, as cloudflared reads it); NULL when it does not fit. */
const char *cli_url_scheme(const char *arg, char *buf, size_t cap);
/* The path of an absolute URL as written (up to '?' or '#'; "/" when it has none), malloc'd. */
char *cli_url_raw_path(const char *url);
/* Whether a path has curl's glob characters ({a,b}, [1-9]): curl would fetch several paths. */
bool cli_path_globs(const char *raw);
/* A path as the gateway matches it: bytes >= 0x80 percent-encoded (as curl sends them), then
 * path_normalize's match form (http/path.h). 0 with *out malloc'd, or -1 with why when the
 * gateway would refuse it (400). */
int cli_path_match(const char *raw, char **out, char *why, size_t cap);

/* --- which app a path is (routes.c) --------------------------------------------------------- */

#define CLI_ROUTES_MAX 4096
/* The AUD of the app that a request for `host` (an origin's key) and `match_path`
 * (cli_path_match) reaches, by the host's patterns as the gateway gave them (its discovery's
 * "routes": [{"pattern","aud"}…], in its order); NULL when none matches. Points into routes. */
const char *cli_routes_aud(json_t *routes, const char *host, const char *match_path);

/* --- curl's command line (curlargs.c) ------------------------------------------------------ */

enum cli_curl_arity { CO_BOOL, CO_FLAG, CO_ARG }; /* on/off (--no-NAME too), a flag, takes a value */
enum cli_curl_policy {
    CO_PASS,      /* nothing to do with where the request goes */
    CO_URL,       /* its value is a URL to fetch (--url) */
    CO_FOLLOW,    /* -L: the token goes as a cookie curl drops when a redirect leaves the origin */
    CO_INFO,      /* --help, --version, --manual: curl prints and fetches nothing */
    CO_INSECURE,  /* -k: refused with https (the token would go to whoever answers) */
    CO_PROXY,     /* a proxy: refused with plain http (it reads the headers) */
    CO_TRUSTED,   /* --location-trusted: refused */
    CO_CONFIG,    /* -K: refused (latch cannot see what the file says) */
    CO_NEXT,      /* --next: refused */
    CO_ROUTE,     /* --connect-to, --resolve, sockets, DNS overrides, alt-svc, hsts: refused */
    CO_UPLOAD,    /* -T: its file name ends a URL that ends in '/': part of the path */
    CO_TARGET,    /* --request-target: the path sent instead of the URL's */
    CO_GLOBOFF,   /* -g: no {a,b} or [1-9] expansion in URLs */
    CO_DUMP,      /* -D: where curl writes the answers' headers (latch reads them) */
};

struct cli_curl_option {
    const char *name;   /* long name, without "--" (and without "no-") */
    char letter;        /* short option, 0 when none */
    unsigned char arity;  /* enum cli_curl_arity */
    unsigned char policy; /* enum cli_curl_policy */
};
extern const struct cli_curl_option cli_curl_options[];
extern const size_t cli_curl_noptions;

#define CLI_CURL_MAX_URLS 64

/* What curl will do, as far as the token is concerned. */
struct cli_curl_plan {
    const char *urls[CLI_CURL_MAX_URLS]; /* every URL curl will fetch, in order, with its scheme */
    int argi[CLI_CURL_MAX_URLS];         /* the argv word that holds each (-1: inside a word) */
    char *owned[CLI_CURL_MAX_URLS];      /* a URL written without a scheme, as https (to give curl) */
    int nurls;
    const char *uploads[CLI_CURL_MAX_URLS]; /* -T values */
    int nuploads;
    const char *request_target;          /* --request-target, NULL when none */
    const char *dump_header;             /* -D, NULL when none */
    bool globoff;                        /* -g */
    struct cli_origin origin;  /* theirs, all the same: the token's */
    bool follow;               /* -L */
    bool info;                 /* curl only prints (help, version): no token needed */
    bool insecure;
    char proxy[64];            /* the first proxy option given, as written; "" when none */
};

/* Reads curl's arguments as curl 7.88 does (short clusters, values attached or next, --no-,
 * "--"); 0 when curl may be given the token for plan->origin (every URL is that origin, none of
 * the options would send the request elsewhere), -1 with the reason in why[] otherwise. A URL
 * without a scheme is read as https, and must be given to curl so (plan->owned). latch's own
 * options (--no-browser, --timeout) written among curl's are refused with a word saying where
 * they go. Free with cli_curl_plan_free, whatever it returned. */
int cli_curl_read(int argc, char **argv, struct cli_curl_plan *plan, char *why, size_t cap);
void cli_curl_plan_free(struct cli_curl_plan *plan);

/* How many of the answers in curl's header dump (-D) are the gateway refusing the token: 401
 * with its challenge (WWW-Authenticate: Bearer …, error="login_required"). answer.c */
int cli_answer_refused(const char *dump, size_t n);

/* --- the handoff -------------------------------------------------------------------------- */

struct cli_handoff_opts {
    bool no_browser;
    int timeout_s;      /* overall */
    bool quiet;
};

/* The login redirector (loopback.c): listens on 127.0.0.1:0 and sends the first browser of
 * this user that asks for "/" on to `target`; *url gets "http://127.0.0.1:PORT/" (nothing secret
 * in it, for the browser's command line). NULL when it cannot run (then print the target). */
struct cli_loopback;
struct cli_loopback *cli_loopback_start(const char *target, char *url, size_t cap);
void cli_loopback_stop(struct cli_loopback *lb);
/* The owner (uid) of the socket at `peer` connected to `us`, from /proc/net/tcp and tcp6; -1
 * when it cannot be found. */
struct sockaddr_in;
long cli_peer_uid(const struct sockaddr_in *peer, const struct sockaddr_in *us);

#define CLI_HANDOFF_URL_MAX 8192
/* Logs in through the browser for the app at `host` and `path` (its match form), whose AUD is
 * `aud`, at `auth_url`; returns the app and org tokens (malloc'd) or a LATCH_EXIT_* status. The
 * browser is said to have opened only when its launcher did not fail (handoff.c); otherwise
 * the URL to open is printed. */
int cli_handoff(const char *auth_url, const char *host, const char *path, const char *aud,
                const struct cli_handoff_opts *o, char **app_token, char **org_token);

/* --- a token for an app (access.c) --------------------------------------------------------- */

/* latch's global options (before the verb, or after login/token/logout/apps' URL). */
struct cli_opts {
    struct cli_handoff_opts handoff; /* --no-browser (or LATCH_NO_BROWSER), --timeout */
    bool timeout_set;                /* --timeout was given */
};

/* A stored token is used while more than this many seconds from expiring. */
#define CLI_FRESH_MARGIN_S 60

/* A valid app token for `url` (https://host, http://host:port, or a bare host meaning https;
 * its path names the app on hosts with several): stored, else by org token exchange, else the
 * browser handoff. With LATCH_CLIENT_ID/SECRET set, *token is NULL and *svc_headers holds the
 * two service-token header lines to send ("CF-Access-Client-Id: …\r\nCF-Access-Client-Secret:
 * …\r\n"), and no browser is ever opened. *origin: "scheme://host:port" (malloc'd). 0, or a
 * LATCH_EXIT_* status with the message already printed to stderr (prefixed "latch VERB:" where
 * the URL is at fault). */
int cli_access(const char *verb, const char *url, const struct cli_opts *o, char **token, char **svc_headers,
               char **origin);
/* Forgets a token the gateway refused (401) for the app at `url`, so that the next cli_access
 * logs in again; a token stored meanwhile by another latch stays. */
void cli_access_forget(const char *url, const char *token);

/* --- short-lived SSH certificates (sshcert.c) ---------------------------------------------- */

/* latch ssh-gen --hostname HOST [--refresh]: the Ed25519 key pair for HOST's gateway in the
 * token store (made once, 0600) and a certificate for it from cert_sign (with `refresh`, kept
 * when it is valid for more than a minute yet); prints both paths. A LATCH_EXIT_* status. */
int cli_ssh_gen(const char *host, const struct cli_opts *o, bool refresh);
/* latch ssh-config --hostname HOST [--short-lived-cert]: prints the ~/.ssh/config block. */
int cli_ssh_config(const char *host, bool short_lived);
/* What `latch ssh` runs before connecting: renews the certificate of a latch-made key for `url`
 * when it expires within a minute. 0 when there is no such key, or the certificate is fresh or
 * was renewed; else a LATCH_EXIT_* status, the message printed. */
int cli_ssh_cert_refresh(const char *url, const struct cli_opts *o);

/* A URL of latch's command line: its origin and the path the gateway will match. */
struct cli_target {
    const char *url; /* with its scheme (https:// put in front when it had none) */
    char urlbuf[CLI_HANDOFF_URL_MAX];
    struct cli_origin origin;
    char *path;      /* match form (cli_path_match), malloc'd */
};

/* What the app host says of a path (GET /cdn-cgi/access/app?path=…). */
struct cli_app_info {
    struct cli_origin auth;     /* the auth URL's origin */
    char *auth_url, *auth_domain, *aud, *app;
    char *token_status;         /* with a token sent: "ok", or why it would be refused */
    char *email;                /* with a good token: whose */
    json_t *routes;             /* with a good token: the host's patterns */
    char *pair;                 /* with a good token, on https: its cookie's pair */
};

void cli_target_free(struct cli_target *t);
/* Reads a URL given to latch VERB `cmd`: its origin (which a token may reach) and its path.
 * A URL over plain http to another machine is refused. */
int cli_target_read(const char *cmd, const char *arg, struct cli_target *t);
void cli_app_info_free(struct cli_app_info *a);
/* The app at the target's path, where to log in, and, with `token`, what the gateway thinks of
 * it: GET /cdn-cgi/access/app?path=… on the app's own origin. */
int cli_discover(const struct cli_target *t, const char *token, struct cli_app_info *a);
/* Why the gateway would refuse a token, in words. */
const char *cli_refusal_words(const char *status);
/* LATCH_CLIENT_ID and LATCH_CLIENT_SECRET, when both are set. */
bool cli_service_creds(const char **id, const char **secret);
/* The stored token for the target's app, when the stored patterns say which app its path is
 * (malloc'd); no network. */
char *cli_stored_token(const char *dir, const struct cli_target *t);
/* The name of the target's app, as stored with its token (malloc'd); NULL when unknown. */
char *cli_stored_app_name(const struct cli_target *t);
/* Drops the stored token of one app, and the host's patterns when `patterns`. */
void cli_forget_token(const char *dir, const struct cli_origin *o, const char *aud, bool patterns);
/* A token for the target's app (cli_access without the service token); *checked: whether the
 * gateway confirmed it just now, *email (when not NULL) then whose it is. */
int cli_ensure_token(const struct cli_target *t, const struct cli_opts *o, char **token, bool *checked,
                     char **email);
/* A fresh org token for the gateway of the target (stored, or by a browser login). */
int cli_ensure_org(const struct cli_target *t, const struct cli_opts *o, const struct cli_app_info *a, char **org);

/* --- tunnels (tunnel.c): latch tcp, latch ssh ------------------------------------------------ */

/* A WebSocket that cannot be opened is retried this long without --timeout. */
#define CLI_TUNNEL_RETRY_S 30
/* stdin/stdout carried to the TCP app at `url` (as cli_access reads it), until both directions
 * end; a WebSocket that cannot be opened (connection refused, 502/503/504) is retried with
 * backoff for retry_s seconds. A LATCH_EXIT_* status, the message printed. */
int cli_tunnel_stdio(const char *verb, const char *url, const struct cli_opts *o, int retry_s);
/* A listener on `listen_spec` (a loopback address and port): each accepted connection gets its
 * own tunnel (its own process); runs until killed, or returns a LATCH_EXIT_* status when it
 * cannot start. */
int cli_tunnel_listen(const char *verb, const char *url, const char *listen_spec, const struct cli_opts *o,
                      int retry_s);

#endif
