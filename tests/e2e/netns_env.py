"""A multi-"host" network lab with real Open vSwitch, for the tenant-network data plane tests.

Standard library only. Needs root, iproute2 (`ip netns`), ethtool and Open vSwitch 3.1's programs
(ovsdb-tool, ovsdb-server, ovs-vswitchd, ovs-vsctl, ovs-ofctl, ovs-appctl). The system's own OVS
is never used or touched: every host runs its own. Self-test: tests/e2e/test_netns_lab.py.

    import netns_env
    with netns_env.NetLab() as lab:                  # close() at the end, also on errors
        h1, h2 = lab.add_hosts("h1", "h2")           # or lab.add_host("h1"), one at a time
        a = lab.add_instance(h1, "a", "fa:16:3e:00:00:01", "10.0.0.5/24", gateway="10.0.0.1")
        b = lab.add_instance(h2, "b", "fa:16:3e:00:00:02", "10.0.0.6/24", gateway="10.0.0.1")
        # program h1's and h2's br-int: h1.ofctl(...), h1.add_flows(text), or run the daemon
        # under test in the root namespace with env=h1.ovs_env
        b.serve_tcp(7000)                            # an echo server inside b
        assert a.tcp_connect(b.ip, 7000)             # connects, echoes 64 bytes back
        pub = lab.add_public_network()               # 203.0.113.0/24
        pub.attach_host(h1)                          # "ext0" in h1's namespace, on no bridge
        client = pub.add_outside("client", "203.0.113.100/24")

API
    NetLab(prefix=None, underlay_mtu=1600, ipv6=False)      context manager
        .add_host(name) -> Host, .add_hosts(*names) -> [Host] (OVS daemons start side by side)
        .add_instance(host, name, mac, ip_cidr, gateway=None, iface_id=None, mtu=None, tap=None)
        .add_public_network(cidr="203.0.113.0/24") -> PublicNet
        .prime_underlay()   every host's OVS tunnel neighbour cache gets every other host
        .close() -> [problems]; .prefix, .tmp, .hosts, .instances, .timings, .stale_removed
    Host: .name, .netns, .underlay_ip, .underlay_cidr, .underlay_mac (br-phy's), .ovs_env (the
        process environment plus OVS_RUNDIR/OVS_DBDIR/OVS_LOGDIR/OVS_SYSCONFDIR: ovs-vsctl,
        ovs-ofctl and ovs-appctl run in the ROOT namespace with it reach this host's OVS),
        .ovs_vars (those four only), .db_sock, .rundir, .logdir,
        .vsctl(*a) / .ofctl(*a) / .appctl(*a) -> stdout (root namespace, ovs_env),
        .add_flows(text, bridge="br-int") (ovs-ofctl --bundle add-flows), .dump_flows(bridge,
        *match) -> [flow without counters], .ofport(ifname), .find_ofport(iface_id),
        .run(*argv) -> CompletedProcess (inside the namespace; LabError on failure unless
        check=False), .iproute(*a) (`ip -n NETNS ...`), .ping(ip), .log_problems()
    Inst: .name, .netns, .mac, .ip, .ip_cidr, .host, .tap, .iface_id, .ofport, .run(*argv),
        .iproute(*a), .ping(ip, count=1, timeout=1) -> bool, .tcp_connect(ip, port,
        timeout=2, nbytes=64) -> bool (.last_tcp says why), .serve_tcp(port) (an echo server,
        killed at close), .spawn(*argv) -> Popen (killed at close)
    PublicNet: .netns, .cidr, .attach_host(host, ifname="ext0") -> ifname,
        .add_outside(name, ip_cidr, mac=None, gateway=None) -> Inst (host None, no ofport)
  There is no ping program on these machines: ping() is a raw-socket ICMP echo in Python.
  Use a lab from the thread that made it: its children die with that thread (PR_SET_PDEATHSIG).

What is built (every name starts with the lab's prefix, "nlab<pid>-<4 hex>" by default):

    namespace PREFIX-ul       the underlay: kernel bridge br0 (MTU 1600), ports p1, p2, ...
    namespace PREFIX-h-NAME   a compute host: its own ovsdb-server and ovs-vswitchd (started with
                              `ip netns exec`, so they see this namespace's links and routes),
                              state in TMP/NAME/{run,db,log}; bridges:
                                br-phy  netdev, standalone (NORMAL), ports ul0 (the veth to the
                                        underlay, "arp off") and LOCAL; the underlay IP
                                        10.250.0.N/24 and MAC 02:fa:00:00:00:NN are br-phy's
                                br-int  netdev, fail_mode=secure, other_config:disable-in-band,
                                        NO flow at all, ports: LOCAL (down) and the instances'
    namespace PREFIX-i-NAME   an instance: eth0 (veth; MAC, IP, default route, tx checksum off);
                              its peer "tap" + 8 hex chars (from iface_id) sits in the host
                              namespace, up, on br-int, with external_ids iface-id, attached-mac,
                              iface-status=active, vm-id (what libvirt sets for a VM's port)
    namespace PREFIX-pN       a public network ("the internet"): kernel bridge br0
    namespace PREFIX-o-NAME   a machine on a public network (eth0, tx checksum off)

IPv6 is off in every lab namespace (no DAD, router solicitation or MLD packets wandering through
the flows), unless NetLab(ipv6=True). Nothing is created in the root namespace: every veth is
made with its two ends already inside lab namespaces, so deleting the namespaces deletes them;
names inside a namespace (br-int, tapXXXXXXXX, ext0) cannot clash between labs, and two labs run
at once. The OVS daemons are children of the process that made the lab (no --detach), die with
it (PR_SET_PDEATHSIG) and are reaped by it. close() deletes the bridges (ovs-vsctl del-br),
stops the daemons, kills whatever else runs in a lab namespace, deletes the namespaces and the
temporary directory, and returns a list of problems (empty when clean). A new NetLab first
removes what crashed labs left behind: namespaces and /tmp directories "nlab<pid>-XXXX-..."
whose pid no longer runs (with an explicit prefix: every namespace "<prefix>-...").
Timings here (2 cores): a host 0.2 s (0.1 s of it ovs-vswitchd estimating the TSC frequency),
two hosts side by side 0.25-0.3 s (0.4 s one after the other), an instance 30-45 ms, close()
of a 2-host lab 0.15 s. Idle daemons use no CPU (no PMD threads without DPDK ports).

FACTS nubo-netctl can rely on (OVS 3.1, userspace datapath; checked by test_netns_lab.py):

  * Tunnel ports go on br-int itself: `ovs-vsctl add-port br-int vx-XXXX -- set interface
    vx-XXXX type=vxlan options:remote_ip=PEER options:key=flow`; flows set_field:VNI->tun_id +
    output:VX, and match in_port=VX,tun_id=VNI. OVS listens on UDP 4789 itself
    (`ovs-appctl tnl/ports/show`: vxlan_sys_4789); no kernel vxlan device is involved.
  * options:local_ip is not needed: the source IP comes from the route. If set, it must be an
    address of the route's bridge (br-phy): a wrong one silently sends nothing (TCP fails).
  * Routing: on output to a vxlan port OVS looks the remote IP up in ITS OWN routing table
    (`ovs-appctl ovs/route/show`: the kernel routes of the namespace ovs-vswitchd runs in,
    read through netlink, plus `ovs/route/add` entries). The route's device must be an OVS
    bridge's internal port: br-phy, which carries the underlay IP. The encapsulated packet then
    goes through br-phy's flows (NORMAL) out of ul0. Incoming VXLAN for br-phy's IP is
    decapsulated by OVS and enters br-int with in_port = the vxlan port, tun_id = the VNI.
  * ARP for the remote underlay IP: OVS resolves it itself, with its own neighbour cache
    (`ovs-appctl tnl/arp/show`, alias tnl/neigh/show): a packet that finds no entry is DROPPED
    and OVS sends an ARP request out of br-phy; the cache learns only from ARP replies (and
    gratuitous ARP) seen on br-phy, NOT from requests. So the first packet(s) per direction to
    a new peer are lost (TCP retransmits the SYN after 1 s; an instance's ARP after 1 s). To
    avoid it: `ovs-appctl tnl/neigh/set br-phy PEER_IP PEER_MAC` (NetLab.prime_underlay), or
    have the host's kernel ping the peer's underlay IP once a tunnel port exists (only the
    pinging side learns).
  * The host's kernel also sees every frame on ul0 (OVS reads it with a packet socket) and would
    answer ARP for the underlay IP from ul0's own MAC, racing br-phy's reply and poisoning the
    peers' caches: the lab sets `ip link set ul0 arp off`. Anything in production that puts a
    kernel NIC on a netdev bridge needs the same. (IP is not affected: frames for br-phy's MAC
    are PACKET_OTHERHOST on ul0.)
  * MTU: VXLAN adds 50 bytes and nothing fragments or sends ICMP "frag needed": with a 1500
    underlay and 1500-byte instance packets, ping and the TCP handshake work but bulk TCP stalls
    (ovs-vswitchd logs "error sending Ethernet packet on ul0: Message too long"). The lab's
    underlay has MTU 1600 (NetLab(underlay_mtu=1500) reproduces the problem; add_instance(...,
    mtu=1450) is the other cure: what a DHCP MTU option would give a VM).
  * tx checksum offload must be off on the SENDING side of every veth that feeds OVS (the
    instances' eth0, the public machines' eth0): with it on, TCP through the netdev datapath
    fails (checked). Frames OVS itself sends need nothing.
  * Before netctl starts: br-int has no flow (dump-flows is empty; with fail_mode=secure nothing
    is forwarded) and its ports are LOCAL (down) and the instance taps, present from the moment
    add_instance returns (libvirt plugs a VM's port before it boots); bridges accept OpenFlow
    1.0-1.5 (protocols column empty). br-phy forwards NORMAL. The public network's "ext0" is on
    no bridge until netctl adds it (with external_ids:nubo-role=external).
  * An instance's ofport from its iface-id:
      ovs-vsctl --bare --columns=ofport find interface external_ids:iface-id=ID      -> "1"
      ovs-vsctl --format=json --columns=name,ofport,external_ids find interface ...
    (ofport is [] until ovs-vswitchd has added the port, -1 if it could not open it; ovs-vsctl
    without --no-wait returns after ovs-vswitchd applied the change, so it is set by then).
  * `ovs-ofctl --bundle add-flows br-int FILE` accepts a keyword at the start of each line:
    add, modify, modify_strict, delete, delete_strict (checked: modify_strict and delete_strict
    in one bundle with adds; delete_strict of a missing flow is no error). The bundle is atomic:
    when the switch rejects one flow (e.g. meter:99 that does not exist: OFPMMFC_INVALID_METER),
    none of the bundle is applied and ovs-ofctl exits non-zero. Syntax errors are found by
    ovs-ofctl before it sends anything. FILE may be "-" (stdin).
  * dump-flows prints flows in canonical form, not as written: set_field:5001->tun_id shows as
    load:0x1389->NXM_NX_TUN_ID[] (OpenFlow 1.0 dump) or set_field:0x1389->tun_id (-O
    OpenFlow13), tun_id=5001 as tun_id=0x1389, ct_state=+trk+new as +new+trk, fields reordered.
    Compare by cookie, not by text.
  * Conntrack works in the userspace datapath, zones included: ct(table=1,zone=5) then
    ct_state=+trk+new,tcp,tp_dst=P -> ct(commit,zone=5),output and ct_state=+trk+est -> output
    is a working stateful allow (other ports and the reverse direction are refused; looking the
    reply up in another zone gives +new, not +est). `ovs-appctl dpctl/dump-conntrack zone=N`
    lists the entries.
  * 1:1 DNAT works: from the external port, ct(table=2,zone=9,nat) then for +new
    ct(commit,zone=9,nat(dst=PRIVATE_IP)), mod_dl_src/mod_dl_dst, output to the instance; for
    +est just the MAC rewrite; the reply direction from the instance ct(table=3,zone=9,nat)
    (un-NATs the source back to the public IP) then for +est rewrite MACs, output to ext0.
    ARP for the public IP is not answered by anything: the test uses static neighbours.
"""

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

