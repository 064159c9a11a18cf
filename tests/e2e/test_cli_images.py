"""End-to-end: the `nubo image ...` commands (sdk/c/cli over libnubo) against a real
nubo-gateway and nubo-imaged (image_env.ImageEnv): streamed uploads signed with the file's
SHA-256 (raw at once; VHD and VMDK through an import task), downloads checked against
x-nubo-sha256 (whole and ranged), exports to OVA, launch permissions with a second tenant,
copies, deletion, the error cases with their exit codes (0 ok, 1 API error, 2 usage or local
file, 3 not found, 4 authentication or permission, 5 unavailable or timed out), the progress bar
(only on a terminal), bounded memory, the SDK example upload_image, the live event stream
(`nubo events`: an import's task events in order, not seen by another tenant) and resumable
multipart uploads (`--part-size`, `--resume`: only the missing and wrong parts sent).
Prints TAP. Run: /usr/bin/python3 tests/e2e/test_cli_images.py"""

import sys

sys.dont_write_bytecode = True

import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pty  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import signal  # noqa: E402
import tarfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import image_env  # noqa: E402
import nubo_env  # noqa: E402
from image_env import make_raw, qemu_img, sha256_file  # noqa: E402
from nubo_env import REPO, TestFailure, check, check_eq  # noqa: E402
from test_cli import BUILD, NUBO, Result, build_sdk, creds_env  # noqa: E402

tap = nubo_env.Tap(__file__, fixture=image_env.ImageEnv)
S = {}  # state shared by the tests, in order

EXAMPLE = BUILD / "examples/upload_image"


def need(key):
    if key not in S:
        raise TestFailure(f"needs '{key}' from an earlier test, which failed")
    return S[key]


def nubo(env, creds, *args, rc=0, timeout=300):
    """Runs the CLI as 'creds' (None: without credentials) and checks its exit status is 'rc'
    (None: any)."""
    e = creds_env(env, creds) if creds else {"PATH": "/usr/bin", "LC_ALL": "C"}
    p = subprocess.run([str(NUBO)] + [str(a) for a in args], capture_output=True, text=True,
                       env=e, timeout=timeout)
    r = Result([str(a) for a in args], p)
    if rc is not None:
        check_eq(r.rc, rc, f"exit status of nubo {' '.join(r.args)}; output\n{r}")
    return r


def fields(r):
    """A field/value table as a dict."""
    return {x["field"]: x.get("value") for x in r.rows()}


def work(env):
    d = env.tmp / "cli-images"
    d.mkdir(exist_ok=True)
    return d


# --- set-up ----------------------------------------------------------------------------------


@tap.test(timeout=300)
def test_build_and_help(env):
    build_sdk()
    S["a"] = env.tenant("img-a")
    S["b"] = env.tenant("img-b")
    verbs = ("list", "show", "register", "upload", "import", "download", "export", "task",
             "permissions", "share", "unshare", "copy", "delete")
    g = nubo(env, None, "image", "--help")
    for verb in verbs:
        check(re.search(rf"^  {verb}\s", g.out, re.M), f"'{verb}' in nubo image --help", g)
        h = nubo(env, None, "image", verb, "--help")
        check(h.out.startswith(f"usage: nubo image {verb}"), f"help of image {verb}", h)
    up = nubo(env, None, "image", "upload", "--help").out
    check("--format FORMAT" in up and "--part-size SIZE" in up and "--resume IMAGE_ID" in up,
          "upload --help names --format, --part-size and --resume", up)
    h = nubo(env, None, "events", "listen", "--help")
    check(h.out.startswith("usage: nubo events listen") and "--count N" in h.out,
          "help of events listen", h)


# --- upload, show, list, download --------------------------------------------------------------


