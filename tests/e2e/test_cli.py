"""End-to-end: the `nubo` command line (sdk/c/cli, over libnubo) against a real nubo-gateway:
every subcommand, in tables and in --output json, its exit codes (0 ok, 1 API error, 2 usage,
3 not found, 4 authentication, 5 unavailable or timed out), profiles, and libnubo's installed
form (make install, pkg-config, the examples). Also libnubo's SigV4 signer against botocore's.
Prints TAP. Run: /usr/bin/python3 tests/e2e/test_cli.py
Builds sdk/c (make -C sdk/c) when build/sdk/nubo is missing or older than its sources."""

import sys

sys.dont_write_bytecode = True

import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import stat  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import nubo_env  # noqa: E402
from nubo_env import REPO, TestFailure, check, check_eq  # noqa: E402

SDK = REPO / "sdk/c"
BUILD = REPO / "build/sdk"
NUBO = BUILD / "nubo"
SIGN = BUILD / "tests/sigv4_sign"

tap = nubo_env.Tap(__file__)
S = {}  # state shared by the tests, in order

# libnubo's version, as its header says; the Makefile's must be the same (test_build_and_help).
VERSION = re.search(r'#define NUBO_VERSION\s+"([^"]+)"',
                    (SDK / "include/nubo/nubo.h").read_text()).group(1)


def need(key):
    if key not in S:
        raise TestFailure(f"needs '{key}' from an earlier test, which failed")
    return S[key]


def build_sdk():
    """make -C sdk/c when the binaries are missing or older than a source."""
    newest = max(p.stat().st_mtime for p in SDK.rglob("*") if p.is_file())
    outputs = [NUBO, SIGN, BUILD / f"libnubo.so.{VERSION}"]
    if all(p.exists() and p.stat().st_mtime >= newest for p in outputs):
        return
    r = subprocess.run(["make", "-s", "-C", str(SDK), "-j2"], capture_output=True, text=True,
                       timeout=300)
    if r.returncode != 0:
        raise TestFailure(f"make -C sdk/c failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")


class Result:
    def __init__(self, args, proc):
        self.args, self.rc, self.out, self.err = args, proc.returncode, proc.stdout, proc.stderr

    @property
    def json(self):
        try:
            return json.loads(self.out)
        except ValueError as e:
            raise TestFailure(f"nubo {' '.join(self.args)}: not JSON ({e})\n{self}") from e

    def rows(self):
        """The table: a list of dicts keyed by the lower-case header."""
        lines = [x for x in self.out.splitlines() if x.strip()]
        check(lines, f"nubo {' '.join(self.args)} printed no table\n{self}")
        head = lines[0].split()
        return [dict(zip([h.lower() for h in head], x.split(None, len(head) - 1)))
                for x in lines[1:]]

    def __str__(self):
        return (f"$ nubo {' '.join(self.args)}\nexit {self.rc}\nstdout:\n{self.out[-2500:]}\n"
                f"stderr:\n{self.err[-2500:]}")


def creds_env(env, creds, **extra):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("NUBO_", "AWS_"))}
    e.update({"NUBO_ENDPOINT": env.endpoint, "NUBO_ACCESS_KEY": creds.key_id,
              "NUBO_SECRET_KEY": creds.secret, "HOME": str(env.tmp / "home"),
              "XDG_CONFIG_HOME": str(env.tmp / "home/.config"), "LC_ALL": "C"})
    e.update(extra)
    return {k: v for k, v in e.items() if v is not None}


def nubo(env, creds, *args, rc=0, environ=None, stdin=None, timeout=60):
    """Runs the CLI as 'creds' (None: the environment in 'environ' alone); checks its exit
    status is 'rc' (None: any)."""
    e = environ if environ is not None else creds_env(env, creds)
    p = subprocess.run([str(NUBO)] + [str(a) for a in args], capture_output=True, text=True,
                       env=e, timeout=timeout, input=stdin)
    r = Result([str(a) for a in args], p)
    if rc is not None:
        check_eq(r.rc, rc, f"exit status of nubo {' '.join(r.args)}; output\n{r}")
    return r


def both(env, creds, *args):
    """Runs a read command as a table and as JSON; returns (rows, json)."""
    t = nubo(env, creds, *args)
    j = nubo(env, creds, *args, "--output", "json")
    return t.rows(), j.json


# --- set-up ----------------------------------------------------------------------------------


@tap.test(timeout=300)
def test_build_and_help(env):
    build_sdk()
    S["member"] = env.tenant("cli-a")
    S["other"] = env.tenant("cli-b")
    r = nubo(env, None, "--help", environ=creds_env(env, S["member"]))
    for group in ("instance run", "instance console", "keypair create", "admin tenant create",
                  "admin requests", "admin host create", "admin host evacuate"):
        check(group in r.out, f"'{group}' missing from nubo --help", r)
    check_eq(nubo(env, None, rc=2, environ={}).rc, 2, "nubo without arguments")
    check(VERSION in nubo(env, S["member"], "--version").out, "nubo --version")
    made = re.search(r"^VERSION := (\S+)$", (SDK / "Makefile").read_text(), re.M)
    check_eq(made and made.group(1), VERSION, "the version in sdk/c/Makefile and in nubo.h")
    # --help on every subcommand, without credentials.
    cmds = re.findall(r"^  ((?:admin \w+ |admin |\w+ )\w+)\s{2,}", r.out, re.M)
    check(len(cmds) >= 30, "commands listed by nubo --help", cmds)
    for cmd in cmds:
        h = nubo(env, None, *cmd.split(), "--help", environ={"PATH": "/usr/bin"})
        check(h.out.startswith(f"usage: nubo {cmd}"), f"help of {cmd}", h)
    for group in ("instance", "admin", "admin tenant", "admin host"):
        g = nubo(env, None, *group.split(), "--help", environ={})
        check("verbs:" in g.out, f"nubo {group} --help", g)


# --- catalogue -------------------------------------------------------------------------------


@tap.test
def test_region_zone_type(env):
    a = need("member")
    rows, doc = both(env, a, "region", "list")
    check_eq([x["name"] for x in rows], ["nubo-1"], "region list (table)")
    check_eq([x["name"] for x in doc], ["nubo-1"], "region list (json)")
    rows, doc = both(env, a, "zone", "list")
    check(rows and rows[0]["name"].startswith("nubo-1"), "zone list (table)", rows)
    check_eq([(z["name"], z["region"]) for z in doc], [(r["name"], "nubo-1") for r in rows],
             "zone list json vs table")
    rows, doc = both(env, a, "type", "list")
    names = [t["name"] for t in doc]
    check("t3.micro" in names, "t3.micro in type list --output json", names)
    check_eq([x["name"] for x in rows], names, "type list table vs json")
    micro = next(t for t in doc if t["name"] == "t3.micro")
    row = next(x for x in rows if x["name"] == "t3.micro")
    check_eq((int(row["vcpus"]), int(row["memory_mib"])), (micro["vcpus"], micro["memory_mib"]),
             "t3.micro in the table")
    doc = nubo(env, a, "type", "list", "--filter", "instance-type=t3.micro", "-o", "json").json
    check_eq([t["name"] for t in doc], ["t3.micro"], "type list --filter")
    nubo(env, a, "type", "list", "--filter", "bogus=1", rc=1)
    nubo(env, a, "zone", "list", "extra", rc=2)


# --- images ----------------------------------------------------------------------------------


