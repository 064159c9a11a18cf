/* Resource and request ids from the OS's randomness (see id.h). */
#include "nubo/id.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

int nb_random_bytes(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static const char hexdigits[] = "0123456789abcdef";

int nb_id_new(const char *prefix, char *out, size_t size)
{
    size_t plen = strlen(prefix);
    if (size < plen + 2 + NB_ID_HEX_DIGITS) {
        return -1;
    }
    unsigned char r[NB_ID_HEX_DIGITS];
    if (nb_random_bytes(r, sizeof r) < 0) {
        return -1;
    }
    memcpy(out, prefix, plen);
    out[plen] = '-';
    for (size_t i = 0; i < NB_ID_HEX_DIGITS; i++) {
        out[plen + 1 + i] = hexdigits[r[i] & 0xf];
    }
    out[plen + 1 + NB_ID_HEX_DIGITS] = '\0';
    return 0;
}

bool nb_id_valid(const char *prefix, const char *id)
{
    size_t plen = strlen(prefix);
    if (strncmp(id, prefix, plen) || id[plen] != '-') {
        return false;
    }
    const char *h = id + plen + 1;
    size_t i = 0;
    for (; h[i]; i++) {
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f'))) {
            return false;
        }
    }
    return i == NB_ID_HEX_DIGITS;
}

int nb_uuid_new(char *out, size_t size)
{
    unsigned char b[16];
    if (size < 37 || nb_random_bytes(b, sizeof b) < 0) {
        return -1;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, size, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return 0;
}
