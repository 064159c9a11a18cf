"""End-to-end: the control plane of tenant networks (issue 7, first slice) through the EC2 API
with boto3 and the AWS CLI, and through the REST API, against a real nubo-gateway: VPCs,
subnets, security groups and their rules, and the network interface RunInstances gives an
instance launched into a subnet (private address, MAC, groups). No data plane yet. Prints TAP.
Run: /usr/bin/python3 tests/e2e/test_network_api.py"""

import sys

sys.dont_write_bytecode = True

import ipaddress  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402

import nubo_env  # noqa: E402
from nubo_env import SkipTest, TestFailure, check, check_eq, client_error  # noqa: E402

tap = nubo_env.Tap(__file__)
S = {}  # state shared by the tests, in order


def a(env):
    return env.ec2(env.tenant("net-a"))


def b(env):
    return env.ec2(env.tenant("net-b"))


def instances_of(out):
    return [i for r in out.get("Reservations", []) for i in r.get("Instances", [])]


def err_code(fn, **kw):
    return client_error(fn, **kw)[0]


def perms(group, key="IpPermissions"):
    """A group's permissions as a set of (protocol, from, to, peer) tuples."""
    out = set()
    for p in group.get(key, []):
        for r in p.get("IpRanges", []):
            out.add((p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), r["CidrIp"]))
        for g in p.get("UserIdGroupPairs", []):
            out.add((p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), g["GroupId"]))
    return out


def group(ec2, gid):
    return ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]


@tap.test
def test_vpcs_overlap_between_tenants(env):
    ea, eb = a(env), b(env)
    va = ea.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "net-a main"}]}])["Vpc"]
    vb = eb.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]
    check(va["VpcId"].startswith("vpc-") and va["VpcId"] != vb["VpcId"], "vpc ids", va, vb)
    check_eq((va["CidrBlock"], va["State"], va["IsDefault"]), ("10.0.0.0/16", "available", False),
             "created vpc")
    check_eq(va.get("Tags"), [{"Key": "Name", "Value": "net-a main"}], "tags")
    S["vpc_a"], S["vpc_b"] = va["VpcId"], vb["VpcId"]
    got = ea.describe_vpcs()["Vpcs"]
    check_eq([v["VpcId"] for v in got], [va["VpcId"]], "a's vpcs")
    got = ea.describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.0.0.0/16"]},
                                    {"Name": "tag:Name", "Values": ["net-a main"]}])["Vpcs"]
    check_eq(len(got), 1, "cidr and tag filters")
    got = ea.describe_vpcs(Filters=[{"Name": "state", "Values": ["pending"]}])["Vpcs"]
    check_eq(got, [], "state filter")
    check_eq(err_code(ea.describe_vpcs, VpcIds=[vb["VpcId"]]), "InvalidVpcID.NotFound",
             "another tenant's vpc")
    for cidr in ("10.0.0.0/15", "10.0.0.0/29"):
        check_eq(err_code(ea.create_vpc, CidrBlock=cidr), "InvalidVpc.Range", cidr)
    for cidr in ("10.0.0.1/16", "300.0.0.0/16", "bogus"):
        check_eq(err_code(ea.create_vpc, CidrBlock=cidr), "InvalidParameterValue", cidr)
    segs = env.psql("SELECT segment FROM vpcs ORDER BY segment")
    check_eq(len({s[0] for s in segs}), len(segs), "distinct segments")
    # Each VPC has its default group: ingress from itself, egress anywhere.
    groups = ea.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [va["VpcId"]]}])["SecurityGroups"]
    check_eq([g["GroupName"] for g in groups], ["default"], "default group")
    d = groups[0]
    S["default_a"] = d["GroupId"]
    check_eq(perms(d), {("-1", None, None, d["GroupId"])}, "default ingress")
    check_eq(perms(d, "IpPermissionsEgress"), {("-1", None, None, "0.0.0.0/0")}, "default egress")


