/* The nubo CLI's shared parts: the context every command gets, the command table, output
 * (tables and JSON) and the exit codes (see nubo(1)). */
#ifndef NUBO_CLI_H
#define NUBO_CLI_H

#include "nubo/nubo.h"

#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>

/* Exit codes: what a script can tell apart. */
enum {
    CLI_OK = 0,
    CLI_API_ERROR = 1,   /* the API refused the call (any other error code) */
    CLI_USAGE = 2,       /* bad command line, checked before anything is sent */
    CLI_NOT_FOUND = 3,   /* a resource named does not exist (*.NotFound) */
    CLI_AUTH = 4,        /* no or wrong credentials, disabled key, role not allowed */
    CLI_UNAVAILABLE = 5, /* endpoint unreachable, 5xx, or a --wait that timed out */
};

/* What every command gets. */
struct cli {
    const char *profile;        /* --profile, or NULL */
    const char *endpoint;       /* --endpoint, or NULL */
    bool json;                  /* --output json */
    bool csv;                   /* --output csv (only commands in main.c's csv_cmds take it) */
    struct nubo_client *client; /* made on first use by cli_client() */
    const struct cli_cmd *cmd;  /* the command being run, set by main() */
    char prefix[160];           /* "GROUP VERB ", the 'cmd' of its usage errors */
};

struct cli_cmd {
    const char *group; /* "instance", "admin tenant" */
    const char *verb;  /* "run" */
    int (*run)(struct cli *cli, int argc, char **argv);
    const char *usage;   /* the arguments after "nubo GROUP VERB" */
    const char *summary; /* one line */
    const char *help;    /* the options, one per line, or NULL */
};

extern const struct cli_cmd cli_compute_cmds[];
extern const struct cli_cmd cli_image_cmds[];
extern const struct cli_cmd cli_admin_cmds[];
extern const struct cli_cmd cli_host_cmds[];
extern const struct cli_cmd cli_network_cmds[];
extern const struct cli_cmd cli_network_edge_cmds[];
extern const struct cli_cmd cli_network_routing_cmds[];
extern const struct cli_cmd cli_billing_cmds[];
extern const struct cli_cmd cli_vdi_cmds[];
extern const struct cli_cmd cli_event_cmds[];

/* Returns the client of 'cli', made from --profile/--endpoint and the environment on first use;
 * NULL after printing why (and setting '*code' to the exit code). */
struct nubo_client *cli_client(struct cli *cli, int *code);

/* Prints "nubo: <message>" for 'err' to stderr, with the request id, and returns the exit code
 * that 'err' means. */
int cli_fail(const struct nubo_error *err);

/* Prints "nubo: <printf message>" and "try 'nubo GROUP VERB --help'" to stderr; returns
 * CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses a non-negative integer 'text' in [min, max] into '*out'. Returns 0, or -1. */
int cli_parse_int(const char *text, long long min, long long max, long long *out);

/* Resets getopt for a command's argv ("verb --opt ..."). */
void cli_getopt_reset(void);

/* One option of a command, and where its value goes. */
enum cli_opt_kind {
    CLI_OPT_STR,  /* 'dest' is a const char **, set to the argument */
    CLI_OPT_FLAG, /* 'dest' is a bool *, set to true; the option takes no argument */
    CLI_OPT_INT,  /* 'dest' is a long long *, the argument read by cli_parse_int(min, max) */
    CLI_OPT_FN,   /* 'fn' reads the argument into 'dest'; returns 0, or -1 when it is invalid */
};

struct cli_opt {
    const char *name; /* the long option, without "--" */
    enum cli_opt_kind kind;
    void *dest;
    long long min, max;               /* CLI_OPT_INT */
    int (*fn)(char *arg, void *dest); /* CLI_OPT_FN */
    const char *bad;                  /* the usage error when invalid, or NULL */
};

#define CLI_MAX_OPTS 24
#define CLI_STR(n, d)                                                                              \
    {                                                                                              \
        .name = (n), .kind = CLI_OPT_STR, .dest = (d)                                              \
    }
#define CLI_FLAG(n, d)                                                                             \
    {                                                                                              \
        .name = (n), .kind = CLI_OPT_FLAG, .dest = (d)                                             \
    }
#define CLI_INT(n, d, lo, hi, msg)                                                                 \
    {                                                                                              \
        .name = (n), .kind = CLI_OPT_INT, .dest = (d), .min = (lo), .max = (hi), .bad = (msg)      \
    }
#define CLI_FN(n, d, f, msg)                                                                       \
    {                                                                                              \
        .name = (n), .kind = CLI_OPT_FN, .dest = (d), .fn = (f), .bad = (msg)                      \
    }
#define CLI_N_OPTS(a) (sizeof(a) / sizeof((a)[0]))

/* Parses the options of 'argv' by the table 'opts' of 'n' (at most CLI_MAX_OPTS) entries,
 * storing each value through its 'dest', in the order given. An unknown option prints the
 * usage error 'invalid' for 'cmd'; an invalid value prints the option's 'bad' (or 'invalid').
 * Returns how many options were given ('optind' then points at the first argument), or -1
 * after a usage error. */
int cli_parse_opts(int argc, char **argv, const char *cmd, const struct cli_opt *opts, size_t n,
                   const char *invalid);

/* Returns CLI_OK when no argument follows the options of 'argv' ('optind'), or CLI_USAGE after
 * printing the first one as unexpected. */
int cli_no_more_args(int argc, char **argv, const char *cmd);

