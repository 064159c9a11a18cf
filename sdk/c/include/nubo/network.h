/* libnubo: tenant networks (network.c, network_edge.c, network_routing.c). Part of the public
 * API of <nubo/nubo.h>, which includes this file: include that one, never this one alone. The
 * conventions of nubo.h (errors, ownership, thread-safety) hold here too. */
#ifndef NUBO_NETWORK_H
#define NUBO_NETWORK_H

#ifndef NUBO_NUBO_H
#error "include <nubo/nubo.h>, not <nubo/network.h>"
#endif

/* --- networks: VPCs, subnets, security groups ------------------------------------------------ */

struct nubo_vpc {
    char *id; /* "vpc-" and 17 hex digits */
    char *owner_id;
    char *cidr_block;  /* "10.0.0.0/16" */
    char *state;       /* pending, available */
    long long segment; /* the network's VLAN/VXLAN key */
    struct nubo_tag *tags;
    size_t n_tags;
    char *json;
};

struct nubo_vpc_list {
    struct nubo_vpc *items;
    size_t n;
};

/* Creates a VPC of 'cidr_block' (an IPv4 block of /16 to /28; it may overlap another tenant's)
 * with 'n_tags' 'tags' (may be NULL when 0), made with its "default" security group. Returns it,
 * which the caller frees with nubo_vpc_free(), or NULL with '*err' set ("InvalidVpc.Range",
 * "VpcLimitExceeded", "InvalidParameterValue"). Not retried. */
NUBO_API struct nubo_vpc *nubo_vpc_create(struct nubo_client *client, const char *cidr_block,
                                          const struct nubo_tag *tags, size_t n_tags,
                                          struct nubo_error *err);

/* Returns the caller's VPCs matching 'filters' ("vpc-id", "cidr", "state", "tag:KEY", ...),
 * ordered by id, or NULL with '*err' set. The caller frees the list with nubo_vpc_list_free(). */
NUBO_API struct nubo_vpc_list *nubo_vpcs_list(struct nubo_client *client,
                                              const struct nubo_filter *filters, size_t n_filters,
                                              struct nubo_error *err);

/* Returns the VPC 'id', or NULL with '*err' set ("InvalidVpcID.NotFound", also for another
 * tenant's). The caller frees it with nubo_vpc_free(). Retried (a GET). */
NUBO_API struct nubo_vpc *nubo_vpc_get(struct nubo_client *client, const char *id,
                                       struct nubo_error *err);

/* Deletes the VPC 'id' with its default group. Returns 0, or -1 with '*err' set
 * ("DependencyViolation" while it has subnets or other groups, "InvalidVpcID.NotFound"). */
NUBO_API int nubo_vpc_delete(struct nubo_client *client, const char *id, struct nubo_error *err);
NUBO_API void nubo_vpc_free(struct nubo_vpc *vpc);
NUBO_API void nubo_vpc_list_free(struct nubo_vpc_list *list);

struct nubo_subnet {
    char *id; /* "subnet-" and 17 hex digits */
    char *owner_id;
    char *vpc_id;
    char *zone;
    char *cidr_block;
    char *state;             /* pending, available */
    long long available_ips; /* the size less 5 reserved addresses and those in use */
    struct nubo_tag *tags;
    size_t n_tags;
    char *json;
};

struct nubo_subnet_list {
    struct nubo_subnet *items;
    size_t n;
};

/* What nubo_subnet_create() sends. */
struct nubo_subnet_params {
    const char *vpc_id;     /* required */
    const char *cidr_block; /* required: inside the VPC's, /16 to /28 */
    const char *zone;       /* NULL: the first available zone */
    const struct nubo_tag *tags;
    size_t n_tags;
};

