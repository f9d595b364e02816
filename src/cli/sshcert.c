/* Short-lived SSH certificates on the command line: `latch ssh-gen` (an Ed25519 key pair in the
 * token store, made once, and a certificate for it from the app's cert_sign), `latch ssh-config`
 * (the ~/.ssh/config block to paste) and cli_ssh_cert_refresh (a certificate renewed when it
 * expires within a minute). The key is written by latch itself in OpenSSH's own private key
 * format (token/sshcert.c), so nothing depends on ssh-keygen being installed. Files per gateway
 * host, in the token store ($XDG_CONFIG_HOME/latch, 0700): ssh-HOST (the private key, 0600),
 * ssh-HOST.pub and ssh-HOST-cert.pub, as ssh expects them side by side; several latch processes
 * at once (ssh connections in parallel, each running ssh-gen from its Match exec) take turns on
 * ssh-HOST.lock, so one key pair is made and each certificate matches it. */
#include "cli/cli.h"

#include "core/exitcode.h"
#include "token/sshcert.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CLI_SSH_RENEW_MARGIN_S 60 /* a certificate this close to its end is renewed */
#define CLI_SSH_HTTP_TIMEOUT_S 30

struct cli_ssh_files {
    char key[PATH_MAX], pub[PATH_MAX + 8], cert[PATH_MAX + 16];
    char dir[PATH_MAX], lock[300]; /* the store, and the lock's name in it ("ssh-HOST") */
    char url[CLI_HANDOFF_URL_MAX]; /* with its scheme */
    struct cli_origin origin;
};

/* The files of the gateway host that `arg` (a host or URL) names. */
static int cli_ssh__files(const char *verb, const char *arg, struct cli_ssh_files *f)
{
    char why[512];
    const char *u = cli_url_scheme(arg, f->url, sizeof f->url);
    if (!u || cli_origin_parse(u, &f->origin, why, sizeof why) != 0) {
        fprintf(stderr, "latch %s: '%s' is not a host name or URL%s%s\n", verb, arg, u ? ": " : "", u ? why : "");
        return LATCH_EXIT_USAGE;
    }
    if (u != f->url)
        snprintf(f->url, sizeof f->url, "%s", u);
    char *dir = cli_store_dir();
    if (!dir)
        return LATCH_EXIT_FAILED;
    int n = snprintf(f->key, sizeof f->key, "%s/ssh-%s", dir, f->origin.key);
    snprintf(f->dir, sizeof f->dir, "%s", dir);
    snprintf(f->lock, sizeof f->lock, "ssh-%s", f->origin.key);
    snprintf(f->pub, sizeof f->pub, "%s.pub", f->key);
    snprintf(f->cert, sizeof f->cert, "%s-cert.pub", f->key);
    free(dir);
    if (n < 0 || (size_t)n + 16 >= sizeof f->key) {
        fprintf(stderr, "latch %s: the token store's path is too long\n", verb);
        return LATCH_EXIT_FAILED;
    }
    return LATCH_EXIT_OK;
}

