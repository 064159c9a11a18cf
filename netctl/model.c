/* Parsing and checking the desired network state of a host (model.h). */
#include "model.h"

#include "nubo/arena.h"
#include "nubo/error.h"
#include "nubo/json.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

int nc_parse_ip(const char *s, uint32_t *out)
{
    struct in_addr a;
    if (!s || inet_pton(AF_INET, s, &a) != 1) {
        return -1;
    }
    *out = ntohl(a.s_addr);
    return 0;
}

int nc_parse_cidr(const char *s, struct nc_cidr *out)
{
    char ip[16];
    const char *slash = s ? strchr(s, '/') : NULL;
    if (!slash || slash - s >= (long)sizeof ip) {
        return -1;
    }
    memcpy(ip, s, (size_t)(slash - s));
    ip[slash - s] = '\0';
    char *end;
    long len = strtol(slash + 1, &end, 10);
    if (end == slash + 1 || *end || len < 0 || len > 32 || nc_parse_ip(ip, &out->addr) < 0) {
        return -1;
    }
    uint32_t mask = len ? ~0u << (32 - len) : 0;
    if (out->addr & ~mask) {
        return -1;
    }
    out->len = (int)len;
    return 0;
}

int nc_parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    char tail;
    if (!s || strlen(s) != 17 ||
        sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) !=
            6) {
        return -1;
    }
    for (int i = 0; i < 6; i++) {
        mac[i] = (uint8_t)v[i];
    }
    /* A port's MAC must be unicast. */
    return (mac[0] & 1) ? -1 : 0;
}

char *nc_ip_str(uint32_t ip, char out[16])
{
    snprintf(out, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
    return out;
}

char *nc_mac_str(const uint8_t mac[6], char out[18])
{
    snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
             mac[5]);
    return out;
}

bool nc_cidr_contains(struct nc_cidr c, uint32_t ip)
{
    uint32_t mask = c.len ? ~0u << (32 - c.len) : 0;
    return (ip & mask) == c.addr;
}

void nc_router_mac(int segment, uint8_t mac[6])
{
    /* 02:6e:62 ("nb", locally administered), 0x00, then the segment. */
    const uint8_t m[6] = {0x02, 0x6e, 0x62, 0x00, (uint8_t)(segment >> 8), (uint8_t)segment};
    memcpy(mac, m, 6);
}

void nc_service_mac(int segment, uint8_t mac[6])
{
    const uint8_t m[6] = {0x02, 0x6e, 0x66, 0x00, (uint8_t)(segment >> 8), (uint8_t)segment};
    memcpy(mac, m, 6);
}

uint32_t nc_service_ip(const struct nc_network *n)
{
    return n->cidr.addr + 2;
}

void nc_public_mac(uint32_t tunnel_ip, uint8_t mac[6])
{
    const uint8_t m[6] = {0x02,
                          0x6e,
                          0x63,
                          (uint8_t)(tunnel_ip >> 16),
                          (uint8_t)(tunnel_ip >> 8),
                          (uint8_t)tunnel_ip};
    memcpy(mac, m, 6);
}

/* --- parsing --------------------------------------------------------------------------------- */

static int get_id(const json_t *o, const char *key, const char *prefix, char out[NC_ID_MAX],
                  struct nb_error *err)
{
    const char *s;
    if (nb_json_get_string(o, key, true, &s, err) < 0) {
        return -1;
    }
    size_t plen = strlen(prefix), len = strlen(s);
    if (strncmp(s, prefix, plen) || len <= plen || len >= NC_ID_MAX ||
        strspn(s + plen, "0123456789abcdef") != len - plen) {
        nb_error_set(err, NB_ERR_INVALID, "\"%s\" must be an id \"%s...\" (got \"%.40s\")", key,
                     prefix, s);
        return -1;
    }
    memcpy(out, s, len + 1);
    return 0;
}

static int get_ip(const json_t *o, const char *key, bool required, uint32_t *out,
                  struct nb_error *err)
{
    const char *s;
    int rc = nb_json_get_string(o, key, required, &s, err);
    if (rc <= 0) {
        return rc;
    }
    if (nc_parse_ip(s, out) < 0) {
        nb_error_set(err, NB_ERR_INVALID, "\"%s\" must be an IPv4 address (got \"%.40s\")", key, s);
        return -1;
    }
    return 1;
}

