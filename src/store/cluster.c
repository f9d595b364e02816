/* The cluster thread and the state_dir <-> Redis exchange of cluster.h. In Redis: latch:secret
 * (sealed), latch:keys (kid -> sealed "created_ns\nPEM"), latch:rev ("e:"/"a:"/"s:" + key ->
 * sealed unix time), latch:svc (name -> sealed JSON), latch:sshca (app CA file stem -> sealed PEM),
 * and announcements on latch:news: "keys", "rev", "svc", "sshca" (re-read that part), "k KEY" (a
 * handoff box was put), "i NONCE" (a large identity). */
#include "store/cluster.h"

#include "core/log.h"
#include "core/loop.h"
#include "config/config.h"
#include "token/statefile.h"
#include "token/jwt.h"
#include "store/redis.h"
#include "token/keys.h"
#include "token/revoke.h"
#include "token/sshca.h"
#include "token/svctokens.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CL_TICK_MS 100
#define CL_PING_MS 500
#define CL_FULL_MS 10000

enum { CL_KEYS = 1, CL_REV = 2, CL_SVC = 4, CL_SSHCA = 8, CL_ALL = 15 };

static const char *const cl__news[] = { [CL_KEYS] = "keys", [CL_REV] = "rev", [CL_SVC] = "svc",
                                        [CL_SSHCA] = "sshca" };

/* --- small Redis helpers --------------------------------------------------------------------- */

static redisReply *cl__cmd(struct store *s, int argc, const char **argv)
{
    size_t lens[8];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    return store_redis_command(s, argc, argv, lens);
}

static bool cl__ok(redisReply *r)
{
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (r && r->type == REDIS_REPLY_ERROR)
        log_msg("error", "redis: %s", r->str);
    freeReplyObject(r);
    return ok;
}

static bool cl__hset_sealed(struct store *s, const char *hash, const char *field, const char *name,
                            const char *val, size_t len)
{
    size_t sl;
    unsigned char *sealed = store_seal(store_redis_key(s), name, val, len, 0, &sl);
    if (!sealed)
        return false;
    const char *argv[] = { "HSET", hash, field, (const char *)sealed };
    size_t lens[] = { 4, strlen(hash), strlen(field), sl };
    bool ok = cl__ok(store_redis_command(s, 4, argv, lens));
    free(sealed);
    return ok;
}

static bool cl__hdel(struct store *s, const char *hash, const char *field)
{
    const char *argv[] = { "HDEL", hash, field };
    return cl__ok(cl__cmd(s, 3, argv));
}

static redisReply *cl__hgetall(struct store *s, const char *hash)
{
    const char *argv[] = { "HGETALL", hash };
    redisReply *r = cl__cmd(s, 2, argv);
    if (r && (r->type != REDIS_REPLY_ARRAY || r->elements % 2)) {
        cl__ok(r);
        return NULL;
    }
    return r;
}

static void cl__publish(struct store *s, const char *msg)
{
    const char *argv[] = { "PUBLISH", STORE_REDIS_CHANNEL, msg };
    cl__ok(cl__cmd(s, 3, argv));
}

/* --- the secret -------------------------------------------------------------------------------- */

static int cl__write_file(const char *path, const void *p, size_t n, int64_t mtime_ns)
{
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    bool ok = write(fd, p, n) == (ssize_t)n && fsync(fd) == 0;
    if (ok && mtime_ns) {
        struct timespec ts[2] = { { mtime_ns / 1000000000, mtime_ns % 1000000000 },
                                  { mtime_ns / 1000000000, mtime_ns % 1000000000 } };
        ok = futimens(fd, ts) == 0;
    }
    close(fd);
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Adopts latch:secret, or offers ours when there is none yet. -1: Redis cannot be reached. */
static int cl__secret(struct store *s, const char *state_dir, bool adopt)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/secret", state_dir);
    for (int attempt = 0; attempt < 2; attempt++) {
        const char *get[] = { "GET", "latch:secret" };
        redisReply *r = cl__cmd(s, 2, get);
        if (!r || r->type == REDIS_REPLY_ERROR) { /* unreachable, or refusing us (NOAUTH) */
            cl__ok(r);
            return -1;
        }
        size_t len = 0;
        char *plain = r->type == REDIS_REPLY_STRING ? store_unseal(store_redis_key(s), "secret", r->str, r->len, &len)
                                                    : NULL;
        bool present = r->type == REDIS_REPLY_STRING;
        freeReplyObject(r);
        if (present) {
            unsigned char local[32];
            int have = access(path, F_OK) == 0 ? statefile_secret(state_dir, local) : -ENOENT;
            if (!plain || len != 32) {
                log_msg("error", "redis: latch:secret cannot be opened with this node's store_key_file "
                                 "(another key, or a damaged value): every node needs the same key");
                free(plain);
                return -2;
            }
            if (adopt && (have != 0 || memcmp(local, plain, 32) != 0)) {
                if (cl__write_file(path, plain, 32, 0) != 0)
                    log_msg("error", "cannot write %s: %s", path, strerror(errno));
                else if (have == 0)
                    log_msg("warn", "%s replaced by the cluster's secret (apps' aud values follow it)", path);
            }
            sodium_memzero(local, sizeof local);
            sodium_memzero(plain, len);
            free(plain);
            return 0;
        }
        unsigned char mine[32];
        if (statefile_secret(state_dir, mine) != 0)
            return -1;
        size_t sl;
        unsigned char *sealed = store_seal(store_redis_key(s), "secret", mine, 32, 0, &sl);
        sodium_memzero(mine, sizeof mine);
        if (!sealed)
            return -1;
        const char *set[] = { "SET", "latch:secret", (const char *)sealed, "NX" };
        size_t lens[] = { 3, 12, sl, 2 };
        bool ok = cl__ok(store_redis_command(s, 4, set, lens));
        free(sealed);
        if (!ok)
            return -1;
    }
    return 0;
}

