/* Unit tests of what `latch curl` lets curl do (src/cli/curlargs.c, origin.c, routes.c,
 * answer.c; SPEC.md §7): URLs read strictly to their origin, the cleartext rule, a URL without
 * a scheme read as https, paths read as the gateway matches them and the app of a path from the
 * gateway's patterns, curl's command line read as curl reads it (clusters, attached values,
 * --no-, "--"), every URL of it required to be the token's origin, the options that are
 * refused; the gateway's refusal found in curl's header dump; and latch's table of curl's
 * options compared with the installed curl's own `curl --help all`, so that a curl that adds
 * options fails here first. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int origin_of(const char *url, char *text, size_t cap)
{
    struct cli_origin o;
    char why[512];
    int rc = cli_origin_parse(url, &o, why, sizeof why);
    if (rc == 0)
        snprintf(text, cap, "%s %s", o.text, o.key);
    else
        snprintf(text, cap, "%s", why);
    return rc;
}

#define ORIGIN(url, want)                                                                                 \
    do {                                                                                                  \
        char t_[600];                                                                                     \
        assert_int_equal(origin_of(url, t_, sizeof t_), 0);                                               \
        assert_string_equal(t_, want);                                                                    \
    } while (0)
#define NO_ORIGIN(url)                                                                                    \
    do {                                                                                                  \
        char t_[600];                                                                                     \
        if (origin_of(url, t_, sizeof t_) == 0)                                                           \
            fail_msg("%s was read as %s", url, t_);                                                       \
    } while (0)

static void origins(void **state)
{
    ORIGIN("http://api.localhost:8080/x?y#z", "http://api.localhost:8080 api.localhost:8080");
    ORIGIN("HTTPS://API.Example.COM/", "https://api.example.com:443 api.example.com");
    ORIGIN("https://api.example.com:443", "https://api.example.com:443 api.example.com");
    ORIGIN("http://api.example.com:443/", "http://api.example.com:443 api.example.com:443");
    ORIGIN("http://127.0.0.1:9/", "http://127.0.0.1:9 127.0.0.1:9");
    ORIGIN("http://a-b.1x.example/", "http://a-b.1x.example:80 a-b.1x.example");
    /* no scheme: curl would guess one; latch does not */
    NO_ORIGIN("api.localhost:8080/x");
    NO_ORIGIN("//api.localhost/");
    NO_ORIGIN("http:/api.localhost/");
    NO_ORIGIN("http:///api.localhost/");
    NO_ORIGIN("ftp://api.localhost/");
    NO_ORIGIN(" http://api.localhost/");
    /* the authority: userinfo, delimiters a reader might end it at, encodings, globs */
    NO_ORIGIN("http://user@api.localhost/");
    NO_ORIGIN("http://api.localhost:8080@evil.localhost/");
    NO_ORIGIN("http://api.localhost:8080?@evil.localhost:9/");
    NO_ORIGIN("http://api.localhost:8080#@evil.localhost:9/");
    NO_ORIGIN("http://api.localhost:8080\\@evil.localhost/");
    NO_ORIGIN("http://api%2elocalhost/");
    NO_ORIGIN("http://api.localhost%00.evil/");
    NO_ORIGIN("http://{api,evil}.localhost/");
    NO_ORIGIN("http://api.localhost:[8080-8090]/");
    ORIGIN("http://[::1]:8080/", "http://[::1]:8080 [::1]:8080");
    ORIGIN("http://[::1]/", "http://[::1]:80 [::1]");
    NO_ORIGIN("http://[::2]:8080/");
    NO_ORIGIN("http://[0:0:0:0:0:0:0:1]/");
    NO_ORIGIN("http://[::ffff:127.0.0.1]/");
    NO_ORIGIN("http://[::1]x/");
    NO_ORIGIN("http://[::1/");
    NO_ORIGIN("http://api .localhost/");
    NO_ORIGIN("http://api.localhost./");
    NO_ORIGIN("http://api..localhost/");
    NO_ORIGIN("http://.localhost/");
    NO_ORIGIN("http://xn--caf-dma.example\xc3\xa9/");
    /* ports */
    NO_ORIGIN("http://api.localhost:/");
    NO_ORIGIN("http://api.localhost:0/");
    NO_ORIGIN("http://api.localhost:080/");
    NO_ORIGIN("http://api.localhost:65536/");
    NO_ORIGIN("http://api.localhost:8080:9/");
    NO_ORIGIN("http://api.localhost:+80/");
    /* IPv4 in other spellings than the dotted quad */
    NO_ORIGIN("http://127.1/");
    NO_ORIGIN("http://0x7f.0.0.1/");
    NO_ORIGIN("http://2130706433/");
    NO_ORIGIN("http://0177.0.0.1/");
    NO_ORIGIN("http://127.0.0.01/");
    NO_ORIGIN("http://127.0.0.256/");
    NO_ORIGIN("http://1.2.3.4.5/");
    NO_ORIGIN("http://example.123/");
}

