/* EC2 actions over site-to-site VPN: CreateVpnGateway, AttachVpnGateway, DetachVpnGateway,
 * DescribeVpnGateways, DeleteVpnGateway; CreateCustomerGateway, DescribeCustomerGateways,
 * DeleteCustomerGateway; CreateVpnConnection, CreateVpnConnectionRoute,
 * DeleteVpnConnectionRoute, DescribeVpnConnections, DeleteVpnConnection. Parameters in,
 * svc_vpn.h call, XML out. */
#include "ec2_act_network_edge.h"

#include "ec2_api.h"
#include "ec2_params.h"
#include "ec2_xml.h"
#include "svc_vpn.h"

#include "nubo/arena.h"
#include "nubo/buf.h"

#include <string.h>

/* --- XML ---------------------------------------------------------------------------------- */

void ec2_vgw_fields(struct nb_buf *b, const struct gw_vpn_gateway *g)
{
    ec2_xml_text(b, "vpnGatewayId", g->id);
    ec2_xml_text(b, "state", g->state);
    ec2_xml_text(b, "type", g->type);
    ec2_xml_text(b, "availabilityZone", g->zone);
    if (g->vpc_id) {
        ec2_xml_open(b, "attachments");
        ec2_xml_item_open(b);
        ec2_xml_text(b, "vpcId", g->vpc_id);
        ec2_xml_text(b, "state", "attached");
        ec2_xml_item_close(b);
        ec2_xml_close(b, "attachments");
    } else {
        ec2_xml_empty(b, "attachments");
    }
    ec2_xml_int(b, "amazonSideAsn", g->amazon_side_asn);
    ec2_write_tags(b, g->tags, g->n_tags);
}

void ec2_cgw_fields(struct nb_buf *b, const struct gw_customer_gateway *g)
{
    ec2_xml_text(b, "customerGatewayId", g->id);
    ec2_xml_text(b, "state", g->state);
    ec2_xml_text(b, "type", g->type);
    ec2_xml_text(b, "ipAddress", g->ip_address);
    nb_buf_printf(b, "<bgpAsn>%lld</bgpAsn>", g->bgp_asn);
    ec2_xml_text(b, "deviceName", g->device_name);
    ec2_write_tags(b, g->tags, g->n_tags);
}

/* One value of a tunnel option's algorithm list ("<phase1EncryptionAlgorithmSet>"). */
static void value_set(struct nb_buf *b, const char *tag, const char *value)
{
    ec2_xml_open(b, tag);
    ec2_xml_item_open(b);
    ec2_xml_text(b, "value", value);
    ec2_xml_item_close(b);
    ec2_xml_close(b, tag);
}

/* The options of the connection's one tunnel, as EC2's TunnelOptions name them. */
static void tunnel_options(struct nb_buf *b, const struct gw_vpn_connection *v)
{
    ec2_xml_open(b, "tunnelOptionSet");
    ec2_xml_item_open(b);
    ec2_xml_text(b, "outsideIpAddress", v->outside_ip);
    ec2_xml_text(b, "preSharedKey", v->psk);
    ec2_xml_int(b, "phase1LifetimeSeconds", 28800);
    ec2_xml_int(b, "phase2LifetimeSeconds", 3600);
    ec2_xml_int(b, "dpdTimeoutSeconds", 30);
    value_set(b, "phase1EncryptionAlgorithmSet", "AES256");
    value_set(b, "phase2EncryptionAlgorithmSet", "AES256");
    value_set(b, "phase1IntegrityAlgorithmSet", "SHA2-256");
    value_set(b, "phase2IntegrityAlgorithmSet", "SHA2-256");
    value_set(b, "phase1DHGroupNumberSet", "14");
    value_set(b, "phase2DHGroupNumberSet", "14");
    value_set(b, "ikeVersionSet", "ikev2");
    ec2_xml_item_close(b);
    ec2_xml_close(b, "tunnelOptionSet");
}

