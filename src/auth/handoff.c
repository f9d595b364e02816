/* The command line's handoff (SPEC.md §7), gateway side (latch's side: src/cli/handoff.c; the
 * sealing: src/token/handoff.c): the confirmation page and its POST, the sealed box kept 5
 * minutes for one read, the long poll that hands it over the moment it is sealed, and the
 * exchange of an org token for an app token (no browser for a second app).
 *
 * Who may complete a handoff. The link `cli?host=H&key=K` that latch hands to its browser is
 * claimed by the first browser that opens it (an add-if-absent in the store): that browser gets
 * a binding cookie and is sent on to `cli?req=ID`, a clean URL with an opaque request id, so the
 * key leaves the address bar and the history. Another browser opening the same link later is
 * refused, visibly and in the auth log: somebody else had the link. The confirmation page and
 * its POST need the binding cookie; a request is confirmed once (a second POST is refused, also
 * visibly). And only the holder of the key's private half can take the box: a poll proves it
 * with a keyed MAC that the gateway sealed to the key (no state kept; any node can check it).
 *
 * Which app. A handoff, an exchange and the discovery all name the app by host and path, the
 * path normalized and matched as a request's is (auth__app_at): several apps on one host (one
 * at /private/STAR, another at the root) each get their own token. The discovery also tells the
 * holder of a valid token every pattern of that host, so that the command line picks the token
 * for a path itself, with no round trip (route_each_for_host).
 *
 * Whose session. The command line gets a session of its own at the handoff (a new
 * identity_nonce, not the browser's): `latch logout` ends it (cli-logout) and leaves the
 * person's browser signed in, and a browser logout leaves the command line alone. */
#include "auth/auth-int.h"
#include "auth/auth.h"
#include "core/base64url.h"

#include "route/route.h"
#include "route/served.h"

#include "core/log.h"
#include "http/cookie.h"
#include "http/form.h"
#include "metrics/metrics.h"
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
#include <strings.h>
#include <time.h>

#define BOX_TTL_S 300
#define REQ_TTL_S 900    /* a login in between: the provider's pages, a PIN's email (10 min) */
#define PROOF_TTL_S 900  /* a poll's proof of possession; the CLI asks for a new one after it */
#define KEY_B64_LEN 43   /* 32 bytes, base64url without padding */
#define CLI_COOKIE "latch_cli"
#define PROOF_SCHEME "Latch-Proof"

/* The CLI's public key from the URL: exactly 32 bytes of base64url. */
static bool cli__key(const char *b64, unsigned char pk[crypto_box_PUBLICKEYBYTES])
{
    size_t len;
    return strlen(b64) == KEY_B64_LEN &&
           b64url_decode(b64, KEY_B64_LEN, pk, crypto_box_PUBLICKEYBYTES, &len) == 0 &&
           len == crypto_box_PUBLICKEYBYTES;
}

static bool cli__hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* HMAC-SHA256 under the runtime secret of "label:a:b:c" as 64 hex digits. */
static void cli__mac(const struct endpoint_req *r, const char *label, const char *a, const char *b,
                     const char *c3, char out[65])
{
    unsigned char mac[32];
    unsigned int len = sizeof mac;
    char msg[1024];
    int n = snprintf(msg, sizeof msg, "%s:%s:%s:%s", label, a, b, c3);
    HMAC(EVP_sha256(), r->site->secret, 32, (const unsigned char *)msg, (size_t)n, mac, &len);
    sodium_bin2hex(out, 65, mac, sizeof mac);
}

/* The binding cookie's name: __Host- wherever cookies are Secure (TLS, or behind a TLS
 * terminator), which pins it to this host and Path=/. */
/* This browser's binding nonce (32 hex digits), if it holds one. */
static bool cli__binding(const struct endpoint_req *r, char nonce[33])
{
    return auth__own_cookie(r, CLI_COOKIE, nonce, 33) && cli__hex(nonce, 32);
}

/* What the store keeps of the binding: a hash, so a store reader cannot act as the browser. */
static void cli__binding_hash(const char nonce[33], char out[65])
{
    unsigned char h[32];
    crypto_hash_sha256(h, (const unsigned char *)nonce, 32);
    sodium_bin2hex(out, 65, h, sizeof h);
}

/* One handoff request: what `clireq:<id>` holds. */
#define NONCE_B64_LEN 22 /* the CLI's request nonce: 16 bytes, base64url */

