/* Unit tests of the base image cache (compute-agent/imgcache.c) with file:// URLs in a scratch
 * directory: fetch and verify, checksum mismatch (nothing left behind), missing sources, the size
 * limit with least-recently-used eviction, pins and the in-use callback, one fetch for concurrent
 * gets of one image, and the index rebuilt after a restart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "nbtest.h"

#include "imgcache.h"
#include "nubo/crypto.h"
#include "nubo/error.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
    char root[64];
    char src[128];   /* source files */
    char cache[128]; /* the cache directory */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->root, sizeof f->root, "/tmp/nubo-imgcache-XXXXXX");
    if (!mkdtemp(f->root)) {
        return -1;
    }
    snprintf(f->src, sizeof f->src, "%s/src", f->root);
    snprintf(f->cache, sizeof f->cache, "%s/cache/images", f->root);
    mkdir(f->src, 0755);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->root);
    if (system(cmd) != 0) {
        return -1;
    }
    free(f);
    return 0;
}

/* Writes a source image 'name' of 'size' bytes of 'fill'; stores its file:// URL and digest. */
static void make_image(struct fixture *f, const char *name, size_t size, char fill, char url[256],
                       char sha[65])
{
    char *data = malloc(size);
    memset(data, fill, size);
    char path[200];
    snprintf(path, sizeof path, "%s/%s", f->src, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, size, fp), size);
    fclose(fp);
    nb_sha256_hex(data, size, sha);
    snprintf(url, 256, "file://%s", path);
    free(data);
}

static struct agent_imgcache *open_cache(struct fixture *f, uint64_t max_bytes)
{
    struct agent_imgcache_config cfg = {.dir = f->cache, .max_bytes = max_bytes};
    struct nb_error err = {0};
    struct agent_imgcache *c = agent_imgcache_open(&cfg, &err);
    if (!c) {
        fail_msg("agent_imgcache_open: %s", err.msg);
    }
    return c;
}

static void get_ok(struct agent_imgcache *c, const char *url, const char *sha)
{
    char *path = NULL;
    struct nb_error err = {0};
    assert_zero(agent_imgcache_get(c, url, sha, 0, &path, &err), err);
    free(path);
}

/* The names in the cache directory, sorted, space-separated. */
static void list_dir(const char *dir, char *out, size_t size)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.' || strncmp(names[i]->d_name, ".tmp", 4) == 0) {
            strncat(out, names[i]->d_name, size - strlen(out) - 2);
            strcat(out, " ");
        }
        free(names[i]);
    }
    free(names);
}

static void fetch_verifies_and_places_by_digest(void **state)
{
    struct fixture *f = *state;
    char url[256];
    char sha[65];
    make_image(f, "a.img", 3000, 'a', url, sha);
    struct agent_imgcache *c = open_cache(f, 0);
    char *path = NULL;
    struct nb_error err = {0};
    /* Upper-case digests are the same image. */
    char upper[65];
    for (int i = 0; i < 65; i++) {
        upper[i] = (char)(sha[i] >= 'a' && sha[i] <= 'f' ? sha[i] - 32 : sha[i]);
    }
    assert_zero(agent_imgcache_get(c, url, upper, 0, &path, &err), err);
    char want[256];
    snprintf(want, sizeof want, "%s/%s", f->cache, sha);
    assert_string_equal(path, want);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 3000);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(stat(f->cache, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755);
    assert_true(agent_imgcache_contains(c, sha));
    assert_int_equal(agent_imgcache_total_bytes(c), 3000);
    free(path);

    /* A hit does not go back to the source. */
    snprintf(want, sizeof want, "%s/a.img", f->src);
    unlink(want);
    assert_zero(agent_imgcache_get(c, url, sha, 0, &path, &err), err);
    free(path);
    agent_imgcache_release(c, sha);
    agent_imgcache_release(c, sha);
    agent_imgcache_release(c, sha); /* extra releases are ignored */
    agent_imgcache_close(c);
}

