/* A VPC's routing (/v1/internet-gateways, /v1/route-tables, /v1/remote-access): internet
 * gateways created, attached and detached; route tables with their routes and subnet
 * associations; WireGuard remote access endpoints and their peers; JSON answers parsed into the
 * public structs of nubo/nubo.h. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Sends 'method' to "<base>/<id><suffix>" with 'body' (stolen, may be NULL) and parses a 2xx
 * answer with 'parse' into a new item of 'size' bytes, or parses nothing when 'parse' is NULL.
 * Returns the item (the caller frees it with nubo_item_free(.., 'clear')), or NULL: with '*err'
 * set, or, when 'parse' is NULL, with '*ok' telling success. Only GETs are retried. */
static void *rt_call(struct nubo_client *c, const char *method, const char *base, const char *id,
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

static int rt_delete(struct nubo_client *c, const char *base, const char *id, const char *suffix,
                     const char *what, struct nubo_error *err)
{
    bool ok;
    rt_call(c, "DELETE", base, id, suffix, what, NULL, 0, NULL, NULL, &ok, err);
    return ok ? 0 : -1;
}

static void *rt_list(struct nubo_client *c, const char *path, const char *key,
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

/* --- internet gateways ----------------------------------------------------------------------- */

static int igw_parse(const json_t *o, void *item)
{
    struct nubo_internet_gateway *g = item;
    g->id = nubo_js_str(o, "id");
    g->vpc_id = nubo_js_str(o, "vpc_id");
    g->json = nubo_js_dump(o);
    if (nubo_js_tags(o, "tags", &g->tags, &g->n_tags) < 0) {
        return -1;
    }
    return g->id && g->json ? 0 : -1;
}

static void igw_clear(void *item)
{
    struct nubo_internet_gateway *g = item;
    free(g->id);
    free(g->vpc_id);
    nubo_tags_free(g->tags, g->n_tags);
    free(g->json);
}

#define IGW sizeof(struct nubo_internet_gateway), igw_parse, igw_clear

NUBO_API struct nubo_internet_gateway *nubo_internet_gateway_create(struct nubo_client *c,
                                                                    const struct nubo_tag *tags,
                                                                    size_t n_tags,
                                                                    struct nubo_error *err)
{
    return nubo_call_one(c, "POST", "/v1/internet-gateways", tagged(json_object(), tags, n_tags),
                         false, IGW, err);
}

NUBO_API struct nubo_internet_gateway_list *
nubo_internet_gateways_list(struct nubo_client *c, const struct nubo_filter *filters,
                            size_t n_filters, struct nubo_error *err)
{
    return rt_list(c, "/v1/internet-gateways", "internet_gateways", filters, n_filters, IGW, err);
}

NUBO_API struct nubo_internet_gateway *
nubo_internet_gateway_get(struct nubo_client *c, const char *id, struct nubo_error *err)
{
    bool ok;
    return rt_call(c, "GET", "/v1/internet-gateways", id, "", "an internet gateway id", NULL, IGW,
                   &ok, err);
}

NUBO_API struct nubo_internet_gateway *nubo_internet_gateway_attach(struct nubo_client *c,
                                                                    const char *id,
                                                                    const char *vpc_id, bool attach,
                                                                    struct nubo_error *err)
{
    bool ok;
    if (nubo_need(vpc_id, "a VPC id", err) < 0) {
        return NULL;
    }
    return rt_call(c, "POST", "/v1/internet-gateways", id, attach ? "/attach" : "/detach",
                   "an internet gateway id", json_pack("{s:s}", "vpc_id", vpc_id), IGW, &ok, err);
}

NUBO_API int nubo_internet_gateway_delete(struct nubo_client *c, const char *id,
                                          struct nubo_error *err)
{
    return rt_delete(c, "/v1/internet-gateways", id, "", "an internet gateway id", err);
}

NUBO_API void nubo_internet_gateway_free(struct nubo_internet_gateway *g)
{
    nubo_item_free(g, igw_clear);
}

NUBO_API void nubo_internet_gateway_list_free(struct nubo_internet_gateway_list *l)
{
    nubo_list_free(l, sizeof *l->items, igw_clear);
}

/* --- route tables ---------------------------------------------------------------------------- */

static void rtb_clear(void *item)
{
    struct nubo_route_table *t = item;
    free(t->id);
    free(t->vpc_id);
    for (size_t i = 0; i < t->n_routes; i++) {
        free(t->routes[i].destination);
        free(t->routes[i].gateway_id);
        free(t->routes[i].state);
        free(t->routes[i].origin);
    }
    free(t->routes);
    for (size_t i = 0; i < t->n_associations; i++) {
        free(t->associations[i].id);
        free(t->associations[i].subnet_id);
    }
    free(t->associations);
    nubo_tags_free(t->tags, t->n_tags);
    free(t->json);
}

static int rtb_parse(const json_t *o, void *item)
{
    struct nubo_route_table *t = item;
    t->id = nubo_js_str(o, "id");
    t->vpc_id = nubo_js_str(o, "vpc_id");
    t->main = nubo_js_bool(o, "main");
    t->json = nubo_js_dump(o);
    json_t *routes = json_object_get(o, "routes");
    size_t n = json_is_array(routes) ? json_array_size(routes) : 0;
    if (n) {
        t->routes = calloc(n, sizeof *t->routes);
        if (!t->routes) {
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            const json_t *r = json_array_get(routes, i);
            struct nubo_route *d = &t->routes[i];
            t->n_routes = i + 1;
            d->destination = nubo_js_str(r, "destination");
            d->gateway_id = nubo_js_str(r, "gateway_id");
            d->state = nubo_js_str(r, "state");
            d->origin = nubo_js_str(r, "origin");
            if (!d->destination) {
                return -1;
            }
        }
    }
    json_t *assocs = json_object_get(o, "associations");
    n = json_is_array(assocs) ? json_array_size(assocs) : 0;
    if (n) {
        t->associations = calloc(n, sizeof *t->associations);
        if (!t->associations) {
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            const json_t *a = json_array_get(assocs, i);
            struct nubo_route_association *d = &t->associations[i];
            t->n_associations = i + 1;
            d->id = nubo_js_str(a, "id");
            d->subnet_id = nubo_js_str(a, "subnet_id");
            d->main = nubo_js_bool(a, "main");
            if (!d->id) {
                return -1;
            }
        }
    }
    if (nubo_js_tags(o, "tags", &t->tags, &t->n_tags) < 0) {
        return -1;
    }
    return t->id && t->json ? 0 : -1;
}

#define RTB sizeof(struct nubo_route_table), rtb_parse, rtb_clear

static int assoc_parse(const json_t *o, void *item)
{
    struct nubo_route_table_association *a = item;
    a->id = nubo_js_str(o, "id");
    a->route_table_id = nubo_js_str(o, "route_table_id");
    a->subnet_id = nubo_js_str(o, "subnet_id");
    a->json = nubo_js_dump(o);
    return a->id && a->json ? 0 : -1;
}

static void assoc_clear(void *item)
{
    struct nubo_route_table_association *a = item;
    free(a->id);
    free(a->route_table_id);
    free(a->subnet_id);
    free(a->json);
}

NUBO_API struct nubo_route_table *nubo_route_table_create(struct nubo_client *c, const char *vpc_id,
                                                          const struct nubo_tag *tags,
                                                          size_t n_tags, struct nubo_error *err)
{
    if (nubo_need(vpc_id, "a VPC id", err) < 0) {
        return NULL;
    }
    return nubo_call_one(c, "POST", "/v1/route-tables",
                         tagged(json_pack("{s:s}", "vpc_id", vpc_id), tags, n_tags), false, RTB,
                         err);
}

NUBO_API struct nubo_route_table_list *nubo_route_tables_list(struct nubo_client *c,
                                                              const struct nubo_filter *filters,
                                                              size_t n_filters,
                                                              struct nubo_error *err)
{
    return rt_list(c, "/v1/route-tables", "route_tables", filters, n_filters, RTB, err);
}

NUBO_API struct nubo_route_table *nubo_route_table_get(struct nubo_client *c, const char *id,
                                                       struct nubo_error *err)
{
    bool ok;
    return rt_call(c, "GET", "/v1/route-tables", id, "", "a route table id", NULL, RTB, &ok, err);
}

NUBO_API int nubo_route_table_delete(struct nubo_client *c, const char *id, struct nubo_error *err)
{
    return rt_delete(c, "/v1/route-tables", id, "", "a route table id", err);
}

NUBO_API struct nubo_route_table *nubo_route_table_route(struct nubo_client *c, const char *id,
                                                         const char *destination,
                                                         const char *gateway_id, bool add,
                                                         struct nubo_error *err)
{
    bool ok;
    if (nubo_need(destination, "a destination CIDR", err) < 0 ||
        (add && nubo_need(gateway_id, "a gateway id", err) < 0)) {
        return NULL;
    }
    json_t *body =
        add ? json_pack("{s:s, s:s}", "destination", destination, "gateway_id", gateway_id)
            : json_pack("{s:s}", "destination", destination);
    return rt_call(c, add ? "POST" : "DELETE", "/v1/route-tables", id, "/routes",
                   "a route table id", body, RTB, &ok, err);
}

NUBO_API struct nubo_route_table_association *nubo_route_table_associate(struct nubo_client *c,
                                                                         const char *id,
                                                                         const char *subnet_id,
                                                                         struct nubo_error *err)
{
    bool ok;
    if (nubo_need(subnet_id, "a subnet id", err) < 0) {
        return NULL;
    }
    return rt_call(c, "POST", "/v1/route-tables", id, "/associations", "a route table id",
                   json_pack("{s:s}", "subnet_id", subnet_id),
                   sizeof(struct nubo_route_table_association), assoc_parse, assoc_clear, &ok, err);
}

NUBO_API int nubo_route_table_disassociate(struct nubo_client *c, const char *association_id,
                                           struct nubo_error *err)
{
    if (nubo_need(association_id, "an association id", err) < 0) {
        return -1;
    }
    const struct nubo_filter f = {"association.route-table-association-id", association_id};
    struct nubo_route_table_list *l = nubo_route_tables_list(c, &f, 1, err);
    if (!l) {
        return -1;
    }
    int rc = -1;
    if (l->n != 1) {
        nubo_err_set(err, 404, "InvalidAssociationID.NotFound",
                     "The association ID '%.64s' does not exist", association_id);
    } else {
        char *suffix = nubo_id_path("/associations", association_id, "");
        if (!suffix) {
            nubo_err_set(err, 0, "ConfigError", "out of memory");
        } else {
            rc = rt_delete(c, "/v1/route-tables", l->items[0].id, suffix, "a route table id", err);
        }
        free(suffix);
    }
    nubo_route_table_list_free(l);
    return rc;
}

NUBO_API void nubo_route_table_free(struct nubo_route_table *t)
{
    nubo_item_free(t, rtb_clear);
}

NUBO_API void nubo_route_table_list_free(struct nubo_route_table_list *l)
{
    nubo_list_free(l, sizeof *l->items, rtb_clear);
}

NUBO_API void nubo_route_table_association_free(struct nubo_route_table_association *a)
{
    nubo_item_free(a, assoc_clear);
}

/* --- remote access --------------------------------------------------------------------------- */

static int ra_parse(const json_t *o, void *item)
{
    struct nubo_remote_access *r = item;
    r->id = nubo_js_str(o, "id");
    r->vpc_id = nubo_js_str(o, "vpc_id");
    r->vpc_cidr = nubo_js_str(o, "vpc_cidr");
    r->client_cidr = nubo_js_str(o, "client_cidr");
    r->public_key = nubo_js_str(o, "public_key");
    r->outside_ip = nubo_js_str(o, "outside_ip");
    r->listen_port = nubo_js_int(o, "listen_port");
    r->state = nubo_js_str(o, "state");
    r->host_id = nubo_js_str(o, "host_id");
    r->description = nubo_js_str(o, "description");
    r->n_peers = nubo_js_int(o, "peers");
    r->json = nubo_js_dump(o);
    return r->id && r->json ? 0 : -1;
}

static void ra_clear(void *item)
{
    struct nubo_remote_access *r = item;
    free(r->id);
    free(r->vpc_id);
    free(r->vpc_cidr);
    free(r->client_cidr);
    free(r->public_key);
    free(r->outside_ip);
    free(r->state);
    free(r->host_id);
    free(r->description);
    free(r->json);
}

#define RA sizeof(struct nubo_remote_access), ra_parse, ra_clear

static int peer_parse(const json_t *o, void *item)
{
    struct nubo_remote_access_peer *p = item;
    p->id = nubo_js_str(o, "id");
    p->endpoint_id = nubo_js_str(o, "endpoint_id");
    p->name = nubo_js_str(o, "name");
    p->public_key = nubo_js_str(o, "public_key");
    p->address = nubo_js_str(o, "address");
    p->client_config = nubo_js_str(o, "client_config");
    p->json = nubo_js_dump(o);
    return p->id && p->json ? 0 : -1;
}

static void peer_clear(void *item)
{
    struct nubo_remote_access_peer *p = item;
    free(p->id);
    free(p->endpoint_id);
    free(p->name);
    free(p->public_key);
    free(p->address);
    free(p->client_config);
    free(p->json);
}

#define PEER sizeof(struct nubo_remote_access_peer), peer_parse, peer_clear

NUBO_API struct nubo_remote_access *
nubo_remote_access_create(struct nubo_client *c, const char *vpc_id, const char *client_cidr,
                          const char *description, struct nubo_error *err)
{
    if (nubo_need(vpc_id, "a VPC id", err) < 0 ||
        nubo_need(client_cidr, "a client CIDR", err) < 0) {
        return NULL;
    }
    return nubo_call_one(c, "POST", "/v1/remote-access",
                         json_pack("{s:s, s:s, s:s?}", "vpc_id", vpc_id, "client_cidr", client_cidr,
                                   "description", description),
                         false, RA, err);
}

NUBO_API struct nubo_remote_access_list *nubo_remote_accesses_list(struct nubo_client *c,
                                                                   struct nubo_error *err)
{
    return nubo_get_list(c, "/v1/remote-access", NULL, "remote_access", RA, err);
}

NUBO_API struct nubo_remote_access *nubo_remote_access_get(struct nubo_client *c, const char *id,
                                                           struct nubo_error *err)
{
    bool ok;
    return rt_call(c, "GET", "/v1/remote-access", id, "", "a remote access id", NULL, RA, &ok, err);
}

NUBO_API int nubo_remote_access_delete(struct nubo_client *c, const char *id,
                                       struct nubo_error *err)
{
    return rt_delete(c, "/v1/remote-access", id, "", "a remote access id", err);
}

NUBO_API struct nubo_remote_access_peer *
nubo_remote_access_peer_add(struct nubo_client *c, const char *id, const char *public_key,
                            const char *name, struct nubo_error *err)
{
    bool ok;
    if (nubo_need(public_key, "a public key", err) < 0) {
        return NULL;
    }
    return rt_call(c, "POST", "/v1/remote-access", id, "/peers", "a remote access id",
                   json_pack("{s:s, s:s?}", "public_key", public_key, "name", name), PEER, &ok,
                   err);
}

NUBO_API struct nubo_remote_access_peer_list *
nubo_remote_access_peers_list(struct nubo_client *c, const char *id, struct nubo_error *err)
{
    if (nubo_need(id, "a remote access id", err) < 0) {
        return NULL;
    }
    char *path = nubo_id_path("/v1/remote-access", id, "/peers");
    if (!path) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return NULL;
    }
    void *l = nubo_get_list(c, path, NULL, "peers", PEER, err);
    free(path);
    return l;
}

NUBO_API int nubo_remote_access_peer_delete(struct nubo_client *c, const char *id,
                                            const char *peer_id, struct nubo_error *err)
{
    if (nubo_need(peer_id, "a peer id", err) < 0) {
        return -1;
    }
    char *suffix = nubo_id_path("/peers", peer_id, "");
    if (!suffix) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return -1;
    }
    int rc = rt_delete(c, "/v1/remote-access", id, suffix, "a remote access id", err);
    free(suffix);
    return rc;
}

NUBO_API void nubo_remote_access_free(struct nubo_remote_access *r)
{
    nubo_item_free(r, ra_clear);
}

NUBO_API void nubo_remote_access_list_free(struct nubo_remote_access_list *l)
{
    nubo_list_free(l, sizeof *l->items, ra_clear);
}

NUBO_API void nubo_remote_access_peer_free(struct nubo_remote_access_peer *p)
{
    nubo_item_free(p, peer_clear);
}

NUBO_API void nubo_remote_access_peer_list_free(struct nubo_remote_access_peer_list *l)
{
    nubo_list_free(l, sizeof *l->items, peer_clear);
}
