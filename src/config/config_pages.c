/* Keys that only change how the gateway's own pages look (docs/configuration.md): an app's
 * `display_name`, and `branding:` (the organization's name, accent colour and logo). The logo
 * file is read here, once, when the configuration is loaded: pages inline it as a data: URI, so
 * they never load anything from elsewhere, and `latchd check` reports a bad file at its key. */
#include "config/config-int.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_DISPLAY_NAME_MAX 80  /* bytes: a title, not a paragraph */
#define CONFIG_BRAND_NAME_MAX   60
#define CONFIG_LOGO_MAX         (32 * 1024) /* bytes of file: every page carries it inline */

void config__display_name(struct config__ctx *c, const struct config__node *n, struct app *a)
{
    if (n) {
        a->display_name = config__string(c, n, "display_name");
        if (a->display_name && strlen(a->display_name) > CONFIG_DISPLAY_NAME_MAX)
            config__error(c, n->pos, "'display_name' is longer than %d bytes", CONFIG_DISPLAY_NAME_MAX);
        return;
    }
    if (!a->ndomains || !a->domains[0])
        return;
    /* the first domain as a person would type it: a pattern ending in "/" "*" reads without
     * it ("files.example.com/private") */
    a->display_name = config__strdup(c, a->domains[0]);
    size_t len = a->display_name ? strlen(a->display_name) : 0;
    if (len >= 2 && !strcmp(a->display_name + len - 2, "/*"))
        a->display_name[len - 2] = '\0';
}

static int config_hex(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
         : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* "#rgb" or "#rrggbb" into "#rrggbb" (lowercase); false for anything else (names, rgb(),
 * alpha): the value goes into the pages' CSS, so only these characters may. */
static bool config_colour(const char *s, char out[8])
{
    size_t n = strlen(s);
    if (s[0] != '#' || (n != 4 && n != 7))
        return false;
    for (size_t i = 1; i < n; i++)
        if (config_hex(s[i]) < 0)
            return false;
    static const char hex[] = "0123456789abcdef";
    out[0] = '#';
    for (int i = 0; i < 6; i++)
        out[1 + i] = hex[config_hex(s[n == 4 ? 1 + i / 2 : 1 + i])];
    out[7] = '\0';
    return true;
}

/* Skips what may come before an SVG's root element: a byte order mark, white space, the XML
 * declaration, comments, a doctype. */
static const char *config_svg_root(const char *p, const char *end)
{
    if (end - p >= 3 && !memcmp(p, "\xef\xbb\xbf", 3))
        p += 3;
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
            p++;
        const char *close = NULL;
        if (end - p >= 5 && !memcmp(p, "<?xml", 5))
            close = memmem(p, (size_t)(end - p), "?>", 2);
        else if (end - p >= 4 && !memcmp(p, "<!--", 4))
            close = memmem(p + 4, (size_t)(end - p - 4), "-->", 3);
        else if (end - p >= 9 && !strncasecmp(p, "<!DOCTYPE", 9))
            close = memchr(p, '>', (size_t)(end - p));
        else
            return p;
        if (!close)
            return end;
        p = close + (*close == '-' ? 3 : *close == '?' ? 2 : 1);
    }
}

/* The image type of a logo by its content (the file name says nothing): NULL when it is not
 * PNG, JPEG or SVG. */
static const char *config_logo_type(const unsigned char *d, size_t n)
{
    if (n >= 8 && !memcmp(d, "\x89PNG\r\n\x1a\n", 8))
        return "image/png";
    if (n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff)
        return "image/jpeg";
    const char *end = (const char *)d + n, *root = config_svg_root((const char *)d, end);
    if (end - root >= 5 && !memcmp(root, "<svg", 4) &&
        (root[4] == ' ' || root[4] == '\t' || root[4] == '\r' || root[4] == '\n' || root[4] == '>'))
        return "image/svg+xml";
    return NULL;
}

/* Reads the logo file into a data: URI; NULL after an error at the key. */
static char *config_logo(struct config__ctx *c, const struct config__node *n, const char *path)
{
    char *uri = NULL;
    unsigned char *data = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        config__error(c, n->pos, "'branding.logo': cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        config__error(c, n->pos, "'branding.logo': %s is not a regular file", path);
        goto out;
    }
    if (st.st_size > CONFIG_LOGO_MAX || st.st_size == 0) {
        config__error(c, n->pos, "'branding.logo': %s is %lld bytes: a logo must be 1 to %d bytes "
                      "(every page carries it)", path, (long long)st.st_size, CONFIG_LOGO_MAX);
        goto out;
    }
    size_t len = (size_t)st.st_size, got = 0;
    data = config__calloc(c, len + 1, 1);
    while (data && got < len) {
        ssize_t r = read(fd, data + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            config__error(c, n->pos, "'branding.logo': cannot read %s: %s", path,
                          r < 0 ? strerror(errno) : "the file shrank while it was read");
            goto out;
        }
        got += (size_t)r;
    }
    if (!data)
        goto out;
    const char *type = config_logo_type(data, len);
    if (!type) {
        config__error(c, n->pos, "'branding.logo': %s is not a PNG, JPEG or SVG image", path);
        goto out;
    }
    size_t b64 = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
    size_t head = strlen("data:;base64,") + strlen(type);
    uri = config__calloc(c, head + b64, 1);
    if (uri) {
        snprintf(uri, head + 1, "data:%s;base64,", type);
        sodium_bin2base64(uri + head, b64, data, len, sodium_base64_VARIANT_ORIGINAL);
    }
out:
    if (fd >= 0)
        close(fd);
    free(data);
    return uri;
}

void config__branding(struct config__ctx *c, const struct config__node *n, struct config *cfg)
{
    static const char *const keys[] = {"name", "accent", "logo", NULL};
    const struct config__node *v[3];
    struct branding *b = &cfg->branding;
    if (!config__map(c, n, "branding", keys, v))
        return;
    if (v[0] && (b->name = config__string(c, v[0], "branding.name")) &&
        strlen(b->name) > CONFIG_BRAND_NAME_MAX)
        config__error(c, v[0]->pos, "'branding.name' is longer than %d bytes", CONFIG_BRAND_NAME_MAX);
    if (v[1] && config__is_null(v[1]))
        config__error(c, v[1]->pos, "'branding.accent' is empty: write the colour in quotes, "
                      "accent: \"#0a7\" (YAML reads an unquoted # as the start of a comment)");
    char *accent = v[1] && !config__is_null(v[1]) ? config__string(c, v[1], "branding.accent") : NULL;
    if (accent && !config_colour(accent, b->accent))
        config__error(c, v[1]->pos, "'branding.accent' must be a colour written \"#rrggbb\" or "
                      "\"#rgb\" (quoted: YAML reads # as a comment), got '%s'", accent);
    free(accent);
    char *logo = v[2] ? config__string(c, v[2], "branding.logo") : NULL;
    if (logo)
        b->logo = config_logo(c, v[2], logo);
    free(logo);
}

void config__branding_free(struct branding *b)
{
    free(b->name);
    free(b->logo);
}
