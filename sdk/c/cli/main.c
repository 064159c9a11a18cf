/* nubo: the command line of the nubo cloud, over libnubo. "nubo GROUP VERB [options]", with the
 * global options --profile, --endpoint and --output anywhere on the line. This file parses the
 * global options, finds the command, and maps errors to exit codes; the commands are in
 * cmd_compute.c, cmd_images.c, cmd_network.c, cmd_network_edge.c, cmd_network_routing.c,
 * cmd_billing.c, cmd_vdi.c, cmd_admin.c, cmd_hosts.c and cmd_events.c. */
#include "cli.h"

#include <jansson.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct cli_cmd *const cmd_tables[] = {
    cli_compute_cmds,      cli_image_cmds,           cli_network_cmds,
    cli_network_edge_cmds, cli_network_routing_cmds, cli_billing_cmds,
    cli_vdi_cmds,          cli_admin_cmds,           cli_host_cmds,
    cli_event_cmds};

/* The commands that print CSV with --output csv: where the API itself answers CSV. */
static const char *const csv_cmds[] = {"invoice show"};

/* --- errors and the client ------------------------------------------------------------------- */

int cli_fail(const struct nubo_error *err)
{
    if (err->request_id[0]) {
        fprintf(stderr, "nubo: %s: %s (request %s)\n", err->code, err->message, err->request_id);
    } else {
        fprintf(stderr, "nubo: %s: %s\n", err->code, err->message);
    }
    if (nubo_error_is_not_found(err)) {
        return CLI_NOT_FOUND;
    }
    if (!strcmp(err->code, "FileError")) {
        return CLI_USAGE; /* a local file that cannot be read or written */
    }
    if (nubo_error_is_auth(err)) {
        return CLI_AUTH;
    }
    if (nubo_error_is_unavailable(err)) {
        return CLI_UNAVAILABLE;
    }
    return CLI_API_ERROR;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fputs("nubo: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\ntry 'nubo %s--help'\n", cmd ? cmd : "");
    return CLI_USAGE;
}

struct nubo_client *cli_client(struct cli *cli, int *code)
{
    if (!cli->client) {
        struct nubo_error err;
        cli->client = nubo_client_from_config(cli->profile, cli->endpoint, &err);
        if (!cli->client) {
            *code = !strcmp(err.code, "MissingCredentials") ? CLI_AUTH : CLI_USAGE;
            fprintf(stderr, "nubo: %s\n", err.message);
        }
    }
    return cli->client;
}

int cli_parse_int(const char *text, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

/* --- output ---------------------------------------------------------------------------------- */

void cli_table_add(struct cli_table *t, const char *const *cells)
{
    if (t->n_rows + 1 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **p = realloc(t->cells, cap * t->n_cols * sizeof *p);
        if (!p) {
            return;
        }
        t->cells = p;
        t->cap = cap;
    }
    for (size_t c = 0; c < t->n_cols; c++) {
        t->cells[t->n_rows * t->n_cols + c] = strdup(cells[c] && *cells[c] ? cells[c] : "-");
    }
    t->n_rows++;
}

void cli_table_print(struct cli_table *t)
{
    size_t width[32] = {0};
    for (size_t c = 0; c < t->n_cols && c < 32; c++) {
        width[c] = strlen(t->headers[c]);
        for (size_t r = 0; r < t->n_rows; r++) {
            const char *s = t->cells[r * t->n_cols + c];
            size_t n = s ? strlen(s) : 1;
            width[c] = n > width[c] ? n : width[c];
        }
    }
    for (size_t c = 0; c < t->n_cols; c++) {
        for (const char *h = t->headers[c]; *h; h++) {
            putchar(*h >= 'a' && *h <= 'z' ? *h - 'a' + 'A' : *h);
        }
        if (c + 1 < t->n_cols) {
            printf("%*s", (int)(width[c] - strlen(t->headers[c]) + 2), "");
        }
    }
    putchar('\n');
    for (size_t r = 0; r < t->n_rows; r++) {
        for (size_t c = 0; c < t->n_cols; c++) {
            char *s = t->cells[r * t->n_cols + c];
            if (c + 1 < t->n_cols) {
                printf("%-*s  ", (int)width[c], s ? s : "-");
            } else {
                printf("%s", s ? s : "-");
            }
            free(s);
        }
        putchar('\n');
    }
    free(t->cells);
    t->cells = NULL;
    t->n_rows = t->cap = 0;
}

void cli_table_free(struct cli_table *t)
{
    for (size_t i = 0; i < t->n_rows * t->n_cols; i++) {
        free(t->cells[i]);
    }
    free(t->cells);
    t->cells = NULL;
    t->n_rows = t->cap = 0;
}

struct cli_json {
    json_t *doc;
};

struct cli_json *cli_json_new(bool array)
{
    struct cli_json *j = calloc(1, sizeof *j);
    if (j && array) {
        j->doc = json_array();
    }
    return j;
}

void cli_json_add(struct cli_json *j, const char *text)
{
    json_t *v = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    if (!j || !v) {
        json_decref(v);
        return;
    }
    if (json_is_array(j->doc)) {
        json_array_append_new(j->doc, v);
    } else {
        json_decref(j->doc);
        j->doc = v;
    }
}

void cli_json_print(struct cli_json *j)
{
    if (!j) {
        return;
    }
    char *s = j->doc ? json_dumps(j->doc, JSON_INDENT(2) | JSON_ENCODE_ANY) : NULL;
    puts(s ? s : "null");
    free(s);
    json_decref(j->doc);
    free(j);
}

char *cli_tags_text(const struct nubo_tag *tags, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++) {
        len += strlen(tags[i].key) + strlen(tags[i].value) + 2;
    }
    char *s = malloc(len);
    if (!s) {
        return NULL;
    }
    s[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i) {
            strcat(s, ",");
        }
        strcat(s, tags[i].key);
        strcat(s, "=");
        strcat(s, tags[i].value);
    }
    return s;
}

