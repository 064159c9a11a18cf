/* nubo-gateway: the context every module of the gateway shares, and its life cycle.
 *
 * main.c loads the configuration and calls gw_open(), gw_start(), waits for a signal, then
 * gw_stop() and gw_close(). Modules receive the context and never reach for globals. */
#ifndef NUBO_GATEWAY_H
#define NUBO_GATEWAY_H

#include <stdint.h>

#include "nubo/crypto.h"

struct gw_auth;
struct gw_console;
struct gw_events;
struct gw_sessions;
struct gw_vdi_worker;
struct gw_reqlog;
struct nb_config;
struct nb_counter;
struct nb_error;
struct nb_histogram;
struct nb_http_server;
struct nb_metrics;
struct nb_pg_pool;
struct img_store;

struct gw_ctx {
    const struct nb_config *cfg; /* borrowed from main */
    struct nb_pg_pool *pool;
    struct nb_http_server *http;
    struct nb_metrics *metrics;
    struct gw_auth *auth;
    struct gw_reqlog *reqlog;
    uint8_t master_key[NB_MASTER_KEY_LEN];
    char region[64];    /* the one region this gateway serves, e.g. "nubo-1" */
    char address[64];   /* listen address */
    int port;           /* bound port, once started */
    char endpoint[128]; /* host[:port] clients reach us at, shown by DescribeRegions */
    /* The image store (uploads and downloads stream through it) and how agents reach its
     * blobs: nubo-imaged's URL and the key that signs blob URLs (image-store/blob_url.h). */
    struct img_store *store;
    char imaged_url[256];
    uint8_t url_key[32];
    uint64_t image_max_bytes;      /* the largest upload */
    char import_url_prefixes[512]; /* ImportImage may fetch from these; "" for none */
    /* Metrics updated on every request. */
    struct nb_counter *m_requests;
    struct nb_counter *m_errors;
    struct nb_counter *m_log_failures;
    struct nb_histogram *m_latency;
    /* The web console (console.h): sign-in sessions (from gw_open()), its static files and the
     * event stream (from gw_start()). */
    struct gw_sessions *sessions;
    struct gw_console *console;
    struct gw_events *events;
    /* The VDI worker (svc_vdi.h), from gw_start(). */
    struct gw_vdi_worker *vdi;
};

/* Configuration keys (documented in docs/configuration.md and --help). */
#define GW_DEFAULT_PORT       "8773"
#define GW_DEFAULT_REGION     "nubo-1"
#define GW_DEFAULT_MIGRATIONS "deploy/migrations"

/* Opens the context: master key, database pool, migrations, metrics. Returns a new context the
 * caller frees with gw_close(), or NULL with 'err' set. */
struct gw_ctx *gw_open(const struct nb_config *cfg, struct nb_error *err);

/* Creates the HTTP server, registers every route, and starts listening. Returns 0 or -1. */
int gw_start(struct gw_ctx *gw, struct nb_error *err);

/* Stops serving: in-flight requests complete. Idempotent. */
void gw_stop(struct gw_ctx *gw);

/* Frees everything. Accepts NULL. */
void gw_close(struct gw_ctx *gw);

#endif
