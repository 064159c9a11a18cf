"""End-to-end: boto3 (Debian's, 1.26) against a real nubo-gateway: the core EC2 flows,
paginators, DryRun, ClientToken idempotency, and the failures - each checked for its EC2 error
code, its HTTP status and its row in request_log. Prints TAP.
Run: /usr/bin/python3 tests/e2e/test_boto3.py"""

import sys

sys.dont_write_bytecode = True

import datetime  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import nubo_env  # noqa: E402
from nubo_env import SkipTest, TestFailure, check, check_eq, client_error, utcnow  # noqa: E402

tap = nubo_env.Tap(__file__)
S = {}


def tenant_a(env):
    return env.tenant("boto-a")


def instances_of(out):
    return [i for r in out.get("Reservations", []) for i in r.get("Instances", [])]


def tags_of(obj):
    return {t["Key"]: t["Value"] for t in obj.get("Tags", [])}


def need(key):
    if key not in S:
        raise TestFailure(f"needs '{key}' from an earlier test, which failed")
    return S[key]


def expect_logged(env, request_id, code, status, access_key_id="any", tenant_id="any",
                  action=None):
    """The request 'request_id' has its request_log row, with 'code' and 'status'."""
    check(request_id, f"no request id in the {code} response (x-amzn-RequestId)")
    row = env.reqlog_row(request_id)
    check(row is not None, f"request {request_id} ({code}) is not in request_log")
    check_eq((row["error_code"], row["http_status"]), (code, status),
             f"request_log (error_code, http_status) of {request_id}")
    if access_key_id != "any":
        check_eq(row["access_key_id"], access_key_id, "request_log.access_key_id")
    if tenant_id != "any":
        check_eq(row["tenant_id"], tenant_id, "request_log.tenant_id")
    if action:
        check_eq(row["action"], action, "request_log.action")
    check_eq(row["api"], "ec2", "request_log.api")
    return row


def expect_error(env, fn, code, status, **log):
    """Calls boto3 'fn' (a functools-less lambda), which must fail with 'code'/'status' and be
    logged so."""
    got_code, got_status, rid, resp = client_error(fn)
    check_eq((got_code, got_status), (code, status), f"error (code, HTTP status); response "
             f"{resp}")
    meta = resp["ResponseMetadata"]
    body_rid = meta.get("RequestId")
    if body_rid and meta.get("HTTPHeaders", {}).get("x-amzn-requestid"):
        check_eq(body_rid, meta["HTTPHeaders"]["x-amzn-requestid"],
                 "RequestID in the error body vs x-amzn-RequestId header")
    expect_logged(env, rid, code, status, **log)
    return resp


def expect_raw_error(env, resp, code, status, **log):
    check_eq((resp.error_code, resp.status), (code, status), f"error (code, HTTP status) of\n"
             f"{resp}")
    expect_logged(env, resp.request_id, code, status, **log)


# --- core flows ------------------------------------------------------------------------------


@tap.test
def test_catalogue(env):
    ec2 = env.ec2(tenant_a(env))
    r = ec2.describe_regions()
    check_eq([x["RegionName"] for x in r["Regions"]], ["nubo-1"], "regions")
    check_eq(r["ResponseMetadata"]["HTTPStatusCode"], 200, "status")
    row = expect_logged(env, r["ResponseMetadata"]["RequestId"], None, 200,
                        access_key_id=tenant_a(env).key_id, tenant_id=tenant_a(env).tenant_id,
                        action="DescribeRegions")
    check('"Action": "DescribeRegions"' in row["params"] or '"Action":"DescribeRegions"'
          in row["params"], "params of the logged DescribeRegions", row)
    z = ec2.describe_availability_zones(ZoneNames=["nubo-1a"])
    check_eq([(x["ZoneName"], x["State"]) for x in z["AvailabilityZones"]],
             [("nubo-1a", "available")], "zones")
    t = ec2.describe_instance_types(InstanceTypes=["t3.small"])
    check_eq([(x["InstanceType"], x["VCpuInfo"]["DefaultVCpus"], x["MemoryInfo"]["SizeInMiB"])
              for x in t["InstanceTypes"]], [("t3.small", 2, 2048)], "t3.small")
    t = ec2.describe_instance_types(Filters=[{"Name": "memory-info.size-in-mib",
                                              "Values": ["16384"]}])
    check_eq(sorted(x["InstanceType"] for x in t["InstanceTypes"]), ["m5.xlarge", "r5.large"],
             "types with 16384 MiB")
    pages = list(ec2.get_paginator("describe_instance_types").paginate(
        PaginationConfig={"PageSize": 5}))
    names = [x["InstanceType"] for p in pages for x in p["InstanceTypes"]]
    check(len(pages) >= 2 and all(len(p["InstanceTypes"]) <= 5 for p in pages),
          "describe_instance_types pages of 5", [len(p["InstanceTypes"]) for p in pages])
    check_eq(len(names), len(set(names)), "duplicate instance types across pages")
    check("t3.micro" in names and "m5d.large" in names, "types across pages", names)
    expect_error(env, lambda: ec2.describe_availability_zones(ZoneNames=["nubo-9z"]),
                 "InvalidParameterValue", 400)


