"""End-to-end: the `nubo` commands of a VPC's routing (sdk/c/cli over libnubo) against a real
nubo-gateway: igw create, list, show, attach, detach and delete; route-table create, list, show,
delete, route add and delete, associate and disassociate; remote-access create, list, show and
delete, peer add (printing the wg-quick client configuration), list and delete; in tables and in
--output json, with their exit codes (0 ok, 1 API error, 2 usage, 3 not found).
Prints TAP. Run: /usr/bin/python3 tests/e2e/test_cli_remote_access.py"""

import sys

sys.dont_write_bytecode = True

import base64  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402

os.environ["NUBO_NETWORK_PUBLIC_POOL"] = "192.0.2.0/29"  # .1 the router: .2 to .6 handed out
os.environ.pop("NUBO_NETWORK_PUBLIC_GATEWAY", None)

import nubo_env  # noqa: E402
from nubo_env import TestFailure, check, check_eq  # noqa: E402
from test_cli import build_sdk  # noqa: E402
from test_cli_network import fields, nubo, tables  # noqa: E402

tap = nubo_env.Tap(__file__)
S = {}  # state shared by the tests, in order


def need(key):
    if key not in S:
        raise TestFailure(f"needs '{key}' from an earlier test, which failed")
    return S[key]


def wg_key():
    return base64.b64encode(os.urandom(32)).decode()


def parse_config(text):
    """A wg-quick configuration as {section: {key: value}}."""
    conf, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = conf.setdefault(line[1:-1], {})
        elif "=" in line and section is not None and not line.startswith("#"):
            k, v = line.split("=", 1)
            section[k.strip()] = v.strip()
    return conf


@tap.test(timeout=300)
def test_build_and_help(env):
    build_sdk()
    S["a"] = env.tenant("cli-rt-a")
    S["b"] = env.tenant("cli-rt-b")
    for group, verbs in (("igw", ("create", "list", "show", "attach", "detach", "delete")),
                         ("route-table", ("create", "list", "show", "delete", "associate",
                                          "disassociate")),
                         ("route-table route", ("add", "delete")),
                         ("remote-access", ("create", "list", "show", "delete")),
                         ("remote-access peer", ("add", "list", "delete"))):
        g = nubo(env, None, *group.split(), "--help")
        for verb in verbs:
            check(re.search(rf"^  {verb}\s", g.out, re.M), f"'{verb}' in nubo {group} --help", g)
            h = nubo(env, None, *group.split(), verb, "--help")
            check(h.out.startswith(f"usage: nubo {group} {verb}"), f"help of {group} {verb}", h)
    for group, sub in (("route-table", "route"), ("remote-access", "peer")):
        g = nubo(env, None, group, "--help")
        check(re.search(rf"^  {sub}\s", g.out, re.M), f"'{sub}' in nubo {group} --help", g)


@tap.test
def test_setup(env):
    ec2 = env.ec2(need("a"))
    S["vpc"] = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    S["sub"] = ec2.create_subnet(VpcId=S["vpc"], CidrBlock="10.40.1.0/24")["Subnet"]["SubnetId"]