static bool cleartext(const char *url)
{
    struct cli_origin o;
    char why[512];
    assert_int_equal(cli_origin_parse(url, &o, why, sizeof why), 0);
    return cli_cleartext_ok(&o);
}

static void cleartext_rule(void **state)
{
    assert_true(cleartext("https://api.example.com/"));
    assert_true(cleartext("http://localhost:8080/"));
    assert_true(cleartext("http://api.localhost:8080/"));
    assert_true(cleartext("http://a.b.localhost/"));
    assert_true(cleartext("http://127.0.0.1/"));
    assert_true(cleartext("http://127.255.0.9:1/"));
    assert_true(cleartext("http://[::1]:8080/"));
    assert_false(cleartext("http://127.attacker.example/"));
    assert_false(cleartext("http://127.0.0.1.example/"));
    assert_false(cleartext("http://localhost.example/"));
    assert_false(cleartext("http://evillocalhost/"));
    assert_false(cleartext("http://api.localhost.evil/"));
    assert_false(cleartext("http://128.0.0.1/"));
    assert_false(cleartext("http://10.0.0.1/"));
    assert_false(cleartext("http://api.example.com/"));
}

/* Reads a command line given as one string (words split on spaces). */
static int read_args(const char *line, struct cli_curl_plan *plan, char *why, size_t cap)
{
    static char buf[2048];
    static char *argv[64];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", line);
    for (char *save = NULL, *w = strtok_r(buf, " ", &save); w && argc < 63; w = strtok_r(NULL, " ", &save))
        argv[argc++] = w;
    argv[argc] = NULL;
    return cli_curl_read(argc, argv, plan, why, cap);
}

#define APP "http://api.localhost:8080"
#define OTHER "http://other.localhost:9"

#define ACCEPT(line, want_n)                                                                               \
    do {                                                                                                  \
        struct cli_curl_plan p_;                                                                          \
        char w_[1024];                                                                                    \
        if (read_args(line, &p_, w_, sizeof w_) != 0)                                                     \
            fail_msg("refused: %s: %s", line, w_);                                                        \
        assert_int_equal(p_.nurls, want_n);                                                                \
        assert_string_equal(p_.origin.text, "http://api.localhost:8080");                                \
        cli_curl_plan_free(&p_);                                                                          \
    } while (0)
#define REFUSE(line, part)                                                                                \
    do {                                                                                                  \
        struct cli_curl_plan p_;                                                                          \
        char w_[1024];                                                                                    \
        if (read_args(line, &p_, w_, sizeof w_) == 0)                                                     \
            fail_msg("accepted: %s", line);                                                               \
        cli_curl_plan_free(&p_);                                                                          \
        if (!strstr(w_, part))                                                                            \
            fail_msg("%s: the reason '%s' does not say '%s'", line, w_, part);                             \
    } while (0)