@tap.test
def test_key_pairs(env):
    ec2 = env.ec2(tenant_a(env))
    ed = ec2.create_key_pair(KeyName="boto-ed", KeyType="ed25519", TagSpecifications=[
        {"ResourceType": "key-pair", "Tags": [{"Key": "purpose", "Value": "e2e"}]}])
    check(ed["KeyMaterial"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----"),
          "ed25519 KeyMaterial", ed["KeyMaterial"][:100])
    check_eq(tags_of(ed), {"purpose": "e2e"}, "tags of the created key pair")
    rsa = ec2.create_key_pair(KeyName="boto-rsa")  # rsa by default, as EC2
    check(rsa["KeyMaterial"].startswith("-----BEGIN RSA PRIVATE KEY-----"), "RSA KeyMaterial",
          rsa["KeyMaterial"][:100])
    d = ec2.describe_key_pairs(IncludePublicKey=True)
    by_name = {k["KeyName"]: k for k in d["KeyPairs"]}
    check_eq(sorted(by_name), ["boto-ed", "boto-rsa"], "key pairs")
    check_eq((by_name["boto-ed"]["KeyPairId"], by_name["boto-ed"]["KeyType"]),
             (ed["KeyPairId"], "ed25519"), "ed25519 key pair")
    check_eq((by_name["boto-rsa"]["KeyPairId"], by_name["boto-rsa"]["KeyType"]),
             (rsa["KeyPairId"], "rsa"), "rsa key pair")
    check(isinstance(by_name["boto-ed"].get("CreateTime"), datetime.datetime),
          "CreateTime is not a timestamp", by_name["boto-ed"])
    check_eq(tags_of(by_name["boto-ed"]), {"purpose": "e2e"}, "tags in describe_key_pairs")
    d = ec2.describe_key_pairs(Filters=[{"Name": "tag:purpose", "Values": ["e2e"]}])
    check_eq([k["KeyName"] for k in d["KeyPairs"]], ["boto-ed"], "tag:purpose filter")

    keygen = shutil.which("ssh-keygen")
    if keygen:
        path = env.tmp / "boto-import"
        subprocess.run([keygen, "-t", "ed25519", "-N", "", "-q", "-f", str(path)], check=True,
                       timeout=30)
        pub = Path(f"{path}.pub").read_bytes()
        imp = ec2.import_key_pair(KeyName="boto-imported", PublicKeyMaterial=pub)
        d = ec2.describe_key_pairs(KeyPairIds=[imp["KeyPairId"]], IncludePublicKey=True)
        check_eq(d["KeyPairs"][0]["PublicKey"].split()[:2], pub.decode().split()[:2],
                 "imported public key")
        ec2.delete_key_pair(KeyPairId=imp["KeyPairId"])
    expect_error(env, lambda: ec2.import_key_pair(KeyName="boto-junk",
                                                  PublicKeyMaterial=b"ssh-rsa !!!"),
                 "InvalidKey.Format", 400)
    expect_error(env, lambda: ec2.create_key_pair(KeyName="boto-ed"),
                 "InvalidKeyPair.Duplicate", 400)
    ec2.delete_key_pair(KeyName="boto-rsa")
    expect_error(env, lambda: ec2.describe_key_pairs(KeyNames=["boto-rsa"]),
                 "InvalidKeyPair.NotFound", 400)
    expect_error(env, lambda: ec2.delete_key_pair(KeyPairId="key-0123456789abcdef0"),
                 "InvalidKeyPair.NotFound", 400)
    S["key"] = "boto-ed"
    if not keygen:
        raise SkipTest("no ssh-keygen: ImportKeyPair of a real key not tried")


@tap.test
def test_run_describe_tag_terminate(env):
    a = tenant_a(env)
    ec2 = env.ec2(a)
    image = env.image()
    r = ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2, InstanceType="t3.small",
                          KeyName=S.get("key"), TagSpecifications=[
                              {"ResourceType": "instance",
                               "Tags": [{"Key": "Name", "Value": "boto-web"}]}])
    ids = [i["InstanceId"] for i in r["Instances"]]
    check_eq(len(set(ids)), 2, "instances launched")
    check_eq(r["OwnerId"], a.tenant_id, "OwnerId")
    for i in r["Instances"]:
        check_eq((i["ImageId"], i["InstanceType"], i["State"]["Name"], i.get("KeyName")),
                 (image, "t3.small", "pending", S.get("key")), "launched instance")
        check(isinstance(i["LaunchTime"], datetime.datetime), "LaunchTime", i)
    S["a_ids"] = ids

    d = ec2.describe_instances(InstanceIds=ids)
    check_eq(sorted(i["InstanceId"] for i in instances_of(d)), sorted(ids), "by id")
    d = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["boto-web"]},
                                        {"Name": "instance-type", "Values": ["t3.small"]}])
    check_eq(sorted(i["InstanceId"] for i in instances_of(d)), sorted(ids), "by filters")

    ec2.create_tags(Resources=ids, Tags=[{"Key": "stage", "Value": "blue"}])
    t = ec2.describe_tags(Filters=[{"Name": "key", "Values": ["stage"]}])
    check_eq(sorted((x["ResourceId"], x["ResourceType"], x["Value"]) for x in t["Tags"]),
             sorted((i, "instance", "blue") for i in ids), "describe_tags key=stage")
    pages = list(ec2.get_paginator("describe_tags").paginate(PaginationConfig={"PageSize": 5}))
    rows = [(x["ResourceId"], x["Key"]) for p in pages for x in p["Tags"]]
    check_eq(len(rows), len(set(rows)), "duplicate tags across describe_tags pages")
    check(len(rows) >= 4, "tags across describe_tags pages", rows)
    ec2.delete_tags(Resources=[ids[0]], Tags=[{"Key": "stage"}])
    d = ec2.describe_instances(Filters=[{"Name": "tag:stage", "Values": ["blue"]}])
    check_eq([i["InstanceId"] for i in instances_of(d)], [ids[1]], "tag:stage after delete")
    d = ec2.describe_instances(Filters=[{"Name": "tag-key", "Values": ["stage"]}])
    check_eq([i["InstanceId"] for i in instances_of(d)], [ids[1]], "tag-key after delete")

    t = ec2.terminate_instances(InstanceIds=[ids[1]])
    check_eq([(c["InstanceId"], c["CurrentState"]["Name"]) for c in t["TerminatingInstances"]],
             [(ids[1], "terminated")], "terminate a pending instance")
    s = ec2.describe_instance_status(InstanceIds=ids, IncludeAllInstances=True)
    check_eq({x["InstanceId"]: x["InstanceState"]["Name"] for x in s["InstanceStatuses"]},
             {ids[0]: "pending", ids[1]: "terminated"}, "describe_instance_status")
    expect_error(env, lambda: ec2.stop_instances(InstanceIds=[ids[0]]),
                 "IncorrectInstanceState", 400, access_key_id=a.key_id, tenant_id=a.tenant_id,
                 action="StopInstances")
    expect_error(env, lambda: ec2.run_instances(ImageId="ami-0123456789abcdef0", MinCount=1,
                                                MaxCount=1),
                 "InvalidAMIID.NotFound", 400)
    expect_error(env, lambda: ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                                                KeyName="no-such-key"),
                 "InvalidKeyPair.NotFound", 400)


