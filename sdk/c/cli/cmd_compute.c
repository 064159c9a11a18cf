/* The tenant's commands: instance, image, keypair, tag, region, zone and type. Each parses its
 * options with getopt_long, calls libnubo, and prints a table or JSON. */
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

/* Resets getopt for a command's argv ("verb --opt ..."). */
static void getopt_reset(void)
{
    optind = 0;
    opterr = 1;
}

/* Splits "NAME=VALUES" into a filter; returns 0, or -1 when there is no '='. */
static int parse_filter(char *arg, struct nubo_filter *f)
{
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        return -1;
    }
    *eq = '\0';
    f->name = arg;
    f->values = eq + 1;
    return 0;
}

/* Splits "KEY=VALUE" into a tag (pointing into 'arg'); returns 0, or -1. */
static int parse_tag(char *arg, struct nubo_tag *t)
{
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        return -1;
    }
    *eq = '\0';
    t->key = arg;
    t->value = eq + 1;
    return 0;
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

static const char *const instance_cols[] = {"id", "state", "type", "image", "zone", "key",
                                            "launched", "tags"};

static void instance_row(struct cli_table *t, const struct nubo_instance *in)
{
    char *tags = cli_tags_text(in->tags, in->n_tags);
    const char *cells[] = {in->id,   in->state,       in->instance_type, in->image_id,
                           in->zone, in->key_name,    in->launch_time,   tags};
    cli_table_add(t, cells);
    free(tags);
}

/* Shows progress while waiting: a spinner line on a terminal, one line per state otherwise. */
struct wait_progress {
    bool tty;
    char last[32];
    int ticks;
};

static int on_wait(const struct nubo_instance *in, double elapsed, void *arg)
{
    struct wait_progress *p = arg;
    static const char spin[] = "|/-\\";
    if (p->tty) {
        fprintf(stderr, "\r%c %s %-14s %5.0f s", spin[p->ticks++ % 4], in->id, in->state, elapsed);
    } else if (strcmp(p->last, in->state)) {
        fprintf(stderr, "%s %s (%.0f s)\n", in->id, in->state, elapsed);
    }
    snprintf(p->last, sizeof p->last, "%s", in->state);
    return 0;
}

static int instance_run(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"image", required_argument, NULL, 'i'},   {"type", required_argument, NULL, 't'},
        {"count", required_argument, NULL, 'c'},   {"key", required_argument, NULL, 'k'},
        {"zone", required_argument, NULL, 'z'},    {"tag", required_argument, NULL, 'T'},
        {"user-data-file", required_argument, NULL, 'u'},
        {"client-token", required_argument, NULL, 'C'},
        {"wait", no_argument, NULL, 'w'},          {"timeout", required_argument, NULL, 'o'},
        {"state", required_argument, NULL, 's'},   {NULL, 0, NULL, 0}};
    struct nubo_run_params p = {0};
    struct nubo_tag tags[MAX_ITEMS];
    const char *user_data_file = NULL, *state = "running";
    long long count = 1, timeout = 300;
    bool wait = false;
    int c;
    getopt_reset();
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'i': p.image_id = optarg; break;
        case 't': p.instance_type = optarg; break;
        case 'k': p.key_name = optarg; break;
        case 'z': p.zone = optarg; break;
        case 'u': user_data_file = optarg; break;
        case 'C': p.client_token = optarg; break;
        case 'w': wait = true; break;
        case 's': state = optarg; break;
        case 'c':
            if (cli_parse_int(optarg, 1, 1000, &count) < 0) {
                return cli_usage_error("instance run ", "--count must be 1-1000");
            }
            break;
        case 'o':
            if (cli_parse_int(optarg, 1, 86400, &timeout) < 0) {
                return cli_usage_error("instance run ", "--timeout must be 1-86400 seconds");
            }
            break;
        case 'T':
            if (p.n_tags == MAX_ITEMS || parse_tag(optarg, &tags[p.n_tags]) < 0) {
                return cli_usage_error("instance run ", "--tag needs KEY=VALUE");
            }
            p.n_tags++;
            break;
        default: return cli_usage_error("instance run ", "invalid option");
        }
    }
    if (!p.image_id || optind < argc) {
        return cli_usage_error("instance run ", optind < argc ? "unexpected argument \"%s\""
                                                             : "--image is required%s",
                               optind < argc ? argv[optind] : "");
    }
    p.tags = tags;
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
    struct nubo_instance_list *l = client ? nubo_instances_run(client, &p, &err) : NULL;
    free(user_data);
    if (!client) {
        return rc;
    }
    if (!l) {
        return cli_fail(&err);
    }
    struct cli_json *j = cli_json_new(true);
    struct cli_table t = {8, instance_cols, NULL, 0, 0};
    for (size_t i = 0; i < l->n && wait; i++) {
        struct wait_progress wp = {.tty = isatty(2)};
        struct nubo_instance *in = nubo_instance_wait(client, l->items[i].id, state,
                                                      (double)timeout, 1000, on_wait, &wp, &err);
        if (wp.tty) {
            fputc('\n', stderr);
        }
        if (!in) {
            if (!strcmp(err.code, "Timeout")) {
                fprintf(stderr, "nubo: timed out: %s\n", err.message);
                rc = CLI_UNAVAILABLE;
            } else {
                rc = cli_fail(&err);
            }
            break;
        }
        nubo_instance_free(in);
    }
    for (size_t i = 0; i < l->n; i++) {
        if (cli->json) {
            cli_json_add(j, l->items[i].json);
        } else {
            instance_row(&t, &l->items[i]);
        }
    }
    if (cli->json) {
        cli_json_print(j);
    } else {
        cli_json_print(NULL);
        free(j);
        cli_table_print(&t);
    }
    nubo_instance_list_free(l);
    return rc;
}

