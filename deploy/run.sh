#!/usr/bin/env bash
# `make run`: a whole nubo cloud on this machine, in the foreground.
#
# State lives under var/ (override with NUBO_STATE_DIR) and persists across runs:
#   var/pg/                PostgreSQL cluster (created on the first run, reused afterwards)
#   var/master.key         key that seals access-key secrets (0600)
#   var/nubo-admin.env     operator credentials: NUBO_ENDPOINT, AWS_ACCESS_KEY_ID, ...
#   var/console-admin.password  the operator's web console password (0600)
#   var/log/               daemon and database logs
#   var/agent/             the compute node: instance disks, image cache, node.token
#   var/ovs/               its Open vSwitch (database, sockets, logs; deploy/ovs-up.sh)
# One compute node runs here: libvirtd with QEMU (deploy/libvirt-up.sh; KVM when it really
# works, emulation otherwise), nubo-agent and nubo-scheduler. The busybox test guest
# (tests/guest/build-guest.sh, from Debian packages) is registered as the public image
# "nubo-test-guest", so that an instance can be launched at once.
# Ctrl-C or SIGTERM stops every daemon and the database cleanly. Running guests are left running,
# as a compute agent's restart leaves them: the next run's agent adopts them (and starts again
# those that stopped meanwhile).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

STATE=${NUBO_STATE_DIR:-$top/var}
PORT=${NUBO_PORT:-8773}
PG_BIN=$(pg_config --bindir 2>/dev/null || true)
[ -x "$PG_BIN/initdb" ] || PG_BIN=/usr/lib/postgresql/15/bin
mkdir -p "$STATE/log"

say() { printf 'nubo: %s\n' "$*"; }

make --no-print-directory MODE=release all >"$STATE/log/build.log" 2>&1 || {
    tail -n 30 "$STATE/log/build.log"
    say "build failed; full log in $STATE/log/build.log"
    exit 1
}
say "built (release) into build/release/bin"

# --- PostgreSQL ---------------------------------------------------------------------------------
# PostgreSQL refuses to run as root: as root, the cluster belongs to the 'postgres' user. If that
# user cannot reach $STATE (a home directory of mode 0700, say), the cluster lives under
# /var/lib/nubo and $STATE/pg links to it.
as_pg=()
pg_dir=$STATE/pg
if [ "$(id -u)" -eq 0 ]; then
    as_pg=(runuser -u postgres --)
    if [ ! -e "$pg_dir" ] && ! runuser -u postgres -- test -x "$STATE"; then
        real=/var/lib/nubo/pg-$(printf '%s' "$STATE" | sha256sum | cut -c1-12)
        mkdir -p "$real"
        ln -s "$real" "$pg_dir"
        say "postgres cannot reach $STATE; the cluster lives in $real"
    fi
