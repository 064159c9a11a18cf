/* Unit tests of the EC2 Query API parameter parser (api-gateway/ec2_params.c): form and query
 * decoding, rejected inputs, typed lookups, lists, filters, tag specifications, common
 * parameters and the redacted JSON copy for the request log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ec2_params.h"
#include "nubo/arena.h"
#include "nubo/error.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each case gets a fresh arena in '*state'. */
static int setup(void **state)
{
    *state = nb_arena_new(0);
    return 0;
}

static int teardown(void **state)
{
    nb_arena_free(*state);
    return 0;
}

/* Parses 'query' and 'body' (either may be NULL). */
static struct ec2_params *parse(void **state, const char *query, const char *body,
                                struct nb_error *err)
{
    return ec2_params_parse(*state, query, query ? strlen(query) : 0, body, body ? strlen(body) : 0,
                            err);
}

/* Asserts that parsing 'body' fails with NB_ERR_INVALID and a message containing 'needle'. */
static void assert_body_rejected(void **state, const char *body, const char *needle)
{
    struct nb_error err = {0};
    struct ec2_params *p = parse(state, NULL, body, &err);
    if (p || err.code != NB_ERR_INVALID || !strstr(err.msg, needle)) {
        fail_msg("body \"%s\": expected an error containing \"%s\", got \"%s\"", body, needle,
                 p ? "(accepted)" : err.msg);
    }
}

static void form_body_is_decoded(void **state)
{
    struct nb_error err = {0};
    struct ec2_params *p =
        parse(state, NULL,
              "Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3AName"
              "&Filter.1.Value.1=web+server%21&Empty=&Bare&Eq=a%3Db=c",
              &err);
    assert_non_null(p);
    assert_int_equal(ec2_params_count(p), 7);
    assert_string_equal(ec2_params_get(p, "Action"), "DescribeInstances");
    assert_string_equal(ec2_params_get(p, "Filter.1.Name"), "tag:Name");
    assert_string_equal(ec2_params_get(p, "Filter.1.Value.1"), "web server!");
    assert_string_equal(ec2_params_get(p, "Empty"), "");
    assert_string_equal(ec2_params_get(p, "Bare"), "");
    assert_string_equal(ec2_params_get(p, "Eq"), "a=b=c"); /* only the first '=' splits */
    assert_null(ec2_params_get(p, "action"));              /* names are case-sensitive */
    assert_null(ec2_params_get(p, "Nope"));
    /* Iteration keeps the request order. */
    assert_string_equal(ec2_params_at(p, 0)->name, "Action");
    assert_string_equal(ec2_params_at(p, 6)->name, "Eq");
}

static void query_and_body_are_merged(void **state)
{
    struct nb_error err = {0};
    struct ec2_params *p =
        parse(state, "Action=RunInstances&Q=a+b%2Bc", "B=a+b&&&C=%e2%82%ac&", &err);
    assert_non_null(p);
    assert_int_equal(ec2_params_count(p), 4);
    assert_string_equal(ec2_params_get(p, "Q"), "a+b+c"); /* '+' is literal in a query string */
    assert_string_equal(ec2_params_get(p, "B"), "a b");   /* and a space in a form body */
    assert_string_equal(ec2_params_get(p, "C"), "\xe2\x82\xac");
    assert_string_equal(ec2_params_at(p, 0)->name, "Action");
    assert_string_equal(ec2_params_at(p, 1)->name, "Q");
    assert_string_equal(ec2_params_at(p, 2)->name, "B");

    /* Empty inputs are an empty set, not an error. */
    p = parse(state, NULL, NULL, &err);
    assert_non_null(p);
    assert_int_equal(ec2_params_count(p), 0);
    p = parse(state, "&&", "&", &err);
    assert_non_null(p);
    assert_int_equal(ec2_params_count(p), 0);
}

