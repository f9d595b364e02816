/* Service tokens made by `latchd service-token create` with a shared store (SPEC.md §10):
 * kept in state_dir/service_tokens.json (mirrored through Redis by the cluster thread) and
 * watched by the daemon like revocations, so a token made on one node works on every node
 * without editing their configuration. Tokens under `service_tokens:` in the config come first. */
#ifndef LATCH_SVCTOKENS_H
#define LATCH_SVCTOKENS_H

#include "config/config.h"
#include "token/statefile.h"

#include <jansson.h>
#include <stdatomic.h>

#define SVC_TOKENS_FILE "service_tokens.json"

struct svc_tokens {
    atomic_uint refs;
    struct service_token_cfg *t;
    size_t n;
    struct statefile_stamp stamp;
};

/* Loads the file (an empty set when there is none); NULL on a corrupt file. */
struct svc_tokens *svc_tokens_load(const char *state_dir, char **err);
void svc_tokens_ref(struct svc_tokens *s);
void svc_tokens_unref(struct svc_tokens *s);
bool svc_tokens_stale(const struct svc_tokens *s, const char *state_dir);
const struct service_token_cfg *svc_tokens_find(const struct svc_tokens *s, const char *client_id, size_t n);

/* Whether `secret` is the one of service token `st` (its SHA-256 against secret_sha256, in
 * constant time; st NULL: compared all the same, then false, so timing tells no id apart). */
bool svc_token_secret_ok(const struct service_token_cfg *st, const char *secret);

/* Merges {NAME: {"client_id","secret_sha256","expires","created"}} into the file: an entry
 * replaces one of the same name when it was created later; expired entries go. 1 changed, 0
 * not, -1 with *err. */
int svc_tokens_merge(const char *state_dir, json_t *add, char **err);

#endif
