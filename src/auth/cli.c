/* The command line's handoff (SPEC.md §7), gateway side: the confirmation page and its POST,
 * the sealed box kept 5 minutes for one read, the long poll that hands it over the moment it
 * is sealed, and the exchange of an org token for an app token (no browser for a second app). */
#include "auth/auth-int.h"

#include "core/log.h"
#include "metrics/metrics.h"
#include "server/runtime.h"
#include "server/worker.h"
#include "store/store.h"
#include "token/handoff.h"
#include "token/jwt.h"
#include "token/revoke.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BOX_TTL_S 300
#define KEY_B64_LEN 43 /* 32 bytes, base64url without padding */

/* The CLI's public key from the URL: exactly 32 bytes of base64url. */
static bool cli__key(const char *b64, unsigned char pk[crypto_box_PUBLICKEYBYTES])
{
    size_t len;
    return strlen(b64) == KEY_B64_LEN &&
           sodium_base642bin(pk, crypto_box_PUBLICKEYBYTES, b64, KEY_B64_LEN, NULL, &len, NULL,
                             sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 &&
           len == crypto_box_PUBLICKEYBYTES;
}

/* The CSRF token of the confirmation form: bound to the session, the host and the key. */
static void cli__csrf(const struct local_req *r, const char *session, const char *host,
                      const char *key, char out[65])
{
    unsigned char mac[32];
    unsigned int len = sizeof mac;
    char msg[1024];
    int n = snprintf(msg, sizeof msg, "cli:%s:%s:%s", session, host, key);
    HMAC(EVP_sha256(), r->rt->secret, 32, (const unsigned char *)msg, (size_t)n, mac, &len);
    sodium_bin2hex(out, 65, mac, sizeof mac);
}

static int cli__confirm_page(struct conn *c, struct local_req *r, const char *host, const char *key,
                             const struct auth_identity *id, const char *session)
{
    unsigned char pk[crypto_box_PUBLICKEYBYTES];
    char code[10], csrf[65];
    cli__key(key, pk);
    handoff_code(pk, code);
    cli__csrf(r, session, host, key, csrf);
    struct strbuf sb;
    sb_init(&sb, 8192);
    sb_adds(&sb, "<h1>Authorize the command line?</h1><p>A terminal asks to reach <b>");
    local_html(&sb, host);
    sb_adds(&sb, "</b> as <b>");
    local_html(&sb, id->email);
    sb_adds(&sb, "</b>. Go on only if you just ran <code>latch</code> and it shows this code:</p><div class=\"code\">");
    sb_adds(&sb, code);
    sb_adds(&sb, "</div><form method=\"post\" action=\"/cdn-cgi/access/cli\"><input type=\"hidden\" name=\"host\" value=\"");
    local_html(&sb, host);
    sb_adds(&sb, "\"><input type=\"hidden\" name=\"key\" value=\"");
    local_html(&sb, key);
    sb_addf(&sb, "\"><input type=\"hidden\" name=\"csrf\" value=\"%s\"><button type=\"submit\">Authorize</button>"
                 "</form><p class=\"muted\">Not you, or not expecting this? Close this tab.</p>", csrf);
    int st = local_page(c, 200, "Authorize the command line", sb.p, NULL);
    sb_free(&sb);
    return st;
}

/* GET cli?host=…&key=…: log in if needed, then the confirmation page. A link alone never
 * hands a token to anybody: only the POST does. */
static int cli__get(struct conn *c, struct local_req *r)
{
    char host[512], key[64];
    unsigned char pk[crypto_box_PUBLICKEYBYTES];
    if (!auth__query(r, "host", host, sizeof host) || !auth__query(r, "key", key, sizeof key) || !cli__key(key, pk))
        return auth__error_page(c, 400, "Invalid link", "This link is incomplete. Run latch again.");
    const struct app *app = auth__target_app(r, host, "/");
    if (!app) {
        log_auth(r->rt->auth_log, "handoff", NULL, NULL, NULL, r->client_ip, false, "no app at that host");
        return auth__error_page(c, 404, "Unknown application", "No application is served at that address.");
    }
    struct auth_identity id;
    char session[33];
    if (auth__org_session(r, &id, session)) {
        int st = cli__confirm_page(c, r, host, key, &id, session);
        auth__identity_free(&id);
        return st;
    }
    char *back = NULL;
    if (asprintf(&back, "host=%s&key=%s", host, key) < 0)
        return auth__error_page(c, 500, "Error", "Out of memory.");
    int st = auth__begin_flow(c, r, app, host, "/", NULL, back);
    free(back);
    return st;
}

/* POST cli: the person confirmed. Policy, tokens, the sealed box, the news to long polls. */
static int cli__post(struct conn *c, struct local_req *r)
{
    char host[512], key[64], csrf[128], want[65];
    unsigned char pk[crypto_box_PUBLICKEYBYTES];
    struct auth_identity id;
    char session[33];
    if (!auth__form(r, "host", host, sizeof host) || !auth__form(r, "key", key, sizeof key) ||
        !auth__form(r, "csrf", csrf, sizeof csrf) || !cli__key(key, pk))
        return auth__error_page(c, 400, "Invalid form", "Run latch again.");
    if (!auth__org_session(r, &id, session))
        return auth__error_page(c, 401, "Signed out", "Your session ended. Run latch again.");
    cli__csrf(r, session, host, key, want);
    int st;
    if (strlen(csrf) != 64 || CRYPTO_memcmp(csrf, want, 64) != 0 ||
        (r->origin && strcmp(r->origin, r->rt->auth_url) != 0)) {
        log_auth(r->rt->auth_log, "handoff", id.email, id.idp, NULL, r->client_ip, false, "CSRF check failed");
        st = auth__error_page(c, 403, "Form expired", "Run latch again.");
        goto out;
    }
    const struct app *app = auth__target_app(r, host, "/");
    const struct policy *decided = NULL;
    if (!app || !auth__admitted(r, app, &id, &decided)) {
        log_auth(r->rt->auth_log, "handoff", id.email, id.idp, app ? app->name : NULL, r->client_ip, false,
                 "no policy admits this person");
        st = auth__error_page(c, 403, "Access denied", "Your account may not use this application.");
        goto out;
    }
    int64_t ttl = runtime_session_s(r->rt, app, decided);
    char *app_tok = auth__mint(r, "app", runtime_app(r->rt, app)->aud, &id, session, ttl);
    char *org_tok = auth__mint(r, "org", r->rt->cfg->auth_domain, &id, session, r->rt->cfg->session_duration_s);
    json_t *j = app_tok && org_tok ? json_pack("{s:s,s:s}", "app_token", app_tok, "org_token", org_tok) : NULL;
    char *plain = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    size_t plen = plain ? strlen(plain) : 0;
    unsigned char *box = plain ? malloc(plen + crypto_box_SEALBYTES) : NULL;
    enum store_result sr = STORE_NOMEM;
    char skey[80];
    if (box && crypto_box_seal(box, (const unsigned char *)plain, plen, pk) == 0) {
        snprintf(skey, sizeof skey, "box:%s", key);
        sr = store_put(r->w->store, skey, box, plen + crypto_box_SEALBYTES, BOX_TTL_S);
    }
    if (plain)
        sodium_memzero(plain, plen);
    free(plain);
    free(box);
    free(app_tok);
    free(org_tok);
    if (sr != STORE_OK) {
        st = auth__store_error(c);
        goto out;
    }
    store_announce(r->w->store, skey); /* a CLI long-polling any node gets it now, */
    worker_signal_parked(r->w);        /* or any worker of this one */
    log_auth(r->rt->auth_log, "handoff", id.email, id.idp, app->name, r->client_ip, true, "sealed for the command line");
    metrics_handoff(r->w->metrics, METRICS_HANDOFF_SEALED);
    st = local_page(c, 200, "Done", "<h1>You are signed in</h1><p>The command line has its token. "
                                    "You can close this tab and return to your terminal.</p>", NULL);
out:
    auth__identity_free(&id);
    return st;
}

/* GET transfer/<key>: the box, once; or wait for it up to the poll's length. */
static int cli__transfer_try(struct conn *c, bool timed_out)
{
    struct local_req *r = local_request(c);
    const char *key = r->name + sizeof "transfer/" - 1;
    char skey[80], *box = NULL;
    size_t len;
    snprintf(skey, sizeof skey, "box:%s", key);
    enum store_result sr = store_take(r->w->store, skey, &box, &len);
    if (sr == STORE_OK) {
        metrics_handoff(r->w->metrics, METRICS_HANDOFF_DELIVERED);
        int st = local_reply(c, 200, "application/octet-stream", box, len, NULL);
        free(box);
        return st;
    }
    if (sr == STORE_UNAVAILABLE)
        return auth__store_error(c);
    if (timed_out) { /* nothing yet: the CLI polls again */
        metrics_handoff(r->w->metrics, METRICS_HANDOFF_PENDING);
        return local_reply(c, 204, "application/json", "", 0, NULL);
    }
    return local_park(c, cli__transfer_try, skey);
}

static int cli__transfer(struct conn *c, struct local_req *r)
{
    unsigned char pk[crypto_box_PUBLICKEYBYTES];
    if (!cli__key(r->name + sizeof "transfer/" - 1, pk))
        return local_json(c, 400, json_pack("{s:s}", "error", "bad_key"), NULL);
    return cli__transfer_try(c, false);
}

/* POST token (host=…) with the org token in cf-access-token: an app token for another app. */
static int cli__token(struct conn *c, struct local_req *r, const char *org_header)
{
    char host[512];
    if (!org_header || !auth__form(r, "host", host, sizeof host))
        return local_json(c, 400, json_pack("{s:s}", "error", "host and cf-access-token required"), NULL);
    struct token t;
    time_t now = time(NULL);
    struct auth_identity id = { 0 };
    enum token_status ts = jwt_decode(r->keys, org_header, strlen(org_header), now, &t);
    if (ts == TOKEN_OK)
        ts = token_check(&t, r->rt->auth_url, "org", r->rt->cfg->auth_domain, now);
    if (ts == TOKEN_OK && revocations_check(r->rev, t.email, NULL, t.identity_nonce, t.iat))
        ts = TOKEN_REVOKED;
    if (ts == TOKEN_OK && (!t.identity_nonce || strlen(t.identity_nonce) != 32 ||
                           auth__token_identity(r, &t, &id) != 0))
        ts = TOKEN_BAD_CLAIMS;
    char session[33] = "";
    if (ts == TOKEN_OK)
        snprintf(session, sizeof session, "%s", t.identity_nonce);
    token_free(&t);
    if (ts != TOKEN_OK)
        return local_json(c, 401, json_pack("{s:s,s:s}", "error", "login_required", "token_error",
                                             token_status_name(ts)), NULL);
    const struct app *app = auth__target_app(r, host, "/");
    const struct policy *decided = NULL;
    int st;
    if (!app) {
        st = local_json(c, 404, json_pack("{s:s}", "error", "no_app"), NULL);
    } else if (!auth__admitted(r, app, &id, &decided)) {
        log_auth(r->rt->auth_log, "app_token", id.email, id.idp, app->name, r->client_ip, false, "no policy admits this person");
        st = local_json(c, 403, json_pack("{s:s,s:s,s:s}", "error", "forbidden", "email", id.email, "app", app->name), NULL);
    } else {
        char *tok = auth__mint(r, "app", runtime_app(r->rt, app)->aud, &id, session,
                               runtime_session_s(r->rt, app, decided));
        log_auth(r->rt->auth_log, "app_token", id.email, id.idp, app->name, r->client_ip, tok != NULL,
                 "exchanged an org token");
        st = tok ? local_json(c, 200, json_pack("{s:s,s:s,s:s}", "app_token", tok, "app", app->name, "aud",
                                                runtime_app(r->rt, app)->aud), NULL)
                 : local_json(c, 500, json_pack("{s:s}", "error", "signing failed"), NULL);
        free(tok);
    }
    auth__identity_free(&id);
    return st;
}

int auth__cli(struct conn *c, struct local_req *r, const char *org_header)
{
    if (!strcmp(r->name, "cli"))
        return strcmp(r->method, "POST") ? cli__get(c, r) : cli__post(c, r);
    if (!strncmp(r->name, "transfer/", 9))
        return cli__transfer(c, r);
    if (!strcmp(r->name, "token") && !strcmp(r->method, "POST"))
        return cli__token(c, r, org_header);
    return auth__error_page(c, 404, "Not found", "No such page.");
}
