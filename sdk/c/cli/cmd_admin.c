/* The operator's commands (nubo admin ...): tenants, users, access keys, quotas and the request
 * log. They need a key with the admin role; others exit 4. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void getopt_reset(void)
{
    optind = 0;
    opterr = 1;
}

/* Checks that 'argv' has no options and exactly 'n' arguments; returns CLI_OK or CLI_USAGE. */
static int positional(int argc, char **argv, int n, const char *cmd, const char *what)
{
    static const struct option none[] = {{NULL, 0, NULL, 0}};
    getopt_reset();
    if (getopt_long(argc, argv, "", none, NULL) != -1) {
        return cli_usage_error(cmd, "invalid option");
    }
    if (argc - optind != n) {
        return cli_usage_error(cmd, "expected %s", what);
    }
    return CLI_OK;
}

/* Prints one JSON text (--output json) or a one-row table of 'cells'. */
static void print_one(const struct cli *cli, const char *json, size_t n_cols,
                      const char *const *cols, const char *const *cells)
{
    if (cli->json) {
        struct cli_json *j = cli_json_new(false);
        cli_json_add(j, json);
        cli_json_print(j);
        return;
    }
    struct cli_table t = {n_cols, cols, NULL, 0, 0};
    cli_table_add(&t, cells);
    cli_table_print(&t);
}

/* --- tenants -------------------------------------------------------------------------------- */

static int tenant_create(struct cli *cli, int argc, char **argv)
{
    int rc = positional(argc, argv, 1, "admin tenant create ", "one tenant name");
    struct nubo_client *client = rc ? NULL : cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_tenant *t = nubo_admin_tenant_create(client, argv[optind], &err);
    if (!t) {
        return cli_fail(&err);
    }
    static const char *const cols[] = {"tenant_id", "name"};
    const char *cells[] = {t->tenant_id, t->name};
    print_one(cli, t->json, 2, cols, cells);
    nubo_tenant_free(t);
    return CLI_OK;
}

static int tenant_list(struct cli *cli, int argc, char **argv)
{
    int rc = positional(argc, argv, 0, "admin tenant list ", "no arguments");
    struct nubo_client *client = rc ? NULL : cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_tenant_list *l = nubo_admin_tenants_list(client, &err);
    if (!l) {
        return cli_fail(&err);
    }
    static const char *const cols[] = {"tenant_id", "name", "enabled", "instances", "created"};
    struct cli_table t = {5, cols, NULL, 0, 0};
    struct cli_json *j = cli_json_new(true);
    for (size_t i = 0; i < l->n; i++) {
        char n[24];
        snprintf(n, sizeof n, "%lld", l->items[i].instances);
        const char *cells[] = {l->items[i].tenant_id, l->items[i].name,
                               l->items[i].enabled ? "yes" : "no", n, l->items[i].created_at};
        cli_table_add(&t, cells);
        cli_json_add(j, l->items[i].json);
    }
    if (cli->json) {
        cli_json_print(j);
        cli_table_free(&t);
    } else {
        cli_json_free(j);
        cli_table_print(&t);
    }
    nubo_tenant_list_free(l);
    return CLI_OK;
}

static int set_enabled(struct cli *cli, int argc, char **argv, enum nubo_admin_kind kind,
                       bool enabled, const char *cmd)
{
    static const char *const what[] = {"one tenant id", "one user id", "one access key id"};
    static const char *const nouns[] = {"tenant", "user", "key"};
    int rc = positional(argc, argv, 1, cmd, what[kind]);
    struct nubo_client *client = rc ? NULL : cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    if (nubo_admin_set_enabled(client, kind, argv[optind], enabled, &err) < 0) {
        return cli_fail(&err);
    }
    if (cli->json) {
        printf("{\"id\": \"%s\", \"enabled\": %s}\n", argv[optind], enabled ? "true" : "false");
    } else {
        printf("%s %s %s\n", nouns[kind], argv[optind], enabled ? "enabled" : "disabled");
    }
    return CLI_OK;
}

static int tenant_enable(struct cli *cli, int argc, char **argv)
{
    return set_enabled(cli, argc, argv, NUBO_ADMIN_TENANT, true, "admin tenant enable ");
}

static int tenant_disable(struct cli *cli, int argc, char **argv)
{
    return set_enabled(cli, argc, argv, NUBO_ADMIN_TENANT, false, "admin tenant disable ");
}

/* --- users and keys ------------------------------------------------------------------------- */

static int user_create(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"role", required_argument, NULL, 'r'},
                                         {NULL, 0, NULL, 0}};
    const char *role = NULL;
    int c;
    getopt_reset();
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c != 'r') {
            return cli_usage_error("admin user create ", "invalid option");
        }
        role = optarg;
    }
    if (argc - optind != 2) {
        return cli_usage_error("admin user create ", "expected TENANT_ID NAME");
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_user *u =
        nubo_admin_user_create(client, argv[optind], argv[optind + 1], role, &err);
    if (!u) {
        return cli_fail(&err);
    }
    static const char *const cols[] = {"user_id", "tenant_id", "name", "role"};
    const char *cells[] = {u->user_id, u->tenant_id, u->name, u->role};
    print_one(cli, u->json, 4, cols, cells);
    nubo_user_free(u);
    return CLI_OK;
}

