/* Revocations (SPEC.md §5): "every token of this user (or app, or session) issued before T is
 * refused". Kept in state_dir/revocations.json, changed under an flock by `latchd revoke`,
 * watched by the daemon, which publishes a new immutable list within a second. */
#ifndef LATCH_REVOKE_H
#define LATCH_REVOKE_H

#include "token/statefile.h"

#include <jansson.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum revoke_kind { REVOKE_EMAIL, REVOKE_APP, REVOKE_SESSION, REVOKE_KINDS };

struct revoke_entry {
    char *key;     /* lowercase email, app name, or session id */
    int64_t before;
};

struct revocations {
    atomic_uint refs;
    struct revoke_entry *e[REVOKE_KINDS]; /* sorted by key */
    size_t n[REVOKE_KINDS];
    struct statefile_stamp stamp; /* of the file when loaded */
};

/* Loads state_dir/revocations.json (an empty list when there is none). NULL on a corrupt file. */
struct revocations *revocations_load(const char *state_dir, char **err);
void revocations_ref(struct revocations *r);
void revocations_unref(struct revocations *r);

/* True when the file changed since `r` was loaded. */
bool revocations_stale(const struct revocations *r, const char *state_dir);

/* Records "tokens of `key` issued at or before `before` are revoked" (keeps the later). */
int revocations_add(const char *state_dir, enum revoke_kind kind, const char *key, int64_t before,
                    char **err);

/* The same, dropping session entries older than `forget_before` on the way: no token of those
 * sessions can still be valid (logouts would otherwise grow the file forever). */
int revocations_add_pruning(const char *state_dir, enum revoke_kind kind, const char *key,
                            int64_t before, int64_t forget_before, char **err);

/* Merges a document of the file's own shape ({"emails":{KEY:T},"apps":…,"sessions":…}) into
 * the file, keeping the later T of each key (the cluster thread, SPEC.md §10). 1 when the file
 * changed, 0 when it already held all of it, -1 with *err. */
int revocations_merge(const char *state_dir, json_t *add, int64_t forget_before, char **err);

/* True when a token issued at `iat` for this email / app / session is revoked. NULLs skip. An
 * email is revoked with every spelling of its mailbox (core/email.h EMAIL_MAILBOX, `seps` the
 * sub-address separators, NULL "+"): revoking a@x refuses a+tag@x too. */
bool revocations_check(const struct revocations *r, const char *seps, const char *email, const char *app,
                       const char *session, int64_t iat);

#endif
