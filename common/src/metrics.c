/* Metrics registry rendered in the Prometheus text format (see metrics.h).
 *
 * Families keep their registration order, and so do the series inside a family, so the output is
 * stable and grouped as the format requires. A hash table over (name, labels) lets callers look a
 * series up on every request under a read lock; only creation takes the write lock. Histograms
 * keep one counter per bucket (not cumulative, so an observation touches one bucket) and their
 * sum in integer nanoseconds, which adds up exactly under concurrency. */
#include "nubo/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_BOUNDS     14 /* finite bucket bounds; one more bucket for +Inf */
#define METRICS_TABLE_INIT 64

static const double bucket_bounds[METRICS_BOUNDS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
static const char *const bucket_names[METRICS_BOUNDS + 1] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25",   "0.5",   "1",      "2.5",   "5",    "10",    "+Inf",
};

enum metric_kind { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM };

static const char *const kind_names[] = {"counter", "gauge", "histogram"};

struct nb_counter {
    atomic_uint_least64_t value;
};

struct nb_gauge {
    atomic_int_least64_t value;
};

struct nb_histogram {
    atomic_uint_least64_t buckets[METRICS_BOUNDS + 1];
    atomic_uint_least64_t sum_ns;
};

struct family;

struct series {
    struct series *next;      /* in the family, registration order */
    struct series *hash_next; /* in the hash bucket */
    struct family *family;
    uint64_t hash;
    char *labels; /* "" when none */
    union {
        struct nb_counter counter;
        struct nb_gauge gauge;
        struct nb_histogram histogram;
    } u;
};

struct family {
    struct family *next;
    char *name;
    char *help; /* NULL when none */
    enum metric_kind kind;
    struct series *first;
    struct series *last;
};

struct nb_metrics {
    pthread_rwlock_t lock;
    struct family *first;
    struct family *last;
    struct series **table;
    size_t table_size; /* a power of two */
    size_t n_series;
};

struct nb_metrics *nb_metrics_new(void)
{
    struct nb_metrics *m = calloc(1, sizeof *m);
    if (!m) {
        return NULL;
    }
    m->table = calloc(METRICS_TABLE_INIT, sizeof *m->table);
    if (!m->table) {
        free(m);
        return NULL;
    }
    m->table_size = METRICS_TABLE_INIT;
    pthread_rwlock_init(&m->lock, NULL);
    return m;
}

void nb_metrics_free(struct nb_metrics *m)
{
    if (!m) {
        return;
    }
    struct family *f = m->first;
    while (f) {
        struct family *fnext = f->next;
        struct series *s = f->first;
        while (s) {
            struct series *snext = s->next;
            free(s->labels);
            free(s);
            s = snext;
        }
        free(f->name);
        free(f->help);
        free(f);
        f = fnext;
    }
    free(m->table);
    pthread_rwlock_destroy(&m->lock);
    free(m);
}

static bool valid_name(const char *name)
{
    if (!name || !name[0] || (name[0] >= '0' && name[0] <= '9')) {
        return false;
    }
    for (const char *p = name; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '_' || *p == ':';
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* FNV-1a over name, a separator that cannot occur in a name, and labels. */
static uint64_t series_hash(const char *name, const char *labels)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *p = name; *p; p++) {
        h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
    }
    h = (h ^ '{') * 0x100000001b3ULL;
    for (const char *p = labels; *p; p++) {
        h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
    }
    return h;
}

static struct series *find_series(const struct nb_metrics *m, uint64_t hash, const char *name,
                                  const char *labels)
{
    for (struct series *s = m->table[hash & (m->table_size - 1)]; s; s = s->hash_next) {
        if (s->hash == hash && strcmp(s->family->name, name) == 0 &&
            strcmp(s->labels, labels) == 0) {
            return s;
        }
    }
    return NULL;
}

