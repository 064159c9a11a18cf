/* Unit tests of the EC2 response writer (api-gateway/ec2_xml.c): golden documents compared byte
 * for byte, escaping of hostile text, numbers and times, and the error code and status tables.
 *
 * Golden files live in tests/golden/ec2/, relative to $NUBO_SRCDIR (default: the current
 * directory, the repository root). Run with NUBO_TEST_REGENERATE=1 to rewrite them from the
 * current output, then review the diff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "golden.h"

#include "ec2_params.h"
#include "ec2_xml.h"
#include "nubo/buf.h"
#include "nubo/error.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void golden_describe_regions(void **state)
{
    struct nb_buf b = NB_BUF_INIT;
    ec2_xml_begin(&b, "DescribeRegions", "6e9f0c4a-6f6d-4d55-8a3c-0f6ab2e1c001");
    ec2_xml_open(&b, "regionInfo");
    ec2_xml_item_open(&b);
    ec2_xml_text(&b, "regionName", "nubo-1");
    ec2_xml_text(&b, "regionEndpoint", "ec2.nubo-1.example.test");
    ec2_xml_text(&b, "optInStatus", "opt-in-not-required");
    ec2_xml_item_close(&b);
    ec2_xml_close(&b, "regionInfo");
    ec2_xml_end(&b, "DescribeRegions");
    assert_int_equal(nbtest_golden_buf("ec2", "describe_regions.xml", &b), 0);
}

static void golden_describe_instances(void **state)
{
    static const struct ec2_params_tag tags[] = {
        {"Name", "web <1> & \"friends\""},
        {"Owner", "\xc3\xa9quipe"},
    };
    struct nb_buf b = NB_BUF_INIT;
    ec2_xml_begin(&b, "DescribeInstances", "req-0001");
    ec2_xml_open(&b, "reservationSet");
    ec2_xml_item_open(&b);
    ec2_xml_text(&b, "reservationId", "r-0a1b2c3d4e5f60718");
    ec2_xml_text(&b, "ownerId", "000000000001");
    ec2_xml_empty(&b, "groupSet");
    ec2_xml_open(&b, "instancesSet");
    ec2_xml_item_open(&b);
    ec2_xml_text(&b, "instanceId", "i-0a1b2c3d4e5f60718");
    ec2_xml_text(&b, "imageId", "ami-0123456789abcdef0");
    ec2_xml_open(&b, "instanceState");
    ec2_xml_int(&b, "code", 16);
    ec2_xml_text(&b, "name", "running");
    ec2_xml_close(&b, "instanceState");
    ec2_xml_text(&b, "privateDnsName", NULL); /* absent fields are left out */
    ec2_xml_text(&b, "keyName", "my-key");
    ec2_xml_int(&b, "amiLaunchIndex", 0);
    ec2_xml_text(&b, "instanceType", "t3.micro");
    ec2_xml_time_ms(&b, "launchTime", 1795323067000LL);
    ec2_xml_bool(&b, "ebsOptimized", false);
    ec2_xml_bool(&b, "enaSupport", true);
    ec2_xml_tag_set(&b, tags, 2);
    ec2_xml_item_close(&b);
    ec2_xml_item_open(&b);
    ec2_xml_text(&b, "instanceId", "i-00000000000000002");
    ec2_xml_time(&b, "launchTime", 1709251199);
    ec2_xml_tag_set(&b, NULL, 0); /* untagged: no tagSet */
    ec2_xml_item_close(&b);
    ec2_xml_close(&b, "instancesSet");
    ec2_xml_item_close(&b);
    ec2_xml_close(&b, "reservationSet");
    ec2_xml_end(&b, "DescribeInstances");
    assert_int_equal(nbtest_golden_buf("ec2", "describe_instances.xml", &b), 0);
}

static void golden_error(void **state)
{
    struct nb_buf b = NB_BUF_INIT;
    ec2_xml_error(&b, "InvalidInstanceID.NotFound", "the instance ID \"i-<bad>&co\" does not exist",
                  "req-0002");
    assert_int_equal(nbtest_golden_buf("ec2", "error.xml", &b), 0);
}

/* Returns what ec2_xml_escape() makes of 's'; the caller free()s it. */
static char *escaped(const char *s)
{
    struct nb_buf b = NB_BUF_INIT;
    ec2_xml_escape(&b, s);
    return nb_buf_steal(&b);
}

static void assert_escapes_to(const char *in, const char *want)
{
    char *got = escaped(in);
    bool same = strcmp(got, want) == 0;
    if (!same) {
        print_error("escaping gave \"%s\", wanted \"%s\"\n", got, want);
    }
    free(got);
    assert_true(same);
}

