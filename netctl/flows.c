/* The flow compiler (flows.h). The pipeline, table by table:
 *
 *   0  classify   a local port's packets must carry its MAC and IP (anti-spoofing): IP goes on to
 *                 10 with reg6 = segment and reg5 = the port (its conntrack zone), ARP to 5.
 *                 A tunnel's packets with a known key go to 20 with reg6 = segment. The public
 *                 network: ARP and IP for this host's elastic IPs (to 40), a VPN gateway's
 *                 outside leg, the public gateway's ARP replies (learned into 43).
 *   5  arp        answers every ARP request for a known address of the segment (ports, routers,
 *                 VPN gateways): no broadcast ever leaves a host.
 *   10/11 egress  conntrack in the port's zone; established and related pass, new connections
 *                 pass if a rule of one of the port's groups allows them, and are committed.
 *   20 forward    by destination MAC to a local port (to 30, reg7 = port) or through the tunnel
 *                 of the host the port is on (tun_id = segment); to the router MAC with a known
 *                 IP: routed (MACs rewritten, TTL decremented) and looked up again; to the VPN
 *                 gateway for the customer's networks; to the NAT of an elastic IP otherwise.
 *   30/31 ingress conntrack in the receiving port's zone, the same as egress with ingress rules.
 *   40/41 NAT in  elastic IP -> private address (conntrack in the network's NAT zone), then 20.
 *   42 NAT out    private -> elastic IP, then 43: the public gateway's MAC, out of the public port.
 */
#include "flows.h"

#include "model.h"
#include "nubo/buf.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- port map -------------------------------------------------------------------------------- */

void nc_ofmap_add(struct nc_ofmap *m, const char *name, int ofport)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        m->v = realloc(m->v, m->cap * sizeof *m->v);
        if (!m->v) {
            abort();
        }
    }
    snprintf(m->v[m->n].name, sizeof m->v[m->n].name, "%s", name);
    m->v[m->n++].ofport = ofport;
    m->sorted = 0;
}

static int ofport_cmp(const void *a, const void *b)
{
    return strcmp(((const struct nc_ofport *)a)->name, ((const struct nc_ofport *)b)->name);
}

int nc_ofmap_get(struct nc_ofmap *m, const char *name)
{
    if (!m->sorted) {
        if (m->n) {
            qsort(m->v, m->n, sizeof *m->v, ofport_cmp);
        }
        m->sorted = 1;
    }
    struct nc_ofport key = {.ofport = 0};
    snprintf(key.name, sizeof key.name, "%s", name);
    const struct nc_ofport *p = m->n ? bsearch(&key, m->v, m->n, sizeof *m->v, ofport_cmp) : NULL;
    return p ? p->ofport : -1;
}

void nc_ofmap_clear(struct nc_ofmap *m)
{
    free(m->v);
    memset(m, 0, sizeof *m);
}

/* --- flow sets ------------------------------------------------------------------------------- */

static uint64_t hash64(const char *s)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a, 64 bits */
    for (; *s; s++) {
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    }
    return h;
}

static void flows_push(struct nc_flows *f, uint64_t cookie, char *spec)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 1024;
        f->v = realloc(f->v, f->cap * sizeof *f->v);
        if (!f->v) {
            abort();
        }
    }
    f->v[f->n].cookie = cookie;
    f->v[f->n++].spec = spec;
}

static void __attribute__((format(printf, 2, 3))) flow(struct nc_flows *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *spec;
    if (vasprintf(&spec, fmt, ap) < 0) {
        abort();
    }
    va_end(ap);
    flows_push(f, (hash64(spec) & ~NC_COOKIE_MASK) | NC_COOKIE_TAG, spec);
}

static int flow_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct nc_flow *)a)->cookie, y = ((const struct nc_flow *)b)->cookie;
    return x < y ? -1 : x > y;
}

/* Sorts by cookie and drops duplicates (two rules may yield the same flow). */
static void flows_finish(struct nc_flows *f)
{
    if (!f->n) {
        return;
    }
    qsort(f->v, f->n, sizeof *f->v, flow_cmp);
    size_t w = 1;
    for (size_t r = 1; r < f->n; r++) {
        if (f->v[r].cookie == f->v[w - 1].cookie) {
            free(f->v[r].spec);
        } else {
            f->v[w++] = f->v[r];
        }
    }
    f->n = w;
}

void nc_flows_clear(struct nc_flows *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->v[i].spec);
    }
    free(f->v);
    memset(f, 0, sizeof *f);
}

