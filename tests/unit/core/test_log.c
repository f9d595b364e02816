/* Unit tests of the log sinks (src/core/log.c): what a log reader relies on. An auth event is
 * one line of valid JSON with every field, whatever bytes a hostile email or reason carries
 * (quotes, newlines, invalid UTF-8); a file sink appends, and after the file was renamed away
 * (logrotate) a reopen writes to a new file under the old name; "off" writes nothing; many
 * lines written at once to a pipe (in chunks cut at line ends) arrive every byte, in order;
 * times are RFC 3339 UTC with milliseconds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/log.h"

#include "../unit.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[64];

static int setup(void **state)
{
    return unit_tmpdir(g_dir, "log");
}

static int teardown(void **state)
{
    return unit_rmtree(g_dir);
}

/* The lines of a file, each parsed as JSON (fails on a line that is not one object). */
static size_t read_lines(const char *path, json_t *out[], size_t max)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char *line = NULL;
    size_t cap = 0, n = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        assert_true(n < max);
        assert_int_equal(line[len - 1], '\n');
        json_error_t je;
        out[n] = json_loadb(line, (size_t)len - 1, JSON_REJECT_DUPLICATES, &je);
        if (!json_is_object(out[n]))
            fail_msg("not one JSON object: %s (%s)", line, je.text);
        n++;
    }
    free(line);
    fclose(f);
    return n;
}

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void auth_events_are_json_lines(void **state)
{
    char path[128];
    snprintf(path, sizeof path, "%s/auth.log", g_dir);
    struct log_sink *s = log_sink_open(path);
    assert_non_null(s);
    assert_false(log_sink_off(s));
    log_auth(s, "login", "a@example.com", "corp", "wiki", "192.0.2.1", true, NULL);
    log_auth(s, "login", "x\"}\n{\"allowed\":true,\"e\":\"@evil", "corp\r\n", "w\\iki", NULL, false,
             "bad \xff\xfe utf-8 \x01");
    log_sink_close(s);
    json_t *l[4];
    assert_int_equal(read_lines(path, l, 4), 2); /* the forged newline stays inside its string */
    assert_string_equal(str(l[0], "event"), "login");
    assert_string_equal(str(l[0], "email"), "a@example.com");
    assert_string_equal(str(l[0], "idp"), "corp");
    assert_string_equal(str(l[0], "app"), "wiki");
    assert_string_equal(str(l[0], "client_ip"), "192.0.2.1");
    assert_true(json_is_true(json_object_get(l[0], "allowed")));
    assert_true(json_is_null(json_object_get(l[0], "reason")));
    assert_int_equal(json_object_size(l[0]), 8);
    assert_string_equal(str(l[1], "email"), "x\"}\n{\"allowed\":true,\"e\":\"@evil");
    assert_string_equal(str(l[1], "app"), "w\\iki");
    assert_true(json_is_false(json_object_get(l[1], "allowed")));
    assert_true(json_is_null(json_object_get(l[1], "client_ip")));
    assert_non_null(strstr(str(l[1], "reason"), "utf-8")); /* invalid bytes escaped, line kept */
    json_decref(l[0]);
    json_decref(l[1]);
}

static void reopen_after_rotation(void **state)
{
    char path[128], rotated[140];
    snprintf(path, sizeof path, "%s/access.log", g_dir);
    snprintf(rotated, sizeof rotated, "%s.1", path);
    struct log_sink *s = log_sink_open(path);
    assert_non_null(s);
    log_write(s, "{\"n\":1}\n", 8);
    assert_int_equal(rename(path, rotated), 0);
    log_write(s, "{\"n\":2}\n", 8); /* still the renamed file until reopened */
    assert_int_equal(log_sink_reopen(s), 0);
    log_write(s, "{\"n\":3}\n", 8);
    log_sink_close(s);
    json_t *l[4];
    assert_int_equal(read_lines(rotated, l, 4), 2);
    json_decref(l[0]);
    json_decref(l[1]);
    assert_int_equal(read_lines(path, l, 4), 1);
    assert_int_equal(json_integer_value(json_object_get(l[0], "n")), 3);
    json_decref(l[0]);
    s = log_sink_open(path); /* appends, never truncates */
    log_write(s, "{\"n\":4}\n", 8);
    log_sink_close(s);
    assert_int_equal(read_lines(path, l, 4), 2);
    json_decref(l[0]);
    json_decref(l[1]);
    snprintf(path, sizeof path, "%s/no/such/dir/x.log", g_dir);
    assert_null(log_sink_open(path));
}

static void off_writes_nothing(void **state)
{
    struct log_sink *s = log_sink_open("off");
    assert_non_null(s);
    assert_true(log_sink_off(s));
    assert_true(log_sink_off(NULL));
    log_write(s, "x\n", 2); /* no descriptor to write to: nothing happens */
    log_auth(s, "login", "a@example.com", NULL, NULL, NULL, true, NULL);
    log_sink_close(s);
}

/* Many lines at once into a pipe, some longer than PIPE_BUF: all of them arrive, in order. */
static void pipe_lines_arrive_whole(void **state)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(fcntl(p[0], F_SETPIPE_SZ, 1 << 20) > 0, 1);
    int saved = dup(1);
    assert_int_equal(dup2(p[1], 1), 1);
    struct log_sink *s = log_sink_open("stdout");
    struct strbuf sb;
    sb_init(&sb, 1 << 20);
    for (int i = 0; i < 200; i++) {
        sb_addf(&sb, "{\"i\":%d,\"pad\":\"", i);
        for (int k = 0; k < (i % 7) * 1000; k++)
            sb_add(&sb, "x", 1);
        sb_adds(&sb, "\"}\n");
    }
    assert_false(sb.overflow);
    log_write(s, sb.p, sb.len);
    log_sink_close(s);
    dup2(saved, 1);
    close(saved);
    close(p[1]);
    char *got = malloc(sb.len + 1);
    size_t n = 0;
    ssize_t r;
    while ((r = read(p[0], got + n, sb.len + 1 - n)) > 0)
        n += (size_t)r;
    close(p[0]);
    assert_int_equal(n, sb.len);
    assert_memory_equal(got, sb.p, n);
    free(got);
    sb_free(&sb);
}

static void times(void **state)
{
    char t[32];
    log_time_now(t);
    assert_int_equal(strlen(t), 24);
    int y, mo, d, h, mi, s, ms;
    char z;
    assert_int_equal(sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h, &mi, &s, &ms, &z), 8);
    assert_true(y >= 2024 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h < 24 && mi < 60 && s < 61);
    assert_true(ms >= 0 && ms < 1000);
    assert_int_equal(z, 'Z');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(auth_events_are_json_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(reopen_after_rotation, setup, teardown),
        cmocka_unit_test(off_writes_nothing),
        cmocka_unit_test(pipe_lines_arrive_whole),
        cmocka_unit_test(times),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