@tap.test
def test_paginator_describe_instances(env):
    pager = env.tenant("boto-pager")
    ec2 = env.ec2(pager)
    image = env.image()
    ids = []
    for n in (4, 8):
        r = ec2.run_instances(ImageId=image, MinCount=n, MaxCount=n)
        ids += [i["InstanceId"] for i in r["Instances"]]
    check_eq(len(set(ids)), 12, "instances launched")
    pag = ec2.get_paginator("describe_instances")
    pages = list(pag.paginate(PaginationConfig={"PageSize": 5}))
    sizes = [len(instances_of(p)) for p in pages]
    check_eq(sizes, [5, 5, 2], "instances per page (PageSize 5)")
    got = [i["InstanceId"] for p in pages for i in instances_of(p)]
    check_eq(len(got), len(set(got)), "duplicates across pages")
    check_eq(sorted(got), sorted(ids), "instances across pages")

    # MaxItems stops early with a resumable token; StartingToken resumes. (botocore counts
    # Reservations, the result key, not instances: pages hold 2, 1, 1 reservation entries.)
    first = pag.paginate(PaginationConfig={"PageSize": 5, "MaxItems": 3}).build_full_result()
    token = first.get("NextToken")
    check(token, "no NextToken after MaxItems=3 reservation entries", first)
    rest = pag.paginate(PaginationConfig={"PageSize": 5, "StartingToken": token}
                        ).build_full_result()
    a = [i["InstanceId"] for i in instances_of(first)]
    b = [i["InstanceId"] for i in instances_of(rest)]
    check(0 < len(a) < 12, "MaxItems did not stop early", a)
    check_eq(sorted(a + b), sorted(ids), "MaxItems + StartingToken cover every instance once")

    # With a filter, pages still add up.
    ec2.create_tags(Resources=ids[:6], Tags=[{"Key": "half", "Value": "1"}])
    pages = list(pag.paginate(Filters=[{"Name": "tag:half", "Values": ["1"]}],
                              PaginationConfig={"PageSize": 5}))
    got = [i["InstanceId"] for p in pages for i in instances_of(p)]
    check_eq(sorted(got), sorted(ids[:6]), "filtered instances across pages")

    expect_error(env, lambda: ec2.describe_instances(MaxResults=5, NextToken="garbage"),
                 "InvalidParameterValue", 400)
    # Quota: 20 instances by default; 12 are in use.
    expect_error(env, lambda: ec2.run_instances(ImageId=image, MinCount=9, MaxCount=9),
                 "InstanceLimitExceeded", 400, tenant_id=pager.tenant_id)
    r = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=50)
    check_eq(len(r["Instances"]), 8, "MaxCount beyond the quota launches what fits (EC2)")
    ids += [i["InstanceId"] for i in r["Instances"]]
    ec2.terminate_instances(InstanceIds=ids)


