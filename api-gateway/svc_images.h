/* The service layer of image bytes (issue 6): uploads into the image store, downloads out of
 * it, imports. Follows svc.h.
 *
 * An upload (PUT /v1/images/{id}/file) goes into an image the tenant created with an upload
 * format ("source_format": raw, qcow2, vhd, vmdk or ova) and that has no bytes yet. The bytes
 * stream into the store under a fresh key while their SHA-256 is computed; nothing is visible
 * until the end, where:
 *   - the digest is checked against the client's (x-amz-content-sha256), when it gave one;
 *   - the format is probed and validated (image-store/imgfmt.h) and must be the declared one;
 *   - raw and qcow2 become the image's bytes at once: the image is 'available';
 *   - VHD, VMDK and OVA wait as an upload blob, with an import task for nubo-imaged, which
 *     validates them whole and converts them to qcow2.
 * Any failure removes what was written. The tenant's image-storage quota (quotas.
 * max_image_bytes) counts every live image's stored bytes. */
#ifndef NUBO_GW_SVC_IMAGES_H
#define NUBO_GW_SVC_IMAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gw_ctx;
struct gw_principal;
struct nb_error;
struct gw_upload;
struct img_store;

/* Creates an image of the principal's tenant that waits for its bytes: state 'pending', the
 * upload format 'source_format' (raw, qcow2, vhd, vmdk or ova), and from 'img' its name,
 * description, architecture and image type (public needs the admin role). The id is written to
 * 'id_out' (NB_ID_MAX bytes). Returns 0, or -1 with 'err'. */
struct gw_image;
int gw_image_create_for_upload(struct gw_ctx *gw, const struct gw_principal *who,
                               const struct gw_image *img, const char *source_format, char *id_out,
                               struct nb_error *err);

#define GW_UPLOAD_MAX_PARTS 10000

/* Starts an upload into image 'image_id' of the principal's tenant: the whole image ('part'
 * 0), or part 'part' (1..GW_UPLOAD_MAX_PARTS) of a multipart upload. 'declared_size' is the
 * Content-Length, or -1 when the body is chunked. 'claimed_sha256' is 64 hex digits, or NULL.
 * Returns the upload, or NULL with 'err' (InvalidAMIID.NotFound, IncorrectState when the image
 * already has bytes, ResourceLimitExceeded over the quota or size limit). */
struct gw_upload *gw_upload_begin(struct gw_ctx *gw, const struct gw_principal *who,
                                  const char *image_id, int part, int64_t declared_size,
                                  const char *claimed_sha256, struct nb_error *err);

/* Adds the next bytes. Returns 0, or -1 with 'err' (the upload is then dead: only
 * gw_upload_free() remains). */
int gw_upload_write(struct gw_upload *u, const void *data, size_t len, struct nb_error *err);

/* Finishes: checks, commits, and updates the image (see above). Returns 0 with the image's new
 * state in 'state_out' ("available" or "pending" for an import, "part" for a part; 16 bytes)
 * and the import task's id in 'task_out' (NB_ID_MAX + 16 bytes, "" when none), or -1 with
 * 'err'. A part is only stored and recorded: it is checked with the whole. */
int gw_upload_finish(struct gw_upload *u, char *state_out, char *task_out, struct nb_error *err);

/* Joins the uploaded parts 'parts' (ascending part numbers) of image 'image_id' into its
 * upload, which then finishes as a whole upload does ('claimed_sha256' is the whole's digest,
 * or NULL); the parts are removed. Returns 0 as gw_upload_finish(), or -1 with 'err'
 * (InvalidPart when one is missing, InvalidPartOrder). */
int gw_upload_complete(struct gw_ctx *gw, const struct gw_principal *who, const char *image_id,
                       const int *parts, size_t n_parts, const char *claimed_sha256,
                       char *state_out, char *task_out, struct nb_error *err);

struct gw_upload_part {
    int part_number;
    int64_t size_bytes;
    const char *sha256;
};

/* The parts uploaded so far into the principal's image 'image_id' (for resuming), ascending,
 * in 'arena'. Returns 0, or -1 with 'err'. */
struct nb_arena;
int gw_upload_parts_list(struct gw_ctx *gw, const struct gw_principal *who, const char *image_id,
                         struct nb_arena *arena, struct gw_upload_part **out, size_t *n,
                         struct nb_error *err);

/* Drops an upload that did not finish (removing what it wrote) and frees it. Accepts NULL. */
void gw_upload_free(struct gw_upload *u);

/* The bytes of an image the principal owns, for a download: the store, the blob's key (copied
 * to 'key_out', IMG_KEY_MAX + 1 bytes), its size and SHA-256 (65 bytes). Returns 0, or -1 with
 * 'err' (InvalidAMIID.NotFound; IncorrectState if it has no bytes in the store). */
int gw_image_blob(struct gw_ctx *gw, const struct gw_principal *who, const char *image_id,
                  char *key_out, uint64_t *size, char *sha256_out, struct nb_error *err);

/* Queues an export of image 'image_id' (the principal's own, available, in the store) to an
 * OVA that nubo-imaged makes; the task id goes to 'task_out' (NB_ID_MAX + 16 bytes). Returns 0,
 * or -1 with 'err'. */
int gw_image_export(struct gw_ctx *gw, const struct gw_principal *who, const char *image_id,
                    char *task_out, struct nb_error *err);

/* The OVA of the latest completed export of the principal's image 'image_id': key (IMG_KEY_MAX
 * + 1 bytes), size and SHA-256 (65 bytes). Returns 0, or -1 with 'err' (InvalidAMIID.NotFound;
 * IncorrectState when no export has completed). */
int gw_image_export_blob(struct gw_ctx *gw, const struct gw_principal *who, const char *image_id,
                         char *key_out, uint64_t *size, char *sha256_out, struct nb_error *err);

struct nb_arena;
struct gw_image_task {
    const char *id, *kind, *image_id, *state, *status_message;
    const char *description; /* the image's */
    int progress;
    int64_t updated_ms;
    int64_t result_bytes;
    const char *result_sha256; /* NULL until an export completes */
};

/* EC2 ImportImage: a new image of the principal's tenant ('description'), state 'pending', whose
 * bytes nubo-imaged fetches from 'url' (http or https, allowed by images.import_url_prefixes)
 * and imports as 'format' (raw, qcow2, vhd, vmdk, ova). The image id goes to 'image_out' and the
 * task id (import-ami-...) to 'task_out' (NB_ID_MAX + 16 bytes each). Returns 0, or -1 with
 * 'err'. */
int gw_image_import_url(struct gw_ctx *gw, const struct gw_principal *who, const char *format,
                        const char *url, const char *description, char *image_out, char *task_out,
                        struct nb_error *err);

/* The principal's image tasks of 'kind' ("import" or "export"), those in 'ids' when n_ids > 0
 * (an unknown one is InvalidConversionTaskId.Malformed / NotFound as EC2 says), newest first, in
 * 'arena'. */
int gw_image_tasks_list(struct gw_ctx *gw, const struct gw_principal *who, const char *kind,
                        const char *const *ids, size_t n_ids, struct nb_arena *arena,
                        struct gw_image_task **out, size_t *n, struct nb_error *err);

/* An image task (import-ami-..., export-ami-..., copy-ami-...) of the principal's tenant, into
 * '*out' (strings in 'arena'). Returns 0, or -1 with 'err' (InvalidImportTaskId.NotFound when
 * unknown). */
int gw_image_task_get(struct gw_ctx *gw, const struct gw_principal *who, const char *task_id,
                      struct nb_arena *arena, struct gw_image_task *out, struct nb_error *err);

#endif
