#!/usr/bin/python3
"""The network lab (netns_env.NetLab) itself: two "hosts", each a namespace with its own
ovsdb-server and ovs-vswitchd (userspace datapath), one instance on each, flows written here by
hand (what nubo-netctl will write), VXLAN between the hosts over the underlay.

Proves: TCP between the instances across the tunnel both ways (and a bulk transfer: the MTU),
isolation by tun_id, options:local_ip, `ovs-ofctl --bundle add-flows` with per-line keywords and
its atomicity, conntrack zones (a stateful allow), 1:1 DNAT with ct(nat) from a public network,
and the lab's own clean-up (also after a crashed run). Prints the set-up times."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import netns_env
import nubo_env
from nubo_env import SkipTest, check, check_eq

VNI = 5001
GW_MAC = "fa:16:3e:ff:ff:01"  # a router MAC no one answers for (static neighbours instead)
FIP, FIP_MAC = "203.0.113.10", "fa:16:3e:aa:00:10"


class LabEnv:
    """The fixture: a NetLab with hosts h1, h2 and instances a (on h1), b (on h2)."""

    def __init__(self):
        self.lab = None
        self.skip_reason = None
        self.times = {}

    def start(self):
        try:
            self.lab = netns_env.NetLab()
        except netns_env.LabError as e:
            self.skip_reason = str(e)
            return
        t0 = time.monotonic()
        self.h1, self.h2 = self.lab.add_hosts("h1", "h2")
        self.times["2 hosts"] = time.monotonic() - t0
        t0 = time.monotonic()
        self.a = self.lab.add_instance(self.h1, "a", "fa:16:3e:00:00:0a", "10.0.0.5/24",
                                       gateway="10.0.0.1")
        self.b = self.lab.add_instance(self.h2, "b", "fa:16:3e:00:00:0b", "10.0.0.6/24",
                                       gateway="10.0.0.1")
        self.times["2 instances"] = time.monotonic() - t0
        for inst in (self.a, self.b):
            inst.serve_tcp(7000)

    def need(self):
        if self.skip_reason:
            raise SkipTest(self.skip_reason)

    def close(self):
        return self.lab.close() if self.lab else []

    def summary(self):
        if self.skip_reason:
            return f"no lab: {self.skip_reason}"
        t = ", ".join(f"{k} up in {v * 1000:.0f} ms" for k, v in self.times.items())
        return f"lab {self.lab.prefix}: {t}"


tap = nubo_env.Tap(__file__, per_test_timeout=60, fixture=LabEnv)


def wait(cond, what, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    check(False, f"{what} (after {timeout} s)")


def vxlan(host, peer, *options):
    """The tunnel port to 'peer' on host's br-int, as nubo-netctl makes it; its ofport."""
    name = "vx-" + "".join(f"{int(x):02x}" for x in peer.underlay_ip.split("."))
    host.vsctl("--may-exist", "add-port", "br-int", name, "--", "set", "interface", name,
               "type=vxlan", f"options:remote_ip={peer.underlay_ip}", "options:key=flow",
               *options)
    port = host.ofport(name)
    check(port is not None and port > 0, f"{name} on {host.name} has an ofport", port,
          host.vsctl("list", "interface", name))
    return name, port


def tunnel_flows(inst, vx, vni_in=VNI, vni_out=VNI):
    """The hand-written flows of the tunnel test, in add-flows syntax."""
    t = inst.ofport
    return "\n".join(
        f"priority=100,{proto},in_port={t},actions=set_field:{vni_out}->tun_id,output:{vx}\n"
        f"priority=100,{proto},in_port={vx},tun_id={vni_in},actions=output:{t}"
        for proto in ("ip", "arp"))


def flow_packets(host, match):
    """n_packets of the flows of br-int that contain 'match', summed."""
    n = 0
    for line in host.ofctl("dump-flows", "br-int").splitlines():
        if match in line and "n_packets=" in line:
            n += int(line.split("n_packets=")[1].split(",")[0])
    return n


def tcp_ok(src, dst_ip, port=7000, **kw):
    check(src.tcp_connect(dst_ip, port, **kw), f"TCP {src.name} -> {dst_ip}:{port} works",
          src.last_tcp)


def tcp_fails(src, dst_ip, port=7000, timeout=1):
    check(not src.tcp_connect(dst_ip, port, timeout=timeout),
          f"TCP {src.name} -> {dst_ip}:{port} must fail", src.last_tcp)


