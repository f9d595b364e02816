/* Unit tests of the policy engine (src/policy/policy.c) on hand-built apps: every selector,
 * include (OR) / require (AND) / exclude (NOT), the SPEC.md §3.3 order (bypass and service_auth
 * first, then allow and block, first match decides, default deny or login_required), people
 * versus service tokens, and the policy-test explanation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "config/config.h"
#include "policy/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct selector sel(enum selector_kind k, const char *v)
{
    struct selector s = { .kind = k, .value = (char *)v };
    if (k == SEL_IP)
        assert_int_equal(config_parse_cidr(v, &s.cidr), 0);
    return s;
}

static struct policy pol(const char *name, enum policy_decision d, struct selector *inc, size_t ninc)
{
    return (struct policy){ .name = (char *)name, .decision = d, .include = inc, .ninclude = ninc };
}

static struct app app_of(struct policy *p, size_t n)
{
    return (struct app){ .name = "app", .policies = p, .npolicies = n };
}

static void ip4(struct policy_request *r, unsigned a, unsigned b, unsigned c, unsigned d)
{
    memset(r->client_ip, 0, 16);
    r->client_ip[10] = r->client_ip[11] = 0xff;
    r->client_ip[12] = (uint8_t)a, r->client_ip[13] = (uint8_t)b;
    r->client_ip[14] = (uint8_t)c, r->client_ip[15] = (uint8_t)d;
}

static enum access_decision eval(const struct app *a, const struct policy_request *r,
                                 const char **policy)
{
    struct policy_result res;
    policy_evaluate(a, r, &res);
    if (policy)
        *policy = res.policy ? res.policy->name : NULL;
    return res.decision;
}

/* One allow policy with one include selector; is `id` admitted? */
static bool admits(struct selector s, const struct identity *id)
{
    struct policy p = pol("p", DECISION_ALLOW, &s, 1);
    struct app a = app_of(&p, 1);
    struct policy_request r = { .id = id };
    ip4(&r, 127, 0, 0, 1);
    return eval(&a, &r, NULL) == ACCESS_ALLOW;
}

static void test_identity_selectors(void **state)
{
    const char *groups[] = { "ops", "eng" }, *amr[] = { "pwd", "mfa" };
    struct identity bob = { .email = "bob@corp.com", .sub = "s", .idp = "corp",
                            .groups = groups, .ngroups = 2, .amr = amr, .namr = 2 };
    struct identity twoat = { .email = "a@evil.com@corp.com" };
    struct identity noat = { .email = "corp.com" };
    struct identity svc = { .service_token = "ci" };
    char *list[] = { "alice@corp.com", "bob@corp.com" };
    struct selector l = { .kind = SEL_EMAIL_LIST, .list = list, .nlist = 2 };

    assert_true(admits(sel(SEL_EVERYONE, NULL), &bob));
    assert_true(admits(sel(SEL_EMAIL, "bob@corp.com"), &bob));
    assert_false(admits(sel(SEL_EMAIL, "alice@corp.com"), &bob));
    assert_false(admits(sel(SEL_EMAIL, "bob@corp.co"), &bob));
    assert_true(admits(sel(SEL_EMAIL_DOMAIN, "corp.com"), &bob));
    assert_false(admits(sel(SEL_EMAIL_DOMAIN, "orp.com"), &bob));
    assert_false(admits(sel(SEL_EMAIL_DOMAIN, "com"), &bob));
    assert_true(admits(l, &bob));
    assert_true(admits(sel(SEL_GROUP, "eng"), &bob));
    assert_false(admits(sel(SEL_GROUP, "en"), &bob));
    assert_true(admits(sel(SEL_IDP, "corp"), &bob));
    assert_false(admits(sel(SEL_IDP, "email-code"), &bob));
    assert_true(admits(sel(SEL_AUTH_METHOD, "mfa"), &bob));
    assert_false(admits(sel(SEL_AUTH_METHOD, "hwk"), &bob));
    /* "a@evil.com@corp.com" matches nothing (SPEC.md §5) */
    assert_false(admits(sel(SEL_EMAIL_DOMAIN, "corp.com"), &twoat));
    assert_false(admits(sel(SEL_EMAIL_DOMAIN, "evil.com@corp.com"), &twoat));
    assert_false(admits(sel(SEL_EMAIL, "a@evil.com@corp.com"), &twoat));
    char *l2[] = { "a@evil.com@corp.com" };
    struct selector ls2 = { .kind = SEL_EMAIL_LIST, .list = l2, .nlist = 1 };
    assert_false(admits(ls2, &twoat));
    assert_false(admits(sel(SEL_EMAIL_DOMAIN, "corp.com"), &noat));
    assert_false(admits(sel(SEL_EMAIL, "corp.com"), &noat));
    /* allow admits people only: a service token never, even with `everyone` */
    assert_false(admits(sel(SEL_EVERYONE, NULL), &svc));
    assert_false(admits(sel(SEL_SERVICE_TOKEN, "ci"), &svc));
    /* no identity: never */
    assert_false(admits(sel(SEL_EVERYONE, NULL), NULL));
    /* missing lists do not crash and do not match */
    struct identity bare = { .email = "bob@corp.com" };
    assert_false(admits(sel(SEL_GROUP, "eng"), &bare));
    assert_false(admits(sel(SEL_AUTH_METHOD, "mfa"), &bare));
    assert_false(admits(sel(SEL_IDP, "corp"), &bare));
}

