/* Unit tests of the metrics registry and its text exposition (src/metrics/metrics.c): counts
 * from several worker blocks are summed per label set, histogram buckets are cumulative and
 * end in _count, label values are escaped (backslash, quote, newline), a worker's table keeps
 * every count while it grows, and an app keeps its id (and so its counters) across reloads. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "metrics/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *render(struct metrics *m)
{
    struct strbuf sb;
    sb_init(&sb, 64 << 20);
    assert_true(metrics_render(m, &sb));
    sb_add(&sb, "", 1);
    return sb.p;
}

/* The value of the sample line that starts with `series` followed by a space; fails when the
 * line is missing or present twice. */
static const char *sample(const char *text, const char *series)
{
    const char *found = NULL;
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (!strncmp(p, series, n) && p[n] == ' ') {
            if (found)
                fail_msg("%s appears twice", series);
            found = p + n + 1;
        }
    }
    if (!found)
        fail_msg("no sample %s in:\n%s", series, text);
    return found;
}

static unsigned long long value(const char *text, const char *series)
{
    return strtoull(sample(text, series), NULL, 10);
}

static void requests_summed_across_workers(void **state)
{
    struct metrics *m = metrics_new(3, NULL);
    assert_non_null(m);
    uint32_t pub = metrics_app_id(m, "pub");
    uint32_t wiki = metrics_app_id(m, "wiki");
    assert_int_not_equal(pub, 0);
    assert_int_not_equal(pub, wiki);
    for (unsigned w = 0; w < 3; w++)
        for (int i = 0; i < 5; i++)
            metrics_request(metrics_worker(m, w), pub, ACCESS_BYPASS, 200, 300 + 1000 * (uint64_t)i);
    metrics_request(metrics_worker(m, 1), wiki, ACCESS_LOGIN_REQUIRED, 401, 20);
    metrics_request(metrics_worker(m, 2), wiki, ACCESS_LOGIN_REQUIRED, 302, 20);
    metrics_request(metrics_worker(m, 2), 0, ACCESS_DENY, 404, 7000000);
    metrics_request(NULL, pub, ACCESS_BYPASS, 200, 1); /* no block: nothing */
    char *t = render(m);
    assert_int_equal(value(t, "latch_requests_total{app=\"pub\",decision=\"bypass\",status=\"200\"}"), 15);
    assert_int_equal(value(t, "latch_requests_total{app=\"wiki\",decision=\"login_required\",status=\"401\"}"), 1);
    assert_int_equal(value(t, "latch_requests_total{app=\"wiki\",decision=\"login_required\",status=\"302\"}"), 1);
    assert_int_equal(value(t, "latch_requests_total{app=\"\",decision=\"deny\",status=\"404\"}"), 1);
    /* durations 300, 1300, 2300, 3300, 4300 µs, three times each */
    assert_int_equal(value(t, "latch_request_duration_seconds_bucket{app=\"pub\",le=\"0.0005\"}"), 3);
    assert_int_equal(value(t, "latch_request_duration_seconds_bucket{app=\"pub\",le=\"0.001\"}"), 3);
    assert_int_equal(value(t, "latch_request_duration_seconds_bucket{app=\"pub\",le=\"0.0025\"}"), 9);
    assert_int_equal(value(t, "latch_request_duration_seconds_bucket{app=\"pub\",le=\"0.005\"}"), 15);
    assert_int_equal(value(t, "latch_request_duration_seconds_bucket{app=\"pub\",le=\"+Inf\"}"), 15);
    assert_int_equal(value(t, "latch_request_duration_seconds_count{app=\"pub\"}"), 15);
    assert_true(!strncmp(sample(t, "latch_request_duration_seconds_sum{app=\"pub\"}"), "0.034500\n", 9));
    assert_int_equal(value(t, "latch_request_duration_seconds_bucket{app=\"\",le=\"5\"}"), 0);
    assert_int_equal(value(t, "latch_request_duration_seconds_bucket{app=\"\",le=\"10\"}"), 1);
    assert_true(!strncmp(sample(t, "latch_request_duration_seconds_sum{app=\"\"}"), "7.000000\n", 9));
    assert_non_null(strstr(t, "# TYPE latch_requests_total counter\n"));
    assert_non_null(strstr(t, "# TYPE latch_request_duration_seconds histogram\n"));
    /* a boundary value belongs to its bucket (le: less or equal) */
    metrics_request(metrics_worker(m, 0), wiki, ACCESS_ALLOW, 200, 500);
    free(t);
    t = render(m);
    assert_int_equal(value(t, "latch_request_duration_seconds_bucket{app=\"wiki\",le=\"0.0005\"}"), 3);
    free(t);
    metrics_free(m);
}

