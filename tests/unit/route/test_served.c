/* Unit tests of the origins the gateway serves (src/route/served.c): a link's host[:port] is
 * one only on a listener's public scheme and port; a request's origin is its listener's. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "config/config.h"
#include "route/served.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char CONFIG[] =
    "listen:\n"
    "  - { address: \"127.0.0.1:8080\" }\n"
    "  - { address: \"127.0.0.1:8081\", public: { scheme: https, port: 443 } }\n"
    "  - { address: \"127.0.0.1:8082\", public: { port: 80 } }\n";

static struct config *cfg;

static int setup(void **state)
{
    struct config_errors errs = { 0 };
    cfg = config_load_buffer("t.yaml", CONFIG, strlen(CONFIG), &errs);
    if (!cfg)
        config_errors_print(&errs, stderr);
    return cfg ? 0 : -1;
}

static int teardown(void **state)
{
    config_free(cfg);
    return 0;
}

static const char *url_of(int https, const char *host)
{
    static char out[SERVED_HOST_MAX + 14];
    struct served_origin o;
    if (served_lookup(cfg, https, host, strlen(host), &o) != 0)
        return "-";
    served_url(&o, out);
    return out;
}

static void test_lookup(void **state)
{
    assert_string_equal(url_of(-1, "app.localhost:8080"), "http://app.localhost:8080");
    assert_string_equal(url_of(0, "app.localhost:8080"), "http://app.localhost:8080");
    assert_string_equal(url_of(1, "app.localhost:8080"), "-");      /* 8080 is plain */
    assert_string_equal(url_of(-1, "app.example.com"), "https://app.example.com"); /* 443 first */
    assert_string_equal(url_of(0, "app.example.com"), "http://app.example.com");
    assert_string_equal(url_of(1, "app.example.com:443"), "https://app.example.com");
    assert_string_equal(url_of(-1, "app.example.com:8081"), "-");   /* a listener's own port, not public */
    assert_string_equal(url_of(-1, "app.example.com:9999"), "-");
    assert_string_equal(url_of(-1, "[::1]:8080"), "http://[::1]:8080");
    assert_string_equal(url_of(-1, "app:0"), "-");
    assert_string_equal(url_of(-1, "app:65536"), "-");
    assert_string_equal(url_of(-1, "app:"), "-");
    assert_string_equal(url_of(-1, ":8080"), "-");
    assert_string_equal(url_of(-1, "[::1"), "-");
    assert_string_equal(url_of(-1, "[::1]x"), "-");
}

static void test_of_request(void **state)
{
    struct served_origin o, p;
    char hp[SERVED_HOST_MAX + 6];
    /* the Host's port is the client's claim: the listener decides */
    assert_int_equal(served_of_request(&cfg->listeners[0], "app.localhost:9999", 18, &o), 0);
    served_hostport(&o, hp);
    assert_string_equal(hp, "app.localhost:8080");
    assert_int_equal(served_of_request(&cfg->listeners[1], "app.example.com", 15, &p), 0);
    served_hostport(&p, hp);
    assert_string_equal(hp, "app.example.com");
    assert_true(p.https && p.port == 443);
    assert_false(served_same(&o, &p));
    assert_true(served_is(&p, "https://app.example.com"));
    assert_true(served_is(&p, "https://APP.example.com:443/path?x"));
    assert_false(served_is(&p, "http://app.example.com"));
    assert_false(served_is(&p, "https://app.example.com:8443"));
    assert_false(served_is(&p, "https://user@app.example.com"));
    assert_false(served_is(&p, "https://app.example.com.evil.example"));
    assert_false(served_is(&p, "null"));
    assert_false(served_is(&p, ""));
    assert_true(served_is(&o, "http://app.localhost:8080"));
    assert_false(served_is(&o, "http://app.localhost"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_of_request),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
