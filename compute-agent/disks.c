/* Per-instance disks and the child-process runner (see disks.h). */
#include "disks.h"
#include "imgfmt.h"
#include "virt.h"

#include "nubo/clock.h"
#include "nubo/buf.h"
#include "nubo/crypto.h"
#include "nubo/error.h"
#include "nubo/log.h"

#include <jansson.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define OUTPUT_MAX   (64 * 1024)
#define DETAIL_TAIL  2048
#define TOOL_TIMEOUT 60000L
#define GIB          (1024ULL * 1024 * 1024)

/* ---- child processes ------------------------------------------------------------------------ */

int agent_disks_run(const char *const *argv, long timeout_ms, char **output, struct nb_error *err)
{
    if (output) {
        *output = NULL;
    }
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        nb_error_errno(err, errno, "could not create a pipe for \"%s\"", argv[0]);
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    posix_spawnattr_t sa;
    posix_spawnattr_init(&sa);
    /* The child starts with default signal handling and an empty mask, whatever ours are. */
    sigset_t all;
    sigset_t none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&sa, &all);
    posix_spawnattr_setsigmask(&sa, &none);
    posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, &sa, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&sa);
    close(pfd[1]);
    if (rc != 0) {
        close(pfd[0]);
        nb_error_errno(err, rc, "could not run \"%s\"", argv[0]);
        return -1;
    }

    struct nb_buf out = NB_BUF_INIT;
    nb_buf_puts(&out, "");
    long deadline = nb_monotonic_ms() + (timeout_ms > 0 ? timeout_ms : TOOL_TIMEOUT);
    bool timed_out = false;
    for (;;) {
        long left = deadline - nb_monotonic_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        int n = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
        if (n < 0 && errno != EINTR) {
            break;
        }
        if (n <= 0) {
            continue;
        }
        char buf[4096];
        ssize_t r = read(pfd[0], buf, sizeof buf);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break; /* EOF: the child (and anything it started) closed its output */
        }
        if (out.len < OUTPUT_MAX) {
            size_t keep = (size_t)r;
            if (out.len + keep > OUTPUT_MAX) {
                keep = OUTPUT_MAX - out.len;
            }
            nb_buf_append(&out, buf, keep);
        }
    }
    if (timed_out) {
        kill(pid, SIGKILL);
    }
    close(pfd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }

    rc = -1;
    const char *tail = out.data + (out.len > DETAIL_TAIL ? out.len - DETAIL_TAIL : 0);
    if (timed_out) {
        nb_error_set(err, NB_ERR_TIMEOUT, "command \"%s\" did not finish within %ld ms (killed)",
                     argv[0], timeout_ms > 0 ? timeout_ms : TOOL_TIMEOUT);
        nb_error_detail(err, "%s", tail);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        rc = 0;
    } else if (WIFEXITED(status)) {
        nb_error_set(err, NB_ERR_INTERNAL, "command \"%s\" failed: exit status %d", argv[0],
                     WEXITSTATUS(status));
        nb_error_detail(err, "%s", tail);
    } else {
        nb_error_set(err, NB_ERR_INTERNAL, "command \"%s\" failed: killed by signal %d", argv[0],
                     WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        nb_error_detail(err, "%s", tail);
    }
    if (output) {
        *output = nb_buf_steal(&out);
    } else {
        nb_buf_free(&out);
    }
    return rc;
}

/* ---- paths ---------------------------------------------------------------------------------- */

static const char *tool(const char *configured, const char *dflt)
{
    return configured && *configured ? configured : dflt;
}

char *agent_disks_path(const struct agent_disks_config *cfg, const char *id, const char *name,
                       struct nb_error *err)
{
    if (!agent_virt_valid_id(id)) {
        nb_error_set(err, NB_ERR_INVALID, "\"%s\" is not an instance id", id ? id : "");
        return NULL;
    }
    char *p;
    if (asprintf(&p, "%s/instances/%s%s%s", cfg->state_dir, id, name ? "/" : "", name ? name : "") <
        0) {
        abort();
    }
    return p;
}