static void the_other_families(void **state)
{
    struct metrics *m = metrics_new(2, NULL);
    uint32_t api = metrics_app_id(m, "api");
    metrics_origin_error(metrics_worker(m, 0), api, METRICS_ORIGIN_CONNECT);
    metrics_origin_error(metrics_worker(m, 1), api, METRICS_ORIGIN_CONNECT);
    metrics_origin_error(metrics_worker(m, 1), api, METRICS_ORIGIN_TIMEOUT);
    metrics_worker_sample(metrics_worker(m, 0), 3, 10, 2);
    metrics_worker_sample(metrics_worker(m, 1), 4, 5, 1);
    metrics_login(metrics_worker(m, 0), "email-code", true);
    metrics_login(metrics_worker(m, 1), "email-code", false);
    metrics_login(metrics_worker(m, 1), "email-code", false);
    metrics_login(metrics_worker(m, 1), NULL, false);
    metrics_handoff(metrics_worker(m, 0), METRICS_HANDOFF_SEALED);
    metrics_handoff(metrics_worker(m, 0), METRICS_HANDOFF_PENDING);
    metrics_handoff(metrics_worker(m, 0), METRICS_HANDOFF_PENDING);
    metrics_reload(m, true);
    metrics_reload(m, false);
    metrics_reload(m, false);
    char *t = render(m);
    assert_int_equal(value(t, "latch_origin_errors_total{app=\"api\",kind=\"connect\"}"), 2);
    assert_int_equal(value(t, "latch_origin_errors_total{app=\"api\",kind=\"timeout\"}"), 1);
    assert_null(strstr(t, "kind=\"tls\""));
    assert_int_equal(value(t, "latch_open_connections"), 7);
    assert_int_equal(value(t, "latch_token_cache_hits_total"), 15);
    assert_int_equal(value(t, "latch_token_cache_misses_total"), 3);
    assert_int_equal(value(t, "latch_logins_total{idp=\"email-code\",outcome=\"success\"}"), 1);
    assert_int_equal(value(t, "latch_logins_total{idp=\"email-code\",outcome=\"failure\"}"), 2);
    assert_int_equal(value(t, "latch_logins_total{idp=\"\",outcome=\"failure\"}"), 1);
    assert_int_equal(value(t, "latch_handoffs_total{outcome=\"sealed\"}"), 1);
    assert_int_equal(value(t, "latch_handoffs_total{outcome=\"delivered\"}"), 0);
    assert_int_equal(value(t, "latch_handoffs_total{outcome=\"pending\"}"), 2);
    assert_int_equal(value(t, "latch_reloads_total{result=\"ok\"}"), 1);
    assert_int_equal(value(t, "latch_reloads_total{result=\"error\"}"), 2);
    assert_int_equal(value(t, "latch_config_generation"), 2);
    assert_int_equal(value(t, "latch_store_up"), 0); /* no store given */
    assert_non_null(strstr(t, "latch_build_info{version=\""));
    assert_true(value(t, "process_start_time_seconds") > 1700000000ull);
    assert_non_null(strstr(t, "# TYPE latch_open_connections gauge\n"));
    /* every line is a comment or "name[{labels}] value" and the text ends with a newline */
    assert_int_equal(t[strlen(t) - 1], '\n');
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n"))
        assert_true(line[0] == '#' || (strchr(line, ' ') && line[0] >= 'a' && line[0] <= 'z'));
    free(t);
    metrics_free(m);
}

static void label_values_escaped(void **state)
{
    struct metrics *m = metrics_new(1, NULL);
    uint32_t odd = metrics_app_id(m, "a\"b\\c\nd");
    metrics_request(metrics_worker(m, 0), odd, ACCESS_ALLOW, 200, 1);
    metrics_login(metrics_worker(m, 0), "x\"y", true);
    char *t = render(m);
    assert_int_equal(value(t, "latch_requests_total{app=\"a\\\"b\\\\c\\nd\",decision=\"allow\",status=\"200\"}"), 1);
    assert_int_equal(value(t, "latch_logins_total{idp=\"x\\\"y\",outcome=\"success\"}"), 1);
    free(t);
    struct strbuf sb;
    sb_init(&sb, 1024);
    metrics_label_value(&sb, "\\\\\"\n\n plain");
    sb_add(&sb, "", 1);
    assert_string_equal(sb.p, "\\\\\\\\\\\"\\n\\n plain");
    sb_free(&sb);
    metrics_free(m);
}

/* Thousands of label sets: the table grows many times and loses nothing. */
static void tables_grow_without_losing_counts(void **state)
{
    struct metrics *m = metrics_new(1, NULL);
    struct metrics_worker *mw = metrics_worker(m, 0);
    uint32_t ids[40];
    char name[32];
    for (int a = 0; a < 40; a++) {
        snprintf(name, sizeof name, "app%02d", a);
        ids[a] = metrics_app_id(m, name);
    }
    for (int round = 0; round < 3; round++)
        for (int a = 0; a < 40; a++)
            for (int s = 100; s < 200; s++)
                metrics_request(mw, ids[a], ACCESS_ALLOW, s, 1);
    char *t = render(m);
    char series[128];
    for (int a = 0; a < 40; a++)
        for (int s = 100; s < 200; s += 33) {
            snprintf(series, sizeof series,
                     "latch_requests_total{app=\"app%02d\",decision=\"allow\",status=\"%d\"}", a, s);
            assert_int_equal(value(t, series), 3);
        }
    snprintf(series, sizeof series, "latch_request_duration_seconds_count{app=\"app07\"}");
    assert_int_equal(value(t, series), 300);
    free(t);
    metrics_free(m);
}

static void app_ids_are_stable(void **state)
{
    struct metrics *m = metrics_new(1, NULL);
    uint32_t a = metrics_app_id(m, "alpha");
    for (int i = 0; i < 100; i++) { /* reloads naming new apps: alpha keeps its id */
        char name[16];
        snprintf(name, sizeof name, "n%d", i);
        metrics_app_id(m, name);
    }
    assert_int_equal(metrics_app_id(m, "alpha"), a);
    assert_int_equal(metrics_app_id(m, ""), 0);
    assert_int_equal(metrics_app_id(m, NULL), 0);
    assert_null(metrics_worker(m, 1));
    metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(requests_summed_across_workers),
        cmocka_unit_test(the_other_families),
        cmocka_unit_test(label_values_escaped),
        cmocka_unit_test(tables_grow_without_losing_counts),
        cmocka_unit_test(app_ids_are_stable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
