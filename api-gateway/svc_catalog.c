/* Catalogue service (see svc_catalog.h). */
#include "svc_catalog.h"

#include "auth.h"
#include "gateway.h"
#include "svc_sql.h"

#include "nubo/arena.h"
#include "nubo/error.h"
#include "nubo/id.h"
#include "nubo/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int column_filter(struct svc_sql *q, const struct gw_filter *f, const char *const (*map)[2],
                         size_t n_map, struct nb_error *err)
{
    for (size_t k = 0; k < n_map; k++) {
        if (!strcmp(f->name, map[k][0])) {
            nb_buf_printf(&q->sql, " AND %s::text = ANY(%s)", map[k][1],
                          svc_sql_array(q, f->values, f->n_values));
            return 0;
        }
    }
    nb_error_set(err, NB_ERR_INVALID, "The filter '%s' is invalid", f->name);
    nb_error_reason(err, "InvalidParameterValue");
    return -1;
}

int gw_zones_list(struct gw_ctx *gw, const char *const *names, size_t n_names,
                  const struct gw_filter *filters, size_t n_filters, struct nb_arena *arena,
                  struct gw_zone **out, size_t *n, struct nb_error *err)
{
    static const char *const map[][2] = {
        {"zone-name", "name"}, {"region-name", "region"}, {"state", "state"}};
    struct svc_sql q;
    svc_sql_init(&q, arena);
    nb_buf_printf(&q.sql, "SELECT name, region, state FROM zones WHERE region = %s",
                  svc_sql_param(&q, gw->region));
    if (n_names) {
        nb_buf_printf(&q.sql, " AND name = ANY(%s)", svc_sql_array(&q, names, n_names));
    }
    for (size_t f = 0; f < n_filters; f++) {
        if (column_filter(&q, &filters[f], map, 3, err) < 0) {
            nb_buf_free(&q.sql);
            return -1;
        }
    }
    nb_buf_puts(&q.sql, " ORDER BY name");
    PGresult *res = svc_sql_run(gw, &q, err);
    if (!res) {
        return -1;
    }
    *n = (size_t)PQntuples(res);
    *out = nb_arena_zalloc(arena, sizeof **out * (*n ? *n : 1));
    for (size_t r = 0; r < *n; r++) {
        (*out)[r].name = svc_col(res, (int)r, 0, arena);
        (*out)[r].region = svc_col(res, (int)r, 1, arena);
        (*out)[r].state = svc_col(res, (int)r, 2, arena);
    }
    PQclear(res);
    if (n_names) {
        return svc_check_all_found(names, n_names, *out, sizeof **out,
                                   offsetof(struct gw_zone, name), *n, "zone",
                                   "InvalidParameterValue", arena, err);
    }
    return 0;
}

int gw_instance_types_list(struct gw_ctx *gw, const char *const *names, size_t n_names,
                           const struct gw_filter *filters, size_t n_filters,
                           const struct gw_page *page, struct nb_arena *arena,
                           struct gw_instance_type **out, size_t *n, const char **next_token,
                           struct nb_error *err)
{
    static const char *const map[][2] = {{"instance-type", "name"},
                                         {"vcpu-info.default-vcpus", "vcpus"},
                                         {"memory-info.size-in-mib", "memory_mib"}};
    struct svc_sql q;
    svc_sql_init(&q, arena);
    nb_buf_puts(&q.sql, "SELECT name, vcpus, memory_mib, disk_gib, ephemeral_gib, enabled "
                        "FROM instance_types WHERE enabled");
    if (n_names) {
        nb_buf_printf(&q.sql, " AND name = ANY(%s)", svc_sql_array(&q, names, n_names));
    }
    for (size_t f = 0; f < n_filters; f++) {
        if (column_filter(&q, &filters[f], map, 3, err) < 0) {
            nb_buf_free(&q.sql);
            return -1;
        }
    }
    if (page->next_token) {
        nb_buf_printf(&q.sql, " AND name > %s", svc_sql_param(&q, page->next_token));
    }
    nb_buf_puts(&q.sql, " ORDER BY name");
    if (page->max_results > 0) {
        nb_buf_printf(&q.sql, " LIMIT %d", page->max_results + 1);
    }
    PGresult *res = svc_sql_run(gw, &q, err);
    if (!res) {
        return -1;
    }
    int rows = PQntuples(res);
    *next_token = NULL;
    if (page->max_results > 0 && rows > page->max_results) {
        rows = page->max_results;
        *next_token = svc_col(res, rows - 1, 0, arena);
    }
    *n = (size_t)rows;
    *out = nb_arena_zalloc(arena, sizeof **out * (*n ? *n : 1));
    for (int r = 0; r < rows; r++) {
        struct gw_instance_type *t = &(*out)[r];
        t->name = svc_col(res, r, 0, arena);
        t->vcpus = atoi(PQgetvalue(res, r, 1));
        t->memory_mib = atoi(PQgetvalue(res, r, 2));
        t->disk_gib = atoi(PQgetvalue(res, r, 3));
        t->ephemeral_gib = atoi(PQgetvalue(res, r, 4));
        t->enabled = PQgetvalue(res, r, 5)[0] == 't';
    }
    PQclear(res);
    if (n_names && !page->next_token) {
        return svc_check_all_found(names, n_names, *out, sizeof **out,
                                   offsetof(struct gw_instance_type, name), *n, "instance type",
                                   "InvalidInstanceType", arena, err);
    }
    return 0;
}

