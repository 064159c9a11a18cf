/* Remote access with WireGuard, service layer (see svc_remote_access.h). */
#include "svc_remote_access.h"

#include "auth.h"
#include "gateway.h"
#include "svc.h"
#include "svc_edge.h"
#include "svc_network.h"
#include "svc_sql.h"

#include "nubo/arena.h"
#include "nubo/buf.h"
#include "nubo/crypto.h"
#include "nubo/pg.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLIENT_MIN_PLEN 16
#define CLIENT_MAX_PLEN 29
#define TEXT_MAX        255
#define NOT_FOUND       "InvalidRemoteAccessEndpointID.NotFound"
#define PEER_NOT_FOUND  "InvalidRemoteAccessPeerID.NotFound"

int gw_ra_check_key(const char *param, const char *key, struct nb_error *err)
{
    if (edge_require(key, param, err) < 0) {
        return -1;
    }
    size_t len = 0;
    struct nb_error ignored = {0};
    void *raw = strlen(key) == GW_WG_KEY_LEN ? nb_base64_decode(key, &len, &ignored) : NULL;
    free(raw);
    if (!raw || len != 32) {
        return edge_fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                         "Value for parameter %s is invalid: a WireGuard key is the base64 of 32 "
                         "bytes (44 characters, as \"wg pubkey\" prints it)",
                         param);
    }
    return 0;
}

static int base64_key(const unsigned char raw[32], char out[GW_WG_KEY_LEN + 1])
{
    char *text = nb_base64_encode(raw, 32);
    int ok = text && strlen(text) == GW_WG_KEY_LEN;
    if (ok) {
        memcpy(out, text, GW_WG_KEY_LEN + 1);
    }
    free(text);
    return ok ? 0 : -1;
}

int gw_ra_keypair(char priv[GW_WG_KEY_LEN + 1], char pub[GW_WG_KEY_LEN + 1], struct nb_error *err)
{
    unsigned char raw_priv[32], raw_pub[32];
    size_t lpriv = sizeof raw_priv, lpub = sizeof raw_pub;
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    int ok = key && EVP_PKEY_get_raw_private_key(key, raw_priv, &lpriv) == 1 &&
             EVP_PKEY_get_raw_public_key(key, raw_pub, &lpub) == 1 && lpriv == 32 && lpub == 32;
    EVP_PKEY_free(key);
    if (ok) {
        /* Clamped as "wg genkey" stores it (X25519 clamps anyway: the public key is the same). */
        raw_priv[0] &= 248;
        raw_priv[31] = (unsigned char)((raw_priv[31] & 127) | 64);
        ok = base64_key(raw_priv, priv) == 0 && base64_key(raw_pub, pub) == 0;
    }
    OPENSSL_cleanse(raw_priv, sizeof raw_priv);
    if (!ok) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not make an X25519 key pair");
        return -1;
    }
    return 0;
}

static int check_text(const char *param, const char *text, struct nb_error *err)
{
    if (text && strlen(text) > TEXT_MAX) {
        return edge_fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                         "Value for parameter %s is invalid: at most %d characters", param,
                         TEXT_MAX);
    }
    return 0;
}

static int check_endpoint_id(const char *id, struct nb_error *err)
{
    return edge_check_id(id, "rae", "InvalidRemoteAccessEndpointID.Malformed", err);
}

/* --- endpoints ---------------------------------------------------------------------------- */

