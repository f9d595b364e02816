/* The CLI's HTTP client (libcurl) and the token reading it needs. */
#include "cli/cli.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CLI_MAX_BODY (1024 * 1024)

static size_t cli__write(char *data, size_t size, size_t n, void *arg)
{
    struct cli_http *h = arg;
    size_t add = size * n;
    if (h->len + add > CLI_MAX_BODY)
        return 0;
    char *p = realloc(h->body, h->len + add + 1);
    if (!p)
        return 0;
    memcpy(p + h->len, data, add);
    h->body = p;
    h->len += add;
    h->body[h->len] = '\0';
    return add;
}

bool cli_http(const char *url, const char *form, const char *header, long timeout, struct cli_http *out,
              char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    CURL *curl = curl_easy_init();
    if (!curl) {
        snprintf(err, errcap, "cannot start libcurl");
        return false;
    }
    struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
    if (header)
        hdrs = curl_slist_append(hdrs, header);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, cli__write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "latch-cli/0.2");
    if (form)
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, form);
    const char *cab = getenv("LATCH_CA_BUNDLE"); /* a private CA for the gateway */
    if (cab && *cab)
        curl_easy_setopt(curl, CURLOPT_CAINFO, cab);
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK) {
        snprintf(err, errcap, "%s: %s", url, curl_easy_strerror(rc));
        cli_http_free(out);
        return false;
    }
    return true;
}

void cli_http_free(struct cli_http *h)
{
    free(h->body);
    h->body = NULL;
    h->len = 0;
}

int cli_url_split(const char *url, char *scheme, size_t scap, char *host, size_t hcap)
{
    const char *p = strstr(url, "://");
    if (!p || (size_t)(p - url) >= scap)
        return -1;
    memcpy(scheme, url, (size_t)(p - url));
    scheme[p - url] = '\0';
    if (strcmp(scheme, "http") && strcmp(scheme, "https"))
        return -1;
    p += 3;
    size_t n = strcspn(p, "/?#");
    if (n == 0 || n >= hcap || memchr(p, '@', n))
        return -1;
    char tmp[512];
    if (n >= sizeof tmp)
        return -1;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    return cli_host_key(tmp, host, hcap);
}

json_t *cli_jwt_payload(const char *tok)
{
    const char *d1 = tok ? strchr(tok, '.') : NULL, *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    unsigned char buf[16384];
    size_t len;
    if (!d2 || sodium_base642bin(buf, sizeof buf, d1 + 1, (size_t)(d2 - d1 - 1), NULL, &len, NULL,
                                 sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
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