static int user_enable(struct cli *cli, int argc, char **argv)
{
    return set_enabled(cli, argc, argv, NUBO_ADMIN_USER, true, "admin user enable ");
}

static int user_disable(struct cli *cli, int argc, char **argv)
{
    return set_enabled(cli, argc, argv, NUBO_ADMIN_USER, false, "admin user disable ");
}

static int key_create(struct cli *cli, int argc, char **argv)
{
    int rc = positional(argc, argv, 1, "admin key create ", "one user id");
    struct nubo_client *client = rc ? NULL : cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_access_key *k = nubo_admin_key_create(client, argv[optind], &err);
    if (!k) {
        return cli_fail(&err);
    }
    static const char *const cols[] = {"access_key_id", "secret_access_key", "user_id"};
    const char *cells[] = {k->access_key_id, k->secret_access_key, k->user_id};
    print_one(cli, k->json, 3, cols, cells);
    nubo_access_key_free(k);
    return CLI_OK;
}

static int key_enable(struct cli *cli, int argc, char **argv)
{
    return set_enabled(cli, argc, argv, NUBO_ADMIN_KEY, true, "admin key enable ");
}

static int key_disable(struct cli *cli, int argc, char **argv)
{
    return set_enabled(cli, argc, argv, NUBO_ADMIN_KEY, false, "admin key disable ");
}

/* --- quotas --------------------------------------------------------------------------------- */

static void print_quota(const struct cli *cli, const struct nubo_quota *q)
{
    char v[5][24];
    snprintf(v[0], sizeof v[0], "%lld", q->max_instances);
    snprintf(v[1], sizeof v[1], "%lld", q->max_vcpus);
    snprintf(v[2], sizeof v[2], "%lld", q->max_memory_mib);
    snprintf(v[3], sizeof v[3], "%lld", q->max_elastic_ips);
    snprintf(v[4], sizeof v[4], "%lld", q->max_image_bytes);
    if (cli->json) {
        printf("{\n  \"tenant_id\": \"%s\",\n  \"max_instances\": %s,\n  \"max_vcpus\": %s,\n"
               "  \"max_memory_mib\": %s,\n  \"max_elastic_ips\": %s,\n"
               "  \"max_image_bytes\": %s\n}\n",
               q->tenant_id, v[0], v[1], v[2], v[3], v[4]);
        return;
    }
    static const char *const cols[] = {"field", "value"};
    struct cli_table t = {2, cols, NULL, 0, 0};
    const char *rows[][2] = {{"tenant_id", q->tenant_id}, {"max_instances", v[0]},
                             {"max_vcpus", v[1]},         {"max_memory_mib", v[2]},
                             {"max_elastic_ips", v[3]},   {"max_image_bytes", v[4]}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        cli_table_add(&t, rows[i]);
    }
    cli_table_print(&t);
}

static int quota_show(struct cli *cli, int argc, char **argv)
{
    int rc = positional(argc, argv, 1, "admin quota show ", "one tenant id");
    struct nubo_client *client = rc ? NULL : cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_quota q;
    if (nubo_admin_quota_get(client, argv[optind], &q, &err) < 0) {
        return cli_fail(&err);
    }
    print_quota(cli, &q);
    return CLI_OK;
}

static int quota_set(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"max-instances", required_argument, NULL, 0},
                                         {"max-vcpus", required_argument, NULL, 1},
                                         {"max-memory-mib", required_argument, NULL, 2},
                                         {"max-elastic-ips", required_argument, NULL, 3},
                                         {"max-image-bytes", required_argument, NULL, 4},
                                         {NULL, 0, NULL, 0}};
    struct nubo_quota set = {"", -1, -1, -1, -1, -1};
    long long *slots[] = {&set.max_instances, &set.max_vcpus, &set.max_memory_mib,
                          &set.max_elastic_ips, &set.max_image_bytes};
    int c, given = 0;
    getopt_reset();
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c < 0 || c > 4 || cli_parse_int(optarg, 0, 1LL << 62, slots[c]) < 0) {
            return cli_usage_error("admin quota set ", "invalid option or value");
        }
        given++;
    }
    if (argc - optind != 1 || !given) {
        return cli_usage_error("admin quota set ", "expected TENANT_ID and at least one --max-*");
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_quota q;
    if (nubo_admin_quota_set(client, argv[optind], &set, &q, &err) < 0) {
        return cli_fail(&err);
    }
    print_quota(cli, &q);
    return CLI_OK;
}

/* --- the request log ------------------------------------------------------------------------ */

