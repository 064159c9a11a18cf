/* Image bytes over the REST API, outside the JSON route table because they stream:
 *
 *   PUT /v1/images/{id}/file   the image's bytes, streamed into the image store (any size, in
 *                              bounded memory; chunked or with Content-Length). Sign the
 *                              request with an x-amz-content-sha256 header: the bytes' SHA-256
 *                              (checked at the end: BadDigest, nothing stored) or
 *                              "UNSIGNED-PAYLOAD". 200 {"image_id", "state": "available"} for
 *                              raw and qcow2; 202 {"image_id", "state": "pending",
 *                              "import_task_id"} for VHD, VMDK and OVA, which nubo-imaged
 *                              imports.
 *   GET /v1/images/{id}/file   the bytes of an image the caller owns, with HTTP Range (one
 *                              range; 206 and Content-Range) and x-nubo-sha256.
 *   GET /v1/images/{id}/export.ova   the OVA of the image's latest completed export (POST
 *                              /v1/images/{id}/export), the same way.
 *
 * Both are recorded in the request log like every other request. */
#ifndef NUBO_GW_REST_UPLOAD_H
#define NUBO_GW_REST_UPLOAD_H

#include <stdint.h>

struct gw_ctx;
struct nb_http_server;

/* A streamed route as documented; 'impl' names the function that serves it. */
struct rest_doc_route {
    const char *method;
    const char *pattern;
    const void *impl;
};
extern const struct rest_doc_route rest_stream_routes[];

/* Registers both routes; call before the "/v1*" route. Returns 0 or -1. */
int rest_upload_routes(struct nb_http_server *srv, struct gw_ctx *gw);

#endif
