#!/usr/bin/python3
"""End-to-end: the `nubo` commands of console tickets and hosted VDI desktops (sdk/c/cli over
libnubo) against a real nubo-gateway with real VMs (compute_env: the busybox test guest under
QEMU, placed by nubo-scheduler, run by nubo-agent): vdi pool create, list, show, update,
desktops, users, grant, revoke and delete as the provider (a "listed" pool admits only the
users granted it); vdi connect (by id and by name, with --wait, and its
timeout), my-desktops, desktop show, console and sign-out as users of the desktop role, each
with an access key; instance console --vnc; in tables and in --output json, with their exit
codes (0 ok, 1 API error, 2 usage, 3 not found, 4 refused, 5 timed out). The URLs printed carry
live single-use tickets: each opens the VNC display once through the gateway's WebSocket proxy.
Prints TAP. Run: /usr/bin/python3 tests/e2e/test_cli_vdi.py"""

import sys

sys.dont_write_bytecode = True

import re  # noqa: E402
import time  # noqa: E402
import urllib.parse  # noqa: E402

import compute_env  # noqa: E402
import nubo_env  # noqa: E402
from nubo_env import Creds, TestFailure, check, check_eq  # noqa: E402
from test_cli import build_sdk  # noqa: E402
from test_cli_network import fields, nubo, tables  # noqa: E402
from vnc_client import VncClient, WsRefused  # noqa: E402

tap = nubo_env.Tap(__file__, per_test_timeout=300, fixture=compute_env.ComputeEnv)
S = {}  # state shared by the tests, in order


def need(key):
    if key not in S:
        raise TestFailure(f"needs '{key}' from an earlier test, which failed")
    return S[key]


