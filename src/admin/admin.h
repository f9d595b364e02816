/* latchd's admin subcommands (SPEC.md §2): each takes --config FILE and works on the state
 * directory the running daemon watches, so it takes effect there within a second. */
#ifndef LATCH_ADMIN_H
#define LATCH_ADMIN_H

/* Each returns the process exit status; argv holds the options after the command words. */
int admin_check(const char *config, int argc, char **argv);
int admin_token_issue(const char *config, int argc, char **argv);
int admin_keys_rotate(const char *config, int argc, char **argv);
int admin_revoke(const char *config, int argc, char **argv);
int admin_service_token_create(const char *config, int argc, char **argv);
int admin_policy_test(const char *config, int argc, char **argv);

#endif
