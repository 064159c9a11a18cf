#!/usr/bin/env bash
# `make run`: a whole nubo cloud on this machine, in the foreground.
#
# State lives under var/ (override with NUBO_STATE_DIR) and persists across runs:
#   var/pg/                PostgreSQL cluster (created on the first run, reused afterwards)
#   var/master.key         key that seals access-key secrets (0600)
#   var/nubo-admin.env     operator credentials: NUBO_ENDPOINT, AWS_ACCESS_KEY_ID, ...
#   var/log/               daemon and database logs
# Ctrl-C or SIGTERM stops every daemon and the database cleanly.
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
    # A free port, chosen once and kept.
    port=55432
    while ss -ltn "sport = :$port" | grep -q LISTEN; do port=$((port + 1)); done
    echo "$port" >"$STATE/pg.port"
fi
pg_port=$(cat "$STATE/pg.port")
"${as_pg[@]}" mkdir -p "$pg_sock"
"${as_pg[@]}" "$PG_BIN/pg_ctl" -w -D "$pg_dir" -l "$pg_dir/postgresql.log" \
    -o "-k $pg_sock -h 127.0.0.1 -p $pg_port" start >/dev/null
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
"$bin/nubo-gateway" 2>>"$STATE/log/gateway.log" &
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

cat <<MSG

  nubo is running.

  Endpoint:     http://127.0.0.1:$PORT   (EC2 Query API at /, REST API at /v1,
                health at /healthz, Prometheus metrics at /metrics)
  Region:       nubo-1
  Credentials:  $env_file
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
    $top/build/sdk/nubo type list            # the nubo CLI (man sdk/c/doc/nubo.1)

  Logs in $STATE/log/. Press Ctrl-C to stop.
MSG

# Wait until a daemon exits or a signal arrives.
wait -n "${pids[@]}" || true
say "a daemon exited; see $STATE/log/"
