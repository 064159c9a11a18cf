/* nubo-imaged: configuration, the blob server, garbage collection, life cycle (imaged.h). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "imaged.h"
#include "nubo/config.h"
#include "nubo/error.h"
#include "nubo/http.h"
#include "nubo/log.h"
#include "nubo/pg.h"
#include "store.h"

int imaged_config_load(const struct nb_config *cfg, struct imaged_config *c, struct nb_error *err)
{
    long long port, workers, lease, attempts, timeout, gc_interval, gc_age, max_vsize, fetch;
    if (nb_config_get_int(cfg, "http.port", 8777, 0, 65535, &port, err) < 0 ||
        nb_config_get_int(cfg, "imaged.workers", 2, 1, 64, &workers, err) < 0 ||
        nb_config_get_int(cfg, "imaged.lease_s", 60, 3, 3600, &lease, err) < 0 ||
        nb_config_get_int(cfg, "imaged.max_attempts", 3, 1, 100, &attempts, err) < 0 ||
        nb_config_get_int(cfg, "imaged.convert_timeout_s", 3600, 1, 86400, &timeout, err) < 0 ||
        nb_config_get_int(cfg, "gc.interval_s", 300, 0, 86400, &gc_interval, err) < 0 ||
        nb_config_get_int(cfg, "gc.min_age_s", 3600, 0, 7 * 86400, &gc_age, err) < 0 ||
        nb_config_get_int(cfg, "imaged.max_virtual_size", 1LL << 40, 1 << 20, 1LL << 46, &max_vsize,
                          err) < 0 ||
        nb_config_get_int(cfg, "images.max_bytes", 64LL << 30, 1, 1LL << 46, &fetch, err) < 0) {
        return -1;
    }
    *c = (struct imaged_config){
        .conninfo = nb_config_get(cfg, "db.conninfo", NULL),
        .spool_dir = nb_config_get(cfg, "imaged.spool_dir", "var/imaged-spool"),
        .public_url = nb_config_get(cfg, "imaged.url", NULL),
        .address = nb_config_get(cfg, "http.address", "127.0.0.1"),
        .port = (int)port,
        .workers = (int)workers,
        .lease_s = (int)lease,
        .max_attempts = (int)attempts,
        .convert_timeout_s = (int)timeout,
        .gc_interval_s = (int)gc_interval,
        .gc_min_age_s = (int)gc_age,
        .max_virtual_size = (uint64_t)max_vsize,
        .import_url_prefixes = nb_config_get(cfg, "images.import_url_prefixes", ""),
        .max_fetch_bytes = (uint64_t)fetch,
    };
    if (!c->conninfo) {
        nb_error_set(err, NB_ERR_MISSING, "db.conninfo is not set");
        return -1;
    }
    return 0;
}

/* --- GET /v1/blobs/KEY?sig=HEX -------------------------------------------------------------- */

static void reply_text(struct nb_http_req *req, int status, const char *text)
{
    nb_http_reply(req, status, "text/plain;charset=UTF-8", text, strlen(text));
}

static void handle_blob(struct nb_http_req *req, void *arg)
{
    struct imaged *d = arg;
    const char *key = nb_http_req_path(req) + strlen("/v1/blobs/");
    const char *sig = nb_http_req_query(req, "sig");
    if (!img_store_key_valid(key) || !img_blob_sig_ok(d->url_key, key, sig)) {
        /* The same answer for a bad key and a bad signature: no probing for names. */
        reply_text(req, 403, "this blob URL is not valid\n");
        return;
    }
    struct nb_error err = {0};
    uint64_t size;
    if (img_store_stat(d->store, key, &size, &err) < 0) {
        reply_text(req, err.code == NB_ERR_NOT_FOUND ? 404 : 503,
                   err.code == NB_ERR_NOT_FOUND ? "no such blob\n" : "the store failed\n");
        if (err.code != NB_ERR_NOT_FOUND) {
            nb_err("stat of blob %s failed: %s", key, err.msg);
        }
        return;
    }
    uint64_t first = 0, last = size ? size - 1 : 0;
    int range = nb_http_parse_range(nb_http_req_header(req, "Range"), size, &first, &last);
    char hdr[96];
    if (range < 0) {
        snprintf(hdr, sizeof hdr, "bytes */%" PRIu64, size);
        nb_http_reply_header(req, "Content-Range", hdr);
        reply_text(req, 416, "range not satisfiable\n");
        return;
    }
    struct img_blob_reader *b = calloc(1, sizeof *b);
    if (!b) {
        reply_text(req, 500, "out of memory\n");
        return;
    }
    b->store = d->store;
    snprintf(b->key, sizeof b->key, "%s", key);
    b->first = first;
    nb_http_reply_header(req, "Accept-Ranges", "bytes");
    if (range) {
        snprintf(hdr, sizeof hdr, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, size);
        nb_http_reply_header(req, "Content-Range", hdr);
    }
    atomic_fetch_add(&d->blobs_served, 1);
    nb_http_reply_stream(req, range ? 206 : 200, "application/octet-stream",
                         size ? last - first + 1 : 0, img_blob_reader_read, free, b);
}

