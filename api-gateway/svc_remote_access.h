/* Remote access into a VPC for single users with WireGuard (issue 7), service layer. EC2 has no
 * WireGuard API (its Client VPN uses certificates), so this is nubo's own, behind REST
 * (/v1/remote-access, rest_remote_access.c). Follows svc.h; the tables are
 * deploy/migrations/0013_remote_access.sql, whose triggers bump the data plane's versions.
 *
 * An endpoint ("rae-") belongs to one VPC: a client CIDR outside the VPC, a server key pair
 * made here (X25519; the private key sealed under the master key, never answered), an outside
 * address from the public pool, listening on UDP 51820, on one host (the 'up' host with the
 * lowest id, as VPN connections). A peer ("rap-") is one user's device: the WireGuard public key
 * the user made, and an address of the client CIDR given here (the first host of the CIDR is
 * the endpoint's own). Errors carry EC2-style reasons: InvalidRemoteAccessEndpointID.NotFound,
 * InvalidRemoteAccessPeerID.NotFound, InvalidVpcID.NotFound, InvalidParameterValue,
 * RemoteAccessLimitExceeded (no public address left), AddressLimitExceeded (the client CIDR is
 * full). Another tenant's ids are NotFound. */
#ifndef NUBO_GW_SVC_REMOTE_ACCESS_H
#define NUBO_GW_SVC_REMOTE_ACCESS_H

#include <jansson.h>
#include <stddef.h>

struct gw_ctx;
struct gw_principal;
struct nb_arena;
struct nb_buf;
struct nb_error;

#define GW_WG_KEY_LEN 44 /* base64 of 32 bytes */
#define GW_WG_PORT    51820

struct gw_ra_endpoint {
    const char *id; /* "rae-" + 17 hex */
    const char *owner_id;
    const char *vpc_id;
    const char *vpc_cidr;
    const char *client_cidr;
    const char *public_key; /* the server's */
    const char *outside_ip;
    int listen_port;
    const char *host_id; /* NULL: no host was up when it was made */
    const char *state;   /* "available", or "pending" without a host */
    const char *description;
    long long n_peers;
};

struct gw_ra_peer {
    const char *id; /* "rap-" + 17 hex */
    const char *endpoint_id;
    const char *name;
    const char *public_key;
    const char *address; /* in the client CIDR, without a prefix */
};

/* Creates an endpoint for VPC 'vpc_id' with client CIDR 'client_cidr' (/16 to /29, not
 * overlapping the VPC) into '*out' (strings in 'arena'). Returns 0, or -1 with 'err'. */
int gw_ra_create(struct gw_ctx *gw, const struct gw_principal *who, const char *vpc_id,
                 const char *client_cidr, const char *description, struct nb_arena *arena,
                 struct gw_ra_endpoint *out, struct nb_error *err);

/* Deletes endpoint 'id' with its peers, giving its address back. Returns 0, or -1 with 'err'. */
int gw_ra_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                 struct nb_error *err);

/* Lists the tenant's endpoints ('id' NULL), or endpoint 'id' alone (NotFound when it is not
 * the tenant's), ordered by id, into '*out' (an array of '*n' in 'arena'). */
int gw_ra_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                   struct nb_arena *arena, struct gw_ra_endpoint **out, size_t *n,
                   struct nb_error *err);

/* Adds a peer with WireGuard public key 'public_key' (44 characters of base64 for 32 bytes)
 * named 'name' (NULL: none) to endpoint 'endpoint_id', giving it the lowest free address of the
 * client CIDR, into '*out'. Returns 0, or -1 with 'err' (InvalidParameterValue also when the
 * endpoint has that key already). */
int gw_ra_peer_create(struct gw_ctx *gw, const struct gw_principal *who, const char *endpoint_id,
                      const char *public_key, const char *name, struct nb_arena *arena,
                      struct gw_ra_peer *out, struct nb_error *err);

/* Removes peer 'peer_id' of endpoint 'endpoint_id'. Returns 0, or -1 with 'err'. */
int gw_ra_peer_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *endpoint_id,
                      const char *peer_id, struct nb_error *err);

/* Lists the peers of endpoint 'endpoint_id' ordered by address. Returns 0, or -1 with 'err'. */
int gw_ra_peers_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *endpoint_id,
                         struct nb_arena *arena, struct gw_ra_peer **out, size_t *n,
                         struct nb_error *err);

/* Appends to 'b' the configuration of peer 'p' of endpoint 'e' in wg-quick's format, without
 * the private key, which only the user has ("PrivateKey = <your private key>" stands in). */
void gw_ra_client_config(struct nb_buf *b, const struct gw_ra_endpoint *e,
                         const struct gw_ra_peer *p);

/* Checks that 'key' is a WireGuard key: base64 of exactly 32 bytes. Returns 0, or -1 with 'err'
 * (InvalidParameterValue naming 'param'). */
int gw_ra_check_key(const char *param, const char *key, struct nb_error *err);

/* Makes an X25519 key pair (OpenSSL) as WireGuard writes keys: base64, 44 characters each.
 * Returns 0, or -1 with 'err'. */
int gw_ra_keypair(char priv[GW_WG_KEY_LEN + 1], char pub[GW_WG_KEY_LEN + 1], struct nb_error *err);

/* In a host's desired state 'state' (svc_netctl.c): replaces each remote-access endpoint's
 * "sealed_key" with its "private_key", unsealed under the master key. Returns 0, or -1 with
 * 'err'. */
int gw_ra_unseal_state(struct gw_ctx *gw, json_t *state, struct nb_error *err);

#endif
