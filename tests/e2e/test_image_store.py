#!/usr/bin/python3
"""The image store end to end, with real clients (curl with --aws-sigv4) and real images made by
qemu-img: streamed uploads of raw, qcow2, VHD and OVA images, imports converted by nubo-imaged,
ranged downloads, signed blob URLs for the agents, refusals of corrupt and hostile images that
leave nothing behind, quota, a gateway killed mid-upload, and the storage usage events.

Runs on the file backend; with IMAGE_ENV_CEPH_CONF set (tests/e2e/test_image_store_rados.py
does) on RADOS."""

import hashlib
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import image_env
import nubo_env
from image_env import make_ova, make_raw, qemu_img, sha256_file
from nubo_env import check, check_eq, sql_quote

tap = nubo_env.Tap(__file__, per_test_timeout=240, fixture=image_env.ImageEnv)


def scratch(env, name):
    d = env.tmp / "work"
    d.mkdir(exist_ok=True)
    return d / name


def same_disk(a, b):
    r = subprocess.run(["qemu-img", "compare", "-q", str(a), str(b)], capture_output=True,
                       text=True, timeout=120)
    return r.returncode == 0


def no_leftovers(env):
    """Only committed blobs that an image or a task refers to remain, and no temporary ones
    (on RADOS: no data object "KEY@WRITE.N" whose manifest KEY is not such a blob)."""
    files = env.store_files()
    tmp = [f for f in files if f.startswith("tmp/")]
    check(not tmp, "no temporary files left in the store", tmp)
    keys = set((env.psql1("SELECT string_agg(store_key, ' ') FROM images") or "").split())
    keys |= set((env.psql1("SELECT string_agg(source_key, ' ') FROM image_tasks "
                           "WHERE state IN ('pending', 'active')") or "").split())
    keys |= set((env.psql1("SELECT string_agg(result_key, ' ') FROM image_tasks t JOIN images m "
                           "ON m.id = t.image_id WHERE m.state <> 'deregistered'") or "").split())
    stray = [f for f in files if f.startswith("objects/") and f[len("objects/"):] not in keys]
    check(not stray, "every blob belongs to an image or a running task", stray, keys)
    if env.ceph_conf:
        objects = env.rados_objects()
        stray = [o for o in objects if o.split("@")[0] not in keys]
        check(not stray, "every RADOS object belongs to a blob of an image or a running task",
              stray, keys)


@tap.test
def raw_upload_download_and_range(env):
    t = env.tenant("alice")
    raw = make_raw(scratch(env, "disk.raw"), size_mib=12)
    image_id = env.new_image(t, "raw-disk", "raw")
    check_eq(env.get_image(t, image_id)["state"], "pending", "a new upload image waits for bytes")
    status, _, body = env.upload(t, image_id, raw)
    check(status == 200, "upload of a raw disk", status, body)
    row = env.image_row(image_id)
    digest = sha256_file(raw)
    check_eq((row["state"], row["disk_format"], row["sha256"], int(row["stored_bytes"])),
             ("available", "raw", digest, raw.stat().st_size), "the image as stored")
    check(row["location"].startswith(f"http://127.0.0.1:{env.imaged_port}/v1/blobs/images/"),
          "the agents' URL is nubo-imaged's", row["location"])
    status, headers, data = env.curl(t, "GET", f"/v1/images/{image_id}/file", [])
    check_eq((status, hashlib.sha256(data).hexdigest(), headers.get("x-nubo-sha256")),
             (200, digest, digest), "download: the same bytes")
    status, headers, data = env.curl(t, "GET", f"/v1/images/{image_id}/file",
                                     ["-r", "1048570-1048580"])
    with open(raw, "rb") as f:
        f.seek(1048570)
        want = f.read(11)
    check_eq((status, data, headers.get("content-range")),
             (206, want, f"bytes 1048570-1048580/{raw.stat().st_size}"), "a ranged download")
    status, headers, _ = env.curl(t, "GET", f"/v1/images/{image_id}/file",
                                  ["-r", f"{raw.stat().st_size + 5}-"])
    check_eq((status, headers.get("content-range")), (416, f"bytes */{raw.stat().st_size}"),
             "a range past the end")
    status, _, body = env.curl(env.tenant("bob"), "GET", f"/v1/images/{image_id}/file", [])
    check(status == 400 and b"InvalidAMIID.NotFound" in body, "another tenant cannot download",
          status, body)
    # The agents' signed URL: good, tampered, ranged.
    with urllib.request.urlopen(row["location"], timeout=30) as r:
        check_eq(hashlib.sha256(r.read()).hexdigest(), digest, "the blob URL serves the image")
    req = urllib.request.Request(row["location"], headers={"Range": "bytes=-16"})
    with urllib.request.urlopen(req, timeout=30) as r:
        check_eq((r.status, len(r.read())), (206, 16), "the blob URL honours Range")
    bad = row["location"][:-4] + ("0000" if not row["location"].endswith("0000") else "1111")
    try:
        urllib.request.urlopen(bad, timeout=10)
        check(False, "a tampered blob URL is refused")
    except urllib.error.HTTPError as e:
        check_eq(e.code, 403, "a tampered blob URL is refused")
    status, _, body = env.upload(t, image_id, raw)
    check(status == 400 and b"IncorrectState" in body, "a second upload is refused", status, body)
    n = env.psql1(f"SELECT count(*) FROM request_log WHERE action LIKE 'PUT /v1/images/%' "
                  f"AND tenant_id = {sql_quote(t.tenant_id)}")
    check(int(n) >= 2, "uploads are in the request log", n)
    no_leftovers(env)


