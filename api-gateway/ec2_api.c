/* The EC2 Query API front door and its dispatcher (see ec2_api.h). */
#include "ec2_api.h"

#include "ec2_params.h"
#include "ec2_xml.h"
#include "gateway.h"
#include "reqlog.h"
#include "svc.h"

#include "nubo/arena.h"
#include "nubo/buf.h"
#include "nubo/http.h"
#include "nubo/id.h"
#include "nubo/log.h"
#include "nubo/metrics.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

static const struct ec2_action *const action_tables[] = {
    ec2_actions_catalog,      ec2_actions_instances, ec2_actions_keypairs,    ec2_actions_tags,
    ec2_actions_placement,    ec2_actions_images,    ec2_actions_image_tasks, ec2_actions_network,
    ec2_actions_network_edge, ec2_actions_vpn,
};

static const struct ec2_action *find_action(const char *name)
{
    for (size_t t = 0; t < sizeof action_tables / sizeof action_tables[0]; t++) {
        for (const struct ec2_action *a = action_tables[t]; a->name; a++) {
            if (!strcmp(a->name, name)) {
                return a;
            }
        }
    }
    return NULL;
}

int ec2_dry_run(struct ec2_call *c)
{
    nb_error_set(&c->err, NB_ERR_CONFLICT, "Request would have succeeded, but DryRun flag is set.");
    nb_error_reason(&c->err, "DryRunOperation");
    return -1;
}

int ec2_get_list(struct ec2_call *c, const char *prefix, const char ***out, size_t *n)
{
    return ec2_params_get_list(c->params, c->arena, prefix, out, n, &c->err);
}

int ec2_get_filters(struct ec2_call *c, struct gw_filter **out, size_t *n)
{
    struct ec2_params_filter *f;
    if (ec2_params_get_filters(c->params, c->arena, &f, n, &c->err) < 0) {
        return -1;
    }
    *out = nb_arena_zalloc(c->arena, sizeof **out * (*n ? *n : 1));
    for (size_t i = 0; i < *n; i++) {
        if (f[i].n_values == 0) {
            nb_error_set(&c->err, NB_ERR_INVALID, "The filter '%s' must have at least one value",
                         f[i].name);
            nb_error_reason(&c->err, "InvalidParameterValue");
            return -1;
        }
        (*out)[i].name = f[i].name;
        (*out)[i].values = f[i].values;
        (*out)[i].n_values = f[i].n_values;
    }
    return 0;
}

int ec2_get_tag_specs(struct ec2_call *c, const char *resource_type, struct gw_tag **tags,
                      size_t *n_tags)
{
    struct ec2_params_tag_spec *specs;
    size_t n_specs;
    if (ec2_params_get_tag_specs(c->params, c->arena, &specs, &n_specs, &c->err) < 0) {
        return -1;
    }
    size_t total = 0;
    for (size_t s = 0; s < n_specs; s++) {
        if (strcmp(specs[s].resource_type, resource_type)) {
            nb_error_set(&c->err, NB_ERR_INVALID,
                         "'%s' is not a valid taggable resource type for this operation",
                         specs[s].resource_type);
            nb_error_reason(&c->err, "InvalidParameterValue");
            return -1;
        }
        total += specs[s].n_tags;
    }
    *tags = nb_arena_zalloc(c->arena, sizeof **tags * (total ? total : 1));
    *n_tags = 0;
    for (size_t s = 0; s < n_specs; s++) {
        for (size_t t = 0; t < specs[s].n_tags; t++) {
            (*tags)[(*n_tags)++] = (struct gw_tag){specs[s].tags[t].key, specs[s].tags[t].value};
        }
    }
    return 0;
}

int ec2_get_page(struct ec2_call *c, int min, int max, struct gw_page *page)
{
    long long max_results;
    if (ec2_params_get_page(c->params, min, max, 0, &max_results, &page->next_token, &c->err) < 0) {
        return -1;
    }
    page->max_results = (int)max_results;
    return 0;
}

