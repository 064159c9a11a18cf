/* libnubo's event stream: the SSE parser fed whole, byte by byte and split at every point
 * (LF, CRLF and CR line ends, comments, multi-line data, ids that carry over, unknown fields,
 * a BOM, events over the memory limit), and nubo_events_listen() against a canned server on
 * loopback that streams SSE in pieces (typed fields, filters, counts, the timeout, errors).
 * Needs no gateway. Prints TAP. */
#include "sse.h"

#include "nubo/nubo.h"

#include "canned_server.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* --- the parser ---------------------------------------------------------------------------- */

/* The events seen, as "id|type|data" lines. */
struct seen {
    char text[4096];
    int n;
    int stop_after; /* 0: never stop */
};

static int record(const char *id, const char *type, const char *data, size_t data_len, void *arg)
{
    struct seen *s = arg;
    size_t len = strlen(s->text);
    snprintf(s->text + len, sizeof s->text - len, "%s|%s|%.*s\n", id, type, (int)data_len, data);
    s->n++;
    return s->stop_after && s->n >= s->stop_after;
}

/* Feeds 'in' to a new parser in pieces of 'step' bytes (0: whole; -1: split once at 'at'). */
static int feed(const char *in, size_t len, long step, size_t at, size_t max, struct seen *s,
                enum nubo_sse_failure *failed)
{
    struct nubo_sse p = {.max_bytes = max};
    int rc = 0;
    if (step == 0) {
        rc = nubo_sse_feed(&p, in, len, record, s);
    } else if (step < 0) {
        rc = nubo_sse_feed(&p, in, at, record, s);
        if (rc == 0) {
            rc = nubo_sse_feed(&p, in + at, len - at, record, s);
        }
    } else {
        for (size_t i = 0; i < len && rc == 0; i += (size_t)step) {
            size_t n = len - i < (size_t)step ? len - i : (size_t)step;
            rc = nubo_sse_feed(&p, in + i, n, record, s);
        }
    }
    *failed = p.failed;
    nubo_sse_clear(&p);
    return rc;
}

static const char STREAM[] = "\xEF\xBB\xBF"
                             "retry: 3000\n: subscribed\n\n"
                             "id: 1\nevent: instance\ndata: {\"a\":1}\n\n"
                             "id: task-2\r\nevent: task\r\ndata: x\r\n: a comment inside\r\n"
                             "data:y\r\ndata:  z\r\n\r\n"
                             "event: lonely\n\n"
                             "data: after\r\rfoo: bar\nidx: 9\ndata\n\n"
                             "id\ndata: no id\n\n"
                             "data: unfinished";

static const char WANT[] = "1|instance|{\"a\":1}\n"
                           "task-2|task|x\ny\n z\n"
                           "task-2|message|after\n"
                           "task-2|message|\n"
                           "|message|no id\n";

