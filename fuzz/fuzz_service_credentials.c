/* libFuzzer target: a service token's credentials read from a client's head
 * (head_service_credentials, src/proxy/head.c), above all the app's single JSON header, whose
 * value is the client's. The input: two bytes, then a header value. The first byte gives the
 * id's buffer (1 to 64 bytes) and, in its top bit, whether the value also comes as a
 * CF-Access-Client-Id with a CF-Access-Client-Secret beside it (the two headers); the second
 * the secret's buffer (1 to 256 bytes). The value (one line) goes into a real head, parsed by
 * http_parse_request (a value it refuses is no input). Invariants: nothing is written past
 * either buffer; the two headers win and are copied whole or refused (-1), never cut; from the
 * JSON header, 1 only for an object whose two members are strings (no duplicate keys) that
 * fit, copied whole with no NUL inside (a "\u0000" would cut "admin\u0000…" to "admin"), -1
 * (single set) when one does not fit, 0 (single unset) for any other value. */
#include "http/http.h"
#include "proxy/head.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CANARY 0xa5

static void fuzz_untouched(const char *buf, size_t from, size_t cap)
{
    for (size_t i = from; i < cap; i++)
        if ((unsigned char)buf[i] != FUZZ_CANARY)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 8192)
        return 0;
    size_t idcap = 1 + (data[0] & 0x3f), seccap = 1 + data[1];
    bool pair = data[0] & 0x80;
    const char *value = (const char *)data + 2;
    size_t vlen = size - 2;
    if (memchr(value, '\r', vlen) || memchr(value, '\n', vlen)) /* one field's value, not more */
        return 0;

    static const char start[] = "GET / HTTP/1.1\r\nHost: a\r\n";
    char *head = malloc(sizeof start + 2 * vlen + 128);
    if (!head)
        abort();
    size_t n = 0;
    memcpy(head, start, sizeof start - 1);
    n += sizeof start - 1;
    if (pair) {
        n += (size_t)sprintf(head + n, "CF-Access-Client-Id: ");
        memcpy(head + n, value, vlen);
        n += vlen;
        n += (size_t)sprintf(head + n, "\r\nCF-Access-Client-Secret: s\r\n");
    }
    n += (size_t)sprintf(head + n, "X-Api-Auth: ");
    memcpy(head + n, value, vlen);
    n += vlen;
    n += (size_t)sprintf(head + n, "\r\n\r\n");
    struct http_request req;
    size_t scanned = 0;
    if (http_parse_request(head, n, &scanned, &req) <= 0) {
        free(head);
        return 0;
    }

    char id[64 + 1], secret[256 + 1];
    memset(id, FUZZ_CANARY, sizeof id);
    memset(secret, FUZZ_CANARY, sizeof secret);
    bool single = false;
    int rc = head_service_credentials(&req, "x-api-auth", id, idcap, secret, seccap, &single);
    if (rc < -1 || rc > 1)
        abort();
    fuzz_untouched(id, idcap, sizeof id);
    fuzz_untouched(secret, seccap, sizeof secret);

    if (pair) { /* the two headers, as parsed (white space around the value trimmed) */
        const struct http_header *h = http_find_header(req.headers, req.nheaders, HTTP_H_CLIENT_ID);
        if (!h || single)
            abort();
        bool fits = h->value.n < idcap && seccap > 1;
        if (rc != (fits ? 1 : -1))
            abort();
        if (rc == 1 && (memcmp(id, h->value.p, h->value.n) || id[h->value.n] || strcmp(secret, "s")))
            abort();
        free(head);
        return 0;
    }

    const struct http_header *h = http_find_header(req.headers, req.nheaders, "x-api-auth");
    if (!h)
        abort();
    json_error_t je;
    json_t *j = json_loadb(h->value.p, h->value.n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    json_t *ji = json_object_get(j, HTTP_H_CLIENT_ID), *js = json_object_get(j, HTTP_H_CLIENT_SECRET);
    bool shaped = json_is_string(ji) && json_is_string(js);
    bool nul = shaped && (memchr(json_string_value(ji), '\0', json_string_length(ji)) ||
                          memchr(json_string_value(js), '\0', json_string_length(js)));
    if (!shaped || nul) {
        if (rc != 0 || single)
            abort();
    } else {
        bool fits = json_string_length(ji) < idcap && json_string_length(js) < seccap;
        if (!single || rc != (fits ? 1 : -1))
            abort();
        if (rc == 1 && (strlen(id) != json_string_length(ji) || strcmp(id, json_string_value(ji)) ||
                        strlen(secret) != json_string_length(js) || strcmp(secret, json_string_value(js))))
            abort();
    }
    json_decref(j);
    free(head);
    return 0;
}
