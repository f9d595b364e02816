/* One-time PIN by email (SPEC.md §6): ask the address, send an 8-digit code valid 10 minutes
 * and 5 tries, check it. The pages read the same whether or not the address may enter: a code
 * is only sent to addresses the app's policies could admit.
 *
 * Limits, so that nobody can guess a code and nobody can stop someone else from signing in (a
 * stranger's requests never spend the person's budget):
 *  - tries belong to the code, and a code to the sign-in (flow, the browser's latch_flow
 *    cookie) that asked for it: 5 tries, then the code is burnt; nobody else can try it;
 *  - a flow gets at most OTP_PER_FLOW codes (a new code, five new tries);
 *  - a client (its address as trusted_proxies establishes it; IPv6 by /64) gets at most
 *    OTP_PER_CLIENT codes per window, and OTP_PER_MAILBOX_CLIENT for one mailbox (core/email.h:
 *    sub-addresses and Gmail spellings are one);
 *  - a browser that has signed in as that mailbox before (the AUTH_PIN_COOKIE it got then, an
 *    HMAC of the mailbox; __Host- on https) has its own OTP_PER_KNOWN_BROWSER codes per window
 *    instead of the client's.
 * There is no limit per mailbox alone: any such ceiling is a budget that strangers (enough
 * addresses) can spend, and the person, on a new device, would be locked out. What that costs:
 * mail to one address is bounded per client, not in all (OTP_PER_MAILBOX_CLIENT codes per
 * client address and window), and so are guesses (5 per code: 25 per client and window against
 * 10^8 codes; a thousand addresses make 1 chance in 4,000 per window).
 * Windows are fixed OTP_WINDOW_S periods, so a refusal can say when to come back. */
#include "auth/auth-int.h"

#include "request/binding.h"
#include "auth/mail.h"
#include "core/email.h"
#include "core/log.h"
#include "metrics/metrics.h"
#include "store/store.h"
#include "token/jwt.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OTP_TTL_S                 600
#define OTP_TRIES                 5
#define OTP_WINDOW_S              600
#define OTP_PER_FLOW              2
#define OTP_PER_CLIENT            20
#define OTP_PER_MAILBOX_CLIENT    5
#define OTP_PER_KNOWN_BROWSER     5
#define OTP_KNOWN_TTL_S           (90 * 86400)

struct mail_job {
    struct endpoint_job lj;
    const struct idp *idp;
    const struct endpoint_site *site; /* keeps idp alive */
    char to[320], code[9], app[128], label[128];
};

static void otp__mail_run(struct job *j)
{
    struct mail_job *m = (struct mail_job *)j;
    mail_send_pin(m->idp, m->to, m->code, m->app, m->label);
    sodium_memzero(m->code, sizeof m->code);
}

static void otp__mail_done(struct endpoint_job *lj, struct exchange *c)
{
    struct mail_job *m = (struct mail_job *)lj;
    endpoint_site_release(m->site);
    free(m);
}

/* HMAC of the code bound to its flow: the store never holds a usable code. */
static void otp__hash(const struct endpoint_req *r, const char *flow_id, const char *code, char out[65])
{
    unsigned char mac[32];
    unsigned int len = sizeof mac;
    char msg[128];
    int n = snprintf(msg, sizeof msg, "otp:%s:%s", flow_id, code);
    HMAC(EVP_sha256(), r->site->secret, 32, (const unsigned char *)msg, (size_t)n, mac, &len);
    sodium_bin2hex(out, 65, mac, sizeof mac);
}

static bool otp__csrf_ok(const struct endpoint_req *r, json_t *flow)
{
    char got[64];
    const char *want = json_string_value(json_object_get(flow, "csrf"));
    if (!want || !auth__form(r, "csrf", got, sizeof got) || strlen(got) != strlen(want))
        return false;
    if (r->origin) { /* a cross-site POST carries another Origin */
        if (strcmp(r->origin, r->site->auth_url) != 0)
            return false;
    }
    return CRYPTO_memcmp(got, want, strlen(want)) == 0;
}

