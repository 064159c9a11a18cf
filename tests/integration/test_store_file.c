/* The local-directory backend of the image store (image-store/store_file.c), in a scratch
 * directory, against the backend contract (tests/lib/store_check.c) and its own layout: blobs
 * under objects/, nothing left in tmp/ after commit or abort. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "nbtest.h"

#include "nubo/error.h"
#include "store.h"
#include "store_check.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct fixture {
    char root[64];
    struct img_store_config cfg;
    struct img_store *s;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    struct nb_error err = {0};
    snprintf(f->root, sizeof f->root, "/tmp/nubo-store-XXXXXX");
    if (!mkdtemp(f->root)) {
        return -1;
    }
    f->cfg.backend = "file";
    f->cfg.dir = f->root;
    f->s = img_store_open(&f->cfg, &err);
    if (!f->s) {
        fprintf(stderr, "open: %s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    img_store_close(f->s);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->root);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        n += de->d_name[0] != '.';
    }
    if (d) {
        closedir(d);
    }
    return n;
}

static void roundtrip(void **state)
{
    struct fixture *f = *state;
    store_check_roundtrip(f->s, "t");
}

static void atomic_replace(void **state)
{
    struct fixture *f = *state;
    store_check_atomic_replace(f->s, "t");
}

static void edges(void **state)
{
    struct fixture *f = *state;
    store_check_edges(f->s, "t");
}

static void writer_pread(void **state)
{
    struct fixture *f = *state;
    store_check_writer_pread(f->s, "t");
}

static void killed_writer(void **state)
{
    struct fixture *f = *state;
    store_check_killed_writer(f->s, &f->cfg, "t");
}

/* The layout the backend documents: a committed blob is the file objects/KEY (what
 * img_store_local_path() names, for qemu-img), and tmp/ is empty between writes. */
static void layout_and_local_path(void **state)
{
    struct fixture *f = *state;
    struct nb_error err = {0};
    char tmp[128], path[512], want[512];
    snprintf(tmp, sizeof tmp, "%s/tmp", f->root);
    struct img_writer *w = img_store_write_begin(f->s, "images/ami-1", &err);
    assert_ok(w, err);
    assert_zero(img_writer_write(w, "hello", 5, &err), err);
    assert_int_equal(count_entries(tmp), 1);
    assert_zero(img_writer_commit(w, &err), err);
    assert_int_equal(count_entries(tmp), 0);
    assert_true(img_store_local_path(f->s, "images/ami-1", path, sizeof path));
    snprintf(want, sizeof want, "%s/objects/images/ami-1", f->root);
    assert_string_equal(path, want);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 5);
    assert_false(img_store_local_path(f->s, "../etc/passwd", path, sizeof path));
    assert_string_equal(img_store_backend(f->s), "file");
}

static void bad_config(void **state)
{
    (void)state;
    struct nb_error err = {0};
    struct img_store_config cfg = {.backend = "tape"};
    assert_null(img_store_open(&cfg, &err));
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_non_null(strstr(err.msg, "tape"));
    cfg.backend = "file";
    cfg.dir = "/proc/nubo-cannot-be-here";
    nb_error_clear(&err);
    assert_null(img_store_open(&cfg, &err));
    assert_int_equal(err.code, NB_ERR_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(atomic_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(edges, setup, teardown),
        cmocka_unit_test_setup_teardown(writer_pread, setup, teardown),
        cmocka_unit_test_setup_teardown(killed_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(layout_and_local_path, setup, teardown),
        cmocka_unit_test(bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
