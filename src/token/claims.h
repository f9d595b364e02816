/* The JSON objects of a JWT, header and payload (RFC 7515 §4, RFC 7519 §4), read by a strict
 * reader of its own: on a cache miss jansson's general trees (a hash table, a node and an
 * allocation per member) cost more than everything but the RSA verification itself. The text
 * is RFC 8259 JSON in full and is validated in full (every value, nested ones included,
 * strings as UTF-8 without NUL); what comes out is the top level: each member's name and,
 * for strings, numbers and arrays of strings, its value. Duplicate names are refused, as
 * jansson's JSON_REJECT_DUPLICATES does. Strings are unescaped in place, inside the caller's
 * buffer, which must stay alive while the result is used. fuzz/fuzz_claims.c holds it to
 * jansson's verdicts and values. */
#ifndef LATCH_CLAIMS_H
#define LATCH_CLAIMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLAIMS_MAX_MEMBERS 64   /* a token of ours has about 15 */
#define CLAIMS_MAX_DEPTH   16   /* nested arrays and objects (jansson: 2048; ours: 1) */

enum claims_kind {
    CLAIMS_STRING,
    CLAIMS_INTEGER,  /* a number without fraction or exponent that fits in int64 */
    CLAIMS_REAL,     /* any other number */
    CLAIMS_TRUE,
    CLAIMS_FALSE,
    CLAIMS_NULL,
    CLAIMS_ARRAY,
    CLAIMS_OBJECT,
};

struct claims_member {
    const char *name;          /* unescaped, NUL-terminated, in the buffer */
    enum claims_kind kind;
    int64_t integer;           /* CLAIMS_INTEGER */
    double real;               /* CLAIMS_REAL */
    /* CLAIMS_STRING: one string, CLAIMS_ARRAY of strings only: its elements; strs[first ..
     * first + count) of the result. `strings` false for any other array. */
    size_t first, count;
    bool strings;
};

struct claims {
    struct claims_member m[CLAIMS_MAX_MEMBERS];
    size_t n;
    const char **strs;         /* malloc'd: every string value, in order */
    size_t nstrs, cap;
};

/* Reads buf[0..len) (modified: strings unescaped in place) as one JSON object. 0, or -1 when
 * it is not exactly one valid object (or exceeds the limits above). */
int claims_parse(char *buf, size_t len, struct claims *out);
void claims_free(struct claims *c);
/* The member named `name`, or NULL. */
const struct claims_member *claims_get(const struct claims *c, const char *name);

#endif
