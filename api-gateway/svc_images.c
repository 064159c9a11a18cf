/* Image bytes: uploads into the image store, downloads, imports (svc_images.h). */
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <libpq-fe.h>

#include "auth.h"
#include "blob_url.h"
#include "gateway.h"
#include "imgfmt.h"
#include "nubo/arena.h"
#include "nubo/buf.h"
#include "nubo/error.h"
#include "nubo/id.h"
#include "nubo/log.h"
#include "nubo/pg.h"
#include "store.h"
#include "svc.h"
#include "svc_catalog.h"
#include "svc_image_meta.h"
#include "svc_images.h"
#include "svc_sql.h"

struct gw_upload {
    struct gw_ctx *gw;
    char tenant_id[16];
    char image_id[NB_ID_MAX];
    char source_format[16];
    char key[IMG_KEY_MAX + 1];
    char claimed[65]; /* "" when the client gave no digest */
    uint64_t limit;   /* the most bytes this upload may hold (quota and size limit) */
    int part;         /* a part of a multipart upload (1..10000), or 0 */
    struct img_writer *w;
    EVP_MD_CTX *md;
};

static void set_reason(struct nb_error *err, const char *reason)
{
    nb_error_reason(err, reason);
}

/* The image's row for an upload: owned by the tenant, pending, no bytes yet. Also reads the
 * tenant's quota headroom. */
