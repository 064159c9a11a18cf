/* Integration tests of billing (billing/, deploy/migrations/0006_billing.sql) against a real,
 * throwaway PostgreSQL 15 cluster with the project's migrations:
 * - a known scenario (instances of several types started, stopped and terminated across hour and
 *   period boundaries, short runs under two plan versions with different minimums, images
 *   stored and resized, elastic IPs allocated, associated, moved, disassociated and released and
 *   VPN connections made and deleted, a tenant discount and price override) is aggregated and
 *   invoiced, and every invoice line and total equals an independent calculation written here,
 *   to the micro;
 * - aggregation run again (rewound, and from scratch) gives identical records;
 * - a closed period is immutable and late usage goes to the next period as an adjustment;
 * - the real nubo-billing binary is SIGKILLed mid-aggregation and run again: the records equal
 *   those of a clean run;
 * - network bytes (instance_net_events) become hourly network-in/-out records, egress priced per
 *   GB. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "nbtest.h"

#include "billing.h"
#include "nubo/error.h"
#include "nubo/log.h"
#include "nubo/migrate.h"
#include "nubo/pg.h"

#include "../lib/pgtmp.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BILLING_BIN "build/debug/bin/nubo-billing"
#define T1          "111111111111"
#define T2          "222222222222"
#define UNTIL       "2026-03-01 00:00:00+00"

struct fixture {
    struct nb_test_pg *pg;
    struct nb_pg_pool *pool;
    struct nb_pg_conn *conn;
    char *conninfo;
};

static int fixture_setup(void **state)
{
    static int counter;
    struct nb_test_pg *cluster = *state;
    struct fixture *f = calloc(1, sizeof *f);
    char dbname[32];
    snprintf(dbname, sizeof dbname, "billing_%d", ++counter);
    struct nb_error err = {0};
    if (!f || nb_test_pg_create_db(cluster, dbname) < 0 ||
        !(f->conninfo = nb_test_pg_conninfo_db(cluster, dbname)) ||
        !(f->pool = nb_pg_pool_new(f->conninfo, 2, &err)) ||
        !(f->conn = nb_pg_acquire(f->pool, 5000, &err)) ||
        nb_migrate(f->conn, "deploy/migrations", &err) < 0 ||
        nb_pg_command(f->conn,
                      "INSERT INTO tenants (id, name) VALUES ('" T1 "', 'one'), ('" T2 "', 'two')",
                      &err) < 0) {
        fprintf(stderr, "fixture: %s\n", err.msg);
        return -1;
    }
    f->pg = cluster;
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *f = *state;
    nb_pg_release(f->conn);
    nb_pg_pool_free(f->pool);
    free(f->conninfo);
    free(f);
    return 0;
}

/* --- the scenario ------------------------------------------------------------------------- */

struct inst_event {
    const char *at, *id, *tenant, *type, *state;
};

static const struct inst_event INST_EVENTS[] = {
    /* A: runs across the period boundary, stops, then a 25 s run (minimum 60 s: +35 s). */
    {"2026-01-31 22:30:00", "i-0000000000000000a", T1, "t3.micro", "pending"},
    {"2026-01-31 22:31:10", "i-0000000000000000a", T1, "t3.micro", "running"},
    {"2026-02-01 01:15:20", "i-0000000000000000a", T1, "t3.micro", "stopping"},
    {"2026-02-01 01:15:50", "i-0000000000000000a", T1, "t3.micro", "stopped"},
    {"2026-02-01 03:00:00", "i-0000000000000000a", T1, "t3.micro", "pending"},
    {"2026-02-01 03:00:30", "i-0000000000000000a", T1, "t3.micro", "running"},
    {"2026-02-01 03:00:55", "i-0000000000000000a", T1, "t3.micro", "shutting-down"},
    {"2026-02-01 03:01:10", "i-0000000000000000a", T1, "t3.micro", "terminated"},
    /* B: runs for weeks across the period and the plan change, then stays stopped. */
    {"2026-01-15 10:00:00", "i-0000000000000000b", T1, "m5.large", "pending"},
    {"2026-01-15 10:00:05", "i-0000000000000000b", T1, "m5.large", "running"},
    {"2026-02-20 12:00:00", "i-0000000000000000b", T1, "m5.large", "stopping"},
    {"2026-02-20 12:00:07", "i-0000000000000000b", T1, "m5.large", "stopped"},
    /* C (discounted tenant): a 31 s run across the period boundary; its minimum top-up (29 s)
     * lands in the hour it ended, in February. */
    {"2026-01-31 23:59:50", "i-0000000000000000c", T2, "c5.large", "pending"},
    {"2026-01-31 23:59:59", "i-0000000000000000c", T2, "c5.large", "running"},
    {"2026-02-01 00:00:30", "i-0000000000000000c", T2, "c5.large", "terminated"},
    /* E (discounted tenant): weeks of running under both plans, then stopped. */
    {"2026-02-03 08:20:00", "i-0000000000000000e", T2, "c5.large", "running"},
    {"2026-02-28 21:07:13", "i-0000000000000000e", T2, "c5.large", "stopped"},
    /* D: a 90 s run under the second plan, whose minimum is 120 s (+30 s). */
    {"2026-02-20 10:00:00", "i-0000000000000000d", T1, "t3.micro", "pending"},
    {"2026-02-20 10:00:00", "i-0000000000000000d", T1, "t3.micro", "running"},
    {"2026-02-20 10:01:30", "i-0000000000000000d", T1, "t3.micro", "stopped"},
    {"2026-02-20 11:00:00", "i-0000000000000000d", T1, "t3.micro", "terminated"},
};
#define N_INST (sizeof INST_EVENTS / sizeof INST_EVENTS[0])

struct image_event {
    const char *at, *id, *tenant;
    long long bytes;
};

static const struct image_event IMAGE_EVENTS[] = {
    {"2026-01-20 00:00:00", "ami-00000000000000001", T1, 10000000000LL},
    {"2026-02-10 05:30:17", "ami-00000000000000001", T1, 12345678901LL},
    {"2026-02-20 00:00:00", "ami-00000000000000001", T1, 0},
    {"2026-02-25 12:00:00", "ami-00000000000000002", T2, 536870912000LL},
};
#define N_IMAGE (sizeof IMAGE_EVENTS / sizeof IMAGE_EVENTS[0])

