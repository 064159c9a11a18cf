/* Metering: instance_events, image_storage_events, instance_net_events and meter_events into
 * hourly usage_records (billing.h).
 *
 * One transaction per batch of hours [h0, h1), holding the billing lock: it streams out (binary
 * COPY) the state carried from before h0 (billing_*_carry) and the events of [h0, h1) in (at, id)
 * order, turns them into intervals here (each row lasts until the next one of its resource),
 * cuts the intervals at hour boundaries and sums them per (tenant, resource, meter, sku, hour)
 * in integer arithmetic, copies the records in (in primary-key order), replaces the carried
 * state of the resources that had events, and moves the watermark to h1. Nothing is counted
 * twice: a batch either commits whole (records, carry and watermark) or not at all, and the
 * records' primary key makes a re-run of an hour find the rows it would write.
 *
 * The events of the next batch are read ahead on a second connection while a batch is written
 * (struct prefetch): the two halves of the work then use two cores. */
#include "billing.h"
#include "pgcopy.h"

#include "nubo/error.h"
#include "nubo/log.h"
#include "nubo/pg.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Times are PostgreSQL's: microseconds since 2000-01-01 00:00 UTC (binary COPY's timestamptz). */
#define USEC_PER_S INT64_C(1000000)
#define USEC_PER_H (3600 * USEC_PER_S)
#define PG_EPOCH_S INT64_C(946684800) /* 2000-01-01 in Unix seconds */

/* 't' truncated to a multiple of 'unit', towards minus infinity (date_trunc). */
static int64_t trunc_to(int64_t t, int64_t unit)
{
    int64_t m = t % unit;
    return t - (m < 0 ? m + unit : m);
}

/* The meters of the instance and image tables. They are the first strings of the batch's meter
 * table (struct meter_run's 'meters'), in this order; meter_events adds its own names after them
 * (eip-idle, eip-associated, vpn-connection, or any other). */
enum meter {
    M_IMAGE_STORAGE,
    M_INSTANCE_MINIMUM,
    M_INSTANCE_RUNNING,
    M_NETWORK_IN,
    M_NETWORK_OUT,
    M_STOPPED_STORAGE,
    M_FIXED /* how many */
};
static const char *const METER_NAMES[M_FIXED] = {"image-storage",    "instance-minimum",
                                                 "instance-running", "network-in",
                                                 "network-out",      "stopped-storage"};

/* Kinds of resources: instances (states), images (stored bytes), instances again for their
 * network bytes (point events, kept apart so that each kind's hours only grow), and the on/off
 * meters of meter_events, one resource per (tenant, resource id, meter) so that each meter of a
 * resource (an address's eip-idle and eip-associated) has hours of its own. */
enum kind { K_INSTANCE, K_IMAGE, K_NET, K_METER, K_COUNT };

/* Interned strings: each distinct string once, by index. */
struct strtab {
    char **strs;
    uint32_t n, cap;
    uint32_t *slots; /* open addressing: index + 1, 0 when empty */
    uint32_t nslots;
};

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)s[i]) * UINT64_C(1099511628211);
    }
    return h;
}

/* Returns the index of the 'n' bytes at 's' in 't', adding them; -1 when out of memory. */
static long strtab_intern(struct strtab *t, const char *s, size_t n)
{
    if ((uint64_t)(t->n + 1) * 2 > t->nslots) {
        uint32_t ns = t->nslots ? t->nslots * 2 : 1024;
        uint32_t *slots = calloc(ns, sizeof *slots);
        if (!slots) {
            return -1;
        }
        for (uint32_t i = 0; i < t->n; i++) {
            uint32_t j = (uint32_t)(hash_bytes(t->strs[i], strlen(t->strs[i])) & (ns - 1));
            while (slots[j]) {
                j = (j + 1) & (ns - 1);
            }
            slots[j] = i + 1;
        }
        free(t->slots);
        t->slots = slots;
        t->nslots = ns;
    }
    uint32_t j = (uint32_t)(hash_bytes(s, n) & (t->nslots - 1));
    for (; t->slots[j]; j = (j + 1) & (t->nslots - 1)) {
        const char *e = t->strs[t->slots[j] - 1];
        if (!strncmp(e, s, n) && e[n] == '\0') {
            return t->slots[j] - 1;
        }
    }
    if (t->n == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 256;
        char **strs = realloc(t->strs, cap * sizeof *strs);
        if (!strs) {
            return -1;
        }
        t->strs = strs;
        t->cap = cap;
    }
    char *copy = strndup(s, n);
    if (!copy) {
        return -1;
    }
    t->strs[t->n] = copy;
    t->slots[j] = ++t->n;
    return t->n - 1;
}

static void strtab_free(struct strtab *t)
{
    for (uint32_t i = 0; i < t->n; i++) {
        free(t->strs[i]);
    }
    free(t->strs);
    free(t->slots);
}

/* Usage accumulated for one resource in its current hour, per (tenant, meter, sku). 'q' is in
 * seconds (GiB-seconds once multiplied by the type's disk for stopped-storage) or byte-seconds. */
struct open_rec {
    __int128 q;
    uint32_t tenant, sku;
    uint16_t meter; /* index in the batch's meter table */
};

/* A resource (instance, image, or one meter of a resource of meter_events): its current row
 * (carried, or its last event so far) and the records of the hour its intervals have reached. */
struct res {
    int64_t since; /* the row's time, truncated to the second */
    int64_t bytes; /* images */
    int64_t hour;  /* the hour of 'open' */
    uint32_t tenant, sku, state;
    uint32_t name;   /* K_METER: the resource id, in the batch's 'names' */
    uint16_t meter;  /* K_METER: the meter */
    bool on;         /* K_METER: the meter runs */
    bool live;       /* has a row */
    bool from_event; /* the row is an event of this batch: the carry changes */
    int nopen, capopen;
    struct open_rec *open;
};

/* A usage record of the batch; the ranks order records like the primary key. */
struct rec {
    int64_t hour, q;
    uint32_t tenant, res, sku;
    uint32_t rt, rr, rs; /* ranks of tenant, resource, sku */
    uint16_t meter, rm;  /* the meter and its rank */
    uint8_t kind;
};

struct plan {
    int64_t from, to, min_run;
};

/* One batch [h0, h1) being metered. */
struct meter_run {
    int64_t h0, h1;
    struct strtab tenants, skus, states, meters, ids[K_COUNT]; /* ids: by kind */
    struct strtab names; /* K_METER's resource ids (its 'ids' are keys with tenant and meter) */
    char *key;           /* K_METER's key being built */
    size_t keycap;
    struct res *res[K_COUNT];
    uint32_t rescap[K_COUNT];
    int64_t *gib; /* by sku: root disk of the instance type, -1 when there is no such type */
    uint32_t gibcap;
    struct plan *plans;
    size_t nplans, plancap;
    struct rec *recs;
    size_t nrecs, reccap;
    uint32_t running, stopped, terminated, nosku; /* interned strings */
};

static int oom(struct nb_error *err)
{
    nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
    return -1;
}

