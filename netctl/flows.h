/* The flow compiler: a host's desired state (model.h) and the OpenFlow port numbers of its
 * integration bridge become a set of OpenFlow flows; two sets become the diff that turns one into
 * the other (docs/network.md has the pipeline).
 *
 * Every flow carries a cookie that is a hash of its text (top byte NC_COOKIE_TAG), so the flows
 * installed on a bridge are known by their cookies alone: after a restart nubo-netctl dumps the
 * cookies, keeps the flows that are still wanted untouched (so established connections and their
 * counters live on) and deletes or adds only the difference. A change of one rule is a diff of a
 * few flows, never a rebuild. */
#ifndef NUBO_NETCTL_FLOWS_H
#define NUBO_NETCTL_FLOWS_H

#include <stddef.h>
#include <stdint.h>

struct nc_state;
struct nb_buf;

#define NC_COOKIE_TAG   0x6e00000000000000ull /* our flows */
#define NC_COOKIE_LEARN 0x6f00000000000000ull /* flows learned by the bridge (the public gateway) */
#define NC_COOKIE_MASK  0xff00000000000000ull

/* The pipeline's tables. */
enum {
    NC_T_CLASSIFY = 0,   /* by in_port: anti-spoofing, tunnels, the public network */
    NC_T_ARP = 5,        /* ARP responder for every known address */
    NC_T_EGRESS = 10,    /* conntrack in the sending port's zone */
    NC_T_EGRESS_CT = 11, /* egress security group rules */
    NC_T_FORWARD = 20,   /* L2 to a port or a tunnel; L3 through the router MAC */
    NC_T_INGRESS = 30,   /* conntrack in the receiving port's zone */
    NC_T_INGRESS_CT = 31,
    NC_T_NAT_IN = 40, /* elastic IP: public -> private */
    NC_T_NAT_IN2 = 41,
    NC_T_NAT_OUT = 42,  /* elastic IP: private -> public */
    NC_T_PUBLIC_GW = 43 /* to the public gateway's MAC (learned) */
};

/* Connection tracking zones: a port's zone is its OpenFlow port number; elastic IPs of a network
 * are NATed in zone NC_NAT_ZONE_BASE + segment. */
#define NC_NAT_ZONE_BASE 61440

struct nc_flow {
    uint64_t cookie;
    char *spec; /* "table=..,priority=..,MATCH actions=..." */
};

struct nc_flows {
    struct nc_flow *v;
    size_t n, cap;
};

/* Port numbers on the bridge, by name: a local port by its interface id ("eni-..."), a tunnel by
 * "tun:<remote address>", the public network by "ext", a VPN gateway's legs by "vpn-in:<id>" and
 * "vpn-out:<id>". */
struct nc_ofmap {
    struct nc_ofport {
        char name[48];
        int ofport;
    } * v;
    size_t n, cap;
    int sorted;
};

void nc_ofmap_add(struct nc_ofmap *m, const char *name, int ofport);
/* The port number, or -1 when absent. */
int nc_ofmap_get(struct nc_ofmap *m, const char *name);
void nc_ofmap_clear(struct nc_ofmap *m);

/* Compiles 'st' for a bridge whose ports are 'ports' into 'out' (emptied first), sorted by cookie
 * without duplicates. Local ports and VPN gateways whose OVS port is missing get no flows (they
 * come when plugged). Returns how many local ports were left out for that reason. */
size_t nc_compile(const struct nc_state *st, struct nc_ofmap *ports, struct nc_flows *out);

/* Appends to 'bundle' the ovs-ofctl add-flows lines that turn 'from' into 'to' (both sorted):
 * "delete cookie=0x.../-1" for flows only in 'from', then "add cookie=0x...,SPEC" for flows only
 * in 'to'. Returns the number of lines; '*adds' and '*dels' get the counts. */
size_t nc_diff(const struct nc_flows *from, const struct nc_flows *to, struct nb_buf *bundle,
               size_t *adds, size_t *dels);

/* Fills 'out' with cookie-only entries (spec NULL) from the text of `ovs-ofctl dump-flows`: the
 * flows with our tag, sorted. Returns how many. */
size_t nc_flows_from_dump(const char *dump, struct nc_flows *out);

void nc_flows_clear(struct nc_flows *f);

#endif
