/* The base image cache (see imgcache.h).
 *
 * The index is a short linked list (a host holds tens of images, not thousands) under one mutex;
 * transfers run without the lock. An entry being fetched is in the list in state FETCHING, so a
 * second get of the same digest waits on the condition variable instead of fetching again. */
#include "imgcache.h"
#include "disks.h"

#include "nubo/error.h"
#include "nubo/httpc.h"
#include "nubo/log.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TMP_PREFIX ".tmp-"

enum img_state { IMG_FETCHING, IMG_READY, IMG_FAILED };

struct img {
    char sha[65];
    uint64_t size;
    uint64_t last_use; /* ns since the epoch (file mtime), unique and increasing per use */
    int pins;
    int waiters;
    enum img_state state;
    struct nb_error err; /* IMG_FAILED: the fetch's error, for the waiters */
    struct img *next;
};

struct agent_imgcache {
    char *dir;
    struct agent_imgcache_config cfg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct img *head;
    uint64_t total;
    uint64_t last_stamp;
};

static bool valid_sha(const char *s, char out[65])
{
    if (!s || strlen(s) != 64) {
        return false;
    }
    for (int i = 0; i < 64; i++) {
        if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
        out[i] = (char)tolower((unsigned char)s[i]);
    }
    out[64] = '\0';
    return true;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* A recency stamp later than every earlier one. Lock held. */
static uint64_t stamp(struct agent_imgcache *c)
{
    uint64_t t = now_ns();
    if (t <= c->last_stamp) {
        t = c->last_stamp + 1;
    }
    c->last_stamp = t;
    return t;
}

static char *img_path(const struct agent_imgcache *c, const char *sha)
{
    char *p;
    if (asprintf(&p, "%s/%s", c->dir, sha) < 0) {
        abort();
    }
    return p;
}

/* Records 'when' as the file's modification time, so that recency survives a restart. */
static void touch(const struct agent_imgcache *c, const char *sha, uint64_t when)
{
    char *p = img_path(c, sha);
    struct timespec ts[2] = {{0, UTIME_OMIT},
                             {(time_t)(when / 1000000000ULL), (long)(when % 1000000000ULL)}};
    if (utimensat(AT_FDCWD, p, ts, 0) < 0) {
        nb_debug("could not touch cached image \"%s\": %s", p, strerror(errno));
    }
    free(p);
}

static struct img *find(struct agent_imgcache *c, const char *sha)
{
    for (struct img *i = c->head; i; i = i->next) {
        if (strcmp(i->sha, sha) == 0) {
            return i;
        }
    }
    return NULL;
}

static void unlink_entry(struct agent_imgcache *c, struct img *e)
{
    for (struct img **pp = &c->head; *pp; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            free(e);
            return;
        }
    }
}

/* Evicts down to 'target' bytes. Lock held. */
static size_t evict_locked(struct agent_imgcache *c, uint64_t target)
{
    size_t removed = 0;
    while (c->total > target) {
        struct img *victim = NULL;
        for (struct img *i = c->head; i; i = i->next) {
            if (i->state != IMG_READY || i->pins > 0 ||
                (victim && victim->last_use <= i->last_use)) {
                continue;
            }
            if (c->cfg.in_use && c->cfg.in_use(i->sha, c->cfg.in_use_arg)) {
                continue;
            }
            victim = i;
        }
        if (!victim) {
            nb_warn("image cache holds %llu bytes, over its limit of %llu, but every image is in "
                    "use",
                    (unsigned long long)c->total, (unsigned long long)target);
            break;
        }
        char *p = img_path(c, victim->sha);
        if (unlink(p) < 0 && errno != ENOENT) {
            nb_warn("could not evict cached image \"%s\": %s", p, strerror(errno));
            free(p);
            break;
        }
        nb_info("evicted cached image \"%s\" (%llu bytes)", p, (unsigned long long)victim->size);
        free(p);
        c->total -= victim->size;
        unlink_entry(c, victim);
        removed++;
    }
    return removed;
}

