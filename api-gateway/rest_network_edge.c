/* The REST routes of a VPC's edge (see rest_network_edge.h): request JSON in, svc_network_edge.h
 * or svc_vpn.h call, response JSON out. No rule lives here that the EC2 API needs too. */
#include "rest_network_edge.h"

#include "ec2_params.h"
#include "ec2_xml.h"
#include "rest_api.h"
#include "svc.h"
#include "svc_network_edge.h"
#include "svc_vpn.h"

#include "nubo/arena.h"
#include "nubo/buf.h"
#include "nubo/json.h"

#include <stdlib.h>
#include <string.h>

/* --- helpers ------------------------------------------------------------------------------- */

/* Gives 'c->err' an EC2 reason when the failing helper set none. Returns -1. */
static int bad_request(struct rest_call *c)
{
    if (!c->err.reason[0]) {
        nb_error_reason(&c->err, c->err.code == NB_ERR_MISSING ? "MissingParameter"
                                                               : "InvalidParameterValue");
    }
    return -1;
}

/* Checks the body's members against 'allowed' (NULL-terminated). A missing body is an empty
 * one unless 'required'. Returns 0, or -1 with 'c->err'. */
static int body_fields(struct rest_call *c, const char *const *allowed, bool required)
{
    if (!c->body) {
        if (required) {
            nb_error_set(&c->err, NB_ERR_MISSING, "this request needs a JSON object body");
            return bad_request(c);
        }
        return 0;
    }
    return nb_json_check_fields(c->body, allowed, &c->err) < 0 ? bad_request(c) : 0;
}

static int body_str(struct rest_call *c, const char *key, bool required, const char **out)
{
    if (!c->body) {
        if (required) {
            nb_error_set(&c->err, NB_ERR_MISSING, "the body must have \"%s\"", key);
            return bad_request(c);
        }
        return 0;
    }
    return nb_json_get_string(c->body, key, required, out, &c->err) < 0 ? bad_request(c) : 0;
}

static int body_bool(struct rest_call *c, const char *key, bool *out)
{
    if (c->body && nb_json_get_bool(c->body, key, false, out, &c->err) < 0) {
        return bad_request(c);
    }
    return 0;
}

static int body_int(struct rest_call *c, const char *key, long long min, long long max,
                    long long *out)
{
    if (c->body && nb_json_get_int(c->body, key, false, min, max, out, &c->err) < 0) {
        return bad_request(c);
    }
    return 0;
}

/* Reads {"tags": {"k": "v", ...}} into an arena array. */
static int body_tags(struct rest_call *c, struct gw_tag **tags, size_t *n)
{
    json_t *obj = NULL;
    *tags = NULL;
    *n = 0;
    if (c->body && nb_json_get_object(c->body, "tags", false, &obj, &c->err) < 0) {
        return bad_request(c);
    }
    if (!obj) {
        return 0;
    }
    *tags = nb_arena_zalloc(c->arena, sizeof **tags * (json_object_size(obj) + 1));
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (!json_is_string(v)) {
            nb_error_set(&c->err, NB_ERR_INVALID, "tag \"%s\" must have a string value", key);
            return bad_request(c);
        }
        (*tags)[(*n)++] = (struct gw_tag){key, json_string_value(v)};
    }
    return 0;
}

static json_t *tags_json(const struct gw_tag *tags, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++) {
        json_object_set_new(o, tags[i].key, json_string(tags[i].value));
    }
    return o;
}

/* Query arguments become filters: "?vpc-id=vpc-1,vpc-2". */
static int query_filters(struct rest_call *c, struct gw_filter **out, size_t *n)
{
    size_t count = ec2_params_count(c->query);
    *out = nb_arena_zalloc(c->arena, sizeof **out * (count ? count : 1));
    *n = 0;
    for (size_t i = 0; i < count; i++) {
        const struct ec2_params_entry *e = ec2_params_at(c->query, i);
        size_t nv = 1;
        for (const char *p = e->value; *p; p++) {
            nv += *p == ',';
        }
        const char **values = nb_arena_alloc(c->arena, sizeof *values * nv);
        char *copy = nb_arena_strdup(c->arena, e->value);
        char *save = NULL;
        size_t k = 0;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            values[k++] = tok;
        }
        if (k == 0) {
            nb_error_set(&c->err, NB_ERR_INVALID, "filter \"%s\" needs at least one value",
                         e->name);
            return bad_request(c);
        }
        (*out)[(*n)++] = (struct gw_filter){e->name, values, k};
    }
    return 0;
}

