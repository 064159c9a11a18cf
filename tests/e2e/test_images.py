"""End-to-end: the EC2 image actions that move no bytes, with boto3 (Debian's) and the REST API,
against a real nubo-gateway: DescribeImages (Owner, ExecutableBy, filters, stateReason, size),
launch permissions (ModifyImageAttribute in both forms, DescribeImageAttribute,
ResetImageAttribute) and what they allow RunInstances, DeregisterImage, CopyImage (an
operator image known by its location, and one in the image store, which queues a copy task),
and the errors, each checked for its EC2 error code, HTTP status and request_log row.
Prints TAP. Run: /usr/bin/python3 tests/e2e/test_images.py"""

import sys

sys.dont_write_bytecode = True

import re  # noqa: E402

import nubo_env  # noqa: E402
from nubo_env import TestFailure, check, check_eq, client_error, sql_quote  # noqa: E402

tap = nubo_env.Tap(__file__)
S = {}  # state shared by the tests, in order

SHA = "ab" * 32


def need(key):
    if key not in S:
        raise TestFailure(f"needs '{key}' from an earlier test, which failed")
    return S[key]


def tenant_a(env):
    return env.tenant("img-a")


def tenant_b(env):
    return env.tenant("img-b")


def expect_logged(env, request_id, code, status, action=None, tenant_id=None, api="ec2"):
    """The request 'request_id' has its request_log row, with 'code' and 'status'."""
    check(request_id, f"no request id in the {code} response")
    row = env.reqlog_row(request_id)
    check(row is not None, f"request {request_id} ({code}) is not in request_log")
    check_eq((row["api"], row["error_code"], row["http_status"]), (api, code, status),
             f"request_log (api, error_code, http_status) of {request_id}")
    if action:
        check_eq(row["action"], action, "request_log.action")
    if tenant_id:
        check_eq(row["tenant_id"], tenant_id, "request_log.tenant_id")
    return row


def logged_ok(env, resp, action, creds):
    """A boto3 answer 'resp' of 'action' is in request_log as a success of 'creds'."""
    expect_logged(env, resp["ResponseMetadata"]["RequestId"], None, 200, action=action,
                  tenant_id=creds.tenant_id)
    return resp


def expect_error(env, fn, code, status, action=None):
    """boto3 call 'fn' fails with 'code' and HTTP 'status', and is logged so."""
    got_code, got_status, rid, resp = client_error(fn)
    check_eq((got_code, got_status), (code, status), f"error (code, HTTP status); response {resp}")
    expect_logged(env, rid, code, status, action=action)
    return resp


def rest_ok(r, status=200):
    check_eq(r.status, status, f"HTTP status of {r.method} {r.path}; response\n{r}")
    return r.json if status != 204 else {}


def rest_error(env, r, status, code):
    check_eq((r.status, r.error_code), (status, code),
             f"(HTTP status, error code) of {r.method} {r.path}; response\n{r}")
    row = env.reqlog_row(r.request_id)
    check(row is not None, f"request {r.request_id} ({code}) is not in request_log")
    check_eq((row["api"], row["http_status"], row["error_code"]), ("rest", status, code),
             f"request_log (api, http_status, error_code) of {r.request_id}")
    check_eq(row["action"], f"{r.method} {r.path.split('?')[0]}", "request_log.action")


def register(env, creds, name, **fields):
    """Registers an image through POST /v1/images; returns its JSON."""
    r = env.rest(creds, "POST", "/v1/images", body=dict({"name": name}, **fields))
    return rest_ok(r, 201)


def image_ids(resp):
    return sorted(m["ImageId"] for m in resp["Images"])


def run_one(ec2, image_id):
    return ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="t3.micro")


# --- DescribeImages ---------------------------------------------------------------------------


