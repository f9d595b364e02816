/* Log sinks (SPEC.md §9): one JSON object per line to stdout, stderr or a file that SIGUSR1
 * reopens. Workers format lines into their own buffer and hand whole lines to log_write, so
 * lines never interleave. Operational messages (start, reload, errors) go to stderr. */
#ifndef LATCH_LOG_H
#define LATCH_LOG_H

#include "core/strbuf.h"

#include <stdbool.h>
#include <stdint.h>

struct log_sink;

/* "stdout", "stderr", "off" or a path (opened O_APPEND, created 0640). NULL with errno. */
struct log_sink *log_sink_open(const char *target);
/* Reopens a file sink in place (after logrotate renamed it); no-op for stdout/stderr. */
int log_sink_reopen(struct log_sink *s);
void log_sink_close(struct log_sink *s);
bool log_sink_off(const struct log_sink *s);
/* Writes whole lines (data must end with '\n'). */
void log_write(struct log_sink *s, const char *data, size_t n);

/* RFC 3339 UTC with milliseconds: "2026-11-28T18:03:04.123Z" (24 chars + NUL). */
void log_time_now(char out[32]);

/* An auth event (SPEC.md §9): time, event, email, idp, app, client_ip, allowed, reason.
 * NULL strings are written as null. Never pass a secret. */
void log_auth(struct log_sink *s, const char *event, const char *email, const char *idp,
              const char *app, const char *client_ip, bool allowed, const char *reason);

/* An event's own fields after log_auth's (an SSH certificate's serial, principals…): a string
 * (NULL: null), or the number `num` when `is_num`. */
struct log_field {
    const char *key;
    const char *str;
    int64_t num;
    bool is_num;
};
void log_auth_fields(struct log_sink *s, const char *event, const char *email, const char *idp,
                     const char *app, const char *client_ip, bool allowed, const char *reason,
                     const struct log_field *extra, size_t nextra);

/* Operational line on stderr: {"time","level","msg"}. */
void log_msg(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
