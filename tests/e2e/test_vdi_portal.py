#!/usr/bin/python3
"""The VDI desktop portal in a browser (web/desktop.html, docs/vdi.md), with real VMs: a
provider's non-persistent pool keeps 2 spare desktops; 3 desktop users sign in at once in
headless Chromium (Playwright with Debian's /usr/bin/chromium) and connect: each gets a distinct
desktop (two spares, one provisioned) and sees its screen through the gateway's console proxy.
The first user writes on their desktop's disk from the keyboard, signs out of it, and the
desktop comes back reset to its image (its next boot reads the image's disk marker, not what was
written); connecting again gives a clean desktop. The API-level VDI checks (persistent pools,
idle stop, roles, desktop-hours) are tests/e2e/test_vdi.py. Screenshots of each step go to
build/<mode>/test-artifacts/vdi-portal/.

Run: /usr/bin/python3 tests/e2e/test_vdi_portal.py   (prints TAP)"""

import sys

sys.dont_write_bytecode = True

import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

import compute_env  # noqa: E402
import nubo_env  # noqa: E402
from nubo_env import REPO, SkipTest, check, check_eq  # noqa: E402
from test_console import CHROMIUM, ensure_playwright  # noqa: E402

MODE = os.environ.get("MODE", "debug")
ARTIFACTS = Path(os.environ.get("NUBO_TEST_ARTIFACTS", REPO / "build" / MODE / "test-artifacts"))
FLOW = Path(__file__).resolve().parent / "console" / "vdi_flow.js"
CLEAN_MARKER = "NUBO-TEST-DISK-v1"

tap = nubo_env.Tap(__file__, per_test_timeout=600, fixture=compute_env.ComputeEnv)


def ok(r, status=200):
    check_eq(r.status, status, f"HTTP status of {r.method} {r.path}; response\n{r}")
    return r.json


def wait_for(env, what, fn, timeout=180):
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.5)
    check(False, f"{what}: not after {timeout} s (last: {last})", env.daemon_logs(40))


def serial(env, creds, iid):
    r = env.rest(creds, "GET", f"/v1/instances/{iid}/console")
    return r.json.get("output", "") if r.status == 200 else ""


def boot_after(text, written):
    """The serial console of the boot that followed the line 'written' (the log keeps earlier
    boots): the text after it once a boot there has drawn its screen, else None. Without the
    line (a log started anew), the whole text, on the same condition."""
    i = text.rfind(written)
    after = text[i + len(written):] if i >= 0 else text
    return after if "NUBO-GUEST-SCREEN" in after else None


def root_markers(text):
    return [m.strip() for m in re.findall(r"^NUBO-ROOT-DISK marker=(.*)$", text, re.M)]