@tap.test
def test_subnets(env):
    ea, eb = a(env), b(env)
    s1 = ea.create_subnet(VpcId=S["vpc_a"], CidrBlock="10.0.1.0/24",
                          AvailabilityZone="nubo-1a")["Subnet"]
    check_eq((s1["CidrBlock"], s1["AvailabilityZone"], s1["AvailableIpAddressCount"],
              s1["VpcId"]), ("10.0.1.0/24", "nubo-1a", 251, S["vpc_a"]), "created subnet")
    s2 = ea.create_subnet(VpcId=S["vpc_a"], CidrBlock="10.0.2.0/28")["Subnet"]
    check_eq(s2["AvailableIpAddressCount"], 11, "a /28 has 16 - 5 addresses")
    S["sub1"], S["sub28"] = s1["SubnetId"], s2["SubnetId"]
    # The other tenant may use the same range in its own VPC.
    sb = eb.create_subnet(VpcId=S["vpc_b"], CidrBlock="10.0.1.0/24")["Subnet"]
    S["sub_b"] = sb["SubnetId"]
    check_eq(err_code(ea.create_subnet, VpcId=S["vpc_a"], CidrBlock="10.0.1.128/25"),
             "InvalidSubnet.Conflict", "overlapping subnet")
    check_eq(err_code(ea.create_subnet, VpcId=S["vpc_a"], CidrBlock="10.0.0.0/16"),
             "InvalidSubnet.Conflict", "the whole vpc over existing subnets")
    check_eq(err_code(ea.create_subnet, VpcId=S["vpc_a"], CidrBlock="10.1.0.0/24"),
             "InvalidSubnet.Range", "outside the vpc")
    check_eq(err_code(ea.create_subnet, VpcId=S["vpc_a"], CidrBlock="10.0.9.0/29"),
             "InvalidSubnet.Range", "too small")
    check_eq(err_code(ea.create_subnet, VpcId=S["vpc_a"], CidrBlock="10.0.9.0/24",
                      AvailabilityZone="elsewhere-1a"), "InvalidParameterValue", "unknown zone")
    check_eq(err_code(ea.create_subnet, VpcId=S["vpc_b"], CidrBlock="10.0.9.0/24"),
             "InvalidVpcID.NotFound", "another tenant's vpc")
    got = ea.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [S["vpc_a"]]}])["Subnets"]
    check_eq(sorted(s["SubnetId"] for s in got), sorted([S["sub1"], S["sub28"]]), "a's subnets")
    got = ea.describe_subnets(SubnetIds=[S["sub1"]])["Subnets"]
    check_eq(got[0]["CidrBlock"], "10.0.1.0/24", "by id")
    check_eq(err_code(ea.describe_subnets, SubnetIds=[S["sub_b"]]), "InvalidSubnetID.NotFound",
             "another tenant's subnet")
    got = ea.describe_subnets(Filters=[{"Name": "cidr-block", "Values": ["10.0.2.0/28"]}])
    check_eq([s["SubnetId"] for s in got["Subnets"]], [S["sub28"]], "cidr-block filter")


