/* Tenant networks service (see svc_network.h): the database half. */
#include "svc_network.h"

#include "auth.h"
#include "gateway.h"
#include "svc_sql.h"

#include "nubo/arena.h"
#include "nubo/buf.h"
#include "nubo/error.h"
#include "nubo/id.h"
#include "nubo/pg.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NAME_MAX_LEN  255
#define MIN_PREFIX    16
#define MAX_PREFIX    28
#define RESERVED_LOW  4 /* the network address and the next three */
#define MAC_ATTEMPTS  8
#define SEGMENT_LOCK  "7007" /* pg_advisory_xact_lock key of CreateVpc's segment choice */
#define DEFAULT_GROUP "default"

/* Sets 'err' to 'code' with EC2 error code 'reason' and a formatted message; returns -1. */
static int fail(struct nb_error *err, enum nb_errcode code, const char *reason, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));

static int fail(struct nb_error *err, enum nb_errcode code, const char *reason, const char *fmt,
                ...)
{
    char msg[NB_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    nb_error_set(err, code, "%s", msg);
    nb_error_reason(err, reason);
    return -1;
}

/* --- addresses --------------------------------------------------------------------------- */

/* Reads a decimal number of at most 'max' from '*p', advancing it. Returns 0, or -1. */
static int read_number(const char **p, long max, long *out)
{
    const char *s = *p;
    if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9')) {
        return -1;
    }
    long v = 0;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s++ - '0');
        if (v > max) {
            return -1;
        }
    }
    *p = s;
    *out = v;
    return 0;
}

static int read_ipv4(const char **p, uint32_t *addr)
{
    uint32_t a = 0;
    for (int k = 0; k < 4; k++) {
        long octet;
        if ((k && *(*p)++ != '.') || read_number(p, 255, &octet) < 0) {
            return -1;
        }
        a = a << 8 | (uint32_t)octet;
    }
    *addr = a;
    return 0;
}

int gw_ipv4_parse(const char *text, uint32_t *addr)
{
    const char *p = text;
    return text && read_ipv4(&p, addr) == 0 && *p == '\0' ? 0 : -1;
}

int gw_cidr_parse(const char *text, uint32_t *addr, int *len)
{
    const char *p = text;
    uint32_t a;
    long l;
    if (!text || read_ipv4(&p, &a) < 0 || *p++ != '/' || read_number(&p, 32, &l) < 0 || *p) {
        return -1;
    }
    uint32_t host_mask = l == 32 ? 0 : 0xffffffffu >> l;
    if (a & host_mask) {
        return -1;
    }
    *addr = a;
    *len = (int)l;
    return 0;
}

/* Checks 'cidr' for CreateVpc/CreateSubnet: a CIDR block of /16 to /28; 'range_reason' for one
 * of another size. */
static int check_block(const char *cidr, const char *range_reason, struct nb_error *err)
{
    uint32_t a;
    int len;
    if (!cidr) {
        return fail(err, NB_ERR_MISSING, "MissingParameter",
                    "The request must contain the parameter CidrBlock");
    }
    if (gw_cidr_parse(cidr, &a, &len) < 0) {
        return fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                    "Value (%.64s) for parameter cidrBlock is invalid. This is not a valid CIDR "
                    "block.",
                    cidr);
    }
    if (len < MIN_PREFIX || len > MAX_PREFIX) {
        return fail(err, NB_ERR_INVALID, range_reason,
                    "The CIDR '%s' is invalid: the prefix length must be from /%d to /%d", cidr,
                    MIN_PREFIX, MAX_PREFIX);
    }
    return 0;
}

static int check_printable(const char *what, const char *s, bool may_be_empty, struct nb_error *err)
{
    size_t len = s ? strlen(s) : 0;
    bool ok = (may_be_empty || len >= 1) && len <= NAME_MAX_LEN;
    for (size_t i = 0; i < len && ok; i++) {
        ok = (unsigned char)s[i] >= 0x20 && s[i] != 0x7f;
    }
    if (!ok) {
        return fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                    "Value for parameter %s is invalid: it has %s1 to %d characters, no control "
                    "characters",
                    what, may_be_empty ? "0 or " : "", NAME_MAX_LEN);
    }
    return 0;
}

/* --- shared plumbing --------------------------------------------------------------------- */

/* Runs one statement in the caller's transaction and throws the result away. */
static int exec_void(struct nb_pg_conn *conn, const char *sql, int n, const char *const *p,
                     struct nb_error *err)
{
    PGresult *res = nb_pg_exec(conn, sql, n, p, err);
    if (!res) {
        return -1;
    }
    PQclear(res);
    return 0;
}

