"""End-to-end: the `nubo` commands of a VPC's edge (sdk/c/cli over libnubo) against a real
nubo-gateway: address allocate, list, show, associate, disassociate and release; vpn gateway,
vpn customer-gateway and vpn connection create, list, show (with the customer gateway
configuration) and delete, attach and detach, route-add and route-remove; in tables and in
--output json, with their exit codes (0 ok, 1 API error, 2 usage, 3 not found).
Prints TAP. Run: /usr/bin/python3 tests/e2e/test_cli_network_edge.py"""

import sys

sys.dont_write_bytecode = True

import os  # noqa: E402
import re  # noqa: E402
import xml.etree.ElementTree as ET  # noqa: E402

os.environ["NUBO_NETWORK_PUBLIC_POOL"] = "192.0.2.0/29"  # .1 the router: .2 to .6 handed out
os.environ.pop("NUBO_NETWORK_PUBLIC_GATEWAY", None)

import nubo_env  # noqa: E402
from nubo_env import TestFailure, check, check_eq  # noqa: E402
from test_cli import build_sdk  # noqa: E402
from test_cli_network import fields, nubo  # noqa: E402

tap = nubo_env.Tap(__file__)
S = {}  # state shared by the tests, in order


def need(key):
    if key not in S:
        raise TestFailure(f"needs '{key}' from an earlier test, which failed")
    return S[key]


@tap.test(timeout=300)
def test_build_and_help(env):
    build_sdk()
    S["a"] = env.tenant("cli-edge-a")
    S["b"] = env.tenant("cli-edge-b")
    for group, verbs in (("address", ("allocate", "list", "show", "associate", "disassociate",
                                      "release")),
                         ("vpn gateway", ("create", "list", "show", "attach", "detach",
                                          "delete")),
                         ("vpn customer-gateway", ("create", "list", "show", "delete")),
                         ("vpn connection", ("create", "list", "show", "route-add",
                                             "route-remove", "delete"))):
        g = nubo(env, None, *group.split(), "--help")
        for verb in verbs:
            check(re.search(rf"^  {verb}\s", g.out, re.M), f"'{verb}' in nubo {group} --help", g)
            h = nubo(env, None, *group.split(), verb, "--help")
            check(h.out.startswith(f"usage: nubo {group} {verb}"), f"help of {group} {verb}", h)
    g = nubo(env, None, "vpn", "--help")
    for sub in ("gateway", "customer-gateway", "connection"):
        check(re.search(rf"^  {sub}\s", g.out, re.M), f"'{sub}' in nubo vpn --help", g)


@tap.test
def test_setup(env):
    a = need("a")
    ec2 = env.ec2(a)
    S["vpc"] = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    sub = ec2.create_subnet(VpcId=S["vpc"], CidrBlock="10.30.1.0/24")["Subnet"]["SubnetId"]
    S["inst"] = ec2.run_instances(ImageId=env.image(), MinCount=1, MaxCount=1,
                                  SubnetId=sub)["Instances"][0]["InstanceId"]
    S["igw"] = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    env.psql("INSERT INTO hosts (id, name, zone, simulated) VALUES "
             "('h-00000000000000011', 'cli-vpn-host', 'nubo-1a', true) ON CONFLICT DO NOTHING")


@tap.test
def test_address(env):
    a, b = need("a"), need("b")
    doc = nubo(env, a, "address", "allocate", "--tag", "role=web", "-o", "json").json
    check(re.fullmatch(r"eipalloc-[0-9a-f]{17}", doc["id"]), "allocation id", doc)
    check_eq((doc["public_ip"], doc["tags"], doc["association_id"]),
             ("192.0.2.2", {"role": "web"}, None), "allocated")
    S["eip"] = eip = doc["id"]
    f = fields(nubo(env, a, "address", "show", eip))
    check_eq((f["id"], f["public_ip"], f["instance"]), (eip, "192.0.2.2", "-"), "address show")
    r = nubo(env, a, "address", "associate", eip, "--instance", need("inst"), rc=1)
    check("Gateway.NotAttached" in r.err, "no internet gateway yet", r)
    env.ec2(a).attach_internet_gateway(InternetGatewayId=need("igw"), VpcId=need("vpc"))
    doc = nubo(env, a, "address", "associate", eip, "--instance", need("inst"), "-o", "json").json
    check_eq(doc["instance_id"], need("inst"), "associated")
    check(doc["association_id"].startswith("eipassoc-"), "association id", doc)
    rows = nubo(env, a, "address", "list").rows()
    check_eq([(x["id"], x["public_ip"], x["instance"]) for x in rows],
             [(eip, "192.0.2.2", need("inst"))], "address list (table)")
    lst = nubo(env, a, "address", "list", "--filter", f"instance-id={need('inst')}",
               "-o", "json").json
    check_eq([x["id"] for x in lst], [eip], "address list --filter (json)")
    r = nubo(env, a, "address", "release", eip, rc=1)
    check("InvalidIPAddress.InUse" in r.err, "release while associated", r)
    nubo(env, a, "address", "associate", eip, rc=2)
    nubo(env, a, "address", "associate", eip, "--instance", "i-1", "--interface", "eni-1", rc=2)
    r = nubo(env, b, "address", "show", eip, rc=3)
    check("InvalidAllocationID.NotFound" in r.err, "another tenant's address", r)
    nubo(env, b, "address", "release", eip, rc=3)
    doc = nubo(env, a, "address", "disassociate", eip, "-o", "json").json
    check_eq(doc["association_id"], None, "disassociated")
    nubo(env, a, "address", "release", eip)
    nubo(env, a, "address", "show", eip, rc=3)