/* Creates a subnet. Returns it, which the caller frees with nubo_subnet_free(), or NULL with
 * '*err' set ("InvalidVpcID.NotFound", "InvalidSubnet.Range" outside the VPC or not /16 to /28,
 * "InvalidSubnet.Conflict" overlapping another subnet of the VPC, "InvalidParameterValue").
 * Not retried. */
NUBO_API struct nubo_subnet *nubo_subnet_create(struct nubo_client *client,
                                                const struct nubo_subnet_params *params,
                                                struct nubo_error *err);

/* Returns the caller's subnets matching 'filters' ("subnet-id", "vpc-id", "cidr",
 * "availability-zone", "tag:KEY", ...), ordered by id, or NULL with '*err' set. The caller frees
 * the list with nubo_subnet_list_free(). */
NUBO_API struct nubo_subnet_list *nubo_subnets_list(struct nubo_client *client,
                                                    const struct nubo_filter *filters,
                                                    size_t n_filters, struct nubo_error *err);

/* Returns the subnet 'id', or NULL with '*err' set ("InvalidSubnetID.NotFound"). The caller
 * frees it with nubo_subnet_free(). */
NUBO_API struct nubo_subnet *nubo_subnet_get(struct nubo_client *client, const char *id,
                                             struct nubo_error *err);

/* Deletes the subnet 'id'. Returns 0, or -1 with '*err' set ("DependencyViolation" while
 * instances not terminated use it, "InvalidSubnetID.NotFound"). */
NUBO_API int nubo_subnet_delete(struct nubo_client *client, const char *id, struct nubo_error *err);
NUBO_API void nubo_subnet_free(struct nubo_subnet *subnet);
NUBO_API void nubo_subnet_list_free(struct nubo_subnet_list *list);

/* One rule of a security group, as the API answers it. */
struct nubo_sg_rule {
    char *id;        /* "sgr-..." */
    char *direction; /* ingress, egress */
    char *protocol;  /* tcp, udp, icmp, or "-1" (all) */
    int from_port;   /* -1: all (ICMP: the type) */
    int to_port;     /* -1: all (ICMP: the code) */
    char *cidr;      /* the peer range, or NULL when the peer is 'group_id' */
    char *group_id;  /* the peer group, or NULL when the peer is 'cidr' */
    char *description;
};

struct nubo_security_group {
    char *id; /* "sg-" and 17 hex digits */
    char *owner_id;
    char *vpc_id;
    char *name;
    char *description;
    struct nubo_sg_rule *rules; /* 'n_rules' of them, ingress first */
    size_t n_rules;
    struct nubo_tag *tags;
    size_t n_tags;
    char *json;
};

struct nubo_security_group_list {
    struct nubo_security_group *items;
    size_t n;
};

/* What nubo_security_group_create() sends. */
struct nubo_security_group_params {
    const char *name;        /* required; not "default", not starting with "sg-" */
    const char *description; /* required: 1 to 255 characters */
    const char *vpc_id;      /* required */
    const struct nubo_tag *tags;
    size_t n_tags;
};

/* A rule to add or remove: exactly one of 'cidr' and 'group_id'. */
struct nubo_sg_rule_spec {
    bool egress;             /* false: ingress */
    const char *protocol;    /* "tcp", "udp", "icmp", "-1" or "all"; required */
    int from_port, to_port;  /* -1: all; ignored for protocol "-1" */
    const char *cidr;        /* "0.0.0.0/0", or NULL */
    const char *group_id;    /* a group of the same VPC, or NULL */
    const char *description; /* NULL: "" */
};

/* Creates a security group in a VPC, with EC2's initial rule (egress anywhere). Returns it,
 * which the caller frees with nubo_security_group_free(), or NULL with '*err' set
 * ("InvalidVpcID.NotFound", "InvalidGroup.Duplicate", "InvalidGroup.Reserved"). Not retried. */
NUBO_API struct nubo_security_group *
nubo_security_group_create(struct nubo_client *client,
                           const struct nubo_security_group_params *params, struct nubo_error *err);

