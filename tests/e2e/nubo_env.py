"""End-to-end test fixture for nubo: a throwaway PostgreSQL cluster plus a real nubo-gateway,
and a tiny TAP reporter.

Run by Debian's /usr/bin/python3 (it has boto3/botocore). Everything listens on 127.0.0.1 only;
everything is torn down at the end, also when a test or the set-up fails.

    import nubo_env
    tap = nubo_env.Tap(__file__)

    @tap.test
    def describe_regions(env):
        ec2 = env.ec2(env.tenant("t1"))
        ...

    @tap.test
    def rest_regions(env):  # the REST API: JSON in and out, signed with SigV4
        r = env.rest(env.tenant("t1"), "GET", "/v1/instances", query={"max_results": 5})
        assert r.status == 200 and "instances" in r.json

    if __name__ == "__main__":
        tap.main()

Environment knobs (for development only):
    NUBO_GATEWAY_BIN   the gateway binary (default build/debug/bin/nubo-gateway)
    NUBO_E2E_KEEP=1    keep the temporary directory (logs, cluster) and print its path
"""

import datetime
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GATEWAY = Path(os.environ.get("NUBO_GATEWAY_BIN", REPO / "build/debug/bin/nubo-gateway"))
MIGRATIONS = REPO / "deploy/migrations"
REGION = "nubo-1"
API_VERSION = "2016-11-15"
USER_AGENT = "nubo-e2e/1"  # of the raw requests (boto3 and the CLI send their own)
NULL = "\\N"  # how psql() prints SQL NULL (turned into None)


class TestFailure(AssertionError):
    """A failed check; its message is printed as the test's diagnostics."""


def check(cond, message, *details):
    """Fails the current test with 'message' (and details, printed indented) unless 'cond'."""
    if not cond:
        raise TestFailure("\n".join([message] + [_clip(str(d)) for d in details]))


def _clip(text, limit=3000):
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def check_eq(got, want, what):
    if got != want:
        raise TestFailure(_clip(f"{what}: got {got!r}, want {want!r}", 6000))


class SkipTest(Exception):
    pass


# --- PostgreSQL ------------------------------------------------------------------------------


def _pg_bindir():
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                             timeout=10).stdout.strip()
        if out and Path(out, "initdb").exists():
            return Path(out)
    except (OSError, subprocess.SubprocessError):
        pass
    return Path("/usr/lib/postgresql/15/bin")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sql_quote(value):
    """A SQL literal for 'value' (None -> NULL)."""
    if value is None:
        return "NULL"
    return "'" + str(value).replace("'", "''") + "'"


@dataclass
class Creds:
    """An access key and what it belongs to."""

    key_id: str
    secret: str
    tenant_id: str
    name: str  # tenant name


@dataclass
class Response:
    """A raw HTTP answer of the gateway."""

    status: int
    headers: dict  # lower-case names
    body: str

    @property
    def request_id(self):
        return self.headers.get("x-amzn-requestid")

    @property
    def error_code(self):
        try:
            root = ET.fromstring(self.body)
        except ET.ParseError:
            return None
        code = root.find("./Errors/Error/Code")
        return code.text if code is not None else None

    def __str__(self):
        body = self.body if len(self.body) < 2000 else self.body[:2000] + "..."
        return f"HTTP {self.status} request-id={self.request_id}\n{body}"


