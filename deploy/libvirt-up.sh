#!/usr/bin/env bash
# Makes the system libvirtd (qemu:///system) available on this machine.
# Idempotent, non-interactive, no systemd needed: safe to call from every test
# and from `make run`. Prints exactly one line on stdout saying what it did.
#
#   deploy/libvirt-up.sh            exit 0 once `virsh -c qemu:///system version` answers
#
# If libvirtd already answers, it does nothing (~0.1 s). Otherwise:
#   1. creates libvirt's directories and the libvirt-qemu user/group (libvirtd
#      refuses to start without that user; QEMU runs as it);
#   2. makes /dev/kvm usable by group kvm, as udev would (so that the compute
#      agent's KVM probe can actually try KVM; see tests/guest/kvm-probe-findings.md);
#   3. starts virtlogd -d and libvirtd -d under deploy/subreaper.py, a child
#      subreaper that reaps QEMU processes at once (PID 1 here reaps 1-1.5 s
#      late and `virsh destroy` waits for that), detached with setsid;
#   4. waits until libvirtd answers (first start ~8 s: QEMU capability probe;
#      later starts ~0.3 s, the probe is cached in /var/cache/libvirt).
#
# Environment: libvirtd inherits ours. Set OVS_RUNDIR before calling this if
# guests plug into a private Open vSwitch (libvirt runs ovs-vsctl).
# NUBO_LIBVIRT_WAIT (seconds, default 60) bounds the wait.
# Logs: /var/log/nubo/libvirt-subreaper.log, /var/log/libvirt/ (set
# LIBVIRT_LOG_OUTPUTS yourself for libvirtd debug logs).
#
# Stop (by hand): kill "$(cat /run/libvirtd.pid)"; the subreaper exits by itself.
set -euo pipefail

URI=qemu:///system
HERE=$(cd "$(dirname "$0")" && pwd)
WAIT=${NUBO_LIBVIRT_WAIT:-60}
LOG=/var/log/nubo/libvirt-subreaper.log

answers() { virsh -c "$URI" version >/dev/null 2>&1; }

# ---- already up? ----------------------------------------------------------
if answers; then
    echo "libvirt-up: libvirtd already answers on $URI; nothing to do"
    exit 0
fi

[ "$(id -u)" -eq 0 ] || { echo "libvirt-up: ERROR: must run as root to start libvirtd" >&2; exit 1; }
for b in libvirtd virtlogd virsh qemu-system-x86_64; do
    command -v "$b" >/dev/null || {
        echo "libvirt-up: ERROR: $b not installed (deploy/install-deps.sh installs it)" >&2
        exit 1
    }
done

# One starter at a time: parallel tests may all find libvirtd down.
mkdir -p /var/log/nubo /run/nubo
exec 9>/run/nubo/libvirt-up.lock
flock 9
if answers; then
    echo "libvirt-up: libvirtd was started meanwhile by someone else; nothing to do"
    exit 0
fi

# ---- 1. directories, user, group -------------------------------------------
mkdir -p /var/log/libvirt/qemu /var/lib/libvirt /var/cache/libvirt /run/libvirt
getent group kvm >/dev/null || groupadd -r kvm
getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
id libvirt-qemu >/dev/null 2>&1 ||
    useradd -r -g libvirt-qemu -G kvm -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu

# ---- 2. /dev/kvm as udev would set it ---------------------------------------
# Without this libvirt reports no 'kvm' domain type at all, and a KVM probe
# cannot even try. Whether KVM then works is the probe's business.
if [ -c /dev/kvm ]; then
    chgrp kvm /dev/kvm 2>/dev/null || true
    chmod 0660 /dev/kvm 2>/dev/null || true
fi

# ---- 3. start the daemons under the subreaper --------------------------------
# A stale pidfile from a libvirtd that died would make libvirtd -d refuse.
for d in libvirtd virtlogd; do
    if [ -f "/run/$d.pid" ] && ! kill -0 "$(cat "/run/$d.pid" 2>/dev/null)" 2>/dev/null; then
        rm -f "/run/$d.pid"
    fi
done
cmds=()
# virtlogd may already run (libvirtd died alone): then start only libvirtd.
if ! { [ -f /run/virtlogd.pid ] && kill -0 "$(cat /run/virtlogd.pid)" 2>/dev/null; }; then
    cmds+=(-- virtlogd -d)
fi
cmds+=(-- libvirtd -d)
start=$(date +%s.%N)
# setsid + nohup + stdin from /dev/null: the subreaper outlives the test or
# shell that called us and holds none of its file descriptors (fd 9 included).
setsid nohup /usr/bin/python3 "$HERE/subreaper.py" --pidfile /run/libvirtd.pid "${cmds[@]}" \
    </dev/null >>"$LOG" 2>&1 9>&- &
subreaper=$!

# ---- 4. wait until it answers -------------------------------------------------
deadline=$(( $(date +%s) + WAIT ))
until answers; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "libvirt-up: ERROR: libvirtd did not answer on $URI within ${WAIT}s; see $LOG and /var/log/libvirt" >&2
        tail -n 5 "$LOG" >&2 || true
        exit 1
    fi
    sleep 0.2
done
took=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
echo "libvirt-up: started libvirtd (pid $(cat /run/libvirtd.pid 2>/dev/null || echo '?')) under subreaper pid $subreaper; answering on $URI after ${took}s"
