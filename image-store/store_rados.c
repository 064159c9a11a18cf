/* The Ceph RADOS backend of the image store (store.h), over librados' C API.
 *
 * A blob "KEY" is striped over data objects of IMG_RADOS_CHUNK bytes named "KEY@WRITEID.N"
 * (N = 0, 1, ...; WRITEID is 16 random hex digits, one per writer), plus a manifest object
 * named "KEY", written last with one rados_write_full(), that names the write id:
 *
 *     nubo-blob 1
 *     size 12582912
 *     chunk 4194304
 *     write 0123456789abcdef
 *     count 3
 *
 * Keys never contain '@', so the objects without one are the manifests. Readers go through the
 * manifest, so they see the old blob or the new one, never a mix; a commit deletes the data
 * objects of the blob it replaced after writing the new manifest, and what a crashed writer or
 * a lost race left behind is found by img_store_gc(): data objects whose manifest is missing or
 * names another write id. Each data object carries an xattr "nubo.written" (unix seconds of its
 * write), set in the same RADOS operation as its data, so that GC can tell its age.
 *
 * One rados_t and one ioctx serve all threads (librados is thread-safe for these calls). A
 * writer copies data into one IMG_RADOS_CHUNK buffer and sends each full chunk with an
 * asynchronous write, keeping up to 'rados_window' of them in flight; librados copies the bytes
 * into its own buffer when the write is submitted, so the writer's buffer is reused at once and
 * a writer holds at most (1 + window) chunks of memory, its own and librados'. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <rados/librados.h>

#include "nubo/error.h"
#include "store_priv.h"

#define DEFAULT_POOL   "nubo-images"
#define DEFAULT_USER   "admin"
#define DEFAULT_WINDOW 4
#define MAX_WINDOW     64
#define WID_LEN        16  /* hex digits of a write id */
#define OID_MAX        256 /* KEY + "@" + WRITEID + "." + N */
#define MANIFEST_MAX   512
#define MANIFEST_MAGIC "nubo-blob 1\n"
#define AGE_XATTR      "nubo.written"
#define READ_BATCH     16 /* chunk reads in flight for one pread */
#define REMOVE_BATCH   32 /* removals in flight */
#define READ_RETRIES   3  /* re-reads of a manifest replaced during a pread */
#define MIN_CHUNK      4096u
#define MAX_CHUNK      (256u << 20)

/* Seconds librados may wait for the monitors (to connect, and for each mon command) and for
 * an OSD operation before it fails with ETIMEDOUT: an unreachable cluster is reported in about
 * CONNECT_TIMEOUT seconds instead of librados' default 300 s or forever. They override what
 * ceph.conf says. */
#define CONNECT_TIMEOUT "10"
#define MON_OP_TIMEOUT  "10"
#define OSD_OP_TIMEOUT  "30"

struct rados_store {
    struct img_store base;
    rados_t cluster;
    rados_ioctx_t io;
    int window;
    char pool[128];
};

/* A data object write in flight. */
struct pending {
    rados_completion_t c;
    rados_write_op_t op;
    uint64_t index;
};

struct rados_writer {
    struct img_writer base;
    char key[IMG_KEY_MAX + 1];
    char wid[WID_LEN + 1];
    unsigned char *buf;   /* the chunk being filled, IMG_RADOS_CHUNK bytes */
    size_t used;          /* bytes of 'buf' filled */
    uint64_t sent;        /* chunks submitted: data objects 0 .. sent-1 */
    struct pending *ring; /* 'window' slots, the oldest at 'head' */
    int window, head, inflight;
    bool failed; /* a write failed: only abort is left */
};

struct manifest {
    uint64_t size;
    uint32_t chunk;
    char wid[WID_LEN + 1];
    uint64_t count;
};

static struct rados_store *rs_of(struct img_store *s)
{
    return (struct rados_store *)s;
}

/* ---- errors ------------------------------------------------------------------------------- */

static enum nb_errcode code_of(int rc)
{
    switch (-rc) {
    case ENOENT:
        return NB_ERR_NOT_FOUND;
    case ETIMEDOUT:
    case ESHUTDOWN: /* this client was blocklisted */
    case ENOTCONN:
    case ECONNREFUSED:
    case EAGAIN:
        return NB_ERR_UNAVAILABLE;
    case ENOSPC:
    case EDQUOT:
        return NB_ERR_LIMIT;
    case EACCES:
    case EPERM:
        return NB_ERR_FORBIDDEN;
    default:
        return NB_ERR_IO;
    }
}

/* Sets 'err' (may be NULL) to "<what>: <strerror(-rc)>" with 'code', or with a code chosen
 * from the librados error 'rc' when 'code' is NB_ERR_NONE. */