static void test_service_selectors(void **state)
{
    struct identity svc = { .service_token = "ci" }, bob = { .email = "bob@corp.com" };
    struct selector s1 = sel(SEL_SERVICE_TOKEN, "ci"), s2 = sel(SEL_ANY_VALID_SERVICE_TOKEN, NULL),
                    s3 = sel(SEL_SERVICE_TOKEN, "other");
    struct policy p[] = { pol("ci", DECISION_SERVICE_AUTH, &s1, 1) };
    struct app a = app_of(p, 1);
    struct policy_request r = { .id = &svc };
    assert_int_equal(eval(&a, &r, NULL), ACCESS_SERVICE_AUTH);
    r.id = &bob;
    assert_int_equal(eval(&a, &r, NULL), ACCESS_DENY);
    r.id = NULL;
    assert_int_equal(eval(&a, &r, NULL), ACCESS_LOGIN_REQUIRED);
    p[0].include = &s2;
    r.id = &svc;
    assert_int_equal(eval(&a, &r, NULL), ACCESS_SERVICE_AUTH);
    r.id = &bob;
    assert_int_equal(eval(&a, &r, NULL), ACCESS_DENY);
    p[0].include = &s3;
    r.id = &svc;
    assert_int_equal(eval(&a, &r, NULL), ACCESS_DENY);
    /* a person selector in a service_auth policy never matches a service token */
    struct selector dom = sel(SEL_EMAIL_DOMAIN, "corp.com");
    p[0].include = &dom;
    assert_int_equal(eval(&a, &r, NULL), ACCESS_DENY);
}

static void test_ip_and_certificate(void **state)
{
    struct selector s[] = { sel(SEL_IP, "10.0.0.0/8"), sel(SEL_IP, "2001:db8::/32") };
    struct policy p = pol("office", DECISION_BYPASS, s, 2);
    struct app a = app_of(&p, 1);
    struct policy_request r = { 0 };
    ip4(&r, 10, 200, 3, 4);
    assert_int_equal(eval(&a, &r, NULL), ACCESS_BYPASS);
    ip4(&r, 11, 0, 0, 1);
    assert_int_equal(eval(&a, &r, NULL), ACCESS_DENY);
    memset(r.client_ip, 0, 16);
    r.client_ip[0] = 0x20, r.client_ip[1] = 0x01, r.client_ip[2] = 0x0d, r.client_ip[3] = 0xb8;
    r.client_ip[15] = 1;
    assert_int_equal(eval(&a, &r, NULL), ACCESS_BYPASS);
    r.client_ip[3] = 0xb9;
    assert_int_equal(eval(&a, &r, NULL), ACCESS_DENY);
    /* 10.0.0.0/8 does not match an IPv6 address ending in 10.x */
    memset(r.client_ip, 0, 16);
    r.client_ip[12] = 10;
    assert_int_equal(eval(&a, &r, NULL), ACCESS_DENY);

    struct selector c[] = { sel(SEL_CERTIFICATE, NULL) }, cn[] = { sel(SEL_COMMON_NAME, "robot") };
    struct policy pc = pol("mtls", DECISION_BYPASS, c, 1), pcn = pol("cn", DECISION_BYPASS, cn, 1);
    struct app ac = app_of(&pc, 1), acn = app_of(&pcn, 1);
    struct policy_request q = { .client_cert = false, .client_cn = "robot" };
    assert_int_equal(eval(&ac, &q, NULL), ACCESS_DENY);
    assert_int_equal(eval(&acn, &q, NULL), ACCESS_DENY); /* a CN without a verified cert */
    q.client_cert = true;
    assert_int_equal(eval(&ac, &q, NULL), ACCESS_BYPASS);
    assert_int_equal(eval(&acn, &q, NULL), ACCESS_BYPASS);
    q.client_cn = "robot2";
    assert_int_equal(eval(&acn, &q, NULL), ACCESS_DENY);
    q.client_cn = "";
    assert_int_equal(eval(&acn, &q, NULL), ACCESS_DENY);
    q.client_cn = NULL;
    assert_int_equal(eval(&acn, &q, NULL), ACCESS_DENY);
}

