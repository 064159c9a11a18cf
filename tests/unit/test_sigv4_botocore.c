/* Cross-checks sigv4.c against botocore, an independent SigV4 implementation.
 *
 * tests/tools/sigv4_cases.py signs random requests with botocore (header and presigned forms) and
 * also emits, for each, a copy with one mutation. Every valid request must verify, every mutated
 * one must be rejected (with the expected result where the script knows it), and for header-form
 * requests nb_sigv4_sign() must produce botocore's Authorization header byte for byte.
 *
 * Environment: NUBO_SRCDIR (the repository root, default "."), NUBO_SIGV4_SEED (default fixed;
 * "random" for a seed from the clock), NUBO_SIGV4_COUNT (requests per run, default 1000). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nubo/crypto.h"
#include "nubo/error.h"
#include "nubo/sigv4.h"

#define DEFAULT_SEED  20261122
#define DEFAULT_COUNT 1000
#define MIN_CASES     1000
#define MAX_REPORTS   10

struct cases {
    json_t *all; /* array of case objects */
    long seed;
    long count;
};

static int load_cases(void **state)
{
    const char *srcdir = getenv("NUBO_SRCDIR") ? getenv("NUBO_SRCDIR") : ".";
    const char *seed_env = getenv("NUBO_SIGV4_SEED");
    const char *count_env = getenv("NUBO_SIGV4_COUNT");
    struct cases *c = calloc(1, sizeof *c);
    if (!c) {
        return -1;
    }
    c->seed = DEFAULT_SEED;
    if (seed_env && strcmp(seed_env, "random") == 0) {
        c->seed = (long)time(NULL) % 1000000007L;
    } else if (seed_env) {
        c->seed = strtol(seed_env, NULL, 10);
    }
    c->count = count_env ? strtol(count_env, NULL, 10) : DEFAULT_COUNT;
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 '%s/tests/tools/sigv4_cases.py' --count %ld --seed %ld", srcdir,
             c->count, c->seed);
    printf("# %s\n", cmd);
    FILE *f = popen(cmd, "r");
    if (!f) {
        free(c);
        return -1;
    }
    c->all = json_array();
    char *line = NULL;
    size_t cap = 0;
    int bad = 0;
    while (getline(&line, &cap, f) > 0) {
        json_error_t jerr;
        json_t *obj = json_loads(line, 0, &jerr);
        if (!json_is_object(obj)) {
            fprintf(stderr, "bad JSON line from sigv4_cases.py: %s\n", jerr.text);
            json_decref(obj);
            bad++;
            continue;
        }
        json_array_append_new(c->all, obj);
    }
    free(line);
    int status = pclose(f);
    if (status != 0 || bad > 0) {
        fprintf(stderr, "sigv4_cases.py failed (status %d, %d bad lines)\n", status, bad);
        json_decref(c->all);
        free(c);
        return -1;
    }
    *state = c;
    return 0;
}

static int free_cases(void **state)
{
    struct cases *c = *state;
    if (c) {
        json_decref(c->all);
        free(c);
    }
    return 0;
}

static const char *str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

/* A case turned into a request: owns the header array and the body. */
struct built {
    struct nb_sigv4_request req;
    struct nb_sigv4_header *headers;
    uint8_t *body;
};

/* Builds the request of 'c'. With 'for_signing', leaves out what botocore added when it signed
 * (Authorization, X-Amz-Date) and the headers sent without being signed. */
static void build(const json_t *c, bool for_signing, struct built *b)
{
    const json_t *signed_h = json_object_get(c, "headers");
    const json_t *unsigned_h = json_object_get(c, "unsigned_headers");
    size_t n = json_array_size(signed_h) + json_array_size(unsigned_h);
    b->headers = calloc(n + 1, sizeof *b->headers);
    assert_non_null(b->headers);
    size_t k = 0;
    for (int pass = 0; pass < 2; pass++) {
        const json_t *list = pass == 0 ? signed_h : unsigned_h;
        if (pass == 1 && for_signing) {
            break;
        }
        for (size_t i = 0; i < json_array_size(list); i++) {
            const json_t *h = json_array_get(list, i);
            const char *name = json_string_value(json_array_get(h, 0));
            if (for_signing &&
                (strcasecmp(name, "authorization") == 0 || strcasecmp(name, "x-amz-date") == 0)) {
                continue;
            }
            b->headers[k].name = name;
            b->headers[k].value = json_string_value(json_array_get(h, 1));
            k++;
        }
    }
    const char *hex = str(c, "body_hex");
    size_t body_len = strlen(hex) / 2;
    b->body = malloc(body_len + 1);
    assert_non_null(b->body);
    assert_int_equal(nb_hex_decode(hex, b->body, body_len), 0);
    b->req = (struct nb_sigv4_request){
        .method = str(c, "method"),
        .path = str(c, "path"),
        .query = str(c, "query"),
        .headers = b->headers,
        .n_headers = k,
        .body = b->body,
        .body_len = body_len,
    };
}

static void unbuild(struct built *b)
{
    free(b->headers);
    free(b->body);
}

