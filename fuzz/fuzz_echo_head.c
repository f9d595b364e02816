/* libFuzzer target: the echo origin's reading of its request (src/proxy/head.c): head_lines_read
 * on any bytes (the head it reads is built by the gateway, but its names and values are the
 * client's), then head_fields_json on the fields it found and head_json_pretty on that JSON.
 * Invariants: every slice lies inside the input, a field name holds no ':' and a value starts
 * with no blank, there are no more fields than lines; the JSON is valid and has at most one
 * member per field (checked with jansson, which loads no NUL in a key); the page holds no '<', '>' or '"' of its own outside the spans it adds. */
#include "core/strbuf.h"
#include "proxy/head.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void fuzz_slice_in(struct http_slice s, const char *base, size_t len)
{
    if (s.n == 0)
        return;
    if (!s.p || s.p < base || s.p + s.n > base + len || s.n > len)
        abort();
}

/* The page with our tags taken out: no markup of the input's may remain. */
static void fuzz_page_escaped(const char *p, size_t n)
{
    static const char *const tags[] = { "<span class=\"k\">", "<span class=\"s id\">", "<span class=\"s\">",
                                         "<span class=\"n\">", "</span>" };
    for (size_t i = 0; i < n;) {
        size_t t = 0;
        for (size_t k = 0; k < sizeof tags / sizeof *tags && !t; k++)
            if (n - i >= strlen(tags[k]) && !memcmp(p + i, tags[k], strlen(tags[k])))
                t = strlen(tags[k]);
        if (t) {
            i += t;
            continue;
        }
        if (p[i] == '<' || p[i] == '>' || p[i] == '"')
            abort();
        i++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *in = malloc(size ? size : 1); /* exact size: ASan sees any over-read */
    if (!in)
        abort();
    memcpy(in, data, size);
    struct head_lines h;
    if (head_lines_read(in, size, &h) != 0) {
        free(in);
        return 0;
    }
    fuzz_slice_in(h.method, in, size);
    fuzz_slice_in(h.path, in, size);
    fuzz_slice_in(h.query, in, size);
    fuzz_slice_in(h.version, in, size);
    if (!h.has_query && h.query.n)
        abort();
    size_t lines = 0;
    for (const char *p = in; (p = memmem(p, size - (size_t)(p - in), "\r\n", 2)); p += 2)
        lines++;
    if (h.nfields > lines)
        abort();
    bool nul_name = false; /* valid JSON ("\u0000" in a key) that jansson does not load */
    for (size_t i = 0; i < h.nfields; i++) {
        nul_name = nul_name || memchr(h.fields[i].name.p, '\0', h.fields[i].name.n);
        fuzz_slice_in(h.fields[i].name, in, size);
        fuzz_slice_in(h.fields[i].value, in, size);
        if (memchr(h.fields[i].name.p, ':', h.fields[i].name.n))
            abort();
        if (h.fields[i].value.n && (h.fields[i].value.p[0] == ' ' || h.fields[i].value.p[0] == '\t'))
            abort();
    }

    struct strbuf j, page;
    sb_init(&j, 1 << 20);
    head_fields_json(&j, h.fields, h.nfields);
    if (!j.overflow) {
        json_error_t je;
        json_t *o = json_loadb(j.p, j.len, JSON_ALLOW_NUL, &je);
        if (!nul_name && (!json_is_object(o) || json_object_size(o) > h.nfields))
            abort();
        json_decref(o);
        sb_init(&page, 16 * j.len + 64);
        head_json_pretty(&page, j.p, j.len);
        if (!page.overflow)
            fuzz_page_escaped(page.p, page.len);
        sb_free(&page);
    }
    sb_free(&j);
    free(h.fields);
    free(in);
    return 0;
}
