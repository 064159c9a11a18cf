"""End-to-end fixture of the image store: nubo_env.NuboEnv (PostgreSQL + nubo-gateway) plus a
real nubo-imaged sharing the gateway's store, and helpers to upload and download image bytes
with curl (--aws-sigv4, the way a tenant's script would) and to build test images with
qemu-img and Python's tarfile (OVA).

The store backend is the file backend in the fixture's directory, or RADOS when the
environment names a Ceph cluster (IMAGE_ENV_CEPH_CONF: a ceph.conf from tests/lib/ceph-up.sh).

Use: tap = nubo_env.Tap(__file__, fixture=image_env.ImageEnv)"""

import hashlib
import io
import os
import subprocess
import tarfile
import time
import urllib.request
from pathlib import Path

import nubo_env
from nubo_env import check

IMAGED = Path(os.environ.get("NUBO_IMAGED_BIN", nubo_env.REPO / "build/debug/bin/nubo-imaged"))


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class ImageEnv(nubo_env.NuboEnv):
    """A cloud with an image store: the gateway streams uploads into it, nubo-imaged imports
    and serves them (garbage collected at once: gc.min_age_s=0, on demand with --gc)."""

    ceph_conf = os.environ.get("IMAGE_ENV_CEPH_CONF")

    def __init__(self):
        super().__init__()
        self.imaged = None
        self.imaged_port = None

    def store_settings(self):
        if self.ceph_conf:
            return {"NUBO_STORE_BACKEND": "rados", "NUBO_STORE_CEPH_CONF": self.ceph_conf,
                    "NUBO_STORE_POOL": os.environ.get("IMAGE_ENV_POOL", "nubo-e2e")}
        return {"NUBO_STORE_BACKEND": "file", "NUBO_STORE_DIR": str(self.tmp / "images")}

    def gateway_env(self, daemon=False):
        env = super().gateway_env(daemon)
        if self.imaged_port is None:
            self.imaged_port = nubo_env.free_port()
        env.update(self.store_settings())
        env["NUBO_IMAGED_URL"] = f"http://127.0.0.1:{self.imaged_port}"
        # EC2 ImportImage may fetch from the tests' own HTTP server on loopback.
        env["NUBO_IMAGES_IMPORT_URL_PREFIXES"] = "http://127.0.0.1:"
        return env

    def imaged_env(self):
        env = self.gateway_env(daemon=True)
        env.update({"NUBO_HTTP_PORT": str(self.imaged_port),
                    "NUBO_IMAGED_SPOOL_DIR": str(self.tmp / "spool"),
                    "NUBO_GC_INTERVAL_S": "0", "NUBO_GC_MIN_AGE_S": "0",
                    "NUBO_IMAGED_LEASE_S": "6", "NUBO_LOG_LEVEL": "debug"})
        return env

    def start(self):
        super().start()
        self.start_imaged()

    def start_imaged(self):
        def ready():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.imaged_port}/healthz",
                                            timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False
        self.imaged = nubo_env.Daemon("nubo-imaged", [str(IMAGED)], self.imaged_env(),
                                      self.tmp / "imaged.log", ready=ready)
        self.imaged.start()

    def close(self):
        errors = []
        if self.imaged:
            status = self.imaged.stop()
            if status not in (None, 0):
                errors.append(f"nubo-imaged exited with status {status}:\n" + self.imaged.tail())
            for marker in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
                if marker in self.imaged.log():
                    errors.append(f"'{marker}' in the nubo-imaged log:\n{self.imaged.tail(60)}")
        return errors + super().close()

    def summary(self):
        backend = "rados" if self.ceph_conf else "file"
        return super().summary() + f", nubo-imaged on :{self.imaged_port} ({backend} store)"

    def gc(self):
        """One collection by `nubo-imaged --gc`; returns how many objects it removed."""
        r = subprocess.run([str(IMAGED), "--gc"], env=self.imaged_env(), capture_output=True,
                           text=True, timeout=60)
        check(r.returncode == 0, "nubo-imaged --gc", r.stdout, r.stderr)
        return int(r.stdout.split()[1])

    def rados_objects(self):
        """Every object of the RADOS store's pool (manifests and data objects)."""
        pool = self.store_settings()["NUBO_STORE_POOL"]
        r = subprocess.run(["rados", "-c", self.ceph_conf, "-p", pool, "ls"],
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, "rados ls", r.stderr)
        return sorted(r.stdout.split())

    def store_files(self):
        """Every file of the file store (committed and temporary), relative to its root; none
        on RADOS."""
        if self.ceph_conf:
            return []
        root = self.tmp / "images"
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    # -- images --

    def new_image(self, creds, name, source_format, **extra):
        body = {"name": name, "source_format": source_format}
        body.update(extra)
        r = self.rest(creds, "POST", "/v1/images", body)
        check(r.status == 201, f"POST /v1/images ({name}, {source_format})", r)
        return r.json["id"]

    def curl(self, creds, method, path, args, timeout=300, stdin=None, may_fail=False):
        """curl with SigV4 for 'creds' against the gateway; returns (status, headers, stdout
        bytes). 'args' are curl's own (-T file, -r range, -H ...). 'may_fail': curl's own
        failure is fine if a response came (a server that answers before the body is sent)."""
        url = self.endpoint.rstrip("/") + path
        cmd = ["curl", "-sS", "-X", method, "--aws-sigv4", "aws:amz:nubo-1:nubo",
               "--user", f"{creds.key_id}:{creds.secret}", "-D", "-", *args, url]
        r = subprocess.run(cmd, capture_output=True, timeout=timeout, stdin=stdin)
        if not (may_fail and r.stdout.startswith(b"HTTP/")):
            check(r.returncode == 0, f"curl {method} {path}", r.stderr.decode(errors="replace"))
        head, _, body = r.stdout.partition(b"\r\n\r\n")
        while head.startswith(b"HTTP/1.1 100"):
            head, _, body = body.partition(b"\r\n\r\n")
        lines = head.decode(errors="replace").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers, body

    def upload(self, creds, image_id, path, digest=True, chunked=False):
        """PUT /v1/images/ID/file with curl; 'digest' signs the file's SHA-256 (or a given
        hex string), else UNSIGNED-PAYLOAD; 'chunked' sends it from a pipe, chunked. Returns
        (status, headers, body)."""
        claim = digest if isinstance(digest, str) else (
            sha256_file(path) if digest else "UNSIGNED-PAYLOAD")
        args = ["-H", f"x-amz-content-sha256: {claim}"]
        target = f"/v1/images/{image_id}/file"
        if chunked:
            with open(path, "rb") as f:
                return self.curl(creds, "PUT", target,
                                 args + ["-H", "Transfer-Encoding: chunked", "-T", "-"],
                                 stdin=f, may_fail=True)
        return self.curl(creds, "PUT", target, args + ["-T", str(path)], may_fail=True)

    def get_image(self, creds, image_id):
        r = self.rest(creds, "GET", "/v1/images", query={"image-id": image_id})
        check(r.status == 200, "GET /v1/images", r)
        imgs = [m for m in r.json["images"] if m["id"] == image_id]
        return imgs[0] if imgs else None

    def image_row(self, image_id):
        cols = ("state", "state_reason", "disk_format", "store_key", "stored_bytes", "sha256",
                "location", "virtual_size", "properties", "suggested_type")
        exprs = ", ".join("COALESCE(%s::text, '')" % c for c in cols)
        out = self.psql1(f"SELECT concat_ws('|', {exprs}) FROM images "
                         f"WHERE id = {nubo_env.sql_quote(image_id)}")
        return dict(zip(cols, out.split("|", len(cols) - 1)))

    def wait_image(self, image_id, states=("available", "failed"), timeout=120):
        deadline = time.monotonic() + timeout
        row = None
        while time.monotonic() < deadline:
            row = self.image_row(image_id)
            if row["state"] in states:
                return row
            time.sleep(0.2)
        check(False, f"image {image_id} did not reach {states} in {timeout} s", row,
              self.imaged.tail() if self.imaged else "")


