/* SSH principal names (the user names an OpenSSH certificate is valid for): which names latch
 * puts in a certificate, checked once for the configuration's literals and again for what a
 * template yields from an identity (an e-mail's local part may hold characters no login name
 * should). */
#ifndef LATCH_SSHNAME_H
#define LATCH_SSHNAME_H

#include <stdbool.h>
#include <stddef.h>

#define SSH_PRINCIPAL_MAX 256 /* bytes in one principal name */

/* Whether a principal name may go in a certificate: 1..SSH_PRINCIPAL_MAX bytes of printable
 * ASCII other than space, ',' (sshd splits principal lists on it), quotes, '\\', the pattern
 * characters '*' '?' '!', and '{' '}' (templates); not starting with '-' or '@'. */
bool ssh_principal_ok(const char *s, size_t n);

#endif
