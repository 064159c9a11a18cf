/* The live event stream: GET /v1/events read as Server-Sent Events through the client's
 * streamed request, an incremental SSE parser in bounded memory (sse.h), and each
 * event's JSON data read into the typed fields of struct nubo_event. */
#include "internal.h"
#include "sse.h"

#include <stdlib.h>
#include <string.h>

/* The longest event (its data, plus the line being read) the stream may send. The gateway's
 * events are a few hundred bytes. */
#define MAX_EVENT_BYTES (1024 * 1024)

/* --- listening ------------------------------------------------------------------------------- */

struct listener {
    struct nubo_sse sse;
    const struct nubo_events_opts *opts;
    nubo_event_fn fn;
    void *arg;
    double deadline; /* monotonic seconds; 0: none */
    long long delivered;
    bool opened;
    bool stopped;   /* the callback said stop, or 'max_events' came */
    bool timed_out; /* 'timeout_s' passed */
};

static const char *str_field(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Reads the typed fields of an event from its data and hands it to the caller. */
static int on_sse(const char *id, const char *type, const char *data, size_t data_len, void *arg)
{
    struct listener *l = arg;
    if (l->opts->type && strcmp(type, l->opts->type)) {
        return 0;
    }
    struct nubo_event ev = {
        .id = id, .type = type, .data = data, .data_len = data_len, .progress = -1};
    json_t *doc = json_loadb(data, data_len, 0, NULL);
    if (json_is_object(doc)) {
        ev.resource_id = str_field(doc, "instance_id");
        if (!ev.resource_id) {
            ev.resource_id = str_field(doc, "task_id");
        }
        ev.state = str_field(doc, "state");
        ev.previous_state = str_field(doc, "previous_state");
        ev.tenant_id = str_field(doc, "tenant_id");
        ev.image_id = str_field(doc, "image_id");
        ev.kind = str_field(doc, "kind");
        ev.message = str_field(doc, "message");
        if (!ev.message) {
            ev.message = str_field(doc, "reason");
        }
        ev.at = str_field(doc, "at");
        json_t *pr = json_object_get(doc, "progress");
        ev.progress = json_is_integer(pr) ? (int)json_integer_value(pr) : -1;
    }
    int stop = l->fn(&ev, l->arg);
    json_decref(doc);
    l->delivered++;
    if (stop || (l->opts->max_events > 0 && l->delivered >= l->opts->max_events)) {
        l->stopped = true;
        return 1;
    }
    return 0;
}

static bool past_deadline(struct listener *l)
{
    if (l->deadline > 0 && nubo_now_s() >= l->deadline) {
        l->timed_out = true;
    }
    return l->timed_out;
}

/* The stream's bytes as they arrive. */
static int on_bytes(const char *data, size_t n, void *arg)
{
    struct listener *l = arg;
    if (!l->opened) {
        l->opened = true; /* the gateway writes "retry" and a comment as soon as it subscribes */
        if (l->opts->opened) {
            l->opts->opened(l->arg);
        }
    }
    return nubo_sse_feed(&l->sse, data, n, on_sse, l) != 0 || past_deadline(l);
}

/* Called about once a second while nothing comes, too: the deadline's clock. */
static int on_tick(enum nubo_transfer_phase phase, uint64_t done, uint64_t total, void *arg)
{
    (void)phase;
    (void)done;
    (void)total;
    return past_deadline(arg);
}

NUBO_API long long nubo_events_listen(struct nubo_client *c, const struct nubo_events_opts *opts,
                                      nubo_event_fn fn, void *arg, struct nubo_error *err)
{
    static const struct nubo_events_opts all = {0};
    if (!fn) {
        nubo_err_set(err, 0, "InvalidParameterValue", "an event callback is required");
        return -1;
    }
    struct listener l = {.opts = opts ? opts : &all, .fn = fn, .arg = arg};
    l.sse.max_bytes = MAX_EVENT_BYTES;
    if (l.opts->timeout_s > 0) {
        l.deadline = nubo_now_s() + l.opts->timeout_s;
    }
    struct nubo_stream s = {.in_fd = -1,
                            .out_fd = -1,
                            .progress = on_tick,
                            .arg = &l,
                            .sink = on_bytes,
                            .sink_arg = &l};
    char header[160];
    if (l.opts->last_event_id) {
        if (strlen(l.opts->last_event_id) > 100 || strpbrk(l.opts->last_event_id, "\r\n")) {
            nubo_err_set(err, 0, "InvalidParameterValue", "\"%s\" is no event id",
                         l.opts->last_event_id);
            return -1;
        }
        snprintf(header, sizeof header, "Last-Event-ID: %s", l.opts->last_event_id);
        s.header = header;
    }
    struct nubo_error e;
    char *reply = NULL;
    int rc = nubo_client_stream(c, "GET", "/v1/events", NULL, &s, false, &reply, &e);
    free(reply);
    enum nubo_sse_failure failed = l.sse.failed;
    nubo_sse_clear(&l.sse);
    if (failed == NUBO_SSE_TOO_LONG) {
        nubo_err_set(err, 0, "ProtocolError",
                     "an event of the stream is over the limit of %d bytes", MAX_EVENT_BYTES);
        return -1;
    }
    if (failed == NUBO_SSE_NO_MEMORY) {
        nubo_err_set(err, 0, "ConfigError", "out of memory reading the event stream");
        return -1;
    }
    if (l.stopped || l.timed_out) {
        return l.delivered;
    }
    if (rc < 0) {
        if (err) {
            *err = e;
        }
        return -1;
    }
    nubo_err_set(err, 0, "ConnectionError", "the event stream of \"%s\" ended",
                 nubo_client_endpoint(c));
    return -1;
}