/* Interns a sku and keeps 'gib' as long as the table. Returns its index, or -1. */
static long intern_sku(struct meter_run *m, const char *s, size_t n)
{
    long i = strtab_intern(&m->skus, s, n);
    if (i < 0) {
        return -1;
    }
    if ((uint32_t)i >= m->gibcap) {
        uint32_t cap = m->gibcap ? m->gibcap * 2 : 64;
        int64_t *g = realloc(m->gib, cap * sizeof *g);
        if (!g) {
            return -1;
        }
        for (uint32_t k = m->gibcap; k < cap; k++) {
            g[k] = -1;
        }
        m->gib = g;
        m->gibcap = cap;
    }
    return i;
}

/* The resource of kind 'k' whose key is the 'n' bytes at 's', created empty when new; NULL when
 * out of memory. */
static struct res *res_of_key(struct meter_run *m, enum kind k, const char *s, size_t n,
                              uint32_t *idx)
{
    long i = strtab_intern(&m->ids[k], s, n);
    if (i < 0) {
        return NULL;
    }
    if ((uint32_t)i >= m->rescap[k]) {
        uint32_t cap = m->rescap[k] ? m->rescap[k] * 2 : 1024;
        struct res *r = realloc(m->res[k], cap * sizeof *r);
        if (!r) {
            return NULL;
        }
        memset(r + m->rescap[k], 0, (cap - m->rescap[k]) * sizeof *r);
        m->res[k] = r;
        m->rescap[k] = cap;
    }
    *idx = (uint32_t)i;
    return &m->res[k][i];
}

/* The resource of kind 'k' named by field 'f' (see res_of_key()). */
static struct res *res_of(struct meter_run *m, enum kind k, const struct billing_field *f,
                          uint32_t *idx)
{
    return res_of_key(m, k, f->data, (size_t)f->len, idx);
}

/* The resource id of resource 'idx' of kind 'k'. */
static char *res_name(const struct meter_run *m, enum kind k, uint32_t idx)
{
    return k == K_METER ? m->names.strs[m->res[k][idx].name] : m->ids[k].strs[idx];
}

static int meter_init(struct meter_run *m, int64_t h0, int64_t h1)
{
    memset(m, 0, sizeof *m);
    m->h0 = h0;
    m->h1 = h1;
    long r = strtab_intern(&m->states, "running", 7), s = strtab_intern(&m->states, "stopped", 7),
         t = strtab_intern(&m->states, "terminated", 10), e = intern_sku(m, "", 0);
    if (r < 0 || s < 0 || t < 0 || e < 0) {
        return -1;
    }
    m->running = (uint32_t)r;
    m->stopped = (uint32_t)s;
    m->terminated = (uint32_t)t;
    m->nosku = (uint32_t)e;
    for (int i = 0; i < M_FIXED; i++) {
        if (strtab_intern(&m->meters, METER_NAMES[i], strlen(METER_NAMES[i])) != i) {
            return -1;
        }
    }
    return 0;
}

static void meter_free(struct meter_run *m)
{
    for (int k = 0; k < K_COUNT; k++) {
        for (uint32_t i = 0; i < m->ids[k].n; i++) {
            free(m->res[k][i].open);
        }
        free(m->res[k]);
        strtab_free(&m->ids[k]);
    }
    strtab_free(&m->tenants);
    strtab_free(&m->skus);
    strtab_free(&m->states);
    strtab_free(&m->meters);
    strtab_free(&m->names);
    free(m->key);
    free(m->gib);
    free(m->plans);
    free(m->recs);
}

/* Turns the open records of 'r' into usage records (those with a positive quantity). */
static int flush_open(struct meter_run *m, struct res *r, enum kind k, uint32_t idx,
                      struct nb_error *err)
{
    for (int i = 0; i < r->nopen; i++) {
        const struct open_rec *o = &r->open[i];
        __int128 q = o->q;
        if (o->meter == M_STOPPED_STORAGE) {
            if (m->gib[o->sku] < 0) {
                continue; /* an unknown instance type has no disk to bill */
            }
            q *= m->gib[o->sku];
        }
        if (q <= 0) {
            continue;
        }
        if (q > INT64_MAX) {
            nb_error_set(err, NB_ERR_INVALID, "usage of \"%s\" in one hour is out of range",
                         res_name(m, k, idx));
            return -1;
        }
        if (m->nrecs == m->reccap) {
            size_t cap = m->reccap ? m->reccap * 2 : 4096;
            struct rec *recs = realloc(m->recs, cap * sizeof *recs);
            if (!recs) {
                return oom(err);
            }
            m->recs = recs;
            m->reccap = cap;
        }
        m->recs[m->nrecs++] = (struct rec){.hour = r->hour,
                                           .q = (int64_t)q,
                                           .tenant = o->tenant,
                                           .res = idx,
                                           .sku = o->sku,
                                           .meter = o->meter,
                                           .kind = (uint8_t)k};
    }
    r->nopen = 0;
    return 0;
}

/* Adds 'q' to the record (tenant, meter, sku) of 'r' in 'hour'. A resource's hours only grow, so
 * the records of an earlier hour are complete when a later one starts. */
static int add(struct meter_run *m, struct res *r, enum kind k, uint32_t idx, int64_t hour,
               uint16_t meter, __int128 q, struct nb_error *err)
{
    if (r->nopen && r->hour != hour && flush_open(m, r, k, idx, err) < 0) {
        return -1;
    }
    r->hour = hour;
    for (int i = 0; i < r->nopen; i++) {
        struct open_rec *o = &r->open[i];
        if (o->meter == meter && o->tenant == r->tenant && o->sku == r->sku) {
            o->q += q;
            return 0;
        }
    }
    if (r->nopen == r->capopen) {
        int cap = r->capopen ? r->capopen * 2 : 4;
        struct open_rec *o = realloc(r->open, (size_t)cap * sizeof *o);
        if (!o) {
            return oom(err);
        }
        r->open = o;
        r->capopen = cap;
    }
    r->open[r->nopen++] =
        (struct open_rec){.q = q, .tenant = r->tenant, .sku = r->sku, .meter = meter};
    return 0;
}

/* Ends the current row of 'r' at 'end' (the next row's time, or h1 when 'last'): its time in
 * [max(since, h0), end), cut at hour boundaries, and for a run that ended shorter than the
 * minimum of the plan in effect when it ended, the top-up, in the hour it ended. */
static int close_row(struct meter_run *m, struct res *r, enum kind k, uint32_t idx, int64_t end,
                     bool last, struct nb_error *err)
{
    uint16_t meter;
    __int128 per_s = 1;
    if (k == K_NET) {
        return 0; /* point events: no intervals */
    }
    if (k == K_METER) {
        if (!r->on) {
            return 0;
        }
        meter = r->meter;
    } else if (k == K_IMAGE) {
        if (r->bytes <= 0) {
            return 0;
        }
        meter = M_IMAGE_STORAGE;
        per_s = r->bytes;
    } else if (r->state == m->running) {
        meter = M_INSTANCE_RUNNING;
    } else if (r->state == m->stopped) {
        meter = M_STOPPED_STORAGE;
    } else {
        return 0;
    }
    int64_t start = r->since > m->h0 ? r->since : m->h0;
    for (int64_t h = trunc_to(start, USEC_PER_H); h < end; h += USEC_PER_H) {
        int64_t a = r->since > h ? r->since : h, b = end < h + USEC_PER_H ? end : h + USEC_PER_H;
        if (add(m, r, k, idx, h, meter, per_s * ((b - a) / USEC_PER_S), err) < 0) {
            return -1;
        }
    }
    /* The plan's minimum run is an instance's (EC2's 60 s); an on/off meter bills its seconds. */
    if (k != K_INSTANCE || meter != M_INSTANCE_RUNNING || last) {
        return 0;
    }
    int64_t secs = (end - r->since) / USEC_PER_S;
    for (size_t i = 0; i < m->nplans; i++) {
        const struct plan *p = &m->plans[i];
        if (end >= p->from && end < p->to) {
            return secs < p->min_run ? add(m, r, k, idx, trunc_to(end, USEC_PER_H),
                                           M_INSTANCE_MINIMUM, p->min_run - secs, err)
                                     : 0;
        }
    }
    return 0;
}