size_t nc_diff(const struct nc_flows *from, const struct nc_flows *to, struct nb_buf *bundle,
               size_t *adds, size_t *dels)
{
    size_t i = 0, j = 0, a = 0, d = 0;
    /* Deletions first: a changed flow has a new cookie, and deleting the old cookie after adding
     * the new flow (same match) would delete the new one. */
    while (i < from->n) {
        if (j < to->n && to->v[j].cookie < from->v[i].cookie) {
            j++;
        } else if (j < to->n && to->v[j].cookie == from->v[i].cookie) {
            i++, j++;
        } else {
            nb_buf_printf(bundle, "delete cookie=0x%016" PRIx64 "/-1\n", from->v[i++].cookie);
            d++;
        }
    }
    for (i = 0, j = 0; j < to->n; j++) {
        while (i < from->n && from->v[i].cookie < to->v[j].cookie) {
            i++;
        }
        if (i < from->n && from->v[i].cookie == to->v[j].cookie) {
            continue;
        }
        nb_buf_printf(bundle, "add cookie=0x%016" PRIx64 ",%s\n", to->v[j].cookie, to->v[j].spec);
        a++;
    }
    if (adds) {
        *adds = a;
    }
    if (dels) {
        *dels = d;
    }
    return a + d;
}

size_t nc_flows_from_dump(const char *dump, struct nc_flows *out)
{
    nc_flows_clear(out);
    for (const char *p = strstr(dump, "cookie=0x"); p; p = strstr(p + 1, "cookie=0x")) {
        uint64_t c = strtoull(p + 9, NULL, 16);
        if ((c & NC_COOKIE_MASK) == NC_COOKIE_TAG) {
            flows_push(out, c, NULL);
        }
    }
    flows_finish(out);
    return out->n;
}

/* --- compiling ------------------------------------------------------------------------------- */

struct ctx {
    const struct nc_state *st;
    struct nc_ofmap *ports;
    struct nc_flows *out;
    int ext; /* ofport of the public network, -1 */
};

/* "nw_src=10.0.0.0/16" (or nothing for /0) for 'field' into 'buf'. */
static const char *cidr_match(char *buf, size_t size, const char *field, struct nc_cidr c)
{
    char ip[16];
    if (c.len == 0) {
        buf[0] = '\0';
    } else {
        snprintf(buf, size, ",%s=%s/%d", field, nc_ip_str(c.addr, ip), c.len);
    }
    return buf;
}

/* The ARP responder's answer with 'mac' for 'ip'. */
static void arp_reply(struct ctx *c, int table, int prio, const char *match, const uint8_t mac[6],
                      uint32_t ip)
{
    char m[18], a[16];
    nc_mac_str(mac, m);
    nc_ip_str(ip, a);
    flow(c->out,
         "table=%d,priority=%d,%s,arp,arp_op=1,arp_tpa=%s "
         "actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:%s->eth_src,"
         "set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],"
         "move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:%s->arp_sha,set_field:%s->arp_spa,"
         "IN_PORT",
         table, prio, match, a, m, m, a);
}

/* The match of one rule's protocol and ports, each alternative a separate string (a port range
 * is a set of value/mask matches); calls emit() for each. */
static void rule_matches(const struct nc_rule *r, void (*emit)(void *, const char *), void *arg)
{
    char buf[96];
    switch (r->proto) {
    case NC_PROTO_ALL:
        emit(arg, "ip");
        return;
    case NC_PROTO_ICMP:
        snprintf(buf, sizeof buf, "icmp");
        if (r->from_port >= 0) {
            snprintf(buf + 4, sizeof buf - 4, ",icmp_type=%d", r->from_port);
            if (r->to_port >= 0) {
                snprintf(buf + strlen(buf), sizeof buf - strlen(buf), ",icmp_code=%d", r->to_port);
            }
        }
        emit(arg, buf);
        return;
    case NC_PROTO_TCP:
    case NC_PROTO_UDP: {
        const char *p = r->proto == NC_PROTO_TCP ? "tcp" : "udp";
        if (r->from_port == 0 && r->to_port == 65535) {
            emit(arg, p);
            return;
        }
        /* Split [from, to] into aligned power-of-two blocks. */
        unsigned lo = (unsigned)r->from_port, hi = (unsigned)r->to_port;
        while (lo <= hi) {
            unsigned size = 1;
            while ((lo & (size * 2 - 1)) == 0 && lo + size * 2 - 1 <= hi && size < 65536) {
                size *= 2;
            }
            if (size == 1) {
                snprintf(buf, sizeof buf, "%s,tp_dst=%u", p, lo);
            } else {
                snprintf(buf, sizeof buf, "%s,tp_dst=0x%04x/0x%04x", p, lo, 0xffffu & ~(size - 1));
            }
            emit(arg, buf);
            if (lo + size > 65535) {
                break;
            }
            lo += size;
        }
        return;
    }
    }
}

