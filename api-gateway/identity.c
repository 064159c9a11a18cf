/* Identity service: tenants, users, access keys (see identity.h). */
#include "identity.h"

#include "nubo/crypto.h"
#include "nubo/error.h"
#include "nubo/id.h"
#include "nubo/pg.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Advisory lock key for the bootstrap: "nubo" + 1. */
#define BOOTSTRAP_LOCK "1853189633"

static int random_digits(char *out, size_t n, struct nb_error *err)
{
    unsigned char r[32];
    if (n > sizeof r || nb_random_bytes(r, n) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not read random bytes");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        out[i] = (char)('0' + r[i] % 10);
    }
    out[0] = (char)('1' + r[0] % 9); /* no leading zero: it reads like a number */
    out[n] = '\0';
    return 0;
}

/* Tenant and user names: 1 to 64 letters, digits, '.', '_', '-' and '@'. */
static bool valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64) {
        return false;
    }
    for (const char *p = name; *p; p++) {
        if (!isalnum((unsigned char)*p) && !strchr("._-@", *p)) {
            return false;
        }
    }
    return true;
}

int gw_tenant_create(struct nb_pg_conn *conn, const char *name,
                     char tenant_id[GW_TENANT_ID_LEN + 1], struct nb_error *err)
{
    if (!valid_name(name)) {
        nb_error_set(err, NB_ERR_INVALID,
                     "invalid tenant name \"%.64s\": use 1 to 64 letters, digits, '.', '_', '-' "
                     "or '@'",
                     name);
        nb_error_reason(err, "InvalidParameterValue");
        return -1;
    }
    if (random_digits(tenant_id, GW_TENANT_ID_LEN, err) < 0) {
        return -1;
    }
    const char *params[] = {tenant_id, name};
    PGresult *res = nb_pg_exec(conn,
                               "WITH t AS (INSERT INTO tenants (id, name) VALUES ($1, $2) "
                               "RETURNING id) INSERT INTO quotas (tenant_id) SELECT id FROM t",
                               2, params, err);
    if (!res) {
        if (err && err->code == NB_ERR_CONFLICT) {
            nb_error_set(err, NB_ERR_CONFLICT, "tenant \"%s\" already exists", name);
        }
        return -1;
    }
    PQclear(res);
    return 0;
}

int gw_user_create(struct nb_pg_conn *conn, const char *tenant_id, const char *name,
                   const char *role, char *user_id, struct nb_error *err)
{
    if (!valid_name(name)) {
        nb_error_set(err, NB_ERR_INVALID,
                     "invalid user name \"%.64s\": use 1 to 64 letters, digits, '.', '_', '-' "
                     "or '@'",
                     name);
        nb_error_reason(err, "InvalidParameterValue");
        return -1;
    }
    if (strcmp(role, "admin") && strcmp(role, "member") && strcmp(role, "reader") &&
        strcmp(role, "desktop")) {
        nb_error_set(err, NB_ERR_INVALID,
                     "invalid role \"%s\": expected admin, member, reader or desktop", role);
        return -1;
    }
    if (nb_id_new("user", user_id, NB_ID_MAX) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not make a user id");
        return -1;
    }
    const char *params[] = {user_id, tenant_id, name, role};
    PGresult *res = nb_pg_exec(conn,
                               "INSERT INTO users (id, tenant_id, name, role) "
                               "VALUES ($1, $2, $3, $4)",
                               4, params, err);
    if (!res) {
        if (err && err->code == NB_ERR_CONFLICT) {
            nb_error_set(err, NB_ERR_CONFLICT, "user \"%s\" already exists in tenant %s", name,
                         tenant_id);
        }
        return -1;
    }
    PQclear(res);
    return 0;
}

int gw_key_create(struct nb_pg_conn *conn, const uint8_t master_key[NB_MASTER_KEY_LEN],
                  const char *user_id, struct gw_new_key *out, struct nb_error *err)
{
    static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    unsigned char r[16 + 30];
    if (nb_random_bytes(r, sizeof r) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not read random bytes");
        return -1;
    }
    memcpy(out->key_id, "NKIA", 4);
    for (int i = 0; i < 16; i++) {
        out->key_id[4 + i] = b32[r[i] & 31];
    }
    out->key_id[GW_KEY_ID_LEN] = '\0';
    char *secret = nb_base64_encode(r + 16, 30); /* 30 bytes: exactly 40 characters */
    if (!secret) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not encode a secret");
        return -1;
    }
    memcpy(out->secret, secret, GW_SECRET_LEN);
    out->secret[GW_SECRET_LEN] = '\0';
    free(secret);

    char *sealed = nb_seal(master_key, out->secret, GW_SECRET_LEN, out->key_id, err);
    if (!sealed) {
        return -1;
    }
    const char *params[] = {out->key_id, user_id, sealed};
    PGresult *res = nb_pg_exec(conn,
                               "INSERT INTO access_keys (id, user_id, secret_sealed) "
                               "VALUES ($1, $2, $3)",
                               3, params, err);
    free(sealed);
    if (!res) {
        return -1;
    }
    PQclear(res);
    return 0;
}

int gw_bootstrap_admin(struct nb_pg_conn *conn, const uint8_t master_key[NB_MASTER_KEY_LEN],
                       struct gw_new_key *out, bool *created, struct nb_error *err)
{
    *created = false;
    if (nb_pg_begin(conn, err) < 0) {
        return -1;
    }
    PGresult *res =
        nb_pg_exec(conn, "SELECT pg_advisory_xact_lock(" BOOTSTRAP_LOCK ")", 0, NULL, err);
    if (!res) {
        goto fail;
    }
    PQclear(res);
    res = nb_pg_exec(conn, "SELECT 1 FROM users WHERE role = 'admin' LIMIT 1", 0, NULL, err);
    if (!res) {
        goto fail;
    }
    bool exists = PQntuples(res) > 0;
    PQclear(res);
    if (exists) {
        nb_pg_rollback(conn);
        return 0;
    }
    char tenant_id[GW_TENANT_ID_LEN + 1];
    char user_id[NB_ID_MAX];
    if (gw_tenant_create(conn, "admin", tenant_id, err) < 0 ||
        gw_user_create(conn, tenant_id, "admin", "admin", user_id, err) < 0 ||
        gw_key_create(conn, master_key, user_id, out, err) < 0) {
        goto fail;
    }
    if (nb_pg_commit(conn, err) < 0) {
        return -1;
    }
    *created = true;
    return 0;

fail:
    nb_pg_rollback(conn);
    return -1;
}