int agent_disks_make_dir(const char *dir, struct nb_error *err)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        nb_error_set(err, NB_ERR_INVALID, "path \"%.64s...\" is too long", dir);
        return -1;
    }
    for (char *p = path + 1;; p++) {
        bool last = *p == '\0';
        if (*p != '/' && !last) {
            continue;
        }
        *p = '\0';
        struct stat st;
        if (stat(path, &st) < 0) {
            if (errno != ENOENT || (mkdir(path, 0755) < 0 && errno != EEXIST)) {
                nb_error_errno(err, errno, "could not create directory \"%s\"", path);
                return -1;
            }
            chmod(path, 0755); /* past the umask */
        } else if (last) {
            if (chmod(path, 0755) < 0) {
                nb_error_errno(err, errno, "could not chmod \"%s\"", path);
                return -1;
            }
        } else if (!(st.st_mode & S_IXOTH)) {
            /* QEMU (user libvirt-qemu) must traverse it to reach the base images. */
            nb_warn("making \"%s\" traversable by others (o+x) for QEMU", path);
            if (chmod(path, (st.st_mode & 07777) | S_IXOTH) < 0) {
                nb_error_errno(err, errno, "could not chmod \"%s\"", path);
                return -1;
            }
        }
        if (last) {
            return 0;
        }
        *p = '/';
    }
}