int gw_ra_create(struct gw_ctx *gw, const struct gw_principal *who, const char *vpc_id,
                 const char *client_cidr, const char *description, struct nb_arena *arena,
                 struct gw_ra_endpoint *out, struct nb_error *err)
{
    char id[NB_ID_MAX], ip[16], priv[GW_WG_KEY_LEN + 1], pub[GW_WG_KEY_LEN + 1], port[8];
    struct edge_pool pool;
    uint32_t addr;
    int len;
    if (gw_require_writer(who, err) < 0 || edge_require(vpc_id, "vpc_id", err) < 0 ||
        edge_check_id(vpc_id, "vpc", "InvalidVpcID.Malformed", err) < 0 ||
        edge_check_cidr("client_cidr", client_cidr, err) < 0 ||
        check_text("description", description, err) < 0) {
        return -1;
    }
    gw_cidr_parse(client_cidr, &addr, &len);
    if (len < CLIENT_MIN_PLEN || len > CLIENT_MAX_PLEN) {
        return edge_fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                         "Value (%s) for parameter client_cidr is invalid: a /%d to /%d block",
                         client_cidr, CLIENT_MIN_PLEN, CLIENT_MAX_PLEN);
    }
    if (edge_pool_get(gw, "RemoteAccessLimitExceeded", &pool, err) < 0 ||
        edge_new_id("rae", id, err) < 0 || gw_ra_keypair(priv, pub, err) < 0) {
        return -1;
    }
    char *sealed = nb_seal(gw->master_key, priv, strlen(priv), id, err);
    OPENSSL_cleanse(priv, sizeof priv);
    if (!sealed) {
        return -1;
    }
    snprintf(port, sizeof port, "%d", GW_WG_PORT);
    struct nb_pg_conn *conn = edge_begin(gw, err);
    if (!conn) {
        free(sealed);
        return -1;
    }
    int rc = -1;
    long long overlap = 0;
    const char *po[] = {vpc_id, client_cidr};
    const char *p[] = {id, who->tenant_id,    vpc_id, client_cidr, pub, sealed,
                       ip, description ?: "", port};
    if (edge_lock_row(conn, "vpcs", "id", "SHARE", who->tenant_id, vpc_id, "vpc ID",
                      "InvalidVpcID.NotFound", err) < 0 ||
        edge_count(conn, "SELECT count(*) FROM vpcs WHERE id = $1 AND cidr_block && $2::cidr", 2,
                   po, &overlap, err) < 0) {
        goto done;
    }
    if (overlap) {
        edge_fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                  "The client CIDR %s overlaps the CIDR of VPC '%s'", client_cidr, vpc_id);
        goto done;
    }
    /* The host: the 'up' host with the lowest id, as for VPN connections. */
    if (edge_pool_take(conn, &pool, "RemoteAccessLimitExceeded", ip, err) < 0 ||
        edge_exec(conn,
                  "INSERT INTO remote_access_endpoints (id, tenant_id, vpc_id, client_cidr, "
                  "public_key, private_key, outside_ip, description, listen_port, host_id) "
                  "VALUES ($1, $2, $3, $4::cidr, $5, $6, $7::inet, $8, $9::int, (SELECT h.id "
                  "FROM hosts h WHERE h.state = 'up' ORDER BY h.id LIMIT 1))",
                  9, p, err) < 0 ||
        nb_pg_commit(conn, err) < 0) {
        goto done;
    }
    rc = 0;
done:
    nb_pg_release(conn);
    free(sealed);
    if (rc < 0) {
        return -1;
    }
    struct gw_ra_endpoint *e;
    size_t n;
    if (gw_ra_describe(gw, who, id, arena, &e, &n, err) < 0) {
        return -1;
    }
    *out = e[0];
    return 0;
}

int gw_ra_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                 struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0 || edge_require(id, "id", err) < 0 ||
        check_endpoint_id(id, err) < 0) {
        return -1;
    }
    const char *p[] = {id, who->tenant_id};
    PGresult *res = svc_exec(gw,
                             "DELETE FROM remote_access_endpoints WHERE id = $1 AND tenant_id = $2 "
                             "RETURNING 1",
                             2, p, err);
    if (!res) {
        return -1;
    }
    int found = PQntuples(res);
    PQclear(res);
    if (!found) {
        return edge_fail(err, NB_ERR_NOT_FOUND, NOT_FOUND,
                         "The remote-access endpoint '%s' does not exist", id);
    }
    return 0;
}