void ec2_vpn_fields(struct nb_buf *b, const struct gw_vpn_connection *v)
{
    bool deleted = !strcmp(v->state, "deleted");
    ec2_xml_text(b, "vpnConnectionId", v->id);
    if (!deleted) {
        struct nb_buf config = NB_BUF_INIT;
        gw_vpn_config_xml(&config, v);
        ec2_xml_text(b, "customerGatewayConfiguration", config.data);
        nb_buf_free(&config);
    }
    ec2_xml_text(b, "customerGatewayId", v->customer_gateway_id);
    ec2_xml_text(b, "category", "VPN");
    ec2_xml_text(b, "state", v->state);
    ec2_xml_text(b, "type", v->type);
    ec2_xml_text(b, "vpnGatewayId", v->vpn_gateway_id);
    ec2_xml_open(b, "options");
    ec2_xml_bool(b, "staticRoutesOnly", v->static_routes_only);
    ec2_xml_text(b, "tunnelInsideIpVersion", "ipv4");
    if (!deleted) {
        tunnel_options(b, v);
    }
    ec2_xml_close(b, "options");
    if (v->n_routes) {
        ec2_xml_open(b, "routes");
        for (size_t i = 0; i < v->n_routes; i++) {
            ec2_xml_item_open(b);
            ec2_xml_text(b, "destinationCidrBlock", v->routes[i].destination);
            ec2_xml_text(b, "source", "Static");
            ec2_xml_text(b, "state", v->routes[i].state);
            ec2_xml_item_close(b);
        }
        ec2_xml_close(b, "routes");
    } else {
        ec2_xml_empty(b, "routes");
    }
    bool up = !strcmp(v->tunnel_status, "UP");
    ec2_xml_open(b, "vgwTelemetry");
    ec2_xml_item_open(b);
    ec2_xml_text(b, "outsideIpAddress", v->outside_ip);
    ec2_xml_text(b, "status", v->tunnel_status);
    ec2_xml_time_ms(b, "lastStatusChange", v->tunnel_status_ms);
    ec2_xml_text(b, "statusMessage", v->tunnel_status_message);
    ec2_xml_int(b, "acceptedRouteCount", up ? (long long)v->n_routes : 0);
    ec2_xml_item_close(b);
    ec2_xml_close(b, "vgwTelemetry");
    ec2_write_tags(b, v->tags, v->n_tags);
}

/* --- helpers ------------------------------------------------------------------------------- */

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

static int describe_params(struct ec2_call *c, const char *id_prefix, const char ***ids,
                           size_t *n_ids, struct gw_filter **filters, size_t *n_filters)
{
    if (ec2_get_list(c, id_prefix, ids, n_ids) < 0 || ec2_get_filters(c, filters, n_filters) < 0) {
        return -1;
    }
    return c->dry_run ? ec2_dry_run(c) : 0;
}

/* Reads an ASN parameter (absent: 0, the default). */
static int asn_param(struct ec2_call *c, const char *name, long long *out)
{
    *out = 0;
    if (ec2_params_get_int(c->params, name, false, 1, 4294967295LL, out, &c->err) < 0) {
        nb_error_reason(&c->err, "InvalidParameterValue");
        return -1;
    }
    return 0;
}

/* --- VPN gateways ------------------------------------------------------------------------- */