static void command_lines(void **state)
{
    ACCEPT(APP "/x", 1);
    ACCEPT("-sS " APP "/x -X POST -d a=b -H X:1", 1);
    ACCEPT(APP "/a " APP "/b --url " APP "/c", 3);
    ACCEPT("-e " OTHER "/ " APP "/x", 1);               /* a referer is a value, not a URL */
    ACCEPT("-sSe" OTHER "/ " APP "/x", 1);              /* clustered, value attached */
    ACCEPT("-sSe " OTHER "/ " APP "/x", 1);             /* clustered, value next */
    ACCEPT("-o " OTHER " " APP, 1);
    ACCEPT("--no-location " APP, 1);
    ACCEPT(APP "/{a,b}/[1-3]", 1);                      /* globs in the path: the same origin */
    ACCEPT("-- " APP, 1);
    ACCEPT("-L " APP, 1);
    /* other origins, however they are given */
    REFUSE(APP " " OTHER "/", "another origin");
    REFUSE(APP " other.localhost:9/x", "another origin"); /* https://other.localhost:9/x */
    REFUSE(APP " api.localhost:8080/x", "another origin"); /* https: not the http origin */
    REFUSE(APP " --url " OTHER, "another origin");
    REFUSE(APP " -- " OTHER, "another origin");
    REFUSE(APP " -- -x", "another origin");
    REFUSE(APP " -- ftp://api.localhost:8080/", "not an absolute");
    /* latch's own options after `curl`: latch's word, not "not a curl option" */
    REFUSE("--no-browser " APP, "option of latch");
    REFUSE(APP " --no-browser", "option of latch");
    REFUSE(APP " --timeout 5", "option of latch");
    REFUSE("--timeout=5 " APP, "option of latch");
    REFUSE(APP " http://api.localhost:8081/", "another origin");
    REFUSE(APP " https://api.localhost:8080/", "another origin");
    REFUSE(APP " http://api.localhost/", "another origin");
    REFUSE(APP " http://127.0.0.1:8080/", "another origin");
    /* what would send the request elsewhere, or cannot be seen */
    REFUSE("-K cfg " APP, "config file");
    REFUSE("--config cfg " APP, "config file");
    REFUSE("-sK cfg " APP, "config file");
    REFUSE(APP " -: " APP, "another transfer");
    REFUSE(APP " --next " APP, "another transfer");
    REFUSE("--location-trusted " APP, "any host a redirect names");
    REFUSE("--connect-to ::other:9 " APP, "somewhere else");
    REFUSE("--resolve api.localhost:8080:10.0.0.1 " APP, "somewhere else");
    REFUSE("--unix-socket /s " APP, "somewhere else");
    REFUSE("--abstract-unix-socket s " APP, "somewhere else");
    REFUSE("--doh-url " OTHER " " APP, "somewhere else");
    REFUSE("--dns-servers 1.1.1.1 " APP, "somewhere else");
    REFUSE("--alt-svc f " APP, "somewhere else");
    REFUSE("--hsts f " APP, "somewhere else");
    REFUSE("-x " OTHER " " APP, "proxy");
    REFUSE("--socks5-hostname o:1 " APP, "proxy");
    REFUSE("--preproxy o:1 " APP, "proxy");
    REFUSE("-x" OTHER " " APP, "proxy");
    /* options latch does not know: never a guess at their arity */
    REFUSE("--loc " APP, "spelled out in full");
    REFUSE("--LOCATION " APP, "spelled out in full");
    REFUSE("--referer=" OTHER " " APP, "spelled out in full");
    REFUSE("--variable a=b " APP, "spelled out in full");
    REFUSE("-* " OTHER " " APP, "-* ");
    REFUSE("-s$ " APP, "-$ ");
    REFUSE("--no-referer x " APP, "--no-");
    REFUSE("- " APP, "'-' alone");
    REFUSE(APP " -e", "needs a value");
    REFUSE("", "give the URL");
    REFUSE("-s", "give the URL");
    /* cleartext and certificates */
    REFUSE("http://127.attacker.example/", "plain http");
    REFUSE("-k https://api.example.com/", "--insecure");
    struct cli_curl_plan p;
    char why[1024];
    /* an app URL as an option's value is no URL: the token needed is the one of the URL after */
    assert_int_equal(read_args("-e " APP "/ " OTHER "/", &p, why, sizeof why), 0);
    assert_int_equal(p.nurls, 1);
    assert_string_equal(p.origin.text, "http://other.localhost:9");
    assert_int_equal(read_args("-x http://proxy.example:3128 -L https://api.example.com/", &p, why, sizeof why), 0);
    assert_true(p.follow && p.proxy[0]);
    assert_int_equal(read_args("--help all", &p, why, sizeof why), 0);
    assert_true(p.info);
    assert_int_equal(read_args("-V", &p, why, sizeof why), 0);
    assert_true(p.info);
    /* a URL without a scheme is https, and curl gets it so written (its word's index) */
    assert_int_equal(read_args("-sS api.localhost:8080/x --url https://api.localhost:8080/y", &p, why, sizeof why), 0);
    assert_string_equal(p.origin.text, "https://api.localhost:8080");
    assert_int_equal(p.nurls, 2);
    assert_string_equal(p.urls[0], "https://api.localhost:8080/x");
    assert_int_equal(p.argi[0], 1);
    assert_non_null(p.owned[0]);
    assert_null(p.owned[1]);
    assert_int_equal(p.argi[1], 3);
    cli_curl_plan_free(&p);
    /* what decides the path, kept for latch: -T files, --request-target, -g, -D */
    assert_int_equal(read_args("-gT a.txt -T b.txt -D h.txt --request-target /t " APP "/", &p, why, sizeof why), 0);
    assert_int_equal(p.nuploads, 2);
    assert_string_equal(p.uploads[1], "b.txt");
    assert_string_equal(p.request_target, "/t");
    assert_string_equal(p.dump_header, "h.txt");
    assert_true(p.globoff);
    cli_curl_plan_free(&p);
}