/* --- signing keys ------------------------------------------------------------------------------ */

struct cl_key {
    char kid[33];
    int64_t created_ns;
    char *pem;
    size_t len;
    bool local, remote;
};

struct cl_keys {
    struct cl_key *k;
    size_t n, cap;
};

static struct cl_key *cl__key(struct cl_keys *ks, const char *kid)
{
    for (size_t i = 0; i < ks->n; i++)
        if (!strcmp(ks->k[i].kid, kid))
            return &ks->k[i];
    if (ks->n == ks->cap) {
        size_t cap = ks->cap ? 2 * ks->cap : 8;
        struct cl_key *k = realloc(ks->k, cap * sizeof *k);
        if (!k)
            return NULL;
        ks->k = k;
        ks->cap = cap;
    }
    struct cl_key *k = &ks->k[ks->n++];
    memset(k, 0, sizeof *k);
    snprintf(k->kid, sizeof k->kid, "%s", kid);
    return k;
}

static int cl__newest_first(const void *a, const void *b)
{
    const struct cl_key *x = a, *y = b;
    if (x->created_ns != y->created_ns)
        return x->created_ns > y->created_ns ? -1 : 1;
    return strcmp(x->kid, y->kid);
}

static void cl__keys_local(const char *dir, struct cl_keys *ks)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strlen(e->d_name) != 36 || strcmp(e->d_name + 32, ".pem"))
            continue;
        char path[4400], kid[33];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        snprintf(kid, sizeof kid, "%.32s", e->d_name);
        FILE *f = fopen(path, "r");
        struct stat st;
        if (!f || fstat(fileno(f), &st) != 0 || st.st_size > 65536) {
            if (f)
                fclose(f);
            continue;
        }
        char *pem = malloc((size_t)st.st_size + 1);
        size_t n = pem ? fread(pem, 1, (size_t)st.st_size, f) : 0;
        fclose(f);
        struct cl_key *k = pem ? cl__key(ks, kid) : NULL;
        if (!k) {
            free(pem);
            continue;
        }
        pem[n] = '\0';
        k->pem = pem;
        k->len = n;
        k->local = true;
        k->created_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    }
    if (d)
        closedir(d);
}

static int cl__keys_remote(struct store *s, struct cl_keys *ks)
{
    redisReply *r = cl__hgetall(s, "latch:keys");
    if (!r)
        return -1;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *kid = r->element[i]->str;
        char name[64], check[33];
        snprintf(name, sizeof name, "keys:%.40s", kid);
        size_t len;
        char *plain = store_unseal(store_redis_key(s), name, r->element[i + 1]->str, r->element[i + 1]->len, &len);
        char *nl = plain ? memchr(plain, '\n', len) : NULL;
        if (!nl || strlen(kid) != 32 || keys_pem_kid(nl + 1, len - (size_t)(nl + 1 - plain), check) != 0 ||
            strcmp(check, kid)) {
            log_msg("warn", "redis: latch:keys %.40s is not a key this cluster sealed: ignored", kid);
            free(plain);
            continue;
        }
        struct cl_key *k = cl__key(ks, kid);
        if (!k || k->local) { /* the same key: the local copy is the one */
            if (k)
                k->remote = true;
            free(plain);
            continue;
        }
        k->remote = true;
        k->created_ns = strtoll(plain, NULL, 10);
        k->len = len - (size_t)(nl + 1 - plain);
        k->pem = malloc(k->len + 1);
        if (k->pem)
            memcpy(k->pem, nl + 1, k->len + 1);
        sodium_memzero(plain, len);
        free(plain);
    }
    freeReplyObject(r);
    return 0;
}