/* Runs a "SELECT count(*) ..." in the caller's transaction into '*count'. */
static int exec_count(struct nb_pg_conn *conn, const char *sql, int n, const char *const *p,
                      long long *count, struct nb_error *err)
{
    PGresult *res = nb_pg_exec(conn, sql, n, p, err);
    if (!res) {
        return -1;
    }
    *count = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

static int put_tags(struct nb_pg_conn *conn, const char *tenant_id, const char *id,
                    const char *type, const struct gw_tag *tags, size_t n_tags,
                    struct nb_error *err)
{
    for (size_t t = 0; t < n_tags; t++) {
        if (svc_tag_put(conn, tenant_id, id, type, &tags[t], err) < 0) {
            return -1;
        }
    }
    return 0;
}

static int new_id(const char *prefix, char id[NB_ID_MAX], struct nb_error *err)
{
    if (nb_id_new(prefix, id, NB_ID_MAX) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not make a %s id", prefix);
        return -1;
    }
    return 0;
}

/* Adds the filters of a describe query: those named in 'map' compare the SQL expression next to
 * them, tag filters go through svc_sql_tag_filter() on 'id_column'. */
static int add_filters(struct svc_sql *q, const char *const (*map)[2], size_t n_map,
                       const char *id_column, const struct gw_filter *filters, size_t n_filters,
                       struct nb_error *err)
{
    for (size_t f = 0; f < n_filters; f++) {
        size_t k = 0;
        while (k < n_map && strcmp(filters[f].name, map[k][0])) {
            k++;
        }
        if (k < n_map) {
            nb_buf_printf(&q->sql, " AND %s = ANY(%s)", map[k][1],
                          svc_sql_array(q, filters[f].values, filters[f].n_values));
        } else if (svc_sql_tag_filter(q, &filters[f], id_column, err) < 0) {
            return -1;
        }
    }
    return 0;
}

#define TAGS_OF(col)                                                                               \
    "COALESCE((SELECT json_agg(json_build_array(t.key, t.value) ORDER BY t.key) FROM tags t "      \
    "WHERE t.tenant_id = $1 AND t.resource_id = " col "), '[]')"

static struct gw_tag *copy_tags(struct nb_arena *arena, const struct gw_tag *tags, size_t n)
{
    struct gw_tag *copy = nb_arena_zalloc(arena, sizeof *copy * (n ? n : 1));
    for (size_t t = 0; t < n; t++) {
        copy[t].key = nb_arena_strdup(arena, tags[t].key);
        copy[t].value = nb_arena_strdup(arena, tags[t].value ? tags[t].value : "");
    }
    return copy;
}

/* Takes a connection and opens a transaction. Returns it, or NULL with 'err'. */
static struct nb_pg_conn *begin(struct gw_ctx *gw, struct nb_error *err)
{
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (conn && nb_pg_begin(conn, err) < 0) {
        nb_pg_release(conn);
        return NULL;
    }
    return conn;
}

/* Locks the tenant's row 'id' of 'table' ("vpcs", ...) FOR 'mode' ("UPDATE", "SHARE"). Returns 0,
 * or -1 with 'err' ('not_found' when there is none). */
static int lock_row(struct nb_pg_conn *conn, const char *table, const char *mode,
                    const char *tenant_id, const char *id, const char *what, const char *not_found,
                    struct nb_error *err)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT 1 FROM %s WHERE id = $1 AND tenant_id = $2 FOR %s", table,
             mode);
    const char *p[] = {id, tenant_id};
    PGresult *res = nb_pg_exec(conn, sql, 2, p, err);
    if (!res) {
        return -1;
    }
    int found = PQntuples(res);
    PQclear(res);
    if (!found) {
        return fail(err, NB_ERR_NOT_FOUND, not_found, "The %s '%.64s' does not exist", what, id);
    }
    return 0;
}

/* --- VPCs -------------------------------------------------------------------------------- */

/* Makes VPC 'vpc_id''s default group: ingress from its own members, egress anywhere. */
static int insert_default_group(struct nb_pg_conn *conn, const char *tenant_id, const char *vpc_id,
                                struct nb_error *err)
{
    char sg[NB_ID_MAX], r1[NB_ID_MAX], r2[NB_ID_MAX];
    if (new_id("sg", sg, err) < 0 || new_id("sgr", r1, err) < 0 || new_id("sgr", r2, err) < 0) {
        return -1;
    }
    const char *p[] = {sg, tenant_id, vpc_id, r1, r2};
    return exec_void(conn,
                     "WITH g AS (INSERT INTO security_groups (id, tenant_id, vpc_id, name, "
                     "description) VALUES ($1, $2, $3, 'default', 'default VPC security group') "
                     "RETURNING id) "
                     "INSERT INTO security_group_rules (id, group_id, direction, protocol, cidr, "
                     "ref_group_id) SELECT $4, id, 'ingress', '-1', NULL::cidr, id FROM g "
                     "UNION ALL SELECT $5, id, 'egress', '-1', '0.0.0.0/0'::cidr, NULL FROM g",
                     5, p, err);
}

