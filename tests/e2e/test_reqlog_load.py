"""End-to-end: the request log under load, and across a crash of the gateway.

1. N signed requests from several threads over keep-alive connections (one in ten with a bad
   signature): request_log grows by exactly N rows for that key, one per request id, with the
   right status and error code.
2. Load from several threads, SIGKILL of the gateway in the middle: every request that was
   answered 200 has its row (the gateway commits the row before it answers). Then the gateway
   starts again on the same database and serves and logs requests.
Prints TAP. Run: /usr/bin/python3 tests/e2e/test_reqlog_load.py"""

import sys

sys.dont_write_bytecode = True

import http.client  # noqa: E402
import itertools  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import nubo_env  # noqa: E402
from nubo_env import check, check_eq, sql_quote  # noqa: E402

N = 2000
THREADS = 4
BAD_EVERY = 10  # every 10th request of phase 1 is signed with a wrong secret

tap = nubo_env.Tap(__file__)


def ids_present(env, request_ids):
    """How many of 'request_ids' have a request_log row (one query, ids through stdin)."""
    if not request_ids:
        return 0
    arr = ",".join(sql_quote(r) for r in request_ids)
    return int(env.psql1(f"SELECT count(DISTINCT request_id) FROM request_log "
                         f"WHERE request_id = ANY(ARRAY[{arr}]::uuid[])"))


def missing_ids(env, request_ids):
    arr = ",".join(sql_quote(r) for r in request_ids)
    rows = env.psql(f"SELECT r FROM unnest(ARRAY[{arr}]::uuid[]) r WHERE NOT EXISTS "
                    f"(SELECT 1 FROM request_log l WHERE l.request_id = r)")
    return [r[0] for r in rows]


class Load:
    """Threads sending signed DescribeRegions over keep-alive connections."""

    def __init__(self, env, creds, total=None, deadline_s=20.0, bad_every=0):
        self.env = env
        self.creds = creds
        self.total = total
        self.bad_every = bad_every
        self.deadline = time.monotonic() + deadline_s
        self.counter = itertools.count()
        self.lock = threading.Lock()
        self.results = []  # (index, status, request id, bad signature?)
        self.errors = []  # (index or None, exception text)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True)
                        for _ in range(THREADS)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def join(self, timeout=30.0):
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, end - time.monotonic()))
        return not any(t.is_alive() for t in self.threads)

    def _next(self):
        with self.lock:
            i = next(self.counter)
        if self.total is not None and i >= self.total:
            return None
        return i

    def _run(self):
        conn = None
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            i = self._next()
            if i is None:
                break
            bad = bool(self.bad_every) and i % self.bad_every == 0
            headers, body = self.env.sign(
                self.creds, {"Action": "DescribeRegions"},
                secret=(self.creds.secret[:-1] + ("A" if self.creds.secret[-1] != "A" else "B"))
                if bad else None)
            for attempt in (1, 2):
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", self.env.gw_port,
                                                          timeout=10)
                    conn.request("POST", "/", body=body, headers=headers)
                    r = conn.getresponse()
                    r.read()
                    rid = r.getheader("x-amzn-RequestId")
                    with self.lock:
                        self.results.append((i, r.status, rid, bad))
                    if r.getheader("Connection", "").lower() == "close":
                        conn.close()
                        conn = None
                    break
                except (OSError, http.client.HTTPException) as e:
                    if conn is not None:
                        conn.close()
                        conn = None
                    # A keep-alive connection the server closed between requests: retry once
                    # on a new one. (The first attempt may have reached the gateway: the request
                    # count then differs, and the test says so.)
                    if attempt == 2 or not isinstance(e, (http.client.RemoteDisconnected,
                                                          BrokenPipeError,
                                                          ConnectionResetError)):
                        with self.lock:
                            self.errors.append((i, f"{type(e).__name__}: {e}"))
                        if self.total is None:
                            return  # crash phase: the gateway is gone
                        break
        if conn is not None:
            conn.close()