static int get_cidr(const json_t *o, const char *key, struct nc_cidr *out, struct nb_error *err)
{
    const char *s;
    if (nb_json_get_string(o, key, true, &s, err) < 0) {
        return -1;
    }
    if (nc_parse_cidr(s, out) < 0) {
        nb_error_set(err, NB_ERR_INVALID, "\"%s\" must be an IPv4 CIDR block (got \"%.40s\")", key,
                     s);
        return -1;
    }
    return 0;
}

static int cidr_of_json(const json_t *v, const char *what, struct nc_cidr *out,
                        struct nb_error *err)
{
    if (!json_is_string(v) || nc_parse_cidr(json_string_value(v), out) < 0) {
        nb_error_set(err, NB_ERR_INVALID, "%s must hold IPv4 CIDR blocks", what);
        return -1;
    }
    return 0;
}

static int get_segment(const json_t *o, int *out, struct nb_error *err)
{
    long long v;
    if (nb_json_get_int(o, "segment", true, 1, 4094, &v, err) < 0) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* Array 'key' of 'o' (optional: absent is empty); sets '*n' and returns the array or NULL. */
static json_t *get_list(const json_t *o, const char *key, size_t *n, struct nb_error *err, int *rc)
{
    json_t *a = NULL;
    *rc = nb_json_get_array(o, key, false, &a, err) < 0 ? -1 : 0;
    *n = a ? json_array_size(a) : 0;
    return a;
}

static int parse_rule(const json_t *o, struct nc_rule *r, struct nb_error *err)
{
    static const char *const fields[] = {"direction", "protocol", "from_port", "to_port",
                                         "cidr",      "group",    NULL};
    const char *dir, *proto;
    long long from = -1, to = -1;
    if (!json_is_object(o)) {
        nb_error_set(err, NB_ERR_INVALID, "a rule must be an object");
        return -1;
    }
    if (nb_json_check_fields(o, fields, err) < 0 ||
        nb_json_get_string(o, "direction", true, &dir, err) < 0 ||
        nb_json_get_string(o, "protocol", true, &proto, err) < 0 ||
        nb_json_get_int(o, "from_port", false, -1, 65535, &from, err) < 0 ||
        nb_json_get_int(o, "to_port", false, -1, 65535, &to, err) < 0) {
        return -1;
    }
    if (!strcmp(dir, "ingress") || !strcmp(dir, "egress")) {
        r->ingress = dir[0] == 'i';
    } else {
        nb_error_set(err, NB_ERR_INVALID, "\"direction\" must be ingress or egress");
        return -1;
    }
    if (!strcmp(proto, "-1")) {
        r->proto = NC_PROTO_ALL;
    } else if (!strcmp(proto, "tcp") || !strcmp(proto, "udp")) {
        r->proto = proto[0] == 't' ? NC_PROTO_TCP : NC_PROTO_UDP;
        if (from < 0 || to < from) {
            nb_error_set(err, NB_ERR_INVALID, "a %s rule needs 0 <= from_port <= to_port", proto);
            return -1;
        }
    } else if (!strcmp(proto, "icmp")) {
        r->proto = NC_PROTO_ICMP;
        if (from > 255 || to > 255) {
            nb_error_set(err, NB_ERR_INVALID, "an icmp rule's type and code are at most 255");
            return -1;
        }
    } else {
        nb_error_set(err, NB_ERR_INVALID, "\"protocol\" must be -1, tcp, udp or icmp");
        return -1;
    }
    r->from_port = (int)from;
    r->to_port = (int)to;
    bool has_cidr = json_object_get(o, "cidr") != NULL, has_group = json_object_get(o, "group");
    if (has_cidr == has_group) {
        nb_error_set(err, NB_ERR_INVALID, "a rule has either \"cidr\" or \"group\"");
        return -1;
    }
    return has_cidr ? get_cidr(o, "cidr", &r->cidr, err) : get_id(o, "group", "sg-", r->group, err);
}

static int parse_network(struct nc_state *st, const json_t *o, struct nc_network *n,
                         struct nb_error *err)
{
    static const char *const fields[] = {"vpc_id",           "segment", "cidr", "routers",
                                         "internet_gateway", "routes",  NULL};
    int rc;
    if (!json_is_object(o)) {
        nb_error_set(err, NB_ERR_INVALID, "a network must be an object");
        return -1;
    }
    if (nb_json_check_fields(o, fields, err) < 0 || get_id(o, "vpc_id", "vpc-", n->vpc_id, err) ||
        get_segment(o, &n->segment, err) < 0 || get_cidr(o, "cidr", &n->cidr, err) < 0 ||
        nb_json_get_bool(o, "internet_gateway", false, &n->internet_gateway, err) < 0) {
        return -1;
    }
    json_t *a = get_list(o, "routers", &n->n_routers, err, &rc);
    if (rc < 0) {
        return -1;
    }
    n->routers = nb_arena_zalloc(st->arena, (n->n_routers + 1) * sizeof *n->routers);
    for (size_t i = 0; i < n->n_routers; i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_string(v) || nc_parse_ip(json_string_value(v), &n->routers[i]) < 0 ||
            !nc_cidr_contains(n->cidr, n->routers[i])) {
            nb_error_set(err, NB_ERR_INVALID, "\"routers\" must hold addresses of the VPC's CIDR");
            return -1;
        }
    }
    a = get_list(o, "routes", &n->n_routes, err, &rc);
    if (rc < 0) {
        return -1;
    }
    n->routes = nb_arena_zalloc(st->arena, (n->n_routes + 1) * sizeof *n->routes);
    for (size_t i = 0; i < n->n_routes; i++) {
        json_t *r = json_array_get(a, i);
        static const char *const rfields[] = {"destination", "target", NULL};
        const char *t;
        if (!json_is_object(r)) {
            nb_error_set(err, NB_ERR_INVALID, "a route must be an object");
            return -1;
        }
        if (nb_json_check_fields(r, rfields, err) < 0 ||
            get_cidr(r, "destination", &n->routes[i].dest, err) < 0 ||
            nb_json_get_string(r, "target", true, &t, err) < 0) {
            return -1;
        }
        if ((strncmp(t, "igw-", 4) && strncmp(t, "vgw-", 4)) || strlen(t) >= NC_ID_MAX) {
            nb_error_set(err, NB_ERR_INVALID, "a route's target must be igw-... or vgw-...");
            return -1;
        }
        strcpy(n->routes[i].target, t);
    }
    return 0;
}