struct rule_emit {
    struct ctx *c;
    const struct nc_rule *r;
    const char *port_match; /* "reg5=7" or "reg7=7" */
    const char *peer;       /* ",nw_src=..." */
    const char *action;
    int table, prio;
};

static void emit_rule(void *arg, const char *proto)
{
    struct rule_emit *e = arg;
    flow(e->c->out, "table=%d,priority=%d,ct_state=+new+trk,%s,%s%s actions=%s", e->table, e->prio,
         e->port_match, proto, e->peer, e->action);
}

/* The flows of the security groups of local port 'p' (at 'ofport'). */
static void port_rules(struct ctx *c, const struct nc_port *p, int ofport)
{
    char egress_match[24], ingress_match[24], egress_action[96], ingress_action[128];
    snprintf(egress_match, sizeof egress_match, "reg5=%d", ofport);
    snprintf(ingress_match, sizeof ingress_match, "reg7=%d", ofport);
    snprintf(egress_action, sizeof egress_action,
             "ct(commit,zone=NXM_NX_REG5[0..15]),goto_table:%d", NC_T_FORWARD);
    snprintf(ingress_action, sizeof ingress_action,
             "ct(commit,zone=NXM_NX_REG7[0..15]),output:NXM_NX_REG7[0..15]");
    for (size_t g = 0; g < p->n_groups; g++) {
        const struct nc_group *grp = nc_state_group(c->st, p->groups[g]);
        for (size_t i = 0; grp && i < grp->n_rules; i++) {
            const struct nc_rule *r = &grp->rules[i];
            struct rule_emit e = {
                .c = c,
                .r = r,
                .port_match = r->ingress ? ingress_match : egress_match,
                .action = r->ingress ? ingress_action : egress_action,
                .table = r->ingress ? NC_T_INGRESS_CT : NC_T_EGRESS_CT,
                .prio = 100,
            };
            const char *field = r->ingress ? "nw_src" : "nw_dst";
            char peer[48];
            if (!r->group[0]) {
                e.peer = cidr_match(peer, sizeof peer, field, r->cidr);
                rule_matches(r, emit_rule, &e);
                continue;
            }
            /* A group peer: every member's address in this port's network. */
            for (size_t q = 0; q < c->st->n_ports; q++) {
                const struct nc_port *m = &c->st->ports[q];
                if (m->segment != p->segment) {
                    continue;
                }
                for (size_t k = 0; k < m->n_groups; k++) {
                    if (!strcmp(m->groups[k], r->group)) {
                        char ip[16];
                        snprintf(peer, sizeof peer, ",%s=%s", field, nc_ip_str(m->ip, ip));
                        e.peer = peer;
                        rule_matches(r, emit_rule, &e);
                        break;
                    }
                }
            }
        }
    }
}

static void tunnel_name(char *buf, size_t size, uint32_t host)
{
    char ip[16];
    snprintf(buf, size, "tun:%s", nc_ip_str(host, ip));
}

/* Forwarding to the port with 'mac' in 'segment': locally (ofport >= 0), or through the tunnel to
 * 'host'. */
static void forward_to(struct ctx *c, int segment, const uint8_t mac[6], uint32_t host, int ofport)
{
    char m[18];
    nc_mac_str(mac, m);
    if (!host) {
        if (ofport >= 0) {
            flow(c->out,
                 "table=%d,priority=100,reg6=%d,dl_dst=%s actions=set_field:%d->reg7,"
                 "goto_table:%d",
                 NC_T_FORWARD, segment, m, ofport, NC_T_INGRESS);
        }
        return;
    }
    char name[48];
    tunnel_name(name, sizeof name, host);
    int tun = nc_ofmap_get(c->ports, name);
    if (tun >= 0) {
        flow(c->out,
             "table=%d,priority=100,reg6=%d,dl_dst=%s actions=set_field:%d->tun_id,output:%d",
             NC_T_FORWARD, segment, m, segment, tun);
    }
}

