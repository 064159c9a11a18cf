/* In-memory placement: see placement.h.
 *
 * The hot path is place_one(): one pass over the hosts of the instance's zone (hosts are indexed
 * by zone, so the other zones cost nothing), every filter a compare or two on interned values
 * (zones and traits are small integers and bit masks), and a top-k insertion. Membership tests
 * (hosts of the placement group, hosts that already failed) use per-host stamp arrays instead of
 * searching lists. At 10,000 hosts that is well under a millisecond per instance. */
#include "placement.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TRAITS     64 /* distinct traits the snapshot can tell apart (bits of a mask) */
#define MAX_TOP_K      16
#define MAX_PARTITIONS 7 /* placement_groups.partition_count <= 7, as in EC2 */

struct host {
    char id[PLACE_ID_MAX];
    char name[64];
    char dedicated[24]; /* tenant id, "" when shared */
    int zone;           /* index in snapshot.zones */
    uint64_t traits;    /* bits of snapshot.traits */
    enum place_host_state state;
    bool live, simulated;
    double lim_vcpus, lim_memory, lim_disk; /* (total - reserved) * ratio */
    int64_t db_vcpus, db_memory, db_disk, db_count, generation;
    int64_t pend_vcpus, pend_memory, pend_disk, pend_count;
    double cpu_load;
};

struct zone {
    char *name;
    int *hosts; /* indexes into snapshot.hosts */
    int n_hosts, cap_hosts;
};

/* The data of a snapshot; the helpers below work on it with the lock held (or on one not yet
 * published). */
struct snap {
    struct host *hosts;
    int n_hosts, cap_hosts;
    int *table; /* open-addressing hash of host ids: index + 1, 0 for empty */
    size_t table_size;
    struct zone *zones;
    int n_zones;
    char *traits[MAX_TRAITS];
    int n_traits;
    /* Scratch stamps, one per host, used under the lock: a host is "marked" when its stamp
     * equals the current epoch, which saves clearing the arrays. */
    uint32_t *group_stamp, *tried_stamp;
    int *group_part;
    uint32_t group_epoch, tried_epoch;
};

struct place_snapshot {
    pthread_mutex_t mu;
    struct snap d;
};

/* Why hosts were rejected for one instance: the first filter that rejects a host counts it. */
struct why {
    int total;
    int not_zone;
    int down, disabled, draining;
    int tenancy_other, tenancy_not_dedicated;
    int traits;
    int group;
    int tried;
    int full, lack_vcpus, lack_memory, lack_disk;
};

/* --- small helpers --------------------------------------------------------------------------- */