@tap.test
def test_vpn(env):
    a, b = need("a"), need("b")
    vgw = nubo(env, a, "vpn", "gateway", "create", "--asn", "64999", "-o", "json").json
    check_eq((vgw["amazon_side_asn"], vgw["vpc_id"]), (64999, None), "vpn gateway")
    S["vgw"] = vgw["id"]
    f = fields(nubo(env, a, "vpn", "gateway", "attach", vgw["id"], "--vpc", need("vpc")))
    check_eq(f["vpc"], need("vpc"), "attached")
    nubo(env, a, "vpn", "gateway", "attach", vgw["id"], rc=2)
    cgw = nubo(env, a, "vpn", "customer-gateway", "create", "--ip", "198.51.100.20", "--asn",
               "65020", "-o", "json").json
    check_eq((cgw["ip_address"], cgw["bgp_asn"]), ("198.51.100.20", 65020), "customer gateway")
    S["cgw"] = cgw["id"]
    rows = nubo(env, a, "vpn", "customer-gateway", "list").rows()
    check_eq([(x["id"], x["ip_address"], x["asn"]) for x in rows],
             [(cgw["id"], "198.51.100.20", "65020")], "customer-gateway list")
    nubo(env, a, "vpn", "customer-gateway", "create", rc=2)
    vpn = nubo(env, a, "vpn", "connection", "create", "--customer-gateway", cgw["id"],
               "--vpn-gateway", vgw["id"], "-o", "json").json
    check_eq((vpn["state"], vpn["customer_ip"], vpn["vpc_cidr"]),
             ("pending", "198.51.100.20", "10.30.0.0/16"), "vpn connection")
    S["vpn"] = vpn["id"]
    doc = nubo(env, a, "vpn", "connection", "route-add", vpn["id"], "--cidr", "172.31.0.0/16",
               "-o", "json").json
    check_eq(doc["routes"], ["172.31.0.0/16"], "route-add")
    r = nubo(env, a, "vpn", "connection", "route-add", vpn["id"], "--cidr", "172.31.0.0/16", rc=1)
    check("RouteAlreadyExists" in r.err, "route added twice", r)
    # show: the fields, then the customer gateway configuration.
    r = nubo(env, a, "vpn", "connection", "show", vpn["id"])
    f = fields(r)
    check_eq((f["id"], f["outside_ip"], f["routes"], f["pre_shared_key"]),
             (vpn["id"], vpn["outside_ip"], "172.31.0.0/16", vpn["pre_shared_key"]),
             "connection show (table)")
    start = r.out.find("<?xml")
    check(start > 0, "show prints the configuration", r)
    doc = ET.fromstring(r.out[start:])
    t = doc.find("ipsec_tunnel")
    check_eq((doc.get("id"), t.findtext("ike/pre_shared_key"),
              t.findtext("vpn_gateway/tunnel_outside_address/ip_address"),
              t.findtext("customer_gateway/tunnel_outside_address/ip_address"),
              t.findtext("ike/proposal")),
             (vpn["id"], vpn["pre_shared_key"], vpn["outside_ip"], "198.51.100.20",
              "aes256-sha256-modp2048"), "the configuration")
    check_eq([x.text for x in doc.findall("static_routes/route/destination_cidr_block")],
             ["172.31.0.0/16"], "its routes")
    rows = nubo(env, a, "vpn", "connection", "list").rows()
    check_eq([(x["id"], x["state"], x["routes"]) for x in rows],
             [(vpn["id"], "pending", "172.31.0.0/16")], "connection list")
    r = nubo(env, b, "vpn", "connection", "show", vpn["id"], rc=3)
    check("InvalidVpnConnectionID.NotFound" in r.err, "another tenant's connection", r)
    r = nubo(env, a, "vpn", "customer-gateway", "delete", cgw["id"], rc=1)
    check("IncorrectState" in r.err, "a customer gateway in use", r)
    doc = nubo(env, a, "vpn", "connection", "route-remove", vpn["id"], "--cidr",
               "172.31.0.0/16", "-o", "json").json
    check_eq(doc["routes"], [], "route-remove")
    nubo(env, a, "vpn", "connection", "delete", vpn["id"])
    doc = nubo(env, a, "vpn", "connection", "show", vpn["id"], "-o", "json").json
    check_eq(doc["state"], "deleted", "deleted connection")
    nubo(env, a, "vpn", "connection", "delete", vpn["id"], rc=3)
    r = nubo(env, a, "vpn", "gateway", "delete", vgw["id"], rc=1)
    check("IncorrectState" in r.err, "an attached gateway", r)
    nubo(env, a, "vpn", "gateway", "detach", vgw["id"], "--vpc", need("vpc"))
    nubo(env, a, "vpn", "gateway", "delete", vgw["id"])
    nubo(env, a, "vpn", "customer-gateway", "delete", cgw["id"])
    nubo(env, a, "vpn", "gateway", "show", vgw["id"], rc=3)
    ev = env.psql(f"SELECT meter, active FROM meter_events WHERE resource_id = '{vpn['id']}' "
                  "ORDER BY id")
    check_eq(ev, [["vpn-connection", "t"], ["vpn-connection", "f"]], "its usage events")


if __name__ == "__main__":
    tap.main()
