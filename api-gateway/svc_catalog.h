/* Catalogue service: what a tenant can launch and where. Regions, availability zones, instance
 * types (kept in the database, managed by the operator) and images. Follows svc.h. */
#ifndef NUBO_GW_SVC_CATALOG_H
#define NUBO_GW_SVC_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "svc.h"

struct gw_ctx;
struct gw_principal;
struct nb_arena;
struct nb_error;

struct gw_zone {
    const char *name;
    const char *region;
    const char *state;
};

struct gw_instance_type {
    const char *name;
    int vcpus;
    int memory_mib;
    int disk_gib;
    int ephemeral_gib;
    bool enabled;
};

struct gw_image {
    const char *id;
    const char *owner_id;
    const char *name;
    const char *description;
    const char *state;
    bool is_public;
    const char *image_type;
    const char *architecture;
    const char *root_device_name;
    int64_t created_ms;
    const struct gw_tag *tags;
    size_t n_tags;
    /* Where the bytes are, for the compute agents (register only; operator only until the image
     * store serves uploads): a file:// or http(s):// URL, the SHA-256 (hex) and size of the
     * bytes, "raw" or "qcow2", and for a kernel-booted image its kernel (aki-), ramdisk (ari-)
     * and kernel command line. NULL / 0 when not given. */
    const char *location;
    const char *sha256;
    int64_t size_bytes;
    const char *disk_format;
    const char *kernel_id;
    const char *ramdisk_id;
    const char *kernel_args;
    /* Filled by gw_images_describe() (not read by register): why a 'failed' image failed
     * (NULL otherwise), the disk size the guest sees in bytes (0 when unknown), the bytes the
     * image store holds for it, and the image a copy was made from (NULL if none). */
    const char *state_reason;
    int64_t virtual_size;
    int64_t stored_bytes;
    const char *source_image_id;
};

/* What DescribeImages asks for; every part may be empty (NULL, 0). 'ids' as for instances
 * (InvalidAMIID.NotFound); 'owners' may hold "self" or 12-digit tenant ids (EC2's aliases such
 * as "amazon" match nothing); 'exec_by' holds "self" (the images the caller may launch: its own,
 * public ones and those shared with it), "all" (public images) or tenant ids (images the caller
 * owns that are shared with that tenant; the caller's own id means "self"); an image matches if
 * it matches any of 'owners' and any of 'exec_by'. Filters: image-id, name, state, is-public,
 * owner-id, image-type, architecture, tag:KEY, tag-key, tag-value. */
struct gw_image_query {
    const char *const *ids;
    size_t n_ids;
    const char *const *owners;
    size_t n_owners;
    const char *const *exec_by;
    size_t n_exec_by;
    const struct gw_filter *filters;
    size_t n_filters;
};

/* The zones of this gateway's region, filtered by 'names' (all when 0; an unknown name is
 * InvalidParameterValue) and by filters zone-name, region-name, state. */
int gw_zones_list(struct gw_ctx *gw, const char *const *names, size_t n_names,
                  const struct gw_filter *filters, size_t n_filters, struct nb_arena *arena,
                  struct gw_zone **out, size_t *n, struct nb_error *err);

/* Enabled instance types, those in 'names' when n_names > 0 (an unknown name is
 * InvalidInstanceType), filtered by instance-type, vcpu-info.default-vcpus,
 * memory-info.size-in-mib; ordered by name; paged by name. */
int gw_instance_types_list(struct gw_ctx *gw, const char *const *names, size_t n_names,
                           const struct gw_filter *filters, size_t n_filters,
                           const struct gw_page *page, struct nb_arena *arena,
                           struct gw_instance_type **out, size_t *n, const char **next_token,
                           struct nb_error *err);

/* Creates or replaces an instance type (operator only). */
int gw_instance_type_put(struct gw_ctx *gw, const struct gw_principal *who,
                         const struct gw_instance_type *t, struct nb_error *err);

/* Images the tenant may see: its own, public ones and those shared with it through launch
 * permissions, as 'q' selects them (see struct gw_image_query), ordered by id. Deregistered
 * images are not listed. The array '*out' of '*n' images lives in 'arena'. */
int gw_images_list(struct gw_ctx *gw, const struct gw_principal *who,
                   const struct gw_image_query *q, struct nb_arena *arena, struct gw_image **out,
                   size_t *n, struct nb_error *err);

/* gw_images_list() with no 'exec_by'. */
int gw_images_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *const *ids,
                       size_t n_ids, const char *const *owners, size_t n_owners,
                       const struct gw_filter *filters, size_t n_filters, struct nb_arena *arena,
                       struct gw_image **out, size_t *n, struct nb_error *err);

/* Registers an image record in the principal's tenant ('img' name, description, is_public,
 * image_type, architecture; the id is made here and written to 'id_out', NB_ID_MAX bytes).
 * Public images, and a location for the bytes, need the admin role. */
int gw_image_register(struct gw_ctx *gw, const struct gw_principal *who, const struct gw_image *img,
                      char *id_out, struct nb_error *err);

#endif
