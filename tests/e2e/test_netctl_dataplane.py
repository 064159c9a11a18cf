"""End-to-end: tenant networks on real Open vSwitch (issue 7). A real nubo-gateway and PostgreSQL
hold the VPCs, subnets, security groups, elastic IPs and VPN connections, made through the EC2
API with boto3; one real nubo-netctl per "host" fetches its host's desired state from the gateway
and programs that host's own Open vSwitch (userspace datapath); network namespaces stand in for
the hosts, the instances, the internet and a customer's site (tests/e2e/netns_env.py).

What stands in for the rest of the cloud: instances are launched with RunInstances (which gives
them their network interface: MAC, private IP, groups), then placed on a host by SQL, as the
scheduler and an agent would; each is a namespace plugged into its host's br-int with the
interface id, MAC and IP, as libvirt plugs a VM. No VM here: test_vm_lifecycle.py has those.

Prints TAP. Run: /usr/bin/python3 tests/e2e/test_netctl_dataplane.py"""

import sys

sys.dont_write_bytecode = True

import os  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import xml.etree.ElementTree as ET  # noqa: E402

import nubo_env  # noqa: E402
from net_env import NetEnv  # noqa: E402
from nubo_env import check, check_eq  # noqa: E402

tap = nubo_env.Tap(__file__, per_test_timeout=180, fixture=NetEnv)
S = {}  # state shared by the tests, in order


def eni_of(ec2, instance_id):
    inst = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    ni = inst["NetworkInterfaces"][0]
    return ni["NetworkInterfaceId"], ni["MacAddress"], ni["PrivateIpAddress"]


def launch(env, ec2, name, host, subnet, groups, ip):
    """RunInstances into 'subnet' with 'ip', placed on 'host' (by SQL: no scheduler here), and
    a namespace plugged into that host's br-int as the VM would be."""
    out = ec2.run_instances(ImageId=env.image(), InstanceType="t3.micro", MinCount=1, MaxCount=1,
                            SubnetId=subnet, PrivateIpAddress=ip, SecurityGroupIds=groups)
    iid = out["Instances"][0]["InstanceId"]
    env.psql(f"UPDATE instances SET host_id = '{env.host_id(host)}', state = 'running' "
             f"WHERE id = '{iid}'")
    eni, mac, got_ip = eni_of(ec2, iid)
    check_eq(got_ip, ip, f"{name}'s private address")
    lh = env.hosts[host][0]
    inst = env.lab.add_instance(lh, name, mac, ip + "/24", gateway=ip.rsplit(".", 1)[0] + ".1",
                                iface_id=eni)
    S[name] = inst
    S[name + "_id"] = iid
    return inst


