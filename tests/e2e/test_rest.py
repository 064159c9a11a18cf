"""End-to-end: the REST/JSON API (/v1/...) of a real nubo-gateway, driven with signed HTTP
requests (http.client + botocore's SigV4Auth, JSON bodies): the operator's routes (tenants,
users, keys, quotas, the request log), a member's and a reader's, tenant isolation, the errors,
and the same instances seen through the EC2 API. Prints TAP.
Run: /usr/bin/python3 tests/e2e/test_rest.py"""

import sys

sys.dont_write_bytecode = True

import http.client  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
from pathlib import Path  # noqa: E402

import nubo_env  # noqa: E402
from nubo_env import Creds, SkipTest, TestFailure, check, check_eq, client_error  # noqa: E402

tap = nubo_env.Tap(__file__)
S = {}  # state shared by the tests, in order

SECRET_RE = re.compile(r"^[A-Za-z0-9+/]{40}$")
KEY_ID_RE = re.compile(r"^NKIA[A-Z2-7]{16}$")


def need(key):
    if key not in S:
        raise TestFailure(f"needs '{key}' from an earlier test, which failed")
    return S[key]


# --- helpers ---------------------------------------------------------------------------------


def call(env, creds, method, path, **kw):
    return env.rest(creds, method, path, **kw)


def ok(r, status=200, what=None):
    """'r' answered 'status'; returns its JSON document ({} for 204)."""
    check_eq(r.status, status, f"HTTP status of {what or (r.method + ' ' + r.path)}; "
             f"response\n{r}")
    check(r.request_id, f"no x-amzn-RequestId header\n{r}")
    if status == 204:
        check_eq(r.body, "", f"body of a 204 answer to {r.method} {r.path}")
        return {}
    check((r.headers.get("content-type") or "").startswith("application/json"),
          f"Content-Type of {r.method} {r.path}", r.headers)
    doc = r.json
    check(isinstance(doc, dict), f"{r.method} {r.path} answered no JSON object\n{r}")
    return doc


def expect_error(env, r, status, code, logged=True, **log):
    """'r' is the error 'code' with HTTP 'status', in the REST error shape, with a request id
    that matches the header and (if 'logged') a request_log row that says the same."""
    check_eq((r.status, r.error_code), (status, code),
             f"(HTTP status, error code) of {r.method} {r.path}; response\n{r}")
    check((r.headers.get("content-type") or "").startswith("application/json"),
          f"Content-Type of the {code} error", r.headers)
    err = r.json["error"]
    check(isinstance(err.get("message"), str) and err["message"],
          f"the {code} error has no message\n{r}")
    check_eq(err.get("request_id"), r.request_id, "error.request_id vs x-amzn-RequestId")
    if logged:
        row = env.reqlog_row(r.request_id)
        check(row is not None, f"request {r.request_id} ({code}) is not in request_log")
        check_eq((row["api"], row["http_status"], row["error_code"]), ("rest", status, code),
                 f"request_log (api, http_status, error_code) of {r.request_id}")
        check_eq(row["action"], f"{r.method} {r.path.split('?')[0]}", "request_log.action")
        for k, v in log.items():
            check_eq(row[k], v, f"request_log.{k}")
    return r.json["error"]


def all_instances(env, creds, query=None, page=None):
    """Every instance of GET /v1/instances, following next_token; returns (items, pages)."""
    items, pages, token = [], [], None
    for _ in range(100):
        q = dict(query or {})
        if page:
            q["max_results"] = page
        if token:
            q["next_token"] = token
        doc = ok(call(env, creds, "GET", "/v1/instances", query=q))
        pages.append(doc["instances"])
        items += doc["instances"]
        token = doc.get("next_token")
        if not token:
            return items, pages
    raise TestFailure("GET /v1/instances: next_token never ended after 100 pages")


def new_tenant(env, name, roles=("member",)):
    """Tenant 'name' made through the REST API, with one user (and one key) per role; returns
    {role: Creds} and records the tenant id, user ids and the raw answers in S."""
    admin = env.admin
    t = ok(call(env, admin, "POST", "/v1/admin/tenants", body={"name": name}), 201)
    check_eq(t.get("name"), name, "name of the created tenant")
    check(re.fullmatch(r"[1-9][0-9]{11}", t.get("tenant_id") or ""), "tenant id", t)
    out = {}
    for role in roles:
        u = ok(call(env, admin, "POST", f"/v1/admin/tenants/{t['tenant_id']}/users",
                    body={"name": f"{name}-{role}", "role": role}), 201)
        check_eq((u.get("tenant_id"), u.get("role"), u.get("name")),
                 (t["tenant_id"], role, f"{name}-{role}"), "created user")
        check(re.fullmatch(r"user-[0-9a-f]{17}", u.get("user_id") or ""), "user id", u)
        r = call(env, admin, "POST", f"/v1/admin/users/{u['user_id']}/keys")
        k = ok(r, 201)
        check(KEY_ID_RE.match(k.get("access_key_id") or ""), "access key id", k)
        check(SECRET_RE.match(k.get("secret_access_key") or ""), "secret access key", k)
        check_eq(k.get("user_id"), u["user_id"], "user_id of the key")
        S.setdefault("secrets", []).append((k["secret_access_key"], r.request_id))
        S.setdefault("users", {})[(name, role)] = u["user_id"]
        out[role] = Creds(k["access_key_id"], k["secret_access_key"], t["tenant_id"], name)
    return out


# --- the operator ----------------------------------------------------------------------------


