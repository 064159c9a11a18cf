/* Unit tests of the web console's pure parts: password hashing (kdf.c), the static files' names
 * and types (console.c), session cookies and CSRF tokens (session.c, no database), and the
 * event stream's Last-Event-ID (events.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "console.h"
#include "events.h"
#include "kdf.h"
#include "session.h"

#include "nbtest.h"
#include "nubo/error.h"

#include <stdio.h>
#include <string.h>

/* Cheap parameters: these tests check the format and the logic, not the cost. */
static const struct gw_kdf_params cheap = {.log2n = 10, .r = 8, .p = 1};

static void kdf_round_trip(void **state)
{
    struct nb_error err = {0};
    char a[GW_KDF_MAX_TEXT], b[GW_KDF_MAX_TEXT];
    assert_zero(gw_kdf_hash("correct horse", 13, &cheap, a, &err), err);
    assert_zero(gw_kdf_hash("correct horse", 13, &cheap, b, &err), err);
    assert_int_equal(strncmp(a, "$scrypt$ln=10,r=8,p=1$", 22), 0);
    assert_string_not_equal(a, b); /* a salt of its own each time */
    bool weaker = true;
    assert_int_equal(gw_kdf_verify("correct horse", 13, a, &cheap, &weaker, &err), 1);
    assert_false(weaker);
    assert_int_equal(gw_kdf_verify("correct horsf", 13, a, NULL, NULL, &err), 0);
    assert_int_equal(gw_kdf_verify("correct hors", 12, a, NULL, NULL, &err), 0);
    assert_int_equal(gw_kdf_verify("", 0, a, NULL, NULL, &err), 0);
    /* Made with other parameters: still checked, and reported as weaker than today's. */
    struct gw_kdf_params today = {.log2n = 11, .r = 8, .p = 1};
    assert_int_equal(gw_kdf_verify("correct horse", 13, a, &today, &weaker, &err), 1);
    assert_true(weaker);
}

static void kdf_rejects_malformed(void **state)
{
    struct nb_error err = {0};
    char a[GW_KDF_MAX_TEXT];
    assert_zero(gw_kdf_hash("pw", 2, &cheap, a, &err), err);
    const char *bad[] = {
        "",
        "plain",
        "$pbkdf2$ln=10,r=8,p=1$AAAA$AAAA",
        "$scrypt$ln=40,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "$scrypt$ln=10,r=8,p=1$AAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(gw_kdf_verify("pw", 2, bad[i], NULL, NULL, &err), -1);
    }
    char trailing[GW_KDF_MAX_TEXT + 2];
    snprintf(trailing, sizeof trailing, "%sx", a);
    assert_int_equal(gw_kdf_verify("pw", 2, trailing, NULL, NULL, &err), -1);
    struct gw_kdf_params silly = {.log2n = 3, .r = 8, .p = 1};
    assert_int_equal(gw_kdf_hash("pw", 2, &silly, a, &err), -1);
}

static void kdf_dummy_matches_nothing(void **state)
{
    struct nb_error err = {0};
    char d[GW_KDF_MAX_TEXT];
    gw_kdf_dummy(&cheap, d);
    assert_int_equal(gw_kdf_verify("", 0, d, NULL, NULL, &err), 0);
    assert_int_equal(gw_kdf_verify("admin", 5, d, NULL, NULL, &err), 0);
}

