/* nubo-agent: the compute node's daemon. Parses arguments, loads configuration, runs the agent
 * until SIGINT/SIGTERM. Stopping the agent never stops the guests. */
#include "agent.h"

#include "nubo/config.h"
#include "nubo/daemon.h"
#include "nubo/error.h"
#include "nubo/httpc.h"
#include "nubo/log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("Usage: nubo-agent [OPTION]...\n"
          "Run the instances of one nubo compute node through libvirt.\n"
          "\n"
          "  -c, --config FILE        read settings from FILE (\"key = value\" lines)\n"
          "  -s, --set KEY=VALUE      set one setting (beats the environment and the file)\n"
          "  -h, --help               show this help and exit\n"
          "\n"
          "Settings (environment NUBO_<KEY>, '.' as '_'; e.g. NUBO_AGENT_CONTROL_URL):\n"
          "  agent.control_url   the gateway's URL, e.g. http://10.0.0.1:8773 (required)\n"
          "  agent.token         the node token \"h-...:...\" from the host's registration\n"
          "  agent.token_file    or a file holding it (first line)\n"
          "  agent.state_dir     instance disks, image cache (/var/lib/nubo/agent)\n"
          "  agent.url           URL the control plane calls this agent at\n"
          "                      (http://<http.address>:<http.port>)\n"
          "  agent.virt_type     auto (probe KVM by booting), kvm or qemu (auto)\n"
          "  agent.kvm_probe_kernel, agent.kvm_probe_initrd, agent.kvm_probe_marker\n"
          "                      a guest the KVM probe boots, and what it prints when up\n"
          "                      (NUBO-GUEST-READY); without it a boot sector is booted\n"
          "  agent.stop_grace_s  seconds a guest gets to shut down before power-off (30)\n"
          "  agent.image_cache_mib  size limit of the base image cache (20480)\n"
          "  agent.vnc_listen    address of the instances' VNC displays (127.0.0.1)\n"
          "  agent.heartbeat_ms  heartbeat period (the control plane's, 5000)\n"
          "  agent.bridge        Open vSwitch bridge of the instances' interfaces (br-int)\n"
          "  ovs.rundir          run directory (db.sock) of that Open vSwitch\n"
          "                      (ovs-vsctl's default)\n"
          "  libvirt.uri         (qemu:///system)\n"
          "  libvirt.timeout_s   deadline of every libvirt call (30)\n"
          "  http.address        listen address (127.0.0.1)\n"
          "  http.port           listen port (" AGENT_DEFAULT_PORT ")\n"
          "  log.level           debug, info, warn or error (info)\n"
          "  log.file            append logs to this file instead of stderr\n"
          "\n"
          "The API it serves is described in docs/agent-api.md.\n",
          f);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    nb_daemon_block_signals();
    struct nb_config *cfg = nb_config_new();
    struct nb_error err = {0};
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
        fprintf(stderr, "nubo-agent: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        nb_config_free(cfg);
        return 2;
    }
    if (nb_daemon_log_init(cfg, "nubo-agent", &err) < 0) {
        goto fail;
    }
    nb_httpc_global_init();

    struct agent_ctx *a = agent_open(cfg, &err);
    if (!a) {
        goto fail;
    }
    int rc = 1;
    if (agent_start(a, &err) == 0) {
        int sig = nb_daemon_wait_signal();
        nb_info("received %s, stopping (guests keep running)", strsignal(sig));
        agent_stop(a);
        rc = 0;
    }
    agent_close(a);
    if (rc == 0) {
        nb_config_free(cfg);
        return 0;
    }

fail:
    nb_err("%s%s%s", err.msg, err.detail[0] ? "; " : "", err.detail);
    nb_config_free(cfg);
    return 1;
}