/* Elastic IPs and VPN connections, changed through their own tables (addresses,
 * network_interfaces, vpn_connections) so that the triggers of migration 0008 write the
 * meter_events rows. The triggers stamp them with clock_timestamp(); the test then gives each
 * operation's rows the operation's time 'at'. 'events' is what the triggers must have written
 * for it, in order ("+meter" starts, "-meter" stops); 'arg' is an address or an interface. */
struct edge_op {
    const char *at, *op, *tenant, *id, *arg, *events;
};

#define EIP1 "eipalloc-00000000000000001"
#define EIP2 "eipalloc-00000000000000002"
#define EIP3 "eipalloc-00000000000000003"
#define VPN1 "vpn-00000000000000001"
#define VPN2 "vpn-00000000000000002"

static const struct edge_op EDGE_OPS[] = {
    /* Idle across hours, associated across the period boundary (at a fraction of a second,
     * billed from the whole second), moved to another interface (no event), disassociated under
     * the second plan and released 10 s later. */
    {"2026-01-31 20:10:05", "allocate", T1, EIP1, "198.51.100.1", "+eip-idle"},
    {"2026-01-31 23:40:00.700", "associate", T1, EIP1, "eni-00000000000000001",
     "-eip-idle +eip-associated"},
    {"2026-02-01 00:20:00", "associate", T1, EIP1, "eni-00000000000000002", ""},
    {"2026-02-16 06:00:30", "disassociate", T1, EIP1, NULL, "-eip-associated +eip-idle"},
    {"2026-02-16 06:00:40", "release", T1, EIP1, NULL, "-eip-idle"},
    /* (discounted tenant) Associated, then its interface is deleted (the instance terminated):
     * idle from then on, still allocated at the end. */
    {"2026-02-05 08:00:00", "allocate", T2, EIP2, "198.51.100.2", "+eip-idle"},
    {"2026-02-05 09:30:00", "associate", T2, EIP2, "eni-00000000000000003",
     "-eip-idle +eip-associated"},
    {"2026-02-27 22:59:59", "eni-delete", T2, EIP2, "eni-00000000000000003",
     "-eip-associated +eip-idle"},
    /* Held for one second and a half: one second. */
    {"2026-02-10 10:10:10", "allocate", T1, EIP3, "198.51.100.3", "+eip-idle"},
    {"2026-02-10 10:10:11.500", "release", T1, EIP3, NULL, "-eip-idle"},
    /* (discounted tenant) Across the period boundary; becoming available changes nothing, nor
     * does removing the row of a deleted connection. */
    {"2026-01-31 23:30:00", "vpn-create", T2, VPN1, "198.51.100.11", "+vpn-connection"},
    {"2026-02-01 00:05:00", "vpn-available", T2, VPN1, NULL, ""},
    {"2026-02-03 12:34:56.999", "vpn-delete", T2, VPN1, NULL, "-vpn-connection"},
    {"2026-02-04 00:00:00", "vpn-purge", T2, VPN1, NULL, ""},
    /* Made under the second plan, still there at the end. */
    {"2026-02-20 10:00:00", "vpn-create", T1, VPN2, "198.51.100.12", "+vpn-connection"},
};
#define N_EDGE (sizeof EDGE_OPS / sizeof EDGE_OPS[0])

/* What each operation does, with the parameters $1 = id, $2 = arg, $3 = tenant (the first
 * 'nparams' of them). */
static const struct {
    const char *op, *sql;
    int nparams;
} EDGE_SQL[] = {
    {"allocate",
     "INSERT INTO addresses (allocation_id, public_ip, tenant_id) VALUES ($1, $2::inet, $3)", 3},
    {"associate",
     "UPDATE addresses SET network_interface_id = $2, associated_at = now(),"
     " association_id = network_new_id('eipassoc') WHERE allocation_id = $1",
     2},
    {"disassociate",
     "UPDATE addresses SET network_interface_id = NULL, association_id = NULL,"
     " associated_at = NULL WHERE allocation_id = $1",
     1},
    {"release", "DELETE FROM addresses WHERE allocation_id = $1", 1},
    {"eni-delete",
     "DELETE FROM network_interfaces n USING addresses a"
     " WHERE n.id = a.network_interface_id AND a.allocation_id = $1 AND n.id = $2",
     2},
    {"vpn-create",
     "INSERT INTO vpn_connections (id, tenant_id, vpn_gateway_id, customer_gateway_id,"
     " outside_ip, psk)"
     " SELECT $1, $3, g.id, c.id, $2::inet, 'presharedkey1'"
     " FROM vpn_gateways g, customer_gateways c WHERE g.tenant_id = $3 AND c.tenant_id = $3",
     3},
    {"vpn-available", "UPDATE vpn_connections SET state = 'available' WHERE id = $1", 1},
    {"vpn-delete", "UPDATE vpn_connections SET state = 'deleted', deleted_at = now() WHERE id = $1",
     1},
    {"vpn-purge", "DELETE FROM vpn_connections WHERE id = $1", 1},
};

/* The VPCs, subnets, interfaces and VPN gateways the operations above use. */
static const char EDGE_SETUP_SQL[] =
    "INSERT INTO vpcs (id, tenant_id, cidr_block, segment) VALUES"
    " ('vpc-00000000000000001', '" T1 "', '10.1.0.0/16', 101),"
    " ('vpc-00000000000000002', '" T2 "', '10.2.0.0/16', 102);"
    "INSERT INTO subnets (id, tenant_id, vpc_id, zone, cidr_block) VALUES"
    " ('subnet-00000000000000001', '" T1 "', 'vpc-00000000000000001', 'nubo-1a', '10.1.1.0/24'),"
    " ('subnet-00000000000000002', '" T2 "', 'vpc-00000000000000002', 'nubo-1a', '10.2.1.0/24');"
    "INSERT INTO network_interfaces (id, tenant_id, vpc_id, subnet_id, mac_address, private_ip)"
    " VALUES ('eni-00000000000000001', '" T1 "', 'vpc-00000000000000001',"
    "         'subnet-00000000000000001', '02:00:00:00:00:01', '10.1.1.10'),"
    "        ('eni-00000000000000002', '" T1 "', 'vpc-00000000000000001',"
    "         'subnet-00000000000000001', '02:00:00:00:00:02', '10.1.1.11'),"
    "        ('eni-00000000000000003', '" T2 "', 'vpc-00000000000000002',"
    "         'subnet-00000000000000002', '02:00:00:00:00:03', '10.2.1.10');"
    "INSERT INTO vpn_gateways (id, tenant_id, vpc_id) VALUES"
    " ('vgw-00000000000000001', '" T1 "', 'vpc-00000000000000001'),"
    " ('vgw-00000000000000002', '" T2 "', 'vpc-00000000000000002');"
    "INSERT INTO customer_gateways (id, tenant_id, ip_address) VALUES"
    " ('cgw-00000000000000001', '" T1 "', '203.0.113.1'),"
    " ('cgw-00000000000000002', '" T2 "', '203.0.113.2')";