@tap.test
def test_register_and_describe(env):
    admin = env.admin
    img = register(env, admin, "img-base", location="file:///var/lib/nubo/images/base.raw",
                   sha256=SHA, size_bytes=3 * 1024 ** 3 + 5, disk_format="raw",
                   description="the base image")
    S["base"] = img["id"]
    ec2 = env.ec2(admin)
    d = logged_ok(env, ec2.describe_images(ImageIds=[img["id"]]), "DescribeImages", admin)
    check_eq(len(d["Images"]), 1, "images by id")
    m = d["Images"][0]
    check_eq((m["ImageId"], m["OwnerId"], m["State"], m["Public"], m["Name"], m["Description"]),
             (img["id"], admin.tenant_id, "available", False, "img-base", "the base image"),
             "the registered image")
    check_eq([(b["DeviceName"], b["Ebs"]["VolumeSize"]) for b in m["BlockDeviceMappings"]],
             [("/dev/vda", 4)], "the size of a raw image (3 GiB + 5 bytes, rounded up)")
    check("StateReason" not in m, "an available image has no StateReason", m)
    d = ec2.describe_images(Owners=["self"], Filters=[{"Name": "state",
                                                       "Values": ["available"]}])
    check(img["id"] in image_ids(d), "Owner=self, state=available", d["Images"])
    d = ec2.describe_images(Filters=[{"Name": "is-public", "Values": ["true"]}])
    check(img["id"] not in image_ids(d), "is-public=true lists a private image", d["Images"])
    d = ec2.describe_images(Filters=[{"Name": "is-public", "Values": ["false"]}])
    check(img["id"] in image_ids(d), "is-public=false", d["Images"])
    # Another tenant sees nothing of it.
    expect_error(env, lambda: env.ec2(tenant_b(env)).describe_images(ImageIds=[img["id"]]),
                 "InvalidAMIID.NotFound", 400, action="DescribeImages")


@tap.test
def test_failed_image_state_reason(env):
    a = tenant_a(env)
    img = register(env, a, "img-failed")
    env.psql("UPDATE images SET state = 'failed', state_reason = "
             "'Client.UnsupportedImageFormat: the VHD footer is corrupt' "
             f"WHERE id = {sql_quote(img['id'])}")
    m = env.ec2(a).describe_images(ImageIds=[img["id"]])["Images"][0]
    check_eq((m["State"], m.get("StateReason")),
             ("failed", {"Code": "Client.UnsupportedImageFormat",
                         "Message": "the VHD footer is corrupt"}), "a failed image")
    r = rest_ok(env.rest(a, "GET", f"/v1/images/{img['id']}"))
    check_eq((r["state"], r.get("state_reason")),
             ("failed", "Client.UnsupportedImageFormat: the VHD footer is corrupt"),
             "GET /v1/images/{id} of a failed image")
    expect_error(env, lambda: run_one(env.ec2(a), img["id"]), "InvalidAMIID.Unavailable", 400,
                 action="RunInstances")


# --- launch permissions ---------------------------------------------------------------------


