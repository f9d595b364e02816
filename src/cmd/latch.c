/* latch: the command line (SPEC.md §7). `latch curl URL …` runs curl with the token of the app
 * that URL's path reaches, logging in through the browser first when there is none; `login`,
 * `token`, `logout`, `apps`. A thin main over src/cli. */
#include "cli/cli.h"
#include "core/strbuf.h"
#include "core/version.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TIMEOUT_MAX_S 86400
#define DUMP_MAX (4 * 1024 * 1024) /* curl's header dump latch reads back */

static const char usage_text[] =
    "usage: latch [--no-browser] [--timeout SECONDS] COMMAND [ARGS…]\n"
    "\n"
    "  latch login URL          make sure a valid token for the app at URL is stored; log in if not\n"
    "  latch curl URL [ARGS…]   run curl with that app's token added (cf-access-token header); every\n"
    "                           other argument goes to curl untouched; every URL curl would fetch must\n"
    "                           be that origin and that app's, and options that would send the token\n"
    "                           elsewhere are refused (latch(1) lists them)\n"
    "  latch token URL          print the stored token (for -H \"cf-access-token: $(latch token URL)\")\n"
    "  latch logout [URL|--all] end the command line's session (your browser stays signed in) and\n"
    "                           forget its tokens; --all: every session of every gateway\n"
    "  latch apps URL           list the apps you may reach through the gateway of URL (--json: as JSON)\n"
    "  latch tcp --hostname HOST [--url 127.0.0.1:PORT]\n"
    "                           a TCP connection to the TCP app at HOST, carried in a WebSocket with\n"
    "                           your token: stdin/stdout, or each connection to that local address\n"
    "  latch ssh --hostname HOST for ssh's ProxyCommand (latch ssh --hostname %h); latch tcp --help\n"
    "  latch ssh-gen --hostname HOST [--refresh]\n"
    "                           an SSH key pair kept with the tokens and a short-lived certificate for\n"
    "                           it from the app at HOST; prints both paths (--refresh: keep a\n"
    "                           certificate valid for more than a minute yet)\n"
    "  latch ssh-config --hostname HOST [--short-lived-cert]\n"
    "                           print the ~/.ssh/config block for HOST (with the certificate's files)\n"
    "\n"
    "Options go before the command, or after it (and its URL) for login, token, logout, apps, tcp, ssh:\n"
    "  --no-browser      print the login URL to open on any device (also: LATCH_NO_BROWSER=1)\n"
    "  --timeout SECONDS give up a browser login after that long (default 300); tcp, ssh: retry a\n"
    "                    tunnel that cannot be opened that long (default 30)\n"
    "For curl, everything after `curl` is curl's: put latch's options before it.\n"
    "\n"
    "A URL without a scheme is https (latch login wiki.example.com). Tokens are per app: an app is\n"
    "a host, or a path on it (files.example.com/private/*), and a token goes only to its own app's\n"
    "paths on the origin (scheme, host, port) it was issued for; over plain http, only to this\n"
    "machine. Logging in opens a browser ($BROWSER, else xdg-open) on the gateway's confirmation\n"
    "page: check that it shows the code printed here. When no browser can be opened (or with\n"
    "--no-browser, or over ssh), the URL is printed to open on any device. Signing in once also\n"
    "buys the other apps of the same gateway, without a browser. Tokens are kept in\n"
    "$XDG_CONFIG_HOME/latch (else ~/.config/latch), readable by you only.\n"
    "Machines: with LATCH_CLIENT_ID and LATCH_CLIENT_SECRET set, latch curl, tcp and ssh send the\n"
    "service token headers and never open a browser.\n"
    "\n"
    "exit status: 0 ok; 1 error (network, gateway, local); 3 the browser login was not completed\n"
    "in time; 4 refused by the gateway (its policy, a revoked or ended session), and for latch\n"
    "curl: the gateway answered 401 to the token latch sent (the token is forgotten; run the\n"
    "command again) while curl itself succeeded; 5 no token stored (latch token); 64 usage, or a\n"
    "curl command line latch refuses (saying why), as for latchd. Otherwise latch curl exits with\n"
    "curl's own status. latch tcp and ssh: 6 not a TCP application; 7 the tunnel dropped mid-stream.\n";

struct opts {
    struct cli_opts cli; /* the global options */
    bool all;  /* logout --all */
    bool json; /* apps --json */
    bool refresh;          /* ssh-gen --refresh */
    bool short_lived_cert; /* ssh-config --short-lived-cert */
};


/* --- latch's own options, before the command or after it ------------------------------------ */

static int parse_timeout(const char *v, int *out)
{
    char *end = NULL;
    long n = v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || n < 1 || n > TIMEOUT_MAX_S) {
        fprintf(stderr, "latch: --timeout takes a number of seconds, 1 to %d (got '%s')\n", TIMEOUT_MAX_S,
                v ? v : "");
        return LATCH_EXIT_USAGE;
    }
    *out = (int)n;
    return LATCH_EXIT_OK;
}

/* One of latch's options at argv[*i] (advancing *i past its value): LATCH_EXIT_OK, 1 when argv[*i] is
 * not one, or LATCH_EXIT_USAGE. --help prints the usage and exits. */
