/* AWS Signature Version 4: signing and verification, header form and presigned query form.
 *
 * Verification follows AWS's rules for non-S3 services (EC2): canonical URI from the path as
 * received, double-encoded; canonical query sorted by encoded name then value; canonical
 * headers lower-cased, values trimmed with inner runs of spaces folded; payload hashed with
 * SHA-256 (or "UNSIGNED-PAYLOAD" for presigned requests). Signatures are compared in constant
 * time. Thread-safe; derived signing keys are cached per thread.
 *
 * The payload: a signed X-Amz-Content-SHA256 header is used as signed and must equal the body's
 * SHA-256 (header-form requests must sign their body). A presigned request is accepted with
 * either "UNSIGNED-PAYLOAD" (S3 style, what nb_sigv4_presign() writes) or the body's SHA-256
 * (what botocore's SigV4QueryAuth signs for non-S3 services, the empty body's for a GET). */
#ifndef NUBO_SIGV4_H
#define NUBO_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct nb_error;

/* How far a request's X-Amz-Date may be from the server's clock (seconds). */
#define NB_SIGV4_MAX_SKEW 900

struct nb_sigv4_header {
    const char *name; /* any case */
    const char *value;
};

/* A request as it came off the wire, in the parts that SigV4 covers. */
struct nb_sigv4_request {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* raw path, percent-encoding as received, without the query: "/" */
    const char *query;  /* raw query string without '?', "" or NULL when there is none */
    const struct nb_sigv4_header *headers;
    size_t n_headers;
    const void *body;
    size_t body_len;
    /* The body is streamed and not here (an upload): the request must sign an
     * x-amz-content-sha256 header, "UNSIGNED-PAYLOAD" or 64 hex digits, which is used as signed;
     * the caller checks a hex claim against the body once it has arrived. */
    bool body_streamed;
};

/* What a request claims: parsed from "Authorization: AWS4-HMAC-SHA256 Credential=..., ..." or
 * from the X-Amz-Algorithm/Credential/Date/Expires/SignedHeaders/Signature query parameters. */
struct nb_sigv4_auth {
    bool presigned;
    char access_key[129];
    char scope_date[9]; /* YYYYMMDD */
    char region[64];
    char service[64];
    char amz_date[17];         /* YYYYMMDDTHHMMSSZ, from X-Amz-Date (header or query) or Date */
    char signed_headers[1024]; /* "host;x-amz-date", as given */
    char signature[65];        /* 64 lower-case hex digits */
    long expires;              /* presigned only: X-Amz-Expires, 1..604800 */
};

enum nb_sigv4_result {
    NB_SIGV4_OK = 0,
    NB_SIGV4_MISSING, /* no signature at all: EC2 "AuthFailure" (or MissingAuthenticationToken) */
    NB_SIGV4_INCOMPLETE, /* malformed or partial: "IncompleteSignature" */
    NB_SIGV4_EXPIRED,    /* outside the time window: "RequestExpired" */
    NB_SIGV4_MISMATCH,   /* wrong signature: "SignatureDoesNotMatch" */
};

/* Parses the signature claim of 'req' into 'auth'. Returns NB_SIGV4_OK, NB_SIGV4_MISSING or
 * NB_SIGV4_INCOMPLETE (with 'err' saying what is wrong: which part is missing or malformed). */
enum nb_sigv4_result nb_sigv4_parse(const struct nb_sigv4_request *req, struct nb_sigv4_auth *auth,
                                    struct nb_error *err);

/* Verifies 'req' against its parsed 'auth' and the key's 'secret' at time 'now':
 * the date must be within NB_SIGV4_MAX_SKEW of 'now' (presigned: not in the future by more than
 * that, and not past X-Amz-Date + X-Amz-Expires), the scope date must match the request date,
 * "host" must be signed, and the signature must match. Returns NB_SIGV4_OK, NB_SIGV4_EXPIRED,
 * NB_SIGV4_INCOMPLETE or NB_SIGV4_MISMATCH with 'err' set. */
enum nb_sigv4_result nb_sigv4_verify(const struct nb_sigv4_request *req,
                                     const struct nb_sigv4_auth *auth, const char *secret,
                                     time_t now, struct nb_error *err);

/* Signs 'req' (whose headers must include "host") in header form at time 'now'. Signs every
 * header of 'req' plus X-Amz-Date. Writes X-Amz-Date's value into 'amz_date' and the value of
 * the Authorization header into 'authz' ('authz_size' bytes; 512 is enough for short header
 * lists). The caller adds both headers to the request it sends. Returns 0, or -1 with 'err'. */
int nb_sigv4_sign(const struct nb_sigv4_request *req, const char *access_key, const char *secret,
                  const char *region, const char *service, time_t now, char amz_date[17],
                  char *authz, size_t authz_size, struct nb_error *err);

/* Presigns 'req' (headers must include "host"; body is not signed: UNSIGNED-PAYLOAD) valid for
 * 'expires' seconds from 'now'. Returns a malloc()ed query string (the request's own query, if
 * any, plus the X-Amz-* parameters, without '?') the caller free()s, or NULL with 'err'. */
char *nb_sigv4_presign(const struct nb_sigv4_request *req, const char *access_key,
                       const char *secret, const char *region, const char *service, time_t now,
                       long expires, struct nb_error *err);

#endif