@tap.test
def test_images(env):
    a = need("member")
    public = env.image()
    doc = nubo(env, a, "image", "register", "--name", "cli-img", "--description", "mine",
               "--output", "json").json
    check(re.fullmatch(r"ami-[0-9a-f]{17}", doc["id"]), "registered image id", doc)
    check_eq((doc["name"], doc["description"], doc["public"], doc["owner_id"]),
             ("cli-img", "mine", False, a.tenant_id), "registered image")
    S["image"] = doc["id"]
    t = {x["field"]: x["value"] for x in nubo(env, a, "image", "register", "--name",
                                               "cli-img2").rows()}
    check_eq((t["name"], t["public"]), ("cli-img2", "no"), "image register (table)")
    rows, lst = both(env, a, "image", "list")
    ids = {m["id"] for m in lst}
    check({public, doc["id"], t["id"]} <= ids, "image list has the public and own images",
          lst)
    check_eq({x["id"] for x in rows}, ids, "image list table vs json")
    own = nubo(env, a, "image", "list", "--owner", "self", "-o", "json").json
    check_eq(sorted(m["name"] for m in own), ["cli-img", "cli-img2"], "image list --owner self")
    flt = nubo(env, a, "image", "list", "--filter", "name=cli-img", "-o", "json").json
    check_eq([m["id"] for m in flt], [doc["id"]], "image list --filter name=")
    show = nubo(env, a, "image", "show", doc["id"], "-o", "json").json
    check_eq(show, doc, "image show --output json")
    fields = {x["field"]: x.get("value") for x in nubo(env, a, "image", "show", doc["id"]).rows()}
    check_eq((fields["id"], fields["name"], fields["public"]), (doc["id"], "cli-img", "no"),
             "image show (table)")
    # Another tenant does not see it; a public one everybody does.
    r = nubo(env, need("other"), "image", "show", doc["id"], rc=3)
    check("InvalidAMIID.NotFound" in r.err, "not-found message", r)
    nubo(env, need("other"), "image", "show", public)
    r = nubo(env, a, "image", "register", "--name", "cli-img", rc=1)
    check("InvalidAMIName.Duplicate" in r.err, "duplicate image name", r)
    nubo(env, a, "image", "register", rc=2)


# --- key pairs -------------------------------------------------------------------------------


@tap.test
def test_keypairs(env):
    a = need("member")
    out = env.tmp / "cli-key.pem"
    r = nubo(env, a, "keypair", "create", "cli-rsa", "--out", out)
    check_eq(stat.S_IMODE(out.stat().st_mode), 0o600, "mode of the private key file")
    check("BEGIN RSA PRIVATE KEY" in out.read_text(), "private key file", out.read_text()[:80])
    check("PRIVATE KEY" not in r.out, "the private key also printed with --out", r)
    check_eq(r.rows()[0]["name"], "cli-rsa", "keypair create (table)")
    # Printed when there is no --out; in the JSON document with --output json.
    r = nubo(env, a, "keypair", "create", "cli-ed")
    check("BEGIN OPENSSH PRIVATE KEY" not in r.out, "RSA is the default type", r)
    check("BEGIN RSA PRIVATE KEY" in r.out, "keypair create prints the private key", r)
    doc = nubo(env, a, "keypair", "create", "cli-ed2", "--type", "ed25519", "-o", "json").json
    check(doc["private_key"].startswith("-----BEGIN OPENSSH PRIVATE KEY"), "ed25519 json", doc)
    # --out refuses to overwrite, before anything is created.
    r = nubo(env, a, "keypair", "create", "cli-never", "--out", out, rc=2)
    check("cli-never" not in nubo(env, a, "keypair", "list").out, "key made despite --out", r)
    # Import: an OpenSSH line, from a file or the command line.
    pub = subprocess.run(["ssh-keygen", "-y", "-f", str(out)], capture_output=True, text=True)
    if pub.returncode != 0:
        pub_line = doc["public_key"]
    else:
        pub_line = pub.stdout.strip()
    pub_file = env.tmp / "cli-key.pub"
    pub_file.write_text(pub_line + "\n")
    imp = nubo(env, a, "keypair", "import", "cli-imp", "--public-key-file", pub_file,
               "-o", "json").json
    check_eq((imp["name"], imp["private_key"]), ("cli-imp", None), "imported key pair")
    nubo(env, a, "keypair", "import", "cli-imp2", "--public-key", pub_line)
    r = nubo(env, a, "keypair", "import", "cli-bad", "--public-key", "ssh-rsa AAAA", rc=1)
    check("InvalidKey.Format" in r.err, "bad public key", r)
    rows, lst = both(env, a, "keypair", "list")
    names = sorted(k["name"] for k in lst)
    check_eq(names, ["cli-ed", "cli-ed2", "cli-imp", "cli-imp2", "cli-rsa"], "keypair list")
    check_eq(sorted(x["name"] for x in rows), names, "keypair list (table)")
    check(all("private_key" not in k or k["private_key"] is None for k in lst),
          "keypair list shows private keys", lst)
    flt = nubo(env, a, "keypair", "list", "--filter", "key-type=ed25519", "-o", "json").json
    check_eq([k["name"] for k in flt], ["cli-ed2"], "keypair list --filter")
    r = nubo(env, a, "keypair", "create", "cli-rsa", rc=1)
    check("InvalidKeyPair.Duplicate" in r.err, "duplicate key pair", r)
    for name in ("cli-ed", "cli-imp", "cli-imp2"):
        nubo(env, a, "keypair", "delete", name)
    check_eq(nubo(env, a, "keypair", "delete", "cli-ed2", "-o", "json").json, {"deleted": True},
             "keypair delete --output json")
    check_eq(sorted(k["name"] for k in nubo(env, a, "keypair", "list", "-o", "json").json),
             ["cli-rsa"], "key pairs after the deletes")
    nubo(env, a, "keypair", "import", "x", rc=2)
    nubo(env, a, "keypair", "delete", rc=2)


# --- instances -------------------------------------------------------------------------------


@tap.test
def test_instances(env):
    a = need("member")
    ud = env.tmp / "user-data.sh"
    ud.write_text("#!/bin/sh\necho hello\n")
    doc = nubo(env, a, "instance", "run", "--image", need("image"), "--type", "t3.micro",
               "--count", "2", "--key", "cli-rsa", "--tag", "Name=web", "--tag", "team=x",
               "--user-data-file", ud, "-o", "json").json
    check_eq(len(doc), 2, f"instances launched: {doc}")
    for i in doc:
        check_eq((i["state"], i["image_id"], i["key_name"], i["instance_type"], i["tags"]),
                 ("pending", need("image"), "cli-rsa", "t3.micro", {"Name": "web", "team": "x"}),
                 "launched instance")
    ids = [i["id"] for i in doc]
    S["ids"] = ids
    row = nubo(env, a, "instance", "run", "--image", need("image")).rows()
    check_eq((len(row), row[0]["state"], row[0]["type"]), (1, "pending", "t3.micro"),
             "instance run (table)")
    ids.append(row[0]["id"])

    rows, lst = both(env, a, "instance", "list")
    check_eq(sorted(i["id"] for i in lst), sorted(ids), "instance list --output json")
    check_eq(sorted(x["id"] for x in rows), sorted(ids), "instance list (table)")
    # Paging: the iterator follows next_token.
    paged = nubo(env, a, "instance", "list", "--page-size", "1", "-o", "json").json
    check_eq(sorted(i["id"] for i in paged), sorted(ids), "instance list --page-size 1")
    tagged = nubo(env, a, "instance", "list", "--filter", "tag:Name=web", "-o", "json").json
    check_eq(sorted(i["id"] for i in tagged), sorted(ids[:2]), "instance list --filter tag:Name")
    check_eq(nubo(env, need("other"), "instance", "list", "-o", "json").json, [],
             "another tenant's instance list")

    show = nubo(env, a, "instance", "show", ids[0], "-o", "json").json
    check_eq((show["id"], show["state"], show["tags"]), (ids[0], "pending", doc[0]["tags"]),
             "instance show --output json")
    f = {x["field"]: x.get("value") for x in nubo(env, a, "instance", "show", ids[0]).rows()}
    check_eq((f["id"], f["state"], f["key"], f["tags"]),
             (ids[0], "pending", "cli-rsa", "Name=web,team=x"), "instance show (table)")
    # The user data went base64-encoded, as stored.
    import base64
    stored = env.psql1(f"SELECT user_data FROM instances WHERE id = {nubo_env.sql_quote(ids[0])}")
    check_eq(base64.b64decode(stored).decode(), ud.read_text(), "user data stored")

    # Errors: not found (3), malformed, another tenant's (3), bad state (1).
    r = nubo(env, a, "instance", "show", "i-0123456789abcdef0", rc=3)
    check("InvalidInstanceID.NotFound" in r.err and "request" in r.err, "not found message", r)
    nubo(env, need("other"), "instance", "show", ids[0], rc=3)
    nubo(env, a, "instance", "show", "nonsense", rc=1)
    r = nubo(env, a, "instance", "run", "--image", "ami-00000000000000000", rc=3)
    r = nubo(env, a, "instance", "reboot", ids[0], rc=1)
    check("IncorrectInstanceState" in r.err, "reboot of a pending instance", r)
    nubo(env, a, "instance", "run", rc=2)
    nubo(env, a, "instance", "run", "--image", need("image"), "--count", "0", rc=2)
    nubo(env, a, "instance", "stop", rc=2)
    nubo(env, a, "instance", "frobnicate", ids[0], rc=2)

    # State changes, as a compute agent would move them.
    env.set_instance_state(ids[:2], "running")
    ch = nubo(env, a, "instance", "stop", ids[0], ids[1], "-o", "json").json
    check_eq([(c["id"], c["previous_state"], c["state"]) for c in ch],
             [(ids[0], "running", "stopping"), (ids[1], "running", "stopping")],
             "instance stop --output json")
    env.set_instance_state(ids[:2], "stopped")
    rows = nubo(env, a, "instance", "start", ids[0]).rows()
    check_eq((rows[0]["id"], rows[0]["previous"], rows[0]["state"]),
             (ids[0], "stopped", "pending"), "instance start (table)")
    env.set_instance_state(ids[:1], "running")
    rows = nubo(env, a, "instance", "reboot", ids[0]).rows()
    check_eq(rows[0]["state"], "running", "instance reboot (table)")
    rows = nubo(env, a, "instance", "terminate", ids[2]).rows()
    check_eq((rows[0]["previous"], rows[0]["state"]), ("pending", "terminated"),
             "instance terminate (table)")
    st = nubo(env, a, "instance", "list", "--state", "terminated", "-o", "json").json
    check_eq([i["id"] for i in st], [ids[2]], "instance list --state terminated")


