/* The event stream (see events.h). */
#include "events.h"

#include "auth.h"
#include "gateway.h"
#include "rest_api.h"

#include "nubo/arena.h"
#include "nubo/buf.h"
#include "nubo/clock.h"
#include "nubo/error.h"
#include "nubo/http.h"
#include "nubo/id.h"
#include "nubo/log.h"

#include <errno.h>
#include <limits.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define BATCH          500  /* rows read at a time */
#define MAX_SEEN       4096 /* ids remembered above a gap */
#define GAP_POLL_MS    250  /* how often an open gap is read again */
#define RECONNECT_MS   2000
#define PUSH_MAX_QUEUE (256 * 1024)
#define N_FEEDS        2

struct subscriber {
    struct subscriber *next;
    struct nb_http_push *push;
    bool all;
    char tenant_id[16];
    long long from[N_FEEDS]; /* while waiting for its replay: the client's positions, or -1 */
};

/* One table of events, read in id order (see events.h for the gaps). */
struct feed {
    const char *table;
    /* Selects the rows after $1 that are not in $2, in id order, at most BATCH: the id first,
     * the tenant second, then what 'format' reads. */
    const char *select;
    /* The same columns for a replay: the rows after $1 already published (up to $2, or in
     * $3), of tenant $4 (NULL: all), in id order, at most REPLAY_MAX + 1. */
    const char *replay;
    bool (*format)(const PGresult *res, int r, struct nb_buf *b);
    bool have_cursor;
    long long cursor;         /* every id up to here is published or given up */
    long long seen[MAX_SEEN]; /* published ids above the cursor, ascending */
    size_t n_seen;
    long long gap_at;    /* the cursor when the present gap was first seen */
    long long gap_since; /* monotonic ms; 0: no gap */
};

struct gw_events {
    char *conninfo;
    int keepalive_ms;
    int max_streams;
    int poll_ms;
    pthread_t thread;
    bool started;
    int wake_fd; /* an eventfd: written to stop the thread */
    atomic_bool stop;

    pthread_mutex_t mu;
    struct subscriber *subs;    /* under mu */
    struct subscriber *pending; /* streams waiting for their replay; under mu */
    int reserved;               /* slots taken, attached or about to be; under mu */

    /* The thread's own. */
    PGconn *conn;
    struct feed feeds[N_FEEDS]; /* instance_events, task_events */
};

static long long now_ms(void)
{
    return nb_monotonic_ms();
}

/* --- subscribers ------------------------------------------------------------------------- */

int gw_events_reserve(struct gw_events *ev)
{
    int rc = -1;
    pthread_mutex_lock(&ev->mu);
    if (ev->reserved < ev->max_streams) {
        ev->reserved++;
        rc = 0;
    }
    pthread_mutex_unlock(&ev->mu);
    return rc;
}

void gw_events_unreserve(struct gw_events *ev)
{
    pthread_mutex_lock(&ev->mu);
    ev->reserved--;
    pthread_mutex_unlock(&ev->mu);
}

static void wake(struct gw_events *ev)
{
    uint64_t one = 1;
    if (write(ev->wake_fd, &one, sizeof one) < 0) {
        nb_warn("event stream: could not wake the thread");
    }
}

void gw_events_attach(struct gw_events *ev, struct nb_http_push *push, const char *tenant_id,
                      const struct gw_events_position *from)
{
    struct subscriber *s = calloc(1, sizeof *s);
    if (!s) {
        nb_http_push_end(push);
        nb_http_push_release(push);
        gw_events_unreserve(ev);
        return;
    }
    s->push = push;
    s->all = tenant_id == NULL;
    snprintf(s->tenant_id, sizeof s->tenant_id, "%s", tenant_id ? tenant_id : "");
    s->from[0] = from ? from->instance : -1;
    s->from[1] = from ? from->task : -1;
    pthread_mutex_lock(&ev->mu);
    if (from) {
        s->next = ev->pending; /* the thread replays, then attaches it */
        ev->pending = s;
    } else {
        s->next = ev->subs;
        ev->subs = s;
    }
    pthread_mutex_unlock(&ev->mu);
    if (from) {
        wake(ev);
    }
}