static int no_content(struct rest_call *c, int rc)
{
    if (rc == 0) {
        c->status = 204;
    }
    return rc;
}

/* --- internet gateways -------------------------------------------------------------------- */

static json_t *igw_json(const struct gw_internet_gateway *g)
{
    return json_pack("{s:s, s:s, s:s?, s:o}", "id", g->id, "owner_id", g->owner_id, "vpc_id",
                     g->vpc_id, "tags", tags_json(g->tags, g->n_tags));
}

static int reply_igw(struct rest_call *c, const char *id)
{
    struct gw_internet_gateway *g;
    size_t n;
    const char *ids[] = {id};
    if (gw_igws_describe(c->gw, c->who, ids, 1, NULL, 0, c->arena, &g, &n, &c->err) < 0) {
        return -1;
    }
    c->reply = igw_json(&g[0]);
    return 0;
}

int rest_get_igws(struct rest_call *c)
{
    struct gw_filter *f;
    size_t nf, n;
    struct gw_internet_gateway *g;
    if (query_filters(c, &f, &nf) < 0 ||
        gw_igws_describe(c->gw, c->who, NULL, 0, f, nf, c->arena, &g, &n, &c->err) < 0) {
        return -1;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, igw_json(&g[i]));
    }
    c->reply = json_pack("{s:o}", "internet_gateways", arr);
    return 0;
}

int rest_post_igws(struct rest_call *c)
{
    static const char *const fields[] = {"tags", "client_token", NULL};
    const char *token = NULL;
    struct gw_tag *tags;
    size_t n_tags;
    struct gw_internet_gateway g;
    if (body_fields(c, fields, false) < 0 || body_str(c, "client_token", false, &token) < 0 ||
        body_tags(c, &tags, &n_tags) < 0 ||
        gw_igw_create(c->gw, c->who, token, tags, n_tags, c->arena, &g, &c->err) < 0) {
        return -1;
    }
    c->status = 201;
    c->reply = igw_json(&g);
    return 0;
}

int rest_get_igw(struct rest_call *c)
{
    return reply_igw(c, c->args[0]);
}

int rest_delete_igw(struct rest_call *c)
{
    return no_content(c, gw_igw_delete(c->gw, c->who, c->args[0], &c->err));
}

/* POST .../{id}/attach or /detach {"vpc_id"}: 'fn' with the gateway and the VPC, then the
 * gateway as it is. */
static int igw_attachment(struct rest_call *c,
                          int (*fn)(struct gw_ctx *, const struct gw_principal *, const char *,
                                    const char *, struct nb_error *))
{
    static const char *const fields[] = {"vpc_id", NULL};
    const char *vpc_id;
    if (body_fields(c, fields, true) < 0 || body_str(c, "vpc_id", true, &vpc_id) < 0 ||
        fn(c->gw, c->who, c->args[0], vpc_id, &c->err) < 0) {
        return -1;
    }
    return reply_igw(c, c->args[0]);
}

int rest_post_igw_attach(struct rest_call *c)
{
    return igw_attachment(c, gw_igw_attach);
}

int rest_post_igw_detach(struct rest_call *c)
{
    return igw_attachment(c, gw_igw_detach);
}

/* --- route tables ------------------------------------------------------------------------- */