/* Checks a row has 'want' non-NULL fields, those in the bit set 'ints' of 8 bytes. */
static bool fields_ok(const struct billing_field *f, int n, int want, unsigned ints)
{
    if (n != want) {
        return false;
    }
    for (int i = 0; i < n; i++) {
        bool is_int = ints & (1u << i);
        if (f[i].len < 0 || (is_int && f[i].len != 8)) {
            return false;
        }
    }
    return true;
}

static int bad_row(struct nb_error *err)
{
    nb_error_set(err, NB_ERR_INTERNAL, "unexpected row in billing's COPY");
    return -1;
}

/* instance_types: (name, disk_gib::bigint). */
static int on_type(void *ctx, const struct billing_field *f, int n, struct nb_error *err)
{
    struct meter_run *m = ctx;
    if (!fields_ok(f, n, 2, 1u << 1)) {
        return bad_row(err);
    }
    long i = intern_sku(m, f[0].data, (size_t)f[0].len);
    if (i < 0) {
        return oom(err);
    }
    m->gib[i] = billing_field_int64(&f[1]);
    return 0;
}

/* price_plans, by effective_from: (effective_from, min_run_seconds::bigint). */
static int on_plan(void *ctx, const struct billing_field *f, int n, struct nb_error *err)
{
    struct meter_run *m = ctx;
    if (!fields_ok(f, n, 2, 1u << 0 | 1u << 1)) {
        return bad_row(err);
    }
    if (m->nplans == m->plancap) {
        size_t cap = m->plancap ? m->plancap * 2 : 8;
        struct plan *p = realloc(m->plans, cap * sizeof *p);
        if (!p) {
            return oom(err);
        }
        m->plans = p;
        m->plancap = cap;
    }
    int64_t from = billing_field_int64(&f[0]);
    if (m->nplans) {
        m->plans[m->nplans - 1].to = from;
    }
    m->plans[m->nplans++] = (struct plan){from, INT64_MAX, billing_field_int64(&f[1])};
    return 0;
}

/* Tells whether the interned string 's' is the text of field 'f'. */
static bool same(const char *s, const struct billing_field *f)
{
    return !strncmp(s, f->data, (size_t)f->len) && s[f->len] == '\0';
}

/* Carried instances and instance events, in time order per instance:
 * (instance_id, tenant_id, instance_type, state, time, event). */
static int on_instance(void *ctx, const struct billing_field *f, int n, struct nb_error *err)
{
    struct meter_run *m = ctx;
    if (!fields_ok(f, n, 6, 1u << 4) || f[5].len != 1) {
        return bad_row(err);
    }
    uint32_t idx;
    struct res *r = res_of(m, K_INSTANCE, &f[0], &idx);
    int64_t ts = trunc_to(billing_field_int64(&f[4]), USEC_PER_S);
    if (!r) {
        return oom(err);
    }
    if (r->live && close_row(m, r, K_INSTANCE, idx, ts, false, err) < 0) {
        return -1;
    }
    /* Most events change only the state: keep what is the same without hashing it. */
    if (!r->live || !same(m->tenants.strs[r->tenant], &f[1])) {
        long tenant = strtab_intern(&m->tenants, f[1].data, (size_t)f[1].len);
        if (tenant < 0) {
            return oom(err);
        }
        r->tenant = (uint32_t)tenant;
    }
    if (!r->live || !same(m->skus.strs[r->sku], &f[2])) {
        long sku = intern_sku(m, f[2].data, (size_t)f[2].len);
        if (sku < 0) {
            return oom(err);
        }
        r->sku = (uint32_t)sku;
    }
    long state = strtab_intern(&m->states, f[3].data, (size_t)f[3].len);
    if (state < 0) {
        return oom(err);
    }
    r->state = (uint32_t)state;
    r->since = ts;
    r->live = true;
    r->from_event = f[5].data[0] != 0;
    return 0;
}

/* Carried images and image storage events: (image_id, tenant_id, bytes, time, event). */
static int on_image(void *ctx, const struct billing_field *f, int n, struct nb_error *err)
{
    struct meter_run *m = ctx;
    if (!fields_ok(f, n, 5, 1u << 2 | 1u << 3) || f[4].len != 1) {
        return bad_row(err);
    }
    uint32_t idx;
    struct res *r = res_of(m, K_IMAGE, &f[0], &idx);
    int64_t ts = trunc_to(billing_field_int64(&f[3]), USEC_PER_S);
    if (!r) {
        return oom(err);
    }
    if (r->live && close_row(m, r, K_IMAGE, idx, ts, false, err) < 0) {
        return -1;
    }
    if (!r->live || !same(m->tenants.strs[r->tenant], &f[1])) {
        long tenant = strtab_intern(&m->tenants, f[1].data, (size_t)f[1].len);
        if (tenant < 0) {
            return oom(err);
        }
        r->tenant = (uint32_t)tenant;
    }
    r->sku = m->nosku;
    r->bytes = billing_field_int64(&f[2]);
    r->since = ts;
    r->live = true;
    r->from_event = f[4].data[0] != 0;
    return 0;
}

/* Network byte events: (instance_id, tenant_id, rx_bytes, tx_bytes, at), in time order. Each
 * counts in the hour it was recorded. */
static int on_net(void *ctx, const struct billing_field *f, int n, struct nb_error *err)
{
    struct meter_run *m = ctx;
    if (!fields_ok(f, n, 5, 1u << 2 | 1u << 3 | 1u << 4)) {
        return bad_row(err);
    }
    uint32_t idx;
    struct res *r = res_of(m, K_NET, &f[0], &idx);
    if (!r) {
        return oom(err);
    }
    long tenant = strtab_intern(&m->tenants, f[1].data, (size_t)f[1].len);
    if (tenant < 0) {
        return oom(err);
    }
    r->tenant = (uint32_t)tenant;
    r->sku = m->nosku;
    int64_t hour = trunc_to(billing_field_int64(&f[4]), USEC_PER_H);
    return add(m, r, K_NET, idx, hour, M_NETWORK_IN, billing_field_int64(&f[2]), err) < 0 ||
                   add(m, r, K_NET, idx, hour, M_NETWORK_OUT, billing_field_int64(&f[3]), err) < 0
               ? -1
               : 0;
}

