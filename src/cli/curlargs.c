/* What `latch curl` lets curl do with a token (SPEC.md §7): curl's command line read exactly as
 * curl 7.88 reads it, from a table of curl's options compiled in here, so that latch knows every
 * URL curl will fetch and every option that would send the request somewhere else than the
 * token's origin. Where latch cannot be sure, it refuses and says why: an option it does not
 * know (a newer curl's, or an abbreviation, whose meaning depends on curl's version), a config
 * file (-K), several transfers (--next), a URL it cannot read strictly. The table must list
 * every option of `curl --help all` with the same short letter and arity: tests/unit/cli/
 * test_curlargs.c compares it with the installed curl, so an upgrade that adds options fails
 * there first. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHY(...) (snprintf(why, cap, __VA_ARGS__), -1)

/* curl 7.88.1's options (tool_getparam.c), by long name; `--no-NAME` for the CO_BOOL ones. */
const struct cli_curl_option cli_curl_options[] = {
    { "abstract-unix-socket", 0, CO_ARG, CO_ROUTE },
    { "alpn", 0, CO_BOOL, CO_PASS },
    { "alt-svc", 0, CO_ARG, CO_ROUTE },
    { "anyauth", 0, CO_BOOL, CO_PASS },
    { "append", 'a', CO_BOOL, CO_PASS },
    { "aws-sigv4", 0, CO_ARG, CO_PASS },
    { "basic", 0, CO_BOOL, CO_PASS },
    { "buffer", 'N', CO_BOOL, CO_PASS },
    { "cacert", 0, CO_ARG, CO_PASS },
    { "capath", 0, CO_ARG, CO_PASS },
    { "cert", 'E', CO_ARG, CO_PASS },
    { "cert-status", 0, CO_BOOL, CO_PASS },
    { "cert-type", 0, CO_ARG, CO_PASS },
    { "ciphers", 0, CO_ARG, CO_PASS },
    { "clobber", 0, CO_BOOL, CO_PASS },
    { "compressed", 0, CO_BOOL, CO_PASS },
    { "compressed-ssh", 0, CO_BOOL, CO_PASS },
    { "config", 'K', CO_ARG, CO_CONFIG },
    { "connect-timeout", 0, CO_ARG, CO_PASS },
    { "connect-to", 0, CO_ARG, CO_ROUTE },
    { "continue-at", 'C', CO_ARG, CO_PASS },
    { "cookie", 'b', CO_ARG, CO_PASS },
    { "cookie-jar", 'c', CO_ARG, CO_PASS },
    { "create-dirs", 0, CO_BOOL, CO_PASS },
    { "create-file-mode", 0, CO_ARG, CO_PASS },
    { "crlf", 0, CO_BOOL, CO_PASS },
    { "crlfile", 0, CO_ARG, CO_PASS },
    { "curves", 0, CO_ARG, CO_PASS },
    { "data", 'd', CO_ARG, CO_PASS },
    { "data-ascii", 0, CO_ARG, CO_PASS },
    { "data-binary", 0, CO_ARG, CO_PASS },
    { "data-raw", 0, CO_ARG, CO_PASS },
    { "data-urlencode", 0, CO_ARG, CO_PASS },
    { "delegation", 0, CO_ARG, CO_PASS },
    { "digest", 0, CO_BOOL, CO_PASS },
    { "disable", 'q', CO_BOOL, CO_PASS },
    { "disable-eprt", 0, CO_BOOL, CO_PASS },
    { "disable-epsv", 0, CO_BOOL, CO_PASS },
    { "disallow-username-in-url", 0, CO_BOOL, CO_PASS },
    { "dns-interface", 0, CO_ARG, CO_PASS },
    { "dns-ipv4-addr", 0, CO_ARG, CO_PASS },
    { "dns-ipv6-addr", 0, CO_ARG, CO_PASS },
    { "dns-servers", 0, CO_ARG, CO_ROUTE },
    { "doh-cert-status", 0, CO_BOOL, CO_PASS },
    { "doh-insecure", 0, CO_BOOL, CO_PASS },
    { "doh-url", 0, CO_ARG, CO_ROUTE },
    { "dump-header", 'D', CO_ARG, CO_DUMP },
    { "egd-file", 0, CO_ARG, CO_PASS },
    { "engine", 0, CO_ARG, CO_PASS },
    { "etag-compare", 0, CO_ARG, CO_PASS },
    { "etag-save", 0, CO_ARG, CO_PASS },
    { "expect100-timeout", 0, CO_ARG, CO_PASS },
    { "fail", 'f', CO_BOOL, CO_PASS },
    { "fail-early", 0, CO_BOOL, CO_PASS },
    { "fail-with-body", 0, CO_BOOL, CO_PASS },
    { "false-start", 0, CO_BOOL, CO_PASS },
    { "form", 'F', CO_ARG, CO_PASS },
    { "form-escape", 0, CO_BOOL, CO_PASS },
    { "form-string", 0, CO_ARG, CO_PASS },
    { "ftp-account", 0, CO_ARG, CO_PASS },
    { "ftp-alternative-to-user", 0, CO_ARG, CO_PASS },
    { "ftp-create-dirs", 0, CO_BOOL, CO_PASS },
    { "ftp-method", 0, CO_ARG, CO_PASS },
    { "ftp-pasv", 0, CO_BOOL, CO_PASS },
    { "ftp-port", 'P', CO_ARG, CO_PASS },
    { "ftp-pret", 0, CO_BOOL, CO_PASS },
    { "ftp-skip-pasv-ip", 0, CO_BOOL, CO_PASS },
    { "ftp-ssl-ccc", 0, CO_BOOL, CO_PASS },
    { "ftp-ssl-ccc-mode", 0, CO_ARG, CO_PASS },
    { "ftp-ssl-control", 0, CO_BOOL, CO_PASS },
    { "get", 'G', CO_BOOL, CO_PASS },
    { "globoff", 'g', CO_BOOL, CO_GLOBOFF },
    { "happy-eyeballs-timeout-ms", 0, CO_ARG, CO_PASS },
    { "haproxy-protocol", 0, CO_BOOL, CO_PASS },
    { "head", 'I', CO_BOOL, CO_PASS },
    { "header", 'H', CO_ARG, CO_PASS },
    { "help", 'h', CO_BOOL, CO_INFO },
    { "hostpubmd5", 0, CO_ARG, CO_PASS },
    { "hostpubsha256", 0, CO_ARG, CO_PASS },
    { "hsts", 0, CO_ARG, CO_ROUTE },
    { "http0.9", 0, CO_BOOL, CO_PASS },
    { "http1.0", '0', CO_FLAG, CO_PASS },
    { "http1.1", 0, CO_FLAG, CO_PASS },
    { "http2", 0, CO_FLAG, CO_PASS },
    { "http2-prior-knowledge", 0, CO_FLAG, CO_PASS },
    { "http3", 0, CO_FLAG, CO_PASS },
    { "http3-only", 0, CO_FLAG, CO_PASS },
    { "ignore-content-length", 0, CO_BOOL, CO_PASS },
    { "include", 'i', CO_BOOL, CO_PASS },
    { "insecure", 'k', CO_BOOL, CO_INSECURE },
    { "interface", 0, CO_ARG, CO_PASS },
    { "ipv4", '4', CO_FLAG, CO_PASS },
    { "ipv6", '6', CO_FLAG, CO_PASS },
    { "json", 0, CO_ARG, CO_PASS },
    { "junk-session-cookies", 'j', CO_BOOL, CO_PASS },
    { "keepalive", 0, CO_BOOL, CO_PASS },
    { "keepalive-time", 0, CO_ARG, CO_PASS },
    { "key", 0, CO_ARG, CO_PASS },
    { "key-type", 0, CO_ARG, CO_PASS },
    { "krb", 0, CO_ARG, CO_PASS },
    { "libcurl", 0, CO_ARG, CO_PASS },
    { "limit-rate", 0, CO_ARG, CO_PASS },
    { "list-only", 'l', CO_BOOL, CO_PASS },
    { "local-port", 0, CO_ARG, CO_PASS },
    { "location", 'L', CO_BOOL, CO_FOLLOW },
    { "location-trusted", 0, CO_BOOL, CO_TRUSTED },
    { "login-options", 0, CO_ARG, CO_PASS },
    { "mail-auth", 0, CO_ARG, CO_PASS },
    { "mail-from", 0, CO_ARG, CO_PASS },
    { "mail-rcpt", 0, CO_ARG, CO_PASS },
    { "mail-rcpt-allowfails", 0, CO_BOOL, CO_PASS },
    { "manual", 'M', CO_BOOL, CO_INFO },
    { "max-filesize", 0, CO_ARG, CO_PASS },
    { "max-redirs", 0, CO_ARG, CO_PASS },
    { "max-time", 'm', CO_ARG, CO_PASS },
    { "metalink", 0, CO_BOOL, CO_PASS },
    { "negotiate", 0, CO_BOOL, CO_PASS },
    { "netrc", 'n', CO_BOOL, CO_PASS },
    { "netrc-file", 0, CO_ARG, CO_PASS },
    { "netrc-optional", 0, CO_BOOL, CO_PASS },
    { "next", ':', CO_FLAG, CO_NEXT },
    { "noproxy", 0, CO_ARG, CO_PASS },
    { "npn", 0, CO_BOOL, CO_PASS },
    { "ntlm", 0, CO_BOOL, CO_PASS },
    { "ntlm-wb", 0, CO_BOOL, CO_PASS },
    { "oauth2-bearer", 0, CO_ARG, CO_PASS },
    { "output", 'o', CO_ARG, CO_PASS },
    { "output-dir", 0, CO_ARG, CO_PASS },
    { "parallel", 'Z', CO_BOOL, CO_PASS },
    { "parallel-immediate", 0, CO_BOOL, CO_PASS },
    { "parallel-max", 0, CO_ARG, CO_PASS },
    { "pass", 0, CO_ARG, CO_PASS },
    { "path-as-is", 0, CO_BOOL, CO_PASS },
    { "pinnedpubkey", 0, CO_ARG, CO_PASS },
    { "post301", 0, CO_BOOL, CO_PASS },
    { "post302", 0, CO_BOOL, CO_PASS },
    { "post303", 0, CO_BOOL, CO_PASS },
    { "preproxy", 0, CO_ARG, CO_PROXY },
    { "progress-bar", '#', CO_BOOL, CO_PASS },
    { "progress-meter", 0, CO_BOOL, CO_PASS },
    { "proto", 0, CO_ARG, CO_PASS },
    { "proto-default", 0, CO_ARG, CO_PASS },
    { "proto-redir", 0, CO_ARG, CO_PASS },
    { "proxy", 'x', CO_ARG, CO_PROXY },
    { "proxy-anyauth", 0, CO_BOOL, CO_PASS },
    { "proxy-basic", 0, CO_BOOL, CO_PASS },
    { "proxy-cacert", 0, CO_ARG, CO_PASS },
    { "proxy-capath", 0, CO_ARG, CO_PASS },
    { "proxy-cert", 0, CO_ARG, CO_PASS },
    { "proxy-cert-type", 0, CO_ARG, CO_PASS },
    { "proxy-ciphers", 0, CO_ARG, CO_PASS },
    { "proxy-crlfile", 0, CO_ARG, CO_PASS },
    { "proxy-digest", 0, CO_BOOL, CO_PASS },
    { "proxy-header", 0, CO_ARG, CO_PASS },
    { "proxy-insecure", 0, CO_BOOL, CO_PASS },
    { "proxy-key", 0, CO_ARG, CO_PASS },
    { "proxy-key-type", 0, CO_ARG, CO_PASS },
    { "proxy-negotiate", 0, CO_BOOL, CO_PASS },
    { "proxy-ntlm", 0, CO_BOOL, CO_PASS },
    { "proxy-pass", 0, CO_ARG, CO_PASS },
    { "proxy-pinnedpubkey", 0, CO_ARG, CO_PASS },
    { "proxy-service-name", 0, CO_ARG, CO_PASS },
    { "proxy-ssl-allow-beast", 0, CO_BOOL, CO_PASS },
    { "proxy-ssl-auto-client-cert", 0, CO_BOOL, CO_PASS },
    { "proxy-tls13-ciphers", 0, CO_ARG, CO_PASS },
    { "proxy-tlsauthtype", 0, CO_ARG, CO_PASS },
    { "proxy-tlspassword", 0, CO_ARG, CO_PASS },
    { "proxy-tlsuser", 0, CO_ARG, CO_PASS },
    { "proxy-tlsv1", 0, CO_FLAG, CO_PASS },
    { "proxy-user", 'U', CO_ARG, CO_PASS },
    { "proxy1.0", 0, CO_ARG, CO_PROXY },
    { "proxytunnel", 'p', CO_BOOL, CO_PASS },
    { "pubkey", 0, CO_ARG, CO_PASS },
    { "quote", 'Q', CO_ARG, CO_PASS },
    { "random-file", 0, CO_ARG, CO_PASS },
    { "range", 'r', CO_ARG, CO_PASS },
    { "rate", 0, CO_ARG, CO_PASS },
    { "raw", 0, CO_BOOL, CO_PASS },
    { "referer", 'e', CO_ARG, CO_PASS },
    { "remote-header-name", 'J', CO_BOOL, CO_PASS },
    { "remote-name", 'O', CO_BOOL, CO_PASS },
    { "remote-name-all", 0, CO_BOOL, CO_PASS },
    { "remote-time", 'R', CO_BOOL, CO_PASS },
    { "remove-on-error", 0, CO_BOOL, CO_PASS },
    { "request", 'X', CO_ARG, CO_PASS },
    { "request-target", 0, CO_ARG, CO_TARGET },
    { "resolve", 0, CO_ARG, CO_ROUTE },
    { "retry", 0, CO_ARG, CO_PASS },
    { "retry-all-errors", 0, CO_BOOL, CO_PASS },
    { "retry-connrefused", 0, CO_BOOL, CO_PASS },
    { "retry-delay", 0, CO_ARG, CO_PASS },
    { "retry-max-time", 0, CO_ARG, CO_PASS },
    { "sasl-authzid", 0, CO_ARG, CO_PASS },
    { "sasl-ir", 0, CO_BOOL, CO_PASS },
    { "service-name", 0, CO_ARG, CO_PASS },
    { "sessionid", 0, CO_BOOL, CO_PASS },
    { "show-error", 'S', CO_BOOL, CO_PASS },
    { "silent", 's', CO_BOOL, CO_PASS },
    { "socks4", 0, CO_ARG, CO_PROXY },
    { "socks4a", 0, CO_ARG, CO_PROXY },
    { "socks5", 0, CO_ARG, CO_PROXY },
    { "socks5-basic", 0, CO_BOOL, CO_PASS },
    { "socks5-gssapi", 0, CO_BOOL, CO_PASS },
    { "socks5-gssapi-nec", 0, CO_BOOL, CO_PASS },
    { "socks5-gssapi-service", 0, CO_ARG, CO_PASS },
    { "socks5-hostname", 0, CO_ARG, CO_PROXY },
    { "speed-limit", 'Y', CO_ARG, CO_PASS },
    { "speed-time", 'y', CO_ARG, CO_PASS },
    { "ssl", 0, CO_BOOL, CO_PASS },
    { "ssl-allow-beast", 0, CO_BOOL, CO_PASS },
    { "ssl-auto-client-cert", 0, CO_BOOL, CO_PASS },
    { "ssl-no-revoke", 0, CO_BOOL, CO_PASS },
    { "ssl-reqd", 0, CO_BOOL, CO_PASS },
    { "ssl-revoke-best-effort", 0, CO_BOOL, CO_PASS },
    { "sslv2", '2', CO_FLAG, CO_PASS },
    { "sslv3", '3', CO_FLAG, CO_PASS },
    { "stderr", 0, CO_ARG, CO_PASS },
    { "styled-output", 0, CO_BOOL, CO_PASS },
    { "suppress-connect-headers", 0, CO_BOOL, CO_PASS },
    { "tcp-fastopen", 0, CO_BOOL, CO_PASS },
    { "tcp-nodelay", 0, CO_BOOL, CO_PASS },
    { "telnet-option", 't', CO_ARG, CO_PASS },
    { "tftp-blksize", 0, CO_ARG, CO_PASS },
    { "tftp-no-options", 0, CO_BOOL, CO_PASS },
    { "time-cond", 'z', CO_ARG, CO_PASS },
    { "tls-max", 0, CO_ARG, CO_PASS },
    { "tls13-ciphers", 0, CO_ARG, CO_PASS },
    { "tlsauthtype", 0, CO_ARG, CO_PASS },
    { "tlspassword", 0, CO_ARG, CO_PASS },
    { "tlsuser", 0, CO_ARG, CO_PASS },
    { "tlsv1", '1', CO_FLAG, CO_PASS },
    { "tlsv1.0", 0, CO_FLAG, CO_PASS },
    { "tlsv1.1", 0, CO_FLAG, CO_PASS },
    { "tlsv1.2", 0, CO_FLAG, CO_PASS },
    { "tlsv1.3", 0, CO_FLAG, CO_PASS },
    { "tr-encoding", 0, CO_BOOL, CO_PASS },
    { "trace", 0, CO_ARG, CO_PASS },
    { "trace-ascii", 0, CO_ARG, CO_PASS },
    { "trace-time", 0, CO_BOOL, CO_PASS },
    { "unix-socket", 0, CO_ARG, CO_ROUTE },
    { "upload-file", 'T', CO_ARG, CO_UPLOAD },
    { "url", 0, CO_ARG, CO_URL },
    { "url-query", 0, CO_ARG, CO_PASS },
    { "use-ascii", 'B', CO_BOOL, CO_PASS },
    { "user", 'u', CO_ARG, CO_PASS },
    { "user-agent", 'A', CO_ARG, CO_PASS },
    { "verbose", 'v', CO_BOOL, CO_PASS },
    { "version", 'V', CO_BOOL, CO_INFO },
    { "write-out", 'w', CO_ARG, CO_PASS },
    { "xattr", 0, CO_BOOL, CO_PASS },
};
const size_t cli_curl_noptions = sizeof cli_curl_options / sizeof cli_curl_options[0];

