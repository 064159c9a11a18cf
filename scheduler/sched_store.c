/* The scheduler's PostgreSQL statements shared by the threads: see sched_store.h. */
#include "sched_store.h"
#include "placement.h"

#include "nubo/buf.h"
#include "nubo/error.h"
#include "nubo/log.h"
#include "nubo/pg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- array literals -------------------------------------------------------------------------- */

void sched_store_array_add(struct nb_buf *b, const char *value)
{
    nb_buf_puts(b, b->len ? "," : "{");
    if (!value) {
        nb_buf_puts(b, "NULL");
        return;
    }
    nb_buf_puts(b, "\"");
    for (const char *p = value; *p; p++) {
        if (*p == '"' || *p == '\\') {
            nb_buf_append(b, "\\", 1);
        }
        nb_buf_append(b, p, 1);
    }
    nb_buf_puts(b, "\"");
}

void sched_store_array_addf(struct nb_buf *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    nb_buf_puts(b, b->len ? "," : "{");
    nb_buf_puts(b, tmp);
}

const char *sched_store_array_end(struct nb_buf *b)
{
    nb_buf_puts(b, b->len ? "}" : "{}");
    return b->data;
}

char **sched_store_parse_text_array(const char *text, int *n)
{
    size_t len = strlen(text);
    int count = 0;
    for (const char *p = text; *p; p++) {
        count += *p == ',';
    }
    count += len > 2; /* "{}" has none */
    char **out = malloc((size_t)(count + 1) * sizeof *out + len + 1);
    if (!out) {
        return NULL;
    }
    char *buf = (char *)(out + count + 1);
    int k = 0;
    const char *p = text[0] == '{' ? text + 1 : text;
    while (*p && *p != '}' && k < count) {
        char *start = buf;
        bool quoted = *p == '"';
        p += quoted;
        while (*p && (quoted ? *p != '"' : (*p != ',' && *p != '}'))) {
            if (quoted && *p == '\\' && p[1]) {
                p++;
            }
            *buf++ = *p++;
        }
        *buf++ = '\0';
        p += quoted && *p == '"';
        p += *p == ',';
        out[k++] = start;
    }
    out[k] = NULL;
    *n = k;
    return out;
}

/* --- hosts ----------------------------------------------------------------------------------- */

static enum place_host_state parse_state(const char *s)
{
    return !strcmp(s, "up")         ? PLACE_HOST_UP
           : !strcmp(s, "disabled") ? PLACE_HOST_DISABLED
           : !strcmp(s, "draining") ? PLACE_HOST_DRAINING
                                    : PLACE_HOST_DOWN;
}

#define HOST_COLUMNS                                                                               \
    "id, name, zone, dedicated_tenant, traits, state, "                                            \
    "COALESCE(simulated OR last_heartbeat > now() - $1 * interval '1 second', false), "            \
    "simulated, vcpus, memory_mib, disk_gib, reserved_vcpus, reserved_memory_mib, "                \
    "reserved_disk_gib, cpu_ratio, memory_ratio, disk_ratio, used_vcpus, used_memory_mib, "        \
    "used_disk_gib, instance_count, generation, cpu_load FROM hosts"