/* --- help ----------------------------------------------------------------------------------- */

void cli_json_free(struct cli_json *j)
{
    if (j) {
        json_decref(j->doc);
        free(j);
    }
}

static void print_groups(FILE *f)
{
    fputs("usage: nubo [--profile NAME] [--endpoint URL] [--output table|json|csv] GROUP VERB "
          "[ARGS]\n\ncommands:\n",
          f);
    for (size_t t = 0; t < sizeof cmd_tables / sizeof cmd_tables[0]; t++) {
        for (const struct cli_cmd *c = cmd_tables[t]; c->group; c++) {
            char name[64];
            snprintf(name, sizeof name, "%s %s", c->group, c->verb);
            fprintf(f, "  %-24s %s\n", name, c->summary);
        }
    }
    fputs("\nglobal options (anywhere on the line):\n"
          "  --profile NAME        the profile of ~/.config/nubo/config to use\n"
          "  --endpoint URL        the API endpoint (overrides NUBO_ENDPOINT and the profile)\n"
          "  --output table|json   human-readable tables (default) or JSON for scripts\n"
          "                        (csv: invoice show)\n"
          "  --version             print the version\n"
          "\nexit codes: 0 ok, 1 API error, 2 usage error, 3 not found, 4 authentication or\n"
          "permission, 5 unavailable or timed out. See nubo(1).\n",
          f);
}

static void print_group(FILE *f, const char *group)
{
    fprintf(f, "usage: nubo %s VERB [ARGS]\n\nverbs:\n", group);
    for (size_t t = 0; t < sizeof cmd_tables / sizeof cmd_tables[0]; t++) {
        for (const struct cli_cmd *c = cmd_tables[t]; c->group; c++) {
            if (!strcmp(c->group, group)) {
                fprintf(f, "  %-12s %s\n", c->verb, c->summary);
            } else if (!strncmp(c->group, group, strlen(group)) && c->group[strlen(group)] == ' ' &&
                       (c == cmd_tables[t] || strcmp(c[-1].group, c->group))) {
                fprintf(f, "  %-12s (nubo %s --help)\n", c->group + strlen(group) + 1, c->group);
            }
        }
    }
}

static void print_cmd(const struct cli_cmd *c)
{
    printf("usage: nubo %s %s%s%s\n\n%s\n", c->group, c->verb, c->usage[0] ? " " : "", c->usage,
           c->summary);
    if (c->help) {
        printf("\noptions:\n%s", c->help);
    }
    printf("  -h, --help  show this help\n");
}

static bool is_group(const char *name)
{
    for (size_t t = 0; t < sizeof cmd_tables / sizeof cmd_tables[0]; t++) {
        for (const struct cli_cmd *c = cmd_tables[t]; c->group; c++) {
            if (!strcmp(c->group, name)) {
                return true;
            }
        }
    }
    return false;
}

static const struct cli_cmd *find_cmd(const char *group, const char *verb)
{
    for (size_t t = 0; t < sizeof cmd_tables / sizeof cmd_tables[0]; t++) {
        for (const struct cli_cmd *c = cmd_tables[t]; c->group; c++) {
            if (!strcmp(c->group, group) && !strcmp(c->verb, verb)) {
                return c;
            }
        }
    }
    return NULL;
}

static bool wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            return false;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            return true;
        }
    }
    return false;
}

/* Takes the global options out of 'argv' (anywhere before "--"); returns the new argc, or -1
 * after printing a usage error. */