@tap.test
def qcow2_chunked_upload_and_hostile_qcow2(env):
    t = env.tenant("alice")
    raw = make_raw(scratch(env, "q.raw"), size_mib=6, seed=b"q")
    q = scratch(env, "disk.qcow2")
    qemu_img("convert", "-f", "raw", "-O", "qcow2", str(raw), str(q))
    image_id = env.new_image(t, "qcow2-disk", "qcow2")
    status, _, body = env.upload(t, image_id, q, digest=False, chunked=True)
    check(status == 200, "chunked upload of a qcow2 without a digest", status, body)
    row = env.image_row(image_id)
    check_eq((row["state"], row["disk_format"], int(row["virtual_size"])),
             ("available", "qcow2", 6 << 20), "qcow2 kept as qcow2, virtual size read")
    # A qcow2 naming a backing file on the node is refused, and nothing stays behind.
    base = scratch(env, "base.qcow2")
    qemu_img("create", "-f", "qcow2", str(base), "16M")
    evil = scratch(env, "evil.qcow2")
    qemu_img("create", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(evil))
    image_id = env.new_image(t, "evil", "qcow2")
    status, _, body = env.upload(t, image_id, evil)
    check(status == 400 and b"backing file" in body, "a qcow2 with a backing file is refused",
          status, body)
    check_eq(env.image_row(image_id)["state"], "pending", "the image still waits for bytes")
    # A file that is not what the tenant said.
    status, _, body = env.upload(t, image_id, raw)
    check(status == 400 and b"raw" in body, "raw bytes declared as qcow2 are refused",
          status, body)
    no_leftovers(env)