/* Routing to 'ip' (a port's, any host) through the router MAC of 'segment'. */
static void route_to(struct ctx *c, int segment, uint32_t ip, const uint8_t mac[6])
{
    char rm[18], m[18], a[16];
    uint8_t rmac[6];
    nc_router_mac(segment, rmac);
    flow(c->out,
         "table=%d,priority=90,reg6=%d,dl_dst=%s,ip,nw_dst=%s actions=set_field:%s->eth_src,"
         "set_field:%s->eth_dst,dec_ttl,resubmit(,%d)",
         NC_T_FORWARD, segment, nc_mac_str(rmac, rm), nc_ip_str(ip, a), rm, nc_mac_str(mac, m),
         NC_T_FORWARD);
}

static void local_port(struct ctx *c, const struct nc_port *p, int ofport)
{
    char m[18], a[16];
    nc_mac_str(p->mac, m);
    nc_ip_str(p->ip, a);
    flow(c->out,
         "table=%d,priority=110,in_port=%d,dl_src=%s,ip,nw_src=%s actions=set_field:%d->reg6,"
         "set_field:%d->reg5,goto_table:%d",
         NC_T_CLASSIFY, ofport, m, a, p->segment, ofport, NC_T_EGRESS);
    flow(c->out,
         "table=%d,priority=110,in_port=%d,dl_src=%s,arp,arp_spa=%s,arp_sha=%s "
         "actions=set_field:%d->reg6,goto_table:%d",
         NC_T_CLASSIFY, ofport, m, a, m, p->segment, NC_T_ARP);
    /* Anything else from the port (another source address, another MAC) is spoofed. */
    flow(c->out, "table=%d,priority=100,in_port=%d actions=drop", NC_T_CLASSIFY, ofport);
    flow(c->out, "table=%d,priority=100,reg7=%d,ip actions=ct(table=%d,zone=NXM_NX_REG7[0..15])",
         NC_T_INGRESS, ofport, NC_T_INGRESS_CT);
    port_rules(c, p, ofport);
}

/* Elastic IP 'p->public_ip' of local port 'p': 1:1 NAT between the public network and the port. */
static void elastic_ip(struct ctx *c, const struct nc_port *p)
{
    char pub[16], priv[16], pm[18], rm[18], m[18];
    uint8_t pmac[6], rmac[6];
    int zone = NC_NAT_ZONE_BASE + p->segment;
    nc_ip_str(p->public_ip, pub);
    nc_ip_str(p->ip, priv);
    nc_public_mac(c->st->tunnel_ip, pmac);
    nc_mac_str(pmac, pm);
    nc_router_mac(p->segment, rmac);
    nc_mac_str(rmac, rm);
    nc_mac_str(p->mac, m);
    char match[32];
    snprintf(match, sizeof match, "in_port=%d", c->ext);
    arp_reply(c, NC_T_CLASSIFY, 120, match, pmac, p->public_ip);
    flow(c->out, "table=%d,priority=120,in_port=%d,ip,nw_dst=%s actions=ct(zone=%d,nat,table=%d)",
         NC_T_CLASSIFY, c->ext, pub, zone, NC_T_NAT_IN);
    flow(c->out,
         "table=%d,priority=100,ct_state=+new+trk,ct_zone=%d,ip,nw_dst=%s "
         "actions=ct(commit,zone=%d,nat(dst=%s),table=%d)",
         NC_T_NAT_IN, zone, pub, zone, priv, NC_T_NAT_IN2);
    flow(c->out,
         "table=%d,priority=100,ct_state=-new+trk,ct_zone=%d,ip,nw_dst=%s actions=goto_table:%d",
         NC_T_NAT_IN, zone, priv, NC_T_NAT_IN2);
    flow(c->out,
         "table=%d,priority=100,ct_zone=%d,ip,nw_dst=%s actions=set_field:%d->reg6,"
         "set_field:%s->eth_src,set_field:%s->eth_dst,dec_ttl,resubmit(,%d)",
         NC_T_NAT_IN2, zone, priv, p->segment, rm, m, NC_T_FORWARD);
    /* Out: whatever leaves the VPC through the router from this port. */
    flow(c->out,
         "table=%d,priority=70,reg6=%d,dl_dst=%s,ip,nw_src=%s actions=ct(zone=%d,nat,table=%d)",
         NC_T_FORWARD, p->segment, rm, priv, zone, NC_T_NAT_OUT);
    flow(c->out,
         "table=%d,priority=100,ct_state=+new+trk,ct_zone=%d,ip,nw_src=%s "
         "actions=ct(commit,zone=%d,nat(src=%s),table=%d)",
         NC_T_NAT_OUT, zone, priv, zone, pub, NC_T_NAT_OUT);
    flow(c->out,
         "table=%d,priority=100,ct_zone=%d,ip,nw_src=%s actions=set_field:%s->eth_src,dec_ttl,"
         "goto_table:%d",
         NC_T_NAT_OUT, zone, pub, pm, NC_T_PUBLIC_GW);
}

