/* The image-store backend contract (image-store/store.h), checked the same way for every
 * backend: test_store_file and test_store_rados run these cases against their own store.
 *
 * Each function is a cmocka case body: it takes the open store (and a key prefix unique to the
 * run) and fails the test through cmocka's assertions. */
#ifndef NUBO_TEST_STORE_CHECK_H
#define NUBO_TEST_STORE_CHECK_H

struct img_store;
struct img_store_config;

/* Write a blob in odd-sized pieces across several chunk boundaries, stat it, read it back at
 * many offsets (also past the end), list it, delete it. */
void store_check_roundtrip(struct img_store *s, const char *prefix);

/* Until commit nothing is visible; commit replaces an older blob atomically; abort leaves the
 * older blob as it was. */
void store_check_atomic_replace(struct img_store *s, const char *prefix);

/* An empty blob, an invalid key, a missing key. */
void store_check_edges(struct img_store *s, const char *prefix);

/* A writer's own read-back (img_writer_pread) before commit. */
void store_check_writer_pread(struct img_store *s, const char *prefix);

/* A child process opens its own store from 'cfg', writes part of a blob and is killed with
 * SIGKILL: no blob is visible in 's', and img_store_gc(s, 0) removes what it left (it returns
 * > 0 once, then 0), leaving committed blobs alone. */
void store_check_killed_writer(struct img_store *s, const struct img_store_config *cfg,
                               const char *prefix);

#endif
