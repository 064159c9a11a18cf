/* The network commands: vpc, subnet and sg (security group) create, list, show and delete, and
 * sg allow and revoke for rules. Each parses its options, calls libnubo and prints a table or
 * JSON (see nubo(1)). */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prints that 'kind' 'id' was deleted: {"<key>": id, "deleted": true} with --output json. */
static int print_deleted(const struct cli *cli, const char *kind, const char *key, const char *id)
{
    if (cli->json) {
        cli_print_json(json_pack("{s:s, s:b}", key, id, "deleted", 1));
    } else {
        printf("deleted %s %s\n", kind, id);
    }
    return CLI_OK;
}

/* Parses the options of a list command ("--filter NAME=V1,V2" only) into 'f'. Returns CLI_OK,
 * or CLI_USAGE after a usage error. */
static int list_args(const struct cli *cli, int argc, char **argv, struct cli_filters *f)
{
    const struct cli_opt opts[] = {CLI_FN("filter", f, cli_add_filter, NULL)};
    if (cli_parse_opts(argc, argv, cli->prefix, opts, CLI_N_OPTS(opts),
                       "invalid option (--filter NAME=V1,V2)") < 0) {
        return CLI_USAGE;
    }
    return cli_no_more_args(argc, argv, cli->prefix);
}

/* --- vpc ------------------------------------------------------------------------------------- */

static const char *const vpc_cols[] = {"id", "cidr", "state", "segment", "tags"};

static const char *vpc_row(struct cli_table *t, const void *item)
{
    const struct nubo_vpc *v = item;
    char seg[24];
    snprintf(seg, sizeof seg, "%lld", v->segment);
    char *tags = cli_tags_text(v->tags, v->n_tags);
    const char *cells[] = {v->id, v->cidr_block, v->state, seg, tags};
    cli_table_add(t, cells);
    free(tags);
    return v->json;
}

static void print_vpc(const struct cli *cli, const struct nubo_vpc *v)
{
    if (cli->json) {
        struct cli_json *j = cli_json_new(false);
        cli_json_add(j, v->json);
        cli_json_print(j);
        return;
    }
    char seg[24];
    snprintf(seg, sizeof seg, "%lld", v->segment);
    char *tags = cli_tags_text(v->tags, v->n_tags);
    const char *pairs[] = {"id",      v->id, "cidr",  v->cidr_block, "state", v->state,
                           "segment", seg,   "owner", v->owner_id,   "tags",  tags};
    cli_print_fields(pairs, sizeof pairs / sizeof pairs[0] / 2);
    free(tags);
}

