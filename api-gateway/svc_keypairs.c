/* Key pairs service (see svc_keypairs.h): the database half. ssh_key.c makes, encodes and parses
 * the keys; this file checks names, stores the public half with its tags, and finds, lists and
 * deletes key pairs within the principal's tenant. */
#include "svc_keypairs.h"

#include "auth.h"
#include "gateway.h"
#include "ssh_key.h"
#include "svc_sql.h"

#include "nubo/arena.h"
#include "nubo/error.h"
#include "nubo/id.h"
#include "nubo/pg.h"

#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define NAME_MAX_LEN 255

/* The columns every query reads, in the order row_to_keypair() expects; $1 is the tenant. */
#define KEYPAIR_COLUMNS                                                                            \
    "k.id, k.name, k.key_type, k.fingerprint, k.public_key, "                                      \
    "(extract(epoch FROM k.created_at) * 1000)::bigint, "                                          \
    "COALESCE((SELECT json_agg(json_build_array(t.key, t.value) ORDER BY t.key) FROM tags t "      \
    "WHERE t.tenant_id = $1 AND t.resource_id = k.id), '[]')"

/* Checks that 'name' has 1 to NAME_MAX_LEN printable ASCII characters, as EC2 requires. Returns
 * 0, or -1 with 'err' (InvalidParameterValue). */
static int check_name(const char *name, struct nb_error *err)
{
    size_t len = name ? strlen(name) : 0;
    bool ok = len >= 1 && len <= NAME_MAX_LEN;
    for (size_t i = 0; i < len && ok; i++) {
        ok = name[i] >= 0x20 && name[i] < 0x7f;
    }
    if (!ok) {
        /* The name is not echoed: it may be long or hold any bytes. */
        nb_error_set(err, NB_ERR_INVALID,
                     "Value for parameter KeyName is invalid: a key pair name has 1 to %d "
                     "printable ASCII characters",
                     NAME_MAX_LEN);
        nb_error_reason(err, "InvalidParameterValue");
        return -1;
    }
    return 0;
}

/* Stores a new key pair 'name' of 'type' for 'who' with its tags, in one transaction, and fills
 * '*out' (in 'arena') but for the private key. 'public_line' is the key without a comment; the
 * stored key gets the key pair's name as its comment, so that a user finds it in
 * ~/.ssh/authorized_keys. Returns 0, or -1 with 'err'. */
static int store(struct gw_ctx *gw, const struct gw_principal *who, const char *name,
                 enum ssh_key_type type, const char *fingerprint, const char *public_line,
                 const struct gw_tag *tags, size_t n_tags, struct nb_arena *arena,
                 struct gw_keypair *out, struct nb_error *err)
{
    char id[NB_ID_MAX];
    if (nb_id_new("key", id, sizeof id) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not make a key pair id");
        return -1;
    }
    const char *public_key = nb_arena_printf(arena, "%s %s", public_line, name);
    const char *p[] = {id, who->tenant_id, name, ssh_key_type_name(type), fingerprint, public_key};
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    PGresult *res = NULL;
    int64_t created_ms = 0;
    if (nb_pg_begin(conn, err) < 0) {
        goto done;
    }
    res = nb_pg_exec(conn,
                     "INSERT INTO key_pairs (id, tenant_id, name, key_type, fingerprint, "
                     "public_key) VALUES ($1, $2, $3, $4, $5, $6) "
                     "RETURNING (extract(epoch FROM created_at) * 1000)::bigint",
                     6, p, err);
    if (!res) {
        if (err && err->code == NB_ERR_CONFLICT) {
            nb_error_set(err, NB_ERR_CONFLICT, "The keypair '%s' already exists", name);
            nb_error_reason(err, "InvalidKeyPair.Duplicate");
        } else if (err && err->code == NB_ERR_INVALID) {
            nb_error_reason(err, "InvalidParameterValue");
        }
        goto done;
    }
    created_ms = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    for (size_t t = 0; t < n_tags; t++) {
        if (svc_tag_put(conn, who->tenant_id, id, "key-pair", &tags[t], err) < 0) {
            goto done;
        }
    }
    if (nb_pg_commit(conn, err) < 0) {
        goto done;
    }