static int latch_option(int argc, char **argv, int *i, struct opts *o)
{
    const char *a = argv[*i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
        fputs(usage_text, stdout);
        exit(0);
    }
    if (!strcmp(a, "--no-browser")) {
        o->cli.handoff.no_browser = true;
        return LATCH_EXIT_OK;
    }
    if (!strcmp(a, "--timeout") || !strncmp(a, "--timeout=", 10)) {
        o->cli.timeout_set = true;
        return parse_timeout(a[9] ? a + 10 : *i + 1 < argc ? argv[++*i] : NULL, &o->cli.handoff.timeout_s);
    }
    return 1;
}

/* The arguments after login/token/logout/apps: latch's options anywhere, and one URL (for
 * ssh-gen and ssh-config: given as --hostname HOST, as cloudflared's). */
static int verb_args(const char *cmd, int argc, char **argv, struct opts *o, const char **url)
{
    *url = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int rc = a[0] == '-' ? latch_option(argc, argv, &i, o) : 1;
        if (rc == LATCH_EXIT_OK)
            continue;
        if (rc != 1)
            return rc;
        if (!strcmp(cmd, "logout") && !strcmp(a, "--all")) {
            o->all = true;
        } else if (!strcmp(cmd, "apps") && !strcmp(a, "--json")) {
            o->json = true;
        } else if (!strcmp(cmd, "ssh-gen") && !strcmp(a, "--refresh")) {
            o->refresh = true;
        } else if (!strcmp(cmd, "ssh-config") && !strcmp(a, "--short-lived-cert")) {
            o->short_lived_cert = true;
        } else if (!strncmp(cmd, "ssh-", 4) && !strcmp(a, "--hostname") && i + 1 < argc && !*url) {
            *url = argv[++i];
        } else if (!strncmp(cmd, "ssh-", 4) && !strncmp(a, "--hostname=", 11) && !*url) {
            *url = a + 11;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "latch %s: unknown option '%s' (latch --help lists them)\n", cmd, a);
            return LATCH_EXIT_USAGE;
        } else if (*url) {
            fprintf(stderr, "latch %s: one URL only (got '%s' and '%s')\n", cmd, *url, a);
            return LATCH_EXIT_USAGE;
        } else {
            *url = a;
        }
    }
    return LATCH_EXIT_OK;
}

/* --- latch ssh-gen, ssh-config -------------------------------------------------------------- */

/* The verb's arguments, --hostname HOST required. */
static int ssh_verb_args(const char *cmd, int argc, char **argv, struct opts *o, const char **host)
{
    int st = verb_args(cmd, argc, argv, o, host);
    if (st == LATCH_EXIT_OK && !*host) {
        fprintf(stderr, "latch %s: --hostname HOST is required\n", cmd);
        st = LATCH_EXIT_USAGE;
    }
    return st;
}

static int cmd_ssh_gen(int argc, char **argv, struct opts *o)
{
    const char *host;
    int st = ssh_verb_args("ssh-gen", argc, argv, o, &host);
    return st != LATCH_EXIT_OK ? st : cli_ssh_gen(host, &o->cli, o->refresh);
}

static int cmd_ssh_config(int argc, char **argv, struct opts *o)
{
    const char *host;
    int st = ssh_verb_args("ssh-config", argc, argv, o, &host);
    return st != LATCH_EXIT_OK ? st : cli_ssh_config(host, o->short_lived_cert);
}

/* --- latch curl ------------------------------------------------------------------------------ */

/* A private, in-memory file for curl to read or write through /proc/self/fd (-H @file, -D
 * file): a secret never sits in curl's argv, where any local user could read it with ps. */
static int memfile(const char *text, char path[32])
{
    int fd = memfd_create("latch", 0); /* no CLOEXEC: curl inherits it */
    if (fd < 0 || (text && dprintf(fd, "%s", text) < 0) || lseek(fd, 0, SEEK_SET) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    snprintf(path, 32, "/proc/self/fd/%d", fd);
    return fd;
}

/* curl_easy_escape's encoding, which curl 7.88 gives a -T file's name when it ends the URL. */
static void escape_name(struct strbuf *sb, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
            c == '.' || c == '_' || c == '~')
            sb_add(sb, s, 1);
        else
            sb_addf(sb, "%%%02X", c);
    }
}

/* Every path curl will ask for, as the gateway matches them, in *paths (malloc'd, *n of them):
 * each URL's, or --request-target's instead; a -T file's name appended to a URL that ends in
 * '/'. What latch cannot know the path of is refused with the reason. */
