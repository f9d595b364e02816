/* What the gateway answered to the request `latch curl` made, read from curl's header dump (-D
 * to a private file of latch's: what curl prints for the person is not changed). The gateway
 * refuses a token it was sent with 401 and its own challenge, `WWW-Authenticate: Bearer
 * realm="…", error="login_required"` (SPEC.md §3.6); an origin's own 401 (an API's own key) has
 * another challenge and is the origin's business. */
#include "cli/cli.h"

#include <string.h>
#include <strings.h>

/* "HTTP/1.1 401 …", "HTTP/2 401": the status, or -1 when the line is not a status line. */
static int answer__status(const char *line, size_t n)
{
    if (n < 10 || strncmp(line, "HTTP/", 5) != 0)
        return -1;
    const char *sp = memchr(line, ' ', n);
    if (!sp || (size_t)(sp - line) + 4 > n)
        return -1;
    int st = 0;
    for (int i = 1; i <= 3; i++) {
        if (sp[i] < '0' || sp[i] > '9')
            return -1;
        st = st * 10 + (sp[i] - '0');
    }
    return st;
}

/* Whether a header line is the gateway's challenge: a WWW-Authenticate whose scheme is Bearer
 * and that says error="login_required". */
static bool answer__gateway_challenge(const char *line, size_t n)
{
    static const char name[] = "www-authenticate:";
    static const char err[] = "error=\"login_required\"";
    if (n < sizeof name - 1 || strncasecmp(line, name, sizeof name - 1) != 0)
        return false;
    const char *v = line + sizeof name - 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    if (end - v < 7 || strncasecmp(v, "bearer ", 7) != 0)
        return false;
    for (const char *p = v; end - p >= (long)(sizeof err - 1); p++)
        if (!memcmp(p, err, sizeof err - 1))
            return true;
    return false;
}

int cli_answer_refused(const char *dump, size_t n)
{
    int refused = 0, status = -1;
    bool challenged = false;
    for (size_t i = 0; i < n;) {
        const char *line = dump + i;
        const char *nl = memchr(line, '\n', n - i);
        size_t len = nl ? (size_t)(nl - line) : n - i;
        i += nl ? len + 1 : len;
        if (len && line[len - 1] == '\r')
            len--;
        int st = answer__status(line, len);
        if (st >= 0) { /* a new answer: the previous one is complete */
            refused += status == 401 && challenged;
            status = st;
            challenged = false;
        } else if (status >= 0 && answer__gateway_challenge(line, len)) {
            challenged = true;
        }
    }
    return refused + (status == 401 && challenged);
}