static const struct cli_curl_option *curlargs__long(const char *name)
{
    size_t lo = 0, hi = cli_curl_noptions; /* sorted by name */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(name, cli_curl_options[mid].name);
        if (c == 0)
            return &cli_curl_options[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static const struct cli_curl_option *curlargs__short(char letter)
{
    for (size_t i = 0; i < cli_curl_noptions; i++)
        if (cli_curl_options[i].letter == letter)
            return &cli_curl_options[i];
    return NULL;
}

/* A URL curl will fetch, argv[argi] (or -1 when it is not a whole word). */
static void curlargs__url(struct cli_curl_plan *plan, const char *url, int argi)
{
    if (plan->nurls < CLI_CURL_MAX_URLS) {
        plan->urls[plan->nurls] = url;
        plan->argi[plan->nurls] = argi;
    }
    plan->nurls++;
}

/* What one option means for the token. `shown` is how the user wrote it; `argi` the index of
 * the word holding its value (-1 when attached). */
static int curlargs__apply(const struct cli_curl_option *opt, bool neg, const char *value, int argi,
                           const char *shown, struct cli_curl_plan *plan, char *why, size_t cap)
{
    switch (opt->policy) {
    case CO_PASS:
        return 0;
    case CO_URL:
        curlargs__url(plan, value, argi);
        return 0;
    case CO_UPLOAD:
        if (plan->nuploads < CLI_CURL_MAX_URLS)
            plan->uploads[plan->nuploads++] = value;
        else
            return WHY("more than %d files to upload: run latch curl several times", CLI_CURL_MAX_URLS);
        return 0;
    case CO_TARGET:
        plan->request_target = value;
        return 0;
    case CO_GLOBOFF:
        plan->globoff = !neg;
        return 0;
    case CO_DUMP:
        plan->dump_header = value;
        return 0;
    case CO_FOLLOW:
        plan->follow = !neg;
        return 0;
    case CO_INFO:
        plan->info = !neg;
        return 0;
    case CO_INSECURE:
        plan->insecure = !neg;
        return 0;
    case CO_PROXY:
        if (!plan->proxy[0])
            snprintf(plan->proxy, sizeof plan->proxy, "%s", shown);
        return 0;
    case CO_TRUSTED:
        if (neg)
            return 0;
        return WHY("%s would let curl send the token to any host a redirect names; use -L (the token "
                   "then goes as a cookie that curl drops when a redirect leaves its origin)", shown);
    case CO_CONFIG:
        return WHY("%s: latch cannot see what a config file makes curl do (URLs, proxies, redirects), "
                   "so it does not hand the token to a curl that reads one; put the options on the "
                   "command line", shown);
    case CO_NEXT:
        return WHY("%s starts another transfer with its own options; run latch curl once per transfer", shown);
    case CO_ROUTE:
        return WHY("%s sends the connection somewhere else than the URL's host and port, where the "
                   "token was not issued; latch does not hand it to such a curl", shown);
    }
    return WHY("%s: unknown option class", shown);
}

/* latch's own options, which go before `curl`: written after it, they get a clear word
 * instead of "not a curl option". */
static int curlargs__latch_option(const char *a, char *why, size_t cap)
{
    static const char *const mine[] = { "--no-browser", "--timeout" };
    for (size_t i = 0; i < sizeof mine / sizeof *mine; i++) {
        size_t n = strlen(mine[i]);
        if (!strncmp(a, mine[i], n) && (a[n] == '\0' || a[n] == '='))
            return WHY("%s is an option of latch, not of curl: put it before `curl` (latch %s curl URL …); "
                       "what follows `curl` goes to curl", mine[i], mine[i]);
    }
    return 0;
}

void cli_curl_plan_free(struct cli_curl_plan *plan)
{
    for (int i = 0; i < CLI_CURL_MAX_URLS; i++) {
        free(plan->owned[i]);
        plan->owned[i] = NULL;
    }
}

int cli_curl_read(int argc, char **argv, struct cli_curl_plan *plan, char *why, size_t cap)
{
    memset(plan, 0, sizeof *plan);
    bool options = true;
    for (int i = 0; i < argc && !plan->info; i++) {
        const char *a = argv[i];
        if (!options || a[0] != '-') { /* a URL, as curl takes any other argument */
            curlargs__url(plan, a, i);
            continue;
        }
        if (!strcmp(a, "--")) { /* curl: what follows are URLs, even with a leading '-' */
            options = false;
            continue;
        }
        if (a[1] == '-') { /* --name, --no-name: exact names only */
            const char *name = a + 2;
            bool neg = !strncmp(name, "no-", 3);
            const struct cli_curl_option *opt = curlargs__long(neg ? name + 3 : name);
            if (!opt && curlargs__latch_option(a, why, cap) != 0)
                return -1;
            if (!opt)
                return WHY("%s is not a curl 7.88 option that latch knows; latch reads curl's options "
                           "only spelled out in full (curl's abbreviations change meaning from one curl "
                           "to the next), and never guesses whether an option takes a value", a);
            if (neg && opt->arity != CO_BOOL)
                return WHY("%s: curl takes --no- only before an on/off option", a);
            const char *value = NULL;
            int vi = -1;
            if (opt->arity == CO_ARG) {
                if (i + 1 >= argc)
                    return WHY("%s needs a value", a);
                value = argv[vi = ++i];
            }
            if (curlargs__apply(opt, neg, value, vi, a, plan, why, cap) != 0)
                return -1;
            continue;
        }
        if (a[1] == '\0')
            return WHY("'-' alone is not a curl option (write a URL, or use -- before one that starts with '-')");
        for (const char *p = a + 1; *p && !plan->info; p++) { /* -abc: letters; one with a value ends it */
            const struct cli_curl_option *opt = curlargs__short(*p);
            char shown[4] = { '-', *p, 0, 0 };
            if (!opt)
                return WHY("-%c (in %s) is not a curl 7.88 option that latch knows", *p, a);
            const char *value = NULL;
            int vi = -1;
            if (opt->arity == CO_ARG) {
                if (p[1])
                    value = p + 1;
                else if (i + 1 < argc)
                    value = argv[vi = ++i];
                else
                    return WHY("%s needs a value", shown);
            }
            if (curlargs__apply(opt, false, value, vi, shown, plan, why, cap) != 0)
                return -1;
            if (value)
                break;
        }
    }
    if (plan->info)
        return 0;
    if (plan->nurls == 0)
        return WHY("give the URL (http:// or https://) to fetch");
    if (plan->nurls > CLI_CURL_MAX_URLS)
        return WHY("more than %d URLs: run latch curl several times", CLI_CURL_MAX_URLS);
    /* a URL without a scheme is https (as cloudflared reads it; curl would guess http): curl is
     * given it so written (cli_curl_args) */
    for (int i = 0; i < plan->nurls; i++) {
        if (strstr(plan->urls[i], "://"))
            continue;
        if (plan->argi[i] < 0)
            return WHY("'%s': write the URL with its scheme (https://)", plan->urls[i]);
        size_t n = strlen(plan->urls[i]) + sizeof "https://";
        if (!(plan->owned[i] = malloc(n)))
            return WHY("out of memory");
        cli_url_scheme(plan->urls[i], plan->owned[i], n);
        plan->urls[i] = plan->owned[i];
    }
    /* every URL curl will fetch is the token's origin: the first one's */
    if (cli_origin_parse(plan->urls[0], &plan->origin, why, cap) != 0)
        return -1;
    for (int i = 1; i < plan->nurls; i++) {
        struct cli_origin o;
        if (cli_origin_parse(plan->urls[i], &o, why, cap) != 0)
            return -1;
        if (!cli_origin_same(&o, &plan->origin))
            return WHY("curl would also fetch %s, which is another origin (%s) than the token's (%s): the "
                       "token is only ever sent to its own origin; run latch curl once per origin",
                       plan->urls[i], o.text, plan->origin.text);
    }
    if (!cli_cleartext_ok(&plan->origin))
        return WHY("%s is plain http to a host that is not this machine: the token would travel in "
                   "clear; use https", plan->urls[0]);
    if (plan->proxy[0] && !strcmp(plan->origin.scheme, "http"))
        return WHY("%s: a proxy reads every header of a plain-http request, the token too; latch "
                   "sends plain http only to this machine, where no proxy is needed", plan->proxy);
    if (plan->insecure && !strcmp(plan->origin.scheme, "https"))
        return WHY("-k/--insecure: curl would send the token to whoever answers for %s, with no "
                   "certificate check; give curl the CA instead (--cacert FILE)", plan->origin.host);
    return 0;
}