/* Runs 'o' and dates the meter_events rows it made 'o->at', checking they are 'o->events'. */
static void run_edge_op(struct fixture *f, const struct edge_op *o)
{
    struct nb_error err = {0};
    size_t k = 0;
    while (k < sizeof EDGE_SQL / sizeof EDGE_SQL[0] && strcmp(EDGE_SQL[k].op, o->op)) {
        k++;
    }
    assert_true(k < sizeof EDGE_SQL / sizeof EDGE_SQL[0]);
    PGresult *r =
        nb_pg_exec(f->conn, "SELECT coalesce(max(id), 0) FROM meter_events", 0, NULL, &err);
    assert_ok(r, err);
    char before[32];
    snprintf(before, sizeof before, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);

    const char *p[3] = {o->id, o->arg, o->tenant};
    r = nb_pg_exec(f->conn, EDGE_SQL[k].sql, EDGE_SQL[k].nparams, p, &err);
    assert_ok(r, err);
    if (strcmp(PQcmdTuples(r), "1")) {
        fail_msg("%s %s at %s changed %s rows", o->op, o->id, o->at, PQcmdTuples(r));
    }
    PQclear(r);

    const char *q[4] = {o->at, before, o->tenant, o->id};
    r = nb_pg_exec(f->conn,
                   "WITH d AS (UPDATE meter_events SET at = ($1 || '+00')::timestamptz"
                   "           WHERE id > $2::bigint RETURNING *)"
                   " SELECT coalesce(string_agg(CASE WHEN active THEN '+' ELSE '-' END || meter,"
                   "                            ' ' ORDER BY id), ''),"
                   "        count(*) FILTER (WHERE tenant_id <> $3 OR resource_id <> $4"
                   "                         OR sku <> '')"
                   " FROM d",
                   4, q, &err);
    assert_ok(r, err);
    if (strcmp(PQgetvalue(r, 0, 0), o->events) || strcmp(PQgetvalue(r, 0, 1), "0")) {
        fail_msg("%s %s: the triggers wrote \"%s\" (%s for another resource), expected \"%s\"",
                 o->op, o->id, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), o->events);
    }
    PQclear(r);
}

/* The second plan version, in effect from 2026-02-15: t3.micro and m5.large cost differently
 * and the minimum run is 120 s. T2 has 10 % off everything and its own image-storage price. */
static const char SCENARIO_PRICES_SQL[] =
    "INSERT INTO price_plans (id, name, effective_from, min_run_seconds)"
    " VALUES ('plan-2026-02', 'default', '2026-02-15 00:00:00+00', 120);"
    "INSERT INTO plan_prices (plan_id, meter, sku, unit, unit_quantity, price_micros)"
    " SELECT 'plan-2026-02', meter, sku, unit, unit_quantity,"
    "        CASE sku WHEN 't3.micro' THEN 11000 WHEN 'm5.large' THEN 90000"
    "                 ELSE price_micros END"
    " FROM plan_prices WHERE plan_id = 'plan-default-1';"
    "INSERT INTO tenant_price_overrides (tenant_id, discount_bp) VALUES ('" T2 "', 1000);"
    "INSERT INTO tenant_price_overrides (tenant_id, meter, price_micros, discount_bp)"
    " VALUES ('" T2 "', 'image-storage', 40000, 1000);";

static void insert_scenario(struct fixture *f)
{
    struct nb_error err = {0};
    for (size_t i = 0; i < N_INST; i++) {
        const struct inst_event *e = &INST_EVENTS[i];
        const char *p[5] = {e->at, e->id, e->tenant, e->type, e->state};
        PGresult *r = nb_pg_exec(
            f->conn,
            "INSERT INTO instance_events (at, instance_id, tenant_id,"
            " instance_type, to_state) VALUES (($1 || '+00')::timestamptz, $2, $3, $4, $5)",
            5, p, &err);
        assert_ok(r, err);
        PQclear(r);
    }
    for (size_t i = 0; i < N_IMAGE; i++) {
        const struct image_event *e = &IMAGE_EVENTS[i];
        char bytes[32];
        snprintf(bytes, sizeof bytes, "%lld", e->bytes);
        const char *p[4] = {e->at, e->id, e->tenant, bytes};
        PGresult *r = nb_pg_exec(f->conn,
                                 "INSERT INTO image_storage_events (at, image_id, tenant_id, bytes)"
                                 " VALUES (($1 || '+00')::timestamptz, $2, $3, $4)",
                                 4, p, &err);
        assert_ok(r, err);
        PQclear(r);
    }
    assert_zero(nb_pg_command(f->conn, EDGE_SETUP_SQL, &err), err);
    for (size_t i = 0; i < N_EDGE; i++) {
        run_edge_op(f, &EDGE_OPS[i]);
    }
    assert_zero(nb_pg_command(f->conn, SCENARIO_PRICES_SQL, &err), err);
}

/* --- the independent calculation ---------------------------------------------------------- */