int sched_store_load_hosts(struct nb_pg_conn *conn, struct place_snapshot *snap,
                           int heartbeat_timeout_s, const char *const *ids, int n,
                           struct nb_error *err)
{
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", heartbeat_timeout_s);
    struct nb_buf arr = NB_BUF_INIT;
    PGresult *res;
    if (ids) {
        for (int i = 0; i < n; i++) {
            sched_store_array_add(&arr, ids[i]);
        }
        const char *p[] = {timeout, sched_store_array_end(&arr)};
        res = nb_pg_exec(conn, "SELECT " HOST_COLUMNS " WHERE id = ANY($2::text[])", 2, p, err);
    } else {
        const char *p[] = {timeout};
        res = nb_pg_exec(conn, "SELECT " HOST_COLUMNS, 1, p, err);
    }
    nb_buf_free(&arr);
    if (!res) {
        return -1;
    }
    int rows = PQntuples(res);
    struct place_host_in *in = calloc((size_t)rows + 1, sizeof *in);
    char ***traits = calloc((size_t)rows + 1, sizeof *traits);
    int rc = -1;
    if (!in || !traits) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory reading %d hosts", rows);
        goto done;
    }
    for (int r = 0; r < rows; r++) {
#define V(c)  PQgetvalue(res, r, c)
#define LL(c) strtoll(V(c), NULL, 10)
        struct place_host_in *h = &in[r];
        h->id = V(0);
        h->name = V(1);
        h->zone = V(2);
        h->dedicated_tenant = PQgetisnull(res, r, 3) ? NULL : V(3);
        if (!(traits[r] = sched_store_parse_text_array(V(4), &h->n_traits))) {
            nb_error_set(err, NB_ERR_INTERNAL, "out of memory reading host traits");
            goto done;
        }
        h->traits = (const char *const *)traits[r];
        h->state = parse_state(V(5));
        h->live = V(6)[0] == 't';
        h->simulated = V(7)[0] == 't';
        h->vcpus = LL(8);
        h->memory_mib = LL(9);
        h->disk_gib = LL(10);
        h->reserved_vcpus = LL(11);
        h->reserved_memory_mib = LL(12);
        h->reserved_disk_gib = LL(13);
        h->cpu_ratio = strtod(V(14), NULL);
        h->memory_ratio = strtod(V(15), NULL);
        h->disk_ratio = strtod(V(16), NULL);
        h->used_vcpus = LL(17);
        h->used_memory_mib = LL(18);
        h->used_disk_gib = LL(19);
        h->instance_count = LL(20);
        h->generation = LL(21);
        h->cpu_load = strtod(V(22), NULL);
#undef V
#undef LL
    }
    if (ids) {
        rc = 0;
        for (int r = 0; r < rows && rc == 0; r++) {
            rc = place_snapshot_update(snap, &in[r]);
        }
    } else {
        rc = place_snapshot_load(snap, in, (size_t)rows);
    }
    if (rc < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory loading %d hosts", rows);
    } else {
        rc = rows;
    }

done:
    for (int r = 0; traits && r < rows; r++) {
        free(traits[r]);
    }
    free(traits);
    free(in);
    PQclear(res);
    return rc;
}

int sched_store_monitor(struct nb_pg_conn *conn, int heartbeat_timeout_s, struct nb_error *err)
{
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", heartbeat_timeout_s);
    const char *p[] = {timeout};
    /* A host that never sent a heartbeat is judged by its creation time, so that a host
     * registered but never started goes down too. */
    PGresult *res = nb_pg_exec(
        conn,
        "UPDATE hosts SET state = 'down', updated_at = now(), "
        "state_reason = format('no heartbeat for more than %s s (last at %s)', $1::int, "
        "COALESCE(to_char(last_heartbeat AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
        "'never')) "
        "WHERE state = 'up' AND NOT simulated "
        "AND COALESCE(last_heartbeat, created_at) < now() - $1 * interval '1 second' "
        "RETURNING id, name",
        1, p, err);
    if (!res) {
        return -1;
    }
    int down = PQntuples(res);
    for (int r = 0; r < down; r++) {
        nb_warn("host \"%s\" (%s) stopped heartbeating: marked down", PQgetvalue(res, r, 1),
                PQgetvalue(res, r, 0));
    }
    PQclear(res);
    /* Flag the instances of down hosts (also hosts an operator or a test set down), and unflag
     * those whose host came back. Rows another transaction holds are skipped (never waited
     * for, so this cannot deadlock with a driver) and flagged on the next round. */
    res =
        nb_pg_exec(conn,
                   "WITH f AS (SELECT i.id, h.name, h.id AS host, h.state_reason FROM instances i "
                   "JOIN hosts h ON h.id = i.host_id WHERE h.state = 'down' AND NOT i.host_down "
                   "AND i.state NOT IN ('terminated', 'error') FOR UPDATE OF i SKIP LOCKED), "
                   "flagged AS (UPDATE instances i SET host_down = true, updated_at = now(), "
                   "state_reason_message = format('host \"%s\" (%s) is down: %s', f.name, "
                   "f.host, COALESCE(f.state_reason, 'no reason given')) "
                   "FROM f WHERE i.id = f.id RETURNING 1), "
                   "c AS (SELECT i.id FROM instances i JOIN hosts h ON h.id = i.host_id "
                   "WHERE h.state <> 'down' AND i.host_down FOR UPDATE OF i SKIP LOCKED), "
                   "cleared AS (UPDATE instances i SET host_down = false, updated_at = now() "
                   "FROM c WHERE i.id = c.id RETURNING 1) "
                   "SELECT (SELECT count(*) FROM flagged), (SELECT count(*) FROM cleared)",
                   0, NULL, err);
    if (!res) {
        return -1;
    }
    long long flagged = atoll(PQgetvalue(res, 0, 0));
    if (flagged > 0) {
        nb_info("flagged %lld instance(s) of down hosts", flagged);
    }
    PQclear(res);
    return down;
}

