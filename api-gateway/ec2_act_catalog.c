/* EC2 actions over the catalogue: DescribeRegions, DescribeAvailabilityZones,
 * DescribeInstanceTypes (DescribeImages is in ec2_act_images.c). */
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

const struct ec2_action ec2_actions_catalog[] = {
    {"DescribeRegions", describe_regions, false, "RegionName.* Filter.* AllRegions"},
    {"DescribeAvailabilityZones", describe_zones, false,
     "ZoneName.* Filter.* AllAvailabilityZones"},
    {"DescribeInstanceTypes", describe_instance_types, false,
     "InstanceType.* Filter.* MaxResults NextToken"},
    {NULL, NULL, false, NULL},
};