@tap.test(timeout=120)
def test_upload_raw(env):
    a = need("a")
    raw = make_raw(work(env) / "disk.raw", size_mib=8)
    S["raw_file"] = raw
    r = nubo(env, a, "image", "upload", raw, "--name", "cli-raw", "--description", "a raw disk",
             "-o", "json")
    doc = r.json
    check(re.fullmatch(r"ami-[0-9a-f]{17}", doc["id"]), "image id", doc)
    check_eq((doc["state"], doc["name"], doc["description"], doc["disk_format"],
              doc["size_bytes"], doc["sha256"], doc["owner_id"]),
             ("available", "cli-raw", "a raw disk", "raw", 8 << 20, sha256_file(raw),
              a.tenant_id), "uploaded raw image")
    check("import_task_id" not in doc, "no import task for raw", doc)
    check_eq(r.err, "", "no progress bar when stderr is not a terminal")
    S["raw"] = doc["id"]
    row = env.image_row(doc["id"])
    check_eq((row["state"], row["sha256"]), ("available", sha256_file(raw)), "the image's row")


@tap.test
def test_list_and_show(env):
    a, img = need("a"), need("raw")
    lst = nubo(env, a, "image", "list", "--owner", "self", "-o", "json").json
    check_eq([m["id"] for m in lst if m["name"] == "cli-raw"], [img], "image list --owner self")
    rows = nubo(env, a, "image", "list", "--filter", "name=cli-raw").rows()
    check_eq([(x["id"], x["state"]) for x in rows], [(img, "available")], "image list (table)")
    show = nubo(env, a, "image", "show", img, "-o", "json").json
    check_eq((show["id"], show["disk_format"], show["size_bytes"]), (img, "raw", 8 << 20),
             "image show -o json")
    f = fields(nubo(env, a, "image", "show", img))
    check_eq((f["id"], f["state"], f["disk_format"], f["size_bytes"]),
             (img, "available", "raw", str(8 << 20)), "image show (table)")


@tap.test
def test_download(env):
    a, img, raw = need("a"), need("raw"), need("raw_file")
    out = work(env) / "down.raw"
    r = nubo(env, a, "image", "download", img, out, "-o", "json")
    check_eq((r.json["bytes"], r.json["verified"], r.json["sha256"]),
             (8 << 20, True, sha256_file(raw)), "download -o json")
    check_eq(sha256_file(out), sha256_file(raw), "downloaded bytes")
    part = work(env) / "part.raw"
    r = nubo(env, a, "image", "download", img, part, "--range", "bytes=1048576-1049599")
    check("wrote 1024 bytes" in r.out and "verified" not in r.out, "ranged download output", r)
    with open(raw, "rb") as f:
        f.seek(1 << 20)
        check_eq(part.read_bytes(), f.read(1024), "the range's bytes")
    r = nubo(env, a, "image", "download", img, part, "--range", f"bytes={9 << 20}-", rc=1)
    check("InvalidRange" in r.err, "a range past the end", r)
    check(not part.exists(), "a failed download leaves no file", part)
    # Only the owner downloads bytes.
    nubo(env, need("b"), "image", "download", img, work(env) / "b.raw", rc=3)


# --- imports -----------------------------------------------------------------------------------


@tap.test(timeout=180)
def test_upload_vhd_wait(env):
    a, raw = need("a"), need("raw_file")
    vhd = work(env) / "disk.vhd"
    qemu_img("convert", "-f", "raw", "-O", "vpc", str(raw), str(vhd))
    r = nubo(env, a, "image", "upload", vhd, "--name", "cli-vhd", "--wait", "-o", "json")
    doc = r.json
    check_eq((doc["state"], doc["sha256"]), ("available", sha256_file(vhd)), "imported VHD")
    task = doc.get("import_task_id", "")
    check(task.startswith("import-ami-"), "the import task's id", doc)
    t = nubo(env, a, "image", "task", task, "-o", "json").json
    check_eq((t["id"], t["kind"], t["image_id"], t["state"], t["progress"]),
             (task, "import", doc["id"], "completed", 100), "image task -o json")
    f = fields(nubo(env, a, "image", "task", task))
    check_eq((f["state"], f["kind"]), ("completed", "import"), "image task (table)")
    # The imported disk holds the raw disk's contents.
    out = work(env) / "vhd-imported"
    nubo(env, a, "image", "download", doc["id"], out)
    qemu_img("compare", "-q", str(raw), str(out))
    S["vhd"] = doc["id"]


