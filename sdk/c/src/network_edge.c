/* A VPC's edge (/v1/addresses, /v1/vpn-gateways, /v1/customer-gateways, /v1/vpn-connections):
 * elastic IPs allocated, associated and released; VPN gateways, customer gateways and VPN
 * connections with their static routes and customer gateway configuration; JSON answers parsed
 * into the public structs of nubo/nubo.h. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Sends 'method' to "<base>/<id><suffix>" with 'body' (stolen, may be NULL) and parses a 2xx
 * answer with 'parse' into a new item of 'size' bytes, or parses nothing when 'parse' is NULL.
 * Returns the item (the caller frees it with nubo_item_free(.., 'clear')), or NULL: with '*err'
 * set, or, when 'parse' is NULL, with '*ok' telling success. Only GETs are retried. */
static void *edge_call(struct nubo_client *c, const char *method, const char *base, const char *id,
                       const char *suffix, const char *what, json_t *body, size_t size,
                       int (*parse)(const json_t *, void *), void (*clear)(void *), bool *ok,
                       struct nubo_error *err)
{
    *ok = false;
    if (nubo_need(id, what, err) < 0) {
        json_decref(body);
        return NULL;
    }
    char *path = nubo_id_path(base, id, suffix);
    json_t *reply = NULL;
    int rc = path ? nubo_call(c, method, path, NULL, body, !strcmp(method, "GET"),
                              parse ? &reply : NULL, err)
                  : -1;
    if (!path) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
    }
    free(path);
    json_decref(body);
    if (rc < 0) {
        return NULL;
    }
    *ok = true;
    return parse ? nubo_js_item(reply, size, parse, clear, what, err) : NULL;
}

static int edge_delete(struct nubo_client *c, const char *base, const char *id, const char *what,
                       struct nubo_error *err)
{
    bool ok;
    edge_call(c, "DELETE", base, id, "", what, NULL, 0, NULL, NULL, &ok, err);
    return ok ? 0 : -1;
}

static void *edge_list(struct nubo_client *c, const char *path, const char *key,
                       const struct nubo_filter *f, size_t n, size_t size,
                       int (*parse)(const json_t *, void *), void (*clear)(void *),
                       struct nubo_error *err)
{
    struct nubo_query q = {0};
    const char *text = nubo_filters_query(&q, f, n, err);
    void *l = text ? nubo_get_list(c, path, text, key, size, parse, clear, err) : NULL;
    nubo_query_clear(&q);
    return l;
}

/* Adds "tags" to 'body' (may be NULL: out of memory). Returns 'body', or NULL having dropped
 * it. */
static json_t *tagged(json_t *body, const struct nubo_tag *tags, size_t n)
{
    json_t *t = nubo_js_tags_object(tags, n);
    if (!body || !t || json_object_set_new(body, "tags", t) < 0) {
        json_decref(body);
        json_decref(t);
        return NULL;
    }
    return body;
}

/* --- elastic IPs ----------------------------------------------------------------------------- */

static int address_parse(const json_t *o, void *item)
{
    struct nubo_address *a = item;
    a->id = nubo_js_str(o, "id");
    a->public_ip = nubo_js_str(o, "public_ip");
    a->association_id = nubo_js_str(o, "association_id");
    a->instance_id = nubo_js_str(o, "instance_id");
    a->network_interface_id = nubo_js_str(o, "network_interface_id");
    a->private_ip = nubo_js_str(o, "private_ip");
    a->json = nubo_js_dump(o);
    if (nubo_js_tags(o, "tags", &a->tags, &a->n_tags) < 0) {
        return -1;
    }
    return a->id && a->public_ip && a->json ? 0 : -1;
}

static void address_clear(void *item)
{
    struct nubo_address *a = item;
    free(a->id);
    free(a->public_ip);
    free(a->association_id);
    free(a->instance_id);
    free(a->network_interface_id);
    free(a->private_ip);
    nubo_tags_free(a->tags, a->n_tags);
    free(a->json);
}

#define ADDRESS sizeof(struct nubo_address), address_parse, address_clear

NUBO_API struct nubo_address *nubo_address_allocate(struct nubo_client *c,
                                                    const struct nubo_tag *tags, size_t n_tags,
                                                    struct nubo_error *err)
{
    return nubo_call_one(c, "POST", "/v1/addresses", tagged(json_object(), tags, n_tags), false,
                         ADDRESS, err);
}

