/* Benchmark of nubo-netctl's convergence on a real Open vSwitch (userspace datapath, started
 * here in a temporary directory).
 *
 * The host has N local ports (default 1,000) in VPCs of 20 ports each, two security groups per
 * VPC with six rules each (SSH from anywhere, HTTP/HTTPS from 10/8, a port range, ICMP, all
 * from the group's own members, all egress), plus 200 ports on four other hosts behind VXLAN
 * tunnels. Each run starts from an empty bridge (ports plugged, no flow) and times:
 *
 *   converge   parse the desired state + one pass of the node loop (bridge, tunnels, ports,
 *              compile, diff against the bridge, one OpenFlow bundle)
 *   change     the same state with one more rule in one group: parse + one pass, which
 *              applies only the diff
 *   rebuild    the baseline a diff saves: ovs-ofctl replacing the whole flow table with the same
 *              flows (`replace-flows`, as a full resync would)
 *
 * and prints medians of the runs:
 *
 *   bench net_converge_1000_ports_ms MS ms
 *   bench net_change_1000_ports_ms MS ms
 *   bench net_full_rebuild_1000_ports_ms MS ms
 *   bench net_flows_1000_ports N flows
 *
 * Usage: net [--ports N] [--runs N] */
#include "flows.h"
#include "model.h"
#include "node.h"
#include "ovs.h"
#include "ovstmp.h"

#include "nubo/buf.h"
#include "nubo/config.h"
#include "nubo/error.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PER_VPC 20
#define REMOTE  200

