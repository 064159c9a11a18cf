/* Identity service: tenants, users, access keys, and the bootstrap of the operator's account.
 *
 * This is service-layer code: both the EC2 and the REST front doors (and the bootstrap command)
 * call it; it knows nothing of HTTP. Secrets are sealed with the master key before they reach
 * the database and are returned in clear exactly once, when a key is created. */
#ifndef NUBO_GW_IDENTITY_H
#define NUBO_GW_IDENTITY_H

#include <stdbool.h>
#include <stdint.h>

#include "nubo/crypto.h"

struct nb_error;
struct nb_pg_conn;

#define GW_TENANT_ID_LEN 12
#define GW_KEY_ID_LEN    20 /* "NKIA" + 16 base32 characters */
#define GW_SECRET_LEN    40

struct gw_new_key {
    char key_id[GW_KEY_ID_LEN + 1];
    char secret[GW_SECRET_LEN + 1];
};

/* Creates tenant 'name' with default quotas and writes its 12-digit id into 'tenant_id'.
 * Runs on 'conn' inside the caller's transaction, if any. Returns 0, or -1 with 'err'
 * (NB_ERR_CONFLICT when the name is taken). */
int gw_tenant_create(struct nb_pg_conn *conn, const char *name,
                     char tenant_id[GW_TENANT_ID_LEN + 1], struct nb_error *err);

/* Creates user 'name' with 'role' ("admin", "member" or "reader") in 'tenant_id' and writes its id
 * into 'user_id' (at least 32 bytes). Returns 0, or -1 with 'err'. */
int gw_user_create(struct nb_pg_conn *conn, const char *tenant_id, const char *name,
                   const char *role, char *user_id, struct nb_error *err);

/* Creates an access key for 'user_id', sealing its secret under 'master_key'. Fills '*out' with
 * the id and the clear secret (shown to the user once). Returns 0, or -1 with 'err'. */
int gw_key_create(struct nb_pg_conn *conn, const uint8_t master_key[NB_MASTER_KEY_LEN],
                  const char *user_id, struct gw_new_key *out, struct nb_error *err);

/* Ensures the operator account exists: tenant "admin", user "admin" with role admin, one key.
 * When it had to create it, fills '*out', sets '*created' and returns 0; when it already
 * existed, sets '*created' to false and returns 0 (the secret cannot be shown again).
 * Safe against concurrent callers (one transaction under an advisory lock). */
int gw_bootstrap_admin(struct nb_pg_conn *conn, const uint8_t master_key[NB_MASTER_KEY_LEN],
                       struct gw_new_key *out, bool *created, struct nb_error *err);

#endif
