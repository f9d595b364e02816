/* Types of the parsed configuration (SPEC.md §2). Types only: see config.h for the functions.
 * A struct config is immutable once loaded; a reload builds a new one. Every string is owned by
 * the config and freed by config_free(). Each element remembers where it was written (line/col)
 * so that later checks can still point at the file. */
#ifndef LATCH_CONFIG_T_H
#define LATCH_CONFIG_T_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

struct config_pos {
    int line, col; /* 1-based, as printed in FILE:LINE:COL */
};

/* An address block for `ip:` selectors and `trusted_proxies`. IPv4 is stored as an IPv4-mapped
 * IPv6 address (::ffff:a.b.c.d) with prefix + 96, so one comparison serves both families. */
struct cidr {
    uint8_t addr[16];
    uint8_t prefix; /* 0..128 */
};

enum selector_kind {
    SEL_EVERYONE,
    SEL_EMAIL,
    SEL_EMAIL_DOMAIN,
    SEL_EMAIL_LIST,
    SEL_IP,
    SEL_GROUP,
    SEL_IDP,
    SEL_AUTH_METHOD,
    SEL_SERVICE_TOKEN,
    SEL_ANY_VALID_SERVICE_TOKEN,
    SEL_CERTIFICATE,
    SEL_COMMON_NAME,
};

struct selector {
    enum selector_kind kind;
    char *value;   /* email, domain (lowercase), group, idp, amr, service token name, CN */
    char **list;   /* email_list (lowercase) */
    size_t nlist;
    struct cidr cidr; /* SEL_IP */
    struct config_pos pos;
};

enum policy_decision {
    DECISION_ALLOW,
    DECISION_BLOCK,
    DECISION_BYPASS,
    DECISION_SERVICE_AUTH,
};

struct policy {
    char *name;
    enum policy_decision decision;
    struct selector *include; size_t ninclude; /* OR; at least one */
    struct selector *require; size_t nrequire; /* AND */
    struct selector *exclude; size_t nexclude; /* NOT */
    int64_t session_duration_s;                /* 0: inherit the app's */
    struct config_pos pos;
};

enum origin_kind {
    ORIGIN_HTTP,  /* http:// and h2c:// (cleartext) */
    ORIGIN_HTTPS, /* https:// and h2:// (TLS, verified) */
    ORIGIN_ECHO, /* built in: answers with the request it got, as JSON */
    ORIGIN_TCP,  /* tcp://HOST:PORT: TCP bytes carried in WebSocket frames (proxy/tunnel.c) */
};

struct origin {
    enum origin_kind kind;
    char *url;        /* as written */
    char *host;       /* hostname or IP literal (no brackets) */
    uint16_t port;
    char *hostport;   /* "host:port" as sent in Host to the origin when preserve_host is false */
    char *base;       /* path prefix without trailing slash, "" when none */
    char *ca_file;    /* origin_tls.ca_file: NULL = system store */
    struct config_pos ca_file_pos;
    bool tls_verify;  /* origin_tls.verify: default true */
    bool preserve_host; /* send the client's Host (default true, like Cloudflare) */
    bool h2;          /* h2c:// or h2://: HTTP/2 to the origin (prior knowledge, or ALPN h2) */
};

/* An app's short-lived SSH certificates (`ssh:`): whom cert_sign signs for, as which login
 * names (principals), for how long. Templates ("{email}", "{email_local}", "{service_token}",
 * possibly inside a longer name) and literal names; an expansion that is not a safe name is
 * dropped at signing (core/sshname.h). */
struct ssh_principal_map {
    char *key;                                 /* a group name, or a lowercase e-mail address */
    char **principals; size_t nprincipals;
};