/* The K_METER resource of tenant 'tenant', resource id 'id' and meter 'meter', created empty
 * when new; NULL when out of memory. Its key holds the three unambiguously: the meter's index,
 * the tenant's length, the tenant, then the id. */
static struct res *meter_res_of(struct meter_run *m, const struct billing_field *tenant,
                                const struct billing_field *id, uint16_t meter, uint32_t *idx)
{
    size_t need = 32 + (size_t)tenant->len + (size_t)id->len;
    if (need > m->keycap) {
        char *key = realloc(m->key, need);
        if (!key) {
            return NULL;
        }
        m->key = key;
        m->keycap = need;
    }
    size_t n = (size_t)snprintf(m->key, need, "%u:%d:", (unsigned)meter, (int)tenant->len);
    memcpy(m->key + n, tenant->data, (size_t)tenant->len);
    memcpy(m->key + n + (size_t)tenant->len, id->data, (size_t)id->len);
    return res_of_key(m, K_METER, m->key, n + (size_t)tenant->len + (size_t)id->len, idx);
}

/* Carried meters and meter events, in time order per (tenant, resource, meter):
 * (resource_id, tenant_id, meter, sku, time, active, event). An active row starts the meter (or,
 * when it runs, goes on with the row's sku), an inactive one stops it. */
static int on_meter(void *ctx, const struct billing_field *f, int n, struct nb_error *err)
{
    struct meter_run *m = ctx;
    if (!fields_ok(f, n, 7, 1u << 4) || f[5].len != 1 || f[6].len != 1) {
        return bad_row(err);
    }
    long meter = strtab_intern(&m->meters, f[2].data, (size_t)f[2].len);
    if (meter < 0) {
        return oom(err);
    }
    if (meter < M_FIXED || meter > UINT16_MAX) {
        /* Its records would collide with those of the meter's own table. */
        nb_error_set(err, NB_ERR_INVALID, "meter_events may not hold meter \"%s\"%s",
                     m->meters.strs[meter],
                     meter < M_FIXED ? ": it is metered from its own table" : ": too many meters");
        return -1;
    }
    uint32_t idx;
    struct res *r = meter_res_of(m, &f[1], &f[0], (uint16_t)meter, &idx);
    int64_t ts = trunc_to(billing_field_int64(&f[4]), USEC_PER_S);
    if (!r) {
        return oom(err);
    }
    if (r->live && close_row(m, r, K_METER, idx, ts, false, err) < 0) {
        return -1;
    }
    if (!r->live) {
        long tenant = strtab_intern(&m->tenants, f[1].data, (size_t)f[1].len);
        long name = strtab_intern(&m->names, f[0].data, (size_t)f[0].len);
        if (tenant < 0 || name < 0) {
            return oom(err);
        }
        r->tenant = (uint32_t)tenant;
        r->name = (uint32_t)name;
        r->meter = (uint16_t)meter;
    }
    if (!r->live || !same(m->skus.strs[r->sku], &f[3])) {
        long sku = intern_sku(m, f[3].data, (size_t)f[3].len);
        if (sku < 0) {
            return oom(err);
        }
        r->sku = (uint32_t)sku;
    }
    r->on = f[5].data[0] != 0;
    r->since = ts;
    r->live = true;
    r->from_event = f[6].data[0] != 0;
    return 0;
}