/* The error box, if any, and the opening of a form that posts back here with the flow's CSRF
 * token; the caller writes the fields after the open value attribute. */
static void otp__form_start(struct strbuf *sb, json_t *flow, const char *error)
{
    if (error) {
        sb_adds(sb, "<div class=\"error\">");
        page_html(sb, error);
        sb_adds(sb, "</div>");
    }
    sb_adds(sb, "<form method=\"post\" action=\"" HTTP_ACCESS_PREFIX "otp\"><input type=\"hidden\" name=\"csrf\" value=\"");
    page_html(sb, json_string_value(json_object_get(flow, "csrf")));
}

static const struct app *otp__app(const struct endpoint_req *r, json_t *flow);

static enum endpoint_result otp__email_page(struct exchange *c, json_t *flow, const char *error)
{
    struct strbuf sb;
    sb_init(&sb, 8192);
    auth__sign_in_head(&sb, "Sign in with your email", "We will send you a code",
                       otp__app(endpoint_request(c), flow));
    otp__form_start(&sb, flow, error);
    sb_adds(&sb, "\"><label for=\"email\">Email address</label><input id=\"email\" type=\"email\" "
                 "name=\"email\" autocomplete=\"email\" required autofocus>"
                 "<button type=\"submit\">Send me a code</button></form>");
    enum endpoint_result st = endpoint_page(c, error ? 400 : 200, "Sign in", sb.p, NULL);
    sb_free(&sb);
    return st;
}

static enum endpoint_result otp__code_page(struct exchange *c, json_t *flow, const char *email, const char *error)
{
    struct strbuf sb;
    sb_init(&sb, 8192);
    const struct app *app = otp__app(endpoint_request(c), flow);
    sb_adds(&sb, "<h1>Check your email</h1><p>If <b>");
    page_html(&sb, email);
    if (app) {
        sb_adds(&sb, "</b> may use <b>");
        page_html(&sb, app->display_name);
        sb_adds(&sb, "</b>, a sign-in code is on its way. It works for 10 minutes.</p>");
    } else {
        sb_adds(&sb, "</b> may use an application here, a sign-in code is on its way. It works for "
                     "10 minutes.</p>");
    }
    otp__form_start(&sb, flow, error);
    sb_adds(&sb, "\"><label for=\"code\">Code</label><input id=\"code\" type=\"text\" name=\"code\" "
                 "inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9]{8}\" maxlength=\"8\" required autofocus>"
                 "<button type=\"submit\">Sign in</button></form>"
                 "<form method=\"post\" action=\"" HTTP_ACCESS_PREFIX "otp\"><input type=\"hidden\" name=\"csrf\" value=\"");
    page_html(&sb, json_string_value(json_object_get(flow, "csrf")));
    sb_adds(&sb, "\"><input type=\"hidden\" name=\"email\" value=\"");
    page_html(&sb, email);
    sb_adds(&sb, "\"><button class=\"button secondary\" type=\"submit\">Send a new code</button></form>");
    page_button(&sb, HTTP_ACCESS_PREFIX "otp", "Use another email address", false);
    enum endpoint_result st = endpoint_page(c, error ? 400 : 200, "Enter your code", sb.p, NULL);
    sb_free(&sb);
    return st;
}

static const struct app *otp__app(const struct endpoint_req *r, json_t *flow)
{
    const char *name = json_string_value(json_object_get(flow, "app"));
    for (size_t i = 0; name && i < r->site->cfg->napps; i++)
        if (!strcmp(r->site->cfg->apps[i].name, name))
            return &r->site->cfg->apps[i];
    return NULL;
}

/* A keyed hash (the state secret) of `what`, as 32 hex characters: store keys and cookies
 * name mailboxes without showing them to whoever reads Redis or the cookie. */
