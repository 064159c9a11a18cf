#!/usr/bin/env bash
# Starts a private Open vSwitch for nubo on this machine (the system's openvswitch-switch service
# is not used): ovsdb-server and ovs-vswitchd with their database, sockets, pid files and logs in
# DIR, the userspace datapath (this kernel may have no OVS module). Idempotent: when both
# daemons of DIR run, it does nothing. Prints one line saying what it did.
#
#   deploy/ovs-up.sh DIR        then: OVS_RUNDIR=DIR ovs-vsctl show
#   deploy/ovs-up.sh --stop DIR deletes the bridges (so no tap device is left) and stops both
set -euo pipefail

stop=0
if [ "${1:-}" = "--stop" ]; then
    stop=1
    shift
fi
DIR=${1:?usage: ovs-up.sh [--stop] DIR}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
export OVS_RUNDIR=$DIR OVS_DBDIR=$DIR OVS_LOGDIR=$DIR

alive() { [ -s "$DIR/$1.pid" ] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }

if [ "$stop" -eq 1 ]; then
    if alive ovs-vswitchd; then
        for br in $(ovs-vsctl --timeout=5 list-br 2>/dev/null); do
            ovs-vsctl --timeout=5 del-br "$br" || true
        done
    fi
    for d in ovs-vswitchd ovsdb-server; do
        if alive "$d"; then
            kill "$(cat "$DIR/$d.pid")"
        fi
    done
    echo "ovs-up: stopped the Open vSwitch of $DIR"
    exit 0
fi

if alive ovsdb-server && alive ovs-vswitchd; then
    echo "ovs-up: Open vSwitch of $DIR already runs"
    exit 0
fi
command -v ovs-vswitchd >/dev/null || {
    echo "ovs-up: Open vSwitch is not installed (Debian package openvswitch-switch)" >&2
    exit 1
}
if ! alive ovsdb-server; then
    [ -f "$DIR/conf.db" ] || ovsdb-tool create "$DIR/conf.db" \
        /usr/share/openvswitch/vswitch.ovsschema
    ovsdb-server --remote="punix:$DIR/db.sock" --pidfile="$DIR/ovsdb-server.pid" \
        --log-file="$DIR/ovsdb-server.log" --detach "$DIR/conf.db"
    ovs-vsctl --no-wait init
fi
if ! ovs-vswitchd "unix:$DIR/db.sock" --pidfile="$DIR/ovs-vswitchd.pid" \
    --log-file="$DIR/ovs-vswitchd.log" --detach; then
    echo "ovs-up: ovs-vswitchd did not start; see $DIR/ovs-vswitchd.log (another userspace" \
        "Open vSwitch in this network namespace holds the tap device ovs-netdev?)" >&2
    exit 1
fi
echo "ovs-up: started Open vSwitch in $DIR (userspace datapath)"
