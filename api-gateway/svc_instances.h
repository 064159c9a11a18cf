/* Instances service: launch, describe, and change the state of a tenant's instances.
 * Follows the conventions of svc.h. Until the scheduler places them, instances wait in
 * 'pending'. */
#ifndef NUBO_GW_SVC_INSTANCES_H
#define NUBO_GW_SVC_INSTANCES_H

#include <stddef.h>
#include <stdint.h>

#include "svc.h"

struct gw_ctx;
struct gw_principal;
struct nb_arena;
struct nb_error;

/* A security group an instance's interface is in. */
struct gw_group_ref {
    const char *id;
    const char *name;
};

struct gw_instance {
    const char *id;
    const char *reservation_id;
    const char *owner_id; /* the tenant */
    int launch_index;
    const char *image_id;
    const char *instance_type;
    const char *key_name; /* NULL when none */
    const char *zone;
    const char *state;           /* "pending", "running", ... */
    int state_code;              /* EC2's: 0 pending, 16 running, 32 shutting-down, 48 terminated,
                             64 stopping, 80 stopped */
    const char *reason_code;     /* NULL when none */
    const char *reason_message;  /* NULL when none */
    const char *placement_group; /* name; NULL when none */
    int partition_number;        /* 0 when none */
    const char *tenancy;         /* "default" or "dedicated" */
    const char *host_id;         /* where it runs; NULL until placed */
    int64_t launch_time_ms;      /* epoch milliseconds */
    int vcpus;
    int memory_mib;
    const struct gw_tag *tags;
    size_t n_tags;
    /* Its network interface (device 0) when launched into a subnet, else all NULL/0. A
     * terminated instance has given its interface (and address) back. */
    const char *interface_id;
    const char *vpc_id;
    const char *subnet_id;
    const char *private_ip;
    const char *mac_address;
    const struct gw_group_ref *groups;
    size_t n_groups;
    /* The elastic IP associated with that interface, else all NULL. */
    const char *public_ip;
    const char *public_association_id;
    const char *public_allocation_id;
};

struct gw_instance_list {
    struct gw_instance *items;
    size_t n;
    const char *next_token; /* NULL on the last page */
};

struct gw_run_request {
    const char *image_id;
    const char *instance_type; /* NULL: "t3.micro" */
    const char *key_name;      /* NULL: none */
    const char *zone;          /* NULL: the first available zone */
    const char *user_data;     /* base64 as given; NULL: none */
    const char *client_token;  /* NULL: not idempotent */
    int min_count;
    int max_count;
    const struct gw_tag *tags; /* for the instances */
    size_t n_tags;
    const char *placement_group; /* Placement.GroupName; NULL: none */
    int partition_number;        /* Placement.PartitionNumber; 0: the scheduler picks */
    const char *tenancy;         /* Placement.Tenancy: NULL or "default", "dedicated" */
    /* SubnetId: each instance gets an interface in it (NULL: none, and then none of the
     * three below may be given: InvalidParameterCombination, as nubo has no default VPC). */
    const char *subnet_id;
    const char *private_ip;       /* PrivateIpAddress; NULL: the lowest free ones */
    const char *const *group_ids; /* SecurityGroupId.N; none: the VPC's default group */
    size_t n_group_ids;
};

/* Launches between min_count and max_count instances as one reservation, within the tenant's
 * quota and, with a subnet, its free addresses (all-or-nothing for min_count; see
 * gw_net_launch_prepare() for the network errors). The instances wait in 'pending' until the scheduler
 * places them (it is woken by NOTIFY nubo_sched). With a client token seen before, returns the original
 * reservation (or IdempotentParameterMismatch if the parameters differ). Fills '*out'. */
int gw_instances_run(struct gw_ctx *gw, const struct gw_principal *who,
                     const struct gw_run_request *rq, struct nb_arena *arena,
                     struct gw_instance_list *out, struct nb_error *err);

/* Describes the tenant's instances: those in 'ids' (all when n_ids is 0; any unknown id is
 * InvalidInstanceID.NotFound), matching every filter, one page at a time, ordered by reservation
 * then instance id. Filters: instance-id, instance-state-name, instance-type, image-id, key-name,
 * availability-zone, reservation-id, owner-id, vpc-id, subnet-id, private-ip-address,
 * network-interface.mac-address, ip-address, network-interface.association.public-ip,
 * instance.group-id, instance.group-name, tag:KEY, tag-key, tag-value. Terminated instances stay visible for an hour, as on EC2. */
int gw_instances_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *const *ids,
                          size_t n_ids, const struct gw_filter *filters, size_t n_filters,
                          const struct gw_page *page, struct nb_arena *arena,
                          struct gw_instance_list *out, struct nb_error *err);

enum gw_instance_op { GW_OP_TERMINATE, GW_OP_STOP, GW_OP_START, GW_OP_REBOOT };

struct gw_state_change {
    const char *id;
    const char *previous_state;
    int previous_code;
    const char *current_state;
    int current_code;
};

/* Applies 'op' to every instance of 'ids' in one transaction: if any is unknown
 * (InvalidInstanceID.NotFound) or in a state that forbids 'op' (IncorrectInstanceState), none
 * changes. Fills '*changes' (in the order of 'ids', allocated in 'arena'); reboot reports no
 * change. An instance on a host gets the operation queued for the scheduler (pending_op, a new
 * op_seq, NOTIFY nubo_sched), which carries it out on the host's agent: stop goes through
 * 'stopping', terminate through 'shutting-down'. An instance not placed yet, or in 'error',
 * has nothing to shut down and is terminated at once. */
int gw_instances_change(struct gw_ctx *gw, const struct gw_principal *who, enum gw_instance_op op,
                        const char *const *ids, size_t n_ids, struct nb_arena *arena,
                        struct gw_state_change **changes, struct nb_error *err);

/* EC2's numeric state code of 'state' (-1 if unknown). */
int gw_instance_state_code(const char *state);

#endif
