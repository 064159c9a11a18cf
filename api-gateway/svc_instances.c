/* Instances service (see svc_instances.h). */
#include "svc_instances.h"

#include "auth.h"
#include "gateway.h"
#include "svc_network.h"
#include "svc_sql.h"

#include "nubo/arena.h"
#include "nubo/buf.h"
#include "nubo/crypto.h"
#include "nubo/error.h"
#include "nubo/id.h"
#include "nubo/pg.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TYPE "t3.micro"
#define MAX_LAUNCH   1000

static const struct {
    const char *name;
    int code;
} states[] = {
    {"pending", 0},
    {"running", 16},
    {"shutting-down", 32},
    {"terminated", 48},
    {"stopping", 64},
    {"stopped", 80},
    /* Not an EC2 state: a launch that failed for good, with its StateReason. */
    {"error", 96},
};

int gw_instance_state_code(const char *state)
{
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
        if (!strcmp(states[i].name, state)) {
            return states[i].code;
        }
    }
    return -1;
}

/* Columns read by every query, in the order row_to_instance() expects. */
#define INSTANCE_COLUMNS                                                                           \
    "i.id, i.reservation_id, i.tenant_id, i.launch_index, i.image_id, i.instance_type, "           \
    "i.key_name, i.zone, i.state, i.state_reason_code, i.state_reason_message, "                   \
    "floor(date_part('epoch', i.launch_time) * 1000)::bigint, i.vcpus, i.memory_mib, i.tags, "     \
    "CASE WHEN i.placement_group_id IS NOT NULL THEN (SELECT g.name FROM placement_groups g "      \
    "WHERE g.id = i.placement_group_id) END, "                                                     \
    "i.partition_number, i.tenancy, i.host_id, " NETWORK_COLUMN

/* The instance's interface as [id, vpc, subnet, ip, mac, [[group id, name], ...],
 * [public ip, association id, allocation id] or null], or NULL. */
#define NETWORK_COLUMN                                                                             \
    "(SELECT json_build_array(n.id, n.vpc_id, n.subnet_id, host(n.private_ip), "                   \
    "n.mac_address::text, COALESCE((SELECT json_agg(json_build_array(g.id, g.name) "               \
    "ORDER BY g.name) FROM network_interface_groups ng JOIN security_groups g "                    \
    "ON g.id = ng.group_id WHERE ng.interface_id = n.id), '[]'), "                                 \
    "(SELECT json_build_array(host(a.public_ip), a.association_id, a.allocation_id) "              \
    "FROM addresses a WHERE a.network_interface_id = n.id)) FROM network_interfaces n "            \
    "WHERE n.instance_id = i.id AND n.device_index = 0)"

/* The column of the instance's interface (device 0) 'column' names, for filters. */
#define INTERFACE_OF(column)                                                                       \
    "(SELECT " column " FROM network_interfaces n WHERE n.instance_id = i.id "                     \
    "AND n.device_index = 0)"

/* Terminated instances stay visible for an hour, as on EC2. */
#define VISIBLE "(i.state <> 'terminated' OR i.terminated_at > now() - interval '1 hour')"

static int cmp_tag(const void *a, const void *b)
{
    return strcmp(((const struct gw_tag *)a)->key, ((const struct gw_tag *)b)->key);
}

/* Parses the tags column (a JSON object, key to value) into 'in', ordered by key. The strings are
 * copied into 'a'. */
static void parse_tags(const char *text, struct nb_arena *a, struct gw_instance *in)
{
    in->tags = NULL;
    in->n_tags = 0;
    if (!text || !strcmp(text, "{}")) {
        return;
    }
    json_t *obj = json_loads(text, 0, NULL);
    if (json_is_object(obj) && json_object_size(obj) > 0) {
        struct gw_tag *tags = nb_arena_alloc(a, sizeof *tags * json_object_size(obj));
        size_t n = 0;
        const char *key;
        json_t *v;
        json_object_foreach(obj, key, v)
        {
            tags[n].key = nb_arena_strdup(a, key);
            tags[n].value = nb_arena_strdup(a, json_string_value(v) ? json_string_value(v) : "");
            n++;
        }
        qsort(tags, n, sizeof *tags, cmp_tag);
        in->tags = tags;
        in->n_tags = n;
    }
    json_decref(obj);
}

static const char *json_str(json_t *arr, size_t i, struct nb_arena *a)
{
    const char *s = json_string_value(json_array_get(arr, i));
    return s ? nb_arena_strdup(a, s) : NULL;
}

