"""End-to-end: remote access into a VPC for single users with WireGuard (issue 7). A real
nubo-gateway and PostgreSQL hold the VPC and the remote-access endpoint (REST: /v1/remote-access);
one real nubo-netctl per "host" runs the endpoint (wireguard-go in a namespace of its own) on the
host the control plane chose and routes the client CIDR to it from every host of the VPC
(tests/e2e/net_env.py). A "laptop" on the public network runs its own wireguard-go, configured
from the client configuration the API answers, with a key pair it made itself.

Prints TAP. Run: /usr/bin/python3 tests/e2e/test_remote_access.py"""

import sys

sys.dont_write_bytecode = True

import re  # noqa: E402
import secrets  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import nubo_env  # noqa: E402
from net_env import NetEnv  # noqa: E402
from nubo_env import check, check_eq  # noqa: E402
from test_netctl_dataplane import eventually, launch, tenant_net  # noqa: E402

tap = nubo_env.Tap(__file__, per_test_timeout=180, fixture=NetEnv)
S = {}  # state shared by the tests, in order
CLIENTS = "100.64.0.0/22"


def wg_keypair():
    priv = subprocess.run(["wg", "genkey"], capture_output=True, text=True,
                          check=True).stdout.strip()
    pub = subprocess.run(["wg", "pubkey"], input=priv, capture_output=True, text=True,
                         check=True).stdout.strip()
    return priv, pub


def netns_list():
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def wireguard_go_running(ifname):
    r = subprocess.run(["pgrep", "-f", f"wireguard-go -f {ifname}$"], capture_output=True,
                       text=True)
    return [p for p in r.stdout.split() if p.isdigit() and
            Path(f"/proc/{p}/stat").exists() and
            Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]


def tcp_segments_in(inst):
    """The TCP segments the instance's namespace has received (/proc/net/snmp, Tcp InSegs)."""
    lines = [ln.split() for ln in inst.run("cat", "/proc/net/snmp").stdout.splitlines()
             if ln.startswith("Tcp:")]
    return int(lines[1][lines[0].index("InSegs")])


def parse_config(text):
    """The wg-quick configuration as {section: {key: value}}."""
    conf, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = conf.setdefault(line[1:-1], {})
        elif "=" in line and section is not None and not line.startswith("#"):
            k, v = line.split("=", 1)
            section[k.strip()] = v.strip()
    return conf


