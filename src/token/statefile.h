/* state_dir itself (made 0700, and its secret), and the small JSON documents in it
 * (revocations.json, service_tokens.json): read, stamped so a watcher sees changes, and changed
 * under an flock with an atomic rename, so `latchd` admin commands, logouts and the cluster
 * thread can all write them at once. */
#ifndef LATCH_STATEFILE_H
#define LATCH_STATEFILE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct statefile_stamp {
    int64_t mtime_ns; /* 0: no file */
    uint64_t ino;
};

void statefile_stamp(const char *state_dir, const char *name, struct statefile_stamp *st);
bool statefile_same(const struct statefile_stamp *a, const struct statefile_stamp *b);
/* The document (an empty object when there is no file); NULL with *err on a corrupt one. */
json_t *statefile_read(const char *state_dir, const char *name, char **err);
/* Runs update(doc, arg) under the file's lock; writes the document back (0600, atomically) when
 * update returns 1. Returns update's result, or -1 with *err. */
int statefile_update(const char *state_dir, const char *name, int (*update)(json_t *doc, void *arg),
                     void *arg, char **err);

/* The 32-byte secret AUD tags derive from: state_dir/secret, made once (0600); with a shared
 * store every node adopts the cluster's (store/cluster.c). 0, or -errno. */
int statefile_secret(const char *dir, unsigned char out[32]);
/* Creates state_dir (0700) and its parents. 0, or -errno. */
int statefile_mkdirs(const char *path);

#endif