/* Parses NETWORK_COLUMN into 'in' (nothing when it is NULL). */
static void parse_network(const char *text, struct nb_arena *a, struct gw_instance *in)
{
    json_t *arr = text ? json_loads(text, 0, NULL) : NULL;
    if (json_is_array(arr)) {
        in->interface_id = json_str(arr, 0, a);
        in->vpc_id = json_str(arr, 1, a);
        in->subnet_id = json_str(arr, 2, a);
        in->private_ip = json_str(arr, 3, a);
        in->mac_address = json_str(arr, 4, a);
        json_t *groups = json_array_get(arr, 5);
        size_t n = json_array_size(groups), k;
        struct gw_group_ref *g = nb_arena_zalloc(a, sizeof *g * (n ? n : 1));
        json_t *pair;
        json_array_foreach(groups, k, pair)
        {
            g[k].id = json_str(pair, 0, a);
            g[k].name = json_str(pair, 1, a);
        }
        in->groups = g;
        in->n_groups = n;
        json_t *eip = json_array_get(arr, 6);
        if (json_is_array(eip)) {
            in->public_ip = json_str(eip, 0, a);
            in->public_association_id = json_str(eip, 1, a);
            in->public_allocation_id = json_str(eip, 2, a);
        }
    }
    json_decref(arr);
}

/* Fills 'in' from 'row' of 'res', which must be kept with svc_keep(): the strings point into it. */
static void row_to_instance(PGresult *res, int row, struct nb_arena *a, struct gw_instance *in)
{
    in->id = svc_val(res, row, 0);
    in->reservation_id = svc_val(res, row, 1);
    in->owner_id = svc_val(res, row, 2);
    in->launch_index = atoi(PQgetvalue(res, row, 3));
    in->image_id = svc_val(res, row, 4);
    in->instance_type = svc_val(res, row, 5);
    in->key_name = svc_val(res, row, 6);
    in->zone = svc_val(res, row, 7);
    in->state = svc_val(res, row, 8);
    in->state_code = gw_instance_state_code(in->state);
    in->reason_code = svc_val(res, row, 9);
    in->reason_message = svc_val(res, row, 10);
    in->launch_time_ms = strtoll(PQgetvalue(res, row, 11), NULL, 10);
    in->vcpus = atoi(PQgetvalue(res, row, 12));
    in->memory_mib = atoi(PQgetvalue(res, row, 13));
    parse_tags(svc_val(res, row, 14), a, in);
    in->placement_group = svc_val(res, row, 15);
    in->partition_number = PQgetisnull(res, row, 16) ? 0 : atoi(PQgetvalue(res, row, 16));
    in->tenancy = svc_val(res, row, 17);
    in->host_id = svc_val(res, row, 18);
    parse_network(svc_val(res, row, 19), a, in);
}

/* Turns the rows of an INSTANCE_COLUMNS query into instances, at most 'limit' of them (0: all).
 * Keeps 'res' until the arena 'a' is freed: the instances' strings point into it. Returns true
 * when there were more rows than 'limit'. */
static bool rows_to_list(PGresult *res, int limit, struct nb_arena *a, struct gw_instance_list *out)
{
    svc_keep(res, a);
    int rows = PQntuples(res);
    int n = limit > 0 && rows > limit ? limit : rows;
    out->items = nb_arena_zalloc(a, sizeof *out->items * (size_t)(n ? n : 1));
    out->n = (size_t)n;
    for (int r = 0; r < n; r++) {
        row_to_instance(res, r, a, &out->items[r]);
    }
    return rows > n;
}

/* --- RunInstances ---------------------------------------------------------------------------- */

static char *run_params_hash(const struct gw_run_request *rq)
{
    struct nb_buf b = NB_BUF_INIT;
    nb_buf_printf(&b, "%s\n%s\n%s\n%s\n%s\n%d\n%d\n", rq->image_id,
                  rq->instance_type ? rq->instance_type : "", rq->key_name ? rq->key_name : "",
                  rq->zone ? rq->zone : "", rq->user_data ? rq->user_data : "", rq->min_count,
                  rq->max_count);
    for (size_t i = 0; i < rq->n_tags; i++) {
        nb_buf_printf(&b, "%s=%s\n", rq->tags[i].key, rq->tags[i].value);
    }
    if (rq->subnet_id) { /* only then: the hashes of earlier launches stay what they were */
        nb_buf_printf(&b, "subnet=%s\nip=%s\n", rq->subnet_id,
                      rq->private_ip ? rq->private_ip : "");
        for (size_t i = 0; i < rq->n_group_ids; i++) {
            nb_buf_printf(&b, "sg=%s\n", rq->group_ids[i]);
        }
    }
    char *hex = malloc(65);
    if (!hex) {
        abort();
    }
    nb_sha256_hex(b.data, b.len, hex);
    nb_buf_free(&b);
    return hex;
}

