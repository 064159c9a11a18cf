/* Placement groups service: the tenant's EC2 placement groups (CreatePlacementGroup,
 * DescribePlacementGroups, DeletePlacementGroup). Follows svc.h.
 *
 * A group tells the scheduler how to place its instances: 'cluster' packs them on the same
 * host(s), 'spread' puts each on a distinct host, 'partition' splits hosts into 1..7 disjoint
 * sets (instances.partition_number). The rules themselves live in the scheduler
 * (scheduler/placement.c); this module keeps the records. */
#ifndef NUBO_GW_SVC_PLACEMENT_H
#define NUBO_GW_SVC_PLACEMENT_H

#include <stddef.h>

#include "svc.h"

struct gw_ctx;
struct gw_principal;
struct nb_arena;
struct nb_error;
struct nb_pg_conn;

struct gw_placement_group {
    const char *id; /* "pg-" + 17 hex */
    const char *name;
    const char *strategy; /* "cluster", "spread" or "partition" */
    const char *state;    /* "available" */
    int partition_count;  /* 0 unless the strategy is partition */
    const struct gw_tag *tags;
    size_t n_tags;
};

/* Creates group 'name' (1..255 printable ASCII characters) with 'strategy' and, for 'partition',
 * 'partition_count' partitions (1..7; 0 means 2, EC2's default; any other strategy needs 0),
 * tagged with 'tags'. Fills '*out' (in 'arena'). InvalidPlacementGroup.Duplicate if the name is
 * taken, InvalidParameterValue for a bad name, strategy or count. */
int gw_placement_group_create(struct gw_ctx *gw, const struct gw_principal *who, const char *name,
                              const char *strategy, int partition_count, const struct gw_tag *tags,
                              size_t n_tags, struct nb_arena *arena, struct gw_placement_group *out,
                              struct nb_error *err);

/* Deletes group 'name' and its tags. InvalidPlacementGroup.Unknown if there is none,
 * InvalidPlacementGroup.InUse while live instances (not terminated, not in error) are in it;
 * dead instances simply lose their reference to it. */
int gw_placement_group_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *name,
                              struct nb_error *err);

/* Lists the tenant's groups, those named in 'names' and with ids in 'ids' when given
 * (InvalidPlacementGroup.Unknown for any unknown one), filtered by group-name, group-id,
 * strategy, state, partition-count, tag:KEY, tag-key, tag-value; ordered by name. */
int gw_placement_groups_describe(struct gw_ctx *gw, const struct gw_principal *who,
                                 const char *const *names, size_t n_names, const char *const *ids,
                                 size_t n_ids, const struct gw_filter *filters, size_t n_filters,
                                 struct nb_arena *arena, struct gw_placement_group **out, size_t *n,
                                 struct nb_error *err);

/* For RunInstances (Placement.GroupName): finds the tenant's group 'name' on 'conn' (inside the
 * caller's transaction, locking it against a concurrent delete) and writes its id into 'id'
 * (at least 32 bytes), its strategy's partition count into '*partition_count'. Returns 0, or -1
 * with 'err' (InvalidPlacementGroup.Unknown). */
int gw_placement_group_lookup(struct nb_pg_conn *conn, const char *tenant_id, const char *name,
                              char *id, int *partition_count, struct nb_error *err);

#endif
