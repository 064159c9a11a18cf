/* Unit tests of nubo-netctl's desired-state parser (netctl/model.c) and flow compiler
 * (netctl/flows.c): what a port, a rule, a tunnel and an elastic IP become, that port ranges are
 * matched exactly, and that a one-rule change is a diff of a few flows, not a rebuild. The flows
 * run on a real Open vSwitch in tests/e2e/test_netctl_dataplane.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "flows.h"
#include "model.h"

#include "nubo/buf.h"
#include "nubo/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Two local ports (ofports 5 and 6) and one on host 10.250.0.12 in VPC segment 101; group
 * sg-a: SSH from anywhere, everything from its own members, every egress. 'extra_rule' is
 * spliced into sg-a's rules. */
static struct nc_state *sample(const char *extra_rule)
{
    char text[4096];
    snprintf(
        text, sizeof text,
        "{\"version\": 7, \"tunnel_ip\": \"10.250.0.11\","
        " \"public\": {\"cidr\": \"203.0.113.0/24\", \"gateway\": \"203.0.113.1\"},"
        " \"networks\": [{\"vpc_id\": \"vpc-0a\", \"segment\": 101, \"cidr\": \"10.0.0.0/16\","
        "   \"routers\": [\"10.0.1.1\"], \"internet_gateway\": true}],"
        " \"ports\": ["
        "  {\"id\": \"eni-05\", \"segment\": 101, \"mac\": \"02:00:00:00:00:05\","
        "   \"ip\": \"10.0.1.5\", \"groups\": [\"sg-a\"], \"public_ip\": \"203.0.113.7\","
        "   \"internet\": true},"
        "  {\"id\": \"eni-06\", \"segment\": 101, \"mac\": \"02:00:00:00:00:06\","
        "   \"ip\": \"10.0.1.6\", \"groups\": [\"sg-a\"]},"
        "  {\"id\": \"eni-07\", \"segment\": 101, \"mac\": \"02:00:00:00:00:07\","
        "   \"ip\": \"10.0.1.7\", \"host\": \"10.250.0.12\", \"groups\": [\"sg-a\"]}],"
        " \"groups\": [{\"id\": \"sg-a\", \"rules\": ["
        "  {\"direction\": \"ingress\", \"protocol\": \"tcp\", \"from_port\": 22, \"to_port\": 22,"
        "   \"cidr\": \"0.0.0.0/0\"},"
        "  {\"direction\": \"ingress\", \"protocol\": \"-1\", \"group\": \"sg-a\"},"
        "  {\"direction\": \"egress\", \"protocol\": \"-1\", \"cidr\": \"0.0.0.0/0\"}%s%s]}]}",
        extra_rule ? ", " : "", extra_rule ? extra_rule : "");
    struct nb_error err = {0};
    struct nc_state *st = nc_state_parse(text, strlen(text), &err);
    if (!st) {
        fail_msg("sample state does not parse: %s %s", err.msg, err.detail);
    }
    return st;
}

static void sample_ports(struct nc_ofmap *m)
{
    nc_ofmap_add(m, "eni-05", 5);
    nc_ofmap_add(m, "eni-06", 6);
    nc_ofmap_add(m, "tun:10.250.0.12", 9);
    nc_ofmap_add(m, "ext", 2);
}

static bool has_flow(const struct nc_flows *f, const char *needle)
{
    for (size_t i = 0; i < f->n; i++) {
        if (strstr(f->v[i].spec, needle)) {
            return true;
        }
    }
    return false;
}

