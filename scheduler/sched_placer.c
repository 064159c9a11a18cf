/* Placement transactions: see sched_placer.h.
 *
 * One transaction:
 *   1. lock up to 'batch' whole reservations (advisory lock per reservation, so that two
 *      schedulers never split one) and their unplaced instance rows (FOR UPDATE);
 *   2. lock the placement groups they use (advisory, in id order) and read where the groups'
 *      live instances are;
 *   3. place each reservation on the in-memory snapshot (placement.c);
 *   4. claim: lock the chosen hosts in id order, then one UPDATE adds every host's share if the
 *      allocation rule still holds; a host that refuses (another scheduler got there first) is
 *      re-read, and the reservations that used it give back what they claimed and are left for
 *      the next transaction;
 *   5. write host_id (or 'error' and the reason) on the instances, and commit.
 * The snapshot's tentative claims become its db values once the commit succeeds. */
#include "sched_placer.h"
#include "scheduler.h"
#include "sched_store.h"

#include "nubo/clock.h"
#include "nubo/buf.h"
#include "nubo/error.h"
#include "nubo/log.h"
#include "nubo/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ACQUIRE_MS     10000
#define HEAD_PER_BATCH 8 /* candidate rows read per reservation wanted */
#define PLACE_ADVISORY 7411
#define GROUP_ADVISORY 7412

/* Columns of FETCH_SQL. */
enum {
    C_ID,
    C_TENANT,
    C_RESERVATION,
    C_TYPE,
    C_ZONE,
    C_VCPUS,
    C_MEMORY,
    C_DISK,
    C_TRAITS,
    C_TENANCY,
    C_GROUP,
    C_PARTITION,
    C_STRATEGY,
    C_PARTITIONS,
    C_ATTEMPTS,
    C_TRIED,
    C_MIN_COUNT,
    C_MESSAGE,
    C_RES_SIZE
};

static const char FETCH_SQL[] =
    "WITH head AS ("
    "(SELECT reservation_id, launch_time FROM instances WHERE pending_op = 'spawn' "
    "AND host_id IS NULL ORDER BY launch_time, reservation_id, launch_index LIMIT $1) "
    "UNION ALL "
    "(SELECT reservation_id, launch_time FROM instances WHERE pending_op = 'start' "
    "AND host_id IS NULL ORDER BY launch_time, reservation_id, launch_index LIMIT $1)), "
    "cand AS (SELECT reservation_id FROM head GROUP BY reservation_id "
    "ORDER BY min(launch_time), reservation_id), "
    "got AS (SELECT reservation_id FROM cand "
    "WHERE pg_try_advisory_xact_lock(7411, hashtext(reservation_id)) LIMIT $2) "
    "SELECT i.id, i.tenant_id, i.reservation_id, i.instance_type, i.zone, i.vcpus, i.memory_mib, "
    "i.disk_gib + i.ephemeral_gib, t.traits, i.tenancy, i.placement_group_id, "
    "COALESCE(i.partition_number, 0), g.strategy, g.partition_count, i.attempts, i.tried_hosts, "
    "i.min_count, i.state_reason_message, "
    "(SELECT count(*) FROM instances r WHERE r.tenant_id = i.tenant_id "
    "AND r.reservation_id = i.reservation_id) "
    "FROM instances i JOIN got USING (reservation_id) "
    "JOIN instance_types t ON t.name = i.instance_type "
    "LEFT JOIN placement_groups g ON g.id = i.placement_group_id "
    "WHERE i.pending_op IN ('spawn', 'start') AND i.host_id IS NULL "
    "ORDER BY i.reservation_id, i.attempts > 0, i.placement_group_id, i.launch_index "
    "FOR UPDATE OF i";

/* Host locks in id order first (sched_store.h's lock order), then the conditional claim. The rule is
 * the one placement.c applies: (total - reserved) * ratio >= used + requested. */
static const char LOCK_HOSTS_SQL[] =
    "SELECT 1 FROM hosts WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE";