@tap.test(timeout=60)
def test_every_request_logged_under_load(env):
    creds = env.tenant("load")
    before = env.reqlog_count(creds.key_id)
    t0 = time.monotonic()
    load = Load(env, creds, total=N, deadline_s=40, bad_every=BAD_EVERY).start()
    check(load.join(45), "load threads did not finish")
    elapsed = time.monotonic() - t0
    print(f"    # {N} requests from {THREADS} threads in {elapsed:.1f} s "
          f"({N / elapsed:.0f}/s)")
    check(not load.errors, f"{len(load.errors)} requests failed at the HTTP level",
          load.errors[:10])
    check_eq(len(load.results), N, "answered requests")
    wrong = [r for r in load.results if r[1] != (403 if r[3] else 200)]
    check(not wrong, f"{len(wrong)} requests got an unexpected status", wrong[:10])
    rids = [r[2] for r in load.results]
    check(all(rids), "a response without x-amzn-RequestId")
    check_eq(len(set(rids)), N, "distinct request ids")

    after = env.reqlog_count(creds.key_id)
    check_eq(after - before, N, f"request_log rows added for {creds.key_id}")
    check_eq(ids_present(env, rids), N, "request ids of the answers found in request_log")
    rows = env.psql("SELECT COALESCE(error_code, ''), http_status, count(*), "
                    "count(tenant_id), min(action), max(action) FROM request_log "
                    f"WHERE access_key_id = {sql_quote(creds.key_id)} "
                    f"AND request_id = ANY(ARRAY[{','.join(sql_quote(r) for r in rids)}]::uuid[]) "
                    "GROUP BY 1, 2 ORDER BY 1")
    n_bad = len(range(0, N, BAD_EVERY))
    check_eq([tuple(r) for r in rows],
             [("", "200", str(N - n_bad), str(N - n_bad), "DescribeRegions", "DescribeRegions"),
              ("SignatureDoesNotMatch", "403", str(n_bad), "0", "DescribeRegions",
               "DescribeRegions")],
             "request_log rows by (error_code, http_status, count, with tenant, actions)")
    row = env.psql(f"SELECT host(source_addr), user_agent, latency_us >= 0 "
                   f"FROM request_log WHERE request_id = {sql_quote(rids[0])}::uuid")
    check_eq(row, [["127.0.0.1", nubo_env.USER_AGENT, "t"]],
             "source_addr, user_agent, latency_us >= 0 of a row")


@tap.test(timeout=60)
def test_acknowledged_requests_survive_a_crash(env):
    creds = env.tenant("crash")
    # Warm the key cache and the connections, then load for a while and kill the gateway.
    check_eq(env.ec2_raw(creds, {"Action": "DescribeRegions"}).status, 200, "first request")
    load = Load(env, creds, total=None, deadline_s=15).start()
    time.sleep(1.5)
    with load.lock:
        acked_before_kill = sum(1 for r in load.results if r[1] == 200)
    env.kill_gateway()
    killed_at = time.monotonic()
    check(load.join(20), "load threads did not stop after the gateway died")
    load.stop.set()
    acked = [r[2] for r in load.results if r[1] == 200]
    other = [r for r in load.results if r[1] != 200]
    print(f"    # {len(acked)} requests acknowledged before SIGKILL "
          f"({acked_before_kill} at the kill decision), {len(load.errors)} cut off, "
          f"threads stopped {time.monotonic() - killed_at:.1f} s after the kill")
    check(len(acked) >= 50, "too few requests acknowledged before the kill to mean anything",
          len(acked))
    check(not other, "answers other than 200 before the crash", other[:10])
    check(load.errors, "no request was cut off: the kill did not happen mid-load")
    check(all(acked), "a 200 without x-amzn-RequestId")
    missing = missing_ids(env, acked)
    check(not missing, f"{len(missing)} of {len(acked)} acknowledged requests are not in "
          "request_log after the crash", missing[:20])
    rows = env.reqlog_count(creds.key_id)
    check(rows >= len(acked) + 1, f"request_log has {rows} rows for the key, fewer than the "
          f"{len(acked) + 1} acknowledged")

    # The gateway comes back on the same database and logs again.
    env.start_gateway()
    r = env.ec2_raw(creds, {"Action": "DescribeRegions"})
    check_eq(r.status, 200, f"request after the restart\n{r}")
    row = env.reqlog_row(r.request_id)
    check(row is not None and row["http_status"] == 200, "request after the restart not "
          "logged", row)
    check_eq(env.reqlog_count(creds.key_id), rows + 1, "rows after one more request")


if __name__ == "__main__":
    tap.main()
