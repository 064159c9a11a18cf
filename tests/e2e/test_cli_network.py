"""End-to-end: the `nubo` network and billing commands (sdk/c/cli over libnubo) against a real
nubo-gateway (nubo_env.NuboEnv): vpc, subnet and sg create, list, show and delete, sg allow and
revoke (CIDR and group-reference rules, ingress and egress), `instance run --subnet
--private-ip --sg` seen in `instance show`, the error cases with their exit codes (0 ok, 1 API
error, 2 usage, 3 not found, 4 authentication or permission), deletion in dependency order;
then `nubo usage`, `nubo invoice list|show` and `nubo budget show|set` for a tenant, which may
not name another tenant (the admin may).
Prints TAP. Run: /usr/bin/python3 tests/e2e/test_cli_network.py"""

import sys

sys.dont_write_bytecode = True

import re  # noqa: E402

import nubo_env  # noqa: E402
from nubo_env import TestFailure, check, check_eq  # noqa: E402
from test_cli import Result, build_sdk, creds_env, NUBO  # noqa: E402, F401

import subprocess  # noqa: E402

tap = nubo_env.Tap(__file__)
S = {}  # state shared by the tests, in order


def need(key):
    if key not in S:
        raise TestFailure(f"needs '{key}' from an earlier test, which failed")
    return S[key]


def nubo(env, creds, *args, rc=0, timeout=60):
    """Runs the CLI as 'creds' (None: without credentials) and checks its exit status is 'rc'
    (None: any)."""
    e = creds_env(env, creds) if creds else {"PATH": "/usr/bin", "LC_ALL": "C"}
    p = subprocess.run([str(NUBO)] + [str(a) for a in args], capture_output=True, text=True,
                       env=e, timeout=timeout)
    r = Result([str(a) for a in args], p)
    if rc is not None:
        check_eq(r.rc, rc, f"exit status of nubo {' '.join(r.args)}; output\n{r}")
    return r


def fields(r):
    """The field/value table that opens a show's output, as a dict."""
    out = {}
    for line in r.out.split("\n\n")[0].splitlines()[1:]:
        k, _, v = line.partition(" ")
        out[k] = v.strip()
    return out


def tables(r):
    """The tables of an output whose tables are separated by blank lines, each a list of dicts."""
    got = []
    for block in r.out.strip().split("\n\n"):
        lines = [x for x in block.splitlines() if x.strip()]
        head = lines[0].split()
        got.append([dict(zip([h.lower() for h in head], x.split(None, len(head) - 1)))
                    for x in lines[1:]])
    return got


def ingress(group):
    return sorted((x["protocol"], x["from_port"], x["to_port"], x["cidr"], x["group_id"])
                  for x in group["rules"] if x["direction"] == "ingress")


# --- set-up ----------------------------------------------------------------------------------


@tap.test(timeout=300)
def test_build_and_help(env):
    build_sdk()
    S["a"] = env.tenant("cli-net-a")
    S["b"] = env.tenant("cli-net-b")
    for group, verbs in (("vpc", ("create", "list", "show", "delete")),
                         ("subnet", ("create", "list", "show", "delete")),
                         ("sg", ("create", "list", "show", "delete", "allow", "revoke")),
                         ("invoice", ("list", "show")), ("budget", ("show", "set")),
                         ("usage", ("show",))):
        g = nubo(env, None, group, "--help")
        for verb in verbs:
            check(re.search(rf"^  {verb}\s", g.out, re.M), f"'{verb}' in nubo {group} --help", g)
            h = nubo(env, None, group, verb, "--help")
            check(h.out.startswith(f"usage: nubo {group} {verb}"), f"help of {group} {verb}", h)
    h = nubo(env, None, "instance", "run", "--help").out
    for opt in ("--subnet SUBNET_ID", "--private-ip ADDRESS", "--sg SG_ID"):
        check(opt in h, f"instance run --help names {opt}", h)
    h = nubo(env, None, "sg", "allow", "--help").out
    for opt in ("--proto", "--port", "--cidr", "--from-group", "--egress"):
        check(opt in h, f"sg allow --help names {opt}", h)


