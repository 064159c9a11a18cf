/* The commands of a VPC's routing: igw (internet gateways) create, list, show, attach, detach
 * and delete; route-table create, list, show and delete, its routes added and deleted and its
 * subnets associated and disassociated; remote-access (WireGuard endpoints) create, list, show
 * and delete, and their peers added (printing the client configuration), listed and deleted
 * (see nubo(1)). */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int print_deleted(const struct cli *cli, const char *kind, const char *id)
{
    if (cli->json) {
        cli_print_json(json_pack("{s:s, s:b}", "id", id, "deleted", 1));
    } else {
        printf("%s %s\n", kind, id);
    }
    return CLI_OK;
}

/* Parses 'opts' and 'n_args' positional arguments ('what' names them). Returns the client, or
 * NULL with '*rc' set. */
static struct nubo_client *args_and_opts(struct cli *cli, int argc, char **argv,
                                         const struct cli_opt *opts, size_t n, int n_args,
                                         const char *what, int *rc)
{
    if (cli_parse_opts(argc, argv, cli->prefix, opts, n, "invalid option") < 0) {
        *rc = CLI_USAGE;
        return NULL;
    }
    if (argc - optind != n_args) {
        *rc = cli_usage_error(cli->prefix, "expected %s", what);
        return NULL;
    }
    return cli_client(cli, rc);
}

/* Prints one item: its JSON text with --output json, else its 'n' (field, value) pairs. */
static void print_item(const struct cli *cli, const char *json, const char *const *pairs, size_t n)
{
    if (cli->json) {
        struct cli_json *j = cli_json_new(false);
        cli_json_add(j, json);
        cli_json_print(j);
        return;
    }
    cli_print_fields(pairs, n);
}

/* --- igw ------------------------------------------------------------------------------------- */

static const char *const igw_cols[] = {"id", "vpc", "tags"};

static const char *igw_row(struct cli_table *t, const void *item)
{
    const struct nubo_internet_gateway *g = item;
    char *tags = cli_tags_text(g->tags, g->n_tags);
    const char *cells[] = {g->id, g->vpc_id, tags};
    cli_table_add(t, cells);
    free(tags);
    return g->json;
}

static int print_igw(const struct cli *cli, struct nubo_internet_gateway *g,
                     const struct nubo_error *err)
{
    if (!g) {
        return cli_fail(err);
    }
    char *tags = cli_tags_text(g->tags, g->n_tags);
    const char *pairs[] = {"id", g->id, "vpc", g->vpc_id, "tags", tags};
    print_item(cli, g->json, pairs, sizeof pairs / sizeof pairs[0] / 2);
    free(tags);
    nubo_internet_gateway_free(g);
    return CLI_OK;
}

