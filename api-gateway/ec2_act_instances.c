/* EC2 actions over instances: RunInstances, DescribeInstances, DescribeInstanceStatus,
 * TerminateInstances, StopInstances, StartInstances, RebootInstances, GetConsoleOutput,
 * CreateImage. */
#include "ec2_act_network.h"
#include "ec2_api.h"
#include "ec2_params.h"
#include "ec2_xml.h"
#include "gateway.h"
#include "svc_hosts.h"
#include "svc_instances.h"

#include "nubo/arena.h"
#include "nubo/buf.h"
#include "nubo/crypto.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static void write_state(struct nb_buf *b, const char *tag, int code, const char *name)
{
    nb_buf_printf(b, "<%s><code>%d</code><name>%s</name></%s>", tag, code, name, tag);
}

static void write_instance(struct nb_buf *b, const struct gw_instance *in)
{
    ec2_xml_item_open(b);
    ec2_xml_text(b, "instanceId", in->id);
    ec2_xml_text(b, "imageId", in->image_id);
    write_state(b, "instanceState", in->state_code, in->state);
    ec2_xml_empty(b, "privateDnsName");
    ec2_xml_empty(b, "dnsName");
    ec2_xml_text(b, "reason", in->reason_message);
    ec2_xml_text(b, "keyName", in->key_name);
    ec2_xml_int(b, "amiLaunchIndex", in->launch_index);
    ec2_xml_empty(b, "productCodes");
    ec2_xml_text(b, "instanceType", in->instance_type);
    ec2_xml_time_ms(b, "launchTime", in->launch_time_ms);
    nb_buf_puts(b, "<placement>");
    ec2_xml_text(b, "availabilityZone", in->zone);
    if (in->placement_group) {
        ec2_xml_text(b, "groupName", in->placement_group);
    } else {
        ec2_xml_empty(b, "groupName");
    }
    if (in->partition_number) {
        ec2_xml_int(b, "partitionNumber", in->partition_number);
    }
    ec2_xml_text(b, "tenancy", in->tenancy ? in->tenancy : "default");
    nb_buf_puts(b, "</placement><monitoring><state>disabled</state></monitoring>");
    ec2_instance_network(b, in);
    ec2_xml_text(b, "ipAddress", in->public_ip); /* its elastic IP, if any */
    if (in->reason_code) {
        nb_buf_puts(b, "<stateReason>");
        ec2_xml_text(b, "code", in->reason_code);
        ec2_xml_text(b, "message", in->reason_message);
        nb_buf_puts(b, "</stateReason>");
    }
    nb_buf_puts(b, "<architecture>x86_64</architecture><rootDeviceType>instance-store"
                   "</rootDeviceType><rootDeviceName>/dev/vda</rootDeviceName>"
                   "<blockDeviceMapping/><virtualizationType>hvm</virtualizationType>"
                   "<hypervisor>kvm</hypervisor>");
    ec2_write_tags(b, in->tags, in->n_tags);
    nb_buf_printf(b,
                  "<cpuOptions><coreCount>%d</coreCount><threadsPerCore>1</threadsPerCore>"
                  "</cpuOptions>",
                  in->vcpus);
    ec2_xml_item_close(b);
}

/* Writes instances grouped by reservation; the list is ordered by reservation. */
static void write_reservations(struct nb_buf *b, const struct gw_instance_list *l)
{
    ec2_xml_open(b, "reservationSet");
    for (size_t i = 0; i < l->n; i++) {
        if (i == 0 || strcmp(l->items[i].reservation_id, l->items[i - 1].reservation_id)) {
            if (i) {
                nb_buf_puts(b, "</instancesSet></item>");
            }
            ec2_xml_item_open(b);
            ec2_xml_text(b, "reservationId", l->items[i].reservation_id);
            ec2_xml_text(b, "ownerId", l->items[i].owner_id);
            nb_buf_puts(b, "<groupSet/><instancesSet>");
        }
        write_instance(b, &l->items[i]);
    }
    if (l->n) {
        nb_buf_puts(b, "</instancesSet></item>");
    }
    ec2_xml_close(b, "reservationSet");
}