# --- vpc, subnet --------------------------------------------------------------------------------


@tap.test
def test_vpc(env):
    a = need("a")
    doc = nubo(env, a, "vpc", "create", "--cidr", "10.20.0.0/16", "--tag", "Name=cli",
               "-o", "json").json
    check(re.fullmatch(r"vpc-[0-9a-f]{17}", doc["id"]), "vpc id", doc)
    check_eq((doc["cidr_block"], doc["state"], doc["owner_id"], doc["tags"]),
             ("10.20.0.0/16", "available", a.tenant_id, {"Name": "cli"}), "created vpc")
    S["vpc"] = vpc = doc["id"]
    rows = nubo(env, a, "vpc", "list").rows()
    check_eq([(x["id"], x["cidr"], x["state"], x["tags"]) for x in rows],
             [(vpc, "10.20.0.0/16", "available", "Name=cli")], "vpc list (table)")
    lst = nubo(env, a, "vpc", "list", "--filter", "cidr=10.20.0.0/16", "-o", "json").json
    check_eq([v["id"] for v in lst], [vpc], "vpc list --filter (json)")
    check_eq(nubo(env, a, "vpc", "list", "--filter", "state=pending", "-o", "json").json, [],
             "vpc list, no match")
    f = fields(nubo(env, a, "vpc", "show", vpc))
    check_eq((f["id"], f["cidr"], f["state"], f["segment"]),
             (vpc, "10.20.0.0/16", "available", str(doc["segment"])), "vpc show (table)")
    check_eq(nubo(env, a, "vpc", "show", vpc, "-o", "json").json["id"], vpc, "vpc show (json)")
    # Errors: a bad range is the API's (1), a missing --cidr is usage (2), others' are not found.
    r = nubo(env, a, "vpc", "create", "--cidr", "10.0.0.0/8", rc=1)
    check("InvalidVpc.Range" in r.err, "vpc range error", r)
    nubo(env, a, "vpc", "create", rc=2)
    nubo(env, a, "vpc", "create", "--cidr", "10.0.0.0/16", "extra", rc=2)
    nubo(env, a, "vpc", "show", rc=2)
    r = nubo(env, need("b"), "vpc", "show", vpc, rc=3)
    check("InvalidVpcID.NotFound" in r.err, "another tenant's vpc", r)
    nubo(env, a, "vpc", "show", "vpc-00000000000000000", rc=3)


@tap.test
def test_subnet(env):
    a, vpc = need("a"), need("vpc")
    doc = nubo(env, a, "subnet", "create", "--vpc", vpc, "--cidr", "10.20.1.0/24", "--zone",
               "nubo-1a", "-o", "json").json
    check(re.fullmatch(r"subnet-[0-9a-f]{17}", doc["id"]), "subnet id", doc)
    check_eq((doc["vpc_id"], doc["cidr_block"], doc["zone"], doc["available_ips"]),
             (vpc, "10.20.1.0/24", "nubo-1a", 251), "created subnet")
    S["subnet"] = sub = doc["id"]
    rows = nubo(env, a, "subnet", "list", "--filter", f"vpc-id={vpc}").rows()
    check_eq([(x["id"], x["vpc"], x["zone"], x["cidr"], x["available"]) for x in rows],
             [(sub, vpc, "nubo-1a", "10.20.1.0/24", "251")], "subnet list (table)")
    lst = nubo(env, a, "subnet", "list", "-o", "json").json
    check_eq([s["id"] for s in lst], [sub], "subnet list (json)")
    f = fields(nubo(env, a, "subnet", "show", sub))
    check_eq((f["id"], f["vpc"], f["cidr"], f["available_ips"]),
             (sub, vpc, "10.20.1.0/24", "251"), "subnet show (table)")
    # Overlap, outside the VPC, an unknown VPC, a missing option.
    r = nubo(env, a, "subnet", "create", "--vpc", vpc, "--cidr", "10.20.1.128/25", rc=1)
    check("InvalidSubnet.Conflict" in r.err, "overlapping subnet", r)
    r = nubo(env, a, "subnet", "create", "--vpc", vpc, "--cidr", "10.99.0.0/24", rc=1)
    check("InvalidSubnet.Range" in r.err, "subnet outside the vpc", r)
    r = nubo(env, a, "subnet", "create", "--vpc", "vpc-00000000000000000", "--cidr",
             "10.20.2.0/24", rc=3)
    check("InvalidVpcID.NotFound" in r.err, "subnet of an unknown vpc", r)
    nubo(env, a, "subnet", "create", "--vpc", vpc, rc=2)
    nubo(env, need("b"), "subnet", "show", sub, rc=3)
    nubo(env, a, "subnet", "delete", "subnet-00000000000000000", rc=3)


