"""End-to-end: billing through the REST API of a real nubo-gateway. Usage events are written
as the triggers would (instance_events, image_storage_events) in closed hours, the real
nubo-billing binary aggregates and invoices them, and the tenants read their usage, invoices
and budgets: each sees its own, the admin role sees all. Prints TAP.
Run: /usr/bin/python3 tests/e2e/test_billing_rest.py"""

import sys

sys.dont_write_bytecode = True

import csv  # noqa: E402
import io  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402

import nubo_env  # noqa: E402
from nubo_env import REPO, TestFailure, check, check_eq, sql_quote  # noqa: E402

BILLING = os.environ.get("NUBO_BILLING_BIN", str(REPO / "build/debug/bin/nubo-billing"))

tap = nubo_env.Tap(__file__)
S = {}


def need(key):
    if key not in S:
        raise TestFailure(f"needs '{key}' from an earlier test, which failed")
    return S[key]


def billing(env, *args):
    e = dict(os.environ, NUBO_DB_CONNINFO=env.conninfo, NUBO_BILLING_GRACE_S="0")
    r = subprocess.run([BILLING, *args], capture_output=True, text=True, timeout=120, env=e,
                       cwd=REPO)
    check_eq(r.returncode, 0, f"nubo-billing {' '.join(args)}; stderr:\n{r.stderr}")
    return r.stdout


def ok(r, status=200):
    check_eq(r.status, status, f"HTTP status of {r.method} {r.path}; response\n{r}")
    return r.json


@tap.test
def usage_is_aggregated_and_invoiced(env):
    t1, t2 = env.tenant("bill-1"), env.tenant("bill-2")
    # Two hours of a t3.micro run, ending at the start of the last closed hour, and a 10 GB
    # image for the same two hours: in the current month unless that started less than three
    # hours ago.
    end = env.psql1("SELECT date_trunc('hour', now()) - interval '1 hour'")
    start = env.psql1(f"SELECT {sql_quote(end)}::timestamptz - interval '2 hours'")
    period = env.psql1(f"SELECT billing_period_of({sql_quote(start)})")
    env.psql(
        "INSERT INTO instance_events (at, instance_id, tenant_id, instance_type, to_state)"
        f" VALUES ({sql_quote(start)}, 'i-0000000000000e2e1', {sql_quote(t1.tenant_id)},"
        "          't3.micro', 'running'),"
        f"        ({sql_quote(end)}, 'i-0000000000000e2e1', {sql_quote(t1.tenant_id)},"
        "          't3.micro', 'terminated');"
        "INSERT INTO image_storage_events (at, image_id, tenant_id, bytes)"
        f" VALUES ({sql_quote(start)}, 'ami-00000000000000e2e', {sql_quote(t1.tenant_id)},"
        "          10000000000),"
        f"        ({sql_quote(end)}, 'ami-00000000000000e2e', {sql_quote(t1.tenant_id)}, 0)")
    billing(env, "--aggregate")
    n = env.psql1(f"SELECT count(*) FROM usage_records WHERE tenant_id = {sql_quote(t1.tenant_id)}")
    check_eq(n, "4", "usage records (2 hours x 2 meters)")
    billing(env, "--invoice", period)
    S.update(t1=t1, t2=t2, period=period, start=start)


@tap.test
def tenant_sees_its_invoice(env):
    t1, period = need("t1"), need("period")
    doc = ok(env.rest(t1, "GET", "/v1/invoices"))
    check_eq(len(doc["invoices"]), 1, f"invoices of tenant 1: {doc}")
    inv = doc["invoices"][0]
    check_eq(inv["period"], period, "period")
    check_eq(inv["state"], "draft", "state")
    # 7200 s of t3.micro at 10 400 micros/hour = 20 800, billed 20 000 (2.08 cents, half-up to
    # the cent); 10 GB for 7200 s at 50 000 micros per GB-month (730 h) = 1 369.86... micros,
    # billed 0.
    check_eq(inv["total_micros"], 20000, "total")
    detail = ok(env.rest(t1, "GET", f"/v1/invoices/{inv['invoice_id']}"))
    lines = {(ln["meter"], ln["resource_id"]): ln for ln in detail["lines"]}
    run = lines[("instance-running", "i-0000000000000e2e1")]
    check_eq((run["quantity"], run["amount_micros"], run["unit_price_micros"], run["exact_micros"]),
             ("7200", 20000, 10400, "20800.000000"), "instance line")
    img = lines[("image-storage", "ami-00000000000000e2e")]
    check_eq((img["quantity"], img["amount_micros"], img["exact_micros"]),
             ("72000000000000", 0, "1369.863014"), "image line")
    S["invoice_id"] = inv["invoice_id"]


