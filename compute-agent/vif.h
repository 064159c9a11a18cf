/* The switch provider: an instance's network interfaces as tap devices on the host's Open vSwitch
 * integration bridge (br-int), where nubo-netctl finds them by external_ids:iface-id (the
 * interface id "eni-...") and programs their flows (docs/network.md).
 *
 * The agent makes the tap itself, persistent, before the domain starts, and plugs it with
 * ovs-vsctl; the domain only opens it (domxml.h: AGENT_DOMXML_IFACE_TAP). libvirt's own
 * <virtualport type='openvswitch'> would run ovs-vsctl from libvirtd, with libvirtd's
 * environment: a shared system daemon that cannot tell which of several Open vSwitch instances
 * on the machine (OVS_RUNDIR) an agent means. A persistent tap also keeps its OpenFlow port, and
 * so its flows and conntrack zone, while the instance is stopped, rebooted or its QEMU restarted.
 *
 * The tap is named "tap" and the first 8 hex digits of the interface id: stable, so every
 * operation (plug, unplug, the domain XML) derives it again without storing it. Interfaces are
 * plugged with the Interface's external_ids iface-id, attached-mac, vm-id and iface-status, as
 * libvirt and OpenStack write them.
 *
 * Every ovs-vsctl runs with --db=unix:<rundir>/db.sock, never through a shell. Thread-safe: no
 * state besides the configuration. */
#ifndef NUBO_AGENT_VIF_H
#define NUBO_AGENT_VIF_H

#include <stdbool.h>
#include <stddef.h>

struct nb_error;

/* Longest tap name plus NUL (IFNAMSIZ). */
#define AGENT_VIF_TAP_MAX 16

struct agent_vif_config {
    const char *bridge; /* "br-int" when NULL or "" */
    const char *rundir; /* Open vSwitch's run directory (its db.sock); NULL: ovs-vsctl's default */
    long timeout_ms;    /* deadline of each ovs-vsctl; 10000 when 0 */
};

/* One network interface of an instance (pointers borrowed from the caller). */
struct agent_vif {
    const char *id;  /* "eni-" and 17 hex digits */
    const char *mac; /* "52:54:00:xx:xx:xx" */
};

/* True when 'id' is an interface id ("eni-" and 17 lower-case hex digits) and 'mac' a MAC
 * address "xx:xx:xx:xx:xx:xx" (lower- or upper-case hex). */
bool agent_vif_valid(const struct agent_vif *vif);

/* The tap device name of interface 'id' ("tap" + its first 8 hex digits) into 'out'. */
void agent_vif_tap_name(const char *id, char out[AGENT_VIF_TAP_MAX]);

/* Makes the tap of 'vif' (persistent, up) unless it exists, and makes it a port of the bridge
 * with its external_ids (instance 'instance_id'). Idempotent: an existing port is left in place
 * (its OpenFlow port number kept) and its external_ids rewritten. '*netdev' (may be NULL) tells
 * whether the bridge uses the userspace datapath (datapath_type "netdev"), where the guest must
 * not leave checksums to the host (domxml.h: no_tx_csum). Returns 0, or -1 with 'err' set (no
 * such bridge, Open vSwitch unreachable, no permission to make taps). */
int agent_vif_plug(const struct agent_vif_config *cfg, const char *instance_id,
                   const struct agent_vif *vif, bool *netdev, struct nb_error *err);

/* Removes the port of interface 'id' from the bridge and deletes its tap (also when the port
 * could not be removed). Absent is fine. Call it once the domain is destroyed: QEMU holds the
 * tap open while it runs. Returns 0, or -1 with 'err' set (the first failure). */
int agent_vif_unplug(const struct agent_vif_config *cfg, const char *id, struct nb_error *err);

#endif
