/* nubo-gateway: the public front door of a nubo cloud (EC2 Query API, REST API, console).
 * Parses arguments, loads configuration, runs the gateway until SIGINT/SIGTERM. */
#include "gateway.h"
#include "identity.h"
#include "svc_hosts.h"

#include "nubo/config.h"
#include "nubo/daemon.h"
#include "nubo/error.h"
#include "nubo/log.h"
#include "nubo/pg.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fputs("Usage: nubo-gateway [OPTION]...\n"
          "Serve a nubo cloud's EC2 Query API, REST API and web console over HTTP.\n"
          "\n"
          "  -c, --config FILE        read settings from FILE (\"key = value\" lines)\n"
          "  -s, --set KEY=VALUE      set one setting (beats the environment and the file)\n"
          "      --migrate-only       apply database migrations and exit\n"
          "      --bootstrap-admin FILE\n"
          "                           create the operator account if there is none, write its\n"
          "                           credentials to FILE (mode 0600) as shell variables, exit\n"
          "      --create-tenant NAME create tenant NAME with a member user \"NAME-user\" and one\n"
          "                           access key; with --env-out FILE, write its credentials\n"
          "                           there (else print them), then exit\n"
          "      --create-host NAME   register compute host NAME (or issue it a new node token)\n"
          "                           and write its node token to the --token-out FILE\n"
          "                           (mode 0600; else print it), then exit\n"
          "  -h, --help               show this help and exit\n"
          "\n"
          "Settings (environment NUBO_<KEY>, '.' as '_'; e.g. NUBO_DB_CONNINFO):\n"
          "  db.conninfo      libpq connection string (required)\n"
          "  db.pool_size     database connections (8)\n"
          "  db.migrate       apply migrations at start (true)\n"
          "  db.migrations    migrations directory (deploy/migrations)\n"
          "  http.address     listen address (127.0.0.1)\n"
          "  http.port        listen port (" GW_DEFAULT_PORT ")\n"
          "  http.threads     worker threads (128; each waits for its request-log commit)\n"
          "  http.max_body    request body limit in bytes (1048576)\n"
          "  http.tls_cert, http.tls_key   PEM files to serve HTTPS\n"
          "  http.conn_memory per-connection buffer, bytes; bounds upload pieces (1048576)\n"
          "  store.backend    the image store uploads stream into: file or rados (file)\n"
          "  store.dir        file store directory (var/images); store.ceph_conf,\n"
          "                   store.ceph_user, store.ceph_keyring, store.pool for rados\n"
          "  imaged.url       where compute nodes reach nubo-imaged (http://127.0.0.1:8777)\n"
          "  images.max_bytes largest image upload in bytes (64 GiB)\n"
          "  images.import_url_prefixes  URL prefixes ImportImage may fetch from (none)\n"
          "  master_key       file of the key that seals secrets (var/master.key, created 0600)\n"
          "  console.dir      the web console's static files, served at /console/ (web)\n"
          "  console.session_ttl_s, console.session_idle_s  console session lifetime and idle\n"
          "                   timeout in seconds (43200, 3600)\n"
          "  console.scrypt_log2n, console.kdf_threads  password hashing cost (17) and how many\n"
          "                   at once (2); console.cookie_secure (on with TLS)\n"
          "  console.max_streams, console.keepalive_s  event streams (1000, every 15 s)\n"
          "  console.novnc_dir  noVNC for the VM console, served at /console/novnc/\n"
          "                   (/usr/share/novnc)\n"
          "  console.ticket_ttl_s, console.max_vnc  VM console tickets' lifetime (30 s), and\n"
          "                   consoles proxied at once (256)\n"
          "  vdi.worker_interval_ms  the VDI worker's period (2000; 0: off here)\n"
          "  region           region name served (" GW_DEFAULT_REGION ")\n"
          "  log.level        debug, info, warn or error (info)\n"
          "  log.file         append logs to this file instead of stderr\n"
          "\n"
          "Endpoints: GET /healthz, GET /metrics. See docs/ for the APIs.\n",
          f);
}

/* Writes credentials as a shell-sourceable file readable by its owner only ('path' NULL:
 * standard output). */
static int write_env(const char *path, const struct gw_ctx *gw, const struct gw_new_key *key,
                     struct nb_error *err)
{
    FILE *f = stdout;
    if (path) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
            nb_error_errno(err, errno, "could not create \"%s\"", path);
            return -1;
        }
        f = fdopen(fd, "w");
        if (!f) {
            close(fd);
            nb_error_errno(err, errno, "could not open \"%s\"", path);
            return -1;
        }
    }
    const char *host = strcmp(gw->address, "0.0.0.0") ? gw->address : "127.0.0.1";
    fprintf(f,
            "# nubo credentials, written by nubo-gateway.\n"
            "# Use: . %s && aws ec2 describe-regions --endpoint-url \"$NUBO_ENDPOINT\"\n"
            "export NUBO_ENDPOINT=http://%s:%s\n"
            "export AWS_ACCESS_KEY_ID=%s\n"
            "export AWS_SECRET_ACCESS_KEY=%s\n"
            "export AWS_DEFAULT_REGION=%s\n"
            "export NUBO_ACCESS_KEY=$AWS_ACCESS_KEY_ID\n"
            "export NUBO_SECRET_KEY=$AWS_SECRET_ACCESS_KEY\n",
            path ? path : "FILE", host, nb_config_get(gw->cfg, "http.port", GW_DEFAULT_PORT),
            key->key_id, key->secret, gw->region);
    if (f == stdout) {
        return fflush(f) == 0 ? 0 : -1;
    }
    if (fclose(f) != 0) {
        nb_error_errno(err, errno, "could not write \"%s\"", path);
        return -1;
    }
    return 0;
}