# --- security groups ------------------------------------------------------------------------------


@tap.test
def test_sg(env):
    a, vpc = need("a"), need("vpc")
    web = nubo(env, a, "sg", "create", "--vpc", vpc, "--name", "web", "--description",
               "web tier", "-o", "json").json
    check(re.fullmatch(r"sg-[0-9a-f]{17}", web["id"]), "group id", web)
    check_eq((web["name"], web["description"], web["vpc_id"]), ("web", "web tier", vpc),
             "created group")
    check_eq([(x["direction"], x["protocol"], x["cidr"]) for x in web["rules"]],
             [("egress", "-1", "0.0.0.0/0")], "EC2's initial rule")
    db = nubo(env, a, "sg", "create", "--vpc", vpc, "--name", "db", "-o", "json").json
    check_eq(db["description"], "db", "the description defaults to the name")
    S["web"], S["db"] = web["id"], db["id"]
    # A CIDR rule, a port range and a group reference.
    g = nubo(env, a, "sg", "allow", web["id"], "--proto", "tcp", "--port", "22", "--cidr",
             "0.0.0.0/0", "-o", "json").json
    check_eq(ingress(g), [("tcp", 22, 22, "0.0.0.0/0", None)], "after allow tcp 22")
    nubo(env, a, "sg", "allow", web["id"], "--proto", "tcp", "--port", "8000-8099", "--cidr",
         "10.20.0.0/16", "--description", "app")
    g = nubo(env, a, "sg", "allow", db["id"], "--proto", "tcp", "--port", "5432",
             "--from-group", web["id"], "-o", "json").json
    check_eq(ingress(g), [("tcp", 5432, 5432, None, web["id"])], "group reference rule")
    g = nubo(env, a, "sg", "allow", db["id"], "--proto", "all", "--cidr", "10.9.0.0/16",
             "--egress", "-o", "json").json
    egress = sorted((x["protocol"], x["cidr"]) for x in g["rules"] if x["direction"] == "egress")
    check_eq(egress, [("-1", "0.0.0.0/0"), ("-1", "10.9.0.0/16")], "egress rule added")
    # show: the fields, then the rules.
    r = nubo(env, a, "sg", "show", web["id"])
    f, rules = fields(r), tables(r)[1]
    check_eq((f["id"], f["name"], f["vpc"]), (web["id"], "web", vpc), "sg show fields")
    got = sorted((x["direction"], x["protocol"], x["ports"], x["peer"]) for x in rules)
    check_eq(got, [("egress", "all", "all", "0.0.0.0/0"),
                   ("ingress", "tcp", "22", "0.0.0.0/0"),
                   ("ingress", "tcp", "8000-8099", "10.20.0.0/16")], "sg show rules table")
    j = nubo(env, a, "sg", "show", db["id"], "-o", "json").json
    check_eq(ingress(j), [("tcp", 5432, 5432, None, web["id"])], "sg show (json)")
    # list: the VPC's default group and ours.
    rows = nubo(env, a, "sg", "list", "--filter", f"vpc-id={vpc}").rows()
    check_eq(sorted((x["name"], x["vpc"]) for x in rows),
             [("db", vpc), ("default", vpc), ("web", vpc)], "sg list (table)")
    lst = nubo(env, a, "sg", "list", "--filter", "group-name=web", "-o", "json").json
    check_eq([x["id"] for x in lst], [web["id"]], "sg list --filter (json)")
    S["default_sg"] = [x["id"] for x in nubo(env, a, "sg", "list", "--filter",
                                             "group-name=default", "-o", "json").json]
    # Errors.
    r = nubo(env, a, "sg", "allow", web["id"], "--proto", "tcp", "--port", "22", "--cidr",
             "0.0.0.0/0", rc=1)
    check("InvalidPermission.Duplicate" in r.err, "duplicate rule", r)
    r = nubo(env, a, "sg", "revoke", web["id"], "--proto", "udp", "--port", "53", "--cidr",
             "0.0.0.0/0", rc=3)  # a code ending in NotFound
    check("InvalidPermission.NotFound" in r.err, "revoking a missing rule", r)
    r = nubo(env, a, "sg", "create", "--vpc", vpc, "--name", "web", rc=1)
    check("InvalidGroup.Duplicate" in r.err, "duplicate group name", r)
    r = nubo(env, a, "sg", "create", "--vpc", vpc, "--name", "default", rc=1)
    check("InvalidGroup.Reserved" in r.err, "reserved group name", r)
    nubo(env, a, "sg", "allow", "sg-00000000000000000", "--proto", "tcp", "--port", "22",
         "--cidr", "0.0.0.0/0", rc=3)
    nubo(env, a, "sg", "show", "sg-00000000000000000", rc=3)
    nubo(env, need("b"), "sg", "show", web["id"], rc=3)
    for bad in (["--proto", "tcp", "--port", "22"],  # no peer
                ["--proto", "tcp", "--cidr", "0.0.0.0/0", "--from-group", db["id"]],  # both
                ["--proto", "gre", "--cidr", "0.0.0.0/0"],
                ["--proto", "tcp", "--port", "70000", "--cidr", "0.0.0.0/0"],
                ["--proto", "all", "--port", "22", "--cidr", "0.0.0.0/0"],
                ["--port", "22", "--cidr", "0.0.0.0/0"]):  # no protocol
        nubo(env, a, "sg", "allow", web["id"], *bad, rc=2)
    nubo(env, a, "sg", "allow", "--proto", "tcp", "--cidr", "0.0.0.0/0", rc=2)  # no group


