#!/usr/bin/python3
"""The web console's images, network, billing and operator pages end to end (docs/console.md),
in headless Chromium (Debian's /usr/bin/chromium) driven by Playwright (playwright-core from
npm, installed under build/node when missing), against a real nubo-gateway and PostgreSQL
(nubo_env; no compute: these pages need no VM).

One browser flow (tests/e2e/console/pages_flow.js) signs a tenant in, uploads an image with a
progress bar and shares it, makes a VPC, a subnet, a security group with rules, an elastic IP,
a VPN connection, a route table with a route and a subnet, and a remote-access endpoint with a
peer (its configuration downloaded) from the forms (errors of the API shown in the forms too),
reads the
usage chart and downloads an invoice as CSV, finds no Operator section, then signs the
operator in and reads the hosts, the request log and a quota. The tests after it check what
the browser did through the REST API. Screenshots of every step go to
build/<mode>/test-artifacts/console-pages/.

Run: /usr/bin/python3 tests/e2e/test_console_pages.py   (prints TAP)
"""

import sys

sys.dont_write_bytecode = True

import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import base64  # noqa: E402
import ipaddress  # noqa: E402

import nubo_env  # noqa: E402
from nubo_env import REPO, SkipTest, TestFailure, check, check_eq, sql_quote  # noqa: E402
from test_console import CHROMIUM, ensure_playwright  # noqa: E402

MODE = os.environ.get("MODE", "debug")
ARTIFACTS = Path(os.environ.get("NUBO_TEST_ARTIFACTS", REPO / "build" / MODE / "test-artifacts"))
OUT = ARTIFACTS / "console-pages"
FLOW = Path(__file__).resolve().parent / "console" / "pages_flow.js"
BILLING = os.environ.get("NUBO_BILLING_BIN", str(REPO / "build" / MODE / "bin" / "nubo-billing"))
UPLOAD_SIZE = 6 * 1024 * 1024 + 123  # several progress events' worth, not a round number

# The gateway serves the repository's console, and has public addresses for elastic IPs and
# VPN outside addresses.
os.environ["NUBO_CONSOLE_DIR"] = str(REPO / "web")
os.environ["NUBO_NETWORK_PUBLIC_POOL"] = "203.0.113.0/28"
os.environ.pop("NUBO_NETWORK_PUBLIC_GATEWAY", None)

tap = nubo_env.Tap(__file__, per_test_timeout=120)
S = {}  # state shared by the tests, in order


def need(key):
    if key not in S:
        raise TestFailure(f"needs '{key}' from an earlier test, which failed")
    return S[key]


def ok(r, status=200):
    check_eq(r.status, status, f"HTTP status of {r.method} {r.path}; response\n{r}")
    return r.json


def user_of(env, creds):
    """(user id, user name) of the user whose key 'creds' is."""
    row = env.psql("SELECT u.id, u.name FROM access_keys k JOIN users u ON u.id = k.user_id "
                   f"WHERE k.id = {sql_quote(creds.key_id)}")
    return row[0][0], row[0][1]


def set_password(env, user_id, password):
    ok(env.rest(env.admin, "PUT", f"/v1/admin/users/{user_id}/password", {"password": password}))


def billing(env, *args):
    e = dict(os.environ, NUBO_DB_CONNINFO=env.conninfo, NUBO_BILLING_GRACE_S="0")
    r = subprocess.run([BILLING, *args], capture_output=True, text=True, timeout=120, env=e,
                       cwd=REPO)
    check_eq(r.returncode, 0, f"nubo-billing {' '.join(args)}; stderr:\n{r.stderr}")