static void __attribute__((format(printf, 4, 5)))
rados_fail(struct nb_error *err, enum nb_errcode code, int rc, const char *fmt, ...)
{
    char what[NB_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    nb_error_set(err, code != NB_ERR_NONE ? code : code_of(rc), "%s: %s", what, strerror(-rc));
}

static void oom(struct nb_error *err)
{
    nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
}

/* ---- names and manifests ------------------------------------------------------------------ */

static void data_oid(char *out, const char *key, const char *wid, uint64_t index)
{
    snprintf(out, OID_MAX, "%s@%s.%" PRIu64, key, wid, index);
}

/* Splits a data object name "KEY@WRITEID.N" into 'key' and 'wid'. Returns false for any other
 * name (a manifest, or an object nubo did not write). */
static bool parse_data_oid(const char *oid, char *key, char *wid)
{
    const char *at = strchr(oid, '@');
    if (!at || at == oid || (size_t)(at - oid) > IMG_KEY_MAX) {
        return false;
    }
    const char *p = at + 1;
    for (int i = 0; i < WID_LEN; i++) {
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) {
            return false;
        }
    }
    p += WID_LEN;
    if (*p++ != '.' || !*p || strspn(p, "0123456789") != strlen(p)) {
        return false;
    }
    memcpy(key, oid, (size_t)(at - oid));
    key[at - oid] = '\0';
    if (!img_store_key_valid(key)) {
        return false;
    }
    memcpy(wid, at + 1, WID_LEN);
    wid[WID_LEN] = '\0';
    return true;
}

static int format_manifest(char *out, size_t len, const struct manifest *m)
{
    return snprintf(out, len,
                    MANIFEST_MAGIC "size %" PRIu64 "\nchunk %" PRIu32 "\nwrite %s\ncount %" PRIu64
                                   "\n",
                    m->size, m->chunk, m->wid, m->count);
}

/* Reads "NAME <decimal>\n" at '*p' and advances past it. */
static bool parse_number(const char **p, const char *name, uint64_t *out)
{
    size_t n = strlen(name);
    if (strncmp(*p, name, n) || (*p)[n] != ' ') {
        return false;
    }
    const char *s = *p + n + 1;
    size_t digits = strspn(s, "0123456789");
    if (digits == 0 || digits > 19 || s[digits] != '\n') {
        return false;
    }
    *out = strtoull(s, NULL, 10);
    *p = s + digits + 1;
    return true;
}

/* Parses a manifest body (NUL-terminated). Returns false if it is not exactly one. */
static bool parse_manifest(const char *body, struct manifest *m)
{
    const char *p = body;
    uint64_t chunk;
    if (strncmp(p, MANIFEST_MAGIC, strlen(MANIFEST_MAGIC))) {
        return false;
    }
    p += strlen(MANIFEST_MAGIC);
    if (!parse_number(&p, "size", &m->size) || !parse_number(&p, "chunk", &chunk) ||
        strncmp(p, "write ", 6)) {
        return false;
    }
    p += 6;
    if (strspn(p, "0123456789abcdef") != WID_LEN || p[WID_LEN] != '\n') {
        return false;
    }
    memcpy(m->wid, p, WID_LEN);
    m->wid[WID_LEN] = '\0';
    p += WID_LEN + 1;
    if (!parse_number(&p, "count", &m->count) || *p != '\0') {
        return false;
    }
    if (chunk < MIN_CHUNK || chunk > MAX_CHUNK) {
        return false;
    }
    m->chunk = (uint32_t)chunk;
    return m->count == m->size / chunk + (m->size % chunk != 0);
}

/* Reads the manifest of 'key'. Returns 0, or -1 with 'err' (NB_ERR_NOT_FOUND when there is
 * none, NB_ERR_INTERNAL when it does not parse). */
static int read_manifest(struct rados_store *rs, const char *key, struct manifest *m,
                         struct nb_error *err)
{
    char body[MANIFEST_MAX + 1];
    int n = rados_read(rs->io, key, body, MANIFEST_MAX, 0);
    if (n == -ENOENT) {
        nb_error_set(err, NB_ERR_NOT_FOUND, "no blob \"%s\" in the image store", key);
        return -1;
    }
    if (n < 0) {
        rados_fail(err, NB_ERR_NONE, n, "could not read the manifest of blob \"%s\" in pool \"%s\"",
                   key, rs->pool);
        return -1;
    }
    body[n] = '\0';
    if (n == MANIFEST_MAX || strlen(body) != (size_t)n || !parse_manifest(body, m)) {
        nb_error_set(err, NB_ERR_INTERNAL,
                     "the manifest of blob \"%s\" in pool \"%s\" is damaged: not a nubo-blob 1 "
                     "manifest",
                     key, rs->pool);
        return -1;
    }
    return 0;
}

/* ---- batched removal and reads ----------------------------------------------------------- */

/* Removals go with LIBRADOS_OPERATION_FULL_TRY: on a full cluster, librados holds back other
 * writes until space is freed, and removing objects is how space is freed. */

