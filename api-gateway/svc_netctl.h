/* The desired network state of a compute host, for nubo-netctl (netctl/model.h has its format,
 * docs/network.md the whole data plane), and the host's reports of what it applied. */
#ifndef NUBO_GW_SVC_NETCTL_H
#define NUBO_GW_SVC_NETCTL_H

#include <jansson.h>

struct gw_ctx;
struct nb_error;

/* The desired state of host 'host_id' as JSON text (malloc()ed; the caller frees it), or
 * {"version": V, "unchanged": true} when its version is still 'known' (a decimal string, may be
 * NULL). 'tunnel_ip' (may be NULL) is the host's tunnel address as nubo-netctl reports it; a
 * change bumps the hosts that share a VPC with it. NULL with 'err' on failure. */
char *gw_node_network(struct gw_ctx *gw, const char *host_id, const char *known,
                      const char *tunnel_ip, struct nb_error *err);

/* Records {"version", "error", "flows", "ports_missing", "vpn_connections": [{"id", "up",
 * "message"}]} from host 'host_id': the applied version, and the state of the VPN gateways it
 * serves (a connection becomes 'available', its tunnel status follows 'up'). */
int gw_node_network_applied(struct gw_ctx *gw, const char *host_id, const json_t *report,
                            struct nb_error *err);

#endif