static void test_parser(void)
{
    enum nubo_sse_failure failed;
    size_t len = sizeof STREAM - 1;
    struct seen s = {0};
    canned_ok(feed(STREAM, len, 0, 0, 1 << 20, &s, &failed) == 0, "parser: a whole stream");
    canned_is_str(s.text, WANT,
                  "parser: the events (LF, CRLF, CR, comments, multi-line data, ids)");
    memset(&s, 0, sizeof s);
    canned_ok(feed(STREAM, len, 1, 0, 1 << 20, &s, &failed) == 0, "parser: byte by byte");
    canned_is_str(s.text, WANT, "parser: byte by byte, the same events");
    int same = 1;
    for (size_t at = 0; at <= len; at++) {
        memset(&s, 0, sizeof s);
        if (feed(STREAM, len, -1, at, 1 << 20, &s, &failed) != 0 || strcmp(s.text, WANT)) {
            same = 0;
            printf("    # split at %zu: %s\n", at, s.text);
            break;
        }
    }
    canned_ok(same, "parser: split in two at every byte, the same events");

    /* A CR at the end of one piece and its LF at the start of the next end one line. */
    memset(&s, 0, sizeof s);
    struct nubo_sse p = {.max_bytes = 1024};
    nubo_sse_feed(&p, "data: a\r", 8, record, &s);
    nubo_sse_feed(&p, "\n\r", 2, record, &s);
    nubo_sse_feed(&p, "\n", 1, record, &s);
    canned_is_str(s.text, "|message|a\n", "parser: CRLF split between reads is one line end");
    canned_ok(p.retry_ms == -1, "parser: no retry seen");
    nubo_sse_feed(&p, "retry: 15x\nretry: 250\n", 22, record, &s);
    canned_ok(p.retry_ms == 250, "parser: retry read, an invalid one ignored");
    nubo_sse_clear(&p);

    /* Stopping: the rest is not read. */
    memset(&s, 0, sizeof s);
    s.stop_after = 1;
    canned_ok(feed(STREAM, len, 0, 0, 1 << 20, &s, &failed) == 1 && s.n == 1,
              "parser: the callback stops it after one event");

    /* Memory is bounded: a line, or data lines together, over the limit. */
    char big[300];
    memset(big, 'x', sizeof big);
    memcpy(big, "data: ", 6);
    big[sizeof big - 2] = '\n';
    big[sizeof big - 1] = '\n';
    memset(&s, 0, sizeof s);
    canned_ok(feed(big, sizeof big, 1, 0, 256, &s, &failed) == -1 && s.n == 0 &&
                  failed == NUBO_SSE_TOO_LONG,
              "parser: a line over the limit is an error, fed byte by byte");
    const char lines[] = "data: 0123456789012345678901234567890123456789\n";
    struct nubo_sse q = {.max_bytes = 256};
    int rc = 0, i;
    memset(&s, 0, sizeof s);
    for (i = 0; i < 20 && rc == 0; i++) {
        rc = nubo_sse_feed(&q, lines, sizeof lines - 1, record, &s);
    }
    canned_ok(rc == -1 && i == 7 && s.n == 0 && q.data_cap <= 512 && q.failed == NUBO_SSE_TOO_LONG,
              "parser: data lines over the limit together are an error, in bounded memory");
    nubo_sse_clear(&q);
    memset(&s, 0, sizeof s);
    canned_ok(feed(big, sizeof big, 7, 0, 1024, &s, &failed) == 0 && s.n == 1,
              "parser: the same event under a larger limit");
}

/* --- listening ------------------------------------------------------------------------------- */

static const char INSTANCE_EVENT[] =
    "{\"id\":41,\"type\":\"instance-state\",\"instance_id\":\"i-0123456789abcdef0\","
    "\"tenant_id\":\"123456789012\",\"previous_state\":\"pending\",\"state\":\"running\","
    "\"reason\":null,\"at\":\"2026-02-01T00:00:00Z\"}";

static const char TASK_EVENT[] =
    "{\"id\":7,\"type\":\"task-progress\",\"tenant_id\":\"123456789012\",\"task_id\":"
    "\"import-ami-0123456789abcdef0\",\"kind\":\"import\",\"image_id\":\"ami-0123456789abcdef0\","
    "\"state\":\"active\",\"progress\":40,\"message\":\"converting\",\"at\":"
    "\"2026-02-01T00:00:01Z\"}";

