/* libFuzzer target: latch's reading of curl's command line and of URLs (src/cli/curlargs.c,
 * origin.c). The input is argv, words separated by NUL bytes. Whatever it is, an accepted
 * command line names at least one URL, every URL it names is read to the same origin, that
 * origin's host holds only [a-z0-9.-] with no empty label (or is [::1]), plain http goes only to a loopback
 * name, no proxy comes with plain http, and a URL written without a scheme is given to curl as
 * https in the word it was.
 * Any other acceptance aborts. */
#include "cli/cli.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXARGS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *argv[MAXARGS + 1];
    int argc = 0;
    for (char *p = buf; p <= buf + size && argc < MAXARGS; p += strlen(p) + 1)
        argv[argc++] = p;
    argv[argc] = NULL;
    struct cli_curl_plan plan;
    char why[1024];
    if (cli_curl_read(argc, argv, &plan, why, sizeof why) == 0 && !plan.info) {
        if (plan.nurls < 1 || plan.nurls > CLI_CURL_MAX_URLS)
            abort();
        for (int i = 0; i < plan.nurls; i++) {
            struct cli_origin o;
            if (cli_origin_parse(plan.urls[i], &o, why, sizeof why) != 0 || !cli_origin_same(&o, &plan.origin))
                abort();
        }
        const char *h = plan.origin.host;
        if (strcmp(h, "[::1]") != 0 && (!*h || h[0] == '.' || h[strlen(h) - 1] == '.' || strstr(h, "..") ||
                                         strspn(h, "abcdefghijklmnopqrstuvwxyz0123456789.-") != strlen(h)))
            abort();
        if (!cli_cleartext_ok(&plan.origin))
            abort();
        if (plan.proxy[0] && !strcmp(plan.origin.scheme, "http"))
            abort();
        for (int i = 0; i < plan.nurls; i++) /* a URL latch rewrote is the word curl gets */
            if (plan.owned[i] && (plan.argi[i] < 0 || plan.argi[i] >= argc || strncmp(plan.owned[i], "https://", 8)))
                abort();
    }
    cli_curl_plan_free(&plan);
    free(buf);
    return 0;
}