static char *match_of(const char *url)
{
    char *raw = cli_url_raw_path(url), *m = NULL, why[512];
    assert_non_null(raw);
    int rc = cli_path_match(raw, &m, why, sizeof why);
    free(raw);
    return rc == 0 ? m : NULL;
}

#define MATCH(url, want)                                                                                  \
    do {                                                                                                  \
        char *m_ = match_of(url);                                                                         \
        if (!m_)                                                                                          \
            fail_msg("%s: no path", url);                                                                 \
        if (strcmp(m_, want))                                                                             \
            fail_msg("%s: path %s, want %s", url, m_, want);                                              \
        free(m_);                                                                                         \
    } while (0)

/* The path of a URL as the gateway matches it (http/path.h), and a URL without a scheme. */
static void paths(void **state)
{
    char buf[256];
    assert_string_equal(cli_url_scheme("wiki.example.com", buf, sizeof buf), "https://wiki.example.com");
    assert_string_equal(cli_url_scheme("wiki.example.com:8443/a?b", buf, sizeof buf), "https://wiki.example.com:8443/a?b");
    assert_string_equal(cli_url_scheme("http://x.localhost/", buf, sizeof buf), "http://x.localhost/");
    assert_null(cli_url_scheme("wiki.example.com", buf, 10));
    /* "://" in a path, a query or a fragment is not a scheme */
    assert_string_equal(cli_url_scheme("wiki.example.com/x?to=http://y", buf, sizeof buf),
                        "https://wiki.example.com/x?to=http://y");
    assert_string_equal(cli_url_scheme("wiki.example.com?to=http://y", buf, sizeof buf),
                        "https://wiki.example.com?to=http://y");
    assert_string_equal(cli_url_scheme("wiki.example.com#http://y", buf, sizeof buf),
                        "https://wiki.example.com#http://y");
    MATCH("http://h.localhost", "/");
    MATCH("http://h.localhost?x=/private/", "/");
    MATCH("http://h.localhost#/private/", "/");
    MATCH("http://h.localhost/private/x?y#z", "/private/x");
    MATCH("http://h.localhost/a/../private/x", "/private/x");
    MATCH("http://h.localhost//private//x", "/private/x");
    MATCH("http://h.localhost/%70rivate/x", "/private/x");
    MATCH("http://h.localhost/private;v=1/x", "/private/x");
    MATCH("http://h.localhost/%2e%2e/private/", "/private/");
    MATCH("http://h.localhost/caf\xc3\xa9", "/caf%C3%A9");   /* curl encodes non-ASCII */
    MATCH("http://h.localhost/caf%c3%a9", "/caf%C3%A9");
    assert_null(match_of("http://h.localhost/a%2Fb"));
    assert_null(match_of("http://h.localhost/a b"));
    assert_null(match_of("http://h.localhost/a\\b"));
    assert_true(cli_path_globs("/{a,b}"));
    assert_true(cli_path_globs("/x[1-2]"));
    assert_false(cli_path_globs("/x(1)"));
}