@tap.test
def test_share_with_tenant(env):
    base = need("base")
    admin, a, b = env.admin, tenant_a(env), tenant_b(env)
    ec2, ec2b = env.ec2(admin), env.ec2(b)
    logged_ok(env, ec2.modify_image_attribute(ImageId=base, LaunchPermission={
        "Add": [{"UserId": b.tenant_id}]}), "ModifyImageAttribute", admin)
    d = logged_ok(env, ec2.describe_image_attribute(ImageId=base, Attribute="launchPermission"),
                  "DescribeImageAttribute", admin)
    check_eq((d["ImageId"], d["LaunchPermissions"]), (base, [{"UserId": b.tenant_id}]),
             "launchPermission after the share")
    check(base in image_ids(ec2b.describe_images(ExecutableUsers=["self"])),
          "B does not see the shared image with ExecutableBy=self")
    check(base in image_ids(ec2b.describe_images(Owners=[admin.tenant_id])),
          "B does not see the shared image with Owner=<admin>")
    check(base not in image_ids(ec2b.describe_images(ExecutableUsers=["all"])),
          "ExecutableBy=all lists a shared, not public, image")
    check(base in image_ids(ec2.describe_images(ExecutableUsers=[b.tenant_id])),
          "the owner does not see its image with ExecutableBy=<B>")
    check(base not in image_ids(ec2.describe_images(ExecutableUsers=[a.tenant_id])),
          "ExecutableBy=<A> lists an image not shared with A")
    r = logged_ok(env, run_one(ec2b, base), "RunInstances", b)
    check_eq((r["Instances"][0]["ImageId"], r["Instances"][0]["State"]["Name"]),
             (base, "pending"), "B's instance of the shared image")
    S["b_instance"] = r["Instances"][0]["InstanceId"]
    # A, with whom nothing is shared, neither sees nor launches it.
    expect_error(env, lambda: run_one(env.ec2(a), base), "InvalidAMIID.NotFound", 400,
                 action="RunInstances")
    # B may see the image but not its permissions, nor change them.
    expect_error(env, lambda: ec2b.describe_image_attribute(ImageId=base,
                                                             Attribute="launchPermission"),
                 "AuthFailure", 401, action="DescribeImageAttribute")
    expect_error(env, lambda: ec2b.modify_image_attribute(ImageId=base, LaunchPermission={
        "Add": [{"Group": "all"}]}), "AuthFailure", 401, action="ModifyImageAttribute")
    # Other attributes of an image it sees are readable.
    d = ec2b.describe_image_attribute(ImageId=base, Attribute="description")
    check_eq(d["Description"], {"Value": "the base image"}, "description seen by B")


@tap.test
def test_unshare(env):
    base = need("base")
    admin, b = env.admin, tenant_b(env)
    ec2, ec2b = env.ec2(admin), env.ec2(b)
    ec2.modify_image_attribute(ImageId=base, LaunchPermission={
        "Remove": [{"UserId": b.tenant_id}]})
    check_eq(ec2.describe_image_attribute(ImageId=base, Attribute="launchPermission")
             ["LaunchPermissions"], [], "launchPermission after the unshare")
    check(base not in image_ids(ec2b.describe_images(ExecutableUsers=["self"])),
          "B still sees the image")
    expect_error(env, lambda: run_one(ec2b, base), "InvalidAMIID.NotFound", 400,
                 action="RunInstances")
    # B's instance launched before keeps its image.
    d = ec2b.describe_instances(InstanceIds=[need("b_instance")])
    check_eq(d["Reservations"][0]["Instances"][0]["ImageId"], base, "B's earlier instance")
    # The older form: Attribute=launchPermission OperationType=add UserId.N.
    ec2.modify_image_attribute(ImageId=base, Attribute="launchPermission", OperationType="add",
                               UserIds=[b.tenant_id])
    check(base in image_ids(ec2b.describe_images(ExecutableUsers=["self"])),
          "B does not see the image shared with OperationType=add")
    ec2.modify_image_attribute(ImageId=base, Attribute="launchPermission",
                               OperationType="remove", UserIds=[b.tenant_id])
    check(base not in image_ids(ec2b.describe_images()),
          "B sees the image after OperationType=remove")


