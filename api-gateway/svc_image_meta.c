/* Image service: deregistering, descriptions, launch permissions, CopyImage (see
 * svc_image_meta.h). */
#include "svc_image_meta.h"

#include "auth.h"
#include "gateway.h"
#include "svc.h"
#include "svc_sql.h"

#include "nubo/arena.h"
#include "nubo/buf.h"
#include "nubo/error.h"
#include "nubo/id.h"
#include "nubo/pg.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* The images a tenant ($2) sees: its own, public ones, and those shared with it. */
#define VISIBLE_TO_2                                                                               \
    "(m.tenant_id = $2 OR m.is_public OR EXISTS (SELECT 1 FROM image_launch_permissions p "        \
    "WHERE p.image_id = m.id AND p.tenant_id = $2))"

int gw_image_check_id(const char *id, struct nb_error *err)
{
    if (!nb_id_valid("ami", id) && !nb_id_valid("aki", id) && !nb_id_valid("ari", id)) {
        nb_error_set(err, NB_ERR_INVALID, "Invalid id: '%.64s' (expecting 'ami-...')", id);
        nb_error_reason(err, "InvalidAMIID.Malformed");
        return -1;
    }
    return 0;
}

static void not_found(const char *image_id, struct nb_error *err)
{
    nb_error_set(err, NB_ERR_NOT_FOUND, "The image id '[%s]' does not exist", image_id);
    nb_error_reason(err, "InvalidAMIID.NotFound");
}

/* Checks, on 'conn', that 'image_id' is a live image owned by 'who' (locking its row when
 * 'lock'). An image 'who' sees but does not own is AuthFailure, one it does not see
 * InvalidAMIID.NotFound. Returns 0, or -1 with 'err'. */
static int check_owner(struct nb_pg_conn *conn, const struct gw_principal *who,
                       const char *image_id, bool lock, struct nb_error *err)
{
    if (gw_image_check_id(image_id, err) < 0) {
        return -1;
    }
    const char *p[] = {image_id, who->tenant_id};
    PGresult *res =
        nb_pg_exec(conn,
                   lock ? "SELECT m.tenant_id = $2 FROM images m WHERE m.id = $1 "
                          "AND m.state <> 'deregistered' AND " VISIBLE_TO_2 " FOR UPDATE OF m"
                        : "SELECT m.tenant_id = $2 FROM images m WHERE m.id = $1 "
                          "AND m.state <> 'deregistered' AND " VISIBLE_TO_2,
                   2, p, err);
    if (!res) {
        return -1;
    }
    int found = PQntuples(res);
    bool mine = found && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!found) {
        not_found(image_id, err);
        return -1;
    }
    if (!mine) {
        nb_error_set(err, NB_ERR_FORBIDDEN, "Not authorized for image:%s", image_id);
        nb_error_reason(err, "AuthFailure");
        return -1;
    }
    return 0;
}

int gw_image_deregister(struct gw_ctx *gw, const struct gw_principal *who, const char *image_id,
                        struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    if (nb_pg_begin(conn, err) < 0 || check_owner(conn, who, image_id, true, err) < 0) {
        goto done;
    }
    /* stored_bytes stays: the storage trigger meters a deregistered image as 0 bytes, and
     * nubo-imaged deletes the blob later. */
    const char *p[] = {image_id};
    PGresult *res = nb_pg_exec(conn,
                               "UPDATE images SET state = 'deregistered', updated_at = now() "
                               "WHERE id = $1",
                               1, p, err);
    if (!res) {
        goto done;
    }
    PQclear(res);
    rc = nb_pg_commit(conn, err);

done:
    nb_pg_release(conn);
    return rc;
}

int gw_image_set_description(struct gw_ctx *gw, const struct gw_principal *who,
                             const char *image_id, const char *description, struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    if (nb_pg_begin(conn, err) < 0 || check_owner(conn, who, image_id, true, err) < 0) {
        goto done;
    }
    const char *p[] = {image_id, description};
    PGresult *res = nb_pg_exec(conn,
                               "UPDATE images SET description = $2, updated_at = now() "
                               "WHERE id = $1",
                               2, p, err);
    if (!res) {
        if (err->code == NB_ERR_INVALID) {
            nb_error_reason(err, "InvalidParameterValue");
        }
        goto done;
    }
    PQclear(res);
    rc = nb_pg_commit(conn, err);

done:
    nb_pg_release(conn);
    return rc;
}

