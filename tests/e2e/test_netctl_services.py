"""End-to-end: DHCP and the instance metadata service (169.254.169.254) of tenant networks
(issue 7, netctl/svc.h). A real nubo-gateway and PostgreSQL, one real nubo-netctl per "host" with
its own Open vSwitch (tests/e2e/net_env.py); instances are launched with RunInstances (with a key
pair and user data), placed on a host by SQL and stood in for by namespaces plugged into the
host's br-int, as in test_netctl_dataplane.py. Inside them run the real clients: busybox's DHCP
client (udhcpc) and curl.

Needs busybox (Debian busybox-static) and dnsmasq (dnsmasq-base).

Prints TAP. Run: /usr/bin/python3 tests/e2e/test_netctl_services.py"""

import sys

sys.dont_write_bytecode = True

import base64  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import nubo_env  # noqa: E402
from net_env import NetEnv  # noqa: E402
from nubo_env import SkipTest, check, check_eq  # noqa: E402

MD = "http://169.254.169.254"
USER_DATA = b"#!/bin/sh\necho 'hello from nubo' > /tmp/x\n\x00\xff binary tail\n"

# busybox udhcpc's event script: applies the lease as a distribution's script would, and prints
# what the server offered.
UDHCPC_SCRIPT = r"""#!/bin/sh
case "$1" in
deconfig)
    ip addr flush dev "$interface"
    ip link set dev "$interface" up
    ;;
bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    if [ -n "$mtu" ]; then ip link set dev "$interface" mtu "$mtu"; fi
    if [ -n "$router" ]; then ip route replace default via "${router%% *}" dev "$interface"; fi
    echo "lease ip=$ip mask=$mask router=$router mtu=$mtu lease=$lease hostname=$hostname" \
        "dns=$dns serverid=$serverid"
    ;;
esac
exit 0
"""


class SvcEnv(NetEnv):
    """NetEnv with the DHCP client script, once the needed programs are known to be there."""

    def start(self):
        for prog in ("busybox", "dnsmasq", "curl"):
            if not shutil.which(prog, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
                raise SkipTest(f"{prog} is not installed (deploy/install-deps.sh)")
        super().start()
        self.script = self.tmp / "udhcpc.sh"
        self.script.write_text(UDHCPC_SCRIPT)
        self.script.chmod(0o755)

    def state_dir(self, host):
        return self.tmp / f"netctl-{host}"

    def service_dir(self, host, segment):
        return self.state_dir(host) / f"svc-{segment}"


tap = nubo_env.Tap(__file__, per_test_timeout=120, fixture=SvcEnv)
S = {}  # state shared by the tests, in order


def dnsmasq_pid(service_dir):
    """The pid of the service namespace's dnsmasq if it runs, else None."""
    try:
        pid = int((Path(service_dir) / "dnsmasq.pid").read_text().strip())
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError):
        return None
    return pid if comm == "dnsmasq" else None