static void die(const char *what, const struct nb_error *err)
{
    fprintf(stderr, "bench net: %s: %s %s\n", what, err ? err->msg : "", err ? err->detail : "");
    exit(1);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, dbl_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The desired state's JSON; 'extra' adds one rule to the first group. */
static char *state_json(int ports, bool extra)
{
    struct nb_buf b = NB_BUF_INIT;
    int vpcs = (ports + REMOTE + PER_VPC - 1) / PER_VPC;
    nb_buf_printf(&b, "{\"version\": %d, \"tunnel_ip\": \"10.250.0.1\", \"networks\": [",
                  extra ? 2 : 1);
    for (int v = 0; v < vpcs; v++) {
        nb_buf_printf(&b,
                      "%s{\"vpc_id\": \"vpc-%04x\", \"segment\": %d, \"cidr\": \"10.%d.0.0/16\", "
                      "\"routers\": [\"10.%d.0.1\"]}",
                      v ? "," : "", v, 100 + v, v, v);
    }
    nb_buf_puts(&b, "], \"ports\": [");
    for (int p = 0; p < ports + REMOTE; p++) {
        int v = p / PER_VPC;
        char host[32] = "null";
        if (p >= ports) {
            snprintf(host, sizeof host, "\"10.250.0.%d\"", 2 + p % 4);
        }
        nb_buf_printf(
            &b,
            "%s{\"id\": \"eni-%05x\", \"segment\": %d, \"mac\": \"02:00:00:%02x:%02x:%02x\","
            " \"ip\": \"10.%d.%d.%d\", \"host\": %s, \"groups\": [\"sg-%04x\"]}",
            p ? "," : "", p, 100 + v, (p >> 16) & 255, (p >> 8) & 255, p & 255, v, p / 200,
            10 + p % 200, host, v * 2 + p % 2);
    }
    nb_buf_puts(&b, "], \"groups\": [");
    for (int g = 0; g < vpcs * 2; g++) {
        nb_buf_printf(
            &b,
            "%s{\"id\": \"sg-%04x\", \"rules\": ["
            "{\"direction\": \"ingress\", \"protocol\": \"tcp\", \"from_port\": 22, \"to_port\": "
            "22, \"cidr\": \"0.0.0.0/0\"},"
            "{\"direction\": \"ingress\", \"protocol\": \"tcp\", \"from_port\": 80, \"to_port\": "
            "80, \"cidr\": \"10.0.0.0/8\"},"
            "{\"direction\": \"ingress\", \"protocol\": \"tcp\", \"from_port\": 443, \"to_port\": "
            "443, \"cidr\": \"10.0.0.0/8\"},"
            "{\"direction\": \"ingress\", \"protocol\": \"tcp\", \"from_port\": 8000, \"to_port\": "
            "8099, \"cidr\": \"192.168.0.0/16\"},"
            "{\"direction\": \"ingress\", \"protocol\": \"icmp\", \"from_port\": -1, \"to_port\": "
            "-1, \"cidr\": \"0.0.0.0/0\"},"
            "{\"direction\": \"ingress\", \"protocol\": \"-1\", \"group\": \"sg-%04x\"},"
            "{\"direction\": \"egress\", \"protocol\": \"-1\", \"cidr\": \"0.0.0.0/0\"}%s]}",
            g ? "," : "", g, g,
            extra && g == 0 ? ",{\"direction\": \"ingress\", \"protocol\": \"tcp\", \"from_port\": "
                              "5432, \"to_port\": 5432, \"cidr\": \"10.1.0.0/16\"}"
                            : "");
    }
    nb_buf_puts(&b, "]}");
    return nb_buf_steal(&b);
}

/* A fresh bridge with 'ports' plugged ports (patch ports with a missing peer: an OpenFlow port
 * number and no kernel device, which is all the flows care about). */
static void fresh_bridge(int ports)
{
    struct nb_error err = {0};
    const char *del[] = {"ovs-vsctl", "--if-exists", "del-br", "br-int", NULL};
    if (nc_run(del, NULL, 0, NULL, 30000, &err) < 0 ||
        nc_ovs_bridge("br-int", "netdev", &err) < 0) {
        die("bridge", &err);
    }
    for (int start = 0; start < ports; start += 250) {
        const char **argv = calloc(16 * 250 + 4, sizeof *argv);
        char(*s)[64] = calloc(4 * 250, sizeof *s);
        size_t k = 0, ns = 0;
        argv[k++] = "ovs-vsctl";
        for (int p = start; p < ports && p < start + 250; p++) {
            char *name = s[ns++], *peer = s[ns++], *iface = s[ns++];
            snprintf(name, 64, "p%05x", p);
            snprintf(peer, 64, "options:peer=nx%05x", p);
            snprintf(iface, 64, "external_ids:iface-id=eni-%05x", p);
            const char *cmd[] = {"--",        "add-port", "br-int",     name, "--", "set",
                                 "interface", name,       "type=patch", peer, iface};
            for (size_t i = 0; i < sizeof cmd / sizeof *cmd; i++) {
                argv[k++] = cmd[i];
            }
        }
        argv[k] = NULL;
        if (nc_run(argv, NULL, 0, NULL, 60000, &err) < 0) {
            die("ports", &err);
        }
        free(argv);
        free(s);
    }
}

static struct nc_state *parse(const char *json)
{
    struct nb_error err = {0};
    struct nc_state *st = nc_state_parse(json, strlen(json), &err);
    if (!st) {
        die("state", &err);
    }
    return st;
}

int main(int argc, char **argv)
{
    int ports = 1000, runs = 5;
    static const struct option opts[] = {
        {"ports", required_argument, NULL, 'p'}, {"runs", required_argument, NULL, 'r'}, {0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'p') {
            ports = atoi(optarg);
        } else if (c == 'r') {
            runs = atoi(optarg);
        } else {
            fprintf(stderr, "usage: net [--ports N] [--runs N]\n");
            return 2;
        }
    }
    if (ports < 1 || ports > 50000 || runs < 1 || runs > 50) {
        fprintf(stderr, "bench net: --ports 1..50000, --runs 1..50\n");
        return 2;
    }
    struct nb_error err = {0};
    struct ovstmp *ovs = ovstmp_start(&err);
    if (!ovs) {
        die("starting Open vSwitch", &err);
    }
    char *base = state_json(ports, false), *changed = state_json(ports, true);
    double *conv = calloc((size_t)runs, sizeof *conv), *chg = calloc((size_t)runs, sizeof *chg),
           *full = calloc((size_t)runs, sizeof *full);
    size_t flows = 0, added = 0, deleted = 0;
    for (int r = 0; r < runs; r++) {
        fresh_bridge(ports);
        struct nb_config *cfg = nb_config_new();
        nb_config_set(cfg, "netctl.state_dir", ovstmp_rundir(ovs));
        struct nc_node *n = nc_node_open(cfg, &err);
        if (!n) {
            die("node", &err);
        }
        double t0 = now_ms();
        nc_node_set_state(n, parse(base));
        if (nc_node_pass(n, false, &err) < 0) {
            die("converge", &err);
        }
        conv[r] = now_ms() - t0;
        nc_node_counts(n, &flows, &added, &deleted);
        if (added != flows || deleted) {
            fprintf(stderr, "bench net: converge from nothing added %zu of %zu flows\n", added,
                    flows);
            return 1;
        }

        t0 = now_ms();
        nc_node_set_state(n, parse(changed));
        if (nc_node_pass(n, false, &err) < 0) {
            die("change", &err);
        }
        chg[r] = now_ms() - t0;
        nc_node_counts(n, &flows, &added, &deleted);
        fprintf(stderr, "run %d: converge %.1f ms (%zu flows), change %.1f ms (+%zu -%zu)\n", r + 1,
                conv[r], flows, chg[r], added, deleted);

        /* Baseline: the whole table replaced with the same flows by ovs-ofctl. */
        struct nc_ofmap map = {0};
        struct nc_flows all = {0}, none = {0};
        struct nc_state *st = parse(changed);
        if (nc_ovs_ports("br-int", &map, &err) < 0) {
            die("ports", &err);
        }
        nc_compile(st, &map, &all);
        struct nb_buf file = NB_BUF_INIT;
        nc_diff(&none, &all, &file, NULL, NULL);
        nc_flows_clear(&all);
        nc_ofmap_clear(&map);
        nc_state_free(st);
        char path[128];
        snprintf(path, sizeof path, "%s/flows.txt", ovstmp_rundir(ovs));
        FILE *f = fopen(path, "w");
        /* replace-flows takes bare flows: drop the "add " of each line */
        for (char *save = NULL, *line = strtok_r(file.data, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
            fprintf(f, "%s\n", line + 4);
        }
        fclose(f);
        nb_buf_free(&file);
        const char *del[] = {"ovs-ofctl", "-O", "OpenFlow15", "del-flows", "br-int", NULL};
        const char *rep[] = {"ovs-ofctl",     "-O",     "OpenFlow15", "--bundle",
                             "replace-flows", "br-int", path,         NULL};
        if (nc_run(del, NULL, 0, NULL, 60000, &err) < 0) {
            die("del-flows", &err);
        }
        t0 = now_ms();
        if (nc_run(rep, NULL, 0, NULL, 120000, &err) < 0) {
            die("replace-flows", &err);
        }
        full[r] = now_ms() - t0;
        nc_node_close(n);
        nb_config_free(cfg);
    }
    printf("bench net_converge_%d_ports_ms %.1f ms\n", ports, median(conv, runs));
    printf("bench net_change_%d_ports_ms %.1f ms\n", ports, median(chg, runs));
    printf("bench net_full_rebuild_%d_ports_ms %.1f ms\n", ports, median(full, runs));
    printf("bench net_flows_%d_ports %zu flows\n", ports, flows);
    free(conv);
    free(chg);
    free(full);
    free(base);
    free(changed);
    ovstmp_stop(ovs);
    return 0;
}