NUBO_API struct nubo_address_list *nubo_addresses_list(struct nubo_client *c,
                                                       const struct nubo_filter *filters,
                                                       size_t n_filters, struct nubo_error *err)
{
    return edge_list(c, "/v1/addresses", "addresses", filters, n_filters, ADDRESS, err);
}

NUBO_API struct nubo_address *nubo_address_get(struct nubo_client *c, const char *id,
                                               struct nubo_error *err)
{
    bool ok;
    return edge_call(c, "GET", "/v1/addresses", id, "", "an allocation id", NULL, ADDRESS, &ok,
                     err);
}

NUBO_API struct nubo_address *nubo_address_associate(struct nubo_client *c, const char *id,
                                                     const char *instance_id,
                                                     const char *network_interface_id,
                                                     bool allow_reassociation,
                                                     struct nubo_error *err)
{
    bool ok;
    if (!instance_id == !network_interface_id) {
        nubo_err_set(err, 0, "InvalidParameterValue",
                     "an instance id or a network interface id is required, not both");
        return NULL;
    }
    json_t *body =
        json_pack("{s:s?, s:s?, s:b}", "instance_id", instance_id, "network_interface_id",
                  network_interface_id, "allow_reassociation", allow_reassociation);
    return edge_call(c, "POST", "/v1/addresses", id, "/associate", "an allocation id", body,
                     ADDRESS, &ok, err);
}

NUBO_API struct nubo_address *nubo_address_disassociate(struct nubo_client *c, const char *id,
                                                        struct nubo_error *err)
{
    bool ok;
    return edge_call(c, "POST", "/v1/addresses", id, "/disassociate", "an allocation id", NULL,
                     ADDRESS, &ok, err);
}

NUBO_API int nubo_address_release(struct nubo_client *c, const char *id, struct nubo_error *err)
{
    return edge_delete(c, "/v1/addresses", id, "an allocation id", err);
}

NUBO_API void nubo_address_free(struct nubo_address *a)
{
    nubo_item_free(a, address_clear);
}

NUBO_API void nubo_address_list_free(struct nubo_address_list *l)
{
    nubo_list_free(l, sizeof *l->items, address_clear);
}

/* --- VPN gateways ---------------------------------------------------------------------------- */

static int vgw_parse(const json_t *o, void *item)
{
    struct nubo_vpn_gateway *g = item;
    g->id = nubo_js_str(o, "id");
    g->type = nubo_js_str(o, "type");
    g->state = nubo_js_str(o, "state");
    g->vpc_id = nubo_js_str(o, "vpc_id");
    g->amazon_side_asn = nubo_js_int(o, "amazon_side_asn");
    g->json = nubo_js_dump(o);
    if (nubo_js_tags(o, "tags", &g->tags, &g->n_tags) < 0) {
        return -1;
    }
    return g->id && g->json ? 0 : -1;
}

static void vgw_clear(void *item)
{
    struct nubo_vpn_gateway *g = item;
    free(g->id);
    free(g->type);
    free(g->state);
    free(g->vpc_id);
    nubo_tags_free(g->tags, g->n_tags);
    free(g->json);
}

#define VGW sizeof(struct nubo_vpn_gateway), vgw_parse, vgw_clear

NUBO_API struct nubo_vpn_gateway *nubo_vpn_gateway_create(struct nubo_client *c,
                                                          long long amazon_side_asn,
                                                          const struct nubo_tag *tags,
                                                          size_t n_tags, struct nubo_error *err)
{
    json_t *body = json_pack("{s:s}", "type", "ipsec.1");
    if (body && amazon_side_asn) {
        json_object_set_new(body, "amazon_side_asn", json_integer(amazon_side_asn));
    }
    return nubo_call_one(c, "POST", "/v1/vpn-gateways", tagged(body, tags, n_tags), false, VGW,
                         err);
}

NUBO_API struct nubo_vpn_gateway_list *nubo_vpn_gateways_list(struct nubo_client *c,
                                                              const struct nubo_filter *filters,
                                                              size_t n_filters,
                                                              struct nubo_error *err)
{
    return edge_list(c, "/v1/vpn-gateways", "vpn_gateways", filters, n_filters, VGW, err);
}

NUBO_API struct nubo_vpn_gateway *nubo_vpn_gateway_get(struct nubo_client *c, const char *id,
                                                       struct nubo_error *err)
{
    bool ok;
    return edge_call(c, "GET", "/v1/vpn-gateways", id, "", "a VPN gateway id", NULL, VGW, &ok, err);
}