static const char CLAIM_SQL[] =
    "UPDATE hosts h SET used_vcpus = h.used_vcpus + c.v, "
    "used_memory_mib = h.used_memory_mib + c.m, used_disk_gib = h.used_disk_gib + c.d, "
    "instance_count = h.instance_count + c.n, generation = h.generation + 1 "
    "FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[], $5::int[]) "
    "AS c(id, v, m, d, n) "
    "WHERE h.id = c.id AND h.state = 'up' "
    "AND (h.simulated OR h.last_heartbeat > now() - $6 * interval '1 second') "
    "AND (h.vcpus - h.reserved_vcpus) * h.cpu_ratio >= h.used_vcpus + c.v "
    "AND (h.memory_mib - h.reserved_memory_mib) * h.memory_ratio >= h.used_memory_mib + c.m "
    "AND (h.disk_gib - h.reserved_disk_gib) * h.disk_ratio >= h.used_disk_gib + c.d "
    "RETURNING h.id, h.generation, h.used_vcpus, h.used_memory_mib, h.used_disk_gib, "
    "h.instance_count";
/* Gives back claims made earlier in this transaction (hosts already locked by it). */
static const char UNCLAIM_SQL[] =
    "UPDATE hosts h SET used_vcpus = h.used_vcpus - c.v, "
    "used_memory_mib = h.used_memory_mib - c.m, used_disk_gib = h.used_disk_gib - c.d, "
    "instance_count = h.instance_count - c.n, generation = h.generation + 1 "
    "FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[], $5::int[]) "
    "AS c(id, v, m, d, n) WHERE h.id = c.id";
static const char PLACED_SQL[] =
    "UPDATE instances i SET host_id = u.host, "
    "partition_number = CASE WHEN u.part > 0 THEN u.part ELSE i.partition_number END, "
    "pending_op = 'spawn', state = 'pending', op_lease_until = NULL, host_down = false, "
    "updated_at = now() "
    "FROM unnest($1::text[], $2::text[], $3::int[]) AS u(id, host, part) WHERE i.id = u.id";
static const char ERROR_SQL[] =
    "UPDATE instances i SET state = 'error', pending_op = NULL, op_lease_until = NULL, "
    "updated_at = now(), state_reason_code = 'Server.InsufficientInstanceCapacity', "
    "state_reason_message = u.msg "
    "FROM unnest($1::text[], $2::text[]) AS u(id, msg) WHERE i.id = u.id";

/* What the transaction knows about one fetched row beyond its struct place_inst. */
struct row {
    char **traits, **tried; /* sched_store_parse_text_array() blocks */
    int group;              /* index into txn.groups, -1 for none */
    const char *prev_message;
};

struct batch {
    struct place_batch pb;
    int placed;    /* instances placed by the last place_batch() */
    bool conflict; /* a host refused its claim this round */
    bool left;     /* given up for this transaction: rows stay as they are */
};

struct group {
    struct place_group g;
    const char **hosts;
    int *parts;
};

/* A claim's result for one host, applied to the snapshot after the commit. */
struct host_used {
    char id[PLACE_ID_MAX];
    long long generation, v, m, d, n;
};