static void checksum_mismatch_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    char url[256];
    char sha[65];
    char other[65];
    make_image(f, "b.img", 5000, 'b', url, sha);
    nb_sha256_hex("something else", 14, other);
    struct agent_imgcache *c = open_cache(f, 0);
    char *path = NULL;
    struct nb_error err = {0};
    assert_int_equal(agent_imgcache_get(c, url, other, 0, &path, &err), -1);
    assert_null(path);
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_string_equal(err.reason, "checksum");
    assert_non_null(strstr(err.detail, sha));
    char names[1024];
    list_dir(f->cache, names, sizeof names);
    assert_string_equal(names, "");
    assert_false(agent_imgcache_contains(c, other));
    assert_int_equal(agent_imgcache_total_bytes(c), 0);
    agent_imgcache_close(c);
}

static void bad_requests_are_refused(void **state)
{
    struct fixture *f = *state;
    struct agent_imgcache *c = open_cache(f, 0);
    char *path = NULL;
    struct nb_error err = {0};
    char sha[65];
    nb_sha256_hex("x", 1, sha);
    char url[256];
    snprintf(url, sizeof url, "file://%s/missing.img", f->src);
    assert_int_equal(agent_imgcache_get(c, url, sha, 0, &path, &err), -1);
    assert_int_equal(err.code, NB_ERR_NOT_FOUND);
    assert_int_equal(agent_imgcache_get(c, "ftp://example.test/x", sha, 0, &path, &err), -1);
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_int_equal(agent_imgcache_get(c, url, "abc", 0, &path, &err), -1);
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_null(path);
    agent_imgcache_close(c);
}

static void too_large_is_refused(void **state)
{
    struct fixture *f = *state;
    char url[256];
    char sha[65];
    make_image(f, "big.img", 200000, 'g', url, sha);
    struct agent_imgcache *c = open_cache(f, 100000);
    char *path = NULL;
    struct nb_error err = {0};
    assert_int_equal(agent_imgcache_get(c, url, sha, 0, &path, &err), -1);
    assert_int_equal(err.code, NB_ERR_LIMIT);
    char names[1024];
    list_dir(f->cache, names, sizeof names);
    assert_string_equal(names, "");
    agent_imgcache_close(c);
}

/* Four 1000-byte images in a 3000-byte cache: the least recently used unpinned one goes. */
static void lru_eviction_order(void **state)
{
    struct fixture *f = *state;
    char url[4][256];
    char sha[4][65];
    for (int i = 0; i < 4; i++) {
        char name[24];
        snprintf(name, sizeof name, "%d.img", i);
        make_image(f, name, 1000, (char)('0' + i), url[i], sha[i]);
    }
    struct agent_imgcache *c = open_cache(f, 3000);
    for (int i = 0; i < 3; i++) {
        get_ok(c, url[i], sha[i]);
        agent_imgcache_release(c, sha[i]);
    }
    get_ok(c, url[0], sha[0]); /* 0 is now the most recent; 1 the least */
    agent_imgcache_release(c, sha[0]);
    get_ok(c, url[3], sha[3]);
    agent_imgcache_release(c, sha[3]);
    assert_true(agent_imgcache_contains(c, sha[0]));
    assert_false(agent_imgcache_contains(c, sha[1]));
    assert_true(agent_imgcache_contains(c, sha[2]));
    assert_true(agent_imgcache_contains(c, sha[3]));
    assert_int_equal(agent_imgcache_total_bytes(c), 3000);
    char path[256];
    snprintf(path, sizeof path, "%s/%s", f->cache, sha[1]);
    assert_int_equal(access(path, F_OK), -1);
    agent_imgcache_close(c);
}

static bool in_use_cb(const char *sha, void *arg)
{
    return strcmp(sha, (const char *)arg) == 0;
}

