/* The policy engine (SPEC.md §3.3): which decision a request gets from an app's policies.
 * Bypass and service_auth policies first, then allow and block, each group in its order; the
 * first policy that matches decides; nothing matches: deny (or login_required when no identity
 * was presented and some allow/service_auth policy could still admit one). */
#ifndef LATCH_POLICY_H
#define LATCH_POLICY_H

#include "config/config-t.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Who the request is, as far as it proved it. NULL fields: not known. */
struct identity {
    const char *email;          /* lowercase */
    const char *sub;
    const char *idp;
    const char *const *groups; size_t ngroups;
    const char *const *amr;    size_t namr;
    const char *service_token;  /* the name of a verified service token */
};

struct policy_request {
    uint8_t client_ip[16];          /* IPv4 mapped; the address trusted_proxies established */
    const struct identity *id;      /* NULL: no identity presented */
    bool client_cert;               /* a client certificate verified against the listener's CA */
    const char *client_cn;
};

enum access_decision {
    ACCESS_ALLOW,
    ACCESS_BYPASS,
    ACCESS_SERVICE_AUTH,
    ACCESS_BLOCK,
    ACCESS_DENY,
    ACCESS_LOGIN_REQUIRED,
    ACCESS_GATEWAY, /* not a policy's: the gateway answered itself (/cdn-cgi/access/…, the auth
                     * domain's app launcher); the status tells how it went */
};

struct policy_result {
    enum access_decision decision;
    const struct policy *policy; /* the deciding policy, NULL for deny/login_required */
};

void policy_evaluate(const struct app *app, const struct policy_request *r, struct policy_result *out);

/* Writes, for `latchd policy-test`, every policy in evaluation order with the result of each
 * of its rules, then the decision; returns the same decision as policy_evaluate. */
void policy_explain(const struct app *app, const struct policy_request *r, FILE *out,
                    struct policy_result *res);

/* A selector as written in the configuration: "email_domain: example.com". */
void policy_selector_text(const struct selector *s, char *out, size_t cap);

/* "allow", "bypass", …: the names of SPEC.md §9's `decision` field, and "gateway". */
const char *policy_decision_name(enum access_decision d);

/* True when the decision lets the request through to the origin. */
static inline bool policy_admits(enum access_decision d)
{
    return d == ACCESS_ALLOW || d == ACCESS_BYPASS || d == ACCESS_SERVICE_AUTH;
}

#endif
