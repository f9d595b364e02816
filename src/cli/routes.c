/* Which app a path of an origin is, without asking the gateway (SPEC.md §7: a stored token adds
 * no round trip): the gateway gave the holder of a valid token every pattern of the host, in the
 * order it tries them (GET /cdn-cgi/access/app, route_each_for_host); they are compiled here by
 * the gateway's own route table (route/route.h), one app per pattern in that order, and the path
 * matched in the gateway's own normalized form (cli_path_match). So the command line picks the
 * token that the gateway will accept for that path, and never sends app A's token to a path of
 * app B on the same host. */
#include "cli/cli.h"
#include "config/config-t.h"
#include "route/route.h"

#include <stdlib.h>
#include <string.h>

const char *cli_routes_aud(json_t *routes, const char *host, const char *match_path)
{
    size_t n = json_array_size(routes);
    if (n == 0 || n > CLI_ROUTES_MAX)
        return NULL;
    struct config cfg = { 0 };
    struct app *apps = calloc(n, sizeof *apps);
    const char **pats = calloc(n, sizeof *pats);
    const char *aud = NULL;
    if (!apps || !pats)
        goto out;
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(routes, i);
        const char *p = json_string_value(json_object_get(r, "pattern"));
        const char *a = json_string_value(json_object_get(r, "aud"));
        if (!p || !a)
            goto out;
        pats[i] = p;
        apps[i].name = (char *)a; /* the table keeps pointers: the AUD comes back as the app's name */
        apps[i].domains = (char **)&pats[i];
        apps[i].ndomains = 1;
    }
    cfg.apps = apps;
    cfg.napps = n;
    char *err = NULL;
    struct route_table *rt = route_build(&cfg, &err);
    free(err);
    const struct app *app = rt ? route_match(rt, host, strlen(host), match_path, strlen(match_path)) : NULL;
    aud = app ? app->name : NULL;
    route_free(rt);
out:
    free(apps);
    free(pats);
    return aud;
}