static int curl_paths(const struct cli_curl_plan *plan, char ***paths, int *n, char *why, size_t cap)
{
    int max = plan->nurls * (plan->nuploads + 1), k = 0, rc = -1;
    char **out = calloc((size_t)max + 1, sizeof *out);
    if (!out) {
        snprintf(why, cap, "out of memory");
        return -1;
    }
    if (plan->request_target && plan->request_target[0] != '/') {
        snprintf(why, cap, "--request-target '%s': latch sends a token only with a path (/…) it can tell the "
                           "app of", plan->request_target);
        goto out;
    }
    for (int i = 0; i < plan->nurls; i++) {
        char *raw = plan->request_target ? strndup(plan->request_target, strcspn(plan->request_target, "?#"))
                                         : cli_url_raw_path(plan->urls[i]);
        if (!raw) {
            snprintf(why, cap, "out of memory");
            goto out;
        }
        if (!plan->globoff && !plan->request_target && cli_path_globs(raw)) {
            snprintf(why, cap, "curl would expand {…} or […] in %s into several paths, perhaps of several apps; "
                               "give the URLs one by one, or -g (--globoff) when the brackets are literal",
                     plan->urls[i]);
            free(raw);
            goto out;
        }
        size_t rl = strlen(raw);
        bool appended = false, bare = plan->nuploads == 0;
        for (int u = 0; u < plan->nuploads && !plan->request_target && rl && raw[rl - 1] == '/'; u++) {
            const char *f = plan->uploads[u];
            if (!strcmp(f, "-") || !strcmp(f, ".")) { /* stdin: nothing appended */
                bare = true;
                continue;
            }
            const char *name = f;
            for (const char *p = f; *p; p++)
                if (*p == '/' || *p == '\\')
                    name = p + 1;
            if (cli_path_globs(name)) {
                snprintf(why, cap, "curl would expand {…} or […] in the file name '%s' into several paths; "
                                   "upload the files one by one", f);
                free(raw);
                goto out;
            }
            struct strbuf sb;
            sb_init(&sb, CLI_HANDOFF_URL_MAX);
            sb_adds(&sb, raw);
            escape_name(&sb, name);
            int r = sb.overflow ? -1 : cli_path_match(sb.p, &out[k], why, cap);
            sb_free(&sb);
            if (r != 0) {
                free(raw);
                goto out;
            }
            k++;
            appended = true;
        }
        if (!appended || bare) {
            if (cli_path_match(raw, &out[k], why, cap) != 0) {
                free(raw);
                goto out;
            }
            k++;
        }
        free(raw);
    }
    rc = 0;
out:
    if (rc != 0) {
        for (int i = 0; i < k; i++)
            free(out[i]);
        free(out);
        out = NULL;
        k = 0;
    }
    *paths = out;
    *n = k;
    return rc;
}

/* Every path of the command is the token's app's, by the stored patterns of its origin. */
static int same_app(const struct cli_target *t, char **paths, int n, char *why, size_t cap)
{
    if (n <= 1)
        return 0;
    char *dir = cli_store_dir();
    json_t *rec = dir ? cli_record_read(dir, &t->origin) : NULL;
    json_t *routes = json_object_get(rec, "routes");
    const char *aud = cli_routes_aud(routes, t->origin.key, t->path);
    int rc = 0;
    for (int i = 1; i < n && rc == 0; i++) {
        const char *other = cli_routes_aud(routes, t->origin.key, paths[i]);
        if (strcmp(paths[i], t->path) && (!aud || !other || strcmp(aud, other))) {
            snprintf(why, cap, "curl would also ask for %s, which is %s than %s's: a token goes only to its "
                               "own app's paths; run latch curl once per app",
                     paths[i], other ? "another app" : "no app latch knows, or another one", t->path);
            rc = -1;
        }
    }
    json_decref(rec);
    free(dir);
    return rc;
}

static volatile sig_atomic_t curl_pid;

static void forward_signal(int sig)
{
    if (curl_pid > 0)
        kill((pid_t)curl_pid, sig);
}

/* Runs curl and waits for it: latch stays to read what the gateway answered. Ctrl-C and
 * Ctrl-\ reach curl from the terminal (latch ignores them meanwhile); SIGTERM and SIGHUP sent to
 * latch are passed on. Returns curl's wait status, or -1 when it could not be started. */
static int run_curl(char **args)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execvp("curl", args);
        fprintf(stderr, "latch: cannot run curl: %s (install curl)\n", strerror(errno));
        _exit(127);
    }
    curl_pid = pid;
    struct sigaction ign = { .sa_handler = SIG_IGN }, fwd = { .sa_handler = forward_signal }, old[4];
    sigemptyset(&ign.sa_mask);
    sigemptyset(&fwd.sa_mask);
    sigaction(SIGINT, &ign, &old[0]);
    sigaction(SIGQUIT, &ign, &old[1]);
    sigaction(SIGTERM, &fwd, &old[2]);
    sigaction(SIGHUP, &fwd, &old[3]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    curl_pid = 0;
    sigaction(SIGINT, &old[0], NULL);
    sigaction(SIGQUIT, &old[1], NULL);
    sigaction(SIGTERM, &old[2], NULL);
    sigaction(SIGHUP, &old[3], NULL);
    return status;
}