    memset(out, 0, sizeof *out);
    out->id = nb_arena_strdup(arena, id);
    out->name = nb_arena_strdup(arena, name);
    out->key_type = ssh_key_type_name(type);
    out->fingerprint = nb_arena_strdup(arena, fingerprint);
    out->public_key = public_key;
    out->created_ms = created_ms;
    if (n_tags) {
        struct gw_tag *copy = nb_arena_alloc(arena, sizeof *copy * n_tags);
        for (size_t t = 0; t < n_tags; t++) {
            copy[t].key = nb_arena_strdup(arena, tags[t].key);
            copy[t].value = nb_arena_strdup(arena, tags[t].value ? tags[t].value : "");
        }
        out->tags = copy;
        out->n_tags = n_tags;
    }
    rc = 0;

done:
    nb_pg_release(conn); /* rolls back an open transaction */
    return rc;
}

int gw_keypair_create(struct gw_ctx *gw, const struct gw_principal *who, const char *name,
                      const char *key_type, const struct gw_tag *tags, size_t n_tags,
                      struct nb_arena *arena, struct gw_keypair *out, struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0 || check_name(name, err) < 0) {
        return -1;
    }
    enum ssh_key_type type = SSH_KEY_RSA;
    if (key_type && ssh_key_type_parse(key_type, &type) < 0) {
        nb_error_set(err, NB_ERR_INVALID, "The key type '%.64s' is not valid: use rsa or ed25519",
                     key_type);
        nb_error_reason(err, "InvalidParameterValue");
        return -1;
    }
    struct ssh_key_pair kp;
    if (ssh_key_generate(type, name, &kp, err) < 0) {
        return -1;
    }
    int rc =
        store(gw, who, name, type, kp.fingerprint, kp.public_line, tags, n_tags, arena, out, err);
    if (rc == 0) {
        /* The only copy nubo hands out; it is not stored. */
        out->private_key = nb_arena_strdup(arena, kp.private_text);
    }
    ssh_key_pair_clear(&kp);
    return rc;
}

int gw_keypair_import(struct gw_ctx *gw, const struct gw_principal *who, const char *name,
                      const void *material, size_t len, const struct gw_tag *tags, size_t n_tags,
                      struct nb_arena *arena, struct gw_keypair *out, struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0 || check_name(name, err) < 0) {
        return -1;
    }
    struct ssh_key_pub key;
    if (ssh_key_parse_public(material ? material : "", material ? len : 0, &key, err) < 0) {
        return -1;
    }
    int rc =
        store(gw, who, name, key.type, key.fingerprint, key.line, tags, n_tags, arena, out, err);
    ssh_key_pub_clear(&key);
    return rc;
}