static const char *aud_for(json_t *routes, const char *host, const char *path)
{
    return cli_routes_aud(routes, host, path);
}

/* The app of a path from the gateway's patterns, in its order, as route_match picks it. */
static void routes_pick_the_app(void **state)
{
    json_error_t je;
    json_t *r = json_loads("[{\"pattern\":\"files.localhost:8080/private/admin\",\"aud\":\"C\"},"
                           "{\"pattern\":\"files.localhost:8080/private/*\",\"aud\":\"B\"},"
                           "{\"pattern\":\"files.localhost/*\",\"aud\":\"A\"},"
                           "{\"pattern\":\"*.localhost/pub*\",\"aud\":\"W\"}]", 0, &je);
    assert_non_null(r);
    assert_string_equal(aud_for(r, "files.localhost:8080", "/private/x"), "B");
    assert_string_equal(aud_for(r, "files.localhost:8080", "/private/admin"), "C");
    assert_string_equal(aud_for(r, "files.localhost:8080", "/private/admin/x"), "B");
    assert_string_equal(aud_for(r, "files.localhost:8080", "/private"), "A");   /* /private/STAR: not /private */
    assert_string_equal(aud_for(r, "files.localhost:8080", "/"), "A");
    assert_string_equal(aud_for(r, "files.localhost:9", "/private/x"), "A");    /* another port */
    assert_string_equal(aud_for(r, "files.localhost:8080", "/public"), "A");    /* the exact host first */
    assert_string_equal(aud_for(r, "other.localhost:8080", "/public"), "W");
    assert_null(aud_for(r, "other.localhost:8080", "/x"));
    json_t *bad = json_loads("[{\"pattern\":\"files.localhost/a\",\"aud\":\"A\"},{\"pattern\":\"files.localhost/a\",\"aud\":\"B\"}]",
                             0, &je);
    assert_null(aud_for(bad, "files.localhost", "/a")); /* patterns the gateway would never send */
    assert_null(aud_for(NULL, "files.localhost", "/a"));
    json_decref(bad);
    json_decref(r);
}

