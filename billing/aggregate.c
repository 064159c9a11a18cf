/* Metering: instance_events and image_storage_events into hourly usage_records (billing.h).
 *
 * One transaction per batch of hours [h0, h1): a single set-based statement reads the state
 * carried from before h0 (billing_*_carry) and the events of [h0, h1), turns them into intervals
 * with a window function (each event lasts until the next one of its resource), cuts the
 * intervals at hour boundaries, sums them per (tenant, resource, meter, sku, hour), upserts the
 * records and replaces the carried state; the watermark moves to h1 in the same transaction.
 * Nothing is counted twice: a batch either commits whole (records, carry and watermark) or not at
 * all, and the records' primary key makes a re-run of an hour find the rows it would write. */
#include "billing.h"

#include "nubo/error.h"
#include "nubo/log.h"
#include "nubo/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* $1 = h0, $2 = h1. Returns one row: records inserted, records corrected. The statement is
 * AGGREGATE_HEAD_SQL, the INSERT's ON CONFLICT clause (or nothing), AGGREGATE_TAIL_SQL. */
static const char AGGREGATE_HEAD_SQL[] =
    "WITH src AS ("
    "  SELECT instance_id, tenant_id, instance_type, state AS to_state, since AS at, since AS ts,"
    "         0::bigint AS id FROM billing_instance_carry"
    "  UNION ALL"
    "  SELECT instance_id, tenant_id, instance_type, to_state, at, date_trunc('second', at), id"
    "  FROM instance_events WHERE at >= $1::timestamptz AND at < $2::timestamptz"
    "), iv AS ("
    "  SELECT instance_id, tenant_id, instance_type, to_state, ts AS since, id,"
    "         lead(ts) OVER (PARTITION BY instance_id ORDER BY at, id) AS next_at"
    "  FROM src"
    "), pieces AS ("
    "  SELECT iv.tenant_id, iv.instance_id, iv.instance_type, iv.to_state, h.h,"
    "         extract(epoch FROM least(coalesce(iv.next_at, $2::timestamptz),"
    "                                  h.h + interval '1 hour')"
    "                            - greatest(iv.since, h.h))::bigint AS secs"
    "  FROM iv CROSS JOIN LATERAL generate_series("
    "           date_trunc('hour', greatest(iv.since, $1::timestamptz)),"
    "           coalesce(iv.next_at, $2::timestamptz) - interval '1 microsecond',"
    "           interval '1 hour') AS h(h)"
    "  WHERE iv.to_state IN ('running', 'stopped')"
    "    AND coalesce(iv.next_at, $2::timestamptz) > greatest(iv.since, $1::timestamptz)"
    "), plans AS ("
    "  SELECT min_run_seconds, effective_from,"
    "         coalesce(lead(effective_from) OVER (ORDER BY effective_from), 'infinity')"
    "             AS effective_to FROM price_plans"
    /* A run that ended in this batch and was shorter than the minimum of the plan in effect
     * when it ended: the difference, in the hour it ended. */
    "), minimum AS ("
    "  SELECT iv.tenant_id, iv.instance_id, iv.instance_type, date_trunc('hour', iv.next_at) AS "
    "h,"
    "         p.min_run_seconds - extract(epoch FROM iv.next_at - iv.since)::bigint AS secs"
    "  FROM iv JOIN plans p ON iv.next_at >= p.effective_from AND iv.next_at < p.effective_to"
    "  WHERE iv.to_state = 'running' AND iv.next_at IS NOT NULL"
    "    AND extract(epoch FROM iv.next_at - iv.since) < p.min_run_seconds"
    "), isrc AS ("
    "  SELECT image_id, tenant_id, bytes, since AS at, since AS ts, 0::bigint AS id"
    "  FROM billing_image_carry"
    "  UNION ALL"
    "  SELECT image_id, tenant_id, bytes, at, date_trunc('second', at), id"
    "  FROM image_storage_events WHERE at >= $1::timestamptz AND at < $2::timestamptz"
    "), iiv AS ("
    "  SELECT image_id, tenant_id, bytes, ts AS since, id,"
    "         lead(ts) OVER (PARTITION BY image_id ORDER BY at, id) AS next_at"
    "  FROM isrc"
    "), ipieces AS ("
    "  SELECT iiv.tenant_id, iiv.image_id, iiv.bytes, h.h,"
    "         extract(epoch FROM least(coalesce(iiv.next_at, $2::timestamptz),"
    "                                  h.h + interval '1 hour')"
    "                            - greatest(iiv.since, h.h))::bigint AS secs"
    "  FROM iiv CROSS JOIN LATERAL generate_series("
    "           date_trunc('hour', greatest(iiv.since, $1::timestamptz)),"
    "           coalesce(iiv.next_at, $2::timestamptz) - interval '1 microsecond',"
    "           interval '1 hour') AS h(h)"
    "  WHERE iiv.bytes > 0"
    "    AND coalesce(iiv.next_at, $2::timestamptz) > greatest(iiv.since, $1::timestamptz)"
    "), recs AS ("
    "  SELECT tenant_id, instance_id AS resource_id, 'instance-running' AS meter,"
    "         instance_type AS sku, h, sum(secs)::bigint AS q"
    "  FROM pieces WHERE to_state = 'running' GROUP BY 1, 2, 3, 4, 5"
    "  UNION ALL"
    "  SELECT p.tenant_id, p.instance_id, 'stopped-storage', p.instance_type, p.h,"
    "         (sum(p.secs) * t.disk_gib)::bigint"
    "  FROM pieces p JOIN instance_types t ON t.name = p.instance_type"
    "  WHERE p.to_state = 'stopped' GROUP BY p.tenant_id, p.instance_id, p.instance_type, p.h,"
    "                                         t.disk_gib"
    "  UNION ALL"
    "  SELECT tenant_id, instance_id, 'instance-minimum', instance_type, h, sum(secs)::bigint"
    "  FROM minimum GROUP BY 1, 2, 3, 4, 5"
    "  UNION ALL"
    "  SELECT tenant_id, image_id, 'image-storage', '', h, sum(bytes * secs)::bigint"
    "  FROM ipieces GROUP BY 1, 2, 3, 4, 5"
    "), ins AS ("
    "  INSERT INTO usage_records (tenant_id, resource_id, meter, sku, hour, quantity)"
    "  SELECT tenant_id, resource_id, meter, sku, h, q FROM recs WHERE q > 0";