int gw_events_parse_position(const char *text, struct gw_events_position *pos)
{
    /* "I.T" as this gateway writes; "N" and "task-N" are the ids of earlier gateways. */
    long long a = -1, b = -1;
    char *end;
    if (!text || strlen(text) > 41) {
        return -1;
    }
    if (!strncmp(text, "task-", 5)) {
        text += 5;
        if (*text < '0' || *text > '9') {
            return -1;
        }
        b = strtoll(text, &end, 10);
    } else {
        if (*text < '0' || *text > '9') {
            return -1;
        }
        a = strtoll(text, &end, 10);
        if (*end == '.') {
            if (end[1] < '0' || end[1] > '9') {
                return -1;
            }
            b = strtoll(end + 1, &end, 10);
        }
    }
    if (*end || a == LLONG_MAX || b == LLONG_MAX) {
        return -1;
    }
    pos->instance = a;
    pos->task = b;
    return 0;
}

int gw_events_streams(struct gw_events *ev)
{
    pthread_mutex_lock(&ev->mu);
    int n = 0;
    for (const struct subscriber *s = ev->subs; s; s = s->next) {
        n++;
    }
    pthread_mutex_unlock(&ev->mu);
    return n;
}

/* Writes 'len' bytes of 'text' to the streams of 'tenant_id' (NULL: every stream), dropping
 * the streams that are over. */
static void broadcast(struct gw_events *ev, const char *tenant_id, const char *text, size_t len)
{
    pthread_mutex_lock(&ev->mu);
    for (struct subscriber **pp = &ev->subs; *pp;) {
        struct subscriber *s = *pp;
        if (tenant_id && !s->all && strcmp(s->tenant_id, tenant_id)) {
            pp = &s->next;
            continue;
        }
        if (nb_http_push_write(s->push, text, len) == 0) {
            pp = &s->next;
            continue;
        }
        *pp = s->next;
        nb_http_push_release(s->push);
        free(s);
        ev->reserved--;
    }
    pthread_mutex_unlock(&ev->mu);
}

/* --- reading the table ------------------------------------------------------------------- */

static void disconnect(struct gw_events *ev)
{
    PQfinish(ev->conn);
    ev->conn = NULL;
}

/* Runs 'sql' on the thread's connection; NULL (after logging, and dropping a broken
 * connection) when it fails. */
static PGresult *run(struct gw_events *ev, const char *sql, int n, const char *const *params)
{
    PGresult *res = PQexecParams(ev->conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        return res;
    }
    nb_warn("event stream: query failed: %s", PQerrorMessage(ev->conn));
    PQclear(res);
    if (PQstatus(ev->conn) != CONNECTION_OK) {
        disconnect(ev);
    }
    return NULL;
}

static bool connect_db(struct gw_events *ev)
{
    ev->conn = PQconnectdb(ev->conninfo);
    if (PQstatus(ev->conn) != CONNECTION_OK) {
        nb_warn("event stream: could not connect to the database: %s", PQerrorMessage(ev->conn));
        disconnect(ev);
        return false;
    }
    PGresult *res = run(ev, "LISTEN nubo_events", 0, NULL);
    if (!res) {
        disconnect(ev);
        return false;
    }
    PQclear(res);
    for (size_t i = 0; i < sizeof ev->feeds / sizeof ev->feeds[0]; i++) {
        struct feed *f = &ev->feeds[i];
        if (f->have_cursor) {
            continue;
        }
        /* Streams see what happens from now on: history is the REST API's. */
        char sql[96];
        snprintf(sql, sizeof sql, "SELECT COALESCE(max(id), 0) FROM %s", f->table);
        res = run(ev, sql, 0, NULL);
        if (!res) {
            disconnect(ev);
            return false;
        }
        f->cursor = atoll(PQgetvalue(res, 0, 0));
        f->have_cursor = true;
        PQclear(res);
    }
    return true;
}

