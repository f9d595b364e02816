/* "Did you mean …?" for a mistyped word (a configuration key, a selector, a command): the
 * edit distance between two words, and the closest of a list of valid words. */
#ifndef LATCH_SUGGEST_H
#define LATCH_SUGGEST_H

#include <stddef.h>

/* The optimal string alignment distance (Damerau-Levenshtein without repeated edits of one
 * substring): insertions, deletions, substitutions and transpositions of two adjacent bytes
 * each cost 1, so "polices" is 1 from "policies" and "chekc" 1 from "check". Case counts.
 * Words longer than SUGGEST_MAX_LEN are SIZE_MAX from everything but themselves. */
#define SUGGEST_MAX_LEN 64
size_t suggest_distance(const char *a, const char *b);

/* The word of `words` (n of them, NULL entries skipped) nearest to `typed`, when it is near
 * enough to be a typo of it: at most 1 edit for words of up to 4 bytes, 2 up to 8, 3 beyond
 * (and never the whole word). The first of several equally near. NULL when none is. */
const char *suggest_closest(const char *typed, const char *const *words, size_t n);

#endif