static const char AGGREGATE_TAIL_SQL[] =
    "  RETURNING (xmax <> 0) AS corrected"
    /* The carried state after h1: each resource's last row of the batch, when it came from an
     * event of the batch (a carried row left alone is still right). */
    "), ilast AS ("
    "  SELECT * FROM iv WHERE next_at IS NULL AND id <> 0"
    "), idel AS ("
    "  DELETE FROM billing_instance_carry c USING ilast l"
    "  WHERE c.instance_id = l.instance_id AND l.to_state = 'terminated'"
    "), iput AS ("
    "  INSERT INTO billing_instance_carry (instance_id, tenant_id, instance_type, state, since)"
    "  SELECT instance_id, tenant_id, instance_type, to_state, since FROM ilast"
    "  WHERE to_state <> 'terminated'"
    "  ON CONFLICT (instance_id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id,"
    "      instance_type = EXCLUDED.instance_type, state = EXCLUDED.state,"
    "      since = EXCLUDED.since"
    "), glast AS ("
    "  SELECT * FROM iiv WHERE next_at IS NULL AND id <> 0"
    "), gdel AS ("
    "  DELETE FROM billing_image_carry c USING glast l"
    "  WHERE c.image_id = l.image_id AND l.bytes = 0"
    "), gput AS ("
    "  INSERT INTO billing_image_carry (image_id, tenant_id, bytes, since)"
    "  SELECT image_id, tenant_id, bytes, since FROM glast WHERE bytes > 0"
    "  ON CONFLICT (image_id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id,"
    "      bytes = EXCLUDED.bytes, since = EXCLUDED.since"
    ")"
    "SELECT count(*) FILTER (WHERE NOT corrected), count(*) FILTER (WHERE corrected) FROM ins";

/* A batch over hours that hold no records yet (the normal case: the watermark moves forward)
 * inserts plainly, and a record already there would be an error, not a silent skip; a batch over
 * hours aggregated before (after a rewind) compares and corrects. */