static int rebuild(struct agent_imgcache *c, struct nb_error *err)
{
    DIR *d = opendir(c->dir);
    if (!d) {
        nb_error_errno(err, errno, "could not open image cache \"%s\"", c->dir);
        return -1;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0) {
            if (unlinkat(dirfd(d), de->d_name, 0) == 0) {
                nb_info("removed leftover partial image \"%s/%s\"", c->dir, de->d_name);
            }
            continue;
        }
        char sha[65];
        struct stat st;
        if (!valid_sha(de->d_name, sha) || strcmp(sha, de->d_name) != 0 ||
            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
            continue;
        }
        fchmodat(dirfd(d), de->d_name, 0644, 0);
        struct img *e = calloc(1, sizeof *e);
        if (!e) {
            abort();
        }
        memcpy(e->sha, sha, sizeof sha);
        e->size = (uint64_t)st.st_size;
        e->last_use = (uint64_t)st.st_mtim.tv_sec * 1000000000ULL + (uint64_t)st.st_mtim.tv_nsec;
        e->state = IMG_READY;
        e->next = c->head;
        c->head = e;
        c->total += e->size;
        if (e->last_use > c->last_stamp) {
            c->last_stamp = e->last_use;
        }
    }
    closedir(d);
    return 0;
}

struct agent_imgcache *agent_imgcache_open(const struct agent_imgcache_config *cfg,
                                           struct nb_error *err)
{
    if (!cfg->dir || cfg->dir[0] != '/') {
        nb_error_set(err, NB_ERR_INVALID, "image cache directory must be an absolute path");
        return NULL;
    }
    nb_httpc_global_init();
    struct agent_imgcache *c = calloc(1, sizeof *c);
    if (!c || !(c->dir = strdup(cfg->dir))) {
        abort();
    }
    size_t n = strlen(c->dir);
    while (n > 1 && c->dir[n - 1] == '/') {
        c->dir[--n] = '\0';
    }
    c->cfg = *cfg;
    c->cfg.dir = c->dir;
    if (c->cfg.fetch_timeout_ms <= 0) {
        c->cfg.fetch_timeout_ms = 3600000L;
    }
    if (c->cfg.connect_timeout_ms <= 0) {
        c->cfg.connect_timeout_ms = 10000L;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (agent_disks_make_dir(c->dir, err) < 0 || rebuild(c, err) < 0) {
        agent_imgcache_close(c);
        return NULL;
    }
    return c;
}

void agent_imgcache_close(struct agent_imgcache *c)
{
    if (!c) {
        return;
    }
    while (c->head) {
        struct img *next = c->head->next;
        free(c->head);
        c->head = next;
    }
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c->dir);
    free(c);
}

/* ---- fetching ------------------------------------------------------------------------------- */

struct sink {
    int fd;
    EVP_MD_CTX *md;
    uint64_t bytes;
    uint64_t limit; /* 0: none */
    bool too_big;
    int write_errno;
};

static size_t sink_write(char *data, size_t size, size_t nmemb, void *p)
{
    struct sink *s = p;
    size_t len = size * nmemb;
    if (s->limit && s->bytes + len > s->limit) {
        s->too_big = true;
        return 0;
    }
    EVP_DigestUpdate(s->md, data, len);
    for (size_t off = 0; off < len;) {
        ssize_t n = write(s->fd, data + off, len - off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            s->write_errno = errno;
            return 0;
        }
        off += (size_t)n;
    }
    s->bytes += len;
    return len;
}

static bool known_scheme(const char *url)
{
    return strncasecmp(url, "file://", 7) == 0 || strncasecmp(url, "http://", 7) == 0 ||
           strncasecmp(url, "https://", 8) == 0;
}

