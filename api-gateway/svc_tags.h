/* Tags service: CreateTags, DeleteTags, DescribeTags over every taggable resource of a tenant.
 * Follows svc.h. A resource is known by its id's prefix; later resources (VPCs, subnets...) add a
 * line to the table in svc_tags.c. */
#ifndef NUBO_GW_SVC_TAGS_H
#define NUBO_GW_SVC_TAGS_H

#include <stddef.h>

#include "svc.h"

struct gw_ctx;
struct gw_principal;
struct nb_arena;
struct nb_error;

struct gw_tag_row {
    const char *resource_id;
    const char *resource_type; /* "instance", "image", "key-pair" */
    const char *key;
    const char *value;
};

/* Adds or overwrites 'tags' on every resource of 'ids', all in one transaction. A resource the
 * tenant does not have is "<Type>.NotFound" (InvalidInstanceID.NotFound, ...), or InvalidID for
 * an id nubo does not know the form of; then nothing changes. At most 50 tags per resource. */
int gw_tags_create(struct gw_ctx *gw, const struct gw_principal *who, const char *const *ids,
                   size_t n_ids, const struct gw_tag *tags, size_t n_tags, struct nb_error *err);

/* Removes tags from the resources of 'ids'. A tag with a NULL value is removed whatever its
 * value; with a value, only if the value matches. With no tags at all, removes every tag. */
int gw_tags_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *const *ids,
                   size_t n_ids, const struct gw_tag *tags, size_t n_tags, struct nb_error *err);

/* Lists the tenant's tags, filtered by key, value, resource-id, resource-type; paged by
 * (resource id, key). */
int gw_tags_describe(struct gw_ctx *gw, const struct gw_principal *who,
                     const struct gw_filter *filters, size_t n_filters, const struct gw_page *page,
                     struct nb_arena *arena, struct gw_tag_row **out, size_t *n,
                     const char **next_token, struct nb_error *err);

#endif