/* Verifies case 'c' as a gateway would: parse, look the claimed key up, verify. */
static enum nb_sigv4_result verify_case(const json_t *c, struct nb_error *err)
{
    struct built b;
    build(c, false, &b);
    struct nb_sigv4_auth auth;
    enum nb_sigv4_result r = nb_sigv4_parse(&b.req, &auth, err);
    if (r == NB_SIGV4_OK) {
        const char *secret =
            json_string_value(json_object_get(json_object_get(c, "keys"), auth.access_key));
        if (secret) {
            time_t now = (time_t)json_integer_value(json_object_get(c, "now"));
            r = nb_sigv4_verify(&b.req, &auth, secret, now, err);
        } else {
            nb_error_set(err, NB_ERR_AUTH, "unknown access key \"%s\"", auth.access_key);
            r = NB_SIGV4_MISMATCH;
        }
    }
    unbuild(&b);
    return r;
}

static const char *result_name(enum nb_sigv4_result r)
{
    switch (r) {
    case NB_SIGV4_OK:
        return "ok";
    case NB_SIGV4_MISSING:
        return "missing";
    case NB_SIGV4_INCOMPLETE:
        return "incomplete";
    case NB_SIGV4_EXPIRED:
        return "expired";
    case NB_SIGV4_MISMATCH:
        return "mismatch";
    }
    return "?";
}

static void test_botocore_valid_verified(void **state)
{
    struct cases *cs = *state;
    int ok = 0;
    int failed = 0;
    int header_form = 0;
    for (size_t i = 0; i < json_array_size(cs->all); i++) {
        const json_t *c = json_array_get(cs->all, i);
        if (strcmp(str(c, "expect"), "ok") != 0) {
            continue;
        }
        struct nb_error err;
        nb_error_clear(&err);
        enum nb_sigv4_result r = verify_case(c, &err);
        if (r == NB_SIGV4_OK) {
            ok++;
            header_form += strcmp(str(c, "form"), "header") == 0;
        } else if (++failed <= MAX_REPORTS) {
            printf("# FAIL %s: %s: %s\n", str(c, "id"), result_name(r), err.msg);
        }
    }
    printf("# seed %ld: %d valid botocore requests verified (%d header form, %d presigned), "
           "%d failed\n",
           cs->seed, ok, header_form, ok - header_form, failed);
    assert_int_equal(failed, 0);
    assert_true(ok >= (cs->count < MIN_CASES ? cs->count : MIN_CASES));
}

static void test_botocore_tampered_rejected(void **state)
{
    struct cases *cs = *state;
    int rejected = 0;
    int accepted = 0;
    int wrong_result = 0;
    for (size_t i = 0; i < json_array_size(cs->all); i++) {
        const json_t *c = json_array_get(cs->all, i);
        const char *expect = str(c, "expect");
        if (strcmp(expect, "ok") == 0) {
            continue;
        }
        struct nb_error err;
        nb_error_clear(&err);
        enum nb_sigv4_result r = verify_case(c, &err);
        if (r == NB_SIGV4_OK) {
            if (++accepted <= MAX_REPORTS) {
                printf("# ACCEPTED %s (mutation %s)\n", str(c, "id"), str(c, "mutation"));
            }
            continue;
        }
        rejected++;
        if (strcmp(expect, "reject") != 0 && strcmp(expect, result_name(r)) != 0) {
            if (++wrong_result <= MAX_REPORTS) {
                printf("# WRONG %s (mutation %s): expected %s, got %s: %s\n", str(c, "id"),
                       str(c, "mutation"), expect, result_name(r), err.msg);
            }
        }
    }
    printf("# seed %ld: %d tampered requests rejected, %d accepted, %d with the wrong result\n",
           cs->seed, rejected, accepted, wrong_result);
    assert_int_equal(accepted, 0);
    assert_int_equal(wrong_result, 0);
    assert_true(rejected >= (cs->count < MIN_CASES ? cs->count : MIN_CASES));
}

static void test_botocore_sign_identical(void **state)
{
    struct cases *cs = *state;
    int same = 0;
    int different = 0;
    for (size_t i = 0; i < json_array_size(cs->all); i++) {
        const json_t *c = json_array_get(cs->all, i);
        const char *expected = str(c, "authorization");
        if (!*expected) {
            continue;
        }
        struct built b;
        build(c, true, &b);
        char amz_date[17];
        char authz[1024];
        struct nb_error err;
        nb_error_clear(&err);
        int rc =
            nb_sigv4_sign(&b.req, str(c, "access_key"), str(c, "secret"), str(c, "region"),
                          str(c, "service"), (time_t)json_integer_value(json_object_get(c, "time")),
                          amz_date, authz, sizeof authz, &err);
        if (rc == 0 && strcmp(authz, expected) == 0 && strcmp(amz_date, str(c, "amz_date")) == 0) {
            same++;
        } else if (++different <= MAX_REPORTS) {
            printf("# DIFF %s: %s\n#   ours     %s\n#   botocore %s\n", str(c, "id"),
                   rc == 0 ? "" : err.msg, rc == 0 ? authz : "", expected);
        }
        unbuild(&b);
    }
    printf("# seed %ld: %d Authorization headers identical to botocore's, %d different\n", cs->seed,
           same, different);
    assert_int_equal(different, 0);
    assert_true(same >= (cs->count < MIN_CASES ? cs->count : MIN_CASES) / 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_botocore_valid_verified),
        cmocka_unit_test(test_botocore_tampered_rejected),
        cmocka_unit_test(test_botocore_sign_identical),
    };
    return cmocka_run_group_tests(tests, load_cases, free_cases);
}