/* A held image and one the in-use callback claims are never evicted, even when older. */
static void pinned_images_survive(void **state)
{
    struct fixture *f = *state;
    char url[4][256];
    char sha[4][65];
    for (int i = 0; i < 4; i++) {
        char name[24];
        snprintf(name, sizeof name, "p%d.img", i);
        make_image(f, name, 1000, (char)('A' + i), url[i], sha[i]);
    }
    struct agent_imgcache_config cfg = {
        .dir = f->cache, .max_bytes = 2000, .in_use = in_use_cb, .in_use_arg = sha[1]};
    struct nb_error err = {0};
    struct agent_imgcache *c = agent_imgcache_open(&cfg, &err);
    assert_non_null(c);
    get_ok(c, url[0], sha[0]); /* held: pinned */
    get_ok(c, url[1], sha[1]); /* released, but in use by an "instance" */
    agent_imgcache_release(c, sha[1]);
    get_ok(c, url[2], sha[2]); /* over the limit, yet nothing can go: soft limit */
    agent_imgcache_release(c, sha[2]);
    assert_true(agent_imgcache_contains(c, sha[0]));
    assert_true(agent_imgcache_contains(c, sha[1]));
    assert_true(agent_imgcache_contains(c, sha[2]));
    assert_int_equal(agent_imgcache_total_bytes(c), 3000);
    agent_imgcache_release(c, sha[0]);
    get_ok(c, url[3], sha[3]); /* 0 and 2 go (oldest first); 1 is in use, 3 is held */
    agent_imgcache_release(c, sha[3]);
    assert_false(agent_imgcache_contains(c, sha[0]));
    assert_true(agent_imgcache_contains(c, sha[1]));
    assert_false(agent_imgcache_contains(c, sha[2]));
    assert_true(agent_imgcache_contains(c, sha[3]));
    assert_int_equal(agent_imgcache_total_bytes(c), 2000);
    assert_int_equal(agent_imgcache_evict(c, 0), 1); /* sha[3]; sha[1] stays */
    assert_true(agent_imgcache_contains(c, sha[1]));
    agent_imgcache_close(c);
}

struct getter {
    struct agent_imgcache *c;
    const char *url;
    const char *sha;
    int rc;
    char *path;
    struct nb_error err;
};

static void *getter_main(void *p)
{
    struct getter *g = p;
    g->rc = agent_imgcache_get(g->c, g->url, g->sha, 0, &g->path, &g->err);
    return NULL;
}

struct slow_writer {
    const char *fifo;
    const char *data;
    size_t len;
};

static void *slow_writer_main(void *p)
{
    struct slow_writer *w = p;
    int fd = open(w->fifo, O_WRONLY); /* blocks until the one fetch opens it */
    usleep(300000);                   /* let every getter arrive meanwhile */
    for (size_t off = 0; off < w->len; off += 1000) {
        if (write(fd, w->data + off, w->len - off < 1000 ? w->len - off : 1000) < 0) {
            break;
        }
        usleep(20000);
    }
    close(fd);
    return NULL;
}

/* Four concurrent gets of one image read its source once: the source is a FIFO that can be read
 * only once, so a second transfer would hang until its timeout and fail. */