OVS_SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
UNDERLAY_NET = "10.250.0"  # hosts are 10.250.0.N/24, N = 1, 2, ...
UNDERLAY_MTU = 1600  # room for VXLAN's 50 bytes around a 1500-byte instance MTU
STALE_RE = re.compile(r"^nlab(\d+)-[0-9a-f]{4}-")
NETNS_DIR = Path("/run/netns")


class LabError(RuntimeError):
    pass


def _die_with_parent():
    """In a child before exec: SIGKILL when the lab's process dies (PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _run(argv, check=True, timeout=30, env=None, input=None):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                       input=input, stdin=None if input is not None else subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise LabError(f"{' '.join(map(str, argv))} failed ({r.returncode}):\n"
                       f"{r.stdout}{r.stderr}".rstrip())
    return r


def _ip_batch(netns, lines):
    """Runs iproute2 commands (lines without the leading 'ip') in one process, in 'netns'."""
    argv = ["ip"] + (["-n", netns] if netns else []) + ["-batch", "-"]
    return _run(argv, input="\n".join(lines) + "\n")


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _netns_pids(ns):
    r = _run(["ip", "netns", "pids", ns], check=False, timeout=10)
    return [int(p) for p in r.stdout.split() if p.isdigit()]


def _kill_netns_processes(ns, timeout=3.0):
    """SIGTERM, then SIGKILL, to every process in namespace 'ns' (not ours)."""
    pids = [p for p in _netns_pids(ns) if p != os.getpid()]
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if _pid_alive(p) and not _is_zombie(p)]
        if pids:
            time.sleep(0.02)
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


def _is_zombie(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _delete_netns(ns):
    _kill_netns_processes(ns)
    r = _run(["ip", "netns", "del", ns], check=False, timeout=10)
    if r.returncode != 0 and (NETNS_DIR / ns).exists():
        return f"ip netns del {ns}: {r.stderr.strip()}"
    return None


def list_netns():
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []


def cleanup_stale(prefix=None):
    """Removes what crashed labs left: namespaces and temporary directories named
    "nlab<pid>-XXXX-..." whose <pid> is no longer running, and with 'prefix' every namespace
    named "<prefix>-...". Returns the names removed."""
    removed = []
    for ns in list_netns():
        m = STALE_RE.match(ns)
        stale = (m and not _pid_alive(int(m.group(1)))) or (prefix and ns.startswith(prefix + "-"))
        if stale:
            _delete_netns(ns)
            removed.append(ns)
    tmp = Path(tempfile.gettempdir())
    for d in tmp.iterdir():
        m = STALE_RE.match(d.name)
        if m and d.is_dir() and not _pid_alive(int(m.group(1))):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(str(d))
    return removed


# --- what runs inside namespaces: tiny stdlib programs for /usr/bin/python3 -I -----------------

_PING = r"""
import os, select, socket, struct, sys, time
dst, count, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
ident, got = os.getpid() & 0xffff, 0
for seq in range(count):
    body = b"nlab-ping" * 6
    hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    s.sendto(struct.pack("!BBHHH", 8, 0, csum(hdr + body), ident, seq) + body, (dst, 0))
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([s], [], [], left)[0]:
            break
        data, addr = s.recvfrom(4096)
        ihl = (data[0] & 15) * 4
        t, _, _, rid, rseq = struct.unpack("!BBHHH", data[ihl:ihl + 8])
        if t == 0 and rid == ident and rseq == seq and addr[0] == dst:
            got += 1
            break
