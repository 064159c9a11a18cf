/* The operator's commands (nubo admin ...): tenants, users, access keys, instance types, quotas
 * and the request log. They need a key with the admin role; others exit 4. Also "nubo password",
 * a user's own console password, read from standard input like the admin's "user password". */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* --- tenants -------------------------------------------------------------------------------- */

static int tenant_create(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one tenant name", &rc);
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
    cli_print_one(cli, t->json, 2, cols, cells);
    nubo_tenant_free(t);
    return CLI_OK;
}

static const char *tenant_row(struct cli_table *t, const void *item)
{
    const struct nubo_tenant *tn = item;
    char n[24];
    snprintf(n, sizeof n, "%lld", tn->instances);
    const char *cells[] = {tn->tenant_id, tn->name, tn->enabled ? "yes" : "no", n, tn->created_at};
    cli_table_add(t, cells);
    return tn->json;
}

static int tenant_list(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 0, "no arguments", &rc);
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
    cli_print_list(cli, &t, l->items, l->n, sizeof *l->items, tenant_row);
    nubo_tenant_list_free(l);
    return CLI_OK;
}

/* "admin tenant|user|key enable|disable ID": the group names the kind, the verb the state. */
static int set_enabled(struct cli *cli, int argc, char **argv)
{
    static const struct {
        const char *group;
        enum nubo_admin_kind kind;
        const char *what, *noun;
    } kinds[] = {{"admin tenant", NUBO_ADMIN_TENANT, "one tenant id", "tenant"},
                 {"admin user", NUBO_ADMIN_USER, "one user id", "user"},
                 {"admin key", NUBO_ADMIN_KEY, "one access key id", "key"}};
    size_t k = 0;
    while (k + 1 < sizeof kinds / sizeof kinds[0] && strcmp(cli->cmd->group, kinds[k].group)) {
        k++;
    }
    bool enabled = !strcmp(cli->cmd->verb, "enable");
    enum nubo_admin_kind kind = kinds[k].kind;
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, kinds[k].what, &rc);
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
        printf("%s %s %s\n", kinds[k].noun, argv[optind], enabled ? "enabled" : "disabled");
    }
    return CLI_OK;
}

/* --- users and keys ------------------------------------------------------------------------- */

static int user_create(struct cli *cli, int argc, char **argv)
{
    const char *role = NULL;
    const struct cli_opt opts[] = {CLI_STR("role", &role)};
    if (cli_parse_opts(argc, argv, "admin user create ", opts, CLI_N_OPTS(opts), "invalid option") <
        0) {
        return CLI_USAGE;
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
    cli_print_one(cli, u->json, 4, cols, cells);
    nubo_user_free(u);
    return CLI_OK;
}

/* "admin user password USER_ID": the password is the first line of standard input, never an
 * argument (arguments show in ps and in shell history). */
static int user_password(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one user id", &rc);
    if (!client) {
        return rc;
    }
    if (isatty(STDIN_FILENO)) {
        fprintf(stderr, "password for %s (one line; it shows as you type: pipe it in to hide it): ",
                argv[optind]);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
        line[--n] = '\0';
    }
    if (n <= 0) {
        free(line);
        return cli_usage_error("admin user password ", "expected the password on standard input");
    }
    struct nubo_error err;
    rc = nubo_admin_user_set_password(client, argv[optind], line, &err);
    explicit_bzero(line, cap);
    free(line);
    if (rc < 0) {
        return cli_fail(&err);
    }
    if (cli->json) {
        printf("{\"user_id\": \"%s\", \"password_set\": true}\n", argv[optind]);
    } else {
        printf("password of user %s set; their console sessions ended\n", argv[optind]);
    }
    return CLI_OK;
}

static int key_create(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one user id", &rc);
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
    cli_print_one(cli, k->json, 3, cols, cells);
    nubo_access_key_free(k);
    return CLI_OK;
}

/* Reads one line of standard input into a new string the caller wipes and free()s, without its
 * line end, prompting with 'prompt' on stderr when stdin is a terminal. Stores its capacity in
 * '*cap' (for the wipe). Returns NULL at the end of the input. */
static char *read_secret_line(const char *prompt, size_t *cap)
{
    if (isatty(STDIN_FILENO)) {
        fprintf(stderr, "%s (it shows as you type: pipe it in to hide it): ", prompt);
    }
    char *line = NULL;
    *cap = 0;
    ssize_t n = getline(&line, cap, stdin);
    if (n < 0) {
        if (line) {
            explicit_bzero(line, *cap);
        }
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
        line[--n] = '\0';
    }
    return line;
}

static void wipe_free(char *s, size_t cap)
{
    if (s) {
        explicit_bzero(s, cap);
    }
    free(s);
}

/* "password": the caller's own console password. The current one is the first line of standard
 * input (empty for a user who has none yet), the new one the second: never arguments. */
static int my_password(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 0, "no arguments", &rc);
    if (!client) {
        return rc;
    }
    size_t cap_cur = 0, cap_new = 0;
    char *current = read_secret_line("current password", &cap_cur);
    char *password = current ? read_secret_line("new password", &cap_new) : NULL;
    if (!password || !*password) {
        wipe_free(current, cap_cur);
        wipe_free(password, cap_new);
        return cli_usage_error("password ", "expected the current password on the first line of "
                                            "standard input and the new one on the second");
    }
    struct nubo_error err;
    rc = nubo_my_password_set(client, current, password, &err);
    wipe_free(current, cap_cur);
    wipe_free(password, cap_new);
    if (rc < 0) {
        return cli_fail(&err);
    }
    if (cli->json) {
        printf("{\"password_set\": true}\n");
    } else {
        printf("password changed; your other console sessions ended\n");
    }
    return CLI_OK;
}