int gw_vpc_create(struct gw_ctx *gw, const struct gw_principal *who, const char *cidr,
                  const struct gw_tag *tags, size_t n_tags, struct nb_arena *arena,
                  struct gw_vpc *out, struct nb_error *err)
{
    char id[NB_ID_MAX];
    if (gw_require_writer(who, err) < 0 || check_block(cidr, "InvalidVpc.Range", err) < 0 ||
        new_id("vpc", id, err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = begin(gw, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    /* The lowest free segment, chosen under a lock that concurrent creates queue on. */
    const char *p[] = {id, who->tenant_id, cidr};
    PGresult *res = NULL;
    if (exec_void(conn, "SELECT pg_advisory_xact_lock(" SEGMENT_LOCK ")", 0, NULL, err) < 0 ||
        !(res = nb_pg_exec(conn,
                           "INSERT INTO vpcs (id, tenant_id, cidr_block, segment) "
                           "SELECT $1, $2, $3::cidr, s FROM generate_series(100, 4000) s "
                           "WHERE NOT EXISTS (SELECT 1 FROM vpcs v WHERE v.segment = s) "
                           "ORDER BY s LIMIT 1 RETURNING segment",
                           3, p, err))) {
        goto done;
    }
    if (PQntuples(res) != 1) {
        fail(err, NB_ERR_LIMIT, "VpcLimitExceeded", "The maximum number of VPCs has been reached.");
        goto done;
    }
    int segment = atoi(PQgetvalue(res, 0, 0));
    if (insert_default_group(conn, who->tenant_id, id, err) < 0 ||
        put_tags(conn, who->tenant_id, id, "vpc", tags, n_tags, err) < 0 ||
        nb_pg_commit(conn, err) < 0) {
        goto done;
    }
    *out = (struct gw_vpc){
        .id = nb_arena_strdup(arena, id),
        .owner_id = nb_arena_strdup(arena, who->tenant_id),
        .cidr_block = nb_arena_strdup(arena, cidr),
        .state = "available",
        .segment = segment,
        .tags = copy_tags(arena, tags, n_tags),
        .n_tags = n_tags,
    };
    rc = 0;

done:
    PQclear(res);
    nb_pg_release(conn); /* rolls back an open transaction */
    return rc;
}

int gw_vpc_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                  struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = begin(gw, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    long long subnets, groups;
    const char *p[] = {id, who->tenant_id};
    /* The row lock first (CreateSubnet's and CreateSecurityGroup's foreign key checks wait for
     * it), then the counts in statements of their own, which see what went in just before. */
    if (lock_row(conn, "vpcs", "UPDATE", who->tenant_id, id, "vpc ID", "InvalidVpcID.NotFound",
                 err) < 0 ||
        exec_count(conn, "SELECT count(*) FROM subnets WHERE vpc_id = $1", 1, p, &subnets, err) <
            0 ||
        exec_count(conn,
                   "SELECT count(*) FROM security_groups WHERE vpc_id = $1 AND name <> "
                   "'" DEFAULT_GROUP "'",
                   1, p, &groups, err) < 0) {
        goto done;
    }
    if (subnets || groups) {
        fail(err, NB_ERR_CONFLICT, "DependencyViolation",
             "The vpc '%s' has dependencies and cannot be deleted (%lld subnet(s), %lld security "
             "group(s) besides the default one).",
             id, subnets, groups);
        goto done;
    }
    if (exec_void(conn,
                  "WITH g AS (SELECT id FROM security_groups WHERE vpc_id = $1), "
                  "r AS (DELETE FROM security_group_rules WHERE group_id IN (SELECT id FROM g) "
                  "RETURNING 1) "
                  "DELETE FROM tags WHERE tenant_id = $2 AND (resource_id = $1 "
                  "OR resource_id IN (SELECT id FROM g))",
                  2, p, err) < 0 ||
        exec_void(conn, "DELETE FROM security_groups WHERE vpc_id = $1", 1, p, err) < 0 ||
        exec_void(conn, "DELETE FROM vpcs WHERE id = $1", 1, p, err) < 0 ||
        nb_pg_commit(conn, err) < 0) {
        goto done;
    }
    rc = 0;

done:
    nb_pg_release(conn);
    return rc;
}

int gw_vpcs_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *const *ids,
                     size_t n_ids, const struct gw_filter *filters, size_t n_filters,
                     struct nb_arena *arena, struct gw_vpc **out, size_t *n, struct nb_error *err)
{
    static const char *const map[][2] = {
        {"vpc-id", "v.id"},
        {"cidr", "v.cidr_block::text"},
        {"cidr-block", "v.cidr_block::text"},
        {"cidr-block-association.cidr-block", "v.cidr_block::text"},
        {"state", "v.state"},
        {"owner-id", "v.tenant_id"},
        {"is-default", "'false'"},
    };
    if (svc_check_id_form(ids, n_ids, "vpc", "InvalidVpcID.Malformed", err) < 0) {
        return -1;
    }
    struct svc_sql q;
    svc_sql_init(&q, arena);
    nb_buf_printf(&q.sql,
                  "SELECT v.id, v.tenant_id, v.cidr_block::text, v.state, v.segment, " TAGS_OF(
                      "v.id") " FROM vpcs v WHERE v.tenant_id = %s",
                  svc_sql_param(&q, who->tenant_id));
    if (n_ids) {
        nb_buf_printf(&q.sql, " AND v.id = ANY(%s)", svc_sql_array(&q, ids, n_ids));
    }
    if (add_filters(&q, map, sizeof map / sizeof map[0], "v.id", filters, n_filters, err) < 0) {
        nb_buf_free(&q.sql);
        return -1;
    }
    nb_buf_puts(&q.sql, " ORDER BY v.id");
    PGresult *res = svc_sql_run(gw, &q, err);
    if (!res) {
        return -1;
    }
    *n = (size_t)PQntuples(res);
    *out = nb_arena_zalloc(arena, sizeof **out * (*n ? *n : 1));
    for (int r = 0; r < (int)*n; r++) {
        struct gw_vpc *v = &(*out)[r];
        v->id = svc_col(res, r, 0, arena);
        v->owner_id = svc_col(res, r, 1, arena);
        v->cidr_block = svc_col(res, r, 2, arena);
        v->state = svc_col(res, r, 3, arena);
        v->segment = atoi(PQgetvalue(res, r, 4));
        svc_parse_tags(PQgetvalue(res, r, 5), arena, &v->tags, &v->n_tags);
    }
    PQclear(res);
    return svc_check_all_found(ids, n_ids, *out, sizeof **out, offsetof(struct gw_vpc, id), *n,
                               "vpc ID", "InvalidVpcID.NotFound", arena, err);
}

/* --- subnets ----------------------------------------------------------------------------- */

#define SUBNET_COLUMNS                                                                             \
    "s.id, s.tenant_id, s.vpc_id, s.zone, s.cidr_block::text, s.state, "                           \
    "(2 ^ (32 - masklen(s.cidr_block)))::bigint - 5 - (SELECT count(*) FROM network_interfaces "   \
    "n WHERE n.subnet_id = s.id), " TAGS_OF("s.id")

static void row_to_subnet(PGresult *res, int r, struct nb_arena *arena, struct gw_subnet *s)
{
    s->id = svc_col(res, r, 0, arena);
    s->owner_id = svc_col(res, r, 1, arena);
    s->vpc_id = svc_col(res, r, 2, arena);
    s->zone = svc_col(res, r, 3, arena);
    s->cidr_block = svc_col(res, r, 4, arena);
    s->state = svc_col(res, r, 5, arena);
    s->available_ips = atoll(PQgetvalue(res, r, 6));
    svc_parse_tags(PQgetvalue(res, r, 7), arena, &s->tags, &s->n_tags);
}

int gw_subnet_create(struct gw_ctx *gw, const struct gw_principal *who, const char *vpc_id,
                     const char *cidr, const char *zone, const struct gw_tag *tags, size_t n_tags,
                     struct nb_arena *arena, struct gw_subnet *out, struct nb_error *err)
{
    char id[NB_ID_MAX];
    if (gw_require_writer(who, err) < 0 || check_block(cidr, "InvalidSubnet.Range", err) < 0 ||
        new_id("subnet", id, err) < 0) {
        return -1;
    }
    if (!vpc_id) {
        return fail(err, NB_ERR_MISSING, "MissingParameter",
                    "The request must contain the parameter VpcId");
    }
    struct nb_pg_conn *conn = begin(gw, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    const char *p[] = {vpc_id, who->tenant_id, cidr, zone, id};
    PGresult *res = NULL;
    if (lock_row(conn, "vpcs", "SHARE", who->tenant_id, vpc_id, "vpc ID", "InvalidVpcID.NotFound",
                 err) < 0 ||
        !(res = nb_pg_exec(conn,
                           "SELECT $3::cidr <<= v.cidr_block, (SELECT z.name FROM zones z "
                           "WHERE z.state = 'available' AND ($4::text IS NULL OR z.name = $4) "
                           "ORDER BY z.name LIMIT 1), (SELECT s.cidr_block::text FROM subnets s "
                           "WHERE s.vpc_id = v.id AND s.cidr_block && $3::cidr LIMIT 1), "
                           "v.cidr_block::text FROM vpcs v WHERE v.id = $1 AND v.tenant_id = $2",
                           4, p, err))) {
        goto done;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "t")) {
        fail(err, NB_ERR_INVALID, "InvalidSubnet.Range",
             "The CIDR '%s' is invalid: it is not inside the VPC's CIDR %s.", cidr,
             PQgetvalue(res, 0, 3));
        goto done;
    }
    if (PQgetisnull(res, 0, 1)) {
        fail(err, NB_ERR_INVALID, "InvalidParameterValue",
             "Value (%.64s) for parameter availabilityZone is invalid. Subnets can currently "
             "only be created in the available zones of this region.",
             zone ? zone : "(none available)");
        goto done;
    }
    if (!PQgetisnull(res, 0, 2)) {
        fail(err, NB_ERR_CONFLICT, "InvalidSubnet.Conflict",
             "The CIDR '%s' conflicts with another subnet (%s)", cidr, PQgetvalue(res, 0, 2));
        goto done;
    }
    const char *chosen_zone = svc_col(res, 0, 1, arena);
    PQclear(res);
    res = NULL;
    const char *q[] = {id, who->tenant_id, vpc_id, chosen_zone, cidr};
    if (exec_void(conn,
                  "INSERT INTO subnets (id, tenant_id, vpc_id, zone, cidr_block) "
                  "VALUES ($1, $2, $3, $4, $5::cidr)",
                  5, q, err) < 0) {
        if (err && err->code == NB_ERR_CONFLICT) { /* a concurrent create won the range */
            fail(err, NB_ERR_CONFLICT, "InvalidSubnet.Conflict",
                 "The CIDR '%s' conflicts with another subnet", cidr);
        }
        goto done;
    }
    if (put_tags(conn, who->tenant_id, id, "subnet", tags, n_tags, err) < 0 ||
        nb_pg_commit(conn, err) < 0) {
        goto done;
    }
    uint32_t a;
    int len;
    gw_cidr_parse(cidr, &a, &len);
    *out = (struct gw_subnet){
        .id = nb_arena_strdup(arena, id),
        .owner_id = nb_arena_strdup(arena, who->tenant_id),
        .vpc_id = nb_arena_strdup(arena, vpc_id),
        .zone = chosen_zone,
        .cidr_block = nb_arena_strdup(arena, cidr),
        .state = "available",
        .available_ips = (1LL << (32 - len)) - 5,
        .tags = copy_tags(arena, tags, n_tags),
        .n_tags = n_tags,
    };
    rc = 0;

done:
    PQclear(res);
    nb_pg_release(conn);
    return rc;
}

int gw_subnet_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                     struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = begin(gw, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    long long used;
    const char *p[] = {id, who->tenant_id};
    if (lock_row(conn, "subnets", "UPDATE", who->tenant_id, id, "subnet ID",
                 "InvalidSubnetID.NotFound", err) < 0 ||
        exec_count(conn, "SELECT count(*) FROM network_interfaces WHERE subnet_id = $1", 1, p,
                   &used, err) < 0) {
        goto done;
    }
    if (used) {
        fail(err, NB_ERR_CONFLICT, "DependencyViolation",
             "The subnet '%s' has dependencies and cannot be deleted (%lld network "
             "interface(s)).",
             id, used);
        goto done;
    }
    if (exec_void(conn, "DELETE FROM tags WHERE tenant_id = $2 AND resource_id = $1", 2, p, err) <
            0 ||
        exec_void(conn, "DELETE FROM subnets WHERE id = $1", 1, p, err) < 0 ||
        nb_pg_commit(conn, err) < 0) {
        goto done;
    }
    rc = 0;

done:
    nb_pg_release(conn);
    return rc;
}

int gw_subnets_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *const *ids,
                        size_t n_ids, const struct gw_filter *filters, size_t n_filters,
                        struct nb_arena *arena, struct gw_subnet **out, size_t *n,
                        struct nb_error *err)
{
    static const char *const map[][2] = {
        {"subnet-id", "s.id"},
        {"vpc-id", "s.vpc_id"},
        {"cidr", "s.cidr_block::text"},
        {"cidr-block", "s.cidr_block::text"},
        {"cidrBlock", "s.cidr_block::text"},
        {"availability-zone", "s.zone"},
        {"availabilityZone", "s.zone"},
        {"state", "s.state"},
        {"owner-id", "s.tenant_id"},
        {"default-for-az", "'false'"},
    };
    if (svc_check_id_form(ids, n_ids, "subnet", "InvalidSubnetID.Malformed", err) < 0) {
        return -1;
    }
    struct svc_sql q;
    svc_sql_init(&q, arena);
    nb_buf_printf(&q.sql, "SELECT " SUBNET_COLUMNS " FROM subnets s WHERE s.tenant_id = %s",
                  svc_sql_param(&q, who->tenant_id));
    if (n_ids) {
        nb_buf_printf(&q.sql, " AND s.id = ANY(%s)", svc_sql_array(&q, ids, n_ids));
    }
    if (add_filters(&q, map, sizeof map / sizeof map[0], "s.id", filters, n_filters, err) < 0) {
        nb_buf_free(&q.sql);
        return -1;
    }
    nb_buf_puts(&q.sql, " ORDER BY s.id");
    PGresult *res = svc_sql_run(gw, &q, err);
    if (!res) {
        return -1;
    }
    *n = (size_t)PQntuples(res);
    *out = nb_arena_zalloc(arena, sizeof **out * (*n ? *n : 1));
    for (int r = 0; r < (int)*n; r++) {
        row_to_subnet(res, r, arena, &(*out)[r]);
    }
    PQclear(res);
    return svc_check_all_found(ids, n_ids, *out, sizeof **out, offsetof(struct gw_subnet, id), *n,
                               "subnet ID", "InvalidSubnetID.NotFound", arena, err);
}

/* --- security groups --------------------------------------------------------------------- */

int gw_sg_create(struct gw_ctx *gw, const struct gw_principal *who, const char *name,
                 const char *description, const char *vpc_id, const struct gw_tag *tags,
                 size_t n_tags, struct nb_arena *arena, struct gw_security_group *out,
                 struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0 || check_printable("GroupName", name, false, err) < 0 ||
        check_printable("GroupDescription", description, false, err) < 0) {
        return -1;
    }
    if (!strcmp(name, DEFAULT_GROUP) || !strncmp(name, "sg-", 3)) {
        return fail(err, NB_ERR_INVALID, "InvalidGroup.Reserved",
                    "The security group name '%s' is reserved.", name);
    }
    if (!vpc_id) {
        return fail(err, NB_ERR_MISSING, "MissingParameter",
                    "The request must contain the parameter VpcId (nubo has no default VPC)");
    }
    char id[NB_ID_MAX], rule[NB_ID_MAX];
    if (new_id("sg", id, err) < 0 || new_id("sgr", rule, err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = begin(gw, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    const char *p[] = {id, who->tenant_id, vpc_id, name, description};
    if (lock_row(conn, "vpcs", "SHARE", who->tenant_id, vpc_id, "vpc ID", "InvalidVpcID.NotFound",
                 err) < 0) {
        goto done;
    }
    if (exec_void(conn,
                  "INSERT INTO security_groups (id, tenant_id, vpc_id, name, description) "
                  "VALUES ($1, $2, $3, $4, $5)",
                  5, p, err) < 0) {
        if (err && err->code == NB_ERR_CONFLICT) {
            fail(err, NB_ERR_CONFLICT, "InvalidGroup.Duplicate",
                 "The security group '%s' already exists for VPC '%s'", name, vpc_id);
        }
        goto done;
    }
    const char *pr[] = {rule, id};
    if (exec_void(conn,
                  "INSERT INTO security_group_rules (id, group_id, direction, protocol, cidr) "
                  "VALUES ($1, $2, 'egress', '-1', '0.0.0.0/0')",
                  2, pr, err) < 0 ||
        put_tags(conn, who->tenant_id, id, "security-group", tags, n_tags, err) < 0 ||
        nb_pg_commit(conn, err) < 0) {
        goto done;
    }
    struct gw_sg_rule *egress = nb_arena_zalloc(arena, sizeof *egress);
    *egress = (struct gw_sg_rule){.id = nb_arena_strdup(arena, rule),
                                  .protocol = "-1",
                                  .from_port = -1,
                                  .to_port = -1,
                                  .cidr = "0.0.0.0/0"};
    *out = (struct gw_security_group){
        .id = nb_arena_strdup(arena, id),
        .owner_id = nb_arena_strdup(arena, who->tenant_id),
        .vpc_id = nb_arena_strdup(arena, vpc_id),
        .name = nb_arena_strdup(arena, name),
        .description = nb_arena_strdup(arena, description),
        .egress = egress,
        .n_egress = 1,
        .tags = copy_tags(arena, tags, n_tags),
        .n_tags = n_tags,
    };
    rc = 0;

done:
    nb_pg_release(conn);
    return rc;
}

int gw_sg_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                 struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0) {
        return -1;
    }
    if (!id) {
        return fail(err, NB_ERR_MISSING, "MissingParameter",
                    "The request must contain the parameter GroupId");
    }
    struct nb_pg_conn *conn = begin(gw, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    const char *p[] = {id, who->tenant_id};
    PGresult *res = NULL;
    long long users, refs;
    if (!(res = nb_pg_exec(conn,
                           "SELECT name FROM security_groups WHERE id = $1 AND tenant_id = $2 "
                           "FOR UPDATE",
                           2, p, err))) {
        goto done;
    }
    if (PQntuples(res) == 0) {
        fail(err, NB_ERR_NOT_FOUND, "InvalidGroup.NotFound",
             "The security group '%.64s' does not exist", id);
        goto done;
    }
    if (!strcmp(PQgetvalue(res, 0, 0), DEFAULT_GROUP)) {
        fail(err, NB_ERR_CONFLICT, "CannotDelete",
             "the specified group: \"%s\" name: \"default\" cannot be deleted by a user", id);
        goto done;
    }
    if (exec_count(conn, "SELECT count(*) FROM network_interface_groups WHERE group_id = $1", 1, p,
                   &users, err) < 0 ||
        exec_count(conn,
                   "SELECT count(*) FROM security_group_rules WHERE ref_group_id = $1 "
                   "AND group_id <> $1",
                   1, p, &refs, err) < 0) {
        goto done;
    }
    if (users || refs) {
        fail(err, NB_ERR_CONFLICT, "DependencyViolation",
             "resource %s has a dependent object (%lld network interface(s), %lld rule(s) of "
             "other groups refer to it)",
             id, users, refs);
        goto done;
    }
    if (exec_void(conn,
                  "WITH r AS (DELETE FROM security_group_rules WHERE group_id = $1 RETURNING 1) "
                  "DELETE FROM tags WHERE tenant_id = $2 AND resource_id = $1",
                  2, p, err) < 0 ||
        exec_void(conn, "DELETE FROM security_groups WHERE id = $1", 1, p, err) < 0 ||
        nb_pg_commit(conn, err) < 0) {
        goto done;
    }
    rc = 0;

done:
    PQclear(res);
    nb_pg_release(conn);
    return rc;
}

/* Parses the rules column of gw_sgs_describe()'s query into 'g'. */
static void parse_rules(const char *text, struct nb_arena *arena, struct gw_security_group *g)
{
    json_t *arr = json_loads(text, 0, NULL);
    size_t total = json_is_array(arr) ? json_array_size(arr) : 0;
    struct gw_sg_rule *in = nb_arena_zalloc(arena, sizeof *in * (total ? total : 1));
    struct gw_sg_rule *out = nb_arena_zalloc(arena, sizeof *out * (total ? total : 1));
    size_t n_in = 0, n_out = 0, i;
    json_t *r;
    json_array_foreach(arr, i, r)
    {
        bool egress = !strcmp(json_string_value(json_array_get(r, 1)) ?: "", "egress");
        struct gw_sg_rule *x = egress ? &out[n_out++] : &in[n_in++];
        const char *s;
        x->id = nb_arena_strdup(arena, json_string_value(json_array_get(r, 0)) ?: "");
        x->protocol = nb_arena_strdup(arena, json_string_value(json_array_get(r, 2)) ?: "-1");
        x->from_port = (int)json_integer_value(json_array_get(r, 3));
        x->to_port = (int)json_integer_value(json_array_get(r, 4));
        x->cidr = (s = json_string_value(json_array_get(r, 5))) ? nb_arena_strdup(arena, s) : NULL;
        x->group_id =
            (s = json_string_value(json_array_get(r, 6))) ? nb_arena_strdup(arena, s) : NULL;
        x->group_owner =
            (s = json_string_value(json_array_get(r, 7))) ? nb_arena_strdup(arena, s) : NULL;
        x->description = nb_arena_strdup(arena, json_string_value(json_array_get(r, 8)) ?: "");
    }
    json_decref(arr);
    g->ingress = in;
    g->n_ingress = n_in;
    g->egress = out;
    g->n_egress = n_out;
}

int gw_sgs_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *const *ids,
                    size_t n_ids, const char *const *names, size_t n_names,
                    const struct gw_filter *filters, size_t n_filters, struct nb_arena *arena,
                    struct gw_security_group **out, size_t *n, struct nb_error *err)
{
    static const char *const map[][2] = {
        {"group-id", "g.id"},        {"group-name", "g.name"},
        {"vpc-id", "g.vpc_id"},      {"description", "g.description"},
        {"owner-id", "g.tenant_id"},
    };
    if (svc_check_id_form(ids, n_ids, "sg", "InvalidGroupId.Malformed", err) < 0) {
        return -1;
    }
    struct svc_sql q;
    svc_sql_init(&q, arena);
    nb_buf_printf(&q.sql,
                  "SELECT g.id, g.tenant_id, g.vpc_id, g.name, g.description, "
                  "COALESCE((SELECT json_agg(json_build_array(r.id, r.direction, r.protocol, "
                  "r.from_port, r.to_port, r.cidr::text, r.ref_group_id, rg.tenant_id, "
                  "r.description) ORDER BY r.direction, r.protocol, r.from_port, r.to_port, "
                  "r.ref_group_id NULLS LAST, r.cidr) FROM security_group_rules r "
                  "LEFT JOIN security_groups rg ON rg.id = r.ref_group_id "
                  "WHERE r.group_id = g.id), '[]'), " TAGS_OF(
                      "g.id") " "
                              "FROM security_groups g WHERE g.tenant_id = %s",
                  svc_sql_param(&q, who->tenant_id));
    if (n_ids) {
        nb_buf_printf(&q.sql, " AND g.id = ANY(%s)", svc_sql_array(&q, ids, n_ids));
    }
    if (n_names) {
        nb_buf_printf(&q.sql, " AND g.name = ANY(%s)", svc_sql_array(&q, names, n_names));
    }
    if (add_filters(&q, map, sizeof map / sizeof map[0], "g.id", filters, n_filters, err) < 0) {
        nb_buf_free(&q.sql);
        return -1;
    }
    nb_buf_puts(&q.sql, " ORDER BY g.vpc_id, g.name");
    PGresult *res = svc_sql_run(gw, &q, err);
    if (!res) {
        return -1;
    }
    *n = (size_t)PQntuples(res);
    *out = nb_arena_zalloc(arena, sizeof **out * (*n ? *n : 1));
    for (int r = 0; r < (int)*n; r++) {
        struct gw_security_group *g = &(*out)[r];
        g->id = svc_col(res, r, 0, arena);
        g->owner_id = svc_col(res, r, 1, arena);
        g->vpc_id = svc_col(res, r, 2, arena);
        g->name = svc_col(res, r, 3, arena);
        g->description = svc_col(res, r, 4, arena);
        parse_rules(PQgetvalue(res, r, 5), arena, g);
        svc_parse_tags(PQgetvalue(res, r, 6), arena, &g->tags, &g->n_tags);
    }
    PQclear(res);
    if (svc_check_all_found(ids, n_ids, *out, sizeof **out, offsetof(struct gw_security_group, id),
                            *n, "security group", "InvalidGroup.NotFound", arena, err) < 0 ||
        svc_check_all_found(names, n_names, *out, sizeof **out,
                            offsetof(struct gw_security_group, name), *n, "security group",
                            "InvalidGroup.NotFound", arena, err) < 0) {
        return -1;
    }
    return 0;
}

/* A rule as stored: the protocol's canonical name, ports as the protocol wants them. */
struct norm_rule {
    const char *protocol;
    char from[16], to[16];
    const char *cidr, *group_id, *description;
};

static int normalise_rule(const struct gw_sg_rule *in, struct norm_rule *out, struct nb_error *err)
{
    static const char *const names[][2] = {
        {"-1", "-1"},   {"all", "-1"}, {"tcp", "tcp"},   {"6", "tcp"},
        {"udp", "udp"}, {"17", "udp"}, {"icmp", "icmp"}, {"1", "icmp"},
    };
    memset(out, 0, sizeof *out);
    for (size_t k = 0; in->protocol && k < sizeof names / sizeof names[0]; k++) {
        if (!strcasecmp(in->protocol, names[k][0])) {
            out->protocol = names[k][1];
        }
    }
    if (!out->protocol) {
        return fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                    "Invalid value '%.32s' for IP protocol. Unknown protocol (nubo filters tcp, "
                    "udp, icmp or -1 for all).",
                    in->protocol ? in->protocol : "");
    }
    int from = in->from_port, to = in->to_port;
    if (!strcmp(out->protocol, "-1")) {
        from = to = -1;
    } else if (!strcmp(out->protocol, "icmp")) {
        if (from < -1 || from > 255 || to < -1 || to > 255) {
            return fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                        "Invalid ICMP type or code (%d, %d): use -1 or 0 to 255", from, to);
        }
    } else if (from < 0 || to < from || to > 65535) {
        return fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                    "Invalid value for portRange (%d to %d). Must specify both from and to ports "
                    "with TCP/UDP, 0 to 65535, from not above to.",
                    from, to);
    }
    snprintf(out->from, sizeof out->from, "%d", from);
    snprintf(out->to, sizeof out->to, "%d", to);
    uint32_t a;
    int len;
    if (!in->cidr == !in->group_id) {
        return fail(err, NB_ERR_INVALID, "InvalidPermission.Malformed",
                    "A rule needs either a CIDR range or a security group, not %s",
                    in->cidr ? "both" : "neither");
    }
    if (in->cidr && gw_cidr_parse(in->cidr, &a, &len) < 0) {
        return fail(err, NB_ERR_INVALID, "InvalidParameterValue", "CIDR block %.64s is malformed",
                    in->cidr);
    }
    if (in->group_id && !nb_id_valid("sg", in->group_id)) {
        return fail(err, NB_ERR_INVALID, "InvalidGroupId.Malformed",
                    "Invalid id: \"%.64s\" (expecting \"sg-...\")", in->group_id);
    }
    out->cidr = in->cidr;
    out->group_id = in->group_id;
    out->description = in->description ? in->description : "";
    return 0;
}

