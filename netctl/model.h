/* The desired network state of one compute host, as the control plane computes it (the gateway's
 * GET /internal/v1/network, svc_netctl.c) and nubo-netctl applies it (docs/network.md).
 *
 * A host sees every tenant network (VPC) that has a port on it, every port of those networks
 * (its own, and the other hosts' with their tunnel address), the security groups of those ports
 * with their rules, the VPN gateways and the remote-access endpoints of those networks. Everything is parsed and checked up front by
 * nc_state_parse(), so the flow compiler (flows.h) works on values that cannot be malformed.
 *
 * Addresses are IPv4 in host byte order. */
#ifndef NUBO_NETCTL_MODEL_H
#define NUBO_NETCTL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nb_error;
struct nb_arena;

#define NC_ID_MAX 32 /* "vpc-" + 17 hex and the like, with room */

struct nc_cidr {
    uint32_t addr; /* network address, host bits zero */
    int len;       /* 0..32 */
};

enum nc_proto { NC_PROTO_ALL = 0, NC_PROTO_ICMP = 1, NC_PROTO_TCP = 6, NC_PROTO_UDP = 17 };

/* One permission of a security group. Ports: for TCP/UDP a range (from <= to); for ICMP
 * 'from_port' is the type and 'to_port' the code, -1 meaning any; unused for NC_PROTO_ALL. The
 * peer is a CIDR, or (when 'group' is not empty) the members of another group. */
struct nc_rule {
    bool ingress;
    enum nc_proto proto;
    int from_port, to_port;
    struct nc_cidr cidr;
    char group[NC_ID_MAX];
};

struct nc_group {
    char id[NC_ID_MAX];
    struct nc_rule *rules;
    size_t n_rules;
};

struct nc_route {
    struct nc_cidr dest;
    char target[NC_ID_MAX]; /* "igw-..." or "vgw-..." */
};

struct nc_network {
    char vpc_id[NC_ID_MAX];
    int segment; /* local VLAN on every host and VXLAN key between hosts */
    struct nc_cidr cidr;
    uint32_t *routers; /* each subnet's router address (its first host + 1, as in EC2) */
    size_t n_routers;
    bool internet_gateway; /* an internet gateway is attached: elastic IPs are NATed */
    struct nc_route *routes;
    size_t n_routes;
};

struct nc_port {
    char id[NC_ID_MAX]; /* the network interface, "eni-..."; OVS external_ids:iface-id */
    int segment;
    uint8_t mac[6];
    uint32_t ip;
    uint32_t host; /* 0: on this host; else the tunnel address of the host it is on */
    char **groups; /* security group ids */
    size_t n_groups;
    uint32_t public_ip; /* associated elastic IP, 0 when none */
    bool internet;      /* its subnet routes to an attached internet gateway (the elastic IP's
                           NAT needs it, as in EC2) */
};

struct nc_vpn {
    char id[NC_ID_MAX]; /* "vpn-..." */
    int segment;
    uint32_t outside_ip; /* on the public network */
    uint32_t inside_ip;  /* inside the VPC */
    uint32_t peer_ip;    /* the customer gateway */
    uint32_t host;       /* 0: served by this host; else the tunnel address of the one that is */
    char psk[80];
    struct nc_cidr *remote; /* the customer's networks */
    size_t n_remote;
    uint8_t inside_mac[6], outside_mac[6]; /* derived from the id (nc_vpn_macs) */
};

/* A remote-access endpoint (WireGuard, netctl/wg.h): users' devices ("peers") reach the VPC
 * from the client CIDR through it. Its inside leg has the client CIDR's first host address (no
 * address of the VPC: the VPC's reserved ones are taken by the router, the service port and VPN
 * gateways); the client CIDR is routed to that leg from every host of the VPC. */
#define NC_WG_KEY_LEN 44 /* a WireGuard key in base64 */

struct nc_ra_peer {
    char public_key[NC_WG_KEY_LEN + 1];
    uint32_t ip; /* in the client CIDR; allowed-ips ip/32 */
};

struct nc_remote_access {
    char id[NC_ID_MAX]; /* "rae-..." */
    int segment;
    uint32_t outside_ip; /* on the public network, UDP 'listen_port' */
    uint32_t inside_ip;  /* the client CIDR's first host */
    struct nc_cidr client;
    int listen_port;
    char private_key[NC_WG_KEY_LEN + 1]; /* empty unless served here */
    uint32_t host; /* 0: served by this host; else the tunnel address of the one that is */
    struct nc_ra_peer *peers; /* listed to the serving host only */
    size_t n_peers;
    uint8_t inside_mac[6], outside_mac[6]; /* derived from the id */
};

struct nc_state {
    long long version;
    uint32_t tunnel_ip; /* this host's, 0 when unknown */
    bool has_public;
    struct nc_cidr public_cidr;
    uint32_t public_gateway;
    struct nc_network *networks;
    size_t n_networks;
    struct nc_port *ports;
    size_t n_ports;
    struct nc_group *groups;
    size_t n_groups;
    struct nc_vpn *vpns;
    size_t n_vpns;
    struct nc_remote_access *ras; /* "remote_access", optional */
    size_t n_ras;
    struct nb_arena *arena; /* owns everything above */
};

/* Parses the JSON text of a desired state. Returns a state to free with nc_state_free(), or NULL
 * with 'err' naming the first bad field (NB_ERR_INVALID / NB_ERR_MISSING). Unknown fields are
 * refused, so that a newer control plane is noticed rather than half understood. */
struct nc_state *nc_state_parse(const char *text, size_t len, struct nb_error *err);
void nc_state_free(struct nc_state *st);

const struct nc_network *nc_state_network(const struct nc_state *st, int segment);
const struct nc_group *nc_state_group(const struct nc_state *st, const char *id);

/* Address helpers. nc_parse_ip/nc_parse_cidr return 0 or -1 (a CIDR's host bits must be zero). */
int nc_parse_ip(const char *s, uint32_t *out);
int nc_parse_cidr(const char *s, struct nc_cidr *out);
int nc_parse_mac(const char *s, uint8_t mac[6]);
/* Writes "a.b.c.d" into 'out' (16 bytes) and returns it. */
char *nc_ip_str(uint32_t ip, char out[16]);
/* Writes "aa:bb:cc:dd:ee:ff" into 'out' (18 bytes) and returns it. */
char *nc_mac_str(const uint8_t mac[6], char out[18]);
bool nc_cidr_contains(struct nc_cidr c, uint32_t ip);

/* The MAC of a network's router (the first address of each subnet answers ARP with it) and of
 * this host on the public network: locally administered, fixed per segment / per host. */
void nc_router_mac(int segment, uint8_t mac[6]);
/* A network's service port on each host (DHCP and the metadata service, netctl/svc.h): its MAC,
 * and its address, the VPC's base address + 2 (EC2's reserved DNS address). */
void nc_service_mac(int segment, uint8_t mac[6]);
uint32_t nc_service_ip(const struct nc_network *n);
#define NC_METADATA_IP 0xa9fea9feu /* 169.254.169.254 */
void nc_public_mac(uint32_t tunnel_ip, uint8_t mac[6]);

#endif