NUBO_API struct nubo_vpn_gateway *nubo_vpn_gateway_attach(struct nubo_client *c, const char *id,
                                                          const char *vpc_id, bool attach,
                                                          struct nubo_error *err)
{
    bool ok;
    if (nubo_need(vpc_id, "a VPC id", err) < 0) {
        return NULL;
    }
    return edge_call(c, "POST", "/v1/vpn-gateways", id, attach ? "/attach" : "/detach",
                     "a VPN gateway id", json_pack("{s:s}", "vpc_id", vpc_id), VGW, &ok, err);
}

NUBO_API int nubo_vpn_gateway_delete(struct nubo_client *c, const char *id, struct nubo_error *err)
{
    return edge_delete(c, "/v1/vpn-gateways", id, "a VPN gateway id", err);
}

NUBO_API void nubo_vpn_gateway_free(struct nubo_vpn_gateway *g)
{
    nubo_item_free(g, vgw_clear);
}

NUBO_API void nubo_vpn_gateway_list_free(struct nubo_vpn_gateway_list *l)
{
    nubo_list_free(l, sizeof *l->items, vgw_clear);
}

/* --- customer gateways ----------------------------------------------------------------------- */

static int cgw_parse(const json_t *o, void *item)
{
    struct nubo_customer_gateway *g = item;
    g->id = nubo_js_str(o, "id");
    g->type = nubo_js_str(o, "type");
    g->state = nubo_js_str(o, "state");
    g->ip_address = nubo_js_str(o, "ip_address");
    g->bgp_asn = nubo_js_int(o, "bgp_asn");
    g->device_name = nubo_js_str(o, "device_name");
    g->json = nubo_js_dump(o);
    if (nubo_js_tags(o, "tags", &g->tags, &g->n_tags) < 0) {
        return -1;
    }
    return g->id && g->json ? 0 : -1;
}

static void cgw_clear(void *item)
{
    struct nubo_customer_gateway *g = item;
    free(g->id);
    free(g->type);
    free(g->state);
    free(g->ip_address);
    free(g->device_name);
    nubo_tags_free(g->tags, g->n_tags);
    free(g->json);
}

#define CGW sizeof(struct nubo_customer_gateway), cgw_parse, cgw_clear

NUBO_API struct nubo_customer_gateway *
nubo_customer_gateway_create(struct nubo_client *c, const char *ip_address, long long bgp_asn,
                             const char *device_name, const struct nubo_tag *tags, size_t n_tags,
                             struct nubo_error *err)
{
    if (nubo_need(ip_address, "an IP address", err) < 0) {
        return NULL;
    }
    json_t *body = json_pack("{s:s, s:s?}", "ip_address", ip_address, "device_name", device_name);
    if (body && bgp_asn) {
        json_object_set_new(body, "bgp_asn", json_integer(bgp_asn));
    }
    return nubo_call_one(c, "POST", "/v1/customer-gateways", tagged(body, tags, n_tags), false, CGW,
                         err);
}

NUBO_API struct nubo_customer_gateway_list *
nubo_customer_gateways_list(struct nubo_client *c, const struct nubo_filter *filters,
                            size_t n_filters, struct nubo_error *err)
{
    return edge_list(c, "/v1/customer-gateways", "customer_gateways", filters, n_filters, CGW, err);
}

NUBO_API struct nubo_customer_gateway *
nubo_customer_gateway_get(struct nubo_client *c, const char *id, struct nubo_error *err)
{
    bool ok;
    return edge_call(c, "GET", "/v1/customer-gateways", id, "", "a customer gateway id", NULL, CGW,
                     &ok, err);
}

NUBO_API int nubo_customer_gateway_delete(struct nubo_client *c, const char *id,
                                          struct nubo_error *err)
{
    return edge_delete(c, "/v1/customer-gateways", id, "a customer gateway id", err);
}

NUBO_API void nubo_customer_gateway_free(struct nubo_customer_gateway *g)
{
    nubo_item_free(g, cgw_clear);
}

NUBO_API void nubo_customer_gateway_list_free(struct nubo_customer_gateway_list *l)
{
    nubo_list_free(l, sizeof *l->items, cgw_clear);
}

/* --- VPN connections ------------------------------------------------------------------------- */

static void vpn_clear(void *item)
{
    struct nubo_vpn_connection *v = item;
    free(v->id);
    free(v->state);
    free(v->customer_gateway_id);
    free(v->vpn_gateway_id);
    free(v->outside_ip);
    free(v->customer_ip);
    free(v->pre_shared_key);
    free(v->vpc_cidr);
    for (size_t i = 0; i < v->n_routes; i++) {
        free(v->routes[i]);
    }
    free(v->routes);
    free(v->tunnel_status);
    free(v->configuration);
    nubo_tags_free(v->tags, v->n_tags);
    free(v->json);
}

