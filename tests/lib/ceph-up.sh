#!/usr/bin/env bash
# A throwaway single-node Ceph cluster for tests and benchmarks: one monitor and one OSD
# whose object store is memstore (data in RAM), cephx on, on 127.0.0.1, pool size 1. No mgr:
# librados, the `rados` CLI (put/get/ls/bench) and pool creation need only the mon and the OSD.
#
#   tests/lib/ceph-up.sh start DIR   builds and starts the cluster in DIR (made if absent, must
#                                    be empty), waits until a test write works, prints
#                                    "ceph ready: DIR/ceph.conf" and exits 0, daemons left running
#   tests/lib/ceph-up.sh stop DIR    stops the daemons (SIGTERM, SIGKILL after STOP_WAIT s) and
#                                    removes DIR
#
# What DIR holds: ceph.conf and client.admin.keyring (for librados and `rados -c DIR/ceph.conf`,
# whose [global] keyring line already points at the keyring), mon.a.pid and osd.0.pid, the
# daemons' data (mon/, osd/), sockets (run/) and logs (log/). Nothing outside DIR is touched:
# not /etc/ceph, not /var/lib/ceph. The readiness check leaves a pool "ceph-up" with one object;
# make your own pools (librados' rados_pool_create, or `ceph -c DIR/ceph.conf osd pool create`).
#
# Memory: memstore keeps objects in the OSD's RAM, and the OSD's resident size grows to about
# twice the bytes stored (measured: 2.6 GB of 4 MiB objects, 5.2 GB RSS). The capacity is a soft
# limit, checked every few seconds: writes overshoot it, then the OSD reports itself full and
# librados holds further writes back (they time out, or block when no op timeout is set).
#
# Environment:
#   CEPH_MON_PORT        the monitor's port (msgr2 only), a free one when unset
#   CEPH_MEMSTORE_BYTES  the OSD's memstore capacity, 3 GiB when unset (RAM, used as written)
#   CEPH_UP_WAIT         seconds to wait for the cluster, 60 when unset
#   CEPH_UP_OWNER_PID    a process (a test program) whose death stops the cluster: a watcher
#                        (`ceph-up.sh watch DIR PID`, in its own session) runs `stop DIR` when
#                        that process is gone, so a crashed test leaves no daemons behind
#
# Runs as root. A failed start kills what it started, prints the logs' tails on stderr and
# exits 1, leaving DIR for inspection (`stop DIR` removes it).
set -euo pipefail

MEMSTORE_BYTES=${CEPH_MEMSTORE_BYTES:-$((3 << 30))}
WAIT=${CEPH_UP_WAIT:-60}
STOP_WAIT=3
MARK=.nubo-ceph-up # a DIR without it is never removed by `stop`
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")

usage() {
    echo "usage: $0 start|stop DIR  (or: $0 watch DIR PID, see CEPH_UP_OWNER_PID)" >&2
    exit 2
}