static void otp__tag(const struct endpoint_req *r, const char *what, char out[33])
{
    unsigned char mac[16];
    crypto_generichash(mac, sizeof mac, (const unsigned char *)what, strlen(what), r->site->secret, 32);
    sodium_bin2hex(out, 33, mac, sizeof mac);
}

/* The client as rate limits count it: its address, an IPv6 one by its /64 (what one host or
 * one customer of a provider gets, and can spread requests over). */
static void otp__client(const struct endpoint_req *r, char out[INET6_ADDRSTRLEN])
{
    unsigned char a[16];
    snprintf(out, INET6_ADDRSTRLEN, "%s", r->client_ip);
    if (inet_pton(AF_INET6, r->client_ip, a) == 1) {
        memset(a + 8, 0, 8);
        inet_ntop(AF_INET6, a, out, INET6_ADDRSTRLEN);
    }
}

/* The known-browser cookie for a mailbox: "<id>.<HMAC of id and mailbox>". */
static void otp__known_value(const struct endpoint_req *r, const char *id, const char *mailbox, char out[66])
{
    char msg[400], mac[33];
    snprintf(msg, sizeof msg, "pin-known:%s:%s", id, mailbox);
    otp__tag(r, msg, mac);
    snprintf(out, 66, "%s.%s", id, mac);
}

/* The id of this browser when it signed in as `mailbox` before (its cookie), else false. */
static bool otp__known(const struct endpoint_req *r, const char *mailbox, char id[33])
{
    char got[80], want[66];
    if (!auth__own_cookie(r, AUTH_PIN_COOKIE, got, sizeof got) || strlen(got) != 65 || got[32] != '.')
        return false;
    memcpy(id, got, 32);
    id[32] = '\0';
    otp__known_value(r, id, mailbox, want);
    return CRYPTO_memcmp(got, want, 65) == 0;
}

/* The flow's code record {"email","hash","expires"} (*rec NULL when unreadable). */
static enum store_result otp__record(const struct endpoint_req *r, const char *flow_id, json_t **rec)
{
    char key[64], *val = NULL;
    size_t len;
    snprintf(key, sizeof key, "otp:%s", flow_id);
    enum store_result sr = store_get(r->store, key, &val, &len);
    json_error_t je;
    *rec = sr == STORE_OK ? json_loadb(val, len, 0, &je) : NULL;
    free(val);
    return sr;
}

enum otp_limit { OTP_OK, OTP_LIMITED, OTP_STORE_DOWN };

/* Counts one code against the counter `key` of this window; OTP_LIMITED past `max`. */
static enum otp_limit otp__count(const struct endpoint_req *r, const char *key, int64_t max)
{
    char k[256];
    snprintf(k, sizeof k, "rate:otp:%s:%lld", key, (long long)(time(NULL) / OTP_WINDOW_S));
    int64_t n = store_incr(r->store, k, OTP_WINDOW_S + 60);
    return n < 0 ? OTP_STORE_DOWN : n > max ? OTP_LIMITED : OTP_OK;
}

/* 429 with when to come back: the end of the current window (Retry-After, RFC 9110 §10.2.3). */
static enum endpoint_result otp__limited(struct exchange *c, struct endpoint_req *r, const struct idp *idp, const char *email,
                                         const char *why, const char *what)
{
    time_t now = time(NULL), at = (now / OTP_WINDOW_S + 1) * OTP_WINDOW_S;
    struct tm tm;
    char when[16], hdr[48], msg[512];
    gmtime_r(&at, &tm);
    strftime(when, sizeof when, "%H:%M", &tm);
    snprintf(hdr, sizeof hdr, "Retry-After: %lld\r\n", (long long)(at - now));
    long mins = (long)((at - now + 59) / 60);
    snprintf(msg, sizeof msg, "Too many sign-in codes were asked for %s. Try again in %ld minute%s "
                              "(at %s UTC).", what, mins, mins == 1 ? "" : "s", when);
    log_auth(r->site->auth_log, "otp_rate_limited", email, idp->name, NULL, r->client_ip, false, why);
    struct strbuf sb;
    sb_init(&sb, 2048);
    sb_adds(&sb, "<h1>Too many codes</h1><p>");
    page_html(&sb, msg);
    sb_adds(&sb, "</p>");
    enum endpoint_result st = endpoint_page(c, 429, "Too many codes", sb.p, hdr);
    sb_free(&sb);
    return st;
}