static void parse_rejects_bad_states(void **state)
{
    static const char *const bad[] = {
        "",
        "[]",
        "{\"version\": 1, \"surprise\": 1}",
        "{\"version\": -5}",
        "{\"version\": 1, \"networks\": [{\"vpc_id\": \"vpc-1\", \"segment\": 9999, \"cidr\": "
        "\"10.0.0.0/16\"}]}",
        "{\"version\": 1, \"networks\": [{\"vpc_id\": \"vpc-1\", \"segment\": 5, \"cidr\": "
        "\"10.0.0.1/16\"}]}",
        /* a port outside its network, a multicast MAC, an unknown network */
        "{\"version\": 1, \"networks\": [{\"vpc_id\": \"vpc-1\", \"segment\": 5, \"cidr\": "
        "\"10.0.0.0/16\"}], \"ports\": [{\"id\": \"eni-1\", \"segment\": 5, \"mac\": "
        "\"02:00:00:00:00:01\", \"ip\": \"10.1.0.1\"}]}",
        "{\"version\": 1, \"networks\": [{\"vpc_id\": \"vpc-1\", \"segment\": 5, \"cidr\": "
        "\"10.0.0.0/16\"}], \"ports\": [{\"id\": \"eni-1\", \"segment\": 5, \"mac\": "
        "\"01:00:00:00:00:01\", \"ip\": \"10.0.0.9\"}]}",
        "{\"version\": 1, \"ports\": [{\"id\": \"eni-1\", \"segment\": 5, \"mac\": "
        "\"02:00:00:00:00:01\", \"ip\": \"10.0.0.9\"}]}",
        /* a rule with both a CIDR and a group; a tcp rule without ports; a PSK that could
         * break out of a configuration file */
        "{\"version\": 1, \"groups\": [{\"id\": \"sg-1\", \"rules\": [{\"direction\": \"ingress\", "
        "\"protocol\": \"-1\", \"cidr\": \"0.0.0.0/0\", \"group\": \"sg-2\"}]}]}",
        "{\"version\": 1, \"groups\": [{\"id\": \"sg-1\", \"rules\": [{\"direction\": \"ingress\", "
        "\"protocol\": \"tcp\", \"cidr\": \"0.0.0.0/0\"}]}]}",
        "{\"version\": 1, \"public\": {\"cidr\": \"203.0.113.0/24\", \"gateway\": \"203.0.113.1\"},"
        " \"networks\": [{\"vpc_id\": \"vpc-1\", \"segment\": 5, \"cidr\": \"10.0.0.0/16\"}],"
        " \"vpn_connections\": [{\"id\": \"vpn-1\", \"segment\": 5, \"outside_ip\": "
        "\"203.0.113.9\","
        " \"inside_ip\": \"10.0.0.3\", \"peer_ip\": \"198.51.100.1\", \"psk\": "
        "\"abc\\\"}\\nx=1\"}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct nb_error err = {0};
        struct nc_state *st = nc_state_parse(bad[i], strlen(bad[i]), &err);
        if (st) {
            fail_msg("bad state %zu was accepted: %s", i, bad[i]);
        }
        assert_true(err.msg[0] != '\0');
    }
}

static void compile_ports_rules_tunnels(void **state)
{
    struct nc_state *st = sample(NULL);
    struct nc_ofmap m = {0};
    sample_ports(&m);
    struct nc_flows f = {0};
    assert_int_equal(nc_compile(st, &m, &f), 0);
    /* anti-spoofing: the port's own MAC and IP only */
    assert_true(has_flow(&f, "in_port=5,dl_src=02:00:00:00:00:05,ip,nw_src=10.0.1.5 "));
    assert_true(has_flow(&f, "priority=100,in_port=5 actions=drop"));
    /* the remote port is behind tunnel 9 with key 101; the tunnel's traffic is classified */
    assert_true(has_flow(&f, "reg6=101,dl_dst=02:00:00:00:00:07 actions=set_field:101->tun_id,"
                             "output:9"));
    assert_true(has_flow(&f, "in_port=9,tun_id=101 actions=set_field:101->reg6"));
    /* SSH from anywhere into port 5; its own group's members (local and remote) for all */
    assert_true(has_flow(&f, "ct_state=+new+trk,reg7=5,tcp,tp_dst=22 "));
    assert_true(has_flow(&f, "ct_state=+new+trk,reg7=5,ip,nw_src=10.0.1.6 "));
    assert_true(has_flow(&f, "ct_state=+new+trk,reg7=6,ip,nw_src=10.0.1.7 "));
    /* ARP answered for every port and the router */
    assert_true(has_flow(&f, "arp_tpa=10.0.1.7 "));
    assert_true(has_flow(&f, "arp_tpa=10.0.1.1 "));
    /* the elastic IP of port 5, in and out */
    assert_true(has_flow(&f, "in_port=2,ip,nw_dst=203.0.113.7 actions=ct(zone=61541,nat"));
    assert_true(has_flow(&f, "nat(dst=10.0.1.5)"));
    assert_true(has_flow(&f, "nat(src=203.0.113.7)"));
    /* no flow at all for port 6's elastic IP: it has none */
    assert_false(has_flow(&f, "nat(dst=10.0.1.6)"));
    /* sorted by cookie, no duplicates, every cookie tagged */
    for (size_t i = 0; i < f.n; i++) {
        assert_int_equal(f.v[i].cookie & NC_COOKIE_MASK, NC_COOKIE_TAG);
        if (i) {
            assert_true(f.v[i - 1].cookie < f.v[i].cookie);
        }
    }
    /* A port not plugged yet is counted and gets no classify flow. */
    struct nc_ofmap m2 = {0};
    nc_ofmap_add(&m2, "eni-05", 5);
    struct nc_flows f2 = {0};
    assert_int_equal(nc_compile(st, &m2, &f2), 1);
    assert_false(has_flow(&f2, "in_port=6,"));
    nc_flows_clear(&f2);
    nc_ofmap_clear(&m2);
    nc_flows_clear(&f);
    nc_ofmap_clear(&m);
    nc_state_free(st);
}

