/* Several nodes, one state (SPEC.md §10). With a Redis store, every node keeps its state_dir
 * (secret, signing keys, revocations, service tokens) as a local copy of the cluster's, which
 * is what lets it verify tokens on its own while Redis is away. A thread per node merges the
 * two both ways (the union: the later time of a revocation, the newer service token; keys past
 * their overlap dropped), on every local change, on every announcement from another node
 * (Redis pub/sub), and every few seconds in case one was missed. The same thread hears handoff
 * boxes sealed on other nodes and wakes the long polls parked here. */
#ifndef LATCH_CLUSTER_H
#define LATCH_CLUSTER_H

#include "store/store.h"

#include <stdint.h>

struct cluster_cfg {
    const char *state_dir;
    int64_t rotate_after_s;
    int64_t key_overlap_s;
    int64_t forget_sessions_s; /* session revocations older than this cannot matter any more */
};

struct config;
struct cluster_cfg cluster_cfg_from(const struct config *cfg);

/* The Redis store the configuration names, with the key of store_key_file and the password of
 * store_password_file (both read now, wiped once the store has them). NULL with *err
 * (malloc'd, naming the key that failed). */
struct store *cluster_redis_open(const struct config *cfg, char **err);

/* At start, before the runtime reads state_dir: adopts the cluster's secret (or offers ours),
 * then exchanges keys, revocations and service tokens; the cluster's first signing key is
 * made here, by one node. When Redis cannot be reached, a node
 * that already has a secret starts on its own copy (0, with *err set as a warning); one that
 * has none refuses (-1). */
int cluster_bootstrap(struct store *s, const struct cluster_cfg *cc, char **err);

/* What an admin command runs first when no daemon answers: state_dir becomes the cluster's
 * copy (as cluster_bootstrap; 0 without a shared store). -1 with *err: the command must stop,
 * it would sign or revoke with state nobody else shares. */
int cluster_prepare(const struct config *cfg, char **err);

/* One full exchange, announced to the other nodes: what admin commands run, daemon or not.
 * 0 (also without a shared store), or -1 with *err. */
int cluster_share(const struct config *cfg, char **err);

/* Whether this node makes the automatic rotation that is due now: with a shared store, the
 * node that takes latch:keygen for `hold_s` seconds (time enough for its key to reach every
 * node, after which the rotation is no longer due anywhere); the others wait for its key.
 * True without a shared store, and when Redis cannot be asked (the union keeps every key). */
bool cluster_claim_rotation(struct store *s, int64_t hold_s);

/* Before an app's SSH CA (token/sshca.h) is first used on this node: with a shared store, the
 * cluster's is adopted, or one made here is offered (and another node's adopted when it got
 * there first), so that no node signs with a CA the others do not share. 0 (also without a
 * shared store, or with a local copy already), or -1 with *err: Redis cannot be reached and
 * there is no local copy. */
int cluster_sshca_ensure(struct store *s, const char *state_dir, const char *app, char **err);

struct cluster;
/* `news` runs on the cluster thread when another node sealed a handoff box. */
struct cluster *cluster_start(struct store *s, const struct cluster_cfg *cc, void (*news)(void *arg), void *arg);
/* A reload changed the durations (state_dir stays the one the node started with). */
void cluster_update(struct cluster *c, const struct cluster_cfg *cc);
void cluster_stop(struct cluster *c);

#endif
