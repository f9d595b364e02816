/* latchd's admin subcommands (SPEC.md §2): each takes --config FILE. status, reload, revoke and
 * keys rotate ask the running daemon through its admin socket (state_dir/admin.sock); without
 * a daemon, revoke and keys rotate work on state_dir directly (a daemon started later, or one
 * that watches state_dir, picks the change up) and status and reload say it is not running. */
#ifndef LATCH_ADMIN_H
#define LATCH_ADMIN_H

/* Each returns the process exit status; argv holds the options after the command words. */
int admin_check(const char *config, int argc, char **argv);
int admin_token_issue(const char *config, int argc, char **argv);
int admin_keys_rotate(const char *config, int argc, char **argv);
int admin_revoke(const char *config, int argc, char **argv);
int admin_service_token_create(const char *config, int argc, char **argv);
int admin_policy_test(const char *config, int argc, char **argv);
/* status [--json] and reload: exit 0 ok, 1 not running or failed, 2 reload errors. */
int admin_status(const char *config, int argc, char **argv);
int admin_reload(const char *config, int argc, char **argv);

#endif