/* Writes `text` to path through a temporary file (0600), replacing it atomically. */
static int cli_ssh__write(const char *path, const char *text)
{
    char tmp[PATH_MAX + 16];
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    size_t n = strlen(text);
    bool ok = write(fd, text, n) == (ssize_t)n && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* A file's first line (at most 16 KiB), malloc'd; NULL when there is none. */
static char *cli_ssh__read_line(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = malloc(16384);
    if (buf && !fgets(buf, 16384, f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        buf[strcspn(buf, "\r\n")] = '\0';
    return buf;
}

/* The key pair, made when there is none (the private key 0600, never replaced). */
static int cli_ssh__key(const struct cli_ssh_files *f, char **pub_line)
{
    *pub_line = NULL;
    if (access(f->key, F_OK) == 0) {
        *pub_line = cli_ssh__read_line(f->pub);
        if (!*pub_line) {
            fprintf(stderr, "latch ssh-gen: %s exists but %s cannot be read: remove both to make a new "
                            "pair\n", f->key, f->pub);
            return LATCH_EXIT_FAILED;
        }
        return LATCH_EXIT_OK;
    }
    char comment[300];
    snprintf(comment, sizeof comment, "latch:%s", f->origin.key);
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    char *priv = k ? ssh_ed25519_private_file(k, comment) : NULL;
    *pub_line = k ? ssh_ed25519_pubkey_line(k, comment) : NULL;
    EVP_PKEY_free(k);
    char line[1024];
    snprintf(line, sizeof line, "%s\n", *pub_line ? *pub_line : "");
    int st = LATCH_EXIT_OK;
    if (!priv || !*pub_line || cli_ssh__write(f->pub, line) != 0 || cli_ssh__write(f->key, priv) != 0) {
        fprintf(stderr, "latch ssh-gen: cannot write the key pair %s: %s\n", f->key, strerror(errno));
        st = LATCH_EXIT_FAILED;
    }
    if (priv)
        sodium_memzero(priv, strlen(priv));
    free(priv);
    return st;
}

/* Whether the certificate file holds one valid for more than the margin. */
static bool cli_ssh__cert_fresh(const char *path)
{
    char *line = cli_ssh__read_line(path);
    uint64_t before = 0;
    bool fresh = line && ssh_cert_valid_before(line, strlen(line), &before) == 0 &&
                 before > (uint64_t)time(NULL) + CLI_SSH_RENEW_MARGIN_S;
    free(line);
    return fresh;
}

/* Header lines for curl: the token's, or the service token's two. */
static int cli_ssh__headers(const char *token, char *svc, const char *hdrs[4], char **tok_line)
{
    int n = 0;
    *tok_line = NULL;
    if (token) {
        if (asprintf(tok_line, "cf-access-token: %s", token) < 0)
            return -1;
        hdrs[n++] = *tok_line;
    } else if (svc) {
        for (char *p = svc; *p && n < 2;) { /* "Id: …\r\nSecret: …\r\n", cut in place */
            char *e = strstr(p, "\r\n");
            if (!e)
                break;
            *e = '\0';
            hdrs[n++] = p;
            p = e + 2;
        }
    }
    hdrs[n++] = "Content-Type: application/json";
    hdrs[n] = NULL;
    return 0;
}

/* What the gateway's refusal means, for a person. */
static int cli_ssh__refused(const char *verb, const char *host, const struct cli_http *h)
{
    json_t *j = h->body ? json_loadb(h->body, h->len, 0, NULL) : NULL;
    const char *code = json_string_value(json_object_get(j, "error"));
    const char *msg = json_string_value(json_object_get(j, "message"));
    int st = LATCH_EXIT_REFUSED;
    if (h->status == 403 && code && !strcmp(code, "principal_not_allowed"))
        fprintf(stderr, "latch %s: certificate not allowed for this principal: %s gives you no SSH login name\n",
                verb, host);
    else if (h->status == 403)
        fprintf(stderr, "latch %s: refused by policy: %s\n", verb, msg ? msg : host);
    else if (h->status == 404 && code && !strcmp(code, "ssh_not_configured"))
        fprintf(stderr, "latch %s: %s does not issue SSH certificates (no ssh: in its configuration)\n", verb, host);
    else if (h->status == 401)
        fprintf(stderr, "latch %s: the gateway refused the credentials (run the command again to sign in)\n", verb);
    else {
        fprintf(stderr, "latch %s: the gateway answered %ld%s%s\n", verb, h->status, msg ? ": " : "", msg ? msg : "");
        st = LATCH_EXIT_FAILED;
    }
    json_decref(j);
    return st;
}

/* A certificate for the key, from cert_sign, into f->cert. */
static int cli_ssh__fetch(const char *verb, const struct cli_ssh_files *f, const char *pub_line,
                          const struct cli_opts *o)
{
    char *token = NULL, *svc = NULL, *origin = NULL, *tok_line = NULL, *body = NULL, *url = NULL;
    const char *hdrs[4];
    struct cli_http h = { 0 };
    json_t *req = json_pack("{s:s}", "public_key", pub_line);
    int st = cli_access(verb, f->url, o, &token, &svc, &origin);
    if (st != LATCH_EXIT_OK)
        goto out;
    st = LATCH_EXIT_FAILED;
    char err[512];
    if (!req || !(body = json_dumps(req, JSON_COMPACT)) || asprintf(&url, "%s/cdn-cgi/access/cert_sign", origin) < 0 ||
        cli_ssh__headers(token, svc, hdrs, &tok_line) != 0) {
        url = NULL;
        goto out;
    }
    if (!cli_http(url, body, hdrs, CLI_SSH_HTTP_TIMEOUT_S, &h, err, sizeof err)) {
        fprintf(stderr, "latch %s: %s: %s\n", verb, origin, err);
        goto out;
    }
    if (h.status != 200) {
        if (h.status == 401 && token)
            cli_access_forget(f->url, token);
        st = cli_ssh__refused(verb, f->origin.key, &h);
        goto out;
    }
    json_t *j = json_loadb(h.body, h.len, 0, NULL);
    const char *cert = json_string_value(json_object_get(j, "certificate"));
    uint64_t before;
    char *line = NULL;
    if (!cert || ssh_cert_valid_before(cert, strlen(cert), &before) != 0 || asprintf(&line, "%s\n", cert) < 0) {
        fprintf(stderr, "latch %s: the gateway's answer holds no certificate\n", verb);
    } else if (cli_ssh__write(f->cert, line) != 0) {
        fprintf(stderr, "latch %s: cannot write %s: %s\n", verb, f->cert, strerror(errno));
    } else {
        st = LATCH_EXIT_OK;
    }
    free(line);
    json_decref(j);
out:
    if (token)
        sodium_memzero(token, strlen(token));
    if (svc)
        sodium_memzero(svc, strlen(svc));
    if (tok_line)
        sodium_memzero(tok_line, strlen(tok_line));
    free(token);
    free(svc);
    free(tok_line);
    free(origin);
    free(body);
    free(url);
    json_decref(req);
    cli_http_free(&h);
    return st;
}

int cli_ssh_gen(const char *host, const struct cli_opts *o, bool refresh)
{
    struct cli_ssh_files f;
    char *pub = NULL;
    int st = cli_ssh__files("ssh-gen", host, &f);
    if (st != LATCH_EXIT_OK)
        return st;
    int lock = cli_store_lock(f.dir, f.lock);
    if (lock < 0) {
        fprintf(stderr, "latch ssh-gen: cannot lock %s/%s.lock\n", f.dir, f.lock);
        return LATCH_EXIT_FAILED;
    }
    st = cli_ssh__key(&f, &pub);
    if (st == LATCH_EXIT_OK && !(refresh && cli_ssh__cert_fresh(f.cert)))
        st = cli_ssh__fetch("ssh-gen", &f, pub, o);
    close(lock);
    if (st == LATCH_EXIT_OK)
        printf("private key: %s\ncertificate: %s\n", f.key, f.cert);
    free(pub);
    return st;
}

int cli_ssh_cert_refresh(const char *url, const struct cli_opts *o)
{
    struct cli_ssh_files f;
    int st = cli_ssh__files("ssh", url, &f);
    if (st != LATCH_EXIT_OK || access(f.key, F_OK) != 0 || cli_ssh__cert_fresh(f.cert))
        return st;
    int lock = cli_store_lock(f.dir, f.lock);
    if (lock < 0)
        return LATCH_EXIT_FAILED;
    char *pub = cli_ssh__cert_fresh(f.cert) ? NULL : cli_ssh__read_line(f.pub); /* renewed meanwhile? */
    st = pub ? cli_ssh__fetch("ssh", &f, pub, o) : LATCH_EXIT_OK;
    close(lock);
    free(pub);
    return st;
}

int cli_ssh_config(const char *host, bool short_lived)
{
    struct cli_ssh_files f;
    int st = cli_ssh__files("ssh-config", host, &f);
    if (st != LATCH_EXIT_OK)
        return st;
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0 || strchr(self, '"') || strchr(self, ' '))
        snprintf(self, sizeof self, "latch");
    else
        self[n] = '\0';
    /* a bare host name: ssh's %h; a URL (http://app.localhost:8080): itself, ssh knows no port */
    bool bare = !strstr(host, "://");
    const char *name = f.origin.host;
    if (short_lived) {
        /* ssh reads the certificate before a ProxyCommand gets going: renewed by Match exec */
        printf("Match host %s exec \"%s ssh-gen --hostname %s --refresh\"\n", name, self, bare ? "%h" : f.url);
        printf("    IdentityFile %s\n    CertificateFile %s\n", f.key, f.cert);
    }
    printf("Host %s\n    ProxyCommand %s ssh --hostname %s\n", name, self, bare ? "%h" : f.url);
    return LATCH_EXIT_OK;
}