@tap.test(timeout=180)
def test_import_vmdk(env):
    a, raw = need("a"), need("raw_file")
    vmdk = work(env) / "disk.vmdk"
    qemu_img("convert", "-f", "raw", "-O", "vmdk", str(raw), str(vmdk))
    r = nubo(env, a, "image", "import", vmdk, "--name", "cli-vmdk")
    f = fields(r)
    check_eq(f["state"], "available", f"nubo image import waits for the import\n{r}")
    check(f.get("import_task_id", "").startswith("import-ami-"), "import task in the table", r)


# --- exports -----------------------------------------------------------------------------------


@tap.test(timeout=180)
def test_export_ova(env):
    a, img = need("a"), need("raw")
    ova = work(env) / "export.ova"
    r = nubo(env, a, "image", "export", img, ova, "-o", "json")
    check_eq((r.json["verified"], r.json["bytes"]), (True, ova.stat().st_size), "export -o json")
    check_eq(sha256_file(ova), r.json["sha256"], "the OVA's SHA-256")
    with tarfile.open(ova) as tar:
        names = tar.getnames()
    check(names and names[0].endswith(".ovf"), "the OVA's first member is the OVF", names)
    check(any(n.endswith(".vmdk") for n in names) and any(n.endswith(".mf") for n in names),
          "the OVA holds a VMDK and a manifest", names)
    # Without FILE: the task is started and named.
    r = nubo(env, a, "image", "export", img, "-o", "json")
    task = r.json["export_task_id"]
    check(task.startswith("export-ami-"), "export task id", r)
    t = nubo(env, a, "image", "task", task, "--wait", "-o", "json").json
    check_eq((t["kind"], t["state"]), ("export", "completed"), "image task --wait")
    check(t["result_bytes"] > 0 and len(t["result_sha256"]) == 64, "export result", t)


# --- launch permissions, copies, deletion ------------------------------------------------------


@tap.test
def test_share_unshare(env):
    a, b, img = need("a"), need("b"), need("raw")
    nubo(env, b, "image", "show", img, rc=3)
    p = nubo(env, a, "image", "share", img, b.tenant_id, "-o", "json").json
    check_eq((p["image_id"], p["public"], p["tenants"]), (img, False, [b.tenant_id]),
             "image share")
    check_eq(nubo(env, b, "image", "show", img, "-o", "json").json["id"], img,
             "the tenant shared with sees the image")
    f = fields(nubo(env, a, "image", "permissions", img))
    check_eq((f["public"], f["tenants"]), ("no", b.tenant_id), "image permissions (table)")
    r = nubo(env, b, "image", "permissions", img, rc=4)
    check("AuthFailure" in r.err, "another tenant may not read the permissions", r)
    p = nubo(env, a, "image", "unshare", img, b.tenant_id, "-o", "json").json
    check_eq(p["tenants"], [], "image unshare")
    nubo(env, b, "image", "show", img, rc=3)
    p = nubo(env, a, "image", "share", img, "--public", "-o", "json").json
    check_eq(p["public"], True, "image share --public")
    nubo(env, b, "image", "show", img)
    p = nubo(env, a, "image", "unshare", img, "--public", "-o", "json").json
    check_eq(p["public"], False, "image unshare --public")
    nubo(env, b, "image", "show", img, rc=3)
    r = nubo(env, a, "image", "share", img, "999999999999", rc=1)
    check("InvalidAMIAttributeItemValue" in r.err, "sharing with an unknown tenant", r)
    nubo(env, a, "image", "share", img, rc=2)


