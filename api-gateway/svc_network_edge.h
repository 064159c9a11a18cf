/* The edge of a VPC, service layer (issue 7): internet gateways (CreateInternetGateway,
 * AttachInternetGateway, ...), route tables and their routes and subnet associations
 * (CreateRouteTable, CreateRoute, AssociateRouteTable, ...), and elastic IPs (AllocateAddress,
 * AssociateAddress, ...). VPN is in svc_vpn.h. Follows svc.h.
 *
 * Control plane only: the rows nubo-netctl turns into flows (deploy/migrations/
 * 0008_network_edge.sql says which). The migration's triggers bump netctl_versions of the hosts
 * concerned and write the elastic IPs' usage events (meter_events), in the transaction of each
 * change, so no path here can forget them.
 *
 * Elastic IPs come from the operator's public pool (the gateway settings network.public_pool
 * and network.public_gateway, see svc_edge.h). An address may be associated with an instance's
 * interface only while the interface's VPC has an internet gateway attached
 * (Gateway.NotAttached), and that gateway cannot be detached while addresses of the VPC are
 * associated (DependencyViolation), as in EC2. */
#ifndef NUBO_GW_SVC_NETWORK_EDGE_H
#define NUBO_GW_SVC_NETWORK_EDGE_H

#include <stdbool.h>
#include <stddef.h>

#include "svc.h"

struct gw_ctx;
struct gw_principal;
struct nb_arena;
struct nb_error;

/* --- internet gateways -------------------------------------------------------------------- */

struct gw_internet_gateway {
    const char *id; /* "igw-" + 17 hex */
    const char *owner_id;
    const char *vpc_id; /* the VPC it is attached to; NULL: detached */
    const struct gw_tag *tags;
    size_t n_tags;
};

/* Creates a detached internet gateway tagged 'tags' into '*out'. With 'client_token' (NULL:
 * none) seen before, answers the gateway that request made (IdempotentParameterMismatch if its
 * parameters differed). */
int gw_igw_create(struct gw_ctx *gw, const struct gw_principal *who, const char *client_token,
                  const struct gw_tag *tags, size_t n_tags, struct nb_arena *arena,
                  struct gw_internet_gateway *out, struct nb_error *err);

/* Attaches gateway 'id' to VPC 'vpc_id'. InvalidInternetGatewayID.NotFound,
 * InvalidVpcID.NotFound, Resource.AlreadyAssociated (the gateway is attached, or the VPC has
 * one). */
int gw_igw_attach(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                  const char *vpc_id, struct nb_error *err);

/* Detaches gateway 'id' from VPC 'vpc_id'. Gateway.NotAttached when it is not attached there,
 * DependencyViolation while elastic IPs of the VPC are associated. */
int gw_igw_detach(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                  const char *vpc_id, struct nb_error *err);

/* Deletes gateway 'id' and its tags. DependencyViolation while it is attached. Routes to it
 * stay, as blackholes. */
int gw_igw_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                  struct nb_error *err);

/* Lists the tenant's gateways, those of 'ids' when given (InvalidInternetGatewayID.NotFound for
 * an unknown one), filtered by internet-gateway-id, attachment.vpc-id, attachment.state,
 * owner-id, tag:KEY, tag-key, tag-value; ordered by id. */
int gw_igws_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *const *ids,
                     size_t n_ids, const struct gw_filter *filters, size_t n_filters,
                     struct nb_arena *arena, struct gw_internet_gateway **out, size_t *n,
                     struct nb_error *err);

/* --- route tables ------------------------------------------------------------------------- */

struct gw_route {
    const char *destination; /* "0.0.0.0/0" */
    const char *gateway_id;  /* "local", "igw-...", "vgw-..." */
    const char *state;       /* "active", or "blackhole" when the gateway is not attached */
    const char *origin;      /* "CreateRouteTable" (the local route) or "CreateRoute" */
};

struct gw_route_association {
    const char *id; /* "rtbassoc-" + 17 hex */
    const char *route_table_id;
    const char *subnet_id; /* NULL for the main table's association */
    bool main;
};

struct gw_route_table {
    const char *id; /* "rtb-" + 17 hex */
    const char *owner_id;
    const char *vpc_id;
    bool main;
    const struct gw_route *routes; /* the local route first, then by destination */
    size_t n_routes;
    const struct gw_route_association *associations; /* the main one first, then by subnet */
    size_t n_associations;
    const struct gw_tag *tags;
    size_t n_tags;
};

/* Creates a route table in VPC 'vpc_id' (only its local route) into '*out'.
 * InvalidVpcID.NotFound. 'client_token' as for gw_igw_create(). */
int gw_rtb_create(struct gw_ctx *gw, const struct gw_principal *who, const char *vpc_id,
                  const char *client_token, const struct gw_tag *tags, size_t n_tags,
                  struct nb_arena *arena, struct gw_route_table *out, struct nb_error *err);

/* Deletes table 'id' with its routes and tags. InvalidRouteTableID.NotFound,
 * DependencyViolation for a main table or one associated with subnets. */
int gw_rtb_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                  struct nb_error *err);

/* Lists the tenant's tables, those of 'ids' when given (InvalidRouteTableID.NotFound), filtered
 * by route-table-id, vpc-id, owner-id, association.main, association.subnet-id,
 * association.route-table-association-id, association.route-table-id,
 * route.destination-cidr-block, route.gateway-id, route.state, tag:KEY, tag-key, tag-value;
 * ordered by id. */