static bool seen(const struct feed *f, long long id)
{
    size_t lo = 0, hi = f->n_seen;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (f->seen[mid] < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < f->n_seen && f->seen[lo] == id;
}

static void add_seen(struct feed *f, long long id)
{
    if (f->n_seen == MAX_SEEN) {
        return; /* advance() gives the gap up first */
    }
    size_t i = f->n_seen;
    while (i > 0 && f->seen[i - 1] > id) {
        f->seen[i] = f->seen[i - 1];
        i--;
    }
    f->seen[i] = id;
    f->n_seen++;
}

/* Moves the cursor over the ids published in a row; gives a gap up after GW_EVENTS_GAP_WAIT_MS
 * (or when too many ids wait above it). */
static void advance(struct feed *f)
{
    for (;;) {
        size_t k = 0;
        while (k < f->n_seen && f->seen[k] == f->cursor + 1) {
            f->cursor++;
            k++;
        }
        memmove(f->seen, f->seen + k, (f->n_seen - k) * sizeof f->seen[0]);
        f->n_seen -= k;
        if (f->n_seen == 0) {
            f->gap_since = 0;
            return;
        }
        long long now = now_ms();
        if (f->gap_since == 0 || f->gap_at != f->cursor) {
            f->gap_since = now;
            f->gap_at = f->cursor;
        }
        if (now - f->gap_since < GW_EVENTS_GAP_WAIT_MS && f->n_seen < MAX_SEEN) {
            return;
        }
        nb_info("event stream: %s %lld to %lld never committed; skipping them", f->table,
                f->cursor + 1, f->seen[0] - 1);
        f->cursor = f->seen[0] - 1;
        f->gap_since = 0;
    }
}

/* Appends row 'r' of 'res' (an instance_events row) to 'b' as one SSE message but its id line
 * (the caller's). Returns false when it could not (out of memory). */
static bool format_instance_event(const PGresult *res, int r, struct nb_buf *b)
{
    json_t *o =
        json_pack("{s:I, s:s, s:s, s:s, s:o, s:s, s:o, s:s}", "id",
                  (json_int_t)atoll(PQgetvalue(res, r, 0)), "type", "instance-state", "instance_id",
                  PQgetvalue(res, r, 2), "tenant_id", PQgetvalue(res, r, 1), "previous_state",
                  PQgetisnull(res, r, 3) ? json_null() : json_string(PQgetvalue(res, r, 3)),
                  "state", PQgetvalue(res, r, 4), "reason",
                  PQgetisnull(res, r, 5) ? json_null() : json_string(PQgetvalue(res, r, 5)), "at",
                  PQgetvalue(res, r, 6));
    char *data = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (data) {
        /* One line: JSON escapes every newline inside strings. */
        nb_buf_printf(b, "event: instance\ndata: %s\n\n", data);
    }
    free(data);
    return data != NULL;
}

/* The same for a task_events row. */
static bool format_task_event(const PGresult *res, int r, struct nb_buf *b)
{
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:o, s:s, s:i, s:s, s:s}", "id",
                          (json_int_t)atoll(PQgetvalue(res, r, 0)), "type", "task-progress",
                          "tenant_id", PQgetvalue(res, r, 1), "task_id", PQgetvalue(res, r, 2),
                          "kind", PQgetvalue(res, r, 3), "image_id",
                          PQgetisnull(res, r, 4) ? json_null() : json_string(PQgetvalue(res, r, 4)),
                          "state", PQgetvalue(res, r, 5), "progress", atoi(PQgetvalue(res, r, 6)),
                          "message", PQgetvalue(res, r, 7), "at", PQgetvalue(res, r, 8));
    char *data = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (data) {
        nb_buf_printf(b, "event: task\ndata: %s\n\n", data);
    }
    free(data);
    return data != NULL;
}

/* Writes the ids published above the cursor of 'f' into 'b' as an SQL array literal. */
static void seen_array(const struct feed *f, struct nb_buf *b)
{
    nb_buf_reset(b);
    nb_buf_puts(b, "{");
    for (size_t i = 0; i < f->n_seen; i++) {
        nb_buf_printf(b, "%s%lld", i ? "," : "", f->seen[i]);
    }
    nb_buf_puts(b, "}");
}

/* Starts 'b' with the id line of a message that leaves a client at 'instance' and 'task'. */
static void id_line(struct nb_buf *b, long long instance, long long task)
{
    nb_buf_reset(b);
    nb_buf_printf(b, "id: %lld.%lld\n", instance, task);
}