static void handle_healthz(struct nb_http_req *req, void *arg)
{
    struct imaged *d = arg;
    struct nb_error err = {0};
    uint64_t size;
    /* A missing blob answers "not found" only when the backend is reachable. */
    bool store_ok =
        img_store_stat(d->store, "healthz/probe", &size, &err) == 0 || err.code == NB_ERR_NOT_FOUND;
    struct nb_pg_conn *conn = nb_pg_acquire(d->pool, 2000, &err);
    PGresult *res = conn ? nb_pg_exec(conn, "SELECT 1", 0, NULL, &err) : NULL;
    PQclear(res);
    nb_pg_release(conn);
    char body[160];
    snprintf(body, sizeof body, "{\"status\": \"%s\", \"database\": \"%s\", \"store\": \"%s\"}",
             store_ok && res ? "ok" : "degraded", res ? "ok" : "unreachable",
             store_ok ? "ok" : "unreachable");
    nb_http_reply(req, store_ok && res ? 200 : 503, "application/json", body, strlen(body));
}

static void handle_metrics(struct nb_http_req *req, void *arg)
{
    struct imaged *d = arg;
    char text[1024];
    snprintf(text, sizeof text,
             "# HELP nubo_imaged_tasks_done_total Image tasks completed.\n"
             "# TYPE nubo_imaged_tasks_done_total counter\n"
             "nubo_imaged_tasks_done_total %ld\n"
             "# HELP nubo_imaged_tasks_failed_total Image tasks failed (bad input included).\n"
             "# TYPE nubo_imaged_tasks_failed_total counter\n"
             "nubo_imaged_tasks_failed_total %ld\n"
             "# HELP nubo_imaged_gc_removed_total Leftover objects and blobs collected.\n"
             "# TYPE nubo_imaged_gc_removed_total counter\n"
             "nubo_imaged_gc_removed_total %ld\n"
             "# HELP nubo_imaged_blobs_served_total Blob downloads started.\n"
             "# TYPE nubo_imaged_blobs_served_total counter\n"
             "nubo_imaged_blobs_served_total %ld\n",
             atomic_load(&d->tasks_done), atomic_load(&d->tasks_failed),
             atomic_load(&d->gc_removed), atomic_load(&d->blobs_served));
    nb_http_reply(req, 200, "text/plain; version=0.0.4", text, strlen(text));
}

/* --- garbage collection ---------------------------------------------------------------------- */

/* Blobs seen unreferenced by the previous pass: a blob is removed only when two passes at
 * least gc_min_age_s apart both found it unreferenced, since a gateway commits a blob a moment
 * before the row that refers to it. */
struct gc_seen {
    char (*keys)[IMG_KEY_MAX + 1];
    size_t n, cap;
};

struct gc_pass {
    struct imaged *d;
    PGresult *used; /* the keys live images and tasks refer to, in byte order */
    struct gc_seen now;
    int errors;
};

/* Every blob key something still needs, read once per pass (ORDER BY in byte order, for
 * bsearch): live images' bytes, the sources of running tasks, the parts of pending uploads, the
 * exports of live images. */
static const char USED_KEYS_SQL[] =
    "SELECT k COLLATE \"C\" FROM ("
    "SELECT store_key AS k FROM images WHERE store_key IS NOT NULL AND state <> 'deregistered' "
    "UNION SELECT source_key FROM image_tasks WHERE source_key IS NOT NULL "
    "AND state IN ('pending', 'active') "
    "UNION SELECT p.store_key FROM image_upload_parts p JOIN images m ON m.id = p.image_id "
    "WHERE m.state = 'pending' "
    "UNION SELECT t.result_key FROM image_tasks t JOIN images m ON m.id = t.image_id "
    "WHERE t.result_key IS NOT NULL AND m.state <> 'deregistered') u ORDER BY 1";