@tap.test
def test_security_groups_and_rules(env):
    ea, eb = a(env), b(env)
    web = ea.create_security_group(GroupName="web", Description="web servers",
                                   VpcId=S["vpc_a"])["GroupId"]
    db = ea.create_security_group(GroupName="db", Description="databases",
                                  VpcId=S["vpc_a"])["GroupId"]
    S["web"], S["db"] = web, db
    check_eq(err_code(ea.create_security_group, GroupName="web", Description="x",
                      VpcId=S["vpc_a"]), "InvalidGroup.Duplicate", "duplicate name")
    check_eq(err_code(ea.create_security_group, GroupName="default", Description="x",
                      VpcId=S["vpc_a"]), "InvalidGroup.Reserved", "reserved name")
    check_eq(err_code(ea.create_security_group, GroupName="x", Description="x",
                      VpcId=S["vpc_b"]), "InvalidVpcID.NotFound", "another tenant's vpc")
    # A new group may send anywhere and receives nothing.
    g = group(ea, web)
    check_eq((perms(g), perms(g, "IpPermissionsEgress")),
             (set(), {("-1", None, None, "0.0.0.0/0")}), "new group")
    ea.authorize_security_group_ingress(GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "192.0.2.0/24"}, {"CidrIp": "198.51.100.7/32"}]},
        {"IpProtocol": "6", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
    ])
    # The older top-level form.
    ea.authorize_security_group_ingress(GroupId=web, IpProtocol="udp", FromPort=53, ToPort=53,
                                        CidrIp="10.0.0.0/16")
    ea.authorize_security_group_ingress(GroupId=db, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
         "UserIdGroupPairs": [{"GroupId": web}]}])
    check_eq(perms(group(ea, web)), {
        ("tcp", 22, 22, "192.0.2.0/24"), ("tcp", 22, 22, "198.51.100.7/32"),
        ("tcp", 80, 80, "0.0.0.0/0"), ("icmp", 8, -1, "0.0.0.0/0"),
        ("udp", 53, 53, "10.0.0.0/16")}, "web ingress")
    gdb = group(ea, db)
    check_eq(perms(gdb), {("tcp", 5432, 5432, web)}, "db ingress")
    pair = gdb["IpPermissions"][0]["UserIdGroupPairs"][0]
    check_eq(pair.get("UserId"), env.tenant("net-a").tenant_id, "pair's owner")
    # Two CIDRs of one port range are one permission, as EC2 lists them.
    ssh = [p for p in group(ea, web)["IpPermissions"] if p.get("FromPort") == 22]
    check_eq(len(ssh), 1, "one permission for port 22")
    check_eq(len(ssh[0]["IpRanges"]), 2, "its two ranges")
    code = err_code(ea.authorize_security_group_ingress, GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "192.0.2.0/24"}]}])
    check_eq(code, "InvalidPermission.Duplicate", "duplicate rule")
    code = err_code(ea.authorize_security_group_ingress, GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 90, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    check_eq(code, "InvalidParameterValue", "inverted port range")
    code = err_code(ea.authorize_security_group_ingress, GroupId=web, IpPermissions=[
        {"IpProtocol": "gre", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    check_eq(code, "InvalidParameterValue", "unknown protocol")
    code = err_code(ea.authorize_security_group_ingress, GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2,
         "UserIdGroupPairs": [{"GroupId": S["default_a"].replace("sg-", "sg-f")[:20]}]}])
    check(code in ("InvalidGroup.NotFound", "InvalidGroupId.Malformed"), "unknown group", code)
    # Another tenant's group cannot be referred to, seen or changed.
    bgroups = eb.describe_security_groups()["SecurityGroups"]
    bdefault = bgroups[0]["GroupId"]
    code = err_code(ea.authorize_security_group_ingress, GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2,
         "UserIdGroupPairs": [{"GroupId": bdefault}]}])
    check_eq(code, "InvalidGroup.NotFound", "another tenant's group as a peer")
    check_eq(err_code(eb.describe_security_groups, GroupIds=[web]), "InvalidGroup.NotFound",
             "describe another tenant's group")
    check_eq(err_code(eb.authorize_security_group_ingress, GroupId=web, IpProtocol="tcp",
                      FromPort=1, ToPort=1, CidrIp="0.0.0.0/0"), "InvalidGroup.NotFound",
             "change another tenant's group")
    check_eq(err_code(eb.delete_security_group, GroupId=web), "InvalidGroup.NotFound",
             "delete another tenant's group")
    # Revoke, egress.
    ea.revoke_security_group_ingress(GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    check(("tcp", 80, 80, "0.0.0.0/0") not in perms(group(ea, web)), "revoked")
    code = err_code(ea.revoke_security_group_ingress, GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    check_eq(code, "InvalidPermission.NotFound", "revoking it again")
    ea.revoke_security_group_egress(GroupId=db, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ea.authorize_security_group_egress(GroupId=db, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
         "IpRanges": [{"CidrIp": "203.0.113.0/24"}]}])
    check_eq(perms(group(ea, db), "IpPermissionsEgress"), {("tcp", 443, 443, "203.0.113.0/24")},
             "db egress")
    got = ea.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["web", "db"]}])
    check_eq(sorted(g["GroupName"] for g in got["SecurityGroups"]), ["db", "web"], "name filter")
    got = ea.describe_security_groups(GroupNames=["db"])["SecurityGroups"]
    check_eq([g["GroupId"] for g in got], [db], "by name")


