/* Unit tests of the configuration loader (src/config/): the SPEC.md §2 example loads with every
 * field as written, every kind of mistake is reported at its FILE:LINE:COL, and the duration and
 * CIDR helpers compute what they promise. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "config/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* SPEC.md §2's example, with the elided values filled in so that every reference resolves. */
static const char FULL[] =
    "listen:                        # one or more listeners\n"                             /* 1 */
    "  - address: 127.0.0.1:8080\n"                                                        /* 2 */
    "  - address: 0.0.0.0:443\n"                                                           /* 3 */
    "    tls: { cert: /etc/latch/fullchain.pem, key: /etc/latch/key.pem }\n"               /* 4 */
    "workers: auto\n"                                                                      /* 5 */
    "state_dir: /var/lib/latch\n"                                                          /* 6 */
    "store: embedded\n"                                                                    /* 7 */
    "store_key_file: /etc/latch/store.key\n"                                               /* 8 */
    "admin: { listen: 127.0.0.1:9145 }\n"                                                  /* 9 */
    "auth_domain: auth.example.com\n"                                                      /* 10 */
    "trusted_proxies: []\n"                                                                /* 11 */
    "session_duration: 24h\n"                                                              /* 12 */
    "log: { requests: stdout, auth: stdout, format: json }\n"                              /* 13 */
    "identity_providers:\n"                                                                /* 14 */
    "  - name: email-code\n"                                                               /* 15 */
    "    type: onetimepin\n"                                                               /* 16 */
    "    mail: console\n"                                                                  /* 17 */
    "    from: access@example.com\n"                                                       /* 18 */
    "  - name: corp\n"                                                                     /* 19 */
    "    type: oidc\n"                                                                     /* 20 */
    "    issuer: https://idp.example.com\n"                                                /* 21 */
    "    client_id: latch\n"                                                               /* 22 */
    "    client_secret_file: /etc/latch/oidc-secret\n"                                     /* 23 */
    "    scopes: [openid, email, profile, groups]\n"                                       /* 24 */
    "    groups_claim: groups\n"                                                           /* 25 */
    "service_tokens:\n"                                                                    /* 26 */
    "  - name: ci-deploy\n"                                                                /* 27 */
    "    client_id: 6f1c2d3e.access\n"                                                     /* 28 */
    "    secret_sha256: 9B2E4F0A1C3D5E7F9B2E4F0A1C3D5E7F9B2E4F0A1C3D5E7F9B2E4F0A1C3D5E7F\n" /* 29 */
    "    expires: 2027-11-28T00:00:00Z\n"                                                  /* 30 */
    "apps:\n"                                                                              /* 31 */
    "  - name: api\n"                                                                      /* 32 */
    "    domains: [api.example.com]\n"                                                     /* 33 */
    "    origin: http://10.0.0.5:8000\n"                                                   /* 34 */
    "    session_duration: 12h\n"                                                          /* 35 */
    "    policies:\n"                                                                      /* 36 */
    "      - name: engineers\n"                                                            /* 37 */
    "        decision: allow\n"                                                            /* 38 */
    "        include: [{ email_domain: Example.com }]\n"                                   /* 39 */
    "        require: [{ group: engineering }]\n"                                          /* 40 */
    "        exclude: [{ email: Contractor@example.com }]\n"                               /* 41 */
    "      - name: ci\n"                                                                   /* 42 */
    "        decision: service_auth\n"                                                     /* 43 */
    "        include: [{ service_token: ci-deploy }]\n"                                    /* 44 */
    "  - name: api-admin\n"                                                                /* 45 */
    "    domains: [\"api.example.com/admin/*\"]\n"                                         /* 46 */
    "    origin: http://10.0.0.5:8000\n"                                                   /* 47 */
    "    policies:\n"                                                                      /* 48 */
    "      - { name: sre, decision: allow, include: [{ group: sre }], require: [{ auth_method: mfa }] }\n" /* 49 */
    "  - name: api-health\n"                                                               /* 50 */
    "    domains: [\"api.example.com/health\"]\n"                                          /* 51 */
    "    origin: http://10.0.0.5:8000\n"                                                   /* 52 */
    "    policies: [{ name: public, decision: bypass, include: [{ everyone: {} }] }]\n";   /* 53 */

/* The keys of docs/config-extras.md and the selectors the SPEC example does not use. */
static const char EXTRAS[] =
    "listen:\n"                                                              /* 1 */
    "  - address: \"[::1]:8443\"\n"                                          /* 2 */
    "    tls:\n"                                                             /* 3 */
    "      - { cert: a.pem, key: a-key.pem }\n"                              /* 4 */
    "      - { cert: b.pem, key: b-key.pem }\n"                              /* 5 */
    "    client_ca: ca.pem\n"                                                /* 6 */
    "  - address: localhost:8080\n"                                          /* 7 */
    "workers: 8\n"                                                           /* 8 */
    "state_dir: ./state\n"                                                   /* 9 */
    "store: redis://redis.internal:6379/2\n"                                 /* 10 */
    "store_key_file: /tmp/latch-unit-store.key\n"                            /* 11 */
    "auth_domain: Auth.Localhost:8080\n"                                     /* 12 */
    "trusted_proxies: [10.0.0.0/8, \"fd00::/8\", 192.168.1.7]\n"             /* 13 */
    "session_duration: 1h30m\n"                                              /* 14 */
    "keys: { rotation: 2w, overlap: 3d }\n"                                  /* 15 */
    "log: { requests: /var/log/latch/requests.log, auth: stderr }\n"         /* 16 */
    "timeouts:\n"                                                            /* 17 */
    "  header: 5s\n"                                                         /* 18 */
    "  idle: 2m\n"                                                           /* 19 */
    "  client: 45s\n"                                                        /* 20 */
    "  origin_connect: 1500ms\n"                                             /* 21 */
    "  origin_response: 90s\n"                                               /* 22 */
    "  drain: 1m\n"                                                          /* 23 */
    "identity_providers:\n"                                                  /* 24 */
    "  - { name: corp, type: oidc, issuer: \"http://127.0.0.1:9000/realms/x\", client_id: latch, client_secret_file: s }\n" /* 25 */
    "  - { name: pin, type: onetimepin, mail: \"smtps://mail.example.com:465\", from: Access@Example.com }\n" /* 26 */
    "service_tokens:\n"                                                      /* 27 */
    "  - { name: cron, client_id: cron.access, secret_sha256: 0000000000000000000000000000000000000000000000000000000000000000 }\n" /* 28 */
    "apps:\n"                                                                /* 29 */
    "  - name: x\n"                                                          /* 30 */
    "    domains: [X.Localhost:8080, \"*test.Example.com/Foo*/bar\"]\n"      /* 31 */
    "    origin: https://[::1]:8000/base/\n"                                 /* 32 */
    "    origin_tls: { ca_file: /etc/latch/origin-ca.pem, verify: false }\n" /* 33 */
    "    preserve_host: false\n"                                             /* 34 */
    "    allowed_idps: [corp]\n"                                             /* 35 */
    "    aud: ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789\n" /* 36 */
    "    policies:\n"                                                        /* 37 */
    "      - name: people\n"                                                 /* 38 */
    "        decision: allow\n"                                              /* 39 */
    "        session_duration: 30m\n"                                        /* 40 */
    "        include:\n"                                                     /* 41 */
    "          - email_list: [A@example.com, b@example.com]\n"               /* 42 */
    "          - ip: 2001:db8::/32\n"                                        /* 43 */
    "          - idp: corp\n"                                                /* 44 */
    "        require: [{ certificate: {} }, { common_name: laptop-7 }]\n"    /* 45 */
    "      - { name: machines, decision: service_auth, include: [{ any_valid_service_token: {} }] }\n" /* 46 */
    "      - { name: office, decision: block, include: [{ ip: 10.1.2.3/8 }] }\n" /* 47 */
    "  - name: echo\n"                                                       /* 48 */
    "    domains: [echo.localhost]\n"                                        /* 49 */
    "    origin: echo\n"                                                     /* 50 */
    "    policies: [{ name: all, decision: bypass, include: [{ everyone: }] }]\n"; /* 51 */

