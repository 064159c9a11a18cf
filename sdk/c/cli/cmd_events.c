/* The event stream: "nubo events" prints the live events of the caller's tenant (an operator's:
 * every tenant's) as they happen, one line each, flushed at once: a fixed-width table line, or
 * with --output json one JSON object per line (the event's data with "event", "event_id" and
 * "received_at" added), for tools that read the lines as they come. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What the listener needs between events. */
struct listen_state {
    const struct cli *cli;
};

/* The time now, UTC, as "2026-01-02T03:04:05Z" into 'out'. */
static void received_at(char out[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

#define ROW_FORMAT "%-20s  %-8s  %-12s  %-28s  %-11s  %s\n"

static void on_opened(void *arg)
{
    struct listen_state *ls = arg;
    fprintf(stderr, "nubo: listening for events on %s\n", nubo_client_endpoint(ls->cli->client));
    if (!ls->cli->json) {
        printf(ROW_FORMAT, "RECEIVED", "TYPE", "ID", "RESOURCE", "STATE", "DETAIL");
        fflush(stdout);
    }
}

static void print_json_event(const struct nubo_event *e, const char *at)
{
    json_t *doc = json_loadb(e->data, e->data_len, 0, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        doc = json_pack("{s:s%}", "data", e->data, e->data_len);
    }
    json_object_set_new(doc, "event", json_string(e->type));
    json_object_set_new(doc, "event_id", json_string(e->id));
    json_object_set_new(doc, "received_at", json_string(at));
    char *s = json_dumps(doc, JSON_COMPACT);
    puts(s ? s : "null");
    free(s);
    json_decref(doc);
}

static void print_row(const struct nubo_event *e, const char *at)
{
    char detail[512];
    if (e->progress >= 0) { /* a task: "42% import ami-1: converting" */
        snprintf(detail, sizeof detail, "%d%% %s %s%s%s", e->progress, e->kind ? e->kind : "-",
                 e->image_id ? e->image_id : "-", e->message && *e->message ? ": " : "",
                 e->message ? e->message : "");
    } else if (e->previous_state || e->message) { /* an instance: "pending -> running" */
        snprintf(detail, sizeof detail, "%s -> %s%s%s%s",
                 e->previous_state ? e->previous_state : "-", e->state ? e->state : "-",
                 e->message ? " (" : "", e->message ? e->message : "", e->message ? ")" : "");
    } else {
        snprintf(detail, sizeof detail, "%.*s", e->data_len > 200 ? 200 : (int)e->data_len,
                 e->data);
    }
    printf(ROW_FORMAT, at, e->type, *e->id ? e->id : "-", e->resource_id ? e->resource_id : "-",
           e->state ? e->state : "-", detail);
}

static int on_event(const struct nubo_event *e, void *arg)
{
    struct listen_state *ls = arg;
    char at[32];
    received_at(at);
    if (ls->cli->json) {
        print_json_event(e, at);
    } else {
        print_row(e, at);
    }
    /* A reader of a pipe sees each event when it happens, not when a buffer fills. */
    return fflush(stdout) != 0;
}

static int parse_type(char *arg, void *dest)
{
    if (strcmp(arg, "instance") && strcmp(arg, "task")) {
        return -1;
    }
    *(const char **)dest = arg;
    return 0;
}

static int events_listen(struct cli *cli, int argc, char **argv)
{
    const char *cmd = cli->prefix;
    struct nubo_events_opts o = {0};
    long long count = 0, timeout = 0;
    const struct cli_opt opts[] = {
        CLI_FN("type", &o.type, parse_type, "--type must be instance or task"),
        CLI_INT("count", &count, 1, 1000000000, "--count must be 1 or more"),
        CLI_INT("timeout", &timeout, 1, 31 * 86400, "--timeout must be 1 or more seconds"),
        CLI_STR("last-event-id", &o.last_event_id),
    };
    if (cli_parse_opts(argc, argv, cmd, opts, CLI_N_OPTS(opts), "invalid option") < 0) {
        return CLI_USAGE;
    }
    int rc = cli_no_more_args(argc, argv, cmd);
    if (rc != CLI_OK) {
        return rc;
    }
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    o.max_events = count;
    o.timeout_s = (int)timeout;
    o.opened = on_opened;
    struct listen_state ls = {.cli = cli};
    struct nubo_error err;
    long long got = nubo_events_listen(client, &o, on_event, &ls, &err);
    if (got < 0) {
        return cli_fail(&err);
    }
    if (count && got < count) {
        fprintf(stderr, "nubo: timed out after %lld s with %lld of %lld events\n", timeout, got,
                count);
        return CLI_UNAVAILABLE;
    }
    return CLI_OK;
}

const struct cli_cmd cli_event_cmds[] = {
    {"events", "listen", events_listen,
     "[--type instance|task] [--count N] [--timeout SECONDS] [--last-event-id ID]",
     "print live events (instance states, image tasks) as they happen",
     "  --type instance|task   only events of this type\n"
     "  --count N              stop after N events (exit 0)\n"
     "  --timeout SECONDS      stop after this long: exit 0, or 5 when --count events have\n"
     "                         not all come\n"
     "  --last-event-id ID     start after the event of this id (the ID column, or\n"
     "                         event_id in JSON): what came since is sent first\n"
     "  (\"nubo events\" alone runs this: \"listen\" may be left out)\n"},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