int gw_instance_type_put(struct gw_ctx *gw, const struct gw_principal *who,
                         const struct gw_instance_type *t, struct nb_error *err)
{
    if (gw_require_admin(who, err) < 0) {
        return -1;
    }
    char v[16], m[16], d[16], e[16];
    snprintf(v, sizeof v, "%d", t->vcpus);
    snprintf(m, sizeof m, "%d", t->memory_mib);
    snprintf(d, sizeof d, "%d", t->disk_gib);
    snprintf(e, sizeof e, "%d", t->ephemeral_gib);
    const char *p[] = {t->name, v, m, d, e, t->enabled ? "true" : "false"};
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    PGresult *res = nb_pg_exec(conn,
                               "INSERT INTO instance_types (name, vcpus, memory_mib, disk_gib, "
                               "ephemeral_gib, enabled) VALUES ($1, $2, $3, $4, $5, $6) "
                               "ON CONFLICT (name) DO UPDATE SET vcpus = EXCLUDED.vcpus, "
                               "memory_mib = EXCLUDED.memory_mib, disk_gib = EXCLUDED.disk_gib, "
                               "ephemeral_gib = EXCLUDED.ephemeral_gib, "
                               "enabled = EXCLUDED.enabled",
                               6, p, err);
    nb_pg_release(conn);
    if (!res) {
        if (err && err->code == NB_ERR_INVALID) {
            nb_error_reason(err, "InvalidParameterValue");
        }
        return -1;
    }
    PQclear(res);
    return 0;
}

#define IMAGE_COLUMNS                                                                              \
    "m.id, m.tenant_id, m.name, m.description, m.state, m.is_public, m.image_type, "               \
    "m.architecture, m.root_device_name, (extract(epoch FROM m.created_at) * 1000)::bigint, "      \
    "COALESCE((SELECT json_agg(json_build_array(t.key, t.value) ORDER BY t.key) FROM tags t "      \
    "WHERE t.tenant_id = $1 AND t.resource_id = m.id), '[]'), m.state_reason, m.size_bytes, "      \
    "COALESCE(m.virtual_size, CASE WHEN m.disk_format = 'raw' THEN m.size_bytes END), "            \
    "m.stored_bytes, m.source_image_id, m.disk_format, m.kernel_id, m.ramdisk_id"

/* Appends the ExecutableBy condition of 'exec_by' (see struct gw_image_query) to 'q'. */
static void exec_by_condition(struct svc_sql *q, const struct gw_principal *who,
                              const char *const *exec_by, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (!strcmp(exec_by[k], "self") || !strcmp(exec_by[k], who->tenant_id)) {
            return; /* every image the caller sees is one it may launch */
        }
    }
    nb_buf_puts(&q->sql, " AND (false");
    for (size_t k = 0; k < n; k++) {
        if (!strcmp(exec_by[k], "all")) {
            nb_buf_puts(&q->sql, " OR m.is_public");
        } else {
            nb_buf_printf(&q->sql,
                          " OR (m.tenant_id = $1 AND EXISTS (SELECT 1 FROM "
                          "image_launch_permissions x WHERE x.image_id = m.id "
                          "AND x.tenant_id = %s))",
                          svc_sql_param(q, exec_by[k]));
        }
    }
    nb_buf_puts(&q->sql, ")");
}