/* Bit 0: the local copy changed; bit 1: Redis did. -1: Redis cannot be reached. */
static int cl__sync_keys(struct store *s, const struct cluster_cfg *cc)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/keys", cc->state_dir);
    mkdir(dir, 0700);
    struct cl_keys ks = { 0 };
    cl__keys_local(dir, &ks);
    int rc = 0;
    if (cl__keys_remote(s, &ks) != 0) {
        rc = -1;
        goto out;
    }
    if (ks.n > 1)
        qsort(ks.k, ks.n, sizeof *ks.k, cl__newest_first);
    int64_t now_ns = (int64_t)time(NULL) * 1000000000;
    for (size_t i = 0; i < ks.n; i++) {
        struct cl_key *k = &ks.k[i];
        bool retired = i > 0 && ks.k[i - 1].created_ns + cc->key_overlap_s * 1000000000 <= now_ns;
        if (retired) {
            if (k->remote && cl__hdel(s, "latch:keys", k->kid))
                rc |= 2;
            continue; /* keys_load deletes the local file */
        }
        if (!k->pem)
            continue;
        if (!k->local) {
            char path[4300];
            snprintf(path, sizeof path, "%s/%s.pem", dir, k->kid);
            if (cl__write_file(path, k->pem, k->len, k->created_ns) == 0) {
                log_msg("info", "signing key %s from the cluster", k->kid);
                rc |= 1;
            }
        } else if (!k->remote) {
            char name[64], *val = NULL;
            snprintf(name, sizeof name, "keys:%s", k->kid);
            int n = asprintf(&val, "%lld\n%s", (long long)k->created_ns, k->pem);
            if (n > 0 && cl__hset_sealed(s, "latch:keys", k->kid, name, val, (size_t)n))
                rc |= 2;
            if (val)
                sodium_memzero(val, (size_t)n);
            free(val);
        }
    }
out:
    for (size_t i = 0; i < ks.n; i++) {
        if (ks.k[i].pem)
            sodium_memzero(ks.k[i].pem, ks.k[i].len);
        free(ks.k[i].pem);
    }
    free(ks.k);
    return rc;
}

/* --- revocations ------------------------------------------------------------------------------- */

static const char *const cl__rev_kinds[] = { "emails", "apps", "sessions" };
static const char cl__rev_tags[] = "eas";
#define CL_REV_SKEW_S 300 /* a revocation dated later than this ahead of our clock is not one */

/* latch:rev: "e:"/"a:"/"s:" + key -> sealed unix time (sealed under "rev:" + field, so a Redis
 * writer can neither revoke anybody nor move a revocation). Each node pushes what Redis lacks
 * or holds older; concurrent pushes converge because every node keeps the later time. */
static int cl__sync_rev(struct store *s, const struct cluster_cfg *cc)
{
    redisReply *r = cl__hgetall(s, "latch:rev");
    if (!r)
        return -1;
    time_t now = time(NULL);
    int64_t forget_before = (int64_t)now - cc->forget_sessions_s;
    json_t *remote = json_pack("{s:{},s:{},s:{}}", "emails", "apps", "sessions");
    int rc = 0;
    for (size_t i = 0; remote && i + 1 < r->elements; i += 2) {
        const char *f = r->element[i]->str;
        const char *tag = f && f[0] && f[1] == ':' ? strchr(cl__rev_tags, f[0]) : NULL;
        char name[400];
        size_t len = 0;
        snprintf(name, sizeof name, "rev:%.380s", f ? f : "");
        char *plain = tag && *tag ? store_unseal(store_redis_key(s), name, r->element[i + 1]->str,
                                                 r->element[i + 1]->len, &len)
                                  : NULL;
        long long t = plain ? strtoll(plain, NULL, 10) : 0;
        free(plain);
        if (!plain || t <= 0 || t > (long long)now + CL_REV_SKEW_S) {
            log_msg("warn", "redis: latch:rev %.200s is not a revocation this cluster sealed: ignored", f ? f : "");
            continue;
        }
        if (*tag == 's' && t < forget_before) {
            if (cl__hdel(s, "latch:rev", f))
                rc |= 2;
            continue;
        }
        json_object_set_new(json_object_get(remote, cl__rev_kinds[tag - cl__rev_tags]), f + 2, json_integer(t));
    }
    freeReplyObject(r);
    char *err = NULL;
    json_t *local = statefile_read(cc->state_dir, "revocations.json", &err);
    for (int k = 0; local && remote && k < 3; k++) {
        const char *key;
        json_t *v;
        json_object_foreach(json_object_get(local, cl__rev_kinds[k]), key, v) {
            json_t *cur = json_object_get(json_object_get(remote, cl__rev_kinds[k]), key);
            json_int_t t = json_integer_value(v);
            if (!json_is_integer(v) || (k == 2 && t < forget_before) || (cur && json_integer_value(cur) >= t))
                continue;
            char field[400], name[420], val[24];
            snprintf(field, sizeof field, "%c:%.380s", cl__rev_tags[k], key);
            snprintf(name, sizeof name, "rev:%s", field);
            int n = snprintf(val, sizeof val, "%lld", (long long)t);
            if (!cl__hset_sealed(s, "latch:rev", field, name, val, (size_t)n)) {
                rc = -1;
                break;
            }
            rc |= 2;
        }
    }
    json_decref(local);
    if (rc >= 0 && remote) {
        int m = revocations_merge(cc->state_dir, remote, forget_before, &err);
        if (m > 0)
            rc |= 1;
        else if (m < 0)
            log_msg("error", "revocations from the cluster: %s", err ? err : "cannot merge");
    }
    free(err);
    json_decref(remote);
    return rc;
}