static void grow_table(struct nb_metrics *m)
{
    size_t size = m->table_size * 2;
    struct series **table = calloc(size, sizeof *table);
    if (!table) {
        return; /* longer chains, still correct */
    }
    for (size_t i = 0; i < m->table_size; i++) {
        struct series *s = m->table[i];
        while (s) {
            struct series *next = s->hash_next;
            s->hash_next = table[s->hash & (size - 1)];
            table[s->hash & (size - 1)] = s;
            s = next;
        }
    }
    free(m->table);
    m->table = table;
    m->table_size = size;
}

static struct family *get_family(struct nb_metrics *m, enum metric_kind kind, const char *name,
                                 const char *help)
{
    for (struct family *f = m->first; f; f = f->next) {
        if (strcmp(f->name, name) == 0) {
            return f;
        }
    }
    struct family *f = calloc(1, sizeof *f);
    if (!f) {
        return NULL;
    }
    f->name = strdup(name);
    f->help = help && help[0] ? strdup(help) : NULL;
    if (!f->name || (help && help[0] && !f->help)) {
        free(f->name);
        free(f->help);
        free(f);
        return NULL;
    }
    f->kind = kind;
    if (m->last) {
        m->last->next = f;
    } else {
        m->first = f;
    }
    m->last = f;
    return f;
}

/* Returns the series, creating it (and its family) on first use; NULL on a kind conflict, an
 * invalid name or out of memory. */
static struct series *lookup(struct nb_metrics *m, enum metric_kind kind, const char *name,
                             const char *help, const char *labels)
{
    if (!m || !valid_name(name)) {
        return NULL;
    }
    if (!labels) {
        labels = "";
    }
    uint64_t hash = series_hash(name, labels);

    pthread_rwlock_rdlock(&m->lock);
    struct series *s = find_series(m, hash, name, labels);
    pthread_rwlock_unlock(&m->lock);
    if (s) {
        return s->family->kind == kind ? s : NULL;
    }

    pthread_rwlock_wrlock(&m->lock);
    s = find_series(m, hash, name, labels);
    if (s) {
        goto out;
    }
    struct family *f = get_family(m, kind, name, help);
    if (!f || f->kind != kind) {
        goto out;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        goto out;
    }
    s->labels = strdup(labels);
    if (!s->labels) {
        free(s);
        s = NULL;
        goto out;
    }
    s->family = f;
    s->hash = hash;
    if (f->last) {
        f->last->next = s;
    } else {
        f->first = s;
    }
    f->last = s;
    s->hash_next = m->table[hash & (m->table_size - 1)];
    m->table[hash & (m->table_size - 1)] = s;
    if (++m->n_series > m->table_size) {
        grow_table(m);
    }
out:
    pthread_rwlock_unlock(&m->lock);
    return s && s->family->kind == kind ? s : NULL;
}

struct nb_counter *nb_metrics_counter(struct nb_metrics *m, const char *name, const char *help,
                                      const char *labels)
{
    struct series *s = lookup(m, KIND_COUNTER, name, help, labels);
    return s ? &s->u.counter : NULL;
}

struct nb_gauge *nb_metrics_gauge(struct nb_metrics *m, const char *name, const char *help,
                                  const char *labels)
{
    struct series *s = lookup(m, KIND_GAUGE, name, help, labels);
    return s ? &s->u.gauge : NULL;
}

struct nb_histogram *nb_metrics_histogram(struct nb_metrics *m, const char *name, const char *help,
                                          const char *labels)
{
    struct series *s = lookup(m, KIND_HISTOGRAM, name, help, labels);
    return s ? &s->u.histogram : NULL;
}

