/* The encrypted browser handoff, CLI side (SPEC.md §7): an ephemeral X25519 key pair that
 * never touches the disk, the browser sent to the confirmation page through the loopback
 * redirector (loopback.c: no key on the browser's command line) or the URL printed, the long
 * poll with backoff and its proof of possession of the key, the sealed box opened and its token
 * checked against the app. */
#include "cli/cli.h"
#include "core/base64url.h"
#include "core/strbuf.h"
#include "http/form.h"
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

/* How long a browser launcher has to fail before latch believes a browser opened: xdg-open
 * without a display, or a $BROWSER that cannot reach one, fails within milliseconds; a browser
 * started directly runs on. */
#define BROWSER_GRACE_MS 1500

/* Starts `prog url` detached (its own session, stdio on /dev/null, not latch's child) and says
 * whether a browser opened: false when it cannot be run, or when it exits with a failure within
 * BROWSER_GRACE_MS; true when it exits 0 (a launcher that handed the URL on), or still runs
 * then. A child between latch and the browser watches it and reports on a pipe. */
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
        setsid();
        pid_t b = fork();
        if (b == 0) {
            int devnull = open("/dev/null", O_RDWR);
            if (devnull >= 0) {
                dup2(devnull, 0);
                dup2(devnull, 1);
                dup2(devnull, 2);
            }
            execlp(prog, prog, url, (char *)NULL);
            _exit(127); /* the watcher reads it as a failure */
        }
        char verdict = 'F';
        if (b > 0) {
            int status = 0;
            verdict = 'R'; /* still running when the grace ends: a browser */
            for (int waited = 0; waited < BROWSER_GRACE_MS; waited += 10) {
                pid_t w = waitpid(b, &status, WNOHANG);
                if (w == b) {
                    verdict = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 'O' : 'F';
                    break;
                }
                if (w < 0)
                    break;
                usleep(10 * 1000);
            }
        }
        if (write(p[1], &verdict, 1) < 0) {
        }
        _exit(0);
    }
    close(p[1]);
    char v = 'F';
    ssize_t n;
    do
        n = read(p[0], &v, 1);
    while (n < 0 && errno == EINTR);
    close(p[0]);
    waitpid(pid, NULL, 0);
    return n == 1 && (v == 'O' || v == 'R');
}

/* $BROWSER (a ':' list), then the desktop's opener (xdg-open; open on macOS), each until one
 * opens a browser; none over ssh without a display. */
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
#ifdef __APPLE__
    return handoff__spawn("open", url);
#else
    bool display = getenv("DISPLAY") || getenv("WAYLAND_DISPLAY");
    if (getenv("SSH_CONNECTION") && !display)
        return false;
    return handoff__spawn("xdg-open", url); /* it fails (exit 3) where it finds no browser */
#endif
}

/* The proof the gateway sealed to our key in a 401 (its JSON "challenge"), opened: the value
 * of the Authorization header of the next polls. False when it does not open with our key. */
static bool handoff__proof(const struct cli_http *h, const unsigned char *pk, const unsigned char *sk,
                           char *out, size_t cap)
{
    json_error_t je;
    json_t *j = json_loadb(h->body ? h->body : "", h->len, 0, &je);
    const char *ch = json_string_value(json_object_get(j, "challenge"));
    unsigned char box[512], plain[256];
    size_t n = 0;
    bool ok = ch && b64url_decode(ch, strlen(ch), box, sizeof box, &n) == 0 &&
              n > crypto_box_SEALBYTES && n - crypto_box_SEALBYTES < sizeof plain &&
              crypto_box_seal_open(plain, box, n, pk, sk) == 0;
    json_decref(j);
    if (!ok)
        return false;
    size_t pl = n - crypto_box_SEALBYTES;
    for (size_t i = 0; i < pl; i++) /* "EXP.MAC": digits, '.', hex; nothing else goes in a header */
        if (!((plain[i] >= '0' && plain[i] <= '9') || (plain[i] >= 'a' && plain[i] <= 'f') || plain[i] == '.'))
            return false;
    return snprintf(out, cap, "Authorization: Latch-Proof %.*s", (int)pl, (const char *)plain) < (int)cap;
}

/* The email an app token names, for the person to see whose login the terminal got. */
static void handoff__who(const char *tok, char *out, size_t cap)
{
    json_t *p = cli_jwt_payload(tok);
    const char *e = json_string_value(json_object_get(p, "email"));
    snprintf(out, cap, "%s", e ? e : "?");
    json_decref(p);
}

/* The box the gateway sealed to this login's key, opened: its JSON, or NULL (not ours, not
 * JSON). The plain text is wiped. */
static json_t *handoff__open(const struct cli_http *h, const unsigned char *pk, const unsigned char *sk)
{
    unsigned char *plain = NULL;
    json_t *j = NULL;
    if (h->len > crypto_box_SEALBYTES && (plain = calloc(1, h->len - crypto_box_SEALBYTES + 1)) &&
        crypto_box_seal_open(plain, (const unsigned char *)h->body, h->len, pk, sk) == 0) {
        json_error_t je;
        j = json_loadb((const char *)plain, h->len - crypto_box_SEALBYTES, 0, &je);
        sodium_memzero(plain, h->len - crypto_box_SEALBYTES);
    }
    free(plain);
    return j;
}