/* --- service tokens ---------------------------------------------------------------------------- */

static int cl__sync_svc(struct store *s, const struct cluster_cfg *cc)
{
    redisReply *r = cl__hgetall(s, "latch:svc");
    if (!r)
        return -1;
    json_t *remote = json_object();
    time_t now = time(NULL);
    int rc = 0;
    for (size_t i = 0; remote && i + 1 < r->elements; i += 2) {
        const char *name = r->element[i]->str;
        char sname[300];
        size_t len;
        snprintf(sname, sizeof sname, "svc:%.200s", name);
        char *plain = store_unseal(store_redis_key(s), sname, r->element[i + 1]->str, r->element[i + 1]->len, &len);
        json_error_t je;
        json_t *v = plain ? json_loadb(plain, len, 0, &je) : NULL;
        free(plain);
        json_int_t exp = json_integer_value(json_object_get(v, "expires"));
        if (!json_is_object(v) || (exp && exp <= now)) {
            if (!v)
                log_msg("warn", "redis: latch:svc %.200s is not a token this cluster sealed: ignored", name);
            else if (cl__hdel(s, "latch:svc", name))
                rc |= 2;
            json_decref(v);
            continue;
        }
        json_object_set_new(remote, name, v);
    }
    freeReplyObject(r);
    char *err = NULL;
    json_t *local = statefile_read(cc->state_dir, SVC_TOKENS_FILE, &err);
    const char *name;
    json_t *v;
    json_object_foreach(local, name, v) {
        json_t *cur = json_object_get(remote, name);
        json_int_t exp = json_integer_value(json_object_get(v, "expires"));
        if ((exp && exp <= now) || strlen(name) > 200 ||
            (cur && (json_equal(cur, v) || json_integer_value(json_object_get(cur, "created")) >
                                                json_integer_value(json_object_get(v, "created")))))
            continue;
        char sname[300], *val = json_dumps(v, JSON_COMPACT);
        snprintf(sname, sizeof sname, "svc:%s", name);
        if (val && cl__hset_sealed(s, "latch:svc", name, sname, val, strlen(val)))
            rc |= 2;
        free(val);
    }
    json_decref(local);
    int m = svc_tokens_merge(cc->state_dir, remote, &err);
    if (m > 0)
        rc |= 1;
    else if (m < 0)
        log_msg("error", "service tokens from the cluster: %s", err ? err : "cannot merge");
    free(err);
    json_decref(remote);
    return rc;
}

/* --- SSH CAs ----------------------------------------------------------------------------------- */

/* A CA file's text (at most SSHCA_PEM_MAX bytes), malloc'd; NULL when there is none. */
static char *cl__read_small(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *p = malloc(SSHCA_PEM_MAX + 1);
    *len = p ? fread(p, 1, SSHCA_PEM_MAX + 1, f) : 0;
    fclose(f);
    if (p && *len > SSHCA_PEM_MAX) {
        sodium_memzero(p, SSHCA_PEM_MAX + 1);
        free(p);
        return NULL;
    }
    if (p)
        p[*len] = '\0';
    return p;
}

/* The cluster's CAs into state_dir/ssh_ca: a CA Redis holds replaces a local one that differs
 * (the first CA an app got in the cluster stays its CA). *names gets the stems Redis holds.
 * Bit 0 set when a file changed. -1: Redis cannot be reached. */