int agent_disks_instance_dir(const struct agent_disks_config *cfg, const char *id, char **path_out,
                             struct nb_error *err)
{
    *path_out = NULL;
    if (!cfg->state_dir || !*cfg->state_dir) {
        nb_error_set(err, NB_ERR_INVALID, "no state directory configured");
        return -1;
    }
    char *dir = agent_disks_path(cfg, id, NULL, err);
    if (!dir) {
        return -1;
    }
    if (agent_disks_make_dir(dir, err) < 0) {
        free(dir);
        return -1;
    }
    *path_out = dir;
    return 0;
}

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* fsync()s 'tmp', renames it to 'final' and fsync()s 'dir'. */
static int commit(const char *dir, const char *tmp, const char *final, struct nb_error *err)
{
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fchmod(fd, 0644) < 0 || fsync(fd) < 0) {
        nb_error_errno(err, errno, "could not sync \"%s\"", tmp);
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    close(fd);
    if (rename(tmp, final) < 0) {
        nb_error_errno(err, errno, "could not rename \"%s\" into place", tmp);
        return -1;
    }
    fsync_dir(dir);
    return 0;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---- qcow2 disks ----------------------------------------------------------------------------- */

/* Reads the format and virtual size of 'base' with the image store's parser (imgfmt.h), in
 * process: a launch spawns one program fewer than with `qemu-img info`, and the checks are the
 * store's (no backing file, no external data file, tables inside the file). 'format' in: the
 * declared format or "" to detect; out: the format. */
static int base_info(const char *base, char format[16], uint64_t *vsize, struct nb_error *err)
{
    int fd = open(base, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        nb_error_errno(err, errno, "cannot open base image \"%s\"", base);
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    struct img_disk_info info;
    int rc =
        img_disk_probe(img_read_fd, &fd, (uint64_t)st.st_size, *format ? format : NULL, &info, err);
    close(fd);
    if (rc < 0) {
        if (err->code == NB_ERR_INVALID) {
            char msg[NB_ERROR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", err->msg);
            nb_error_set(err, NB_ERR_INVALID, "base image \"%s\" is refused: %s", base, msg);
        }
        return -1;
    }
    if (strcmp(info.format, "raw") != 0 && strcmp(info.format, "qcow2") != 0) {
        nb_error_set(err, NB_ERR_INVALID, "base image \"%s\" has format \"%s\", not raw or qcow2",
                     base, info.format);
        return -1;
    }
    snprintf(format, 16, "%s", info.format);
    *vsize = info.virtual_size;
    return 0;
}

/* Creates qcow2 disk 'name' in the instance directory (over 'base' when not NULL), unless it
 * exists; with 'replace' an existing one is replaced: the new disk is made under the temporary
 * name and renamed over it, so the name holds the old disk or the new one, whole, at any time. */
static int create_qcow2(const struct agent_disks_config *cfg, const char *id, const char *name,
                        const char *base, const char *base_format, uint64_t size_bytes,
                        bool replace, char **path_out, struct nb_error *err)
{
    *path_out = NULL;
    char *dir = NULL;
    if (agent_disks_instance_dir(cfg, id, &dir, err) < 0) {
        return -1;
    }
    char *final;
    char *tmp;
    if (asprintf(&final, "%s/%s", dir, name) < 0 || asprintf(&tmp, "%s/%s.tmp", dir, name) < 0) {
        abort();
    }
    int rc = -1;
    if (!replace && exists(final)) {
        rc = 0; /* complete (renamed into place), maybe with guest data: keep it */
        goto cleanup;
    }
    char fmt[16] = "";
    if (base) {
        uint64_t vsize = 0;
        snprintf(fmt, sizeof fmt, "%s", base_format ? base_format : "");
        if (base_info(base, fmt, &vsize, err) < 0) {
            goto cleanup;
        }
        if (vsize > size_bytes) {
            size_bytes = vsize;
        }
    }
    unlink(tmp);
    char size[32];
    snprintf(size, sizeof size, "%llu", (unsigned long long)size_bytes);
    const char *argv[12];
    int n = 0;
    argv[n++] = tool(cfg->qemu_img, "qemu-img");
    argv[n++] = "create";
    argv[n++] = "-q";
    argv[n++] = "-f";
    argv[n++] = "qcow2";
    if (base) {
        argv[n++] = "-F";
        argv[n++] = fmt;
        argv[n++] = "-b";
        argv[n++] = base;
    }
    argv[n++] = tmp;
    argv[n++] = size;
    argv[n] = NULL;
    if (agent_disks_run(argv, cfg->tool_timeout_ms, NULL, err) < 0 ||
        commit(dir, tmp, final, err) < 0) {
        unlink(tmp);
        goto cleanup;
    }
    rc = 0;
cleanup:
    if (rc == 0) {
        *path_out = final;
        final = NULL;
    }
    free(final);
    free(tmp);
    free(dir);
    return rc;
}

int agent_disks_create_root(const struct agent_disks_config *cfg, const char *id, const char *base,
                            const char *base_format, unsigned disk_gib, char **path_out,
                            struct nb_error *err)
{
    *path_out = NULL;
    if (!base || base[0] != '/') {
        nb_error_set(err, NB_ERR_INVALID, "base image path \"%s\" is not absolute",
                     base ? base : "");
        return -1;
    }
    if (base_format && strcmp(base_format, "raw") != 0 && strcmp(base_format, "qcow2") != 0) {
        nb_error_set(err, NB_ERR_INVALID, "base image format \"%s\" is not raw or qcow2",
                     base_format);
        return -1;
    }
    return create_qcow2(cfg, id, "root.qcow2", base, base_format, (uint64_t)disk_gib * GIB, false,
                        path_out, err);
}

int agent_disks_create_ephemeral(const struct agent_disks_config *cfg, const char *id, unsigned gib,
                                 char **path_out, struct nb_error *err)
{
    *path_out = NULL;
    if (gib < 1 || gib > 16384) {
        nb_error_set(err, NB_ERR_INVALID, "ephemeral disk size %u GiB is out of range", gib);
        return -1;
    }
    return create_qcow2(cfg, id, "ephemeral.qcow2", NULL, NULL, (uint64_t)gib * GIB, false,
                        path_out, err);
}

int agent_disks_reset(const struct agent_disks_config *cfg, const char *id, const char *base,
                      const char *base_format, unsigned disk_gib, unsigned ephemeral_gib,
                      struct nb_error *err)
{
    if (!base || base[0] != '/') {
        nb_error_set(err, NB_ERR_INVALID, "base image path \"%s\" is not absolute",
                     base ? base : "");
        return -1;
    }
    if (base_format && strcmp(base_format, "raw") != 0 && strcmp(base_format, "qcow2") != 0) {
        nb_error_set(err, NB_ERR_INVALID, "base image format \"%s\" is not raw or qcow2",
                     base_format);
        return -1;
    }
    if (ephemeral_gib > 16384) {
        nb_error_set(err, NB_ERR_INVALID, "ephemeral disk size %u GiB is out of range",
                     ephemeral_gib);
        return -1;
    }
    char *root = NULL, *eph = NULL;
    int rc = create_qcow2(cfg, id, "root.qcow2", base, base_format, (uint64_t)disk_gib * GIB, true,
                          &root, err);
    if (rc == 0 && ephemeral_gib > 0) {
        rc = create_qcow2(cfg, id, "ephemeral.qcow2", NULL, NULL, (uint64_t)ephemeral_gib * GIB,
                          true, &eph, err);
    }
    free(root);
    free(eph);
    return rc;
}

/* ---- config drive ----------------------------------------------------------------------------- */

/* Appends 's' as a YAML double-quoted scalar. */
static void yaml_str(struct nb_buf *b, const char *s)
{
    nb_buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            nb_buf_printf(b, "\\%c", *p);
        } else if (*p < 0x20 || *p == 0x7f) {
            nb_buf_printf(b, "\\x%02x", *p);
        } else {
            nb_buf_append(b, p, 1);
        }
    }
    nb_buf_puts(b, "\"");
}

char *agent_disks_meta_data(const char *id, const struct agent_disks_cidata *cd)
{
    struct nb_buf b = NB_BUF_INIT;
    nb_buf_puts(&b, "instance-id: ");
    yaml_str(&b, id);
    nb_buf_puts(&b, "\nlocal-hostname: ");
    yaml_str(&b, cd && cd->hostname && *cd->hostname ? cd->hostname : id);
    nb_buf_puts(&b, "\n");
    if (cd && cd->n_public_keys > 0) {
        nb_buf_puts(&b, "public-keys:\n");
        for (size_t i = 0; i < cd->n_public_keys; i++) {
            nb_buf_puts(&b, "  - ");
            yaml_str(&b, cd->public_keys[i]);
            nb_buf_puts(&b, "\n");
        }
    }
    return nb_buf_steal(&b);
}

static int write_file(const char *path, const void *data, size_t len, struct nb_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        nb_error_errno(err, errno, "could not create \"%s\"", path);
        return -1;
    }
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            nb_error_errno(err, errno, "could not write \"%s\"", path);
            close(fd);
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    if (close(fd) < 0) {
        nb_error_errno(err, errno, "could not write \"%s\"", path);
        return -1;
    }
    return 0;
}