void ec2_write_tags(struct nb_buf *b, const struct gw_tag *tags, size_t n)
{
    if (n == 0) {
        return;
    }
    ec2_xml_open(b, "tagSet");
    for (size_t i = 0; i < n; i++) {
        ec2_xml_tag_item(b, tags[i].key, tags[i].value);
    }
    ec2_xml_close(b, "tagSet");
}

static int64_t now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* True if parameter 'name' is one the action 'a' reads, or one every action takes. */
static bool param_allowed(const struct ec2_action *a, const char *name)
{
    static const char *const common[] = {"Action", "Version", "DryRun", "ClientToken"};
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i++) {
        if (!strcmp(name, common[i])) {
            return true;
        }
    }
    if (!strncmp(name, "X-Amz-", 6)) {
        return true; /* a presigned request's signature, checked by the authenticator */
    }
    for (const char *p = a->params; p && *p;) {
        size_t len = strcspn(p, " ");
        if (len >= 2 && p[len - 1] == '*' && p[len - 2] == '.') {
            if (!strncmp(name, p, len - 1)) { /* "Prefix.*": the prefix and its dot */
                return true;
            }
        } else if (strlen(name) == len && !strncmp(name, p, len)) {
            return true;
        }
        p += len;
        p += strspn(p, " ");
    }
    return false;
}

/* Runs the action named by the parameters; leaves the response or the error document in 'out'
 * and returns the HTTP status. '*code' gets the EC2 error code, or NULL on success. */
static int dispatch(struct ec2_call *c, const struct ec2_params_common *common, const char **code)
{
    const struct ec2_action *a = find_action(common->action);
    if (!a) {
        nb_error_set(&c->err, NB_ERR_INVALID, "The action %s is not valid for this web service.",
                     common->action);
        nb_error_reason(&c->err, "InvalidAction");
        goto fail;
    }
    for (size_t i = 0; i < ec2_params_count(c->params); i++) {
        const char *name = ec2_params_at(c->params, i)->name;
        if (!param_allowed(a, name)) {
            nb_error_set(&c->err, NB_ERR_INVALID, "The parameter %.255s is not recognized", name);
            nb_error_reason(&c->err, "UnknownParameter");
            goto fail;
        }
    }
    /* Users of the 'desktop' role (VDI) may only use the REST API's desktop broker. */
    if (c->who->role == GW_ROLE_DESKTOP) {
        nb_error_set(&c->err, NB_ERR_FORBIDDEN,
                     "You are not authorized to perform this operation: users of the desktop "
                     "role may only use the desktop broker");
        nb_error_reason(&c->err, "UnauthorizedOperation");
        goto fail;
    }
    c->action = a->name;
    c->dry_run = common->dry_run;
    c->client_token = common->client_token;
    if (a->writes && gw_require_writer(c->who, &c->err) < 0) {
        goto fail;
    }
    ec2_xml_begin(c->out, a->name, c->request_id);
    if (a->fn(c) < 0) {
        goto fail;
    }
    ec2_xml_end(c->out, a->name);
    *code = NULL;
    return 200;

fail:
    nb_buf_reset(c->out);
    if (c->err.code == NB_ERR_INTERNAL || c->err.code == NB_ERR_DB || c->err.code == NB_ERR_IO ||
        c->err.code == NB_ERR_UNAVAILABLE || c->err.code == NB_ERR_TIMEOUT) {
        nb_err("%s failed: %s%s%s", common->action, c->err.msg, c->err.detail[0] ? "; " : "",
               c->err.detail);
    }
    int status = ec2_xml_error_from(c->out, &c->err, c->request_id);
    *code = c->err.reason[0] ? c->err.reason : ec2_xml_code(c->err.code);
    return status;
}

static bool is_form(const char *content_type)
{
    return content_type && !strncasecmp(content_type, "application/x-www-form-urlencoded", 33);
}