@tap.test
def test_dry_run(env):
    a = tenant_a(env)
    ec2 = env.ec2(a)
    before = int(env.psql1("SELECT count(*) FROM instances WHERE tenant_id = "
                           + nubo_env.sql_quote(a.tenant_id)))
    expect_error(env, lambda: ec2.run_instances(ImageId=env.image(), MinCount=1, MaxCount=1,
                                                DryRun=True),
                 "DryRunOperation", 412, access_key_id=a.key_id, tenant_id=a.tenant_id,
                 action="RunInstances")
    after = int(env.psql1("SELECT count(*) FROM instances WHERE tenant_id = "
                          + nubo_env.sql_quote(a.tenant_id)))
    check_eq(after, before, "instances after a DryRun launch")
    expect_error(env, lambda: ec2.describe_instances(DryRun=True), "DryRunOperation", 412)
    expect_error(env, lambda: ec2.create_key_pair(KeyName="dry", DryRun=True),
                 "DryRunOperation", 412)
    check_eq(ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": ["dry"]}])
             ["KeyPairs"], [], "key pairs after a DryRun create")
    ids = S.get("a_ids")
    if ids:
        expect_error(env, lambda: ec2.terminate_instances(InstanceIds=[ids[0]], DryRun=True),
                     "DryRunOperation", 412)
        d = ec2.describe_instances(InstanceIds=[ids[0]])
        check_eq(instances_of(d)[0]["State"]["Name"], "pending", "state after DryRun terminate")