@tap.test
def endpoint_is_made_for_a_vpc_and_checked(env):
    ec2, vpc, sub, sg = tenant_net(env, "ra-a")
    S.update(ec2=ec2, vpc=vpc, sub=sub, sg=sg, creds=env.tenant("ra-a"))
    i1 = S["i1"] = launch(env, ec2, "i1", "h1", sub, [sg], "10.0.1.10")
    i2 = launch(env, ec2, "i2", "h2", sub, [sg], "10.0.1.20")
    for inst in (i1, i2):
        inst.serve_tcp(22)
        inst.serve_tcp(80)
    creds = S["creds"]
    r = env.rest(creds, "POST", "/v1/remote-access", {"vpc_id": vpc, "client_cidr": "10.0.8.0/22"})
    check(r.status == 400 and r.error_code == "InvalidParameterValue",
          "a client CIDR inside the VPC is refused", r)
    r = env.rest(creds, "POST", "/v1/remote-access", {"vpc_id": vpc, "client_cidr": CLIENTS,
                                                      "description": "laptops"})
    check(r.status == 201, "create the endpoint", r)
    e = r.json
    check(re.fullmatch(r"rae-[0-9a-f]{17}", e["id"]), "its id", e)
    check_eq(e["vpc_cidr"], "10.0.0.0/16", "the VPC's CIDR")
    check(e["outside_ip"].startswith("203.0.113.") and e["outside_ip"] != "203.0.113.1",
          "an outside address from the public pool", e)
    check(len(e["public_key"]) == 44 and e["public_key"].endswith("="), "a WireGuard key", e)
    check(e["host_id"] in (env.host_id("h1"), env.host_id("h2")), "a host runs it", e)
    check("private" not in r.body.lower(), "the private key is never answered", r.body)
    sealed = env.psql1(f"SELECT private_key FROM remote_access_endpoints WHERE id = '{e['id']}'")
    check(sealed.startswith("v1:"), "the private key is sealed at rest", sealed[:10])
    S["ep"] = e
    # A VPC with an endpoint cannot go.
    vpc2 = env.rest(creds, "POST", "/v1/vpcs", {"cidr_block": "10.9.0.0/16"}).json["id"]
    r = env.rest(creds, "POST", "/v1/remote-access", {"vpc_id": vpc2, "client_cidr": CLIENTS})
    check_eq(r.status, 201, "an endpoint of a second VPC")
    r2 = env.rest(creds, "DELETE", f"/v1/vpcs/{vpc2}")
    check(r2.status == 400 and "remote-access endpoint" in r2.json["error"]["message"],
          "a VPC with an endpoint is not deleted", r2)
    check_eq(env.rest(creds, "DELETE", f"/v1/remote-access/{r.json['id']}").status, 204,
             "delete that endpoint")
    check_eq(env.rest(creds, "DELETE", f"/v1/vpcs/{vpc2}").status, 204, "then the VPC goes")
    # Another tenant sees nothing of it.
    other = env.tenant("ra-b")
    for method, path, body in (("GET", f"/v1/remote-access/{e['id']}", None),
                               ("DELETE", f"/v1/remote-access/{e['id']}", None),
                               ("GET", f"/v1/remote-access/{e['id']}/peers", None),
                               ("POST", f"/v1/remote-access/{e['id']}/peers",
                                {"public_key": wg_keypair()[1]})):
        r = env.rest(other, method, path, body)
        check_eq(r.error_code, "InvalidRemoteAccessEndpointID.NotFound", f"{method} {path} "
                 "by another tenant")
    r = env.rest(other, "GET", "/v1/remote-access")
    check(r.status == 200 and r.json["remote_access"] == [], "another tenant lists none", r)
    r = env.rest(other, "POST", "/v1/remote-access", {"vpc_id": vpc, "client_cidr": CLIENTS})
    check_eq(r.error_code, "InvalidVpcID.NotFound", "another tenant's VPC")
    r = env.rest(creds, "GET", "/v1/remote-access")
    check(r.status == 200 and [x["id"] for x in r.json["remote_access"]] == [e["id"]],
          "the owner lists it", r)
    r = env.rest(creds, "POST", f"/v1/remote-access/{e['id']}/peers",
                 {"public_key": "bm90IGEga2V5"})
    check(r.status == 400 and r.error_code == "InvalidParameterValue", "a bad key is refused", r)
    env.converged()