static void curl_error(CURL *h, CURLcode cc, const struct sink *s, const char *url,
                       struct nb_error *err)
{
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    enum nb_errcode code = NB_ERR_UNAVAILABLE;
    switch (cc) {
    case CURLE_HTTP_RETURNED_ERROR:
        code = status == 404 || status == 410 ? NB_ERR_NOT_FOUND
               : status >= 500                ? NB_ERR_UNAVAILABLE
                                              : NB_ERR_INVALID;
        break;
    case CURLE_FILE_COULDNT_READ_FILE:
    case CURLE_REMOTE_FILE_NOT_FOUND:
        code = NB_ERR_NOT_FOUND;
        break;
    case CURLE_OPERATION_TIMEDOUT:
        code = NB_ERR_TIMEOUT;
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        code = NB_ERR_INVALID;
        break;
    case CURLE_WRITE_ERROR:
        if (s->too_big) {
            nb_error_set(err, NB_ERR_LIMIT, "image at \"%s\" is larger than the cache (%llu bytes)",
                         url, (unsigned long long)s->limit);
            return;
        }
        if (s->write_errno) {
            nb_error_errno(err, s->write_errno, "could not write image from \"%s\"", url);
            return;
        }
        break;
    default:
        break;
    }
    if (cc == CURLE_HTTP_RETURNED_ERROR) {
        nb_error_set(err, code, "could not fetch image \"%s\": HTTP status %ld", url, status);
    } else {
        nb_error_set(err, code, "could not fetch image \"%s\": %s", url, curl_easy_strerror(cc));
    }
}

/* Fetches 'url' into the cache as 'sha'. Stores the size in '*size'. Returns 0, or -1 with 'err'
 * set and no file left. Runs without the lock. */
static int fetch(struct agent_imgcache *c, const char *url, const char *sha, uint64_t *size,
                 struct nb_error *err)
{
    unsigned char rnd[6];
    char rhex[13];
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        memset(rnd, 0, sizeof rnd);
    }
    for (size_t i = 0; i < sizeof rnd; i++) {
        snprintf(rhex + 2 * i, 3, "%02x", rnd[i]);
    }
    char *tmp;
    if (asprintf(&tmp, "%s/" TMP_PREFIX "%s-%s", c->dir, sha, rhex) < 0) {
        abort();
    }
    char *final = img_path(c, sha);
    int rc = -1;
    CURL *h = NULL;
    struct sink s = {.fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644),
                     .md = EVP_MD_CTX_new(),
                     .limit = c->cfg.max_bytes};
    if (s.fd < 0) {
        nb_error_errno(err, errno, "could not create \"%s\"", tmp);
        goto cleanup;
    }
    if (!s.md || EVP_DigestInit_ex(s.md, EVP_sha256(), NULL) != 1 || !(h = curl_easy_init())) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not set up an image transfer");
        goto cleanup;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "file,http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->cfg.fetch_timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->cfg.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        curl_error(h, cc, &s, url, err);
        goto cleanup;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    char got[65];
    EVP_DigestFinal_ex(s.md, md, &mdlen);
    for (unsigned i = 0; i < 32; i++) {
        snprintf(got + 2 * i, 3, "%02x", md[i]);
    }
    if (strcmp(got, sha) != 0) {
        nb_error_set(err, NB_ERR_INVALID, "image \"%s\" does not match its checksum", url);
        nb_error_detail(err, "expected SHA-256 %s, got %s (%llu bytes)", sha, got,
                        (unsigned long long)s.bytes);
        nb_error_reason(err, "checksum");
        goto cleanup;
    }
    if (fchmod(s.fd, 0644) < 0 || fsync(s.fd) < 0) {
        nb_error_errno(err, errno, "could not write \"%s\"", tmp);
        goto cleanup;
    }
    if (close(s.fd) < 0) {
        s.fd = -1;
        nb_error_errno(err, errno, "could not write \"%s\"", tmp);
        goto cleanup;
    }
    s.fd = -1;
    if (rename(tmp, final) < 0) {
        nb_error_errno(err, errno, "could not rename \"%s\" into place", tmp);
        goto cleanup;
    }
    int dfd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    *size = s.bytes;
    rc = 0;
cleanup:
    if (s.fd >= 0) {
        close(s.fd);
    }
    if (rc < 0) {
        unlink(tmp);
    }
    if (h) {
        curl_easy_cleanup(h);
    }
    EVP_MD_CTX_free(s.md);
    free(tmp);
    free(final);
    return rc;
}

