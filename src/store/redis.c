/* The Redis store: the keys of store.h under "latch:", every value sealed (seal.h), reached
 * through one blocking hiredis connection per calling thread. Only background threads call it:
 * the job pool (proxy/local.c runs the endpoints that need the store there when it is remote)
 * and the cluster thread; a worker's loop never waits on Redis. After a failure, calls fail at
 * once for a second rather than each waiting on a dead server; the cluster thread's ping marks
 * the store up again the moment Redis answers. Large identities are also mirrored in memory
 * and read only from there: admitting a token never needs Redis. */
#include "store/redis.h"

#include "core/log.h"
#include "core/loop.h"
#include "store/backend.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RS_PREFIX "latch:"
#define RS_CONNECT_MS 500
#define RS_COMMAND_MS 1000
#define RS_RETRY_MS 1000
#define RS_HINTS 256
#define RS_HINT_TTL_MS 300000

struct rs_hint {
    char key[96];
    int64_t at_ms; /* monotonic */
};

struct rstore {
    struct store base;
    char host[256];
    int port, db;
    unsigned char key[STORE_KEY_BYTES];
    char *password;              /* Redis AUTH, or NULL */
    pthread_key_t conn;          /* this thread's redisContext */
    atomic_int up;
    _Atomic int64_t retry_at;    /* monotonic ms: fail at once until then */
    struct store *mirror;        /* identities, in memory */
    pthread_mutex_t lock;        /* hints */
    struct rs_hint hints[RS_HINTS];
    size_t hint_next;
};

static void rs__conn_free(void *p)
{
    redisFree(p);
}

void store_redis_health(struct store *base, bool up)
{
    struct rstore *s = (struct rstore *)base;
    int was = atomic_exchange(&s->up, up ? 1 : 0);
    if (!up)
        atomic_store(&s->retry_at, (int64_t)loop_clock_ms() + RS_RETRY_MS);
    if (was != (up ? 1 : 0))
        log_msg(up ? "info" : "error", "redis %s:%d %s", s->host, s->port,
                up ? "answers again: shared state is back" : "cannot be reached: logins answer 503");
}

