/* Driving the host's Open vSwitch: the integration bridge, its ports, its flows. Through the
 * ovs-vsctl and ovs-ofctl programs (OVS_RUNDIR from the environment says which OVS), each run as
 * a child with a deadline, never through a shell. */
#ifndef NUBO_NETCTL_OVS_H
#define NUBO_NETCTL_OVS_H

#include <stddef.h>
#include <stdint.h>

struct nb_error;
struct nc_ofmap;

/* Runs 'argv' (argv[0] looked up in PATH) with 'input' on its stdin (NULL: /dev/null). Its
 * stdout and stderr, together, go to '*output' (malloc()ed, NUL-terminated; may be NULL when not
 * wanted). Returns 0 when it exits 0 within 'timeout_ms', else -1 with 'err' quoting its output. */
int nc_run(const char *const argv[], const char *input, size_t input_len, char **output,
           int timeout_ms, struct nb_error *err);

/* Creates the bridge if needed: 'datapath' "netdev" (userspace) or "system", fail mode secure
 * (no flow: no traffic), OpenFlow 1.0 and 1.3 to 1.5. */
int nc_ovs_bridge(const char *bridge, const char *datapath, struct nb_error *err);

/* Reads the bridge's interfaces into 'map' (emptied first): VM ports by external_ids:iface-id,
 * tunnels "tun:<remote_ip>", the public port "ext" (external_ids:nubo-role=external), VPN legs
 * "vpn-in:<id>" / "vpn-out:<id>" (external_ids:nubo-vpn-in / nubo-vpn-out). Interfaces without an
 * OpenFlow port number yet are left out. */
int nc_ovs_ports(const char *bridge, struct nc_ofmap *map, struct nb_error *err);

/* The configuration sequence number ovs-vswitchd has applied (Open_vSwitch cur_cfg): it moves
 * with every change of bridges, ports and interfaces made through ovs-vsctl, so an unchanged
 * number means the port list read before still holds. */
int nc_ovs_cur_cfg(long long *out, struct nb_error *err);

/* Makes the VXLAN ports of 'bridge' exactly one per address of 'remotes' (named "vx" and the
 * address in hex), with options:key=flow and local_ip 'local' (0: none). */
int nc_ovs_tunnels(const char *bridge, const uint32_t *remotes, size_t n, uint32_t local,
                   struct nb_error *err);

/* Adds interface 'ifname' to 'bridge' (if absent) with external_ids:'key'='value'. */
int nc_ovs_plug(const char *bridge, const char *ifname, const char *key, const char *value,
                struct nb_error *err);
/* Removes the port 'ifname' if present. */
int nc_ovs_unplug(const char *bridge, const char *ifname, struct nb_error *err);

/* Applies an add-flows bundle (flows.h: nc_diff) in one OpenFlow transaction. */
int nc_ovs_apply(const char *bridge, const char *bundle, size_t len, struct nb_error *err);

/* The text of dump-flows for the flows whose cookie carries 'tag' (under NC_COOKIE_MASK). */
char *nc_ovs_dump(const char *bridge, uint64_t tag, struct nb_error *err);

/* Sends an ARP request for 'target' from 'src_mac'/'src_ip' out of OpenFlow port 'ofport'. */
int nc_ovs_arp_probe(const char *bridge, int ofport, const uint8_t src_mac[6], uint32_t src_ip,
                     uint32_t target, struct nb_error *err);

#endif
