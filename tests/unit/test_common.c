/* Unit tests of the small common modules: errors, configuration, arenas, buffers, ids, JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "nubo/arena.h"
#include "nubo/buf.h"
#include "nubo/config.h"
#include "nubo/error.h"
#include "nubo/id.h"
#include "nubo/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void error_set_and_clear(void **state)
{
    struct nb_error err = {0};
    nb_error_set(&err, NB_ERR_INVALID, "bad \"%s\"", "x");
    nb_error_detail(&err, "hint %d", 1);
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_string_equal(err.msg, "bad \"x\"");
    assert_string_equal(err.detail, "hint 1");
    nb_error_set(&err, NB_ERR_IO, "again");
    assert_string_equal(err.detail, ""); /* a new error drops the old detail */
    nb_error_errno(&err, 2, "could not open \"%s\"", "f");
    assert_string_equal(err.msg, "could not open \"f\": No such file or directory");
    nb_error_clear(&err);
    assert_int_equal(err.code, NB_ERR_NONE);
    nb_error_set(NULL, NB_ERR_IO, "ignored"); /* NULL is allowed */
    assert_string_equal(nb_errcode_name(NB_ERR_NOT_FOUND), "not-found");
}

static char *write_temp(const char *text)
{
    char *path = strdup("/tmp/nubo-test-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void config_precedence(void **state)
{
    char *path = write_temp("# comment\n db.conninfo = host=/x  \nhttp.port=81 # trailing\n"
                            "flag.key = from-file\nenv.key = from-file\n");
    struct nb_config *cfg = nb_config_new();
    struct nb_error err = {0};
    assert_int_equal(nb_config_load_file(cfg, path, &err), 0);
    assert_string_equal(nb_config_get(cfg, "db.conninfo", NULL), "host=/x");
    assert_string_equal(nb_config_get(cfg, "missing", "def"), "def");

    setenv("NUBO_ENV_KEY", "from-env", 1);
    setenv("NUBO_FLAG_KEY", "from-env", 1);
    assert_int_equal(nb_config_set_arg(cfg, "flag.key=from-flag", &err), 0);
    assert_string_equal(nb_config_get(cfg, "env.key", NULL), "from-env");
    assert_string_equal(nb_config_get(cfg, "flag.key", NULL), "from-flag");
    unsetenv("NUBO_ENV_KEY");
    unsetenv("NUBO_FLAG_KEY");

    long long port;
    assert_int_equal(nb_config_get_int(cfg, "http.port", 1, 0, 65535, &port, &err), 0);
    assert_int_equal(port, 81);
    assert_int_equal(nb_config_get_int(cfg, "http.port", 1, 100, 200, &port, &err), -1);
    assert_non_null(strstr(err.msg, "http.port"));
    bool b;
    nb_config_set(cfg, "b", "yes");
    assert_int_equal(nb_config_get_bool(cfg, "b", false, &b, &err), 0);
    assert_true(b);
    nb_config_set(cfg, "b", "maybe");
    assert_int_equal(nb_config_get_bool(cfg, "b", false, &b, &err), -1);
    nb_config_free(cfg);
    unlink(path);
    free(path);
}

static void config_bad_file(void **state)
{
    char *path = write_temp("ok = 1\nthis line has no equals\n");
    struct nb_config *cfg = nb_config_new();
    struct nb_error err = {0};
    assert_int_equal(nb_config_load_file(cfg, path, &err), -1);
    assert_non_null(strstr(err.msg, "line 2"));
    assert_int_equal(nb_config_load_file(cfg, "/nonexistent/nubo.conf", &err), -1);
    assert_int_equal(err.code, NB_ERR_IO);
    assert_int_equal(nb_config_set_arg(cfg, "novalue", &err), -1);
    nb_config_free(cfg);
    unlink(path);
    free(path);
}

static void arena_alloc_and_reset(void **state)
{
    struct nb_arena *a = nb_arena_new(64);
    char *s = nb_arena_strdup(a, "hello");
    char *big = nb_arena_alloc(a, 10000); /* larger than any block so far */
    memset(big, 'x', 10000);
    char *p = nb_arena_printf(a, "%s-%d", s, 42);
    assert_string_equal(p, "hello-42");
    assert_int_equal((uintptr_t)nb_arena_alloc(a, 3) % 16, 0);
    unsigned char *z = nb_arena_zalloc(a, 32);
    for (int i = 0; i < 32; i++) {
        assert_int_equal(z[i], 0);
    }
    nb_arena_reset(a);
    assert_string_equal(nb_arena_strndup(a, "abcdef", 3), "abc");
    nb_arena_free(a);
    nb_arena_free(NULL);
}

static void count_call(void *arg)
{
    int *calls = arg;
    (*calls)++;
}

static void record_order(void *arg)
{
    int *slot = arg;
    static int order;
    *slot = ++order;
}

static void arena_cleanups_run_once_in_reverse(void **state)
{
    struct nb_arena *a = nb_arena_new(0);
    int calls = 0, first = 0, second = 0;
    nb_arena_on_free(a, count_call, &calls);
    nb_arena_reset(a); /* a reset runs the cleanups too */
    assert_int_equal(calls, 1);
    nb_arena_on_free(a, record_order, &first);
    nb_arena_on_free(a, record_order, &second);
    nb_arena_free(a);
    assert_true(second < first); /* last registered, first run */
    assert_int_equal(calls, 1);
}

static void buf_xml(void **state)
{
    struct nb_buf b = NB_BUF_INIT;
    nb_buf_xml_elem(&b, "k", "a<b>&\"c'\x01");
    assert_string_equal(b.data, "<k>a&lt;b&gt;&amp;&quot;c&apos;\xEF\xBF\xBD</k>");
    nb_buf_reset(&b);
    for (int i = 0; i < 1000; i++) {
        nb_buf_printf(&b, "%04d", i);
    }
    assert_int_equal(b.len, 4000);
    assert_memory_equal(b.data + 3996, "0999", 4);
    char *s = nb_buf_steal(&b);
    assert_null(b.data);
    free(s);
    nb_buf_free(&b);
}

static void ids_have_ec2_form(void **state)
{
    char id[NB_ID_MAX], id2[NB_ID_MAX];
    assert_int_equal(nb_id_new("i", id, sizeof id), 0);
    assert_int_equal(strlen(id), 19);
    assert_true(nb_id_valid("i", id));
    assert_int_equal(nb_id_new("i", id2, sizeof id2), 0);
    assert_string_not_equal(id, id2);
    assert_false(nb_id_valid("ami", id));
    assert_false(nb_id_valid("i", "i-0123"));
    assert_false(nb_id_valid("i", "i-0123456789ABCDEF0"));
    assert_true(nb_id_valid("vpc", "vpc-0123456789abcdef0"));
    char small[8];
    assert_int_equal(nb_id_new("i", small, sizeof small), -1);
    char uuid[37];
    assert_int_equal(nb_uuid_new(uuid, sizeof uuid), 0);
    assert_int_equal(strlen(uuid), 36);
    assert_int_equal(uuid[14], '4');
}

static void json_error_text(void **state)
{
    char out[64];
    const char *full = "{\"error\": {\"code\": \"not_found\", \"message\": \"no such thing\"}}";
    assert_string_equal(nb_json_error_text(full, strlen(full), out, sizeof out),
                        "not_found: no such thing");
    const char *bare = "{\"error\": {\"message\": \"gone\"}}";
    assert_string_equal(nb_json_error_text(bare, strlen(bare), out, sizeof out), "gone");
    assert_string_equal(nb_json_error_text("Bad Gateway", 11, out, sizeof out), "Bad Gateway");
    assert_string_equal(nb_json_error_text(NULL, 0, out, sizeof out), "(no message)");
    char tiny[8];
    assert_string_equal(nb_json_error_text(full, strlen(full), tiny, sizeof tiny), "not_fou");
}

static void json_strict(void **state)
{
    struct nb_error err = {0};
    const char *text = "{\"name\":\"a\",\"n\":5,\"ok\":true,\"arr\":[1],\"o\":{}}";
    json_t *v = nb_json_parse_object(text, strlen(text), &err);
    assert_non_null(v);
    const char *s;
    long long n;
    bool b;
    json_t *j;
    assert_int_equal(nb_json_get_string(v, "name", true, &s, &err), 1);
    assert_string_equal(s, "a");
    assert_int_equal(nb_json_get_int(v, "n", true, 0, 10, &n, &err), 1);
    assert_int_equal(nb_json_get_int(v, "n", true, 6, 10, &n, &err), -1);
    assert_int_equal(nb_json_get_bool(v, "ok", true, &b, &err), 1);
    assert_int_equal(nb_json_get_array(v, "arr", true, &j, &err), 1);
    assert_int_equal(nb_json_get_object(v, "o", true, &j, &err), 1);
    assert_int_equal(nb_json_get_string(v, "absent", false, &s, &err), 0);
    assert_int_equal(nb_json_get_string(v, "absent", true, &s, &err), -1);
    assert_int_equal(err.code, NB_ERR_MISSING);
    assert_int_equal(nb_json_get_string(v, "n", true, &s, &err), -1);
    assert_string_equal(err.msg, "field \"n\" must be a string, not an integer");
    static const char *const allowed[] = {"name", "n", "ok", "arr", NULL};
    assert_int_equal(nb_json_check_fields(v, allowed, &err), -1);
    assert_string_equal(err.msg, "unknown field \"o\"");
    json_decref(v);

    assert_null(nb_json_parse_object("[1]", 3, &err));
    assert_null(nb_json_parse_object("{\"a\":1,\"a\":2}", 13, &err));
    assert_null(nb_json_parse_object("{\"a\":", 5, &err));
    assert_non_null(strstr(err.msg, "line 1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(error_set_and_clear),
        cmocka_unit_test(config_precedence),
        cmocka_unit_test(config_bad_file),
        cmocka_unit_test(arena_alloc_and_reset),
        cmocka_unit_test(arena_cleanups_run_once_in_reverse),
        cmocka_unit_test(buf_xml),
        cmocka_unit_test(ids_have_ec2_form),
        cmocka_unit_test(json_strict),
        cmocka_unit_test(json_error_text),
    };
    return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