@tap.test(timeout=120)
def test_copy(env):
    a, b, img = need("a"), need("b"), need("raw")
    doc = nubo(env, a, "image", "copy", img, "--name", "cli-copy", "--wait", "-o", "json").json
    check_eq((doc["state"], doc["source_image_id"], doc["name"]), ("available", img, "cli-copy"),
             "image copy --wait")
    out = work(env) / "copy.raw"
    nubo(env, a, "image", "download", doc["id"], out)
    check_eq(sha256_file(out), sha256_file(need("raw_file")), "the copy's bytes")
    S["copy"] = doc["id"]
    # Another tenant copies an image shared with it.
    nubo(env, a, "image", "share", img, b.tenant_id)
    f = fields(nubo(env, b, "image", "copy", img, "--name", "b-copy", "--wait"))
    check_eq((f["state"], f["source_image"], f["owner"]), ("available", img, b.tenant_id),
             "a copy of a shared image (table)")
    nubo(env, a, "image", "unshare", img, b.tenant_id)
    r = nubo(env, a, "image", "copy", img, "--name", "cli-copy", rc=1)
    check("InvalidAMIName.Duplicate" in r.err, "a copy's name in use", r)
    nubo(env, a, "image", "copy", img, rc=2)


@tap.test
def test_delete(env):
    a, copy = need("a"), need("copy")
    r = nubo(env, need("b"), "image", "delete", need("raw"), rc=3)
    check("NotFound" in r.err, "another tenant's image", r)
    check_eq(nubo(env, a, "image", "delete", copy).out.strip(), f"deleted image {copy}",
             "image delete")
    nubo(env, a, "image", "show", copy, rc=3)
    r = nubo(env, a, "image", "delete", copy, "-o", "json", rc=3)
    check("InvalidAMIID.NotFound" in r.err, "deleting twice", r)


# --- errors ------------------------------------------------------------------------------------


@tap.test(timeout=120)
def test_errors(env):
    a = need("a")
    d = work(env)
    unknown = "ami-00000000000000000"
    for args in (("show", unknown), ("download", unknown, d / "x"), ("export", unknown),
                 ("permissions", unknown), ("delete", unknown),
                 ("copy", unknown, "--name", "x")):
        r = nubo(env, a, "image", *args, rc=None)
        check(r.rc in (1, 3), f"image {args[0]} of an unknown image", r)
        check_eq(r.rc, 3 if "NotFound" in r.err else 1, f"exit status of {args[0]}")
    nubo(env, a, "image", "show", unknown, rc=3)
    nubo(env, a, "image", "download", unknown, d / "x", rc=3)
    check(not (d / "x").exists(), "no file left by a failed download")
    r = nubo(env, a, "image", "show", "not-an-id", rc=1)
    check("Malformed" in r.err, "a malformed id", r)
    r = nubo(env, a, "image", "task", "import-ami-00000000000000000", rc=None)
    check(r.rc in (1, 3) and r.err, "an unknown task", r)
    # Bad files: nothing is made.
    before = {m["name"] for m in nubo(env, a, "image", "list", "--owner", "self",
                                      "-o", "json").json}
    r = nubo(env, a, "image", "upload", d / "missing.raw", "--name", "cli-missing", rc=2)
    check("missing.raw" in r.err, "a missing file is named", r)
    nubo(env, a, "image", "upload", d, "--name", "cli-dir", "--format", "raw", rc=2)
    (d / "disk.bin").write_bytes(b"\0" * 4096)
    r = nubo(env, a, "image", "upload", d / "disk.bin", "--name", "cli-bin", rc=2)
    check("--format" in r.err, "an extension that names no format", r)
    nubo(env, a, "image", "upload", d / "disk.bin", "--name", "x", "--format", "iso", rc=2)
    nubo(env, a, "image", "upload", d / "disk.bin", rc=2)
    # A format mismatch: the API refuses the bytes, the CLI drops the image it made.
    r = nubo(env, a, "image", "upload", need("raw_file"), "--name", "cli-mismatch",
             "--format", "qcow2", rc=1)
    check("InvalidParameterValue" in r.err and "deleted image" in r.err,
          "a raw file declared qcow2", r)
    after = {m["name"] for m in nubo(env, a, "image", "list", "--owner", "self",
                                     "-o", "json").json}
    check_eq(after, before, "images after the failed uploads")
    r = nubo(env, a, "image", "upload", d / "disk.bin", "--name", "cli-vhd", "--format", "raw",
             rc=1)
    check("InvalidAMIName.Duplicate" in r.err, "a name in use", r)
    nubo(env, a, "image", "download", need("raw"), d / "y", "--range", "0-10", rc=2)
    r = nubo(env, a, "image", "download", need("raw"), d / "no-such-dir/y", rc=2)
    check("no-such-dir" in r.err, "an output file that cannot be created", r)
    # Bad credentials: exit 4.
    bad = nubo_env.Creds(a.key_id, "wrong-secret", a.tenant_id, "bad")
    nubo(env, bad, "image", "upload", need("raw_file"), "--name", "cli-bad", rc=4)