/* The gateway's refusal in curl's header dump, and nothing else. */
static void answers(void **state)
{
    const char *refused = "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
                          "WWW-Authenticate: Bearer realm=\"http://auth.localhost:8080\", error=\"login_required\", "
                          "authorization_uri=\"http://auth.localhost:8080/cdn-cgi/access/login/x\"\r\n\r\n";
    assert_int_equal(cli_answer_refused(refused, strlen(refused)), 1);
    const char *two = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 401 Unauthorized\r\nwww-authenticate: bearer "
                      "error=\"login_required\"\r\n\r\nHTTP/2 401 \r\nwww-authenticate: Bearer error=\"login_required\"\r\n";
    assert_int_equal(cli_answer_refused(two, strlen(two)), 2);
    const char *origin = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"api\"\r\n\r\n";
    assert_int_equal(cli_answer_refused(origin, strlen(origin)), 0);
    const char *ok = "HTTP/1.1 302 Found\r\nWWW-Authenticate: Bearer error=\"login_required\"\r\n\r\n"
                     "HTTP/1.1 200 OK\r\n\r\n";
    assert_int_equal(cli_answer_refused(ok, strlen(ok)), 0);
    const char *other = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer error=\"invalid_token\"\r\n\r\n";
    assert_int_equal(cli_answer_refused(other, strlen(other)), 0);
    assert_int_equal(cli_answer_refused("", 0), 0);
    assert_int_equal(cli_answer_refused(refused, 20), 0); /* cut before the challenge */
}

/* The table against `curl --help all`: the same options, short letters and arity. Options
 * curl lists as --no-NAME are NAME in the table (on/off). --help is a flag in the table (it may
 * be followed by a category, and curl then only prints). */
static void table_matches_installed_curl(void **state)
{
    for (size_t i = 1; i < cli_curl_noptions; i++)
        if (strcmp(cli_curl_options[i - 1].name, cli_curl_options[i].name) >= 0)
            fail_msg("the table is not sorted at %s", cli_curl_options[i].name);
    FILE *f = popen("curl --help all 2>/dev/null", "r");
    if (!f)
        skip();
    char line[1024];
    size_t seen = 0, listed = 0;
    bool *found = calloc(cli_curl_noptions, sizeof *found);
    assert_non_null(found);
    while (fgets(line, sizeof line, f)) {
        char letter = 0, name[128];
        const char *p = line;
        if (p[0] != ' ')
            continue;
        if (p[1] == '-' && p[3] == ',') {
            letter = p[2];
            p += 4;
        }
        while (*p == ' ')
            p++;
        if (strncmp(p, "--", 2) != 0)
            continue;
        p += 2;
        size_t n = strcspn(p, " \n");
        snprintf(name, sizeof name, "%.*s", (int)n, p);
        bool arg = p[n] == ' ' && (p[n + 1] == '<' || p[n + 1] == '[');
        const char *base = strncmp(name, "no-", 3) ? name : name + 3;
        listed++;
        const struct cli_curl_option *o = NULL;
        for (size_t i = 0; i < cli_curl_noptions && !o; i++)
            if (!strcmp(cli_curl_options[i].name, base)) {
                o = &cli_curl_options[i];
                found[i] = true;
            }
        if (!o) {
            print_error("curl has --%s, latch's table does not (src/cli/curlargs.c)\n", name);
            continue;
        }
        if (o->letter != letter)
            print_error("--%s: curl's short option is '%c', latch's '%c'\n", name, letter ? letter : ' ',
                        o->letter ? o->letter : ' ');
        else if (strcmp(base, "help") && arg != (o->arity == CO_ARG))
            print_error("--%s: curl says it %s a value, latch's table the opposite\n", name,
                        arg ? "takes" : "takes no");
        else if (base != name && o->arity != CO_BOOL)
            print_error("--%s: curl lists it as --no-%s, latch's table not as on/off\n", name, base);
        else
            seen++;
    }
    int rc = pclose(f);
    if (listed == 0 && rc != 0) {
        free(found);
        skip(); /* no curl here */
    }
    for (size_t i = 0; i < cli_curl_noptions; i++)
        if (!found[i])
            print_error("latch's table has --%s, curl does not\n", cli_curl_options[i].name);
    free(found);
    assert_int_equal(seen, listed);
    assert_int_equal(listed, cli_curl_noptions);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(origins),
        cmocka_unit_test(cleartext_rule),
        cmocka_unit_test(command_lines),
        cmocka_unit_test(paths),
        cmocka_unit_test(routes_pick_the_app),
        cmocka_unit_test(answers),
        cmocka_unit_test(table_matches_installed_curl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