static int bootstrap(struct gw_ctx *gw, const char *path, struct nb_error *err)
{
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, 10000, err);
    if (!conn) {
        return -1;
    }
    struct gw_new_key key;
    bool created;
    int rc = gw_bootstrap_admin(conn, gw->master_key, &key, &created, err);
    nb_pg_release(conn);
    if (rc < 0) {
        return -1;
    }
    if (!created) {
        nb_info("operator account already exists; credentials were shown when it was created");
        return 0;
    }
    if (write_env(path, gw, &key, err) < 0) {
        return -1;
    }
    memset(&key, 0, sizeof key);
    nb_info("created the operator account; credentials written to \"%s\"", path);
    return 0;
}

/* Creates a tenant with one member user and key, for operators without the REST API at hand
 * and for tests. */
/* --create-host: the node token goes to 'path' (mode 0600) or standard output. */
static int create_host(struct gw_ctx *gw, const char *name, const char *path, struct nb_error *err)
{
    char token[160];
    if (gw_host_issue_token(gw, name, nb_config_get(gw->cfg, "zone", NULL), token, err) < 0) {
        return -1;
    }
    if (!path) {
        printf("%s\n", token);
        return 0;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        nb_error_errno(err, errno, "could not create \"%s\"", path);
        return -1;
    }
    dprintf(fd, "%s\n", token);
    close(fd);
    nb_info("host \"%s\" registered; its node token is in %s", name, path);
    return 0;
}

static int create_tenant(struct gw_ctx *gw, const char *name, const char *env_out,
                         struct nb_error *err)
{
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, 10000, err);
    if (!conn) {
        return -1;
    }
    char tenant_id[GW_TENANT_ID_LEN + 1], user_id[64], user_name[300];
    struct gw_new_key key;
    snprintf(user_name, sizeof user_name, "%s-user", name);
    int rc = -1;
    if (nb_pg_begin(conn, err) == 0 && gw_tenant_create(conn, name, tenant_id, err) == 0 &&
        gw_user_create(conn, tenant_id, user_name, "member", user_id, err) == 0 &&
        gw_key_create(conn, gw->master_key, user_id, &key, err) == 0 &&
        nb_pg_commit(conn, err) == 0) {
        rc = write_env(env_out, gw, &key, err);
        if (rc == 0) {
            nb_info("created tenant \"%s\" (%s)", name, tenant_id);
        }
    }
    nb_pg_release(conn);
    memset(&key, 0, sizeof key);
    return rc;
}

int main(int argc, char **argv)
{
    enum {
        OPT_MIGRATE_ONLY = 256,
        OPT_BOOTSTRAP,
        OPT_CREATE_TENANT,
        OPT_ENV_OUT,
        OPT_CREATE_HOST,
        OPT_TOKEN_OUT
    };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 's'},
        {"migrate-only", no_argument, NULL, OPT_MIGRATE_ONLY},
        {"bootstrap-admin", required_argument, NULL, OPT_BOOTSTRAP},
        {"create-tenant", required_argument, NULL, OPT_CREATE_TENANT},
        {"env-out", required_argument, NULL, OPT_ENV_OUT},
        {"create-host", required_argument, NULL, OPT_CREATE_HOST},
        {"token-out", required_argument, NULL, OPT_TOKEN_OUT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    nb_daemon_block_signals();
    nb_daemon_bound_malloc();
    /* Replies of a few hundred KiB are built and freed on every request: keep them on the heap
     * instead of a fresh mmap() (and its page faults) each time. */
    mallopt(M_MMAP_THRESHOLD, 8 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    struct nb_config *cfg = nb_config_new();
    struct nb_error err = {0};
    const char *bootstrap_path = NULL, *tenant_name = NULL, *env_out = NULL;
    const char *host_name = NULL, *token_out = NULL;
    bool migrate_only = false;
    int rc = 1;
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
        case OPT_MIGRATE_ONLY:
            migrate_only = true;
            break;
        case OPT_BOOTSTRAP:
            bootstrap_path = optarg;
            break;
        case OPT_CREATE_TENANT:
            tenant_name = optarg;
            break;
        case OPT_ENV_OUT:
            env_out = optarg;
            break;
        case OPT_CREATE_HOST:
            host_name = optarg;
            break;
        case OPT_TOKEN_OUT:
            token_out = optarg;
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
        fprintf(stderr, "nubo-gateway: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        nb_config_free(cfg);
        return 2;
    }

    if (nb_daemon_log_init(cfg, "nubo-gateway", &err) < 0) {
        goto fail;
    }

    struct gw_ctx *gw = gw_open(cfg, &err);
    if (!gw) {
        goto fail;
    }
    if (migrate_only) {
        rc = 0;
    } else if (bootstrap_path) {
        rc = bootstrap(gw, bootstrap_path, &err) < 0;
    } else if (tenant_name) {
        rc = create_tenant(gw, tenant_name, env_out, &err) < 0;
    } else if (host_name) {
        rc = create_host(gw, host_name, token_out, &err) < 0;
    } else if (gw_start(gw, &err) == 0) {
        nb_info("listening on http://%s:%d/ (region %s)", gw->address, gw->port, gw->region);
        int sig = nb_daemon_wait_signal();
        nb_info("received %s, stopping", strsignal(sig));
        gw_stop(gw);
        rc = 0;
    }
    gw_close(gw);
    if (rc == 0) {
        nb_config_free(cfg);
        return 0;
    }

fail:
    nb_err("%s%s%s", err.msg, err.detail[0] ? "; " : "", err.detail);
    nb_config_free(cfg);
    return 1;
}