struct txn {
    struct sched_ctx *ctx;
    struct nb_pg_conn *conn;
    PGresult *rows_res, *members_res;
    int n;
    struct place_inst *insts;
    struct row *rows;
    struct batch *batches;
    int n_batches;
    struct group *groups;
    int n_groups;
    bool *claimed; /* per instance: its claim is in PostgreSQL (this transaction) */
    struct host_used *used;
    int n_used, cap_used;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_inst_host(const void *a, const void *b)
{
    const struct place_inst *x = *(const struct place_inst *const *)a;
    const struct place_inst *y = *(const struct place_inst *const *)b;
    return strcmp(x->host_id, y->host_id);
}

/* Adds ('sign' +1) or gives back (-1) the claims of the placed instances of the batches for
 * which 'pick' is true. For +1 the hosts that refused are flagged in the batches ('conflict')
 * and their ids are appended to 'refused'. Returns 0, or -1 with 'err'. */
static int host_delta(struct txn *t, bool (*pick)(const struct batch *), int sign,
                      struct nb_buf *refused, int *n_refused, struct nb_error *err)
{
    struct place_inst **list = malloc(((size_t)t->n + 1) * sizeof *list);
    if (!list) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        return -1;
    }
    int n = 0;
    for (int b = 0; b < t->n_batches; b++) {
        if (!pick(&t->batches[b])) {
            continue;
        }
        for (int i = 0; i < t->batches[b].pb.n; i++) {
            struct place_inst *in = &t->batches[b].pb.insts[i];
            /* Claim what is placed; give back only what was claimed. */
            if (in->placed && (sign > 0 || t->claimed[in - t->insts])) {
                list[n++] = in;
            }
        }
    }
    for (int b = 0; sign > 0 && b < t->n_batches; b++) {
        if (pick(&t->batches[b])) {
            t->batches[b].conflict = false; /* set again below for hosts that refuse */
        }
    }
    if (n == 0) {
        free(list);
        return 0;
    }
    qsort(list, (size_t)n, sizeof *list, cmp_inst_host);
    struct nb_buf ids = NB_BUF_INIT, v = NB_BUF_INIT, m = NB_BUF_INIT, d = NB_BUF_INIT,
                  c = NB_BUF_INIT;
    for (int i = 0; i < n;) {
        long long sv = 0, sm = 0, sd = 0, sn = 0;
        int j = i;
        for (; j < n && !strcmp(list[j]->host_id, list[i]->host_id); j++) {
            sv += list[j]->vcpus;
            sm += list[j]->memory_mib;
            sd += list[j]->disk_gib;
            sn++;
        }
        sched_store_array_add(&ids, list[i]->host_id);
        sched_store_array_addf(&v, "%lld", sv);
        sched_store_array_addf(&m, "%lld", sm);
        sched_store_array_addf(&d, "%lld", sd);
        sched_store_array_addf(&c, "%lld", sn);
        i = j;
    }
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", t->ctx->cfg.heartbeat_timeout_s);
    const char *p[] = {sched_store_array_end(&ids), sched_store_array_end(&v),
                       sched_store_array_end(&m),   sched_store_array_end(&d),
                       sched_store_array_end(&c),   timeout};
    int rc = -1;
    PGresult *res = NULL;
    if (sign < 0) {
        res = nb_pg_exec(t->conn, UNCLAIM_SQL, 5, p, err);
        rc = res ? 0 : -1;
        for (int i = 0; rc == 0 && i < n; i++) {
            t->claimed[list[i] - t->insts] = false;
        }
        goto done;
    }
    if (!(res = nb_pg_exec(t->conn, LOCK_HOSTS_SQL, 1, p, err))) {
        goto done;
    }
    PQclear(res);
    if (!(res = nb_pg_exec(t->conn, CLAIM_SQL, 6, p, err))) {
        goto done;
    }
    /* Remember what each host now holds; find the hosts that refused. */
    int rows = PQntuples(res);
    for (int r = 0; r < rows; r++) {
        if (t->n_used == t->cap_used) {
            int cap = t->cap_used ? 2 * t->cap_used : 64;
            struct host_used *u = realloc(t->used, (size_t)cap * sizeof *u);
            if (!u) {
                nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
                goto done;
            }
            t->used = u;
            t->cap_used = cap;
        }
        struct host_used *u = &t->used[t->n_used++];
        snprintf(u->id, sizeof u->id, "%s", PQgetvalue(res, r, 0));
        u->generation = atoll(PQgetvalue(res, r, 1));
        u->v = atoll(PQgetvalue(res, r, 2));
        u->m = atoll(PQgetvalue(res, r, 3));
        u->d = atoll(PQgetvalue(res, r, 4));
        u->n = atoll(PQgetvalue(res, r, 5));
    }
    for (int i = 0; i < n; i++) {
        bool ok = false;
        for (int r = 0; r < rows && !ok; r++) {
            ok = !strcmp(PQgetvalue(res, r, 0), list[i]->host_id);
        }
        if (ok) {
            t->claimed[list[i] - t->insts] = true;
            continue;
        }
        /* list[i] lives in t->insts: find its batch. */
        for (int b = 0; b < t->n_batches; b++) {
            struct batch *bt = &t->batches[b];
            if (list[i] >= bt->pb.insts && list[i] < bt->pb.insts + bt->pb.n) {
                bt->conflict = true;
            }
        }
        if (i == 0 || strcmp(list[i - 1]->host_id, list[i]->host_id)) {
            sched_store_array_add(refused, list[i]->host_id);
            (*n_refused)++;
        }
    }
    rc = 0;

done:
    PQclear(res);
    nb_buf_free(&ids);
    nb_buf_free(&v);
    nb_buf_free(&m);
    nb_buf_free(&d);
    nb_buf_free(&c);
    free(list);
    return rc;
}

