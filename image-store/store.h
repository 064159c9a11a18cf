/* The image store's object backends: where image bytes live.
 *
 * An object ("blob") is a named byte string, written once as a stream and read back at any
 * offset. Names are keys of the form "images/ami-0123...", "uploads/<id>", "exports/<id>": ASCII
 * letters, digits and "-_./", no "..", at most IMG_KEY_MAX bytes.
 *
 * Two backends, one contract (tests/lib/store_check.c checks both against it):
 *   - "file": a local directory; a blob is one file under DIR/objects/, written under DIR/tmp/
 *     and renamed into place after fsync;
 *   - "rados": a Ceph RADOS pool through librados; a blob is striped over data objects of
 *     IMG_RADOS_CHUNK bytes named "KEY@WRITEID.N", plus a small manifest object named KEY
 *     that is written last, in one rados write_full, and names the data objects.
 *
 * Atomicity: a blob becomes visible (stat, read, list) only when img_writer_commit() returns 0.
 * Until then, and after a crash of the writing process at any point, readers see the previous
 * blob under that key, or none. What a crashed writer left (temporary files, data objects no
 * manifest names) is removed by img_store_gc().
 *
 * Thread-safety: one struct img_store may be used by many threads at once; a writer belongs to
 * one thread at a time. */
#ifndef NUBO_IMAGE_STORE_H
#define NUBO_IMAGE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nb_error;
struct img_store;
struct img_writer;

#define IMG_KEY_MAX 200
/* 1 MiB: measured against 4 MiB with `tests/bench/image.py --only rados` here, the same upload
 * speed for about half the gateway's memory (librados holds several times the bytes of each
 * write in flight). Readers take the chunk size from the manifest, so blobs written with
 * another size stay readable. */
#define IMG_RADOS_CHUNK (1u << 20)

struct img_store_config {
    const char *backend;      /* "file" (when NULL) or "rados" */
    const char *dir;          /* file: the directory (made if absent) */
    const char *ceph_conf;    /* rados: a ceph.conf path (NULL: librados' default search) */
    const char *ceph_user;    /* rados: the client id without "client.", "admin" when NULL */
    const char *ceph_keyring; /* rados: a keyring path, NULL to take it from ceph.conf */
    const char *pool;         /* rados: the pool, "nubo-images" when NULL (made if absent) */
    int rados_window;         /* rados: data-object writes in flight per writer, 4 when 0 */
};

/* Opens (connects to) a backend. Returns it, or NULL with 'err' (NB_ERR_UNAVAILABLE when the
 * cluster cannot be reached, NB_ERR_INVALID for a bad configuration). */
struct img_store *img_store_open(const struct img_store_config *cfg, struct nb_error *err);

/* Opens the backend the settings name: store.backend, store.dir (var/images), store.ceph_conf,
 * store.ceph_user, store.ceph_keyring, store.pool, store.rados_window (4); the gateway and
 * nubo-imaged read the same ones. Returns it, or NULL with 'err'. */
struct nb_config;
struct img_store *img_store_open_config(const struct nb_config *cfg, struct nb_error *err);

/* Closes and frees; accepts NULL. Writers still open must be aborted first. */
void img_store_close(struct img_store *s);

/* "file" or "rados". */
const char *img_store_backend(const struct img_store *s);

/* True if 'key' is a valid blob name (see above). */
bool img_store_key_valid(const char *key);

/* Starts writing the blob 'key'. Returns a writer, or NULL with 'err'. */
struct img_writer *img_store_write_begin(struct img_store *s, const char *key,
                                         struct nb_error *err);

/* Appends 'len' bytes. Memory use does not grow with the blob's size. Returns 0, or -1 with
 * 'err'; after a failure the only calls left are img_writer_abort(). */
int img_writer_write(struct img_writer *w, const void *buf, size_t len, struct nb_error *err);

/* Bytes written so far. */
uint64_t img_writer_size(const struct img_writer *w);

/* Reads back 'len' bytes at 'off' of what this writer has written so far (for validating an
 * upload before it is committed). Returns the bytes read (short at the end), or -1 with 'err'. */
int64_t img_writer_pread(struct img_writer *w, void *buf, size_t len, uint64_t off,
                         struct nb_error *err);

/* Makes the blob visible under its key, atomically replacing any blob of that key, and frees
 * 'w'. Returns 0, or -1 with 'err', in which case nothing became visible and 'w' is freed too
 * (what it wrote is removed, or left for img_store_gc()). */
int img_writer_commit(struct img_writer *w, struct nb_error *err);

/* Drops what 'w' wrote and frees it. Accepts NULL. */
void img_writer_abort(struct img_writer *w);

/* The size of the committed blob 'key'. Returns 0, or -1 with 'err' (NB_ERR_NOT_FOUND when
 * there is none). */
int img_store_stat(struct img_store *s, const char *key, uint64_t *size, struct nb_error *err);

/* Reads up to 'len' bytes of blob 'key' at 'off'. Returns the bytes read (0 at or past the end),
 * or -1 with 'err' (NB_ERR_NOT_FOUND when there is no such blob). */
int64_t img_store_pread(struct img_store *s, const char *key, void *buf, size_t len, uint64_t off,
                        struct nb_error *err);

/* Removes blob 'key' and everything it owns. Removing a blob that is not there succeeds.
 * Returns 0, or -1 with 'err'. */
int img_store_delete(struct img_store *s, const char *key, struct nb_error *err);

/* Calls 'fn' for each committed blob whose key starts with 'prefix' ("" for all), in no
 * particular order. Returns 0, or -1 with 'err'. */
int img_store_list(struct img_store *s, const char *prefix,
                   void (*fn)(const char *key, uint64_t size, void *arg), void *arg,
                   struct nb_error *err);

/* Removes what writers that never committed left behind (a crashed process, an aborted upload
 * whose removal failed) once it is older than 'min_age_s' seconds; writers younger than that
 * may still be running. Returns the number of objects/files removed, or -1 with 'err'. */
int img_store_gc(struct img_store *s, int min_age_s, struct nb_error *err);

/* A committed blob read from offset 'first' on, as the body of an HTTP reply (the reader
 * nb_http_reply_stream() takes): img_blob_reader_read() reads at first + 'pos' and logs a
 * failure (the reply then ends in error). */
struct img_blob_reader {
    struct img_store *store;
    char key[IMG_KEY_MAX + 1];
    uint64_t first;
};
int64_t img_blob_reader_read(void *ctx, uint64_t pos, char *buf, size_t len);

/* For the file backend, the path of the committed blob 'key' (for tools such as qemu-img that
 * read files), written to 'out'; returns false for other backends or an invalid key. */
bool img_store_local_path(struct img_store *s, const char *key, char *out, size_t out_len);

#endif