@tap.test
def test_igw(env):
    a, b, vpc = need("a"), need("b"), need("vpc")
    doc = nubo(env, a, "igw", "create", "--tag", "role=edge", "-o", "json").json
    check(re.fullmatch(r"igw-[0-9a-f]{17}", doc["id"]), "internet gateway id", doc)
    check_eq((doc["vpc_id"], doc["tags"]), (None, {"role": "edge"}), "created")
    S["igw"] = igw = doc["id"]
    f = fields(nubo(env, a, "igw", "show", igw))
    check_eq((f["id"], f["vpc"], f["tags"]), (igw, "-", "role=edge"), "igw show (table)")
    nubo(env, a, "igw", "attach", igw, rc=2)  # --vpc is required
    nubo(env, a, "igw", "attach", rc=2)
    f = fields(nubo(env, a, "igw", "attach", igw, "--vpc", vpc))
    check_eq(f["vpc"], vpc, "attached")
    rows = nubo(env, a, "igw", "list").rows()
    check_eq([(x["id"], x["vpc"]) for x in rows], [(igw, vpc)], "igw list (table)")
    lst = nubo(env, a, "igw", "list", "--vpc", vpc, "-o", "json").json
    check_eq([x["id"] for x in lst], [igw], "igw list --vpc (json)")
    check_eq(nubo(env, a, "igw", "list", "--filter", "attachment.vpc-id=vpc-00000000000000000",
                  "-o", "json").json, [], "igw list --filter (none)")
    check_eq(nubo(env, b, "igw", "list", "-o", "json").json, [], "another tenant lists none")
    r = nubo(env, b, "igw", "show", igw, rc=3)
    check("InvalidInternetGatewayID.NotFound" in r.err, "another tenant's gateway", r)
    nubo(env, b, "igw", "delete", igw, rc=3)
    nubo(env, a, "igw", "show", "igw-00000000000000000", rc=3)
    r = nubo(env, a, "igw", "delete", igw, rc=1)
    check("DependencyViolation" in r.err, "delete while attached", r)
    # A second gateway, attached and detached, then deleted.
    g2 = nubo(env, a, "igw", "create", "-o", "json").json["id"]
    nubo(env, a, "igw", "attach", g2, "--vpc", vpc, rc=1)  # one per VPC
    r = nubo(env, a, "igw", "detach", g2, "--vpc", vpc, rc=1)
    check("Gateway.NotAttached" in r.err, "detach a gateway not attached", r)
    doc = nubo(env, a, "igw", "delete", g2, "-o", "json").json
    check_eq(doc, {"id": g2, "deleted": True}, "igw delete (json)")
    r = nubo(env, a, "igw", "delete", g2, rc=3)
    check("NotFound" in r.err, "deleted twice", r)


@tap.test
def test_route_table(env):
    a, b, vpc, sub, igw = need("a"), need("b"), need("vpc"), need("sub"), need("igw")
    nubo(env, a, "route-table", "create", rc=2)
    doc = nubo(env, a, "route-table", "create", "--vpc", vpc, "--tag", "tier=web",
               "-o", "json").json
    check(re.fullmatch(r"rtb-[0-9a-f]{17}", doc["id"]), "route table id", doc)
    check_eq((doc["vpc_id"], doc["main"], doc["tags"]), (vpc, False, {"tier": "web"}), "created")
    check_eq([(r["destination"], r["gateway_id"]) for r in doc["routes"]],
             [("10.40.0.0/16", "local")], "its local route")
    S["rtb"] = rtb = doc["id"]
    r = nubo(env, a, "route-table", "create", "--vpc", "vpc-00000000000000000", rc=3)
    check("InvalidVpcID.NotFound" in r.err, "an unknown VPC", r)
    rows = nubo(env, a, "route-table", "list", "--vpc", vpc).rows()
    check_eq(sorted((x["id"] == rtb, x["main"]) for x in rows),
             [(False, "yes"), (True, "no")], "route-table list --vpc: main and ours")
    check_eq(len(nubo(env, a, "route-table", "list", "-o", "json").json), 2, "list (json)")
    check_eq(nubo(env, b, "route-table", "list", "-o", "json").json, [],
             "another tenant lists none")
    nubo(env, a, "route-table", "route", "add", rtb, "--destination", "0.0.0.0/0", rc=2)
    nubo(env, a, "route-table", "route", "add", rtb, "--gateway", igw, rc=2)
    doc = nubo(env, a, "route-table", "route", "add", rtb, "--destination", "0.0.0.0/0",
               "--gateway", igw, "-o", "json").json
    check_eq(sorted((r["destination"], r["gateway_id"]) for r in doc["routes"]),
             [("0.0.0.0/0", igw), ("10.40.0.0/16", "local")], "route add")
    r = nubo(env, a, "route-table", "route", "add", rtb, "--destination", "0.0.0.0/0",
             "--gateway", igw, rc=1)
    check("RouteAlreadyExists" in r.err, "a route added twice", r)
    r = nubo(env, a, "route-table", "route", "add", rtb, "--destination", "10.99.0.0/16",
             "--gateway", "igw-00000000000000000", rc=3)
    check("InvalidGatewayID.NotFound" in r.err, "an unknown gateway", r)
    a_doc = nubo(env, a, "route-table", "associate", rtb, "--subnet", sub, "-o", "json").json
    check(a_doc["id"].startswith("rtbassoc-"), "association id", a_doc)
    check_eq((a_doc["route_table_id"], a_doc["subnet_id"]), (rtb, sub), "associated")
    nubo(env, a, "route-table", "associate", rtb, rc=2)
    # show: the fields, the routes, the associations.
    r = nubo(env, a, "route-table", "show", rtb)
    f = fields(r)
    check_eq((f["id"], f["vpc"], f["main"], f["tags"]), (rtb, vpc, "no", "tier=web"),
             "route-table show (fields)")
    t = tables(r)
    check_eq(sorted((x["destination"], x["gateway"]) for x in t[1]),
             [("0.0.0.0/0", igw), ("10.40.0.0/16", "local")], "show: its routes")
    check_eq([(x["association"], x["subnet"]) for x in t[2]], [(a_doc["id"], sub)],
             "show: its association")
    r = nubo(env, b, "route-table", "show", rtb, rc=3)
    check("InvalidRouteTableID.NotFound" in r.err, "another tenant's route table", r)
    nubo(env, a, "route-table", "show", "rtb-00000000000000000", rc=3)
    r = nubo(env, a, "route-table", "delete", rtb, rc=1)
    check("DependencyViolation" in r.err, "delete with a subnet", r)
    r = nubo(env, b, "route-table", "disassociate", a_doc["id"], rc=3)
    check("InvalidAssociationID.NotFound" in r.err, "another tenant's association", r)
    doc = nubo(env, a, "route-table", "disassociate", a_doc["id"], "-o", "json").json
    check_eq(doc, {"id": a_doc["id"], "deleted": True}, "disassociate (json)")
    nubo(env, a, "route-table", "disassociate", a_doc["id"], rc=3)
    doc = nubo(env, a, "route-table", "route", "delete", rtb, "--destination", "0.0.0.0/0",
               "-o", "json").json
    check_eq([r["destination"] for r in doc["routes"]], ["10.40.0.0/16"], "route delete")
    r = nubo(env, a, "route-table", "route", "delete", rtb, "--destination", "0.0.0.0/0", rc=3)
    check("InvalidRoute.NotFound" in r.err, "a route deleted twice", r)
    nubo(env, a, "route-table", "route", "delete", rtb, rc=2)
    r = nubo(env, a, "route-table", "delete", rtb)
    check_eq(r.out.strip(), f"deleted route table {rtb}", "route-table delete")
    nubo(env, a, "route-table", "delete", rtb, rc=3)
    main = nubo(env, a, "route-table", "list", "--vpc", vpc, "-o", "json").json
    check_eq([x["main"] for x in main], [True], "the main table remains")
    r = nubo(env, a, "route-table", "delete", main[0]["id"], rc=1)
    check("DependencyViolation" in r.err, "the main table is not deleted", r)
    nubo(env, a, "igw", "detach", igw, "--vpc", vpc)
    nubo(env, a, "igw", "delete", igw)
    nubo(env, a, "igw", "show", igw, rc=3)


