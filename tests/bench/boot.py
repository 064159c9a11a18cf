#!/usr/bin/python3
"""Benchmark: RunInstances-to-running latency through the whole of nubo (gateway, scheduler,
agent, libvirt, QEMU), beside plain `virsh create` of the same domain XML on the same machine.

    tests/bench/boot.py [--runs N]      (make bench runs it with the release build)

Prints, on lines of their own:
    bench boot_p50_ms, boot_p99_ms                      1 launch at a time (N runs)
    bench boot_10x_p50_ms, boot_10x_p99_ms              10 concurrent RunInstances (per instance)
    bench virsh_create_p50_ms, virsh_create_p99_ms      the same domain XML, `virsh create`
    bench virsh_create_10x_p50_ms, virsh_create_10x_p99_ms   10 `virsh create` at once
    bench boot_vs_virsh_ratio                           boot_p50 / virsh_create_p50

"running" is the time of the instance's recorded transition to running (instance_events, written
in the transaction that makes DescribeInstances show it) after the RunInstances call was sent;
the client polls only every 100 ms, so that it does not load the machine it measures; the baseline is from starting `virsh create` until it returns (the
domain then runs). Both use the same copy-on-write overlay over the same cached base image, made
fresh for each run. The two kinds of runs alternate, so that the noise of this shared machine
hits both alike.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "e2e"))
REPO = HERE.parents[1]
for var, name in (("NUBO_GATEWAY_BIN", "nubo-gateway"), ("NUBO_SCHEDULER_BIN", "nubo-scheduler"),
                  ("NUBO_AGENT_BIN", "nubo-agent")):
    os.environ.setdefault(var, str(REPO / "build/release/bin" / name))

import compute_env  # noqa: E402
import nubo_env  # noqa: E402

VIRSH = compute_env.VIRSH


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def running_at(env, iid):
    """When 'iid' became running (epoch seconds), from its recorded transition; None if not
    yet. The instance_events row is written in the transaction that makes it running, so this
    is what DescribeInstances shows from then on, without a client polling the two cores the
    system under test runs on."""
    v = env.psql1("SELECT extract(epoch FROM min(at)) FROM instance_events "
                  f"WHERE instance_id = '{iid}' AND to_state = 'running'")
    return float(v) if v else None


def wait_running(env, ec2, started):
    """Waits (polling every 100 ms) until every instance of 'started' ({id: epoch seconds of
    its RunInstances call}) runs; returns {id: ms from the call to running}."""
    done = {}
    while len(done) < len(started):
        r = ec2.describe_instances(InstanceIds=list(started))
        for res in r["Reservations"]:
            for i in res["Instances"]:
                if i["State"]["Name"] == "error":
                    raise RuntimeError(f"{i['InstanceId']} went to error: {i.get('StateReason')}")
        for iid, t0 in started.items():
            if iid not in done:
                at = running_at(env, iid)
                if at is not None:
                    done[iid] = (at - t0) * 1000
        time.sleep(0.1)
    return done


def launch_and_wait(env, ec2, image):
    t0 = time.time()
    iid = ec2.run_instances(ImageId=image, InstanceType="t3.nano", MinCount=1,
                            MaxCount=1)["Instances"][0]["InstanceId"]
    return iid, wait_running(env, ec2, {iid: t0})[iid]


def terminate_all(env, ec2, ids):
    ec2.terminate_instances(InstanceIds=ids)
    env.wait_state(env.tenant("bench"), ids, "terminated", timeout=120)


def baseline_xml(env, iid, work):
    """The domain XML nubo made for 'iid' and what its disks are made of, captured while the
    instance exists: (xml, root overlay path, base, base format, virtual size)."""
    import json
    import shutil
    xml = subprocess.run(VIRSH + ["dumpxml", "--inactive", iid], capture_output=True, text=True,
                         check=True).stdout
    root = re.search(r"<source file='([^']*root\.qcow2)'", xml).group(1)
    j = json.loads(subprocess.run(["qemu-img", "info", "--output=json", "-U", root],
                                  capture_output=True, text=True, check=True).stdout)
    for other in re.findall(r"<source file='([^']*)'", xml):
        if other.endswith(("config.iso", "ephemeral.qcow2")):
            keep = work / Path(other).name
            shutil.copy(other, keep)
            os.chmod(keep, 0o644)
            xml = xml.replace(other, str(keep))
    return (xml, root, j["full-backing-filename"], j.get("backing-filename-format", "raw"),
            j["virtual-size"])


def virsh_create(template, tag, work):
    """One `virsh create` of the template under a new name and overlay; returns ms."""
    xml_template, root, base, fmt, vsize = template
    name = f"bench-{tag}"
    d = work / name
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o755)
    xml = xml_template
    xml = re.sub(r"<name>[^<]*</name>", f"<name>{name}</name>", xml)
    xml = re.sub(r"<uuid>[^<]*</uuid>", "", xml)
    xml = re.sub(r"<metadata>.*?</metadata>", "", xml, flags=re.S)
    xml = re.sub(r"<mac address='[^']*'/>", "", xml)
    # The overlay: a fresh qcow2 over the same base as nubo's, as nubo's spawn makes it (not
    # timed: the baseline is libvirt alone).
    overlay = d / "root.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", fmt, "-b", base,
                    str(overlay), str(vsize)], check=True)
    xml = xml.replace(root, str(overlay))
    xml = re.sub(r"<log file='[^']*'", f"<log file='{d}/console.log'", xml)
    path = d / "domain.xml"
    path.write_text(xml)
    t0 = time.monotonic()
    subprocess.run(VIRSH + ["create", str(path)], check=True, capture_output=True)
    ms = (time.monotonic() - t0) * 1000
    return name, ms


def destroy(name):
    subprocess.run(VIRSH + ["destroy", name], capture_output=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=int(os.environ.get("NUBO_BENCH_BOOT_RUNS", 9)))
    args = ap.parse_args()
    env = compute_env.ComputeEnv()
    env.agent_heartbeat_ms = 5000  # the production default: stats are gathered that often
    try:
        env.start()
        image = env.guest_image()
        # Ten t3.nano at once on a 2-CPU machine need more than the default 4.0 CPU ratio.
        r = env.rest(env.admin, "PATCH", f"/v1/admin/hosts/{env.host_id}", {"cpu_ratio": 16})
        if r.status != 200:
            raise RuntimeError(f"could not raise the host's CPU ratio: {r}")
        creds = env.tenant("bench")
        ec2 = env.ec2(creds)
        work = env.tmp / "baseline"
        work.mkdir()
        os.chmod(work, 0o755)
        # Warm-up: fills the agent's image cache, as on any node that ran the image before.
        iid, _ = launch_and_wait(env, ec2, image)
        template = baseline_xml(env, iid, work)
        terminate_all(env, ec2, [iid])

        nubo1, raw1 = [], []
        for k in range(args.runs):
            iid, ms = launch_and_wait(env, ec2, image)
            nubo1.append(ms)
            terminate_all(env, ec2, [iid])
            name, ms = virsh_create(template, f"1-{k}", work)
            raw1.append(ms)
            destroy(name)
            log(f"run {k + 1}/{args.runs}: nubo {nubo1[-1]:.0f} ms, virsh create {ms:.0f} ms")

        nubo10, raw10 = [], []
        for k in range(max(1, args.runs // 3)):
            # Ten RunInstances at once (a thread each), then one poller for all of them: ten
            # Python pollers would load the two cores the system under test runs on.
            started, errors = {}, []

            def one():
                try:
                    t0 = time.time()
                    iid = ec2.run_instances(ImageId=image, InstanceType="t3.nano", MinCount=1,
                                            MaxCount=1)["Instances"][0]["InstanceId"]
                    started[iid] = t0
                except Exception as e:  # noqa: BLE001
                    errors.append(e)
            threads = [threading.Thread(target=one) for _ in range(10)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                raise errors[0]
            done = wait_running(env, ec2, started)
            nubo10 += list(done.values())
            terminate_all(env, ec2, list(done))

            out = []

            def raw(j):
                out.append(virsh_create(template, f"10-{k}-{j}", work))
            threads = [threading.Thread(target=raw, args=(j,)) for j in range(10)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            raw10 += [ms for _, ms in out]
            for name, _ in out:
                destroy(name)
            log(f"10 at once, round {k + 1}: nubo p50 {statistics.median(nubo10):.0f} ms, "
                f"virsh p50 {statistics.median(raw10):.0f} ms")

        figures = [
            ("boot_p50_ms", pct(nubo1, 50)), ("boot_p99_ms", pct(nubo1, 99)),
            ("boot_10x_p50_ms", pct(nubo10, 50)), ("boot_10x_p99_ms", pct(nubo10, 99)),
            ("virsh_create_p50_ms", pct(raw1, 50)), ("virsh_create_p99_ms", pct(raw1, 99)),
            ("virsh_create_10x_p50_ms", pct(raw10, 50)),
            ("virsh_create_10x_p99_ms", pct(raw10, 99)),
        ]
        for name, value in figures:
            print(f"bench {name} {value:.0f} ms")
        print(f"bench boot_vs_virsh_ratio {pct(nubo1, 50) / pct(raw1, 50):.2f} x")
        print(f"bench boot_10x_vs_virsh_10x_ratio {pct(nubo10, 50) / pct(raw10, 50):.2f} x")
    except nubo_env.SkipTest as e:
        log(f"boot benchmark skipped: {e}")
    finally:
        for err in env.close():
            log(f"teardown: {err}")


if __name__ == "__main__":
    main()
