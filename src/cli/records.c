/* What the token store holds (SPEC.md §7), on top of store.c's files: per origin, the tokens of
 * each app on it by AUD, with the host's patterns that tell which app a path is; per auth
 * origin, the org token. Each record names the origin it was written for, and is only ever
 * used for exactly that origin (scheme, host, port): a record found under the same name for
 * another scheme or port, or of another format, reads as none. */
#include "cli/cli.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RECORD_VERSION 2
#define ORG_PREFIX "org@" /* '@' is in no origin's key: an org record never shares an app's name */

static bool records__ours(json_t *rec, const struct cli_origin *o)
{
    const char *where = json_string_value(json_object_get(rec, "origin"));
    return json_integer_value(json_object_get(rec, "version")) == RECORD_VERSION && where &&
           !strcmp(where, o->text);
}

json_t *cli_record_read(const char *dir, const struct cli_origin *o)
{
    json_t *rec = cli_store_read(dir, o->key);
    if (rec && (!records__ours(rec, o) || !json_is_object(json_object_get(rec, "apps")))) {
        json_decref(rec);
        rec = NULL;
    }
    return rec;
}

json_t *cli_record_new(const struct cli_origin *o)
{
    return json_pack("{s:i,s:s,s:s,s:o}", "version", RECORD_VERSION, "host", o->key, "origin", o->text, "apps",
                     json_object());
}

int cli_record_write(const char *dir, const struct cli_origin *o, json_t *rec)
{
    return cli_store_write(dir, o->key, rec);
}

const char *cli_record_token(json_t *rec, const char *aud, int64_t margin)
{
    const char *t = json_string_value(json_object_get(json_object_get(json_object_get(rec, "apps"), aud), "app_token"));
    return t && cli_jwt_has_aud(t, aud) && cli_jwt_fresh(t, margin) ? t : NULL;
}

static char *records__org_key(const struct cli_origin *auth)
{
    char *k = NULL;
    return asprintf(&k, ORG_PREFIX "%s", auth->key) < 0 ? NULL : k;
}

char *cli_org_token(const char *dir, const struct cli_origin *auth, int64_t margin)
{
    char *k = records__org_key(auth);
    json_t *rec = k ? cli_store_read(dir, k) : NULL;
    const char *t = records__ours(rec, auth) ? json_string_value(json_object_get(rec, "org_token")) : NULL;
    char *out = t && cli_jwt_fresh(t, margin) ? strdup(t) : NULL;
    json_decref(rec);
    free(k);
    return out;
}

int cli_org_write(const char *dir, const struct cli_origin *auth, const char *auth_domain, const char *token)
{
    char *k = records__org_key(auth);
    json_t *rec = json_pack("{s:i,s:s,s:s,s:s}", "version", RECORD_VERSION, "origin", auth->text, "auth_domain",
                            auth_domain, "org_token", token);
    int rc = k && rec ? cli_store_write(dir, k, rec) : -1;
    json_decref(rec);
    free(k);
    return rc;
}

int cli_org_remove(const char *dir, const struct cli_origin *auth)
{
    char *k = records__org_key(auth);
    int rc = k ? cli_store_remove(dir, k) : -1;
    free(k);
    return rc;
}

char *cli_jwt_session(const char *tok)
{
    json_t *p = cli_jwt_payload(tok);
    const char *s = json_string_value(json_object_get(p, "identity_nonce"));
    char *out = s ? strdup(s) : NULL;
    json_decref(p);
    return out;
}

static bool records__of_session(const char *tok, const char *session)
{
    char *s = tok ? cli_jwt_session(tok) : NULL;
    bool same = s && !strcmp(s, session);
    free(s);
    return same;
}

/* One stored file: drops the tokens of `session` (all of them when session is NULL). */
static int records__forget_in(const char *dir, const char *key, const char *session)
{
    int n = 0, lock = cli_store_lock(dir, key);
    json_t *rec = cli_store_read(dir, key);
    if (rec && !strncmp(key, ORG_PREFIX, sizeof ORG_PREFIX - 1)) {
        if (!session || records__of_session(json_string_value(json_object_get(rec, "org_token")), session)) {
            cli_store_remove(dir, key);
            n++;
        }
    } else if (rec) {
        json_t *apps = json_object_get(rec, "apps");
        const char *aud;
        json_t *app, *tmp;
        json_object_foreach_safe(apps, tmp, aud, app) {
            if (!session || records__of_session(json_string_value(json_object_get(app, "app_token")), session)) {
                json_object_del(apps, aud);
                n++;
            }
        }
        if (!session || !json_is_object(apps))
            cli_store_remove(dir, key);
        else if (n)
            cli_store_write(dir, key, rec);
    }
    json_decref(rec);
    if (lock >= 0)
        close(lock);
    return n;
}

int cli_store_forget(const char *dir, const char *session)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len > 5 && e->d_name[0] != '.' && !strcmp(e->d_name + len - 5, ".json")) {
            char key[300];
            if (len - 5 < sizeof key) {
                snprintf(key, sizeof key, "%.*s", (int)(len - 5), e->d_name);
                n += records__forget_in(dir, key, session);
            }
        }
    }
    closedir(d);
    return n;
}

int cli_store_sessions(const char *dir, json_t *out)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        char key[300];
        if (len <= 5 || e->d_name[0] == '.' || strcmp(e->d_name + len - 5, ".json") || len - 5 >= sizeof key)
            continue;
        snprintf(key, sizeof key, "%.*s", (int)(len - 5), e->d_name);
        json_t *rec = cli_store_read(dir, key);
        if (!rec || json_integer_value(json_object_get(rec, "version")) != RECORD_VERSION) {
            json_decref(rec);
            continue;
        }
        const char *origin = json_string_value(json_object_get(rec, "origin"));
        const char *org = json_string_value(json_object_get(rec, "org_token"));
        if (origin && org) {
            json_array_append_new(out, json_pack("{s:s,s:s}", "origin", origin, "token", org));
        } else if (origin) {
            const char *aud;
            json_t *app;
            json_object_foreach(json_object_get(rec, "apps"), aud, app) {
                const char *t = json_string_value(json_object_get(app, "app_token"));
                if (t)
                    json_array_append_new(out, json_pack("{s:s,s:s}", "origin", origin, "token", t));
            }
        }
        json_decref(rec);
    }
    closedir(d);
    return 0;
}
