/* One-time PIN by email (SPEC.md §6): ask the address, send an 8-digit code valid 10 minutes
 * and 5 tries, check it. The pages read the same whether or not the address may enter: a code
 * is only sent to addresses the app's policies could admit. */
#include "auth/auth-int.h"

#include "auth/mail.h"
#include "core/log.h"
#include "metrics/metrics.h"
#include "server/runtime.h"
#include "server/worker.h"
#include "store/store.h"
#include "token/jwt.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OTP_TTL_S        600
#define OTP_TRIES        5
#define OTP_PER_EMAIL    5    /* codes per address per 10 minutes */
#define OTP_PER_CLIENT   20   /* codes per client address per 10 minutes */

struct mail_job {
    struct local_job lj;
    const struct idp *idp;
    struct runtime *rt; /* keeps idp alive */
    char to[320], code[9], app[128];
};

static void otp__mail_run(struct job *j)
{
    struct mail_job *m = (struct mail_job *)j;
    mail_send_pin(m->idp, m->to, m->code, m->app);
    sodium_memzero(m->code, sizeof m->code);
}

static void otp__mail_done(struct local_job *lj, struct conn *c)
{
    struct mail_job *m = (struct mail_job *)lj;
    runtime_unref(m->rt);
    free(m);
}

/* HMAC of the code bound to its flow: the store never holds a usable code. */
static void otp__hash(const struct local_req *r, const char *flow_id, const char *code, char out[65])
{
    unsigned char mac[32];
    unsigned int len = sizeof mac;
    char msg[128];
    int n = snprintf(msg, sizeof msg, "otp:%s:%s", flow_id, code);
    HMAC(EVP_sha256(), r->rt->secret, 32, (const unsigned char *)msg, (size_t)n, mac, &len);
    sodium_bin2hex(out, 65, mac, sizeof mac);
}

static bool otp__csrf_ok(const struct local_req *r, json_t *flow)
{
    char got[64];
    const char *want = json_string_value(json_object_get(flow, "csrf"));
    if (!want || !auth__form(r, "csrf", got, sizeof got) || strlen(got) != strlen(want))
        return false;
    if (r->origin) { /* a cross-site POST carries another Origin */
        if (strcmp(r->origin, r->rt->auth_url) != 0)
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
        local_html(sb, error);
        sb_adds(sb, "</div>");
    }
    sb_adds(sb, "<form method=\"post\" action=\"/cdn-cgi/access/otp\"><input type=\"hidden\" name=\"csrf\" value=\"");
    local_html(sb, json_string_value(json_object_get(flow, "csrf")));
}

static int otp__email_page(struct conn *c, json_t *flow, const char *error)
{
    struct strbuf sb;
    sb_init(&sb, 8192);
    sb_adds(&sb, "<h1>Sign in with your email</h1><p>We will send you a code.</p>");
    otp__form_start(&sb, flow, error);
    sb_adds(&sb, "\"><label for=\"email\">Email address</label><input id=\"email\" type=\"email\" "
                 "name=\"email\" autocomplete=\"email\" required autofocus>"
                 "<button type=\"submit\">Send me a code</button></form>");
    int st = local_page(c, error ? 400 : 200, "Sign in", sb.p, NULL);
    sb_free(&sb);
    return st;
}

static int otp__code_page(struct conn *c, json_t *flow, const char *email, const char *error)
{
    struct strbuf sb;
    sb_init(&sb, 8192);
    sb_adds(&sb, "<h1>Check your email</h1><p>If <b>");
    local_html(&sb, email);
    sb_adds(&sb, "</b> may use this application, a sign-in code is on its way. It works for 10 minutes.</p>");
    otp__form_start(&sb, flow, error);
    sb_adds(&sb, "\"><label for=\"code\">Code</label><input id=\"code\" type=\"text\" name=\"code\" "
                 "inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9]{8}\" maxlength=\"8\" required autofocus>"
                 "<button type=\"submit\">Sign in</button></form>"
                 "<form method=\"post\" action=\"/cdn-cgi/access/otp\"><input type=\"hidden\" name=\"csrf\" value=\"");
    local_html(&sb, json_string_value(json_object_get(flow, "csrf")));
    sb_adds(&sb, "\"><input type=\"hidden\" name=\"email\" value=\"");
    local_html(&sb, email);
    sb_adds(&sb, "\"><button class=\"button secondary\" type=\"submit\">Send a new code</button></form>");
    int st = local_page(c, error ? 400 : 200, "Enter your code", sb.p, NULL);
    sb_free(&sb);
    return st;
}

static const struct app *otp__app(const struct local_req *r, json_t *flow)
{
    const char *name = json_string_value(json_object_get(flow, "app"));
    for (size_t i = 0; name && i < r->rt->cfg->napps; i++)
        if (!strcmp(r->rt->cfg->apps[i].name, name))
            return &r->rt->cfg->apps[i];
    return NULL;
}

