/* The event stream: instance state transitions and the progress of long tasks (image import,
 * export and copy) published to browsers and tools as Server-Sent Events on GET /v1/events
 * ("event: instance" and "event: task" messages).
 *
 * Where events come from: every transition is a row of instance_events, written by a trigger in
 * the transaction that makes it (0004), and every change of an image task's state or progress a
 * row of task_events (0017); statement triggers NOTIFY 'nubo_events' (0012). One
 * thread per gateway LISTENs on its own connection and, when woken (and every few seconds in
 * case), reads the rows after the last one it published, in id order, and hands each to the
 * subscribers that may see it: the tenant's own streams, and the admin's, which see every
 * tenant. The table, not the notification, is what is published, so a lost connection loses
 * nothing: after reconnecting the thread reads on from where it was.
 *
 * Each table is read on its own, with the same rules. Ids come from a sequence, so a
 * transaction may commit a lower id after a higher one was read.
 * The thread remembers the ids it published above the first missing one and reads the gap again
 * until it fills, or for GW_EVENTS_GAP_WAIT_MS, after which the missing ids are taken as rolled
 * back. Streams are pushed replies (nb_http_reply_push()): a waiting stream holds no thread.
 * Every 'keepalive_s' each stream gets a comment line, which also finds the streams whose
 * clients went away.
 *
 * A client that comes back (EventSource does, by itself, after a break or a gateway restart)
 * sends the SSE id of the last message it had as Last-Event-ID: where both tables stood for it.
 * The thread sends it, from the tables, what was published for it after that, then attaches
 * it; being the only publisher, it publishes nothing in between. */
#ifndef NUBO_GW_EVENTS_H
#define NUBO_GW_EVENTS_H

#include <stdbool.h>

struct gw_events;
struct nb_error;
struct nb_http_push;
struct nb_http_req;

#define GW_EVENTS_GAP_WAIT_MS 10000
#define GW_EVENTS_REPLAY_MAX  1000 /* messages of a table replayed to a stream coming back */

struct gw_events_config {
    const char *conninfo; /* libpq connection string (copied) */
    int keepalive_s;      /* comment line every this many seconds */
    int max_streams;      /* streams at once on this gateway */
    int poll_ms;          /* read the table this often even without a notification */
};

/* Starts the thread. Returns the hub, freed with gw_events_free() (accepts NULL), or NULL with
 * 'err'. The database need not be reachable yet: the thread connects, and reconnects, itself. */
struct gw_events *gw_events_new(const struct gw_events_config *cfg, struct nb_error *err);
void gw_events_free(struct gw_events *ev);

/* Takes a stream slot; -1 when 'max_streams' are open. Give it back with gw_events_unreserve()
 * unless gw_events_attach() took it. */
int gw_events_reserve(struct gw_events *ev);
void gw_events_unreserve(struct gw_events *ev);
/* Where a client stands in the stream: the last instance_events and task_events ids it has
 * been sent up to (-1: none, from now on). Each message's SSE id is "I.T", where the feeds stand
 * once it is published. */
struct gw_events_position {
    long long instance;
    long long task;
};

/* Reads a Last-Event-ID: "I.T", or the ids of earlier gateways, "N" (instance) and "task-N".
 * Returns 0, or -1 when 'text' is none of these. */
int gw_events_parse_position(const char *text, struct gw_events_position *pos);

/* Publishes to 'push' (its reference is taken) the events of 'tenant_id', or of every tenant
 * when it is NULL, in the reserved slot: from now on, or, with 'from', first what was published
 * after 'from' (at most GW_EVENTS_REPLAY_MAX messages a table, else an "event: gap" message
 * that tells the client to read the lists again). A message may then come twice, around a
 * gap in the ids; never is one missed. */
void gw_events_attach(struct gw_events *ev, struct nb_http_push *push, const char *tenant_id,
                      const struct gw_events_position *from);

/* Streams open, and events published since the start (for metrics and tests). */
int gw_events_streams(struct gw_events *ev);

/* The HTTP handler of GET /v1/events; 'arg' is the gateway context. */
void gw_events_handle(struct nb_http_req *req, void *arg);

#endif
