#!/usr/bin/python3
"""Real VMs end to end: the AWS CLI launches the busybox test guest through nubo-gateway,
nubo-scheduler places it, nubo-agent boots it with libvirt/QEMU; the console shows the guest's
marker and user-data; stop, start, reboot and terminate work and leave nothing behind. Then the
agent is SIGKILLed in the middle of launches and restarted: every instance ends running or in
error with a reason, and no domain runs that the control plane does not know."""

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

import compute_env
import nubo_env
from compute_env import aws
from nubo_env import check, check_eq, sql_quote

tap = nubo_env.Tap(__file__, per_test_timeout=240, fixture=compute_env.ComputeEnv)


def console(env, creds, instance_id):
    out = aws(env, creds, "get-console-output", "--instance-id", instance_id)
    check_eq(out.get("InstanceId"), instance_id, "GetConsoleOutput's InstanceId")
    # The CLI decodes the base64 output.
    return out.get("Output") or ""


def wait_console(env, creds, instance_id, needle, timeout=90, count=1):
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = console(env, creds, instance_id)
        if text.count(needle) >= count:
            return text
        time.sleep(0.5)
    check(False, f"'{needle}' (x{count}) not on the console of {instance_id} after {timeout} s",
          text[-2000:], env.daemon_logs())


@tap.test
def run_console_stop_start_reboot_terminate(env):
    image = env.guest_image()
    t = env.tenant("vm1")
    user_data = "#cloud-config\nnubo-e2e: hello from user-data 42\n"
    out = aws(env, t, "run-instances", "--image-id", image, "--instance-type", "t3.nano",
              "--count", "1", "--user-data", user_data)
    iid = out["Instances"][0]["InstanceId"]
    env.wait_state(t, [iid], "running")
    host = env.psql1(f"SELECT host_id FROM instances WHERE id = {sql_quote(iid)}")
    check_eq(host, env.host_id, "the instance's host")
    check(iid in env.domains(), f"no libvirt domain {iid}", env.domains())

    text = wait_console(env, t, iid, "NUBO-GUEST-READY")
    check(f"instance-id={iid}" in text, "the guest did not read its instance id from the "
          "config drive", text[-1500:])
    body = text.split("NUBO-USER-DATA-BEGIN", 1)[-1].split("NUBO-USER-DATA-END", 1)[0]
    check("hello from user-data 42" in body, "the user-data is not on the console", text[-1500:])
    check_eq(env.host_usage()[:3], (1, 512, 8), "host claims (vcpus, MiB, GiB) of one t3.nano")

    aws(env, t, "stop-instances", "--instance-ids", iid)
    env.wait_state(t, [iid], "stopped", timeout=90)
    state = subprocess.run(compute_env.VIRSH + ["domstate", iid], capture_output=True,
                           text=True).stdout.strip()
    check_eq(state, "shut off", "the domain's state after stop-instances")
    check("NUBO-GUEST-POWEROFF" in console(env, t, iid),
          "the guest did not shut down cleanly (ACPI) on stop-instances")

    aws(env, t, "start-instances", "--instance-ids", iid)
    env.wait_state(t, [iid], "running", timeout=60)
    wait_console(env, t, iid, "NUBO-GUEST-READY", count=2)

    aws(env, t, "reboot-instances", "--instance-ids", iid)
    wait_console(env, t, iid, "NUBO-GUEST-READY", count=3)
    env.wait_state(t, [iid], "running")

    aws(env, t, "terminate-instances", "--instance-ids", iid)
    env.wait_state(t, [iid], "terminated", timeout=90)
    check(iid not in env.domains(), "the domain survived terminate-instances", env.domains())
    check(not env.instance_dir(iid).exists(), "the instance's disks survived terminate",
          list(env.instance_dir(iid).iterdir()) if env.instance_dir(iid).exists() else None)
    check_eq(env.host_usage(), (0, 0, 0, 0), "host claims after terminate")
    events = [r[0] for r in env.psql(
        f"SELECT to_state FROM instance_events WHERE instance_id = {sql_quote(iid)} ORDER BY id")]
    check_eq(events, ["pending", "running", "stopping", "stopped", "pending", "running",
                      "shutting-down", "terminated"], "the recorded transitions")