@tap.test
def multipart_upload_resumes_and_joins(env):
    """A VHD in three parts, sent out of order, one of them twice (a retry after a broken
    connection), listed to see what is missing, then joined and imported."""
    t = env.tenant("heidi")
    raw = make_raw(scratch(env, "mp.raw"), size_mib=10, seed=b"parts")
    vhd = scratch(env, "mp.vhd")
    qemu_img("convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", str(raw), str(vhd))
    data = vhd.read_bytes()
    cut = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    parts = []
    for i in range(3):
        p = scratch(env, f"mp.part{i + 1}")
        p.write_bytes(data[cut[i]:cut[i + 1]])
        parts.append(p)
    image_id = env.new_image(t, "multipart", "vhd")
    path = f"/v1/images/{image_id}/file"

    def put_part(n, f):
        return env.curl(t, "PUT", path + f"?part={n}",
                        ["-H", f"x-amz-content-sha256: {sha256_file(f)}", "-T", str(f)])
    wrong = scratch(env, "mp.wrong")
    wrong.write_bytes(b"x" * 1000)
    for n, f in ((3, parts[2]), (1, wrong), (1, parts[0])):
        status, _, body = put_part(n, f)
        check(status == 200 and b'"part"' in body, f"part {n}", status, body)
    r = env.rest(t, "GET", f"/v1/images/{image_id}/parts")
    check_eq([(p["part"], p["size_bytes"]) for p in r.json["parts"]],
             [(1, parts[0].stat().st_size), (3, parts[2].stat().st_size)],
             "parts 1 (the second sending) and 3 are in")
    r = env.rest(t, "POST", f"/v1/images/{image_id}/parts/complete", {"parts": [1, 2, 3]})
    check(r.status == 400 and r.error_code == "InvalidPart", "part 2 is missing", r)
    r = env.rest(t, "POST", f"/v1/images/{image_id}/parts/complete", {"parts": [3, 1]})
    check(r.status == 400 and r.error_code == "InvalidPartOrder", "parts out of order", r)
    status, _, body = put_part(2, parts[1])
    check(status == 200, "part 2", status, body)
    r = env.rest(t, "POST", f"/v1/images/{image_id}/parts/complete",
                 {"parts": [1, 2, 3], "sha256": "00" * 32})
    check(r.status == 400 and r.error_code == "BadDigest", "a wrong whole digest", r)
    r = env.rest(t, "POST", f"/v1/images/{image_id}/parts/complete",
                 {"parts": [1, 2, 3], "sha256": hashlib.sha256(data).hexdigest()})
    check(r.status == 202 and r.json["import_task_id"].startswith("import-ami-"), "joined", r)
    row = env.wait_image(image_id)
    check_eq(row["state"], "available", f"imported: {row['state_reason']}")
    out = scratch(env, "mp-back.qcow2")
    env.curl(t, "GET", f"/v1/images/{image_id}/file", ["-o", str(out)])
    check(same_disk(raw, out), "the joined VHD holds the original disk")
    r = env.rest(t, "GET", f"/v1/images/{image_id}/parts")
    check_eq(r.json["parts"], [], "the parts are gone")
    status, _, body = put_part(1, parts[0])
    check(status == 400 and b"IncorrectState" in body, "no parts once the image has bytes",
          status, body)
    env.gc()
    env.gc()
    no_leftovers(env)


@tap.test
def digest_mismatch_stores_nothing(env):
    t = env.tenant("alice")
    raw = make_raw(scratch(env, "d.raw"), size_mib=2)
    image_id = env.new_image(t, "bad-digest", "raw")
    status, _, body = env.upload(t, image_id, raw, digest="ab" * 32)
    check(status == 400 and b"BadDigest" in body, "a wrong x-amz-content-sha256", status, body)
    row = env.image_row(image_id)
    check_eq((row["state"], row["store_key"], row["stored_bytes"]), ("pending", "", "0"),
             "the image has no bytes")
    no_leftovers(env)


@tap.test
def vhd_dynamic_and_fixed_import(env):
    t = env.tenant("alice")
    raw = make_raw(scratch(env, "v.raw"), size_mib=10, seed=b"vhd")
    for sub in ("dynamic", "fixed"):
        vhd = scratch(env, f"disk-{sub}.vhd")
        qemu_img("convert", "-f", "raw", "-O", "vpc", "-o", f"subformat={sub}", str(raw),
                 str(vhd))
        image_id = env.new_image(t, f"vhd-{sub}", "vhd")
        status, _, body = env.upload(t, image_id, vhd)
        check(status == 202 and b"import_task_id" in body, f"upload of a {sub} VHD is accepted",
              status, body)
        row = env.wait_image(image_id)
        check_eq((row["state"], row["disk_format"]), ("available", "qcow2"),
                 f"the {sub} VHD was imported as qcow2: {row['state_reason']}")
        props = row["properties"]
        check(f'"source_subformat": "{sub}"' in props, "the source format is recorded", props)
        out = scratch(env, f"back-{sub}.qcow2")
        status, _, data = env.curl(t, "GET", f"/v1/images/{image_id}/file", ["-o", str(out)])
        check_eq(status, 200, "download of the imported image")
        check_eq(sha256_file(out), row["sha256"], "downloaded bytes match the recorded digest")
        check(same_disk(raw, out), f"the imported {sub} VHD holds the original disk")
        task = env.psql1(f"SELECT state || ' ' || progress FROM image_tasks "
                         f"WHERE image_id = {sql_quote(image_id)}")
        check_eq(task, "completed 100", "the import task is complete")
    no_leftovers(env)