@tap.test
def test_client_token_idempotency(env):
    a = tenant_a(env)
    ec2 = env.ec2(a)
    image = env.image()
    token = "e2e-token-" + secrets.token_hex(6)
    r1 = ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2, ClientToken=token)
    r2 = ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2, ClientToken=token)
    ids1 = sorted(i["InstanceId"] for i in r1["Instances"])
    ids2 = sorted(i["InstanceId"] for i in r2["Instances"])
    check_eq(len(ids1), 2, "instances of the first launch")
    check_eq(ids2, ids1, "instance ids of the retry with the same ClientToken")
    check_eq(r2["ReservationId"], r1["ReservationId"], "reservation of the retry")
    n = int(env.psql1("SELECT count(*) FROM instances WHERE client_token = "
                      + nubo_env.sql_quote(token)))
    check_eq(n, 2, "instances stored for the token")
    expect_error(env, lambda: ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2,
                                                InstanceType="t3.nano", ClientToken=token),
                 "IdempotentParameterMismatch", 400, tenant_id=a.tenant_id)
    # Another tenant may use the same token for its own launch.
    b = env.ec2(env.tenant("boto-b"))
    rb = b.run_instances(ImageId=image, MinCount=1, MaxCount=1, ClientToken=token)
    check(rb["Instances"][0]["InstanceId"] not in ids1, "tenant B got tenant A's instance "
          "back for the same ClientToken", rb)
    b.terminate_instances(InstanceIds=[rb["Instances"][0]["InstanceId"]])
    ec2.terminate_instances(InstanceIds=ids1)


# --- failures, each logged ----------------------------------------------------------------------


@tap.test
def test_wrong_secret(env):
    a = tenant_a(env)
    bad = nubo_env.Creds(a.key_id, a.secret[:-4] + "AAAA", a.tenant_id, a.name)
    if bad.secret == a.secret:
        bad.secret = a.secret[:-4] + "BBBB"
    ec2 = env.ec2(bad)
    expect_error(env, lambda: ec2.describe_instances(), "SignatureDoesNotMatch", 403,
                 access_key_id=a.key_id, tenant_id=None, action="DescribeInstances")


@tap.test
def test_tampered_body(env):
    a = tenant_a(env)
    ec2 = env.ec2(a)
    done = []

    def tamper(request, **kwargs):
        body = request.body
        if isinstance(body, str):
            body = body.encode()
        check(b"MaxResults=5" in body, "unexpected body", body)
        request.body = body.replace(b"MaxResults=5", b"MaxResults=6")  # same length
        done.append(True)

    ec2.meta.events.register("before-send.ec2.DescribeInstances", tamper)
    expect_error(env, lambda: ec2.describe_instances(MaxResults=5), "SignatureDoesNotMatch",
                 403, access_key_id=a.key_id, tenant_id=None)
    check(done, "the before-send hook did not run")
    # The same through a raw request: a signed body with one parameter added afterwards.
    def add_param(headers, body):
        body = body + b"&DryRun=true"
        headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        headers["Content-Length"] = str(len(body))
        return headers, body

    r = env.ec2_raw(a, {"Action": "DescribeRegions"}, tamper=add_param)
    expect_raw_error(env, r, "SignatureDoesNotMatch", 403, access_key_id=a.key_id)


@tap.test
def test_expired_request(env):
    a = tenant_a(env)
    r = env.ec2_raw(a, {"Action": "DescribeRegions"},
                    when=utcnow() - datetime.timedelta(minutes=20))
    expect_raw_error(env, r, "RequestExpired", 400, access_key_id=a.key_id, tenant_id=None,
                     action="DescribeRegions")
    # Sanity: the same request signed now passes, and so does one 14 minutes old (EC2 allows
    # 15 minutes of skew).
    r = env.ec2_raw(a, {"Action": "DescribeRegions"}, when=utcnow())
    check_eq(r.status, 200, f"freshly signed request\n{r}")
    r = env.ec2_raw(a, {"Action": "DescribeRegions"},
                    when=utcnow() - datetime.timedelta(minutes=14))
    check_eq(r.status, 200, f"request signed 14 minutes ago\n{r}")
    r = env.ec2_raw(a, {"Action": "DescribeRegions"},
                    when=utcnow() + datetime.timedelta(minutes=20))
    check(r.status in (400, 403) and r.error_code in ("RequestExpired", "SignatureDoesNotMatch"),
          f"a request signed 20 minutes in the future was not refused\n{r}")
    expect_logged(env, r.request_id, r.error_code, r.status)


@tap.test
def test_missing_authentication(env):
    r = env.ec2_raw(None, {"Action": "DescribeRegions"})
    expect_raw_error(env, r, "AuthFailure", 401, access_key_id=None, tenant_id=None,
                     action="DescribeRegions")
    # A well-formed but unknown access key.
    ghost = nubo_env.Creds("NKIAAAAAAAAAAAAAAAAA", "x" * 40, None, "ghost")
    r = env.ec2_raw(ghost, {"Action": "DescribeRegions"})
    expect_raw_error(env, r, "AuthFailure", 401, access_key_id=ghost.key_id, tenant_id=None)