int gw_ra_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                   struct nb_arena *arena, struct gw_ra_endpoint **out, size_t *n,
                   struct nb_error *err)
{
    if (id && check_endpoint_id(id, err) < 0) {
        return -1;
    }
    const char *p[] = {who->tenant_id, id};
    PGresult *res =
        svc_exec(gw,
                 "SELECT e.id, e.tenant_id, e.vpc_id, v.cidr_block::text, e.client_cidr::text, "
                 "e.public_key, host(e.outside_ip), e.listen_port, e.host_id, e.description, "
                 "(SELECT count(*) FROM remote_access_peers x WHERE x.endpoint_id = e.id) "
                 "FROM remote_access_endpoints e JOIN vpcs v ON v.id = e.vpc_id "
                 "WHERE e.tenant_id = $1 AND ($2::text IS NULL OR e.id = $2) ORDER BY e.id",
                 2, p, err);
    if (!res) {
        return -1;
    }
    *n = (size_t)PQntuples(res);
    *out = nb_arena_zalloc(arena, sizeof **out * (*n ? *n : 1));
    for (int r = 0; r < (int)*n; r++) {
        struct gw_ra_endpoint *e = &(*out)[r];
        e->id = svc_col(res, r, 0, arena);
        e->owner_id = svc_col(res, r, 1, arena);
        e->vpc_id = svc_col(res, r, 2, arena);
        e->vpc_cidr = svc_col(res, r, 3, arena);
        e->client_cidr = svc_col(res, r, 4, arena);
        e->public_key = svc_col(res, r, 5, arena);
        e->outside_ip = svc_col(res, r, 6, arena);
        e->listen_port = atoi(PQgetvalue(res, r, 7));
        e->host_id = svc_col(res, r, 8, arena);
        e->state = e->host_id ? "available" : "pending";
        e->description = svc_col(res, r, 9, arena);
        e->n_peers = atoll(PQgetvalue(res, r, 10));
    }
    PQclear(res);
    if (id && *n == 0) {
        return edge_fail(err, NB_ERR_NOT_FOUND, NOT_FOUND,
                         "The remote-access endpoint '%s' does not exist", id);
    }
    return 0;
}

/* --- peers -------------------------------------------------------------------------------- */

static void peer_of_row(PGresult *res, int r, struct nb_arena *arena, struct gw_ra_peer *p)
{
    p->id = svc_col(res, r, 0, arena);
    p->endpoint_id = svc_col(res, r, 1, arena);
    p->name = svc_col(res, r, 2, arena);
    p->public_key = svc_col(res, r, 3, arena);
    p->address = svc_col(res, r, 4, arena);
}

#define PEER_COLUMNS "p.id, p.endpoint_id, p.name, p.public_key, host(p.address)"

int gw_ra_peer_create(struct gw_ctx *gw, const struct gw_principal *who, const char *endpoint_id,
                      const char *public_key, const char *name, struct nb_arena *arena,
                      struct gw_ra_peer *out, struct nb_error *err)
{
    char id[NB_ID_MAX];
    if (gw_require_writer(who, err) < 0 || check_endpoint_id(endpoint_id, err) < 0 ||
        gw_ra_check_key("public_key", public_key, err) < 0 || check_text("name", name, err) < 0 ||
        edge_new_id("rap", id, err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = edge_begin(gw, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    long long same = 0;
    PGresult *res = NULL;
    const char *pk[] = {endpoint_id, public_key};
    const char *p[] = {id, endpoint_id, who->tenant_id, name ? name : "", public_key};
    /* The endpoint's row lock serialises the choice of addresses. */
    if (edge_lock_row(conn, "remote_access_endpoints", "id", "UPDATE", who->tenant_id, endpoint_id,
                      "remote-access endpoint", NOT_FOUND, err) < 0 ||
        edge_count(conn,
                   "SELECT count(*) FROM remote_access_peers WHERE endpoint_id = $1 "
                   "AND public_key = $2",
                   2, pk, &same, err) < 0) {
        goto done;
    }
    if (same) {
        edge_fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                  "Endpoint '%s' has a peer with this public key already", endpoint_id);
        goto done;
    }
    /* The lowest free host address of the client CIDR; its first host is the endpoint's. */
    if (!(res = nb_pg_exec(
              conn,
              "INSERT INTO remote_access_peers AS p (id, endpoint_id, tenant_id, name, "
              "public_key, address) SELECT $1, $2, $3, $4, $5, a.ip FROM (SELECT "
              "set_masklen(network("
              "e.client_cidr), 32) + o AS ip FROM remote_access_endpoints e, generate_series(2, "
              "(2 ^ (32 - masklen(e.client_cidr)))::bigint - 2) o WHERE e.id = $2 AND NOT EXISTS "
              "(SELECT 1 FROM remote_access_peers x WHERE x.endpoint_id = e.id AND x.address = "
              "set_masklen(network(e.client_cidr), 32) + o) ORDER BY o LIMIT 1) a "
              "RETURNING " PEER_COLUMNS,
              5, p, err))) {
        goto done;
    }
    if (PQntuples(res) != 1) {
        edge_fail(err, NB_ERR_LIMIT, "AddressLimitExceeded",
                  "Every address of the client CIDR of endpoint '%s' is taken", endpoint_id);
        goto done;
    }
    peer_of_row(res, 0, arena, out);
    rc = nb_pg_commit(conn, err);
done:
    PQclear(res);
    nb_pg_release(conn);
    return rc;
}

int gw_ra_peer_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *endpoint_id,
                      const char *peer_id, struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0 || check_endpoint_id(endpoint_id, err) < 0 ||
        edge_check_id(peer_id, "rap", "InvalidRemoteAccessPeerID.Malformed", err) < 0) {
        return -1;
    }
    const char *p[] = {peer_id, endpoint_id, who->tenant_id};
    PGresult *res = svc_exec(gw,
                             "DELETE FROM remote_access_peers WHERE id = $1 AND endpoint_id = $2 "
                             "AND tenant_id = $3 RETURNING 1",
                             3, p, err);
    if (!res) {
        return -1;
    }
    int found = PQntuples(res);
    PQclear(res);
    if (!found) {
        return edge_fail(err, NB_ERR_NOT_FOUND, PEER_NOT_FOUND,
                         "The remote-access peer '%s' of endpoint '%s' does not exist", peer_id,
                         endpoint_id);
    }
    return 0;
}

