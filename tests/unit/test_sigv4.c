/* Unit tests of sigv4.c: AWS's published examples, sign-then-verify round trips, every kind of
 * tampering, the time window, malformed claims, presigned requests and garbage input.
 * (test_sigv4_botocore.c cross-checks thousands of random requests against botocore.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nubo/crypto.h"
#include "nubo/error.h"
#include "nubo/sigv4.h"

/* The credentials of AWS's SigV4 documentation and test suite. */
#define AKID   "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
/* 2015-08-30T12:36:00Z, the time of those examples. */
#define EXAMPLE_TIME 1440938160

#define MAX_TEST_HEADERS 16

/* A request under construction; the strings it points to outlive it. */
struct treq {
    struct nb_sigv4_request req;
    struct nb_sigv4_header h[MAX_TEST_HEADERS];
    char amz_date[17];
    char authz[1024];
};

static void treq_init(struct treq *t, const char *method, const char *path, const char *query)
{
    memset(t, 0, sizeof *t);
    t->req.method = method;
    t->req.path = path;
    t->req.query = query;
    t->req.headers = t->h;
}

static void treq_header(struct treq *t, const char *name, const char *value)
{
    assert_true(t->req.n_headers < MAX_TEST_HEADERS);
    t->h[t->req.n_headers].name = name;
    t->h[t->req.n_headers].value = value;
    t->req.n_headers++;
}

/* Sets the value of the first header called 'name' (any case). */
static void treq_set(struct treq *t, const char *name, const char *value)
{
    for (size_t i = 0; i < t->req.n_headers; i++) {
        if (strcasecmp(t->h[i].name, name) == 0) {
            t->h[i].value = value;
            return;
        }
    }
    fail_msg("no header %s", name);
}

static void treq_remove(struct treq *t, const char *name)
{
    for (size_t i = 0; i < t->req.n_headers; i++) {
        if (strcasecmp(t->h[i].name, name) == 0) {
            memmove(&t->h[i], &t->h[i + 1], (t->req.n_headers - i - 1) * sizeof t->h[0]);
            t->req.n_headers--;
            return;
        }
    }
    fail_msg("no header %s", name);
}

/* Signs 't' in header form at 'now' and adds X-Amz-Date and Authorization to it. */
static void treq_sign(struct treq *t, const char *secret, time_t now)
{
    struct nb_error err;
    nb_error_clear(&err);
    int rc = nb_sigv4_sign(&t->req, AKID, secret, "us-east-1", "ec2", now, t->amz_date, t->authz,
                           sizeof t->authz, &err);
    if (rc != 0) {
        fail_msg("nb_sigv4_sign: %s", err.msg);
    }
    treq_header(t, "X-Amz-Date", t->amz_date);
    treq_header(t, "Authorization", t->authz);
}

/* Parses and verifies 'req' with 'secret' at 'now'; the error message goes to 'err'. */
static enum nb_sigv4_result check(const struct nb_sigv4_request *req, const char *secret,
                                  time_t now, struct nb_error *err)
{
    struct nb_sigv4_auth auth;
    nb_error_clear(err);
    enum nb_sigv4_result r = nb_sigv4_parse(req, &auth, err);
    if (r == NB_SIGV4_OK) {
        r = nb_sigv4_verify(req, &auth, secret, now, err);
    }
    return r;
}

static void expect_result(const struct nb_sigv4_request *req, const char *secret, time_t now,
                          enum nb_sigv4_result want)
{
    struct nb_error err;
    enum nb_sigv4_result got = check(req, secret, now, &err);
    if (got != want) {
        fail_msg("expected result %d, got %d (%s)", want, got, err.msg);
    }
    if (want != NB_SIGV4_OK) {
        assert_true(err.msg[0] != '\0');
    }
}

/* AWS's "get-vanilla" test: GET / signed with host and x-amz-date. */
static void test_aws_get_vanilla(void **state)
{
    static const char authz[] =
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
    struct treq t;
    treq_init(&t, "GET", "/", "");
    treq_header(&t, "Host", "example.amazonaws.com");

    char date[17];
    char out[512];
    struct nb_error err;
    assert_int_equal(nb_sigv4_sign(&t.req, AKID, SECRET, "us-east-1", "service", EXAMPLE_TIME, date,
                                   out, sizeof out, &err),
                     0);
    assert_string_equal(date, "20150830T123600Z");
    assert_string_equal(out, authz);

    treq_header(&t, "X-Amz-Date", "20150830T123600Z");
    treq_header(&t, "Authorization", authz);
    struct nb_sigv4_auth auth;
    assert_int_equal(nb_sigv4_parse(&t.req, &auth, &err), NB_SIGV4_OK);
    assert_false(auth.presigned);
    assert_string_equal(auth.access_key, AKID);
    assert_string_equal(auth.scope_date, "20150830");
    assert_string_equal(auth.region, "us-east-1");
    assert_string_equal(auth.service, "service");
    assert_string_equal(auth.amz_date, "20150830T123600Z");
    assert_string_equal(auth.signed_headers, "host;x-amz-date");
    assert_string_equal(auth.signature,
                        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    assert_int_equal(nb_sigv4_verify(&t.req, &auth, SECRET, EXAMPLE_TIME, &err), NB_SIGV4_OK);
    assert_int_equal(nb_sigv4_verify(&t.req, &auth, "wrong", EXAMPLE_TIME, &err),
                     NB_SIGV4_MISMATCH);
}

/* The IAM ListUsers example of AWS's SigV4 documentation: a query and a content-type. */
static void test_aws_iam_list_users(void **state)
{
    static const char authz[] =
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
    struct treq t;
    treq_init(&t, "GET", "/", "Action=ListUsers&Version=2010-05-08");
    treq_header(&t, "Host", "iam.amazonaws.com");
    treq_header(&t, "Content-Type", "application/x-www-form-urlencoded; charset=utf-8");
    char date[17];
    char out[512];
    struct nb_error err;
    assert_int_equal(nb_sigv4_sign(&t.req, AKID, SECRET, "us-east-1", "iam", EXAMPLE_TIME, date,
                                   out, sizeof out, &err),
                     0);
    assert_string_equal(out, authz);
    treq_header(&t, "X-Amz-Date", date);
    treq_header(&t, "Authorization", authz);
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_OK);
}

