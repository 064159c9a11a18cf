/* Authentication of API requests: AWS Signature V4 against tenants' access keys.
 *
 * Keys are looked up in PostgreSQL and cached in memory for a few seconds (GW_AUTH_CACHE_TTL), so
 * that the hot path costs one hash lookup and the HMACs; a disabled key, user or tenant stops
 * working within that time, or at once on this gateway (gw_auth_forget()). Thread-safe. */
#ifndef NUBO_GW_AUTH_H
#define NUBO_GW_AUTH_H

#include <stdint.h>
#include <time.h>

#include "nubo/crypto.h"

struct nb_error;
struct nb_http_req;
struct nb_pg_pool;

#define GW_AUTH_CACHE_TTL 5 /* seconds */

/* GW_ROLE_DESKTOP: a VDI user of a provider's tenant, who may only use the desktop broker
 * (docs/vdi.md); the REST and EC2 front doors refuse it everything else. */
enum gw_role { GW_ROLE_READER, GW_ROLE_MEMBER, GW_ROLE_ADMIN, GW_ROLE_DESKTOP };

/* Who made a request. */
struct gw_principal {
    char tenant_id[16];
    char user_id[32];
    char key_id[132]; /* as claimed; up to 128 characters */
    enum gw_role role;
};

enum gw_auth_result {
    GW_AUTH_OK = 0,
    GW_AUTH_MISSING,     /* no signature: EC2 AuthFailure */
    GW_AUTH_UNKNOWN_KEY, /* no such access key: AuthFailure */
    GW_AUTH_INCOMPLETE,  /* malformed signature: IncompleteSignature */
    GW_AUTH_EXPIRED,     /* outside the 15-minute window: RequestExpired */
    GW_AUTH_MISMATCH,    /* wrong signature: SignatureDoesNotMatch */
    GW_AUTH_DISABLED,    /* key, user or tenant disabled: OptInRequired */
    GW_AUTH_UNAVAILABLE, /* the database could not be reached: Unavailable */
};

struct gw_auth;

/* Returns a new authenticator over 'pool' (borrowed) and 'master_key' (copied), accepting
 * signatures scoped to 'region' (copied; a signature for another region is SignatureDoesNotMatch,
 * as on AWS). Free with gw_auth_free() (accepts NULL). */
struct gw_auth *gw_auth_new(struct nb_pg_pool *pool, const uint8_t master_key[NB_MASTER_KEY_LEN],
                            const char *region);
void gw_auth_free(struct gw_auth *auth);

/* Authenticates 'req' at time 'now'. On GW_AUTH_OK fills '*who'. Otherwise 'err' says why, in
 * words safe to show the client; the key id, when one was claimed, is still copied into
 * who->key_id for the request log. */
enum gw_auth_result gw_auth_check(struct gw_auth *auth, struct nb_http_req *req, time_t now,
                                  struct gw_principal *who, struct nb_error *err);

/* Drops 'key_id' from the cache (after it was disabled or deleted). NULL drops every key. */
void gw_auth_forget(struct gw_auth *auth, const char *key_id);

/* The EC2 error code for a result ("AuthFailure", ...); NULL for GW_AUTH_OK. */
const char *gw_auth_ec2_code(enum gw_auth_result r);

/* "admin", "member", "reader" or "desktop"; and the reverse (-1 for other text). */
const char *gw_role_name(enum gw_role role);
int gw_role_parse(const char *name, enum gw_role *out);

#endif