static int vpc_create(struct cli *cli, int argc, char **argv)
{
    const char *cidr = NULL;
    struct cli_tags tags = {.n = 0};
    const struct cli_opt opts[] = {
        CLI_STR("cidr", &cidr),
        CLI_FN("tag", &tags, cli_add_tag, "--tag needs KEY=VALUE"),
    };
    if (cli_parse_opts(argc, argv, cli->prefix, opts, CLI_N_OPTS(opts), "invalid option") < 0 ||
        cli_no_more_args(argc, argv, cli->prefix) != CLI_OK) {
        return CLI_USAGE;
    }
    if (!cidr) {
        return cli_usage_error(cli->prefix, "--cidr is required");
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_vpc *v = nubo_vpc_create(client, cidr, tags.items, tags.n, &err);
    if (!v) {
        return cli_fail(&err);
    }
    print_vpc(cli, v);
    nubo_vpc_free(v);
    return CLI_OK;
}

static int vpc_list(struct cli *cli, int argc, char **argv)
{
    struct cli_filters f = {.n = 0};
    int rc = list_args(cli, argc, argv, &f);
    struct nubo_client *client = rc ? NULL : cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_vpc_list *l = nubo_vpcs_list(client, f.items, f.n, &err);
    if (!l) {
        return cli_fail(&err);
    }
    struct cli_table t = {5, vpc_cols, NULL, 0, 0};
    cli_print_list(cli, &t, l->items, l->n, sizeof *l->items, vpc_row);
    nubo_vpc_list_free(l);
    return CLI_OK;
}

static int vpc_show(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one VPC id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_vpc *v = nubo_vpc_get(client, argv[optind], &err);
    if (!v) {
        return cli_fail(&err);
    }
    print_vpc(cli, v);
    nubo_vpc_free(v);
    return CLI_OK;
}

static int vpc_delete(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one VPC id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    if (nubo_vpc_delete(client, argv[optind], &err) < 0) {
        return cli_fail(&err);
    }
    return print_deleted(cli, "vpc", "vpc_id", argv[optind]);
}

/* --- subnet ---------------------------------------------------------------------------------- */

static const char *const subnet_cols[] = {"id",    "vpc",       "zone", "cidr",
                                          "state", "available", "tags"};

static const char *subnet_row(struct cli_table *t, const void *item)
{
    const struct nubo_subnet *s = item;
    char avail[24];
    snprintf(avail, sizeof avail, "%lld", s->available_ips);
    char *tags = cli_tags_text(s->tags, s->n_tags);
    const char *cells[] = {s->id, s->vpc_id, s->zone, s->cidr_block, s->state, avail, tags};
    cli_table_add(t, cells);
    free(tags);
    return s->json;
}

static void print_subnet(const struct cli *cli, const struct nubo_subnet *s)
{
    if (cli->json) {
        struct cli_json *j = cli_json_new(false);
        cli_json_add(j, s->json);
        cli_json_print(j);
        return;
    }
    char avail[24];
    snprintf(avail, sizeof avail, "%lld", s->available_ips);
    char *tags = cli_tags_text(s->tags, s->n_tags);
    const char *pairs[] = {"id",    s->id,         "vpc",   s->vpc_id, "zone",          s->zone,
                           "cidr",  s->cidr_block, "state", s->state,  "available_ips", avail,
                           "owner", s->owner_id,   "tags",  tags};
    cli_print_fields(pairs, sizeof pairs / sizeof pairs[0] / 2);
    free(tags);
}

static int subnet_create(struct cli *cli, int argc, char **argv)
{
    struct nubo_subnet_params p = {0};
    struct cli_tags tags = {.n = 0};
    const struct cli_opt opts[] = {
        CLI_STR("vpc", &p.vpc_id),
        CLI_STR("cidr", &p.cidr_block),
        CLI_STR("zone", &p.zone),
        CLI_FN("tag", &tags, cli_add_tag, "--tag needs KEY=VALUE"),
    };
    if (cli_parse_opts(argc, argv, cli->prefix, opts, CLI_N_OPTS(opts), "invalid option") < 0 ||
        cli_no_more_args(argc, argv, cli->prefix) != CLI_OK) {
        return CLI_USAGE;
    }
    if (!p.vpc_id || !p.cidr_block) {
        return cli_usage_error(cli->prefix, "--vpc and --cidr are required");
    }
    p.tags = tags.items;
    p.n_tags = tags.n;
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_subnet *s = nubo_subnet_create(client, &p, &err);
    if (!s) {
        return cli_fail(&err);
    }
    print_subnet(cli, s);
    nubo_subnet_free(s);
    return CLI_OK;
}

static int subnet_list(struct cli *cli, int argc, char **argv)
{
    struct cli_filters f = {.n = 0};
    int rc = list_args(cli, argc, argv, &f);
    struct nubo_client *client = rc ? NULL : cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_subnet_list *l = nubo_subnets_list(client, f.items, f.n, &err);
    if (!l) {
        return cli_fail(&err);
    }
    struct cli_table t = {7, subnet_cols, NULL, 0, 0};
    cli_print_list(cli, &t, l->items, l->n, sizeof *l->items, subnet_row);
    nubo_subnet_list_free(l);
    return CLI_OK;
}

static int subnet_show(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one subnet id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_subnet *s = nubo_subnet_get(client, argv[optind], &err);
    if (!s) {
        return cli_fail(&err);
    }
    print_subnet(cli, s);
    nubo_subnet_free(s);
    return CLI_OK;
}

static int subnet_delete(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one subnet id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    if (nubo_subnet_delete(client, argv[optind], &err) < 0) {
        return cli_fail(&err);
    }
    return print_deleted(cli, "subnet", "subnet_id", argv[optind]);
}

/* --- sg -------------------------------------------------------------------------------------- */

static const char *const sg_cols[] = {"id", "name", "vpc", "rules", "description"};

static const char *sg_row(struct cli_table *t, const void *item)
{
    const struct nubo_security_group *g = item;
    char rules[24];
    snprintf(rules, sizeof rules, "%zu", g->n_rules);
    const char *cells[] = {g->id, g->name, g->vpc_id, rules, g->description};
    cli_table_add(t, cells);
    return g->json;
}

/* Formats the ports of 'r' ("22", "8000-8099", "all"; ICMP "type 8 code -1") into 'out'. */
static void rule_ports(const struct nubo_sg_rule *r, char *out, size_t size)
{
    if (!strcmp(r->protocol, "icmp")) {
        snprintf(out, size, "type %d code %d", r->from_port, r->to_port);
    } else if (r->from_port < 0 || (r->from_port == 0 && r->to_port == 65535)) {
        snprintf(out, size, "all");
    } else if (r->from_port == r->to_port) {
        snprintf(out, size, "%d", r->from_port);
    } else {
        snprintf(out, size, "%d-%d", r->from_port, r->to_port);
    }
}

/* Prints the group 'g': its JSON, or its fields and then a table of its rules. */
static void print_sg(const struct cli *cli, const struct nubo_security_group *g)
{
    if (cli->json) {
        struct cli_json *j = cli_json_new(false);
        cli_json_add(j, g->json);
        cli_json_print(j);
        return;
    }
    char *tags = cli_tags_text(g->tags, g->n_tags);
    const char *pairs[] = {"id",    g->id,       "name",        g->name,        "vpc",  g->vpc_id,
                           "owner", g->owner_id, "description", g->description, "tags", tags};
    cli_print_fields(pairs, sizeof pairs / sizeof pairs[0] / 2);
    free(tags);
    static const char *const cols[] = {"direction", "protocol", "ports",
                                       "peer",      "rule",     "description"};
    struct cli_table t = {6, cols, NULL, 0, 0};
    for (size_t i = 0; i < g->n_rules; i++) {
        const struct nubo_sg_rule *r = &g->rules[i];
        char ports[48];
        rule_ports(r, ports, sizeof ports);
        const char *cells[] = {r->direction, !strcmp(r->protocol, "-1") ? "all" : r->protocol,
                               ports,        r->cidr ? r->cidr : r->group_id,
                               r->id,        r->description};
        cli_table_add(&t, cells);
    }
    putchar('\n');
    cli_table_print(&t);
}

static int sg_create(struct cli *cli, int argc, char **argv)
{
    struct nubo_security_group_params p = {0};
    struct cli_tags tags = {.n = 0};
    const struct cli_opt opts[] = {
        CLI_STR("vpc", &p.vpc_id),
        CLI_STR("name", &p.name),
        CLI_STR("description", &p.description),
        CLI_FN("tag", &tags, cli_add_tag, "--tag needs KEY=VALUE"),
    };
    if (cli_parse_opts(argc, argv, cli->prefix, opts, CLI_N_OPTS(opts), "invalid option") < 0 ||
        cli_no_more_args(argc, argv, cli->prefix) != CLI_OK) {
        return CLI_USAGE;
    }
    if (!p.vpc_id || !p.name) {
        return cli_usage_error(cli->prefix, "--vpc and --name are required");
    }
    if (!p.description) {
        p.description = p.name; /* EC2 requires one */
    }
    p.tags = tags.items;
    p.n_tags = tags.n;
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_security_group *g = nubo_security_group_create(client, &p, &err);
    if (!g) {
        return cli_fail(&err);
    }
    print_sg(cli, g);
    nubo_security_group_free(g);
    return CLI_OK;
}

static int sg_list(struct cli *cli, int argc, char **argv)
{
    struct cli_filters f = {.n = 0};
    int rc = list_args(cli, argc, argv, &f);
    struct nubo_client *client = rc ? NULL : cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_security_group_list *l = nubo_security_groups_list(client, f.items, f.n, &err);
    if (!l) {
        return cli_fail(&err);
    }
    struct cli_table t = {5, sg_cols, NULL, 0, 0};
    cli_print_list(cli, &t, l->items, l->n, sizeof *l->items, sg_row);
    nubo_security_group_list_free(l);
    return CLI_OK;
}

static int sg_show(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one group id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_security_group *g = nubo_security_group_get(client, argv[optind], &err);
    if (!g) {
        return cli_fail(&err);
    }
    print_sg(cli, g);
    nubo_security_group_free(g);
    return CLI_OK;
}

static int sg_delete(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one group id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    if (nubo_security_group_delete(client, argv[optind], &err) < 0) {
        return cli_fail(&err);
    }
    return print_deleted(cli, "security group", "group_id", argv[optind]);
}

/* --proto: tcp, udp, icmp, all or -1 (all). */
static int parse_proto(char *arg, void *dest)
{
    static const char *const known[] = {"tcp", "udp", "icmp", "all", "-1"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (!strcmp(arg, known[i])) {
            *(const char **)dest = !strcmp(arg, "all") ? "-1" : known[i];
            return 0;
        }
    }
    return -1;
}

/* --port N, N-M or all into the int[2] 'dest'. */
static int parse_ports(char *arg, void *dest)
{
    int *range = dest;
    long long lo, hi;
    if (!strcmp(arg, "all")) {
        range[0] = 0;
        range[1] = 65535;
        return 0;
    }
    char *dash = strchr(arg, '-');
    if (dash) {
        *dash = '\0';
    }
    if (cli_parse_int(arg, 0, 65535, &lo) < 0 ||
        cli_parse_int(dash ? dash + 1 : arg, 0, 65535, &hi) < 0 || hi < lo) {
        return -1;
    }
    range[0] = (int)lo;
    range[1] = (int)hi;
    return 0;
}

/* "sg allow|revoke SG_ID --proto P [--port N[-M]] (--cidr CIDR | --from-group SG_ID)
 * [--egress]": the verb says whether the rule is added or removed. */
static int sg_rule(struct cli *cli, int argc, char **argv)
{
    struct nubo_sg_rule_spec r = {.from_port = -1, .to_port = -1};
    int ports[2] = {-1, -1};
    long long icmp_type = -1, icmp_code = -1;
    bool egress = false;
    const struct cli_opt opts[] = {
        CLI_FN("proto", &r.protocol, parse_proto, "--proto must be tcp, udp, icmp or all"),
        CLI_FN("port", ports, parse_ports, "--port must be N, N-M (0-65535) or all"),
        CLI_INT("icmp-type", &icmp_type, -1, 255, "--icmp-type must be -1-255"),
        CLI_INT("icmp-code", &icmp_code, -1, 255, "--icmp-code must be -1-255"),
        CLI_STR("cidr", &r.cidr),
        CLI_STR("from-group", &r.group_id),
        CLI_FLAG("egress", &egress),
        CLI_STR("description", &r.description),
    };
    if (cli_parse_opts(argc, argv, cli->prefix, opts, CLI_N_OPTS(opts), "invalid option") < 0) {
        return CLI_USAGE;
    }
    if (argc - optind != 1) {
        return cli_usage_error(cli->prefix, "expected one group id");
    }
    if (!r.protocol) {
        return cli_usage_error(cli->prefix, "--proto is required");
    }
    if (!r.cidr == !r.group_id) {
        return cli_usage_error(cli->prefix, "give one of --cidr and --from-group");
    }
    bool icmp = !strcmp(r.protocol, "icmp"), all = !strcmp(r.protocol, "-1");
    if ((ports[0] >= 0 && (icmp || all)) || ((icmp_type >= 0 || icmp_code >= 0) && !icmp)) {
        return cli_usage_error(cli->prefix,
                               "--port goes with tcp and udp, --icmp-type and --icmp-code "
                               "with icmp");
    }
    r.egress = egress;
    if (icmp) {
        r.from_port = (int)icmp_type;
        r.to_port = (int)icmp_code;
    } else if (!all) {
        r.from_port = ports[0] >= 0 ? ports[0] : 0;
        r.to_port = ports[0] >= 0 ? ports[1] : 65535;
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    const char *id = argv[optind];
    struct nubo_security_group *g = !strcmp(cli->cmd->verb, "allow")
                                        ? nubo_security_group_rules_add(client, id, &r, 1, &err)
                                        : nubo_security_group_rules_remove(client, id, &r, 1, &err);
    if (!g) {
        return cli_fail(&err);
    }
    print_sg(cli, g);
    nubo_security_group_free(g);
    return CLI_OK;
}

#define RULE_HELP                                                                                  \
    "  --proto PROTO          tcp, udp, icmp or all (required)\n"                                  \
    "  --port N|N-M|all       tcp and udp ports (default all)\n"                                   \
    "  --icmp-type T          icmp: the type (default -1, all)\n"                                  \
    "  --icmp-code C          icmp: the code (default -1, all)\n"                                  \
    "  --cidr CIDR            the peer range (\"0.0.0.0/0\": anywhere)\n"                          \
    "  --from-group SG_ID     the peer: members of this group of the same VPC\n"                   \
    "  --egress               an egress rule (default ingress)\n"                                  \
    "  --description TEXT\n"

const struct cli_cmd cli_network_cmds[] = {
    {"vpc", "create", vpc_create, "--cidr CIDR [--tag KEY=VALUE]...",
     "create a VPC (with its default security group)",
     "  --cidr CIDR            an IPv4 block of /16 to /28 (required)\n"
     "  --tag KEY=VALUE        a tag (repeatable)\n"},
    {"vpc", "list", vpc_list, "[--filter NAME=V1,V2]...", "list your VPCs",
     "  --filter NAME=V1,V2    vpc-id, cidr, state, is-default, tag:KEY, tag-key, tag-value\n"},
    {"vpc", "show", vpc_show, "VPC_ID", "show one VPC", NULL},
    {"vpc", "delete", vpc_delete, "VPC_ID", "delete a VPC without subnets or other groups", NULL},
    {"subnet", "create", subnet_create, "--vpc VPC_ID --cidr CIDR [OPTIONS]",
     "create a subnet of a VPC in one zone",
     "  --vpc VPC_ID           the VPC (required)\n"
     "  --cidr CIDR            inside the VPC's block, /16 to /28 (required)\n"
     "  --zone NAME            the availability zone (default: the first available)\n"
     "  --tag KEY=VALUE        a tag (repeatable)\n"},
    {"subnet", "list", subnet_list, "[--filter NAME=V1,V2]...", "list your subnets",
     "  --filter NAME=V1,V2    subnet-id, vpc-id, cidr, availability-zone, state, tag:KEY\n"},
    {"subnet", "show", subnet_show, "SUBNET_ID", "show one subnet", NULL},
    {"subnet", "delete", subnet_delete, "SUBNET_ID", "delete a subnet no instance uses", NULL},
    {"sg", "create", sg_create, "--vpc VPC_ID --name NAME [OPTIONS]",
     "create a security group in a VPC (egress anywhere)",
     "  --vpc VPC_ID           the VPC (required)\n"
     "  --name NAME            unique in the VPC; not default nor sg-* (required)\n"
     "  --description TEXT     1 to 255 characters (default: the name)\n"
     "  --tag KEY=VALUE        a tag (repeatable)\n"},
    {"sg", "list", sg_list, "[--filter NAME=V1,V2]...", "list your security groups",
     "  --filter NAME=V1,V2    group-id, group-name, vpc-id, description, tag:KEY\n"},
    {"sg", "show", sg_show, "SG_ID", "show a security group and its rules", NULL},
    {"sg", "delete", sg_delete, "SG_ID", "delete a security group nothing uses", NULL},
    {"sg", "allow", sg_rule, "SG_ID --proto PROTO [--port N[-M]] (--cidr CIDR | --from-group ID)",
     "add a rule to a security group", RULE_HELP},
    {"sg", "revoke", sg_rule, "SG_ID --proto PROTO [--port N[-M]] (--cidr CIDR | --from-group ID)",
     "remove a rule from a security group", RULE_HELP},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
