/* A test helper, not a test: prints the Authorization header libnubo's signer makes for one
 * request given on the command line, so that tests/e2e/test_cli.py can compare it with
 * botocore's for the same request.
 *
 *   sigv4_sign METHOD PATH QUERY BODY AMZ_DATE HOST ACCESS_KEY SECRET REGION SERVICE
 *
 * QUERY and BODY may be "" (then no Content-Type is signed; else application/json is). */
#include "sigv4.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 11) {
        fprintf(stderr, "usage: sigv4_sign METHOD PATH QUERY BODY AMZ_DATE HOST ACCESS_KEY "
                        "SECRET REGION SERVICE\n");
        return 2;
    }
    struct nubo_sigv4_input in = {
        .method = argv[1],
        .path = argv[2],
        .query = argv[3],
        .body = argv[4],
        .body_len = strlen(argv[4]),
        .content_type = argv[4][0] ? "application/json" : NULL,
        .amz_date = argv[5],
        .host = argv[6],
        .access_key = argv[7],
        .secret = argv[8],
        .region = argv[9],
        .service = argv[10],
    };
    char auth[1024];
    if (nubo_sigv4_authorization(&in, auth, sizeof auth) < 0) {
        fprintf(stderr, "sigv4_sign: could not sign\n");
        return 1;
    }
    puts(auth);
    return 0;
}