def running(pid):
    """Whether process 'pid' runs (a zombie waiting for PID 1 to reap it does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def launch(env, ec2, name, host, subnet, groups, ip, prefix, **extra):
    """RunInstances into 'subnet' with 'ip', placed on 'host' by SQL, and a namespace plugged
    into that host's br-int as the VM would be, its eth0 without address (DHCP's to give)."""
    out = ec2.run_instances(ImageId=env.image(), InstanceType="t3.micro", MinCount=1, MaxCount=1,
                            SubnetId=subnet, PrivateIpAddress=ip, SecurityGroupIds=groups,
                            **extra)
    iid = out["Instances"][0]["InstanceId"]
    env.psql(f"UPDATE instances SET host_id = '{env.host_id(host)}', state = 'running' "
             f"WHERE id = '{iid}'")
    ni = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0][
        "NetworkInterfaces"][0]
    check_eq(ni["PrivateIpAddress"], ip, f"{name}'s private address")
    lh = env.hosts[host][0]
    inst = env.lab.add_instance(lh, name, ni["MacAddress"], f"{ip}/{prefix}",
                                iface_id=ni["NetworkInterfaceId"])
    inst.iproute("addr", "flush", "dev", "eth0")
    S[name], S[name + "_id"] = inst, iid
    return inst


def dhcp(env, inst):
    """Runs busybox's DHCP client in 'inst'; returns the lease's variables (ip, mask, router,
    mtu, lease, hostname, dns, serverid), or only the client's output ("_output") when it got
    no lease."""
    r = inst.run("busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "5", "-T", "1",
                 "-s", env.script, check=False, timeout=30)
    for line in r.stdout.splitlines():
        if line.startswith("lease "):
            return dict(kv.split("=", 1) for kv in line.split()[1:])
    return {"_output": r.stdout + r.stderr}


def imds(inst, path, method="GET", headers=(), timeout=5):
    """curl inside 'inst' to the metadata service; returns (status, body bytes)."""
    argv = ["curl", "-sS", "-m", str(timeout), "-X", method, "-o", "-", "-w", "\n%{http_code}"]
    for h in headers:
        argv += ["-H", h]
    r = subprocess.run(["ip", "netns", "exec", inst.netns] + argv + [MD + path],
                       capture_output=True, timeout=timeout + 10)
    body, _, code = r.stdout.rpartition(b"\n")
    return int(code or b"0"), body


def text(inst, path, **kw):
    status, body = imds(inst, path, **kw)
    check_eq(status, 200, f"GET {path} in {inst.name}: {body[:200]!r}")
    return body.decode()


def eventually(fn, want, what, timeout=10):
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = fn()
        if got == want:
            return
        time.sleep(0.2)
    check(False, f"{what}: expected {want!r}, still {got!r} after {timeout} s")


def segment_of(env, vpc):
    return int(env.psql1(f"SELECT segment FROM vpcs WHERE id = '{vpc}'"))


@tap.test
def dhcp_gives_each_instance_its_address_router_and_mtu(env):
    ec2 = env.ec2(env.tenant("svc-a"))
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    sub1 = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    sub2 = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(VpcId=vpc, GroupName="web", Description="nothing in")
    key = ec2.create_key_pair(KeyName="svc-key")
    S.update(ec2=ec2, vpc=vpc, sg=sg["GroupId"], key=key)
    t0 = time.monotonic()
    a1 = launch(env, ec2, "a1", "h1", sub1, [sg["GroupId"]], "10.0.1.10", 24,
                KeyName="svc-key", UserData=USER_DATA)
    a3 = launch(env, ec2, "a3", "h1", sub2, [sg["GroupId"]], "10.0.2.10", 24)
    env.converged()
    S["converged_s"] = time.monotonic() - t0
    seg = segment_of(env, vpc)
    check(dnsmasq_pid(env.service_dir("h1", seg)), "a dnsmasq runs for the network on h1",
          env.netctl_logs())
    check(not env.service_dir("h2", seg).exists(), "none on h2, which has no port of it")

    t0 = time.monotonic()
    lease = dhcp(env, a1)
    print(f"# launch of 2 instances to converged (service namespace, dnsmasq, metadata "
          f"server): {S['converged_s']:.2f} s; udhcpc to a lease: {time.monotonic() - t0:.2f} s")
    check_eq(lease.get("ip"), "10.0.1.10", f"a1's leased address ({lease})")
    check_eq(lease.get("router"), "10.0.1.1", "a1's router: its subnet's first address + 1")
    check_eq(lease.get("mtu"), "1450", "the MTU leaves room for VXLAN")
    # The VPC's prefix, not the subnet's: the desired state has no subnet prefixes (svc.c).
    check_eq(lease.get("mask"), "16", "the network mask")
    check_eq(lease.get("lease"), "3600", "lease time 1 h")
    check_eq(lease.get("hostname"), "ip-10-0-1-10", "EC2's host name")
    check_eq(lease.get("dns"), "", "no DNS server is offered while nothing answers DNS")
    check_eq(lease.get("serverid"), "10.0.0.2", "the server is the VPC's base address + 2")
    check("inet 10.0.1.10/16" in a1.iproute("addr", "show", "dev", "eth0"), "applied in a1")
    check("mtu 1450" in a1.iproute("link", "show", "dev", "eth0"), "a1's MTU applied")
    check("default via 10.0.1.1" in a1.iproute("route", "show"), "a1's default route")

    lease3 = dhcp(env, a3)
    check_eq((lease3.get("ip"), lease3.get("router")), ("10.0.2.10", "10.0.2.1"),
             "a3 in the second subnet gets its address and that subnet's router")


@tap.test
def metadata_answers_each_instance_about_itself(env):
    a1, a3, ec2 = S["a1"], S["a3"], S["ec2"]
    check_eq(text(a1, "/latest/meta-data/instance-id"), S["a1_id"], "a1's instance-id")
    check_eq(text(a3, "/latest/meta-data/instance-id"), S["a3_id"], "a3's instance-id")
    check_eq(text(a1, "/latest/meta-data/local-ipv4"), "10.0.1.10", "local-ipv4")
    check_eq(text(a1, "/latest/meta-data/ami-id"), env.image(), "ami-id")
    check_eq(text(a1, "/latest/meta-data/instance-type"), "t3.micro", "instance-type")
    check_eq(text(a1, "/latest/meta-data/local-hostname"), "ip-10-0-1-10", "local-hostname")
    check_eq(text(a1, "/latest/meta-data/mac"), a1.mac, "mac")
    check_eq(text(a1, "/latest/meta-data/placement/availability-zone"), "nubo-1a", "zone")
    check_eq(text(a1, "/latest/meta-data/security-groups"), "web", "security-groups")
    listing = text(a1, "/latest/meta-data/").split("\n")
    for item in ("instance-id", "local-ipv4", "placement/", "public-keys/", "security-groups"):
        check(item in listing, f"meta-data/ lists {item}", listing)
    check("public-ipv4" not in listing, "no public-ipv4 without an elastic IP", listing)
    check_eq(imds(a1, "/latest/meta-data/public-ipv4")[0], 404, "public-ipv4 without one")
    check_eq(text(a1, "/latest/meta-data/public-keys/"), "0=svc-key", "public-keys/")
    want_key = env.psql1("SELECT public_key FROM key_pairs WHERE name = 'svc-key'")
    check_eq(text(a1, "/latest/meta-data/public-keys/0/openssh-key"), want_key, "openssh-key")
    check(want_key.startswith("ssh-"), "an OpenSSH key", want_key)
    check_eq(imds(a3, "/latest/meta-data/public-keys/")[0], 404, "no key pair, no public-keys")
    status, body = imds(a1, "/latest/user-data")
    check_eq((status, body), (200, USER_DATA), "user-data, raw bytes")
    check_eq(imds(a3, "/latest/user-data")[0], 404, "no user data: 404")
    doc = json.loads(text(a1, "/latest/dynamic/instance-identity/document"))
    check_eq((doc.get("instanceId"), doc.get("privateIp"), doc.get("availabilityZone"),
              doc.get("region")), (S["a1_id"], "10.0.1.10", "nubo-1a", "nubo-1"),
             "the identity document")
    # cloud-init asks for dated versions.
    check_eq(text(a1, "/2021-03-23/meta-data/instance-id"), S["a1_id"], "a dated version")
    check_eq(imds(a1, "/latest/meta-data/no-such-thing")[0], 404, "an unknown path")
    # An elastic IP shows once the cache (a few seconds) expires.
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=S["vpc"])
    alloc = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=alloc["AllocationId"], InstanceId=S["a1_id"])
    eventually(lambda: imds(a1, "/latest/meta-data/public-ipv4"), (200, alloc["PublicIp"].encode()),
               "public-ipv4 after AssociateAddress", timeout=15)


@tap.test
def the_control_plane_tells_only_the_instance_s_host(env):
    eni = S["a1"].iface_id
    path = f"/internal/v1/metadata?interface={eni}"

    def ask(host, p=path):
        token = env.hosts[host][2]
        return env.http("GET", p, headers={"Authorization": f"Bearer {token}"})

    status, _, body = ask("h1")
    check_eq(status, 200, f"h1 asks for a1's metadata: {body[:300]}")
    doc = json.loads(body)
    check_eq((doc["instance_id"], doc["local_ipv4"], doc["hostname"], doc["mac"]),
             (S["a1_id"], "10.0.1.10", "ip-10-0-1-10", S["a1"].mac), "the document")
    check_eq(base64.b64decode(doc["user_data"]), USER_DATA, "user_data, base64")
    check_eq([k["name"] for k in doc["public_keys"]], ["svc-key"], "public_keys")
    status, _, body = ask("h2")
    check_eq(status, 404, f"h2, where a1 does not run, is told nothing: {body[:300]}")
    check_eq(ask("h1", "/internal/v1/metadata?interface=eni-nonsense")[0], 400, "a bad id")
    check_eq(env.http("GET", path)[0], 401, "no node token")


@tap.test
def imdsv2_session_tokens(env):
    a1, a3 = S["a1"], S["a3"]
    status, token = imds(a1, "/latest/api/token", method="PUT",
                         headers=["X-aws-ec2-metadata-token-ttl-seconds: 60"])
    check(status == 200 and len(token) > 20, "PUT /latest/api/token gives a token", status, token)
    token = token.decode()
    good = [f"X-aws-ec2-metadata-token: {token}"]
    check_eq(imds(a1, "/latest/meta-data/instance-id", headers=good),
             (200, S["a1_id"].encode()), "GET with the token")
    bad = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    check_eq(imds(a1, "/latest/meta-data/instance-id",
                  headers=[f"X-aws-ec2-metadata-token: {bad}"])[0], 401, "a forged token")
    check_eq(imds(a1, "/latest/meta-data/instance-id",
                  headers=["X-aws-ec2-metadata-token: nonsense"])[0], 401, "a malformed token")
    check_eq(imds(a3, "/latest/meta-data/instance-id", headers=good)[0], 401,
             "another instance's token")
    for ttl, want in (("0", 400), ("21601", 400), ("-5", 400), ("1x", 400), ("21600", 200)):
        check_eq(imds(a1, "/latest/api/token", method="PUT",
                      headers=[f"X-aws-ec2-metadata-token-ttl-seconds: {ttl}"])[0], want,
                 f"token TTL {ttl}")
    check_eq(imds(a1, "/latest/api/token", method="PUT")[0], 400, "a token without a TTL")
    check_eq(imds(a1, "/latest/api/token", method="PUT",
                  headers=["X-aws-ec2-metadata-token-ttl-seconds: 60",
                           "X-Forwarded-For: 10.9.9.9"])[0], 403, "a token through a proxy")
    check_eq(imds(a1, "/latest/api/token")[0], 405, "GET /latest/api/token")
    _, short = imds(a1, "/latest/api/token", method="PUT",
                    headers=["X-aws-ec2-metadata-token-ttl-seconds: 1"])
    hdr = [f"X-aws-ec2-metadata-token: {short.decode()}"]
    check_eq(imds(a1, "/latest/meta-data/instance-id", headers=hdr)[0], 200, "a 1 s token, fresh")
    time.sleep(1.3)
    check_eq(imds(a1, "/latest/meta-data/instance-id", headers=hdr)[0], 401, "...expired")
    # IMDSv1 stays allowed (EC2's default, "optional").
    check_eq(imds(a1, "/latest/meta-data/instance-id"), (200, S["a1_id"].encode()),
             "GET without a token")


@tap.test
def tenants_with_the_same_address_get_their_own_answers(env):
    eb = env.ec2(env.tenant("svc-b"))
    vpc = eb.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    sub = eb.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    sg = eb.create_security_group(VpcId=vpc, GroupName="b", Description="b")["GroupId"]
    # The same address as a1, on the same host.
    b1 = launch(env, eb, "b1", "h1", sub, [sg], "10.0.1.10", 24)
    S["vpc_b"] = vpc
    env.converged()
    lease = dhcp(env, b1)
    check_eq((lease.get("ip"), lease.get("router")), ("10.0.1.10", "10.0.1.1"), "b1's lease")
    check_eq(text(b1, "/latest/meta-data/instance-id"), S["b1_id"], "b1 gets its own id")
    check_eq(text(S["a1"], "/latest/meta-data/instance-id"), S["a1_id"], "a1 still its own")
    check_eq(imds(b1, "/latest/user-data")[0], 404, "and not a1's user data")
    seg_a, seg_b = segment_of(env, S["vpc"]), segment_of(env, vpc)
    check(seg_a != seg_b and dnsmasq_pid(env.service_dir("h1", seg_b)) not in
          (None, dnsmasq_pid(env.service_dir("h1", seg_a))), "a dnsmasq per network")


@tap.test
def dhcp_outlives_a_netctl_restart_and_metadata_comes_back(env):
    a1 = S["a1"]
    sdir = env.service_dir("h1", segment_of(env, S["vpc"]))
    pid = dnsmasq_pid(sdir)
    env.netctl["h1"].kill()
    lease = dhcp(env, a1)
    check_eq(lease.get("ip"), "10.0.1.10", "DHCP answers while nubo-netctl is down")
    t0 = time.monotonic()
    env.start_netctl("h1")
    eventually(lambda: imds(a1, "/latest/meta-data/instance-id", timeout=2),
               (200, S["a1_id"].encode()), "metadata after the restart", timeout=20)
    print(f"# netctl restart to metadata served: {time.monotonic() - t0:.2f} s")
    check_eq(dnsmasq_pid(sdir), pid, "the same dnsmasq (found again, not restarted)")
    env.converged()
    check_eq(dnsmasq_pid(sdir), pid, "still the same after converging")


@tap.test
def a_network_leaving_the_host_takes_its_service_namespace(env):
    sdir = env.service_dir("h1", segment_of(env, S["vpc_b"]))
    ns = (sdir / "net").read_text().split("\n")[0].removeprefix("netns ")
    pid = dnsmasq_pid(sdir)
    check(pid and Path("/run/netns", ns).exists(), "b's service namespace is there", ns, pid)
    env.psql(f"UPDATE instances SET state = 'terminated' WHERE id = '{S['b1_id']}'")
    env.converged()
    check(not Path("/run/netns", ns).exists(), f"{ns} is gone", env.netctl_logs())
    check(not running(pid), "its dnsmasq is stopped")
    check(not sdir.exists(), "its state directory is gone")
    # a's network stays.
    check_eq(text(S["a1"], "/latest/meta-data/instance-id"), S["a1_id"], "a1 is still served")


@tap.test
def a_network_that_left_while_netctl_was_down_is_torn_down_at_its_start(env):
    ec = env.ec2(env.tenant("svc-c"))
    vpc = ec.create_vpc(CidrBlock="172.16.0.0/24")["Vpc"]["VpcId"]
    sub = ec.create_subnet(VpcId=vpc, CidrBlock="172.16.0.0/26")["Subnet"]["SubnetId"]
    sg = ec.create_security_group(VpcId=vpc, GroupName="c", Description="c")["GroupId"]
    c1 = launch(env, ec, "c1", "h1", sub, [sg], "172.16.0.20", 26)
    env.converged()
    lease = dhcp(env, c1)
    check_eq((lease.get("ip"), lease.get("router"), lease.get("mask")),
             ("172.16.0.20", "172.16.0.1", "24"), "c1's lease")
    check_eq(text(c1, "/latest/meta-data/instance-id"), S["c1_id"], "c1's metadata")
    sdir = env.service_dir("h1", segment_of(env, vpc))
    ns = (sdir / "net").read_text().split("\n")[0].removeprefix("netns ")
    pid = dnsmasq_pid(sdir)
    env.netctl["h1"].stop()
    check(running(pid) and Path("/run/netns", ns).exists(), "left running by a stopped netctl")
    env.psql(f"UPDATE instances SET state = 'terminated' WHERE id = '{S['c1_id']}'")
    env.start_netctl("h1")
    env.converged()
    check(not Path("/run/netns", ns).exists() and not running(pid) and not sdir.exists(),
          f"{ns}, its dnsmasq and its directory are gone", env.netctl_logs())
    check(dnsmasq_pid(env.service_dir("h1", segment_of(env, S["vpc"]))),
          "a's dnsmasq still runs")


@tap.test
def netctl_stops_cleanly_with_no_sanitizer_report_or_warning(env):
    for name, d in env.netctl.items():
        check_eq(d.stop(), 0, f"nubo-netctl {name}'s exit status on SIGTERM")
        log = d.log()
        bad = [line for line in log.splitlines()
               if "Sanitizer" in line or "runtime error:" in line or " WARN " in line]
        check(not bad, f"nubo-netctl {name}'s log", "\n".join(bad[:20]))


if __name__ == "__main__":
    sys.exit(tap.main())