/* The smallest valid head; fragments appended to it start at line 3. */
#define HEAD "listen: [{ address: \"127.0.0.1:8080\" }]\nauth_domain: auth.example.com\n"

static struct config *load(const char *yaml, struct config_errors *errs)
{
    return config_load_buffer("t.yaml", yaml, strlen(yaml), errs);
}

/* Loads yaml, which must fail with exactly the `n` given error lines, in order. */
static void expect_errors(const char *yaml, size_t n, ...)
{
    struct config_errors errs = {0};
    struct config *cfg = load(yaml, &errs);
    if (cfg || errs.n != n) {
        fprintf(stderr, "expected %zu errors, got %zu (config %s):\n", n, errs.n,
                cfg ? "loaded" : "refused");
        config_errors_print(&errs, stderr);
    }
    assert_null(cfg);
    assert_int_equal(errs.n, n);
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(errs.lines[i], va_arg(ap, const char *));
    va_end(ap);
    config_errors_clear(&errs);
    assert_int_equal(errs.n, 0);
    assert_null(errs.lines);
}

/* Loads yaml, which must fail with exactly one error, starting with `prefix`. */
static void expect_error(const char *yaml, const char *prefix)
{
    struct config_errors errs = {0};
    struct config *cfg = load(yaml, &errs);
    if (errs.n != 1 || strncmp(errs.lines[0], prefix, strlen(prefix)) != 0) {
        fprintf(stderr, "expected one error starting with '%s', got:\n", prefix);
        config_errors_print(&errs, stderr);
    }
    assert_null(cfg);
    assert_int_equal(errs.n, 1);
    assert_true(strncmp(errs.lines[0], prefix, strlen(prefix)) == 0);
    config_errors_clear(&errs);
}

static struct config *load_ok(const char *yaml)
{
    struct config_errors errs = {0};
    struct config *cfg = load(yaml, &errs);
    if (!cfg)
        config_errors_print(&errs, stderr);
    assert_non_null(cfg);
    assert_int_equal(errs.n, 0);
    return cfg;
}

static void assert_pos(struct config_pos p, int line, int col)
{
    assert_int_equal(p.line, line);
    assert_int_equal(p.col, col);
}

static void assert_v4(const struct listener_cfg *l, const char *ip, uint16_t port)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&l->addr;
    struct in_addr want;
    assert_int_equal(inet_pton(AF_INET, ip, &want), 1);
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(l->addrlen, sizeof *sin);
    assert_int_equal(ntohs(sin->sin_port), port);
    assert_memory_equal(&sin->sin_addr, &want, sizeof want);
}