@tap.test
def lab_is_as_described(env):
    env.need()
    lab, h1, h2, a, b = env.lab, env.h1, env.h2, env.a, env.b
    ns = netns_env.list_netns()
    for want in (h1.netns, h2.netns, a.netns, b.netns, lab.underlay_ns):
        check(want in ns, f"namespace {want} exists", ns)
    check(all(n.startswith(lab.prefix + "-") for n in (h1.netns, a.netns, lab.underlay_ns)),
          "every namespace carries the lab's prefix")
    for h in (h1, h2):
        # Each host's own OVS, reached from the root namespace through its ovs_env.
        check_eq(h.vsctl("get", "open_vswitch", ".", "external_ids:hostname").strip(), h.name,
                 f"{h.name}'s OVS")
        check_eq(sorted(h.vsctl("list-br").split()), ["br-int", "br-phy"], f"{h.name} bridges")
        check_eq(h.vsctl("get", "bridge", "br-int", "datapath_type").strip(), "netdev",
                 "br-int datapath")
        check_eq(h.vsctl("get", "bridge", "br-int", "fail_mode").strip(), "secure",
                 "br-int fail_mode")
        check_eq(h.vsctl("list-ports", "br-phy").split(), ["ul0"], "br-phy ports")
        check_eq(h.dump_flows("br-int"), [], f"{h.name}'s br-int has no flow")
        check(f"inet {h.underlay_cidr}" in h.iproute("addr", "show", "br-phy"),
              f"{h.name}'s underlay IP on br-phy", h.iproute("addr"))
        check("10.250.0.0/24 dev br-phy" in h.appctl("ovs/route/show"),
              "OVS's routing table has the underlay via br-phy", h.appctl("ovs/route/show"))
    check(h1.vsctl("get", "open_vswitch", ".", "_uuid") != h2.vsctl("get", "open_vswitch", ".",
                                                                   "_uuid"),
          "the two hosts have distinct OVS databases")
    for inst, h in ((a, h1), (b, h2)):
        check(inst.tap.startswith("tap") and len(inst.tap) == 11, "tap name", inst.tap)
        check_eq(h.vsctl("list-ports", "br-int").split(), [inst.tap], f"{h.name}'s br-int ports")
        found = h.vsctl("--bare", "--columns=ofport", "find", "interface",
                        f"external_ids:iface-id={inst.iface_id}").strip()
        check_eq(found, str(inst.ofport), "ofport found by iface-id")
        check_eq(h.find_ofport(inst.iface_id), inst.ofport, "Host.find_ofport")
        check_eq(h.vsctl("get", "interface", inst.tap, "external_ids:attached-mac").strip(),
                 f'"{inst.mac}"', "attached-mac")
        link = inst.iproute("-o", "link", "show", "eth0")
        check(inst.mac in link and "UP" in link, "eth0 up with the MAC", link)
        check(f"inet {inst.ip_cidr}" in inst.iproute("-o", "addr", "show", "eth0"), "eth0 IP")
        check("default via 10.0.0.1 dev eth0" in inst.iproute("route"), "default route",
              inst.iproute("route"))
        k = inst.run("ethtool", "-k", "eth0").stdout
        check("tx-checksumming: off" in k, "tx checksum offload off in the instance", k)
        check("inet6" not in inst.iproute("addr"), "no IPv6 chatter from the instance")


@tap.test
def nothing_passes_without_flows(env):
    env.need()
    a, b = env.a, env.b
    check(env.h1.ping(env.h2.underlay_ip), "the underlay works: h1's kernel pings h2")
    check(not a.ping(b.ip, timeout=0.5), "a cannot reach b while br-int has no flow")
    tcp_fails(a, b.ip)


@tap.test
def vxlan_tcp_both_ways(env):
    env.need()
    h1, h2, a, b = env.h1, env.h2, env.a, env.b
    for h in (h1, h2):
        check_eq(h.appctl("tnl/arp/show").splitlines()[2:], [],
                 f"{h.name}'s tunnel neighbour cache starts empty")
    _, vx1 = vxlan(h1, h2)
    _, vx2 = vxlan(h2, h1)
    h1.add_flows(tunnel_flows(a, vx1))
    h2.add_flows(tunnel_flows(b, vx2))
    env.vx = {"h1": vx1, "h2": vx2}
    check("vxlan_sys_4789" in h1.appctl("tnl/ports/show"), "OVS listens for VXLAN",
          h1.appctl("tnl/ports/show"))
    first = a.ping(b.ip, timeout=0.5)
    check(a.ping(b.ip, count=4, timeout=1), "a pings b across the tunnel")
    print(f"# first ping a -> b right after the flows (informational; earlier ARP retries of a "
          f"may already have made OVS resolve the peer): "
          f"{'answered' if first else 'lost (OVS was resolving the peer underlay MAC)'}")
    tcp_ok(a, b.ip)
    tcp_ok(b, a.ip)
    tcp_ok(a, b.ip, nbytes=300000, timeout=10)  # 1500-byte instance packets through the tunnel
    tcp_ok(b, a.ip, nbytes=300000, timeout=10)
    for h, peer in ((h1, h2), (h2, h1)):
        arp = h.appctl("tnl/arp/show")
        check(peer.underlay_ip in arp and peer.underlay_mac in arp,
              f"{h.name} learnt {peer.name}'s underlay MAC by itself", arp)
        check(flow_packets(h, f"tun_id=0x{VNI:x}") > 0, f"{h.name}'s tun_id flows matched",
              h.ofctl("dump-flows", "br-int"))
    check(not h1.log_problems(), "no error in h1's OVS log", *h1.log_problems())


