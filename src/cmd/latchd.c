/* latchd: the gateway daemon and its admin subcommands. A thin main over the library. */
#include "admin/admin.h"
#include "core/version.h"
#include "server/server.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: latchd --config FILE                 run the gateway in the foreground\n"
            "       latchd status --config FILE [--json] what the running daemon is doing\n"
            "       latchd reload --config FILE          reload the daemon's configuration, with the result\n"
            "       latchd check --config FILE           validate FILE (FILE:LINE:COL: message per error)\n"
            "       latchd token issue --config FILE --app NAME --email ADDRESS [--group G]...\n"
            "                          [--amr V]... [--idp NAME] [--ttl DURATION]\n"
            "                                            print an app token (break-glass, tests)\n"
            "       latchd keys rotate --config FILE     make a new signing key now\n"
            "       latchd revoke --config FILE (--email ADDRESS | --app NAME)\n"
            "                                            refuse every token issued until now\n"
            "       latchd service-token create NAME --config FILE [--duration 8760h]\n"
            "                                            print a new client id and secret\n"
            "       latchd policy-test --config FILE --url URL [--email E] [--group G]...\n"
            "                          [--ip IP] [--idp NAME] [--amr V]... [--service-token NAME]\n"
            "                          [--cert-cn CN]    explain the decision for a request\n"
            "       latchd --version | --help\n"
            "\n"
            "status, reload, revoke and keys rotate talk to the running daemon through its admin\n"
            "socket, STATE_DIR/admin.sock (root and latchd's user only); the change is in force on\n"
            "every worker when the command returns. With no daemon running, revoke and keys rotate\n"
            "work on STATE_DIR directly (a daemon started later reads it), and status and reload\n"
            "exit 1.\n"
            "\n"
            "signals: SIGHUP reloads the configuration (a bad file is refused and the running\n"
            "one kept), SIGTERM/SIGINT drain (finish requests in flight, then exit 0), SIGUSR1\n"
            "reopens log files. Under systemd (Type=notify) latchd reports READY=1, RELOADING=1\n"
            "and STOPPING=1 on $NOTIFY_SOCKET.\n"
            "exit status: 0 ok (policy-test: admitted), 1 failed or not running (policy-test:\n"
            "refused), 2 invalid configuration or reload refused, 64 usage error.\n"
            "See latchd(8).\n");
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    char *words[2] = { NULL, NULL };
    char *rest[64];
    int nwords = 0, nrest = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            config = argv[++i];
        } else if (!strncmp(argv[i], "--config=", 9)) {
            config = argv[i] + 9;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--version")) {
            printf("latchd %s\n", LATCH_VERSION);
            return 0;
        } else if (argv[i][0] != '-' && nwords < 2 && nrest == 0 &&
                   (nwords == 0 || !strcmp(words[0], "token") || !strcmp(words[0], "keys") ||
                    !strcmp(words[0], "service-token"))) {
            words[nwords++] = argv[i];
        } else if (nrest < 64) {
            rest[nrest++] = argv[i];
            if (argv[i][0] == '-' && i + 1 < argc && argv[i + 1][0] != '-')
                rest[nrest++] = argv[++i];
        }
    }
    if (!config) {
        fprintf(stderr, "latchd: --config FILE is required\n");
        usage(stderr);
        return 64;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT); /* before any thread: identity providers, SMTP */
    const char *w0 = words[0] ? words[0] : "", *w1 = words[1] ? words[1] : "";
    if (!words[0] && nrest == 0)
        return server_run(config);
    if (!strcmp(w0, "check") && !words[1])
        return admin_check(config, nrest, rest);
    if (!strcmp(w0, "status") && !words[1])
        return admin_status(config, nrest, rest);
    if (!strcmp(w0, "reload") && !words[1])
        return admin_reload(config, nrest, rest);
    if (!strcmp(w0, "token") && !strcmp(w1, "issue"))
        return admin_token_issue(config, nrest, rest);
    if (!strcmp(w0, "keys") && !strcmp(w1, "rotate"))
        return admin_keys_rotate(config, nrest, rest);
    if (!strcmp(w0, "revoke") && !words[1])
        return admin_revoke(config, nrest, rest);
    if (!strcmp(w0, "service-token") && !strcmp(w1, "create"))
        return admin_service_token_create(config, nrest, rest);
    if (!strcmp(w0, "policy-test") && !words[1])
        return admin_policy_test(config, nrest, rest);
    fprintf(stderr, "latchd: unknown command '%s%s%s'\n", w0, words[1] ? " " : "", w1);
    usage(stderr);
    return 64;
}
