/* nubo-agent: context, start-up, heartbeats and reconcile. See agent.h. */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "disks.h"
#include "imgcache.h"
#include "virt.h"

#include "nubo/clock.h"
#include "nubo/config.h"
#include "nubo/error.h"
#include "nubo/http.h"
#include "nubo/httpc.h"
#include "nubo/json.h"
#include "nubo/log.h"
#include "nubo/metrics.h"

/* --- control-plane calls ---------------------------------------------------------------------- */

/* Calls the control plane's node API: 'method' 'path' with 'body' (may be NULL). Returns the
 * parsed JSON answer (new reference) of a 200, or NULL with 'err' set. */
static json_t *cp_call(struct agent_ctx *a, const char *method, const char *path,
                       const json_t *body, struct nb_error *err)
{
    char url[512], auth[200];
    snprintf(url, sizeof url, "%s%s", a->control_url, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", a->token);
    const char *headers[] = {auth, "Content-Type: application/json", NULL};
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct nb_httpc_request rq = {.method = method,
                                  .url = url,
                                  .headers = headers,
                                  .body = text,
                                  .body_len = text ? strlen(text) : 0,
                                  .timeout_ms = 10000,
                                  .max_retries = 2,
                                  .retry_unsafe = true}; /* heartbeats are idempotent */
    struct nb_httpc_response resp = {0};
    json_t *out = NULL;
    if (nb_httpc_do(&rq, &resp, err) == 0) {
        if (resp.status == 200) {
            out = nb_json_parse_object(resp.body, resp.body_len, err);
        } else {
            char why[256];
            nb_error_set(err, resp.status == 401 ? NB_ERR_AUTH : NB_ERR_UNAVAILABLE,
                         "control plane answered %ld to %s %s: %s", resp.status, method, path,
                         nb_json_error_text(resp.body, resp.body_len, why, sizeof why));
        }
    }
    nb_httpc_response_free(&resp);
    free(text);
    return out;
}

/* The heartbeat's report: capacity from libvirt and the state directory's file system, and the
 * per-instance counters from libvirt's bulk stats. */
static json_t *build_report(struct agent_ctx *a)
{
    struct nb_error err = {0};
    json_t *report =
        json_pack("{s:s, s:s}", "agent_url", a->advertise_url, "virt_type", a->virt_type);
    struct agent_virt_node node;
    if (agent_virt_node_info(a->virt, &node, &err) == 0) {
        struct statvfs fs;
        long long disk_gib = 0;
        if (statvfs(a->state_dir, &fs) == 0) {
            disk_gib = (long long)((double)fs.f_blocks * fs.f_frsize / (1024.0 * 1024 * 1024));
        }
        json_object_set_new(report, "capacity",
                            json_pack("{s:i, s:I, s:I}", "vcpus", (int)node.cpus, "memory_mib",
                                      (json_int_t)node.memory_mib, "disk_gib",
                                      (json_int_t)disk_gib));
    } else {
        nb_warn("heartbeat without capacity: %s", err.msg);
    }
    json_t *stats = json_object();
    double load[1];
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (getloadavg(load, 1) == 1 && ncpu > 0) {
        double l = load[0] / (double)ncpu;
        json_object_set_new(stats, "cpu_load", json_real(l > 1.0 ? 1.0 : l));
    }
    struct agent_virt_stats *st = NULL;
    size_t n = 0;
    json_t *inst = json_array();
    if (agent_virt_stats(a->virt, &st, &n, &err) == 0) {
        for (size_t i = 0; i < n; i++) {
            /* Only this agent's domains: several agents may share one libvirtd. */
            if (st[i].host[0] && strcmp(st[i].host, a->host_id)) {
                continue;
            }
            json_array_append_new(inst,
                                  json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "id",
                                            st[i].id, "state", agent_virt_state_name(st[i].state),
                                            "cpu_time_ns", (json_int_t)st[i].cpu_time_ns,
                                            "memory_kib", (json_int_t)st[i].memory_kib,
                                            "block_rd_bytes", (json_int_t)st[i].block_rd_bytes,
                                            "block_wr_bytes", (json_int_t)st[i].block_wr_bytes,
                                            "net_rx_bytes", (json_int_t)st[i].net_rx_bytes,
                                            "net_tx_bytes", (json_int_t)st[i].net_tx_bytes));
        }
        free(st);
    }
    json_object_set_new(stats, "instances", inst);
    nb_gauge_set(nb_metrics_gauge(a->metrics, "nubo_agent_domains",
                                  "nubo domains on this node at the last heartbeat", NULL),
                 (int64_t)json_array_size(inst));
    pthread_mutex_lock(&a->stop_mu);
    if (a->drift) {
        json_object_set(stats, "drift", a->drift);
    }
    pthread_mutex_unlock(&a->stop_mu);
    json_object_set_new(report, "stats", stats);
    return report;
}