void nb_counter_add(struct nb_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

void nb_gauge_set(struct nb_gauge *g, int64_t v)
{
    atomic_store_explicit(&g->value, v, memory_order_relaxed);
}

void nb_gauge_add(struct nb_gauge *g, int64_t delta)
{
    atomic_fetch_add_explicit(&g->value, delta, memory_order_relaxed);
}

void nb_histogram_observe(struct nb_histogram *h, double seconds)
{
    if (!(seconds > 0)) {
        seconds = 0; /* negative or NaN: a clock went backwards */
    }
    size_t i = 0;
    while (i < METRICS_BOUNDS && seconds > bucket_bounds[i]) {
        i++;
    }
    /* Saturate absurd values (days) rather than overflow the conversion. */
    double ns = seconds < 1e12 ? round(seconds * 1e9) : 1e21;
    uint64_t add = ns < 1e19 ? (uint64_t)ns : UINT64_C(10000000000000000000);
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, add, memory_order_relaxed);
}

/* --- rendering --- */

static void put_help(FILE *out, const char *name, const char *help)
{
    fprintf(out, "# HELP %s ", name);
    for (const char *p = help; *p; p++) {
        if (*p == '\\') {
            fputs("\\\\", out);
        } else if (*p == '\n') {
            fputs("\\n", out);
        } else {
            fputc(*p, out);
        }
    }
    fputc('\n', out);
}

/* Prints 'ns' nanoseconds as seconds with no trailing zeros: 203000000 -> "0.203". */
static void put_seconds(FILE *out, uint64_t ns)
{
    char frac[16];
    snprintf(frac, sizeof frac, "%09" PRIu64, ns % 1000000000u);
    size_t n = strlen(frac);
    while (n > 0 && frac[n - 1] == '0') {
        frac[--n] = '\0';
    }
    fprintf(out, "%" PRIu64 "%s%s", ns / 1000000000u, n ? "." : "", frac);
}

static void put_histogram(FILE *out, const char *name, const struct series *s)
{
    const struct nb_histogram *h = &s->u.histogram;
    const char *sep = s->labels[0] ? "," : "";
    uint64_t total = 0;

    for (size_t i = 0; i <= METRICS_BOUNDS; i++) {
        total += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        fprintf(out, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", name, s->labels, sep,
                bucket_names[i], total);
    }
    uint64_t sum = atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
    if (s->labels[0]) {
        fprintf(out, "%s_sum{%s} ", name, s->labels);
    } else {
        fprintf(out, "%s_sum ", name);
    }
    put_seconds(out, sum);
    if (s->labels[0]) {
        fprintf(out, "\n%s_count{%s} %" PRIu64 "\n", name, s->labels, total);
    } else {
        fprintf(out, "\n%s_count %" PRIu64 "\n", name, total);
    }
}

static void put_name(FILE *out, const char *name, const struct series *s)
{
    if (s->labels[0]) {
        fprintf(out, "%s{%s} ", name, s->labels);
    } else {
        fprintf(out, "%s ", name);
    }
}

char *nb_metrics_render(struct nb_metrics *m)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) {
        return NULL;
    }
    pthread_rwlock_rdlock(&m->lock);
    for (const struct family *f = m->first; f; f = f->next) {
        if (!f->first) {
            continue;
        }
        if (f->help) {
            put_help(out, f->name, f->help);
        }
        fprintf(out, "# TYPE %s %s\n", f->name, kind_names[f->kind]);
        for (const struct series *s = f->first; s; s = s->next) {
            switch (f->kind) {
            case KIND_COUNTER:
                put_name(out, f->name, s);
                fprintf(out, "%" PRIu64 "\n",
                        (uint64_t)atomic_load_explicit(&s->u.counter.value, memory_order_relaxed));
                break;
            case KIND_GAUGE:
                put_name(out, f->name, s);
                fprintf(out, "%" PRId64 "\n",
                        (int64_t)atomic_load_explicit(&s->u.gauge.value, memory_order_relaxed));
                break;
            case KIND_HISTOGRAM:
                put_histogram(out, f->name, s);
                break;
            }
        }
    }
    pthread_rwlock_unlock(&m->lock);
    if (fclose(out) != 0) {
        free(text);
        return NULL;
    }
    return text;
}