struct app_ssh {
    char **principals; size_t nprincipals;     /* for every person the policy admits */
    struct ssh_principal_map *by_group; size_t nby_group;
    struct ssh_principal_map *by_email; size_t nby_email;
    int64_t cert_duration_s;                   /* default APP_SSH_CERT_DEFAULT_S, at most 1 h */
    bool permit_pty, permit_port_forwarding;   /* both true by default */
    struct config_pos pos;
};
#define APP_SSH_CERT_DEFAULT_S 300
#define APP_SSH_CERT_MAX_S 3600

struct app {
    char *name;                                /* internal: logs, metrics, policy-test */
    char *display_name;                        /* what pages call it: `display_name`, else its
                                                  first domain (never NULL once loaded) */
    char **domains; size_t ndomains;           /* "host[:port][/path]" patterns */
    struct config_pos *domain_pos;
    struct origin origin;
    int64_t session_duration_s;                /* 0: the global session_duration */
    struct policy *policies; size_t npolicies;
    char **allowed_idps; size_t nallowed_idps; /* empty: all */
    const char *subaddress_separators;         /* the config's (not owned); NULL: "+" */
    char *aud;                                 /* 64 hex, NULL: derived later from name + secret */
    char *service_token_header;                /* read_service_tokens_from_header: lowercase name
                                                  of a header holding {"cf-access-client-id",
                                                  "cf-access-client-secret"} as JSON */
    char **keep_client_headers;                /* lowercase names of spoofable fields (X-Real-IP…)
                                                  this app's origin gets from clients as sent */
    size_t nkeep_client_headers;
    struct app_ssh *ssh;                       /* NULL: cert_sign refuses (no `ssh:`) */
    struct config_pos pos;
};

struct tls_cert {
    char *cert; /* PEM chain file */
    char *key;  /* PEM key file */
    struct config_pos cert_pos, key_pos;
};

struct listener_cfg {
    char *address;            /* as written: "127.0.0.1:8080", "[::1]:443", "0.0.0.0:443" */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct tls_cert *certs; size_t ncerts;  /* 0: plain HTTP; first is the default for SNI */
    char *client_ca;          /* tls.client_ca: verify client certificates (mTLS) when set */
    struct config_pos client_ca_pos;
    uint16_t port;            /* the port it listens on */
    /* Where browsers reach it (`public: {scheme, port}`): itself by default; behind a load
     * balancer or a TLS terminator, what the browser's address bar says. The gateway sends a
     * browser (grants, redirects, login links) only to these schemes and ports. */
    bool public_https;
    uint16_t public_port;
    bool public_set;          /* `public:` was written (else the defaults above) */
    uint8_t http2;            /* enum listener_http2 */
    struct config_pos pos;
};

/* HTTP/2 on a listener (`http2:`): by ALPN on TLS listeners (the default there), with prior
 * knowledge (h2c, the client preface) on cleartext ones when configured. */
enum listener_http2 { LISTENER_H2_OFF, LISTENER_H2_ALPN, LISTENER_H2_PRIOR };

/* `http2:` at the top: the SETTINGS every HTTP/2 connection announces, and its bounds. */
struct http2_cfg {
    unsigned max_concurrent_streams;   /* default 100 */
    unsigned initial_window_size;      /* a stream's receive window, default 65535 */
    unsigned max_header_list_size;     /* decoded header bytes per request, default 32768 */
};

enum idp_type { IDP_ONETIMEPIN, IDP_OIDC };

/* What an OpenID Connect provider's `email_verified` claim must say (key `email_verified`). */
enum idp_email_verified {
    IDP_VERIFIED_REQUIRED, /* JSON true; absent or anything else refuses (the default) */
    IDP_VERIFIED_STRING,   /* JSON true or exactly the string "true"; absent refuses */
    IDP_VERIFIED_OPTIONAL, /* absent accepted (providers that never send it); present: true */
};