static void test_full_spec_example(void **state)
{
    (void)state;
    struct config *cfg = load_ok(FULL);
    assert_string_equal(cfg->path, "t.yaml");

    assert_int_equal(cfg->nlisteners, 2);
    assert_string_equal(cfg->listeners[0].address, "127.0.0.1:8080");
    assert_v4(&cfg->listeners[0], "127.0.0.1", 8080);
    assert_int_equal(cfg->listeners[0].ncerts, 0);
    assert_null(cfg->listeners[0].client_ca);
    assert_pos(cfg->listeners[0].pos, 2, 5);
    assert_string_equal(cfg->listeners[1].address, "0.0.0.0:443");
    assert_v4(&cfg->listeners[1], "0.0.0.0", 443);
    assert_int_equal(cfg->listeners[1].ncerts, 1);
    assert_string_equal(cfg->listeners[1].certs[0].cert, "/etc/latch/fullchain.pem");
    assert_string_equal(cfg->listeners[1].certs[0].key, "/etc/latch/key.pem");
    assert_null(cfg->listeners[1].client_ca);

    assert_int_equal(cfg->workers, 0);
    assert_string_equal(cfg->state_dir, "/var/lib/latch");
    assert_string_equal(cfg->store, "embedded");
    assert_string_equal(cfg->store_key_file, "/etc/latch/store.key");
    assert_string_equal(cfg->metrics_listen, "127.0.0.1:9145");
    assert_string_equal(cfg->auth_domain, "auth.example.com");
    assert_int_equal(cfg->ntrusted_proxies, 0);
    assert_int_equal(cfg->session_duration_s, 86400);
    assert_int_equal(cfg->key_rotation_s, 6 * 7 * 86400);
    assert_int_equal(cfg->key_overlap_s, 7 * 86400);
    assert_string_equal(cfg->log.requests, "stdout");
    assert_string_equal(cfg->log.auth, "stdout");
    assert_int_equal(cfg->log.format, LOG_FORMAT_JSON);

    assert_int_equal(cfg->nidps, 2);
    const struct idp *pin = &cfg->idps[0], *corp = &cfg->idps[1];
    assert_string_equal(pin->name, "email-code");
    assert_int_equal(pin->type, IDP_ONETIMEPIN);
    assert_string_equal(pin->mail, "console");
    assert_string_equal(pin->from, "access@example.com");
    assert_pos(pin->pos, 15, 5);
    assert_string_equal(corp->name, "corp");
    assert_int_equal(corp->type, IDP_OIDC);
    assert_string_equal(corp->issuer, "https://idp.example.com");
    assert_string_equal(corp->client_id, "latch");
    assert_string_equal(corp->client_secret_file, "/etc/latch/oidc-secret");
    assert_int_equal(corp->nscopes, 4);
    assert_string_equal(corp->scopes[0], "openid");
    assert_string_equal(corp->scopes[3], "groups");
    assert_string_equal(corp->groups_claim, "groups");
    assert_pos(corp->pos, 19, 5);

    assert_int_equal(cfg->nservice_tokens, 1);
    const struct service_token_cfg *st = &cfg->service_tokens[0];
    assert_string_equal(st->name, "ci-deploy");
    assert_string_equal(st->client_id, "6f1c2d3e.access");
    assert_string_equal(st->secret_sha256,
                        "9b2e4f0a1c3d5e7f9b2e4f0a1c3d5e7f9b2e4f0a1c3d5e7f9b2e4f0a1c3d5e7f");
    struct tm tm = {.tm_year = 127, .tm_mon = 10, .tm_mday = 28};
    assert_int_equal(st->expires, timegm(&tm));
    assert_int_equal(st->expires, 1827360000);
    assert_pos(st->pos, 27, 5);

    assert_int_equal(cfg->napps, 3);
    const struct app *api = &cfg->apps[0];
    assert_string_equal(api->name, "api");
    assert_pos(api->pos, 32, 5);
    assert_int_equal(api->ndomains, 1);
    assert_string_equal(api->domains[0], "api.example.com");
    assert_pos(api->domain_pos[0], 33, 15);
    assert_int_equal(api->origin.kind, ORIGIN_HTTP);
    assert_string_equal(api->origin.url, "http://10.0.0.5:8000");
    assert_string_equal(api->origin.host, "10.0.0.5");
    assert_int_equal(api->origin.port, 8000);
    assert_string_equal(api->origin.hostport, "10.0.0.5:8000");
    assert_string_equal(api->origin.base, "");
    assert_null(api->origin.ca_file);
    assert_true(api->origin.tls_verify);
    assert_true(api->origin.preserve_host);
    assert_int_equal(api->session_duration_s, 12 * 3600);
    assert_int_equal(api->nallowed_idps, 0);
    assert_null(api->aud);
    assert_int_equal(api->npolicies, 2);

    const struct policy *eng = &api->policies[0];
    assert_string_equal(eng->name, "engineers");
    assert_int_equal(eng->decision, DECISION_ALLOW);
    assert_pos(eng->pos, 37, 9);
    assert_int_equal(eng->session_duration_s, 0);
    assert_int_equal(eng->ninclude, 1);
    assert_int_equal(eng->include[0].kind, SEL_EMAIL_DOMAIN);
    assert_string_equal(eng->include[0].value, "example.com");
    assert_pos(eng->include[0].pos, 39, 19);
    assert_int_equal(eng->nrequire, 1);
    assert_int_equal(eng->require[0].kind, SEL_GROUP);
    assert_string_equal(eng->require[0].value, "engineering");
    assert_int_equal(eng->nexclude, 1);
    assert_int_equal(eng->exclude[0].kind, SEL_EMAIL);
    assert_string_equal(eng->exclude[0].value, "contractor@example.com");

    const struct policy *ci = &api->policies[1];
    assert_string_equal(ci->name, "ci");
    assert_int_equal(ci->decision, DECISION_SERVICE_AUTH);
    assert_int_equal(ci->ninclude, 1);
    assert_int_equal(ci->include[0].kind, SEL_SERVICE_TOKEN);
    assert_string_equal(ci->include[0].value, "ci-deploy");
    assert_int_equal(ci->nrequire, 0);
    assert_int_equal(ci->nexclude, 0);

    const struct app *adm = &cfg->apps[1];
    assert_string_equal(adm->name, "api-admin");
    assert_string_equal(adm->domains[0], "api.example.com/admin/*");
    assert_int_equal(adm->session_duration_s, 0);
    assert_int_equal(adm->npolicies, 1);
    assert_string_equal(adm->policies[0].name, "sre");
    assert_pos(adm->policies[0].pos, 49, 9);
    assert_int_equal(adm->policies[0].include[0].kind, SEL_GROUP);
    assert_string_equal(adm->policies[0].include[0].value, "sre");
    assert_int_equal(adm->policies[0].require[0].kind, SEL_AUTH_METHOD);
    assert_string_equal(adm->policies[0].require[0].value, "mfa");

    const struct app *health = &cfg->apps[2];
    assert_string_equal(health->domains[0], "api.example.com/health");
    assert_int_equal(health->policies[0].decision, DECISION_BYPASS);
    assert_int_equal(health->policies[0].include[0].kind, SEL_EVERYONE);
    assert_null(health->policies[0].include[0].value);

    assert_int_equal(cfg->timeouts.header_ms, 10000);
    assert_int_equal(cfg->timeouts.idle_ms, 60000);
    assert_int_equal(cfg->timeouts.client_ms, 60000);
    assert_int_equal(cfg->timeouts.origin_connect_ms, 5000);
    assert_int_equal(cfg->timeouts.origin_response_ms, 60000);
    assert_int_equal(cfg->timeouts.drain_ms, 30000);
    config_free(cfg);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* listen[].public: the scheme and port browsers use (route/served.h); itself by default. */
static void test_listener_public(void **state)
{
    (void)state;
    struct config *cfg = load_ok(
        "listen:\n"
        "  - { address: \"127.0.0.1:8080\" }\n"
        "  - { address: \"10.0.0.5:8081\", public: { scheme: https, port: 443 } }\n"
        "  - { address: \"10.0.0.5:8082\", public: { scheme: http, port: 80 } }\n"
        "  - { address: \"[::1]:8443\", tls: { cert: a.pem, key: b.pem } }\n"
        "  - { address: \"0.0.0.0:8083\" }\n"          /* behind a TLS terminator by default */
        "  - { address: \"[::1]:8084\", public: { port: 9000 } }\n");
    assert_int_equal(cfg->listeners[0].port, 8080);
    assert_false(cfg->listeners[0].public_https);
    assert_int_equal(cfg->listeners[0].public_port, 8080);
    assert_true(cfg->listeners[1].public_https);
    assert_int_equal(cfg->listeners[1].public_port, 443);
    assert_false(cfg->listeners[2].public_https);
    assert_int_equal(cfg->listeners[2].public_port, 80);
    assert_true(cfg->listeners[3].public_https);
    assert_int_equal(cfg->listeners[3].public_port, 8443);
    assert_true(cfg->listeners[4].public_https);
    assert_int_equal(cfg->listeners[4].public_port, 443);
    assert_false(cfg->listeners[5].public_https);
    assert_int_equal(cfg->listeners[5].public_port, 9000);
    config_free(cfg);
    expect_errors("listen: [{ address: \"127.0.0.1:8080\", public: { scheme: ftp } }]\n", 1,
                  "t.yaml:1:57: 'scheme' must be https or http, got 'ftp'");
    expect_errors("listen: [{ address: \"127.0.0.1:8080\", public: { port: 0 } }]\n", 1,
                  "t.yaml:1:55: 'port' must be a number from 1 to 65535");
    expect_errors("listen: [{ address: \"127.0.0.1:8080\", public: { port: [1] } }]\n", 1,
                  "t.yaml:1:55: 'port' must be a number from 1 to 65535");
    expect_errors("listen: [{ address: \"127.0.0.1:8080\", public: { host: x } }]\n", 1,
                  "t.yaml:1:49: unknown key 'host' in public; valid keys: scheme, port");
    expect_errors("listen: [{ address: \"127.0.0.1:8080\", public: https } ]\n", 1,
                  "t.yaml:1:47: public must be a mapping, got a string");
    expect_errors("listen: [{ address: \"127.0.0.1:8080\", tls: { cert: a, key: b },\n"
                  "           public: { scheme: http } }]\n", 1,
                  "t.yaml:2:30: a listener with 'tls' is reached over https, not http");
}

static void test_extras(void **state)
{
    (void)state;
    write_file("/tmp/latch-unit-store.key", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n");
    struct config *cfg = load_ok(EXTRAS);
    assert_string_equal(cfg->store_key_file, "/tmp/latch-unit-store.key"); /* read by the runtime */
    assert_int_equal(cfg->nlisteners, 2);
    const struct listener_cfg *l = &cfg->listeners[0];
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&l->addr;
    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(sin6->sin6_port), 8443);
    assert_true(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
    assert_int_equal(l->ncerts, 2);
    assert_string_equal(l->certs[0].cert, "a.pem");
    assert_string_equal(l->certs[1].key, "b-key.pem");
    assert_string_equal(l->client_ca, "ca.pem");
    assert_v4(&cfg->listeners[1], "127.0.0.1", 8080);

    assert_int_equal(cfg->workers, 8);
    assert_string_equal(cfg->state_dir, "./state");
    assert_string_equal(cfg->store, "redis://redis.internal:6379/2");
    assert_string_equal(cfg->auth_domain, "auth.localhost:8080");
    assert_null(cfg->metrics_listen);
    assert_int_equal(cfg->ntrusted_proxies, 3);
    assert_int_equal(cfg->trusted_proxies[0].prefix, 8 + 96);
    assert_int_equal(cfg->trusted_proxies[1].prefix, 8);
    assert_int_equal(cfg->trusted_proxies[2].prefix, 128);
    assert_int_equal(cfg->session_duration_s, 5400);
    assert_int_equal(cfg->key_rotation_s, 14 * 86400);
    assert_int_equal(cfg->key_overlap_s, 3 * 86400);
    assert_string_equal(cfg->log.requests, "/var/log/latch/requests.log");
    assert_string_equal(cfg->log.auth, "stderr");
    assert_int_equal(cfg->timeouts.header_ms, 5000);
    assert_int_equal(cfg->timeouts.idle_ms, 120000);
    assert_int_equal(cfg->timeouts.client_ms, 45000);
    assert_int_equal(cfg->timeouts.origin_connect_ms, 1500);
    assert_int_equal(cfg->timeouts.origin_response_ms, 90000);
    assert_int_equal(cfg->timeouts.drain_ms, 60000);

    const struct idp *corp = &cfg->idps[0];
    assert_string_equal(corp->issuer, "http://127.0.0.1:9000/realms/x");
    assert_int_equal(corp->nscopes, 3); /* default */
    assert_string_equal(corp->scopes[0], "openid");
    assert_string_equal(corp->scopes[1], "email");
    assert_string_equal(corp->scopes[2], "profile");
    assert_string_equal(corp->groups_claim, "groups");
    assert_string_equal(cfg->idps[1].mail, "smtps://mail.example.com:465");
    assert_string_equal(cfg->idps[1].from, "access@example.com");
    assert_int_equal(cfg->service_tokens[0].expires, 0);

    const struct app *x = &cfg->apps[0];
    assert_string_equal(x->domains[0], "x.localhost:8080");
    assert_string_equal(x->domains[1], "*test.example.com/Foo*/bar"); /* path keeps its case */
    assert_int_equal(x->origin.kind, ORIGIN_HTTPS);
    assert_string_equal(x->origin.host, "::1");
    assert_int_equal(x->origin.port, 8000);
    assert_string_equal(x->origin.hostport, "[::1]:8000");
    assert_string_equal(x->origin.base, "/base");
    assert_string_equal(x->origin.ca_file, "/etc/latch/origin-ca.pem");
    assert_false(x->origin.tls_verify);
    assert_false(x->origin.preserve_host);
    assert_int_equal(x->nallowed_idps, 1);
    assert_string_equal(x->allowed_idps[0], "corp");
    assert_string_equal(x->aud,
                        "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
    const struct policy *p = &x->policies[0];
    assert_int_equal(p->session_duration_s, 1800);
    assert_int_equal(p->ninclude, 3);
    assert_int_equal(p->include[0].kind, SEL_EMAIL_LIST);
    assert_int_equal(p->include[0].nlist, 2);
    assert_string_equal(p->include[0].list[0], "a@example.com");
    assert_string_equal(p->include[0].list[1], "b@example.com");
    assert_pos(p->include[0].pos, 42, 13);
    assert_int_equal(p->include[1].kind, SEL_IP);
    assert_int_equal(p->include[1].cidr.prefix, 32);
    assert_int_equal(p->include[2].kind, SEL_IDP);
    assert_string_equal(p->include[2].value, "corp");
    assert_int_equal(p->require[0].kind, SEL_CERTIFICATE);
    assert_int_equal(p->require[1].kind, SEL_COMMON_NAME);
    assert_string_equal(p->require[1].value, "laptop-7");
    assert_int_equal(x->policies[1].include[0].kind, SEL_ANY_VALID_SERVICE_TOKEN);
    assert_int_equal(x->policies[2].decision, DECISION_BLOCK);
    uint8_t ten[16] = {[10] = 0xff, [11] = 0xff, [12] = 10};
    assert_memory_equal(x->policies[2].include[0].cidr.addr, ten, 16); /* host bits cleared */

    const struct app *echo = &cfg->apps[1];
    assert_int_equal(echo->origin.kind, ORIGIN_ECHO);
    assert_string_equal(echo->origin.url, "echo");
    assert_int_equal(echo->policies[0].include[0].kind, SEL_EVERYONE);
    config_free(cfg);
}

static void test_minimal_defaults(void **state)
{
    (void)state;
    struct config *cfg = load_ok(HEAD);
    assert_int_equal(cfg->nlisteners, 1);
    assert_int_equal(cfg->napps, 0);
    assert_string_equal(cfg->state_dir, "/var/lib/latch");
    assert_string_equal(cfg->store, "embedded");
    assert_null(cfg->store_key_file);
    assert_string_equal(cfg->log.requests, "stdout");
    assert_int_equal(cfg->session_duration_s, 86400);
    assert_int_equal(cfg->timeouts.drain_ms, 30000);
    config_free(cfg);
}

static void test_unknown_keys_and_types(void **state)
{
    (void)state;
    expect_errors(HEAD "foo: 1\n", 1, "t.yaml:3:1: unknown key 'foo' in the configuration; "
                  "valid keys: listen, workers, state_dir, store, store_key_file, admin, auth_domain, "
                  "trusted_proxies, session_duration, keys, log, identity_providers, service_tokens, "
                  "apps, timeouts, store_password_file, max_connections_per_client, hsts, "
                  "subaddress_separators, branding, http2");
    expect_errors(HEAD "apps:\n  - name: a\n    domains: [a.com]\n    origin: echo\n"
                       "    foo: bar\n    policies: [{name: p, decision: bypass, "
                       "include: [{everyone: {}}]}]\n",
                  1, "t.yaml:7:5: unknown key 'foo' in app; valid keys: name, domains, origin, "
                  "origin_tls, preserve_host, session_duration, allowed_idps, aud, policies, "
                  "read_service_tokens_from_header, keep_client_headers, display_name, ssh");
    /* a likely typo is named: edit distance (core/suggest.h) */
    expect_errors(HEAD "apps:\n  - name: a\n    domains: [a.com]\n    origin: echo\n"
                       "    polices: []\n", 2, "t.yaml:4:5: missing required key 'policies' in app",
                  "t.yaml:7:5: unknown key 'polices' in app (did you mean 'policies'?); valid keys: "
                  "name, domains, origin, origin_tls, preserve_host, session_duration, allowed_idps, "
                  "aud, policies, read_service_tokens_from_header, keep_client_headers, display_name, ssh");
    expect_errors(HEAD "apps:\n  - name: a\n    domains: [a.com]\n    origin: echo\n"
                       "    policies: [{name: p, decision: bypas, include: [{everyone: {}}]}]\n", 1,
                  "t.yaml:7:36: 'decision' must be allow, block, bypass or service_auth, not "
                  "'bypas' (did you mean 'bypass'?)");
    expect_errors(HEAD "workers: [1]\n", 1,
                  "t.yaml:3:10: 'workers' must be auto or a number from 1 to 256");
    expect_errors(HEAD "workers: 257\n", 1,
                  "t.yaml:3:10: 'workers' must be auto or a number from 1 to 256");
    expect_errors(HEAD "state_dir: {a: 1}\n", 1,
                  "t.yaml:3:12: 'state_dir' must be a string, got a mapping");
    expect_errors(HEAD "trusted_proxies: 10.0.0.0/8\n", 1,
                  "t.yaml:3:18: 'trusted_proxies' must be a list of CIDRs, got a string");
    expect_errors(HEAD "log: [stdout]\n", 1, "t.yaml:3:6: log must be a mapping, got a list");
    expect_errors(HEAD "session_duration:\n", 1,
                  "t.yaml:3:18: 'session_duration' must be a string, got null");
    expect_errors(HEAD "log: { format: text }\n", 1, "t.yaml:3:16: 'format' must be json");
    expect_errors(HEAD "timeouts: { header: 10s, header: 5s }\n", 1,
                  "t.yaml:3:26: duplicate key 'header' in timeouts");
    expect_errors("- 1\n", 1, "t.yaml:1:1: the configuration must be a mapping, got a list");
    expect_errors("workers: auto\n", 1,
                  "t.yaml:1:1: missing required key 'listen' in the configuration");
}

static void test_yaml_syntax_errors(void **state)
{
    (void)state;
    expect_error(HEAD "apps: [\n  - a\n", "t.yaml:4:3: YAML: ");
    expect_error(HEAD "workers: auto\n\tstate_dir: x\n", "t.yaml:4:1: YAML: ");
    expect_errors(HEAD "state_dir: \"x\n", 1,
                  "t.yaml:4:1: YAML: found unexpected end of stream (while scanning a quoted "
                  "scalar at line 3, column 12)");
    expect_errors("", 1, "t.yaml:1:1: the configuration is empty");
    expect_errors(HEAD "---\nworkers: 2\n", 1,
                  "t.yaml:3:1: only one YAML document is allowed in the configuration");
    expect_errors(HEAD "workers: &w [*w]\n", 1, "t.yaml:3:14: unknown or recursive alias '*w'");
    expect_error(HEAD "state_dir: \"\xff\"\n", "t.yaml:3:13: YAML: ");
    /* Aliases are fine as long as they stay small. */
    struct config *cfg = load_ok(HEAD "apps:\n"
                                      "  - { name: a, domains: [a.com], origin: echo, policies: "
                                      "[&p {name: p, decision: bypass, include: [{everyone: {}}]}] }\n"
                                      "  - { name: b, domains: [b.com], origin: echo, policies: [*p] }\n");
    assert_int_equal(cfg->napps, 2);
    assert_string_equal(cfg->apps[1].policies[0].name, "p");
    assert_int_equal(cfg->apps[1].policies[0].include[0].kind, SEL_EVERYONE);
    config_free(cfg);
}

static void test_alias_bomb(void **state)
{
    (void)state;
    char yaml[2048] = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
    for (int i = 1; i <= 8; i++) {
        char line[160];
        snprintf(line, sizeof line, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, "
                 "*a%d, *a%d]\n", i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1,
                 i - 1, i - 1);
        strcat(yaml, line);
    }
    expect_error(yaml, "t.yaml:6:5: configuration too large");
}

static void test_duplicates(void **state)
{
    (void)state;
    expect_errors(HEAD "apps:\n"
                       "  - { name: a, domains: [a.com], origin: echo, policies: [{name: p, "
                       "decision: bypass, include: [{everyone: {}}]}] }\n"
                       "  - { name: a, domains: [b.com], origin: echo, policies: [{name: p, "
                       "decision: bypass, include: [{everyone: {}}]}, {name: p, decision: block, "
                       "include: [{everyone: {}}]}] }\n",
                  2, "t.yaml:5:13: duplicate app name 'a'",
                  "t.yaml:5:122: duplicate policy name 'p' in app 'a'");
    expect_errors(HEAD "identity_providers:\n"
                       "  - { name: pin, type: onetimepin, mail: console }\n"
                       "  - { name: pin, type: onetimepin, mail: console }\n"
                       "service_tokens:\n"
                       "  - { name: t, client_id: c1, secret_sha256: " "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa }\n"
                       "  - { name: t, client_id: c1, secret_sha256: " "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa }\n",
                  3, "t.yaml:5:13: duplicate identity provider name 'pin'",
                  "t.yaml:8:13: duplicate service token name 't'",
                  "t.yaml:8:27: client_id 'c1' is already used by service token 't'");
    expect_errors(HEAD "apps:\n"
                       "  - { name: a, domains: [a.com, A.com], origin: echo, policies: [{name: p, "
                       "decision: bypass, include: [{everyone: {}}]}] }\n"
                       "  - { name: b, domains: [a.com], origin: echo, policies: [{name: p, "
                       "decision: bypass, include: [{everyone: {}}]}] }\n",
                  2, "t.yaml:4:33: duplicate domain pattern 'a.com' in app",
                  "t.yaml:5:26: domain pattern 'a.com' is already used by app 'a'");
}

/* One app with one policy whose include is SEL; errors point into line 4. */
#define APP_WITH(SEL)                                                                          \
    HEAD "apps:\n  - { name: a, domains: [a.com], origin: echo, policies: [{ name: p, "        \
         "decision: allow, include: [" SEL "] }] }\n"

static void test_selectors(void **state)
{
    (void)state;
    /* col 97 is where SEL starts */
    expect_errors(APP_WITH("{ email: a@evil.com@corp.com }"), 1,
                  "t.yaml:4:106: invalid e-mail address 'a@evil.com@corp.com' in 'email': an "
                  "e-mail address has exactly one '@'");
    expect_errors(APP_WITH("{ email: \"a b@c.com\" }"), 1,
                  "t.yaml:4:106: invalid e-mail address 'a b@c.com' in 'email': an e-mail "
                  "address contains no spaces or control characters");
    expect_errors(APP_WITH("{ email: \"@c.com\" }"), 1,
                  "t.yaml:4:106: invalid e-mail address '@c.com' in 'email': the e-mail address "
                  "has an empty local part");
    expect_errors(APP_WITH("{ email: \"a@\" }"), 1,
                  "t.yaml:4:106: invalid e-mail address 'a@' in 'email': the e-mail address has "
                  "an empty domain");
    expect_errors(APP_WITH("{ email_domain: \"@corp.com\" }"), 1,
                  "t.yaml:4:113: 'email_domain' is a domain without '@' (e.g. example.com)");
    expect_errors(APP_WITH("{ email_list: [ok@x.com, bad] }"), 1,
                  "t.yaml:4:122: invalid e-mail address 'bad' in 'email_list': an e-mail "
                  "address needs an '@'");
    expect_errors(APP_WITH("{ ip: 10.0.0.0/33 }"), 1,
                  "t.yaml:4:103: invalid CIDR '10.0.0.0/33' in 'ip' (e.g. 10.0.0.0/8, "
                  "192.168.1.7 or fd00::/8)");
    expect_errors(APP_WITH("{ idp: nobody }"), 1,
                  "t.yaml:4:104: 'idp' names no identity provider: 'nobody'");
    expect_errors(APP_WITH("{ service_token: ghost }"), 1,
                  "t.yaml:4:114: 'service_token' names no service token: 'ghost'");
    expect_errors(APP_WITH("{ email: a@b.com, group: x }"), 1,
                  "t.yaml:4:97: a selector must be a mapping with exactly one key, e.g. { email: "
                  "someone@example.com }");
    expect_errors(APP_WITH("everyone"), 1,
                  "t.yaml:4:97: a selector must be a mapping with exactly one key, e.g. { email: "
                  "someone@example.com }");
    expect_errors(APP_WITH("{ everybody: {} }"), 1, "t.yaml:4:99: unknown selector 'everybody' in a policy (did you mean "
                  "'everyone'?); valid selectors: everyone, email, email_domain, email_list, ip, "
                  "group, idp, auth_method, service_token, any_valid_service_token, certificate, "
                  "common_name");
    expect_errors(APP_WITH("{ everyone: true }"), 1,
                  "t.yaml:4:109: 'everyone' takes no value: write everyone: {}");
    expect_errors(APP_WITH("{ group: [a] }"), 1,
                  "t.yaml:4:106: 'group' must be a string, got a list");
    expect_errors(APP_WITH(""), 1,
                  "t.yaml:4:96: 'include' must list at least one selector (use { everyone: {} } "
                  "for everybody)");
}

static void test_apps_and_policies(void **state)
{
    (void)state;
    expect_errors(HEAD "apps:\n  - name: a\n", 3, "t.yaml:4:5: missing required key 'domains' in app",
                  "t.yaml:4:5: missing required key 'origin' in app",
                  "t.yaml:4:5: missing required key 'policies' in app");
#define APP(X)                                                                                 \
    HEAD "apps:\n  - name: a\n    domains: [a.com]\n    origin: http://o:81\n    policies: "   \
         "[{name: p, decision: bypass, include: [{everyone: {}}]}]\n" X
    expect_errors(APP("    aud: abc\n"), 1, "t.yaml:8:10: 'aud' must be 64 hexadecimal characters");
    expect_errors(APP("    allowed_idps: [corp]\n"), 1,
                  "t.yaml:8:20: 'allowed_idps' names no identity provider: 'corp'");
    expect_errors(APP("    origin_tls: { verify: false }\n"), 1,
                  "t.yaml:8:17: 'origin_tls' needs an https:// or h2:// origin");
    expect_errors(APP("    preserve_host: yes\n"), 1,
                  "t.yaml:8:20: 'preserve_host' must be true or false");
    expect_errors(APP("    session_duration: 1.5h\n"), 1,
                  "t.yaml:8:23: 'session_duration' must be a duration such as 90s, 24h or 1h30m "
                  "(units ms s m h d w)");
    expect_errors(HEAD "apps:\n  - { name: a, domains: [a.com], origin: \"ftp://o\", policies: "
                       "[{name: p, decision: deny, include: [{everyone: {}}]}] }\n",
                  2, "t.yaml:4:42: invalid 'origin' 'ftp://o': scheme must be http://, https://, h2c://, h2:// or "
                     "tcp:// (expected http(s)://HOST[:PORT][/BASE], h2c:// or h2://HOST[:PORT][/BASE], "
                     "tcp://HOST:PORT or echo)",
                  "t.yaml:4:84: 'decision' must be allow, block, bypass or service_auth, not "
                  "'deny'");
    /* tcp:// origins: a port, nothing after it, no HTTP settings */
    expect_errors(HEAD "apps:\n  - { name: a, domains: [a.com], origin: \"tcp://o\", policies: "
                       "[{name: p, decision: bypass, include: [{everyone: {}}]}] }\n",
                  1, "t.yaml:4:42: invalid 'origin' 'tcp://o': a tcp:// origin needs a port "
                     "(expected http(s)://HOST[:PORT][/BASE], h2c:// or h2://HOST[:PORT][/BASE], "
                     "tcp://HOST:PORT or echo)");
    expect_errors(HEAD "apps:\n  - { name: a, domains: [a.com], origin: \"tcp://o:22/x\", policies: "
                       "[{name: p, decision: bypass, include: [{everyone: {}}]}] }\n",
                  1, "t.yaml:4:42: invalid 'origin' 'tcp://o:22/x': a tcp:// origin has no path "
                     "(expected http(s)://HOST[:PORT][/BASE], h2c:// or h2://HOST[:PORT][/BASE], "
                     "tcp://HOST:PORT or echo)");
    expect_errors(HEAD "apps:\n  - { name: a, domains: [a.com], origin: \"tcp://o:22\", preserve_host: true, "
                       "policies: [{name: p, decision: bypass, include: [{everyone: {}}]}] }\n",
                  1, "t.yaml:4:71: 'preserve_host' needs an http:// or https:// origin");
    /* An allow policy without an auth domain: nobody could log in. */
    expect_errors("listen: [{ address: \"127.0.0.1:8080\" }]\napps:\n  - name: a\n"
                  "    domains: [a.com]\n    origin: echo\n    policies:\n"
                  "      - { name: p, decision: allow, include: [{everyone: {}}] }\n",
                  1, "t.yaml:7:9: 'auth_domain' is required: policy 'p' of app 'a' allows "
                     "people, who log in there");
}

static void test_top_level_values(void **state)
{
    (void)state;
    expect_errors("listen:\n  - address: 127.0.0.1\n  - { address: \"::1:80\" }\n"
                  "  - { address: \"10.0.0.1:99999\", tls: { cert: c } }\n",
                  4, "t.yaml:2:14: invalid listen address '127.0.0.1': missing ':port' (expected "
                     "host:port or [IPv6]:port)",
                  "t.yaml:3:16: invalid listen address '::1:80': IPv6 addresses need brackets, "
                  "e.g. [::1]:8080",
                  "t.yaml:4:16: invalid listen address '10.0.0.1:99999': port must be a number "
                  "from 1 to 65535",
                  "t.yaml:4:39: missing required key 'key' in tls");
    expect_error("listen: [{ address: \"1.2.3.4:80\", tls: { cert: c } }]\n",
                 "t.yaml:1:40: missing required key 'key' in tls");
    expect_errors(HEAD "store: redis://r:6379/0\n", 1,
                  "t.yaml:3:8: 'store_key_file' is required with a redis store");
    expect_errors(HEAD "store: memcached\n", 1,
                  "t.yaml:3:8: 'store' must be embedded or redis://HOST:PORT[/DB]: must be a URL "
                  "such as https://host:port");
    expect_errors(HEAD "trusted_proxies: [10.0.0.0/8, 300.1.1.1]\n", 1,
                  "t.yaml:3:31: invalid CIDR '300.1.1.1' in 'trusted_proxies' (e.g. 10.0.0.0/8 "
                  "or fd00::/8)");
    expect_errors("listen: [{ address: \"1.2.3.4:80\" }]\nauth_domain: https://auth.x.com\n", 1,
                  "t.yaml:2:14: invalid 'auth_domain' 'https://auth.x.com': must be host[:port], "
                  "not a URL");
    expect_errors(HEAD "identity_providers:\n  - { name: c, type: oidc, issuer: "
                       "\"http://idp.example.com\", client_id: x, client_secret_file: f, scopes: "
                       "[email] }\n",
                  2, "t.yaml:4:36: invalid 'issuer' 'http://idp.example.com': http:// is only "
                     "allowed for localhost or 127.0.0.1; use https://",
                  "t.yaml:4:107: 'scopes' must include openid");
    expect_errors(HEAD "identity_providers:\n  - { name: c, type: saml }\n"
                       "  - { name: d, type: onetimepin, mail: console, issuer: x }\n",
                  2, "t.yaml:4:22: 'type' must be onetimepin or oidc, not 'saml'",
                  "t.yaml:5:49: unknown key 'issuer' in onetimepin identity provider; "
                  "valid keys: name, type, mail, from");
    expect_errors(HEAD "service_tokens:\n  - { name: t, client_id: c, secret_sha256: "
                       "00000000000000000000000000000000000000000000000000000000000000zz, "
                       "expires: 2027-02-30T00:00:00Z }\n",
                  2, "t.yaml:4:45: 'secret_sha256' must be 64 hexadecimal characters (the "
                     "SHA-256 of the secret)",
                  "t.yaml:4:120: 'expires' no such day in that month");
    expect_error(HEAD "service_tokens:\n  - { name: t, client_id: c, secret_sha256: "
                      "0000000000000000000000000000000000000000000000000000000000000000, "
                      "expires: \"2027-11-28 00:00:00\" }\n",
                 "t.yaml:4:120: 'expires' must be an RFC 3339 UTC time");
    expect_errors(HEAD "timeouts: { header: 0s, drain: 1ms }\nkeys: { rotation: 1500ms }\n", 2,
                  "t.yaml:3:21: 'header' must be longer than 0",
                  "t.yaml:4:19: 'rotation' must be a whole number of seconds");
}

static void test_errors_collected_and_sorted(void **state)
{
    (void)state;
    struct config_errors errs = {0};
    /* apps are walked after identity_providers, but errors come out in file order. */
    struct config *cfg = load("apps: 1\nlisten: 2\nworkers: x\nidentity_providers: 3\nfoo: 4\n",
                              &errs);
    assert_null(cfg);
    assert_int_equal(errs.n, 5);
    assert_string_equal(errs.lines[0], "t.yaml:1:7: 'apps' must be a list of apps, got a string");
    assert_true(strncmp(errs.lines[1], "t.yaml:2:9: ", 12) == 0);
    assert_true(strncmp(errs.lines[2], "t.yaml:3:10: ", 13) == 0);
    assert_true(strncmp(errs.lines[3], "t.yaml:4:21: ", 13) == 0);
    assert_string_equal(errs.lines[4], "t.yaml:5:1: unknown key 'foo' in the configuration; "
                        "valid keys: listen, workers, state_dir, store, store_key_file, admin, auth_domain, "
                  "trusted_proxies, session_duration, keys, log, identity_providers, service_tokens, "
                  "apps, timeouts, store_password_file, max_connections_per_client, hsts, "
                  "subaddress_separators, branding, http2");

    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    config_errors_print(&errs, f);
    fclose(f);
    assert_true(strncmp(out, "t.yaml:1:7: 'apps'", 18) == 0);
    assert_int_equal(strlen(out), outlen);
    free(out);
    config_errors_clear(&errs);
    assert_int_equal(errs.n, 0);
}

/* Errors added after loading (runtime.h's file checks) read like the loader's, and sort into the
 * file's order with them. */
static void test_errors_added_and_sorted(void **state)
{
    (void)state;
    struct config_errors errs = {0};
    config_errors_add(&errs, "t.yaml", (struct config_pos){12, 3}, "'%s': late", "key");
    config_errors_add(&errs, "t.yaml", (struct config_pos){0, 0}, "no position");
    config_errors_add(&errs, NULL, (struct config_pos){0, 0}, "t.yaml:2:9: %s", "a whole line");
    config_errors_add(&errs, "t.yaml", (struct config_pos){2, 1}, "early");
    config_errors_add(&errs, "t.yaml", (struct config_pos){12, 3}, "same place, later");
    config_errors_add(&errs, "other.yaml", (struct config_pos){1, 1}, "another file");
    assert_int_equal(errs.n, 6);
    assert_string_equal(errs.lines[1], "t.yaml: no position");
    config_errors_sort(&errs, 0, "t.yaml");
    const char *want[] = {"t.yaml:2:1: early", "t.yaml:2:9: a whole line", "t.yaml:12:3: 'key': late",
                          "t.yaml:12:3: same place, later", "t.yaml: no position",
                          "other.yaml:1:1: another file"};
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(errs.lines[i], want[i]);
    /* from: the lines before it stay where they are */
    config_errors_add(&errs, "t.yaml", (struct config_pos){1, 1}, "first of the file");
    config_errors_sort(&errs, 6, "t.yaml");
    assert_string_equal(errs.lines[0], "t.yaml:2:1: early");
    assert_string_equal(errs.lines[6], "t.yaml:1:1: first of the file");
    config_errors_clear(&errs);
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/test_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, FULL, strlen(FULL)), (ssize_t)strlen(FULL));
    close(fd);
    struct config_errors errs = {0};
    struct config *cfg = config_load(path, &errs);
    assert_non_null(cfg);
    assert_string_equal(cfg->path, path);
    assert_int_equal(cfg->napps, 3);
    config_free(cfg);

    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "workers: 0\n", 11), 11);
    close(fd);
    cfg = config_load(path, &errs);
    assert_null(cfg);
    assert_int_equal(errs.n, 2);
    char want[128];
    snprintf(want, sizeof want, "%s:1:1: missing required key 'listen' in the configuration",
             path);
    assert_string_equal(errs.lines[0], want);
    config_errors_clear(&errs);
    unlink(path);

    cfg = config_load("/nonexistent/latch.yaml", &errs);
    assert_null(cfg);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.lines[0],
                        "/nonexistent/latch.yaml:1:1: cannot open: No such file or directory");
    config_errors_clear(&errs);
    config_free(NULL);
}