def corrupt(path, offset_from_end=None, offset=None, data=b"\xff"):
    with open(path, "r+b") as f:
        if offset_from_end is not None:
            f.seek(-offset_from_end, os.SEEK_END)
        else:
            f.seek(offset)
        f.write(data)


@tap.test
def corrupt_vhds_are_refused_with_a_reason(env):
    t = env.tenant("alice")
    raw = make_raw(scratch(env, "c.raw"), size_mib=4)
    good = scratch(env, "good.vhd")
    qemu_img("convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", str(raw), str(good))
    cases = []
    v = scratch(env, "bad-checksum.vhd")
    v.write_bytes(good.read_bytes())
    corrupt(v, offset_from_end=512 - 64, data=b"\x00\x00\x00\x01")  # the footer's checksum
    cases.append((v, b"checksum"))
    v = scratch(env, "truncated.vhd")
    v.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases.append((v, b"vhd"))
    v = scratch(env, "bad-cookie.vhd")
    v.write_bytes(good.read_bytes())
    corrupt(v, offset_from_end=512, data=b"XXXXXXXX")
    cases.append((v, b"vhd"))
    for path, needle in cases:
        image_id = env.new_image(t, path.name, "vhd")
        status, _, body = env.upload(t, image_id, path)
        check(status == 400 and needle in body.lower(), f"{path.name} is refused with a reason",
              status, body)
        check_eq(env.image_row(image_id)["store_key"], "", f"{path.name} left no blob")
    no_leftovers(env)


@tap.test
def ova_import_reads_the_ovf(env):
    t = env.tenant("alice")
    raw = make_raw(scratch(env, "o.raw"), size_mib=8, seed=b"ova")
    vmdk = scratch(env, "disk1.vmdk")
    qemu_img("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", str(raw),
             str(vmdk))
    ova = make_ova(scratch(env, "appliance.ova"), vmdk, vcpus=2, memory_mib=8192)
    image_id = env.new_image(t, "appliance", "ova")
    status, _, body = env.upload(t, image_id, ova)
    check(status == 202, "OVA upload accepted for import", status, body)
    row = env.wait_image(image_id)
    check_eq(row["state"], "available", f"the OVA was imported: {row['state_reason']}")
    props = row["properties"]
    for needle in ('"vcpus": 2', '"memory_mib": 8192', '"os": "Debian 12"',
                   '"manifest_checked": true'):
        check(needle in props, f"the OVF's hardware is on the image: {needle}", props)
    check_eq(row["suggested_type"], "m5.large", "the smallest type with 2 vCPUs and 8 GiB")
    out = scratch(env, "ova-back.qcow2")
    env.curl(t, "GET", f"/v1/images/{image_id}/file", ["-o", str(out)])
    check(same_disk(raw, out), "the OVA's disk is the image")
    no_leftovers(env)


def wait_task(env, creds, task_id, timeout=120):
    deadline = time.monotonic() + timeout
    r = None
    while time.monotonic() < deadline:
        r = env.rest(creds, "GET", f"/v1/image-tasks/{task_id}")
        check(r.status == 200, f"GET /v1/image-tasks/{task_id}", r)
        if r.json["state"] in ("completed", "failed"):
            return r.json
        time.sleep(0.2)
    check(False, f"task {task_id} did not finish", r, env.imaged.tail())