def tenant_net(env, tenant, cidr="10.0.0.0/16", subnet="10.0.1.0/24"):
    ec2 = env.ec2(env.tenant(tenant))
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    sub = ec2.create_subnet(VpcId=vpc, CidrBlock=subnet, AvailabilityZone="nubo-1a")
    sg = ec2.create_security_group(VpcId=vpc, GroupName="ssh", Description="ssh from anywhere")
    ec2.authorize_security_group_ingress(GroupId=sg["GroupId"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    return ec2, vpc, sub["Subnet"]["SubnetId"], sg["GroupId"]


def eventually(fn, want, what, timeout=10):
    """Polls fn() until it returns 'want' (traffic needs the next netctl pass)."""
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = fn()
        if got == want:
            return
        time.sleep(0.2)
    check(False, f"{what}: expected {want}, still {got} after {timeout} s")


@tap.test
def tenants_with_overlapping_cidrs_are_isolated(env):
    ea, vpc_a, sub_a, sg_a = tenant_net(env, "net-a")
    eb, vpc_b, sub_b, sg_b = tenant_net(env, "net-b")
    S.update(ea=ea, vpc_a=vpc_a, sub_a=sub_a, sg_a=sg_a, eb=eb, sg_b=sg_b)
    # The same addresses in both tenants, on both hosts.
    a1 = launch(env, ea, "a1", "h1", sub_a, [sg_a], "10.0.1.10")
    a2 = launch(env, ea, "a2", "h2", sub_a, [sg_a], "10.0.1.20")
    b1 = launch(env, eb, "b1", "h1", sub_b, [sg_b], "10.0.1.10")
    b3 = launch(env, eb, "b3", "h1", sub_b, [sg_b], "10.0.1.30")
    env.converged()
    for inst in (a1, a2, b1, b3):
        inst.serve_tcp(22)
    # Each tenant reaches its own instances, on this host and through the tunnel.
    check(a1.tcp_connect("10.0.1.20", 22), "a1 -> a2 (other host, VXLAN)", a1.last_tcp,
          env.netctl_logs())
    check(a2.tcp_connect("10.0.1.10", 22), "a2 -> a1 (other host, VXLAN)", a2.last_tcp)
    check(b1.tcp_connect("10.0.1.30", 22), "b1 -> b3 (same host)", b1.last_tcp)
    # ...and nothing of the other tenant, though the addresses are the same.
    check(not a1.tcp_connect("10.0.1.30", 22, timeout=1), "a1 cannot reach b3's address")
    check(not b3.tcp_connect("10.0.1.20", 22, timeout=1), "b3 cannot reach a2's address")
    # Spoofing: a1 taking another address (b3's, or any other) gets nowhere.
    a1.iproute("addr", "flush", "dev", "eth0")
    a1.iproute("addr", "add", "10.0.1.30/24", "dev", "eth0")
    try:
        check(not a1.tcp_connect("10.0.1.20", 22, timeout=1), "a1 spoofing 10.0.1.30 is dropped")
    finally:
        a1.iproute("addr", "flush", "dev", "eth0")
        a1.iproute("addr", "add", "10.0.1.10/24", "dev", "eth0")
        a1.iproute("route", "add", "default", "via", "10.0.1.1")
    check(a1.tcp_connect("10.0.1.20", 22), "a1 with its own address again", a1.last_tcp)


@tap.test
def security_groups_are_stateful_both_ways(env):
    ea, a1, a2 = S["ea"], S["a1"], S["a2"]
    a2.serve_tcp(80)
    a1.serve_tcp(80)
    check(a1.tcp_connect("10.0.1.20", 22), "port 22 admitted", a1.last_tcp)
    check(not a1.tcp_connect("10.0.1.20", 80, timeout=1), "port 80 dropped")
    # Port 80 from the group's own members: a1 -> a2:80 passes, and its replies come back to
    # a1's ephemeral port, which no rule admits (stateful).
    sg = S["sg_a"]
    ea.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
         "UserIdGroupPairs": [{"GroupId": sg}]}])
    eventually(lambda: a1.tcp_connect("10.0.1.20", 80, timeout=1), True, "a1 -> a2:80 admitted")
    # Egress: a1's group keeps only SSH out; a1 -> a2:80 is now dropped on the way out.
    ea.revoke_security_group_egress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ea.authorize_security_group_egress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    eventually(lambda: a1.tcp_connect("10.0.1.20", 80, timeout=1), False, "egress 80 dropped")
    check(a1.tcp_connect("10.0.1.20", 22), "egress 22 still admitted", a1.last_tcp)
    ea.authorize_security_group_egress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    env.converged()


