/* The image-store backend contract, checked the same way for every backend (store_check.h). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "nubo/error.h"
#include "store.h"
#include "store_check.h"

/* Deterministic bytes: position 'i' of stream 'seed'. */
static unsigned char pattern(uint64_t i, unsigned seed)
{
    uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull ^ (uint64_t)seed * 0xC2B2AE3D27D4EB4Full;
    return (unsigned char)(x >> 29);
}

static void write_pattern(struct img_writer *w, uint64_t size, unsigned seed)
{
    static const size_t pieces[] = {1, 511, 4096, 65537, 1u << 20, 3u << 20, 333333};
    unsigned char *buf = malloc(3u << 20);
    assert_non_null(buf);
    uint64_t off = 0;
    for (size_t k = 0; off < size; k++) {
        size_t n = pieces[k % (sizeof pieces / sizeof *pieces)];
        if (n > size - off) {
            n = (size_t)(size - off);
        }
        for (size_t i = 0; i < n; i++) {
            buf[i] = pattern(off + i, seed);
        }
        struct nb_error err = {0};
        assert_int_equal(img_writer_write(w, buf, n, &err), 0);
        off += n;
    }
    free(buf);
    assert_int_equal(img_writer_size(w), size);
}

static void put_blob(struct img_store *s, const char *key, uint64_t size, unsigned seed)
{
    struct nb_error err = {0};
    struct img_writer *w = img_store_write_begin(s, key, &err);
    assert_non_null(w);
    write_pattern(w, size, seed);
    assert_int_equal(img_writer_commit(w, &err), 0);
}

static void expect_range(struct img_store *s, const char *key, uint64_t size, unsigned seed,
                         uint64_t off, size_t len)
{
    unsigned char *buf = malloc(len ? len : 1);
    struct nb_error err = {0};
    assert_non_null(buf);
    int64_t got = img_store_pread(s, key, buf, len, off, &err);
    uint64_t want = off >= size ? 0 : (size - off < len ? size - off : len);
    assert_int_equal(got, (int64_t)want);
    for (uint64_t i = 0; i < want; i++) {
        if (buf[i] != pattern(off + i, seed)) {
            fail_msg("%s: byte %llu differs", key, (unsigned long long)(off + i));
        }
    }
    free(buf);
}

static void expect_blob(struct img_store *s, const char *key, uint64_t size, unsigned seed)
{
    struct nb_error err = {0};
    uint64_t got = 0;
    assert_int_equal(img_store_stat(s, key, &got, &err), 0);
    assert_int_equal(got, size);
    expect_range(s, key, size, seed, 0, (size_t)size);
}

static void expect_absent(struct img_store *s, const char *key)
{
    struct nb_error err = {0};
    uint64_t size;
    char b;
    assert_int_equal(img_store_stat(s, key, &size, &err), -1);
    assert_int_equal(err.code, NB_ERR_NOT_FOUND);
    nb_error_clear(&err);
    assert_int_equal(img_store_pread(s, key, &b, 1, 0, &err), -1);
    assert_int_equal(err.code, NB_ERR_NOT_FOUND);
}

struct listed {
    char want[IMG_KEY_MAX + 1];
    uint64_t size;
    int seen;
    int total;
};

static void on_listed(const char *key, uint64_t size, void *arg)
{
    struct listed *l = arg;
    l->total++;
    if (!strcmp(key, l->want)) {
        l->seen++;
        l->size = size;
    }
}

