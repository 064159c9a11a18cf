/* Unit tests of the XML of the EC2 network actions (api-gateway/ec2_act_network.c):
 * DescribeVpcs, DescribeSubnets and DescribeSecurityGroups (permissions grouped by protocol and
 * port range, group references as userIdGroupPairs), an instance's network elements, compared
 * byte for byte with golden files; and the CIDR/address parsers of svc_network.c.
 *
 * Golden files live in tests/golden/ec2/, relative to $NUBO_SRCDIR (default: the current
 * directory, the repository root). Run with NUBO_TEST_REGENERATE=1 to rewrite them from the
 * current output, then review the diff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "golden.h"

#include "ec2_act_network.h"
#include "ec2_xml.h"
#include "svc.h"
#include "svc_instances.h"
#include "svc_network.h"

#include "nubo/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void golden_describe_vpcs(void **state)
{
    static const struct gw_tag tags[] = {{"Name", "main <prod> & co"}};
    const struct gw_vpc vpcs[] = {
        {.id = "vpc-0a1b2c3d4e5f60718",
         .owner_id = "000000000001",
         .cidr_block = "10.0.0.0/16",
         .state = "available",
         .segment = 100,
         .tags = tags,
         .n_tags = 1},
        {.id = "vpc-00000000000000002",
         .owner_id = "000000000001",
         .cidr_block = "192.168.0.0/28",
         .state = "available",
         .segment = 101},
    };
    struct nb_buf b = NB_BUF_INIT;
    ec2_xml_begin(&b, "DescribeVpcs", "req-net-0001");
    ec2_xml_open(&b, "vpcSet");
    for (size_t i = 0; i < sizeof vpcs / sizeof vpcs[0]; i++) {
        ec2_xml_item_open(&b);
        ec2_vpc_fields(&b, &vpcs[i]);
        ec2_xml_item_close(&b);
    }
    ec2_xml_close(&b, "vpcSet");
    ec2_xml_end(&b, "DescribeVpcs");
    assert_int_equal(nbtest_golden_buf("ec2", "describe_vpcs.xml", &b), 0);
}

static void golden_describe_subnets(void **state)
{
    static const struct gw_tag tags[] = {{"tier", "web"}};
    const struct gw_subnet subnets[] = {
        {.id = "subnet-0a1b2c3d4e5f60718",
         .owner_id = "000000000001",
         .vpc_id = "vpc-0a1b2c3d4e5f60718",
         .zone = "nubo-1a",
         .cidr_block = "10.0.1.0/24",
         .state = "available",
         .available_ips = 248,
         .tags = tags,
         .n_tags = 1},
        {.id = "subnet-00000000000000002",
         .owner_id = "000000000001",
         .vpc_id = "vpc-0a1b2c3d4e5f60718",
         .zone = "nubo-1b",
         .cidr_block = "10.0.2.0/28",
         .state = "available",
         .available_ips = 0},
    };
    struct nb_buf b = NB_BUF_INIT;
    ec2_xml_begin(&b, "DescribeSubnets", "req-net-0002");
    ec2_xml_open(&b, "subnetSet");
    for (size_t i = 0; i < sizeof subnets / sizeof subnets[0]; i++) {
        ec2_xml_item_open(&b);
        ec2_subnet_fields(&b, &subnets[i]);
        ec2_xml_item_close(&b);
    }
    ec2_xml_close(&b, "subnetSet");
    ec2_xml_end(&b, "DescribeSubnets");
    assert_int_equal(nbtest_golden_buf("ec2", "describe_subnets.xml", &b), 0);
}

static void golden_describe_security_groups(void **state)
{
    /* The default group: all traffic from its own members, all traffic out. */
    static const struct gw_sg_rule def_in[] = {
        {.id = "sgr-00000000000000001",
         .protocol = "-1",
         .from_port = -1,
         .to_port = -1,
         .group_id = "sg-0a1b2c3d4e5f60718",
         .group_owner = "000000000001"},
    };
    static const struct gw_sg_rule all_out[] = {
        {.id = "sgr-00000000000000002",
         .protocol = "-1",
         .from_port = -1,
         .to_port = -1,
         .cidr = "0.0.0.0/0"},
    };
    /* Ordered as gw_sgs_describe() orders them: ports 22 from a group and two ranges (one
     * permission), then 443, then ICMP echo. */
    static const struct gw_sg_rule web_in[] = {
        {.id = "sgr-00000000000000003",
         .protocol = "icmp",
         .from_port = 8,
         .to_port = -1,
         .cidr = "0.0.0.0/0"},
        {.id = "sgr-00000000000000004",
         .protocol = "tcp",
         .from_port = 22,
         .to_port = 22,
         .group_id = "sg-0a1b2c3d4e5f60718",
         .group_owner = "000000000001",
         .description = "from the bastion <group>"},
        {.id = "sgr-00000000000000005",
         .protocol = "tcp",
         .from_port = 22,
         .to_port = 22,
         .cidr = "192.0.2.0/24",
         .description = "office"},
        {.id = "sgr-00000000000000006",
         .protocol = "tcp",
         .from_port = 22,
         .to_port = 22,
         .cidr = "198.51.100.7/32"},
        {.id = "sgr-00000000000000007",
         .protocol = "tcp",
         .from_port = 443,
         .to_port = 443,
         .cidr = "0.0.0.0/0"},
    };
    static const struct gw_tag tags[] = {{"team", "web & co"}};
    const struct gw_security_group groups[] = {
        {.id = "sg-0a1b2c3d4e5f60718",
         .owner_id = "000000000001",
         .vpc_id = "vpc-0a1b2c3d4e5f60718",
         .name = "default",
         .description = "default VPC security group",
         .ingress = def_in,
         .n_ingress = 1,
         .egress = all_out,
         .n_egress = 1},
        {.id = "sg-00000000000000002",
         .owner_id = "000000000001",
         .vpc_id = "vpc-0a1b2c3d4e5f60718",
         .name = "web",
         .description = "web servers",
         .ingress = web_in,
         .n_ingress = sizeof web_in / sizeof web_in[0],
         .tags = tags,
         .n_tags = 1},
    };
    struct nb_buf b = NB_BUF_INIT;
    ec2_xml_begin(&b, "DescribeSecurityGroups", "req-net-0003");
    ec2_xml_open(&b, "securityGroupInfo");
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        ec2_xml_item_open(&b);
        ec2_sg_fields(&b, &groups[i]);
        ec2_xml_item_close(&b);
    }
    ec2_xml_close(&b, "securityGroupInfo");
    ec2_xml_end(&b, "DescribeSecurityGroups");
    assert_int_equal(nbtest_golden_buf("ec2", "describe_security_groups.xml", &b), 0);
}

