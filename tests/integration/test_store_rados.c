/* Integration tests of the image store's RADOS backend (image-store/store_rados.c) against a
 * real, throwaway single-node Ceph cluster (one mon, one memstore OSD) started with
 * tests/lib/ceph-up.sh for the whole program: the backend contract (tests/lib/store_check.h),
 * then what only this backend has: how blobs map to RADOS objects, a damaged manifest, an
 * unreachable cluster, and the write window.
 *
 * Ceph is a requirement here, not an option: when the cluster cannot be started, every case
 * fails. Run as root from the top of the repository. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "nbtest.h"

#include "nubo/clock.h"
#include "nubo/error.h"
#include "store.h"
#include "store_check.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CEPH_UP "tests/lib/ceph-up.sh"
#define POOL    "nubo-test"
/* An unreachable cluster must be reported well within this (the backend waits 10 s). */
#define UNREACHABLE_REPORT_MAX_MS 15000

struct fixture {
    char dir[64];  /* the cluster's directory */
    char conf[96]; /* DIR/ceph.conf */
    char prefix[32];
    bool up;
    struct img_store_config cfg;
    struct img_store *store;
};

static struct img_store *open_store(struct fixture *f, int window)
{
    struct img_store_config cfg = f->cfg;
    struct nb_error err = {0};
    cfg.rados_window = window;
    struct img_store *s = img_store_open(&cfg, &err);
    assert_ok(s != NULL, err);
    assert_string_equal(img_store_backend(s), "rados");
    return s;
}

/* Deterministic bytes of blob 'seed' at position 'i'. */
static unsigned char byte_at(uint64_t i, unsigned seed)
{
    uint64_t x = (i + 7) * 0xD6E8FEB86659FD93ull + seed * 0x9E3779B97F4A7C15ull;
    return (unsigned char)(x >> 32 ^ x >> 17);
}

static void put_blob(struct img_store *s, const char *key, uint64_t size, unsigned seed)
{
    struct nb_error err = {0};
    struct img_writer *w = img_store_write_begin(s, key, &err);
    assert_ok(w != NULL, err);
    size_t piece = 1000003; /* odd-sized pieces, never aligned with a chunk */
    unsigned char *buf = malloc(piece);
    assert_non_null(buf);
    for (uint64_t off = 0; off < size;) {
        size_t n = size - off < piece ? (size_t)(size - off) : piece;
        for (size_t i = 0; i < n; i++) {
            buf[i] = byte_at(off + i, seed);
        }
        assert_ok(img_writer_write(w, buf, n, &err) == 0, err);
        off += n;
    }
    free(buf);
    assert_ok(img_writer_commit(w, &err) == 0, err);
}

/* Reads blob 'key' whole into a new buffer the caller frees; checks its size is 'size'. */
static unsigned char *get_blob(struct img_store *s, const char *key, uint64_t size)
{
    struct nb_error err = {0};
    uint64_t got = 0;
    assert_ok(img_store_stat(s, key, &got, &err) == 0, err);
    assert_int_equal(got, size);
    unsigned char *buf = malloc(size + 1);
    assert_non_null(buf);
    int64_t n = img_store_pread(s, key, buf, size + 1, 0, &err);
    assert_ok(n >= 0, err);
    assert_int_equal(n, (int64_t)size);
    return buf;
}

/* Runs a shell command and returns its standard output as a new string the caller frees. */
static char *run_output(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    size_t n;
    while ((n = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 2) {
            char *bigger = realloc(out, cap * 2);
            assert_non_null(bigger);
            out = bigger;
            cap *= 2;
        }
    }
    out[len] = '\0';
    int status = pclose(p);
    if (status != 0) {
        fail_msg("\"%s\" failed with status %d: %s", cmd, status, out);
    }
    return out;
}

struct objects {
    int manifests;        /* objects named exactly KEY */
    int data;             /* objects named KEY@... */
    char wid[17];         /* the write id of the first data object seen */
    bool mixed;           /* data objects of more than one write id */
    unsigned long chunks; /* bit N set: KEY@WID.N seen */
};

/* Lists the pool with the rados CLI and sorts out the objects of 'key'. */
static struct objects pool_objects(struct fixture *f, const char *key)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rados -c %s -p %s ls", f->conf, POOL);
    char *out = run_output(cmd);
    struct objects o = {0};
    size_t klen = strlen(key);
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, key, klen)) {
            continue;
        }
        if (line[klen] == '\0') {
            o.manifests++;
            continue;
        }
        if (line[klen] != '@') {
            continue;
        }
        /* KEY@ + 16 hex + "." + N */
        const char *wid = line + klen + 1;
        assert_true(strspn(wid, "0123456789abcdef") == 16);
        assert_int_equal(wid[16], '.');
        char *end;
        unsigned long n = strtoul(wid + 17, &end, 10);
        assert_int_equal(*end, '\0');
        assert_true(n < 64);
        if (o.data == 0) {
            memcpy(o.wid, wid, 16);
        } else if (strncmp(o.wid, wid, 16)) {
            o.mixed = true;
        }
        o.data++;
        o.chunks |= 1ul << n;
    }
    free(out);
    return o;
}