@tap.test
def elastic_ip_is_reachable_from_outside(env):
    ea, a1 = S["ea"], S["a1"]
    igw = ea.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ea.attach_internet_gateway(InternetGatewayId=igw, VpcId=S["vpc_a"])
    alloc = ea.allocate_address(Domain="vpc")
    eip = alloc["PublicIp"]
    check(eip.startswith("203.0.113.") and eip != "203.0.113.1", "address from the pool", alloc)
    assoc = ea.associate_address(AllocationId=alloc["AllocationId"], InstanceId=S["a1_id"])
    env.converged()
    net = env.internet
    # As in EC2, the subnet needs a route to the internet gateway.
    check(not net.tcp_connect(eip, 22, timeout=1), "no route to the internet gateway: no NAT")
    rtb = ea.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [S["vpc_a"]]}])
    main = [t for t in rtb["RouteTables"] if any(a.get("Main") for a in t["Associations"])]
    check(len(main) == 1, "the VPC's main route table", rtb)
    ea.create_route(RouteTableId=main[0]["RouteTableId"], DestinationCidrBlock="0.0.0.0/0",
                    GatewayId=igw)
    env.converged()
    eventually(lambda: net.tcp_connect(eip, 22, timeout=1), True,
               f"the internet reaches a1 at its elastic IP {eip}", timeout=15)
    check(not net.tcp_connect(eip, 80, timeout=1), "port 80 still dropped by a1's group")
    # Out: a1 reaches the internet from its elastic IP.
    net.serve_tcp(9000)
    check(a1.tcp_connect("203.0.113.100", 9000), "a1 reaches the internet", a1.last_tcp)
    S["eip"] = (alloc["AllocationId"], eip)
    ea.disassociate_address(AssociationId=assoc["AssociationId"])
    eventually(lambda: net.tcp_connect(eip, 22, timeout=1), False, "disassociated: unreachable")


@tap.test
def netctl_restart_keeps_connections_and_rebuilds_exactly(env):
    a1 = S["a1"]
    h1 = env.hosts["h1"][0]
    before = sorted(h1.dump_flows("br-int"))
    # A stray flow with netctl's cookie tag, as a crash between two bundles could leave.
    h1.ofctl("add-flow", "br-int", "cookie=0x6e00000000000001,table=20,priority=5,ip "
             "actions=drop")
    # A long connection through the tunnel, talking while netctl is killed and restarted.
    talk = a1.spawn(sys.executable, "-I", "-u", "-c", TALKER, "10.0.1.20", "22", "60",
                    stdout=subprocess.PIPE)
    check("connected" in talk.stdout.readline(), "a long connection opened")
    env.netctl["h1"].kill()
    env.netctl["h2"].kill()
    time.sleep(0.5)
    env.start_netctl("h1")
    env.start_netctl("h2")
    out, _ = talk.communicate(timeout=60)
    check("ok 60" in out, "the connection lived through the restart", out)
    time.sleep(1)
    after = sorted(h1.dump_flows("br-int"))
    check(not any("cookie=0x6e00000000000001" in f for f in after), "the stray flow is gone",
          after[:5])
    check_eq(len(after), len(before), "as many flows as before the restart")


@tap.test
def vpn_connection_from_a_customer_site(env):
    ea = S["ea"]
    vgw = ea.create_vpn_gateway(Type="ipsec.1")["VpnGateway"]["VpnGatewayId"]
    ea.attach_vpn_gateway(VpnGatewayId=vgw, VpcId=S["vpc_a"])
    cgw = ea.create_customer_gateway(Type="ipsec.1", PublicIp="203.0.113.200",
                                     BgpAsn=65000)["CustomerGateway"]["CustomerGatewayId"]
    vpn = ea.create_vpn_connection(Type="ipsec.1", CustomerGatewayId=cgw, VpnGatewayId=vgw,
                                   Options={"StaticRoutesOnly": True})["VpnConnection"]
    vpn_id = vpn["VpnConnectionId"]
    ea.create_vpn_connection_route(VpnConnectionId=vpn_id, DestinationCidrBlock="192.168.50.0/24")
    # The customer sets up their end from the configuration EC2 hands out, as they would.
    conf = ea.describe_vpn_connections(
        VpnConnectionIds=[vpn_id])["VpnConnections"][0]["CustomerGatewayConfiguration"]
    tunnel = ET.fromstring(conf).find("ipsec_tunnel")
    ours = tunnel.findtext("vpn_gateway/tunnel_outside_address/ip_address")
    psk = tunnel.findtext("ike/pre_shared_key")
    check(ours and ours.startswith("203.0.113.") and psk, "the configuration names our end and "
          "the key", conf[:800])
    site = env.pub.add_outside("site", "203.0.113.200/24")
    site.iproute("addr", "add", "192.168.50.1/32", "dev", "lo")
    start_site_charon(env, site, ours, psk, "192.168.50.0/24", "10.0.0.0/16")
    env.converged(timeout=30)
    eventually(lambda: site.tcp_connect("10.0.1.10", 22, timeout=2), True,
               "the customer's site reaches a1 through IPsec", timeout=40)
    check(site.tcp_connect("10.0.1.20", 22), "and a2 on the other host", site.last_tcp)
    # nubo-netctl tells the control plane: the connection is available, its tunnel UP.
    def telemetry():
        c = ea.describe_vpn_connections(VpnConnectionIds=[vpn_id])["VpnConnections"][0]
        return (c["State"], [t["Status"] for t in c.get("VgwTelemetry", [])])
    eventually(telemetry, ("available", ["UP"]), "DescribeVpnConnections shows the tunnel UP")
    check(not site.tcp_connect("10.0.1.20", 80, timeout=1), "a2's group still drops port 80")
    ea.delete_vpn_connection(VpnConnectionId=vpn_id)
    eventually(lambda: site.tcp_connect("10.0.1.10", 22, timeout=1), False,
               "the deleted connection no longer carries traffic", timeout=20)
    # The tunnel may drop (charon says goodbye) before nubo-netctl has finished removing the
    # gateway: wait for that too.
    eventually(lambda: "nvpn-" + vpn_id[-8:] in subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True).stdout, False,
        "the VPN gateway's namespace is gone", timeout=20)


