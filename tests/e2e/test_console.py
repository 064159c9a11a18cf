#!/usr/bin/python3
"""The web console end to end (docs/console.md): nubo-gateway serves the static console under
/console/, signs users in with a password (a session cookie, a CSRF token), and publishes
instance transitions on /v1/events. Against a cloud with a real scheduler, agent and QEMU VM
(compute_env.ComputeEnv); where libvirt cannot run here, the instances are moved by SQL instead
(said in the output).

The browser test drives headless Chromium (Debian's /usr/bin/chromium) with Playwright
(playwright-core from npm, installed under build/node when missing): sign in (a wrong password
first), launch from the form, see `running` without reloading, open its console (noVNC through
the gateway's WebSocket proxy) and see the guest's screen, the same pixels as libvirt's own
screenshot of the VM, type on it and see the keys reach the guest, terminate, see it go, sign
out. Other tests open consoles with a raw WebSocket client: tickets are single-use, short-lived
and bound to the tenant's own running instances.
Screenshots of every step go to build/<mode>/test-artifacts/console/.

Run: /usr/bin/python3 tests/e2e/test_console.py   (prints TAP)
"""

import sys

sys.dont_write_bytecode = True

import http.client  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import queue  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import compute_env  # noqa: E402
import nubo_env  # noqa: E402
from vnc_client import VncClient, WsRefused  # noqa: E402
from nubo_env import REPO, SkipTest, check, check_eq, sql_quote  # noqa: E402

MODE = os.environ.get("MODE", "debug")
ARTIFACTS = Path(os.environ.get("NUBO_TEST_ARTIFACTS", REPO / "build" / MODE / "test-artifacts"))
NODE_DIR = REPO / "build" / "node"  # playwright-core is installed here, outside the tree
FLOW = Path(__file__).resolve().parent / "console" / "console_flow.js"
CHROMIUM = "/usr/bin/chromium"
SECRET = "console-e2e: this file is outside the console directory"

S = {}  # state shared by the tests, in order


class ConsoleEnv(compute_env.ComputeEnv):
    """ComputeEnv whose gateway serves a copy of web/ next to a file it must never serve, with
    symbolic links in the copy that point at it."""

    console_dir = None

    def gateway_env(self, daemon=False):
        env = super().gateway_env(daemon)
        if self.console_dir is None and self.tmp:
            self.console_dir = self.tmp / "web"
            shutil.copytree(REPO / "web", self.console_dir)
            (self.tmp / "secret.txt").write_text(SECRET + "\n")
            os.symlink("../secret.txt", self.console_dir / "leak.txt")
            os.symlink(str(self.tmp), self.console_dir / "up")
        env["NUBO_CONSOLE_DIR"] = str(self.console_dir)
        return env

    @property
    def real(self):
        return not self.skip_reason


tap = nubo_env.Tap(__file__, per_test_timeout=120, fixture=ConsoleEnv)


# --- helpers ---------------------------------------------------------------------------------


def user_id_of(env, creds):
    return env.psql1("SELECT u.id FROM access_keys k JOIN users u ON u.id = k.user_id "
                     f"WHERE k.id = {sql_quote(creds.key_id)}")


def user_name_of(env, creds):
    return env.psql1(f"SELECT name FROM users WHERE id = {sql_quote(user_id_of(env, creds))}")


def sign_in(env, account, user, password, headers=None):
    """POST /v1/session; returns (response, cookie 'name=value' or None, session doc)."""
    h = {"Content-Type": "application/json", "User-Agent": nubo_env.USER_AGENT}
    h.update(headers or {})
    status, rh, body = env.http("POST", "/v1/session", json.dumps(
        {"account": account, "user": user, "password": password}), h)
    r = nubo_env.RestResponse(status, rh, body, "POST", "/v1/session")
    cookie = rh.get("set-cookie", "").split(";")[0] or None
    return r, cookie, r.json


def call(env, cookie, method, path, body=None, csrf=None, headers=None):
    """A REST call as the console makes it: the cookie, and the CSRF token if given."""
    h = {"User-Agent": nubo_env.USER_AGENT}
    if cookie:
        h["Cookie"] = cookie
    if csrf:
        h["X-CSRF-Token"] = csrf
    data = None
    if body is not None:
        data = json.dumps(body)
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    status, rh, text = env.http(method, path, body=data, headers=h)
    return nubo_env.RestResponse(status, rh, text, method, path)


def launch(env, creds, name):
    """Launches one instance as 'creds' through the REST API (SigV4); returns its id."""
    image = env.guest_image() if env.real else env.image()
    r = env.rest(creds, "POST", "/v1/instances", {"image_id": image, "instance_type": "t3.nano",
                                                   "tags": {"Name": name}})
    check_eq(r.status, 201, f"launching {name}: {r}")
    return r.json["instances"][0]["id"]


def state_of(env, instance_id):
    return env.psql1(f"SELECT state FROM instances WHERE id = {sql_quote(instance_id)}")


class Stream:
    """A reader of GET /v1/events on its own connection; events land in a queue."""

    def __init__(self, env, cookie=None, creds=None, last_event_id=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", env.gw_port, timeout=60)
        headers = {"User-Agent": nubo_env.USER_AGENT}
        if cookie:
            headers["Cookie"] = cookie
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        if creds:
            headers = nubo_env.sign_request(env.endpoint, creds.key_id, creds.secret, "GET",
                                            "/v1/events", b"", headers)
        self.conn.connect()
        self.sock = self.conn.sock  # the response keeps it; close() shuts it down
        self.conn.request("GET", "/v1/events", headers=headers)
        self.resp = self.conn.getresponse()
        self.events = queue.Queue()
        self.raw = []
        if self.resp.status == 200:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        data, sse_id, name = None, None, None
        try:
            for raw in self.resp:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                self.raw.append(line)
                if line.startswith("data: "):
                    data = json.loads(line[6:])
                elif line.startswith("id: "):
                    sse_id = line[4:]
                elif line.startswith("event: "):
                    name = line[7:]
                elif line == "" and data is not None:
                    data["_sse_id"], data["_event"] = sse_id, name
                    self.events.put(data)
                    data, sse_id, name = None, None, None
        except Exception:  # noqa: BLE001 - closed under the reader by close()
            pass

    def wait_for(self, pred, timeout):
        """The first event for which pred(event) holds, within 'timeout' s, else None; the
        events skipped meanwhile are returned too."""
        deadline = time.monotonic() + timeout
        skipped = []
        while time.monotonic() < deadline:
            try:
                ev = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if pred(ev):
                return ev, skipped
            skipped.append(ev)
        return None, skipped

    def close(self):
        # Shut down first: the reader thread sits in a read holding the response's buffer, and
        # closing alone would wait for the gateway's next keep-alive (15 s).
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()


def ensure_playwright():
    """The directory of node_modules with playwright-core, installed with npm when missing."""
    mod = NODE_DIR / "node_modules" / "playwright-core"
    if (mod / "package.json").exists():
        return mod
    if not shutil.which("npm") or not shutil.which("node"):
        raise SkipTest("node and npm are not installed (they come with the machine's Node.js)")
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix",
                        str(NODE_DIR), "playwright-core"], capture_output=True, text=True,
                       timeout=600)
    check(r.returncode == 0 and (mod / "package.json").exists(),
          f"npm install playwright-core failed ({r.returncode})", r.stdout[-2000:],
          r.stderr[-2000:])
    return mod