static void test_require_exclude(void **state)
{
    struct selector inc[] = { sel(SEL_EMAIL_DOMAIN, "corp.com"), sel(SEL_EMAIL, "guest@partner.org") };
    struct selector req[] = { sel(SEL_GROUP, "eng"), sel(SEL_AUTH_METHOD, "mfa") };
    struct selector exc[] = { sel(SEL_EMAIL, "contractor@corp.com"), sel(SEL_IP, "192.0.2.0/24") };
    struct policy p = pol("engineers", DECISION_ALLOW, inc, 2);
    p.require = req, p.nrequire = 2, p.exclude = exc, p.nexclude = 2;
    struct app a = app_of(&p, 1);
    const char *eng[] = { "eng" }, *mfa[] = { "mfa" };
    struct identity ok = { .email = "bob@corp.com", .groups = eng, .ngroups = 1, .amr = mfa, .namr = 1 };
    struct identity guest = ok, nomfa = ok, contractor = ok, other = ok;
    guest.email = "guest@partner.org";
    nomfa.namr = 0;
    contractor.email = "contractor@corp.com";
    other.email = "x@other.org";
    struct policy_request r = { .id = &ok };
    ip4(&r, 127, 0, 0, 1);
    assert_int_equal(eval(&a, &r, NULL), ACCESS_ALLOW);
    r.id = &guest;
    assert_int_equal(eval(&a, &r, NULL), ACCESS_ALLOW);
    r.id = &nomfa;
    assert_int_equal(eval(&a, &r, NULL), ACCESS_DENY);
    r.id = &contractor;
    assert_int_equal(eval(&a, &r, NULL), ACCESS_DENY);
    r.id = &other;
    assert_int_equal(eval(&a, &r, NULL), ACCESS_DENY);
    r.id = &ok;
    ip4(&r, 192, 0, 2, 9);
    assert_int_equal(eval(&a, &r, NULL), ACCESS_DENY);
}

/* SPEC.md §5: a block or an exclude naming an address also refuses its sub-addresses (and, at
 * Gmail, its other spellings); an allow admits exactly what it names. */