static int create_vgw(struct ec2_call *c)
{
    const char *type, *zone = NULL;
    long long asn;
    struct gw_tag *tags;
    size_t n_tags;
    if (ec2_params_get_string(c->params, "Type", true, &type, &c->err) < 0 ||
        ec2_params_get_string(c->params, "AvailabilityZone", false, &zone, &c->err) < 0 ||
        asn_param(c, "AmazonSideAsn", &asn) < 0 ||
        ec2_get_tag_specs(c, "vpn-gateway", &tags, &n_tags) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    struct gw_vpn_gateway g;
    if (gw_vgw_create(c->gw, c->who, type, zone, asn, c->client_token, tags, n_tags, c->arena, &g,
                      &c->err) < 0) {
        return -1;
    }
    ec2_xml_open(c->out, "vpnGateway");
    ec2_vgw_fields(c->out, &g);
    ec2_xml_close(c->out, "vpnGateway");
    return 0;
}

static int attach_vgw(struct ec2_call *c)
{
    const char *vpc_id, *vgw_id;
    if (ec2_params_get_string(c->params, "VpcId", true, &vpc_id, &c->err) < 0 ||
        ec2_params_get_string(c->params, "VpnGatewayId", true, &vgw_id, &c->err) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    if (gw_vgw_attach(c->gw, c->who, vgw_id, vpc_id, &c->err) < 0) {
        return -1;
    }
    ec2_xml_open(c->out, "attachment");
    ec2_xml_text(c->out, "vpcId", vpc_id);
    ec2_xml_text(c->out, "state", "attached");
    ec2_xml_close(c->out, "attachment");
    return 0;
}

static int detach_vgw(struct ec2_call *c)
{
    const char *vpc_id, *vgw_id;
    if (ec2_params_get_string(c->params, "VpcId", true, &vpc_id, &c->err) < 0 ||
        ec2_params_get_string(c->params, "VpnGatewayId", true, &vgw_id, &c->err) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    if (gw_vgw_detach(c->gw, c->who, vgw_id, vpc_id, &c->err) < 0) {
        return -1;
    }
    ec2_xml_bool(c->out, "return", true);
    return 0;
}

static int delete_vgw(struct ec2_call *c)
{
    return by_id(c, "VpnGatewayId", gw_vgw_delete);
}

static int describe_vgws(struct ec2_call *c)
{
    const char **ids;
    size_t n_ids, n_filters, n;
    struct gw_filter *filters;
    struct gw_vpn_gateway *g;
    if (describe_params(c, "VpnGatewayId", &ids, &n_ids, &filters, &n_filters) < 0 ||
        gw_vgws_describe(c->gw, c->who, ids, n_ids, filters, n_filters, c->arena, &g, &n, &c->err) <
            0) {
        return -1;
    }
    ec2_xml_open(c->out, "vpnGatewaySet");
    for (size_t i = 0; i < n; i++) {
        ec2_xml_item_open(c->out);
        ec2_vgw_fields(c->out, &g[i]);
        ec2_xml_item_close(c->out);
    }
    ec2_xml_close(c->out, "vpnGatewaySet");
    return 0;
}

/* --- customer gateways -------------------------------------------------------------------- */

static int create_cgw(struct ec2_call *c)
{
    const char *type, *ip = NULL, *public_ip = NULL, *device = NULL;
    long long asn;
    struct gw_tag *tags;
    size_t n_tags;
    if (ec2_params_get_string(c->params, "Type", true, &type, &c->err) < 0 ||
        ec2_params_get_string(c->params, "IpAddress", false, &ip, &c->err) < 0 ||
        ec2_params_get_string(c->params, "PublicIp", false, &public_ip, &c->err) < 0 ||
        ec2_params_get_string(c->params, "DeviceName", false, &device, &c->err) < 0 ||
        asn_param(c, "BgpAsn", &asn) < 0 ||
        ec2_get_tag_specs(c, "customer-gateway", &tags, &n_tags) < 0) {
        return -1;
    }
    if (ip && public_ip && strcmp(ip, public_ip)) {
        nb_error_set(&c->err, NB_ERR_INVALID, "IpAddress and PublicIp differ: give one of them");
        nb_error_reason(&c->err, "InvalidParameterCombination");
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    struct gw_customer_gateway g;
    if (gw_cgw_create(c->gw, c->who, type, ip ? ip : public_ip, asn, device, tags, n_tags, c->arena,
                      &g, &c->err) < 0) {
        return -1;
    }
    ec2_xml_open(c->out, "customerGateway");
    ec2_cgw_fields(c->out, &g);
    ec2_xml_close(c->out, "customerGateway");
    return 0;
}

static int delete_cgw(struct ec2_call *c)
{
    return by_id(c, "CustomerGatewayId", gw_cgw_delete);
}

static int describe_cgws(struct ec2_call *c)
{
    const char **ids;
    size_t n_ids, n_filters, n;
    struct gw_filter *filters;
    struct gw_customer_gateway *g;
    if (describe_params(c, "CustomerGatewayId", &ids, &n_ids, &filters, &n_filters) < 0 ||
        gw_cgws_describe(c->gw, c->who, ids, n_ids, filters, n_filters, c->arena, &g, &n, &c->err) <
            0) {
        return -1;
    }
    ec2_xml_open(c->out, "customerGatewaySet");
    for (size_t i = 0; i < n; i++) {
        ec2_xml_item_open(c->out);
        ec2_cgw_fields(c->out, &g[i]);
        ec2_xml_item_close(c->out);
    }
    ec2_xml_close(c->out, "customerGatewaySet");
    return 0;
}

/* --- VPN connections ---------------------------------------------------------------------- */

static int create_vpn(struct ec2_call *c)
{
    struct gw_vpn_request rq = {.static_routes_only = true, .client_token = c->client_token};
    struct gw_tag *tags;
    if (ec2_params_get_string(c->params, "Type", true, &rq.type, &c->err) < 0 ||
        ec2_params_get_string(c->params, "CustomerGatewayId", true, &rq.customer_gateway_id,
                              &c->err) < 0 ||
        ec2_params_get_string(c->params, "VpnGatewayId", true, &rq.vpn_gateway_id, &c->err) < 0 ||
        ec2_params_get_bool(c->params, "Options.StaticRoutesOnly", false, &rq.static_routes_only,
                            &c->err) < 0 ||
        ec2_get_tag_specs(c, "vpn-connection", &tags, &rq.n_tags) < 0) {
        return -1;
    }
    rq.tags = tags;
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    struct gw_vpn_connection v;
    if (gw_vpn_create(c->gw, c->who, &rq, c->arena, &v, &c->err) < 0) {
        return -1;
    }
    ec2_xml_open(c->out, "vpnConnection");
    ec2_vpn_fields(c->out, &v);
    ec2_xml_close(c->out, "vpnConnection");
    return 0;
}

static int change_vpn_route(struct ec2_call *c, bool add)
{
    const char *id, *destination;
    if (ec2_params_get_string(c->params, "VpnConnectionId", true, &id, &c->err) < 0 ||
        ec2_params_get_string(c->params, "DestinationCidrBlock", true, &destination, &c->err) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    if (gw_vpn_route_change(c->gw, c->who, id, destination, add, &c->err) < 0) {
        return -1;
    }
    ec2_xml_bool(c->out, "return", true);
    return 0;
}

static int create_vpn_route(struct ec2_call *c)
{
    return change_vpn_route(c, true);
}

static int delete_vpn_route(struct ec2_call *c)
{
    return change_vpn_route(c, false);
}

static int delete_vpn(struct ec2_call *c)
{
    return by_id(c, "VpnConnectionId", gw_vpn_delete);
}

static int describe_vpns(struct ec2_call *c)
{
    const char **ids;
    size_t n_ids, n_filters, n;
    struct gw_filter *filters;
    struct gw_vpn_connection *v;
    if (describe_params(c, "VpnConnectionId", &ids, &n_ids, &filters, &n_filters) < 0 ||
        gw_vpns_describe(c->gw, c->who, ids, n_ids, filters, n_filters, c->arena, &v, &n, &c->err) <
            0) {
        return -1;
    }
    ec2_xml_open(c->out, "vpnConnectionSet");
    for (size_t i = 0; i < n; i++) {
        ec2_xml_item_open(c->out);
        ec2_vpn_fields(c->out, &v[i]);
        ec2_xml_item_close(c->out);
    }
    ec2_xml_close(c->out, "vpnConnectionSet");
    return 0;
}

const struct ec2_action ec2_actions_vpn[] = {
    {"CreateVpnGateway", create_vgw, true,
     "Type AvailabilityZone AmazonSideAsn TagSpecification.*"},
    {"AttachVpnGateway", attach_vgw, true, "VpcId VpnGatewayId"},
    {"DetachVpnGateway", detach_vgw, true, "VpcId VpnGatewayId"},
    {"DeleteVpnGateway", delete_vgw, true, "VpnGatewayId"},
    {"DescribeVpnGateways", describe_vgws, false, "VpnGatewayId.* Filter.*"},
    {"CreateCustomerGateway", create_cgw, true,
     "Type IpAddress PublicIp BgpAsn DeviceName TagSpecification.*"},
    {"DeleteCustomerGateway", delete_cgw, true, "CustomerGatewayId"},
    {"DescribeCustomerGateways", describe_cgws, false, "CustomerGatewayId.* Filter.*"},
    {"CreateVpnConnection", create_vpn, true,
     "Type CustomerGatewayId VpnGatewayId Options.StaticRoutesOnly TagSpecification.*"},
    {"CreateVpnConnectionRoute", create_vpn_route, true, "VpnConnectionId DestinationCidrBlock"},
    {"DeleteVpnConnectionRoute", delete_vpn_route, true, "VpnConnectionId DestinationCidrBlock"},
    {"DeleteVpnConnection", delete_vpn, true, "VpnConnectionId"},
    {"DescribeVpnConnections", describe_vpns, false, "VpnConnectionId.* Filter.*"},
    {NULL, NULL, false, NULL},
};
