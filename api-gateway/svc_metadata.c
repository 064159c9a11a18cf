/* Instance metadata for nubo-netctl's metadata service (svc_metadata.h). */
#include "svc_metadata.h"

#include "gateway.h"
#include "svc_sql.h"
#include "nubo/crypto.h"
#include "nubo/error.h"
#include "nubo/pg.h"

#include <stdlib.h>
#include <string.h>

/* $1 interface id, $2 host id. The key pair is looked up by name as RunInstances checked it
 * (instances.key_name); a key pair deleted since has no key to give. */
static const char METADATA_SQL[] =
    "SELECT i.id, i.image_id, i.instance_type, host(n.private_ip), n.mac_address::text,"
    " (SELECT host(a.public_ip) FROM addresses a WHERE a.network_interface_id = n.id),"
    " i.zone, z.region, i.tenant_id,"
    " to_char(i.launch_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    " n.vpc_id, n.subnet_id, i.key_name, k.public_key, i.user_data,"
    " COALESCE((SELECT json_agg(sg.name ORDER BY sg.name) FROM network_interface_groups g"
    "           JOIN security_groups sg ON sg.id = g.group_id WHERE g.interface_id = n.id),"
    "          '[]')::text"
    " FROM network_interfaces n JOIN instances i ON i.id = n.instance_id"
    " JOIN zones z ON z.name = i.zone"
    " LEFT JOIN key_pairs k ON k.tenant_id = i.tenant_id AND k.name = i.key_name"
    " WHERE n.id = $1 AND i.host_id = $2 AND i.state NOT IN ('terminated', 'error')";

enum {
    COL_ID,
    COL_IMAGE,
    COL_TYPE,
    COL_IP,
    COL_MAC,
    COL_PUBLIC_IP,
    COL_ZONE,
    COL_REGION,
    COL_ACCOUNT,
    COL_LAUNCH,
    COL_VPC,
    COL_SUBNET,
    COL_KEY_NAME,
    COL_KEY,
    COL_USER_DATA,
    COL_GROUPS,
};

static bool valid_interface_id(const char *id)
{
    if (!id || strlen(id) != 21 || strncmp(id, "eni-", 4)) {
        return false;
    }
    for (const char *c = id + 4; *c; c++) {
        if (nb_hex_value((unsigned char)*c) < 0 || (*c >= 'A' && *c <= 'F')) {
            return false;
        }
    }
    return true;
}

static const char *col(PGresult *res, int c)
{
    return PQgetisnull(res, 0, c) ? NULL : PQgetvalue(res, 0, c);
}

/* User data as the instance gets it, base64: RunInstances stores what the client sent, which
 * EC2 requires to be base64; text that is not is handed over as it was given. Returns a
 * malloc()ed string, or NULL when there is none. */
static char *user_data_b64(const char *stored)
{
    if (!stored || !*stored) {
        return NULL;
    }
    struct nb_error err = {0};
    size_t len;
    void *raw = nb_base64_decode(stored, &len, &err);
    if (raw) {
        free(raw);
        return strdup(stored);
    }
    return nb_base64_encode(stored, strlen(stored));
}

json_t *gw_node_metadata(struct gw_ctx *gw, const char *host_id, const char *interface_id,
                         struct nb_error *err)
{
    if (!valid_interface_id(interface_id)) {
        nb_error_set(err, NB_ERR_INVALID, "interface must be a network interface id \"eni-...\"");
        return NULL;
    }
    const char *p[] = {interface_id, host_id};
    PGresult *res = svc_exec(gw, METADATA_SQL, 2, p, err);
    if (!res) {
        return NULL;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        nb_error_set(err, NB_ERR_NOT_FOUND, "no instance on this host has network interface \"%s\"",
                     interface_id);
        return NULL;
    }
    const char *ip = col(res, COL_IP);
    char hostname[32] = "ip-";
    for (size_t i = 0, o = 3; ip[i] && o + 1 < sizeof hostname; i++, o++) {
        hostname[o] = ip[i] == '.' ? '-' : ip[i];
        hostname[o + 1] = '\0';
    }
    json_t *groups = json_loads(col(res, COL_GROUPS), 0, NULL);
    json_t *keys = json_array();
    if (col(res, COL_KEY)) {
        json_array_append_new(keys, json_pack("{s:s, s:s}", "name", col(res, COL_KEY_NAME), "key",
                                              col(res, COL_KEY)));
    }
    char *user_data = user_data_b64(col(res, COL_USER_DATA));
    json_t *doc = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s*, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s*}",
        "instance_id", col(res, COL_ID), "image_id", col(res, COL_IMAGE), "instance_type",
        col(res, COL_TYPE), "hostname", hostname, "local_ipv4", ip, "mac", col(res, COL_MAC),
        "public_ipv4", col(res, COL_PUBLIC_IP), "availability_zone", col(res, COL_ZONE), "region",
        col(res, COL_REGION), "account_id", col(res, COL_ACCOUNT), "launch_time",
        col(res, COL_LAUNCH), "vpc_id", col(res, COL_VPC), "subnet_id", col(res, COL_SUBNET),
        "security_groups", groups ? groups : json_array(), "public_keys", keys, "user_data",
        user_data);
    free(user_data);
    PQclear(res);
    if (!doc) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not build the metadata of \"%s\"", interface_id);
    }
    return doc;
}