@tap.test
def test_admin_creates_tenants_users_keys(env):
    a = new_tenant(env, "rest-a", roles=("member", "reader"))
    b = new_tenant(env, "rest-b")
    S["a"], S["reader"], S["b"] = a["member"], a["reader"], b["member"]
    for c in (S["a"], S["reader"], S["b"]):
        doc = ok(call(env, c, "GET", "/v1/regions"))
        check_eq([x["name"] for x in doc["regions"]], ["nubo-1"], f"regions for {c.key_id}")
    # The rows are where the API says they are.
    key = nubo_env.sql_quote(S["reader"].key_id)
    check_eq(env.psql1("SELECT u.role || '/' || u.tenant_id FROM access_keys k JOIN users u "
                       f"ON u.id = k.user_id WHERE k.id = {key}"),
             f"reader/{S['reader'].tenant_id}", "the reader key's user in the database")

    doc = ok(call(env, env.admin, "GET", "/v1/admin/tenants"))
    by_name = {t["name"]: t for t in doc["tenants"]}
    for name, c in (("rest-a", S["a"]), ("rest-b", S["b"])):
        check(name in by_name, f"GET /v1/admin/tenants does not list {name}", doc)
        t = by_name[name]
        check_eq((t["tenant_id"], t["enabled"], t["instances"]), (c.tenant_id, True, 0),
                 f"tenant {name} in the list")
        check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t["created_at"]),
              "created_at of a tenant", t)
    check("admin" in by_name, "the operator's own tenant is not listed", doc)
    # Secrets are shown once: no other answer (nor the log) carries them.
    for secret, _ in S["secrets"]:
        check(secret not in str(doc), "a secret access key in GET /v1/admin/tenants")

    expect_error(env, call(env, env.admin, "POST", "/v1/admin/tenants", body={"name": "rest-a"}),
                 400, "InvalidTenant.Duplicate")
    expect_error(env, call(env, env.admin, "POST",
                           f"/v1/admin/tenants/{S['a'].tenant_id}/users",
                           body={"name": "x", "role": "superuser"}),
                 400, "InvalidParameterValue")
    expect_error(env, call(env, env.admin, "POST", "/v1/admin/tenants/999999999999/users",
                           body={"name": "x"}), 400, "InvalidTenantID.NotFound")
    expect_error(env, call(env, env.admin, "POST",
                           "/v1/admin/users/user-0123456789abcdef0/keys"),
                 400, "InvalidUserID.NotFound")
    expect_error(env, call(env, env.admin, "POST", "/v1/admin/tenants", body={}),
                 400, "MissingParameter")


@tap.test
def test_quota(env):
    q = new_tenant(env, "rest-quota")["member"]
    S["quota"] = q
    path = f"/v1/admin/tenants/{q.tenant_id}/quota"
    before = ok(call(env, env.admin, "GET", path))
    check_eq(before.get("tenant_id"), q.tenant_id, "tenant_id of the quota")
    for f in ("max_instances", "max_vcpus", "max_memory_mib", "max_elastic_ips",
              "max_image_bytes"):
        check(isinstance(before.get(f), int) and before[f] > 0, f"quota field {f}", before)
    after = ok(call(env, env.admin, "PUT", path, body={"max_instances": 2}))
    check_eq(after, dict(before, max_instances=2), "quota after PUT max_instances=2 (the "
             "other fields kept)")
    check_eq(ok(call(env, env.admin, "GET", path)), after, "GET quota after the PUT")

    image = env.image()
    r = call(env, q, "POST", "/v1/instances", body={"image_id": image, "count": 3})
    expect_error(env, r, 400, "InstanceLimitExceeded", tenant_id=q.tenant_id)
    check_eq(ok(call(env, q, "GET", "/v1/instances"))["instances"], [],
             "instances after a launch beyond the quota")
    ids = [i["id"] for i in ok(call(env, q, "POST", "/v1/instances",
                                    body={"image_id": image, "count": 2}), 201)["instances"]]
    check_eq(len(ids), 2, "instances launched within the quota")
    r = call(env, q, "POST", "/v1/instances", body={"image_id": image})
    expect_error(env, r, 400, "InstanceLimitExceeded")
    # One service layer: the EC2 API enforces the same quota.
    code, status, _, resp = client_error(
        env.ec2(q).run_instances, ImageId=image, MinCount=1, MaxCount=1)
    check_eq((code, status), ("InstanceLimitExceeded", 400), f"EC2 RunInstances beyond the "
             f"quota set through REST; {resp}")
    # min_count/max_count: what fits is launched once there is room again.
    ok(call(env, q, "DELETE", f"/v1/instances/{ids[0]}"))
    doc = ok(call(env, q, "POST", "/v1/instances",
                  body={"image_id": image, "min_count": 1, "max_count": 5}), 201)
    check_eq(len(doc["instances"]), 1, "max_count beyond the quota launches what fits")

    expect_error(env, call(env, env.admin, "PUT", path, body={"max_instances": -1}),
                 400, "InvalidParameterValue")
    expect_error(env, call(env, env.admin, "PUT", path, body={"max_cats": 3}),
                 400, "InvalidParameterValue")
    expect_error(env, call(env, env.admin, "PUT", path, body={"max_instances": "many"}),
                 400, "InvalidParameterValue")
    expect_error(env, call(env, env.admin, "PUT", path), 400, "MissingParameter")
    expect_error(env, call(env, env.admin, "GET", "/v1/admin/tenants/999999999999/quota"),
                 400, "InvalidTenantID.NotFound")
    check_eq(ok(call(env, env.admin, "GET", path))["max_instances"], 2,
             "max_instances after refused updates")


@tap.test
def test_disabled_key(env):
    a = need("a")
    # A second key of tenant A's member, so that the main one stays usable.
    user_id = S["users"][("rest-a", "member")]
    k = ok(call(env, env.admin, "POST", f"/v1/admin/users/{user_id}/keys"), 201)
    c = Creds(k["access_key_id"], k["secret_access_key"], a.tenant_id, a.name)
    ok(call(env, c, "GET", "/v1/instances"))  # the key is now in the gateway's cache
    d = ok(call(env, env.admin, "POST", f"/v1/admin/keys/{c.key_id}/disable"))
    check_eq(d, {"id": c.key_id, "enabled": False}, "answer of disable")
    # At once: disabling through this gateway drops its cache entry (no 5 s wait).
    expect_error(env, call(env, c, "GET", "/v1/instances"), 403, "OptInRequired",
                 access_key_id=c.key_id, tenant_id=None)
    code, status, _, _ = client_error(env.ec2(c).describe_regions)
    check_eq((code, status), ("OptInRequired", 403), "EC2 API with the disabled key")
    ok(call(env, a, "GET", "/v1/instances"), what="the user's other key")
    ok(call(env, env.admin, "POST", f"/v1/admin/keys/{c.key_id}/enable"))
    ok(call(env, c, "GET", "/v1/instances"), what="the key after enable")
    ok(call(env, env.admin, "POST", f"/v1/admin/keys/{c.key_id}/disable"))
    expect_error(env, call(env, env.admin, "POST", "/v1/admin/keys/NKIAAAAAAAAAAAAAAAAA/disable"),
                 400, "InvalidAccessKeyId.NotFound")
    expect_error(env, call(env, env.admin, "POST", f"/v1/admin/keys/{c.key_id}/explode"),
                 400, "InvalidAction")