/* Checks that 'argv' has no options and exactly 'n' arguments, 'what' naming them in the usage
 * error ("one tenant id"). Returns CLI_OK, or CLI_USAGE after printing why; 'optind' then
 * points at the first argument. */
int cli_positional(int argc, char **argv, int n, const char *cmd, const char *what);

/* cli_positional() for the command being run (its usage errors name 'cli->prefix'), then
 * cli_client(). Returns the client, or NULL with '*code' set to the exit code. */
struct nubo_client *cli_args_client(struct cli *cli, int argc, char **argv, int n, const char *what,
                                    int *code);

/* Up to CLI_MAX_FILTERS list filters gathered from repeated --filter options. */
#define CLI_MAX_FILTERS 64
struct cli_filters {
    struct nubo_filter items[CLI_MAX_FILTERS];
    size_t n;
};

/* A CLI_OPT_FN reader: "--filter NAME=V1,V2" into the struct cli_filters 'dest' (pointing into
 * 'arg'). Returns 0, or -1 when there is no '=' or too many filters. */
int cli_add_filter(char *arg, void *dest);

/* Up to CLI_MAX_TAGS tags gathered from repeated --tag options. */
#define CLI_MAX_TAGS 64
struct cli_tags {
    struct nubo_tag items[CLI_MAX_TAGS];
    size_t n;
};

/* A CLI_OPT_FN reader: "--tag KEY=VALUE" into the struct cli_tags 'dest' (pointing into 'arg').
 * Returns 0, or -1 when there is no '=' or too many tags. */
int cli_add_tag(char *arg, void *dest);

/* Prints the JSON document 'doc' (stolen; NULL prints "null"), indented, to stdout. */
void cli_print_json(json_t *doc);

/* Cuts "NAME=VALUE" in place at its first '=', leaving NAME in 'arg'. Returns VALUE (pointing
 * into 'arg'), or NULL when there is no '=' or NAME is empty. */
char *cli_split_pair(char *arg);

/* --- output ---------------------------------------------------------------------------------- */

/* A table of strings printed with aligned columns and an upper-case header. */
struct cli_table {
    size_t n_cols;
    const char *const *headers;
    char **cells; /* n_rows * n_cols, owned */
    size_t n_rows, cap;
};

/* Appends a row of 'n_cols' cells (printf-free: the strings are copied; NULL prints "-"). */
void cli_table_add(struct cli_table *t, const char *const *cells);

/* Prints 't' to stdout and frees its cells. */
void cli_table_print(struct cli_table *t);

/* Frees the cells of 't' without printing them. */
void cli_table_free(struct cli_table *t);

/* Collects JSON texts (the 'json' fields of libnubo's structs) into one document. */
struct cli_json;

/* Returns a new collector of an array ('array' true) or of one object; NULL when out of memory. */
struct cli_json *cli_json_new(bool array);

/* Adds the JSON text 'text' (an array element, or the object itself). */
void cli_json_add(struct cli_json *j, const char *text);

/* Prints the document, indented, to stdout and frees 'j'. */
void cli_json_print(struct cli_json *j);

/* Frees 'j' without printing it. Accepts NULL. */
void cli_json_free(struct cli_json *j);

/* Prints 'j' (--output json) or 't', frees the other, and returns CLI_OK. */
int cli_output(const struct cli *cli, struct cli_json *j, struct cli_table *t);

/* Adds the row of the list item 'item' to 't' and returns the item's JSON text. */
typedef const char *cli_row_fn(struct cli_table *t, const void *item);

/* Prints the 'n' items of 'size' bytes at 'items' as a JSON array (--output json) or as the
 * table 't' (empty, with its headers set), a row each by 'row'. Returns CLI_OK. */
int cli_print_list(const struct cli *cli, struct cli_table *t, const void *items, size_t n,
                   size_t size, cli_row_fn *row);

/* Prints one JSON text 'json' (--output json) or a one-row table of 'n_cols' 'cells' under
 * 'cols'. */
void cli_print_one(const struct cli *cli, const char *json, size_t n_cols, const char *const *cols,
                   const char *const *cells);

/* Prints 'n' (field, value) pairs of 'pairs' as a two-column table. */
void cli_print_fields(const char *const *pairs, size_t n);

/* Prints 'n' tags as "k=v,k2=v2" into a new string the caller free()s. */
char *cli_tags_text(const struct nubo_tag *tags, size_t n);

/* Prints the console ticket 't': with --output json its JSON with "viewer_url" and
 * "websocket_url" added; else the viewer URL alone on stdout (what a script or a person opens),
 * and on stderr how long it stays valid. */
void cli_print_ticket(const struct cli *cli, const struct nubo_console_ticket *t);

/* --- waiting --------------------------------------------------------------------------------- */

/* What a --wait shows on stderr: a spinner line on a terminal, one line per state otherwise. */
struct cli_wait_progress {
    bool tty; /* set from isatty(2) */
    char last[64];
    int ticks;
};

/* Reports that 'id' is in 'state' after 'elapsed' seconds. */
void cli_wait_report(struct cli_wait_progress *p, const char *id, const char *state,
                     double elapsed);

/* Ends the spinner line, if there is one. */
void cli_wait_done(const struct cli_wait_progress *p);

/* Prints why a wait failed and returns its exit code: CLI_UNAVAILABLE for a "Timeout", else
 * cli_fail()'s. */
int cli_wait_fail(const struct nubo_error *err);

#endif