@tap.test
def test_unknown_action(env):
    a = tenant_a(env)
    r = env.ec2_raw(a, {"Action": "LaunchRockets"})
    expect_raw_error(env, r, "InvalidAction", 400, access_key_id=a.key_id,
                     tenant_id=a.tenant_id, action="LaunchRockets")
    r = env.ec2_raw(a, {"Version": "2016-11-15"})
    expect_raw_error(env, r, "MissingAction", 400, access_key_id=a.key_id)


@tap.test
def test_malformed_parameter(env):
    a = tenant_a(env)
    r = env.ec2_raw(a, {"Action": "RunInstances", "ImageId": env.image(), "MinCount": "abc",
                        "MaxCount": "1"})
    expect_raw_error(env, r, "InvalidParameterValue", 400, access_key_id=a.key_id,
                     tenant_id=a.tenant_id, action="RunInstances")
    check("MinCount" in r.body, f"the error message does not name MinCount\n{r}")
    r = env.ec2_raw(a, {"Action": "DescribeInstances", "MaxResults": "3"})
    expect_raw_error(env, r, "InvalidParameterValue", 400, access_key_id=a.key_id)
    r = env.ec2_raw(a, {"Action": "RunInstances", "ImageId": env.image(), "MaxCount": "1"})
    expect_raw_error(env, r, "MissingParameter", 400, access_key_id=a.key_id)


@tap.test
def test_cross_tenant(env):
    a, b = tenant_a(env), env.tenant("boto-b")
    ea, eb = env.ec2(a), env.ec2(b)
    r = ea.run_instances(ImageId=env.image(), MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "a-private"}]}])
    iid = r["Instances"][0]["InstanceId"]
    expect_error(env, lambda: eb.describe_instances(InstanceIds=[iid]),
                 "InvalidInstanceID.NotFound", 400, access_key_id=b.key_id,
                 tenant_id=b.tenant_id, action="DescribeInstances")
    expect_error(env, lambda: eb.terminate_instances(InstanceIds=[iid]),
                 "InvalidInstanceID.NotFound", 400, tenant_id=b.tenant_id,
                 action="TerminateInstances")
    expect_error(env, lambda: eb.stop_instances(InstanceIds=[iid]),
                 "InvalidInstanceID.NotFound", 400, tenant_id=b.tenant_id)
    expect_error(env, lambda: eb.create_tags(Resources=[iid], Tags=[{"Key": "Name",
                                                                     "Value": "stolen"}]),
                 "InvalidInstanceID.NotFound", 400, tenant_id=b.tenant_id)
    expect_error(env, lambda: eb.delete_tags(Resources=[iid]),
                 "InvalidInstanceID.NotFound", 400, tenant_id=b.tenant_id)
    seen = [i["InstanceId"] for i in instances_of(eb.describe_instances())]
    check(iid not in seen, "tenant B lists tenant A's instance", seen)
    seen = [t["ResourceId"] for t in eb.describe_tags()["Tags"]]
    check(iid not in seen, "tenant B sees tenant A's tags", seen)
    d = instances_of(ea.describe_instances(InstanceIds=[iid]))
    check_eq((d[0]["State"]["Name"], tags_of(d[0])), ("pending", {"Name": "a-private"}),
             "tenant A's instance after tenant B's attempts")
    ea.terminate_instances(InstanceIds=[iid])


@tap.test
def test_disabled_key(env):
    c = env.tenant("boto-disabled")
    ec2 = env.ec2(c)
    ec2.describe_regions()  # the key is now in the gateway's cache
    env.psql("UPDATE access_keys SET enabled = false WHERE id = " + nubo_env.sql_quote(c.key_id))
    time.sleep(5.5)  # the gateway caches keys for 5 s
    expect_error(env, lambda: ec2.describe_regions(), "OptInRequired", 403,
                 access_key_id=c.key_id, tenant_id=None, action="DescribeRegions")
    env.psql("UPDATE access_keys SET enabled = true WHERE id = " + nubo_env.sql_quote(c.key_id))


if __name__ == "__main__":
    tap.main()