void store_check_roundtrip(struct img_store *s, const char *prefix)
{
    char key[IMG_KEY_MAX + 1];
    snprintf(key, sizeof key, "%s/roundtrip/blob-1", prefix);
    const uint64_t size = 3 * (uint64_t)IMG_RADOS_CHUNK + 12345;
    put_blob(s, key, size, 7);
    expect_blob(s, key, size, 7);
    /* Reads that start and end inside chunks, across chunk edges, and past the end. */
    const uint64_t offs[] = {
        0,         1,    IMG_RADOS_CHUNK - 3, IMG_RADOS_CHUNK, 2 * IMG_RADOS_CHUNK + 7,
        size - 10, size, size + 100};
    for (size_t i = 0; i < sizeof offs / sizeof *offs; i++) {
        expect_range(s, key, size, 7, offs[i], 4096);
        expect_range(s, key, size, 7, offs[i], IMG_RADOS_CHUNK + 11);
    }

    struct listed l = {.size = 0};
    struct nb_error err = {0};
    snprintf(l.want, sizeof l.want, "%s", key);
    char pfx[IMG_KEY_MAX + 1];
    snprintf(pfx, sizeof pfx, "%s/roundtrip/", prefix);
    assert_int_equal(img_store_list(s, pfx, on_listed, &l, &err), 0);
    assert_int_equal(l.seen, 1);
    assert_int_equal(l.total, 1);
    assert_int_equal(l.size, size);

    assert_int_equal(img_store_delete(s, key, &err), 0);
    expect_absent(s, key);
    assert_int_equal(img_store_delete(s, key, &err), 0); /* again: nothing to do */
    l.seen = l.total = 0;
    assert_int_equal(img_store_list(s, pfx, on_listed, &l, &err), 0);
    assert_int_equal(l.total, 0);
}

void store_check_atomic_replace(struct img_store *s, const char *prefix)
{
    char key[IMG_KEY_MAX + 1];
    struct nb_error err = {0};
    snprintf(key, sizeof key, "%s/atomic/blob", prefix);

    /* A first write is invisible until committed. */
    struct img_writer *w = img_store_write_begin(s, key, &err);
    assert_non_null(w);
    write_pattern(w, IMG_RADOS_CHUNK + 100, 1);
    expect_absent(s, key);
    assert_int_equal(img_writer_commit(w, &err), 0);
    expect_blob(s, key, IMG_RADOS_CHUNK + 100, 1);

    /* A replacement in progress leaves the old blob readable, whole. */
    w = img_store_write_begin(s, key, &err);
    assert_non_null(w);
    write_pattern(w, 2 * (uint64_t)IMG_RADOS_CHUNK + 5, 2);
    expect_blob(s, key, IMG_RADOS_CHUNK + 100, 1);
    assert_int_equal(img_writer_commit(w, &err), 0);
    expect_blob(s, key, 2 * (uint64_t)IMG_RADOS_CHUNK + 5, 2);

    /* An aborted replacement changes nothing. */
    w = img_store_write_begin(s, key, &err);
    assert_non_null(w);
    write_pattern(w, 1000, 3);
    img_writer_abort(w);
    expect_blob(s, key, 2 * (uint64_t)IMG_RADOS_CHUNK + 5, 2);
    assert_int_equal(img_store_delete(s, key, &err), 0);
}

void store_check_edges(struct img_store *s, const char *prefix)
{
    char key[IMG_KEY_MAX + 1];
    struct nb_error err = {0};
    uint64_t size = 99;
    snprintf(key, sizeof key, "%s/edges/empty", prefix);
    put_blob(s, key, 0, 0);
    assert_int_equal(img_store_stat(s, key, &size, &err), 0);
    assert_int_equal(size, 0);
    char b;
    assert_int_equal(img_store_pread(s, key, &b, 1, 0, &err), 0);
    assert_int_equal(img_store_delete(s, key, &err), 0);

    static const char *const bad[] = {"",       "../x", "a/../b",  "/abs",     "a//b",
                                      "sp ace", "a/",   "quote\"", "new\nline"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        nb_error_clear(&err);
        assert_null(img_store_write_begin(s, bad[i], &err));
        assert_int_equal(err.code, NB_ERR_INVALID);
        nb_error_clear(&err);
        assert_int_equal(img_store_stat(s, bad[i], &size, &err), -1);
        assert_int_equal(err.code, NB_ERR_INVALID);
    }
    snprintf(key, sizeof key, "%s/edges/never-written", prefix);
    expect_absent(s, key);
}

