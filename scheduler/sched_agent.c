/* The scheduler -> agent HTTP client: see sched_agent.h. */
#include "sched_agent.h"

#include "nubo/error.h"
#include "nubo/httpc.h"
#include "nubo/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum sched_agent_outcome sched_agent_call(const uint8_t master_key[NB_MASTER_KEY_LEN],
                                          const struct sched_agent_call *call, struct nb_error *err)
{
    if (!call->base_url || !call->base_url[0] || !call->node_secret || !master_key) {
        nb_error_set(err, NB_ERR_INVALID, "host \"%s\" has no agent URL or node secret",
                     call->host_id);
        return SCHED_AGENT_UNREACHABLE;
    }
    size_t secret_len;
    char *token = nb_unseal(master_key, call->node_secret, call->host_id, &secret_len, err);
    if (!token) {
        /* A wrong master key is the operator's to fix; retrying later is all we can do. */
        return SCHED_AGENT_UNREACHABLE;
    }
    const char *method = "POST", *suffix = "";
    const char *body = NULL;
    char start_body[128];
    if (!strcmp(call->op, "spawn")) {
        method = "PUT";
        body = call->spec_json;
    } else if (!strcmp(call->op, "terminate")) {
        method = "DELETE";
    } else if (!strcmp(call->op, "stop")) {
        suffix = "/stop";
        body = "{\"force\":false}";
    } else if (!strcmp(call->op, "start") && call->reset_root) {
        suffix = "/start";
        snprintf(start_body, sizeof start_body, "{\"reset_root\":true,\"reset_id\":\"%s\"}",
                 call->reset_id ? call->reset_id : "");
        body = start_body;
    } else {
        suffix = !strcmp(call->op, "start") ? "/start" : "/reboot";
        body = "{}";
    }
    size_t base_len = strlen(call->base_url);
    while (base_len > 0 && call->base_url[base_len - 1] == '/') {
        base_len--;
    }
    char url[1024], authz[1024];
    snprintf(url, sizeof url, "%.*s/v1/instances/%s%s", (int)base_len, call->base_url,
             call->instance_id, suffix);
    snprintf(authz, sizeof authz, "Authorization: Bearer %s", token);
    memset(token, 0, secret_len);
    free(token);
    const char *headers[] = {authz, "Content-Type: application/json", NULL};
    /* Every agent call is idempotent, POSTs included, so all of them may be retried. */
    struct nb_httpc_request req = {
        .method = method,
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = call->timeout_ms,
        .max_retries = 2,
        .retry_unsafe = true,
    };
    struct nb_httpc_response resp = {0};
    int rc = nb_httpc_do(&req, &resp, err);
    memset(authz, 0, sizeof authz);
    if (rc < 0) {
        nb_httpc_response_free(&resp);
        return SCHED_AGENT_UNREACHABLE;
    }
    if (resp.status >= 200 && resp.status < 300) {
        nb_httpc_response_free(&resp);
        return SCHED_AGENT_OK;
    }
    char why[NB_ERROR_MSG_MAX - 64];
    nb_json_error_text(resp.body, resp.body_len, why, sizeof why);
    nb_error_set(err, NB_ERR_UNAVAILABLE, "agent answered %ld: %s", resp.status, why);
    long status = resp.status;
    nb_httpc_response_free(&resp);
    /* 502/503/504 after the retries mean a proxy or an agent that is not ready: not a failure
     * of the operation itself. */
    if (status == 502 || status == 503 || status == 504) {
        return SCHED_AGENT_UNREACHABLE;
    }
    return SCHED_AGENT_FAILED;
}