@tap.test
def test_run_instances_in_subnet(env):
    ea = a(env)
    r = ea.run_instances(ImageId=env.image(), MinCount=3, MaxCount=3, SubnetId=S["sub1"])
    ins = r["Instances"]
    ips = [i.get("PrivateIpAddress") for i in ins]
    check_eq(sorted(ips, key=ipaddress.ip_address), ["10.0.1.4", "10.0.1.5", "10.0.1.6"],
             "lowest free addresses after the reserved four")
    macs = [i["NetworkInterfaces"][0]["MacAddress"] for i in ins]
    check_eq(len(set(macs)), 3, "distinct MACs")
    check(all(m.startswith("02:") for m in macs), "locally administered MACs", macs)
    check_eq({i["Placement"]["AvailabilityZone"] for i in ins}, {"nubo-1a"}, "the subnet's zone")
    S["three"] = [i["InstanceId"] for i in ins]
    fixed = ea.run_instances(ImageId=env.image(), MinCount=1, MaxCount=1, SubnetId=S["sub1"],
                             PrivateIpAddress="10.0.1.50",
                             SecurityGroupIds=[S["web"], S["db"]])["Instances"][0]
    check_eq(fixed["PrivateIpAddress"], "10.0.1.50", "the requested address")
    S["fixed"] = fixed["InstanceId"]
    d = instances_of(ea.describe_instances(InstanceIds=[S["fixed"]]))[0]
    check_eq((d["VpcId"], d["SubnetId"], d["PrivateIpAddress"]),
             (S["vpc_a"], S["sub1"], "10.0.1.50"), "described network fields")
    check_eq(sorted(g["GroupId"] for g in d["SecurityGroups"]), sorted([S["web"], S["db"]]),
             "groupSet")
    eni = d["NetworkInterfaces"][0]
    check_eq((eni["SubnetId"], eni["VpcId"], eni["PrivateIpAddress"], eni["Status"],
              eni["Attachment"]["DeviceIndex"]),
             (S["sub1"], S["vpc_a"], "10.0.1.50", "in-use", 0), "networkInterfaceSet")
    check(eni["NetworkInterfaceId"].startswith("eni-"), "interface id", eni)
    check(len(eni["MacAddress"]) == 17, "mac", eni)
    # Without groups: the VPC's default group.
    d3 = instances_of(ea.describe_instances(InstanceIds=S["three"][:1]))[0]
    check_eq([g["GroupName"] for g in d3["SecurityGroups"]], ["default"], "default group")
    got = instances_of(ea.describe_instances(
        Filters=[{"Name": "private-ip-address", "Values": ["10.0.1.50"]}]))
    check_eq([i["InstanceId"] for i in got], [S["fixed"]], "private-ip-address filter")
    got = instances_of(ea.describe_instances(
        Filters=[{"Name": "subnet-id", "Values": [S["sub1"]]}]))
    check_eq(len(got), 4, "subnet-id filter")
    check_eq(err_code(ea.run_instances, ImageId=env.image(), MinCount=1, MaxCount=1,
                      SubnetId=S["sub1"], PrivateIpAddress="10.0.1.50"),
             "InvalidIPAddress.InUse", "a taken address")
    for ip in ("10.0.1.2", "10.0.1.255", "10.0.2.9"):
        check_eq(err_code(ea.run_instances, ImageId=env.image(), MinCount=1, MaxCount=1,
                          SubnetId=S["sub1"], PrivateIpAddress=ip), "InvalidParameterValue",
                 f"address {ip}")
    check_eq(err_code(ea.run_instances, ImageId=env.image(), MinCount=1, MaxCount=1,
                      SubnetId=S["sub_b"]), "InvalidSubnetID.NotFound", "another tenant's subnet")
    bweb = b(env).describe_security_groups()["SecurityGroups"][0]["GroupId"]
    check_eq(err_code(ea.run_instances, ImageId=env.image(), MinCount=1, MaxCount=1,
                      SubnetId=S["sub1"], SecurityGroupIds=[bweb]), "InvalidGroup.NotFound",
             "another tenant's group")
    check_eq(err_code(ea.run_instances, ImageId=env.image(), MinCount=1, MaxCount=1,
                      SecurityGroupIds=[S["web"]]), "InvalidParameterCombination",
             "groups without a subnet")
    check_eq(err_code(ea.run_instances, ImageId=env.image(), MinCount=1, MaxCount=1,
                      SubnetId=S["sub1"], Placement={"AvailabilityZone": "nubo-1b"}),
             "InvalidParameterCombination", "another zone than the subnet's")
    sub = ea.describe_subnets(SubnetIds=[S["sub1"]])["Subnets"][0]
    check_eq(sub["AvailableIpAddressCount"], 251 - 4, "available addresses")