static json_t *rtb_json(const struct gw_route_table *t)
{
    json_t *routes = json_array(), *assocs = json_array();
    for (size_t i = 0; i < t->n_routes; i++) {
        const struct gw_route *r = &t->routes[i];
        json_array_append_new(routes, json_pack("{s:s, s:s, s:s, s:s}", "destination",
                                                r->destination, "gateway_id", r->gateway_id,
                                                "state", r->state, "origin", r->origin));
    }
    for (size_t i = 0; i < t->n_associations; i++) {
        const struct gw_route_association *a = &t->associations[i];
        json_array_append_new(assocs, json_pack("{s:s, s:s?, s:b}", "id", a->id, "subnet_id",
                                                a->subnet_id, "main", a->main));
    }
    return json_pack("{s:s, s:s, s:s, s:b, s:o, s:o, s:o}", "id", t->id, "owner_id", t->owner_id,
                     "vpc_id", t->vpc_id, "main", t->main, "routes", routes, "associations", assocs,
                     "tags", tags_json(t->tags, t->n_tags));
}

static int reply_rtb(struct rest_call *c, const char *id)
{
    struct gw_route_table *t;
    size_t n;
    const char *ids[] = {id};
    if (gw_rtbs_describe(c->gw, c->who, ids, 1, NULL, 0, c->arena, &t, &n, &c->err) < 0) {
        return -1;
    }
    c->reply = rtb_json(&t[0]);
    return 0;
}

int rest_get_rtbs(struct rest_call *c)
{
    struct gw_filter *f;
    size_t nf, n;
    struct gw_route_table *t;
    if (query_filters(c, &f, &nf) < 0 ||
        gw_rtbs_describe(c->gw, c->who, NULL, 0, f, nf, c->arena, &t, &n, &c->err) < 0) {
        return -1;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, rtb_json(&t[i]));
    }
    c->reply = json_pack("{s:o}", "route_tables", arr);
    return 0;
}

int rest_post_rtbs(struct rest_call *c)
{
    static const char *const fields[] = {"vpc_id", "tags", "client_token", NULL};
    const char *vpc_id, *token = NULL;
    struct gw_tag *tags;
    size_t n_tags;
    struct gw_route_table t;
    if (body_fields(c, fields, true) < 0 || body_str(c, "vpc_id", true, &vpc_id) < 0 ||
        body_str(c, "client_token", false, &token) < 0 || body_tags(c, &tags, &n_tags) < 0 ||
        gw_rtb_create(c->gw, c->who, vpc_id, token, tags, n_tags, c->arena, &t, &c->err) < 0) {
        return -1;
    }
    c->status = 201;
    c->reply = rtb_json(&t);
    return 0;
}

int rest_get_rtb(struct rest_call *c)
{
    return reply_rtb(c, c->args[0]);
}

int rest_delete_rtb(struct rest_call *c)
{
    return no_content(c, gw_rtb_delete(c->gw, c->who, c->args[0], &c->err));
}

/* POST /v1/route-tables/{id}/routes {"destination", "gateway_id"}: CreateRoute. */
int rest_post_rtb_routes(struct rest_call *c)
{
    static const char *const fields[] = {"destination", "gateway_id", NULL};
    const char *destination, *gateway_id;
    if (body_fields(c, fields, true) < 0 || body_str(c, "destination", true, &destination) < 0 ||
        body_str(c, "gateway_id", true, &gateway_id) < 0 ||
        gw_route_create(c->gw, c->who, c->args[0], destination, gateway_id, &c->err) < 0) {
        return -1;
    }
    return reply_rtb(c, c->args[0]);
}

/* DELETE /v1/route-tables/{id}/routes {"destination"}: DeleteRoute. */
int rest_delete_rtb_routes(struct rest_call *c)
{
    static const char *const fields[] = {"destination", NULL};
    const char *destination;
    if (body_fields(c, fields, true) < 0 || body_str(c, "destination", true, &destination) < 0 ||
        gw_route_delete(c->gw, c->who, c->args[0], destination, &c->err) < 0) {
        return -1;
    }
    return reply_rtb(c, c->args[0]);
}

/* POST /v1/route-tables/{id}/associations {"subnet_id"}: AssociateRouteTable; 201 with the
 * association. */