@tap.test
def test_public_and_reset(env):
    a, b = tenant_a(env), tenant_b(env)
    img = register(env, a, "img-a-public")
    S["a_img"] = img["id"]
    ec2, ec2b = env.ec2(a), env.ec2(b)
    # A member may make its own image public, as on EC2.
    ec2.modify_image_attribute(ImageId=img["id"], LaunchPermission={
        "Add": [{"Group": "all"}, {"UserId": b.tenant_id}]})
    d = ec2.describe_image_attribute(ImageId=img["id"], Attribute="launchPermission")
    check_eq(d["LaunchPermissions"], [{"Group": "all"}, {"UserId": b.tenant_id}],
             "launchPermission of a public, shared image")
    m = ec2b.describe_images(ImageIds=[img["id"]])["Images"][0]
    check_eq(m["Public"], True, "Public seen by B")
    check(img["id"] in image_ids(ec2b.describe_images(ExecutableUsers=["all"])),
          "ExecutableBy=all misses a public image")
    check(img["id"] in image_ids(ec2b.describe_images(
        Filters=[{"Name": "is-public", "Values": ["true"]}])), "is-public=true")
    run_one(ec2b, img["id"])
    logged_ok(env, ec2.reset_image_attribute(ImageId=img["id"], Attribute="launchPermission"),
              "ResetImageAttribute", a)
    check_eq(ec2.describe_image_attribute(ImageId=img["id"], Attribute="launchPermission")
             ["LaunchPermissions"], [], "launchPermission after the reset")
    check_eq(ec2.describe_images(ImageIds=[img["id"]])["Images"][0]["Public"], False,
             "Public after the reset")
    expect_error(env, lambda: ec2b.describe_images(ImageIds=[img["id"]]),
                 "InvalidAMIID.NotFound", 400)
    # UserGroup.N of the older form.
    ec2.modify_image_attribute(ImageId=img["id"], Attribute="launchPermission",
                               OperationType="add", UserGroups=["all"])
    check_eq(ec2.describe_images(ImageIds=[img["id"]])["Images"][0]["Public"], True,
             "Public after UserGroup=all")
    ec2.modify_image_attribute(ImageId=img["id"], LaunchPermission={"Remove": [{"Group": "all"}]})
    check_eq(ec2.describe_images(ImageIds=[img["id"]])["Images"][0]["Public"], False,
             "Public after Remove Group=all")


@tap.test
def test_description(env):
    a = tenant_a(env)
    img = need("a_img")
    ec2 = env.ec2(a)
    ec2.modify_image_attribute(ImageId=img, Description={"Value": "first words"})
    check_eq(ec2.describe_image_attribute(ImageId=img, Attribute="description")["Description"],
             {"Value": "first words"}, "description")
    ec2.modify_image_attribute(ImageId=img, Attribute="description", Value="second words")
    check_eq(ec2.describe_images(ImageIds=[img])["Images"][0]["Description"], "second words",
             "description set with Attribute=description Value=")
    for attr in ("kernel", "ramdisk", "blockDeviceMapping", "productCodes"):
        d = ec2.describe_image_attribute(ImageId=img, Attribute=attr)
        check_eq(d["ImageId"], img, f"DescribeImageAttribute {attr}")


# --- DeregisterImage --------------------------------------------------------------------------


@tap.test
def test_deregister(env):
    a, b = tenant_a(env), tenant_b(env)
    ec2 = env.ec2(a)
    img = register(env, a, "img-dereg")
    inst = run_one(ec2, img["id"])["Instances"][0]["InstanceId"]
    expect_error(env, lambda: env.ec2(b).deregister_image(ImageId=img["id"]),
                 "InvalidAMIID.NotFound", 400, action="DeregisterImage")
    logged_ok(env, ec2.deregister_image(ImageId=img["id"]), "DeregisterImage", a)
    row = env.psql(f"SELECT state, updated_at > created_at FROM images "
                   f"WHERE id = {sql_quote(img['id'])}")
    check_eq(row, [["deregistered", "t"]], "the image row after DeregisterImage")
    check(img["id"] not in image_ids(ec2.describe_images(Owners=["self"])),
          "a deregistered image is listed")
    expect_error(env, lambda: ec2.describe_images(ImageIds=[img["id"]]),
                 "InvalidAMIID.NotFound", 400)
    expect_error(env, lambda: run_one(ec2, img["id"]), "InvalidAMIID.NotFound", 400)
    # The instance launched from it keeps running (here: pending, no scheduler).
    d = ec2.describe_instances(InstanceIds=[inst])
    check_eq(d["Reservations"][0]["Instances"][0]["State"]["Name"], "pending",
             "the instance of a deregistered image")
    # Again: it no longer exists.
    expect_error(env, lambda: ec2.deregister_image(ImageId=img["id"]),
                 "InvalidAMIID.NotFound", 400, action="DeregisterImage")
    # Its name is free again.
    again = register(env, a, "img-dereg")
    check(again["id"] != img["id"], "the new image has a new id", again)
    # Another tenant's public image: seen, not owned.
    base = need("base")
    env.ec2(env.admin).modify_image_attribute(ImageId=base, LaunchPermission={
        "Add": [{"Group": "all"}]})
    expect_error(env, lambda: env.ec2(b).deregister_image(ImageId=base), "AuthFailure", 401,
                 action="DeregisterImage")


