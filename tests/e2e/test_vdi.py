#!/usr/bin/python3
"""Hosted VDI desktops end to end, with real VMs (the busybox test guest under QEMU, placed by
nubo-scheduler, run by nubo-agent): a provider's desktop pools keep their spares running; the
provider's desktop users connect through the broker and get distinct desktops and console
tickets; a pool never grows past its size; signing out of a non-persistent desktop restarts its
instance with its root disk recreated from the image; a persistent pool gives a user back the
same desktop; an idle desktop is signed out and stopped, and connect starts it again; desktop
users are refused everything but the broker, on the REST and the EC2 API; desktop-hours are
metered per user and aggregated by the real nubo-billing into the provider's usage. Prints TAP.
Run: /usr/bin/python3 tests/e2e/test_vdi.py"""

import sys

sys.dont_write_bytecode = True

import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import compute_env  # noqa: E402
import nubo_env  # noqa: E402
from nubo_env import REPO, Creds, TestFailure, check, check_eq, sql_quote  # noqa: E402
from vnc_client import VncClient  # noqa: E402

BILLING = os.environ.get("NUBO_BILLING_BIN", str(REPO / "build/debug/bin/nubo-billing"))

tap = nubo_env.Tap(__file__, per_test_timeout=300, fixture=compute_env.ComputeEnv)
S = {}


def need(key):
    if key not in S:
        raise TestFailure(f"needs '{key}' from an earlier test, which failed")
    return S[key]


def ok(r, status=200):
    check_eq(r.status, status, f"HTTP status of {r.method} {r.path}; response\n{r}")
    return r.json