int rest_post_rtb_associations(struct rest_call *c)
{
    static const char *const fields[] = {"subnet_id", NULL};
    const char *subnet_id, *assoc_id;
    if (body_fields(c, fields, true) < 0 || body_str(c, "subnet_id", true, &subnet_id) < 0 ||
        gw_rtb_associate(c->gw, c->who, c->args[0], subnet_id, c->arena, &assoc_id, &c->err) < 0) {
        return -1;
    }
    c->status = 201;
    c->reply = json_pack("{s:s, s:s, s:s, s:b}", "id", assoc_id, "route_table_id", c->args[0],
                         "subnet_id", subnet_id, "main", false);
    return 0;
}

/* DELETE /v1/route-tables/{id}/associations/{association}: DisassociateRouteTable, for an
 * association of that table only. */
int rest_delete_rtb_association(struct rest_call *c)
{
    struct gw_route_table *t;
    size_t n;
    const char *ids[] = {c->args[0]};
    if (gw_rtbs_describe(c->gw, c->who, ids, 1, NULL, 0, c->arena, &t, &n, &c->err) < 0) {
        return -1;
    }
    bool mine = false;
    for (size_t i = 0; i < t[0].n_associations; i++) {
        mine = mine || !strcmp(t[0].associations[i].id, c->args[1]);
    }
    if (!mine) {
        nb_error_set(&c->err, NB_ERR_NOT_FOUND,
                     "The association ID '%.64s' does not exist in route table %s", c->args[1],
                     c->args[0]);
        nb_error_reason(&c->err, "InvalidAssociationID.NotFound");
        return -1;
    }
    return no_content(c, gw_rtb_disassociate(c->gw, c->who, c->args[1], &c->err));
}

/* --- elastic IPs -------------------------------------------------------------------------- */

static json_t *address_json(const struct gw_address *a)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:o}", "id", a->allocation_id,
                     "owner_id", a->owner_id, "public_ip", a->public_ip, "domain", "vpc",
                     "association_id", a->association_id, "network_interface_id",
                     a->network_interface_id, "instance_id", a->instance_id, "private_ip",
                     a->private_ip, "tags", tags_json(a->tags, a->n_tags));
}

/* Describes address 'id' into '*out'. */
static int find_address(struct rest_call *c, const char *id, struct gw_address **out)
{
    size_t n;
    const char *ids[] = {id};
    return gw_addresses_describe(c->gw, c->who, ids, 1, NULL, 0, NULL, 0, c->arena, out, &n,
                                 &c->err);
}

static int reply_address(struct rest_call *c, const char *id)
{
    struct gw_address *a;
    if (find_address(c, id, &a) < 0) {
        return -1;
    }
    c->reply = address_json(a);
    return 0;
}

int rest_get_addresses(struct rest_call *c)
{
    struct gw_filter *f;
    size_t nf, n;
    struct gw_address *a;
    if (query_filters(c, &f, &nf) < 0 || gw_addresses_describe(c->gw, c->who, NULL, 0, NULL, 0, f,
                                                               nf, c->arena, &a, &n, &c->err) < 0) {
        return -1;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, address_json(&a[i]));
    }
    c->reply = json_pack("{s:o}", "addresses", arr);
    return 0;
}

int rest_post_addresses(struct rest_call *c)
{
    static const char *const fields[] = {"tags", "client_token", NULL};
    const char *token = NULL;
    struct gw_tag *tags;
    size_t n_tags;
    struct gw_address a;
    if (body_fields(c, fields, false) < 0 || body_str(c, "client_token", false, &token) < 0 ||
        body_tags(c, &tags, &n_tags) < 0 ||
        gw_address_allocate(c->gw, c->who, token, tags, n_tags, c->arena, &a, &c->err) < 0) {
        return -1;
    }
    c->status = 201;
    c->reply = address_json(&a);
    return 0;
}

int rest_get_address(struct rest_call *c)
{
    return reply_address(c, c->args[0]);
}

int rest_delete_address(struct rest_call *c)
{
    return no_content(c, gw_address_release(c->gw, c->who, c->args[0], NULL, &c->err));
}