static time_t utc(const char *s)
{
    struct tm tm = {0};
    sscanf(s, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
           &tm.tm_sec);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

struct plan {
    const char *id;
    time_t from, to;
    int min_run;
};

static struct plan plans[2];

static void init_plans(void)
{
    time_t change = utc("2026-02-15 00:00:00");
    plans[0] = (struct plan){"plan-default-1", 0, change, 60};
    plans[1] = (struct plan){"plan-2026-02", change, utc("2100-01-01 00:00:00"), 120};
}

static const struct plan *plan_at(time_t t)
{
    return t < plans[1].from ? &plans[0] : &plans[1];
}

/* Price (micros per 'unit' base units) of 'meter'/'sku' under plan 'p' for 'tenant', and its
 * discount in basis points. */
static long long price_of(const struct plan *p, const char *tenant, const char *meter,
                          const char *sku, long long *unit, int *discount)
{
    bool two = p == &plans[1];
    *discount = strcmp(tenant, T2) ? 0 : 1000;
    if (!strcmp(meter, "image-storage")) {
        *unit = 2628000000000000LL;
        return strcmp(tenant, T2) ? 50000 : 40000;
    }
    if (!strcmp(meter, "stopped-storage")) {
        *unit = 2628000;
        return 80000;
    }
    *unit = 3600;
    if (!strncmp(meter, "eip-", 4)) {
        return 5000; /* idle or associated alike */
    }
    if (!strcmp(meter, "vpn-connection")) {
        return 50000;
    }
    if (!strcmp(sku, "t3.micro")) {
        return two ? 11000 : 10400;
    }
    if (!strcmp(sku, "m5.large")) {
        return two ? 90000 : 96000;
    }
    return 85000; /* c5.large */
}

static int disk_gib(const char *type)
{
    return strcmp(type, "t3.micro") ? 32 : 8;
}

struct line {
    char tenant[16], meter[24], sku[16], resource[32], plan[16];
    long long quantity, amount;
};

struct expect {
    struct line lines[64];
    int n;
};

/* Adds 'qty' to the line (tenant, meter, sku, resource, plan). */
static void add(struct expect *x, const char *tenant, const char *meter, const char *sku,
                const char *resource, const char *plan, long long qty)
{
    if (qty <= 0) {
        return;
    }
    for (int i = 0; i < x->n; i++) {
        struct line *l = &x->lines[i];
        if (!strcmp(l->tenant, tenant) && !strcmp(l->meter, meter) && !strcmp(l->sku, sku) &&
            !strcmp(l->resource, resource) && !strcmp(l->plan, plan)) {
            l->quantity += qty;
            return;
        }
    }
    assert_true(x->n < 64);
    struct line *l = &x->lines[x->n++];
    snprintf(l->tenant, sizeof l->tenant, "%s", tenant);
    snprintf(l->meter, sizeof l->meter, "%s", meter);
    snprintf(l->sku, sizeof l->sku, "%s", sku);
    snprintf(l->resource, sizeof l->resource, "%s", resource);
    snprintf(l->plan, sizeof l->plan, "%s", plan);
    l->quantity = qty;
}

/* Seconds of [a, b) inside [lo, hi). */
static long long overlap(time_t a, time_t b, time_t lo, time_t hi)
{
    time_t s = a > lo ? a : lo, e = b < hi ? b : hi;
    return e > s ? (long long)(e - s) : 0;
}

/* Adds interval [a, b) of 'per_second' units to 'x', cut by plan, within [ps, pe). */
static void add_interval(struct expect *x, const char *tenant, const char *meter, const char *sku,
                         const char *resource, time_t a, time_t b, time_t ps, time_t pe,
                         long long per_second)
{
    for (int k = 0; k < 2; k++) {
        time_t lo = plans[k].from > ps ? plans[k].from : ps;
        time_t hi = plans[k].to < pe ? plans[k].to : pe;
        add(x, tenant, meter, sku, resource, plans[k].id, overlap(a, b, lo, hi) * per_second);
    }
}

/* The meter that runs after operation 'op' on an address or a VPN connection, or NULL. */
static const char *edge_meter(const char *op)
{
    if (!strcmp(op, "allocate") || !strcmp(op, "disassociate") || !strcmp(op, "eni-delete")) {
        return "eip-idle";
    }
    if (!strcmp(op, "associate")) {
        return "eip-associated";
    }
    if (!strcmp(op, "vpn-create") || !strcmp(op, "vpn-available")) {
        return "vpn-connection";
    }
    return NULL; /* released, deleted */
}

/* The expected lines of period [ps, pe), computed from the event arrays alone. */
static void expected_lines(struct expect *x, time_t ps, time_t pe)
{
    time_t until = utc("2026-03-01 00:00:00");
    memset(x, 0, sizeof *x);
    for (size_t i = 0; i < N_INST; i++) {
        const struct inst_event *e = &INST_EVENTS[i];
        bool last = i + 1 == N_INST || strcmp(INST_EVENTS[i + 1].id, e->id);
        time_t a = utc(e->at), b = last ? until : utc(INST_EVENTS[i + 1].at);
        if (!strcmp(e->state, "running")) {
            add_interval(x, e->tenant, "instance-running", e->type, e->id, a, b, ps, pe, 1);
            const struct plan *p = plan_at(b);
            if (!last && b - a < p->min_run && b >= ps && b < pe) {
                add(x, e->tenant, "instance-minimum", e->type, e->id, p->id, p->min_run - (b - a));
            }
        } else if (!strcmp(e->state, "stopped")) {
            add_interval(x, e->tenant, "stopped-storage", e->type, e->id, a, b, ps, pe,
                         disk_gib(e->type));
        }
    }
    for (size_t i = 0; i < N_IMAGE; i++) {
        const struct image_event *e = &IMAGE_EVENTS[i];
        bool last = i + 1 == N_IMAGE || strcmp(IMAGE_EVENTS[i + 1].id, e->id);
        time_t a = utc(e->at), b = last ? until : utc(IMAGE_EVENTS[i + 1].at);
        add_interval(x, e->tenant, "image-storage", "", e->id, a, b, ps, pe, e->bytes);
    }
    /* Addresses and VPN connections: per second, no minimum. */
    for (size_t i = 0; i < N_EDGE; i++) {
        const struct edge_op *e = &EDGE_OPS[i];
        bool last = i + 1 == N_EDGE || strcmp(EDGE_OPS[i + 1].id, e->id);
        time_t a = utc(e->at), b = last ? until : utc(EDGE_OPS[i + 1].at);
        const char *meter = edge_meter(e->op);
        if (meter) {
            add_interval(x, e->tenant, meter, "", e->id, a, b, ps, pe, 1);
        }
    }
    for (int i = 0; i < x->n; i++) {
        struct line *l = &x->lines[i];
        long long unit;
        int disc;
        const struct plan *p = !strcmp(l->plan, plans[0].id) ? &plans[0] : &plans[1];
        const char *pm = strcmp(l->meter, "instance-minimum") ? l->meter : "instance-running";
        long long price = price_of(p, l->tenant, pm, l->sku, &unit, &disc);
        /* Half-up to the cent: floor(n / d + 1/2) cents, n / d the exact amount in cents. */
        __int128 n = (__int128)l->quantity * price * (10000 - disc);
        __int128 d = (__int128)unit * 10000 * 10000;
        l->amount = (long long)((2 * n + d) / (2 * d)) * 10000;
    }
}

/* Checks the invoice of 'tenant' for 'period' against 'x'. Returns the invoice total. */
static long long check_invoice(struct fixture *f, const struct expect *x, const char *tenant,
                               const char *period)
{
    struct nb_error err = {0};
    long long total = 0;
    int n = 0;
    for (int i = 0; i < x->n; i++) {
        const struct line *l = &x->lines[i];
        if (strcmp(l->tenant, tenant)) {
            continue;
        }
        const char *p[6] = {tenant, period, l->meter, l->sku, l->resource, l->plan};
        PGresult *r = nb_pg_exec(f->conn,
                                 "SELECT l.quantity, l.amount_micros FROM invoice_lines l"
                                 " JOIN invoices i ON i.id = l.invoice_id"
                                 " WHERE i.tenant_id = $1 AND i.period = $2 AND l.meter = $3"
                                 " AND l.sku = $4 AND l.resource_id = $5 AND l.plan_id = $6"
                                 " AND l.kind = 'usage'",
                                 6, p, &err);
        assert_ok(r, err);
        if (PQntuples(r) != 1) {
            fail_msg("%s %s: no line for %s %s %s %s", tenant, period, l->meter, l->sku,
                     l->resource, l->plan);
        }
        if (atoll(PQgetvalue(r, 0, 0)) != l->quantity || atoll(PQgetvalue(r, 0, 1)) != l->amount) {
            fail_msg("%s %s %s %s %s: got quantity %s amount %s, expected %lld and %lld", tenant,
                     period, l->meter, l->resource, l->plan, PQgetvalue(r, 0, 0),
                     PQgetvalue(r, 0, 1), l->quantity, l->amount);
        }
        PQclear(r);
        total += l->amount;
        n++;
    }
    const char *p[2] = {tenant, period};
    PGresult *r = nb_pg_exec(f->conn,
                             "SELECT i.total_micros, (SELECT count(*) FROM invoice_lines l"
                             " WHERE l.invoice_id = i.id) FROM invoices i"
                             " WHERE i.tenant_id = $1 AND i.period = $2",
                             2, p, &err);
    assert_ok(r, err);
    assert_int_equal(PQntuples(r), 1);
    assert_int_equal(atoll(PQgetvalue(r, 0, 0)), total);
    assert_int_equal(atoi(PQgetvalue(r, 0, 1)), n);
    PQclear(r);
    return total;
}

/* A digest of every usage record. */
static void records_digest(struct fixture *f, char *out, size_t size)
{
    struct nb_error err = {0};
    PGresult *r = nb_pg_exec(f->conn,
                             "SELECT count(*) || ':' || coalesce(md5(string_agg(tenant_id || ','"
                             " || resource_id || ',' || meter || ',' || sku || ',' || hour || ','"
                             " || quantity, ';' ORDER BY tenant_id, resource_id, meter, sku,"
                             " hour)), '') FROM usage_records",
                             0, NULL, &err);
    assert_ok(r, err);
    snprintf(out, size, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
}

static struct billing_agg_opts agg_opts(void)
{
    return (struct billing_agg_opts){.until = UNTIL, .grace_s = 300, .batch_hours = 24};
}

/* --- cases -------------------------------------------------------------------------------- */

static void test_invoice_equals_independent_calculation(void **state)
{
    struct fixture *f = *state;
    struct nb_error err = {0};
    init_plans();
    insert_scenario(f);
    struct billing_agg_opts o = agg_opts();
    struct billing_agg_result ar;
    assert_zero(billing_aggregate(f->conn, &o, &ar, &err), err);
    assert_true(ar.inserted > 0);
    assert_int_equal(ar.corrected, 0);
    assert_string_equal(ar.until, UNTIL);

    struct billing_invoice_result ir;
    assert_zero(billing_invoice(f->conn, "2026-01", false, &ir, &err), err);
    assert_zero(billing_invoice(f->conn, "2026-02", false, &ir, &err), err);
    /* Invoicing again rewrites the same drafts. */
    assert_zero(billing_invoice(f->conn, "2026-02", false, &ir, &err), err);

    struct expect jan, feb;
    expected_lines(&jan, utc("2026-01-01 00:00:00"), utc("2026-02-01 00:00:00"));
    expected_lines(&feb, utc("2026-02-01 00:00:00"), utc("2026-03-01 00:00:00"));
    long long t1_jan = check_invoice(f, &jan, T1, "2026-01");
    long long t2_jan = check_invoice(f, &jan, T2, "2026-01");
    long long t1_feb = check_invoice(f, &feb, T1, "2026-02");
    long long t2_feb = check_invoice(f, &feb, T2, "2026-02");
    assert_int_equal(ir.total, t1_feb + t2_feb);
    print_message("# totals: T1 jan %lld feb %lld, T2 jan %lld feb %lld micros\n", t1_jan, t1_feb,
                  t2_jan, t2_feb);
    assert_true(t1_jan > 0 && t1_feb > 0 && t2_feb > 0);
    /* T2 in January: 1 s of c5.large (0.002 cents, billed 0) and the VPN connection's last
     * 30 minutes, 2.25 cents less 10 %: 2.025 cents, billed 2. */
    assert_int_equal(t2_jan, 20000);

    /* An address's hourly records: idle from 20:10:05 to 23:40:00.7 (billed from the whole
     * second), then 10 s on February 16th. */
    static const char *const idle[][2] = {
        {"2026-01-31 20:00:00+00", "2995"}, {"2026-01-31 21:00:00+00", "3600"},
        {"2026-01-31 22:00:00+00", "3600"}, {"2026-01-31 23:00:00+00", "2400"},
        {"2026-02-16 06:00:00+00", "10"},
    };
    PGresult *r = nb_pg_exec(f->conn,
                             "SELECT to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS+00'),"
                             " quantity FROM usage_records WHERE resource_id = '" EIP1 "'"
                             " AND meter = 'eip-idle' AND tenant_id = '" T1 "' ORDER BY hour",
                             0, NULL, &err);
    assert_ok(r, err);
    assert_int_equal(PQntuples(r), 5);
    for (int i = 0; i < 5; i++) {
        assert_string_equal(PQgetvalue(r, i, 0), idle[i][0]);
        assert_string_equal(PQgetvalue(r, i, 1), idle[i][1]);
    }
    PQclear(r);

    /* Exports of the invoice. */
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    assert_zero(billing_export(f->conn, "2026-02", T1, BILLING_CSV, mem, &err), err);
    assert_zero(billing_export(f->conn, "2026-02", T1, BILLING_JSON, mem, &err), err);
    fclose(mem);
    assert_non_null(strstr(buf, "invoice_id,tenant_id,period,state,currency,line_no"));
    char total_json[64];
    snprintf(total_json, sizeof total_json, "\"total_micros\": %lld", t1_feb);
    assert_non_null(strstr(buf, total_json));
    free(buf);
}

static void test_aggregation_is_idempotent(void **state)
{
    struct fixture *f = *state;
    struct nb_error err = {0};
    insert_scenario(f);
    struct billing_agg_opts o = agg_opts();
    o.batch_hours = 5;
    struct billing_agg_result ar;
    assert_zero(billing_aggregate(f->conn, &o, &ar, &err), err);
    char first[64], again[64], scratch[64];
    records_digest(f, first, sizeof first);

    /* Nothing left to do: a second run writes nothing. */
    assert_zero(billing_aggregate(f->conn, &o, &ar, &err), err);
    assert_int_equal(ar.batches, 0);

    /* Rewound to the start and run again with other batch sizes: every record is found equal. */
    o.from = "2026-01-01 00:00:00+00";
    o.batch_hours = 1;
    assert_zero(billing_aggregate(f->conn, &o, &ar, &err), err);
    assert_int_equal(ar.inserted, 0);
    assert_int_equal(ar.corrected, 0);
    records_digest(f, again, sizeof again);
    assert_string_equal(first, again);

    /* Rewound into the middle of things (an address associated, a VPN connection up, instances
     * running and stopped): the carried state rebuilt from the events gives the same records. */
    o.from = "2026-02-01 00:30:00+00";
    o.batch_hours = 7;
    assert_zero(billing_aggregate(f->conn, &o, &ar, &err), err);
    assert_int_equal(ar.inserted, 0);
    assert_int_equal(ar.corrected, 0);
    records_digest(f, again, sizeof again);
    assert_string_equal(first, again);

    /* From scratch. */
    assert_zero(nb_pg_command(f->conn,
                              "DELETE FROM usage_records; DELETE FROM billing_instance_carry;"
                              "DELETE FROM billing_image_carry; DELETE FROM billing_meter_carry;"
                              "UPDATE billing_watermark SET aggregated_until = NULL",
                              &err),
                err);
    o.from = NULL;
    o.batch_hours = 24 * 40;
    assert_zero(billing_aggregate(f->conn, &o, &ar, &err), err);
    records_digest(f, scratch, sizeof scratch);
    assert_string_equal(first, scratch);
}

static void test_closed_period_is_immutable_and_late_usage_adjusts(void **state)
{
    struct fixture *f = *state;
    struct nb_error err = {0};
    insert_scenario(f);
    struct billing_agg_opts o = agg_opts();
    o.until = "2026-01-20 00:00:00+00";
    struct billing_agg_result ar;
    assert_zero(billing_aggregate(f->conn, &o, &ar, &err), err);
    /* January cannot be closed before aggregation has passed its end. */
    assert_int_equal(billing_invoice(f->conn, "2026-01", true, NULL, &err), -1);
    assert_int_equal(err.code, NB_ERR_CONFLICT);

    o.until = UNTIL;
    assert_zero(billing_aggregate(f->conn, &o, &ar, &err), err);
    struct billing_invoice_result ir;
    assert_zero(billing_invoice(f->conn, "2026-01", true, &ir, &err), err);
    long long jan_total = ir.total;
    assert_int_equal(billing_invoice(f->conn, "2026-01", false, NULL, &err), -1);
    assert_int_equal(err.code, NB_ERR_CONFLICT);

    /* Closed rows refuse changes, even from a superuser's plain SQL. */
    assert_int_equal(nb_pg_command(f->conn, "UPDATE invoices SET total_micros = 0", &err), -1);
    assert_int_equal(nb_pg_command(f->conn, "DELETE FROM invoice_lines", &err), -1);
    assert_int_equal(nb_pg_command(f->conn,
                                   "UPDATE usage_records SET quantity = quantity + 1"
                                   " WHERE hour < '2026-02-01'",
                                   &err),
                     -1);

    /* Late usage of January: an image stored for one day and an address held idle for 10 hours
     * (its rows as the triggers write them), whose events commit after the close. */
    assert_zero(nb_pg_command(f->conn,
                              "INSERT INTO image_storage_events (at, image_id, tenant_id, bytes)"
                              " VALUES ('2026-01-25 00:00:00+00', 'ami-00000000000000003', '" T1
                              "', 5000000000),"
                              " ('2026-01-26 00:00:00+00', 'ami-00000000000000003', '" T1 "', 0);"
                              "INSERT INTO meter_events (at, tenant_id, resource_id, meter, active)"
                              " VALUES ('2026-01-25 00:00:00+00', '" T1 "', '" EIP3 "',"
                              "         'eip-idle', true),"
                              "        ('2026-01-25 10:00:00+00', '" T1 "', '" EIP3 "',"
                              "         'eip-idle', false)",
                              &err),
                err);
    o.from = "2026-01-25 00:00:00+00";
    assert_zero(billing_aggregate(f->conn, &o, &ar, &err), err);
    assert_int_equal(ar.inserted, 24 + 10);
    assert_int_equal(ar.corrected, 0);

    assert_zero(billing_invoice(f->conn, "2026-02", false, &ir, &err), err);
    /* 5e9 bytes for 86 400 s at 50 000 micros per 2.628e15 byte-seconds = 8219.17... micros,
     * billed 10 000 (half-up to the cent); 36 000 s of an idle address at 5 000 micros an hour,
     * 50 000. */
    assert_int_equal(ir.adjustment, 10000 + 50000);
    PGresult *r = nb_pg_exec(f->conn,
                             "SELECT l.kind, l.quantity, l.exact_micros FROM invoice_lines l"
                             " WHERE l.invoice_id = 'inv-202602-" T1 "'"
                             " AND l.resource_id = 'ami-00000000000000003'",
                             0, NULL, &err);
    assert_ok(r, err);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQgetvalue(r, 0, 0), "adjustment");
    assert_string_equal(PQgetvalue(r, 0, 1), "432000000000000");
    assert_string_equal(PQgetvalue(r, 0, 2), "8219.178082");
    PQclear(r);
    r = nb_pg_exec(f->conn,
                   "SELECT l.kind, l.quantity, l.amount_micros, l.meter FROM invoice_lines l"
                   " WHERE l.invoice_id = 'inv-202602-" T1 "' AND l.kind = 'adjustment'"
                   " AND l.resource_id = '" EIP3 "'",
                   0, NULL, &err);
    assert_ok(r, err);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQgetvalue(r, 0, 1), "36000");
    assert_string_equal(PQgetvalue(r, 0, 2), "50000");
    assert_string_equal(PQgetvalue(r, 0, 3), "eip-idle");
    PQclear(r);
    r = nb_pg_exec(f->conn, "SELECT sum(total_micros) FROM invoices WHERE period = '2026-01'", 0,
                   NULL, &err);
    assert_ok(r, err);
    assert_int_equal(atoll(PQgetvalue(r, 0, 0)), jan_total);
    PQclear(r);
}