/* Removes object 'oid'. Returns 0, or a negative errno. */
static int remove_object(struct rados_store *rs, const char *oid)
{
    rados_write_op_t op = rados_create_write_op();
    if (!op) {
        return -ENOMEM;
    }
    rados_write_op_remove(op);
    int r = rados_write_op_operate(op, rs->io, oid, NULL, LIBRADOS_OPERATION_FULL_TRY);
    rados_release_write_op(op);
    return r;
}

/* Removes objects asynchronously, up to REMOVE_BATCH in flight. */
struct remover {
    struct rados_store *rs;
    rados_completion_t c[REMOVE_BATCH];
    rados_write_op_t op[REMOVE_BATCH];
    int n;
    int removed; /* removals that succeeded */
};

static void remover_wait(struct remover *rm)
{
    for (int k = 0; k < rm->n; k++) {
        rados_aio_wait_for_complete(rm->c[k]);
        if (rados_aio_get_return_value(rm->c[k]) == 0) {
            rm->removed++;
        }
        rados_aio_release(rm->c[k]);
        rados_release_write_op(rm->op[k]);
    }
    rm->n = 0;
}

/* Starts removing 'oid', best effort (a removal that cannot start is skipped). */
static void remover_add(struct remover *rm, const char *oid)
{
    if (rm->n == REMOVE_BATCH) {
        remover_wait(rm);
    }
    rados_write_op_t op = rados_create_write_op();
    rados_completion_t c;
    if (!op) {
        return;
    }
    if (rados_aio_create_completion2(NULL, NULL, &c) < 0) {
        rados_release_write_op(op);
        return;
    }
    rados_write_op_remove(op);
    if (rados_aio_write_op_operate(op, rm->rs->io, c, oid, NULL, LIBRADOS_OPERATION_FULL_TRY) < 0) {
        rados_aio_release(c);
        rados_release_write_op(op);
        return;
    }
    rm->c[rm->n] = c;
    rm->op[rm->n] = op;
    rm->n++;
}

/* Waits for the removals still in flight. Returns how many removals succeeded in all. */
static int remover_finish(struct remover *rm)
{
    remover_wait(rm);
    return rm->removed;
}

/* Removes data objects 'first' .. 'first'+'count'-1 of write 'wid' of 'key', best effort.
 * Returns how many were removed. */
static int remove_data(struct rados_store *rs, const char *key, const char *wid, uint64_t first,
                       uint64_t count)
{
    struct remover rm = {.rs = rs};
    for (uint64_t i = 0; i < count; i++) {
        char oid[OID_MAX];
        data_oid(oid, key, wid, first + i);
        remover_add(&rm, oid);
    }
    return remover_finish(&rm);
}

/* Reads 'len' bytes at blob offset 'off' from the data objects of write 'wid' of 'key' (chunks
 * of 'chunk' bytes), every byte of which must exist. Returns 0; -ENOENT when a data object is
 * missing or short (err untouched, the caller decides what that means); or another negative
 * errno with 'err' set. */
static int read_data(struct rados_store *rs, const char *key, const char *wid, uint32_t chunk,
                     unsigned char *buf, size_t len, uint64_t off, struct nb_error *err)
{
    rados_completion_t c[READ_BATCH];
    size_t want[READ_BATCH] = {0};
    uint64_t index[READ_BATCH] = {0};
    int rc = 0;
    size_t done = 0;
    while (done < len && rc == 0) {
        int n = 0;
        for (; n < READ_BATCH && done < len; n++) {
            uint64_t pos = off + done;
            uint64_t in = pos % chunk;
            size_t take = chunk - in < len - done ? (size_t)(chunk - in) : len - done;
            char oid[OID_MAX];
            data_oid(oid, key, wid, pos / chunk);
            int r = rados_aio_create_completion2(NULL, NULL, &c[n]);
            if (r == 0) {
                r = rados_aio_read(rs->io, oid, c[n], (char *)buf + done, take, in);
                if (r < 0) {
                    rados_aio_release(c[n]);
                }
            }
            if (r < 0) {
                rados_fail(err, NB_ERR_NONE, r, "could not read data object \"%s\" of blob \"%s\"",
                           oid, key);
                rc = r;
                break;
            }
            want[n] = take;
            index[n] = pos / chunk;
            done += take;
        }
        for (int k = 0; k < n; k++) {
            rados_aio_wait_for_complete(c[k]);
            int r = rados_aio_get_return_value(c[k]);
            rados_aio_release(c[k]);
            if (rc != 0) {
                continue;
            }
            if (r == -ENOENT || (r >= 0 && (size_t)r < want[k])) {
                rc = -ENOENT;
            } else if (r < 0) {
                char oid[OID_MAX];
                data_oid(oid, key, wid, index[k]);
                rados_fail(err, NB_ERR_NONE, r,
                           "could not read data object \"%s\" from pool \"%s\"", oid, rs->pool);
                rc = r;
            }
        }
    }
    return rc;
}

/* ---- writers ------------------------------------------------------------------------------ */