/* curl's exit status as latch's: its code, or, when a signal ended it, the same signal. */
static int curl_exit(int status)
{
    if (WIFSIGNALED(status)) {
        fflush(NULL);
        signal(WTERMSIG(status), SIG_DFL);
        raise(WTERMSIG(status));
        return 128 + WTERMSIG(status);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : LATCH_EXIT_FAILED;
}

/* The headers curl dumped: latch's own file, or the person's -D file when it is a regular file
 * (with -D - they went to the output, where latch does not look). */
static char *read_dump(int fd, const char *user, size_t *n)
{
    int own = -1;
    if (fd < 0 && user && strcmp(user, "-") && strcmp(user, "%"))
        fd = own = open(user, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    char *buf = NULL;
    *n = 0;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (buf = malloc(DUMP_MAX))) {
        ssize_t got;
        while (*n < DUMP_MAX && (got = pread(fd, buf + *n, DUMP_MAX - *n, (off_t)*n)) > 0)
            *n += (size_t)got;
    }
    if (own >= 0)
        close(own);
    return buf;
}

/* After a 401 of the gateway to the token latch sent: why, in words, and the token forgotten
 * (an out-of-date pattern list too), so that the next run logs in again. */
static void refused_after(const struct cli_target *t, const char *token)
{
    struct cli_app_info chk;
    char *dir = cli_store_dir(), *aud = cli_jwt_aud(token);
    if (cli_discover(t, token, &chk) != LATCH_EXIT_OK) {
        fprintf(stderr, "latch: the gateway refused the token latch sent for %s (401)\n", t->url);
    } else if (chk.token_status && !strcmp(chk.token_status, "ok")) {
        fprintf(stderr, "latch: the gateway refused the token latch sent for one of the requests (401), though "
                        "it admits it at %s: did a redirect (-L) lead to another app's path?\n", t->url);
    } else {
        bool moved = chk.token_status && !strcmp(chk.token_status, "bad_audience");
        fprintf(stderr, "latch: the gateway refused the token latch sent for %s (401: %s); latch forgot it: run "
                        "the command again to log in (or: latch login %s)\n", t->url,
                cli_refusal_words(chk.token_status), t->url);
        if (dir && aud)
            cli_forget_token(dir, &t->origin, aud, moved);
    }
    cli_app_info_free(&chk);
    free(aud);
    free(dir);
}

/* The header line that carries a person's token to curl: cf-access-token; with -L a Cookie
 * header instead, which curl (since 7.83, CVE-2022-27776) drops when a redirect changes the
 * host, the port or the scheme, and keeps within the origin; on https beside the token's
 * pair, which the gateway takes the cookie only with and gives the token's holder. */
static int token_header(const struct cli_target *t, bool follow, const char *token, char *text, size_t cap)
{
    if (!follow) {
        snprintf(text, cap, "cf-access-token: %s\n", token);
        return LATCH_EXIT_OK;
    }
    if (strcmp(t->origin.scheme, "https")) {
        snprintf(text, cap, "Cookie: CF_Authorization=%s\n", token);
        return LATCH_EXIT_OK;
    }
    struct cli_app_info chk = { 0 };
    int st = cli_discover(t, token, &chk);
    if (st == LATCH_EXIT_OK && (!chk.pair || !chk.token_status || strcmp(chk.token_status, "ok"))) {
        fprintf(stderr, "latch curl: the gateway did not give the token's cookie pair (%s); "
                        "run latch login %s, or drop -L\n", cli_refusal_words(chk.token_status), t->url);
        st = LATCH_EXIT_REFUSED;
    }
    if (st == LATCH_EXIT_OK)
        snprintf(text, cap, "Cookie: CF_Authorization=%s; __Host-latch_pair=%s\n", token, chk.pair);
    cli_app_info_free(&chk);
    return st;
}

/* curl with the token (or the service token's headers) for the one origin and the one app every
 * URL of its command line has (curlargs.c). curl gets -q first (it then reads no .curlrc, whose
 * options latch cannot see), the credentials from a private file, a private header dump for
 * latch to see the gateway's answer (unless the person gave -D), then the person's arguments,
 * a URL without a scheme given as https. */
static int cmd_curl(int argc, char **argv, const struct opts *o)
{
    struct cli_curl_plan plan;
    char why[1024];
    if (cli_curl_read(argc, argv, &plan, why, sizeof why) != 0) {
        fprintf(stderr, "latch curl: %s\n", why);
        cli_curl_plan_free(&plan);
        return LATCH_EXIT_USAGE;
    }
    char **args = calloc((size_t)argc + 8, sizeof *args);
    if (!args)
        return LATCH_EXIT_FAILED;
    int n = 0;
    args[n++] = "curl";
    if (plan.info) { /* curl prints its help or version and fetches nothing: no token */
        memcpy(args + n, argv, (size_t)argc * sizeof *argv);
        execvp("curl", args);
        fprintf(stderr, "latch: cannot run curl: %s (install curl)\n", strerror(errno));
        return 127;
    }
    struct cli_target t = { .url = plan.urls[0], .origin = plan.origin };
    char **paths = NULL, path[32], dump_path[32], text[9100];
    int npaths = 0, st = LATCH_EXIT_OK, fd = -1, dump = -1;
    char *token = NULL;
    const char *id, *secret;
    bool service = cli_service_creds(&id, &secret);
    if (!service) {
        if (curl_paths(&plan, &paths, &npaths, why, sizeof why) != 0) {
            fprintf(stderr, "latch curl: %s\n", why);
            st = LATCH_EXIT_USAGE;
            goto out;
        }
        t.path = paths[0];
    }
    if (service) { /* machines: the service token, never a browser */
        if (plan.follow) { /* curl keeps custom headers on every redirect */
            fprintf(stderr, "latch curl: with a service token, latch does not let curl follow redirects "
                            "(the secret would go along); drop -L\n");
            st = LATCH_EXIT_USAGE;
            goto out;
        }
        snprintf(text, sizeof text, "CF-Access-Client-Id: %s\nCF-Access-Client-Secret: %s\n", id, secret);
    } else {
        bool checked;
        if ((st = cli_ensure_token(&t, &o->cli, &token, &checked, NULL)) != LATCH_EXIT_OK)
            goto out;
        if (same_app(&t, paths, npaths, why, sizeof why) != 0) {
            fprintf(stderr, "latch curl: %s\n", why);
            st = LATCH_EXIT_USAGE;
            goto out;
        }
        if ((st = token_header(&t, plan.follow, token, text, sizeof text)) != LATCH_EXIT_OK)
            goto out;
    }
    fd = memfile(text, path);
    sodium_memzero(text, sizeof text);
    if (fd < 0 || (!plan.dump_header && (dump = memfile(NULL, dump_path)) < 0)) {
        fprintf(stderr, "latch: cannot hand the token to curl: %s\n", strerror(errno));
        st = LATCH_EXIT_FAILED;
        goto out;
    }
    if (!strcmp(plan.origin.scheme, "http")) { /* loopback only: a proxy would read the token */
        static const char *const proxies[] = { "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY" };
        for (size_t i = 0; i < sizeof proxies / sizeof *proxies; i++)
            unsetenv(proxies[i]);
    }
    char at[40];
    snprintf(at, sizeof at, "@%s", path);
    args[n++] = "-q"; /* first, or curl reads ~/.curlrc */
    args[n++] = "-H";
    args[n++] = at;
    if (dump >= 0) {
        args[n++] = "-D";
        args[n++] = dump_path;
    }
    int first = n;
    for (int i = 0; i < argc; i++)
        args[n++] = argv[i];
    for (int i = 0; i < plan.nurls && i < CLI_CURL_MAX_URLS; i++)
        if (plan.owned[i]) /* written without a scheme: curl would guess http */
            args[first + plan.argi[i]] = plan.owned[i];
    args[n] = NULL;
    int status = run_curl(args);
    close(fd);
    fd = -1;
    if (status < 0) {
        fprintf(stderr, "latch: cannot start curl: %s\n", strerror(errno));
        st = LATCH_EXIT_FAILED;
        goto out;
    }
    size_t dn = 0;
    char *d = WIFEXITED(status) ? read_dump(dump, plan.dump_header, &dn) : NULL;
    int refused = d ? cli_answer_refused(d, dn) : 0;
    free(d);
    if (refused && service)
        fprintf(stderr, "latch: the gateway refused the service token (401): check LATCH_CLIENT_ID and "
                        "LATCH_CLIENT_SECRET, and that a service_auth policy of the app names it\n");
    else if (refused)
        refused_after(&t, token);
    st = curl_exit(status);
    if (refused && st == 0)
        st = LATCH_EXIT_REFUSED;
out:
    if (fd >= 0)
        close(fd);
    if (dump >= 0)
        close(dump);
    if (token)
        sodium_memzero(token, strlen(token));
    free(token);
    for (int i = 0; i < npaths; i++)
        free(paths[i]);
    free(paths);
    free(args);
    cli_curl_plan_free(&plan);
    return st;
}

/* --- token, login, logout, apps ---------------------------------------------------------------- */

static int cmd_token(int argc, char **argv, struct opts *o)
{
    const char *arg;
    struct cli_target t;
    int st = verb_args("token", argc, argv, o, &arg);
    if (st != LATCH_EXIT_OK || (st = cli_target_read("token", arg, &t)) != LATCH_EXIT_OK)
        return st;
    const char *id, *secret;
    if (cli_service_creds(&id, &secret)) { /* machines: the app token the gateway mints for them */
        char h1[600], h2[600], err[512];
        snprintf(h1, sizeof h1, "CF-Access-Client-Id: %s", id);
        snprintf(h2, sizeof h2, "CF-Access-Client-Secret: %s", secret);
        const char *hdrs[] = { h1, h2, NULL };
        struct cli_http h;
        if (!cli_http(t.url, NULL, hdrs, 15, &h, err, sizeof err)) {
            fprintf(stderr, "latch: cannot reach %s: %s\n", t.origin.key, err);
            cli_target_free(&t);
            return LATCH_EXIT_FAILED;
        }
        st = LATCH_EXIT_NO_TOKEN;
        if (h.status == 401 || h.status == 403) {
            fprintf(stderr, "latch: %s refuses this service token (%ld): check LATCH_CLIENT_ID and "
                            "LATCH_CLIENT_SECRET\n", t.origin.key, h.status);
            st = LATCH_EXIT_REFUSED;
        } else if (h.cookie) {
            printf("%s\n", h.cookie);
            st = LATCH_EXIT_OK;
        } else {
            fprintf(stderr, "latch: %s admits this service token by its headers and issues no token "
                            "for it; send CF-Access-Client-Id and CF-Access-Client-Secret (latch curl "
                            "does)\n", t.origin.key);
        }
        cli_http_free(&h);
        cli_target_free(&t);
        return st;
    }
    char *dir = cli_store_dir();
    char *tok = dir ? cli_stored_token(dir, &t) : NULL;
    free(dir);
    if (!tok) {
        fprintf(stderr, "latch: no valid token stored for the app at %s; run: latch login %s\n", t.url, t.url);
        cli_target_free(&t);
        return LATCH_EXIT_NO_TOKEN;
    }
    printf("%s\n", tok);
    free(tok);
    cli_target_free(&t);
    return LATCH_EXIT_OK;
}

static int cmd_login(int argc, char **argv, struct opts *o)
{
    const char *arg;
    struct cli_target t;
    int st = verb_args("login", argc, argv, o, &arg);
    if (st != LATCH_EXIT_OK || (st = cli_target_read("login", arg, &t)) != LATCH_EXIT_OK)
        return st;
    char *token = NULL, *email = NULL;
    bool checked = false;
    struct cli_app_info chk = { 0 };
    st = cli_ensure_token(&t, &o->cli, &token, &checked, &email);
    if (st == LATCH_EXIT_OK && !checked) { /* a stored token: is it still good? */
        st = cli_discover(&t, token, &chk);
        if (st == LATCH_EXIT_OK && chk.token_status && !strcmp(chk.token_status, "ok")) {
            email = chk.email;
            chk.email = NULL;
        } else if (st == LATCH_EXIT_OK) {
            fprintf(stderr, "latch: the stored token for %s was refused (%s); logging in again\n", t.url,
                    cli_refusal_words(chk.token_status));
            char *dir = cli_store_dir(), *aud = cli_jwt_aud(token);
            if (dir && aud)
                cli_forget_token(dir, &t.origin, aud, false);
            free(aud);
            free(dir);
            free(token);
            token = NULL;
            st = cli_ensure_token(&t, &o->cli, &token, &checked, &email);
        }
        cli_app_info_free(&chk);
    }
    if (st == LATCH_EXIT_OK) {
        char *app = cli_stored_app_name(&t);
        fprintf(stderr, "latch: logged in to %s as %s%s%s%s\n", t.origin.key, email && *email ? email : "(service)",
                app ? " (app " : "", app ? app : "", app ? ")" : "");
        free(app);
    }
    free(email);
    free(token);
    cli_target_free(&t);
    return st;
}

/* Ends a session at the gateway: POST cli-logout with one of its tokens, at the origin that
 * token was issued for. 0 ended (or already over), -1 not reached (the message said why). */
static int end_session(const char *origin_text, const char *token)
{
    struct cli_origin o;
    char why[512], url[600], hdr[9000], err[512];
    if (cli_origin_parse(origin_text, &o, why, sizeof why) != 0 || !cli_cleartext_ok(&o))
        return -1;
    snprintf(url, sizeof url, "%s://%s/cdn-cgi/access/cli-logout", o.scheme, o.key);
    snprintf(hdr, sizeof hdr, "cf-access-token: %s", token);
    const char *hdrs[] = { hdr, NULL };
    struct cli_http h;
    bool ok = cli_http(url, "", hdrs, 15, &h, err, sizeof err);
    sodium_memzero(hdr, sizeof hdr);
    if (!ok) {
        fprintf(stderr, "latch: cannot reach %s to end the session: %s; nothing was forgotten: try again\n",
                o.key, err);
        return -1;
    }
    long status = h.status;
    cli_http_free(&h);
    if (status == 200 || status == 401) /* 401: expired or already revoked: over anyway */
        return 0;
    fprintf(stderr, "latch: %s did not end the session (answered %ld); nothing was forgotten: try again\n",
            o.key, status);
    return -1;
}

/* The token to end a session with: the org token of that session when it is stored (the auth
 * domain's), else the app token itself. */
static const char *session_token(json_t *all, const char *session, const char **origin)
{
    const char *best = NULL;
    size_t i;
    json_t *e;
    json_array_foreach(all, i, e) {
        const char *t = json_string_value(json_object_get(e, "token"));
        char *s = t ? cli_jwt_session(t) : NULL;
        json_t *p = s && !strcmp(s, session) ? cli_jwt_payload(t) : NULL;
        const char *type = json_string_value(json_object_get(p, "type"));
        if (p && (!best || (type && !strcmp(type, "org")))) {
            best = t;
            *origin = json_string_value(json_object_get(e, "origin"));
        }
        json_decref(p);
        free(s);
    }
    return best;
}

static int cmd_logout(int argc, char **argv, struct opts *o)
{
    const char *arg;
    int st = verb_args("logout", argc, argv, o, &arg);
    if (st != LATCH_EXIT_OK)
        return st;
    if (!o->all && !arg) {
        fprintf(stderr, "latch logout: give the application's URL, or --all\n");
        return LATCH_EXIT_USAGE;
    }
    struct cli_target t = { 0 };
    if (!o->all && (st = cli_target_read("logout", arg, &t)) != LATCH_EXIT_OK)
        return st;
    char *dir = cli_store_dir();
    json_t *all = json_array();
    if (!dir || !all || cli_store_sessions(dir, all) != 0) {
        if (dir && all) { /* no store yet: nothing to end */
            fprintf(stderr, "latch: no login is stored: nothing to end\n");
            st = LATCH_EXIT_OK;
        } else {
            st = LATCH_EXIT_FAILED;
        }
        goto out;
    }
    /* the sessions to end: every one (--all), or those of the gateway of the URL: of the tokens
     * stored for its origin, and of the org token of its auth domain */
    json_t *rec = o->all ? NULL : cli_record_read(dir, &t.origin);
    const char *auth = json_string_value(json_object_get(rec, "auth_origin"));
    json_t *sessions = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(all, i, e) {
        const char *tok = json_string_value(json_object_get(e, "token"));
        const char *where = json_string_value(json_object_get(e, "origin"));
        char *s = tok ? cli_jwt_session(tok) : NULL;
        if (s && (o->all || (where && (!strcmp(where, t.origin.text) || (auth && !strcmp(where, auth)))))) {
            bool seen = false;
            for (size_t k = 0; k < json_array_size(sessions) && !seen; k++)
                seen = !strcmp(json_string_value(json_array_get(sessions, k)), s);
            if (!seen)
                json_array_append_new(sessions, json_string(s));
        }
        free(s);
    }
    json_decref(rec);
    if (json_array_size(sessions) == 0 && !o->all) {
        fprintf(stderr, "latch: no login is stored for %s: nothing to end\n", t.url);
    }
    int forgotten = 0, failed = 0;
    json_array_foreach(sessions, i, e) {
        const char *s = json_string_value(e), *where = NULL;
        const char *tok = session_token(all, s, &where);
        if (tok && where && end_session(where, tok) == 0)
            forgotten += cli_store_forget(dir, s);
        else
            failed++;
    }
    if (o->all && !failed)
        cli_store_forget(dir, NULL);
    if (failed) {
        st = LATCH_EXIT_FAILED;
    } else if (json_array_size(sessions) > 0 || o->all) {
        fprintf(stderr, "latch: logged out: the command line's session%s ended at the gateway (%d token%s "
                        "forgotten); your browser stays signed in\n", json_array_size(sessions) == 1 ? "" : "s",
                forgotten, forgotten == 1 ? "" : "s");
    }
    json_decref(sessions);
out:
    json_decref(all);
    free(dir);
    cli_target_free(&t);
    return st;
}


static int cmd_apps(int argc, char **argv, struct opts *o)
{
    const char *arg;
    struct cli_target t;
    int st = verb_args("apps", argc, argv, o, &arg);
    if (st != LATCH_EXIT_OK || (st = cli_target_read("apps", arg, &t)) != LATCH_EXIT_OK)
        return st;
    struct cli_app_info a;
    char *org = NULL;
    json_t *j = NULL;
    if ((st = cli_discover(&t, NULL, &a)) != LATCH_EXIT_OK) {
        cli_target_free(&t);
        return st;
    }
    char url[600], err[512], hdr[9000];
    snprintf(url, sizeof url, "%s://%s/cdn-cgi/access/apps", a.auth.scheme, a.auth.key);
    for (int round = 0; round < 2 && st == LATCH_EXIT_OK && !j; round++) {
        if ((st = cli_ensure_org(&t, &o->cli, &a, &org)) != LATCH_EXIT_OK)
            break;
        snprintf(hdr, sizeof hdr, "cf-access-token: %s", org);
        const char *hdrs[] = { hdr, NULL };
        struct cli_http h;
        bool ok = cli_http(url, NULL, hdrs, 15, &h, err, sizeof err);
        sodium_memzero(hdr, sizeof hdr);
        if (!ok) {
            fprintf(stderr, "latch: cannot reach %s: %s\n", a.auth.key, err);
            st = LATCH_EXIT_FAILED;
            break;
        }
        json_error_t je;
        if (h.status == 200 && !(j = json_loadb(h.body, h.len, 0, &je))) {
            fprintf(stderr, "latch: %s answered something that is not JSON\n", url);
            st = LATCH_EXIT_FAILED;
        } else if (h.status == 401) { /* the org token was refused (revoked, ended): a login again */
            char *dir = cli_store_dir();
            if (dir)
                cli_org_remove(dir, &a.auth);
            free(dir);
            if (round == 1) {
                fprintf(stderr, "latch: the gateway refuses the new organization token too\n");
                st = LATCH_EXIT_REFUSED;
            }
        } else if (h.status == 404) {
            fprintf(stderr, "latch: the gateway at %s does not list apps (GET /cdn-cgi/access/apps answered 404): "
                            "it may be older than latch apps\n", a.auth.key);
            st = LATCH_EXIT_FAILED;
        } else if (h.status != 200) {
            fprintf(stderr, "latch: %s answered %ld\n", url, h.status);
            st = LATCH_EXIT_FAILED;
        }
        cli_http_free(&h);
        free(org);
        org = NULL;
    }
    json_t *apps = json_object_get(j, "apps");
    if (st == LATCH_EXIT_OK && !json_is_array(apps)) {
        fprintf(stderr, "latch: %s answered no list of apps\n", url);
        st = LATCH_EXIT_FAILED;
    }
    if (st == LATCH_EXIT_OK && o->json) {
        json_dumpf(j, stdout, JSON_INDENT(2));
        printf("\n");
    } else if (st == LATCH_EXIT_OK) {
        size_t i, w = 4;
        json_t *e;
        json_array_foreach(apps, i, e) {
            const char *name = json_string_value(json_object_get(e, "display_name"));
            if (!name)
                name = json_string_value(json_object_get(e, "name"));
            if (name && strlen(name) > w)
                w = strlen(name) > 40 ? 40 : strlen(name);
        }
        json_array_foreach(apps, i, e) {
            const char *name = json_string_value(json_object_get(e, "display_name"));
            const char *u = json_string_value(json_object_get(e, "url"));
            if (!name)
                name = json_string_value(json_object_get(e, "name"));
            printf("%-*s  %s\n", (int)w, name ? name : "?", u ? u : "");
        }
        if (json_array_size(apps) == 0)
            fprintf(stderr, "latch: no app of this gateway admits you\n");
    }
    json_decref(j);
    cli_app_info_free(&a);
    cli_target_free(&t);
    return st;
}

/* --- latch tcp, latch ssh ----------------------------------------------------------------------- */

static const char tcp_usage[] =
    "usage: latch [--no-browser] [--timeout SECONDS] tcp --hostname HOST [--url 127.0.0.1:PORT]\n"
    "\n"
    "Carries a TCP connection to the TCP application at HOST (an app with a tcp:// origin) in a\n"
    "WebSocket, with your token (or, with LATCH_CLIENT_ID and LATCH_CLIENT_SECRET, the service\n"
    "token's headers, and never a browser). HOST is a host name (https) or a URL\n"
    "(http://app.localhost:8080 for a gateway on this machine). Without --url, stdin and stdout\n"
    "are the connection (a ProxyCommand); with --url, latch listens on that loopback address and\n"
    "each connection accepted there gets its own tunnel.\n"
    "\n"
    "A tunnel that cannot be opened (the gateway restarting: refused, 502, 503) is retried with\n"
    "backoff for --timeout seconds (default 30). A tunnel that drops mid-stream cannot be resumed\n"
    "(the TCP connection to the service is gone): latch says so and exits 7 (with --url, that one\n"
    "connection is closed). A latchd reload (SIGHUP) keeps open tunnels.\n"
    "\n"
    "exit status: 0 the connection ended; 1 the gateway could not be reached; 3 the browser login\n"
    "was not completed; 4 refused by policy; 6 not a TCP application; 7 the tunnel dropped;\n"
    "64 usage.\n";

static const char ssh_usage[] =
    "usage: latch [--no-browser] [--timeout SECONDS] ssh --hostname HOST\n"
    "\n"
    "latch tcp for ssh: stdin and stdout carried to the TCP application at HOST, for\n"
    "~/.ssh/config:\n"
    "    Host HOST\n"
    "        ProxyCommand latch ssh --hostname %h\n"
    "The same exit statuses, tokens and retries as latch tcp (latch tcp --help).\n";

/* latch tcp|ssh --hostname HOST [--url ADDR]: cloudflared's flags (--hostname=HOST too), and
 * latch's own options among them. */
static int cmd_tunnel(const char *cmd, int argc, char **argv, struct opts *o)
{
    const char *host = NULL, *listen = NULL;
    const char *usage = !strcmp(cmd, "ssh") ? ssh_usage : tcp_usage;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = !strncmp(a, "--hostname", 10) ? &host : !strncmp(a, "--url", 5) ? &listen : NULL;
        size_t nl = slot == &host ? 10 : 5;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return LATCH_EXIT_OK;
        }
        if (slot && (a[nl] == 0 || a[nl] == '=')) {
            const char *v = a[nl] ? a + nl + 1 : i + 1 < argc ? argv[++i] : NULL;
            if (!v || !*v) {
                fprintf(stderr, "latch %s: %.*s needs a value\n", cmd, (int)nl, a);
                return LATCH_EXIT_USAGE;
            }
            if (*slot) {
                fprintf(stderr, "latch %s: %.*s given twice\n", cmd, (int)nl, a);
                return LATCH_EXIT_USAGE;
            }
            *slot = v;
            continue;
        }
        int rc = a[0] == '-' ? latch_option(argc, argv, &i, o) : 1;
        if (rc == 1) {
            fprintf(stderr, "latch %s: unexpected '%s'\n%s", cmd, a, usage);
            return LATCH_EXIT_USAGE;
        }
        if (rc != LATCH_EXIT_OK)
            return rc;
    }
    if (!host) {
        fprintf(stderr, "latch %s: give the application: --hostname HOST\n%s", cmd, usage);
        return LATCH_EXIT_USAGE;
    }
    int retry = o->cli.timeout_set ? o->cli.handoff.timeout_s : CLI_TUNNEL_RETRY_S;
    /* ssh read its certificate before starting us: a renewal here serves the next connection
     * (ssh-config --short-lived-cert renews for this one, from a Match exec); its failure is
     * said, and the tunnel goes on (the key may not be the one ssh offers) */
    if (!strcmp(cmd, "ssh"))
        (void)cli_ssh_cert_refresh(host, &o->cli);
    return listen ? cli_tunnel_listen(cmd, host, listen, &o->cli, retry) : cli_tunnel_stdio(cmd, host, &o->cli, retry);
}