static int igw_create(struct cli *cli, int argc, char **argv)
{
    struct cli_tags tags = {.n = 0};
    const struct cli_opt opts[] = {CLI_FN("tag", &tags, cli_add_tag, "--tag needs KEY=VALUE")};
    if (cli_parse_opts(argc, argv, cli->prefix, opts, CLI_N_OPTS(opts), "invalid option") < 0 ||
        cli_no_more_args(argc, argv, cli->prefix) != CLI_OK) {
        return CLI_USAGE;
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    return print_igw(cli, nubo_internet_gateway_create(client, tags.items, tags.n, &err), &err);
}

static int igw_list(struct cli *cli, int argc, char **argv)
{
    struct cli_filters f = {.n = 0};
    const char *vpc = NULL;
    const struct cli_opt opts[] = {CLI_FN("filter", &f, cli_add_filter, NULL),
                                   CLI_STR("vpc", &vpc)};
    int rc;
    struct nubo_client *client =
        args_and_opts(cli, argc, argv, opts, CLI_N_OPTS(opts), 0, "no argument", &rc);
    if (!client) {
        return rc;
    }
    if (vpc) {
        if (f.n == CLI_MAX_FILTERS) {
            return cli_usage_error(cli->prefix, "too many filters");
        }
        f.items[f.n++] = (struct nubo_filter){"attachment.vpc-id", vpc};
    }
    struct nubo_error err;
    struct nubo_internet_gateway_list *l = nubo_internet_gateways_list(client, f.items, f.n, &err);
    if (!l) {
        return cli_fail(&err);
    }
    struct cli_table t = {3, igw_cols, NULL, 0, 0};
    cli_print_list(cli, &t, l->items, l->n, sizeof *l->items, igw_row);
    nubo_internet_gateway_list_free(l);
    return CLI_OK;
}

static int igw_show(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client =
        cli_args_client(cli, argc, argv, 1, "one internet gateway id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    return print_igw(cli, nubo_internet_gateway_get(client, argv[optind], &err), &err);
}

/* "igw attach|detach IGW_ID --vpc VPC_ID": the verb says which. */
static int igw_attachment(struct cli *cli, int argc, char **argv)
{
    const char *vpc = NULL;
    const struct cli_opt opts[] = {CLI_STR("vpc", &vpc)};
    int rc;
    struct nubo_client *client =
        args_and_opts(cli, argc, argv, opts, CLI_N_OPTS(opts), 1, "one internet gateway id", &rc);
    if (!client) {
        return rc;
    }
    if (!vpc) {
        return cli_usage_error(cli->prefix, "--vpc is required");
    }
    struct nubo_error err;
    bool attach = !strcmp(cli->cmd->verb, "attach");
    return print_igw(cli, nubo_internet_gateway_attach(client, argv[optind], vpc, attach, &err),
                     &err);
}

static int igw_delete(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client =
        cli_args_client(cli, argc, argv, 1, "one internet gateway id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    if (nubo_internet_gateway_delete(client, argv[optind], &err) < 0) {
        return cli_fail(&err);
    }
    return print_deleted(cli, "deleted internet gateway", argv[optind]);
}

/* --- route-table ----------------------------------------------------------------------------- */

static const char *const rtb_cols[] = {"id", "vpc", "main", "routes", "subnets", "tags"};

static const char *rtb_row(struct cli_table *t, const void *item)
{
    const struct nubo_route_table *r = item;
    char *tags = cli_tags_text(r->tags, r->n_tags);
    char routes[32], subnets[32];
    size_t n_subnets = 0;
    for (size_t i = 0; i < r->n_associations; i++) {
        n_subnets += r->associations[i].subnet_id != NULL;
    }
    snprintf(routes, sizeof routes, "%zu", r->n_routes);
    snprintf(subnets, sizeof subnets, "%zu", n_subnets);
    const char *cells[] = {r->id, r->vpc_id, r->main ? "yes" : "no", routes, subnets, tags};
    cli_table_add(t, cells);
    free(tags);
    return r->json;
}

/* Prints the table 'r' (freed): its fields, then its routes and its associations. */
static int print_rtb(const struct cli *cli, struct nubo_route_table *r,
                     const struct nubo_error *err)
{
    if (!r) {
        return cli_fail(err);
    }
    if (cli->json) {
        print_item(cli, r->json, NULL, 0);
        nubo_route_table_free(r);
        return CLI_OK;
    }
    char *tags = cli_tags_text(r->tags, r->n_tags);
    const char *pairs[] = {"id",   r->id, "vpc", r->vpc_id, "main", r->main ? "yes" : "no",
                           "tags", tags};
    cli_print_fields(pairs, sizeof pairs / sizeof pairs[0] / 2);
    free(tags);
    static const char *const route_cols[] = {"destination", "gateway", "state", "origin"};
    struct cli_table t = {4, route_cols, NULL, 0, 0};
    for (size_t i = 0; i < r->n_routes; i++) {
        const struct nubo_route *x = &r->routes[i];
        const char *cells[] = {x->destination, x->gateway_id, x->state, x->origin};
        cli_table_add(&t, cells);
    }
    printf("\n");
    cli_table_print(&t);
    if (r->n_associations) {
        static const char *const assoc_cols[] = {"association", "subnet", "main"};
        struct cli_table a = {3, assoc_cols, NULL, 0, 0};
        for (size_t i = 0; i < r->n_associations; i++) {
            const struct nubo_route_association *x = &r->associations[i];
            const char *cells[] = {x->id, x->subnet_id, x->main ? "yes" : "no"};
            cli_table_add(&a, cells);
        }
        printf("\n");
        cli_table_print(&a);
    }
    nubo_route_table_free(r);
    return CLI_OK;
}

static int rtb_create(struct cli *cli, int argc, char **argv)
{
    struct cli_tags tags = {.n = 0};
    const char *vpc = NULL;
    const struct cli_opt opts[] = {CLI_STR("vpc", &vpc),
                                   CLI_FN("tag", &tags, cli_add_tag, "--tag needs KEY=VALUE")};
    int rc;
    struct nubo_client *client =
        args_and_opts(cli, argc, argv, opts, CLI_N_OPTS(opts), 0, "no argument", &rc);
    if (!client) {
        return rc;
    }
    if (!vpc) {
        return cli_usage_error(cli->prefix, "--vpc is required");
    }
    struct nubo_error err;
    return print_rtb(cli, nubo_route_table_create(client, vpc, tags.items, tags.n, &err), &err);
}

static int rtb_list(struct cli *cli, int argc, char **argv)
{
    struct cli_filters f = {.n = 0};
    const char *vpc = NULL;
    const struct cli_opt opts[] = {CLI_FN("filter", &f, cli_add_filter, NULL),
                                   CLI_STR("vpc", &vpc)};
    int rc;
    struct nubo_client *client =
        args_and_opts(cli, argc, argv, opts, CLI_N_OPTS(opts), 0, "no argument", &rc);
    if (!client) {
        return rc;
    }
    if (vpc) {
        if (f.n == CLI_MAX_FILTERS) {
            return cli_usage_error(cli->prefix, "too many filters");
        }
        f.items[f.n++] = (struct nubo_filter){"vpc-id", vpc};
    }
    struct nubo_error err;
    struct nubo_route_table_list *l = nubo_route_tables_list(client, f.items, f.n, &err);
    if (!l) {
        return cli_fail(&err);
    }
    struct cli_table t = {6, rtb_cols, NULL, 0, 0};
    cli_print_list(cli, &t, l->items, l->n, sizeof *l->items, rtb_row);
    nubo_route_table_list_free(l);
    return CLI_OK;
}

static int rtb_show(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one route table id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    return print_rtb(cli, nubo_route_table_get(client, argv[optind], &err), &err);
}

static int rtb_delete(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one route table id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    if (nubo_route_table_delete(client, argv[optind], &err) < 0) {
        return cli_fail(&err);
    }
    return print_deleted(cli, "deleted route table", argv[optind]);
}

/* "route-table route add|delete RTB_ID --destination CIDR [--gateway GW]": the verb says
 * which. */
static int rtb_route(struct cli *cli, int argc, char **argv)
{
    const char *dest = NULL, *gateway = NULL;
    bool add = !strcmp(cli->cmd->verb, "add");
    const struct cli_opt opts[] = {CLI_STR("destination", &dest), CLI_STR("gateway", &gateway)};
    int rc;
    struct nubo_client *client =
        args_and_opts(cli, argc, argv, opts, add ? 2 : 1, 1, "one route table id", &rc);
    if (!client) {
        return rc;
    }
    if (!dest) {
        return cli_usage_error(cli->prefix, "--destination is required");
    }
    if (add && !gateway) {
        return cli_usage_error(cli->prefix, "--gateway is required");
    }
    struct nubo_error err;
    return print_rtb(cli, nubo_route_table_route(client, argv[optind], dest, gateway, add, &err),
                     &err);
}

static int rtb_associate(struct cli *cli, int argc, char **argv)
{
    const char *subnet = NULL;
    const struct cli_opt opts[] = {CLI_STR("subnet", &subnet)};
    int rc;
    struct nubo_client *client =
        args_and_opts(cli, argc, argv, opts, CLI_N_OPTS(opts), 1, "one route table id", &rc);
    if (!client) {
        return rc;
    }
    if (!subnet) {
        return cli_usage_error(cli->prefix, "--subnet is required");
    }
    struct nubo_error err;
    struct nubo_route_table_association *a =
        nubo_route_table_associate(client, argv[optind], subnet, &err);
    if (!a) {
        return cli_fail(&err);
    }
    const char *pairs[] = {"association",     a->id,    "route_table",
                           a->route_table_id, "subnet", a->subnet_id};
    print_item(cli, a->json, pairs, sizeof pairs / sizeof pairs[0] / 2);
    nubo_route_table_association_free(a);
    return CLI_OK;
}

static int rtb_disassociate(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one association id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    if (nubo_route_table_disassociate(client, argv[optind], &err) < 0) {
        return cli_fail(&err);
    }
    return print_deleted(cli, "disassociated", argv[optind]);
}

/* --- remote-access --------------------------------------------------------------------------- */

static const char *const ra_cols[] = {"id", "vpc", "client_cidr", "endpoint", "state", "peers"};

static const char *ra_row(struct cli_table *t, const void *item)
{
    const struct nubo_remote_access *r = item;
    char endpoint[96], peers[32];
    snprintf(endpoint, sizeof endpoint, "%s:%lld", r->outside_ip ? r->outside_ip : "-",
             r->listen_port);
    snprintf(peers, sizeof peers, "%lld", r->n_peers);
    const char *cells[] = {r->id, r->vpc_id, r->client_cidr, endpoint, r->state, peers};
    cli_table_add(t, cells);
    return r->json;
}

static int print_ra(const struct cli *cli, struct nubo_remote_access *r,
                    const struct nubo_error *err)
{
    if (!r) {
        return cli_fail(err);
    }
    char port[32], peers[32];
    snprintf(port, sizeof port, "%lld", r->listen_port);
    snprintf(peers, sizeof peers, "%lld", r->n_peers);
    const char *pairs[] = {
        "id",          r->id,          "vpc",        r->vpc_id,     "vpc_cidr",    r->vpc_cidr,
        "client_cidr", r->client_cidr, "outside_ip", r->outside_ip, "listen_port", port,
        "public_key",  r->public_key,  "state",      r->state,      "host",        r->host_id,
        "description", r->description, "peers",      peers};
    print_item(cli, r->json, pairs, sizeof pairs / sizeof pairs[0] / 2);
    nubo_remote_access_free(r);
    return CLI_OK;
}

static int ra_create(struct cli *cli, int argc, char **argv)
{
    const char *vpc = NULL, *cidr = NULL, *description = NULL;
    const struct cli_opt opts[] = {CLI_STR("vpc", &vpc), CLI_STR("client-cidr", &cidr),
                                   CLI_STR("description", &description)};
    int rc;
    struct nubo_client *client =
        args_and_opts(cli, argc, argv, opts, CLI_N_OPTS(opts), 0, "no argument", &rc);
    if (!client) {
        return rc;
    }
    if (!vpc || !cidr) {
        return cli_usage_error(cli->prefix, "--vpc and --client-cidr are required");
    }
    struct nubo_error err;
    return print_ra(cli, nubo_remote_access_create(client, vpc, cidr, description, &err), &err);
}

static int ra_list(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 0, "no argument", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_remote_access_list *l = nubo_remote_accesses_list(client, &err);
    if (!l) {
        return cli_fail(&err);
    }
    struct cli_table t = {6, ra_cols, NULL, 0, 0};
    cli_print_list(cli, &t, l->items, l->n, sizeof *l->items, ra_row);
    nubo_remote_access_list_free(l);
    return CLI_OK;
}

static int ra_show(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one remote access id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    return print_ra(cli, nubo_remote_access_get(client, argv[optind], &err), &err);
}

static int ra_delete(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one remote access id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    if (nubo_remote_access_delete(client, argv[optind], &err) < 0) {
        return cli_fail(&err);
    }
    return print_deleted(cli, "deleted remote access", argv[optind]);
}

static const char *const peer_cols[] = {"id", "name", "address", "public_key"};

static const char *peer_row(struct cli_table *t, const void *item)
{
    const struct nubo_remote_access_peer *p = item;
    const char *cells[] = {p->id, p->name, p->address, p->public_key};
    cli_table_add(t, cells);
    return p->json;
}

/* Prints the new peer's client configuration (wg-quick), or its JSON with --output json. */
static int peer_add(struct cli *cli, int argc, char **argv)
{
    const char *key = NULL, *name = NULL;
    const struct cli_opt opts[] = {CLI_STR("public-key", &key), CLI_STR("name", &name)};
    int rc;
    struct nubo_client *client =
        args_and_opts(cli, argc, argv, opts, CLI_N_OPTS(opts), 1, "one remote access id", &rc);
    if (!client) {
        return rc;
    }
    if (!key) {
        return cli_usage_error(cli->prefix, "--public-key is required");
    }
    struct nubo_error err;
    struct nubo_remote_access_peer *p =
        nubo_remote_access_peer_add(client, argv[optind], key, name, &err);
    if (!p) {
        return cli_fail(&err);
    }
    if (cli->json) {
        print_item(cli, p->json, NULL, 0);
    } else {
        const char *conf = p->client_config ? p->client_config : "";
        size_t n = strlen(conf);
        fputs(conf, stdout);
        if (n && conf[n - 1] != '\n') {
            putchar('\n');
        }
    }
    nubo_remote_access_peer_free(p);
    return CLI_OK;
}

static int peer_list(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one remote access id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_remote_access_peer_list *l =
        nubo_remote_access_peers_list(client, argv[optind], &err);
    if (!l) {
        return cli_fail(&err);
    }
    struct cli_table t = {4, peer_cols, NULL, 0, 0};
    cli_print_list(cli, &t, l->items, l->n, sizeof *l->items, peer_row);
    nubo_remote_access_peer_list_free(l);
    return CLI_OK;
}

static int peer_delete(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client =
        cli_args_client(cli, argc, argv, 2, "a remote access id and a peer id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    if (nubo_remote_access_peer_delete(client, argv[optind], argv[optind + 1], &err) < 0) {
        return cli_fail(&err);
    }
    return print_deleted(cli, "deleted peer", argv[optind + 1]);
}

#define TAG_HELP    "  --tag KEY=VALUE        a tag (repeatable)\n"
#define FILTER_HELP "  --filter NAME=V1,V2    "

const struct cli_cmd cli_network_routing_cmds[] = {
    {"igw", "create", igw_create, "[--tag KEY=VALUE]...", "create an internet gateway (detached)",
     TAG_HELP},
    {"igw", "list", igw_list, "[--vpc VPC_ID] [--filter NAME=V1,V2]...",
     "list your internet gateways",
     "  --vpc VPC_ID           only the one attached to this VPC\n" FILTER_HELP
     "internet-gateway-id, attachment.vpc-id, tag:KEY\n"},
    {"igw", "show", igw_show, "IGW_ID", "show one internet gateway", NULL},
    {"igw", "attach", igw_attachment, "IGW_ID --vpc VPC_ID",
     "attach an internet gateway to a VPC (one per VPC)", "  --vpc VPC_ID           the VPC\n"},
    {"igw", "detach", igw_attachment, "IGW_ID --vpc VPC_ID",
     "detach an internet gateway from its VPC", "  --vpc VPC_ID           the VPC\n"},
    {"igw", "delete", igw_delete, "IGW_ID", "delete a detached internet gateway", NULL},
    {"route-table", "create", rtb_create, "--vpc VPC_ID [--tag KEY=VALUE]...",
     "create a route table in a VPC (with its local route)",
     "  --vpc VPC_ID           the VPC (required)\n" TAG_HELP},
    {"route-table", "list", rtb_list, "[--vpc VPC_ID] [--filter NAME=V1,V2]...",
     "list your route tables",
     "  --vpc VPC_ID           only this VPC's\n" FILTER_HELP
     "route-table-id, vpc-id, association.subnet-id, association.main, tag:KEY\n"},
    {"route-table", "show", rtb_show, "RTB_ID",
     "show a route table with its routes and associations", NULL},
    {"route-table", "delete", rtb_delete, "RTB_ID",
     "delete a route table that is not main and has no subnets", NULL},
    {"route-table route", "add", rtb_route, "RTB_ID --destination CIDR --gateway GW_ID",
     "add a route through an internet or VPN gateway attached to the VPC",
     "  --destination CIDR     the destination (required)\n"
     "  --gateway GW_ID        an igw-... or vgw-... (required)\n"},
    {"route-table route", "delete", rtb_route, "RTB_ID --destination CIDR", "delete a route",
     "  --destination CIDR     the destination (required)\n"},
    {"route-table", "associate", rtb_associate, "RTB_ID --subnet SUBNET_ID",
     "associate a subnet with a route table (instead of the main one)",
     "  --subnet SUBNET_ID     the subnet (required)\n"},
    {"route-table", "disassociate", rtb_disassociate, "ASSOCIATION_ID",
     "remove a subnet's association (it goes back to the main table)", NULL},
    {"remote-access", "create", ra_create, "--vpc VPC_ID --client-cidr CIDR [--description TEXT]",
     "create a WireGuard remote access endpoint into a VPC",
     "  --vpc VPC_ID           the VPC (required)\n"
     "  --client-cidr CIDR     the clients' addresses (required)\n"
     "  --description TEXT     a description\n"},
    {"remote-access", "list", ra_list, "", "list your remote access endpoints", NULL},
    {"remote-access", "show", ra_show, "RA_ID", "show one remote access endpoint", NULL},
    {"remote-access", "delete", ra_delete, "RA_ID", "delete a remote access endpoint and its peers",
     NULL},
    {"remote-access peer", "add", peer_add, "RA_ID --public-key KEY [--name NAME]",
     "add a client and print its WireGuard configuration (wg-quick)",
     "  --public-key KEY       the client's WireGuard public key (required)\n"
     "  --name NAME            a name for the client\n"},
    {"remote-access peer", "list", peer_list, "RA_ID", "list an endpoint's clients", NULL},
    {"remote-access peer", "delete", peer_delete, "RA_ID PEER_ID", "remove a client", NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
