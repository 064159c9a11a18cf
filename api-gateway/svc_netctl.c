/* Desired network state per host (svc_netctl.h). One query builds the whole document in
 * PostgreSQL, in one snapshot, so that a host never sees a port without its network or a rule
 * without its group. */
#include "svc_netctl.h"

#include "svc_edge.h"

#include "gateway.h"
#include "svc_remote_access.h"
#include "svc_sql.h"
#include "nubo/config.h"
#include "nubo/error.h"
#include "nubo/json.h"
#include "nubo/pg.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* $1 host id, $2 public network CIDR ('' for none), $3 its gateway. */
static const char STATE_SQL[] =
    "WITH ver AS (SELECT COALESCE((SELECT desired FROM netctl_versions WHERE host_id = $1), 0) AS "
    "v),"
    " vpns AS ("
    "  SELECT c.id, g.vpc_id, c.outside_ip, c.psk, cg.ip_address AS peer_ip, c.host_id,"
    "         h.tunnel_ip AS host_tunnel"
    "  FROM vpn_connections c JOIN vpn_gateways g ON g.id = c.vpn_gateway_id"
    "  JOIN customer_gateways cg ON cg.id = c.customer_gateway_id"
    "  JOIN hosts h ON h.id = c.host_id"
    "  WHERE c.state IN ('pending', 'available') AND g.vpc_id IS NOT NULL),"
    " my_vpcs AS ("
    "  SELECT n.vpc_id FROM network_interfaces n JOIN instances i ON i.id = n.instance_id"
    "  WHERE i.host_id = $1"
    "  UNION SELECT vpc_id FROM vpns WHERE host_id = $1"
    "  UNION SELECT vpc_id FROM remote_access_endpoints WHERE host_id = $1),"
    " ports AS ("
    "  SELECT n.id, n.vpc_id, n.subnet_id, n.mac_address, n.private_ip, i.host_id, h.tunnel_ip"
    "  FROM network_interfaces n JOIN instances i ON i.id = n.instance_id"
    "  JOIN hosts h ON h.id = i.host_id"
    "  WHERE n.vpc_id IN (SELECT vpc_id FROM my_vpcs) AND i.state <> 'terminated'"
    "    AND (i.host_id = $1 OR h.tunnel_ip IS NOT NULL))"
    " SELECT json_build_object("
    "  'version', (SELECT v FROM ver),"
    "  'tunnel_ip', (SELECT host(tunnel_ip) FROM hosts WHERE id = $1),"
    "  'public', CASE WHEN $2::text <> '' THEN json_build_object('cidr', $2::text, 'gateway', "
    "$3::text) END,"
    "  'networks', COALESCE((SELECT json_agg(json_build_object("
    "     'vpc_id', v.id, 'segment', v.segment, 'cidr', v.cidr_block::text,"
    "     'routers', COALESCE((SELECT json_agg(host(network(s.cidr_block) + 1) ORDER BY "
    "s.cidr_block)"
    "                          FROM subnets s WHERE s.vpc_id = v.id), '[]'),"
    "     'internet_gateway', EXISTS (SELECT 1 FROM internet_gateways g WHERE g.vpc_id = v.id))"
    "     ORDER BY v.segment)"
    "   FROM vpcs v WHERE v.id IN (SELECT vpc_id FROM my_vpcs)), '[]'),"
    "  'ports', COALESCE((SELECT json_agg(json_build_object("
    "     'id', p.id, 'segment', v.segment, 'mac', p.mac_address::text, 'ip', host(p.private_ip),"
    "     'host', CASE WHEN p.host_id = $1 THEN NULL ELSE host(p.tunnel_ip) END,"
    "     'groups', COALESCE((SELECT json_agg(g.group_id ORDER BY g.group_id)"
    "                         FROM network_interface_groups g WHERE g.interface_id = p.id), '[]'),"
    "     'public_ip', (SELECT host(a.public_ip) FROM addresses a"
    "                   WHERE a.network_interface_id = p.id),"
    "     'internet', EXISTS (SELECT 1 FROM subnet_effective_routes r"
    "                 WHERE r.subnet_id = p.subnet_id AND r.gateway_id LIKE 'igw-%'"
    "                   AND r.state = 'active')) ORDER BY p.id)"
    "   FROM ports p JOIN vpcs v ON v.id = p.vpc_id), '[]'),"
    "  'groups', COALESCE((SELECT json_agg(json_build_object('id', sg.id, 'rules',"
    "     COALESCE((SELECT json_agg(json_strip_nulls(json_build_object("
    "        'direction', r.direction, 'protocol', r.protocol, 'from_port', r.from_port,"
    "        'to_port', r.to_port, 'cidr', r.cidr::text, 'group', r.ref_group_id)) ORDER BY r.id)"
    "       FROM security_group_rules r WHERE r.group_id = sg.id), '[]')) ORDER BY sg.id)"
    "   FROM security_groups sg WHERE sg.id IN (SELECT g.group_id FROM network_interface_groups g"
    "     JOIN ports p ON p.id = g.interface_id WHERE p.host_id = $1)), '[]'),"
    "  'vpn_connections', COALESCE((SELECT json_agg(json_build_object("
    "     'id', c.id, 'segment', v.segment, 'outside_ip', host(c.outside_ip),"
    "     'inside_ip', host(network(v.cidr_block) + 3), 'peer_ip', host(c.peer_ip), 'psk', c.psk,"
    "     'host', CASE WHEN c.host_id = $1 THEN NULL ELSE host(c.host_tunnel) END,"
    "     'remote_cidrs', COALESCE((SELECT json_agg(rt.destination::text ORDER BY rt.destination)"
    "        FROM vpn_connection_routes rt WHERE rt.vpn_connection_id = c.id), '[]'))"
    "     ORDER BY c.id)"
    "   FROM vpns c JOIN vpcs v ON v.id = c.vpc_id"
    "   WHERE c.vpc_id IN (SELECT vpc_id FROM my_vpcs)"
    "     AND (c.host_id = $1 OR c.host_tunnel IS NOT NULL)), '[]'),"
    /* Remote access (0013): the private key still sealed; gw_ra_unseal_state() opens it. */
    "  'remote_access', COALESCE((SELECT json_agg(json_build_object("
    "     'id', r.id, 'segment', v.segment, 'outside_ip', host(r.outside_ip),"
    "     'inside_ip', host(network(r.client_cidr) + 1), 'client_cidr', r.client_cidr::text,"
    "     'listen_port', r.listen_port,"
    "     'sealed_key', CASE WHEN r.host_id = $1 THEN r.private_key END,"
    "     'host', CASE WHEN r.host_id = $1 THEN NULL ELSE host(h.tunnel_ip) END,"
    "     'peers', CASE WHEN r.host_id = $1 THEN COALESCE((SELECT json_agg(json_build_object("
    "        'public_key', p.public_key, 'ip', host(p.address)) ORDER BY p.address)"
    "        FROM remote_access_peers p WHERE p.endpoint_id = r.id), '[]') ELSE '[]' END)"
    "     ORDER BY r.id)"
    "   FROM remote_access_endpoints r JOIN vpcs v ON v.id = r.vpc_id"
    "   JOIN hosts h ON h.id = r.host_id"
    "   WHERE r.vpc_id IN (SELECT vpc_id FROM my_vpcs)"
    "     AND (r.host_id = $1 OR h.tunnel_ip IS NOT NULL)), '[]'))::text";