/* ---- the contract ------------------------------------------------------------------------- */

static void test_roundtrip(void **state)
{
    struct fixture *f = *state;
    store_check_roundtrip(f->store, f->prefix);
}

static void test_atomic_replace(void **state)
{
    struct fixture *f = *state;
    store_check_atomic_replace(f->store, f->prefix);
}

static void test_edges(void **state)
{
    struct fixture *f = *state;
    store_check_edges(f->store, f->prefix);
}

static void test_writer_pread(void **state)
{
    struct fixture *f = *state;
    store_check_writer_pread(f->store, f->prefix);
}

static void test_killed_writer(void **state)
{
    struct fixture *f = *state;
    store_check_killed_writer(f->store, &f->cfg, f->prefix);
}

/* ---- RADOS only --------------------------------------------------------------------------- */

static void test_objects_are_chunks_and_manifest(void **state)
{
    struct fixture *f = *state;
    struct nb_error err = {0};
    char key[128];
    snprintf(key, sizeof key, "%s/layout/blob", f->prefix);

    /* Three data objects (two full chunks and 5 bytes) and the manifest. */
    put_blob(f->store, key, 2 * (uint64_t)IMG_RADOS_CHUNK + 5, 1);
    struct objects first = pool_objects(f, key);
    assert_int_equal(first.manifests, 1);
    assert_int_equal(first.data, 3);
    assert_false(first.mixed);
    assert_int_equal(first.chunks, 0x7);

    /* A replacement has a new write id, and the old one's objects are gone. */
    put_blob(f->store, key, IMG_RADOS_CHUNK, 2);
    struct objects second = pool_objects(f, key);
    assert_int_equal(second.manifests, 1);
    assert_int_equal(second.data, 1);
    assert_false(second.mixed);
    assert_int_equal(second.chunks, 0x1);
    assert_true(strcmp(first.wid, second.wid) != 0);

    /* An empty blob is a manifest alone. */
    put_blob(f->store, key, 0, 3);
    struct objects empty = pool_objects(f, key);
    assert_int_equal(empty.manifests, 1);
    assert_int_equal(empty.data, 0);

    assert_ok(img_store_delete(f->store, key, &err) == 0, err);
    struct objects gone = pool_objects(f, key);
    assert_int_equal(gone.manifests, 0);
    assert_int_equal(gone.data, 0);
}

static void test_delete_removes_data_objects(void **state)
{
    struct fixture *f = *state;
    struct nb_error err = {0};
    char key[128];
    snprintf(key, sizeof key, "%s/delete/blob", f->prefix);
    put_blob(f->store, key, 3 * (uint64_t)IMG_RADOS_CHUNK, 4);
    assert_int_equal(pool_objects(f, key).data, 3);
    assert_ok(img_store_delete(f->store, key, &err) == 0, err);
    struct objects o = pool_objects(f, key);
    assert_int_equal(o.manifests, 0);
    assert_int_equal(o.data, 0);
    /* Nothing left for GC either. */
    assert_int_equal(img_store_gc(f->store, 0, &err), 0);
}

static void test_damaged_manifest_is_internal_error(void **state)
{
    struct fixture *f = *state;
    struct nb_error err = {0};
    char key[128], cmd[512];
    snprintf(key, sizeof key, "%s/damaged/blob", f->prefix);
    snprintf(cmd, sizeof cmd, "printf 'nubo-blob 1\\nsize 12\\n' | rados -c %s -p %s put %s -",
             f->conf, POOL, key);
    free(run_output(cmd));

    uint64_t size;
    assert_int_equal(img_store_stat(f->store, key, &size, &err), -1);
    assert_int_equal(err.code, NB_ERR_INTERNAL);
    assert_non_null(strstr(err.msg, key));
    assert_non_null(strstr(err.msg, "damaged"));
    char b;
    nb_error_clear(&err);
    assert_int_equal(img_store_pread(f->store, key, &b, 1, 0, &err), -1);
    assert_int_equal(err.code, NB_ERR_INTERNAL);
    /* It can still be removed, or replaced by a good blob. */
    put_blob(f->store, key, 10, 5);
    free(get_blob(f->store, key, 10));
    assert_ok(img_store_delete(f->store, key, &err) == 0, err);
    free(run_output(cmd));
    assert_ok(img_store_delete(f->store, key, &err) == 0, err);
    assert_int_equal(img_store_stat(f->store, key, &size, &err), -1);
    assert_int_equal(err.code, NB_ERR_NOT_FOUND);
}

