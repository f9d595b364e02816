/* POST /cdn-cgi/access/cert_sign on an app's host: a short-lived OpenSSH user certificate for the
 * bearer of an app token (a person the app's allow policy admits) or of service-token headers
 * (a token its service_auth policy admits), for the public key in the JSON body
 * {"public_key": "<OpenSSH public key line>"}, signed by the app's SSH CA (token/sshca.h):
 * {"certificate": "<cert line>", "expires_at": <unix s>}. Its principals come from the app's
 * `ssh:` (a person) or the token's `ssh:` (a service token); an identity they give no name is
 * refused. Every certificate issued, and every refusal after authentication, is an auth-log
 * event ("ssh_cert"). */
#include "auth/auth-int.h"

#include "core/log.h"
#include "core/sshname.h"
#include "policy/policy.h"
#include "request/endpoint.h"
#include "store/cluster.h"
#include "token/sshca.h"
#include "token/sshcert.h"
#include "token/svctokens.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SSH_SIGN_BACKDATE_S 60 /* valid from a minute ago: clocks of servers drift */

/* Who asks: a person or a service token, and the names its certificate may carry. */
struct ssh_bearer {
    struct auth_identity id;          /* a person's (id.email NULL for a service token) */
    const struct service_token_cfg *svc;
    int64_t exp;                      /* the token's own expiry (0: none) */
    char *principals[SSH_CERT_PRINCIPALS_MAX];
    size_t nprincipals;
};

static void ssh_sign__bearer_free(struct ssh_bearer *b)
{
    auth__identity_free(&b->id);
    for (size_t i = 0; i < b->nprincipals; i++)
        free(b->principals[i]);
}

static enum endpoint_result ssh_sign__unauthenticated(struct exchange *c)
{
    return endpoint_json(c, 401, json_pack("{s:s,s:s}", "error", "not_authenticated", "message",
                                           "an app token (cf-access-token or the cookie) or service-token "
                                           "headers are needed"),
                         NULL);
}

static void ssh_sign__refused(const struct endpoint_req *r, const struct app *app, const struct ssh_bearer *b,
                              const char *reason)
{
    struct log_field f[] = { { "service_token", b->svc ? b->svc->name : NULL, 0, false } };
    log_auth_fields(r->site->auth_log, "ssh_cert", b->id.email, b->id.idp, app->name, r->client_ip, false, reason,
                    f, 1);
}

/* Service-token headers: the configured token they name, if its secret matches and it is live. */
static enum token_status ssh_sign__service(const struct endpoint_req *r, struct ssh_bearer *b)
{
    const struct config *cfg = r->site->cfg;
    const struct service_token_cfg *st = NULL;
    for (size_t i = 0; r->client_id && i < cfg->nservice_tokens; i++)
        if (!strcmp(cfg->service_tokens[i].client_id, r->client_id))
            st = &cfg->service_tokens[i];
    if (!r->client_id || !r->client_secret || !svc_token_secret_ok(st, r->client_secret))
        return TOKEN_BAD_SIGNATURE;
    if (st->expires && time(NULL) >= st->expires)
        return TOKEN_EXPIRED;
    b->svc = st;
    b->exp = st->expires;
    return TOKEN_OK;
}

/* The principals of a person: the app's list, then those of their groups and of their address. */
static int ssh_sign__person_principals(const struct app_ssh *s, struct ssh_bearer *b)
{
    const char *email = b->id.email;
    int rc = ssh_principals_expand((const char *const *)s->principals, s->nprincipals, email, NULL, b->principals,
                                   &b->nprincipals, SSH_CERT_PRINCIPALS_MAX);
    for (size_t i = 0; rc == 0 && i < s->nby_group; i++)
        for (size_t g = 0; g < b->id.ngroups; g++)
            if (!strcmp(s->by_group[i].key, b->id.groups[g])) {
                rc |= ssh_principals_expand((const char *const *)s->by_group[i].principals,
                                            s->by_group[i].nprincipals, email, NULL, b->principals,
                                            &b->nprincipals, SSH_CERT_PRINCIPALS_MAX);
                break;
            }
    for (size_t i = 0; rc == 0 && email && i < s->nby_email; i++)
        if (!strcmp(s->by_email[i].key, email))
            rc |= ssh_principals_expand((const char *const *)s->by_email[i].principals, s->by_email[i].nprincipals,
                                        email, NULL, b->principals, &b->nprincipals, SSH_CERT_PRINCIPALS_MAX);
    return rc;
}