/* --- instance types ------------------------------------------------------------------------- */

static int type_set(struct cli *cli, int argc, char **argv)
{
    const char *cmd = "admin type set ";
    long long vcpus = 0, memory = 0, disk = 0, ephemeral = 0;
    bool disabled = false;
    const struct cli_opt opts[] = {
        CLI_INT("vcpus", &vcpus, 1, 1 << 30, "--vcpus must be a number above 0"),
        CLI_INT("memory-mib", &memory, 1, 1 << 30, "--memory-mib must be a number above 0"),
        CLI_INT("disk-gib", &disk, 0, 1 << 30, "--disk-gib must be a number"),
        CLI_INT("ephemeral-gib", &ephemeral, 0, 1 << 30, "--ephemeral-gib must be a number"),
        CLI_FLAG("disabled", &disabled),
    };
    if (cli_parse_opts(argc, argv, cmd, opts, CLI_N_OPTS(opts), "invalid option or value") < 0) {
        return CLI_USAGE;
    }
    if (argc - optind != 1 || !vcpus || !memory) {
        return cli_usage_error(cmd, "expected NAME, --vcpus N and --memory-mib N");
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    const struct nubo_instance_type_params p = {
        .name = argv[optind],
        .vcpus = (int)vcpus,
        .memory_mib = (int)memory,
        .disk_gib = (int)disk,
        .ephemeral_gib = (int)ephemeral,
        .disabled = disabled,
    };
    struct nubo_error err;
    struct nubo_instance_type *t = nubo_instance_type_put(client, &p, &err);
    if (!t) {
        return cli_fail(&err);
    }
    char v[16], m[16], d[16], e[16];
    snprintf(v, sizeof v, "%d", t->vcpus);
    snprintf(m, sizeof m, "%d", t->memory_mib);
    snprintf(d, sizeof d, "%d", t->disk_gib);
    snprintf(e, sizeof e, "%d", t->ephemeral_gib);
    static const char *const cols[] = {"name",     "vcpus",         "memory_mib",
                                       "disk_gib", "ephemeral_gib", "enabled"};
    const char *cells[] = {t->name, v, m, d, e, t->enabled ? "yes" : "no"};
    cli_print_one(cli, t->json, 6, cols, cells);
    nubo_instance_type_free(t);
    return CLI_OK;
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
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one tenant id", &rc);
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
    struct nubo_quota set = {"", -1, -1, -1, -1, -1};
    const long long max = 1LL << 62;
    const struct cli_opt opts[] = {
        CLI_INT("max-instances", &set.max_instances, 0, max, NULL),
        CLI_INT("max-vcpus", &set.max_vcpus, 0, max, NULL),
        CLI_INT("max-memory-mib", &set.max_memory_mib, 0, max, NULL),
        CLI_INT("max-elastic-ips", &set.max_elastic_ips, 0, max, NULL),
        CLI_INT("max-image-bytes", &set.max_image_bytes, 0, max, NULL),
    };
    int given = cli_parse_opts(argc, argv, "admin quota set ", opts, CLI_N_OPTS(opts),
                               "invalid option or value");
    if (given < 0) {
        return CLI_USAGE;
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
static int parse_time_us(char *text, void *dest)
{
    long long *out = dest;
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

static const char *request_row(struct cli_table *t, const void *item)
{
    const struct nubo_request_record *r = item;
    char st[16], lat[24];
    snprintf(st, sizeof st, "%d", r->http_status);
    snprintf(lat, sizeof lat, "%lld", r->latency_us);
    const char *cells[] = {r->time, r->request_id, r->tenant_id, st, r->error_code, lat, r->action};
    cli_table_add(t, cells);
    return r->json;
}

static int requests(struct cli *cli, int argc, char **argv)
{
    struct nubo_request_query q = {0};
    long long limit = 0;
    const struct cli_opt opts[] = {
        CLI_STR("tenant", &q.tenant_id),
        CLI_STR("action", &q.action),
        CLI_STR("error-code", &q.error_code),
        CLI_FLAG("errors-only", &q.errors_only),
        CLI_FN("from", &q.from_us, parse_time_us, NULL),
        CLI_FN("to", &q.to_us, parse_time_us, NULL),
        CLI_INT("limit", &limit, 1, 1000, NULL),
    };
    if (cli_parse_opts(argc, argv, "admin requests ", opts, CLI_N_OPTS(opts),
                       "invalid option or value") < 0 ||
        cli_no_more_args(argc, argv, "admin requests ") != CLI_OK) {
        return CLI_USAGE;
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
    cli_print_list(cli, &t, l->items, l->n, sizeof *l->items, request_row);
    nubo_request_list_free(l);
    return CLI_OK;
}

const struct cli_cmd cli_admin_cmds[] = {
    {"admin tenant", "create", tenant_create, "NAME", "create a tenant (default quota, no users)",
     NULL},
    {"admin tenant", "list", tenant_list, "", "list every tenant", NULL},
    {"admin tenant", "enable", set_enabled, "TENANT_ID", "enable a tenant", NULL},
    {"admin tenant", "disable", set_enabled, "TENANT_ID", "disable a tenant: its keys stop working",
     NULL},
    {"admin user", "create", user_create, "TENANT_ID NAME [--role admin|member|reader|desktop]",
     "create a user",
     "  --role ROLE            admin, member (default), reader, or desktop (a VDI user: the\n"
     "                         desktop broker only, see nubo vdi)\n"},
    {"admin user", "password", user_password, "USER_ID",
     "set a user's web console password, read from the first line of standard input", NULL},
    {"admin user", "enable", set_enabled, "USER_ID", "enable a user", NULL},
    {"admin user", "disable", set_enabled, "USER_ID", "disable a user", NULL},
    {"password", "set", my_password, "< LINES",
     "change your own console password: stdin's first line is the current one, the second the new",
     NULL},
    {"admin key", "create", key_create, "USER_ID",
     "create an access key; its secret is shown this once", NULL},
    {"admin key", "enable", set_enabled, "ACCESS_KEY_ID", "enable an access key", NULL},
    {"admin key", "disable", set_enabled, "ACCESS_KEY_ID", "disable an access key", NULL},
    {"admin type", "set", type_set, "NAME --vcpus N --memory-mib N [OPTIONS]",
     "create an instance type, or replace it whole",
     "  --vcpus N              virtual CPUs (required)\n"
     "  --memory-mib N         memory in MiB (required)\n"
     "  --disk-gib N           the root disk in GiB (default 0)\n"
     "  --ephemeral-gib N      the ephemeral disk in GiB (default 0)\n"
     "  --disabled             keep the type but allow no new launches of it\n"},
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
