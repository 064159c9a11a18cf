/* Unit tests of the wire formats of a VPC's edge (api-gateway/ec2_act_network_edge.c,
 * ec2_act_vpn.c, svc_vpn.c): DescribeInternetGateways, DescribeRouteTables, DescribeAddresses,
 * DescribeVpnGateways, DescribeCustomerGateways and DescribeVpnConnections, the customer gateway
 * configuration document, and an instance's elastic IP in DescribeInstances, compared byte for
 * byte with golden files in tests/golden/ec2/ (NUBO_TEST_REGENERATE=1 rewrites them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "golden.h"

#include "ec2_act_network.h"
#include "ec2_act_network_edge.h"
#include "ec2_xml.h"
#include "svc.h"
#include "svc_instances.h"
#include "svc_network_edge.h"
#include "svc_vpn.h"

#include "nubo/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OWNER "000000000001"

static const struct gw_tag name_tag[] = {{"Name", "edge <main> & co"}};

static void golden_describe_internet_gateways(void **state)
{
    const struct gw_internet_gateway g[] = {
        {.id = "igw-0a1b2c3d4e5f60718",
         .owner_id = OWNER,
         .vpc_id = "vpc-0a1b2c3d4e5f60718",
         .tags = name_tag,
         .n_tags = 1},
        {.id = "igw-00000000000000002", .owner_id = OWNER},
    };
    struct nb_buf b = NB_BUF_INIT;
    ec2_xml_begin(&b, "DescribeInternetGateways", "req-edge-0001");
    ec2_xml_open(&b, "internetGatewaySet");
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        ec2_xml_item_open(&b);
        ec2_igw_fields(&b, &g[i]);
        ec2_xml_item_close(&b);
    }
    ec2_xml_close(&b, "internetGatewaySet");
    ec2_xml_end(&b, "DescribeInternetGateways");
    assert_int_equal(nbtest_golden_buf("ec2", "describe_internet_gateways.xml", &b), 0);
}

static void golden_describe_route_tables(void **state)
{
    const struct gw_route main_routes[] = {
        {"10.0.0.0/16", "local", "active", "CreateRouteTable"},
        {"0.0.0.0/0", "igw-0a1b2c3d4e5f60718", "active", "CreateRoute"},
        {"192.168.0.0/24", "vgw-0a1b2c3d4e5f60718", "blackhole", "CreateRoute"},
    };
    const struct gw_route_association main_assoc[] = {
        {.id = "rtbassoc-0a1b2c3d4e5f60718",
         .route_table_id = "rtb-0a1b2c3d4e5f60718",
         .main = true},
    };
    const struct gw_route own_routes[] = {{"10.0.0.0/16", "local", "active", "CreateRouteTable"}};
    const struct gw_route_association own_assoc[] = {
        {.id = "rtbassoc-00000000000000002",
         .route_table_id = "rtb-00000000000000002",
         .subnet_id = "subnet-0a1b2c3d4e5f60718"},
    };
    const struct gw_route_table t[] = {
        {.id = "rtb-0a1b2c3d4e5f60718",
         .owner_id = OWNER,
         .vpc_id = "vpc-0a1b2c3d4e5f60718",
         .main = true,
         .routes = main_routes,
         .n_routes = 3,
         .associations = main_assoc,
         .n_associations = 1},
        {.id = "rtb-00000000000000002",
         .owner_id = OWNER,
         .vpc_id = "vpc-0a1b2c3d4e5f60718",
         .routes = own_routes,
         .n_routes = 1,
         .associations = own_assoc,
         .n_associations = 1,
         .tags = name_tag,
         .n_tags = 1},
        {.id = "rtb-00000000000000003",
         .owner_id = OWNER,
         .vpc_id = "vpc-0a1b2c3d4e5f60718",
         .routes = own_routes,
         .n_routes = 1},
    };
    struct nb_buf b = NB_BUF_INIT;
    ec2_xml_begin(&b, "DescribeRouteTables", "req-edge-0002");
    ec2_xml_open(&b, "routeTableSet");
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        ec2_xml_item_open(&b);
        ec2_rtb_fields(&b, &t[i]);
        ec2_xml_item_close(&b);
    }
    ec2_xml_close(&b, "routeTableSet");
    ec2_xml_end(&b, "DescribeRouteTables");
    assert_int_equal(nbtest_golden_buf("ec2", "describe_route_tables.xml", &b), 0);
}

static void golden_describe_addresses(void **state)
{
    const struct gw_address a[] = {
        {.allocation_id = "eipalloc-0a1b2c3d4e5f60718",
         .owner_id = OWNER,
         .public_ip = "203.0.113.2",
         .association_id = "eipassoc-0a1b2c3d4e5f60718",
         .network_interface_id = "eni-0a1b2c3d4e5f60718",
         .interface_owner_id = OWNER,
         .private_ip = "10.0.1.4",
         .instance_id = "i-0a1b2c3d4e5f60718",
         .tags = name_tag,
         .n_tags = 1},
        {.allocation_id = "eipalloc-00000000000000002",
         .owner_id = OWNER,
         .public_ip = "203.0.113.3"},
    };
    struct nb_buf b = NB_BUF_INIT;
    ec2_xml_begin(&b, "DescribeAddresses", "req-edge-0003");
    ec2_xml_open(&b, "addressesSet");
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) {
        ec2_xml_item_open(&b);
        ec2_address_fields(&b, &a[i]);
        ec2_xml_item_close(&b);
    }
    ec2_xml_close(&b, "addressesSet");
    ec2_xml_end(&b, "DescribeAddresses");
    assert_int_equal(nbtest_golden_buf("ec2", "describe_addresses.xml", &b), 0);
}

static void golden_describe_vpn_gateways(void **state)
{
    const struct gw_vpn_gateway vgw[] = {
        {.id = "vgw-0a1b2c3d4e5f60718",
         .owner_id = OWNER,
         .type = "ipsec.1",
         .state = "available",
         .zone = "nubo-1a",
         .amazon_side_asn = 64512,
         .vpc_id = "vpc-0a1b2c3d4e5f60718",
         .tags = name_tag,
         .n_tags = 1},
        {.id = "vgw-00000000000000002",
         .owner_id = OWNER,
         .type = "ipsec.1",
         .state = "available",
         .amazon_side_asn = 4200000000LL},
    };
    const struct gw_customer_gateway cgw[] = {
        {.id = "cgw-0a1b2c3d4e5f60718",
         .owner_id = OWNER,
         .type = "ipsec.1",
         .state = "available",
         .ip_address = "198.51.100.77",
         .bgp_asn = 65000,
         .device_name = "office <fw>"},
    };
    struct nb_buf b = NB_BUF_INIT;
    ec2_xml_begin(&b, "DescribeVpnGateways", "req-edge-0004");
    ec2_xml_open(&b, "vpnGatewaySet");
    for (size_t i = 0; i < sizeof vgw / sizeof vgw[0]; i++) {
        ec2_xml_item_open(&b);
        ec2_vgw_fields(&b, &vgw[i]);
        ec2_xml_item_close(&b);
    }
    ec2_xml_close(&b, "vpnGatewaySet");
    ec2_xml_end(&b, "DescribeVpnGateways");
    assert_int_equal(nbtest_golden_buf("ec2", "describe_vpn_gateways.xml", &b), 0);

    ec2_xml_begin(&b, "DescribeCustomerGateways", "req-edge-0005");
    ec2_xml_open(&b, "customerGatewaySet");
    ec2_xml_item_open(&b);
    ec2_cgw_fields(&b, &cgw[0]);
    ec2_xml_item_close(&b);
    ec2_xml_close(&b, "customerGatewaySet");
    ec2_xml_end(&b, "DescribeCustomerGateways");
    assert_int_equal(nbtest_golden_buf("ec2", "describe_customer_gateways.xml", &b), 0);
}

static const struct gw_vpn_route vpn_routes[] = {
    {"172.20.0.0/16", "available"},
    {"192.168.10.0/24", "available"},
};

static const struct gw_vpn_connection pending_vpn = {
    .id = "vpn-0a1b2c3d4e5f60718",
    .owner_id = OWNER,
    .type = "ipsec.1",
    .state = "pending",
    .customer_gateway_id = "cgw-0a1b2c3d4e5f60718",
    .vpn_gateway_id = "vgw-0a1b2c3d4e5f60718",
    .static_routes_only = true,
    .outside_ip = "203.0.113.4",
    .customer_ip = "198.51.100.77",
    .psk = "Xk2._fQ9zLmN0pRsT4uVwY6aBcDeFgH8",
    .vpc_id = "vpc-0a1b2c3d4e5f60718",
    .vpc_cidr = "10.0.0.0/16",
    .host_id = "h-00000000000000002",
    .routes = vpn_routes,
    .n_routes = 2,
    .tunnel_status = "DOWN",
    .tunnel_status_ms = 1795000000000LL,
    .tunnel_status_message = "",
    .tags = name_tag,
    .n_tags = 1,
};

static void golden_vpn_config(void **state)
{
    struct nb_buf b = NB_BUF_INIT;
    gw_vpn_config_xml(&b, &pending_vpn);
    assert_int_equal(nbtest_golden_buf("ec2", "vpn_customer_gateway_config.xml", &b), 0);
    /* Detached: no VPC CIDR; no static routes: no <static_routes>. */
    struct gw_vpn_connection v = pending_vpn;
    v.vpc_id = v.vpc_cidr = NULL;
    v.n_routes = 0;
    gw_vpn_config_xml(&b, &v);
    assert_null(strstr(b.data, "vpc_cidr_block"));
    assert_null(strstr(b.data, "static_routes"));
    assert_non_null(
        strstr(b.data, "<pre_shared_key>Xk2._fQ9zLmN0pRsT4uVwY6aBcDeFgH8</pre_shared_key>"));
    nb_buf_free(&b);
}