static void hostile_text_is_escaped(void **state)
{
    assert_escapes_to("plain", "plain");
    assert_escapes_to("", "");
    assert_escapes_to("</value><x>&amp;", "&lt;/value&gt;&lt;x&gt;&amp;amp;");
    assert_escapes_to("\"quotes\" 'stay'", "\"quotes\" 'stay'");
    assert_escapes_to("tab\tnl\ncr\r", "tab\tnl\ncr&#13;");
    assert_escapes_to("bell\x07"
                      "esc\x1b",
                      "bell\xef\xbf\xbd"
                      "esc\xef\xbf\xbd");
    assert_escapes_to("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
                      "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    /* Invalid UTF-8 and characters XML cannot carry become U+FFFD, one per bad byte. */
    assert_escapes_to("a\xff"
                      "b",
                      "a\xef\xbf\xbd"
                      "b");
    assert_escapes_to("\xc3", "\xef\xbf\xbd");                 /* truncated at the end */
    assert_escapes_to("\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"); /* overlong */
    assert_escapes_to("\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); /* surrogate */
    assert_escapes_to("\xef\xbf\xbf", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); /* U+FFFF */

    /* Element text and the error message go through the same escaping. */
    struct nb_buf b = NB_BUF_INIT;
    ec2_xml_text(&b, "description", "<script>alert(1)</script>");
    assert_string_equal(b.data, "<description>&lt;script&gt;alert(1)&lt;/script&gt;</description>");
    nb_buf_reset(&b);
    ec2_xml_error(&b, "InvalidParameterValue", "bad ]]> & <![CDATA[", "r<1>");
    assert_non_null(strstr(b.data, "<Message>bad ]]&gt; &amp; &lt;![CDATA[</Message>"));
    assert_non_null(strstr(b.data, "<RequestID>r&lt;1&gt;</RequestID>"));
    nb_buf_free(&b);
}

static void action_name_is_sanitized(void **state)
{
    struct nb_buf b = NB_BUF_INIT;
    ec2_xml_begin(&b, "Run<x>Instances\"", "id");
    ec2_xml_end(&b, "Run<x>Instances\"");
    assert_string_equal(b.data, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                                "<RunxInstancesResponse xmlns=\"" EC2_XML_NAMESPACE "\">"
                                "<requestId>id</requestId></RunxInstancesResponse>");
    nb_buf_free(&b);
}

static void numbers_and_booleans(void **state)
{
    struct nb_buf b = NB_BUF_INIT;
    ec2_xml_int(&b, "a", 0);
    ec2_xml_int(&b, "b", -42);
    ec2_xml_int(&b, "c", LLONG_MIN);
    ec2_xml_int(&b, "d", LLONG_MAX);
    ec2_xml_bool(&b, "e", true);
    ec2_xml_bool(&b, "f", false);
    ec2_xml_empty(&b, "g");
    assert_string_equal(b.data, "<a>0</a><b>-42</b><c>-9223372036854775808</c>"
                                "<d>9223372036854775807</d><e>true</e><f>false</f><g/>");
    nb_buf_free(&b);
}

static void timestamps(void **state)
{
    char t[EC2_XML_TIME_LEN];
    assert_string_equal(ec2_xml_format_time_ms(0, t), "1970-01-01T00:00:00.000Z");
    assert_string_equal(ec2_xml_format_time_ms(1795323067000LL, t), "2026-11-22T04:51:07.000Z");
    assert_string_equal(ec2_xml_format_time_ms(1709251199999LL, t), "2024-02-29T23:59:59.999Z");
    assert_string_equal(ec2_xml_format_time_ms(1795323067042LL, t), "2026-11-22T04:51:07.042Z");
    assert_string_equal(ec2_xml_format_time_ms(-1, t), "1969-12-31T23:59:59.999Z");
    assert_string_equal(ec2_xml_format_time_ms(INT64_MAX, t), "9999-12-31T23:59:59.999Z");
    assert_string_equal(ec2_xml_format_time_ms(INT64_MIN, t), "0000-01-01T00:00:00.000Z");

    struct nb_buf b = NB_BUF_INIT;
    ec2_xml_time(&b, "launchTime", (time_t)1795323067);
    ec2_xml_time(&b, "far", (time_t)INT64_MAX);
    assert_string_equal(b.data, "<launchTime>2026-11-22T04:51:07.000Z</launchTime>"
                                "<far>9999-12-31T23:59:59.000Z</far>");
    nb_buf_free(&b);
}

static void status_table(void **state)
{
    static const struct {
        const char *code;
        int status;
    } want[] = {
        {"AuthFailure", 401},
        {"SignatureDoesNotMatch", 403},
        {"IncompleteSignature", 400},
        {"RequestExpired", 400},
        {"OptInRequired", 403},
        {"InvalidAction", 400},
        {"MissingParameter", 400},
        {"InvalidParameterValue", 400},
        {"InvalidParameterCombination", 400},
        {"DryRunOperation", 412},
        {"UnauthorizedOperation", 403},
        {"InvalidInstanceID.NotFound", 400},
        {"InvalidInstanceID.Malformed", 400},
        {"InvalidKeyPair.NotFound", 400},
        {"InvalidKeyPair.Duplicate", 400},
        {"InvalidAMIID.NotFound", 400},
        {"InvalidAMIID.Malformed", 400},
        {"IncorrectInstanceState", 400},
        {"InstanceLimitExceeded", 400},
        {"IdempotentParameterMismatch", 400},
        {"InternalError", 500},
        {"Unavailable", 503},
        {"RequestLimitExceeded", 503},
        {"InvalidVolume.NotFound", 400}, /* not listed: a client error */
        {"", 400},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (ec2_xml_status(want[i].code) != want[i].status) {
            fail_msg("status of \"%s\" is %d, wanted %d", want[i].code,
                     ec2_xml_status(want[i].code), want[i].status);
        }
    }
}

static void errcodes_map_to_ec2_codes(void **state)
{
    assert_string_equal(ec2_xml_code(NB_ERR_MISSING), "MissingParameter");
    assert_string_equal(ec2_xml_code(NB_ERR_INVALID), "InvalidParameterValue");
    assert_string_equal(ec2_xml_code(NB_ERR_AUTH), "AuthFailure");
    assert_string_equal(ec2_xml_code(NB_ERR_FORBIDDEN), "UnauthorizedOperation");
    assert_string_equal(ec2_xml_code(NB_ERR_CONFLICT), "IncorrectState");
    assert_string_equal(ec2_xml_code(NB_ERR_LIMIT), "ResourceLimitExceeded");
    assert_string_equal(ec2_xml_code(NB_ERR_DB), "InternalError");
    assert_string_equal(ec2_xml_code(NB_ERR_INTERNAL), "InternalError");
    assert_string_equal(ec2_xml_code(NB_ERR_IO), "InternalError");
    assert_string_equal(ec2_xml_code(NB_ERR_NONE), "InternalError");
    assert_string_equal(ec2_xml_code(NB_ERR_UNAVAILABLE), "Unavailable");
    assert_string_equal(ec2_xml_code(NB_ERR_TIMEOUT), "Unavailable");
    /* Every code maps to something with a status of at least 400. */
    for (int c = NB_ERR_NONE; c <= NB_ERR_UNAVAILABLE; c++) {
        assert_true(ec2_xml_status(ec2_xml_code((enum nb_errcode)c)) >= 400);
    }
}

static void error_documents_from_errors(void **state)
{
    struct nb_buf b = NB_BUF_INIT;
    struct nb_error err = {0};

    nb_error_set(&err, NB_ERR_MISSING, "missing required parameter \"ImageId\"");
    assert_int_equal(ec2_xml_error_from(&b, &err, "r1"), 400);
    assert_non_null(strstr(b.data, "<Code>MissingParameter</Code><Message>missing required "
                                   "parameter \"ImageId\"</Message>"));

    /* The reason, when set, is the code. */
    nb_buf_reset(&b);
    nb_error_set(&err, NB_ERR_NOT_FOUND, "instance \"i-1\" does not exist");
    nb_error_reason(&err, "InvalidInstanceID.NotFound");
    assert_int_equal(ec2_xml_error_from(&b, &err, "r2"), 400);
    assert_non_null(strstr(b.data, "<Code>InvalidInstanceID.NotFound</Code>"));

    /* Internal failures never show their message. */
    nb_buf_reset(&b);
    nb_error_set(&err, NB_ERR_DB, "could not run \"SELECT secret FROM keys\": connection lost");
    assert_int_equal(ec2_xml_error_from(&b, &err, "r3"), 500);
    assert_null(strstr(b.data, "SELECT"));
    assert_non_null(strstr(b.data, "<Code>InternalError</Code>"
                                   "<Message>an internal error has occurred</Message>"));

    nb_buf_reset(&b);
    nb_error_set(&err, NB_ERR_UNAVAILABLE, "libvirtd at qemu+ssh://host-7/system is down");
    assert_int_equal(ec2_xml_error_from(&b, &err, "r4"), 503);
    assert_null(strstr(b.data, "host-7"));

    nb_buf_reset(&b);
    nb_error_set(&err, NB_ERR_AUTH, "signature does not match");
    nb_error_reason(&err, "SignatureDoesNotMatch");
    assert_int_equal(ec2_xml_error_from(&b, &err, "r5"), 403);
    nb_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_describe_regions),
        cmocka_unit_test(golden_describe_instances),
        cmocka_unit_test(golden_error),
        cmocka_unit_test(hostile_text_is_escaped),
        cmocka_unit_test(action_name_is_sanitized),
        cmocka_unit_test(numbers_and_booleans),
        cmocka_unit_test(timestamps),
        cmocka_unit_test(status_table),
        cmocka_unit_test(errcodes_map_to_ec2_codes),
        cmocka_unit_test(error_documents_from_errors),
    };
    return cmocka_run_group_tests_name("ec2_xml", tests, NULL, NULL);
}
