/* Images: the records (list, get, register, create, delete, copy), their launch permissions,
 * their bytes (streamed uploads, whole or in resumable parts, downloads, exports to OVA) and the
 * image store's tasks (imports, exports, copies); JSON answers parsed into the public structs of
 * nubo/nubo.h. */
#include "internal.h"

#include <openssl/evp.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* --- records --------------------------------------------------------------------------------- */

int nubo_image_parse(const json_t *o, void *item)
{
    struct nubo_image *m = item;
    m->id = nubo_js_str(o, "id");
    m->owner_id = nubo_js_str(o, "owner_id");
    m->name = nubo_js_str(o, "name");
    m->description = nubo_js_str(o, "description");
    m->state = nubo_js_str(o, "state");
    m->is_public = nubo_js_bool(o, "public");
    m->image_type = nubo_js_str(o, "image_type");
    m->architecture = nubo_js_str(o, "architecture");
    m->created_at = nubo_js_str(o, "created_at");
    m->json = nubo_js_dump(o);
    if (nubo_js_tags(o, "tags", &m->tags, &m->n_tags) < 0) {
        return -1;
    }
    return m->id && m->json ? 0 : -1;
}

void nubo_image_clear(void *item)
{
    struct nubo_image *m = item;
    free(m->id);
    free(m->owner_id);
    free(m->name);
    free(m->description);
    free(m->state);
    free(m->image_type);
    free(m->architecture);
    free(m->created_at);
    nubo_tags_free(m->tags, m->n_tags);
    free(m->json);
}

/* Sends 'body' (stolen, may be NULL) to "/v1/images/<id><suffix>" and parses the answer as
 * an image. Returns it, or NULL with '*err' set. */
static struct nubo_image *image_call(struct nubo_client *c, const char *method, const char *id,
                                     const char *suffix, json_t *body, bool idempotent,
                                     struct nubo_error *err)
{
    if (nubo_need(id, "an image id", err) < 0) {
        json_decref(body);
        return NULL;
    }
    char *path = nubo_id_path("/v1/images", id, suffix);
    json_t *reply = NULL;
    int rc = path ? nubo_call(c, method, path, NULL, body, idempotent, &reply, err) : -1;
    if (!path) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
    }
    free(path);
    json_decref(body);
    if (rc < 0) {
        return NULL;
    }
    return nubo_js_item(reply, sizeof(struct nubo_image), nubo_image_parse, nubo_image_clear,
                        "an image", err);
}

NUBO_API struct nubo_image_list *nubo_images_list(struct nubo_client *c, const char *owner,
                                                  const struct nubo_filter *filters,
                                                  size_t n_filters, struct nubo_error *err)
{
    struct nubo_query q = {0};
    nubo_query_add(&q, "owner", owner);
    const char *text = nubo_filters_query(&q, filters, n_filters, err);
    struct nubo_image_list *l =
        text ? nubo_get_list(c, "/v1/images", text, "images", sizeof(struct nubo_image),
                             nubo_image_parse, nubo_image_clear, err)
             : NULL;
    nubo_query_clear(&q);
    return l;
}

NUBO_API void nubo_image_list_free(struct nubo_image_list *l)
{
    nubo_list_free(l, sizeof *l->items, nubo_image_clear);
}

NUBO_API void nubo_image_free(struct nubo_image *m)
{
    nubo_item_free(m, nubo_image_clear);
}

NUBO_API struct nubo_image *nubo_image_get(struct nubo_client *c, const char *id,
                                           struct nubo_error *err)
{
    return image_call(c, "GET", id, "", NULL, true, err);
}

NUBO_API struct nubo_image *nubo_image_register(struct nubo_client *c,
                                                const struct nubo_image_params *p,
                                                struct nubo_error *err)
{
    if (nubo_need(p ? p->name : NULL, "an image name", err) < 0) {
        return NULL;
    }
    json_t *body = json_pack("{s:s, s:s?, s:s?, s:s?, s:b}", "name", p->name, "description",
                             p->description, "image_type", p->image_type, "architecture",
                             p->architecture, "public", p->is_public);
    return nubo_call_one(c, "POST", "/v1/images", body, false, sizeof(struct nubo_image),
                         nubo_image_parse, nubo_image_clear, err);
}