/* Ends every live row at h1 and turns what is still open into records. */
static int meter_finish(struct meter_run *m, struct nb_error *err)
{
    for (int k = 0; k < K_COUNT; k++) {
        for (uint32_t i = 0; i < m->ids[k].n; i++) {
            struct res *r = &m->res[k][i];
            if ((r->live && close_row(m, r, (enum kind)k, i, m->h1, true, err) < 0) ||
                flush_open(m, r, (enum kind)k, i, err) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

static int cmp_rank(const void *a, const void *b, void *strs)
{
    char *const *s = strs;
    return strcmp(s[*(const uint32_t *)a], s[*(const uint32_t *)b]);
}

/* Stores in 'rank[i]' the position of 'strs[i]' in byte order (PostgreSQL's "C" collation
 * order); equal strings (the id of an instance and of its network bytes) have equal ranks.
 * Returns 0, or -1 when out of memory. */
static int rank_of(char **strs, uint32_t n, uint32_t *rank)
{
    uint32_t *order = malloc((n ? n : 1) * sizeof *order);
    if (!order) {
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        order[i] = i;
    }
    if (n) {
        qsort_r(order, n, sizeof *order, cmp_rank, strs);
    }
    for (uint32_t i = 0; i < n; i++) {
        rank[order[i]] = i && !strcmp(strs[order[i]], strs[order[i - 1]]) ? rank[order[i - 1]] : i;
    }
    free(order);
    return 0;
}

static int cmp_rec(const void *pa, const void *pb)
{
    const struct rec *a = pa, *b = pb;
    if (a->hour != b->hour) {
        return a->hour < b->hour ? -1 : 1;
    }
    if (a->rt != b->rt) {
        return a->rt < b->rt ? -1 : 1;
    }
    if (a->rr != b->rr) {
        return a->rr < b->rr ? -1 : 1;
    }
    if (a->rm != b->rm) {
        return a->rm < b->rm ? -1 : 1;
    }
    return a->rs < b->rs ? -1 : a->rs > b->rs;
}

/* Sorts the records in the order of usage_records' primary key, so that inserting them walks its
 * index once instead of jumping around it. */
static int sort_records(struct meter_run *m, struct nb_error *err)
{
    /* The resources of every kind, one after the other: 'first[k]' is where kind k starts. */
    uint32_t first[K_COUNT + 1] = {0};
    for (int k = 0; k < K_COUNT; k++) {
        first[k + 1] = first[k] + m->ids[k].n;
    }
    uint32_t *rt = malloc((m->tenants.n + 1) * sizeof *rt);
    uint32_t *rs = malloc((m->skus.n + 1) * sizeof *rs);
    uint32_t *rm = malloc((m->meters.n + 1) * sizeof *rm);
    uint32_t *rr = malloc((first[K_COUNT] + 1) * sizeof *rr);
    char **ids = malloc((first[K_COUNT] + 1) * sizeof *ids);
    int rc = -1;
    if (!rt || !rs || !rm || !rr || !ids) {
        goto done;
    }
    for (int k = 0; k < K_COUNT; k++) {
        for (uint32_t i = 0; i < m->ids[k].n; i++) {
            ids[first[k] + i] = res_name(m, (enum kind)k, i);
        }
    }
    if (rank_of(m->tenants.strs, m->tenants.n, rt) < 0 ||
        rank_of(m->skus.strs, m->skus.n, rs) < 0 || rank_of(m->meters.strs, m->meters.n, rm) < 0 ||
        rank_of(ids, first[K_COUNT], rr) < 0) {
        goto done;
    }
    for (size_t i = 0; i < m->nrecs; i++) {
        struct rec *r = &m->recs[i];
        r->rt = rt[r->tenant];
        r->rs = rs[r->sku];
        r->rm = (uint16_t)rm[r->meter];
        r->rr = rr[first[r->kind] + r->res];
    }
    if (m->nrecs) {
        qsort(m->recs, m->nrecs, sizeof *m->recs, cmp_rec);
    }
    rc = 0;
done:
    free(rt);
    free(rs);
    free(rm);
    free(rr);
    free(ids);
    return rc < 0 ? oom(err) : 0;
}

/* Rebuilds the carried state at time $1 from the whole event history. */
static const char REWIND_SQL[] = "DELETE FROM billing_instance_carry;"
                                 "DELETE FROM billing_image_carry;"
                                 "DELETE FROM billing_meter_carry;";
static const char REWIND_INSTANCES_SQL[] =
    "INSERT INTO billing_instance_carry (instance_id, tenant_id, instance_type, state, since)"
    " SELECT instance_id, tenant_id, instance_type, to_state, date_trunc('second', at)"
    " FROM (SELECT DISTINCT ON (instance_id) * FROM instance_events"
    "       WHERE at < $1::timestamptz ORDER BY instance_id, at DESC, id DESC) l"
    " WHERE to_state <> 'terminated'";
static const char REWIND_IMAGES_SQL[] =
    "INSERT INTO billing_image_carry (image_id, tenant_id, bytes, since)"
    " SELECT image_id, tenant_id, bytes, date_trunc('second', at)"
    " FROM (SELECT DISTINCT ON (image_id) * FROM image_storage_events"
    "       WHERE at < $1::timestamptz ORDER BY image_id, at DESC, id DESC) l"
    " WHERE bytes > 0";
static const char REWIND_METERS_SQL[] =
    "INSERT INTO billing_meter_carry (tenant_id, resource_id, meter, sku, since)"
    " SELECT tenant_id, resource_id, meter, sku, date_trunc('second', at)"
    " FROM (SELECT DISTINCT ON (tenant_id, resource_id, meter) * FROM meter_events"
    "       WHERE at < $1::timestamptz"
    "       ORDER BY tenant_id, resource_id, meter, at DESC, id DESC) l"
    " WHERE active";

/* Opens a billing transaction: UTC, room to sort in memory, the billing lock. */
static int begin_locked(struct nb_pg_conn *conn, struct nb_error *err)
{
    if (nb_pg_begin(conn, err) < 0) {
        return -1;
    }
    if (nb_pg_command(conn,
                      "SET LOCAL TimeZone = 'UTC'; SET LOCAL work_mem = '256MB';"
                      "SELECT pg_advisory_xact_lock(billing_lock_key())",
                      err) < 0) {
        nb_pg_rollback(conn);
        return -1;
    }
    return 0;
}

/* Copies the single value of 'res' (or "" for NULL) into 'out' and clears 'res'. */
static void take_value(PGresult *res, char *out, size_t size)
{
    snprintf(out, size, "%s", PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0));
    PQclear(res);
}

static int rewind_to(struct nb_pg_conn *conn, const char *from, char *h, struct nb_error *err)
{
    if (begin_locked(conn, err) < 0) {
        return -1;
    }
    const char *p[1] = {from};
    PGresult *res = nb_pg_exec(conn, "SELECT date_trunc('hour', $1::timestamptz)", 1, p, err);
    if (!res) {
        goto fail;
    }
    take_value(res, h, BILLING_TIME_LEN);
    p[0] = h;
    PGresult *r1 = NULL, *r2 = NULL, *r3 = NULL, *r4 = NULL;
    if (nb_pg_command(conn, REWIND_SQL, err) < 0 ||
        !(r1 = nb_pg_exec(conn, REWIND_INSTANCES_SQL, 1, p, err)) ||
        !(r2 = nb_pg_exec(conn, REWIND_IMAGES_SQL, 1, p, err)) ||
        !(r3 = nb_pg_exec(conn, REWIND_METERS_SQL, 1, p, err)) ||
        !(r4 = nb_pg_exec(conn,
                          "UPDATE billing_watermark SET aggregated_until = $1::timestamptz,"
                          " updated_at = now()",
                          1, p, err))) {
        PQclear(r1);
        PQclear(r2);
        PQclear(r3);
        goto fail;
    }
    PQclear(r1);
    PQclear(r2);
    PQclear(r3);
    PQclear(r4);
    if (nb_pg_commit(conn, err) < 0) {
        return -1;
    }
    nb_info("aggregation rewound to %s", h);
    return 0;

fail:
    nb_pg_rollback(conn);
    return -1;
}

/* Reads, under the lock, where the next batch starts ('h0') and ends ('h1'); both "" when there
 * is nothing to do. 'after' is where the batch after it would end if nothing else moved the
 * watermark ("" when there is none yet). */
static int next_batch(struct nb_pg_conn *conn, const struct billing_agg_opts *o, char *h0, char *h1,
                      char *after, struct nb_error *err)
{
    char grace[16], hours[16];
    snprintf(grace, sizeof grace, "%d", o->grace_s);
    snprintf(hours, sizeof hours, "%d", o->batch_hours);
    const char *p[3] = {o->until && *o->until ? o->until : NULL, grace, hours};
    PGresult *res = nb_pg_exec(
        conn,
        "WITH w AS ("
        "  SELECT coalesce(aggregated_until,"
        "                  date_trunc('hour', least((SELECT min(at) FROM instance_events),"
        "                                           (SELECT min(at) FROM image_storage_events),"
        "                                           (SELECT min(at) FROM meter_events))))"
        "             AS h0,"
        "         least(date_trunc('hour', coalesce($1::timestamptz, 'infinity')),"
        "               date_trunc('hour', now() - make_interval(secs => $2::int))) AS lim"
        "  FROM billing_watermark FOR UPDATE"
        "), b AS ("
        "  SELECT h0, least(h0 + make_interval(hours => $3::int), lim) AS h1, lim FROM w"
        "  WHERE h0 < lim"
        ") SELECT h0, h1,"
        "         CASE WHEN h1 < lim THEN least(h1 + make_interval(hours => $3::int), lim) END"
        "  FROM b",
        3, p, err);
    if (!res) {
        return -1;
    }
    h0[0] = h1[0] = after[0] = '\0';
    if (PQntuples(res) == 1) {
        snprintf(h0, BILLING_TIME_LEN, "%s", PQgetvalue(res, 0, 0));
        snprintf(h1, BILLING_TIME_LEN, "%s", PQgetvalue(res, 0, 1));
        snprintf(after, BILLING_TIME_LEN, "%s", PQgetvalue(res, 0, 2));
    }
    PQclear(res);
    return 0;
}

/* The events of a batch [h0, h1), read ahead on a second connection in a thread while the
 * batch before it is written: events are only ever inserted, and those of hours past the grace
 * period are all committed, so reading them outside the batch's transaction reads the same rows.
 * The carried state is still read inside the transaction, and a batch whose hours turn out not
 * to be [h0, h1) reads its events itself. Any failure here only turns the read-ahead off. */
struct events {
    struct billing_copy_data inst, img, net, meter; /* binary COPY output */
};

struct prefetch {
    PGconn *pg; /* the second connection, opened on first use; NULL when unavailable */
    PGconn *main;
    pthread_t thread;
    bool running, failed;
    char h0[BILLING_TIME_LEN], h1[BILLING_TIME_LEN];
    struct events ev; /* being filled by the thread */
    int rc;
    struct nb_error err;
};

static const char INSTANCE_EVENTS_SQL[] =
    "COPY (SELECT instance_id, tenant_id, instance_type, to_state, at, true"
    " FROM instance_events WHERE at >= %s AND at < %s ORDER BY at, id)"
    " TO STDOUT (FORMAT binary)";
static const char NET_EVENTS_SQL[] =
    "COPY (SELECT instance_id, tenant_id, rx_bytes, tx_bytes, at"
    " FROM instance_net_events WHERE at >= %s AND at < %s ORDER BY at, id)"
    " TO STDOUT (FORMAT binary)";
static const char IMAGE_EVENTS_SQL[] =
    "COPY (SELECT image_id, tenant_id, bytes, at, true"
    " FROM image_storage_events WHERE at >= %s AND at < %s ORDER BY at, id)"
    " TO STDOUT (FORMAT binary)";
static const char METER_EVENTS_SQL[] =
    "COPY (SELECT resource_id, tenant_id, meter, sku, at, active, true"
    " FROM meter_events WHERE at >= %s AND at < %s ORDER BY at, id)"
    " TO STDOUT (FORMAT binary)";

/* Formats 'fmt' (one of the *_EVENTS_SQL above) for [h0, h1) into 'sql'. Returns 0, or
 * -1 with 'err'. */
static int events_sql(PGconn *pg, const char *fmt, const char *h0, const char *h1, char *sql,
                      size_t size, struct nb_error *err)
{
    char *l0 = PQescapeLiteral(pg, h0, strlen(h0)), *l1 = PQescapeLiteral(pg, h1, strlen(h1));
    int rc = 0;
    if (!l0 || !l1) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not quote a time: %s", PQerrorMessage(pg));
        rc = -1;
    } else {
        snprintf(sql, size, fmt, l0, l1);
    }
    PQfreemem(l0);
    PQfreemem(l1);
    return rc;
}

static void *prefetch_main(void *arg)
{
    struct prefetch *pf = arg;
    char sql[1024];
    pf->rc = -1;
    if (!pf->pg) {
        PQconninfoOption *opts = PQconninfo(pf->main);
        const char *keys[64], *vals[64];
        int n = 0;
        for (PQconninfoOption *o = opts; o && o->keyword && n < 63; o++) {
            if (o->val && *o->val) {
                keys[n] = o->keyword;
                vals[n++] = o->val;
            }
        }
        keys[n] = vals[n] = NULL;
        pf->pg = PQconnectdbParams(keys, vals, 0);
        PQconninfoFree(opts);
        if (PQstatus(pf->pg) != CONNECTION_OK) {
            nb_error_set(&pf->err, NB_ERR_UNAVAILABLE, "could not open a second connection: %s",
                         PQerrorMessage(pf->pg));
            return NULL;
        }
    }
    if (events_sql(pf->pg, INSTANCE_EVENTS_SQL, pf->h0, pf->h1, sql, sizeof sql, &pf->err) < 0 ||
        billing_copy_fetch(pf->pg, sql, &pf->ev.inst, &pf->err) < 0 ||
        events_sql(pf->pg, IMAGE_EVENTS_SQL, pf->h0, pf->h1, sql, sizeof sql, &pf->err) < 0 ||
        billing_copy_fetch(pf->pg, sql, &pf->ev.img, &pf->err) < 0 ||
        events_sql(pf->pg, NET_EVENTS_SQL, pf->h0, pf->h1, sql, sizeof sql, &pf->err) < 0 ||
        billing_copy_fetch(pf->pg, sql, &pf->ev.net, &pf->err) < 0 ||
        events_sql(pf->pg, METER_EVENTS_SQL, pf->h0, pf->h1, sql, sizeof sql, &pf->err) < 0 ||
        billing_copy_fetch(pf->pg, sql, &pf->ev.meter, &pf->err) < 0) {
        return NULL;
    }
    pf->rc = 0;
    return NULL;
}

/* Starts reading the events of [h0, h1) ahead. */
static void prefetch_start(struct prefetch *pf, const char *h0, const char *h1)
{
    if (pf->failed || pf->running) {
        return;
    }
    snprintf(pf->h0, sizeof pf->h0, "%s", h0);
    snprintf(pf->h1, sizeof pf->h1, "%s", h1);
    pf->ev.inst.len = pf->ev.img.len = pf->ev.net.len = pf->ev.meter.len = 0;
    nb_error_clear(&pf->err);
    pf->running = pthread_create(&pf->thread, NULL, prefetch_main, pf) == 0;
    pf->failed = !pf->running;
}

/* Waits for the read-ahead, if any. When it read the events of [h0, h1), swaps them into 'out'
 * and returns true. */
static bool prefetch_take(struct prefetch *pf, const char *h0, const char *h1, struct events *out)
{
    if (!pf->running) {
        return false;
    }
    pthread_join(pf->thread, NULL);
    pf->running = false;
    if (pf->rc < 0) {
        nb_warn("reading events ahead failed, reading them in the batch: %s", pf->err.msg);
        pf->failed = true;
        return false;
    }
    if (strcmp(pf->h0, h0) || strcmp(pf->h1, h1)) {
        return false;
    }
    struct events t = *out;
    *out = pf->ev;
    pf->ev = t;
    return true;
}

static void prefetch_end(struct prefetch *pf)
{
    if (pf->running) {
        pthread_join(pf->thread, NULL);
    }
    PQfinish(pf->pg);
    free(pf->ev.inst.buf);
    free(pf->ev.img.buf);
    free(pf->ev.net.buf);
    free(pf->ev.meter.buf);
}

/* Reads what the batch needs: instance types, plans, the carried state and the batch's events
 * (from 'ahead' when it holds them), each resource's rows in time order (the carried row, then
 * its events by (at, id)). */
static int meter_read(PGconn *pg, struct meter_run *m, const char *h0, const char *h1,
                      const struct events *ahead, struct nb_error *err)
{
    char isql[1024], gsql[1024], nsql[1024], msql[1024];
    if (billing_copy_read(pg,
                          "COPY (SELECT name, disk_gib::bigint FROM instance_types)"
                          " TO STDOUT (FORMAT binary)",
                          on_type, m, err) < 0 ||
        billing_copy_read(pg,
                          "COPY (SELECT effective_from, min_run_seconds::bigint FROM price_plans"
                          " ORDER BY effective_from) TO STDOUT (FORMAT binary)",
                          on_plan, m, err) < 0 ||
        billing_copy_read(pg,
                          "COPY (SELECT instance_id, tenant_id, instance_type, state, since, false"
                          " FROM billing_instance_carry) TO STDOUT (FORMAT binary)",
                          on_instance, m, err) < 0 ||
        billing_copy_read(pg,
                          "COPY (SELECT image_id, tenant_id, bytes, since, false"
                          " FROM billing_image_carry) TO STDOUT (FORMAT binary)",
                          on_image, m, err) < 0 ||
        billing_copy_read(pg,
                          "COPY (SELECT resource_id, tenant_id, meter, sku, since, true, false"
                          " FROM billing_meter_carry) TO STDOUT (FORMAT binary)",
                          on_meter, m, err) < 0) {
        return -1;
    }
    if (ahead) {
        return billing_copy_parse(&ahead->inst, on_instance, m, err) < 0 ||
                       billing_copy_parse(&ahead->img, on_image, m, err) < 0 ||
                       billing_copy_parse(&ahead->net, on_net, m, err) < 0 ||
                       billing_copy_parse(&ahead->meter, on_meter, m, err) < 0
                   ? -1
                   : 0;
    }
    return events_sql(pg, INSTANCE_EVENTS_SQL, h0, h1, isql, sizeof isql, err) < 0 ||
                   events_sql(pg, IMAGE_EVENTS_SQL, h0, h1, gsql, sizeof gsql, err) < 0 ||
                   events_sql(pg, NET_EVENTS_SQL, h0, h1, nsql, sizeof nsql, err) < 0 ||
                   events_sql(pg, METER_EVENTS_SQL, h0, h1, msql, sizeof msql, err) < 0 ||
                   billing_copy_read(pg, isql, on_instance, m, err) < 0 ||
                   billing_copy_read(pg, gsql, on_image, m, err) < 0 ||
                   billing_copy_read(pg, nsql, on_net, m, err) < 0 ||
                   billing_copy_read(pg, msql, on_meter, m, err) < 0
               ? -1
               : 0;
}

/* Copies the batch's records into 'table'. */
static int write_records(PGconn *pg, const struct meter_run *m, const char *table,
                         struct nb_error *err)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "COPY %s (tenant_id, resource_id, meter, sku, hour, quantity) FROM STDIN"
             " (FORMAT binary)",
             table);
    struct billing_copy_writer w;
    if (billing_copy_begin(&w, pg, sql, err) < 0) {
        return -1;
    }
    for (size_t i = 0; i < m->nrecs; i++) {
        const struct rec *r = &m->recs[i];
        billing_copy_row(&w, 6);
        billing_copy_text(&w, m->tenants.strs[r->tenant]);
        billing_copy_text(&w, res_name(m, (enum kind)r->kind, r->res));
        billing_copy_text(&w, m->meters.strs[r->meter]);
        billing_copy_text(&w, m->skus.strs[r->sku]);
        billing_copy_int64(&w, r->hour);
        billing_copy_int64(&w, r->q);
    }
    return billing_copy_end(&w, NULL, err);
}