static void free_writer(struct rados_writer *w)
{
    free(w->ring);
    free(w->buf);
    free(w);
}

/* Waits for the oldest write in flight. Returns 0, or -1 with 'err' (and 'w' marked failed). */
static int wait_oldest(struct rados_writer *w, struct nb_error *err)
{
    struct pending *p = &w->ring[w->head];
    rados_aio_wait_for_complete(p->c);
    int r = rados_aio_get_return_value(p->c);
    rados_aio_release(p->c);
    rados_release_write_op(p->op);
    w->head = (w->head + 1) % w->window;
    w->inflight--;
    if (r < 0) {
        char oid[OID_MAX];
        data_oid(oid, w->key, w->wid, p->index);
        rados_fail(err, NB_ERR_NONE, r, "could not write data object \"%s\" to pool \"%s\"", oid,
                   rs_of(w->base.store)->pool);
        w->failed = true;
        return -1;
    }
    return 0;
}

/* Waits for every write in flight. Returns 0, or -1 with 'err' for the first that failed. */
static int drain(struct rados_writer *w, struct nb_error *err)
{
    int rc = 0;
    while (w->inflight > 0) {
        struct nb_error e = {0};
        if (wait_oldest(w, &e) < 0 && rc == 0) {
            if (err) {
                *err = e;
            }
            rc = -1;
        }
    }
    return rc;
}

/* Sends the filled part of the buffer as data object 'sent'. */
static int send_chunk(struct rados_writer *w, struct nb_error *err)
{
    struct rados_store *rs = rs_of(w->base.store);
    if (w->inflight == w->window && wait_oldest(w, err) < 0) {
        return -1;
    }
    struct pending *p = &w->ring[(w->head + w->inflight) % w->window];
    char oid[OID_MAX], when[24];
    data_oid(oid, w->key, w->wid, w->sent);
    int n = snprintf(when, sizeof when, "%lld", (long long)time(NULL));
    p->index = w->sent;
    p->op = rados_create_write_op();
    if (!p->op) {
        oom(err);
        w->failed = true;
        return -1;
    }
    rados_write_op_write_full(p->op, (const char *)w->buf, w->used);
    rados_write_op_setxattr(p->op, AGE_XATTR, when, (size_t)n);
    int r = rados_aio_create_completion2(NULL, NULL, &p->c);
    if (r == 0) {
        r = rados_aio_write_op_operate(p->op, rs->io, p->c, oid, NULL, 0);
        if (r < 0) {
            rados_aio_release(p->c);
        }
    }
    if (r < 0) {
        rados_release_write_op(p->op);
        rados_fail(err, NB_ERR_NONE, r, "could not write data object \"%s\" to pool \"%s\"", oid,
                   rs->pool);
        w->failed = true;
        return -1;
    }
    w->inflight++;
    w->sent++;
    w->used = 0;
    return 0;
}

static struct img_writer *rados_write_begin(struct img_store *s, const char *key,
                                            struct nb_error *err)
{
    struct rados_store *rs = rs_of(s);
    struct rados_writer *w = calloc(1, sizeof *w);
    unsigned char rnd[WID_LEN / 2];
    if (!w || !(w->buf = malloc(IMG_RADOS_CHUNK)) ||
        !(w->ring = calloc((size_t)rs->window, sizeof *w->ring))) {
        oom(err);
        if (w) {
            free_writer(w);
        }
        return NULL;
    }
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        nb_error_errno(err, errno, "getrandom failed");
        free_writer(w);
        return NULL;
    }
    for (size_t i = 0; i < sizeof rnd; i++) {
        snprintf(w->wid + 2 * i, 3, "%02x", rnd[i]);
    }
    snprintf(w->key, sizeof w->key, "%s", key);
    w->window = rs->window;
    w->base.store = s;
    return &w->base;
}

static int rados_writer_write(struct img_writer *iw, const void *data, size_t len,
                              struct nb_error *err)
{
    struct rados_writer *w = (struct rados_writer *)iw;
    const unsigned char *p = data;
    if (w->failed) {
        nb_error_set(err, NB_ERR_INTERNAL, "writer of blob \"%s\" failed earlier", w->key);
        return -1;
    }
    while (len > 0) {
        size_t take = IMG_RADOS_CHUNK - w->used < len ? IMG_RADOS_CHUNK - w->used : len;
        memcpy(w->buf + w->used, p, take);
        w->used += take;
        p += take;
        len -= take;
        w->base.size += take;
        if (w->used == IMG_RADOS_CHUNK && send_chunk(w, err) < 0) {
            return -1;
        }
    }
    return 0;
}

