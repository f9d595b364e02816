/* Unit tests of the endpoint tables (src/request/endpoint.c) and the one mapping from a cause to
 * a status (request/error.c, http_error_status): a row's name is exact unless it ends in '/',
 * "" matches every name, the first matching row wins, an auth-domain-only row serves only the
 * auth domain; a refused head is answered the same on every listener. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "http/http.h"
#include "request/endpoint.h"
#include "request/error.h"

static enum endpoint_result h_a(struct exchange *c, struct endpoint_req *r) { return ENDPOINT_DONE; }
static enum endpoint_result h_b(struct exchange *c, struct endpoint_req *r) { return ENDPOINT_DONE; }
static enum endpoint_result h_c(struct exchange *c, struct endpoint_req *r) { return ENDPOINT_DONE; }
static enum endpoint_result h_404(struct exchange *c, struct endpoint_req *r) { return ENDPOINT_DONE; }

static const struct endpoint first_rows[] = {
    { "app", false, false, h_a },
    { "cli", true, true, h_b },
    { "transfer/", true, true, h_c },
};
static const struct endpoint_table first = { first_rows, 3 };
static const struct endpoint last_rows[] = {
    { "cli", true, false, h_a }, /* shadowed on the auth domain by the first table's */
    { "", true, false, h_404 },
};
static const struct endpoint_table last = { last_rows, 2 };
static const struct endpoint_table *const tables[] = { &first, &last };

static endpoint_fn found(const char *name, bool on_auth_domain)
{
    struct endpoint_req r = { .name = name, .on_auth_domain = on_auth_domain };
    const struct endpoint *e = endpoint_find(tables, 2, &r);
    return e ? e->handle : NULL;
}

static void test_find(void **state)
{
    (void)state;
    assert_ptr_equal(found("app", false), h_a);
    assert_ptr_equal(found("cli", true), h_b);
    assert_ptr_equal(found("cli", false), h_a);          /* auth-domain-only row skipped */
    assert_ptr_equal(found("transfer/abc", true), h_c);  /* a prefix */
    assert_ptr_equal(found("transfer/", true), h_c);
    assert_ptr_equal(found("transfer", true), h_404);    /* not the prefix */
    assert_ptr_equal(found("transfer/abc", false), h_404);
    assert_ptr_equal(found("apps", true), h_404);        /* exact names are exact */
    assert_ptr_equal(found("ap", true), h_404);
    assert_ptr_equal(found("", false), h_404);
    struct endpoint_req r = { .name = "anything" };
    assert_null(endpoint_find(tables, 1, &r));           /* no catch-all: nothing */
}

static void test_statuses(void **state)
{
    (void)state;
    assert_int_equal(http_error_status(HTTP_ERR_BAD), 400);
    assert_int_equal(http_error_status(HTTP_ERR_NOT_IMPL), 400); /* SPEC.md §8, on every listener */
    assert_int_equal(http_error_status(HTTP_ERR_URI_TOO_LONG), 414);
    assert_int_equal(http_error_status(HTTP_ERR_HEADERS_LARGE), 431);
    assert_int_equal(http_error_status(HTTP_ERR_VERSION), 505);
    assert_int_equal(endpoint_store_cause(STORE_NOMEM), ENDPOINT_NOMEM);
    assert_int_equal(endpoint_store_cause(STORE_UNAVAILABLE), ENDPOINT_STORE_DOWN);
    assert_int_equal(endpoint_cause_status(ENDPOINT_NOMEM), 500);
    assert_int_equal(endpoint_cause_status(ENDPOINT_STORE_DOWN), 503);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_statuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
