/* The service manager's readiness protocol (sd_notify(3)) without libsystemd: datagrams such as
 * "READY=1" written to the AF_UNIX socket named by $NOTIFY_SOCKET. */
#ifndef LATCH_NOTIFY_H
#define LATCH_NOTIFY_H

#include <sys/socket.h>
#include <sys/un.h>

struct notifier {
    int fd;                  /* -1: no service manager listens (every send is a no-op) */
    struct sockaddr_un addr;
    socklen_t addrlen;
};

/* Reads $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace) and removes it from the
 * environment, so that nothing latchd might spawn talks to the service manager in its name.
 * Call before any thread starts (setenv/unsetenv are not thread-safe). An unset or unusable
 * variable leaves n->fd at -1. */
void notify_open(struct notifier *n);
void notify_close(struct notifier *n);

/* Sends one datagram of newline-separated assignments ("RELOADING=1\nMONOTONIC_USEC=…").
 * Never blocks: a service manager that does not read loses the message, latchd goes on.
 * 0, or a negative errno. Safe from several threads. */
int notify_send(const struct notifier *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* CLOCK_MONOTONIC in microseconds, as MONOTONIC_USEC= wants it. */
unsigned long long notify_monotonic_usec(void);

#endif
