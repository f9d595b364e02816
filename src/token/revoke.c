/* The revocation file and lookups of revoke.h. */
#include "token/revoke.h"

#include "core/email.h"

#include "token/statefile.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define REVOKE_FILE "revocations.json"

static const char *const revoke__names[REVOKE_KINDS] = { "emails", "apps", "sessions" };

static int revoke__cmp(const void *a, const void *b)
{
    return strcmp(((const struct revoke_entry *)a)->key, ((const struct revoke_entry *)b)->key);
}

bool revocations_stale(const struct revocations *r, const char *state_dir)
{
    struct statefile_stamp now;
    statefile_stamp(state_dir, REVOKE_FILE, &now);
    return !statefile_same(&now, &r->stamp);
}

struct revocations *revocations_load(const char *state_dir, char **err)
{
    struct statefile_stamp stamp;
    statefile_stamp(state_dir, REVOKE_FILE, &stamp); /* before reading: a later write is seen next time */
    json_t *root = statefile_read(state_dir, REVOKE_FILE, err);
    if (!root)
        return NULL;
    struct revocations *r = calloc(1, sizeof *r);
    if (!r) {
        json_decref(root);
        return NULL;
    }
    atomic_init(&r->refs, 1);
    r->stamp = stamp;
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

struct revoke_merge {
    json_t *add;
    int64_t forget_before;
};

/* Keeps the later time of each entry; drops sessions no token can still carry. */
static int revoke__merge(json_t *root, void *arg)
{
    struct revoke_merge *m = arg;
    int changed = 0;
    for (int k = 0; k < REVOKE_KINDS; k++) {
        json_t *obj = json_object_get(root, revoke__names[k]);
        if (!json_is_object(obj)) {
            obj = json_object();
            json_object_set_new(root, revoke__names[k], obj);
            changed = 1;
        }
        const char *key;
        json_t *v;
        void *next;
        if (k == REVOKE_SESSION) {
            json_object_foreach_safe(obj, next, key, v) {
                if (!json_is_integer(v) || json_integer_value(v) < m->forget_before) {
                    json_object_del(obj, key);
                    changed = 1;
                }
            }
        }
        json_object_foreach(json_object_get(m->add, revoke__names[k]), key, v) {
            if (!json_is_integer(v) || (k == REVOKE_SESSION && json_integer_value(v) < m->forget_before))
                continue;
            json_t *cur = json_object_get(obj, key);
            if (!json_is_integer(cur) || json_integer_value(cur) < json_integer_value(v)) {
                json_object_set_new(obj, key, json_integer(json_integer_value(v)));
                changed = 1;
            }
        }
    }
    return changed;
}

int revocations_merge(const char *state_dir, json_t *add, int64_t forget_before, char **err)
{
    struct revoke_merge m = { add, forget_before };
    return statefile_update(state_dir, REVOKE_FILE, revoke__merge, &m, err);
}

int revocations_add_pruning(const char *state_dir, enum revoke_kind kind, const char *key,
                            int64_t before, int64_t forget_before, char **err)
{
    json_t *add = json_pack("{s:{s:I}}", revoke__names[kind], key, (json_int_t)before);
    if (!add)
        return -1;
    int rc = revocations_merge(state_dir, add, forget_before, err);
    json_decref(add);
    return rc < 0 ? -1 : 0;
}

static bool revoke__find(const struct revocations *r, enum revoke_kind k, const char *key, int64_t iat)
{
    if (!key || !r->n[k])
        return false;
    struct revoke_entry probe = { .key = (char *)key };
    const struct revoke_entry *e = bsearch(&probe, r->e[k], r->n[k], sizeof *r->e[k], revoke__cmp);
    return e && iat <= e->before; /* a revocation covers its own second too */
}

/* Whether this email's mailbox was revoked: revocations are written by mailbox (admin/ops.c);
 * one written by exact address before that is found too. */
static bool revoke__email(const struct revocations *r, const char *seps, const char *email, int64_t iat)
{
    char mailbox[EMAIL_MAX_LEN + 1];
    if (!email || !r->n[REVOKE_EMAIL])
        return false;
    return revoke__find(r, REVOKE_EMAIL, email, iat) ||
           (email_mailbox(email, seps, mailbox, sizeof mailbox) && revoke__find(r, REVOKE_EMAIL, mailbox, iat));
}

bool revocations_check(const struct revocations *r, const char *seps, const char *email, const char *app,
                       const char *session, int64_t iat)
{
    return r && (revoke__email(r, seps, email, iat) || revoke__find(r, REVOKE_APP, app, iat) ||
                 revoke__find(r, REVOKE_SESSION, session, iat));
}