static int describe_reservation(struct nb_pg_conn *conn, const char *tenant_id,
                                const char *reservation_id, struct nb_arena *a,
                                struct gw_instance_list *out, struct nb_error *err)
{
    const char *p[] = {tenant_id, reservation_id};
    const char *sql = "SELECT " INSTANCE_COLUMNS " FROM instances i "
                      "WHERE i.tenant_id = $1 AND i.reservation_id = $2 ORDER BY i.launch_index";
    PGresult *res = nb_pg_exec(conn, sql, 2, p, err);
    if (!res) {
        return -1;
    }
    rows_to_list(res, 0, a, out); /* keeps 'res' */
    out->next_token = NULL;
    return 0;
}

/* Checks what the launch refers to; fills the type's size and the zone. */
/* What a launch claims and where it goes, as check_launch() finds it. */
struct launch_info {
    char vcpus[16], memory_mib[16], disk_gib[16], ephemeral_gib[16];
    char zone[64];
    char group_id[32];  /* placement group id, "" when none */
    char partition[16]; /* "" when none */
    char min_count[16];
};

static int check_placement(struct nb_pg_conn *conn, const char *tenant_id,
                           const struct gw_run_request *rq, struct launch_info *li,
                           struct nb_error *err)
{
    if (rq->tenancy && strcmp(rq->tenancy, "default") && strcmp(rq->tenancy, "dedicated")) {
        nb_error_set(err, NB_ERR_INVALID,
                     "Invalid value '%s' for Placement.Tenancy: use default or dedicated",
                     rq->tenancy);
        nb_error_reason(err, "InvalidParameterValue");
        return -1;
    }
    if (!rq->placement_group) {
        if (rq->partition_number) {
            nb_error_set(err, NB_ERR_INVALID,
                         "Placement.PartitionNumber needs a partition placement group");
            nb_error_reason(err, "InvalidParameterCombination");
            return -1;
        }
        return 0;
    }
    const char *p[] = {tenant_id, rq->placement_group};
    PGresult *res = nb_pg_exec(conn,
                               "SELECT id, strategy, partition_count FROM placement_groups "
                               "WHERE tenant_id = $1 AND name = $2 AND state = 'available'",
                               2, p, err);
    if (!res) {
        return -1;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        nb_error_set(err, NB_ERR_NOT_FOUND, "The Placement Group '%s' is unknown",
                     rq->placement_group);
        nb_error_reason(err, "InvalidPlacementGroup.Unknown");
        return -1;
    }
    snprintf(li->group_id, sizeof li->group_id, "%s", PQgetvalue(res, 0, 0));
    bool partition = !strcmp(PQgetvalue(res, 0, 1), "partition");
    int count = atoi(PQgetvalue(res, 0, 2));
    PQclear(res);
    if (rq->partition_number) {
        if (!partition || rq->partition_number < 1 || rq->partition_number > count) {
            nb_error_set(err, NB_ERR_INVALID,
                         "Placement.PartitionNumber %d is not a partition of group '%s'",
                         rq->partition_number, rq->placement_group);
            nb_error_reason(err, "InvalidParameterValue");
            return -1;
        }
        snprintf(li->partition, sizeof li->partition, "%d", rq->partition_number);
    }
    return 0;
}