@tap.test
def test_full_subnet(env):
    ea = a(env)
    # 11 usable addresses in a /28: 10.0.2.4 .. 10.0.2.14.
    r = ea.run_instances(ImageId=env.image(), MinCount=8, MaxCount=8, SubnetId=S["sub28"])
    ids = [i["InstanceId"] for i in r["Instances"]]
    check_eq(sorted(i["PrivateIpAddress"] for i in r["Instances"]),
             sorted(f"10.0.2.{k}" for k in range(4, 12)), "eight addresses")
    code = err_code(ea.run_instances, ImageId=env.image(), MinCount=4, MaxCount=4,
                    SubnetId=S["sub28"])
    check_eq(code, "InsufficientFreeAddressesInSubnet", "four more do not fit")
    # MinCount..MaxCount: as many as fit.
    r = ea.run_instances(ImageId=env.image(), MinCount=1, MaxCount=5, SubnetId=S["sub28"])
    check_eq(sorted(i["PrivateIpAddress"] for i in r["Instances"]),
             ["10.0.2.12", "10.0.2.13", "10.0.2.14"], "the last three")
    ids += [i["InstanceId"] for i in r["Instances"]]
    code = err_code(ea.run_instances, ImageId=env.image(), MinCount=1, MaxCount=1,
                    SubnetId=S["sub28"])
    check_eq(code, "InsufficientFreeAddressesInSubnet", "full")
    sub = ea.describe_subnets(SubnetIds=[S["sub28"]])["Subnets"][0]
    check_eq(sub["AvailableIpAddressCount"], 0, "none available")
    S["full"] = ids


@tap.test
def test_terminating_frees_addresses(env):
    ea = a(env)
    ids = S["full"]
    # Not placed: TerminateInstances ends them at once.
    ea.terminate_instances(InstanceIds=ids[:2])
    d = instances_of(ea.describe_instances(InstanceIds=ids[:2]))
    check_eq({i["State"]["Name"] for i in d}, {"terminated"}, "terminated")
    check("PrivateIpAddress" not in d[0], "a terminated instance has no address", d[0])
    sub = ea.describe_subnets(SubnetIds=[S["sub28"]])["Subnets"][0]
    check_eq(sub["AvailableIpAddressCount"], 2, "two free again")
    r = ea.run_instances(ImageId=env.image(), MinCount=1, MaxCount=1, SubnetId=S["sub28"])
    check_eq(r["Instances"][0]["PrivateIpAddress"], "10.0.2.4", "the lowest freed address")
    # Placed on a host, terminated there: the host's netctl version goes up.
    env.set_instance_state([ids[2]], "running")
    v0 = env.psql("SELECT desired FROM netctl_versions WHERE host_id = 'h-0000000000000fa4e'")
    check(v0, "placing an instance with an interface bumps its host's version")
    env.set_instance_state([ids[2]], "terminated")
    v1 = env.psql1("SELECT desired FROM netctl_versions WHERE host_id = 'h-0000000000000fa4e'")
    check(int(v1) > int(v0[0][0]), "terminating bumps it", v0, v1)
    check_eq(env.psql1("SELECT count(*) FROM network_interfaces WHERE instance_id = "
                       f"'{ids[2]}'"), "0", "interface released")
    # A rule change bumps the hosts with ports in the VPC.
    env.set_instance_state([ids[3]], "running")
    v2 = int(env.psql1("SELECT desired FROM netctl_versions "
                       "WHERE host_id = 'h-0000000000000fa4e'"))
    ea.authorize_security_group_ingress(GroupId=S["default_a"], IpProtocol="tcp", FromPort=8080,
                                        ToPort=8080, CidrIp="10.9.0.0/16")
    v3 = int(env.psql1("SELECT desired FROM netctl_versions "
                       "WHERE host_id = 'h-0000000000000fa4e'"))
    check(v3 > v2, "a rule change bumps the version", v2, v3)