static void golden_describe_vpn_connections(void **state)
{
    struct gw_vpn_connection deleted = pending_vpn;
    deleted.id = "vpn-00000000000000002";
    deleted.state = "deleted";
    deleted.tags = NULL;
    deleted.n_tags = 0;
    deleted.n_routes = 1;
    struct gw_vpn_route deleted_route = {"10.50.0.0/16", "deleted"};
    deleted.routes = &deleted_route;
    struct gw_vpn_connection up = pending_vpn;
    up.id = "vpn-00000000000000003";
    up.state = "available";
    up.tunnel_status = "UP";
    up.tunnel_status_message = "1 tunnel up";
    up.tags = NULL;
    up.n_tags = 0;
    const struct gw_vpn_connection *v[] = {&pending_vpn, &deleted, &up};
    struct nb_buf b = NB_BUF_INIT;
    ec2_xml_begin(&b, "DescribeVpnConnections", "req-edge-0006");
    ec2_xml_open(&b, "vpnConnectionSet");
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        ec2_xml_item_open(&b);
        ec2_vpn_fields(&b, v[i]);
        ec2_xml_item_close(&b);
    }
    ec2_xml_close(&b, "vpnConnectionSet");
    ec2_xml_end(&b, "DescribeVpnConnections");
    assert_int_equal(nbtest_golden_buf("ec2", "describe_vpn_connections.xml", &b), 0);
}