int gw_ra_peers_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *endpoint_id,
                         struct nb_arena *arena, struct gw_ra_peer **out, size_t *n,
                         struct nb_error *err)
{
    struct gw_ra_endpoint *e;
    size_t ne;
    if (gw_ra_describe(gw, who, endpoint_id, arena, &e, &ne, err) < 0) {
        return -1;
    }
    const char *p[] = {endpoint_id, who->tenant_id};
    PGresult *res = svc_exec(gw,
                             "SELECT " PEER_COLUMNS " FROM remote_access_peers p "
                             "WHERE p.endpoint_id = $1 AND p.tenant_id = $2 ORDER BY p.address",
                             2, p, err);
    if (!res) {
        return -1;
    }
    *n = (size_t)PQntuples(res);
    *out = nb_arena_zalloc(arena, sizeof **out * (*n ? *n : 1));
    for (int r = 0; r < (int)*n; r++) {
        peer_of_row(res, r, arena, &(*out)[r]);
    }
    PQclear(res);
    return 0;
}

void gw_ra_client_config(struct nb_buf *b, const struct gw_ra_endpoint *e,
                         const struct gw_ra_peer *p)
{
    nb_buf_printf(b,
                  "# nubo remote access %s, peer %s: VPC %s\n"
                  "[Interface]\n"
                  "PrivateKey = <the private key of %s>\n"
                  "Address = %s/32\n"
                  "\n"
                  "[Peer]\n"
                  "PublicKey = %s\n"
                  "Endpoint = %s:%d\n"
                  "AllowedIPs = %s\n"
                  "PersistentKeepalive = 25\n",
                  e->id, p->id, e->vpc_id, p->public_key, p->address, e->public_key, e->outside_ip,
                  e->listen_port, e->vpc_cidr);
}

/* --- the data plane ----------------------------------------------------------------------- */

int gw_ra_unseal_state(struct gw_ctx *gw, json_t *state, struct nb_error *err)
{
    json_t *list = json_object_get(state, "remote_access");
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        const char *id = json_string_value(json_object_get(e, "id"));
        const char *sealed = json_string_value(json_object_get(e, "sealed_key"));
        size_t len = 0;
        if (json_is_null(json_object_get(e, "sealed_key"))) {
            /* Served by another host: this one gets no key. */
            json_object_del(e, "sealed_key");
            continue;
        }
        char *key = id && sealed ? nb_unseal(gw->master_key, sealed, id, &len, err) : NULL;
        if (!key) {
            if (id && sealed) {
                nb_error_detail(err, "the private key of remote-access endpoint %s", id);
            } else {
                nb_error_set(err, NB_ERR_INTERNAL, "a remote-access endpoint has no sealed key");
            }
            return -1;
        }
        json_object_set_new(e, "private_key", json_stringn(key, len));
        json_object_del(e, "sealed_key");
        OPENSSL_cleanse(key, len);
        free(key);
    }
    return 0;
}
