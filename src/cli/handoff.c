/* The encrypted browser handoff, CLI side (SPEC.md §7): an ephemeral X25519 key pair that
 * never touches the disk, the browser opened on the confirmation page (or the URL printed),
 * the long poll with backoff, the sealed box opened and its token checked against the app. */
#include "cli/cli.h"
#include "token/handoff.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Starts `prog url` detached. True when exec succeeded (a CLOEXEC pipe tells). */
static bool handoff__spawn(const char *prog, const char *url)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return false;
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return false;
    }
    if (pid == 0) {
        if (fork() != 0) /* double fork: no zombie, not our child */
            _exit(0);
        setsid();
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execlp(prog, prog, url, (char *)NULL);
        char e = 1;
        if (write(p[1], &e, 1) < 0) {
        }
        _exit(127);
    }
    close(p[1]);
    waitpid(pid, NULL, 0);
    char e;
    ssize_t n = read(p[0], &e, 1);
    close(p[0]);
    return n == 0; /* closed by a successful exec */
}

/* $BROWSER (a ':' list), then xdg-open, then open; nothing over ssh without a display. */
static bool handoff__browser(const char *url)
{
    const char *b = getenv("BROWSER");
    if (b && *b) {
        char *list = strdup(b), *save = NULL;
        for (char *tok = list ? strtok_r(list, ":", &save) : NULL; tok; tok = strtok_r(NULL, ":", &save)) {
            if (handoff__spawn(tok, url)) {
                free(list);
                return true;
            }
        }
        free(list);
    }
    bool display = getenv("DISPLAY") || getenv("WAYLAND_DISPLAY");
    if (getenv("SSH_CONNECTION") && !display)
        return false;
    return (display && handoff__spawn("xdg-open", url)) || handoff__spawn("open", url);
}

int cli_handoff(const char *auth_url, const char *host, const char *aud, const struct cli_handoff_opts *o,
                char **app_token, char **org_token)
{
    unsigned char pk[crypto_box_PUBLICKEYBYTES], sk[crypto_box_SECRETKEYBYTES];
    char pk64[64], code[10], url[2048], poll[2048], err[512];
    crypto_box_keypair(pk, sk); /* ephemeral: lives in this process's memory only */
    sodium_bin2base64(pk64, sizeof pk64, pk, sizeof pk, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    handoff_code(pk, code); /* the same code the confirmation page shows */
    snprintf(url, sizeof url, "%s/cdn-cgi/access/cli?host=%s&key=%s", auth_url, host, pk64);
    snprintf(poll, sizeof poll, "%s/cdn-cgi/access/transfer/%s", auth_url, pk64);
    bool opened = !o->no_browser && handoff__browser(url);
    fprintf(stderr, "latch: %s to log in to %s. Check that the page shows the code %s\n",
            opened ? "a browser window opened" : "open this URL in a browser (on any device)", host, code);
    fprintf(stderr, "  %s\n", url);

    time_t start = time(NULL), deadline = start + (o->timeout_s > 0 ? o->timeout_s : 300);
    int backoff = 1, status = CLI_NO_LOGIN;
    bool tty = isatty(2) && !o->quiet;
    while (time(NULL) < deadline) {
        struct cli_http h;
        long left = (long)(deadline - time(NULL));
        if (tty)
            fprintf(stderr, "\rlatch: waiting for the browser... %lds ", (long)(time(NULL) - start));
        if (!cli_http(poll, NULL, NULL, left < 40 ? (left > 1 ? left : 1) : 40, &h, err, sizeof err)) {
            sleep((unsigned)backoff); /* the gateway restarts, the network flaps: back off */
            backoff = backoff < 8 ? backoff * 2 : 10;
            continue;
        }
        if (h.status == 204 || h.status == 408) {
            cli_http_free(&h);
            backoff = 1;
            continue;
        }
        if (h.status != 200) {
            cli_http_free(&h);
            sleep((unsigned)backoff);
            backoff = backoff < 8 ? backoff * 2 : 10;
            continue;
        }
        unsigned char *plain = NULL;
        json_t *j = NULL;
        if (h.len > crypto_box_SEALBYTES && (plain = calloc(1, h.len - crypto_box_SEALBYTES + 1)) &&
            crypto_box_seal_open(plain, (const unsigned char *)h.body, h.len, pk, sk) == 0) {
            json_error_t je;
            j = json_loadb((const char *)plain, h.len - crypto_box_SEALBYTES, 0, &je);
            sodium_memzero(plain, h.len - crypto_box_SEALBYTES);
        }
        free(plain);
        cli_http_free(&h);
        const char *a = json_string_value(json_object_get(j, "app_token"));
        const char *g = json_string_value(json_object_get(j, "org_token"));
        if (!a || !cli_jwt_has_aud(a, aud)) {
            fprintf(stderr, "%slatch: the token received is not for %s: refused\n", tty ? "\n" : "", host);
            json_decref(j);
            status = CLI_ERROR;
            break;
        }
        *app_token = strdup(a);
        *org_token = g ? strdup(g) : NULL;
        json_decref(j);
        status = CLI_OK;
        break;
    }
    sodium_memzero(sk, sizeof sk);
    if (tty)
        fprintf(stderr, "\n");
    if (status == CLI_NO_LOGIN)
        fprintf(stderr, "latch: the login was not completed within %d seconds; run the command again "
                        "(or raise --timeout)\n", o->timeout_s > 0 ? o->timeout_s : 300);
    return status;
}
