/* Tenant networks service: VPCs, subnets, security groups and their rules (CreateVpc,
 * CreateSubnet, CreateSecurityGroup, AuthorizeSecurityGroupIngress, ...), and the network
 * interface an instance launched into a subnet gets (RunInstances' SubnetId). Follows svc.h.
 *
 * This is the control plane only: the rows that nubo-netctl turns into Open vSwitch flows.
 * Every change of what a host's flows must be bumps netctl_versions.desired for that host in
 * the same transaction; the migration's triggers do it (instances placed, moved or terminated,
 * rules added or removed), so the scheduler's paths are covered as well as the gateway's.
 *
 * A VPC's CIDR is /16 to /28 and may overlap another tenant's; its subnets carve it per
 * availability zone without overlapping. Of each subnet's addresses the network address, the
 * next three and the broadcast address are reserved, as in EC2. Each VPC has a "default"
 * security group, made with it: ingress from its own members, egress anywhere. */
#ifndef NUBO_GW_SVC_NETWORK_H
#define NUBO_GW_SVC_NETWORK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "svc.h"

struct gw_ctx;
struct gw_principal;
struct nb_arena;
struct nb_error;
struct nb_pg_conn;

struct gw_vpc {
    const char *id; /* "vpc-" + 17 hex */
    const char *owner_id;
    const char *cidr_block; /* "10.0.0.0/16" */
    const char *state;      /* "available" */
    int segment;            /* the VLAN/VXLAN key */
    const struct gw_tag *tags;
    size_t n_tags;
};

struct gw_subnet {
    const char *id; /* "subnet-" + 17 hex */
    const char *owner_id;
    const char *vpc_id;
    const char *zone;
    const char *cidr_block;
    const char *state;
    long long available_ips; /* size - 5 reserved - interfaces in use */
    const struct gw_tag *tags;
    size_t n_tags;
};

/* One permission: traffic of 'protocol' ("-1" for all, "tcp", "udp", "icmp") on ports
 * 'from_port'..'to_port' (ICMP: type and code; -1 when the protocol has none), from (ingress) or
 * to (egress) either 'cidr' or the members of group 'group_id'. */
struct gw_sg_rule {
    const char *id; /* "sgr-" + 17 hex; NULL in requests */
    const char *protocol;
    int from_port;
    int to_port;
    const char *cidr;        /* NULL when 'group_id' is set */
    const char *group_id;    /* NULL when 'cidr' is set */
    const char *group_owner; /* the referenced group's tenant (output only) */
    const char *description; /* NULL: "" */
};

struct gw_security_group {
    const char *id; /* "sg-" + 17 hex */
    const char *owner_id;
    const char *vpc_id;
    const char *name;
    const char *description;
    /* Ordered by protocol, ports, then group references before CIDRs, so that rules of one
     * protocol and port range are adjacent (EC2 lists them as one permission). */
    const struct gw_sg_rule *ingress;
    size_t n_ingress;
    const struct gw_sg_rule *egress;
    size_t n_egress;
    const struct gw_tag *tags;
    size_t n_tags;
};

/* Parses IPv4 "a.b.c.d/len" (decimal, no leading zeros beyond "0", 0 <= len <= 32, no bits
 * set right of the mask) into '*addr' (host order) and '*len'. Returns 0, or -1. */
int gw_cidr_parse(const char *text, uint32_t *addr, int *len);

/* Parses IPv4 "a.b.c.d" into '*addr' (host order). Returns 0, or -1. */
int gw_ipv4_parse(const char *text, uint32_t *addr);

/* --- VPCs -------------------------------------------------------------------------------- */

/* Creates a VPC of 'cidr' (/16 to /28; InvalidVpc.Range otherwise, InvalidParameterValue if it
 * is not a CIDR block) with its default security group, tagged 'tags', and fills '*out'.
 * VpcLimitExceeded when every segment is taken. */
int gw_vpc_create(struct gw_ctx *gw, const struct gw_principal *who, const char *cidr,
                  const struct gw_tag *tags, size_t n_tags, struct nb_arena *arena,
                  struct gw_vpc *out, struct nb_error *err);

/* Deletes VPC 'id' with its default group and tags. InvalidVpcID.NotFound, or
 * DependencyViolation while it has subnets or other security groups. */
int gw_vpc_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                  struct nb_error *err);

/* Lists the tenant's VPCs, those of 'ids' when given (InvalidVpcID.NotFound for an unknown
 * one), filtered by vpc-id, cidr, cidr-block, cidr-block-association.cidr-block, state,
 * owner-id, is-default, tag:KEY, tag-key, tag-value; ordered by id. */
int gw_vpcs_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *const *ids,
                     size_t n_ids, const struct gw_filter *filters, size_t n_filters,
                     struct nb_arena *arena, struct gw_vpc **out, size_t *n, struct nb_error *err);

/* --- subnets ----------------------------------------------------------------------------- */

/* Creates a subnet of 'cidr' in VPC 'vpc_id', in availability zone 'zone' (NULL: the first
 * available one). InvalidVpcID.NotFound, InvalidSubnet.Range (not inside the VPC's CIDR, or not
 * /16 to /28), InvalidSubnet.Conflict (overlaps a subnet of the VPC), InvalidParameterValue
 * (not a CIDR block, unknown zone). */
