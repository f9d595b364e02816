/* The control socket (SPEC.md §2 calls it the admin socket): state_dir/admin.sock, where a
 * running latchd answers latchd's subcommands (src/admin/). One JSON object per line in, one
 * JSON object per line out:
 *
 *   {"cmd":"status"}                       -> {"ok":true,"pid":…,"version":…,…}
 *   {"cmd":"reload"}                       -> {"ok":true} | {"ok":false,"errors":["FILE:LINE:COL: …"]}
 *   {"cmd":"revoke","email":"a@b"}         -> {"ok":true,"revoked":"email","key":"a@b","before":T}
 *   {"cmd":"revoke","app":"NAME"}
 *   {"cmd":"keys rotate"}                  -> {"ok":true,"kid":"…","keys":[…]}
 *
 * Any failure is {"ok":false,"error":"…"} (plus "errors" for a refused reload). The names are
 * defined here once, for the daemon's server (server/control.c) and the command line's client. */
#ifndef LATCH_CONTROL_SOCKET_H
#define LATCH_CONTROL_SOCKET_H

#include <jansson.h>
#include <sys/socket.h>
#include <sys/un.h>

#define CONTROL_SOCKET_NAME "admin.sock"
#define CONTROL_MAX_REQUEST 8192          /* one request line, newline included */
#define CONTROL_CMD_STATUS "status"
#define CONTROL_CMD_RELOAD "reload"
#define CONTROL_CMD_REVOKE "revoke"
#define CONTROL_CMD_KEYS_ROTATE "keys rotate"

/* The socket's address for state_dir. A path longer than sun_path allows is reached through
 * /proc/self/fd/N of the directory, opened into *dirfd (close it once bound or connected; -1
 * when not needed). 0, or a negative errno. */
int control_socket_addr(const char *state_dir, struct sockaddr_un *sa, socklen_t *len, int *dirfd);

/* Connects to state_dir/admin.sock. The fd, or a negative errno: -ENOENT (no socket file) and
 * -ECONNREFUSED (a file a killed daemon left behind) both mean that no daemon runs there. */
int control_socket_connect(const char *state_dir);

/* Sends `req` as one line and reads one reply line within timeout_ms. The reply, or NULL with
 * *err (malloc'd): the daemon closed, did not answer in time, or answered something not JSON. */
json_t *control_socket_call(int fd, const json_t *req, int timeout_ms, char **err);

/* {"ok":false,"error":"…"} */
json_t *control_reply_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