void store_check_writer_pread(struct img_store *s, const char *prefix)
{
    char key[IMG_KEY_MAX + 1];
    struct nb_error err = {0};
    snprintf(key, sizeof key, "%s/wpread/blob", prefix);
    struct img_writer *w = img_store_write_begin(s, key, &err);
    assert_non_null(w);
    const uint64_t size = IMG_RADOS_CHUNK + 777;
    write_pattern(w, size, 9);
    unsigned char buf[1024];
    const uint64_t offs[] = {0, IMG_RADOS_CHUNK - 512, size - 1024, size - 10};
    for (size_t k = 0; k < sizeof offs / sizeof *offs; k++) {
        int64_t n = img_writer_pread(w, buf, sizeof buf, offs[k], &err);
        uint64_t want = size - offs[k] < sizeof buf ? size - offs[k] : sizeof buf;
        assert_int_equal(n, (int64_t)want);
        for (uint64_t i = 0; i < want; i++) {
            assert_int_equal(buf[i], pattern(offs[k] + i, 9));
        }
    }
    assert_int_equal(img_writer_pread(w, buf, sizeof buf, size, &err), 0);
    img_writer_abort(w);
    expect_absent(s, key);
}

void store_check_killed_writer(struct img_store *s, const struct img_store_config *cfg,
                               const char *prefix)
{
    char key[IMG_KEY_MAX + 1], keep[IMG_KEY_MAX + 1];
    struct nb_error err = {0};
    snprintf(key, sizeof key, "%s/killed/blob", prefix);
    snprintf(keep, sizeof keep, "%s/killed/committed", prefix);
    put_blob(s, keep, IMG_RADOS_CHUNK + 1, 4);
    /* Whatever older crashes left is not this check's business: start from a clean slate. */
    assert_true(img_store_gc(s, 0, &err) >= 0);

    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        struct img_store *cs = img_store_open(cfg, &err);
        struct img_writer *w = cs ? img_store_write_begin(cs, key, &err) : NULL;
        if (!w) {
            _exit(2);
        }
        unsigned char *buf = calloc(1, 1u << 20);
        for (int i = 0; buf && i < 3 * (int)(IMG_RADOS_CHUNK >> 20) + 1; i++) {
            if (img_writer_write(w, buf, 1u << 20, &err) < 0) {
                _exit(3);
            }
        }
        /* Make sure something reached the backend before the kill. */
        if (img_writer_pread(w, buf, 16, 0, &err) < 0 || write(ready[1], "x", 1) != 1) {
            _exit(4);
        }
        for (;;) {
            pause();
        }
    }
    close(ready[1]);
    char c;
    ssize_t got = read(ready[0], &c, 1);
    close(ready[0]);
    kill(pid, SIGKILL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(got, 1);
    assert_true(WIFSIGNALED(status));

    expect_absent(s, key);
    int removed = img_store_gc(s, 0, &err);
    assert_true(removed > 0);
    assert_int_equal(img_store_gc(s, 0, &err), 0);
    /* A young leftover is kept: its writer may still be running. */
    struct img_writer *w = img_store_write_begin(s, key, &err);
    assert_non_null(w);
    write_pattern(w, IMG_RADOS_CHUNK + 3, 5);
    unsigned char b;
    assert_int_equal(img_writer_pread(w, &b, 1, 0, &err), 1);
    assert_int_equal(img_store_gc(s, 3600, &err), 0);
    assert_int_equal(img_writer_commit(w, &err), 0);
    expect_blob(s, key, IMG_RADOS_CHUNK + 3, 5);
    expect_blob(s, keep, IMG_RADOS_CHUNK + 1, 4);
    assert_int_equal(img_store_delete(s, key, &err), 0);
    assert_int_equal(img_store_delete(s, keep, &err), 0);
}
