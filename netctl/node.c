/* nubo-netctl's loop on a compute node (node.h). */
#include "node.h"

#include "flows.h"
#include "model.h"
#include "ovs.h"
#include "svc.h"
#include "vpn.h"
#include "wg.h"
#include "nubo/buf.h"
#include "nubo/config.h"
#include "nubo/error.h"
#include "nubo/httpc.h"
#include "nubo/json.h"
#include "nubo/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct nc_node {
    char control_url[256];
    char token[160];
    char bridge[32];
    char datapath[16];
    char state_dir[256];
    char host_netns[64];
    uint32_t tunnel_ip;
    char public_if[32];
    int poll_ms;

    struct nc_state *desired;  /* what the control plane wants, or NULL before the first fetch */
    long long applied;         /* version last applied, -1 none */
    bool dirty;                /* desired changed since the last apply */
    struct nc_flows installed; /* what the bridge has (cookies; specs when we put them there) */
    bool installed_known;      /* false: read them back from the bridge first */
    struct nc_ofmap ports;     /* the bridge's ports at the last compile */
    long long ports_cfg;       /* OVS cur_cfg when they were read, -1 unknown */
    long long ports_read_ms;   /* when; they are read again at least every 30 s */
    size_t reported_missing;   /* ports_missing as last told to the control plane */
    size_t ports_missing; /* ports of the desired state not on the bridge at the last compile */
    size_t last_added, last_deleted;
    long long last_probe_ms;
    long long last_vpn_check_ms;
    char *last_vpn_report; /* the VPN states the control plane has, as sent */
    struct nc_svc *svc;    /* DHCP and metadata service namespaces */

    pthread_t thread;
    atomic_bool stop;
    bool started;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int load_token(struct nc_node *n, const struct nb_config *cfg, struct nb_error *err)
{
    const char *token = nb_config_get(cfg, "netctl.token", NULL);
    const char *file = nb_config_get(cfg, "netctl.token_file", NULL);
    char line[sizeof n->token] = "";
    if (!token && file) {
        FILE *f = fopen(file, "r");
        if (!f) {
            nb_error_errno(err, errno, "could not open the node token file \"%s\"", file);
            return -1;
        }
        if (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = '\0';
        }
        fclose(f);
        token = line;
    }
    if (!token || !strchr(token, ':') || strlen(token) >= sizeof n->token) {
        nb_error_set(err, NB_ERR_INVALID,
                     "netctl.token (or netctl.token_file) must hold the node token \"h-...:...\" "
                     "of this host's registration (the compute agent's)");
        return -1;
    }
    snprintf(n->token, sizeof n->token, "%s", token);
    return 0;
}

struct nc_node *nc_node_open(const struct nb_config *cfg, struct nb_error *err)
{
    struct nc_node *n = calloc(1, sizeof *n);
    long long poll_ms;
    n->applied = -1;
    n->ports_cfg = -1;
    const char *control = nb_config_get(cfg, "netctl.control_url", NULL);
    const char *tip = nb_config_get(cfg, "netctl.tunnel_ip", NULL);
    snprintf(n->bridge, sizeof n->bridge, "%s", nb_config_get(cfg, "netctl.bridge", "br-int"));
    snprintf(n->datapath, sizeof n->datapath, "%s",
             nb_config_get(cfg, "netctl.datapath", "netdev"));
    snprintf(n->state_dir, sizeof n->state_dir, "%s",
             nb_config_get(cfg, "netctl.state_dir", "/var/lib/nubo/netctl"));
    snprintf(n->host_netns, sizeof n->host_netns, "%s",
             nb_config_get(cfg, "netctl.host_netns", ""));
    snprintf(n->public_if, sizeof n->public_if, "%s",
             nb_config_get(cfg, "netctl.public_interface", ""));
    if (nb_config_get_int(cfg, "netctl.poll_ms", 500, 50, 60000, &poll_ms, err) < 0) {
        goto fail;
    }
    n->poll_ms = (int)poll_ms;
    if (strcmp(n->datapath, "netdev") && strcmp(n->datapath, "system")) {
        nb_error_set(err, NB_ERR_INVALID, "netctl.datapath must be netdev or system");
        goto fail;
    }
    if (tip && nc_parse_ip(tip, &n->tunnel_ip) < 0) {
        nb_error_set(err, NB_ERR_INVALID,
                     "netctl.tunnel_ip must be this host's IPv4 address on "
                     "the network between hosts");
        goto fail;
    }
    if (control) {
        snprintf(n->control_url, sizeof n->control_url, "%s", control);
        if (load_token(n, cfg, err) < 0) {
            goto fail;
        }
    }
    const char *rundir = nb_config_get(cfg, "ovs.rundir", NULL);
    if (rundir) {
        setenv("OVS_RUNDIR", rundir, 1);
    }
    n->svc = nc_svc_new(n->bridge, n->host_netns[0] ? n->host_netns : NULL, n->state_dir,
                        n->control_url, n->token);
    return n;

fail:
    free(n);
    return NULL;
}