fi
# Through the link, the path would cross the directory postgres cannot enter.
[ ! -L "$pg_dir" ] || pg_dir=$(readlink -f "$pg_dir")
pg_sock=$pg_dir/run
if [ ! -f "$pg_dir/PG_VERSION" ]; then
    mkdir -p "$pg_dir"
    [ ${#as_pg[@]} -eq 0 ] || chown postgres: "$pg_dir"
    chmod 0700 "$pg_dir"
    say "creating PostgreSQL cluster in $pg_dir"
    "${as_pg[@]}" "$PG_BIN/initdb" --no-sync -A trust -U nubo -E UTF8 --locale=C -D "$pg_dir" \
        >"$STATE/log/initdb.log" 2>&1
    rm -f "$STATE/pg.port"
fi
# A port no socket uses in any state, chosen once and kept. It starts below the kernel's
# ephemeral range (ip_local_port_range, 32768 and up by default): a port from that range can be
# taken at any moment by some client's outgoing connection, and a listener cannot bind it then.
port_free() { [ -z "$(ss -Htan "sport = :$1" 2>/dev/null)" ]; }
pick_pg_port() {
    local port=${1:-15432}
    while ! port_free "$port"; do port=$((port + 1)); done
    echo "$port" >"$STATE/pg.port"
}
[ -s "$STATE/pg.port" ] || pick_pg_port
"${as_pg[@]}" mkdir -p "$pg_sock"
for attempt in 1 2 3 4 5; do
    pg_port=$(cat "$STATE/pg.port")
    if "${as_pg[@]}" "$PG_BIN/pg_ctl" -w -D "$pg_dir" -l "$pg_dir/postgresql.log" \
        -o "-k $pg_sock -h 127.0.0.1 -p $pg_port" start >/dev/null; then
        break
    fi
    # Taken since it was chosen (the log says so): take the next free one.
    if [ "$attempt" -lt 5 ] && tail -n 5 "$pg_dir/postgresql.log" | grep -q 'Address already in use'; then
        say "port $pg_port is taken; trying another one for PostgreSQL"
        pick_pg_port $((pg_port + 1))
        continue
    fi
    echo "nubo: PostgreSQL did not start; see $pg_dir/postgresql.log" >&2
    exit 1
done
say "PostgreSQL listening on 127.0.0.1:$pg_port (socket in $pg_sock)"
if ! "$PG_BIN/psql" -h "$pg_sock" -p "$pg_port" -U nubo -d postgres -Atqc \
    "SELECT 1 FROM pg_database WHERE datname = 'nubo'" | grep -q 1; then
    "$PG_BIN/createdb" -h "$pg_sock" -p "$pg_port" -U nubo nubo
fi

pids=()
stop_all() {
    trap - INT TERM EXIT
    say "stopping"
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    # Open vSwitch stops too (flows are rebuilt by nubo-netctl at the next start).
    [ ! -d "$STATE/ovs" ] || deploy/ovs-up.sh --stop "$STATE/ovs" >>"$STATE/log/ovs.log" 2>&1 || true
    "${as_pg[@]}" "$PG_BIN/pg_ctl" -w -D "$pg_dir" -m fast stop >/dev/null 2>&1 || true
    say "stopped; state kept in $STATE"
}
# A requested stop is a clean end: exit 0, so that make does not report an error.
trap 'stop_all; exit 0' INT TERM
trap stop_all EXIT

export NUBO_DB_CONNINFO="host=$pg_sock port=$pg_port dbname=nubo user=nubo"
export NUBO_MASTER_KEY=$STATE/master.key
export NUBO_HTTP_PORT=$PORT
export NUBO_DB_MIGRATIONS=$top/deploy/migrations
export NUBO_CONSOLE_DIR=$top/web
# The image store: local files, streamed in by the gateway, served to the agent by nubo-imaged.
IMAGED_PORT=${NUBO_IMAGED_PORT:-8777}
export NUBO_STORE_BACKEND=file
export NUBO_STORE_DIR=$STATE/images
export NUBO_IMAGED_URL=http://127.0.0.1:$IMAGED_PORT
bin=$top/build/release/bin

# --- the operator's account ---------------------------------------------------------------------
# The gateway writes the file only when it creates the account: on the first run, or after the
# database was thrown away.
env_file=$STATE/nubo-admin.env
before=$( (cat "$env_file" 2>/dev/null || true) | sha256sum)
"$bin/nubo-gateway" --bootstrap-admin "$env_file" 2>>"$STATE/log/gateway.log" || {
    tail -n 20 "$STATE/log/gateway.log"
    say "could not bootstrap the operator account; log in $STATE/log/gateway.log"
    exit 1
}
first_run=0
[ "$( (cat "$env_file" 2>/dev/null || true) | sha256sum)" = "$before" ] || first_run=1

# --- daemons ------------------------------------------------------------------------------------
# Each daemon runs in its own session (setsid): Ctrl-C reaches this script only, which then stops
# them in order, instead of racing them.
setsid "$bin/nubo-gateway" 2>>"$STATE/log/gateway.log" &
pids+=($!)

setsid "$bin/nubo-imaged" --set "http.port=$IMAGED_PORT" \
    --set "imaged.spool_dir=$STATE/imaged-spool" 2>>"$STATE/log/imaged.log" &
pids+=($!)

for _ in $(seq 1 50); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null || {
    tail -n 20 "$STATE/log/gateway.log"
    say "nubo-gateway did not come up; log in $STATE/log/gateway.log"
    exit 1
}

# --- the compute node ---------------------------------------------------------------------------
# libvirtd outlives this run: it gets a clean environment, not ours.
env -i PATH="$PATH" deploy/libvirt-up.sh >>"$STATE/log/libvirt-up.log" 2>&1 || {
    tail -n 10 "$STATE/log/libvirt-up.log"
    say "libvirtd could not be started; log in $STATE/log/libvirt-up.log"
    exit 1
}
say "libvirtd answers on qemu:///system"
# QEMU runs as libvirt-qemu and opens the instances' disks under the agent's state directory:
# if that user cannot reach $STATE (a home directory of mode 0700, say), the node's state lives
# under /var/lib/nubo, as the cluster's does, behind the link $STATE/agent.
agent_dir=$STATE/agent
if [ ! -e "$agent_dir" ] && [ "$(id -u)" -eq 0 ] && id libvirt-qemu >/dev/null 2>&1 &&
    ! runuser -u libvirt-qemu -- test -x "$STATE"; then
    real=/var/lib/nubo/agent-$(printf '%s' "$STATE" | sha256sum | cut -c1-12)
    mkdir -p "$real"
    ln -s "$real" "$agent_dir"
    say "libvirt-qemu cannot reach $STATE; the node's disks live in $real"
fi
[ ! -L "$agent_dir" ] || agent_dir=$(readlink -f "$agent_dir")
mkdir -p "$agent_dir"
chmod 0755 "$agent_dir"
psql_nubo() { "$PG_BIN/psql" -h "$pg_sock" -p "$pg_port" -U nubo -d nubo -v ON_ERROR_STOP=1 -Atq "$@"; }
# A token whose host is not in the database (the database was thrown away) is replaced.
known_host=$(psql_nubo -c "SELECT count(*) FROM hosts \
    WHERE id = split_part('$(cat "$agent_dir/node.token" 2>/dev/null || true)', ':', 1)")
if [ ! -s "$agent_dir/node.token" ] || [ "$known_host" = 0 ]; then
    "$bin/nubo-gateway" --create-host "$(hostname -s)" --token-out "$agent_dir/node.token" \
        2>>"$STATE/log/gateway.log"
fi
# The test guest as the public default image (built once, cached in /var/cache/nubo).
guest=/var/cache/nubo/test-guest
tests/guest/build-guest.sh "$guest" >>"$STATE/log/guest.log" 2>&1 || {
    tail -n 10 "$STATE/log/guest.log"
    say "could not build the test guest; log in $STATE/log/guest.log"
    exit 1
}
# Tenant networks: a private Open vSwitch (userspace datapath) and nubo-netctl, which programs
# its br-int with this host's VPCs, security groups and elastic IPs (docs/network.md). Before
# the agent: it plugs the instances launched into a subnet into that br-int (ovs.rundir).
agent_ovs=()
if deploy/ovs-up.sh "$STATE/ovs" >>"$STATE/log/ovs.log" 2>&1; then
    OVS_RUNDIR=$STATE/ovs setsid "$bin/nubo-netctl" \
        --set "netctl.control_url=http://127.0.0.1:$PORT" \
        --set "netctl.token_file=$agent_dir/node.token" \
        --set "netctl.state_dir=$STATE/netctl" --set "ovs.rundir=$STATE/ovs" \
        2>>"$STATE/log/netctl.log" &
    pids+=($!)
    agent_ovs=(--set "ovs.rundir=$STATE/ovs")
    # nubo-netctl makes br-int at its start; the agent's reconcile plugs running instances.
    for _ in $(seq 50); do
        OVS_RUNDIR=$STATE/ovs ovs-vsctl --timeout=2 br-exists br-int 2>/dev/null && break
        sleep 0.1
    done
    netctl_line="nubo-netctl on Open vSwitch br-int (OVS_RUNDIR=$STATE/ovs ovs-ofctl dump-flows br-int)"
else
    tail -n 3 "$STATE/log/ovs.log"
    netctl_line="not started: Open vSwitch did not start (see $STATE/log/ovs.log)"
fi
AGENT_PORT=${NUBO_AGENT_PORT:-8775}
setsid "$bin/nubo-agent" --set "agent.control_url=http://127.0.0.1:$PORT" \
    --set "agent.token_file=$agent_dir/node.token" --set "agent.state_dir=$agent_dir" \
    --set "http.port=$AGENT_PORT" --set "agent.kvm_probe_kernel=$guest/vmlinux" \
    --set "agent.kvm_probe_initrd=$guest/initrd.img" "${agent_ovs[@]}" \
    2>>"$STATE/log/agent.log" &
pids+=($!)
SCHED_PORT=${NUBO_SCHEDULER_PORT:-8776}
setsid "$bin/nubo-scheduler" --set "http.port=$SCHED_PORT" 2>>"$STATE/log/scheduler.log" &
pids+=($!)
# Metering: usage events into hourly records, every minute (invoices: nubo-billing --invoice).
setsid "$bin/nubo-billing" --daemon 2>>"$STATE/log/billing.log" &
pids+=($!)

guest_image=$(psql_nubo -c "SELECT id FROM images WHERE name = 'nubo-test-guest' AND is_public \
    AND state = 'available'")
if [ -z "$guest_image" ]; then
    # Through the REST API, as the operator: the gateway checks what it registers.
    register() { # JSON body; prints the new image's id
        (
            . "$env_file"
            curl -fsS --aws-sigv4 "aws:amz:nubo-1:nubo" \
                --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
                -H 'Content-Type: application/json' --data "$1" "$NUBO_ENDPOINT/v1/images"
        ) | grep -o '"id": *"[a-z]*-[0-9a-f]*"' | head -n 1 | cut -d'"' -f4
    }
    image() { # name, type, file; the JSON fields of a public image of that file
        printf '"name": "%s", "image_type": "%s", "public": true, "location": "file://%s", ' \
            "$1" "$2" "$guest/$3"
        printf '"sha256": "%s", "size_bytes": %s' "$(sha256sum "$guest/$3" | cut -c1-64)" \
            "$(stat -c %s "$guest/$3")"
    }
    aki=$(register "{$(image nubo-test-guest-kernel kernel vmlinux)}")
    ari=$(register "{$(image nubo-test-guest-ramdisk ramdisk initrd.img)}")
    guest_image=$(register "{$(image nubo-test-guest machine disk.raw), \"disk_format\": \"raw\",
        \"kernel_id\": \"$aki\", \"ramdisk_id\": \"$ari\",
        \"kernel_args\": \"console=ttyS0 panic=-1 quiet\",
        \"description\": \"busybox test guest: prints its user-data\"}")
    [ -n "$guest_image" ] || {
        say "could not register the test guest through the REST API; see $STATE/log/gateway.log"
        exit 1
    }
    say "registered the test guest as public image $guest_image"
fi

# --- the web console's sign-in -------------------------------------------------------------------
# The operator signs in to the console as user admin of account admin, with a generated password
# that the REST API sets when that user has none (the first run, or a new database). It is kept
# beside the credentials, mode 0600, and never printed; it goes to curl on its standard input.
console_pw_file=$STATE/console-admin.password
admin_sql="FROM users u JOIN tenants t ON t.id = u.tenant_id
    WHERE t.name = 'admin' AND u.name = 'admin'"
if [ "$(psql_nubo -c "SELECT count(*) $admin_sql AND u.password_hash IS NULL")" = 1 ]; then
    [ -s "$console_pw_file" ] ||
        (umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$console_pw_file")
    chmod 0600 "$console_pw_file"
    admin_id=$(psql_nubo -c "SELECT u.id $admin_sql")
    printf '{"password": "%s"}' "$(cat "$console_pw_file")" | (
        . "$env_file"
        curl -fsS --aws-sigv4 "aws:amz:nubo-1:nubo" \
            --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -X PUT \
            -H 'Content-Type: application/json' --data-binary @- \
            "$NUBO_ENDPOINT/v1/admin/users/$admin_id/password" >/dev/null
    ) || {
        say "could not set the console password; see $STATE/log/gateway.log"
        exit 1
    }
    say "set the operator's console password (kept in $console_pw_file)"
fi
console_pw_line="password in $console_pw_file"
[ -s "$console_pw_file" ] ||
    console_pw_line="password set earlier: PUT /v1/admin/users/ID/password resets it"

for _ in $(seq 1 100); do
    [ "$(psql_nubo -c "SELECT count(*) FROM hosts WHERE last_heartbeat > now() - interval '30 s'")" \
        -ge 1 ] && break
    sleep 0.2
done
say "compute node up: $(psql_nubo -c "SELECT name || ' (' || vcpus || ' vCPUs, ' || memory_mib || \
    ' MiB, domains of type ' || COALESCE(stats->>'virt_type', '?') || ')' FROM hosts \
    WHERE NOT simulated ORDER BY last_heartbeat DESC NULLS LAST LIMIT 1")"

cat <<MSG

  nubo is running.

  Endpoint:     http://127.0.0.1:$PORT   (EC2 Query API at /, REST API at /v1,
                health at /healthz, Prometheus metrics at /metrics)
  Region:       nubo-1
  Credentials:  $env_file
  Console:      http://127.0.0.1:$PORT/console/  (account admin, user admin,
                $console_pw_line); an instance's screen: its Console button
  Desktops:     http://127.0.0.1:$PORT/console/desktop.html  (VDI users; pools: nubo vdi pool)
  Compute node: nubo-agent at http://127.0.0.1:$AGENT_PORT, nubo-scheduler metrics at
                http://127.0.0.1:$SCHED_PORT/metrics
  Images:       nubo-imaged at http://127.0.0.1:$IMAGED_PORT, bytes in $STATE/images
  Billing:      nubo-billing meters usage every minute ($top/build/sdk/nubo usage)
  Networks:     $netctl_line
MSG
if [ "$first_run" -eq 1 ]; then
    echo
    sed -n 's/^export \(AWS_[A-Z_]*\)=\(.*\)/  \1=\2/p' "$env_file"
    echo "  (shown once; kept in the file above, mode 0600)"
fi
cat <<MSG

  Try it:
    . $env_file
    curl \$NUBO_ENDPOINT/healthz
    /usr/bin/aws ec2 describe-regions --endpoint-url \$NUBO_ENDPOINT
    /usr/bin/aws ec2 run-instances --endpoint-url \$NUBO_ENDPOINT --image-id $guest_image \\
        --instance-type t3.nano --user-data 'hello from my first instance'
    /usr/bin/aws ec2 get-console-output --endpoint-url \$NUBO_ENDPOINT --instance-id i-...
    $top/build/sdk/nubo type list            # the nubo CLI (man sdk/c/doc/nubo.1)

  Upload your own image (raw, qcow2, vhd, vmdk or ova; VHD, VMDK and OVA are imported):
    $top/build/sdk/nubo image upload disk.vhd --name my-disk --wait

  Logs in $STATE/log/. Press Ctrl-C to stop.
MSG

# Wait until a daemon exits or a signal arrives.
wait -n "${pids[@]}" || true
say "a daemon exited; see $STATE/log/"
