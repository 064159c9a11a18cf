/* EC2 actions over tags: CreateTags, DeleteTags, DescribeTags. */
#include "ec2_api.h"
#include "ec2_params.h"
#include "ec2_xml.h"
#include "svc_tags.h"

#include "nubo/arena.h"
#include "nubo/buf.h"

#include <stdio.h>

/* Reads ResourceId.N (required) and Tag.N. */
static int tag_args(struct ec2_call *c, const char ***ids, size_t *n_ids, struct gw_tag **tags,
                    size_t *n_tags)
{
    struct ec2_params_tag *t;
    if (ec2_get_list(c, "ResourceId", ids, n_ids) < 0 ||
        ec2_params_get_tags(c->params, c->arena, "Tag", &t, n_tags, &c->err) < 0) {
        return -1;
    }
    if (!*n_ids) {
        nb_error_set(&c->err, NB_ERR_MISSING,
                     "The request must contain the parameter ResourceId.1");
        nb_error_reason(&c->err, "MissingParameter");
        return -1;
    }
    *tags = nb_arena_zalloc(c->arena, sizeof **tags * (*n_tags ? *n_tags : 1));
    for (size_t i = 0; i < *n_tags; i++) {
        (*tags)[i].key = t[i].key;
        /* DeleteTags: a Tag.N.Value that was not sent means "any value" (NULL); CreateTags
         * stores NULL as "". Clients send Tag.1..Tag.n without gaps. */
        char name[64];
        snprintf(name, sizeof name, "Tag.%zu.Value", i + 1);
        (*tags)[i].value = ec2_params_get(c->params, name) ? t[i].value : NULL;
    }
    return 0;
}

static int create_tags(struct ec2_call *c)
{
    const char **ids;
    size_t n_ids, n_tags;
    struct gw_tag *tags;
    if (tag_args(c, &ids, &n_ids, &tags, &n_tags) < 0) {
        return -1;
    }
    if (!n_tags) {
        nb_error_set(&c->err, NB_ERR_MISSING, "The request must contain the parameter Tag.1.Key");
        nb_error_reason(&c->err, "MissingParameter");
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    if (gw_tags_create(c->gw, c->who, ids, n_ids, tags, n_tags, &c->err) < 0) {
        return -1;
    }
    ec2_xml_bool(c->out, "return", true);
    return 0;
}

static int delete_tags(struct ec2_call *c)
{
    const char **ids;
    size_t n_ids, n_tags;
    struct gw_tag *tags;
    if (tag_args(c, &ids, &n_ids, &tags, &n_tags) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    if (gw_tags_delete(c->gw, c->who, ids, n_ids, tags, n_tags, &c->err) < 0) {
        return -1;
    }
    ec2_xml_bool(c->out, "return", true);
    return 0;
}

static int describe_tags(struct ec2_call *c)
{
    struct gw_filter *filters;
    size_t n_filters;
    struct gw_page page;
    if (ec2_get_filters(c, &filters, &n_filters) < 0 || ec2_get_page(c, 5, 1000, &page) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    struct gw_tag_row *rows;
    size_t n;
    const char *next;
    if (gw_tags_describe(c->gw, c->who, filters, n_filters, &page, c->arena, &rows, &n, &next,
                         &c->err) < 0) {
        return -1;
    }
    ec2_xml_open(c->out, "tagSet");
    for (size_t i = 0; i < n; i++) {
        ec2_xml_item_open(c->out);
        ec2_xml_text(c->out, "resourceId", rows[i].resource_id);
        ec2_xml_text(c->out, "resourceType", rows[i].resource_type);
        ec2_xml_text(c->out, "key", rows[i].key);
        ec2_xml_text(c->out, "value", rows[i].value);
        ec2_xml_item_close(c->out);
    }
    ec2_xml_close(c->out, "tagSet");
    ec2_xml_text(c->out, "nextToken", next);
    return 0;
}

const struct ec2_action ec2_actions_tags[] = {
    {"CreateTags", create_tags, true, "ResourceId.* Tag.*"},
    {"DeleteTags", delete_tags, true, "ResourceId.* Tag.*"},
    {"DescribeTags", describe_tags, false, "Filter.* MaxResults NextToken"},
    {NULL, NULL, false, NULL},
};