static int64_t col_int64(PGresult *res, int r, int c)
{
    return PQgetisnull(res, r, c) ? 0 : strtoll(PQgetvalue(res, r, c), NULL, 10);
}

int gw_images_list(struct gw_ctx *gw, const struct gw_principal *who,
                   const struct gw_image_query *iq, struct nb_arena *arena, struct gw_image **out,
                   size_t *n, struct nb_error *err)
{
    static const char *const map[][2] = {{"image-id", "m.id"},
                                         {"name", "m.name"},
                                         {"state", "m.state"},
                                         {"is-public", "m.is_public"},
                                         {"owner-id", "m.tenant_id"},
                                         {"image-type", "m.image_type"},
                                         {"architecture", "m.architecture"}};
    struct svc_sql q;
    svc_sql_init(&q, arena);
    nb_buf_printf(&q.sql,
                  "SELECT " IMAGE_COLUMNS " FROM images m WHERE (m.tenant_id = %s OR m.is_public "
                  "OR EXISTS (SELECT 1 FROM image_launch_permissions p WHERE p.image_id = m.id "
                  "AND p.tenant_id = $1)) AND m.state <> 'deregistered'",
                  svc_sql_param(&q, who->tenant_id));
    if (iq->n_ids) {
        nb_buf_printf(&q.sql, " AND m.id = ANY(%s)", svc_sql_array(&q, iq->ids, iq->n_ids));
    }
    if (iq->n_owners) {
        const char **resolved = nb_arena_alloc(arena, sizeof *resolved * iq->n_owners);
        for (size_t k = 0; k < iq->n_owners; k++) {
            resolved[k] = strcmp(iq->owners[k], "self") ? iq->owners[k] : who->tenant_id;
        }
        nb_buf_printf(&q.sql, " AND m.tenant_id = ANY(%s)",
                      svc_sql_array(&q, resolved, iq->n_owners));
    }
    if (iq->n_exec_by) {
        exec_by_condition(&q, who, iq->exec_by, iq->n_exec_by);
    }
    for (size_t f = 0; f < iq->n_filters; f++) {
        const struct gw_filter *flt = &iq->filters[f];
        if (!strncmp(flt->name, "tag", 3)
                ? svc_sql_tag_filter(&q, flt, "m.id", err) < 0
                : column_filter(&q, flt, map, sizeof map / sizeof map[0], err) < 0) {
            nb_buf_free(&q.sql);
            return -1;
        }
    }
    nb_buf_puts(&q.sql, " ORDER BY m.id");
    PGresult *res = svc_sql_run(gw, &q, err);
    if (!res) {
        return -1;
    }
    *n = (size_t)PQntuples(res);
    *out = nb_arena_zalloc(arena, sizeof **out * (*n ? *n : 1));
    for (int r = 0; r < (int)*n; r++) {
        struct gw_image *m = &(*out)[r];
        m->id = svc_col(res, r, 0, arena);
        m->owner_id = svc_col(res, r, 1, arena);
        m->name = svc_col(res, r, 2, arena);
        m->description = svc_col(res, r, 3, arena);
        m->state = svc_col(res, r, 4, arena);
        m->is_public = PQgetvalue(res, r, 5)[0] == 't';
        m->image_type = svc_col(res, r, 6, arena);
        m->architecture = svc_col(res, r, 7, arena);
        m->root_device_name = svc_col(res, r, 8, arena);
        m->created_ms = strtoll(PQgetvalue(res, r, 9), NULL, 10);
        svc_parse_tags(PQgetvalue(res, r, 10), arena, &m->tags, &m->n_tags);
        m->state_reason = svc_col(res, r, 11, arena);
        m->size_bytes = col_int64(res, r, 12);
        m->virtual_size = col_int64(res, r, 13);
        m->stored_bytes = col_int64(res, r, 14);
        m->source_image_id = svc_col(res, r, 15, arena);
        m->disk_format = svc_col(res, r, 16, arena);
        m->kernel_id = svc_col(res, r, 17, arena);
        m->ramdisk_id = svc_col(res, r, 18, arena);
    }
    PQclear(res);
    if (iq->n_ids) {
        return svc_check_all_found(iq->ids, iq->n_ids, *out, sizeof **out,
                                   offsetof(struct gw_image, id), *n, "image id",
                                   "InvalidAMIID.NotFound", arena, err);
    }
    return 0;
}