/* Signed by botocore with a Date header (it then sends no X-Amz-Date): the time comes from Date. */
static void test_botocore_date_header(void **state)
{
    struct treq t;
    treq_init(&t, "GET", "/", NULL);
    treq_header(&t, "Host", "example.amazonaws.com");
    treq_header(&t, "Date", "Sun, 30 Aug 2015 12:36:00 -0000");
    treq_header(&t, "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                "SignedHeaders=date;host, "
                "Signature=7680771e48fa28c7db272da980f990fa8ee39dee61905c4203f5da9d3d48ac86");
    struct nb_sigv4_auth auth;
    struct nb_error err;
    assert_int_equal(nb_sigv4_parse(&t.req, &auth, &err), NB_SIGV4_OK);
    assert_string_equal(auth.amz_date, "20150830T123600Z");
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_OK);
    treq_set(&t, "Date", "Sun, 30 Aug 2015 12:36:01 GMT");
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);
    treq_set(&t, "Date", "Sun, 30 Aug 2015 12:36:00 +0200");
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_INCOMPLETE);
}

/* Presigned by botocore's SigV4QueryAuth (non-S3: the empty body's hash is signed). */
static void test_botocore_presigned(void **state)
{
    struct treq t;
    treq_init(&t, "GET", "/",
              "Action=DescribeRegions&Version=2016-11-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&"
              "X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fec2%2Faws4_request&"
              "X-Amz-Date=20150830T123600Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&"
              "X-Amz-Signature=122eefe18cd8c8fda637d935e7f24737dcb52d32769be645e6819bfef326be69");
    treq_header(&t, "Host", "ec2.amazonaws.com");
    struct nb_sigv4_auth auth;
    struct nb_error err;
    assert_int_equal(nb_sigv4_parse(&t.req, &auth, &err), NB_SIGV4_OK);
    assert_true(auth.presigned);
    assert_int_equal(auth.expires, 300);
    assert_string_equal(auth.service, "ec2");
    expect_result(&t.req, SECRET, EXAMPLE_TIME + 300, NB_SIGV4_OK);
    expect_result(&t.req, SECRET, EXAMPLE_TIME + 301, NB_SIGV4_EXPIRED);
    t.req.body = "x";
    t.req.body_len = 1;
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);
}

/* A POST with a query, a body and several headers, as nubo's own clients send. */
static void make_post(struct treq *t)
{
    static const char body[] = "Action=RunInstances&ImageId=ami-0a1b&MinCount=1&MaxCount=1";
    treq_init(t, "POST", "/api/v1/", "Version=2016-11-15&DryRun=false");
    treq_header(t, "Host", "ec2.nubo.test:8080");
    treq_header(t, "Content-Type", "application/x-www-form-urlencoded; charset=utf-8");
    treq_header(t, "X-Nubo-Trace", "  abc   def ");
    t->req.body = body;
    t->req.body_len = strlen(body);
}

static void test_round_trip(void **state)
{
    struct treq t;
    make_post(&t);
    treq_sign(&t, SECRET, EXAMPLE_TIME);
    assert_non_null(strstr(t.authz, "SignedHeaders=content-type;host;x-amz-date;x-nubo-trace, "));
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_OK);
    /* Headers the signer did not sign do not matter. */
    treq_header(&t, "User-Agent", "curl/7.88");
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_OK);
}

static void test_tamper_method(void **state)
{
    struct treq t;
    make_post(&t);
    treq_sign(&t, SECRET, EXAMPLE_TIME);
    t.req.method = "PUT";
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);
}

static void test_tamper_path(void **state)
{
    struct treq t;
    make_post(&t);
    treq_sign(&t, SECRET, EXAMPLE_TIME);
    t.req.path = "/api/v2/";
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);
    t.req.path = "/api/v1";
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);
    t.req.path = "/api%2Fv1/";
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);
}

static void test_tamper_query(void **state)
{
    struct treq t;
    make_post(&t);
    treq_sign(&t, SECRET, EXAMPLE_TIME);
    t.req.query = "Version=2016-11-15&DryRun=true";
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);
    t.req.query = "Version=2016-11-15";
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);
    t.req.query = "Version=2016-11-15&DryRun=false&DryRun=false";
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);
    t.req.query = NULL;
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);
}

