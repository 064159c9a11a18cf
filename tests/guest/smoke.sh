#!/usr/bin/env bash
# End-to-end smoke test of the test guest under the system libvirtd (TCG):
#   build the guest, bring libvirt up, make a NoCloud config drive, `virsh create`
#   a transient q35 domain (root vda = qcow2 overlay over disk.raw, ephemeral
#   vdb, config drive vdc, serial console logged to a file, VNC with password),
#   wait for the guest's markers, `virsh reboot` it, `virsh shutdown` it, clean up.
# Prints timings; exits non-zero on the first failure (console log shown).
#
#   tests/guest/smoke.sh            (root; needs qemu-system-x86, qemu-utils,
#                                    libvirt-daemon(-driver-qemu), libvirt-clients, genisoimage)
# NUBO_SMOKE_KEEP=1 keeps the work directory for a look afterwards.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
URI=qemu:///system
GUEST_DIR=${NUBO_GUEST_DIR:-/var/cache/nubo/test-guest}
NAME="nubo-smoke-$$"

now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.2f", e - s }'; }
say() { echo "smoke: $*"; }
fail() {
    echo "smoke: FAIL: $*" >&2
    if [ -f "${WORK:-/nonexistent}/console.log" ]; then
        echo "---- console.log ----" >&2
        tr -d '\r' <"$WORK/console.log" | tail -n 40 >&2
        echo "---------------------" >&2
    fi
    exit 1
}

# Wait until the console log has at least N lines matching a regex; $3 = timeout s.
wait_console() {
    local re=$1 n=$2 timeout=$3 t0
    t0=$(now)
    while [ "$(tr -d '\r' <"$WORK/console.log" 2>/dev/null | grep -c -- "$re" || true)" -lt "$n" ]; do
        [ "$(since "$t0" | cut -d. -f1)" -lt "$timeout" ] || fail "no '$re' (#$n) on the console within ${timeout}s"
        sleep 0.05
    done
}

# Wait until the transient domain is shut off or gone; $1 = timeout s.
wait_off() {
    local timeout=$1 t0 st
    t0=$(now)
    while :; do
        st=$(virsh -c "$URI" domstate "$NAME" 2>/dev/null) || st=gone
        case "$st" in "shut off" | gone) return 0 ;; esac
        [ "$(since "$t0" | cut -d. -f1)" -lt "$timeout" ] || fail "domain still '$st' after ${timeout}s"
        sleep 0.05
    done
}

for b in virsh qemu-img genisoimage; do
    command -v "$b" >/dev/null || fail "$b not installed"
done

# ---- (a) guest, (b) libvirt -------------------------------------------------
t=$(now)
"$HERE/build-guest.sh" "$GUEST_DIR" >/dev/null
say "guest ready in $(since "$t")s ($GUEST_DIR)"
t=$(now)
"$REPO/deploy/libvirt-up.sh"
say "libvirt ready in $(since "$t")s"