NUBO_API struct nubo_image *nubo_image_create(struct nubo_client *c,
                                              const struct nubo_image_params *p,
                                              const char *source_format, struct nubo_error *err)
{
    if (nubo_need(p ? p->name : NULL, "an image name", err) < 0 ||
        nubo_need(source_format, "a source format", err) < 0) {
        return NULL;
    }
    json_t *body =
        json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:b}", "name", p->name, "source_format",
                  source_format, "description", p->description, "image_type", p->image_type,
                  "architecture", p->architecture, "public", p->is_public);
    return nubo_call_one(c, "POST", "/v1/images", body, false, sizeof(struct nubo_image),
                         nubo_image_parse, nubo_image_clear, err);
}

NUBO_API int nubo_image_storage_get(const struct nubo_image *m, struct nubo_image_storage *out)
{
    memset(out, 0, sizeof *out);
    json_t *o = m && m->json ? json_loads(m->json, 0, NULL) : NULL;
    if (!json_is_object(o)) {
        json_decref(o);
        return -1;
    }
    const char *s;
    if ((s = json_string_value(json_object_get(o, "disk_format")))) {
        snprintf(out->disk_format, sizeof out->disk_format, "%s", s);
    }
    if ((s = json_string_value(json_object_get(o, "source_image_id")))) {
        snprintf(out->source_image_id, sizeof out->source_image_id, "%s", s);
    }
    if ((s = json_string_value(json_object_get(o, "state_reason")))) {
        snprintf(out->state_reason, sizeof out->state_reason, "%s", s);
    }
    out->size_bytes = nubo_js_int(o, "size_bytes");
    out->virtual_size = nubo_js_int(o, "virtual_size");
    json_decref(o);
    return 0;
}

/* Sends 'method' to "/v1/images/<id><suffix>" with 'body' (stolen, may be NULL) and stores the
 * answer in '*reply' (may be NULL). Returns 0, or -1 with '*err' set. */
static int image_request(struct nubo_client *c, const char *method, const char *id,
                         const char *suffix, json_t *body, bool idempotent, json_t **reply,
                         struct nubo_error *err)
{
    if (nubo_need(id, "an image id", err) < 0) {
        json_decref(body);
        return -1;
    }
    char *path = nubo_id_path("/v1/images", id, suffix);
    if (!path) {
        json_decref(body);
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return -1;
    }
    int rc = nubo_call(c, method, path, NULL, body, idempotent, reply, err);
    free(path);
    json_decref(body);
    return rc;
}

NUBO_API int nubo_image_delete(struct nubo_client *c, const char *id, struct nubo_error *err)
{
    return image_request(c, "DELETE", id, "", NULL, true, NULL, err);
}

NUBO_API struct nubo_image *nubo_image_copy(struct nubo_client *c, const char *id, const char *name,
                                            const char *description, const char *client_token,
                                            struct nubo_error *err)
{
    if (nubo_need(name, "a name for the copy", err) < 0) {
        return NULL;
    }
    char *token = client_token ? NULL : nubo_client_token();
    json_t *body = json_pack("{s:s, s:s?, s:s?}", "name", name, "description", description,
                             "client_token", client_token ? client_token : token);
    free(token);
    if (!body || (!client_token && !token)) {
        json_decref(body);
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return NULL;
    }
    /* The client token makes a repeat answer the first copy: safe to retry. */
    return image_call(c, "POST", id, "/copy", body, true, err);
}

NUBO_API struct nubo_image *nubo_image_wait(struct nubo_client *c, const char *id, double timeout_s,
                                            int poll_ms, struct nubo_error *err)
{
    return nubo_image_wait_progress(c, id, timeout_s, poll_ms, NULL, NULL, err);
}

NUBO_API struct nubo_image *nubo_image_wait_progress(struct nubo_client *c, const char *id,
                                                     double timeout_s, int poll_ms,
                                                     nubo_image_wait_fn progress, void *arg,
                                                     struct nubo_error *err)
{
    double start = nubo_now_s();
    if (poll_ms <= 0) {
        poll_ms = 1000;
    }
    for (;;) {
        struct nubo_image *m = nubo_image_get(c, id, err);
        if (!m || !m->state || strcmp(m->state, "pending")) {
            return m;
        }
        double elapsed = nubo_now_s() - start;
        if (progress && progress(m, elapsed, arg)) {
            nubo_image_free(m);
            nubo_err_set(err, 0, "Cancelled", "waiting for image \"%s\" was cancelled", id);
            return NULL;
        }
        if (elapsed >= timeout_s) {
            nubo_err_set(err, 0, "Timeout", "image \"%s\" is still pending after %.0f s", id,
                         elapsed);
            nubo_image_free(m);
            return NULL;
        }
        nubo_image_free(m);
        double left = timeout_s - elapsed;
        nubo_sleep_s(poll_ms / 1000.0 < left ? poll_ms / 1000.0 : left);
    }
}