static void test_tamper_header(void **state)
{
    struct treq t;
    make_post(&t);
    treq_sign(&t, SECRET, EXAMPLE_TIME);
    treq_set(&t, "x-nubo-trace", "abc def!");
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);
    treq_set(&t, "x-nubo-trace", "abc def");
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_OK);
    treq_set(&t, "host", "evil.test:8080");
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);
    treq_set(&t, "host", "ec2.nubo.test:8080");
    /* A second value for a signed header changes it too. */
    treq_header(&t, "X-Nubo-Trace", "more");
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);
    treq_remove(&t, "x-nubo-trace");
    treq_remove(&t, "x-nubo-trace");
    struct nb_error err;
    assert_int_equal(check(&t.req, SECRET, EXAMPLE_TIME, &err), NB_SIGV4_MISMATCH);
    assert_string_equal(err.msg, "signed header \"x-nubo-trace\" is not in the request");
}

static void test_tamper_body(void **state)
{
    struct treq t;
    make_post(&t);
    treq_sign(&t, SECRET, EXAMPLE_TIME);
    t.req.body = "Action=RunInstances&ImageId=ami-0a1b&MinCount=1&MaxCount=9";
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);
    t.req.body_len = 0;
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);
}

static void test_tamper_date(void **state)
{
    struct treq t;
    make_post(&t);
    treq_sign(&t, SECRET, EXAMPLE_TIME);
    treq_set(&t, "x-amz-date", "20150830T123601Z");
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);
    /* The next day: the credential scope date no longer matches. */
    treq_set(&t, "x-amz-date", "20150831T000000Z");
    struct nb_error err;
    assert_int_equal(check(&t.req, SECRET, EXAMPLE_TIME + 41040, &err), NB_SIGV4_MISMATCH);
    assert_non_null(strstr(err.msg, "credential scope date 20150830 does not match"));
}

static void test_tamper_signature(void **state)
{
    struct treq t;
    make_post(&t);
    treq_sign(&t, SECRET, EXAMPLE_TIME);
    char *sig = strstr(t.authz, "Signature=") + strlen("Signature=");
    for (int i = 0; i < 64; i += 7) {
        char saved = sig[i];
        sig[i] = saved == '0' ? '1' : '0';
        expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);
        sig[i] = saved;
    }
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_OK);
}

/* The access key is not in the string to sign: another key means another secret to verify with,
 * which the gateway looks up by the claimed key. */
static const char *lookup_secret(const char *access_key)
{
    if (strcmp(access_key, AKID) == 0) {
        return SECRET;
    }
    if (strcmp(access_key, "AKIDOTHER") == 0) {
        return "otherSecretKey0123456789";
    }
    return NULL;
}

static void test_tamper_access_key(void **state)
{
    struct treq t;
    make_post(&t);
    treq_sign(&t, SECRET, EXAMPLE_TIME);
    char tampered[1024];
    const char *p = strstr(t.authz, AKID);
    snprintf(tampered, sizeof tampered, "%.*sAKIDOTHER%s", (int)(p - t.authz), t.authz,
             p + strlen(AKID));
    treq_set(&t, "authorization", tampered);
    struct nb_sigv4_auth auth;
    struct nb_error err;
    assert_int_equal(nb_sigv4_parse(&t.req, &auth, &err), NB_SIGV4_OK);
    assert_string_equal(auth.access_key, "AKIDOTHER");
    assert_int_equal(
        nb_sigv4_verify(&t.req, &auth, lookup_secret(auth.access_key), EXAMPLE_TIME, &err),
        NB_SIGV4_MISMATCH);
}

static void test_time_window(void **state)
{
    struct treq t;
    make_post(&t);
    treq_sign(&t, SECRET, EXAMPLE_TIME);
    expect_result(&t.req, SECRET, EXAMPLE_TIME + NB_SIGV4_MAX_SKEW, NB_SIGV4_OK);
    expect_result(&t.req, SECRET, EXAMPLE_TIME - NB_SIGV4_MAX_SKEW, NB_SIGV4_OK);
    expect_result(&t.req, SECRET, EXAMPLE_TIME + NB_SIGV4_MAX_SKEW + 1, NB_SIGV4_EXPIRED);
    expect_result(&t.req, SECRET, EXAMPLE_TIME - NB_SIGV4_MAX_SKEW - 1, NB_SIGV4_EXPIRED);
    expect_result(&t.req, SECRET, EXAMPLE_TIME + 86400 * 365, NB_SIGV4_EXPIRED);
    struct nb_error err;
    assert_int_equal(check(&t.req, SECRET, EXAMPLE_TIME - 1000, &err), NB_SIGV4_EXPIRED);
    assert_string_equal(err.msg, "request date 20150830T123600Z is 1000 seconds from the "
                                 "server's time, more than 900");
}

