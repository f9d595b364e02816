/* The handoff's verification code (SPEC.md §7): the CLI prints it and the confirmation page
 * shows it, both derived from the CLI's public key, so the person can tell their own terminal's
 * request from someone else's link. */
#ifndef LATCH_HANDOFF_H
#define LATCH_HANDOFF_H

/* The first 40 bits of SHA-256(public key) in Crockford-like base32, as "XXXX-XXXX". */
void handoff_code(const unsigned char pk[32], char out[10]);

#endif