int main(int argc, char **argv)
{
    struct opts o = { .cli.handoff = { .timeout_s = 300 } };
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--version")) {
            printf("latch %s\n", LATCH_VERSION);
            return 0;
        }
        int rc = latch_option(argc, argv, &i, &o);
        if (rc == 1) {
            fprintf(stderr, "latch: unknown option '%s'\n%s", argv[i], usage_text);
            return LATCH_EXIT_USAGE;
        }
        if (rc != LATCH_EXIT_OK)
            return rc;
    }
    if (i >= argc) {
        fputs(usage_text, stderr);
        return LATCH_EXIT_USAGE;
    }
    const char *cmd = argv[i++];
    if (getenv("LATCH_NO_BROWSER") && *getenv("LATCH_NO_BROWSER"))
        o.cli.handoff.no_browser = true;
    if (!strcmp(cmd, "curl"))
        return cmd_curl(argc - i, argv + i, &o);
    if (!strcmp(cmd, "login"))
        return cmd_login(argc - i, argv + i, &o);
    if (!strcmp(cmd, "token"))
        return cmd_token(argc - i, argv + i, &o);
    if (!strcmp(cmd, "logout"))
        return cmd_logout(argc - i, argv + i, &o);
    if (!strcmp(cmd, "apps"))
        return cmd_apps(argc - i, argv + i, &o);
    if (!strcmp(cmd, "ssh-gen"))
        return cmd_ssh_gen(argc - i, argv + i, &o);
    if (!strcmp(cmd, "ssh-config"))
        return cmd_ssh_config(argc - i, argv + i, &o);
    if (!strcmp(cmd, "tcp") || !strcmp(cmd, "ssh"))
        return cmd_tunnel(cmd, argc - i, argv + i, &o);
    fprintf(stderr, "latch: unknown command '%s' (latch --help lists them)\n", cmd);
    return LATCH_EXIT_USAGE;
}