CEPH_UP = nubo_env.REPO / "tests/lib/ceph-up.sh"


class RadosImageEnv(ImageEnv):
    """ImageEnv on RADOS: start() first starts a throwaway single-node Ceph cluster
    (tests/lib/ceph-up.sh: one monitor, one memstore OSD, on 127.0.0.1), close() stops it."""

    def __init__(self):
        super().__init__()
        self.ceph_dir = None

    def start(self):
        import tempfile
        self.ceph_dir = Path(tempfile.mkdtemp(prefix="nubo-e2e-ceph-")) / "cluster"
        env = dict(os.environ, CEPH_UP_OWNER_PID=str(os.getpid()),
                   CEPH_MEMSTORE_BYTES=str(2 << 30))
        r = subprocess.run([str(CEPH_UP), "start", str(self.ceph_dir)], capture_output=True,
                           text=True, timeout=120, env=env)
        if r.returncode != 0:
            raise RuntimeError(f"ceph-up.sh start failed:\n{r.stderr[-3000:]}")
        self.ceph_conf = str(self.ceph_dir / "ceph.conf")
        super().start()

    def close(self):
        errors = super().close()
        if self.ceph_dir:
            r = subprocess.run([str(CEPH_UP), "stop", str(self.ceph_dir)], capture_output=True,
                               text=True, timeout=120)
            if r.returncode != 0:
                errors.append(f"ceph-up.sh stop: {r.stderr[-1000:]}")
            import shutil
            shutil.rmtree(self.ceph_dir.parent, ignore_errors=True)
        return errors

    def summary(self):
        return super().summary() + f", Ceph in {self.ceph_dir}"


