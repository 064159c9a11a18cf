/* Image service, the actions that change an image's record but move no bytes: deregistering,
 * the description, launch permissions (which other tenants may launch it, or everyone), and
 * CopyImage, which records the copy and leaves the bytes to nubo-imaged (an image_tasks row and
 * a NOTIFY nubo_imaged). Follows svc.h.
 *
 * Who may do what, as EC2 does: only the owner changes an image; another tenant that can see it
 * (public, or shared with it) gets AuthFailure, one that cannot gets InvalidAMIID.NotFound.
 * Deregistered images do not exist for these functions. */
#ifndef NUBO_GW_SVC_IMAGE_META_H
#define NUBO_GW_SVC_IMAGE_META_H

#include <stdbool.h>
#include <stddef.h>

struct gw_ctx;
struct gw_principal;
struct gw_tag;
struct nb_arena;
struct nb_error;

/* Who may launch an image besides its owner. */
struct gw_launch_perms {
    bool is_public;
    const char **tenant_ids; /* ordered */
    size_t n_tenant_ids;
};

/* A change of launch permissions: 'reset' first removes every share and makes the image
 * private; then 'remove' and 'add' (tenant ids, 12 digits, existing tenants) are applied, and
 * 'set_public' (-1: unchanged, 0: private, 1: public). The owner's own id is ignored. */
struct gw_launch_perm_change {
    bool reset;
    const char *const *add;
    size_t n_add;
    const char *const *remove;
    size_t n_remove;
    int set_public;
};

/* DeregisterImage: the owner's image 'image_id' becomes 'deregistered' (its name is free again;
 * instances launched from it keep running; the image store deletes its bytes later). An image
 * already deregistered is InvalidAMIID.NotFound. Returns 0, or -1 with 'err'. */
int gw_image_deregister(struct gw_ctx *gw, const struct gw_principal *who, const char *image_id,
                        struct nb_error *err);

/* Sets the description of the owner's image 'image_id'. Returns 0, or -1 with 'err'. */
int gw_image_set_description(struct gw_ctx *gw, const struct gw_principal *who,
                             const char *image_id, const char *description, struct nb_error *err);

/* The launch permissions of the owner's image 'image_id' into '*out', allocated in 'arena'.
 * Returns 0, or -1 with 'err'. */
int gw_image_launch_perms_get(struct gw_ctx *gw, const struct gw_principal *who,
                              const char *image_id, struct nb_arena *arena,
                              struct gw_launch_perms *out, struct nb_error *err);

/* Applies 'ch' to the owner's image 'image_id', in one transaction. Any tenant may make its
 * image public (as EC2 allows). An unknown or malformed tenant id is
 * InvalidAMIAttributeItemValue. Returns 0, or -1 with 'err'. */
int gw_image_launch_perms_modify(struct gw_ctx *gw, const struct gw_principal *who,
                                 const char *image_id, const struct gw_launch_perm_change *ch,
                                 struct nb_error *err);

/* CopyImage within this region. */
struct gw_image_copy_request {
    const char *source_image_id;
    const char *name;
    const char *description;   /* NULL: the source's */
    const char *client_token;  /* NULL when none; the same token and parameters answer the same
                               * image id again, other parameters IdempotentParameterMismatch */
    const struct gw_tag *tags; /* tags of the new image */
    size_t n_tags;
};

/* Copies 'rq->source_image_id', an available image the caller may launch, into a new image of
 * the caller's tenant (id written to 'id_out', NB_ID_MAX bytes). The copy has the source's
 * format, kernel, ramdisk, architecture and properties. When the source's bytes are in the image
 * store the copy is 'pending' and an image_tasks row (kind 'copy', id "copy-ami-<the copy's
 * hex digits>") asks nubo-imaged to copy them (NOTIFY nubo_imaged with the task id, in the same
 * transaction); otherwise (an operator image with only a location) the copy shares the
 * location and is 'available' at once. Returns 0, or -1 with 'err'. */
int gw_image_copy(struct gw_ctx *gw, const struct gw_principal *who,
                  const struct gw_image_copy_request *rq, char *id_out, struct nb_error *err);

/* Checks that 'id' has the form of an image id (ami-, aki- or ari- and 17 hex digits): returns
 * 0, or -1 with 'err' set to InvalidAMIID.Malformed. */
int gw_image_check_id(const char *id, struct nb_error *err);

#endif
