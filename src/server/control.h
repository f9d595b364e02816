/* The daemon's side of the control socket (server/control_socket.h): state_dir/admin.sock,
 * mode 0600, served by a thread of its own (never by the workers), for root and latchd's own
 * user only. */
#ifndef LATCH_CONTROL_H
#define LATCH_CONTROL_H

struct server;
struct control;

/* Claims state_dir for this daemon before anything else uses it: takes state_dir/latchd.lock
 * (held for the daemon's life; the kernel releases it when a process dies), removes an admin
 * socket a killed daemon left behind, and binds a new one (0600 from its first instant).
 * Refuses, with *err (malloc'd), while another live latchd uses the same state_dir. */
struct control *control_claim(const char *state_dir, char **err);

/* Starts serving the socket for srv in a thread of its own. 0, or a negative errno. */
int control_start(struct control *c, struct server *srv);

/* Stops the thread (a command in progress finishes; idle clients are closed), removes the
 * socket file and releases the lock. NULL is a no-op. */
void control_stop(struct control *c);

#endif