def qemu_img(*args):
    r = subprocess.run(["qemu-img", *args], capture_output=True, text=True, timeout=300)
    check(r.returncode == 0, "qemu-img " + " ".join(args), r.stderr)
    return r.stdout


def make_raw(path, size_mib=8, seed=b"nubo"):
    """A raw disk with recognisable, non-zero content in a few places (sparse elsewhere)."""
    with open(path, "wb") as f:
        f.truncate(size_mib << 20)
        for i in range(0, size_mib, 3):
            f.seek(i << 20)
            f.write(hashlib.sha256(seed + bytes([i])).digest() * 2048)
    return path


def make_ova(path, disk_path, disk_format="vmdk", vcpus=2, memory_mib=2048, manifest=True,
             corrupt_digest=False, extra_files=()):
    """An OVA: an OVF 1.0 descriptor naming 'disk_path' (already in 'disk_format'), the disk,
    and a manifest with SHA-256 digests (one made wrong if 'corrupt_digest')."""
    disk_name = "disk1." + disk_format
    disk_bytes = Path(disk_path).read_bytes()
    uri = {"vmdk": "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized",
           "vhd": "http://technet.microsoft.com/en-us/library/bb676673.aspx",
           "qcow2": "http://www.gnome.org/~markmc/qcow-image-format.html"}[disk_format]
    capacity = int(qemu_img("info", "--output=json", str(disk_path)).split('"virtual-size":')[1]
                   .split(",")[0])
    ovf = f"""<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"
  xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
  xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
  xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
  <References><File ovf:id="file1" ovf:href="{disk_name}" ovf:size="{len(disk_bytes)}"/></References>
  <DiskSection><Info>disks</Info>
    <Disk ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:capacity="{capacity}" ovf:format="{uri}"/>
  </DiskSection>
  <NetworkSection><Info>networks</Info><Network ovf:name="VM Network"><Description>net</Description></Network></NetworkSection>
  <VirtualSystem ovf:id="e2e-appliance"><Info>an appliance</Info><Name>e2e-appliance</Name>
    <OperatingSystemSection ovf:id="96"><Info>os</Info><Description>Debian 12</Description></OperatingSystemSection>
    <VirtualHardwareSection><Info>hardware</Info>
      <Item><rasd:ElementName>{vcpus} CPU</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>{vcpus}</rasd:VirtualQuantity></Item>
      <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:ElementName>RAM</rasd:ElementName><rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>{memory_mib}</rasd:VirtualQuantity></Item>
      <Item><rasd:ElementName>disk</rasd:ElementName><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceType>17</rasd:ResourceType></Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
""".encode()
    files = [("appliance.ovf", ovf), (disk_name, disk_bytes)] + list(extra_files)
    if manifest:
        lines = []
        for name, data in files:
            digest = hashlib.sha256(data).hexdigest()
            if corrupt_digest and name == disk_name:
                digest = ("0" if digest[0] != "0" else "1") + digest[1:]
            lines.append(f"SHA256({name})= {digest}\n")
        files.append(("appliance.mf", "".join(lines).encode()))
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return path
