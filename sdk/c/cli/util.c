/* The pieces every command repeats: resetting getopt, checking positional arguments, printing
 * one object or a list as a table or JSON, splitting "NAME=VALUE" arguments, printing console
 * tickets and showing the progress of a --wait. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_getopt_reset(void)
{
    optind = 0;
    opterr = 1;
}

int cli_positional(int argc, char **argv, int n, const char *cmd, const char *what)
{
    static const struct option none[] = {{NULL, 0, NULL, 0}};
    cli_getopt_reset();
    if (getopt_long(argc, argv, "", none, NULL) != -1) {
        return cli_usage_error(cmd, "invalid option");
    }
    if (argc - optind != n) {
        return cli_usage_error(cmd, "expected %s", what);
    }
    return CLI_OK;
}

int cli_parse_opts(int argc, char **argv, const char *cmd, const struct cli_opt *opts, size_t n,
                   const char *invalid)
{
    struct option lo[CLI_MAX_OPTS + 1] = {{NULL, 0, NULL, 0}};
    for (size_t i = 0; i < n && i < CLI_MAX_OPTS; i++) {
        lo[i] = (struct option){opts[i].name,
                                opts[i].kind == CLI_OPT_FLAG ? no_argument : required_argument,
                                NULL, (int)i};
    }
    int c, given = 0;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        const struct cli_opt *o = c >= 0 && (size_t)c < n ? &opts[c] : NULL;
        int bad = !o;
        if (o && o->kind == CLI_OPT_STR) {
            *(const char **)o->dest = optarg;
        } else if (o && o->kind == CLI_OPT_FLAG) {
            *(bool *)o->dest = true;
        } else if (o && o->kind == CLI_OPT_INT) {
            bad = cli_parse_int(optarg, o->min, o->max, o->dest) < 0;
        } else if (o) {
            bad = o->fn(optarg, o->dest) < 0;
        }
        if (bad) {
            cli_usage_error(cmd, "%s", o && o->bad ? o->bad : invalid);
            return -1;
        }
        given++;
    }
    return given;
}

struct nubo_client *cli_args_client(struct cli *cli, int argc, char **argv, int n, const char *what,
                                    int *code)
{
    *code = cli_positional(argc, argv, n, cli->prefix, what);
    return *code == CLI_OK ? cli_client(cli, code) : NULL;
}

int cli_no_more_args(int argc, char **argv, const char *cmd)
{
    if (optind < argc) {
        return cli_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]);
    }
    return CLI_OK;
}

int cli_output(const struct cli *cli, struct cli_json *j, struct cli_table *t)
{
    if (cli->json) {
        cli_json_print(j);
        cli_table_free(t);
    } else {
        cli_json_free(j);
        cli_table_print(t);
    }
    return CLI_OK;
}

int cli_print_list(const struct cli *cli, struct cli_table *t, const void *items, size_t n,
                   size_t size, cli_row_fn *row)
{
    struct cli_json *j = cli_json_new(true);
    for (size_t i = 0; i < n; i++) {
        cli_json_add(j, row(t, (const char *)items + i * size));
    }
    return cli_output(cli, j, t);
}

void cli_print_one(const struct cli *cli, const char *json, size_t n_cols, const char *const *cols,
                   const char *const *cells)
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

void cli_print_fields(const char *const *pairs, size_t n)
{
    static const char *const cols[] = {"field", "value"};
    struct cli_table t = {2, cols, NULL, 0, 0};
    for (size_t i = 0; i < n; i++) {
        cli_table_add(&t, pairs + 2 * i);
    }
    cli_table_print(&t);
}

char *cli_split_pair(char *arg)
{
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        return NULL;
    }
    *eq = '\0';
    return eq + 1;
}

int cli_add_filter(char *arg, void *dest)
{
    struct cli_filters *b = dest;
    char *value = b->n < CLI_MAX_FILTERS ? cli_split_pair(arg) : NULL;
    if (!value) {
        return -1;
    }
    b->items[b->n++] = (struct nubo_filter){arg, value};
    return 0;
}

int cli_add_tag(char *arg, void *dest)
{
    struct cli_tags *b = dest;
    char *value = b->n < CLI_MAX_TAGS ? cli_split_pair(arg) : NULL;
    if (!value) {
        return -1;
    }
    b->items[b->n++] = (struct nubo_tag){arg, value};
    return 0;
}

void cli_print_json(json_t *doc)
{
    char *s = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_ENCODE_ANY) : NULL;
    puts(s ? s : "null");
    free(s);
    json_decref(doc);
}

void cli_print_ticket(const struct cli *cli, const struct nubo_console_ticket *t)
{
    if (cli->json) {
        json_t *doc = json_loads(t->json, 0, NULL);
        if (json_is_object(doc)) {
            json_object_set_new(doc, "viewer_url", json_string(t->viewer_url));
            json_object_set_new(doc, "websocket_url", json_string(t->websocket_url));
        }
        cli_print_json(doc);
        return;
    }
    puts(t->viewer_url);
    /* On stderr, so that stdout stays the URL alone for `xdg-open "$(nubo ...)"`. */
    fprintf(stderr, "nubo: open it within %d s: the ticket opens the console of %s once\n",
            t->expires_in, t->instance_id);
}

void cli_wait_report(struct cli_wait_progress *p, const char *id, const char *state, double elapsed)
{
    static const char spin[] = "|/-\\";
    if (p->tty) {
        fprintf(stderr, "\r%c %s %-14s %5.0f s", spin[p->ticks++ % 4], id, state, elapsed);
    } else if (strcmp(p->last, state)) {
        fprintf(stderr, "%s %s (%.0f s)\n", id, state, elapsed);
    }
    snprintf(p->last, sizeof p->last, "%s", state);
}

void cli_wait_done(const struct cli_wait_progress *p)
{
    if (p->tty && p->ticks) {
        fputc('\n', stderr);
    }
}

int cli_wait_fail(const struct nubo_error *err)
{
    if (!strcmp(err->code, "Timeout")) {
        fprintf(stderr, "nubo: timed out: %s\n", err->message);
        return CLI_UNAVAILABLE;
    }
    return cli_fail(err);
}