static int parse_port(struct nc_state *st, const json_t *o, struct nc_port *p, struct nb_error *err)
{
    static const char *const fields[] = {"id",     "segment",   "mac",      "ip", "host",
                                         "groups", "public_ip", "internet", NULL};
    const char *mac;
    int rc;
    if (!json_is_object(o)) {
        nb_error_set(err, NB_ERR_INVALID, "a port must be an object");
        return -1;
    }
    if (nb_json_check_fields(o, fields, err) < 0 || get_id(o, "id", "eni-", p->id, err) < 0 ||
        get_segment(o, &p->segment, err) < 0 || nb_json_get_string(o, "mac", true, &mac, err) < 0 ||
        get_ip(o, "ip", true, &p->ip, err) < 0) {
        return -1;
    }
    if (nc_parse_mac(mac, p->mac) < 0) {
        nb_error_set(err, NB_ERR_INVALID, "\"mac\" must be a unicast MAC address aa:bb:...");
        return -1;
    }
    json_t *h = json_object_get(o, "host");
    if (h && !json_is_null(h) && get_ip(o, "host", true, &p->host, err) < 0) {
        return -1;
    }
    json_t *pub = json_object_get(o, "public_ip");
    if (pub && !json_is_null(pub) && get_ip(o, "public_ip", true, &p->public_ip, err) < 0) {
        return -1;
    }
    if (nb_json_get_bool(o, "internet", false, &p->internet, err) < 0) {
        return -1;
    }
    json_t *a = get_list(o, "groups", &p->n_groups, err, &rc);
    if (rc < 0) {
        return -1;
    }
    p->groups = nb_arena_zalloc(st->arena, (p->n_groups + 1) * sizeof *p->groups);
    for (size_t i = 0; i < p->n_groups; i++) {
        const char *g = json_string_value(json_array_get(a, i));
        if (!g || strncmp(g, "sg-", 3) || strlen(g) >= NC_ID_MAX) {
            nb_error_set(err, NB_ERR_INVALID, "\"groups\" must hold security group ids");
            return -1;
        }
        p->groups[i] = nb_arena_strdup(st->arena, g);
    }
    return 0;
}