/* The public network: learning the gateway's MAC, the default path to it. */
static void public_network(struct ctx *c)
{
    char gw[16], pm[18];
    uint8_t pmac[6];
    nc_public_mac(c->st->tunnel_ip, pmac);
    nc_mac_str(pmac, pm);
    nc_ip_str(c->st->public_gateway, gw);
    /* The gateway's ARP replies to this host teach table 43 where to send. */
    flow(c->out,
         "table=%d,priority=130,in_port=%d,arp,arp_op=2,arp_spa=%s,dl_dst=%s "
         "actions=learn(table=%d,priority=100,cookie=0x%016llx,"
         "load:NXM_NX_ARP_SHA[]->NXM_OF_ETH_DST[],output:NXM_OF_IN_PORT[])",
         NC_T_CLASSIFY, c->ext, gw, pm, NC_T_PUBLIC_GW, (unsigned long long)NC_COOKIE_LEARN);
    /* Until learned: the frame is flooded to the public port with the broadcast address. */
    flow(c->out, "table=%d,priority=10 actions=set_field:ff:ff:ff:ff:ff:ff->eth_dst,output:%d",
         NC_T_PUBLIC_GW, c->ext);
}

static void vpn_gateway(struct ctx *c, const struct nc_vpn *v)
{
    char in_name[64], out_name[64], im[18], om[18], a[16];
    nc_mac_str(v->inside_mac, im);
    nc_mac_str(v->outside_mac, om);
    snprintf(in_name, sizeof in_name, "vpn-in:%s", v->id);
    snprintf(out_name, sizeof out_name, "vpn-out:%s", v->id);
    int in = v->host ? -1 : nc_ofmap_get(c->ports, in_name);
    int out = v->host ? -1 : nc_ofmap_get(c->ports, out_name);

    /* Every host: ARP for the gateway's inside address, routes to the customer's networks. */
    char seg_match[24];
    snprintf(seg_match, sizeof seg_match, "reg6=%d", v->segment);
    arp_reply(c, NC_T_ARP, 100, seg_match, v->inside_mac, v->inside_ip);
    forward_to(c, v->segment, v->inside_mac, v->host, in);
    uint8_t rmac[6];
    char rm[18], cm[48];
    nc_router_mac(v->segment, rmac);
    nc_mac_str(rmac, rm);
    for (size_t i = 0; i < v->n_remote; i++) {
        flow(c->out,
             "table=%d,priority=80,reg6=%d,dl_dst=%s,ip%s actions=set_field:%s->eth_src,"
             "set_field:%s->eth_dst,dec_ttl,resubmit(,%d)",
             NC_T_FORWARD, v->segment, rm, cidr_match(cm, sizeof cm, "nw_dst", v->remote[i]), rm,
             im, NC_T_FORWARD);
    }
    if (v->host || in < 0 || out < 0) {
        return;
    }
    /* This host serves it. Inside: a trusted port (no security groups; the instances' own groups
     * decide), whose sources are its address and the customer's networks. */
    flow(c->out,
         "table=%d,priority=110,in_port=%d,dl_src=%s,ip,nw_src=%s actions=set_field:%d->reg6,"
         "goto_table:%d",
         NC_T_CLASSIFY, in, im, nc_ip_str(v->inside_ip, a), v->segment, NC_T_FORWARD);
    for (size_t i = 0; i < v->n_remote; i++) {
        flow(c->out,
             "table=%d,priority=110,in_port=%d,dl_src=%s,ip%s actions=set_field:%d->reg6,"
             "goto_table:%d",
             NC_T_CLASSIFY, in, im, cidr_match(cm, sizeof cm, "nw_src", v->remote[i]), v->segment,
             NC_T_FORWARD);
    }
    flow(c->out,
         "table=%d,priority=110,in_port=%d,dl_src=%s,arp,arp_spa=%s actions=set_field:%d->reg6,"
         "goto_table:%d",
         NC_T_CLASSIFY, in, im, a, v->segment, NC_T_ARP);
    flow(c->out, "table=%d,priority=100,in_port=%d actions=drop", NC_T_CLASSIFY, in);
    flow(c->out, "table=%d,priority=110,reg7=%d actions=output:%d", NC_T_INGRESS, in, in);
    /* Outside: a host on the public network, bridged to the public port. */
    if (c->ext < 0) {
        return;
    }
    flow(c->out, "table=%d,priority=110,in_port=%d,dl_src=%s actions=output:%d", NC_T_CLASSIFY, out,
         om, c->ext);
    flow(c->out, "table=%d,priority=100,in_port=%d actions=drop", NC_T_CLASSIFY, out);
    flow(c->out, "table=%d,priority=110,in_port=%d,dl_dst=%s actions=output:%d", NC_T_CLASSIFY,
         c->ext, om, out);
    flow(c->out, "table=%d,priority=110,in_port=%d,arp,arp_tpa=%s actions=output:%d", NC_T_CLASSIFY,
         c->ext, nc_ip_str(v->outside_ip, a), out);
}