/* A changed tunnel address: every host that shares a VPC with this one must retarget its
 * tunnel (and this host gets a version, so that it fetches at least once). */
static const char TUNNEL_SQL[] =
    "WITH upd AS (UPDATE hosts SET tunnel_ip = $2::inet WHERE id = $1"
    "             AND tunnel_ip IS DISTINCT FROM $2::inet RETURNING id),"
    " vpcs_here AS (SELECT DISTINCT n.vpc_id FROM network_interfaces n"
    "               JOIN instances i ON i.id = n.instance_id WHERE i.host_id = $1)"
    " SELECT netctl_bump(v.vpc_id, $1) FROM upd, vpcs_here v"
    " UNION ALL SELECT netctl_bump(NULL, $1) FROM upd";

char *gw_node_network(struct gw_ctx *gw, const char *host_id, const char *known,
                      const char *tunnel_ip, struct nb_error *err)
{
    struct in_addr a;
    if (tunnel_ip && inet_pton(AF_INET, tunnel_ip, &a) != 1) {
        nb_error_set(err, NB_ERR_INVALID, "tunnel_ip must be an IPv4 address");
        return NULL;
    }
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return NULL;
    }
    PGresult *res = NULL;
    char *out = NULL;
    if (tunnel_ip) {
        const char *p[] = {host_id, tunnel_ip};
        if (!(res = nb_pg_exec(conn, TUNNEL_SQL, 2, p, err))) {
            goto done;
        }
        PQclear(res);
    }
    if (known && *known) {
        const char *p[] = {host_id};
        if (!(res = nb_pg_exec(conn,
                               "SELECT COALESCE((SELECT desired FROM netctl_versions "
                               "WHERE host_id = $1), 0)::text",
                               1, p, err))) {
            goto done;
        }
        bool same = !strcmp(PQgetvalue(res, 0, 0), known);
        if (same) {
            if (asprintf(&out, "{\"version\":%s,\"unchanged\":true}", known) < 0) {
                out = NULL;
            }
        }
        PQclear(res);
        if (same) {
            goto done;
        }
    }
    /* The public network, as AllocateAddress sees it (svc_edge.c); none when not configured. */
    struct edge_pool pool = {.cidr = "", .gateway = ""};
    if (nb_config_get(gw->cfg, "network.public_pool", "")[0] &&
        edge_pool_get(gw, "AddressLimitExceeded", &pool, err) < 0) {
        goto done;
    }
    const char *p[] = {host_id, pool.cidr, pool.gateway};
    if ((res = nb_pg_exec(conn, STATE_SQL, 3, p, err))) {
        out = strdup(PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    if (out && strstr(out, "\"sealed_key\"")) {
        /* Only the host running an endpoint gets its private key, and only in the clear here. */
        json_t *doc = json_loads(out, 0, NULL);
        free(out);
        out = NULL;
        if (!doc || gw_ra_unseal_state(gw, doc, err) < 0) {
            if (!doc) {
                nb_error_set(err, NB_ERR_INTERNAL, "could not parse the desired network state");
            }
        } else {
            out = json_dumps(doc, JSON_COMPACT);
        }
        json_decref(doc);
    }

done:
    nb_pg_release(conn);
    return out;
}

int gw_node_network_applied(struct gw_ctx *gw, const char *host_id, const json_t *report,
                            struct nb_error *err)
{
    long long version, flows = 0, missing = 0;
    const char *error = NULL;
    if (nb_json_get_int(report, "version", true, -1, INT64_MAX, &version, err) < 0 ||
        nb_json_get_int(report, "flows", false, 0, INT32_MAX, &flows, err) < 0 ||
        nb_json_get_int(report, "ports_missing", false, 0, INT32_MAX, &missing, err) < 0) {
        return -1;
    }
    json_t *e = json_object_get(report, "error");
    if (e && !json_is_null(e) && nb_json_get_string(report, "error", true, &error, err) < 0) {
        return -1;
    }
    json_t *vpns = json_object_get(report, "vpn_connections");
    if (vpns && !json_is_array(vpns)) {
        nb_error_set(err, NB_ERR_INVALID, "\"vpn_connections\" must be an array");
        return -1;
    }
    char v[24], f[24], m[24];
    snprintf(v, sizeof v, "%lld", version);
    snprintf(f, sizeof f, "%lld", flows);
    snprintf(m, sizeof m, "%lld", missing);
    const char *p[] = {host_id, v, error, f, m};
    PGresult *res = svc_exec(gw,
                             "INSERT INTO netctl_versions AS n (host_id, applied, applied_at, "
                             "last_error, flows, ports_missing) "
                             "VALUES ($1, GREATEST($2::bigint, 0), now(), $3, $4, $5) "
                             "ON CONFLICT (host_id) DO UPDATE SET "
                             "applied = GREATEST(n.applied, EXCLUDED.applied), "
                             "applied_at = now(), last_error = $3, flows = $4, ports_missing = $5",
                             5, p, err);
    if (!res) {
        return -1;
    }
    PQclear(res);
    /* The VPN gateways this host serves: a connection becomes 'available' once its gateway runs,
     * and its tunnel is UP while the IKE and CHILD SAs are (vgwTelemetry). Only the host the
     * connection is bound to may say so. */
    for (size_t i = 0; vpns && i < json_array_size(vpns); i++) {
        const json_t *o = json_array_get(vpns, i);
        const char *id, *message = "";
        bool up;
        if (!json_is_object(o) || nb_json_get_string(o, "id", true, &id, err) < 0 ||
            nb_json_get_bool(o, "up", true, &up, err) < 0 ||
            nb_json_get_string(o, "message", false, &message, err) < 0) {
            return -1;
        }
        const char *q[] = {host_id, id, up ? "UP" : "DOWN", message};
        res = svc_exec(gw,
                       "UPDATE vpn_connections SET state = 'available', tunnel_status = $3,"
                       " tunnel_status_message = left($4, 200),"
                       " tunnel_status_at = CASE WHEN tunnel_status = $3 THEN tunnel_status_at"
                       "   ELSE now() END"
                       " WHERE id = $2 AND host_id = $1 AND state IN ('pending', 'available')"
                       "   AND (state <> 'available' OR tunnel_status <> $3"
                       "        OR tunnel_status_message <> left($4, 200))",
                       4, q, err);
        if (!res) {
            return -1;
        }
        PQclear(res);
    }
    return 0;
}