/* A port of 127.0.0.1 that nothing listens on (bound, then closed). */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_unreachable_cluster_is_unavailable(void **state)
{
    struct fixture *f = *state;
    char conf[128];
    snprintf(conf, sizeof conf, "%s/unreachable.conf", f->dir);
    FILE *fp = fopen(conf, "w");
    assert_non_null(fp);
    fprintf(fp, "[global]\nmon host = [v2:127.0.0.1:%d]\nkeyring = %s/client.admin.keyring\n",
            closed_port(), f->dir);
    fclose(fp);

    struct img_store_config cfg = f->cfg;
    cfg.ceph_conf = conf;
    struct nb_error err = {0};
    long start = nb_monotonic_ms();
    struct img_store *s = img_store_open(&cfg, &err);
    long elapsed = nb_monotonic_ms() - start;
    unlink(conf);
    if (s) {
        img_store_close(s);
        fail_msg("opened a store on a cluster that is not there");
    }
    assert_int_equal(err.code, NB_ERR_UNAVAILABLE);
    print_message("unreachable cluster reported in %ld ms: %s\n", elapsed, err.msg);
    assert_true(elapsed < UNREACHABLE_REPORT_MAX_MS);
}

static void test_wrong_key_is_invalid(void **state)
{
    struct fixture *f = *state;
    char keyring[128], cmd[256];
    snprintf(keyring, sizeof keyring, "%s/wrong.keyring", f->dir);
    /* A well-formed key that the cluster does not know. */
    snprintf(cmd, sizeof cmd,
             "printf '[client.admin]\\n\\tkey = %%s\\n' \"$(ceph-authtool --gen-print-key)\" >%s",
             keyring);
    free(run_output(cmd));
    struct img_store_config cfg = f->cfg;
    cfg.ceph_keyring = keyring;
    struct nb_error err = {0};
    long start = nb_monotonic_ms();
    struct img_store *s = img_store_open(&cfg, &err);
    long elapsed = nb_monotonic_ms() - start;
    unlink(keyring);
    if (s) {
        img_store_close(s);
        fail_msg("connected with a key the cluster does not know");
    }
    print_message("wrong key reported in %ld ms: %s\n", elapsed, err.msg);
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_true(elapsed < UNREACHABLE_REPORT_MAX_MS);
}

static void test_missing_config_is_invalid(void **state)
{
    struct fixture *f = *state;
    struct img_store_config cfg = f->cfg;
    char conf[128];
    snprintf(conf, sizeof conf, "%s/no-such.conf", f->dir);
    cfg.ceph_conf = conf;
    struct nb_error err = {0};
    assert_null(img_store_open(&cfg, &err));
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_non_null(strstr(err.msg, "no-such.conf"));
}

static void test_windows_read_back_identically(void **state)
{
    struct fixture *f = *state;
    struct nb_error err = {0};
    const uint64_t size = 6 * (uint64_t)IMG_RADOS_CHUNK + 4321;
    const int windows[] = {1, 8};
    unsigned char *bytes[2];
    for (int k = 0; k < 2; k++) {
        char key[128];
        snprintf(key, sizeof key, "%s/window/w%d", f->prefix, windows[k]);
        struct img_store *s = open_store(f, windows[k]);
        long start = nb_monotonic_ms();
        put_blob(s, key, size, 6);
        long elapsed = nb_monotonic_ms() - start;
        print_message("window %d: %.1f MiB written in %ld ms\n", windows[k],
                      (double)size / (1 << 20), elapsed);
        assert_int_equal(pool_objects(f, key).data, 7);
        /* Read through the shared store, not the writer's. */
        bytes[k] = get_blob(f->store, key, size);
        for (uint64_t i = 0; i < size; i++) {
            if (bytes[k][i] != byte_at(i, 6)) {
                fail_msg("window %d: byte %llu differs", windows[k], (unsigned long long)i);
            }
        }
        assert_ok(img_store_delete(s, key, &err) == 0, err);
        img_store_close(s);
    }
    assert_memory_equal(bytes[0], bytes[1], size);
    free(bytes[0]);
    free(bytes[1]);
}