static void test_durations(void **state)
{
    (void)state;
    assert_int_equal(config_parse_duration_ms("500ms"), 500);
    assert_int_equal(config_parse_duration_ms("90s"), 90000);
    assert_int_equal(config_parse_duration_ms("10m"), 600000);
    assert_int_equal(config_parse_duration_ms("24h"), 86400000);
    assert_int_equal(config_parse_duration_ms("7d"), 604800000);
    assert_int_equal(config_parse_duration_ms("6w"), 3628800000LL);
    assert_int_equal(config_parse_duration_ms("1h30m"), 5400000);
    assert_int_equal(config_parse_duration_ms("1m1ms"), 60001);
    assert_int_equal(config_parse_duration_ms("0s"), 0);
    assert_int_equal(config_parse_duration_ms("2d12h"), 216000000);
    assert_int_equal(config_parse_duration_ms(""), -1);
    assert_int_equal(config_parse_duration_ms(NULL), -1);
    assert_int_equal(config_parse_duration_ms("10"), -1);
    assert_int_equal(config_parse_duration_ms("-5s"), -1);
    assert_int_equal(config_parse_duration_ms("+5s"), -1);
    assert_int_equal(config_parse_duration_ms("1.5h"), -1);
    assert_int_equal(config_parse_duration_ms("5 s"), -1);
    assert_int_equal(config_parse_duration_ms("5sec"), -1);
    assert_int_equal(config_parse_duration_ms("h"), -1);
    assert_int_equal(config_parse_duration_ms("5y"), -1);
    assert_int_equal(config_parse_duration_ms("9223372036854775807ms"), INT64_MAX);
    assert_int_equal(config_parse_duration_ms("9223372036854775808ms"), -1);
    assert_int_equal(config_parse_duration_ms("9223372036854775807s"), -1);
    assert_int_equal(config_parse_duration_ms("9223372036854775807ms1ms"), -1);
}