@dataclass
class RestResponse:
    """An answer of the REST API (/v1/...): JSON, or nothing (204)."""

    status: int
    headers: dict  # lower-case names
    body: str
    method: str = ""
    path: str = ""

    @property
    def request_id(self):
        return self.headers.get("x-amzn-requestid")

    @property
    def json(self):
        """The parsed body, or None when there is none or it is not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    @property
    def error_code(self):
        doc = self.json
        if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
            return doc["error"].get("code")
        return None

    def __str__(self):
        body = self.body if len(self.body) < 2000 else self.body[:2000] + "..."
        return (f"{self.method} {self.path} -> HTTP {self.status} "
                f"request-id={self.request_id}\n{body}")


def _die_with_parent():
    """In the child before exec: SIGKILL when the test process dies, so that no gateway
    outlives a test run that was killed (PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class Daemon:
    """A nubo daemon run from the test: started with a command and environment, logged to a
    file, stopped with a signal (or SIGKILL)."""

    def __init__(self, name, argv, env, log_path, ready=None):
        self.name, self.argv, self.env, self.log_path, self.ready = name, argv, env, log_path, ready
        self.proc = None
        self.exits = []

    def start(self, timeout=30.0):
        assert self.proc is None
        log = open(self.log_path, "ab")
        log.write(f"---- {self.name} start ----\n".encode())
        log.flush()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, env=self.env,
                                     preexec_fn=_die_with_parent)
        log.close()
        deadline = time.monotonic() + timeout
        while self.ready and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                rc, self.proc = self.proc.returncode, None
                raise RuntimeError(f"{self.name} exited with status {rc} at start:\n"
                                   + self.tail())
            if self.ready():
                return
            time.sleep(0.05)
        if self.ready:
            raise RuntimeError(f"{self.name} not ready after {timeout} s:\n" + self.tail())

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        p, self.proc = self.proc, None
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.exits.append((signal.Signals(sig).name, p.returncode))
        return p.returncode

    def kill(self):
        return self.stop(signal.SIGKILL)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            return Path(self.log_path).read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines=40):
        return "\n".join(self.log().splitlines()[-lines:])