static int heartbeat(struct agent_ctx *a, struct nb_error *err)
{
    json_t *report = build_report(a);
    json_t *reply = cp_call(a, "POST", "/internal/v1/heartbeat", report, err);
    json_decref(report);
    if (!reply) {
        return -1;
    }
    json_t *iv = json_object_get(reply, "heartbeat_interval_s");
    if (json_is_integer(iv) && json_integer_value(iv) > 0 && json_integer_value(iv) < 3600) {
        long long cfg_ms = 0;
        nb_config_get_int(a->cfg, "agent.heartbeat_ms", 0, 0, 3600000, &cfg_ms, NULL);
        a->heartbeat_ms = cfg_ms ? (int)cfg_ms : (int)json_integer_value(iv) * 1000;
    }
    json_decref(reply);
    return 0;
}

static void *heartbeat_main(void *arg)
{
    struct agent_ctx *a = arg;
    bool failing = false;
    pthread_mutex_lock(&a->stop_mu);
    while (!atomic_load(&a->stopping)) {
        struct timespec until = nb_monotonic_after(a->heartbeat_ms);
        pthread_cond_timedwait(&a->stop_cond, &a->stop_mu, &until);
        if (atomic_load(&a->stopping)) {
            break;
        }
        pthread_mutex_unlock(&a->stop_mu);
        struct nb_error err = {0};
        if (heartbeat(a, &err) < 0) {
            if (!failing) {
                nb_warn("heartbeat failed (will keep trying): %s", err.msg);
            }
            failing = true;
        } else if (failing) {
            nb_info("heartbeats reach the control plane again");
            failing = false;
        }
        pthread_mutex_lock(&a->stop_mu);
    }
    pthread_mutex_unlock(&a->stop_mu);
    return NULL;
}

/* --- reconcile -------------------------------------------------------------------------------- */

static void drift(json_t *arr, const char *id, const char *found, const char *action)
{
    nb_warn("reconcile: instance %s: %s; %s", id, found, action);
    json_array_append_new(
        arr, json_pack("{s:s, s:s, s:s}", "instance_id", id, "found", found, "action", action));
}

static const json_t *find_wanted(const json_t *wanted, const char *id)
{
    size_t i;
    json_t *w;
    json_array_foreach(wanted, i, w)
    {
        const char *wid = json_string_value(json_object_get(w, "id"));
        if (wid && !strcmp(wid, id)) {
            return w;
        }
    }
    return NULL;
}