static void test_budget_alert_once_per_period(void **state)
{
    struct fixture *f = *state;
    struct nb_error err = {0};
    insert_scenario(f);
    assert_zero(nb_pg_command(f->conn,
                              "INSERT INTO budgets (tenant_id, threshold_micros) VALUES"
                              " ('" T1 "', 1000000), ('" T2 "', 1000000000000)",
                              &err),
                err);
    struct billing_agg_opts o = agg_opts();
    struct billing_agg_result ar;
    assert_zero(billing_aggregate(f->conn, &o, &ar, &err), err);
    assert_int_equal(billing_check_budgets(f->conn, &err), 1);
    assert_int_equal(billing_check_budgets(f->conn, &err), 0);
    PGresult *r = nb_pg_exec(f->conn, "SELECT tenant_id, period FROM budget_alerts", 0, NULL, &err);
    assert_ok(r, err);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQgetvalue(r, 0, 0), T1);
    assert_string_equal(PQgetvalue(r, 0, 1), "2026-02");
    PQclear(r);
}

/* Network bytes: each instance_net_events row (written by the gateway's heartbeat handler)
 * counts in the hour it was recorded, as network-in and network-out records; egress is priced
 * per GB, ingress is free. */
static void test_network_bytes_metered(void **state)
{
    struct fixture *f = *state;
    struct nb_error err = {0};
    insert_scenario(f);
    assert_zero(
        nb_pg_command(
            f->conn,
            "INSERT INTO instance_net_events (at, instance_id, tenant_id,"
            " rx_bytes, tx_bytes) VALUES"
            " ('2026-02-03 10:15:00+00', 'i-0000000000000000b', '" T1 "', 1000, 2500000000),"
            " ('2026-02-03 10:59:59.999+00', 'i-0000000000000000b', '" T1 "', 500, 1000000001),"
            " ('2026-02-03 11:00:00+00', 'i-0000000000000000b', '" T1 "', 0, 7),"
            " ('2026-02-03 11:30:00+00', 'i-0000000000000000e', '" T2 "', 123, 0)",
            &err),
        err);
    struct billing_agg_opts o = agg_opts();
    struct billing_agg_result ar;
    assert_zero(billing_aggregate(f->conn, &o, &ar, &err), err);

    static const char *const want[][4] = {
        {"i-0000000000000000b", "network-in", "2026-02-03 10:00:00+00", "1500"},
        {"i-0000000000000000b", "network-out", "2026-02-03 10:00:00+00", "3500000001"},
        {"i-0000000000000000b", "network-out", "2026-02-03 11:00:00+00", "7"},
        {"i-0000000000000000e", "network-in", "2026-02-03 11:00:00+00", "123"},
    };
    PGresult *r = nb_pg_exec(f->conn,
                             "SELECT resource_id, meter, to_char(hour AT TIME ZONE 'UTC',"
                             " 'YYYY-MM-DD HH24:MI:SS+00'), quantity FROM usage_records"
                             " WHERE meter LIKE 'network-%' ORDER BY 1, 2, 3",
                             0, NULL, &err);
    assert_ok(r, err);
    assert_int_equal(PQntuples(r), 4);
    for (int i = 0; i < 4; i++) {
        for (int c = 0; c < 4; c++) {
            assert_string_equal(PQgetvalue(r, i, c), want[i][c]);
        }
    }
    PQclear(r);

    /* Rewound and run again: the same records. */
    o.from = "2026-02-01 00:00:00+00";
    assert_zero(billing_aggregate(f->conn, &o, &ar, &err), err);
    assert_int_equal(ar.inserted, 0);
    assert_int_equal(ar.corrected, 0);

    /* 3 500 000 008 bytes out at 90 000 micros per 10^9 bytes = 315 000.00072 micros, billed
     * 320 000 (half-up to the cent); ingress is free. */
    assert_zero(billing_invoice(f->conn, "2026-02", false, NULL, &err), err);
    r = nb_pg_exec(f->conn,
                   "SELECT l.meter, l.quantity, l.exact_micros, l.amount_micros"
                   " FROM invoice_lines l WHERE l.resource_id = 'i-0000000000000000b'"
                   " AND l.meter LIKE 'network-%' ORDER BY l.meter",
                   0, NULL, &err);
    assert_ok(r, err);
    assert_int_equal(PQntuples(r), 2);
    assert_string_equal(PQgetvalue(r, 0, 0), "network-in");
    assert_string_equal(PQgetvalue(r, 0, 1), "1500");
    assert_string_equal(PQgetvalue(r, 0, 3), "0");
    assert_string_equal(PQgetvalue(r, 1, 0), "network-out");
    assert_string_equal(PQgetvalue(r, 1, 1), "3500000008");
    assert_string_equal(PQgetvalue(r, 1, 2), "315000.000720");
    assert_string_equal(PQgetvalue(r, 1, 3), "320000");
    PQclear(r);
}