@tap.test
def vhd_to_ova_export_and_back(env):
    """A VHD imported, exported as OVA, the OVA checked by Python's tarfile and hashlib and
    imported again: the disk is the same all the way round."""
    import tarfile
    t = env.tenant("grace")
    raw = make_raw(scratch(env, "rt.raw"), size_mib=9, seed=b"round-trip")
    vhd = scratch(env, "rt.vhd")
    qemu_img("convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", str(raw), str(vhd))
    image_id = env.new_image(t, "round-trip", "vhd")
    status, _, body = env.upload(t, image_id, vhd)
    check(status == 202, "VHD accepted", status, body)
    check_eq(env.wait_image(image_id)["state"], "available", "VHD imported")
    r = env.rest(t, "POST", f"/v1/images/{image_id}/export")
    check(r.status == 202 and r.json["export_task_id"].startswith("export-ami-"), "export", r)
    task = wait_task(env, t, r.json["export_task_id"])
    check_eq(task["state"], "completed", f"the export completed: {task['status_message']}")
    ova = scratch(env, "exported.ova")
    status, headers, _ = env.curl(t, "GET", f"/v1/images/{image_id}/export.ova",
                                  ["-o", str(ova)])
    check_eq((status, sha256_file(ova), ova.stat().st_size),
             (200, task["result_sha256"], task["result_bytes"]), "the OVA as recorded")
    with tarfile.open(ova) as tar:
        names = tar.getnames()
        check_eq(names, [f"{image_id}.ovf", "disk1.vmdk", f"{image_id}.mf"],
                 "descriptor first, then the disk and the manifest")
        data = {n: tar.extractfile(n).read() for n in names}
    for line in data[f"{image_id}.mf"].decode().splitlines():
        name, digest = line[len("SHA256("):].split(")= ")
        check_eq(hashlib.sha256(data[name]).hexdigest(), digest, f"manifest digest of {name}")
    check(b"vmdk.html#streamOptimized" in data[f"{image_id}.ovf"], "the disk is a VMDK")
    vmdk = scratch(env, "exported.vmdk")
    vmdk.write_bytes(data["disk1.vmdk"])
    check(same_disk(raw, vmdk), "the exported disk is the original disk")
    again = env.new_image(t, "round-trip-again", "ova")
    status, _, body = env.upload(t, again, ova)
    check(status == 202, "the exported OVA imports again", status, body)
    check_eq(env.wait_image(again)["state"], "available", "re-imported")
    back = scratch(env, "again.qcow2")
    env.curl(t, "GET", f"/v1/images/{again}/file", ["-o", str(back)])
    check(same_disk(raw, back), "after VHD -> qcow2 -> OVA -> qcow2 the disk is unchanged")
    r = env.rest(env.tenant("bob"), "GET", f"/v1/image-tasks/{task['id']}")
    check(r.status == 400, "another tenant cannot see the task", r)
    no_leftovers(env)


class FileServer:
    """A plain HTTP server on loopback serving one directory, for ImportImage's URLs."""

    def __init__(self, directory):
        import functools
        import http.server

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass
        handler = functools.partial(Quiet, directory=str(directory))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name):
        return f"http://127.0.0.1:{self.port}/{name}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_ec2_task(env, creds, kind, task_id, timeout=120):
    from compute_env import aws
    deadline = time.monotonic() + timeout
    item = None
    while time.monotonic() < deadline:
        if kind == "import":
            out = aws(env, creds, "describe-import-image-tasks", "--import-task-ids", task_id)
            item = out["ImportImageTasks"][0]
        else:
            out = aws(env, creds, "describe-export-image-tasks", "--export-image-task-ids",
                      task_id)
            item = out["ExportImageTasks"][0]
        if item["Status"] != "active":
            return item
        time.sleep(0.3)
    check(False, f"{kind} task {task_id} still active after {timeout} s", item)