static int check_image(struct gw_upload *u, int64_t declared, struct nb_error *err)
{
    struct nb_pg_conn *conn = nb_pg_acquire(u->gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    /* The quota counts the live images' stored bytes and the parts of multipart uploads not
     * joined yet, except what this upload replaces: the same part sent again, or, when the
     * parts are being joined (part 0), this image's parts. */
    char part_s[16];
    snprintf(part_s, sizeof part_s, "%d", u->part);
    const char *p[] = {u->image_id, u->tenant_id, part_s};
    PGresult *res =
        nb_pg_exec(conn,
                   "SELECT m.state, m.source_format, m.store_key IS NOT NULL, "
                   "COALESCE(q.max_image_bytes, 107374182400) - COALESCE((SELECT sum(stored_bytes) "
                   "FROM images s WHERE s.tenant_id = $2 AND s.state <> 'deregistered'), 0) "
                   "- COALESCE((SELECT sum(p.size_bytes) FROM image_upload_parts p JOIN images i "
                   "ON i.id = p.image_id WHERE i.tenant_id = $2 AND i.state = 'pending' AND NOT "
                   "(p.image_id = $1 AND ($3::int = 0 OR p.part_number = $3::int))), 0) "
                   "FROM images m LEFT JOIN quotas q ON q.tenant_id = $2 "
                   "WHERE m.id = $1 AND m.tenant_id = $2 AND m.state <> 'deregistered'",
                   3, p, err);
    nb_pg_release(conn);
    if (!res) {
        return -1;
    }
    int rc = -1;
    if (PQntuples(res) != 1) {
        nb_error_set(err, NB_ERR_NOT_FOUND, "The image id '[%s]' does not exist", u->image_id);
        set_reason(err, "InvalidAMIID.NotFound");
    } else if (strcmp(PQgetvalue(res, 0, 0), "pending") || PQgetisnull(res, 0, 1) ||
               !strcmp(PQgetvalue(res, 0, 2), "t")) {
        nb_error_set(
            err, NB_ERR_CONFLICT, "image %s takes no upload: it is %s%s", u->image_id,
            PQgetvalue(res, 0, 0),
            PQgetisnull(res, 0, 1)
                ? " and was not created for an upload (give "
                  "\"source_format\" when creating it)"
                : (!strcmp(PQgetvalue(res, 0, 2), "t") ? " and already has its bytes" : ""));
        set_reason(err, "IncorrectState");
    } else {
        snprintf(u->source_format, sizeof u->source_format, "%s", PQgetvalue(res, 0, 1));
        long long headroom = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
        uint64_t max = u->gw->image_max_bytes;
        u->limit = headroom < 0 ? 0 : (uint64_t)headroom;
        if (max < u->limit) {
            u->limit = max;
        }
        if (declared >= 0 && (uint64_t)declared > u->limit) {
            nb_error_set(err, NB_ERR_LIMIT,
                         "an upload of %" PRId64 " bytes is over the limit of %" PRIu64
                         " bytes (the image size limit or the tenant's image storage quota)",
                         declared, u->limit);
            set_reason(err, "ResourceLimitExceeded");
        } else {
            rc = 0;
        }
    }
    PQclear(res);
    return rc;
}

struct gw_upload *gw_upload_begin(struct gw_ctx *gw, const struct gw_principal *who,
                                  const char *image_id, int part, int64_t declared_size,
                                  const char *claimed_sha256, struct nb_error *err)
{
    if (part < 0 || part > GW_UPLOAD_MAX_PARTS) {
        nb_error_set(err, NB_ERR_INVALID, "part numbers go from 1 to %d", GW_UPLOAD_MAX_PARTS);
        set_reason(err, "InvalidParameterValue");
        return NULL;
    }
    if (gw_require_writer(who, err) < 0) {
        return NULL;
    }
    if (!gw->store) {
        nb_error_set(err, NB_ERR_UNAVAILABLE, "this gateway has no image store configured");
        return NULL;
    }
    const char *ids[] = {image_id};
    if (gw_image_check_id(ids[0], err) < 0) {
        return NULL;
    }
    struct gw_upload *u = calloc(1, sizeof *u);
    if (!u) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    u->gw = gw;
    snprintf(u->tenant_id, sizeof u->tenant_id, "%s", who->tenant_id);
    snprintf(u->image_id, sizeof u->image_id, "%s", image_id);
    if (claimed_sha256) {
        snprintf(u->claimed, sizeof u->claimed, "%s", claimed_sha256);
        for (char *c = u->claimed; *c; c++) {
            *c = (char)(*c >= 'A' && *c <= 'F' ? *c + 32 : *c);
        }
    }
    u->part = part;
    if (check_image(u, declared_size, err) < 0) {
        free(u);
        return NULL;
    }
    /* A fresh key per upload: two uploads racing into one image never write the same blob, and
     * the one that loses at the end removes its own. */
    unsigned char rnd[6];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        nb_error_set(err, NB_ERR_INTERNAL, "getrandom failed");
        free(u);
        return NULL;
    }
    bool direct = !strcmp(u->source_format, "raw") || !strcmp(u->source_format, "qcow2");
    if (part) {
        snprintf(u->key, sizeof u->key, "parts/%s/%d.%02x%02x%02x%02x%02x%02x", image_id, part,
                 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
    } else {
        snprintf(u->key, sizeof u->key, "%s/%s.%02x%02x%02x%02x%02x%02x",
                 direct ? "images" : "uploads", image_id, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
                 rnd[5]);
    }
    u->md = EVP_MD_CTX_new();
    if (!u->md || EVP_DigestInit_ex(u->md, EVP_sha256(), NULL) != 1) {
        nb_error_set(err, NB_ERR_INTERNAL, "cannot start SHA-256");
        gw_upload_free(u);
        return NULL;
    }
    u->w = img_store_write_begin(gw->store, u->key, err);
    if (!u->w) {
        gw_upload_free(u);
        return NULL;
    }
    return u;
}

int gw_upload_write(struct gw_upload *u, const void *data, size_t len, struct nb_error *err)
{
    if (!u->w) {
        nb_error_set(err, NB_ERR_INTERNAL, "the upload already failed");
        return -1;
    }
    if (img_writer_size(u->w) + len > u->limit) {
        nb_error_set(err, NB_ERR_LIMIT,
                     "the upload is over the limit of %" PRIu64
                     " bytes (the image size limit or the tenant's image storage quota)",
                     u->limit);
        set_reason(err, "ResourceLimitExceeded");
        return -1;
    }
    if (EVP_DigestUpdate(u->md, data, len) != 1) {
        nb_error_set(err, NB_ERR_INTERNAL, "SHA-256 failed");
        return -1;
    }
    return img_writer_write(u->w, data, len, err);
}

static int64_t writer_read(void *ctx, void *buf, size_t len, uint64_t off, struct nb_error *err)
{
    return img_writer_pread(ctx, buf, len, off, err);
}

/* Records the outcome in one transaction: a raw or qcow2 image becomes available; any other
 * format gets an import task and nubo-imaged is woken. Returns 1 done, 0 when the image is no
 * longer waiting for bytes (another upload won), -1 on error. */
static int record_upload(struct gw_upload *u, const struct img_disk_info *info, uint64_t size,
                         const char *sha, bool direct, char *task_out, struct nb_error *err)
{
    char location[1024] = "", size_s[24], vsize_s[24];
    snprintf(size_s, sizeof size_s, "%" PRIu64, size);
    snprintf(vsize_s, sizeof vsize_s, "%" PRIu64, info->virtual_size);
    if (direct &&
        img_blob_url(u->gw->imaged_url, u->gw->url_key, u->key, location, sizeof location) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "image store URL too long");
        return -1;
    }
    struct nb_pg_conn *conn = nb_pg_acquire(u->gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    PGresult *res = NULL;
    if (nb_pg_begin(conn, err) < 0) {
        goto out;
    }
    if (direct) {
        const char *p[] = {u->image_id, u->tenant_id, u->key,  size_s,
                           sha,         info->format, vsize_s, location};
        res = nb_pg_exec(conn,
                         "UPDATE images SET state = 'available', store_key = $3, "
                         "stored_bytes = $4::bigint, size_bytes = $4::bigint, sha256 = $5, "
                         "disk_format = $6, virtual_size = $7::bigint, location = $8, "
                         "updated_at = now() WHERE id = $1 AND tenant_id = $2 "
                         "AND state = 'pending' AND store_key IS NULL",
                         8, p, err);
    } else {
        const char *p[] = {u->image_id, u->tenant_id, u->key, size_s, info->format};
        res = nb_pg_exec(conn,
                         "WITH m AS (UPDATE images SET stored_bytes = $4::bigint, "
                         "updated_at = now() WHERE id = $1 AND tenant_id = $2 "
                         "AND state = 'pending' AND store_key IS NULL "
                         "AND NOT EXISTS (SELECT 1 FROM image_tasks t WHERE t.image_id = $1 "
                         "AND t.kind = 'import') RETURNING id) "
                         "INSERT INTO image_tasks (id, kind, tenant_id, image_id, source_key, "
                         "source_format) SELECT 'import-' || id, 'import', $2, id, $3, $5 "
                         "FROM m RETURNING id",
                         5, p, err);
    }
    if (!res) {
        goto out;
    }
    if (strtol(PQcmdTuples(res), NULL, 10) != 1) {
        rc = 0;
        goto out;
    }
    if (!direct) {
        snprintf(task_out, NB_ID_MAX + 16, "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        const char *p[] = {task_out};
        res = nb_pg_exec(conn, "SELECT pg_notify('nubo_imaged', $1)", 1, p, err);
        if (!res) {
            goto out;
        }
    }
    if (nb_pg_commit(conn, err) < 0) {
        goto out;
    }
    rc = 1;
out:
    PQclear(res);
    if (rc != 1 && nb_pg_in_transaction(conn)) {
        nb_pg_rollback(conn);
    }
    nb_pg_release(conn);
    return rc;
}

/* A part is kept as it is (the whole is checked when the parts are joined) and recorded,
 * replacing an earlier upload of the same part. */
static int finish_part(struct gw_upload *u, uint64_t size, const char *sha, char *state_out,
                       struct nb_error *err)
{
    struct img_writer *w = u->w;
    u->w = NULL;
    if (img_writer_commit(w, err) < 0) {
        return -1;
    }
    char part_s[16], size_s[24];
    snprintf(part_s, sizeof part_s, "%d", u->part);
    snprintf(size_s, sizeof size_s, "%" PRIu64, size);
    struct nb_pg_conn *conn = nb_pg_acquire(u->gw->pool, SVC_ACQUIRE_MS, err);
    PGresult *res = NULL;
    if (conn) {
        const char *p[] = {u->image_id, part_s, size_s, sha, u->key};
        res = nb_pg_exec(conn,
                         "WITH old AS (SELECT store_key FROM image_upload_parts WHERE image_id = "
                         "$1 AND part_number = $2::int), n AS (INSERT INTO image_upload_parts "
                         "(image_id, part_number, size_bytes, sha256, store_key) SELECT $1, "
                         "$2::int, $3::bigint, $4, $5 FROM images WHERE id = $1 AND state = "
                         "'pending' AND store_key IS NULL ON CONFLICT (image_id, part_number) DO "
                         "UPDATE SET size_bytes = excluded.size_bytes, sha256 = excluded.sha256, "
                         "store_key = excluded.store_key, created_at = now() RETURNING 1) "
                         "SELECT (SELECT count(*) FROM n), (SELECT store_key FROM old)",
                         5, p, err);
        nb_pg_release(conn);
    }
    struct nb_error derr = {0};
    if (!res || strcmp(PQgetvalue(res, 0, 0), "1") != 0) {
        if (res) {
            nb_error_set(err, NB_ERR_CONFLICT, "image %s no longer waits for an upload",
                         u->image_id);
            set_reason(err, "IncorrectState");
        }
        PQclear(res);
        img_store_delete(u->gw->store, u->key, &derr);
        return -1;
    }
    if (!PQgetisnull(res, 0, 1)) {
        img_store_delete(u->gw->store, PQgetvalue(res, 0, 1), &derr); /* the part it replaced */
    }
    PQclear(res);
    snprintf(state_out, 16, "%s", "part");
    return 0;
}

int gw_upload_finish(struct gw_upload *u, char *state_out, char *task_out, struct nb_error *err)
{
    unsigned char digest[32];
    unsigned int dlen = 0;
    char sha[65];
    task_out[0] = '\0';
    if (!u->w || EVP_DigestFinal_ex(u->md, digest, &dlen) != 1 || dlen != 32) {
        nb_error_set(err, NB_ERR_INTERNAL, "the upload already failed");
        return -1;
    }
    nb_hex_encode(digest, 32, sha);
    uint64_t size = img_writer_size(u->w);
    if (u->claimed[0] && strcmp(u->claimed, sha) != 0) {
        nb_error_set(err, NB_ERR_INVALID,
                     "the upload's SHA-256 is %s, not %s as x-amz-content-sha256 said: nothing "
                     "was stored",
                     sha, u->claimed);
        set_reason(err, "BadDigest");
        return -1;
    }
    if (size == 0) {
        nb_error_set(err, NB_ERR_INVALID, "the upload is empty");
        set_reason(err, "InvalidParameterValue");
        return -1;
    }
    if (u->part) {
        return finish_part(u, size, sha, state_out, err);
    }
    /* An OVA is an archive, checked whole by nubo-imaged; a disk is probed here. */
    struct img_disk_info info = {.virtual_size = size};
    snprintf(info.format, sizeof info.format, "%s", u->source_format);
    if (strcmp(u->source_format, "ova") != 0 &&
        img_disk_probe(writer_read, u->w, size, u->source_format, &info, err) < 0) {
        if (err->code == NB_ERR_INVALID) {
            char msg[NB_ERROR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", err->msg);
            nb_error_set(err, NB_ERR_INVALID, "the uploaded %s image is refused: %s",
                         u->source_format, msg);
            set_reason(err, "InvalidParameterValue");
        }
        return -1;
    }
    bool direct = !strcmp(u->source_format, "raw") || !strcmp(u->source_format, "qcow2");
    struct img_writer *w = u->w;
    u->w = NULL;
    if (img_writer_commit(w, err) < 0) {
        return -1;
    }
    int rc = record_upload(u, &info, size, sha, direct, task_out, err);
    if (rc != 1) {
        struct nb_error derr = {0};
        if (img_store_delete(u->gw->store, u->key, &derr) < 0) {
            nb_warn("could not remove blob %s of a failed upload (nubo-imaged collects it): %s",
                    u->key, derr.msg);
        }
        if (rc == 0) {
            nb_error_set(err, NB_ERR_CONFLICT,
                         "image %s no longer waits for an upload (another upload finished first, "
                         "or it was deregistered)",
                         u->image_id);
            set_reason(err, "IncorrectState");
        }
        return -1;
    }
    snprintf(state_out, 16, "%s", direct ? "available" : "pending");
    return 0;
}

void gw_upload_free(struct gw_upload *u)
{
    if (!u) {
        return;
    }
    img_writer_abort(u->w);
    EVP_MD_CTX_free(u->md);
    free(u);
}

int gw_image_create_for_upload(struct gw_ctx *gw, const struct gw_principal *who,
                               const struct gw_image *img, const char *source_format, char *id_out,
                               struct nb_error *err)
{
    static const char *const formats[] = {"raw", "qcow2", "vhd", "vmdk", "ova"};
    bool known = false;
    for (size_t i = 0; i < sizeof formats / sizeof *formats; i++) {
        known = known || !strcmp(source_format, formats[i]);
    }
    if (!known) {
        nb_error_set(err, NB_ERR_INVALID,
                     "unknown source_format \"%.32s\": use raw, qcow2, vhd, vmdk or ova",
                     source_format);
        set_reason(err, "InvalidParameterValue");
        return -1;
    }
    if (img->location) {
        nb_error_set(err, NB_ERR_INVALID,
                     "an image is either uploaded (source_format) or registered with a location, "
                     "not both");
        set_reason(err, "InvalidParameterCombination");
        return -1;
    }
    if (gw_require_writer(who, err) < 0 || (img->is_public && gw_require_admin(who, err) < 0)) {
        return -1;
    }
    const char *type = img->image_type ? img->image_type : "machine";
    const char *prefix = !strcmp(type, "kernel") ? "aki" : !strcmp(type, "ramdisk") ? "ari" : "ami";
    if (nb_id_new(prefix, id_out, NB_ID_MAX) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not make an image id");
        return -1;
    }
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    const char *p[] = {id_out,
                       who->tenant_id,
                       img->name,
                       img->description ? img->description : "",
                       img->is_public ? "t" : "f",
                       type,
                       img->architecture ? img->architecture : "x86_64",
                       source_format,
                       img->kernel_id,
                       img->ramdisk_id,
                       img->kernel_args};
    /* A kernel-booted image names a kernel (aki-) and a ramdisk (ari-) the tenant may use. */
    PGresult *res = nb_pg_exec(conn,
                               "INSERT INTO images (id, tenant_id, name, description, is_public, "
                               "image_type, architecture, state, source_format, kernel_id, "
                               "ramdisk_id, kernel_args) SELECT $1, $2, $3, $4, $5, $6, $7, "
                               "'pending', $8, $9, $10, $11 "
                               "WHERE ($9::text IS NULL OR EXISTS (SELECT 1 FROM images k "
                               "WHERE k.id = $9 AND k.image_type = 'kernel' AND k.state = "
                               "'available' AND (k.tenant_id = $2 OR k.is_public))) "
                               "AND ($10::text IS NULL OR EXISTS (SELECT 1 FROM images r "
                               "WHERE r.id = $10 AND r.image_type = 'ramdisk' AND r.state = "
                               "'available' AND (r.tenant_id = $2 OR r.is_public)))",
                               11, p, err);
    nb_pg_release(conn);
    if (res && strtol(PQcmdTuples(res), NULL, 10) != 1) {
        PQclear(res);
        nb_error_set(err, NB_ERR_INVALID,
                     "kernel_id and ramdisk_id must name an available kernel (aki-) and ramdisk "
                     "(ari-) image that this tenant may use");
        set_reason(err, "InvalidParameterValue");
        return -1;
    }
    if (!res) {
        if (err->code == NB_ERR_CONFLICT) {
            nb_error_set(err, NB_ERR_CONFLICT, "An image named '%s' already exists", img->name);
            set_reason(err, "InvalidAMIName.Duplicate");
        } else if (err->code == NB_ERR_INVALID) {
            set_reason(err, "InvalidParameterValue");
        }
        return -1;
    }
    PQclear(res);
    return 0;
}

int gw_image_blob(struct gw_ctx *gw, const struct gw_principal *who, const char *image_id,
                  char *key_out, uint64_t *size, char *sha256_out, struct nb_error *err)
{
    const char *ids[] = {image_id};
    if (gw_image_check_id(ids[0], err) < 0) {
        return -1;
    }
    if (!gw->store) {
        nb_error_set(err, NB_ERR_UNAVAILABLE, "this gateway has no image store configured");
        return -1;
    }
    const char *p[] = {image_id, who->tenant_id, who->role == GW_ROLE_ADMIN ? "t" : "f"};
    PGresult *res = svc_exec(gw,
                             "SELECT state, store_key, size_bytes, sha256 FROM images "
                             "WHERE id = $1 AND (tenant_id = $2 OR $3::boolean) "
                             "AND state <> 'deregistered'",
                             3, p, err);
    if (!res) {
        return -1;
    }
    int rc = -1;
    if (PQntuples(res) != 1) {
        nb_error_set(err, NB_ERR_NOT_FOUND, "The image id '[%s]' does not exist", image_id);
        set_reason(err, "InvalidAMIID.NotFound");
    } else if (strcmp(PQgetvalue(res, 0, 0), "available") || PQgetisnull(res, 0, 1)) {
        nb_error_set(err, NB_ERR_CONFLICT, "image %s has no bytes in the image store (it is %s)",
                     image_id, PQgetvalue(res, 0, 0));
        set_reason(err, "IncorrectState");
    } else {
        snprintf(key_out, IMG_KEY_MAX + 1, "%s", PQgetvalue(res, 0, 1));
        *size = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
        snprintf(sha256_out, 65, "%s", PQgetvalue(res, 0, 3));
        rc = 0;
    }
    PQclear(res);
    return rc;
}

int gw_image_export(struct gw_ctx *gw, const struct gw_principal *who, const char *image_id,
                    char *task_out, struct nb_error *err)
{
    const char *ids[] = {image_id};
    if (gw_require_writer(who, err) < 0 || gw_image_check_id(ids[0], err) < 0) {
        return -1;
    }
    char id[NB_ID_MAX];
    if (nb_id_new("export-ami", id, sizeof id) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not make a task id");
        return -1;
    }
    const char *p[] = {image_id, who->tenant_id, id};
    PGresult *res = svc_exec(gw,
                             "WITH t AS (INSERT INTO image_tasks (id, kind, tenant_id, "
                             "image_id, source_key) SELECT $3, 'export', $2, id, store_key "
                             "FROM images WHERE id = $1 AND tenant_id = $2 AND state = "
                             "'available' AND store_key IS NOT NULL RETURNING id) "
                             "SELECT (SELECT id FROM t), (SELECT state FROM images WHERE id = $1 "
                             "AND tenant_id = $2), pg_notify('nubo_imaged', $3)",
                             3, p, err);
    if (!res) {
        return -1;
    }
    int rc = -1;
    if (!PQgetisnull(res, 0, 0)) {
        snprintf(task_out, NB_ID_MAX + 16, "%s", id);
        rc = 0;
    } else if (PQgetisnull(res, 0, 1) || !strcmp(PQgetvalue(res, 0, 1), "deregistered")) {
        nb_error_set(err, NB_ERR_NOT_FOUND, "The image id '[%s]' does not exist", image_id);
        set_reason(err, "InvalidAMIID.NotFound");
    } else {
        nb_error_set(err, NB_ERR_CONFLICT,
                     "image %s cannot be exported: it is %s, or its bytes are not in the image "
                     "store (an image registered by URL)",
                     image_id, PQgetvalue(res, 0, 1));
        set_reason(err, "IncorrectState");
    }
    PQclear(res);
    return rc;
}

int gw_image_export_blob(struct gw_ctx *gw, const struct gw_principal *who, const char *image_id,
                         char *key_out, uint64_t *size, char *sha256_out, struct nb_error *err)
{
    const char *ids[] = {image_id};
    if (gw_image_check_id(ids[0], err) < 0) {
        return -1;
    }
    const char *p[] = {image_id, who->tenant_id};
    PGresult *res = svc_exec(gw,
                             "SELECT EXISTS (SELECT 1 FROM images WHERE id = $1 AND tenant_id "
                             "= $2 AND state <> 'deregistered'), t.result_key, t.result_bytes, "
                             "t.result_sha256 FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT * "
                             "FROM image_tasks WHERE image_id = $1 AND tenant_id = $2 AND kind "
                             "= 'export' AND state = 'completed' ORDER BY updated_at DESC "
                             "LIMIT 1) t ON true",
                             2, p, err);
    if (!res) {
        return -1;
    }
    int rc = -1;
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        nb_error_set(err, NB_ERR_NOT_FOUND, "The image id '[%s]' does not exist", image_id);
        set_reason(err, "InvalidAMIID.NotFound");
    } else if (PQgetisnull(res, 0, 1)) {
        nb_error_set(err, NB_ERR_CONFLICT,
                     "image %s has no completed export: POST /v1/images/%s/export first", image_id,
                     image_id);
        set_reason(err, "IncorrectState");
    } else {
        snprintf(key_out, IMG_KEY_MAX + 1, "%s", PQgetvalue(res, 0, 1));
        *size = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
        snprintf(sha256_out, 65, "%s", PQgetvalue(res, 0, 3));
        rc = 0;
    }
    PQclear(res);
    return rc;
}

int gw_image_import_url(struct gw_ctx *gw, const struct gw_principal *who, const char *format,
                        const char *url, const char *description, char *image_out, char *task_out,
                        struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0) {
        return -1;
    }
    if (!img_import_url_allowed(gw->import_url_prefixes, url)) {
        nb_error_set(err, NB_ERR_INVALID,
                     "this cloud does not import from \"%.200s\": upload the image with PUT "
                     "/v1/images/{id}/file instead%s",
                     url, gw->import_url_prefixes[0] ? "" : " (imports from URLs are off)");
        set_reason(err, "InvalidParameterValue");
        return -1;
    }
    char name[NB_ID_MAX + 16];
    struct gw_image img = {.name = name, .description = description};
    if (nb_id_new("import-ami", name, sizeof name) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not make an id");
        return -1;
    }
    if (gw_image_create_for_upload(gw, who, &img, format, image_out, err) < 0) {
        return -1;
    }
    snprintf(task_out, NB_ID_MAX + 16, "import-%s", image_out);
    const char *p[] = {task_out, who->tenant_id, image_out, format, url};
    PGresult *res = svc_exec(gw,
                             "WITH t AS (INSERT INTO image_tasks (id, kind, tenant_id, image_id, "
                             "source_format, source_url) VALUES ($1, 'import', $2, $3, $4, $5) "
                             "RETURNING id) SELECT pg_notify('nubo_imaged', id) FROM t",
                             5, p, err);
    if (!res) {
        return -1;
    }
    PQclear(res);
    return 0;
}

static const char TASK_COLUMNS[] =
    "t.id, t.kind, t.image_id, t.state, t.status_message, t.progress, "
    "(extract(epoch FROM t.updated_at) * 1000)::bigint, COALESCE(t.result_bytes, 0), "
    "t.result_sha256, m.description";

static void task_from_row(PGresult *res, int r, struct gw_image_task *out)
{
    *out = (struct gw_image_task){
        .id = svc_val(res, r, 0),
        .kind = svc_val(res, r, 1),
        .image_id = svc_val(res, r, 2),
        .state = svc_val(res, r, 3),
        .status_message = svc_val(res, r, 4),
        .progress = atoi(svc_val(res, r, 5)),
        .updated_ms = strtoll(svc_val(res, r, 6), NULL, 10),
        .result_bytes = strtoll(svc_val(res, r, 7), NULL, 10),
        .result_sha256 = svc_val(res, r, 8),
        .description = svc_val(res, r, 9),
    };
}

int gw_image_tasks_list(struct gw_ctx *gw, const struct gw_principal *who, const char *kind,
                        const char *const *ids, size_t n_ids, struct nb_arena *arena,
                        struct gw_image_task **out, size_t *n, struct nb_error *err)
{
    struct svc_sql q;
    svc_sql_init(&q, arena);
    nb_buf_printf(&q.sql,
                  "SELECT %s FROM image_tasks t JOIN images m ON m.id = t.image_id "
                  "WHERE t.tenant_id = %s AND t.kind = %s",
                  TASK_COLUMNS, svc_sql_param(&q, who->tenant_id), svc_sql_param(&q, kind));
    if (n_ids) {
        nb_buf_printf(&q.sql, " AND t.id = ANY(%s::text[])", svc_sql_array(&q, ids, n_ids));
    }
    nb_buf_puts(&q.sql, " ORDER BY t.created_at DESC, t.id");
    PGresult *res = svc_sql_run(gw, &q, err);
    if (!res) {
        return -1;
    }
    svc_keep(res, arena);
    *n = (size_t)PQntuples(res);
    *out = nb_arena_zalloc(arena, sizeof **out * (*n ? *n : 1));
    for (size_t i = 0; i < *n; i++) {
        task_from_row(res, (int)i, &(*out)[i]);
    }
    for (size_t i = 0; i < n_ids; i++) {
        bool found = false;
        for (size_t j = 0; j < *n && !found; j++) {
            found = !strcmp(ids[i], (*out)[j].id);
        }
        if (!found) {
            nb_error_set(err, NB_ERR_NOT_FOUND, "The task ID '%s' does not exist", ids[i]);
            set_reason(err, !strcmp(kind, "import") ? "InvalidConversionTaskId.Malformed"
                                                    : "InvalidExportImageTaskId.NotFound");
            return -1;
        }
    }
    return 0;
}

int gw_image_task_get(struct gw_ctx *gw, const struct gw_principal *who, const char *task_id,
                      struct nb_arena *arena, struct gw_image_task *out, struct nb_error *err)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM image_tasks t JOIN images m ON m.id = t.image_id "
             "WHERE t.id = $1 AND t.tenant_id = $2",
             TASK_COLUMNS);
    const char *p[] = {task_id, who->tenant_id};
    PGresult *res = svc_exec(gw, sql, 2, p, err);
    if (!res) {
        return -1;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        nb_error_set(err, NB_ERR_NOT_FOUND, "The image task '%s' does not exist", task_id);
        set_reason(err, "InvalidImportTaskId.NotFound");
        return -1;
    }
    svc_keep(res, arena);
    task_from_row(res, 0, out);
    return 0;
}