# --- a member --------------------------------------------------------------------------------


@tap.test
def test_catalogue(env):
    a = need("a")
    doc = ok(call(env, a, "GET", "/v1/regions"))
    check_eq([x["name"] for x in doc["regions"]], ["nubo-1"], "regions")
    check(str(env.gw_port) in doc["regions"][0].get("endpoint", ""), "region endpoint", doc)
    # SigV4's service name may be anything; "ec2" works as well as "nubo".
    ok(call(env, a, "GET", "/v1/regions", service="ec2"), what="signed for service ec2")
    doc = ok(call(env, a, "GET", "/v1/zones"))
    check_eq([(z["name"], z["region"], z["state"]) for z in doc["zones"]],
             [("nubo-1a", "nubo-1", "available")], "zones")
    doc = ok(call(env, a, "GET", "/v1/instance-types"))
    types = {t["name"]: t for t in doc["instance_types"]}
    check("t3.small" in types, "t3.small in GET /v1/instance-types", doc)
    check_eq((types["t3.small"]["vcpus"], types["t3.small"]["memory_mib"]), (2, 2048),
             "t3.small")
    # Pages of 3 cover the list once.
    names, token = [], None
    for _ in range(50):
        q = {"max_results": 3, **({"next_token": token} if token else {})}
        page = ok(call(env, a, "GET", "/v1/instance-types", query=q))
        check(len(page["instance_types"]) <= 3, "a page longer than max_results", page)
        names += [t["name"] for t in page["instance_types"]]
        token = page.get("next_token")
        if not token:
            break
    check_eq(len(names), len(set(names)), "duplicate instance types across pages")
    check_eq(sorted(names), sorted(types), "instance types across pages")
    doc = ok(call(env, a, "GET", "/v1/instance-types", query={"memory-info.size-in-mib": 16384}))
    check_eq(sorted(t["name"] for t in doc["instance_types"]), ["m5.xlarge", "r5.large"],
             "types with 16384 MiB")
    doc = ok(call(env, a, "GET", "/v1/zones", query={"zone-name": "nubo-9z"}))
    check_eq(doc["zones"], [], "zones named nubo-9z")


@tap.test
def test_private_image(env):
    a, b = need("a"), need("b")
    r = call(env, a, "POST", "/v1/images",
             body={"name": "rest-private", "description": "an e2e image"})
    img = ok(r, 201)
    check(re.fullmatch(r"ami-[0-9a-f]{17}", img.get("id") or ""), "image id", img)
    check_eq((img["owner_id"], img["name"], img["description"], img["public"], img["state"]),
             (a.tenant_id, "rest-private", "an e2e image", False, "available"), "created image")
    S["image"] = img["id"]
    doc = ok(call(env, a, "GET", "/v1/images"))
    mine = [m for m in doc["images"] if m["id"] == img["id"]]
    check_eq(mine, [img], "the image in GET /v1/images")
    doc = ok(call(env, a, "GET", "/v1/images", query={"owner": "self"}))
    check_eq([m["id"] for m in doc["images"]], [img["id"]], "GET /v1/images?owner=self")
    doc = ok(call(env, b, "GET", "/v1/images"))
    check(img["id"] not in [m["id"] for m in doc["images"]],
          "tenant B sees tenant A's private image", doc)
    expect_error(env, call(env, b, "POST", "/v1/instances", body={"image_id": img["id"]}),
                 400, "InvalidAMIID.NotFound", tenant_id=b.tenant_id)
    # Public images are the operator's.
    expect_error(env, call(env, a, "POST", "/v1/images", body={"name": "pub", "public": True}),
                 403, "UnauthorizedOperation")
    expect_error(env, call(env, a, "POST", "/v1/images", body={"name": "rest-private"}),
                 400, "InvalidAMIName.Duplicate")