/* 429: this sign-in (flow) has sent all its codes. A new sign-in may send more at once: the
 * page says so and starts one (the same app and return path), with no wait. */
static enum endpoint_result otp__flow_spent(struct exchange *c, struct endpoint_req *r, json_t *flow)
{
    const char *host = json_string_value(json_object_get(flow, "host"));
    const char *redirect = json_string_value(json_object_get(flow, "redirect"));
    struct strbuf sb, again;
    sb_init(&sb, 8192);
    sb_init(&again, 8192);
    if (host && redirect && !json_is_true(json_object_get(flow, "launcher")))
        binding_login_url(&again, "", host, strlen(host), redirect, strlen(redirect), NULL);
    else
        sb_adds(&again, "/");
    sb_adds(&sb, "<h1>Too many codes</h1><p>This sign-in has had all its codes. Start again from the "
                 "application to get a new one: you can do that right now.</p>");
    if (!again.overflow)
        page_button(&sb, again.p, "Start again", true);
    enum endpoint_result st = endpoint_page(c, 429, "Too many codes", sb.p, NULL);
    sb_free(&sb);
    sb_free(&again);
    return st;
}

/* The limits of the file comment, for a code to `email` (its mailbox `mailbox`) in this flow.
 * True once it answered the refusal itself (*st); false when the code may go. */
static bool otp__limits(struct exchange *c, struct endpoint_req *r, json_t *flow, const char *flow_id,
                        const struct idp *idp, const char *email, const char *mailbox, enum endpoint_result *st)
{
    char key[160], mb[33], client[INET6_ADDRSTRLEN], known[33];
    int64_t n;
    snprintf(key, sizeof key, "otp:sends:%s", flow_id);
    if ((n = store_incr(r->store, key, AUTH_FLOW_TTL_S)) < 0) {
        *st = endpoint_fail(c, ENDPOINT_STORE_DOWN);
        return true;
    }
    if (n > OTP_PER_FLOW) {
        log_auth(r->site->auth_log, "otp_rate_limited", email, idp->name, NULL, r->client_ip, false,
                 "codes per sign-in");
        *st = otp__flow_spent(c, r, flow);
        return true;
    }
    otp__tag(r, mailbox, mb);
    enum otp_limit l;
    if (otp__known(r, mailbox, known)) { /* the person's own browser: its own budget only */
        snprintf(key, sizeof key, "known:%s", known);
        if ((l = otp__count(r, key, OTP_PER_KNOWN_BROWSER)) != OTP_OK)
            goto refused_browser;
        return false;
    }
    otp__client(r, client);
    snprintf(key, sizeof key, "ip:%s", client);
    if ((l = otp__count(r, key, OTP_PER_CLIENT)) != OTP_OK)
        goto refused_browser;
    snprintf(key, sizeof key, "ipmb:%s:%s", client, mb);
    if ((l = otp__count(r, key, OTP_PER_MAILBOX_CLIENT)) != OTP_OK)
        goto refused_browser;
    return false;
refused_browser:
    *st = l == OTP_STORE_DOWN ? endpoint_fail(c, ENDPOINT_STORE_DOWN)
                              : otp__limited(c, r, idp, email, "codes per client", "from this browser");
    return true;
}

