/* libFuzzer target for the EC2 Query API parameter parser (api-gateway/ec2_params.c).
 *
 * Each input is parsed as a form body, as a query string, and split between the two; every set
 * that parses goes through every lookup (common parameters, typed getters, lists, filters, tag
 * specifications, tags, paging, the redacted JSON copy), and the invariants the gateway relies
 * on are checked: names and values are NUL-free UTF-8 (cross-checked with Jansson's own
 * validator), no name repeats, and the arrays lookups return hold no NULLs. Any violation aborts.
 *
 * Sources: this file, api-gateway/ec2_params.c, common/src/{arena,buf,error,json}.c; Jansson. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ec2_params.h"
#include "nubo/arena.h"
#include "nubo/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Checks that 's' is text Jansson accepts (UTF-8 without NUL) by building a string from it. */
static void check_text(const char *s)
{
    json_t *j = json_string(s);
    CHECK(j != NULL);
    json_decref(j);
}

static void check_error(const struct nb_error *err)
{
    CHECK(err->code == NB_ERR_INVALID || err->code == NB_ERR_MISSING);
    CHECK(err->msg[0] != '\0');
    check_text(err->msg); /* messages are sent back to clients */
}

/* Runs the list and tag lookups with the part of 'name' before its first '.' as the prefix. */
static void lookups_on_prefix(const struct ec2_params *p, struct nb_arena *a, const char *name)
{
    char prefix[EC2_PARAMS_MAX_NAME + 1];
    size_t len = strcspn(name, ".");
    memcpy(prefix, name, len);
    prefix[len] = '\0';
    struct nb_error err = {0};
    const char **items;
    size_t n;
    if (ec2_params_get_list(p, a, prefix, &items, &n, &err) == 0) {
        for (size_t i = 0; i < n; i++) {
            CHECK(items[i] != NULL);
        }
    } else {
        check_error(&err);
    }
    struct ec2_params_tag *tags;
    if (ec2_params_get_tags(p, a, prefix, &tags, &n, &err) == 0) {
        for (size_t i = 0; i < n; i++) {
            CHECK(tags[i].key != NULL && tags[i].value != NULL);
        }
    } else {
        check_error(&err);
    }
}

static void exercise(const struct ec2_params *p, struct nb_arena *a)
{
    struct nb_error err = {0};
    size_t count = ec2_params_count(p);
    CHECK(count <= EC2_PARAMS_MAX_COUNT);
    for (size_t i = 0; i < count; i++) {
        const struct ec2_params_entry *e = ec2_params_at(p, i);
        check_text(e->name);
        check_text(e->value);
        CHECK(e->name[0] != '\0' && strlen(e->name) <= EC2_PARAMS_MAX_NAME);
        CHECK(ec2_params_get(p, e->name) == e->value); /* names are unique */
        if (i < 16) {
            lookups_on_prefix(p, a, e->name);
        }
    }

    struct ec2_params_common c;
    if (ec2_params_get_common(p, &c, &err) == 0) {
        CHECK(c.action != NULL && c.action[0] != '\0');
    } else {
        check_error(&err);
    }
    const char *s;
    long long v;
    bool b;
    if (ec2_params_get_string(p, "ImageId", true, &s, &err) < 0) {
        check_error(&err);
    }
    if (ec2_params_get_int(p, "MinCount", false, 1, 1000, &v, &err) < 0) {
        check_error(&err);
    }
    if (ec2_params_get_bool(p, "EbsOptimized", false, &b, &err) < 0) {
        check_error(&err);
    }
    const char *token;
    if (ec2_params_get_page(p, 5, 1000, 1000, &v, &token, &err) == 0) {
        CHECK(v >= 5 && v <= 1000);
    } else {
        check_error(&err);
    }

    const char **items;
    size_t n;
    if (ec2_params_get_list(p, a, "InstanceId", &items, &n, &err) < 0) {
        check_error(&err);
    }
    struct ec2_params_filter *f;
    if (ec2_params_get_filters(p, a, &f, &n, &err) == 0) {
        for (size_t i = 0; i < n; i++) {
            CHECK(f[i].name != NULL);
            for (size_t k = 0; k < f[i].n_values; k++) {
                CHECK(f[i].values[k] != NULL);
            }
        }
    } else {
        check_error(&err);
    }
    struct ec2_params_tag_spec *ts;
    if (ec2_params_get_tag_specs(p, a, &ts, &n, &err) == 0) {
        for (size_t i = 0; i < n; i++) {
            CHECK(ts[i].resource_type != NULL);
            for (size_t k = 0; k < ts[i].n_tags; k++) {
                CHECK(ts[i].tags[k].key != NULL && ts[i].tags[k].value != NULL);
            }
        }
    } else {
        check_error(&err);
    }

    json_t *j = ec2_params_to_json(p, ec2_params_redact_default);
    CHECK(j != NULL && json_object_size(j) == count);
    char *text = json_dumps(j, JSON_COMPACT);
    CHECK(text != NULL);
    free(text);
    json_decref(j);
}

static void run(const char *query, size_t query_len, const char *body, size_t body_len)
{
    struct nb_arena *a = nb_arena_new(0);
    struct nb_error err = {0};
    struct ec2_params *p = ec2_params_parse(a, query, query_len, body, body_len, &err);
    if (p) {
        exercise(p, a);
    } else {
        CHECK(err.code == NB_ERR_INVALID);
        check_text(err.msg);
    }
    nb_arena_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    run(NULL, 0, text, size);
    run(text, size, NULL, 0);
    if (size > 1) {
        /* The first byte chooses where the query string ends and the body begins. */
        size_t split = 1 + data[0] % (size - 1);
        run(text + 1, split - 1, text + split, size - split);
    }
    return 0;
}
