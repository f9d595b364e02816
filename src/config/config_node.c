/* Typed access to the configuration's YAML tree (config-int.h): the readers that config.c and
 * config_apps.c share, each reporting what it expected at the value. */
#include "config/config-int.h"
#include "core/suggest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_MAX_DURATION_S (3650LL * 86400)

void *config__calloc(struct config__ctx *c, size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        c->oom = true;
    return p;
}

char *config__strdup(struct config__ctx *c, const char *s)
{
    char *d = strdup(s);
    if (!d)
        c->oom = true;
    return d;
}

const char *config__kind_name(const struct config__node *n)
{
    switch (n->kind) {
    case CONFIG__MAP:
        return "a mapping";
    case CONFIG__SEQ:
        return "a list";
    default:
        return config__is_null(n) ? "null" : "a string";
    }
}

void config__unknown(struct config__ctx *c, struct config_pos pos, const char *kind,
                     const char *typed, const char *what, const char *const *words, size_t n)
{
    char list[1024] = "";
    size_t len = 0;
    for (size_t i = 0; i < n && len < sizeof list; i++)
        if (words[i])
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", len ? ", " : "", words[i]);
    char mean[CONFIG__MEAN_MAX];
    config__error(c, pos, "unknown %s '%s' in %s%s; valid %ss: %s", kind, typed, what,
                  config__mean(mean, typed, words, n), kind, list);
}

const char *config__mean(char out[CONFIG__MEAN_MAX], const char *typed, const char *const *words,
                         size_t n)
{
    const char *near = suggest_closest(typed, words, n);
    out[0] = '\0';
    if (near)
        snprintf(out, CONFIG__MEAN_MAX, " (did you mean '%s'?)", near);
    return out;
}

bool config__map(struct config__ctx *c, const struct config__node *map, const char *what,
                 const char *const *keys, const struct config__node **vals)
{
    size_t nkeys = 0;
    while (keys[nkeys])
        nkeys++;
    for (size_t i = 0; i < nkeys; i++)
        vals[i] = NULL;
    if (map->kind != CONFIG__MAP) {
        config__error(c, map->pos, "%s must be a mapping, got %s", what, config__kind_name(map));
        return false;
    }
    for (size_t k = 0; k + 1 < map->n; k += 2) {
        const struct config__node *key = config__kid(c, map, k);
        if (key->kind != CONFIG__SCALAR) {
            config__error(c, key->pos, "keys in %s must be strings, got %s", what,
                          config__kind_name(key));
            continue;
        }
        size_t i = 0;
        while (i < nkeys && strcmp(keys[i], key->text) != 0)
            i++;
        if (i == nkeys) {
            config__unknown(c, key->pos, "key", key->text, what, keys, nkeys);
            continue;
        }
        /* A repeated key would silently override the first: refused. */
        if (vals[i]) {
            config__error(c, key->pos, "duplicate key '%s' in %s", key->text, what);
            continue;
        }
        vals[i] = config__kid(c, map, k + 1);
    }
    return true;
}

bool config__required(struct config__ctx *c, const struct config__node *map,
                      const struct config__node *val, const char *key, const char *what)
{
    if (!val)
        config__error(c, map->pos, "missing required key '%s' in %s", key, what);
    return val != NULL;
}

char *config__string(struct config__ctx *c, const struct config__node *n, const char *key)
{
    if (!n)
        return NULL;
    if (n->kind != CONFIG__SCALAR || config__is_null(n)) {
        config__error(c, n->pos, "'%s' must be a string, got %s", key, config__kind_name(n));
        return NULL;
    }
    if (n->len == 0) {
        config__error(c, n->pos, "'%s' must not be empty", key);
        return NULL;
    }
    /* Names, paths and addresses never need control characters; a NUL would truncate. */
    for (size_t i = 0; i < n->len; i++) {
        unsigned char ch = (unsigned char)n->text[i];
        if (ch < 0x20 || ch == 0x7f) {
            config__error(c, n->pos, "'%s' contains a control character", key);
            return NULL;
        }
    }
    return config__strdup(c, n->text);
}

bool config__list(struct config__ctx *c, const struct config__node *n, const char *key,
                  const char *items)
{
    if (n->kind == CONFIG__SEQ)
        return true;
    config__error(c, n->pos, "'%s' must be a list of %s, got %s", key, items,
                  config__kind_name(n));
    return false;
}

bool config__bool(struct config__ctx *c, const struct config__node *n, const char *key,
                  bool *out)
{
    /* Only plain true/false: YAML 1.1's yes/no/on/off are too easy to write by accident. */
    if (n->kind == CONFIG__SCALAR && n->implicit) {
        if (!strcmp(n->text, "true") || !strcmp(n->text, "True") || !strcmp(n->text, "TRUE")) {
            *out = true;
            return true;
        }
        if (!strcmp(n->text, "false") || !strcmp(n->text, "False") ||
            !strcmp(n->text, "FALSE")) {
            *out = false;
            return true;
        }
    }
    config__error(c, n->pos, "'%s' must be true or false", key);
    return false;
}

bool config__duration_ms(struct config__ctx *c, const struct config__node *n,
                               const char *key, int64_t max_ms, int64_t *out)
{
    char *s = config__string(c, n, key);
    if (!s)
        return false;
    int64_t ms = config_parse_duration_ms(s);
    free(s);
    if (ms < 0) {
        config__error(c, n->pos, "'%s' must be a duration such as 90s, 24h or 1h30m "
                                 "(units ms s m h d w)", key);
        return false;
    }
    if (ms == 0) {
        config__error(c, n->pos, "'%s' must be longer than 0", key);
        return false;
    }
    if (ms > max_ms) {
        config__error(c, n->pos, "'%s' is too long", key);
        return false;
    }
    *out = ms;
    return true;
}

bool config__duration_s(struct config__ctx *c, const struct config__node *n, const char *key,
                        int64_t *out)
{
    int64_t ms;
    if (!config__duration_ms(c, n, key, CONFIG_MAX_DURATION_S * 1000, &ms))
        return false;
    if (ms % 1000) {
        config__error(c, n->pos, "'%s' must be a whole number of seconds", key);
        return false;
    }
    *out = ms / 1000;
    return true;
}