# Work dir: QEMU runs as libvirt-qemu, so the directory must be traversable by
# it (libvirt chowns the disk files it uses, never their directories).
WORK=$(mktemp -d /tmp/nubo-smoke.XXXXXX)
chmod 755 "$WORK"
cleanup() {
    virsh -c "$URI" destroy "$NAME" >/dev/null 2>&1 || true
    if [ "${NUBO_SMOKE_KEEP:-0}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# ---- (c) config drive -----------------------------------------------------------
mkdir "$WORK/cidata"
printf 'instance-id: i-smoke%s\nlocal-hostname: smoke-host\n' "$$" >"$WORK/cidata/meta-data"
printf 'hello from user-data\n' >"$WORK/cidata/user-data"
genisoimage -quiet -output "$WORK/cfg.iso" -volid cidata -joliet -rock \
    "$WORK/cidata/user-data" "$WORK/cidata/meta-data"

# ---- disks: root overlay over the base image, an ephemeral disk -------------
qemu-img create -q -f qcow2 -F raw -b "$GUEST_DIR/disk.raw" "$WORK/overlay.qcow2" 1G
qemu-img create -q -f raw "$WORK/ephemeral.raw" 64M

# ---- (d) the domain --------------------------------------------------------------
# VNC passwords are at most 8 characters (libvirt refuses longer ones).
VNC_PASSWORD=$(head -c 64 /dev/urandom | tr -dc a-zA-Z0-9 | head -c 8)
cat >"$WORK/domain.xml" <<EOF
<domain type='qemu'>
  <name>$NAME</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>$GUEST_DIR/vmlinux</kernel>
    <initrd>$GUEST_DIR/initrd.img</initrd>
    <cmdline>console=ttyS0 quiet panic=-1</cmdline>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$WORK/overlay.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$WORK/ephemeral.raw'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$WORK/cfg.iso'/>
      <target dev='vdc' bus='virtio'/>
      <readonly/>
    </disk>
    <serial type='pty'>
      <log file='$WORK/console.log' append='off'/>
      <target port='0'/>
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
    <graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1' passwd='$VNC_PASSWORD'/>
    <memballoon model='none'/>
  </devices>
</domain>
EOF

t0=$(now)
virsh -c "$URI" create "$WORK/domain.xml" >/dev/null || fail "virsh create"
t_running=$(since "$t0")
say "virsh create -> running: ${t_running}s"

# ---- (e) markers --------------------------------------------------------------
wait_console '^NUBO-GUEST-READY' 1 60
t_ready=$(since "$t0")
log=$(tr -d '\r' <"$WORK/console.log")
grep -q "^NUBO-GUEST-BOOTED instance-id=i-smoke$$ hostname=smoke-host\$" <<<"$log" || fail "BOOTED line wrong"
ud=$(sed -n '/^NUBO-USER-DATA-BEGIN$/,/^NUBO-USER-DATA-END$/p' <<<"$log")
[ "$ud" = $'NUBO-USER-DATA-BEGIN\nhello from user-data\nNUBO-USER-DATA-END' ] || fail "user-data not echoed verbatim: $ud"
grep -q '^NUBO-ROOT-DISK marker=NUBO-TEST-DISK-v1$' <<<"$log" || fail "root disk marker not seen"
grep -q '^NUBO-GUEST-DISKS vda=1073741824 vdb=67108864 vdc=' <<<"$log" || fail "disk list wrong"
grep -q '^NUBO-GUEST-WARN' <<<"$log" && fail "guest warned: $(grep '^NUBO-GUEST-WARN' <<<"$log")"
uptime=$(sed -n 's/^NUBO-GUEST-UPTIME //p' <<<"$log" | head -n 1)
say "create -> NUBO-GUEST-READY: ${t_ready}s (guest kernel uptime at READY ${uptime}s); user-data echoed"

# VNC: the password is set and the server listens.
vnc=$(virsh -c "$URI" vncdisplay "$NAME") || fail "no VNC display"
say "VNC on $vnc"

# ---- reboot: libvirt presses the ACPI power button, then resets ------------------
t=$(now)
virsh -c "$URI" reboot "$NAME" >/dev/null || fail "virsh reboot"
wait_console '^NUBO-GUEST-POWEROFF' 1 30
wait_console '^NUBO-GUEST-READY' 2 60
say "virsh reboot -> POWEROFF -> READY again: $(since "$t")s"

# ---- (f) shutdown ---------------------------------------------------------------
t=$(now)
virsh -c "$URI" shutdown "$NAME" >/dev/null || fail "virsh shutdown"
wait_console '^NUBO-GUEST-POWEROFF' 2 30
t_poweroff=$(since "$t")
wait_off 30
say "virsh shutdown -> NUBO-GUEST-POWEROFF ${t_poweroff}s -> shut off/gone $(since "$t")s"

# ---- destroy timing on a second boot (cleanup path of the agent) ------------------
virsh -c "$URI" create "$WORK/domain.xml" >/dev/null || fail "virsh create (2)"
wait_console '^NUBO-GUEST-READY' 1 60
t=$(now)
virsh -c "$URI" destroy "$NAME" >/dev/null || fail "virsh destroy"
say "virsh destroy: $(since "$t")s"

echo "smoke: PASS"
