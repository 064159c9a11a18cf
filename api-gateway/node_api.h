/* The compute nodes' API: "/internal/v1/...", called by nubo-agent with its node credential
 * ("Authorization: Bearer <node token>", see svc_hosts.h), never by tenants.
 *
 *   POST /internal/v1/heartbeat   capacity, stats and agent URL; answers the host's name, zone
 *                                 and the heartbeat interval
 *   GET  /internal/v1/instances   the instances the control plane wants on this host, for the
 *                                 agent's reconcile at start
 *
 * Node calls are not tenant requests and do not go to the request log (one heartbeat every few
 * seconds per node would drown it); they are counted in the gateway's metrics. */
#ifndef NUBO_GW_NODE_API_H
#define NUBO_GW_NODE_API_H

struct nb_http_req;

/* The HTTP handler for "/internal/v1*", registered by gw_start(); 'arg' is the gateway. */
void node_api_handle(struct nb_http_req *req, void *arg);

#endif