@tap.test
def test_instances(env):
    a = need("a")
    image = S.get("image") or env.image()
    r = call(env, a, "POST", "/v1/instances",
             body={"image_id": image, "count": 3, "instance_type": "t3.small",
                   "tags": {"Name": "rest-web", "team": "e2e"}})
    doc = ok(r, 201)
    got = doc["instances"]
    check_eq(len(got), 3, "instances of a count-3 launch")
    ids = [i["id"] for i in got]
    check_eq(len(set(ids)), 3, "distinct instance ids")
    check_eq(len({i["reservation_id"] for i in got}), 1, "one reservation")
    check_eq(sorted(i["launch_index"] for i in got), [0, 1, 2], "launch indexes")
    for i in got:
        check(re.fullmatch(r"i-[0-9a-f]{17}", i["id"]), "instance id", i)
        check_eq((i["owner_id"], i["image_id"], i["instance_type"], i["state"], i["zone"],
                  i["vcpus"], i["memory_mib"], i["tags"]),
                 (a.tenant_id, image, "t3.small", "pending", "nubo-1a", 2, 2048,
                  {"Name": "rest-web", "team": "e2e"}), "launched instance")
    S["a_ids"] = ids
    # Two more, untagged, that the filters must leave out.
    other = ok(call(env, a, "POST", "/v1/instances", body={"image_id": image, "count": 2}), 201)
    other_ids = [i["id"] for i in other["instances"]]
    S["a_other_ids"] = other_ids

    q = {"instance-state-name": "pending", "tag:Name": "rest-web"}
    items, _ = all_instances(env, a, q)
    check_eq(sorted(i["id"] for i in items), sorted(ids),
             "GET /v1/instances?instance-state-name=pending&tag:Name=rest-web")
    items, _ = all_instances(env, a, {"instance-state-name": "running,stopped"})
    check_eq(items, [], "instance-state-name=running,stopped")
    items, _ = all_instances(env, a, {"tag:Name": "nothing-like-this"})
    check_eq(items, [], "tag:Name=nothing-like-this")

    # Pagination: pages of 2 over all 5, then filtered pages of 2 over 3.
    full, _ = all_instances(env, a)
    items, pages = all_instances(env, a, page=2)
    check_eq([len(p) for p in pages], [2, 2, 1], "instances per page (max_results 2)")
    got_ids = [i["id"] for i in items]
    check_eq(len(got_ids), len(set(got_ids)), "duplicates across pages")
    check_eq(sorted(got_ids), sorted(ids + other_ids), "instances across pages")
    check_eq(items, full, "pages joined vs one unpaged answer")
    items, pages = all_instances(env, a, q, page=2)
    check_eq(sorted(i["id"] for i in items), sorted(ids), "filtered instances across pages")
    check_eq([len(p) for p in pages], [2, 1], "filtered pages")
    expect_error(env, call(env, a, "GET", "/v1/instances", query={"next_token": "garbage"}),
                 400, "InvalidParameterValue")
    expect_error(env, call(env, a, "GET", "/v1/instances", query={"max_results": 0}),
                 400, "InvalidParameterValue")
    expect_error(env, call(env, a, "GET", "/v1/instances", query={"colour": "red"}),
                 400, "InvalidParameterValue")

    one = ok(call(env, a, "GET", f"/v1/instances/{ids[0]}"))
    check_eq(one, next(i for i in full if i["id"] == ids[0]), "GET /v1/instances/{id}")

    r = call(env, a, "POST", f"/v1/instances/{ids[0]}/stop")
    expect_error(env, r, 400, "IncorrectInstanceState", tenant_id=a.tenant_id,
                 access_key_id=a.key_id)
    S["stop_error"] = r.request_id
    expect_error(env, call(env, a, "POST", f"/v1/instances/{ids[0]}/explode"),
                 400, "InvalidAction")
    expect_error(env, call(env, a, "POST", f"/v1/instances/{ids[0]}/reboot"),
                 400, "IncorrectInstanceState")  # as EC2: only a running instance reboots
    doc = ok(call(env, a, "POST", f"/v1/instances/{ids[0]}/start"))  # a no-op, as EC2
    check_eq((doc["id"], doc["previous_state"], doc["state"]), (ids[0], "pending", "pending"),
             "start of a pending instance")
    doc = ok(call(env, a, "DELETE", f"/v1/instances/{other_ids[0]}"))
    check_eq((doc["id"], doc["previous_state"]), (other_ids[0], "pending"), "DELETE answer")
    check(doc["state"] in ("shutting-down", "terminated"), "state after DELETE", doc)
    now = ok(call(env, a, "GET", f"/v1/instances/{other_ids[0]}"))
    check(now["state"] in ("shutting-down", "terminated"), "state of a deleted instance", now)
    doc = ok(call(env, a, "POST", f"/v1/instances/{other_ids[1]}/terminate"))
    check(doc["state"] in ("shutting-down", "terminated"), "state after terminate", doc)
    items, _ = all_instances(env, a, {"instance-state-name": "pending"})
    check_eq(sorted(i["id"] for i in items), sorted(ids), "pending instances after the deletes")
    expect_error(env, call(env, a, "GET", "/v1/instances/i-0123456789abcdef0"),
                 400, "InvalidInstanceID.NotFound")
    expect_error(env, call(env, a, "GET", "/v1/instances/web-1"),
                 400, "InvalidInstanceID.Malformed")


@tap.test
def test_keypairs(env):
    a = need("a")
    r = call(env, a, "POST", "/v1/keypairs", body={"name": "rest-ed", "key_type": "ed25519",
                                                   "tags": {"purpose": "e2e"}})
    ed = ok(r, 201)
    S["keypair_request"] = r.request_id
    check((ed.get("private_key") or "").startswith("-----BEGIN OPENSSH PRIVATE KEY-----"),
          "private_key of a created ed25519 key pair", ed)
    check_eq((ed["name"], ed["key_type"], ed["tags"]), ("rest-ed", "ed25519", {"purpose": "e2e"}),
             "created key pair")
    check(ed["public_key"].startswith("ssh-ed25519 "), "public_key", ed)
    check(re.fullmatch(r"key-[0-9a-f]{17}", ed["id"]), "key pair id", ed)
    S["private_key"] = ed["private_key"]

    keygen = shutil.which("ssh-keygen")
    imported = None
    if keygen:
        path = env.tmp / "rest-import"
        subprocess.run([keygen, "-t", "ed25519", "-N", "", "-q", "-C", "e2e", "-f", str(path)],
                       check=True, timeout=30)
        pub = Path(f"{path}.pub").read_text().strip()
        r = call(env, a, "POST", "/v1/keypairs", body={"name": "rest-imported",
                                                       "public_key": pub})
        imported = ok(r, 201)
        S["import_request"], S["imported_pub"] = r.request_id, pub
        check(imported.get("private_key") is None, "an imported key pair has no private_key",
              imported)
        check_eq(imported["public_key"].split()[:2], pub.split()[:2], "imported public key")
        check_eq(imported["key_type"], "ed25519", "type of the imported key")
        fp = subprocess.run([keygen, "-l", "-E", "sha256", "-f", f"{path}.pub"],
                            capture_output=True, text=True, timeout=30).stdout.split()
        if len(fp) > 1 and fp[1].startswith("SHA256:"):
            check_eq(imported["fingerprint"], fp[1][len("SHA256:"):].rstrip("="),
                     "fingerprint vs ssh-keygen -l")

    doc = ok(call(env, a, "GET", "/v1/keypairs"))
    by_name = {k["name"]: k for k in doc["keypairs"]}
    want = ["rest-ed"] + (["rest-imported"] if imported else [])
    check_eq(sorted(by_name), want, "key pairs")
    check(by_name["rest-ed"].get("private_key") is None, "GET /v1/keypairs shows a private key",
          by_name["rest-ed"])
    check_eq((by_name["rest-ed"]["id"], by_name["rest-ed"]["fingerprint"]),
             (ed["id"], ed["fingerprint"]), "listed key pair")
    doc = ok(call(env, a, "GET", "/v1/keypairs", query={"tag:purpose": "e2e"}))
    check_eq([k["name"] for k in doc["keypairs"]], ["rest-ed"], "tag:purpose filter")
    doc = ok(call(env, need("b"), "GET", "/v1/keypairs"))
    check_eq(doc["keypairs"], [], "tenant B's key pairs")

    expect_error(env, call(env, a, "POST", "/v1/keypairs", body={"name": "rest-ed"}),
                 400, "InvalidKeyPair.Duplicate")
    expect_error(env, call(env, a, "POST", "/v1/keypairs", body={"name": "junk",
                                                                 "public_key": "ssh-rsa !!!"}),
                 400, "InvalidKey.Format")
    expect_error(env, call(env, a, "POST", "/v1/keypairs", body={"name": "x", "key_type": "dsa"}),
                 400, "InvalidParameterValue")

    # A launch with the key; then DELETE answers 204 with no body, and the connection it came
    # on still works (no stray body bytes on a kept-alive connection).
    image = S.get("image") or env.image()
    inst = ok(call(env, a, "POST", "/v1/instances", body={"image_id": image,
                                                          "key_name": "rest-ed"}), 201)
    check_eq(inst["instances"][0]["key_name"], "rest-ed", "key_name of the launched instance")
    ok(call(env, a, "DELETE", f"/v1/instances/{inst['instances'][0]['id']}"))
    conn = http.client.HTTPConnection("127.0.0.1", env.gw_port, timeout=10)
    try:
        ok(call(env, a, "DELETE", "/v1/keypairs/rest-ed", conn=conn), 204)
        if imported:
            ok(call(env, a, "DELETE", "/v1/keypairs/rest-imported", conn=conn), 204)
        doc = ok(call(env, a, "GET", "/v1/keypairs", conn=conn), what="the request after a "
                 "204 on the same connection")
    finally:
        conn.close()
    check_eq(doc["keypairs"], [], "key pairs after DELETE")
    if not keygen:
        raise SkipTest("no ssh-keygen: importing a real public key not tried")