/* Returns the caller's security groups matching 'filters' ("group-id", "group-name", "vpc-id",
 * "tag:KEY", ...), by VPC then name, or NULL with '*err' set. The caller frees the list with
 * nubo_security_group_list_free(). */
NUBO_API struct nubo_security_group_list *
nubo_security_groups_list(struct nubo_client *client, const struct nubo_filter *filters,
                          size_t n_filters, struct nubo_error *err);

/* Returns the security group 'id' with its rules, or NULL with '*err' set
 * ("InvalidGroup.NotFound"). The caller frees it with nubo_security_group_free(). */
NUBO_API struct nubo_security_group *
nubo_security_group_get(struct nubo_client *client, const char *id, struct nubo_error *err);

/* Deletes the security group 'id'. Returns 0, or -1 with '*err' set ("CannotDelete" for a
 * VPC's default group, "DependencyViolation" while instances use it or another group's rule
 * refers to it, "InvalidGroup.NotFound"). */
NUBO_API int nubo_security_group_delete(struct nubo_client *client, const char *id,
                                        struct nubo_error *err);

/* Adds the 'n_rules' rules of 'rules' to the group 'id', all or none. Returns the group as it
 * now is, which the caller frees with nubo_security_group_free(), or NULL with '*err' set
 * ("InvalidPermission.Duplicate", "InvalidGroup.NotFound" for the group or a referenced group
 * not in its VPC, "InvalidPermission.Malformed" for neither or both of 'cidr' and 'group_id',
 * "InvalidParameterValue" for a protocol or ports). Not retried. */
NUBO_API struct nubo_security_group *
nubo_security_group_rules_add(struct nubo_client *client, const char *id,
                              const struct nubo_sg_rule_spec *rules, size_t n_rules,
                              struct nubo_error *err);

/* Removes the 'n_rules' rules of 'rules' (named as for adding them) from the group 'id', all
 * or none. Returns the group as it now is, which the caller frees with
 * nubo_security_group_free(), or NULL with '*err' set ("InvalidPermission.NotFound" when one
 * does not exist). Not retried. */
NUBO_API struct nubo_security_group *
nubo_security_group_rules_remove(struct nubo_client *client, const char *id,
                                 const struct nubo_sg_rule_spec *rules, size_t n_rules,
                                 struct nubo_error *err);
NUBO_API void nubo_security_group_free(struct nubo_security_group *group);
NUBO_API void nubo_security_group_list_free(struct nubo_security_group_list *list);

/* --- a VPC's edge: elastic IPs and site-to-site VPN (network_edge.c) ------------------------- */

struct nubo_address {
    char *id; /* the allocation id, "eipalloc-" and 17 hex digits */
    char *public_ip;
    char *association_id;       /* NULL while it is not associated */
    char *instance_id;          /* the instance of its interface, NULL likewise */
    char *network_interface_id; /* NULL likewise */
    char *private_ip;           /* the interface's address, NULL likewise */
    struct nubo_tag *tags;
    size_t n_tags;
    char *json;
};

struct nubo_address_list {
    struct nubo_address *items;
    size_t n;
};

/* Allocates an elastic IP from the cloud's public pool, tagged 'tags' ('n_tags' of them; may be
 * NULL when 0). Returns it, which the caller frees with nubo_address_free(), or NULL with '*err'
 * set ("AddressLimitExceeded" when the pool is empty). Not retried. */
NUBO_API struct nubo_address *nubo_address_allocate(struct nubo_client *client,
                                                    const struct nubo_tag *tags, size_t n_tags,
                                                    struct nubo_error *err);

/* Returns the caller's addresses matching 'filters' ("public-ip", "instance-id",
 * "association-id", ...), by address, or NULL with '*err' set. The caller frees the list with
 * nubo_address_list_free(). */