@tap.test
def test_dependency_violations(env):
    ea = a(env)
    check_eq(err_code(ea.delete_security_group, GroupId=S["default_a"]), "CannotDelete",
             "the default group")
    check_eq(err_code(ea.delete_security_group, GroupId=S["web"]), "DependencyViolation",
             "a group in use by an interface")
    check_eq(err_code(ea.delete_subnet, SubnetId=S["sub1"]), "DependencyViolation",
             "a subnet with interfaces")
    check_eq(err_code(ea.delete_vpc, VpcId=S["vpc_a"]), "DependencyViolation",
             "a vpc with subnets")
    check_eq(err_code(b(env).delete_vpc, VpcId=S["vpc_a"]), "InvalidVpcID.NotFound",
             "another tenant's vpc")
    ids = [i["InstanceId"] for i in instances_of(ea.describe_instances(
        Filters=[{"Name": "vpc-id", "Values": [S["vpc_a"]]}]))
        if i["State"]["Name"] != "terminated"]
    env.set_instance_state(ids, "terminated")
    # Still referred to by db's rule.
    check_eq(err_code(ea.delete_security_group, GroupId=S["web"]), "DependencyViolation",
             "a group another group's rule refers to")
    ea.delete_security_group(GroupId=S["db"])
    ea.delete_security_group(GroupId=S["web"])
    ea.delete_subnet(SubnetId=S["sub1"])
    ea.delete_subnet(SubnetId=S["sub28"])
    ea.delete_vpc(VpcId=S["vpc_a"])
    check_eq(ea.describe_vpcs()["Vpcs"], [], "deleted")
    check_eq(env.psql1(f"SELECT count(*) FROM security_groups WHERE vpc_id = '{S['vpc_a']}'"),
             "0", "the default group went with it")
    # The other tenant's same-CIDR VPC is untouched.
    check_eq(len(b(env).describe_vpcs()["Vpcs"]), 1, "b's vpc")


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


@tap.test
def test_awscli(env):
    import shutil

    if not shutil.which("aws", path="/usr/bin"):
        raise SkipTest("no /usr/bin/aws")
    c = env.tenant("net-cli")

    def ok(*args):
        rc, out, errt = aws(env, c, *args)
        if rc != 0:
            raise TestFailure(f"aws {' '.join(args)} failed: {errt[:2000]}")
        return json.loads(out) if out.strip() else {}

    vpc = ok("create-vpc", "--cidr-block", "172.16.0.0/16")["Vpc"]["VpcId"]
    sub = ok("create-subnet", "--vpc-id", vpc, "--cidr-block", "172.16.5.0/24")["Subnet"]
    check_eq(sub["AvailableIpAddressCount"], 251, "cli subnet")
    sg = ok("create-security-group", "--group-name", "cli", "--description", "from the cli",
            "--vpc-id", vpc)["GroupId"]
    ok("authorize-security-group-ingress", "--group-id", sg, "--protocol", "tcp", "--port", "22",
       "--cidr", "0.0.0.0/0")
    ok("authorize-security-group-ingress", "--group-id", sg, "--ip-permissions",
       f"IpProtocol=tcp,FromPort=443,ToPort=443,UserIdGroupPairs=[{{GroupId={sg}}}]")
    got = ok("describe-security-groups", "--group-ids", sg)["SecurityGroups"][0]
    check_eq(perms(got), {("tcp", 22, 22, "0.0.0.0/0"), ("tcp", 443, 443, sg)}, "cli rules")
    rc, _, errt = aws(env, c, "authorize-security-group-ingress", "--group-id", sg, "--protocol",
                      "tcp", "--port", "22", "--cidr", "0.0.0.0/0")
    check(rc != 0 and "InvalidPermission.Duplicate" in errt, "cli duplicate", errt)
    run = ok("run-instances", "--image-id", env.image(), "--count", "2", "--subnet-id",
             sub["SubnetId"], "--security-group-ids", sg)
    check_eq(sorted(i["PrivateIpAddress"] for i in run["Instances"]),
             ["172.16.5.4", "172.16.5.5"], "cli launch")
    vpcs = ok("describe-vpcs", "--filters", "Name=cidr,Values=172.16.0.0/16")["Vpcs"]
    check_eq([v["VpcId"] for v in vpcs], [vpc], "cli describe-vpcs")
    ok("revoke-security-group-ingress", "--group-id", sg, "--protocol", "tcp", "--port", "22",
       "--cidr", "0.0.0.0/0")
    rc, _, errt = aws(env, c, "delete-vpc", "--vpc-id", vpc)
    check(rc != 0 and "DependencyViolation" in errt, "cli delete-vpc", errt)


