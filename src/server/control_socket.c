/* The control socket's address, framing and client side (control_socket.h). */
#include "server/control_socket.h"

#include "core/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int control_socket_addr(const char *state_dir, struct sockaddr_un *sa, socklen_t *len, int *dirfd)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    *dirfd = -1;
    int n = snprintf(sa->sun_path, sizeof sa->sun_path, "%s/%s", state_dir, CONTROL_SOCKET_NAME);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n >= sizeof sa->sun_path) {
        /* sun_path holds 107 characters: reach a deeper directory through its descriptor */
        *dirfd = open(state_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (*dirfd < 0)
            return -errno;
        n = snprintf(sa->sun_path, sizeof sa->sun_path, "/proc/self/fd/%d/%s", *dirfd,
                     CONTROL_SOCKET_NAME);
    }
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
    return 0;
}

int control_socket_connect(const char *state_dir)
{
    struct sockaddr_un sa;
    socklen_t len;
    int dirfd;
    int rc = control_socket_addr(state_dir, &sa, &len, &dirfd);
    if (rc != 0)
        return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
    } else if (connect(fd, (struct sockaddr *)&sa, len) != 0) {
        rc = -errno;
        close(fd);
    } else {
        rc = fd;
    }
    if (dirfd >= 0)
        close(dirfd);
    return rc;
}

json_t *control_reply_error(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return json_pack("{s:b,s:s}", "ok", 0, "error", msg);
}

static char *socket__errf(const char *what, int e)
{
    char *s = NULL;
    if (asprintf(&s, "%s%s%s", what, e ? ": " : "", e ? strerror(e) : "") < 0)
        return NULL;
    return s;
}

/* Waits for `events` on fd until the deadline (monotonic ms). 1 ready, 0 timed out, -errno. */
static int socket__wait(int fd, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = loop_clock_ms();
        if (now >= deadline)
            return 0;
        struct pollfd p = { .fd = fd, .events = events };
        int rc = poll(&p, 1, (int)(deadline - now));
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return -errno;
    }
}

json_t *control_socket_call(int fd, const json_t *req, int timeout_ms, char **err)
{
    json_t *reply = NULL;
    char *line = NULL, *buf = NULL, *body = json_dumps(req, JSON_COMPACT);
    int n = body ? asprintf(&line, "%s\n", body) : -1;
    free(body);
    if (n < 0) {
        line = NULL;
        *err = socket__errf("out of memory", 0);
        goto out;
    }
    size_t off = 0;
    uint64_t deadline = loop_clock_ms() + (uint64_t)timeout_ms;
    while (off < (size_t)n) {
        int rc = socket__wait(fd, POLLOUT, deadline);
        if (rc <= 0) {
            *err = socket__errf(rc == 0 ? "latchd did not take the request in time" : "cannot send",
                                rc < 0 ? -rc : 0);
            goto out;
        }
        ssize_t w = send(fd, line + off, (size_t)n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            *err = socket__errf("cannot send the request to latchd", errno);
            goto out;
        }
        if (w > 0)
            off += (size_t)w;
    }
    /* one reply line: a status with many keys stays far below 1 MiB */
    size_t cap = 1 << 20, len = 0;
    buf = malloc(cap);
    if (!buf) {
        *err = socket__errf("out of memory", 0);
        goto out;
    }
    for (;;) {
        int rc = socket__wait(fd, POLLIN, deadline);
        if (rc <= 0) {
            *err = socket__errf(rc == 0 ? "latchd did not answer in time" : "cannot read the answer",
                                rc < 0 ? -rc : 0);
            goto out;
        }
        ssize_t r = recv(fd, buf + len, cap - len, MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r <= 0) {
            *err = socket__errf("latchd closed the admin connection without an answer",
                                r < 0 ? errno : 0);
            goto out;
        }
        char *nl = memchr(buf + len, '\n', (size_t)r);
        len += (size_t)r;
        if (nl) {
            json_error_t je;
            reply = json_loadb(buf, (size_t)(nl - buf), 0, &je);
            if (!json_is_object(reply)) {
                json_decref(reply);
                reply = NULL;
                *err = socket__errf("latchd answered something that is not a JSON object", 0);
            }
            goto out;
        }
        if (len == cap) {
            *err = socket__errf("latchd's answer is too long", 0);
            goto out;
        }
    }
out:
    free(line);
    free(buf);
    return reply;
}