@tap.test
def test_tags(env):
    a = need("a")
    ids = need("a_ids")
    r = call(env, a, "PUT", f"/v1/tags/{ids[1]}", body={"tags": {"stage": "blue",
                                                                 "owner": "e2e"}})
    doc = ok(r)
    check_eq((doc["resource_id"], doc["tags"]), (ids[1], {"stage": "blue", "owner": "e2e"}),
             "PUT /v1/tags answer")
    ok(call(env, a, "PUT", f"/v1/tags/{ids[2]}", body={"tags": {"stage": "green"}}))
    doc = ok(call(env, a, "GET", f"/v1/instances/{ids[1]}"))
    check_eq(doc["tags"], {"Name": "rest-web", "team": "e2e", "stage": "blue", "owner": "e2e"},
             "the instance's tags after PUT")

    doc = ok(call(env, a, "GET", "/v1/tags"))
    rows = {(t["resource_id"], t["key"]): (t["resource_type"], t["value"]) for t in doc["tags"]}
    check_eq(rows.get((ids[1], "stage")), ("instance", "blue"), "tag stage of ids[1]")
    check_eq(rows.get((ids[2], "stage")), ("instance", "green"), "tag stage of ids[2]")
    doc = ok(call(env, a, "GET", "/v1/tags", query={"resource-id": ids[1]}))
    check_eq(sorted((t["key"], t["value"]) for t in doc["tags"]),
             [("Name", "rest-web"), ("owner", "e2e"), ("stage", "blue"), ("team", "e2e")],
             "GET /v1/tags?resource-id=")
    doc = ok(call(env, a, "GET", "/v1/tags", query={"value": "blue"}))
    check_eq([(t["resource_id"], t["key"]) for t in doc["tags"]], [(ids[1], "stage")],
             "GET /v1/tags?value=blue")
    # Pages of 3 cover every tag once.
    seen, token = [], None
    for _ in range(50):
        page = ok(call(env, a, "GET", "/v1/tags",
                       query={"max_results": 3, **({"next_token": token} if token else {})}))
        check(len(page["tags"]) <= 3, "a page of tags longer than max_results", page)
        seen += [(t["resource_id"], t["key"]) for t in page["tags"]]
        token = page.get("next_token")
        if not token:
            break
    check_eq(sorted(seen), sorted(rows), "tags across pages of 3")

    ok(call(env, a, "DELETE", f"/v1/tags/{ids[1]}", query={"key": "stage"}), 204)
    doc = ok(call(env, a, "GET", f"/v1/instances/{ids[1]}"))
    check_eq(doc["tags"], {"Name": "rest-web", "team": "e2e", "owner": "e2e"},
             "tags after DELETE /v1/tags/{id}?key=stage")
    items, _ = all_instances(env, a, {"tag:stage": "blue,green"})
    check_eq([i["id"] for i in items], [ids[2]], "tag:stage filter after the delete")
    expect_error(env, call(env, a, "PUT", f"/v1/tags/{ids[1]}", body={"tags": {"k": 1}}),
                 400, "InvalidParameterValue")
    expect_error(env, call(env, a, "PUT", f"/v1/tags/{ids[1]}"), 400, "MissingParameter")
    expect_error(env, call(env, a, "PUT", "/v1/tags/i-0123456789abcdef0",
                           body={"tags": {"k": "v"}}), 400, "InvalidInstanceID.NotFound")


@tap.test
def test_tags_key_filter(env):
    """GET /v1/tags?key=K lists the tags with key K only (DescribeTags' 'key' filter)."""
    a = need("a")
    ids = need("a_ids")
    ok(call(env, a, "PUT", f"/v1/tags/{ids[0]}", body={"tags": {"only-here": "1"}}))
    doc = ok(call(env, a, "GET", "/v1/tags", query={"key": "only-here"}))
    got = [(t["resource_id"], t["key"]) for t in doc["tags"]]
    ok(call(env, a, "DELETE", f"/v1/tags/{ids[0]}", query={"key": "only-here"}), 204)
    # Through the EC2 API the same filter works:
    d = env.ec2(a).describe_tags(Filters=[{"Name": "key", "Values": ["team"]}])
    check_eq(sorted(t["ResourceId"] for t in d["Tags"]), sorted(ids),
             "EC2 DescribeTags Filter key=team")
    # ('key' is also DELETE /v1/tags/{id}'s own argument; GET must not drop it as such.)
    check_eq(got, [(ids[0], "only-here")], "GET /v1/tags?key=only-here")
    doc = ok(call(env, a, "GET", "/v1/tags", query={"key": "team", "resource-id": ids[1]}))
    check_eq([(t["resource_id"], t["key"], t["value"]) for t in doc["tags"]],
             [(ids[1], "team", "e2e")], "GET /v1/tags?key=team&resource-id=")


# --- roles and tenants -----------------------------------------------------------------------


