/* The tenant's commands: instance, keypair, tag, region, zone and type (images are in
 * cmd_images.c). Each parses its options with getopt_long, calls libnubo, and prints a table
 * or JSON. */
#include "cli.h"

#include <openssl/evp.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_ITEMS 64

/* Splits "NAME=VALUES" into a filter; returns 0, or -1 when there is no '='. */
static int parse_filter(char *arg, struct nubo_filter *f)
{
    char *value = cli_split_pair(arg);
    if (!value) {
        return -1;
    }
    f->name = arg;
    f->values = value;
    return 0;
}

/* Splits "KEY=VALUE" into a tag (pointing into 'arg'); returns 0, or -1. */
static int parse_tag(char *arg, struct nubo_tag *t)
{
    char *value = cli_split_pair(arg);
    if (!value) {
        return -1;
    }
    t->key = arg;
    t->value = value;
    return 0;
}

/* Up to MAX_ITEMS tags gathered from repeated options. */
struct tag_buf {
    struct nubo_tag items[MAX_ITEMS];
    size_t n;
};

/* Appends the filter 'name'='values' to the cli_filters 'dest'; returns 0, or -1 when full. */
static int push_filter(void *dest, const char *name, const char *values)
{
    struct cli_filters *b = dest;
    if (b->n == CLI_MAX_FILTERS) {
        return -1;
    }
    b->items[b->n++] = (struct nubo_filter){name, values};
    return 0;
}

/* --state S1,S2 into the cli_filters 'dest'. */
static int add_state_filter(char *arg, void *dest)
{
    return push_filter(dest, "instance-state-name", arg);
}

/* --tag KEY=VALUE into the tag_buf 'dest'. */
static int add_tag(char *arg, void *dest)
{
    struct tag_buf *b = dest;
    if (b->n == MAX_ITEMS || parse_tag(arg, &b->items[b->n]) < 0) {
        return -1;
    }
    b->n++;
    return 0;
}

/* Parses the options of a list command whose one option is --filter into 'f'. Returns CLI_OK,
 * or CLI_USAGE after a usage error. */
static int filter_args(int argc, char **argv, const char *cmd, struct cli_filters *f)
{
    const struct cli_opt opts[] = {CLI_FN("filter", f, cli_add_filter, NULL)};
    if (cli_parse_opts(argc, argv, cmd, opts, CLI_N_OPTS(opts),
                       "invalid option (--filter NAME=V1,V2)") < 0) {
        return CLI_USAGE;
    }
    return cli_no_more_args(argc, argv, cmd);
}

/* Reads the whole file 'path' into a new string the caller free()s; NULL with errno set. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *p = realloc(buf, cap * 2 + 1);
            if (!p) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = p;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        errno = bad ? EIO : ENOMEM;
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* --- instance ------------------------------------------------------------------------------- */

static const char *const instance_cols[] = {"id",   "state", "type",     "image",
                                            "zone", "key",   "launched", "tags"};

static const char *instance_row(struct cli_table *t, const void *item)
{
    const struct nubo_instance *in = item;
    char *tags = cli_tags_text(in->tags, in->n_tags);
    const char *cells[] = {in->id,   in->state,    in->instance_type, in->image_id,
                           in->zone, in->key_name, in->launch_time,   tags};
    cli_table_add(t, cells);
    free(tags);
    return in->json;
}

static int on_wait(const struct nubo_instance *in, double elapsed, void *arg)
{
    cli_wait_report(arg, in->id, in->state, elapsed);
    return 0;
}

/* --tenancy default|dedicated. */
static int parse_tenancy(char *arg, void *dest)
{
    if (strcmp(arg, "default") && strcmp(arg, "dedicated")) {
        return -1;
    }
    *(const char **)dest = arg;
    return 0;
}

/* Up to MAX_ITEMS security group ids gathered from repeated --sg options. */
struct sg_buf {
    const char *items[MAX_ITEMS];
    size_t n;
};

/* --sg SG_ID into the sg_buf 'dest'. */
static int add_sg(char *arg, void *dest)
{
    struct sg_buf *b = dest;
    if (b->n == MAX_ITEMS || !*arg) {
        return -1;
    }
    b->items[b->n++] = arg;
    return 0;
}

