#!/usr/bin/python3
"""The operator's host API (REST, admin role) with a real scheduler: register simulated hosts,
disable one (it gets nothing new), a host that stops heartbeating goes down and its instances are
marked, evacuate moves them to another host, delete refuses while instances live there, and
node tokens are checked on the node API."""

import time

import nubo_env
import sched_env
from nubo_env import check, check_eq, sql_quote

tap = nubo_env.Tap(__file__, per_test_timeout=120, fixture=sched_env.SchedEnv)


def host(env, name, **fields):
    body = {"name": name, "zone": "nubo-1a", "simulated": True, "vcpus": 4, "memory_mib": 8192,
            "disk_gib": 100}
    body.update(fields)
    r = env.rest(env.admin, "POST", "/v1/admin/hosts", body)
    check(r.status == 201, f"POST /v1/admin/hosts {name}", r)
    return r.json


def wait(cond, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    check(False, f"{what} (after {timeout} s)")


@tap.test
def register_list_update(env):
    h = host(env, "rack1-a", traits=["ssd"], cpu_ratio=2.0, reserved_memory_mib=1024)
    check(h["id"].startswith("h-") and "node_token" not in h,
          "a simulated host has an id and no node token", h)
    check_eq((h["ratios"]["cpu"], h["reserved"]["memory_mib"], h["traits"]),
             (2.0, 1024, ["ssd"]), "ratios, reserved resources and traits as given")
    r = env.rest(env.admin, "GET", "/v1/admin/hosts")
    check(r.status == 200 and h["id"] in [x["id"] for x in r.json["hosts"]], "list shows it", r)
    r = env.rest(env.admin, "PATCH", f"/v1/admin/hosts/{h['id']}",
                 {"state": "draining", "memory_ratio": 1.5})
    check(r.status == 200, "PATCH", r)
    check_eq((r.json["state"], r.json["ratios"]["memory"]), ("draining", 1.5), "changed fields")
    r = env.rest(env.admin, "PATCH", f"/v1/admin/hosts/{h['id']}", {"state": "down"})
    check(r.status == 400 and r.error_code == "InvalidParameterValue",
          "down is the heartbeats' to set, not the operator's", r)
    r = env.rest(env.tenant("plain"), "GET", "/v1/admin/hosts")
    check(r.status == 403, "a tenant may not list hosts", r)
    r = env.rest(env.admin, "GET", "/v1/admin/hosts/h-00000000000000000")
    check(r.status == 400 and r.error_code == "InvalidHostID.NotFound", "unknown host", r)
    real = env.rest(env.admin, "POST", "/v1/admin/hosts", {"name": "real-node-1"})
    check(real.status == 201 and real.json["node_token"].startswith(real.json["id"] + ":"),
          "a real host gets a node token", real)
    env.rest(env.admin, "PATCH", f"/v1/admin/hosts/{h['id']}", {"state": "disabled"})
    env.rest(env.admin, "PATCH", f"/v1/admin/hosts/{real.json['id']}", {"state": "disabled"})


@tap.test
def node_api_checks_the_token(env):
    r = env.rest(env.admin, "POST", "/v1/admin/hosts", {"name": "real-node-2"})
    token = r.json["node_token"]
    env.rest(env.admin, "PATCH", f"/v1/admin/hosts/{r.json['id']}", {"state": "disabled"})
    status, _, body = env.http("POST", "/internal/v1/heartbeat", b'{"capacity": {"vcpus": 8}}',
                               headers={"Authorization": f"Bearer {token}"})
    check(status == 200, "a heartbeat with the node token", status, body)
    status, _, _ = env.http("POST", "/internal/v1/heartbeat", b"{}",
                            headers={"Authorization": f"Bearer {token[:-1]}0"})
    check(status == 401, "a wrong token is refused", status)
    status, _, _ = env.http("GET", "/internal/v1/instances")
    check(status == 401, "no token is refused", status)
    check_eq(env.psql1(f"SELECT vcpus FROM hosts WHERE id = {sql_quote(r.json['id'])}"), "8",
             "the heartbeat's capacity is recorded")


@tap.test
def disabled_host_gets_nothing_then_evacuate(env):
    t = env.tenant("evac")
    ec2 = env.ec2(t)
    a = host(env, "evac-a")
    b = host(env, "evac-b")
    env.rest(env.admin, "PATCH", f"/v1/admin/hosts/{b['id']}", {"state": "disabled"})
    r = ec2.run_instances(ImageId=env.image(), InstanceType="t3.small", MinCount=2, MaxCount=2)
    ids = [i["InstanceId"] for i in r["Instances"]]
    env.wait_settled(ec2, ids)
    hosts = {env.host_of(i) for i in ids}
    check_eq(hosts, {a["id"]}, "with b disabled, both instances land on a")
    # a fails: the operator disables it and evacuates; b comes back.
    env.rest(env.admin, "PATCH", f"/v1/admin/hosts/{a['id']}", {"state": "disabled"})
    env.rest(env.admin, "PATCH", f"/v1/admin/hosts/{b['id']}", {"state": "up"})
    r = env.rest(env.admin, "DELETE", f"/v1/admin/hosts/{a['id']}")
    check(r.status == 409 or r.error_code == "IncorrectState",
          "a host with live instances cannot be deleted", r)
    r = env.rest(env.admin, "POST", f"/v1/admin/hosts/{a['id']}/evacuate")
    check(r.status == 200 and sorted(r.json["instances"]) == sorted(ids), "evacuate", r)
    wait(lambda: {env.host_of(i) for i in ids} == {b["id"]} and all(
        env.instance_row(i, "state")[0] == "running" for i in ids),
        "evacuated instances running on b")
    usage = env.psql(f"SELECT id, used_vcpus, instance_count FROM hosts WHERE id IN "
                     f"({sql_quote(a['id'])}, {sql_quote(b['id'])}) ORDER BY name")
    check_eq([(u[1], u[2]) for u in usage], [("0", "0"), ("4", "2")],
             "claims moved from a to b (2 x t3.small)")
    r = env.rest(env.admin, "DELETE", f"/v1/admin/hosts/{a['id']}")
    check(r.status == 204, "an empty host can be deleted", r)
    ec2.terminate_instances(InstanceIds=ids)


@tap.test
def silent_host_goes_down_and_its_instances_are_marked(env):
    t = env.tenant("down")
    ec2 = env.ec2(t)
    r = env.rest(env.admin, "POST", "/v1/admin/hosts", {"name": "real-node-3", "zone": "nubo-1c"})
    hid, token = r.json["id"], r.json["node_token"]
    status, _, _ = env.http("POST", "/internal/v1/heartbeat",
                            b'{"capacity": {"vcpus": 4, "memory_mib": 8192, "disk_gib": 100}}',
                            headers={"Authorization": f"Bearer {token}"})
    check(status == 200, "heartbeat", status)
    # An instance placed there (as if its agent had booted it), then the heartbeats stop.
    iid = ec2.run_instances(ImageId=env.image(), InstanceType="t3.nano", MinCount=1, MaxCount=1,
                            Placement={"AvailabilityZone": "nubo-1c"})["Instances"][0]["InstanceId"]
    wait(lambda: env.host_of(iid) == hid, "placed on the real host")
    env.psql(f"UPDATE instances SET state = 'running', pending_op = NULL "
             f"WHERE id = {sql_quote(iid)}")
    env.psql(f"UPDATE hosts SET last_heartbeat = now() - interval '1 hour' "
             f"WHERE id = {sql_quote(hid)}")
    wait(lambda: env.psql1(f"SELECT state FROM hosts WHERE id = {sql_quote(hid)}") == "down",
         "the silent host is marked down")
    wait(lambda: env.psql1(f"SELECT host_down FROM instances WHERE id = {sql_quote(iid)}") == "t",
         "its instance is marked")
    # A heartbeat brings it back.
    env.http("POST", "/internal/v1/heartbeat", b"{}", headers={"Authorization": f"Bearer {token}"})
    check_eq(env.psql1(f"SELECT state FROM hosts WHERE id = {sql_quote(hid)}"), "up",
             "a heartbeat brings the host back up")
    env.rest(env.admin, "PATCH", f"/v1/admin/hosts/{hid}", {"state": "disabled"})


if __name__ == "__main__":
    tap.main()