@tap.test
def test_instance_run_wait(env):
    a = need("member")
    # Nothing moves a pending instance today: --wait ends at --timeout with exit 5.
    t0 = time.monotonic()
    r = nubo(env, a, "instance", "run", "--image", need("image"), "--wait", "--timeout", "2",
             rc=5)
    check(1.5 < time.monotonic() - t0 < 20, "time --wait --timeout 2 took", time.monotonic() - t0)
    check("timed out" in r.err and "pending" in r.err, "timeout message", r)
    check("pending" in r.err.splitlines()[0], "progress line (not a terminal)", r)
    # When something moves it, --wait returns as soon as it is running.
    token = "cli-wait-" + str(random.randrange(1 << 30))
    mover_done = threading.Event()

    def mover():
        for _ in range(100):
            rows = env.psql("SELECT id FROM instances WHERE client_token = "
                            + nubo_env.sql_quote(token))
            if rows:
                time.sleep(0.5)
                env.set_instance_state([rows[0][0]], "running")
                break
            time.sleep(0.1)
        mover_done.set()

    th = threading.Thread(target=mover, daemon=True)
    th.start()
    r = nubo(env, a, "instance", "run", "--image", need("image"), "--client-token", token,
             "--wait", "--timeout", "30", "-o", "json", rc=None)
    th.join(15)
    check_eq(r.rc, 0, f"exit status of run --wait with a mover\n{r}")
    check_eq(r.json[0]["state"], "pending", "run prints the launch answer")
    check_eq(nubo(env, a, "instance", "show", r.json[0]["id"], "-o", "json").json["state"],
             "running", "state after --wait")
    # The same client token again: the same reservation, nothing new launched.
    again = nubo(env, a, "instance", "run", "--image", need("image"), "--client-token", token,
                 "-o", "json").json
    check_eq([i["id"] for i in again], [r.json[0]["id"]], "repeat with the same client token")


# --- tags ------------------------------------------------------------------------------------


@tap.test
def test_tags(env):
    a = need("member")
    iid = need("ids")[0]
    nubo(env, a, "tag", "set", iid, "env=prod", "owner=ops")
    rows, lst = both(env, a, "tag", "list", "--resource", iid)
    check_eq(sorted((t["key"], t["value"]) for t in lst),
             [("Name", "web"), ("env", "prod"), ("owner", "ops"), ("team", "x")],
             "tag list --resource --output json")
    check_eq(sorted((x["key"], x["value"]) for x in rows),
             sorted((t["key"], t["value"]) for t in lst), "tag list (table)")
    check_eq({t["resource_type"] for t in lst}, {"instance"}, "resource type")
    img = need("image")
    check_eq(nubo(env, a, "tag", "set", img, "os=debian", "-o", "json").json,
             {"resource_id": img, "tags_set": 1}, "tag set --output json")
    keyed = nubo(env, a, "tag", "list", "--key", "os", "-o", "json").json
    check_eq([(t["resource_id"], t["value"]) for t in keyed], [(img, "debian")], "tag list --key")
    paged = nubo(env, a, "tag", "list", "--page-size", "1", "-o", "json").json
    full = nubo(env, a, "tag", "list", "-o", "json").json
    check_eq(paged, full, "tag list --page-size 1 vs all at once")
    nubo(env, a, "tag", "delete", iid, "owner", "env")
    left = nubo(env, a, "tag", "list", "--resource", iid, "-o", "json").json
    check_eq(sorted(t["key"] for t in left), ["Name", "team"], "tags after tag delete KEY...")
    nubo(env, a, "tag", "delete", img, "--all")
    check_eq(nubo(env, a, "tag", "list", "--resource", img, "-o", "json").json, [],
             "tags after tag delete --all")
    r = nubo(env, a, "tag", "set", "i-0123456789abcdef0", "a=b", rc=3)
    check("NotFound" in r.err, "tag set on an unknown instance", r)
    nubo(env, a, "tag", "set", "bogus-1", "a=b", rc=1)
    nubo(env, a, "tag", "set", iid, "novalue", rc=2)
    nubo(env, a, "tag", "delete", iid, rc=2)


# --- console and placement -------------------------------------------------------------------


