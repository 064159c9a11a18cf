/* The nubo CLI's shared parts: the context every command gets, the command table, output
 * (tables and JSON) and the exit codes (see nubo(1)). */
#ifndef NUBO_CLI_H
#define NUBO_CLI_H

#include "nubo/nubo.h"

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
    struct nubo_client *client; /* made on first use by cli_client() */
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
extern const struct cli_cmd cli_admin_cmds[];

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

/* Prints 'n' tags as "k=v,k2=v2" into a new string the caller free()s. */
char *cli_tags_text(const struct nubo_tag *tags, size_t n);

#endif