/* Whether 'port' matches one of the tp_dst matches of rule flows for ofport 5 in 'f'. */
static bool port_allowed(const struct nc_flows *f, unsigned port)
{
    for (size_t i = 0; i < f->n; i++) {
        const char *p = strstr(f->v[i].spec, "reg7=5,udp,tp_dst=");
        if (!p) {
            continue;
        }
        p += strlen("reg7=5,udp,tp_dst=");
        unsigned value, mask = 0xffff;
        if (sscanf(p, "0x%x/0x%x", &value, &mask) != 2 && sscanf(p, "%u", &value) != 1) {
            fail_msg("unparsable port match in %s", f->v[i].spec);
        }
        if ((port & mask) == value) {
            return true;
        }
    }
    return false;
}

static void port_ranges_exact(void **state)
{
    static const int ranges[][2] = {{1000, 1999}, {0, 0}, {65535, 65535}, {1, 65534}, {8080, 8081}};
    for (size_t r = 0; r < sizeof ranges / sizeof *ranges; r++) {
        char rule[160];
        snprintf(rule, sizeof rule,
                 "{\"direction\": \"ingress\", \"protocol\": \"udp\", \"from_port\": %d, "
                 "\"to_port\": %d, \"cidr\": \"10.9.0.0/16\"}",
                 ranges[r][0], ranges[r][1]);
        struct nc_state *st = sample(rule);
        struct nc_ofmap m = {0};
        sample_ports(&m);
        struct nc_flows f = {0};
        nc_compile(st, &m, &f);
        for (unsigned p = 0; p <= 65535; p++) {
            bool in = (int)p >= ranges[r][0] && (int)p <= ranges[r][1];
            if (port_allowed(&f, p) != in) {
                fail_msg("range %d-%d: port %u %s", ranges[r][0], ranges[r][1], p,
                         in ? "not matched" : "matched");
            }
        }
        nc_flows_clear(&f);
        nc_ofmap_clear(&m);
        nc_state_free(st);
    }
}

static void one_rule_is_a_small_diff(void **state)
{
    struct nc_state *a = sample(NULL);
    struct nc_state *b = sample("{\"direction\": \"ingress\", \"protocol\": \"tcp\", "
                                "\"from_port\": 443, \"to_port\": 443, \"cidr\": \"0.0.0.0/0\"}");
    struct nc_ofmap m = {0};
    sample_ports(&m);
    struct nc_flows fa = {0}, fb = {0};
    nc_compile(a, &m, &fa);
    nc_compile(b, &m, &fb);
    struct nb_buf bundle = NB_BUF_INIT;
    size_t adds, dels;
    assert_int_equal(nc_diff(&fa, &fa, &bundle, &adds, &dels), 0);
    assert_int_equal(bundle.len, 0);
    /* One flow per local member port (5 and 6), nothing deleted. */
    assert_int_equal(nc_diff(&fa, &fb, &bundle, &adds, &dels), 2);
    assert_int_equal(adds, 2);
    assert_int_equal(dels, 0);
    assert_non_null(strstr(bundle.data, "reg7=5,tcp,tp_dst=443 "));
    assert_non_null(strstr(bundle.data, "add cookie=0x6e"));
    nb_buf_reset(&bundle);
    /* And back: two deletions by cookie. */
    assert_int_equal(nc_diff(&fb, &fa, &bundle, &adds, &dels), 2);
    assert_int_equal(dels, 2);
    assert_non_null(strstr(bundle.data, "delete cookie=0x6e"));
    assert_null(strstr(bundle.data, "add "));
    nb_buf_free(&bundle);
    nc_flows_clear(&fa);
    nc_flows_clear(&fb);
    nc_ofmap_clear(&m);
    nc_state_free(a);
    nc_state_free(b);
}

static void installed_flows_from_a_dump(void **state)
{
    const char *dump =
        " cookie=0x6e00000000000005, duration=1.2s, table=0, n_packets=0, priority=0 actions=drop\n"
        " cookie=0x1234, duration=1.2s, table=0, priority=5 actions=drop\n"
        " cookie=0x6e00000000000001, duration=1.2s, table=5, priority=0 actions=drop\n"
        " cookie=0x6f00000000000001, duration=1.2s, table=43, priority=100 actions=output:2\n";
    struct nc_flows f = {0};
    assert_int_equal(nc_flows_from_dump(dump, &f), 2);
    assert_true(f.v[0].cookie == 0x6e00000000000001ull);
    assert_true(f.v[1].cookie == 0x6e00000000000005ull);
    /* Everything installed but not wanted is deleted by cookie. */
    struct nc_flows none = {0};
    struct nb_buf bundle = NB_BUF_INIT;
    size_t adds, dels;
    nc_diff(&f, &none, &bundle, &adds, &dels);
    assert_int_equal(dels, 2);
    assert_string_equal(bundle.data, "delete cookie=0x6e00000000000001/-1\n"
                                     "delete cookie=0x6e00000000000005/-1\n");
    nb_buf_free(&bundle);
    nc_flows_clear(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_rejects_bad_states),
        cmocka_unit_test(compile_ports_rules_tunnels),
        cmocka_unit_test(port_ranges_exact),
        cmocka_unit_test(one_rule_is_a_small_diff),
        cmocka_unit_test(installed_flows_from_a_dump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