static void test_no_signature(void **state)
{
    struct treq t;
    treq_init(&t, "GET", "/", "Action=DescribeInstances");
    treq_header(&t, "Host", "ec2.nubo.test");
    treq_header(&t, "X-Amz-Date", "20150830T123600Z");
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISSING);
    t.req.query = "X-Amz-Date=20150830T123600Z";
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISSING);
    t.req.query = NULL;
    t.req.n_headers = 0;
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISSING);
    struct nb_sigv4_auth auth;
    struct nb_error err;
    assert_int_equal(nb_sigv4_parse(NULL, &auth, &err), NB_SIGV4_MISSING);
}

struct bad_authz {
    const char *value;
    const char *message; /* expected error message, or a part of it */
};

static void test_malformed_authorization(void **state)
{
#define CRED "Credential=AKIDEXAMPLE/20150830/us-east-1/ec2/aws4_request"
#define SH   "SignedHeaders=host;x-amz-date"
#define SIG  "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    static const struct bad_authz cases[] = {
        {"", "authorization header is empty"},
        {"   ", "authorization header is empty"},
        {"AWS4-HMAC-SHA256", "authorization header has no \"Credential\" component"},
        {"Basic dXNlcjpwYXNz", "authorization scheme \"Basic\" is not supported"},
        {"AWS4-HMAC-SHA512 " CRED ", " SH ", " SIG, "authorization scheme \"AWS4-HMAC-SHA512\""},
        {"AWS4-HMAC-SHA256 " CRED ", " SH, "authorization header has no \"Signature\" component"},
        {"AWS4-HMAC-SHA256 " SH ", " SIG, "authorization header has no \"Credential\" component"},
        {"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1, " SH ", " SIG,
         "credential scope \"AKIDEXAMPLE/20150830/us-east-1\" has 3 parts, expected 5"},
        {"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/ec2/aws4_request/x, " SH
         ", " SIG,
         "has 6 parts, expected 5"},
        {"AWS4-HMAC-SHA256 Credential=/20150830/us-east-1/ec2/aws4_request, " SH ", " SIG,
         "has an empty access key"},
        {"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2015083/us-east-1/ec2/aws4_request, " SH ", " SIG,
         "credential scope date \"2015083\" is not YYYYMMDD"},
        {"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830//ec2/aws4_request, " SH ", " SIG,
         "credential scope region \"\" is malformed"},
        {"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/e!c2/aws4_request, " SH
         ", " SIG,
         "credential scope service \"e!c2\" is malformed"},
        {"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/ec2/aws4_requests, " SH
         ", " SIG,
         "does not end in \"aws4_request\""},
        {"AWS4-HMAC-SHA256 " CRED ", SignedHeaders=x-amz-date;host, " SIG,
         "are not sorted or contain a duplicate"},
        {"AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host;host, " SIG,
         "are not sorted or contain a duplicate"},
        {"AWS4-HMAC-SHA256 " CRED ", SignedHeaders=Host;x-amz-date, " SIG,
         "names must be lower case"},
        {"AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host;;x-amz-date, " SIG, "an empty name"},
        {"AWS4-HMAC-SHA256 " CRED ", SignedHeaders=, " SIG, "signed headers list is empty"},
        {"AWS4-HMAC-SHA256 " CRED ", " SH ", Signature=5fa00fa3", "is not 64 lower-case hex"},
        {"AWS4-HMAC-SHA256 " CRED ", " SH
         ", Signature=5FA00FA31553B73EBF1942676E86291E8372FF2A2260956D9B8AAE1D763FBF31",
         "is not 64 lower-case hex"},
        {"AWS4-HMAC-SHA256 " CRED ", " SH ", " SIG ", " SIG,
         "more than one \"Signature\" component"},
        {"AWS4-HMAC-SHA256 " CRED ", " SH ", " SIG ", Extra=1", "unknown component \"Extra\""},
        {"AWS4-HMAC-SHA256 " CRED ", " SH ", " SIG ",", "has an empty component"},
        {"AWS4-HMAC-SHA256 " CRED ",, " SH ", " SIG, "has an empty component"},
        {"AWS4-HMAC-SHA256 " CRED " " SH,
         "component \"Credential\" contains white space (a missing comma?)"},
        {"AWS4-HMAC-SHA256 " CRED ", " SH ", junk", "\"junk\" is not of the form name=value"},
    };
#undef CRED
#undef SH
#undef SIG
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct treq t;
        treq_init(&t, "GET", "/", NULL);
        treq_header(&t, "Host", "ec2.nubo.test");
        treq_header(&t, "X-Amz-Date", "20150830T123600Z");
        treq_header(&t, "Authorization", cases[i].value);
        struct nb_sigv4_auth auth;
        struct nb_error err;
        nb_error_clear(&err);
        enum nb_sigv4_result r = nb_sigv4_parse(&t.req, &auth, &err);
        if (r != NB_SIGV4_INCOMPLETE || !strstr(err.msg, cases[i].message)) {
            fail_msg("authorization \"%s\": result %d, message \"%s\", expected \"%s\"",
                     cases[i].value, r, err.msg, cases[i].message);
        }
        assert_int_equal(err.code, NB_ERR_INVALID);
    }
}