@tap.test
def test_revoke(env):
    a, web = need("a"), need("web")
    g = nubo(env, a, "sg", "revoke", web, "--proto", "tcp", "--port", "8000-8099", "--cidr",
             "10.20.0.0/16", "-o", "json").json
    check_eq(ingress(g), [("tcp", 22, 22, "0.0.0.0/0", None)], "after revoke")


# --- instances in the subnet ----------------------------------------------------------------------


@tap.test
def test_instance_in_subnet(env):
    a, sub, vpc, web = need("a"), need("subnet"), need("vpc"), need("web")
    doc = nubo(env, a, "instance", "run", "--image", env.image(), "--subnet", sub,
               "--private-ip", "10.20.1.10", "--sg", web, "-o", "json").json
    check_eq(len(doc), 1, f"one instance: {doc}")
    i = doc[0]
    check_eq((i["subnet_id"], i["vpc_id"], i["private_ip"], i["zone"]),
             (sub, vpc, "10.20.1.10", "nubo-1a"), "launched into the subnet")
    check_eq([g["id"] for g in i["security_groups"]], [web], "its groups")
    S["instance"] = i["id"]
    f = fields(nubo(env, a, "instance", "show", i["id"]))
    check_eq((f["subnet"], f["vpc"], f["private_ip"], f["security_groups"]),
             (sub, vpc, "10.20.1.10", f"{web} (web)"), "instance show (table)")
    check(re.fullmatch(r"02(:[0-9a-f]{2}){5}", f["mac_address"]), "mac address", f)
    j = nubo(env, a, "instance", "show", i["id"], "-o", "json").json
    check_eq((j["private_ip"], j["subnet_id"]), ("10.20.1.10", sub), "instance show (json)")
    # Without --sg: the VPC's default group, the lowest free address.
    d = nubo(env, a, "instance", "run", "--image", env.image(), "--subnet", sub,
             "-o", "json").json[0]
    check_eq((d["private_ip"], [g["name"] for g in d["security_groups"]]),
             ("10.20.1.4", ["default"]), "default group and address")
    S["instance2"] = d["id"]
    check_eq(nubo(env, a, "subnet", "show", sub, "-o", "json").json["available_ips"], 249,
             "addresses in use")
    # Errors: the address is taken, an unknown subnet, --sg without --subnet.
    r = nubo(env, a, "instance", "run", "--image", env.image(), "--subnet", sub,
             "--private-ip", "10.20.1.10", rc=1)
    check("InvalidIPAddress.InUse" in r.err, "address in use", r)
    r = nubo(env, a, "instance", "run", "--image", env.image(), "--subnet",
             "subnet-00000000000000000", rc=3)
    check("InvalidSubnetID.NotFound" in r.err, "unknown subnet", r)
    nubo(env, a, "instance", "run", "--image", env.image(), "--sg", web, rc=2)
    nubo(env, a, "instance", "run", "--image", env.image(), "--private-ip", "10.20.1.11", rc=2)
    # Things in use cannot go.
    r = nubo(env, a, "sg", "delete", web, rc=1)
    check("DependencyViolation" in r.err, "group in use", r)
    r = nubo(env, a, "subnet", "delete", sub, rc=1)
    check("DependencyViolation" in r.err, "subnet in use", r)
    r = nubo(env, a, "vpc", "delete", vpc, rc=1)
    check("DependencyViolation" in r.err, "vpc with subnets", r)


