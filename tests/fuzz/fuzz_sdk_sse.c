/* Fuzz target: libnubo's Server-Sent Events parser (sdk/c/src/sse.c), which reads the gateway's
 * event stream (GET /v1/events). The SDK does not depend on common/, so the parser's source is
 * compiled into this target alone. Any bytes are a stream, fed whole and again in pieces whose
 * sizes come from the input: both must give the same events and the same end, and no event's
 * data may pass the memory limit. */
#include "../../sdk/c/src/sse.c"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LIMIT 512

/* What a run saw: how many events, and a digest of their ids, types and data. */
struct trace {
    size_t n;
    uint64_t h;
};

static uint64_t mix(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    }
    return (h ^ 0xff) * 0x100000001b3ULL; /* a separator: "ab","c" differs from "a","bc" */
}

static int on_event(const char *id, const char *type, const char *d, size_t len, void *arg)
{
    struct trace *t = arg;
    if (len > LIMIT || d[len] != '\0' || !*type) {
        abort();
    }
    t->n++;
    t->h = mix(mix(mix(t->h, id, strlen(id)), type, strlen(type)), d, len);
    return 0;
}

static int run(const uint8_t *data, size_t size, const uint8_t *steps, size_t n_steps,
               struct trace *t)
{
    struct nubo_sse p = {.max_bytes = LIMIT};
    int rc = 0;
    size_t k = 0;
    for (size_t i = 0; i < size && rc == 0;) {
        size_t step = n_steps ? (size_t)steps[k++ % n_steps] % 17 + 1 : size;
        if (step > size - i) {
            step = size - i;
        }
        rc = nubo_sse_feed(&p, (const char *)data + i, step, on_event, t);
        i += step;
    }
    if (p.data_len > LIMIT + 1 || p.line_len > LIMIT) {
        abort();
    }
    nubo_sse_clear(&p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct trace whole = {0, 0xcbf29ce484222325ULL}, pieces = whole;
    int a = run(data, size, NULL, 0, &whole);
    int b = run(data, size, data, size < 8 ? size : 8, &pieces);
    if (a != b || whole.n != pieces.n || whole.h != pieces.h) {
        abort();
    }
    return 0;
}