# --- CopyImage --------------------------------------------------------------------------------


@tap.test
def test_copy_location_image(env):
    base, b = need("base"), tenant_b(env)
    ec2b = env.ec2(b)
    # 'base' is public since test_deregister.
    r = logged_ok(env, ec2b.copy_image(SourceImageId=base, SourceRegion="nubo-1", Name="b-copy",
                                       Description="B's copy", ClientToken="copy-token-1"),
                  "CopyImage", b)
    copy = r["ImageId"]
    check(re.fullmatch(r"ami-[0-9a-f]{17}", copy), "the copy's id", r)
    m = ec2b.describe_images(ImageIds=[copy])["Images"][0]
    check_eq((m["OwnerId"], m["State"], m["Name"], m["Description"], m["Public"]),
             (b.tenant_id, "available", "b-copy", "B's copy", False), "the copy")
    row = env.psql("SELECT c.location = s.location, c.sha256 = s.sha256, "
                   "c.size_bytes = s.size_bytes, c.source_image_id, c.disk_format "
                   "FROM images c JOIN images s ON s.id = c.source_image_id "
                   f"WHERE c.id = {sql_quote(copy)}")
    check_eq(row, [["t", "t", "t", base, "raw"]], "the copy's row")
    check_eq(env.psql1(f"SELECT count(*) FROM image_tasks WHERE image_id = {sql_quote(copy)}"),
             "0", "image tasks of a location-only copy")
    run_one(ec2b, copy)
    # The same ClientToken and parameters: the same image; other parameters: a mismatch.
    again = ec2b.copy_image(SourceImageId=base, SourceRegion="nubo-1", Name="b-copy",
                            Description="B's copy", ClientToken="copy-token-1")
    check_eq(again["ImageId"], copy, "CopyImage retried with its ClientToken")
    expect_error(env, lambda: ec2b.copy_image(SourceImageId=base, SourceRegion="nubo-1",
                                              Name="b-copy-2", ClientToken="copy-token-1"),
                 "IdempotentParameterMismatch", 400, action="CopyImage")
    expect_error(env, lambda: ec2b.copy_image(SourceImageId=base, SourceRegion="nubo-1",
                                              Name="b-copy"),
                 "InvalidAMIName.Duplicate", 400, action="CopyImage")
    expect_error(env, lambda: ec2b.copy_image(SourceImageId=base, SourceRegion="eu-west-1",
                                              Name="b-copy-3"),
                 "InvalidParameterValue", 400, action="CopyImage")
    # A's private image is not B's to copy.
    a_img = register(env, tenant_a(env), "img-a-private")
    expect_error(env, lambda: ec2b.copy_image(SourceImageId=a_img["id"], SourceRegion="nubo-1",
                                              Name="stolen"),
                 "InvalidAMIID.NotFound", 400, action="CopyImage")
    S["b_copy"] = copy