@tap.test
def three_users_get_desktops_and_a_reset_one_comes_back_clean(env):
    if not Path(CHROMIUM).exists():
        raise SkipTest(f"{CHROMIUM} is not installed (Debian package chromium, make deps)")
    mod = ensure_playwright()
    out_dir = ARTIFACTS / "vdi-portal"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)

    provider = env.tenant("vdi-portal")
    t0 = time.monotonic()
    pool = ok(env.rest(provider, "POST", "/v1/vdi/pools", {
        "name": "office", "image_id": env.guest_image(), "instance_type": "t3.nano",
        "size": 3, "spares": 2, "persistent": False, "idle_stop_s": 3600}), 201)
    users = []
    for i in range(3):
        name = f"desk-{i + 1}"
        u = ok(env.rest(env.admin, "POST", f"/v1/admin/tenants/{provider.tenant_id}/users",
                        {"name": name, "role": "desktop"}), 201)
        password = f"desktop user {i + 1}: {uuid.uuid4().hex[:12]}"
        ok(env.rest(env.admin, "PUT", f"/v1/admin/users/{u['user_id']}/password",
                    {"password": password}))
        users.append({"name": name, "password": password, "id": u["user_id"]})

    def desktops():
        return ok(env.rest(provider, "GET", f"/v1/vdi/pools/{pool['id']}/desktops"))["desktops"]

    spares = wait_for(env, "two running spare desktops", lambda: (lambda ds: ds if len(ds) == 2
                      else None)([d for d in desktops() if d["state"] == "available"
                                  and d["instance_state"] == "running"]))
    print(f"# 2 spares running {time.monotonic() - t0:.1f} s after the pool was made")
    spare_ids = {d["id"] for d in spares}

    marker = f"dirty-{uuid.uuid4().hex[:8]}"
    cfg = {"base": env.endpoint.rstrip("/"), "account": provider.name,
           "users": [{"name": u["name"], "password": u["password"]} for u in users],
           "pool_name": "office", "artifacts": str(out_dir), "timeout_s": 180,
           "marker": marker}
    penv = dict(os.environ, VDI_FLOW_CONFIG=json.dumps(cfg), NUBO_PLAYWRIGHT=str(mod),
                CHROMIUM=CHROMIUM)
    proc = subprocess.Popen(["node", str(FLOW)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=penv)
    lines, connected, done, first_desktop = [], {}, False, None
    by_user = {u["name"]: u for u in users}

    def go_on():
        proc.stdin.write("GO ON\n")
        proc.stdin.flush()

    try:
        for line in proc.stdout:
            line = line.rstrip("\n")
            lines.append(line)
            kind, _, rest = line.partition(" ")
            if kind == "CONNECTED":
                c = json.loads(rest)
                connected[c["user"]] = c["desktop"]
                if len(connected) < len(users):
                    continue
                # Each user has a desktop of their own, on an instance of their own, running.
                ids = {d["id"] for d in connected.values()}
                iids = {d["instance_id"] for d in connected.values()}
                check(len(ids) == 3 and len(iids) == 3, "the users share desktops", connected)
                for name, d in connected.items():
                    check_eq((d["user_id"], d["pool_id"], d["ready"]),
                             (by_user[name]["id"], pool["id"], True), f"{name}'s desktop")
                check_eq(len(ids & spare_ids), 2, "the two spares were handed out")
                all_d = desktops()
                check(len(all_d) <= 3, "the pool grew past its size", all_d)
                for d in connected.values():
                    iid = d["instance_id"]
                    out = wait_for(env, f"{iid}'s screen drawn", lambda: (
                        lambda o: o if "NUBO-GUEST-SCREEN" in o else None)(
                        serial(env, provider, iid)), 120)
                    check(f"instance-id={iid}" in out, f"{iid} booted as another", out[-800:])
                go_on()
            elif kind == "WROTE":
                d = json.loads(rest)["desktop"]
                first_desktop = d
                wait_for(env, "the guest writing on its disk",
                         lambda: f"NUBO-DISK-WRITTEN {marker}" in serial(
                             env, provider, d["instance_id"]), 60)
                go_on()
            elif kind == "SIGNED-OUT":
                d = json.loads(rest)["desktop"]
                iid = d["instance_id"]
                # The desktop is reset: its instance boots again from a root disk made anew
                # from the image, and it is available to the next user.
                back = wait_for(env, f"desktop {d['id']} reset and available", lambda: (
                    lambda x: x if x["state"] == "available" and x["instance_state"] == "running"
                    else None)(ok(env.rest(provider, "GET", f"/v1/vdi/desktops/{d['id']}"))), 240)
                check_eq(back["user_id"], None, "the reset desktop's user")
                written = f"NUBO-DISK-WRITTEN {marker}"
                after = wait_for(env, f"{iid} booted again after the sign-out",
                                 lambda: boot_after(serial(env, provider, iid), written), 120)
                check_eq(root_markers(after), [CLEAN_MARKER],
                         f"the root disk of {iid} after the reset (its user wrote {marker!r})")
                states = [r[0] for r in env.psql(
                    "SELECT to_state FROM instance_events WHERE instance_id = "
                    f"'{iid}' ORDER BY id")]
                check("stopped" in states and states[-1] == "running",
                      "the desktop's instance was not stopped and started again", states)
                check_eq(env.psql1(f"SELECT reset_root FROM instances WHERE id = '{iid}'"), "f",
                         "the reset flag after the restart")
                go_on()
            elif kind == "RECONNECTED":
                d = json.loads(rest)["desktop"]
                iid = d["instance_id"]
                written = f"NUBO-DISK-WRITTEN {marker}"
                after = wait_for(env, f"{iid}'s screen drawn",
                                 lambda: boot_after(serial(env, provider, iid), written), 120)
                check_eq(root_markers(after)[-1:], [CLEAN_MARKER],
                         f"the root disk of the desktop given again ({d['id']})")
                print(f"# reconnected to {d['id']} "
                      f"({'the reset one' if d['id'] == first_desktop['id'] else 'another one'})")
                go_on()
            elif kind == "DONE":
                done = True
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read()
    check(rc == 0 and done, f"the browser flow failed (exit {rc})", "\n".join(lines)[-3000:],
          stderr[-2000:], env.daemon_logs(40))
    shots = sorted(p.name for p in out_dir.glob("*.png"))
    check(len(shots) >= 6 and all((out_dir / s).stat().st_size > 5000 for s in shots),
          "screenshots of the steps", shots)
    print(f"# screenshots in {out_dir}: {', '.join(shots)}")
    conns = env.psql("SELECT count(DISTINCT user_id), count(*) FROM vnc_connections "
                     f"WHERE tenant_id = '{provider.tenant_id}'")
    check(int(conns[0][0]) == 3 and int(conns[0][1]) >= 4, "the portal's console connections",
          conns)


if __name__ == "__main__":
    tap.main()
