/* sd_notify(3) datagrams to $NOTIFY_SOCKET, without linking libsystemd (notify.h). */
#include "server/notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void notify_open(struct notifier *n)
{
    memset(n, 0, sizeof *n);
    n->fd = -1;
    const char *env = getenv("NOTIFY_SOCKET");
    if (!env)
        return;
    size_t len = strlen(env);
    /* "@name" is the abstract namespace (a leading NUL); anything else must be an absolute path */
    if (len < 2 || len >= sizeof n->addr.sun_path || (env[0] != '/' && env[0] != '@'))
        goto out;
    n->addr.sun_family = AF_UNIX;
    memcpy(n->addr.sun_path, env, len);
    if (env[0] == '@')
        n->addr.sun_path[0] = '\0';
    n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (env[0] == '@' ? 0 : 1));
    n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
out:
    unsetenv("NOTIFY_SOCKET");
}

void notify_close(struct notifier *n)
{
    if (n->fd >= 0)
        close(n->fd);
    n->fd = -1;
}

int notify_send(const struct notifier *n, const char *fmt, ...)
{
    if (n->fd < 0)
        return 0;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof msg)
        return -EMSGSIZE;
    ssize_t w = sendto(n->fd, msg, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT,
                       (const struct sockaddr *)&n->addr, n->addrlen);
    return w == len ? 0 : -errno;
}

unsigned long long notify_monotonic_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL;
}