static int64_t rados_writer_pread(struct img_writer *iw, void *buf, size_t len, uint64_t off,
                                  struct nb_error *err)
{
    struct rados_writer *w = (struct rados_writer *)iw;
    uint64_t flushed = w->sent * IMG_RADOS_CHUNK;
    size_t done = 0;
    if (w->failed) {
        nb_error_set(err, NB_ERR_INTERNAL, "writer of blob \"%s\" failed earlier", w->key);
        return -1;
    }
    if (off < flushed) {
        /* What was sent is read back from RADOS, once it is all there. */
        size_t n = flushed - off < len ? (size_t)(flushed - off) : len;
        if (drain(w, err) < 0) {
            return -1;
        }
        int r = read_data(rs_of(iw->store), w->key, w->wid, IMG_RADOS_CHUNK, buf, n, off, err);
        if (r == -ENOENT) {
            nb_error_set(err, NB_ERR_INTERNAL,
                         "data of unfinished blob \"%s\" (write %s) vanished from pool \"%s\"",
                         w->key, w->wid, rs_of(iw->store)->pool);
        }
        if (r < 0) {
            return -1;
        }
        done = n;
    }
    if (done < len) {
        size_t in = (size_t)(off + done - flushed);
        size_t n = len - done < w->used - in ? len - done : w->used - in;
        memcpy((unsigned char *)buf + done, w->buf + in, n);
        done += n;
    }
    return (int64_t)done;
}

static void rados_abort(struct img_writer *iw)
{
    struct rados_writer *w = (struct rados_writer *)iw;
    drain(w, NULL);
    remove_data(rs_of(iw->store), w->key, w->wid, 0, w->sent);
    free_writer(w);
}

/* The manifest this thread read last: a download reads one blob piece after piece, and
 * without it every piece would cost a manifest read first. Kept for MANIFEST_CACHE_MS; a blob
 * replaced or deleted meanwhile is noticed all the same (its data objects are gone: the read
 * below then takes the manifest again), and this thread's own commits and deletes drop it. */
#define MANIFEST_CACHE_MS 1000
static _Thread_local struct {
    const struct rados_store *rs;
    char key[IMG_KEY_MAX + 1];
    struct manifest m;
    struct timespec at;
} last_manifest;

static long ms_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

static void forget_manifest(const char *key)
{
    if (!strcmp(last_manifest.key, key)) {
        last_manifest.rs = NULL;
    }
}

static int read_manifest_cached(struct rados_store *rs, const char *key, struct manifest *m,
                                bool fresh, struct nb_error *err)
{
    if (!fresh && last_manifest.rs == rs && !strcmp(last_manifest.key, key) &&
        ms_since(&last_manifest.at) < MANIFEST_CACHE_MS) {
        *m = last_manifest.m;
        return 0;
    }
    last_manifest.rs = NULL;
    if (read_manifest(rs, key, m, err) < 0) {
        return -1;
    }
    last_manifest.rs = rs;
    snprintf(last_manifest.key, sizeof last_manifest.key, "%s", key);
    last_manifest.m = *m;
    clock_gettime(CLOCK_MONOTONIC, &last_manifest.at);
    return 0;
}

static int rados_commit(struct img_writer *iw, struct nb_error *err)
{
    struct rados_writer *w = (struct rados_writer *)iw;
    struct rados_store *rs = rs_of(iw->store);
    if (w->failed) {
        nb_error_set(err, NB_ERR_INTERNAL, "writer of blob \"%s\" failed earlier", w->key);
        rados_abort(iw);
        return -1;
    }
    if ((w->used > 0 && send_chunk(w, err) < 0) || drain(w, err) < 0) {
        rados_abort(iw);
        return -1;
    }

    forget_manifest(w->key);
    struct manifest old = {0}, m = {
                                   .size = w->base.size,
                                   .chunk = IMG_RADOS_CHUNK,
                                   .count = w->sent,
                               };
    memcpy(m.wid, w->wid, sizeof m.wid);
    struct nb_error e = {0};
    bool had_old = read_manifest(rs, w->key, &old, &e) == 0;

    char body[MANIFEST_MAX];
    int n = format_manifest(body, sizeof body, &m);
    int r = rados_write_full(rs->io, w->key, body, (size_t)n);
    if (r < 0) {
        /* A timed-out write may still have been applied: leave the data objects to GC, which
         * keeps them if the manifest names them after all. */
        rados_fail(err, NB_ERR_NONE, r,
                   "could not write the manifest of blob \"%s\" to pool \"%s\"", w->key, rs->pool);
        free_writer(w);
        return -1;
    }
    if (had_old && strcmp(old.wid, m.wid)) {
        remove_data(rs, w->key, old.wid, 0, old.count);
    }
    free_writer(w);
    return 0;
}

/* ---- reading, deleting, listing ----------------------------------------------------------- */

static int rados_stat_blob(struct img_store *s, const char *key, uint64_t *size,
                           struct nb_error *err)
{
    struct manifest m;
    if (read_manifest(rs_of(s), key, &m, err) < 0) {
        return -1;
    }
    *size = m.size;
    return 0;
}