@tap.test
def test_instance_console_and_placement(env):
    a = need("member")
    ids = need("ids")
    # ids[0] runs on the fixture's simulated host (no agent); a new launch is on no host yet.
    r = nubo(env, a, "instance", "console", ids[0], rc=1)
    check("IncorrectInstanceState" in r.err and "request" in r.err,
          "console of an instance on a simulated host", r)
    fresh = nubo(env, a, "instance", "run", "--image", need("image"), "-o", "json").json[0]
    r = nubo(env, a, "instance", "console", fresh["id"], "-o", "json", rc=1)
    check("IncorrectInstanceState" in r.err and r.out == "", "console of an unplaced instance", r)
    r = nubo(env, a, "instance", "console", "i-0123456789abcdef0", rc=3)
    check("InvalidInstanceID.NotFound" in r.err, "console of an unknown instance", r)
    nubo(env, need("other"), "instance", "console", ids[0], rc=3)
    nubo(env, a, "instance", "console", rc=2)
    nubo(env, a, "instance", "console", ids[0], ids[1], rc=2)

    # Tenancy: in the answer, in show (table and JSON).
    ded = nubo(env, a, "instance", "run", "--image", need("image"), "--tenancy", "dedicated",
               "-o", "json").json
    check_eq((len(ded), ded[0]["tenancy"]), (1, "dedicated"), "run --tenancy dedicated")
    f = {x["field"]: x.get("value") for x in nubo(env, a, "instance", "show",
                                                   ded[0]["id"]).rows()}
    check_eq((f["tenancy"], f["placement_group"]), ("dedicated", "-"), "show: tenancy (table)")
    check_eq(nubo(env, a, "instance", "show", fresh["id"], "-o", "json").json["tenancy"],
             "default", "default tenancy")
    r = nubo(env, a, "instance", "run", "--image", need("image"), "--tenancy", "shared", rc=2)
    check("--tenancy must be default or dedicated" in r.err, "bad --tenancy", r)

    # Placement groups: an unknown one is refused by the API (exit 1); bad partitions locally.
    r = nubo(env, a, "instance", "run", "--image", need("image"), "--placement-group", "nope",
             rc=1)
    check("InvalidPlacementGroup.Unknown" in r.err, "run --placement-group unknown", r)
    r = nubo(env, a, "instance", "run", "--image", need("image"), "--placement-group", "nope",
             "--partition", "2", "-o", "json", rc=1)
    check("InvalidPlacementGroup.Unknown" in r.err and r.out == "", "unknown group + partition",
          r)
    r = nubo(env, a, "instance", "run", "--image", need("image"), "--partition", "2", rc=2)
    check("--partition needs --placement-group" in r.err, "--partition alone", r)
    nubo(env, a, "instance", "run", "--image", need("image"), "--placement-group", "x",
         "--partition", "8", rc=2)
    # A real group (placement groups are EC2 actions only): the instance is in it.
    env.ec2(a).create_placement_group(GroupName="cli-pg", Strategy="partition",
                                      PartitionCount=3)
    pg = nubo(env, a, "instance", "run", "--image", need("image"), "--placement-group",
              "cli-pg", "--partition", "2", "-o", "json").json[0]
    check_eq((pg["placement_group"], pg["partition_number"]), ("cli-pg", 2),
             "run --placement-group --partition")
    f = {x["field"]: x.get("value") for x in nubo(env, a, "instance", "show", pg["id"]).rows()}
    check_eq((f["placement_group"], f["partition"]), ("cli-pg", "2"),
             "show: placement group (table)")
    r = nubo(env, a, "instance", "run", "--image", need("image"), "--placement-group", "cli-pg",
             "--partition", "5", rc=1)
    check("InvalidParameterValue" in r.err, "a partition the group does not have", r)
    nubo(env, a, "instance", "terminate", fresh["id"], ded[0]["id"], pg["id"])


# --- the operator ----------------------------------------------------------------------------


@tap.test
def test_admin_tenants_users_keys(env):
    adm = env.admin
    t = nubo(env, adm, "admin", "tenant", "create", "cli-ops", "-o", "json").json
    check(re.fullmatch(r"[1-9][0-9]{11}", t["tenant_id"]), "tenant id", t)
    t2 = nubo(env, adm, "admin", "tenant", "create", "cli-ops2").rows()[0]
    check_eq(t2["name"], "cli-ops2", "admin tenant create (table)")
    r = nubo(env, adm, "admin", "tenant", "create", "cli-ops", rc=1)
    check("InvalidTenant.Duplicate" in r.err, "duplicate tenant", r)
    rows, lst = both(env, adm, "admin", "tenant", "list")
    by = {x["name"]: x for x in lst}
    check(by.get("cli-ops", {}).get("enabled") is True, "tenant list --output json", lst)
    check_eq({x["name"] for x in rows}, set(by), "admin tenant list (table)")

    u = nubo(env, adm, "admin", "user", "create", t["tenant_id"], "alice", "--role", "member",
             "-o", "json").json
    check_eq((u["tenant_id"], u["name"], u["role"]), (t["tenant_id"], "alice", "member"),
             "admin user create")
    reader = nubo(env, adm, "admin", "user", "create", t["tenant_id"], "bob", "--role",
                  "reader").rows()[0]
    check_eq(reader["role"], "reader", "admin user create (table)")
    k = nubo(env, adm, "admin", "key", "create", u["user_id"], "-o", "json").json
    check(re.fullmatch(r"NKIA[A-Z2-7]{16}", k["access_key_id"]), "access key id", k)
    kr = nubo(env, adm, "admin", "key", "create", reader["user_id"]).rows()[0]
    alice = nubo_env.Creds(k["access_key_id"], k["secret_access_key"], t["tenant_id"], "cli-ops")
    bob = nubo_env.Creds(kr["access_key_id"], kr["secret_access_key"], t["tenant_id"], "cli-ops")
    S["alice"], S["ops_tenant"], S["alice_user"] = alice, t["tenant_id"], u["user_id"]
    S["bob"] = bob
    check_eq(nubo(env, alice, "keypair", "list", "-o", "json").json, [], "the new key works")
    # A reader may read, not write: exit 4.
    nubo(env, bob, "instance", "list")
    r = nubo(env, bob, "keypair", "create", "nope", rc=4)
    check("UnauthorizedOperation" in r.err, "reader writes", r)
    # A member is no operator: exit 4.
    nubo(env, alice, "admin", "tenant", "list", rc=4)

    # Keys, users and tenants turned off and on again.
    for kind, ident in (("key", alice.key_id), ("user", u["user_id"]),
                        ("tenant", t["tenant_id"])):
        doc = nubo(env, adm, "admin", kind, "disable", ident, "-o", "json").json
        check_eq(doc, {"id": ident, "enabled": False}, f"admin {kind} disable --output json")
        r = nubo(env, alice, "region", "list", rc=4)
        check("OptInRequired" in r.err, f"a disabled {kind}", r)
        out = nubo(env, adm, "admin", kind, "enable", ident).out
        check(f"{kind} {ident} enabled" in out, f"admin {kind} enable (table)", out)
        nubo(env, alice, "region", "list")
    nubo(env, adm, "admin", "tenant", "disable", "999999999999", rc=3)
    nubo(env, adm, "admin", "user", "create", "999999999999", "x", rc=3)
    nubo(env, adm, "admin", "key", "create", "user-00000000000000000", rc=3)
    nubo(env, adm, "admin", "user", "create", t["tenant_id"], rc=2)

    # A console password, read from standard input: alice can sign in with it, and only with it.
    pw = S["alice_pw"] = "alice's console password"
    doc = nubo(env, adm, "admin", "user", "password", u["user_id"], "-o", "json",
               stdin=pw + "\n").json
    check_eq(doc, {"user_id": u["user_id"], "password_set": True}, "admin user password")
    for password, want in (("not the password", 401), (pw, 200)):
        status, _, body = env.http("POST", "/v1/session", json.dumps(
            {"account": "cli-ops", "user": "alice", "password": password}),
            {"Content-Type": "application/json"})
        check_eq(status, want, f"signing in as alice with {password!r}: {body}")
    r = nubo(env, adm, "admin", "user", "password", u["user_id"], stdin="short\n", rc=1)
    check("InvalidParameterValue" in r.err, "a short password", r)
    nubo(env, adm, "admin", "user", "password", u["user_id"], stdin="", rc=2)
    nubo(env, adm, "admin", "user", "password", "user-00000000000000000", stdin=pw, rc=3)
    nubo(env, alice, "admin", "user", "password", u["user_id"], stdin=pw, rc=4)


@tap.test
def test_admin_quota(env):
    adm, tid = env.admin, need("ops_tenant")
    q = nubo(env, adm, "admin", "quota", "show", tid, "-o", "json").json
    check_eq((q["tenant_id"], q["max_instances"], q["max_vcpus"]), (tid, 20, 64),
             "admin quota show (defaults)")
    q = nubo(env, adm, "admin", "quota", "set", tid, "--max-instances", "1", "--max-vcpus",
             "8", "-o", "json").json
    check_eq((q["max_instances"], q["max_vcpus"], q["max_memory_mib"]), (1, 8, 262144),
             "admin quota set")
    f = {x["field"]: x["value"] for x in nubo(env, adm, "admin", "quota", "show", tid).rows()}
    check_eq((f["max_instances"], f["max_vcpus"]), ("1", "8"), "admin quota show (table)")
    alice = need("alice")
    nubo(env, alice, "instance", "run", "--image", env.image())
    r = nubo(env, alice, "instance", "run", "--image", env.image(), rc=1)
    check("InstanceLimitExceeded" in r.err, "launch over the quota", r)
    nubo(env, adm, "admin", "quota", "show", "999999999999", rc=3)
    nubo(env, adm, "admin", "quota", "set", tid, rc=2)
    nubo(env, adm, "admin", "quota", "set", tid, "--max-vcpus", "lots", rc=2)