@tap.test
def test_delete_in_order(env):
    a, vpc, sub, web, db = need("a"), need("vpc"), need("subnet"), need("web"), need("db")
    nubo(env, a, "instance", "terminate", need("instance"), need("instance2"))
    r = nubo(env, a, "sg", "delete", need("default_sg")[0], rc=1)
    check("CannotDelete" in r.err, "the default group stays", r)
    # web is referred to by a rule of db: db goes first.
    r = nubo(env, a, "sg", "delete", web, rc=1)
    check("DependencyViolation" in r.err, "a referenced group", r)
    check_eq(nubo(env, a, "sg", "delete", db, "-o", "json").json,
             {"group_id": db, "deleted": True}, "sg delete (json)")
    check_eq(nubo(env, a, "sg", "delete", web).out.strip(), f"deleted security group {web}",
             "sg delete (table)")
    nubo(env, a, "subnet", "delete", sub)
    check_eq(nubo(env, a, "vpc", "delete", vpc, "-o", "json").json,
             {"vpc_id": vpc, "deleted": True}, "vpc delete")
    nubo(env, a, "vpc", "show", vpc, rc=3)
    nubo(env, a, "subnet", "show", sub, rc=3)
    check_eq(nubo(env, a, "vpc", "list", "-o", "json").json, [], "no vpcs left")


# --- billing ------------------------------------------------------------------------------------


@tap.test
def test_usage(env):
    a, b = need("a"), need("b")
    doc = nubo(env, a, "usage", "-o", "json").json
    check(set(doc) >= {"tenant_id", "period", "aggregated_until", "meters", "total_micros"},
          "usage fields", doc)
    check_eq(doc["tenant_id"], a.tenant_id, "usage is the caller's")
    check(re.fullmatch(r"\d{4}-\d{2}", doc["period"]), "usage period", doc)
    check(isinstance(doc["meters"], list) and isinstance(doc["total_micros"], int),
          "usage shape", doc)
    for m in doc["meters"]:
        check(set(m) >= {"meter", "sku", "unit", "quantity", "amount_micros"}, "meter", m)
    same = nubo(env, a, "usage", "show", "-o", "json").json
    check_eq((same["tenant_id"], same["period"]), (doc["tenant_id"], doc["period"]),
             "nubo usage show")
    r = nubo(env, a, "usage")
    f = fields(r)
    check_eq((f["tenant"], f["period"]), (a.tenant_id, doc["period"]), "usage (table)")
    check(re.fullmatch(r"\d+\.\d{2,6}", f["total"]), "usage total in currency units", f)
    check("METER" in r.out and "AMOUNT" in r.out, "usage meters table", r)
    # A tenant cannot read another's; the admin can.
    r = nubo(env, a, "usage", "--tenant", b.tenant_id, rc=4)
    check("UnauthorizedOperation" in r.err, "another tenant's usage", r)
    check_eq(nubo(env, a, "usage", "--tenant", a.tenant_id, "-o", "json").json["tenant_id"],
             a.tenant_id, "one's own tenant named")
    adm = nubo(env, env.admin, "usage", "--tenant", b.tenant_id, "-o", "json").json
    check_eq(adm["tenant_id"], b.tenant_id, "the admin reads another tenant's usage")
    nubo(env, a, "usage", "extra", rc=2)