static int64_t rados_pread(struct img_store *s, const char *key, void *buf, size_t len,
                           uint64_t off, struct nb_error *err)
{
    struct rados_store *rs = rs_of(s);
    for (int attempt = 0;; attempt++) {
        struct manifest m;
        if (read_manifest_cached(rs, key, &m, attempt > 0, err) < 0) {
            return -1;
        }
        if (off >= m.size || len == 0) {
            return 0;
        }
        size_t n = m.size - off < len ? (size_t)(m.size - off) : len;
        int r = read_data(rs, key, m.wid, m.chunk, buf, n, off, err);
        if (r == 0) {
            return (int64_t)n;
        }
        if (r != -ENOENT) {
            return -1;
        }
        /* A data object is gone: fine if the blob was replaced or deleted meanwhile (read the
         * new one, or report it missing), a damaged blob otherwise. */
        struct manifest now;
        if (read_manifest_cached(rs, key, &now, true, err) < 0) {
            return -1;
        }
        if (!strcmp(now.wid, m.wid) || attempt + 1 >= READ_RETRIES) {
            nb_error_set(err, NB_ERR_INTERNAL,
                         "blob \"%s\" in pool \"%s\" is damaged: a data object of write %s is "
                         "missing or short",
                         key, rs->pool, m.wid);
            return -1;
        }
    }
}

static int rados_del(struct img_store *s, const char *key, struct nb_error *err)
{
    struct rados_store *rs = rs_of(s);
    forget_manifest(key);
    struct manifest m;
    struct nb_error e = {0};
    bool parsed = read_manifest(rs, key, &m, &e) == 0;
    if (!parsed && e.code != NB_ERR_INTERNAL) {
        if (e.code == NB_ERR_NOT_FOUND) {
            return 0;
        }
        if (err) {
            *err = e;
        }
        return -1;
    }
    /* The manifest first: from then on the blob is gone, whatever happens to its data. A
     * damaged manifest is removed too; its data objects are then left to GC. */
    int r = remove_object(rs, key);
    if (r < 0 && r != -ENOENT) {
        rados_fail(err, NB_ERR_NONE, r, "could not remove blob \"%s\" from pool \"%s\"", key,
                   rs->pool);
        return -1;
    }
    if (parsed) {
        remove_data(rs, key, m.wid, 0, m.count);
    }
    return 0;
}

static int rados_list(struct img_store *s, const char *prefix,
                      void (*fn)(const char *key, uint64_t size, void *arg), void *arg,
                      struct nb_error *err)
{
    struct rados_store *rs = rs_of(s);
    rados_list_ctx_t ctx;
    int r = rados_nobjects_list_open(rs->io, &ctx);
    if (r < 0) {
        rados_fail(err, NB_ERR_NONE, r, "could not list pool \"%s\"", rs->pool);
        return -1;
    }
    size_t plen = strlen(prefix);
    int rc = 0;
    const char *oid;
    while ((r = rados_nobjects_list_next(ctx, &oid, NULL, NULL)) == 0) {
        if (strchr(oid, '@') || strncmp(oid, prefix, plen) || !img_store_key_valid(oid)) {
            continue;
        }
        struct manifest m;
        struct nb_error e = {0};
        if (read_manifest(rs, oid, &m, &e) < 0) {
            if (e.code == NB_ERR_NOT_FOUND) {
                continue; /* deleted since it was listed */
            }
            if (err) {
                *err = e;
            }
            rc = -1;
            break;
        }
        fn(oid, m.size, arg);
    }
    if (rc == 0 && r != -ENOENT) {
        rados_fail(err, NB_ERR_NONE, r, "could not list pool \"%s\"", rs->pool);
        rc = -1;
    }
    rados_nobjects_list_close(ctx);
    return rc;
}

/* ---- garbage collection ------------------------------------------------------------------- */

struct stray {
    char *oid;
    char key[IMG_KEY_MAX + 1];
    char wid[WID_LEN + 1];
};

static int stray_cmp(const void *a, const void *b)
{
    const struct stray *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->wid, y->wid);
}

/* The time data object 'oid' was written: its xattr, else its RADOS mtime. Returns 0, or a
 * negative errno. */
static int written_at(struct rados_store *rs, const char *oid, time_t *when)
{
    char v[24];
    int n = rados_getxattr(rs->io, oid, AGE_XATTR, v, sizeof v - 1);
    if (n > 0) {
        v[n] = '\0';
        *when = (time_t)strtoll(v, NULL, 10);
        return 0;
    }
    uint64_t size;
    return rados_stat(rs->io, oid, &size, when);
}

/* Lists every data object of the pool into '*out' ('*n' entries; the caller frees each oid and
 * the array). Returns 0, or -1 with 'err'. */
