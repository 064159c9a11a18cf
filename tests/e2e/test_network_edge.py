"""End-to-end: the edge of a VPC (issue 7) and its usage events (issue 8), through the EC2 API
with boto3 and the AWS CLI, and through the REST API, against a real nubo-gateway: internet
gateways, route tables, elastic IPs from the operator's public pool, VPN gateways, customer
gateways and VPN connections with their customer gateway configuration; the meter_events the
migration's triggers write, and the netctl_versions bumps that tell nubo-netctl which hosts must
change. Control plane only. Prints TAP.
Run: /usr/bin/python3 tests/e2e/test_network_edge.py"""

import sys

sys.dont_write_bytecode = True

import ipaddress  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import uuid  # noqa: E402
import xml.etree.ElementTree as ET  # noqa: E402

import nubo_env  # noqa: E402
from nubo_env import SkipTest, TestFailure, check, check_eq, client_error  # noqa: E402

POOL = "203.0.113.0/28"  # 203.0.113.1 is the pool's router: .2 to .14 are handed out
os.environ["NUBO_NETWORK_PUBLIC_POOL"] = POOL
os.environ.pop("NUBO_NETWORK_PUBLIC_GATEWAY", None)

FIXTURE_HOST = "h-0000000000000fa4e"  # where env.set_instance_state() puts instances
tap = nubo_env.Tap(__file__)
S = {}  # state shared by the tests, in order


def a(env):
    return env.ec2(env.tenant("edge-a"))


def b(env):
    return env.ec2(env.tenant("edge-b"))


def err_code(fn, **kw):
    return client_error(fn, **kw)[0]


def instances_of(out):
    return [i for r in out.get("Reservations", []) for i in r.get("Instances", [])]


def version(env, host):
    """netctl_versions.desired of 'host' (0 when it has no row yet)."""
    rows = env.psql(f"SELECT desired FROM netctl_versions WHERE host_id = '{host}'")
    return int(rows[0][0]) if rows else 0


def meter_events(env, resource):
    """The (meter, active) events of 'resource', in order."""
    return [(m, act == "t") for m, act in env.psql(
        "SELECT meter, active FROM meter_events WHERE resource_id = "
        f"{nubo_env.sql_quote(resource)} ORDER BY id")]


def check_paired(events, what):
    """Every meter of 'events' alternates on, off, on, off ..., and ends off."""
    by_meter = {}
    for meter, active in events:
        by_meter.setdefault(meter, []).append(active)
    for meter, seq in by_meter.items():
        want = [k % 2 == 0 for k in range(len(seq))]
        check(seq == want and len(seq) % 2 == 0, f"{what}: {meter} events pair up (on, off)",
              events)


def in_pool(ip, pool=POOL):
    net = ipaddress.ip_network(pool)
    addr = ipaddress.ip_address(ip)
    return addr in net and addr not in (net.network_address, net.broadcast_address,
                                        net.network_address + 1)


def launch(env, ec2, subnet):
    return ec2.run_instances(ImageId=env.image(), MinCount=1, MaxCount=1,
                             SubnetId=subnet)["Instances"][0]["InstanceId"]


@tap.test
def test_setup_networks(env):
    ea, eb = a(env), b(env)
    S["vpc"] = ea.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    S["sub"] = ea.create_subnet(VpcId=S["vpc"], CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    S["sub2"] = ea.create_subnet(VpcId=S["vpc"], CidrBlock="10.0.2.0/24")["Subnet"]["SubnetId"]
    # A second VPC of a, never given an internet gateway.
    S["vpc_dark"] = ea.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    S["sub_dark"] = ea.create_subnet(VpcId=S["vpc_dark"],
                                     CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    S["vpc_b"] = eb.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    S["sub_b"] = eb.create_subnet(VpcId=S["vpc_b"], CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    S["i1"] = launch(env, ea, S["sub"])
    S["i2"] = launch(env, ea, S["sub"])
    S["i_dark"] = launch(env, ea, S["sub_dark"])
    S["i_b"] = launch(env, eb, S["sub_b"])
    # On a host, so that their VPCs' changes bump its netctl version.
    env.set_instance_state([S["i1"], S["i2"]], "running")
    check(version(env, FIXTURE_HOST) > 0, "the fixture host has a netctl version")


@tap.test
def test_main_route_table(env):
    ea = a(env)
    tables = ea.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [S["vpc"]]}])["RouteTables"]
    check_eq(len(tables), 1, "a new VPC has one route table")
    t = tables[0]
    check(t["RouteTableId"].startswith("rtb-"), "rtb id", t)
    check_eq([(r["DestinationCidrBlock"], r["GatewayId"], r["State"]) for r in t["Routes"]],
             [("10.0.0.0/16", "local", "active")], "the local route")
    check_eq([(x["Main"], x.get("SubnetId")) for x in t["Associations"]], [(True, None)],
             "the main association")
    check(t["Associations"][0]["RouteTableAssociationId"].startswith("rtbassoc-"),
          "main association id", t)
    S["main_rtb"] = t["RouteTableId"]
    S["main_assoc"] = t["Associations"][0]["RouteTableAssociationId"]
    got = ea.describe_route_tables(Filters=[{"Name": "association.main", "Values": ["true"]},
                                            {"Name": "vpc-id", "Values": [S["vpc"]]}])
    check_eq([x["RouteTableId"] for x in got["RouteTables"]], [S["main_rtb"]], "main filter")
    check_eq(err_code(b(env).describe_route_tables, RouteTableIds=[S["main_rtb"]]),
             "InvalidRouteTableID.NotFound", "another tenant's route table")
    check_eq(err_code(ea.describe_route_tables, RouteTableIds=["rtb-nope"]),
             "InvalidRouteTableID.Malformed", "malformed id")
    check_eq(err_code(ea.delete_route_table, RouteTableId=S["main_rtb"]), "DependencyViolation",
             "deleting the main table")
    check_eq(err_code(ea.disassociate_route_table, AssociationId=S["main_assoc"]),
             "InvalidParameterValue", "removing the main association")


