/* latchd's admin subcommands (SPEC.md §2): each takes --config FILE. status, reload, revoke and
 * keys rotate ask the running daemon through its control socket (state_dir/admin.sock,
 * server/control_socket.h); without a daemon, revoke and keys rotate work on state_dir directly
 * (a daemon started later, or one that watches state_dir, picks the change up) and status and
 * reload say it is not running. */
#ifndef LATCH_ADMIN_H
#define LATCH_ADMIN_H

#include "admin/args.h"

/* Each returns the process exit status (core/exitcode.h: LATCH_EXIT_*) for a parsed command line. */
int admin_check(const struct admin_args *a);
int admin_token_issue(const struct admin_args *a);
int admin_keys_rotate(const struct admin_args *a);
int admin_revoke(const struct admin_args *a);
int admin_service_token_create(const struct admin_args *a);
int admin_policy_test(const struct admin_args *a);
/* ssh-ca --app NAME: the app's SSH user CA (made on first use, shared like the signing keys),
 * printed as the line sshd's TrustedUserCAKeys takes; works on state_dir, daemon or not. */
int admin_ssh_ca(const struct admin_args *a);
/* status [--json] and reload: exit 0 ok, 1 not running or failed, 2 reload errors. */
int admin_status(const struct admin_args *a);
int admin_reload(const struct admin_args *a);

#endif