/* A monotonic clock's seconds. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct got {
    int n, opened, opened_before_first;
    char ids[256];
    char fields[1024];
    int stop_after;
};

static void on_open(void *arg)
{
    struct got *g = arg;
    g->opened++;
    g->opened_before_first = g->n == 0;
}

static int on_event(const struct nubo_event *e, void *arg)
{
    struct got *g = arg;
    g->n++;
    size_t len = strlen(g->ids);
    snprintf(g->ids + len, sizeof g->ids - len, "%s%s", len ? "," : "", e->id);
    len = strlen(g->fields);
    snprintf(g->fields + len, sizeof g->fields - len, "%s %s %s %s %s %s %s %d\n", e->type,
             e->resource_id ? e->resource_id : "-", e->state ? e->state : "-",
             e->previous_state ? e->previous_state : "-", e->kind ? e->kind : "-",
             e->message ? e->message : "-", e->at ? e->at : "-", e->progress);
    return g->stop_after && g->n >= g->stop_after;
}

static char instance_piece[1024], task_piece[1024];

/* The stream: the hello, an instance event split mid-line, a keep-alive, a task event. */
static const char *const PIECES[] = {"retry: 3000\n: subscribed\n\n",
                                     "id: 41.6\nevent: inst",
                                     instance_piece,
                                     ": keep-alive\n\n",
                                     task_piece,
                                     NULL};

static void queue_stream(int hold_ms)
{
    canned_answer_stream(200, "text/event-stream; charset=utf-8", PIECES, 20, hold_ms);
}