# --- tests -----------------------------------------------------------------------------------


@tap.test
def static_files_and_no_traversal(env):
    status, h, body = env.http("GET", "/console")
    check_eq((status, h.get("location")), (301, "/console/"), "GET /console")
    status, h, index = env.http("GET", "/console/")
    check_eq(status, 200, "GET /console/")
    check_eq(h.get("content-type"), "text/html; charset=utf-8", "the index's Content-Type")
    check_eq(h.get("cache-control"), "no-cache", "the index's Cache-Control")
    check_eq(h.get("x-content-type-options"), "nosniff", "X-Content-Type-Options")
    check("script-src 'self'" in h.get("content-security-policy", ""), "no CSP", h)
    check('id="signin-form"' in index, "the index is not the console's", index[:500])
    status, h2, _ = env.http("GET", "/console/", headers={"If-None-Match": h["etag"]})
    check_eq(status, 304, "GET /console/ with the index's ETag")
    for path, ctype in (("/console/index.html", "text/html; charset=utf-8"),
                        ("/console/console.css", "text/css; charset=utf-8"),
                        ("/console/js/main.js", "text/javascript; charset=utf-8"),
                        ("/console/js/instances.js", "text/javascript; charset=utf-8"),
                        ("/console/favicon.svg", "image/svg+xml")):
        status, h, body = env.http("GET", path)
        check_eq((status, h.get("content-type")), (200, ctype), f"GET {path}")
        check_eq(body, (REPO / "web" / path[len("/console/"):]).read_text(), f"body of {path}")
    status, h, _ = env.http("POST", "/console/index.html", body="x")
    check_eq(status, 405, "POST to a console file")

    # What traversal would reach exists (so that a 404 means refused, not absent).
    check(SECRET in (env.tmp / "secret.txt").read_text(), "the planted secret file is missing")
    check((REPO / "Makefile").read_text().startswith("# nubo"), "the repo's Makefile is missing")
    for path in ("/console/../Makefile", "/console/%2e%2e/Makefile", "/console/js/../../Makefile",
                 "/console/..%2fsecret.txt", "/console/%2e%2e%2fsecret.txt",
                 "/console/../secret.txt", "/console//etc/passwd", "/console/.%2e/secret.txt",
                 "/console/leak.txt", "/console/up/secret.txt", "/console/js/", "/console/js",
                 "/console/.hidden", "/console/%00index.html", "/console/index.html%00.js"):
        status, h, body = env.http("GET", path)
        check(status == 404 and SECRET not in body and "# nubo top-level" not in body
              and "root:" not in body, f"GET {path} was not refused: HTTP {status}", body[:300])


@tap.test
def passwords_are_set_by_the_admin(env):
    a, b = env.tenant("console-a"), env.tenant("console-b")
    S["a"], S["b"] = a, b
    S["a_user"], S["b_user"] = user_name_of(env, a), user_name_of(env, b)
    a_id = user_id_of(env, a)
    # A member cannot set anyone's password; a short one is refused; an unknown user is not found.
    r = env.rest(a, "PUT", f"/v1/admin/users/{a_id}/password", {"password": "member-tries-this"})
    check_eq((r.status, r.error_code), (403, "UnauthorizedOperation"), f"a member setting one: {r}")
    r = env.rest(env.admin, "PUT", f"/v1/admin/users/{a_id}/password", {"password": "short"})
    check_eq((r.status, r.error_code), (400, "InvalidParameterValue"), f"a short password: {r}")
    r = env.rest(env.admin, "PUT", "/v1/admin/users/user-00000000000000000/password",
                 {"password": "long enough password"})
    check_eq(r.error_code, "InvalidUserID.NotFound", f"an unknown user: {r}")
    check_eq(env.psql1(f"SELECT password_hash IS NULL FROM users WHERE id = {sql_quote(a_id)}"),
             "t", "A's password after refused attempts")
    S["a_pw"], S["b_pw"] = "tenant-a: correct horse", "tenant-b: battery staple"
    for creds, pw in ((a, S["a_pw"]), (b, S["b_pw"])):
        r = env.rest(env.admin, "PUT", f"/v1/admin/users/{user_id_of(env, creds)}/password",
                     {"password": pw})
        check_eq(r.status, 200, f"the admin setting a password: {r}")
    stored = env.psql1(f"SELECT password_hash FROM users WHERE id = {sql_quote(a_id)}")
    check(stored.startswith("$scrypt$ln=17,r=8,p=1$") and S["a_pw"] not in stored,
          "the stored password is not a scrypt hash", stored)
    other = env.psql1("SELECT password_hash FROM users WHERE id = "
                      + sql_quote(user_id_of(env, b)))
    check(stored.split("$")[3] != other.split("$")[3], "two users share a salt")
    row = env.reqlog_row(r.request_id)
    check(row and S["b_pw"] not in row["params"], "the request log holds the password", row)