def wait_for(what, fn, timeout=150, env=None, interval=0.5):
    """Polls fn() until it returns something true; returns it."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    check(False, f"{what}: not after {timeout} s (last: {last})",
          env.daemon_logs(40) if env else "", env.gateway_log_tail(60) if env else "")


def sign_in(env, account, user, password):
    """POST /v1/session (docs/console.md); returns (response, cookie, session doc)."""
    status, rh, body = env.http("POST", "/v1/session", json.dumps(
        {"account": account, "user": user, "password": password}),
        {"Content-Type": "application/json", "User-Agent": nubo_env.USER_AGENT})
    r = nubo_env.RestResponse(status, rh, body, "POST", "/v1/session")
    return r, rh.get("set-cookie", "").split(";")[0] or None, r.json


def call(env, cookie, method, path, body=None, csrf=None):
    """A REST call as the web console makes it: the session cookie, the CSRF token if given."""
    h = {"User-Agent": nubo_env.USER_AGENT, "Cookie": cookie}
    if csrf:
        h["X-CSRF-Token"] = csrf
    data = None
    if body is not None:
        data = json.dumps(body)
        h["Content-Type"] = "application/json"
    status, rh, text = env.http(method, path, body=data, headers=h)
    return nubo_env.RestResponse(status, rh, text, method, path)


def desktop_user(env, provider, name):
    """A user of 'provider' with the desktop role and an access key."""
    u = ok(env.rest(env.admin, "POST", f"/v1/admin/tenants/{provider.tenant_id}/users",
                    {"name": name, "role": "desktop"}), 201)
    check_eq(u["role"], "desktop", f"the new user's role: {u}")
    k = ok(env.rest(env.admin, "POST", f"/v1/admin/users/{u['user_id']}/keys"), 201)
    c = Creds(k["access_key_id"], k["secret_access_key"], provider.tenant_id, provider.name)
    c.user_id = u["user_id"]
    return c


def pool_desktops(env, creds, pool_id):
    return ok(env.rest(creds, "GET", f"/v1/vdi/pools/{pool_id}/desktops"))["desktops"]


def running_spares(env, creds, pool_id):
    return [d for d in pool_desktops(env, creds, pool_id)
            if d["state"] == "available" and d["instance_state"] == "running"]


def wait_ready(env, creds, desktop_id, timeout=150):
    return wait_for(f"desktop {desktop_id} ready",
                    lambda: (lambda d: d if d["ready"] else None)(
                        ok(env.rest(creds, "GET", f"/v1/vdi/desktops/{desktop_id}"))),
                    timeout, env)


def instance_row(env, iid):
    return env.psql(f"SELECT state, reset_root FROM instances WHERE id = {sql_quote(iid)}")[0]


def transitions(env, iid):
    return [r[0] for r in env.psql("SELECT to_state FROM instance_events WHERE instance_id = "
                                   f"{sql_quote(iid)} ORDER BY id")]


@tap.test
def pool_keeps_its_spares_running(env):
    image = env.guest_image()
    provider = env.tenant("vdi-provider")
    r = env.rest(provider, "POST", "/v1/vdi/pools",
                 {"name": "office", "image_id": image, "instance_type": "t3.nano", "size": 3,
                  "spares": 2, "persistent": False, "idle_stop_s": 0})
    pool = ok(r, 201)
    check(pool["id"].startswith("pool-") and len(pool["id"]) == 22, f"pool id: {pool}")
    check_eq((pool["size"], pool["spares"], pool["persistent"], pool["state"]),
             (3, 2, False, "active"), f"the pool: {pool}")
    # Spares above the size, a duplicate name, an unknown image: refused.
    for body, code in (({"name": "x", "image_id": image, "instance_type": "t3.nano",
                         "size": 1, "spares": 2, "persistent": False},
                        "InvalidParameterValue"),
                       ({"name": "office", "image_id": image, "instance_type": "t3.nano",
                         "size": 1, "persistent": False}, "InvalidPoolName.Duplicate"),
                       ({"name": "y", "image_id": "ami-0000000000000dead",
                         "instance_type": "t3.nano", "size": 1, "persistent": False},
                        "InvalidAMIID.NotFound")):
        r = env.rest(provider, "POST", "/v1/vdi/pools", body)
        check_eq((r.status, r.error_code), (400, code), f"{body}: {r}")

    spares = wait_for("two running spares",
                      lambda: (lambda s: s if len(s) == 2 else None)(
                          running_spares(env, provider, pool["id"])), 180, env)
    for d in spares:
        tags = env.psql1(f"SELECT tags::text FROM instances WHERE id = "
                         f"{sql_quote(d['instance_id'])}")
        check(pool["id"] in tags and d["id"] in tags, f"the instance's tags: {tags}")
    got = ok(env.rest(provider, "GET", f"/v1/vdi/pools/{pool['id']}"))
    check_eq((got["desktops"]["available"], got["desktops"]["total"],
              got["desktops"]["running"]), (2, 2, 2), f"the pool's counts: {got}")
    S.update(provider=provider, pool=pool["id"], spares={d["id"] for d in spares})


@tap.test
def three_users_get_three_desktops_and_tickets(env):
    provider, pool, spares = need("provider"), need("pool"), need("spares")
    users = [desktop_user(env, provider, f"vdi-user-{n}") for n in (1, 2, 3)]
    desktops = []
    for u in users:
        doc = ok(env.rest(u, "POST", f"/v1/vdi/pools/{pool}/connect"))
        d = doc["desktop"]
        check_eq((d["state"], d["user_id"], d["pool_id"]), ("assigned", u.user_id, pool),
                 f"connect: {doc}")
        check_eq(doc["ready"], d["instance_state"] == "running", f"ready: {doc}")
        desktops.append(d)
    ids = [d["id"] for d in desktops]
    check_eq(len(set(ids)), 3, f"three distinct desktops: {ids}")
    check(set(ids[:2]) == spares, f"the first two users got the spares {spares}: {ids}")
    check(ids[2] not in spares, f"the third desktop was provisioned: {ids}")
    # Connecting again gives the same desktop (the session in progress).
    again = ok(env.rest(users[0], "POST", f"/v1/vdi/pools/{pool}/connect"))["desktop"]
    check_eq(again["id"], ids[0], "a second connect of the same user")

    for u, d in zip(users, desktops):
        wait_ready(env, u, d["id"])
        t = ok(env.rest(u, "POST", f"/v1/vdi/desktops/{d['id']}/console"), 201)
        check(t["token"] and t["websocket"].startswith("/v1/console/websocket?token=")
              and t["viewer"] and t["expires_in"] > 0, f"the ticket: {t}")
        check_eq(t["instance_id"], d["instance_id"], "the ticket's instance")
        mine = ok(env.rest(u, "GET", "/v1/vdi/my-desktops"))["desktops"]
        check_eq([m["id"] for m in mine], [d["id"]], "my-desktops")
    # Another user's desktop is not found, for reading and for a ticket.
    r = env.rest(users[1], "GET", f"/v1/vdi/desktops/{ids[0]}")
    check_eq((r.status, r.error_code), (400, "InvalidDesktopID.NotFound"), f"{r}")
    r = env.rest(users[1], "POST", f"/v1/vdi/desktops/{ids[0]}/console")
    check_eq((r.status, r.error_code), (400, "InvalidDesktopID.NotFound"), f"{r}")

    # The pool is full: a fourth user gets no desktop, and the worker adds no spare past the
    # size.
    fourth = desktop_user(env, provider, "vdi-user-4")
    r = env.rest(fourth, "POST", f"/v1/vdi/pools/{pool}/connect")
    check_eq((r.status, r.error_code), (503, "InsufficientDesktopCapacity"), f"{r}")
    time.sleep(6)  # three worker passes
    all_desktops = pool_desktops(env, provider, pool)
    check_eq(len(all_desktops), 3, f"the pool stays at its size: {all_desktops}")
    S.update(users=users, desktops=desktops, fourth=fourth)


@tap.test
def sign_out_resets_a_non_persistent_desktop(env):
    provider, pool, users, desktops = need("provider"), need("pool"), need("users"), \
        need("desktops")
    u, d = users[0], desktops[0]
    iid = d["instance_id"]
    before = transitions(env, iid)
    out = ok(env.rest(u, "POST", f"/v1/vdi/desktops/{d['id']}/sign-out"))
    check_eq((out["state"], out["user_id"]), ("resetting", None), f"after sign-out: {out}")
    # The worker stops it, sets reset_root and starts it; the scheduler clears the flag.
    seen_flag = []

    def back():
        st, flag = instance_row(env, iid)
        if flag == "t":
            seen_flag.append(st)
        row = ok(env.rest(provider, "GET", f"/v1/vdi/desktops/{d['id']}"))
        return row if row["state"] == "available" and row["instance_state"] == "running" \
            else None

    row = wait_for("the desktop available again", back, 180, env, interval=0.2)
    check_eq(row["instance_id"], iid, "the same instance")
    check_eq(instance_row(env, iid), ["running", "f"], "the instance runs, reset_root cleared")
    after = transitions(env, iid)[len(before):]
    check_eq(after, ["stopping", "stopped", "pending", "running"], "the instance's transitions")
    log = env.agent.log()
    check(f"instance {iid}: disks reset to image" in log,
          "the agent did not reset the root disk", env.agent.tail(40), f"flag seen: {seen_flag}")
    # Now a spare again: the next user gets it.
    mine = ok(env.rest(u, "GET", "/v1/vdi/my-desktops"))["desktops"]
    check_eq(mine, [], "no desktop left to the signed-out user")
    doc = ok(env.rest(need("fourth"), "POST", f"/v1/vdi/pools/{pool}/connect"))
    check_eq(doc["desktop"]["id"], d["id"], "the fourth user gets the reset desktop")
    S["reset_done"] = True


@tap.test
def a_gateway_killed_mid_reset_loses_nothing(env):
    """The broker keeps its state in the tables: a gateway SIGKILLed right after a sign-out
    (the reset not begun) finishes it after its restart."""
    provider, users, desktops = need("provider"), need("users"), need("desktops")
    u, d = users[2], desktops[2]
    iid = d["instance_id"]
    out = ok(env.rest(u, "POST", f"/v1/vdi/desktops/{d['id']}/sign-out"))
    check_eq(out["state"], "resetting", f"after sign-out: {out}")
    env.stop_gateway(signal.SIGKILL)
    env.start_gateway()

    def back():
        row = ok(env.rest(provider, "GET", f"/v1/vdi/desktops/{d['id']}"))
        return row if row["state"] == "available" and row["instance_state"] == "running" \
            else None

    wait_for("the desktop available again after the restart", back, 180, env)
    check_eq(instance_row(env, iid), ["running", "f"], "the instance runs, reset_root cleared")
    check(f"instance {iid}: disks reset to image" in env.agent.log(),
          "the agent did not reset the root disk", env.agent.tail(40))


@tap.test
def persistent_pool_gives_back_the_same_desktop(env):
    provider = need("provider")
    image = env.guest_image()
    pool = ok(env.rest(provider, "POST", "/v1/vdi/pools",
                       {"name": "engineering", "image_id": image, "instance_type": "t3.nano",
                        "size": 2, "spares": 0, "persistent": True, "idle_stop_s": 0}),
              201)["id"]
    a = desktop_user(env, provider, "vdi-eng-a")
    b = desktop_user(env, provider, "vdi-eng-b")
    d = ok(env.rest(a, "POST", f"/v1/vdi/pools/{pool}/connect"))["desktop"]
    check_eq(d["owner_id"], a.user_id, f"the owner: {d}")
    wait_ready(env, a, d["id"])
    out = ok(env.rest(a, "POST", f"/v1/vdi/desktops/{d['id']}/sign-out"))
    check_eq((out["state"], out["owner_id"], out["user_id"]), ("reserved", a.user_id, None),
             f"signed out: {out}")
    # Still a's: listed as theirs, not another user's.
    check_eq([m["id"] for m in ok(env.rest(a, "GET", "/v1/vdi/my-desktops"))["desktops"]],
             [d["id"]], "a's desktops after sign-out")
    db = ok(env.rest(b, "POST", f"/v1/vdi/pools/{pool}/connect"))["desktop"]
    check(db["id"] != d["id"], f"b gets another desktop: {db}")
    again = ok(env.rest(a, "POST", f"/v1/vdi/pools/{pool}/connect"))["desktop"]
    check_eq((again["id"], again["state"], again["instance_id"]),
             (d["id"], "assigned", d["instance_id"]), "a gets the same desktop back")
    S.update(ppool=pool, pa=a, pb=b, pdesk=d, pbdesk=db)


@tap.test
def idle_desktop_is_stopped_and_connect_starts_it(env):
    """Idle means no console connected through the gateway's proxy (vnc_connections): of two
    desktops in sessions, the one whose user watches its screen keeps running; the other is
    signed out and stopped after idle_stop_s, and so is the first once its console closes.
    Connecting again starts it."""
    provider, pool = need("provider"), need("ppool")
    a, d, b, db = need("pa"), need("pdesk"), need("pb"), need("pbdesk")
    iid = d["instance_id"]
    wait_ready(env, a, d["id"])
    wait_ready(env, b, db["id"])
    t = ok(env.rest(a, "POST", f"/v1/vdi/desktops/{d['id']}/console"), 201)
    c = VncClient.open(env.gw_port, t["websocket"], origin=env.endpoint.rstrip("/"))
    try:
        width, height, _ = c.rfb_handshake()
        check(width > 0 and height > 0, "the desktop's screen through the broker's ticket")
        ok(env.rest(provider, "PATCH", f"/v1/vdi/pools/{pool}", {"idle_stop_s": 3}))

        def stopped(creds, desktop_id):
            row = ok(env.rest(creds, "GET", f"/v1/vdi/desktops/{desktop_id}"))
            return row if row["instance_state"] == "stopped" else None

        row = wait_for("b's unwatched desktop stopped", lambda: stopped(b, db["id"]), 120, env)
        check_eq((row["state"], row["user_id"], row["owner_id"]), ("reserved", None, b.user_id),
                 f"idle sign-out of a persistent desktop: {row}")
        time.sleep(5)  # over idle_stop_s again, with the console open
        row = ok(env.rest(a, "GET", f"/v1/vdi/desktops/{d['id']}"))
        check_eq((row["state"], row["instance_state"]), ("assigned", "running"),
                 f"the watched desktop: {row}")
    finally:
        c.close()
    row = wait_for("a's desktop stopped once its console closed",
                   lambda: stopped(a, d["id"]), 120, env)
    check_eq((row["state"], row["owner_id"]), ("reserved", a.user_id), f"{row}")
    # No more idle stops while the test looks at the restart.
    ok(env.rest(provider, "PATCH", f"/v1/vdi/pools/{pool}", {"idle_stop_s": 0}))
    doc = ok(env.rest(a, "POST", f"/v1/vdi/pools/{pool}/connect"))
    check_eq((doc["desktop"]["id"], doc["desktop"]["state"], doc["ready"]),
             (d["id"], "assigned", False), f"connect to the stopped desktop: {doc}")
    wait_ready(env, a, d["id"])
    check_eq(instance_row(env, iid), ["running", "f"], "started again, without a reset")


@tap.test
def desktop_users_may_only_use_the_broker(env):
    provider, u = need("provider"), need("users")[1]
    for method, path in (("GET", "/v1/instances"), ("GET", "/v1/images"),
                         ("POST", "/v1/vdi/pools"), ("GET", f"/v1/vdi/pools/{need('pool')}"),
                         ("GET", f"/v1/vdi/pools/{need('pool')}/desktops"),
                         ("POST", f"/v1/instances/{need('desktops')[1]['instance_id']}/vnc")):
        r = env.rest(u, method, path, body={} if method == "POST" else None)
        check_eq((r.status, r.error_code), (403, "UnauthorizedOperation"), f"{method} {path}")
    r = env.ec2_raw(u, {"Action": "DescribeInstances"})
    check_eq((r.status, r.error_code), (403, "UnauthorizedOperation"), f"EC2: {r.body}")
    import botocore.exceptions
    try:
        env.ec2(u).describe_instances()
        check(False, "boto3's DescribeInstances was not refused")
    except botocore.exceptions.ClientError as e:
        check_eq(e.response["Error"]["Code"], "UnauthorizedOperation", f"{e}")
    # The pool list shows names, not the configuration.
    pools = ok(env.rest(u, "GET", "/v1/vdi/pools"))["pools"]
    check_eq(sorted(p["name"] for p in pools), ["engineering", "office"], f"{pools}")
    check(all(set(p) == {"id", "name", "description", "persistent"} for p in pools), f"{pools}")
    # The provider's member user still manages everything.
    ok(env.rest(provider, "GET", "/v1/instances"))

    # Signed in to the console with a password, the same: the broker, nothing else.
    password = "vdi-e2e correct horse"
    ok(env.rest(env.admin, "PUT", f"/v1/admin/users/{u.user_id}/password",
                {"password": password}))
    r, cookie, session = sign_in(env, provider.name, "vdi-user-2", password)
    check_eq((r.status, session and session.get("role")), (200, "desktop"), f"sign-in: {r}")
    csrf = session["csrf_token"]
    mine = call(env, cookie, "GET", "/v1/vdi/my-desktops")
    check_eq(mine.status, 200, f"{mine}")
    desk = mine.json["desktops"][0]
    r = call(env, cookie, "POST", f"/v1/vdi/desktops/{desk['id']}/console", {}, csrf=csrf)
    check_eq(r.status, 201, f"a ticket in the console session: {r}")
    for method, path in (("GET", "/v1/instances"), ("GET", "/v1/events"),
                         ("GET", f"/v1/vdi/pools/{need('pool')}/desktops")):
        r = call(env, cookie, method, path)
        check_eq((r.status, r.error_code), (403, "UnauthorizedOperation"),
                 f"{method} {path} in a desktop user's console session: {r}")


@tap.test
def desktop_hours_are_metered_per_user_and_billed(env):
    provider, pool, ppool = need("provider"), need("pool"), need("ppool")
    users = need("users") + [need("fourth"), need("pa"), need("pb")]
    # A second session of a user, in another pool, while the first goes on: the user's meter
    # neither starts again nor stops when it ends (the meter is per user).
    pa = need("pa")
    ok(env.rest(provider, "PATCH", f"/v1/vdi/pools/{pool}", {"size": 4, "spares": 0}))
    second = ok(env.rest(pa, "POST", f"/v1/vdi/pools/{pool}/connect"))["desktop"]
    check_eq((second["pool_id"], second["user_id"]), (pool, pa.user_id), f"{second}")
    check_eq(len(ok(env.rest(pa, "GET", "/v1/vdi/my-desktops"))["desktops"]), 2,
             "pa's two desktops")
    ok(env.rest(pa, "POST", f"/v1/vdi/desktops/{second['id']}/sign-out"))
    # End every session: the remaining sign-outs.
    for u in users:
        for d in ok(env.rest(u, "GET", "/v1/vdi/my-desktops"))["desktops"]:
            if d["state"] == "assigned":
                ok(env.rest(u, "POST", f"/v1/vdi/desktops/{d['id']}/sign-out"))
    rows = env.psql("SELECT resource_id, string_agg(CASE WHEN active THEN 'on' ELSE 'off' END,"
                    " ' ' ORDER BY id) FROM meter_events WHERE meter = 'desktop-hours'"
                    f" AND tenant_id = {sql_quote(provider.tenant_id)} GROUP BY resource_id")
    events = dict(rows)
    for u in users:
        check(u.user_id in events, f"no desktop-hours events for {u.user_id}: {events}")
        seq = events[u.user_id].split()
        check(seq[0] == "on" and seq[-1] == "off" and
              all(x != y for x, y in zip(seq, seq[1:])), f"{u.user_id}: {seq}")
    check_eq(events[need("pa").user_id], "on off on off on off",
             "the persistent user's three sessions (the second ended idle)")
    check_eq(len(events), len(users), f"only the desktop users are metered: {events}")

    # nubo-billing aggregates closed hours: move the events into the last one (keeping their
    # order and spacing), then aggregate.
    env.psql("UPDATE meter_events SET at = at - (SELECT max(at) FROM meter_events WHERE meter ="
             " 'desktop-hours') + date_trunc('hour', now()) - interval '30 minutes'"
             " WHERE meter = 'desktop-hours'")
    e = dict(os.environ, NUBO_DB_CONNINFO=env.conninfo, NUBO_BILLING_GRACE_S="0")
    r = subprocess.run([BILLING, "--aggregate"], capture_output=True, text=True, timeout=120,
                       env=e, cwd=REPO)
    check_eq(r.returncode, 0, f"nubo-billing --aggregate: {r.stderr}")
    rec = dict(env.psql("SELECT resource_id, sum(quantity)::text FROM usage_records WHERE"
                        f" meter = 'desktop-hours' AND tenant_id = {sql_quote(provider.tenant_id)}"
                        " GROUP BY resource_id"))
    for u in users:
        check(int(rec.get(u.user_id, "0")) > 0, f"no desktop-hours usage for {u.user_id}: {rec}")
    hour = env.psql1("SELECT billing_period_of(date_trunc('hour', now()) - interval '1 hour')")
    if hour == env.psql1("SELECT billing_period_of(now())"):
        usage = ok(env.rest(provider, "GET", "/v1/usage"))
        lines = [m for m in usage["meters"] if m["meter"] == "desktop-hours"]
        check_eq(len(lines), 1, f"one desktop-hours line in the usage: {usage}")
        check_eq(int(lines[0]["quantity"]), sum(int(v) for v in rec.values()),
                 "the usage line sums the users' records")
        check(lines[0]["amount_micros"] is not None, f"priced: {lines[0]}")
    S["billed"] = True


@tap.test
def launches_beyond_the_quota_fail_cleanly(env):
    """A provider out of instance quota: the worker launches the spares it can, notes the
    failure on the pool and waits before it tries again; a connect that needs a new desktop
    fails with the launch's error, leaving no desktop and no running meter behind."""
    image = env.guest_image()
    small = env.tenant("vdi-small")
    ok(env.rest(env.admin, "PUT", f"/v1/admin/tenants/{small.tenant_id}/quota",
                {"max_instances": 1}))
    pool = ok(env.rest(small, "POST", "/v1/vdi/pools",
                       {"name": "tiny", "image_id": image, "instance_type": "t3.nano",
                        "size": 3, "spares": 2, "persistent": False, "idle_stop_s": 0}),
              201)["id"]

    def failed():
        p = ok(env.rest(small, "GET", f"/v1/vdi/pools/{pool}"))
        return p if p["last_error"] else None

    p = wait_for("the pool's launch failure", failed, 60, env)
    check("InstanceLimitExceeded" in p["last_error"] or "limit" in p["last_error"].lower(),
          f"the pool's last error: {p}")
    check_eq(p["desktops"]["total"], 1, f"only the desktop within the quota: {p}")
    u1, u2 = desktop_user(env, small, "tiny-1"), desktop_user(env, small, "tiny-2")
    ok(env.rest(u1, "POST", f"/v1/vdi/pools/{pool}/connect"))
    r = env.rest(u2, "POST", f"/v1/vdi/pools/{pool}/connect")
    check_eq((r.status, r.error_code), (400, "InstanceLimitExceeded"), f"{r}")
    check_eq(ok(env.rest(u2, "GET", "/v1/vdi/my-desktops"))["desktops"], [],
             "no desktop left to the user whose launch failed")
    events = env.psql1("SELECT string_agg(CASE WHEN active THEN 'on' ELSE 'off' END, ' '"
                       " ORDER BY id) FROM meter_events WHERE meter = 'desktop-hours'"
                       f" AND resource_id = {sql_quote(u2.user_id)}")
    check_eq(events, "on off", "the failed session's meter started and stopped")
    check_eq(len(pool_desktops(env, small, pool)), 1, "the pool's desktops")
    S["other_tenant_user"] = u1
    ok(env.rest(small, "DELETE", f"/v1/vdi/pools/{pool}"), 202)
    wait_for("the pool gone",
             lambda: env.rest(small, "GET", f"/v1/vdi/pools/{pool}").status == 400, 120, env)