static bool pick_active(const struct batch *b)
{
    return !b->left && b->placed > 0;
}

static bool pick_conflict(const struct batch *b)
{
    return b->conflict && b->placed > 0;
}

/* Drops the snapshot's tentative claims of a batch and marks it unplaced. */
static void batch_unplace(struct txn *t, struct batch *b)
{
    for (int i = 0; i < b->pb.n; i++) {
        if (b->pb.insts[i].placed) {
            place_finish(t->ctx->snap, &b->pb.insts[i], false);
            b->pb.insts[i].placed = false;
        }
    }
    b->placed = 0;
}

/* Reads the fetched rows into instances, rows and batches. Returns 0 or -1 with 'err'. */
static int build(struct txn *t, struct nb_error *err)
{
    PGresult *res = t->rows_res;
    t->n = PQntuples(res);
    t->insts = calloc((size_t)t->n, sizeof *t->insts);
    t->rows = calloc((size_t)t->n, sizeof *t->rows);
    t->batches = calloc((size_t)t->n, sizeof *t->batches);
    t->groups = calloc((size_t)t->n, sizeof *t->groups);
    t->claimed = calloc((size_t)t->n, sizeof *t->claimed);
    if (!t->insts || !t->rows || !t->batches || !t->groups || !t->claimed) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        return -1;
    }
    for (int r = 0; r < t->n; r++) {
#define V(c)     PQgetvalue(res, r, c)
#define NULL_(c) PQgetisnull(res, r, c)
        struct place_inst *in = &t->insts[r];
        struct row *row = &t->rows[r];
        in->id = V(C_ID);
        in->tenant_id = V(C_TENANT);
        in->instance_type = V(C_TYPE);
        in->zone = V(C_ZONE);
        in->vcpus = atoll(V(C_VCPUS));
        in->memory_mib = atoll(V(C_MEMORY));
        in->disk_gib = atoll(V(C_DISK));
        in->dedicated = !strcmp(V(C_TENANCY), "dedicated");
        in->partition = atoi(V(C_PARTITION));
        if (!(row->traits = sched_store_parse_text_array(V(C_TRAITS), &in->n_traits)) ||
            !(row->tried = sched_store_parse_text_array(V(C_TRIED), &in->n_tried))) {
            nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
            return -1;
        }
        in->traits = (const char *const *)row->traits;
        in->tried = (const char *const *)row->tried;
        row->prev_message = NULL_(C_MESSAGE) ? NULL : V(C_MESSAGE);
        row->group = -1;
        if (!NULL_(C_GROUP)) {
            for (int g = 0; g < t->n_groups && row->group < 0; g++) {
                if (!strcmp(t->groups[g].g.id, V(C_GROUP))) {
                    row->group = g;
                }
            }
            if (row->group < 0) {
                struct group *g = &t->groups[t->n_groups];
                g->g.id = V(C_GROUP);
                g->g.strategy = !strcmp(V(C_STRATEGY), "cluster")  ? PLACE_GROUP_CLUSTER
                                : !strcmp(V(C_STRATEGY), "spread") ? PLACE_GROUP_SPREAD
                                                                   : PLACE_GROUP_PARTITION;
                g->g.partition_count = atoi(V(C_PARTITIONS));
                row->group = t->n_groups++;
            }
        }
        /* A batch: consecutive rows of one reservation and group; a retried instance alone. */
        bool retry = atoi(V(C_ATTEMPTS)) > 0;
        struct batch *prev = t->n_batches ? &t->batches[t->n_batches - 1] : NULL;
        if (prev && !retry && !strcmp(prev->pb.label, V(C_RESERVATION)) &&
            t->rows[prev->pb.insts - t->insts].group == row->group &&
            atoi(PQgetvalue(res, (int)(prev->pb.insts - t->insts), C_ATTEMPTS)) == 0) {
            prev->pb.n++;
        } else {
            struct batch *b = &t->batches[t->n_batches++];
            b->pb.label = V(C_RESERVATION);
            b->pb.insts = in;
            b->pb.n = 1;
            b->pb.min_count = retry ? 1 : atoi(V(C_MIN_COUNT));
        }
#undef V
#undef NULL_
    }
    /* MinCount holds for a whole reservation only: one partly placed already (some of its
     * instances evacuated or relaunched) is placed instance by instance. */
    for (int b = 0; b < t->n_batches; b++) {
        struct batch *bt = &t->batches[b];
        int first = (int)(bt->pb.insts - t->insts);
        if (atoi(PQgetvalue(res, first, C_RES_SIZE)) != bt->pb.n) {
            bt->pb.min_count = 1;
        }
        if (t->rows[first].group >= 0) {
            bt->pb.group = &t->groups[t->rows[first].group].g;
        }
    }
    return 0;
}

