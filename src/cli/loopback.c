/* The login redirector (SPEC.md §7 step 3): the browser is never given the confirmation URL on
 * its command line, where any local user could read it (/proc/PID/cmdline). latch listens on
 * 127.0.0.1:0 and starts the browser at http://127.0.0.1:PORT/, which says nothing; it answers
 * that request with a 302 to the confirmation URL only when the connecting socket belongs to
 * latch's own user (its owner in /proc/net/tcp, tcp6), 403 to a socket of anyone else, and 404
 * to everything once the browser has been sent on. The listener lives as long as the login. */
#include "cli/cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LB_CLIENTS 16
#define LB_HEAD_MAX 8192
#define LB_HEAD_MS 5000

struct lb_client {
    int fd;
    long long since_ms;
    size_t len;
    char head[LB_HEAD_MAX];
};

struct cli_loopback {
    int listen_fd;
    int stop[2];            /* a pipe: written to stop the thread */
    pthread_t thread;
    char *target;           /* the confirmation URL */
    bool sent;              /* the browser was sent on */
    struct lb_client clients[LB_CLIENTS];
};

static long long lb__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The owner of the socket whose local end is `peer` and remote end is `us`, from one of
 * /proc/net/tcp (IPv4) or tcp6 (an IPv6 socket talking to us over a v4-mapped address). */
static long lb__owner_in(const char *file, const char *want_local, const char *want_remote)
{
    FILE *f = fopen(file, "r");
    if (!f)
        return -1;
    char line[512];
    long uid = -1;
    while (uid < 0 && fgets(line, sizeof line, f)) {
        char local[64], remote[64];
        unsigned long u;
        /* sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid */
        if (sscanf(line, " %*s %63s %63s %*s %*s %*s %*s %lu", local, remote, &u) == 3 &&
            !strcasecmp(local, want_local) && !strcasecmp(remote, want_remote))
            uid = (long)u;
    }
    fclose(f);
    return uid;
}

long cli_peer_uid(const struct sockaddr_in *peer, const struct sockaddr_in *us)
{
    /* the kernel prints the address as the 32-bit word it stores (network order, read as a
     * host integer) and the port in host order */
    char l4[32], r4[32], l6[64], r6[64];
    snprintf(l4, sizeof l4, "%08X:%04X", (unsigned)peer->sin_addr.s_addr, ntohs(peer->sin_port));
    snprintf(r4, sizeof r4, "%08X:%04X", (unsigned)us->sin_addr.s_addr, ntohs(us->sin_port));
    snprintf(l6, sizeof l6, "0000000000000000%08X%08X:%04X", (unsigned)htonl(0xffff),
             (unsigned)peer->sin_addr.s_addr, ntohs(peer->sin_port));
    snprintf(r6, sizeof r6, "0000000000000000%08X%08X:%04X", (unsigned)htonl(0xffff),
             (unsigned)us->sin_addr.s_addr, ntohs(us->sin_port));
    long uid = lb__owner_in("/proc/net/tcp", l4, r4);
    return uid >= 0 ? uid : lb__owner_in("/proc/net/tcp6", l6, r6);
}

static void lb__answer(int fd, int status, const char *reason, const char *location, const char *text)
{
    char buf[4096];
    int n = snprintf(buf, sizeof buf,
                     "HTTP/1.1 %d %s\r\n%s%s%sContent-Type: text/plain; charset=utf-8\r\n"
                     "Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     status, reason, location ? "Location: " : "", location ? location : "",
                     location ? "\r\n" : "", strlen(text), text);
    if (n > 0 && (size_t)n < sizeof buf && write(fd, buf, (size_t)n) < 0) {
    }
}

/* The value of header `name` (lowercase, with its colon) in a request head, or NULL. */
static const char *lb__header(const char *head, const char *name, size_t *len)
{
    size_t n = strlen(name);
    for (const char *p = strchr(head, '\n'); p && p[1]; p = strchr(p + 1, '\n')) {
        if (!strncasecmp(p + 1, name, n)) {
            const char *v = p + 1 + n;
            v += strspn(v, " \t");
            *len = strcspn(v, "\r\n");
            return v;
        }
    }
    return NULL;
}

/* A complete request head from client c: the answer, then the connection is closed. A browser
 * that says another page sent it (Fetch metadata: Sec-Fetch-Site other than "none", what a
 * browser started on a URL sends) is refused too, and the address stays for the real one. */
