/* Image bytes over the REST API: streamed uploads and ranged downloads (rest_upload.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth.h"
#include "gateway.h"
#include "nubo/arena.h"
#include "nubo/http.h"
#include "nubo/id.h"
#include "nubo/log.h"
#include "rest_api.h"
#include "rest_upload.h"
#include "store.h"
#include "svc_images.h"

/* "/v1/images/ID/SUFFIX" -> ID copied to 'id' (NB_ID_MAX); false for any other path. */
static bool image_path(const char *path, const char *suffix, char *id)
{
    static const char prefix[] = "/v1/images/";
    if (strncmp(path, prefix, sizeof prefix - 1) != 0) {
        return false;
    }
    const char *p = path + sizeof prefix - 1;
    const char *slash = strchr(p, '/');
    if (!slash || slash == p || (size_t)(slash - p) >= NB_ID_MAX || strcmp(slash + 1, suffix)) {
        return false;
    }
    memcpy(id, p, (size_t)(slash - p));
    id[slash - p] = '\0';
    return true;
}

static bool file_path(const char *path, char *id)
{
    return image_path(path, "file", id);
}

static bool wants_file(const char *path, void *arg)
{
    (void)arg;
    char id[NB_ID_MAX];
    return file_path(path, id);
}

/* --- upload: PUT /v1/images/{id}/file ------------------------------------------------------ */

struct upload_call {
    struct rest_call c;
    char request_id[40];
    char image_id[NB_ID_MAX];
    int part; /* of a multipart upload, or 0 */
    int64_t t0;
    struct gw_upload *up;
    bool failed;   /* c.err says why; the rest of the body is read and dropped */
    bool finished; /* the request was recorded and answered */
};

/* Records the call and answers with 'doc' (taken), or with the error in c.err when NULL. */
static void upload_answer(struct upload_call *u, const char *code, json_t *doc)
{
    if (!doc) {
        doc = rest_failure_doc(&u->c, &code);
    }
    nb_log_set_request_id(u->request_id);
    rest_finish(&u->c, u->t0, code, doc);
    nb_log_set_request_id(NULL);
    u->finished = true;
    gw_upload_free(u->up);
    u->up = NULL;
}

