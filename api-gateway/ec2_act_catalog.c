/* EC2 actions over the catalogue: DescribeRegions, DescribeAvailabilityZones,
 * DescribeInstanceTypes, DescribeImages. */
#include "ec2_api.h"
#include "ec2_params.h"
#include "ec2_xml.h"
#include "gateway.h"
#include "svc_catalog.h"

#include "nubo/buf.h"

#include <string.h>

/* DescribeRegions: nubo serves one region per gateway; no database round trip. */
static int describe_regions(struct ec2_call *c)
{
    const char **names;
    size_t n_names;
    struct gw_filter *filters;
    size_t n_filters;
    if (ec2_get_list(c, "RegionName", &names, &n_names) < 0 ||
        ec2_get_filters(c, &filters, &n_filters) < 0) {
        return -1;
    }
    bool match = true;
    for (size_t i = 0; i < n_names; i++) {
        if (strcmp(names[i], c->gw->region)) {
            nb_error_set(&c->err, NB_ERR_INVALID, "Invalid region: %s", names[i]);
            nb_error_reason(&c->err, "InvalidParameterValue");
            return -1;
        }
    }
    for (size_t f = 0; f < n_filters; f++) {
        const char *field = !strcmp(filters[f].name, "region-name")     ? c->gw->region
                            : !strcmp(filters[f].name, "endpoint")      ? c->gw->endpoint
                            : !strcmp(filters[f].name, "opt-in-status") ? "opt-in-not-required"
                                                                        : NULL;
        if (!field) {
            nb_error_set(&c->err, NB_ERR_INVALID, "The filter '%s' is invalid", filters[f].name);
            nb_error_reason(&c->err, "InvalidParameterValue");
            return -1;
        }
        bool any = false;
        for (size_t v = 0; v < filters[f].n_values; v++) {
            any |= !strcmp(filters[f].values[v], field);
        }
        match &= any;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    ec2_xml_open(c->out, "regionInfo");
    if (match) {
        ec2_xml_item_open(c->out);
        ec2_xml_text(c->out, "regionName", c->gw->region);
        ec2_xml_text(c->out, "regionEndpoint", c->gw->endpoint);
        ec2_xml_text(c->out, "optInStatus", "opt-in-not-required");
        ec2_xml_item_close(c->out);
    }
    ec2_xml_close(c->out, "regionInfo");
    return 0;
}

static int describe_zones(struct ec2_call *c)
{
    const char **names;
    size_t n_names;
    struct gw_filter *filters;
    size_t n_filters;
    if (ec2_get_list(c, "ZoneName", &names, &n_names) < 0 ||
        ec2_get_filters(c, &filters, &n_filters) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    struct gw_zone *z;
    size_t n;
    if (gw_zones_list(c->gw, names, n_names, filters, n_filters, c->arena, &z, &n, &c->err) < 0) {
        return -1;
    }
    ec2_xml_open(c->out, "availabilityZoneInfo");
    for (size_t i = 0; i < n; i++) {
        ec2_xml_item_open(c->out);
        ec2_xml_text(c->out, "zoneName", z[i].name);
        ec2_xml_text(c->out, "zoneState", z[i].state);
        ec2_xml_text(c->out, "regionName", z[i].region);
        nb_buf_printf(c->out, "<zoneId>%s-az%zu</zoneId>", z[i].region, i + 1);
        ec2_xml_text(c->out, "zoneType", "availability-zone");
        ec2_xml_text(c->out, "groupName", z[i].region);
        ec2_xml_text(c->out, "optInStatus", "opt-in-not-required");
        ec2_xml_empty(c->out, "messageSet");
        ec2_xml_item_close(c->out);
    }
    ec2_xml_close(c->out, "availabilityZoneInfo");
    return 0;
}

static int describe_instance_types(struct ec2_call *c)
{
    const char **names;
    size_t n_names;
    struct gw_filter *filters;
    size_t n_filters;
    struct gw_page page;
    if (ec2_get_list(c, "InstanceType", &names, &n_names) < 0 ||
        ec2_get_filters(c, &filters, &n_filters) < 0 || ec2_get_page(c, 5, 100, &page) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    struct gw_instance_type *t;
    size_t n;
    const char *next;
    if (gw_instance_types_list(c->gw, names, n_names, filters, n_filters, &page, c->arena, &t, &n,
                               &next, &c->err) < 0) {
        return -1;
    }
    ec2_xml_open(c->out, "instanceTypeSet");
    for (size_t i = 0; i < n; i++) {
        struct nb_buf *b = c->out;
        ec2_xml_item_open(b);
        ec2_xml_text(b, "instanceType", t[i].name);
        ec2_xml_bool(b, "currentGeneration", true);
        ec2_xml_bool(b, "freeTierEligible", false);
        nb_buf_puts(b, "<supportedUsageClasses><item>on-demand</item></supportedUsageClasses>"
                       "<supportedRootDeviceTypes><item>instance-store</item>"
                       "</supportedRootDeviceTypes><supportedVirtualizationTypes><item>hvm</item>"
                       "</supportedVirtualizationTypes><bareMetal>false</bareMetal>"
                       "<hypervisor>kvm</hypervisor><processorInfo><supportedArchitectures>"
                       "<item>x86_64</item></supportedArchitectures></processorInfo>");
        nb_buf_printf(b,
                      "<vCpuInfo><defaultVCpus>%d</defaultVCpus><defaultCores>%d</defaultCores>"
                      "<defaultThreadsPerCore>1</defaultThreadsPerCore></vCpuInfo>"
                      "<memoryInfo><sizeInMiB>%d</sizeInMiB></memoryInfo>",
                      t[i].vcpus, t[i].vcpus, t[i].memory_mib);
        ec2_xml_bool(b, "instanceStorageSupported", t[i].ephemeral_gib > 0);
        if (t[i].ephemeral_gib > 0) {
            nb_buf_printf(b,
                          "<instanceStorageInfo><totalSizeInGB>%d</totalSizeInGB><disks><item>"
                          "<sizeInGB>%d</sizeInGB><count>1</count><type>ssd</type></item>"
                          "</disks></instanceStorageInfo>",
                          t[i].ephemeral_gib, t[i].ephemeral_gib);
        }
        ec2_xml_item_close(b);
    }
    ec2_xml_close(c->out, "instanceTypeSet");
    ec2_xml_text(c->out, "nextToken", next);
    return 0;
}

static int describe_images(struct ec2_call *c)
{
    const char **ids, **owners, **exec_by;
    size_t n_ids, n_owners, n_exec;
    struct gw_filter *filters;
    size_t n_filters;
    if (ec2_get_list(c, "ImageId", &ids, &n_ids) < 0 ||
        ec2_get_list(c, "Owner", &owners, &n_owners) < 0 ||
        ec2_get_list(c, "ExecutableBy", &exec_by, &n_exec) < 0 ||
        ec2_get_filters(c, &filters, &n_filters) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    struct gw_image *m;
    size_t n;
    if (gw_images_describe(c->gw, c->who, ids, n_ids, owners, n_owners, filters, n_filters,
                           c->arena, &m, &n, &c->err) < 0) {
        return -1;
    }
    ec2_xml_open(c->out, "imagesSet");
    for (size_t i = 0; i < n; i++) {
        struct nb_buf *b = c->out;
        ec2_xml_item_open(b);
        ec2_xml_text(b, "imageId", m[i].id);
        nb_buf_puts(b, "<imageLocation>");
        ec2_xml_escape(b, m[i].owner_id);
        nb_buf_puts(b, "/");
        ec2_xml_escape(b, m[i].name);
        nb_buf_puts(b, "</imageLocation>");
        ec2_xml_text(b, "imageState", m[i].state);
        ec2_xml_text(b, "imageOwnerId", m[i].owner_id);
        ec2_xml_time_ms(b, "creationDate", m[i].created_ms);
        ec2_xml_bool(b, "isPublic", m[i].is_public);
        ec2_xml_text(b, "architecture", m[i].architecture);
        ec2_xml_text(b, "imageType", m[i].image_type);
        ec2_xml_text(b, "name", m[i].name);
        ec2_xml_text(b, "description", m[i].description);
        ec2_xml_text(b, "rootDeviceType", "instance-store");
        ec2_xml_text(b, "rootDeviceName", m[i].root_device_name);
        ec2_xml_empty(b, "blockDeviceMapping");
        ec2_xml_text(b, "virtualizationType", "hvm");
        ec2_xml_text(b, "hypervisor", "kvm");
        ec2_write_tags(b, m[i].tags, m[i].n_tags);
        ec2_xml_item_close(b);
    }
    ec2_xml_close(c->out, "imagesSet");
    return 0;
}

const struct ec2_action ec2_actions_catalog[] = {
    {"DescribeRegions", describe_regions, false, "RegionName.* Filter.* AllRegions"},
    {"DescribeAvailabilityZones", describe_zones, false,
     "ZoneName.* Filter.* AllAvailabilityZones"},
    {"DescribeInstanceTypes", describe_instance_types, false,
     "InstanceType.* Filter.* MaxResults NextToken"},
    {"DescribeImages", describe_images, false, "ImageId.* Owner.* ExecutableBy.* Filter.*"},
    {NULL, NULL, false, NULL},
};
