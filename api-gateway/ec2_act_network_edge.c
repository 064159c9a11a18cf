/* EC2 actions over a VPC's edge: CreateInternetGateway, AttachInternetGateway,
 * DetachInternetGateway, DeleteInternetGateway, DescribeInternetGateways; CreateRouteTable,
 * DeleteRouteTable, DescribeRouteTables, CreateRoute, DeleteRoute, AssociateRouteTable,
 * DisassociateRouteTable; AllocateAddress, AssociateAddress, DisassociateAddress,
 * ReleaseAddress, DescribeAddresses. Parameters in, svc_network_edge.h call, XML out. */
#include "ec2_act_network_edge.h"

#include "ec2_api.h"
#include "ec2_params.h"
#include "ec2_xml.h"
#include "svc_network_edge.h"

#include "nubo/arena.h"
#include "nubo/buf.h"

#include <string.h>

/* --- XML ---------------------------------------------------------------------------------- */

void ec2_igw_fields(struct nb_buf *b, const struct gw_internet_gateway *g)
{
    ec2_xml_text(b, "internetGatewayId", g->id);
    ec2_xml_text(b, "ownerId", g->owner_id);
    if (g->vpc_id) {
        ec2_xml_open(b, "attachmentSet");
        ec2_xml_item_open(b);
        ec2_xml_text(b, "vpcId", g->vpc_id);
        ec2_xml_text(b, "state", "available");
        ec2_xml_item_close(b);
        ec2_xml_close(b, "attachmentSet");
    } else {
        ec2_xml_empty(b, "attachmentSet");
    }
    ec2_write_tags(b, g->tags, g->n_tags);
}

void ec2_rtb_fields(struct nb_buf *b, const struct gw_route_table *t)
{
    ec2_xml_text(b, "routeTableId", t->id);
    ec2_xml_text(b, "vpcId", t->vpc_id);
    ec2_xml_text(b, "ownerId", t->owner_id);
    ec2_xml_open(b, "routeSet");
    for (size_t i = 0; i < t->n_routes; i++) {
        ec2_xml_item_open(b);
        ec2_xml_text(b, "destinationCidrBlock", t->routes[i].destination);
        ec2_xml_text(b, "gatewayId", t->routes[i].gateway_id);
        ec2_xml_text(b, "state", t->routes[i].state);
        ec2_xml_text(b, "origin", t->routes[i].origin);
        ec2_xml_item_close(b);
    }
    ec2_xml_close(b, "routeSet");
    if (t->n_associations) {
        ec2_xml_open(b, "associationSet");
        for (size_t i = 0; i < t->n_associations; i++) {
            const struct gw_route_association *a = &t->associations[i];
            ec2_xml_item_open(b);
            ec2_xml_bool(b, "main", a->main);
            ec2_xml_text(b, "routeTableAssociationId", a->id);
            ec2_xml_text(b, "routeTableId", a->route_table_id);
            ec2_xml_text(b, "subnetId", a->subnet_id);
            nb_buf_puts(b, "<associationState><state>associated</state></associationState>");
            ec2_xml_item_close(b);
        }
        ec2_xml_close(b, "associationSet");
    } else {
        ec2_xml_empty(b, "associationSet");
    }
    ec2_xml_empty(b, "propagatingVgwSet");
    ec2_write_tags(b, t->tags, t->n_tags);
}

void ec2_address_fields(struct nb_buf *b, const struct gw_address *a)
{
    ec2_xml_text(b, "publicIp", a->public_ip);
    ec2_xml_text(b, "allocationId", a->allocation_id);
    ec2_xml_text(b, "domain", "vpc");
    ec2_xml_text(b, "instanceId", a->instance_id);
    ec2_xml_text(b, "associationId", a->association_id);
    ec2_xml_text(b, "networkInterfaceId", a->network_interface_id);
    ec2_xml_text(b, "networkInterfaceOwnerId", a->interface_owner_id);
    ec2_xml_text(b, "privateIpAddress", a->private_ip);
    ec2_write_tags(b, a->tags, a->n_tags);
}

/* --- helpers ------------------------------------------------------------------------------- */