@tap.test
def test_reader_role(env):
    reader, a = need("reader"), need("a")
    ids = need("a_ids")
    image = S.get("image") or env.image()
    # Reads work and see the tenant's resources.
    items, _ = all_instances(env, reader)
    check(set(ids) <= {i["id"] for i in items}, "the reader does not see the tenant's "
          "instances", items)
    ok(call(env, reader, "GET", f"/v1/instances/{ids[0]}"))
    ok(call(env, reader, "GET", "/v1/keypairs"))
    ok(call(env, reader, "GET", "/v1/tags"))
    doc = ok(call(env, reader, "GET", "/v1/images"))
    check(image in [m["id"] for m in doc["images"]], "the reader does not see the tenant's "
          "image", doc)
    # Writes do not.
    before = len(items)
    expect_error(env, call(env, reader, "POST", "/v1/instances", body={"image_id": image}),
                 403, "UnauthorizedOperation", access_key_id=reader.key_id,
                 tenant_id=reader.tenant_id)
    expect_error(env, call(env, reader, "DELETE", f"/v1/instances/{ids[0]}"),
                 403, "UnauthorizedOperation")
    expect_error(env, call(env, reader, "POST", f"/v1/instances/{ids[0]}/reboot"),
                 403, "UnauthorizedOperation")
    expect_error(env, call(env, reader, "POST", "/v1/keypairs", body={"name": "r"}),
                 403, "UnauthorizedOperation")
    expect_error(env, call(env, reader, "PUT", f"/v1/tags/{ids[0]}",
                           body={"tags": {"by": "reader"}}), 403, "UnauthorizedOperation")
    expect_error(env, call(env, reader, "DELETE", f"/v1/tags/{ids[0]}"),
                 403, "UnauthorizedOperation")
    expect_error(env, call(env, reader, "POST", "/v1/images", body={"name": "r"}),
                 403, "UnauthorizedOperation")
    code, status, _, _ = client_error(env.ec2(reader).run_instances, ImageId=image,
                                      MinCount=1, MaxCount=1)
    check_eq((code, status), ("UnauthorizedOperation", 403), "EC2 RunInstances as reader")
    items, _ = all_instances(env, a)
    check_eq(len(items), before, "instances after the reader's attempts")
    one = ok(call(env, a, "GET", f"/v1/instances/{ids[0]}"))
    check_eq((one["state"], one["tags"].get("by")), ("pending", None),
             "instance after the reader's attempts")


@tap.test
def test_admin_routes_need_admin(env):
    a, reader = need("a"), need("reader")
    tid = a.tenant_id
    for c in (a, reader):
        for method, path, body in (
                ("GET", "/v1/admin/tenants", None),
                ("POST", "/v1/admin/tenants", {"name": "rest-evil"}),
                ("POST", f"/v1/admin/tenants/{tid}/users", {"name": "evil", "role": "admin"}),
                ("GET", f"/v1/admin/tenants/{tid}/quota", None),
                ("PUT", f"/v1/admin/tenants/{tid}/quota", {"max_instances": 1000}),
                ("POST", f"/v1/admin/keys/{c.key_id}/disable", None),
                ("POST", f"/v1/admin/tenants/{tid}/disable", None),
                ("GET", "/v1/admin/requests", None),
                ("PUT", "/v1/instance-types/t3.huge", {"vcpus": 64, "memory_mib": 65536})):
            expect_error(env, call(env, c, method, path, body=body), 403,
                         "UnauthorizedOperation", access_key_id=c.key_id, tenant_id=tid)
    ok(call(env, a, "GET", "/v1/regions"), what="the member after its refused admin calls")
    doc = ok(call(env, env.admin, "GET", "/v1/admin/tenants"))
    check("rest-evil" not in [t["name"] for t in doc["tenants"]], "a member created a tenant")
    check_eq(ok(call(env, env.admin, "GET", f"/v1/admin/tenants/{tid}/quota"))["max_instances"],
             20, "tenant A's quota after the member's attempt")
    check_eq(env.psql1("SELECT count(*) FROM users WHERE name = 'evil'"), "0",
             "users made by a member")


@tap.test
def test_cross_tenant(env):
    a, b = need("a"), need("b")
    ids = need("a_ids")
    iid = ids[0]
    before = ok(call(env, a, "GET", f"/v1/instances/{iid}"))
    ghost = "i-0123456789abcdef0"
    for method, suffix, body in (("GET", "", None), ("DELETE", "", None),
                                 ("POST", "/stop", None), ("POST", "/terminate", None),
                                 ("POST", "/reboot", None)):
        theirs = call(env, b, method, f"/v1/instances/{iid}{suffix}", body=body)
        none = call(env, b, method, f"/v1/instances/{ghost}{suffix}", body=body)
        e1 = expect_error(env, theirs, 400, "InvalidInstanceID.NotFound",
                          tenant_id=b.tenant_id)
        e2 = expect_error(env, none, 400, "InvalidInstanceID.NotFound")
        check_eq(e1["message"].replace(iid, "ID"), e2["message"].replace(ghost, "ID"),
                 f"{method} {suffix or '/'}: message for another tenant's instance vs for a "
                 "nonexistent one")
    expect_error(env, call(env, b, "PUT", f"/v1/tags/{iid}", body={"tags": {"Name": "stolen"}}),
                 400, "InvalidInstanceID.NotFound")
    expect_error(env, call(env, b, "DELETE", f"/v1/tags/{iid}", query={"key": "Name"}),
                 400, "InvalidInstanceID.NotFound")
    items, _ = all_instances(env, b)
    check(iid not in [i["id"] for i in items], "tenant B lists tenant A's instance", items)
    doc = ok(call(env, b, "GET", "/v1/tags"))
    check(iid not in [t["resource_id"] for t in doc["tags"]], "tenant B sees A's tags", doc)
    after = ok(call(env, a, "GET", f"/v1/instances/{iid}"))
    check_eq(after, before, "tenant A's instance after tenant B's attempts")


# --- errors ----------------------------------------------------------------------------------