static void bad_input_is_rejected(void **state)
{
    assert_body_rejected(state, "A=%", "invalid value for parameter \"A\": bad percent escape");
    assert_body_rejected(state, "A=%4", "bad percent escape");
    assert_body_rejected(state, "A=x%4", "bad percent escape");
    assert_body_rejected(state, "A=%zz", "bad percent escape");
    assert_body_rejected(state, "A=%G1", "bad percent escape");
    assert_body_rejected(state, "A%2=1", "invalid parameter name \"A%2\": bad percent escape");
    assert_body_rejected(state, "A=%00", "invalid value for parameter \"A\": contains a NUL byte");
    assert_body_rejected(state, "A%00B=1", "contains a NUL byte");
    assert_body_rejected(state, "A=%C3%28", "not valid UTF-8");       /* bad continuation */
    assert_body_rejected(state, "A=%C0%AF", "not valid UTF-8");       /* overlong '/' */
    assert_body_rejected(state, "A=%ED%A0%80", "not valid UTF-8");    /* a surrogate */
    assert_body_rejected(state, "A=%F4%90%80%80", "not valid UTF-8"); /* above U+10FFFF */
    assert_body_rejected(state, "A=%E2%82", "not valid UTF-8");       /* truncated */
    assert_body_rejected(state, "A=\xff", "not valid UTF-8");         /* raw, not escaped */
    assert_body_rejected(state, "%FF=1", "invalid parameter name \"%FF\": not valid UTF-8");
    assert_body_rejected(state, "=x", "empty parameter name");
    assert_body_rejected(state, "%41%3d=x&=y", "empty parameter name");

    /* A raw NUL byte inside the body (length-delimited input). */
    struct nb_error err = {0};
    const char body[] = "A=x\0y";
    assert_null(ec2_params_parse(*state, NULL, 0, body, sizeof body - 1, &err));
    assert_string_equal(err.msg, "invalid value for parameter \"A\": contains a NUL byte");

    /* Untrusted names are quoted safely: non-ASCII and control bytes become '?'. */
    assert_null(parse(state, NULL, "%E2%82%AC%0A=1&%E2%82%AC%0A=2", &err));
    assert_string_equal(err.msg, "parameter \"????\" is given more than once");
}

static void limits_are_enforced(void **state)
{
    struct nb_error err = {0};
    /* One parameter over the count limit. */
    size_t n = EC2_PARAMS_MAX_COUNT + 1;
    char *body = malloc(n * 2 + 1);
    for (size_t i = 0; i < n; i++) {
        memcpy(body + 2 * i, "a&", 2);
    }
    body[n * 2] = '\0';
    assert_null(parse(state, NULL, body, &err));
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_string_equal(err.msg, "too many parameters: more than 10000");
    free(body);

    /* Over the byte limit, counting query string and body together. */
    size_t half = EC2_PARAMS_MAX_BYTES / 2 + 1;
    body = malloc(half);
    memset(body, 'x', half);
    assert_null(ec2_params_parse(*state, body, half, body, half, &err));
    assert_string_equal(err.msg, "request parameters are longer than 1048576 bytes");
    free(body);

    /* Names longer than EC2_PARAMS_MAX_NAME. */
    char name[EC2_PARAMS_MAX_NAME + 4];
    memset(name, 'N', EC2_PARAMS_MAX_NAME + 1);
    strcpy(name + EC2_PARAMS_MAX_NAME + 1, "=1");
    assert_null(parse(state, NULL, name, &err));
    assert_non_null(strstr(err.msg, "is longer than 255 bytes"));
    name[EC2_PARAMS_MAX_NAME] = '=';
    name[EC2_PARAMS_MAX_NAME + 1] = '\0';
    assert_non_null(parse(state, NULL, name, &err));
}

static void duplicates_are_rejected(void **state)
{
    struct nb_error err = {0};
    assert_null(parse(state, NULL, "Action=X&InstanceId.1=a&InstanceId.1=b", &err));
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_string_equal(err.msg, "parameter \"InstanceId.1\" is given more than once");
    /* Across the query string and the body, and when escaping makes the names look different. */
    assert_null(parse(state, "Action=X", "Action=X", &err));
    assert_string_equal(err.msg, "parameter \"Action\" is given more than once");
    assert_null(parse(state, NULL, "Dry%52un=true&DryRun=true", &err));
    assert_string_equal(err.msg, "parameter \"DryRun\" is given more than once");
}