@tap.test
def tun_id_mismatch_isolates(env):
    env.need()
    h2, a, b = env.h2, env.a, env.b
    vx2 = env.vx["h2"]
    t = b.ofport
    change = lambda vni_old, vni_new: h2.add_flows("\n".join(
        f"delete_strict priority=100,{p},in_port={vx2},tun_id={vni_old}\n"
        f"add priority=100,{p},in_port={vx2},tun_id={vni_new},actions=output:{t}"
        for p in ("ip", "arp")))
    change(VNI, VNI + 1)
    check(any(f"tun_id=0x{VNI + 1:x}" in f for f in h2.dump_flows()), "h2 now expects 5002",
          h2.dump_flows())
    tcp_fails(a, b.ip)
    tcp_fails(b, a.ip)
    check_eq(flow_packets(h2, f"tun_id=0x{VNI + 1:x}"), 0, "packets matching tun_id 5002 on h2")
    change(VNI + 1, VNI)
    tcp_ok(a, b.ip)
    tcp_ok(b, a.ip)


@tap.test
def local_ip_option(env):
    env.need()
    h1, h2, a, b = env.h1, env.h2, env.a, env.b
    name1, _ = vxlan(h1, h2, f"options:local_ip={h1.underlay_ip}")
    name2, _ = vxlan(h2, h1, f"options:local_ip={h2.underlay_ip}")
    tcp_ok(a, b.ip)
    h1.vsctl("set", "interface", name1, "options:local_ip=10.250.0.99")
    tcp_fails(a, b.ip)
    for h, n in ((h1, name1), (h2, name2)):
        h.vsctl("remove", "interface", n, "options", "local_ip")
    tcp_ok(a, b.ip)
    tcp_ok(b, a.ip)


@tap.test
def bundle_keywords_and_atomicity(env):
    env.need()
    h1 = env.h1
    h1.add_flows("add table=50,priority=10,in_port=1,actions=drop\n"
                 "add table=50,priority=11,in_port=2,actions=drop\n"
                 "add table=50,priority=12,in_port=3,actions=drop")
    h1.add_flows("modify_strict table=50,priority=11,in_port=2,actions=output:3\n"
                 "delete_strict table=50,priority=10,in_port=1\n"
                 "delete_strict table=50,priority=99,in_port=7\n"  # no such flow: no error
                 "add table=50,priority=13,in_port=4,actions=output:1")
    want = ["table=50, priority=11,in_port=2 actions=output:3",
            "table=50, priority=12,in_port=3 actions=drop",
            "table=50, priority=13,in_port=4 actions=output:1"]
    check_eq(sorted(h1.dump_flows("br-int", "table=50")), want,
             "table 50 after the keyword bundle")
    # The switch refuses the last flow (no meter 99): nothing of the bundle may stay.
    r = subprocess.run(["ovs-ofctl", "--bundle", "add-flows", "br-int", "-"], input=(
        "delete table=50\nadd table=50,priority=14,in_port=5,actions=drop\n"
        "add table=50,priority=15,in_port=6,actions=meter:99,output:1\n"),
        capture_output=True, text=True, env=h1.ovs_env, timeout=30)
    check(r.returncode != 0 and "OFPMMFC_INVALID_METER" in r.stderr,
          "the switch rejects a flow with an unknown meter", r.returncode, r.stderr)
    check_eq(sorted(h1.dump_flows("br-int", "table=50")), want,
             "table 50 after the failed bundle")
    h1.add_flows("delete table=50")
    check_eq(h1.dump_flows("br-int", "table=50"), [], "table 50 emptied")