static int run_instances(struct ec2_call *c)
{
    struct gw_run_request rq = {.client_token = c->client_token};
    long long min_count, max_count, partition = 0;
    struct gw_tag *tags;
    const char **group_ids, **group_names;
    size_t n_names;
    if (ec2_params_get_string(c->params, "ImageId", true, &rq.image_id, &c->err) < 0 ||
        ec2_params_get_int(c->params, "MinCount", true, 1, 1000, &min_count, &c->err) < 0 ||
        ec2_params_get_int(c->params, "MaxCount", true, 1, 1000, &max_count, &c->err) < 0 ||
        ec2_params_get_string(c->params, "InstanceType", false, &rq.instance_type, &c->err) < 0 ||
        ec2_params_get_string(c->params, "KeyName", false, &rq.key_name, &c->err) < 0 ||
        ec2_params_get_string(c->params, "Placement.AvailabilityZone", false, &rq.zone, &c->err) <
            0 ||
        ec2_params_get_string(c->params, "UserData", false, &rq.user_data, &c->err) < 0 ||
        ec2_params_get_string(c->params, "Placement.GroupName", false, &rq.placement_group,
                              &c->err) < 0 ||
        ec2_params_get_int(c->params, "Placement.PartitionNumber", false, 1, 7, &partition,
                           &c->err) < 0 ||
        ec2_params_get_string(c->params, "Placement.Tenancy", false, &rq.tenancy, &c->err) < 0 ||
        ec2_get_tag_specs(c, "instance", &tags, &rq.n_tags) < 0 ||
        ec2_params_get_string(c->params, "SubnetId", false, &rq.subnet_id, &c->err) < 0 ||
        ec2_params_get_string(c->params, "PrivateIpAddress", false, &rq.private_ip, &c->err) < 0 ||
        ec2_get_list(c, "SecurityGroupId", &group_ids, &rq.n_group_ids) < 0 ||
        ec2_get_list(c, "SecurityGroup", &group_names, &n_names) < 0) {
        return -1;
    }
    if (n_names) {
        nb_error_set(&c->err, NB_ERR_INVALID,
                     "The parameter groupName cannot be used: nubo has no default VPC, name "
                     "the groups with SecurityGroupId");
        nb_error_reason(&c->err, "InvalidParameterCombination");
        return -1;
    }
    rq.group_ids = group_ids;
    rq.partition_number = (int)partition;
    rq.tags = tags;
    rq.min_count = (int)min_count;
    rq.max_count = (int)max_count;
    if (rq.min_count > rq.max_count) {
        nb_error_set(&c->err, NB_ERR_INVALID, "MinCount (%d) must not exceed MaxCount (%d)",
                     rq.min_count, rq.max_count);
        nb_error_reason(&c->err, "InvalidParameterValue");
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    struct gw_instance_list l;
    if (gw_instances_run(c->gw, c->who, &rq, c->arena, &l, &c->err) < 0) {
        return -1;
    }
    ec2_xml_text(c->out, "reservationId", l.n ? l.items[0].reservation_id : "");
    ec2_xml_text(c->out, "ownerId", c->who->tenant_id);
    ec2_xml_empty(c->out, "groupSet");
    ec2_xml_open(c->out, "instancesSet");
    for (size_t i = 0; i < l.n; i++) {
        write_instance(c->out, &l.items[i]);
    }
    ec2_xml_close(c->out, "instancesSet");
    return 0;
}

/* Reads InstanceId.N, Filter.N and paging, which DescribeInstances and DescribeInstanceStatus
 * share. EC2 refuses MaxResults together with instance ids. */
static int describe_args(struct ec2_call *c, const char ***ids, size_t *n_ids,
                         struct gw_filter **filters, size_t *n_filters, struct gw_page *page)
{
    if (ec2_get_list(c, "InstanceId", ids, n_ids) < 0 ||
        ec2_get_filters(c, filters, n_filters) < 0 || ec2_get_page(c, 5, 1000, page) < 0) {
        return -1;
    }
    if (*n_ids && (page->max_results || page->next_token)) {
        nb_error_set(&c->err, NB_ERR_INVALID,
                     "The parameter instancesSet cannot be used with the parameter maxResults");
        nb_error_reason(&c->err, "InvalidParameterCombination");
        return -1;
    }
    return 0;
}

static int describe_instances(struct ec2_call *c)
{
    const char **ids;
    size_t n_ids, n_filters;
    struct gw_filter *filters;
    struct gw_page page;
    if (describe_args(c, &ids, &n_ids, &filters, &n_filters, &page) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    struct gw_instance_list l;
    if (gw_instances_describe(c->gw, c->who, ids, n_ids, filters, n_filters, &page, c->arena, &l,
                              &c->err) < 0) {
        return -1;
    }
    write_reservations(c->out, &l);
    ec2_xml_text(c->out, "nextToken", l.next_token);
    return 0;
}

static int describe_instance_status(struct ec2_call *c)
{
    const char **ids;
    size_t n_ids, n_filters;
    struct gw_filter *filters;
    struct gw_page page;
    bool all = false;
    if (describe_args(c, &ids, &n_ids, &filters, &n_filters, &page) < 0 ||
        ec2_params_get_bool(c->params, "IncludeAllInstances", false, &all, &c->err) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    /* Without IncludeAllInstances only running instances are shown, as on EC2. */
    struct gw_filter *f = filters;
    if (!all) {
        static const char *const running[] = {"running"};
        f = nb_arena_zalloc(c->arena, sizeof *f * (n_filters + 1));
        memcpy(f, filters, sizeof *f * n_filters);
        f[n_filters++] = (struct gw_filter){"instance-state-name", running, 1};
    }
    struct gw_instance_list l;
    if (gw_instances_describe(c->gw, c->who, ids, n_ids, f, n_filters, &page, c->arena, &l,
                              &c->err) < 0) {
        return -1;
    }
    ec2_xml_open(c->out, "instanceStatusSet");
    for (size_t i = 0; i < l.n; i++) {
        const struct gw_instance *in = &l.items[i];
        bool running = !strcmp(in->state, "running");
        const char *status = running ? "ok" : "not-applicable";
        ec2_xml_item_open(c->out);
        ec2_xml_text(c->out, "instanceId", in->id);
        ec2_xml_text(c->out, "availabilityZone", in->zone);
        write_state(c->out, "instanceState", in->state_code, in->state);
        nb_buf_printf(c->out,
                      "<systemStatus><status>%s</status><details><item><name>reachability</name>"
                      "<status>%s</status></item></details></systemStatus>"
                      "<instanceStatus><status>%s</status><details><item><name>reachability"
                      "</name><status>%s</status></item></details></instanceStatus>",
                      status, running ? "passed" : "not-applicable", status,
                      running ? "passed" : "not-applicable");
        ec2_xml_item_close(c->out);
    }
    ec2_xml_close(c->out, "instanceStatusSet");
    ec2_xml_text(c->out, "nextToken", l.next_token);
    return 0;
}

static int change_state(struct ec2_call *c, enum gw_instance_op op)
{
    const char **ids;
    size_t n_ids;
    if (ec2_get_list(c, "InstanceId", &ids, &n_ids) < 0) {
        return -1;
    }
    if (!n_ids) {
        nb_error_set(&c->err, NB_ERR_MISSING,
                     "The request must contain the parameter InstanceId.1");
        nb_error_reason(&c->err, "MissingParameter");
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    struct gw_state_change *ch;
    if (gw_instances_change(c->gw, c->who, op, ids, n_ids, c->arena, &ch, &c->err) < 0) {
        return -1;
    }
    if (op == GW_OP_REBOOT) {
        ec2_xml_bool(c->out, "return", true);
        return 0;
    }
    ec2_xml_open(c->out, "instancesSet");
    for (size_t i = 0; i < n_ids; i++) {
        ec2_xml_item_open(c->out);
        ec2_xml_text(c->out, "instanceId", ch[i].id);
        write_state(c->out, "currentState", ch[i].current_code, ch[i].current_state);
        write_state(c->out, "previousState", ch[i].previous_code, ch[i].previous_state);
        ec2_xml_item_close(c->out);
    }
    ec2_xml_close(c->out, "instancesSet");
    return 0;
}

/* The tail of the instance's serial console, base64 as EC2 returns it (up to 64 KiB). */
static int get_console_output(struct ec2_call *c)
{
    const char *id;
    bool latest = false;
    if (ec2_params_get_string(c->params, "InstanceId", true, &id, &c->err) < 0 ||
        ec2_params_get_bool(c->params, "Latest", false, &latest, &c->err) < 0) {
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    char *text;
    if (gw_instance_console(c->gw, c->who, id, &text, &c->err) < 0) {
        return -1;
    }
    char *b64 = nb_base64_encode(text, strlen(text));
    free(text);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    ec2_xml_text(c->out, "instanceId", id);
    ec2_xml_time_ms(c->out, "timestamp", (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
    ec2_xml_text(c->out, "output", b64);
    free(b64);
    return 0;
}

/* CreateImage: the instance's root disk as a new private image (see gw_instance_create_image()).
 * NoReboot is accepted either way: the copy is crash-consistent, nubo does not reboot the
 * instance for it. */
static int create_image(struct ec2_call *c)
{
    const char *id, *name, *description = NULL;
    bool no_reboot = false;
    if (ec2_params_get_string(c->params, "InstanceId", true, &id, &c->err) < 0 ||
        ec2_params_get_string(c->params, "Name", true, &name, &c->err) < 0 ||
        ec2_params_get_string(c->params, "Description", false, &description, &c->err) < 0 ||
        ec2_params_get_bool(c->params, "NoReboot", false, &no_reboot, &c->err) < 0) {
        return -1;
    }
    if (strlen(name) < 3 || strlen(name) > 128) {
        nb_error_set(&c->err, NB_ERR_INVALID,
                     "Invalid value for Name: an image name has 3 to 128 characters");
        nb_error_reason(&c->err, "InvalidAMIName.Malformed");
        return -1;
    }
    if (c->dry_run) {
        return ec2_dry_run(c);
    }
    char image_id[32];
    if (gw_instance_create_image(c->gw, c->who, id, name, description, image_id, &c->err) < 0) {
        return -1;
    }
    ec2_xml_text(c->out, "imageId", image_id);
    return 0;
}

static int terminate_instances(struct ec2_call *c)
{
    return change_state(c, GW_OP_TERMINATE);
}

static int stop_instances(struct ec2_call *c)
{
    return change_state(c, GW_OP_STOP);
}

static int start_instances(struct ec2_call *c)
{
    return change_state(c, GW_OP_START);
}

static int reboot_instances(struct ec2_call *c)
{
    return change_state(c, GW_OP_REBOOT);
}

const struct ec2_action ec2_actions_instances[] = {
    {"RunInstances", run_instances, true,
     "ImageId MinCount MaxCount InstanceType KeyName Placement.AvailabilityZone UserData "
     "Placement.GroupName Placement.PartitionNumber Placement.Tenancy "
     "TagSpecification.* SubnetId PrivateIpAddress SecurityGroupId.* SecurityGroup.*"},
    {"DescribeInstances", describe_instances, false, "InstanceId.* Filter.* MaxResults NextToken"},
    {"DescribeInstanceStatus", describe_instance_status, false,
     "InstanceId.* Filter.* MaxResults NextToken IncludeAllInstances"},
    {"TerminateInstances", terminate_instances, true, "InstanceId.*"},
    {"StopInstances", stop_instances, true, "InstanceId.* Force"},
    {"StartInstances", start_instances, true, "InstanceId.*"},
    {"RebootInstances", reboot_instances, true, "InstanceId.*"},
    {"GetConsoleOutput", get_console_output, false, "InstanceId Latest"},
    {"CreateImage", create_image, true, "InstanceId Name Description NoReboot"},
    {NULL, NULL, false, NULL},
};
