/* EC2 actions over tenant networks: CreateVpc, DescribeVpcs, DeleteVpc, CreateSubnet,
 * DescribeSubnets, DeleteSubnet, CreateSecurityGroup, DescribeSecurityGroups,
 * DeleteSecurityGroup, AuthorizeSecurityGroupIngress/Egress, RevokeSecurityGroupIngress/Egress;
 * and the network part of DescribeInstances' items. */
#include "ec2_act_network.h"

#include "ec2_api.h"
#include "ec2_params.h"
#include "ec2_xml.h"
#include "svc_instances.h"
#include "svc_network.h"

#include "nubo/arena.h"
#include "nubo/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INDEX 1000 /* of IpPermissions.N and their lists */

/* --- XML --------------------------------------------------------------------------------- */

void ec2_vpc_fields(struct nb_buf *b, const struct gw_vpc *v)
{
    ec2_xml_text(b, "vpcId", v->id);
    ec2_xml_text(b, "ownerId", v->owner_id);
    ec2_xml_text(b, "state", v->state);
    ec2_xml_text(b, "cidrBlock", v->cidr_block);
    ec2_xml_open(b, "cidrBlockAssociationSet");
    ec2_xml_item_open(b);
    ec2_xml_text(b, "cidrBlock", v->cidr_block);
    nb_buf_puts(b, "<cidrBlockState><state>associated</state></cidrBlockState>");
    ec2_xml_item_close(b);
    ec2_xml_close(b, "cidrBlockAssociationSet");
    ec2_xml_text(b, "dhcpOptionsId", "default");
    ec2_xml_text(b, "instanceTenancy", "default");
    ec2_xml_bool(b, "isDefault", false);
    ec2_write_tags(b, v->tags, v->n_tags);
}

void ec2_subnet_fields(struct nb_buf *b, const struct gw_subnet *s)
{
    ec2_xml_text(b, "subnetId", s->id);
    ec2_xml_text(b, "ownerId", s->owner_id);
    ec2_xml_text(b, "state", s->state);
    ec2_xml_text(b, "vpcId", s->vpc_id);
    ec2_xml_text(b, "cidrBlock", s->cidr_block);
    ec2_xml_int(b, "availableIpAddressCount", s->available_ips);
    ec2_xml_text(b, "availabilityZone", s->zone);
    ec2_xml_bool(b, "defaultForAz", false);
    ec2_xml_bool(b, "mapPublicIpOnLaunch", false);
    ec2_xml_bool(b, "assignIpv6AddressOnCreation", false);
    ec2_write_tags(b, s->tags, s->n_tags);
}

static bool same_range(const struct gw_sg_rule *a, const struct gw_sg_rule *b)
{
    return !strcmp(a->protocol, b->protocol) && a->from_port == b->from_port &&
           a->to_port == b->to_port;
}

/* Writes 'rules' (ordered as gw_sgs_describe() orders them) as EC2 permissions in 'tag'. */
static void write_permissions(struct nb_buf *b, const char *tag, const struct gw_sg_rule *rules,
                              size_t n)
{
    if (n == 0) {
        ec2_xml_empty(b, tag);
        return;
    }
    ec2_xml_open(b, tag);
    for (size_t i = 0; i < n;) {
        size_t end = i;
        while (end < n && same_range(&rules[i], &rules[end])) {
            end++;
        }
        ec2_xml_item_open(b);
        ec2_xml_text(b, "ipProtocol", rules[i].protocol);
        if (strcmp(rules[i].protocol, "-1")) {
            ec2_xml_int(b, "fromPort", rules[i].from_port);
            ec2_xml_int(b, "toPort", rules[i].to_port);
        }
        bool any = false;
        for (size_t k = i; k < end; k++) {
            if (!rules[k].group_id) {
                continue;
            }
            if (!any) {
                ec2_xml_open(b, "groups");
                any = true;
            }
            ec2_xml_item_open(b);
            ec2_xml_text(b, "userId", rules[k].group_owner);
            ec2_xml_text(b, "groupId", rules[k].group_id);
            if (rules[k].description && rules[k].description[0]) {
                ec2_xml_text(b, "description", rules[k].description);
            }
            ec2_xml_item_close(b);
        }
        if (any) {
            ec2_xml_close(b, "groups");
        } else {
            ec2_xml_empty(b, "groups");
        }
        any = false;
        for (size_t k = i; k < end; k++) {
            if (!rules[k].cidr) {
                continue;
            }
            if (!any) {
                ec2_xml_open(b, "ipRanges");
                any = true;
            }
            ec2_xml_item_open(b);
            ec2_xml_text(b, "cidrIp", rules[k].cidr);
            if (rules[k].description && rules[k].description[0]) {
                ec2_xml_text(b, "description", rules[k].description);
            }
            ec2_xml_item_close(b);
        }
        if (any) {
            ec2_xml_close(b, "ipRanges");
        } else {
            ec2_xml_empty(b, "ipRanges");
        }
        ec2_xml_empty(b, "ipv6Ranges");
        ec2_xml_empty(b, "prefixListIds");
        ec2_xml_item_close(b);
        i = end;
    }
    ec2_xml_close(b, tag);
}

