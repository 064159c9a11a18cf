#!/usr/bin/python3
"""Uploaded images boot: the whole way from a tenant's file to a running VM and back out.

A VHD and an OVA are uploaded (curl), imported by nubo-imaged (qemu-img to qcow2), launched with
the AWS CLI's run-instances on a real compute host (libvirt, QEMU), where the agent fetches them
from nubo-imaged's signed URL into its cache; the guest's console proves they booted. The image
is then exported to OVA, imported again and booted again; the disk's content is compared with
the original at every step (qemu-img compare)."""

import subprocess

import compute_env
import nubo_env
from compute_env import aws
from image_env import make_ova, qemu_img, sha256_file
from nubo_env import check, check_eq
from test_vm_lifecycle import boot_sector_disk, wait_console


tap = nubo_env.Tap(__file__, per_test_timeout=300, fixture=compute_env.ComputeEnv)


def same_disk(a, b):
    return subprocess.run(["qemu-img", "compare", "-q", str(a), str(b)],
                          timeout=120).returncode == 0


def boot(env, creds, image_id, marker):
    iid = aws(env, creds, "run-instances", "--image-id", image_id, "--instance-type",
              "t3.nano")["Instances"][0]["InstanceId"]
    env.wait_state(creds, [iid], "running")
    wait_console(env, creds, iid, marker, timeout=120)
    aws(env, creds, "terminate-instances", "--instance-ids", iid)
    env.wait_state(creds, [iid], "terminated", timeout=90)
    return iid


@tap.test
def vhd_boots_exports_and_boots_again(env):
    env.guest_image()  # skips when this machine has no libvirt
    t = env.tenant("boot1")
    disk = env.tmp / "bootsector.raw"
    boot_sector_disk(disk, "NUBO-VHD-BOOT-OK")
    vhd = env.tmp / "bootsector.vhd"
    qemu_img("convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", str(disk), str(vhd))
    image_id = env.new_image(t, "vhd-disk", "vhd")
    status, _, body = env.upload(t, image_id, vhd)
    check(status == 202, "VHD upload", status, body)
    row = env.wait_image(image_id)
    check_eq(row["state"], "available", f"VHD imported: {row['state_reason']}")
    boot(env, t, image_id, "NUBO-VHD-BOOT-OK")
    cached = env.psql1(f"SELECT sha256 FROM images WHERE id = '{image_id}'")
    check((env.state_dir / "images" / cached).exists() or any(
        cached in p.name for p in env.state_dir.rglob("*")),
        "the agent cached the image under its digest")

    r = env.rest(t, "POST", f"/v1/images/{image_id}/export")
    check(r.status == 202, "export", r)
    task = r.json["export_task_id"]
    env.wait_image(image_id)  # unchanged
    import time
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        st = env.rest(t, "GET", f"/v1/image-tasks/{task}").json
        if st["state"] in ("completed", "failed"):
            break
        time.sleep(0.2)
    check_eq(st["state"], "completed", f"export: {st['status_message']}")
    ova = env.tmp / "exported.ova"
    status, _, _ = env.curl(t, "GET", f"/v1/images/{image_id}/export.ova", ["-o", str(ova)])
    check_eq((status, sha256_file(ova)), (200, st["result_sha256"]), "the exported OVA")
    again = env.new_image(t, "vhd-disk-again", "ova")
    status, _, body = env.upload(t, again, ova)
    check(status == 202, "the exported OVA uploads again", status, body)
    check_eq(env.wait_image(again)["state"], "available", "re-imported")
    back = env.tmp / "again.qcow2"
    env.curl(t, "GET", f"/v1/images/{again}/file", ["-o", str(back)])
    check(same_disk(disk, back), "the disk survived VHD -> qcow2 -> OVA -> qcow2")
    boot(env, t, again, "NUBO-VHD-BOOT-OK")


@tap.test
def ova_kernel_booted_guest(env):
    """The test guest's disk in an OVA, with the guest's kernel and ramdisk uploaded as the
    tenant's own aki/ari images: it boots to its READY line, reading its config drive."""
    env.guest_image()
    t = env.tenant("boot2")
    vmdk = env.tmp / "guest.vmdk"
    qemu_img("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized",
             str(compute_env.GUEST_DIR / "disk.raw"), str(vmdk))
    ova = make_ova(env.tmp / "guest.ova", vmdk, vcpus=1, memory_mib=512)
    # The tenant's own kernel and ramdisk (EC2's aki/ari), uploaded as raw images too.
    boot_files = {}
    for kind, name in (("kernel", "vmlinux"), ("ramdisk", "initrd.img")):
        r = env.rest(t, "POST", "/v1/images", {"name": f"guest-{kind}", "image_type": kind,
                                               "source_format": "raw"})
        check(r.status == 201 and r.json["id"][:3] == ("aki" if kind == "kernel" else "ari"),
              f"a {kind} image", r)
        status, _, body = env.upload(t, r.json["id"], compute_env.GUEST_DIR / name)
        check(status == 200, f"{kind} upload", status, body)
        boot_files[kind] = r.json["id"]
    image_id = env.new_image(t, "guest-ova", "ova", kernel_id=boot_files["kernel"],
                             ramdisk_id=boot_files["ramdisk"],
                             kernel_args=compute_env.KERNEL_ARGS)
    status, _, body = env.upload(t, image_id, ova)
    check(status == 202, "OVA upload", status, body)
    row = env.wait_image(image_id)
    check_eq((row["state"], row["suggested_type"]), ("available", "t3.nano"),
             f"imported, with a type that fits the OVF's 1 vCPU and 512 MiB: {row['state_reason']}")
    boot(env, t, image_id, "NUBO-GUEST-READY")  # fails unless the guest prints its READY line


if __name__ == "__main__":
    tap.main()