@tap.test
def listed_pool_admits_only_granted_users(env):
    """Entitlements: a "listed" pool is for the desktop users granted it. The others do not see
    it and their connect is refused as for an unknown pool; revoking a grant ends the user's
    session as a sign-out does (the desktop is reset); switching a pool to "listed" ends the
    sessions of users without a grant."""
    provider, pool, users = need("provider"), need("pool"), need("users")
    u1, u2 = users[0], users[1]
    base = f"/v1/vdi/pools/{pool}/users"
    # u2 is in a session while the pool is open to all; the switch to "listed" ends it.
    d2 = ok(env.rest(u2, "POST", f"/v1/vdi/pools/{pool}/connect"))["desktop"]
    doc = ok(env.rest(provider, "PATCH", f"/v1/vdi/pools/{pool}", {"entitlement": "listed"}))
    check_eq(doc["entitlement"], "listed", f"the pool: {doc}")
    row = ok(env.rest(provider, "GET", f"/v1/vdi/desktops/{d2['id']}"))
    check_eq((row["state"], row["user_id"]), ("resetting", None),
             f"u2's desktop after the switch to listed: {row}")
    r = env.rest(provider, "PATCH", f"/v1/vdi/pools/{pool}", {"entitlement": "some"})
    check_eq((r.status, r.error_code), (400, "InvalidParameterValue"), f"{r}")

    # Grant u1, twice: the same grant.
    g = ok(env.rest(provider, "PUT", f"{base}/{u1.user_id}"))
    check_eq((g["pool_id"], g["user_id"], g["user_name"]), (pool, u1.user_id, "vdi-user-1"),
             f"the grant: {g}")
    g2 = ok(env.rest(provider, "PUT", f"{base}/{u1.user_id}"))
    check_eq(g2, g, "granting again")
    listed = ok(env.rest(provider, "GET", base))["users"]
    check_eq([x["user_id"] for x in listed], [u1.user_id], f"the pool's users: {listed}")

    # u2 neither sees the pool nor may connect: the same answer as an unknown pool.
    names = [p["name"] for p in ok(env.rest(u2, "GET", "/v1/vdi/pools"))["pools"]]
    check("office" not in names and "engineering" in names, f"u2's pools: {names}")
    check("office" in [p["name"] for p in ok(env.rest(u1, "GET", "/v1/vdi/pools"))["pools"]],
          "u1 sees the pool")
    unknown = "pool-0000000000000dead"
    ru = env.rest(u2, "POST", f"/v1/vdi/pools/{unknown}/connect")
    r = env.rest(u2, "POST", f"/v1/vdi/pools/{pool}/connect")
    check_eq((r.status, r.error_code), (ru.status, ru.error_code), f"{r} vs {ru}")
    check_eq((r.status, r.error_code), (400, "InvalidPoolID.NotFound"), f"{r}")
    check_eq(r.json["error"]["message"].replace(pool, unknown), ru.json["error"]["message"],
             "the messages")
    # Desktop users may not manage grants.
    r = env.rest(u1, "GET", base)
    check_eq((r.status, r.error_code), (403, "UnauthorizedOperation"), f"{r}")

    # Only desktop users of the tenant are granted a pool.
    member = ok(env.rest(env.admin, "POST", f"/v1/admin/tenants/{provider.tenant_id}/users",
                         {"name": "vdi-member", "role": "member"}), 201)
    other = need("other_tenant_user")
    for uid, code in ((member["user_id"], "InvalidParameterValue"),
                      (other.user_id, "InvalidUserID.NotFound"),
                      ("user-0000000000000dead", "InvalidUserID.NotFound"),
                      ("bob", "InvalidUserID.Malformed")):
        r = env.rest(provider, "PUT", f"{base}/{uid}")
        check_eq((r.status, r.error_code), (400, code), f"granting {uid}: {r}")
    check_eq(len(ok(env.rest(provider, "GET", base))["users"]), 1, "still one grant")

    # u1 connects and gets a console ticket.
    d1 = ok(env.rest(u1, "POST", f"/v1/vdi/pools/{pool}/connect"))["desktop"]
    check_eq((d1["state"], d1["user_id"]), ("assigned", u1.user_id), f"u1's desktop: {d1}")
    d1 = wait_ready(env, u1, d1["id"])
    ok(env.rest(u1, "POST", f"/v1/vdi/desktops/{d1['id']}/console"), 201)

    # Revoking ends u1's session and resets the desktop, as a sign-out does.
    iid = d1["instance_id"]
    before = transitions(env, iid)
    r = env.rest(provider, "DELETE", f"{base}/{u1.user_id}")
    check_eq(r.status, 204, f"revoke: {r}")
    logged = env.reqlog_row(r.request_id)
    check(logged and logged["http_status"] == 204 and "DELETE" in logged["action"],
          f"the revoke in the request log: {logged}")
    row = ok(env.rest(provider, "GET", f"/v1/vdi/desktops/{d1['id']}"))
    check_eq((row["state"], row["user_id"]), ("resetting", None), f"after the revoke: {row}")
    check_eq(ok(env.rest(u1, "GET", "/v1/vdi/my-desktops"))["desktops"], [],
             "no desktop left to u1")
    r = env.rest(provider, "DELETE", f"{base}/{u1.user_id}")
    check_eq(r.status, 204, f"revoking again: {r}")
    check_eq(ok(env.rest(provider, "GET", base))["users"], [], "no grants left")
    r = env.rest(u1, "POST", f"/v1/vdi/pools/{pool}/connect")
    check_eq((r.status, r.error_code), (400, "InvalidPoolID.NotFound"), f"u1 revoked: {r}")

    def back():
        row = ok(env.rest(provider, "GET", f"/v1/vdi/desktops/{d1['id']}"))
        return row if row["state"] == "available" and row["instance_state"] == "running" \
            else None

    wait_for("u1's desktop reset and available again", back, 180, env)
    check_eq(transitions(env, iid)[len(before):], ["stopping", "stopped", "pending", "running"],
             "the instance's transitions")
    check_eq(instance_row(env, iid), ["running", "f"], "the instance runs, reset_root cleared")
    # The request log has the grants and revokes, by the provider's key.
    rows = env.psql("SELECT action, http_status FROM request_log WHERE access_key_id = "
                    f"{sql_quote(provider.key_id)} AND action LIKE '% /v1/vdi/pools/%/users/%'"
                    " ORDER BY \"time\"")
    got = [(a.split()[0], int(s)) for a, s in rows]
    check_eq(got[:2], [("PUT", 200), ("PUT", 200)], f"the request log: {rows}")
    check(("DELETE", 204) in got and ("PUT", 400) in got, f"the request log: {rows}")
    # Open to all again: u2 sees it.
    ok(env.rest(provider, "PATCH", f"/v1/vdi/pools/{pool}", {"entitlement": "all"}))
    names = [p["name"] for p in ok(env.rest(u2, "GET", "/v1/vdi/pools"))["pools"]]
    check("office" in names, f"u2's pools once the pool is open to all: {names}")


