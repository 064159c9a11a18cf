/* The instance metadata service's source of truth: what nubo-netctl serves to an instance at
 * 169.254.169.254 (netctl/svc.h), asked for by the host the instance runs on with its node token
 * (GET /internal/v1/metadata?interface=eni-..., node_api.c). netctl identifies the instance by
 * the network interface its request came from; the control plane answers only for an interface
 * whose instance is placed on the calling host, so that a host cannot read other hosts'
 * instances (their user data may hold secrets). */
#ifndef NUBO_GW_SVC_METADATA_H
#define NUBO_GW_SVC_METADATA_H

#include <jansson.h>

struct gw_ctx;
struct nb_error;

/* The metadata of the instance that has network interface 'interface_id' ("eni-...") and runs
 * on host 'host_id':
 *   {"instance_id", "image_id", "instance_type", "hostname" ("ip-10-0-1-5"), "local_ipv4",
 *    "mac", "public_ipv4" (only with an associated elastic IP), "availability_zone", "region",
 *    "account_id", "launch_time" (ISO 8601, UTC), "vpc_id", "subnet_id",
 *    "security_groups": [name, ...] (sorted), "public_keys": [{"name", "key"}] (the launch key
 *    pair, if it still exists), "user_data" (base64; only when the instance has some)}
 * Returns a new reference the caller json_decref()s, or NULL with 'err': NB_ERR_INVALID for a
 * malformed id, NB_ERR_NOT_FOUND when no live instance on that host has the interface. */
json_t *gw_node_metadata(struct gw_ctx *gw, const char *host_id, const char *interface_id,
                         struct nb_error *err);

#endif
