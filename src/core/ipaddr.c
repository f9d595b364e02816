/* Address text (ipaddr.h). */
#include "core/ipaddr.h"

#include <arpa/inet.h>
#include <string.h>

static const uint8_t ipaddr__v4_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

size_t ipaddr_format(const uint8_t ip[16], char out[IPADDR_STRLEN])
{
    if (memcmp(ip, ipaddr__v4_prefix, 12) != 0) {
        if (!inet_ntop(AF_INET6, ip, out, IPADDR_STRLEN))
            out[0] = '\0';
        return strlen(out);
    }
    char *o = out;
    for (int i = 12; i < 16; i++) {
        unsigned v = ip[i];
        if (v >= 100)
            *o++ = (char)('0' + v / 100);
        if (v >= 10)
            *o++ = (char)('0' + v / 10 % 10);
        *o++ = (char)('0' + v % 10);
        *o++ = i < 15 ? '.' : '\0';
    }
    return (size_t)(o - out - 1);
}

bool ipaddr_loopback_name(const char *host)
{
    size_t n = strlen(host);
    struct in_addr a;
    return !strcmp(host, "localhost") || !strcmp(host, "[::1]") ||
           (n > 10 && !strcmp(host + n - 10, ".localhost")) ||
           (inet_pton(AF_INET, host, &a) == 1 && ((const uint8_t *)&a)[0] == 127);
}
