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
            "       latchd check --config FILE           validate FILE (FILE:LINE:COL: message per error;\n"
            "                                            latchd check FILE does the same)\n"
            "       latchd token issue --config FILE --app NAME --email ADDRESS [--group G]...\n"
            "                          [--amr V]... [--idp NAME] [--ttl DURATION]\n"
            "                                            print an app token (break-glass, tests)\n"
            "       latchd keys rotate --config FILE     make a new signing key now\n"
            "       latchd revoke --config FILE (--email ADDRESS | --app NAME)\n"
            "                                            refuse every token issued until now\n"
            "       latchd ssh-ca --config FILE --app NAME\n"
            "                                            print the app's SSH user CA (TrustedUserCAKeys)\n"
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
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--version")) {
            printf("latchd %s\n", LATCH_VERSION);
            return 0;
        }
    }
    struct admin_args a;
    int status = admin_args_parse(argc - 1, argv + 1, &a);
    if (status != 0)
        return status;
    curl_global_init(CURL_GLOBAL_DEFAULT); /* before any thread: identity providers, SMTP */
    status = a.cmd ? a.cmd->run(&a) : server_run(a.config);
    admin_args_free(&a);
    return status;
}