static void console_file_names(void **state)
{
    static const struct {
        const char *path;
        const char *want; /* NULL: refused */
    } cases[] = {
        {"/console/", "index.html"},
        {"/console/index.html", "index.html"},
        {"/console/js/main.js", "js/main.js"},
        {"/console/console.css", "console.css"},
        {"/console/a-b_c.1.js", "a-b_c.1.js"},
        {"/console/../Makefile", NULL},
        {"/console/js/../../Makefile", NULL},
        {"/console/..", NULL},
        {"/console/.", NULL},
        {"/console/.git/config", NULL},
        {"/console/js/.hidden", NULL},
        {"/console//etc/passwd", NULL},
        {"/console/js//main.js", NULL},
        {"/console/js/", NULL},
        {"/console/a\\b", NULL},
        {"/console/a b", NULL},
        {"/console/a%2e", NULL},
        {"/console/\xc3\xa9", NULL},
        {"/consolex/index.html", NULL},
        {"/console", NULL},
        {"/v1/instances", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[256] = "";
        int rc = gw_console_file_name(cases[i].path, out, sizeof out);
        if (cases[i].want ? (rc != 0 || strcmp(out, cases[i].want)) : rc != -1) {
            fail_msg("\"%s\": got %d \"%s\", want %s", cases[i].path, rc, out,
                     cases[i].want ? cases[i].want : "refused");
        }
    }
    char longer[300] = "/console/";
    memset(longer + 9, 'a', 270);
    longer[279] = '\0';
    char out[300];
    assert_int_equal(gw_console_file_name(longer, out, sizeof out), -1);
}

static void console_content_types(void **state)
{
    assert_string_equal(gw_console_content_type("index.html"), "text/html; charset=utf-8");
    assert_string_equal(gw_console_content_type("js/main.js"), "text/javascript; charset=utf-8");
    assert_string_equal(gw_console_content_type("console.css"), "text/css; charset=utf-8");
    assert_string_equal(gw_console_content_type("favicon.svg"), "image/svg+xml");
    assert_string_equal(gw_console_content_type("LOGO.PNG"), "image/png");
    assert_string_equal(gw_console_content_type("README"), "application/octet-stream");
    assert_string_equal(gw_console_content_type("x.exe"), "application/octet-stream");
}

static struct gw_sessions *sessions(bool secure)
{
    static const uint8_t key[NB_MASTER_KEY_LEN] = {1, 2, 3};
    struct gw_session_config cfg = {
        .ttl_s = 3600, .idle_s = 600, .secure_cookie = secure, .kdf_threads = 1, .kdf = cheap};
    struct nb_error err = {0};
    struct gw_sessions *s = gw_sessions_new(NULL, key, &cfg, &err);
    assert_ok(s, err);
    return s;
}

static void session_cookies(void **state)
{
    char v[256];
    struct gw_sessions *s = sessions(false);
    assert_string_equal(gw_session_cookie_name(s), "nubo-session");
    gw_session_set_cookie(s, "TOKEN", v, sizeof v);
    assert_string_equal(v, "nubo-session=TOKEN; Path=/; Max-Age=3600; HttpOnly; SameSite=Strict");
    gw_session_set_cookie(s, NULL, v, sizeof v);
    assert_string_equal(v, "nubo-session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
    gw_sessions_free(s);

    s = sessions(true);
    assert_string_equal(gw_session_cookie_name(s), "__Host-nubo-session");
    gw_session_set_cookie(s, "TOKEN", v, sizeof v);
    assert_string_equal(
        v, "__Host-nubo-session=TOKEN; Path=/; Max-Age=3600; HttpOnly; SameSite=Strict; Secure");
    gw_sessions_free(s);

    struct nb_error err = {0};
    struct gw_session_config bad = {.ttl_s = 10, .idle_s = 600, .kdf_threads = 1, .kdf = cheap};
    assert_null(gw_sessions_new(NULL, (const uint8_t[NB_MASTER_KEY_LEN]){0}, &bad, &err));
}

static void session_csrf_check(void **state)
{
    struct gw_session sess;
    memset(&sess, 0, sizeof sess);
    memset(sess.csrf, 'A', GW_SESSION_CSRF_LEN);
    char good[GW_SESSION_CSRF_LEN + 1];
    memcpy(good, sess.csrf, sizeof good);
    assert_true(gw_session_csrf_ok(&sess, good));
    good[5] = 'B';
    assert_false(gw_session_csrf_ok(&sess, good));
    assert_false(gw_session_csrf_ok(&sess, NULL));
    assert_false(gw_session_csrf_ok(&sess, ""));
    good[5] = 'A';
    good[GW_SESSION_CSRF_LEN - 1] = '\0';
    assert_false(gw_session_csrf_ok(&sess, good)); /* a prefix */
}

/* Malformed cookies never reach the database (the pool here is NULL). */
static void session_malformed_tokens(void **state)
{
    struct gw_sessions *s = sessions(false);
    struct gw_session out;
    struct nb_error err = {0};
    const char *bad[] = {"", "short", "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
                         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" /* 44 */};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(gw_session_lookup(s, bad[i], &out, &err), GW_SESSION_INVALID);
    }
    assert_int_equal(gw_session_sign_out(s, "nope", &err), 0);
    gw_sessions_free(s);
}

/* Last-Event-ID: "I.T" as the stream writes it, and the ids of earlier gateways. */
static void events_positions(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        long long instance, task;
    } good[] = {
        {"42.7", 42, 7},
        {"0.0", 0, 0},
        {"42", 42, -1},
        {"task-7", -1, 7},
        {"9223372036854775806.1", 9223372036854775806LL, 1},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct gw_events_position p = {-5, -5};
        assert_int_equal(gw_events_parse_position(good[i].text, &p), 0);
        assert_true(p.instance == good[i].instance);
        assert_true(p.task == good[i].task);
    }
    static const char *const bad[] = {"",
                                      "abc",
                                      "-5",
                                      "1.-2",
                                      "1.",
                                      ".1",
                                      "1.2.3",
                                      "task-",
                                      "task--1",
                                      "task-1.2",
                                      "42 ",
                                      " 42",
                                      "+42",
                                      "1.x",
                                      "0x10",
                                      "4e3",
                                      "9223372036854775807",
                                      "99999999999999999999",
                                      "task-99999999999999999999",
                                      "1.9223372036854775807",
                                      "123456789012345678901234567890123456789012"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct gw_events_position p = {-5, -5};
        if (gw_events_parse_position(bad[i], &p) != -1) {
            fail_msg("\"%s\" was taken as a position", bad[i]);
        }
        assert_true(p.instance == -5 && p.task == -5); /* untouched */
    }
    struct gw_events_position p;
    assert_int_equal(gw_events_parse_position(NULL, &p), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kdf_round_trip),
        cmocka_unit_test(kdf_rejects_malformed),
        cmocka_unit_test(kdf_dummy_matches_nothing),
        cmocka_unit_test(console_file_names),
        cmocka_unit_test(console_content_types),
        cmocka_unit_test(session_cookies),
        cmocka_unit_test(session_csrf_check),
        cmocka_unit_test(session_malformed_tokens),
        cmocka_unit_test(events_positions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