/* A remote-access endpoint (WireGuard, wg.h): like a VPN gateway, whose customer's network is
 * the client CIDR. Its inside address is the client CIDR's first host, not an address of the
 * VPC, so that ARP from its leg is answered for the VPC's ports and its sources are the client
 * CIDR. */
static void remote_access(struct ctx *c, const struct nc_remote_access *r)
{
    char in_name[64], out_name[64], im[18], om[18], rm[18], cm[48], a[16];
    uint8_t rmac[6];
    nc_mac_str(r->inside_mac, im);
    nc_mac_str(r->outside_mac, om);
    nc_router_mac(r->segment, rmac);
    nc_mac_str(rmac, rm);
    snprintf(in_name, sizeof in_name, "vpn-in:%s", r->id);
    snprintf(out_name, sizeof out_name, "vpn-out:%s", r->id);
    int in = r->host ? -1 : nc_ofmap_get(c->ports, in_name);
    int out = r->host ? -1 : nc_ofmap_get(c->ports, out_name);

    /* Every host: the client CIDR is routed to the endpoint's inside leg. */
    forward_to(c, r->segment, r->inside_mac, r->host, in);
    flow(c->out,
         "table=%d,priority=80,reg6=%d,dl_dst=%s,ip%s actions=set_field:%s->eth_src,"
         "set_field:%s->eth_dst,dec_ttl,resubmit(,%d)",
         NC_T_FORWARD, r->segment, rm, cidr_match(cm, sizeof cm, "nw_dst", r->client), rm, im,
         NC_T_FORWARD);
    if (r->host) {
        char name[48];
        tunnel_name(name, sizeof name, r->host);
        int tun = nc_ofmap_get(c->ports, name);
        if (tun >= 0) {
            flow(c->out,
                 "table=%d,priority=100,in_port=%d,tun_id=%d actions=set_field:%d->reg6,"
                 "goto_table:%d",
                 NC_T_CLASSIFY, tun, r->segment, r->segment, NC_T_FORWARD);
        }
        return;
    }
    if (in < 0 || out < 0) {
        return;
    }
    /* This host serves it. Inside: trusted (the instances' groups decide), its sources the
     * client CIDR (its own address among them); its ARP goes to the responder. */
    flow(c->out,
         "table=%d,priority=110,in_port=%d,dl_src=%s,ip%s actions=set_field:%d->reg6,"
         "goto_table:%d",
         NC_T_CLASSIFY, in, im, cidr_match(cm, sizeof cm, "nw_src", r->client), r->segment,
         NC_T_FORWARD);
    flow(c->out,
         "table=%d,priority=110,in_port=%d,dl_src=%s,arp,arp_spa=%s actions=set_field:%d->reg6,"
         "goto_table:%d",
         NC_T_CLASSIFY, in, im, nc_ip_str(r->inside_ip, a), r->segment, NC_T_ARP);
    flow(c->out, "table=%d,priority=100,in_port=%d actions=drop", NC_T_CLASSIFY, in);
    flow(c->out, "table=%d,priority=110,reg7=%d actions=output:%d", NC_T_INGRESS, in, in);
    /* Outside: a host on the public network, bridged to the public port. */
    if (c->ext < 0) {
        return;
    }
    flow(c->out, "table=%d,priority=110,in_port=%d,dl_src=%s actions=output:%d", NC_T_CLASSIFY, out,
         om, c->ext);
    flow(c->out, "table=%d,priority=100,in_port=%d actions=drop", NC_T_CLASSIFY, out);
    flow(c->out, "table=%d,priority=110,in_port=%d,dl_dst=%s actions=output:%d", NC_T_CLASSIFY,
         c->ext, om, out);
    flow(c->out, "table=%d,priority=110,in_port=%d,arp,arp_tpa=%s actions=output:%d", NC_T_CLASSIFY,
         c->ext, nc_ip_str(r->outside_ip, a), out);
}