int gw_image_launch_perms_get(struct gw_ctx *gw, const struct gw_principal *who,
                              const char *image_id, struct nb_arena *arena,
                              struct gw_launch_perms *out, struct nb_error *err)
{
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    if (check_owner(conn, who, image_id, false, err) < 0) {
        goto done;
    }
    const char *p[] = {image_id};
    PGresult *res = nb_pg_exec(conn,
                               "SELECT m.is_public, p.tenant_id FROM images m "
                               "LEFT JOIN image_launch_permissions p ON p.image_id = m.id "
                               "WHERE m.id = $1 ORDER BY p.tenant_id",
                               1, p, err);
    if (!res) {
        goto done;
    }
    int rows = PQntuples(res);
    out->is_public = rows > 0 && PQgetvalue(res, 0, 0)[0] == 't';
    out->tenant_ids = nb_arena_zalloc(arena, sizeof *out->tenant_ids * (rows ? (size_t)rows : 1));
    out->n_tenant_ids = 0;
    for (int r = 0; r < rows; r++) {
        if (!PQgetisnull(res, r, 1)) {
            out->tenant_ids[out->n_tenant_ids++] = svc_col(res, r, 1, arena);
        }
    }
    PQclear(res);
    rc = 0;

done:
    nb_pg_release(conn);
    return rc;
}

static bool is_tenant_id(const char *s)
{
    size_t k = 0;
    while (s[k] && isdigit((unsigned char)s[k])) {
        k++;
    }
    return k == 12 && !s[k];
}

/* Checks that every one of 'ids' is a 12-digit tenant id and, when 'must_exist', an existing
 * tenant. Returns 0, or -1 with 'err' (InvalidAMIAttributeItemValue). */
static int check_tenant_ids(struct nb_pg_conn *conn, const char *const *ids, size_t n,
                            bool must_exist, struct nb_arena *arena, struct nb_error *err)
{
    for (size_t k = 0; k < n; k++) {
        if (!is_tenant_id(ids[k])) {
            nb_error_set(err, NB_ERR_INVALID,
                         "Invalid attribute item value '%.64s' for userId item type: it must be "
                         "a 12-digit account id",
                         ids[k]);
            nb_error_reason(err, "InvalidAMIAttributeItemValue");
            return -1;
        }
    }
    if (!must_exist || n == 0) {
        return 0;
    }
    struct svc_sql q;
    svc_sql_init(&q, arena);
    nb_buf_printf(&q.sql,
                  "SELECT u.id FROM unnest(%s) AS u(id) WHERE NOT EXISTS "
                  "(SELECT 1 FROM tenants t WHERE t.id = u.id) LIMIT 1",
                  svc_sql_array(&q, ids, n));
    PGresult *res = nb_pg_exec(conn, q.sql.data, q.n, q.params, err);
    nb_buf_free(&q.sql);
    if (!res) {
        return -1;
    }
    int rc = 0;
    if (PQntuples(res)) {
        nb_error_set(err, NB_ERR_INVALID,
                     "Invalid attribute item value '%s' for userId item type: no such account",
                     PQgetvalue(res, 0, 0));
        nb_error_reason(err, "InvalidAMIAttributeItemValue");
        rc = -1;
    }
    PQclear(res);
    return rc;
}

/* Runs the command 'sql' with the 'n' parameters 'p'. Returns 0, or -1 with 'err'. */
static int exec_image(struct nb_pg_conn *conn, const char *sql, const char *const *p, int n,
                      struct nb_error *err)
{
    PGresult *res = nb_pg_exec(conn, sql, n, p, err);
    if (!res) {
        return -1;
    }
    PQclear(res);
    return 0;
}

/* Runs 'sql' with $1 = 'image_id', $2 = the owner, $3 = 'ids' as text[]. */
static int exec_with_ids(struct nb_pg_conn *conn, const char *sql, const char *image_id,
                         const char *owner, const char *const *ids, size_t n,
                         struct nb_arena *arena, struct nb_error *err)
{
    struct svc_sql q;
    svc_sql_init(&q, arena);
    svc_sql_param(&q, image_id);
    svc_sql_param(&q, owner);
    svc_sql_array(&q, ids, n);
    nb_buf_puts(&q.sql, sql);
    PGresult *res = nb_pg_exec(conn, q.sql.data, q.n, q.params, err);
    nb_buf_free(&q.sql);
    if (!res) {
        return -1;
    }
    PQclear(res);
    return 0;
}