int gw_upload_complete(struct gw_ctx *gw, const struct gw_principal *who, const char *image_id,
                       const int *parts, size_t n_parts, const char *claimed_sha256,
                       char *state_out, char *task_out, struct nb_error *err)
{
    if (n_parts == 0 || n_parts > GW_UPLOAD_MAX_PARTS) {
        nb_error_set(err, NB_ERR_INVALID, "give the parts to join, 1 to %d of them",
                     GW_UPLOAD_MAX_PARTS);
        set_reason(err, "InvalidParameterValue");
        return -1;
    }
    for (size_t i = 1; i < n_parts; i++) {
        if (parts[i] <= parts[i - 1]) {
            nb_error_set(err, NB_ERR_INVALID, "the parts must be listed in ascending order");
            set_reason(err, "InvalidPartOrder");
            return -1;
        }
    }
    const char *p[] = {image_id, who->tenant_id};
    PGresult *res = svc_exec(gw,
                             "SELECT p.part_number, p.store_key, p.size_bytes FROM "
                             "image_upload_parts p JOIN images m ON m.id = p.image_id "
                             "WHERE p.image_id = $1 AND m.tenant_id = $2 "
                             "ORDER BY p.part_number",
                             2, p, err);
    if (!res) {
        return -1;
    }
    /* Every listed part must be there; parts not listed are dropped with the rest. */
    int rows = PQntuples(res), r = 0;
    int64_t total = 0;
    int *row_of = calloc(n_parts, sizeof *row_of);
    for (size_t i = 0; row_of && i < n_parts; i++) {
        while (r < rows && atoi(PQgetvalue(res, r, 0)) < parts[i]) {
            r++;
        }
        if (r == rows || atoi(PQgetvalue(res, r, 0)) != parts[i]) {
            nb_error_set(err, NB_ERR_INVALID, "part %d of image %s was not uploaded", parts[i],
                         image_id);
            set_reason(err, "InvalidPart");
            free(row_of);
            PQclear(res);
            return -1;
        }
        row_of[i] = r;
        total += strtoll(PQgetvalue(res, r, 2), NULL, 10);
    }
    int rc = -1;
    char *buf = malloc(1u << 20);
    struct gw_upload *u =
        row_of && buf ? gw_upload_begin(gw, who, image_id, 0, total, claimed_sha256, err) : NULL;
    for (size_t i = 0; u && i < n_parts; i++) {
        const char *key = PQgetvalue(res, row_of[i], 1);
        uint64_t off = 0;
        int64_t got;
        while ((got = img_store_pread(gw->store, key, buf, 1u << 20, off, err)) > 0) {
            if (gw_upload_write(u, buf, (size_t)got, err) < 0) {
                goto out;
            }
            off += (uint64_t)got;
        }
        if (got < 0) {
            goto out;
        }
    }
    if (u && gw_upload_finish(u, state_out, task_out, err) == 0) {
        rc = 0;
        /* Joined: the parts have served their purpose. */
        struct nb_error derr = {0};
        const char *q[] = {image_id};
        PGresult *d =
            svc_exec(gw, "DELETE FROM image_upload_parts WHERE image_id = $1", 1, q, &derr);
        for (int k = 0; d && k < rows; k++) {
            img_store_delete(gw->store, PQgetvalue(res, k, 1), &derr);
        }
        PQclear(d); /* if the rows stay, their blobs stay too; the collector leaves both */
    }
out:
    gw_upload_free(u);
    free(buf);
    free(row_of);
    PQclear(res);
    return rc;
}