/* POST /v1/addresses/{id}/associate {"instance_id" | "network_interface_id", "private_ip",
 * "allow_reassociation"}: AssociateAddress; the address as it is then. */
int rest_post_address_associate(struct rest_call *c)
{
    static const char *const fields[] = {"instance_id", "network_interface_id", "private_ip",
                                         "allow_reassociation", NULL};
    struct gw_address_association_request rq = {.allocation_id = c->args[0]};
    const char *assoc_id;
    if (body_fields(c, fields, true) < 0 ||
        body_str(c, "instance_id", false, &rq.instance_id) < 0 ||
        body_str(c, "network_interface_id", false, &rq.interface_id) < 0 ||
        body_str(c, "private_ip", false, &rq.private_ip) < 0 ||
        body_bool(c, "allow_reassociation", &rq.allow_reassociation) < 0 ||
        gw_address_associate(c->gw, c->who, &rq, c->arena, &assoc_id, &c->err) < 0) {
        return -1;
    }
    return reply_address(c, c->args[0]);
}

/* POST /v1/addresses/{id}/disassociate: DisassociateAddress (nothing to do when it is not
 * associated); the address as it is then. */
int rest_post_address_disassociate(struct rest_call *c)
{
    struct gw_address *a;
    if (find_address(c, c->args[0], &a) < 0 ||
        gw_address_disassociate(c->gw, c->who, NULL, a->public_ip, &c->err) < 0) {
        return -1;
    }
    return reply_address(c, c->args[0]);
}

/* --- VPN gateways ------------------------------------------------------------------------- */

static json_t *vgw_json(const struct gw_vpn_gateway *g)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s?, s:I, s:s?, s:o}", "id", g->id, "owner_id",
                     g->owner_id, "type", g->type, "state", g->state, "zone", g->zone,
                     "amazon_side_asn", (json_int_t)g->amazon_side_asn, "vpc_id", g->vpc_id, "tags",
                     tags_json(g->tags, g->n_tags));
}

static int reply_vgw(struct rest_call *c, const char *id)
{
    struct gw_vpn_gateway *g;
    size_t n;
    const char *ids[] = {id};
    if (gw_vgws_describe(c->gw, c->who, ids, 1, NULL, 0, c->arena, &g, &n, &c->err) < 0) {
        return -1;
    }
    c->reply = vgw_json(&g[0]);
    return 0;
}

int rest_get_vgws(struct rest_call *c)
{
    struct gw_filter *f;
    size_t nf, n;
    struct gw_vpn_gateway *g;
    if (query_filters(c, &f, &nf) < 0 ||
        gw_vgws_describe(c->gw, c->who, NULL, 0, f, nf, c->arena, &g, &n, &c->err) < 0) {
        return -1;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, vgw_json(&g[i]));
    }
    c->reply = json_pack("{s:o}", "vpn_gateways", arr);
    return 0;
}

int rest_post_vgws(struct rest_call *c)
{
    static const char *const fields[] = {"type", "zone",         "amazon_side_asn",
                                         "tags", "client_token", NULL};
    const char *type = "ipsec.1", *zone = NULL, *token = NULL;
    long long asn = 0;
    struct gw_tag *tags;
    size_t n_tags;
    struct gw_vpn_gateway g;
    if (body_fields(c, fields, false) < 0 || body_str(c, "type", false, &type) < 0 ||
        body_str(c, "zone", false, &zone) < 0 || body_str(c, "client_token", false, &token) < 0 ||
        body_int(c, "amazon_side_asn", 1, 4294967295LL, &asn) < 0 ||
        body_tags(c, &tags, &n_tags) < 0 ||
        gw_vgw_create(c->gw, c->who, type, zone, asn, token, tags, n_tags, c->arena, &g, &c->err) <
            0) {
        return -1;
    }
    c->status = 201;
    c->reply = vgw_json(&g);
    return 0;
}

int rest_get_vgw(struct rest_call *c)
{
    return reply_vgw(c, c->args[0]);
}

int rest_delete_vgw(struct rest_call *c)
{
    return no_content(c, gw_vgw_delete(c->gw, c->who, c->args[0], &c->err));
}

