/* Service tokens kept in state_dir (svctokens.h). */
#include "token/svctokens.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool svc__valid(json_t *v, time_t now)
{
    const char *id = json_string_value(json_object_get(v, "client_id"));
    const char *sha = json_string_value(json_object_get(v, "secret_sha256"));
    json_int_t exp = json_integer_value(json_object_get(v, "expires"));
    if (!id || !*id || strlen(id) > 200 || !sha || strlen(sha) != 64 || strspn(sha, "0123456789abcdef") != 64)
        return false;
    return exp == 0 || exp > now;
}

struct svc_tokens *svc_tokens_load(const char *state_dir, char **err)
{
    struct statefile_stamp stamp;
    statefile_stamp(state_dir, SVC_TOKENS_FILE, &stamp);
    json_t *root = statefile_read(state_dir, SVC_TOKENS_FILE, err);
    if (!root)
        return NULL;
    struct svc_tokens *s = calloc(1, sizeof *s);
    if (s)
        s->t = calloc(json_object_size(root) + 1, sizeof *s->t);
    if (!s || !s->t) {
        free(s);
        json_decref(root);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->stamp = stamp;
    time_t now = time(NULL);
    const char *name;
    json_t *v;
    json_object_foreach(root, name, v) {
        if (!svc__valid(v, now))
            continue;
        struct service_token_cfg *t = &s->t[s->n++];
        t->name = strdup(name);
        t->client_id = strdup(json_string_value(json_object_get(v, "client_id")));
        t->secret_sha256 = strdup(json_string_value(json_object_get(v, "secret_sha256")));
        t->expires = (time_t)json_integer_value(json_object_get(v, "expires"));
    }
    json_decref(root);
    return s;
}

void svc_tokens_ref(struct svc_tokens *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void svc_tokens_unref(struct svc_tokens *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->t[i].name);
        free(s->t[i].client_id);
        free(s->t[i].secret_sha256);
    }
    free(s->t);
    free(s);
}

bool svc_tokens_stale(const struct svc_tokens *s, const char *state_dir)
{
    struct statefile_stamp now;
    statefile_stamp(state_dir, SVC_TOKENS_FILE, &now);
    return !statefile_same(&now, &s->stamp);
}

const struct service_token_cfg *svc_tokens_find(const struct svc_tokens *s, const char *client_id, size_t n)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (s->t[i].client_id && strlen(s->t[i].client_id) == n && !memcmp(s->t[i].client_id, client_id, n))
            return &s->t[i];
    return NULL;
}

static int svc__merge(json_t *root, void *arg)
{
    json_t *add = arg;
    time_t now = time(NULL);
    int changed = 0;
    const char *name;
    json_t *v;
    void *next;
    json_object_foreach_safe(root, next, name, v) {
        if (!svc__valid(v, now)) {
            json_object_del(root, name);
            changed = 1;
        }
    }
    json_object_foreach(add, name, v) {
        if (!svc__valid(v, now) || strlen(name) > 200)
            continue;
        json_t *cur = json_object_get(root, name);
        json_int_t c0 = json_integer_value(json_object_get(cur, "created"));
        json_int_t c1 = json_integer_value(json_object_get(v, "created"));
        if (cur && (c1 < c0 || json_equal(cur, v)))
            continue;
        json_object_set(root, name, v);
        changed = 1;
    }
    return changed;
}

int svc_tokens_merge(const char *state_dir, json_t *add, char **err)
{
    return statefile_update(state_dir, SVC_TOKENS_FILE, svc__merge, add, err);
}

bool svc_token_secret_ok(const struct service_token_cfg *st, const char *secret)
{
    unsigned char md[32];
    char hex[65];
    SHA256((const unsigned char *)secret, strlen(secret), md);
    sodium_bin2hex(hex, sizeof hex, md, sizeof md);
    const char *want = st && st->secret_sha256 ? st->secret_sha256
                                               : "0000000000000000000000000000000000000000000000000000000000000000";
    return CRYPTO_memcmp(hex, want, 64) == 0 && st;
}