NUBO_API struct nubo_address_list *nubo_addresses_list(struct nubo_client *client,
                                                       const struct nubo_filter *filters,
                                                       size_t n_filters, struct nubo_error *err);

/* Returns the address of allocation id 'id', or NULL with '*err' set
 * ("InvalidAllocationID.NotFound"). The caller frees it with nubo_address_free(). */
NUBO_API struct nubo_address *nubo_address_get(struct nubo_client *client, const char *id,
                                               struct nubo_error *err);

/* Associates the address 'id' with the interface of instance 'instance_id' or with interface
 * 'network_interface_id' (exactly one of them); an address associated elsewhere moves only
 * with 'allow_reassociation'. Returns the address as it now is (free it with
 * nubo_address_free()), or NULL with '*err' set ("Gateway.NotAttached" when the VPC has no
 * internet gateway, "Resource.AlreadyAssociated", "InvalidInstanceID.NotFound", ...). */
NUBO_API struct nubo_address *nubo_address_associate(struct nubo_client *client, const char *id,
                                                     const char *instance_id,
                                                     const char *network_interface_id,
                                                     bool allow_reassociation,
                                                     struct nubo_error *err);

/* Disassociates the address 'id' (nothing to do when it is not). Returns it as it now is, or
 * NULL with '*err' set. */
NUBO_API struct nubo_address *nubo_address_disassociate(struct nubo_client *client, const char *id,
                                                        struct nubo_error *err);

/* Releases the address 'id' back to the pool. Returns 0, or -1 with '*err' set
 * ("InvalidIPAddress.InUse" while it is associated). */
NUBO_API int nubo_address_release(struct nubo_client *client, const char *id,
                                  struct nubo_error *err);
NUBO_API void nubo_address_free(struct nubo_address *address);
NUBO_API void nubo_address_list_free(struct nubo_address_list *list);

struct nubo_vpn_gateway {
    char *id;     /* "vgw-" and 17 hex digits */
    char *type;   /* "ipsec.1" */
    char *state;  /* "available" */
    char *vpc_id; /* the VPC it is attached to, NULL when detached */
    long long amazon_side_asn;
    struct nubo_tag *tags;
    size_t n_tags;
    char *json;
};

struct nubo_vpn_gateway_list {
    struct nubo_vpn_gateway *items;
    size_t n;
};

/* Creates a detached VPN gateway with BGP ASN 'amazon_side_asn' (0: 64512). Returns it (free it
 * with nubo_vpn_gateway_free()), or NULL with '*err' set. Not retried. */
NUBO_API struct nubo_vpn_gateway *nubo_vpn_gateway_create(struct nubo_client *client,
                                                          long long amazon_side_asn,
                                                          const struct nubo_tag *tags,
                                                          size_t n_tags, struct nubo_error *err);
NUBO_API struct nubo_vpn_gateway_list *nubo_vpn_gateways_list(struct nubo_client *client,
                                                              const struct nubo_filter *filters,
                                                              size_t n_filters,
                                                              struct nubo_error *err);
NUBO_API struct nubo_vpn_gateway *nubo_vpn_gateway_get(struct nubo_client *client, const char *id,
                                                       struct nubo_error *err);
/* Attaches ('attach') the gateway 'id' to VPC 'vpc_id', or detaches it from it. Returns the
 * gateway as it now is, or NULL with '*err' set ("VpnGatewayAttachmentLimitExceeded",
 * "InvalidVpnGatewayAttachment.NotFound", ...). */
NUBO_API struct nubo_vpn_gateway *nubo_vpn_gateway_attach(struct nubo_client *client,
                                                          const char *id, const char *vpc_id,
                                                          bool attach, struct nubo_error *err);
/* Deletes the gateway 'id'. Returns 0, or -1 with '*err' set ("IncorrectState" while it is
 * attached or has connections). */
NUBO_API int nubo_vpn_gateway_delete(struct nubo_client *client, const char *id,
                                     struct nubo_error *err);