static int take_globals(struct cli *cli, int argc, char **argv)
{
    int out = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        const char *value = NULL;
        if (!strcmp(a, "--")) {
            while (i < argc) {
                argv[out++] = argv[i++];
            }
            break;
        }
        static const char *const names[] = {"--profile", "--endpoint", "--output"};
        for (size_t k = 0; k < 3; k++) {
            size_t n = strlen(names[k]);
            if (!strncmp(a, names[k], n) && (a[n] == '\0' || a[n] == '=')) {
                slot = k == 0 ? &cli->profile : k == 1 ? &cli->endpoint : &value;
                if (a[n] == '=') {
                    *slot = a + n + 1;
                } else if (i + 1 < argc) {
                    *slot = argv[++i];
                } else {
                    cli_usage_error(NULL, "option %s needs a value", names[k]);
                    return -1;
                }
            }
        }
        if (!slot && !strcmp(a, "-o") && i + 1 < argc) {
            slot = &value;
            value = argv[++i];
        }
        if (!slot) {
            argv[out++] = argv[i];
        } else if (slot == &value) {
            cli->json = !strcmp(value, "json");
            cli->csv = !strcmp(value, "csv");
            if (!cli->json && !cli->csv && strcmp(value, "table")) {
                cli_usage_error(NULL, "--output must be table, json or csv, not \"%s\"", value);
                return -1;
            }
        }
    }
    argv[out] = NULL;
    return out;
}

int main(int argc, char **argv)
{
    struct cli cli = {0};
    argc = take_globals(&cli, argc, argv);
    if (argc < 0) {
        return CLI_USAGE;
    }
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        print_groups(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("nubo %s (libnubo %s)\n", NUBO_VERSION, nubo_version());
        return CLI_OK;
    }
    /* "admin tenant create": a two-word group when there is one. */
    char group[128];
    int verb_at = 2;
    snprintf(group, sizeof group, "%.63s", argv[1]);
    if (argc > 2) {
        char two[128];
        snprintf(two, sizeof two, "%.63s %.63s", argv[1], argv[2]);
        if (is_group(two)) {
            memcpy(group, two, sizeof group);
            verb_at = 3;
        }
    }
    bool known = is_group(group) || !strcmp(group, "admin") || !strcmp(group, "vpn");
    if (!known) {
        return cli_usage_error(NULL, "unknown command \"%s\"", argv[1]);
    }
    /* These groups run their command without its verb: "nubo usage [--tenant ID]", "nubo
     * password", "nubo events [--count N]". */
    static char *const bare_verbs[][2] = {
        {"usage", "show"}, {"password", "set"}, {"events", "listen"}};
    char *bare_verb = NULL;
    for (size_t i = 0; i < sizeof bare_verbs / sizeof bare_verbs[0]; i++) {
        if (!strcmp(group, bare_verbs[i][0])) {
            bare_verb = bare_verbs[i][1];
        }
    }
    bool bare = bare_verb && (verb_at >= argc || (argv[verb_at][0] == '-' &&
                                                  !wants_help(argc - verb_at, argv + verb_at)));
    if (bare) {
        argv[--verb_at] = bare_verb;
    }
    if (verb_at >= argc || !strcmp(argv[verb_at], "--help") || !strcmp(argv[verb_at], "-h")) {
        bool help = verb_at < argc;
        print_group(help ? stdout : stderr, group);
        return help ? CLI_OK : CLI_USAGE;
    }
    const struct cli_cmd *cmd = find_cmd(group, argv[verb_at]);
    if (!cmd) {
        char g[160];
        snprintf(g, sizeof g, "%s ", group);
        return cli_usage_error(g, "unknown command \"%s %s\"", group, argv[verb_at]);
    }
    int sub_argc = argc - verb_at;
    char **sub_argv = argv + verb_at;
    if (wants_help(sub_argc, sub_argv)) {
        print_cmd(cmd);
        return CLI_OK;
    }
    cli.cmd = cmd;
    snprintf(cli.prefix, sizeof cli.prefix, "%s %s ", cmd->group, cmd->verb);
    if (cli.csv) {
        char name[160];
        bool takes_csv = false;
        snprintf(name, sizeof name, "%s %s", cmd->group, cmd->verb);
        for (size_t i = 0; i < sizeof csv_cmds / sizeof csv_cmds[0]; i++) {
            takes_csv |= !strcmp(name, csv_cmds[i]);
        }
        if (!takes_csv) {
            return cli_usage_error(cli.prefix, "nubo %s has no CSV output (table or json)", name);
        }
    }
    int rc = cmd->run(&cli, sub_argc, sub_argv);
    nubo_client_free(cli.client);
    if (fflush(stdout) != 0 && rc == CLI_OK) {
        fprintf(stderr, "nubo: could not write the output: %s\n", strerror(errno));
        rc = CLI_API_ERROR;
    }
    return rc;
}
