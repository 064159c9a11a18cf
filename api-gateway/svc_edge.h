/* Plumbing shared by the services of a VPC's edge (svc_network_edge.c: internet gateways, route
 * tables, elastic IPs; svc_vpn.c: VPN gateways, customer gateways, VPN connections): errors
 * with an EC2 reason, transactions, ids, tags, describe filters, client tokens, and the
 * operator's public address pool. Private to the gateway. */
#ifndef NUBO_GW_SVC_EDGE_H
#define NUBO_GW_SVC_EDGE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "nubo/error.h"
#include "nubo/id.h"

struct gw_ctx;
struct gw_filter;
struct gw_tag;
struct nb_arena;
struct nb_buf;
struct nb_pg_conn;
struct svc_sql;

/* The JSON '[[key, value], ...]' of the tags of the resource whose id is the SQL expression
 * 'col'; the query's $1 must be the tenant id. */
#define EDGE_TAGS_OF(col)                                                                          \
    "COALESCE((SELECT json_agg(json_build_array(t.key, t.value) ORDER BY t.key) FROM tags t "      \
    "WHERE t.tenant_id = $1 AND t.resource_id = " col "), '[]')"

/* Sets 'err' to 'code' with EC2 error code 'reason' and a formatted message. Returns -1. */
int edge_fail(struct nb_error *err, enum nb_errcode code, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* MissingParameter for parameter 'name' when 'value' is NULL. Returns 0, or -1 with 'err'. */
int edge_require(const char *value, const char *name, struct nb_error *err);

/* Checks that 'id' has the form of a nubo id of 'prefix' ("igw"); 'reason' (the EC2
 * ".Malformed" code) otherwise. Returns 0, or -1 with 'err'. */
int edge_check_id(const char *id, const char *prefix, const char *reason, struct nb_error *err);

/* Takes a pooled connection and opens a transaction. Returns it, or NULL with 'err'. The caller
 * nb_pg_release()s it (which rolls back what was not committed). */
struct nb_pg_conn *edge_begin(struct gw_ctx *gw, struct nb_error *err);

/* Runs one statement in the caller's transaction and throws its result away. Returns 0, or -1
 * with 'err'. */
int edge_exec(struct nb_pg_conn *conn, const char *sql, int n, const char *const *p,
              struct nb_error *err);

/* Runs a "SELECT count(*) ..." into '*count'. Returns 0, or -1 with 'err'. */
int edge_count(struct nb_pg_conn *conn, const char *sql, int n, const char *const *p,
               long long *count, struct nb_error *err);

/* Locks the tenant's row of 'table' whose 'key' column is 'id' FOR 'mode' ("UPDATE", "SHARE").
 * Returns 0, or -1 with 'err': 'not_found' ("The <what> '<id>' does not exist") when there is
 * none. */
int edge_lock_row(struct nb_pg_conn *conn, const char *table, const char *key, const char *mode,
                  const char *tenant_id, const char *id, const char *what, const char *not_found,
                  struct nb_error *err);

/* Makes a new id of 'prefix' into 'id'. Returns 0, or -1 with 'err'. */
int edge_new_id(const char *prefix, char id[NB_ID_MAX], struct nb_error *err);

/* Tags resource 'id' of 'type' with 'tags'. Returns 0, or -1 with 'err'. */
int edge_put_tags(struct nb_pg_conn *conn, const char *tenant_id, const char *id, const char *type,
                  const struct gw_tag *tags, size_t n_tags, struct nb_error *err);

/* Deletes the tags of resource 'id'. Returns 0, or -1 with 'err'. */
int edge_drop_tags(struct nb_pg_conn *conn, const char *tenant_id, const char *id,
                   struct nb_error *err);

/* A copy of 'tags' in 'arena' (never NULL). */
struct gw_tag *edge_copy_tags(struct nb_arena *arena, const struct gw_tag *tags, size_t n);

/* Appends 'tags' to 'key', the parameters of a request for edge_claim_token(). */
void edge_key_tags(struct nb_buf *key, const struct gw_tag *tags, size_t n);

/* Adds the filters of a describe query: a filter named in 'map' compares the SQL expression next
 * to it with its values, or, when that text holds "%s", is that condition with the values (a
 * text[]) in place of the "%s"; tag filters go through svc_sql_tag_filter() on 'id_column'; any other
 * name is InvalidParameterValue. Returns 0, or -1 with 'err'. */
int edge_add_filters(struct svc_sql *q, const char *const (*map)[2], size_t n_map,
                     const char *id_column, const struct gw_filter *filters, size_t n_filters,
                     struct nb_error *err);

/* Records client token 'token' of the tenant for action 'action' with parameters 'key' (any
 * text that differs when the parameters do), making 'new_id'. Returns 1 if this request is the
 * first with the token, 0 if an earlier one made '*earlier' (NB_ID_MAX bytes), or -1 with
 * 'err' (IdempotentParameterMismatch when the action or parameters differ). */
int edge_claim_token(struct nb_pg_conn *conn, const char *tenant_id, const char *token,
                     const char *action, const char *key, const char *new_id, char *earlier,
                     struct nb_error *err);

/* The operator's public address pool: network.public_pool (a CIDR block, /16 to /30) and its
 * router, network.public_gateway (default: the block's first host address), never handed
 * out. Neither the network nor the broadcast address is handed out either. */
struct edge_pool {
    char cidr[24];
    char gateway[16];
};

/* Reads the pool from the gateway's settings into '*out'. Returns 0, or -1 with 'err':
 * 'empty_reason' when no pool is configured, an internal error when the setting is malformed. */
int edge_pool_get(struct gw_ctx *gw, const char *empty_reason, struct edge_pool *out,
                  struct nb_error *err);

/* In the caller's transaction: takes the pool's advisory lock (held to the end of the
 * transaction, so that concurrent allocations queue) and picks the lowest address of the pool
 * that no elastic IP, live VPN connection or remote-access endpoint (0013) holds, into 'ip'.
 * Returns 0, or -1 with 'err'
 * ('empty_reason' when every address is taken). */
int edge_pool_take(struct nb_pg_conn *conn, const struct edge_pool *pool, const char *empty_reason,
                   char ip[16], struct nb_error *err);

/* Checks that 'cidr' is an IPv4 CIDR block (no bits right of the mask), for parameter 'param';
 * InvalidParameterValue (MissingParameter when NULL) otherwise. Returns 0, or -1 with 'err'. */
int edge_check_cidr(const char *param, const char *cidr, struct nb_error *err);

/* Milliseconds since the epoch of a "floor(epoch * 1000)" column ('text'). */
long long edge_ms(const char *text);

#endif