def wg_public_key(private_b64):
    """The WireGuard public key (base64) of a private key (base64), as `wg pubkey` gives it."""
    try:
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    except ImportError:
        r = subprocess.run(["wg", "pubkey"], input=private_b64 + "\n", capture_output=True,
                           text=True, timeout=10, check=True)
        return r.stdout.strip()
    raw = base64.b64decode(private_b64, validate=True)
    check_eq(len(raw), 32, "the private key's length")
    pub = X25519PrivateKey.from_private_bytes(raw).public_key()
    return base64.b64encode(pub.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def wg_conf(text):
    """A wg-quick file as {section: {key: value}} (each section once; comments left out)."""
    out, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            check(section not in out, f"section [{section}] twice", text)
            out[section] = {}
            continue
        key, eq, value = line.partition("=")
        check(eq and section, f"a line outside a section or without '=': {line!r}", text)
        out[section][key.strip()] = value.strip()
    return out


def snapshot(env, what, data):
    """What the REST API says of what the page made, read while it exists (CHECK)."""
    a = need("a")
    if what == "route-table":
        S["rtb_api"] = ok(env.rest(a, "GET", f"/v1/route-tables/{data['id']}"))
        S["rtb_of_subnet"] = ok(env.rest(a, "GET", "/v1/route-tables", query={
            "association.subnet-id": S["seen_subnet"]}))["route_tables"]
    elif what == "remote-access":
        S["ra_api"] = ok(env.rest(a, "GET", f"/v1/remote-access/{data['id']}"))
        S["ra_peers_api"] = ok(env.rest(a, "GET", f"/v1/remote-access/{data['id']}/peers"))["peers"]
    else:
        raise TestFailure(f"the flow asked to check {what!r}")


def fixed_vhd(data, size):
    """A fixed VHD of 'size' bytes (a multiple of 512) of 'data': the disk, then its footer."""
    f = bytearray(512)
    f[0:8] = b"conectix"
    struct.pack_into(">IIQI", f, 8, 2, 0x00010000, 0xFFFFFFFFFFFFFFFF, 0)
    f[28:32] = b"nubo"
    struct.pack_into(">I", f, 32, 0x00010000)
    f[36:40] = b"Wi2k"
    struct.pack_into(">QQHBBI", f, 40, size, size, size // (16 * 63 * 512), 16, 63, 2)
    f[68:84] = bytes(range(16))
    struct.pack_into(">I", f, 64, ~sum(f) & 0xFFFFFFFF)  # the checksum field is 0 here
    return data[:size] + bytes(f)


def play_imaged(env, task_id):
    """What nubo-imaged would do with an import task (it does not run here): take it, report
    progress, complete it; the page polls GET /v1/image-tasks/{id} meanwhile."""
    check(env.psql1(f"SELECT state FROM image_tasks WHERE id = {sql_quote(task_id)}") == "pending",
          f"the import task {task_id} is not pending")
    env.psql(f"UPDATE image_tasks SET state = 'active', progress = 40, updated_at = now() "
             f"WHERE id = {sql_quote(task_id)}")
    time.sleep(2.5)  # the page polls every second: it must see 40%
    env.psql(f"UPDATE image_tasks SET state = 'completed', progress = 100, status_message = "
             f"'done', updated_at = now() WHERE id = {sql_quote(task_id)}; "
             f"UPDATE images SET state = 'available' WHERE id = (SELECT image_id FROM image_tasks "
             f"WHERE id = {sql_quote(task_id)})")
    S["import_task"] = task_id


# --- set-up ----------------------------------------------------------------------------------


@tap.test
def accounts_usage_and_a_host(env):
    """Two tenants and the operator with console passwords; usage for tenant A aggregated and
    invoiced by the real nubo-billing; a simulated host for the operator's page."""
    a, b = env.tenant("pages-a"), env.tenant("pages-b")
    a_uid, a_user = user_of(env, a)
    admin_uid, admin_user = user_of(env, env.admin)
    admin_account = env.psql1(f"SELECT name FROM tenants WHERE id = {sql_quote(env.admin.tenant_id)}")
    S["a_pw"], S["admin_pw"] = "pages-a: correct horse", "operator: battery staple"
    set_password(env, a_uid, S["a_pw"])
    set_password(env, admin_uid, S["admin_pw"])
    S.update(a=a, b=b, a_user=a_user, admin_user=admin_user, admin_account=admin_account)

    # Three hours of a t3.micro run and one of a t3.small, all in closed hours of this month
    # when there are enough of them; else (the month's first hours) in the last month, and the
    # chart test says so.
    end = env.psql1("SELECT date_trunc('hour', now()) - interval '1 hour'")
    start = env.psql1(f"SELECT {sql_quote(end)}::timestamptz - interval '3 hours'")
    S["period"] = env.psql1(f"SELECT billing_period_of({sql_quote(start)})")
    S["this_month"] = env.psql1("SELECT billing_period_of(now())")
    t = sql_quote(a.tenant_id)
    env.psql(
        "INSERT INTO instance_events (at, instance_id, tenant_id, instance_type, to_state) VALUES"
        f" ({sql_quote(start)}, 'i-00000000000c0e2e1', {t}, 't3.micro', 'running'),"
        f" ({sql_quote(end)}, 'i-00000000000c0e2e1', {t}, 't3.micro', 'terminated'),"
        f" ({sql_quote(start)}::timestamptz + interval '2 hours', 'i-00000000000c0e2e2', {t},"
        "  't3.small', 'running'),"
        f" ({sql_quote(end)}, 'i-00000000000c0e2e2', {t}, 't3.small', 'terminated')")
    billing(env, "--aggregate")
    billing(env, "--invoice", S["period"])
    inv = ok(env.rest(a, "GET", "/v1/invoices"))["invoices"]
    check_eq(len(inv), 1, f"tenant A's invoices: {inv}")
    S["invoice_id"] = inv[0]["invoice_id"]

    # What A sees besides its own: a public image of the operator's, one B shares with it.
    S["public_image"] = env.image()
    shared = ok(env.rest(b, "POST", "/v1/images", {"name": "b-shares-this",
                                                    "source_format": "raw"}), 201)
    data = b"\0" * 4096
    ok(env.rest(b, "PUT", f"/v1/images/{shared['id']}/file", raw=data,
                headers={"Content-Type": "application/octet-stream",
                         "x-amz-content-sha256": hashlib.sha256(data).hexdigest()}))
    ok(env.rest(b, "PUT", f"/v1/images/{shared['id']}/launch-permissions",
                {"add": [a.tenant_id]}))
    S["shared_image"] = shared["id"]

    zone = ok(env.rest(env.admin, "GET", "/v1/zones"))["zones"][0]["name"]
    host = ok(env.rest(env.admin, "POST", "/v1/admin/hosts", {
        "name": "console-host-1", "zone": zone, "simulated": True, "vcpus": 16,
        "memory_mib": 65536, "disk_gib": 500}), 201)
    S["host_id"] = host["id"]


# --- the browser -----------------------------------------------------------------------------


@tap.test(timeout=300)
def browser_flow(env):
    if not Path(CHROMIUM).exists():
        raise SkipTest(f"{CHROMIUM} is not installed (Debian package chromium, make deps)")
    mod = ensure_playwright()
    a, b = need("a"), need("b")
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    upload = OUT / "upload.raw"
    # Raw bytes that no format check takes for a header: a repeated text pattern.
    pattern = b"nubo console upload test\n"
    upload.write_bytes((pattern * (UPLOAD_SIZE // len(pattern) + 1))[:UPLOAD_SIZE])
    S["upload_file"] = upload
    S["image_name"] = f"console-upload-{int(time.time())}"
    S["vhd_file"] = OUT / "import.vhd"
    S["vhd_file"].write_bytes(fixed_vhd(pattern * (2 * 1024 * 1024 // len(pattern) + 1),
                                        2 * 1024 * 1024))
    S["vhd_name"] = S["image_name"] + "-vhd"
    cfg = {
        "base": env.endpoint.rstrip("/"),
        "tenant": {"account": a.name, "user": S["a_user"], "password": S["a_pw"],
                   "id": a.tenant_id},
        "other_tenant_id": b.tenant_id,
        "operator": {"account": S["admin_account"], "user": S["admin_user"],
                     "password": S["admin_pw"]},
        "upload_file": str(upload), "upload_size": UPLOAD_SIZE, "image_name": S["image_name"],
        "vhd_file": str(S["vhd_file"]), "vhd_name": S["vhd_name"],
        "host_id": need("host_id"), "artifacts": str(OUT),
        "public_image": need("public_image"), "shared_image": need("shared_image"),
    }
    penv = dict(os.environ, CONSOLE_FLOW_CONFIG=json.dumps(cfg), NUBO_PLAYWRIGHT=str(mod),
                CHROMIUM=CHROMIUM)
    proc = subprocess.Popen(["node", str(FLOW)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=penv)
    lines, steps, done = [], {}, None
    try:
        for line in proc.stdout:
            line = line.rstrip("\n")
            lines.append(line)
            kind, _, rest = line.partition(" ")
            if kind == "STEP":
                name, _, extra = rest.partition(" ")
                steps[name] = json.loads(extra)
            elif kind == "IMPORTING":
                play_imaged(env, rest)
            elif kind == "SUBNET":
                r = env.rest(a, "POST", "/v1/instances", {
                    "image_id": need("public_image"), "instance_type": "t3.nano",
                    "subnet_id": rest, "tags": {"Name": "console-eip-target"}})
                check_eq(r.status, 201, f"launching into {rest}: {r}")
                S["instance_id"] = r.json["instances"][0]["id"]
                S["seen_subnet"] = rest
            elif kind == "CHECK":
                what, _, data = rest.partition(" ")
                snapshot(env, what, json.loads(data))
                proc.stdin.write("OK\n")
                proc.stdin.flush()
            elif kind == "DONE":
                done = json.loads(rest)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read()
    check(rc == 0 and done, f"the browser flow failed (exit {rc})", "\n".join(lines)[-4000:],
          stderr[-3000:], env.gateway_log_tail())
    for name in ("signed-in", "images-list", "upload-form", "upload-done", "image-listed",
                 "upload-duplicate-refused", "upload-wrong-format-refused", "image-shared", "import-started",
                 "import-progress", "import-done", "subnet-refused", "rules-added",
                 "rule-removed", "eip-allocated", "eip-needs-gateway", "eip-associated",
                 "eip-disassociated", "vpn-config-downloaded", "route-refused", "route-table",
                 "route-table-deleted", "remote-access-peer", "remote-access-deleted", "usage-chart",
                 "invoice-downloaded", "tenant-no-operator", "operator-hosts",
                 "operator-request-log", "operator-quota"):
        check(name in steps and Path(steps[name]["screenshot"]).stat().st_size > 1000,
              f"no screenshot of step {name}", sorted(steps))
    print("# " + ", ".join(f"{n} {s['t']:.1f} s" for n, s in steps.items()))
    print(f"# screenshots in {OUT}; upload progress seen: {done['progress']}")
    S["seen"] = done


# --- what the browser did, seen through the REST API ----------------------------------------


@tap.test
def uploaded_image_is_stored_and_shared(env):
    seen, a, b = need("seen"), need("a"), need("b")
    image_id = seen["image_id"]
    # The bar went up to 100 and ended there (the page saw the upload's progress events).
    progress = seen["progress"]
    check(progress and progress[-1] == 100 and all(x <= y for x, y in zip(progress, progress[1:])),
          "the progress bar's values", progress)
    m = ok(env.rest(a, "GET", f"/v1/images/{image_id}"))
    check_eq((m["name"], m["state"], m["owner_id"], m.get("size_bytes"), m.get("disk_format")),
             (S["image_name"], "available", a.tenant_id, UPLOAD_SIZE, "raw"), f"the image: {m}")
    r = env.rest(a, "GET", f"/v1/images/{image_id}/file")
    check(r.status == 200 and r.body.encode() == S["upload_file"].read_bytes(),
          f"the stored bytes differ from the file uploaded (HTTP {r.status}, {len(r.body)} bytes)")
    check("InvalidAMIName.Duplicate" in seen["upload_error"] or "already" in seen["upload_error"]
          or "Duplicate" in seen["upload_error"] or "in use" in seen["upload_error"],
          "the duplicate name's error in the form", seen["upload_error"])
    # The VHD went through an import task, which the page followed to its end.
    check_eq(seen["import_task"], need("import_task"), "the task the page followed")
    task = ok(env.rest(a, "GET", f"/v1/image-tasks/{seen['import_task']}"))
    vhd = ok(env.rest(a, "GET", f"/v1/images/{task['image_id']}"))
    check_eq((task["kind"], task["state"], vhd["name"]), ("import", "completed", S["vhd_name"]),
             f"the import: {task}")
    check(seen["import_progress"][-1] == 100 and 40 in seen["import_progress"],
          "the import bar's values", seen["import_progress"])
    check("qcow2" in seen["bad_format_error"], "the wrong format's error in the form",
          seen["bad_format_error"])
    bad = env.psql1("SELECT string_agg(state, ',') FROM images WHERE name = "
                    f"{sql_quote(S['image_name'] + '-bad')}")
    check_eq(bad, "deregistered", "the record of the refused upload")
    perms = ok(env.rest(a, "GET", f"/v1/images/{image_id}/launch-permissions"))
    check_eq((perms["tenants"], perms["public"]), ([b.tenant_id], False), "launch permissions")
    ids = [x["id"] for x in ok(env.rest(b, "GET", "/v1/images"))["images"]]
    check(image_id in ids, "tenant B does not see the image shared with it", ids)
    c = env.tenant("pages-c")
    ids = [x["id"] for x in ok(env.rest(c, "GET", "/v1/images"))["images"]]
    check(image_id not in ids, "a third tenant sees the image", ids)
    logged = env.psql1("SELECT count(*) FROM request_log WHERE tenant_id = "
                       f"{sql_quote(a.tenant_id)} AND access_key_id LIKE 'console:%' AND action = "
                       f"{sql_quote(f'PUT /v1/images/{image_id}/file')} AND http_status = 200")
    check_eq(logged, "1", "the console's upload in the request log")


@tap.test
def network_from_the_forms(env):
    seen, a = need("seen"), need("a")
    vpc = ok(env.rest(a, "GET", f"/v1/vpcs/{seen['vpc_id']}"))
    check_eq((vpc["cidr_block"], vpc["tags"].get("Name")), ("10.77.0.0/16", "console-vpc"),
             f"the VPC: {vpc}")
    subnets = ok(env.rest(a, "GET", "/v1/subnets", query={"vpc-id": seen["vpc_id"]}))["subnets"]
    check_eq([(s["id"], s["cidr_block"]) for s in subnets], [(seen["subnet_id"], "10.77.1.0/24")],
             "the VPC's subnets (the refused one is not there)")
    check(seen["subnet_error"].strip(), "no error shown for a subnet outside the VPC")
    g = ok(env.rest(a, "GET", f"/v1/security-groups/{seen['group_id']}"))
    check_eq((g["name"], g["vpc_id"]), ("console-web", seen["vpc_id"]), f"the group: {g}")
    ingress = sorted((r["protocol"], r.get("from_port"), r.get("to_port"), r.get("cidr"))
                     for r in g["rules"] if r["direction"] == "ingress")
    check_eq(ingress, [("tcp", 443, 443, "203.0.113.0/24")],
             "ingress rules after adding 443 and 8080 and removing 8080")
    # Two allocated, one released; the other associated with the instance, then disassociated.
    addrs = ok(env.rest(a, "GET", "/v1/addresses"))["addresses"]
    check_eq([(x["id"], x["public_ip"], x.get("association_id")) for x in addrs],
             [(seen["eip"]["id"], seen["eip"]["ip"], None)],
             "the elastic IPs after the page released one and disassociated the other")
    check_eq(seen["instance_id"], need("instance_id"), "the instance offered for the address")
    inst = ok(env.rest(a, "GET", f"/v1/instances/{seen['instance_id']}"))
    check_eq(seen["eip_private_ip"], inst["private_ip"], "the private IP the page showed")
    check("Gateway.NotAttached" in seen["associate_error"] or "internet gateway"
          in seen["associate_error"].lower(), "the error shown without an internet gateway",
          seen["associate_error"])
    done = {x[0]: x[1] for x in env.psql(
        "SELECT action, http_status FROM request_log WHERE access_key_id LIKE 'console:%' AND "
        f"tenant_id = {sql_quote(a.tenant_id)} AND action LIKE 'POST /v1/addresses/%'"
        " AND error_code IS NULL")}
    eip = seen["eip"]["id"]
    check(done.get(f"POST /v1/addresses/{eip}/associate") == "200"
          and done.get(f"POST /v1/addresses/{eip}/disassociate") == "200",
          "the page's associate and disassociate in the request log", done)
    igws = ok(env.rest(a, "GET", "/v1/internet-gateways"))["internet_gateways"]
    check_eq([g["vpc_id"] for g in igws], [seen["vpc_id"]], "the internet gateway from the page")
    vpn = ok(env.rest(a, "GET", f"/v1/vpn-connections/{seen['vpn_id']}"))
    got = Path(seen["vpn_config_file"]).read_text()
    check(vpn["customer_gateway_configuration"] and got == vpn["customer_gateway_configuration"],
          "the configuration downloaded is not the API's", got[:500])
    check_eq(Path(seen["vpn_config_file"]).name, f"{seen['vpn_id']}.xml", "the download's name")


def console_deletions(env, tenant, path):
    """{action: HTTP status} of the successful DELETEs of 'path' and below that the console's
    sessions of 'tenant' made, from the request log."""
    return {x[0]: x[1] for x in env.psql(
        "SELECT action, http_status FROM request_log WHERE access_key_id LIKE 'console:%' AND "
        f"tenant_id = {sql_quote(tenant.tenant_id)} AND action LIKE "
        f"{sql_quote('DELETE ' + path + '%')} AND error_code IS NULL")}


@tap.test
def route_table_from_the_page(env):
    seen, a = need("seen"), need("a")
    rtb, api = seen["rtb"], need("rtb_api")
    vpc = seen["vpc_id"]
    # The VPC's main table was listed as main; the one made is not, in the VPC, named.
    main = ok(env.rest(a, "GET", "/v1/route-tables", query={"vpc-id": vpc,
                                                            "association.main": "true"}))
    check_eq([t["id"] for t in main["route_tables"]], [seen["main_rtb"]], "the VPC's main table")
    check_eq((api["vpc_id"], api["main"], api["tags"].get("Name")), (vpc, False, "console-rtb"),
             f"the table: {api}")
    check("console-rtb" in rtb["name"], "the table's name on the page", rtb["name"])
    # The page's routes are the API's, in order: the local route, then 0.0.0.0/0 via the IGW.
    check_eq(rtb["routes"], [{"destination": r["destination"], "target": r["gateway_id"],
                              "state": r["state"]} for r in api["routes"]], "the routes shown")
    check_eq(rtb["count"], len(api["routes"]), "the routes count shown")
    check_eq([(r["destination"], r["gateway_id"]) for r in api["routes"]],
             [("10.77.0.0/16", "local"), ("0.0.0.0/0", seen["igw_id"])], "the table's routes")
    igw = [g["id"] for g in ok(env.rest(a, "GET", "/v1/internet-gateways"))["internet_gateways"]
           if g["vpc_id"] == vpc]
    vgw = [g["id"] for g in ok(env.rest(a, "GET", "/v1/vpn-gateways"))["vpn_gateways"]
           if g.get("vpc_id") == vpc and g.get("state") != "deleted"]
    check_eq(sorted(seen["route_targets"]), sorted(igw + vgw),
             "the targets offered (the gateways attached to the VPC)")
    check("local route" in seen["route_error"], "the error of a route inside the VPC",
          seen["route_error"])
    # The subnet is associated with it, by the association the page showed.
    check_eq([(x["id"], x["subnet_id"], x["main"]) for x in api["associations"]],
             [(rtb["association"], seen["subnet_id"], False)], "the table's associations")
    check_eq(rtb["subnets"], [seen["subnet_id"]], "the associated subnets shown")
    check_eq([t["id"] for t in need("rtb_of_subnet")], [rtb["id"]], "the subnet's table")
    # Then disassociated, the route removed and the table deleted from the page.
    r = env.rest(a, "GET", f"/v1/route-tables/{rtb['id']}")
    check_eq((r.status, r.error_code), (400, "InvalidRouteTableID.NotFound"),
             f"the deleted table: {r}")
    done = console_deletions(env, a, f"/v1/route-tables/{rtb['id']}")
    check_eq(done, {f"DELETE /v1/route-tables/{rtb['id']}/associations/{rtb['association']}":
                    "204", f"DELETE /v1/route-tables/{rtb['id']}/routes": "200",
                    f"DELETE /v1/route-tables/{rtb['id']}": "204"},
             "the page's disassociate, route removal and delete in the request log")


@tap.test
def remote_access_from_the_page(env):
    seen, a = need("seen"), need("a")
    ra, ep, peers = seen["ra"], need("ra_api"), need("ra_peers_api")
    check_eq((ep["vpc_id"], ep["client_cidr"], ep["description"], ep["peers"]),
             (seen["vpc_id"], "100.64.8.0/24", "console-ra", 1), f"the endpoint: {ep}")
    check_eq([(p["id"], p["name"], p["address"]) for p in peers],
             [(ra["peer"], "console-laptop", ra["peer_address"])], "the endpoint's peers")
    peer = peers[0]
    # The file downloaded is what the page showed, named after the peer, and says so once.
    got = Path(ra["config_file"]).read_text()
    check_eq(Path(ra["config_file"]).name, "console-laptop.conf", "the download's name")
    check_eq(got, ra["shown"], "the file downloaded and the configuration shown")
    check("this once" in ra["note"], "the page does not say the configuration is shown once",
          ra["note"])
    check(ra["config_after_reopen"] == "" and not ra["box_after_reopen"],
          "the configuration is still in the page after the dialog was closed")
    conf = wg_conf(got)
    check_eq(sorted(conf), ["Interface", "Peer"], "the configuration's sections")
    # [Interface]: a private key whose public key is the peer's as the API has it, and the
    # peer's address in the client CIDR.
    check_eq(wg_public_key(conf["Interface"]["PrivateKey"]), peer["public_key"],
             "the public key of the configuration's PrivateKey")
    check_eq(conf["Interface"]["Address"], f"{peer['address']}/32", "[Interface] Address")
    check(ipaddress.ip_address(peer["address"]) in ipaddress.ip_network(ep["client_cidr"]),
          "the peer's address is outside the client CIDR", peer, ep)
    # [Peer]: the endpoint as GET answers it.
    check_eq((conf["Peer"]["PublicKey"], conf["Peer"]["Endpoint"], conf["Peer"]["AllowedIPs"]),
             (ep["public_key"], f"{ep['outside_ip']}:{ep['listen_port']}", ep["vpc_cidr"]),
             "the [Peer] section")
    check_eq(ep["vpc_cidr"], "10.77.0.0/16", "the endpoint's VPC CIDR")
    # Byte for byte the API's configuration but for the private key filled in.
    want = "\n".join(f"PrivateKey = {conf['Interface']['PrivateKey']}"
                     if line.startswith("PrivateKey = ") else line
                     for line in peer["client_config"].split("\n"))
    check_eq(got, want, "the configuration against the API's client_config")
    check(conf["Interface"]["PrivateKey"] not in json.dumps(peers),
          "the API knows the private key")
    # The peer, then the endpoint, deleted from the page.
    r = env.rest(a, "GET", f"/v1/remote-access/{ra['id']}")
    check_eq((r.status, r.error_code), (400, "InvalidRemoteAccessEndpointID.NotFound"),
             f"the deleted endpoint: {r}")
    done = console_deletions(env, a, f"/v1/remote-access/{ra['id']}")
    check_eq(done, {f"DELETE /v1/remote-access/{ra['id']}/peers/{ra['peer']}": "204",
                    f"DELETE /v1/remote-access/{ra['id']}": "204"},
             "the page's peer and endpoint deletions in the request log")


@tap.test
def usage_chart_matches_the_api(env):
    seen, a = need("seen"), need("a")
    usage = ok(env.rest(a, "GET", "/v1/usage"))
    chart = seen["chart"]
    bars = {(x["meter"], x["sku"]): x for x in chart["bars"]}
    check_eq(sorted(bars), sorted((m["meter"], m["sku"]) for m in usage["meters"]),
             "one bar per line of GET /v1/usage")
    if S["period"] != S["this_month"]:
        print("# the usage was seeded in the last month (this month has too few closed hours):"
              " the bars' heights are checked against whatever this month has")
    else:
        meters = {m["sku"]: m for m in usage["meters"] if m["meter"] == "instance-running"}
        check_eq((meters["t3.micro"]["quantity"], meters["t3.small"]["quantity"]),
                 ("10800", "3600"), f"the seeded usage: {usage}")
    plot_h = chart["plot_bottom"] - chart["plot_top"]
    amounts = [m["amount_micros"] or 0 for m in usage["meters"]]
    check(chart["scale_top"] >= max(amounts) > 0, "the chart's scale", chart, usage)
    for m in usage["meters"]:
        bar = bars[(m["meter"], m["sku"])]
        check_eq(bar["amount"], m["amount_micros"] or 0, f"the bar of {m['meter']} {m['sku']}")
        want = (m["amount_micros"] or 0) / chart["scale_top"] * plot_h
        check(abs(bar["height"] - want) < 0.01 and abs(bar["y"] + bar["height"]
                                                       - chart["plot_bottom"]) < 0.01,
              f"the bar of {m['meter']} {m['sku']} is {bar['height']} high, not {want}", bar)
    # Two different amounts draw two different heights, in their ratio on the screen too.
    drawn = sorted((b for b in chart["bars"] if b["amount"] > 0), key=lambda b: b["amount"])
    if len(drawn) >= 2:
        lo, hi = drawn[0], drawn[-1]
        check(abs(lo["screen_height"] / hi["screen_height"] - lo["amount"] / hi["amount"]) < 0.02,
              "the bars' screen heights are not in the ratio of their amounts", drawn)


@tap.test
def invoice_csv_downloaded(env):
    seen, a = need("seen"), need("a")
    check_eq(seen["invoice_id"], S["invoice_id"], "the invoice listed")
    r = env.rest(a, "GET", f"/v1/invoices/{S['invoice_id']}", query={"format": "csv"})
    check_eq(r.status, 200, f"the CSV through the API: {r}")
    got = Path(seen["invoice_csv_file"]).read_bytes()
    check_eq(got, r.body.encode(), "the CSV downloaded in the browser")
    check(got.startswith(b"invoice_id,tenant_id,period,state,currency,line_no")
          and S["invoice_id"].encode() in got, "the CSV's content", got[:300])
    check_eq(Path(seen["invoice_csv_file"]).name, f"{S['invoice_id']}.csv", "the download's name")


@tap.test
def operator_pages_and_tenant_refusals(env):
    seen, a = need("seen"), need("a")
    # The tenant's session was refused /v1/admin by the gateway, not only hidden by the page.
    call = seen["tenant_admin_call"]
    check_eq((call["status"], call["body"]["error"]["code"]), (403, "UnauthorizedOperation"),
             "GET /v1/admin/hosts with the tenant's session")
    r = env.rest(a, "GET", "/v1/admin/requests")
    check_eq((r.status, r.error_code), (403, "UnauthorizedOperation"),
             f"GET /v1/admin/requests signed by the tenant: {r}")
    # Its capacity as the scheduler may hand it out: 16 vCPUs at the default ratio of 4.
    check("console-host-1" in seen["host_row"] and "0 / 64" in seen["host_row"]
          and "64.0 GiB" in seen["host_row"] and "500 GiB" in seen["host_row"],
          "the host's row", seen["host_row"])
    row = env.reqlog_row(seen["request_row"]["id"])
    check(row and row["action"] == "POST /v1/vpcs" and row["tenant_id"] == a.tenant_id
          and row["access_key_id"].startswith("console:"),
          "the request log row the operator saw is not the tenant's VPC", row)
    # The prices the page showed are the plan's (GET /v1/admin/prices, admin only).
    plans = ok(env.rest(env.admin, "GET", "/v1/admin/prices"))["plans"]
    prices = [(p, x) for p in plans for x in p["prices"]]
    check_eq(seen["prices"]["rows"], len(prices), "the price rows on the page")
    nano = [x for p, x in prices if p["current"] and x["meter"] == "instance-running"
            and x["sku"] == "t3.nano"]
    check(len(nano) == 1 and f"{nano[0]['price_micros'] / 1e6:.6f}" in seen["prices"]["t3_nano"]
          and "hour" in seen["prices"]["t3_nano"], "the t3.nano price on the page",
          seen["prices"], nano)
    check_eq(sum(p["current"] for p in plans), 1, "plans in effect")
    r = env.rest(a, "GET", "/v1/admin/prices")
    check_eq((r.status, r.error_code), (403, "UnauthorizedOperation"), f"prices as a tenant: {r}")
    quota = ok(env.rest(env.admin, "GET", f"/v1/admin/tenants/{a.tenant_id}/quota"))
    check_eq(quota["max_instances"], 33, "the quota saved from the page")
    check(seen["quota_error"].strip(), "no error shown for a negative quota")
    check(quota["max_vcpus"] >= 0, "the refused quota was saved", quota)


if __name__ == "__main__":
    tap.main()