/* The public key line of the JSON body; NULL (and *why) when the body is not that. */
static const char *ssh_sign__body_key(const struct endpoint_req *r, json_t **j, const char **why)
{
    json_error_t je;
    *j = r->body.len ? json_loadb(r->body.p, r->body.len, JSON_REJECT_DUPLICATES, &je) : NULL;
    json_t *k = json_object_get(*j, "public_key");
    *why = !*j ? "the body must be JSON: {\"public_key\": \"<OpenSSH public key line>\"}"
               : !json_is_string(k) ? "the body has no \"public_key\" string"
                                    : NULL;
    return *why ? NULL : json_string_value(k);
}

static char *ssh_sign__joined(char *const *v, size_t n)
{
    struct strbuf sb;
    sb_init(&sb, SSH_CERT_PRINCIPALS_MAX * (SSH_PRINCIPAL_MAX + 1));
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_add(&sb, ",", 1);
        sb_adds(&sb, v[i]);
    }
    if (sb.overflow || !sb.p) {
        sb_free(&sb);
        return strdup("");
    }
    return sb.p;
}

/* Signs, logs and answers. */
static enum endpoint_result ssh_sign__issue(struct exchange *c, struct endpoint_req *r, const struct app *app,
                                            struct ssh_bearer *b, const struct ssh_pubkey *key)
{
    const struct app_ssh *s = app->ssh;
    char *err = NULL;
    if (cluster_sshca_ensure(r->store, r->site->cfg->state_dir, app->name, &err) != 0) {
        log_msg("error", "cert_sign: %s", err ? err : "no SSH CA");
        free(err);
        return endpoint_busy(c, "store_unavailable", "Try again", "The SSH certificate authority is not reachable; try again shortly.", 5);
    }
    EVP_PKEY *ca = sshca_load(r->site->cfg->state_dir, app->name, true, &err);
    if (!ca) {
        log_msg("error", "cert_sign: %s", err ? err : "no SSH CA");
        free(err);
        return endpoint_error(c, 500, "internal_error", "The SSH certificate authority is not available.");
    }
    int64_t now = time(NULL);
    int64_t before = now + s->cert_duration_s;
    if (before > now + APP_SSH_CERT_MAX_S)
        before = now + APP_SSH_CERT_MAX_S;
    if (b->exp && before > b->exp)
        before = b->exp;
    const char *key_id = b->svc ? b->svc->name : b->id.email;
    uint64_t serial;
    randombytes_buf(&serial, sizeof serial);
    struct ssh_cert_req req = { .key = key, .serial = serial, .key_id = key_id,
                                .principals = (const char *const *)b->principals, .nprincipals = b->nprincipals,
                                .valid_after = (uint64_t)(now - SSH_SIGN_BACKDATE_S),
                                .valid_before = (uint64_t)before, .permit_pty = s->permit_pty,
                                .permit_port_forwarding = s->permit_port_forwarding };
    char *cert = before > now ? ssh_cert_sign(&req, ca, key_id) : NULL;
    EVP_PKEY_free(ca);
    if (!cert) {
        ssh_sign__refused(r, app, b, before > now ? "signing failed" : "the token expires now");
        return before > now ? endpoint_error(c, 500, "internal_error", "The certificate could not be signed.")
                            : ssh_sign__unauthenticated(c);
    }
    char fp[SSH_FINGERPRINT_LEN], serial_s[24];
    ssh_pubkey_fingerprint(key, fp);
    snprintf(serial_s, sizeof serial_s, "%llu", (unsigned long long)serial);
    char *names = ssh_sign__joined(b->principals, b->nprincipals);
    struct log_field f[] = {
        { "service_token", b->svc ? b->svc->name : NULL, 0, false },
        { "key_id", key_id, 0, false },
        { "key_fingerprint", fp, 0, false },
        { "key_type", key->type == SSH_KEY_ED25519 ? "ssh-ed25519" : "ecdsa-sha2-nistp256", 0, false },
        { "principals", names ? names : "", 0, false },
        { "serial", serial_s, 0, false },
        { "valid_after", NULL, now - SSH_SIGN_BACKDATE_S, true },
        { "valid_before", NULL, before, true },
    };
    log_auth_fields(r->site->auth_log, "ssh_cert", b->id.email, b->id.idp, app->name, r->client_ip, true,
                    "certificate issued", f, sizeof f / sizeof f[0]);
    free(names);
    enum endpoint_result st =
        endpoint_json(c, 200, json_pack("{s:s,s:I}", "certificate", cert, "expires_at", (json_int_t)before), NULL);
    free(cert);
    return st;
}