struct cli_req {
    char id[33];
    char key[KEY_B64_LEN + 1];
    char n[NONCE_B64_LEN + 1]; /* sealed into the box: the CLI takes only its own request's */
    char host[512];
    char path[HANDOFF_PATH_MAX]; /* the app's path on host, "/" when the link named none */
    char bind[65];
};

/* The JSON object stored under skey in *j (NULL when absent or not JSON). */
static enum store_result cli__load(const struct endpoint_req *r, const char *skey, json_t **j)
{
    char *val = NULL;
    size_t len;
    json_error_t je;
    *j = NULL;
    enum store_result sr = store_get(r->store, skey, &val, &len);
    if (sr == STORE_OK && !(*j = json_loadb(val, len, 0, &je)))
        sr = STORE_NOT_FOUND;
    free(val);
    return sr;
}

static enum store_result cli__req_load(const struct endpoint_req *r, const char *id, struct cli_req *q)
{
    char skey[64];
    json_t *j;
    if (!cli__hex(id, 32))
        return STORE_NOT_FOUND;
    snprintf(skey, sizeof skey, "clireq:%s", id);
    enum store_result sr = cli__load(r, skey, &j);
    if (sr != STORE_OK)
        return sr;
    const char *k = json_string_value(json_object_get(j, "key"));
    const char *h = json_string_value(json_object_get(j, "host"));
    const char *b = json_string_value(json_object_get(j, "bind"));
    const char *n = json_string_value(json_object_get(j, "n"));
    const char *p = json_string_value(json_object_get(j, "path"));
    if (!p)
        p = "/";
    sr = k && h && b && n && strlen(k) == KEY_B64_LEN && strlen(h) < sizeof q->host && cli__hex(b, 64) &&
                 strlen(n) == NONCE_B64_LEN && p[0] == '/' && strlen(p) < sizeof q->path
             ? STORE_OK
             : STORE_NOT_FOUND;
    if (sr == STORE_OK) {
        snprintf(q->id, sizeof q->id, "%s", id);
        snprintf(q->key, sizeof q->key, "%s", k);
        snprintf(q->host, sizeof q->host, "%s", h);
        snprintf(q->path, sizeof q->path, "%s", p);
        snprintf(q->bind, sizeof q->bind, "%s", b);
        snprintf(q->n, sizeof q->n, "%s", n);
    }
    json_decref(j);
    return sr;
}

/* Whether this browser is the one that claimed the request. */
static bool cli__same_browser(const struct endpoint_req *r, const struct cli_req *q)
{
    char nonce[33], h[65];
    if (!cli__binding(r, nonce))
        return false;
    cli__binding_hash(nonce, h);
    return CRYPTO_memcmp(h, q->bind, 64) == 0;
}

static bool cli__confirmed(const struct endpoint_req *r, const char *key)
{
    char skey[80], *v = NULL;
    size_t n;
    snprintf(skey, sizeof skey, "clidone:%s", key);
    bool done = store_get(r->store, skey, &v, &n) == STORE_OK;
    free(v);
    return done;
}

/* "in 24 hours", "in 90 minutes", "in 3 days": how long an org session lasts, in words. */
static void cli__duration(int64_t s, char *out, size_t cap)
{
    if (s >= 2 * 86400 && s % 86400 == 0)
        snprintf(out, cap, "%lld days", (long long)(s / 86400));
    else if (s >= 2 * 3600)
        snprintf(out, cap, "%lld hours", (long long)((s + 1800) / 3600));
    else
        snprintf(out, cap, "%lld minutes", (long long)((s + 59) / 60));
}

/* The confirmation (SPEC.md §7 step 4), saying what a yes hands over: not only this app, but
 * an org token that reaches every app the person may reach, without asking, until it ends. */