void ec2_api_handle(struct nb_http_req *req, void *arg)
{
    struct gw_ctx *gw = arg;
    int64_t t0 = now_us();
    struct nb_arena *arena = nb_http_req_arena(req);
    char request_id[40];
    nb_uuid_new(request_id, sizeof request_id);
    nb_log_set_request_id(request_id);

    struct nb_buf out = NB_BUF_INIT;
    struct gw_principal who;
    struct ec2_call c = {
        .gw = gw, .arena = arena, .who = &who, .request_id = request_id, .out = &out};
    const char *code = NULL;
    int status;

    size_t body_len = 0;
    const char *body = nb_http_req_body(req, &body_len);
    if (!is_form(nb_http_req_header(req, "Content-Type"))) {
        body_len = 0; /* only a form body carries parameters */
    }
    const char *query = nb_http_req_raw_query(req);
    struct nb_error perr = {0};
    c.params = ec2_params_parse(arena, query, strlen(query), body, body_len, &perr);
    struct ec2_params_common common = {0};
    if (c.params && ec2_params_get_common(c.params, &common, &perr) < 0) {
        c.params = NULL;
    }

    enum gw_auth_result ar = gw_auth_check(gw->auth, req, time(NULL), &who, &c.err);
    if (ar != GW_AUTH_OK) {
        code = gw_auth_ec2_code(ar);
        status = ec2_xml_status(code);
        if (ar == GW_AUTH_UNAVAILABLE) {
            nb_err("authentication unavailable: %s", c.err.msg);
            nb_error_set(&c.err, NB_ERR_UNAVAILABLE, "the service is unavailable, try again");
        }
        ec2_xml_error(&out, code, c.err.msg, request_id);
    } else if (!c.params) {
        status = ec2_xml_error_from(&out, &perr, request_id);
        code = perr.reason[0] ? perr.reason : ec2_xml_code(perr.code);
    } else {
        status = dispatch(&c, &common, &code);
    }

    /* The request log: committed before anything is acknowledged. */
    char *params_text = NULL;
    if (c.params) {
        json_t *pj = ec2_params_to_json(c.params, ec2_params_redact_default);
        params_text = json_dumps(pj, JSON_COMPACT);
        json_decref(pj);
    }
    struct gw_reqlog_record rec = {
        .request_id = request_id,
        .time_us = t0,
        .tenant_id = ar == GW_AUTH_OK ? who.tenant_id : NULL,
        .access_key_id = who.key_id[0] ? who.key_id : NULL,
        .action = common.action ? common.action : "(none)",
        .params_json = params_text,
        .http_status = status,
        .error_code = code,
        .latency_us = now_us() - t0,
        .source_addr = nb_http_req_remote_addr(req),
        .user_agent = nb_http_req_header(req, "User-Agent"),
        .api = GW_REQLOG_API_EC2,
    };
    struct nb_error lerr = {0};
    if (gw_reqlog_write(gw->reqlog, &rec, &lerr) < 0) {
        nb_err("could not record request: %s", lerr.msg);
        nb_counter_add(gw->m_log_failures, 1);
        nb_buf_reset(&out);
        code = "Unavailable";
        ec2_xml_error(&out, code,
                      "The request could not be recorded in the request log. If it changes "
                      "anything it may have taken effect: check, or retry with the same "
                      "ClientToken.",
                      request_id);
        status = ec2_xml_status(code);
    }
    free(params_text);

    nb_http_reply_header(req, "x-amzn-RequestId", request_id);
    size_t out_len = out.len;
    nb_http_reply_owned(req, status, "text/xml;charset=UTF-8", nb_buf_steal(&out), out_len);
    nb_counter_add(gw->m_requests, 1);
    if (code) {
        nb_counter_add(gw->m_errors, 1);
    }
    nb_histogram_observe(gw->m_latency, (double)(now_us() - t0) / 1e6);
    nb_log_set_request_id(NULL);
}
