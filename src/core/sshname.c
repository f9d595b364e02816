/* SSH principal names of sshname.h. */
#include "core/sshname.h"

#include <string.h>

bool ssh_principal_ok(const char *s, size_t n)
{
    if (!n || n > SSH_PRINCIPAL_MAX || s[0] == '-' || s[0] == '@')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || strchr(",\"'\\*?!{}", c))
            return false;
    }
    return true;
}