static enum endpoint_result cli__confirm_page(struct exchange *c, struct endpoint_req *r, const struct cli_req *q,
                                              const struct app *app, const struct auth_identity *id, const char *session)
{
    unsigned char pk[crypto_box_PUBLICKEYBYTES];
    char code[10], csrf[65], until[64], lasts[32];
    cli__key(q->key, pk);
    handoff_code(pk, code);
    cli__mac(r, "cli", session, q->id, q->key, csrf);
    int64_t ttl = r->site->cfg->session_duration_s;
    time_t end = time(NULL) + (time_t)ttl;
    struct tm tm;
    gmtime_r(&end, &tm);
    strftime(until, sizeof until, "%Y-%m-%d %H:%M UTC", &tm);
    cli__duration(ttl, lasts, sizeof lasts);
    struct strbuf sb;
    sb_init(&sb, 8192);
    sb_adds(&sb, "<h1>Authorize the command line?</h1><p>A terminal asks to sign in to <b>");
    page_html(&sb, app->display_name);
    sb_adds(&sb, "</b> (<b class=\"host\">");
    page_html(&sb, q->host);
    sb_adds(&sb, "</b>) as <b>");
    page_html(&sb, id->email);
    sb_adds(&sb, "</b>.</p><p class=\"scope\">If you authorize it, that command line will be able to reach "
                 "<b>every application you may reach</b> through this gateway, not only ");
    page_html(&sb, app->display_name);
    sb_addf(&sb, ", without asking you again, until your session ends: <b>%s</b> (in %s).</p>", until, lasts);
    sb_adds(&sb, "<p>Go on only if you just ran <code>latch</code> and it shows this code:</p><div class=\"code\">");
    sb_adds(&sb, code);
    sb_adds(&sb, "</div><form method=\"post\" action=\"" HTTP_ACCESS_PREFIX "cli\"><input type=\"hidden\" name=\"req\" value=\"");
    sb_adds(&sb, q->id);
    sb_addf(&sb, "\"><input type=\"hidden\" name=\"csrf\" value=\"%s\"><button type=\"submit\">Authorize</button>"
                 "</form><p class=\"muted\">Not you, or not expecting this? Close this tab.</p>", csrf);
    enum endpoint_result st = endpoint_page(c, 200, "Authorize the command line", sb.p, NULL);
    sb_free(&sb);
    return st;
}

/* A refusal the person must see, logged as a handoff event with who asked (the browser's org
 * session, when it has one). */
static enum endpoint_result cli__refuse(struct exchange *c, struct endpoint_req *r, int status, const char *app, const char *reason,
                                        const char *title, const char *message)
{
    struct auth_identity id = { 0 };
    char session[33];
    bool known = auth__org_session(r, &id, session);
    log_auth(r->site->auth_log, "handoff", known ? id.email : NULL, known ? id.idp : NULL, app, r->client_ip,
             false, reason);
    if (known)
        auth__identity_free(&id);
    return auth__error_page(c, status, title, message);
}

static const char already_opened[] =
    "This command-line sign-in was already opened in another browser. If that was not you, "
    "somebody else has the link: stop latch (Ctrl-C) and run it again.";

/* GET cli?host=…&path=…&key=…&n=…: the first browser claims the request and goes on to the clean URL;
 * the same browser again goes there too; any other browser is refused. `n` is the command
 * line's nonce for this request, sealed into its box: whoever learns the public key (it is in
 * the poll's URL) and opens the link with a nonce of his own gets a box the command line
 * refuses. */
static enum endpoint_result cli__open(struct exchange *c, struct endpoint_req *r)
{
    char host[512], key[64], n[32], path[HANDOFF_PATH_MAX] = "/";
    unsigned char pk[crypto_box_PUBLICKEYBYTES], raw[16];
    size_t rawlen;
    if (!auth__query(r, "host", host, sizeof host) || !auth__query(r, "key", key, sizeof key) ||
        !cli__key(key, pk) || !auth__query(r, "n", n, sizeof n) || strlen(n) != NONCE_B64_LEN ||
        b64url_decode(n, NONCE_B64_LEN, raw, sizeof raw, &rawlen) != 0 || rawlen != sizeof raw ||
        (form_count(r->query, r->query_len, "path") > 0 && !auth__query(r, "path", path, sizeof path)))
        return auth__error_page(c, 400, "Invalid link", "This link is incomplete. Run latch again.");
    const struct app *app = auth__app_at(r, host, path);
    if (!app) {
        log_auth(r->site->auth_log, "handoff", NULL, NULL, NULL, r->client_ip, false, "no app at that host");
        return auth__error_page(c, 404, "Unknown application", "No application is served at that address.");
    }
    char nonce[33], bind[65], id[33], skey[80];
    if (!cli__binding(r, nonce)) /* one nonce per browser: several logins at once share it */
        auth__random_id(nonce);
    cli__binding_hash(nonce, bind);
    auth__random_id(id);
    json_t *rec = json_pack("{s:s,s:s,s:s,s:s,s:s}", "key", key, "host", host, "path", path, "bind", bind, "n", n);
    json_t *claim = json_pack("{s:s,s:s}", "req", id, "bind", bind);
    char *rv = rec ? json_dumps(rec, JSON_COMPACT) : NULL, *cv = claim ? json_dumps(claim, JSON_COMPACT) : NULL;
    json_decref(rec);
    json_decref(claim);
    enum store_result sr = STORE_NOMEM;
    snprintf(skey, sizeof skey, "cli:%s", key);
    if (rv && cv && (sr = store_add(r->store, skey, cv, strlen(cv), REQ_TTL_S)) == STORE_OK) {
        char rkey[48];
        snprintf(rkey, sizeof rkey, "clireq:%s", id);
        sr = store_put(r->store, rkey, rv, strlen(rv), REQ_TTL_S);
    }
    free(rv);
    free(cv);
    if (sr == STORE_EXISTS) { /* claimed before: by this browser (a reload), or by another */
        json_t *j;
        cli__load(r, skey, &j);
        const char *was = json_string_value(json_object_get(j, "req"));
        const char *by = json_string_value(json_object_get(j, "bind"));
        bool mine = was && by && strlen(by) == 64 && CRYPTO_memcmp(by, bind, 64) == 0 && cli__hex(was, 32);
        if (mine)
            snprintf(id, sizeof id, "%s", was);
        json_decref(j);
        if (!mine)
            return cli__refuse(c, r, 403, app->name, "request already opened in another browser",
                               "Already opened elsewhere", already_opened);
        sr = STORE_OK;
    }
    if (sr != STORE_OK)
        return endpoint_fail(c, endpoint_store_cause(sr));
    char *ck = auth__set_own_cookie(r, CLI_COOKIE, nonce, HTTP_ACCESS_PREFIX, REQ_TTL_S), *loc = NULL;
    enum endpoint_result st = ck && asprintf(&loc, HTTP_ACCESS_PREFIX "cli?req=%s", id) >= 0 ? endpoint_redirect(c, loc, ck)
                                                                        : endpoint_fail(c, ENDPOINT_NOMEM);
    free(ck);
    free(loc);
    return st;
}