@tap.test
def deleting_a_pool_terminates_its_desktops(env):
    provider, pool = need("provider"), need("ppool")
    ids = [d["instance_id"] for d in pool_desktops(env, provider, pool) if d["instance_id"]]
    doc = ok(env.rest(provider, "DELETE", f"/v1/vdi/pools/{pool}"), 202)
    check_eq(doc["state"], "deleting", f"{doc}")

    def gone():
        r = env.rest(provider, "GET", f"/v1/vdi/pools/{pool}")
        return r if r.status == 400 else None

    r = wait_for("the pool gone", gone, 120, env)
    check_eq(r.error_code, "InvalidPoolID.NotFound", f"{r}")
    env.wait_state(provider, ids, "terminated", timeout=120)
    left = env.psql1(f"SELECT count(*) FROM desktops WHERE pool_id = {sql_quote(pool)}")
    check_eq(left, "0", "desktop rows left")
    # The other pool is deleted too, so that the environment's teardown finds no guest running.
    ok(env.rest(provider, "DELETE", f"/v1/vdi/pools/{need('pool')}"), 202)
    wait_for("the first pool gone",
             lambda: env.rest(provider, "GET", f"/v1/vdi/pools/{need('pool')}").status == 400,
             120, env)


if __name__ == "__main__":
    tap.main()
