/* Internals shared by the configuration loader's files (config_*.c): the YAML tree built from
 * libyaml events, the error collector, and the value checkers. Not for use outside src/config/. */
#ifndef LATCH_CONFIG_INT_H
#define LATCH_CONFIG_INT_H

#include "config/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds on hostile input: bytes of YAML, nodes after alias expansion, nesting, error lines. */
#define CONFIG__MAX_INPUT (4u << 20)
#define CONFIG__MAX_NODES 200000u
#define CONFIG__MAX_DEPTH 64u
#define CONFIG__MAX_ERRORS 200u

enum config__kind { CONFIG__SCALAR, CONFIG__MAP, CONFIG__SEQ };

/* One YAML node. An alias is a copy of its anchor's node (same text and children) that keeps
 * the alias's own position; `owned` tells which copy frees the text. */
struct config__node {
    enum config__kind kind;
    struct config_pos pos;
    char *text;      /* scalar text, NUL-terminated (may also hold NULs: see len) */
    size_t len;
    bool implicit;   /* plain and untagged: "", "~", "null" mean null; true/false are booleans */
    bool owned;
    size_t first, n; /* children: tree.kids[first .. first + n); a map holds key, value pairs */
    size_t size;     /* nodes below and including this one, aliases expanded */
};

struct config__tree {
    struct config__node *nodes;
    size_t nnodes, capnodes;
    size_t *kids;
    size_t nkids, capkids;
};

struct config__err {
    struct config_pos pos;
    size_t seq; /* order of discovery, to keep the sort stable */
    char *msg;
};

/* Everything one load needs: no global state. */
struct config__ctx {
    const char *name; /* file name printed in errors */
    struct config__tree tree;
    struct config__err *errs;
    size_t nerrs, caperrs;
    size_t dropped; /* errors past CONFIG__MAX_ERRORS */
    bool oom;
};

