/* The operator's compute hosts (nubo admin host ...): list, show, create, update, delete and
 * evacuate. They need a key with the admin role; others exit 4. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TRAITS 64

/* --cpu-ratio R: a positive number into the double 'dest'. */
static int parse_ratio(char *arg, void *dest)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno || end == arg || *end || !isfinite(v) || v <= 0 || v > 1000) {
        return -1;
    }
    *(double *)dest = v;
    return 0;
}

/* The traits of --traits T1,T2 ("" for none), split in place. */
struct trait_buf {
    const char *items[MAX_TRAITS];
    size_t n;
    bool given;
};

static int parse_traits(char *arg, void *dest)
{
    struct trait_buf *b = dest;
    b->n = 0;
    b->given = true;
    for (char *save = NULL, *t = strtok_r(arg, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (b->n == MAX_TRAITS) {
            return -1;
        }
        b->items[b->n++] = t;
    }
    return 0;
}

/* --dedicated-tenant ID, or "none" (or "") for a shared host. */
static int parse_dedicated(char *arg, void *dest)
{
    *(const char **)dest = !strcmp(arg, "none") ? "" : arg;
    return 0;
}

/* --state up|disabled|draining. */
static int parse_state(char *arg, void *dest)
{
    if (strcmp(arg, "up") && strcmp(arg, "disabled") && strcmp(arg, "draining")) {
        return -1;
    }
    *(const char **)dest = arg;
    return 0;
}

/* "16/64": what is used of what there is. */
static void used_of(char *buf, size_t size, long long used, long long capacity)
{
    snprintf(buf, size, "%lld/%lld", used, capacity);
}

static char *traits_text(const struct nubo_host *h)
{
    size_t len = 1;
    for (size_t i = 0; i < h->n_traits; i++) {
        len += strlen(h->traits[i]) + 1;
    }
    char *s = malloc(len);
    if (!s) {
        return NULL;
    }
    s[0] = '\0';
    for (size_t i = 0; i < h->n_traits; i++) {
        if (i) {
            strcat(s, ",");
        }
        strcat(s, h->traits[i]);
    }
    return s;
}

static const char *const host_cols[] = {"id",        "name",     "zone",       "state",
                                        "simulated", "vcpus",    "memory_mib", "disk_gib",
                                        "instances", "dedicated"};

static const char *host_row(struct cli_table *t, const void *item)
{
    const struct nubo_host *h = item;
    char v[48], m[48], d[48], n[24];
    used_of(v, sizeof v, h->used.vcpus, h->capacity.vcpus);
    used_of(m, sizeof m, h->used.memory_mib, h->capacity.memory_mib);
    used_of(d, sizeof d, h->used.disk_gib, h->capacity.disk_gib);
    snprintf(n, sizeof n, "%lld", h->used_instances);
    const char *cells[] = {h->id, h->name, h->zone, h->state, h->simulated ? "yes" : "no",
                           v,     m,       d,       n,        h->dedicated_tenant};
    cli_table_add(t, cells);
    return h->json;
}

/* Prints one host: its JSON, or a field table (with the node token when the answer has one). */
static void print_host(const struct cli *cli, const struct nubo_host *h)
{
    if (cli->json) {
        struct cli_json *j = cli_json_new(false);
        cli_json_add(j, h->json);
        cli_json_print(j);
        return;
    }
    char num[12][64];
    const struct nubo_host_resources *res[] = {&h->capacity, &h->reserved, &h->used};
    for (size_t i = 0; i < 3; i++) {
        snprintf(num[3 * i], sizeof num[0], "%lld", res[i]->vcpus);
        snprintf(num[3 * i + 1], sizeof num[0], "%lld", res[i]->memory_mib);
        snprintf(num[3 * i + 2], sizeof num[0], "%lld", res[i]->disk_gib);
    }
    snprintf(num[9], sizeof num[0], "%lld", h->used_instances);
    snprintf(num[10], sizeof num[0], "cpu=%g memory=%g disk=%g", h->cpu_ratio, h->memory_ratio,
             h->disk_ratio);
    snprintf(num[11], sizeof num[0], "%.2f", h->cpu_load);
    char *traits = traits_text(h);
    const char *pairs[] = {"id",
                           h->id,
                           "name",
                           h->name,
                           "zone",
                           h->zone,
                           "state",
                           h->state,
                           "state_reason",
                           h->state_reason,
                           "simulated",
                           h->simulated ? "yes" : "no",
                           "agent_url",
                           h->agent_url,
                           "vcpus",
                           num[0],
                           "memory_mib",
                           num[1],
                           "disk_gib",
                           num[2],
                           "reserved_vcpus",
                           num[3],
                           "reserved_memory_mib",
                           num[4],
                           "reserved_disk_gib",
                           num[5],
                           "used_vcpus",
                           num[6],
                           "used_memory_mib",
                           num[7],
                           "used_disk_gib",
                           num[8],
                           "instances",
                           num[9],
                           "ratios",
                           num[10],
                           "traits",
                           traits,
                           "dedicated_tenant",
                           h->dedicated_tenant,
                           "cpu_load",
                           num[11],
                           "last_heartbeat",
                           h->last_heartbeat,
                           "node_token",
                           h->node_token};
    size_t n = sizeof pairs / sizeof pairs[0] / 2;
    cli_print_fields(pairs, h->node_token ? n : n - 1);
    free(traits);
}

static int host_list(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 0, "no arguments", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_host_list *l = nubo_admin_hosts_list(client, &err);
    if (!l) {
        return cli_fail(&err);
    }
    struct cli_table t = {10, host_cols, NULL, 0, 0};
    cli_print_list(cli, &t, l->items, l->n, sizeof *l->items, host_row);
    nubo_host_list_free(l);
    return CLI_OK;
}

static int host_show(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one host id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_host *h = nubo_admin_host_get(client, argv[optind], &err);
    if (!h) {
        return cli_fail(&err);
    }
    print_host(cli, h);
    nubo_host_free(h);
    return CLI_OK;
}

/* The options create and update share, in 'opts' from index 0; returns how many there are. */
static size_t shared_opts(struct cli_opt *opts, struct nubo_host_params *p, struct trait_buf *tr)
{
    const long long max = 1LL << 40;
    const struct cli_opt o[] = {
        CLI_INT("vcpus", &p->vcpus, 0, max, "--vcpus must be a number >= 0"),
        CLI_INT("memory-mib", &p->memory_mib, 0, max, "--memory-mib must be a number >= 0"),
        CLI_INT("disk-gib", &p->disk_gib, 0, max, "--disk-gib must be a number >= 0"),
        CLI_INT("reserved-vcpus", &p->reserved_vcpus, 0, max, "--reserved-vcpus must be >= 0"),
        CLI_INT("reserved-memory-mib", &p->reserved_memory_mib, 0, max,
                "--reserved-memory-mib must be >= 0"),
        CLI_INT("reserved-disk-gib", &p->reserved_disk_gib, 0, max,
                "--reserved-disk-gib must be >= 0"),
        CLI_FN("cpu-ratio", &p->cpu_ratio, parse_ratio, "--cpu-ratio must be a number > 0"),
        CLI_FN("memory-ratio", &p->memory_ratio, parse_ratio,
               "--memory-ratio must be a number > 0"),
        CLI_FN("disk-ratio", &p->disk_ratio, parse_ratio, "--disk-ratio must be a number > 0"),
        CLI_FN("traits", tr, parse_traits, "--traits takes at most 64 comma-separated traits"),
        CLI_FN("dedicated-tenant", &p->dedicated_tenant, parse_dedicated, NULL),
    };
    memcpy(opts, o, sizeof o);
    return CLI_N_OPTS(o);
}

static int host_create(struct cli *cli, int argc, char **argv)
{
    const char *cmd = "admin host create ";
    struct nubo_host_params p;
    struct trait_buf tr = {.n = 0};
    nubo_host_params_init(&p);
    struct cli_opt opts[CLI_MAX_OPTS];
    size_t n = shared_opts(opts, &p, &tr);
    opts[n++] = (struct cli_opt)CLI_STR("zone", &p.zone);
    opts[n++] = (struct cli_opt)CLI_FLAG("simulated", &p.simulated);
    opts[n++] = (struct cli_opt)CLI_STR("agent-url", &p.agent_url);
    if (cli_parse_opts(argc, argv, cmd, opts, n, "invalid option") < 0) {
        return CLI_USAGE;
    }
    if (argc - optind != 1) {
        return cli_usage_error(cmd, "expected one host name");
    }
    p.name = argv[optind];
    if (tr.given) {
        p.traits = tr.items;
        p.n_traits = tr.n;
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_host *h = nubo_admin_host_create(client, &p, &err);
    if (!h) {
        return cli_fail(&err);
    }
    print_host(cli, h);
    if (h->node_token && !cli->json) {
        fputs("nubo: the node token is shown this once: give it to the host's agent "
              "(agent.token)\n",
              stderr);
    }
    nubo_host_free(h);
    return CLI_OK;
}

static int host_update(struct cli *cli, int argc, char **argv)
{
    const char *cmd = "admin host update ";
    struct nubo_host_params p;
    struct trait_buf tr = {.n = 0};
    nubo_host_params_init(&p);
    struct cli_opt opts[CLI_MAX_OPTS];
    size_t n = shared_opts(opts, &p, &tr);
    opts[n++] = (struct cli_opt)CLI_FN("state", &p.state, parse_state,
                                       "--state must be up, disabled or draining");
    int given = cli_parse_opts(argc, argv, cmd, opts, n, "invalid option");
    if (given < 0) {
        return CLI_USAGE;
    }
    if (argc - optind != 1 || !given) {
        return cli_usage_error(cmd, "expected HOST_ID and at least one option");
    }
    if (tr.given) {
        p.traits = tr.items;
        p.n_traits = tr.n;
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_host *h = nubo_admin_host_update(client, argv[optind], &p, &err);
    if (!h) {
        return cli_fail(&err);
    }
    print_host(cli, h);
    nubo_host_free(h);
    return CLI_OK;
}

static int host_delete(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one host id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    if (nubo_admin_host_delete(client, argv[optind], &err) < 0) {
        return cli_fail(&err);
    }
    if (cli->json) {
        printf("{\"deleted\": true}\n");
    } else {
        printf("deleted host %s\n", argv[optind]);
    }
    return CLI_OK;
}

static int host_evacuate(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one host id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_evacuation *e = nubo_admin_host_evacuate(client, argv[optind], &err);
    if (!e) {
        return cli_fail(&err);
    }
    if (cli->json) {
        struct cli_json *j = cli_json_new(false);
        cli_json_add(j, e->json);
        cli_json_print(j);
    } else {
        printf("host %s: %zu instance%s handed back to the scheduler\n", e->host_id, e->n_instances,
               e->n_instances == 1 ? "" : "s");
        for (size_t i = 0; i < e->n_instances; i++) {
            printf("%s\n", e->instances[i]);
        }
    }
    nubo_evacuation_free(e);
    return CLI_OK;
}

#define HOST_SHARED_HELP                                                                           \
    "  --vcpus N              capacity (simulated hosts; a real one's agent reports it)\n"         \
    "  --memory-mib N\n"                                                                           \
    "  --disk-gib N\n"                                                                             \
    "  --reserved-vcpus N     kept back for the host itself\n"                                     \
    "  --reserved-memory-mib N\n"                                                                  \
    "  --reserved-disk-gib N\n"                                                                    \
    "  --cpu-ratio R          allocation ratios (default 4, 1, 1)\n"                               \
    "  --memory-ratio R\n"                                                                         \
    "  --disk-ratio R\n"                                                                           \
    "  --traits T1,T2         the host's traits (all of them; \"\" for none)\n"                    \
    "  --dedicated-tenant ID  only this tenant's instances land here (none: shared)\n"

const struct cli_cmd cli_host_cmds[] = {
    {"admin host", "list", host_list, "", "list compute hosts, with what is used of each", NULL},
    {"admin host", "show", host_show, "HOST_ID", "show a compute host", NULL},
    {"admin host", "create", host_create, "NAME [--simulated] [OPTIONS]",
     "register a compute host; a real host's node token is shown this once",
     "  --zone ZONE            its availability zone (default: the first)\n"
     "  --simulated            no agent: the scheduler plays it with the capacity given\n"
     "  --agent-url URL        where its agent listens\n" HOST_SHARED_HELP},
    {"admin host", "update", host_update, "HOST_ID [--state up|disabled|draining] [OPTIONS]",
     "change a host's state, capacity, reservations, ratios, traits or dedication",
     "  --state STATE          up, disabled (gets nothing new) or draining\n" HOST_SHARED_HELP},
    {"admin host", "delete", host_delete, "HOST_ID", "remove a host that holds no live instance",
     NULL},
    {"admin host", "evacuate", host_evacuate, "HOST_ID",
     "hand a down or disabled host's instances back to the scheduler", NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