static void test_malformed_dates(void **state)
{
    static const char *const bad[] = {
        "2015-08-30T12:36:00Z",
        "20150830T123600",
        "20150830t123600Z",
        "20150230T123600Z",
        "20150830T243600Z",
        "20150830T126000Z",
        "",
        "20150830T123600Z ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct treq t;
        make_post(&t);
        treq_sign(&t, SECRET, EXAMPLE_TIME);
        treq_set(&t, "x-amz-date", bad[i]);
        struct nb_error err;
        enum nb_sigv4_result r = check(&t.req, SECRET, EXAMPLE_TIME, &err);
        /* White space around a header value is not part of it. */
        if (strcmp(bad[i], "20150830T123600Z ") == 0) {
            assert_int_equal(r, NB_SIGV4_OK);
            continue;
        }
        if (r != NB_SIGV4_INCOMPLETE || !strstr(err.msg, "is not of the form YYYYMMDDTHHMMSSZ")) {
            fail_msg("date \"%s\": result %d, message \"%s\"", bad[i], r, err.msg);
        }
    }
    struct treq t;
    make_post(&t);
    treq_sign(&t, SECRET, EXAMPLE_TIME);
    treq_remove(&t, "x-amz-date");
    struct nb_error err;
    assert_int_equal(check(&t.req, SECRET, EXAMPLE_TIME, &err), NB_SIGV4_INCOMPLETE);
    assert_string_equal(err.msg, "request has neither an X-Amz-Date nor a Date header");
    treq_header(&t, "Date", "yesterday");
    assert_int_equal(check(&t.req, SECRET, EXAMPLE_TIME, &err), NB_SIGV4_INCOMPLETE);
}

static void test_two_authorizations(void **state)
{
    struct treq t;
    make_post(&t);
    treq_sign(&t, SECRET, EXAMPLE_TIME);
    treq_header(&t, "authorization", t.authz);
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_INCOMPLETE);
}

static void test_host_must_be_signed(void **state)
{
    struct treq t;
    treq_init(&t, "GET", "/", NULL);
    treq_header(&t, "Host", "ec2.nubo.test");
    treq_header(&t, "X-Amz-Date", "20150830T123600Z");
    treq_header(&t, "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/ec2/aws4_request, "
                "SignedHeaders=x-amz-date, Signature="
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    struct nb_error err;
    assert_int_equal(check(&t.req, SECRET, EXAMPLE_TIME, &err), NB_SIGV4_INCOMPLETE);
    assert_string_equal(err.msg, "signed headers \"x-amz-date\" do not include \"host\"");
}

/* What the canonical form ignores: equivalent paths, query order and encodings, header case and
 * white space. */
static void test_canonical_equivalents(void **state)
{
    struct treq t;
    treq_init(&t, "GET", "/a/./b/../c//d", "b=2&a=x+y&c=%7e&d=%2f");
    treq_header(&t, "Host", "ec2.nubo.test");
    treq_header(&t, "X-Custom", "  one   two\tthree ");
    treq_sign(&t, SECRET, EXAMPLE_TIME);
    t.req.path = "/a/c/d";
    t.req.query = "a=x%20y&b=2&c=~&d=%2F";
    treq_set(&t, "x-custom", "one two three");
    t.h[0].name = "HOST";
    t.req.method = "get";
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_OK);
    /* ... and what it does not: an encoded slash is not a slash, '+' is not "%2B". */
    t.req.path = "/a/c%2Fd";
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);
    t.req.path = "/a/c/d";
    t.req.query = "a=x%2By&b=2&c=~&d=%2F";
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);
}

static void test_content_sha256_header(void **state)
{
    static const char body[] = "Action=DescribeVpcs";
    struct treq t;
    treq_init(&t, "POST", "/", NULL);
    treq_header(&t, "Host", "ec2.nubo.test");
    treq_header(&t, "X-Amz-Content-SHA256",
                "3e9c2c0b9c3d4d4e0f9e5c2fcf4fb0b0e2b1c6e0a1f31c8e0b0c3e4e7d3a4c21");
    t.req.body = body;
    t.req.body_len = strlen(body);
    treq_sign(&t, SECRET, EXAMPLE_TIME);
    /* The signer takes the header at its word; the verifier checks it against the body. */
    struct nb_error err;
    assert_int_equal(check(&t.req, SECRET, EXAMPLE_TIME, &err), NB_SIGV4_MISMATCH);
    assert_non_null(strstr(err.msg, "is not the SHA-256 of the body"));

    treq_init(&t, "POST", "/", NULL);
    treq_header(&t, "Host", "ec2.nubo.test");
    char real[65];
    nb_sha256_hex(body, strlen(body), real);
    treq_header(&t, "X-Amz-Content-SHA256", real);
    t.req.body = body;
    t.req.body_len = strlen(body);
    treq_sign(&t, SECRET, EXAMPLE_TIME);
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_OK);
    t.req.body = "Action=DeleteVpc";
    t.req.body_len = strlen(t.req.body);
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);

    /* A header-form request must sign its body. */
    treq_init(&t, "POST", "/", NULL);
    treq_header(&t, "Host", "ec2.nubo.test");
    treq_header(&t, "X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD");
    t.req.body = body;
    t.req.body_len = strlen(body);
    treq_sign(&t, SECRET, EXAMPLE_TIME);
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);
}

