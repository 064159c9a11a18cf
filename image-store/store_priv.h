/* Inside the image store: what each backend implements (store.c dispatches to it). */
#ifndef NUBO_IMAGE_STORE_PRIV_H
#define NUBO_IMAGE_STORE_PRIV_H

#include "store.h"

struct img_store_ops {
    const char *name;
    void (*close)(struct img_store *s);
    struct img_writer *(*write_begin)(struct img_store *s, const char *key, struct nb_error *err);
    int (*write)(struct img_writer *w, const void *buf, size_t len, struct nb_error *err);
    int64_t (*writer_pread)(struct img_writer *w, void *buf, size_t len, uint64_t off,
                            struct nb_error *err);
    int (*commit)(struct img_writer *w, struct nb_error *err); /* frees w in every case */
    void (*abort)(struct img_writer *w);                       /* frees w */
    int (*stat)(struct img_store *s, const char *key, uint64_t *size, struct nb_error *err);
    int64_t (*pread)(struct img_store *s, const char *key, void *buf, size_t len, uint64_t off,
                     struct nb_error *err);
    int (*del)(struct img_store *s, const char *key, struct nb_error *err);
    int (*list)(struct img_store *s, const char *prefix,
                void (*fn)(const char *key, uint64_t size, void *arg), void *arg,
                struct nb_error *err);
    int (*gc)(struct img_store *s, int min_age_s, struct nb_error *err);
    bool (*local_path)(struct img_store *s, const char *key, char *out, size_t out_len);
};

/* Every backend's store and writer begin with these; the rest is the backend's own. */
struct img_store {
    const struct img_store_ops *ops;
};

struct img_writer {
    struct img_store *store;
    uint64_t size; /* bytes written so far; the backend's write() adds to it */
};

/* The backends' constructors; 'cfg' has been checked by img_store_open(). */
struct img_store *img_store_file_open(const struct img_store_config *cfg, struct nb_error *err);
struct img_store *img_store_rados_open(const struct img_store_config *cfg, struct nb_error *err);

#endif