static int cl__sshca_adopt(struct store *s, const char *dir, char ***names, size_t *n)
{
    redisReply *r = cl__hgetall(s, "latch:sshca");
    if (!r)
        return -1;
    int rc = 0;
    *names = calloc(r->elements / 2 + 1, sizeof **names);
    for (size_t i = 0; *names && i + 1 < r->elements; i += 2) {
        const char *stem = r->element[i]->str;
        char name[SSHCA_FILE_MAX + 8], path[4600];
        size_t len = 0, have_len = 0;
        snprintf(name, sizeof name, "sshca:%s", stem ? stem : "");
        char *plain = stem && sshca_stem_ok(stem) ? store_unseal(store_redis_key(s), name, r->element[i + 1]->str,
                                                                 r->element[i + 1]->len, &len)
                                                  : NULL;
        if (!plain || !sshca_pem_ok(plain, len)) {
            log_msg("warn", "redis: latch:sshca %.200s is not a CA this cluster sealed: ignored", stem ? stem : "");
            free(plain);
            continue;
        }
        (*names)[(*n)++] = strdup(stem);
        snprintf(path, sizeof path, "%s/%s.pem", dir, stem);
        char *have = cl__read_small(path, &have_len);
        if (!have || have_len != len || memcmp(have, plain, len)) {
            mkdir(dir, 0700);
            if (cl__write_file(path, plain, len, 0) == 0) {
                log_msg(have ? "warn" : "info", "SSH CA %s from the cluster%s", stem,
                        have ? " (replacing this node's own, made meanwhile)" : "");
                rc |= 1;
            }
        }
        if (have)
            sodium_memzero(have, have_len);
        free(have);
        sodium_memzero(plain, len);
        free(plain);
    }
    freeReplyObject(r);
    return rc;
}

/* Bit 0: the local copy changed; bit 1: Redis did. -1: Redis cannot be reached. A CA made here
 * is offered with HSETNX: when another node's got there first, that one is adopted. */
static int cl__sync_sshca(struct store *s, const struct cluster_cfg *cc)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/" SSHCA_DIR, cc->state_dir);
    char **names = NULL;
    size_t n = 0;
    int rc = cl__sshca_adopt(s, dir, &names, &n);
    bool raced = false;
    DIR *d = rc < 0 ? NULL : opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        char stem[SSHCA_FILE_MAX], path[4600], name[SSHCA_FILE_MAX + 8];
        if (len < 5 || len - 4 >= sizeof stem || strcmp(e->d_name + len - 4, ".pem"))
            continue;
        snprintf(stem, sizeof stem, "%.*s", (int)(len - 4), e->d_name);
        bool known = !sshca_stem_ok(stem);
        for (size_t i = 0; i < n && !known; i++)
            known = names[i] && !strcmp(names[i], stem);
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t plen = 0;
        char *pem = known ? NULL : cl__read_small(path, &plen);
        if (!pem || !sshca_pem_ok(pem, plen)) {
            free(pem);
            continue;
        }
        snprintf(name, sizeof name, "sshca:%s", stem);
        size_t sl;
        unsigned char *sealed = store_seal(store_redis_key(s), name, pem, plen, 0, &sl);
        sodium_memzero(pem, plen);
        free(pem);
        if (!sealed)
            continue;
        const char *argv[] = { "HSETNX", "latch:sshca", stem, (const char *)sealed };
        size_t lens[] = { 6, 11, strlen(stem), sl };
        redisReply *r = store_redis_command(s, 4, argv, lens);
        free(sealed);
        if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1)
            rc |= 2;
        else if (r && r->type == REDIS_REPLY_INTEGER)
            raced = true;
        cl__ok(r);
    }
    if (d)
        closedir(d);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (raced) {
        names = NULL;
        n = 0;
        int again = cl__sshca_adopt(s, dir, &names, &n);
        rc = again < 0 ? -1 : rc | again;
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
    }
    return rc;
}

int cluster_sshca_ensure(struct store *s, const char *state_dir, const char *app, char **err)
{
    char stem[SSHCA_FILE_MAX], path[4600];
    if (sshca_file_stem(app, stem) != 0)
        return 0; /* sshca_load says why */
    snprintf(path, sizeof path, "%s/" SSHCA_DIR "/%s.pem", state_dir, stem);
    if (!s || !store_remote(s) || access(path, F_OK) == 0)
        return 0;
    struct cluster_cfg cc = { .state_dir = state_dir };
    if (cl__sync_sshca(s, &cc) < 0)
        goto down;
    if (access(path, F_OK) != 0) {
        EVP_PKEY *k = sshca_load(state_dir, app, true, err);
        if (!k)
            return -1;
        EVP_PKEY_free(k);
        int rc = cl__sync_sshca(s, &cc);
        if (rc < 0)
            goto down;
        if (rc & 2)
            cl__publish(s, cl__news[CL_SSHCA]);
    }
    return 0;
down:
    *err = strdup("redis cannot be reached: this node has no copy of the app's SSH CA yet");
    return -1;
}

/* --- exchanges --------------------------------------------------------------------------------- */

/* Exchanges the parts in `what`; announces those Redis gained when `announce`. -1: no Redis. */
static int cl__sync(struct store *s, const struct cluster_cfg *cc, int what, bool announce)
{
    int (*const fn[])(struct store *, const struct cluster_cfg *) = { cl__sync_keys, cl__sync_rev, cl__sync_svc,
                                                                      cl__sync_sshca };
    int rc = 0;
    for (int i = 0; i < 4; i++) {
        int part = 1 << i;
        if (!(what & part))
            continue;
        int r = fn[i](s, cc);
        if (r < 0)
            return -1;
        if ((r & 2) && announce)
            cl__publish(s, cl__news[part]);
        rc |= r;
    }
    return rc;
}

