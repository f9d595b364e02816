/* Log sinks, time stamps and operational messages of log.h. */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_PIPE_CHUNK 4096 /* PIPE_BUF: writes up to this size are atomic on pipes */

struct log_sink {
    int fd;
    bool off, is_file, owned;
    char *path;
};

struct log_sink *log_sink_open(const char *target)
{
    struct log_sink *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (!target || !strcmp(target, "stdout")) {
        s->fd = 1;
    } else if (!strcmp(target, "stderr")) {
        s->fd = 2;
    } else if (!strcmp(target, "off")) {
        s->off = true;
        s->fd = -1;
    } else {
        s->fd = open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (s->fd < 0) {
            free(s);
            return NULL;
        }
        s->path = strdup(target);
        s->owned = true;
    }
    struct stat st;
    s->is_file = s->fd >= 0 && fstat(s->fd, &st) == 0 && S_ISREG(st.st_mode);
    return s;
}

int log_sink_reopen(struct log_sink *s)
{
    if (!s || !s->path)
        return 0;
    int fd = open(s->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    /* dup2 swaps the file under the same descriptor number: writers never see a closed fd. */
    int rc = dup2(fd, s->fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

void log_sink_close(struct log_sink *s)
{
    if (!s)
        return;
    if (s->owned)
        close(s->fd);
    free(s->path);
    free(s);
}

bool log_sink_off(const struct log_sink *s)
{
    return !s || s->off;
}

static void log__write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* a full disk or a closed pipe must not stop the gateway */
        }
        p += w;
        n -= (size_t)w;
    }
}

void log_write(struct log_sink *s, const char *data, size_t n)
{
    if (log_sink_off(s) || n == 0)
        return;
    if (s->is_file) { /* O_APPEND writes to a regular file do not interleave */
        log__write_all(s->fd, data, n);
        return;
    }
    /* Pipes and terminals: chunks that end at a line boundary and stay atomic. */
    while (n > 0) {
        size_t chunk = n;
        if (chunk > LOG_PIPE_CHUNK) {
            chunk = LOG_PIPE_CHUNK;
            while (chunk > 0 && data[chunk - 1] != '\n')
                chunk--;
            if (chunk == 0) { /* one line longer than PIPE_BUF: write it whole */
                const char *nl = memchr(data, '\n', n);
                chunk = nl ? (size_t)(nl - data) + 1 : n;
            }
        }
        log__write_all(s->fd, data, chunk);
        data += chunk;
        n -= chunk;
    }
}

void log_time_now(char out[32])
{
    static _Thread_local time_t cached_sec = -1;
    static _Thread_local char cached[24];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_sec) { /* the date part changes once a second */
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
        cached_sec = ts.tv_sec;
    }
    unsigned ms = (unsigned)(ts.tv_nsec / 1000000);
    memcpy(out, cached, 19);
    out[19] = '.';
    out[20] = (char)('0' + ms / 100);
    out[21] = (char)('0' + ms / 10 % 10);
    out[22] = (char)('0' + ms % 10);
    out[23] = 'Z';
    out[24] = '\0';
}

void log_msg(const char *level, const char *fmt, ...)
{
    char msg[2048], ts[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_time_now(ts);
    struct strbuf sb;
    sb_init(&sb, 16384);
    bool first = true;
    sb_adds(&sb, "{");
    sb_json_kv(&sb, &first, "time", ts, strlen(ts));
    sb_json_kv(&sb, &first, "level", level, strlen(level));
    sb_json_kv(&sb, &first, "msg", msg, strlen(msg));
    sb_adds(&sb, "}\n");
    if (!sb.overflow)
        log__write_all(2, sb.p, sb.len);
    sb_free(&sb);
}

static void log__kv(struct strbuf *sb, bool *first, const char *k, const char *v)
{
    sb_json_kv(sb, first, k, v, v ? strlen(v) : 0);
}

void log_auth(struct log_sink *s, const char *event, const char *email, const char *idp,
              const char *app, const char *client_ip, bool allowed, const char *reason)
{
    log_auth_fields(s, event, email, idp, app, client_ip, allowed, reason, NULL, 0);
}

void log_auth_fields(struct log_sink *s, const char *event, const char *email, const char *idp,
                     const char *app, const char *client_ip, bool allowed, const char *reason,
                     const struct log_field *extra, size_t nextra)
{
    if (log_sink_off(s))
        return;
    char ts[32];
    log_time_now(ts);
    struct strbuf sb;
    sb_init(&sb, 65536);
    bool first = true;
    sb_adds(&sb, "{");
    log__kv(&sb, &first, "time", ts);
    log__kv(&sb, &first, "event", event);
    log__kv(&sb, &first, "email", email);
    log__kv(&sb, &first, "idp", idp);
    log__kv(&sb, &first, "app", app);
    log__kv(&sb, &first, "client_ip", client_ip);
    sb_json_key(&sb, &first, "allowed");
    sb_adds(&sb, allowed ? "true" : "false");
    log__kv(&sb, &first, "reason", reason);
    for (size_t i = 0; i < nextra; i++) {
        if (!extra[i].is_num) {
            log__kv(&sb, &first, extra[i].key, extra[i].str);
        } else {
            sb_json_key(&sb, &first, extra[i].key);
            sb_addf(&sb, "%lld", (long long)extra[i].num);
        }
    }
    sb_adds(&sb, "}\n");
    if (!sb.overflow)
        log_write(s, sb.p, sb.len);
    sb_free(&sb);
}