/* Reads and publishes the rows of 'f' not yet published. */
static void fetch(struct gw_events *ev, struct feed *f)
{
    struct nb_buf ids = NB_BUF_INIT, out = NB_BUF_INIT;
    for (;;) {
        char cursor[24];
        snprintf(cursor, sizeof cursor, "%lld", f->cursor);
        seen_array(f, &ids);
        const char *p[] = {cursor, ids.data};
        PGresult *res = run(ev, f->select, 2, p);
        if (!res) {
            break;
        }
        int n = PQntuples(res);
        for (int r = 0; r < n; r++) {
            long long id = atoll(PQgetvalue(res, r, 0));
            if (seen(f, id) || id <= f->cursor) {
                continue;
            }
            add_seen(f, id);
            advance(f);
            /* The id is where the feeds stand once this is published: a client that comes back
             * with it is sent what was published after (replay()). */
            id_line(&out, ev->feeds[0].cursor, ev->feeds[1].cursor);
            if (f->format(res, r, &out)) {
                broadcast(ev, PQgetvalue(res, r, 1), out.data, out.len);
            }
        }
        PQclear(res);
        advance(f);
        if (n < BATCH) {
            break;
        }
    }
    nb_buf_free(&ids);
    nb_buf_free(&out);
}

/* Sends 's' what its tenant was published in feed 'k' after the client's position, from the
 * table; false when the stream is gone. A client with nothing to catch up on gets nothing. */
static bool replay_feed(struct gw_events *ev, struct subscriber *s, size_t k, long long pos[])
{
    struct feed *f = &ev->feeds[k];
    if (s->from[k] < 0) {
        return true; /* from now on */
    }
    char from[24], upto[24];
    snprintf(from, sizeof from, "%lld", s->from[k]);
    snprintf(upto, sizeof upto, "%lld", f->cursor);
    struct nb_buf ids = NB_BUF_INIT, out = NB_BUF_INIT;
    seen_array(f, &ids);
    const char *p[] = {from, upto, ids.data, s->all ? NULL : s->tenant_id};
    PGresult *res = run(ev, f->replay, 4, p);
    bool alive = true;
    int n = res ? PQntuples(res) : 0;
    for (int r = 0; alive && r < n && r < GW_EVENTS_REPLAY_MAX; r++) {
        long long id = atoll(PQgetvalue(res, r, 0));
        /* A row above the cursor was published out of order: the position stays at the cursor
         * (a client back from here may get it twice, never miss what fills the gap). */
        pos[k] = id <= f->cursor ? id : f->cursor;
        id_line(&out, pos[0], pos[1]);
        if (f->format(res, r, &out)) {
            alive = nb_http_push_write(s->push, out.data, out.len) == 0;
        }
    }
    if (alive && (!res || n > GW_EVENTS_REPLAY_MAX)) {
        /* Too far behind, or the table could not be read: the client re-reads the lists. */
        static const char gap[] = "event: gap\ndata: {\"type\":\"gap\",\"reason\":\"events "
                                  "were missed; read the lists again\"}\n\n";
        alive = nb_http_push_write(s->push, gap, sizeof gap - 1) == 0;
    }
    PQclear(res);
    nb_buf_free(&ids);
    nb_buf_free(&out);
    return alive;
}

/* Replays, to each stream that came back with a position, what it missed, and attaches it.
 * The thread alone publishes, so nothing is published between the replay and the attach. */
static void replay(struct gw_events *ev)
{
    pthread_mutex_lock(&ev->mu);
    struct subscriber *list = ev->pending;
    ev->pending = NULL;
    pthread_mutex_unlock(&ev->mu);
    while (list) {
        struct subscriber *s = list;
        list = s->next;
        long long pos[N_FEEDS];
        for (size_t k = 0; k < N_FEEDS; k++) {
            pos[k] = s->from[k] >= 0 ? s->from[k] : ev->feeds[k].cursor;
        }
        bool alive = true;
        for (size_t k = 0; alive && k < N_FEEDS; k++) {
            alive = replay_feed(ev, s, k, pos);
        }
        pthread_mutex_lock(&ev->mu);
        if (alive) {
            s->next = ev->subs;
            ev->subs = s;
        } else {
            nb_http_push_release(s->push);
            free(s);
            ev->reserved--;
        }
        pthread_mutex_unlock(&ev->mu);
    }
}

