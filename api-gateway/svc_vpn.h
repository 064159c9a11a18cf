/* Site-to-site VPN, service layer (issue 7): virtual private gateways (the VPC's side),
 * customer gateways (the customer's device), and VPN connections between the two: one IPsec
 * tunnel (IKEv2 with a pre-shared key; IKE aes256-sha256-modp2048, ESP aes256-sha256 with PFS
 * modp2048) from an outside address of the public pool to the customer gateway's address,
 * carrying the VPC's CIDR to the connection's static routes. Follows svc.h; the conventions of
 * svc_network_edge.h apply (triggers bump netctl_versions and write the 'vpn-connection'
 * usage events).
 *
 * A connection is made 'pending' and bound to one host (the 'up' host with the lowest id),
 * which terminates the tunnel; nubo-netctl makes it 'available' there. A deleted connection
 * stays visible, 'deleted', for an hour, as in EC2. */
#ifndef NUBO_GW_SVC_VPN_H
#define NUBO_GW_SVC_VPN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "svc.h"

struct gw_ctx;
struct gw_principal;
struct nb_arena;
struct nb_buf;
struct nb_error;

/* --- VPN gateways ------------------------------------------------------------------------- */

struct gw_vpn_gateway {
    const char *id; /* "vgw-" + 17 hex */
    const char *owner_id;
    const char *type;  /* "ipsec.1" */
    const char *state; /* "available" */
    const char *zone;  /* NULL when none was asked for */
    long long amazon_side_asn;
    const char *vpc_id; /* attached to; NULL: detached */
    const struct gw_tag *tags;
    size_t n_tags;
};

/* Creates a detached gateway of 'type' ("ipsec.1"; InvalidParameterValue otherwise) in
 * availability zone 'zone' (NULL: none) with BGP ASN 'asn' (0: 64512) into '*out'.
 * 'client_token' as for gw_igw_create(). */
int gw_vgw_create(struct gw_ctx *gw, const struct gw_principal *who, const char *type,
                  const char *zone, long long asn, const char *client_token,
                  const struct gw_tag *tags, size_t n_tags, struct nb_arena *arena,
                  struct gw_vpn_gateway *out, struct nb_error *err);

/* Attaches gateway 'id' to VPC 'vpc_id'. InvalidVpnGatewayID.NotFound, InvalidVpcID.NotFound,
 * Resource.AlreadyAssociated (the gateway is attached), VpnGatewayAttachmentLimitExceeded (the
 * VPC has one). */
int gw_vgw_attach(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                  const char *vpc_id, struct nb_error *err);

/* Detaches gateway 'id' from VPC 'vpc_id' (its routes become blackholes, its connections carry
 * nothing). InvalidVpnGatewayAttachment.NotFound when it is not attached there. */
int gw_vgw_detach(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                  const char *vpc_id, struct nb_error *err);

/* Deletes gateway 'id' and its tags. IncorrectState while it is attached or has connections
 * that are not deleted. */
int gw_vgw_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                  struct nb_error *err);

/* Lists the tenant's gateways, those of 'ids' when given (InvalidVpnGatewayID.NotFound),
 * filtered by vpn-gateway-id, state, type, availability-zone, amazon-side-asn,
 * attachment.vpc-id, attachment.state, tag:KEY, tag-key, tag-value; ordered by id. */
int gw_vgws_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *const *ids,
                     size_t n_ids, const struct gw_filter *filters, size_t n_filters,
                     struct nb_arena *arena, struct gw_vpn_gateway **out, size_t *n,
                     struct nb_error *err);

/* --- customer gateways -------------------------------------------------------------------- */

struct gw_customer_gateway {
    const char *id; /* "cgw-" + 17 hex */
    const char *owner_id;
    const char *type;  /* "ipsec.1" */
    const char *state; /* "available" */
    const char *ip_address;
    long long bgp_asn;
    const char *device_name; /* NULL when none */
    const struct gw_tag *tags;
    size_t n_tags;
};

/* Creates a gateway of 'type' ("ipsec.1") for the device at IPv4 'ip' with BGP ASN 'asn' (0:
 * 65000) named 'device_name' (NULL: none) into '*out'; an identical one answers the existing
 * gateway (and 'tags' are not applied), as in EC2. MissingParameter, InvalidParameterValue. */
int gw_cgw_create(struct gw_ctx *gw, const struct gw_principal *who, const char *type,
                  const char *ip, long long asn, const char *device_name, const struct gw_tag *tags,
                  size_t n_tags, struct nb_arena *arena, struct gw_customer_gateway *out,
                  struct nb_error *err);

