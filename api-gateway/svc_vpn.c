/* Site-to-site VPN, service layer (see svc_vpn.h): the database half, and the customer gateway
 * configuration document. */
#include "svc_vpn.h"

#include "auth.h"
#include "gateway.h"
#include "svc_edge.h"
#include "svc_network.h"
#include "svc_sql.h"

#include "nubo/arena.h"
#include "nubo/buf.h"
#include "nubo/pg.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VPN_TYPE        "ipsec.1"
#define DEFAULT_VGW_ASN 64512
#define DEFAULT_CGW_ASN 65000
#define MAX_ASN         4294967295LL
#define PSK_LEN         32
#define DEVICE_NAME_MAX 255

/* The tunnel's parameters, as EC2 names them and as strongSwan proposals. */
#define IKE_VERSION    "ikev2"
#define IKE_AUTH       "sha256"
#define IKE_ENCRYPTION "aes-256-cbc"
#define IKE_LIFETIME   "28800"
#define IKE_PROPOSAL   "aes256-sha256-modp2048"
#define ESP_AUTH       "hmac-sha256-128"
#define ESP_ENCRYPTION "aes-256-cbc"
#define ESP_LIFETIME   "3600"
#define ESP_PROPOSAL   "aes256-sha256-modp2048" /* ESP aes256-sha256, PFS modp2048 */
#define PFS_GROUP      "group14"                /* modp2048 */

static int check_type(const char *type, struct nb_error *err)
{
    if (edge_require(type, "Type", err) < 0) {
        return -1;
    }
    if (strcmp(type, VPN_TYPE)) {
        return edge_fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                         "Value (%.64s) for parameter type is invalid: nubo has " VPN_TYPE " only",
                         type);
    }
    return 0;
}

static int check_asn(const char *param, long long asn, struct nb_error *err)
{
    if (asn < 1 || asn > MAX_ASN) {
        return edge_fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                         "Value (%lld) for parameter %s is invalid: an ASN is 1 to %lld", asn,
                         param, MAX_ASN);
    }
    return 0;
}

/* --- VPN gateways ------------------------------------------------------------------------- */

int gw_vgw_create(struct gw_ctx *gw, const struct gw_principal *who, const char *type,
                  const char *zone, long long asn, const char *client_token,
                  const struct gw_tag *tags, size_t n_tags, struct nb_arena *arena,
                  struct gw_vpn_gateway *out, struct nb_error *err)
{
    char id[NB_ID_MAX], earlier[NB_ID_MAX], asn_s[24];
    if (!asn) {
        asn = DEFAULT_VGW_ASN;
    }
    if (gw_require_writer(who, err) < 0 || check_type(type, err) < 0 ||
        check_asn("AmazonSideAsn", asn, err) < 0 || edge_new_id("vgw", id, err) < 0) {
        return -1;
    }
    snprintf(asn_s, sizeof asn_s, "%lld", asn);
    struct nb_pg_conn *conn = edge_begin(gw, err);
    if (!conn) {
        return -1;
    }
    struct nb_buf key = NB_BUF_INIT;
    nb_buf_printf(&key, "type %s\nzone %s\nasn %s\n", type, zone ? zone : "", asn_s);
    edge_key_tags(&key, tags, n_tags);
    const char *p[] = {id, who->tenant_id, type, zone, asn_s};
    int rc = client_token ? edge_claim_token(conn, who->tenant_id, client_token, "CreateVpnGateway",
                                             key.data, id, earlier, err)
                          : 1;
    if (rc == 1) {
        PGresult *res = nb_pg_exec(conn,
                                   "INSERT INTO vpn_gateways (id, tenant_id, type, zone, "
                                   "amazon_side_asn) SELECT $1, $2, $3, $4, $5::bigint "
                                   "WHERE $4::text IS NULL OR EXISTS (SELECT 1 FROM zones z "
                                   "WHERE z.name = $4) RETURNING 1",
                                   5, p, err);
        if (!res) {
            rc = -1;
        } else if (PQntuples(res) == 0) {
            rc = edge_fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                           "Value (%.64s) for parameter availabilityZone is invalid: no such "
                           "zone",
                           zone);
        }
        PQclear(res);
        if (rc == 1 &&
            (edge_put_tags(conn, who->tenant_id, id, "vpn-gateway", tags, n_tags, err) < 0 ||
             nb_pg_commit(conn, err) < 0)) {
            rc = -1;
        }
    }
    nb_pg_release(conn);
    nb_buf_free(&key);
    if (rc < 0) {
        return -1;
    }
    const char *ids[] = {rc ? id : earlier};
    struct gw_vpn_gateway *g;
    size_t n;
    if (gw_vgws_describe(gw, who, ids, 1, NULL, 0, arena, &g, &n, err) < 0) {
        return -1;
    }
    *out = g[0];
    return 0;
}