json_t *agent_reconcile(struct agent_ctx *a, struct nb_error *err)
{
    json_t *reply = cp_call(a, "GET", "/internal/v1/instances", NULL, err);
    if (!reply) {
        return NULL;
    }
    const json_t *wanted = json_object_get(reply, "instances");
    struct agent_virt_domain *doms = NULL;
    size_t n = 0;
    if (agent_virt_list(a->virt, &doms, &n, err) < 0) {
        json_decref(reply);
        return NULL;
    }
    json_t *found = json_array();
    struct agent_disks_config dc = {.state_dir = a->state_dir};
    /* Domains: unknown ones go; known ones are left alone, except a running instance whose
     * domain is shut off (the node rebooted, or QEMU died while we were away), which starts. */
    for (size_t i = 0; i < n; i++) {
        if (doms[i].host[0] && strcmp(doms[i].host, a->host_id)) {
            /* Another agent's (several may share one libvirtd, e.g. test environments). */
            continue;
        }
        const json_t *w = find_wanted(wanted, doms[i].id);
        pthread_mutex_t *mu = agent_lock_of(a, doms[i].id);
        pthread_mutex_lock(mu);
        struct nb_error e = {0};
        if (!w) {
            drift(found, doms[i].id, "a domain the control plane does not place here",
                  "destroyed with its disks");
            if (agent_virt_terminate(a->virt, doms[i].id, &e) < 0 ||
                agent_unplug_saved(a, doms[i].id, &e) < 0 ||
                agent_disks_remove(&dc, doms[i].id, &e) < 0) {
                nb_err("reconcile: could not remove instance %s: %s", doms[i].id, e.msg);
            }
        } else {
            const char *state = json_string_value(json_object_get(w, "state"));
            const json_t *op = json_object_get(w, "pending_op");
            if (state && !strcmp(state, "running") && json_is_null(op) &&
                doms[i].state != AGENT_VIRT_RUNNING) {
                drift(found, doms[i].id, agent_virt_state_name(doms[i].state),
                      "started (the control plane has it running)");
                if (agent_plug_saved(a, doms[i].id, &e) < 0 ||
                    agent_virt_start(a->virt, doms[i].id, &e) < 0) {
                    nb_err("reconcile: could not start instance %s: %s", doms[i].id, e.msg);
                }
            } else if (doms[i].state == AGENT_VIRT_RUNNING &&
                       agent_plug_saved(a, doms[i].id, &e) < 0) {
                /* Its taps into Open vSwitch again (idempotent): the bridge may have been
                 * made anew while the agent was away. */
                nb_err("reconcile: instance %s: %s%s%s", doms[i].id, e.msg, e.detail[0] ? ": " : "",
                       e.detail);
            }
        }
        pthread_mutex_unlock(mu);
    }
    /* Wanted instances without a domain: a pending operation (spawn) is the scheduler's to
     * retry; a running one without a domain has lost it, which the scheduler sees in the
     * heartbeat's drift report. */
    size_t k;
    json_t *w;
    json_array_foreach(wanted, k, w)
    {
        const char *id = json_string_value(json_object_get(w, "id"));
        const char *state = json_string_value(json_object_get(w, "state"));
        bool have = false;
        for (size_t i = 0; i < n && !have; i++) {
            have = id && !strcmp(doms[i].id, id);
        }
        if (id && !have && state && !strcmp(state, "running") &&
            json_is_null(json_object_get(w, "pending_op"))) {
            drift(found, id, "no domain for a running instance", "reported");
        }
    }
    /* Instance directories that belong to no wanted instance: disks left by a crash. */
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/instances", a->state_dir);
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (!agent_virt_valid_id(de->d_name) || find_wanted(wanted, de->d_name)) {
            continue;
        }
        bool dom = false;
        for (size_t i = 0; i < n && !dom; i++) {
            dom = !strcmp(doms[i].id, de->d_name);
        }
        if (!dom) {
            struct nb_error e = {0};
            drift(found, de->d_name, "disks of an instance not placed here", "removed");
            if (agent_unplug_saved(a, de->d_name, &e) < 0 ||
                agent_disks_remove(&dc, de->d_name, &e) < 0) {
                nb_err("reconcile: %s", e.msg);
            }
        }
    }
    if (d) {
        closedir(d);
    }
    free(doms);
    json_decref(reply);
    return found;
}

/* --- context ---------------------------------------------------------------------------------- */

void agent_count(struct agent_ctx *a, const char *op, bool ok, double seconds)
{
    char labels[96];
    snprintf(labels, sizeof labels, "op=\"%s\",outcome=\"%s\"", op, ok ? "ok" : "error");
    nb_counter_add(nb_metrics_counter(a->metrics, "nubo_agent_operations_total",
                                      "Instance operations carried out, by outcome", labels),
                   1);
    if (ok && !strcmp(op, "spawn")) {
        nb_histogram_observe(nb_metrics_histogram(a->metrics, "nubo_agent_spawn_seconds",
                                                  "From the spawn request to a running domain",
                                                  NULL),
                             seconds);
    }
}

struct agent_virt *agent_virt_pick(struct agent_ctx *a)
{
    return a->virts[atomic_fetch_add(&a->next_virt, 1) % AGENT_VIRT_CONNS];
}

pthread_mutex_t *agent_lock_of(struct agent_ctx *a, const char *id)
{
    pthread_mutex_lock(&a->locks_mu);
    struct agent_lock *l = a->locks;
    while (l && strcmp(l->id, id)) {
        l = l->next;
    }
    if (!l) {
        l = calloc(1, sizeof *l);
        if (!l) {
            abort();
        }
        snprintf(l->id, sizeof l->id, "%s", id);
        pthread_mutex_init(&l->mu, NULL);
        l->next = a->locks;
        a->locks = l;
    }
    pthread_mutex_unlock(&a->locks_mu);
    return &l->mu;
}

void agent_instance_dir(const struct agent_ctx *a, const char *id, char *out)
{
    snprintf(out, PATH_MAX, "%s/instances/%s", a->state_dir, id);
}

/* The image cache's pin check: an image stays while an instance's spec names its digest. */
static bool image_in_use(const char *sha256, void *arg)
{
    const struct agent_ctx *a = arg;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/instances", a->state_dir);
    DIR *d = opendir(dir);
    struct dirent *de;
    bool used = false;
    while (d && !used && (de = readdir(d))) {
        if (de->d_name[0] == '.') {
            continue;
        }
        char path[PATH_MAX + 300], buf[16384];
        snprintf(path, sizeof path, "%s/%s/spec.json", dir, de->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            size_t len = fread(buf, 1, sizeof buf - 1, f);
            buf[len] = '\0';
            used = strstr(buf, sha256) != NULL;
            fclose(f);
        }
    }
    if (d) {
        closedir(d);
    }
    return used;
}