print(got)
sys.exit(0 if got else 1)
"""

_TCP_CLIENT = r"""
import os, socket, sys, time
ip, port, timeout, n = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
data = (os.urandom(16).hex().encode() * (n // 32 + 1))[:n]
deadline = time.monotonic() + timeout
try:
    s = socket.create_connection((ip, port), timeout=timeout)
    s.settimeout(max(0.05, deadline - time.monotonic()))
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got = b""
    while len(got) < len(data):
        s.settimeout(max(0.05, deadline - time.monotonic()))
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
except OSError as e:
    print("error:", e)
    sys.exit(1)
print("echoed" if got == data else f"echo differs: sent {len(data)} got {len(got)}")
sys.exit(0 if got == data else 2)
"""

_TCP_SERVER = r"""
import socket, sys, threading
port = int(sys.argv[1])
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", port))
srv.listen(64)
print("listening", flush=True)
def echo(c):
    with c:
        while True:
            b = c.recv(65536)
            if not b:
                return
            c.sendall(b)
while True:
    c, addr = srv.accept()
    threading.Thread(target=echo, args=(c,), daemon=True).start()
"""

PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable


class _Netns:
    """Something living in a network namespace."""

    netns = None
    lab = None

    def run(self, *argv, check=True, timeout=30, input=None, env=None):
        """Runs argv inside the namespace; returns the CompletedProcess (text). Raises LabError
        on a non-zero status when 'check'."""
        return _run(["ip", "netns", "exec", self.netns] + [str(a) for a in argv], check=check,
                    timeout=timeout, input=input, env=env)

    def iproute(self, *args, check=True):
        """`ip -n NETNS ARGS...`; its stdout."""
        return _run(["ip", "-n", self.netns] + [str(a) for a in args], check=check).stdout

    def spawn(self, *argv, stdout=subprocess.DEVNULL):
        """Starts argv inside the namespace as a child of this process, killed at close().
        'stdout' (with stderr): DEVNULL, a file, or PIPE (then read it: a full pipe blocks)."""
        p = subprocess.Popen(["ip", "netns", "exec", self.netns] + [str(a) for a in argv],
                             stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT,
                             text=True, preexec_fn=_die_with_parent)
        self.lab._procs.append(p)
        return p

    def ping(self, ip, count=1, timeout=1):
        """True when 'ip' answered at least one of 'count' ICMP echo requests within 'timeout'
        seconds each (a raw-socket ping in Python: this machine has no ping program)."""
        r = self.run(PYTHON, "-I", "-c", _PING, ip, count, timeout, check=False,
                     timeout=count * timeout + 10)
        return r.returncode == 0

    def tcp_connect(self, ip, port, timeout=2, nbytes=64):
        """True when a TCP connection to ip:port opens within 'timeout' seconds and the peer
        (serve_tcp) echoes 'nbytes' bytes back intact (nbytes=0: the connection alone)."""
        r = self.run(PYTHON, "-I", "-c", _TCP_CLIENT, ip, port, timeout, nbytes, check=False,
                     timeout=timeout + 10)
        self.last_tcp = (r.stdout + r.stderr).strip()
        return r.returncode == 0

    def serve_tcp(self, port):
        """Starts a TCP echo server on 0.0.0.0:port inside the namespace (until close())."""
        p = self.spawn(PYTHON, "-I", "-u", "-c", _TCP_SERVER, port, stdout=subprocess.PIPE)
        line = p.stdout.readline()
        if "listening" not in line:
            p.kill()
            raise LabError(f"TCP server in {self.netns} on port {port} did not start: "
                           f"{line}{p.stdout.read()}")
        return p


class Host(_Netns):
    """A compute host: a namespace with its own ovsdb-server, ovs-vswitchd, br-phy and br-int."""

    def __init__(self, lab, name, index):
        self.lab, self.name, self.index = lab, name, index
        self.netns = f"{lab.prefix}-h-{name}"
        self.underlay_ip = f"{UNDERLAY_NET}.{index}"
        self.underlay_mac = f"02:fa:00:00:00:{index:02x}"  # br-phy's (other_config:hwaddr)
        self.underlay_cidr = f"{self.underlay_ip}/24"
        self.dir = lab.tmp / name
        self.rundir, self.dbdir, self.logdir = (self.dir / "run", self.dir / "db", self.dir / "log")
        self.ovs_env = dict(os.environ)
        self.ovs_env.update({"OVS_RUNDIR": str(self.rundir), "OVS_DBDIR": str(self.dbdir),
                             "OVS_LOGDIR": str(self.logdir), "OVS_SYSCONFDIR": str(self.dir)})
        self.db_sock = self.rundir / "db.sock"
        self.ovsdb = None  # Popen
        self.vswitchd = None
        self.instances = []

    @property
    def ovs_vars(self):
        """The OVS variables alone (ovs_env is the whole process environment plus them)."""
        return {k: self.ovs_env[k] for k in ("OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR",
                                              "OVS_SYSCONFDIR")}

    def vsctl(self, *args, check=True, timeout=30):
        """ovs-vsctl (from the root namespace, through this host's db.sock); its stdout."""
        return _run(["ovs-vsctl", f"--timeout={timeout}"] + [str(a) for a in args], check=check,
                    env=self.ovs_env, timeout=timeout + 5).stdout

    def ofctl(self, *args, check=True, timeout=30):
        """ovs-ofctl (from the root namespace, through RUNDIR/BRIDGE.mgmt); its stdout."""
        return _run(["ovs-ofctl"] + [str(a) for a in args], check=check, env=self.ovs_env,
                    timeout=timeout).stdout

    def appctl(self, *args, target="ovs-vswitchd", check=True, timeout=30):
        """ovs-appctl -t TARGET (from the root namespace, through RUNDIR/TARGET.pid); stdout."""
        return _run(["ovs-appctl", f"--timeout={timeout}", "-t", target] + [str(a) for a in args],
                    check=check, env=self.ovs_env, timeout=timeout + 5).stdout

    def add_flows(self, text, bridge="br-int", bundle=True):
        """`ovs-ofctl --bundle add-flows BRIDGE FILE` with 'text' as FILE: one flow per line,
        each may start with add, modify, modify_strict, delete or delete_strict; all or nothing
        (bundle=False: flow by flow)."""
        path = self.dir / f"flows-{secrets.token_hex(4)}.txt"
        path.write_text(text.strip() + "\n")
        try:
            return self.ofctl(*(["--bundle"] if bundle else []), "add-flows", bridge, path)
        finally:
            path.unlink()

    def dump_flows(self, bridge="br-int", *match):
        """The flows of 'bridge' without the volatile fields (duration, counters)."""
        out = self.ofctl("--no-stats", "dump-flows", bridge, *match)
        return [line.strip() for line in out.splitlines() if line.strip()]

    def ofport(self, ifname):
        """The OpenFlow port number of interface 'ifname' (None while it has none)."""
        v = self.vsctl("get", "interface", ifname, "ofport").strip()
        return int(v) if v.lstrip("-").isdigit() else None

    def find_ofport(self, iface_id):
        """The OpenFlow port number of the interface with external_ids:iface-id=iface_id,
        found as nubo-netctl would (None when there is no such interface or no number)."""
        v = self.vsctl("--bare", "--columns=ofport", "find", "interface",
                       f"external_ids:iface-id={iface_id}").split()
        return int(v[0]) if v and v[0].lstrip("-").isdigit() else None

    def ovs_log(self):
        try:
            return (self.logdir / "ovs-vswitchd.log").read_text(errors="replace")
        except OSError:
            return ""

    def _start_daemons(self):
        """Namespace, database, ovsdb-server, underlay link, ovs-vswitchd (not yet ready)."""
        lab = self.lab
        for d in (self.rundir, self.dbdir, self.logdir):
            d.mkdir(parents=True)
        lab._new_netns(self.netns)
        _run(["ovsdb-tool", "create", self.dbdir / "conf.db", OVS_SCHEMA])
        self.ovsdb = self._daemon(
            "ovsdb-server", self.dbdir / "conf.db", f"--remote=punix:{self.db_sock}",
            "--remote=db:Open_vSwitch,Open_vSwitch,manager_options")
        # While ovsdb-server starts: the underlay link, lo up.
        port = f"p{self.index}"
        _ip_batch(lab.underlay_ns, [
            f"link add {port} mtu {lab.underlay_mtu} type veth peer name ul0 netns {self.netns}",
            f"link set {port} master br0 up"])
        # "arp off": the namespace's kernel also receives what arrives on ul0 (OVS reads it
        # with a packet socket) and would answer ARP for the underlay IP from ul0's MAC too.
        _ip_batch(self.netns, [f"link set ul0 mtu {lab.underlay_mtu} arp off up"])
        self._wait(lambda: self.db_sock.exists(), "ovsdb-server's socket", self.ovsdb)
        self.vswitchd = self._daemon("ovs-vswitchd", f"unix:{self.db_sock}")

    def _configure(self):
        """The bridges and the underlay IP, once ovs-vswitchd runs."""
        lab = self.lab
        # ovs-vsctl (no --no-wait) returns once ovs-vswitchd has applied the configuration.
        self.vsctl(
            "--", "init",
            "--", "set", "open_vswitch", ".", f"external_ids:hostname={self.name}",
            f"external_ids:system-id={self.netns}",
            "--", "add-br", "br-phy",
            "--", "set", "bridge", "br-phy", "datapath_type=netdev",
            f"other_config:hwaddr={self.underlay_mac}",
            "--", "add-port", "br-phy", "ul0",
            "--", "add-br", "br-int",
            "--", "set", "bridge", "br-int", "datapath_type=netdev", "fail_mode=secure",
            "other_config:disable-in-band=true")
        _ip_batch(self.netns, [f"link set br-phy mtu {lab.underlay_mtu} up",
                               f"addr add {self.underlay_cidr} dev br-phy"])
        # fail_mode=secure adds no flow, but make sure.
        self.ofctl("del-flows", "br-int")

    def _daemon(self, prog, *args):
        log = self.logdir / f"{prog}.log"
        out = open(self.logdir / f"{prog}.out", "ab")
        try:
            p = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, prog, *map(str, args), "--pidfile",
                 f"--log-file={log}", "-vconsole:off", "-vfile:info"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=self.ovs_env, preexec_fn=_die_with_parent)
        finally:
            out.close()
        return p

    def _wait(self, cond, what, proc, timeout=10):
        deadline = time.monotonic() + timeout
        while not cond():
            if proc.poll() is not None:
                raise LabError(f"{what}: the daemon exited ({proc.returncode}):\n"
                               + self._daemon_output())
            if time.monotonic() > deadline:
                raise LabError(f"{what}: not there after {timeout} s\n" + self._daemon_output())
            time.sleep(0.005)

    def _daemon_output(self):
        out = []
        for f in sorted(self.logdir.glob("*")):
            out.append(f"--- {f.name}\n" + "\n".join(f.read_text(errors="replace")
                                                     .splitlines()[-20:]))
        return "\n".join(out)

    def _stop(self):
        errors = []
        if self.ovsdb and self.ovsdb.poll() is None and self.vswitchd \
                and self.vswitchd.poll() is None:
            r = _run(["ovs-vsctl", "--timeout=5", "--", "--if-exists", "del-br", "br-int",
                      "--", "--if-exists", "del-br", "br-phy"], check=False, env=self.ovs_env,
                     timeout=10)
            if r.returncode != 0:
                errors.append(f"{self.name}: ovs-vsctl del-br: {r.stderr.strip()}")
        for name, p in (("ovs-vswitchd", self.vswitchd), ("ovsdb-server", self.ovsdb)):
            if p is None:
                continue
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    errors.append(f"{self.name}: {name} ignored SIGTERM for 5 s")
                    p.kill()
                    p.wait()
            elif p.returncode != 0:
                errors.append(f"{self.name}: {name} had died (status {p.returncode}):\n"
                              + self._daemon_output())
        self.vswitchd = self.ovsdb = None
        return errors

    def log_problems(self, levels=("EMER", "ERR")):
        """The lines of this host's ovs-vswitchd and ovsdb-server logs at 'levels'."""
        out = []
        for prog in ("ovs-vswitchd", "ovsdb-server"):
            try:
                text = (self.logdir / f"{prog}.log").read_text(errors="replace")
            except OSError:
                continue
            out += [f"{prog}: {line}" for line in text.splitlines()
                    if any(f"|{lv}|" in line for lv in levels)]
        return out

    def __repr__(self):
        return f"Host({self.name!r}, netns={self.netns!r}, underlay_ip={self.underlay_ip!r})"


class Inst(_Netns):
    """An instance (a VM stand-in: a namespace with eth0) or a machine on a public network."""

    def __init__(self, lab, name, netns, mac, ip_cidr, host=None, tap=None, iface_id=None):
        self.lab, self.name, self.netns, self.mac = lab, name, netns, mac
        self.ip_cidr, self.ip = ip_cidr, ip_cidr.split("/")[0]
        self.host, self.tap, self.iface_id = host, tap, iface_id
        self._ofport = None
        self.last_tcp = ""

    @property
    def ofport(self):
        """The OpenFlow port number of the instance's tap in its host's br-int."""
        if self._ofport is None and self.host is not None:
            self._ofport = self.host.ofport(self.tap)
        return self._ofport

    def __repr__(self):
        where = f"on {self.host.name} port {self.tap}" if self.host else "outside"
        return f"Inst({self.name!r}, {self.ip_cidr}, {self.mac}, {where})"


class PublicNet:
    """A public network: a kernel bridge br0 in namespace PREFIX-pN."""

    def __init__(self, lab, index, cidr):
        self.lab, self.index, self.cidr = lab, index, cidr
        self.netns = f"{lab.prefix}-p{index}"
        self._ports = 0
        self.outside = []

    def _start(self):
        self.lab._new_netns(self.netns, ["link add br0 type bridge", "link set br0 up"])

    def _port(self):
        self._ports += 1
        return f"v{self._ports}"

    def attach_host(self, host, ifname="ext0"):
        """A veth from this network into 'host''s namespace, named 'ifname' there and up, with
        tx checksum offload off, on no bridge (nubo-netctl adds it to br-int)."""
        port = self._port()
        _ip_batch(self.netns, [f"link add {port} type veth peer name {ifname} netns {host.netns}",
                               f"link set {port} master br0 up"])
        host.iproute("link", "set", ifname, "up")
        host.run("ethtool", "-K", ifname, "tx", "off")
        return ifname

    def add_outside(self, name, ip_cidr, mac=None, gateway=None):
        """A machine on this network (namespace PREFIX-o-NAME, eth0 with ip_cidr)."""
        lab = self.lab
        ns = f"{lab.prefix}-o-{name}"
        mac = mac or _random_mac()
        lab._new_netns(ns, setup=False)
        port = self._port()
        _ip_batch(self.netns, [f"link add {port} type veth peer name eth0 netns {ns}",
                               f"link set {port} master br0 up"])
        inst = Inst(lab, name, ns, mac, ip_cidr)
        _configure_eth0(inst, gateway, None)
        self.outside.append(inst)
        return inst


def _random_mac():
    b = secrets.token_bytes(5)
    return "02:" + ":".join(f"{x:02x}" for x in b)


def _configure_eth0(inst, gateway, mtu):
    lines = [f"link set eth0 address {inst.mac}"]
    if mtu:
        lines.append(f"link set eth0 mtu {mtu}")
    lines += ["link set eth0 up", f"addr add {inst.ip_cidr} dev eth0"]
    if gateway:
        lines.append(f"route add default via {gateway} dev eth0")
    # TCP over the netdev datapath + veth fails with tx checksum offload on (MACHINE-NOTES).
    _ns_setup(inst.lab, inst.netns, lines, ethtool_tx_off=["eth0"])


def _ns_setup(lab, ns, ip_lines, ethtool_tx_off=()):
    """In namespace 'ns', in one process: IPv6 off unless the lab wants it (no DAD, router
    solicitations or MLD reports wandering through the switches), lo up, the 'ip_lines'
    (iproute2 commands without "ip"), "ethtool -K IF tx off" for each of 'ethtool_tx_off'."""
    script = []
    if not lab.ipv6:
        script += ["echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6",
                   "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6"]
    script.append("ip -batch - <<'EOF'\nlink set lo up\n" + "\n".join(ip_lines) + "\nEOF")
    script += [f"ethtool -K {i} tx off" for i in ethtool_tx_off]
    _run(["ip", "netns", "exec", ns, "sh", "-ec", "\n".join(script)])


class NetLab:
    """The lab (a context manager). See the module docstring."""

    def __init__(self, prefix=None, underlay_mtu=UNDERLAY_MTU, ipv6=False):
        if os.geteuid() != 0:
            raise LabError("the network lab needs root")
        for prog in ("ovs-vswitchd", "ovsdb-server", "ovsdb-tool", "ovs-vsctl", "ovs-ofctl",
                     "ethtool", "ip"):
            if not shutil.which(prog):
                raise LabError(f"{prog} is not installed")
        self.stale_removed = cleanup_stale(prefix)
        self.prefix = prefix or f"nlab{os.getpid()}-{secrets.token_hex(2)}"
        self.underlay_mtu = underlay_mtu
        self.ipv6 = ipv6
        self.tmp = Path(tempfile.mkdtemp(prefix=self.prefix + "-"))
        self.hosts = {}
        self.instances = {}
        self.public_nets = []
        self._netns = []  # in creation order
        self._procs = []
        self.underlay_ns = None
        self.timings = {}  # what -> [seconds, ...]
        self.closed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        errors = self.close()
        if errors and exc[0] is None:
            raise LabError("lab teardown:\n" + "\n".join(errors))
        return False

    def _new_netns(self, ns, ip_lines=(), setup=True):
        """Makes namespace 'ns' (deleted at close) and, with 'setup', sets it up (_ns_setup)."""
        _run(["ip", "netns", "add", ns])
        self._netns.append(ns)
        if setup:
            _ns_setup(self, ns, list(ip_lines))

    def _time(self, what, t0):
        self.timings.setdefault(what, []).append(time.monotonic() - t0)

    def _underlay(self):
        if self.underlay_ns is None:
            ns = f"{self.prefix}-ul"
            self._new_netns(ns, [f"link add br0 mtu {self.underlay_mtu} type bridge",
                                 "link set br0 up"])
            self.underlay_ns = ns
        return self.underlay_ns

    def add_host(self, name):
        """A compute host (see Host): namespace, OVS, br-phy with the underlay IP, br-int."""
        if name in self.hosts:
            raise LabError(f"host {name} exists")
        return self.add_hosts(name)[0]

    def add_hosts(self, *names):
        """Several hosts at once: their OVS daemons start side by side (faster than add_host
        one after the other)."""
        t0 = time.monotonic()
        for name in names:
            if name in self.hosts or names.count(name) > 1:
                raise LabError(f"host {name} exists")
        self._underlay()
        hosts = []
        for name in names:
            host = Host(self, name, len(self.hosts) + 1)
            self.hosts[name] = host
            hosts.append(host)
            host._start_daemons()  # here: the daemons' PR_SET_PDEATHSIG is tied to this thread
        errors = [None] * len(hosts)

        def configure(i):
            try:
                hosts[i]._configure()
            except BaseException as e:  # noqa: BLE001 - re-raised below
                errors[i] = e

        threads = [threading.Thread(target=configure, args=(i,)) for i in range(1, len(hosts))]
        for t in threads:
            t.start()
        configure(0)
        for t in threads:
            t.join()
        for e in errors:
            if e is not None:
                raise e
        self._time("host" if len(hosts) == 1 else f"{len(hosts)} hosts", t0)
        return hosts

    def prime_underlay(self):
        """Fills every host's tunnel neighbour cache (`ovs-appctl tnl/neigh/set br-phy IP MAC`)
        with every other host, so that no first packet is lost to OVS's own ARP resolution."""
        for h in self.hosts.values():
            for peer in self.hosts.values():
                if peer is not h:
                    h.appctl("tnl/neigh/set", "br-phy", peer.underlay_ip, peer.underlay_mac)

    def add_instance(self, host, name, mac, ip_cidr, gateway=None, iface_id=None, mtu=None,
                     tap=None):
        """An instance on 'host': namespace PREFIX-i-NAME with eth0 (mac, ip_cidr, default
        route via 'gateway', tx checksum offload off), whose veth peer 'tap' (default "tap" +
        the first 8 hex digits of iface_id) is on the host's br-int with
        external_ids:iface-id=iface_id (default a new UUID) and attached-mac=mac."""
        if name in self.instances:
            raise LabError(f"instance {name} exists")
        t0 = time.monotonic()
        iface_id = iface_id or str(uuid.uuid4())
        if tap is None:
            tap = "tap" + (re.sub(r"[^0-9a-f]", "", iface_id.lower()) + secrets.token_hex(4))[:8]
        ns = f"{self.prefix}-i-{name}"
        self._new_netns(ns, setup=False)
        _ip_batch(host.netns, [f"link add {tap} type veth peer name eth0 netns {ns}",
                               f"link set {tap} up"])
        inst = Inst(self, name, ns, mac.lower(), ip_cidr, host=host, tap=tap, iface_id=iface_id)
        _configure_eth0(inst, gateway, mtu)
        host.vsctl("add-port", "br-int", tap,
                   "--", "set", "interface", tap, f"external_ids:iface-id={iface_id}",
                   f"external_ids:attached-mac={inst.mac}", "external_ids:iface-status=active",
                   f"external_ids:vm-id={name}")
        port = inst.ofport
        if port is None or port < 0:
            raise LabError(f"{tap} on {host.name}'s br-int has no ofport ({port}):\n"
                           + "\n".join(host.ovs_log().splitlines()[-20:]))
        self.instances[name] = inst
        host.instances.append(inst)
        self._time("instance", t0)
        return inst

    def add_public_network(self, cidr="203.0.113.0/24"):
        net = PublicNet(self, len(self.public_nets) + 1, cidr)
        net._start()
        self.public_nets.append(net)
        return net

    def close(self):
        """Tears everything down; returns a list of problems (empty when all went well)."""
        if self.closed:
            return []
        self.closed = True
        errors = []
        for p in self._procs:
            if p.poll() is None:
                p.kill()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                errors.append(f"process {p.args} did not die")
            if p.stdout:
                p.stdout.close()
        results = {}

        def stop(host):
            try:
                results[host.name] = host._stop()
            except Exception as e:  # noqa: BLE001 - teardown goes on
                results[host.name] = [f"{host.name}: stopping OVS: {e}"]

        threads = [threading.Thread(target=stop, args=(h,)) for h in self.hosts.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for name in self.hosts:
            errors += results.get(name, [f"{name}: stopping OVS did not finish"])
        for ns in reversed(self._netns):
            try:
                err = _delete_netns(ns)
            except Exception as e:  # noqa: BLE001
                err = f"deleting {ns}: {e}"
            if err:
                errors.append(err)
        left = [ns for ns in list_netns() if ns.startswith(self.prefix + "-")]
        if left:
            errors.append(f"namespaces left: {left}")
        if self.tmp:
            if os.environ.get("NUBO_E2E_KEEP"):
                print(f"# kept {self.tmp}")
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)
        return errors

    def summary(self):
        parts = [f"prefix {self.prefix}"]
        for what, ts in self.timings.items():
            parts.append(f"{what} up in {min(ts) * 1000:.0f}-{max(ts) * 1000:.0f} ms "
                         f"({len(ts)}x)")
        return ", ".join(parts)
