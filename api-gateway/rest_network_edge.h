/* The REST routes of a VPC's edge (rest_network_edge.c), listed in rest_routes.c's table:
 * /v1/internet-gateways, /v1/route-tables, /v1/addresses, /v1/vpn-gateways,
 * /v1/customer-gateways, /v1/vpn-connections (docs/openapi.yaml). Same JSON style as /v1/vpcs:
 * lists under a plural key, one resource as an object with "id", "owner_id" and "tags"; creates
 * answer 201, deletes 204, actions on one resource ("attach", "routes", ...) answer it as it is
 * then. Each handler follows rest_handler (rest_api.h). */
#ifndef NUBO_GW_REST_NETWORK_EDGE_H
#define NUBO_GW_REST_NETWORK_EDGE_H

struct rest_call;

int rest_get_igws(struct rest_call *c);
int rest_post_igws(struct rest_call *c);
int rest_get_igw(struct rest_call *c);
int rest_delete_igw(struct rest_call *c);
int rest_post_igw_attach(struct rest_call *c);
int rest_post_igw_detach(struct rest_call *c);

int rest_get_rtbs(struct rest_call *c);
int rest_post_rtbs(struct rest_call *c);
int rest_get_rtb(struct rest_call *c);
int rest_delete_rtb(struct rest_call *c);
int rest_post_rtb_routes(struct rest_call *c);
int rest_delete_rtb_routes(struct rest_call *c);
int rest_post_rtb_associations(struct rest_call *c);
int rest_delete_rtb_association(struct rest_call *c);

int rest_get_addresses(struct rest_call *c);
int rest_post_addresses(struct rest_call *c);
int rest_get_address(struct rest_call *c);
int rest_delete_address(struct rest_call *c);
int rest_post_address_associate(struct rest_call *c);
int rest_post_address_disassociate(struct rest_call *c);

int rest_get_vgws(struct rest_call *c);
int rest_post_vgws(struct rest_call *c);
int rest_get_vgw(struct rest_call *c);
int rest_delete_vgw(struct rest_call *c);
int rest_post_vgw_attach(struct rest_call *c);
int rest_post_vgw_detach(struct rest_call *c);

int rest_get_cgws(struct rest_call *c);
int rest_post_cgws(struct rest_call *c);
int rest_get_cgw(struct rest_call *c);
int rest_delete_cgw(struct rest_call *c);

int rest_get_vpns(struct rest_call *c);
int rest_post_vpns(struct rest_call *c);
int rest_get_vpn(struct rest_call *c);
int rest_delete_vpn(struct rest_call *c);
int rest_post_vpn_routes(struct rest_call *c);
int rest_delete_vpn_routes(struct rest_call *c);

#endif
