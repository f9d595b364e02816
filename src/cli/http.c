/* The CLI's HTTP client (libcurl) and the token reading it needs. libcurl is loaded with
 * dlopen the first time it is needed: `latch curl` with a stored token never needs it, and
 * loading libcurl and its thirty-odd libraries would cost that path ~10 ms (bench/cli.sh). */
#include "cli/cli.h"
#include "core/base64url.h"
#include "core/strbuf.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define CLI_MAX_BODY (1024 * 1024)

static struct {
    bool loaded;
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_perform)(CURL *);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    void (*easy_cleanup)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
} cli__curl;

static bool cli__load_curl(char *err, size_t errcap)
{
    if (cli__curl.loaded)
        return true;
    void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    CURLcode (*global_init)(long) = h ? (CURLcode (*)(long))dlsym(h, "curl_global_init") : NULL;
    if (!global_init) {
        snprintf(err, errcap, "cannot load libcurl (install libcurl4): %s", dlerror());
        return false;
    }
    *(void **)&cli__curl.easy_init = dlsym(h, "curl_easy_init");
    *(void **)&cli__curl.easy_setopt = dlsym(h, "curl_easy_setopt");
    *(void **)&cli__curl.easy_perform = dlsym(h, "curl_easy_perform");
    *(void **)&cli__curl.easy_getinfo = dlsym(h, "curl_easy_getinfo");
    *(void **)&cli__curl.easy_cleanup = dlsym(h, "curl_easy_cleanup");
    *(void **)&cli__curl.easy_strerror = dlsym(h, "curl_easy_strerror");
    *(void **)&cli__curl.slist_append = dlsym(h, "curl_slist_append");
    *(void **)&cli__curl.slist_free_all = dlsym(h, "curl_slist_free_all");
    if (!cli__curl.easy_init || !cli__curl.easy_setopt || !cli__curl.easy_perform ||
        !cli__curl.easy_getinfo || !cli__curl.easy_cleanup || !cli__curl.easy_strerror ||
        !cli__curl.slist_append || !cli__curl.slist_free_all || global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errcap, "libcurl is incomplete or failed to start");
        return false;
    }
    cli__curl.loaded = true;
    return true;
}

/* The answer's body: at most CLI_MAX_BODY bytes (a longer one fails the transfer). */
static size_t cli__write(char *data, size_t size, size_t n, void *arg)
{
    return sb_add(arg, data, size * n) ? size * n : 0;
}

static size_t cli__header(char *data, size_t size, size_t n, void *arg)
{
    struct cli_http *h = arg;
    size_t len = size * n;
    static const char name[] = "set-cookie: CF_Authorization=";
    if (len > sizeof name - 1 && !strncasecmp(data, name, 12) && !strncmp(data + 12, name + 12, sizeof name - 13)) {
        const char *v = data + sizeof name - 1;
        size_t vl = strcspn(v, ";\r\n");
        if (vl && vl < len) {
            free(h->cookie);
            h->cookie = strndup(v, vl);
        }
    }
    return len;
}

bool cli_http(const char *url, const char *form, const char *const *headers, long timeout,
              struct cli_http *out, char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    if (!cli__load_curl(err, errcap))
        return false;
    CURL *curl = cli__curl.easy_init();
    if (!curl) {
        snprintf(err, errcap, "cannot start libcurl");
        return false;
    }
    struct curl_slist *hdrs = cli__curl.slist_append(NULL, "Accept: application/json");
    for (size_t i = 0; headers && headers[i]; i++)
        hdrs = cli__curl.slist_append(hdrs, headers[i]);
    cli__curl.easy_setopt(curl, CURLOPT_URL, url);
    cli__curl.easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    cli__curl.easy_setopt(curl, CURLOPT_WRITEFUNCTION, cli__write);
    struct strbuf body;
    sb_init(&body, CLI_MAX_BODY + 1);
    cli__curl.easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    cli__curl.easy_setopt(curl, CURLOPT_HEADERFUNCTION, cli__header);
    cli__curl.easy_setopt(curl, CURLOPT_HEADERDATA, out);
    cli__curl.easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    cli__curl.easy_setopt(curl, CURLOPT_TIMEOUT, timeout);
    cli__curl.easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    cli__curl.easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (!strncasecmp(url, "http://", 7)) /* plain http goes to this machine only (cli_cleartext_ok): */
        cli__curl.easy_setopt(curl, CURLOPT_PROXY, ""); /* no proxy of the environment reads its headers */
    cli__curl.easy_setopt(curl, CURLOPT_USERAGENT, "latch-cli/0.2");
    if (form)
        cli__curl.easy_setopt(curl, CURLOPT_POSTFIELDS, form);
    const char *cab = getenv("LATCH_CA_BUNDLE"); /* a private CA for the gateway */
    if (cab && *cab)
        cli__curl.easy_setopt(curl, CURLOPT_CAINFO, cab);
    CURLcode rc = cli__curl.easy_perform(curl);
    cli__curl.easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
    cli__curl.slist_free_all(hdrs);
    cli__curl.easy_cleanup(curl);
    out->body = body.p;
    out->len = body.len;
    if (rc != CURLE_OK) {
        snprintf(err, errcap, "%s: %s", url, cli__curl.easy_strerror(rc));
        cli_http_free(out);
        return false;
    }
    return true;
}

void cli_http_free(struct cli_http *h)
{
    free(h->body);
    free(h->cookie);
    h->cookie = NULL;
    h->body = NULL;
    h->len = 0;
}

json_t *cli_jwt_payload(const char *tok)
{
    const char *d1 = tok ? strchr(tok, '.') : NULL, *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    unsigned char buf[16384];
    size_t len;
    if (!d2 || b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), buf, sizeof buf, &len) != 0)
        return NULL;
    json_error_t je;
    json_t *j = json_loadb((const char *)buf, len, 0, &je);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

bool cli_jwt_fresh(const char *tok, int64_t margin)
{
    json_t *p = cli_jwt_payload(tok);
    json_t *exp = json_object_get(p, "exp");
    bool fresh = json_is_number(exp) && json_number_value(exp) > (double)(time(NULL) + margin);
    json_decref(p);
    return fresh;
}

char *cli_jwt_aud(const char *tok)
{
    json_t *p = cli_jwt_payload(tok);
    json_t *a = json_object_get(p, "aud");
    const char *s = json_is_array(a) ? json_string_value(json_array_get(a, 0)) : json_string_value(a);
    char *out = s ? strdup(s) : NULL;
    json_decref(p);
    return out;
}

bool cli_jwt_has_aud(const char *tok, const char *aud)
{
    json_t *p = cli_jwt_payload(tok);
    json_t *a = json_object_get(p, "aud");
    bool ok = json_is_string(a) && !strcmp(json_string_value(a), aud);
    for (size_t i = 0; json_is_array(a) && i < json_array_size(a) && !ok; i++)
        ok = json_string_value(json_array_get(a, i)) && !strcmp(json_string_value(json_array_get(a, i)), aud);
    json_decref(p);
    return ok;
}