enum endpoint_result auth__cert_sign(struct exchange *c, struct endpoint_req *r)
{
    if (strcmp(r->method, "POST"))
        return endpoint_error(c, 405, "method_not_allowed",
                              "cert_sign takes a POST with {\"public_key\": \"<OpenSSH public key line>\"}.");
    const struct app *app = r->on_auth_domain ? NULL : auth__target_app(r, r->host, "/");
    if (!app)
        return endpoint_error(c, 404, "not_found", "No application is served at this address.");
    if (!app->ssh)
        return endpoint_error(c, 404, "ssh_not_configured",
                              "This application does not issue SSH certificates (no ssh: in its configuration).");
    /* a page of another site that makes the browser post here (with its cookie) gets nothing
     * signed: the command line sends no Fetch metadata, Origin or Referer */
    if (r->foreign)
        return endpoint_error(c, 403, "cross_site", "cert_sign does not answer other sites' pages.");
    struct ssh_bearer b = { 0 };
    enum endpoint_result st;
    json_t *body = NULL;
    if (r->client_id || r->client_secret) {
        enum token_status ts = ssh_sign__service(r, &b);
        if (ts != TOKEN_OK) {
            auth__bearer_refused(r, "ssh_cert", app, ts);
            st = ssh_sign__unauthenticated(c);
            goto out;
        }
        struct identity pid = { .service_token = b.svc->name };
        struct policy_result res;
        auth__evaluate(r, app, &pid, &res);
        if (res.decision != ACCESS_SERVICE_AUTH && res.decision != ACCESS_ALLOW) {
            ssh_sign__refused(r, app, &b, "refused by policy");
            st = endpoint_error(c, 403, "access_denied", "Refused by policy: this service token may not reach this application.");
            goto out;
        }
        if (ssh_principals_expand((const char *const *)b.svc->ssh_principals, b.svc->nssh_principals, NULL,
                                  b.svc->name, b.principals, &b.nprincipals, SSH_CERT_PRINCIPALS_MAX) != 0) {
            st = endpoint_error(c, 500, "internal_error", "Out of memory.");
            goto out;
        }
    } else {
        char session[33];
        const struct app *at = NULL;
        bool presented;
        enum token_status ts = auth__bearer(r, &b.id, session, &at, &presented, &b.exp);
        if (ts != TOKEN_OK || at != app) {
            if (presented)
                auth__bearer_refused(r, "ssh_cert", app, ts);
            st = ssh_sign__unauthenticated(c);
            goto out;
        }
        const struct policy *decided = NULL;
        if (!auth__admitted(r, app, &b.id, &decided) || !decided || decided->decision != DECISION_ALLOW) {
            ssh_sign__refused(r, app, &b, "refused by policy");
            st = endpoint_error(c, 403, "access_denied", "Refused by policy: you may not reach this application.");
            goto out;
        }
        if (ssh_sign__person_principals(app->ssh, &b) != 0) {
            st = endpoint_error(c, 500, "internal_error", "Out of memory.");
            goto out;
        }
    }
    const char *why;
    const char *line = ssh_sign__body_key(r, &body, &why);
    struct ssh_pubkey key;
    enum ssh_parse ps = line ? ssh_pubkey_parse(line, strlen(line), &key, &why) : SSH_PK_MALFORMED;
    if (ps != SSH_PK_OK) {
        st = endpoint_json(c, 400, json_pack("{s:s,s:s}", "error",
                                             ps == SSH_PK_UNSUPPORTED ? "unsupported_key_type" : "bad_request",
                                             "message", why),
                           NULL);
        goto out;
    }
    if (!b.nprincipals) {
        ssh_sign__refused(r, app, &b, "no principal");
        st = endpoint_json(c, 403, json_pack("{s:s,s:s}", "error", "principal_not_allowed", "message",
                                             "certificate not allowed for this principal: the configuration "
                                             "gives this identity no SSH login name on this application"),
                           NULL);
        goto out;
    }
    st = ssh_sign__issue(c, r, app, &b, &key);
out:
    json_decref(body);
    ssh_sign__bearer_free(&b);
    return st;
}
