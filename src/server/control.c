/* The control socket's server (control.h): one thread polls the listening socket, an eventfd that
 * stops it, and at most CONTROL_MAX_CLIENTS clients. Every client has a deadline, so one that
 * connects and says nothing, or never reads its answer, holds its own slot for a while and
 * never another client or the daemon's shutdown. Commands run on this thread, one at a time;
 * those that change state do it under srv->control and answer once every worker uses the
 * change. */
#include "server/control.h"

#include "server/control_ops.h"
#include "server/control_socket.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/version.h"
#include "server/server.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CONTROL_MAX_CLIENTS 16
#define CONTROL_CLIENT_MS 10000 /* a request must arrive, and its answer leave, within this */
#define CONTROL_LINGER_MS 1000
#define CONTROL_ACCEPT_PAUSE_MS 100 /* accept(2) ran out of descriptors: try again then */
#define CONTROL_LOCK_NAME "latchd.lock"

struct control_client {
    int fd;
    uid_t uid;
    char in[CONTROL_MAX_REQUEST];
    size_t inlen;
    char *out; /* the answer being written (one line) */
    size_t outlen, outoff;
    bool close_after; /* once the answer is out: a refused peer, an over-long request, EOF */
    bool lingering;   /* answered and shut for writing: reading what the client still sends, so
                         that closing does not reset the connection before it read the answer */
    uint64_t deadline; /* monotonic ms */
};

struct control {
    char *state_dir;
    int dir_fd, lock_fd, listen_fd, wake_fd;
    ino_t sock_ino; /* the socket file we made: removed at exit only if still ours */
    pthread_t thread;
    bool running;
    struct server *srv;
    struct control_client clients[CONTROL_MAX_CLIENTS];
    size_t nclients;
    uint64_t accept_pause_until; /* out of descriptors: the listener is not polled until then */
};