/* GET cli?req=ID: in the browser that claimed it, log in if needed, then the confirmation. A
 * link alone never hands a token to anybody: only the POST does. */
static enum endpoint_result cli__get(struct exchange *c, struct endpoint_req *r)
{
    char id[40];
    if (!auth__query(r, "req", id, sizeof id))
        return cli__open(c, r);
    struct cli_req q;
    enum store_result sr = cli__req_load(r, id, &q);
    if (sr == STORE_UNAVAILABLE)
        return endpoint_fail(c, ENDPOINT_STORE_DOWN);
    if (sr != STORE_OK)
        return auth__error_page(c, 410, "Request expired", "This command-line sign-in has expired. Run latch again.");
    const struct app *app = auth__app_at(r, q.host, q.path);
    if (!app)
        return auth__error_page(c, 404, "Unknown application", "No application is served at that address.");
    if (!cli__same_browser(r, &q))
        return cli__refuse(c, r, 403, app->name, "request belongs to another browser",
                           "Already opened elsewhere", already_opened);
    if (cli__confirmed(r, q.key))
        return auth__error_page(c, 409, "Already confirmed",
                                "This command-line sign-in was already confirmed. You can close this tab.");
    struct auth_identity id_;
    char session[33];
    if (auth__org_session(r, &id_, session)) {
        enum endpoint_result st = cli__confirm_page(c, r, &q, app, &id_, session);
        auth__identity_free(&id_);
        return st;
    }
    char back[48];
    snprintf(back, sizeof back, "req=%s", q.id);
    return auth__begin_flow(c, r, app, q.host, q.path, NULL, back);
}

/* POST cli (req, csrf): the person confirmed, in the browser that claimed the request (its
 * binding cookie), with the form's CSRF token and, from a browser, an Origin of this origin. Policy, tokens, the sealed box, the news to long polls; once only. */
