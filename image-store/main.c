/* nubo-imaged: the image store's daemon (imaged.h). Parses arguments, loads configuration,
 * opens the store and the database, and runs until SIGINT/SIGTERM; or collects garbage once
 * (--gc) and exits. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "imaged.h"
#include "nubo/config.h"
#include "nubo/crypto.h"
#include "nubo/daemon.h"
#include "nubo/error.h"
#include "nubo/httpc.h"
#include "nubo/log.h"
#include "nubo/pg.h"
#include "store.h"

static void usage(FILE *f)
{
    fputs("Usage: nubo-imaged [OPTION]...\n"
          "Keep the cloud's machine images: serve them to compute nodes, import, copy and\n"
          "export them, and collect what failed uploads leave behind.\n"
          "\n"
          "  -c, --config FILE        read settings from FILE (\"key = value\" lines)\n"
          "  -s, --set KEY=VALUE      set one setting (beats the environment and the file)\n"
          "      --gc                 collect garbage once, print how much, and exit\n"
          "  -h, --help               show this help and exit\n"
          "\n"
          "Settings (environment NUBO_<KEY>, '.' as '_'; e.g. NUBO_DB_CONNINFO):\n"
          "  db.conninfo              libpq connection string (required)\n"
          "  master_key               the cloud's master key file; blob URLs are signed with a\n"
          "                           key derived from it (var/master.key)\n"
          "  store.backend            file or rados (file)\n"
          "  store.dir                file: the directory (var/images)\n"
          "  store.ceph_conf          rados: ceph.conf path\n"
          "  store.ceph_user          rados: client id without \"client.\" (admin)\n"
          "  store.ceph_keyring       rados: keyring path (from ceph.conf when unset)\n"
          "  store.pool               rados: the pool (nubo-images)\n"
          "  store.rados_window       rados: 1 MiB writes in flight per upload (4)\n"
          "  http.address, http.port  where agents fetch blobs (127.0.0.1, 8777)\n"
          "  imaged.url               the base URL written into images.location\n"
          "                           (http://ADDRESS:PORT)\n"
          "  imaged.workers           task threads (2)\n"
          "  imaged.spool_dir         scratch space for conversions (var/imaged-spool)\n"
          "  imaged.lease_s           a task's lease, renewed while it runs (60)\n"
          "  imaged.max_attempts      tries of a task that fails for other reasons than its\n"
          "                           input (3)\n"
          "  imaged.convert_timeout_s one qemu-img run (3600)\n"
          "  imaged.max_virtual_size  largest disk an import may expand to, bytes (1 TiB)\n"
          "  images.import_url_prefixes  comma-separated URL prefixes EC2 ImportImage may\n"
          "                           fetch from (none: imports from URLs are off)\n"
          "  images.max_bytes         the largest file fetched from a URL (64 GiB)\n"
          "  gc.interval_s            collect garbage this often; 0 never (300)\n"
          "  gc.min_age_s             leave leftovers younger than this (3600)\n"
          "  log.level, log.file      as for every nubo daemon\n"
          "\n"
          "See docs/image-store.md.\n",
          f);
}

int main(int argc, char **argv)
{
    enum { OPT_GC = 256 };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 's'},
        {"gc", no_argument, NULL, OPT_GC},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    nb_daemon_block_signals();
    nb_daemon_bound_malloc();
    xmlInitParser();
    nb_httpc_global_init(); /* ImportImage fetches with libcurl */
    struct nb_config *cfg = nb_config_new();
    struct nb_error err = {0};
    bool gc_once = false;
    int c;
    while ((c = getopt_long(argc, argv, "c:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            if (nb_config_load_file(cfg, optarg, &err) < 0) {
                goto fail;
            }
            break;
        case 's':
            if (nb_config_set_arg(cfg, optarg, &err) < 0) {
                goto fail;
            }
            break;
        case OPT_GC:
            gc_once = true;
            break;
        case 'h':
            usage(stdout);
            nb_config_free(cfg);
            return 0;
        default:
            usage(stderr);
            nb_config_free(cfg);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "nubo-imaged: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        nb_config_free(cfg);
        return 2;
    }
    if (nb_daemon_log_init(cfg, "nubo-imaged", &err) < 0) {
        goto fail;
    }
    struct imaged_config ic;
    if (imaged_config_load(cfg, &ic, &err) < 0) {
        goto fail;
    }
    uint8_t master[NB_MASTER_KEY_LEN], url_key[IMG_URL_KEY_LEN];
    if (nb_master_key_load(nb_config_get(cfg, "master_key", "var/master.key"), false, master,
                           &err) < 0) {
        goto fail;
    }
    img_blob_url_key(master, url_key);
    memset(master, 0, sizeof master);
    struct img_store *store = img_store_open_config(cfg, &err);
    if (!store) {
        goto fail;
    }
    struct nb_pg_pool *pool = nb_pg_pool_new(ic.conninfo, ic.workers + 3, &err);
    if (!pool) {
        img_store_close(store);
        goto fail;
    }
    struct imaged *d = imaged_new(&ic, store, pool, url_key, &err);
    memset(url_key, 0, sizeof url_key);
    if (!d) {
        goto fail;
    }
    if (gc_once) {
        int n = imaged_gc(d, &err);
        /* A blob is collected only when two passes found it unreferenced. */
        int m = n < 0 ? -1 : imaged_gc(d, &err);
        imaged_free(d);
        if (m < 0) {
            goto fail;
        }
        printf("collected %d object(s)\n", n + m);
        nb_config_free(cfg);
        return 0;
    }
    if (imaged_start(d, &err) < 0) {
        imaged_free(d);
        goto fail;
    }
    nb_info("nubo-imaged serving blobs on %s:%d (%s store), %d task worker(s)", ic.address,
            imaged_port(d), img_store_backend(store), ic.workers);
    int sig = nb_daemon_wait_signal();
    nb_info("signal %d: stopping", sig);
    imaged_free(d);
    nb_config_free(cfg);
    xmlCleanupParser();
    return 0;

fail:
    nb_err("nubo-imaged: %s%s%s", err.msg, err.detail[0] ? ": " : "", err.detail);
    nb_config_free(cfg);
    return 1;
}