void ec2_sg_fields(struct nb_buf *b, const struct gw_security_group *g)
{
    ec2_xml_text(b, "ownerId", g->owner_id);
    ec2_xml_text(b, "groupId", g->id);
    ec2_xml_text(b, "groupName", g->name);
    ec2_xml_text(b, "groupDescription", g->description);
    ec2_xml_text(b, "vpcId", g->vpc_id);
    write_permissions(b, "ipPermissions", g->ingress, g->n_ingress);
    write_permissions(b, "ipPermissionsEgress", g->egress, g->n_egress);
    ec2_write_tags(b, g->tags, g->n_tags);
}

static void write_group_set(struct nb_buf *b, const struct gw_instance *in)
{
    ec2_xml_open(b, "groupSet");
    for (size_t g = 0; g < in->n_groups; g++) {
        ec2_xml_item_open(b);
        ec2_xml_text(b, "groupId", in->groups[g].id);
        ec2_xml_text(b, "groupName", in->groups[g].name);
        ec2_xml_item_close(b);
    }
    ec2_xml_close(b, "groupSet");
}

/* The interface's elastic IP, when it has one (ec2_act_network_edge.c owns addresses). */
static void write_association(struct nb_buf *b, const struct gw_instance *in)
{
    if (!in->public_ip) {
        return;
    }
    ec2_xml_open(b, "association");
    ec2_xml_text(b, "publicIp", in->public_ip);
    ec2_xml_empty(b, "publicDnsName");
    ec2_xml_text(b, "ipOwnerId", in->owner_id);
    ec2_xml_text(b, "allocationId", in->public_allocation_id);
    ec2_xml_text(b, "associationId", in->public_association_id);
    ec2_xml_close(b, "association");
}

void ec2_instance_network(struct nb_buf *b, const struct gw_instance *in)
{
    if (!in->interface_id) {
        return;
    }
    ec2_xml_text(b, "subnetId", in->subnet_id);
    ec2_xml_text(b, "vpcId", in->vpc_id);
    ec2_xml_text(b, "privateIpAddress", in->private_ip);
    ec2_xml_bool(b, "sourceDestCheck", true);
    write_group_set(b, in);
    ec2_xml_open(b, "networkInterfaceSet");
    ec2_xml_item_open(b);
    ec2_xml_text(b, "networkInterfaceId", in->interface_id);
    ec2_xml_text(b, "subnetId", in->subnet_id);
    ec2_xml_text(b, "vpcId", in->vpc_id);
    ec2_xml_empty(b, "description");
    ec2_xml_text(b, "ownerId", in->owner_id);
    ec2_xml_text(b, "status", "in-use");
    ec2_xml_text(b, "macAddress", in->mac_address);
    ec2_xml_text(b, "privateIpAddress", in->private_ip);
    ec2_xml_bool(b, "sourceDestCheck", true);
    write_group_set(b, in);
    write_association(b, in);
    ec2_xml_open(b, "attachment");
    ec2_xml_int(b, "deviceIndex", 0);
    ec2_xml_text(b, "status", "attached");
    ec2_xml_bool(b, "deleteOnTermination", true);
    ec2_xml_close(b, "attachment");
    ec2_xml_open(b, "privateIpAddressesSet");
    ec2_xml_item_open(b);
    ec2_xml_text(b, "privateIpAddress", in->private_ip);
    ec2_xml_bool(b, "primary", true);
    write_association(b, in);
    ec2_xml_item_close(b);
    ec2_xml_close(b, "privateIpAddressesSet");
    ec2_xml_text(b, "interfaceType", "interface");
    ec2_xml_item_close(b);
    ec2_xml_close(b, "networkInterfaceSet");
}