static int vgw_attachment(struct rest_call *c,
                          int (*fn)(struct gw_ctx *, const struct gw_principal *, const char *,
                                    const char *, struct nb_error *))
{
    static const char *const fields[] = {"vpc_id", NULL};
    const char *vpc_id;
    if (body_fields(c, fields, true) < 0 || body_str(c, "vpc_id", true, &vpc_id) < 0 ||
        fn(c->gw, c->who, c->args[0], vpc_id, &c->err) < 0) {
        return -1;
    }
    return reply_vgw(c, c->args[0]);
}

int rest_post_vgw_attach(struct rest_call *c)
{
    return vgw_attachment(c, gw_vgw_attach);
}

int rest_post_vgw_detach(struct rest_call *c)
{
    return vgw_attachment(c, gw_vgw_detach);
}

/* --- customer gateways -------------------------------------------------------------------- */

static json_t *cgw_json(const struct gw_customer_gateway *g)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s?, s:o}", "id", g->id, "owner_id",
                     g->owner_id, "type", g->type, "state", g->state, "ip_address", g->ip_address,
                     "bgp_asn", (json_int_t)g->bgp_asn, "device_name", g->device_name, "tags",
                     tags_json(g->tags, g->n_tags));
}

int rest_get_cgws(struct rest_call *c)
{
    struct gw_filter *f;
    size_t nf, n;
    struct gw_customer_gateway *g;
    if (query_filters(c, &f, &nf) < 0 ||
        gw_cgws_describe(c->gw, c->who, NULL, 0, f, nf, c->arena, &g, &n, &c->err) < 0) {
        return -1;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, cgw_json(&g[i]));
    }
    c->reply = json_pack("{s:o}", "customer_gateways", arr);
    return 0;
}

int rest_post_cgws(struct rest_call *c)
{
    static const char *const fields[] = {"ip_address",  "bgp_asn", "type",
                                         "device_name", "tags",    NULL};
    const char *ip, *type = "ipsec.1", *device = NULL;
    long long asn = 0;
    struct gw_tag *tags;
    size_t n_tags;
    struct gw_customer_gateway g;
    if (body_fields(c, fields, true) < 0 || body_str(c, "ip_address", true, &ip) < 0 ||
        body_str(c, "type", false, &type) < 0 || body_str(c, "device_name", false, &device) < 0 ||
        body_int(c, "bgp_asn", 1, 4294967295LL, &asn) < 0 || body_tags(c, &tags, &n_tags) < 0 ||
        gw_cgw_create(c->gw, c->who, type, ip, asn, device, tags, n_tags, c->arena, &g, &c->err) <
            0) {
        return -1;
    }
    c->status = 201;
    c->reply = cgw_json(&g);
    return 0;
}

int rest_get_cgw(struct rest_call *c)
{
    struct gw_customer_gateway *g;
    size_t n;
    if (gw_cgws_describe(c->gw, c->who, c->args, 1, NULL, 0, c->arena, &g, &n, &c->err) < 0) {
        return -1;
    }
    c->reply = cgw_json(&g[0]);
    return 0;
}

int rest_delete_cgw(struct rest_call *c)
{
    return no_content(c, gw_cgw_delete(c->gw, c->who, c->args[0], &c->err));
}

/* --- VPN connections ---------------------------------------------------------------------- */