int gw_rtbs_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *const *ids,
                     size_t n_ids, const struct gw_filter *filters, size_t n_filters,
                     struct nb_arena *arena, struct gw_route_table **out, size_t *n,
                     struct nb_error *err);

/* Adds to table 'rtb_id' the route to 'destination' (an IPv4 CIDR block outside the VPC's
 * CIDR) through 'gateway_id', an internet or VPN gateway attached to the table's VPC.
 * InvalidRouteTableID.NotFound, InvalidGatewayID.NotFound, InvalidParameterValue (another
 * network's gateway, a destination inside the VPC), RouteAlreadyExists. */
int gw_route_create(struct gw_ctx *gw, const struct gw_principal *who, const char *rtb_id,
                    const char *destination, const char *gateway_id, struct nb_error *err);

/* Removes the route to 'destination' of table 'rtb_id'. InvalidRoute.NotFound (also for the
 * local route, which cannot be removed). */
int gw_route_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *rtb_id,
                    const char *destination, struct nb_error *err);

/* Associates table 'rtb_id' with subnet 'subnet_id' of its VPC; stores the association's id in
 * '*assoc_id' (in 'arena'). InvalidRouteTableID.NotFound, InvalidSubnetID.NotFound,
 * InvalidParameterValue (another VPC's subnet), Resource.AlreadyAssociated (the subnet has a
 * table of its own). */
int gw_rtb_associate(struct gw_ctx *gw, const struct gw_principal *who, const char *rtb_id,
                     const char *subnet_id, struct nb_arena *arena, const char **assoc_id,
                     struct nb_error *err);

/* Removes association 'assoc_id': the subnet uses the main table again.
 * InvalidAssociationID.NotFound, InvalidParameterValue for the main table's association. */
int gw_rtb_disassociate(struct gw_ctx *gw, const struct gw_principal *who, const char *assoc_id,
                        struct nb_error *err);

/* --- elastic IPs -------------------------------------------------------------------------- */

struct gw_address {
    const char *allocation_id; /* "eipalloc-" + 17 hex */
    const char *owner_id;
    const char *public_ip;
    /* Its association; all NULL when it has none. */
    const char *association_id;
    const char *network_interface_id;
    const char *interface_owner_id;
    const char *private_ip;
    const char *instance_id; /* the interface's instance */
    const struct gw_tag *tags;
    size_t n_tags;
};

/* Allocates the lowest free address of the public pool into '*out' (AddressLimitExceeded when
 * none is left, or when the tenant holds its quota's max_elastic_ips). 'client_token' as for
 * gw_igw_create(). */
int gw_address_allocate(struct gw_ctx *gw, const struct gw_principal *who, const char *client_token,
                        const struct gw_tag *tags, size_t n_tags, struct nb_arena *arena,
                        struct gw_address *out, struct nb_error *err);

struct gw_address_association_request {
    const char *allocation_id; /* the address, by allocation id ... */
    const char *public_ip;     /* ... or by address (one of the two) */
    const char *instance_id;   /* the target: an instance's interface (device 0) ... */
    const char *interface_id;  /* ... or an interface (one of the two) */
    const char *private_ip;    /* NULL, or the interface's address */
    bool allow_reassociation;  /* may move an address associated elsewhere */
};

/* Associates an address with an interface: an interface holding another address gives it up,
 * an address associated elsewhere moves only with 'allow_reassociation'
 * (Resource.AlreadyAssociated). Stores the new association id in '*assoc_id' (in 'arena').
 * InvalidAllocationID.NotFound, InvalidAddress.NotFound, InvalidInstanceID.NotFound,
 * InvalidNetworkInterfaceID.NotFound, InvalidInstanceID (an instance without an interface),
 * IncorrectInstanceState (terminated), Gateway.NotAttached (the VPC has no internet gateway),
 * InvalidParameterCombination, MissingParameter. */
int gw_address_associate(struct gw_ctx *gw, const struct gw_principal *who,
                         const struct gw_address_association_request *rq, struct nb_arena *arena,
                         const char **assoc_id, struct nb_error *err);

/* Removes association 'assoc_id' (or that of address 'public_ip' when 'assoc_id' is NULL).
 * InvalidAssociationID.NotFound, InvalidAddress.NotFound. */
int gw_address_disassociate(struct gw_ctx *gw, const struct gw_principal *who, const char *assoc_id,
                            const char *public_ip, struct nb_error *err);

/* Gives address 'allocation_id' (or 'public_ip' when it is NULL) back to the pool, with its
 * tags. InvalidAllocationID.NotFound, InvalidAddress.NotFound, InvalidIPAddress.InUse while
 * it is associated. */
int gw_address_release(struct gw_ctx *gw, const struct gw_principal *who, const char *allocation_id,
                       const char *public_ip, struct nb_error *err);

/* Lists the tenant's addresses, those of 'ids' (allocation ids; InvalidAllocationID.NotFound)
 * and 'ips' (InvalidAddress.NotFound) when given, filtered by allocation-id, association-id,
 * domain, instance-id, network-interface-id, network-interface-owner-id, private-ip-address,
 * public-ip, tag:KEY, tag-key, tag-value; ordered by address. */
int gw_addresses_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *const *ids,
                          size_t n_ids, const char *const *ips, size_t n_ips,
                          const struct gw_filter *filters, size_t n_filters, struct nb_arena *arena,
                          struct gw_address **out, size_t *n, struct nb_error *err);

#endif