/* Reads a time: microseconds since the epoch, or "YYYY-MM-DDTHH:MM:SS[Z]" (UTC). */
static int parse_time_us(const char *text, long long *out)
{
    if (cli_parse_int(text, 0, 1LL << 62, out) == 0) {
        return 0;
    }
    struct tm tm = {0};
    const char *end = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end || (*end && strcmp(end, "Z"))) {
        return -1;
    }
    *out = (long long)timegm(&tm) * 1000000LL;
    return 0;
}

static int requests(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"tenant", required_argument, NULL, 't'},     {"action", required_argument, NULL, 'a'},
        {"error-code", required_argument, NULL, 'e'}, {"errors-only", no_argument, NULL, 'E'},
        {"from", required_argument, NULL, 'f'},       {"to", required_argument, NULL, 'T'},
        {"limit", required_argument, NULL, 'l'},      {NULL, 0, NULL, 0}};
    struct nubo_request_query q = {0};
    long long limit = 0;
    int c;
    getopt_reset();
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 't':
            q.tenant_id = optarg;
            break;
        case 'a':
            q.action = optarg;
            break;
        case 'e':
            q.error_code = optarg;
            break;
        case 'E':
            q.errors_only = true;
            break;
        case 'f':
            bad = parse_time_us(optarg, &q.from_us);
            break;
        case 'T':
            bad = parse_time_us(optarg, &q.to_us);
            break;
        case 'l':
            bad = cli_parse_int(optarg, 1, 1000, &limit);
            break;
        default:
            bad = -1;
        }
        if (bad) {
            return cli_usage_error("admin requests ", "invalid option or value");
        }
    }
    if (optind < argc) {
        return cli_usage_error("admin requests ", "unexpected argument \"%s\"", argv[optind]);
    }
    q.limit = (int)limit;
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_request_list *l = nubo_admin_requests(client, &q, &err);
    if (!l) {
        return cli_fail(&err);
    }
    static const char *const cols[] = {"time",  "request_id", "tenant", "status",
                                       "error", "latency_us", "action"};
    struct cli_table t = {7, cols, NULL, 0, 0};
    struct cli_json *j = cli_json_new(true);
    for (size_t i = 0; i < l->n; i++) {
        const struct nubo_request_record *r = &l->items[i];
        char st[16], lat[24];
        snprintf(st, sizeof st, "%d", r->http_status);
        snprintf(lat, sizeof lat, "%lld", r->latency_us);
        const char *cells[] = {r->time,       r->request_id, r->tenant_id, st,
                               r->error_code, lat,           r->action};
        cli_table_add(&t, cells);
        cli_json_add(j, r->json);
    }
    if (cli->json) {
        cli_json_print(j);
        cli_table_free(&t);
    } else {
        cli_json_free(j);
        cli_table_print(&t);
    }
    nubo_request_list_free(l);
    return CLI_OK;
}

const struct cli_cmd cli_admin_cmds[] = {
    {"admin tenant", "create", tenant_create, "NAME", "create a tenant (default quota, no users)",
     NULL},
    {"admin tenant", "list", tenant_list, "", "list every tenant", NULL},
    {"admin tenant", "enable", tenant_enable, "TENANT_ID", "enable a tenant", NULL},
    {"admin tenant", "disable", tenant_disable, "TENANT_ID",
     "disable a tenant: its keys stop working", NULL},
    {"admin user", "create", user_create, "TENANT_ID NAME [--role admin|member|reader]",
     "create a user", "  --role ROLE            admin, member (default) or reader\n"},
    {"admin user", "enable", user_enable, "USER_ID", "enable a user", NULL},
    {"admin user", "disable", user_disable, "USER_ID", "disable a user", NULL},
    {"admin key", "create", key_create, "USER_ID",
     "create an access key; its secret is shown this once", NULL},
    {"admin key", "enable", key_enable, "ACCESS_KEY_ID", "enable an access key", NULL},
    {"admin key", "disable", key_disable, "ACCESS_KEY_ID", "disable an access key", NULL},
    {"admin quota", "show", quota_show, "TENANT_ID", "show a tenant's quota", NULL},
    {"admin quota", "set", quota_set, "TENANT_ID --max-...=N...",
     "change some fields of a tenant's quota",
     "  --max-instances N\n  --max-vcpus N\n  --max-memory-mib N\n  --max-elastic-ips N\n"
     "  --max-image-bytes N\n"},
    {"admin", "requests", requests, "[FILTERS]", "query the request log, newest first",
     "  --tenant TENANT_ID     only this tenant's requests\n"
     "  --action ACTION        exact: RunInstances, \"POST /v1/instances\"\n"
     "  --error-code CODE      only answers with this error code\n"
     "  --errors-only          only failed requests\n"
     "  --from TIME            microseconds since the epoch or YYYY-MM-DDTHH:MM:SSZ (inclusive)\n"
     "  --to TIME              the same, exclusive\n"
     "  --limit N              1-1000 (default 100)\n"},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