static int instance_list(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"filter", required_argument, NULL, 'f'},
                                         {"state", required_argument, NULL, 's'},
                                         {"page-size", required_argument, NULL, 'p'},
                                         {NULL, 0, NULL, 0}};
    struct nubo_filter f[MAX_ITEMS];
    size_t nf = 0;
    long long page = 0;
    int c;
    getopt_reset();
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'f' && nf < MAX_ITEMS && parse_filter(optarg, &f[nf]) == 0) {
            nf++;
        } else if (c == 's' && nf < MAX_ITEMS) {
            f[nf++] = (struct nubo_filter){"instance-state-name", optarg};
        } else if (c == 'p' && cli_parse_int(optarg, 1, 1000, &page) == 0) {
        } else {
            return cli_usage_error("instance list ",
                                   "invalid option (--filter NAME=V1,V2; --page-size 1-1000)");
        }
    }
    if (optind < argc) {
        return cli_usage_error("instance list ", "unexpected argument \"%s\"", argv[optind]);
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_instance_iter *it = nubo_instance_iter_new(client, f, nf, (int)page);
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
        cli_table_print(&t); /* frees; prints nothing useful but the header */
        cli_json_print(NULL);
        free(j);
        return cli_fail(&err);
    }
    if (cli->json) {
        cli_json_print(j);
    } else {
        free(j);
        cli_table_print(&t);
    }
    return CLI_OK;
}

/* Prints 'n' (field, value) pairs as a two-column table. */
static void print_fields(const char *const *pairs, size_t n)
{
    static const char *const cols[] = {"field", "value"};
    struct cli_table t = {2, cols, NULL, 0, 0};
    for (size_t i = 0; i < n; i++) {
        cli_table_add(&t, pairs + 2 * i);
    }
    cli_table_print(&t);
}

/* The one positional argument of 'argv' after the options; NULL after a usage error. */
static const char *one_arg(int argc, char **argv, const char *cmd, const char *what)
{
    getopt_reset();
    static const struct option none[] = {{NULL, 0, NULL, 0}};
    if (getopt_long(argc, argv, "", none, NULL) != -1) {
        cli_usage_error(cmd, "invalid option");
        return NULL;
    }
    if (optind + 1 != argc) {
        cli_usage_error(cmd, "expected one %s", what);
        return NULL;
    }
    return argv[optind];
}

static int instance_show(struct cli *cli, int argc, char **argv)
{
    const char *id = one_arg(argc, argv, "instance show ", "instance id");
    if (!id) {
        return CLI_USAGE;
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
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
        const char *pairs[] = {"id",           in->id,
                               "state",        in->state,
                               "state_reason", in->state_reason_message ? in->state_reason_message
                                                                        : in->state_reason_code,
                               "type",         in->instance_type,
                               "vcpus",        vcpus,
                               "memory_mib",   mem,
                               "image",        in->image_id,
                               "zone",         in->zone,
                               "key",          in->key_name,
                               "reservation",  in->reservation_id,
                               "launch_index", idx,
                               "owner",        in->owner_id,
                               "launched",     in->launch_time,
                               "tags",         tags};
        print_fields(pairs, sizeof pairs / sizeof pairs[0] / 2);
        free(tags);
    }
    nubo_instance_free(in);
    return CLI_OK;
}

static int instance_op(struct cli *cli, int argc, char **argv, enum nubo_instance_op op,
                       const char *cmd)
{
    static const struct option none[] = {{NULL, 0, NULL, 0}};
    getopt_reset();
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
    if (cli->json) {
        cli_json_print(j);
        cli_table_print(&t); /* frees only: stdout is JSON */
    } else {
        free(j);
        cli_table_print(&t);
    }
    return rc;
}

static int instance_stop(struct cli *cli, int argc, char **argv)
{
    return instance_op(cli, argc, argv, NUBO_INSTANCE_STOP, "instance stop ");
}

static int instance_start(struct cli *cli, int argc, char **argv)
{
    return instance_op(cli, argc, argv, NUBO_INSTANCE_START, "instance start ");
}

static int instance_reboot(struct cli *cli, int argc, char **argv)
{
    return instance_op(cli, argc, argv, NUBO_INSTANCE_REBOOT, "instance reboot ");
}

static int instance_terminate(struct cli *cli, int argc, char **argv)
{
    return instance_op(cli, argc, argv, NUBO_INSTANCE_TERMINATE, "instance terminate ");
}