static int instance_run(struct cli *cli, int argc, char **argv)
{
    struct nubo_run_params p = {0};
    struct nubo_run_placement pl = {0};
    struct nubo_run_network net = {0};
    struct sg_buf groups = {.n = 0};
    long long partition = 0;
    struct tag_buf tags = {.n = 0};
    const char *user_data_file = NULL, *state = "running";
    long long count = 1, timeout = 300;
    bool wait = false;
    const struct cli_opt opts[] = {
        CLI_STR("image", &p.image_id),
        CLI_STR("type", &p.instance_type),
        CLI_INT("count", &count, 1, 1000, "--count must be 1-1000"),
        CLI_STR("key", &p.key_name),
        CLI_STR("zone", &p.zone),
        CLI_FN("tag", &tags, add_tag, "--tag needs KEY=VALUE"),
        CLI_STR("user-data-file", &user_data_file),
        CLI_STR("client-token", &p.client_token),
        CLI_FLAG("wait", &wait),
        CLI_INT("timeout", &timeout, 1, 86400, "--timeout must be 1-86400 seconds"),
        CLI_STR("state", &state),
        CLI_STR("placement-group", &pl.placement_group),
        CLI_INT("partition", &partition, 1, 7, "--partition must be 1-7"),
        CLI_FN("tenancy", &pl.tenancy, parse_tenancy, "--tenancy must be default or dedicated"),
        CLI_STR("subnet", &net.subnet_id),
        CLI_STR("private-ip", &net.private_ip),
        CLI_FN("sg", &groups, add_sg, "--sg takes a group id (at most 64)"),
    };
    if (cli_parse_opts(argc, argv, "instance run ", opts, CLI_N_OPTS(opts), "invalid option") < 0) {
        return CLI_USAGE;
    }
    if (!p.image_id || optind < argc) {
        return cli_usage_error(
            "instance run ", optind < argc ? "unexpected argument \"%s\"" : "--image is required%s",
            optind < argc ? argv[optind] : "");
    }
    if (partition && !pl.placement_group) {
        return cli_usage_error("instance run ", "--partition needs --placement-group");
    }
    if ((net.private_ip || groups.n) && !net.subnet_id) {
        return cli_usage_error("instance run ", "--private-ip and --sg need --subnet");
    }
    net.security_group_ids = groups.items;
    net.n_security_groups = groups.n;
    pl.partition_number = (int)partition;
    p.tags = tags.items;
    p.n_tags = tags.n;
    p.min_count = p.max_count = (int)count;
    char *user_data = NULL;
    if (user_data_file) {
        size_t len;
        char *raw = read_file(user_data_file, &len);
        if (!raw) {
            fprintf(stderr, "nubo: could not read \"%s\": %s\n", user_data_file, strerror(errno));
            return CLI_USAGE;
        }
        user_data = malloc(4 * ((len + 2) / 3) + 1);
        if (user_data) {
            EVP_EncodeBlock((unsigned char *)user_data, (const unsigned char *)raw, (int)len);
        }
        free(raw);
        p.user_data = user_data;
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    struct nubo_error err;
    struct nubo_instance_list *l =
        client ? nubo_instances_run_networked(client, &p, &pl, &net, &err) : NULL;
    free(user_data);
    if (!client) {
        return rc;
    }
    if (!l) {
        return cli_fail(&err);
    }
    struct cli_table t = {8, instance_cols, NULL, 0, 0};
    for (size_t i = 0; i < l->n && wait; i++) {
        struct cli_wait_progress wp = {.tty = isatty(2)};
        struct nubo_instance *in = nubo_instance_wait(client, l->items[i].id, state,
                                                      (double)timeout, 1000, on_wait, &wp, &err);
        cli_wait_done(&wp);
        if (!in) {
            rc = cli_wait_fail(&err);
            break;
        }
        nubo_instance_free(in);
    }
    cli_print_list(cli, &t, l->items, l->n, sizeof *l->items, instance_row);
    nubo_instance_list_free(l);
    return rc;
}

static int instance_list(struct cli *cli, int argc, char **argv)
{
    struct cli_filters f = {.n = 0};
    long long page = 0;
    const struct cli_opt opts[] = {
        CLI_FN("filter", &f, cli_add_filter, NULL),
        CLI_FN("state", &f, add_state_filter, NULL),
        CLI_INT("page-size", &page, 1, 1000, NULL),
    };
    if (cli_parse_opts(argc, argv, "instance list ", opts, CLI_N_OPTS(opts),
                       "invalid option (--filter NAME=V1,V2; --page-size 1-1000)") < 0 ||
        cli_no_more_args(argc, argv, "instance list ") != CLI_OK) {
        return CLI_USAGE;
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_instance_iter *it = nubo_instance_iter_new(client, f.items, f.n, (int)page);
    struct cli_json *j = cli_json_new(true);
    struct cli_table t = {8, instance_cols, NULL, 0, 0};
    const struct nubo_instance *in;
    int got;
    while ((got = nubo_instance_iter_next(it, &in, &err)) == 1) {
        if (cli->json) {
            cli_json_add(j, in->json);
        } else {
            instance_row(&t, in);
        }
    }
    nubo_instance_iter_free(it);
    if (got < 0) {
        cli_table_free(&t);
        cli_json_free(j);
        return cli_fail(&err);
    }
    cli_output(cli, j, &t);
    return CLI_OK;
}

/* The groups of 'net' as "sg-1 (web),sg-2 (default)": a new string the caller free()s, or NULL
 * when there are none. */
static char *sg_text(const struct nubo_instance_network *net)
{
    size_t len = 1;
    for (size_t i = 0; i < net->n_security_groups; i++) {
        len += strlen(net->security_group_ids[i]) + strlen(net->security_group_names[i]) + 4;
    }
    char *s = net->n_security_groups ? malloc(len) : NULL;
    size_t at = 0;
    for (size_t i = 0; s && i < net->n_security_groups; i++) {
        at += (size_t)snprintf(s + at, len - at, "%s%s (%s)", i ? "," : "",
                               net->security_group_ids[i], net->security_group_names[i]);
    }
    return s;
}

static int instance_show(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one instance id", &rc);
    if (!client) {
        return rc;
    }
    const char *id = argv[optind];
    struct nubo_error err;
    struct nubo_instance *in = nubo_instance_get(client, id, &err);
    if (!in) {
        return cli_fail(&err);
    }
    if (cli->json) {
        struct cli_json *j = cli_json_new(false);
        cli_json_add(j, in->json);
        cli_json_print(j);
    } else {
        char vcpus[16], mem[24], idx[16];
        snprintf(vcpus, sizeof vcpus, "%d", in->vcpus);
        snprintf(mem, sizeof mem, "%d", in->memory_mib);
        snprintf(idx, sizeof idx, "%d", in->launch_index);
        char *tags = cli_tags_text(in->tags, in->n_tags);
        struct nubo_instance_network *net = nubo_instance_network_get(in);
        char *groups = net ? sg_text(net) : NULL;
        struct nubo_instance_placement pl;
        char part[16] = "";
        nubo_instance_placement_get(in, &pl);
        if (pl.partition_number) {
            snprintf(part, sizeof part, "%d", pl.partition_number);
        }
        const char *pairs[] = {"id",
                               in->id,
                               "state",
                               in->state,
                               "state_reason",
                               in->state_reason_message ? in->state_reason_message
                                                        : in->state_reason_code,
                               "type",
                               in->instance_type,
                               "vcpus",
                               vcpus,
                               "memory_mib",
                               mem,
                               "image",
                               in->image_id,
                               "zone",
                               in->zone,
                               "tenancy",
                               pl.tenancy,
                               "placement_group",
                               pl.placement_group,
                               "partition",
                               part,
                               "key",
                               in->key_name,
                               "reservation",
                               in->reservation_id,
                               "launch_index",
                               idx,
                               "owner",
                               in->owner_id,
                               "launched",
                               in->launch_time,
                               "vpc",
                               net ? net->vpc_id : NULL,
                               "subnet",
                               net ? net->subnet_id : NULL,
                               "private_ip",
                               net ? net->private_ip : NULL,
                               "mac_address",
                               net ? net->mac_address : NULL,
                               "interface",
                               net ? net->network_interface_id : NULL,
                               "security_groups",
                               groups,
                               "tags",
                               tags};
        cli_print_fields(pairs, sizeof pairs / sizeof pairs[0] / 2);
        free(tags);
        free(groups);
        nubo_instance_network_free(net);
    }
    nubo_instance_free(in);
    return CLI_OK;
}

/* "instance console ID": the tail of the serial console; with --vnc, a ticket for the screen
 * instead, printed as the URL of the in-browser console. */
static int instance_console(struct cli *cli, int argc, char **argv)
{
    bool vnc = false;
    const struct cli_opt opts[] = {CLI_FLAG("vnc", &vnc)};
    if (cli_parse_opts(argc, argv, cli->prefix, opts, CLI_N_OPTS(opts), "invalid option") < 0) {
        return CLI_USAGE;
    }
    if (argc - optind != 1) {
        return cli_usage_error(cli->prefix, "expected one instance id");
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    if (vnc) {
        struct nubo_console_ticket *t = nubo_instance_vnc(client, argv[optind], &err);
        if (!t) {
            return cli_fail(&err);
        }
        cli_print_ticket(cli, t);
        nubo_console_ticket_free(t);
        return CLI_OK;
    }
    struct nubo_console *k = nubo_instance_console(client, argv[optind], &err);
    if (!k) {
        return cli_fail(&err);
    }
    if (cli->json) {
        struct cli_json *j = cli_json_new(false);
        cli_json_add(j, k->json);
        cli_json_print(j);
    } else {
        size_t len = strlen(k->output);
        fwrite(k->output, 1, len, stdout);
        if (len && k->output[len - 1] != '\n') {
            putchar('\n');
        }
    }
    nubo_console_free(k);
    return CLI_OK;
}

/* "instance stop|start|reboot|terminate ID...": the verb names the action. */
static int instance_op(struct cli *cli, int argc, char **argv)
{
    static const struct {
        const char *verb;
        enum nubo_instance_op op;
    } ops[] = {{"stop", NUBO_INSTANCE_STOP},
               {"start", NUBO_INSTANCE_START},
               {"reboot", NUBO_INSTANCE_REBOOT},
               {"terminate", NUBO_INSTANCE_TERMINATE}};
    const char *cmd = cli->prefix;
    enum nubo_instance_op op = NUBO_INSTANCE_STOP;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (!strcmp(cli->cmd->verb, ops[i].verb)) {
            op = ops[i].op;
        }
    }
    static const struct option none[] = {{NULL, 0, NULL, 0}};
    cli_getopt_reset();
    if (getopt_long(argc, argv, "", none, NULL) != -1) {
        return cli_usage_error(cmd, "invalid option");
    }
    if (optind >= argc) {
        return cli_usage_error(cmd, "expected one or more instance ids");
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    static const char *const cols[] = {"id", "previous", "state"};
    struct cli_table t = {3, cols, NULL, 0, 0};
    struct cli_json *j = cli_json_new(true);
    for (int i = optind; i < argc && rc == CLI_OK; i++) {
        struct nubo_state_change ch;
        struct nubo_error err;
        if (nubo_instance_action(client, argv[i], op, &ch, &err) < 0) {
            rc = cli_fail(&err);
            break;
        }
        const char *cells[] = {ch.id, ch.previous_state, ch.state};
        cli_table_add(&t, cells);
        char text[200];
        snprintf(text, sizeof text, "{\"id\":\"%s\",\"previous_state\":\"%s\",\"state\":\"%s\"}",
                 ch.id, ch.previous_state, ch.state);
        cli_json_add(j, text);
    }
    cli_output(cli, j, &t);
    return rc;
}

static int on_image_wait(const struct nubo_image *m, double elapsed, void *arg)
{
    cli_wait_report(arg, m->id, m->state, elapsed);
    return 0;
}

/* "instance image ID --name NAME": an image of the instance; with --wait, once available. */
static int instance_image(struct cli *cli, int argc, char **argv)
{
    const char *cmd = cli->prefix;
    const char *name = NULL, *description = NULL;
    bool wait = false;
    long long timeout = 600;
    const struct cli_opt opts[] = {
        CLI_STR("name", &name),
        CLI_STR("description", &description),
        CLI_FLAG("wait", &wait),
        CLI_INT("timeout", &timeout, 1, 86400, "--timeout must be 1-86400 seconds"),
    };
    if (cli_parse_opts(argc, argv, cmd, opts, CLI_N_OPTS(opts), "invalid option") < 0) {
        return CLI_USAGE;
    }
    if (argc - optind != 1 || !name) {
        return cli_usage_error(cmd, "expected INSTANCE_ID and --name NAME");
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    /* The gateway answers once the host has saved the disk: up to its agent's 600 s. */
    nubo_client_set_timeout(client, 660);
    struct nubo_error err;
    struct nubo_image *m =
        nubo_instance_create_image(client, argv[optind], name, description, &err);
    if (!m) {
        return cli_fail(&err);
    }
    if (wait && !strcmp(m->state, "pending")) {
        struct cli_wait_progress wp = {.tty = isatty(2)};
        struct nubo_image *done = nubo_image_wait_progress(client, m->id, (double)timeout, 1000,
                                                           on_image_wait, &wp, &err);
        cli_wait_done(&wp);
        if (!done) {
            fprintf(stderr, "nubo: image %s was made; 'nubo image show %s' shows its state\n",
                    m->id, m->id);
            nubo_image_free(m);
            return cli_wait_fail(&err);
        }
        nubo_image_free(m);
        m = done;
    }
    if (wait && (!m->state || strcmp(m->state, "available"))) {
        const char *reason = NULL;
        json_t *doc = json_loads(m->json, 0, NULL);
        reason = json_string_value(json_object_get(doc, "state_reason"));
        fprintf(stderr, "nubo: image %s of instance %s is %s: %s\n", m->id, argv[optind],
                m->state ? m->state : "in no state", reason ? reason : "no reason given");
        json_decref(doc);
        rc = CLI_API_ERROR;
    }
    if (cli->json) {
        struct cli_json *j = cli_json_new(false);
        cli_json_add(j, m->json);
        cli_json_print(j);
    } else {
        puts(m->id);
    }
    nubo_image_free(m);
    return rc;
}

/* --- keypair -------------------------------------------------------------------------------- */

static const char *const keypair_cols[] = {"name", "id", "type", "fingerprint", "created"};

static const char *keypair_row(struct cli_table *t, const void *item)
{
    const struct nubo_keypair *k = item;
    const char *cells[] = {k->name, k->id, k->key_type, k->fingerprint, k->created_at};
    cli_table_add(t, cells);
    return k->json;
}

/* Prints a created or imported key pair; with 'out_fd' >= 0 the private key goes there. */
static int print_keypair(const struct cli *cli, const struct nubo_keypair *k, int out_fd,
                         const char *out_path)
{
    if (out_fd >= 0 && k->private_key) {
        size_t len = strlen(k->private_key), done = 0;
        while (done < len) {
            ssize_t w = write(out_fd, k->private_key + done, len - done);
            if (w < 0 && errno == EINTR) {
                continue;
            }
            if (w <= 0) {
                fprintf(stderr, "nubo: could not write \"%s\": %s\n", out_path, strerror(errno));
                return CLI_API_ERROR;
            }
            done += (size_t)w;
        }
        if (close(out_fd) < 0) {
            fprintf(stderr, "nubo: could not write \"%s\": %s\n", out_path, strerror(errno));
            return CLI_API_ERROR;
        }
    }
    if (cli->json) {
        struct cli_json *j = cli_json_new(false);
        cli_json_add(j, k->json);
        cli_json_print(j);
        return CLI_OK;
    }
    struct cli_table t = {5, keypair_cols, NULL, 0, 0};
    keypair_row(&t, k);
    cli_table_print(&t);
    if (k->private_key && out_fd < 0) {
        fputs(k->private_key, stdout);
    } else if (k->private_key) {
        fprintf(stderr, "private key written to %s (mode 0600)\n", out_path);
    }
    return CLI_OK;
}

static int keypair_create(struct cli *cli, int argc, char **argv)
{
    const char *type = NULL, *out = NULL;
    const struct cli_opt opts[] = {CLI_STR("type", &type), CLI_STR("out", &out)};
    if (cli_parse_opts(argc, argv, "keypair create ", opts, CLI_N_OPTS(opts), "invalid option") <
        0) {
        return CLI_USAGE;
    }
    if (optind + 1 != argc) {
        return cli_usage_error("keypair create ", "expected one key pair name");
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    /* The file first: the private key is shown once, it must have somewhere to go. */
    int fd = -1;
    if (out) {
        fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            fprintf(stderr, "nubo: could not create \"%s\": %s\n", out, strerror(errno));
            return CLI_USAGE;
        }
        fchmod(fd, 0600); /* whatever the umask */
    }
    struct nubo_error err;
    struct nubo_keypair *k = nubo_keypair_create(client, argv[optind], type, &err);
    if (!k) {
        if (fd >= 0) {
            close(fd);
            unlink(out);
        }
        return cli_fail(&err);
    }
    rc = print_keypair(cli, k, fd, out);
    nubo_keypair_free(k);
    return rc;
}

static int keypair_import(struct cli *cli, int argc, char **argv)
{
    const char *file = NULL, *key = NULL;
    const struct cli_opt opts[] = {CLI_STR("public-key-file", &file), CLI_STR("public-key", &key)};
    if (cli_parse_opts(argc, argv, "keypair import ", opts, CLI_N_OPTS(opts), "invalid option") <
        0) {
        return CLI_USAGE;
    }
    if (optind + 1 != argc || !file == !key) {
        return cli_usage_error("keypair import ",
                               "expected NAME and one of --public-key-file or --public-key");
    }
    char *text = NULL;
    if (file) {
        size_t len;
        text = read_file(file, &len);
        if (!text) {
            fprintf(stderr, "nubo: could not read \"%s\": %s\n", file, strerror(errno));
            return CLI_USAGE;
        }
        text[strcspn(text, "\r\n")] = '\0';
        key = text;
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    struct nubo_error err;
    struct nubo_keypair *k = client ? nubo_keypair_import(client, argv[optind], key, &err) : NULL;
    free(text);
    if (!client) {
        return rc;
    }
    if (!k) {
        return cli_fail(&err);
    }
    rc = print_keypair(cli, k, -1, NULL);
    nubo_keypair_free(k);
    return rc;
}

static int keypair_list(struct cli *cli, int argc, char **argv)
{
    struct cli_filters f = {.n = 0};
    int rc = filter_args(argc, argv, "keypair list ", &f);
    struct nubo_client *client = rc ? NULL : cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_keypair_list *l = nubo_keypairs_list(client, f.items, f.n, &err);
    if (!l) {
        return cli_fail(&err);
    }
    struct cli_table t = {5, keypair_cols, NULL, 0, 0};
    cli_print_list(cli, &t, l->items, l->n, sizeof *l->items, keypair_row);
    nubo_keypair_list_free(l);
    return CLI_OK;
}

static int keypair_delete(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one key pair name", &rc);
    if (!client) {
        return rc;
    }
    const char *name = argv[optind];
    struct nubo_error err;
    if (nubo_keypair_delete(client, name, &err) < 0) {
        return cli_fail(&err);
    }
    if (cli->json) {
        printf("{\"deleted\": true}\n");
    } else {
        printf("deleted key pair %s\n", name);
    }
    return CLI_OK;
}

/* --- tag ------------------------------------------------------------------------------------ */

static int tag_list(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"filter", required_argument, NULL, 'f'},
                                         {"resource", required_argument, NULL, 'r'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"page-size", required_argument, NULL, 'p'},
                                         {NULL, 0, NULL, 0}};
    struct nubo_filter f[MAX_ITEMS];
    size_t nf = 0;
    long long page = 0;
    int c;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (nf == MAX_ITEMS) {
            return cli_usage_error("tag list ", "too many filters");
        } else if (c == 'f' && parse_filter(optarg, &f[nf]) == 0) {
            nf++;
        } else if (c == 'r') {
            f[nf++] = (struct nubo_filter){"resource-id", optarg};
        } else if (c == 'k') {
            f[nf++] = (struct nubo_filter){"key", optarg};
        } else if (c == 'p' && cli_parse_int(optarg, 1, 1000, &page) == 0) {
        } else {
            return cli_usage_error("tag list ", "invalid option");
        }
    }
    if (optind < argc) {
        return cli_usage_error("tag list ", "unexpected argument \"%s\"", argv[optind]);
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    static const char *const cols[] = {"resource", "type", "key", "value"};
    struct cli_table t = {4, cols, NULL, 0, 0};
    struct cli_json *j = cli_json_new(true);
    struct nubo_error err;
    struct nubo_tag_iter *it = nubo_tag_iter_new(client, f, nf, (int)page);
    const struct nubo_tag_row *row;
    int got;
    while ((got = nubo_tag_iter_next(it, &row, &err)) == 1) {
        const char *cells[] = {row->resource_id, row->resource_type, row->key, row->value};
        cli_table_add(&t, cells);
        cli_json_add(j, row->json);
    }
    nubo_tag_iter_free(it);
    if (got < 0) {
        cli_table_free(&t);
        cli_json_free(j);
        return cli_fail(&err);
    }
    cli_output(cli, j, &t);
    return CLI_OK;
}

static int tag_set(struct cli *cli, int argc, char **argv)
{
    const char *cmd = "tag set ";
    static const struct option none[] = {{NULL, 0, NULL, 0}};
    cli_getopt_reset();
    if (getopt_long(argc, argv, "", none, NULL) != -1) {
        return cli_usage_error(cmd, "invalid option");
    }
    if (argc - optind < 2) {
        return cli_usage_error(cmd, "expected RESOURCE_ID KEY=VALUE...");
    }
    struct nubo_tag tags[MAX_ITEMS];
    size_t n = 0;
    for (int i = optind + 1; i < argc; i++) {
        if (n == MAX_ITEMS || parse_tag(argv[i], &tags[n]) < 0) {
            return cli_usage_error(cmd, "expected KEY=VALUE, not \"%s\"", argv[i]);
        }
        n++;
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    if (nubo_tags_set(client, argv[optind], tags, n, &err) < 0) {
        return cli_fail(&err);
    }
    if (cli->json) {
        printf("{\"resource_id\": \"%s\", \"tags_set\": %zu}\n", argv[optind], n);
    } else {
        printf("set %zu tag%s on %s\n", n, n == 1 ? "" : "s", argv[optind]);
    }
    return CLI_OK;
}

static int tag_delete(struct cli *cli, int argc, char **argv)
{
    const char *cmd = "tag delete ";
    bool all = false;
    const struct cli_opt opts[] = {CLI_FLAG("all", &all)};
    if (cli_parse_opts(argc, argv, cmd, opts, CLI_N_OPTS(opts), "invalid option") < 0) {
        return CLI_USAGE;
    }
    if (argc - optind < 1 || (all == (argc - optind > 1))) {
        return cli_usage_error(cmd, "expected RESOURCE_ID KEY... or RESOURCE_ID --all");
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    if (all && nubo_tags_delete(client, argv[optind], NULL, &err) < 0) {
        return cli_fail(&err);
    }
    for (int i = optind + 1; i < argc; i++) {
        if (nubo_tags_delete(client, argv[optind], argv[i], &err) < 0) {
            return cli_fail(&err);
        }
    }
    if (cli->json) {
        printf("{\"resource_id\": \"%s\", \"deleted\": true}\n", argv[optind]);
    } else {
        printf("deleted %s tags of %s\n", all ? "all" : "the", argv[optind]);
    }
    return CLI_OK;
}

/* --- region, zone, type --------------------------------------------------------------------- */

static int no_args(int argc, char **argv, const char *cmd)
{
    static const struct option none[] = {{NULL, 0, NULL, 0}};
    cli_getopt_reset();
    if (getopt_long(argc, argv, "", none, NULL) != -1 || optind < argc) {
        return cli_usage_error(cmd, "this command takes no arguments");
    }
    return CLI_OK;
}

static const char *region_row(struct cli_table *t, const void *item)
{
    const struct nubo_region *r = item;
    const char *cells[] = {r->name, r->endpoint};
    cli_table_add(t, cells);
    return r->json;
}

static const char *zone_row(struct cli_table *t, const void *item)
{
    const struct nubo_zone *z = item;
    const char *cells[] = {z->name, z->region, z->state};
    cli_table_add(t, cells);
    return z->json;
}

static int region_list(struct cli *cli, int argc, char **argv)
{
    int rc = no_args(argc, argv, "region list ");
    struct nubo_client *client = rc ? NULL : cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_region_list *l = nubo_regions_list(client, &err);
    if (!l) {
        return cli_fail(&err);
    }
    static const char *const cols[] = {"name", "endpoint"};
    struct cli_table t = {2, cols, NULL, 0, 0};
    cli_print_list(cli, &t, l->items, l->n, sizeof *l->items, region_row);
    nubo_region_list_free(l);
    return CLI_OK;
}

static int zone_list(struct cli *cli, int argc, char **argv)
{
    int rc = no_args(argc, argv, "zone list ");
    struct nubo_client *client = rc ? NULL : cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_zone_list *l = nubo_zones_list(client, NULL, 0, &err);
    if (!l) {
        return cli_fail(&err);
    }
    static const char *const cols[] = {"name", "region", "state"};
    struct cli_table t = {3, cols, NULL, 0, 0};
    cli_print_list(cli, &t, l->items, l->n, sizeof *l->items, zone_row);
    nubo_zone_list_free(l);
    return CLI_OK;
}

static int type_list(struct cli *cli, int argc, char **argv)
{
    struct cli_filters f = {.n = 0};
    int rc = filter_args(argc, argv, "type list ", &f);
    struct nubo_client *client = rc ? NULL : cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    static const char *const cols[] = {"name", "vcpus", "memory_mib", "disk_gib", "ephemeral_gib"};
    struct cli_table t = {5, cols, NULL, 0, 0};
    struct cli_json *j = cli_json_new(true);
    struct nubo_error err;
    struct nubo_instance_type_iter *it = nubo_instance_type_iter_new(client, f.items, f.n, 0);
    const struct nubo_instance_type *ty;
    int got;
    while ((got = nubo_instance_type_iter_next(it, &ty, &err)) == 1) {
        char v[16], m[16], d[16], e[16];
        snprintf(v, sizeof v, "%d", ty->vcpus);
        snprintf(m, sizeof m, "%d", ty->memory_mib);
        snprintf(d, sizeof d, "%d", ty->disk_gib);
        snprintf(e, sizeof e, "%d", ty->ephemeral_gib);
        const char *cells[] = {ty->name, v, m, d, e};
        cli_table_add(&t, cells);
        cli_json_add(j, ty->json);
    }
    nubo_instance_type_iter_free(it);
    if (got < 0) {
        cli_table_free(&t);
        cli_json_free(j);
        return cli_fail(&err);
    }
    cli_output(cli, j, &t);
    return CLI_OK;
}

const struct cli_cmd cli_compute_cmds[] = {
    {"instance", "run", instance_run, "--image ID [OPTIONS]", "launch instances",
     "  --image ID             the image to launch (required)\n"
     "  --type NAME            the instance type (default t3.micro)\n"
     "  --count N              how many, 1-1000 (default 1)\n"
     "  --key NAME             the key pair to install\n"
     "  --zone NAME            the availability zone (default: the first available)\n"
     "  --tag KEY=VALUE        a tag (repeatable)\n"
     "  --user-data-file FILE  user data (sent base64-encoded)\n"
     "  --client-token TOKEN   make the launch idempotent (default: a random token)\n"
     "  --wait                 wait until the instances reach --state (default running)\n"
     "  --state STATE          the state --wait waits for\n"
     "  --timeout SECONDS      how long --wait waits (default 300); exit 5 when it runs out\n"
     "  --placement-group NAME launch into one of your placement groups\n"
     "  --partition N          a partition (1-7) of a partition placement group\n"
     "  --tenancy TENANCY      default, or dedicated (only hosts dedicated to your tenant)\n"
     "  --subnet SUBNET_ID     give each instance an interface in this subnet (and its zone)\n"
     "  --private-ip ADDRESS   the interface's address (one instance only; default: the\n"
     "                         lowest free)\n"
     "  --sg SG_ID             a security group of the subnet's VPC (repeatable; default: the\n"
     "                         VPC's default group; needs --subnet)\n"},
    {"instance", "list", instance_list, "[--state S] [--filter NAME=V1,V2]...", "list instances",
     "  --state S1,S2          only instances in these states\n"
     "  --filter NAME=V1,V2    an EC2 filter: instance-id, instance-type, image-id, key-name,\n"
     "                         availability-zone, reservation-id, tag:KEY, tag-key, tag-value\n"
     "  --page-size N          fetch N at a time (1-1000; default all at once)\n"},
    {"instance", "show", instance_show, "INSTANCE_ID", "show one instance", NULL},
    {"instance", "console", instance_console, "INSTANCE_ID [--vnc]",
     "print the tail of an instance's serial console, or the URL of its screen",
     "  --vnc                  print instead the URL of the in-browser console of the running\n"
     "                         instance's screen (a ticket: it opens once, for a few seconds;\n"
     "                         --output json prints the ticket)\n"},
    {"instance", "stop", instance_op, "INSTANCE_ID...", "stop instances", NULL},
    {"instance", "start", instance_op, "INSTANCE_ID...", "start stopped instances", NULL},
    {"instance", "reboot", instance_op, "INSTANCE_ID...", "reboot running instances", NULL},
    {"instance", "terminate", instance_op, "INSTANCE_ID...", "terminate instances", NULL},
    {"instance", "image", instance_image, "INSTANCE_ID --name NAME [OPTIONS]",
     "make an image of a running or stopped instance; print its id",
     "  --name NAME            the image's name, unique in your tenant (required)\n"
     "  --description TEXT     its description\n"
     "  --wait                 wait until the image is available (exit 1 when it failed)\n"
     "  --timeout SECONDS      how long --wait waits (default 600); exit 5 when it runs out\n"},
    {"keypair", "create", keypair_create, "NAME [--type rsa|ed25519] [--out FILE]",
     "create a key pair; its private key is shown this once",
     "  --type TYPE            rsa (default) or ed25519\n"
     "  --out FILE             write the private key to FILE (created with mode 0600; must not\n"
     "                         exist) instead of printing it\n"},
    {"keypair", "import", keypair_import, "NAME --public-key-file FILE | --public-key LINE",
     "import an OpenSSH public key",
     "  --public-key-file FILE  the public key file (its first line)\n"
     "  --public-key LINE       the public key itself\n"},
    {"keypair", "list", keypair_list, "[--filter NAME=V1,V2]...", "list key pairs",
     "  --filter NAME=V1,V2    key-pair-id, key-name, fingerprint, key-type, tag:KEY\n"},
    {"keypair", "delete", keypair_delete, "NAME", "delete a key pair", NULL},
    {"tag", "list", tag_list, "[--resource ID] [--key KEY] [--filter NAME=V1,V2]...", "list tags",
     "  --resource ID          only this resource's tags\n"
     "  --key KEY              only tags with this key\n"
     "  --filter NAME=V1,V2    key, value, resource-id, resource-type\n"
     "  --page-size N          fetch N at a time (1-1000)\n"},
    {"tag", "set", tag_set, "RESOURCE_ID KEY=VALUE...", "add or overwrite tags", NULL},
    {"tag", "delete", tag_delete, "RESOURCE_ID KEY... | RESOURCE_ID --all", "remove tags",
     "  --all                  remove every tag of the resource\n"},
    {"region", "list", region_list, "", "list regions", NULL},
    {"zone", "list", zone_list, "", "list availability zones", NULL},
    {"type", "list", type_list, "[--filter NAME=V1,V2]...", "list instance types",
     "  --filter NAME=V1,V2    instance-type, vcpu-info.default-vcpus, memory-info.size-in-mib\n"},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