def wait_for(what, fn, env, timeout=180, interval=1):
    """Polls fn() until it returns something true; returns it."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    check(False, f"{what}: not after {timeout} s (last: {last})", env.daemon_logs(40),
          env.gateway_log_tail(60))


def desktop_user(env, provider, name):
    """A user of 'provider' with the desktop role and an access key, made with the CLI."""
    u = nubo(env, env.admin, "admin", "user", "create", provider.tenant_id, name, "--role",
             "desktop", "-o", "json").json
    check_eq(u["role"], "desktop", "the new user's role")
    k = nubo(env, env.admin, "admin", "key", "create", u["user_id"], "-o", "json").json
    c = Creds(k["access_key_id"], k["secret_access_key"], provider.tenant_id, provider.name)
    c.user_id = u["user_id"]
    return c


def opens_once(env, ticket, what):
    """The ticket opens the screen once (an RFB handshake through the proxy), then never."""
    c = VncClient.open(env.gw_port, ticket["websocket"], origin=env.endpoint.rstrip("/"))
    try:
        width, height, _ = c.rfb_handshake()
        check(width > 0 and height > 0, f"{what}: the screen is {width}x{height}")
    finally:
        c.close()
    try:
        VncClient.open(env.gw_port, ticket["websocket"], origin=env.endpoint.rstrip("/")).close()
    except WsRefused as e:
        check_eq(e.status, 403, f"{what}: the ticket used again: {e}")
    else:
        check(False, f"{what}: the ticket opened the screen twice")


def check_url_ticket(env, url, instance_id, what):
    """'url' is the endpoint followed by the viewer page of a ticket for 'instance_id'; returns
    the ticket as the viewer page would use it ({"websocket": path})."""
    base = env.endpoint.rstrip("/")
    check(url.startswith(base + "/console/vnc.html?"), f"{what}: the viewer URL {url!r}")
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    check_eq(q.get("instance"), [instance_id], f"{what}: the URL's instance")
    check(re.fullmatch(r"[A-Za-z0-9_-]{43}", q.get("token", [""])[0]), f"{what}: token {q}")
    return {"websocket": f"/v1/console/websocket?token={q['token'][0]}"}


@tap.test(timeout=300)
def test_build_and_help(env):
    build_sdk()
    for group, verbs in (("vdi pool", ("create", "list", "show", "update", "delete",
                                       "desktops", "users", "grant", "revoke")),
                         ("vdi", ("connect", "my-desktops")),
                         ("vdi desktop", ("show", "console", "sign-out"))):
        g = nubo(env, None, *group.split(), "--help")
        for verb in verbs:
            check(re.search(rf"^  {verb}\s", g.out, re.M), f"'{verb}' in nubo {group} --help", g)
            h = nubo(env, None, *group.split(), verb, "--help")
            check(h.out.startswith(f"usage: nubo {group} {verb}"), f"help of {group} {verb}", h)
    g = nubo(env, None, "vdi", "--help")
    for sub in ("pool", "desktop"):
        check(re.search(rf"^  {sub}\s", g.out, re.M), f"'{sub}' in nubo vdi --help", g)
    h = nubo(env, None, "instance", "console", "--help")
    check("--vnc" in h.out, "instance console --help tells of --vnc", h)
    # Usage errors, before anything is sent (no credentials needed).
    for args in (("vdi", "pool", "create", "x"),  # --image, --type, --size
                 ("vdi", "pool", "create", "x", "--image", "ami-1", "--type", "t3.nano",
                  "--size", "0"),
                 ("vdi", "pool", "create", "--image", "ami-1", "--type", "t3.nano", "--size",
                  "1"),  # no name
                 ("vdi", "pool", "create", "x", "--image", "ami-1", "--type", "t3.nano",
                  "--size", "1", "--sg", "sg-1"),  # --sg needs --subnet
                 ("vdi", "pool", "update", "pool-1"),  # nothing to change
                 ("vdi", "pool", "update", "pool-1", "--idle-stop", "-1"),
                 ("vdi", "pool", "update", "pool-1", "--entitlement", "some"),
                 ("vdi", "pool", "create", "x", "--image", "ami-1", "--type", "t3.nano",
                  "--size", "1", "--entitlement", "everyone"),
                 ("vdi", "pool", "users"), ("vdi", "pool", "grant", "pool-1"),
                 ("vdi", "pool", "revoke", "pool-1", "user-1", "extra"),
                 ("vdi", "pool", "show"), ("vdi", "connect"),
                 ("vdi", "connect", "p", "--timeout", "0"),
                 ("vdi", "desktop", "console"), ("vdi", "desktop", "sign-out", "a", "b"),
                 ("vdi", "my-desktops", "x"), ("vdi", "desktop", "frobnicate"),
                 ("instance", "console", "i-1", "--vnc", "extra"),
                 ("instance", "list", "--output", "csv"), ("vdi", "pool", "list", "-o", "csv")):
        r = nubo(env, None, *args, rc=2)
        check("try 'nubo" in r.err, f"nubo {' '.join(args)}: a usage error", r)


@tap.test
def test_pools(env):
    image = env.guest_image()
    provider = env.tenant("cli-vdi-provider")
    other = env.tenant("cli-vdi-other")
    doc = nubo(env, provider, "vdi", "pool", "create", "office", "--image", image, "--type",
               "t3.nano", "--size", "2", "--spares", "1", "--idle-stop", "0", "--description",
               "the office", "-o", "json").json
    check(re.fullmatch(r"pool-[0-9a-f]{17}", doc["id"]), "pool id", doc)
    check_eq((doc["name"], doc["image_id"], doc["instance_type"], doc["size"], doc["spares"],
              doc["persistent"], doc["idle_stop_s"], doc["state"], doc["description"]),
             ("office", image, "t3.nano", 2, 1, False, 0, "active", "the office"), "created")
    pool = doc["id"]
    S.update(provider=provider, other=other, pool=pool, image=image)
    r = nubo(env, provider, "vdi", "pool", "create", "office", "--image", image, "--type",
             "t3.nano", "--size", "1", rc=1)
    check("InvalidPoolName.Duplicate" in r.err, "a name in use", r)
    r = nubo(env, provider, "vdi", "pool", "create", "big", "--image", image, "--type",
             "t3.nano", "--size", "1", "--spares", "2", rc=1)
    check("InvalidParameterValue" in r.err, "spares above the size", r)
    r = nubo(env, provider, "vdi", "pool", "create", "y", "--image", "ami-0000000000000dead",
             "--type", "t3.nano", "--size", "1", rc=3)
    check("InvalidAMIID.NotFound" in r.err, "an unknown image", r)

    rows = nubo(env, provider, "vdi", "pool", "list").rows()
    check_eq([(x["id"], x["name"], x["state"], x["size"], x["spares"], x["persistent"])
              for x in rows], [(pool, "office", "active", "2", "1", "no")], "pool list (table)")
    lst = nubo(env, provider, "vdi", "pool", "list", "-o", "json").json
    check_eq([x["id"] for x in lst], [pool], "pool list (json)")
    check_eq(nubo(env, other, "vdi", "pool", "list", "-o", "json").json, [],
             "another tenant lists none")
    f = fields(nubo(env, provider, "vdi", "pool", "show", pool))
    check_eq((f["id"], f["name"], f["image"], f["type"], f["size"], f["spares"],
              f["persistent"], f["idle_stop"], f["description"]),
             (pool, "office", image, "t3.nano", "2", "1", "no", "never", "the office"),
             "pool show (table)")
    r = nubo(env, other, "vdi", "pool", "show", pool, rc=3)
    check("InvalidPoolID.NotFound" in r.err, "another tenant's pool", r)
    nubo(env, provider, "vdi", "pool", "show", "pool-00000000000000000", rc=3)
    nubo(env, other, "vdi", "pool", "update", pool, "--size", "3", rc=3)

    doc = nubo(env, provider, "vdi", "pool", "update", pool, "--idle-stop", "900", "-o",
               "json").json
    check_eq((doc["size"], doc["spares"], doc["idle_stop_s"]), (2, 1, 900), "update --idle-stop")
    f = fields(nubo(env, provider, "vdi", "pool", "update", pool, "--idle-stop", "0"))
    check_eq((f["idle_stop"], f["size"]), ("never", "2"), "update (table)")
    r = nubo(env, provider, "vdi", "pool", "update", pool, "--spares", "3", rc=1)
    check("InvalidParameterValue" in r.err, "spares above the size", r)

    def one_running_spare():
        ds = nubo(env, provider, "vdi", "pool", "desktops", pool, "-o", "json").json
        run = [d for d in ds if d["state"] == "available" and d["instance_state"] == "running"]
        return run if len(run) == 1 else None

    spare = wait_for("the pool's running spare", one_running_spare, env)[0]
    check(re.fullmatch(r"dsk-[0-9a-f]{17}", spare["id"]), "desktop id", spare)
    rows = nubo(env, provider, "vdi", "pool", "desktops", pool).rows()
    check_eq([(x["id"], x["pool"], x["state"], x["instance"], x["instance_state"], x["user"],
               x["ready"]) for x in rows],
             [(spare["id"], "office", "available", spare["instance_id"], "running", "-", "no")],
             "pool desktops (table)")
    f = fields(nubo(env, provider, "vdi", "pool", "show", pool))
    check(f["desktops"].startswith("1 (1 running): 1 available"), "the counts", f)
    nubo(env, other, "vdi", "pool", "desktops", pool, rc=3)
    S["spare"] = spare


@tap.test
def test_connect_and_console(env):
    provider, pool, spare = need("provider"), need("pool"), need("spare")
    u1 = desktop_user(env, provider, "cli-vdi-user-1")
    u2 = desktop_user(env, provider, "cli-vdi-user-2")
    u3 = desktop_user(env, provider, "cli-vdi-user-3")
    # A desktop user sees which pools there are, nothing more, and may do nothing else.
    lst = nubo(env, u1, "vdi", "pool", "list", "-o", "json").json
    check_eq(lst, [{"id": pool, "name": "office", "description": "the office",
                    "persistent": False}], "a desktop user's pool list")
    rows = nubo(env, u1, "vdi", "pool", "list").rows()
    check_eq([(x["id"], x["name"], x["state"], x["size"]) for x in rows],
             [(pool, "office", "-", "-")], "a desktop user's pool list (table)")
    for args in (("vdi", "pool", "show", pool), ("vdi", "pool", "desktops", pool),
                 ("vdi", "pool", "update", pool, "--size", "5"),
                 ("vdi", "pool", "create", "mine", "--image", need("image"), "--type",
                  "t3.nano", "--size", "1"),
                 ("instance", "list"), ("instance", "console", spare["instance_id"], "--vnc")):
        r = nubo(env, u1, *args, rc=4)
        check("UnauthorizedOperation" in r.err, f"a desktop user: nubo {' '.join(args)}", r)
    check_eq(nubo(env, u1, "vdi", "my-desktops", "-o", "json").json, [], "no desktop yet")

    # By name, with --wait: the running spare, ready at once, and the URL of its console.
    r = nubo(env, u1, "vdi", "connect", "office", "--wait", "-o", "json", timeout=240)
    doc = r.json
    d = doc["desktop"]
    check_eq((d["id"], d["state"], d["user_id"], d["pool_id"], d["ready"], doc["ready"]),
             (spare["id"], "assigned", u1.user_id, pool, True, True), "connect --wait (json)")
    t = doc["console"]
    check_eq(t["instance_id"], spare["instance_id"], "the ticket's instance")
    check(t["expires_in"] > 0 and t["websocket"].startswith("/v1/console/websocket?token="),
          "the ticket", t)
    check_eq(t["viewer_url"], env.endpoint.rstrip("/") + t["viewer"], "viewer_url")
    check_eq(t["websocket_url"], env.endpoint.rstrip("/").replace("http://", "ws://", 1)
             + t["websocket"], "websocket_url")
    opens_once(env, t, "connect's ticket")

    # Again, as a table: the same desktop (the session in progress) and a new ticket.
    r = nubo(env, u1, "vdi", "connect", pool)
    f = fields(r)
    check_eq((f["id"], f["state"], f["ready"], f["user"], f["pool_name"]),
             (spare["id"], "assigned", "yes", u1.user_id, "office"), "connect again (table)")
    url = {x["field"]: x["value"] for x in tables(r)[1]}["viewer_url"]
    opens_once(env, check_url_ticket(env, url, spare["instance_id"], "connect (table)"),
               "connect's table URL")
    check("open the viewer URL within" in r.err, "how long it is valid", r)

    rows = nubo(env, u1, "vdi", "my-desktops").rows()
    check_eq([(x["id"], x["pool"], x["state"], x["ready"]) for x in rows],
             [(spare["id"], "office", "assigned", "yes")], "my-desktops (table)")
    f = fields(nubo(env, u1, "vdi", "desktop", "show", spare["id"]))
    check_eq((f["id"], f["pool"], f["state"], f["instance"], f["user"]),
             (spare["id"], pool, "assigned", spare["instance_id"], u1.user_id),
             "desktop show (table)")
    doc = nubo(env, u1, "vdi", "desktop", "show", spare["id"], "-o", "json").json
    check_eq((doc["id"], doc["ready"], doc["instance_state"]), (spare["id"], True, "running"),
             "desktop show (json)")

    # desktop console: the URL alone on stdout, a live ticket in it.
    r = nubo(env, u1, "vdi", "desktop", "console", spare["id"])
    check_eq(len(r.out.splitlines()), 1, f"one line: the URL\n{r}")
    ticket = check_url_ticket(env, r.out.strip(), spare["instance_id"], "desktop console")
    check("opens the console of" in r.err, "how long it is valid", r)
    opens_once(env, ticket, "desktop console")
    t = nubo(env, u1, "vdi", "desktop", "console", spare["id"], "-o", "json").json
    check_eq(sorted(t), sorted(["instance_id", "token", "expires_in", "websocket", "viewer",
                                "viewer_url", "websocket_url"]), "desktop console (json)")
    opens_once(env, t, "desktop console (json)")

    # Another user's desktop is not found; a second user gets a new desktop, not ready at
    # once (its instance is launched now); a third finds the pool full.
    for args in (("vdi", "desktop", "show", spare["id"]),
                 ("vdi", "desktop", "console", spare["id"]),
                 ("vdi", "desktop", "sign-out", spare["id"])):
        r = nubo(env, u2, *args, rc=3)
        check("InvalidDesktopID.NotFound" in r.err, f"another user's: {' '.join(args)}", r)
    r = nubo(env, u2, "vdi", "connect", pool, "-o", "json")
    d2 = r.json["desktop"]
    check(d2["id"] != spare["id"] and d2["state"] == "assigned", "a second desktop", r)
    check_eq((r.json["ready"], r.json["console"]), (False, None), "not ready: no ticket")
    check("is not ready yet" in r.err, "connect tells it is not ready", r)
    # Its instance was launched by the connect just above: booting takes seconds, so the wait's
    # first poll (at once) finds it not ready, and a 1 s limit has run out by the second.
    r = nubo(env, u2, "vdi", "connect", pool, "--wait", "--timeout", "1", rc=5)
    check("timed out" in r.err, "connect --wait --timeout 1 (exit 5)", r)
    r = nubo(env, u3, "vdi", "connect", "office", rc=5)
    check("InsufficientDesktopCapacity" in r.err, "the pool is full", r)
    r = nubo(env, u3, "vdi", "connect", "no-such-pool", rc=3)
    check("no pool named" in r.err, "an unknown pool name", r)
    nubo(env, u3, "vdi", "connect", "pool-00000000000000000", rc=3)
    r = nubo(env, u2, "vdi", "connect", pool, "--wait", timeout=240)
    f = fields(r)
    check_eq((f["id"], f["ready"], f["state"]), (d2["id"], "yes", "assigned"), "connect --wait")
    check(re.search(r"^viewer_url\s+http://", r.out, re.M), "connect --wait: its URL", r)

    # The provider sees both sessions, and watches a screen through the instance's own ticket.
    rows = nubo(env, provider, "vdi", "pool", "desktops", pool).rows()
    check_eq(sorted((x["id"], x["user"], x["ready"]) for x in rows),
             sorted([(spare["id"], u1.user_id, "yes"), (d2["id"], u2.user_id, "yes")]),
             "the provider's view")
    S.update(u1=u1, u2=u2, u3=u3, d2=d2)


@tap.test
def test_instance_console_vnc(env):
    provider, other, spare = need("provider"), need("other"), need("spare")
    iid = spare["instance_id"]
    r = nubo(env, provider, "instance", "console", iid, "--vnc")
    check_eq(len(r.out.splitlines()), 1, f"one line: the URL\n{r}")
    m = re.search(r"within (\d+) s", r.err)
    check(m and int(m.group(1)) > 0, "how long it is valid", r)
    opens_once(env, check_url_ticket(env, r.out.strip(), iid, "instance console --vnc"),
               "instance console --vnc")
    t = nubo(env, provider, "instance", "console", iid, "--vnc", "-o", "json").json
    check_eq((t["instance_id"], t["viewer_url"]), (iid, env.endpoint.rstrip("/") + t["viewer"]),
             "instance console --vnc (json)")
    check(t["expires_in"] > 0 and len(t["token"]) == 43, "the ticket", t)
    opens_once(env, t, "instance console --vnc (json)")
    # Each call is a new ticket; without --vnc, the serial console as before.
    t2 = nubo(env, provider, "instance", "console", iid, "--vnc", "-o", "json").json
    check(t2["token"] != t["token"], "a new ticket every time")
    serial = nubo(env, provider, "instance", "console", iid, "-o", "json").json
    check_eq(serial["instance_id"], iid, "instance console (serial)")
    check("output" in serial and "token" not in serial, "the serial console", serial)
    r = nubo(env, other, "instance", "console", iid, "--vnc", rc=3)
    check("InvalidInstanceID.NotFound" in r.err, "another tenant's instance", r)
    nubo(env, provider, "instance", "console", "i-00000000000000000", "--vnc", rc=3)


@tap.test(timeout=300)
def test_instance_image(env):
    """nubo instance image --wait on a real VM: its host saves the disk into the image store and
    the image is available; the same name again is refused."""
    provider, other, spare = need("provider"), need("other"), need("spare")
    iid = spare["instance_id"]
    t0 = time.monotonic()
    doc = nubo(env, provider, "instance", "image", iid, "--name", "cli-saved-desktop",
               "--description", "saved by test_cli_vdi", "--wait", "--timeout", "240", "-o",
               "json", timeout=280).json
    print(f"# instance image --wait: {time.monotonic() - t0:.1f} s", flush=True)
    check_eq((doc["name"], doc["state"], doc["description"]),
             ("cli-saved-desktop", "available", "saved by test_cli_vdi"), f"the image: {doc}")
    row = env.psql(f"SELECT state, store_key FROM images WHERE id = '{doc['id']}'")
    check(row and row[0][0] == "available" and row[0][1].startswith(f"images/{doc['id']}."),
          "the image's bytes are in the image store", row)
    shown = nubo(env, provider, "image", "show", doc["id"], "-o", "json").json
    check_eq((shown["id"], shown["state"]), (doc["id"], "available"), "image show")
    r = nubo(env, provider, "instance", "image", iid, "--name", "cli-saved-desktop", rc=1)
    check("InvalidAMIName.Duplicate" in r.err, "a second image of the same name", r)
    nubo(env, other, "image", "show", doc["id"], rc=3)
    nubo(env, provider, "image", "delete", doc["id"])


@tap.test
def test_sign_out(env):
    provider, spare, u1, u2 = need("provider"), need("spare"), need("u1"), need("u2")
    doc = nubo(env, u1, "vdi", "desktop", "sign-out", spare["id"], "-o", "json").json
    check_eq((doc["id"], doc["user_id"]), (spare["id"], None), "sign-out (json)")
    check(doc["state"] in ("resetting", "restarting", "available"), "reset after sign-out", doc)
    check_eq(nubo(env, u1, "vdi", "my-desktops", "-o", "json").json, [], "no desktop left")
    # A non-persistent desktop is no longer the user's at all.
    r = nubo(env, u1, "vdi", "desktop", "console", spare["id"], rc=3)
    check("InvalidDesktopID.NotFound" in r.err, "console after sign-out", r)
    # The provider signs a user out (table output).
    f = fields(nubo(env, provider, "vdi", "desktop", "sign-out", need("d2")["id"]))
    check_eq((f["id"], f["user"]), (need("d2")["id"], "-"), "the provider signs u2 out")
    check_eq(nubo(env, u2, "vdi", "my-desktops").out.strip().splitlines()[1:], [],
             "u2's desktops (table, empty)")
    # Signing out again does nothing.
    nubo(env, provider, "vdi", "desktop", "sign-out", spare["id"])


@tap.test
def test_entitlements(env):
    """vdi pool update --entitlement, users, grant and revoke: a listed pool is for the desktop
    users granted it; the others neither see it nor connect; revoking ends the session."""
    provider, other, pool, u1, u2 = need("provider"), need("other"), need("pool"), need("u1"), \
        need("u2")
    # One more desktop for u1's connect below: the two there are being reset after sign-out.
    doc = nubo(env, provider, "vdi", "pool", "update", pool, "--entitlement", "listed", "--size",
               "3", "-o", "json").json
    check_eq((doc["entitlement"], doc["size"]), ("listed", 3),
             "pool update --entitlement listed --size 3 (json)")
    check_eq(fields(nubo(env, provider, "vdi", "pool", "show", pool))["entitlement"], "listed",
             "pool show: the entitlement")
    g = nubo(env, provider, "vdi", "pool", "grant", "office", u1.user_id, "-o", "json").json
    check_eq((g["pool_id"], g["user_id"]), (pool, u1.user_id), "pool grant by name (json)")
    f = fields(nubo(env, provider, "vdi", "pool", "grant", pool, u1.user_id))
    check_eq((f["pool"], f["user_id"], f["granted"]), (pool, u1.user_id, g["granted_at"]),
             "granting again: the same grant (table)")
    rows = nubo(env, provider, "vdi", "pool", "users", pool).rows()
    check_eq([r["user_id"] for r in rows], [u1.user_id], "pool users (table)")
    lst = nubo(env, provider, "vdi", "pool", "users", "office", "-o", "json").json
    check_eq([x["user_id"] for x in lst], [u1.user_id], "pool users (json)")
    # u2 is not granted: no such pool to them.
    check_eq([p["name"] for p in nubo(env, u2, "vdi", "pool", "list", "-o", "json").json], [],
             "u2's pools")
    r = nubo(env, u2, "vdi", "connect", pool, rc=3)
    check("InvalidPoolID.NotFound" in r.err, "u2 connects to the listed pool", r)
    nubo(env, u2, "vdi", "connect", "office", rc=3)
    # Grants are for the tenant's desktop users; desktop users may not manage them.
    member = nubo(env, env.admin, "admin", "user", "create", provider.tenant_id, "cli-member",
                  "--role", "member", "-o", "json").json
    r = nubo(env, provider, "vdi", "pool", "grant", pool, member["user_id"], rc=1)
    check("InvalidParameterValue" in r.err, "granting a member user", r)
    stranger = nubo(env, env.admin, "admin", "user", "create", other.tenant_id, "cli-stranger",
                    "--role", "desktop", "-o", "json").json
    r = nubo(env, provider, "vdi", "pool", "grant", pool, stranger["user_id"], rc=3)
    check("InvalidUserID.NotFound" in r.err, "granting another tenant's user", r)
    r = nubo(env, u1, "vdi", "pool", "grant", pool, u1.user_id, rc=4)
    check("UnauthorizedOperation" in r.err, "a desktop user grants", r)
    # u1 connects; the revoke ends the session.
    d = nubo(env, u1, "vdi", "connect", "office", "-o", "json").json["desktop"]
    check_eq((d["state"], d["user_id"]), ("assigned", u1.user_id), "u1 connects")
    r = nubo(env, provider, "vdi", "pool", "revoke", "office", u1.user_id)
    check_eq(r.out.strip(), f"revoked pool {pool} from user {u1.user_id}", "pool revoke")
    check_eq(nubo(env, u1, "vdi", "my-desktops", "-o", "json").json, [],
             "u1's session ended with the revoke")
    nubo(env, provider, "vdi", "pool", "revoke", pool, u1.user_id)  # again: no error
    check_eq(nubo(env, provider, "vdi", "pool", "users", pool, "-o", "json").json, [],
             "no grants left")
    nubo(env, u1, "vdi", "connect", pool, rc=3)
    doc = nubo(env, provider, "vdi", "pool", "update", pool, "--entitlement", "all", "-o",
               "json").json
    check_eq(doc["entitlement"], "all", "open to all again")
    check_eq([p["name"] for p in nubo(env, u2, "vdi", "pool", "list", "-o", "json").json],
             ["office"], "u2 sees the pool again")


@tap.test
def test_pool_delete(env):
    provider, other, pool = need("provider"), need("other"), need("pool")
    nubo(env, other, "vdi", "pool", "delete", pool, rc=3)
    r = nubo(env, provider, "vdi", "pool", "delete", pool)
    check(r.out.startswith(f"deleting pool {pool} (office)"), "pool delete (table)", r)
    f = fields(nubo(env, provider, "vdi", "pool", "show", pool, rc=None))
    check(f.get("state") in (None, "deleting"), "deleting, or gone already", f)
    wait_for("the pool removed",
             lambda: nubo(env, provider, "vdi", "pool", "show", pool, rc=None).rc == 3, env)
    nubo(env, provider, "vdi", "pool", "delete", pool, rc=3)
    # A second pool, deleted with --output json before its spare is up.
    doc = nubo(env, provider, "vdi", "pool", "create", "lab", "--image", need("image"),
               "--type", "t3.nano", "--size", "1", "--persistent", "-o", "json").json
    check_eq((doc["persistent"], doc["spares"], doc["idle_stop_s"]), (True, 0, 1800),
             "the API's defaults")
    gone = nubo(env, provider, "vdi", "pool", "delete", doc["id"], "-o", "json").json
    check_eq((gone["id"], gone["state"]), (doc["id"], "deleting"), "pool delete (json)")


if __name__ == "__main__":
    tap.main()
