"""End-to-end fixture with real compute: NuboEnv (PostgreSQL + nubo-gateway) plus libvirtd with
QEMU (deploy/libvirt-up.sh), the test guest built from Debian packages (tests/guest/build-guest.sh),
registered as public images, one compute host with a real nubo-agent, and a nubo-scheduler.

    import compute_env, nubo_env
    tap = nubo_env.Tap(__file__, fixture=compute_env.ComputeEnv)

The guest prints NUBO-GUEST-BOOTED, its user-data between NUBO-USER-DATA-BEGIN/END, and
NUBO-GUEST-READY on its serial console; GetConsoleOutput reads that back.

Skips (TAP "# SKIP") when libvirtd cannot be made to run here. Instances this fixture's agent
made are destroyed at teardown, whatever the tests did.
"""

import json
import os
import subprocess
import time
from pathlib import Path

import image_env
import nubo_env
from nubo_env import REPO, Daemon, check, sql_quote

SCHEDULER = Path(os.environ.get("NUBO_SCHEDULER_BIN", REPO / "build/debug/bin/nubo-scheduler"))
AGENT = Path(os.environ.get("NUBO_AGENT_BIN", REPO / "build/debug/bin/nubo-agent"))
GUEST_DIR = Path(os.environ.get("NUBO_TEST_GUEST", "/var/cache/nubo/test-guest"))
VIRSH = ["virsh", "-q", "-c", "qemu:///system"]
KERNEL_ARGS = "console=ttyS0 panic=-1 quiet"