/* Removes 'name' under directory fd 'dfd' and everything below it. */
static int rm_rf_at(int dfd, const char *name)
{
    if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT) {
        return 0;
    }
    if (errno != EISDIR && errno != EPERM) {
        return -1;
    }
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
            rm_rf_at(dirfd(d), de->d_name) < 0) {
            rc = -1;
        }
    }
    closedir(d);
    if (rc == 0 && unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
        rc = -1;
    }
    return rc;
}

int agent_disks_create_config_drive(const struct agent_disks_config *cfg, const char *id,
                                    const struct agent_disks_cidata *cd, char **path_out,
                                    struct nb_error *err)
{
    *path_out = NULL;
    void *user = NULL;
    size_t user_len = 0;
    if (cd && cd->user_data_b64 && *cd->user_data_b64) {
        user = nb_base64_decode(cd->user_data_b64, &user_len, err);
        if (!user) {
            return -1;
        }
    }
    char *dir = NULL;
    if (agent_disks_instance_dir(cfg, id, &dir, err) < 0) {
        free(user);
        return -1;
    }
    char *staging;
    char *meta_path;
    char *user_path;
    char *tmp;
    char *final;
    if (asprintf(&staging, "%s/cidata.tmp", dir) < 0 ||
        asprintf(&meta_path, "%s/meta-data", staging) < 0 ||
        asprintf(&user_path, "%s/user-data", staging) < 0 ||
        asprintf(&tmp, "%s/config.iso.tmp", dir) < 0 ||
        asprintf(&final, "%s/config.iso", dir) < 0) {
        abort();
    }
    char *meta = agent_disks_meta_data(id, cd);
    int rc = -1;
    rm_rf_at(AT_FDCWD, staging);
    unlink(tmp);
    if (agent_disks_make_dir(staging, err) < 0 ||
        write_file(meta_path, meta, strlen(meta), err) < 0 ||
        write_file(user_path, user ? user : "", user_len, err) < 0) {
        goto cleanup;
    }
    const char *argv[] = {tool(cfg->genisoimage, "genisoimage"),
                          "-quiet",
                          "-input-charset",
                          "utf-8",
                          "-output",
                          tmp,
                          "-volid",
                          "cidata",
                          "-joliet",
                          "-rock",
                          user_path,
                          meta_path,
                          NULL};
    if (agent_disks_run(argv, cfg->tool_timeout_ms, NULL, err) < 0 ||
        commit(dir, tmp, final, err) < 0) {
        unlink(tmp);
        goto cleanup;
    }
    *path_out = final;
    final = NULL;
    rc = 0;
cleanup:
    rm_rf_at(AT_FDCWD, staging);
    free(meta);
    free(user);
    free(staging);
    free(meta_path);
    free(user_path);
    free(tmp);
    free(final);
    free(dir);
    return rc;
}

int agent_disks_remove(const struct agent_disks_config *cfg, const char *id, struct nb_error *err)
{
    char *dir = agent_disks_path(cfg, id, NULL, err);
    if (!dir) {
        return -1;
    }
    int rc = 0;
    if (rm_rf_at(AT_FDCWD, dir) < 0) {
        nb_error_errno(err, errno, "could not remove instance directory \"%s\"", dir);
        rc = -1;
    }
    free(dir);
    return rc;
}