@tap.test
def test_admin_type_set(env):
    adm, alice = env.admin, need("alice")
    doc = nubo(env, adm, "admin", "type", "set", "cli1.small", "--vcpus", "2", "--memory-mib",
               "1024", "--disk-gib", "10", "-o", "json").json
    want = {"name": "cli1.small", "vcpus": 2, "memory_mib": 1024, "disk_gib": 10,
            "ephemeral_gib": 0, "enabled": True}
    check_eq(doc, want, "admin type set --output json")
    listed = nubo(env, alice, "type", "list", "--filter", "instance-type=cli1.small", "-o",
                  "json").json
    check_eq(listed, [want], "nubo type list shows the new type")
    rows = nubo(env, alice, "type", "list").rows()
    check_eq([x for x in rows if x["name"] == "cli1.small"],
             [{"name": "cli1.small", "vcpus": "2", "memory_mib": "1024", "disk_gib": "10",
               "ephemeral_gib": "0"}], "nubo type list (table)")
    # Replaced whole: what is left out goes back to 0; a disabled type is no longer listed.
    row = nubo(env, adm, "admin", "type", "set", "cli1.small", "--vcpus", "4", "--memory-mib",
               "2048", "--ephemeral-gib", "5", "--disabled").rows()
    check_eq(row, [{"name": "cli1.small", "vcpus": "4", "memory_mib": "2048", "disk_gib": "0",
                    "ephemeral_gib": "5", "enabled": "no"}], "admin type set (table)")
    names = [t["name"] for t in nubo(env, alice, "type", "list", "-o", "json").json]
    check("cli1.small" not in names and "t3.micro" in names, "a disabled type is not listed",
          names)
    stored = env.psql1("SELECT vcpus || ',' || memory_mib || ',' || disk_gib || ',' || "
                       "ephemeral_gib || ',' || enabled FROM instance_types "
                       "WHERE name = 'cli1.small'")
    check_eq(stored, "4,2048,0,5,false", "the type as stored")
    # Not the operator: exit 4, nothing changed.
    r = nubo(env, alice, "admin", "type", "set", "cli1.small", "--vcpus", "64", "--memory-mib",
             "4096", rc=4)
    check("UnauthorizedOperation" in r.err, "a member sets no type", r)
    # Refused by the gateway (exit 1), or on the command line (exit 2).
    r = nubo(env, adm, "admin", "type", "set", "cli1.small", "--vcpus", "2", "--memory-mib",
             "1", rc=1)
    check("InvalidParameterValue" in r.err and "memory_mib" in r.err, "too little memory", r)
    nubo(env, adm, "admin", "type", "set", "cli1.small", "--vcpus", "2000", "--memory-mib",
         "1024", rc=1)
    check_eq(env.psql1("SELECT vcpus FROM instance_types WHERE name = 'cli1.small'"), "4",
             "refused changes changed nothing")
    nubo(env, adm, "admin", "type", "set", "cli1.small", "--vcpus", "2", rc=2)
    nubo(env, adm, "admin", "type", "set", "--vcpus", "2", "--memory-mib", "512", rc=2)
    nubo(env, adm, "admin", "type", "set", "cli1.small", "--vcpus", "0", "--memory-mib", "512",
         rc=2)
    nubo(env, adm, "admin", "type", "set", "cli1.small", "--vcpus", "2", "--memory-mib", "lots",
         rc=2)
    nubo(env, adm, "admin", "type", "set", "cli1.small", "--vcpus", "1", "--memory-mib", "512")


@tap.test
def test_admin_prices(env):
    adm = env.admin
    api = env.rest(adm, "GET", "/v1/admin/prices")
    check_eq(api.status, 200, f"GET /v1/admin/prices: {api}")
    doc = api.json
    check(doc["plans"] and any(p["prices"] for p in doc["plans"]), "the API has priced plans",
          doc)
    check_eq(nubo(env, adm, "admin", "prices", "-o", "json").json, doc,
             "admin prices --output json is the API's document")
    rows = nubo(env, adm, "admin", "prices").rows()
    want = []
    for p in doc["plans"]:
        for x in p["prices"]:
            m = x["price_micros"]
            frac = f"{m % 1000000:06d}".rstrip("0").ljust(2, "0")
            want.append({"plan": p["id"], "current": "yes" if p["current"] else "no",
                         "meter": x["meter"], "sku": x["sku"] or "-", "unit": x["unit"],
                         "price": f"{m // 1000000}.{frac}", "currency": p["currency"]})
    check_eq(rows, want, "admin prices (table): a row per price, in units of the currency")
    micro = [x for x in rows if x["sku"] == "t3.micro" and x["current"] == "yes"]
    check_eq([(x["meter"], x["unit"], x["price"]) for x in micro],
             [("instance-running", "hour", "0.0104")], "t3.micro's price per hour")
    r = nubo(env, need("alice"), "admin", "prices", rc=4)
    check("UnauthorizedOperation" in r.err, "a member reads no prices", r)
    nubo(env, adm, "admin", "prices", "extra", rc=2)


@tap.test
def test_my_password(env):
    """nubo password: a user changes their own console password, signed with their key; the
    new one signs in, the old one no longer does."""
    alice, old = need("alice"), need("alice_pw")
    new = "alice's second password"

    def sign_in(user, password):
        status, _, body = env.http("POST", "/v1/session", json.dumps(
            {"account": "cli-ops", "user": user, "password": password}),
            {"Content-Type": "application/json"})
        return status

    check_eq(sign_in("alice", old), 200, "alice signs in with the password the admin set")
    # A wrong current password: the gateway's error, exit 1, nothing changed.
    r = nubo(env, alice, "password", stdin=f"not the password\n{new}\n", rc=1)
    check("InvalidParameterValue" in r.err and "the current password is not right" in r.err and
          "request" in r.err and r.out == "", "a wrong current password", r)
    check_eq(sign_in("alice", old), 200, "the old password still works after a refusal")
    # Too short a new one.
    r = nubo(env, alice, "password", "set", stdin=f"{old}\nshort\n", rc=1)
    check("InvalidParameterValue" in r.err and "from 10 to 1024 bytes" in r.err, "short new", r)
    # Missing lines: a usage error, nothing sent.
    nubo(env, alice, "password", stdin=f"{old}\n", rc=2)
    nubo(env, alice, "password", stdin="", rc=2)
    nubo(env, alice, "password", old, stdin=f"{old}\n{new}\n", rc=2)
    # The change.
    out = nubo(env, alice, "password", stdin=f"{old}\n{new}\n").out
    check("password changed" in out, "nubo password (text)", out)
    check_eq((sign_in("alice", new), sign_in("alice", old)), (200, 401),
             "the new password signs in, the old one does not")
    doc = nubo(env, alice, "password", "set", "-o", "json", stdin=f"{new}\r\n{old}\r\n").json
    check_eq(doc, {"password_set": True}, "nubo password set --output json (CRLF lines)")
    check_eq((sign_in("alice", old), sign_in("alice", new)), (200, 401), "changed back")
    # Any role, and a user without a password yet gives an empty first line.
    nubo(env, need("bob"), "password", stdin="\nbob's first password\n")
    check_eq(sign_in("bob", "bob's first password"), 200, "bob's first password (a reader)")
    nubo(env, need("bob"), "password", stdin="\nbob's other password\n", rc=1)
    check_eq(sign_in("bob", "bob's first password"), 200,
             "with a password set, an empty current one is refused")