static const char AGGREGATE_AGAIN_SQL[] = " ON CONFLICT (tenant_id, resource_id, meter, sku, hour)"
                                          " DO UPDATE SET quantity = EXCLUDED.quantity"
                                          " WHERE usage_records.quantity <> EXCLUDED.quantity";

/* Rebuilds the carried state at time $1 from the whole event history. */
static const char REWIND_SQL[] = "DELETE FROM billing_instance_carry;"
                                 "DELETE FROM billing_image_carry;";
static const char REWIND_INSTANCES_SQL[] =
    "INSERT INTO billing_instance_carry (instance_id, tenant_id, instance_type, state, since)"
    " SELECT instance_id, tenant_id, instance_type, to_state, date_trunc('second', at)"
    " FROM (SELECT DISTINCT ON (instance_id) * FROM instance_events"
    "       WHERE at < $1::timestamptz ORDER BY instance_id, at DESC, id DESC) l"
    " WHERE to_state <> 'terminated'";
static const char REWIND_IMAGES_SQL[] =
    "INSERT INTO billing_image_carry (image_id, tenant_id, bytes, since)"
    " SELECT image_id, tenant_id, bytes, date_trunc('second', at)"
    " FROM (SELECT DISTINCT ON (image_id) * FROM image_storage_events"
    "       WHERE at < $1::timestamptz ORDER BY image_id, at DESC, id DESC) l"
    " WHERE bytes > 0";

/* Opens a billing transaction: UTC, room to sort in memory, the billing lock. */
static int begin_locked(struct nb_pg_conn *conn, struct nb_error *err)
{
    if (nb_pg_begin(conn, err) < 0) {
        return -1;
    }
    if (nb_pg_command(conn,
                      "SET LOCAL TimeZone = 'UTC'; SET LOCAL work_mem = '256MB';"
                      "SELECT pg_advisory_xact_lock(billing_lock_key())",
                      err) < 0) {
        nb_pg_rollback(conn);
        return -1;
    }
    return 0;
}

/* Copies the single value of 'res' (or "" for NULL) into 'out' and clears 'res'. */
static void take_value(PGresult *res, char *out, size_t size)
{
    snprintf(out, size, "%s", PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0));
    PQclear(res);
}

static int rewind_to(struct nb_pg_conn *conn, const char *from, char *h, struct nb_error *err)
{
    if (begin_locked(conn, err) < 0) {
        return -1;
    }
    const char *p[1] = {from};
    PGresult *res = nb_pg_exec(conn, "SELECT date_trunc('hour', $1::timestamptz)", 1, p, err);
    if (!res) {
        goto fail;
    }
    take_value(res, h, BILLING_TIME_LEN);
    p[0] = h;
    PGresult *r1 = NULL, *r2 = NULL, *r3 = NULL;
    if (nb_pg_command(conn, REWIND_SQL, err) < 0 ||
        !(r1 = nb_pg_exec(conn, REWIND_INSTANCES_SQL, 1, p, err)) ||
        !(r2 = nb_pg_exec(conn, REWIND_IMAGES_SQL, 1, p, err)) ||
        !(r3 = nb_pg_exec(conn,
                          "UPDATE billing_watermark SET aggregated_until = $1::timestamptz,"
                          " updated_at = now()",
                          1, p, err))) {
        PQclear(r1);
        PQclear(r2);
        goto fail;
    }
    PQclear(r1);
    PQclear(r2);
    PQclear(r3);
    if (nb_pg_commit(conn, err) < 0) {
        return -1;
    }
    nb_info("aggregation rewound to %s", h);
    return 0;

fail:
    nb_pg_rollback(conn);
    return -1;
}

/* Reads, under the lock, where the next batch starts ('h0') and ends ('h1'); both "" when there
 * is nothing to do. */
