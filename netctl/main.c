/* nubo-netctl: a compute node's tenant networks on Open vSwitch. Parses arguments, loads the
 * configuration, runs the node loop until SIGINT/SIGTERM. Stopping it never touches the flows,
 * the tunnels or the VPN gateways: traffic goes on, and the next start converges by diff. */
#include "model.h"
#include "node.h"

#include "nubo/config.h"
#include "nubo/daemon.h"
#include "nubo/error.h"
#include "nubo/httpc.h"
#include "nubo/log.h"

#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("Usage: nubo-netctl [OPTION]...\n"
          "Apply a compute node's tenant networks (VPCs, security groups, elastic IPs, VPN\n"
          "gateways) to its Open vSwitch integration bridge, as the control plane wants them.\n"
          "\n"
          "  -c, --config FILE        read settings from FILE (\"key = value\" lines)\n"
          "  -s, --set KEY=VALUE      set one setting (beats the environment and the file)\n"
          "      --apply FILE         apply the desired state in FILE (JSON, as served by\n"
          "                           GET /internal/v1/network) once, without a control plane\n"
          "      --teardown           take this host's networks down and exit: stop its VPN\n"
          "                           gateways and DHCP/metadata services, delete nubo's flows\n"
          "                           and tunnels (the bridge and the VMs' ports stay)\n"
          "  -h, --help               show this help and exit\n"
          "\n"
          "Settings (environment NUBO_<KEY>, '.' as '_'; e.g. NUBO_NETCTL_CONTROL_URL):\n"
          "  netctl.control_url      the gateway's URL, e.g. http://10.0.0.1:8773 (required)\n"
          "  netctl.token            the node token \"h-...:...\" (the compute agent's)\n"
          "  netctl.token_file       or a file holding it (first line)\n"
          "  netctl.tunnel_ip        this host's address for VXLAN between hosts\n"
          "  netctl.bridge           the integration bridge (br-int)\n"
          "  netctl.datapath         netdev (userspace, no kernel module) or system (netdev)\n"
          "  netctl.public_interface the interface on the public network, for elastic IPs and\n"
          "                          VPN gateways (none)\n"
          "  netctl.state_dir        VPN gateway state (/var/lib/nubo/netctl)\n"
          "  netctl.host_netns       the network namespace OVS's ports live in, when not this\n"
          "                          process's (tests run several \"hosts\" on one machine)\n"
          "  netctl.poll_ms          how often to ask for a new version (500)\n"
          "  ovs.rundir              OVS_RUNDIR of the Open vSwitch to drive\n"
          "  log.level, log.file     as every nubo daemon\n"
          "\n"
          "The pipeline and the desired state are described in docs/network.md.\n",
          f);
}

static int apply_file(struct nc_node *n, const char *path, struct nb_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        nb_error_errno(err, errno, "could not open \"%s\"", path);
        return -1;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        fwrite(chunk, 1, got, m);
    }
    fclose(f);
    fclose(m);
    struct nc_state *st = nc_state_parse(text, len, err);
    free(text);
    if (!st) {
        nb_error_detail(err, "in \"%s\"", path);
        return -1;
    }
    nc_node_set_state(n, st);
    return nc_node_pass(n, false, err) < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"set", required_argument, NULL, 's'},
        {"apply", required_argument, NULL, 'a'},  {"teardown", no_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    nb_daemon_block_signals();
    struct nb_config *cfg = nb_config_new();
    struct nb_error err = {0};
    const char *apply = NULL;
    bool teardown = false;
    struct nc_node *n = NULL;
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
        case 'a':
            apply = optarg;
            break;
        case 't':
            teardown = true;
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
        fprintf(stderr, "nubo-netctl: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        nb_config_free(cfg);
        return 2;
    }
    if (nb_daemon_log_init(cfg, "nubo-netctl", &err) < 0) {
        goto fail;
    }
    nb_httpc_global_init();
    if (!(n = nc_node_open(cfg, &err))) {
        goto fail;
    }
    if (teardown) {
        if (nc_node_teardown(n, &err) < 0) {
            goto fail;
        }
        printf("networks of this host taken down\n");
    } else if (apply) {
        if (apply_file(n, apply, &err) < 0) {
            goto fail;
        }
        size_t flows, added, deleted;
        nc_node_counts(n, &flows, &added, &deleted);
        printf("applied: %zu flows (+%zu -%zu)\n", flows, added, deleted);
    } else {
        if (nc_node_start(n, &err) < 0) {
            goto fail;
        }
        int sig = nb_daemon_wait_signal();
        nb_info("received %s, stopping (flows, tunnels and VPN gateways stay)", strsignal(sig));
    }
    nc_node_close(n);
    nb_config_free(cfg);
    return 0;

fail:
    nb_err("%s%s%s", err.msg, err.detail[0] ? "; " : "", err.detail);
    nc_node_close(n);
    nb_config_free(cfg);
    return 1;
}
