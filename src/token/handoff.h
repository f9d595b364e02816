/* The handoff's verification code (SPEC.md §7): the CLI prints it and the confirmation page
 * shows it, both derived from the CLI's public key, so the person can tell their own terminal's
 * request from someone else's link. */
#ifndef LATCH_HANDOFF_H
#define LATCH_HANDOFF_H

/* The longest path (bytes, before encoding) a handoff and its discovery and exchange carry:
 * encoded, it still fits the confirmation link in a request line (8 KiB). Both sides use it. */
#define HANDOFF_PATH_MAX 2048

/* The first 40 bits of SHA-256(public key) in Crockford-like base32, as "XXXX-XXXX". */
void handoff_code(const unsigned char pk[32], char out[10]);

#endif