static bool gc_used(PGresult *used, const char *key)
{
    int lo = 0, hi = PQntuples(used) - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(PQgetvalue(used, mid, 0), key);
        if (c == 0) {
            return true;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return false;
}

static void gc_consider(const char *key, uint64_t size, void *arg)
{
    (void)size;
    struct gc_pass *p = arg;
    if (strncmp(key, "images/", 7) && strncmp(key, "uploads/", 8) && strncmp(key, "exports/", 8) &&
        strncmp(key, "parts/", 6)) {
        return; /* not ours (the health probe, an operator's files) */
    }
    if (gc_used(p->used, key)) {
        return;
    }
    if (p->now.n == p->now.cap) {
        size_t cap = p->now.cap ? 2 * p->now.cap : 64;
        void *k = realloc(p->now.keys, cap * sizeof *p->now.keys);
        if (!k) {
            p->errors++;
            return;
        }
        p->now.keys = k;
        p->now.cap = cap;
    }
    snprintf(p->now.keys[p->now.n++], IMG_KEY_MAX + 1, "%s", key);
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* One statement on a pooled connection for the collector. */
static PGresult *query_gc(struct imaged *d, const char *sql, struct nb_error *err)
{
    struct nb_pg_conn *conn = nb_pg_acquire(d->pool, 10000, err);
    if (!conn) {
        return NULL;
    }
    PGresult *res = nb_pg_exec(conn, sql, 0, NULL, err);
    nb_pg_release(conn);
    return res;
}

static struct gc_seen gc_previous;
static time_t gc_previous_at;
static pthread_mutex_t gc_lock = PTHREAD_MUTEX_INITIALIZER;

int imaged_gc(struct imaged *d, struct nb_error *err)
{
    pthread_mutex_lock(&gc_lock);
    int removed = img_store_gc(d->store, d->cfg.gc_min_age_s, err);
    if (removed < 0) {
        pthread_mutex_unlock(&gc_lock);
        return -1;
    }
    /* Deregistered and failed images keep their row (for history and billing), not their
     * bytes: their blobs become unreferenced here, and go once two passes agree. */
    struct gc_pass p = {.d = d};
    PGresult *res = query_gc(d,
                             "UPDATE images SET store_key = NULL, location = NULL, "
                             "stored_bytes = 0, updated_at = now() "
                             "WHERE state IN ('deregistered', 'failed') AND "
                             "(store_key IS NOT NULL OR stored_bytes <> 0)",
                             err);
    if (res) {
        PQclear(res);
        p.used = query_gc(d, USED_KEYS_SQL, err);
    }
    if (!p.used) {
        pthread_mutex_unlock(&gc_lock);
        return -1;
    }
    int rc = img_store_list(d->store, "", gc_consider, &p, err);
    PQclear(p.used);
    /* The previous pass's candidates, sorted: a blob is removed when both passes found it. */
    if (gc_previous.n) {
        qsort(gc_previous.keys, gc_previous.n, sizeof *gc_previous.keys, cmp_key);
    }
    time_t now = time(NULL);
    bool old_enough = gc_previous_at && now - gc_previous_at >= d->cfg.gc_min_age_s;
    for (size_t i = 0; rc == 0 && p.errors == 0 && old_enough && i < p.now.n; i++) {
        bool before = gc_previous.n && bsearch(p.now.keys[i], gc_previous.keys, gc_previous.n,
                                               sizeof *gc_previous.keys, cmp_key);
        struct nb_error derr = {0};
        if (before && img_store_delete(d->store, p.now.keys[i], &derr) == 0) {
            nb_info("collected unreferenced blob %s", p.now.keys[i]);
            removed++;
        }
    }
    if (rc == 0 && p.errors == 0 && (old_enough || !gc_previous_at)) {
        free(gc_previous.keys);
        gc_previous = p.now;
        gc_previous_at = now;
    } else {
        free(p.now.keys);
    }
    pthread_mutex_unlock(&gc_lock);
    if (rc < 0) {
        return -1;
    }
    atomic_fetch_add(&d->gc_removed, removed);
    return removed;
}

static void *collector_main(void *arg)
{
    struct imaged *d = arg;
    time_t next = 0;
    while (!atomic_load(&d->stopping)) {
        if (d->cfg.gc_interval_s > 0 && time(NULL) >= next) {
            struct nb_error err = {0};
            int n = imaged_gc(d, &err);
            if (n < 0) {
                nb_warn("garbage collection failed: %s", err.msg);
            } else if (n > 0) {
                nb_info("garbage collection removed %d object(s)", n);
            }
            next = time(NULL) + d->cfg.gc_interval_s;
        }
        usleep(200 * 1000);
    }
    return NULL;
}

/* --- life cycle ------------------------------------------------------------------------------ */

struct imaged *imaged_new(const struct imaged_config *c, struct img_store *store,
                          struct nb_pg_pool *pool, const uint8_t url_key[IMG_URL_KEY_LEN],
                          struct nb_error *err)
{
    struct imaged *d = calloc(1, sizeof *d);
    if (!d) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        img_store_close(store);
        nb_pg_pool_free(pool);
        return NULL;
    }
    d->cfg = *c;
    d->store = store;
    d->pool = pool;
    memcpy(d->url_key, url_key, IMG_URL_KEY_LEN);
    snprintf(d->conninfo, sizeof d->conninfo, "%s", c->conninfo);
    snprintf(d->spool_dir, sizeof d->spool_dir, "%s", c->spool_dir);
    snprintf(d->address, sizeof d->address, "%s", c->address);
    d->cfg.conninfo = d->conninfo;
    d->cfg.spool_dir = d->spool_dir;
    d->cfg.address = d->address;
    snprintf(d->import_url_prefixes, sizeof d->import_url_prefixes, "%s",
             c->import_url_prefixes ? c->import_url_prefixes : "");
    d->cfg.import_url_prefixes = d->import_url_prefixes;
    if (c->public_url) {
        snprintf(d->public_url, sizeof d->public_url, "%s", c->public_url);
    } else {
        snprintf(d->public_url, sizeof d->public_url, "http://%s:%d", c->address, c->port);
    }
    d->cfg.public_url = d->public_url;
    if (mkdir(d->spool_dir, 0700) < 0 && access(d->spool_dir, W_OK) < 0) {
        nb_error_errno(err, errno, "cannot use spool directory %s", d->spool_dir);
        imaged_free(d);
        return NULL;
    }
    return d;
}

int imaged_start(struct imaged *d, struct nb_error *err)
{
    struct nb_http_config hc = {.address = d->cfg.address,
                                .port = d->cfg.port,
                                .thread_per_connection = true,
                                .timeout_s = 300};
    d->http = nb_http_server_new(&hc, err);
    if (!d->http || nb_http_route(d->http, "GET", "/v1/blobs/*", handle_blob, d) < 0 ||
        nb_http_route(d->http, "GET", "/healthz", handle_healthz, d) < 0 ||
        nb_http_route(d->http, "GET", "/metrics", handle_metrics, d) < 0 ||
        nb_http_server_start(d->http, err) < 0) {
        if (err && !err->code) {
            nb_error_set(err, NB_ERR_INTERNAL, "could not set up the HTTP server");
        }
        return -1;
    }
    pthread_t *t = calloc((size_t)d->cfg.workers + 1, sizeof *t);
    if (!t) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        return -1;
    }
    d->threads = t;
    for (int i = 0; i < d->cfg.workers; i++) {
        if (pthread_create(&t[d->n_threads], NULL, imaged_worker_main, d) != 0) {
            nb_error_set(err, NB_ERR_INTERNAL, "could not start a task worker");
            return -1;
        }
        d->n_threads++;
    }
    if (pthread_create(&t[d->n_threads], NULL, collector_main, d) != 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not start the collector");
        return -1;
    }
    d->n_threads++;
    return 0;
}

int imaged_port(const struct imaged *d)
{
    return nb_http_server_port(d->http);
}

void imaged_free(struct imaged *d)
{
    if (!d) {
        return;
    }
    atomic_store(&d->stopping, true);
    nb_http_server_stop(d->http);
    pthread_t *t = d->threads;
    for (int i = 0; i < d->n_threads; i++) {
        pthread_join(t[i], NULL);
    }
    free(t);
    nb_http_server_free(d->http);
    img_store_close(d->store);
    nb_pg_pool_free(d->pool);
    pthread_mutex_lock(&gc_lock);
    free(gc_previous.keys);
    gc_previous = (struct gc_seen){0};
    gc_previous_at = 0;
    pthread_mutex_unlock(&gc_lock);
    memset(d->url_key, 0, sizeof d->url_key);
    free(d);
}
