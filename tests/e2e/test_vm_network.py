#!/usr/bin/python3
"""A real VM on a tenant network (issue 7 with the compute agent): RunInstances with a SubnetId
through the real nubo-gateway, nubo-scheduler and nubo-agent; the agent plugs the guest's tap into
a private Open vSwitch, a real nubo-netctl of the host programs it, and the busybox test guest,
booted by libvirt/QEMU, gets its address by DHCP (dnsmasq in the network's service namespace) and
reads its instance id from the metadata service 169.254.169.254. Its console shows both
(NUBO-NET, NUBO-METADATA). Stop and start keep the network; an agent restart plugs a running
instance's tap again; terminate removes the port and tap; an instance outside any subnet still
has no NIC.

The agent's taps live in the root network namespace (libvirtd's), so this Open vSwitch runs
there, and only one userspace Open vSwitch may run per namespace (its tap "ovs-netdev"): the
test waits for another one (`make run`, another run of this test) to go, and skips after a while.

Needs Open vSwitch, dnsmasq (dnsmasq-base), libvirt + QEMU (deploy/install-deps.sh).

Prints TAP. Run: /usr/bin/python3 tests/e2e/test_vm_network.py"""

import sys

sys.dont_write_bytecode = True

import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import compute_env  # noqa: E402
import nubo_env  # noqa: E402
from nubo_env import REPO, SkipTest, check, check_eq, sql_quote  # noqa: E402

NETCTL = os.environ.get("NUBO_NETCTL_BIN", str(REPO / "build/debug/bin/nubo-netctl"))
OVS_WAIT_S = 300  # for another userspace Open vSwitch in the root namespace to go


def tap_of(eni):
    return "tap" + eni[4:12]