static enum endpoint_result cli__post(struct exchange *c, struct endpoint_req *r)
{
    char rid[40], csrf[128], want[65];
    struct cli_req q;
    struct auth_identity id;
    char session[33];
    if (!auth__form(r, "req", rid, sizeof rid) || !auth__form(r, "csrf", csrf, sizeof csrf))
        return auth__error_page(c, 400, "Invalid form", "Run latch again.");
    enum store_result sr = cli__req_load(r, rid, &q);
    if (sr == STORE_UNAVAILABLE)
        return endpoint_fail(c, ENDPOINT_STORE_DOWN);
    if (sr != STORE_OK)
        return auth__error_page(c, 410, "Request expired", "This command-line sign-in has expired. Run latch again.");
    if (!auth__org_session(r, &id, session))
        return auth__error_page(c, 401, "Signed out", "Your session ended. Run latch again.");
    const struct app *app = auth__app_at(r, q.host, q.path);
    enum endpoint_result st;
    if (!cli__same_browser(r, &q)) {
        st = cli__refuse(c, r, 403, app ? app->name : NULL, "confirmation from another browser",
                         "Already opened elsewhere", already_opened);
        goto out;
    }
    cli__mac(r, "cli", session, q.id, q.key, want);
    /* an Origin, when the client sends one (every browser does on a POST), is this origin's */
    if (strlen(csrf) != 64 || CRYPTO_memcmp(csrf, want, 64) != 0 ||
        (r->origin && !served_is(&r->self, r->origin))) {
        st = cli__refuse(c, r, 403, NULL, "CSRF check failed", "Form expired", "Run latch again.");
        goto out;
    }
    const struct policy *decided = NULL;
    if (!app || !auth__admitted(r, app, &id, &decided)) {
        st = cli__refuse(c, r, 403, app ? app->name : NULL, "no policy admits this person",
                         "Access denied", "Your account may not use this application.");
        goto out;
    }
    char skey[80];
    snprintf(skey, sizeof skey, "clidone:%s", q.key);
    sr = store_add(r->store, skey, "1", 1, REQ_TTL_S);
    if (sr == STORE_EXISTS) {
        st = cli__refuse(c, r, 409, app->name, "second confirmation of one request",
                         "Already confirmed", "This command-line sign-in was already confirmed: a second "
                         "confirmation is refused. If you did not confirm it, run latch again.");
        goto out;
    }
    if (sr != STORE_OK) {
        st = endpoint_fail(c, endpoint_store_cause(sr));
        goto out;
    }
    unsigned char pk[crypto_box_PUBLICKEYBYTES];
    cli__key(q.key, pk);
    /* the command line's own session: `latch logout` ends it, not the browser's, and the
     * browser's logout leaves it alone */
    char cli_session[33];
    auth__random_id(cli_session);
    int64_t ttl = endpoint_session_s(r->site->cfg, app, decided);
    char *app_tok = auth__mint(r, "app", endpoint_aud(r->site, app), &id, cli_session, ttl);
    char *org_tok = auth__mint(r, "org", r->site->cfg->auth_domain, &id, cli_session, r->site->cfg->session_duration_s);
    json_t *j = app_tok && org_tok ? json_pack("{s:s,s:s,s:s}", "app_token", app_tok, "org_token", org_tok,
                                               "n", q.n)
                                   : NULL;
    char *plain = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    size_t plen = plain ? strlen(plain) : 0;
    unsigned char *box = plain ? malloc(plen + crypto_box_SEALBYTES) : NULL;
    sr = STORE_NOMEM;
    if (box && crypto_box_seal(box, (const unsigned char *)plain, plen, pk) == 0) {
        snprintf(skey, sizeof skey, "box:%s", q.key);
        sr = store_put(r->store, skey, box, plen + crypto_box_SEALBYTES, BOX_TTL_S);
    }
    if (plain)
        sodium_memzero(plain, plen);
    free(plain);
    free(box);
    free(app_tok);
    free(org_tok);
    if (sr != STORE_OK) {
        st = endpoint_fail(c, endpoint_store_cause(sr));
        goto out;
    }
    store_announce(r->store, skey); /* a CLI long-polling any node gets it now, */
    r->wake_parked(r);        /* or any worker of this one */
    log_auth(r->site->auth_log, "handoff", id.email, id.idp, app->name, r->client_ip, true, "sealed for the command line");
    metrics_handoff(r->metrics, METRICS_HANDOFF_SEALED);
    st = endpoint_page(c, 200, "Done", "<h1>You are signed in</h1><p>The command line has its token. "
                                    "You can close this tab and return to your terminal.</p>", NULL);
out:
    auth__identity_free(&id);
    return st;
}

/* The proof of possession of a key (base64url string `key`) valid until `exp`:
 * "EXP.MAC", MAC = HMAC(runtime secret, "cli-proof:KEY:EXP"). */
static void cli__proof(const struct endpoint_req *r, const char *key, long long exp, char out[96])
{
    char e[24], mac[65];
    snprintf(e, sizeof e, "%lld", exp);
    cli__mac(r, "cli-proof", key, e, "", mac);
    snprintf(out, 96, "%lld.%s", exp, mac);
}

/* Whether the request's `Authorization: Latch-Proof EXP.MAC` proves possession of `key`: the
 * MAC is ours for that key (compared in constant time) and EXP has not passed. */