static void *hub_main(void *arg)
{
    struct gw_events *ev = arg;
    long long next_connect = 0, next_fetch = 0, next_keepalive = now_ms() + ev->keepalive_ms;
    while (!atomic_load(&ev->stop)) {
        long long now = now_ms();
        if (!ev->conn && now >= next_connect) {
            if (connect_db(ev)) {
                next_fetch = now; /* catch up with what happened while away */
            } else {
                next_connect = now + RECONNECT_MS;
            }
        }
        if (ev->conn && now >= next_fetch) {
            bool gap = false;
            for (size_t i = 0; ev->conn && i < sizeof ev->feeds / sizeof ev->feeds[0]; i++) {
                fetch(ev, &ev->feeds[i]);
                gap = gap || ev->feeds[i].n_seen;
            }
            next_fetch = now + (gap ? GAP_POLL_MS : ev->poll_ms);
        }
        if (ev->conn) {
            replay(ev); /* after the fetch: a stream is replayed up to what is published */
        }
        if (now >= next_keepalive) {
            static const char ping[] = ": keep-alive\n\n";
            broadcast(ev, NULL, ping, sizeof ping - 1);
            next_keepalive = now + ev->keepalive_ms;
        }
        long long until = next_keepalive;
        if (ev->conn && next_fetch < until) {
            until = next_fetch;
        }
        if (!ev->conn && next_connect < until) {
            until = next_connect;
        }
        long long wait = until - now_ms();
        struct pollfd fds[2] = {{.fd = ev->wake_fd, .events = POLLIN},
                                {.fd = ev->conn ? PQsocket(ev->conn) : -1, .events = POLLIN}};
        int ready = poll(fds, 2, (int)(wait < 0 ? 0 : wait > 1000 ? 1000 : wait));
        if (ready > 0 && (fds[0].revents & POLLIN)) {
            uint64_t count;
            if (read(ev->wake_fd, &count, sizeof count) < 0 && errno != EAGAIN) {
                nb_warn("event stream: could not read the wake-up: %s", strerror(errno));
            }
        }
        if (ready <= 0 || !(fds[1].revents & POLLIN)) {
            continue;
        }
        if (!PQconsumeInput(ev->conn)) {
            nb_warn("event stream: lost the database connection: %s", PQerrorMessage(ev->conn));
            disconnect(ev);
            next_connect = now_ms() + RECONNECT_MS / 4;
            continue;
        }
        PGnotify *n;
        while ((n = PQnotifies(ev->conn))) {
            next_fetch = 0;
            PQfreemem(n);
        }
    }
    disconnect(ev);
    return NULL;
}

/* What each table's rows are read as: the id first, the tenant second, then what its 'format'
 * reads. */
#define ISO_AT "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
#define INSTANCE_EVENT_ROWS                                                                        \
    "SELECT id, tenant_id, instance_id, from_state, to_state, reason, " ISO_AT                     \
    "FROM instance_events "
#define TASK_EVENT_ROWS                                                                            \
    "SELECT id, tenant_id, task_id, kind, image_id, state, progress, message, " ISO_AT             \
    "FROM task_events "
/* The rows to publish: after $1 (the cursor), not among $2 (published above it), BATCH at most. */
#define LIVE_ROWS "WHERE id > $1::bigint AND id <> ALL($2::bigint[]) ORDER BY id LIMIT 500"
/* The rows to replay: after $1 (the client's position) and published (up to $2, the cursor, or
 * among $3), of tenant $4 (NULL: all), GW_EVENTS_REPLAY_MAX + 1 at most. */
#define REPLAYED_ROWS                                                                              \
    "WHERE id > $1::bigint AND (id <= $2::bigint OR id = ANY($3::bigint[])) "                      \
    "AND ($4::text IS NULL OR tenant_id = $4::text) ORDER BY id LIMIT 1001"

