/* E-mail addresses (email.h): the form accepted at sign-in and in policies, and the two ways
 * of comparing them. */
#include "core/email.h"

#include <string.h>
#include <strings.h>

static char email__lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

static bool email__alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 5322 §3.2.3 atext, what a dot-atom is made of besides the dots, without '%' and '!':
 * mail systems still read those as routes to another address ("the percent hack":
 * a%corp.com@relay reaches a@corp.com; UUCP bang paths: corp.com!a@relay reaches a@corp.com,
 * both rewritten by default in Postfix), so an address holding one is not one plain address. */
static bool email__atext(unsigned char c)
{
    return email__alnum(c) || (c && strchr("#$&'*+-/=?^_`{|}~", c));
}

bool email_separator_ok(char c)
{
    return c && !email__alnum((unsigned char)c) && email__atext((unsigned char)c);
}

/* The domain after the '@': LDH labels (RFC 1035 §2.3.1, RFC 5321 §4.1.2), no empty label. */
static const char *email__check_domain(const char *d)
{
    size_t n = strlen(d), label = 0;
    bool digits = true; /* the current label is all digits so far */
    if (n == 0)
        return "the e-mail address has an empty domain";
    if (d[0] == '[')
        return "the e-mail address has an IP-literal domain: give its DNS name";
    if (n > 253)
        return "the e-mail address has an invalid domain (longer than 253 characters)";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '.') {
            if (label == 0 || d[i - 1] == '-')
                return "the e-mail address has an invalid domain (an empty label, or one ending "
                       "in '-')";
            label = 0;
            digits = true;
            continue;
        }
        if (c >= 0x80)
            return "the e-mail address is not ASCII: write an international domain in its "
                   "xn-- form";
        if (!email__alnum(c) && c != '-')
            return "the e-mail address has an invalid domain (letters, digits, '-' and '.' "
                   "only)";
        if (c == '-' && label == 0)
            return "the e-mail address has an invalid domain (a label starting with '-')";
        digits &= c >= '0' && c <= '9';
        if (++label > 63)
            return "the e-mail address has an invalid domain (a label longer than 63 "
                   "characters)";
    }
    if (label == 0)
        return "the e-mail address has a domain ending in '.': write it without";
    if (d[n - 1] == '-')
        return "the e-mail address has an invalid domain (a label ending in '-')";
    if (digits)
        return "the e-mail address has an IP address or a number for a domain: give its DNS name";
    return NULL;
}

const char *email_check(const char *s)
{
    if (!s || !*s)
        return "an e-mail address is needed";
    if (strlen(s) > EMAIL_MAX_LEN)
        return "the e-mail address is longer than 254 characters";
    const char *at = strchr(s, '@');
    if (!at)
        return "an e-mail address needs an '@'";
    if (strchr(at + 1, '@'))
        return "an e-mail address has exactly one '@'";
    if (at == s)
        return "the e-mail address has an empty local part";
    if (at - s > 64)
        return "the local part of the e-mail address is longer than 64 characters";
    for (const char *p = s; p < at; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c == 0x7f)
            return "an e-mail address contains no spaces or control characters";
        if (c >= 0x80)
            return "the e-mail address is not ASCII (international local parts are not accepted)";
        if (c == '.' && (p == s || p + 1 == at || p[1] == '.'))
            return "the local part of the e-mail address starts or ends with a dot, or has two "
                   "in a row";
        if (c == '%' || c == '!')
            return "the e-mail address contains '%' or '!', which mail systems read as a route "
                   "to another address";
        if (c != '.' && !email__atext(c))
            return "the e-mail address contains a character that needs quoting (quoted local "
                   "parts are not accepted)";
    }
    return email__check_domain(at + 1);
}

/* gmail.com and googlemail.com: one mail system, which ignores dots in local parts. */
static bool email__gmail(const char *domain)
{
    return !strcasecmp(domain, "gmail.com") || !strcasecmp(domain, "googlemail.com");
}

/* The '@' of an address with exactly one, else NULL. */
static const char *email__at(const char *s)
{
    const char *at = s ? strchr(s, '@') : NULL;
    return at && at != s && at[1] && !strchr(at + 1, '@') ? at : NULL;
}

/* Whether c, found after the first character of a local part, starts a tag. */
static bool email__tag(char c, const char *seps, bool gmail)
{
    return c && (strchr(seps, c) || (gmail && c == '+'));
}

bool email_matches(const char *rule, const char *addr, const char *seps, enum email_match how)
{
    const char *ra = email__at(rule), *aa = email__at(addr);
    if (!ra || !aa)
        return false;
    if (how == EMAIL_EXACT)
        return strcasecmp(rule, addr) == 0;
    bool gmail = email__gmail(ra + 1) && email__gmail(aa + 1);
    if (!gmail && strcasecmp(ra + 1, aa + 1) != 0)
        return false;
    const char *r = rule, *a = addr;
    for (;;) { /* the rule's local part must be a prefix of the address's (dots aside at Gmail) */
        while (gmail && *r == '.')
            r++;
        while (gmail && *a == '.')
            a++;
        if (r == ra)
            break;
        if (a == aa || email__lower(*r) != email__lower(*a))
            return false;
        r++;
        a++;
    }
    /* ...followed by nothing, or by a tag */
    return a == aa || email__tag(*a, seps ? seps : EMAIL_DEFAULT_SEPARATORS, gmail);
}

bool email_domain_matches(const char *domain, const char *addr, enum email_match how)
{
    const char *at = email__at(addr);
    if (!at || !domain)
        return false;
    return !strcasecmp(at + 1, domain) || (how == EMAIL_MAILBOX && email__gmail(at + 1) &&
                                           email__gmail(domain));
}

bool email_mailbox(const char *addr, const char *seps, char *out, size_t cap)
{
    const char *at = email__at(addr);
    if (!at || cap == 0)
        return false;
    bool gmail = email__gmail(at + 1);
    const char *domain = gmail ? "gmail.com" : at + 1;
    size_t n = 0;
    for (const char *p = addr; p < at; p++) {
        if (p > addr && email__tag(*p, seps ? seps : EMAIL_DEFAULT_SEPARATORS, gmail))
            break;
        if (gmail && *p == '.')
            continue;
        if (n + 1 >= cap)
            return false;
        out[n++] = email__lower(*p);
    }
    if (n + 1 + strlen(domain) + 1 > cap)
        return false;
    out[n++] = '@';
    for (const char *p = domain; *p; p++)
        out[n++] = email__lower(*p);
    out[n] = '\0';
    return true;
}
