/* EC2 actions over placement groups: CreatePlacementGroup, DescribePlacementGroups,
 * DeletePlacementGroup. */
#include "ec2_api.h"
#include "ec2_params.h"
#include "ec2_xml.h"
#include "svc_placement.h"

#include "nubo/arena.h"
#include "nubo/buf.h"

#include <stdlib.h>
#include <string.h>

static void write_group(struct nb_buf *b, const struct gw_placement_group *g)
{
    ec2_xml_text(b, "groupName", g->name);
    ec2_xml_text(b, "state", g->state);
    ec2_xml_text(b, "strategy", g->strategy);
    if (g->partition_count > 0) {
        ec2_xml_int(b, "partitionCount", g->partition_count);
    }
    ec2_xml_text(b, "groupId", g->id);
    ec2_write_tags(b, g->tags, g->n_tags);
}

static int create_placement_group(struct ec2_call *c)
{
    const char *name, *strategy = NULL;
    long long count = 0;
    struct gw_tag *tags;
    size_t n_tags;
    if (ec2_params_get_string(c->params, "GroupName", true, &name, &c->err) < 0 ||
        ec2_params_get_string(c->params, "Strategy", true, &strategy, &c->err) < 0 ||
        ec2_params_get_int(c->params, "PartitionCount", false, 1, 7, &count, &c->err) < 0 ||
        ec2_get_tag_specs(c, "placement-group", &tags, &n_tags) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    struct gw_placement_group g;
    if (gw_placement_group_create(c->gw, c->who, name, strategy, (int)count, tags, n_tags, c->arena,
                                  &g, &c->err) < 0) {
        return -1;
    }
    ec2_xml_bool(c->out, "return", true);
    ec2_xml_open(c->out, "placementGroup");
    write_group(c->out, &g);
    ec2_xml_close(c->out, "placementGroup");
    return 0;
}

static int delete_placement_group(struct ec2_call *c)
{
    const char *name;
    if (ec2_params_get_string(c->params, "GroupName", true, &name, &c->err) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    if (gw_placement_group_delete(c->gw, c->who, name, &c->err) < 0) {
        return -1;
    }
    ec2_xml_bool(c->out, "return", true);
    return 0;
}

static int describe_placement_groups(struct ec2_call *c)
{
    const char **names, **ids;
    size_t n_names, n_ids, n_filters;
    struct gw_filter *filters;
    if (ec2_get_list(c, "GroupName", &names, &n_names) < 0 ||
        ec2_get_list(c, "GroupId", &ids, &n_ids) < 0 ||
        ec2_get_filters(c, &filters, &n_filters) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    struct gw_placement_group *g;
    size_t n;
    if (gw_placement_groups_describe(c->gw, c->who, names, n_names, ids, n_ids, filters, n_filters,
                                     c->arena, &g, &n, &c->err) < 0) {
        return -1;
    }
    ec2_xml_open(c->out, "placementGroupSet");
    for (size_t i = 0; i < n; i++) {
        ec2_xml_item_open(c->out);
        write_group(c->out, &g[i]);
        ec2_xml_item_close(c->out);
    }
    ec2_xml_close(c->out, "placementGroupSet");
    return 0;
}

const struct ec2_action ec2_actions_placement[] = {
    {"CreatePlacementGroup", create_placement_group, true,
     "GroupName Strategy PartitionCount SpreadLevel TagSpecification.*"},
    {"DeletePlacementGroup", delete_placement_group, true, "GroupName"},
    {"DescribePlacementGroups", describe_placement_groups, false, "GroupName.* GroupId.* Filter.*"},
    {NULL, NULL, false, NULL},
};