@tap.test
def test_instance_image(env):
    """nubo instance image: the gateway's refusals and their exit codes. No instance here runs
    on a host with a compute agent (test_cli_vdi.py has real VMs); test_sdk_calls.c checks the
    request and the answer of a success."""
    a, ids = need("member"), need("ids")
    before = {m["id"] for m in nubo(env, a, "image", "list", "--owner", "self", "-o", "json").json}
    # ids[0] is running on the fixture's simulated host: no agent to save its disk.
    r = nubo(env, a, "instance", "image", ids[0], "--name", "cli-snap", "--wait", rc=1)
    check("IncorrectInstanceState" in r.err and "no host with an agent" in r.err and
          "request" in r.err and r.out == "", "instance image of an instance on a simulated host",
          r)
    r = nubo(env, a, "instance", "image", ids[2], "--name", "cli-snap", "-o", "json", rc=1)
    check("IncorrectInstanceState" in r.err and r.out == "", "instance image of a terminated one",
          r)
    r = nubo(env, a, "instance", "image", "i-0123456789abcdef0", "--name", "cli-snap", rc=3)
    check("InvalidInstanceID.NotFound" in r.err, "instance image of an unknown instance", r)
    nubo(env, need("other"), "instance", "image", ids[0], "--name", "cli-snap", rc=3)
    r = nubo(env, need("bob"), "instance", "image", ids[0], "--name", "cli-snap", rc=4)
    check("UnauthorizedOperation" in r.err, "a reader makes no image", r)
    after = {m["id"] for m in nubo(env, a, "image", "list", "--owner", "self", "-o", "json").json}
    check_eq(after, before, "no image left behind by the refusals")
    nubo(env, a, "instance", "image", ids[0], rc=2)
    nubo(env, a, "instance", "image", "--name", "x", rc=2)
    nubo(env, a, "instance", "image", ids[0], ids[1], "--name", "x", rc=2)
    nubo(env, a, "instance", "image", ids[0], "--name", "x", "--timeout", "0", rc=2)


@tap.test
def test_admin_requests(env):
    adm, alice = env.admin, need("alice")
    nubo(env, alice, "instance", "show", "i-0123456789abcdef0", rc=3)
    rows, lst = both(env, adm, "admin", "requests", "--tenant", alice.tenant_id, "--limit", "5")
    check(0 < len(lst) <= 5, "admin requests --limit 5", lst)
    check({x["tenant_id"] for x in lst} == {alice.tenant_id}, "--tenant filter", lst)
    check_eq([x["request_id"] for x in rows], [x["request_id"] for x in lst],
             "admin requests table vs json")
    errs = nubo(env, adm, "admin", "requests", "--tenant", alice.tenant_id, "--errors-only",
                "-o", "json").json
    check(errs and all(x["error_code"] for x in errs), "--errors-only", errs)
    nf = nubo(env, adm, "admin", "requests", "--error-code", "InvalidInstanceID.NotFound",
              "--action", "GET /v1/instances/i-0123456789abcdef0", "-o", "json").json
    check(nf and all(x["http_status"] == 400 for x in nf), "--error-code and --action", nf)
    check(f"libnubo/{VERSION}" in nf[0]["user_agent"], "the CLI's user agent", nf[0])
    now_us = int(time.time() * 1e6)
    none = nubo(env, adm, "admin", "requests", "--from", now_us + 3600 * 10**6, "-o",
                "json").json
    check_eq(none, [], "admin requests --from the future")
    old = nubo(env, adm, "admin", "requests", "--to", "2000-01-01T00:00:00Z", "-o", "json").json
    check_eq(old, [], "admin requests --to 2000")
    nubo(env, adm, "admin", "requests", "--limit", "0", rc=2)
    nubo(env, alice, "admin", "requests", rc=4)


@tap.test
def test_admin_hosts(env):
    adm = env.admin
    quiet = need("other").tenant_id  # launches nothing: a host dedicated to it stays empty
    doc = nubo(env, adm, "admin", "host", "create", "cli-sim", "--simulated", "--vcpus", "8",
               "--memory-mib", "16384", "--disk-gib", "100", "--reserved-vcpus", "1",
               "--cpu-ratio", "2", "--traits", "ssd,gpu", "--dedicated-tenant", quiet,
               "-o", "json").json
    check(re.fullmatch(r"h-[0-9a-f]{17}", doc["id"]), "host id", doc)
    check_eq((doc["name"], doc["state"], doc["simulated"], doc["capacity"],
              doc["reserved"]["vcpus"], doc["ratios"]["cpu"], doc["traits"],
              doc["dedicated_tenant"]),
             ("cli-sim", "up", True, {"vcpus": 8, "memory_mib": 16384, "disk_gib": 100}, 1, 2,
              ["ssd", "gpu"], quiet), "admin host create --simulated")
    check("node_token" not in doc, "a simulated host has no node token", doc)
    hid = doc["id"]
    t = {x["field"]: x["value"] for x in nubo(env, adm, "admin", "host", "create", "cli-sim2",
                                               "--simulated", "--dedicated-tenant",
                                               quiet).rows()}
    check_eq((t["name"], t["simulated"], t["state"], t["dedicated_tenant"]),
             ("cli-sim2", "yes", "up", quiet), "admin host create (table)")
    check("node_token" not in t, "node token row of a simulated host", t)
    hid2 = t["id"]
    r = nubo(env, adm, "admin", "host", "create", "cli-sim", "--simulated", rc=1)
    check("InvalidHost.Duplicate" in r.err, "duplicate host name", r)

    rows, lst = both(env, adm, "admin", "host", "list")
    by = {h["id"]: h for h in lst}
    check({hid, hid2} <= set(by), "admin host list --output json", lst)
    check_eq({x["id"] for x in rows}, set(by), "admin host list table vs json")
    row = next(x for x in rows if x["id"] == hid)
    check_eq((row["name"], row["state"], row["simulated"], row["vcpus"], row["instances"],
              row["dedicated"]), ("cli-sim", "up", "yes", "0/8", "0", quiet),
             "admin host list (table)")
    show = nubo(env, adm, "admin", "host", "show", hid, "-o", "json").json
    check_eq(show, by[hid], "admin host show --output json vs list")
    f = {x["field"]: x["value"] for x in nubo(env, adm, "admin", "host", "show", hid).rows()}
    check_eq((f["id"], f["vcpus"], f["reserved_vcpus"], f["traits"], f["ratios"]),
             (hid, "8", "1", "ssd,gpu", "cpu=2 memory=1 disk=1"), "admin host show (table)")

    # Update: state, capacity (simulated), traits, dedication.
    up = nubo(env, adm, "admin", "host", "update", hid, "--state", "disabled", "--vcpus", "16",
              "--traits", "", "--dedicated-tenant", "none", "--memory-ratio", "1.5",
              "-o", "json").json
    check_eq((up["state"], up["state_reason"], up["capacity"]["vcpus"], up["traits"],
              up["dedicated_tenant"], up["ratios"]["memory"]),
             ("disabled", "set by the operator", 16, [], None, 1.5), "admin host update")
    f = {x["field"]: x["value"] for x in nubo(env, adm, "admin", "host", "update", hid,
                                               "--dedicated-tenant", quiet).rows()}
    check_eq((f["state"], f["dedicated_tenant"]), ("disabled", quiet), "admin host update (table)")
    nubo(env, adm, "admin", "host", "update", hid, rc=2)
    nubo(env, adm, "admin", "host", "update", hid, "--state", "down", rc=2)
    nubo(env, adm, "admin", "host", "update", hid, "--cpu-ratio", "lots", rc=2)
    nubo(env, adm, "admin", "host", "update", "h-00000000000000000", "--state", "up", rc=3)

    # Evacuate: only a down or disabled host; an empty one moves nothing.
    r = nubo(env, adm, "admin", "host", "evacuate", hid2, rc=1)
    check("IncorrectState" in r.err, "evacuate an up host", r)
    ev = nubo(env, adm, "admin", "host", "evacuate", hid, "-o", "json").json
    check_eq(ev, {"host_id": hid, "instances": []}, "admin host evacuate --output json")
    out = nubo(env, adm, "admin", "host", "evacuate", hid).out
    check(f"host {hid}: 0 instances" in out, "admin host evacuate (table)", out)
    nubo(env, adm, "admin", "host", "evacuate", "h-00000000000000000", rc=3)

    # Delete: not while live instances are there (the fixture host runs the member's).
    env.set_instance_state([need("ids")[0]], "running")
    r = nubo(env, adm, "admin", "host", "delete", "h-0000000000000fa4e", rc=1)
    check("IncorrectState" in r.err, "delete a host with live instances", r)
    check_eq(nubo(env, adm, "admin", "host", "delete", hid, "-o", "json").json,
             {"deleted": True}, "admin host delete --output json")
    check(f"deleted host {hid2}" in nubo(env, adm, "admin", "host", "delete", hid2).out,
          "admin host delete (table)")
    r = nubo(env, adm, "admin", "host", "show", hid, rc=3)
    check("InvalidHostID.NotFound" in r.err, "a deleted host", r)
    nubo(env, adm, "admin", "host", "delete", hid, rc=3)
    check(not {hid, hid2} & {h["id"] for h in nubo(env, adm, "admin", "host", "list",
                                                    "-o", "json").json}, "hosts deleted")

    # A real host: its node token comes back once, in the answer to create only.
    real = nubo(env, adm, "admin", "host", "create", "cli-real", "--agent-url",
                "http://127.0.0.1:9", "--zone", "nubo-1a", "-o", "json").json
    check(re.fullmatch(re.escape(real["id"]) + r":[0-9a-f]{64}", real.get("node_token", "")),
          "node token of a real host", real)
    check_eq((real["simulated"], real["agent_url"], real["zone"]),
             (False, "http://127.0.0.1:9", "nubo-1a"), "a real host")
    check("node_token" not in nubo(env, adm, "admin", "host", "show", real["id"], "-o",
                                   "json").json, "node token shown again by show")
    check(real["node_token"] not in nubo(env, adm, "admin", "host", "list", "-o", "json").out,
          "node token shown again by list")
    r = nubo(env, adm, "admin", "host", "create", "cli-real2")
    f = {x["field"]: x["value"] for x in r.rows()}
    check(f.get("node_token", "").startswith(f["id"] + ":") and "shown this once" in r.err,
          "admin host create of a real host (table)", r)
    for h in (real["id"], f["id"]):
        nubo(env, adm, "admin", "host", "delete", h)

    # Usage and permission.
    nubo(env, adm, "admin", "host", "create", rc=2)
    nubo(env, adm, "admin", "host", "create", "x", "--vcpus", "-1", rc=2)
    nubo(env, adm, "admin", "host", "show", rc=2)
    nubo(env, adm, "admin", "host", "list", "extra", rc=2)
    nubo(env, adm, "admin", "host", "frobnicate", rc=2)
    r = nubo(env, need("alice"), "admin", "host", "list", rc=4)
    check("UnauthorizedOperation" in r.err, "a member lists hosts", r)