NUBO_API void nubo_vpn_gateway_free(struct nubo_vpn_gateway *gateway);
NUBO_API void nubo_vpn_gateway_list_free(struct nubo_vpn_gateway_list *list);

struct nubo_customer_gateway {
    char *id;         /* "cgw-" and 17 hex digits */
    char *type;       /* "ipsec.1" */
    char *state;      /* "available" */
    char *ip_address; /* the customer's device */
    long long bgp_asn;
    char *device_name; /* NULL when none */
    struct nubo_tag *tags;
    size_t n_tags;
    char *json;
};

struct nubo_customer_gateway_list {
    struct nubo_customer_gateway *items;
    size_t n;
};

/* Creates a customer gateway for the device at IPv4 'ip_address' with BGP ASN 'bgp_asn' (0:
 * 65000) named 'device_name' (may be NULL); an identical one answers the existing gateway.
 * Returns it (free it with nubo_customer_gateway_free()), or NULL with '*err' set. */
NUBO_API struct nubo_customer_gateway *
nubo_customer_gateway_create(struct nubo_client *client, const char *ip_address, long long bgp_asn,
                             const char *device_name, const struct nubo_tag *tags, size_t n_tags,
                             struct nubo_error *err);
NUBO_API struct nubo_customer_gateway_list *
nubo_customer_gateways_list(struct nubo_client *client, const struct nubo_filter *filters,
                            size_t n_filters, struct nubo_error *err);
NUBO_API struct nubo_customer_gateway *
nubo_customer_gateway_get(struct nubo_client *client, const char *id, struct nubo_error *err);
/* Deletes the gateway 'id'. Returns 0, or -1 with '*err' set ("IncorrectState" while
 * connections use it). */
NUBO_API int nubo_customer_gateway_delete(struct nubo_client *client, const char *id,
                                          struct nubo_error *err);
NUBO_API void nubo_customer_gateway_free(struct nubo_customer_gateway *gateway);
NUBO_API void nubo_customer_gateway_list_free(struct nubo_customer_gateway_list *list);

struct nubo_vpn_connection {
    char *id;    /* "vpn-" and 17 hex digits */
    char *state; /* pending, available, deleting, deleted */
    char *customer_gateway_id;
    char *vpn_gateway_id;
    char *outside_ip;     /* our end of the tunnel */
    char *customer_ip;    /* the customer gateway's address */
    char *pre_shared_key; /* the tunnel's key */
    char *vpc_cidr;       /* the VPN gateway's VPC's CIDR, NULL while it is detached */
    char **routes;        /* 'n_routes' static routes: the customer's networks */
    size_t n_routes;
    char *tunnel_status; /* "UP" or "DOWN" */
    char *configuration; /* the customer gateway configuration (XML), NULL once deleted */
    struct nubo_tag *tags;
    size_t n_tags;
    char *json;
};

struct nubo_vpn_connection_list {
    struct nubo_vpn_connection *items;
    size_t n;
};

/* Creates a VPN connection (one IPsec tunnel, static routes) between the customer gateway
 * 'customer_gateway_id' and the VPN gateway 'vpn_gateway_id'. Returns it (free it with
 * nubo_vpn_connection_free()), or NULL with '*err' set ("VpnConnectionLimitExceeded", ...).
 * Not retried. */
NUBO_API struct nubo_vpn_connection *
nubo_vpn_connection_create(struct nubo_client *client, const char *customer_gateway_id,
                           const char *vpn_gateway_id, const struct nubo_tag *tags, size_t n_tags,
                           struct nubo_error *err);
NUBO_API struct nubo_vpn_connection_list *
nubo_vpn_connections_list(struct nubo_client *client, const struct nubo_filter *filters,
                          size_t n_filters, struct nubo_error *err);