static void assert_cidr(const char *s, const char *addr6, int prefix)
{
    struct cidr c;
    uint8_t want[16];
    assert_int_equal(config_parse_cidr(s, &c), 0);
    assert_int_equal(inet_pton(AF_INET6, addr6, want), 1);
    assert_memory_equal(c.addr, want, 16);
    assert_int_equal(c.prefix, prefix);
}

static void test_cidr_parse(void **state)
{
    (void)state;
    assert_cidr("10.0.0.0/8", "::ffff:10.0.0.0", 104);
    assert_cidr("192.168.1.7", "::ffff:192.168.1.7", 128);
    assert_cidr("10.1.2.3/8", "::ffff:10.0.0.0", 104); /* host bits cleared */
    assert_cidr("0.0.0.0/0", "::ffff:0.0.0.0", 96);
    assert_cidr("::1/128", "::1", 128);
    assert_cidr("::1", "::1", 128);
    assert_cidr("2001:db8::/32", "2001:db8::", 32);
    assert_cidr("2001:db8:ffff::1/33", "2001:db8:8000::", 33);
    assert_cidr("::/0", "::", 0);
    struct cidr c;
    const char *bad[] = {"", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0/8", "010.0.0.1",
                         "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/8/8", "host.example.com",
                         "1.2.3.4 ", "::1/0128", "[::1]/128", "fe80::1%eth0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (config_parse_cidr(bad[i], &c) == 0)
            fprintf(stderr, "accepted bad CIDR '%s'\n", bad[i]);
        assert_int_equal(config_parse_cidr(bad[i], &c), -1);
    }
    assert_int_equal(config_parse_cidr(NULL, &c), -1);
}