# --- configuration and errors ----------------------------------------------------------------


@tap.test
def test_auth_and_config_errors(env):
    a = need("member")
    e = creds_env(env, a, NUBO_SECRET_KEY="x" * 40)
    r = nubo(env, None, "region", "list", rc=4, environ=e)
    check("SignatureDoesNotMatch" in r.err, "wrong secret", r)
    e = creds_env(env, a, NUBO_ACCESS_KEY="NKIAAAAAAAAAAAAAAAAA")
    r = nubo(env, None, "region", "list", rc=4, environ=e)
    check("AuthFailure" in r.err, "unknown key", r)
    e = creds_env(env, a, NUBO_ACCESS_KEY=None, NUBO_SECRET_KEY=None)
    r = nubo(env, None, "region", "list", rc=4, environ=e)
    check("access key" in r.err, "no credentials", r)
    # AWS_* variables are a fallback.
    e.update({"AWS_ACCESS_KEY_ID": a.key_id, "AWS_SECRET_ACCESS_KEY": a.secret})
    nubo(env, None, "region", "list", environ=e)
    # Nobody listening: exit 5 (after the retries, which are quick to fail on loopback).
    port = nubo_env.free_port()
    r = nubo(env, a, "--endpoint", f"http://127.0.0.1:{port}", "region", "list", rc=5)
    check("could not reach" in r.err, "unreachable endpoint", r)
    nubo(env, a, "--endpoint", "ftp://x", "region", "list", rc=2)
    nubo(env, a, "region", "list", "--output", "yaml", rc=2)
    nubo(env, a, "frobnicate", rc=2)
    nubo(env, a, "instance", "list", "--bogus", rc=2)


@tap.test
def test_profiles(env):
    a, b = need("member"), need("other")
    cfg = env.tmp / "home/.config/nubo/config"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(f"# nubo profiles\n[default]\nendpoint = {env.endpoint}\n"
                   f"access_key = {a.key_id}\nsecret_key = {a.secret}\n\n"
                   f"[profile other]\nendpoint={env.endpoint}\naccess_key={b.key_id}\n"
                   f"secret_key={b.secret}\nregion=nubo-1\n")
    bare = {k: v for k, v in creds_env(env, a).items() if not k.startswith("NUBO_")}
    try:
        mine = nubo(env, None, "keypair", "list", "-o", "json", environ=bare).json
        check_eq([k["name"] for k in mine], ["cli-rsa"], "the default profile")
        theirs = nubo(env, None, "--profile", "other", "keypair", "list", "-o", "json",
                      environ=bare).json
        check_eq(theirs, [], "--profile other")
        # A named profile wins over the environment; without one the environment wins.
        e = creds_env(env, b)
        check_eq(nubo(env, None, "keypair", "list", "--profile", "default", "-o", "json",
                      environ=e).json, mine, "--profile over NUBO_* variables")
        check_eq(nubo(env, None, "keypair", "list", "-o", "json", environ=e).json, [],
                 "NUBO_* variables over the default profile")
        r = nubo(env, None, "--profile", "nope", "region", "list", rc=2, environ=bare)
        check("profile \"nope\" not found" in r.err, "unknown profile", r)
    finally:
        cfg.unlink()


# --- libnubo installed -----------------------------------------------------------------------