/* Records "message" at pos (1-based). Never fails visibly: out of memory sets ctx->oom. */
void config__error(struct config__ctx *c, struct config_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sorts the collected errors by position and appends them to `out` as "FILE:LINE:COL: msg". */
void config__errors_flush(struct config__ctx *c, struct config_errors *out);
void config__ctx_free(struct config__ctx *c);

/* Builds c->tree from the YAML text. Returns the root node, or NULL after recording the syntax
 * error (or an empty/multi-document stream, an unknown alias, too many nodes). */
const struct config__node *config__tree_load(struct config__ctx *c, const char *data,
                                             size_t len);

static inline const struct config__node *config__kid(const struct config__ctx *c,
                                                     const struct config__node *n, size_t i)
{
    return &c->tree.nodes[c->tree.kids[n->first + i]];
}

/* True for a plain "", "~", "null", "Null", "NULL". */
bool config__is_null(const struct config__node *n);

/* Value checkers: each returns NULL when `s` is acceptable, else a static reason. */
const char *config__check_address(const char *s, struct sockaddr_storage *ss, socklen_t *len);
/* A decimal port 1..65535 of exactly n bytes (no sign, no spaces); -1 otherwise. */
int config__port(const char *s, size_t n);
const char *config__check_hostport(const char *s);
const char *config__check_dns_name(const char *s);
const char *config__check_hex64(const char *s);
const char *config__parse_rfc3339(const char *s, time_t *out);

/* A parsed absolute URL, scheme://host[:port][/path]: no user info, query or fragment. */
struct config__url {
    char scheme[8];  /* lowercase */
    char host[256];  /* lowercase, IPv6 without brackets */
    bool v6;         /* host was a bracketed IPv6 literal */
    bool has_port;
    uint16_t port;
    const char *path; /* points into the parsed string: "" or starting with '/' */
};
const char *config__parse_url(const char *s, struct config__url *u);

void config__lower(char *s);

/* ---- typed access to the tree (config_node.c): each reports what it expected at the value ---- */

/* "a mapping", "a list", "null" or "a string": what a value turned out to be. */
const char *config__kind_name(const struct config__node *n);

/* Looks up the keys of mapping `map` (`keys` is NULL-terminated): vals[i] = the value of
 * keys[i] or NULL. Unknown keys ("unknown key 'foo' in app"), duplicate keys and non-string
 * keys are errors at the key. False (with an error) when `map` is not a mapping. */
bool config__map(struct config__ctx *c, const struct config__node *map, const char *what,
                 const char *const *keys, const struct config__node **vals);

/* Reports "unknown KIND 'typed' in WHAT (did you mean 'x'?); valid KINDs: a, b, c" at pos, the
 * suggestion when one of words[0..n) is a likely typo of `typed` (core/suggest.h). */
void config__unknown(struct config__ctx *c, struct config_pos pos, const char *kind,
                     const char *typed, const char *what, const char *const *words, size_t n);

/* " (did you mean 'x'?)" when one of words[0..n) is a likely typo of `typed`, else "". */
#define CONFIG__MEAN_MAX 96
const char *config__mean(char out[CONFIG__MEAN_MAX], const char *typed, const char *const *words,
                         size_t n);

/* Reports "missing required key 'key' in what" at the mapping when val is NULL. */
bool config__required(struct config__ctx *c, const struct config__node *map,
                      const struct config__node *val, const char *key, const char *what);

/* A non-empty string without NUL or control characters, copied; NULL (after an error unless
 * n is NULL) otherwise. */
char *config__string(struct config__ctx *c, const struct config__node *n, const char *key);

/* True when n is a list; otherwise reports "'key' must be a list of <items>, got ...". */
bool config__list(struct config__ctx *c, const struct config__node *n, const char *key,
                  const char *items);

bool config__bool(struct config__ctx *c, const struct config__node *n, const char *key,
                  bool *out);

/* A duration in ms, > 0 and <= max_ms; false after an error. */
bool config__duration_ms(struct config__ctx *c, const struct config__node *n, const char *key,
                         int64_t max_ms, int64_t *out);
/* A duration (config_parse_duration_ms) of whole seconds, > 0 and at most 3650 days. */
bool config__duration_s(struct config__ctx *c, const struct config__node *n, const char *key,
                        int64_t *out);

/* calloc/strdup that record "out of memory" instead of returning it to every caller. */
void *config__calloc(struct config__ctx *c, size_t n, size_t size);
char *config__strdup(struct config__ctx *c, const char *s);

/* Gateway limits (config_gateway.c). */
void config__max_connections_per_client(struct config__ctx *c, const struct config__node *n,
                                        struct config *cfg);
void config__keep_client_headers(struct config__ctx *c, const struct config__node *n,
                                 struct app *a);
/* A listener's `http2:` (n NULL: its default, h2 by ALPN on TLS, off on cleartext), and the
 * top-level `http2:` settings. */
void config__listener_http2(struct config__ctx *c, const struct config__node *n, struct listener_cfg *l,
                            bool tls);
void config__http2(struct config__ctx *c, const struct config__node *n, struct config *cfg);
/* After the listeners. */
void config__hsts(struct config__ctx *c, const struct config__node *n, struct config *cfg);

/* What the gateway's pages show (config_pages.c): an app's display_name (n NULL: its first
 * domain; after the domains), and `branding:`, whose logo file is read now. */
void config__display_name(struct config__ctx *c, const struct config__node *n, struct app *a);
void config__branding(struct config__ctx *c, const struct config__node *n, struct config *cfg);
void config__branding_free(struct branding *b);

/* apps: (config_apps.c). Needs cfg->idps and cfg->service_tokens already loaded. */
void config__apps_load(struct config__ctx *c, const struct config__node *apps,
                       struct config *cfg);
void config__app_free(struct app *a);

/* `ssh:` of an app and of a service token (config_ssh.c). */
void config__app_ssh(struct config__ctx *c, const struct config__node *n, struct app *a);
void config__app_ssh_free(struct app_ssh *s);
void config__token_ssh(struct config__ctx *c, const struct config__node *n,
                       struct service_token_cfg *t);
void config__token_ssh_free(struct service_token_cfg *t);

#endif