static void test_subaddresses(void **state)
{
    struct selector dom = sel(SEL_EMAIL_DOMAIN, "example.com"), who = sel(SEL_EMAIL, "contractor@example.com");
    char *names[] = { "x@example.com", "contractor@example.com" };
    struct selector list = { .kind = SEL_EMAIL_LIST, .list = names, .nlist = 2 };
    struct policy allow = pol("staff", DECISION_ALLOW, &dom, 1);
    allow.exclude = &who, allow.nexclude = 1;
    struct app a = app_of(&allow, 1);
    const char *in[] = { "contractor@example.com", "contractor+x@example.com", "Contractor+X@Example.com",
                         "contractor+a+b@example.com" };
    struct identity id = { 0 };
    struct policy_request r = { .id = &id };
    ip4(&r, 127, 0, 0, 1);
    for (size_t i = 0; i < sizeof in / sizeof *in; i++) {
        id.email = in[i];
        if (eval(&a, &r, NULL) != ACCESS_DENY)
            fail_msg("exclude bypassed by %s", in[i]);
    }
    id.email = "contractor-x@example.com"; /* not a sub-address where '+' alone is the separator */
    assert_int_equal(eval(&a, &r, NULL), ACCESS_ALLOW);
    a.subaddress_separators = "+-";
    assert_int_equal(eval(&a, &r, NULL), ACCESS_DENY);
    a.subaddress_separators = NULL;
    allow.exclude = &list;
    id.email = "contractor+y@example.com";
    assert_int_equal(eval(&a, &r, NULL), ACCESS_DENY);

    /* block: include and require match sub-addresses, its exclude (an exception) does not */
    struct selector every = sel(SEL_EVERYONE, NULL), boss = sel(SEL_EMAIL, "boss@example.com");
    struct policy pb[] = { pol("no-contractor", DECISION_BLOCK, &who, 1), pol("staff", DECISION_ALLOW, &dom, 1) };
    struct app b = app_of(pb, 2);
    const char *name = NULL;
    id.email = "contractor+x@example.com";
    assert_int_equal(eval(&b, &r, &name), ACCESS_BLOCK);
    id.email = "bob@example.com";
    assert_int_equal(eval(&b, &r, &name), ACCESS_ALLOW);
    pb[0].include = &every, pb[0].require = &who, pb[0].nrequire = 1;
    id.email = "contractor+z@example.com";
    assert_int_equal(eval(&b, &r, &name), ACCESS_BLOCK);
    pb[0].require = NULL, pb[0].nrequire = 0, pb[0].exclude = &boss, pb[0].nexclude = 1;
    id.email = "boss@example.com";
    assert_int_equal(eval(&b, &r, &name), ACCESS_ALLOW);
    id.email = "boss+x@example.com"; /* the block's exception is the exact address */
    assert_int_equal(eval(&b, &r, &name), ACCESS_BLOCK);

    /* an allow naming a@x admits neither a+tag@x nor another spelling at Gmail */
    struct selector alice = sel(SEL_EMAIL, "alice@example.com"), jd = sel(SEL_EMAIL, "john.doe@gmail.com");
    struct identity x = { .email = "alice+admin@example.com" };
    assert_false(admits(alice, &x));
    x.email = "ALICE@example.com";
    assert_true(admits(alice, &x));
    x.email = "johndoe@gmail.com";
    assert_false(admits(jd, &x));
    /* ...but an exclude naming john.doe@gmail.com refuses johndoe+x@googlemail.com */
    struct selector gmail = sel(SEL_EMAIL_DOMAIN, "gmail.com");
    struct policy pg = pol("g", DECISION_ALLOW, &gmail, 1);
    pg.exclude = &jd, pg.nexclude = 1;
    struct app g = app_of(&pg, 1);
    id.email = "johndoe@gmail.com";
    assert_int_equal(eval(&g, &r, NULL), ACCESS_DENY);
    id.email = "j.ohndoe+x@gmail.com";
    assert_int_equal(eval(&g, &r, NULL), ACCESS_DENY);
    id.email = "jane@gmail.com";
    assert_int_equal(eval(&g, &r, NULL), ACCESS_ALLOW);
    /* a block on the domain gmail.com covers googlemail.com; an allow does not */
    struct policy pgb[] = { pol("no-gmail", DECISION_BLOCK, &gmail, 1), pol("all", DECISION_ALLOW, &every, 1) };
    struct app gb = app_of(pgb, 2);
    id.email = "jane@googlemail.com";
    assert_int_equal(eval(&gb, &r, NULL), ACCESS_BLOCK);
    assert_false(admits(gmail, &id));
}