int gw_upload_parts_list(struct gw_ctx *gw, const struct gw_principal *who, const char *image_id,
                         struct nb_arena *arena, struct gw_upload_part **out, size_t *n,
                         struct nb_error *err)
{
    const char *ids[] = {image_id};
    if (gw_image_check_id(ids[0], err) < 0) {
        return -1;
    }
    const char *p[] = {image_id, who->tenant_id};
    PGresult *res = svc_exec(gw,
                             "SELECT m.id IS NOT NULL, p.part_number, p.size_bytes, p.sha256 "
                             "FROM (SELECT id FROM images WHERE id = $1 AND tenant_id = $2 "
                             "AND state <> 'deregistered') m LEFT JOIN image_upload_parts p "
                             "ON p.image_id = m.id ORDER BY p.part_number",
                             2, p, err);
    if (!res) {
        return -1;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        nb_error_set(err, NB_ERR_NOT_FOUND, "The image id '[%s]' does not exist", image_id);
        set_reason(err, "InvalidAMIID.NotFound");
        return -1;
    }
    svc_keep(res, arena);
    *n = 0;
    *out = nb_arena_zalloc(arena, sizeof **out * (size_t)PQntuples(res));
    for (int r = 0; r < PQntuples(res); r++) {
        if (!PQgetisnull(res, r, 1)) {
            (*out)[*n].part_number = atoi(svc_val(res, r, 1));
            (*out)[*n].size_bytes = strtoll(svc_val(res, r, 2), NULL, 10);
            (*out)[*n].sha256 = svc_val(res, r, 3);
            (*n)++;
        }
    }
    return 0;
}