@tap.test
def sign_in_with_a_wrong_password_fails(env):
    a = S["a"]
    for account, user, pw in ((a.name, S["a_user"], "not the password"),
                              (a.tenant_id, S["a_user"], S["b_pw"]),
                              (a.name, "nobody", S["a_pw"]),
                              ("no-such-account", S["a_user"], S["a_pw"]),
                              (S["b"].name, S["a_user"], S["a_pw"])):
        r, cookie, _ = sign_in(env, account, user, pw)
        check_eq((r.status, r.error_code, cookie), (401, "AuthFailure", None),
                 f"signing in as {user} of {account} with {pw!r}: {r}")
        check_eq(r.json["error"]["message"], "incorrect account, user name or password",
                 "the sign-in failure message (the same whatever was wrong)")
    row = env.reqlog_row(r.request_id)
    check(row and row["error_code"] == "AuthFailure" and row["action"] == "POST /v1/session"
          and S["a_pw"] not in row["params"], "the failed sign-in is not logged as such", row)
    # A form of another site cannot post JSON: a sign-in without it is refused.
    status, _, body = env.http("POST", "/v1/session", json.dumps(
        {"account": a.name, "user": S["a_user"], "password": S["a_pw"]}),
        {"Content-Type": "text/plain"})
    check_eq(status, 403, f"a sign-in without a JSON content type: {body}")
    r, _, _ = sign_in(env, a.name, S["a_user"], S["a_pw"], {"Origin": "http://evil.example"})
    check_eq((r.status, r.error_code), (403, "InvalidCsrfToken"), f"a cross-site sign-in: {r}")
    # The right password, by tenant name and by tenant id.
    for account in (a.name, a.tenant_id):
        r, cookie, doc = sign_in(env, account, S["a_user"], S["a_pw"])
        check_eq(r.status, 200, f"signing in with the right password: {r}")
        check_eq((doc["tenant_id"], doc["role"]), (a.tenant_id, "member"), "the session")
        flags = [f.strip() for f in r.headers["set-cookie"].split(";")]
        for flag in ("HttpOnly", "SameSite=Strict", "Path=/"):
            check(flag in flags, f"the cookie lacks {flag}", r.headers["set-cookie"])
        check("Secure" not in flags, "Secure on a cookie over plain HTTP",
              r.headers["set-cookie"])
    S["a_cookie"], S["a_csrf"] = cookie, doc["csrf_token"]
    r, S["b_cookie"], doc = sign_in(env, S["b"].name, S["b_user"], S["b_pw"])
    check_eq(r.status, 200, f"B signing in: {r}")
    S["b_csrf"] = doc["csrf_token"]
    check(S["a_csrf"] != S["b_csrf"], "two sessions share a CSRF token")
    hashes = [x[0] for x in env.psql("SELECT encode(id_hash, 'hex') FROM console_sessions")]
    token = S["a_cookie"].split("=", 1)[1]
    check(len(hashes) >= 3 and not any(token in h for h in hashes),
          "the session table holds the cookie itself", hashes)


@tap.test
def sign_in_with_an_access_key(env):
    """The CLI's key pair opens a console session too; a wrong or disabled one does not."""
    a = S["a"]
    h = {"Content-Type": "application/json", "User-Agent": nubo_env.USER_AGENT}

    def key_sign_in(key_id, secret):
        status, rh, body = env.http("POST", "/v1/session", json.dumps(
            {"access_key_id": key_id, "secret_access_key": secret}), h)
        return (nubo_env.RestResponse(status, rh, body, "POST", "/v1/session"),
                rh.get("set-cookie", "").split(";")[0] or None)

    wrong = a.secret[:-1] + ("x" if a.secret[-1] != "x" else "y")  # never the secret itself
    for key_id, secret, what in ((a.key_id, wrong, "a wrong secret"),
                                 ("NKIA" + "A" * 16, a.secret, "an unknown key"),
                                 (a.key_id, "", "an empty secret")):
        r, cookie = key_sign_in(key_id, secret)
        check(r.status in (400, 401) and cookie is None, f"signing in with {what}: {r}")
    r, cookie = key_sign_in(a.key_id, a.secret)
    check_eq(r.status, 200, f"signing in with A's key: {r}")
    check_eq((r.json["tenant_id"], r.json["user_id"]), (a.tenant_id, user_id_of(env, a)),
             "the key's session")
    check_eq(call(env, cookie, "GET", "/v1/instances").status, 200, "the key's session in use")
    row = env.reqlog_row(r.request_id)
    check(row and a.secret not in row["params"], "the request log holds the secret", row)
    check_eq(call(env, cookie, "DELETE", "/v1/session", csrf=r.json["csrf_token"]).status, 200,
             "signing the key's session out")
    env.rest(env.admin, "POST", f"/v1/admin/keys/{a.key_id}/disable")
    try:
        r, cookie = key_sign_in(a.key_id, a.secret)
        check_eq((r.status, r.error_code, cookie), (401, "AuthFailure", None),
                 f"signing in with a disabled key: {r}")
    finally:
        env.rest(env.admin, "POST", f"/v1/admin/keys/{a.key_id}/enable")