@tap.test
def test_errors(env):
    a = need("a")
    image = S.get("image") or env.image()
    expect_error(env, call(env, a, "GET", "/v1/no-such-thing"), 404, "NotFound")
    expect_error(env, call(env, a, "GET", "/v1/instances/i-0123456789abcdef0/stop/now"),
                 404, "NotFound")
    expect_error(env, call(env, a, "GET", "/v1/regions/"), 404, "NotFound")
    expect_error(env, call(env, a, "PATCH", "/v1/instances"), 405, "MethodNotAllowed")
    expect_error(env, call(env, a, "DELETE", "/v1/regions"), 405, "MethodNotAllowed")
    expect_error(env, call(env, a, "PUT", f"/v1/instances/{need('a_ids')[0]}",
                           body={"state": "running"}), 405, "MethodNotAllowed")
    e = expect_error(env, call(env, a, "POST", "/v1/instances", raw='{"image_id": '),
                     400, "InvalidParameterValue")
    check("JSON" in e["message"], "the message of a malformed body does not say JSON", e)
    expect_error(env, call(env, a, "POST", "/v1/instances", raw="[1, 2]"),
                 400, "InvalidParameterValue")
    e = expect_error(env, call(env, a, "POST", "/v1/instances",
                               body={"image_id": image, "colour": "red"}),
                     400, "InvalidParameterValue")
    check("colour" in e["message"], "the message does not name the unknown field", e)
    expect_error(env, call(env, a, "POST", "/v1/instances", body={"image_id": image,
                                                                  "count": "3"}),
                 400, "InvalidParameterValue")
    expect_error(env, call(env, a, "POST", "/v1/instances", body={"image_id": image,
                                                                  "count": 0}),
                 400, "InvalidParameterValue")
    expect_error(env, call(env, a, "POST", "/v1/instances", body={"count": 1}),
                 400, "MissingParameter")
    expect_error(env, call(env, a, "POST", "/v1/instances"), 400, "MissingParameter")
    expect_error(env, call(env, a, "GET", "/v1/instances",
                           query=[("max_results", 2), ("max_results", 3)]),
                 400, "InvalidParameterValue")
    # Authentication.
    expect_error(env, call(env, None, "GET", "/v1/regions"), 401, "AuthFailure",
                 access_key_id=None, tenant_id=None)
    expect_error(env, call(env, None, "GET", "/v1/no-such-thing"), 401, "AuthFailure")
    ghost = Creds("NKIAAAAAAAAAAAAAAAAA", "x" * 40, None, "ghost")
    expect_error(env, call(env, ghost, "GET", "/v1/regions"), 401, "AuthFailure")
    bad = Creds(a.key_id, ("B" if a.secret[0] != "B" else "C") + a.secret[1:], a.tenant_id,
                a.name)
    expect_error(env, call(env, bad, "GET", "/v1/regions"), 403, "SignatureDoesNotMatch",
                 access_key_id=a.key_id)
    # What is signed is what is run: another query string or body than the signed one fails.
    h = nubo_env.sign_request(env.endpoint, a.key_id, a.secret, "GET",
                              "/v1/instances?max_results=5")
    status, hdrs, text = env.http("GET", "/v1/instances?max_results=6", headers=h)
    r = nubo_env.RestResponse(status, hdrs, text, "GET", "/v1/instances?max_results=6")
    expect_error(env, r, 403, "SignatureDoesNotMatch")
    h = nubo_env.sign_request(env.endpoint, a.key_id, a.secret, "POST", "/v1/keypairs",
                              b'{"name":"aa"}', {"Content-Type": "application/json"})
    status, hdrs, text = env.http("POST", "/v1/keypairs", body=b'{"name":"bb"}', headers=h)
    r = nubo_env.RestResponse(status, hdrs, text, "POST", "/v1/keypairs")
    expect_error(env, r, 403, "SignatureDoesNotMatch")
    doc = ok(call(env, a, "GET", "/v1/keypairs"))
    check_eq([k["name"] for k in doc["keypairs"] if k["name"] in ("aa", "bb")], [],
             "key pairs made by tampered requests")


# --- the request log ---------------------------------------------------------------------------


def requests(env, **query):
    doc = ok(call(env, env.admin, "GET", "/v1/admin/requests", query=query))
    check(isinstance(doc.get("requests"), list), "GET /v1/admin/requests answer", doc)
    return doc["requests"]


@tap.test
def test_request_log(env):
    a = need("a")
    fields = {"request_id", "time", "tenant_id", "access_key_id", "action", "params",
              "http_status", "error_code", "latency_us", "source_addr", "user_agent", "api"}
    # A fresh request of each kind, so that the newest records are known.
    r_ok = call(env, a, "POST", "/v1/keypairs", body={"name": "rest-logged", "key_type": "ed25519",
                                                      "tags": {"t": "v"}})
    created = ok(r_ok, 201)
    r_err = call(env, a, "POST", f"/v1/instances/{need('a_ids')[0]}/stop")
    expect_error(env, r_err, 400, "IncorrectInstanceState")

    recs = requests(env, tenant_id=a.tenant_id, limit=5)
    check(0 < len(recs) <= 5, "limit=5", recs)
    for rec in recs:
        check_eq(set(rec), fields, "fields of a request record")
        check_eq(rec["tenant_id"], a.tenant_id, "tenant_id filter")
    check_eq([x["request_id"] for x in recs[:2]], [r_err.request_id, r_ok.request_id],
             "the newest two records of tenant A (newest first)")
    times = [x["time"] for x in recs]
    check_eq(times, sorted(times, reverse=True), "records ordered newest first")
    rec = recs[1]
    check_eq((rec["action"], rec["http_status"], rec["error_code"], rec["api"],
              rec["access_key_id"], rec["source_addr"], rec["user_agent"]),
             ("POST /v1/keypairs", 201, None, "rest", a.key_id, "127.0.0.1", nubo_env.USER_AGENT),
             "record of POST /v1/keypairs")
    check(isinstance(rec["latency_us"], int) and rec["latency_us"] >= 0, "latency_us", rec)
    # Bodies are logged with their field names only.
    check_eq(rec["params"], {"name": "(redacted)", "key_type": "(redacted)",
                             "tags": "(redacted)"}, "params of the logged POST /v1/keypairs")
    check(created["private_key"][40:80] not in str(recs), "a private key in the request log")
    rec = recs[0]
    check_eq((rec["action"], rec["http_status"], rec["error_code"], rec["params"]),
             (f"POST /v1/instances/{need('a_ids')[0]}/stop", 400, "IncorrectInstanceState", {}),
             "record of the refused stop")

    recs = requests(env, action="POST /v1/keypairs", tenant_id=a.tenant_id)
    check(r_ok.request_id in [x["request_id"] for x in recs], "action filter misses the "
          "request", recs)
    check(all(x["action"] == "POST /v1/keypairs" for x in recs), "action filter", recs)
    if "import_request" in S:
        imp = [x for x in recs if x["request_id"] == S["import_request"]]
        check_eq([x["params"] for x in imp], [{"name": "(redacted)", "public_key": "(redacted)"}],
                 "params of the logged key import")
        check(S["imported_pub"].split()[1] not in str(recs), "a public key in the request log")
    if "private_key" in S:
        check(S["private_key"][40:80] not in str(recs), "a private key in the request log")

    recs = requests(env, error_code="IncorrectInstanceState", tenant_id=a.tenant_id)
    got = [x["request_id"] for x in recs]
    check(r_err.request_id in got and S.get("stop_error", r_err.request_id) in got,
          "error_code filter misses the refused stops", recs)
    check(all(x["error_code"] == "IncorrectInstanceState" for x in recs), "error_code filter",
          recs)

    recs = requests(env, errors_only="true", limit=50)
    check(recs and all(x["error_code"] and x["http_status"] >= 400 for x in recs),
          "errors_only=true", recs)
    check(r_err.request_id in [x["request_id"] for x in recs], "errors_only misses the stop",
          recs)
    recs = requests(env, errors_only="true", tenant_id=a.tenant_id, limit=1)
    check_eq([x["request_id"] for x in recs], [r_err.request_id], "errors_only + limit=1")
    check_eq(requests(env, tenant_id="999999999999"), [], "records of a tenant that does "
             "not exist")

    # The EC2 API logs into the same place, with api "ec2".
    d = env.ec2(a).describe_instances()
    rid = d["ResponseMetadata"]["RequestId"]
    recs = requests(env, action="DescribeInstances", tenant_id=a.tenant_id, limit=1)
    check_eq([(x["request_id"], x["api"], x["http_status"]) for x in recs],
             [(rid, "ec2", 200)], "record of an EC2 DescribeInstances")

    # No secret access key shown at creation ever reaches the log.
    recs = requests(env, limit=1000)
    text = str(recs)
    for secret, create_rid in S.get("secrets", []):
        check(secret not in text, "a secret access key in the request log")
        mine = [x for x in recs if x["request_id"] == create_rid]
        check_eq([(x["action"].split("/")[-1], x["params"], x["http_status"]) for x in mine],
                 [("keys", {}, 201)], "record of a key creation")

    expect_error(env, call(env, env.admin, "GET", "/v1/admin/requests",
                           query={"limit": 100000}), 400, "InvalidParameterValue")
    expect_error(env, call(env, env.admin, "GET", "/v1/admin/requests",
                           query={"errors_only": "maybe"}), 400, "InvalidParameterValue")
    ok(call(env, a, "DELETE", "/v1/keypairs/rest-logged"), 204)


