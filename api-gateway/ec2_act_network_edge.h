/* The XML of the EC2 actions over a VPC's edge (ec2_act_network_edge.c: internet gateways,
 * route tables, elastic IPs; ec2_act_vpn.c: VPN gateways, customer gateways, VPN
 * connections), exported for the golden-file tests (tests/unit/test_ec2_network_edge.c). */
#ifndef NUBO_GW_EC2_ACT_NETWORK_EDGE_H
#define NUBO_GW_EC2_ACT_NETWORK_EDGE_H

struct gw_address;
struct gw_customer_gateway;
struct gw_internet_gateway;
struct gw_route_table;
struct gw_vpn_connection;
struct gw_vpn_gateway;
struct nb_buf;

/* Append the fields of one resource: the contents of its "<item>" in a Describe answer, or of
 * the element a Create answers with ("<internetGateway>", "<routeTable>", "<vpnGateway>",
 * "<customerGateway>", "<vpnConnection>"). */
void ec2_igw_fields(struct nb_buf *b, const struct gw_internet_gateway *g);
void ec2_rtb_fields(struct nb_buf *b, const struct gw_route_table *t);
void ec2_address_fields(struct nb_buf *b, const struct gw_address *a);
void ec2_vgw_fields(struct nb_buf *b, const struct gw_vpn_gateway *g);
void ec2_cgw_fields(struct nb_buf *b, const struct gw_customer_gateway *g);
/* A connection's fields, with its customer gateway configuration (gw_vpn_config_xml()) as an
 * escaped string unless it is deleted, as EC2 answers. */
void ec2_vpn_fields(struct nb_buf *b, const struct gw_vpn_connection *v);

#endif