@tap.test
def conntrack_zones_stateful_allow(env):
    env.need()
    lab, h1 = env.lab, env.h1
    t0 = time.monotonic()
    c = lab.add_instance(h1, "c", "fa:16:3e:00:00:0c", "10.0.0.7/24", gateway="10.0.0.1")
    d = lab.add_instance(h1, "d", "fa:16:3e:00:00:0d", "10.0.0.8/24", gateway="10.0.0.1")
    print(f"# 2 more instances up in {(time.monotonic() - t0) * 1000:.0f} ms")
    env.c = c
    c.serve_tcp(7000)
    d.serve_tcp(7000)
    d.serve_tcp(7001)
    C, D = c.ofport, d.ofport
    zone_d = lambda z: h1.add_flows(f"modify_strict priority=200,ip,in_port={D},"
                                    f"actions=ct(table=1,zone={z})")
    h1.add_flows(f"""
priority=200,arp,in_port={C},actions=output:{D}
priority=200,arp,in_port={D},actions=output:{C}
priority=200,ip,in_port={C},actions=ct(table=1,zone=5)
priority=200,ip,in_port={D},actions=ct(table=1,zone=5)
table=1,priority=100,ct_state=+trk+new,tcp,in_port={C},tp_dst=7000,actions=ct(commit,zone=5),output:{D}
table=1,priority=100,ct_state=+trk+est,in_port={C},actions=output:{D}
table=1,priority=100,ct_state=+trk+est,in_port={D},actions=output:{C}
table=1,priority=0,actions=drop
""")
    tcp_ok(c, d.ip)
    tcp_ok(c, d.ip, nbytes=200000, timeout=10)
    tcp_fails(c, d.ip, 7001)  # +new to another port: not allowed
    tcp_fails(d, c.ip)  # d may not open connections to c
    ct = h1.appctl("dpctl/dump-conntrack", "zone=5")
    check("dst=10.0.0.8" in ct and "dport=7000" in ct, "the connection is tracked in zone 5", ct)
    check("dport=7001" not in ct, "the refused connection was not committed", ct)
    # d's replies looked up in another zone are +new there, not +est: dropped.
    zone_d(6)
    tcp_fails(c, d.ip)
    zone_d(5)
    tcp_ok(c, d.ip)


@tap.test
def public_network_and_dnat(env):
    env.need()
    lab, h1 = env.lab, env.h1
    c = getattr(env, "c", None)
    check(c is not None, "instance c (from the conntrack test) exists")
    pub = lab.add_public_network()
    check_eq(pub.attach_host(h1), "ext0", "the host side's name")
    link = h1.iproute("-o", "link", "show", "ext0")
    check("UP" in link, "ext0 is up in h1's namespace", link)
    check(h1.vsctl("port-to-br", "ext0", check=False) == "", "ext0 is on no OVS bridge")
    client = pub.add_outside("client", "203.0.113.100/24")
    other = pub.add_outside("other", "203.0.113.101/24")
    check(client.ping(other.ip), "machines on the public network reach each other")
    check(not client.ping(FIP, timeout=0.5), "the floating IP answers nothing yet")
    # What nubo-netctl will do: ext0 on br-int as the external port, 1:1 DNAT to c.
    h1.vsctl("add-port", "br-int", "ext0", "--", "set", "interface", "ext0",
             "external_ids:nubo-role=external")
    E, C = h1.ofport("ext0"), c.ofport
    client.run("ip", "neigh", "replace", FIP, "lladdr", FIP_MAC, "dev", "eth0", "nud",
               "permanent")
    c.run("ip", "neigh", "replace", "10.0.0.1", "lladdr", GW_MAC, "dev", "eth0", "nud",
          "permanent")
    h1.add_flows(f"""
priority=300,ip,in_port={E},nw_dst={FIP},actions=ct(table=2,zone=9,nat)
priority=300,ip,in_port={C},nw_src={c.ip},nw_dst=203.0.113.0/24,actions=ct(table=3,zone=9,nat)
table=2,priority=100,ct_state=+trk+new,tcp,actions=ct(commit,zone=9,nat(dst={c.ip})),mod_dl_src:{GW_MAC},mod_dl_dst:{c.mac},output:{C}
table=2,priority=100,ct_state=+trk+est,actions=mod_dl_src:{GW_MAC},mod_dl_dst:{c.mac},output:{C}
table=2,priority=0,actions=drop
table=3,priority=100,ct_state=+trk+est,actions=mod_dl_src:{FIP_MAC},mod_dl_dst:{client.mac},output:{E}
table=3,priority=0,actions=drop
""")
    tcp_ok(client, FIP)
    tcp_ok(client, FIP, nbytes=200000, timeout=10)
    ct = h1.appctl("dpctl/dump-conntrack", "zone=9")
    check(f"dst={FIP}" in ct and f"reply=(src={c.ip},dst={client.ip}" in ct,
          "conntrack zone 9 holds the DNAT", ct)
    check(not client.ping(FIP, timeout=0.5), "ICMP is not NATed (only TCP was committed)")
    check(not h1.log_problems(), "no error in h1's OVS log", *h1.log_problems())


