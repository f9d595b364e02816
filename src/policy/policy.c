/* Policy evaluation of policy.h: include (any), require (all), exclude (none). */
#include "policy/policy.h"

#include "config/config.h"
#include "core/email.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

const char *policy_decision_name(enum access_decision d)
{
    switch (d) {
    case ACCESS_ALLOW: return "allow";
    case ACCESS_BYPASS: return "bypass";
    case ACCESS_SERVICE_AUTH: return "service_auth";
    case ACCESS_BLOCK: return "block";
    case ACCESS_DENY: return "deny";
    case ACCESS_LOGIN_REQUIRED: return "login_required";
    case ACCESS_GATEWAY: return "gateway";
    }
    return "deny";
}

static bool policy__in_list(const char *v, const char *const *list, size_t n)
{
    if (!v)
        return false;
    for (size_t i = 0; i < n; i++)
        if (list[i] && !strcmp(list[i], v))
            return true;
    return false;
}

/* One selector against one request. Selectors about a person never match a service token and
 * the reverse; selectors that need an identity never match without one. Addresses compare as
 * `how` says (core/email.h): exactly where a match admits, by mailbox (sub-addresses and
 * Gmail's spellings included) where a match refuses, so that no spelling gets around a block
 * or an exclude (SPEC.md §5); a malformed address ("a@evil.com@corp.com") matches nothing. */
static bool policy__selector(const struct selector *s, const struct policy_request *r,
                             bool person, const struct app *app, enum email_match how)
{
    const struct identity *id = r->id;
    const char *seps = app->subaddress_separators;
    switch (s->kind) {
    case SEL_EVERYONE:
        return true;
    case SEL_IP:
        return cidr_contains(&s->cidr, r->client_ip);
    case SEL_CERTIFICATE:
        return r->client_cert;
    case SEL_COMMON_NAME:
        return r->client_cert && r->client_cn && !strcmp(r->client_cn, s->value);
    case SEL_EMAIL:
        return person && email_matches(s->value, id->email, seps, how);
    case SEL_EMAIL_DOMAIN:
        return person && email_domain_matches(s->value, id->email, how);
    case SEL_EMAIL_LIST:
        for (size_t i = 0; person && i < s->nlist; i++)
            if (email_matches(s->list[i], id->email, seps, how))
                return true;
        return false;
    case SEL_GROUP:
        return person && policy__in_list(s->value, id->groups, id->ngroups);
    case SEL_IDP:
        return person && id->idp && !strcmp(id->idp, s->value);
    case SEL_AUTH_METHOD:
        return person && policy__in_list(s->value, id->amr, id->namr);
    case SEL_SERVICE_TOKEN:
        return id && id->service_token && !strcmp(id->service_token, s->value);
    case SEL_ANY_VALID_SERVICE_TOKEN:
        return id && id->service_token;
    }
    return false;
}

static bool policy__any(const struct selector *s, size_t n, const struct policy_request *r, bool person,
                        const struct app *app, enum email_match how)
{
    for (size_t i = 0; i < n; i++)
        if (policy__selector(&s[i], r, person, app, how))
            return true;
    return false;
}

static bool policy__all(const struct selector *s, size_t n, const struct policy_request *r, bool person,
                        const struct app *app, enum email_match how)
{
    for (size_t i = 0; i < n; i++)
        if (!policy__selector(&s[i], r, person, app, how))
            return false;
    return true;
}

/* How addresses compare in a policy's include and require (the first) and in its exclude: a
 * block's include and require refuse, another policy's exclude refuses; the rest admits. */
static enum email_match policy__how(const struct policy *p, bool exclude)
{
    return (p->decision == DECISION_BLOCK) != exclude ? EMAIL_MAILBOX : EMAIL_EXACT;
}

/* Whether one policy matches. `allow` admits people: an anonymous request never matches it
 * (even `everyone` means every authenticated person, as with Cloudflare Access); `block`
 * refuses whoever its selectors match, anonymous requests included (an `ip` block needs no
 * login); `bypass` needs no identity; `service_auth` needs a service token or a person. */
static bool policy__matches(const struct app *app, const struct policy *p, const struct policy_request *r)
{
    bool person = r->id && r->id->email && !r->id->service_token;
    if ((p->decision == DECISION_ALLOW || p->decision == DECISION_SERVICE_AUTH) && !r->id)
        return false;
    if (p->decision == DECISION_ALLOW && !person)
        return false;
    if (!policy__any(p->include, p->ninclude, r, person, app, policy__how(p, false)))
        return false;
    if (!policy__all(p->require, p->nrequire, r, person, app, policy__how(p, false)))
        return false;
    return !policy__any(p->exclude, p->nexclude, r, person, app, policy__how(p, true));
}