struct gw_events *gw_events_new(const struct gw_events_config *cfg, struct nb_error *err)
{
    struct gw_events *ev = calloc(1, sizeof *ev);
    if (!ev || !(ev->conninfo = strdup(cfg->conninfo))) {
        free(ev);
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    ev->feeds[0] = (struct feed){
        .table = "instance_events",
        .select = INSTANCE_EVENT_ROWS LIVE_ROWS,
        .replay = INSTANCE_EVENT_ROWS REPLAYED_ROWS,
        .format = format_instance_event,
    };
    ev->feeds[1] = (struct feed){
        .table = "task_events",
        .select = TASK_EVENT_ROWS LIVE_ROWS,
        .replay = TASK_EVENT_ROWS REPLAYED_ROWS,
        .format = format_task_event,
    };
    ev->keepalive_ms = cfg->keepalive_s * 1000;
    ev->max_streams = cfg->max_streams;
    ev->poll_ms = cfg->poll_ms;
    pthread_mutex_init(&ev->mu, NULL);
    atomic_init(&ev->stop, false);
    ev->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (ev->wake_fd < 0) {
        nb_error_errno(err, errno, "could not create an eventfd");
        gw_events_free(ev);
        return NULL;
    }
    if (pthread_create(&ev->thread, NULL, hub_main, ev) != 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not start the event stream thread");
        gw_events_free(ev);
        return NULL;
    }
    ev->started = true;
    return ev;
}

void gw_events_free(struct gw_events *ev)
{
    if (!ev) {
        return;
    }
    if (ev->started) {
        atomic_store(&ev->stop, true);
        wake(ev);
        pthread_join(ev->thread, NULL);
    }
    struct subscriber *lists[] = {ev->subs, ev->pending};
    for (size_t i = 0; i < 2; i++) {
        for (struct subscriber *s = lists[i], *next; s; s = next) {
            next = s->next;
            nb_http_push_end(s->push);
            nb_http_push_release(s->push);
            free(s);
        }
    }
    if (ev->wake_fd >= 0) {
        close(ev->wake_fd);
    }
    pthread_mutex_destroy(&ev->mu);
    free(ev->conninfo);
    free(ev);
}

/* --- GET /v1/events ---------------------------------------------------------------------- */

void gw_events_handle(struct nb_http_req *req, void *arg)
{
    struct gw_ctx *gw = arg;
    int64_t t0 = rest_now_us();
    char request_id[40];
    nb_uuid_new(request_id, sizeof request_id);
    nb_log_set_request_id(request_id);
    struct rest_call c = {
        .gw = gw, .req = req, .arena = nb_http_req_arena(req), .request_id = request_id};
    const char *code = NULL;
    json_t *doc = rest_authenticate(&c, &code);
    /* A client back after a break names the last message it had (EventSource does it itself);
     * it is sent what it missed first. */
    const char *last = nb_http_req_header(req, "Last-Event-ID");
    struct gw_events_position from;
    if (!doc && last && gw_events_parse_position(last, &from) < 0) {
        code = "InvalidParameterValue";
        c.status = 400;
        doc = rest_error_doc(code,
                             "Last-Event-ID must be an id of this stream (such as 42.7); "
                             "reconnect without it to start from now",
                             request_id);
    }
    if (!doc && strcmp(nb_http_req_method(req), "GET")) {
        code = "MethodNotAllowed";
        c.status = 405;
        nb_http_reply_header(req, "Allow", "GET");
        doc = rest_error_doc(code, "the event stream is read with GET", request_id);
    } else if (!doc && (!gw->events || gw_events_reserve(gw->events) < 0)) {
        code = "Unavailable";
        c.status = 503;
        doc = rest_error_doc(code, "too many event streams are open on this gateway; try later",
                             request_id);
    }
    if (doc) {
        rest_finish(&c, t0, code, doc);
        nb_log_set_request_id(NULL);
        return;
    }
    c.status = 200;
    rest_finish(&c, t0, NULL, NULL); /* answers 503 itself if the log cannot record it */
    nb_http_reply_header(req, "Cache-Control", "no-store");
    nb_http_reply_header(req, "X-Accel-Buffering", "no");
    struct nb_http_push *push =
        nb_http_reply_push(req, 200, "text/event-stream; charset=utf-8", PUSH_MAX_QUEUE);
    if (!push) {
        gw_events_unreserve(gw->events);
        nb_log_set_request_id(NULL);
        return;
    }
    /* Sent at once, so that the client knows the stream is live before anything happens. */
    static const char hello[] = "retry: 3000\n: subscribed\n\n";
    nb_http_push_write(push, hello, sizeof hello - 1);
    gw_events_attach(gw->events, push, c.who->role == GW_ROLE_ADMIN ? NULL : c.who->tenant_id,
                     last ? &from : NULL);
    nb_log_set_request_id(NULL);
}