static int parse_group(struct nc_state *st, const json_t *o, struct nc_group *g,
                       struct nb_error *err)
{
    static const char *const fields[] = {"id", "rules", NULL};
    int rc;
    if (!json_is_object(o)) {
        nb_error_set(err, NB_ERR_INVALID, "a group must be an object");
        return -1;
    }
    if (nb_json_check_fields(o, fields, err) < 0 || get_id(o, "id", "sg-", g->id, err) < 0) {
        return -1;
    }
    json_t *a = get_list(o, "rules", &g->n_rules, err, &rc);
    if (rc < 0) {
        return -1;
    }
    g->rules = nb_arena_zalloc(st->arena, (g->n_rules + 1) * sizeof *g->rules);
    for (size_t i = 0; i < g->n_rules; i++) {
        if (parse_rule(json_array_get(a, i), &g->rules[i], err) < 0) {
            nb_error_detail(err, "in the rules of %s", g->id);
            return -1;
        }
    }
    return 0;
}

/* Derives a VPN gateway's two MACs from its id, so every host computes the same ones. */
static void vpn_macs(struct nc_vpn *v)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *c = v->id; *c; c++) {
        h = (h ^ (uint8_t)*c) * 16777619u;
    }
    const uint8_t in[6] = {0x02, 0x6e, 0x64, (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)h};
    memcpy(v->inside_mac, in, 6);
    memcpy(v->outside_mac, in, 6);
    v->outside_mac[2] = 0x65;
}

static int parse_vpn(struct nc_state *st, const json_t *o, struct nc_vpn *v, struct nb_error *err)
{
    static const char *const fields[] = {"id",  "segment", "outside_ip",   "inside_ip", "peer_ip",
                                         "psk", "host",    "remote_cidrs", NULL};
    const char *psk;
    int rc;
    if (!json_is_object(o)) {
        nb_error_set(err, NB_ERR_INVALID, "a VPN connection must be an object");
        return -1;
    }
    if (nb_json_check_fields(o, fields, err) < 0 || get_id(o, "id", "vpn-", v->id, err) < 0 ||
        get_segment(o, &v->segment, err) < 0 ||
        get_ip(o, "outside_ip", true, &v->outside_ip, err) < 0 ||
        get_ip(o, "inside_ip", true, &v->inside_ip, err) < 0 ||
        get_ip(o, "peer_ip", true, &v->peer_ip, err) < 0 ||
        nb_json_get_string(o, "psk", true, &psk, err) < 0) {
        return -1;
    }
    size_t plen = strlen(psk);
    if (plen < 8 || plen > 64 ||
        strspn(psk, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._") != plen) {
        nb_error_set(err, NB_ERR_INVALID, "\"psk\" must be 8 to 64 characters of [A-Za-z0-9._]");
        return -1;
    }
    memcpy(v->psk, psk, plen + 1);
    json_t *h = json_object_get(o, "host");
    if (h && !json_is_null(h) && get_ip(o, "host", true, &v->host, err) < 0) {
        return -1;
    }
    json_t *a = get_list(o, "remote_cidrs", &v->n_remote, err, &rc);
    if (rc < 0) {
        return -1;
    }
    v->remote = nb_arena_zalloc(st->arena, (v->n_remote + 1) * sizeof *v->remote);
    for (size_t i = 0; i < v->n_remote; i++) {
        if (cidr_of_json(json_array_get(a, i), "\"remote_cidrs\"", &v->remote[i], err) < 0) {
            return -1;
        }
    }
    vpn_macs(v);
    return 0;
}

/* A WireGuard key: the base64 of 32 bytes (43 characters, the last of them carrying 4 bits, and
 * one '='). */
static bool wg_key_ok(const char *k)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    return k && strlen(k) == NC_WG_KEY_LEN && strspn(k, b64) == NC_WG_KEY_LEN - 1 &&
           k[NC_WG_KEY_LEN - 1] == '=' && (strchr(b64, k[42]) - b64) % 4 == 0;
}

static int parse_ra_peer(const json_t *o, struct nc_ra_peer *p, struct nb_error *err)
{
    static const char *const fields[] = {"public_key", "ip", NULL};
    const char *key;
    if (!json_is_object(o) || nb_json_check_fields(o, fields, err) < 0 ||
        nb_json_get_string(o, "public_key", true, &key, err) < 0 ||
        get_ip(o, "ip", true, &p->ip, err) < 0) {
        if (!err->msg[0]) {
            nb_error_set(err, NB_ERR_INVALID, "a peer must be an object");
        }
        return -1;
    }
    if (!wg_key_ok(key)) {
        nb_error_set(err, NB_ERR_INVALID, "a peer's \"public_key\" must be a WireGuard key");
        return -1;
    }
    memcpy(p->public_key, key, NC_WG_KEY_LEN + 1);
    return 0;
}