static void lb__serve(struct cli_loopback *lb, struct lb_client *c)
{
    struct sockaddr_in peer, us;
    socklen_t pl = sizeof peer, ul = sizeof us;
    bool root = !strncmp(c->head, "GET / ", 6) || !strncmp(c->head, "GET /? ", 7);
    if (!root || lb->sent) {
        lb__answer(c->fd, 404, "Not Found", NULL, "Nothing here. This latch login has moved on.\n");
        return;
    }
    size_t sl = 0;
    const char *site = lb__header(c->head, "sec-fetch-site:", &sl);
    if (site && !(sl == 4 && !strncmp(site, "none", 4))) {
        lb__answer(c->fd, 403, "Forbidden", NULL, "Open this address from latch, not from a page.\n");
        return;
    }
    long uid = getpeername(c->fd, (struct sockaddr *)&peer, &pl) == 0 && getsockname(c->fd, (struct sockaddr *)&us, &ul) == 0 &&
                       peer.sin_family == AF_INET
                   ? cli_peer_uid(&peer, &us)
                   : -1;
    if (uid < 0 || (uid_t)uid != geteuid()) {
        lb__answer(c->fd, 403, "Forbidden", NULL,
                   "This address belongs to another user's latch login: refused.\n");
        if (uid >= 0)
            fprintf(stderr, "\nlatch: refused a connection from another user (uid %ld) to this login's "
                            "address; if the browser you opened does not go on, run latch again\n", uid);
        else
            fprintf(stderr, "\nlatch: refused a connection to this login's address whose owner latch "
                            "cannot find (another network namespace?)\n");
        return;
    }
    lb__answer(c->fd, 302, "Found", lb->target, "Go on to the gateway.\n");
    lb->sent = true;
}

static void lb__drop(struct lb_client *c)
{
    close(c->fd);
    c->fd = -1;
}

static void *lb__run(void *arg)
{
    struct cli_loopback *lb = arg;
    for (;;) {
        struct pollfd pf[LB_CLIENTS + 2];
        int map[LB_CLIENTS + 2], n = 0;
        pf[n] = (struct pollfd){ .fd = lb->stop[0], .events = POLLIN };
        map[n++] = -2;
        pf[n] = (struct pollfd){ .fd = lb->listen_fd, .events = POLLIN };
        map[n++] = -1;
        for (int i = 0; i < LB_CLIENTS; i++)
            if (lb->clients[i].fd >= 0) {
                pf[n] = (struct pollfd){ .fd = lb->clients[i].fd, .events = POLLIN };
                map[n++] = i;
            }
        if (poll(pf, (nfds_t)n, 500) < 0 && errno != EINTR)
            return NULL;
        if (pf[0].revents)
            return NULL;
        long long now = lb__now_ms();
        for (int k = 2; k < n; k++) {
            struct lb_client *c = &lb->clients[map[k]];
            if (pf[k].revents) {
                ssize_t got = read(c->fd, c->head + c->len, sizeof c->head - 1 - c->len);
                if (got <= 0) {
                    lb__drop(c);
                    continue;
                }
                c->len += (size_t)got;
                c->head[c->len] = '\0';
                if (strstr(c->head, "\r\n\r\n") || strstr(c->head, "\n\n") || c->len == sizeof c->head - 1) {
                    lb__serve(lb, c);
                    lb__drop(c);
                }
            } else if (now - c->since_ms > LB_HEAD_MS) {
                lb__drop(c); /* a slow or silent client holds no slot for long */
            }
        }
        if (pf[1].revents) {
            int fd = accept4(lb->listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd < 0)
                continue;
            struct lb_client *c = NULL;
            for (int i = 0; i < LB_CLIENTS && !c; i++)
                if (lb->clients[i].fd < 0)
                    c = &lb->clients[i];
            if (!c) {
                close(fd);
                continue;
            }
            c->fd = fd;
            c->len = 0;
            c->since_ms = now;
        }
    }
}

struct cli_loopback *cli_loopback_start(const char *target, char *url, size_t cap)
{
    struct cli_loopback *lb = calloc(1, sizeof *lb);
    if (!lb)
        return NULL;
    for (int i = 0; i < LB_CLIENTS; i++)
        lb->clients[i].fd = -1;
    lb->stop[0] = lb->stop[1] = -1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof a;
    lb->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    lb->target = strdup(target);
    if (lb->listen_fd < 0 || !lb->target || bind(lb->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(lb->listen_fd, 16) != 0 || getsockname(lb->listen_fd, (struct sockaddr *)&a, &al) != 0 ||
        pipe2(lb->stop, O_CLOEXEC) != 0)
        goto fail;
    /* the owner check needs /proc/net/tcp: without it, no redirector (the URL is printed) */
    FILE *f = fopen("/proc/net/tcp", "r");
    if (!f)
        goto fail;
    fclose(f);
    if (pthread_create(&lb->thread, NULL, lb__run, lb) != 0)
        goto fail;
    snprintf(url, cap, "http://127.0.0.1:%u/", ntohs(a.sin_port));
    return lb;
fail:
    if (lb->listen_fd >= 0)
        close(lb->listen_fd);
    if (lb->stop[0] >= 0) {
        close(lb->stop[0]);
        close(lb->stop[1]);
    }
    free(lb->target);
    free(lb);
    return NULL;
}

void cli_loopback_stop(struct cli_loopback *lb)
{
    if (!lb)
        return;
    if (write(lb->stop[1], "x", 1) < 0) {
    }
    pthread_join(lb->thread, NULL);
    for (int i = 0; i < LB_CLIENTS; i++)
        if (lb->clients[i].fd >= 0)
            close(lb->clients[i].fd);
    close(lb->listen_fd);
    close(lb->stop[0]);
    close(lb->stop[1]);
    free(lb->target);
    free(lb);
}