@tap.test
def test_internet_gateways(env):
    ea, eb = a(env), b(env)
    igw = ea.create_internet_gateway(TagSpecifications=[
        {"ResourceType": "internet-gateway", "Tags": [{"Key": "Name", "Value": "edge"}]}]
    )["InternetGateway"]
    check(igw["InternetGatewayId"].startswith("igw-"), "igw id", igw)
    check_eq((igw.get("Attachments"), igw.get("Tags")),
             ([], [{"Key": "Name", "Value": "edge"}]), "new gateway")
    S["igw"] = igw["InternetGatewayId"]
    S["igw_b"] = eb.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    v0 = version(env, FIXTURE_HOST)
    ea.attach_internet_gateway(InternetGatewayId=S["igw"], VpcId=S["vpc"])
    check(version(env, FIXTURE_HOST) > v0, "attaching bumps the VPC's hosts", v0)
    got = ea.describe_internet_gateways(InternetGatewayIds=[S["igw"]])["InternetGateways"][0]
    check_eq(got["Attachments"], [{"State": "available", "VpcId": S["vpc"]}], "attachment")
    got = ea.describe_internet_gateways(
        Filters=[{"Name": "attachment.vpc-id", "Values": [S["vpc"]]}])["InternetGateways"]
    check_eq([g["InternetGatewayId"] for g in got], [S["igw"]], "attachment.vpc-id filter")
    check_eq(err_code(ea.attach_internet_gateway, InternetGatewayId=S["igw"],
                      VpcId=S["vpc_dark"]), "Resource.AlreadyAssociated", "attached already")
    spare = ea.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    check_eq(err_code(ea.attach_internet_gateway, InternetGatewayId=spare, VpcId=S["vpc"]),
             "Resource.AlreadyAssociated", "the VPC has one")
    check_eq(err_code(ea.detach_internet_gateway, InternetGatewayId=spare, VpcId=S["vpc"]),
             "Gateway.NotAttached", "detaching a detached gateway")
    ea.delete_internet_gateway(InternetGatewayId=spare)
    check_eq(err_code(ea.describe_internet_gateways, InternetGatewayIds=[spare]),
             "InvalidInternetGatewayID.NotFound", "deleted")
    # Another tenant's gateway and VPC are not found, whichever way round.
    check_eq(err_code(eb.describe_internet_gateways, InternetGatewayIds=[S["igw"]]),
             "InvalidInternetGatewayID.NotFound", "describe another tenant's gateway")
    check_eq(err_code(eb.attach_internet_gateway, InternetGatewayId=S["igw"],
                      VpcId=S["vpc_b"]), "InvalidInternetGatewayID.NotFound",
             "attach another tenant's gateway")
    check_eq(err_code(eb.attach_internet_gateway, InternetGatewayId=S["igw_b"],
                      VpcId=S["vpc"]), "InvalidVpcID.NotFound", "to another tenant's VPC")
    check_eq(err_code(eb.delete_internet_gateway, InternetGatewayId=S["igw"]),
             "InvalidInternetGatewayID.NotFound", "delete another tenant's gateway")
    check_eq(err_code(ea.attach_internet_gateway, InternetGatewayId="igw-xyz", VpcId=S["vpc"]),
             "InvalidInternetGatewayID.Malformed", "malformed id")
    check_eq(err_code(ea.delete_internet_gateway, InternetGatewayId=S["igw"]),
             "DependencyViolation", "deleting an attached gateway")
    eb.attach_internet_gateway(InternetGatewayId=S["igw_b"], VpcId=S["vpc_b"])
    check_eq(env.psql1(f"SELECT vpc_id FROM internet_gateways WHERE id = '{S['igw']}'"),
             S["vpc"], "internet_gateways.vpc_id")