void nc_node_set_state(struct nc_node *n, struct nc_state *st)
{
    nc_state_free(n->desired);
    n->desired = st;
    n->dirty = true;
}

void nc_node_counts(const struct nc_node *n, size_t *flows, size_t *added, size_t *deleted)
{
    *flows = n->installed.n;
    *added = n->last_added;
    *deleted = n->last_deleted;
}

/* --- control plane ---------------------------------------------------------------------------- */

static int cp_call(struct nc_node *n, const char *method, const char *path, const char *body,
                   struct nb_httpc_response *resp, struct nb_error *err)
{
    char url[512], auth[200];
    snprintf(url, sizeof url, "%s%s", n->control_url, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", n->token);
    const char *headers[] = {auth, "Content-Type: application/json", NULL};
    struct nb_httpc_request rq = {.method = method,
                                  .url = url,
                                  .headers = headers,
                                  .body = body,
                                  .body_len = body ? strlen(body) : 0,
                                  .timeout_ms = 15000,
                                  .max_retries = 1,
                                  .retry_unsafe = true,
                                  .max_response = 256u << 20};
    if (nb_httpc_do(&rq, resp, err) < 0) {
        return -1;
    }
    if (resp->status != 200) {
        char why[256];
        nb_error_set(err, resp->status == 401 ? NB_ERR_AUTH : NB_ERR_UNAVAILABLE,
                     "control plane answered %ld to %s %s: %s", resp->status, method, path,
                     nb_json_error_text(resp->body, resp->body_len, why, sizeof why));
        nb_httpc_response_free(resp);
        return -1;
    }
    return 0;
}

/* Fetches the desired state unless the control plane says it is still version 'known'. */
static int fetch(struct nc_node *n, struct nb_error *err)
{
    char path[160], ip[16];
    long long known = n->desired ? n->desired->version : -1;
    snprintf(path, sizeof path, "/internal/v1/network?known=%lld%s%s", known,
             n->tunnel_ip ? "&tunnel_ip=" : "", n->tunnel_ip ? nc_ip_str(n->tunnel_ip, ip) : "");
    struct nb_httpc_response resp = {0};
    if (cp_call(n, "GET", path, NULL, &resp, err) < 0) {
        return -1;
    }
    int rc = 0;
    if (!strstr(resp.body, "\"unchanged\":true")) {
        struct nc_state *st = nc_state_parse(resp.body, resp.body_len, err);
        if (!st) {
            nb_error_detail(err, "in the desired state from the control plane");
            rc = -1;
        } else {
            nc_node_set_state(n, st);
            rc = 1;
        }
    }
    nb_httpc_response_free(&resp);
    return rc;
}

/* Reports the version applied (or the error of the last pass) and, when not NULL, the state of
 * the VPN gateways served here ('vpns', taken). Returns 0 once the control plane has it. */
static int report(struct nc_node *n, long long version, const char *error, size_t missing,
                  json_t *vpns)
{
    json_t *body =
        json_pack("{s:I, s:s?, s:I, s:I}", "version", (json_int_t)version, "error", error, "flows",
                  (json_int_t)n->installed.n, "ports_missing", (json_int_t)missing);
    if (vpns) {
        json_object_set_new(body, "vpn_connections", vpns);
    }
    char *text = json_dumps(body, JSON_COMPACT);
    struct nb_httpc_response resp = {0};
    struct nb_error err = {0};
    int rc = 0;
    if (cp_call(n, "POST", "/internal/v1/network/applied", text, &resp, &err) == 0) {
        nb_httpc_response_free(&resp);
    } else {
        nb_warn("could not report network version %lld: %s", version, err.msg);
        rc = -1;
    }
    free(text);
    json_decref(body);
    return rc;
}

/* Tells the control plane when the tunnels of the VPN gateways served here go up or down (the
 * connection's tunnel status, vgwTelemetry), checking every 2 s. */
static void report_vpns(struct nc_node *n)
{
    const struct nc_state *st = n->desired;
    if (!st || !n->control_url[0] || now_ms() - n->last_vpn_check_ms < 2000) {
        return;
    }
    n->last_vpn_check_ms = now_ms();
    json_t *arr = json_array();
    for (size_t i = 0; i < st->n_vpns; i++) {
        const struct nc_vpn *v = &st->vpns[i];
        if (v->host) {
            continue;
        }
        struct nc_vpn_status vs = {0};
        struct nb_error err = {0};
        const char *message;
        if (nc_vpn_status(v->id, n->state_dir, &vs, &err) < 0) {
            message = err.msg;
        } else if (!vs.running) {
            message = "the VPN gateway's charon does not run";
        } else if (!vs.ike_established) {
            message = "IKE negotiating with the customer gateway";
        } else if (!vs.child_installed) {
            message = "IKE up, no IPsec SA";
        } else {
            message = "";
        }
        json_array_append_new(arr, json_pack("{s:s, s:b, s:s}", "id", v->id, "up",
                                             vs.ike_established && vs.child_installed, "message",
                                             message));
    }
    char *text = json_dumps(arr, JSON_COMPACT | JSON_SORT_KEYS);
    if (!json_array_size(arr) || (n->last_vpn_report && !strcmp(text, n->last_vpn_report))) {
        free(text);
        json_decref(arr);
        return;
    }
    if (report(n, n->applied, NULL, 0, arr) == 0) {
        free(n->last_vpn_report);
        n->last_vpn_report = text;
    } else {
        free(text);
    }
}

/* --- converging ------------------------------------------------------------------------------- */

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The VXLAN ports: one per other host that has a port or a VPN gateway of our networks. Sets
 * '*changed' when it had to add or remove some ('ports' holds the bridge's ports as read). */
static int sync_tunnels(struct nc_node *n, struct nc_ofmap *ports, bool *changed,
                        struct nb_error *err)
{
    const struct nc_state *st = n->desired;
    uint32_t *hosts = malloc((st->n_ports + st->n_vpns + st->n_ras + 1) * sizeof *hosts);
    size_t k = 0;
    for (size_t i = 0; i < st->n_ports; i++) {
        if (st->ports[i].host && st->ports[i].host != n->tunnel_ip) {
            hosts[k++] = st->ports[i].host;
        }
    }
    for (size_t i = 0; i < st->n_vpns; i++) {
        if (st->vpns[i].host && st->vpns[i].host != n->tunnel_ip) {
            hosts[k++] = st->vpns[i].host;
        }
    }
    for (size_t i = 0; i < st->n_ras; i++) {
        if (st->ras[i].host && st->ras[i].host != n->tunnel_ip) {
            hosts[k++] = st->ras[i].host;
        }
    }
    qsort(hosts, k, sizeof *hosts, u32_cmp);
    size_t u = 0;
    for (size_t i = 0; i < k; i++) {
        if (!u || hosts[u - 1] != hosts[i]) {
            hosts[u++] = hosts[i];
        }
    }
    /* Nothing to do when the bridge has exactly these tunnels. */
    size_t present = 0, tunnels = 0;
    for (size_t i = 0; i < ports->n; i++) {
        tunnels += !strncmp(ports->v[i].name, "tun:", 4);
    }
    for (size_t i = 0; i < u; i++) {
        char name[32], ip[16];
        snprintf(name, sizeof name, "tun:%s", nc_ip_str(hosts[i], ip));
        present += nc_ofmap_get(ports, name) >= 0;
    }
    int rc = 0;
    *changed = present != u || tunnels != u;
    if (*changed) {
        rc = nc_ovs_tunnels(n->bridge, hosts, u, n->tunnel_ip, err);
    }
    free(hosts);
    return rc;
}

/* The VPN gateways this host serves: up the desired ones, down the others. */
static int sync_vpns(struct nc_node *n, struct nb_error *err)
{
    const struct nc_state *st = n->desired;
    int rc = 0;
    for (size_t i = 0; i < st->n_vpns; i++) {
        const struct nc_vpn *v = &st->vpns[i];
        if (v->host) {
            continue;
        }
        const struct nc_network *net = nc_state_network(st, v->segment);
        char outside[16], router[16], peer[16], inside[16], local[24], im[18], om[18], a[16];
        char(*remote)[24] = calloc(v->n_remote + 1, sizeof *remote);
        const char **rp = calloc(v->n_remote + 1, sizeof *rp);
        for (size_t r = 0; r < v->n_remote; r++) {
            snprintf(remote[r], sizeof remote[r], "%s/%d", nc_ip_str(v->remote[r].addr, a),
                     v->remote[r].len);
            rp[r] = remote[r];
        }
        snprintf(local, sizeof local, "%s/%d", nc_ip_str(net->cidr.addr, a), net->cidr.len);
        struct nc_vpn_conn c = {
            .id = v->id,
            .outside_ip = nc_ip_str(v->outside_ip, outside),
            .outside_prefix = st->public_cidr.len,
            .outside_router = nc_ip_str(st->public_gateway, router),
            .peer_ip = nc_ip_str(v->peer_ip, peer),
            .psk = v->psk,
            .local_cidr = local,
            .remote_cidrs = rp,
            .n_remote = v->n_remote,
            .inside_ip = nc_ip_str(v->inside_ip, inside),
            .inside_prefix = net->cidr.len,
            .inside_mac = nc_mac_str(v->inside_mac, im),
            .outside_mac = nc_mac_str(v->outside_mac, om),
        };
        char in_peer[16], out_peer[16];
        int up = nc_vpn_up(&c, n->host_netns[0] ? n->host_netns : NULL, n->state_dir, in_peer,
                           out_peer, err);
        free(remote);
        free(rp);
        if (up < 0) {
            nb_error_detail(err, "VPN gateway %s", v->id);
            return -1;
        }
        if (nc_ovs_plug(n->bridge, in_peer, "nubo-vpn-in", v->id, err) < 0 ||
            nc_ovs_plug(n->bridge, out_peer, "nubo-vpn-out", v->id, err) < 0) {
            return -1;
        }
    }
    char **ids = NULL;
    size_t n_ids = 0;
    struct nb_error lerr = {0};
    if (nc_vpn_list(n->state_dir, &ids, &n_ids, &lerr) == 0) {
        for (size_t i = 0; i < n_ids; i++) {
            bool wanted = false;
            for (size_t j = 0; j < st->n_vpns; j++) {
                wanted |= !st->vpns[j].host && !strcmp(st->vpns[j].id, ids[i]);
            }
            if (!wanted) {
                nb_info("VPN gateway %s is no longer wanted here: stopping it", ids[i]);
                if (nc_vpn_down(ids[i], n->host_netns[0] ? n->host_netns : NULL, n->state_dir,
                                &lerr) < 0) {
                    nb_warn("could not stop VPN gateway %s: %s", ids[i], lerr.msg);
                    rc = -1;
                }
            }
        }
        nc_vpn_list_free(ids, n_ids);
    }
    return rc;
}

/* The remote-access endpoints this host serves (wg.h): up the desired ones, down the others.
 * Their legs are plugged like a VPN gateway's ("nubo-vpn-in"/"nubo-vpn-out" = the endpoint's
 * id), so the bridge's port map names them "vpn-in:rae-..." and "vpn-out:rae-...". */
static int sync_ras(struct nc_node *n, struct nb_error *err)
{
    const struct nc_state *st = n->desired;
    const char *host_ns = n->host_netns[0] ? n->host_netns : NULL;
    int rc = 0;
    for (size_t i = 0; i < st->n_ras; i++) {
        const struct nc_remote_access *r = &st->ras[i];
        if (r->host) {
            continue;
        }
        const struct nc_network *net = nc_state_network(st, r->segment);
        char outside[16], router[16], inside[16], vpc[24], clients[24], im[18], om[18], a[16];
        struct nc_wg_peer *peers = calloc(r->n_peers + 1, sizeof *peers);
        char(*ips)[16] = calloc(r->n_peers + 1, sizeof *ips);
        for (size_t k = 0; k < r->n_peers; k++) {
            peers[k].public_key = r->peers[k].public_key;
            peers[k].ip = nc_ip_str(r->peers[k].ip, ips[k]);
        }
        snprintf(vpc, sizeof vpc, "%s/%d", nc_ip_str(net->cidr.addr, a), net->cidr.len);
        snprintf(clients, sizeof clients, "%s/%d", nc_ip_str(r->client.addr, a), r->client.len);
        struct nc_wg_endpoint e = {
            .id = r->id,
            .outside_ip = nc_ip_str(r->outside_ip, outside),
            .outside_prefix = st->public_cidr.len,
            .outside_router = nc_ip_str(st->public_gateway, router),
            .inside_ip = nc_ip_str(r->inside_ip, inside),
            .vpc_cidr = vpc,
            .client_cidr = clients,
            .private_key = r->private_key,
            .listen_port = r->listen_port,
            .peers = peers,
            .n_peers = r->n_peers,
            .inside_mac = nc_mac_str(r->inside_mac, im),
            .outside_mac = nc_mac_str(r->outside_mac, om),
        };
        char in_peer[NC_WG_IFNAME_MAX], out_peer[NC_WG_IFNAME_MAX];
        int up = nc_wg_up(&e, host_ns, n->state_dir, in_peer, out_peer, err);
        free(peers);
        free(ips);
        if (up < 0) {
            nb_error_detail(err, "remote-access endpoint %s", r->id);
            return -1;
        }
        if (nc_ovs_plug(n->bridge, in_peer, "nubo-vpn-in", r->id, err) < 0 ||
            nc_ovs_plug(n->bridge, out_peer, "nubo-vpn-out", r->id, err) < 0) {
            return -1;
        }
    }
    char **ids = NULL;
    size_t n_ids = 0;
    struct nb_error lerr = {0};
    if (nc_wg_list(n->state_dir, &ids, &n_ids, &lerr) == 0) {
        for (size_t i = 0; i < n_ids; i++) {
            bool wanted = false;
            for (size_t j = 0; j < st->n_ras; j++) {
                wanted |= !st->ras[j].host && !strcmp(st->ras[j].id, ids[i]);
            }
            if (wanted) {
                continue;
            }
            nb_info("remote-access endpoint %s is no longer wanted here: stopping it", ids[i]);
            char in_peer[NC_WG_IFNAME_MAX], out_peer[NC_WG_IFNAME_MAX];
            nc_wg_peer_names(ids[i], in_peer, out_peer);
            if (nc_ovs_unplug(n->bridge, in_peer, &lerr) < 0 ||
                nc_ovs_unplug(n->bridge, out_peer, &lerr) < 0 ||
                nc_wg_down(ids[i], host_ns, n->state_dir, &lerr) < 0) {
                nb_warn("could not stop remote-access endpoint %s: %s", ids[i], lerr.msg);
                rc = -1;
            }
        }
        nc_wg_list_free(ids, n_ids);
    }
    return rc;
}

static bool same_ports(struct nc_ofmap *a, struct nc_ofmap *b)
{
    if (a->n != b->n) {
        return false;
    }
    for (size_t i = 0; i < a->n; i++) {
        if (nc_ofmap_get(b, a->v[i].name) != a->v[i].ofport) {
            return false;
        }
    }
    return true;
}

int nc_node_pass(struct nc_node *n, bool fetch_state, struct nb_error *err)
{
    if (fetch_state && fetch(n, err) < 0) {
        return -1;
    }
    if (!n->desired) {
        return 0;
    }
    if (!n->installed_known) {
        if (nc_ovs_bridge(n->bridge, n->datapath, err) < 0) {
            return -1;
        }
        if (n->public_if[0] &&
            nc_ovs_plug(n->bridge, n->public_if, "nubo-role", "external", err) < 0) {
            return -1;
        }
        char *dump = nc_ovs_dump(n->bridge, NC_COOKIE_TAG, err);
        if (!dump) {
            return -1;
        }
        nc_flows_from_dump(dump, &n->installed);
        free(dump);
        n->installed_known = true;
        n->dirty = true;
    }
    bool changed = n->dirty;
    /* VPN gateways and the DHCP/metadata services: a failure there is reported, and retried on
     * the next pass, but does not keep the flows of everything else from being applied. */
    struct nb_error side = {0};
    if (changed && sync_vpns(n, &side) < 0) {
        nb_warn("network version %lld: %s%s%s", n->desired->version, side.msg,
                side.detail[0] ? "; " : "", side.detail);
    }
    struct nb_error ra_err = {0};
    if (changed && sync_ras(n, &ra_err) < 0) {
        nb_warn("network version %lld: %s%s%s", n->desired->version, ra_err.msg,
                ra_err.detail[0] ? "; " : "", ra_err.detail);
        if (!side.msg[0]) {
            side = ra_err;
        }
    }
    struct nb_error svc_err = {0};
    if (changed && nc_svc_sync(n->svc, n->desired, &svc_err) < 0) {
        nb_warn("network version %lld: %s%s%s", n->desired->version, svc_err.msg,
                svc_err.detail[0] ? "; " : "", svc_err.detail);
        if (!side.msg[0]) {
            side = svc_err;
        }
    }
    /* The bridge's ports: read again only when OVS's configuration moved (or every 30 s). */
    struct nc_ofmap ports = {0};
    long long cfg;
    if (nc_ovs_cur_cfg(&cfg, err) < 0) {
        return -1;
    }
    /* While a port the desired state names is missing, the ports are read every second as
     * well: a port plugged while they were being read can leave cur_cfg where it was seen
     * (seen in CI: a port missing until the 30 s reread). */
    long long since = now_ms() - n->ports_read_ms;
    bool reread = cfg != n->ports_cfg || since > 30000 || (n->ports_missing > 0 && since > 1000);
    for (int round = 0; round < 2; round++) {
        if (reread) {
            if (nc_ovs_ports(n->bridge, &ports, err) < 0) {
                nc_ofmap_clear(&ports);
                return -1;
            }
            n->ports_cfg = cfg;
            n->ports_read_ms = now_ms();
        } else {
            for (size_t i = 0; i < n->ports.n; i++) {
                nc_ofmap_add(&ports, n->ports.v[i].name, n->ports.v[i].ofport);
            }
        }
        bool tunnels_changed = false;
        if (!changed || round == 1) {
            break;
        }
        if (sync_tunnels(n, &ports, &tunnels_changed, err) < 0) {
            nc_ofmap_clear(&ports);
            return -1;
        }
        if (!tunnels_changed) {
            break;
        }
        /* New tunnels have new port numbers: read the ports again. */
        nc_ofmap_clear(&ports);
        if (nc_ovs_cur_cfg(&cfg, err) < 0) {
            return -1;
        }
        reread = true;
    }
    if (!changed && same_ports(&ports, &n->ports)) {
        nc_ofmap_clear(&ports);
        return 0;
    }
    struct nc_flows want = {0};
    size_t missing = nc_compile(n->desired, &ports, &want);
    n->ports_missing = missing;
    struct nb_buf bundle = NB_BUF_INIT;
    nc_diff(&n->installed, &want, &bundle, &n->last_added, &n->last_deleted);
    int rc = nc_ovs_apply(n->bridge, bundle.data, bundle.len, err);
    nb_buf_free(&bundle);
    if (rc < 0) {
        /* What the bridge holds now is unknown: read it back on the next pass. */
        n->installed_known = false;
        nc_flows_clear(&want);
        nc_ofmap_clear(&ports);
        return -1;
    }
    nc_flows_clear(&n->installed);
    n->installed = want;
    nc_ofmap_clear(&n->ports);
    n->ports = ports;
    n->dirty = false;
    if (n->last_added || n->last_deleted) {
        nb_info("network version %lld applied: %zu flows (+%zu -%zu), %zu ports not plugged yet",
                n->desired->version, n->installed.n, n->last_added, n->last_deleted, missing);
    }
    if (side.msg[0]) {
        /* Flows are in; the side services are retried on the next pass. */
        *err = side;
        n->dirty = true;
        return -1;
    }
    /* Reported again when a missing port shows up under the same version: the control plane
     * (and whoever waits for a network to be ready) counts on ports_missing going to 0. */
    if ((n->applied != n->desired->version || missing != n->reported_missing) &&
        n->control_url[0] && report(n, n->desired->version, NULL, missing, NULL) == 0) {
        n->reported_missing = missing;
    }
    n->applied = n->desired->version;
    return 1;
}

int nc_node_teardown(struct nc_node *n, struct nb_error *err)
{
    static const char empty[] = "{\"version\": 0}";
    struct nc_state *st = nc_state_parse(empty, sizeof empty - 1, err);
    if (!st) {
        return -1;
    }
    nc_node_set_state(n, st);
    struct nb_error side = {0};
    int rc = 0;
    if (sync_vpns(n, &side) < 0 || sync_ras(n, &side) < 0 ||
        nc_svc_sync(n->svc, n->desired, &side) < 0) {
        *err = side;
        rc = -1;
    }
    /* Our flows (by cookie tag) and tunnels; the bridge and the VMs' ports stay. */
    char match[64];
    snprintf(match, sizeof match, "cookie=0x%016llx/0x%016llx", (unsigned long long)NC_COOKIE_TAG,
             (unsigned long long)NC_COOKIE_MASK);
    const char *del[] = {"ovs-ofctl", "-O", "OpenFlow15", "del-flows", n->bridge, match, NULL};
    if (nc_run(del, NULL, 0, NULL, 20000, rc < 0 ? &side : err) < 0 ||
        nc_ovs_tunnels(n->bridge, NULL, 0, 0, rc < 0 ? &side : err) < 0) {
        rc = -1;
    }
    nc_flows_clear(&n->installed);
    return rc;
}

/* Asks the public gateway for its MAC now and then (the bridge learns it from the reply). */
static void probe_gateway(struct nc_node *n)
{
    const struct nc_state *st = n->desired;
    int ext = st && st->has_public ? nc_ofmap_get(&n->ports, "ext") : -1;
    if (ext < 0 || now_ms() - n->last_probe_ms < 10000) {
        return;
    }
    uint8_t mac[6];
    nc_public_mac(st->tunnel_ip, mac);
    /* Any address of the public network will do as the sender; the host's own is unknown. */
    struct nb_error err = {0};
    uint32_t src = 0;
    for (size_t i = 0; i < st->n_ports && !src; i++) {
        if (!st->ports[i].host && st->ports[i].public_ip) {
            src = st->ports[i].public_ip;
        }
    }
    if (!src) {
        return;
    }
    n->last_probe_ms = now_ms();
    if (nc_ovs_arp_probe(n->bridge, ext, mac, src, st->public_gateway, &err) < 0) {
        nb_warn("could not send the public gateway ARP probe: %s", err.msg);
    }
}

static void *loop(void *arg)
{
    struct nc_node *n = arg;
    long long backoff = 0;
    while (!atomic_load(&n->stop)) {
        struct nb_error err = {0};
        if (nc_node_pass(n, true, &err) < 0) {
            nb_warn("network pass failed: %s%s%s", err.msg, err.detail[0] ? "; " : "", err.detail);
            if (n->desired && n->control_url[0] && err.code != NB_ERR_AUTH &&
                err.code != NB_ERR_UNAVAILABLE) {
                report(n, n->applied, err.msg, 0, NULL);
            }
            backoff = backoff ? (backoff * 2 > 10000 ? 10000 : backoff * 2) : n->poll_ms;
        } else {
            backoff = 0;
            probe_gateway(n);
            report_vpns(n);
        }
        long long wait = backoff ? backoff : n->poll_ms;
        for (long long t = 0; t < wait && !atomic_load(&n->stop); t += 50) {
            usleep(50000);
        }
    }
    return NULL;
}

int nc_node_start(struct nc_node *n, struct nb_error *err)
{
    if (!n->control_url[0]) {
        nb_error_set(
            err, NB_ERR_INVALID,
            "netctl.control_url (the gateway's URL, e.g. http://127.0.0.1:8773) is not set");
        return -1;
    }
    int rc = pthread_create(&n->thread, NULL, loop, n);
    if (rc) {
        nb_error_errno(err, rc, "could not start the network thread");
        return -1;
    }
    n->started = true;
    return 0;
}

void nc_node_stop(struct nc_node *n)
{
    if (n->started) {
        atomic_store(&n->stop, true);
        pthread_join(n->thread, NULL);
        n->started = false;
    }
}

void nc_node_close(struct nc_node *n)
{
    if (!n) {
        return;
    }
    nc_node_stop(n);
    nc_svc_free(n->svc);
    free(n->last_vpn_report);
    nc_state_free(n->desired);
    nc_flows_clear(&n->installed);
    nc_ofmap_clear(&n->ports);
    free(n);
}
