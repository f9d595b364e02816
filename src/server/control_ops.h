/* The control operations that change shared state (revoke, keys rotate): one implementation
 * for the running daemon (answering on its control socket, server/control.c) and for latchd's
 * subcommands when no daemon runs (src/admin/, working on state_dir directly). Each takes its
 * request as JSON and answers the JSON of the control socket's protocol
 * (server/control_socket.h), so that both paths print the same summary. */
#ifndef LATCH_CONTROL_OPS_H
#define LATCH_CONTROL_OPS_H

#include "server/runtime.h"
#include "token/keys.h"
#include "token/revoke.h"

#include <jansson.h>

/* {"email":"a@b"} or {"app":"NAME"}: refuses every token issued until now for that person (the
 * address is lowercased; one well-formed address only) or app (a name of rt's configuration),
 * writes state_dir/revocations.json and logs the auth event. On success *loaded (when not
 * NULL) receives the revocation list as now on disk, for the daemon to publish. */
json_t *control_op_revoke(struct runtime *rt, const json_t *req, struct revocations **loaded);

/* Makes a new signing key in state_dir/keys now (the previous keys keep verifying for the
 * overlap) and logs the rotation. On success *loaded (when not NULL) receives the new key set. */
json_t *control_op_keys_rotate(struct runtime *rt, struct keyset **loaded);

/* A wall-clock second as "YYYY-MM-DDTHH:MM:SSZ" (status replies). */
json_t *control_time_json(time_t t);
/* [{"kid","created","age_s","signing","verify_until"}…]: the key set as replies show it. */
json_t *control_keys_json(const struct keyset *ks, time_t now);

/* The number of entries of every kind. */
size_t control_revocations_count(const struct revocations *r);

#endif