static void upload_begin(struct nb_http_req *req, void *arg, void **ctx)
{
    struct gw_ctx *gw = arg;
    struct upload_call *u = calloc(1, sizeof *u);
    if (!u) {
        nb_http_reply(req, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    *ctx = u;
    u->t0 = rest_now_us();
    nb_uuid_new(u->request_id, sizeof u->request_id);
    u->c = (struct rest_call){.gw = gw,
                              .req = req,
                              .arena = nb_http_req_arena(req),
                              .request_id = u->request_id,
                              .status = 200};
    const char *code = NULL;
    json_t *denied = rest_authenticate(&u->c, &code);
    if (denied) {
        upload_answer(u, code, denied);
        return;
    }
    file_path(nb_http_req_path(req), u->image_id);
    const char *cl = nb_http_req_header(req, "Content-Length");
    int64_t declared = cl ? strtoll(cl, NULL, 10) : -1;
    const char *claim = nb_http_req_header(req, "x-amz-content-sha256");
    if (claim && strlen(claim) != 64) {
        claim = NULL; /* UNSIGNED-PAYLOAD: nothing to check the bytes against */
    }
    /* ?part=N: one part of a multipart upload (POST .../parts/complete joins them). */
    const char *part_s = nb_http_req_query(req, "part");
    char *end = NULL;
    long part = part_s ? strtol(part_s, &end, 10) : 0;
    if (part_s && (!*part_s || *end || part < 1 || part > GW_UPLOAD_MAX_PARTS)) {
        nb_error_set(&u->c.err, NB_ERR_INVALID, "part must be a number from 1 to %d",
                     GW_UPLOAD_MAX_PARTS);
        nb_error_reason(&u->c.err, "InvalidParameterValue");
        upload_answer(u, NULL, NULL);
        return;
    }
    u->part = (int)part;
    u->up = gw_upload_begin(gw, u->c.who, u->image_id, u->part, declared, claim, &u->c.err);
    if (!u->up) {
        upload_answer(u, NULL, NULL);
    }
}

static void upload_body(struct nb_http_req *req, void *ctx, const char *data, size_t len)
{
    (void)req;
    struct upload_call *u = ctx;
    if (u->finished || u->failed) {
        return;
    }
    if (gw_upload_write(u->up, data, len, &u->c.err) < 0) {
        /* libmicrohttpd takes no reply while a body is arriving: the error is answered at the
         * end, and what was written is dropped now. */
        u->failed = true;
        gw_upload_free(u->up);
        u->up = NULL;
    }
}

static void upload_end(struct nb_http_req *req, void *ctx)
{
    (void)req;
    struct upload_call *u = ctx;
    if (!u || u->finished) {
        return;
    }
    if (u->failed) {
        upload_answer(u, NULL, NULL);
        return;
    }
    char state[16], task[NB_ID_MAX + 16];
    nb_log_set_request_id(u->request_id);
    int rc = gw_upload_finish(u->up, state, task, &u->c.err);
    nb_log_set_request_id(NULL);
    if (rc < 0) {
        upload_answer(u, NULL, NULL);
        return;
    }
    json_t *doc = json_pack("{s:s, s:s}", "image_id", u->image_id, "state", state);
    if (u->part) {
        json_object_set_new(doc, "part", json_integer(u->part));
    }
    if (task[0]) {
        json_object_set_new(doc, "import_task_id", json_string(task));
        u->c.status = 202; /* accepted: nubo-imaged validates and converts it */
    }
    upload_answer(u, NULL, doc);
}

static void upload_done(void *ctx, bool completed)
{
    struct upload_call *u = ctx;
    if (!u) {
        return;
    }
    if (!u->finished) {
        nb_warn("upload into %s ended before its body did: dropped", u->image_id);
    }
    (void)completed;
    gw_upload_free(u->up);
    free(u);
}

static const struct nb_http_stream upload_stream = {
    .wants = wants_file,
    .begin = upload_begin,
    .body = upload_body,
    .end = upload_end,
    .done = upload_done,
};

/* --- download: GET /v1/images/{id}/file, with Range ----------------------------------------- */

static void download(struct nb_http_req *req, void *arg)
{
    struct gw_ctx *gw = arg;
    char id[NB_ID_MAX];
    bool ova = image_path(nb_http_req_path(req), "export.ova", id);
    if (!ova && !file_path(nb_http_req_path(req), id)) {
        rest_api_handle(req, gw);
        return;
    }
    char request_id[40];
    nb_uuid_new(request_id, sizeof request_id);
    nb_log_set_request_id(request_id);
    struct rest_call c = {
        .gw = gw, .req = req, .arena = nb_http_req_arena(req), .request_id = request_id};
    int64_t t0 = rest_now_us();
    const char *code = NULL;
    json_t *doc = rest_authenticate(&c, &code);
    struct img_blob_reader *d = NULL;
    uint64_t size = 0, first = 0, last = 0;
    char sha[65];
    if (!doc) {
        d = calloc(1, sizeof *d);
        if (!d || (ova ? gw_image_export_blob(gw, c.who, id, d->key, &size, sha, &c.err)
                       : gw_image_blob(gw, c.who, id, d->key, &size, sha, &c.err)) < 0) {
            if (!d) {
                nb_error_set(&c.err, NB_ERR_INTERNAL, "out of memory");
            }
            doc = rest_failure_doc(&c, &code);
        }
    }
    int range = 0;
    if (!doc) {
        d->store = gw->store;
        range = nb_http_parse_range(nb_http_req_header(req, "Range"), size, &first, &last);
        if (range < 0) {
            char cr[64];
            snprintf(cr, sizeof cr, "bytes */%" PRIu64, size);
            nb_http_reply_header(req, "Content-Range", cr);
            code = "InvalidRange";
            c.status = 416;
            doc = rest_error_doc(code, "the requested range is not inside the image", request_id);
        }
    }
    if (doc) {
        free(d);
        rest_finish(&c, t0, code, doc);
        nb_log_set_request_id(NULL);
        return;
    }
    if (range == 0) {
        first = 0;
        last = size ? size - 1 : 0;
    }
    c.status = range ? 206 : 200;
    d->first = first;
    uint64_t len = size ? last - first + 1 : 0;
    /* Recorded before the bytes go out; if the record cannot be written, rest_finish() has
     * answered 503 and the stream below is refused. */
    rest_finish(&c, t0, NULL, NULL);
    char hdr[96];
    nb_http_reply_header(req, "Accept-Ranges", "bytes");
    nb_http_reply_header(req, "x-nubo-sha256", sha);
    if (range) {
        snprintf(hdr, sizeof hdr, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, size);
        nb_http_reply_header(req, "Content-Range", hdr);
    }
    nb_http_reply_stream(req, c.status, ova ? "application/x-tar" : "application/octet-stream", len,
                         img_blob_reader_read, free, d);
    nb_log_set_request_id(NULL);
}

/* The streamed routes, for the API description: docs/openapi.yaml documents them beside the
 * JSON ones (tests/tools/check_openapi.py reads this table as it reads rest_routes[]). */
const struct rest_doc_route rest_stream_routes[] = {
    {"PUT", "/v1/images/{}/file", upload_begin},
    {"GET", "/v1/images/{}/file", download},
    {"GET", "/v1/images/{}/export.ova", download},
    {NULL, NULL, NULL},
};

int rest_upload_routes(struct nb_http_server *srv, struct gw_ctx *gw)
{
    if (nb_http_route_stream(srv, "PUT", "/v1/images/*", &upload_stream, gw) < 0 ||
        nb_http_route(srv, "GET", "/v1/images/*", download, gw) < 0) {
        return -1;
    }
    return 0;
}