@tap.test
def test_routes(env):
    ea, eb = a(env), b(env)
    t = ea.create_route_table(VpcId=S["vpc"])["RouteTable"]
    rtb = S["rtb"] = t["RouteTableId"]
    check_eq([r["GatewayId"] for r in t["Routes"]], ["local"], "a new table's routes")
    v0 = version(env, FIXTURE_HOST)
    ea.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=S["igw"])
    check(version(env, FIXTURE_HOST) > v0, "a route bumps the VPC's hosts")
    check_eq(err_code(ea.create_route, RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0",
                      GatewayId=S["igw"]), "RouteAlreadyExists", "duplicate route")
    check_eq(err_code(ea.create_route, RouteTableId=rtb, DestinationCidrBlock="10.0.5.0/24",
                      GatewayId=S["igw"]), "InvalidParameterValue", "inside the VPC")
    check_eq(err_code(ea.create_route, RouteTableId=rtb, DestinationCidrBlock="10.0.5.1/24",
                      GatewayId=S["igw"]), "InvalidParameterValue", "not a CIDR block")
    check_eq(err_code(ea.create_route, RouteTableId=rtb, DestinationCidrBlock="1.0.0.0/8",
                      GatewayId=S["igw_b"]), "InvalidGatewayID.NotFound",
             "another tenant's gateway")
    lone = ea.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    check_eq(err_code(ea.create_route, RouteTableId=rtb, DestinationCidrBlock="1.0.0.0/8",
                      GatewayId=lone), "InvalidParameterValue", "a gateway of no VPC")
    ea.delete_internet_gateway(InternetGatewayId=lone)
    check_eq(err_code(eb.create_route, RouteTableId=rtb, DestinationCidrBlock="1.0.0.0/8",
                      GatewayId=S["igw_b"]), "InvalidRouteTableID.NotFound",
             "another tenant's table")
    # Associations.
    assoc = ea.associate_route_table(RouteTableId=rtb, SubnetId=S["sub"])
    check_eq(assoc["AssociationState"]["State"], "associated", "association state")
    S["assoc"] = assoc["AssociationId"]
    check_eq(err_code(ea.associate_route_table, RouteTableId=S["main_rtb"], SubnetId=S["sub"]),
             "Resource.AlreadyAssociated", "a subnet has one table of its own")
    check_eq(err_code(ea.associate_route_table, RouteTableId=rtb, SubnetId=S["sub_dark"]),
             "InvalidParameterValue", "another VPC's subnet")
    check_eq(err_code(ea.associate_route_table, RouteTableId=rtb, SubnetId=S["sub_b"]),
             "InvalidSubnetID.NotFound", "another tenant's subnet")
    got = ea.describe_route_tables(
        Filters=[{"Name": "association.subnet-id", "Values": [S["sub"]]}])["RouteTables"]
    check_eq([x["RouteTableId"] for x in got], [rtb], "association.subnet-id filter")
    got = ea.describe_route_tables(
        Filters=[{"Name": "route.gateway-id", "Values": [S["igw"]]}])["RouteTables"]
    check_eq([x["RouteTableId"] for x in got], [rtb], "route.gateway-id filter")
    desc = ea.describe_route_tables(RouteTableIds=[rtb])["RouteTables"][0]
    check_eq([(r["DestinationCidrBlock"], r["GatewayId"], r["State"], r["Origin"])
              for r in desc["Routes"]],
             [("10.0.0.0/16", "local", "active", "CreateRouteTable"),
              ("0.0.0.0/0", S["igw"], "active", "CreateRoute")], "routes")
    check_eq([(x["Main"], x.get("SubnetId"), x["RouteTableAssociationId"])
              for x in desc["Associations"]], [(False, S["sub"], S["assoc"])], "associations")
    check_eq(err_code(ea.delete_route_table, RouteTableId=rtb), "DependencyViolation",
             "deleting an associated table")
    # What the data plane reads: the subnet's own table, the other subnet the main one.
    rows = env.psql("SELECT subnet_id, host(destination), gateway_id, state FROM "
                    f"subnet_effective_routes WHERE vpc_id = '{S['vpc']}' "
                    "ORDER BY subnet_id, destination")
    check_eq(sorted(tuple(r) for r in rows), sorted([
        (S["sub"], "0.0.0.0", S["igw"], "active"), (S["sub"], "10.0.0.0", "local", "active"),
        (S["sub2"], "10.0.0.0", "local", "active")]), "subnet_effective_routes")
    # Disassociate, delete the route, then the table.
    v1 = version(env, FIXTURE_HOST)
    ea.disassociate_route_table(AssociationId=S["assoc"])
    check(version(env, FIXTURE_HOST) > v1, "disassociating bumps")
    check_eq(err_code(ea.disassociate_route_table, AssociationId=S["assoc"]),
             "InvalidAssociationID.NotFound", "disassociating twice")
    ea.delete_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0")
    check_eq(err_code(ea.delete_route, RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0"),
             "InvalidRoute.NotFound", "deleting it twice")
    check_eq(err_code(ea.delete_route, RouteTableId=rtb, DestinationCidrBlock="10.0.0.0/16"),
             "InvalidRoute.NotFound", "the local route")
    ea.delete_route_table(RouteTableId=rtb)
    check_eq(err_code(ea.describe_route_tables, RouteTableIds=[rtb]),
             "InvalidRouteTableID.NotFound", "deleted table")
    # The main table gets the internet route, which the data plane sees for both subnets.
    ea.create_route(RouteTableId=S["main_rtb"], DestinationCidrBlock="0.0.0.0/0",
                    GatewayId=S["igw"])
    n = env.psql1("SELECT count(*) FROM subnet_effective_routes WHERE gateway_id = "
                  f"'{S['igw']}' AND state = 'active'")
    check_eq(n, "2", "both subnets route to the internet through the main table")


@tap.test
def test_client_token(env):
    ea = a(env)
    c = env.tenant("edge-a")
    token = str(uuid.uuid4())
    ids = []
    for _ in range(2):
        r = env.ec2_raw(c, {"Action": "CreateRouteTable", "VpcId": S["vpc"],
                            "ClientToken": token})
        check_eq(r.status, 200, f"create route table: {r}")
        ids.append(re.search(r"<routeTableId>([^<]+)</routeTableId>", r.body).group(1))
        check(f"<clientToken>{token}</clientToken>" in r.body, "clientToken echoed", r)
    check_eq(ids[1], ids[0], "the same token answers the same table")
    r = env.ec2_raw(c, {"Action": "CreateRouteTable", "VpcId": S["vpc_dark"],
                        "ClientToken": token})
    check_eq((r.status, r.error_code), (400, "IdempotentParameterMismatch"),
             "the same token with other parameters")
    check_eq(len(ea.describe_route_tables(RouteTableIds=[ids[0]])["RouteTables"]), 1,
             "one table made")
    ea.delete_route_table(RouteTableId=ids[0])
    # AllocateAddress through a raw request with a ClientToken.
    tok = "alloc-" + uuid.uuid4().hex
    r1 = env.ec2_raw(c, {"Action": "AllocateAddress", "Domain": "vpc", "ClientToken": tok})
    r2 = env.ec2_raw(c, {"Action": "AllocateAddress", "Domain": "vpc", "ClientToken": tok})
    check_eq(r1.status, 200, f"allocate: {r1}")
    ids = [re.search(r"<allocationId>([^<]+)</allocationId>", r.body).group(1) for r in (r1, r2)]
    check_eq(ids[0], ids[1], "one address for one token")
    row = env.reqlog_row(r1.request_id)
    check(row and row["action"] == "AllocateAddress" and row["http_status"] == 200,
          "the request log has it", row)
    a(env).release_address(AllocationId=ids[0])
    # DryRun: checked, answered DryRunOperation, nothing made.
    before = env.psql1("SELECT count(*) FROM addresses")
    check_eq(err_code(ea.allocate_address, Domain="vpc", DryRun=True), "DryRunOperation",
             "AllocateAddress DryRun")
    check_eq(err_code(ea.create_internet_gateway, DryRun=True), "DryRunOperation",
             "CreateInternetGateway DryRun")
    check_eq(env.psql1("SELECT count(*) FROM addresses"), before, "a dry run allocates nothing")


@tap.test
def test_addresses(env):
    ea, eb = a(env), b(env)
    x = ea.allocate_address(Domain="vpc", TagSpecifications=[
        {"ResourceType": "elastic-ip", "Tags": [{"Key": "role", "Value": "web"}]}])
    check(in_pool(x["PublicIp"]), "an address of the pool", x)
    check_eq((x["Domain"], x["PublicIp"]), ("vpc", "203.0.113.2"),
             "the lowest free address, never the router's")
    y = ea.allocate_address(Domain="vpc")
    check_eq(y["PublicIp"], "203.0.113.3", "the next one")
    S["eip_x"], S["eip_y"] = x["AllocationId"], y["AllocationId"]
    S["ip_x"], S["ip_y"] = x["PublicIp"], y["PublicIp"]
    check_eq(err_code(ea.allocate_address, Domain="standard"), "InvalidParameterValue",
             "EC2-Classic")
    got = ea.describe_addresses(AllocationIds=[S["eip_x"]])["Addresses"][0]
    check_eq((got["PublicIp"], got.get("Tags"), got.get("AssociationId")),
             (S["ip_x"], [{"Key": "role", "Value": "web"}], None), "described")
    got = ea.describe_addresses(Filters=[{"Name": "public-ip", "Values": [S["ip_y"]]}])
    check_eq([g["AllocationId"] for g in got["Addresses"]], [S["eip_y"]], "public-ip filter")
    got = ea.describe_addresses(PublicIps=[S["ip_x"]])["Addresses"]
    check_eq([g["AllocationId"] for g in got], [S["eip_x"]], "by address")
    check_eq(err_code(ea.describe_addresses, PublicIps=["198.51.100.9"]),
             "InvalidAddress.NotFound", "an address not held")
    # Another tenant sees none of it.
    check_eq(err_code(eb.describe_addresses, AllocationIds=[S["eip_x"]]),
             "InvalidAllocationID.NotFound", "describe another tenant's address")
    check_eq(eb.describe_addresses()["Addresses"], [], "b has no addresses")
    check_eq(err_code(eb.release_address, AllocationId=S["eip_x"]),
             "InvalidAllocationID.NotFound", "release another tenant's address")
    check_eq(err_code(eb.associate_address, AllocationId=S["eip_x"], InstanceId=S["i_b"]),
             "InvalidAllocationID.NotFound", "associate another tenant's address")
    bx = eb.allocate_address(Domain="vpc")
    check_eq(err_code(eb.associate_address, AllocationId=bx["AllocationId"],
                      InstanceId=S["i1"]), "InvalidInstanceID.NotFound",
             "to another tenant's instance")
    eb.release_address(AllocationId=bx["AllocationId"])
    check_eq(err_code(ea.associate_address, AllocationId="eipalloc-0000", InstanceId=S["i1"]),
             "InvalidAllocationID.Malformed", "malformed allocation id")
    check_eq(err_code(ea.associate_address, AllocationId=S["eip_x"],
                      InstanceId="i-00000000000000000"),
             "InvalidInstanceID.NotFound", "unknown instance")
    # Without an internet gateway in the instance's VPC: EC2's Gateway.NotAttached.
    check_eq(err_code(ea.associate_address, AllocationId=S["eip_x"], InstanceId=S["i_dark"]),
             "Gateway.NotAttached", "a VPC without an internet gateway")
    v0 = version(env, FIXTURE_HOST)
    assoc = ea.associate_address(AllocationId=S["eip_x"], InstanceId=S["i1"])["AssociationId"]
    check(assoc.startswith("eipassoc-"), "association id", assoc)
    check(version(env, FIXTURE_HOST) > v0, "associating bumps the instance's host")
    S["assoc_x"] = assoc
    d = instances_of(ea.describe_instances(InstanceIds=[S["i1"]]))[0]
    check_eq(d.get("PublicIpAddress"), S["ip_x"], "DescribeInstances' public address")
    check_eq(d["NetworkInterfaces"][0].get("Association", {}).get("PublicIp"), S["ip_x"],
             "the interface's association")
    got = instances_of(ea.describe_instances(
        Filters=[{"Name": "ip-address", "Values": [S["ip_x"]]}]))
    check_eq([i["InstanceId"] for i in got], [S["i1"]], "ip-address filter")
    got = ea.describe_addresses(Filters=[{"Name": "instance-id", "Values": [S["i1"]]}])
    check_eq([(g["AllocationId"], g["AssociationId"], g.get("PrivateIpAddress"))
              for g in got["Addresses"]], [(S["eip_x"], assoc, d["PrivateIpAddress"])],
             "instance-id filter")
    got = ea.describe_addresses(Filters=[{"Name": "association-id", "Values": [assoc]}])
    check_eq([g["AllocationId"] for g in got["Addresses"]], [S["eip_x"]],
             "association-id filter")
    eni = d["NetworkInterfaces"][0]["NetworkInterfaceId"]
    check_eq(env.psql1(f"SELECT network_interface_id FROM addresses WHERE allocation_id = "
                       f"'{S['eip_x']}'"), eni, "addresses.network_interface_id")
    check_eq(err_code(ea.release_address, AllocationId=S["eip_x"]), "InvalidIPAddress.InUse",
             "release while associated")
    check_eq(err_code(ea.detach_internet_gateway, InternetGatewayId=S["igw"], VpcId=S["vpc"]),
             "DependencyViolation", "detaching the gateway of a mapped address")
    # Associating again to the same interface changes nothing.
    again = ea.associate_address(AllocationId=S["eip_x"], InstanceId=S["i1"])["AssociationId"]
    check_eq(again, assoc, "associating twice")
    # Moving: refused without AllowReassociation, done with it.
    check_eq(err_code(ea.associate_address, AllocationId=S["eip_x"], InstanceId=S["i2"]),
             "Resource.AlreadyAssociated", "moving without AllowReassociation")
    moved = ea.associate_address(AllocationId=S["eip_x"], NetworkInterfaceId=instances_of(
        ea.describe_instances(InstanceIds=[S["i2"]]))[0]["NetworkInterfaces"][0][
        "NetworkInterfaceId"], AllowReassociation=True)["AssociationId"]
    check(moved != assoc, "a new association id", moved)
    d1 = instances_of(ea.describe_instances(InstanceIds=[S["i1"]]))[0]
    check("PublicIpAddress" not in d1, "i1 lost it", d1)
    # An interface holding an address takes another: the first is let go.
    ea.associate_address(AllocationId=S["eip_y"], InstanceId=S["i2"])
    got = {g["AllocationId"]: g.get("InstanceId") for g in ea.describe_addresses()["Addresses"]}
    check_eq(got, {S["eip_x"]: None, S["eip_y"]: S["i2"]}, "one address per interface")
    check_eq(err_code(ea.disassociate_address, AssociationId=moved),
             "InvalidAssociationID.NotFound", "the replaced association is gone")
    y_assoc = ea.describe_addresses(AllocationIds=[S["eip_y"]])["Addresses"][0]["AssociationId"]
    ea.disassociate_address(AssociationId=y_assoc)
    check_eq(err_code(ea.disassociate_address, AssociationId=y_assoc),
             "InvalidAssociationID.NotFound", "disassociating twice")
    # Terminating an instance lets its address go (it stays allocated).
    ea.associate_address(AllocationId=S["eip_y"], InstanceId=S["i2"])
    env.set_instance_state([S["i2"]], "terminated")
    got = ea.describe_addresses(AllocationIds=[S["eip_y"]])["Addresses"][0]
    check(got.get("AssociationId") is None and got.get("InstanceId") is None,
          "a terminated instance's address is unassociated", got)
    ea.release_address(AllocationId=S["eip_y"])
    check_eq(err_code(ea.describe_addresses, AllocationIds=[S["eip_y"]]),
             "InvalidAllocationID.NotFound", "released")
    ea.release_address(PublicIp=S["ip_x"])


@tap.test
def test_address_meter_events(env):
    # eip_y: allocated, associated, disassociated, associated, instance terminated, released.
    ev = meter_events(env, S["eip_y"])
    check_eq(ev, [("eip-idle", True), ("eip-idle", False), ("eip-associated", True),
                  ("eip-associated", False), ("eip-idle", True), ("eip-idle", False),
                  ("eip-associated", True), ("eip-associated", False), ("eip-idle", True),
                  ("eip-idle", False)], "eip_y's events")
    check_paired(ev, "eip_y")
    # eip_x moved between interfaces while associated: no event for the move.
    ev = meter_events(env, S["eip_x"])
    check_eq(ev, [("eip-idle", True), ("eip-idle", False), ("eip-associated", True),
                  ("eip-associated", False), ("eip-idle", True), ("eip-idle", False)],
             "eip_x's events")
    tenant = env.tenant("edge-a").tenant_id
    check_eq(env.psql1(f"SELECT count(DISTINCT tenant_id) FROM meter_events WHERE resource_id "
                       f"= '{S['eip_x']}' AND tenant_id = '{tenant}'"), "1", "the tenant")
    # Every event comes with its state change: each off follows its on in time.
    rows = env.psql("SELECT bool_and(at >= lag_at) FROM (SELECT at, lag(at) OVER "
                    "(PARTITION BY resource_id ORDER BY id) AS lag_at FROM meter_events) x "
                    "WHERE lag_at IS NOT NULL")
    check_eq(rows[0][0], "t", "events are in time order")
    prices = env.psql("SELECT meter, unit, unit_quantity, price_micros FROM plan_prices "
                      "WHERE plan_id = 'plan-default-1' AND meter IN ('eip-idle', "
                      "'eip-associated', 'vpn-connection') ORDER BY meter")
    check_eq([tuple(r) for r in prices], [("eip-associated", "hour", "3600", "5000"),
                                         ("eip-idle", "hour", "3600", "5000"),
                                         ("vpn-connection", "hour", "3600", "50000")],
             "plan prices")


@tap.test
def test_vpn(env):
    ea, eb = a(env), b(env)
    # Hosts for the tunnel: the 'up' one with the lowest id terminates it.
    env.psql("INSERT INTO hosts (id, name, zone, simulated, state) VALUES "
             "('h-00000000000000001', 'vpn-down', 'nubo-1a', true, 'down'), "
             "('h-00000000000000002', 'vpn-up', 'nubo-1a', true, 'up'), "
             "('h-00000000000000003', 'vpn-up-2', 'nubo-1a', true, 'up')")
    vgw = ea.create_vpn_gateway(Type="ipsec.1", AmazonSideAsn=64600)["VpnGateway"]
    check_eq((vgw["State"], vgw["Type"], vgw["AmazonSideAsn"], vgw.get("VpcAttachments")),
             ("available", "ipsec.1", 64600, []), "new VPN gateway")
    S["vgw"] = vgw["VpnGatewayId"]
    check_eq(err_code(ea.create_vpn_gateway, Type="ipsec.2"), "InvalidParameterValue",
             "unknown type")
    v0 = version(env, FIXTURE_HOST)
    att = ea.attach_vpn_gateway(VpcId=S["vpc"], VpnGatewayId=S["vgw"])["VpcAttachment"]
    check_eq(att, {"VpcId": S["vpc"], "State": "attached"}, "attachment")
    check(version(env, FIXTURE_HOST) > v0, "attaching a VPN gateway bumps the VPC's hosts")
    other = ea.create_vpn_gateway(Type="ipsec.1")["VpnGateway"]["VpnGatewayId"]
    check_eq(err_code(ea.attach_vpn_gateway, VpcId=S["vpc"], VpnGatewayId=other),
             "VpnGatewayAttachmentLimitExceeded", "one VPN gateway per VPC")
    ea.delete_vpn_gateway(VpnGatewayId=other)
    check_eq(err_code(eb.attach_vpn_gateway, VpcId=S["vpc_b"], VpnGatewayId=S["vgw"]),
             "InvalidVpnGatewayID.NotFound", "another tenant's VPN gateway")
    got = ea.describe_vpn_gateways(
        Filters=[{"Name": "attachment.vpc-id", "Values": [S["vpc"]]}])["VpnGateways"]
    check_eq([g["VpnGatewayId"] for g in got], [S["vgw"]], "attachment.vpc-id filter")
    cgw = ea.create_customer_gateway(Type="ipsec.1", PublicIp="198.51.100.77",
                                     BgpAsn=65010)["CustomerGateway"]
    check_eq((cgw["IpAddress"], cgw["BgpAsn"], cgw["State"]), ("198.51.100.77", "65010",
                                                               "available"), "customer gateway")
    S["cgw"] = cgw["CustomerGatewayId"]
    same = ea.create_customer_gateway(Type="ipsec.1", PublicIp="198.51.100.77", BgpAsn=65010)
    check_eq(same["CustomerGateway"]["CustomerGatewayId"], S["cgw"],
             "an identical customer gateway is the existing one")
    check_eq(err_code(ea.create_customer_gateway, Type="ipsec.1", PublicIp="198.51.100.300",
                      BgpAsn=65000), "InvalidParameterValue", "not an address")
    check_eq(err_code(eb.describe_customer_gateways, CustomerGatewayIds=[S["cgw"]]),
             "InvalidCustomerGatewayID.NotFound", "another tenant's customer gateway")
    # The connection.
    check_eq(err_code(ea.create_vpn_connection, Type="ipsec.1", CustomerGatewayId=S["cgw"],
                      VpnGatewayId=S["vgw"], Options={"StaticRoutesOnly": False}),
             "InvalidParameterValue", "BGP")
    b_cgw = eb.create_customer_gateway(Type="ipsec.1", PublicIp="192.0.2.10",
                                       BgpAsn=65000)["CustomerGateway"]["CustomerGatewayId"]
    check_eq(err_code(eb.create_vpn_connection, Type="ipsec.1", CustomerGatewayId=b_cgw,
                      VpnGatewayId=S["vgw"]), "InvalidVpnGatewayID.NotFound",
             "with another tenant's VPN gateway")
    check_eq(err_code(ea.create_vpn_connection, Type="ipsec.1", CustomerGatewayId=b_cgw,
                      VpnGatewayId=S["vgw"]), "InvalidCustomerGatewayID.NotFound",
             "with another tenant's customer gateway")
    eb.delete_customer_gateway(CustomerGatewayId=b_cgw)
    h2 = version(env, "h-00000000000000002")
    vpn = ea.create_vpn_connection(Type="ipsec.1", CustomerGatewayId=S["cgw"],
                                   VpnGatewayId=S["vgw"],
                                   Options={"StaticRoutesOnly": True})["VpnConnection"]
    S["vpn"] = vpn["VpnConnectionId"]
    check(S["vpn"].startswith("vpn-"), "vpn id", vpn)
    check_eq((vpn["State"], vpn["Type"], vpn["CustomerGatewayId"], vpn["VpnGatewayId"],
              vpn["Options"]["StaticRoutesOnly"], vpn["Category"]),
             ("pending", "ipsec.1", S["cgw"], S["vgw"], True, "VPN"), "the connection")
    row = env.psql("SELECT host(outside_ip), psk, host_id, state FROM vpn_connections "
                   f"WHERE id = '{S['vpn']}'")[0]
    outside, psk, host, state = row
    check_eq(host, "h-00000000000000002", "bound to the 'up' host with the lowest id")
    check(version(env, host) > h2, "its host's version went up", h2)
    check(in_pool(outside), "the outside address is from the pool", outside)
    held = {g["PublicIp"] for g in ea.describe_addresses()["Addresses"]}
    check(outside not in held, "no elastic IP has it", outside, held)
    check(re.fullmatch(r"[A-Za-z][A-Za-z0-9._]{31}", psk), "a 32-character EC2-like key", psk)
    # The customer gateway configuration: EC2's document, as an (escaped) string.
    doc = ET.fromstring(vpn["CustomerGatewayConfiguration"])
    check_eq((doc.tag, doc.get("id")), ("vpn_connection", S["vpn"]), "the document")
    check_eq((doc.findtext("customer_gateway_id"), doc.findtext("vpn_gateway_id"),
              doc.findtext("vpn_connection_type")), (S["cgw"], S["vgw"], "ipsec.1"),
             "its gateways")
    tunnels = doc.findall("ipsec_tunnel")
    check_eq(len(tunnels), 1, "one tunnel")
    t = tunnels[0]
    check_eq(t.findtext("customer_gateway/tunnel_outside_address/ip_address"),
             "198.51.100.77", "the customer's outside address")
    check_eq(t.findtext("vpn_gateway/tunnel_outside_address/ip_address"), outside,
             "our outside address")
    check_eq(t.findtext("ike/pre_shared_key"), psk, "the pre-shared key")
    check_eq((t.findtext("ike/version"), t.findtext("ike/proposal"),
              t.findtext("ike/authentication_protocol"), t.findtext("ike/encryption_protocol"),
              t.findtext("ike/perfect_forward_secrecy"), t.findtext("ike/lifetime"),
              t.findtext("ike/mode")),
             ("ikev2", "aes256-sha256-modp2048", "sha256", "aes-256-cbc", "group14", "28800",
              "main"), "IKE")
    check_eq((t.findtext("ipsec/protocol"), t.findtext("ipsec/mode"),
              t.findtext("ipsec/proposal"), t.findtext("ipsec/encryption_protocol"),
              t.findtext("ipsec/authentication_protocol"),
              t.findtext("ipsec/perfect_forward_secrecy"), t.findtext("ipsec/lifetime")),
             ("esp", "tunnel", "aes256-sha256-modp2048", "aes-256-cbc", "hmac-sha256-128",
              "group14", "3600"), "IPsec")
    check_eq(t.findtext("vpn_gateway/vpc_cidr_block"), "10.0.0.0/16", "the VPC's CIDR")
    tel = vpn["VgwTelemetry"]
    check_eq([(x["OutsideIpAddress"], x["Status"], x["AcceptedRouteCount"]) for x in tel],
             [(outside, "DOWN", 0)], "telemetry")
    opts = vpn["Options"]["TunnelOptions"][0]
    check_eq((opts["OutsideIpAddress"], opts["PreSharedKey"],
              [v["Value"] for v in opts["IkeVersions"]]), (outside, psk, ["ikev2"]),
             "tunnel options")
    # Static routes.
    v1 = version(env, host)
    f0 = version(env, FIXTURE_HOST)
    ea.create_vpn_connection_route(VpnConnectionId=S["vpn"],
                                   DestinationCidrBlock="192.168.10.0/24")
    ea.create_vpn_connection_route(VpnConnectionId=S["vpn"], DestinationCidrBlock="172.20.0.0/16")
    check(version(env, host) > v1, "a static route bumps the tunnel's host")
    check(version(env, FIXTURE_HOST) > f0, "and the VPC's hosts")
    check_eq(err_code(ea.create_vpn_connection_route, VpnConnectionId=S["vpn"],
                      DestinationCidrBlock="192.168.10.0/24"), "RouteAlreadyExists",
             "duplicate static route")
    check_eq(err_code(ea.create_vpn_connection_route, VpnConnectionId=S["vpn"],
                      DestinationCidrBlock="10.0.128.0/17"), "InvalidParameterValue",
             "overlapping the VPC")
    ea.delete_vpn_connection_route(VpnConnectionId=S["vpn"], DestinationCidrBlock="172.20.0.0/16")
    check_eq(err_code(ea.delete_vpn_connection_route, VpnConnectionId=S["vpn"],
                      DestinationCidrBlock="172.20.0.0/16"), "InvalidRoute.NotFound",
             "deleting a route twice")
    got = ea.describe_vpn_connections(VpnConnectionIds=[S["vpn"]])["VpnConnections"][0]
    check_eq([(r["DestinationCidrBlock"], r["Source"], r["State"]) for r in got["Routes"]],
             [("192.168.10.0/24", "Static", "available")], "described routes")
    doc = ET.fromstring(got["CustomerGatewayConfiguration"])
    check_eq([r.text for r in doc.findall("static_routes/route/destination_cidr_block")],
             ["192.168.10.0/24"], "routes in the configuration")
    check_eq(doc.find("ipsec_tunnel/ike/pre_shared_key").text, psk, "the same key again")
    got = ea.describe_vpn_connections(Filters=[
        {"Name": "route.destination-cidr-block", "Values": ["192.168.10.0/24"]},
        {"Name": "state", "Values": ["pending"]}])["VpnConnections"]
    check_eq([v["VpnConnectionId"] for v in got], [S["vpn"]], "filters")
    check_eq(err_code(eb.describe_vpn_connections, VpnConnectionIds=[S["vpn"]]),
             "InvalidVpnConnectionID.NotFound", "another tenant's connection")
    check_eq(err_code(eb.delete_vpn_connection, VpnConnectionId=S["vpn"]),
             "InvalidVpnConnectionID.NotFound", "delete another tenant's connection")
    # The VPC routes the customer's network through the VPN gateway.
    ea.create_route(RouteTableId=S["main_rtb"], DestinationCidrBlock="192.168.10.0/24",
                    GatewayId=S["vgw"])
    rows = env.psql("SELECT state FROM subnet_effective_routes WHERE gateway_id = "
                    f"'{S['vgw']}' AND subnet_id = '{S['sub']}'")
    check_eq(rows, [["active"]], "the route to the VPN gateway")
    # What is in use cannot go.
    check_eq(err_code(ea.delete_customer_gateway, CustomerGatewayId=S["cgw"]), "IncorrectState",
             "a customer gateway in use")
    check_eq(err_code(ea.delete_vpn_gateway, VpnGatewayId=S["vgw"]), "IncorrectState",
             "an attached VPN gateway")


@tap.test
def test_vpn_teardown(env):
    ea = a(env)
    host = "h-00000000000000002"
    v0 = version(env, host)
    ea.detach_vpn_gateway(VpcId=S["vpc"], VpnGatewayId=S["vgw"])
    check(version(env, host) > v0, "detaching bumps the tunnel's host")
    check_eq(err_code(ea.detach_vpn_gateway, VpcId=S["vpc"], VpnGatewayId=S["vgw"]),
             "InvalidVpnGatewayAttachment.NotFound", "detaching twice")
    rows = env.psql("SELECT state FROM subnet_effective_routes WHERE gateway_id = "
                    f"'{S['vgw']}' AND subnet_id = '{S['sub']}'")
    check_eq(rows, [["blackhole"]], "a route to a detached gateway")
    rtb = ea.describe_route_tables(RouteTableIds=[S["main_rtb"]])["RouteTables"][0]
    check_eq({r["GatewayId"]: r["State"] for r in rtb["Routes"]}[S["vgw"]], "blackhole",
             "DescribeRouteTables' blackhole")
    check_eq(err_code(ea.delete_vpn_gateway, VpnGatewayId=S["vgw"]), "IncorrectState",
             "a VPN gateway with a live connection")
    v1 = version(env, host)
    ea.delete_vpn_connection(VpnConnectionId=S["vpn"])
    check(version(env, host) > v1, "deleting the connection bumps its host")
    got = ea.describe_vpn_connections(VpnConnectionIds=[S["vpn"]])["VpnConnections"][0]
    check_eq(got["State"], "deleted", "a deleted connection stays visible")
    check("CustomerGatewayConfiguration" not in got, "without its configuration", got)
    check_eq(err_code(ea.delete_vpn_connection, VpnConnectionId=S["vpn"]),
             "InvalidVpnConnectionID.NotFound", "deleting it twice")
    ev = meter_events(env, S["vpn"])
    check_eq(ev, [("vpn-connection", True), ("vpn-connection", False)], "VPN meter events")
    check_paired(ev, "vpn")
    ea.delete_customer_gateway(CustomerGatewayId=S["cgw"])
    ea.delete_vpn_gateway(VpnGatewayId=S["vgw"])
    check_eq(err_code(ea.describe_vpn_gateways, VpnGatewayIds=[S["vgw"]]),
             "InvalidVpnGatewayID.NotFound", "deleted gateway")
    ea.delete_route(RouteTableId=S["main_rtb"], DestinationCidrBlock="192.168.10.0/24")


@tap.test
def test_address_quota(env):
    c = env.tenant("edge-quota")
    ec2 = env.ec2(c)
    env.psql(f"UPDATE quotas SET max_elastic_ips = 2 WHERE tenant_id = '{c.tenant_id}'")
    ids = [ec2.allocate_address(Domain="vpc")["AllocationId"] for _ in range(2)]
    code, _, _, resp = client_error(ec2.allocate_address, Domain="vpc")
    check_eq(code, "AddressLimitExceeded", "past the tenant's max_elastic_ips")
    check("quota" in resp["Error"]["Message"], "the message says why", resp)
    ec2.release_address(AllocationId=ids[0])
    ids[0] = ec2.allocate_address(Domain="vpc")["AllocationId"]
    for x in ids:
        ec2.release_address(AllocationId=x)


def restart_gateway(env, pool, router=None):
    env.stop_gateway()
    if pool is None:
        os.environ.pop("NUBO_NETWORK_PUBLIC_POOL", None)
    else:
        os.environ["NUBO_NETWORK_PUBLIC_POOL"] = pool
    if router is None:
        os.environ.pop("NUBO_NETWORK_PUBLIC_GATEWAY", None)
    else:
        os.environ["NUBO_NETWORK_PUBLIC_GATEWAY"] = router
    env.start_gateway()


@tap.test(timeout=120)
def test_pool_exhausted(env):
    ea = a(env)
    try:
        # A /30: the network address, the router (.1), .2, the broadcast address.
        restart_gateway(env, "198.51.100.0/30")
        x = ea.allocate_address(Domain="vpc")
        check_eq(x["PublicIp"], "198.51.100.2", "the one address")
        check_eq(err_code(ea.allocate_address, Domain="vpc"), "AddressLimitExceeded",
                 "the pool is empty")
        vgw = ea.create_vpn_gateway(Type="ipsec.1")["VpnGateway"]["VpnGatewayId"]
        cgw = ea.create_customer_gateway(Type="ipsec.1", PublicIp="192.0.2.200",
                                         BgpAsn=65000)["CustomerGateway"]["CustomerGatewayId"]
        check_eq(err_code(ea.create_vpn_connection, Type="ipsec.1", CustomerGatewayId=cgw,
                          VpnGatewayId=vgw), "VpnConnectionLimitExceeded",
                 "no outside address for a VPN connection")
        ea.release_address(AllocationId=x["AllocationId"])
        vpn = ea.create_vpn_connection(Type="ipsec.1", CustomerGatewayId=cgw,
                                       VpnGatewayId=vgw)["VpnConnection"]
        check_eq(vpn["VgwTelemetry"][0]["OutsideIpAddress"], "198.51.100.2",
                 "the released address serves the connection")
        check_eq(err_code(ea.allocate_address, Domain="vpc"), "AddressLimitExceeded",
                 "the connection holds it")
        ea.delete_vpn_connection(VpnConnectionId=vpn["VpnConnectionId"])
        x = ea.allocate_address(Domain="vpc")
        check_eq(x["PublicIp"], "198.51.100.2", "a deleted connection gives its address back")
        ea.release_address(AllocationId=x["AllocationId"])
        # The router setting: .2 is the router now, .1 is handed out.
        restart_gateway(env, "198.51.100.0/30", "198.51.100.2")
        x = ea.allocate_address(Domain="vpc")
        check_eq(x["PublicIp"], "198.51.100.1", "network.public_gateway is never handed out")
        ea.release_address(AllocationId=x["AllocationId"])
        restart_gateway(env, None)
        code, _, _, resp = client_error(ea.allocate_address, Domain="vpc")
        check_eq(code, "AddressLimitExceeded", "no pool configured")
        check("network.public_pool" in resp["Error"]["Message"], "the message names the setting",
              resp)
        ea.delete_customer_gateway(CustomerGatewayId=cgw)
        ea.delete_vpn_gateway(VpnGatewayId=vgw)
    finally:
        if env.gw_proc is None or os.environ.get("NUBO_NETWORK_PUBLIC_POOL") != POOL:
            restart_gateway(env, POOL)


def aws(env, creds, *args):
    cmd = ["/usr/bin/aws", "ec2", *args, "--endpoint-url", env.endpoint, "--region", "nubo-1",
           "--output", "json"]
    penv = {"PATH": "/usr/bin:/bin", "HOME": str(env.tmp / "home"), "LANG": "C.UTF-8",
            "AWS_ACCESS_KEY_ID": creds.key_id, "AWS_SECRET_ACCESS_KEY": creds.secret,
            "AWS_CONFIG_FILE": str(env.tmp / "aws-empty"),
            "AWS_SHARED_CREDENTIALS_FILE": str(env.tmp / "aws-empty"),
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": "", "AWS_MAX_ATTEMPTS": "1"}
    r = subprocess.run(cmd, env=penv, capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


@tap.test(timeout=180)
def test_awscli(env):
    if not shutil.which("aws", path="/usr/bin"):
        raise SkipTest("no /usr/bin/aws")
    c = env.tenant("edge-cli")

    def ok(*args):
        rc, out, errt = aws(env, c, *args)
        if rc != 0:
            raise TestFailure(f"aws {' '.join(args)} failed: {errt[:2000]}")
        return json.loads(out) if out.strip() else {}

    def fails(code, *args):
        rc, _, errt = aws(env, c, *args)
        check(rc != 0 and code in errt, f"aws {args[0]} fails with {code}", errt)

    vpc = ok("create-vpc", "--cidr-block", "172.16.0.0/16")["Vpc"]["VpcId"]
    sub = ok("create-subnet", "--vpc-id", vpc, "--cidr-block", "172.16.1.0/24")["Subnet"]
    inst = ok("run-instances", "--image-id", env.image(), "--count", "1", "--subnet-id",
              sub["SubnetId"])["Instances"][0]["InstanceId"]
    igw = ok("create-internet-gateway")["InternetGateway"]["InternetGatewayId"]
    alloc = ok("allocate-address", "--domain", "vpc")
    check(in_pool(alloc["PublicIp"]), "cli address from the pool", alloc)
    fails("Gateway.NotAttached", "associate-address", "--allocation-id", alloc["AllocationId"],
          "--instance-id", inst)
    ok("attach-internet-gateway", "--internet-gateway-id", igw, "--vpc-id", vpc)
    assoc = ok("associate-address", "--allocation-id", alloc["AllocationId"], "--instance-id",
               inst)["AssociationId"]
    got = ok("describe-addresses", "--filters", f"Name=association-id,Values={assoc}")
    check_eq([x["InstanceId"] for x in got["Addresses"]], [inst], "cli describe-addresses")
    fails("InvalidIPAddress.InUse", "release-address", "--allocation-id", alloc["AllocationId"])
    rtb = ok("create-route-table", "--vpc-id", vpc)["RouteTable"]["RouteTableId"]
    ok("create-route", "--route-table-id", rtb, "--destination-cidr-block", "0.0.0.0/0",
       "--gateway-id", igw)
    ok("associate-route-table", "--route-table-id", rtb, "--subnet-id", sub["SubnetId"])
    got = ok("describe-route-tables", "--route-table-ids", rtb)["RouteTables"][0]
    check_eq({r["DestinationCidrBlock"]: r["GatewayId"] for r in got["Routes"]},
             {"172.16.0.0/16": "local", "0.0.0.0/0": igw}, "cli routes")
    vgw = ok("create-vpn-gateway", "--type", "ipsec.1")["VpnGateway"]["VpnGatewayId"]
    ok("attach-vpn-gateway", "--vpn-gateway-id", vgw, "--vpc-id", vpc)
    cgw = ok("create-customer-gateway", "--type", "ipsec.1", "--public-ip", "192.0.2.55",
             "--bgp-asn", "65001")["CustomerGateway"]["CustomerGatewayId"]
    vpn = ok("create-vpn-connection", "--type", "ipsec.1", "--customer-gateway-id", cgw,
             "--vpn-gateway-id", vgw, "--options", "StaticRoutesOnly=true")["VpnConnection"]
    ok("create-vpn-connection-route", "--vpn-connection-id", vpn["VpnConnectionId"],
       "--destination-cidr-block", "10.50.0.0/16")
    got = ok("describe-vpn-connections", "--vpn-connection-ids",
             vpn["VpnConnectionId"])["VpnConnections"][0]
    doc = ET.fromstring(got["CustomerGatewayConfiguration"])
    t = doc.find("ipsec_tunnel")
    psk = t.findtext("ike/pre_shared_key")
    check(psk and len(psk) == 32, "cli: the configuration has the key", psk)
    check_eq(t.findtext("customer_gateway/tunnel_outside_address/ip_address"), "192.0.2.55",
             "cli: the customer's address")
    check(in_pool(t.findtext("vpn_gateway/tunnel_outside_address/ip_address")),
          "cli: our address from the pool", doc)
    fails("IncorrectState", "delete-customer-gateway", "--customer-gateway-id", cgw)
    ok("delete-vpn-connection", "--vpn-connection-id", vpn["VpnConnectionId"])
    ok("detach-vpn-gateway", "--vpn-gateway-id", vgw, "--vpc-id", vpc)
    ok("delete-vpn-gateway", "--vpn-gateway-id", vgw)
    ok("delete-customer-gateway", "--customer-gateway-id", cgw)
    ok("disassociate-address", "--association-id", assoc)
    ok("release-address", "--allocation-id", alloc["AllocationId"])
    fails("InvalidAllocationID.NotFound", "release-address", "--allocation-id",
          alloc["AllocationId"])


@tap.test
def test_rest(env):
    c = env.tenant("edge-rest")
    other = env.tenant("edge-b")

    def call(method, path, body=None, status=200, query=None):
        r = env.rest(c, method, path, body=body, query=query)
        check_eq(r.status, status, f"{method} {path}: {r}")
        return r.json

    vpc = call("POST", "/v1/vpcs", {"cidr_block": "10.1.0.0/16"}, 201)["id"]
    sub = call("POST", "/v1/subnets", {"vpc_id": vpc, "cidr_block": "10.1.1.0/24"}, 201)["id"]
    ins = call("POST", "/v1/instances", {"image_id": env.image(), "subnet_id": sub},
               201)["instances"][0]["id"]
    igw = call("POST", "/v1/internet-gateways", {"tags": {"env": "rest"}}, 201)
    check_eq((igw["vpc_id"], igw["tags"]), (None, {"env": "rest"}), "rest igw")
    got = call("POST", f"/v1/internet-gateways/{igw['id']}/attach", {"vpc_id": vpc})
    check_eq(got["vpc_id"], vpc, "rest attach")
    got = call("GET", "/v1/internet-gateways")["internet_gateways"]
    check_eq([g["id"] for g in got], [igw["id"]], "rest list")
    tables = call("GET", "/v1/route-tables", query={"vpc-id": vpc})["route_tables"]
    check_eq([(t["main"], [r["gateway_id"] for r in t["routes"]]) for t in tables],
             [(True, ["local"])], "rest main table")
    rtb = call("POST", "/v1/route-tables", {"vpc_id": vpc}, 201)["id"]
    got = call("POST", f"/v1/route-tables/{rtb}/routes",
               {"destination": "0.0.0.0/0", "gateway_id": igw["id"]})
    check_eq([(r["destination"], r["state"]) for r in got["routes"]],
             [("10.1.0.0/16", "active"), ("0.0.0.0/0", "active")], "rest routes")
    r = env.rest(c, "POST", f"/v1/route-tables/{rtb}/routes",
                 body={"destination": "0.0.0.0/0", "gateway_id": igw["id"]})
    check_eq((r.status, r.error_code), (400, "RouteAlreadyExists"), "rest duplicate route")
    assoc = call("POST", f"/v1/route-tables/{rtb}/associations", {"subnet_id": sub}, 201)
    check_eq(assoc["subnet_id"], sub, "rest association")
    call("DELETE", f"/v1/route-tables/{rtb}/associations/{assoc['id']}", status=204)
    call("DELETE", f"/v1/route-tables/{rtb}/routes", {"destination": "0.0.0.0/0"})
    call("DELETE", f"/v1/route-tables/{rtb}", status=204)
    addr = call("POST", "/v1/addresses", None, 201)
    check(addr["id"].startswith("eipalloc-") and in_pool(addr["public_ip"]), "rest address",
          addr)
    got = call("POST", f"/v1/addresses/{addr['id']}/associate", {"instance_id": ins})
    check_eq((got["instance_id"], got["association_id"] is not None), (ins, True),
             "rest associate")
    got = call("GET", f"/v1/instances/{ins}")
    check_eq(got.get("public_ip"), addr["public_ip"], "rest instance's public address")
    r = env.rest(c, "DELETE", f"/v1/addresses/{addr['id']}")
    check_eq((r.status, r.error_code), (400, "InvalidIPAddress.InUse"), "rest release in use")
    got = call("POST", f"/v1/addresses/{addr['id']}/disassociate")
    check_eq(got["association_id"], None, "rest disassociate")
    vgw = call("POST", "/v1/vpn-gateways", {}, 201)
    check_eq((vgw["type"], vgw["amazon_side_asn"]), ("ipsec.1", 64512), "rest vgw defaults")
    call("POST", f"/v1/vpn-gateways/{vgw['id']}/attach", {"vpc_id": vpc})
    cgw = call("POST", "/v1/customer-gateways", {"ip_address": "192.0.2.99"}, 201)
    check_eq(cgw["bgp_asn"], 65000, "rest cgw default ASN")
    vpn = call("POST", "/v1/vpn-connections",
               {"customer_gateway_id": cgw["id"], "vpn_gateway_id": vgw["id"]}, 201)
    check_eq((vpn["state"], vpn["vpc_cidr"], vpn["customer_ip"]),
             ("pending", "10.1.0.0/16", "192.0.2.99"), "rest vpn")
    got = call("POST", f"/v1/vpn-connections/{vpn['id']}/routes",
               {"destination": "192.168.50.0/24"})
    check_eq(got["routes"], ["192.168.50.0/24"], "rest vpn route")
    doc = ET.fromstring(got["customer_gateway_configuration"])
    check_eq(doc.findtext("ipsec_tunnel/ike/pre_shared_key"), vpn["pre_shared_key"],
             "rest configuration")
    check_eq(doc.findtext("ipsec_tunnel/vpn_gateway/tunnel_outside_address/ip_address"),
             vpn["outside_ip"], "rest outside address")
    for path in (f"/v1/internet-gateways/{igw['id']}", f"/v1/addresses/{addr['id']}",
                 f"/v1/vpn-gateways/{vgw['id']}", f"/v1/customer-gateways/{cgw['id']}",
                 f"/v1/vpn-connections/{vpn['id']}", f"/v1/route-tables/{tables[0]['id']}"):
        r = env.rest(other, "GET", path)
        check(r.status == 400 and (r.error_code or "").endswith(".NotFound"),
              f"another tenant's {path}", r)
    call("DELETE", f"/v1/vpn-connections/{vpn['id']}", status=204)
    check_eq(call("GET", f"/v1/vpn-connections/{vpn['id']}")["state"], "deleted",
             "rest deleted vpn")
    call("POST", f"/v1/vpn-gateways/{vgw['id']}/detach", {"vpc_id": vpc})
    call("DELETE", f"/v1/vpn-gateways/{vgw['id']}", status=204)
    call("DELETE", f"/v1/customer-gateways/{cgw['id']}", status=204)
    call("DELETE", f"/v1/addresses/{addr['id']}", status=204)
    call("POST", f"/v1/internet-gateways/{igw['id']}/detach", {"vpc_id": vpc})
    call("DELETE", f"/v1/internet-gateways/{igw['id']}", status=204)
    check_paired(meter_events(env, addr["id"]), "rest address")
    check_paired(meter_events(env, vpn["id"]), "rest vpn")


@tap.test
def test_vpc_deletion(env):
    ea = a(env)
    # The dark VPC: its subnet's instance goes, then the VPC with its main route table.
    env.set_instance_state([S["i_dark"]], "terminated")
    ea.delete_subnet(SubnetId=S["sub_dark"])
    extra = ea.create_route_table(VpcId=S["vpc_dark"])["RouteTable"]["RouteTableId"]
    code, _, _, resp = client_error(ea.delete_vpc, VpcId=S["vpc_dark"])
    check("route tables" in resp["Error"]["Message"], "a VPC with another route table stays",
          code, resp)
    ea.delete_route_table(RouteTableId=extra)
    main = ea.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [S["vpc_dark"]]}])["RouteTables"][0]["RouteTableId"]
    ea.delete_vpc(VpcId=S["vpc_dark"])
    check_eq(err_code(ea.describe_route_tables, RouteTableIds=[main]),
             "InvalidRouteTableID.NotFound", "the main table went with its VPC")
    # A VPC with an internet gateway attached stays (the error names it).
    vpc = ea.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    igw = ea.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ea.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    code, _, _, resp = client_error(ea.delete_vpc, VpcId=vpc)
    check("internet gateway" in resp["Error"]["Message"], "a VPC with a gateway stays", code,
          resp)
    ea.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    ea.delete_vpc(VpcId=vpc)
    ea.delete_internet_gateway(InternetGatewayId=igw)
    check_eq(env.psql1(f"SELECT count(*) FROM route_tables WHERE vpc_id = '{vpc}'"), "0",
             "no route table is left behind")


if __name__ == "__main__":
    tap.main()
