/* libFuzzer target: latch's reading of curl's header dump (src/cli/answer.c), the headers of
 * whatever answered `latch curl`. Any input: no crash, no read past it, and never more refusals
 * than status lines. */
#include "cli/cli.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1); /* exactly the input: a read past it is caught */
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    int n = cli_answer_refused(buf, size), lines = 0;
    for (size_t i = 0; i + 5 <= size; i++)
        lines += (i == 0 || buf[i - 1] == '\n') && !memcmp(buf + i, "HTTP/", 5);
    if (n < 0 || n > lines)
        abort();
    free(buf);
    return 0;
}
