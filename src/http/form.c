/* Form and query decoding (form.h). */
#include "http/form.h"

#include <string.h>

static int form__hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes one component; plus_space turns '+' into ' ' (form values). */
static int form__decode(const char *in, size_t n, char *out, size_t cap, int plus_space)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        if (ch == '%') {
            int h = i + 1 < n ? form__hex(in[i + 1]) : -1;
            int l = i + 2 < n ? form__hex(in[i + 2]) : -1;
            if (h < 0 || l < 0)
                return -1;
            ch = (char)(h * 16 + l);
            i += 2;
        } else if (ch == '+' && plus_space) {
            ch = ' ';
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = ch;
    }
    out[o] = '\0';
    return (int)o;
}

int form_pct_decode(const char *in, size_t n, char *out, size_t cap)
{
    return form__decode(in, n, out, cap, 0);
}

/* The pair at *p (up to the next '&' or end): its name and value; moves *p past it. */
static void form__pair(const char **p, const char *end, const char **name, size_t *name_len,
                       const char **value, size_t *value_len)
{
    const char *amp = memchr(*p, '&', (size_t)(end - *p));
    const char *pe = amp ? amp : end;
    const char *eq = memchr(*p, '=', (size_t)(pe - *p));
    *name = *p;
    *name_len = (size_t)((eq ? eq : pe) - *p);
    *value = eq ? eq + 1 : pe;
    *value_len = (size_t)(pe - *value);
    *p = pe + (amp ? 1 : 0);
}

int form_get(const char *s, size_t n, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name), kl, vl;
    const char *p = s, *end = s + n, *k, *v;
    while (p < end) {
        form__pair(&p, end, &k, &kl, &v, &vl);
        if (kl == nl && !memcmp(k, name, nl)) {
            int len = form__decode(v, vl, out, cap, 1);
            if (len < 0)
                return -1;
            for (int i = 0; i < len; i++)
                if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
                    return -1;
            return len;
        }
    }
    return -1;
}

int form_count(const char *s, size_t n, const char *name)
{
    size_t nl = strlen(name), kl, vl;
    const char *p = s, *end = s + n, *k, *v;
    int count = 0;
    while (p < end) {
        form__pair(&p, end, &k, &kl, &v, &vl);
        count += kl == nl && !memcmp(k, name, nl);
    }
    return count;
}

void form_urlencode(struct strbuf *sb, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~' || ch == '/' || ch == ':') {
            sb_add(sb, &s[i], 1);
        } else {
            char e[3] = { '%', hex[ch >> 4], hex[ch & 15] };
            sb_add(sb, e, 3);
        }
    }
}