struct idp {
    char *name;
    enum idp_type type;
    /* onetimepin */
    char *mail;               /* "console", smtp://…, smtps://… */
    char *from;
    /* oidc */
    char *issuer;
    char *client_id;
    char *client_secret_file;
    struct config_pos client_secret_file_pos;
    char **scopes; size_t nscopes;
    char *groups_claim;       /* default "groups" */
    enum idp_email_verified email_verified;
    char *callback_path;      /* the redirect URI's path: "/cdn-cgi/access/callback", or
                                 ".../callback/<name>" when several oidc providers are set */
    struct config_pos pos;
};

struct service_token_cfg {
    char *name;
    char *client_id;
    char *secret_sha256;      /* 64 lowercase hex */
    time_t expires;           /* 0: never */
    char **ssh_principals;    /* `ssh: {principals: [...]}`: its certificates' login names */
    size_t nssh_principals;
    struct config_pos pos;
};

enum log_format { LOG_FORMAT_JSON };

struct log_cfg {
    char *requests;           /* "stdout", "stderr", "off" or a file path */
    char *auth;
    enum log_format format;
};

/* Timeouts in milliseconds (section `timeouts:`; SPEC.md §8 "each configurable"). */
struct timeouts_cfg {
    uint32_t header_ms;          /* whole request head must arrive within this (slowloris) */
    uint32_t idle_ms;            /* keep-alive between requests */
    uint32_t client_ms;          /* no progress reading a body from / writing to the client */
    uint32_t origin_connect_ms;
    uint32_t origin_response_ms; /* no byte from the origin for this long: 504 (or cut) */
    uint32_t drain_ms;           /* SIGTERM: longest wait for in-flight requests */
    uint32_t tunnel_idle_ms;     /* a tcp:// app's tunnel with no byte either way: closed */
};

/* Where the top-level keys that later checks point at were written (0:0 when absent): the
 * files and directories the daemon opens (runtime.h) and the auth domain. */
struct config_where {
    struct config_pos state_dir, store_key_file, store_password_file, auth_domain, log_requests,
        log_auth;
};

/* `branding:` — how the gateway's own pages present the organization (config_pages.c). */
struct branding {
    char *name;       /* shown beside the logo and in page titles; NULL: "latch access" */
    char accent[8];   /* "#rrggbb" (a "#rgb" is widened); "" : the default blue */
    char *logo;       /* the logo file's content as a data: URI (PNG, JPEG or SVG), or NULL */
};

struct config {
    char *path;
    struct config_where where;
    struct listener_cfg *listeners; size_t nlisteners;
    unsigned workers;              /* 0 = auto: one per core */
    char *state_dir;
    char *store;                   /* "embedded" or "redis://…" */
    char *store_key_file;          /* the key that seals values kept in Redis (store/seal.h) */
    char *store_password_file;     /* Redis AUTH (requirepass), or NULL */
    char *metrics_listen;          /* admin.listen; NULL: no metrics listener */
    struct sockaddr_storage metrics_addr; /* metrics_listen parsed: loopback or one address */
    socklen_t metrics_addrlen;
    char *auth_domain;             /* host[:port], lowercase */
    struct cidr *trusted_proxies; size_t ntrusted_proxies;
    char *subaddress_separators;   /* what starts a sub-address tag (core/email.h); NULL: "+" */
    int64_t session_duration_s;
    int64_t key_rotation_s;        /* keys.rotation, default 6 weeks */
    int64_t key_overlap_s;         /* keys.overlap, default 7 days */
    struct log_cfg log;
    struct idp *idps; size_t nidps;
    struct service_token_cfg *service_tokens; size_t nservice_tokens;
    struct app *apps; size_t napps;
    struct timeouts_cfg timeouts;
    unsigned max_connections_per_client; /* open at once per client address (IPv6: /64), except
                                            trusted_proxies; 0: no cap */
    char *hsts_header;             /* hsts: "Strict-Transport-Security: …\r\n" for answers on
                                      listeners reached over https; NULL: none of ours */
    struct branding branding;
    struct http2_cfg http2;
};

#endif