/* Replaces the carried meters that had events in the batch with their last row: kept while the
 * meter runs, removed once it stopped. Most batches have no meter events: nothing to do then. */
static int write_meter_carry(struct nb_pg_conn *conn, const struct meter_run *m,
                             struct nb_error *err)
{
    bool any = false;
    for (uint32_t i = 0; i < m->ids[K_METER].n && !any; i++) {
        any = m->res[K_METER][i].from_event;
    }
    if (!any) {
        return 0;
    }
    struct billing_copy_writer w;
    if (nb_pg_command(conn,
                      "CREATE TEMP TABLE billing_mcarry_new"
                      " (LIKE billing_meter_carry, active boolean NOT NULL) ON COMMIT DROP",
                      err) < 0 ||
        billing_copy_begin(&w, nb_pg_raw(conn),
                           "COPY billing_mcarry_new (tenant_id, resource_id, meter, sku, since,"
                           " active) FROM STDIN (FORMAT binary)",
                           err) < 0) {
        return -1;
    }
    for (uint32_t i = 0; i < m->ids[K_METER].n; i++) {
        const struct res *r = &m->res[K_METER][i];
        if (r->from_event) {
            billing_copy_row(&w, 6);
            billing_copy_text(&w, m->tenants.strs[r->tenant]);
            billing_copy_text(&w, m->names.strs[r->name]);
            billing_copy_text(&w, m->meters.strs[r->meter]);
            billing_copy_text(&w, m->skus.strs[r->sku]);
            billing_copy_int64(&w, r->since);
            billing_copy_bool(&w, r->on);
        }
    }
    if (billing_copy_end(&w, NULL, err) < 0) {
        return -1;
    }
    return nb_pg_command(
        conn,
        "DELETE FROM billing_meter_carry c USING billing_mcarry_new n"
        " WHERE (c.tenant_id, c.resource_id, c.meter) = (n.tenant_id, n.resource_id, n.meter)"
        "   AND NOT n.active;"
        "INSERT INTO billing_meter_carry (tenant_id, resource_id, meter, sku, since)"
        " SELECT tenant_id, resource_id, meter, sku, since FROM billing_mcarry_new WHERE active"
        " ON CONFLICT (tenant_id, resource_id, meter) DO UPDATE SET sku = EXCLUDED.sku,"
        "     since = EXCLUDED.since;"
        "DROP TABLE billing_mcarry_new",
        err);
}

