"""End-to-end: the gateway across a PostgreSQL crash, and requests no API route takes.

1. PostgreSQL is killed (SIGKILL of the postmaster) under a running gateway: requests get a
   clean 503 Unavailable (never a crash, never a success that was not logged); PostgreSQL
   starts again and the same gateway process serves and logs requests, without a restart.
2. A path no route serves gets a JSON 404 and "PUT /" a 405 with Allow, both in the request log.
3. A signature scoped to another region is SignatureDoesNotMatch, and logged.
4. A parameter the action does not know is UnknownParameter, refused before the action runs.
5. A body over the gateway's limit is 413, and logged too.
6. The tags DescribeInstances shows (a copy kept by a trigger) follow every tag change.
Prints TAP. Run: /usr/bin/python3 tests/e2e/test_resilience.py"""

import sys

sys.dont_write_bytecode = True

import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

import nubo_env  # noqa: E402
from nubo_env import check, check_eq  # noqa: E402

tap = nubo_env.Tap(__file__)


def postmaster_pid(env):
    with open(os.path.join(env.pg_dir, "postmaster.pid")) as f:
        return int(f.readline())


def start_pg(env):
    opts = f"-k {env.pg_dir} -h 127.0.0.1 -p {env.pg_port} -c fsync=off"
    env._run(env._as_pg + [str(env.pg_bin / "pg_ctl"), "-w", "-t", "30", "-D", str(env.pg_dir),
                           "-l", str(env.pg_dir / "postgresql.log"), "-o", opts, "start"],
             timeout=60)


def wait_gone(pid, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"postmaster {pid} still alive after SIGKILL")


@tap.test(timeout=120)
def pool_recovers_after_postgresql_restart(env):
    creds = env.tenant("resilient")
    ok = env.ec2_raw(creds, {"Action": "DescribeAvailabilityZones"})
    check_eq(ok.status, 200, "DescribeAvailabilityZones before the crash")

    pid = postmaster_pid(env)
    os.kill(pid, signal.SIGKILL)
    wait_gone(pid)
    # The backends die with their postmaster; wait until the port is closed.
    time.sleep(0.5)
    t0 = time.monotonic()
    down = env.ec2_raw(creds, {"Action": "DescribeAvailabilityZones"}, timeout=30)
    took = time.monotonic() - t0
    check(down.status == 503, f"with PostgreSQL down: expected 503, got {down.status}", down)
    check(down.error_code == "Unavailable", "error code while PostgreSQL is down", down)
    check(took < 15, f"the answer took {took:.1f} s: the gateway must not hang on a dead server")
    check(env.gw_proc.poll() is None, "the gateway died when PostgreSQL did")

    # Cached keys keep authenticating; the request log cannot commit: still 503, never 200.
    also_down = env.ec2_raw(creds, {"Action": "DescribeRegions"}, timeout=30)
    check(also_down.status == 503, "DescribeRegions with the log down", also_down)

    start_pg(env)
    deadline = time.monotonic() + 30
    while True:
        up = env.ec2_raw(creds, {"Action": "DescribeAvailabilityZones"}, timeout=30)
        if up.status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    check_eq(up.status, 200, "DescribeAvailabilityZones after PostgreSQL came back")
    check("nubo-1a" in up.body, "the zone is listed again", up)
    row = env.reqlog_row(up.request_id)
    check(row is not None, "the request after the restart is in the request log")
    check(env.gw_proc.poll() is None, "the same gateway process still runs")
    # Every connection of the pool recovers, not just one: a burst of requests all succeed.
    statuses = [env.ec2_raw(creds, {"Action": "DescribeInstances"}).status for _ in range(24)]
    check(all(s == 200 for s in statuses), f"statuses after the restart: {statuses}")


@tap.test
def unrouted_requests_are_answered_and_logged(env):
    status, headers, text = env.http("GET", "/no/such/thing")
    check_eq(status, 404, "GET /no/such/thing")
    doc = json.loads(text)
    check_eq(doc["error"]["code"], "NotFound", "error code")
    rid = {k.lower(): v for k, v in headers.items()}.get("x-amzn-requestid")
    row = env.reqlog_row(rid)
    check(row is not None, "the 404 is in the request log")
    check_eq(str(row["http_status"]), "404", "logged status")
    check_eq(row["action"], "GET /no/such/thing", "logged action")

    status, headers, text = env.http("PUT", "/", body=b"x")
    check_eq(status, 405, "PUT /")
    h = {k.lower(): v for k, v in headers.items()}
    check_eq(h.get("allow"), "GET, POST", "Allow header")
    check(env.reqlog_row(h.get("x-amzn-requestid")) is not None, "the 405 is in the request log")