@tap.test
def test_rest(env):
    c = env.tenant("net-rest")
    r = env.rest(c, "POST", "/v1/vpcs", body={"cidr_block": "10.0.0.0/16",
                                               "tags": {"env": "rest"}})
    check_eq(r.status, 201, f"create vpc: {r}")
    vpc = r.json["id"]
    check_eq((r.json["cidr_block"], r.json["tags"]), ("10.0.0.0/16", {"env": "rest"}), "vpc")
    r = env.rest(c, "GET", "/v1/vpcs")
    check_eq([v["id"] for v in r.json["vpcs"]], [vpc], "list vpcs")
    r = env.rest(c, "POST", "/v1/subnets", body={"vpc_id": vpc, "cidr_block": "10.0.3.0/24",
                                                  "zone": "nubo-1a"})
    check_eq(r.status, 201, f"create subnet: {r}")
    sub = r.json["id"]
    check_eq((r.json["zone"], r.json["available_ips"]), ("nubo-1a", 251), "subnet")
    r = env.rest(c, "POST", "/v1/subnets", body={"vpc_id": vpc, "cidr_block": "10.0.3.0/25"})
    check_eq((r.status, r.error_code), (400, "InvalidSubnet.Conflict"), "rest overlap")
    r = env.rest(c, "POST", "/v1/security-groups",
                 body={"name": "app", "description": "app tier", "vpc_id": vpc})
    check_eq(r.status, 201, f"create group: {r}")
    sg = r.json["id"]
    rule = {"direction": "ingress", "protocol": "tcp", "from_port": 8000, "to_port": 8099,
            "cidr": "10.0.0.0/16"}
    r = env.rest(c, "POST", f"/v1/security-groups/{sg}/rules", body={"rules": [rule]})
    check_eq(r.status, 200, f"add rule: {r}")
    ingress = [x for x in r.json["rules"] if x["direction"] == "ingress"]
    check_eq([(x["protocol"], x["from_port"], x["to_port"], x["cidr"]) for x in ingress],
             [("tcp", 8000, 8099, "10.0.0.0/16")], "rules after add")
    r = env.rest(c, "POST", f"/v1/security-groups/{sg}/rules", body={"rules": [rule]})
    check_eq((r.status, r.error_code), (400, "InvalidPermission.Duplicate"), "rest duplicate")
    r = env.rest(c, "POST", "/v1/instances", body={"image_id": env.image(), "count": 2,
                                                   "subnet_id": sub,
                                                   "security_group_ids": [sg]})
    check_eq(r.status, 201, f"launch: {r}")
    ins = r.json["instances"]
    check_eq(sorted(i["private_ip"] for i in ins), ["10.0.3.4", "10.0.3.5"], "rest addresses")
    check_eq({(i["vpc_id"], i["subnet_id"], i["zone"]) for i in ins}, {(vpc, sub, "nubo-1a")},
             "rest network fields")
    check_eq([g["id"] for g in ins[0]["security_groups"]], [sg], "rest groups")
    check(ins[0]["mac_address"].startswith("02:"), "rest mac", ins[0])
    r = env.rest(c, "GET", f"/v1/instances/{ins[0]['id']}")
    check_eq(r.json.get("private_ip"), ins[0]["private_ip"], "get instance")
    r = env.rest(c, "DELETE", f"/v1/security-groups/{sg}")
    check_eq((r.status, r.error_code), (400, "DependencyViolation"), "rest group in use")
    r = env.rest(c, "DELETE", f"/v1/security-groups/{sg}/rules", body={"rules": [rule]})
    check_eq(r.status, 200, f"remove rule: {r}")
    check_eq([x for x in r.json["rules"] if x["direction"] == "ingress"], [], "rules after remove")
    r = env.rest(c, "GET", f"/v1/subnets/{sub}")
    check_eq(r.json["available_ips"], 249, "get subnet")
    r = env.rest(c, "GET", "/v1/security-groups", query={"vpc-id": vpc})
    check_eq(sorted(g["name"] for g in r.json["security_groups"]), ["app", "default"],
             "list groups")
    other = env.tenant("net-a")
    for path in (f"/v1/vpcs/{vpc}", f"/v1/subnets/{sub}", f"/v1/security-groups/{sg}"):
        r = env.rest(other, "GET", path)
        check(r.status >= 400 and (r.error_code or "").endswith("NotFound"),
              f"another tenant's {path}", r)
    for i in ins:
        env.rest(c, "DELETE", f"/v1/instances/{i['id']}")
    for path in (f"/v1/security-groups/{sg}", f"/v1/subnets/{sub}", f"/v1/vpcs/{vpc}"):
        r = env.rest(c, "DELETE", path)
        check_eq(r.status, 204, f"delete {path}: {r}")


if __name__ == "__main__":
    tap.main()