/* Deletes gateway 'id' and its tags. InvalidCustomerGatewayID.NotFound, IncorrectState while
 * connections that are not deleted use it. */
int gw_cgw_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                  struct nb_error *err);

/* Lists the tenant's gateways, those of 'ids' when given (InvalidCustomerGatewayID.NotFound),
 * filtered by customer-gateway-id, ip-address, bgp-asn, state, type, device-name, tag:KEY,
 * tag-key, tag-value; ordered by id. */
int gw_cgws_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *const *ids,
                     size_t n_ids, const struct gw_filter *filters, size_t n_filters,
                     struct nb_arena *arena, struct gw_customer_gateway **out, size_t *n,
                     struct nb_error *err);

/* --- VPN connections ---------------------------------------------------------------------- */

struct gw_vpn_route {
    const char *destination; /* a CIDR of the customer's network */
    const char *state;       /* "available", or "deleted" with its connection */
};

struct gw_vpn_connection {
    const char *id; /* "vpn-" + 17 hex */
    const char *owner_id;
    const char *type;  /* "ipsec.1" */
    const char *state; /* "pending", "available", "deleting", "deleted" */
    const char *customer_gateway_id;
    const char *vpn_gateway_id;
    bool static_routes_only;
    const char *outside_ip;            /* our end of the tunnel */
    const char *customer_ip;           /* their end: the customer gateway's address */
    const char *psk;                   /* the pre-shared key */
    const char *vpc_id;                /* the VPN gateway's VPC; NULL while it is detached */
    const char *vpc_cidr;              /* its CIDR, the local side of the tunnel; NULL likewise */
    const char *host_id;               /* the host terminating the tunnel; NULL: none */
    const struct gw_vpn_route *routes; /* the remote side, by destination */
    size_t n_routes;
    const char *tunnel_status; /* "UP" or "DOWN", as the host last saw it */
    int64_t tunnel_status_ms;  /* since when, epoch milliseconds */
    const char *tunnel_status_message;
    const struct gw_tag *tags;
    size_t n_tags;
};

struct gw_vpn_request {
    const char *type; /* "ipsec.1" */
    const char *customer_gateway_id;
    const char *vpn_gateway_id;
    bool static_routes_only;  /* must be true: nubo runs no BGP */
    const char *client_token; /* NULL: none */
    const struct gw_tag *tags;
    size_t n_tags;
};

/* Creates a connection between the tenant's two gateways into '*out': an outside address from
 * the public pool (VpnConnectionLimitExceeded when none is left), a random pre-shared key, the
 * terminating host. MissingParameter, InvalidParameterValue, InvalidCustomerGatewayID.NotFound,
 * InvalidVpnGatewayID.NotFound, IdempotentParameterMismatch. */
int gw_vpn_create(struct gw_ctx *gw, const struct gw_principal *who,
                  const struct gw_vpn_request *rq, struct nb_arena *arena,
                  struct gw_vpn_connection *out, struct nb_error *err);

/* Deletes connection 'id' (it becomes 'deleted' and gives its address back).
 * InvalidVpnConnectionID.NotFound (also for one deleted already). */
int gw_vpn_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                  struct nb_error *err);

/* Adds ('add') or removes the static route to 'destination' of connection 'id'.
 * InvalidVpnConnectionID.NotFound, InvalidParameterValue (not a CIDR block, or overlapping the
 * VPC), RouteAlreadyExists, InvalidRoute.NotFound. */
int gw_vpn_route_change(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                        const char *destination, bool add, struct nb_error *err);

/* Lists the tenant's connections (the deleted ones of the last hour too), those of 'ids' when
 * given (InvalidVpnConnectionID.NotFound), filtered by vpn-connection-id, state,
 * customer-gateway-id, vpn-gateway-id, type, option.static-routes-only,
 * route.destination-cidr-block, bgp-asn, tag:KEY, tag-key, tag-value; ordered by id. */
int gw_vpns_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *const *ids,
                     size_t n_ids, const struct gw_filter *filters, size_t n_filters,
                     struct nb_arena *arena, struct gw_vpn_connection **out, size_t *n,
                     struct nb_error *err);

/* Appends to 'b' connection 'v''s customer gateway configuration: EC2's XML document
 * (<vpn_connection id="..."> with one <ipsec_tunnel>: both outside addresses, the IKE and
 * IPsec parameters with the pre-shared key, in EC2's terms and as strongSwan proposals), plus
 * the VPC's CIDR and the static routes, from which the customer's device is configured. */
void gw_vpn_config_xml(struct nb_buf *b, const struct gw_vpn_connection *v);

#endif
