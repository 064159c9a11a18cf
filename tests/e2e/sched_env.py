"""End-to-end fixture with a scheduler: nubo_env.NuboEnv (PostgreSQL + nubo-gateway) plus a
real nubo-scheduler process, and helpers to make simulated hosts by SQL and to wait for
instances to settle.

Use: tap = nubo_env.Tap(__file__, fixture=sched_env.SchedEnv)"""

import os
import secrets
import time
from pathlib import Path

import nubo_env
from nubo_env import sql_quote

SCHEDULER = Path(os.environ.get("NUBO_SCHEDULER_BIN",
                                nubo_env.REPO / "build/debug/bin/nubo-scheduler"))


class SchedEnv(nubo_env.NuboEnv):
    """A cloud with a scheduler: start() also starts nubo-scheduler (fast polling, debug log)
    and makes the zones nubo-1b and nubo-1c (nubo-1a comes with the migrations)."""

    def __init__(self):
        super().__init__()
        self.scheduler = None  # a nubo_env.Daemon

    def start(self):
        super().start()
        self.psql("INSERT INTO zones (name, region) VALUES ('nubo-1b', 'nubo-1'), "
                  "('nubo-1c', 'nubo-1') ON CONFLICT DO NOTHING")
        self.start_scheduler()

    def summary(self):
        return super().summary() + ", scheduler on"

    def start_scheduler(self):
        assert self.scheduler is None or not self.scheduler.alive()
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1"
        cmd = [str(SCHEDULER),
               "--set", f"db.conninfo={self.conninfo}",
               "--set", f"master_key={self.tmp / 'master.key'}",
               "--set", "scheduler.poll_ms=100",
               "--set", "scheduler.refresh_ms=200",
               "--set", "scheduler.workers=2",
               "--set", "scheduler.drivers=2",
               "--set", "log.level=debug"]
        self.scheduler = nubo_env.Daemon("nubo-scheduler", cmd, env, self.tmp / "scheduler.log")
        self.scheduler.start()
        time.sleep(0.3)
        if not self.scheduler.alive():
            raise RuntimeError("nubo-scheduler exited at start:\n" + self.scheduler_log_tail())

    def stop_scheduler(self, timeout=15.0):
        """Stops the scheduler with SIGTERM; returns its exit status."""
        return self.scheduler.stop(timeout=timeout) if self.scheduler else None

    def close(self):
        errors = []
        status = self.stop_scheduler()
        if status not in (None, 0):
            errors.append(f"nubo-scheduler exited with status {status}:\n"
                          + self.scheduler_log_tail())
        return errors + super().close()

    def scheduler_log_tail(self, lines=40):
        return self.scheduler.tail(lines) if self.scheduler else "(no scheduler log)"

    # -- hosts --

    def add_host(self, zone, vcpus=16, memory_gib=64, disk_gib=500, dedicated_tenant=None,
                 traits=(), name=None):
        """A simulated host (no agent: the scheduler plays its operations). Returns its id."""
        host_id = "h-" + secrets.token_hex(9)[:17]
        name = name or f"sim-{host_id[2:10]}"
        traits_sql = "ARRAY[" + ", ".join(sql_quote(t) for t in traits) + "]::text[]"
        dedicated = sql_quote(dedicated_tenant) if dedicated_tenant else "NULL"
        self.psql(f"INSERT INTO hosts (id, name, zone, vcpus, memory_mib, disk_gib, traits, "
                  f"dedicated_tenant, simulated) VALUES ({sql_quote(host_id)}, "
                  f"{sql_quote(name)}, {sql_quote(zone)}, {int(vcpus)}, "
                  f"{int(memory_gib) * 1024}, {int(disk_gib)}, {traits_sql}, {dedicated}, true)")
        return host_id

    def host_of(self, instance_id):
        """The host_id of an instance (None while unplaced)."""
        return self.psql1(f"SELECT host_id FROM instances WHERE id = {sql_quote(instance_id)}")

    def instance_row(self, instance_id, columns):
        rows = self.psql(f"SELECT {columns} FROM instances WHERE id = {sql_quote(instance_id)}")
        return rows[0] if rows else None

    def wait_settled(self, ec2, instance_ids, timeout=30.0, states=("running", "error")):
        """Waits until every instance is in one of 'states' (by SQL: the scheduler's view) and
        returns {id: state}."""
        ids = ", ".join(sql_quote(i) for i in instance_ids)
        deadline = time.monotonic() + timeout
        while True:
            rows = self.psql(f"SELECT id, state FROM instances WHERE id IN ({ids})")
            got = {r[0]: r[1] for r in rows}
            if len(got) == len(instance_ids) and all(s in states for s in got.values()):
                return got
            if time.monotonic() > deadline:
                raise nubo_env.TestFailure(
                    f"instances did not reach {states} in {timeout} s: {got}\n"
                    + self.scheduler_log_tail())
            time.sleep(0.1)