/* --- launch permissions ---------------------------------------------------------------------- */

static int perms_parse(const json_t *o, void *item)
{
    struct nubo_launch_permissions *p = item;
    json_t *arr = json_object_get(o, "tenants");
    p->image_id = nubo_js_str(o, "image_id");
    p->is_public = nubo_js_bool(o, "public");
    p->json = nubo_js_dump(o);
    if (!p->image_id || !p->json || !json_is_array(arr)) {
        return -1;
    }
    size_t n = json_array_size(arr);
    p->tenants = n ? calloc(n, sizeof *p->tenants) : NULL;
    if (n && !p->tenants) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *t = json_string_value(json_array_get(arr, i));
        if (!t || !(p->tenants[i] = strdup(t))) {
            return -1;
        }
        p->n_tenants = i + 1;
    }
    return 0;
}

static void perms_clear(void *item)
{
    struct nubo_launch_permissions *p = item;
    free(p->image_id);
    for (size_t i = 0; i < p->n_tenants; i++) {
        free(p->tenants[i]);
    }
    free(p->tenants);
    free(p->json);
}

/* Sends 'body' (stolen) to the launch permissions of 'id'; returns the answer parsed. */
static struct nubo_launch_permissions *perms_call(struct nubo_client *c, const char *method,
                                                  const char *id, json_t *body,
                                                  struct nubo_error *err)
{
    json_t *reply = NULL;
    if (image_request(c, method, id, "/launch-permissions", body, true, &reply, err) < 0) {
        return NULL;
    }
    return nubo_js_item(reply, sizeof(struct nubo_launch_permissions), perms_parse, perms_clear,
                        "the launch permissions", err);
}

NUBO_API struct nubo_launch_permissions *
nubo_image_launch_permissions_get(struct nubo_client *c, const char *id, struct nubo_error *err)
{
    return perms_call(c, "GET", id, NULL, err);
}