static int vpn_parse(const json_t *o, void *item)
{
    struct nubo_vpn_connection *v = item;
    v->id = nubo_js_str(o, "id");
    v->state = nubo_js_str(o, "state");
    v->customer_gateway_id = nubo_js_str(o, "customer_gateway_id");
    v->vpn_gateway_id = nubo_js_str(o, "vpn_gateway_id");
    v->outside_ip = nubo_js_str(o, "outside_ip");
    v->customer_ip = nubo_js_str(o, "customer_ip");
    v->pre_shared_key = nubo_js_str(o, "pre_shared_key");
    v->vpc_cidr = nubo_js_str(o, "vpc_cidr");
    v->tunnel_status = nubo_js_str(json_object_get(o, "tunnel"), "status");
    v->configuration = nubo_js_str(o, "customer_gateway_configuration");
    v->json = nubo_js_dump(o);
    json_t *routes = json_object_get(o, "routes");
    size_t n = json_is_array(routes) ? json_array_size(routes) : 0;
    if (n) {
        v->routes = calloc(n, sizeof *v->routes);
        if (!v->routes) {
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            const char *r = json_string_value(json_array_get(routes, i));
            v->routes[i] = strdup(r ? r : "");
            v->n_routes = i + 1;
            if (!v->routes[i]) {
                return -1;
            }
        }
    }
    if (nubo_js_tags(o, "tags", &v->tags, &v->n_tags) < 0) {
        return -1;
    }
    return v->id && v->json ? 0 : -1;
}

#define VPN sizeof(struct nubo_vpn_connection), vpn_parse, vpn_clear

NUBO_API struct nubo_vpn_connection *
nubo_vpn_connection_create(struct nubo_client *c, const char *customer_gateway_id,
                           const char *vpn_gateway_id, const struct nubo_tag *tags, size_t n_tags,
                           struct nubo_error *err)
{
    if (nubo_need(customer_gateway_id, "a customer gateway id", err) < 0 ||
        nubo_need(vpn_gateway_id, "a VPN gateway id", err) < 0) {
        return NULL;
    }
    json_t *body =
        json_pack("{s:s, s:s, s:s, s:b}", "customer_gateway_id", customer_gateway_id,
                  "vpn_gateway_id", vpn_gateway_id, "type", "ipsec.1", "static_routes_only", 1);
    return nubo_call_one(c, "POST", "/v1/vpn-connections", tagged(body, tags, n_tags), false, VPN,
                         err);
}

NUBO_API struct nubo_vpn_connection_list *
nubo_vpn_connections_list(struct nubo_client *c, const struct nubo_filter *filters,
                          size_t n_filters, struct nubo_error *err)
{
    return edge_list(c, "/v1/vpn-connections", "vpn_connections", filters, n_filters, VPN, err);
}

NUBO_API struct nubo_vpn_connection *nubo_vpn_connection_get(struct nubo_client *c, const char *id,
                                                             struct nubo_error *err)
{
    bool ok;
    return edge_call(c, "GET", "/v1/vpn-connections", id, "", "a VPN connection id", NULL, VPN, &ok,
                     err);
}

NUBO_API struct nubo_vpn_connection *nubo_vpn_connection_route(struct nubo_client *c,
                                                               const char *id,
                                                               const char *destination, bool add,
                                                               struct nubo_error *err)
{
    bool ok;
    if (nubo_need(destination, "a destination CIDR block", err) < 0) {
        return NULL;
    }
    return edge_call(c, add ? "POST" : "DELETE", "/v1/vpn-connections", id, "/routes",
                     "a VPN connection id", json_pack("{s:s}", "destination", destination), VPN,
                     &ok, err);
}

NUBO_API int nubo_vpn_connection_delete(struct nubo_client *c, const char *id,
                                        struct nubo_error *err)
{
    return edge_delete(c, "/v1/vpn-connections", id, "a VPN connection id", err);
}

NUBO_API void nubo_vpn_connection_free(struct nubo_vpn_connection *v)
{
    nubo_item_free(v, vpn_clear);
}

NUBO_API void nubo_vpn_connection_list_free(struct nubo_vpn_connection_list *l)
{
    nubo_list_free(l, sizeof *l->items, vpn_clear);
}