static void test_presign_round_trip(void **state)
{
    struct treq t;
    treq_init(&t, "GET", "/console/i-0123", "Action=GetConsoleOutput&Token=a+b");
    treq_header(&t, "Host", "ec2.nubo.test");
    struct nb_error err;
    char *query =
        nb_sigv4_presign(&t.req, AKID, SECRET, "us-east-1", "ec2", EXAMPLE_TIME, 600, &err);
    assert_non_null(query);
    assert_true(strncmp(query,
                        "Action=GetConsoleOutput&Token=a+b&X-Amz-Algorithm=AWS4-HMAC-SHA256&"
                        "X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fec2%2Faws4_request&"
                        "X-Amz-Date=20150830T123600Z&X-Amz-Expires=600&X-Amz-SignedHeaders=host&"
                        "X-Amz-Signature=",
                        strlen(query) - 64) == 0);
    t.req.query = query;
    struct nb_sigv4_auth auth;
    assert_int_equal(nb_sigv4_parse(&t.req, &auth, &err), NB_SIGV4_OK);
    assert_true(auth.presigned);
    assert_int_equal(auth.expires, 600);
    assert_string_equal(auth.signed_headers, "host");
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_OK);
    expect_result(&t.req, SECRET, EXAMPLE_TIME + 600, NB_SIGV4_OK);
    expect_result(&t.req, SECRET, EXAMPLE_TIME - NB_SIGV4_MAX_SKEW, NB_SIGV4_OK);
    assert_int_equal(check(&t.req, SECRET, EXAMPLE_TIME + 601, &err), NB_SIGV4_EXPIRED);
    assert_string_equal(err.msg, "presigned request expired 1 seconds ago");
    expect_result(&t.req, SECRET, EXAMPLE_TIME - NB_SIGV4_MAX_SKEW - 1, NB_SIGV4_EXPIRED);
    expect_result(&t.req, "wrong", EXAMPLE_TIME, NB_SIGV4_MISMATCH);
    /* The body is not signed (UNSIGNED-PAYLOAD); everything else is. */
    t.req.body = "anything";
    t.req.body_len = 8;
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_OK);
    t.req.path = "/console/i-0124";
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);
    t.req.path = "/console/i-0123";
    t.req.method = "POST";
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);
    t.req.method = "GET";
    treq_set(&t, "host", "other.test");
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);
    treq_set(&t, "host", "ec2.nubo.test");

    char tampered[1024];
    snprintf(tampered, sizeof tampered, "%s", query);
    memcpy(strstr(tampered, "Token=a+b"), "Token=a+c", 9);
    t.req.query = tampered;
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);
    snprintf(tampered, sizeof tampered, "%s", query);
    memcpy(strstr(tampered, "X-Amz-Expires=600"), "X-Amz-Expires=700", 17);
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);
    snprintf(tampered, sizeof tampered, "Extra=1&%s", query);
    expect_result(&t.req, SECRET, EXAMPLE_TIME, NB_SIGV4_MISMATCH);
    free(query);

    /* Presigning a query that is already presigned is refused. */
    t.req.query = "X-Amz-Signature=00";
    assert_null(
        nb_sigv4_presign(&t.req, AKID, SECRET, "us-east-1", "ec2", EXAMPLE_TIME, 600, &err));
    t.req.query = NULL;
    assert_null(nb_sigv4_presign(&t.req, AKID, SECRET, "us-east-1", "ec2", EXAMPLE_TIME, 0, &err));
    assert_null(
        nb_sigv4_presign(&t.req, AKID, SECRET, "us-east-1", "ec2", EXAMPLE_TIME, 604801, &err));
}

