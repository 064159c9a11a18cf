#!/usr/bin/python3
"""Benchmark: image upload and download through nubo-gateway into the image store, beside the
raw write speed of the same backend on this machine, measured in the same run.

    tests/bench/image.py [--gib N] [--runs R]      (make bench runs it with the release build)

For each backend (the file store always; RADOS when a Ceph cluster can be started with
tests/lib/ceph-up.sh), R rounds, alternating:
  - raw: `dd if=/dev/zero bs=4M conv=fsync` into the store's directory (file), or `rados bench
    write -b 4194304 -t 4` into the store's pool (RADOS);
  - upload: `curl -T` of an N GiB file (sparse: its reads cost nothing) with
    x-amz-content-sha256 set to its digest, so the gateway hashes every byte and checks it;
  - download: `curl` of the same image back (GET /v1/images/ID/file), to /dev/null.
Peak RSS is the largest resident size of the gateway sampled (every 20 ms) during the uploads;
the log line also gives its VmHWM over the whole run, downloads included.

Prints, on lines of their own (medians of the rounds):
    bench image_raw_write_file_mib_s, image_upload_file_mib_s, image_download_file_mib_s
    bench image_upload_ratio_file                 upload / raw
    bench image_raw_write_rados_mib_s, image_upload_rados_mib_s, image_download_rados_mib_s
    bench image_upload_ratio_rados
    bench image_upload_peak_rss_mib               the gateway's peak RSS during the uploads
"""

import argparse
import hashlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "e2e"))
REPO = HERE.parents[1]
for var, name in (("NUBO_GATEWAY_BIN", "nubo-gateway"), ("NUBO_IMAGED_BIN", "nubo-imaged")):
    os.environ.setdefault(var, str(REPO / "build/release/bin" / name))

import image_env  # noqa: E402

CEPH_UP = REPO / "tests/lib/ceph-up.sh"


def log(msg):
    print(f"# {msg}", file=sys.stderr, flush=True)


def sparse_file(path, size):
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def zeros_sha256(size):
    h = hashlib.sha256()
    block = bytes(1 << 20)
    for _ in range(size >> 20):
        h.update(block)
    return h.hexdigest()


def vm_hwm_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def vm_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    """The largest resident size of process 'pid' seen while it runs (sampled every 20 ms)."""

    def __init__(self, pid):
        import threading
        self.pid, self.peak, self.stop = pid, 0.0, False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            self.peak = max(self.peak, vm_rss_mib(self.pid))
            time.sleep(0.02)

    def close(self):
        self.stop = True
        self.thread.join()
        return self.peak


def dd_mib_s(directory, size):
    path = Path(directory) / "dd-baseline"
    t0 = time.monotonic()
    subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=4M", f"count={size >> 22}",
                    "conv=fsync", "status=none"], check=True)
    dt = time.monotonic() - t0
    path.unlink()
    return (size >> 20) / dt


def rados_bench_mib_s(conf, pool, seconds):
    r = subprocess.run(["rados", "-c", conf, "-p", pool, "bench", str(seconds), "write", "-b",
                        "4194304", "-t", "4"], capture_output=True, text=True, timeout=seconds + 120)
    if r.returncode != 0:
        raise RuntimeError(f"rados bench failed: {r.stderr[-2000:]}")
    m = re.search(r"Bandwidth \(MB/sec\):\s+([0-9.]+)", r.stdout)
    subprocess.run(["rados", "-c", conf, "-p", pool, "cleanup"], capture_output=True, timeout=120)
    return float(m.group(1)) * 1e6 / (1 << 20)  # rados bench's MB is 10^6 bytes


