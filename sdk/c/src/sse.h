/* The Server-Sent Events parser of events.c (sse.c), private to the SDK: its unit tests and the
 * fuzz target tests/fuzz/fuzz_sdk_sse.c use it, callers never (no part of the public API). Pure:
 * bytes in, events out, libc only. */
#ifndef NUBO_SDK_SSE_H
#define NUBO_SDK_SSE_H

#include <stdbool.h>
#include <stddef.h>

/* Why nubo_sse_feed() failed. */
enum nubo_sse_failure {
    NUBO_SSE_OK,
    NUBO_SSE_TOO_LONG,  /* an event over 'max_bytes' */
    NUBO_SSE_NO_MEMORY, /* malloc() failed */
};

/* An incremental parser of a text/event-stream (the WHATWG HTML "event stream interpretation"):
 * lines end in CRLF, LF or CR, and may be split anywhere across calls; ':' lines are comments;
 * "data" lines are joined with '\n'; "event", "id" and "retry" are read; unknown fields are
 * ignored; a blank line dispatches the event (none when it has no data). Memory is bounded: the
 * line being read plus the event's data may not exceed 'max_bytes'. Zero it, set 'max_bytes',
 * and free what it holds with nubo_sse_clear(). */
struct nubo_sse {
    size_t max_bytes;
    char *line; /* the line being read, not yet ended */
    size_t line_len, line_cap;
    char *data; /* the event's data so far, each line followed by '\n' */
    size_t data_len, data_cap;
    char *event;   /* the event's type, NULL: "message" */
    char *last_id; /* the last "id" seen (it carries over to later events, as in browsers) */
    long retry_ms; /* the last valid "retry", or -1 (set by nubo_sse_feed() on first use) */
    bool started;  /* set up by the first nubo_sse_feed() */
    bool had_line; /* a line was read (a BOM before the first is dropped) */
    bool after_cr; /* the last byte was a CR: a LF right after it ends no other line */
    enum nubo_sse_failure failed;
};

/* Called for each event: its id ("" when none was given), its type ("message" when unnamed)
 * and its data ('data_len' bytes, NUL-terminated), all borrowed for the call. Returns 0 to go
 * on, non-zero to stop. */
typedef int (*nubo_sse_fn)(const char *id, const char *type, const char *data, size_t data_len,
                           void *arg);

/* Parses the 'n' bytes at 'buf', calling 'fn' with 'arg' for each event they complete. Returns 0
 * when all were read, 1 when 'fn' asked to stop (the bytes after that event are not read), or
 * -1 with 'p->failed' saying why; the parser is then unusable until cleared. */
int nubo_sse_feed(struct nubo_sse *p, const char *buf, size_t n, nubo_sse_fn fn, void *arg);

/* Frees what 'p' holds (not 'p') and zeroes it, keeping 'max_bytes'. */
void nubo_sse_clear(struct nubo_sse *p);

#endif