@tap.test
def other_tenant_sees_nothing_admin_sees_all(env):
    t2, invoice_id = need("t2"), need("invoice_id")
    check_eq(ok(env.rest(t2, "GET", "/v1/invoices"))["invoices"], [], "tenant 2's invoices")
    r = env.rest(t2, "GET", f"/v1/invoices/{invoice_id}")
    check_eq((r.status, r.error_code), (400, "InvalidInvoiceID.NotFound"), f"{r}")
    r = env.rest(t2, "GET", "/v1/invoices", query={"tenant": need("t1").tenant_id})
    check_eq((r.status, r.error_code), (403, "UnauthorizedOperation"), f"{r}")
    ids = [i["invoice_id"] for i in ok(env.rest(env.admin, "GET", "/v1/invoices"))["invoices"]]
    check(invoice_id in ids, f"the admin sees every invoice: {ids}")
    ok(env.rest(env.admin, "GET", f"/v1/invoices/{invoice_id}"))


@tap.test
def invoice_as_csv(env):
    """GET /v1/invoices/{id} as CSV, with ?format=csv or Accept: text/csv: nubo-billing's
    export (a header, one row per invoice line), with the JSON's values and totals."""
    t1, t2, invoice_id = need("t1"), need("t2"), need("invoice_id")
    path = f"/v1/invoices/{invoice_id}"
    doc = ok(env.rest(t1, "GET", path))
    header = ["invoice_id", "tenant_id", "period", "state", "currency", "line_no", "kind",
              "meter", "sku", "resource_id", "plan_id", "unit", "unit_quantity",
              "unit_price_micros", "discount_bp", "quantity", "exact_micros", "amount_micros",
              "first_hour", "last_hour"]
    bodies = []
    for who, how in ((t1, {"query": {"format": "csv"}}),
                     (t1, {"headers": {"Accept": "text/csv"}}),
                     (t1, {"headers": {"Accept": "application/json;q=0.5, text/csv"}}),
                     (env.admin, {"query": {"format": "csv"}})):
        r = env.rest(who, "GET", path, **how)
        check_eq(r.status, 200, f"{how}: {r}")
        check(r.headers.get("content-type", "").startswith("text/csv"), f"{how}: {r.headers}")
        check(r.request_id, f"{how}: a request id")
        rows = list(csv.reader(io.StringIO(r.body, newline="")))
        check_eq(rows[0], header, f"{how}: the header")
        check_eq(len(rows) - 1, len(doc["lines"]), f"{how}: one row per line:\n{r.body}")
        for row, line in zip((dict(zip(header, x)) for x in rows[1:]), doc["lines"]):
            check_eq({k: row[k] for k in header[:5]},
                     {k: str(doc[k]) for k in header[:5]}, f"{how}: the invoice's columns")
            check_eq({k: row[k] for k in line}, {k: str(v) for k, v in line.items()},
                     f"{how}: line {line['line_no']}")
        check_eq(sum(int(x[header.index("amount_micros")]) for x in rows[1:]),
                 doc["total_micros"], f"{how}: the CSV's total is the JSON's")
        bodies.append(r.body)
    check(len(set(bodies)) == 1, f"the same CSV every way: {bodies}")
    exported = billing(env, "--export", need("period"), "--tenant", t1.tenant_id, "--format",
                       "csv")
    check_eq(bodies[0].replace("\r\n", "\n"), exported, "nubo-billing --export's CSV")

    # JSON when asked for, or preferred; errors stay JSON; another tenant's is not found.
    r = env.rest(t1, "GET", path, headers={"Accept": "application/json, text/csv;q=0.9"})
    check_eq((r.status, r.headers.get("content-type")), (200, "application/json"), f"{r}")
    check_eq(ok(env.rest(t1, "GET", path, query={"format": "json"})), doc, "format=json")
    r = env.rest(t1, "GET", path, query={"format": "xml"})
    check_eq((r.status, r.error_code), (400, "InvalidParameterValue"), f"{r}")
    r = env.rest(t2, "GET", path, query={"format": "csv"})
    check_eq((r.status, r.error_code), (400, "InvalidInvoiceID.NotFound"), f"{r}")


