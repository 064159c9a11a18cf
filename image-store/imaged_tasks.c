/* nubo-imaged's task workers: import, copy and export of images (imaged.h).
 *
 * A worker claims the oldest pending task (or one whose lease ran out: its worker died) and
 * renews the lease while it works. Bad input (a corrupt VHD, a manifest digest that does not
 * match) fails the task and the image, with the reason; anything else (the store or the database
 * unreachable) leaves the task to be tried again after a pause, up to imaged.max_attempts. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "imaged.h"
#include "imgfmt.h"
#include "nubo/crypto.h"
#include "nubo/error.h"
#include "nubo/log.h"
#include "nubo/pg.h"
#include "store.h"

#define COPY_BUF (4u << 20)

struct task {
    char id[64];
    char kind[16];
    char tenant_id[16];
    char image_id[32];
    char source_key[IMG_KEY_MAX + 1];
    char source_format[16];
    char source_url[1024];
    bool trusted; /* source_url is the control plane's own (an agent's snapshot) */
    int attempts;
    long last_renew;
};

/* --- reading blobs and files through img_read_fn --- */

struct blob_src {
    struct img_store *store;
    const char *key;
    uint64_t base;
};

static int64_t read_blob(void *ctx, void *buf, size_t len, uint64_t off, struct nb_error *err)
{
    struct blob_src *b = ctx;
    return img_store_pread(b->store, b->key, buf, len, b->base + off, err);
}

/* --- the task's row --- */

/* One statement on a pooled connection, taken and given back around it. */
static PGresult *query(struct imaged *d, const char *sql, int n, const char *const *params,
                       struct nb_error *err)
{
    struct nb_pg_conn *conn = nb_pg_acquire(d->pool, 10000, err);
    if (!conn) {
        return NULL;
    }
    PGresult *res = nb_pg_exec(conn, sql, n, params, err);
    nb_pg_release(conn);
    return res;
}

static long now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

static void renew_lease(struct imaged *d, struct task *t, int progress)
{
    if (now_s() - t->last_renew < d->cfg.lease_s / 3) {
        return;
    }
    struct nb_error err = {0};
    char lease[16], prog[16];
    snprintf(lease, sizeof lease, "%d", d->cfg.lease_s);
    snprintf(prog, sizeof prog, "%d", progress);
    const char *p[] = {t->id, lease, prog};
    PGresult *res = query(d,
                          "UPDATE image_tasks SET lease_until = now() + "
                          "make_interval(secs => $2::int), progress = "
                          "GREATEST(progress, $3::int), updated_at = now() "
                          "WHERE id = $1 AND state = 'active'",
                          3, p, &err);
    if (!res) {
        nb_warn("could not renew the lease of task %s: %s", t->id, err.msg);
    }
    PQclear(res);
    t->last_renew = now_s();
}

static int claim(struct imaged *d, struct task *t, struct nb_error *err)
{
    char lease[16];
    snprintf(lease, sizeof lease, "%d", d->cfg.lease_s);
    const char *p[] = {lease};
    PGresult *res =
        query(d,
              "WITH c AS (SELECT id FROM image_tasks WHERE state = 'pending' "
              "OR (state = 'active' AND lease_until < now()) ORDER BY created_at LIMIT 1 "
              "FOR UPDATE SKIP LOCKED) "
              "UPDATE image_tasks k SET state = 'active', attempts = k.attempts + 1, "
              "lease_until = now() + make_interval(secs => $1::int), updated_at = now() FROM c "
              "WHERE k.id = c.id RETURNING k.id, k.kind, k.tenant_id, k.image_id, "
              "COALESCE(k.source_key, ''), COALESCE(k.source_format, ''), k.attempts, "
              "COALESCE(k.source_url, ''), k.trusted",
              1, p, err);
    if (!res) {
        return -1;
    }
    int rc = PQntuples(res);
    if (rc == 1) {
        memset(t, 0, sizeof *t);
        snprintf(t->id, sizeof t->id, "%s", PQgetvalue(res, 0, 0));
        snprintf(t->kind, sizeof t->kind, "%s", PQgetvalue(res, 0, 1));
        snprintf(t->tenant_id, sizeof t->tenant_id, "%s", PQgetvalue(res, 0, 2));
        snprintf(t->image_id, sizeof t->image_id, "%s", PQgetvalue(res, 0, 3));
        snprintf(t->source_key, sizeof t->source_key, "%s", PQgetvalue(res, 0, 4));
        snprintf(t->source_format, sizeof t->source_format, "%s", PQgetvalue(res, 0, 5));
        t->attempts = atoi(PQgetvalue(res, 0, 6));
        snprintf(t->source_url, sizeof t->source_url, "%s", PQgetvalue(res, 0, 7));
        t->trusted = !strcmp(PQgetvalue(res, 0, 8), "t");
        t->last_renew = now_s();
    }
    PQclear(res);
    return rc;
}