/* Locks the placement groups (advisory, id order) and reads where their live instances are. */
static int load_groups(struct txn *t, struct nb_error *err)
{
    if (t->n_groups == 0) {
        return 0;
    }
    struct nb_buf ids = NB_BUF_INIT;
    for (int g = 0; g < t->n_groups; g++) {
        sched_store_array_add(&ids, t->groups[g].g.id);
    }
    const char *p[] = {sched_store_array_end(&ids)};
    PGresult *res = nb_pg_exec(t->conn,
                               "SELECT pg_advisory_xact_lock(7412, hashtext(g)) FROM "
                               "(SELECT g FROM unnest($1::text[]) AS g ORDER BY g) s",
                               1, p, err);
    if (res) {
        PQclear(res);
        res = nb_pg_exec(t->conn,
                         "SELECT placement_group_id, host_id, COALESCE(partition_number, 0) "
                         "FROM instances WHERE placement_group_id = ANY($1::text[]) "
                         "AND host_id IS NOT NULL AND state NOT IN ('terminated', 'error')",
                         1, p, err);
    }
    nb_buf_free(&ids);
    if (!res) {
        return -1;
    }
    t->members_res = res;
    int rows = PQntuples(res);
    for (int g = 0; g < t->n_groups; g++) {
        struct group *gr = &t->groups[g];
        gr->hosts = calloc((size_t)rows + 1, sizeof *gr->hosts);
        gr->parts = calloc((size_t)rows + 1, sizeof *gr->parts);
        if (!gr->hosts || !gr->parts) {
            nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
            return -1;
        }
        for (int r = 0; r < rows; r++) {
            if (!strcmp(PQgetvalue(res, r, 0), gr->g.id)) {
                gr->hosts[gr->g.n_members] = PQgetvalue(res, r, 1);
                gr->parts[gr->g.n_members++] = atoi(PQgetvalue(res, r, 2));
            }
        }
        gr->g.member_hosts = gr->hosts;
        gr->g.member_partitions = gr->parts;
    }
    return 0;
}

static void place_all(struct txn *t, bool (*which)(const struct batch *), uint64_t *rng)
{
    for (int b = 0; b < t->n_batches; b++) {
        struct batch *bt = &t->batches[b];
        if (which(bt)) {
            bt->placed = place_batch(t->ctx->snap, &t->ctx->cfg.place, &bt->pb, rng);
            bt->conflict = false;
        }
    }
}

static bool pick_all(const struct batch *b)
{
    return true;
}

static bool pick_failed(const struct batch *b)
{
    return !b->left && b->placed == 0;
}

/* Writes the outcome of every batch not left: host_id for the placed instances, 'error' and the
 * reason for the others. Returns the number of instances written, or -1 with 'err'. */