@tap.test(timeout=240)
def test_install_and_examples(env):
    build_sdk()
    prefix = Path(tempfile.mkdtemp(prefix="nubo-sdk-", dir=env.tmp))
    r = subprocess.run(["make", "-s", "-C", str(SDK), "install", f"PREFIX={prefix}"],
                       capture_output=True, text=True, timeout=120)
    check_eq(r.returncode, 0, f"make install\n{r.stdout}\n{r.stderr}")
    lib = prefix / "lib"
    for f in (f"libnubo.so.{VERSION}", "libnubo.so.0", "libnubo.so", "pkgconfig/nubo.pc"):
        check((lib / f).exists(), f"{f} installed", sorted(p.name for p in lib.rglob("*")))
    for f in ("include/nubo/nubo.h", "include/nubo/network.h", "bin/nubo",
              "share/man/man1/nubo.1",
              "share/bash-completion/completions/nubo"):
        check((prefix / f).exists(), f"{f} installed")
    so = subprocess.run(["objdump", "-p", str(lib / f"libnubo.so.{VERSION}")], capture_output=True,
                        text=True).stdout
    check(re.search(r"SONAME\s+libnubo\.so\.0\b", so), "SONAME", so[:2000])
    dyn = subprocess.run(["nm", "-D", "--defined-only", str(lib / f"libnubo.so.{VERSION}")],
                         capture_output=True, text=True).stdout
    exported = [x.split()[-1] for x in dyn.splitlines() if " T " in x]
    check(exported and all(s.startswith("nubo_") for s in exported),
          "only nubo_* symbols exported", [s for s in exported if not s.startswith("nubo_")])
    check("nubo_call" not in exported and "nubo_sigv4_authorization" not in exported,
          "private functions exported", exported)
    # DESTDIR stages under another root.
    stage = Path(tempfile.mkdtemp(prefix="nubo-stage-", dir=env.tmp))
    r = subprocess.run(["make", "-s", "-C", str(SDK), "install", "PREFIX=/usr",
                        f"DESTDIR={stage}"], capture_output=True, text=True, timeout=120)
    check_eq(r.returncode, 0, f"make install DESTDIR\n{r.stdout}\n{r.stderr}")
    check((stage / "usr/lib/libnubo.so.0").exists(), "DESTDIR install")
    check("prefix=/usr" in (stage / "usr/lib/pkgconfig/nubo.pc").read_text(), "nubo.pc prefix")

    penv = dict(os.environ, PKG_CONFIG_PATH=str(lib / "pkgconfig"))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "nubo"], capture_output=True,
                           text=True, env=penv)
    check_eq(flags.returncode, 0, f"pkg-config nubo: {flags.stderr}")
    out = {}
    for ex in ("list_instances", "launch_and_wait", "print_bill"):
        exe = prefix / ex
        cmd = ["cc", "-std=c17", "-Wall", "-Wextra", "-Werror", str(SDK / f"examples/{ex}.c"),
               "-o", str(exe)] + flags.stdout.split()
        r = subprocess.run(cmd, capture_output=True, text=True, env=penv, timeout=60)
        check_eq(r.returncode, 0, f"compile {ex} with pkg-config only: {' '.join(cmd)}\n"
                 f"{r.stderr}")
        out[ex] = exe
    run_env = creds_env(env, need("member"), LD_LIBRARY_PATH=str(lib))
    r = subprocess.run([str(out["list_instances"])], capture_output=True, text=True,
                       env=run_env, timeout=60)
    check_eq(r.returncode, 0, f"list_instances\n{r.stdout}\n{r.stderr}")
    check(need("ids")[0] in r.stdout and re.search(r"^\d+ instances$", r.stdout, re.M),
          "list_instances output", r.stdout)
    r = subprocess.run([str(out["launch_and_wait"]), need("image"), "t3.micro", "2"],
                       capture_output=True, text=True, env=run_env, timeout=60)
    check_eq(r.returncode, 2, f"launch_and_wait (times out at pending)\n{r.stdout}\n{r.stderr}")
    check("pending" in r.stdout and "gave up after 2 s" in r.stdout and "terminated" in r.stdout,
          "launch_and_wait output", r.stdout)
    r = subprocess.run([str(out["print_bill"])], capture_output=True, text=True, env=run_env,
                       timeout=60)
    check_eq(r.returncode, 0, f"print_bill\n{r.stdout}\n{r.stderr}")
    check(re.search(r"^Bill for \S+, period \d{4}-\d{2} ", r.stdout, re.M)
          and re.search(r"^Total so far: USD \d+\.\d{4}$", r.stdout, re.M),
          "print_bill output", r.stdout)
    ldd = subprocess.run(["ldd", str(out["launch_and_wait"])], capture_output=True, text=True,
                         env=run_env).stdout
    check(str(lib) in ldd, "the example uses the installed library", ldd)


# --- the SDK's SigV4 signer vs botocore's ------------------------------------------------------


@tap.test
def test_sigv4_same_as_botocore(env):
    build_sdk()
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    rng = random.Random(9)
    chars = "abcXYZ019-_.~ :/,+=&%é"

    def word(n):
        return "".join(rng.choice(chars) for _ in range(n))

    q = nubo_env.rest_query
    for n in range(25):
        method = rng.choice(["GET", "PUT", "POST", "DELETE"])
        path = "/v1/" + "/".join(nubo_env.urllib.parse.quote(word(rng.randint(1, 8)), safe="-_.~")
                                 for _ in range(rng.randint(1, 3)))
        query = q([(word(rng.randint(1, 5)), word(rng.randint(0, 6)))
                   for _ in range(rng.randint(0, 4))])
        body = json.dumps({"k": word(rng.randint(0, 20))}) if method in ("PUT", "POST") else ""
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(rng.randint(1e9, 2e9)))
        host = f"127.0.0.1:{rng.randint(1, 65535)}"
        key, secret = "NKIA" + word(16), word(40)
        region, service = rng.choice(["nubo-1", "us-east-1"]), rng.choice(["nubo", "ec2"])

        class Fixed(SigV4Auth):
            def add_auth(self, request):
                request.context["timestamp"] = amz_date
                self._modify_request_before_signing(request)
                cr = self.canonical_request(request)
                self._inject_signature_to_request(
                    request, self.signature(self.string_to_sign(request, cr), request))

        req = AWSRequest(method=method, url=f"http://{host}{path}" + (f"?{query}" if query else ""),
                         data=body.encode(),
                         headers={"Content-Type": "application/json"} if body else {})
        Fixed(Credentials(key, secret), service, region).add_auth(req)
        r = subprocess.run([str(SIGN), method, path, query, body, amz_date, host, key, secret,
                            region, service], capture_output=True, text=True)
        check_eq(r.returncode, 0, f"sigv4_sign: {r.stderr}")
        check_eq(r.stdout.strip(), req.headers["Authorization"],
                 f"libnubo's Authorization vs botocore's for {method} {path}?{query}")



@tap.test
def test_invoice_csv(env):
    """nubo invoice show --output csv prints the API's CSV byte for byte (the same as
    GET /v1/invoices/{id}?format=csv): usage events of closed hours, aggregated and invoiced by
    the real nubo-billing."""
    billing_bin = os.environ.get("NUBO_BILLING_BIN", str(REPO / "build/debug/bin/nubo-billing"))
    t = env.tenant("cli-csv")
    q = nubo_env.sql_quote
    end = env.psql1("SELECT date_trunc('hour', now()) - interval '1 hour'")
    start = env.psql1(f"SELECT {q(end)}::timestamptz - interval '2 hours'")
    period = env.psql1(f"SELECT billing_period_of({q(start)})")
    env.psql("INSERT INTO instance_events (at, instance_id, tenant_id, instance_type, to_state)"
             f" VALUES ({q(start)}, 'i-00000000000000c5f', {q(t.tenant_id)}, 't3.micro',"
             "          'running'),"
             f"        ({q(end)}, 'i-00000000000000c5f', {q(t.tenant_id)}, 't3.micro',"
             "          'terminated')")
    e = dict(os.environ, NUBO_DB_CONNINFO=env.conninfo, NUBO_BILLING_GRACE_S="0")
    for args in (["--aggregate"], ["--invoice", period]):
        r = subprocess.run([billing_bin, *args], capture_output=True, text=True, timeout=120,
                           env=e, cwd=REPO)
        check_eq(r.returncode, 0, f"nubo-billing {' '.join(args)}: {r.stderr}")
    invoices = nubo(env, t, "invoice", "list", "-o", "json").json
    check_eq(len(invoices), 1, f"one invoice: {invoices}")
    inv = invoices[0]["invoice_id"]
    rest = env.rest(t, "GET", f"/v1/invoices/{inv}", query={"format": "csv"})
    check_eq(rest.status, 200, f"the REST CSV: {rest}")
    # Bytes, not text: the CLI must not touch the API's line ends.
    p = subprocess.run([str(NUBO), "invoice", "show", inv, "--output", "csv"],
                       capture_output=True, env=creds_env(env, t), timeout=60)
    check_eq(p.returncode, 0, f"invoice show --output csv: {p.stderr!r}")
    check_eq(p.stdout, rest.body.encode(), "the CLI's CSV is the API's")
    check(p.stdout.startswith(b"invoice_id,tenant_id,period,state,currency,line_no"), p.stdout)
    check_eq(len(p.stdout.decode().splitlines()),
             1 + len(nubo(env, t, "invoice", "show", inv, "-o", "json").json["lines"]),
             "a header and one row per line")
    r = nubo(env, t, "-o", "csv", "invoice", "show", inv)  # the global option anywhere
    check_eq(r.out.replace("\n", "\r\n") if "\r\n" in rest.body else r.out,
             rest.body, "-o csv before the command")
    r = nubo(env, env.tenant("cli-csv-other"), "invoice", "show", inv, "--output", "csv", rc=3)
    check("InvalidInvoiceID.NotFound" in r.err, "another tenant's invoice", r)
    r = nubo(env, t, "invoice", "list", "--output", "csv", rc=2)
    check("no CSV output" in r.err, "CSV only where the API has it", r)
    nubo(env, t, "invoice", "show", inv, "--output", "xml", rc=2)


if __name__ == "__main__":
    tap.main()
