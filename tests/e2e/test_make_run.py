"""End-to-end: `make run`, i.e. deploy/run.sh (what it runs after the package check), as a user
would: it builds the release build, brings up PostgreSQL and nubo-gateway in the foreground,
prints the endpoint and, on the first run only, the operator's credentials; Ctrl-C (SIGINT) or
SIGTERM stops everything; a second run reuses the state. Each run has its own state directory
(NUBO_STATE_DIR) and port (NUBO_PORT) and its own process group. Prints TAP.
Run: /usr/bin/python3 tests/e2e/test_make_run.py

Environment knobs (for development only):
    NUBO_RUN_SH    the script to run (default deploy/run.sh of this repository)
"""

import sys

sys.dont_write_bytecode = True

import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import stat  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402

import nubo_env  # noqa: E402
from nubo_env import SkipTest, TestFailure, check, check_eq  # noqa: E402

RUN_SH = Path(os.environ.get("NUBO_RUN_SH", nubo_env.REPO / "deploy/run.sh"))
AWS = "/usr/bin/aws"
BANNER_END = "Press Ctrl-C to stop"
START_TIMEOUT = 180  # the first run builds the release build
STOP_TIMEOUT = 20
PG_SHARED = Path("/var/lib/nubo")  # where run.sh puts clusters postgres cannot keep in the state

S = {}  # state shared by the tests, in order


def _clip(text, limit=4000):
    return text if len(text) <= limit else "..." + text[-limit:]


def _default_signals():
    # A shell started from a background job inherits SIGINT ignored, and a non-interactive bash
    # cannot trap a signal ignored at entry: Ctrl-C is what this test plays, so give it back.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