say() { echo "ceph-up: $*" >&2; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# True while process $1 exists and is not a zombie (PID 1 here reaps orphans late).
alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# Stops the daemons of cluster $1 whose pid files match $2: SIGTERM, then SIGKILL after
# STOP_WAIT seconds.
kill_matching() {
    local dir=$1 pids=() f pid i
    for f in "$dir"/$2; do
        [ -f "$f" ] || continue
        pid=$(cat "$f" 2>/dev/null || true)
        [[ "$pid" =~ ^[0-9]+$ ]] || continue
        # Only our own daemons: the process must run with this cluster's ceph.conf.
        if alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir/ceph.conf"; then
            pids+=("$pid")
        fi
    done
    [ ${#pids[@]} -eq 0 ] && return 0
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for ((i = 0; i < STOP_WAIT * 10; i++)); do
        local left=()
        for pid in "${pids[@]}"; do alive "$pid" && left+=("$pid"); done
        [ ${#left[@]} -eq 0 ] && return 0
        pids=("${left[@]}")
        sleep 0.1
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        local left=()
        for pid in "${pids[@]}"; do alive "$pid" && left+=("$pid"); done
        [ ${#left[@]} -eq 0 ] && return 0
        pids=("${left[@]}")
        sleep 0.1
    done
    say "processes ${pids[*]} survived SIGKILL"
    return 1
}

# Stops every daemon of cluster $1. The OSD first: it tells the mon it is going down and gets
# an answer within a second, whereas with the mon gone it waits osd_mon_shutdown_timeout (5 s).
kill_daemons() {
    local rc=0
    kill_matching "$1" 'osd.*.pid' || rc=1
    kill_matching "$1" '*.pid' || rc=1
    return $rc
}

fail() {
    say "$*"
    for f in "$DIR"/log/*.log; do
        [ -f "$f" ] || continue
        echo "---- tail of $f" >&2
        tail -n 25 "$f" >&2
    done
    kill_daemons "$DIR" || true
    exit 1
}

cmd_stop() {
    [ -d "$DIR" ] || return 0
    if [ ! -e "$DIR/$MARK" ]; then
        say "$DIR was not made by $0 start; not touching it"
        exit 1
    fi
    # The watcher first (unless this is it), with its sleep: it leads its own process group.
    local wpid
    wpid=$(cat "$DIR/watch.pid" 2>/dev/null || true)
    if [[ "$wpid" =~ ^[0-9]+$ ]] && [ "$wpid" != "$$" ] && alive "$wpid" &&
        tr '\0' ' ' <"/proc/$wpid/cmdline" 2>/dev/null | grep -qF "watch $DIR "; then
        kill -TERM -- "-$wpid" 2>/dev/null || true
    fi
    kill_daemons "$DIR"
    rm -rf "$DIR"
}

cmd_watch() {
    local owner=$1
    while alive "$owner" && [ -e "$DIR/$MARK" ]; do
        sleep 0.5
    done
    if [ -e "$DIR/$MARK" ]; then
        say "process $owner is gone: stopping the cluster in $DIR"
        cmd_stop
    fi
}

cmd_start() {
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd)
    if [ -n "$(ls -A "$DIR")" ]; then
        say "$DIR is not empty"
        exit 1
    fi
    touch "$DIR/$MARK"
    mkdir -p "$DIR/mon" "$DIR/osd" "$DIR/run" "$DIR/log" "$DIR/crash"
    if [ -n "${CEPH_UP_OWNER_PID:-}" ]; then
        setsid "$SELF" watch "$DIR" "$CEPH_UP_OWNER_PID" </dev/null >>"$DIR/log/watch.out" 2>&1 &
        echo $! >"$DIR/watch.pid"
    fi

    local port=${CEPH_MON_PORT:-$(free_port)}
    local fsid conf=$DIR/ceph.conf
    fsid=$(cat /proc/sys/kernel/random/uuid)

    # msgr2 only, so one port is enough; $name expands to mon.a, osd.0, client.admin.
    cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$port]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
keyring = $DIR/\$name.keyring
run dir = $DIR/run
pid file = $DIR/\$name.pid
log file = $DIR/log/\$name.log
mon cluster log file = $DIR/log/cluster.log
crash dir = $DIR/crash
log to stderr = false
err to stderr = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0

[mon]
mon data = $DIR/mon
keyring = $DIR/mon/keyring
admin socket = $DIR/run/\$name.asok

[osd]
osd data = $DIR/osd
admin socket = $DIR/run/\$name.asok
keyring = $DIR/osd/keyring
osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES
osd max object name len = 1024
EOF

    ceph-authtool --create-keyring "$DIR/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool --create-keyring "$DIR/client.admin.keyring" --gen-key -n client.admin \
        --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
    ceph-authtool "$DIR/mon.keyring" --import-keyring "$DIR/client.admin.keyring" >/dev/null
    monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" "$DIR/monmap" >/dev/null
    ceph-mon -c "$conf" -i a --mkfs --monmap "$DIR/monmap" --keyring "$DIR/mon.keyring" \
        >"$DIR/log/mon-mkfs.out" 2>&1 || fail "ceph-mon --mkfs failed: $(cat "$DIR/log/mon-mkfs.out")"
    ceph-mon -c "$conf" -i a </dev/null >"$DIR/log/mon.out" 2>&1 || fail "ceph-mon did not start"

    # The OSD and its key must exist in the mon before `ceph-osd --mkfs`, which fetches the
    # mon's config with that key.
    local uuid secret id
    uuid=$(cat /proc/sys/kernel/random/uuid)
    secret=$(ceph-authtool --gen-print-key)
    id=$(echo "{\"cephx_secret\": \"$secret\"}" |
        ceph -c "$conf" --connect-timeout 15 osd new "$uuid" -i - 2>"$DIR/log/osd-new.out") ||
        fail "ceph osd new failed: $(cat "$DIR/log/osd-new.out")"
    [ "$id" = 0 ] || fail "ceph osd new gave id '$id', expected 0"
    ceph-authtool --create-keyring "$DIR/osd/keyring" --name osd.0 --add-key "$secret" >/dev/null
    ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$uuid" >"$DIR/log/osd-mkfs.out" 2>&1 ||
        fail "ceph-osd --mkfs failed: $(cat "$DIR/log/osd-mkfs.out")"
    ceph-osd -c "$conf" -i 0 </dev/null >"$DIR/log/osd.out" 2>&1 || fail "ceph-osd did not start"

    # Ready when a write to a fresh pool goes through (the OSD is up and its PGs active).
    local deadline=$((SECONDS + WAIT))
    rados_() { timeout 20 rados -c "$conf" --client-mount-timeout 10 --rados-osd-op-timeout 10 "$@"; }
    until ceph -c "$conf" --connect-timeout 10 osd pool create ceph-up 1 1 >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || fail "could not create pool ceph-up within ${WAIT}s"
        sleep 0.2
    done
    until echo ready | rados_ -p ceph-up put ready - >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || fail "the test write did not go through within ${WAIT}s"
        sleep 0.2
    done
    [ "$(rados_ -p ceph-up get ready -)" = ready ] || fail "the test read gave other bytes"
    echo "ceph ready: $conf"
}

[ $# -ge 2 ] || usage
DIR=$2
case $1 in
start) cmd_start ;;
stop) cmd_stop ;;
watch) [ $# -eq 3 ] || usage && cmd_watch "$3" ;;
*) usage ;;
esac
