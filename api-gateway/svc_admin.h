/* Operator service: tenants, users, access keys and quotas (the admin role only). Follows svc.h.
 * The rows themselves are made by identity.c, which the bootstrap shares. */
#ifndef NUBO_GW_SVC_ADMIN_H
#define NUBO_GW_SVC_ADMIN_H

#include <jansson.h>
#include <stdbool.h>

struct gw_ctx;
struct gw_principal;
struct nb_error;

/* Each returns a new JSON reference describing the result, or NULL with 'err' set.
 * Unknown ids are NB_ERR_NOT_FOUND with reasons InvalidTenantID.NotFound,
 * InvalidUserID.NotFound, InvalidAccessKeyId.NotFound. */

/* {"tenant_id", "name"}. */
json_t *gw_admin_tenant_create(struct gw_ctx *gw, const struct gw_principal *who, const char *name,
                               struct nb_error *err);
/* [{"tenant_id", "name", "enabled", "created_at", "instances"}...] */
json_t *gw_admin_tenants_list(struct gw_ctx *gw, const struct gw_principal *who,
                              struct nb_error *err);
/* Enables or disables a tenant, a user or a key; keys stop working at once on this gateway and
 * within GW_AUTH_CACHE_TTL seconds on the others. 'kind' is "tenant", "user" or "key". */
json_t *gw_admin_set_enabled(struct gw_ctx *gw, const struct gw_principal *who, const char *kind,
                             const char *id, bool enabled, struct nb_error *err);
/* {"user_id", "tenant_id", "name", "role"}. */
json_t *gw_admin_user_create(struct gw_ctx *gw, const struct gw_principal *who,
                             const char *tenant_id, const char *name, const char *role,
                             struct nb_error *err);
/* {"access_key_id", "secret_access_key", "user_id"}: the secret is shown this once. */
json_t *gw_admin_key_create(struct gw_ctx *gw, const struct gw_principal *who, const char *user_id,
                            struct nb_error *err);
/* Returns the tenant's quota; with 'set' non-NULL first updates the fields it holds
 * (max_instances, max_vcpus, max_memory_mib, max_elastic_ips, max_image_bytes; non-negative
 * integers; any other field is InvalidParameterValue). */
json_t *gw_admin_quota(struct gw_ctx *gw, const struct gw_principal *who, const char *tenant_id,
                       const json_t *set, struct nb_error *err);

#endif