static int parse_ra(struct nc_state *st, const json_t *o, struct nc_remote_access *r,
                    struct nb_error *err)
{
    static const char *const fields[] = {"id",          "segment",     "outside_ip",  "inside_ip",
                                         "client_cidr", "listen_port", "private_key", "host",
                                         "peers",       NULL};
    long long port;
    int rc;
    if (!json_is_object(o)) {
        nb_error_set(err, NB_ERR_INVALID, "a remote-access endpoint must be an object");
        return -1;
    }
    if (nb_json_check_fields(o, fields, err) < 0 || get_id(o, "id", "rae-", r->id, err) < 0 ||
        get_segment(o, &r->segment, err) < 0 ||
        get_ip(o, "outside_ip", true, &r->outside_ip, err) < 0 ||
        get_ip(o, "inside_ip", true, &r->inside_ip, err) < 0 ||
        get_cidr(o, "client_cidr", &r->client, err) < 0 ||
        nb_json_get_int(o, "listen_port", true, 1, 65535, &port, err) < 0) {
        return -1;
    }
    r->listen_port = (int)port;
    json_t *h = json_object_get(o, "host");
    if (h && !json_is_null(h) && get_ip(o, "host", true, &r->host, err) < 0) {
        return -1;
    }
    const char *key = NULL;
    if (nb_json_get_string(o, "private_key", !r->host, &key, err) < 0) {
        return -1;
    }
    if (key && !wg_key_ok(key)) {
        nb_error_set(err, NB_ERR_INVALID, "\"private_key\" must be a WireGuard key");
        return -1;
    }
    if (key) {
        memcpy(r->private_key, key, NC_WG_KEY_LEN + 1);
    }
    if (!nc_cidr_contains(r->client, r->inside_ip)) {
        nb_error_set(err, NB_ERR_INVALID, "\"inside_ip\" must be in \"client_cidr\"");
        return -1;
    }
    json_t *a = get_list(o, "peers", &r->n_peers, err, &rc);
    if (rc < 0) {
        return -1;
    }
    r->peers = nb_arena_zalloc(st->arena, (r->n_peers + 1) * sizeof *r->peers);
    for (size_t i = 0; i < r->n_peers; i++) {
        if (parse_ra_peer(json_array_get(a, i), &r->peers[i], err) < 0) {
            return -1;
        }
        if (!nc_cidr_contains(r->client, r->peers[i].ip) || r->peers[i].ip == r->inside_ip) {
            nb_error_set(err, NB_ERR_INVALID, "a peer's \"ip\" must be a client address");
            return -1;
        }
    }
    /* The MACs: like a VPN gateway's, from the id, with other prefixes. */
    uint32_t hash = 2166136261u;
    for (const char *c = r->id; *c; c++) {
        hash = (hash ^ (uint8_t)*c) * 16777619u;
    }
    const uint8_t in[6] = {0x02,         0x6e, 0x67, (uint8_t)(hash >> 16), (uint8_t)(hash >> 8),
                           (uint8_t)hash};
    memcpy(r->inside_mac, in, 6);
    memcpy(r->outside_mac, in, 6);
    r->outside_mac[2] = 0x68;
    return 0;
}

#define PARSE_LIST(st, root, key, field, count, fn)                                                \
    do {                                                                                           \
        int rc_;                                                                                   \
        json_t *a_ = get_list(root, key, &(st)->count, err, &rc_);                                 \
        if (rc_ < 0) {                                                                             \
            goto fail;                                                                             \
        }                                                                                          \
        (st)->field = nb_arena_zalloc((st)->arena, ((st)->count + 1) * sizeof *(st)->field);       \
        for (size_t i_ = 0; i_ < (st)->count; i_++) {                                              \
            if (fn(st, json_array_get(a_, i_), &(st)->field[i_], err) < 0) {                       \
                nb_error_detail(err, "in \"%s\" item %zu", key, i_);                               \
                goto fail;                                                                         \
            }                                                                                      \
        }                                                                                          \
    } while (0)