static const char *peer_text(const struct norm_rule *r)
{
    return r->cidr ? r->cidr : r->group_id;
}

int gw_sg_rules_change(struct gw_ctx *gw, const struct gw_principal *who, const char *group_id,
                       bool egress, bool add, const struct gw_sg_rule *rules, size_t n,
                       struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0) {
        return -1;
    }
    if (!group_id) {
        return fail(err, NB_ERR_MISSING, "MissingParameter",
                    "The request must contain the parameter GroupId");
    }
    if (!n) {
        return fail(err, NB_ERR_MISSING, "MissingParameter",
                    "The request must contain the parameter IpPermissions");
    }
    struct norm_rule *norm = calloc(n, sizeof *norm);
    if (!norm) {
        abort();
    }
    struct nb_pg_conn *conn = NULL;
    PGresult *res = NULL;
    int rc = -1;
    for (size_t k = 0; k < n; k++) {
        if (normalise_rule(&rules[k], &norm[k], err) < 0) {
            goto done;
        }
    }
    if (!(conn = begin(gw, err))) {
        goto done;
    }
    const char *direction = egress ? "egress" : "ingress";
    const char *pg[] = {group_id, who->tenant_id};
    if (!(res = nb_pg_exec(conn,
                           "SELECT vpc_id FROM security_groups WHERE id = $1 AND tenant_id = $2 "
                           "FOR UPDATE",
                           2, pg, err))) {
        goto done;
    }
    if (PQntuples(res) == 0) {
        fail(err, NB_ERR_NOT_FOUND, "InvalidGroup.NotFound",
             "The security group '%.64s' does not exist", group_id);
        goto done;
    }
    char vpc_id[NB_ID_MAX];
    snprintf(vpc_id, sizeof vpc_id, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    res = NULL;
    for (size_t k = 0; k < n; k++) {
        const struct norm_rule *r = &norm[k];
        if (r->group_id) {
            const char *pr[] = {r->group_id, who->tenant_id, vpc_id};
            long long found;
            if (exec_count(conn,
                           "SELECT count(*) FROM security_groups WHERE id = $1 "
                           "AND tenant_id = $2 AND vpc_id = $3",
                           3, pr, &found, err) < 0) {
                goto done;
            }
            if (!found) {
                fail(err, NB_ERR_NOT_FOUND, "InvalidGroup.NotFound",
                     "The security group '%s' does not exist in VPC '%s'", r->group_id, vpc_id);
                goto done;
            }
        }
        char rule_id[NB_ID_MAX];
        if (new_id("sgr", rule_id, err) < 0) {
            goto done;
        }
        const char *p[] = {group_id, direction,   r->protocol,    r->from, r->to,
                           r->cidr,  r->group_id, r->description, rule_id};
        if (add) {
            if (exec_void(conn,
                          "INSERT INTO security_group_rules (group_id, direction, protocol, "
                          "from_port, to_port, cidr, ref_group_id, description, id) VALUES "
                          "($1, $2, $3, $4::int, $5::int, $6::cidr, $7, $8, $9)",
                          9, p, err) < 0) {
                if (err && err->code == NB_ERR_CONFLICT) {
                    fail(err, NB_ERR_CONFLICT, "InvalidPermission.Duplicate",
                         "the specified rule \"peer: %s, %s, from port: %s, to port: %s, "
                         "ALLOW\" already exists",
                         peer_text(r), r->protocol, r->from, r->to);
                }
                goto done;
            }
            continue;
        }
        if (!(res = nb_pg_exec(conn,
                               "DELETE FROM security_group_rules WHERE group_id = $1 "
                               "AND direction = $2 AND protocol = $3 AND from_port = $4::int "
                               "AND to_port = $5::int AND cidr IS NOT DISTINCT FROM $6::cidr "
                               "AND ref_group_id IS NOT DISTINCT FROM $7 RETURNING id",
                               7, p, err))) {
            goto done;
        }
        int gone = PQntuples(res);
        PQclear(res);
        res = NULL;
        if (!gone) {
            fail(err, NB_ERR_NOT_FOUND, "InvalidPermission.NotFound",
                 "The specified rule does not exist in this security group (peer: %s, %s, from "
                 "port: %s, to port: %s).",
                 peer_text(r), r->protocol, r->from, r->to);
            goto done;
        }
    }
    rc = nb_pg_commit(conn, err);

done:
    PQclear(res);
    nb_pg_release(conn);
    free(norm);
    return rc;
}