static bool cl__have_keys(const char *state_dir)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/keys", state_dir);
    struct cl_keys ks = { 0 };
    cl__keys_local(dir, &ks);
    for (size_t i = 0; i < ks.n; i++) {
        sodium_memzero(ks.k[i].pem, ks.k[i].len);
        free(ks.k[i].pem);
    }
    free(ks.k);
    return ks.n > 0;
}

/* A cluster's first signing key is made by one node: the one that takes latch:keygen; nodes
 * starting at the same moment wait for its key rather than each signing with its own. -1:
 * Redis went away meanwhile. */
static int cl__first_key(struct store *s, const struct cluster_cfg *cc)
{
    if (cl__have_keys(cc->state_dir))
        return 0;
    char owner[33]; /* released only by its taker: never another node's rotation claim */
    unsigned char raw[16];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(owner, sizeof owner, raw, sizeof raw);
    const char *lock[] = { "SET", "latch:keygen", owner, "NX", "EX", "30" };
    redisReply *r = cl__cmd(s, 6, lock);
    if (!r)
        return -1;
    bool mine = r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    if (mine) {
        char *err = NULL;
        struct keyset *ks = keys_load(cc->state_dir, cc->rotate_after_s, cc->key_overlap_s, false, &err);
        if (!ks)
            log_msg("error", "signing keys: %s", err ? err : "cannot make the first one");
        free(err);
        keyset_unref(ks);
        int rc = cl__sync(s, cc, CL_KEYS, true);
        const char *del[] = { "EVAL", "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                              "return redis.call('DEL', KEYS[1]) end return 0", "1", "latch:keygen", owner };
        cl__ok(cl__cmd(s, 5, del));
        return rc < 0 ? -1 : 0;
    }
    for (int i = 0; i < 100 && !cl__have_keys(cc->state_dir); i++) { /* up to 10 s */
        usleep(100 * 1000);
        if (cl__sync(s, cc, CL_KEYS, false) < 0)
            return -1;
    }
    return 0; /* no key after all: keys_load makes one, and the union keeps both */
}

bool cluster_claim_rotation(struct store *s, int64_t hold_s)
{
    if (!s || !store_remote(s))
        return true;
    char ex[24];
    snprintf(ex, sizeof ex, "%lld", (long long)(hold_s > 0 ? hold_s : 1));
    const char *lock[] = { "SET", "latch:keygen", "1", "NX", "EX", ex };
    redisReply *r = cl__cmd(s, 6, lock);
    bool mine = !r || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR;
    freeReplyObject(r);
    return mine;
}

int cluster_bootstrap(struct store *s, const struct cluster_cfg *cc, char **err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/secret", cc->state_dir);
    bool had_copy = access(path, F_OK) == 0; /* before cl__secret may make one */
    int rc = cl__secret(s, cc->state_dir, true);
    if (rc == -2) {
        *err = strdup("the cluster's secret in Redis cannot be opened with this store_key_file "
                      "(another key, or a damaged value): give every node the same key");
        return -1;
    }
    if (rc == 0 && cl__sync(s, cc, CL_ALL, true) >= 0 && cl__first_key(s, cc) == 0)
        return 0;
    if (had_copy) {
        *err = strdup("redis cannot be reached: starting on this node's copy of the shared state");
        return 0;
    }
    *err = strdup("redis cannot be reached and this node has no copy of the shared state yet "
                  "(state_dir/secret): start it once Redis answers");
    return -1;
}

struct store *cluster_redis_open(const struct config *cfg, char **err)
{
    unsigned char key[STORE_KEY_BYTES];
    char why[512], *password = NULL;
    struct store *s = NULL;
    if (!cfg->store_key_file || store_key_load(cfg->store_key_file, key, why, sizeof why) != 0) {
        if (asprintf(err, "'store_key_file': %s", cfg->store_key_file ? why : "not set") < 0)
            *err = NULL;
    } else if (cfg->store_password_file &&
               store_secret_load(cfg->store_password_file, &password, why, sizeof why) != 0) {
        if (asprintf(err, "'store_password_file': %s", why) < 0)
            *err = NULL;
    } else {
        s = store_redis_new(cfg->store, key, password, err);
    }
    sodium_memzero(key, sizeof key);
    if (password)
        sodium_memzero(password, strlen(password));
    free(password);
    return s;
}

struct cluster_cfg cluster_cfg_from(const struct config *cfg)
{
    return (struct cluster_cfg){ .state_dir = cfg->state_dir,
                                 .rotate_after_s = cfg->key_rotation_s,
                                 .key_overlap_s = cfg->key_overlap_s,
                                 .forget_sessions_s = config_longest_session_s(cfg) + JWT_LEEWAY_S };
}

/* A store for one admin command: NULL (and *err) when there is no Redis to use. */
static struct store *cl__admin_store(const struct config *cfg, char **err)
{
    if (strncmp(cfg->store, "redis:", 6) != 0)
        return NULL;
    return cluster_redis_open(cfg, err);
}

int cluster_prepare(const struct config *cfg, char **err)
{
    if (strncmp(cfg->store, "redis:", 6) != 0)
        return 0;
    struct store *s = cl__admin_store(cfg, err);
    if (!s)
        return -1;
    struct cluster_cfg cc = cluster_cfg_from(cfg);
    int rc = statefile_mkdirs(cfg->state_dir) == 0 ? cluster_bootstrap(s, &cc, err) : -1;
    store_free(s);
    return rc;
}

int cluster_share(const struct config *cfg, char **err)
{
    struct store *s = cl__admin_store(cfg, err);
    if (!s)
        return *err ? -1 : 0;
    struct cluster_cfg cc = cluster_cfg_from(cfg);
    int rc = cl__secret(s, cc.state_dir, false);
    if (rc == -2)
        *err = strdup("the cluster's data in Redis cannot be opened with this store_key_file (another "
                      "key, or damaged): the change is made on this node only");
    else if (rc < 0 || cl__sync(s, &cc, CL_ALL, true) < 0)
        *err = strdup("redis cannot be reached: the change is made on this node only; it reaches "
                      "the others when this node's latchd next exchanges with Redis");
    store_free(s);
    return *err ? -1 : 0;
}

/* --- the thread -------------------------------------------------------------------------------- */

struct cluster_stamps {
    struct statefile_stamp rev, svc, keys, sshca;
};

struct cluster {
    struct store *s;
    struct cluster_cfg cc;     /* what cluster_update last set (under lock) */
    struct cluster_cfg run;    /* the thread's copy, taken every iteration */
    char *state_dir;
    void (*news)(void *arg);
    void *arg;
    pthread_t thread;
    atomic_bool stop;
    redisContext *sub;
    struct cluster_stamps st;
    pthread_mutex_t lock;      /* cc's durations, which a reload may change */
};

static void cl__stamps(const struct cluster *c, struct cluster_stamps *st)
{
    statefile_stamp(c->state_dir, "revocations.json", &st->rev);
    statefile_stamp(c->state_dir, SVC_TOKENS_FILE, &st->svc);
    statefile_stamp(c->state_dir, "keys", &st->keys);
    statefile_stamp(c->state_dir, SSHCA_DIR, &st->sshca);
}

/* What changed in state_dir since the last look (and remembers it). */
static int cl__local_changes(struct cluster *c)
{
    struct cluster_stamps now;
    cl__stamps(c, &now);
    int what = (statefile_same(&now.rev, &c->st.rev) ? 0 : CL_REV) |
               (statefile_same(&now.svc, &c->st.svc) ? 0 : CL_SVC) |
               (statefile_same(&now.keys, &c->st.keys) ? 0 : CL_KEYS) |
               (statefile_same(&now.sshca, &c->st.sshca) ? 0 : CL_SSHCA);
    c->st = now;
    return what;
}

/* Our own merge into state_dir is not news to push back: forgets those files' changes. Only
 * the parts merged: a write to another file meanwhile is still seen. (One landing in the same
 * file during the merge waits for the next full exchange, 10 s at most.) */
static void cl__absorb(struct cluster *c, int what)
{
    struct cluster_stamps now;
    cl__stamps(c, &now);
    if (what & CL_REV)
        c->st.rev = now.rev;
    if (what & CL_SVC)
        c->st.svc = now.svc;
    if (what & CL_KEYS)
        c->st.keys = now.keys;
    if (what & CL_SSHCA)
        c->st.sshca = now.sshca;
}

static void cl__mirror_identities(struct cluster *c)
{
    char cursor[32] = "0";
    do {
        const char *argv[] = { "SCAN", cursor, "MATCH", "latch:ident:*", "COUNT", "500" };
        redisReply *r = cl__cmd(c->s, 6, argv);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            freeReplyObject(r);
            return;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str ? r->element[0]->str : "0");
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *k = r->element[1]->element[i]->str;
            if (k && strlen(k) > sizeof "latch:ident:" - 1)
                store_redis_mirror_identity(c->s, k + sizeof "latch:ident:" - 1);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0 && !atomic_load(&c->stop));
}