static int list_data_objects(struct rados_store *rs, struct stray **out, size_t *n,
                             struct nb_error *err)
{
    rados_list_ctx_t ctx;
    struct stray *v = NULL;
    size_t len = 0, cap = 0;
    int r = rados_nobjects_list_open(rs->io, &ctx);
    if (r < 0) {
        rados_fail(err, NB_ERR_NONE, r, "could not list pool \"%s\"", rs->pool);
        return -1;
    }
    const char *oid;
    while ((r = rados_nobjects_list_next(ctx, &oid, NULL, NULL)) == 0) {
        struct stray st;
        if (!parse_data_oid(oid, st.key, st.wid)) {
            continue;
        }
        if (len == cap) {
            size_t ncap = cap ? 2 * cap : 64;
            struct stray *nv = realloc(v, ncap * sizeof *v);
            if (!nv) {
                r = -ENOMEM;
                break;
            }
            v = nv;
            cap = ncap;
        }
        if (!(st.oid = strdup(oid))) {
            r = -ENOMEM;
            break;
        }
        v[len++] = st;
    }
    rados_nobjects_list_close(ctx);
    if (r != -ENOENT) {
        if (r == -ENOMEM) {
            oom(err);
        } else {
            rados_fail(err, NB_ERR_NONE, r, "could not list pool \"%s\"", rs->pool);
        }
        for (size_t i = 0; i < len; i++) {
            free(v[i].oid);
        }
        free(v);
        return -1;
    }
    *out = v;
    *n = len;
    return 0;
}

/* Decides about the objects v[0..n-1], all of one key and one write id that the key's
 * manifest does not name: removes them all if each is at least 'min_age_s' old. Returns how
 * many it removed. */
static int collect_write(struct rados_store *rs, struct stray *v, size_t n, int min_age_s)
{
    time_t now = time(NULL);
    for (size_t i = 0; min_age_s > 0 && i < n; i++) {
        time_t when;
        int r = written_at(rs, v[i].oid, &when);
        if (r == -ENOENT) {
            continue; /* removed meanwhile */
        }
        if (r < 0 || now - when < min_age_s) {
            return 0; /* its writer may still be running */
        }
    }
    struct remover rm = {.rs = rs};
    for (size_t i = 0; i < n; i++) {
        remover_add(&rm, v[i].oid);
    }
    return remover_finish(&rm);
}

static int rados_gc(struct img_store *s, int min_age_s, struct nb_error *err)
{
    struct rados_store *rs = rs_of(s);
    struct stray *v;
    size_t n;
    if (list_data_objects(rs, &v, &n, err) < 0) {
        return -1;
    }
    if (n > 1) {
        qsort(v, n, sizeof *v, stray_cmp);
    }

    int removed = 0, rc = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        /* v[i..kend) share a key; its manifest decides for all of them. */
        size_t kend = i;
        while (kend < n && !strcmp(v[kend].key, v[i].key)) {
            kend++;
        }
        struct manifest m;
        struct nb_error e = {0};
        bool named = read_manifest(rs, v[i].key, &m, &e) == 0;
        if (!named && e.code == NB_ERR_INTERNAL) {
            i = kend; /* a damaged manifest: cannot tell what it owns, so keep everything */
            continue;
        }
        if (!named && e.code != NB_ERR_NOT_FOUND) {
            if (err) {
                *err = e;
            }
            rc = -1;
            break;
        }
        while (i < kend) {
            size_t wend = i;
            while (wend < kend && !strcmp(v[wend].wid, v[i].wid)) {
                wend++;
            }
            if (!named || strcmp(m.wid, v[i].wid)) {
                removed += collect_write(rs, v + i, wend - i, min_age_s);
            }
            i = wend;
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(v[i].oid);
    }
    free(v);
    return rc < 0 ? -1 : removed;
}

/* ---- the store ---------------------------------------------------------------------------- */

static bool rados_local_path(struct img_store *s, const char *key, char *out, size_t out_len)
{
    return false;
}

static void rados_close(struct img_store *s)
{
    struct rados_store *rs = rs_of(s);
    if (last_manifest.rs == rs) {
        last_manifest.rs = NULL; /* another store may be allocated at this address */
    }
    if (rs->io) {
        rados_ioctx_destroy(rs->io);
    }
    rados_shutdown(rs->cluster);
    free(rs);
}

static const struct img_store_ops rados_ops = {
    .name = "rados",
    .close = rados_close,
    .write_begin = rados_write_begin,
    .write = rados_writer_write,
    .writer_pread = rados_writer_pread,
    .commit = rados_commit,
    .abort = rados_abort,
    .stat = rados_stat_blob,
    .pread = rados_pread,
    .del = rados_del,
    .list = rados_list,
    .gc = rados_gc,
    .local_path = rados_local_path,
};