static enum endpoint_result otp__send(struct exchange *c, struct endpoint_req *r, json_t *flow, const char *flow_id,
                                      const struct idp *idp, const char *raw_email)
{
    char email[EMAIL_MAX_LEN + 1], mailbox[EMAIL_MAX_LEN + 1], key[64];
    if (snprintf(email, sizeof email, "%s", raw_email) >= (int)sizeof email || email_check(email))
        return otp__email_page(c, flow, "Enter one plain email address, such as name@example.com.");
    for (char *p = email; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    if (!email_mailbox(email, r->site->cfg->subaddress_separators, mailbox, sizeof mailbox))
        return otp__email_page(c, flow, "Enter one plain email address, such as name@example.com.");
    enum endpoint_result st;
    if (otp__limits(c, r, flow, flow_id, idp, email, mailbox, &st))
        return st;
    const struct app *app = otp__app(r, flow);
    struct auth_identity probe = { .email = email, .idp = (char *)idp->name };
    bool may = app && auth__admitted(r, app, &probe, NULL);
    /* the launcher's sign-in: a code only for whom it would list an app */
    for (size_t i = 0; !app && !may && json_is_true(json_object_get(flow, "launcher")) &&
                       i < r->site->cfg->napps; i++)
        may = auth__launcher_lists(r, &r->site->cfg->apps[i], &probe);
    char code[9] = "", hash[65];
    if (may) {
        snprintf(code, sizeof code, "%08u", (unsigned)randombytes_uniform(100000000u));
        otp__hash(r, flow_id, code, hash);
    } else {
        memset(hash, 'x', 64); /* matches no code: the next page reads the same */
        hash[64] = '\0';
    }
    json_t *rec = json_pack("{s:s,s:s,s:I}", "email", email, "hash", hash,
                            "expires", (json_int_t)(time(NULL) + OTP_TTL_S));
    snprintf(key, sizeof key, "otp:tries:%s", flow_id);
    store_del(r->store, key); /* a new code, five new tries */
    char *val = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    snprintf(key, sizeof key, "otp:%s", flow_id);
    enum store_result sr = val ? store_put(r->store, key, val, strlen(val), OTP_TTL_S) : STORE_NOMEM;
    free(val);
    if (sr != STORE_OK)
        return endpoint_fail(c, endpoint_store_cause(sr));
    log_auth(r->site->auth_log, "otp_sent", email, idp->name, app ? app->name : NULL, r->client_ip, may,
             may ? "code sent" : "address not admitted: no code sent");
    if (may) { /* fire and forget: the answer does not wait (nor tell) */
        struct mail_job *m = calloc(1, sizeof *m);
        if (m) {
            m->idp = idp;
            m->site = r->site;
            endpoint_site_hold(r->site);
            snprintf(m->to, sizeof m->to, "%s", email);
            snprintf(m->code, sizeof m->code, "%s", code);
            snprintf(m->app, sizeof m->app, "%s", app ? app->name : "launcher");
            snprintf(m->label, sizeof m->label, "%s", app ? app->display_name
                     : r->site->cfg->branding.name ? r->site->cfg->branding.name : "your applications");
            m->lj.job.run = otp__mail_run;
            m->lj.finish = otp__mail_done;
            endpoint_detach(r, &m->lj);
        }
        sodium_memzero(code, sizeof code);
    }
    return otp__code_page(c, flow, email, NULL);
}

static enum endpoint_result otp__check(struct exchange *c, struct endpoint_req *r, json_t *flow, const char *flow_id,
                                       const struct idp *idp, const char *code)
{
    char key[64];
    json_t *rec;
    enum store_result sr = otp__record(r, flow_id, &rec);
    if (sr == STORE_UNAVAILABLE)
        return endpoint_fail(c, ENDPOINT_STORE_DOWN);
    if (sr != STORE_OK)
        return otp__email_page(c, flow, "That code has expired. Ask for a new one.");
    snprintf(key, sizeof key, "otp:%s", flow_id);
    const char *email = json_string_value(json_object_get(rec, "email"));
    const char *want = json_string_value(json_object_get(rec, "hash"));
    json_int_t expires = json_integer_value(json_object_get(rec, "expires"));
    /* the try is counted atomically before the comparison: parallel guesses on several
     * workers cannot get past the limit */
    char tkey[80];
    snprintf(tkey, sizeof tkey, "otp:tries:%s", flow_id);
    int64_t tries = store_incr(r->store, tkey, OTP_TTL_S) - 1;
    enum endpoint_result st;
    if (tries < 0) {
        st = endpoint_fail(c, ENDPOINT_STORE_DOWN);
        goto out;
    }
    if (!email || !want || strlen(want) != 64 || tries >= OTP_TRIES || time(NULL) >= expires) {
        store_del(r->store, key);
        st = otp__email_page(c, flow, "Too many wrong codes, or the code expired. Ask for a new one.");
        goto out;
    }
    char got[65];
    bool ok = false;
    if (strlen(code) == 8 && strspn(code, "0123456789") == 8) {
        otp__hash(r, flow_id, code, got);
        ok = CRYPTO_memcmp(got, want, 64) == 0;
    }
    if (!ok) {
        if (tries + 1 >= OTP_TRIES)
            store_del(r->store, key); /* the fifth miss burns the code */
        log_auth(r->site->auth_log, "otp_failed", email, idp->name, NULL, r->client_ip, false, "wrong code");
        metrics_login(r->metrics, idp->name, false);
        st = otp__code_page(c, flow, email, tries + 1 < OTP_TRIES ? "That code is not right." :
                                            "Too many wrong codes. Ask for a new one.");
        goto out;
    }
    store_del(r->store, key); /* single use */
    snprintf(key, sizeof key, "flow:%s", flow_id);
    store_del(r->store, key);
    /* this browser is now known to be the person's: their own PIN budget from now on */
    char mailbox[EMAIL_MAX_LEN + 1], known_id[33], known[66], *ck = NULL;
    if (email_mailbox(email, r->site->cfg->subaddress_separators, mailbox, sizeof mailbox)) {
        auth__random_id(known_id);
        otp__known_value(r, known_id, mailbox, known);
        ck = auth__set_own_cookie(r, AUTH_PIN_COOKIE, known, HTTP_ACCESS_PREFIX, OTP_KNOWN_TTL_S);
    }
    struct auth_identity id = { 0 };
    id.email = strdup(email);
    id.idp = strdup(idp->name);
    id.amr = calloc(1, sizeof *id.amr);
    if (id.amr && (id.amr[0] = strdup("otp")))
        id.namr = 1;
    st = id.email && id.idp ? auth__complete_login(c, r, flow, &id, ck)
                            : endpoint_fail(c, ENDPOINT_NOMEM);
    free(ck);
    auth__identity_free(&id);
out:
    json_decref(rec);
    return st;
}

enum endpoint_result auth__otp(struct exchange *c, struct endpoint_req *r)
{
    char flow_id[33];
    enum endpoint_result st;
    json_t *flow = auth__flow_required(c, r, flow_id, &st);
    if (!flow)
        return st;
    const char *name = json_string_value(json_object_get(flow, "idp"));
    const struct idp *idp = name ? auth__idp(r->site->cfg, name) : NULL;
    if (!idp || idp->type != IDP_ONETIMEPIN) {
        st = auth__error_page(c, 400, "Sign-in expired", "Start again from the application.");
    } else if (strcmp(r->method, "POST") != 0) {
        st = otp__email_page(c, flow, NULL);
    } else if (!otp__csrf_ok(r, flow)) {
        log_auth(r->site->auth_log, "otp_failed", NULL, idp->name, NULL, r->client_ip, false, "CSRF check failed");
        metrics_login(r->metrics, idp->name, false);
        st = auth__error_page(c, 403, "Form expired", "This form has expired. Start again from the application.");
    } else {
        char code[64], email[320];
        if (auth__form(r, "code", code, sizeof code))
            st = otp__check(c, r, flow, flow_id, idp, code);
        else if (auth__form(r, "email", email, sizeof email))
            st = otp__send(c, r, flow, flow_id, idp, email);
        else
            st = otp__email_page(c, flow, "Enter your email address.");
    }
    json_decref(flow);
    return st;
}