@tap.test
def ec2_import_and_export_with_the_aws_cli(env):
    """aws ec2 import-image from a URL (the operator allows loopback here), describe the task,
    launchable image; export-image to VMDK in an OVA; the refusals EC2 clients see."""
    from compute_env import aws, aws_env
    t = env.tenant("ivan")
    raw = make_raw(scratch(env, "ec2.raw"), size_mib=5, seed=b"ec2")
    served = env.tmp / "served"
    served.mkdir(exist_ok=True)
    qemu_img("convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", str(raw),
             str(served / "disk.vhd"))
    srv = FileServer(served)
    try:
        out = aws(env, t, "import-image", "--description", "from a URL", "--disk-containers",
                  f"Format=VHD,Url={srv.url('disk.vhd')}")
        check(out["ImportTaskId"].startswith("import-ami-") and out["Status"] == "active",
              "import-image answers a task", out)
        item = wait_ec2_task(env, t, "import", out["ImportTaskId"])
        check_eq(item["Status"], "completed", f"the import completed: {item}")
        image_id = item["ImageId"]
        img = aws(env, t, "describe-images", "--image-ids", image_id)["Images"][0]
        check_eq((img["State"], img["Description"]), ("available", "from a URL"),
                 "the imported image")
        back = scratch(env, "ec2-back.qcow2")
        env.curl(t, "GET", f"/v1/images/{image_id}/file", ["-o", str(back)])
        check(same_disk(raw, back), "the imported disk is the served VHD's")

        out = aws(env, t, "import-image", "--disk-containers",
                  f"Format=VHD,Url={srv.url('missing.vhd')}")
        item = wait_ec2_task(env, t, "import", out["ImportTaskId"])
        check(item["Status"] == "deleted" and "404" in item.get("StatusMessage", ""),
              "a URL that answers 404 fails the task, saying so", item)

        def refused(args, code):
            r = subprocess.run(["/usr/bin/aws", "--endpoint-url", env.endpoint, "ec2"] + args,
                               capture_output=True, text=True, env=aws_env(t), timeout=60)
            check(r.returncode != 0 and code in r.stderr, f"{args[0]} refused with {code}",
                  r.stderr)
        refused(["import-image", "--disk-containers", "Format=VHD,Url=http://10.1.2.3/x.vhd"],
                "InvalidParameterValue")
        refused(["import-image", "--disk-containers",
                 "Format=VHD,UserBucket={S3Bucket=b,S3Key=k}"], "MissingParameter")
        refused(["import-image", "--disk-containers", f"Format=ISO,Url={srv.url('disk.vhd')}"],
                "InvalidParameterValue")

        out = aws(env, t, "export-image", "--image-id", image_id, "--disk-image-format", "VMDK",
                  "--s3-export-location", "S3Bucket=unused")
        check(out["ExportImageTaskId"].startswith("export-ami-"), "export-image", out)
        item = wait_ec2_task(env, t, "export", out["ExportImageTaskId"])
        check(item["Status"] == "completed" and "export.ova" in item["StatusMessage"],
              "the export completed and says where it is", item)
        status, _, data = env.curl(t, "GET", f"/v1/images/{image_id}/export.ova", [])
        check(status == 200 and data[257:262] == b"ustar", "the OVA downloads", status)
        refused(["export-image", "--image-id", image_id, "--disk-image-format", "RAW",
                 "--s3-export-location", "S3Bucket=unused"], "InvalidParameterValue")
        refused(["describe-import-image-tasks", "--import-task-ids",
                 "import-ami-00000000000000000"], "InvalidConversionTaskId")
    finally:
        srv.close()
    no_leftovers(env)


