/* nubo-netctl on a compute node: fetches the host's desired network state from the control plane
 * (GET /internal/v1/network with the node token), brings Open vSwitch to it by flow diffs, runs
 * the VPN gateways the host serves, and reports the version it applied. */
#ifndef NUBO_NETCTL_NODE_H
#define NUBO_NETCTL_NODE_H

#include <stdbool.h>
#include <stddef.h>

struct nb_config;
struct nb_error;
struct nc_node;
struct nc_state;

struct nc_node *nc_node_open(const struct nb_config *cfg, struct nb_error *err);
/* Starts the loop in a thread. */
int nc_node_start(struct nc_node *n, struct nb_error *err);
void nc_node_stop(struct nc_node *n);
void nc_node_close(struct nc_node *n);

/* One pass: fetch (when 'fetch'), then converge OVS to 'n's desired state. Returns 1 when
 * something was applied, 0 when nothing changed, -1 on error. For tests and the benchmark. */
int nc_node_pass(struct nc_node *n, bool fetch, struct nb_error *err);
/* Replaces the desired state (taking ownership), as a fetch would. */
void nc_node_set_state(struct nc_node *n, struct nc_state *st);
/* Takes this host's networks down: stops the VPN gateways, the remote-access endpoints and the
 * DHCP/metadata service namespaces, deletes nubo's flows and tunnels (the bridge and the VMs' ports stay). For a host
 * leaving the cloud, and for tests. */
int nc_node_teardown(struct nc_node *n, struct nb_error *err);
/* Flows installed by the last pass, and what it added and deleted. */
void nc_node_counts(const struct nc_node *n, size_t *flows, size_t *added, size_t *deleted);

#endif