/* --- network interfaces of RunInstances -------------------------------------------------- */

int gw_net_launch_prepare(struct nb_pg_conn *conn, const char *tenant_id, const char *subnet_id,
                          const char *private_ip, const char *const *group_ids, size_t n_groups,
                          struct nb_arena *arena, struct gw_net_launch *out, struct nb_error *err)
{
    memset(out, 0, sizeof *out);
    if (!nb_id_valid("subnet", subnet_id)) {
        return fail(err, NB_ERR_INVALID, "InvalidSubnetID.Malformed", "Invalid id: '%.64s'",
                    subnet_id);
    }
    const char *p[] = {subnet_id, tenant_id};
    PGresult *res = nb_pg_exec(conn,
                               "SELECT vpc_id, zone, cidr_block::text FROM subnets "
                               "WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
                               2, p, err);
    if (!res) {
        return -1;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        return fail(err, NB_ERR_NOT_FOUND, "InvalidSubnetID.NotFound",
                    "The subnet ID '%.64s' does not exist", subnet_id);
    }
    out->subnet_id = nb_arena_strdup(arena, subnet_id);
    out->vpc_id = svc_col(res, 0, 0, arena);
    out->zone = svc_col(res, 0, 1, arena);
    const char *cidr = svc_col(res, 0, 2, arena);
    PQclear(res);
    if (private_ip) {
        uint32_t net, ip;
        int len;
        gw_cidr_parse(cidr, &net, &len);
        uint32_t size = (uint32_t)(1ULL << (32 - len));
        if (gw_ipv4_parse(private_ip, &ip) < 0) {
            return fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                        "Invalid value '%.64s' for PrivateIpAddress: not an IPv4 address",
                        private_ip);
        }
        if (ip - net >= size || ip - net < RESERVED_LOW || ip - net == size - 1) {
            return fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                        "Address %s does not fall within the subnet's address range (%s, less "
                        "the first four and the last address, which are reserved)",
                        private_ip, cidr);
        }
        out->private_ip = nb_arena_strdup(arena, private_ip);
    }
    if (n_groups == 0) {
        const char *pv[] = {out->vpc_id};
        res = nb_pg_exec(conn,
                         "SELECT id FROM security_groups WHERE vpc_id = $1 "
                         "AND name = '" DEFAULT_GROUP "' FOR SHARE",
                         1, pv, err);
        if (!res) {
            return -1;
        }
        out->group_ids = nb_arena_zalloc(arena, sizeof *out->group_ids);
        if (PQntuples(res) == 1) {
            out->group_ids[0] = svc_col(res, 0, 0, arena);
            out->n_groups = 1;
        }
        PQclear(res);
        return 0;
    }
    out->group_ids = nb_arena_zalloc(arena, sizeof *out->group_ids * n_groups);
    for (size_t k = 0; k < n_groups; k++) {
        const char *pg[] = {group_ids[k], tenant_id, out->vpc_id};
        res = nb_pg_exec(conn,
                         "SELECT 1 FROM security_groups WHERE id = $1 AND tenant_id = $2 "
                         "AND vpc_id = $3 FOR SHARE",
                         3, pg, err);
        if (!res) {
            return -1;
        }
        int found = PQntuples(res);
        PQclear(res);
        if (!found) {
            return fail(err, NB_ERR_NOT_FOUND, "InvalidGroup.NotFound",
                        "The security group '%.64s' does not exist in VPC '%s'", group_ids[k],
                        out->vpc_id);
        }
        bool seen = false;
        for (size_t j = 0; j < out->n_groups; j++) {
            seen = seen || !strcmp(out->group_ids[j], group_ids[k]);
        }
        if (!seen) {
            out->group_ids[out->n_groups++] = nb_arena_strdup(arena, group_ids[k]);
        }
    }
    return 0;
}

