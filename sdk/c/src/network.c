/* Tenant networks (/v1/vpcs, /v1/subnets, /v1/security-groups): create, list, show and delete
 * each, a security group's rules added and removed, and the network interface an instance
 * launched into a subnet carries; JSON answers parsed into the public structs of nubo/nubo.h. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Sends 'method' to "<base>/<id><suffix>" with 'body' (stolen, may be NULL) and parses a
 * 2xx answer with 'parse' into a new item of 'size' bytes ('parse' NULL: nothing is parsed and
 * '*ok' says whether the call succeeded). Returns the item, which the caller frees with
 * nubo_item_free(.., 'clear'), or NULL with '*err' set. Only GETs are retried. */
static void *id_call(struct nubo_client *c, const char *method, const char *base, const char *id,
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

/* DELETE "<base>/<id>". Returns 0, or -1 with '*err' set. */
static int id_delete(struct nubo_client *c, const char *base, const char *id, const char *what,
                     struct nubo_error *err)
{
    bool ok;
    id_call(c, "DELETE", base, id, "", what, NULL, 0, NULL, NULL, &ok, err);
    return ok ? 0 : -1;
}

/* GETs 'path' with the filters 'f' and parses its 'key' array. Returns a new list, or NULL with
 * '*err' set. */
static void *filtered_list(struct nubo_client *c, const char *path, const char *key,
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

/* Adds "tags" (an object of 'n' tags) to 'body' (may be NULL). Returns 'body', or NULL (having
 * dropped it) when out of memory. */
static json_t *with_tags(json_t *body, const struct nubo_tag *tags, size_t n)
{
    json_t *t = nubo_js_tags_object(tags, n);
    if (!body || !t || json_object_set_new(body, "tags", t) < 0) {
        json_decref(body);
        return NULL;
    }
    return body;
}

/* --- VPCs ------------------------------------------------------------------------------------ */

static int vpc_parse(const json_t *o, void *item)
{
    struct nubo_vpc *v = item;
    v->id = nubo_js_str(o, "id");
    v->owner_id = nubo_js_str(o, "owner_id");
    v->cidr_block = nubo_js_str(o, "cidr_block");
    v->state = nubo_js_str(o, "state");
    v->segment = nubo_js_int(o, "segment");
    v->json = nubo_js_dump(o);
    if (nubo_js_tags(o, "tags", &v->tags, &v->n_tags) < 0) {
        return -1;
    }
    return v->id && v->json ? 0 : -1;
}

static void vpc_clear(void *item)
{
    struct nubo_vpc *v = item;
    free(v->id);
    free(v->owner_id);
    free(v->cidr_block);
    free(v->state);
    nubo_tags_free(v->tags, v->n_tags);
    free(v->json);
}

NUBO_API struct nubo_vpc *nubo_vpc_create(struct nubo_client *c, const char *cidr_block,
                                          const struct nubo_tag *tags, size_t n_tags,
                                          struct nubo_error *err)
{
    if (nubo_need(cidr_block, "a CIDR block", err) < 0) {
        return NULL;
    }
    json_t *body = with_tags(json_pack("{s:s}", "cidr_block", cidr_block), tags, n_tags);
    return nubo_call_one(c, "POST", "/v1/vpcs", body, false, sizeof(struct nubo_vpc), vpc_parse,
                         vpc_clear, err);
}

NUBO_API struct nubo_vpc_list *nubo_vpcs_list(struct nubo_client *c,
                                              const struct nubo_filter *filters, size_t n_filters,
                                              struct nubo_error *err)
{
    return filtered_list(c, "/v1/vpcs", "vpcs", filters, n_filters, sizeof(struct nubo_vpc),
                         vpc_parse, vpc_clear, err);
}

NUBO_API struct nubo_vpc *nubo_vpc_get(struct nubo_client *c, const char *id,
                                       struct nubo_error *err)
{
    bool ok;
    return id_call(c, "GET", "/v1/vpcs", id, "", "a VPC id", NULL, sizeof(struct nubo_vpc),
                   vpc_parse, vpc_clear, &ok, err);
}

NUBO_API int nubo_vpc_delete(struct nubo_client *c, const char *id, struct nubo_error *err)
{
    return id_delete(c, "/v1/vpcs", id, "a VPC id", err);
}

NUBO_API void nubo_vpc_free(struct nubo_vpc *v)
{
    nubo_item_free(v, vpc_clear);
}

NUBO_API void nubo_vpc_list_free(struct nubo_vpc_list *l)
{
    nubo_list_free(l, sizeof *l->items, vpc_clear);
}

/* --- subnets --------------------------------------------------------------------------------- */

static int subnet_parse(const json_t *o, void *item)
{
    struct nubo_subnet *s = item;
    s->id = nubo_js_str(o, "id");
    s->owner_id = nubo_js_str(o, "owner_id");
    s->vpc_id = nubo_js_str(o, "vpc_id");
    s->zone = nubo_js_str(o, "zone");
    s->cidr_block = nubo_js_str(o, "cidr_block");
    s->state = nubo_js_str(o, "state");
    s->available_ips = nubo_js_int(o, "available_ips");
    s->json = nubo_js_dump(o);
    if (nubo_js_tags(o, "tags", &s->tags, &s->n_tags) < 0) {
        return -1;
    }
    return s->id && s->json ? 0 : -1;
}

static void subnet_clear(void *item)
{
    struct nubo_subnet *s = item;
    free(s->id);
    free(s->owner_id);
    free(s->vpc_id);
    free(s->zone);
    free(s->cidr_block);
    free(s->state);
    nubo_tags_free(s->tags, s->n_tags);
    free(s->json);
}

NUBO_API struct nubo_subnet *nubo_subnet_create(struct nubo_client *c,
                                                const struct nubo_subnet_params *p,
                                                struct nubo_error *err)
{
    if (nubo_need(p ? p->vpc_id : NULL, "a VPC id", err) < 0 ||
        nubo_need(p->cidr_block, "a CIDR block", err) < 0) {
        return NULL;
    }
    json_t *body = with_tags(json_pack("{s:s, s:s, s:s?}", "vpc_id", p->vpc_id, "cidr_block",
                                       p->cidr_block, "zone", p->zone),
                             p->tags, p->n_tags);
    return nubo_call_one(c, "POST", "/v1/subnets", body, false, sizeof(struct nubo_subnet),
                         subnet_parse, subnet_clear, err);
}

NUBO_API struct nubo_subnet_list *nubo_subnets_list(struct nubo_client *c,
                                                    const struct nubo_filter *filters,
                                                    size_t n_filters, struct nubo_error *err)
{
    return filtered_list(c, "/v1/subnets", "subnets", filters, n_filters,
                         sizeof(struct nubo_subnet), subnet_parse, subnet_clear, err);
}

NUBO_API struct nubo_subnet *nubo_subnet_get(struct nubo_client *c, const char *id,
                                             struct nubo_error *err)
{
    bool ok;
    return id_call(c, "GET", "/v1/subnets", id, "", "a subnet id", NULL, sizeof(struct nubo_subnet),
                   subnet_parse, subnet_clear, &ok, err);
}

NUBO_API int nubo_subnet_delete(struct nubo_client *c, const char *id, struct nubo_error *err)
{
    return id_delete(c, "/v1/subnets", id, "a subnet id", err);
}

NUBO_API void nubo_subnet_free(struct nubo_subnet *s)
{
    nubo_item_free(s, subnet_clear);
}

NUBO_API void nubo_subnet_list_free(struct nubo_subnet_list *l)
{
    nubo_list_free(l, sizeof *l->items, subnet_clear);
}

/* --- security groups ------------------------------------------------------------------------- */

static int rule_parse(const json_t *o, void *item)
{
    struct nubo_sg_rule *r = item;
    json_t *from = json_object_get(o, "from_port"), *to = json_object_get(o, "to_port");
    r->id = nubo_js_str(o, "id");
    r->direction = nubo_js_str(o, "direction");
    r->protocol = nubo_js_str(o, "protocol");
    r->from_port = json_is_integer(from) ? (int)json_integer_value(from) : -1;
    r->to_port = json_is_integer(to) ? (int)json_integer_value(to) : -1;
    r->cidr = nubo_js_str(o, "cidr");
    r->group_id = nubo_js_str(o, "group_id");
    r->description = nubo_js_str(o, "description");
    return r->direction && r->protocol ? 0 : -1;
}

static void rule_clear(void *item)
{
    struct nubo_sg_rule *r = item;
    free(r->id);
    free(r->direction);
    free(r->protocol);
    free(r->cidr);
    free(r->group_id);
    free(r->description);
}

static int sg_parse(const json_t *o, void *item)
{
    struct nubo_security_group *g = item;
    bool ok;
    g->id = nubo_js_str(o, "id");
    g->owner_id = nubo_js_str(o, "owner_id");
    g->vpc_id = nubo_js_str(o, "vpc_id");
    g->name = nubo_js_str(o, "name");
    g->description = nubo_js_str(o, "description");
    g->json = nubo_js_dump(o);
    if (nubo_js_tags(o, "tags", &g->tags, &g->n_tags) < 0) {
        return -1;
    }
    if (json_is_array(json_object_get(o, "rules"))) {
        g->rules = nubo_js_array(o, "rules", sizeof *g->rules, rule_parse, rule_clear, &g->n_rules,
                                 &ok, NULL);
        if (!ok) {
            return -1;
        }
    }
    return g->id && g->json ? 0 : -1;
}

static void sg_clear(void *item)
{
    struct nubo_security_group *g = item;
    free(g->id);
    free(g->owner_id);
    free(g->vpc_id);
    free(g->name);
    free(g->description);
    for (size_t i = 0; i < g->n_rules; i++) {
        rule_clear(&g->rules[i]);
    }
    free(g->rules);
    nubo_tags_free(g->tags, g->n_tags);
    free(g->json);
}

NUBO_API struct nubo_security_group *
nubo_security_group_create(struct nubo_client *c, const struct nubo_security_group_params *p,
                           struct nubo_error *err)
{
    if (nubo_need(p ? p->name : NULL, "a group name", err) < 0 ||
        nubo_need(p->description, "a group description", err) < 0 ||
        nubo_need(p->vpc_id, "a VPC id", err) < 0) {
        return NULL;
    }
    json_t *body = with_tags(json_pack("{s:s, s:s, s:s}", "name", p->name, "description",
                                       p->description, "vpc_id", p->vpc_id),
                             p->tags, p->n_tags);
    return nubo_call_one(c, "POST", "/v1/security-groups", body, false,
                         sizeof(struct nubo_security_group), sg_parse, sg_clear, err);
}

NUBO_API struct nubo_security_group_list *
nubo_security_groups_list(struct nubo_client *c, const struct nubo_filter *filters,
                          size_t n_filters, struct nubo_error *err)
{
    return filtered_list(c, "/v1/security-groups", "security_groups", filters, n_filters,
                         sizeof(struct nubo_security_group), sg_parse, sg_clear, err);
}

NUBO_API struct nubo_security_group *nubo_security_group_get(struct nubo_client *c, const char *id,
                                                             struct nubo_error *err)
{
    bool ok;
    return id_call(c, "GET", "/v1/security-groups", id, "", "a security group id", NULL,
                   sizeof(struct nubo_security_group), sg_parse, sg_clear, &ok, err);
}

NUBO_API int nubo_security_group_delete(struct nubo_client *c, const char *id,
                                        struct nubo_error *err)
{
    return id_delete(c, "/v1/security-groups", id, "a security group id", err);
}

/* Builds {"rules": [...]} from 'n' specs. Returns a new reference, or NULL with '*err' set. */
static json_t *rules_body(const struct nubo_sg_rule_spec *rules, size_t n, struct nubo_error *err)
{
    if (!rules || n == 0) {
        nubo_err_set(err, 0, "InvalidParameterValue", "at least one rule is required");
        return NULL;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        const struct nubo_sg_rule_spec *r = &rules[i];
        if (nubo_need(r->protocol, "a rule's protocol", err) < 0) {
            json_decref(arr);
            return NULL;
        }
        json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:s?, s:s?, s:s?}", "direction",
                              r->egress ? "egress" : "ingress", "protocol", r->protocol,
                              "from_port", r->from_port, "to_port", r->to_port, "cidr", r->cidr,
                              "group_id", r->group_id, "description", r->description);
        if (!o || json_array_append_new(arr, o) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    json_t *body = arr ? json_pack("{s:o}", "rules", arr) : NULL;
    if (!body) {
        nubo_err_set(err, 0, "InvalidParameterValue", "the rules are not valid UTF-8");
    }
    return body;
}

/* POST (add) or DELETE (remove) 'rules' at the group 'id''s rules. */
static struct nubo_security_group *change_rules(struct nubo_client *c, const char *method,
                                                const char *id,
                                                const struct nubo_sg_rule_spec *rules, size_t n,
                                                struct nubo_error *err)
{
    json_t *body = rules_body(rules, n, err);
    if (!body) {
        return NULL;
    }
    bool ok;
    return id_call(c, method, "/v1/security-groups", id, "/rules", "a security group id", body,
                   sizeof(struct nubo_security_group), sg_parse, sg_clear, &ok, err);
}

NUBO_API struct nubo_security_group *
nubo_security_group_rules_add(struct nubo_client *c, const char *id,
                              const struct nubo_sg_rule_spec *rules, size_t n_rules,
                              struct nubo_error *err)
{
    return change_rules(c, "POST", id, rules, n_rules, err);
}

NUBO_API struct nubo_security_group *
nubo_security_group_rules_remove(struct nubo_client *c, const char *id,
                                 const struct nubo_sg_rule_spec *rules, size_t n_rules,
                                 struct nubo_error *err)
{
    return change_rules(c, "DELETE", id, rules, n_rules, err);
}

NUBO_API void nubo_security_group_free(struct nubo_security_group *g)
{
    nubo_item_free(g, sg_clear);
}

NUBO_API void nubo_security_group_list_free(struct nubo_security_group_list *l)
{
    nubo_list_free(l, sizeof *l->items, sg_clear);
}

/* --- an instance's interface ----------------------------------------------------------------- */

NUBO_API void nubo_instance_network_free(struct nubo_instance_network *n)
{
    if (!n) {
        return;
    }
    free(n->vpc_id);
    free(n->subnet_id);
    free(n->private_ip);
    free(n->mac_address);
    free(n->network_interface_id);
    for (size_t i = 0; i < n->n_security_groups; i++) {
        free(n->security_group_ids[i]);
        free(n->security_group_names[i]);
    }
    free(n->security_group_ids);
    free(n->security_group_names);
    free(n);
}

NUBO_API struct nubo_instance_network *nubo_instance_network_get(const struct nubo_instance *in)
{
    json_t *o = in && in->json ? json_loads(in->json, 0, NULL) : NULL;
    if (!json_is_string(json_object_get(o, "subnet_id"))) {
        json_decref(o);
        return NULL;
    }
    struct nubo_instance_network *n = calloc(1, sizeof *n);
    json_t *groups = json_object_get(o, "security_groups");
    size_t count = json_is_array(groups) ? json_array_size(groups) : 0;
    bool bad = !n;
    if (n) {
        n->vpc_id = nubo_js_str(o, "vpc_id");
        n->subnet_id = nubo_js_str(o, "subnet_id");
        n->private_ip = nubo_js_str(o, "private_ip");
        n->mac_address = nubo_js_str(o, "mac_address");
        n->network_interface_id = nubo_js_str(o, "network_interface_id");
        if (count) {
            n->security_group_ids = calloc(count, sizeof *n->security_group_ids);
            n->security_group_names = calloc(count, sizeof *n->security_group_names);
            bad = !n->security_group_ids || !n->security_group_names;
        }
        bad = bad || !n->subnet_id;
    }
    for (size_t i = 0; !bad && i < count; i++) {
        json_t *g = json_array_get(groups, i);
        const char *gid = json_string_value(json_object_get(g, "id"));
        const char *name = json_string_value(json_object_get(g, "name"));
        n->security_group_ids[i] = strdup(gid ? gid : "");
        n->security_group_names[i] = strdup(name ? name : "");
        n->n_security_groups = i + 1;
        bad = !n->security_group_ids[i] || !n->security_group_names[i];
    }
    json_decref(o);
    if (bad) {
        nubo_instance_network_free(n);
        return NULL;
    }
    return n;
}
