/* E-mail addresses as people sign in with them and as policies name them: the one place that
 * says what an address is and when two of them are the same person (SPEC.md §5).
 *
 * An address is one plain, well-formed RFC 5321 mailbox: a dot-atom local part (letters,
 * digits, #$&'*+-/=?^_`{|}~ and single inner dots, at most 64 bytes; not '%' nor '!', which
 * mail systems read as routes to other addresses), one '@', and a DNS
 * name (letters, digits and inner hyphens in labels of 1 to 63 bytes, at most 253 bytes, no
 * empty label and so no trailing dot, not all digits at the end: no bare IP). Refused: quoted
 * local parts, comments, IP literals ("[192.0.2.1]"), a second '@' ("a@evil.com@corp.com"),
 * spaces, controls and any byte above 0x7f (unicode addresses and U-label domains; an IDN is
 * written in its xn-- form). Case never matters (addresses are compared without case).
 *
 * Two ways to compare, one per effect:
 *  - EMAIL_EXACT, for what admits (allow's include and require, a block's exclude): the same
 *    address, case aside. An allow for a@x does not admit a+tag@x.
 *  - EMAIL_MAILBOX, for what refuses (block's include and require, any other exclude, and
 *    rate limits): every spelling that the mail system delivers to the same mailbox: the
 *    address, its sub-addresses (the local part followed by one of the configured separators
 *    and a tag: a+tag@x, a+tag+more@x), and at gmail.com and googlemail.com (one mail system)
 *    any placement of dots in the local part and '+' tags. */
#ifndef LATCH_EMAIL_H
#define LATCH_EMAIL_H

#include <stdbool.h>
#include <stddef.h>

#define EMAIL_MAX_LEN 254
/* What starts a sub-address tag when the configuration says nothing (Postfix, Exim, Gmail,
 * Microsoft 365, Fastmail all use '+'). */
#define EMAIL_DEFAULT_SEPARATORS "+"

enum email_match { EMAIL_EXACT, EMAIL_MAILBOX };

/* NULL when `s` is one plain address as above; else why not, in words for an error message. */
const char *email_check(const char *s);

/* Whether `addr` is the address `rule` names (both e-mail addresses; a malformed addr matches
 * nothing). `seps`: the sub-address separators (NULL: EMAIL_DEFAULT_SEPARATORS). */
bool email_matches(const char *rule, const char *addr, const char *seps, enum email_match how);

/* Whether `addr`'s domain is `domain`; with EMAIL_MAILBOX gmail.com and googlemail.com are one. */
bool email_domain_matches(const char *domain, const char *addr, enum email_match how);

/* The mailbox `addr` reaches, lowercase, as a key for counting: its tag cut off, and at Gmail
 * its dots removed and the domain gmail.com. False when it does not fit in cap bytes. */
bool email_mailbox(const char *addr, const char *seps, char *out, size_t cap);

/* Characters a configuration may name as sub-address separators: the punctuation of the local
 * part's dot-atom, other than the dot. */
bool email_separator_ok(char c);

#endif