/* --- audit ----------------------------------------------------------------------------------- */

/* The claims as they should be: sums over the live instances of each host. */
#define AUDIT_SUMS                                                                                 \
    "WITH s AS (SELECT host_id, sum(vcpus) AS v, sum(memory_mib) AS m, "                           \
    "sum(disk_gib + ephemeral_gib) AS d, count(*) AS n FROM instances "                            \
    "WHERE host_id IS NOT NULL AND state NOT IN ('terminated', 'error') GROUP BY host_id), "       \
    "want AS (SELECT h.id, h.name, h.used_vcpus, h.used_memory_mib, h.used_disk_gib, "             \
    "h.instance_count, COALESCE(s.v, 0) AS v, COALESCE(s.m, 0) AS m, COALESCE(s.d, 0) AS d, "      \
    "COALESCE(s.n, 0) AS n FROM hosts h LEFT JOIN s ON s.host_id = h.id) "

int sched_store_audit(struct nb_pg_conn *conn, bool repair, FILE *out, struct nb_error *err)
{
    if (nb_pg_begin(conn, err) < 0) {
        return -1;
    }
    /* The lock waits for claims in flight and keeps new ones out while we compare and repair:
     * every claim and release updates hosts, so the sums below see them all or none. */
    if (repair && nb_pg_command(conn, "LOCK TABLE hosts IN SHARE ROW EXCLUSIVE MODE", err) < 0) {
        nb_pg_rollback(conn);
        return -1;
    }
    PGresult *res =
        nb_pg_exec(conn,
                   AUDIT_SUMS "SELECT id, name, used_vcpus, v, used_memory_mib, m, used_disk_gib, "
                              "d, instance_count, n FROM want WHERE (used_vcpus, used_memory_mib, "
                              "used_disk_gib, instance_count) <> (v, m, d, n) ORDER BY id",
                   0, NULL, err);
    if (!res) {
        nb_pg_rollback(conn);
        return -1;
    }
    int drift = PQntuples(res);
    for (int r = 0; out && r < drift; r++) {
#define V(c) PQgetvalue(res, r, c)
        fprintf(out,
                "host %s (%s): used vcpus %s, claims %s; memory_mib %s, claims %s; disk_gib %s, "
                "claims %s; instances %s, live %s\n",
                V(0), V(1), V(2), V(3), V(4), V(5), V(6), V(7), V(8), V(9));
#undef V
    }
    PQclear(res);
    res = nb_pg_exec(conn,
                     "SELECT id, state, host_id FROM instances WHERE host_id IS NOT NULL "
                     "AND state IN ('terminated', 'error') ORDER BY id",
                     0, NULL, err);
    if (!res) {
        nb_pg_rollback(conn);
        return -1;
    }
    for (int r = 0; out && r < PQntuples(res); r++) {
        fprintf(out, "instance %s is %s but still holds host %s\n", PQgetvalue(res, r, 0),
                PQgetvalue(res, r, 1), PQgetvalue(res, r, 2));
    }
    drift += PQntuples(res);
    PQclear(res);
    if (repair && drift > 0) {
        if (nb_pg_command(conn,
                          "UPDATE instances SET host_id = NULL WHERE host_id IS NOT NULL "
                          "AND state IN ('terminated', 'error')",
                          err) < 0 ||
            nb_pg_command(conn,
                          AUDIT_SUMS "UPDATE hosts h SET used_vcpus = w.v, used_memory_mib = w.m, "
                                     "used_disk_gib = w.d, instance_count = w.n, "
                                     "generation = h.generation + 1 FROM want w WHERE w.id = h.id "
                                     "AND (w.used_vcpus, w.used_memory_mib, w.used_disk_gib, "
                                     "w.instance_count) <> (w.v, w.m, w.d, w.n)",
                          err) < 0 ||
            nb_pg_commit(conn, err) < 0) {
            nb_pg_rollback(conn);
            return -1;
        }
        if (out) {
            fprintf(out, "repaired %d drift(s)\n", drift);
        }
        return drift;
    }
    nb_pg_rollback(conn);
    return drift;
}