class Run:
    """One `deploy/run.sh` in its own process group, its output collected by a thread."""

    def __init__(self, state, port, home):
        self.state = state
        self.port = port
        self.lines = []
        self.lock = threading.Lock()
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "NUBO_STATE_DIR": str(state),
            "NUBO_PORT": str(port),
            "NUBO_AGENT_PORT": str(nubo_env.free_port()),
            "NUBO_SCHEDULER_PORT": str(nubo_env.free_port()),
            "NUBO_IMAGED_PORT": str(nubo_env.free_port()),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([str(RUN_SH)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True, preexec_fn=_default_signals)
        self.pgid = self.proc.pid  # a session (and process group) of its own
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            with self.lock:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    @property
    def output(self):
        with self.lock:
            return "\n".join(self.lines)

    def wait_for(self, text, timeout):
        """Waits until a line holds 'text'; False if run.sh exited (or 'timeout' passed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output:
                return True
            if self.proc.poll() is not None:
                self.reader.join(timeout=2)
                return text in self.output
            time.sleep(0.1)
        return False

    def signal(self, sig):
        try:
            os.killpg(self.pgid, sig)
        except ProcessLookupError:
            pass

    def wait(self, timeout):
        """run.sh's exit status, or None if it still runs after 'timeout' seconds."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self.reader.join(timeout=5)
        return rc

    def diagnostics(self):
        out = [f"$ NUBO_STATE_DIR={self.state} NUBO_PORT={self.port} {RUN_SH}",
               f"(exit status {self.proc.poll()}, {time.monotonic() - self.t0:.1f} s)",
               _clip(self.output)]
        for name in ("build.log", "initdb.log", "gateway.log"):
            p = self.state / "log" / name
            if p.exists():
                text = p.read_text(errors="replace").rstrip()
                out.append(f"--- {p} (end) ---\n{_clip(text, 2500)}")
        pg_log = self.state / "pg" / "postgresql.log"
        if pg_log.exists():
            out.append(f"--- {pg_log} (end) ---\n"
                       f"{_clip(pg_log.read_text(errors='replace').rstrip(), 1500)}")
        return "\n".join(out)


def _read_proc(pid, name):
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes().replace(b"\0", b" ").decode(
            "utf-8", "replace")
    except OSError:
        return ""


def processes_of(needles):
    """[(pid, command line)] of the processes whose command line or environment mentions one of
    'needles' (state directories, cluster directories), other than this one."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        cmd = _read_proc(entry.name, "cmdline")
        text = cmd + " " + _read_proc(entry.name, "environ")
        if cmd and any(n in text for n in needles):
            found.append((int(entry.name), cmd.strip()))
    return found


def port_open(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def parse_env_file(path):
    values = {}
    for line in Path(path).read_text().splitlines():
        m = re.match(r"export ([A-Z_]+)=(.*)$", line.strip())
        if m and not m.group(2).startswith("$"):
            values[m.group(1)] = m.group(2).strip("'\"")
    return values


class MakeRunEnv:
    """The fixture: temporary state directories, the runs of run.sh, and their clean-up."""

    def __init__(self):
        self.tmp = None
        self.runs = []
        self.states = []
        self.shared_existed = PG_SHARED.exists()

    def summary(self):
        return f"{RUN_SH}, state under {self.tmp}"

    def start(self):
        if not RUN_SH.exists():
            raise RuntimeError(f"{RUN_SH} does not exist")
        self.tmp = Path(tempfile.mkdtemp(prefix="nubo-mkrun-"))
        os.chmod(self.tmp, 0o755)  # the postgres user may reach the state dirs inside
        (self.tmp / "home").mkdir()
        (self.tmp / "aws-empty").write_text("")

    def state_dir(self, name, mode):
        d = self.tmp / name
        d.mkdir(mode=mode)
        os.chmod(d, mode)
        self.states.append(d)
        return d

    def run(self, state, port):
        r = Run(state, port, self.tmp / "home")
        self.runs.append(r)
        return r

    def cluster_dirs(self, state):
        """The directories of 'state' that may live elsewhere: the cluster (state/pg) and the
        compute node's (state/agent), and where symlinks there point."""
        dirs = [state / "pg"]
        digest = hashlib.sha256(str(state).encode()).hexdigest()[:12]
        for name in ("pg", "agent"):
            link = state / name
            if link.is_symlink():
                dirs.append(Path(os.readlink(link)))
            dirs.append(PG_SHARED / f"{name}-{digest}")
        return dirs

    def close(self):
        errors = []
        for r in self.runs:
            if r.proc.poll() is None:
                r.signal(signal.SIGTERM)
                if r.wait(STOP_TIMEOUT) is None:
                    r.signal(signal.SIGKILL)
                    r.wait(5)
                    errors.append(f"run.sh for {r.state} had to be killed")
        pg_ctl = nubo_env._pg_bindir() / "pg_ctl"
        for state in self.states:
            for d in self.cluster_dirs(state):
                if (d / "postmaster.pid").exists():
                    subprocess.run(["runuser", "-u", "postgres", "--", str(pg_ctl), "-D", str(d),
                                    "-m", "immediate", "-w", "-t", "20", "stop"],
                                   capture_output=True, timeout=30)
            needles = [str(d) for d in self.cluster_dirs(state)] + [str(state)]
            for pid, cmd in processes_of(needles):
                errors.append(f"left over after the tests, killed: {pid} {cmd[:200]}")
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            for d in self.cluster_dirs(state)[1:]:
                if d.exists() and d.parent == PG_SHARED:
                    shutil.rmtree(d, ignore_errors=True)
        if not self.shared_existed and PG_SHARED.exists():
            try:
                PG_SHARED.rmdir()
            except OSError:
                pass
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return errors


tap = nubo_env.Tap(__file__, per_test_timeout=120, fixture=MakeRunEnv)


# --- helpers ---------------------------------------------------------------------------------


def start(env, state, port, timeout=START_TIMEOUT):
    r = env.run(state, port)
    if not r.wait_for(BANNER_END, timeout):
        rc = r.proc.poll()
        why = (f"run.sh exited with status {rc} before printing '{BANNER_END}'" if rc is not None
               else f"no '{BANNER_END}' after {timeout} s")
        raise TestFailure(f"{why}\n{r.diagnostics()}")
    return r


def stop(env, r, sig):
    """Stops run 'r' with 'sig' sent to its process group (as Ctrl-C does with SIGINT) and
    checks that everything of its state directory is gone within STOP_TIMEOUT seconds."""
    t0 = time.monotonic()
    with r.lock:
        before = len(r.lines)
    r.signal(sig)
    rc = r.wait(STOP_TIMEOUT)
    took = time.monotonic() - t0
    with r.lock:
        S.setdefault("stops", []).append((signal.Signals(sig).name, rc, took, r.lines[before:]))
    check(rc is not None, f"run.sh still runs {STOP_TIMEOUT} s after "
          f"{signal.Signals(sig).name}\n{r.diagnostics()}")
    check(re.search(r"^nubo: stopped", r.output, re.M),
          f"run.sh did not print 'stopped' after {signal.Signals(sig).name}\n{r.diagnostics()}")
    needles = [str(d) for d in env.cluster_dirs(r.state)] + [str(r.state)]
    left = processes_of(needles)
    for _ in range(50):
        if not left:
            break
        time.sleep(0.1)
        left = processes_of(needles)
    check(not left, f"processes of {r.state} left after run.sh exited", *left)
    check(not port_open(r.port), f"port {r.port} still accepts connections after the stop")
    pg_port = int((r.state / "pg.port").read_text())
    check(not port_open(pg_port), f"PostgreSQL's port {pg_port} still accepts connections")
    return rc, took


def aws_with_env_file(env, env_file, *args):
    """'. env_file && /usr/bin/aws ec2 ARGS --endpoint-url $NUBO_ENDPOINT', as the banner
    says, in a clean environment (no other AWS configuration)."""
    penv = {"PATH": "/usr/bin:/bin", "HOME": str(env.tmp / "home"), "LANG": "C.UTF-8",
            "AWS_CONFIG_FILE": str(env.tmp / "aws-empty"),
            "AWS_SHARED_CREDENTIALS_FILE": str(env.tmp / "aws-empty"),
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": "", "AWS_MAX_ATTEMPTS": "1",
            "NO_PROXY": "127.0.0.1,localhost"}
    script = ('. "$1" && shift && exec /usr/bin/aws ec2 "$@" --endpoint-url "$NUBO_ENDPOINT" '
              '--output json --cli-connect-timeout 5 --cli-read-timeout 30')
    r = subprocess.run(["bash", "-c", script, "bash", str(env_file), *args], env=penv,
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise TestFailure(f"aws ec2 {' '.join(args)} with {env_file} failed (exit "
                          f"{r.returncode})\nstdout: {r.stdout[:2000]}\nstderr: {r.stderr[:2000]}")
    return json.loads(r.stdout) if r.stdout.strip() else {}


def check_env_file_works(env, env_file):
    v = parse_env_file(env_file)
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
            v["NUBO_ENDPOINT"].rstrip("/") + "/healthz", timeout=10) as resp:
        status, body = resp.status, resp.read().decode()
    check_eq(status, 200, "GET $NUBO_ENDPOINT/healthz")
    doc = json.loads(body)
    check_eq(doc.get("status"), "ok", f"status in /healthz ({body})")
    regions = aws_with_env_file(env, env_file, "describe-regions")
    check_eq([x["RegionName"] for x in regions.get("Regions", [])], ["nubo-1"],
             "aws ec2 describe-regions with the env file's credentials")


def check_console_sign_in(r, state, port):
    """The banner points at the console, whose operator password is in a 0600 file that the
    output never shows, and which signs the operator in."""
    pw_file = state / "console-admin.password"
    check(re.search(rf"Console:\s+http://127\.0\.0\.1:{port}/console/", r.output),
          "the banner does not show the console's address", r.output)
    check(str(pw_file) in r.output, f"the banner does not name {pw_file}", r.output)
    check(pw_file.is_file(), f"{pw_file} does not exist")
    check_eq(oct(stat.S_IMODE(pw_file.stat().st_mode)), oct(0o600), f"mode of {pw_file}")
    password = pw_file.read_text().strip()
    check(len(password) >= 20, f"the console password in {pw_file} is too short")
    check(password not in r.output, "run.sh printed the console password")
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/session", method="POST",
        data=json.dumps({"account": "admin", "user": "admin", "password": password}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=30) as resp:
        status, cookie = resp.status, resp.headers.get("Set-Cookie", "")
    check_eq(status, 200, "signing in to the console with the password file")
    check("HttpOnly" in cookie, "no session cookie from the console sign-in", cookie)
    return password


def check_banner(r, state, port, first):
    out = r.output
    env_file = state / "nubo-admin.env"
    check(re.search(rf"Endpoint:\s+http://127\.0\.0\.1:{port}\b", out),
          f"the banner does not show the endpoint http://127.0.0.1:{port}", out)
    check(re.search(rf"Credentials:\s+{re.escape(str(env_file))}\s*$", out, re.M),
          f"the banner does not name {env_file}", out)
    shown = dict(re.findall(r"^\s+(AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY)=(\S+)\s*$", out,
                            re.M))
    if first:
        v = parse_env_file(env_file)
        check_eq(shown, {k: v[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")},
                 "credentials shown on the first run vs the env file")
    else:
        check_eq(shown, {}, "credentials shown on a later run (they are shown once)")
        check("AWS_SECRET_ACCESS_KEY" not in out, "a later run prints AWS_SECRET_ACCESS_KEY", out)
    check_eq("creating PostgreSQL cluster" in out, first,
             "'creating PostgreSQL cluster' in the output")


# --- tests -----------------------------------------------------------------------------------


def check_instance_in_subnet(env, env_file, image, r):
    """An instance launched into a subnet gets a NIC on the run's Open vSwitch: its guest gets
    its address by DHCP and reads its instance id from the metadata service (nubo-netctl)."""
    vpc = aws_with_env_file(env, env_file, "create-vpc", "--cidr-block", "10.9.0.0/16")
    vpc_id = vpc["Vpc"]["VpcId"]
    sub = aws_with_env_file(env, env_file, "create-subnet", "--vpc-id", vpc_id, "--cidr-block",
                            "10.9.1.0/24")
    run = aws_with_env_file(env, env_file, "run-instances", "--image-id", image,
                            "--instance-type", "t3.nano", "--subnet-id",
                            sub["Subnet"]["SubnetId"])
    inst = run["Instances"][0]
    iid, ip = inst["InstanceId"], inst["PrivateIpAddress"]
    deadline = time.monotonic() + 90
    text = ""
    while time.monotonic() < deadline and "NUBO-METADATA" not in text \
            and "NUBO-GUEST-WARN" not in text:
        text = aws_with_env_file(env, env_file, "get-console-output", "--instance-id",
                                 iid).get("Output") or ""
        time.sleep(0.5)
    check(f"NUBO-NET ip={ip}/16 " in text and f"NUBO-METADATA instance-id={iid}" in text,
          "the instance in a subnet did not get its address by DHCP and its metadata",
          text[-1500:], r.diagnostics())
    aws_with_env_file(env, env_file, "terminate-instances", "--instance-ids", iid)
    deadline = time.monotonic() + 60
    state_name = ""
    while time.monotonic() < deadline and state_name != "terminated":
        d = aws_with_env_file(env, env_file, "describe-instances", "--instance-ids", iid)
        state_name = d["Reservations"][0]["Instances"][0]["State"]["Name"]
        time.sleep(0.3)
    check_eq(state_name, "terminated", "the instance in a subnet after terminate-instances")


@tap.test(timeout=START_TIMEOUT + 120)
def test_first_run(env):
    state = env.state_dir("state", 0o755)
    port = nubo_env.free_port()
    S["state"], S["port"] = state, port
    r = start(env, state, port)
    S["first_start_s"] = time.monotonic() - r.t0
    env_file = state / "nubo-admin.env"
    check(env_file.is_file(), f"{env_file} does not exist\n{r.diagnostics()}")
    check_eq(oct(stat.S_IMODE(env_file.stat().st_mode)), oct(0o600), f"mode of {env_file}")
    check_eq(oct(stat.S_IMODE((state / "master.key").stat().st_mode)), oct(0o600),
             "mode of master.key")
    v = parse_env_file(env_file)
    check_eq(v.get("NUBO_ENDPOINT", "").rstrip("/"), f"http://127.0.0.1:{port}",
             "NUBO_ENDPOINT in the env file")
    check(re.fullmatch(r"NKIA[A-Z2-7]{16}", v.get("AWS_ACCESS_KEY_ID", "")),
          "AWS_ACCESS_KEY_ID in the env file", v)
    check(len(v.get("AWS_SECRET_ACCESS_KEY", "")) == 40, "AWS_SECRET_ACCESS_KEY in the env file")
    check_banner(r, state, port, first=True)
    S["env_bytes"] = env_file.read_bytes()
    S["pg_port"] = (state / "pg.port").read_text()
    # What the check after the stop looks for is there now (else it would mean nothing).
    running = processes_of([str(d) for d in env.cluster_dirs(state)] + [str(state)])
    for what in ("nubo-gateway", "postgres"):
        check(any(what in cmd for _, cmd in running), f"no {what} process of {state} found "
              "while run.sh runs", *running)

    check_env_file_works(env, env_file)
    S["console_password"] = check_console_sign_in(r, state, port)
    # Something to find again on the next run.
    kp = aws_with_env_file(env, env_file, "create-key-pair", "--key-name", "mine")
    check(kp.get("KeyMaterial", "").startswith("-----BEGIN"), "create-key-pair", kp)

    # A new user launches the default image the banner names, and reads its console.
    m = re.search(r"--image-id (ami-[0-9a-f]{17})", r.output)
    check(m, "the banner names no image to launch", r.output)
    run = aws_with_env_file(env, env_file, "run-instances", "--image-id", m.group(1),
                            "--instance-type", "t3.nano", "--user-data", "hello from make run")
    iid = run["Instances"][0]["InstanceId"]
    deadline = time.monotonic() + 90
    text, state_name = "", ""
    while time.monotonic() < deadline and "NUBO-GUEST-READY" not in text:
        d = aws_with_env_file(env, env_file, "describe-instances", "--instance-ids", iid)
        state_name = d["Reservations"][0]["Instances"][0]["State"]["Name"]
        check(state_name in ("pending", "running"), f"{iid} went {state_name}", d)
        if state_name == "running":
            text = aws_with_env_file(env, env_file, "get-console-output", "--instance-id",
                                     iid).get("Output") or ""
        time.sleep(0.5)
    check("NUBO-GUEST-READY" in text and "hello from make run" in text,
          f"the instance of the default image did not boot and print its user-data "
          f"({state_name})", text[-1500:], r.diagnostics())
    aws_with_env_file(env, env_file, "terminate-instances", "--instance-ids", iid)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and state_name != "terminated":
        d = aws_with_env_file(env, env_file, "describe-instances", "--instance-ids", iid)
        state_name = d["Reservations"][0]["Instances"][0]["State"]["Name"]
        time.sleep(0.3)
    check_eq(state_name, "terminated", "the instance after terminate-instances")
    check_instance_in_subnet(env, env_file, m.group(1), r)

    rc, took = stop(env, r, signal.SIGINT)  # Ctrl-C
    S["stop1"] = (rc, took)
    check(r.proc.poll() is not None, "run.sh did not exit")


@tap.test
def test_second_run_reuses_state(env):
    if "env_bytes" not in S:
        raise TestFailure("needs the first run, which failed")
    state, port = S["state"], S["port"]
    r = start(env, state, port, timeout=120)
    S["second_start_s"] = time.monotonic() - r.t0
    check_banner(r, state, port, first=False)
    env_file = state / "nubo-admin.env"
    check_eq(env_file.read_bytes(), S["env_bytes"], "the env file after a second run (byte for "
             "byte)")
    check_eq(oct(stat.S_IMODE(env_file.stat().st_mode)), oct(0o600), f"mode of {env_file}")
    check_eq((state / "pg.port").read_text(), S["pg_port"], "pg.port after a second run")
    check_env_file_works(env, env_file)
    check_eq(check_console_sign_in(r, state, port), S.get("console_password"),
             "the console password after a second run")
    keys = aws_with_env_file(env, env_file, "describe-key-pairs")
    check_eq([k["KeyName"] for k in keys.get("KeyPairs", [])], ["mine"],
             "key pairs after a restart (the state survives)")
    rc, took = stop(env, r, signal.SIGTERM)
    S["stop2"] = (rc, took)


@tap.test(timeout=150)
def test_state_dir_postgres_cannot_reach(env):
    """A state directory of mode 0700 (a home directory, say): run.sh keeps the cluster under
    /var/lib/nubo/pg-<hash> with a symlink state/pg to it, and works, twice."""
    if os.geteuid() != 0:
        raise SkipTest("not root: the cluster belongs to the user running run.sh")
    state = env.state_dir("private", 0o700)
    port = nubo_env.free_port()
    real = PG_SHARED / ("pg-" + hashlib.sha256(str(state).encode()).hexdigest()[:12])
    r = start(env, state, port, timeout=120)
    check(re.search(rf"postgres cannot reach {re.escape(str(state))}; the cluster lives in "
                    rf"{re.escape(str(real))}", r.output),
          "run.sh does not say where the cluster lives", r.output)
    check((state / "pg").is_symlink() and os.readlink(state / "pg") == str(real),
          f"{state}/pg is not a symlink to {real}")
    check((real / "PG_VERSION").is_file(), f"no cluster in {real}")
    env_file = state / "nubo-admin.env"
    check_banner(r, state, port, first=True)
    env_bytes = env_file.read_bytes()
    check_env_file_works(env, env_file)
    stop(env, r, signal.SIGTERM)
    # Again: the symlink and the cluster are reused.
    r = start(env, state, port, timeout=120)
    check_banner(r, state, port, first=False)
    check_eq(env_file.read_bytes(), env_bytes, "the env file after a second run")
    check_env_file_works(env, env_file)
    stop(env, r, signal.SIGINT)


@tap.test
def test_stop_messages(env):
    """What run.sh says when it is stopped on purpose: 'stopping', 'stopped', and no claim that a
    daemon exited by itself."""
    stops = S.get("stops")
    if not stops:
        raise TestFailure("no run was stopped (the earlier tests failed)")
    for name, rc, took, lines in stops:
        text = "\n".join(lines)
        check(not re.search(r"a daemon exited", text),
              f"after {name}, run.sh says a daemon exited by itself (exit status {rc}); its "
              "last lines:", text)


if __name__ == "__main__":
    tap.main()
