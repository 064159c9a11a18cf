/* The commands of hosted VDI desktops: vdi pool create, list, show, update, delete, desktops,
 * users, grant and revoke (a provider's writers); vdi connect (the broker: a desktop of a pool, and the URL of its
 * console once it is ready), vdi desktop show, console and sign-out, and vdi my-desktops (any
 * user of the tenant, the desktop role included). See nubo(1). */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_GROUPS 64

/* Parses 'opts' and 'n_args' positional arguments ('what' names them). Returns CLI_OK, or
 * CLI_USAGE after a usage error. The client is made after the caller's own checks, so that a
 * bad command line is told as such even without credentials. */
static int parse_args(struct cli *cli, int argc, char **argv, const struct cli_opt *opts, size_t n,
                      int n_args, const char *what)
{
    if (cli_parse_opts(argc, argv, cli->prefix, opts, n, "invalid option") < 0) {
        return CLI_USAGE;
    }
    if (argc - optind != n_args) {
        return cli_usage_error(cli->prefix, "expected %s", what);
    }
    return CLI_OK;
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

/* --- pools ----------------------------------------------------------------------------------- */

static const char *const pool_cols[] = {"id",   "name",   "state",      "image",    "type",
                                        "size", "spares", "persistent", "desktops", "running"};

/* A desktop user's listing has no state, image, type or counts: those cells print "-". */
static const char *pool_row(struct cli_table *t, const void *item)
{
    const struct nubo_vdi_pool *p = item;
    char size[16] = "", spares[16] = "", total[24] = "", running[24] = "";
    if (p->state) {
        snprintf(size, sizeof size, "%d", p->size);
        snprintf(spares, sizeof spares, "%d", p->spares);
        snprintf(total, sizeof total, "%lld", p->desktops.total);
        snprintf(running, sizeof running, "%lld", p->desktops.running);
    }
    const char *cells[] = {p->id,
                           p->name,
                           p->state,
                           p->image_id,
                           p->instance_type,
                           size,
                           spares,
                           p->persistent ? "yes" : "no",
                           total,
                           running};
    cli_table_add(t, cells);
    return p->json;
}

static int print_pool(const struct cli *cli, struct nubo_vdi_pool *p, const struct nubo_error *err)
{
    if (!p) {
        return cli_fail(err);
    }
    char size[16], spares[16], idle[24], counts[256];
    snprintf(size, sizeof size, "%d", p->size);
    snprintf(spares, sizeof spares, "%d", p->spares);
    if (p->idle_stop_s) {
        snprintf(idle, sizeof idle, "%d s", p->idle_stop_s);
    } else {
        snprintf(idle, sizeof idle, "never");
    }
    const struct nubo_vdi_desktop_counts *d = &p->desktops;
    snprintf(counts, sizeof counts,
             "%lld (%lld running): %lld available, %lld assigned, %lld reserved, %lld resetting, "
             "%lld restarting, %lld terminating",
             d->total, d->running, d->available, d->assigned, d->reserved, d->resetting,
             d->restarting, d->terminating);
    size_t glen = 1;
    for (size_t i = 0; i < p->n_security_groups; i++) {
        glen += strlen(p->security_group_ids[i]) + 1;
    }
    char *groups = calloc(1, glen);
    for (size_t i = 0; groups && i < p->n_security_groups; i++) {
        strcat(groups, i ? "," : "");
        strcat(groups, p->security_group_ids[i]);
    }
    const char *pairs[] = {"id",
                           p->id,
                           "name",
                           p->name,
                           "description",
                           p->description,
                           "state",
                           p->state,
                           "image",
                           p->image_id,
                           "type",
                           p->instance_type,
                           "subnet",
                           p->subnet_id,
                           "security_groups",
                           groups,
                           "size",
                           size,
                           "spares",
                           spares,
                           "persistent",
                           p->persistent ? "yes" : "no",
                           "entitlement",
                           p->entitlement,
                           "idle_stop",
                           idle,
                           "desktops",
                           counts,
                           "last_error",
                           p->last_error,
                           "last_error_at",
                           p->last_error_at,
                           "created",
                           p->created_at};
    print_item(cli, p->json, pairs, sizeof pairs / sizeof pairs[0] / 2);
    free(groups);
    nubo_vdi_pool_free(p);
    return CLI_OK;
}

/* Up to MAX_GROUPS security group ids gathered from repeated --sg options. */
struct group_buf {
    const char *items[MAX_GROUPS];
    size_t n;
};

static int add_group(char *arg, void *dest)
{
    struct group_buf *b = dest;
    if (b->n == MAX_GROUPS || !*arg) {
        return -1;
    }
    b->items[b->n++] = arg;
    return 0;
}

/* Whether --entitlement's value is one the API knows; NULL (not given) is. */
static bool entitlement_ok(const char *e)
{
    return !e || !strcmp(e, "all") || !strcmp(e, "listed");
}

static int pool_create(struct cli *cli, int argc, char **argv)
{
    struct nubo_vdi_pool_params p;
    nubo_vdi_pool_params_init(&p);
    struct group_buf groups = {.n = 0};
    long long size = -1, spares = 0, idle = -1;
    bool persistent = false;
    const char *entitlement = NULL;
    const struct cli_opt opts[] = {
        CLI_STR("image", &p.image_id),
        CLI_STR("type", &p.instance_type),
        CLI_INT("size", &size, 1, 1000, "--size must be 1-1000"),
        CLI_INT("spares", &spares, 0, 1000, "--spares must be 0-1000"),
        CLI_FLAG("persistent", &persistent),
        CLI_INT("idle-stop", &idle, 0, 2592000, "--idle-stop must be 0-2592000 seconds"),
        CLI_STR("description", &p.description),
        CLI_STR("subnet", &p.subnet_id),
        CLI_FN("sg", &groups, add_group, "--sg takes a group id (at most 64)"),
        CLI_STR("entitlement", &entitlement),
    };
    int rc = parse_args(cli, argc, argv, opts, CLI_N_OPTS(opts), 1, "one pool name");
    if (rc != CLI_OK) {
        return rc;
    }
    if (!p.image_id || !p.instance_type || size < 0) {
        return cli_usage_error(cli->prefix, "--image, --type and --size are required");
    }
    if (groups.n && !p.subnet_id) {
        return cli_usage_error(cli->prefix, "--sg needs --subnet");
    }
    if (!entitlement_ok(entitlement)) {
        return cli_usage_error(cli->prefix, "--entitlement must be all or listed");
    }
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    p.name = argv[optind];
    p.size = (int)size;
    p.spares = (int)spares;
    p.persistent = persistent;
    p.idle_stop_s = (int)idle;
    p.security_group_ids = groups.items;
    p.n_security_groups = groups.n;
    struct nubo_error err;
    return print_pool(cli, nubo_vdi_pool_create_entitled(client, &p, entitlement, &err), &err);
}

static int pool_list(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 0, "no argument", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_vdi_pool_list *l = nubo_vdi_pools_list(client, &err);
    if (!l) {
        return cli_fail(&err);
    }
    struct cli_table t = {CLI_N_OPTS(pool_cols), pool_cols, NULL, 0, 0};
    cli_print_list(cli, &t, l->items, l->n, sizeof *l->items, pool_row);
    nubo_vdi_pool_list_free(l);
    return CLI_OK;
}

static int pool_show(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one pool id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    return print_pool(cli, nubo_vdi_pool_get(client, argv[optind], &err), &err);
}

static int pool_update(struct cli *cli, int argc, char **argv)
{
    long long size = -1, spares = -1, idle = -1;
    const char *entitlement = NULL;
    const struct cli_opt opts[] = {
        CLI_INT("size", &size, 1, 1000, "--size must be 1-1000"),
        CLI_INT("spares", &spares, 0, 1000, "--spares must be 0-1000"),
        CLI_INT("idle-stop", &idle, 0, 2592000, "--idle-stop must be 0-2592000 seconds"),
        CLI_STR("entitlement", &entitlement),
    };
    int rc = parse_args(cli, argc, argv, opts, CLI_N_OPTS(opts), 1, "one pool id");
    if (rc != CLI_OK) {
        return rc;
    }
    if (size < 0 && spares < 0 && idle < 0 && !entitlement) {
        return cli_usage_error(cli->prefix, "give --size, --spares, --idle-stop or --entitlement");
    }
    if (!entitlement_ok(entitlement)) {
        return cli_usage_error(cli->prefix, "--entitlement must be all or listed");
    }
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    return print_pool(cli,
                      nubo_vdi_pool_update_entitled(client, argv[optind], (int)size, (int)spares,
                                                    (int)idle, entitlement, &err),
                      &err);
}

/* Prints the pool as the API left it: "deleting", until the worker has removed its desktops. */
static int pool_delete(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one pool id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_vdi_pool *p = nubo_vdi_pool_delete(client, argv[optind], &err);
    if (!p) {
        return cli_fail(&err);
    }
    if (cli->json) {
        print_item(cli, p->json, NULL, 0);
    } else {
        printf("deleting pool %s (%s): its %lld desktops are being terminated\n", p->id, p->name,
               p->desktops.total + p->desktops.terminating);
    }
    nubo_vdi_pool_free(p);
    return CLI_OK;
}

/* --- desktops -------------------------------------------------------------------------------- */

static const char *const desktop_cols[] = {
    "id", "pool", "state", "instance", "instance_state", "user", "ready", "private_ip"};

static const char *desktop_row(struct cli_table *t, const void *item)
{
    const struct nubo_vdi_desktop *d = item;
    const char *cells[] = {d->id,
                           d->pool_name,
                           d->state,
                           d->instance_id,
                           d->instance_state,
                           d->user_id,
                           d->ready ? "yes" : "no",
                           d->private_ip};
    cli_table_add(t, cells);
    return d->json;
}

static int print_desktops(const struct cli *cli, struct nubo_vdi_desktop_list *l,
                          const struct nubo_error *err)
{
    if (!l) {
        return cli_fail(err);
    }
    struct cli_table t = {CLI_N_OPTS(desktop_cols), desktop_cols, NULL, 0, 0};
    cli_print_list(cli, &t, l->items, l->n, sizeof *l->items, desktop_row);
    nubo_vdi_desktop_list_free(l);
    return CLI_OK;
}

/* Prints the fields of 'd' as a table (not freed). */
static void desktop_fields(const struct nubo_vdi_desktop *d)
{
    const char *pairs[] = {"id",
                           d->id,
                           "pool",
                           d->pool_id,
                           "pool_name",
                           d->pool_name,
                           "state",
                           d->state,
                           "ready",
                           d->ready ? "yes" : "no",
                           "instance",
                           d->instance_id,
                           "instance_state",
                           d->instance_state,
                           "user",
                           d->user_id,
                           "owner",
                           d->owner_id,
                           "assigned_at",
                           d->assigned_at,
                           "last_active",
                           d->last_active_at,
                           "private_ip",
                           d->private_ip};
    cli_print_fields(pairs, sizeof pairs / sizeof pairs[0] / 2);
}

static int print_desktop(const struct cli *cli, struct nubo_vdi_desktop *d,
                         const struct nubo_error *err)
{
    if (!d) {
        return cli_fail(err);
    }
    if (cli->json) {
        print_item(cli, d->json, NULL, 0);
    } else {
        desktop_fields(d);
    }
    nubo_vdi_desktop_free(d);
    return CLI_OK;
}

static int pool_desktops(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one pool id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    return print_desktops(cli, nubo_vdi_pool_desktops(client, argv[optind], &err), &err);
}

static int my_desktops(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 0, "no argument", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    return print_desktops(cli, nubo_vdi_my_desktops(client, &err), &err);
}

static int desktop_show(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one desktop id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    return print_desktop(cli, nubo_vdi_desktop_get(client, argv[optind], &err), &err);
}

static int desktop_sign_out(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one desktop id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    return print_desktop(cli, nubo_vdi_desktop_sign_out(client, argv[optind], &err), &err);
}

static int desktop_console(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one desktop id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_console_ticket *t = nubo_vdi_desktop_console(client, argv[optind], &err);
    if (!t) {
        return cli_fail(&err);
    }
    cli_print_ticket(cli, t);
    nubo_console_ticket_free(t);
    return CLI_OK;
}

/* --- the broker ------------------------------------------------------------------------------ */

/* Finds the id of the pool named 'name' among those the caller may see. Returns a new string,
 * or NULL with '*rc' set after printing why. */
static char *pool_id_by_name(struct nubo_client *client, const char *name, int *rc)
{
    struct nubo_error err;
    struct nubo_vdi_pool_list *l = nubo_vdi_pools_list(client, &err);
    if (!l) {
        *rc = cli_fail(&err);
        return NULL;
    }
    char *id = NULL;
    for (size_t i = 0; i < l->n && !id; i++) {
        if (!strcmp(l->items[i].name, name) &&
            (!l->items[i].state || !strcmp(l->items[i].state, "active"))) {
            id = strdup(l->items[i].id);
        }
    }
    nubo_vdi_pool_list_free(l);
    if (!id) {
        fprintf(stderr, "nubo: InvalidPoolID.NotFound: there is no pool named \"%s\"\n", name);
        *rc = CLI_NOT_FOUND;
    }
    return id;
}

/* Makes '*pool', an id ("pool-...") or a name, an id: for a name, '*owned' is the id found, which
 * the caller frees (else NULL). Returns CLI_OK, or the exit status after printing why. */
static int resolve_pool(struct nubo_client *client, const char **pool, char **owned)
{
    *owned = NULL;
    if (!strncmp(*pool, "pool-", 5)) {
        return CLI_OK;
    }
    int rc = CLI_OK;
    *owned = pool_id_by_name(client, *pool, &rc);
    if (*owned) {
        *pool = *owned;
    }
    return rc;
}

static int on_desktop_wait(const struct nubo_vdi_desktop *d, double elapsed, void *arg)
{
    char what[96];
    snprintf(what, sizeof what, "%s/%s", d->state,
             d->instance_state ? d->instance_state : "launching");
    cli_wait_report(arg, d->id, what, elapsed);
    return 0;
}

/* Prints the connected desktop 'd' and, when 't' is not NULL, the URL of its console: with
 * --output json {"desktop": ..., "ready": b, "console": ticket or null}. */
static void print_connection(const struct cli *cli, const struct nubo_vdi_desktop *d,
                             const struct nubo_console_ticket *t)
{
    if (cli->json) {
        json_t *ticket = NULL;
        if (t) {
            ticket = json_loads(t->json, 0, NULL);
            json_object_set_new(ticket, "viewer_url", json_string(t->viewer_url));
            json_object_set_new(ticket, "websocket_url", json_string(t->websocket_url));
        }
        cli_print_json(json_pack("{s:o, s:b, s:o}", "desktop", json_loads(d->json, 0, NULL),
                                 "ready", d->ready, "console", ticket ? ticket : json_null()));
        return;
    }
    desktop_fields(d);
    if (t) {
        char expires[32];
        snprintf(expires, sizeof expires, "%d s, once", t->expires_in);
        printf("\n");
        const char *pairs[] = {"viewer_url", t->viewer_url, "valid_for", expires};
        cli_print_fields(pairs, 2);
    }
}

/* "vdi connect POOL [--wait]": a desktop from the broker; once it is ready, a console ticket
 * for it, printed as its viewer URL. */
static int vdi_connect(struct cli *cli, int argc, char **argv)
{
    bool wait = false;
    long long timeout = 300;
    const struct cli_opt opts[] = {
        CLI_FLAG("wait", &wait),
        CLI_INT("timeout", &timeout, 1, 86400, "--timeout must be 1-86400 seconds"),
    };
    int rc = parse_args(cli, argc, argv, opts, CLI_N_OPTS(opts), 1, "one pool id or name");
    struct nubo_client *client = rc == CLI_OK ? cli_client(cli, &rc) : NULL;
    if (!client) {
        return rc;
    }
    const char *pool = argv[optind];
    char *by_name;
    if ((rc = resolve_pool(client, &pool, &by_name)) != CLI_OK) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_vdi_desktop *d = nubo_vdi_connect(client, pool, &err);
    free(by_name);
    if (!d) {
        return cli_fail(&err);
    }
    if (!d->ready && wait) {
        struct cli_wait_progress wp = {.tty = isatty(2)};
        struct nubo_vdi_desktop *ready =
            nubo_vdi_desktop_wait(client, d->id, (double)timeout, 1000, on_desktop_wait, &wp, &err);
        cli_wait_done(&wp);
        if (!ready) {
            nubo_vdi_desktop_free(d);
            return cli_wait_fail(&err);
        }
        nubo_vdi_desktop_free(d);
        d = ready;
    }
    struct nubo_console_ticket *t = NULL;
    if (d->ready) {
        t = nubo_vdi_desktop_console(client, d->id, &err);
        if (!t) {
            nubo_vdi_desktop_free(d);
            return cli_fail(&err);
        }
    } else {
        fprintf(stderr,
                "nubo: desktop %s is not ready yet (its instance is %s): run 'nubo vdi desktop "
                "console %s' once it is, or connect with --wait\n",
                d->id, d->instance_state ? d->instance_state : "being launched", d->id);
    }
    print_connection(cli, d, t);
    if (t && !cli->json) {
        fprintf(stderr,
                "nubo: open the viewer URL within %d s: the ticket opens the console once\n",
                t->expires_in);
    }
    nubo_console_ticket_free(t);
    nubo_vdi_desktop_free(d);
    return CLI_OK;
}

/* --- entitlements ---------------------------------------------------------------------------- */

/* Parses "POOL_ID|POOL_NAME" plus 'n_more' positional arguments, makes the client and resolves
 * the pool's name. Returns the client with the pool id in '*pool' (free '*owned' after use), or
 * NULL with '*rc' set. */
static struct nubo_client *pool_args(struct cli *cli, int argc, char **argv, int n_more,
                                     const char *what, const char **pool, char **owned, int *rc)
{
    *owned = NULL;
    *rc = parse_args(cli, argc, argv, NULL, 0, 1 + n_more, what);
    struct nubo_client *client = *rc == CLI_OK ? cli_client(cli, rc) : NULL;
    if (!client) {
        return NULL;
    }
    *pool = argv[optind];
    return (*rc = resolve_pool(client, pool, owned)) == CLI_OK ? client : NULL;
}

static const char *const grant_cols[] = {"user_id", "user", "granted"};

static const char *grant_row(struct cli_table *t, const void *item)
{
    const struct nubo_vdi_grant *g = item;
    const char *cells[] = {g->user_id, g->user_name, g->granted_at};
    cli_table_add(t, cells);
    return g->json;
}

static int pool_users(struct cli *cli, int argc, char **argv)
{
    const char *pool;
    char *owned;
    int rc;
    struct nubo_client *client =
        pool_args(cli, argc, argv, 0, "one pool id or name", &pool, &owned, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_vdi_grant_list *l = nubo_vdi_pool_users(client, pool, &err);
    free(owned);
    if (!l) {
        return cli_fail(&err);
    }
    struct cli_table t = {CLI_N_OPTS(grant_cols), grant_cols, NULL, 0, 0};
    cli_print_list(cli, &t, l->items, l->n, sizeof *l->items, grant_row);
    nubo_vdi_grant_list_free(l);
    return CLI_OK;
}

static int pool_grant(struct cli *cli, int argc, char **argv)
{
    const char *pool;
    char *owned;
    int rc;
    struct nubo_client *client =
        pool_args(cli, argc, argv, 1, "a pool id or name and a user id", &pool, &owned, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_vdi_grant *g = nubo_vdi_pool_grant(client, pool, argv[optind + 1], &err);
    free(owned);
    if (!g) {
        return cli_fail(&err);
    }
    const char *pairs[] = {"pool", g->pool_id,   "user_id", g->user_id,
                           "user", g->user_name, "granted", g->granted_at};
    print_item(cli, g->json, pairs, sizeof pairs / sizeof pairs[0] / 2);
    nubo_vdi_grant_free(g);
    return CLI_OK;
}

static int pool_revoke(struct cli *cli, int argc, char **argv)
{
    const char *pool;
    char *owned;
    int rc;
    struct nubo_client *client =
        pool_args(cli, argc, argv, 1, "a pool id or name and a user id", &pool, &owned, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    int failed = nubo_vdi_pool_revoke(client, pool, argv[optind + 1], &err);
    if (failed < 0) {
        free(owned);
        return cli_fail(&err);
    }
    if (!cli->json) {
        printf("revoked pool %s from user %s\n", pool, argv[optind + 1]);
    }
    free(owned);
    return CLI_OK;
}

const struct cli_cmd cli_vdi_cmds[] = {
    {"vdi pool", "create", pool_create,
     "NAME --image AMI_ID --type TYPE --size N [--spares N] [--persistent] [OPTIONS]",
     "create a desktop pool (its spares are launched next)",
     "  --image AMI_ID         the desktops' image (required)\n"
     "  --type TYPE            their instance type (required)\n"
     "  --size N               the most desktops, 1-1000 (required)\n"
     "  --spares N             unassigned desktops kept running, 0 to --size (default 0)\n"
     "  --persistent           a user gets back the same desktop (default: reset to the image\n"
     "                         at sign-out)\n"
     "  --idle-stop SECONDS    sign out and stop a session idle this long (0: never; default\n"
     "                         1800)\n"
     "  --description TEXT     a description\n"
     "  --subnet SUBNET_ID     give each desktop an interface in this subnet\n"
     "  --sg SG_ID             a security group of the subnet's VPC (repeatable; needs\n"
     "                         --subnet)\n"
     "  --entitlement all|listed\n"
     "                         who may connect: any user of the tenant (default), or only the\n"
     "                         desktop users granted the pool ('vdi pool grant')\n"},
    {"vdi pool", "list", pool_list, "",
     "list the desktop pools (a desktop user: those to connect to)", NULL},
    {"vdi pool", "show", pool_show, "POOL_ID", "show a pool with its desktops' counts", NULL},
    {"vdi pool", "update", pool_update,
     "POOL_ID [--size N] [--spares N] [--idle-stop SECONDS] [--entitlement all|listed]",
     "change a pool's size, spares, idle time or entitlement",
     "  --size N               the most desktops, 1-1000 (a smaller size terminates unassigned\n"
     "                         desktops beyond it)\n"
     "  --spares N             unassigned desktops kept running, 0 to the size\n"
     "  --idle-stop SECONDS    sign out and stop a session idle this long (0: never)\n"
     "  --entitlement all|listed\n"
     "                         who may connect; switching to listed ends the sessions of the\n"
     "                         users not granted the pool\n"},
    {"vdi pool", "delete", pool_delete, "POOL_ID",
     "delete a pool: its sessions end and its desktops are terminated", NULL},
    {"vdi pool", "desktops", pool_desktops, "POOL_ID", "list every desktop of a pool", NULL},
    {"vdi pool", "users", pool_users, "POOL_ID|POOL_NAME",
     "list the desktop users granted a pool (what counts when its entitlement is listed)", NULL},
    {"vdi pool", "grant", pool_grant, "POOL_ID|POOL_NAME USER_ID",
     "grant a pool to a desktop user of the tenant (granting again changes nothing)", NULL},
    {"vdi pool", "revoke", pool_revoke, "POOL_ID|POOL_NAME USER_ID",
     "revoke a user's grant of a pool; on a listed pool, their session on it ends (as at "
     "sign-out)",
     NULL},
    {"vdi", "connect", vdi_connect, "POOL_ID|POOL_NAME [--wait] [--timeout SECONDS]",
     "get a desktop of a pool and print the URL of its console",
     "  --wait                 wait until the desktop is ready, then print its console URL\n"
     "  --timeout SECONDS      how long --wait waits (default 300); exit 5 when it runs out\n"},
    {"vdi", "my-desktops", my_desktops, "", "list the desktops of your sessions (and owned ones)",
     NULL},
    {"vdi desktop", "show", desktop_show, "DESKTOP_ID", "show one of your desktops", NULL},
    {"vdi desktop", "console", desktop_console, "DESKTOP_ID",
     "print the URL of your desktop's console (it opens once, for a few seconds)",
     "  --output json          print the ticket (token, websocket, viewer, expires_in) with its\n"
     "                         viewer_url and websocket_url\n"},
    {"vdi desktop", "sign-out", desktop_sign_out, "DESKTOP_ID",
     "end the session on a desktop (a non-persistent one is reset to its image)", NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