/* The task (and for import and copy its image) failed for good, with 'reason'. */
static void fail_task(struct imaged *d, const struct task *t, const char *reason)
{
    struct nb_error err = {0};
    const char *p[] = {t->id, t->image_id, reason, t->kind};
    PGresult *res =
        query(d,
              "WITH k AS (UPDATE image_tasks SET state = 'failed', status_message = $3, "
              "lease_until = NULL, updated_at = now() WHERE id = $1 RETURNING 1) "
              "UPDATE images SET state = 'failed', state_reason = $3, stored_bytes = 0, "
              "updated_at = now() "
              "WHERE id = $2 AND state = 'pending' AND $4 <> 'export'",
              4, p, &err);
    if (!res) {
        nb_err("task %s failed (%s) and could not be marked: %s", t->id, reason, err.msg);
    }
    PQclear(res);
    atomic_fetch_add(&d->tasks_failed, 1);
    nb_warn("task %s (%s of %s) failed: %s", t->id, t->kind, t->image_id, reason);
}

/* A transient failure: the task is tried again after a pause, unless it ran out of attempts. */
static void retry_later(struct imaged *d, const struct task *t, const char *why)
{
    if (t->attempts >= d->cfg.max_attempts) {
        char reason[NB_ERROR_MSG_MAX + 64];
        snprintf(reason, sizeof reason, "gave up after %d attempts: %s", t->attempts, why);
        fail_task(d, t, reason);
        return;
    }
    struct nb_error err = {0};
    const char *p[] = {t->id, why};
    PGresult *res = query(d,
                          "UPDATE image_tasks SET lease_until = now() + "
                          "interval '5 seconds', status_message = $2, "
                          "updated_at = now() WHERE id = $1",
                          2, p, &err);
    PQclear(res);
    nb_warn("task %s will be tried again: %s", t->id, why);
}

/* --- the bounded qemu-img subprocess --- */

/* Runs qemu-img with 'argv' (argv[0] "qemu-img"), its output files limited to 'max_file'
 * bytes, killed after convert_timeout_s or when the daemon stops; renews the task's lease
 * meanwhile. stderr goes to 'log_path'. Returns 0, or -1 with 'err' (NB_ERR_INVALID when
 * qemu-img refused the input, with the end of its message). */
static int run_qemu_img(struct imaged *d, struct task *t, char *const argv[], uint64_t max_file,
                        const char *log_path, struct nb_error *err)
{
    pid_t pid = fork();
    if (pid < 0) {
        nb_error_errno(err, errno, "cannot fork qemu-img");
        return -1;
    }
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
        }
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
        }
        struct rlimit fsz = {(rlim_t)max_file, (rlim_t)max_file};
        struct rlimit cpu = {(rlim_t)d->cfg.convert_timeout_s, (rlim_t)d->cfg.convert_timeout_s};
        setrlimit(RLIMIT_FSIZE, &fsz);
        setrlimit(RLIMIT_CPU, &cpu);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execvp(argv[0], argv);
        _exit(127);
    }
    long deadline = now_s() + d->cfg.convert_timeout_s;
    int status = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            break;
        }
        if (w < 0 && errno != EINTR) {
            nb_error_errno(err, errno, "waiting for qemu-img failed");
            return -1;
        }
        if (now_s() > deadline || atomic_load(&d->stopping)) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            nb_error_set(
                err, atomic_load(&d->stopping) ? NB_ERR_UNAVAILABLE : NB_ERR_TIMEOUT, "qemu-img %s",
                atomic_load(&d->stopping) ? "was stopped with the daemon" : "ran out of time");
            return -1;
        }
        renew_lease(d, t, 50);
        usleep(100 * 1000);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        return 0;
    }
    char msg[300] = "";
    int fd = open(log_path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, msg, sizeof msg - 1);
        msg[n > 0 ? n : 0] = '\0';
        close(fd);
        for (char *c = msg; *c; c++) {
            *c = *c == '\n' ? ' ' : *c;
        }
    }
    if (WIFSIGNALED(status) && (WTERMSIG(status) == SIGXFSZ || WTERMSIG(status) == SIGXCPU)) {
        nb_error_set(err, NB_ERR_INVALID, "qemu-img went over its %s limit",
                     WTERMSIG(status) == SIGXFSZ ? "output size" : "CPU time");
    } else {
        nb_error_set(err, NB_ERR_INVALID, "qemu-img failed: %s", msg[0] ? msg : "no message");
    }
    return -1;
}