@tap.test
def user_data_and_keys_reach_the_config_drive(env):
    image = env.guest_image()
    t = env.tenant("vm2")
    ec2 = env.ec2(t)
    keyfile = env.tmp / "vm2-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vm2@e2e", "-f",
                    str(keyfile)], check=True)
    public = (env.tmp / "vm2-key.pub").read_text().strip()
    ec2.import_key_pair(KeyName="vm2-key", PublicKeyMaterial=public.encode())
    r = ec2.run_instances(ImageId=image, InstanceType="t3.nano", MinCount=2, MaxCount=2,
                          KeyName="vm2-key", UserData="line one\nline two: \u00e9\n")
    ids = [i["InstanceId"] for i in r["Instances"]]
    env.wait_state(t, ids, "running")
    for iid in ids:
        text = wait_console(env, t, iid, "NUBO-GUEST-READY")
        check("line two: \u00e9" in text, "user-data with UTF-8 not passed through", text[-800:])
        # ImportKeyPair keeps the key, and names it after the key pair instead of its comment.
        key = " ".join(public.split()[:2])
        check(f"NUBO-SSH-KEY {key} " in text, "the key pair's public key is not on the config "
              "drive", key, text[-800:])
        check(f"hostname={iid}" in text, "the guest's hostname is not its instance id",
              text[-800:])
    ec2.terminate_instances(InstanceIds=ids)
    env.wait_state(t, ids, "terminated", timeout=90)
    check(not (set(ids) & env.domains()), "domains left after terminate", env.domains())


def boot_sector_disk(path, marker):
    """A 1 MiB raw disk whose boot sector prints 'marker' on COM1 and halts: a whole-disk image
    (no kernel, no ramdisk) that SeaBIOS boots from the virtio disk."""
    msg = marker.encode() + b"\r\n\0"
    code = bytes([
        0xFA,                    # cli
        0x31, 0xC0,              # xor ax, ax
        0x8E, 0xD8,              # mov ds, ax
        0xBE, 0x16, 0x7C,        # mov si, 0x7c16 (msg)
        0xBA, 0xF8, 0x03,        # mov dx, 0x3f8 (COM1)
        0xAC,                    # loop: lodsb
        0x84, 0xC0,              # test al, al
        0x74, 0x03,              # jz done
        0xEE,                    # out dx, al
        0xEB, 0xF8,              # jmp loop
        0xF4,                    # done: hlt
        0xEB, 0xFD,              # jmp done
    ])
    assert len(code) == 0x16
    sector = (code + msg).ljust(510, b"\0") + b"\x55\xaa"
    path.write_bytes(sector.ljust(1 << 20, b"\0"))
    os.chmod(path, 0o644)


@tap.test
def whole_disk_image_boots(env):
    env.guest_image()
    disk = env.tmp / "bootsector.raw"
    boot_sector_disk(disk, "NUBO-DISK-BOOT-OK")
    r = env.rest(env.admin, "POST", "/v1/images", {
        "name": "boot-sector-disk", "location": disk.as_uri(), "disk_format": "raw",
        "sha256": compute_env.sha256_of(disk), "size_bytes": disk.stat().st_size})
    check(r.status == 201, "registering a whole-disk image", r)
    iid = aws(env, env.admin, "run-instances", "--image-id", r.json["id"], "--instance-type",
              "t3.nano")["Instances"][0]["InstanceId"]
    env.wait_state(env.admin, [iid], "running")
    wait_console(env, env.admin, iid, "NUBO-DISK-BOOT-OK", timeout=60)
    xml = subprocess.run(compute_env.VIRSH + ["dumpxml", iid], capture_output=True,
                         text=True).stdout
    check("<kernel>" not in xml and "<boot dev='hd'/>" in xml,
          "a whole-disk image must boot from its disk, not a kernel", xml[:1500])
    aws(env, env.admin, "terminate-instances", "--instance-ids", iid)
    env.wait_state(env.admin, [iid], "terminated", timeout=90)


@tap.test
def create_image_from_an_instance(env):
    image = env.guest_image()
    t = env.tenant("vm4")
    iid = aws(env, t, "run-instances", "--image-id", image, "--instance-type",
              "t3.nano")["Instances"][0]["InstanceId"]
    env.wait_state(t, [iid], "running")
    wait_console(env, t, iid, "NUBO-GUEST-READY")
    new = aws(env, t, "create-image", "--instance-id", iid, "--name", "my-saved-guest",
              "--description", "saved by the e2e test")["ImageId"]
    # The snapshot is copied from the node into the image store (nubo-imaged) before the image
    # is available: from then on it does not depend on this node.
    row = env.wait_image(new)
    imgs = aws(env, t, "describe-images", "--image-ids", new)["Images"]
    check_eq([(i["ImageId"], i["State"], i["Name"]) for i in imgs],
             [(new, "available", "my-saved-guest")], f"the new image ({row['state_reason']})")
    check(row["store_key"].startswith(f"images/{new}.") and
          row["location"].startswith(f"http://127.0.0.1:{env.imaged_port}/v1/blobs/"),
          "the saved image's bytes are in the image store", row)
    dup = subprocess.run(["/usr/bin/aws", "--endpoint-url", env.endpoint, "ec2", "create-image",
                          "--instance-id", iid, "--name", "my-saved-guest"],
                         capture_output=True, text=True, env=compute_env.aws_env(t))
    check(dup.returncode != 0 and "InvalidAMIName.Duplicate" in dup.stderr,
          "a second image of the same name is refused", dup.stderr)
    # The saved disk boots, on the kernel and ramdisk of the source image.
    iid2 = aws(env, t, "run-instances", "--image-id", new, "--instance-type",
               "t3.nano")["Instances"][0]["InstanceId"]
    env.wait_state(t, [iid2], "running")
    text = wait_console(env, t, iid2, "NUBO-GUEST-READY")
    check("NUBO-ROOT-DISK marker=NUBO-TEST-DISK-v1" in text,
          "the new instance's root disk is not a copy of the source's", text[-1500:])
    aws(env, t, "terminate-instances", "--instance-ids", iid, iid2)
    env.wait_state(t, [iid, iid2], "terminated", timeout=90)