static int write_outcome(struct txn *t, struct nb_error *err)
{
    struct nb_buf pid = NB_BUF_INIT, phost = NB_BUF_INIT, ppart = NB_BUF_INIT, eid = NB_BUF_INIT,
                  emsg = NB_BUF_INIT;
    int n_placed = 0, n_error = 0;
    for (int b = 0; b < t->n_batches; b++) {
        const struct batch *bt = &t->batches[b];
        if (bt->left) {
            continue;
        }
        for (int i = 0; i < bt->pb.n; i++) {
            const struct place_inst *in = &bt->pb.insts[i];
            if (in->placed) {
                sched_store_array_add(&pid, in->id);
                sched_store_array_add(&phost, in->host_id);
                sched_store_array_addf(&ppart, "%d", in->out_partition);
                n_placed++;
                nb_debug("placed %s (%s, %s) on host %s", in->id, in->instance_type, in->zone,
                         in->host_id);
                continue;
            }
            const struct row *row = &t->rows[in - t->insts];
            char msg[PLACE_REASON_MAX + 512];
            if (row->prev_message && in->n_tried > 0) {
                snprintf(msg, sizeof msg, "%s (earlier: %s)", in->reason, row->prev_message);
            } else {
                snprintf(msg, sizeof msg, "%s", in->reason);
            }
            sched_store_array_add(&eid, in->id);
            sched_store_array_add(&emsg, msg);
            n_error++;
            nb_info("could not place %s: %s", in->id, msg);
        }
    }
    int rc = 0;
    PGresult *res = NULL;
    if (n_placed) {
        const char *p[] = {sched_store_array_end(&pid), sched_store_array_end(&phost),
                           sched_store_array_end(&ppart)};
        res = nb_pg_exec(t->conn, PLACED_SQL, 3, p, err);
        rc = res ? 0 : -1;
        PQclear(res);
    }
    if (rc == 0 && n_error) {
        const char *p[] = {sched_store_array_end(&eid), sched_store_array_end(&emsg)};
        res = nb_pg_exec(t->conn, ERROR_SQL, 2, p, err);
        rc = res ? 0 : -1;
        PQclear(res);
    }
    nb_buf_free(&pid);
    nb_buf_free(&phost);
    nb_buf_free(&ppart);
    nb_buf_free(&eid);
    nb_buf_free(&emsg);
    if (rc == 0) {
        atomic_fetch_add(&t->ctx->stats.placed, n_placed);
        atomic_fetch_add(&t->ctx->stats.unplaceable, n_error);
    }
    return rc < 0 ? -1 : n_placed + n_error;
}

/* Claims the capacity of every placed batch. The reservations whose hosts refused give back what
 * they did get and are left for the next transaction, placed on fresh data of those hosts:
 * claiming again here would lock more hosts after the ones already held, out of id order, and
 * two schedulers doing that can deadlock. */
static int claim_all(struct txn *t, struct nb_error *err)
{
    struct nb_buf refused = NB_BUF_INIT;
    int n_refused = 0;
    if (host_delta(t, pick_active, +1, &refused, &n_refused, err) < 0) {
        nb_buf_free(&refused);
        return -1;
    }
    if (n_refused == 0) {
        nb_buf_free(&refused);
        return 0;
    }
    atomic_fetch_add(&t->ctx->stats.conflicts, n_refused);
    int rc = host_delta(t, pick_conflict, -1, NULL, NULL, err);
    int n_ids = 0;
    char **ids =
        rc == 0 ? sched_store_parse_text_array(sched_store_array_end(&refused), &n_ids) : NULL;
    if (rc == 0 && !ids) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        rc = -1;
    }
    if (rc == 0 && sched_store_load_hosts(t->conn, t->ctx->snap, t->ctx->cfg.heartbeat_timeout_s,
                                          (const char *const *)ids, n_ids, err) < 0) {
        rc = -1;
    }
    free(ids);
    nb_buf_free(&refused);
    for (int b = 0; rc == 0 && b < t->n_batches; b++) {
        if (t->batches[b].conflict) {
            batch_unplace(t, &t->batches[b]);
            t->batches[b].left = true;
        }
    }
    return rc;
}