/* Copies 'size' bytes from 'rd' at 'off' into the file 'path'. */
static int spool(img_read_fn rd, void *ctx, uint64_t off, uint64_t size, const char *path,
                 struct nb_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    char *buf = malloc(COPY_BUF);
    int rc = -1;
    if (fd < 0 || !buf) {
        nb_error_errno(err, errno, "cannot create %s", path);
        goto out;
    }
    for (uint64_t done = 0; done < size;) {
        size_t want = size - done < COPY_BUF ? (size_t)(size - done) : COPY_BUF;
        int64_t n = rd(ctx, buf, want, off + done, err);
        if (n <= 0) {
            if (n == 0) {
                nb_error_set(err, NB_ERR_IO, "the source ended early");
            }
            goto out;
        }
        if (write(fd, buf, (size_t)n) != n) {
            nb_error_errno(err, errno, "cannot write %s", path);
            goto out;
        }
        done += (uint64_t)n;
    }
    rc = 0;
out:
    free(buf);
    if (fd >= 0) {
        close(fd);
    }
    return rc;
}

/* Streams 'size' bytes from 'rd' into a new blob 'key', with their SHA-256 into 'sha'. */
static int store_stream(struct imaged *d, struct task *t, img_read_fn rd, void *ctx, uint64_t size,
                        const char *key, char sha[65], struct nb_error *err)
{
    struct img_writer *w = img_store_write_begin(d->store, key, err);
    char *buf = malloc(COPY_BUF);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = -1;
    if (!w || !buf || !md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        if (w) {
            nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        }
        goto out;
    }
    for (uint64_t done = 0; done < size;) {
        size_t want = size - done < COPY_BUF ? (size_t)(size - done) : COPY_BUF;
        int64_t n = rd(ctx, buf, want, done, err);
        if (n <= 0) {
            if (n == 0) {
                nb_error_set(err, NB_ERR_IO, "the source ended early");
            }
            goto out;
        }
        if (EVP_DigestUpdate(md, buf, (size_t)n) != 1 ||
            img_writer_write(w, buf, (size_t)n, err) < 0) {
            goto out;
        }
        done += (uint64_t)n;
        renew_lease(d, t, 60 + (int)(done * 39 / size));
    }
    unsigned char dg[32];
    unsigned int dl;
    if (EVP_DigestFinal_ex(md, dg, &dl) != 1) {
        nb_error_set(err, NB_ERR_INTERNAL, "SHA-256 failed");
        goto out;
    }
    nb_hex_encode(dg, 32, sha);
    struct img_writer *cw = w;
    w = NULL;
    rc = img_writer_commit(cw, err);
out:
    img_writer_abort(w);
    free(buf);
    EVP_MD_CTX_free(md);
    return rc;
}

static void new_blob_key(const char *image_id, char *key)
{
    unsigned char r[6] = {0};
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        uint64_t x = (uint64_t)time(NULL) ^ (uint64_t)getpid();
        memcpy(r, &x, sizeof r);
    }
    snprintf(key, IMG_KEY_MAX + 1, "images/%s.%02x%02x%02x%02x%02x%02x", image_id, r[0], r[1], r[2],
             r[3], r[4], r[5]);
}

/* The image is ready: its bytes are blob 'key'. Marks it available and the task completed in
 * one transaction. Returns 1, 0 when the image is no longer pending (deregistered meanwhile),
 * -1 with 'err'. */
static int finish_image(struct imaged *d, const struct task *t, const char *key, uint64_t size,
                        const char *sha, uint64_t vsize, const char *props, struct nb_error *err)
{
    char location[1024], size_s[24], vsize_s[24];
    if (img_blob_url(d->public_url, d->url_key, key, location, sizeof location) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "blob URL too long");
        return -1;
    }
    snprintf(size_s, sizeof size_s, "%" PRIu64, size);
    snprintf(vsize_s, sizeof vsize_s, "%" PRIu64, vsize);
    const char *p[] = {t->image_id, key, size_s, sha, vsize_s, location, props, t->id};
    PGresult *res = query(
        d,
        "WITH m AS (UPDATE images SET state = 'available', store_key = $2, "
        "stored_bytes = $3::bigint, size_bytes = $3::bigint, sha256 = $4, disk_format = "
        "'qcow2', virtual_size = $5::bigint, location = $6, properties = $7::jsonb, "
        "suggested_type = (SELECT t.name FROM instance_types t WHERE t.enabled "
        "AND t.vcpus >= COALESCE(($7::jsonb->>'vcpus')::int, 1) AND t.memory_mib >= "
        "COALESCE(($7::jsonb->>'memory_mib')::bigint, 0) ORDER BY t.vcpus, t.memory_mib, "
        "t.name LIMIT 1), updated_at = now() WHERE id = $1 AND state = 'pending' RETURNING 1) "
        "UPDATE image_tasks SET state = 'completed', progress = 100, status_message = 'done', "
        "lease_until = NULL, updated_at = now() WHERE id = $8 AND EXISTS (SELECT 1 FROM m)",
        8, p, err);
    if (!res) {
        return -1;
    }
    int rc = strtol(PQcmdTuples(res), NULL, 10) == 1 ? 1 : 0;
    PQclear(res);
    return rc;
}

/* qemu-img's name for our format. */
static const char *qemu_format(const char *fmt)
{
    return !strcmp(fmt, "vhd") ? "vpc" : fmt;
}

/* --- import --- */