static int next_batch(struct nb_pg_conn *conn, const struct billing_agg_opts *o, char *h0, char *h1,
                      struct nb_error *err)
{
    char grace[16], hours[16];
    snprintf(grace, sizeof grace, "%d", o->grace_s);
    snprintf(hours, sizeof hours, "%d", o->batch_hours);
    const char *p[3] = {o->until && *o->until ? o->until : NULL, grace, hours};
    PGresult *res = nb_pg_exec(
        conn,
        "WITH w AS ("
        "  SELECT coalesce(aggregated_until,"
        "                  date_trunc('hour', least((SELECT min(at) FROM instance_events),"
        "                                           (SELECT min(at) FROM image_storage_events))))"
        "             AS h0,"
        "         least(date_trunc('hour', coalesce($1::timestamptz, 'infinity')),"
        "               date_trunc('hour', now() - make_interval(secs => $2::int))) AS lim"
        "  FROM billing_watermark FOR UPDATE"
        ") SELECT h0, least(h0 + make_interval(hours => $3::int), lim) FROM w WHERE h0 < lim",
        3, p, err);
    if (!res) {
        return -1;
    }
    h0[0] = h1[0] = '\0';
    if (PQntuples(res) == 1) {
        snprintf(h0, BILLING_TIME_LEN, "%s", PQgetvalue(res, 0, 0));
        snprintf(h1, BILLING_TIME_LEN, "%s", PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    return 0;
}

/* Runs one batch in the open transaction and advances the watermark from 'h0' to 'h1'. */
static int run_batch(struct nb_pg_conn *conn, const char *h0, const char *h1,
                     struct billing_agg_result *r, struct nb_error *err)
{
    const char *p[2] = {h0, h1};
    PGresult *res = nb_pg_exec(conn,
                               "SELECT EXISTS (SELECT 1 FROM usage_records"
                               " WHERE hour >= $1::timestamptz AND hour < $2::timestamptz)",
                               2, p, err);
    if (!res) {
        return -1;
    }
    bool again = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    size_t size =
        sizeof AGGREGATE_HEAD_SQL + sizeof AGGREGATE_AGAIN_SQL + sizeof AGGREGATE_TAIL_SQL;
    char *sql = malloc(size);
    if (!sql) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        return -1;
    }
    snprintf(sql, size, "%s%s%s", AGGREGATE_HEAD_SQL, again ? AGGREGATE_AGAIN_SQL : "",
             AGGREGATE_TAIL_SQL);
    res = nb_pg_exec(conn, sql, 2, p, err);
    free(sql);
    if (!res) {
        return -1;
    }
    long long inserted = atoll(PQgetvalue(res, 0, 0)), corrected = atoll(PQgetvalue(res, 0, 1));
    PQclear(res);
    res = nb_pg_exec(conn,
                     "UPDATE billing_watermark SET aggregated_until = $2::timestamptz,"
                     " updated_at = now()"
                     " WHERE aggregated_until IS NULL OR aggregated_until = $1::timestamptz",
                     2, p, err);
    if (!res) {
        return -1;
    }
    bool moved = atoi(PQcmdTuples(res)) == 1;
    PQclear(res);
    if (!moved) {
        nb_error_set(err, NB_ERR_CONFLICT, "the billing watermark moved away from %s", h0);
        return -1;
    }
    r->inserted += inserted;
    r->corrected += corrected;
    if (corrected) {
        nb_warn("aggregation of [%s, %s) corrected %lld usage record(s)", h0, h1, corrected);
    }
    return 0;
}

int billing_aggregate(struct nb_pg_conn *conn, const struct billing_agg_opts *o,
                      struct billing_agg_result *res, struct nb_error *err)
{
    memset(res, 0, sizeof *res);
    if (o->batch_hours < 1) {
        nb_error_set(err, NB_ERR_INVALID, "batch hours must be at least 1, not %d", o->batch_hours);
        return -1;
    }
    if (o->from && rewind_to(conn, o->from, res->until, err) < 0) {
        return -1;
    }
    for (;;) {
        if (o->max_batches && res->batches >= o->max_batches) {
            return 0;
        }
        char h0[BILLING_TIME_LEN], h1[BILLING_TIME_LEN];
        if (begin_locked(conn, err) < 0) {
            return -1;
        }
        if (next_batch(conn, o, h0, h1, err) < 0) {
            nb_pg_rollback(conn);
            return -1;
        }
        if (!h0[0]) {
            nb_pg_rollback(conn);
            return 0;
        }
        if (run_batch(conn, h0, h1, res, err) < 0) {
            nb_pg_rollback(conn);
            return -1;
        }
        if (nb_pg_commit(conn, err) < 0) {
            return -1;
        }
        res->batches++;
        snprintf(res->until, sizeof res->until, "%s", h1);
        nb_debug("aggregated [%s, %s)", h0, h1);
    }
}