NUBO_API struct nubo_vpn_connection *
nubo_vpn_connection_get(struct nubo_client *client, const char *id, struct nubo_error *err);
/* Adds ('add') or removes the static route to 'destination' (a CIDR block of the customer's)
 * of connection 'id'. Returns the connection as it now is, or NULL with '*err' set
 * ("RouteAlreadyExists", "InvalidRoute.NotFound", ...). */
NUBO_API struct nubo_vpn_connection *nubo_vpn_connection_route(struct nubo_client *client,
                                                               const char *id,
                                                               const char *destination, bool add,
                                                               struct nubo_error *err);
/* Deletes connection 'id' (it stays visible, deleted, for an hour). Returns 0, or -1 with '*err'
 * set. */
NUBO_API int nubo_vpn_connection_delete(struct nubo_client *client, const char *id,
                                        struct nubo_error *err);
NUBO_API void nubo_vpn_connection_free(struct nubo_vpn_connection *connection);
NUBO_API void nubo_vpn_connection_list_free(struct nubo_vpn_connection_list *list);

/* --- internet gateways, route tables and remote access (network_routing.c) ----------------- */

struct nubo_internet_gateway {
    char *id;     /* "igw-" and 17 hex digits */
    char *vpc_id; /* the VPC it is attached to, NULL when detached */
    struct nubo_tag *tags;
    size_t n_tags;
    char *json;
};

struct nubo_internet_gateway_list {
    struct nubo_internet_gateway *items;
    size_t n;
};

/* Creates a detached internet gateway tagged 'tags' ('n_tags'; may be NULL when 0). Returns it
 * (free it with nubo_internet_gateway_free()), or NULL with '*err' set. Not retried. */
NUBO_API struct nubo_internet_gateway *nubo_internet_gateway_create(struct nubo_client *client,
                                                                    const struct nubo_tag *tags,
                                                                    size_t n_tags,
                                                                    struct nubo_error *err);

/* Returns the caller's internet gateways matching 'filters' ("internet-gateway-id",
 * "attachment.vpc-id", "tag:KEY", ...), or NULL with '*err' set. The caller frees the list with
 * nubo_internet_gateway_list_free(). */
NUBO_API struct nubo_internet_gateway_list *
nubo_internet_gateways_list(struct nubo_client *client, const struct nubo_filter *filters,
                            size_t n_filters, struct nubo_error *err);

/* Returns the internet gateway 'id' (free it with nubo_internet_gateway_free()), or NULL with
 * '*err' set ("InvalidInternetGatewayID.NotFound"). */
NUBO_API struct nubo_internet_gateway *
nubo_internet_gateway_get(struct nubo_client *client, const char *id, struct nubo_error *err);

/* Attaches ('attach') the gateway 'id' to VPC 'vpc_id', or detaches it from it. Returns the
 * gateway as it now is (free it with nubo_internet_gateway_free()), or NULL with '*err' set
 * ("Resource.AlreadyAssociated", "Gateway.NotAttached", ...). Not retried. */
NUBO_API struct nubo_internet_gateway *nubo_internet_gateway_attach(struct nubo_client *client,
                                                                    const char *id,
                                                                    const char *vpc_id, bool attach,
                                                                    struct nubo_error *err);

/* Deletes the gateway 'id'. Returns 0, or -1 with '*err' set ("DependencyViolation" while it
 * is attached). */
NUBO_API int nubo_internet_gateway_delete(struct nubo_client *client, const char *id,
                                          struct nubo_error *err);
NUBO_API void nubo_internet_gateway_free(struct nubo_internet_gateway *gateway);
NUBO_API void nubo_internet_gateway_list_free(struct nubo_internet_gateway_list *list);

struct nubo_route {
    char *destination; /* a CIDR */
    char *gateway_id;  /* "local", "igw-...", "vgw-..." */
    char *state;       /* "active", "blackhole" */
    char *origin;      /* "CreateRouteTable", "CreateRoute" */
};

