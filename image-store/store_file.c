/* The local-directory backend of the image store (store.h).
 *
 *   DIR/objects/KEY     committed blobs (KEY's "/" are subdirectories)
 *   DIR/tmp/WRITEID     blobs being written: fsync()ed, then renamed into objects/ at commit,
 *                       and the directory fsync()ed, so a crash leaves either the old blob or
 *                       the new one, never a part of one under the key. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nubo/error.h"
#include "store_priv.h"

#define WBUF_SIZE   (1u << 20)
#define WBUF_DIRECT (128u << 10)

struct file_store {
    struct img_store base;
    char dir[PATH_MAX - 300];
};

struct file_writer {
    struct img_writer base;
    int fd;
    char tmp[PATH_MAX];
    char key[IMG_KEY_MAX + 1];
    unsigned char *buf; /* WBUF_SIZE bytes not yet written to fd */
    size_t used;
};

static struct file_store *fs_of(struct img_store *s)
{
    return (struct file_store *)s;
}

static int mkdir_p(char *path, struct nb_error *err)
{
    for (char *p = path + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            int rc = mkdir(path, 0750);
            *p = '/';
            if (rc < 0 && errno != EEXIST) {
                nb_error_errno(err, errno, "cannot make directory %s", path);
                return -1;
            }
        }
    }
    if (mkdir(path, 0750) < 0 && errno != EEXIST) {
        nb_error_errno(err, errno, "cannot make directory %s", path);
        return -1;
    }
    return 0;
}

static void object_path(struct file_store *fs, const char *key, char *out, size_t len)
{
    snprintf(out, len, "%s/objects/%s", fs->dir, key);
}

static void fw_free(struct file_writer *w)
{
    if (w->fd >= 0) {
        close(w->fd);
    }
    free(w->buf);
    free(w);
}

static int fw_flush(struct file_writer *w, struct nb_error *err)
{
    size_t off = 0;
    while (off < w->used) {
        ssize_t n = write(w->fd, w->buf + off, w->used - off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            nb_error_errno(err, errno, "cannot write %s", w->tmp);
            return -1;
        }
        off += (size_t)n;
    }
    w->used = 0;
    return 0;
}

