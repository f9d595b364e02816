/* libFuzzer target: email_check, email_matches and email_mailbox (src/core/email.c) on one
 * address and, after the first NUL, a rule. Invariants: an accepted address has exactly one
 * '@', nothing outside printable ASCII, and matches itself both ways; its mailbox is again an
 * accepted address that the address's mailbox rule covers; an exact match is always a mailbox
 * match (refusing never covers less than admitting); nothing malformed matches anything. */
#include "core/email.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *in = malloc(size + 1); /* exact size: ASan sees any over-read */
    if (!in)
        abort();
    memcpy(in, data, size);
    in[size] = '\0';
    const char *addr = in, *rule = memchr(in, '\0', size) ? in + strlen(in) + 1 : "a@b.c";
    if (rule > in + size)
        rule = "a@b.c";
    const char *seps = size && (data[0] & 1) ? "+-" : NULL;
    bool ok = email_check(addr) == NULL;
    if (ok) {
        const char *at = strchr(addr, '@');
        if (!at || strchr(at + 1, '@'))
            abort();
        for (const char *p = addr; *p; p++)
            if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
                abort();
        if (!email_matches(addr, addr, seps, EMAIL_EXACT) || !email_matches(addr, addr, seps, EMAIL_MAILBOX))
            abort();
        char box[EMAIL_MAX_LEN + 1];
        if (!email_mailbox(addr, seps, box, sizeof box))
            abort();
        if (email_check(box) == NULL && !email_matches(box, addr, seps, EMAIL_MAILBOX))
            abort();
    }
    bool exact = email_matches(rule, addr, seps, EMAIL_EXACT);
    bool wide = email_matches(rule, addr, seps, EMAIL_MAILBOX);
    if (exact && !wide && email_check(rule) == NULL)
        abort();
    const char *at = strchr(addr, '@');
    if ((exact || wide) && (!at || strchr(at + 1, '@')))
        abort();
    free(in);
    return 0;
}