struct nubo_route_association {
    char *id;        /* "rtbassoc-" and 17 hex digits */
    char *subnet_id; /* NULL for the main association */
    bool main;
};

struct nubo_route_table {
    char *id; /* "rtb-" and 17 hex digits */
    char *vpc_id;
    bool main; /* the VPC's main route table */
    struct nubo_route *routes;
    size_t n_routes;
    struct nubo_route_association *associations;
    size_t n_associations;
    struct nubo_tag *tags;
    size_t n_tags;
    char *json;
};

struct nubo_route_table_list {
    struct nubo_route_table *items;
    size_t n;
};

/* A subnet's association with a route table, as nubo_route_table_associate() answers it. */
struct nubo_route_table_association {
    char *id; /* "rtbassoc-" and 17 hex digits */
    char *route_table_id;
    char *subnet_id;
    char *json;
};

/* Creates a route table in VPC 'vpc_id' (with its local route), tagged 'tags'. Returns it (free
 * it with nubo_route_table_free()), or NULL with '*err' set ("InvalidVpcID.NotFound"). Not
 * retried. */
NUBO_API struct nubo_route_table *nubo_route_table_create(struct nubo_client *client,
                                                          const char *vpc_id,
                                                          const struct nubo_tag *tags,
                                                          size_t n_tags, struct nubo_error *err);

/* Returns the caller's route tables matching 'filters' ("route-table-id", "vpc-id",
 * "association.subnet-id", "association.route-table-association-id", ...), or NULL with '*err'
 * set. The caller frees the list with nubo_route_table_list_free(). */
NUBO_API struct nubo_route_table_list *nubo_route_tables_list(struct nubo_client *client,
                                                              const struct nubo_filter *filters,
                                                              size_t n_filters,
                                                              struct nubo_error *err);

/* Returns the route table 'id' (free it with nubo_route_table_free()), or NULL with '*err' set
 * ("InvalidRouteTableID.NotFound"). */
NUBO_API struct nubo_route_table *nubo_route_table_get(struct nubo_client *client, const char *id,
                                                       struct nubo_error *err);

/* Deletes the route table 'id'. Returns 0, or -1 with '*err' set ("DependencyViolation" for
 * the main table or one with subnets associated). */
NUBO_API int nubo_route_table_delete(struct nubo_client *client, const char *id,
                                     struct nubo_error *err);

/* Adds ('add') to the table 'id' the route to 'destination' through 'gateway_id' (an internet
 * or VPN gateway attached to its VPC), or deletes the route to 'destination' ('gateway_id'
 * unused, may be NULL). Returns the table as it now is (free it with nubo_route_table_free()),
 * or NULL with '*err' set ("RouteAlreadyExists", "InvalidRoute.NotFound",
 * "InvalidGatewayID.NotFound", ...). Not retried. */
NUBO_API struct nubo_route_table *nubo_route_table_route(struct nubo_client *client, const char *id,
                                                         const char *destination,
                                                         const char *gateway_id, bool add,
                                                         struct nubo_error *err);

/* Associates subnet 'subnet_id' with the table 'id' (in place of the main table). Returns the
 * association (free it with nubo_route_table_association_free()), or NULL with '*err' set
 * ("Resource.AlreadyAssociated", "InvalidSubnetID.NotFound", ...). Not retried. */
NUBO_API struct nubo_route_table_association *nubo_route_table_associate(struct nubo_client *client,
                                                                         const char *id,
                                                                         const char *subnet_id,
                                                                         struct nubo_error *err);

/* Removes the association 'association_id' (its subnet goes back to the main table), finding
 * its route table first. Returns 0, or -1 with '*err' set ("InvalidAssociationID.NotFound"). */
NUBO_API int nubo_route_table_disassociate(struct nubo_client *client, const char *association_id,
                                           struct nubo_error *err);