static void cl__drop_sub(struct cluster *c)
{
    redisFree(c->sub);
    c->sub = NULL;
}

static void cl__subscribe(struct cluster *c)
{
    c->sub = store_redis_connect(c->s);
    if (!c->sub)
        return;
    redisReply *r = redisCommand(c->sub, "SUBSCRIBE %s", STORE_REDIS_CHANNEL);
    bool ok = r && r->type == REDIS_REPLY_ARRAY;
    freeReplyObject(r);
    if (!ok) {
        cl__drop_sub(c);
        return;
    }
    /* (re)connected: what was missed meanwhile */
    cl__secret(c->s, c->state_dir, false);
    cl__local_changes(c);
    cl__sync(c->s, &c->run, CL_ALL, true);
    cl__mirror_identities(c);
}

static void cl__message(struct cluster *c, redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || !r->element[0]->str ||
        strcmp(r->element[0]->str, "message") || !r->element[2]->str)
        return;
    const char *m = r->element[2]->str;
    if (!strncmp(m, "k ", 2)) {
        store_redis_seen(c->s, m + 2);
        c->news(c->arg);
    } else if (!strncmp(m, "i ", 2)) {
        store_redis_mirror_identity(c->s, m + 2);
    } else {
        for (int part = 1; part <= CL_SSHCA; part <<= 1)
            if (!strcmp(m, cl__news[part]) && cl__sync(c->s, &c->run, part, false) > 0)
                cl__absorb(c, part);
    }
}

