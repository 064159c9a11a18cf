/* The edge of a VPC, service layer (see svc_network_edge.h): the database half. */
#include "svc_network_edge.h"

#include "auth.h"
#include "gateway.h"
#include "svc_edge.h"
#include "svc_network.h"
#include "svc_sql.h"

#include "nubo/arena.h"
#include "nubo/buf.h"
#include "nubo/pg.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Claims 'token' (NULL: none, go on) for 'action' making 'id', the parameters being 'key'.
 * Returns 1 to go on creating, 0 when an earlier request made '*earlier', -1 with 'err'. */
static int claim(struct nb_pg_conn *conn, const struct gw_principal *who, const char *token,
                 const char *action, const struct nb_buf *key, const char *id, char *earlier,
                 struct nb_error *err)
{
    if (!token) {
        return 1;
    }
    return edge_claim_token(conn, who->tenant_id, token, action, key->data ? key->data : "", id,
                            earlier, err);
}

/* --- internet gateways -------------------------------------------------------------------- */

int gw_igw_create(struct gw_ctx *gw, const struct gw_principal *who, const char *client_token,
                  const struct gw_tag *tags, size_t n_tags, struct nb_arena *arena,
                  struct gw_internet_gateway *out, struct nb_error *err)
{
    char id[NB_ID_MAX], earlier[NB_ID_MAX];
    if (gw_require_writer(who, err) < 0 || edge_new_id("igw", id, err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = edge_begin(gw, err);
    if (!conn) {
        return -1;
    }
    struct nb_buf key = NB_BUF_INIT;
    edge_key_tags(&key, tags, n_tags);
    const char *p[] = {id, who->tenant_id};
    int rc = claim(conn, who, client_token, "CreateInternetGateway", &key, id, earlier, err);
    if (rc == 1 &&
        (edge_exec(conn, "INSERT INTO internet_gateways (id, tenant_id) VALUES ($1, $2)", 2, p,
                   err) < 0 ||
         edge_put_tags(conn, who->tenant_id, id, "internet-gateway", tags, n_tags, err) < 0 ||
         nb_pg_commit(conn, err) < 0)) {
        rc = -1;
    }
    nb_pg_release(conn);
    nb_buf_free(&key);
    if (rc < 0) {
        return -1;
    }
    const char *ids[] = {rc ? id : earlier};
    struct gw_internet_gateway *g;
    size_t n;
    if (gw_igws_describe(gw, who, ids, 1, NULL, 0, arena, &g, &n, err) < 0) {
        return -1;
    }
    *out = g[0];
    return 0;
}

int gw_igw_attach(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                  const char *vpc_id, struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0 || edge_require(id, "InternetGatewayId", err) < 0 ||
        edge_require(vpc_id, "VpcId", err) < 0 ||
        edge_check_id(id, "igw", "InvalidInternetGatewayID.Malformed", err) < 0 ||
        edge_check_id(vpc_id, "vpc", "InvalidVpcID.Malformed", err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = edge_begin(gw, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    const char *p[] = {id, vpc_id};
    PGresult *res = NULL;
    if (edge_lock_row(conn, "internet_gateways", "id", "UPDATE", who->tenant_id, id,
                      "internet gateway ID", "InvalidInternetGatewayID.NotFound", err) < 0 ||
        edge_lock_row(conn, "vpcs", "id", "SHARE", who->tenant_id, vpc_id, "vpc ID",
                      "InvalidVpcID.NotFound", err) < 0 ||
        !(res = nb_pg_exec(conn,
                           "SELECT (SELECT vpc_id FROM internet_gateways WHERE id = $1), "
                           "(SELECT id FROM internet_gateways WHERE vpc_id = $2)",
                           2, p, err))) {
        goto done;
    }
    if (!PQgetisnull(res, 0, 0)) {
        edge_fail(err, NB_ERR_CONFLICT, "Resource.AlreadyAssociated",
                  "resource %s is already attached to network %s", id, PQgetvalue(res, 0, 0));
        goto done;
    }
    if (!PQgetisnull(res, 0, 1)) {
        edge_fail(err, NB_ERR_CONFLICT, "Resource.AlreadyAssociated",
                  "Network %s already has an internet gateway attached (%s)", vpc_id,
                  PQgetvalue(res, 0, 1));
        goto done;
    }
    if (edge_exec(conn, "UPDATE internet_gateways SET vpc_id = $2 WHERE id = $1", 2, p, err) < 0) {
        if (err && err->code == NB_ERR_CONFLICT) { /* a concurrent attach won the VPC */
            edge_fail(err, NB_ERR_CONFLICT, "Resource.AlreadyAssociated",
                      "Network %s already has an internet gateway attached", vpc_id);
        }
        goto done;
    }
    rc = nb_pg_commit(conn, err);

done:
    PQclear(res);
    nb_pg_release(conn);
    return rc;
}

int gw_igw_detach(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                  const char *vpc_id, struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0 || edge_require(id, "InternetGatewayId", err) < 0 ||
        edge_require(vpc_id, "VpcId", err) < 0 ||
        edge_check_id(id, "igw", "InvalidInternetGatewayID.Malformed", err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = edge_begin(gw, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    long long attached, mapped;
    const char *p[] = {id, vpc_id};
    /* The gateway's row lock first: AssociateAddress holds it shared while it associates, so
     * the count below sees every association made before. */
    if (edge_lock_row(conn, "internet_gateways", "id", "UPDATE", who->tenant_id, id,
                      "internet gateway ID", "InvalidInternetGatewayID.NotFound", err) < 0 ||
        edge_count(conn, "SELECT count(*) FROM internet_gateways WHERE id = $1 AND vpc_id = $2", 2,
                   p, &attached, err) < 0) {
        goto done;
    }
    if (!attached) {
        edge_fail(err, NB_ERR_CONFLICT, "Gateway.NotAttached",
                  "resource %s is not attached to network %.64s", id, vpc_id);
        goto done;
    }
    if (edge_count(conn,
                   "SELECT count(*) FROM addresses a JOIN network_interfaces n "
                   "ON n.id = a.network_interface_id WHERE n.vpc_id = $1",
                   1, p + 1, &mapped, err) < 0) {
        goto done;
    }
    if (mapped) {
        edge_fail(err, NB_ERR_CONFLICT, "DependencyViolation",
                  "Network %s has some mapped public address(es) (%lld). Please unmap those "
                  "public address(es) before detaching the gateway.",
                  vpc_id, mapped);
        goto done;
    }
    if (edge_exec(conn, "UPDATE internet_gateways SET vpc_id = NULL WHERE id = $1", 1, p, err) <
        0) {
        goto done;
    }
    rc = nb_pg_commit(conn, err);

done:
    nb_pg_release(conn);
    return rc;
}

int gw_igw_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                  struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0 || edge_require(id, "InternetGatewayId", err) < 0 ||
        edge_check_id(id, "igw", "InvalidInternetGatewayID.Malformed", err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = edge_begin(gw, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    long long attached;
    const char *p[] = {id};
    if (edge_lock_row(conn, "internet_gateways", "id", "UPDATE", who->tenant_id, id,
                      "internet gateway ID", "InvalidInternetGatewayID.NotFound", err) < 0 ||
        edge_count(conn,
                   "SELECT count(*) FROM internet_gateways WHERE id = $1 AND vpc_id IS NOT NULL", 1,
                   p, &attached, err) < 0) {
        goto done;
    }
    if (attached) {
        edge_fail(err, NB_ERR_CONFLICT, "DependencyViolation",
                  "The internetGateway '%s' has dependencies and cannot be deleted (it is "
                  "attached to a VPC).",
                  id);
        goto done;
    }
    if (edge_drop_tags(conn, who->tenant_id, id, err) < 0 ||
        edge_exec(conn, "DELETE FROM internet_gateways WHERE id = $1", 1, p, err) < 0) {
        goto done;
    }
    rc = nb_pg_commit(conn, err);

done:
    nb_pg_release(conn);
    return rc;
}

int gw_igws_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *const *ids,
                     size_t n_ids, const struct gw_filter *filters, size_t n_filters,
                     struct nb_arena *arena, struct gw_internet_gateway **out, size_t *n,
                     struct nb_error *err)
{
    static const char *const map[][2] = {
        {"internet-gateway-id", "i.id"},
        {"attachment.vpc-id", "i.vpc_id"},
        {"attachment.state", "CASE WHEN i.vpc_id IS NOT NULL THEN 'available' END"},
        {"owner-id", "i.tenant_id"},
    };
    if (svc_check_id_form(ids, n_ids, "igw", "InvalidInternetGatewayID.Malformed", err) < 0) {
        return -1;
    }
    struct svc_sql q;
    svc_sql_init(&q, arena);
    nb_buf_printf(&q.sql,
                  "SELECT i.id, i.tenant_id, i.vpc_id, " EDGE_TAGS_OF(
                      "i.id") " FROM internet_gateways i WHERE i.tenant_id = %s",
                  svc_sql_param(&q, who->tenant_id));
    if (n_ids) {
        nb_buf_printf(&q.sql, " AND i.id = ANY(%s)", svc_sql_array(&q, ids, n_ids));
    }
    if (edge_add_filters(&q, map, sizeof map / sizeof map[0], "i.id", filters, n_filters, err) <
        0) {
        nb_buf_free(&q.sql);
        return -1;
    }
    nb_buf_puts(&q.sql, " ORDER BY i.id");
    PGresult *res = svc_sql_run(gw, &q, err);
    if (!res) {
        return -1;
    }
    *n = (size_t)PQntuples(res);
    *out = nb_arena_zalloc(arena, sizeof **out * (*n ? *n : 1));
    for (int r = 0; r < (int)*n; r++) {
        struct gw_internet_gateway *g = &(*out)[r];
        g->id = svc_col(res, r, 0, arena);
        g->owner_id = svc_col(res, r, 1, arena);
        g->vpc_id = svc_col(res, r, 2, arena);
        svc_parse_tags(PQgetvalue(res, r, 3), arena, &g->tags, &g->n_tags);
    }
    PQclear(res);
    return svc_check_all_found(ids, n_ids, *out, sizeof **out,
                               offsetof(struct gw_internet_gateway, id), *n, "internet gateway ID",
                               "InvalidInternetGatewayID.NotFound", arena, err);
}

/* --- route tables ------------------------------------------------------------------------- */

int gw_rtb_create(struct gw_ctx *gw, const struct gw_principal *who, const char *vpc_id,
                  const char *client_token, const struct gw_tag *tags, size_t n_tags,
                  struct nb_arena *arena, struct gw_route_table *out, struct nb_error *err)
{
    char id[NB_ID_MAX], earlier[NB_ID_MAX];
    if (gw_require_writer(who, err) < 0 || edge_require(vpc_id, "VpcId", err) < 0 ||
        edge_check_id(vpc_id, "vpc", "InvalidVpcID.Malformed", err) < 0 ||
        edge_new_id("rtb", id, err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = edge_begin(gw, err);
    if (!conn) {
        return -1;
    }
    struct nb_buf key = NB_BUF_INIT;
    nb_buf_printf(&key, "vpc %s\n", vpc_id);
    edge_key_tags(&key, tags, n_tags);
    const char *p[] = {id, who->tenant_id, vpc_id};
    int rc = claim(conn, who, client_token, "CreateRouteTable", &key, id, earlier, err);
    if (rc == 1 &&
        (edge_lock_row(conn, "vpcs", "id", "SHARE", who->tenant_id, vpc_id, "vpc ID",
                       "InvalidVpcID.NotFound", err) < 0 ||
         edge_exec(conn, "INSERT INTO route_tables (id, tenant_id, vpc_id) VALUES ($1, $2, $3)", 3,
                   p, err) < 0 ||
         edge_put_tags(conn, who->tenant_id, id, "route-table", tags, n_tags, err) < 0 ||
         nb_pg_commit(conn, err) < 0)) {
        rc = -1;
    }
    nb_pg_release(conn);
    nb_buf_free(&key);
    if (rc < 0) {
        return -1;
    }
    const char *ids[] = {rc ? id : earlier};
    struct gw_route_table *t;
    size_t n;
    if (gw_rtbs_describe(gw, who, ids, 1, NULL, 0, arena, &t, &n, err) < 0) {
        return -1;
    }
    *out = t[0];
    return 0;
}

int gw_rtb_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                  struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0 || edge_require(id, "RouteTableId", err) < 0 ||
        edge_check_id(id, "rtb", "InvalidRouteTableID.Malformed", err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = edge_begin(gw, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    long long main_table, associated;
    const char *p[] = {id};
    if (edge_lock_row(conn, "route_tables", "id", "UPDATE", who->tenant_id, id, "routeTable ID",
                      "InvalidRouteTableID.NotFound", err) < 0 ||
        edge_count(conn, "SELECT count(*) FROM route_tables WHERE id = $1 AND main", 1, p,
                   &main_table, err) < 0 ||
        edge_count(conn, "SELECT count(*) FROM route_table_associations WHERE route_table_id = $1",
                   1, p, &associated, err) < 0) {
        goto done;
    }
    if (main_table || associated) {
        edge_fail(err, NB_ERR_CONFLICT, "DependencyViolation",
                  "The routeTable '%s' has dependencies and cannot be deleted (%s).", id,
                  main_table ? "it is its VPC's main route table"
                             : "it is associated with subnets");
        goto done;
    }
    if (edge_drop_tags(conn, who->tenant_id, id, err) < 0 ||
        edge_exec(conn, "DELETE FROM routes WHERE route_table_id = $1", 1, p, err) < 0 ||
        edge_exec(conn, "DELETE FROM route_tables WHERE id = $1", 1, p, err) < 0) {
        goto done;
    }
    rc = nb_pg_commit(conn, err);

done:
    nb_pg_release(conn);
    return rc;
}

/* Parses the routes column of gw_rtbs_describe()'s query, after the local route of 'vpc_cidr'. */
static void parse_routes(const char *text, const char *vpc_cidr, struct nb_arena *arena,
                         struct gw_route_table *t)
{
    json_t *arr = json_loads(text, 0, NULL);
    size_t total = json_is_array(arr) ? json_array_size(arr) : 0, i;
    struct gw_route *r = nb_arena_zalloc(arena, sizeof *r * (total + 1));
    r[0] = (struct gw_route){.destination = vpc_cidr,
                             .gateway_id = "local",
                             .state = "active",
                             .origin = "CreateRouteTable"};
    json_t *x;
    json_array_foreach(arr, i, x)
    {
        r[i + 1].destination =
            nb_arena_strdup(arena, json_string_value(json_array_get(x, 0)) ?: "");
        r[i + 1].gateway_id = nb_arena_strdup(arena, json_string_value(json_array_get(x, 1)) ?: "");
        r[i + 1].state = nb_arena_strdup(arena, json_string_value(json_array_get(x, 2)) ?: "");
        r[i + 1].origin = "CreateRoute";
    }
    json_decref(arr);
    t->routes = r;
    t->n_routes = total + 1;
}

/* Parses the associations column, after the main table's association 'main_assoc' (or none). */
static void parse_associations(const char *text, const char *main_assoc, struct nb_arena *arena,
                               struct gw_route_table *t)
{
    json_t *arr = json_loads(text, 0, NULL);
    size_t total = json_is_array(arr) ? json_array_size(arr) : 0, i;
    struct gw_route_association *a = nb_arena_zalloc(arena, sizeof *a * (total + 1));
    size_t n = 0;
    if (main_assoc) {
        a[n++] =
            (struct gw_route_association){.id = main_assoc, .route_table_id = t->id, .main = true};
    }
    json_t *x;
    json_array_foreach(arr, i, x)
    {
        a[n].id = nb_arena_strdup(arena, json_string_value(json_array_get(x, 0)) ?: "");
        a[n].subnet_id = nb_arena_strdup(arena, json_string_value(json_array_get(x, 1)) ?: "");
        a[n++].route_table_id = t->id;
    }
    json_decref(arr);
    t->associations = a;
    t->n_associations = n;
}

/* Whether gateway 'g' (an SQL expression) is attached to the VPC of route table 'r'. */
#define GATEWAY_ATTACHED(g)                                                                        \
    "(EXISTS (SELECT 1 FROM internet_gateways i WHERE i.id = " g " AND i.vpc_id = r.vpc_id) OR "   \
    "EXISTS (SELECT 1 FROM vpn_gateways w WHERE w.id = " g " AND w.vpc_id = r.vpc_id))"

int gw_rtbs_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *const *ids,
                     size_t n_ids, const struct gw_filter *filters, size_t n_filters,
                     struct nb_arena *arena, struct gw_route_table **out, size_t *n,
                     struct nb_error *err)
{
    static const char *const map[][2] = {
        {"route-table-id", "r.id"},
        {"association.route-table-id", "r.id"},
        {"vpc-id", "r.vpc_id"},
        {"owner-id", "r.tenant_id"},
        {"association.main", "r.main::text"},
        {"association.subnet-id", "EXISTS (SELECT 1 FROM route_table_associations a "
                                  "WHERE a.route_table_id = r.id AND a.subnet_id = ANY(%s))"},
        {"association.route-table-association-id",
         "(r.main_association_id = ANY(%s) OR EXISTS (SELECT 1 FROM route_table_associations a "
         "WHERE a.route_table_id = r.id AND a.id = ANY(%s)))"},
        {"route.destination-cidr-block",
         "(v.cidr_block::text = ANY(%s) OR EXISTS (SELECT 1 FROM routes x "
         "WHERE x.route_table_id = r.id AND x.destination::text = ANY(%s)))"},
        {"route.gateway-id", "('local' = ANY(%s) OR EXISTS (SELECT 1 FROM routes x "
                             "WHERE x.route_table_id = r.id AND x.gateway_id = ANY(%s)))"},
    };
    if (svc_check_id_form(ids, n_ids, "rtb", "InvalidRouteTableID.Malformed", err) < 0) {
        return -1;
    }
    struct svc_sql q;
    svc_sql_init(&q, arena);
    nb_buf_printf(
        &q.sql,
        "SELECT r.id, r.tenant_id, r.vpc_id, r.main, r.main_association_id, "
        "v.cidr_block::text, "
        "COALESCE((SELECT json_agg(json_build_array(x.destination::text, x.gateway_id, "
        "CASE WHEN " GATEWAY_ATTACHED(
            "x.gateway_id") " THEN 'active' "
                            "ELSE 'blackhole' END) ORDER BY x.destination) FROM routes x "
                            "WHERE x.route_table_id = r.id), '[]'), "
                            "COALESCE((SELECT json_agg(json_build_array(a.id, a.subnet_id) "
                            "ORDER BY a.subnet_id) FROM route_table_associations a "
                            "WHERE a.route_table_id = r.id), '[]'), " EDGE_TAGS_OF(
                                "r.id") " FROM route_tables r JOIN vpcs v ON v.id = r.vpc_id "
                                        "WHERE r.tenant_id = %s",
        svc_sql_param(&q, who->tenant_id));
    if (n_ids) {
        nb_buf_printf(&q.sql, " AND r.id = ANY(%s)", svc_sql_array(&q, ids, n_ids));
    }
    if (edge_add_filters(&q, map, sizeof map / sizeof map[0], "r.id", filters, n_filters, err) <
        0) {
        nb_buf_free(&q.sql);
        return -1;
    }
    nb_buf_puts(&q.sql, " ORDER BY r.id");
    PGresult *res = svc_sql_run(gw, &q, err);
    if (!res) {
        return -1;
    }
    *n = (size_t)PQntuples(res);
    *out = nb_arena_zalloc(arena, sizeof **out * (*n ? *n : 1));
    for (int r = 0; r < (int)*n; r++) {
        struct gw_route_table *t = &(*out)[r];
        t->id = svc_col(res, r, 0, arena);
        t->owner_id = svc_col(res, r, 1, arena);
        t->vpc_id = svc_col(res, r, 2, arena);
        t->main = PQgetvalue(res, r, 3)[0] == 't';
        parse_routes(PQgetvalue(res, r, 6), svc_col(res, r, 5, arena), arena, t);
        parse_associations(PQgetvalue(res, r, 7), svc_col(res, r, 4, arena), arena, t);
        svc_parse_tags(PQgetvalue(res, r, 8), arena, &t->tags, &t->n_tags);
    }
    PQclear(res);
    return svc_check_all_found(ids, n_ids, *out, sizeof **out, offsetof(struct gw_route_table, id),
                               *n, "route table ID", "InvalidRouteTableID.NotFound", arena, err);
}

/* Checks the parameters every route call has: the table and the destination. */
static int check_route_target(const char *rtb_id, const char *destination, struct nb_error *err)
{
    if (edge_require(rtb_id, "RouteTableId", err) < 0 ||
        edge_check_id(rtb_id, "rtb", "InvalidRouteTableID.Malformed", err) < 0 ||
        edge_check_cidr("DestinationCidrBlock", destination, err) < 0) {
        return -1;
    }
    return 0;
}

int gw_route_create(struct gw_ctx *gw, const struct gw_principal *who, const char *rtb_id,
                    const char *destination, const char *gateway_id, struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0 || check_route_target(rtb_id, destination, err) < 0 ||
        edge_require(gateway_id, "GatewayId", err) < 0) {
        return -1;
    }
    bool igw = nb_id_valid("igw", gateway_id);
    if (!igw && !nb_id_valid("vgw", gateway_id)) {
        return edge_fail(err, NB_ERR_INVALID, "InvalidGatewayID.Malformed",
                         "Invalid id: '%.64s' (nubo routes through internet gateways, igw-..., "
                         "and VPN gateways, vgw-...)",
                         gateway_id);
    }
    struct nb_pg_conn *conn = edge_begin(gw, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    const char *p[] = {rtb_id, who->tenant_id, destination};
    PGresult *res = nb_pg_exec(conn,
                               "SELECT r.vpc_id, v.cidr_block::text, $3::cidr <<= v.cidr_block "
                               "FROM route_tables r JOIN vpcs v ON v.id = r.vpc_id "
                               "WHERE r.id = $1 AND r.tenant_id = $2 FOR SHARE OF r",
                               3, p, err);
    if (!res) {
        goto done;
    }
    if (PQntuples(res) != 1) {
        edge_fail(err, NB_ERR_NOT_FOUND, "InvalidRouteTableID.NotFound",
                  "The routeTable ID '%s' does not exist", rtb_id);
        goto done;
    }
    if (PQgetvalue(res, 0, 2)[0] == 't') {
        edge_fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                  "The destination CIDR block %s is equal to or more specific than one of this "
                  "VPC's CIDR blocks (%s): the local route carries it.",
                  destination, PQgetvalue(res, 0, 1));
        goto done;
    }
    char vpc_id[NB_ID_MAX];
    snprintf(vpc_id, sizeof vpc_id, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    const char *pg[] = {gateway_id, who->tenant_id};
    res = nb_pg_exec(conn,
                     igw ? "SELECT vpc_id FROM internet_gateways WHERE id = $1 AND tenant_id = $2 "
                           "FOR SHARE"
                         : "SELECT vpc_id FROM vpn_gateways WHERE id = $1 AND tenant_id = $2 "
                           "FOR SHARE",
                     2, pg, err);
    if (!res) {
        goto done;
    }
    if (PQntuples(res) != 1) {
        edge_fail(err, NB_ERR_NOT_FOUND, "InvalidGatewayID.NotFound",
                  "The gateway ID '%s' does not exist", gateway_id);
        goto done;
    }
    if (PQgetisnull(res, 0, 0) || strcmp(PQgetvalue(res, 0, 0), vpc_id)) {
        edge_fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                  "route table %s and network gateway %s belong to different networks (the "
                  "gateway is not attached to %s)",
                  rtb_id, gateway_id, vpc_id);
        goto done;
    }
    const char *pi[] = {rtb_id, destination, gateway_id};
    if (edge_exec(conn,
                  "INSERT INTO routes (route_table_id, destination, gateway_id) "
                  "VALUES ($1, $2::cidr, $3)",
                  3, pi, err) < 0) {
        if (err && err->code == NB_ERR_CONFLICT) {
            edge_fail(err, NB_ERR_CONFLICT, "RouteAlreadyExists",
                      "The route identified by %s already exists.", destination);
        }
        goto done;
    }
    rc = nb_pg_commit(conn, err);

done:
    PQclear(res);
    nb_pg_release(conn);
    return rc;
}

int gw_route_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *rtb_id,
                    const char *destination, struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0 || check_route_target(rtb_id, destination, err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = edge_begin(gw, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    const char *p[] = {rtb_id, destination};
    PGresult *res = NULL;
    if (edge_lock_row(conn, "route_tables", "id", "SHARE", who->tenant_id, rtb_id, "routeTable ID",
                      "InvalidRouteTableID.NotFound", err) < 0 ||
        !(res = nb_pg_exec(conn,
                           "DELETE FROM routes WHERE route_table_id = $1 "
                           "AND destination = $2::cidr RETURNING 1",
                           2, p, err))) {
        goto done;
    }
    if (PQntuples(res) == 0) {
        edge_fail(err, NB_ERR_NOT_FOUND, "InvalidRoute.NotFound",
                  "There is no route defined for '%s' in the route table %s (the local route "
                  "cannot be deleted).",
                  destination, rtb_id);
        goto done;
    }
    rc = nb_pg_commit(conn, err);

done:
    PQclear(res);
    nb_pg_release(conn);
    return rc;
}

int gw_rtb_associate(struct gw_ctx *gw, const struct gw_principal *who, const char *rtb_id,
                     const char *subnet_id, struct nb_arena *arena, const char **assoc_id,
                     struct nb_error *err)
{
    char id[NB_ID_MAX];
    if (gw_require_writer(who, err) < 0 || edge_require(rtb_id, "RouteTableId", err) < 0 ||
        edge_require(subnet_id, "SubnetId", err) < 0 ||
        edge_check_id(rtb_id, "rtb", "InvalidRouteTableID.Malformed", err) < 0 ||
        edge_check_id(subnet_id, "subnet", "InvalidSubnetID.Malformed", err) < 0 ||
        edge_new_id("rtbassoc", id, err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = edge_begin(gw, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    const char *p[] = {rtb_id, subnet_id, id};
    PGresult *res = NULL;
    if (edge_lock_row(conn, "route_tables", "id", "SHARE", who->tenant_id, rtb_id, "routeTable ID",
                      "InvalidRouteTableID.NotFound", err) < 0 ||
        edge_lock_row(conn, "subnets", "id", "SHARE", who->tenant_id, subnet_id, "subnet ID",
                      "InvalidSubnetID.NotFound", err) < 0 ||
        !(res = nb_pg_exec(conn,
                           "SELECT r.vpc_id = s.vpc_id, (SELECT a.route_table_id FROM "
                           "route_table_associations a WHERE a.subnet_id = s.id) "
                           "FROM route_tables r, subnets s WHERE r.id = $1 AND s.id = $2",
                           2, p, err))) {
        goto done;
    }
    if (PQgetvalue(res, 0, 0)[0] != 't') {
        edge_fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                  "Route table %s and subnet %s belong to different networks", rtb_id, subnet_id);
        goto done;
    }
    if (!PQgetisnull(res, 0, 1)) {
        edge_fail(err, NB_ERR_CONFLICT, "Resource.AlreadyAssociated",
                  "the specified association for route table %s conflicts with an existing "
                  "association (subnet %s uses route table %s)",
                  rtb_id, subnet_id, PQgetvalue(res, 0, 1));
        goto done;
    }
    if (edge_exec(conn,
                  "INSERT INTO route_table_associations (id, route_table_id, subnet_id) "
                  "VALUES ($3, $1, $2)",
                  3, p, err) < 0) {
        if (err && err->code == NB_ERR_CONFLICT) {
            edge_fail(err, NB_ERR_CONFLICT, "Resource.AlreadyAssociated",
                      "the specified association for route table %s conflicts with an existing "
                      "association",
                      rtb_id);
        }
        goto done;
    }
    if (nb_pg_commit(conn, err) < 0) {
        goto done;
    }
    *assoc_id = nb_arena_strdup(arena, id);
    rc = 0;

done:
    PQclear(res);
    nb_pg_release(conn);
    return rc;
}

int gw_rtb_disassociate(struct gw_ctx *gw, const struct gw_principal *who, const char *assoc_id,
                        struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0 || edge_require(assoc_id, "AssociationId", err) < 0 ||
        edge_check_id(assoc_id, "rtbassoc", "InvalidAssociationID.Malformed", err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = edge_begin(gw, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    long long main_assoc;
    const char *p[] = {assoc_id, who->tenant_id};
    PGresult *res = nb_pg_exec(conn,
                               "DELETE FROM route_table_associations a USING route_tables r "
                               "WHERE a.id = $1 AND r.id = a.route_table_id "
                               "AND r.tenant_id = $2 RETURNING 1",
                               2, p, err);
    if (!res) {
        goto done;
    }
    if (PQntuples(res) == 0) {
        if (edge_count(conn,
                       "SELECT count(*) FROM route_tables WHERE main_association_id = $1 "
                       "AND tenant_id = $2",
                       2, p, &main_assoc, err) < 0) {
            goto done;
        }
        if (main_assoc) {
            edge_fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                      "The association %s is the main route table's: it cannot be removed",
                      assoc_id);
        } else {
            edge_fail(err, NB_ERR_NOT_FOUND, "InvalidAssociationID.NotFound",
                      "The association ID '%s' does not exist", assoc_id);
        }
        goto done;
    }
    rc = nb_pg_commit(conn, err);

done:
    PQclear(res);
    nb_pg_release(conn);
    return rc;
}

/* --- elastic IPs -------------------------------------------------------------------------- */

/* Checks the tenant's elastic IP quota (quotas.max_elastic_ips; none without a quota row),
 * holding its quota row until commit so that concurrent allocations count each other.
 * AddressLimitExceeded when the tenant holds as many addresses as it may. */
static int check_address_quota(struct nb_pg_conn *conn, const struct gw_principal *who,
                               struct nb_error *err)
{
    const char *p[] = {who->tenant_id};
    PGresult *res = nb_pg_exec(conn,
                               "SELECT q.max_elastic_ips, (SELECT count(*) FROM addresses a "
                               "WHERE a.tenant_id = q.tenant_id) FROM quotas q "
                               "WHERE q.tenant_id = $1 FOR UPDATE",
                               1, p, err);
    if (!res) {
        return -1;
    }
    int rc = 0;
    if (PQntuples(res) == 1 && atoll(PQgetvalue(res, 0, 1)) >= atoll(PQgetvalue(res, 0, 0))) {
        rc = edge_fail(err, NB_ERR_LIMIT, "AddressLimitExceeded",
                       "The maximum number of addresses has been reached: your quota is %s "
                       "elastic IP(s)",
                       PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return rc;
}

int gw_address_allocate(struct gw_ctx *gw, const struct gw_principal *who, const char *client_token,
                        const struct gw_tag *tags, size_t n_tags, struct nb_arena *arena,
                        struct gw_address *out, struct nb_error *err)
{
    char id[NB_ID_MAX], earlier[NB_ID_MAX], ip[16];
    struct edge_pool pool;
    if (gw_require_writer(who, err) < 0 ||
        edge_pool_get(gw, "AddressLimitExceeded", &pool, err) < 0 ||
        edge_new_id("eipalloc", id, err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = edge_begin(gw, err);
    if (!conn) {
        return -1;
    }
    struct nb_buf key = NB_BUF_INIT;
    edge_key_tags(&key, tags, n_tags);
    const char *p[] = {id, who->tenant_id, ip};
    int rc = claim(conn, who, client_token, "AllocateAddress", &key, id, earlier, err);
    if (rc == 1 && (check_address_quota(conn, who, err) < 0 ||
                    edge_pool_take(conn, &pool, "AddressLimitExceeded", ip, err) < 0 ||
                    edge_exec(conn,
                              "INSERT INTO addresses (allocation_id, tenant_id, public_ip) "
                              "VALUES ($1, $2, $3::inet)",
                              3, p, err) < 0 ||
                    edge_put_tags(conn, who->tenant_id, id, "elastic-ip", tags, n_tags, err) < 0 ||
                    nb_pg_commit(conn, err) < 0)) {
        rc = -1;
    }
    nb_pg_release(conn);
    nb_buf_free(&key);
    if (rc < 0) {
        return -1;
    }
    const char *ids[] = {rc ? id : earlier};
    struct gw_address *a;
    size_t n;
    if (gw_addresses_describe(gw, who, ids, 1, NULL, 0, NULL, 0, arena, &a, &n, err) < 0) {
        return -1;
    }
    *out = a[0];
    return 0;
}

/* Locks the tenant's address named by 'allocation_id' (or, when NULL, 'public_ip') FOR UPDATE
 * and reads its allocation id, interface and association into 'row' (a result the caller
 * PQclear()s). Returns 0, or -1 with 'err' (NotFound). */
static int lock_address(struct nb_pg_conn *conn, const struct gw_principal *who,
                        const char *allocation_id, const char *public_ip, PGresult **row,
                        struct nb_error *err)
{
    *row = NULL;
    if (!allocation_id && !public_ip) {
        return edge_require(NULL, "AllocationId", err);
    }
    uint32_t a;
    if (!allocation_id && gw_ipv4_parse(public_ip, &a) < 0) {
        return edge_fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                         "Invalid value '%.64s' for PublicIp: not an IPv4 address", public_ip);
    }
    if (allocation_id &&
        edge_check_id(allocation_id, "eipalloc", "InvalidAllocationID.Malformed", err) < 0) {
        return -1;
    }
    const char *p[] = {who->tenant_id, allocation_id ? allocation_id : public_ip};
    PGresult *res =
        nb_pg_exec(conn,
                   allocation_id ? "SELECT allocation_id, network_interface_id, association_id "
                                   "FROM addresses WHERE tenant_id = $1 AND allocation_id = $2 "
                                   "FOR UPDATE"
                                 : "SELECT allocation_id, network_interface_id, association_id "
                                   "FROM addresses WHERE tenant_id = $1 "
                                   "AND public_ip = $2::inet FOR UPDATE",
                   2, p, err);
    if (!res) {
        return -1;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        if (allocation_id) {
            return edge_fail(err, NB_ERR_NOT_FOUND, "InvalidAllocationID.NotFound",
                             "The allocation ID '%s' does not exist", allocation_id);
        }
        return edge_fail(err, NB_ERR_NOT_FOUND, "InvalidAddress.NotFound",
                         "Address '%s' not found.", public_ip);
    }
    *row = res;
    return 0;
}

/* The interface an association targets, found and locked by find_interface(). */
struct target {
    char id[NB_ID_MAX];
    char vpc_id[NB_ID_MAX];
    char private_ip[16];
};

static int find_interface(struct nb_pg_conn *conn, const struct gw_principal *who,
                          const struct gw_address_association_request *rq, struct target *t,
                          struct nb_error *err)
{
    PGresult *res;
    if (rq->instance_id) {
        if (edge_check_id(rq->instance_id, "i", "InvalidInstanceID.Malformed", err) < 0) {
            return -1;
        }
        const char *p[] = {rq->instance_id, who->tenant_id};
        res = nb_pg_exec(conn,
                         "SELECT i.state, n.id, n.vpc_id, host(n.private_ip) FROM instances i "
                         "LEFT JOIN network_interfaces n ON n.instance_id = i.id "
                         "AND n.device_index = 0 WHERE i.id = $1 AND i.tenant_id = $2 "
                         "FOR SHARE OF i",
                         2, p, err);
        if (!res) {
            return -1;
        }
        int rc = 0;
        if (PQntuples(res) != 1) {
            rc = edge_fail(err, NB_ERR_NOT_FOUND, "InvalidInstanceID.NotFound",
                           "The instance ID '%s' does not exist", rq->instance_id);
        } else if (!strcmp(PQgetvalue(res, 0, 0), "terminated") ||
                   !strcmp(PQgetvalue(res, 0, 0), "shutting-down")) {
            rc = edge_fail(err, NB_ERR_CONFLICT, "IncorrectInstanceState",
                           "The instance '%s' is not in a valid state for this operation (%s)",
                           rq->instance_id, PQgetvalue(res, 0, 0));
        } else if (PQgetisnull(res, 0, 1)) {
            rc = edge_fail(err, NB_ERR_INVALID, "InvalidInstanceID",
                           "The instance '%s' has no network interface (it was launched "
                           "without a subnet)",
                           rq->instance_id);
        } else {
            snprintf(t->id, sizeof t->id, "%s", PQgetvalue(res, 0, 1));
            snprintf(t->vpc_id, sizeof t->vpc_id, "%s", PQgetvalue(res, 0, 2));
            snprintf(t->private_ip, sizeof t->private_ip, "%s", PQgetvalue(res, 0, 3));
        }
        PQclear(res);
        if (rc < 0) {
            return -1;
        }
        const char *pl[] = {t->id};
        return edge_exec(conn, "SELECT 1 FROM network_interfaces WHERE id = $1 FOR SHARE", 1, pl,
                         err);
    }
    if (edge_check_id(rq->interface_id, "eni", "InvalidNetworkInterfaceID.Malformed", err) < 0) {
        return -1;
    }
    const char *p[] = {rq->interface_id, who->tenant_id};
    res = nb_pg_exec(conn,
                     "SELECT n.vpc_id, host(n.private_ip) FROM network_interfaces n "
                     "WHERE n.id = $1 AND n.tenant_id = $2 FOR SHARE",
                     2, p, err);
    if (!res) {
        return -1;
    }
    int rc = 0;
    if (PQntuples(res) != 1) {
        rc = edge_fail(err, NB_ERR_NOT_FOUND, "InvalidNetworkInterfaceID.NotFound",
                       "The networkInterface ID '%s' does not exist", rq->interface_id);
    } else {
        snprintf(t->id, sizeof t->id, "%s", rq->interface_id);
        snprintf(t->vpc_id, sizeof t->vpc_id, "%s", PQgetvalue(res, 0, 0));
        snprintf(t->private_ip, sizeof t->private_ip, "%s", PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    return rc;
}

int gw_address_associate(struct gw_ctx *gw, const struct gw_principal *who,
                         const struct gw_address_association_request *rq, struct nb_arena *arena,
                         const char **assoc_id, struct nb_error *err)
{
    char new_assoc[NB_ID_MAX];
    if (gw_require_writer(who, err) < 0 || edge_new_id("eipassoc", new_assoc, err) < 0) {
        return -1;
    }
    if (rq->instance_id && rq->interface_id) {
        return edge_fail(err, NB_ERR_INVALID, "InvalidParameterCombination",
                         "Specify either an instance or a network interface, not both");
    }
    if (!rq->instance_id && !rq->interface_id) {
        return edge_fail(err, NB_ERR_MISSING, "MissingParameter",
                         "The request must contain the parameter InstanceId or "
                         "NetworkInterfaceId");
    }
    struct nb_pg_conn *conn = edge_begin(gw, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    PGresult *addr = NULL, *res = NULL;
    struct target t;
    if (lock_address(conn, who, rq->allocation_id, rq->public_ip, &addr, err) < 0 ||
        find_interface(conn, who, rq, &t, err) < 0) {
        goto done;
    }
    const char *alloc = PQgetvalue(addr, 0, 0);
    if (rq->private_ip && strcmp(rq->private_ip, t.private_ip)) {
        edge_fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                  "The private address %.64s is not an address of interface %s (%s)",
                  rq->private_ip, t.id, t.private_ip);
        goto done;
    }
    /* The VPC's gateway, held shared until commit so that it cannot be detached under us. */
    const char *pv[] = {t.vpc_id};
    if (!(res = nb_pg_exec(conn, "SELECT id FROM internet_gateways WHERE vpc_id = $1 FOR SHARE", 1,
                           pv, err))) {
        goto done;
    }
    if (PQntuples(res) == 0) {
        edge_fail(err, NB_ERR_CONFLICT, "Gateway.NotAttached",
                  "Network %s is not attached to any internet gateway", t.vpc_id);
        goto done;
    }
    if (!PQgetisnull(addr, 0, 1) && !strcmp(PQgetvalue(addr, 0, 1), t.id)) {
        *assoc_id = svc_col(addr, 0, 2, arena); /* already there: nothing changes */
        rc = 0;
        goto done;
    }
    if (!PQgetisnull(addr, 0, 1) && !rq->allow_reassociation) {
        edge_fail(err, NB_ERR_CONFLICT, "Resource.AlreadyAssociated",
                  "resource %s is already associated with associate-id %s", alloc,
                  PQgetvalue(addr, 0, 2));
        goto done;
    }
    /* The interface gives up the address it has, then takes this one. */
    const char *pu[] = {t.id, alloc, new_assoc};
    if (edge_exec(conn,
                  "UPDATE addresses SET network_interface_id = NULL, association_id = NULL, "
                  "associated_at = NULL WHERE network_interface_id = $1 AND allocation_id <> $2",
                  2, pu, err) < 0 ||
        edge_exec(conn,
                  "UPDATE addresses SET network_interface_id = $1, association_id = $3, "
                  "associated_at = now() WHERE allocation_id = $2",
                  3, pu, err) < 0) {
        if (err && err->code == NB_ERR_CONFLICT) { /* a concurrent association won the interface */
            edge_fail(err, NB_ERR_CONFLICT, "Resource.AlreadyAssociated",
                      "the interface %s was given another address meanwhile", t.id);
        }
        goto done;
    }
    if (nb_pg_commit(conn, err) < 0) {
        goto done;
    }
    *assoc_id = nb_arena_strdup(arena, new_assoc);
    rc = 0;

done:
    PQclear(res);
    PQclear(addr);
    nb_pg_release(conn);
    return rc;
}

int gw_address_disassociate(struct gw_ctx *gw, const struct gw_principal *who, const char *assoc_id,
                            const char *public_ip, struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0) {
        return -1;
    }
    if (!assoc_id && !public_ip) {
        return edge_require(NULL, "AssociationId", err);
    }
    uint32_t a;
    if (assoc_id &&
        edge_check_id(assoc_id, "eipassoc", "InvalidAssociationID.Malformed", err) < 0) {
        return -1;
    }
    if (!assoc_id && gw_ipv4_parse(public_ip, &a) < 0) {
        return edge_fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                         "Invalid value '%.64s' for PublicIp: not an IPv4 address", public_ip);
    }
    struct nb_pg_conn *conn = edge_begin(gw, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    const char *p[] = {who->tenant_id, assoc_id ? assoc_id : public_ip};
    PGresult *res =
        nb_pg_exec(conn,
                   assoc_id ? "UPDATE addresses SET network_interface_id = NULL, "
                              "association_id = NULL, associated_at = NULL "
                              "WHERE tenant_id = $1 AND association_id = $2 RETURNING 1"
                            : "WITH a AS (SELECT allocation_id FROM addresses "
                              "WHERE tenant_id = $1 AND public_ip = $2::inet FOR UPDATE), "
                              "u AS (UPDATE addresses SET network_interface_id = NULL, "
                              "association_id = NULL, associated_at = NULL "
                              "WHERE allocation_id IN (SELECT allocation_id FROM a) "
                              "RETURNING 1) SELECT 1 FROM a",
                   2, p, err);
    if (!res) {
        goto done;
    }
    if (PQntuples(res) == 0) {
        if (assoc_id) {
            edge_fail(err, NB_ERR_NOT_FOUND, "InvalidAssociationID.NotFound",
                      "The association ID '%s' does not exist", assoc_id);
        } else {
            edge_fail(err, NB_ERR_NOT_FOUND, "InvalidAddress.NotFound", "Address '%s' not found.",
                      public_ip);
        }
        goto done;
    }
    rc = nb_pg_commit(conn, err);

done:
    PQclear(res);
    nb_pg_release(conn);
    return rc;
}

int gw_address_release(struct gw_ctx *gw, const struct gw_principal *who, const char *allocation_id,
                       const char *public_ip, struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = edge_begin(gw, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    PGresult *addr = NULL;
    if (lock_address(conn, who, allocation_id, public_ip, &addr, err) < 0) {
        goto done;
    }
    const char *p[] = {PQgetvalue(addr, 0, 0)};
    if (!PQgetisnull(addr, 0, 1)) {
        edge_fail(err, NB_ERR_CONFLICT, "InvalidIPAddress.InUse",
                  "Address %s is in use (associated with %s as %s).", p[0], PQgetvalue(addr, 0, 1),
                  PQgetvalue(addr, 0, 2));
        goto done;
    }
    if (edge_drop_tags(conn, who->tenant_id, p[0], err) < 0 ||
        edge_exec(conn, "DELETE FROM addresses WHERE allocation_id = $1", 1, p, err) < 0) {
        goto done;
    }
    rc = nb_pg_commit(conn, err);

done:
    PQclear(addr);
    nb_pg_release(conn);
    return rc;
}

int gw_addresses_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *const *ids,
                          size_t n_ids, const char *const *ips, size_t n_ips,
                          const struct gw_filter *filters, size_t n_filters, struct nb_arena *arena,
                          struct gw_address **out, size_t *n, struct nb_error *err)
{
    static const char *const map[][2] = {
        {"allocation-id", "a.allocation_id"},
        {"association-id", "a.association_id"},
        {"domain", "'vpc'"},
        {"instance-id", "n.instance_id"},
        {"network-interface-id", "a.network_interface_id"},
        {"network-interface-owner-id", "n.tenant_id"},
        {"private-ip-address", "host(n.private_ip)"},
        {"public-ip", "host(a.public_ip)"},
    };
    if (svc_check_id_form(ids, n_ids, "eipalloc", "InvalidAllocationID.Malformed", err) < 0) {
        return -1;
    }
    for (size_t k = 0; k < n_ips; k++) {
        uint32_t a;
        if (gw_ipv4_parse(ips[k], &a) < 0) {
            return edge_fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                             "Invalid value '%.64s' for PublicIp: not an IPv4 address", ips[k]);
        }
    }
    struct svc_sql q;
    svc_sql_init(&q, arena);
    nb_buf_printf(
        &q.sql,
        "SELECT a.allocation_id, a.tenant_id, host(a.public_ip), a.association_id, "
        "a.network_interface_id, n.tenant_id, host(n.private_ip), "
        "n.instance_id, " EDGE_TAGS_OF("a.allocation_id") " FROM addresses a "
                                                          "LEFT JOIN network_interfaces n "
                                                          "ON n.id = "
                                                          "a.network_interface_id "
                                                          "WHERE a.tenant_id = %s",
        svc_sql_param(&q, who->tenant_id));
    if (n_ids) {
        nb_buf_printf(&q.sql, " AND a.allocation_id = ANY(%s)", svc_sql_array(&q, ids, n_ids));
    }
    if (n_ips) {
        nb_buf_printf(&q.sql, " AND host(a.public_ip) = ANY(%s)", svc_sql_array(&q, ips, n_ips));
    }
    if (edge_add_filters(&q, map, sizeof map / sizeof map[0], "a.allocation_id", filters, n_filters,
                         err) < 0) {
        nb_buf_free(&q.sql);
        return -1;
    }
    nb_buf_puts(&q.sql, " ORDER BY a.public_ip");
    PGresult *res = svc_sql_run(gw, &q, err);
    if (!res) {
        return -1;
    }
    *n = (size_t)PQntuples(res);
    *out = nb_arena_zalloc(arena, sizeof **out * (*n ? *n : 1));
    for (int r = 0; r < (int)*n; r++) {
        struct gw_address *a = &(*out)[r];
        a->allocation_id = svc_col(res, r, 0, arena);
        a->owner_id = svc_col(res, r, 1, arena);
        a->public_ip = svc_col(res, r, 2, arena);
        a->association_id = svc_col(res, r, 3, arena);
        a->network_interface_id = svc_col(res, r, 4, arena);
        a->interface_owner_id = svc_col(res, r, 5, arena);
        a->private_ip = svc_col(res, r, 6, arena);
        a->instance_id = svc_col(res, r, 7, arena);
        svc_parse_tags(PQgetvalue(res, r, 8), arena, &a->tags, &a->n_tags);
    }
    PQclear(res);
    if (svc_check_all_found(ids, n_ids, *out, sizeof **out,
                            offsetof(struct gw_address, allocation_id), *n, "allocation ID",
                            "InvalidAllocationID.NotFound", arena, err) < 0 ||
        svc_check_all_found(ips, n_ips, *out, sizeof **out, offsetof(struct gw_address, public_ip),
                            *n, "address", "InvalidAddress.NotFound", arena, err) < 0) {
        return -1;
    }
    return 0;
}