class VmNetEnv(compute_env.ComputeEnv):
    """ComputeEnv whose agent plugs into a private Open vSwitch in the root namespace, with a
    nubo-netctl for the host (the agent's node token)."""

    def __init__(self):
        super().__init__()
        self.ovs_dir = None
        self.netctl = None
        self.taps = set()  # taps the tests made instances with: none may be left behind

    def start(self):
        if os.geteuid() != 0:
            raise SkipTest("Open vSwitch and tap devices need root")
        for prog in ("ovs-vswitchd", "dnsmasq"):
            if not shutil.which(prog, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
                raise SkipTest(f"{prog} is not installed (deploy/install-deps.sh)")
        deadline = time.monotonic() + OVS_WAIT_S
        while Path("/sys/class/net/ovs-netdev").exists():
            if time.monotonic() > deadline:
                raise SkipTest("another userspace Open vSwitch runs in the root network "
                               f"namespace (tap ovs-netdev) after {OVS_WAIT_S} s")
            time.sleep(1)
        self.ovs_dir = Path(tempfile.mkdtemp(prefix="nubo-vmnet-ovs-"))
        self.ovs_env = dict(os.environ, OVS_RUNDIR=str(self.ovs_dir))
        r = subprocess.run([str(REPO / "deploy/ovs-up.sh"), str(self.ovs_dir)],
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, "deploy/ovs-up.sh", r.stdout + r.stderr)
        super().start()
        if self.skip_reason:
            return
        self.netctl = nubo_env.Daemon(
            "nubo-netctl",
            [NETCTL, "--set", f"netctl.control_url={self.endpoint.rstrip('/')}",
             "--set", f"netctl.token={self.node_token}",
             "--set", f"netctl.state_dir={self.tmp / 'netctl'}",
             "--set", f"ovs.rundir={self.ovs_dir}", "--set", "netctl.poll_ms=100",
             "--set", "log.level=debug"],
            dict(self.ovs_env, ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"),
            self.tmp / "netctl.log")
        self.netctl.start()
        deadline = time.monotonic() + 20
        while self.vsctl("br-exists", "br-int", check_rc=False).returncode != 0:
            check(time.monotonic() < deadline and self.netctl.alive(),
                  "nubo-netctl made br-int", self.netctl.tail())
            time.sleep(0.1)

    def _agent_env(self):
        env = super()._agent_env()
        env["NUBO_OVS_RUNDIR"] = str(self.ovs_dir)
        return env

    def vsctl(self, *args, check_rc=True):
        r = subprocess.run(["ovs-vsctl", "--timeout=10"] + list(args), env=self.ovs_env,
                           capture_output=True, text=True, timeout=30)
        if check_rc:
            check(r.returncode == 0, f"ovs-vsctl {' '.join(args)}", r.stderr)
        return r

    def daemon_logs(self, lines=30):
        out = super().daemon_logs(lines)
        if self.netctl:
            out += f"\n--- nubo-netctl log ---\n{self.netctl.tail(lines)}"
        return out

    def close(self):
        errors = []
        if self.netctl:
            rc = self.netctl.stop(timeout=10)
            if rc not in (0, None):
                errors.append(f"nubo-netctl exited with {rc}:\n{self.netctl.tail()}")
            # The service namespaces and dnsmasq it leaves on purpose.
            r = subprocess.run(self.netctl.argv + ["--teardown"], env=self.netctl.env,
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                errors.append(f"nubo-netctl --teardown: {r.stderr.strip()[-500:]}")
        errors += super().close()
        # Domains destroyed by the teardown above leave their persistent taps.
        for t in self.taps:
            if Path("/sys/class/net", t).exists():
                subprocess.run(["ip", "link", "del", t], capture_output=True, timeout=30)
        if self.ovs_dir:
            r = subprocess.run([str(REPO / "deploy/ovs-up.sh"), "--stop", str(self.ovs_dir)],
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                errors.append(f"deploy/ovs-up.sh --stop: {r.stdout}{r.stderr}")
            shutil.rmtree(self.ovs_dir, ignore_errors=True)
        return errors

    def summary(self):
        return super().summary() + f", Open vSwitch {self.ovs_dir}, nubo-netctl"


tap = nubo_env.Tap(__file__, per_test_timeout=240, fixture=VmNetEnv)
S = {}  # state shared by the tests, in order


def console(ec2, iid):
    out = ec2.get_console_output(InstanceId=iid).get("Output") or ""
    return out


def wait_console(env, ec2, iid, needle, timeout=90, count=1):
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = console(ec2, iid)
        if text.count(needle) >= count:
            return text
        if "NUBO-GUEST-WARN" in text:
            break
        time.sleep(0.25)
    check(False, f"'{needle}' (x{count}) not on the console of {iid}", text[-2000:],
          env.daemon_logs())


def net_lines(text):
    """The NUBO-NET and NUBO-METADATA lines of a console, in order."""
    return [line.strip() for line in text.splitlines()
            if line.startswith(("NUBO-NET ", "NUBO-METADATA "))]


def ovs_port(env, eni):
    """(name, ofport) of the Open vSwitch interface with external_ids:iface-id 'eni', or None."""
    r = env.vsctl("--bare", "--columns=name,ofport", "find", "Interface",
                  f"external_ids:iface-id={eni}")
    words = r.stdout.split()
    return (words[0], int(words[1])) if len(words) == 2 else None


@tap.test
def vm_in_a_subnet_gets_its_address_by_dhcp_and_reads_its_metadata(env):
    image = env.guest_image()
    ec2 = env.ec2(env.tenant("vmnet"))
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(VpcId=vpc, GroupName="vm", Description="nothing in")["GroupId"]
    t0 = time.monotonic()
    out = ec2.run_instances(ImageId=image, InstanceType="t3.nano", MinCount=1, MaxCount=1,
                            SubnetId=subnet, SecurityGroupIds=[sg])
    inst = out["Instances"][0]
    iid, ip = inst["InstanceId"], inst["PrivateIpAddress"]
    eni = inst["NetworkInterfaces"][0]["NetworkInterfaceId"]
    mac = inst["NetworkInterfaces"][0]["MacAddress"]
    env.taps.add(tap_of(eni))
    # One outside any subnet, at the same time: no NIC, as before.
    plain = ec2.run_instances(ImageId=image, InstanceType="t3.nano", MinCount=1,
                              MaxCount=1)["Instances"][0]["InstanceId"]
    env.wait_state(env.tenant("vmnet"), [iid, plain], "running")
    t_running = time.monotonic() - t0
    text = wait_console(env, ec2, iid, "NUBO-METADATA")
    t_metadata = time.monotonic() - t0
    up = re.search(r"NUBO-GUEST-UPTIME ([0-9.]+)", text)
    print(f"# RunInstances to running {t_running:.1f} s, to the metadata read on the console "
          f"{t_metadata:.1f} s (TCG; the guest was READY {up.group(1) if up else '?'} s after "
          f"its kernel started)")
    S.update(ec2=ec2, iid=iid, eni=eni, ip=ip, plain=plain)

    check(f"NUBO-GUEST-NICS eth0={mac.lower()}" in text, "the guest's NIC has the interface's MAC",
          mac, text[-1500:])
    # The mask is the VPC's (docs/network.md: DHCP), the router the subnet's first address + 1,
    # the MTU leaves room for VXLAN.
    check_eq(net_lines(text), [f"NUBO-NET ip={ip}/16 router=10.0.1.1 mtu=1450",
                               f"NUBO-METADATA instance-id={iid}"],
             "what the guest got by DHCP and from the metadata service")
    check("NUBO-GUEST-WARN" not in text, "a warning on the guest's console", text[-1500:])

    port = ovs_port(env, eni)
    check(port is not None and port[0] == tap_of(eni) and port[1] > 0,
          "the interface is a port of br-int, found by its iface-id", port)
    ids = env.vsctl("get", "Interface", tap_of(eni), "external_ids").stdout
    for want in (f'attached-mac="{mac.lower()}"', f"vm-id={iid}"):
        check(want in ids, f"the port's external_ids have {want}", ids)
    xml = subprocess.run(compute_env.VIRSH + ["dumpxml", iid], capture_output=True,
                         text=True).stdout
    check(re.search(rf"<target dev='{tap_of(eni)}' managed='no'/>", xml) and
          "<host csum='off'/>" in xml, "the domain opens the agent's tap, without transmit "
          "checksum offload on the userspace datapath", xml)

    ptext = wait_console(env, ec2, plain, "NUBO-GUEST-READY")
    check("NUBO-GUEST-NICS" not in ptext and not net_lines(ptext),
          "an instance outside any subnet has no NIC", ptext[-1500:])
    ec2.terminate_instances(InstanceIds=[plain])


@tap.test
def stop_and_start_keep_the_port_and_the_network(env):
    ec2, iid, eni = S["ec2"], S["iid"], S["eni"]
    before = ovs_port(env, eni)
    ec2.stop_instances(InstanceIds=[iid])
    env.wait_state(env.tenant("vmnet"), [iid], "stopped", timeout=90)
    check_eq(ovs_port(env, eni), before, "the port (and its OpenFlow number) while stopped")
    ec2.start_instances(InstanceIds=[iid])
    env.wait_state(env.tenant("vmnet"), [iid], "running", timeout=60)
    text = wait_console(env, ec2, iid, "NUBO-METADATA", count=2)
    check_eq(net_lines(text)[-2:], [f"NUBO-NET ip={S['ip']}/16 router=10.0.1.1 mtu=1450",
                                    f"NUBO-METADATA instance-id={iid}"],
             "DHCP and metadata after start")
    check_eq(ovs_port(env, eni), before, "the port after start")


@tap.test
def an_agent_restart_plugs_running_instances_again(env):
    # As after `make run` restarts: Open vSwitch lost the port while the guest kept running.
    eni = S["eni"]
    env.vsctl("del-port", tap_of(eni))
    check(ovs_port(env, eni) is None, "the port was deleted")
    env.agent.stop()
    env.agent.start(timeout=60)
    port = ovs_port(env, eni)
    check(port is not None and port[0] == tap_of(eni) and port[1] > 0,
          "the agent's reconcile plugged the running instance's tap again", port,
          env.daemon_logs())


@tap.test
def terminate_removes_the_port_and_the_tap(env):
    ec2, iid, eni = S["ec2"], S["iid"], S["eni"]
    ec2.terminate_instances(InstanceIds=[iid])
    env.wait_state(env.tenant("vmnet"), [iid, S["plain"]], "terminated", timeout=90)
    check(ovs_port(env, eni) is None, "no port of the terminated instance's interface",
          env.vsctl("show").stdout)
    check(not Path("/sys/class/net", tap_of(eni)).exists(), "its tap device is gone")
    left = env.psql1(f"SELECT count(*) FROM network_interfaces WHERE instance_id = "
                     f"{sql_quote(iid)}")
    check_eq(left, "0", "its interface rows")


if __name__ == "__main__":
    sys.exit(tap.main())