static json_t *vpn_json(struct rest_call *c, const struct gw_vpn_connection *v)
{
    json_t *routes = json_array();
    for (size_t i = 0; i < v->n_routes; i++) {
        json_array_append_new(routes, json_string(v->routes[i].destination));
    }
    char *when = nb_arena_alloc(c->arena, EC2_XML_TIME_LEN);
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:s?, s:s?, s:o, s:{s:s, s:s, s:s}, "
        "s:o}",
        "id", v->id, "owner_id", v->owner_id, "type", v->type, "state", v->state,
        "customer_gateway_id", v->customer_gateway_id, "vpn_gateway_id", v->vpn_gateway_id,
        "static_routes_only", v->static_routes_only, "outside_ip", v->outside_ip, "customer_ip",
        v->customer_ip, "pre_shared_key", v->psk, "vpc_id", v->vpc_id, "vpc_cidr", v->vpc_cidr,
        "routes", routes, "tunnel", "status", v->tunnel_status, "status_changed_at",
        ec2_xml_format_time_ms(v->tunnel_status_ms, when), "message", v->tunnel_status_message,
        "tags", tags_json(v->tags, v->n_tags));
    if (strcmp(v->state, "deleted")) {
        struct nb_buf config = NB_BUF_INIT;
        gw_vpn_config_xml(&config, v);
        json_object_set_new(o, "customer_gateway_configuration", json_string(config.data));
        nb_buf_free(&config);
    }
    return o;
}

static int reply_vpn(struct rest_call *c, const char *id)
{
    struct gw_vpn_connection *v;
    size_t n;
    const char *ids[] = {id};
    if (gw_vpns_describe(c->gw, c->who, ids, 1, NULL, 0, c->arena, &v, &n, &c->err) < 0) {
        return -1;
    }
    c->reply = vpn_json(c, &v[0]);
    return 0;
}

int rest_get_vpns(struct rest_call *c)
{
    struct gw_filter *f;
    size_t nf, n;
    struct gw_vpn_connection *v;
    if (query_filters(c, &f, &nf) < 0 ||
        gw_vpns_describe(c->gw, c->who, NULL, 0, f, nf, c->arena, &v, &n, &c->err) < 0) {
        return -1;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, vpn_json(c, &v[i]));
    }
    c->reply = json_pack("{s:o}", "vpn_connections", arr);
    return 0;
}

int rest_post_vpns(struct rest_call *c)
{
    static const char *const fields[] = {"customer_gateway_id",
                                         "vpn_gateway_id",
                                         "type",
                                         "static_routes_only",
                                         "tags",
                                         "client_token",
                                         NULL};
    struct gw_vpn_request rq = {.type = "ipsec.1", .static_routes_only = true};
    struct gw_tag *tags;
    struct gw_vpn_connection v;
    if (body_fields(c, fields, true) < 0 ||
        body_str(c, "customer_gateway_id", true, &rq.customer_gateway_id) < 0 ||
        body_str(c, "vpn_gateway_id", true, &rq.vpn_gateway_id) < 0 ||
        body_str(c, "type", false, &rq.type) < 0 ||
        body_str(c, "client_token", false, &rq.client_token) < 0 ||
        body_bool(c, "static_routes_only", &rq.static_routes_only) < 0 ||
        body_tags(c, &tags, &rq.n_tags) < 0) {
        return -1;
    }
    rq.tags = tags;
    if (gw_vpn_create(c->gw, c->who, &rq, c->arena, &v, &c->err) < 0) {
        return -1;
    }
    c->status = 201;
    c->reply = vpn_json(c, &v);
    return 0;
}

int rest_get_vpn(struct rest_call *c)
{
    return reply_vpn(c, c->args[0]);
}

int rest_delete_vpn(struct rest_call *c)
{
    return no_content(c, gw_vpn_delete(c->gw, c->who, c->args[0], &c->err));
}

static int change_vpn_route(struct rest_call *c, bool add)
{
    static const char *const fields[] = {"destination", NULL};
    const char *destination;
    if (body_fields(c, fields, true) < 0 || body_str(c, "destination", true, &destination) < 0 ||
        gw_vpn_route_change(c->gw, c->who, c->args[0], destination, add, &c->err) < 0) {
        return -1;
    }
    return reply_vpn(c, c->args[0]);
}

/* POST /v1/vpn-connections/{id}/routes {"destination"}: CreateVpnConnectionRoute. */
int rest_post_vpn_routes(struct rest_call *c)
{
    return change_vpn_route(c, true);
}

/* DELETE /v1/vpn-connections/{id}/routes {"destination"}: DeleteVpnConnectionRoute. */
int rest_delete_vpn_routes(struct rest_call *c)
{
    return change_vpn_route(c, false);
}