@tap.test
def guest_initiated_shutdown_is_stopped(env):
    image = env.guest_image()
    t = env.tenant("vm5")
    ec2 = env.ec2(t)
    iid = ec2.run_instances(ImageId=image, InstanceType="t3.nano", MinCount=1,
                            MaxCount=1)["Instances"][0]["InstanceId"]
    env.wait_state(t, [iid], "running")
    wait_console(env, t, iid, "NUBO-GUEST-READY")
    # The guest powers itself off (here: the ACPI button pressed behind nubo's back).
    r = subprocess.run(compute_env.VIRSH + ["shutdown", iid], capture_output=True, text=True)
    check(r.returncode == 0, "virsh shutdown", r.stderr)
    env.wait_state(t, [iid], "stopped", timeout=60)
    i = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    check_eq(i.get("StateReason", {}).get("Code"), "Client.InstanceInitiatedShutdown",
             "the reason EC2 gives for a guest that shut itself down")
    ec2.start_instances(InstanceIds=[iid])
    env.wait_state(t, [iid], "running", timeout=60)
    wait_console(env, t, iid, "NUBO-GUEST-READY", count=2)
    ec2.terminate_instances(InstanceIds=[iid])
    env.wait_state(t, [iid], "terminated", timeout=90)


@tap.test
def agent_sigkill_mid_launch(env):
    image = env.guest_image()
    t = env.tenant("vm3")
    ec2 = env.ec2(t)
    r = ec2.run_instances(ImageId=image, InstanceType="t3.nano", MinCount=3, MaxCount=3)
    ids = [i["InstanceId"] for i in r["Instances"]]
    # Kill the agent while the spawns are in flight: as soon as it has begun one (written its
    # spec), well before libvirt has started them all.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if any((env.instance_dir(i) / "spec.json").exists() for i in ids):
            break
        time.sleep(0.01)
    env.agent.kill()
    at_kill = [r[0] for r in env.psql("SELECT state FROM instances WHERE id IN ("
                                      + ", ".join(sql_quote(i) for i in ids) + ")")]
    check("pending" in at_kill, "the kill came after every launch had finished: this run "
          "tested nothing mid-launch", at_kill)
    time.sleep(1.0)
    env.agent.start(timeout=60)
    final = env.wait_state(t, ids, {"running", "error"}, timeout=150)
    for iid, (state, reason) in final.items():
        check(state == "running" or reason, f"{iid} is in error without a reason", final)
    known = {r[0] for r in env.psql("SELECT id FROM instances WHERE state NOT IN "
                                    "('terminated', 'error')")}
    orphans = env.domains() - known
    check(not orphans, "domains the control plane does not know about", orphans)
    running = [i for i, (s, _) in final.items() if s == "running"]
    check(set(running) <= env.domains(), "running instances without a domain")
    ec2.terminate_instances(InstanceIds=ids)
    env.wait_state(t, ids, "terminated", timeout=90)
    check(not (set(ids) & env.domains()), "domains left after terminate")
    check_eq(env.host_usage(), (0, 0, 0, 0), "host claims after terminating everything")


@tap.test
def unknown_domain_is_removed_on_agent_restart(env):
    env.guest_image()
    # A domain with nubo's metadata that the control plane never placed: a leftover of a crash.
    stray = "i-" + "0123456789abcdef0"
    xml = f"""<domain type='qemu'>
  <name>{stray}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <metadata><nubo:instance xmlns:nubo="https://nubo.dev/xmlns/instance/1">
    <nubo:id>{stray}</nubo:id><nubo:tenant>nobody</nubo:tenant><nubo:image>none</nubo:image>
  </nubo:instance></metadata>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
</domain>"""
    path = env.tmp / "stray.xml"
    path.write_text(xml)
    r = subprocess.run(compute_env.VIRSH + ["define", str(path)], capture_output=True, text=True)
    check(r.returncode == 0, "virsh define of the stray domain", r.stderr)
    env.agent.stop()
    env.agent.start(timeout=60)
    check(stray not in env.domains(), "the agent left a domain it does not know", env.domains())
    check("does not place here" in env.agent.log(), "the agent did not report the drift",
          env.agent.tail())