/* A JSON array of 'n' strings; a new reference, NULL when out of memory. */
static json_t *string_array(const char *const *items, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        if (json_array_append_new(a, json_string(items[i] ? items[i] : "")) < 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

NUBO_API struct nubo_launch_permissions *
nubo_image_launch_permissions_modify(struct nubo_client *c, const char *id,
                                     const struct nubo_launch_permission_change *ch,
                                     struct nubo_error *err)
{
    if (!ch) {
        nubo_err_set(err, 0, "InvalidParameterValue", "a change is required");
        return NULL;
    }
    json_t *body = json_object();
    json_t *add = string_array(ch->add, ch->n_add);
    json_t *remove = string_array(ch->remove, ch->n_remove);
    if (!body || !add || !remove || json_object_set_new(body, "add", add) < 0 ||
        json_object_set_new(body, "remove", remove) < 0 ||
        (ch->set_public >= 0 &&
         json_object_set_new(body, "public", json_boolean(ch->set_public > 0)) < 0)) {
        json_decref(body);
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return NULL;
    }
    return perms_call(c, "PUT", id, body, err);
}

NUBO_API void nubo_launch_permissions_free(struct nubo_launch_permissions *p)
{
    nubo_item_free(p, perms_clear);
}

/* --- tasks ----------------------------------------------------------------------------------- */

static int task_parse(const json_t *o, void *item)
{
    struct nubo_image_task *t = item;
    t->id = nubo_js_str(o, "id");
    t->kind = nubo_js_str(o, "kind");
    t->image_id = nubo_js_str(o, "image_id");
    t->state = nubo_js_str(o, "state");
    t->progress = (int)nubo_js_int(o, "progress");
    t->status_message = nubo_js_str(o, "status_message");
    t->updated_at = nubo_js_str(o, "updated_at");
    t->result_bytes = nubo_js_int(o, "result_bytes");
    t->result_sha256 = nubo_js_str(o, "result_sha256");
    t->json = nubo_js_dump(o);
    return t->id && t->state && t->json ? 0 : -1;
}

static void task_clear(void *item)
{
    struct nubo_image_task *t = item;
    free(t->id);
    free(t->kind);
    free(t->image_id);
    free(t->state);
    free(t->status_message);
    free(t->updated_at);
    free(t->result_sha256);
    free(t->json);
}

NUBO_API struct nubo_image_task *nubo_image_task_get(struct nubo_client *c, const char *id,
                                                     struct nubo_error *err)
{
    if (nubo_need(id, "a task id", err) < 0) {
        return NULL;
    }
    char *path = nubo_id_path("/v1/image-tasks", id, "");
    json_t *reply = NULL;
    int rc = path ? nubo_call(c, "GET", path, NULL, NULL, true, &reply, err) : -1;
    if (!path) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
    }
    free(path);
    if (rc < 0) {
        return NULL;
    }
    return nubo_js_item(reply, sizeof(struct nubo_image_task), task_parse, task_clear,
                        "an image task", err);
}

NUBO_API void nubo_image_task_free(struct nubo_image_task *t)
{
    nubo_item_free(t, task_clear);
}

NUBO_API struct nubo_image_task *nubo_image_task_wait(struct nubo_client *c, const char *id,
                                                      double timeout_s, int poll_ms,
                                                      nubo_task_wait_fn progress, void *arg,
                                                      struct nubo_error *err)
{
    double start = nubo_now_s();
    if (poll_ms <= 0) {
        poll_ms = 1000;
    }
    for (;;) {
        struct nubo_image_task *t = nubo_image_task_get(c, id, err);
        if (!t) {
            return NULL;
        }
        double elapsed = nubo_now_s() - start;
        if (progress && progress(t, elapsed, arg)) {
            nubo_image_task_free(t);
            nubo_err_set(err, 0, "Cancelled", "waiting for task \"%s\" was cancelled", id);
            return NULL;
        }
        if (!strcmp(t->state, "completed") || !strcmp(t->state, "failed")) {
            return t;
        }
        if (elapsed >= timeout_s) {
            nubo_err_set(err, 0, "Timeout", "task \"%s\" is still %s (%d%%) after %.0f s", id,
                         t->state, t->progress, elapsed);
            nubo_image_task_free(t);
            return NULL;
        }
        nubo_image_task_free(t);
        double left = timeout_s - elapsed;
        nubo_sleep_s(poll_ms / 1000.0 < left ? poll_ms / 1000.0 : left);
    }
}

/* --- bytes: uploads, downloads, exports ------------------------------------------------------ */

/* Reads the 'size' bytes of 'fd' once to compute their SHA-256 into 'hex', reporting progress.
 * Returns 0, or -1 with '*err' set. */
static int hash_file(int fd, const char *path, uint64_t size, nubo_transfer_fn progress, void *arg,
                     char hex[65], struct nubo_error *err)
{
    enum { BLOCK = 1 << 20 };
    char *buf = malloc(BLOCK);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = -1;
    if (!buf || !md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        goto cleanup;
    }
    uint64_t done = 0;
    double last = 0;
    for (;;) {
        ssize_t n = pread(fd, buf, BLOCK, (off_t)done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            nubo_err_set(err, 0, "FileError", "could not read \"%s\": %s", path, strerror(errno));
            goto cleanup;
        }
        if (n == 0) {
            break;
        }
        EVP_DigestUpdate(md, buf, (size_t)n);
        done += (uint64_t)n;
        double now = nubo_now_s();
        if (progress && now - last >= 0.1) {
            last = now;
            if (progress(NUBO_TRANSFER_HASH, done, size, arg)) {
                nubo_err_set(err, 0, "Cancelled", "the upload of \"%s\" was cancelled", path);
                goto cleanup;
            }
        }
    }
    if (done != size) {
        nubo_err_set(err, 0, "FileError", "\"%s\" changed size while it was read", path);
        goto cleanup;
    }
    if (progress && progress(NUBO_TRANSFER_HASH, done, size, arg)) {
        nubo_err_set(err, 0, "Cancelled", "the upload of \"%s\" was cancelled", path);
        goto cleanup;
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(md, digest, &len);
    for (unsigned int i = 0; i < len && i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    }
    rc = 0;
cleanup:
    EVP_MD_CTX_free(md);
    free(buf);
    return rc;
}

/* Returns true when 's' is 64 hex digits. */
static bool is_sha256_hex(const char *s)
{
    size_t n = strspn(s, "0123456789abcdefABCDEF");
    return n == 64 && !s[n];
}

/* Opens the file to upload and reads its size into 'st'. Returns the descriptor, or -1 with
 * '*err' set (FileError). */
static int open_upload(const char *path, struct stat *st, struct nubo_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, st) < 0) {
        nubo_err_set(err, 0, "FileError", "could not open \"%s\": %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

NUBO_API int nubo_image_upload(struct nubo_client *c, const char *id, const char *path,
                               const char *sha256, nubo_transfer_fn progress, void *arg,
                               struct nubo_upload_result *out, struct nubo_error *err)
{
    if (nubo_need(id, "an image id", err) < 0 || nubo_need(path, "a file", err) < 0) {
        return -1;
    }
    if (sha256 && strcmp(sha256, "UNSIGNED-PAYLOAD") && !is_sha256_hex(sha256)) {
        nubo_err_set(err, 0, "InvalidParameterValue",
                     "\"%s\" is neither a SHA-256 in hex nor UNSIGNED-PAYLOAD", sha256);
        return -1;
    }
    struct stat st;
    int fd = open_upload(path, &st, err);
    if (fd < 0) {
        return -1;
    }
    char *upath = NULL, *reply = NULL;
    json_t *doc = NULL;
    int rc = -1;
    if (!S_ISREG(st.st_mode)) {
        nubo_err_set(err, 0, "FileError", "\"%s\" is not a regular file", path);
        goto cleanup;
    }
    char hex[65];
    if (sha256) {
        snprintf(hex, sizeof hex, "%s", sha256);
    } else if (hash_file(fd, path, (uint64_t)st.st_size, progress, arg, hex, err) < 0) {
        goto cleanup;
    }
    upath = nubo_id_path("/v1/images", id, "/file");
    if (!upath) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        goto cleanup;
    }
    struct nubo_stream s = {.in_fd = fd,
                            .in_size = (uint64_t)st.st_size,
                            .payload_hash = hex,
                            .out_fd = -1,
                            .progress = progress,
                            .arg = arg};
    if (nubo_client_stream(c, "PUT", upath, NULL, &s, true, &reply, err) < 0) {
        goto cleanup;
    }
    doc = json_loads(reply, 0, NULL);
    const char *state = json_string_value(json_object_get(doc, "state"));
    const char *task = json_string_value(json_object_get(doc, "import_task_id"));
    if (!state) {
        nubo_err_set(err, 0, "ProtocolError", "the answer to PUT %s has no \"state\"", upath);
        goto cleanup;
    }
    if (progress) {
        progress(NUBO_TRANSFER_SEND, s.in_size, s.in_size, arg);
    }
    if (out) {
        memset(out, 0, sizeof *out);
        snprintf(out->image_id, sizeof out->image_id, "%s", id);
        snprintf(out->state, sizeof out->state, "%s", state);
        snprintf(out->import_task_id, sizeof out->import_task_id, "%s", task ? task : "");
        snprintf(out->sha256, sizeof out->sha256, "%s", hex);
        out->bytes = s.in_size;
    }
    rc = 0;
cleanup:
    json_decref(doc);
    free(reply);
    free(upath);
    close(fd);
    return rc;
}

/* --- multipart uploads ----------------------------------------------------------------------- */

/* Writes the digest of 'md' as 64 hex digits into 'hex'. */
static void digest_hex(EVP_MD_CTX *md, char hex[65])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(md, digest, &len);
    hex[0] = '\0';
    for (unsigned int i = 0; i < len && i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    }
}

/* Reads the 'size' bytes of 'fd' once: the SHA-256 of the whole into 'hex' and of each of its
 * 'n' parts of 'part_size' bytes into 'parts'. Returns 0, or -1 with '*err' set. */
static int hash_parts(int fd, const char *path, uint64_t size, uint64_t part_size, int n,
                      char (*parts)[65], nubo_transfer_fn progress, void *arg, char hex[65],
                      struct nubo_error *err)
{
    enum { BLOCK = 1 << 20 };
    char *buf = malloc(BLOCK);
    EVP_MD_CTX *whole = EVP_MD_CTX_new(), *part = EVP_MD_CTX_new();
    int rc = -1;
    if (!buf || !whole || !part || EVP_DigestInit_ex(whole, EVP_sha256(), NULL) != 1) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        goto cleanup;
    }
    uint64_t done = 0;
    double last = 0;
    for (int i = 0; i < n; i++) {
        uint64_t end = (uint64_t)(i + 1) * part_size < size ? (uint64_t)(i + 1) * part_size : size;
        if (EVP_DigestInit_ex(part, EVP_sha256(), NULL) != 1) {
            nubo_err_set(err, 0, "ConfigError", "could not set up SHA-256");
            goto cleanup;
        }
        while (done < end) {
            size_t want = end - done < BLOCK ? (size_t)(end - done) : BLOCK;
            ssize_t got = pread(fd, buf, want, (off_t)done);
            if (got < 0 && errno == EINTR) {
                continue;
            }
            if (got <= 0) {
                nubo_err_set(err, 0, "FileError", "could not read \"%s\": %s", path,
                             got < 0 ? strerror(errno) : "it shrank while it was read");
                goto cleanup;
            }
            EVP_DigestUpdate(whole, buf, (size_t)got);
            EVP_DigestUpdate(part, buf, (size_t)got);
            done += (uint64_t)got;
            double now = nubo_now_s();
            if (progress && (now - last >= 0.1 || done == size)) {
                last = now;
                if (progress(NUBO_TRANSFER_HASH, done, size, arg)) {
                    nubo_err_set(err, 0, "Cancelled", "the upload of \"%s\" was cancelled", path);
                    goto cleanup;
                }
            }
        }
        digest_hex(part, parts[i]);
    }
    digest_hex(whole, hex);
    rc = 0;
cleanup:
    EVP_MD_CTX_free(whole);
    EVP_MD_CTX_free(part);
    free(buf);
    return rc;
}