static void strings_and_required(void **state)
{
    struct nb_error err = {0};
    struct ec2_params *p = parse(state, NULL, "KeyName=k1", &err);
    const char *s = "untouched";
    assert_int_equal(ec2_params_get_string(p, "KeyName", true, &s, &err), 1);
    assert_string_equal(s, "k1");
    s = "untouched";
    assert_int_equal(ec2_params_get_string(p, "ImageId", false, &s, &err), 0);
    assert_string_equal(s, "untouched");
    assert_int_equal(ec2_params_get_string(p, "ImageId", true, &s, &err), -1);
    assert_int_equal(err.code, NB_ERR_MISSING);
    assert_string_equal(err.msg, "missing required parameter \"ImageId\"");
}

static void ints_name_parameter_and_value(void **state)
{
    struct nb_error err = {0};
    struct ec2_params *p =
        parse(state, NULL,
              "MinCount=1&MaxCount=0&Neg=-5&Big=99999999999999999999&Plus=%2B5&Space=%205"
              "&Empty=&Word=ten&Min=-9223372036854775808&Max=9223372036854775807",
              &err);
    assert_non_null(p);
    long long v = 0;
    assert_int_equal(ec2_params_get_int(p, "MinCount", true, 1, 100, &v, &err), 1);
    assert_int_equal(v, 1);
    assert_int_equal(ec2_params_get_int(p, "Neg", true, -10, 10, &v, &err), 1);
    assert_int_equal(v, -5);
    assert_int_equal(ec2_params_get_int(p, "Min", true, LLONG_MIN, LLONG_MAX, &v, &err), 1);
    assert_true(v == LLONG_MIN);
    assert_int_equal(ec2_params_get_int(p, "Max", true, LLONG_MIN, LLONG_MAX, &v, &err), 1);
    assert_true(v == LLONG_MAX);

    assert_int_equal(ec2_params_get_int(p, "MaxCount", true, 1, 100, &v, &err), -1);
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_string_equal(err.msg, "invalid value \"0\" for parameter \"MaxCount\": must be an "
                                 "integer from 1 to 100");
    static const char *const bad[] = {"Big", "Plus", "Space", "Empty", "Word"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(ec2_params_get_int(p, bad[i], true, LLONG_MIN, LLONG_MAX, &v, &err), -1);
        assert_int_equal(err.code, NB_ERR_INVALID);
        assert_non_null(strstr(err.msg, bad[i]));
    }
    assert_int_equal(ec2_params_get_int(p, "Absent", true, 0, 1, &v, &err), -1);
    assert_int_equal(err.code, NB_ERR_MISSING);
    assert_int_equal(ec2_params_get_int(p, "Absent", false, 0, 1, &v, &err), 0);
}

static void bools_name_parameter_and_value(void **state)
{
    struct nb_error err = {0};
    struct ec2_params *p = parse(state, NULL, "A=true&B=false&C=True&D=yes&E=", &err);
    bool b = false;
    assert_int_equal(ec2_params_get_bool(p, "A", true, &b, &err), 1);
    assert_true(b);
    assert_int_equal(ec2_params_get_bool(p, "B", true, &b, &err), 1);
    assert_false(b);
    assert_int_equal(ec2_params_get_bool(p, "C", true, &b, &err), 1);
    assert_true(b);
    assert_int_equal(ec2_params_get_bool(p, "D", true, &b, &err), -1);
    assert_string_equal(err.msg,
                        "invalid value \"yes\" for parameter \"D\": must be \"true\" or \"false\"");
    assert_int_equal(ec2_params_get_bool(p, "E", true, &b, &err), -1);
    assert_int_equal(ec2_params_get_bool(p, "F", false, &b, &err), 0);
}

