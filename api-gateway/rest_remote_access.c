/* The REST routes of remote access with WireGuard (see rest_remote_access.h): request JSON in,
 * svc_remote_access.h call, response JSON out. */
#include "rest_remote_access.h"

#include "rest_api.h"
#include "svc_remote_access.h"

#include "nubo/buf.h"
#include "nubo/json.h"

#include <string.h>

/* Gives 'c->err' an EC2 reason when the failing helper set none. Returns -1. */
static int bad_request(struct rest_call *c)
{
    if (!c->err.reason[0]) {
        nb_error_reason(&c->err, c->err.code == NB_ERR_MISSING ? "MissingParameter"
                                                               : "InvalidParameterValue");
    }
    return -1;
}

/* Checks that the body is an object with members of 'allowed' only, and reads the string
 * members 'keys' (NULL-terminated, like 'out') into 'out' (NULL when absent). */
static int body_strings(struct rest_call *c, const char *const *allowed, const char *const *keys,
                        const char **out)
{
    if (!c->body) {
        nb_error_set(&c->err, NB_ERR_MISSING, "this request needs a JSON object body");
        return bad_request(c);
    }
    if (nb_json_check_fields(c->body, allowed, &c->err) < 0) {
        return bad_request(c);
    }
    for (size_t i = 0; keys[i]; i++) {
        out[i] = NULL;
        if (nb_json_get_string(c->body, keys[i], false, &out[i], &c->err) < 0) {
            return bad_request(c);
        }
    }
    return 0;
}

static json_t *endpoint_json(const struct gw_ra_endpoint *e)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s?, s:s, s:I}", "id", e->id,
                     "owner_id", e->owner_id, "vpc_id", e->vpc_id, "vpc_cidr", e->vpc_cidr,
                     "client_cidr", e->client_cidr, "public_key", e->public_key, "outside_ip",
                     e->outside_ip, "listen_port", e->listen_port, "state", e->state, "host_id",
                     e->host_id, "description", e->description, "peers", (json_int_t)e->n_peers);
}

static json_t *peer_json(const struct gw_ra_endpoint *e, const struct gw_ra_peer *p)
{
    struct nb_buf conf = NB_BUF_INIT;
    gw_ra_client_config(&conf, e, p);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", p->id, "endpoint_id",
                          p->endpoint_id, "name", p->name, "public_key", p->public_key, "address",
                          p->address, "client_config", conf.data ? conf.data : "");
    nb_buf_free(&conf);
    return o;
}

int rest_get_ras(struct rest_call *c)
{
    struct gw_ra_endpoint *e;
    size_t n;
    if (gw_ra_describe(c->gw, c->who, NULL, c->arena, &e, &n, &c->err) < 0) {
        return -1;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, endpoint_json(&e[i]));
    }
    c->reply = json_pack("{s:o}", "remote_access", arr);
    return 0;
}

/* POST /v1/remote-access {"vpc_id", "client_cidr", "description"?} */
int rest_post_ras(struct rest_call *c)
{
    static const char *const fields[] = {"vpc_id", "client_cidr", "description", NULL};
    const char *v[3];
    struct gw_ra_endpoint e;
    if (body_strings(c, fields, fields, v) < 0 ||
        gw_ra_create(c->gw, c->who, v[0], v[1], v[2], c->arena, &e, &c->err) < 0) {
        return -1;
    }
    c->status = 201;
    c->reply = endpoint_json(&e);
    return 0;
}

int rest_get_ra(struct rest_call *c)
{
    struct gw_ra_endpoint *e;
    size_t n;
    if (gw_ra_describe(c->gw, c->who, c->args[0], c->arena, &e, &n, &c->err) < 0) {
        return -1;
    }
    c->reply = endpoint_json(&e[0]);
    return 0;
}

int rest_delete_ra(struct rest_call *c)
{
    if (gw_ra_delete(c->gw, c->who, c->args[0], &c->err) < 0) {
        return -1;
    }
    c->status = 204;
    return 0;
}

int rest_get_ra_peers(struct rest_call *c)
{
    struct gw_ra_endpoint *e;
    struct gw_ra_peer *p;
    size_t ne, n;
    if (gw_ra_describe(c->gw, c->who, c->args[0], c->arena, &e, &ne, &c->err) < 0 ||
        gw_ra_peers_describe(c->gw, c->who, c->args[0], c->arena, &p, &n, &c->err) < 0) {
        return -1;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, peer_json(&e[0], &p[i]));
    }
    c->reply = json_pack("{s:o}", "peers", arr);
    return 0;
}

/* POST /v1/remote-access/{id}/peers {"public_key", "name"?}: answers the peer with its
 * "client_config". */
int rest_post_ra_peers(struct rest_call *c)
{
    static const char *const fields[] = {"public_key", "name", NULL};
    const char *v[2];
    struct gw_ra_endpoint *e;
    struct gw_ra_peer p;
    size_t ne;
    if (body_strings(c, fields, fields, v) < 0 ||
        gw_ra_peer_create(c->gw, c->who, c->args[0], v[0], v[1], c->arena, &p, &c->err) < 0 ||
        gw_ra_describe(c->gw, c->who, c->args[0], c->arena, &e, &ne, &c->err) < 0) {
        return -1;
    }
    c->status = 201;
    c->reply = peer_json(&e[0], &p);
    return 0;
}

int rest_delete_ra_peer(struct rest_call *c)
{
    if (gw_ra_peer_delete(c->gw, c->who, c->args[0], c->args[1], &c->err) < 0) {
        return -1;
    }
    c->status = 204;
    return 0;
}