static int check_launch(struct nb_pg_conn *conn, const char *tenant_id,
                        const struct gw_run_request *rq, const char *type, int *vcpus,
                        int *memory_mib, struct launch_info *li, struct nb_error *err)
{
    const char *p_img[] = {rq->image_id, tenant_id};
    PGresult *res = nb_pg_exec(conn,
                               "SELECT m.state FROM images m WHERE m.id = $1 "
                               "AND (m.tenant_id = $2 OR m.is_public OR EXISTS (SELECT 1 FROM "
                               "image_launch_permissions p WHERE p.image_id = m.id "
                               "AND p.tenant_id = $2)) AND m.state <> 'deregistered'",
                               2, p_img, err);
    if (!res) {
        return -1;
    }
    int found = PQntuples(res);
    bool available = found && !strcmp(PQgetvalue(res, 0, 0), "available");
    PQclear(res);
    if (!found) {
        nb_error_set(err, NB_ERR_NOT_FOUND, "The image id '[%s]' does not exist", rq->image_id);
        nb_error_reason(err, "InvalidAMIID.NotFound");
        return -1;
    }
    if (!available) {
        nb_error_set(err, NB_ERR_CONFLICT, "The image '%s' is not available", rq->image_id);
        nb_error_reason(err, "InvalidAMIID.Unavailable");
        return -1;
    }

    const char *p_type[] = {type};
    res = nb_pg_exec(conn,
                     "SELECT vcpus, memory_mib, disk_gib, ephemeral_gib FROM instance_types "
                     "WHERE name = $1 AND enabled",
                     1, p_type, err);
    if (!res) {
        return -1;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        nb_error_set(err, NB_ERR_INVALID, "Invalid value '%s' for InstanceType", type);
        nb_error_reason(err, "InvalidParameterValue");
        return -1;
    }
    *vcpus = atoi(PQgetvalue(res, 0, 0));
    *memory_mib = atoi(PQgetvalue(res, 0, 1));
    snprintf(li->vcpus, sizeof li->vcpus, "%s", PQgetvalue(res, 0, 0));
    snprintf(li->memory_mib, sizeof li->memory_mib, "%s", PQgetvalue(res, 0, 1));
    snprintf(li->disk_gib, sizeof li->disk_gib, "%s", PQgetvalue(res, 0, 2));
    snprintf(li->ephemeral_gib, sizeof li->ephemeral_gib, "%s", PQgetvalue(res, 0, 3));
    PQclear(res);

    if (rq->key_name) {
        const char *p_key[] = {tenant_id, rq->key_name};
        res = nb_pg_exec(conn, "SELECT 1 FROM key_pairs WHERE tenant_id = $1 AND name = $2", 2,
                         p_key, err);
        if (!res) {
            return -1;
        }
        found = PQntuples(res);
        PQclear(res);
        if (!found) {
            nb_error_set(err, NB_ERR_NOT_FOUND, "The key pair '%s' does not exist", rq->key_name);
            nb_error_reason(err, "InvalidKeyPair.NotFound");
            return -1;
        }
    }

    const char *p_zone[] = {rq->zone};
    res = nb_pg_exec(conn,
                     "SELECT name FROM zones WHERE state = 'available' "
                     "AND ($1::text IS NULL OR name = $1) ORDER BY name LIMIT 1",
                     1, p_zone, err);
    if (!res) {
        return -1;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        nb_error_set(err, NB_ERR_INVALID, "Invalid availability zone: [%s]",
                     rq->zone ? rq->zone : "(none available)");
        nb_error_reason(err, "InvalidParameterValue");
        return -1;
    }
    snprintf(li->zone, sizeof li->zone, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    snprintf(li->min_count, sizeof li->min_count, "%d", rq->min_count);
    return check_placement(conn, tenant_id, rq, li, err);
}

/* How many instances of ('vcpus', 'memory_mib') the tenant may still launch, up to 'want'.
 * Locks the tenant's quota row, so concurrent launches of one tenant queue here. */
static int quota_room(struct nb_pg_conn *conn, const char *tenant_id, int want, int vcpus,
                      int memory_mib, int min_count, struct nb_error *err)
{
    const char *p[] = {tenant_id};
    PGresult *res = nb_pg_exec(conn,
                               "SELECT q.max_instances, q.max_vcpus, q.max_memory_mib, "
                               "count(i.id), COALESCE(sum(i.vcpus), 0), "
                               "COALESCE(sum(i.memory_mib), 0) "
                               "FROM (SELECT * FROM quotas WHERE tenant_id = $1 FOR UPDATE) q "
                               "LEFT JOIN instances i ON i.tenant_id = q.tenant_id "
                               "AND i.state <> 'terminated' "
                               "GROUP BY q.max_instances, q.max_vcpus, q.max_memory_mib",
                               1, p, err);
    if (!res) {
        return -1;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        nb_error_set(err, NB_ERR_INTERNAL, "tenant %s has no quota row", tenant_id);
        return -1;
    }
    long long max_inst = atoll(PQgetvalue(res, 0, 0)), max_vcpu = atoll(PQgetvalue(res, 0, 1));
    long long max_mem = atoll(PQgetvalue(res, 0, 2)), used_inst = atoll(PQgetvalue(res, 0, 3));
    long long used_vcpu = atoll(PQgetvalue(res, 0, 4)), used_mem = atoll(PQgetvalue(res, 0, 5));
    PQclear(res);

    long long room = max_inst - used_inst;
    long long by_cpu = (max_vcpu - used_vcpu) / vcpus;
    long long by_mem = (max_mem - used_mem) / memory_mib;
    const char *limit = "instance";
    if (by_cpu < room) {
        room = by_cpu;
        limit = "vCPU";
    }
    if (by_mem < room) {
        room = by_mem;
        limit = "memory";
    }
    if (room < min_count) {
        nb_error_set(err, NB_ERR_LIMIT,
                     "You have requested more instances (%d) than your current %s limit allows "
                     "(%lld instances, %lld vCPUs, %lld MiB; in use: %lld, %lld, %lld)",
                     min_count, limit, max_inst, max_vcpu, max_mem, used_inst, used_vcpu, used_mem);
        nb_error_reason(err, strcmp(limit, "vCPU") ? "InstanceLimitExceeded" : "VcpuLimitExceeded");
        return -1;
    }
    return room < want ? (int)room : want;
}

/* Records the client token; returns 1 if this request is the first with it, 0 if an earlier one
 * exists (its reservation id copied to 'earlier'), -1 on error. */
static int claim_token(struct nb_pg_conn *conn, const char *tenant_id,
                       const struct gw_run_request *rq, const char *reservation_id, char *earlier,
                       size_t earlier_size, struct nb_error *err)
{
    char *hash = run_params_hash(rq);
    const char *p[] = {tenant_id, rq->client_token, hash, reservation_id};
    PGresult *res = nb_pg_exec(conn,
                               "INSERT INTO client_tokens (tenant_id, token, action, params_hash, "
                               "result_id) VALUES ($1, $2, 'RunInstances', $3, $4) "
                               "ON CONFLICT DO NOTHING RETURNING 1",
                               4, p, err);
    if (!res) {
        free(hash);
        return -1;
    }
    int first = PQntuples(res);
    PQclear(res);
    if (first) {
        free(hash);
        return 1;
    }
    res = nb_pg_exec(conn,
                     "SELECT params_hash, result_id, action FROM client_tokens "
                     "WHERE tenant_id = $1 AND token = $2",
                     2, p, err);
    if (!res) {
        free(hash);
        return -1;
    }
    int rc = 0;
    if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), hash) ||
        strcmp(PQgetvalue(res, 0, 2), "RunInstances")) {
        nb_error_set(err, NB_ERR_CONFLICT,
                     "The client token '%s' was used before with different parameters",
                     rq->client_token);
        nb_error_reason(err, "IdempotentParameterMismatch");
        rc = -1;
    } else {
        snprintf(earlier, earlier_size, "%s", PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    free(hash);
    return rc;
}

/* Inserts 'n' instances, each with its network interface when 'nl' is not NULL. */
static int insert_instances(struct nb_pg_conn *conn, const char *tenant_id,
                            const struct gw_run_request *rq, const char *type,
                            const char *reservation_id, const struct launch_info *li, int n,
                            const struct gw_net_launch *nl, struct nb_error *err)
{
    for (int k = 0; k < n; k++) {
        char id[NB_ID_MAX], index_s[16];
        if (nb_id_new("i", id, sizeof id) < 0) {
            nb_error_set(err, NB_ERR_INTERNAL, "could not make an instance id");
            return -1;
        }
        snprintf(index_s, sizeof index_s, "%d", k);
        const char *p[] = {id,
                           tenant_id,
                           reservation_id,
                           index_s,
                           rq->image_id,
                           type,
                           li->vcpus,
                           li->memory_mib,
                           rq->key_name,
                           li->zone,
                           rq->user_data,
                           rq->client_token,
                           li->disk_gib,
                           li->ephemeral_gib,
                           rq->tenancy ? rq->tenancy : "default",
                           li->group_id[0] ? li->group_id : NULL,
                           li->partition[0] ? li->partition : NULL,
                           li->min_count};
        PGresult *res = nb_pg_exec(conn,
                                   "INSERT INTO instances (id, tenant_id, reservation_id, "
                                   "launch_index, image_id, instance_type, vcpus, memory_mib, "
                                   "key_name, zone, user_data, client_token, disk_gib, "
                                   "ephemeral_gib, tenancy, placement_group_id, partition_number, "
                                   "min_count, pending_op) "
                                   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
                                   "$13, $14, $15, $16, $17, $18, 'spawn')",
                                   18, p, err);
        if (!res) {
            return -1;
        }
        PQclear(res);
        if (nl && gw_net_launch_attach(conn, tenant_id, nl, (size_t)k, id, err) < 0) {
            return -1;
        }
        for (size_t t = 0; t < rq->n_tags; t++) {
            if (svc_tag_put(conn, tenant_id, id, "instance", &rq->tags[t], err) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* For a launch into a subnet: finds the subnet, its groups and its zone, which becomes the
 * launch's ('*zone'; another zone asked for is refused). Fills '*nl'; returns 0 or -1. */
static int prepare_network(struct nb_pg_conn *conn, const char *tenant_id,
                           const struct gw_run_request *rq, struct nb_arena *arena,
                           struct gw_net_launch *nl, const char **zone, struct nb_error *err)
{
    if (!rq->subnet_id) {
        if (rq->private_ip || rq->n_group_ids) {
            nb_error_set(err, NB_ERR_INVALID, "%s needs a SubnetId: nubo has no default VPC",
                         rq->private_ip ? "PrivateIpAddress" : "SecurityGroupId");
            nb_error_reason(err, "InvalidParameterCombination");
            return -1;
        }
        return 0;
    }
    if (gw_net_launch_prepare(conn, tenant_id, rq->subnet_id, rq->private_ip, rq->group_ids,
                              rq->n_group_ids, arena, nl, err) < 0) {
        return -1;
    }
    if (rq->zone && strcmp(rq->zone, nl->zone)) {
        nb_error_set(err, NB_ERR_INVALID,
                     "The availability zone '%s' is not the zone of subnet '%s' (%s)", rq->zone,
                     rq->subnet_id, nl->zone);
        nb_error_reason(err, "InvalidParameterCombination");
        return -1;
    }
    *zone = nl->zone;
    return 0;
}

int gw_instances_run(struct gw_ctx *gw, const struct gw_principal *who,
                     const struct gw_run_request *rq, struct nb_arena *arena,
                     struct gw_instance_list *out, struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0) {
        return -1;
    }
    if (rq->min_count < 1 || rq->max_count < rq->min_count || rq->max_count > MAX_LAUNCH) {
        nb_error_set(err, NB_ERR_INVALID,
                     "MinCount (%d) and MaxCount (%d) must satisfy 1 <= MinCount <= MaxCount "
                     "<= %d",
                     rq->min_count, rq->max_count, MAX_LAUNCH);
        nb_error_reason(err, "InvalidParameterValue");
        return -1;
    }
    const char *type = rq->instance_type ? rq->instance_type : DEFAULT_TYPE;
    char reservation_id[NB_ID_MAX];
    if (nb_id_new("r", reservation_id, sizeof reservation_id) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not make a reservation id");
        return -1;
    }
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    if (nb_pg_begin(conn, err) < 0) {
        goto done;
    }
    if (rq->client_token) {
        char earlier[NB_ID_MAX];
        int first =
            claim_token(conn, who->tenant_id, rq, reservation_id, earlier, sizeof earlier, err);
        if (first < 0) {
            goto done;
        }
        if (!first) {
            nb_pg_rollback(conn);
            rc = describe_reservation(conn, who->tenant_id, earlier, arena, out, err);
            goto done;
        }
    }
    int vcpus, memory_mib;
    struct launch_info li = {0};
    struct gw_net_launch nl;
    struct gw_run_request placed = *rq; /* with the subnet's zone */
    if (prepare_network(conn, who->tenant_id, rq, arena, &nl, &placed.zone, err) < 0 ||
        check_launch(conn, who->tenant_id, &placed, type, &vcpus, &memory_mib, &li, err) < 0) {
        goto done;
    }
    int n = quota_room(conn, who->tenant_id, rq->max_count, vcpus, memory_mib, rq->min_count, err);
    if (n >= 0 && rq->subnet_id) {
        n = gw_net_launch_addresses(conn, &nl, n, rq->min_count, arena, err);
    }
    if (n < 0 ||
        insert_instances(conn, who->tenant_id, rq, type, reservation_id, &li, n,
                         rq->subnet_id ? &nl : NULL, err) < 0 ||
        svc_notify_scheduler(conn, err) < 0) {
        goto done;
    }
    if (nb_pg_commit(conn, err) < 0) {
        goto done;
    }
    rc = describe_reservation(conn, who->tenant_id, reservation_id, arena, out, err);

done:
    nb_pg_release(conn); /* rolls back an open transaction */
    return rc;
}

/* --- DescribeInstances ----------------------------------------------------------------------- */

static const struct {
    const char *filter;
    const char *column;
} instance_filters[] = {
    {"instance-id", "i.id"},
    {"instance-state-name", "i.state"},
    {"instance-type", "i.instance_type"},
    {"image-id", "i.image_id"},
    {"key-name", "i.key_name"},
    {"availability-zone", "i.zone"},
    {"reservation-id", "i.reservation_id"},
    {"owner-id", "i.tenant_id"},
    {"vpc-id", INTERFACE_OF("n.vpc_id")},
    {"subnet-id", INTERFACE_OF("n.subnet_id")},
    {"private-ip-address", INTERFACE_OF("host(n.private_ip)")},
    {"network-interface.mac-address", INTERFACE_OF("n.mac_address::text")},
    {"ip-address", INTERFACE_OF("(SELECT host(a.public_ip) FROM addresses a "
                                "WHERE a.network_interface_id = n.id)")},
    {"network-interface.association.public-ip",
     INTERFACE_OF("(SELECT host(a.public_ip) FROM addresses a "
                  "WHERE a.network_interface_id = n.id)")},
};

static int add_filter(struct svc_sql *q, const struct gw_filter *f, struct nb_error *err)
{
    if (!strcmp(f->name, "instance.group-id") || !strcmp(f->name, "instance.group-name")) {
        nb_buf_printf(&q->sql,
                      " AND EXISTS (SELECT 1 FROM network_interfaces n JOIN "
                      "network_interface_groups ng ON ng.interface_id = n.id JOIN "
                      "security_groups g ON g.id = ng.group_id WHERE n.instance_id = i.id "
                      "AND g.%s = ANY(%s))",
                      strcmp(f->name, "instance.group-id") ? "name" : "id",
                      svc_sql_array(q, f->values, f->n_values));
        return 0;
    }
    for (size_t k = 0; k < sizeof instance_filters / sizeof instance_filters[0]; k++) {
        if (!strcmp(f->name, instance_filters[k].filter)) {
            nb_buf_printf(&q->sql, " AND %s = ANY(%s)", instance_filters[k].column,
                          svc_sql_array(q, f->values, f->n_values));
            return 0;
        }
    }
    return svc_sql_tag_filter(q, f, "i.id", err);
}

int gw_instances_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *const *ids,
                          size_t n_ids, const struct gw_filter *filters, size_t n_filters,
                          const struct gw_page *page, struct nb_arena *arena,
                          struct gw_instance_list *out, struct nb_error *err)
{
    memset(out, 0, sizeof *out);
    if (svc_check_id_form(ids, n_ids, "i", "InvalidInstanceID.Malformed", err) < 0) {
        return -1;
    }
    struct svc_sql q;
    svc_sql_init(&q, arena);
    nb_buf_printf(
        &q.sql, "SELECT " INSTANCE_COLUMNS " FROM instances i WHERE i.tenant_id = %s AND " VISIBLE,
        svc_sql_param(&q, who->tenant_id));
    if (n_ids) {
        nb_buf_printf(&q.sql, " AND i.id = ANY(%s)", svc_sql_array(&q, ids, n_ids));
    }
    for (size_t f = 0; f < n_filters; f++) {
        if (add_filter(&q, &filters[f], err) < 0) {
            nb_buf_free(&q.sql);
            return -1;
        }
    }
    if (page->next_token) {
        char rid[NB_ID_MAX], iid[NB_ID_MAX];
        if (sscanf(page->next_token, "%20[^.].%20s", rid, iid) != 2 || !nb_id_valid("r", rid) ||
            !nb_id_valid("i", iid)) {
            nb_buf_free(&q.sql);
            nb_error_set(err, NB_ERR_INVALID, "Invalid NextToken: '%s'", page->next_token);
            nb_error_reason(err, "InvalidParameterValue");
            return -1;
        }
        const char *p1 = svc_sql_param(&q, nb_arena_strdup(arena, rid));
        const char *p2 = svc_sql_param(&q, nb_arena_strdup(arena, iid));
        nb_buf_printf(&q.sql, " AND (i.reservation_id, i.id) > (%s, %s)", p1, p2);
    }
    nb_buf_puts(&q.sql, " ORDER BY i.reservation_id, i.id");
    if (page->max_results > 0) {
        nb_buf_printf(&q.sql, " LIMIT %d", page->max_results + 1);
    }
    PGresult *res = svc_sql_run(gw, &q, err);
    if (!res) {
        return -1;
    }
    if (rows_to_list(res, page->max_results, arena, out)) {
        const struct gw_instance *last = &out->items[out->n - 1];
        out->next_token = nb_arena_printf(arena, "%s.%s", last->reservation_id, last->id);
    } /* rows_to_list() keeps 'res' until the request ends */

    if (n_ids && !page->next_token) {
        return svc_check_all_found(ids, n_ids, out->items, sizeof *out->items,
                                   offsetof(struct gw_instance, id), out->n, "instance ID",
                                   "InvalidInstanceID.NotFound", arena, err);
    }
    return 0;
}

/* --- state changes --------------------------------------------------------------------------- */

static const char *const op_verbs[] = {"terminated", "stopped", "started", "rebooted"};

/* What 'op' does to an instance in state 'from': the state it goes to, and the operation queued
 * for the scheduler (NULL: none). Returns false if 'op' is not allowed in 'from'. 'placed' says
 * whether the instance holds a host (an unplaced or failed instance has nothing to shut down). */
static bool next_state(enum gw_instance_op op, const char *from, bool placed, const char **to,
                       const char **queue)
{
    *to = from;
    *queue = NULL;
    bool is_running = !strcmp(from, "running"), is_pending = !strcmp(from, "pending");
    bool is_stopped = !strcmp(from, "stopped");
    switch (op) {
    case GW_OP_TERMINATE:
        if (!strcmp(from, "terminated") || !strcmp(from, "shutting-down")) {
            return true;
        }
        if (!placed || !strcmp(from, "error")) {
            *to = "terminated";
            return true;
        }
        *to = "shutting-down";
        *queue = "terminate";
        return true;
    case GW_OP_STOP:
        if (is_running || (is_pending && placed)) {
            *to = "stopping";
            *queue = "stop";
            return true;
        }
        return !strcmp(from, "stopping") || is_stopped;
    case GW_OP_START:
        if (is_stopped) {
            /* Evacuated from a failed host, it has no host and no disk: placed and spawned anew
             * from its image. */
            *to = "pending";
            *queue = placed ? "start" : "spawn";
            return true;
        }
        return is_pending || is_running;
    case GW_OP_REBOOT:
        if (is_running) {
            *queue = "reboot";
            return true;
        }
        return false;
    }
    return false;
}

int gw_instances_change(struct gw_ctx *gw, const struct gw_principal *who, enum gw_instance_op op,
                        const char *const *ids, size_t n_ids, struct nb_arena *arena,
                        struct gw_state_change **changes, struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0 ||
        svc_check_id_form(ids, n_ids, "i", "InvalidInstanceID.Malformed", err) < 0) {
        return -1;
    }
    struct svc_sql q;
    svc_sql_init(&q, arena);
    const char *p_tenant = svc_sql_param(&q, who->tenant_id);
    const char *p_ids = svc_sql_array(&q, ids, n_ids);
    nb_buf_printf(&q.sql,
                  "SELECT i.id, i.state, i.host_id IS NOT NULL FROM instances i "
                  "WHERE i.tenant_id = %s AND i.id = ANY(%s) AND " VISIBLE " ORDER BY i.id "
                  "FOR UPDATE",
                  p_tenant, p_ids);
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        nb_buf_free(&q.sql);
        return -1;
    }
    int rc = -1;
    PGresult *res = NULL;
    if (nb_pg_begin(conn, err) < 0 || !(res = nb_pg_exec(conn, q.sql.data, q.n, q.params, err))) {
        goto done;
    }
    struct gw_state_change *ch = nb_arena_zalloc(arena, sizeof *ch * (n_ids ? n_ids : 1));
    bool *placed = nb_arena_zalloc(arena, sizeof *placed * (n_ids ? n_ids : 1));
    for (size_t k = 0; k < n_ids; k++) {
        ch[k].id = ids[k];
    }
    for (int r = 0; r < PQntuples(res); r++) {
        for (size_t k = 0; k < n_ids; k++) {
            if (!strcmp(ids[k], PQgetvalue(res, r, 0))) {
                ch[k].previous_state = nb_arena_strdup(arena, PQgetvalue(res, r, 1));
                placed[k] = !strcmp(PQgetvalue(res, r, 2), "t");
            }
        }
    }
    PQclear(res);
    struct nb_buf missing = NB_BUF_INIT;
    for (size_t k = 0; k < n_ids; k++) {
        if (!ch[k].previous_state) {
            nb_buf_printf(&missing, "%s%s", missing.len ? ", " : "", ids[k]);
        }
    }
    if (missing.len) {
        nb_error_set(err, NB_ERR_NOT_FOUND, "The instance IDs '%s' do not exist", missing.data);
        nb_error_reason(err, "InvalidInstanceID.NotFound");
        nb_buf_free(&missing);
        goto done;
    }
    bool queued = false;
    for (size_t k = 0; k < n_ids; k++) {
        const char *queue;
        if (!next_state(op, ch[k].previous_state, placed[k], &ch[k].current_state, &queue)) {
            nb_error_set(err, NB_ERR_CONFLICT,
                         "The instance '%s' is not in a state from which it can be %s", ch[k].id,
                         op_verbs[op]);
            nb_error_reason(err, "IncorrectInstanceState");
            goto done;
        }
        ch[k].previous_code = gw_instance_state_code(ch[k].previous_state);
        ch[k].current_code = gw_instance_state_code(ch[k].current_state);
        if (!queue && !strcmp(ch[k].current_state, ch[k].previous_state)) {
            continue;
        }
        /* A queued operation replaces any earlier one (a terminate overrides a spawn still in
         * flight): the new op_seq tells the scheduler's driver of the older one not to clear it.
         * An instance terminated here (never placed, or failed) holds no claim. */
        const char *p[] = {ch[k].id, ch[k].current_state, queue};
        PGresult *u = nb_pg_exec(conn,
                                 "UPDATE instances SET state = $2, updated_at = now(), "
                                 "pending_op = $3, op_seq = op_seq + 1, op_lease_until = NULL, "
                                 "terminated_at = CASE WHEN $2 = 'terminated' THEN now() END "
                                 "WHERE id = $1",
                                 3, p, err);
        if (!u) {
            goto done;
        }
        PQclear(u);
        queued = queued || queue;
    }
    if ((queued && svc_notify_scheduler(conn, err) < 0) || nb_pg_commit(conn, err) < 0) {
        goto done;
    }
    *changes = ch;
    rc = 0;

done:
    nb_pg_release(conn);
    nb_buf_free(&q.sql);
    return rc;
}