@tap.test
def a_laptop_reaches_the_vpc_through_wireguard(env):
    e, creds = S["ep"], S["creds"]
    priv, pub = wg_keypair()
    r = env.rest(creds, "POST", f"/v1/remote-access/{e['id']}/peers",
                 {"public_key": pub, "name": "alice's laptop"})
    check(r.status == 201, "add a peer", r)
    peer = r.json
    check_eq(peer["address"], "100.64.0.2", "the first client address")
    r2 = env.rest(creds, "POST", f"/v1/remote-access/{e['id']}/peers", {"public_key": pub})
    check(r2.status == 400, "the same key twice is refused", r2)
    conf = parse_config(peer["client_config"])
    check_eq(conf.get("Interface", {}).get("Address"), "100.64.0.2/32", "Address")
    check_eq(conf.get("Peer", {}).get("PublicKey"), e["public_key"], "the server's key")
    check_eq(conf["Peer"].get("Endpoint"), f"{e['outside_ip']}:51820", "Endpoint")
    check_eq(conf["Peer"].get("AllowedIPs"), "10.0.0.0/16", "AllowedIPs")
    check(priv not in peer["client_config"], "the client's private key is not in it")
    S["peer"] = peer

    # The laptop: wg-quick does not fit a namespace, so by hand what it would do.
    laptop = env.pub.add_outside("laptop", "203.0.113.150/24")
    ifname = "wgl-" + secrets.token_hex(3)
    keyfile = env.tmp / "laptop.key"
    keyfile.write_text(priv + "\n")
    keyfile.chmod(0o600)
    proc = laptop.spawn("env", "WG_PROCESS_FOREGROUND=1", "wireguard-go", "-f", ifname)
    deadline = time.monotonic() + 5
    while not Path(f"/var/run/wireguard/{ifname}.sock").exists():
        check(time.monotonic() < deadline, "the laptop's wireguard-go starts")
        time.sleep(0.05)
    subprocess.run(["wg", "set", ifname, "private-key", str(keyfile), "peer",
                    conf["Peer"]["PublicKey"], "endpoint", conf["Peer"]["Endpoint"],
                    "allowed-ips", conf["Peer"]["AllowedIPs"], "persistent-keepalive", "25"],
                   check=True, capture_output=True)
    laptop.iproute("addr", "add", conf["Interface"]["Address"], "dev", ifname)
    laptop.iproute("link", "set", ifname, "up")
    laptop.iproute("route", "add", conf["Peer"]["AllowedIPs"], "dev", ifname)
    S.update(laptop=laptop, laptop_if=ifname, laptop_wg=proc)
    env.converged(timeout=30)
    eventually(lambda: laptop.tcp_connect("10.0.1.10", 22, timeout=2), True,
               "the laptop reaches i1 over WireGuard", timeout=30)
    check(laptop.tcp_connect("10.0.1.20", 22), "and i2 on the other host", laptop.last_tcp,
          env.netctl_logs())
    check(not laptop.tcp_connect("10.0.1.10", 80, timeout=1),
          "i1's group still drops port 80 from the laptop")
    show = subprocess.run(["wg", "show", ifname, "latest-handshakes"], capture_output=True,
                          text=True).stdout.split()
    check(len(show) == 2 and show[1] != "0", "a WireGuard handshake happened", show)
    # Without WireGuard there is no way in: a machine routing the VPC's addresses to the
    # endpoint's outside address gets nothing through (the endpoint forwards it, the inside
    # leg's anti-spoofing drops it). No answer could come back anyway, so count what i1 gets.
    other = env.pub.add_outside("stranger", "203.0.113.151/24")
    other.iproute("route", "add", "10.0.0.0/16", "via", e["outside_ip"])
    i1 = S["i1"]
    before = tcp_segments_in(i1)
    other.tcp_connect("10.0.1.10", 22, timeout=2)
    check_eq(tcp_segments_in(i1), before, "TCP segments i1 received from a machine without the "
             "tunnel")


@tap.test
def the_endpoint_survives_a_netctl_restart(env):
    e, laptop = S["ep"], S["laptop"]
    ifname = "wg-" + e["id"][-8:]
    before = wireguard_go_running(ifname)
    check(len(before) == 1, "one wireguard-go runs for the endpoint", before)
    check("nwg-" + e["id"][-8:] in netns_list(), "in its namespace")
    for name in ("h1", "h2"):
        env.netctl[name].kill()
    time.sleep(0.5)
    check(laptop.tcp_connect("10.0.1.10", 22), "traffic flows while netctl is down",
          laptop.last_tcp)
    for name in ("h1", "h2"):
        env.start_netctl(name)
    env.converged()
    time.sleep(1)
    check_eq(wireguard_go_running(ifname), before, "the same wireguard-go after the restart")
    check(laptop.tcp_connect("10.0.1.20", 22), "and traffic still flows", laptop.last_tcp)


