/* The revocation file and lookups of revoke.h. */
#include "token/revoke.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const revoke__names[REVOKE_KINDS] = { "emails", "apps", "sessions" };

static int revoke__cmp(const void *a, const void *b)
{
    return strcmp(((const struct revoke_entry *)a)->key, ((const struct revoke_entry *)b)->key);
}

static char *revoke__errf(const char *fmt, const char *a, const char *b)
{
    char *s = NULL;
    if (asprintf(&s, fmt, a, b) < 0)
        return NULL;
    return s;
}

static json_t *revoke__read(const char *path, char **err)
{
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        if (access(path, F_OK) != 0)
            return json_object();
        *err = revoke__errf("%s: %s", path, je.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        *err = revoke__errf("%s: %s", path, "not a JSON object");
        return NULL;
    }
    return root;
}

static void revoke__stat(const char *state_dir, int64_t *mtime_ns, uint64_t *ino)
{
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/revocations.json", state_dir);
    *mtime_ns = 0;
    *ino = 0;
    if (stat(path, &st) == 0) {
        *mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        *ino = (uint64_t)st.st_ino;
    }
}

bool revocations_stale(const struct revocations *r, const char *state_dir)
{
    int64_t m;
    uint64_t ino;
    revoke__stat(state_dir, &m, &ino);
    return m != r->mtime_ns || ino != r->ino;
}

struct revocations *revocations_load(const char *state_dir, char **err)
{
    char path[4200];
    int64_t mtime_ns;
    uint64_t ino;
    revoke__stat(state_dir, &mtime_ns, &ino); /* before reading: a later write is seen next time */
    snprintf(path, sizeof path, "%s/revocations.json", state_dir);
    json_t *root = revoke__read(path, err);
    if (!root)
        return NULL;
    struct revocations *r = calloc(1, sizeof *r);
    if (!r) {
        json_decref(root);
        return NULL;
    }
    atomic_init(&r->refs, 1);
    r->mtime_ns = mtime_ns;
    r->ino = ino;
    for (int k = 0; k < REVOKE_KINDS; k++) {
        json_t *obj = json_object_get(root, revoke__names[k]);
        if (!json_is_object(obj))
            continue;
        r->e[k] = calloc(json_object_size(obj) + 1, sizeof *r->e[k]);
        const char *key;
        json_t *v;
        json_object_foreach(obj, key, v) {
            if (!json_is_integer(v))
                continue;
            r->e[k][r->n[k]].key = strdup(key);
            r->e[k][r->n[k]].before = (int64_t)json_integer_value(v);
            r->n[k]++;
        }
        qsort(r->e[k], r->n[k], sizeof *r->e[k], revoke__cmp);
    }
    json_decref(root);
    return r;
}

void revocations_ref(struct revocations *r)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

void revocations_unref(struct revocations *r)
{
    if (!r || atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (int k = 0; k < REVOKE_KINDS; k++) {
        for (size_t i = 0; i < r->n[k]; i++)
            free(r->e[k][i].key);
        free(r->e[k]);
    }
    free(r);
}

int revocations_add(const char *state_dir, enum revoke_kind kind, const char *key, int64_t before,
                    char **err)
{
    return revocations_add_pruning(state_dir, kind, key, before, 0, err);
}

int revocations_add_pruning(const char *state_dir, enum revoke_kind kind, const char *key,
                            int64_t before, int64_t forget_before, char **err)
{
    char path[4200], lock[4300], tmp[4300];
    snprintf(path, sizeof path, "%s/revocations.json", state_dir);
    snprintf(lock, sizeof lock, "%s/.revocations.lock", state_dir);
    snprintf(tmp, sizeof tmp, "%s/.revocations.%d.tmp", state_dir, (int)getpid());
    int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lfd < 0 || flock(lfd, LOCK_EX) != 0) {
        *err = revoke__errf("cannot lock %s: %s", lock, strerror(errno));
        if (lfd >= 0)
            close(lfd);
        return -1;
    }
    int rc = -1;
    json_t *root = revoke__read(path, err);
    if (!root)
        goto out;
    json_t *obj = json_object_get(root, revoke__names[kind]);
    if (!json_is_object(obj)) {
        obj = json_object();
        json_object_set_new(root, revoke__names[kind], obj);
    }
    json_t *sessions = json_object_get(root, revoke__names[REVOKE_SESSION]);
    const char *k;
    json_t *v;
    void *iter_next;
    json_object_foreach_safe(sessions, iter_next, k, v) {
        if (json_is_integer(v) && json_integer_value(v) < forget_before)
            json_object_del(sessions, k);
    }
    json_t *cur = json_object_get(obj, key);
    if (!json_is_integer(cur) || json_integer_value(cur) < before)
        json_object_set_new(obj, key, json_integer(before));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || json_dumpfd(root, fd, JSON_INDENT(2) | JSON_SORT_KEYS) != 0 || fsync(fd) != 0) {
        *err = revoke__errf("cannot write %s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        goto out;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        *err = revoke__errf("cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    close(lfd); /* releases the lock */
    return rc;
}

static bool revoke__find(const struct revocations *r, enum revoke_kind k, const char *key, int64_t iat)
{
    if (!key || !r->n[k])
        return false;
    struct revoke_entry probe = { .key = (char *)key };
    const struct revoke_entry *e = bsearch(&probe, r->e[k], r->n[k], sizeof *r->e[k], revoke__cmp);
    return e && iat <= e->before; /* a revocation covers its own second too */
}

bool revocations_check(const struct revocations *r, const char *email, const char *app,
                       const char *session, int64_t iat)
{
    return r && (revoke__find(r, REVOKE_EMAIL, email, iat) || revoke__find(r, REVOKE_APP, app, iat) ||
                 revoke__find(r, REVOKE_SESSION, session, iat));
}