/* Sets the librados options of 'cfg' on 'cluster'. Returns 0, or -1 with 'err'. */
static int configure(rados_t cluster, const struct img_store_config *cfg, struct nb_error *err)
{
    int r = rados_conf_read_file(cluster, cfg->ceph_conf);
    if (r < 0) {
        rados_fail(err, NB_ERR_INVALID, r, "could not read Ceph configuration \"%s\"",
                   cfg->ceph_conf ? cfg->ceph_conf : "(default search path)");
        return -1;
    }
    static const char *const opts[][2] = {
        {"client_mount_timeout", CONNECT_TIMEOUT},
        {"rados_mon_op_timeout", MON_OP_TIMEOUT},
        {"rados_osd_op_timeout", OSD_OP_TIMEOUT},
    };
    for (size_t i = 0; i < sizeof opts / sizeof *opts; i++) {
        if ((r = rados_conf_set(cluster, opts[i][0], opts[i][1])) < 0) {
            rados_fail(err, NB_ERR_INTERNAL, r, "could not set librados option %s", opts[i][0]);
            return -1;
        }
    }
    if (cfg->ceph_keyring && (r = rados_conf_set(cluster, "keyring", cfg->ceph_keyring)) < 0) {
        rados_fail(err, NB_ERR_INVALID, r, "could not use Ceph keyring \"%s\"", cfg->ceph_keyring);
        return -1;
    }
    return 0;
}

/* Opens the pool, creating it when it is absent. Returns 0, or -1 with 'err'. */
static int open_pool(struct rados_store *rs, struct nb_error *err)
{
    int r = rados_ioctx_create(rs->cluster, rs->pool, &rs->io);
    if (r == -ENOENT) {
        r = rados_pool_create(rs->cluster, rs->pool);
        if (r < 0 && r != -EEXIST) {
            rados_fail(err, NB_ERR_NONE, r, "could not create Ceph pool \"%s\"", rs->pool);
            return -1;
        }
        r = rados_ioctx_create(rs->cluster, rs->pool, &rs->io);
        if (r == 0) {
            /* Tag the pool as ours (Ceph warns about pools with no application); best
             * effort, the store works without it. */
            rados_application_enable(rs->io, "nubo", 1);
        }
    }
    if (r < 0) {
        rs->io = NULL;
        rados_fail(err, NB_ERR_NONE, r, "could not open Ceph pool \"%s\"", rs->pool);
        return -1;
    }
    return 0;
}

/* Connects as client 'cfg->ceph_user' with 'cfg->ceph_conf' (and 'cfg->ceph_keyring'), creates
 * the pool when absent and returns the store, which img_store_close() frees; or NULL with 'err':
 * NB_ERR_UNAVAILABLE when the cluster cannot be reached within CONNECT_TIMEOUT seconds,
 * NB_ERR_INVALID for a configuration that cannot work (no such ceph.conf, a refused key). */
struct img_store *img_store_rados_open(const struct img_store_config *cfg, struct nb_error *err)
{
    const char *user = cfg->ceph_user ? cfg->ceph_user : DEFAULT_USER;
    const char *pool = cfg->pool ? cfg->pool : DEFAULT_POOL;
    char name[128];
    if (!*user || snprintf(name, sizeof name, "client.%s", user) >= (int)sizeof name) {
        nb_error_set(err, NB_ERR_INVALID, "invalid Ceph user \"%.64s\"", user);
        return NULL;
    }
    if (cfg->rados_window < 0 || cfg->rados_window > MAX_WINDOW) {
        nb_error_set(err, NB_ERR_INVALID, "rados window %d out of range: use 1 to %d (0: %d)",
                     cfg->rados_window, MAX_WINDOW, DEFAULT_WINDOW);
        return NULL;
    }
    struct rados_store *rs = calloc(1, sizeof *rs);
    if (!rs) {
        oom(err);
        return NULL;
    }
    rs->base.ops = &rados_ops;
    rs->window = cfg->rados_window ? cfg->rados_window : DEFAULT_WINDOW;
    if (!*pool || snprintf(rs->pool, sizeof rs->pool, "%s", pool) >= (int)sizeof rs->pool) {
        nb_error_set(err, NB_ERR_INVALID, "invalid Ceph pool name \"%.64s\"", pool);
        free(rs);
        return NULL;
    }
    int r = rados_create2(&rs->cluster, "ceph", name, 0);
    if (r < 0) {
        rados_fail(err, NB_ERR_INVALID, r, "could not create a librados handle for %s", name);
        free(rs);
        return NULL;
    }
    if (configure(rs->cluster, cfg, err) < 0) {
        goto fail;
    }
    r = rados_connect(rs->cluster);
    if (r < 0) {
        /* A wrong key or user is a configuration problem; the rest (timeouts above all) is
         * a cluster that cannot be reached now. */
        bool config = r == -EACCES || r == -EPERM || r == -EINVAL || r == -ENOENT;
        rados_fail(err, config ? NB_ERR_INVALID : NB_ERR_UNAVAILABLE, r,
                   "could not connect to the Ceph cluster of \"%s\" as %s",
                   cfg->ceph_conf ? cfg->ceph_conf : "(default ceph.conf)", name);
        goto fail;
    }
    if (open_pool(rs, err) < 0) {
        goto fail;
    }
    return &rs->base;
fail:
    rados_close(&rs->base);
    return NULL;
}