struct fetch {
    struct imaged *d;
    struct task *t;
    struct img_writer *w;
    uint64_t limit;
    struct nb_error err;
    bool failed;
};

static size_t fetch_write(char *data, size_t size, size_t nmemb, void *arg)
{
    struct fetch *f = arg;
    size_t len = size * nmemb;
    if (img_writer_size(f->w) + len > f->limit) {
        nb_error_set(&f->err, NB_ERR_INVALID,
                     "the file at the URL is over the limit of %" PRIu64 " bytes", f->limit);
        f->failed = true;
        return 0;
    }
    if (img_writer_write(f->w, data, len, &f->err) < 0) {
        f->failed = true;
        return 0;
    }
    renew_lease(f->d, f->t, 10);
    return len;
}

/* ImportImage: the file at the task's URL becomes its upload blob (then imported as any
 * upload). Only from the prefixes the operator allows; no redirects (they could leave them). */
static int fetch_source(struct imaged *d, struct task *t, struct nb_error *err)
{
    if (!t->trusted && !img_import_url_allowed(d->cfg.import_url_prefixes, t->source_url)) {
        nb_error_set(err, NB_ERR_INVALID, "imports from %.200s are not allowed on this cloud",
                     t->source_url);
        return -1;
    }
    char key[IMG_KEY_MAX + 1];
    unsigned char r[6] = {0};
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        nb_error_set(err, NB_ERR_INTERNAL, "getrandom failed");
        return -1;
    }
    snprintf(key, sizeof key, "uploads/%s.%02x%02x%02x%02x%02x%02x", t->image_id, r[0], r[1], r[2],
             r[3], r[4], r[5]);
    struct fetch f = {.d = d, .t = t, .limit = d->cfg.max_fetch_bytes};
    f.w = img_store_write_begin(d->store, key, err);
    CURL *h = f.w ? curl_easy_init() : NULL;
    if (!h) {
        if (f.w) {
            nb_error_set(err, NB_ERR_INTERNAL, "curl_easy_init failed");
        }
        img_writer_abort(f.w);
        return -1;
    }
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, t->source_url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fetch_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &f);
    CURLcode cc = curl_easy_perform(h);
    long http = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
    curl_easy_cleanup(h);
    if (f.failed) {
        *err = f.err;
        img_writer_abort(f.w);
        return -1;
    }
    if (cc != CURLE_OK) {
        /* The source said no (4xx): bad input. A network failure: tried again later. */
        nb_error_set(err, http >= 400 && http < 500 ? NB_ERR_INVALID : NB_ERR_UNAVAILABLE,
                     "fetching %.200s failed: %s", t->source_url,
                     curl_err[0] ? curl_err : curl_easy_strerror(cc));
        img_writer_abort(f.w);
        return -1;
    }
    uint64_t size = img_writer_size(f.w);
    if (img_writer_commit(f.w, err) < 0) {
        return -1;
    }
    struct nb_error serr = {0};
    char size_s[24];
    snprintf(size_s, sizeof size_s, "%" PRIu64, size);
    const char *p[] = {t->id, key, t->image_id, size_s};
    PGresult *res = query(d,
                          "WITH k AS (UPDATE image_tasks SET source_key = $2, "
                          "progress = 20, updated_at = now() WHERE id = $1 "
                          "RETURNING 1) UPDATE images SET stored_bytes = $4::bigint "
                          "WHERE id = $3 AND state = 'pending'",
                          4, p, err);
    if (!res) {
        img_store_delete(d->store, key, &serr);
        return -1;
    }
    PQclear(res);
    snprintf(t->source_key, sizeof t->source_key, "%s", key);
    nb_info("task %s: fetched %" PRIu64 " bytes from %s", t->id, size, t->source_url);
    return 0;
}