int gw_keypair_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *name,
                      const char *id, char deleted_id[NB_ID_MAX], struct nb_error *err)
{
    deleted_id[0] = '\0';
    if (gw_require_writer(who, err) < 0) {
        return -1;
    }
    if (!name == !id) {
        nb_error_set(err, name ? NB_ERR_INVALID : NB_ERR_MISSING,
                     "The request must contain exactly one of the parameters KeyName and "
                     "KeyPairId");
        nb_error_reason(err, name ? "InvalidParameterCombination" : "MissingParameter");
        return -1;
    }
    /* One statement, hence one transaction: the key pair and its tags go together. */
    const char *sql = name ? "WITH k AS (DELETE FROM key_pairs WHERE tenant_id = $1 AND name = $2 "
                             "RETURNING id), "
                             "t AS (DELETE FROM tags WHERE tenant_id = $1 AND resource_id IN "
                             "(SELECT id FROM k)) SELECT id FROM k"
                           : "WITH k AS (DELETE FROM key_pairs WHERE tenant_id = $1 AND id = $2 "
                             "RETURNING id), "
                             "t AS (DELETE FROM tags WHERE tenant_id = $1 AND resource_id IN "
                             "(SELECT id FROM k)) SELECT id FROM k";
    const char *p[] = {who->tenant_id, name ? name : id};
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    PGresult *res = nb_pg_exec(conn, sql, 2, p, err);
    nb_pg_release(conn);
    if (!res) {
        return -1;
    }
    int deleted = PQntuples(res);
    if (deleted) {
        snprintf(deleted_id, NB_ID_MAX, "%s", PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    if (deleted == 0 && id) { /* EC2: deleting an unknown name succeeds, an unknown id does not */
        nb_error_set(err, NB_ERR_NOT_FOUND, "The key pair '%s' does not exist", id);
        nb_error_reason(err, "InvalidKeyPair.NotFound");
        return -1;
    }
    return 0;
}

/* Adds the filter 'f' on one of the key pair's own columns to 'q'. Returns 0, or -1 with 'err'
 * (InvalidParameterValue) for an unknown filter. */
static int column_filter(struct svc_sql *q, const struct gw_filter *f, struct nb_error *err)
{
    static const char *const map[][2] = {
        {"key-pair-id", "k.id"},
        {"key-name", "k.name"},
        {"fingerprint", "k.fingerprint"},
        {"key-type", "k.key_type"},
    };
    for (size_t k = 0; k < sizeof map / sizeof map[0]; k++) {
        if (!strcmp(f->name, map[k][0])) {
            nb_buf_printf(&q->sql, " AND %s = ANY(%s)", map[k][1],
                          svc_sql_array(q, f->values, f->n_values));
            return 0;
        }
    }
    nb_error_set(err, NB_ERR_INVALID, "The filter '%s' is invalid", f->name);
    nb_error_reason(err, "InvalidParameterValue");
    return -1;
}

int gw_keypairs_describe(struct gw_ctx *gw, const struct gw_principal *who,
                         const char *const *names, size_t n_names, const char *const *ids,
                         size_t n_ids, const struct gw_filter *filters, size_t n_filters,
                         struct nb_arena *arena, struct gw_keypair **out, size_t *n,
                         struct nb_error *err)
{
    struct svc_sql q;
    svc_sql_init(&q, arena);
    nb_buf_printf(&q.sql, "SELECT " KEYPAIR_COLUMNS " FROM key_pairs k WHERE k.tenant_id = %s",
                  svc_sql_param(&q, who->tenant_id));
    if (n_names) {
        nb_buf_printf(&q.sql, " AND k.name = ANY(%s)", svc_sql_array(&q, names, n_names));
    }
    if (n_ids) {
        nb_buf_printf(&q.sql, " AND k.id = ANY(%s)", svc_sql_array(&q, ids, n_ids));
    }
    for (size_t f = 0; f < n_filters; f++) {
        if (!strncmp(filters[f].name, "tag", 3)
                ? svc_sql_tag_filter(&q, &filters[f], "k.id", err) < 0
                : column_filter(&q, &filters[f], err) < 0) {
            nb_buf_free(&q.sql);
            return -1;
        }
    }
    nb_buf_puts(&q.sql, " ORDER BY k.name");
    PGresult *res = svc_sql_run(gw, &q, err);
    if (!res) {
        return -1;
    }
    *n = (size_t)PQntuples(res);
    *out = nb_arena_zalloc(arena, sizeof **out * (*n ? *n : 1));
    for (int r = 0; r < (int)*n; r++) {
        struct gw_keypair *kp = &(*out)[r];
        kp->id = svc_col(res, r, 0, arena);
        kp->name = svc_col(res, r, 1, arena);
        kp->key_type = svc_col(res, r, 2, arena);
        kp->fingerprint = svc_col(res, r, 3, arena);
        kp->public_key = svc_col(res, r, 4, arena);
        kp->created_ms = strtoll(PQgetvalue(res, r, 5), NULL, 10);
        svc_parse_tags(PQgetvalue(res, r, 6), arena, &kp->tags, &kp->n_tags);
    }
    PQclear(res);
    if (n_names &&
        svc_check_all_found(names, n_names, *out, sizeof **out, offsetof(struct gw_keypair, name),
                            *n, "key pair", "InvalidKeyPair.NotFound", arena, err) < 0) {
        return -1;
    }
    if (n_ids &&
        svc_check_all_found(ids, n_ids, *out, sizeof **out, offsetof(struct gw_keypair, id), *n,
                            "key pair", "InvalidKeyPair.NotFound", arena, err) < 0) {
        return -1;
    }
    return 0;
}
