/* The client side of the scheduler -> agent HTTP API (see docs/scheduler.md for the contract):
 *
 *   PUT    /v1/instances/{id}         spawn (body: the instance spec)   -> 200 {"state":"running"}
 *   POST   /v1/instances/{id}/stop    {"force":false}                   -> 200 {"state":"stopped"}
 *   POST   /v1/instances/{id}/start   {} or {"reset_root":true,"reset_id":"<op_seq>"}
 *                                                                       -> 200 {"state":"running"}
 *   POST   /v1/instances/{id}/reboot                                    -> 200 {"state":"running"}
 *   DELETE /v1/instances/{id}                                           -> 200 {"state":"terminated"}
 *
 * Every call is idempotent on the agent's side, so it is safe to repeat after a timeout or when
 * another scheduler took the operation over. Authenticated with "Authorization: Bearer <node
 * token>", the token unsealed from hosts.node_secret (AAD: the host id). */
#ifndef NUBO_SCHED_AGENT_H
#define NUBO_SCHED_AGENT_H

#include "nubo/crypto.h"

#include <stdbool.h>
#include <stdint.h>

struct nb_error;

enum sched_agent_outcome {
    SCHED_AGENT_OK,     /* the agent did it */
    SCHED_AGENT_FAILED, /* the agent answered with an error: the operation failed on this host */
    SCHED_AGENT_UNREACHABLE, /* no answer (refused, timeout): try again later, same host */
};

struct sched_agent_call {
    const char *base_url;    /* hosts.agent_url */
    const char *host_id;     /* the AAD of the sealed secret */
    const char *node_secret; /* hosts.node_secret, sealed */
    const char *instance_id;
    const char *op;        /* "spawn", "stop", "start", "reboot", "terminate" */
    const char *spec_json; /* the spawn body; NULL for the others */
    bool reset_root;       /* start: discard the disks first (instances.reset_root) */
    const char *reset_id;  /* start with reset_root: the request's id (the op_seq) */
    long timeout_ms;
};

/* Performs 'call'. Returns its outcome; for SCHED_AGENT_FAILED and SCHED_AGENT_UNREACHABLE, 'err' says why
 * (the agent's own error code and message when it gave them). */
enum sched_agent_outcome sched_agent_call(const uint8_t master_key[NB_MASTER_KEY_LEN],
                                          const struct sched_agent_call *call,
                                          struct nb_error *err);

#endif