static void lists_sort_by_index_and_accept_gaps(void **state)
{
    struct nb_error err = {0};
    struct ec2_params *p = parse(state, NULL,
                                 "InstanceId.3=c&InstanceId.1=a&InstanceId.10=d&InstanceId.2=b"
                                 "&InstanceId=bare&InstanceIds.1=other&InstanceId-1=x",
                                 &err);
    assert_non_null(p);
    const char **items = NULL;
    size_t n = 0;
    assert_int_equal(ec2_params_get_list(p, *state, "InstanceId", &items, &n, &err), 0);
    assert_int_equal(n, 4);
    assert_string_equal(items[0], "a");
    assert_string_equal(items[1], "b");
    assert_string_equal(items[2], "c");
    assert_string_equal(items[3], "d");

    assert_int_equal(ec2_params_get_list(p, *state, "GroupId", &items, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_null(items);
}

static void lists_reject_bad_indices(void **state)
{
    static const char *const bad[] = {
        "InstanceId.0=a",  "InstanceId.01=a", "InstanceId.x=a",          "InstanceId.-1=a",
        "InstanceId.=a",   "InstanceId.1x=a", "InstanceId.1000000000=a", "InstanceId.%2B1=a",
        "InstanceId.1.=a", "InstanceId..1=a",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct nb_error err = {0};
        struct ec2_params *p = parse(state, NULL, bad[i], &err);
        assert_non_null(p);
        const char **items;
        size_t n;
        assert_int_equal(ec2_params_get_list(p, *state, "InstanceId", &items, &n, &err), -1);
        assert_int_equal(err.code, NB_ERR_INVALID);
        if (!strstr(err.msg, "invalid list index in parameter \"InstanceId.")) {
            fail_msg("%s: unexpected message \"%s\"", bad[i], err.msg);
        }
    }
    /* Something after a valid index is an unknown parameter. */
    struct nb_error err = {0};
    struct ec2_params *p = parse(state, NULL, "InstanceId.1=a&InstanceId.2.Extra=b", &err);
    const char **items;
    size_t n;
    assert_int_equal(ec2_params_get_list(p, *state, "InstanceId", &items, &n, &err), -1);
    assert_string_equal(err.msg, "unknown parameter \"InstanceId.2.Extra\"");
    assert_string_equal(err.reason, "UnknownParameter");
}

static void filters_group_names_and_values(void **state)
{
    struct nb_error err = {0};
    struct ec2_params *p = parse(state, NULL,
                                 "Filter.10.Name=last&Filter.10.Value.1=z"
                                 "&Filter.1.Name=instance-state-name&Filter.1.Value.2=stopped"
                                 "&Filter.1.Value.1=running&Filter.1.Value.11=pending"
                                 "&Filter.2.Name=tag%3AEnv",
                                 &err);
    assert_non_null(p);
    struct ec2_params_filter *f = NULL;
    size_t n = 0;
    assert_int_equal(ec2_params_get_filters(p, *state, &f, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(f[0].name, "instance-state-name");
    assert_int_equal(f[0].n_values, 3);
    assert_string_equal(f[0].values[0], "running");
    assert_string_equal(f[0].values[1], "stopped");
    assert_string_equal(f[0].values[2], "pending");
    assert_string_equal(f[1].name, "tag:Env");
    assert_int_equal(f[1].n_values, 0);
    assert_string_equal(f[2].name, "last");
    assert_int_equal(f[2].n_values, 1);

    p = parse(state, NULL, "Action=DescribeRegions", &err);
    assert_int_equal(ec2_params_get_filters(p, *state, &f, &n, &err), 0);
    assert_int_equal(n, 0);
}

static void filters_report_the_bad_member(void **state)
{
    struct nb_error err = {0};
    struct ec2_params_filter *f;
    size_t n;
    struct ec2_params *p = parse(state, NULL, "Filter.1.Name=a&Filter.2.Value.1=x", &err);
    assert_int_equal(ec2_params_get_filters(p, *state, &f, &n, &err), -1);
    assert_int_equal(err.code, NB_ERR_MISSING);
    assert_string_equal(err.msg, "missing required parameter \"Filter.2.Name\"");

    p = parse(state, NULL, "Filter.1.Name=a&Filter.1.Nmae=b", &err);
    assert_int_equal(ec2_params_get_filters(p, *state, &f, &n, &err), -1);
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_string_equal(err.msg, "unknown parameter \"Filter.1.Nmae\"");

    p = parse(state, NULL, "Filter.1.Name=a&Filter.1.Value.0=b", &err);
    assert_int_equal(ec2_params_get_filters(p, *state, &f, &n, &err), -1);
    assert_non_null(strstr(err.msg, "\"Filter.1.Value.0\""));

    p = parse(state, NULL, "Filter.1.Name=a&Filter.1.Value=b", &err);
    assert_int_equal(ec2_params_get_filters(p, *state, &f, &n, &err), -1);
    assert_string_equal(err.msg, "unknown parameter \"Filter.1.Value\"");

    p = parse(state, NULL, "Filter.1=a", &err);
    assert_int_equal(ec2_params_get_filters(p, *state, &f, &n, &err), -1);
    assert_string_equal(err.msg, "unknown parameter \"Filter.1\"");

    p = parse(state, NULL, "Filter.one.Name=a", &err);
    assert_int_equal(ec2_params_get_filters(p, *state, &f, &n, &err), -1);
    assert_non_null(strstr(err.msg, "invalid list index in parameter \"Filter.one.Name\""));
}

static void tag_specifications(void **state)
{
    struct nb_error err = {0};
    struct ec2_params *p =
        parse(state, NULL,
              "TagSpecification.2.ResourceType=volume&TagSpecification.2.Tag.1.Key=k"
              "&TagSpecification.1.ResourceType=instance"
              "&TagSpecification.1.Tag.2.Key=NoValue"
              "&TagSpecification.1.Tag.1.Key=Name&TagSpecification.1.Tag.1.Value=web+1",
              &err);
    assert_non_null(p);
    struct ec2_params_tag_spec *s = NULL;
    size_t n = 0;
    assert_int_equal(ec2_params_get_tag_specs(p, *state, &s, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(s[0].resource_type, "instance");
    assert_int_equal(s[0].n_tags, 2);
    assert_string_equal(s[0].tags[0].key, "Name");
    assert_string_equal(s[0].tags[0].value, "web 1");
    assert_string_equal(s[0].tags[1].key, "NoValue");
    assert_string_equal(s[0].tags[1].value, "");
    assert_string_equal(s[1].resource_type, "volume");
    assert_int_equal(s[1].n_tags, 1);
    assert_string_equal(s[1].tags[0].key, "k");
}

static void tag_specifications_report_the_bad_member(void **state)
{
    struct nb_error err = {0};
    struct ec2_params_tag_spec *s;
    size_t n;
    struct ec2_params *p = parse(state, NULL, "TagSpecification.1.Tag.1.Key=k", &err);
    assert_int_equal(ec2_params_get_tag_specs(p, *state, &s, &n, &err), -1);
    assert_int_equal(err.code, NB_ERR_MISSING);
    assert_string_equal(err.msg, "missing required parameter \"TagSpecification.1.ResourceType\"");

    p = parse(state, NULL,
              "TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.3.Value=v", &err);
    assert_int_equal(ec2_params_get_tag_specs(p, *state, &s, &n, &err), -1);
    assert_int_equal(err.code, NB_ERR_MISSING);
    assert_string_equal(err.msg, "missing required parameter \"TagSpecification.1.Tag.3.Key\"");

    p = parse(state, NULL,
              "TagSpecification.1.ResourceType=instance&TagSpecification.1.Tags.1.Key=k", &err);
    assert_int_equal(ec2_params_get_tag_specs(p, *state, &s, &n, &err), -1);
    assert_string_equal(err.msg, "unknown parameter \"TagSpecification.1.Tags.1.Key\"");

    p = parse(state, NULL,
              "TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=k"
              "&TagSpecification.1.Tag.1.Kye=v",
              &err);
    assert_int_equal(ec2_params_get_tag_specs(p, *state, &s, &n, &err), -1);
    assert_string_equal(err.msg, "unknown parameter \"TagSpecification.1.Tag.1.Kye\"");
}

static void create_tags_parameters(void **state)
{
    struct nb_error err = {0};
    struct ec2_params *p = parse(state, NULL,
                                 "Action=CreateTags&ResourceId.2=vol-2&ResourceId.1=i-1"
                                 "&Tag.1.Key=Name&Tag.1.Value=a%26b&Tag.2.Key=Env",
                                 &err);
    assert_non_null(p);
    const char **ids;
    size_t n;
    assert_int_equal(ec2_params_get_list(p, *state, "ResourceId", &ids, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(ids[0], "i-1");
    assert_string_equal(ids[1], "vol-2");
    struct ec2_params_tag *t;
    assert_int_equal(ec2_params_get_tags(p, *state, "Tag", &t, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(t[0].key, "Name");
    assert_string_equal(t[0].value, "a&b");
    assert_string_equal(t[1].key, "Env");
    assert_string_equal(t[1].value, "");

    p = parse(state, NULL, "Tag.1.Value=v", &err);
    assert_int_equal(ec2_params_get_tags(p, *state, "Tag", &t, &n, &err), -1);
    assert_string_equal(err.msg, "missing required parameter \"Tag.1.Key\"");
}

static void common_parameters(void **state)
{
    struct nb_error err = {0};
    struct ec2_params_common c;
    struct ec2_params *p =
        parse(state, NULL, "Action=RunInstances&Version=2016-11-15&DryRun=true&ClientToken=abc-123",
              &err);
    assert_int_equal(ec2_params_get_common(p, &c, &err), 0);
    assert_string_equal(c.action, "RunInstances");
    assert_string_equal(c.version, "2016-11-15");
    assert_true(c.dry_run);
    assert_string_equal(c.client_token, "abc-123");

    /* Any Version is recorded as sent; absent ones are NULL. */
    p = parse(state, NULL, "Action=DescribeRegions&Version=2014-01-01", &err);
    assert_int_equal(ec2_params_get_common(p, &c, &err), 0);
    assert_string_equal(c.version, "2014-01-01");
    assert_false(c.dry_run);
    assert_null(c.client_token);
    p = parse(state, NULL, "Action=DescribeRegions", &err);
    assert_int_equal(ec2_params_get_common(p, &c, &err), 0);
    assert_null(c.version);

    p = parse(state, NULL, "Version=2016-11-15", &err);
    assert_int_equal(ec2_params_get_common(p, &c, &err), -1);
    assert_int_equal(err.code, NB_ERR_MISSING);
    assert_string_equal(err.msg, "missing required parameter \"Action\"");
    assert_string_equal(err.reason, "MissingAction");

    p = parse(state, NULL, "Action=Describe%3CRegions%3E", &err);
    assert_int_equal(ec2_params_get_common(p, &c, &err), -1);
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_string_equal(err.msg, "invalid action \"Describe<Regions>\"");
    assert_string_equal(err.reason, "InvalidAction");
    p = parse(state, NULL, "Action=", &err);
    assert_int_equal(ec2_params_get_common(p, &c, &err), -1);
    assert_string_equal(err.reason, "InvalidAction");

    p = parse(state, NULL, "Action=X&DryRun=1", &err);
    assert_int_equal(ec2_params_get_common(p, &c, &err), -1);
    assert_non_null(strstr(err.msg, "\"DryRun\""));
}

static void client_token_is_bounded(void **state)
{
    struct nb_error err = {0};
    struct ec2_params_common c;
    char body[128];
    snprintf(body, sizeof body, "Action=X&ClientToken=%.*s", EC2_CLIENT_TOKEN_MAX,
             "0123456789012345678901234567890123456789012345678901234567890123456789");
    struct ec2_params *p = parse(state, NULL, body, &err);
    assert_int_equal(ec2_params_get_common(p, &c, &err), 0);
    assert_int_equal(strlen(c.client_token), EC2_CLIENT_TOKEN_MAX);

    strcat(body, "x");
    p = parse(state, NULL, body, &err);
    assert_int_equal(ec2_params_get_common(p, &c, &err), -1);
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_non_null(strstr(err.msg, "for parameter \"ClientToken\": must be at most 64 printable "
                                    "ASCII characters"));

    p = parse(state, NULL, "Action=X&ClientToken=caf%C3%A9", &err);
    assert_int_equal(ec2_params_get_common(p, &c, &err), -1);
    p = parse(state, NULL, "Action=X&ClientToken=a%09b", &err);
    assert_int_equal(ec2_params_get_common(p, &c, &err), -1);
}

static void paging_parameters(void **state)
{
    struct nb_error err = {0};
    long long max = 0;
    const char *token = "untouched";
    struct ec2_params *p = parse(state, NULL, "Action=DescribeInstances", &err);
    assert_int_equal(ec2_params_get_page(p, 5, 1000, 1000, &max, &token, &err), 0);
    assert_int_equal(max, 1000);
    assert_null(token);

    p = parse(state, NULL, "MaxResults=5&NextToken=abc%3D%3D", &err);
    assert_int_equal(ec2_params_get_page(p, 5, 1000, 1000, &max, &token, &err), 0);
    assert_int_equal(max, 5);
    assert_string_equal(token, "abc==");

    p = parse(state, NULL, "MaxResults=4", &err);
    assert_int_equal(ec2_params_get_page(p, 5, 1000, 1000, &max, &token, &err), -1);
    assert_string_equal(err.msg, "invalid value \"4\" for parameter \"MaxResults\": must be an "
                                 "integer from 5 to 1000");
}

static void redaction_in_json(void **state)
{
    struct nb_error err = {0};
    struct ec2_params *p =
        parse(state, "X-Amz-Signature=abc&X-Amz-Credential=AKID%2F20260101",
              "Action=RunInstances&UserData=IyEvYmluL3No&LaunchTemplateData.UserData=x"
              "&MyUserData=kept&AdminPassword=p&ClientSecret=s&AWSSecretAccessKeyId=k"
              "&PublicKeyMaterial=ssh-rsa&KeyName=mine&Note=%E2%82%AC%22",
              &err);
    assert_non_null(p);
    json_t *j = ec2_params_to_json(p, ec2_params_redact_default);
    assert_non_null(j);
    char *text = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
    assert_string_equal(text, "{\"X-Amz-Signature\":\"(redacted)\","
                              "\"X-Amz-Credential\":\"AKID/20260101\","
                              "\"Action\":\"RunInstances\","
                              "\"UserData\":\"(redacted)\","
                              "\"LaunchTemplateData.UserData\":\"(redacted)\","
                              "\"MyUserData\":\"kept\","
                              "\"AdminPassword\":\"(redacted)\","
                              "\"ClientSecret\":\"(redacted)\","
                              "\"AWSSecretAccessKeyId\":\"(redacted)\","
                              "\"PublicKeyMaterial\":\"(redacted)\","
                              "\"KeyName\":\"mine\","
                              "\"Note\":\"\\u20AC\\\"\"}");
    free(text);
    json_decref(j);

    /* Without a list only the built-in suffix rules apply. */
    j = ec2_params_to_json(p, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "UserData")), "IyEvYmluL3No");
    assert_string_equal(json_string_value(json_object_get(j, "AdminPassword")), "(redacted)");
    json_decref(j);

    static const char *const mine[] = {"KeyName", NULL};
    assert_true(ec2_params_redacted("keyname", mine));
    assert_true(ec2_params_redacted("Foo.KeyName", mine));
    assert_false(ec2_params_redacted("FooKeyName", mine));
    assert_true(ec2_params_redacted("db.password", NULL));
    assert_false(ec2_params_redacted("PasswordPolicy", NULL));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(form_body_is_decoded),
        T(query_and_body_are_merged),
        T(bad_input_is_rejected),
        T(limits_are_enforced),
        T(duplicates_are_rejected),
        T(strings_and_required),
        T(ints_name_parameter_and_value),
        T(bools_name_parameter_and_value),
        T(lists_sort_by_index_and_accept_gaps),
        T(lists_reject_bad_indices),
        T(filters_group_names_and_values),
        T(filters_report_the_bad_member),
        T(tag_specifications),
        T(tag_specifications_report_the_bad_member),
        T(create_tags_parameters),
        T(common_parameters),
        T(client_token_is_bounded),
        T(paging_parameters),
        T(redaction_in_json),
    };
#undef T
    return cmocka_run_group_tests_name("ec2_params", tests, NULL, NULL);
}
