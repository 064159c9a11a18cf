/* The XML of the EC2 network actions (ec2_act_network.c), exported for the golden-file tests
 * (tests/unit/test_ec2_network.c) and for DescribeInstances (ec2_act_instances.c). */
#ifndef NUBO_GW_EC2_ACT_NETWORK_H
#define NUBO_GW_EC2_ACT_NETWORK_H

struct gw_instance;
struct gw_security_group;
struct gw_subnet;
struct gw_vpc;
struct nb_buf;

/* Append the fields of one VPC, subnet or security group (the contents of its "<item>", or of
 * CreateVpc's "<vpc>" and CreateSubnet's "<subnet>"). A group's rules of one protocol and port
 * range are one permission with its "<groups>" and "<ipRanges>", as EC2 lists them. */
void ec2_vpc_fields(struct nb_buf *b, const struct gw_vpc *v);
void ec2_subnet_fields(struct nb_buf *b, const struct gw_subnet *s);
void ec2_sg_fields(struct nb_buf *b, const struct gw_security_group *g);

/* Appends an instance's network elements (subnetId, vpcId, privateIpAddress,
 * sourceDestCheck, groupSet, networkInterfaceSet), or nothing when it has no interface. */
void ec2_instance_network(struct nb_buf *b, const struct gw_instance *in);

#endif