/* --- VPCs and subnets -------------------------------------------------------------------- */

static int create_vpc(struct ec2_call *c)
{
    const char *cidr;
    struct gw_tag *tags;
    size_t n_tags;
    if (ec2_params_get_string(c->params, "CidrBlock", true, &cidr, &c->err) < 0 ||
        ec2_get_tag_specs(c, "vpc", &tags, &n_tags) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    struct gw_vpc v;
    if (gw_vpc_create(c->gw, c->who, cidr, tags, n_tags, c->arena, &v, &c->err) < 0) {
        return -1;
    }
    ec2_xml_open(c->out, "vpc");
    ec2_vpc_fields(c->out, &v);
    ec2_xml_close(c->out, "vpc");
    return 0;
}

/* Reads the one id parameter 'name' and calls 'fn' with it; answers <return>true</return>. */
static int delete_by_id(struct ec2_call *c, const char *name,
                        int (*fn)(struct gw_ctx *, const struct gw_principal *, const char *,
                                  struct nb_error *))
{
    const char *id;
    if (ec2_params_get_string(c->params, name, true, &id, &c->err) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    if (fn(c->gw, c->who, id, &c->err) < 0) {
        return -1;
    }
    ec2_xml_bool(c->out, "return", true);
    return 0;
}

static int delete_vpc(struct ec2_call *c)
{
    return delete_by_id(c, "VpcId", gw_vpc_delete);
}

static int describe_vpcs(struct ec2_call *c)
{
    const char **ids;
    size_t n_ids, n_filters, n;
    struct gw_filter *filters;
    struct gw_vpc *v;
    if (ec2_get_list(c, "VpcId", &ids, &n_ids) < 0 ||
        ec2_get_filters(c, &filters, &n_filters) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    if (gw_vpcs_describe(c->gw, c->who, ids, n_ids, filters, n_filters, c->arena, &v, &n, &c->err) <
        0) {
        return -1;
    }
    ec2_xml_open(c->out, "vpcSet");
    for (size_t i = 0; i < n; i++) {
        ec2_xml_item_open(c->out);
        ec2_vpc_fields(c->out, &v[i]);
        ec2_xml_item_close(c->out);
    }
    ec2_xml_close(c->out, "vpcSet");
    return 0;
}

static int create_subnet(struct ec2_call *c)
{
    const char *vpc_id, *cidr, *zone = NULL;
    struct gw_tag *tags;
    size_t n_tags;
    if (ec2_params_get_string(c->params, "VpcId", true, &vpc_id, &c->err) < 0 ||
        ec2_params_get_string(c->params, "CidrBlock", true, &cidr, &c->err) < 0 ||
        ec2_params_get_string(c->params, "AvailabilityZone", false, &zone, &c->err) < 0 ||
        ec2_get_tag_specs(c, "subnet", &tags, &n_tags) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    struct gw_subnet s;
    if (gw_subnet_create(c->gw, c->who, vpc_id, cidr, zone, tags, n_tags, c->arena, &s, &c->err) <
        0) {
        return -1;
    }
    ec2_xml_open(c->out, "subnet");
    ec2_subnet_fields(c->out, &s);
    ec2_xml_close(c->out, "subnet");
    return 0;
}

static int delete_subnet(struct ec2_call *c)
{
    return delete_by_id(c, "SubnetId", gw_subnet_delete);
}

static int describe_subnets(struct ec2_call *c)
{
    const char **ids;
    size_t n_ids, n_filters, n;
    struct gw_filter *filters;
    struct gw_subnet *s;
    if (ec2_get_list(c, "SubnetId", &ids, &n_ids) < 0 ||
        ec2_get_filters(c, &filters, &n_filters) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    if (gw_subnets_describe(c->gw, c->who, ids, n_ids, filters, n_filters, c->arena, &s, &n,
                            &c->err) < 0) {
        return -1;
    }
    ec2_xml_open(c->out, "subnetSet");
    for (size_t i = 0; i < n; i++) {
        ec2_xml_item_open(c->out);
        ec2_subnet_fields(c->out, &s[i]);
        ec2_xml_item_close(c->out);
    }
    ec2_xml_close(c->out, "subnetSet");
    return 0;
}

/* --- security groups --------------------------------------------------------------------- */

/* The group an action names by GroupId, or by GroupName when that is unique among the
 * tenant's groups (nubo has no default VPC to pick the name from). */
static int group_param(struct ec2_call *c, const char **id)
{
    const char *name = NULL;
    *id = NULL;
    if (ec2_params_get_string(c->params, "GroupId", false, id, &c->err) < 0 ||
        ec2_params_get_string(c->params, "GroupName", false, &name, &c->err) < 0) {
        return -1;
    }
    if (*id) {
        return 0;
    }
    if (!name) {
        nb_error_set(&c->err, NB_ERR_MISSING,
                     "The request must contain the parameter GroupId or GroupName");
        nb_error_reason(&c->err, "MissingParameter");
        return -1;
    }
    struct gw_security_group *g;
    size_t n;
    const char *names[] = {name};
    if (gw_sgs_describe(c->gw, c->who, NULL, 0, names, 1, NULL, 0, c->arena, &g, &n, &c->err) < 0) {
        return -1;
    }
    if (n != 1) {
        nb_error_set(&c->err, NB_ERR_INVALID,
                     "The security group name '%s' is in several VPCs: use GroupId", name);
        nb_error_reason(&c->err, "InvalidParameterCombination");
        return -1;
    }
    *id = g[0].id;
    return 0;
}

static int create_security_group(struct ec2_call *c)
{
    const char *name, *description, *vpc_id = NULL;
    struct gw_tag *tags;
    size_t n_tags;
    if (ec2_params_get_string(c->params, "GroupName", true, &name, &c->err) < 0 ||
        ec2_params_get_string(c->params, "GroupDescription", true, &description, &c->err) < 0 ||
        ec2_params_get_string(c->params, "VpcId", false, &vpc_id, &c->err) < 0 ||
        ec2_get_tag_specs(c, "security-group", &tags, &n_tags) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    struct gw_security_group g;
    if (gw_sg_create(c->gw, c->who, name, description, vpc_id, tags, n_tags, c->arena, &g,
                     &c->err) < 0) {
        return -1;
    }
    ec2_xml_bool(c->out, "return", true);
    ec2_xml_text(c->out, "groupId", g.id);
    ec2_write_tags(c->out, g.tags, g.n_tags);
    return 0;
}

static int delete_security_group(struct ec2_call *c)
{
    const char *id;
    if (group_param(c, &id) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    if (gw_sg_delete(c->gw, c->who, id, &c->err) < 0) {
        return -1;
    }
    ec2_xml_bool(c->out, "return", true);
    return 0;
}

static int describe_security_groups(struct ec2_call *c)
{
    const char **ids, **names;
    size_t n_ids, n_names, n_filters, n;
    struct gw_filter *filters;
    struct gw_security_group *g;
    if (ec2_get_list(c, "GroupId", &ids, &n_ids) < 0 ||
        ec2_get_list(c, "GroupName", &names, &n_names) < 0 ||
        ec2_get_filters(c, &filters, &n_filters) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    if (gw_sgs_describe(c->gw, c->who, ids, n_ids, names, n_names, filters, n_filters, c->arena, &g,
                        &n, &c->err) < 0) {
        return -1;
    }
    ec2_xml_open(c->out, "securityGroupInfo");
    for (size_t i = 0; i < n; i++) {
        ec2_xml_item_open(c->out);
        ec2_sg_fields(c->out, &g[i]);
        ec2_xml_item_close(c->out);
    }
    ec2_xml_close(c->out, "securityGroupInfo");
    return 0;
}

/* The distinct indexes N of the parameters "'prefix'N.<anything>", ascending, into 'out'
 * (at most 'max'). Returns how many, or -1 with 'c->err' for a malformed or too large index. */
static int indexes(struct ec2_call *c, const char *prefix, int *out, int max)
{
    size_t plen = strlen(prefix);
    int n = 0;
    for (size_t i = 0; i < ec2_params_count(c->params); i++) {
        const char *name = ec2_params_at(c->params, i)->name;
        if (strncmp(name, prefix, plen)) {
            continue;
        }
        char *end;
        long v = strtol(name + plen, &end, 10);
        if (end == name + plen || *end != '.' || v < 1 || v > MAX_INDEX || name[plen] == '0') {
            nb_error_set(&c->err, NB_ERR_INVALID, "The parameter %.255s is not valid", name);
            nb_error_reason(&c->err, "InvalidParameterValue");
            return -1;
        }
        int k = 0;
        while (k < n && out[k] < v) {
            k++;
        }
        if (k < n && out[k] == v) {
            continue;
        }
        if (n == max) {
            nb_error_set(&c->err, NB_ERR_INVALID, "Too many %.64s entries (at most %d)", prefix,
                         max);
            nb_error_reason(&c->err, "InvalidParameterValue");
            return -1;
        }
        memmove(&out[k + 1], &out[k], sizeof *out * (size_t)(n - k));
        out[k] = (int)v;
        n++;
    }
    return n;
}

static const char *param_at(struct ec2_call *c, const char *fmt, const char *prefix, int n,
                            const char *field)
{
    char name[160];
    snprintf(name, sizeof name, fmt, prefix, n, field);
    return ec2_params_get(c->params, name);
}

static int port_param(struct ec2_call *c, const char *name, int *out)
{
    long long v = -1;
    if (ec2_params_get_int(c->params, name, false, -1, 65535, &v, &c->err) < 0) {
        nb_error_reason(&c->err, "InvalidParameterValue");
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* Appends to 'rules' one rule per peer (CIDR or group) of permission 'prefix' N (or of the
 * top-level parameters when 'prefix' is NULL). */
static int read_permission(struct ec2_call *c, const char *prefix, int n, struct gw_sg_rule *rules,
                           size_t *n_rules, size_t max)
{
    char p[64], name[160];
    struct gw_sg_rule base = {0};
    if (prefix) {
        snprintf(p, sizeof p, "%s%d.", prefix, n);
    } else {
        p[0] = '\0';
    }
    snprintf(name, sizeof name, "%sIpProtocol", p);
    if (ec2_params_get_string(c->params, name, true, &base.protocol, &c->err) < 0) {
        return -1;
    }
    snprintf(name, sizeof name, "%sFromPort", p);
    if (port_param(c, name, &base.from_port) < 0) {
        return -1;
    }
    snprintf(name, sizeof name, "%sToPort", p);
    if (port_param(c, name, &base.to_port) < 0) {
        return -1;
    }
    size_t before = *n_rules;
    if (!prefix) {
        const char *cidr = ec2_params_get(c->params, "CidrIp");
        if (cidr && *n_rules < max) {
            rules[*n_rules] = base;
            rules[(*n_rules)++].cidr = cidr;
        }
    } else {
        static const struct {
            const char *list, *field;
            bool group;
        } peers[] = {{"IpRanges.", "CidrIp", false},
                     {"Groups.", "GroupId", true}, /* UserIdGroupPairs on the wire */
                     {"UserIdGroupPairs.", "GroupId", true}};
        for (size_t k = 0; k < sizeof peers / sizeof peers[0]; k++) {
            char lp[96];
            int idx[64];
            snprintf(lp, sizeof lp, "%s%s", p, peers[k].list);
            int m = indexes(c, lp, idx, 64);
            if (m < 0) {
                return -1;
            }
            for (int j = 0; j < m && *n_rules < max; j++) {
                const char *v = param_at(c, "%s%d.%s", lp, idx[j], peers[k].field);
                if (!v) {
                    nb_error_set(&c->err, NB_ERR_MISSING,
                                 "The request must contain the parameter %s%d.%s", lp, idx[j],
                                 peers[k].field);
                    nb_error_reason(&c->err, "MissingParameter");
                    return -1;
                }
                rules[*n_rules] = base;
                rules[*n_rules].description = param_at(c, "%s%d.%s", lp, idx[j], "Description");
                if (peers[k].group) {
                    rules[(*n_rules)++].group_id = v;
                } else {
                    rules[(*n_rules)++].cidr = v;
                }
            }
        }
    }
    if (*n_rules == before) {
        nb_error_set(&c->err, NB_ERR_INVALID,
                     "A permission needs a CIDR range (IpRanges / CidrIp) or a security group "
                     "(UserIdGroupPairs)");
        nb_error_reason(&c->err, "InvalidPermission.Malformed");
        return -1;
    }
    return 0;
}

/* True if 'rest' (what follows "IpPermissions.N.") is a member nubo reads: anything else
 * (Ipv6Ranges, PrefixListIds, a misspelling) must not be silently ignored. */
static bool known_member(const char *rest)
{
    static const char *const plain[] = {"IpProtocol", "FromPort", "ToPort"};
    static const char *const lists[][3] = {{"IpRanges.", "CidrIp", "Description"},
                                           {"Groups.", "GroupId", "Description"},
                                           {"Groups.", "UserId", "UserId"},
                                           {"UserIdGroupPairs.", "GroupId", "Description"},
                                           {"UserIdGroupPairs.", "UserId", "UserId"}};
    for (size_t k = 0; k < sizeof plain / sizeof plain[0]; k++) {
        if (!strcmp(rest, plain[k])) {
            return true;
        }
    }
    for (size_t k = 0; k < sizeof lists / sizeof lists[0]; k++) {
        size_t len = strlen(lists[k][0]);
        if (strncmp(rest, lists[k][0], len)) {
            continue;
        }
        const char *dot = strchr(rest + len, '.');
        if (dot && (!strcmp(dot + 1, lists[k][1]) || !strcmp(dot + 1, lists[k][2]))) {
            return true;
        }
    }
    return false;
}

static int check_members(struct ec2_call *c)
{
    for (size_t i = 0; i < ec2_params_count(c->params); i++) {
        const char *name = ec2_params_at(c->params, i)->name;
        const char *rest = strncmp(name, "IpPermissions.", 14) ? NULL : strchr(name + 14, '.');
        if (rest && !known_member(rest + 1)) {
            nb_error_set(&c->err, NB_ERR_INVALID,
                         "The parameter %.255s is not recognized (nubo's security groups take "
                         "IPv4 ranges and groups)",
                         name);
            nb_error_reason(&c->err, "UnknownParameter");
            return -1;
        }
    }
    return 0;
}

static int change_rules(struct ec2_call *c, bool egress, bool add)
{
    enum { MAX_RULES = 256 };
    const char *group_id;
    int perm[64];
    struct gw_sg_rule *rules = nb_arena_zalloc(c->arena, sizeof *rules * MAX_RULES);
    size_t n_rules = 0;
    if (check_members(c) < 0 || group_param(c, &group_id) < 0) {
        return -1;
    }
    int n = indexes(c, "IpPermissions.", perm, 64);
    if (n < 0) {
        return -1;
    }
    for (int k = 0; k < n; k++) {
        if (read_permission(c, "IpPermissions.", perm[k], rules, &n_rules, MAX_RULES) < 0) {
            return -1;
        }
    }
    if (ec2_params_get(c->params, "IpProtocol") &&
        read_permission(c, NULL, 0, rules, &n_rules, MAX_RULES) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    if (gw_sg_rules_change(c->gw, c->who, group_id, egress, add, rules, n_rules, &c->err) < 0) {
        return -1;
    }
    ec2_xml_bool(c->out, "return", true);
    return 0;
}

static int authorize_ingress(struct ec2_call *c)
{
    return change_rules(c, false, true);
}

static int authorize_egress(struct ec2_call *c)
{
    return change_rules(c, true, true);
}

static int revoke_ingress(struct ec2_call *c)
{
    return change_rules(c, false, false);
}

static int revoke_egress(struct ec2_call *c)
{
    return change_rules(c, true, false);
}

#define RULE_PARAMS "GroupId GroupName IpPermissions.* IpProtocol FromPort ToPort CidrIp"

const struct ec2_action ec2_actions_network[] = {
    {"CreateVpc", create_vpc, true, "CidrBlock TagSpecification.*"},
    {"DeleteVpc", delete_vpc, true, "VpcId"},
    {"DescribeVpcs", describe_vpcs, false, "VpcId.* Filter.*"},
    {"CreateSubnet", create_subnet, true, "VpcId CidrBlock AvailabilityZone TagSpecification.*"},
    {"DeleteSubnet", delete_subnet, true, "SubnetId"},
    {"DescribeSubnets", describe_subnets, false, "SubnetId.* Filter.*"},
    {"CreateSecurityGroup", create_security_group, true,
     "GroupName GroupDescription VpcId TagSpecification.*"},
    {"DeleteSecurityGroup", delete_security_group, true, "GroupId GroupName"},
    {"DescribeSecurityGroups", describe_security_groups, false, "GroupId.* GroupName.* Filter.*"},
    {"AuthorizeSecurityGroupIngress", authorize_ingress, true, RULE_PARAMS},
    {"AuthorizeSecurityGroupEgress", authorize_egress, true, RULE_PARAMS},
    {"RevokeSecurityGroupIngress", revoke_ingress, true, RULE_PARAMS},
    {"RevokeSecurityGroupEgress", revoke_egress, true, RULE_PARAMS},
    {NULL, NULL, false, NULL},
};