static int check_vgw_params(const char *id, const char *vpc_id, struct nb_error *err)
{
    if (edge_require(id, "VpnGatewayId", err) < 0 || edge_require(vpc_id, "VpcId", err) < 0 ||
        edge_check_id(id, "vgw", "InvalidVpnGatewayID.Malformed", err) < 0 ||
        edge_check_id(vpc_id, "vpc", "InvalidVpcID.Malformed", err) < 0) {
        return -1;
    }
    return 0;
}

int gw_vgw_attach(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                  const char *vpc_id, struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0 || check_vgw_params(id, vpc_id, err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = edge_begin(gw, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    const char *p[] = {id, vpc_id};
    PGresult *res = NULL;
    if (edge_lock_row(conn, "vpn_gateways", "id", "UPDATE", who->tenant_id, id, "vpnGateway ID",
                      "InvalidVpnGatewayID.NotFound", err) < 0 ||
        edge_lock_row(conn, "vpcs", "id", "SHARE", who->tenant_id, vpc_id, "vpc ID",
                      "InvalidVpcID.NotFound", err) < 0 ||
        !(res = nb_pg_exec(conn,
                           "SELECT (SELECT vpc_id FROM vpn_gateways WHERE id = $1), "
                           "(SELECT id FROM vpn_gateways WHERE vpc_id = $2)",
                           2, p, err))) {
        goto done;
    }
    if (!PQgetisnull(res, 0, 0)) {
        edge_fail(err, NB_ERR_CONFLICT, "Resource.AlreadyAssociated",
                  "resource %s is already attached to network %s", id, PQgetvalue(res, 0, 0));
        goto done;
    }
    if (!PQgetisnull(res, 0, 1)) {
        edge_fail(err, NB_ERR_LIMIT, "VpnGatewayAttachmentLimitExceeded",
                  "The maximum number of virtual private gateway attachments has been reached: "
                  "%s has %s attached",
                  vpc_id, PQgetvalue(res, 0, 1));
        goto done;
    }
    if (edge_exec(conn, "UPDATE vpn_gateways SET vpc_id = $2 WHERE id = $1", 2, p, err) < 0) {
        if (err && err->code == NB_ERR_CONFLICT) {
            edge_fail(err, NB_ERR_LIMIT, "VpnGatewayAttachmentLimitExceeded",
                      "The maximum number of virtual private gateway attachments has been "
                      "reached: %s has one attached",
                      vpc_id);
        }
        goto done;
    }
    rc = nb_pg_commit(conn, err);

done:
    PQclear(res);
    nb_pg_release(conn);
    return rc;
}

int gw_vgw_detach(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                  const char *vpc_id, struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0 || check_vgw_params(id, vpc_id, err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = edge_begin(gw, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    const char *p[] = {id, vpc_id, who->tenant_id};
    PGresult *res = NULL;
    if (edge_lock_row(conn, "vpn_gateways", "id", "UPDATE", who->tenant_id, id, "vpnGateway ID",
                      "InvalidVpnGatewayID.NotFound", err) < 0 ||
        !(res = nb_pg_exec(conn,
                           "UPDATE vpn_gateways SET vpc_id = NULL WHERE id = $1 AND vpc_id = $2 "
                           "AND tenant_id = $3 RETURNING 1",
                           3, p, err))) {
        goto done;
    }
    if (PQntuples(res) == 0) {
        edge_fail(err, NB_ERR_NOT_FOUND, "InvalidVpnGatewayAttachment.NotFound",
                  "The attachment with vpn gateway ID '%s' and vpc ID '%s' does not exist", id,
                  vpc_id);
        goto done;
    }
    rc = nb_pg_commit(conn, err);

done:
    PQclear(res);
    nb_pg_release(conn);
    return rc;
}

/* Deletes the tags of the deleted connections that deleting gateway 'id' (a row of 'table')
 * takes with it. */
static int drop_connection_tags(struct nb_pg_conn *conn, const char *tenant_id, const char *column,
                                const char *id, struct nb_error *err)
{
    char sql[240];
    snprintf(sql, sizeof sql,
             "DELETE FROM tags WHERE tenant_id = $1 AND resource_id IN "
             "(SELECT id FROM vpn_connections WHERE %s = $2)",
             column);
    const char *p[] = {tenant_id, id};
    return edge_exec(conn, sql, 2, p, err);
}

/* The live connections of the gateway whose id is 'id' in 'column' of vpn_connections, as
 * "vpn-..., vpn-..." into 'out' (empty when none). */
static int live_connections(struct nb_pg_conn *conn, const char *column, const char *id, char *out,
                            size_t size, struct nb_error *err)
{
    char sql[240];
    snprintf(sql, sizeof sql,
             "SELECT COALESCE(string_agg(id, ', ' ORDER BY id), '') FROM vpn_connections "
             "WHERE %s = $1 AND state <> 'deleted'",
             column);
    const char *p[] = {id};
    PGresult *res = nb_pg_exec(conn, sql, 1, p, err);
    if (!res) {
        return -1;
    }
    snprintf(out, size, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

int gw_vgw_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                  struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0 || edge_require(id, "VpnGatewayId", err) < 0 ||
        edge_check_id(id, "vgw", "InvalidVpnGatewayID.Malformed", err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = edge_begin(gw, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    long long attached;
    char live[256];
    const char *p[] = {id};
    if (edge_lock_row(conn, "vpn_gateways", "id", "UPDATE", who->tenant_id, id, "vpnGateway ID",
                      "InvalidVpnGatewayID.NotFound", err) < 0 ||
        edge_count(conn, "SELECT count(*) FROM vpn_gateways WHERE id = $1 AND vpc_id IS NOT NULL",
                   1, p, &attached, err) < 0 ||
        live_connections(conn, "vpn_gateway_id", id, live, sizeof live, err) < 0) {
        goto done;
    }
    if (attached || live[0]) {
        edge_fail(err, NB_ERR_CONFLICT, "IncorrectState", "The VPN gateway '%s' is in use: %s%s",
                  id, attached ? "it is attached to a VPC" : "connections ", attached ? "" : live);
        goto done;
    }
    if (drop_connection_tags(conn, who->tenant_id, "vpn_gateway_id", id, err) < 0 ||
        edge_drop_tags(conn, who->tenant_id, id, err) < 0 ||
        edge_exec(conn, "DELETE FROM vpn_gateways WHERE id = $1", 1, p, err) < 0) {
        goto done;
    }
    rc = nb_pg_commit(conn, err);

done:
    nb_pg_release(conn);
    return rc;
}

int gw_vgws_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *const *ids,
                     size_t n_ids, const struct gw_filter *filters, size_t n_filters,
                     struct nb_arena *arena, struct gw_vpn_gateway **out, size_t *n,
                     struct nb_error *err)
{
    static const char *const map[][2] = {
        {"vpn-gateway-id", "g.id"},
        {"state", "g.state"},
        {"type", "g.type"},
        {"availability-zone", "g.zone"},
        {"amazon-side-asn", "g.amazon_side_asn::text"},
        {"attachment.vpc-id", "g.vpc_id"},
        {"attachment.state", "CASE WHEN g.vpc_id IS NOT NULL THEN 'attached' END"},
    };
    if (svc_check_id_form(ids, n_ids, "vgw", "InvalidVpnGatewayID.Malformed", err) < 0) {
        return -1;
    }
    struct svc_sql q;
    svc_sql_init(&q, arena);
    nb_buf_printf(&q.sql,
                  "SELECT g.id, g.tenant_id, g.type, g.state, g.zone, g.amazon_side_asn, "
                  "g.vpc_id, " EDGE_TAGS_OF("g.id") " FROM vpn_gateways g WHERE g.tenant_id = %s",
                  svc_sql_param(&q, who->tenant_id));
    if (n_ids) {
        nb_buf_printf(&q.sql, " AND g.id = ANY(%s)", svc_sql_array(&q, ids, n_ids));
    }
    if (edge_add_filters(&q, map, sizeof map / sizeof map[0], "g.id", filters, n_filters, err) <
        0) {
        nb_buf_free(&q.sql);
        return -1;
    }
    nb_buf_puts(&q.sql, " ORDER BY g.id");
    PGresult *res = svc_sql_run(gw, &q, err);
    if (!res) {
        return -1;
    }
    *n = (size_t)PQntuples(res);
    *out = nb_arena_zalloc(arena, sizeof **out * (*n ? *n : 1));
    for (int r = 0; r < (int)*n; r++) {
        struct gw_vpn_gateway *g = &(*out)[r];
        g->id = svc_col(res, r, 0, arena);
        g->owner_id = svc_col(res, r, 1, arena);
        g->type = svc_col(res, r, 2, arena);
        g->state = svc_col(res, r, 3, arena);
        g->zone = svc_col(res, r, 4, arena);
        g->amazon_side_asn = atoll(PQgetvalue(res, r, 5));
        g->vpc_id = svc_col(res, r, 6, arena);
        svc_parse_tags(PQgetvalue(res, r, 7), arena, &g->tags, &g->n_tags);
    }
    PQclear(res);
    return svc_check_all_found(ids, n_ids, *out, sizeof **out, offsetof(struct gw_vpn_gateway, id),
                               *n, "vpnGateway ID", "InvalidVpnGatewayID.NotFound", arena, err);
}

/* --- customer gateways -------------------------------------------------------------------- */

static int check_device_name(const char *name, struct nb_error *err)
{
    size_t len = name ? strlen(name) : 0;
    bool ok = len <= DEVICE_NAME_MAX;
    for (size_t i = 0; i < len && ok; i++) {
        ok = (unsigned char)name[i] >= 0x20 && name[i] != 0x7f;
    }
    if (!ok) {
        return edge_fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                         "Value for parameter DeviceName is invalid: at most %d characters, no "
                         "control characters",
                         DEVICE_NAME_MAX);
    }
    return 0;
}

int gw_cgw_create(struct gw_ctx *gw, const struct gw_principal *who, const char *type,
                  const char *ip, long long asn, const char *device_name, const struct gw_tag *tags,
                  size_t n_tags, struct nb_arena *arena, struct gw_customer_gateway *out,
                  struct nb_error *err)
{
    char id[NB_ID_MAX], asn_s[24];
    uint32_t a;
    if (!asn) {
        asn = DEFAULT_CGW_ASN;
    }
    if (gw_require_writer(who, err) < 0 || check_type(type, err) < 0 ||
        edge_require(ip, "IpAddress", err) < 0 || check_asn("BgpAsn", asn, err) < 0 ||
        check_device_name(device_name, err) < 0 || edge_new_id("cgw", id, err) < 0) {
        return -1;
    }
    if (gw_ipv4_parse(ip, &a) < 0) {
        return edge_fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                         "Value (%.64s) for parameter ipAddress is invalid: not an IPv4 address",
                         ip);
    }
    snprintf(asn_s, sizeof asn_s, "%lld", asn);
    struct nb_pg_conn *conn = edge_begin(gw, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    char found[NB_ID_MAX];
    const char *p[] = {id, who->tenant_id, type, ip, asn_s, device_name ? device_name : ""};
    PGresult *res = nb_pg_exec(conn,
                               "INSERT INTO customer_gateways (id, tenant_id, type, ip_address, "
                               "bgp_asn, device_name) VALUES ($1, $2, $3, $4::inet, $5::bigint, "
                               "$6) ON CONFLICT (tenant_id, type, ip_address, bgp_asn, "
                               "device_name) DO NOTHING RETURNING 1",
                               6, p, err);
    if (!res) {
        goto done;
    }
    bool made = PQntuples(res) == 1;
    PQclear(res);
    res = NULL;
    if (made) {
        snprintf(found, sizeof found, "%s", id);
        if (edge_put_tags(conn, who->tenant_id, id, "customer-gateway", tags, n_tags, err) < 0) {
            goto done;
        }
    } else { /* the identical gateway that exists */
        if (!(res = nb_pg_exec(conn,
                               "SELECT id FROM customer_gateways WHERE tenant_id = $1 "
                               "AND type = $2 AND ip_address = $3::inet AND bgp_asn = $4::bigint "
                               "AND device_name = $5",
                               5, p + 1, err))) {
            goto done;
        }
        if (PQntuples(res) != 1) {
            nb_error_set(err, NB_ERR_CONFLICT, "a concurrent request changed customer gateways");
            goto done;
        }
        snprintf(found, sizeof found, "%s", PQgetvalue(res, 0, 0));
    }
    rc = nb_pg_commit(conn, err);

done:
    PQclear(res);
    nb_pg_release(conn);
    if (rc < 0) {
        return -1;
    }
    const char *ids[] = {found};
    struct gw_customer_gateway *g;
    size_t n;
    if (gw_cgws_describe(gw, who, ids, 1, NULL, 0, arena, &g, &n, err) < 0) {
        return -1;
    }
    *out = g[0];
    return 0;
}

int gw_cgw_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                  struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0 || edge_require(id, "CustomerGatewayId", err) < 0 ||
        edge_check_id(id, "cgw", "InvalidCustomerGatewayID.Malformed", err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = edge_begin(gw, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    char live[256];
    const char *p[] = {id};
    if (edge_lock_row(conn, "customer_gateways", "id", "UPDATE", who->tenant_id, id,
                      "customerGateway ID", "InvalidCustomerGatewayID.NotFound", err) < 0 ||
        live_connections(conn, "customer_gateway_id", id, live, sizeof live, err) < 0) {
        goto done;
    }
    if (live[0]) {
        edge_fail(err, NB_ERR_CONFLICT, "IncorrectState",
                  "The customer gateway '%s' is in use by connections %s", id, live);
        goto done;
    }
    if (drop_connection_tags(conn, who->tenant_id, "customer_gateway_id", id, err) < 0 ||
        edge_drop_tags(conn, who->tenant_id, id, err) < 0 ||
        edge_exec(conn, "DELETE FROM customer_gateways WHERE id = $1", 1, p, err) < 0) {
        goto done;
    }
    rc = nb_pg_commit(conn, err);

done:
    nb_pg_release(conn);
    return rc;
}

int gw_cgws_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *const *ids,
                     size_t n_ids, const struct gw_filter *filters, size_t n_filters,
                     struct nb_arena *arena, struct gw_customer_gateway **out, size_t *n,
                     struct nb_error *err)
{
    static const char *const map[][2] = {
        {"customer-gateway-id", "g.id"},
        {"ip-address", "host(g.ip_address)"},
        {"bgp-asn", "g.bgp_asn::text"},
        {"state", "g.state"},
        {"type", "g.type"},
        {"device-name", "g.device_name"},
    };
    if (svc_check_id_form(ids, n_ids, "cgw", "InvalidCustomerGatewayID.Malformed", err) < 0) {
        return -1;
    }
    struct svc_sql q;
    svc_sql_init(&q, arena);
    nb_buf_printf(&q.sql,
                  "SELECT g.id, g.tenant_id, g.type, g.state, host(g.ip_address), g.bgp_asn, "
                  "NULLIF(g.device_name, ''), " EDGE_TAGS_OF(
                      "g.id") " FROM customer_gateways g WHERE g.tenant_id = %s",
                  svc_sql_param(&q, who->tenant_id));
    if (n_ids) {
        nb_buf_printf(&q.sql, " AND g.id = ANY(%s)", svc_sql_array(&q, ids, n_ids));
    }
    if (edge_add_filters(&q, map, sizeof map / sizeof map[0], "g.id", filters, n_filters, err) <
        0) {
        nb_buf_free(&q.sql);
        return -1;
    }
    nb_buf_puts(&q.sql, " ORDER BY g.id");
    PGresult *res = svc_sql_run(gw, &q, err);
    if (!res) {
        return -1;
    }
    *n = (size_t)PQntuples(res);
    *out = nb_arena_zalloc(arena, sizeof **out * (*n ? *n : 1));
    for (int r = 0; r < (int)*n; r++) {
        struct gw_customer_gateway *g = &(*out)[r];
        g->id = svc_col(res, r, 0, arena);
        g->owner_id = svc_col(res, r, 1, arena);
        g->type = svc_col(res, r, 2, arena);
        g->state = svc_col(res, r, 3, arena);
        g->ip_address = svc_col(res, r, 4, arena);
        g->bgp_asn = atoll(PQgetvalue(res, r, 5));
        g->device_name = svc_col(res, r, 6, arena);
        svc_parse_tags(PQgetvalue(res, r, 7), arena, &g->tags, &g->n_tags);
    }
    PQclear(res);
    return svc_check_all_found(ids, n_ids, *out, sizeof **out,
                               offsetof(struct gw_customer_gateway, id), *n, "customerGateway ID",
                               "InvalidCustomerGatewayID.NotFound", arena, err);
}

/* --- VPN connections ---------------------------------------------------------------------- */

/* A random pre-shared key as EC2 makes them: letters, digits, '.' and '_', starting with a
 * letter (never with '0'). The alphabet has 64 characters, so a byte's low six bits pick one
 * without bias. */
static int make_psk(char psk[PSK_LEN + 1], struct nb_error *err)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
    unsigned char r[PSK_LEN];
    if (nb_random_bytes(r, sizeof r) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not draw a pre-shared key");
        return -1;
    }
    psk[0] = alphabet[r[0] % 52];
    for (size_t i = 1; i < PSK_LEN; i++) {
        psk[i] = alphabet[r[i] & 63];
    }
    psk[PSK_LEN] = '\0';
    return 0;
}

int gw_vpn_create(struct gw_ctx *gw, const struct gw_principal *who,
                  const struct gw_vpn_request *rq, struct nb_arena *arena,
                  struct gw_vpn_connection *out, struct nb_error *err)
{
    char id[NB_ID_MAX], earlier[NB_ID_MAX], psk[PSK_LEN + 1], ip[16];
    struct edge_pool pool;
    if (gw_require_writer(who, err) < 0 || check_type(rq->type, err) < 0 ||
        edge_require(rq->customer_gateway_id, "CustomerGatewayId", err) < 0 ||
        edge_require(rq->vpn_gateway_id, "VpnGatewayId", err) < 0 ||
        edge_check_id(rq->customer_gateway_id, "cgw", "InvalidCustomerGatewayID.Malformed", err) <
            0 ||
        edge_check_id(rq->vpn_gateway_id, "vgw", "InvalidVpnGatewayID.Malformed", err) < 0) {
        return -1;
    }
    if (!rq->static_routes_only) {
        return edge_fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                         "nubo's VPN connections route statically (no BGP): "
                         "Options.StaticRoutesOnly must be true");
    }
    if (edge_pool_get(gw, "VpnConnectionLimitExceeded", &pool, err) < 0 ||
        edge_new_id("vpn", id, err) < 0 || make_psk(psk, err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = edge_begin(gw, err);
    if (!conn) {
        return -1;
    }
    struct nb_buf key = NB_BUF_INIT;
    nb_buf_printf(&key, "type %s\ncgw %s\nvgw %s\n", rq->type, rq->customer_gateway_id,
                  rq->vpn_gateway_id);
    edge_key_tags(&key, rq->tags, rq->n_tags);
    const char *p[] = {id, who->tenant_id, rq->vpn_gateway_id, rq->customer_gateway_id, ip, psk};
    int rc = rq->client_token ? edge_claim_token(conn, who->tenant_id, rq->client_token,
                                                 "CreateVpnConnection", key.data, id, earlier, err)
                              : 1;
    /* The terminating host: the 'up' host with the lowest id, none when there is none. */
    if (rc == 1 &&
        (edge_lock_row(conn, "customer_gateways", "id", "SHARE", who->tenant_id,
                       rq->customer_gateway_id, "customerGateway ID",
                       "InvalidCustomerGatewayID.NotFound", err) < 0 ||
         edge_lock_row(conn, "vpn_gateways", "id", "SHARE", who->tenant_id, rq->vpn_gateway_id,
                       "vpnGateway ID", "InvalidVpnGatewayID.NotFound", err) < 0 ||
         edge_pool_take(conn, &pool, "VpnConnectionLimitExceeded", ip, err) < 0 ||
         edge_exec(conn,
                   "INSERT INTO vpn_connections (id, tenant_id, vpn_gateway_id, "
                   "customer_gateway_id, outside_ip, psk, host_id) VALUES ($1, $2, $3, $4, "
                   "$5::inet, $6, (SELECT h.id FROM hosts h WHERE h.state = 'up' "
                   "ORDER BY h.id LIMIT 1))",
                   6, p, err) < 0 ||
         edge_put_tags(conn, who->tenant_id, id, "vpn-connection", rq->tags, rq->n_tags, err) < 0 ||
         nb_pg_commit(conn, err) < 0)) {
        rc = -1;
    }
    nb_pg_release(conn);
    nb_buf_free(&key);
    if (rc < 0) {
        return -1;
    }
    const char *ids[] = {rc ? id : earlier};
    struct gw_vpn_connection *v;
    size_t n;
    if (gw_vpns_describe(gw, who, ids, 1, NULL, 0, arena, &v, &n, err) < 0) {
        return -1;
    }
    *out = v[0];
    return 0;
}

/* Locks the tenant's live connection 'id' FOR UPDATE. Returns 0, or -1 with 'err'. */
static int lock_connection(struct nb_pg_conn *conn, const struct gw_principal *who, const char *id,
                           struct nb_error *err)
{
    const char *p[] = {id, who->tenant_id};
    PGresult *res = nb_pg_exec(conn,
                               "SELECT 1 FROM vpn_connections WHERE id = $1 AND tenant_id = $2 "
                               "AND state <> 'deleted' FOR UPDATE",
                               2, p, err);
    if (!res) {
        return -1;
    }
    int found = PQntuples(res);
    PQclear(res);
    if (!found) {
        return edge_fail(err, NB_ERR_NOT_FOUND, "InvalidVpnConnectionID.NotFound",
                         "The vpnConnection ID '%s' does not exist", id);
    }
    return 0;
}

int gw_vpn_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                  struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0 || edge_require(id, "VpnConnectionId", err) < 0 ||
        edge_check_id(id, "vpn", "InvalidVpnConnectionID.Malformed", err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = edge_begin(gw, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    const char *p[] = {id};
    if (lock_connection(conn, who, id, err) < 0 ||
        edge_exec(conn,
                  "UPDATE vpn_connections SET state = 'deleted', deleted_at = now(), "
                  "tunnel_status = 'DOWN', tunnel_status_at = now(), "
                  "tunnel_status_message = '' WHERE id = $1",
                  1, p, err) < 0) {
        goto done;
    }
    rc = nb_pg_commit(conn, err);

done:
    nb_pg_release(conn);
    return rc;
}

int gw_vpn_route_change(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                        const char *destination, bool add, struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0 || edge_require(id, "VpnConnectionId", err) < 0 ||
        edge_check_id(id, "vpn", "InvalidVpnConnectionID.Malformed", err) < 0 ||
        edge_check_cidr("DestinationCidrBlock", destination, err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = edge_begin(gw, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    const char *p[] = {id, destination};
    PGresult *res = NULL;
    if (lock_connection(conn, who, id, err) < 0) {
        goto done;
    }
    if (add) {
        if (!(res = nb_pg_exec(conn,
                               "SELECT v.cidr_block::text FROM vpn_connections c "
                               "JOIN vpn_gateways g ON g.id = c.vpn_gateway_id "
                               "JOIN vpcs v ON v.id = g.vpc_id WHERE c.id = $1 "
                               "AND v.cidr_block && $2::cidr",
                               2, p, err))) {
            goto done;
        }
        if (PQntuples(res)) {
            edge_fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                      "The destination %s overlaps the VPC's CIDR %s", destination,
                      PQgetvalue(res, 0, 0));
            goto done;
        }
        if (edge_exec(conn,
                      "INSERT INTO vpn_connection_routes (vpn_connection_id, destination) "
                      "VALUES ($1, $2::cidr)",
                      2, p, err) < 0) {
            if (err && err->code == NB_ERR_CONFLICT) {
                edge_fail(err, NB_ERR_CONFLICT, "RouteAlreadyExists",
                          "The route identified by %s already exists.", destination);
            }
            goto done;
        }
    } else {
        if (!(res = nb_pg_exec(conn,
                               "DELETE FROM vpn_connection_routes WHERE vpn_connection_id = $1 "
                               "AND destination = $2::cidr RETURNING 1",
                               2, p, err))) {
            goto done;
        }
        if (PQntuples(res) == 0) {
            edge_fail(err, NB_ERR_NOT_FOUND, "InvalidRoute.NotFound",
                      "The route identified by %s does not exist in connection %s", destination,
                      id);
            goto done;
        }
    }
    rc = nb_pg_commit(conn, err);

done:
    PQclear(res);
    nb_pg_release(conn);
    return rc;
}

static void parse_vpn_routes(const char *text, const char *state, struct nb_arena *arena,
                             struct gw_vpn_connection *v)
{
    json_t *arr = json_loads(text, 0, NULL);
    size_t total = json_is_array(arr) ? json_array_size(arr) : 0, i;
    struct gw_vpn_route *r = nb_arena_zalloc(arena, sizeof *r * (total ? total : 1));
    json_t *x;
    json_array_foreach(arr, i, x)
    {
        r[i].destination = nb_arena_strdup(arena, json_string_value(x) ?: "");
        r[i].state = strcmp(state, "deleted") ? "available" : "deleted";
    }
    json_decref(arr);
    v->routes = r;
    v->n_routes = total;
}

int gw_vpns_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *const *ids,
                     size_t n_ids, const struct gw_filter *filters, size_t n_filters,
                     struct nb_arena *arena, struct gw_vpn_connection **out, size_t *n,
                     struct nb_error *err)
{
    static const char *const map[][2] = {
        {"vpn-connection-id", "c.id"},
        {"state", "c.state"},
        {"customer-gateway-id", "c.customer_gateway_id"},
        {"vpn-gateway-id", "c.vpn_gateway_id"},
        {"type", "c.type"},
        {"option.static-routes-only", "c.static_routes_only::text"},
        {"bgp-asn", "g.bgp_asn::text"},
        {"route.destination-cidr-block",
         "EXISTS (SELECT 1 FROM vpn_connection_routes x WHERE x.vpn_connection_id = c.id "
         "AND x.destination::text = ANY(%s))"},
    };
    if (svc_check_id_form(ids, n_ids, "vpn", "InvalidVpnConnectionID.Malformed", err) < 0) {
        return -1;
    }
    struct svc_sql q;
    svc_sql_init(&q, arena);
    nb_buf_printf(
        &q.sql,
        "SELECT c.id, c.tenant_id, c.type, c.state, c.customer_gateway_id, c.vpn_gateway_id, "
        "c.static_routes_only, host(c.outside_ip), host(g.ip_address), c.psk, w.vpc_id, "
        "v.cidr_block::text, c.host_id, COALESCE((SELECT json_agg(x.destination::text "
        "ORDER BY x.destination) FROM vpn_connection_routes x WHERE x.vpn_connection_id = c.id), "
        "'[]'), c.tunnel_status, floor(date_part('epoch', c.tunnel_status_at) * 1000)::bigint, "
        "c.tunnel_status_message, " EDGE_TAGS_OF(
            "c.id") " FROM vpn_connections c JOIN customer_gateways g ON g.id = "
                    "c.customer_gateway_id JOIN vpn_gateways w ON w.id = c.vpn_gateway_id "
                    "LEFT JOIN vpcs v ON v.id = w.vpc_id WHERE c.tenant_id = %s AND "
                    "(c.state <> 'deleted' OR c.deleted_at > now() - interval '1 hour')",
        svc_sql_param(&q, who->tenant_id));
    if (n_ids) {
        nb_buf_printf(&q.sql, " AND c.id = ANY(%s)", svc_sql_array(&q, ids, n_ids));
    }
    if (edge_add_filters(&q, map, sizeof map / sizeof map[0], "c.id", filters, n_filters, err) <
        0) {
        nb_buf_free(&q.sql);
        return -1;
    }
    nb_buf_puts(&q.sql, " ORDER BY c.id");
    PGresult *res = svc_sql_run(gw, &q, err);
    if (!res) {
        return -1;
    }
    *n = (size_t)PQntuples(res);
    *out = nb_arena_zalloc(arena, sizeof **out * (*n ? *n : 1));
    for (int r = 0; r < (int)*n; r++) {
        struct gw_vpn_connection *v = &(*out)[r];
        v->id = svc_col(res, r, 0, arena);
        v->owner_id = svc_col(res, r, 1, arena);
        v->type = svc_col(res, r, 2, arena);
        v->state = svc_col(res, r, 3, arena);
        v->customer_gateway_id = svc_col(res, r, 4, arena);
        v->vpn_gateway_id = svc_col(res, r, 5, arena);
        v->static_routes_only = PQgetvalue(res, r, 6)[0] == 't';
        v->outside_ip = svc_col(res, r, 7, arena);
        v->customer_ip = svc_col(res, r, 8, arena);
        v->psk = svc_col(res, r, 9, arena);
        v->vpc_id = svc_col(res, r, 10, arena);
        v->vpc_cidr = svc_col(res, r, 11, arena);
        v->host_id = svc_col(res, r, 12, arena);
        parse_vpn_routes(PQgetvalue(res, r, 13), v->state, arena, v);
        v->tunnel_status = svc_col(res, r, 14, arena);
        v->tunnel_status_ms = atoll(PQgetvalue(res, r, 15));
        v->tunnel_status_message = svc_col(res, r, 16, arena);
        svc_parse_tags(PQgetvalue(res, r, 17), arena, &v->tags, &v->n_tags);
    }
    PQclear(res);
    return svc_check_all_found(ids, n_ids, *out, sizeof **out,
                               offsetof(struct gw_vpn_connection, id), *n, "vpnConnection ID",
                               "InvalidVpnConnectionID.NotFound", arena, err);
}

/* --- the customer gateway configuration --------------------------------------------------- */

static void elem(struct nb_buf *b, const char *indent, const char *tag, const char *text)
{
    nb_buf_puts(b, indent);
    nb_buf_xml_elem(b, tag, text);
    nb_buf_puts(b, "\n");
}

void gw_vpn_config_xml(struct nb_buf *b, const struct gw_vpn_connection *v)
{
    nb_buf_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<vpn_connection id=\"");
    nb_buf_xml_escape(b, v->id);
    nb_buf_puts(b, "\">\n");
    elem(b, "  ", "customer_gateway_id", v->customer_gateway_id);
    elem(b, "  ", "vpn_gateway_id", v->vpn_gateway_id);
    elem(b, "  ", "vpn_connection_type", v->type);
    elem(b, "  ", "vpn_connection_attributes", "NoBGPVPNConnection");
    nb_buf_puts(b, "  <ipsec_tunnel>\n"
                   "    <customer_gateway>\n"
                   "      <tunnel_outside_address>\n");
    elem(b, "        ", "ip_address", v->customer_ip);
    nb_buf_puts(b, "      </tunnel_outside_address>\n"
                   "    </customer_gateway>\n"
                   "    <vpn_gateway>\n"
                   "      <tunnel_outside_address>\n");
    elem(b, "        ", "ip_address", v->outside_ip);
    nb_buf_puts(b, "      </tunnel_outside_address>\n");
    if (v->vpc_cidr) {
        elem(b, "      ", "vpc_cidr_block", v->vpc_cidr);
    }
    nb_buf_puts(b, "    </vpn_gateway>\n"
                   "    <ike>\n"
                   "      <version>" IKE_VERSION "</version>\n"
                   "      <authentication_protocol>" IKE_AUTH "</authentication_protocol>\n"
                   "      <encryption_protocol>" IKE_ENCRYPTION "</encryption_protocol>\n"
                   "      <lifetime>" IKE_LIFETIME "</lifetime>\n"
                   "      <perfect_forward_secrecy>" PFS_GROUP "</perfect_forward_secrecy>\n"
                   "      <mode>main</mode>\n"
                   "      <proposal>" IKE_PROPOSAL "</proposal>\n");
    elem(b, "      ", "pre_shared_key", v->psk);
    nb_buf_puts(b, "    </ike>\n"
                   "    <ipsec>\n"
                   "      <protocol>esp</protocol>\n"
                   "      <authentication_protocol>" ESP_AUTH "</authentication_protocol>\n"
                   "      <encryption_protocol>" ESP_ENCRYPTION "</encryption_protocol>\n"
                   "      <lifetime>" ESP_LIFETIME "</lifetime>\n"
                   "      <perfect_forward_secrecy>" PFS_GROUP "</perfect_forward_secrecy>\n"
                   "      <mode>tunnel</mode>\n"
                   "      <proposal>" ESP_PROPOSAL "</proposal>\n"
                   "      <clear_df_bit>true</clear_df_bit>\n"
                   "      <fragmentation_before_encryption>true</fragmentation_before_encryption>\n"
                   "      <tcp_mss_adjustment>1379</tcp_mss_adjustment>\n"
                   "      <dead_peer_detection>\n"
                   "        <delay>10</delay>\n"
                   "        <retries>3</retries>\n"
                   "      </dead_peer_detection>\n"
                   "    </ipsec>\n"
                   "  </ipsec_tunnel>\n");
    if (v->n_routes) {
        nb_buf_puts(b, "  <static_routes>\n");
        for (size_t i = 0; i < v->n_routes; i++) {
            nb_buf_puts(b, "    <route>\n");
            elem(b, "      ", "destination_cidr_block", v->routes[i].destination);
            nb_buf_puts(b, "    </route>\n");
        }
        nb_buf_puts(b, "  </static_routes>\n");
    }
    nb_buf_puts(b, "</vpn_connection>\n");
}