int cli_handoff(const char *auth_url, const char *host, const char *path, const char *aud,
                const struct cli_handoff_opts *o, char **app_token, char **org_token)
{
    unsigned char pk[crypto_box_PUBLICKEYBYTES], sk[crypto_box_SECRETKEYBYTES];
    char pk64[64], code[10], url[CLI_HANDOFF_URL_MAX], poll[2048], err[512], local[64], proof[256] = "";
    crypto_box_keypair(pk, sk); /* ephemeral: lives in this process's memory only */
    b64url_encode(pk, sizeof pk, pk64);
    handoff_code(pk, code); /* the same code the confirmation page shows */
    unsigned char nraw[16];
    char n64[32];
    randombytes_buf(nraw, sizeof nraw); /* this request's nonce: the box must carry it back */
    b64url_encode(nraw, sizeof nraw, n64);
    struct strbuf ep;
    sb_init(&ep, sizeof url);
    form_urlencode(&ep, path, strlen(path));
    if (ep.overflow || snprintf(url, sizeof url, "%s/cdn-cgi/access/cli?host=%s&path=%s&key=%s&n=%s", auth_url,
                                host, ep.p ? ep.p : "", pk64, n64) >= (int)sizeof url) {
        sb_free(&ep);
        fprintf(stderr, "latch: the URL's path is too long to log in with\n");
        return LATCH_EXIT_USAGE;
    }
    sb_free(&ep);
    snprintf(poll, sizeof poll, "%s/cdn-cgi/access/transfer/%s", auth_url, pk64);
    /* the browser gets the loopback address; the URL with the key is printed on our own
     * terminal only when no browser of ours can be sent there */
    struct cli_loopback *lb = o->no_browser ? NULL : cli_loopback_start(url, local, sizeof local);
    bool opened = lb && handoff__browser(local);
    if (!opened) {
        cli_loopback_stop(lb);
        lb = NULL;
        fprintf(stderr, "latch: open this URL in a browser (on any device) to log in to %s. Check that "
                        "the page shows the code %s\n  %s\n", host, code, url);
    } else {
        fprintf(stderr, "latch: a browser window opened to log in to %s. Check that the page shows the code "
                        "%s\n  (no window? open %s in a browser on this machine)\n", host, code, local);
    }

    time_t start = time(NULL), deadline = start + (o->timeout_s > 0 ? o->timeout_s : 300);
    int backoff = 1, status = LATCH_EXIT_NO_LOGIN, challenges = 0;
    bool tty = isatty(2) && !o->quiet;
    while (time(NULL) < deadline) {
        struct cli_http h;
        long left = (long)(deadline - time(NULL));
        if (tty)
            fprintf(stderr, "\rlatch: waiting for the browser... %lds ", (long)(time(NULL) - start));
        const char *hdrs[] = { proof, NULL };
        if (!cli_http(poll, NULL, proof[0] ? hdrs : NULL, left < 40 ? (left > 1 ? left : 1) : 40, &h, err,
                      sizeof err)) {
            sleep((unsigned)backoff); /* the gateway restarts, the network flaps: back off */
            backoff = backoff < 8 ? backoff * 2 : 10;
            continue;
        }
        if (h.status == 204 || h.status == 408) {
            cli_http_free(&h);
            backoff = 1;
            continue;
        }
        if (h.status == 401) { /* prove that we hold the key: open the challenge sealed to it */
            bool ok = handoff__proof(&h, pk, sk, proof, sizeof proof);
            cli_http_free(&h);
            if (!ok) {
                fprintf(stderr, "%slatch: the gateway's challenge does not open with this login's key: "
                                "refused\n", tty ? "\n" : "");
                status = LATCH_EXIT_FAILED;
                break;
            }
            if (++challenges > 3) /* a new proof every time: something is wrong; slow down */
                sleep((unsigned)backoff), backoff = backoff < 8 ? backoff * 2 : 10;
            continue;
        }
        challenges = 0;
        if (h.status != 200) {
            cli_http_free(&h);
            sleep((unsigned)backoff);
            backoff = backoff < 8 ? backoff * 2 : 10;
            continue;
        }
        json_t *j = handoff__open(&h, pk, sk);
        cli_http_free(&h);
        const char *a = json_string_value(json_object_get(j, "app_token"));
        const char *g = json_string_value(json_object_get(j, "org_token"));
        const char *bn = json_string_value(json_object_get(j, "n"));
        if (j && (!bn || strlen(bn) != strlen(n64) || sodium_memcmp(bn, n64, strlen(n64)) != 0)) {
            /* confirmed from a link this latch did not hand out: the public key leaked (it is in
             * the poll's address) and someone opened it with a request of his own */
            fprintf(stderr, "%slatch: this login was confirmed in a browser latch did not open (someone else "
                            "has its link): refused; run latch again\n", tty ? "\n" : "");
            json_decref(j);
            status = LATCH_EXIT_FAILED;
            break;
        }
        if (!a || !cli_jwt_has_aud(a, aud)) {
            fprintf(stderr, "%slatch: the token received is not for %s: refused\n", tty ? "\n" : "", host);
            json_decref(j);
            status = LATCH_EXIT_FAILED;
            break;
        }
        *app_token = strdup(a);
        *org_token = g ? strdup(g) : NULL;
        char who[320];
        handoff__who(a, who, sizeof who);
        fprintf(stderr, "%slatch: signed in to %s as %s\n", tty ? "\n" : "", host, who);
        tty = false;
        json_decref(j);
        status = LATCH_EXIT_OK;
        break;
    }
    cli_loopback_stop(lb);
    sodium_memzero(sk, sizeof sk);
    sodium_memzero(proof, sizeof proof);
    if (tty)
        fprintf(stderr, "\n");
    if (status == LATCH_EXIT_NO_LOGIN)
        fprintf(stderr, "latch: the login was not completed within %d seconds; run the command again "
                        "(or raise --timeout)\n", o->timeout_s > 0 ? o->timeout_s : 300);
    return status;
}