def sha256_of(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ComputeEnv(image_env.ImageEnv):
    """A cloud with a real compute host: PostgreSQL, nubo-gateway and nubo-imaged (ImageEnv),
    plus libvirtd, nubo-agent and nubo-scheduler."""

    def __init__(self):
        super().__init__()
        self.agent = None
        self.scheduler = None
        self.host_id = None
        self.images = {}
        self.skip_reason = None
        self.agent_heartbeat_ms = 1000  # fast, for the tests' waits; production is 5000

    def start(self):
        super().start()
        r = subprocess.run([str(REPO / "deploy/libvirt-up.sh")], capture_output=True, text=True,
                           timeout=120)
        if r.returncode != 0:
            self.skip_reason = f"libvirtd could not be started here: {r.stdout}{r.stderr}"
            return
        r = subprocess.run([str(REPO / "tests/guest/build-guest.sh"), str(GUEST_DIR)],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"building the test guest failed:\n{r.stdout}\n{r.stderr}")
        self._register_images()
        self.state_dir = self.tmp / "agent"
        self.state_dir.mkdir()
        os.chmod(self.tmp, 0o755)
        token_file = self.tmp / "node.token"
        self._gateway_command(["--create-host", "e2e-node-1", "--token-out", str(token_file)])
        self.node_token = token_file.read_text().strip()
        self.host_id = self.node_token.split(":")[0]
        self.agent_port = nubo_env.free_port()
        self.agent = Daemon("nubo-agent", [str(AGENT)], self._agent_env(),
                            self.tmp / "agent.log", ready=self._agent_ready)
        self.agent.start(timeout=60)
        self.scheduler = Daemon("nubo-scheduler", [str(SCHEDULER)], self._scheduler_env(),
                                self.tmp / "scheduler.log")
        self.scheduler.start()

    def _agent_env(self):
        env = self.gateway_env(daemon=True)
        env.update({
            "NUBO_AGENT_CONTROL_URL": self.endpoint.rstrip("/"),
            "NUBO_AGENT_TOKEN": self.node_token,
            "NUBO_AGENT_STATE_DIR": str(self.state_dir),
            "NUBO_AGENT_STOP_GRACE_S": "20",
            "NUBO_AGENT_HEARTBEAT_MS": str(self.agent_heartbeat_ms),
            "NUBO_AGENT_KVM_PROBE_KERNEL": str(GUEST_DIR / "vmlinux"),
            "NUBO_AGENT_KVM_PROBE_INITRD": str(GUEST_DIR / "initrd.img"),
            "NUBO_HTTP_PORT": str(self.agent_port),
            "NUBO_LOG_LEVEL": "debug",
        })
        return env

    def _scheduler_env(self):
        env = self.gateway_env(daemon=True)
        self.scheduler_port = nubo_env.free_port()
        env.update({
            "NUBO_HTTP_PORT": str(self.scheduler_port),
            "NUBO_SCHEDULER_POLL_MS": "200",
            "NUBO_SCHEDULER_HEARTBEAT_TIMEOUT_S": "30",
            "NUBO_LOG_LEVEL": "debug",
        })
        return env

    def _agent_ready(self):
        # Ready once this start has heartbeated and reconciled: one more "reconcile found" line
        # in the log than there are earlier starts.
        log = self.agent.log()
        return log.count("reconcile found") >= log.count("---- nubo-agent start ----")

    def _register_images(self):
        sums = {}
        for name in ("vmlinux", "initrd.img", "disk.raw"):
            path = GUEST_DIR / name
            if not path.exists():
                raise RuntimeError(f"the test guest has no {path}")
            sums[name] = (path, sha256_of(path), path.stat().st_size)

        def register(body):
            r = self.rest(self.admin, "POST", "/v1/images", body)
            check(r.status == 201, f"registering image {body['name']}", r)
            return r.json["id"]

        def spec(name, kind):
            path, digest, size = sums[name]
            return {"name": f"nubo-test-guest-{kind}", "image_type": kind, "public": True,
                    "location": path.as_uri(), "sha256": digest, "size_bytes": size}

        kernel = register(spec("vmlinux", "kernel"))
        ramdisk = register(spec("initrd.img", "ramdisk"))
        machine = spec("disk.raw", "machine")
        machine.update({"kernel_id": kernel, "ramdisk_id": ramdisk, "kernel_args": KERNEL_ARGS,
                        "disk_format": "raw", "description": "busybox test guest"})
        self.images = {"kernel": kernel, "ramdisk": ramdisk, "machine": register(machine)}

    def guest_image(self):
        if self.skip_reason:
            raise nubo_env.SkipTest(self.skip_reason)
        return self.images["machine"]

    # -- what is on the node --

    def domains(self, all_hosts=False):
        """Names of the libvirt domains (running or not) that this environment's agent owns
        (its host id in their nubo metadata), or with 'all_hosts' every domain named like an
        instance: other environments may share this machine's libvirtd."""
        r = subprocess.run(VIRSH + ["list", "--all", "--name"], capture_output=True, text=True,
                           timeout=60)
        names = {n.strip() for n in r.stdout.splitlines() if n.strip().startswith("i-")}
        if all_hosts or not self.host_id:
            return names
        mine = set()
        for n in names:
            x = subprocess.run(VIRSH + ["dumpxml", "--inactive", n], capture_output=True,
                               text=True, timeout=60).stdout
            if f"<nubo:host>{self.host_id}</nubo:host>" in x or (
                    "<nubo:instance" in x and "<nubo:host>" not in x):
                mine.add(n)
        return mine

    def instance_dir(self, instance_id):
        return self.state_dir / "instances" / instance_id

    def host_usage(self):
        row = self.psql(f"SELECT used_vcpus, used_memory_mib, used_disk_gib, instance_count "
                        f"FROM hosts WHERE id = {sql_quote(self.host_id)}")[0]
        return tuple(int(v) for v in row)

    def wait_state(self, creds, ids, want, timeout=120):
        """Polls DescribeInstances until every instance of 'ids' is in 'want' (a state or a
        set of states); returns {id: (state, reason)}. Fails on 'error' unless wanted."""
        want = {want} if isinstance(want, str) else set(want)
        ec2 = self.ec2(creds)
        deadline = time.monotonic() + timeout
        last = {}
        while time.monotonic() < deadline:
            r = ec2.describe_instances(InstanceIds=list(ids))
            last = {i["InstanceId"]: (i["State"]["Name"], i.get("StateReason", {}).get("Message"))
                    for res in r["Reservations"] for i in res["Instances"]}
            if all(s in want for s, _ in last.values()):
                return last
            bad = {k: v for k, v in last.items() if v[0] == "error" and "error" not in want}
            check(not bad, f"instances went to error while waiting for {want}", bad,
                  self.daemon_logs())
            time.sleep(0.2)
        check(False, f"instances not {want} after {timeout} s: {last}", self.daemon_logs())

    def daemon_logs(self, lines=30):
        out = []
        for d in (self.agent, self.scheduler):
            if d:
                out.append(f"--- {d.name} log ---\n{d.tail(lines)}")
        return "\n".join(out)

    def close(self):
        errors = []
        for d in (self.scheduler, self.agent):
            if d and d.alive():
                rc = d.stop()
                if rc not in (0, None):
                    errors.append(f"{d.name} exited with {rc} on SIGTERM:\n{d.tail()}")
            if d:
                for marker in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
                    if marker in d.log():
                        errors.append(f"'{marker}' in the {d.name} log:\n{d.tail(60)}")
        # Leave no guest behind, whatever the tests did.
        if self.state_dir if hasattr(self, "state_dir") else None:
            for dom in self.domains(all_hosts=True):
                if self.instance_dir(dom).exists() or dom in self._instance_ids():
                    subprocess.run(VIRSH + ["destroy", dom], capture_output=True, timeout=60)
                    subprocess.run(VIRSH + ["undefine", dom, "--nvram"], capture_output=True,
                                   timeout=60)
        return errors + super().close()

    def _instance_ids(self):
        try:
            return {r[0] for r in self.psql("SELECT id FROM instances")}
        except Exception:  # noqa: BLE001 - the cluster may be gone
            return set()

    def summary(self):
        base = super().summary()
        if self.skip_reason:
            return base + " (no libvirt: compute tests skip)"
        return base + f", agent {self.host_id} on :{self.agent_port}, libvirt qemu:///system"


def aws_env(creds):
    """The environment for Debian's AWS CLI as 'creds'."""
    e = dict(os.environ)
    e.update({"AWS_ACCESS_KEY_ID": creds.key_id, "AWS_SECRET_ACCESS_KEY": creds.secret,
              "AWS_DEFAULT_REGION": nubo_env.REGION, "AWS_PAGER": ""})
    return e


def aws(env, creds, *args, timeout=120):
    """Runs Debian's AWS CLI against the gateway as 'creds'; returns parsed JSON output."""
    e = aws_env(creds)
    r = subprocess.run(["/usr/bin/aws", "--endpoint-url", env.endpoint, "--output", "json",
                        "ec2"] + list(args), capture_output=True, text=True, env=e,
                       timeout=timeout)
    check(r.returncode == 0, f"aws ec2 {' '.join(args)} failed ({r.returncode})", r.stderr)
    return json.loads(r.stdout) if r.stdout.strip() else {}
