/* The command line client's pieces (SPEC.md §7): the token store, the gateway's HTTP
 * endpoints, and the encrypted browser handoff. `latch` (src/cmd/latch.c) is a thin main. */
#ifndef LATCH_CLI_H
#define LATCH_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Exit statuses of latch (documented in latch(1)). curl's own status passes through. */
enum cli_exit {
    CLI_OK = 0,
    CLI_ERROR = 1,      /* network, gateway or local error */
    CLI_USAGE = 2,
    CLI_NO_LOGIN = 3,   /* the browser login did not complete in time */
    CLI_REFUSED = 4,    /* the gateway refused: policy, revoked */
    CLI_NO_TOKEN = 5,   /* latch token: nothing stored */
};

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

/* --- tokens (read, not verified: the gateway verifies) --------------------------------- */

/* The payload of a JWT as JSON; NULL when malformed. */
json_t *cli_jwt_payload(const char *tok);
/* True when the token's exp is more than `margin` seconds away. */
bool cli_jwt_fresh(const char *tok, int64_t margin);
bool cli_jwt_has_aud(const char *tok, const char *aud);

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
    const char *urls[CLI_CURL_MAX_URLS]; /* every URL curl will fetch, in order */
    int nurls;
    struct cli_origin origin;  /* theirs, all the same: the token's */
    bool follow;               /* -L */
    bool info;                 /* curl only prints (help, version): no token needed */
    bool insecure;
    char proxy[64];            /* the first proxy option given, as written; "" when none */
};

/* Reads curl's arguments as curl 7.88 does (short clusters, values attached or next, --no-,
 * "--"); 0 when curl may be given the token for plan->origin (every URL is that origin, none of
 * the options would send the request elsewhere), -1 with the reason in why[] otherwise. */
int cli_curl_read(int argc, char **argv, struct cli_curl_plan *plan, char *why, size_t cap);

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

/* Logs in through the browser for app `host` at `auth_url`; returns the app and org tokens
 * (malloc'd) or an enum cli_exit. */
int cli_handoff(const char *auth_url, const char *host, const char *aud, const struct cli_handoff_opts *o,
                char **app_token, char **org_token);

#endif