int gw_net_launch_addresses(struct nb_pg_conn *conn, struct gw_net_launch *nl, int want, int min,
                            struct nb_arena *arena, struct nb_error *err)
{
    char want_s[16];
    snprintf(want_s, sizeof want_s, "%d", want);
    const char *p[] = {nl->subnet_id, want_s, nl->private_ip};
    PGresult *res;
    if (nl->private_ip) {
        if (want != 1) {
            return fail(err, NB_ERR_INVALID, "InvalidParameterCombination",
                        "PrivateIpAddress can be used only when launching one instance");
        }
        res = nb_pg_exec(conn,
                         "SELECT $3::text WHERE NOT EXISTS (SELECT 1 FROM network_interfaces "
                         "WHERE subnet_id = $1 AND private_ip = $3::inet) AND $2::int > 0",
                         3, p, err);
    } else {
        /* The lowest free addresses, the reserved ones left out (the subnet is locked). */
        res = nb_pg_exec(conn,
                         "SELECT host(network(s.cidr_block) + o) FROM subnets s, "
                         "generate_series(4, (2 ^ (32 - masklen(s.cidr_block)))::bigint - 2) o "
                         "WHERE s.id = $1 AND NOT EXISTS (SELECT 1 FROM network_interfaces n "
                         "WHERE n.subnet_id = s.id AND n.private_ip = "
                         "host(network(s.cidr_block) + o)::inet) ORDER BY o LIMIT $2::int",
                         2, p, err);
    }
    if (!res) {
        return -1;
    }
    int got = PQntuples(res);
    if (got < min || got == 0) {
        PQclear(res);
        if (nl->private_ip) {
            return fail(err, NB_ERR_CONFLICT, "InvalidIPAddress.InUse", "Address %s is in use.",
                        nl->private_ip);
        }
        return fail(err, NB_ERR_LIMIT, "InsufficientFreeAddressesInSubnet",
                    "There are not enough free addresses in subnet '%s' to satisfy the "
                    "requested number of instances (%d free, %d needed).",
                    nl->subnet_id, got, min);
    }
    nl->ips = nb_arena_zalloc(arena, sizeof *nl->ips * (size_t)got);
    for (int r = 0; r < got; r++) {
        nl->ips[r] = svc_col(res, r, 0, arena);
    }
    nl->n_ips = (size_t)got;
    PQclear(res);
    return got;
}