/* What the API has of a part: its size and SHA-256 ("" when it has not got it). */
struct remote_part {
    long long size;
    char sha256[65];
};

/* GETs the parts of image 'id' into 'remote' (indexed by part number, 1 to 'n'; parts past
 * 'n' are of no use and ignored). Returns 0, or -1 with '*err' set. */
static int list_parts(struct nubo_client *c, const char *id, int n, struct remote_part *remote,
                      struct nubo_error *err)
{
    char *path = nubo_id_path("/v1/images", id, "/parts");
    json_t *doc = NULL;
    if (!path) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return -1;
    }
    int rc = nubo_call(c, "GET", path, NULL, NULL, true, &doc, err);
    json_t *parts = json_object_get(doc, "parts");
    if (rc == 0 && !json_is_array(parts)) {
        nubo_err_set(err, 0, "ProtocolError", "the answer to GET %s has no \"parts\"", path);
        rc = -1;
    }
    size_t i;
    json_t *p;
    json_array_foreach(rc == 0 ? parts : NULL, i, p)
    {
        long long num = nubo_js_int(p, "part");
        const char *sha = json_string_value(json_object_get(p, "sha256"));
        if (num >= 1 && num <= n && sha) {
            remote[num].size = nubo_js_int(p, "size_bytes");
            snprintf(remote[num].sha256, sizeof remote[num].sha256, "%s", sha);
        }
    }
    json_decref(doc);
    free(path);
    return rc;
}