# --- the event stream --------------------------------------------------------------------------


class Listener:
    """`nubo events ...` in the background as 'creds', its output lines collected as they come."""

    def __init__(self, env, creds, *args):
        self.p = subprocess.Popen([str(NUBO), "events", *args], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=creds_env(env, creds))
        self.out, self.err = [], []
        self.live = threading.Event()
        threading.Thread(target=self._read, args=(self.p.stdout, self.out), daemon=True).start()
        threading.Thread(target=self._read, args=(self.p.stderr, self.err), daemon=True).start()

    def _read(self, f, lines):
        for line in f:
            lines.append(line.rstrip("\n"))
            if "listening for events" in line:
                self.live.set()

    def wait_live(self, timeout=15):
        check(self.live.wait(timeout), "nubo events says it is listening", self.err)

    def wait_for(self, pred, timeout=60):
        """Waits until an output line satisfies 'pred'."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(pred(x) for x in list(self.out)):
                return
            if self.p.poll() is not None:
                time.sleep(0.2)  # the reader threads catch up
                break
            time.sleep(0.05)
        check(any(pred(x) for x in list(self.out)), "the awaited event came", self.out, self.err)

    def finish(self, timeout=30):
        """Waits for the exit (killing it on the timeout); returns the exit status."""
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise TestFailure(f"nubo events did not exit: {self.out} {self.err}")

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(10)


@tap.test(timeout=120)
def test_events_task_progress(env):
    a, b = need("a"), need("b")
    vhd = work(env) / "disk.vhd"
    check(vhd.exists(), "the VHD of test_upload_vhd_wait", vhd)
    # Three listeners, all live before the import starts (the stream has no replay): the whole
    # JSON stream of tenant a, a table of its first two task events, and tenant b's stream.
    full = Listener(env, a, "--type", "task", "--output", "json", "--timeout", "100")
    two = Listener(env, a, "--type", "task", "--count", "2")
    other = Listener(env, b, "--output", "json")
    try:
        for x in (full, two, other):
            x.wait_live()
        r = nubo(env, a, "image", "upload", vhd, "--name", "cli-events-vhd", "--wait", "-o",
                 "json")
        task = r.json["import_task_id"]
        full.wait_for(lambda line: task in line and '"completed"' in line)
        check_eq(two.finish(), 0, f"nubo events --count 2 exits 0 after two events\n{two.err}")
    finally:
        other.stop()
        full.stop()
    got = [json.loads(line) for line in full.out]
    mine = [e for e in got if e.get("task_id") == task]
    check(len(mine) == len(got), "only the task of tenant a's import came", got)
    rows = env.psql("SELECT id, state, progress, message FROM task_events "
                    f"WHERE task_id = '{task}' ORDER BY id")
    # An event's id says where the stream stood: "<instance events>.<task events>".
    check_eq([(e["event_id"].split(".")[-1], e["event"], e["state"], e["progress"], e["message"])
              for e in mine],
             [(i, "task", st, int(pr), msg) for i, st, pr, msg in rows],
             "every task event of the import, in order, as the database has them")
    check(len(rows) >= 2 and rows[-1][1] == "completed", "the import ended completed", rows)
    check(all(e["image_id"] == r.json["id"] and e["kind"] == "import"
              and e["tenant_id"] == a.tenant_id for e in mine), "the events' fields", mine)
    check_eq(two.out[0].split()[:3], ["RECEIVED", "TYPE", "ID"], "the table's header")
    check_eq([line.split()[1:4] for line in two.out[1:]],
             [["task", mine[i]["event_id"], task] for i in range(2)],
             "the table: the first two task events, a line each")
    check_eq(other.out, [], "tenant b saw none of tenant a's events")
    # Resuming after the first event: the rest are sent again at once.
    again = nubo(env, a, "events", "--type", "task", "--last-event-id", mine[0]["event_id"],
                 "--count", len(mine) - 1, "--timeout", "20", "-o", "json", timeout=30)
    check_eq([json.loads(line)["event_id"] for line in again.out.splitlines()],
             [e["event_id"] for e in mine[1:]], "--last-event-id: the events after it, again")
    S["events_vhd"] = r.json["id"]


@tap.test(timeout=60)
def test_events_errors(env):
    a = need("a")
    t0 = time.monotonic()
    r = nubo(env, a, "events", "--type", "task", "--count", "1", "--timeout", "1", rc=5)
    check(time.monotonic() - t0 < 10 and "timed out" in r.err,
          "--count not reached by --timeout: exit 5", r)
    r = nubo(env, a, "events", "--timeout", "1")
    check_eq(r.rc, 0, "--timeout without --count: exit 0")
    bad = nubo_env.Creds(a.key_id, "wrong-secret", a.tenant_id, "bad")
    r = nubo(env, bad, "events", "--count", "1", rc=4)
    check("SignatureDoesNotMatch" in r.err or "AuthFailure" in r.err, "a bad key: exit 4", r)
    nubo(env, a, "events", "--type", "volume", rc=2)
    nubo(env, a, "events", "--count", "0", rc=2)


# --- resumable multipart uploads --------------------------------------------------------------


@tap.test(timeout=120)
def test_upload_resume_parts(env):
    a = need("a")
    part = 256 << 10
    f = make_raw(work(env) / "parts.raw", size_mib=1, seed=b"parts")
    data = f.read_bytes()
    data += hashlib.sha256(b"tail").digest() * 16  # a last part shorter than the others
    f.write_bytes(data)
    chunks = [data[i:i + part] for i in range(0, len(data), part)]
    check_eq(len(chunks), 5, "the file is five parts")
    img = env.rest(a, "POST", "/v1/images", body={"name": "cli-parts", "source_format": "raw"})
    check_eq(img.status, 201, f"create the image\n{img}")
    image_id = img.json["id"]

    def put(n, content):
        r = env.rest(a, "PUT", f"/v1/images/{image_id}/file", raw=content, query={"part": n},
                     headers={"Content-Type": "application/octet-stream",
                              "x-amz-content-sha256": hashlib.sha256(content).hexdigest()})
        check_eq(r.status, 200, f"PUT part {n}\n{r}")

    # An interrupted upload: parts 1 and 3 right, part 2 with other bytes, 4 and 5 missing.
    put(1, chunks[0])
    put(2, b"\x55" * len(chunks[1]))
    put(3, chunks[2])
    before = env.rest(a, "GET", f"/v1/images/{image_id}/parts")
    check_eq(before.status, 200, f"GET parts\n{before}")
    check_eq([(x["part"], x["size_bytes"], x["sha256"]) for x in before.json["parts"]],
             [(1, part, hashlib.sha256(chunks[0]).hexdigest()),
              (2, part, hashlib.sha256(b"\x55" * part).hexdigest()),
              (3, part, hashlib.sha256(chunks[2]).hexdigest())], "the parts before the resume")
    t0 = env.psql1("SELECT clock_timestamp()")
    r = nubo(env, a, "image", "upload", f, "--resume", image_id, "--part-size", "256K", "-o",
             "json")
    check_eq((r.json["id"], r.json["state"], r.json["sha256"], r.json["size_bytes"]),
             (image_id, "available", sha256_file(f), len(data)), "the resumed image")
    check_eq((r.json["upload_parts"]["parts"], r.json["upload_parts"]["sent"],
              r.json["upload_parts"]["skipped"]), (5, 3, 2), "parts sent and skipped")
    log = env.psql("SELECT action, params::text, http_status FROM request_log "
                   f"WHERE access_key_id = '{a.key_id}' AND \"time\" >= '{t0}' "
                   "ORDER BY \"time\"")
    # The log does not keep the part number; but parts 4 and 5 were missing and part 2 wrong,
    # and the join below checks the whole file's SHA-256: three PUTs can only be 2, 4 and 5.
    check_eq([row[0].split()[0] for row in log if "/parts" in row[0] or "/file" in row[0]],
             ["GET", "PUT", "PUT", "PUT", "POST"],
             f"the request log: the parts listed, three PUT (not five), the join\n{log}")
    check(all(row[2] == "200" for row in log), "every request succeeded", log)
    out = work(env) / "parts.down"
    nubo(env, a, "image", "download", image_id, out)
    check_eq(out.read_bytes() == data, True, "the download equals the file")
    after = env.rest(a, "GET", f"/v1/images/{image_id}/parts")
    check_eq((after.status, after.json.get("parts")), (200, []), "no parts left after the join")
    # A fresh upload in parts makes the image itself.
    r = nubo(env, a, "image", "upload", f, "--name", "cli-parts-new", "--part-size", "512K",
             "-o", "json")
    check_eq((r.json["state"], r.json["sha256"], r.json["upload_parts"]["sent"]),
             ("available", sha256_file(f), 3), "an upload in parts of 512K")
    r = nubo(env, a, "image", "upload", f, "--resume", image_id, "--name", "x", rc=2)
    check("--resume" in r.err, "--resume with --name is a usage error", r)
    nubo(env, a, "image", "upload", f, "--name", "y", "--part-size", "1K", rc=2)


# --- terminals, memory, the SDK example ---------------------------------------------------------


@tap.test(timeout=120)
def test_progress_bar_on_a_terminal(env):
    a = need("a")
    raw = make_raw(work(env) / "tty.raw", size_mib=4, seed=b"tty")
    master, slave = pty.openpty()
    try:
        p = subprocess.run([str(NUBO), "image", "upload", str(raw), "--name", "cli-tty", "-o",
                            "json"], stdout=subprocess.PIPE, stderr=slave,
                           env=creds_env(env, a), timeout=120)
        os.close(slave)
        slave = None
        err = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            err += chunk
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    check_eq(p.returncode, 0, f"upload on a terminal: {err!r}")
    text = err.decode(errors="replace")
    check("hashing" in text and "uploading" in text and "100%" in text,
          "the progress bar on a terminal", text[-2000:])
    check_eq(json.loads(p.stdout)["state"], "available", "the upload's output")


@tap.test(timeout=300)
def test_upload_in_bounded_memory(env):
    a = need("a")
    big = work(env) / "big.raw"
    make_raw(big, size_mib=256, seed=b"big")
    p = subprocess.run(["/usr/bin/time", "-f", "maxrss_kib=%M", str(NUBO), "image", "upload",
                        str(big), "--name", "cli-big", "-o", "json"], capture_output=True,
                       text=True, env=creds_env(env, a), timeout=280)
    check_eq(p.returncode, 0, f"upload of 256 MiB\n{p.stdout}\n{p.stderr}")
    rss = int(re.search(r"maxrss_kib=(\d+)", p.stderr).group(1))
    print(f"# nubo image upload of 256 MiB: max RSS {rss} KiB")
    check(rss < 48 * 1024, f"nubo used {rss} KiB to upload 256 MiB (a streamed upload keeps "
          "well under 48 MiB)")
    doc = json.loads(p.stdout)
    check_eq((doc["size_bytes"], doc["sha256"]), (256 << 20, sha256_file(big)), "big upload")
    big.unlink()
    r = nubo(env, a, "image", "delete", doc["id"])
    check(r.rc == 0, "delete the big image", r)


SDK_UPLOADS = r"""
#include <nubo/nubo.h>
#include <stdio.h>
/* Uploads argv[1] into a new raw image argv[2] with a wrong digest, then right, then again. */
int main(int argc, char **argv)
{
    struct nubo_error err;
    struct nubo_client *c = argc == 3 ? nubo_client_from_config(NULL, NULL, &err) : NULL;
    struct nubo_image_params p = {.name = argv[2]};
    struct nubo_image *m = c ? nubo_image_create(c, &p, "raw", &err) : NULL;
    if (!m) {
        printf("set-up failed\n");
        return 1;
    }
    static const char *const digests[] = {
        "0000000000000000000000000000000000000000000000000000000000000000", NULL, NULL};
    for (int i = 0; i < 3; i++) {
        struct nubo_upload_result up;
        if (nubo_image_upload(c, m->id, argv[1], digests[i], NULL, NULL, &up, &err) < 0) {
            printf("%d %s\n", err.http_status, err.code);
        } else {
            printf("ok %s %s\n", up.state, up.sha256);
        }
    }
    nubo_image_free(m);
    nubo_client_free(c);
    return 0;
}
"""


@tap.test(timeout=120)
def test_sdk_upload_digest_and_state(env):
    src = work(env) / "sdk_uploads.c"
    src.write_text(SDK_UPLOADS)
    exe = work(env) / "sdk_uploads"
    r = subprocess.run(["cc", "-std=c17", "-Wall", "-Wextra", "-Werror",
                        f"-I{REPO / 'sdk/c/include'}", str(src), "-o", str(exe), f"-L{BUILD}",
                        f"-Wl,-rpath,{BUILD}", "-lnubo"], capture_output=True, text=True,
                       timeout=60)
    check_eq(r.returncode, 0, f"compile the SDK check\n{r.stderr}")
    raw = need("raw_file")
    r = subprocess.run([str(exe), str(raw), "sdk-uploads"], capture_output=True, text=True,
                       env=creds_env(env, need("a")), timeout=90)
    check_eq(r.stdout.splitlines(),
             ["400 BadDigest", f"ok available {sha256_file(raw)}", "400 IncorrectState"],
             f"a wrong digest stores nothing, the right one does, a second upload is refused\n"
             f"{r.stderr}")


@tap.test(timeout=180)
def test_example_upload_image(env):
    build_sdk()
    check(EXAMPLE.exists(), f"{EXAMPLE} is built by make -C sdk/c")
    raw = need("raw_file")
    qcow2 = work(env) / "example.qcow2"
    qemu_img("convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2))
    e = creds_env(env, need("a"))
    r = subprocess.run([str(EXAMPLE), str(qcow2), "qcow2", "example-qcow2"],
                       capture_output=True, text=True, env=e, timeout=120)
    check_eq(r.returncode, 0, f"upload_image qcow2\n{r.stdout}\n{r.stderr}")
    check("hashing 100%" in r.stdout and "uploading 100%" in r.stdout,
          "upload_image reports progress", r.stdout)
    m = re.search(r"^(ami-[0-9a-f]{17}) available \(sha256 ([0-9a-f]{64}), (\d+) bytes\)$",
                  r.stdout, re.M)
    check(m, "upload_image's last line", r.stdout)
    check_eq((m.group(2), int(m.group(3))), (sha256_file(qcow2), qcow2.stat().st_size),
             "what upload_image sent")
    check_eq(env.image_row(m.group(1))["disk_format"], "qcow2", "the example's image")
    vhd = work(env) / "disk.vhd"
    r = subprocess.run([str(EXAMPLE), str(vhd), "vhd", "example-vhd"],
                       capture_output=True, text=True, env=e, timeout=150)
    check_eq(r.returncode, 0, f"upload_image vhd\n{r.stdout}\n{r.stderr}")
    check("import completed 100%" in r.stdout and " available " in r.stdout,
          "upload_image waits for the import", r.stdout)
    r = subprocess.run([str(EXAMPLE), str(qcow2), "vhd", "example-bad"],
                       capture_output=True, text=True, env=e, timeout=60)
    check_eq(r.returncode, 1, f"upload_image of a qcow2 declared vhd\n{r.stdout}\n{r.stderr}")


if __name__ == "__main__":
    tap.main()