def metric(text, name):
    """The sum of the samples of metric 'name' (any labels) in Prometheus text 'text'."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


@tap.test
def agent_and_scheduler_metrics(env):
    image = env.guest_image()
    import urllib.request
    t = env.tenant("vm6")
    ec2 = env.ec2(t)
    iid = ec2.run_instances(ImageId=image, InstanceType="t3.nano", MinCount=1,
                            MaxCount=1)["Instances"][0]["InstanceId"]
    env.wait_state(t, [iid], "running")
    ec2.terminate_instances(InstanceIds=[iid])
    env.wait_state(t, [iid], "terminated", timeout=90)
    with urllib.request.urlopen(f"http://127.0.0.1:{env.agent_port}/metrics", timeout=10) as r:
        agent = r.read().decode()
    with urllib.request.urlopen(f"http://127.0.0.1:{env.scheduler_port}/metrics",
                                timeout=10) as r:
        sched = r.read().decode()
    check('nubo_agent_operations_total{op="spawn",outcome="ok"}' in agent and
          metric(agent, "nubo_agent_spawn_seconds_count") >= 1, "the agent's spawn metrics",
          agent[:1500])
    check(metric(sched, "nubo_scheduler_placed_total") >= 1 and
          metric(sched, "nubo_scheduler_operations_total") >= 1, "the scheduler's metrics",
          sched)


def agent_get(env, path, token=True):
    """GET 'path' of the agent's API, with the node token unless 'token' is false; returns
    (status, decoded JSON body)."""
    headers = {"Authorization": f"Bearer {env.node_token}"} if token else {}
    req = urllib.request.Request(f"http://127.0.0.1:{env.agent_port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


@tap.test
def vnc_endpoint_and_root_disk_reset(env):
    image = env.guest_image()
    t = env.tenant("vdi")
    out = aws(env, t, "run-instances", "--image-id", image, "--instance-type", "t3.nano",
              "--count", "1")
    iid = out["Instances"][0]["InstanceId"]
    env.wait_state(t, [iid], "running")
    wait_console(env, t, iid, "NUBO-ROOT-DISK marker=NUBO-TEST-DISK-v1")

    # The VNC display, where the gateway's console proxy will connect: a VNC server speaks first.
    status, body = agent_get(env, f"/v1/instances/{iid}/vnc")
    check(status == 200, f"GET /v1/instances/{iid}/vnc on the agent answered {status}", body)
    with socket.create_connection((body["address"], body["port"]), timeout=10) as s:
        banner = b""
        while len(banner) < 12:
            piece = s.recv(12 - len(banner))
            check(piece, "the VNC server closed the connection", banner)
            banner += piece
    check_eq(banner, b"RFB 003.008\n", "the VNC server's greeting")
    check_eq(agent_get(env, f"/v1/instances/{iid}/vnc", token=False)[0], 401,
             "the VNC endpoint without the node token")

    # Stopped: no display; what is written to the disk meanwhile survives a plain start.
    aws(env, t, "stop-instances", "--instance-ids", iid)
    env.wait_state(t, [iid], "stopped", timeout=90)
    status, body = agent_get(env, f"/v1/instances/{iid}/vnc")
    check(status == 409, f"the VNC endpoint of a stopped instance answered {status}", body)
    check_eq(body["error"]["code"], "IncorrectInstanceState", "its error code")
    overlay = env.instance_dir(iid) / "root.qcow2"
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x41 0 512", str(overlay)],
                   check=True, capture_output=True)
    aws(env, t, "start-instances", "--instance-ids", iid)
    env.wait_state(t, [iid], "running", timeout=60)
    wait_console(env, t, iid, "NUBO-ROOT-DISK marker=" + "A" * 64)
    aws(env, t, "stop-instances", "--instance-ids", iid)
    env.wait_state(t, [iid], "stopped", timeout=90)

    # The start of a non-persistent desktop, as the gateway (VDI) queues it: the disk is reset.
    env.psql(f"UPDATE instances SET state = 'pending', pending_op = 'start', op_seq = op_seq + 1, "
             f"reset_root = true WHERE id = {sql_quote(iid)}; NOTIFY nubo_sched")
    env.wait_state(t, [iid], "running", timeout=60)
    wait_console(env, t, iid, "NUBO-ROOT-DISK marker=NUBO-TEST-DISK-v1", count=2)
    check_eq(env.psql1(f"SELECT reset_root FROM instances WHERE id = {sql_quote(iid)}"), "f",
             "reset_root after the start")

    aws(env, t, "terminate-instances", "--instance-ids", iid)
    env.wait_state(t, [iid], "terminated", timeout=90)


if __name__ == "__main__":
    tap.main()