int gw_image_launch_perms_modify(struct gw_ctx *gw, const struct gw_principal *who,
                                 const char *image_id, const struct gw_launch_perm_change *ch,
                                 struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0) {
        return -1;
    }
    struct nb_arena *arena = nb_arena_new(0);
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        nb_arena_free(arena);
        return -1;
    }
    int rc = -1;
    if (nb_pg_begin(conn, err) < 0 || check_owner(conn, who, image_id, true, err) < 0 ||
        check_tenant_ids(conn, ch->add, ch->n_add, true, arena, err) < 0 ||
        check_tenant_ids(conn, ch->remove, ch->n_remove, false, arena, err) < 0) {
        goto done;
    }
    const char *p[] = {image_id, ch->set_public > 0 ? "true" : "false"};
    if (ch->reset &&
        (exec_image(conn, "DELETE FROM image_launch_permissions WHERE image_id = $1", p, 1, err) <
             0 ||
         exec_image(conn, "UPDATE images SET is_public = false WHERE id = $1", p, 1, err) < 0)) {
        goto done;
    }
    if (ch->n_remove &&
        exec_with_ids(conn,
                      "DELETE FROM image_launch_permissions WHERE image_id = $1 "
                      "AND tenant_id = ANY($3::text[]) AND tenant_id <> $2",
                      image_id, who->tenant_id, ch->remove, ch->n_remove, arena, err) < 0) {
        goto done;
    }
    if (ch->n_add && exec_with_ids(conn,
                                   "INSERT INTO image_launch_permissions (image_id, tenant_id) "
                                   "SELECT DISTINCT $1, u.id FROM unnest($3::text[]) AS u(id) "
                                   "WHERE u.id <> $2 ON CONFLICT DO NOTHING",
                                   image_id, who->tenant_id, ch->add, ch->n_add, arena, err) < 0) {
        goto done;
    }
    if ((ch->set_public >= 0 &&
         exec_image(conn, "UPDATE images SET is_public = $2 WHERE id = $1", p, 2, err) < 0) ||
        exec_image(conn, "UPDATE images SET updated_at = now() WHERE id = $1", p, 1, err) < 0) {
        goto done;
    }
    rc = nb_pg_commit(conn, err);

done:
    nb_pg_release(conn);
    nb_arena_free(arena);
    return rc;
}

/* Records 'rq->client_token' for the copy 'new_id'. Returns 1 if this request is the first with
 * it, 0 if an earlier one made image '*earlier' (NB_ID_MAX bytes), -1 with 'err'. */
static int claim_token(struct nb_pg_conn *conn, const struct gw_principal *who,
                       const struct gw_image_copy_request *rq, const char *new_id, char *earlier,
                       struct nb_error *err)
{
    struct nb_buf key = NB_BUF_INIT;
    nb_buf_printf(&key, "%s\n%s\n%s\n", rq->source_image_id, rq->name,
                  rq->description ? rq->description : "");
    const char *p[] = {who->tenant_id, rq->client_token, key.data, new_id};
    PGresult *res = nb_pg_exec(conn,
                               "INSERT INTO client_tokens (tenant_id, token, action, params_hash, "
                               "result_id) VALUES ($1, $2, 'CopyImage', md5($3), $4) "
                               "ON CONFLICT DO NOTHING RETURNING 1",
                               4, p, err);
    int rc = -1;
    if (!res) {
        goto done;
    }
    int first = PQntuples(res);
    PQclear(res);
    if (first) {
        rc = 1;
        goto done;
    }
    res = nb_pg_exec(conn,
                     "SELECT params_hash = md5($3) AND action = 'CopyImage', result_id "
                     "FROM client_tokens WHERE tenant_id = $1 AND token = $2",
                     3, p, err);
    if (!res) {
        goto done;
    }
    if (PQntuples(res) != 1 || PQgetvalue(res, 0, 0)[0] != 't') {
        nb_error_set(err, NB_ERR_CONFLICT,
                     "The client token '%s' was used before with different parameters",
                     rq->client_token);
        nb_error_reason(err, "IdempotentParameterMismatch");
    } else {
        snprintf(earlier, NB_ID_MAX, "%s", PQgetvalue(res, 0, 1));
        rc = 0;
    }
    PQclear(res);

done:
    nb_buf_free(&key);
    return rc;
}

/* Reads the source of a copy: 'image_type' and whether its bytes are in the image store.
 * Returns 0, or -1 with 'err' (not visible: NotFound; not available: Unavailable). */
static int copy_source(struct nb_pg_conn *conn, const struct gw_principal *who,
                       const char *source_id, char *type, size_t type_size, bool *in_store,
                       struct nb_error *err)
{
    const char *p[] = {source_id, who->tenant_id};
    PGresult *res = nb_pg_exec(conn,
                               "SELECT m.state, m.image_type, m.store_key IS NOT NULL "
                               "FROM images m WHERE m.id = $1 AND m.state <> 'deregistered' "
                               "AND " VISIBLE_TO_2,
                               2, p, err);
    if (!res) {
        return -1;
    }
    int rc = -1;
    if (PQntuples(res) != 1) {
        not_found(source_id, err);
    } else if (strcmp(PQgetvalue(res, 0, 0), "available")) {
        nb_error_set(err, NB_ERR_CONFLICT, "The image '%s' is %s, not available", source_id,
                     PQgetvalue(res, 0, 0));
        nb_error_reason(err, "InvalidAMIID.Unavailable");
    } else {
        snprintf(type, type_size, "%s", PQgetvalue(res, 0, 1));
        *in_store = PQgetvalue(res, 0, 2)[0] == 't';
        rc = 0;
    }
    PQclear(res);
    return rc;
}