/* The service port of network 'n' on this host (netctl/svc.h: DHCP and the metadata service in
 * a namespace of its own). It is trusted: what it sends goes straight to the port it is for,
 * and what the ports send to it (DHCP, 169.254.169.254) bypasses the security groups, as EC2's
 * do. */
static void service_port(struct ctx *c, const struct nc_network *n, int svc)
{
    char sm[18], sa[16], md[16];
    uint8_t smac[6];
    nc_service_mac(n->segment, smac);
    nc_mac_str(smac, sm);
    nc_ip_str(nc_service_ip(n), sa);
    nc_ip_str(NC_METADATA_IP, md);
    char seg_match[24];
    snprintf(seg_match, sizeof seg_match, "reg6=%d", n->segment);
    arp_reply(c, NC_T_ARP, 100, seg_match, smac, nc_service_ip(n));
    /* Guests with a link-local route ARP for the metadata address itself. */
    arp_reply(c, NC_T_ARP, 100, seg_match, smac, NC_METADATA_IP);
    flow(c->out,
         "table=%d,priority=110,in_port=%d,dl_src=%s,arp actions=set_field:%d->reg6,goto_table:%d",
         NC_T_CLASSIFY, svc, sm, n->segment, NC_T_ARP);
    flow(c->out, "table=%d,priority=100,in_port=%d actions=drop", NC_T_CLASSIFY, svc);
    struct nb_buf bcast = NB_BUF_INIT;
    for (size_t i = 0; i < c->st->n_ports; i++) {
        const struct nc_port *p = &c->st->ports[i];
        int ofport = p->host ? -1 : nc_ofmap_get(c->ports, p->id);
        if (p->segment != n->segment || ofport < 0 || ofport >= NC_NAT_ZONE_BASE) {
            continue;
        }
        char m[18], a[16];
        nc_mac_str(p->mac, m);
        nc_ip_str(p->ip, a);
        /* From the service port to this VM port (DHCP answers, metadata replies). */
        flow(c->out, "table=%d,priority=110,in_port=%d,dl_src=%s,dl_dst=%s actions=output:%d",
             NC_T_CLASSIFY, svc, sm, m, ofport);
        nb_buf_printf(&bcast, ",output:%d", ofport);
        /* DHCP from the port (its source may still be 0.0.0.0), and the metadata service. */
        flow(c->out,
             "table=%d,priority=115,in_port=%d,dl_src=%s,udp,tp_src=68,tp_dst=67 "
             "actions=output:%d",
             NC_T_CLASSIFY, ofport, m, svc);
        flow(c->out,
             "table=%d,priority=115,in_port=%d,dl_src=%s,ip,nw_src=%s,nw_dst=%s "
             "actions=set_field:%s->eth_dst,output:%d",
             NC_T_CLASSIFY, ofport, m, a, md, sm, svc);
        flow(c->out,
             "table=%d,priority=115,in_port=%d,dl_src=%s,ip,nw_src=%s,nw_dst=%s "
             "actions=set_field:%s->eth_dst,output:%d",
             NC_T_CLASSIFY, ofport, m, a, sa, sm, svc);
    }
    if (bcast.len) {
        /* DHCP answers to the broadcast address: every VM port of the network on this host. */
        flow(c->out,
             "table=%d,priority=110,in_port=%d,dl_src=%s,dl_dst=ff:ff:ff:ff:ff:ff,udp,tp_src=67 "
             "actions=%s",
             NC_T_CLASSIFY, svc, sm, bcast.data + 1);
    }
    nb_buf_free(&bcast);
}