static int do_import(struct imaged *d, struct task *t, struct nb_error *err)
{
    if (!t->source_key[0] && t->source_url[0] && fetch_source(d, t, err) < 0) {
        return -1;
    }
    uint64_t size;
    if (img_store_stat(d->store, t->source_key, &size, err) < 0) {
        return -1;
    }
    struct blob_src src = {d->store, t->source_key, 0};
    uint64_t disk_off = 0, disk_size = size;
    const char *expect = t->source_format[0] ? t->source_format : NULL;
    json_t *props = json_object();
    int rc = -1;
    char src_path[700] = "", out_path[700] = "", log_path[700] = "", key[IMG_KEY_MAX + 1] = "";
    int out_fd = -1;
    char *props_s = NULL;

    if (expect && !strcmp(expect, "ova")) {
        struct img_ova_info *ova = malloc(sizeof *ova);
        if (!ova) {
            nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
            goto out;
        }
        if (img_ova_verify(read_blob, &src, size, ova, err) < 0) {
            free(ova);
            goto out;
        }
        const struct img_ovf *ovf = &ova->ovf;
        const struct img_ova_entry *disk = &ova->ova.entries[ova->disk_entry[0]];
        disk_off = disk->offset;
        disk_size = disk->size;
        expect = img_ovf_format_name(ovf->disks[0].format);
        json_object_set_new(props, "ovf_name", json_string(ovf->name));
        json_object_set_new(props, "os", json_string(ovf->os_description));
        json_object_set_new(props, "vcpus", json_integer(ovf->vcpus));
        json_object_set_new(props, "memory_mib", json_integer((json_int_t)ovf->memory_mib));
        json_object_set_new(props, "disks", json_integer((json_int_t)ovf->n_disks));
        json_object_set_new(props, "networks", json_integer((json_int_t)ovf->n_nets));
        json_object_set_new(props, "manifest_checked", json_boolean(ova->had_manifest));
        if (ovf->n_disks > 1) {
            json_object_set_new(props, "note", json_string("only the first disk was imported"));
        }
        free(ova);
    }
    struct blob_src dsrc = {d->store, t->source_key, disk_off};
    struct img_disk_info info;
    if (img_disk_probe(read_blob, &dsrc, disk_size, expect, &info, err) < 0) {
        goto out;
    }
    if (info.virtual_size > d->cfg.max_virtual_size) {
        nb_error_set(err, NB_ERR_INVALID,
                     "the disk's virtual size, %" PRIu64 " bytes, is over the limit of %" PRIu64,
                     info.virtual_size, d->cfg.max_virtual_size);
        goto out;
    }
    json_object_set_new(props, "source_format", json_string(info.format));
    json_object_set_new(props, "source_subformat", json_string(info.subformat));
    renew_lease(d, t, 20);

    snprintf(out_path, sizeof out_path, "%s/%s.qcow2", d->spool_dir, t->id);
    snprintf(log_path, sizeof log_path, "%s/%s.log", d->spool_dir, t->id);
    if (disk_off != 0 ||
        !img_store_local_path(d->store, t->source_key, src_path, sizeof src_path)) {
        snprintf(src_path, sizeof src_path, "%s/%s.src", d->spool_dir, t->id);
        if (spool(read_blob, &dsrc, 0, disk_size, src_path, err) < 0) {
            goto out;
        }
    }
    renew_lease(d, t, 40);
    char *argv[] = {"qemu-img", "convert", "-q",     "-f",     (char *)qemu_format(info.format),
                    "-O",       "qcow2",   src_path, out_path, NULL};
    /* A qcow2 of a disk is at most a little over its virtual size. */
    if (run_qemu_img(d, t, argv, info.virtual_size + info.virtual_size / 8 + (64u << 20), log_path,
                     err) < 0) {
        goto out;
    }
    out_fd = open(out_path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (out_fd < 0 || fstat(out_fd, &st) < 0) {
        nb_error_errno(err, errno, "cannot open the converted image %s", out_path);
        goto out;
    }
    struct img_disk_info conv;
    if (img_disk_probe(img_read_fd, &out_fd, (uint64_t)st.st_size, "qcow2", &conv, err) < 0) {
        err->code = NB_ERR_INTERNAL; /* our own conversion must be sound */
        goto out;
    }
    char sha[65];
    new_blob_key(t->image_id, key);
    if (store_stream(d, t, img_read_fd, &out_fd, (uint64_t)st.st_size, key, sha, err) < 0) {
        key[0] = '\0';
        goto out;
    }
    props_s = json_dumps(props, JSON_COMPACT);
    int done = finish_image(d, t, key, (uint64_t)st.st_size, sha, conv.virtual_size, props_s, err);
    if (done < 0) {
        goto out;
    }
    if (done == 0) {
        nb_info("image %s was deregistered during its import: dropping the result", t->image_id);
        fail_task(d, t, "the image was deregistered during the import");
        struct nb_error derr = {0};
        img_store_delete(d->store, key, &derr);
        rc = 0;
        goto out_source;
    }
    key[0] = '\0'; /* it is the image's now */
    rc = 0;
    nb_info("imported %s (%s %s, %" PRIu64 " bytes virtual) into %s as qcow2", t->image_id,
            info.format, info.subformat, info.virtual_size, t->id);
out_source:;
    /* The upload has served its purpose. */
    struct nb_error derr = {0};
    if (img_store_delete(d->store, t->source_key, &derr) < 0) {
        nb_warn("could not remove upload %s (the collector will): %s", t->source_key, derr.msg);
    }
out:
    if (rc < 0 && key[0]) {
        struct nb_error derr2 = {0};
        img_store_delete(d->store, key, &derr2);
    }
    if (out_fd >= 0) {
        close(out_fd);
    }
    if (src_path[0] && !strncmp(src_path, d->spool_dir, strlen(d->spool_dir))) {
        unlink(src_path);
    }
    if (out_path[0]) {
        unlink(out_path);
    }
    if (log_path[0]) {
        unlink(log_path);
    }
    free(props_s);
    json_decref(props);
    return rc;
}

/* --- copy: the source image's blob into a new blob of the copy --- */

static int do_copy(struct imaged *d, struct task *t, struct nb_error *err)
{
    uint64_t size;
    if (img_store_stat(d->store, t->source_key, &size, err) < 0) {
        if (err->code == NB_ERR_NOT_FOUND) {
            err->code = NB_ERR_INVALID; /* the source image's bytes are gone for good */
        }
        return -1;
    }
    const char *p[] = {t->image_id};
    PGresult *res = query(d,
                          "SELECT COALESCE(s.virtual_size, s.size_bytes, 0), "
                          "s.properties::text, s.disk_format FROM images c "
                          "JOIN images s ON s.id = c.source_image_id WHERE c.id = $1",
                          1, p, err);
    if (!res) {
        return -1;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        nb_error_set(err, NB_ERR_INVALID, "the source image of the copy is gone");
        return -1;
    }
    uint64_t vsize = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    char *props = strdup(PQgetvalue(res, 0, 1));
    char fmt[16];
    snprintf(fmt, sizeof fmt, "%s", PQgetvalue(res, 0, 2));
    PQclear(res);
    char key[IMG_KEY_MAX + 1], sha[65];
    new_blob_key(t->image_id, key);
    struct blob_src src = {d->store, t->source_key, 0};
    int rc = store_stream(d, t, read_blob, &src, size, key, sha, err);
    if (rc == 0) {
        /* finish_image() says qcow2; a raw source stays raw. */
        int done = finish_image(d, t, key, size, sha, vsize, props ? props : "{}", err);
        const char *p2[] = {t->image_id, fmt};
        if (done == 1) {
            PQclear(query(d, "UPDATE images SET disk_format = $2 WHERE id = $1", 2, p2, err));
        }
        if (done <= 0) {
            struct nb_error derr = {0};
            img_store_delete(d->store, key, &derr);
            if (done == 0) {
                fail_task(d, t, "the copy was deregistered before it was ready");
            }
            rc = done < 0 ? -1 : 0;
        }
    }
    free(props);
    return rc;
}

/* --- export: an image as an OVA (OVF 1.0 descriptor, streamOptimized VMDK, SHA-256 manifest)
 * in the blob exports/TASK.ova --- */

/* Appends 'len' bytes to the OVA being written, hashing them. */
static int ova_put(struct img_writer *w, EVP_MD_CTX *md, const void *data, size_t len,
                   struct nb_error *err)
{
    if (EVP_DigestUpdate(md, data, len) != 1) {
        nb_error_set(err, NB_ERR_INTERNAL, "SHA-256 failed");
        return -1;
    }
    return img_writer_write(w, data, len, err);
}

/* One archive member: header, bytes from 'fd' (or 'mem'), padding to 512. */
static int ova_member(struct imaged *d, struct task *t, struct img_writer *w, EVP_MD_CTX *md,
                      const char *name, int fd, const char *mem, uint64_t size, char *buf,
                      struct nb_error *err)
{
    unsigned char hdr[512];
    static const unsigned char zeros[512];
    if (img_tar_header(hdr, name, size, time(NULL), err) < 0 ||
        ova_put(w, md, hdr, sizeof hdr, err) < 0) {
        return -1;
    }
    if (mem) {
        if (ova_put(w, md, mem, (size_t)size, err) < 0) {
            return -1;
        }
    } else {
        for (uint64_t done = 0; done < size;) {
            size_t want = size - done < COPY_BUF ? (size_t)(size - done) : COPY_BUF;
            ssize_t n = pread(fd, buf, want, (off_t)done);
            if (n <= 0) {
                nb_error_errno(err, n < 0 ? errno : EIO, "cannot read the exported disk");
                return -1;
            }
            if (ova_put(w, md, buf, (size_t)n, err) < 0) {
                return -1;
            }
            done += (uint64_t)n;
            renew_lease(d, t, 70 + (int)(done * 25 / size));
        }
    }
    size_t pad = (size_t)((512 - size % 512) % 512);
    return pad ? ova_put(w, md, zeros, pad, err) : 0;
}

static int file_sha256(int fd, uint64_t size, char *buf, char hex[65], struct nb_error *err)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = -1;
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        nb_error_set(err, NB_ERR_INTERNAL, "SHA-256 failed");
        goto out;
    }
    for (uint64_t done = 0; done < size;) {
        size_t want = size - done < COPY_BUF ? (size_t)(size - done) : COPY_BUF;
        ssize_t n = pread(fd, buf, want, (off_t)done);
        if (n <= 0 || EVP_DigestUpdate(md, buf, (size_t)n) != 1) {
            nb_error_errno(err, n < 0 ? errno : EIO, "cannot read the exported disk");
            goto out;
        }
        done += (uint64_t)n;
    }
    unsigned char dg[32];
    unsigned int dl;
    if (EVP_DigestFinal_ex(md, dg, &dl) == 1) {
        nb_hex_encode(dg, 32, hex);
        rc = 0;
    }