@tap.test(timeout=420)
def browser_launch_see_running_terminate(env):
    """Headless Chromium: sign in, launch from the form, running without reload, terminate,
    gone; one screenshot per step."""
    if not Path(CHROMIUM).exists():
        raise SkipTest(f"{CHROMIUM} is not installed (Debian package chromium, make deps)")
    mod = ensure_playwright()
    out_dir = ARTIFACTS / "console"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    a = S["a"]
    image = env.guest_image() if env.real else env.image()
    print(f"# instances: {'real VMs (scheduler, agent, QEMU)' if env.real else 'moved by SQL'}"
          f" ({env.skip_reason or 'libvirt runs here'})")
    cfg = {"base": env.endpoint.rstrip("/"), "account": a.name, "user": S["a_user"],
           "password": S["a_pw"], "wrong_password": "not the password", "image": image,
           "user_data": "hello from the console", "artifacts": str(out_dir),
           "timeout_s": 150, "console": env.real}
    penv = dict(os.environ, CONSOLE_FLOW_CONFIG=json.dumps(cfg), NUBO_PLAYWRIGHT=str(mod),
                CHROMIUM=CHROMIUM)
    proc = subprocess.Popen(["node", str(FLOW)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=penv)
    lines, steps, done, iid, screen = [], {}, None, None, None
    t0 = time.monotonic()
    try:
        for line in proc.stdout:
            line = line.rstrip("\n")
            lines.append(line)
            kind, _, rest = line.partition(" ")
            if kind == "STEP":
                name, _, extra = rest.partition(" ")
                steps[name] = json.loads(extra)
            elif kind == "LAUNCHED":
                iid = rest
                if not env.real:  # what the scheduler and the agent would do
                    time.sleep(0.5)
                    env.set_instance_state([iid], "running")
            elif kind == "SCREEN":
                # The browser holds the console open until we have looked at the VM's display.
                screen = json.loads(rest)
                screen["diff"] = compare_screens(screen, iid, out_dir)
                screen["serial"] = env.rest(a, "GET", f"/v1/instances/{iid}/console").json
                proc.stdin.write("GO ON\n")
                proc.stdin.flush()
            elif kind == "TERMINATING" and not env.real:
                time.sleep(0.5)
                env.set_instance_state([iid], "terminated")
            elif kind == "DONE":
                done = json.loads(rest)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read()
    S["browser_s"] = time.monotonic() - t0
    S["browser_steps"] = steps
    check(rc == 0 and done, f"the browser flow failed (exit {rc})", "\n".join(lines)[-3000:],
          stderr[-3000:], env.daemon_logs() if env.real else "")
    names = ["sign-in-form", "wrong-password-refused", "signed-in", "launch-form", "launched",
             "running", "confirm-terminate", "terminating", "gone", "signed-out"]
    if env.real:
        names += ["console-open", "console-typed", "console-closed"]
        check(screen, "the browser never showed the console's screen", "\n".join(lines)[-3000:])
        w, h, differing = screen["diff"]
        print(f"# console canvas {screen['width']}x{screen['height']}, libvirt's screenshot "
              f"{w}x{h}, {differing} pixels differ; typed {screen['typed']!r}")
        check_eq((screen["width"], screen["height"]), (w, h),
                 "the console's size against the VM's display")
        check(differing <= w * h // 200, f"{differing} of {w * h} pixels differ between the "
              "console and libvirt's screenshot of the VM")
        out = screen["serial"].get("output", "")
        check(f"NUBO-TYPED {screen['typed']}" in out, "the typed line is not on the serial "
              "console", out[-1000:])
        conns = env.psql("SELECT user_id, closed_at IS NOT NULL, bytes_in > 0, bytes_out > 1000 "
                         f"FROM vnc_connections WHERE instance_id = {sql_quote(iid)}")
        check_eq(conns, [[user_id_of(env, a), "t", "t", "t"]],
                 "the console's connection record (closed, bytes both ways)")
    for name in names:
        check(name in steps and Path(steps[name]["screenshot"]).stat().st_size > 1000,
              f"no screenshot of step {name}", steps)
    print("# " + ", ".join(f"{n} {s['t']:.1f} s" for n, s in steps.items()))
    print(f"# screenshots in {out_dir}")
    # What the browser did, seen from the other side.
    check_eq(state_of(env, iid), "terminated", f"{iid} in the database")
    tags = env.psql1(f"SELECT tags->>'Name' FROM instances WHERE id = {sql_quote(iid)}")
    check_eq(tags, "console-e2e", "the Name tag from the form")
    ud = env.psql1(f"SELECT convert_from(decode(user_data, 'base64'), 'UTF8') FROM instances "
                   f"WHERE id = {sql_quote(iid)}")
    check_eq(ud, "hello from the console", "the user-data from the form, decoded")
    states = [r[0] for r in env.psql("SELECT to_state FROM instance_events WHERE instance_id = "
                                     f"{sql_quote(iid)} ORDER BY id")]
    check(states[0] == "pending" and "running" in states and states[-1] == "terminated",
          "the instance's transitions", states)
    if env.real:
        check(iid not in env.domains(), "the VM survived its termination from the console")
    logged = env.psql(f"SELECT action, access_key_id FROM request_log WHERE tenant_id = "
                      f"{sql_quote(a.tenant_id)} AND access_key_id LIKE 'console:%' "
                      f"AND action IN ('POST /v1/instances', 'POST /v1/instances/{iid}/terminate')")
    check_eq(sorted(x[0] for x in logged),
             ["POST /v1/instances", f"POST /v1/instances/{iid}/terminate"],
             "the console's launch and terminate in the request log")
    # The browser signed out: its cookie no longer works.
    r = call(env, done["cookie"], "GET", "/v1/instances")
    check_eq((r.status, r.error_code), (401, "AuthFailure"),
             f"the browser's cookie after sign-out: {r}")


def read_ppm(data):
    """(width, height, RGB bytes) of a binary PPM (P6, maxval 255), as QEMU's screendump
    writes them without PNG support."""
    fields, pos = [], 2
    check(data[:2] == b"P6", "the screenshot is not a binary PPM", data[:20])
    while len(fields) < 3:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(int(data[pos:end]))
        pos = end
    w, h, maxval = fields
    check_eq(maxval, 255, "the screenshot's maxval")
    return w, h, data[pos + 1:pos + 1 + w * h * 3]


def read_png(data):
    """(width, height, RGB bytes) of an 8-bit RGB or RGBA PNG, as libvirt returns QEMU's
    screenshots when QEMU can make PNGs."""
    import struct
    import zlib
    check(data[:8] == b"\x89PNG\r\n\x1a\n", "the screenshot is not a PNG", data[:16])
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack("!I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack("!IIBBBBB", chunk)
            check(depth == 8 and ctype in (2, 6) and interlace == 0,
                  "an unexpected PNG format", (depth, ctype, interlace))
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + n
    raw, stride = zlib.decompress(idat), w * bpp
    out, prev = bytearray(), bytearray(stride)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        prev = line
        out += line if bpp == 3 else bytes(v for i, v in enumerate(line) if i % 4 != 3)
    return w, h, bytes(out)


def compare_screens(screen, iid, out_dir):
    """Takes libvirt's screenshot of the VM now and compares it with the console canvas the
    browser saved (RGBA); returns (width, height, pixels whose colour differs)."""
    shot = out_dir / "libvirt-screenshot"
    r = subprocess.run(compute_env.VIRSH + ["screenshot", iid, "--file", str(shot)],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, f"virsh screenshot {iid} failed", r.stderr)
    data = shot.read_bytes()
    w, h, rgb = read_png(data) if data[:4] == b"\x89PNG" else read_ppm(data)
    rgba = Path(screen["file"]).read_bytes()
    if (w, h) != (screen["width"], screen["height"]) or len(rgba) != w * h * 4:
        return w, h, w * h
    differing = 0
    for i in range(w * h):
        a, b = rgb[3 * i:3 * i + 3], rgba[4 * i:4 * i + 3]
        if a != b and max(abs(x - y) for x, y in zip(a, b)) > 16:
            differing += 1
    return w, h, differing


def wait_serial(env, creds, iid, text, timeout=120):
    """Waits until the instance's serial console holds 'text'."""
    deadline, out = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        r = env.rest(creds, "GET", f"/v1/instances/{iid}/console")
        out = r.json.get("output", "") if r.status == 200 else ""
        if text in out:
            return out
        time.sleep(0.5)
    check(False, f"{text!r} never appeared on the serial console of {iid}", out[-1500:])


def ws_refused(env, path, origin=None):
    """Opens the console WebSocket expecting a refusal; returns (status, error code)."""
    try:
        c = VncClient.open(env.gw_port, path, origin=origin or env.endpoint.rstrip("/"))
    except WsRefused as e:
        code = None
        try:
            code = json.loads(e.body)["error"]["code"]
        except (ValueError, KeyError, TypeError):
            pass
        return e.status, code
    c.close()
    return 101, None


@tap.test(timeout=300)
def console_tickets_are_single_use_and_per_tenant(env):
    """The VM console without a browser: a raw WebSocket client through the proxy to the VM's
    VNC display; tickets only for one's own running instances, once, for a short time."""
    if not env.real:
        raise SkipTest(f"needs a real VM's display ({env.skip_reason})")
    a, b = S["a"], S["b"]
    ib = launch(env, b, "console-b")
    try:
        env.wait_state(b, [ib], "running", timeout=150)
        wait_serial(env, b, ib, "NUBO-GUEST-SCREEN")
        # Another tenant gets no ticket, by session or by key; the owner does.
        r = call(env, S["a_cookie"], "POST", f"/v1/instances/{ib}/vnc", {}, csrf=S["a_csrf"])
        check_eq((r.status, r.error_code), (400, "InvalidInstanceID.NotFound"),
                 f"A's session asking for B's console: {r}")
        r = env.rest(a, "POST", f"/v1/instances/{ib}/vnc")
        check_eq(r.error_code, "InvalidInstanceID.NotFound", f"A's key asking for B's: {r}")
        r = call(env, S["b_cookie"], "POST", f"/v1/instances/{ib}/vnc", {})
        check_eq((r.status, r.error_code), (403, "InvalidCsrfToken"), f"without CSRF token: {r}")
        r = call(env, S["b_cookie"], "POST", f"/v1/instances/{ib}/vnc", {}, csrf=S["b_csrf"])
        check_eq(r.status, 201, f"B's session asking for B's console: {r}")
        t = r.json
        check(len(t["token"]) == 43 and t["expires_in"] == 30 and t["instance_id"] == ib
              and t["websocket"].endswith(t["token"]) and t["viewer"].startswith("/console/vnc"),
              "the ticket", t)
        stored = [x[0] for x in env.psql("SELECT encode(id_hash, 'hex') FROM console_tickets")]
        check(stored and not any(t["token"] in x for x in stored), "tickets are stored in clear")

        # A page of another site cannot use it (and leaves it unused for the owner).
        check_eq(ws_refused(env, t["websocket"], origin="http://evil.example"),
                 (403, "InvalidOrigin"), "the ticket from another site's page")
        t0 = time.monotonic()
        c = VncClient.open(env.gw_port, t["websocket"], origin=env.endpoint.rstrip("/"))
        try:
            check_eq(c.headers.get("sec-websocket-protocol"), "binary", "the subprotocol")
            width, height, name = c.rfb_handshake()
            t_init = time.monotonic() - t0
            check(width >= 320 and height >= 200, f"the display's size {width}x{height}")
            pixels = c.request_update(width, height)
            bpp = c.pixel_format[0] // 8
            check_eq(len(pixels), width * height * bpp, f"the bytes of the {width}x{height} screen")
            lit = sum(1 for i in range(0, len(pixels), bpp) if any(pixels[i:i + bpp]))
            check(width * height // 1000 < lit < width * height // 2,
                  f"{lit} of {width * height} pixels lit: not the guest's text screen")
            t_screen = time.monotonic() - t0
            print(f"# raw client: {width}x{height} '{name}': ServerInit {t_init * 1000:.0f} ms "
                  f"after the WebSocket request, the whole screen ({len(pixels)} bytes, raw) "
                  f"{t_screen * 1000:.0f} ms")
            # While it is open, and after, the same ticket opens nothing.
            check_eq(ws_refused(env, t["websocket"]), (403, "InvalidConsoleTicket"),
                     "the ticket used a second time")
        finally:
            c.close()
        check_eq(ws_refused(env, t["websocket"]), (403, "InvalidConsoleTicket"),
                 "the ticket used again after its console closed")
        # Unknown, malformed, missing and expired tickets alike.
        for path in ("/v1/console/websocket?token=" + "A" * 43,
                     "/v1/console/websocket?token=short", "/v1/console/websocket"):
            check_eq(ws_refused(env, path), (403, "InvalidConsoleTicket"), f"GET {path}")
        t2 = env.rest(b, "POST", f"/v1/instances/{ib}/vnc").json
        env.psql("UPDATE console_tickets SET expires_at = now() - interval '1 second' "
                 "WHERE used_at IS NULL")
        check_eq(ws_refused(env, t2["websocket"]), (403, "InvalidConsoleTicket"),
                 "an expired ticket")
        status, _, body = env.http("GET", env.rest(b, "POST", f"/v1/instances/{ib}/vnc")
                                   .json["websocket"])
        check_eq(status, 400, f"a plain GET of the WebSocket: {body}")
        # A ticket issued while the instance ran opens nothing once it stopped; none is issued.
        t3 = env.rest(b, "POST", f"/v1/instances/{ib}/vnc").json
        check_eq(env.rest(b, "POST", f"/v1/instances/{ib}/stop").status, 200, "stopping B's")
        env.wait_state(b, [ib], "stopped", timeout=120)
        check_eq(ws_refused(env, t3["websocket"]), (403, "InvalidConsoleTicket"),
                 "a ticket of a stopped instance")
        r = env.rest(b, "POST", f"/v1/instances/{ib}/vnc")
        check_eq((r.status, r.error_code), (400, "IncorrectInstanceState"),
                 f"a ticket for a stopped instance: {r}")
        conns = env.psql("SELECT closed_at IS NOT NULL, bytes_out > 0 FROM vnc_connections "
                         f"WHERE instance_id = {sql_quote(ib)}")
        check_eq(conns, [["t", "t"]], "the one connection that was let in, recorded")
        logged = env.psql("SELECT http_status, error_code, tenant_id FROM request_log WHERE "
                          "action = 'GET /v1/console/websocket' AND http_status = 101 AND "
                          f"tenant_id = {sql_quote(b.tenant_id)}")
        check_eq(len(logged), 1, f"the opened console in the request log: {logged}")
    finally:
        env.rest(b, "POST", f"/v1/instances/{ib}/terminate")


@tap.test
def event_stream_is_per_tenant(env):
    a, b = S["a"], S["b"]
    r = call(env, None, "GET", "/v1/events")
    check_eq(r.status, 401, f"GET /v1/events without credentials: {r}")
    sa = Stream(env, cookie=S["a_cookie"])
    sb = Stream(env, cookie=S["b_cookie"])
    sadm = Stream(env, creds=env.admin)  # SigV4 works too
    try:
        for s, who in ((sa, "A"), (sb, "B"), (sadm, "the admin")):
            check_eq(s.resp.status, 200, f"{who}'s stream")
            check_eq(s.resp.getheader("content-type"), "text/event-stream; charset=utf-8",
                     f"{who}'s stream's Content-Type")
        ib = launch(env, b, "events-b")
        ev, _ = sb.wait_for(lambda e: e["instance_id"] == ib, 15)
        check(ev and ev["state"] == "pending" and ev["previous_state"] is None
              and ev["tenant_id"] == b.tenant_id, f"B's stream did not get its launch ({ev})",
              sb.raw[-10:])
        ev, _ = sadm.wait_for(lambda e: e["instance_id"] == ib, 15)
        check(ev, "the admin's stream did not get B's launch", sadm.raw[-10:])
        ia = launch(env, a, "events-a")
        ev, skipped = sa.wait_for(lambda e: e["instance_id"] == ia, 15)
        check(ev, "A's stream did not get A's own launch", sa.raw[-10:])
        check(not any(e["instance_id"] == ib or e["tenant_id"] != a.tenant_id for e in skipped),
              "A's stream carried another tenant's event", skipped)
        for iid, creds in ((ia, a), (ib, b)):
            r = env.rest(creds, "POST", f"/v1/instances/{iid}/terminate")
            check_eq(r.status, 200, f"terminating {iid}: {r}")
        ev, _ = sb.wait_for(lambda e: e["instance_id"] == ib and e["state"] != "pending", 30)
        check(ev, "B's stream did not get its termination", sb.raw[-10:])
        ev, skipped = sa.wait_for(lambda e: e["instance_id"] == ia and e["state"] != "pending", 30)
        check(ev, "A's stream did not get its termination", sa.raw[-10:])
        leaked = [e for e in skipped + list(sa.events.queue) if e["tenant_id"] != a.tenant_id]
        check(not leaked, "A's stream carried another tenant's events", leaked)
        S["streams_ok"] = True
    finally:
        for s in (sa, sb, sadm):
            s.close()
    logged = env.psql("SELECT tenant_id, access_key_id, http_status FROM request_log "
                      "WHERE action = 'GET /v1/events' AND http_status = 200")
    check(any(t == a.tenant_id and k.startswith("console:") for t, k, _ in logged),
          "the stream is not in the request log with its user", logged)


@tap.test
def task_progress_is_on_the_stream(env):
    """An image task's progress (as nubo-imaged writes it) reaches its tenant's streams as
    'task' events, in order, and no other tenant's."""
    a, b = S["a"], S["b"]
    img = env.rest(a, "POST", "/v1/images", {"name": "stream-import", "source_format": "vhd"})
    check_eq(img.status, 201, f"registering an image: {img}")
    task_id = "import-ami-" + os.urandom(9).hex()[:17]
    sa, sb = Stream(env, cookie=S["a_cookie"]), Stream(env, cookie=S["b_cookie"])
    try:
        check_eq((sa.resp.status, sb.resp.status), (200, 200), "the streams")
        time.sleep(0.5)
        # Active and leased for an hour: this environment's nubo-imaged leaves it to the test.
        env.psql(f"INSERT INTO image_tasks (id, kind, tenant_id, image_id, state, lease_until) "
                 f"VALUES ({sql_quote(task_id)}, 'import', {sql_quote(a.tenant_id)}, "
                 f"{sql_quote(img.json['id'])}, 'active', now() + interval '1 hour')")
        for progress, state in ((30, "active"), (70, "active"), (100, "completed")):
            env.psql(f"UPDATE image_tasks SET state = '{state}', progress = {progress}, "
                     f"status_message = 'at {progress}' WHERE id = {sql_quote(task_id)}")
        seen = []
        while not seen or seen[-1]["state"] != "completed":
            ev, _ = sa.wait_for(lambda e: e.get("type") == "task-progress", 15)
            check(ev, "A's stream did not get its task's progress", seen, sa.raw[-10:])
            seen.append(ev)
        check_eq([(e["task_id"], e["state"], e["progress"]) for e in seen],
                 [(task_id, "active", 0), (task_id, "active", 30), (task_id, "active", 70),
                  (task_id, "completed", 100)], "the task's events on A's stream")
        check_eq((seen[-1]["kind"], seen[-1]["image_id"], seen[-1]["message"]),
                 ("import", img.json["id"], "at 100"), "the last event")
        check(seen[-1]["_sse_id"].endswith(f".{seen[-1]['id']}") and "event: task" in sa.raw,
              "the SSE id (where the instance and task tables stand) and event name",
              sa.raw[-12:])
        ev, _ = sb.wait_for(lambda e: e.get("type") == "task-progress", 2)
        check(ev is None, "B's stream got A's task", ev)
    finally:
        sa.close()
        sb.close()


def task_rows(env, tenant_id, image_id):
    """An image task of 'tenant_id' as nubo-imaged would write it (this environment's
    nubo-imaged leaves it alone: active and leased for an hour); returns its id."""
    task_id = "import-ami-" + os.urandom(9).hex()[:17]
    env.psql(f"INSERT INTO image_tasks (id, kind, tenant_id, image_id, state, lease_until) "
             f"VALUES ({sql_quote(task_id)}, 'import', {sql_quote(tenant_id)}, "
             f"{sql_quote(image_id)}, 'active', now() + interval '1 hour')")
    return task_id


def task_progress(env, task_id, progress, state="active"):
    env.psql(f"UPDATE image_tasks SET state = '{state}', progress = {progress} "
             f"WHERE id = {sql_quote(task_id)}")


@tap.test
def a_stream_that_comes_back_gets_what_it_missed(env):
    """Last-Event-ID: a stream closed, across a gateway restart, and opened again with the id
    of the last message it had gets what was published for its tenant meanwhile, in order and
    once, then the live events; another tenant's are not replayed; a malformed id is 400."""
    a, b = S["a"], S["b"]
    img_a = env.rest(a, "POST", "/v1/images", {"name": "replay-a", "source_format": "vhd"})
    img_b = env.rest(b, "POST", "/v1/images", {"name": "replay-b", "source_format": "vhd"})
    check_eq((img_a.status, img_b.status), (201, 201), "registering the images")
    sa = Stream(env, cookie=S["a_cookie"])
    try:
        check_eq(sa.resp.status, 200, "A's stream")
        time.sleep(0.5)
        ta = task_rows(env, a.tenant_id, img_a.json["id"])
        ev, _ = sa.wait_for(lambda e: e.get("task_id") == ta, 15)
        check(ev and ev["progress"] == 0 and ev["_sse_id"], "A's task on A's stream", ev,
              sa.raw[-10:])
        last = ev["_sse_id"]
    finally:
        sa.close()
    # Away: A's task moves on, B's task starts, and the gateway restarts in the middle.
    task_progress(env, ta, 40)
    tb = task_rows(env, b.tenant_id, img_b.json["id"])
    env.stop_gateway()
    task_progress(env, ta, 60)
    env.start_gateway()
    task_progress(env, ta, 80)
    sa = Stream(env, cookie=S["a_cookie"], last_event_id=last)
    try:
        check_eq(sa.resp.status, 200, f"A's stream with Last-Event-ID {last}")
        task_progress(env, ta, 100, "completed")
        seen = []
        while not seen or seen[-1]["state"] != "completed":
            ev, _ = sa.wait_for(lambda e: e.get("type") == "task-progress", 15)
            check(ev, "A's stream did not get its task's progress again", seen, sa.raw[-10:])
            seen.append(ev)
        check_eq([(e["task_id"], e["progress"]) for e in seen],
                 [(ta, 40), (ta, 60), (ta, 80), (ta, 100)],
                 "what A missed, in order and once, then the live event")
        check(all(e["tenant_id"] == a.tenant_id for e in seen), "another tenant's events", seen)
        ids = [e["_sse_id"] for e in seen]
        check(len(set(ids)) == 4 and all(i.endswith(f".{e['id']}") for i, e in zip(ids, seen)),
              "each message's id names where the task table stood", ids)
        ev, _ = sa.wait_for(lambda e: e.get("task_id") == tb, 2)
        check(ev is None, "B's task was replayed to A", ev)
    finally:
        sa.close()
    # The admin's stream, back from the same point, gets both tenants' tasks.
    sadm = Stream(env, creds=env.admin, last_event_id=last)
    try:
        got = set()
        while len(got) < 2:
            ev, _ = sadm.wait_for(lambda e: e.get("task_id") in (ta, tb) and e["task_id"] not in got, 15)
            check(ev, "the admin's replay lacks a tenant's task", got, sadm.raw[-10:])
            got.add(ev["task_id"])
    finally:
        sadm.close()
    for bad in ("abc", "1.x", "-5", "1.2.3", "task-", "9" * 30):
        s = Stream(env, cookie=S["a_cookie"], last_event_id=bad)
        try:
            check_eq(s.resp.status, 400, f"Last-Event-ID {bad!r}")
            check_eq(json.loads(s.resp.read())["error"]["code"], "InvalidParameterValue",
                     f"the error for Last-Event-ID {bad!r}")
        finally:
            s.close()
    # An id from before this change ("task-N") is understood.
    s = Stream(env, cookie=S["a_cookie"], last_event_id=f"task-{seen[0]['id'] - 1}")
    try:
        check_eq(s.resp.status, 200, "Last-Event-ID task-N")
        ev, _ = s.wait_for(lambda e: e.get("task_id") == ta, 15)
        check(ev and ev["progress"] == 40, "the replay from an id of an earlier gateway", ev)
    finally:
        s.close()


@tap.test
def a_session_cannot_touch_another_tenants_instance(env):
    a, b = S["a"], S["b"]
    ib = launch(env, b, "isolation-b")
    ia = launch(env, a, "isolation-a")
    try:
        mine = call(env, S["a_cookie"], "GET", "/v1/instances")
        ids = [i["id"] for i in mine.json["instances"]]
        check(ia in ids, "A's session does not list A's own instance", mine)
        check(ib not in ids, "A's session lists B's instance", mine)
        r = call(env, S["b_cookie"], "GET", f"/v1/instances/{ib}")
        check_eq(r.status, 200, f"B's session reading B's instance: {r}")
        before = state_of(env, ib)
        r = call(env, S["a_cookie"], "GET", f"/v1/instances/{ib}")
        check_eq(r.error_code, "InvalidInstanceID.NotFound", f"A's session reading B's: {r}")
        for action in ("stop", "reboot", "terminate"):
            r = call(env, S["a_cookie"], "POST", f"/v1/instances/{ib}/{action}", {},
                     csrf=S["a_csrf"])
            check_eq(r.error_code, "InvalidInstanceID.NotFound", f"A's session: {action} B's: {r}")
        r = call(env, S["a_cookie"], "DELETE", f"/v1/instances/{ib}", csrf=S["a_csrf"])
        check_eq(r.error_code, "InvalidInstanceID.NotFound", f"A's session: DELETE B's: {r}")
        check_eq(state_of(env, ib), before, "B's instance after A's attempts")
        # B's own CSRF token in A's session does not help either.
        r = call(env, S["a_cookie"], "POST", f"/v1/instances/{ia}/reboot", {}, csrf=S["b_csrf"])
        check_eq((r.status, r.error_code), (403, "InvalidCsrfToken"),
                 f"B's token in A's session: {r}")
    finally:
        env.rest(a, "POST", f"/v1/instances/{ia}/terminate")
        env.rest(b, "POST", f"/v1/instances/{ib}/terminate")


@tap.test
def changes_need_the_csrf_token(env):
    a = S["a"]
    name = "csrf-check"
    exists = lambda: env.psql1("SELECT count(*) FROM key_pairs WHERE tenant_id = "  # noqa: E731
                               f"{sql_quote(a.tenant_id)} AND name = {sql_quote(name)}")
    for what, csrf, headers in (("no token", None, None),
                                ("a wrong token", "x" * 43, None),
                                ("another site's page", S["a_csrf"],
                                 {"Origin": "http://evil.example"})):
        r = call(env, S["a_cookie"], "POST", "/v1/keypairs", {"name": name}, csrf=csrf,
                 headers=headers)
        check_eq((r.status, r.error_code), (403, "InvalidCsrfToken"), f"with {what}: {r}")
        check_eq(exists(), "0", f"the key pair after a request with {what}")
    row = env.reqlog_row(r.request_id)
    check(row and row["tenant_id"] == a.tenant_id and row["access_key_id"] ==
          "console:" + user_id_of(env, a) and row["error_code"] == "InvalidCsrfToken",
          "the refused request in the log", row)
    r = call(env, S["a_cookie"], "GET", "/v1/keypairs")
    check_eq(r.status, 200, f"a read needs no token: {r}")
    r = call(env, S["a_cookie"], "POST", "/v1/keypairs", {"name": name}, csrf=S["a_csrf"],
             headers={"Origin": env.endpoint.rstrip("/")})
    check_eq(r.status, 201, f"with the session's token (and its own origin): {r}")
    check_eq(exists(), "1", "the key pair after the request with the token")
    r = env.rest(a, "DELETE", f"/v1/keypairs/{name}")  # SigV4: no token needed
    check(r.status in (200, 204), f"a signed request needs no token: {r}")
    check_eq(exists(), "0", "the key pair after the signed DELETE")


@tap.test
def sign_out_and_password_changes_end_sessions(env):
    a = S["a"]
    r, c1, d1 = sign_in(env, a.name, S["a_user"], S["a_pw"])
    r, c2, d2 = sign_in(env, a.name, S["a_user"], S["a_pw"])
    for c in (c1, c2):
        check_eq(call(env, c, "GET", "/v1/instances").status, 200, "a fresh session")
    # Sign-out needs the token too, then the cookie is dead (and the row is gone).
    r = call(env, c1, "DELETE", "/v1/session")
    check_eq((r.status, r.error_code), (403, "InvalidCsrfToken"), f"sign-out without token: {r}")
    check_eq(call(env, c1, "GET", "/v1/session").status, 200,
             "the session after a refused sign-out")
    r = call(env, c1, "DELETE", "/v1/session", csrf=d1["csrf_token"])
    check_eq(r.status, 200, f"sign-out: {r}")
    check("Max-Age=0" in r.headers.get("set-cookie", ""), "sign-out does not clear the cookie", r)
    for path in ("/v1/instances", "/v1/session"):
        r = call(env, c1, "GET", path)
        check_eq((r.status, r.error_code), (401, "AuthFailure"), f"GET {path} after sign-out: {r}")
    r = call(env, c1, "POST", "/v1/keypairs", {"name": "after-signout"}, csrf=d1["csrf_token"])
    check_eq(r.status, 401, f"a change after sign-out: {r}")
    check_eq(call(env, c2, "GET", "/v1/instances").status, 200, "the other session")
    # Changing one's own password: the current one is needed; the other sessions end.
    r = call(env, c2, "PUT", "/v1/me/password", {"current_password": "wrong one",
                                                 "password": "a new password 2"},
             csrf=d2["csrf_token"])
    check_eq((r.status, r.error_code), (400, "InvalidParameterValue"), f"wrong current: {r}")
    r, c3, _ = sign_in(env, a.name, S["a_user"], S["a_pw"])
    r = call(env, c2, "PUT", "/v1/me/password", {"current_password": S["a_pw"],
                                                 "password": "a new password 2"},
             csrf=d2["csrf_token"])
    check_eq(r.status, 200, f"changing one's own password: {r}")
    check_eq(call(env, c2, "GET", "/v1/instances").status, 200, "the session that changed it")
    check_eq(call(env, c3, "GET", "/v1/instances").status, 401, "another session after it")
    check_eq(sign_in(env, a.name, S["a_user"], S["a_pw"])[0].status, 401, "the old password")
    check_eq(sign_in(env, a.name, S["a_user"], "a new password 2")[0].status, 200,
             "the new password")
    # The admin resetting it ends every session of the user; disabling the user ends them too.
    r = env.rest(env.admin, "PUT", f"/v1/admin/users/{user_id_of(env, a)}/password",
                 {"password": S["a_pw"]})
    check_eq(r.status, 200, f"the admin resetting it: {r}")
    check_eq(call(env, c2, "GET", "/v1/instances").status, 401, "a session after the reset")
    r, c4, _ = sign_in(env, a.name, S["a_user"], S["a_pw"])
    check_eq(call(env, c4, "GET", "/v1/instances").status, 200, "a session after the reset")
    r = env.rest(env.admin, "POST", f"/v1/admin/users/{user_id_of(env, a)}/disable")
    check_eq(r.status, 200, f"disabling A's user: {r}")
    try:
        check_eq(call(env, c4, "GET", "/v1/instances").status, 401, "a disabled user's session")
        check_eq(sign_in(env, a.name, S["a_user"], S["a_pw"])[0].status, 401,
                 "a disabled user signing in")
    finally:
        env.rest(env.admin, "POST", f"/v1/admin/users/{user_id_of(env, a)}/enable")


if __name__ == "__main__":
    tap.main()