NUBO_API void nubo_route_table_free(struct nubo_route_table *table);
NUBO_API void nubo_route_table_list_free(struct nubo_route_table_list *list);
NUBO_API void nubo_route_table_association_free(struct nubo_route_table_association *assoc);

/* A WireGuard remote access endpoint: clients ("peers") reach VPC 'vpc_id' through it. */
struct nubo_remote_access {
    char *id; /* "rae-" and 17 hex digits */
    char *vpc_id;
    char *vpc_cidr;
    char *client_cidr; /* the peers' addresses come from it */
    char *public_key;  /* the endpoint's WireGuard key */
    char *outside_ip;
    long long listen_port;
    char *state;
    char *host_id;     /* NULL until placed */
    char *description; /* may be "" */
    long long n_peers;
    char *json;
};

struct nubo_remote_access_list {
    struct nubo_remote_access *items;
    size_t n;
};

struct nubo_remote_access_peer {
    char *id;
    char *endpoint_id;
    char *name;
    char *public_key;
    char *address;       /* the peer's address in the client CIDR */
    char *client_config; /* a wg-quick configuration for the client (without its private key) */
    char *json;
};

struct nubo_remote_access_peer_list {
    struct nubo_remote_access_peer *items;
    size_t n;
};

/* Creates a remote access endpoint into VPC 'vpc_id' for clients in 'client_cidr', described
 * by 'description' (may be NULL). Returns it (free it with nubo_remote_access_free()), or NULL
 * with '*err' set ("InvalidVpcID.NotFound", "InvalidParameterValue", ...). Not retried. */
NUBO_API struct nubo_remote_access *
nubo_remote_access_create(struct nubo_client *client, const char *vpc_id, const char *client_cidr,
                          const char *description, struct nubo_error *err);

/* Returns the caller's remote access endpoints, or NULL with '*err' set. The caller frees the
 * list with nubo_remote_access_list_free(). */
NUBO_API struct nubo_remote_access_list *nubo_remote_accesses_list(struct nubo_client *client,
                                                                   struct nubo_error *err);

/* Returns the endpoint 'id' (free it with nubo_remote_access_free()), or NULL with '*err' set
 * (a "*.NotFound" code). */
NUBO_API struct nubo_remote_access *nubo_remote_access_get(struct nubo_client *client,
                                                           const char *id, struct nubo_error *err);

/* Deletes the endpoint 'id' and its peers. Returns 0, or -1 with '*err' set. */
NUBO_API int nubo_remote_access_delete(struct nubo_client *client, const char *id,
                                       struct nubo_error *err);

/* Adds a peer of WireGuard public key 'public_key' named 'name' (may be NULL) to endpoint
 * 'id'. Returns it with its client configuration (free it with
 * nubo_remote_access_peer_free()), or NULL with '*err' set. Not retried. */
NUBO_API struct nubo_remote_access_peer *
nubo_remote_access_peer_add(struct nubo_client *client, const char *id, const char *public_key,
                            const char *name, struct nubo_error *err);

/* Returns the peers of endpoint 'id', or NULL with '*err' set. The caller frees the list with
 * nubo_remote_access_peer_list_free(). */
NUBO_API struct nubo_remote_access_peer_list *
nubo_remote_access_peers_list(struct nubo_client *client, const char *id, struct nubo_error *err);

/* Deletes the peer 'peer_id' of endpoint 'id'. Returns 0, or -1 with '*err' set. */
NUBO_API int nubo_remote_access_peer_delete(struct nubo_client *client, const char *id,
                                            const char *peer_id, struct nubo_error *err);
NUBO_API void nubo_remote_access_free(struct nubo_remote_access *endpoint);
NUBO_API void nubo_remote_access_list_free(struct nubo_remote_access_list *list);
NUBO_API void nubo_remote_access_peer_free(struct nubo_remote_access_peer *peer);
NUBO_API void nubo_remote_access_peer_list_free(struct nubo_remote_access_peer_list *list);

#endif