static void instance_elastic_ip(void **state)
{
    struct gw_instance in = {
        .id = "i-0a1b2c3d4e5f60718",
        .owner_id = OWNER,
        .interface_id = "eni-0a1b2c3d4e5f60718",
        .vpc_id = "vpc-0a1b2c3d4e5f60718",
        .subnet_id = "subnet-0a1b2c3d4e5f60718",
        .private_ip = "10.0.1.4",
        .mac_address = "02:a1:b2:c3:d4:e5",
    };
    struct nb_buf b = NB_BUF_INIT;
    ec2_instance_network(&b, &in);
    assert_null(strstr(b.data, "<association>")); /* none without an address */
    nb_buf_reset(&b);
    in.public_ip = "203.0.113.2";
    in.public_association_id = "eipassoc-0a1b2c3d4e5f60718";
    in.public_allocation_id = "eipalloc-0a1b2c3d4e5f60718";
    ec2_instance_network(&b, &in);
    assert_int_equal(nbtest_golden_buf("ec2", "instance_network_eip.xml", &b), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_describe_internet_gateways),
        cmocka_unit_test(golden_describe_route_tables),
        cmocka_unit_test(golden_describe_addresses),
        cmocka_unit_test(golden_describe_vpn_gateways),
        cmocka_unit_test(golden_vpn_config),
        cmocka_unit_test(golden_describe_vpn_connections),
        cmocka_unit_test(instance_elastic_ip),
    };
    return cmocka_run_group_tests_name("ec2_network_edge", tests, NULL, NULL);
}
