/* An incremental Server-Sent Events parser (see sse.h): pure, libc only, so that the SDK's unit
 * tests and a libFuzzer target (tests/fuzz/fuzz_sdk_sse.c) take it alone. */
#include "sse.h"

#include <stdlib.h>
#include <string.h>

/* Makes room for 'need' bytes in '*buf' of '*cap'. Returns 0, or -1 when out of memory. */
static int reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap) {
        return 0;
    }
    size_t c = *cap ? *cap : 256;
    while (c < need) {
        c *= 2;
    }
    char *b = realloc(*buf, c);
    if (!b) {
        return -1;
    }
    *buf = b;
    *cap = c;
    return 0;
}

/* Replaces '*slot' with a copy of the 'n' bytes at 's'. Returns 0, or -1 when out of memory. */
static int set_str(char **slot, const char *s, size_t n)
{
    char *v = strndup(s, n);
    if (!v) {
        return -1;
    }
    free(*slot);
    *slot = v;
    return 0;
}

/* A blank line: hands the event over, if it has data, and starts the next one. */
static int dispatch(struct nubo_sse *p, nubo_sse_fn fn, void *arg)
{
    if (p->data_len == 0) {
        free(p->event);
        p->event = NULL;
        return 0;
    }
    p->data[--p->data_len] = '\0'; /* the '\n' after the last data line */
    int stop = fn(p->last_id ? p->last_id : "", p->event && *p->event ? p->event : "message",
                  p->data, p->data_len, arg);
    p->data_len = 0;
    free(p->event);
    p->event = NULL;
    return stop ? 1 : 0;
}

static bool field_is(const char *f, size_t n, const char *name)
{
    return n == strlen(name) && !memcmp(f, name, n);
}

/* Handles one line 'line' of 'len' bytes, without its end. Returns 0, 1 (stop) or -1. */
static int process_line(struct nubo_sse *p, const char *line, size_t len, nubo_sse_fn fn, void *arg)
{
    if (len == 0) {
        return dispatch(p, fn, arg);
    }
    if (line[0] == ':') {
        return 0; /* a comment: the server's keep-alive */
    }
    const char *colon = memchr(line, ':', len);
    size_t flen = colon ? (size_t)(colon - line) : len;
    const char *v = colon ? colon + 1 : line + len;
    size_t vlen = (size_t)(line + len - v);
    if (vlen && *v == ' ') {
        v++;
        vlen--;
    }
    int rc = 0;
    if (field_is(line, flen, "data")) {
        /* The line buffer counted against the limit already; the data keeps it. */
        rc = reserve(&p->data, &p->data_cap, p->data_len + vlen + 2);
        if (rc == 0) {
            memcpy(p->data + p->data_len, v, vlen);
            p->data_len += vlen;
            p->data[p->data_len++] = '\n';
            p->data[p->data_len] = '\0';
        }
    } else if (field_is(line, flen, "event")) {
        rc = set_str(&p->event, v, vlen);
    } else if (field_is(line, flen, "id")) {
        if (!memchr(v, '\0', vlen)) { /* the standard ignores an id with a NUL */
            rc = set_str(&p->last_id, v, vlen);
        }
    } else if (field_is(line, flen, "retry")) {
        size_t digits = 0;
        while (digits < vlen && v[digits] >= '0' && v[digits] <= '9') {
            digits++;
        }
        if (vlen && digits == vlen && vlen < 10) {
            p->retry_ms = strtol(v, NULL, 10);
        }
    } /* else: a field this parser does not know, ignored as the standard says */
    if (rc < 0) {
        p->failed = NUBO_SSE_NO_MEMORY;
        return -1;
    }
    return 0;
}

int nubo_sse_feed(struct nubo_sse *p, const char *buf, size_t n, nubo_sse_fn fn, void *arg)
{
    const char *s = buf, *end = buf + n;
    if (!p->started) {
        p->started = true;
        p->retry_ms = -1;
    }
    while (s < end) {
        if (p->after_cr) {
            p->after_cr = false;
            if (*s == '\n') { /* the LF of a CRLF */
                s++;
                continue;
            }
        }
        const char *e = s;
        while (e < end && *e != '\n' && *e != '\r') {
            e++;
        }
        size_t k = (size_t)(e - s);
        if (p->line_len + k + p->data_len > p->max_bytes) {
            p->failed = NUBO_SSE_TOO_LONG;
            return -1;
        }
        if (reserve(&p->line, &p->line_cap, p->line_len + k + 1) < 0) {
            p->failed = NUBO_SSE_NO_MEMORY;
            return -1;
        }
        memcpy(p->line + p->line_len, s, k);
        p->line_len += k;
        p->line[p->line_len] = '\0';
        if (e == end) {
            break; /* the line goes on in the next bytes */
        }
        p->after_cr = *e == '\r';
        s = e + 1;
        const char *line = p->line;
        size_t len = p->line_len;
        if (!p->had_line) {
            p->had_line = true;
            if (len >= 3 && !memcmp(line, "\xEF\xBB\xBF", 3)) { /* a UTF-8 BOM */
                line += 3;
                len -= 3;
            }
        }
        p->line_len = 0;
        int rc = process_line(p, line, len, fn, arg);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

void nubo_sse_clear(struct nubo_sse *p)
{
    size_t max = p->max_bytes;
    free(p->line);
    free(p->data);
    free(p->event);
    free(p->last_id);
    memset(p, 0, sizeof *p);
    p->max_bytes = max;
}