/* Reports a part's progress as the whole file's. */
struct part_progress {
    nubo_transfer_fn fn;
    void *arg;
    uint64_t base; /* bytes skipped and sent before this part */
    uint64_t total;
};

static int on_part_progress(enum nubo_transfer_phase phase, uint64_t done, uint64_t total,
                            void *arg)
{
    struct part_progress *pp = arg;
    (void)total;
    return pp->fn(phase, pp->base + done, pp->total, pp->arg);
}

/* PUTs part 'num' ('size' bytes of 'fd' from 'offset', whose SHA-256 is 'sha256') of image 'id'
 * to 'upath'. Returns 0, or -1 with '*err' set. */
static int put_part(struct nubo_client *c, const char *upath, int fd, int num, uint64_t offset,
                    uint64_t size, const char *sha256, struct part_progress *pp,
                    struct nubo_error *err)
{
    char query[32];
    snprintf(query, sizeof query, "part=%d", num);
    struct nubo_stream s = {.in_fd = fd,
                            .in_size = size,
                            .in_offset = offset,
                            .payload_hash = sha256,
                            .out_fd = -1,
                            .progress = pp->fn ? on_part_progress : NULL,
                            .arg = pp};
    char *reply = NULL;
    int rc = nubo_client_stream(c, "PUT", upath, query, &s, true, &reply, err);
    free(reply);
    return rc < 0 ? -1 : 0;
}