static void test_gc_spares_committed_and_young(void **state)
{
    struct fixture *f = *state;
    struct nb_error err = {0};
    char key[128];
    snprintf(key, sizeof key, "%s/gc/blob", f->prefix);
    put_blob(f->store, key, 2 * (uint64_t)IMG_RADOS_CHUNK, 7);

    /* A replacement in progress: its objects belong to no manifest yet. */
    struct img_writer *w = img_store_write_begin(f->store, key, &err);
    assert_ok(w != NULL, err);
    unsigned char *buf = calloc(1, IMG_RADOS_CHUNK);
    assert_non_null(buf);
    assert_ok(img_writer_write(w, buf, IMG_RADOS_CHUNK, &err) == 0, err);
    assert_ok(img_writer_write(w, buf, 10, &err) == 0, err);
    unsigned char b;
    assert_int_equal(img_writer_pread(w, &b, 1, 0, &err), 1); /* chunk 0 is in RADOS now */
    free(buf);
    assert_int_equal(pool_objects(f, key).data, 3);

    assert_int_equal(img_store_gc(f->store, 3600, &err), 0);
    assert_int_equal(pool_objects(f, key).data, 3);
    /* Age 0: the unfinished write's object goes, the committed blob stays whole. */
    assert_int_equal(img_store_gc(f->store, 0, &err), 1);
    unsigned char *got = get_blob(f->store, key, 2 * (uint64_t)IMG_RADOS_CHUNK);
    for (uint64_t i = 0; i < 2 * (uint64_t)IMG_RADOS_CHUNK; i++) {
        if (got[i] != byte_at(i, 7)) {
            fail_msg("byte %llu of the committed blob differs after gc", (unsigned long long)i);
        }
    }
    free(got);
    img_writer_abort(w);
    assert_ok(img_store_delete(f->store, key, &err) == 0, err);
    assert_int_equal(pool_objects(f, key).data, 0);
}

/* ---- the cluster -------------------------------------------------------------------------- */

static int group_teardown(void **state);

/* On failure, stops what it started (cmocka does not call the group teardown then). */
static int group_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f) {
        return -1;
    }
    *state = f;
    snprintf(f->dir, sizeof f->dir, "/tmp/nubo-ceph-XXXXXX");
    if (!mkdtemp(f->dir)) {
        print_message("mkdtemp failed\n");
        f->dir[0] = '\0';
        goto fail;
    }
    char cmd[256];
    /* The cluster stops by itself if this program dies before its teardown. */
    snprintf(cmd, sizeof cmd, "CEPH_UP_OWNER_PID=%ld %s start %s", (long)getpid(), CEPH_UP, f->dir);
    long start = nb_monotonic_ms();
    if (system(cmd) != 0) {
        print_message("%s failed: a Ceph cluster is required by these tests "
                      "(deploy/install-deps.sh installs ceph-mon, ceph-osd, ceph-common)\n",
                      cmd);
        goto fail;
    }
    f->up = true;
    print_message("ceph cluster up in %ld ms\n", nb_monotonic_ms() - start);
    snprintf(f->conf, sizeof f->conf, "%s/ceph.conf", f->dir);
    snprintf(f->prefix, sizeof f->prefix, "t%ld", (long)getpid());
    f->cfg = (struct img_store_config){
        .backend = "rados",
        .ceph_conf = f->conf,
        .ceph_user = "admin",
        .pool = POOL,
    };
    struct nb_error err = {0};
    f->store = img_store_open(&f->cfg, &err);
    if (!f->store) {
        print_message("cannot open the rados store: %s (%s)\n", err.msg, nb_errcode_name(err.code));
        goto fail;
    }
    return 0;
fail:
    group_teardown(state);
    *state = NULL;
    return -1;
}

static int group_teardown(void **state)
{
    struct fixture *f = *state;
    if (!f) {
        return 0;
    }
    img_store_close(f->store);
    int rc = 0;
    if (f->up) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "%s stop %s", CEPH_UP, f->dir);
        long start = nb_monotonic_ms();
        rc = system(cmd) == 0 ? 0 : -1;
        print_message("ceph cluster stopped in %ld ms\n", nb_monotonic_ms() - start);
    } else if (f->dir[0]) {
        /* ceph-up.sh leaves a failed cluster's directory for inspection. */
        print_message("left %s for inspection\n", f->dir);
    }
    free(f);
    return rc;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_atomic_replace),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_writer_pread),
        cmocka_unit_test(test_killed_writer),
        cmocka_unit_test(test_objects_are_chunks_and_manifest),
        cmocka_unit_test(test_delete_removes_data_objects),
        cmocka_unit_test(test_damaged_manifest_is_internal_error),
        cmocka_unit_test(test_unreachable_cluster_is_unavailable),
        cmocka_unit_test(test_wrong_key_is_invalid),
        cmocka_unit_test(test_missing_config_is_invalid),
        cmocka_unit_test(test_windows_read_back_identically),
        cmocka_unit_test(test_gc_spares_committed_and_young),
    };
    /* cmocka 1.1.5 does not read the variable itself. */
    const char *filter = getenv("CMOCKA_TEST_FILTER");
    if (filter && *filter) {
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests_name("store_rados", tests, group_setup, group_teardown);
}