@tap.test
def test_remote_access(env):
    a, b, vpc = need("a"), need("b"), need("vpc")
    nubo(env, a, "remote-access", "create", "--vpc", vpc, rc=2)
    r = nubo(env, a, "remote-access", "create", "--vpc", vpc, "--client-cidr", "10.40.8.0/22",
             rc=1)
    check("InvalidParameterValue" in r.err, "a client CIDR inside the VPC", r)
    r = nubo(env, a, "remote-access", "create", "--vpc", "vpc-00000000000000000",
             "--client-cidr", "100.64.0.0/22", rc=3)
    check("InvalidVpcID.NotFound" in r.err, "an unknown VPC", r)
    doc = nubo(env, a, "remote-access", "create", "--vpc", vpc, "--client-cidr", "100.64.0.0/22",
               "--description", "laptops", "-o", "json").json
    check(re.fullmatch(r"rae-[0-9a-f]{17}", doc["id"]), "endpoint id", doc)
    check_eq((doc["vpc_id"], doc["vpc_cidr"], doc["client_cidr"], doc["description"],
              doc["peers"]), (vpc, "10.40.0.0/16", "100.64.0.0/22", "laptops", 0), "created")
    S["ra"] = ra = doc["id"]
    f = fields(nubo(env, a, "remote-access", "show", ra))
    check_eq((f["id"], f["vpc"], f["client_cidr"], f["outside_ip"], f["listen_port"],
              f["public_key"], f["description"], f["peers"]),
             (ra, vpc, "100.64.0.0/22", doc["outside_ip"], str(doc["listen_port"]),
              doc["public_key"], "laptops", "0"), "remote-access show (table)")
    rows = nubo(env, a, "remote-access", "list").rows()
    check_eq([(x["id"], x["vpc"], x["client_cidr"], x["endpoint"], x["peers"]) for x in rows],
             [(ra, vpc, "100.64.0.0/22", f"{doc['outside_ip']}:{doc['listen_port']}", "0")],
             "remote-access list (table)")
    check_eq([x["id"] for x in nubo(env, a, "remote-access", "list", "-o", "json").json], [ra],
             "remote-access list (json)")
    check_eq(nubo(env, b, "remote-access", "list", "-o", "json").json, [],
             "another tenant lists none")
    nubo(env, a, "remote-access", "list", "extra", rc=2)
    r = nubo(env, b, "remote-access", "show", ra, rc=3)
    check("InvalidRemoteAccessEndpointID.NotFound" in r.err, "another tenant's endpoint", r)
    nubo(env, b, "remote-access", "delete", ra, rc=3)
    nubo(env, b, "remote-access", "peer", "list", ra, rc=3)
    nubo(env, b, "remote-access", "peer", "add", ra, "--public-key", wg_key(), rc=3)
    nubo(env, a, "remote-access", "show", "rae-00000000000000000", rc=3)
    # peer add: the client configuration as text, or the peer as JSON.
    nubo(env, a, "remote-access", "peer", "add", ra, rc=2)
    key = wg_key()
    r = nubo(env, a, "remote-access", "peer", "add", ra, "--public-key", key, "--name", "alice")
    conf = parse_config(r.out)
    check_eq(conf["Interface"]["Address"].split("/")[0], "100.64.0.2", "the client's address")
    check_eq((conf["Peer"]["PublicKey"], conf["Peer"]["Endpoint"]),
             (doc["public_key"], f"{doc['outside_ip']}:{doc['listen_port']}"),
             "the configuration's peer is the endpoint")
    check("10.40.0.0/16" in conf["Peer"]["AllowedIPs"], "it routes the VPC", conf)
    r = nubo(env, a, "remote-access", "peer", "add", ra, "--public-key", key, rc=1)
    check("InvalidParameterValue" in r.err or "Duplicate" in r.err, "the same key twice", r)
    r = nubo(env, a, "remote-access", "peer", "add", ra, "--public-key", "bm90IGEga2V5", rc=1)
    check("InvalidParameterValue" in r.err, "a bad key", r)
    p2 = nubo(env, a, "remote-access", "peer", "add", ra, "--public-key", wg_key(),
              "-o", "json").json
    check_eq((p2["endpoint_id"], p2["address"]), (ra, "100.64.0.3"), "peer add (json)")
    check("[Interface]" in p2["client_config"], "its client_config", p2)
    rows = nubo(env, a, "remote-access", "peer", "list", ra).rows()
    check_eq(sorted((x["address"], x["name"], x["public_key"]) for x in rows)[0],
             ("100.64.0.2", "alice", key), "peer list (table)")
    lst = nubo(env, a, "remote-access", "peer", "list", ra, "-o", "json").json
    check_eq(sorted(x["address"] for x in lst), ["100.64.0.2", "100.64.0.3"], "peer list (json)")
    check_eq(fields(nubo(env, a, "remote-access", "show", ra))["peers"], "2", "two peers")
    nubo(env, a, "remote-access", "peer", "delete", ra, rc=2)
    r = nubo(env, a, "remote-access", "peer", "delete", ra, p2["id"])
    check_eq(r.out.strip(), f"deleted peer {p2['id']}", "peer delete")
    nubo(env, a, "remote-access", "peer", "delete", ra, p2["id"], rc=3)
    nubo(env, b, "remote-access", "peer", "delete", ra, lst[0]["id"], rc=3)
    check_eq(len(nubo(env, a, "remote-access", "peer", "list", ra, "-o", "json").json), 1,
             "one peer left")
    doc = nubo(env, a, "remote-access", "delete", ra, "-o", "json").json
    check_eq(doc, {"id": ra, "deleted": True}, "remote-access delete (json)")
    nubo(env, a, "remote-access", "show", ra, rc=3)
    nubo(env, a, "remote-access", "delete", ra, rc=3)
    nubo(env, a, "remote-access", "peer", "list", ra, rc=3)


if __name__ == "__main__":
    tap.main()
