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
/* "host[:port]" lowercased and checked (letters, digits, '.', '-', one ':port'); -1 otherwise. */
int cli_host_key(const char *host, char *out, size_t cap);
/* Reads a stored record ("<key>.json"); NULL when none. */
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

/* "https://host:port/path" -> scheme "https", host "host:port" (lowercased). -1 if not a URL. */
int cli_url_split(const char *url, char *scheme, size_t scap, char *host, size_t hcap);

/* --- the handoff -------------------------------------------------------------------------- */

struct cli_handoff_opts {
    bool no_browser;
    int timeout_s;      /* overall */
    bool quiet;
};

/* Logs in through the browser for app `host` at `auth_url`; returns the app and org tokens
 * (malloc'd) or an enum cli_exit. */
int cli_handoff(const char *auth_url, const char *host, const char *aud, const struct cli_handoff_opts *o,
                char **app_token, char **org_token);

#endif