def _lab_pids(lab):
    pids = []
    for h in lab.hosts.values():
        pids += [p.pid for p in (h.ovsdb, h.vswitchd) if p]
    return pids + [p.pid for p in lab._procs]


@tap.test
def second_lab_alongside_cleans_up(env):
    env.need()
    t0 = time.monotonic()
    lab = netns_env.NetLab()
    try:
        h = lab.add_host("h1")  # the same names as the fixture's lab: no clash
        t_host = time.monotonic() - t0
        h2 = lab.add_host("h2")
        t_hosts = time.monotonic() - t0
        x = lab.add_instance(h, "a", "fa:16:3e:00:00:0a", "10.0.0.5/24")
        x.serve_tcp(7000)
        check(lab.prefix != env.lab.prefix, "a prefix of its own")
        pids, spaces, tmp = _lab_pids(lab), [h.netns, h2.netns, x.netns, lab.underlay_ns], lab.tmp
        check(all(s in netns_env.list_netns() for s in spaces), "its namespaces exist")
        vxlan(h, h2)
        vxlan(h2, h)
        lab.prime_underlay()
        for a, b in ((h, h2), (h2, h)):
            arp = a.appctl("tnl/arp/show")
            check(b.underlay_ip in arp and b.underlay_mac in arp,
                  f"prime_underlay filled {a.name}'s tunnel neighbour cache", arp)
    finally:
        errors = lab.close()
    check_eq(errors, [], "close() problems")
    left = [s for s in netns_env.list_netns() if s.startswith(lab.prefix)]
    check_eq(left, [], "namespaces left")
    alive = [p for p in pids if netns_env._pid_alive(p)]
    check_eq(alive, [], "processes of the lab still running")
    check(not tmp.exists(), "its temporary directory is gone", tmp)
    print(f"# a second lab alongside: one host up in {t_host * 1000:.0f} ms, two one after the "
          f"other in {t_hosts * 1000:.0f} ms, all with close() in "
          f"{(time.monotonic() - t0) * 1000:.0f} ms")
    tcp_ok(env.a, env.b.ip)  # the first lab did not notice


_CRASHER = r"""
import os, signal, sys
sys.path.insert(0, sys.argv[1])
import netns_env
lab = netns_env.NetLab()
h = lab.add_host("h1")
x = lab.add_instance(h, "a", "fa:16:3e:00:00:0a", "10.0.0.5/24")
x.serve_tcp(7000)
print(lab.prefix, lab.tmp, h.ovsdb.pid, h.vswitchd.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@tap.test
def crashed_lab_is_cleaned_up_by_the_next(env):
    env.need()
    r = subprocess.run([sys.executable, "-c", _CRASHER, str(Path(__file__).parent)],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == -signal.SIGKILL and r.stdout.strip(), "the crashing lab ran",
          r.returncode, r.stdout, r.stderr)
    prefix, tmp, *pids = r.stdout.split()
    tmp = Path(tmp)
    left = [s for s in netns_env.list_netns() if s.startswith(prefix + "-")]
    check(len(left) == 3, "the crashed lab left its namespaces", left)
    check(tmp.exists(), "and its temporary directory", tmp)
    wait(lambda: not any(netns_env._pid_alive(int(p)) and not netns_env._is_zombie(int(p))
                         for p in pids), "its OVS daemons died with it (PR_SET_PDEATHSIG)")
    lab = netns_env.NetLab()
    errors = lab.close()
    check_eq(errors, [], "close() problems")
    check(all(s in lab.stale_removed for s in left), "the next lab removed them",
          lab.stale_removed)
    check_eq([s for s in netns_env.list_netns() if s.startswith(prefix + "-")], [],
             "namespaces left")
    check(not tmp.exists(), "the temporary directory is gone", tmp)
    check(all(s.startswith(env.lab.prefix) is False for s in lab.stale_removed),
          "the running lab was not touched", lab.stale_removed)
    tcp_ok(env.a, env.b.ip)


if __name__ == "__main__":
    tap.main()