/* Inserts the copy 'new_id' of 'src' and, when the bytes must be copied, its task. */
static int insert_copy(struct nb_pg_conn *conn, const struct gw_principal *who,
                       const struct gw_image_copy_request *rq, const char *new_id, bool in_store,
                       struct nb_error *err)
{
    const char *p[] = {new_id,          who->tenant_id,      rq->name,
                       rq->description, rq->source_image_id, in_store ? "true" : "false"};
    PGresult *res = nb_pg_exec(
        conn,
        "INSERT INTO images (id, tenant_id, name, description, state, image_type, architecture, "
        "root_device_name, location, sha256, size_bytes, disk_format, kernel_id, ramdisk_id, "
        "kernel_args, source_format, virtual_size, properties, suggested_type, source_image_id) "
        "SELECT $1, $2, $3, COALESCE($4, s.description), "
        "CASE WHEN $6::boolean THEN 'pending' ELSE 'available' END, s.image_type, "
        "s.architecture, s.root_device_name, "
        "CASE WHEN $6::boolean THEN NULL ELSE s.location END, "
        "CASE WHEN $6::boolean THEN NULL ELSE s.sha256 END, "
        "CASE WHEN $6::boolean THEN NULL ELSE s.size_bytes END, s.disk_format, s.kernel_id, "
        "s.ramdisk_id, s.kernel_args, s.source_format, s.virtual_size, s.properties, "
        "s.suggested_type, s.id FROM images s WHERE s.id = $5",
        6, p, err);
    if (!res) {
        if (err->code == NB_ERR_CONFLICT) {
            nb_error_set(err, NB_ERR_CONFLICT, "An image named '%s' already exists", rq->name);
            nb_error_reason(err, "InvalidAMIName.Duplicate");
        } else if (err->code == NB_ERR_INVALID) {
            nb_error_reason(err, "InvalidParameterValue");
        }
        return -1;
    }
    PQclear(res);
    if (!in_store) {
        return 0;
    }
    char task_id[NB_ID_MAX + 16];
    snprintf(task_id, sizeof task_id, "copy-ami-%s", strchr(new_id, '-') + 1);
    const char *pt[] = {task_id, who->tenant_id, new_id, rq->source_image_id};
    res = nb_pg_exec(conn,
                     "INSERT INTO image_tasks (id, kind, tenant_id, image_id, source_key) "
                     "SELECT $1, 'copy', $2, $3, s.store_key FROM images s WHERE s.id = $4",
                     4, pt, err);
    if (!res) {
        return -1;
    }
    PQclear(res);
    res = nb_pg_exec(conn, "SELECT pg_notify('nubo_imaged', $1)", 1, pt, err);
    if (!res) {
        return -1;
    }
    PQclear(res);
    return 0;
}

int gw_image_copy(struct gw_ctx *gw, const struct gw_principal *who,
                  const struct gw_image_copy_request *rq, char *id_out, struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0 || gw_image_check_id(rq->source_image_id, err) < 0) {
        return -1;
    }
    if (!rq->name || !rq->name[0] || strlen(rq->name) > 128) {
        nb_error_set(err, NB_ERR_INVALID, "The image name must have 1 to 128 characters");
        nb_error_reason(err, "InvalidAMIName.Malformed");
        return -1;
    }
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    char type[16], new_id[NB_ID_MAX];
    bool in_store = false;
    if (nb_pg_begin(conn, err) < 0 ||
        copy_source(conn, who, rq->source_image_id, type, sizeof type, &in_store, err) < 0) {
        goto done;
    }
    const char *prefix = !strcmp(type, "kernel") ? "aki" : !strcmp(type, "ramdisk") ? "ari" : "ami";
    if (nb_id_new(prefix, new_id, sizeof new_id) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not make an image id");
        goto done;
    }
    if (rq->client_token) {
        char earlier[NB_ID_MAX];
        int first = claim_token(conn, who, rq, new_id, earlier, err);
        if (first < 0) {
            goto done;
        }
        if (!first) {
            snprintf(id_out, NB_ID_MAX, "%s", earlier);
            rc = 0;
            goto done; /* rolled back by the release */
        }
    }
    if (insert_copy(conn, who, rq, new_id, in_store, err) < 0) {
        goto done;
    }
    for (size_t t = 0; t < rq->n_tags; t++) {
        if (svc_tag_put(conn, who->tenant_id, new_id, "image", &rq->tags[t], err) < 0) {
            goto done;
        }
    }
    if (nb_pg_commit(conn, err) < 0) {
        goto done;
    }
    snprintf(id_out, NB_ID_MAX, "%s", new_id);
    rc = 0;

done:
    nb_pg_release(conn);
    return rc;
}