static bool contains(const char *cidr, const char *ip)
{
    struct cidr c;
    uint8_t a[16] = {0};
    assert_int_equal(config_parse_cidr(cidr, &c), 0);
    if (strchr(ip, ':')) {
        assert_int_equal(inet_pton(AF_INET6, ip, a), 1);
    } else {
        a[10] = a[11] = 0xff;
        assert_int_equal(inet_pton(AF_INET, ip, a + 12), 1);
    }
    return cidr_contains(&c, a);
}

static void test_cidr_contains(void **state)
{
    (void)state;
    assert_true(contains("10.0.0.0/8", "10.255.1.2"));
    assert_false(contains("10.0.0.0/8", "11.0.0.0"));
    assert_false(contains("10.0.0.0/8", "9.255.255.255"));
    assert_true(contains("192.168.0.0/23", "192.168.1.255"));
    assert_false(contains("192.168.0.0/23", "192.168.2.0"));
    assert_true(contains("192.168.1.7", "192.168.1.7"));
    assert_false(contains("192.168.1.7", "192.168.1.6"));
    assert_true(contains("0.0.0.0/0", "203.0.113.9"));
    assert_false(contains("0.0.0.0/0", "2001:db8::1")); /* v4 blocks never hold v6 peers */
    assert_true(contains("::ffff:0:0/96", "1.2.3.4"));
    assert_true(contains("2001:db8::/32", "2001:db8:1234::1"));
    assert_false(contains("2001:db8::/32", "2001:db9::1"));
    assert_true(contains("fd00::/8", "fdff::1"));
    assert_false(contains("fd00::/8", "fc00::1"));
    assert_true(contains("::1/128", "::1"));
    assert_false(contains("::1/128", "::2"));
    assert_true(contains("2001:db8::/121", "2001:db8::7f"));
    assert_false(contains("2001:db8::/121", "2001:db8::80"));
    assert_true(contains("::/0", "10.0.0.1"));
    assert_false(contains("::/1", "8000::"));
}