size_t nc_compile(const struct nc_state *st, struct nc_ofmap *ports, struct nc_flows *out)
{
    struct ctx c = {.st = st, .ports = ports, .out = out, .ext = nc_ofmap_get(ports, "ext")};
    size_t missing = 0;
    nc_flows_clear(out);
    if (!st->has_public) {
        c.ext = -1;
    }

    /* Fixed flows of the pipeline: the conntrack steps and every table's default drop. */
    static const int tables[] = {NC_T_CLASSIFY, NC_T_ARP,     NC_T_EGRESS,     NC_T_EGRESS_CT,
                                 NC_T_FORWARD,  NC_T_INGRESS, NC_T_INGRESS_CT, NC_T_NAT_IN,
                                 NC_T_NAT_IN2,  NC_T_NAT_OUT};
    for (size_t i = 0; i < sizeof tables / sizeof *tables; i++) {
        flow(out, "table=%d,priority=0 actions=drop", tables[i]);
    }
    flow(out, "table=%d,priority=100,ip actions=ct(table=%d,zone=NXM_NX_REG5[0..15])", NC_T_EGRESS,
         NC_T_EGRESS_CT);
    for (int t = NC_T_EGRESS_CT; t <= NC_T_INGRESS_CT; t += NC_T_INGRESS_CT - NC_T_EGRESS_CT) {
        const char *pass = t == NC_T_EGRESS_CT ? "goto_table:20" : "output:NXM_NX_REG7[0..15]";
        flow(out, "table=%d,priority=300,ct_state=+inv+trk actions=drop", t);
        flow(out, "table=%d,priority=200,ct_state=+est+trk actions=%s", t, pass);
        flow(out, "table=%d,priority=200,ct_state=+rel+trk actions=%s", t, pass);
    }

    /* Networks: the routers' addresses answer ARP; the VPC's own addresses that match no port
     * are dropped rather than NATed. Tunnels bring the network's traffic in. */
    for (size_t i = 0; i < st->n_networks; i++) {
        const struct nc_network *n = &st->networks[i];
        char seg_match[24], rm[18], cm[48];
        uint8_t rmac[6];
        nc_router_mac(n->segment, rmac);
        snprintf(seg_match, sizeof seg_match, "reg6=%d", n->segment);
        for (size_t r = 0; r < n->n_routers; r++) {
            arp_reply(&c, NC_T_ARP, 100, seg_match, rmac, n->routers[r]);
        }
        flow(out, "table=%d,priority=75,reg6=%d,dl_dst=%s,ip%s actions=drop", NC_T_FORWARD,
             n->segment, nc_mac_str(rmac, rm), cidr_match(cm, sizeof cm, "nw_dst", n->cidr));
        char svc_name[32];
        snprintf(svc_name, sizeof svc_name, "svc:%d", n->segment);
        int svc = nc_ofmap_get(ports, svc_name);
        if (svc >= 0) {
            service_port(&c, n, svc);
        }
    }
    for (size_t i = 0; i < st->n_ports; i++) {
        const struct nc_port *p = &st->ports[i];
        char seg_match[24];
        snprintf(seg_match, sizeof seg_match, "reg6=%d", p->segment);
        arp_reply(&c, NC_T_ARP, 100, seg_match, p->mac, p->ip);
        int ofport = p->host ? -1 : nc_ofmap_get(ports, p->id);
        if (!p->host && (ofport < 0 || ofport >= NC_NAT_ZONE_BASE)) {
            missing++;
        }
        forward_to(&c, p->segment, p->mac, p->host, ofport);
        route_to(&c, p->segment, p->ip, p->mac);
        if (p->host) {
            /* The tunnel from that host carries this network. */
            char name[48];
            tunnel_name(name, sizeof name, p->host);
            int tun = nc_ofmap_get(ports, name);
            if (tun >= 0) {
                flow(out,
                     "table=%d,priority=100,in_port=%d,tun_id=%d actions=set_field:%d->reg6,"
                     "goto_table:%d",
                     NC_T_CLASSIFY, tun, p->segment, p->segment, NC_T_FORWARD);
            }
        } else if (ofport >= 0 && ofport < NC_NAT_ZONE_BASE) {
            local_port(&c, p, ofport);
            const struct nc_network *n = nc_state_network(st, p->segment);
            if (p->public_ip && c.ext >= 0 && n && n->internet_gateway && p->internet) {
                elastic_ip(&c, p);
            }
        }
    }
    for (size_t i = 0; i < st->n_vpns; i++) {
        vpn_gateway(&c, &st->vpns[i]);
        if (st->vpns[i].host) {
            char name[48];
            tunnel_name(name, sizeof name, st->vpns[i].host);
            int tun = nc_ofmap_get(ports, name);
            if (tun >= 0) {
                flow(out,
                     "table=%d,priority=100,in_port=%d,tun_id=%d actions=set_field:%d->reg6,"
                     "goto_table:%d",
                     NC_T_CLASSIFY, tun, st->vpns[i].segment, st->vpns[i].segment, NC_T_FORWARD);
            }
        }
    }
    for (size_t i = 0; i < st->n_ras; i++) {
        remote_access(&c, &st->ras[i]);
    }
    if (c.ext >= 0) {
        public_network(&c);
    }
    flows_finish(out);
    return missing;
}
