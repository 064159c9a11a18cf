/* libnubo: the live event stream (events.c): GET /v1/events, read as Server-Sent Events, one
 * callback per event as it happens (docs/console.md of the nubo source tree). Part of the public
 * API of <nubo/nubo.h>, which includes this file: include that one, never this one alone. The
 * conventions of nubo.h (errors, ownership, thread-safety) hold here too.
 *
 * What comes: an instance's state changes (type "instance") and the progress of image tasks
 * (imports, exports, copies; type "task"). A tenant's key sees its own tenant's events, an
 * operator's (admin role) every tenant's. The stream starts at the moment it is opened, or, given
 * the id of the last event a caller had (struct nubo_events_opts' 'last_event_id'), after that
 * event: the gateway first sends what was published since (up to 1000 events of each kind). */
#ifndef NUBO_EVENTS_H
#define NUBO_EVENTS_H

#ifndef NUBO_NUBO_H
#error "include <nubo/nubo.h>, not <nubo/events.h>"
#endif

/* One event. Every pointer is borrowed: valid only during the callback that gets the event
 * (copy what must outlive it). Fields the event does not carry are NULL (strings) or -1. */
struct nubo_event {
    const char *id;   /* the SSE id ("42.7": where the stream stood), "" if none; what
                       * 'last_event_id' takes to resume after this event */
    const char *type; /* the SSE event name: "instance", "task" ("message" when unnamed) */
    const char *data; /* the data lines joined with '\n': a JSON object for nubo's events */
    size_t data_len;
    /* Read from 'data' for convenience, when it is a JSON object that has them: */
    const char *resource_id;    /* "instance_id" of an instance event, "task_id" of a task event */
    const char *state;          /* the new state: "running", "active", "completed"... */
    const char *previous_state; /* instance events */
    const char *tenant_id;
    const char *image_id; /* task events */
    const char *kind;     /* task events: "import", "export", "copy" */
    const char *message;  /* task events: the status message; instance events: the reason */
    const char *at;       /* when it happened (RFC 3339) */
    int progress;         /* task events: 0-100; else -1 */
};

/* Called with each event as it arrives, with the 'arg' given to nubo_events_listen(). Returns 0
 * to go on, non-zero to stop listening (nubo_events_listen() then returns normally). Called from
 * the thread that called nubo_events_listen(). */
typedef int (*nubo_event_fn)(const struct nubo_event *event, void *arg);

/* How to listen. The caller fills it (zeroed: every event, until the callback stops); it carries
 * no size, so it never grows: later options come in a new struct and function. */
struct nubo_events_opts {
    int timeout_s;        /* stop listening after this many seconds; 0: never */
    long long max_events; /* stop after this many events (of 'type'); 0: no limit */
    const char *type;     /* only events of this type ("instance", "task"); NULL: all */
    /* Called once, with 'arg', when the stream is open (the server has answered and subscribed
     * it): what happens from then on is delivered. May be NULL. */
    void (*opened)(void *arg);
    /* Resume after the event of this id (the 'id' of the last event had); NULL: from now. */
    const char *last_event_id;
};

/* Opens the event stream of 'client' and calls 'fn' with 'arg' for each event (of 'opts->type'
 * when given) as it arrives, until 'fn' returns non-zero, 'opts->max_events' have come, or
 * 'opts->timeout_s' have passed ('opts' may be NULL: all events, no limit). Returns how many
 * events 'fn' was given, or -1 with '*err' set: the API's errors ("AuthFailure" and others for
 * a bad key, "InvalidParameterValue" for a 'last_event_id' that is no id of the stream,
 * "Unavailable" with HTTP 503 when the gateway has no room for another stream or no
 * event stream at all), "ConnectionError" (also when the server ends the stream),
 * "ProtocolError" (an event over 1 MiB). Not retried: a
 * caller opens the stream again with the last event's id as 'last_event_id'. Blocks the calling
 * thread; the client is busy until it returns. A stalled stream (no byte, not even the server's
 * keep-alive comments, for the client's timeout) fails with "Timeout". */
NUBO_API long long nubo_events_listen(struct nubo_client *client,
                                      const struct nubo_events_opts *opts, nubo_event_fn fn,
                                      void *arg, struct nubo_error *err);

#endif