/* A temporary logo file holding n bytes of data; its path in path[32]. */
static void logo_file(char path[32], const void *data, size_t n)
{
    snprintf(path, 32, "/tmp/test_logo_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    close(fd);
}

/* An app's ssh: and a service token's: defaults, mappings, and refusals at their place. */
static void test_ssh_keys(void **state)
{
    (void)state;
#define SSH_APP(ssh) "apps:\n  - { name: s, domains: [s.com], origin: echo, " ssh \
                     ", policies: [{name: p, decision: allow, include: [{everyone: {}}]}] }\n"
    struct config *cfg = load_ok(HEAD SSH_APP("ssh: { principals: [\"{email_local}\", ops] }"));
    const struct app_ssh *s = cfg->apps[0].ssh;
    assert_non_null(s);
    assert_int_equal(s->nprincipals, 2);
    assert_string_equal(s->principals[0], "{email_local}");
    assert_int_equal(s->cert_duration_s, 300);
    assert_true(s->permit_pty && s->permit_port_forwarding);
    config_free(cfg);
    cfg = load_ok(HEAD SSH_APP("ssh: { cert_duration: 1h, permit_pty: false, principals_by_group: "
                               "{ sre: [root] }, principals_by_email: { Bob@X.com: [\"u-{email_local}\"] } }"));
    s = cfg->apps[0].ssh;
    assert_int_equal(s->cert_duration_s, 3600);
    assert_false(s->permit_pty);
    assert_true(s->permit_port_forwarding);
    assert_int_equal(s->nby_group, 1);
    assert_string_equal(s->by_group[0].key, "sre");
    assert_string_equal(s->by_group[0].principals[0], "root");
    assert_string_equal(s->by_email[0].key, "bob@x.com");
    config_free(cfg);
    cfg = load_ok(HEAD "service_tokens: [{ name: t, client_id: t.access, secret_sha256: "
                       "\"0000000000000000000000000000000000000000000000000000000000000000\", "
                       "ssh: { principals: [deploy, \"svc-{service_token}\"] } }]\n");
    assert_int_equal(cfg->service_tokens[0].nssh_principals, 2);
    config_free(cfg);
    expect_error(HEAD SSH_APP("ssh: { cert_duration: 61m }"), "t.yaml:4:70: 'cert_duration' must be at most 1h");
    expect_error(HEAD SSH_APP("ssh: { principals: [\"{user}\"] }"),
                 "t.yaml:4:68: 'principals': '{user}' names an unknown template");
    expect_error(HEAD SSH_APP("ssh: { principals: [\"a,b\"] }"), "t.yaml:4:68: 'principals': 'a,b' is not a safe");
    expect_error(HEAD SSH_APP("ssh: { principals: [\"-x{email}\"] }"),
                 "t.yaml:4:68: 'principals': '-x{email}' is not a safe");
#undef SSH_APP
}

static void test_pages_keys(void **state)
{
    (void)state;
    /* display_name, else the first domain as a person reads it */
    struct config *cfg = load_ok(HEAD "apps:\n"
        "  - { name: w, display_name: Team wiki, domains: [w.com], origin: echo, policies: [{name: p, decision: bypass, include: [{everyone: {}}]}] }\n"
        "  - { name: f, domains: [\"f.com/private/*\", g.com], origin: echo, policies: [{name: p, decision: bypass, include: [{everyone: {}}]}] }\n"
        "  - { name: h, domains: [\"*.h.com:8080\"], origin: echo, policies: [{name: p, decision: bypass, include: [{everyone: {}}]}] }\n");
    assert_string_equal(cfg->apps[0].display_name, "Team wiki");
    assert_string_equal(cfg->apps[1].display_name, "f.com/private");
    assert_string_equal(cfg->apps[2].display_name, "*.h.com:8080");
    assert_null(cfg->branding.name);
    assert_string_equal(cfg->branding.accent, "");
    assert_null(cfg->branding.logo);
    config_free(cfg);
    /* the accent, widened and lowercased; anything else refused at its place */
    cfg = load_ok(HEAD "branding: { name: Acme, accent: \"#0A7\" }\n");
    assert_string_equal(cfg->branding.name, "Acme");
    assert_string_equal(cfg->branding.accent, "#00aa77");
    config_free(cfg);
    static const char *const bad[] = { "\"0a7\"", "\"#0a\"", "\"#0a7g\"", "\"#00aa77ff\"", "red",
                                       "\"#0a7 \"", "\"#0a7;}*{color:red\"" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char yaml[256];
        snprintf(yaml, sizeof yaml, HEAD "branding: { accent: %s }\n", bad[i]);
        struct config_errors errs = {0};
        assert_null(load(yaml, &errs));
        assert_int_equal(errs.n, 1);
        assert_non_null(strstr(errs.lines[0], "t.yaml:3:21: 'branding.accent' must be a colour"));
        config_errors_clear(&errs);
    }
    expect_errors(HEAD "branding: { accent: }\n", 1,
                  "t.yaml:3:21: 'branding.accent' is empty: write the colour in quotes, accent: \"#0a7\" "
                  "(YAML reads an unquoted # as the start of a comment)");
    expect_errors(HEAD "branding: { colour: \"#0a7\" }\n", 1, "t.yaml:3:13: unknown key 'colour' in branding; valid keys: name, accent, logo");
    /* logos by their content: SVG after a BOM, the XML declaration, comments and a doctype;
     * PNG; JPEG. Inlined as a data: URI of their base64. */
    static const struct { const char *data; size_t n; const char *uri; } good[] = { /* n 0: strlen */
        { "<svg>", 5, "data:image/svg+xml;base64,PHN2Zz4=" },
        { "\xef\xbb\xbf <?xml version=\"1.0\"?>\n<!-- a -- b -->\n<!DOCTYPE svg>\n<svg\n/>", 0, NULL },
        { "\x89PNG\r\n\x1a\n\0\0", 10, "data:image/png;base64,iVBORw0KGgoAAA==" },
        { "\xff\xd8\xff\xe0", 4, "data:image/jpeg;base64,/9j/4A==" },
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        char path[32], yaml[256];
        logo_file(path, good[i].data, good[i].n ? good[i].n : strlen(good[i].data));
        snprintf(yaml, sizeof yaml, HEAD "branding: { logo: %s }\n", path);
        cfg = load_ok(yaml);
        if (good[i].uri)
            assert_string_equal(cfg->branding.logo, good[i].uri);
        else
            assert_memory_equal(cfg->branding.logo, "data:image/svg+xml;base64,", 26);
        config_free(cfg);
        unlink(path);
    }
    /* not an image: GIF, HTML, an "svg" that is another element, a comment never closed */
    static const char *const junk[] = { "GIF89a....", "<html><svg></svg></html>", "<svgfoo/>",
                                        "<!-- <svg>", "<?xml?>" };
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++) {
        char path[32], yaml[256], want[128];
        logo_file(path, junk[i], strlen(junk[i]));
        snprintf(yaml, sizeof yaml, HEAD "branding: { logo: %s }\n", path);
        snprintf(want, sizeof want, "t.yaml:3:19: 'branding.logo': %s is not a PNG, JPEG or SVG image", path);
        expect_errors(yaml, 1, want);
        unlink(path);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_spec_example),
        cmocka_unit_test(test_extras),
        cmocka_unit_test(test_listener_public),
        cmocka_unit_test(test_minimal_defaults),
        cmocka_unit_test(test_unknown_keys_and_types),
        cmocka_unit_test(test_yaml_syntax_errors),
        cmocka_unit_test(test_alias_bomb),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_selectors),
        cmocka_unit_test(test_apps_and_policies),
        cmocka_unit_test(test_top_level_values),
        cmocka_unit_test(test_errors_collected_and_sorted),
        cmocka_unit_test(test_errors_added_and_sorted),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_cidr_parse),
        cmocka_unit_test(test_cidr_contains),
        cmocka_unit_test(test_pages_keys),
        cmocka_unit_test(test_ssh_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