int gw_images_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *const *ids,
                       size_t n_ids, const char *const *owners, size_t n_owners,
                       const struct gw_filter *filters, size_t n_filters, struct nb_arena *arena,
                       struct gw_image **out, size_t *n, struct nb_error *err)
{
    const struct gw_image_query q = {.ids = ids,
                                     .n_ids = n_ids,
                                     .owners = owners,
                                     .n_owners = n_owners,
                                     .filters = filters,
                                     .n_filters = n_filters};
    return gw_images_list(gw, who, &q, arena, out, n, err);
}

int gw_image_register(struct gw_ctx *gw, const struct gw_principal *who, const struct gw_image *img,
                      char *id_out, struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0 || (img->is_public && gw_require_admin(who, err) < 0) ||
        (img->location && gw_require_admin(who, err) < 0)) {
        return -1;
    }
    if (img->location && strncmp(img->location, "file:///", 8) &&
        strncmp(img->location, "http://", 7) && strncmp(img->location, "https://", 8)) {
        nb_error_set(err, NB_ERR_INVALID,
                     "Invalid image location '%s': use a file:///, http:// or https:// URL",
                     img->location);
        nb_error_reason(err, "InvalidParameterValue");
        return -1;
    }
    char size_s[24] = "";
    if (img->size_bytes > 0) {
        snprintf(size_s, sizeof size_s, "%lld", (long long)img->size_bytes);
    }
    const char *type = img->image_type ? img->image_type : "machine";
    const char *prefix = !strcmp(type, "kernel") ? "aki" : !strcmp(type, "ramdisk") ? "ari" : "ami";
    if (nb_id_new(prefix, id_out, NB_ID_MAX) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not make an image id");
        return -1;
    }
    const char *p[] = {id_out,
                       who->tenant_id,
                       img->name,
                       img->description ? img->description : "",
                       img->is_public ? "true" : "false",
                       type,
                       img->architecture ? img->architecture : "x86_64",
                       img->location,
                       img->sha256,
                       size_s[0] ? size_s : NULL,
                       img->disk_format ? img->disk_format : "raw",
                       img->kernel_id,
                       img->ramdisk_id,
                       img->kernel_args};
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    PGresult *res = nb_pg_exec(conn,
                               "INSERT INTO images (id, tenant_id, name, description, is_public, "
                               "image_type, architecture, location, sha256, size_bytes, "
                               "disk_format, kernel_id, ramdisk_id, kernel_args) "
                               "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 "
                               "WHERE ($12::text IS NULL OR EXISTS (SELECT 1 FROM images k "
                               "WHERE k.id = $12 AND k.image_type = 'kernel' "
                               "AND (k.tenant_id = $2 OR k.is_public))) "
                               "AND ($13::text IS NULL OR EXISTS (SELECT 1 FROM images r "
                               "WHERE r.id = $13 AND r.image_type = 'ramdisk' "
                               "AND (r.tenant_id = $2 OR r.is_public))) RETURNING id",
                               14, p, err);
    nb_pg_release(conn);
    if (!res) {
        if (err && err->code == NB_ERR_CONFLICT) {
            nb_error_set(err, NB_ERR_CONFLICT, "An image named '%s' already exists", img->name);
            nb_error_reason(err, "InvalidAMIName.Duplicate");
        } else if (err && err->code == NB_ERR_INVALID) {
            nb_error_reason(err, "InvalidParameterValue");
        }
        return -1;
    }
    int inserted = PQntuples(res);
    PQclear(res);
    if (!inserted) {
        nb_error_set(err, NB_ERR_NOT_FOUND,
                     "The kernel '%s' or ramdisk '%s' does not exist or is not of that type",
                     img->kernel_id ? img->kernel_id : "", img->ramdisk_id ? img->ramdisk_id : "");
        nb_error_reason(err, "InvalidAMIID.NotFound");
        return -1;
    }
    return 0;
}