int gw_subnet_create(struct gw_ctx *gw, const struct gw_principal *who, const char *vpc_id,
                     const char *cidr, const char *zone, const struct gw_tag *tags, size_t n_tags,
                     struct nb_arena *arena, struct gw_subnet *out, struct nb_error *err);

/* Deletes subnet 'id' and its tags. InvalidSubnetID.NotFound, or DependencyViolation while
 * network interfaces use it. */
int gw_subnet_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                     struct nb_error *err);

/* Lists the tenant's subnets, those of 'ids' when given (InvalidSubnetID.NotFound), filtered by
 * subnet-id, vpc-id, cidr, cidr-block, cidrBlock, availability-zone, availabilityZone, state,
 * owner-id, default-for-az, tag:KEY, tag-key, tag-value; ordered by id. */
int gw_subnets_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *const *ids,
                        size_t n_ids, const struct gw_filter *filters, size_t n_filters,
                        struct nb_arena *arena, struct gw_subnet **out, size_t *n,
                        struct nb_error *err);

/* --- security groups --------------------------------------------------------------------- */

/* Creates group 'name' (1..255 characters, not "default" nor starting with "sg-") with
 * 'description' (1..255 characters) in VPC 'vpc_id', with EC2's initial rule (egress to
 * everywhere), and fills '*out'. InvalidVpcID.NotFound, InvalidGroup.Duplicate,
 * InvalidGroup.Reserved, InvalidParameterValue. */
int gw_sg_create(struct gw_ctx *gw, const struct gw_principal *who, const char *name,
                 const char *description, const char *vpc_id, const struct gw_tag *tags,
                 size_t n_tags, struct nb_arena *arena, struct gw_security_group *out,
                 struct nb_error *err);

/* Deletes group 'id' with its rules and tags. InvalidGroup.NotFound, CannotDelete for a VPC's
 * default group, DependencyViolation while network interfaces use it or another group's rule
 * refers to it. */
int gw_sg_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                 struct nb_error *err);

/* Lists the tenant's groups: those of 'ids' and named 'names' when given (InvalidGroup.NotFound
 * for an unknown one), filtered by group-id, group-name, vpc-id, description, owner-id,
 * tag:KEY, tag-key, tag-value; ordered by VPC then name. */
int gw_sgs_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *const *ids,
                    size_t n_ids, const char *const *names, size_t n_names,
                    const struct gw_filter *filters, size_t n_filters, struct nb_arena *arena,
                    struct gw_security_group **out, size_t *n, struct nb_error *err);

/* Adds ('add') or removes the 'n' rules 'rules' of direction 'egress' (else ingress) of group
 * 'group_id', all or none. Each rule's protocol may also be a number (6, 17, 1) or "all"; ports
 * are checked against it. A referenced group must be one of the tenant's in the same VPC.
 * InvalidGroup.NotFound, InvalidPermission.Duplicate (adding a rule that exists, or twice),
 * InvalidPermission.NotFound (removing one that does not), InvalidPermission.Malformed,
 * InvalidParameterValue. */
int gw_sg_rules_change(struct gw_ctx *gw, const struct gw_principal *who, const char *group_id,
                       bool egress, bool add, const struct gw_sg_rule *rules, size_t n,
                       struct nb_error *err);

/* --- network interfaces of RunInstances -------------------------------------------------- */

/* What a launch into a subnet needs, found by gw_net_launch_prepare(); arena-allocated. */
struct gw_net_launch {
    const char *subnet_id;
    const char *vpc_id;
    const char *zone;
    const char *private_ip; /* the one asked for, or NULL */
    const char **group_ids;
    size_t n_groups;
    const char **ips; /* the addresses reserved by gw_net_launch_addresses() */
    size_t n_ips;
};

/* In the caller's transaction on 'conn': locks subnet 'subnet_id' of tenant 'tenant_id' (so that
 * launches into one subnet take addresses one after the other), checks 'private_ip' (inside the
 * subnet, not reserved; InvalidParameterValue) and that each of 'group_ids' is one of the
 * tenant's groups in the subnet's VPC (InvalidGroup.NotFound); none means the VPC's default
 * group. Fills '*out' (in 'arena'). InvalidSubnetID.NotFound for an unknown subnet. */
int gw_net_launch_prepare(struct nb_pg_conn *conn, const char *tenant_id, const char *subnet_id,
                          const char *private_ip, const char *const *group_ids, size_t n_groups,
                          struct nb_arena *arena, struct gw_net_launch *out, struct nb_error *err);

/* Picks addresses for up to 'want' instances into 'nl->ips': the requested one (then 'want'
 * must be 1), or the lowest free ones. Returns how many (at least 'min'), or -1 with 'err':
 * InsufficientFreeAddressesInSubnet with fewer than 'min' free, InvalidIPAddress.InUse when the
 * requested address is taken. */
int gw_net_launch_addresses(struct nb_pg_conn *conn, struct gw_net_launch *nl, int want, int min,
                            struct nb_arena *arena, struct nb_error *err);

/* Gives instance 'instance_id' its interface (device 0): address 'nl->ips[k]', a new random
 * locally administered MAC, and the groups. Returns 0, or -1 with 'err'. */
int gw_net_launch_attach(struct nb_pg_conn *conn, const char *tenant_id,
                         const struct gw_net_launch *nl, size_t k, const char *instance_id,
                         struct nb_error *err);

#endif