int gw_net_launch_attach(struct nb_pg_conn *conn, const char *tenant_id,
                         const struct gw_net_launch *nl, size_t k, const char *instance_id,
                         struct nb_error *err)
{
    char eni[NB_ID_MAX];
    if (k >= nl->n_ips || new_id("eni", eni, err) < 0) {
        if (k >= nl->n_ips) {
            nb_error_set(err, NB_ERR_INTERNAL, "no address reserved for instance %zu", k);
        }
        return -1;
    }
    /* A locally administered unicast MAC; a clash with another (1 in 2^40) draws again. */
    for (int attempt = 0; attempt < MAC_ATTEMPTS; attempt++) {
        unsigned char b[5];
        if (nb_random_bytes(b, sizeof b) < 0) {
            nb_error_set(err, NB_ERR_INTERNAL, "could not draw a MAC address");
            return -1;
        }
        char mac[18];
        snprintf(mac, sizeof mac, "02:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4]);
        const char *p[] = {eni, tenant_id, nl->vpc_id, nl->subnet_id, instance_id, mac, nl->ips[k]};
        PGresult *res = nb_pg_exec(conn,
                                   "INSERT INTO network_interfaces (id, tenant_id, vpc_id, "
                                   "subnet_id, instance_id, mac_address, private_ip) VALUES "
                                   "($1, $2, $3, $4, $5, $6::macaddr, $7::inet) "
                                   "ON CONFLICT (mac_address) DO NOTHING RETURNING 1",
                                   7, p, err);
        if (!res) {
            return -1;
        }
        int inserted = PQntuples(res);
        PQclear(res);
        if (!inserted) {
            continue;
        }
        for (size_t g = 0; g < nl->n_groups; g++) {
            const char *pg[] = {eni, nl->group_ids[g]};
            if (exec_void(conn,
                          "INSERT INTO network_interface_groups (interface_id, group_id) "
                          "VALUES ($1, $2)",
                          2, pg, err) < 0) {
                return -1;
            }
        }
        return 0;
    }
    nb_error_set(err, NB_ERR_INTERNAL, "could not find a free MAC address in %d attempts",
                 MAC_ATTEMPTS);
    return -1;
}
