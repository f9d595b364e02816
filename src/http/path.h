/* The one path normalization of SPEC.md §4 (RFC 3986 §6.2.2), done once per request before
 * matching; its result is what the origin receives. */
#ifndef LATCH_PATH_H
#define LATCH_PATH_H

#include <stddef.h>

/* Normalizes `in[0..len)` (the path of the request target, starting with '/'; no query).
 *   - percent-decodes unreserved characters (ALPHA DIGIT - . _ ~), uppercases other escapes;
 *   - removes dot segments, also when encoded (%2e, %2E) and also with a ;parameter ("..;x");
 *   - collapses repeated slashes;
 *   - refuses (-1, answer 400): %2F/%2f, %5C, %00 and every escaped control (%01-%1F, %7F),
 *     any malformed escape, a backslash, NUL, '#', any control character (0x00-0x1F, 0x7F)
 *     or byte >= 0x80 unencoded, a space, an input not starting with '/', and a dot segment
 *     followed by an encoded ';' ("..%3B", ".%3bx": an origin decoding before stripping
 *     parameters would read a dot segment). %3B is not a parameter delimiter.
 *   - other raw VCHARs ('"', '<', '>', '{', '|', …) pass unchanged.
 * `fwd` receives the normalized path (what the origin gets; ";params" kept on the segments that
 * carry them; a dot segment is removed with its parameters: "/a/..;x/b" is "/b"). `match`
 * receives `fwd` with every ";param" removed from each segment and the segments this leaves
 * empty dropped ("/admin;x/y" and "/a/;x/y" match as "/admin/y" and "/a/y"): the form
 * policies are matched against. A trailing "/", "/." or "/.." leaves a trailing slash. Both buffers must hold len + 2 bytes; both results
 * are NUL-terminated and start with '/'. Returns 0 and sets *fwd_len and *match_len. */
int path_normalize(const char *in, size_t len, char *fwd, size_t *fwd_len,
                   char *match, size_t *match_len);

#endif