/* Handles what hiredis already read (SUBSCRIBE's own reply may have brought messages). */
static void cl__drain_sub(struct cluster *c)
{
    void *reply = NULL;
    while (c->sub && redisGetReplyFromReader(c->sub, &reply) == REDIS_OK && reply) {
        cl__message(c, reply);
        freeReplyObject(reply);
        reply = NULL;
    }
}

static void cl__read_sub(struct cluster *c)
{
    cl__drain_sub(c);
    struct pollfd p = { .fd = c->sub->fd, .events = POLLIN };
    if (poll(&p, 1, CL_TICK_MS) <= 0)
        return;
    if (redisBufferRead(c->sub) != REDIS_OK) {
        cl__drop_sub(c);
        return;
    }
    cl__drain_sub(c);
}

static void *cl__main(void *arg)
{
    struct cluster *c = arg;
    int64_t next_ping = 0, next_full = (int64_t)loop_clock_ms() + CL_FULL_MS;
    cl__local_changes(c);
    while (!atomic_load(&c->stop)) {
        pthread_mutex_lock(&c->lock);
        c->run = c->cc;
        pthread_mutex_unlock(&c->lock);
        int64_t now = (int64_t)loop_clock_ms();
        if (now >= next_ping) {
            next_ping = now + CL_PING_MS;
            const char *argv[] = { "PING" };
            redisReply *r = cl__cmd(c->s, 1, argv);
            bool up = r && r->type == REDIS_REPLY_STATUS;
            freeReplyObject(r);
            if (up && !store_up(c->s))
                store_redis_health(c->s, true);
            if (!up)
                cl__drop_sub(c);
            else if (!c->sub)
                cl__subscribe(c);
        }
        if (!c->sub) {
            usleep(CL_TICK_MS * 1000);
            continue;
        }
        cl__read_sub(c);
        if (!c->sub)
            continue;
        int what = cl__local_changes(c);
        if (now >= next_full) {
            next_full = now + CL_FULL_MS;
            what = CL_ALL;
        }
        int rc = what ? cl__sync(c->s, &c->run, what, true) : 0;
        if (rc < 0)
            cl__drop_sub(c);
        else if (rc & 1)
            cl__absorb(c, what);
    }
    cl__drop_sub(c);
    return NULL;
}

struct cluster *cluster_start(struct store *s, const struct cluster_cfg *cc, void (*news)(void *arg), void *arg)
{
    struct cluster *c = calloc(1, sizeof *c);
    if (!c || !(c->state_dir = strdup(cc->state_dir))) {
        free(c);
        return NULL;
    }
    c->s = s;
    c->cc = *cc;
    c->cc.state_dir = c->state_dir;
    c->run = c->cc;
    pthread_mutex_init(&c->lock, NULL);
    c->news = news;
    c->arg = arg;
    atomic_init(&c->stop, false);
    if (pthread_create(&c->thread, NULL, cl__main, c) != 0) {
        free(c->state_dir);
        free(c);
        return NULL;
    }
    return c;
}

void cluster_update(struct cluster *c, const struct cluster_cfg *cc)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->cc.rotate_after_s = cc->rotate_after_s;
    c->cc.key_overlap_s = cc->key_overlap_s;
    c->cc.forget_sessions_s = cc->forget_sessions_s;
    pthread_mutex_unlock(&c->lock);
}

void cluster_stop(struct cluster *c)
{
    if (!c)
        return;
    atomic_store(&c->stop, true);
    pthread_join(c->thread, NULL);
    pthread_mutex_destroy(&c->lock);
    free(c->state_dir);
    free(c);
}