struct nc_state *nc_state_parse(const char *text, size_t len, struct nb_error *err)
{
    static const char *const fields[] = {"version",         "tunnel_ip",     "public",
                                         "networks",        "ports",         "groups",
                                         "vpn_connections", "remote_access", NULL};
    json_t *root = nb_json_parse_object(text, len, err);
    if (!root) {
        return NULL;
    }
    struct nc_state *st = NULL;
    struct nb_arena *arena = nb_arena_new(16384);
    st = nb_arena_zalloc(arena, sizeof *st);
    st->arena = arena;
    json_t *pub = NULL;
    if (nb_json_check_fields(root, fields, err) < 0 ||
        nb_json_get_int(root, "version", true, 0, INT64_MAX, &st->version, err) < 0) {
        goto fail;
    }
    json_t *tip = json_object_get(root, "tunnel_ip");
    if (tip && !json_is_null(tip) && get_ip(root, "tunnel_ip", true, &st->tunnel_ip, err) < 0) {
        goto fail;
    }
    pub = json_object_get(root, "public");
    if (pub && !json_is_null(pub)) {
        static const char *const pfields[] = {"cidr", "gateway", NULL};
        if (!json_is_object(pub) || nb_json_check_fields(pub, pfields, err) < 0 ||
            get_cidr(pub, "cidr", &st->public_cidr, err) < 0 ||
            get_ip(pub, "gateway", true, &st->public_gateway, err) < 0) {
            if (!err->msg[0]) {
                nb_error_set(err, NB_ERR_INVALID, "\"public\" must be an object");
            }
            goto fail;
        }
        st->has_public = true;
    }
    PARSE_LIST(st, root, "networks", networks, n_networks, parse_network);
    PARSE_LIST(st, root, "ports", ports, n_ports, parse_port);
    PARSE_LIST(st, root, "groups", groups, n_groups, parse_group);
    PARSE_LIST(st, root, "vpn_connections", vpns, n_vpns, parse_vpn);
    PARSE_LIST(st, root, "remote_access", ras, n_ras, parse_ra);

    /* Cross-checks: every port and VPN belongs to a listed network and stays inside its CIDR. */
    for (size_t i = 0; i < st->n_ports; i++) {
        const struct nc_network *n = nc_state_network(st, st->ports[i].segment);
        if (!n || !nc_cidr_contains(n->cidr, st->ports[i].ip)) {
            nb_error_set(err, NB_ERR_INVALID, "port %s is not in a listed network's CIDR",
                         st->ports[i].id);
            goto fail;
        }
    }
    for (size_t i = 0; i < st->n_vpns; i++) {
        const struct nc_network *n = nc_state_network(st, st->vpns[i].segment);
        if (!n || !nc_cidr_contains(n->cidr, st->vpns[i].inside_ip) || !st->has_public) {
            nb_error_set(err, NB_ERR_INVALID,
                         "VPN connection %s needs a listed network and a public network",
                         st->vpns[i].id);
            goto fail;
        }
    }
    for (size_t i = 0; i < st->n_ras; i++) {
        const struct nc_remote_access *r = &st->ras[i];
        const struct nc_network *n = nc_state_network(st, r->segment);
        if (!n || !st->has_public || nc_cidr_contains(n->cidr, r->client.addr) ||
            nc_cidr_contains(r->client, n->cidr.addr)) {
            nb_error_set(err, NB_ERR_INVALID,
                         "remote-access endpoint %s needs a listed network that its client CIDR "
                         "does not overlap, and a public network",
                         r->id);
            goto fail;
        }
    }
    json_decref(root);
    return st;

fail:
    json_decref(root);
    nb_arena_free(arena);
    return NULL;
}

void nc_state_free(struct nc_state *st)
{
    if (st) {
        nb_arena_free(st->arena);
    }
}

const struct nc_network *nc_state_network(const struct nc_state *st, int segment)
{
    for (size_t i = 0; i < st->n_networks; i++) {
        if (st->networks[i].segment == segment) {
            return &st->networks[i];
        }
    }
    return NULL;
}

const struct nc_group *nc_state_group(const struct nc_state *st, const char *id)
{
    for (size_t i = 0; i < st->n_groups; i++) {
        if (!strcmp(st->groups[i].id, id)) {
            return &st->groups[i];
        }
    }
    return NULL;
}