@tap.test
def corrupt_ovas_fail_the_import_with_a_reason(env):
    t = env.tenant("alice")
    raw = make_raw(scratch(env, "co.raw"), size_mib=2)
    vmdk = scratch(env, "co.vmdk")
    qemu_img("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", str(raw),
             str(vmdk))
    bad_mf = make_ova(scratch(env, "bad-mf.ova"), vmdk, corrupt_digest=True)
    truncated = scratch(env, "truncated.ova")
    good = make_ova(scratch(env, "good.ova"), vmdk)
    truncated.write_bytes(good.read_bytes()[:3000])
    for path, needle in ((bad_mf, "disk1.vmdk"), (truncated, "")):
        image_id = env.new_image(t, path.name, "ova")
        status, _, body = env.upload(t, image_id, path)
        check(status == 202, f"{path.name} accepted for import", status, body)
        row = env.wait_image(image_id)
        check(row["state"] == "failed" and row["state_reason"] and needle in row["state_reason"],
              f"{path.name}: the image failed, saying why", row)
        r = env.rest(t, "GET", "/v1/images", query={"image-id": image_id})
        check(r.status == 200, "the failed image is shown", r)
        task = env.psql1(f"SELECT state FROM image_tasks WHERE image_id = {sql_quote(image_id)}")
        check_eq(task, "failed", "the task failed")
        check_eq(row["stored_bytes"], "0", "a failed import stores (and bills) nothing")
    env.gc()
    no_leftovers(env)


@tap.test
def quota_and_size_limit(env):
    t = env.tenant("carol")
    env.psql(f"INSERT INTO quotas (tenant_id, max_image_bytes) VALUES "
             f"({sql_quote(t.tenant_id)}, {3 << 20}) ON CONFLICT (tenant_id) DO UPDATE "
             f"SET max_image_bytes = excluded.max_image_bytes")
    raw = make_raw(scratch(env, "big.raw"), size_mib=4)
    image_id = env.new_image(t, "too-big", "raw")
    status, _, body = env.upload(t, image_id, raw)
    check(status in (400, 413) and b"ResourceLimitExceeded" in body,
          "an upload over the quota (Content-Length) is refused", status, body)
    status, _, body = env.upload(t, image_id, raw, digest=False, chunked=True)
    check(b"ResourceLimitExceeded" in body, "a chunked upload over the quota is cut off",
          status, body)
    small = make_raw(scratch(env, "small.raw"), size_mib=2)
    status, _, body = env.upload(t, image_id, small)
    check(status == 200, "an upload within the quota", status, body)
    image2 = env.new_image(t, "second", "raw")
    status, _, body = env.upload(t, image2, small)
    check(b"ResourceLimitExceeded" in body, "the quota counts the images already stored",
          status, body)
    # Parts of a multipart upload count too, until joined.
    env.psql(f"UPDATE quotas SET max_image_bytes = {5 << 20} "
             f"WHERE tenant_id = {sql_quote(t.tenant_id)}")
    part = make_raw(scratch(env, "part.raw"), size_mib=2, seed=b"p")
    path = f"/v1/images/{image2}/file"
    sent = [env.curl(t, "PUT", path + f"?part={n}",
                     ["-H", f"x-amz-content-sha256: {sha256_file(part)}", "-T", str(part)])
            for n in (1, 2)]
    check_eq([s[0] for s in sent], [200, 400], "2 MiB stored + 2 MiB part + 2 MiB > 5 MiB")
    check(b"ResourceLimitExceeded" in sent[1][2], "the second part is over the quota", sent[1])
    again = env.curl(t, "PUT", path + "?part=1",
                     ["-H", f"x-amz-content-sha256: {sha256_file(part)}", "-T", str(part)])
    check_eq(again[0], 200, "sending a part again replaces it (not counted twice)")
    r = env.rest(t, "POST", f"{path.rsplit('/', 1)[0]}/parts/complete", {"parts": [1]})
    check(r.status == 200, "joining the parts does not count them twice", r)
    no_leftovers(env)