static enum access_decision policy__decision(enum policy_decision d)
{
    switch (d) {
    case DECISION_ALLOW: return ACCESS_ALLOW;
    case DECISION_BLOCK: return ACCESS_BLOCK;
    case DECISION_BYPASS: return ACCESS_BYPASS;
    case DECISION_SERVICE_AUTH: return ACCESS_SERVICE_AUTH;
    }
    return ACCESS_DENY;
}

void policy_evaluate(const struct app *app, const struct policy_request *r, struct policy_result *out)
{
    bool could_admit = false;
    out->policy = NULL;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < app->npolicies; i++) {
            const struct policy *p = &app->policies[i];
            bool first_group = p->decision == DECISION_BYPASS || p->decision == DECISION_SERVICE_AUTH;
            if (first_group != (pass == 0))
                continue;
            if (p->decision == DECISION_ALLOW || p->decision == DECISION_SERVICE_AUTH)
                could_admit = true;
            if (policy__matches(app, p, r)) {
                out->decision = policy__decision(p->decision);
                out->policy = p;
                /* Anonymous, refused by a block that comes after an allow: had they logged in,
                 * the allow might have admitted them first. Ask them to log in. */
                if (!r->id && p->decision == DECISION_BLOCK && could_admit) {
                    out->decision = ACCESS_LOGIN_REQUIRED;
                    out->policy = NULL;
                }
                return;
            }
        }
    }
    out->decision = (!r->id && could_admit) ? ACCESS_LOGIN_REQUIRED : ACCESS_DENY;
}

void policy_selector_text(const struct selector *s, char *out, size_t cap)
{
    static const char *const names[] = {
        [SEL_EVERYONE] = "everyone", [SEL_EMAIL] = "email", [SEL_EMAIL_DOMAIN] = "email_domain",
        [SEL_EMAIL_LIST] = "email_list", [SEL_IP] = "ip", [SEL_GROUP] = "group", [SEL_IDP] = "idp",
        [SEL_AUTH_METHOD] = "auth_method", [SEL_SERVICE_TOKEN] = "service_token",
        [SEL_ANY_VALID_SERVICE_TOKEN] = "any_valid_service_token",
        [SEL_CERTIFICATE] = "certificate", [SEL_COMMON_NAME] = "common_name",
    };
    if (s->kind == SEL_EMAIL_LIST) {
        int n = snprintf(out, cap, "email_list: [");
        for (size_t i = 0; i < s->nlist && n > 0 && (size_t)n < cap; i++)
            n += snprintf(out + n, cap - (size_t)n, "%s%s", i ? ", " : "", s->list[i]);
        if (n > 0 && (size_t)n < cap)
            snprintf(out + n, cap - (size_t)n, "]");
    } else if (s->kind == SEL_IP) {
        char addr[64];
        bool v4 = !memcmp(s->cidr.addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) && s->cidr.prefix >= 96;
        inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? s->cidr.addr + 12 : s->cidr.addr, addr, sizeof addr);
        snprintf(out, cap, "ip: %s/%u", addr, v4 ? s->cidr.prefix - 96u : s->cidr.prefix);
    } else if (s->value) {
        snprintf(out, cap, "%s: %s", names[s->kind], s->value);
    } else {
        snprintf(out, cap, "%s: {}", names[s->kind]);
    }
}

static void policy__explain_rules(const char *what, const struct selector *s, size_t n,
                                  const struct policy_request *r, bool person,
                                  const struct app *app, enum email_match how, FILE *out)
{
    for (size_t i = 0; i < n; i++) {
        char text[512];
        policy_selector_text(&s[i], text, sizeof text);
        fprintf(out, "    %-8s %-40s %s\n", what, text,
                policy__selector(&s[i], r, person, app, how) ? "matches" : "no match");
    }
}

void policy_explain(const struct app *app, const struct policy_request *r, FILE *out,
                    struct policy_result *res)
{
    bool person = r->id && r->id->email && !r->id->service_token;
    policy_evaluate(app, r, res);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < app->npolicies; i++) {
            const struct policy *p = &app->policies[i];
            bool first_group = p->decision == DECISION_BYPASS || p->decision == DECISION_SERVICE_AUTH;
            if (first_group != (pass == 0))
                continue;
            bool m = policy__matches(app, p, r);
            fprintf(out, "  policy %s (%s): %s\n", p->name,
                    policy_decision_name(policy__decision(p->decision)),
                    m ? (res->policy == p ? "MATCHES, decides" : "matches") : "does not match");
            if ((p->decision == DECISION_ALLOW || p->decision == DECISION_SERVICE_AUTH) && !r->id)
                fprintf(out, "    (needs an identity: none given)\n");
            else if (p->decision == DECISION_ALLOW && !person)
                fprintf(out, "    (admits people only)\n");
            enum email_match how = policy__how(p, false);
            policy__explain_rules("include", p->include, p->ninclude, r, person, app, how, out);
            policy__explain_rules("require", p->require, p->nrequire, r, person, app, how, out);
            policy__explain_rules("exclude", p->exclude, p->nexclude, r, person, app,
                                  policy__how(p, true), out);
        }
    }
}