class NuboEnv:
    """A PostgreSQL 15 cluster and a nubo-gateway on free ports, in a temporary directory."""

    def __init__(self):
        self.tmp = None
        self.pg_bin = _pg_bindir()
        self.pg_dir = None
        self.pg_port = None
        self.pg_started = False
        self.gw_port = None
        self.gw_proc = None
        self.gw_log = None
        self.gw_exits = []  # (how it was stopped, exit status) of every gateway run
        self.admin = None
        self._tenants = {}
        self._image = None
        self._as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    # -- life cycle --

    def start(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="nubo-e2e-"))
        os.chmod(self.tmp, 0o755)  # the postgres user must reach its cluster inside
        # Clients must not read root's AWS configuration or ask an instance metadata service.
        empty = self.tmp / "aws-empty"
        empty.write_text("")
        (self.tmp / "home").mkdir()
        os.environ.update({
            "AWS_CONFIG_FILE": str(empty),
            "AWS_SHARED_CREDENTIALS_FILE": str(empty),
            "AWS_EC2_METADATA_DISABLED": "true",
        })
        for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID",
                    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "HTTP_PROXY", "HTTPS_PROXY",
                    "http_proxy", "https_proxy"):
            os.environ.pop(var, None)
        os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
        self._start_pg()
        if not GATEWAY.exists():
            raise RuntimeError(f"{GATEWAY} does not exist: run `make` first")
        self.gw_port = free_port()
        env_file = self.tmp / "admin.env"
        self._gateway_command(["--bootstrap-admin", str(env_file)])
        v = self._parse_env(env_file)
        tenant_id = self.psql1("SELECT tenant_id FROM users WHERE role = 'admin'")
        self.admin = Creds(v["AWS_ACCESS_KEY_ID"], v["AWS_SECRET_ACCESS_KEY"], tenant_id, "admin")
        check_eq((v.get("NUBO_ENDPOINT") or "").rstrip("/"), self.endpoint.rstrip("/"),
                 "NUBO_ENDPOINT in the admin env file")
        self.start_gateway()

    def close(self):
        errors = []
        try:
            if self.gw_proc:
                self.stop_gateway()
        except Exception as e:  # noqa: BLE001 - teardown goes on
            errors.append(f"stopping the gateway: {e}")
        if self.pg_started:
            r = subprocess.run(self._as_pg + [str(self.pg_bin / "pg_ctl"), "-D", str(self.pg_dir),
                                              "-m", "immediate", "-w", "stop"],
                               capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                errors.append(f"pg_ctl stop: {r.stderr.strip()}")
            self.pg_started = False
        if self.tmp:
            if os.environ.get("NUBO_E2E_KEEP"):
                print(f"# kept {self.tmp}")
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)
        return errors

    def summary(self):
        return f"gateway {self.endpoint}, PostgreSQL 127.0.0.1:{self.pg_port}"

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _start_pg(self):
        self.pg_dir = self.tmp / "pg"
        self.pg_dir.mkdir(mode=0o700)
        if self._as_pg:
            shutil.chown(self.pg_dir, "postgres", "postgres")
        self.pg_port = free_port()
        self._run(self._as_pg + [str(self.pg_bin / "initdb"), "--no-sync", "-A", "trust",
                                 "-U", "nubo", "-E", "UTF8", "-D", str(self.pg_dir)], timeout=60)
        opts = f"-k {self.pg_dir} -h 127.0.0.1 -p {self.pg_port} -c fsync=off"
        self._run(self._as_pg + [str(self.pg_bin / "pg_ctl"), "-w", "-t", "30", "-D",
                                 str(self.pg_dir), "-l", str(self.pg_dir / "postgresql.log"),
                                 "-o", opts, "start"], timeout=60)
        self.pg_started = True
        self._run([str(self.pg_bin / "createdb"), "-h", str(self.pg_dir), "-p",
                   str(self.pg_port), "-U", "nubo", "nubo"], timeout=30)

    @staticmethod
    def _run(cmd, timeout, env=None):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        if r.returncode != 0:
            raise RuntimeError(f"command failed (exit {r.returncode}): {' '.join(cmd)}\n"
                               f"stdout: {r.stdout}\nstderr: {r.stderr}")
        return r

    # -- the gateway --

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.gw_port}/"

    @property
    def conninfo(self):
        return f"host={self.pg_dir} port={self.pg_port} dbname=nubo user=nubo"

    def gateway_env(self, daemon=False):
        env = dict(os.environ)
        env.update({
            "NUBO_DB_CONNINFO": self.conninfo,
            "NUBO_MASTER_KEY": str(self.tmp / "master.key"),
            "NUBO_HTTP_PORT": str(self.gw_port),
            "NUBO_DB_MIGRATIONS": str(MIGRATIONS),
            "NUBO_STORE_DIR": str(self.tmp / "images"),
        })
        if daemon:
            # The daemon may be killed; its leaks are not what these tests look at.
            env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1"
        return env

    def _gateway_command(self, args):
        return self._run([str(GATEWAY)] + args, timeout=60, env=self.gateway_env())

    def start_gateway(self, timeout=20.0):
        """Starts the daemon and waits until GET /healthz answers 200."""
        assert self.gw_proc is None
        self.gw_log_path = self.tmp / "gateway.log"
        self.gw_log = open(self.gw_log_path, "ab")
        self.gw_log.write(b"---- gateway start ----\n")
        self.gw_log.flush()
        self.gw_proc = subprocess.Popen([str(GATEWAY)], stdin=subprocess.DEVNULL,
                                        stdout=self.gw_log, stderr=subprocess.STDOUT,
                                        env=self.gateway_env(daemon=True),
                                        preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.gw_proc.poll() is not None:
                rc = self.gw_proc.returncode
                self.gw_proc = None
                raise RuntimeError(f"nubo-gateway exited with status {rc} at start:\n"
                                   + self.gateway_log_tail())
            try:
                status, _, _ = self.http("GET", "/healthz", timeout=2)
                if status == 200:
                    return
                last = f"HTTP {status}"
            except OSError as e:
                last = str(e)
            time.sleep(0.05)
        raise RuntimeError(f"nubo-gateway not healthy after {timeout} s ({last}):\n"
                           + self.gateway_log_tail())

    def stop_gateway(self, sig=signal.SIGTERM, timeout=15.0):
        """Stops the daemon with 'sig'; returns its exit status (negative: killed by a signal)."""
        p, self.gw_proc = self.gw_proc, None
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                self.gw_exits.append((f"{signal.Signals(sig).name}, then SIGKILL (timeout)",
                                      p.returncode))
                self.gw_log.close()
                return p.returncode
        self.gw_exits.append((signal.Signals(sig).name, p.returncode))
        self.gw_log.close()
        return p.returncode

    def kill_gateway(self):
        return self.stop_gateway(signal.SIGKILL)

    def gateway_log_tail(self, lines=40):
        try:
            text = self.gw_log_path.read_text(errors="replace")
        except (OSError, AttributeError):
            return "(no gateway log)"
        return "\n".join(text.splitlines()[-lines:])

    def gateway_log(self):
        try:
            return self.gw_log_path.read_text(errors="replace")
        except (OSError, AttributeError):
            return ""

    # -- accounts and test data --

    @staticmethod
    def _parse_env(path):
        values = {}
        for line in Path(path).read_text().splitlines():
            line = line.strip()
            if line.startswith("export ") and "=" in line:
                k, v = line[len("export "):].split("=", 1)
                if not v.startswith("$"):
                    values[k] = v.strip("'\"")
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            if k not in values:
                raise RuntimeError(f"{path} has no {k}:\n{Path(path).read_text()}")
        return values

    def create_tenant(self, name):
        """A new tenant with a member user and one key (nubo-gateway --create-tenant)."""
        out = self.tmp / f"tenant-{name}.env"
        self._gateway_command(["--create-tenant", name, "--env-out", str(out)])
        v = self._parse_env(out)
        key = v["AWS_ACCESS_KEY_ID"]
        tenant_id = self.psql1("SELECT u.tenant_id FROM access_keys k JOIN users u "
                               f"ON u.id = k.user_id WHERE k.id = {sql_quote(key)}")
        return Creds(key, v["AWS_SECRET_ACCESS_KEY"], tenant_id, name)

    def tenant(self, name):
        """The tenant called 'name', created on first use."""
        if name not in self._tenants:
            self._tenants[name] = self.create_tenant(name)
        return self._tenants[name]

    def image(self):
        """A public image owned by the admin tenant (inserted directly: no image store yet)."""
        if self._image is None:
            self._image = self.create_image("e2e-debian-12")
        return self._image

    def create_image(self, name, public=True):
        image_id = "ami-" + secrets.token_hex(9)[:17]
        self.psql(f"INSERT INTO images (id, tenant_id, name, is_public) VALUES "
                  f"({sql_quote(image_id)}, {sql_quote(self.admin.tenant_id)}, "
                  f"{sql_quote(name)}, {'true' if public else 'false'})")
        return image_id

    def set_instance_state(self, instance_ids, state):
        """Moves instances to 'state' as the scheduler and an agent would, for tests that run
        neither: a placed state puts them on a simulated host (no claim is taken) and clears
        any queued operation."""
        ids = ", ".join(sql_quote(i) for i in instance_ids)
        self.psql("INSERT INTO hosts (id, name, zone, simulated) "
                  "VALUES ('h-0000000000000fa4e', 'fixture-host', 'nubo-1a', true) "
                  "ON CONFLICT DO NOTHING")
        host = "'h-0000000000000fa4e'" if state in ("running", "stopped", "stopping") else "NULL"
        self.psql(f"UPDATE instances SET state = {sql_quote(state)}, updated_at = now(), "
                  f"host_id = {host}, pending_op = NULL WHERE id IN ({ids})")

    # -- SQL --

    def psql(self, sql, timeout=30):
        """Runs 'sql' (through stdin); returns the rows of the last statement as lists of
        strings (None for NULL)."""
        cmd = [str(self.pg_bin / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
               "-F", "\x1f", "-R", "\x1e", "-P", f"null={NULL}",
               "-h", str(self.pg_dir), "-p", str(self.pg_port), "-U", "nubo", "-d", "nubo"]
        r = subprocess.run(cmd, input=sql, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"psql failed: {r.stderr.strip()}\nSQL: {sql[:2000]}")
        out = r.stdout
        if out.endswith("\n"):
            out = out[:-1]
        if not out:
            return []
        return [[None if f == NULL else f for f in rec.split("\x1f")]
                for rec in out.split("\x1e")]

    def psql1(self, sql):
        """The single value of a one-row, one-column query."""
        rows = self.psql(sql)
        if len(rows) != 1 or len(rows[0]) != 1:
            raise RuntimeError(f"expected one value from {sql!r}, got {rows!r}")
        return rows[0][0]

    def reqlog_row(self, request_id):
        """The request_log row of 'request_id' as a dict, or None."""
        rows = self.psql("SELECT request_id, tenant_id, access_key_id, action, http_status, "
                         "error_code, params::text, api FROM request_log "
                         f"WHERE request_id = {sql_quote(request_id)}::uuid")
        if not rows:
            return None
        keys = ["request_id", "tenant_id", "access_key_id", "action", "http_status",
                "error_code", "params", "api"]
        row = dict(zip(keys, rows[0]))
        row["http_status"] = int(row["http_status"])
        return row

    def reqlog_count(self, access_key_id):
        return int(self.psql1("SELECT count(*) FROM request_log WHERE access_key_id = "
                              + sql_quote(access_key_id)))

    # -- clients --

    def ec2(self, creds, **config):
        """A boto3 EC2 client for 'creds' (no retries: the tests want the first answer)."""
        import boto3
        from botocore.config import Config

        cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"},
                     connect_timeout=5, read_timeout=30, **config)
        return boto3.session.Session().client(
            "ec2", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=creds.key_id, aws_secret_access_key=creds.secret, config=cfg)

    def http(self, method, path, body=None, headers=None, timeout=10, conn=None):
        """A plain HTTP request to the gateway; returns (status, headers, body text)."""
        own = conn is None
        if own:
            conn = http.client.HTTPConnection("127.0.0.1", self.gw_port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read().decode("utf-8", "replace")
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            if own:
                conn.close()

    def sign(self, creds, params, when=None, secret=None):
        """Signs an EC2 Query POST of 'params' with SigV4 (at time 'when', a UTC datetime,
        if given). Returns (headers, body)."""
        body = urllib.parse.urlencode(dict(params, **({"Version": API_VERSION}
                                                      if "Version" not in params else {})))
        return sign_body(self.endpoint, creds.key_id, secret or creds.secret, body, when)

    def ec2_raw(self, creds, params, when=None, tamper=None, conn=None, timeout=10):
        """Sends EC2 Query 'params' signed for 'creds' (unsigned if creds is None).
        'tamper(headers, body) -> (headers, body)' may change the request after signing."""
        if creds is None:
            p = dict(params)
            p.setdefault("Version", API_VERSION)
            body = urllib.parse.urlencode(p)
            headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                       "User-Agent": USER_AGENT}
        else:
            headers, body = self.sign(creds, params, when)
        if tamper:
            headers, body = tamper(headers, body)
        status, hdrs, text = self.http("POST", "/", body=body, headers=headers, conn=conn,
                                       timeout=timeout)
        return Response(status, hdrs, text)


    def rest(self, creds, method, path, body=None, query=None, raw=None, service="nubo",
             headers=None, conn=None, timeout=10):
        """A REST API request: 'body' (a dict) is sent as JSON, or 'raw' (str/bytes) as is;
        'query' (a dict or a list of pairs) becomes the query string. Signed with SigV4 for
        'creds' (service name 'service', region nubo-1); unsigned if creds is None.
        Returns a RestResponse."""
        if body is not None and raw is not None:
            raise ValueError("body and raw are exclusive")
        data = json.dumps(body).encode() if body is not None else (
            raw.encode() if isinstance(raw, str) else (raw or b""))
        qs = rest_query(query)
        target = path + ("?" + qs if qs else "")
        hdrs = {"User-Agent": USER_AGENT}
        if data:
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        if creds is not None:
            hdrs = sign_request(self.endpoint, creds.key_id, creds.secret, method, target, data,
                                hdrs, service=service)
        status, rh, text = self.http(method, target, body=data or None, headers=hdrs,
                                     conn=conn, timeout=timeout)
        return RestResponse(status, rh, text, method, target)


def rest_query(query):
    """A query string from a dict or pairs, encoded as SigV4 canonicalises it (RFC 3986
    unreserved characters kept, everything else percent-encoded)."""
    if not query:
        return ""
    items = query.items() if isinstance(query, dict) else query
    q = urllib.parse.quote
    return "&".join(f"{q(str(k), safe='-_.~')}={q(str(v), safe='-_.~')}" for k, v in items)


def sign_request(endpoint, key_id, secret, method, target, body=b"", headers=None,
                 service="nubo"):
    """Headers (with SigV4's Authorization and X-Amz-Date) for 'method' 'target' (a path with
    its query string, already encoded) and 'body' (bytes), signed by botocore's SigV4Auth."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method=method, url=endpoint.rstrip("/") + target, data=body,
                     headers=dict(headers or {}))
    SigV4Auth(Credentials(key_id, secret), service, REGION).add_auth(req)
    return {k: v for k, v in req.prepare().headers.items()}


def sign_body(endpoint, key_id, secret, body, when=None):
    """SigV4 headers for a form POST of 'body' to 'endpoint' (botocore's signer)."""
    from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    class FixedTimeSigV4(SigV4Auth):
        """SigV4Auth that signs as of a given time instead of now."""

        def add_auth(self, request):
            request.context["timestamp"] = when.strftime(SIGV4_TIMESTAMP)
            self._modify_request_before_signing(request)
            canonical = self.canonical_request(request)
            sts = self.string_to_sign(request, canonical)
            self._inject_signature_to_request(request, self.signature(sts, request))

    creds = Credentials(key_id, secret)
    signer = (FixedTimeSigV4 if when else SigV4Auth)(creds, "ec2", REGION)
    req = AWSRequest(method="POST", url=endpoint, data=body.encode(),
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                              "User-Agent": USER_AGENT})
    signer.add_auth(req)
    prepared = req.prepare()
    headers = {k: v for k, v in prepared.headers.items()}
    return headers, prepared.body


# --- TAP -------------------------------------------------------------------------------------


class _Timeout(Exception):
    pass


class Tap:
    """Registers test functions (each gets the NuboEnv) and runs them, printing TAP:
    `ok N - name` / `not ok N - name` with indented '#' diagnostics, then `1..N`.

    'fixture' makes the environment the tests get: NuboEnv by default (a cluster and a gateway,
    whose clean exit is checked at the end); any class with start(), close() -> [errors] and
    summary() does (then without the gateway checks)."""

    def __init__(self, file, per_test_timeout=90, fixture=None):
        self.name = Path(file).name
        self.fixture = fixture or NuboEnv
        self.tests = []
        self.per_test_timeout = per_test_timeout
        self.n = 0
        self.failed = 0

    def test(self, fn=None, *, timeout=None):
        def register(f):
            self.tests.append((f.__name__.removeprefix("test_"), f, timeout))
            return f
        return register(fn) if fn else register

    def _report(self, ok, name, diag=None, skip=None):
        self.n += 1
        if skip is not None:
            print(f"not ok {self.n} - {name} # SKIP {skip}")
        else:
            print(f"{'ok' if ok else 'not ok'} {self.n} - {name}")
            if not ok:
                self.failed += 1
        if diag:
            for line in str(diag).rstrip().splitlines():
                print(f"    # {line}")
        sys.stdout.flush()

    def _run_one(self, name, fn, env, timeout):
        def on_alarm(signum, frame):
            raise _Timeout(f"test timed out after {timeout} s")
        old = signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(timeout)
        t0 = time.monotonic()
        try:
            fn(env)
        except SkipTest as e:
            self._report(True, name, skip=str(e))
            return
        except TestFailure as e:
            self._report(False, name, f"{e}\n(at {_where(e)}; {time.monotonic() - t0:.1f} s)")
            return
        except BaseException as e:  # noqa: BLE001 - every error is a failed test
            if isinstance(e, KeyboardInterrupt):
                raise
            diag = "".join(traceback.format_exception(e)).rstrip()
            gw = getattr(env, "gw_proc", None)
            if gw is not None and gw.poll() is not None:
                diag += f"\nthe gateway died (status {env.gw_proc.returncode}); its log:\n"
                diag += env.gateway_log_tail()
            self._report(False, name, diag)
            return
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
        self._report(True, name, f"{time.monotonic() - t0:.1f} s")

    def main(self):
        """Starts the environment, runs every test, tears down; exits 0 iff all passed."""
        signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(KeyboardInterrupt()))
        t0 = time.monotonic()
        env = self.fixture()
        with_gateway = isinstance(env, NuboEnv)
        try:
            signal.signal(signal.SIGALRM, lambda s, f: (_ for _ in ()).throw(
                _Timeout("set-up timed out")))
            signal.alarm(90)
            try:
                env.start()
            finally:
                signal.alarm(0)
            print(f"# {self.name}: {env.summary()}, set up in {time.monotonic() - t0:.1f} s")
        except BaseException as e:  # noqa: BLE001
            diag = "".join(traceback.format_exception(e)).rstrip()
            self._report(False, "start the nubo environment", diag)
            for err in env.close():
                print(f"# teardown: {err}")
            print(f"1..{self.n}")
            sys.exit(1)
        try:
            for name, fn, timeout in self.tests:
                if with_gateway and (env.gw_proc is None or env.gw_proc.poll() is not None):
                    self._report(False, name, "the gateway is not running:\n"
                                 + env.gateway_log_tail())
                    continue
                self._run_one(name, fn, env, timeout or self.per_test_timeout)
            if with_gateway:
                self._check_gateway_exit(env)
        except KeyboardInterrupt:
            print("# interrupted")
            self.failed += 1
        finally:
            for err in env.close():
                print(f"# teardown: {err}")
            print(f"1..{self.n}")
            print(f"# {self.name}: {self.n - self.failed}/{self.n} passed in "
                  f"{time.monotonic() - t0:.1f} s")
        sys.exit(0 if self.failed == 0 else 1)

    def _check_gateway_exit(self, env):
        """The last test: the gateway stops cleanly on SIGTERM and its log has no sanitizer
        report."""
        name = "gateway stops cleanly on SIGTERM, no sanitizer report in its log"
        rc = env.stop_gateway() if env.gw_proc else None
        log = env.gateway_log()
        problems = []
        if rc is not None and rc != 0:
            problems.append(f"exit status {rc} after SIGTERM")
        for how, status in env.gw_exits:
            if how != "SIGKILL" and status != 0:
                problems.append(f"a gateway run stopped by {how} exited with {status}")
        for marker in ("AddressSanitizer", "runtime error:", "LeakSanitizer", "SUMMARY:"):
            if marker in log:
                problems.append(f"'{marker}' in the gateway log")
        diag = ""
        if problems:
            lines = log.splitlines()
            hits = [i for i, line in enumerate(lines)
                    if any(m in line for m in ("Sanitizer", "runtime error:"))]
            start = max(0, hits[0] - 5) if hits else max(0, len(lines) - 40)
            diag = "\n".join(problems) + "\n" + "\n".join(lines[start:start + 60])
        self._report(not problems, name, diag)


def _where(exc):
    tb = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(tb):
        if Path(frame.filename).name.startswith("test_"):
            return f"{Path(frame.filename).name}:{frame.lineno}"
    return f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def client_error(fn, *args, **kwargs):
    """Calls a boto3 method that must fail; returns (code, http status, request id, response)."""
    from botocore.exceptions import ClientError

    try:
        result = fn(*args, **kwargs)
    except ClientError as e:
        meta = e.response.get("ResponseMetadata", {})
        rid = meta.get("HTTPHeaders", {}).get("x-amzn-requestid") or meta.get("RequestId")
        return e.response.get("Error", {}).get("Code"), meta.get("HTTPStatusCode"), rid, e.response
    raise TestFailure(f"{getattr(fn, '__name__', fn)} succeeded but should have failed: "
                      f"{result!r}"[:3000])


__all__ = ["NuboEnv", "Tap", "Creds", "Response", "RestResponse", "TestFailure", "SkipTest",
           "check", "check_eq", "client_error", "sql_quote", "utcnow", "free_port", "threading"]