static struct img_writer *file_write_begin(struct img_store *s, const char *key,
                                           struct nb_error *err)
{
    struct file_store *fs = fs_of(s);
    struct file_writer *w = calloc(1, sizeof *w);
    unsigned char rnd[8];
    if (!w || !(w->buf = malloc(WBUF_SIZE))) {
        free(w);
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        nb_error_errno(err, errno, "getrandom failed");
        w->fd = -1;
        fw_free(w);
        return NULL;
    }
    snprintf(w->tmp, sizeof w->tmp, "%s/tmp/%02x%02x%02x%02x%02x%02x%02x%02x", fs->dir, rnd[0],
             rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    snprintf(w->key, sizeof w->key, "%s", key);
    w->fd = open(w->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (w->fd < 0) {
        nb_error_errno(err, errno, "cannot create %s", w->tmp);
        fw_free(w);
        return NULL;
    }
    return &w->base;
}

static int file_write(struct img_writer *iw, const void *data, size_t len, struct nb_error *err)
{
    struct file_writer *w = (struct file_writer *)iw;
    const unsigned char *p = data;
    /* Large pieces (an HTTP server's read buffer, a copy's block) go straight to the file,
     * without a copy; small ones are gathered first, to save system calls. */
    if (w->used == 0 && len >= WBUF_DIRECT) {
        size_t off = 0;
        while (off < len) {
            ssize_t n = write(w->fd, p + off, len - off);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                nb_error_errno(err, errno, "cannot write %s", w->tmp);
                return -1;
            }
            off += (size_t)n;
        }
        w->base.size += len;
        return 0;
    }
    while (len > 0) {
        size_t take = WBUF_SIZE - w->used < len ? WBUF_SIZE - w->used : len;
        memcpy(w->buf + w->used, p, take);
        w->used += take;
        p += take;
        len -= take;
        w->base.size += take;
        if (w->used == WBUF_SIZE && fw_flush(w, err) < 0) {
            return -1;
        }
    }
    return 0;
}

static int64_t file_writer_pread(struct img_writer *iw, void *buf, size_t len, uint64_t off,
                                 struct nb_error *err)
{
    struct file_writer *w = (struct file_writer *)iw;
    if (w->used && fw_flush(w, err) < 0) {
        return -1;
    }
    ssize_t n = pread(w->fd, buf, len, (off_t)off);
    if (n < 0) {
        nb_error_errno(err, errno, "cannot read back %s", w->tmp);
        return -1;
    }
    return n;
}

static int fsync_dir(const char *path, struct nb_error *err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0) {
        nb_error_errno(err, errno, "cannot sync directory %s", path);
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    close(fd);
    return 0;
}

static int file_commit(struct img_writer *iw, struct nb_error *err)
{
    struct file_writer *w = (struct file_writer *)iw;
    struct file_store *fs = fs_of(iw->store);
    char dst[PATH_MAX];
    object_path(fs, w->key, dst, sizeof dst);
    char *slash = strrchr(dst, '/');
    int rc = -1;
    if (fw_flush(w, err) < 0) {
        goto out;
    }
    if (fsync(w->fd) < 0) {
        nb_error_errno(err, errno, "cannot sync %s", w->tmp);
        goto out;
    }
    *slash = '\0';
    if (mkdir_p(dst, err) < 0) {
        goto out;
    }
    *slash = '/';
    if (rename(w->tmp, dst) < 0) {
        nb_error_errno(err, errno, "cannot move %s to %s", w->tmp, dst);
        goto out;
    }
    *slash = '\0';
    rc = fsync_dir(dst, err);
    *slash = '/';
out:
    if (rc < 0) {
        unlink(w->tmp);
    }
    fw_free(w);
    return rc;
}

static void file_abort(struct img_writer *iw)
{
    struct file_writer *w = (struct file_writer *)iw;
    unlink(w->tmp);
    fw_free(w);
}

static int file_stat(struct img_store *s, const char *key, uint64_t *size, struct nb_error *err)
{
    char path[PATH_MAX];
    struct stat st;
    object_path(fs_of(s), key, path, sizeof path);
    if (stat(path, &st) < 0) {
        if (errno != ENOENT && errno != ENOTDIR) {
            nb_error_errno(err, errno, "cannot stat %s", path);
            return -1;
        }
        st.st_mode = 0;
    }
    if (!S_ISREG(st.st_mode)) {
        nb_error_set(err, NB_ERR_NOT_FOUND, "no blob \"%s\" in the image store", key);
        return -1;
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

static int64_t file_pread(struct img_store *s, const char *key, void *buf, size_t len, uint64_t off,
                          struct nb_error *err)
{
    char path[PATH_MAX];
    object_path(fs_of(s), key, path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            nb_error_set(err, NB_ERR_NOT_FOUND, "no blob \"%s\" in the image store", key);
        } else {
            nb_error_errno(err, errno, "cannot open %s", path);
        }
        return -1;
    }
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            nb_error_errno(err, errno, "cannot read %s", path);
            close(fd);
            return -1;
        }
        if (n == 0) {
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    return (int64_t)got;
}

static int file_del(struct img_store *s, const char *key, struct nb_error *err)
{
    char path[PATH_MAX];
    object_path(fs_of(s), key, path, sizeof path);
    if (unlink(path) < 0 && errno != ENOENT && errno != ENOTDIR) {
        nb_error_errno(err, errno, "cannot remove %s", path);
        return -1;
    }
    return 0;
}

/* nftw() has no argument pointer: the walk's state lives in a thread-local. */
struct list_walk {
    size_t skip; /* length of "DIR/objects/" */
    const char *prefix;
    void (*fn)(const char *key, uint64_t size, void *arg);
    void *arg;
};
static _Thread_local struct list_walk *walk_state;

static int list_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    struct list_walk *lw = walk_state;
    if (type != FTW_F || strlen(path) <= lw->skip) {
        return 0;
    }
    const char *key = path + lw->skip;
    if (!strncmp(key, lw->prefix, strlen(lw->prefix)) && img_store_key_valid(key)) {
        lw->fn(key, (uint64_t)st->st_size, lw->arg);
    }
    return 0;
}

static int file_list(struct img_store *s, const char *prefix,
                     void (*fn)(const char *key, uint64_t size, void *arg), void *arg,
                     struct nb_error *err)
{
    char root[PATH_MAX];
    snprintf(root, sizeof root, "%s/objects", fs_of(s)->dir);
    struct list_walk lw = {strlen(root) + 1, prefix, fn, arg};
    walk_state = &lw;
    int rc = nftw(root, list_one, 16, FTW_PHYS);
    walk_state = NULL;
    if (rc < 0) {
        nb_error_errno(err, errno, "cannot list %s", root);
        return -1;
    }
    return 0;
}

static int file_gc(struct img_store *s, int min_age_s, struct nb_error *err)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/tmp", fs_of(s)->dir);
    DIR *d = opendir(dir);
    if (!d) {
        nb_error_errno(err, errno, "cannot open %s", dir);
        return -1;
    }
    int removed = 0;
    time_t now = time(NULL);
    struct dirent *de;
    while ((de = readdir(d))) {
        struct stat st;
        if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, 0) < 0 ||
            !S_ISREG(st.st_mode) || now - st.st_mtime < min_age_s) {
            continue;
        }
        if (unlinkat(dirfd(d), de->d_name, 0) == 0) {
            removed++;
        }
    }
    closedir(d);
    return removed;
}

static bool file_local_path(struct img_store *s, const char *key, char *out, size_t out_len)
{
    int n = snprintf(out, out_len, "%s/objects/%s", fs_of(s)->dir, key);
    return n > 0 && (size_t)n < out_len;
}

static void file_close(struct img_store *s)
{
    free(s);
}

static const struct img_store_ops file_ops = {
    .name = "file",
    .close = file_close,
    .write_begin = file_write_begin,
    .write = file_write,
    .writer_pread = file_writer_pread,
    .commit = file_commit,
    .abort = file_abort,
    .stat = file_stat,
    .pread = file_pread,
    .del = file_del,
    .list = file_list,
    .gc = file_gc,
    .local_path = file_local_path,
};

struct img_store *img_store_file_open(const struct img_store_config *cfg, struct nb_error *err)
{
    struct file_store *fs = calloc(1, sizeof *fs);
    if (!fs) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    fs->base.ops = &file_ops;
    if (strlen(cfg->dir) >= sizeof fs->dir) {
        nb_error_set(err, NB_ERR_INVALID, "image store directory path too long");
        free(fs);
        return NULL;
    }
    snprintf(fs->dir, sizeof fs->dir, "%s", cfg->dir);
    char path[PATH_MAX];
    const char *subs[] = {"objects", "tmp"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", fs->dir, subs[i]);
        if (mkdir_p(path, err) < 0) {
            free(fs);
            return NULL;
        }
    }
    return &fs->base;
}