static int otp__send(struct conn *c, struct local_req *r, json_t *flow, const char *flow_id,
                     const struct idp *idp, const char *raw_email)
{
    char email[320];
    snprintf(email, sizeof email, "%s", raw_email);
    for (char *p = email; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    if (!token_email_ok(email))
        return otp__email_page(c, flow, "Enter one plain email address, such as name@example.com.");
    char key[400];
    snprintf(key, sizeof key, "rate:otp:email:%s", email);
    int64_t a = store_incr(r->w->store, key, OTP_TTL_S);
    snprintf(key, sizeof key, "rate:otp:ip:%s", r->client_ip);
    int64_t b = store_incr(r->w->store, key, OTP_TTL_S);
    if (a < 0 || b < 0)
        return auth__store_error(c);
    if (a > OTP_PER_EMAIL || b > OTP_PER_CLIENT) {
        log_auth(r->rt->auth_log, "otp_rate_limited", email, idp->name, NULL, r->client_ip, false,
                 "too many codes requested");
        return auth__error_page(c, 429, "Too many codes", "Too many codes were requested. Wait a few minutes, then try again.");
    }
    const struct app *app = otp__app(r, flow);
    struct auth_identity probe = { .email = email, .idp = (char *)idp->name };
    bool may = app && auth__admitted(r, app, &probe, NULL);
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
    store_del(r->w->store, key); /* a new code, five new tries */
    char *val = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    snprintf(key, sizeof key, "otp:%s", flow_id);
    enum store_result sr = val ? store_put(r->w->store, key, val, strlen(val), OTP_TTL_S) : STORE_NOMEM;
    free(val);
    if (sr != STORE_OK)
        return auth__store_error(c);
    log_auth(r->rt->auth_log, "otp_sent", email, idp->name, app ? app->name : NULL, r->client_ip, may,
             may ? "code sent" : "address not admitted: no code sent");
    if (may) { /* fire and forget: the answer does not wait (nor tell) */
        struct mail_job *m = calloc(1, sizeof *m);
        if (m) {
            m->idp = idp;
            m->rt = r->rt;
            runtime_ref(r->rt);
            snprintf(m->to, sizeof m->to, "%s", email);
            snprintf(m->code, sizeof m->code, "%s", code);
            snprintf(m->app, sizeof m->app, "%s", app->name);
            m->lj.job.run = otp__mail_run;
            m->lj.finish = otp__mail_done;
            local_detach(&m->lj, r->w);
        }
        sodium_memzero(code, sizeof code);
    }
    return otp__code_page(c, flow, email, NULL);
}

static int otp__check(struct conn *c, struct local_req *r, json_t *flow, const char *flow_id,
                      const struct idp *idp, const char *code)
{
    char key[64], *val = NULL;
    size_t len;
    snprintf(key, sizeof key, "otp:%s", flow_id);
    enum store_result sr = store_get(r->w->store, key, &val, &len);
    if (sr == STORE_UNAVAILABLE)
        return auth__store_error(c);
    if (sr != STORE_OK)
        return otp__email_page(c, flow, "That code has expired. Ask for a new one.");
    json_error_t je;
    json_t *rec = json_loadb(val, len, 0, &je);
    free(val);
    const char *email = json_string_value(json_object_get(rec, "email"));
    const char *want = json_string_value(json_object_get(rec, "hash"));
    json_int_t expires = json_integer_value(json_object_get(rec, "expires"));
    /* the try is counted atomically before the comparison: parallel guesses on several
     * workers cannot get past the limit */
    char tkey[80];
    snprintf(tkey, sizeof tkey, "otp:tries:%s", flow_id);
    int64_t tries = store_incr(r->w->store, tkey, OTP_TTL_S) - 1;
    int st;
    if (tries < 0) {
        st = auth__store_error(c);
        goto out;
    }
    if (!email || !want || strlen(want) != 64 || tries >= OTP_TRIES || time(NULL) >= expires) {
        store_del(r->w->store, key);
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
            store_del(r->w->store, key); /* the fifth miss burns the code */
        log_auth(r->rt->auth_log, "otp_failed", email, idp->name, NULL, r->client_ip, false, "wrong code");
        metrics_login(r->w->metrics, idp->name, false);
        st = otp__code_page(c, flow, email, tries + 1 < OTP_TRIES ? "That code is not right." :
                                            "Too many wrong codes. Ask for a new one.");
        goto out;
    }
    store_del(r->w->store, key); /* single use */
    snprintf(key, sizeof key, "flow:%s", flow_id);
    store_del(r->w->store, key);
    struct auth_identity id = { 0 };
    id.email = strdup(email);
    id.idp = strdup(idp->name);
    id.amr = calloc(1, sizeof *id.amr);
    if (id.amr && (id.amr[0] = strdup("otp")))
        id.namr = 1;
    st = id.email && id.idp ? auth__complete_login(c, r, flow, &id)
                            : auth__error_page(c, 500, "Error", "Out of memory.");
    auth__identity_free(&id);
out:
    json_decref(rec);
    return st;
}

int auth__otp(struct conn *c, struct local_req *r)
{
    char flow_id[33];
    json_t *flow = auth__flow_load(r, flow_id);
    if (!flow && !store_up(r->w->store))
        return auth__store_error(c);
    if (!flow)
        return auth__error_page(c, 400, "Sign-in expired", "This sign-in has expired or was started in another browser. Start again from the application.");
    const char *name = json_string_value(json_object_get(flow, "idp"));
    const struct idp *idp = name ? auth__idp(r->rt->cfg, name) : NULL;
    int st;
    if (!idp || idp->type != IDP_ONETIMEPIN) {
        st = auth__error_page(c, 400, "Sign-in expired", "Start again from the application.");
    } else if (strcmp(r->method, "POST") != 0) {
        st = otp__email_page(c, flow, NULL);
    } else if (!otp__csrf_ok(r, flow)) {
        log_auth(r->rt->auth_log, "otp_failed", NULL, idp->name, NULL, r->client_ip, false, "CSRF check failed");
        metrics_login(r->w->metrics, idp->name, false);
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