static bool cli__proven(const struct endpoint_req *r, const char *key)
{
    const char *a = r->authorization;
    size_t sl = sizeof PROOF_SCHEME - 1;
    if (!a || strncasecmp(a, PROOF_SCHEME, sl) != 0 || a[sl] != ' ')
        return false;
    a += sl + 1;
    char *end = NULL;
    long long exp = strtoll(a, &end, 10);
    long long now = (long long)time(NULL);
    if (end == a || *end != '.' || exp <= now || exp > now + PROOF_TTL_S + 60 || strlen(end + 1) != 64)
        return false;
    char want[96];
    cli__proof(r, key, exp, want);
    return strlen(a) == strlen(want) && CRYPTO_memcmp(a, want, strlen(want)) == 0;
}

/* 401 with a new challenge: the proof sealed to the key, which only its holder can open. */
static enum endpoint_result cli__challenge(struct exchange *c, struct endpoint_req *r, const char *key, const unsigned char *pk)
{
    char proof[96], b64[256];
    unsigned char box[96 + crypto_box_SEALBYTES];
    cli__proof(r, key, (long long)time(NULL) + PROOF_TTL_S, proof);
    size_t n = strlen(proof);
    crypto_box_seal(box, (const unsigned char *)proof, n, pk);
    b64url_encode(box, n + crypto_box_SEALBYTES, b64);
    sodium_memzero(proof, sizeof proof);
    return endpoint_json(c, 401, json_pack("{s:s,s:s}", "error", "proof_required", "challenge", b64),
                      "WWW-Authenticate: " PROOF_SCHEME "\r\n");
}

/* GET transfer/<key>: the box, once; or wait for it up to the poll's length. */
static enum endpoint_result cli__transfer_try(struct exchange *c, bool timed_out)
{
    struct endpoint_req *r = endpoint_request(c);
    const char *key = r->name + sizeof "transfer/" - 1;
    char skey[80], *box = NULL;
    size_t len;
    snprintf(skey, sizeof skey, "box:%s", key);
    enum store_result sr = store_take(r->store, skey, &box, &len);
    if (sr == STORE_OK) {
        metrics_handoff(r->metrics, METRICS_HANDOFF_DELIVERED);
        enum endpoint_result st = endpoint_reply(c, 200, "application/octet-stream", box, len, NULL);
        free(box);
        return st;
    }
    if (sr == STORE_UNAVAILABLE)
        return endpoint_fail(c, ENDPOINT_STORE_DOWN);
    if (timed_out) { /* nothing yet: the CLI polls again */
        metrics_handoff(r->metrics, METRICS_HANDOFF_PENDING);
        return endpoint_reply(c, 204, "application/json", "", 0, NULL);
    }
    return endpoint_park(c, cli__transfer_try, skey);
}

static enum endpoint_result cli__transfer(struct exchange *c, struct endpoint_req *r)
{
    unsigned char pk[crypto_box_PUBLICKEYBYTES];
    const char *key = r->name + sizeof "transfer/" - 1;
    if (!cli__key(key, pk))
        return endpoint_json(c, 400, json_pack("{s:s}", "error", "bad_key"), NULL);
    if (!cli__proven(r, key)) /* the box is left alone for the poller who holds the key */
        return cli__challenge(c, r, key, pk);
    return cli__transfer_try(c, false);
}

/* POST token (host=…[&path=…]) with the org token in cf-access-token: an app token for the app
 * that a request for that host and path reaches (path "/" when none is named). */
static enum endpoint_result cli__token(struct exchange *c, struct endpoint_req *r, const char *org_header)
{
    char host[512], path[HANDOFF_PATH_MAX] = "/";
    if (!org_header || !auth__form(r, "host", host, sizeof host) ||
        (r->body.p && form_count(r->body.p, r->body.len, "path") > 0 && !auth__form(r, "path", path, sizeof path)))
        return endpoint_json(c, 400, json_pack("{s:s}", "error", "host and cf-access-token required"), NULL);
    struct auth_identity id = { 0 };
    char session[33] = "";
    enum token_status ts = auth__org_token(r, org_header, &id, session);
    if (ts != TOKEN_OK)
        return endpoint_json(c, 401, json_pack("{s:s,s:s}", "error", "login_required", "token_error",
                                             token_status_name(ts)), NULL);
    const struct app *app = auth__app_at(r, host, path);
    const struct policy *decided = NULL;
    enum endpoint_result st;
    if (!app) {
        st = endpoint_json(c, 404, json_pack("{s:s}", "error", "no_app"), NULL);
    } else if (!auth__admitted(r, app, &id, &decided)) {
        log_auth(r->site->auth_log, "app_token", id.email, id.idp, app->name, r->client_ip, false, "no policy admits this person");
        st = endpoint_json(c, 403, json_pack("{s:s,s:s,s:s}", "error", "forbidden", "email", id.email, "app", app->name), NULL);
    } else {
        char *tok = auth__mint(r, "app", endpoint_aud(r->site, app), &id, session,
                               endpoint_session_s(r->site->cfg, app, decided));
        log_auth(r->site->auth_log, "app_token", id.email, id.idp, app->name, r->client_ip, tok != NULL,
                 "exchanged an org token");
        st = tok ? endpoint_json(c, 200, json_pack("{s:s,s:s,s:s}", "app_token", tok, "app", app->name, "aud",
                                                endpoint_aud(r->site, app)), NULL)
                 : endpoint_json(c, 500, json_pack("{s:s}", "error", "signing failed"), NULL);
        free(tok);
    }
    auth__identity_free(&id);
    return st;
}

