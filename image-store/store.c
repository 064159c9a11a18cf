/* The image store's public calls: argument checks, then the backend's op. */
#include <inttypes.h>
#include <string.h>

#include "nubo/config.h"
#include "nubo/error.h"
#include "nubo/log.h"
#include "store_priv.h"

bool img_store_key_valid(const char *key)
{
    if (!key || !*key || strlen(key) > IMG_KEY_MAX || key[0] == '/' || key[0] == '.' ||
        strstr(key, "..") || strstr(key, "//")) {
        return false;
    }
    for (const char *p = key; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.' || c == '/';
        if (!ok) {
            return false;
        }
    }
    return key[strlen(key) - 1] != '/';
}

static int check_key(const char *key, struct nb_error *err)
{
    if (!img_store_key_valid(key)) {
        nb_error_set(err, NB_ERR_INVALID,
                     "invalid blob key \"%.64s\": use letters, digits and \"-_./\", at most %d "
                     "bytes, no \"..\"",
                     key ? key : "", IMG_KEY_MAX);
        return -1;
    }
    return 0;
}

struct img_store *img_store_open(const struct img_store_config *cfg, struct nb_error *err)
{
    const char *backend = cfg->backend ? cfg->backend : "file";
    if (!strcmp(backend, "file")) {
        if (!cfg->dir || !*cfg->dir) {
            nb_error_set(err, NB_ERR_INVALID, "the file image store needs a directory");
            return NULL;
        }
        return img_store_file_open(cfg, err);
    }
    if (!strcmp(backend, "rados")) {
        return img_store_rados_open(cfg, err);
    }
    nb_error_set(err, NB_ERR_INVALID, "unknown image store backend \"%.32s\": use file or rados",
                 backend);
    return NULL;
}

struct img_store *img_store_open_config(const struct nb_config *cfg, struct nb_error *err)
{
    long long window;
    /* Data-object writes in flight per upload: throughput against memory (librados holds
     * several times the bytes of each write in flight). Measured here with 1 MiB objects
     * (tests/bench/image.py --only rados, the machine busy): 4 in flight, 45 MiB peak RSS of
     * the gateway; 8, 52 MiB, no faster. With 4 MiB objects 4 in flight took 75-100 MiB. */
    if (nb_config_get_int(cfg, "store.rados_window", 4, 1, 64, &window, err) < 0) {
        return NULL;
    }
    struct img_store_config sc = {
        .backend = nb_config_get(cfg, "store.backend", "file"),
        .dir = nb_config_get(cfg, "store.dir", "var/images"),
        .ceph_conf = nb_config_get(cfg, "store.ceph_conf", NULL),
        .ceph_user = nb_config_get(cfg, "store.ceph_user", NULL),
        .ceph_keyring = nb_config_get(cfg, "store.ceph_keyring", NULL),
        .pool = nb_config_get(cfg, "store.pool", NULL),
        .rados_window = (int)window,
    };
    return img_store_open(&sc, err);
}

void img_store_close(struct img_store *s)
{
    if (s) {
        s->ops->close(s);
    }
}

const char *img_store_backend(const struct img_store *s)
{
    return s->ops->name;
}

struct img_writer *img_store_write_begin(struct img_store *s, const char *key, struct nb_error *err)
{
    if (check_key(key, err) < 0) {
        return NULL;
    }
    struct img_writer *w = s->ops->write_begin(s, key, err);
    if (w) {
        w->store = s;
        w->size = 0;
    }
    return w;
}

int img_writer_write(struct img_writer *w, const void *buf, size_t len, struct nb_error *err)
{
    if (len == 0) {
        return 0;
    }
    return w->store->ops->write(w, buf, len, err);
}

uint64_t img_writer_size(const struct img_writer *w)
{
    return w->size;
}

int64_t img_writer_pread(struct img_writer *w, void *buf, size_t len, uint64_t off,
                         struct nb_error *err)
{
    if (off >= w->size || len == 0) {
        return 0;
    }
    if (len > w->size - off) {
        len = (size_t)(w->size - off);
    }
    return w->store->ops->writer_pread(w, buf, len, off, err);
}

int img_writer_commit(struct img_writer *w, struct nb_error *err)
{
    return w->store->ops->commit(w, err);
}

void img_writer_abort(struct img_writer *w)
{
    if (w) {
        w->store->ops->abort(w);
    }
}

int img_store_stat(struct img_store *s, const char *key, uint64_t *size, struct nb_error *err)
{
    if (check_key(key, err) < 0) {
        return -1;
    }
    return s->ops->stat(s, key, size, err);
}

int64_t img_store_pread(struct img_store *s, const char *key, void *buf, size_t len, uint64_t off,
                        struct nb_error *err)
{
    if (check_key(key, err) < 0) {
        return -1;
    }
    return s->ops->pread(s, key, buf, len, off, err);
}

int img_store_delete(struct img_store *s, const char *key, struct nb_error *err)
{
    if (check_key(key, err) < 0) {
        return -1;
    }
    return s->ops->del(s, key, err);
}

int img_store_list(struct img_store *s, const char *prefix,
                   void (*fn)(const char *key, uint64_t size, void *arg), void *arg,
                   struct nb_error *err)
{
    return s->ops->list(s, prefix ? prefix : "", fn, arg, err);
}

int img_store_gc(struct img_store *s, int min_age_s, struct nb_error *err)
{
    return s->ops->gc(s, min_age_s < 0 ? 0 : min_age_s, err);
}

bool img_store_local_path(struct img_store *s, const char *key, char *out, size_t out_len)
{
    return img_store_key_valid(key) && s->ops->local_path &&
           s->ops->local_path(s, key, out, out_len);
}

int64_t img_blob_reader_read(void *ctx, uint64_t pos, char *buf, size_t len)
{
    struct img_blob_reader *r = ctx;
    struct nb_error err = {0};
    int64_t n = img_store_pread(r->store, r->key, buf, len, r->first + pos, &err);
    if (n < 0) {
        nb_err("reading blob %s at %" PRIu64 " failed: %s", r->key, r->first + pos, err.msg);
    }
    return n;
}