/* POSTs the join of parts 1 to 'n' of image 'id', whose whole SHA-256 is 'hex', and stores its
 * answer in '*out'. Returns 0, or -1 with '*err' set. */
static int complete_parts(struct nubo_client *c, const char *id, int n, const char *hex,
                          struct nubo_upload_parts_result *out, struct nubo_error *err)
{
    json_t *list = json_array();
    for (int i = 1; list && i <= n; i++) {
        json_array_append_new(list, json_integer(i));
    }
    json_t *body = json_pack("{s:o, s:s}", "parts", list, "sha256", hex);
    char *path = nubo_id_path("/v1/images", id, "/parts/complete");
    json_t *doc = NULL;
    int rc = -1;
    if (!body || !path) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        goto cleanup;
    }
    if (nubo_call(c, "POST", path, NULL, body, false, &doc, err) < 0) {
        goto cleanup;
    }
    const char *state = json_string_value(json_object_get(doc, "state"));
    const char *task = json_string_value(json_object_get(doc, "import_task_id"));
    if (!state) {
        nubo_err_set(err, 0, "ProtocolError", "the answer to POST %s has no \"state\"", path);
        goto cleanup;
    }
    snprintf(out->state, sizeof out->state, "%s", state);
    snprintf(out->import_task_id, sizeof out->import_task_id, "%s", task ? task : "");
    rc = 0;
cleanup:
    json_decref(body);
    json_decref(doc);
    free(path);
    return rc;
}

NUBO_API int nubo_image_upload_parts(struct nubo_client *c, const char *id, const char *path,
                                     uint64_t part_size, nubo_transfer_fn progress, void *arg,
                                     struct nubo_upload_parts_result *out, struct nubo_error *err)
{
    if (nubo_need(id, "an image id", err) < 0 || nubo_need(path, "a file", err) < 0) {
        return -1;
    }
    if (part_size == 0) {
        part_size = NUBO_UPLOAD_PART_SIZE;
    }
    if (part_size < NUBO_UPLOAD_PART_SIZE_MIN) {
        nubo_err_set(err, 0, "InvalidParameterValue",
                     "a part size of %llu bytes is under the least, %llu",
                     (unsigned long long)part_size, NUBO_UPLOAD_PART_SIZE_MIN);
        return -1;
    }
    struct stat st;
    int fd = open_upload(path, &st, err);
    if (fd < 0) {
        return -1;
    }
    struct nubo_upload_parts_result r = {0};
    char(*sums)[65] = NULL;
    struct remote_part *remote = NULL;
    char *upath = NULL;
    int rc = -1;
    uint64_t size = (uint64_t)st.st_size;
    uint64_t n = size ? (size - 1) / part_size + 1 : 0;
    if (!S_ISREG(st.st_mode)) {
        nubo_err_set(err, 0, "FileError", "\"%s\" is not a regular file", path);
        goto cleanup;
    }
    if (n == 0 || n > 10000) {
        nubo_err_set(err, 0, "InvalidParameterValue",
                     n ? "\"%s\" would be %llu parts, over 10000: give a larger part size"
                       : "\"%s\" is empty",
                     path, (unsigned long long)n);
        goto cleanup;
    }
    sums = calloc(n, sizeof *sums);
    remote = calloc(n + 1, sizeof *remote);
    upath = nubo_id_path("/v1/images", id, "/file");
    if (!sums || !remote || !upath) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        goto cleanup;
    }
    r.parts = (int)n;
    r.bytes = size;
    snprintf(r.image_id, sizeof r.image_id, "%s", id);
    if (hash_parts(fd, path, size, part_size, r.parts, sums, progress, arg, r.sha256, err) < 0 ||
        list_parts(c, id, r.parts, remote, err) < 0) {
        goto cleanup;
    }
    struct part_progress pp = {.fn = progress, .arg = arg, .total = size};
    for (int i = 1; i <= r.parts; i++) {
        uint64_t offset = (uint64_t)(i - 1) * part_size;
        uint64_t len = size - offset < part_size ? size - offset : part_size;
        pp.base = r.bytes_skipped + r.bytes_sent;
        if (remote[i].size == (long long)len && !strcasecmp(remote[i].sha256, sums[i - 1])) {
            r.parts_skipped++;
            r.bytes_skipped += len;
        } else {
            if (put_part(c, upath, fd, i, offset, len, sums[i - 1], &pp, err) < 0) {
                goto cleanup;
            }
            r.parts_sent++;
            r.bytes_sent += len;
        }
        if (progress && progress(NUBO_TRANSFER_SEND, pp.base + len, size, arg)) {
            nubo_err_set(err, 0, "Cancelled", "the upload of \"%s\" was cancelled", path);
            goto cleanup;
        }
    }
    if (complete_parts(c, id, r.parts, r.sha256, &r, err) < 0) {
        goto cleanup;
    }
    if (out) {
        *out = r;
    }
    rc = 0;