static uint64_t next_random(uint64_t *state)
{
    /* xorshift64*: fast, good enough to break ties among the top k. */
    uint64_t x = *state ? *state : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static size_t hash_id(const char *id)
{
    size_t h = 1469598103934665603ull;
    for (; *id; id++) {
        h = (h ^ (unsigned char)*id) * 1099511628211ull;
    }
    return h;
}

/* Appends printf-style text at the end of 'buf' (of 'size' bytes), truncating quietly. */
static void appendf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void appendf(char *buf, size_t size, const char *fmt, ...)
{
    size_t len = strlen(buf);
    if (len + 1 >= size) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
}

/* "8 GiB" for whole GiB, "512 MiB" otherwise. */
static void format_mib(char *out, size_t size, int64_t mib)
{
    if (mib % 1024 == 0) {
        snprintf(out, size, "%lld GiB", (long long)(mib / 1024));
    } else {
        snprintf(out, size, "%lld MiB", (long long)mib);
    }
}

static int find_host(const struct snap *s, const char *id)
{
    if (!s->table_size || !id) {
        return -1;
    }
    size_t mask = s->table_size - 1;
    for (size_t i = hash_id(id) & mask;; i = (i + 1) & mask) {
        int v = s->table[i];
        if (v == 0) {
            return -1;
        }
        if (!strcmp(s->hosts[v - 1].id, id)) {
            return v - 1;
        }
    }
}

static int find_zone(const struct snap *s, const char *name)
{
    for (int i = 0; i < s->n_zones; i++) {
        if (!strcmp(s->zones[i].name, name)) {
            return i;
        }
    }
    return -1;
}

static int find_trait(const struct snap *s, const char *name)
{
    for (int i = 0; i < s->n_traits; i++) {
        if (!strcmp(s->traits[i], name)) {
            return i;
        }
    }
    return -1;
}

/* Interns zone 'name'. Returns its index, or -1 when out of memory. */
static int intern_zone(struct snap *s, const char *name)
{
    int z = find_zone(s, name);
    if (z >= 0) {
        return z;
    }
    struct zone *zones = realloc(s->zones, (size_t)(s->n_zones + 1) * sizeof *zones);
    if (!zones) {
        return -1;
    }
    s->zones = zones;
    char *copy = strdup(name);
    if (!copy) {
        return -1;
    }
    zones[s->n_zones] = (struct zone){.name = copy};
    return s->n_zones++;
}

/* The trait mask of 'names'. Traits beyond the first MAX_TRAITS distinct ones are not told apart
 * (a host offering them does not satisfy an instance requiring them: safe, never wrong). */
static uint64_t intern_traits(struct snap *s, const char *const *names, int n)
{
    uint64_t mask = 0;
    for (int i = 0; i < n; i++) {
        int t = find_trait(s, names[i]);
        if (t < 0 && s->n_traits < MAX_TRAITS && (s->traits[s->n_traits] = strdup(names[i]))) {
            t = s->n_traits++;
        }
        if (t >= 0) {
            mask |= 1ull << t;
        }
    }
    return mask;
}

/* Rebuilds the id hash, the per-zone host lists and the scratch arrays from s->hosts. */
static int reindex(struct snap *s)
{
    size_t size = 16;
    while (size < (size_t)s->n_hosts * 2) {
        size <<= 1;
    }
    int *table = calloc(size, sizeof *table);
    uint32_t *gs = calloc((size_t)s->n_hosts + 1, sizeof *gs);
    uint32_t *ts = calloc((size_t)s->n_hosts + 1, sizeof *ts);
    int *gp = calloc((size_t)s->n_hosts + 1, sizeof *gp);
    if (!table || !gs || !ts || !gp) {
        free(table);
        free(gs);
        free(ts);
        free(gp);
        return -1;
    }
    for (int i = 0; i < s->n_hosts; i++) {
        size_t j = hash_id(s->hosts[i].id) & (size - 1);
        while (table[j]) {
            j = (j + 1) & (size - 1);
        }
        table[j] = i + 1;
    }
    for (int z = 0; z < s->n_zones; z++) {
        s->zones[z].n_hosts = 0;
    }
    for (int i = 0; i < s->n_hosts; i++) {
        struct zone *z = &s->zones[s->hosts[i].zone];
        if (z->n_hosts == z->cap_hosts) {
            int cap = z->cap_hosts ? 2 * z->cap_hosts : 64;
            int *h = realloc(z->hosts, (size_t)cap * sizeof *h);
            if (!h) {
                free(table);
                free(gs);
                free(ts);
                free(gp);
                return -1;
            }
            z->hosts = h;
            z->cap_hosts = cap;
        }
        z->hosts[z->n_hosts++] = i;
    }
    free(s->table);
    free(s->group_stamp);
    free(s->tried_stamp);
    free(s->group_part);
    s->table = table;
    s->table_size = size;
    s->group_stamp = gs;
    s->tried_stamp = ts;
    s->group_part = gp;
    s->group_epoch = s->tried_epoch = 0;
    return 0;
}

/* Copies 'r' into 'h'. The used values and generation are taken from 'r' only when 'fresh' (a
 * host not known before) or when the row is newer than what 'h' holds. */
static int host_fill(struct snap *s, struct host *h, const struct place_host_in *r, bool fresh)
{
    int zone = intern_zone(s, r->zone);
    if (zone < 0) {
        return -1;
    }
    snprintf(h->id, sizeof h->id, "%s", r->id);
    snprintf(h->name, sizeof h->name, "%s", r->name ? r->name : r->id);
    snprintf(h->dedicated, sizeof h->dedicated, "%s",
             r->dedicated_tenant ? r->dedicated_tenant : "");
    h->zone = zone;
    h->traits = intern_traits(s, r->traits, r->n_traits);
    h->state = r->state;
    h->live = r->live;
    h->simulated = r->simulated;
    h->lim_vcpus = (double)(r->vcpus - r->reserved_vcpus) * r->cpu_ratio;
    h->lim_memory = (double)(r->memory_mib - r->reserved_memory_mib) * r->memory_ratio;
    h->lim_disk = (double)(r->disk_gib - r->reserved_disk_gib) * r->disk_ratio;
    h->cpu_load = r->cpu_load;
    if (fresh || r->generation > h->generation) {
        h->db_vcpus = r->used_vcpus;
        h->db_memory = r->used_memory_mib;
        h->db_disk = r->used_disk_gib;
        h->db_count = r->instance_count;
        h->generation = r->generation;
    }
    return 0;
}

/* --- snapshot -------------------------------------------------------------------------------- */

void place_config_default(struct place_config *cfg)
{
    *cfg = (struct place_config){
        .weigher = PLACE_SPREAD, .w_cpu = 1.0, .w_memory = 1.0, .w_disk = 0.5, .top_k = 3};
}

struct place_snapshot *place_snapshot_new(void)
{
    struct place_snapshot *s = calloc(1, sizeof *s);
    if (s) {
        pthread_mutex_init(&s->mu, NULL);
    }
    return s;
}

static void free_tables(struct snap *s)
{
    for (int z = 0; z < s->n_zones; z++) {
        free(s->zones[z].name);
        free(s->zones[z].hosts);
    }
    free(s->zones);
    for (int t = 0; t < s->n_traits; t++) {
        free(s->traits[t]);
    }
    free(s->hosts);
    free(s->table);
    free(s->group_stamp);
    free(s->tried_stamp);
    free(s->group_part);
}

void place_snapshot_free(struct place_snapshot *s)
{
    if (!s) {
        return;
    }
    free_tables(&s->d);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int place_snapshot_load(struct place_snapshot *s, const struct place_host_in *rows, size_t n)
{
    /* Build a complete new snapshot aside (the slow part, without the lock), then swap it in. */
    struct snap next = {0};
    next.hosts = calloc(n ? n : 1, sizeof *next.hosts);
    if (!next.hosts) {
        return -1;
    }
    next.cap_hosts = (int)(n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        if (host_fill(&next, &next.hosts[i], &rows[i], true) < 0) {
            free_tables(&next);
            return -1;
        }
        next.n_hosts++;
    }
    if (reindex(&next) < 0) {
        free_tables(&next);
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < next.n_hosts; i++) {
        struct host *h = &next.hosts[i];
        int old = find_host(&s->d, h->id);
        if (old < 0) {
            continue;
        }
        const struct host *o = &s->d.hosts[old];
        h->pend_vcpus = o->pend_vcpus;
        h->pend_memory = o->pend_memory;
        h->pend_disk = o->pend_disk;
        h->pend_count = o->pend_count;
        if (o->generation > h->generation) {
            h->db_vcpus = o->db_vcpus;
            h->db_memory = o->db_memory;
            h->db_disk = o->db_disk;
            h->db_count = o->db_count;
            h->generation = o->generation;
        }
    }
    struct snap old = s->d;
    s->d = next;
    pthread_mutex_unlock(&s->mu);
    free_tables(&old);
    return 0;
}

int place_snapshot_update(struct place_snapshot *s, const struct place_host_in *row)
{
    pthread_mutex_lock(&s->mu);
    struct snap *d = &s->d;
    int rc = 0;
    int i = find_host(d, row->id);
    if (i >= 0) {
        int zone = d->hosts[i].zone;
        rc = host_fill(d, &d->hosts[i], row, false);
        if (rc == 0 && d->hosts[i].zone != zone) {
            rc = reindex(d);
        }
    } else {
        if (d->n_hosts == d->cap_hosts) {
            int cap = d->cap_hosts ? 2 * d->cap_hosts : 64;
            struct host *h = realloc(d->hosts, (size_t)cap * sizeof *h);
            if (!h) {
                pthread_mutex_unlock(&s->mu);
                return -1;
            }
            d->hosts = h;
            d->cap_hosts = cap;
        }
        memset(&d->hosts[d->n_hosts], 0, sizeof d->hosts[0]);
        rc = host_fill(d, &d->hosts[d->n_hosts], row, true);
        if (rc == 0) {
            d->n_hosts++;
            rc = reindex(d);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

size_t place_snapshot_size(struct place_snapshot *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = (size_t)s->d.n_hosts;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void place_snapshot_set_used(struct place_snapshot *s, const char *host_id, int64_t generation,
                             int64_t used_vcpus, int64_t used_memory_mib, int64_t used_disk_gib,
                             int64_t instance_count)
{
    pthread_mutex_lock(&s->mu);
    int i = find_host(&s->d, host_id);
    if (i >= 0 && generation > s->d.hosts[i].generation) {
        struct host *h = &s->d.hosts[i];
        h->db_vcpus = used_vcpus;
        h->db_memory = used_memory_mib;
        h->db_disk = used_disk_gib;
        h->db_count = instance_count;
        h->generation = generation;
    }
    pthread_mutex_unlock(&s->mu);
}

int place_snapshot_used(struct place_snapshot *s, const char *host_id, int64_t *vcpus,
                        int64_t *memory_mib, int64_t *disk_gib)
{
    pthread_mutex_lock(&s->mu);
    int i = find_host(&s->d, host_id);
    if (i >= 0) {
        const struct host *h = &s->d.hosts[i];
        *vcpus = h->db_vcpus + h->pend_vcpus;
        *memory_mib = h->db_memory + h->pend_memory;
        *disk_gib = h->db_disk + h->pend_disk;
    }
    pthread_mutex_unlock(&s->mu);
    return i >= 0 ? 0 : -1;
}

/* --- filters and weighers -------------------------------------------------------------------- */

/* The placement group as seen by one batch: its members marked in the stamp arrays. */
struct group_view {
    const struct place_group *g;
    int n_hosts;                           /* distinct member hosts in the snapshot */
    int per_partition[MAX_PARTITIONS + 1]; /* live instances per partition */
};

static void group_mark(struct snap *s, struct group_view *gv, int host, int partition)
{
    if (s->group_stamp[host] != s->group_epoch) {
        s->group_stamp[host] = s->group_epoch;
        s->group_part[host] = partition;
        gv->n_hosts++;
    }
    if (partition >= 1 && partition <= MAX_PARTITIONS) {
        gv->per_partition[partition]++;
    }
}

static void group_begin(struct snap *s, struct group_view *gv, const struct place_group *g)
{
    memset(gv, 0, sizeof *gv);
    gv->g = g;
    if (!g) {
        return;
    }
    if (++s->group_epoch == 0) { /* wrapped: clear the stamps once */
        memset(s->group_stamp, 0, (size_t)s->n_hosts * sizeof *s->group_stamp);
        s->group_epoch = 1;
    }
    for (int i = 0; i < g->n_members; i++) {
        int h = find_host(s, g->member_hosts[i]);
        if (h >= 0) {
            group_mark(s, gv, h, g->member_partitions ? g->member_partitions[i] : 0);
        }
    }
}

/* True when the group allows host 'h' for an instance of partition 'partition'. */
static bool group_allows(const struct snap *s, const struct group_view *gv, int h, int partition)
{
    bool member = s->group_stamp[h] == s->group_epoch;
    switch (gv->g->strategy) {
    case PLACE_GROUP_CLUSTER:
        return gv->n_hosts == 0 || member;
    case PLACE_GROUP_SPREAD:
        return !member;
    case PLACE_GROUP_PARTITION:
        return !member || s->group_part[h] == partition;
    }
    return true;
}

static double free_fraction(double limit, int64_t used)
{
    return limit > 0 ? ((limit - (double)used) / limit) : 0;
}

static void explain(const struct snap *s, const struct place_inst *in, const struct group_view *gv,
                    int partition, const struct why *w, char *out, size_t size)
{
    char mem[32];
    format_mib(mem, sizeof mem, in->memory_mib);
    snprintf(out, size,
             "no valid host for %s (%lld vCPUs, %s memory, %lld GiB disk) among %d hosts",
             in->instance_type ? in->instance_type : "instance", (long long)in->vcpus, mem,
             (long long)in->disk_gib, w->total);
    const char *sep = ": ";
#define CLAUSE(...)                                                                                \
    do {                                                                                           \
        appendf(out, size, "%s", sep);                                                             \
        appendf(out, size, __VA_ARGS__);                                                           \
        sep = "; ";                                                                                \
    } while (0)
    if (w->down || w->disabled || w->draining) {
        CLAUSE("host-state: %d hosts down, %d disabled, %d draining", w->down, w->disabled,
               w->draining);
    }
    if (w->not_zone) {
        CLAUSE("availability-zone: %d hosts not in %s", w->not_zone, in->zone);
    }
    if (w->tenancy_other) {
        CLAUSE("tenancy: %d hosts dedicated to other tenants", w->tenancy_other);
    }
    if (w->tenancy_not_dedicated) {
        CLAUSE("tenancy: %d hosts not dedicated to tenant %s", w->tenancy_not_dedicated,
               in->tenant_id);
    }
    if (w->traits) {
        CLAUSE("traits: %d hosts lack", w->traits);
        for (int i = 0; i < in->n_traits; i++) {
            appendf(out, size, "%s%s", i ? ", " : " ", in->traits[i]);
        }
    }
    if (w->group) {
        static const char *const what[] = {
            [PLACE_GROUP_CLUSTER] = "not used by cluster group",
            [PLACE_GROUP_SPREAD] = "already used by spread group",
            [PLACE_GROUP_PARTITION] = "used by other partitions of group",
        };
        CLAUSE("placement-group: %d hosts %s %s", w->group, what[gv->g->strategy], gv->g->id);
        if (gv->g->strategy == PLACE_GROUP_PARTITION) {
            appendf(out, size, " (partition %d)", partition);
        }
    }
    if (w->tried) {
        CLAUSE("retry: %d hosts already failed to spawn it", w->tried);
    }
    if (w->full) {
        const char *csep = "";
        CLAUSE("capacity: ");
        if (w->lack_memory) {
            appendf(out, size, "%d hosts lack %s memory", w->lack_memory, mem);
            csep = ", ";
        }
        if (w->lack_vcpus) {
            appendf(out, size, "%s%d hosts lack %lld vCPUs", csep, w->lack_vcpus,
                    (long long)in->vcpus);
            csep = ", ";
        }
        if (w->lack_disk) {
            appendf(out, size, "%s%d hosts lack %lld GiB disk", csep, w->lack_disk,
                    (long long)in->disk_gib);
        }
    }
    if (w->total == 0) {
        appendf(out, size, ": there are no hosts");
    }
#undef CLAUSE
}

/* Runs the filters and weighers for 'in' in partition 'partition' (0: none). Returns the chosen
 * host's index, or -1 with the explanation in in->reason. Called with the lock held. */
static int place_one(struct snap *s, const struct place_config *cfg, struct place_inst *in,
                     const struct group_view *gv, int partition, uint64_t *rng)
{
    struct why w = {.total = s->n_hosts};
    int zone = in->zone ? find_zone(s, in->zone) : -1;
    uint64_t need = 0;
    bool unknown_trait = false;
    for (int i = 0; i < in->n_traits; i++) {
        int t = find_trait(s, in->traits[i]);
        if (t < 0) {
            unknown_trait = true; /* no host offers it */
        } else {
            need |= 1ull << t;
        }
    }
    if (in->n_tried > 0) {
        if (++s->tried_epoch == 0) {
            memset(s->tried_stamp, 0, (size_t)s->n_hosts * sizeof *s->tried_stamp);
            s->tried_epoch = 1;
        }
        for (int i = 0; i < in->n_tried; i++) {
            int h = find_host(s, in->tried[i]);
            if (h >= 0) {
                s->tried_stamp[h] = s->tried_epoch;
            }
        }
    }
    int k = cfg->top_k < 1 ? 1 : cfg->top_k > MAX_TOP_K ? MAX_TOP_K : cfg->top_k;
    int best[MAX_TOP_K];
    double best_score[MAX_TOP_K];
    int n_best = 0;

    const struct zone *z = zone >= 0 ? &s->zones[zone] : NULL;
    w.not_zone = s->n_hosts - (z ? z->n_hosts : 0);
    for (int zi = 0; z && zi < z->n_hosts; zi++) {
        int hi = z->hosts[zi];
        const struct host *h = &s->hosts[hi];
        if (h->state != PLACE_HOST_UP || !h->live) {
            w.down += h->state == PLACE_HOST_UP || h->state == PLACE_HOST_DOWN;
            w.disabled += h->state == PLACE_HOST_DISABLED;
            w.draining += h->state == PLACE_HOST_DRAINING;
            continue;
        }
        if (h->dedicated[0] && strcmp(h->dedicated, in->tenant_id)) {
            w.tenancy_other++;
            continue;
        }
        if (in->dedicated && !h->dedicated[0]) {
            w.tenancy_not_dedicated++;
            continue;
        }
        if (unknown_trait || (h->traits & need) != need) {
            w.traits++;
            continue;
        }
        if (gv->g && !group_allows(s, gv, hi, partition)) {
            w.group++;
            continue;
        }
        if (in->n_tried > 0 && s->tried_stamp[hi] == s->tried_epoch) {
            w.tried++;
            continue;
        }
        /* The allocation rule, exactly as the claim statement checks it in PostgreSQL:
         * (total - reserved) * ratio >= used + requested. */
        int64_t uv = h->db_vcpus + h->pend_vcpus + in->vcpus;
        int64_t um = h->db_memory + h->pend_memory + in->memory_mib;
        int64_t ud = h->db_disk + h->pend_disk + in->disk_gib;
        bool lv = h->lim_vcpus < (double)uv, lm = h->lim_memory < (double)um,
             ld = h->lim_disk < (double)ud;
        if (lv || lm || ld) {
            w.full++;
            w.lack_vcpus += lv;
            w.lack_memory += lm;
            w.lack_disk += ld;
            continue;
        }
        double fit = cfg->w_cpu * free_fraction(h->lim_vcpus, uv) +
                     cfg->w_memory * free_fraction(h->lim_memory, um) +
                     cfg->w_disk * free_fraction(h->lim_disk, ud);
        double score = cfg->weigher == PLACE_PACK ? -fit : fit;
        score += cfg->w_load * (1.0 - h->cpu_load);
        /* Insert into the top k, best first. */
        int pos = n_best < k ? n_best : k;
        while (pos > 0 && best_score[pos - 1] < score) {
            if (pos < k) {
                best[pos] = best[pos - 1];
                best_score[pos] = best_score[pos - 1];
            }
            pos--;
        }
        if (pos < k) {
            best[pos] = hi;
            best_score[pos] = score;
            if (n_best < k) {
                n_best++;
            }
        }
    }
    if (n_best == 0) {
        explain(s, in, gv, partition, &w, in->reason, sizeof in->reason);
        return -1;
    }
    return best[next_random(rng) % (uint64_t)n_best];
}

static void claim_pending(struct host *h, const struct place_inst *in, int sign)
{
    h->pend_vcpus += sign * in->vcpus;
    h->pend_memory += sign * in->memory_mib;
    h->pend_disk += sign * in->disk_gib;
    h->pend_count += sign;
}

/* Places one instance, choosing its partition when the group is a partition group and the
 * instance asked for none: the partitions with the fewest instances are tried first. */
static int place_inst(struct snap *s, const struct place_config *cfg, struct place_inst *in,
                      struct group_view *gv, uint64_t *rng)
{
    if (!gv->g || gv->g->strategy != PLACE_GROUP_PARTITION) {
        return place_one(s, cfg, in, gv, 0, rng);
    }
    int count = gv->g->partition_count < 1                ? 1
                : gv->g->partition_count > MAX_PARTITIONS ? MAX_PARTITIONS
                                                          : gv->g->partition_count;
    if (in->partition > count || in->partition < 0) {
        snprintf(in->reason, sizeof in->reason,
                 "partition %d does not exist in placement group %s (%d partitions)", in->partition,
                 gv->g->id, count);
        return -1;
    }
    if (in->partition > 0) {
        in->out_partition = in->partition;
        return place_one(s, cfg, in, gv, in->partition, rng);
    }
    int order[MAX_PARTITIONS];
    for (int p = 0; p < count; p++) {
        order[p] = p + 1;
    }
    for (int i = 1; i < count; i++) { /* insertion sort by instance count, then number */
        for (int j = i; j > 0 && gv->per_partition[order[j]] < gv->per_partition[order[j - 1]];
             j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    }
    char first_reason[PLACE_REASON_MAX] = "";
    for (int i = 0; i < count; i++) {
        int h = place_one(s, cfg, in, gv, order[i], rng);
        if (h >= 0) {
            in->out_partition = order[i];
            return h;
        }
        if (i == 0) {
            memcpy(first_reason, in->reason, sizeof first_reason);
        }
    }
    memcpy(in->reason, first_reason, sizeof in->reason);
    return -1;
}

int place_batch(struct place_snapshot *s, const struct place_config *cfg, struct place_batch *b,
                uint64_t *rng)
{
    pthread_mutex_lock(&s->mu);
    struct snap *d = &s->d;
    struct group_view gv;
    group_begin(d, &gv, b->group);
    int placed = 0, first_fail = -1;
    for (int i = 0; i < b->n; i++) {
        struct place_inst *in = &b->insts[i];
        in->placed = false;
        in->reason[0] = '\0';
        in->host_id[0] = '\0';
        in->out_partition = 0;
        int h = place_inst(d, cfg, in, &gv, rng);
        if (h < 0) {
            if (first_fail < 0) {
                first_fail = i;
            }
            continue;
        }
        claim_pending(&d->hosts[h], in, +1);
        if (gv.g) {
            group_mark(d, &gv, h, in->out_partition);
        }
        in->placed = true;
        in->host_simulated = d->hosts[h].simulated;
        snprintf(in->host_id, sizeof in->host_id, "%s", d->hosts[h].id);
        placed++;
    }
    int need = b->min_count < 1 ? 1 : b->min_count > b->n ? b->n : b->min_count;
    if (placed < need && placed > 0) {
        /* All-or-nothing down to MinCount: undo what did fit. */
        char why[PLACE_REASON_MAX];
        snprintf(why, sizeof why, "%s", b->insts[first_fail].reason);
        for (int i = 0; i < b->n; i++) {
            struct place_inst *in = &b->insts[i];
            if (in->placed) {
                claim_pending(&d->hosts[find_host(d, in->host_id)], in, -1);
                in->placed = false;
                in->host_id[0] = '\0';
                in->out_partition = 0;
            }
            in->reason[0] = '\0';
            appendf(in->reason, sizeof in->reason,
                    "only %d of the %d instances of %s could be placed and MinCount is %d: %s",
                    placed, b->n, b->label ? b->label : "the reservation", need, why);
        }
        placed = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return placed;
}

void place_finish(struct place_snapshot *s, const struct place_inst *in, bool committed)
{
    pthread_mutex_lock(&s->mu);
    int i = find_host(&s->d, in->host_id);
    if (i >= 0) {
        struct host *h = &s->d.hosts[i];
        claim_pending(h, in, -1);
        if (committed) {
            h->db_vcpus += in->vcpus;
            h->db_memory += in->memory_mib;
            h->db_disk += in->disk_gib;
            h->db_count++;
        }
    }
    pthread_mutex_unlock(&s->mu);
}