@tap.test
def usage_so_far(env):
    t1, period = need("t1"), need("period")
    doc = ok(env.rest(t1, "GET", "/v1/usage"))
    check(doc["aggregated_until"], f"aggregated_until: {doc}")
    this_month = env.psql1("SELECT billing_period_of(now())")
    check_eq(doc["period"], this_month, "the current period")
    if period == this_month:  # the events were not in the last month's first hours
        meters = {m["meter"]: m for m in doc["meters"]}
        check_eq(meters["instance-running"]["quantity"], "7200", f"usage: {doc}")
        check_eq(doc["total_micros"], 20000, "usage total")
    doc = ok(env.rest(need("t2"), "GET", "/v1/usage"))
    check_eq((doc["meters"], doc["total_micros"]), ([], 0), "tenant 2's usage")


@tap.test
def budget_threshold_raises_one_alert(env):
    t1 = need("t1")
    r = env.rest(t1, "PUT", "/v1/budget", body={"threshold_micros": 0})
    check_eq((r.status, r.error_code), (400, "InvalidParameterValue"), f"{r}")
    doc = ok(env.rest(t1, "PUT", "/v1/budget", body={"threshold_micros": 10000}))
    check_eq((doc["threshold_micros"], doc["alerts"]), (10000, []), "budget set")
    billing(env, "--aggregate")
    billing(env, "--aggregate")
    doc = ok(env.rest(t1, "GET", "/v1/budget"))
    if need("period") == env.psql1("SELECT billing_period_of(now())"):
        check_eq(len(doc["alerts"]), 1, f"one alert: {doc}")
        check_eq(doc["alerts"][0]["amount_micros"], 20000, "alert amount")
    ok(env.rest(env.admin, "GET", "/v1/budget", query={"tenant": t1.tenant_id}))


@tap.test
def close_and_export(env):
    t1, period = need("t1"), need("period")
    # The current month cannot be closed: it is not over.
    e = dict(os.environ, NUBO_DB_CONNINFO=env.conninfo)
    r = subprocess.run([BILLING, "--close", period], capture_output=True, text=True, env=e,
                       cwd=REPO, timeout=60)
    if period == env.psql1("SELECT billing_period_of(now())"):
        check_eq(r.returncode, 1, f"closing the current month; stderr {r.stderr}")
        check("cannot close" in r.stderr, r.stderr)
    csv = billing(env, "--export", period, "--tenant", t1.tenant_id, "--format", "csv")
    check(csv.startswith("invoice_id,tenant_id,period,state,currency,line_no"), csv)
    check_eq(len(csv.strip().splitlines()), 3, f"header and two lines:\n{csv}")


@tap.test
def heartbeat_network_counters_become_events(env):
    """The node API's heartbeat turns each domain's cumulative byte counters into increases
    (instance_net_events), counting again from 0 when a counter went down (domain restart)."""
    t = env.tenant("bill-net")
    h = ok(env.rest(env.admin, "POST", "/v1/admin/hosts", {"name": "bill-net-node"}), 201)
    env.rest(env.admin, "PATCH", f"/v1/admin/hosts/{h['id']}", {"state": "disabled"})
    iid = "i-0000000000000e2e9"
    env.psql(
        "INSERT INTO instances (id, tenant_id, reservation_id, image_id, instance_type, vcpus,"
        " memory_mib, zone, host_id)"
        f" SELECT {sql_quote(iid)}, {sql_quote(t.tenant_id)}, 'r-0000000000000e2e9',"
        f" {sql_quote(env.image())}, 't3.micro', 2, 1024, zone, id FROM hosts"
        f" WHERE id = {sql_quote(h['id'])}")

    def beat(rx, tx):
        body = ('{"stats": {"instances": [{"id": "%s", "state": "running",'
                ' "net_rx_bytes": %d, "net_tx_bytes": %d}]}}' % (iid, rx, tx))
        status, _, reply = env.http("POST", "/internal/v1/heartbeat", body.encode(),
                                    headers={"Authorization": f"Bearer {h['node_token']}"})
        check_eq(status, 200, f"heartbeat: {reply}")

    beat(1000, 5000)
    beat(1500, 5200)
    beat(1500, 5200)  # no traffic: no event
    beat(100, 50)  # the domain restarted
    rows = env.psql1(
        "SELECT string_agg(rx_bytes || '/' || tx_bytes || '/' || tenant_id, ' ' ORDER BY id)"
        f" FROM instance_net_events WHERE instance_id = {sql_quote(iid)}")
    check_eq(rows, " ".join(f"{d}/{t.tenant_id}" for d in ("1000/5000", "500/200", "100/50")),
             "the increases of the counters")
    check_eq(env.psql1("SELECT rx_bytes || '/' || tx_bytes FROM instance_net_counters"
                       f" WHERE instance_id = {sql_quote(iid)}"), "100/50", "the last counters")


if __name__ == "__main__":
    tap.main()