cleanup:
    free(sums);
    free(remote);
    free(upath);
    close(fd);
    return rc;
}

/* GETs "/v1/images/<id><suffix>" into the file 'path' (see nubo_image_download()). */
static int download(struct nubo_client *c, const char *id, const char *suffix, const char *path,
                    const char *range, nubo_transfer_fn progress, void *arg,
                    struct nubo_download_result *out, struct nubo_error *err)
{
    if (nubo_need(id, "an image id", err) < 0 || nubo_need(path, "a file", err) < 0) {
        return -1;
    }
    char *upath = nubo_id_path("/v1/images", id, suffix);
    if (!upath) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return -1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        nubo_err_set(err, 0, "FileError", "could not create \"%s\": %s", path, strerror(errno));
        free(upath);
        return -1;
    }
    struct nubo_stream s = {
        .in_fd = -1, .out_fd = fd, .range = range, .progress = progress, .arg = arg};
    char *reply = NULL;
    int status = nubo_client_stream(c, "GET", upath, NULL, &s, true, &reply, err);
    free(reply);
    bool whole = status == 200; /* 206 is a range; a range the API ignored is the whole */
    if (status > 0 && whole && s.sha256[0] && strcasecmp(s.sha256, s.body_sha256)) {
        nubo_err_set(err, 0, "BadDigest",
                     "the bytes of \"%s\" have SHA-256 %s, not %s as the API said", id,
                     s.body_sha256, s.sha256);
        status = -1;
    }
    if (close(fd) < 0 && status > 0) {
        nubo_err_set(err, 0, "FileError", "could not write \"%s\": %s", path, strerror(errno));
        status = -1;
    }
    if (status < 0) {
        unlink(path);
        free(upath);
        return -1;
    }
    if (progress) {
        progress(NUBO_TRANSFER_RECEIVE, s.written, s.written, arg);
    }
    if (out) {
        memset(out, 0, sizeof *out);
        out->bytes = s.written;
        snprintf(out->sha256, sizeof out->sha256, "%s", s.sha256);
        out->verified = whole && s.sha256[0];
    }
    free(upath);
    return 0;
}

NUBO_API int nubo_image_download(struct nubo_client *c, const char *id, const char *path,
                                 const char *range, nubo_transfer_fn progress, void *arg,
                                 struct nubo_download_result *out, struct nubo_error *err)
{
    return download(c, id, "/file", path, range, progress, arg, out, err);
}

NUBO_API int nubo_image_export_download(struct nubo_client *c, const char *id, const char *path,
                                        const char *range, nubo_transfer_fn progress, void *arg,
                                        struct nubo_download_result *out, struct nubo_error *err)
{
    return download(c, id, "/export.ova", path, range, progress, arg, out, err);
}

NUBO_API int nubo_image_export(struct nubo_client *c, const char *id,
                               struct nubo_export_result *out, struct nubo_error *err)
{
    json_t *reply = NULL;
    if (image_request(c, "POST", id, "/export", NULL, false, &reply, err) < 0) {
        return -1;
    }
    const char *task = json_string_value(json_object_get(reply, "export_task_id"));
    const char *state = json_string_value(json_object_get(reply, "state"));
    if (!task) {
        json_decref(reply);
        nubo_err_set(err, 0, "ProtocolError", "the answer to an export has no task id");
        return -1;
    }
    if (out) {
        memset(out, 0, sizeof *out);
        snprintf(out->task_id, sizeof out->task_id, "%s", task);
        snprintf(out->image_id, sizeof out->image_id, "%s", id);
        snprintf(out->state, sizeof out->state, "%s", state ? state : "pending");
    }
    json_decref(reply);
    return 0;
}
