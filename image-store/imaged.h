/* nubo-imaged: the image store's daemon.
 *
 *   - serves image blobs to the compute agents: GET /v1/blobs/KEY?sig=... (signed URLs,
 *     blob_url.h), with HTTP Range; GET /healthz; GET /metrics;
 *   - runs the image tasks the gateway queues in PostgreSQL (image_tasks): import (validate a
 *     VHD, VMDK or OVA whole and convert it to qcow2 with qemu-img), copy, export (to OVA);
 *   - collects garbage: what crashed writers left in the store, and blobs no image or task
 *     refers to any more (failed uploads, deregistered images).
 *
 * Several nubo-imaged may run against one database and store: tasks are claimed with a lease
 * (SELECT ... FOR UPDATE SKIP LOCKED); a worker killed mid-task loses its lease and another
 * takes the task over. */
#ifndef NUBO_IMAGED_H
#define NUBO_IMAGED_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "blob_url.h"

struct nb_config;
struct nb_error;
struct nb_http_server;
struct nb_pg_pool;
struct img_store;
struct imaged;

struct imaged_config {
    const char *conninfo;
    const char *spool_dir;     /* scratch space for conversions (imaged.spool_dir) */
    const char *public_url;    /* base of the blob URLs written into images.location */
    const char *address;       /* http.address */
    int port;                  /* http.port */
    int workers;               /* task threads */
    int lease_s;               /* a task's lease, renewed every third of it */
    int max_attempts;          /* tries of a task before it fails */
    int convert_timeout_s;     /* one qemu-img run */
    int gc_interval_s;         /* 0: no periodic collection */
    int gc_min_age_s;          /* leftovers younger than this are kept (their writer may run) */
    uint64_t max_virtual_size; /* the largest disk an import may expand to */
    const char *import_url_prefixes; /* ImportImage URLs allowed ("" none) */
    uint64_t max_fetch_bytes;        /* the largest file an import fetches from a URL */
};

/* Fills 'c' from the settings (see --help). Returns 0, or -1 with 'err'. */
int imaged_config_load(const struct nb_config *cfg, struct imaged_config *c, struct nb_error *err);

/* Opens the daemon over 'store' and 'pool' (both taken). Returns it, or NULL with 'err'. */
struct imaged *imaged_new(const struct imaged_config *c, struct img_store *store,
                          struct nb_pg_pool *pool, const uint8_t url_key[IMG_URL_KEY_LEN],
                          struct nb_error *err);

/* Starts the HTTP server, the task workers and the collector. Returns 0, or -1 with 'err'. */
int imaged_start(struct imaged *d, struct nb_error *err);

/* The port the HTTP server bound. */
int imaged_port(const struct imaged *d);

/* One garbage collection pass now; returns what it removed, or -1 with 'err'. */
int imaged_gc(struct imaged *d, struct nb_error *err);

/* Stops everything (running tasks finish their current step or are abandoned to their lease)
 * and frees. Accepts NULL. */
void imaged_free(struct imaged *d);

/* --- inside the daemon (imaged_tasks.c) --- */

/* Runs the task loop of one worker until d is stopping. */
void *imaged_worker_main(void *arg);

/* The daemon's shared state, for imaged.c and imaged_tasks.c. */
struct imaged {
    struct imaged_config cfg;
    struct img_store *store;
    struct nb_pg_pool *pool;
    uint8_t url_key[IMG_URL_KEY_LEN];
    struct nb_http_server *http;
    atomic_bool stopping;
    atomic_long tasks_done, tasks_failed, gc_removed, blobs_served;
    int n_threads;
    void *threads; /* pthread_t[workers + 1]: the workers, then the collector */
    char conninfo[1024];
    char spool_dir[512];
    char public_url[256];
    char address[64];
    char import_url_prefixes[512];
};

#endif
