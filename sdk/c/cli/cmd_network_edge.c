/* The commands of a VPC's edge: address (elastic IPs) allocate, list, show, associate,
 * disassociate and release; vpn gateway, vpn customer-gateway and vpn connection create, list,
 * show and delete, a VPN gateway attached and detached, a connection's static routes added and
 * removed, and its customer gateway configuration printed (see nubo(1)). */
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

/* Parses a list command's "--filter NAME=V1,V2" options into 'f'. Returns CLI_OK, or
 * CLI_USAGE after a usage error. */
static int list_args(const struct cli *cli, int argc, char **argv, struct cli_filters *f)
{
    const struct cli_opt opts[] = {CLI_FN("filter", f, cli_add_filter, NULL)};
    if (cli_parse_opts(argc, argv, cli->prefix, opts, CLI_N_OPTS(opts),
                       "invalid option (--filter NAME=V1,V2)") < 0) {
        return CLI_USAGE;
    }
    return cli_no_more_args(argc, argv, cli->prefix);
}

/* Parses 'opts' and one positional id ('what' names it). Returns the client, or NULL with
 * '*rc' set. */
static struct nubo_client *id_and_opts(struct cli *cli, int argc, char **argv,
                                       const struct cli_opt *opts, size_t n, const char *what,
                                       int *rc)
{
    if (cli_parse_opts(argc, argv, cli->prefix, opts, n, "invalid option") < 0) {
        *rc = CLI_USAGE;
        return NULL;
    }
    if (argc - optind != 1) {
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

/* --- address --------------------------------------------------------------------------------- */

static const char *const address_cols[] = {"id", "public_ip", "instance", "association", "tags"};

static const char *address_row(struct cli_table *t, const void *item)
{
    const struct nubo_address *a = item;
    char *tags = cli_tags_text(a->tags, a->n_tags);
    const char *cells[] = {a->id, a->public_ip, a->instance_id, a->association_id, tags};
    cli_table_add(t, cells);
    free(tags);
    return a->json;
}

static int print_address(const struct cli *cli, struct nubo_address *a,
                         const struct nubo_error *err)
{
    if (!a) {
        return cli_fail(err);
    }
    char *tags = cli_tags_text(a->tags, a->n_tags);
    const char *pairs[] = {"id",          a->id,
                           "public_ip",   a->public_ip,
                           "instance",    a->instance_id,
                           "interface",   a->network_interface_id,
                           "private_ip",  a->private_ip,
                           "association", a->association_id,
                           "tags",        tags};
    print_item(cli, a->json, pairs, sizeof pairs / sizeof pairs[0] / 2);
    free(tags);
    nubo_address_free(a);
    return CLI_OK;
}

static int address_allocate(struct cli *cli, int argc, char **argv)
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
    return print_address(cli, nubo_address_allocate(client, tags.items, tags.n, &err), &err);
}

static int address_list(struct cli *cli, int argc, char **argv)
{
    struct cli_filters f = {.n = 0};
    int rc = list_args(cli, argc, argv, &f);
    struct nubo_client *client = rc ? NULL : cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_address_list *l = nubo_addresses_list(client, f.items, f.n, &err);
    if (!l) {
        return cli_fail(&err);
    }
    struct cli_table t = {5, address_cols, NULL, 0, 0};
    cli_print_list(cli, &t, l->items, l->n, sizeof *l->items, address_row);
    nubo_address_list_free(l);
    return CLI_OK;
}

static int address_show(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one allocation id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    return print_address(cli, nubo_address_get(client, argv[optind], &err), &err);
}

static int address_associate(struct cli *cli, int argc, char **argv)
{
    const char *instance = NULL, *interface = NULL;
    bool again = false;
    const struct cli_opt opts[] = {
        CLI_STR("instance", &instance),
        CLI_STR("interface", &interface),
        CLI_FLAG("allow-reassociation", &again),
    };
    int rc;
    if (cli_parse_opts(argc, argv, cli->prefix, opts, CLI_N_OPTS(opts), "invalid option") < 0) {
        return CLI_USAGE;
    }
    if (argc - optind != 1) {
        return cli_usage_error(cli->prefix, "expected one allocation id");
    }
    if (!instance == !interface) {
        return cli_usage_error(cli->prefix, "give one of --instance and --interface");
    }
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    return print_address(
        cli, nubo_address_associate(client, argv[optind], instance, interface, again, &err), &err);
}

static int address_disassociate(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one allocation id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    return print_address(cli, nubo_address_disassociate(client, argv[optind], &err), &err);
}

static int address_release(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one allocation id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    if (nubo_address_release(client, argv[optind], &err) < 0) {
        return cli_fail(&err);
    }
    return print_deleted(cli, "released address", argv[optind]);
}

/* --- vpn gateway ----------------------------------------------------------------------------- */

static const char *const vgw_cols[] = {"id", "state", "vpc", "asn", "tags"};

static const char *vgw_row(struct cli_table *t, const void *item)
{
    const struct nubo_vpn_gateway *g = item;
    char asn[24];
    snprintf(asn, sizeof asn, "%lld", g->amazon_side_asn);
    char *tags = cli_tags_text(g->tags, g->n_tags);
    const char *cells[] = {g->id, g->state, g->vpc_id, asn, tags};
    cli_table_add(t, cells);
    free(tags);
    return g->json;
}

static int print_vgw(const struct cli *cli, struct nubo_vpn_gateway *g,
                     const struct nubo_error *err)
{
    if (!g) {
        return cli_fail(err);
    }
    char asn[24];
    snprintf(asn, sizeof asn, "%lld", g->amazon_side_asn);
    char *tags = cli_tags_text(g->tags, g->n_tags);
    const char *pairs[] = {"id",  g->id,     "type", g->type, "state", g->state,
                           "vpc", g->vpc_id, "asn",  asn,     "tags",  tags};
    print_item(cli, g->json, pairs, sizeof pairs / sizeof pairs[0] / 2);
    free(tags);
    nubo_vpn_gateway_free(g);
    return CLI_OK;
}

static int vgw_create(struct cli *cli, int argc, char **argv)
{
    long long asn = 0;
    struct cli_tags tags = {.n = 0};
    const struct cli_opt opts[] = {
        CLI_INT("asn", &asn, 1, 4294967295LL, "--asn must be 1-4294967295"),
        CLI_FN("tag", &tags, cli_add_tag, "--tag needs KEY=VALUE"),
    };
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
    return print_vgw(cli, nubo_vpn_gateway_create(client, asn, tags.items, tags.n, &err), &err);
}

static int vgw_list(struct cli *cli, int argc, char **argv)
{
    struct cli_filters f = {.n = 0};
    int rc = list_args(cli, argc, argv, &f);
    struct nubo_client *client = rc ? NULL : cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_vpn_gateway_list *l = nubo_vpn_gateways_list(client, f.items, f.n, &err);
    if (!l) {
        return cli_fail(&err);
    }
    struct cli_table t = {5, vgw_cols, NULL, 0, 0};
    cli_print_list(cli, &t, l->items, l->n, sizeof *l->items, vgw_row);
    nubo_vpn_gateway_list_free(l);
    return CLI_OK;
}

static int vgw_show(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one VPN gateway id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    return print_vgw(cli, nubo_vpn_gateway_get(client, argv[optind], &err), &err);
}

/* "vpn gateway attach|detach VGW_ID --vpc VPC_ID": the verb says which. */
static int vgw_attachment(struct cli *cli, int argc, char **argv)
{
    const char *vpc = NULL;
    const struct cli_opt opts[] = {CLI_STR("vpc", &vpc)};
    int rc;
    struct nubo_client *client =
        id_and_opts(cli, argc, argv, opts, CLI_N_OPTS(opts), "one VPN gateway id", &rc);
    if (!client) {
        return rc;
    }
    if (!vpc) {
        return cli_usage_error(cli->prefix, "--vpc is required");
    }
    struct nubo_error err;
    bool attach = !strcmp(cli->cmd->verb, "attach");
    return print_vgw(cli, nubo_vpn_gateway_attach(client, argv[optind], vpc, attach, &err), &err);
}

static int vgw_delete(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one VPN gateway id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    if (nubo_vpn_gateway_delete(client, argv[optind], &err) < 0) {
        return cli_fail(&err);
    }
    return print_deleted(cli, "deleted VPN gateway", argv[optind]);
}

/* --- vpn customer-gateway -------------------------------------------------------------------- */

static const char *const cgw_cols[] = {"id", "ip_address", "asn", "state", "tags"};

static const char *cgw_row(struct cli_table *t, const void *item)
{
    const struct nubo_customer_gateway *g = item;
    char asn[24];
    snprintf(asn, sizeof asn, "%lld", g->bgp_asn);
    char *tags = cli_tags_text(g->tags, g->n_tags);
    const char *cells[] = {g->id, g->ip_address, asn, g->state, tags};
    cli_table_add(t, cells);
    free(tags);
    return g->json;
}

static int print_cgw(const struct cli *cli, struct nubo_customer_gateway *g,
                     const struct nubo_error *err)
{
    if (!g) {
        return cli_fail(err);
    }
    char asn[24];
    snprintf(asn, sizeof asn, "%lld", g->bgp_asn);
    char *tags = cli_tags_text(g->tags, g->n_tags);
    const char *pairs[] = {"id",    g->id,    "ip_address",  g->ip_address,
                           "asn",   asn,      "device_name", g->device_name,
                           "state", g->state, "tags",        tags};
    print_item(cli, g->json, pairs, sizeof pairs / sizeof pairs[0] / 2);
    free(tags);
    nubo_customer_gateway_free(g);
    return CLI_OK;
}

static int cgw_create(struct cli *cli, int argc, char **argv)
{
    const char *ip = NULL, *device = NULL;
    long long asn = 0;
    struct cli_tags tags = {.n = 0};
    const struct cli_opt opts[] = {
        CLI_STR("ip", &ip),
        CLI_INT("asn", &asn, 1, 4294967295LL, "--asn must be 1-4294967295"),
        CLI_STR("device-name", &device),
        CLI_FN("tag", &tags, cli_add_tag, "--tag needs KEY=VALUE"),
    };
    if (cli_parse_opts(argc, argv, cli->prefix, opts, CLI_N_OPTS(opts), "invalid option") < 0 ||
        cli_no_more_args(argc, argv, cli->prefix) != CLI_OK) {
        return CLI_USAGE;
    }
    if (!ip) {
        return cli_usage_error(cli->prefix, "--ip is required");
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    return print_cgw(
        cli, nubo_customer_gateway_create(client, ip, asn, device, tags.items, tags.n, &err), &err);
}

static int cgw_list(struct cli *cli, int argc, char **argv)
{
    struct cli_filters f = {.n = 0};
    int rc = list_args(cli, argc, argv, &f);
    struct nubo_client *client = rc ? NULL : cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_customer_gateway_list *l = nubo_customer_gateways_list(client, f.items, f.n, &err);
    if (!l) {
        return cli_fail(&err);
    }
    struct cli_table t = {5, cgw_cols, NULL, 0, 0};
    cli_print_list(cli, &t, l->items, l->n, sizeof *l->items, cgw_row);
    nubo_customer_gateway_list_free(l);
    return CLI_OK;
}

static int cgw_show(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client =
        cli_args_client(cli, argc, argv, 1, "one customer gateway id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    return print_cgw(cli, nubo_customer_gateway_get(client, argv[optind], &err), &err);
}

static int cgw_delete(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client =
        cli_args_client(cli, argc, argv, 1, "one customer gateway id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    if (nubo_customer_gateway_delete(client, argv[optind], &err) < 0) {
        return cli_fail(&err);
    }
    return print_deleted(cli, "deleted customer gateway", argv[optind]);
}

/* --- vpn connection -------------------------------------------------------------------------- */

static const char *const vpn_cols[] = {"id",         "state", "vpn_gateway", "customer_gateway",
                                       "outside_ip", "routes"};

/* The static routes as "a,b" into a new string the caller free()s. */
static char *routes_text(const struct nubo_vpn_connection *v)
{
    size_t len = 1;
    for (size_t i = 0; i < v->n_routes; i++) {
        len += strlen(v->routes[i]) + 1;
    }
    char *s = calloc(1, len);
    for (size_t i = 0; s && i < v->n_routes; i++) {
        if (i) {
            strcat(s, ",");
        }
        strcat(s, v->routes[i]);
    }
    return s;
}

static const char *vpn_row(struct cli_table *t, const void *item)
{
    const struct nubo_vpn_connection *v = item;
    char *routes = routes_text(v);
    const char *cells[] = {v->id,         v->state, v->vpn_gateway_id, v->customer_gateway_id,
                           v->outside_ip, routes};
    cli_table_add(t, cells);
    free(routes);
    return v->json;
}

/* Prints a connection's fields, then (for 'show' in a table) its customer gateway
 * configuration, from which the customer's device is set up. */
static int print_vpn(const struct cli *cli, struct nubo_vpn_connection *v, bool config,
                     const struct nubo_error *err)
{
    if (!v) {
        return cli_fail(err);
    }
    char *routes = routes_text(v);
    char *tags = cli_tags_text(v->tags, v->n_tags);
    const char *pairs[] = {"id",
                           v->id,
                           "state",
                           v->state,
                           "vpn_gateway",
                           v->vpn_gateway_id,
                           "customer_gateway",
                           v->customer_gateway_id,
                           "outside_ip",
                           v->outside_ip,
                           "customer_ip",
                           v->customer_ip,
                           "vpc_cidr",
                           v->vpc_cidr,
                           "routes",
                           routes,
                           "tunnel",
                           v->tunnel_status,
                           "pre_shared_key",
                           v->pre_shared_key,
                           "tags",
                           tags};
    print_item(cli, v->json, pairs, sizeof pairs / sizeof pairs[0] / 2);
    if (config && !cli->json && v->configuration) {
        printf("\n%s", v->configuration);
    }
    free(routes);
    free(tags);
    nubo_vpn_connection_free(v);
    return CLI_OK;
}

static int vpn_create(struct cli *cli, int argc, char **argv)
{
    const char *cgw = NULL, *vgw = NULL;
    struct cli_tags tags = {.n = 0};
    const struct cli_opt opts[] = {
        CLI_STR("customer-gateway", &cgw),
        CLI_STR("vpn-gateway", &vgw),
        CLI_FN("tag", &tags, cli_add_tag, "--tag needs KEY=VALUE"),
    };
    if (cli_parse_opts(argc, argv, cli->prefix, opts, CLI_N_OPTS(opts), "invalid option") < 0 ||
        cli_no_more_args(argc, argv, cli->prefix) != CLI_OK) {
        return CLI_USAGE;
    }
    if (!cgw || !vgw) {
        return cli_usage_error(cli->prefix, "--customer-gateway and --vpn-gateway are required");
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    return print_vpn(cli, nubo_vpn_connection_create(client, cgw, vgw, tags.items, tags.n, &err),
                     false, &err);
}

static int vpn_list(struct cli *cli, int argc, char **argv)
{
    struct cli_filters f = {.n = 0};
    int rc = list_args(cli, argc, argv, &f);
    struct nubo_client *client = rc ? NULL : cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_vpn_connection_list *l = nubo_vpn_connections_list(client, f.items, f.n, &err);
    if (!l) {
        return cli_fail(&err);
    }
    struct cli_table t = {6, vpn_cols, NULL, 0, 0};
    cli_print_list(cli, &t, l->items, l->n, sizeof *l->items, vpn_row);
    nubo_vpn_connection_list_free(l);
    return CLI_OK;
}

static int vpn_show(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one VPN connection id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    return print_vpn(cli, nubo_vpn_connection_get(client, argv[optind], &err), true, &err);
}

/* "vpn connection route-add|route-remove VPN_ID --cidr CIDR": the verb says which. */
static int vpn_route(struct cli *cli, int argc, char **argv)
{
    const char *cidr = NULL;
    const struct cli_opt opts[] = {CLI_STR("cidr", &cidr)};
    int rc;
    struct nubo_client *client =
        id_and_opts(cli, argc, argv, opts, CLI_N_OPTS(opts), "one VPN connection id", &rc);
    if (!client) {
        return rc;
    }
    if (!cidr) {
        return cli_usage_error(cli->prefix, "--cidr is required");
    }
    struct nubo_error err;
    bool add = !strcmp(cli->cmd->verb, "route-add");
    return print_vpn(cli, nubo_vpn_connection_route(client, argv[optind], cidr, add, &err), false,
                     &err);
}

static int vpn_delete(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one VPN connection id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    if (nubo_vpn_connection_delete(client, argv[optind], &err) < 0) {
        return cli_fail(&err);
    }
    return print_deleted(cli, "deleted VPN connection", argv[optind]);
}

#define TAG_HELP    "  --tag KEY=VALUE        a tag (repeatable)\n"
#define FILTER_HELP "  --filter NAME=V1,V2    "

const struct cli_cmd cli_network_edge_cmds[] = {
    {"address", "allocate", address_allocate, "[--tag KEY=VALUE]...",
     "allocate an elastic IP from the cloud's public pool", TAG_HELP},
    {"address", "list", address_list, "[--filter NAME=V1,V2]...", "list your elastic IPs",
     FILTER_HELP "allocation-id, public-ip, instance-id, association-id, tag:KEY\n"},
    {"address", "show", address_show, "ALLOCATION_ID", "show one elastic IP", NULL},
    {"address", "associate", address_associate,
     "ALLOCATION_ID (--instance ID | --interface ENI_ID) [--allow-reassociation]",
     "associate an elastic IP with an instance (its VPC needs an internet gateway)",
     "  --instance ID          the instance (its interface)\n"
     "  --interface ENI_ID     a network interface\n"
     "  --allow-reassociation  move it from where it is associated\n"},
    {"address", "disassociate", address_disassociate, "ALLOCATION_ID", "disassociate an elastic IP",
     NULL},
    {"address", "release", address_release, "ALLOCATION_ID",
     "release an elastic IP that is not associated", NULL},
    {"vpn gateway", "create", vgw_create, "[--asn N] [--tag KEY=VALUE]...",
     "create a VPN gateway (the VPC's side of site-to-site VPN)",
     "  --asn N                its BGP ASN (default 64512)\n" TAG_HELP},
    {"vpn gateway", "list", vgw_list, "[--filter NAME=V1,V2]...", "list your VPN gateways",
     FILTER_HELP "vpn-gateway-id, state, attachment.vpc-id, tag:KEY\n"},
    {"vpn gateway", "show", vgw_show, "VGW_ID", "show one VPN gateway", NULL},
    {"vpn gateway", "attach", vgw_attachment, "VGW_ID --vpc VPC_ID",
     "attach a VPN gateway to a VPC (one per VPC)", "  --vpc VPC_ID           the VPC\n"},
    {"vpn gateway", "detach", vgw_attachment, "VGW_ID --vpc VPC_ID",
     "detach a VPN gateway from its VPC", "  --vpc VPC_ID           the VPC\n"},
    {"vpn gateway", "delete", vgw_delete, "VGW_ID",
     "delete a detached VPN gateway without connections", NULL},
    {"vpn customer-gateway", "create", cgw_create, "--ip ADDRESS [--asn N] [OPTIONS]",
     "create a customer gateway (your device's side)",
     "  --ip ADDRESS           the device's public IPv4 address (required)\n"
     "  --asn N                its BGP ASN (default 65000)\n"
     "  --device-name NAME     a name for the device\n" TAG_HELP},
    {"vpn customer-gateway", "list", cgw_list, "[--filter NAME=V1,V2]...",
     "list your customer gateways",
     FILTER_HELP "customer-gateway-id, ip-address, bgp-asn, state, tag:KEY\n"},
    {"vpn customer-gateway", "show", cgw_show, "CGW_ID", "show one customer gateway", NULL},
    {"vpn customer-gateway", "delete", cgw_delete, "CGW_ID",
     "delete a customer gateway no connection uses", NULL},
    {"vpn connection", "create", vpn_create,
     "--customer-gateway CGW_ID --vpn-gateway VGW_ID [--tag KEY=VALUE]...",
     "create a VPN connection: one IPsec tunnel with static routes",
     "  --customer-gateway CGW_ID  your side (required)\n"
     "  --vpn-gateway VGW_ID       the VPC's side (required)\n" TAG_HELP},
    {"vpn connection", "list", vpn_list, "[--filter NAME=V1,V2]...", "list your VPN connections",
     FILTER_HELP "vpn-connection-id, state, vpn-gateway-id, customer-gateway-id, tag:KEY\n"},
    {"vpn connection", "show", vpn_show, "VPN_ID",
     "show a VPN connection and its customer gateway configuration", NULL},
    {"vpn connection", "route-add", vpn_route, "VPN_ID --cidr CIDR",
     "add a static route: a network of yours behind the tunnel",
     "  --cidr CIDR            the network (required)\n"},
    {"vpn connection", "route-remove", vpn_route, "VPN_ID --cidr CIDR", "remove a static route",
     "  --cidr CIDR            the network (required)\n"},
    {"vpn connection", "delete", vpn_delete, "VPN_ID", "delete a VPN connection", NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
