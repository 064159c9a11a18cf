/* Compute hosts: the operator's view (register, list, change state and ratios, evacuate) and the
 * nodes' own calls (authenticate with the node credential, heartbeat, read the instances the
 * control plane wants there). Follows svc.h; operator calls need the admin role.
 *
 * A node credential is the token "h-<id>:<64 hex digits>", shown once when the host is
 * registered. The control plane keeps it sealed under the master key (hosts.node_secret): the
 * gateway checks a node's calls with it, and the scheduler presents it to the node's agent. */
#ifndef NUBO_GW_SVC_HOSTS_H
#define NUBO_GW_SVC_HOSTS_H

#include <jansson.h>

struct gw_ctx;
struct nb_arena;
struct gw_principal;
struct nb_error;

/* Registers a host from 'spec' (fields: name (required), zone, vcpus, memory_mib, disk_gib,
 * reserved_vcpus, reserved_memory_mib, reserved_disk_gib, cpu_ratio, memory_ratio, disk_ratio,
 * traits (array of strings), dedicated_tenant, simulated (bool), agent_url). A host that is not
 * simulated reports its capacity in its heartbeats. Returns a new reference: the host as
 * gw_hosts_list() shows it, plus "node_token" (real hosts only; shown this once). */
json_t *gw_host_create(struct gw_ctx *gw, const struct gw_principal *who, const json_t *spec,
                       struct nb_error *err);

/* For deployment scripts (nubo-gateway --create-host): registers a real host named 'name' in
 * zone 'zone' (NULL: the first zone), or, when it exists, issues it a new node token (the old
 * one stops working). Writes the token to 'token' (160 bytes). Returns 0, or -1 with 'err'. */
int gw_host_issue_token(struct gw_ctx *gw, const char *name, const char *zone, char token[160],
                        struct nb_error *err);

/* All hosts, or the one 'id' (NULL: all), ordered by name: [{id, name, zone, state, ...}]. An
 * unknown id is NB_ERR_NOT_FOUND (InvalidHostID.NotFound). Returns a new reference. */
json_t *gw_hosts_list(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                      struct nb_error *err);

/* Changes the operator's fields of host 'id': state ("up", "disabled", "draining"), ratios,
 * reserved resources, traits, dedicated_tenant (null to clear), and the capacity of a simulated
 * host. Returns the host (new reference). */
json_t *gw_host_update(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                       const json_t *set, struct nb_error *err);

/* Moves the live instances of host 'id', which must be down or disabled, back to placement:
 * their claims on it are released and the scheduler places and boots them elsewhere (their
 * local disks are lost with the host). Returns {"host_id", "instances": [ids]}. */
json_t *gw_host_evacuate(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                         struct nb_error *err);

/* Removes host 'id' when no live instance holds a claim on it (else IncorrectState). */
int gw_host_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                   struct nb_error *err);

/* Checks a node's "Authorization: Bearer <token>" header value. Returns 0 with the host id
 * written to 'host_id' (32 bytes), or -1 with 'err' (NB_ERR_AUTH). */
int gw_node_authenticate(struct gw_ctx *gw, const char *authorization, char host_id[32],
                         struct nb_error *err);

/* Records a heartbeat of host 'host_id': 'report' holds agent_url, capacity {vcpus,
 * memory_mib, disk_gib}, stats {cpu_load, instances: [...]}, virt_type. A 'down' host comes back
 * 'up'. Returns a new reference: {"host_id", "name", "zone", "heartbeat_interval_s"}. */
json_t *gw_node_heartbeat(struct gw_ctx *gw, const char *host_id, const json_t *report,
                          struct nb_error *err);

/* The instances the control plane places on host 'host_id' and has not terminated:
 * {"instances": [{"id", "state", "pending_op"}]}, for the agent's reconcile. New reference. */
json_t *gw_node_instances(struct gw_ctx *gw, const char *host_id, struct nb_error *err);

/* The tail of the serial console log of the tenant's instance 'instance_id' (at most 64 KiB,
 * what EC2's GetConsoleOutput returns), read from its host's agent. Returns 0 with '*text' (a
 * malloc()ed, NUL-terminated string the caller free()s; empty when the guest printed nothing),
 * or -1 with 'err' (as gw_instance_agent(), or NB_ERR_UNAVAILABLE when the agent does not
 * answer). */
int gw_instance_console(struct gw_ctx *gw, const struct gw_principal *who, const char *instance_id,
                        char **text, struct nb_error *err);

/* Where instance 'id' of the caller's tenant shows its VNC display: its host's address and port
 * (asked of the host's agent, GET /v1/instances/{id}/vnc, with the node token), and its VNC
 * password (derived from the node token as the agent does, nb_vnc_password()). Stores strings
 * from 'arena' in '*address' and '*password', the port in '*port'. Returns 0, or -1 with 'err':
 * InvalidInstanceID.NotFound for an unknown id (or another tenant's); IncorrectInstanceState
 * when the instance is not running, or runs on a host without an agent; Unavailable when the
 * agent does not answer. Any role of the tenant may ask. */
int gw_instance_vnc(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                    struct nb_arena *arena, const char **address, int *port, const char **password,
                    struct nb_error *err);

/* CreateImage: saves the root disk of the tenant's instance 'instance_id' (running or stopped;
 * a running guest's copy is crash-consistent, as EC2's NoReboot) as a new private image named
 * 'name', with the source image's kernel, ramdisk and kernel arguments. The snapshot is taken by
 * the instance's agent and kept on its node, from where other nodes fetch it by a signed URL,
 * until the image store takes images in. Synchronous: returns once the image is available, with
 * its id in 'id_out' (NB_ID_MAX bytes). Errors: InvalidInstanceID.NotFound,
 * IncorrectInstanceState, InvalidAMIName.Duplicate; a failed snapshot leaves the image 'failed'. */
int gw_instance_create_image(struct gw_ctx *gw, const struct gw_principal *who,
                             const char *instance_id, const char *name, const char *description,
                             char *id_out, struct nb_error *err);

#endif
