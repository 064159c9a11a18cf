/* EC2 image import and export tasks: ImportImage, DescribeImportImageTasks, ExportImage,
 * DescribeExportImageTasks (svc_images.h does the work, nubo-imaged runs the tasks).
 *
 * nubo has no S3. ImportImage takes the disk from DiskContainer.1.Url, an http(s) URL that
 * nubo-imaged fetches (only from the prefixes the operator allows, images.import_url_prefixes;
 * tenants otherwise upload with PUT /v1/images/{id}/file). ExportImage writes an OVA (OVF, VMDK,
 * manifest) into the image store instead of a bucket: S3ExportLocation is accepted and echoed,
 * and the task's status message says where to download it (GET /v1/images/{id}/export.ova). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ec2_api.h"
#include "ec2_params.h"
#include "ec2_xml.h"
#include "gateway.h"
#include "nubo/arena.h"
#include "nubo/buf.h"
#include "nubo/error.h"
#include "nubo/id.h"
#include "svc_images.h"

/* EC2's task states: a nubo task that failed is "deleted", with the reason in statusMessage. */
static const char *ec2_task_status(const char *state)
{
    if (!strcmp(state, "completed")) {
        return "completed";
    }
    return !strcmp(state, "failed") ? "deleted" : "active";
}

static int import_image(struct ec2_call *c)
{
    const char *format = NULL, *url = NULL, *bucket = NULL, *description = NULL;
    if (ec2_params_get_string(c->params, "Description", false, &description, &c->err) < 0 ||
        ec2_params_get_string(c->params, "DiskContainer.1.Format", true, &format, &c->err) < 0 ||
        ec2_params_get_string(c->params, "DiskContainer.1.Url", false, &url, &c->err) < 0 ||
        ec2_params_get_string(c->params, "DiskContainer.1.UserBucket.S3Bucket", false, &bucket,
                              &c->err) < 0) {
        return -1;
    }
    if (ec2_params_get(c->params, "DiskContainer.2.Format") ||
        ec2_params_get(c->params, "DiskContainer.2.Url")) {
        nb_error_set(&c->err, NB_ERR_INVALID, "nubo imports one disk per image");
        nb_error_reason(&c->err, "InvalidParameterValue");
        return -1;
    }
    if (!url) {
        nb_error_set(&c->err, NB_ERR_MISSING,
                     "%s: give DiskContainer.1.Url (http or https), or upload the image with "
                     "PUT /v1/images/{id}/file",
                     bucket ? "nubo has no S3 buckets" : "the disk has no URL");
        nb_error_reason(&c->err, "MissingParameter");
        return -1;
    }
    static const char *const formats[] = {"raw", "qcow2", "vhd", "vmdk", "ova"};
    const char *fmt = NULL;
    for (size_t i = 0; i < sizeof formats / sizeof *formats && !fmt; i++) {
        fmt = !strcasecmp(format, formats[i]) ? formats[i] : NULL;
    }
    if (!fmt) {
        nb_error_set(&c->err, NB_ERR_INVALID,
                     "Value (%.32s) for parameter DiskContainer.1.Format is invalid: use RAW, "
                     "VHD, VMDK, OVA or QCOW2",
                     format);
        nb_error_reason(&c->err, "InvalidParameterValue");
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    char image[NB_ID_MAX + 16], task[NB_ID_MAX + 16];
    if (gw_image_import_url(c->gw, c->who, fmt, url, description, image, task, &c->err) < 0) {
        return -1;
    }
    if (description) {
        ec2_xml_text(c->out, "description", description);
    }
    ec2_xml_text(c->out, "importTaskId", task);
    ec2_xml_text(c->out, "progress", "0");
    ec2_xml_text(c->out, "status", "active");
    ec2_xml_text(c->out, "statusMessage", "pending");
    return 0;
}

static int describe_tasks(struct ec2_call *c, const char *kind, const char *id_param,
                          const char *set_tag, const char *id_tag)
{
    const char **ids;
    size_t n_ids, n;
    struct gw_image_task *t;
    if (ec2_params_get_list(c->params, c->arena, id_param, &ids, &n_ids, &c->err) < 0 ||
        gw_image_tasks_list(c->gw, c->who, kind, ids, n_ids, c->arena, &t, &n, &c->err) < 0) {
        return -1;
    }
    ec2_xml_open(c->out, set_tag);
    for (size_t i = 0; i < n; i++) {
        char progress[16], where[160];
        snprintf(progress, sizeof progress, "%d", t[i].progress);
        ec2_xml_item_open(c->out);
        ec2_xml_text(c->out, id_tag, t[i].id);
        ec2_xml_text(c->out, "imageId", t[i].image_id);
        if (t[i].description && *t[i].description) {
            ec2_xml_text(c->out, "description", t[i].description);
        }
        const char *status = ec2_task_status(t[i].state);
        bool completed = !strcmp(t[i].state, "completed");
        if (!completed) {
            ec2_xml_text(c->out, "progress", progress);
        }
        ec2_xml_text(c->out, "status", status);
        const char *message = t[i].status_message;
        if (!strcmp(kind, "export") && completed) {
            snprintf(where, sizeof where, "download: GET /v1/images/%s/export.ova", t[i].image_id);
            message = where;
            ec2_xml_text(c->out, "diskImageFormat", "vmdk");
        }
        if (message && *message) {
            ec2_xml_text(c->out, "statusMessage", message);
        }
        ec2_xml_item_close(c->out);
    }
    ec2_xml_close(c->out, set_tag);
    return 0;
}

static int describe_import_image_tasks(struct ec2_call *c)
{
    return describe_tasks(c, "import", "ImportTaskId", "importImageTaskSet", "importTaskId");
}

static int describe_export_image_tasks(struct ec2_call *c)
{
    return describe_tasks(c, "export", "ExportImageTaskId", "exportImageTaskSet",
                          "exportImageTaskId");
}

static int export_image(struct ec2_call *c)
{
    const char *image_id, *format, *bucket = NULL, *prefix = NULL, *description = NULL;
    if (ec2_params_get_string(c->params, "ImageId", true, &image_id, &c->err) < 0 ||
        ec2_params_get_string(c->params, "DiskImageFormat", true, &format, &c->err) < 0 ||
        ec2_params_get_string(c->params, "S3ExportLocation.S3Bucket", false, &bucket, &c->err) <
            0 ||
        ec2_params_get_string(c->params, "S3ExportLocation.S3Prefix", false, &prefix, &c->err) <
            0 ||
        ec2_params_get_string(c->params, "Description", false, &description, &c->err) < 0) {
        return -1;
    }
    if (strcasecmp(format, "vmdk") != 0) {
        nb_error_set(&c->err, NB_ERR_INVALID,
                     "Value (%.32s) for parameter DiskImageFormat is invalid: nubo exports VMDK "
                     "(in an OVA)",
                     format);
        nb_error_reason(&c->err, "InvalidParameterValue");
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    char task[NB_ID_MAX + 16];
    if (gw_image_export(c->gw, c->who, image_id, task, &c->err) < 0) {
        return -1;
    }
    if (description) {
        ec2_xml_text(c->out, "description", description);
    }
    ec2_xml_text(c->out, "diskImageFormat", "vmdk");
    ec2_xml_text(c->out, "exportImageTaskId", task);
    ec2_xml_text(c->out, "imageId", image_id);
    ec2_xml_text(c->out, "progress", "0");
    if (bucket) {
        ec2_xml_open(c->out, "s3ExportLocation");
        ec2_xml_text(c->out, "s3Bucket", bucket);
        if (prefix) {
            ec2_xml_text(c->out, "s3Prefix", prefix);
        }
        ec2_xml_close(c->out, "s3ExportLocation");
    }
    ec2_xml_text(c->out, "status", "active");
    ec2_xml_text(c->out, "statusMessage", "pending");
    return 0;
}

const struct ec2_action ec2_actions_image_tasks[] = {
    {"ImportImage", import_image, true,
     "Description DiskContainer.* Architecture Platform LicenseType RoleName Hypervisor "
     "BootMode"},
    {"DescribeImportImageTasks", describe_import_image_tasks, false,
     "ImportTaskId.* MaxResults NextToken"},
    {"ExportImage", export_image, true,
     "ImageId DiskImageFormat S3ExportLocation.* Description RoleName"},
    {"DescribeExportImageTasks", describe_export_image_tasks, false,
     "ExportImageTaskId.* MaxResults NextToken"},
    {NULL, NULL, false, NULL},
};