static void concurrent_gets_fetch_once(void **state)
{
    struct fixture *f = *state;
    char fifo[256];
    snprintf(fifo, sizeof fifo, "%s/pipe.img", f->src);
    assert_int_equal(mkfifo(fifo, 0644), 0);
    static char data[10000];
    memset(data, 'z', sizeof data);
    char sha[65];
    nb_sha256_hex(data, sizeof data, sha);
    char url[300];
    snprintf(url, sizeof url, "file://%s", fifo);
    struct agent_imgcache_config cfg = {.dir = f->cache, .fetch_timeout_ms = 3000};
    struct nb_error err = {0};
    struct agent_imgcache *c = agent_imgcache_open(&cfg, &err);
    assert_non_null(c);

    struct slow_writer w = {fifo, data, sizeof data};
    pthread_t wt;
    pthread_create(&wt, NULL, slow_writer_main, &w);
    struct getter g[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        g[i] = (struct getter){.c = c, .url = url, .sha = sha};
        pthread_create(&t[i], NULL, getter_main, &g[i]);
        usleep(20000);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        if (g[i].rc != 0) {
            fail_msg("getter %d: %s", i, g[i].err.msg);
        }
        assert_string_equal(g[i].path, g[0].path);
    }
    pthread_join(wt, NULL);
    for (int i = 0; i < 4; i++) {
        free(g[i].path);
        agent_imgcache_release(c, sha);
    }
    assert_int_equal(agent_imgcache_total_bytes(c), sizeof data);
    agent_imgcache_close(c);
}

/* Concurrent gets of a bad image share the one failure. */
static void concurrent_gets_share_failure(void **state)
{
    struct fixture *f = *state;
    char url[256];
    char sha[65];
    make_image(f, "bad.img", 1000, 'q', url, sha);
    char wrong[65];
    nb_sha256_hex("nope", 4, wrong);
    struct agent_imgcache *c = open_cache(f, 0);
    struct getter g[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        g[i] = (struct getter){.c = c, .url = url, .sha = wrong};
        pthread_create(&t[i], NULL, getter_main, &g[i]);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(g[i].rc, -1);
        assert_string_equal(g[i].err.reason, "checksum");
    }
    char names[1024];
    list_dir(f->cache, names, sizeof names);
    assert_string_equal(names, "");
    agent_imgcache_close(c);
}

/* After a restart the index comes back from the directory (sizes and recency), partial files
 * from a crash are deleted, and other names are left alone. */
static void restart_rebuilds_index(void **state)
{
    struct fixture *f = *state;
    char url[3][256];
    char sha[3][65];
    for (int i = 0; i < 3; i++) {
        char name[24];
        snprintf(name, sizeof name, "r%d.img", i);
        make_image(f, name, 1000 + (size_t)i, (char)('r' + i), url[i], sha[i]);
    }
    struct agent_imgcache *c = open_cache(f, 0);
    for (int i = 0; i < 3; i++) {
        get_ok(c, url[i], sha[i]);
    }
    get_ok(c, url[0], sha[0]); /* recency now: 1, 2, 0 */
    agent_imgcache_close(c);

    char path[512];
    snprintf(path, sizeof path, "%s/.tmp-%s-0123456789ab", f->cache, sha[1]);
    FILE *fp = fopen(path, "w");
    fputs("partial", fp);
    fclose(fp);
    snprintf(path, sizeof path, "%s/README", f->cache);
    fp = fopen(path, "w");
    fclose(fp);

    c = open_cache(f, 0);
    for (int i = 0; i < 3; i++) {
        assert_true(agent_imgcache_contains(c, sha[i]));
    }
    assert_int_equal(agent_imgcache_total_bytes(c), 3003);
    char names[1024];
    list_dir(f->cache, names, sizeof names);
    assert_null(strstr(names, ".tmp"));
    assert_non_null(strstr(names, "README"));
    /* Evicting one image removes the least recent before the restart. */
    assert_int_equal(agent_imgcache_evict(c, 2500), 1);
    assert_false(agent_imgcache_contains(c, sha[1]));
    assert_int_equal(agent_imgcache_evict(c, 1500), 1);
    assert_false(agent_imgcache_contains(c, sha[2]));
    assert_true(agent_imgcache_contains(c, sha[0]));
    agent_imgcache_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(fetch_verifies_and_places_by_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(checksum_mismatch_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_requests_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(too_large_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(lru_eviction_order, setup, teardown),
        cmocka_unit_test_setup_teardown(pinned_images_survive, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_gets_fetch_once, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_gets_share_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(restart_rebuilds_index, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