/* --- discovery: which app a path of this host is, and the host's patterns ------------------ */

struct cli_patterns {
    const struct endpoint_site *site;
    json_t *list;
};

static void cli__pattern(void *arg, const struct app *app, const char *pattern)
{
    struct cli_patterns *p = arg;
    json_array_append_new(p->list, json_pack("{s:s,s:s}", "pattern", pattern, "aud",
                                             endpoint_aud(p->site, app)));
}

/* Whether the app token `tok` admits to `app` as a request would judge it (signature, claims,
 * this app's AUD, revocations): TOKEN_OK, or why not. Its email in *email (malloc'd). */
static enum token_status cli__app_token(const struct endpoint_req *r, const struct app *app, const char *tok,
                                        char **email)
{
    struct token t;
    struct token_want want = auth__want(r, "app", app);
    enum token_status ts = token_verify(r->keys, tok, strlen(tok), time(NULL), &want, &t);
    if (ts != TOKEN_OK)
        return ts;
    *email = t.email ? strdup(t.email) : NULL;
    token_free(&t);
    return ts;
}

/* GET app[?path=P] on an app host (SPEC.md §7 step 1): the app that a request for P (default
 * "/") reaches, its AUD and where to log in; 404 when no app serves that path. With a token in
 * cf-access-token, also "token": "ok" or why it would be refused (expired, revoked,
 * bad_audience…), and for a good one its email and every pattern of this host with its app's
 * AUD, in the order the gateway tries them (route_each_for_host): the command line picks a
 * token per path from them; on https the token cookie's pair ("pair", cookie.h), which
 * `latch curl -L` sends beside the token as cookies. Only to the holder of a valid token:
 * nobody else learns the layout of the host's paths. */
static enum endpoint_result cli__app(struct exchange *c, struct endpoint_req *r)
{
    char path[HANDOFF_PATH_MAX] = "/";
    if (form_count(r->query, r->query_len, "path") > 1 ||
        (form_count(r->query, r->query_len, "path") == 1 &&
         (!auth__query(r, "path", path, sizeof path) || path[0] != '/')))
        return endpoint_json(c, 400, json_pack("{s:s,s:s}", "error", "bad_path", "message",
                                            "path must be one absolute path (/…) of at most 2047 bytes"), NULL);
    const struct app *app = auth__app_at(r, r->host, path);
    if (!app)
        return endpoint_json(c, 404, json_pack("{s:s,s:s}", "error", "not_found", "message",
                                            "no application at this host and path"), NULL);
    json_t *j = json_pack("{s:s,s:s,s:s,s:s}", "auth_domain", r->site->cfg->auth_domain ? r->site->cfg->auth_domain : "",
                          "auth_url", r->site->auth_url, "aud", endpoint_aud(r->site, app), "app", app->name);
    if (j && r->access_token) {
        char *email = NULL;
        enum token_status ts = cli__app_token(r, app, r->access_token, &email);
        json_object_set_new(j, "token", json_string(ts == TOKEN_OK ? "ok" : token_status_name(ts)));
        if (ts == TOKEN_OK) {
            char host[512];
            size_t hl = strlen(r->host);
            int n = hl < sizeof host ? route_host_normalize(r->host, hl, host) : -1;
            struct cli_patterns p = { r->site, json_array() };
            if (n > 0 && p.list)
                route_each_for_host(r->site->routes, host, (size_t)n, cli__pattern, &p);
            json_object_set_new(j, "email", json_string(email ? email : ""));
            json_object_set_new(j, "routes", p.list ? p.list : json_array());
            if (r->self.https) { /* the token cookie's pair, for a client that sends it as a cookie */
                char pair[33];
                cookie_token_pair(r->site->secret, r->access_token, strlen(r->access_token), pair);
                json_object_set_new(j, "pair", json_string(pair));
            }
        }
        free(email);
    }
    return endpoint_json(c, 200, j, NULL);
}

