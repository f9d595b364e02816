/* Edit distance and the nearest valid word (suggest.h). */
#include "core/suggest.h"

#include <stdint.h>
#include <string.h>

size_t suggest_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > SUGGEST_MAX_LEN || lb > SUGGEST_MAX_LEN)
        return strcmp(a, b) ? SIZE_MAX : 0;
    /* three rows of the (la + 1) x (lb + 1) table: two back for transpositions */
    size_t rows[3][SUGGEST_MAX_LEN + 1];
    size_t *back2 = rows[0], *back = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++)
        back[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t d = back[j - 1] + cost;                   /* substitute (or keep) */
            if (back[j] + 1 < d)
                d = back[j] + 1;                             /* delete a[i-1] */
            if (cur[j - 1] + 1 < d)
                d = cur[j - 1] + 1;                          /* insert b[j-1] */
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                back2[j - 2] + 1 < d)
                d = back2[j - 2] + 1;                        /* swap two neighbours */
            cur[j] = d;
        }
        size_t *t = back2;
        back2 = back;
        back = cur;
        cur = t;
    }
    return back[lb];
}

const char *suggest_closest(const char *typed, const char *const *words, size_t n)
{
    size_t len = strlen(typed);
    size_t limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        if (!words[i])
            continue;
        size_t d = suggest_distance(typed, words[i]);
        /* a distance as long as either word replaces it whole: no resemblance */
        if (d <= limit && d < len && d < strlen(words[i]) && d < best_d) {
            best = words[i];
            best_d = d;
        }
    }
    return best;
}
