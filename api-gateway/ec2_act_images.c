/* EC2 actions over images that move no bytes: DescribeImages, DeregisterImage,
 * DescribeImageAttribute, ModifyImageAttribute, ResetImageAttribute and CopyImage. The rules live
 * in the service layer (svc_catalog.h, svc_image_meta.h); this file reads parameters and writes
 * XML. */
#include "ec2_act_images.h"

#include "ec2_api.h"
#include "ec2_params.h"
#include "ec2_xml.h"
#include "gateway.h"
#include "svc_catalog.h"
#include "svc_image_meta.h"

#include "nubo/arena.h"
#include "nubo/buf.h"
#include "nubo/id.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define GIB (1024LL * 1024 * 1024)

/* Writes "<stateReason>" for a failed image (see ec2_act_images.h). */
static void write_state_reason(struct nb_buf *b, const char *reason)
{
    const char *code = "Client.InvalidImage", *message = reason ? reason : "the image failed";
    char own_code[64];
    const char *colon = reason ? strstr(reason, ": ") : NULL;
    if (colon && (size_t)(colon - reason) < sizeof own_code &&
        (!strncmp(reason, "Client.", 7) || !strncmp(reason, "Server.", 7)) &&
        strspn(reason, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.") ==
            (size_t)(colon - reason)) {
        memcpy(own_code, reason, (size_t)(colon - reason));
        own_code[colon - reason] = '\0';
        code = own_code;
        message = colon + 2;
    }
    ec2_xml_open(b, "stateReason");
    ec2_xml_text(b, "code", code);
    ec2_xml_text(b, "message", message);
    ec2_xml_close(b, "stateReason");
}

void ec2_image_item(struct nb_buf *b, const struct gw_image *m, const char *region)
{
    ec2_xml_item_open(b);
    ec2_xml_text(b, "imageId", m->id);
    nb_buf_puts(b, "<imageLocation>");
    ec2_xml_escape(b, m->owner_id);
    nb_buf_puts(b, "/");
    ec2_xml_escape(b, m->name);
    nb_buf_puts(b, "</imageLocation>");
    ec2_xml_text(b, "imageState", m->state);
    ec2_xml_text(b, "imageOwnerId", m->owner_id);
    ec2_xml_time_ms(b, "creationDate", m->created_ms);
    ec2_xml_bool(b, "isPublic", m->is_public);
    ec2_xml_text(b, "architecture", m->architecture);
    ec2_xml_text(b, "imageType", m->image_type);
    ec2_xml_text(b, "kernelId", m->kernel_id);
    ec2_xml_text(b, "ramdiskId", m->ramdisk_id);
    ec2_xml_text(b, "name", m->name);
    ec2_xml_text(b, "description", m->description);
    ec2_xml_text(b, "rootDeviceType", "instance-store");
    ec2_xml_text(b, "rootDeviceName", m->root_device_name);
    if (m->virtual_size > 0) {
        ec2_xml_open(b, "blockDeviceMapping");
        ec2_xml_item_open(b);
        ec2_xml_text(b, "deviceName", m->root_device_name);
        ec2_xml_open(b, "ebs");
        ec2_xml_int(b, "volumeSize", (m->virtual_size + GIB - 1) / GIB);
        ec2_xml_bool(b, "deleteOnTermination", true);
        ec2_xml_close(b, "ebs");
        ec2_xml_item_close(b);
        ec2_xml_close(b, "blockDeviceMapping");
    } else {
        ec2_xml_empty(b, "blockDeviceMapping");
    }
    ec2_xml_text(b, "virtualizationType", "hvm");
    ec2_xml_text(b, "hypervisor", "kvm");
    if (m->state && !strcmp(m->state, "failed")) {
        write_state_reason(b, m->state_reason);
    }
    if (m->source_image_id) {
        ec2_xml_text(b, "sourceImageId", m->source_image_id);
        ec2_xml_text(b, "sourceImageRegion", region);
    }
    ec2_write_tags(b, m->tags, m->n_tags);
    ec2_xml_item_close(b);
}

void ec2_image_launch_perms(struct nb_buf *b, const struct gw_launch_perms *p)
{
    if (!p->is_public && p->n_tenant_ids == 0) {
        ec2_xml_empty(b, "launchPermission");
        return;
    }
    ec2_xml_open(b, "launchPermission");
    if (p->is_public) {
        ec2_xml_item_open(b);
        ec2_xml_text(b, "group", "all");
        ec2_xml_item_close(b);
    }
    for (size_t i = 0; i < p->n_tenant_ids; i++) {
        ec2_xml_item_open(b);
        ec2_xml_text(b, "userId", p->tenant_ids[i]);
        ec2_xml_item_close(b);
    }
    ec2_xml_close(b, "launchPermission");
}

static bool is_account_id(const char *s)
{
    size_t k = 0;
    while (isdigit((unsigned char)s[k])) {
        k++;
    }
    return k == 12 && !s[k];
}

static int describe_images(struct ec2_call *c)
{
    struct gw_image_query q = {0};
    const char **ids, **owners, **exec_by;
    struct gw_filter *filters;
    if (ec2_get_list(c, "ImageId", &ids, &q.n_ids) < 0 ||
        ec2_get_list(c, "Owner", &owners, &q.n_owners) < 0 ||
        ec2_get_list(c, "ExecutableBy", &exec_by, &q.n_exec_by) < 0 ||
        ec2_get_filters(c, &filters, &q.n_filters) < 0) {
        return -1;
    }
    q.ids = ids;
    q.owners = owners;
    q.exec_by = exec_by;
    q.filters = filters;
    for (size_t k = 0; k < q.n_exec_by; k++) {
        if (strcmp(exec_by[k], "self") && strcmp(exec_by[k], "all") && !is_account_id(exec_by[k])) {
            nb_error_set(&c->err, NB_ERR_INVALID,
                         "Invalid value '%.64s' for ExecutableBy: expecting self, all or a "
                         "12-digit account id",
                         exec_by[k]);
            nb_error_reason(&c->err, "InvalidUserID.Malformed");
            return -1;
        }
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    struct gw_image *m;
    size_t n;
    if (gw_images_list(c->gw, c->who, &q, c->arena, &m, &n, &c->err) < 0) {
        return -1;
    }
    ec2_xml_open(c->out, "imagesSet");
    for (size_t i = 0; i < n; i++) {
        ec2_image_item(c->out, &m[i], c->gw->region);
    }
    ec2_xml_close(c->out, "imagesSet");
    return 0;
}

/* Reads the required ImageId and checks its form. */
static int get_image_id(struct ec2_call *c, const char *name, const char **id)
{
    if (ec2_params_get_string(c->params, name, true, id, &c->err) < 0) {
        return -1;
    }
    return gw_image_check_id(*id, &c->err);
}

static void write_return_true(struct ec2_call *c)
{
    ec2_xml_bool(c->out, "return", true);
}

static int deregister_image(struct ec2_call *c)
{
    const char *id;
    if (get_image_id(c, "ImageId", &id) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    if (gw_image_deregister(c->gw, c->who, id, &c->err) < 0) {
        return -1;
    }
    write_return_true(c);
    return 0;
}

static int bad_attribute(struct ec2_call *c, const char *attr)
{
    nb_error_set(&c->err, NB_ERR_INVALID, "Value (%.64s) for parameter attribute is invalid", attr);
    nb_error_reason(&c->err, "InvalidParameterValue");
    return -1;
}

/* The one image 'id' the caller sees, into '*m'. */
static int get_one_image(struct ec2_call *c, const char *id, struct gw_image **m)
{
    const char *ids[] = {id};
    const struct gw_image_query q = {.ids = ids, .n_ids = 1};
    size_t n;
    return gw_images_list(c->gw, c->who, &q, c->arena, m, &n, &c->err);
}

/* Writes "<'tag'><value>'v'</value></'tag'>", or "<'tag'/>" when 'v' is NULL. */
static void write_value(struct nb_buf *b, const char *tag, const char *v)
{
    if (!v) {
        ec2_xml_empty(b, tag);
        return;
    }
    ec2_xml_open(b, tag);
    ec2_xml_text(b, "value", v);
    ec2_xml_close(b, tag);
}

static int describe_image_attribute(struct ec2_call *c)
{
    static const char *const known[] = {"description",      "kernel",       "ramdisk",
                                        "launchPermission", "productCodes", "blockDeviceMapping",
                                        "sriovNetSupport",  "bootMode"};
    const char *id, *attr;
    if (get_image_id(c, "ImageId", &id) < 0 ||
        ec2_params_get_string(c->params, "Attribute", true, &attr, &c->err) < 0) {
        return -1;
    }
    bool ok = false;
    for (size_t k = 0; k < sizeof known / sizeof known[0] && !ok; k++) {
        ok = !strcmp(attr, known[k]);
    }
    if (!ok) {
        return bad_attribute(c, attr);
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    if (!strcmp(attr, "launchPermission")) {
        struct gw_launch_perms p;
        if (gw_image_launch_perms_get(c->gw, c->who, id, c->arena, &p, &c->err) < 0) {
            return -1;
        }
        ec2_xml_text(c->out, "imageId", id);
        ec2_image_launch_perms(c->out, &p);
        return 0;
    }
    struct gw_image *m;
    if (get_one_image(c, id, &m) < 0) {
        return -1;
    }
    ec2_xml_text(c->out, "imageId", id);
    if (!strcmp(attr, "description")) {
        write_value(c->out, "description", m->description);
    } else if (!strcmp(attr, "kernel")) {
        write_value(c->out, "kernel", m->kernel_id);
    } else if (!strcmp(attr, "ramdisk")) {
        write_value(c->out, "ramdisk", m->ramdisk_id);
    } else if (!strcmp(attr, "bootMode")) {
        write_value(c->out, "bootMode", "legacy-bios");
    } else {
        ec2_xml_empty(c->out, attr); /* productCodes, blockDeviceMapping, sriovNetSupport */
    }
    return 0;
}

/* A list of account ids being built, in the call's arena. */
struct id_list {
    const char **v;
    size_t n, cap;
};

static void id_list_add(struct ec2_call *c, struct id_list *l, const char *id)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        const char **v = nb_arena_alloc(c->arena, sizeof *v * cap);
        if (l->n) {
            memcpy(v, l->v, sizeof *v * l->n);
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = id;
}

/* Applies one group value ("all") of an add (add true) or remove to '*set_public'. */
static int apply_group(struct ec2_call *c, const char *group, bool add, int *set_public)
{
    if (strcmp(group, "all")) {
        nb_error_set(&c->err, NB_ERR_INVALID,
                     "Invalid attribute item value '%.64s' for group item type: only 'all'", group);
        nb_error_reason(&c->err, "InvalidAMIAttributeItemValue");
        return -1;
    }
    if (*set_public >= 0 && *set_public != add) {
        nb_error_set(&c->err, NB_ERR_INVALID,
                     "the group 'all' cannot be both added and removed in one request");
        nb_error_reason(&c->err, "InvalidParameterCombination");
        return -1;
    }
    *set_public = add;
    return 0;
}

/* Reads "LaunchPermission.Add.N.UserId|Group" and "LaunchPermission.Remove.N.UserId|Group". */
static int read_launch_permission(struct ec2_call *c, struct id_list *add, struct id_list *remove,
                                  int *set_public)
{
    for (size_t i = 0; i < ec2_params_count(c->params); i++) {
        const struct ec2_params_entry *e = ec2_params_at(c->params, i);
        if (strncmp(e->name, "LaunchPermission.", 17)) {
            continue;
        }
        const char *rest = e->name + 17;
        bool is_add = !strncmp(rest, "Add.", 4);
        if (!is_add && strncmp(rest, "Remove.", 7)) {
            goto unknown;
        }
        rest += is_add ? 4 : 7;
        char *end;
        unsigned long index = strtoul(rest, &end, 10);
        if (!isdigit((unsigned char)rest[0]) || index == 0 || rest[0] == '0' || *end != '.') {
            goto unknown;
        }
        if (!strcmp(end + 1, "UserId")) {
            id_list_add(c, is_add ? add : remove, e->value);
        } else if (!strcmp(end + 1, "Group")) {
            if (apply_group(c, e->value, is_add, set_public) < 0) {
                return -1;
            }
        } else {
            goto unknown;
        }
        continue;
    unknown:
        nb_error_set(&c->err, NB_ERR_INVALID, "The parameter %.255s is not recognized", e->name);
        nb_error_reason(&c->err, "UnknownParameter");
        return -1;
    }
    return 0;
}

/* The older form: Attribute=launchPermission OperationType=add|remove UserId.N UserGroup.N. */
static int read_operation_type(struct ec2_call *c, struct id_list *add, struct id_list *remove,
                               int *set_public)
{
    const char **users, **groups, *op = NULL;
    size_t n_users, n_groups;
    if (ec2_get_list(c, "UserId", &users, &n_users) < 0 ||
        ec2_get_list(c, "UserGroup", &groups, &n_groups) < 0 ||
        ec2_params_get_string(c->params, "OperationType", n_users + n_groups > 0, &op, &c->err) <
            0) {
        return -1;
    }
    if (!op) {
        return 0;
    }
    bool is_add = !strcmp(op, "add");
    if (!is_add && strcmp(op, "remove")) {
        nb_error_set(&c->err, NB_ERR_INVALID,
                     "Value (%.64s) for parameter OperationType is invalid: add or remove", op);
        nb_error_reason(&c->err, "InvalidParameterValue");
        return -1;
    }
    for (size_t k = 0; k < n_users; k++) {
        id_list_add(c, is_add ? add : remove, users[k]);
    }
    for (size_t k = 0; k < n_groups; k++) {
        if (apply_group(c, groups[k], is_add, set_public) < 0) {
            return -1;
        }
    }
    return 0;
}

static int modify_image_attribute(struct ec2_call *c)
{
    const char *id, *attr = NULL, *desc = NULL, *value = NULL;
    if (get_image_id(c, "ImageId", &id) < 0 ||
        ec2_params_get_string(c->params, "Attribute", false, &attr, &c->err) < 0 ||
        ec2_params_get_string(c->params, "Description.Value", false, &desc, &c->err) < 0 ||
        ec2_params_get_string(c->params, "Value", false, &value, &c->err) < 0) {
        return -1;
    }
    if (attr && strcmp(attr, "description") && strcmp(attr, "launchPermission")) {
        return bad_attribute(c, attr);
    }
    if (value && !(attr && !strcmp(attr, "description"))) {
        nb_error_set(&c->err, NB_ERR_INVALID, "Value needs Attribute=description");
        nb_error_reason(&c->err, "InvalidParameterCombination");
        return -1;
    }
    if (value && desc) {
        nb_error_set(&c->err, NB_ERR_INVALID, "give Description.Value or Value, not both");
        nb_error_reason(&c->err, "InvalidParameterCombination");
        return -1;
    }
    desc = desc ? desc : value;
    struct id_list add = {0}, remove = {0};
    int set_public = -1;
    if (read_launch_permission(c, &add, &remove, &set_public) < 0 ||
        read_operation_type(c, &add, &remove, &set_public) < 0) {
        return -1;
    }
    bool perms = add.n || remove.n || set_public >= 0;
    if (desc && perms) {
        nb_error_set(&c->err, NB_ERR_INVALID,
                     "a description and launch permissions cannot be modified in one request");
        nb_error_reason(&c->err, "InvalidParameterCombination");
        return -1;
    }
    if ((attr && !strcmp(attr, "description") && perms) ||
        (attr && !strcmp(attr, "launchPermission") && desc)) {
        nb_error_set(&c->err, NB_ERR_INVALID, "the parameters do not match Attribute=%s", attr);
        nb_error_reason(&c->err, "InvalidParameterCombination");
        return -1;
    }
    if (!desc && !perms) {
        nb_error_set(&c->err, NB_ERR_MISSING,
                     "nothing to modify: give Description.Value or LaunchPermission");
        nb_error_reason(&c->err, "MissingParameter");
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    const struct gw_launch_perm_change ch = {.add = add.v,
                                             .n_add = add.n,
                                             .remove = remove.v,
                                             .n_remove = remove.n,
                                             .set_public = set_public};
    if (desc ? gw_image_set_description(c->gw, c->who, id, desc, &c->err) < 0
             : gw_image_launch_perms_modify(c->gw, c->who, id, &ch, &c->err) < 0) {
        return -1;
    }
    write_return_true(c);
    return 0;
}

static int reset_image_attribute(struct ec2_call *c)
{
    const char *id, *attr;
    if (get_image_id(c, "ImageId", &id) < 0 ||
        ec2_params_get_string(c->params, "Attribute", true, &attr, &c->err) < 0) {
        return -1;
    }
    if (strcmp(attr, "launchPermission")) {
        return bad_attribute(c, attr);
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    const struct gw_launch_perm_change ch = {.reset = true, .set_public = -1};
    if (gw_image_launch_perms_modify(c->gw, c->who, id, &ch, &c->err) < 0) {
        return -1;
    }
    write_return_true(c);
    return 0;
}

static int copy_image(struct ec2_call *c)
{
    struct gw_image_copy_request rq = {.client_token = c->client_token};
    const char *region;
    bool encrypted = false;
    struct gw_tag *tags;
    if (get_image_id(c, "SourceImageId", &rq.source_image_id) < 0 ||
        ec2_params_get_string(c->params, "SourceRegion", true, &region, &c->err) < 0 ||
        ec2_params_get_string(c->params, "Name", true, &rq.name, &c->err) < 0 ||
        ec2_params_get_string(c->params, "Description", false, &rq.description, &c->err) < 0 ||
        ec2_params_get_bool(c->params, "Encrypted", false, &encrypted, &c->err) < 0 ||
        ec2_get_tag_specs(c, "image", &tags, &rq.n_tags) < 0) {
        return -1;
    }
    rq.tags = tags;
    if (strcmp(region, c->gw->region)) {
        nb_error_set(&c->err, NB_ERR_INVALID,
                     "Invalid value '%.64s' for SourceRegion: this endpoint copies images within "
                     "region %s only",
                     region, c->gw->region);
        nb_error_reason(&c->err, "InvalidParameterValue");
        return -1;
    }
    if (encrypted) {
        nb_error_set(&c->err, NB_ERR_INVALID, "encrypted image copies are not supported");
        nb_error_reason(&c->err, "InvalidParameterValue");
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    char id[NB_ID_MAX];
    if (gw_image_copy(c->gw, c->who, &rq, id, &c->err) < 0) {
        return -1;
    }
    ec2_xml_text(c->out, "imageId", id);
    return 0;
}

const struct ec2_action ec2_actions_images[] = {
    {"DescribeImages", describe_images, false, "ImageId.* Owner.* ExecutableBy.* Filter.*"},
    {"DeregisterImage", deregister_image, true, "ImageId"},
    {"DescribeImageAttribute", describe_image_attribute, false, "ImageId Attribute"},
    {"ModifyImageAttribute", modify_image_attribute, true,
     "ImageId Attribute Description.Value Value LaunchPermission.* OperationType UserId.* "
     "UserGroup.*"},
    {"ResetImageAttribute", reset_image_attribute, true, "ImageId Attribute"},
    {"CopyImage", copy_image, true,
     "SourceImageId SourceRegion Name Description Encrypted TagSpecification.*"},
    {NULL, NULL, false, NULL},
};