@tap.test
def a_deleted_peer_can_no_longer_connect(env):
    e, creds, laptop = S["ep"], S["creds"], S["laptop"]
    r = env.rest(creds, "GET", f"/v1/remote-access/{e['id']}/peers")
    check(r.status == 200 and [p["id"] for p in r.json["peers"]] == [S["peer"]["id"]],
          "the peer is listed", r)
    r = env.rest(creds, "DELETE", f"/v1/remote-access/{e['id']}/peers/{S['peer']['id']}")
    check_eq(r.status, 204, "delete the peer")
    r = env.rest(creds, "DELETE", f"/v1/remote-access/{e['id']}/peers/{S['peer']['id']}")
    check_eq(r.error_code, "InvalidRemoteAccessPeerID.NotFound", "deleting it again")
    env.converged()
    eventually(lambda: laptop.tcp_connect("10.0.1.10", 22, timeout=1), False,
               "the deleted peer no longer reaches i1", timeout=20)
    # A new peer with a new key gets the freed address and works.
    priv, pub = wg_keypair()
    r = env.rest(creds, "POST", f"/v1/remote-access/{e['id']}/peers", {"public_key": pub})
    check(r.status == 201 and r.json["address"] == "100.64.0.2", "a new peer", r)
    keyfile = env.tmp / "laptop.key"
    keyfile.write_text(priv + "\n")
    subprocess.run(["wg", "set", S["laptop_if"], "private-key", str(keyfile)], check=True,
                   capture_output=True)
    env.converged()
    eventually(lambda: laptop.tcp_connect("10.0.1.10", 22, timeout=2), True,
               "the new peer reaches i1", timeout=30)


@tap.test
def a_deleted_endpoint_leaves_nothing_behind(env):
    e, creds, laptop = S["ep"], S["creds"], S["laptop"]
    hexid = e["id"][-8:]
    r = env.rest(creds, "DELETE", f"/v1/remote-access/{e['id']}")
    check_eq(r.status, 204, "delete the endpoint")
    r = env.rest(creds, "GET", f"/v1/remote-access/{e['id']}")
    check_eq(r.error_code, "InvalidRemoteAccessEndpointID.NotFound", "it is gone")
    eventually(lambda: "nwg-" + hexid in netns_list(), False, "its namespace is gone",
               timeout=20)
    eventually(lambda: wireguard_go_running("wg-" + hexid), [], "its wireguard-go is gone")
    check(not Path(f"/var/run/wireguard/wg-{hexid}.sock").exists(), "and its socket")
    check(not laptop.tcp_connect("10.0.1.10", 22, timeout=1), "the laptop no longer gets in")
    n = env.psql1(f"SELECT count(*) FROM remote_access_peers WHERE endpoint_id = '{e['id']}'")
    check_eq(n, "0", "its peers went with it")
    # The laptop's wireguard-go, stopped so that it removes its socket (a kill would leave it).
    S["laptop_wg"].terminate()
    S["laptop_wg"].wait(timeout=10)
    Path(f"/var/run/wireguard/{S['laptop_if']}.sock").unlink(missing_ok=True)


@tap.test
def netctl_teardown_stops_endpoints(env):
    creds = S["creds"]
    r = env.rest(creds, "POST", "/v1/remote-access", {"vpc_id": S["vpc"],
                                                      "client_cidr": "100.65.0.0/24"})
    check(r.status == 201, "another endpoint", r)
    e = r.json
    hexid = e["id"][-8:]
    host = "h1" if e["host_id"] == env.host_id("h1") else "h2"
    env.converged()
    eventually(lambda: len(wireguard_go_running("wg-" + hexid)), 1, "it runs")
    env.netctl[host].stop(timeout=10)
    r = subprocess.run(env.netctl_command(host) + ["--teardown"], env=env.netctl_env(host),
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "nubo-netctl --teardown", r.stderr[-1500:])
    check("nwg-" + hexid not in netns_list(), "the namespace is gone after --teardown")
    eventually(lambda: wireguard_go_running("wg-" + hexid), [], "wireguard-go is gone too")
    env.start_netctl(host)
    env.converged()
    eventually(lambda: len(wireguard_go_running("wg-" + hexid)), 1,
               "a restarted nubo-netctl brings it back")


@tap.test
def netctl_stops_cleanly_with_no_sanitizer_report_or_warning(env):
    for name, d in env.netctl.items():
        check_eq(d.stop(), 0, f"nubo-netctl {name}'s exit status on SIGTERM")
        bad = [line for line in d.log().splitlines()
               if "Sanitizer" in line or "runtime error:" in line or " WARN " in line]
        check(not bad, f"nubo-netctl {name}'s log", "\n".join(bad[:20]))


if __name__ == "__main__":
    sys.exit(tap.main())
