/* The shared control operations of control_ops.h: revocation and key rotation. */
#include "server/control_ops.h"

#include "server/control_socket.h"
#include "core/email.h"
#include "core/log.h"
#include "token/jwt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

json_t *control_op_revoke(struct runtime *rt, const json_t *req, struct revocations **loaded)
{
    const struct config *cfg = rt->cfg;
    const char *email = json_string_value(json_object_get(req, "email"));
    const char *app = json_string_value(json_object_get(req, "app"));
    if (!email == !app)
        return control_reply_error("revoke takes exactly one of \"email\" or \"app\" (a string)");
    char key[320];
    if (snprintf(key, sizeof key, "%s", email ? email : app) >= (int)sizeof key)
        return control_reply_error("revoke: the %s is too long", email ? "email" : "app name");
    if (email) {
        for (char *p = key; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        if (!token_email_ok(key))
            return control_reply_error("revoke: '%s' is not one email address", email);
        /* the mailbox: every spelling that reaches it is refused (sub-addresses, Gmail's dots) */
        char mailbox[sizeof key];
        if (email_mailbox(key, cfg->subaddress_separators, mailbox, sizeof mailbox))
            memcpy(key, mailbox, sizeof key);
    } else {
        size_t i = 0;
        while (i < cfg->napps && strcmp(cfg->apps[i].name, app))
            i++;
        if (i == cfg->napps)
            return control_reply_error("no app named '%s' in the configuration", app);
    }
    int64_t before = (int64_t)time(NULL);
    char *err = NULL;
    if (revocations_add(cfg->state_dir, email ? REVOKE_EMAIL : REVOKE_APP, key, before, &err) != 0) {
        json_t *r = control_reply_error("revoke: %s", err ? err : "cannot write the revocations");
        free(err);
        return r;
    }
    log_auth(rt->auth_log, "revoke", email ? key : NULL, NULL, app, NULL, true, "latchd revoke");
    if (loaded) {
        *loaded = revocations_load(cfg->state_dir, &err);
        if (!*loaded) {
            json_t *r = control_reply_error("revoked, but cannot read the revocations back: %s",
                                          err ? err : "corrupt file");
            free(err);
            return r;
        }
    }
    return json_pack("{s:b,s:s,s:s,s:I}", "ok", 1, "revoked", email ? "email" : "app", "key", key,
                     "before", (json_int_t)before);
}

json_t *control_op_keys_rotate(struct runtime *rt, struct keyset **loaded)
{
    const struct config *cfg = rt->cfg;
    char *err = NULL;
    struct keyset *ks = keys_load(cfg->state_dir, cfg->key_rotation_s, cfg->key_overlap_s, true, &err);
    if (!ks) {
        json_t *r = control_reply_error("keys rotate: %s", err ? err : "cannot make a signing key");
        free(err);
        return r;
    }
    log_auth(rt->auth_log, "key_rotation", NULL, NULL, NULL, NULL, true, ks->keys[0].kid);
    json_t *r = json_pack("{s:b,s:s,s:o}", "ok", 1, "kid", ks->keys[0].kid, "keys",
                          control_keys_json(ks, time(NULL)));
    if (loaded)
        *loaded = ks;
    else
        keyset_unref(ks);
    return r;
}

json_t *control_time_json(time_t t)
{
    char s[32];
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(s);
}

json_t *control_keys_json(const struct keyset *ks, time_t now)
{
    json_t *a = json_array();
    for (size_t i = 0; ks && i < ks->n; i++) {
        const struct signing_key *k = &ks->keys[i];
        json_t *o = json_pack("{s:s,s:o,s:I,s:b}", "kid", k->kid, "created", control_time_json(k->created),
                              "age_s", (json_int_t)(now - k->created), "signing", i == 0);
        if (k->verify_until)
            json_object_set_new(o, "verify_until", control_time_json(k->verify_until));
        json_array_append_new(a, o);
    }
    return a;
}

size_t control_revocations_count(const struct revocations *r)
{
    size_t n = 0;
    for (int k = 0; r && k < REVOKE_KINDS; k++)
        n += r->n[k];
    return n;
}