out:
    EVP_MD_CTX_free(md);
    return rc;
}

static int do_export(struct imaged *d, struct task *t, struct nb_error *err)
{
    const char *p[] = {t->image_id};
    PGresult *res =
        query(d,
              "SELECT m.name, m.disk_format, COALESCE(m.virtual_size, m.size_bytes, 0), "
              "COALESCE((m.properties->>'vcpus')::int, it.vcpus, 1), "
              "COALESCE((m.properties->>'memory_mib')::bigint, it.memory_mib, 1024), "
              "COALESCE(m.properties->>'os', '') FROM images m "
              "LEFT JOIN instance_types it ON it.name = m.suggested_type WHERE m.id = $1",
              1, p, err);
    if (!res) {
        return -1;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        nb_error_set(err, NB_ERR_INVALID, "the image to export is gone");
        return -1;
    }
    struct img_ovf ovf = {.n_files = 1, .n_disks = 1, .n_nets = 1};
    snprintf(ovf.name, sizeof ovf.name, "%s", PQgetvalue(res, 0, 0));
    char fmt[16];
    snprintf(fmt, sizeof fmt, "%s", PQgetvalue(res, 0, 1));
    uint64_t vsize = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
    ovf.vcpus = atoi(PQgetvalue(res, 0, 3));
    ovf.memory_mib = strtoull(PQgetvalue(res, 0, 4), NULL, 10);
    snprintf(ovf.os_description, sizeof ovf.os_description, "%s", PQgetvalue(res, 0, 5));
    PQclear(res);

    int rc = -1, disk_fd = -1;
    char src_path[700] = "", out_path[700], log_path[700], key[IMG_KEY_MAX + 1] = "";
    char *buf = malloc(COPY_BUF), *desc = NULL, *mf = NULL;
    struct img_writer *w = NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    snprintf(out_path, sizeof out_path, "%s/%s.vmdk", d->spool_dir, t->id);
    snprintf(log_path, sizeof log_path, "%s/%s.log", d->spool_dir, t->id);
    if (!buf || !md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (!img_store_local_path(d->store, t->source_key, src_path, sizeof src_path)) {
        uint64_t size;
        struct blob_src src = {d->store, t->source_key, 0};
        snprintf(src_path, sizeof src_path, "%s/%s.src", d->spool_dir, t->id);
        if (img_store_stat(d->store, t->source_key, &size, err) < 0 ||
            spool(read_blob, &src, 0, size, src_path, err) < 0) {
            goto out;
        }
    }
    char *argv[] = {
        "qemu-img", "convert", "-q", "-f", fmt, "-O", "vmdk", "-o", "subformat=streamOptimized",
        src_path,   out_path,  NULL};
    if (run_qemu_img(d, t, argv, vsize + vsize / 4 + (64u << 20), log_path, err) < 0) {
        if (err->code == NB_ERR_INVALID) {
            err->code = NB_ERR_INTERNAL; /* the image was validated when it was stored */
        }
        goto out;
    }
    struct stat st;
    disk_fd = open(out_path, O_RDONLY | O_CLOEXEC);
    if (disk_fd < 0 || fstat(disk_fd, &st) < 0) {
        nb_error_errno(err, errno, "cannot open %s", out_path);
        goto out;
    }
    uint64_t disk_size = (uint64_t)st.st_size;
    snprintf(ovf.files[0].id, sizeof ovf.files[0].id, "file1");
    snprintf(ovf.files[0].href, sizeof ovf.files[0].href, "disk1.vmdk");
    ovf.files[0].size = disk_size;
    snprintf(ovf.disks[0].disk_id, sizeof ovf.disks[0].disk_id, "vmdisk1");
    snprintf(ovf.disks[0].file_ref, sizeof ovf.disks[0].file_ref, "file1");
    snprintf(ovf.disks[0].format, sizeof ovf.disks[0].format, "%s", img_ovf_format_uri("vmdk"));
    ovf.disks[0].capacity_bytes = vsize;
    snprintf(ovf.nets[0].name, sizeof ovf.nets[0].name, "VM Network");
    desc = img_ovf_write(&ovf);
    char desc_sha[65], disk_sha[65], sha[65];
    if (!desc || file_sha256(disk_fd, disk_size, buf, disk_sha, err) < 0) {
        if (!desc) {
            nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        }
        goto out;
    }
    nb_sha256_hex(desc, strlen(desc), desc_sha);
    if (asprintf(&mf, "SHA256(%s.ovf)= %s\nSHA256(disk1.vmdk)= %s\n", t->image_id, desc_sha,
                 disk_sha) < 0) {
        mf = NULL;
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        goto out;
    }
    char name_ovf[64], name_mf[64];
    snprintf(name_ovf, sizeof name_ovf, "%s.ovf", t->image_id);
    snprintf(name_mf, sizeof name_mf, "%s.mf", t->image_id);
    snprintf(key, sizeof key, "exports/%s.ova", t->id);
    static const unsigned char end[1024];
    w = img_store_write_begin(d->store, key, err);
    if (!w || ova_member(d, t, w, md, name_ovf, -1, desc, strlen(desc), buf, err) < 0 ||
        ova_member(d, t, w, md, "disk1.vmdk", disk_fd, NULL, disk_size, buf, err) < 0 ||
        ova_member(d, t, w, md, name_mf, -1, mf, strlen(mf), buf, err) < 0 ||
        ova_put(w, md, end, sizeof end, err) < 0) {
        goto out;
    }
    uint64_t ova_size = img_writer_size(w);
    unsigned char dg[32];
    unsigned int dl;
    if (EVP_DigestFinal_ex(md, dg, &dl) != 1) {
        nb_error_set(err, NB_ERR_INTERNAL, "SHA-256 failed");
        goto out;
    }
    nb_hex_encode(dg, 32, sha);
    struct img_writer *cw = w;
    w = NULL;
    if (img_writer_commit(cw, err) < 0) {
        key[0] = '\0';
        goto out;
    }
    char size_s[24];
    snprintf(size_s, sizeof size_s, "%" PRIu64, ova_size);
    const char *p2[] = {t->id, key, size_s, sha};
    res = query(d,
                "UPDATE image_tasks SET state = 'completed', progress = 100, "
                "status_message = 'done', result_key = $2, result_bytes = "
                "$3::bigint, result_sha256 = $4, lease_until = NULL, "
                "updated_at = now() WHERE id = $1",
                4, p2, err);
    if (!res) {
        goto out;
    }
    PQclear(res);
    nb_info("exported %s as %s (%" PRIu64 " bytes)", t->image_id, key, ova_size);
    key[0] = '\0';
    rc = 0;
out:
    img_writer_abort(w);
    if (rc < 0 && key[0]) {
        struct nb_error derr = {0};
        img_store_delete(d->store, key, &derr);
    }
    if (disk_fd >= 0) {
        close(disk_fd);
    }
    if (src_path[0] && !strncmp(src_path, d->spool_dir, strlen(d->spool_dir))) {
        unlink(src_path);
    }
    unlink(out_path);
    unlink(log_path);
    EVP_MD_CTX_free(md);
    free(buf);
    free(desc);
    free(mf);
    return rc;
}

/* --- the worker loop --- */

static void run_task(struct imaged *d, struct task *t)
{
    struct nb_error err = {0};
    int rc;
    nb_info("task %s: %s of %s (attempt %d)", t->id, t->kind, t->image_id, t->attempts);
    if (!strcmp(t->kind, "import")) {
        rc = do_import(d, t, &err);
    } else if (!strcmp(t->kind, "copy")) {
        rc = do_copy(d, t, &err);
    } else if (!strcmp(t->kind, "export")) {
        rc = do_export(d, t, &err);
    } else {
        nb_error_set(&err, NB_ERR_INVALID, "this nubo-imaged does not do %s tasks", t->kind);
        rc = -1;
    }
    if (rc == 0) {
        atomic_fetch_add(&d->tasks_done, 1);
    } else if (err.code == NB_ERR_INVALID) {
        fail_task(d, t, err.msg);
        if (!strcmp(t->kind, "import")) {
            struct nb_error derr = {0};
            img_store_delete(d->store, t->source_key, &derr);
        }
    } else {
        retry_later(d, t, err.msg);
    }
}

/* A connection that LISTENs on nubo_imaged, or NULL (then the worker only polls). */
static PGconn *listen_conn(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        PQfinish(c);
        return NULL;
    }
    PGresult *res = PQexec(c, "LISTEN nubo_imaged");
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

void *imaged_worker_main(void *arg)
{
    struct imaged *d = arg;
    PGconn *lc = NULL;
    while (!atomic_load(&d->stopping)) {
        struct task t;
        struct nb_error err = {0};
        int got = claim(d, &t, &err);
        if (got < 0) {
            nb_warn("could not look for image tasks: %s", err.msg);
        } else if (got == 1) {
            run_task(d, &t);
            continue;
        }
        if (!lc) {
            lc = listen_conn(d->conninfo);
        }
        /* Wait for a notification, at most a second (leases that run out need no signal). */
        for (int i = 0; i < 5 && !atomic_load(&d->stopping); i++) {
            if (lc) {
                struct pollfd pfd = {.fd = PQsocket(lc), .events = POLLIN};
                if (poll(&pfd, 1, 200) > 0) {
                    if (!PQconsumeInput(lc)) {
                        PQfinish(lc);
                        lc = NULL;
                        break;
                    }
                    PGnotify *n;
                    bool woke = false;
                    while ((n = PQnotifies(lc))) {
                        woke = true;
                        PQfreemem(n);
                    }
                    if (woke) {
                        break;
                    }
                }
            } else {
                usleep(200 * 1000);
            }
        }
    }
    PQfinish(lc);
    return NULL;
}