static char *control__errf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *control__errf(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

static void control__free(struct control *c)
{
    if (!c)
        return;
    if (c->listen_fd >= 0)
        close(c->listen_fd);
    if (c->wake_fd >= 0)
        close(c->wake_fd);
    if (c->dir_fd >= 0)
        close(c->dir_fd);
    if (c->lock_fd >= 0)
        close(c->lock_fd); /* releases the lock */
    free(c->state_dir);
    free(c);
}

/* Takes state_dir/latchd.lock and writes our pid in it; names the holder when it is taken. */
static int control__lock(struct control *c, char **err)
{
    c->lock_fd = openat(c->dir_fd, CONTROL_LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (c->lock_fd < 0) {
        *err = control__errf("cannot open %s/%s: %s", c->state_dir, CONTROL_LOCK_NAME, strerror(errno));
        return -1;
    }
    if (flock(c->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(c->lock_fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        *err = control__errf("another latchd%s%s%s is running with state_dir %s (it answers on "
                             "%s/%s): stop it first, or give this one a state_dir of its own",
                             *pid ? " (pid " : "", pid, *pid ? ")" : "", c->state_dir,
                             c->state_dir, CONTROL_SOCKET_NAME);
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(c->lock_fd, 0) != 0 || pwrite(c->lock_fd, pid, (size_t)n, 0) != n) {
        /* the pid is a courtesy for the message above; the lock is what counts */
    }
    return 0;
}

/* With the lock held: a socket file still there was left by a daemon that did not exit cleanly
 * (SIGKILL, a crash). It is removed when nothing answers on it (ECONNREFUSED). */
static int control__remove_stale(struct control *c, char **err)
{
    struct stat st;
    if (fstatat(c->dir_fd, CONTROL_SOCKET_NAME, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? 0 : (*err = control__errf("%s/%s: %s", c->state_dir,
                                                           CONTROL_SOCKET_NAME, strerror(errno)), -1);
    if (!S_ISSOCK(st.st_mode)) {
        *err = control__errf("%s/%s exists and is not a socket: remove it", c->state_dir,
                             CONTROL_SOCKET_NAME);
        return -1;
    }
    int fd = control_socket_connect(c->state_dir);
    if (fd >= 0) {
        close(fd);
        *err = control__errf("another latchd answers on %s/%s: stop it first, or give this one a "
                             "state_dir of its own", c->state_dir, CONTROL_SOCKET_NAME);
        return -1;
    }
    if (fd != -ECONNREFUSED) {
        *err = control__errf("cannot tell whether a latchd answers on %s/%s: %s", c->state_dir,
                             CONTROL_SOCKET_NAME, strerror(-fd));
        return -1;
    }
    if (unlinkat(c->dir_fd, CONTROL_SOCKET_NAME, 0) != 0 && errno != ENOENT) {
        *err = control__errf("cannot remove the stale %s/%s: %s", c->state_dir, CONTROL_SOCKET_NAME,
                             strerror(errno));
        return -1;
    }
    log_msg("warn", "removed %s/%s, left by a latchd that did not exit cleanly", c->state_dir,
            CONTROL_SOCKET_NAME);
    return 0;
}

static int control__bind(struct control *c, char **err)
{
    struct sockaddr_un sa;
    socklen_t len;
    int dirfd = -1, rc = control_socket_addr(c->state_dir, &sa, &len, &dirfd);
    if (rc == 0) {
        c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        /* af_unix gives the new file the mode of the socket's own inode less the umask: set to
         * 0600 before bind, the file is never wider, whatever the umask */
        if (c->listen_fd < 0 || fchmod(c->listen_fd, 0600) != 0 ||
            bind(c->listen_fd, (struct sockaddr *)&sa, len) != 0 || listen(c->listen_fd, 16) != 0)
            rc = -errno;
    }
    if (dirfd >= 0)
        close(dirfd);
    struct stat st;
    if (rc == 0 && fstatat(c->dir_fd, CONTROL_SOCKET_NAME, &st, AT_SYMLINK_NOFOLLOW) != 0)
        rc = -errno;
    if (rc != 0) {
        *err = control__errf("cannot make the admin socket %s/%s: %s", c->state_dir,
                             CONTROL_SOCKET_NAME, strerror(-rc));
        return -1;
    }
    c->sock_ino = st.st_ino;
    return 0;
}

struct control *control_claim(const char *state_dir, char **err)
{
    struct control *c = calloc(1, sizeof *c);
    if (!c || !(c->state_dir = strdup(state_dir))) {
        free(c);
        *err = control__errf("out of memory");
        return NULL;
    }
    c->lock_fd = c->listen_fd = c->wake_fd = -1;
    c->dir_fd = open(state_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (c->dir_fd < 0) {
        *err = control__errf("cannot open state_dir %s: %s", state_dir, strerror(errno));
        goto fail;
    }
    if (control__lock(c, err) != 0 || control__remove_stale(c, err) != 0 || control__bind(c, err) != 0)
        goto fail;
    c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->wake_fd < 0) {
        *err = control__errf("eventfd: %s", strerror(errno));
        goto fail;
    }
    return c;
fail:
    if (c->sock_ino)
        unlinkat(c->dir_fd, CONTROL_SOCKET_NAME, 0);
    control__free(c);
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* commands */

static json_t *control__errors(const struct config_errors *errs)
{
    json_t *a = json_array();
    for (size_t i = 0; i < errs->n; i++)
        json_array_append_new(a, json_string(errs->lines[i]));
    return a;
}

static json_t *control__status(struct server *srv)
{
    pthread_mutex_lock(&srv->lock);
    struct runtime *rt = srv->rt;
    struct keyset *ks = srv->keys;
    struct revocations *rev = srv->rev;
    runtime_ref(rt);
    keyset_ref(ks);
    revocations_ref(rev);
    uint64_t gen = srv->config_gen;
    json_t *last = json_null();
    if (srv->last_reload.done)
        last = json_pack("{s:b,s:o,s:o}", "ok", srv->last_reload.ok, "at",
                         control_time_json(srv->last_reload.at), "errors",
                         control__errors(&srv->last_reload.errors));
    pthread_mutex_unlock(&srv->lock);
    time_t now = time(NULL);
    json_t *r = json_pack("{s:b,s:i,s:s,s:I,s:s,s:s,s:i,s:i,s:{s:s,s:b},s:o,s:I,s:I,s:o,s:b}",
                          "ok", 1, "pid", (int)getpid(), "version", LATCH_VERSION, "uptime_s",
                          (json_int_t)((loop_clock_ms() - srv->started_ms) / 1000), "config",
                          srv->config_abs ? srv->config_abs : srv->config_path, "state_dir",
                          rt->cfg->state_dir, "workers", (int)srv->nworkers, "connections",
                          (int)server_connections(srv), "store", "backend",
                          store_backend(srv->store), "up", store_up(srv->store) == 1, "keys",
                          control_keys_json(ks, now), "revocations",
                          (json_int_t)control_revocations_count(rev), "config_generation",
                          (json_int_t)gen, "last_reload", last, "draining",
                          atomic_load(&srv->draining));
    runtime_unref(rt);
    keyset_unref(ks);
    revocations_unref(rev);
    return r;
}

static json_t *control__reload(struct server *srv)
{
    struct config_errors errs = { 0 };
    json_t *r;
    if (server_reload(srv, &errs) == 0) {
        pthread_mutex_lock(&srv->lock);
        uint64_t gen = srv->config_gen;
        pthread_mutex_unlock(&srv->lock);
        r = json_pack("{s:b,s:s,s:I}", "ok", 1, "config", srv->config_abs ? srv->config_abs
                      : srv->config_path, "config_generation", (json_int_t)gen);
    } else {
        r = json_pack("{s:b,s:s,s:o}", "ok", 0, "error",
                      "the configuration has errors: the running one is kept", "errors",
                      control__errors(&errs));
    }
    config_errors_clear(&errs);
    return r;
}

/* revoke and keys rotate: the shared operation on the running runtime, then published. */
static json_t *control__change(struct server *srv, const char *cmd, const json_t *req)
{
    struct keyset *ks = NULL;
    struct revocations *rev = NULL;
    pthread_mutex_lock(&srv->control);
    struct runtime *rt = server_runtime(srv);
    json_t *r = !strcmp(cmd, CONTROL_CMD_REVOKE) ? control_op_revoke(rt, req, &rev)
                                               : control_op_keys_rotate(rt, &ks);
    if (ks || rev)
        server_publish(srv, ks, rev);
    pthread_mutex_unlock(&srv->control);
    runtime_unref(rt);
    if (json_is_true(json_object_get(r, "ok")))
        json_object_set_new(r, "pid", json_integer(getpid()));
    return r;
}

static json_t *control__dispatch(struct server *srv, const char *line, size_t len, uid_t uid)
{
    json_error_t je;
    json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    json_t *r;
    const char *cmd = json_string_value(json_object_get(req, "cmd"));
    if (!req)
        r = control_reply_error("not JSON (%s): send one JSON object per line, e.g. "
                              "{\"cmd\":\"status\"}", je.text);
    else if (!json_is_object(req) || !cmd)
        r = control_reply_error("a request is a JSON object with a \"cmd\" string");
    else if (!strcmp(cmd, CONTROL_CMD_STATUS))
        r = control__status(srv);
    else if (!strcmp(cmd, CONTROL_CMD_RELOAD))
        r = control__reload(srv);
    else if (!strcmp(cmd, CONTROL_CMD_REVOKE) || !strcmp(cmd, CONTROL_CMD_KEYS_ROTATE))
        r = control__change(srv, cmd, req);
    else
        r = control_reply_error("unknown command '%.64s' (known: %s, %s, %s, %s)", cmd,
                              CONTROL_CMD_STATUS, CONTROL_CMD_RELOAD, CONTROL_CMD_REVOKE,
                              CONTROL_CMD_KEYS_ROTATE);
    const char *error = json_string_value(json_object_get(r, "error"));
    if (cmd && strcmp(cmd, CONTROL_CMD_STATUS))
        log_msg("info", "admin socket: %.64s by uid %u: %s", cmd, (unsigned)uid,
                json_is_true(json_object_get(r, "ok")) ? "done" : error ? error : "failed");
    json_decref(req);
    return r;
}

/* ---------------------------------------------------------------------------------------- */
/* clients */

static void control__answer(struct control_client *cl, json_t *reply)
{
    char *s = json_dumps(reply, JSON_COMPACT);
    json_decref(reply);
    free(cl->out);
    cl->out = NULL;
    if (!s || asprintf(&cl->out, "%s\n", s) < 0) {
        cl->out = NULL;
        cl->close_after = true;
    }
    free(s);
    cl->outlen = cl->out ? strlen(cl->out) : 0;
    cl->outoff = 0;
    cl->deadline = loop_clock_ms() + CONTROL_CLIENT_MS;
}

/* Answers complete lines while no answer is waiting to be written. */
static void control__requests(struct control *c, struct control_client *cl, bool eof)
{
    while (!cl->out && !cl->close_after) {
        char *nl = memchr(cl->in, '\n', cl->inlen);
        size_t len = nl ? (size_t)(nl - cl->in) : cl->inlen;
        if (!nl && cl->inlen == sizeof cl->in) {
            control__answer(cl, control_reply_error("request longer than %d bytes", CONTROL_MAX_REQUEST));
            cl->close_after = true; /* no way to find where the next request starts */
            return;
        }
        if (!nl && !(eof && cl->inlen)) {
            if (eof)
                cl->close_after = true;
            return;
        }
        size_t blank = 0;
        while (blank < len && (cl->in[blank] == ' ' || cl->in[blank] == '\t' || cl->in[blank] == '\r'))
            blank++;
        if (blank < len)
            control__answer(cl, control__dispatch(c->srv, cl->in, len, cl->uid));
        size_t used = nl ? len + 1 : len;
        memmove(cl->in, cl->in + used, cl->inlen - used);
        cl->inlen -= used;
    }
}

/* Writes what it can of the answer. -1: the client is gone. */
static int control__flush(struct control_client *cl)
{
    while (cl->out && cl->outoff < cl->outlen) {
        ssize_t w = send(cl->fd, cl->out + cl->outoff, cl->outlen - cl->outoff, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        cl->outoff += (size_t)w;
    }
    if (cl->out) {
        free(cl->out);
        cl->out = NULL;
        cl->deadline = loop_clock_ms() + CONTROL_CLIENT_MS;
    }
    return 0;
}

static void control__drop(struct control *c, size_t i)
{
    struct control_client *cl = &c->clients[i];
    close(cl->fd);
    free(cl->out);
    c->clients[i] = c->clients[--c->nclients];
}

/* When every slot is taken, the client silent for longest (nothing sent, nothing to answer)
 * makes room: idle connections never lock the others out. False when none is silent. */
static bool control__evict(struct control *c)
{
    size_t victim = CONTROL_MAX_CLIENTS;
    for (size_t i = 0; i < c->nclients; i++) {
        const struct control_client *cl = &c->clients[i];
        if ((cl->inlen == 0 && !cl->out) || cl->lingering)
            if (victim == CONTROL_MAX_CLIENTS || cl->deadline < c->clients[victim].deadline)
                victim = i;
    }
    if (victim == CONTROL_MAX_CLIENTS)
        return false;
    control__drop(c, victim);
    return true;
}

static void control__accept(struct control *c)
{
    for (;;) {
        if (c->nclients == CONTROL_MAX_CLIENTS && !control__evict(c))
            return; /* every slot is busy with a request: the rest wait in the backlog */
        int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            /* the listener stays readable: polling it again at once would spin */
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                c->accept_pause_until = loop_clock_ms() + CONTROL_ACCEPT_PAUSE_MS;
            return;
        }
        struct control_client *cl = &c->clients[c->nclients++];
        *cl = (struct control_client){ .fd = fd };
        cl->deadline = loop_clock_ms() + CONTROL_CLIENT_MS;
        struct ucred cred;
        socklen_t len = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
            cl->uid = (uid_t)-1;
        } else {
            cl->uid = cred.uid;
        }
        /* the socket is 0600; this holds even when someone loosened its mode */
        if (cl->uid != 0 && cl->uid != geteuid()) {
            log_msg("warn", "admin socket: refused uid %d (only root and latchd's uid %u)",
                    (int)cl->uid, (unsigned)geteuid());
            control__answer(cl, control_reply_error("permission denied: only root and latchd's own "
                                                  "user may use the admin socket"));
            cl->close_after = true;
        }
    }
}

/* After the last answer: discard what the client still sends until it closes or a second
 * passed. False when it is to be closed. */
static bool control__linger(struct control_client *cl, uint64_t now)
{
    char sink[4096];
    ssize_t r;
    while ((r = recv(cl->fd, sink, sizeof sink, MSG_DONTWAIT)) > 0) {
    }
    if (r == 0 || (errno != EAGAIN && errno != EINTR))
        return false;
    return now < cl->deadline;
}

/* One client's events: read, answer, write; false when it is to be closed. */
static bool control__serve(struct control *c, struct control_client *cl, short revents, uint64_t now)
{
    if (cl->lingering)
        return control__linger(cl, now);
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
        bool eof = false;
        while (!cl->out && !cl->close_after && cl->inlen < sizeof cl->in) {
            ssize_t r = recv(cl->fd, cl->in + cl->inlen, sizeof cl->in - cl->inlen, MSG_DONTWAIT);
            if (r > 0) {
                cl->inlen += (size_t)r;
                control__requests(c, cl, false);
                continue;
            }
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                break;
            if (r < 0)
                return false;
            eof = true;
            break;
        }
        control__requests(c, cl, eof);
        if (eof && !cl->out)
            return false;
    }
    for (;;) {
        if (control__flush(cl) != 0)
            return false;
        if (cl->out)
            break; /* the client reads slowly: POLLOUT */
        if (cl->close_after) {
            shutdown(cl->fd, SHUT_WR);
            cl->lingering = true;
            cl->deadline = now + CONTROL_LINGER_MS;
            return control__linger(cl, now);
        }
        control__requests(c, cl, false); /* pipelined requests already read */
        if (!cl->out)
            break;
    }
    return now < cl->deadline;
}

static void *control__main(void *arg)
{
    struct control *c = arg;
    struct pollfd pfd[2 + CONTROL_MAX_CLIENTS];
    for (;;) {
        uint64_t now = loop_clock_ms();
        int timeout = 1000;
        pfd[0] = (struct pollfd){ .fd = c->wake_fd, .events = POLLIN };
        bool room = c->nclients < CONTROL_MAX_CLIENTS;
        for (size_t i = 0; i < c->nclients; i++) {
            struct control_client *cl = &c->clients[i];
            room = room || (cl->inlen == 0 && !cl->out) || cl->lingering;
            pfd[2 + i] = (struct pollfd){ .fd = cl->fd,
                                          .events = cl->out && !cl->lingering ? POLLOUT : POLLIN };
            int left = cl->deadline > now ? (int)(cl->deadline - now) : 0;
            if (left < timeout)
                timeout = left;
        }
        /* with every slot busy, or no descriptor to accept with, new clients wait in the
         * backlog (not polled: no busy loop) */
        if (now < c->accept_pause_until) {
            room = false;
            if ((int)(c->accept_pause_until - now) < timeout)
                timeout = (int)(c->accept_pause_until - now);
        }
        pfd[1] = (struct pollfd){ .fd = c->listen_fd, .events = room ? POLLIN : 0 };
        int n = poll(pfd, 2 + c->nclients, timeout);
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0 && pfd[0].revents)
            break;
        now = loop_clock_ms();
        for (size_t i = c->nclients; i-- > 0;) {
            if (!control__serve(c, &c->clients[i], n > 0 ? pfd[2 + i].revents : 0, now))
                control__drop(c, i);
        }
        if (n > 0 && (pfd[1].revents & POLLIN))
            control__accept(c);
    }
    while (c->nclients)
        control__drop(c, c->nclients - 1);
    return NULL;
}

int control_start(struct control *c, struct server *srv)
{
    c->srv = srv;
    int rc = pthread_create(&c->thread, NULL, control__main, c);
    if (rc != 0)
        return -rc;
    c->running = true;
    return 0;
}

void control_stop(struct control *c)
{
    if (!c)
        return;
    if (c->running) {
        uint64_t one = 1;
        if (write(c->wake_fd, &one, sizeof one) < 0) {
            /* an eventfd write fails only when saturated: the thread is woken anyway */
        }
        pthread_join(c->thread, NULL);
        c->running = false;
    }
    struct stat st;
    if (c->sock_ino && fstatat(c->dir_fd, CONTROL_SOCKET_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        st.st_ino == c->sock_ino)
        unlinkat(c->dir_fd, CONTROL_SOCKET_NAME, 0);
    control__free(c);
}