/* Replaces the carried rows of the resources that had events in the batch with their last row:
 * removed when the instance terminated or the image was deleted (0 bytes). */
static int write_carry(struct nb_pg_conn *conn, const struct meter_run *m, struct nb_error *err)
{
    PGconn *pg = nb_pg_raw(conn);
    struct billing_copy_writer w;
    if (nb_pg_command(conn,
                      "CREATE TEMP TABLE billing_icarry_new (LIKE billing_instance_carry)"
                      " ON COMMIT DROP;"
                      "CREATE TEMP TABLE billing_gcarry_new (LIKE billing_image_carry)"
                      " ON COMMIT DROP",
                      err) < 0 ||
        billing_copy_begin(&w, pg,
                           "COPY billing_icarry_new (instance_id, tenant_id, instance_type,"
                           " state, since) FROM STDIN (FORMAT binary)",
                           err) < 0) {
        return -1;
    }
    for (uint32_t i = 0; i < m->ids[K_INSTANCE].n; i++) {
        const struct res *r = &m->res[K_INSTANCE][i];
        if (r->from_event) {
            billing_copy_row(&w, 5);
            billing_copy_text(&w, m->ids[K_INSTANCE].strs[i]);
            billing_copy_text(&w, m->tenants.strs[r->tenant]);
            billing_copy_text(&w, m->skus.strs[r->sku]);
            billing_copy_text(&w, m->states.strs[r->state]);
            billing_copy_int64(&w, r->since);
        }
    }
    if (billing_copy_end(&w, NULL, err) < 0 ||
        billing_copy_begin(&w, pg,
                           "COPY billing_gcarry_new (image_id, tenant_id, bytes, since)"
                           " FROM STDIN (FORMAT binary)",
                           err) < 0) {
        return -1;
    }
    for (uint32_t i = 0; i < m->ids[K_IMAGE].n; i++) {
        const struct res *r = &m->res[K_IMAGE][i];
        if (r->from_event) {
            billing_copy_row(&w, 4);
            billing_copy_text(&w, m->ids[K_IMAGE].strs[i]);
            billing_copy_text(&w, m->tenants.strs[r->tenant]);
            billing_copy_int64(&w, r->bytes);
            billing_copy_int64(&w, r->since);
        }
    }
    if (billing_copy_end(&w, NULL, err) < 0) {
        return -1;
    }
    if (nb_pg_command(
            conn,
            "DELETE FROM billing_instance_carry c USING billing_icarry_new n"
            " WHERE c.instance_id = n.instance_id AND n.state = 'terminated';"
            "INSERT INTO billing_instance_carry (instance_id, tenant_id, instance_type, state, "
            "since)"
            " SELECT instance_id, tenant_id, instance_type, state, since FROM billing_icarry_new"
            " WHERE state <> 'terminated'"
            " ON CONFLICT (instance_id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id,"
            "     instance_type = EXCLUDED.instance_type, state = EXCLUDED.state,"
            "     since = EXCLUDED.since;"
            "DELETE FROM billing_image_carry c USING billing_gcarry_new n"
            " WHERE c.image_id = n.image_id AND n.bytes = 0;"
            "INSERT INTO billing_image_carry (image_id, tenant_id, bytes, since)"
            " SELECT image_id, tenant_id, bytes, since FROM billing_gcarry_new WHERE bytes <> 0"
            " ON CONFLICT (image_id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id,"
            "     bytes = EXCLUDED.bytes, since = EXCLUDED.since;"
            "DROP TABLE billing_icarry_new, billing_gcarry_new",
            err) < 0) {
        return -1;
    }
    return write_meter_carry(conn, m, err);
}