/* Reads the one id parameter 'name' and calls 'fn' with it; answers <return>true</return>. */
static int by_id(struct ec2_call *c, const char *name,
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

/* Reads the two id parameters 'a' and 'b' and calls 'fn' with them; answers "true". */
static int by_two_ids(struct ec2_call *c, const char *a, const char *b,
                      int (*fn)(struct gw_ctx *, const struct gw_principal *, const char *,
                                const char *, struct nb_error *))
{
    const char *x, *y;
    if (ec2_params_get_string(c->params, a, true, &x, &c->err) < 0 ||
        ec2_params_get_string(c->params, b, true, &y, &c->err) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    if (fn(c->gw, c->who, x, y, &c->err) < 0) {
        return -1;
    }
    ec2_xml_bool(c->out, "return", true);
    return 0;
}

/* Reads the ids list 'id_prefix'.N and the filters of a Describe action. */
static int describe_params(struct ec2_call *c, const char *id_prefix, const char ***ids,
                           size_t *n_ids, struct gw_filter **filters, size_t *n_filters)
{
    if (ec2_get_list(c, id_prefix, ids, n_ids) < 0 || ec2_get_filters(c, filters, n_filters) < 0) {
        return -1;
    }
    return c->dry_run ? ec2_dry_run(c) : 0;
}

/* --- internet gateways -------------------------------------------------------------------- */

static int create_igw(struct ec2_call *c)
{
    struct gw_tag *tags;
    size_t n_tags;
    if (ec2_get_tag_specs(c, "internet-gateway", &tags, &n_tags) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    struct gw_internet_gateway g;
    if (gw_igw_create(c->gw, c->who, c->client_token, tags, n_tags, c->arena, &g, &c->err) < 0) {
        return -1;
    }
    ec2_xml_open(c->out, "internetGateway");
    ec2_igw_fields(c->out, &g);
    ec2_xml_close(c->out, "internetGateway");
    return 0;
}

static int attach_igw(struct ec2_call *c)
{
    return by_two_ids(c, "InternetGatewayId", "VpcId", gw_igw_attach);
}

static int detach_igw(struct ec2_call *c)
{
    return by_two_ids(c, "InternetGatewayId", "VpcId", gw_igw_detach);
}

static int delete_igw(struct ec2_call *c)
{
    return by_id(c, "InternetGatewayId", gw_igw_delete);
}

static int describe_igws(struct ec2_call *c)
{
    const char **ids;
    size_t n_ids, n_filters, n;
    struct gw_filter *filters;
    struct gw_internet_gateway *g;
    if (describe_params(c, "InternetGatewayId", &ids, &n_ids, &filters, &n_filters) < 0 ||
        gw_igws_describe(c->gw, c->who, ids, n_ids, filters, n_filters, c->arena, &g, &n, &c->err) <
            0) {
        return -1;
    }
    ec2_xml_open(c->out, "internetGatewaySet");
    for (size_t i = 0; i < n; i++) {
        ec2_xml_item_open(c->out);
        ec2_igw_fields(c->out, &g[i]);
        ec2_xml_item_close(c->out);
    }
    ec2_xml_close(c->out, "internetGatewaySet");
    return 0;
}

/* --- route tables ------------------------------------------------------------------------- */

static int create_rtb(struct ec2_call *c)
{
    const char *vpc_id;
    struct gw_tag *tags;
    size_t n_tags;
    if (ec2_params_get_string(c->params, "VpcId", true, &vpc_id, &c->err) < 0 ||
        ec2_get_tag_specs(c, "route-table", &tags, &n_tags) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    struct gw_route_table t;
    if (gw_rtb_create(c->gw, c->who, vpc_id, c->client_token, tags, n_tags, c->arena, &t, &c->err) <
        0) {
        return -1;
    }
    ec2_xml_open(c->out, "routeTable");
    ec2_rtb_fields(c->out, &t);
    ec2_xml_close(c->out, "routeTable");
    ec2_xml_text(c->out, "clientToken", c->client_token);
    return 0;
}

static int delete_rtb(struct ec2_call *c)
{
    return by_id(c, "RouteTableId", gw_rtb_delete);
}

static int describe_rtbs(struct ec2_call *c)
{
    const char **ids;
    size_t n_ids, n_filters, n;
    struct gw_filter *filters;
    struct gw_route_table *t;
    if (describe_params(c, "RouteTableId", &ids, &n_ids, &filters, &n_filters) < 0 ||
        gw_rtbs_describe(c->gw, c->who, ids, n_ids, filters, n_filters, c->arena, &t, &n, &c->err) <
            0) {
        return -1;
    }
    ec2_xml_open(c->out, "routeTableSet");
    for (size_t i = 0; i < n; i++) {
        ec2_xml_item_open(c->out);
        ec2_rtb_fields(c->out, &t[i]);
        ec2_xml_item_close(c->out);
    }
    ec2_xml_close(c->out, "routeTableSet");
    return 0;
}

static int create_route(struct ec2_call *c)
{
    const char *rtb_id, *destination, *gateway_id;
    if (ec2_params_get_string(c->params, "RouteTableId", true, &rtb_id, &c->err) < 0 ||
        ec2_params_get_string(c->params, "DestinationCidrBlock", true, &destination, &c->err) < 0 ||
        ec2_params_get_string(c->params, "GatewayId", true, &gateway_id, &c->err) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    if (gw_route_create(c->gw, c->who, rtb_id, destination, gateway_id, &c->err) < 0) {
        return -1;
    }
    ec2_xml_bool(c->out, "return", true);
    return 0;
}

static int delete_route(struct ec2_call *c)
{
    return by_two_ids(c, "RouteTableId", "DestinationCidrBlock", gw_route_delete);
}

static int associate_rtb(struct ec2_call *c)
{
    const char *rtb_id, *subnet_id, *assoc_id;
    if (ec2_params_get_string(c->params, "RouteTableId", true, &rtb_id, &c->err) < 0 ||
        ec2_params_get_string(c->params, "SubnetId", true, &subnet_id, &c->err) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    if (gw_rtb_associate(c->gw, c->who, rtb_id, subnet_id, c->arena, &assoc_id, &c->err) < 0) {
        return -1;
    }
    ec2_xml_text(c->out, "associationId", assoc_id);
    nb_buf_puts(c->out, "<associationState><state>associated</state></associationState>");
    return 0;
}

static int disassociate_rtb(struct ec2_call *c)
{
    return by_id(c, "AssociationId", gw_rtb_disassociate);
}

/* --- elastic IPs -------------------------------------------------------------------------- */

static int allocate_address(struct ec2_call *c)
{
    const char *domain = NULL;
    struct gw_tag *tags;
    size_t n_tags;
    if (ec2_params_get_string(c->params, "Domain", false, &domain, &c->err) < 0 ||
        ec2_get_tag_specs(c, "elastic-ip", &tags, &n_tags) < 0) {
        return -1;
    }
    if (domain && strcmp(domain, "vpc")) {
        nb_error_set(&c->err, NB_ERR_INVALID,
                     "Value (%.32s) for parameter domain is invalid: nubo's addresses are for "
                     "VPCs (vpc)",
                     domain);
        nb_error_reason(&c->err, "InvalidParameterValue");
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    struct gw_address a;
    if (gw_address_allocate(c->gw, c->who, c->client_token, tags, n_tags, c->arena, &a, &c->err) <
        0) {
        return -1;
    }
    ec2_xml_text(c->out, "publicIp", a.public_ip);
    ec2_xml_text(c->out, "domain", "vpc");
    ec2_xml_text(c->out, "allocationId", a.allocation_id);
    ec2_write_tags(c->out, a.tags, a.n_tags);
    return 0;
}

static int associate_address(struct ec2_call *c)
{
    struct gw_address_association_request rq = {0};
    const char *assoc_id;
    if (ec2_params_get_string(c->params, "AllocationId", false, &rq.allocation_id, &c->err) < 0 ||
        ec2_params_get_string(c->params, "PublicIp", false, &rq.public_ip, &c->err) < 0 ||
        ec2_params_get_string(c->params, "InstanceId", false, &rq.instance_id, &c->err) < 0 ||
        ec2_params_get_string(c->params, "NetworkInterfaceId", false, &rq.interface_id, &c->err) <
            0 ||
        ec2_params_get_string(c->params, "PrivateIpAddress", false, &rq.private_ip, &c->err) < 0 ||
        ec2_params_get_bool(c->params, "AllowReassociation", false, &rq.allow_reassociation,
                            &c->err) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    if (gw_address_associate(c->gw, c->who, &rq, c->arena, &assoc_id, &c->err) < 0) {
        return -1;
    }
    ec2_xml_bool(c->out, "return", true);
    ec2_xml_text(c->out, "associationId", assoc_id);
    return 0;
}

static int disassociate_address(struct ec2_call *c)
{
    const char *assoc_id = NULL, *public_ip = NULL;
    if (ec2_params_get_string(c->params, "AssociationId", false, &assoc_id, &c->err) < 0 ||
        ec2_params_get_string(c->params, "PublicIp", false, &public_ip, &c->err) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    if (gw_address_disassociate(c->gw, c->who, assoc_id, public_ip, &c->err) < 0) {
        return -1;
    }
    ec2_xml_bool(c->out, "return", true);
    return 0;
}

static int release_address(struct ec2_call *c)
{
    const char *allocation_id = NULL, *public_ip = NULL;
    if (ec2_params_get_string(c->params, "AllocationId", false, &allocation_id, &c->err) < 0 ||
        ec2_params_get_string(c->params, "PublicIp", false, &public_ip, &c->err) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    if (gw_address_release(c->gw, c->who, allocation_id, public_ip, &c->err) < 0) {
        return -1;
    }
    ec2_xml_bool(c->out, "return", true);
    return 0;
}

static int describe_addresses(struct ec2_call *c)
{
    const char **ids, **ips;
    size_t n_ids, n_ips, n_filters, n;
    struct gw_filter *filters;
    struct gw_address *a;
    if (ec2_get_list(c, "PublicIp", &ips, &n_ips) < 0 ||
        describe_params(c, "AllocationId", &ids, &n_ids, &filters, &n_filters) < 0 ||
        gw_addresses_describe(c->gw, c->who, ids, n_ids, ips, n_ips, filters, n_filters, c->arena,
                              &a, &n, &c->err) < 0) {
        return -1;
    }
    ec2_xml_open(c->out, "addressesSet");
    for (size_t i = 0; i < n; i++) {
        ec2_xml_item_open(c->out);
        ec2_address_fields(c->out, &a[i]);
        ec2_xml_item_close(c->out);
    }
    ec2_xml_close(c->out, "addressesSet");
    return 0;
}

const struct ec2_action ec2_actions_network_edge[] = {
    {"CreateInternetGateway", create_igw, true, "TagSpecification.*"},
    {"AttachInternetGateway", attach_igw, true, "InternetGatewayId VpcId"},
    {"DetachInternetGateway", detach_igw, true, "InternetGatewayId VpcId"},
    {"DeleteInternetGateway", delete_igw, true, "InternetGatewayId"},
    {"DescribeInternetGateways", describe_igws, false, "InternetGatewayId.* Filter.*"},
    {"CreateRouteTable", create_rtb, true, "VpcId TagSpecification.*"},
    {"DeleteRouteTable", delete_rtb, true, "RouteTableId"},
    {"DescribeRouteTables", describe_rtbs, false, "RouteTableId.* Filter.*"},
    {"CreateRoute", create_route, true, "RouteTableId DestinationCidrBlock GatewayId"},
    {"DeleteRoute", delete_route, true, "RouteTableId DestinationCidrBlock"},
    {"AssociateRouteTable", associate_rtb, true, "RouteTableId SubnetId"},
    {"DisassociateRouteTable", disassociate_rtb, true, "AssociationId"},
    {"AllocateAddress", allocate_address, true, "Domain TagSpecification.*"},
    {"AssociateAddress", associate_address, true,
     "AllocationId PublicIp InstanceId NetworkInterfaceId PrivateIpAddress AllowReassociation"},
    {"DisassociateAddress", disassociate_address, true, "AssociationId PublicIp"},
    {"ReleaseAddress", release_address, true, "AllocationId PublicIp"},
    {"DescribeAddresses", describe_addresses, false, "PublicIp.* AllocationId.* Filter.*"},
    {NULL, NULL, false, NULL},
};