static void test_presigned_malformed(void **state)
{
#define P_ALG  "X-Amz-Algorithm=AWS4-HMAC-SHA256"
#define P_CRED "X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fec2%2Faws4_request"
#define P_DATE "X-Amz-Date=20150830T123600Z"
#define P_EXP  "X-Amz-Expires=300"
#define P_SH   "X-Amz-SignedHeaders=host"
#define P_SIG  "X-Amz-Signature=122eefe18cd8c8fda637d935e7f24737dcb52d32769be645e6819bfef326be69"
    static const struct bad_authz cases[] = {
        {P_ALG "&" P_CRED "&" P_DATE "&" P_EXP "&" P_SH,
         "presigned request has no \"X-Amz-Signature\" query parameter"},
        {P_SIG, "presigned request has no \"X-Amz-Algorithm\" query parameter"},
        {"X-Amz-Algorithm=AWS4-HMAC-SHA1&" P_CRED "&" P_DATE "&" P_EXP "&" P_SH "&" P_SIG,
         "signature algorithm \"AWS4-HMAC-SHA1\" is not supported"},
        {P_ALG "&X-Amz-Credential=AKIDEXAMPLE%2F20150830&" P_DATE "&" P_EXP "&" P_SH "&" P_SIG,
         "credential scope \"AKIDEXAMPLE/20150830\" has 2 parts, expected 5"},
        {P_ALG "&" P_CRED "&X-Amz-Date=2015&" P_EXP "&" P_SH "&" P_SIG,
         "X-Amz-Date \"2015\" is not of the form YYYYMMDDTHHMMSSZ"},
        {P_ALG "&" P_CRED "&" P_DATE "&X-Amz-Expires=0&" P_SH "&" P_SIG,
         "X-Amz-Expires \"0\" is not a number of seconds from 1 to 604800"},
        {P_ALG "&" P_CRED "&" P_DATE "&X-Amz-Expires=604801&" P_SH "&" P_SIG, "X-Amz-Expires"},
        {P_ALG "&" P_CRED "&" P_DATE "&X-Amz-Expires=-5&" P_SH "&" P_SIG, "X-Amz-Expires"},
        {P_ALG "&" P_CRED "&" P_DATE "&X-Amz-Expires=1e3&" P_SH "&" P_SIG, "X-Amz-Expires"},
        {P_ALG "&" P_CRED "&" P_DATE "&" P_EXP "&X-Amz-SignedHeaders=Host&" P_SIG,
         "names must be lower case"},
        {P_ALG "&" P_CRED "&" P_DATE "&" P_EXP "&" P_SH "&X-Amz-Signature=zz",
         "is not 64 lower-case hex digits"},
        {P_ALG "&" P_CRED "&" P_DATE "&" P_EXP "&" P_SH "&" P_SIG "&" P_SIG,
         "query parameter \"X-Amz-Signature\" appears twice"},
        {P_ALG "&X-Amz-Credential=AKID%00X%2F20150830%2Fus-east-1%2Fec2%2Faws4_request&" P_DATE
               "&" P_EXP "&" P_SH "&" P_SIG,
         "query parameter \"X-Amz-Credential\" contains a NUL byte"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct treq t;
        treq_init(&t, "GET", "/", cases[i].value);
        treq_header(&t, "Host", "ec2.amazonaws.com");
        struct nb_sigv4_auth auth;
        struct nb_error err;
        nb_error_clear(&err);
        enum nb_sigv4_result r = nb_sigv4_parse(&t.req, &auth, &err);
        if (r != NB_SIGV4_INCOMPLETE || !strstr(err.msg, cases[i].message)) {
            fail_msg("query \"%s\": result %d, message \"%s\", expected \"%s\"", cases[i].value, r,
                     err.msg, cases[i].message);
        }
    }
    /* Signed both ways at once. */
    struct treq t;
    make_post(&t);
    treq_sign(&t, SECRET, EXAMPLE_TIME);
    t.req.query = P_ALG "&" P_CRED "&" P_DATE "&" P_EXP "&" P_SH "&" P_SIG;
    struct nb_error err;
    assert_int_equal(check(&t.req, SECRET, EXAMPLE_TIME, &err), NB_SIGV4_INCOMPLETE);
    assert_non_null(strstr(err.msg, "both by an authorization header and by query parameters"));
#undef P_ALG
#undef P_CRED
#undef P_DATE
#undef P_EXP
#undef P_SH
#undef P_SIG
}

/* Derived keys are cached per thread by (secret, date, region, service): many keys in turn, more
 * than the cache holds, still each verify with their own secret only. */
static void test_key_cache(void **state)
{
    char secrets[20][32];
    struct treq reqs[20];
    for (int i = 0; i < 20; i++) {
        snprintf(secrets[i], sizeof secrets[i], "secret-number-%d", i);
        make_post(&reqs[i]);
        treq_sign(&reqs[i], secrets[i], EXAMPLE_TIME + i * 86400);
    }
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 20; i++) {
            expect_result(&reqs[i].req, secrets[i], EXAMPLE_TIME + i * 86400, NB_SIGV4_OK);
            expect_result(&reqs[i].req, secrets[(i + 1) % 20], EXAMPLE_TIME + i * 86400,
                          NB_SIGV4_MISMATCH);
        }
    }
}

static void test_sign_errors(void **state)
{
    struct treq t;
    treq_init(&t, "GET", "/", NULL);
    treq_header(&t, "X-Other", "1");
    char date[17];
    char authz[512];
    struct nb_error err;
    assert_int_equal(nb_sigv4_sign(&t.req, AKID, SECRET, "us-east-1", "ec2", EXAMPLE_TIME, date,
                                   authz, sizeof authz, &err),
                     -1);
    assert_string_equal(err.msg, "request to sign has no host header");
    treq_header(&t, "Host", "ec2.nubo.test");
    assert_int_equal(nb_sigv4_sign(&t.req, AKID, SECRET, "us-east-1", "ec2", EXAMPLE_TIME, date,
                                   authz, 64, &err),
                     -1);
    assert_int_equal(err.code, NB_ERR_LIMIT);
    assert_int_equal(nb_sigv4_sign(&t.req, AKID, SECRET, "us east", "ec2", EXAMPLE_TIME, date,
                                   authz, sizeof authz, &err),
                     -1);
    assert_string_equal(err.msg, "region \"us east\" is malformed");
    assert_int_equal(nb_sigv4_sign(&t.req, "AK/ID", SECRET, "us-east-1", "ec2", EXAMPLE_TIME, date,
                                   authz, sizeof authz, &err),
                     -1);
    treq_header(&t, "Bad Name", "1");
    assert_int_equal(nb_sigv4_sign(&t.req, AKID, SECRET, "us-east-1", "ec2", EXAMPLE_TIME, date,
                                   authz, sizeof authz, &err),
                     -1);
}