@tap.test
def gateway_killed_mid_upload(env):
    t = env.tenant("dave")
    raw = make_raw(scratch(env, "kill.raw"), size_mib=64)
    image_id = env.new_image(t, "killed", "raw")
    # A slow upload (curl --limit-rate) that the gateway's death cuts off.
    url = env.endpoint.rstrip("/") + f"/v1/images/{image_id}/file"
    cmd = ["curl", "-sS", "--limit-rate", "4M", "-X", "PUT", "--aws-sigv4",
           "aws:amz:nubo-1:nubo", "--user", f"{t.key_id}:{t.secret}", "-H",
           "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-T", str(raw), url]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (env.store_files() if not env.ceph_conf else [1]):
        time.sleep(0.1)
    time.sleep(1.0 if not env.ceph_conf else 3.0)  # on RADOS: past the first data objects
    env.stop_gateway(signal.SIGKILL)
    p.wait(timeout=30)
    check(p.returncode != 0, "the client saw the upload fail", p.returncode)
    env.start_gateway()
    row = env.image_row(image_id)
    check_eq((row["state"], row["store_key"]), ("pending", ""), "no image was made of it")
    if not env.ceph_conf:
        check(any(f.startswith("tmp/") for f in env.store_files()),
              "the killed upload left a temporary file (collected next)", env.store_files())
    removed = env.gc()
    check(removed >= 1, "the collector removed what the killed upload left", removed)
    no_leftovers(env)
    status, _, body = env.upload(t, image_id, make_raw(scratch(env, "retry.raw"), size_mib=1))
    check(status == 200, "the upload can be made again", status, body)


@tap.test
def imaged_killed_mid_task_is_taken_over(env):
    """A worker that dies holding a task (here: nubo-imaged killed, and the task left active
    with a lease, as a claim leaves it) does not lose it: once the lease has run out another
    worker takes it over, and the image is imported."""
    t = env.tenant("judy")
    raw = make_raw(scratch(env, "lease.raw"), size_mib=4, seed=b"lease")
    vhd = scratch(env, "lease.vhd")
    qemu_img("convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", str(raw), str(vhd))
    env.imaged.kill()
    try:
        image_id = env.new_image(t, "lease", "vhd")
        status, _, body = env.upload(t, image_id, vhd)
        check(status == 202, "accepted while nubo-imaged is down", status, body)
        env.psql(f"UPDATE image_tasks SET state = 'active', attempts = 1, "
                 f"lease_until = now() + interval '3 seconds' "
                 f"WHERE image_id = {sql_quote(image_id)}")
    finally:
        env.start_imaged()
    t0 = time.monotonic()
    row = env.wait_image(image_id)
    check_eq(row["state"], "available", f"imported after the takeover: {row['state_reason']}")
    attempts = env.psql1(f"SELECT attempts FROM image_tasks WHERE image_id = {sql_quote(image_id)}")
    check_eq(attempts, "2", "the task was claimed a second time")
    check(time.monotonic() - t0 >= 1.0, "the live lease was respected until it ran out")
    no_leftovers(env)


@tap.test
def concurrent_uploads_one_wins(env):
    t = env.tenant("erin")
    a = make_raw(scratch(env, "a.raw"), size_mib=8, seed=b"a")
    b = make_raw(scratch(env, "b.raw"), size_mib=8, seed=b"b")
    image_id = env.new_image(t, "raced", "raw")
    results = {}

    def go(name, path):
        results[name] = env.upload(t, image_id, path)
    threads = [threading.Thread(target=go, args=(n, p)) for n, p in (("a", a), ("b", b))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    statuses = sorted(r[0] for r in results.values())
    check(statuses == [200, 400] or statuses == [200, 409],
          "one upload wins, the other is refused", results)
    row = env.image_row(image_id)
    check(row["sha256"] in (sha256_file(a), sha256_file(b)), "the image is the winner's bytes")
    no_leftovers(env)


@tap.test
def storage_is_metered(env):
    t = env.tenant("frank")
    raw = make_raw(scratch(env, "m.raw"), size_mib=3)
    image_id = env.new_image(t, "metered", "raw")
    env.upload(t, image_id, raw)
    env.psql(f"UPDATE images SET state = 'deregistered' WHERE id = {sql_quote(image_id)}")
    events = env.psql1(f"SELECT string_agg(bytes::text, ',' ORDER BY id) FROM "
                       f"image_storage_events WHERE image_id = {sql_quote(image_id)}")
    check_eq(events, f"{raw.stat().st_size},0", "stored bytes, then nothing once deregistered")
    env.gc()
    env.gc()
    check_eq(env.image_row(image_id)["store_key"], "", "the deregistered image's blob is gone")
    no_leftovers(env)


if __name__ == "__main__":
    tap.main()