/* A batch over hours that hold no records yet (the normal case: the watermark moves forward)
 * copies its records in, and a record already there is an error (a duplicate key), not a silent
 * skip; a batch over hours aggregated before (after a rewind) compares and corrects, counting the
 * records whose quantity differed. */
static int store_records(struct nb_pg_conn *conn, const struct meter_run *m, bool again,
                         long long *inserted, long long *corrected, struct nb_error *err)
{
    PGconn *pg = nb_pg_raw(conn);
    *inserted = *corrected = 0;
    if (!again) {
        *inserted = (long long)m->nrecs;
        return write_records(pg, m, "usage_records", err);
    }
    if (nb_pg_command(conn,
                      "CREATE TEMP TABLE billing_records_new (LIKE usage_records) ON COMMIT DROP",
                      err) < 0 ||
        write_records(pg, m, "billing_records_new", err) < 0) {
        return -1;
    }
    PGresult *res = nb_pg_exec(
        conn,
        "WITH ins AS ("
        "  INSERT INTO usage_records (tenant_id, resource_id, meter, sku, hour, quantity)"
        "  SELECT tenant_id, resource_id, meter, sku, hour, quantity FROM billing_records_new"
        "  ON CONFLICT (tenant_id, resource_id, meter, sku, hour)"
        "  DO UPDATE SET quantity = EXCLUDED.quantity"
        "  WHERE usage_records.quantity <> EXCLUDED.quantity"
        "  RETURNING (xmax <> 0) AS corrected"
        ") SELECT count(*) FILTER (WHERE NOT corrected), count(*) FILTER (WHERE corrected)"
        "  FROM ins",
        0, NULL, err);
    if (!res) {
        return -1;
    }
    *inserted = atoll(PQgetvalue(res, 0, 0));
    *corrected = atoll(PQgetvalue(res, 0, 1));
    PQclear(res);
    return nb_pg_command(conn, "DROP TABLE billing_records_new", err);
}

/* Runs one batch in the open transaction and advances the watermark from 'h0' to 'h1'. */
static int run_batch(struct nb_pg_conn *conn, const char *h0, const char *h1,
                     const struct events *ahead, struct billing_agg_result *r, struct nb_error *err)
{
    const char *p[2] = {h0, h1};
    PGresult *res = nb_pg_exec(conn,
                               "SELECT EXISTS (SELECT 1 FROM usage_records"
                               " WHERE hour >= $1::timestamptz AND hour < $2::timestamptz),"
                               " extract(epoch FROM $1::timestamptz)::bigint,"
                               " extract(epoch FROM $2::timestamptz)::bigint",
                               2, p, err);
    if (!res) {
        return -1;
    }
    bool again = PQgetvalue(res, 0, 0)[0] == 't';
    int64_t t0 = (atoll(PQgetvalue(res, 0, 1)) - PG_EPOCH_S) * USEC_PER_S;
    int64_t t1 = (atoll(PQgetvalue(res, 0, 2)) - PG_EPOCH_S) * USEC_PER_S;
    PQclear(res);

    struct meter_run m;
    long long inserted = 0, corrected = 0;
    int rc = -1;
    if (meter_init(&m, t0, t1) < 0) {
        oom(err);
        goto done;
    }
    if (meter_read(nb_pg_raw(conn), &m, h0, h1, ahead, err) < 0 || meter_finish(&m, err) < 0 ||
        sort_records(&m, err) < 0 ||
        store_records(conn, &m, again, &inserted, &corrected, err) < 0 ||
        write_carry(conn, &m, err) < 0) {
        goto done;
    }
    res = nb_pg_exec(conn,
                     "UPDATE billing_watermark SET aggregated_until = $2::timestamptz,"
                     " updated_at = now()"
                     " WHERE aggregated_until IS NULL OR aggregated_until = $1::timestamptz",
                     2, p, err);
    if (!res) {
        goto done;
    }
    bool moved = atoi(PQcmdTuples(res)) == 1;
    PQclear(res);
    if (!moved) {
        nb_error_set(err, NB_ERR_CONFLICT, "the billing watermark moved away from %s", h0);
        goto done;
    }
    r->inserted += inserted;
    r->corrected += corrected;
    if (corrected) {
        nb_warn("aggregation of [%s, %s) corrected %lld usage record(s)", h0, h1, corrected);
    }
    rc = 0;
done:
    meter_free(&m);
    return rc;
}

int billing_aggregate(struct nb_pg_conn *conn, const struct billing_agg_opts *o,
                      struct billing_agg_result *res, struct nb_error *err)
{
    memset(res, 0, sizeof *res);
    if (o->batch_hours < 1) {
        nb_error_set(err, NB_ERR_INVALID, "batch hours must be at least 1, not %d", o->batch_hours);
        return -1;
    }
    if (o->from && rewind_to(conn, o->from, res->until, err) < 0) {
        return -1;
    }
    struct prefetch pf = {.main = nb_pg_raw(conn)};
    struct events ev = {0};
    int rc = 0;
    for (;;) {
        if (o->max_batches && res->batches >= o->max_batches) {
            break;
        }
        char h0[BILLING_TIME_LEN], h1[BILLING_TIME_LEN], after[BILLING_TIME_LEN];
        if (begin_locked(conn, err) < 0) {
            rc = -1;
            break;
        }
        if (next_batch(conn, o, h0, h1, after, err) < 0) {
            nb_pg_rollback(conn);
            rc = -1;
            break;
        }
        bool ahead = prefetch_take(&pf, h0, h1, &ev);
        if (!h0[0]) {
            nb_pg_rollback(conn);
            break;
        }
        if (after[0]) {
            /* The next batch's events are read while this one is written. */
            prefetch_start(&pf, h1, after);
        }
        if (run_batch(conn, h0, h1, ahead ? &ev : NULL, res, err) < 0) {
            nb_pg_rollback(conn);
            rc = -1;
            break;
        }
        if (nb_pg_commit(conn, err) < 0) {
            rc = -1;
            break;
        }
        res->batches++;
        snprintf(res->until, sizeof res->until, "%s", h1);
        nb_debug("aggregated [%s, %s)", h0, h1);
    }
    prefetch_end(&pf);
    free(ev.inst.buf);
    free(ev.img.buf);
    free(ev.net.buf);
    free(ev.meter.buf);
    return rc;
}
