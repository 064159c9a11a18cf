"""End-to-end fixture for tenant networks: nubo_env.NuboEnv (PostgreSQL + nubo-gateway) plus a
netns_env.NetLab with two compute "hosts" (h1, h2), both on a public network, each with its own
Open vSwitch and a real nubo-netctl registered as a host of the cloud.

Use: tap = nubo_env.Tap(__file__, fixture=net_env.NetEnv)"""

import os
import subprocess
import time

import netns_env
import nubo_env
from nubo_env import SkipTest, check

NETCTL = os.environ.get("NUBO_NETCTL_BIN", str(nubo_env.REPO / "build/debug/bin/nubo-netctl"))
PUBLIC = "203.0.113.0/24"
# The gateway allocates elastic IPs and VPN outside addresses from this pool; .1 is the
# public network's router (the "internet" namespace holds it).
os.environ["NUBO_NETWORK_PUBLIC_POOL"] = PUBLIC
os.environ["NUBO_NETWORK_PUBLIC_GATEWAY"] = "203.0.113.1"


class NetEnv(nubo_env.NuboEnv):
    """A cloud with two network hosts: gateway + PostgreSQL, a NetLab with hosts h1 and h2 (both
    on the public network, as ext0), and a nubo-netctl per host, registered as a host of the
    cloud. self.internet is a machine on the public network holding its router address
    203.0.113.1 and a client address 203.0.113.100."""

    def __init__(self):
        super().__init__()
        self.lab = None
        self.netctl = {}  # host name -> nubo_env.Daemon
        self.hosts = {}   # host name -> (lab Host, host id, node token)

    def start(self):
        if os.geteuid() != 0:
            raise SkipTest("network namespaces need root")
        super().start()
        self.lab = netns_env.NetLab()
        h1, h2 = self.lab.add_hosts("h1", "h2")
        self.lab.prime_underlay()
        self.pub = self.lab.add_public_network(PUBLIC)
        # Both hosts are on the public network: the VPN connection lands on either.
        self.pub.attach_host(h1, "ext0")
        self.pub.attach_host(h2, "ext0")
        # The internet: the public router 203.0.113.1 and a client .100 behind it.
        self.internet = self.pub.add_outside("net", "203.0.113.100/24")
        self.internet.iproute("addr", "add", "203.0.113.1/24", "dev", "eth0")
        for lh in (h1, h2):
            r = self.rest(self.admin, "POST", "/v1/admin/hosts",
                          {"name": lh.name, "zone": "nubo-1a", "vcpus": 8, "memory_mib": 16384,
                           "disk_gib": 100, "agent_url": "http://127.0.0.1:9"})
            check(r.status == 201, "register host " + lh.name, r)
            self.hosts[lh.name] = (lh, r.json["id"], r.json["node_token"])
            self.start_netctl(lh.name)

    def netctl_command(self, name):
        lh, _, token = self.hosts[name]
        return [NETCTL,
                "--set", f"netctl.control_url=http://127.0.0.1:{self.gw_port}",
                "--set", f"netctl.token={token}",
                "--set", f"netctl.tunnel_ip={lh.underlay_ip}",
                "--set", f"netctl.state_dir={self.tmp / ('netctl-' + name)}",
                "--set", f"netctl.host_netns={lh.netns}",
                "--set", "netctl.poll_ms=100",
                "--set", "netctl.public_interface=ext0",
                "--set", "log.level=debug"]

    def netctl_env(self, name):
        env = dict(self.hosts[name][0].ovs_env)
        env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1"
        return env

    def start_netctl(self, name):
        d = nubo_env.Daemon("nubo-netctl " + name, self.netctl_command(name),
                            self.netctl_env(name), self.tmp / f"netctl-{name}.log")
        d.start()
        self.netctl[name] = d

    def host_id(self, name):
        return self.hosts[name][1]

    def converged(self, timeout=20):
        """Waits until every host has applied its desired version with all ports plugged."""
        deadline = time.monotonic() + timeout
        rows = None
        while time.monotonic() < deadline:
            rows = self.psql("SELECT host_id, desired, applied, coalesce(ports_missing, -1), "
                             "coalesce(last_error, '') FROM netctl_versions")
            ok = rows and all(r[1] == r[2] and r[3] == "0" for r in rows)
            if ok:
                return
            time.sleep(0.1)
        check(False, f"netctl converged within {timeout} s", rows, self.netctl_logs())

    def netctl_logs(self):
        return "\n".join(f"--- {n}\n{d.tail(25)}" for n, d in self.netctl.items())

    def summary(self):
        return super().summary() + ", 2 network hosts"

    def close(self):
        errors = []
        for d in self.netctl.values():
            try:
                d.stop(timeout=10)
            except Exception as e:  # noqa: BLE001
                errors.append(f"netctl: {e}")
        # What nubo-netctl leaves running on purpose when it stops (VPN gateways, DHCP and
        # metadata namespaces: a restart finds them again) goes with --teardown.
        for name in self.hosts:
            r = subprocess.run(self.netctl_command(name) + ["--teardown"],
                               env=self.netctl_env(name), capture_output=True, text=True,
                               timeout=60)
            if r.returncode != 0:
                errors.append(f"nubo-netctl --teardown on {name}: {r.stderr.strip()[-500:]}")
        if self.lab:
            errors += self.lab.close()
        return errors + super().close()