redisContext *store_redis_connect(struct store *base)
{
    struct rstore *s = (struct rstore *)base;
    struct timeval tv = { 0, RS_CONNECT_MS * 1000 };
    redisContext *c = redisConnectWithTimeout(s->host, s->port, tv);
    if (!c || c->err) {
        redisFree(c);
        return NULL;
    }
    struct timeval ctv = { RS_COMMAND_MS / 1000, (RS_COMMAND_MS % 1000) * 1000 };
    redisSetTimeout(c, ctv);
    redisEnableKeepAlive(c);
    if (s->password) {
        redisReply *r = redisCommand(c, "AUTH %s", s->password);
        bool ok = r && r->type == REDIS_REPLY_STATUS;
        if (r && !ok)
            log_msg("error", "redis %s:%d refused the password of store_password_file: %s", s->host, s->port,
                    r->type == REDIS_REPLY_ERROR ? r->str : "?");
        freeReplyObject(r);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    if (s->db) {
        redisReply *r = redisCommand(c, "SELECT %d", s->db);
        bool ok = r && r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

redisReply *store_redis_command(struct store *base, int argc, const char **argv, const size_t *lens)
{
    struct rstore *s = (struct rstore *)base;
    for (int attempt = 0; attempt < 2; attempt++) {
        redisContext *c = pthread_getspecific(s->conn);
        if (!c) {
            if (!atomic_load(&s->up) && (int64_t)loop_clock_ms() < atomic_load(&s->retry_at))
                return NULL;
            c = store_redis_connect(base);
            if (!c) {
                store_redis_health(base, false);
                return NULL;
            }
            pthread_setspecific(s->conn, c);
        }
        redisReply *r = redisCommandArgv(c, argc, argv, lens);
        if (r)
            return r;
        /* a connection Redis closed while idle (a restart): one more try on a new one; never
         * after a timeout, when the command (a take, an increment) may have run */
        bool broken = c->err == REDIS_ERR_EOF || (c->err == REDIS_ERR_IO && (errno == ECONNRESET || errno == EPIPE));
        redisFree(c);
        pthread_setspecific(s->conn, NULL);
        if (!broken)
            break;
    }
    store_redis_health(base, false);
    return NULL;
}

const unsigned char *store_redis_key(const struct store *base)
{
    return ((const struct rstore *)base)->key;
}

static int rs__up(const struct store *base)
{
    return atomic_load(&((const struct rstore *)base)->up);
}

/* "latch:<key>" into out. */
static size_t rs__name(char *out, size_t cap, const char *key)
{
    int n = snprintf(out, cap, RS_PREFIX "%s", key);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* SET … EX ttl, with NX for store_add: Redis answers nil when the key is there. */
static enum store_result rs__put(struct store *base, const char *key, const void *val, size_t len,
                                 int64_t ttl_s, bool nx)
{
    struct rstore *s = (struct rstore *)base;
    char name[256], ttl[24];
    size_t nl = rs__name(name, sizeof name, key);
    if (!nl)
        return STORE_NOMEM;
    size_t sl;
    unsigned char *sealed = store_seal(s->key, key, val, len, (int64_t)time(NULL) + ttl_s, &sl);
    if (!sealed)
        return STORE_NOMEM;
    snprintf(ttl, sizeof ttl, "%lld", (long long)(ttl_s > 0 ? ttl_s : 1));
    const char *argv[] = { "SET", name, (const char *)sealed, "EX", ttl, "NX" };
    size_t lens[] = { 3, nl, sl, 2, strlen(ttl), 2 };
    redisReply *r = store_redis_command(base, nx ? 6 : 5, argv, lens);
    free(sealed);
    enum store_result rc = !r                              ? STORE_UNAVAILABLE
                           : r->type == REDIS_REPLY_STATUS ? STORE_OK
                           : nx && r->type == REDIS_REPLY_NIL ? STORE_EXISTS
                                                              : STORE_UNAVAILABLE;
    if (r && r->type == REDIS_REPLY_ERROR)
        log_msg("error", "redis SET %s: %s", key, r->str);
    freeReplyObject(r);
    return rc;
}

static const char rs__take_lua[] =
    "local v = redis.call('GET', KEYS[1]) if v then redis.call('DEL', KEYS[1]) end return v";

static enum store_result rs__read(struct store *base, const char *key, char **val, size_t *len, bool take)
{
    struct rstore *s = (struct rstore *)base;
    char name[256];
    size_t nl = rs__name(name, sizeof name, key);
    if (!nl)
        return STORE_NOT_FOUND;
    /* GETDEL needs Redis 6.2: the script is the same single step on any Redis with Lua */
    const char *targv[] = { "EVAL", rs__take_lua, "1", name }, *gargv[] = { "GET", name };
    size_t tlens[] = { 4, sizeof rs__take_lua - 1, 1, nl }, glens[] = { 3, nl };
    redisReply *r = take ? store_redis_command(base, 4, targv, tlens) : store_redis_command(base, 2, gargv, glens);
    if (!r)
        return STORE_UNAVAILABLE;
    enum store_result rc = STORE_NOT_FOUND;
    if (r->type == REDIS_REPLY_STRING) {
        *val = store_unseal(s->key, key, r->str, r->len, len);
        if (*val)
            rc = STORE_OK;
        else
            log_msg("warn", "redis: the value under %s is not one this cluster sealed (or it expired): ignored", key);
    } else if (r->type == REDIS_REPLY_ERROR) {
        log_msg("error", "redis %s %s: %s", take ? "take" : "GET", key, r->str);
        rc = STORE_UNAVAILABLE;
    }
    freeReplyObject(r);
    return rc;
}

/* INCR with the expiry set by the first increment, in one step. */
static const char rs__incr_lua[] =
    "local v = redis.call('INCR', KEYS[1]) if v == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return v";

static int64_t rs__incr(struct store *base, const char *key, int64_t ttl_s)
{
    char name[256], ttl[24];
    size_t nl = rs__name(name, sizeof name, key);
    if (!nl)
        return STORE_NOMEM;
    snprintf(ttl, sizeof ttl, "%lld", (long long)(ttl_s > 0 ? ttl_s : 1));
    const char *argv[] = { "EVAL", rs__incr_lua, "1", name, ttl };
    size_t lens[] = { 4, sizeof rs__incr_lua - 1, 1, nl, strlen(ttl) };
    redisReply *r = store_redis_command(base, 5, argv, lens);
    int64_t v = r && r->type == REDIS_REPLY_INTEGER ? (int64_t)r->integer : STORE_UNAVAILABLE;
    freeReplyObject(r);
    return v;
}

void store_redis_seen(struct store *base, const char *key)
{
    struct rstore *s = (struct rstore *)base;
    pthread_mutex_lock(&s->lock);
    struct rs_hint *h = &s->hints[s->hint_next++ % RS_HINTS];
    snprintf(h->key, sizeof h->key, "%s", key);
    h->at_ms = (int64_t)loop_clock_ms();
    pthread_mutex_unlock(&s->lock);
}

static bool rs__may_have(struct store *base, const char *key, int64_t since_ms)
{
    struct rstore *s = (struct rstore *)base;
    int64_t now = (int64_t)loop_clock_ms();
    bool found = false;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < RS_HINTS && !found; i++)
        found = s->hints[i].key[0] && s->hints[i].at_ms >= since_ms && now - s->hints[i].at_ms < RS_HINT_TTL_MS &&
                !strcmp(s->hints[i].key, key);
    pthread_mutex_unlock(&s->lock);
    return found;
}

static void rs__publish(struct store *base, const char *msg)
{
    const char *argv[] = { "PUBLISH", STORE_REDIS_CHANNEL, msg };
    size_t lens[] = { 7, sizeof STORE_REDIS_CHANNEL - 1, strlen(msg) };
    freeReplyObject(store_redis_command(base, 3, argv, lens));
}

static void rs__announce(struct store *base, const char *key)
{
    char msg[128];
    store_redis_seen(base, key);
    snprintf(msg, sizeof msg, "k %s", key);
    rs__publish(base, msg);
}

static json_t *rs__identity_get(struct store *base, const char *nonce)
{
    struct rstore *s = (struct rstore *)base;
    return store_identity_get(s->mirror, nonce);
}

static enum store_result rs__identity_put(struct store *base, const char *nonce, const char *val, int64_t ttl_s)
{
    struct rstore *s = (struct rstore *)base;
    char key[96], msg[96];
    snprintf(key, sizeof key, "ident:%s", nonce);
    enum store_result rc = rs__put(base, key, val, strlen(val), ttl_s, false);
    if (rc != STORE_OK)
        return rc;
    store_put(s->mirror, key, val, strlen(val), ttl_s);
    snprintf(msg, sizeof msg, "i %s", nonce);
    rs__publish(base, msg);
    return STORE_OK;
}

void store_redis_mirror_identity(struct store *base, const char *nonce)
{
    struct rstore *s = (struct rstore *)base;
    char key[96], name[128];
    snprintf(key, sizeof key, "ident:%s", nonce);
    size_t nl = rs__name(name, sizeof name, key);
    const char *argv[] = { "TTL", name };
    size_t lens[] = { 3, nl };
    redisReply *r = store_redis_command(base, 2, argv, lens);
    int64_t ttl = r && r->type == REDIS_REPLY_INTEGER ? (int64_t)r->integer : -1;
    freeReplyObject(r);
    char *val = NULL;
    size_t len;
    if (ttl > 0 && rs__read(base, key, &val, &len, false) == STORE_OK)
        store_put(s->mirror, key, val, len, ttl);
    free(val);
}

static void rs__free(struct store *base)
{
    struct rstore *s = (struct rstore *)base;
    redisFree(pthread_getspecific(s->conn));
    pthread_setspecific(s->conn, NULL);
    pthread_key_delete(s->conn);
    store_free(s->mirror);
    pthread_mutex_destroy(&s->lock);
    sodium_memzero(s->key, sizeof s->key);
    if (s->password)
        sodium_memzero(s->password, strlen(s->password));
    free(s->password);
    free(s);
}

static const struct store_ops rs__ops = {
    .backend = "redis",
    .put = rs__put,
    .read = rs__read,
    .incr = rs__incr,
    .free = rs__free,
    .up = rs__up,
    .announce = rs__announce,
    .may_have = rs__may_have,
    .identity_get = rs__identity_get,
    .identity_put = rs__identity_put,
};

struct store *store_redis_new(const char *url, const unsigned char key[STORE_KEY_BYTES], const char *password,
                              char **err)
{
    struct rstore *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    const char *p = url + sizeof "redis://" - 1;
    const char *hend;
    if (*p == '[') {
        hend = strchr(p, ']');
        p++;
    } else {
        hend = strrchr(p, ':');
    }
    const char *colon = hend ? strchr(hend, ':') : NULL;
    if (!hend || !colon || (size_t)(hend - p) >= sizeof s->host) {
        if (asprintf(err, "cannot use store %s", url) < 0)
            *err = NULL;
        free(s);
        return NULL;
    }
    memcpy(s->host, p, (size_t)(hend - p));
    s->port = atoi(colon + 1);
    const char *slash = strchr(colon, '/');
    s->db = slash ? atoi(slash + 1) : 0;
    memcpy(s->key, key, STORE_KEY_BYTES);
    s->password = password ? strdup(password) : NULL;
    s->mirror = store_embedded_new();
    pthread_key_create(&s->conn, rs__conn_free);
    pthread_mutex_init(&s->lock, NULL);
    atomic_init(&s->up, 1);
    atomic_init(&s->retry_at, 0);
    s->base.ops = &rs__ops;
    if (!s->mirror || (password && !s->password)) {
        rs__free(&s->base);
        return NULL;
    }
    return &s->base;
}