static void test_listen(struct nubo_client *c)
{
    snprintf(instance_piece, sizeof instance_piece, "ance\r\ndata: %s\r\n\r\n", INSTANCE_EVENT);
    snprintf(task_piece, sizeof task_piece, "id: 41.7\nevent: task\ndata: %s\n\n", TASK_EVENT);
    struct nubo_error err;

    /* Every event, until the server ends the stream. */
    canned_reset();
    queue_stream(0);
    struct got g = {0};
    struct nubo_events_opts o = {.opened = on_open};
    long long n = nubo_events_listen(c, &o, on_event, &g, &err);
    canned_ok(n == -1 && !strcmp(err.code, "ConnectionError") && strstr(err.message, "ended"),
              "listen: a stream the server ends is an error");
    canned_is_str(canned_request(0)->method, "GET", "listen: GET");
    canned_is_str(canned_request(0)->target, "/api/v1/events", "listen: the path under the prefix");
    canned_is_str(g.ids, "41.6,41.7", "listen: both events, in order");
    char value[80];
    const char *leid = canned_header(0, "Last-Event-ID", value, sizeof value);
    canned_ok(!leid || !*leid, "listen: no Last-Event-ID unless asked");
    canned_is_str(
        g.fields,
        "instance i-0123456789abcdef0 running pending - - 2026-02-01T00:00:00Z -1\n"
        "task import-ami-0123456789abcdef0 active - import converting 2026-02-01T00:00:01Z 40\n",
        "listen: the typed fields read from the data");
    canned_ok(g.opened == 1 && g.opened_before_first, "listen: 'opened' once, before the events");

    /* --count: stops after N events, a normal end. */
    canned_reset();
    queue_stream(5000);
    memset(&g, 0, sizeof g);
    o = (struct nubo_events_opts){.max_events = 1};
    double t0 = now();
    n = nubo_events_listen(c, &o, on_event, &g, &err);
    canned_ok(n == 1 && g.n == 1 && !strcmp(g.ids, "41.6"), "listen: max_events 1");
    canned_ok(now() - t0 < 4, "listen: max_events ends at once, not when the server does");

    /* --type task: the instance event is skipped, and not counted. */
    canned_reset();
    queue_stream(5000);
    memset(&g, 0, sizeof g);
    o = (struct nubo_events_opts){.max_events = 1, .type = "task"};
    n = nubo_events_listen(c, &o, on_event, &g, &err);
    canned_ok(n == 1 && !strcmp(g.ids, "41.7"), "listen: type task, one event");

    /* Resuming: the id of the last event had goes as Last-Event-ID. */
    canned_reset();
    queue_stream(5000);
    memset(&g, 0, sizeof g);
    o = (struct nubo_events_opts){.max_events = 1, .last_event_id = "40.2"};
    n = nubo_events_listen(c, &o, on_event, &g, &err);
    canned_ok(n == 1, "listen: last_event_id");
    canned_is_str(canned_header(0, "Last-Event-ID", value, sizeof value), "40.2",
                  "listen: sent as Last-Event-ID");
    canned_reset();
    o = (struct nubo_events_opts){.last_event_id = "1\r\nX-Evil: 1"};
    canned_ok(nubo_events_listen(c, &o, on_event, &g, &err) == -1 && canned_served() == 0 &&
                  !strcmp(err.code, "InvalidParameterValue"),
              "listen: a last_event_id with a line end is refused before sending");

    /* The callback stops it. */
    canned_reset();
    queue_stream(5000);
    memset(&g, 0, sizeof g);
    g.stop_after = 1;
    n = nubo_events_listen(c, NULL, on_event, &g, &err);
    canned_ok(n == 1 && g.n == 1, "listen: the callback stops it (no opts)");

    /* The timeout: events, then nothing for longer than it. */
    canned_reset();
    queue_stream(4000);
    memset(&g, 0, sizeof g);
    o = (struct nubo_events_opts){.timeout_s = 1};
    t0 = now();
    n = nubo_events_listen(c, &o, on_event, &g, &err);
    double took = now() - t0;
    canned_ok(n == 2 && g.n == 2, "listen: the timeout ends it normally, with what came");
    canned_ok(took >= 0.9 && took < 3.5, "listen: after about the timeout");
    if (!(took >= 0.9 && took < 3.5)) {
        printf("    # took %.2f s\n", took);
    }

    /* Errors, as every other call reads them; not retried. */
    nubo_client_set_retries(c, 3, 1);
    canned_reset();
    canned_answer(401, "{\"error\":{\"code\":\"AuthFailure\",\"message\":\"bad key\","
                       "\"request_id\":\"req-4\"}}");
    canned_answer(401, "{\"error\":{\"code\":\"AuthFailure\",\"message\":\"bad key\"}}");
    memset(&g, 0, sizeof g);
    n = nubo_events_listen(c, NULL, on_event, &g, &err);
    canned_ok(n == -1 && nubo_error_is_auth(&err) && err.http_status == 401 &&
                  !strcmp(err.request_id, "req-4") && g.n == 0 && canned_served() == 1,
              "listen: 401 AuthFailure, asked once");
    canned_reset();
    canned_answer(503,
                  "{\"error\":{\"code\":\"Unavailable\",\"message\":\"too many event streams\"}}");
    canned_answer(503,
                  "{\"error\":{\"code\":\"Unavailable\",\"message\":\"too many event streams\"}}");
    n = nubo_events_listen(c, NULL, on_event, &g, &err);
    canned_ok(n == -1 && nubo_error_is_unavailable(&err) && err.http_status == 503 &&
                  canned_served() == 1,
              "listen: 503 Unavailable, not retried");
    nubo_client_set_retries(c, 1, 1);

    /* An event over the limit from the server: an error, not unbounded memory. */
    static char huge[(1 << 20) + 64];
    memset(huge, 'x', sizeof huge - 1);
    memcpy(huge, "data: ", 6);
    static const char *const too_big[] = {"retry: 3000\n\n", huge, NULL};
    canned_reset();
    canned_answer_stream(200, "text/event-stream", too_big, 0, 0);
    memset(&g, 0, sizeof g);
    n = nubo_events_listen(c, NULL, on_event, &g, &err);
    canned_ok(n == -1 && !strcmp(err.code, "ProtocolError") && g.n == 0,
              "listen: an event over 1 MiB is a ProtocolError");

    canned_ok(nubo_events_listen(c, NULL, NULL, NULL, &err) == -1 &&
                  !strcmp(err.code, "InvalidParameterValue"),
              "listen: a callback is required");
}

int main(void)
{
    char origin[64];
    struct nubo_client *c = canned_client(origin, sizeof origin);
    if (!c) {
        return 1;
    }
    test_parser();
    test_listen(c);
    return canned_finish(c);
}