@tap.test
def test_copy_store_image(env):
    a, b = tenant_a(env), tenant_b(env)
    src = register(env, a, "img-in-store")
    key = f"images/{src['id']}"
    env.psql(f"UPDATE images SET store_key = {sql_quote(key)}, stored_bytes = 4096, "
             f"virtual_size = {2 * 1024 ** 3} WHERE id = {sql_quote(src['id'])}")
    env.ec2(a).modify_image_attribute(ImageId=src["id"], LaunchPermission={
        "Add": [{"UserId": b.tenant_id}]})
    ec2b = env.ec2(b)
    m = ec2b.describe_images(ImageIds=[src["id"]])["Images"][0]
    check_eq([b_["Ebs"]["VolumeSize"] for b_ in m["BlockDeviceMappings"]], [2],
             "the size of an image in the store")
    copy = ec2b.copy_image(SourceImageId=src["id"], SourceRegion="nubo-1",
                           Name="b-store-copy")["ImageId"]
    m = ec2b.describe_images(ImageIds=[copy])["Images"][0]
    check_eq((m["OwnerId"], m["State"]), (b.tenant_id, "pending"), "a copy of stored bytes")
    rows = env.psql("SELECT id, kind, tenant_id, source_key, state FROM image_tasks "
                    f"WHERE image_id = {sql_quote(copy)}")
    check_eq(rows, [["copy-ami-" + copy.split("-", 1)[1], "copy", b.tenant_id, key, "pending"]],
             "the copy task")
    row = env.psql(f"SELECT source_image_id, store_key, location FROM images "
                   f"WHERE id = {sql_quote(copy)}")
    check_eq(row, [[src["id"], None, None]], "the pending copy's row")
    expect_error(env, lambda: run_one(ec2b, copy), "InvalidAMIID.Unavailable", 400,
                 action="RunInstances")
    # A pending image cannot be copied.
    expect_error(env, lambda: ec2b.copy_image(SourceImageId=copy, SourceRegion="nubo-1",
                                              Name="copy-of-pending"),
                 "InvalidAMIID.Unavailable", 400, action="CopyImage")


# --- errors -----------------------------------------------------------------------------------


@tap.test
def test_errors(env):
    a, b = tenant_a(env), tenant_b(env)
    ec2a, ec2b = env.ec2(a), env.ec2(b)
    a_img = need("a_img")  # private again since test_public_and_reset
    unknown = "ami-0123456789abcdef0"
    expect_error(env, lambda: ec2b.modify_image_attribute(ImageId=a_img, LaunchPermission={
        "Add": [{"UserId": b.tenant_id}]}), "InvalidAMIID.NotFound", 400,
        action="ModifyImageAttribute")
    expect_error(env, lambda: ec2b.reset_image_attribute(ImageId=a_img,
                                                          Attribute="launchPermission"),
                 "InvalidAMIID.NotFound", 400, action="ResetImageAttribute")
    expect_error(env, lambda: ec2a.describe_image_attribute(ImageId=unknown,
                                                             Attribute="description"),
                 "InvalidAMIID.NotFound", 400, action="DescribeImageAttribute")
    expect_error(env, lambda: ec2a.describe_images(ImageIds=[unknown]),
                 "InvalidAMIID.NotFound", 400, action="DescribeImages")
    expect_error(env, lambda: ec2a.deregister_image(ImageId=unknown), "InvalidAMIID.NotFound",
                 400, action="DeregisterImage")
    expect_error(env, lambda: ec2a.deregister_image(ImageId="ami-nothex"),
                 "InvalidAMIID.Malformed", 400, action="DeregisterImage")
    expect_error(env, lambda: ec2a.describe_image_attribute(ImageId=a_img, Attribute="colour"),
                 "InvalidParameterValue", 400, action="DescribeImageAttribute")
    expect_error(env, lambda: ec2a.reset_image_attribute(ImageId=a_img, Attribute="description"),
                 "InvalidParameterValue", 400, action="ResetImageAttribute")
    expect_error(env, lambda: ec2a.modify_image_attribute(ImageId=a_img, Attribute="colour",
                                                          Value="red"),
                 "InvalidParameterValue", 400, action="ModifyImageAttribute")
    expect_error(env, lambda: ec2a.modify_image_attribute(ImageId=a_img, LaunchPermission={
        "Add": [{"UserId": "999999999999"}]}), "InvalidAMIAttributeItemValue", 400)
    expect_error(env, lambda: ec2a.modify_image_attribute(ImageId=a_img, LaunchPermission={
        "Add": [{"UserId": "not-an-account"}]}), "InvalidAMIAttributeItemValue", 400)
    expect_error(env, lambda: ec2a.modify_image_attribute(ImageId=a_img, LaunchPermission={
        "Add": [{"Group": "everyone"}]}), "InvalidAMIAttributeItemValue", 400)
    expect_error(env, lambda: ec2a.modify_image_attribute(ImageId=a_img),
                 "MissingParameter", 400)
    expect_error(env, lambda: ec2a.modify_image_attribute(
        ImageId=a_img, Description={"Value": "x"}, LaunchPermission={
            "Add": [{"Group": "all"}]}), "InvalidParameterCombination", 400)
    expect_error(env, lambda: ec2a.describe_images(ExecutableUsers=["someone"]),
                 "InvalidUserID.Malformed", 400)
    # DryRun checks and stops.
    expect_error(env, lambda: ec2a.deregister_image(ImageId=a_img, DryRun=True),
                 "DryRunOperation", 412)
    check_eq(env.psql1(f"SELECT state FROM images WHERE id = {sql_quote(a_img)}"), "available",
             "the image after a DryRun deregister")


