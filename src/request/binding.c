/* The login binding: nonces and their tags (binding.h). */
#include "request/binding.h"

#include "http/form.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define BINDING_CONTEXT "latch login binding v1"

static bool binding__hex32(const char *s)
{
    if (!s || strlen(s) != 32)
        return false;
    for (size_t i = 0; i < 32; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static void binding__tag(const char nonce[33], char tag[33])
{
    unsigned char h[16];
    crypto_generichash(h, sizeof h, (const unsigned char *)nonce, 32,
                       (const unsigned char *)BINDING_CONTEXT, sizeof BINDING_CONTEXT - 1);
    sodium_bin2hex(tag, 33, h, sizeof h);
}

void binding_new(char nonce[33], char tag[33])
{
    unsigned char raw[16];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(nonce, 33, raw, sizeof raw);
    binding__tag(nonce, tag);
}

bool binding_tag(const char *nonce, char tag[33])
{
    if (!binding__hex32(nonce))
        return false;
    binding__tag(nonce, tag);
    return true;
}

void binding_cookie_base(const char tag[33], char out[AUTH_BINDING_NAME_MAX])
{
    snprintf(out, AUTH_BINDING_NAME_MAX, "%s%.1s", AUTH_BINDING_COOKIE_PREFIX, tag);
}

bool binding_tag_valid(const char *s)
{
    return binding__hex32(s);
}

void binding_login_url(struct strbuf *sb, const char *auth_url, const char *host, size_t host_len,
                       const char *target, size_t target_len, const char *tag)
{
    sb_addf(sb, "%s" HTTP_ACCESS_PREFIX "login/", auth_url);
    form_urlencode(sb, host, host_len);
    sb_adds(sb, "?redirect_url=");
    form_urlencode(sb, target, target_len);
    if (tag)
        sb_addf(sb, "&%s=%s", AUTH_BINDING_PARAM, tag);
}