def start_site_charon(env, site, gateway_ip, psk, local_ts, remote_ts):
    """The customer's strongSwan in the site namespace: charon with the userspace ESP plugin in
    a private mount namespace (its pid file and socket paths are compiled in; see netctl/vpn.c),
    loaded through its socket with the connection to our gateway."""
    d = env.tmp / "site-charon"
    d.mkdir()
    (d / "strongswan.conf").write_text(
        "charon {\n load = random nonce aes sha1 sha2 hmac gmp kdf kernel-libipsec "
        "kernel-netlink socket-default vici\n"
        " plugins { vici { socket = unix:///run/charon.vici } }\n"
        " filelog { charon { path = /run/charon.log\n default = 1 } }\n}\n")
    (d / "swanctl.conf").write_text(f"""connections {{
    site {{
        version = 2
        local_addrs = 203.0.113.200
        remote_addrs = {gateway_ip}
        proposals = aes256-sha256-modp2048
        mobike = no
        encap = yes
        local {{
            auth = psk
            id = 203.0.113.200
        }}
        remote {{
            auth = psk
            id = {gateway_ip}
        }}
        children {{
            site {{
                mode = tunnel
                local_ts = {local_ts}
                remote_ts = {remote_ts}
                esp_proposals = aes256-sha256-modp2048
            }}
        }}
    }}
}}
secrets {{
    ike-site {{
        id-1 = 203.0.113.200
        id-2 = {gateway_ip}
        secret = "{psk}"
    }}
}}
""")
    site.spawn("unshare", "-m", "--propagation", "private", "sh", "-c",
               f"umount -l /run/netns 2>/dev/null; mount --bind {d} /run && "
               f"STRONGSWAN_CONF=/run/strongswan.conf exec /usr/lib/ipsec/charon")
    deadline = time.monotonic() + 10
    while not (d / "charon.vici").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    r = subprocess.run(["swanctl", "--load-all", "--file", str(d / "swanctl.conf"),
                        "--uri", f"unix://{d / 'charon.vici'}"],
                       env=dict(os.environ, STRONGSWAN_CONF=str(d / "strongswan.conf")),
                       capture_output=True, text=True, timeout=20)
    check(r.returncode == 0, "the site's charon loads its connection", r.stdout, r.stderr)


# Sends a line every 50 ms over one connection to an echo server and checks every echo.
TALKER = r"""
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
print("connected", flush=True)
n = int(sys.argv[3])
for i in range(1, n + 1):
    msg = (f"line {i}\n").encode()
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        chunk = s.recv(len(msg) - len(got))
        if not chunk:
            print(f"closed at {i}"); sys.exit(1)
        got += chunk
    if got != msg:
        print(f"bad echo at {i}"); sys.exit(1)
    time.sleep(0.05)
print(f"ok {n}")
"""


if __name__ == "__main__":
    sys.exit(tap.main())
