/* libnubo's AWS Signature Version 4 signer (header form), private to the library. It signs
 * as botocore's SigV4Auth does for non-S3 services: canonical URI double-encoded, query pairs
 * sorted as given, the headers passed in, the body's SHA-256 (or, for a streamed body, the
 * x-amz-content-sha256 header given). Thread-safe (no state). */
#ifndef NUBO_SDK_SIGV4_H
#define NUBO_SDK_SIGV4_H

#include <stddef.h>

/* One request to sign. Every string is borrowed. */
struct nubo_sigv4_input {
    const char *method;       /* "GET" */
    const char *path;         /* as sent, percent-encoded: "/v1/keypairs/my%20key" */
    const char *query;        /* as sent without '?', RFC 3986-encoded; NULL or "" for none */
    const char *host;         /* the Host header: "127.0.0.1:8773" */
    const char *content_type; /* signed when not NULL */
    const void *body;
    size_t body_len;
    /* NULL: the payload hash is the SHA-256 of 'body'. Else the body is streamed and this is
     * its hash as signed, the body's SHA-256 in hex or "UNSIGNED-PAYLOAD"; it is sent (and
     * signed) as the x-amz-content-sha256 header, and 'body' is ignored. */
    const char *payload_hash;
    const char *amz_date; /* "YYYYMMDDTHHMMSSZ", also sent as X-Amz-Date */
    const char *access_key;
    const char *secret;
    const char *region;
    const char *service;
};

/* Writes the Authorization header's value for 'in' into 'out' ('out_size' bytes, 512 is always
 * enough for keys, regions and services of up to 64 characters). Returns 0, or -1 when 'out' is
 * too small or memory runs out. */
int nubo_sigv4_authorization(const struct nubo_sigv4_input *in, char *out, size_t out_size);

/* Writes the lower-case hex SHA-256 of 'len' bytes at 'data' into 'hex' (65 bytes). */
void nubo_sigv4_sha256_hex(const void *data, size_t len, char hex[65]);

/* Formats 't' (seconds since the epoch) as an X-Amz-Date, "YYYYMMDDTHHMMSSZ", into 'out'. */
void nubo_sigv4_format_date(long long t, char out[17]);

#endif