static void txn_free(struct txn *t)
{
    for (int r = 0; t->rows && r < t->n; r++) {
        free(t->rows[r].traits);
        free(t->rows[r].tried);
    }
    for (int g = 0; t->groups && g < t->n_groups; g++) {
        free(t->groups[g].hosts);
        free(t->groups[g].parts);
    }
    free(t->insts);
    free(t->rows);
    free(t->batches);
    free(t->groups);
    free(t->claimed);
    free(t->used);
    PQclear(t->rows_res);
    PQclear(t->members_res);
}

int sched_placer_run_once(struct sched_ctx *ctx, uint64_t *rng, struct nb_error *err)
{
    struct txn t = {.ctx = ctx};
    double start = now_s();
    long long start_ms = nb_monotonic_ms();
    int rc = -1;
    if (!(t.conn = nb_pg_acquire(ctx->pool, ACQUIRE_MS, err)) || nb_pg_begin(t.conn, err) < 0) {
        goto done;
    }
    char head[16], batch[16];
    snprintf(head, sizeof head, "%d", ctx->cfg.batch * HEAD_PER_BATCH);
    snprintf(batch, sizeof batch, "%d", ctx->cfg.batch);
    const char *p[] = {head, batch};
    if (!(t.rows_res = nb_pg_exec(t.conn, FETCH_SQL, 2, p, err))) {
        goto done;
    }
    if (PQntuples(t.rows_res) == 0) {
        rc = 0;
        goto done;
    }
    if (build(&t, err) < 0 || load_groups(&t, err) < 0) {
        goto done;
    }
    place_all(&t, pick_all, rng);
    /* Before saying "no valid host", make sure the snapshot is at least as new as this
     * transaction: a host may have been added, or capacity released by another scheduler, since
     * it was read. Failures are the rare case, so the full re-read is affordable. */
    bool any_failed = false;
    for (int b = 0; b < t.n_batches; b++) {
        any_failed |= t.batches[b].placed == 0;
    }
    if (any_failed && atomic_load(&ctx->snapshot_ms) < start_ms) {
        long long at = nb_monotonic_ms();
        if (sched_store_load_hosts(t.conn, ctx->snap, ctx->cfg.heartbeat_timeout_s, NULL, 0, err) <
            0) {
            goto done;
        }
        atomic_store(&ctx->snapshot_ms, at);
        place_all(&t, pick_failed, rng);
    }
    if (claim_all(&t, err) < 0) {
        goto done;
    }
    int written = write_outcome(&t, err);
    if (written < 0 || nb_pg_commit(t.conn, err) < 0) {
        goto done;
    }
    /* Committed: the tentative claims are now PostgreSQL's. */
    int placed = 0;
    for (int b = 0; b < t.n_batches; b++) {
        for (int i = 0; !t.batches[b].left && i < t.batches[b].pb.n; i++) {
            if (t.batches[b].pb.insts[i].placed) {
                place_finish(ctx->snap, &t.batches[b].pb.insts[i], true);
                placed++;
            }
        }
    }
    for (int u = 0; u < t.n_used; u++) {
        place_snapshot_set_used(ctx->snap, t.used[u].id, t.used[u].generation, t.used[u].v,
                                t.used[u].m, t.used[u].d, t.used[u].n);
    }
    atomic_fetch_add(&ctx->stats.batches, 1);
    if (ctx->on_batch) {
        ctx->on_batch(ctx->on_batch_arg, now_s() - start, placed);
    }
    rc = written;
    if (placed > 0) {
        sched_wake(ctx); /* drivers: spawns to do */
    }
    /* Reservations left over after conflicts: the caller comes back at once. */
    for (int b = 0; b < t.n_batches && rc == 0; b++) {
        rc += t.batches[b].left;
    }

done:
    if (rc < 0) {
        /* Nothing was committed: drop every tentative claim. */
        for (int b = 0; b < t.n_batches; b++) {
            batch_unplace(&t, &t.batches[b]);
        }
    }
    nb_pg_release(t.conn); /* rolls back an open transaction */
    txn_free(&t);
    return rc;
}