@tap.test
def signature_for_another_region_is_refused(env):
    creds = env.tenant("regional")
    nubo_env_region = nubo_env.REGION
    try:
        nubo_env.REGION = "elsewhere-9"
        r = env.ec2_raw(creds, {"Action": "DescribeRegions"})
    finally:
        nubo_env.REGION = nubo_env_region
    check_eq(r.status, 403, "status for a signature scoped to another region")
    check_eq(r.error_code, "SignatureDoesNotMatch", "error code")
    check("nubo-1" in r.body, "the message names the gateway's region", r)
    row = env.reqlog_row(r.request_id)
    check(row is not None and row["error_code"] == "SignatureDoesNotMatch",
          "the refusal is in the request log")
    fine = env.ec2_raw(creds, {"Action": "DescribeRegions"})
    check_eq(fine.status, 200, "the same key with the right region")


@tap.test
def unknown_parameter_is_refused_before_the_action_runs(env):
    creds = env.tenant("strict")
    image = env.image()
    before = env.psql1("SELECT count(*) FROM instances i JOIN tenants t ON t.id = i.tenant_id "
                       "WHERE t.name = 'strict'")
    r = env.ec2_raw(creds, {"Action": "RunInstances", "ImageId": image, "MinCount": "1",
                            "MaxCount": "1",
                            "ElasticInferenceAccelerator.1.Type": "eia1.medium"})
    check_eq(r.status, 400, "status")
    check_eq(r.error_code, "UnknownParameter", "error code")
    check("ElasticInferenceAccelerator.1.Type" in r.body, "the message names the parameter", r)
    after = env.psql1("SELECT count(*) FROM instances i JOIN tenants t ON t.id = i.tenant_id "
                      "WHERE t.name = 'strict'")
    check_eq(after, before, "instances of the tenant (nothing was launched)")
    ok = env.ec2_raw(creds, {"Action": "RunInstances", "ImageId": image, "MinCount": "1",
                             "MaxCount": "1", "TagSpecification.1.ResourceType": "instance",
                             "TagSpecification.1.Tag.1.Key": "Name",
                             "TagSpecification.1.Tag.1.Value": "strict"})
    check_eq(ok.status, 200, "the same launch without the unknown parameter")


@tap.test
def oversized_body_is_refused_and_logged(env):
    body = b"Action=DescribeRegions&Pad=" + b"x" * (2 << 20)
    status, headers, text = env.http("POST", "/", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded"}, timeout=30)
    check_eq(status, 413, "status for a 2 MiB body")
    check_eq(json.loads(text)["error"]["code"], "RequestEntityTooLarge", "error code")
    row = env.reqlog_row(headers.get("x-amzn-requestid"))
    check(row is not None, "the refusal is in the request log")
    check_eq(row["http_status"], 413, "logged status")
    check_eq(env.ec2_raw(env.tenant("resilient"), {"Action": "DescribeRegions"}).status, 200,
             "the gateway serves the next request")


@tap.test
def instance_tags_follow_tag_changes(env):
    ec2 = env.ec2(env.tenant("tagger"))
    iid = ec2.run_instances(ImageId=env.image(), MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "a"}]}])[
        "Instances"][0]["InstanceId"]

    def shown():
        inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        return {t["Key"]: t["Value"] for t in inst.get("Tags", [])}

    def stored():
        tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [iid]}])["Tags"]
        return {t["Key"]: t["Value"] for t in tags}

    check_eq(shown(), {"Name": "a"}, "tags at launch")
    ec2.create_tags(Resources=[iid], Tags=[{"Key": "env", "Value": "x"},
                                           {"Key": "Name", "Value": "b"}])
    check_eq(shown(), {"Name": "b", "env": "x"}, "after CreateTags (one new, one overwritten)")
    check_eq(shown(), stored(), "DescribeInstances and DescribeTags agree")
    ec2.delete_tags(Resources=[iid], Tags=[{"Key": "Name"}])
    check_eq(shown(), {"env": "x"}, "after DeleteTags Name")
    ec2.delete_tags(Resources=[iid])
    check_eq(shown(), {}, "after DeleteTags without tags (all removed)")
    check_eq(stored(), {}, "DescribeTags after removing all")


if __name__ == "__main__":
    tap.main()
