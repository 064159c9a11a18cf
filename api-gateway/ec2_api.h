/* The EC2 Query API front door: "POST /" (form body) and "GET /?Action=...".
 *
 * Every request goes the same way: parse the parameters, authenticate (SigV4), find the action in
 * the dispatch table, let the action read its parameters and call the service layer, render XML,
 * record the request in the request log (committed before the reply), reply. Actions live in
 * ec2_act_*.c and only translate: parameters in, service call, XML out. */
#ifndef NUBO_GW_EC2_API_H
#define NUBO_GW_EC2_API_H

#include <stdbool.h>

#include "auth.h"

#include "nubo/error.h"

struct gw_ctx;
struct nb_arena;
struct nb_buf;
struct nb_http_req;
struct ec2_params;

/* What an action gets: the request, who made it, and where to write. */
struct ec2_call {
    struct gw_ctx *gw;
    struct nb_arena *arena; /* the request's arena */
    const struct ec2_params *params;
    const struct gw_principal *who;
    const char *action;
    const char *request_id;
    bool dry_run;
    const char *client_token; /* NULL when absent */
    struct nb_buf *out;       /* the response body, ec2_xml_begin() already written */
    struct nb_error err;      /* set when the action returns -1 */
};

/* An action: returns 0 having written its response elements to 'c->out', or -1 with 'c->err'
 * set. 'c->dry_run' actions check their parameters and permissions, then return
 * ec2_dry_run(c). */
typedef int (*ec2_action_fn)(struct ec2_call *c);

struct ec2_action {
    const char *name;
    ec2_action_fn fn;
    bool writes; /* needs the member or admin role */
    /* The parameters the action reads, space-separated: exact names, or "Prefix.*" for every
     * "Prefix.<anything>". Any other parameter (besides Action, Version, DryRun, ClientToken
     * and the X-Amz-* of a presigned request) is refused with UnknownParameter before the
     * action runs, as EC2 does: a misspelt option must not be silently ignored. */
    const char *params;
};

/* The action tables of ec2_act_*.c, each terminated by an entry with a NULL name. */
extern const struct ec2_action ec2_actions_catalog[];
extern const struct ec2_action ec2_actions_instances[];
extern const struct ec2_action ec2_actions_keypairs[];
extern const struct ec2_action ec2_actions_tags[];
extern const struct ec2_action ec2_actions_placement[];
extern const struct ec2_action ec2_actions_images[];
extern const struct ec2_action ec2_actions_image_tasks[];
extern const struct ec2_action ec2_actions_network[];
extern const struct ec2_action ec2_actions_network_edge[];
extern const struct ec2_action ec2_actions_vpn[];

/* For DryRun: sets 'c->err' to DryRunOperation and returns -1. */
int ec2_dry_run(struct ec2_call *c);

/* Helpers for actions: read a "Name.N" list / filters / paging, with errors in 'c->err'.
 * Lists and filters are allocated in the call's arena. Return 0 or -1. */
struct gw_filter;
struct gw_page;
int ec2_get_list(struct ec2_call *c, const char *prefix, const char ***out, size_t *n);
int ec2_get_filters(struct ec2_call *c, struct gw_filter **out, size_t *n);
int ec2_get_page(struct ec2_call *c, int min, int max, struct gw_page *page);

struct gw_tag;
/* Reads the tags of TagSpecification.N, whose resource types must all be 'resource_type'
 * ("instance", "key-pair", ...; another is InvalidParameterValue), into one arena array. */
int ec2_get_tag_specs(struct ec2_call *c, const char *resource_type, struct gw_tag **tags,
                      size_t *n_tags);

/* Appends "<tagSet>" with 'tags' as items, nothing when 'n' is 0. */
struct gw_tag;
void ec2_write_tags(struct nb_buf *b, const struct gw_tag *tags, size_t n);

/* The HTTP handler for "/", registered by gw_start(); 'arg' is the gateway context. */
void ec2_api_handle(struct nb_http_req *req, void *arg);

#endif