/* --- cli-logout: the command line ends its own session --------------------------------------- */

/* The session of a token of ours, valid now: the org token, or an app token of any app;
 * *ended when a revocation already refuses it (its session ended, its address revoked). */
static bool cli__session_of(const struct endpoint_req *r, const char *tok, char session[33], char **email, char **idp,
                            bool *ended)
{
    struct token t;
    time_t now = time(NULL);
    if (jwt_decode(r->keys, tok, strlen(tok), now, &t) != TOKEN_OK)
        return false;
    enum token_status ts = r->site->cfg->auth_domain
                               ? token_check(&t, r->site->auth_url, "org", r->site->cfg->auth_domain, now)
                               : TOKEN_BAD_AUDIENCE;
    for (size_t i = 0; ts != TOKEN_OK && i < r->site->cfg->napps; i++)
        ts = token_check(&t, r->site->auth_url, "app", endpoint_aud(r->site, &r->site->cfg->apps[i]), now);
    bool ok = ts == TOKEN_OK && t.identity_nonce && strlen(t.identity_nonce) == 32 && cli__hex(t.identity_nonce, 32);
    if (ok) {
        memcpy(session, t.identity_nonce, 33);
        *ended = revocations_check(r->rev, r->site->cfg->subaddress_separators, t.email, NULL, t.identity_nonce, t.iat);
        *email = t.email ? strdup(t.email) : NULL;
        *idp = t.idp ? strdup(t.idp) : NULL;
    }
    token_free(&t);
    return ok;
}

/* The answer once the session is over on every worker of this node (auth__end_session). */
static enum endpoint_result cli__logout_done(struct exchange *c, struct endpoint_req *r, const char *session, bool ended)
{
    return ended ? endpoint_json(c, 200, json_pack("{s:b}", "ended", 1), NULL)
                 : endpoint_json(c, 500, json_pack("{s:s,s:s}", "error", "revocation_failed", "message",
                                                "the gateway could not record the end of the session; try again"),
                              NULL);
}

/* POST cli-logout (any host) with a token of the command line's session in cf-access-token:
 * ends that session (every token minted under it: the org token and each app's). A token
 * proves nothing more than its own session here: whoever holds one may end it, nobody else. */
static enum endpoint_result cli__logout(struct exchange *c, struct endpoint_req *r, const char *tok)
{
    char session[33];
    char *email = NULL, *idp = NULL;
    bool ended = false;
    if (strcmp(r->method, "POST"))
        return endpoint_json(c, 405, json_pack("{s:s}", "error", "method_not_allowed"), "Allow: POST\r\n");
    if (!tok || !cli__session_of(r, tok, session, &email, &idp, &ended))
        return endpoint_json(c, 401, json_pack("{s:s,s:s}", "error", "not_authenticated", "message",
                                            "no valid token of ours in cf-access-token"), NULL);
    if (ended) { /* already refused everywhere: nothing to write (a replayed old token costs no disk) */
        free(email);
        free(idp);
        return cli__logout_done(c, r, session, true);
    }
    log_auth(r->site->auth_log, "logout", email, idp, NULL, r->client_ip, true, "command line session ended");
    free(email);
    free(idp);
    return auth__end_session(c, r, session, cli__logout_done); /* refused everywhere when it answers */
}

static enum endpoint_result cli__logout_row(struct exchange *c, struct endpoint_req *r)
{
    return cli__logout(c, r, r->access_token);
}

static enum endpoint_result cli__row(struct exchange *c, struct endpoint_req *r)
{
    return strcmp(r->method, "POST") ? cli__get(c, r) : cli__post(c, r);
}

static enum endpoint_result cli__token_row(struct exchange *c, struct endpoint_req *r)
{
    if (strcmp(r->method, "POST"))
        return auth__not_found(c, r);
    return cli__token(c, r, r->access_token);
}

/* app and cli-logout on any host; the handoff itself on the auth domain. */
static const struct endpoint cli__rows[] = {
    { "app", false, false, cli__app },
    { "cli-logout", true, false, cli__logout_row },
    { "cli", true, true, cli__row },
    { "transfer/", true, true, cli__transfer },
    { "token", true, true, cli__token_row },
};

const struct endpoint_table auth_cli_endpoints = { cli__rows, sizeof cli__rows / sizeof cli__rows[0] };
