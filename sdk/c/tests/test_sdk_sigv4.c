/* libnubo's SigV4 signer against botocore's: the Authorization header for fixed requests
 * (sigv4_vectors.h, made by gen_sigv4_vectors.py) must be the same, byte for byte. Also the
 * signer's helpers. Prints TAP. */
#include "sigv4.h"

#include "canned_server.h"

#include <stdio.h>
#include <string.h>

struct vector {
    const char *method, *path, *query, *body, *amz_date, *host, *key, *secret, *region, *service;
    const char *payload; /* "" or a streamed body's x-amz-content-sha256 */
    const char *want;
};

#include "sigv4_vectors.h"

int main(void)
{
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        const struct vector *v = &vectors[i];
        struct nubo_sigv4_input in = {
            .method = v->method,
            .path = v->path,
            .query = v->query,
            .host = v->host,
            .content_type = v->payload[0] ? "application/octet-stream"
                            : v->body[0]  ? "application/json"
                                          : NULL,
            .body = v->body,
            .body_len = strlen(v->body),
            .payload_hash = v->payload[0] ? v->payload : NULL,
            .amz_date = v->amz_date,
            .access_key = v->key,
            .secret = v->secret,
            .region = v->region,
            .service = v->service,
        };
        char got[1024] = "";
        char name[200];
        snprintf(name, sizeof name, "same as botocore: %s %s%s%s", v->method, v->path,
                 v->query[0] ? "?" : "", v->query);
        int rc = nubo_sigv4_authorization(&in, got, sizeof got);
        canned_is_str(rc == 0 ? got : NULL, v->want, name);
    }

    char hex[65];
    nubo_sigv4_sha256_hex("", 0, hex);
    canned_is_str(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                  "sha256 of the empty body");
    char date[17];
    nubo_sigv4_format_date(1735689599LL, date);
    canned_is_str(date, "20241231T235959Z", "x-amz-date format");

    struct nubo_sigv4_input small = {.method = "GET",
                                     .path = "/",
                                     .host = "h",
                                     .body = "",
                                     .amz_date = "20250101T000000Z",
                                     .access_key = "k",
                                     .secret = "s",
                                     .region = "r",
                                     .service = "x"};
    char tiny[16];
    canned_ok(nubo_sigv4_authorization(&small, tiny, sizeof tiny) == -1,
              "an output buffer too small is refused");
    return canned_done();
}