@tap.test
def test_invoices(env):
    a, b = need("a"), need("b")
    lst = nubo(env, a, "invoice", "list", "-o", "json").json
    check(isinstance(lst, list), "invoice list is a JSON array", lst)
    for inv in lst:
        check_eq(inv["tenant_id"], a.tenant_id, "only one's own invoices")
        check(set(inv) >= {"invoice_id", "period", "state", "currency", "total_micros"},
              "invoice fields", inv)
    r = nubo(env, a, "invoice", "list")
    check(r.out.splitlines()[0].split()[:4] == ["ID", "TENANT", "PERIOD", "STATE"],
          "invoice list (table header)", r)
    r = nubo(env, a, "invoice", "list", "--tenant", b.tenant_id, rc=4)
    check("UnauthorizedOperation" in r.err, "another tenant's invoices", r)
    nubo(env, env.admin, "invoice", "list", "--tenant", b.tenant_id, "-o", "json")
    every = nubo(env, env.admin, "invoice", "list", "-o", "json").json
    check(isinstance(every, list), "the admin lists every tenant's invoices", every)
    r = nubo(env, a, "invoice", "show", "inv-000000-000000000000", rc=3)
    check("InvalidInvoiceID.NotFound" in r.err, "unknown invoice", r)
    nubo(env, a, "invoice", "show", rc=2)
    # An invoice of the admin's, if there is one, is not the tenant's.
    theirs = [i["invoice_id"] for i in every if i["tenant_id"] != a.tenant_id]
    if theirs:
        nubo(env, a, "invoice", "show", theirs[0], rc=3)
        shown = nubo(env, env.admin, "invoice", "show", theirs[0], "-o", "json").json
        check_eq(shown["invoice_id"], theirs[0], "the admin shows any invoice")
        check(isinstance(shown["lines"], list), "an invoice has its lines", shown)


@tap.test
def test_budget(env):
    a, b = need("a"), need("b")
    doc = nubo(env, a, "budget", "show", "-o", "json").json
    check_eq((doc["tenant_id"], doc["alerts"]), (a.tenant_id, []), "budget before setting it")
    doc = nubo(env, a, "budget", "set", "12.5", "-o", "json").json
    check_eq(doc["threshold_micros"], 12500000, "budget set 12.5")
    f = fields(nubo(env, a, "budget", "show"))
    check_eq((f["tenant"], f["threshold"]), (a.tenant_id, "12.50"), "budget show (table)")
    for bad in ("0", "-1", "abc", "1.0000001"):
        nubo(env, a, "budget", "set", bad, rc=2)
    r = nubo(env, a, "budget", "show", "--tenant", b.tenant_id, rc=4)
    check("UnauthorizedOperation" in r.err, "another tenant's budget", r)
    nubo(env, a, "budget", "set", "5", "--tenant", b.tenant_id, rc=4)
    doc = nubo(env, env.admin, "budget", "set", "7", "--tenant", b.tenant_id, "-o", "json").json
    check_eq((doc["tenant_id"], doc["threshold_micros"]), (b.tenant_id, 7000000),
             "the admin sets another tenant's budget")
    check_eq(nubo(env, b, "budget", "show", "-o", "json").json["threshold_micros"], 7000000,
             "the tenant sees it")


if __name__ == "__main__":
    tap.main()