/* Oversized input is refused with a message, not truncated or crashed on. */
static void test_limits(void **state)
{
    struct treq t;
    make_post(&t);
    treq_sign(&t, SECRET, EXAMPLE_TIME);
    struct nb_error err;

    char *path = malloc(100001);
    memset(path, 'a', 100000);
    path[0] = '/';
    path[100000] = '\0';
    t.req.path = path;
    assert_int_equal(check(&t.req, SECRET, EXAMPLE_TIME, &err), NB_SIGV4_INCOMPLETE);
    assert_non_null(strstr(err.msg, "request path is too long"));
    free(path);
    t.req.path = "/api/v1/";

    char *query = malloc(200001);
    for (int i = 0; i < 200000; i += 2) {
        query[i] = 'a';
        query[i + 1] = '&';
    }
    query[200000] = '\0';
    t.req.query = query;
    assert_int_equal(check(&t.req, SECRET, EXAMPLE_TIME, &err), NB_SIGV4_INCOMPLETE);
    assert_non_null(strstr(err.msg, "query string is too long"));
    query[8000] = '\0';
    assert_int_equal(check(&t.req, SECRET, EXAMPLE_TIME, &err), NB_SIGV4_INCOMPLETE);
    assert_non_null(strstr(err.msg, "query string has too many parameters"));
    free(query);

    struct nb_sigv4_header many[300];
    for (int i = 0; i < 300; i++) {
        many[i] = t.h[i % t.req.n_headers];
    }
    t.req.query = "Version=2016-11-15&DryRun=false";
    t.req.headers = many;
    t.req.n_headers = 300;
    assert_int_equal(check(&t.req, SECRET, EXAMPLE_TIME, &err), NB_SIGV4_INCOMPLETE);
    assert_non_null(strstr(err.msg, "too many headers"));
}

/* A small deterministic generator for the garbage test. */
static uint32_t next_random(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Random bytes, and random splices of a valid claim, never crash and never verify. */
static void test_garbage(void **state)
{
    static const char pieces[][24] = {
        "AWS4-HMAC-SHA256 ",
        "Credential=",
        "SignedHeaders=",
        "Signature=",
        ", ",
        ",",
        "/",
        ";",
        "=",
        "host",
        "x-amz-date",
        "20150830",
        "us-east-1",
        "ec2",
        "aws4_request",
        " ",
        "%",
        "%2F",
        "&",
        "X-Amz-Signature=",
        "X-Amz-Credential=",
        "X-Amz-Expires=",
        "\xff",
        "\t",
    };
    uint32_t seed = 12345;
    char value[512];
    char query[512];
    char path[128];
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = 0;
        size_t k = next_random(&seed) % 24;
        for (size_t i = 0; i < k; i++) {
            const char *p = pieces[next_random(&seed) % (sizeof pieces / sizeof pieces[0])];
            size_t len = strlen(p);
            if (n + len < sizeof value) {
                memcpy(value + n, p, len);
                n += len;
            }
            if (next_random(&seed) % 4 == 0 && n + 1 < sizeof value) {
                value[n++] = (char)(1 + next_random(&seed) % 255);
            }
        }
        value[n] = '\0';
        size_t qn = next_random(&seed) % 200;
        for (size_t i = 0; i < qn; i++) {
            query[i] = (char)(1 + next_random(&seed) % 255);
        }
        query[qn] = '\0';
        size_t pn = next_random(&seed) % 100;
        for (size_t i = 0; i < pn; i++) {
            path[i] = "/.%a"[next_random(&seed) % 4];
        }
        path[pn] = '\0';

        struct treq t;
        treq_init(&t, "GET", path, iter % 2 ? query : value);
        treq_header(&t, "Host", "ec2.nubo.test");
        treq_header(&t, "X-Amz-Date", "20150830T123600Z");
        if (iter % 2) {
            treq_header(&t, "Authorization", value);
        }
        struct nb_error err;
        enum nb_sigv4_result r = check(&t.req, SECRET, EXAMPLE_TIME, &err);
        assert_int_not_equal(r, NB_SIGV4_OK);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aws_get_vanilla),
        cmocka_unit_test(test_aws_iam_list_users),
        cmocka_unit_test(test_botocore_date_header),
        cmocka_unit_test(test_botocore_presigned),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_tamper_method),
        cmocka_unit_test(test_tamper_path),
        cmocka_unit_test(test_tamper_query),
        cmocka_unit_test(test_tamper_header),
        cmocka_unit_test(test_tamper_body),
        cmocka_unit_test(test_tamper_date),
        cmocka_unit_test(test_tamper_signature),
        cmocka_unit_test(test_tamper_access_key),
        cmocka_unit_test(test_time_window),
        cmocka_unit_test(test_no_signature),
        cmocka_unit_test(test_malformed_authorization),
        cmocka_unit_test(test_malformed_dates),
        cmocka_unit_test(test_two_authorizations),
        cmocka_unit_test(test_host_must_be_signed),
        cmocka_unit_test(test_canonical_equivalents),
        cmocka_unit_test(test_content_sha256_header),
        cmocka_unit_test(test_presign_round_trip),
        cmocka_unit_test(test_presigned_malformed),
        cmocka_unit_test(test_key_cache),
        cmocka_unit_test(test_sign_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