static void instance_network_elements(void **state)
{
    static const struct gw_group_ref groups[] = {{"sg-0a1b2c3d4e5f60718", "default"}};
    struct gw_instance in = {.id = "i-0a1b2c3d4e5f60718", .owner_id = "000000000001"};
    struct nb_buf b = NB_BUF_INIT;
    ec2_instance_network(&b, &in); /* no interface: nothing */
    assert_int_equal(b.len, 0);
    in.interface_id = "eni-0a1b2c3d4e5f60718";
    in.vpc_id = "vpc-0a1b2c3d4e5f60718";
    in.subnet_id = "subnet-0a1b2c3d4e5f60718";
    in.private_ip = "10.0.1.4";
    in.mac_address = "02:a1:b2:c3:d4:e5";
    in.groups = groups;
    in.n_groups = 1;
    ec2_instance_network(&b, &in);
    assert_non_null(strstr(b.data, "<privateIpAddress>10.0.1.4</privateIpAddress>"));
    assert_non_null(strstr(b.data, "<macAddress>02:a1:b2:c3:d4:e5</macAddress>"));
    assert_non_null(strstr(b.data, "<groupSet><item><groupId>sg-0a1b2c3d4e5f60718</groupId>"
                                   "<groupName>default</groupName></item></groupSet>"));
    assert_non_null(strstr(b.data, "<deviceIndex>0</deviceIndex>"));
    nb_buf_free(&b);
}

static void cidr_parse(void **state)
{
    uint32_t a;
    int len;
    assert_int_equal(gw_cidr_parse("10.0.0.0/16", &a, &len), 0);
    assert_int_equal(a, 0x0a000000u);
    assert_int_equal(len, 16);
    assert_int_equal(gw_cidr_parse("0.0.0.0/0", &a, &len), 0);
    assert_int_equal(gw_cidr_parse("198.51.100.7/32", &a, &len), 0);
    assert_int_equal(a, 0xc6336407u);
    static const char *const bad[] = {
        "10.0.0.1/16", /* host bits set */
        "10.0.0.0/33",  "10.0.0.0",     "10.0.0/16", "10.0.0.256/32",
        "010.0.0.0/8",  "10.0.0.0/016", "10.0.0.0/", "/16",
        "10.0.0.0/16 ", " 10.0.0.0/16", "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (gw_cidr_parse(bad[i], &a, &len) == 0) {
            fail_msg("\"%s\" was accepted", bad[i]);
        }
    }
    assert_int_equal(gw_cidr_parse(NULL, &a, &len), -1);
    assert_int_equal(gw_ipv4_parse("10.0.1.50", &a), 0);
    assert_int_equal(a, 0x0a000132u);
    assert_int_equal(gw_ipv4_parse("10.0.1.50/32", &a), -1);
    assert_int_equal(gw_ipv4_parse("1.2.3", &a), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_describe_vpcs),
        cmocka_unit_test(golden_describe_subnets),
        cmocka_unit_test(golden_describe_security_groups),
        cmocka_unit_test(instance_network_elements),
        cmocka_unit_test(cidr_parse),
    };
    return cmocka_run_group_tests_name("ec2_network", tests, NULL, NULL);
}