# --- REST -------------------------------------------------------------------------------------


@tap.test
def test_rest_routes(env):
    a, b = tenant_a(env), tenant_b(env)
    img = register(env, a, "img-rest", description="via REST")
    path = f"/v1/images/{img['id']}"
    check_eq(rest_ok(env.rest(a, "GET", path)), img, "GET /v1/images/{id}")
    rest_error(env, env.rest(b, "GET", path), 400, "InvalidAMIID.NotFound")
    rest_error(env, env.rest(a, "GET", "/v1/images/ami-xyz"), 400, "InvalidAMIID.Malformed")

    perms = rest_ok(env.rest(a, "GET", path + "/launch-permissions"))
    check_eq(perms, {"image_id": img["id"], "public": False, "tenants": []},
             "launch permissions of a new image")
    perms = rest_ok(env.rest(a, "PUT", path + "/launch-permissions",
                             body={"add": [b.tenant_id]}))
    check_eq(perms, {"image_id": img["id"], "public": False, "tenants": [b.tenant_id]},
             "launch permissions after add")
    seen = rest_ok(env.rest(b, "GET", path))
    check_eq((seen["id"], seen["owner_id"]), (img["id"], a.tenant_id), "B sees the shared image")
    rest_ok(env.rest(b, "POST", "/v1/instances", body={"image_id": img["id"]}), 201)
    rest_error(env, env.rest(b, "PUT", path + "/launch-permissions", body={"public": True}),
               401, "AuthFailure")
    rest_error(env, env.rest(b, "GET", path + "/launch-permissions"), 401, "AuthFailure")
    rest_error(env, env.rest(a, "PUT", path + "/launch-permissions", body={"add": "x"}),
               400, "InvalidParameterValue")
    rest_error(env, env.rest(a, "PUT", path + "/launch-permissions", body={"share": []}),
               400, "InvalidParameterValue")
    perms = rest_ok(env.rest(a, "PUT", path + "/launch-permissions",
                             body={"remove": [b.tenant_id], "public": True}))
    check_eq(perms, {"image_id": img["id"], "public": True, "tenants": []},
             "launch permissions after remove + public")
    check_eq(rest_ok(env.rest(b, "GET", path))["public"], True, "public seen by B")

    copy = rest_ok(env.rest(b, "POST", path + "/copy", body={"name": "rest-copy"}), 201)
    check_eq((copy["owner_id"], copy["state"], copy["source_image_id"], copy["description"]),
             (b.tenant_id, "available", img["id"], "via REST"), "POST /v1/images/{id}/copy")
    rest_error(env, env.rest(b, "POST", path + "/copy", body={}), 400, "MissingParameter")

    rest_error(env, env.rest(b, "DELETE", path), 401, "AuthFailure")
    rest_ok(env.rest(a, "DELETE", path), 204)
    row = env.reqlog_row(env.rest(a, "GET", path).request_id)
    check_eq((row["api"], row["error_code"]), ("rest", "InvalidAMIID.NotFound"),
             "GET of a deregistered image, in request_log")
    rest_error(env, env.rest(a, "DELETE", path), 400, "InvalidAMIID.NotFound")
    # The copy outlives its source.
    check_eq(rest_ok(env.rest(b, "GET", f"/v1/images/{copy['id']}"))["state"], "available",
             "the copy after its source is deregistered")


if __name__ == "__main__":
    tap.main()