def run_backend(label, env, size, runs, src, digest):
    t = env.tenant("bench")
    raws, ups, downs, rss = [], [], [], []
    for i in range(runs):
        if env.ceph_conf:
            # Short: the OSD keeps what it stores in RAM (memstore), about 1 GB at this speed.
            raw = rados_bench_mib_s(env.ceph_conf, "nubo-bench-raw", 4)
        else:
            raw = dd_mib_s(env.tmp / "images", size)
        image_id = env.new_image(t, f"bench-{label}-{i}", "raw")
        sampler = RssSampler(env.gw_proc.pid)
        t0 = time.monotonic()
        status, _, body = env.upload(t, image_id, src, digest=digest)
        up = (size >> 20) / (time.monotonic() - t0)
        rss.append(sampler.close())
        if status != 200:
            raise RuntimeError(f"upload failed: {status} {body[:300]!r}")
        t0 = time.monotonic()
        status, _, _ = env.curl(t, "GET", f"/v1/images/{image_id}/file", ["-o", "/dev/null"])
        down = (size >> 20) / (time.monotonic() - t0)
        log(f"{label} round {i + 1}: raw {raw:.0f} MiB/s, upload {up:.0f} MiB/s, "
            f"download {down:.0f} MiB/s")
        raws.append(raw)
        ups.append(up)
        downs.append(down)
        env.psql(f"UPDATE images SET state = 'deregistered' WHERE id = '{image_id}'")
        env.gc()
        env.gc()
    raw, up, down = (statistics.median(x) for x in (raws, ups, downs))
    print(f"bench image_raw_write_{label}_mib_s {raw:.0f} MiB/s")
    print(f"bench image_upload_{label}_mib_s {up:.0f} MiB/s")
    print(f"bench image_download_{label}_mib_s {down:.0f} MiB/s")
    print(f"bench image_upload_ratio_{label} {up / raw:.2f} ratio", flush=True)
    return max(rss)


def bench(label, size, runs, scratch, ceph_conf=None):
    image_env.ImageEnv.ceph_conf = ceph_conf
    with image_env.ImageEnv() as env:
        src = sparse_file(scratch / "upload.img", size)
        digest = zeros_sha256(size)
        base = vm_rss_mib(env.gw_proc.pid)
        upload_peak = run_backend(label, env, size, runs, src, digest)
        return base, upload_peak, vm_hwm_mib(env.gw_proc.pid)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=int, default=4, help="upload size in GiB (4)")
    ap.add_argument("--runs", type=int, default=3, help="rounds per backend (3)")
    ap.add_argument("--only", choices=("file", "rados"), help="one backend only")
    args = ap.parse_args()
    size = args.gib << 30
    scratch = Path(tempfile.mkdtemp(prefix="nubo-bench-image-"))
    peak = []
    try:
        if args.only != "rados":
            base, up, hwm = bench("file", size, args.runs, scratch)
            log(f"gateway RSS: {base:.0f} MiB idle, {up:.0f} MiB peak during uploads, "
                f"{hwm:.0f} MiB peak over the run, downloads included (file)")
            peak.append(up)
        ceph_dir = scratch / "ceph"
        r = None
        if args.only != "file" and CEPH_UP.exists():
            r = subprocess.run([str(CEPH_UP), "start", str(ceph_dir)], capture_output=True,
                               text=True, timeout=180,
                               env=dict(os.environ, CEPH_MEMSTORE_BYTES=str(6 << 30)))
        if r is None or r.returncode != 0:
            log("no Ceph cluster: RADOS figures skipped" +
                (f" ({r.stderr.strip()[-500:]})" if r else ""))
        else:
            try:
                subprocess.run(["ceph", "-c", str(ceph_dir / "ceph.conf"), "osd", "pool",
                                "create", "nubo-bench-raw"], capture_output=True, timeout=60)
                # RADOS keeps its data in the OSD's memory (memstore): a smaller image.
                rsize = min(size, 512 << 20)
                base, up, hwm = bench("rados", rsize, args.runs, scratch,
                                      str(ceph_dir / "ceph.conf"))
                log(f"gateway RSS: {base:.0f} MiB idle, {up:.0f} MiB peak during uploads, "
                    f"{hwm:.0f} MiB peak over the run, downloads included (rados)")
                peak.append(up)
            finally:
                subprocess.run([str(CEPH_UP), "stop", str(ceph_dir)], capture_output=True,
                               timeout=120)
        print(f"bench image_upload_peak_rss_mib {max(peak):.0f} MiB", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