int agent_imgcache_get(struct agent_imgcache *c, const char *url, const char *sha256,
                       uint64_t size_hint, char **path_out, struct nb_error *err)
{
    char sha[65];
    *path_out = NULL;
    if (!valid_sha(sha256, sha)) {
        nb_error_set(err, NB_ERR_INVALID, "\"%s\" is not a SHA-256 hex digest",
                     sha256 ? sha256 : "");
        return -1;
    }
    pthread_mutex_lock(&c->mu);
    struct img *e = find(c, sha);
    if (e) {
        e->waiters++;
        while (e->state == IMG_FETCHING) {
            pthread_cond_wait(&c->cv, &c->mu);
        }
        e->waiters--;
        if (e->state == IMG_FAILED) {
            if (err) {
                *err = e->err;
            }
            if (e->waiters == 0) {
                unlink_entry(c, e);
            }
            pthread_mutex_unlock(&c->mu);
            return -1;
        }
        e->pins++;
        e->last_use = stamp(c);
        touch(c, sha, e->last_use);
        pthread_mutex_unlock(&c->mu);
        *path_out = img_path(c, sha);
        return 0;
    }
    if (!url || !known_scheme(url)) {
        pthread_mutex_unlock(&c->mu);
        nb_error_set(err, NB_ERR_INVALID, "image URL \"%s\" is not file://, http:// or https://",
                     url ? url : "");
        return -1;
    }
    e = calloc(1, sizeof *e);
    if (!e) {
        abort();
    }
    memcpy(e->sha, sha, sizeof sha);
    e->state = IMG_FETCHING;
    e->pins = 1;
    e->next = c->head;
    c->head = e;
    if (c->cfg.max_bytes && size_hint) {
        evict_locked(c, size_hint >= c->cfg.max_bytes ? 0 : c->cfg.max_bytes - size_hint);
    }
    pthread_mutex_unlock(&c->mu);

    uint64_t size = 0;
    struct nb_error ferr = {0};
    int rc = fetch(c, url, sha, &size, &ferr);

    pthread_mutex_lock(&c->mu);
    if (rc < 0) {
        e->state = IMG_FAILED;
        e->err = ferr;
        if (e->waiters == 0) {
            unlink_entry(c, e);
        }
        if (err) {
            *err = ferr;
        }
    } else {
        e->state = IMG_READY;
        e->size = size;
        e->last_use = stamp(c);
        touch(c, sha, e->last_use);
        c->total += size;
        if (c->cfg.max_bytes) {
            evict_locked(c, c->cfg.max_bytes);
        }
        nb_info("cached image %s from \"%s\" (%llu bytes)", sha, url, (unsigned long long)size);
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (rc == 0) {
        *path_out = img_path(c, sha);
    }
    return rc;
}

void agent_imgcache_release(struct agent_imgcache *c, const char *sha256)
{
    char sha[65];
    if (!valid_sha(sha256, sha)) {
        return;
    }
    pthread_mutex_lock(&c->mu);
    struct img *e = find(c, sha);
    if (e && e->state == IMG_READY && e->pins > 0) {
        e->pins--;
    }
    pthread_mutex_unlock(&c->mu);
}

bool agent_imgcache_contains(struct agent_imgcache *c, const char *sha256)
{
    char sha[65];
    if (!valid_sha(sha256, sha)) {
        return false;
    }
    pthread_mutex_lock(&c->mu);
    struct img *e = find(c, sha);
    bool ok = e && e->state == IMG_READY;
    pthread_mutex_unlock(&c->mu);
    return ok;
}

uint64_t agent_imgcache_total_bytes(struct agent_imgcache *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t t = c->total;
    pthread_mutex_unlock(&c->mu);
    return t;
}

size_t agent_imgcache_evict(struct agent_imgcache *c, uint64_t target_bytes)
{
    pthread_mutex_lock(&c->mu);
    size_t n = evict_locked(c, target_bytes);
    pthread_mutex_unlock(&c->mu);
    return n;
}