# --- one service layer -----------------------------------------------------------------------


@tap.test
def test_same_view_through_ec2(env):
    a, b = need("a"), need("b")
    ec2 = env.ec2(a)
    # An instance and a key pair made through EC2, to see through REST.
    r = ec2.run_instances(ImageId=S.get("image") or env.image(), MinCount=1, MaxCount=1,
                          InstanceType="t3.micro", TagSpecifications=[
                              {"ResourceType": "instance",
                               "Tags": [{"Key": "Name", "Value": "via-ec2"}]}])
    ec2_iid = r["Instances"][0]["InstanceId"]
    ec2.create_key_pair(KeyName="via-ec2", KeyType="ed25519")
    ec2.create_tags(Resources=[need("a_ids")[0]], Tags=[{"Key": "via", "Value": "ec2"}])

    rest_items, _ = all_instances(env, a)
    d = ec2.describe_instances()
    ec2_items = [i for res in d["Reservations"] for i in res["Instances"]]
    ec2_res = {i["InstanceId"]: res["ReservationId"] for res in d["Reservations"]
               for i in res["Instances"]}
    check_eq(sorted(i["id"] for i in rest_items), sorted(i["InstanceId"] for i in ec2_items),
             "instance ids through REST vs EC2")
    check(ec2_iid in [i["id"] for i in rest_items], "the EC2-launched instance is not in REST")
    by_id = {i["InstanceId"]: i for i in ec2_items}
    for i in rest_items:
        e = by_id[i["id"]]
        check_eq((i["state"], i["instance_type"], i["image_id"], i["zone"], i["launch_index"],
                  i["reservation_id"], i["key_name"], i["tags"]),
                 (e["State"]["Name"], e["InstanceType"], e["ImageId"],
                  e["Placement"]["AvailabilityZone"], e["AmiLaunchIndex"], ec2_res[i["id"]],
                  e.get("KeyName"), {t["Key"]: t["Value"] for t in e.get("Tags", [])}),
                 f"instance {i['id']} through REST vs EC2")
        lt = e["LaunchTime"].strftime("%Y-%m-%dT%H:%M:%S")
        check(i["launch_time"].startswith(lt), "launch_time through REST vs EC2",
              i["launch_time"], e["LaunchTime"])
    check_eq(ok(call(env, a, "GET", f"/v1/instances/{need('a_ids')[0]}"))["tags"].get("via"),
             "ec2", "a tag made through EC2, seen through REST")
    rest_keys = sorted(k["name"] for k in ok(call(env, a, "GET", "/v1/keypairs"))["keypairs"])
    ec2_keys = sorted(k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"])
    check_eq(rest_keys, ec2_keys, "key pairs through REST vs EC2")
    check("via-ec2" in rest_keys, "the EC2-made key pair is not in REST", rest_keys)
    # The operator's count of live instances agrees.
    live = [i for i in rest_items if i["state"] != "terminated"]
    tenants = {t["tenant_id"]: t for t in
               ok(call(env, env.admin, "GET", "/v1/admin/tenants"))["tenants"]}
    check_eq(tenants[a.tenant_id]["instances"], len(live), "instances of tenant A in "
             "GET /v1/admin/tenants")
    # Terminated through REST, seen so through EC2.
    ok(call(env, a, "DELETE", f"/v1/instances/{ec2_iid}"))
    d = ec2.describe_instances(InstanceIds=[ec2_iid])
    check(d["Reservations"][0]["Instances"][0]["State"]["Name"] in ("shutting-down",
                                                                    "terminated"),
          "EC2 state of an instance deleted through REST", d)
    ok(call(env, a, "DELETE", "/v1/keypairs/via-ec2"), 204)
    check_eq([k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]], [],
             "EC2 key pairs after the REST delete")
    code, _, _, _ = client_error(env.ec2(b).describe_instances, InstanceIds=[ec2_iid])
    check_eq(code, "InvalidInstanceID.NotFound", "tenant B through EC2")


if __name__ == "__main__":
    tap.main()