/* Reads the node token: agent.token, or the first line of the file agent.token_file. */
static int load_token(struct agent_ctx *a, struct nb_error *err)
{
    const char *token = nb_config_get(a->cfg, "agent.token", NULL);
    const char *file = nb_config_get(a->cfg, "agent.token_file", NULL);
    char line[sizeof a->token] = "";
    if (!token && file) {
        FILE *f = fopen(file, "r");
        if (!f) {
            nb_error_errno(err, errno, "could not open the node token file \"%s\"", file);
            return -1;
        }
        if (!fgets(line, sizeof line, f)) {
            line[0] = '\0';
        }
        fclose(f);
        line[strcspn(line, "\r\n")] = '\0';
        token = line;
    }
    const char *colon = token ? strchr(token, ':') : NULL;
    if (!colon || colon - token >= (long)sizeof a->host_id || strlen(token) >= sizeof a->token) {
        nb_error_set(err, NB_ERR_INVALID,
                     "agent.token (or agent.token_file) must hold the node token "
                     "\"h-...:...\" shown when the host was registered");
        return -1;
    }
    snprintf(a->token, sizeof a->token, "%s", token);
    snprintf(a->host_id, sizeof a->host_id, "%.*s", (int)(colon - token), token);
    return 0;
}

struct agent_ctx *agent_open(const struct nb_config *cfg, struct nb_error *err)
{
    struct agent_ctx *a = calloc(1, sizeof *a);
    if (!a) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    a->cfg = cfg;
    a->metrics = nb_metrics_new();
    pthread_mutex_init(&a->locks_mu, NULL);
    pthread_mutex_init(&a->stop_mu, NULL);
    /* Heartbeats wait on the monotonic clock: setting the wall clock does not shift them. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->stop_cond, &ca);
    pthread_condattr_destroy(&ca);
    long long grace_s, cache_mib, timeout_s, hb_ms;
    if (load_token(a, err) < 0 ||
        nb_config_get_int(cfg, "agent.stop_grace_s", 30, 0, 3600, &grace_s, err) < 0 ||
        nb_config_get_int(cfg, "agent.image_cache_mib", 20480, 1, 1LL << 30, &cache_mib, err) < 0 ||
        nb_config_get_int(cfg, "libvirt.timeout_s", 30, 1, 3600, &timeout_s, err) < 0 ||
        nb_config_get_int(cfg, "agent.heartbeat_ms", 5000, 100, 3600000, &hb_ms, err) < 0) {
        goto fail;
    }
    a->stop_grace_ms = (int)grace_s * 1000;
    a->heartbeat_ms = (int)hb_ms;
    const char *control = nb_config_get(cfg, "agent.control_url", NULL);
    if (!control) {
        nb_error_set(err, NB_ERR_MISSING,
                     "agent.control_url (the gateway's URL, e.g. http://127.0.0.1:8773) is not "
                     "set");
        goto fail;
    }
    snprintf(a->control_url, sizeof a->control_url, "%s", control);
    snprintf(a->state_dir, sizeof a->state_dir, "%s",
             nb_config_get(cfg, "agent.state_dir", "/var/lib/nubo/agent"));
    snprintf(a->vnc_listen, sizeof a->vnc_listen, "%s",
             nb_config_get(cfg, "agent.vnc_listen", "127.0.0.1"));
    snprintf(a->ovs_bridge, sizeof a->ovs_bridge, "%s",
             nb_config_get(cfg, "agent.bridge", "br-int"));
    snprintf(a->ovs_rundir, sizeof a->ovs_rundir, "%s", nb_config_get(cfg, "ovs.rundir", ""));
    char sub[PATH_MAX];
    snprintf(sub, sizeof sub, "%s/instances", a->state_dir);
    if (agent_disks_make_dir(sub, err) < 0) {
        goto fail;
    }
    snprintf(sub, sizeof sub, "%s/images", a->state_dir);
    struct agent_imgcache_config icfg = {.dir = sub,
                                         .max_bytes = (uint64_t)cache_mib * 1024 * 1024,
                                         .in_use = image_in_use,
                                         .in_use_arg = a};
    if (!(a->cache = agent_imgcache_open(&icfg, err))) {
        goto fail;
    }
    struct agent_virt_config vcfg = {.uri = nb_config_get(cfg, "libvirt.uri", "qemu:///system"),
                                     .call_timeout_ms = (long)timeout_s * 1000};
    for (int i = 0; i < AGENT_VIRT_CONNS; i++) {
        if (!(a->virts[i] = agent_virt_open(&vcfg, err))) {
            goto fail;
        }
    }
    a->virt = a->virts[0];
    agent_virt_set_probe_guest(a->virt, nb_config_get(cfg, "agent.kvm_probe_kernel", NULL),
                               nb_config_get(cfg, "agent.kvm_probe_initrd", NULL),
                               nb_config_get(cfg, "agent.kvm_probe_marker", NULL));
    snprintf(a->virt_type, sizeof a->virt_type, "%s",
             agent_virt_choose_type(a->virt, nb_config_get(cfg, "agent.virt_type", "auto"),
                                    a->state_dir, 0));
    nb_info("agent %s: libvirt %s, domains of type %s, state in %s", a->host_id,
            agent_virt_uri(a->virt), a->virt_type, a->state_dir);
    return a;

fail:
    agent_close(a);
    return NULL;
}

int agent_start(struct agent_ctx *a, struct nb_error *err)
{
    long long port, threads;
    if (nb_config_get_int(a->cfg, "http.port", atoi(AGENT_DEFAULT_PORT), 0, 65535, &port, err) <
            0 ||
        nb_config_get_int(a->cfg, "http.threads", 32, 1, 1024, &threads, err) < 0) {
        return -1;
    }
    const char *address = nb_config_get(a->cfg, "http.address", "127.0.0.1");
    struct nb_http_config hc = {.address = address,
                                .port = (int)port,
                                .threads = (int)threads,
                                .max_body = 1 << 20,
                                .timeout_s = 600,
                                .thread_per_connection = true};
    if (!(a->http = nb_http_server_new(&hc, err)) || agent_http_routes(a, a->http) < 0 ||
        nb_http_server_start(a->http, err) < 0) {
        if (!err->code) {
            nb_error_set(err, NB_ERR_INTERNAL, "could not set up the agent's HTTP routes");
        }
        return -1;
    }
    a->port = nb_http_server_port(a->http);
    const char *adv = nb_config_get(a->cfg, "agent.url", NULL);
    if (adv) {
        snprintf(a->advertise_url, sizeof a->advertise_url, "%s", adv);
    } else {
        snprintf(a->advertise_url, sizeof a->advertise_url, "http://%s:%d",
                 strcmp(address, "0.0.0.0") ? address : "127.0.0.1", a->port);
    }
    /* The first heartbeat registers the URL and capacity; reconcile needs the control plane's
     * view, so the agent does not serve half-known state: both must work before it goes on. */
    if (heartbeat(a, err) < 0) {
        return -1;
    }
    json_t *found = agent_reconcile(a, err);
    if (!found) {
        return -1;
    }
    nb_info("agent %s listening on %s; reconcile found %zu differences", a->host_id,
            a->advertise_url, json_array_size(found));
    pthread_mutex_lock(&a->stop_mu);
    json_decref(a->drift);
    a->drift = found;
    pthread_mutex_unlock(&a->stop_mu);
    if (pthread_create(&a->heartbeat_thread, NULL, heartbeat_main, a) != 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not start the heartbeat thread");
        return -1;
    }
    a->heartbeat_started = true;
    return 0;
}

void agent_stop(struct agent_ctx *a)
{
    if (!a) {
        return;
    }
    pthread_mutex_lock(&a->stop_mu);
    atomic_store(&a->stopping, true);
    pthread_cond_broadcast(&a->stop_cond);
    pthread_mutex_unlock(&a->stop_mu);
    if (a->heartbeat_started) {
        pthread_join(a->heartbeat_thread, NULL);
        a->heartbeat_started = false;
    }
    if (a->http) {
        nb_http_server_stop(a->http);
    }
}

void agent_close(struct agent_ctx *a)
{
    if (!a) {
        return;
    }
    agent_stop(a);
    nb_http_server_free(a->http);
    for (int i = 0; i < AGENT_VIRT_CONNS; i++) {
        agent_virt_close(a->virts[i]);
    }
    agent_imgcache_close(a->cache);
    json_decref(a->drift);
    nb_metrics_free(a->metrics);
    for (struct agent_lock *l = a->locks, *next; l; l = next) {
        next = l->next;
        pthread_mutex_destroy(&l->mu);
        free(l);
    }
    pthread_mutex_destroy(&a->locks_mu);
    pthread_mutex_destroy(&a->stop_mu);
    pthread_cond_destroy(&a->stop_cond);
    free(a);
}