static void test_order(void **state)
{
    struct selector every = sel(SEL_EVERYONE, NULL), bob = sel(SEL_EMAIL, "bob@corp.com"),
                    corp = sel(SEL_EMAIL_DOMAIN, "corp.com"), ci = sel(SEL_SERVICE_TOKEN, "ci"),
                    lo = sel(SEL_IP, "127.0.0.0/8");
    struct identity b = { .email = "bob@corp.com" }, al = { .email = "alice@corp.com" },
                    svc = { .service_token = "ci" };
    const char *name;
    struct policy_request r = { .id = &b };
    ip4(&r, 127, 0, 0, 1);

    /* bypass written last still comes first */
    struct policy p1[] = { pol("closed", DECISION_BLOCK, &every, 1), pol("open", DECISION_BYPASS, &lo, 1) };
    struct app a1 = app_of(p1, 2);
    assert_int_equal(eval(&a1, &r, &name), ACCESS_BYPASS);
    assert_string_equal(name, "open");
    ip4(&r, 8, 8, 8, 8);
    assert_int_equal(eval(&a1, &r, &name), ACCESS_BLOCK);
    assert_string_equal(name, "closed");
    ip4(&r, 127, 0, 0, 1);

    /* service_auth before block */
    struct policy p2[] = { pol("closed", DECISION_BLOCK, &every, 1), pol("ci", DECISION_SERVICE_AUTH, &ci, 1) };
    struct app a2 = app_of(p2, 2);
    r.id = &svc;
    assert_int_equal(eval(&a2, &r, &name), ACCESS_SERVICE_AUTH);
    r.id = &b;
    assert_int_equal(eval(&a2, &r, &name), ACCESS_BLOCK);

    /* among allow and block: first match wins, in written order */
    struct policy p3[] = { pol("staff", DECISION_ALLOW, &corp, 1), pol("no-bob", DECISION_BLOCK, &bob, 1) };
    struct app a3 = app_of(p3, 2);
    assert_int_equal(eval(&a3, &r, &name), ACCESS_ALLOW);
    assert_string_equal(name, "staff");
    struct policy p4[] = { pol("no-bob", DECISION_BLOCK, &bob, 1), pol("staff", DECISION_ALLOW, &corp, 1) };
    struct app a4 = app_of(p4, 2);
    assert_int_equal(eval(&a4, &r, &name), ACCESS_BLOCK);
    assert_string_equal(name, "no-bob");
    r.id = &al;
    assert_int_equal(eval(&a4, &r, &name), ACCESS_ALLOW);

    /* default: deny for someone, login_required for no one (when an allow could admit) */
    struct selector just_bob = sel(SEL_EMAIL, "bob@corp.com");
    struct policy p5[] = { pol("only-bob", DECISION_ALLOW, &just_bob, 1) };
    struct app a5 = app_of(p5, 1);
    assert_int_equal(eval(&a5, &r, &name), ACCESS_DENY);
    assert_null(name);
    r.id = NULL;
    assert_int_equal(eval(&a5, &r, &name), ACCESS_LOGIN_REQUIRED);
    struct app empty = app_of(NULL, 0);
    assert_int_equal(eval(&empty, &r, &name), ACCESS_DENY);
    struct policy p6[] = { pol("closed", DECISION_BLOCK, &every, 1) };
    struct app a6 = app_of(p6, 1);
    assert_false(policy_admits(eval(&a6, &r, NULL)));
    r.id = &b;
    assert_int_equal(eval(&a6, &r, NULL), ACCESS_BLOCK);
}

static void test_explain(void **state)
{
    struct selector corp = sel(SEL_EMAIL_DOMAIN, "corp.com"), lo = sel(SEL_IP, "10.0.0.0/8");
    struct policy p[] = { pol("staff", DECISION_ALLOW, &corp, 1), pol("office", DECISION_BYPASS, &lo, 1) };
    struct app a = app_of(p, 2);
    struct identity b = { .email = "bob@corp.com" };
    struct policy_request r = { .id = &b };
    ip4(&r, 127, 0, 0, 1);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    struct policy_result res, res2;
    policy_explain(&a, &r, f, &res);
    fclose(f);
    policy_evaluate(&a, &r, &res2);
    assert_int_equal(res.decision, res2.decision);
    assert_ptr_equal(res.policy, res2.policy);
    char *office = strstr(buf, "policy office"), *staff = strstr(buf, "policy staff");
    assert_non_null(office);
    assert_non_null(staff);
    assert_true(office < staff); /* evaluation order, not written order */
    assert_non_null(strstr(buf, "email_domain: corp.com"));
    assert_non_null(strstr(buf, "ip: 10.0.0.0/8"));
    assert_non_null(strstr(buf, "MATCHES"));
    free(buf);
    char text[64];
    struct selector v6 = sel(SEL_IP, "::1/128");
    policy_selector_text(&v6, text, sizeof text);
    assert_string_equal(text, "ip: ::1/128");
    assert_string_equal(policy_decision_name(ACCESS_LOGIN_REQUIRED), "login_required");
    assert_string_equal(policy_decision_name(ACCESS_SERVICE_AUTH), "service_auth");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity_selectors),
        cmocka_unit_test(test_service_selectors),
        cmocka_unit_test(test_ip_and_certificate),
        cmocka_unit_test(test_require_exclude),
        cmocka_unit_test(test_subaddresses),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_explain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