/* Many instances with many state changes over the 59 days of January and February, generated
 * in SQL (deterministic: no random()). */
static const char LARGE_SCENARIO_SQL[] =
    "INSERT INTO instance_events (at, instance_id, tenant_id, instance_type, to_state)"
    " SELECT '2026-01-01 00:00:00+00'::timestamptz"
    "        + make_interval(secs => (k * 5113 + i * 977) % 5097600),"
    "        'i-' || lpad(to_hex(i), 17, '0'), CASE i % 2 WHEN 0 THEN '" T1 "' ELSE '" T2 "' END,"
    "        (ARRAY['t3.micro', 'm5.large', 'c5.large'])[1 + i % 3],"
    "        (ARRAY['running', 'stopped', 'running', 'stopping'])[1 + (k * 7 + i) % 4]"
    " FROM generate_series(1, 400) i, generate_series(1, 200) k;"
    "INSERT INTO image_storage_events (at, image_id, tenant_id, bytes)"
    " SELECT '2026-01-01 00:00:00+00'::timestamptz + make_interval(secs => (k * 7919 + i) % "
    "5097600),"
    "        'ami-' || lpad(to_hex(i), 17, '0'), '" T1 "', (k * 104729 + i) % 3 * 1000000007"
    " FROM generate_series(1, 50) i, generate_series(1, 200) k;"
    /* On/off meters as the triggers write them: each resource's rows alternate on and off, in
     * time order (row k falls in [50 000 k, 50 000 k + 40 000) s); some stay on at the end. */
    "INSERT INTO meter_events (at, tenant_id, resource_id, meter, active)"
    " SELECT '2026-01-01 00:00:00+00'::timestamptz"
    "        + make_interval(secs => k * 50000 + (i * 977 + k * 131) % 40000 + i % 7 * 0.125),"
    "        CASE i % 2 WHEN 0 THEN '" T1 "' ELSE '" T2 "' END,"
    "        CASE WHEN i % 3 = 2 THEN 'vpn-' ELSE 'eipalloc-' END || lpad(to_hex(i), 17, '0'),"
    "        (ARRAY['eip-idle', 'eip-associated', 'vpn-connection'])[1 + i % 3],"
    "        k % 2 = 1"
    " FROM generate_series(1, 60) i, generate_series(1, 100 - i % 2) k";

