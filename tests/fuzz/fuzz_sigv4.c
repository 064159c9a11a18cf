/* Fuzz target: SigV4 claims from hostile requests. The input is split at NUL bytes into the
 * Authorization header, the raw query string, the raw path and the X-Amz-Date header; the claim
 * is parsed and, when it parses, verified. Nothing may crash, leak or read out of bounds, and a
 * random claim must never verify. */
#include "nubo/error.h"
#include "nubo/sigv4.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 5);
    if (!buf) {
        return 0;
    }
    memcpy(buf, data, size);
    memset(buf + size, 0, 5);
    const char *parts[4];
    size_t off = 0;
    for (int i = 0; i < 4; i++) {
        parts[i] = buf + off;
        off += strlen(buf + off) + 1;
        if (off > size) {
            off = size + 4; /* the remaining parts are "" */
        }
    }
    struct nb_sigv4_header headers[] = {
        {"Host", "127.0.0.1:8773"},
        {"Authorization", parts[0]},
        {"X-Amz-Date", parts[3]},
    };
    struct nb_sigv4_request rq = {
        .method = "POST",
        .path = parts[2][0] ? parts[2] : "/",
        .query = parts[1],
        .headers = headers,
        .n_headers = parts[0][0] ? 3 : 1,
        .body = data,
        .body_len = size,
    };
    struct nb_sigv4_auth auth;
    struct nb_error err = {0};
    if (nb_sigv4_parse(&rq, &auth, &err) == NB_SIGV4_OK) {
        if (nb_sigv4_verify(&rq, &auth, "not-the-secret-of-this-claim", 1795000000, &err) ==
            NB_SIGV4_OK) {
            abort(); /* a forged signature verified */
        }
    }
    free(buf);
    return 0;
}