/* Runs nubo-billing with 'args' (NULL-terminated) against the fixture's database; returns its
 * pid. */
static pid_t spawn_billing(struct fixture *f, const char *const *args)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("NUBO_DB_CONNINFO", f->conninfo, 1);
        setenv("NUBO_LOG_LEVEL", "warn", 1);
        char *argv[16];
        int n = 0;
        argv[n++] = (char *)BILLING_BIN;
        for (; *args && n < 15; args++) {
            argv[n++] = (char *)*args;
        }
        argv[n] = NULL;
        execv(BILLING_BIN, argv);
        _exit(127);
    }
    return pid;
}

static int wait_status(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0) {
    }
    return st;
}

static long long watermark_hours(struct fixture *f)
{
    struct nb_error err = {0};
    PGresult *r = nb_pg_exec(f->conn,
                             "SELECT coalesce(extract(epoch FROM aggregated_until"
                             " - '2026-01-01 00:00:00+00')::bigint / 3600, -1)"
                             " FROM billing_watermark",
                             0, NULL, &err);
    assert_ok(r, err);
    long long h = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return h;
}

static void test_sigkill_mid_aggregation_loses_nothing(void **state)
{
    struct fixture *f = *state;
    struct nb_error err = {0};
    assert_zero(nb_pg_command(f->conn, LARGE_SCENARIO_SQL, &err), err);
    static const char *const args[] = {"--aggregate",           "--until", UNTIL, "-s",
                                       "billing.batch_hours=1", NULL};

    /* Killed partway, several times, then run to the end. */
    int kills = 0;
    for (int round = 0; round < 3; round++) {
        long long before = watermark_hours(f);
        pid_t pid = spawn_billing(f, args);
        long long now = before;
        for (int i = 0; i < 20000 && now < before + 100 + round * 50; i++) {
            usleep(1000);
            now = watermark_hours(f);
        }
        if (kill(pid, SIGKILL) == 0) {
            kills++;
        }
        int st = wait_status(pid);
        long long after = watermark_hours(f);
        print_message("# round %d: watermark %lld -> %lld hours, %s\n", round, before, after,
                      WIFSIGNALED(st) ? "killed" : "had finished");
        assert_true(after >= before);
    }
    assert_true(kills > 0);
    assert_true(watermark_hours(f) < 59 * 24); /* it was really cut short */
    static const char *const finish[] = {"--aggregate", "--until", UNTIL, NULL};
    int st = wait_status(spawn_billing(f, finish));
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(watermark_hours(f), 59 * 24);
    char resumed[64], clean[64];
    records_digest(f, resumed, sizeof resumed);

    /* The clean run, from scratch, in one go. */
    assert_zero(nb_pg_command(f->conn,
                              "DELETE FROM usage_records; DELETE FROM billing_instance_carry;"
                              "DELETE FROM billing_image_carry; DELETE FROM billing_meter_carry;"
                              "UPDATE billing_watermark SET aggregated_until = NULL",
                              &err),
                err);
    st = wait_status(spawn_billing(f, finish));
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    records_digest(f, clean, sizeof clean);
    print_message("# records: resumed %s, clean %s\n", resumed, clean);
    assert_string_equal(resumed, clean);

    /* And the invoices of the two runs agree too: invoicing is a function of the records. */
    st = wait_status(spawn_billing(f, (const char *const[]){"--invoice", "2026-02", NULL}));
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static int group_setup(void **state)
{
    nb_log_init("test_billing", NB_LOG_WARN, NULL);
    struct nb_test_pg *pg = nb_test_pg_start();
    if (!pg) {
        return -1;
    }
    *state = pg;
    return 0;
}

static int group_teardown(void **state)
{
    nb_test_pg_destroy(*state);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_invoice_equals_independent_calculation, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_aggregation_is_idempotent, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_closed_period_is_immutable_and_late_usage_adjusts,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_budget_alert_once_per_period, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_mid_aggregation_loses_nothing, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_network_bytes_metered, fixture_setup,
                                        fixture_teardown),
    };
    const char *filter = getenv("CMOCKA_TEST_FILTER");
    if (filter && *filter) {
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests_name("billing", tests, group_setup, group_teardown);
}
