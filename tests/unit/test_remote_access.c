/* Unit tests of remote access with WireGuard: the keys the gateway makes and accepts
 * (api-gateway/svc_remote_access.c), the "remote_access" list of a host's desired state
 * (netctl/model.c) and its flows (netctl/flows.c). The whole path, with wireguard-go on a real
 * Open vSwitch, is tests/e2e/test_remote_access.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "flows.h"
#include "model.h"
#include "svc_remote_access.h"

#include "nubo/crypto.h"
#include "nubo/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SERVER_KEY "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
#define PEER_KEY   "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="

/* VPC segment 101 (10.0.0.0/16) with one local port, and endpoint rae-0a on this host ('host'
 * NULL) or on 10.250.0.12, whose client CIDR is 'clients' and whose peer has 'peer_ip'. */
static struct nc_state *parse(const char *clients, const char *peer_ip, const char *key,
                              const char *host, struct nb_error *err)
{
    char text[4096];
    snprintf(text, sizeof text,
             "{\"version\": 3, \"tunnel_ip\": \"10.250.0.11\","
             " \"public\": {\"cidr\": \"203.0.113.0/24\", \"gateway\": \"203.0.113.1\"},"
             " \"networks\": [{\"vpc_id\": \"vpc-0a\", \"segment\": 101, \"cidr\": "
             "\"10.0.0.0/16\", \"routers\": [\"10.0.1.1\"]}],"
             " \"ports\": [{\"id\": \"eni-05\", \"segment\": 101, \"mac\": \"02:00:00:00:00:05\","
             "   \"ip\": \"10.0.1.5\", \"groups\": []}],"
             " \"remote_access\": [{\"id\": \"rae-0a1b2c3d4e\", \"segment\": 101,"
             "   \"outside_ip\": \"203.0.113.9\", \"inside_ip\": \"100.64.0.1\","
             "   \"client_cidr\": \"%s\", \"listen_port\": 51820, %s%s%s \"host\": %s%s%s,"
             "   \"peers\": [{\"public_key\": \"" PEER_KEY "\", \"ip\": \"%s\"}]}]}",
             clients, key ? "\"private_key\": \"" : "", key ? key : "", key ? "\"," : "",
             host ? "\"" : "", host ? host : "null", host ? "\"" : "", peer_ip);
    return nc_state_parse(text, strlen(text), err);
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

static void keys_are_made_and_checked(void **state)
{
    (void)state;
    char priv[GW_WG_KEY_LEN + 1], pub[GW_WG_KEY_LEN + 1];
    struct nb_error err = {0};
    assert_int_equal(gw_ra_keypair(priv, pub, &err), 0);
    assert_int_equal(strlen(priv), 44);
    assert_int_equal(strlen(pub), 44);
    assert_string_not_equal(priv, pub);
    assert_int_equal(gw_ra_check_key("public_key", pub, &err), 0);
    assert_int_equal(gw_ra_check_key("public_key", SERVER_KEY, &err), 0);
    /* Clamped as "wg genkey" writes it. */
    size_t len = 0;
    unsigned char *raw = nb_base64_decode(priv, &len, &err);
    assert_non_null(raw);
    assert_int_equal(len, 32);
    assert_int_equal(raw[0] & 7, 0);
    assert_int_equal(raw[31] & 0xc0, 0x40);
    free(raw);
    static const char *const bad[] = {
        "",
        "bm90IGEga2V5",                                  /* 9 bytes */
        "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk",   /* no padding */
        "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBm==",  /* 31 bytes */
        "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=x", /* too long */
        "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3f!mk=",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct nb_error e = {0};
        assert_int_equal(gw_ra_check_key("public_key", bad[i], &e), -1);
        assert_string_equal(e.reason, "InvalidParameterValue");
    }
    struct nb_error e = {0};
    assert_int_equal(gw_ra_check_key("public_key", NULL, &e), -1);
    assert_string_equal(e.reason, "MissingParameter");
}

static void state_is_parsed_and_checked(void **state)
{
    (void)state;
    struct nb_error err = {0};
    struct nc_state *st = parse("100.64.0.0/22", "100.64.0.2", SERVER_KEY, NULL, &err);
    if (!st) {
        fail_msg("%s %s", err.msg, err.detail);
    }
    assert_int_equal(st->n_ras, 1);
    const struct nc_remote_access *r = &st->ras[0];
    assert_string_equal(r->private_key, SERVER_KEY);
    assert_int_equal(r->listen_port, 51820);
    assert_int_equal(r->n_peers, 1);
    assert_string_equal(r->peers[0].public_key, PEER_KEY);
    assert_int_equal(r->peers[0].ip, 0x64400002u);
    assert_memory_not_equal(r->inside_mac, r->outside_mac, 6);
    nc_state_free(st);

    /* Served elsewhere: no key needed. */
    st = parse("100.64.0.0/22", "100.64.0.2", NULL, "10.250.0.12", &err);
    assert_non_null(st);
    assert_int_equal(st->ras[0].host, 0x0afa000cu);
    nc_state_free(st);

    struct {
        const char *clients, *peer, *key, *host;
    } bad[] = {
        {"100.64.0.0/22", "100.64.0.2", NULL, NULL},       /* served here without a key */
        {"100.64.0.0/22", "100.64.0.2", "c2hvcnQ=", NULL}, /* not a key */
        {"100.64.0.0/22", "100.64.9.2", SERVER_KEY, NULL}, /* peer outside the client CIDR */
        {"100.64.0.0/22", "100.64.0.1", SERVER_KEY, NULL}, /* the endpoint's own address */
        {"10.0.0.0/24", "10.0.0.2", SERVER_KEY, NULL},     /* inside the VPC */
        {"10.0.0.0/8", "10.0.0.2", SERVER_KEY, NULL},      /* around the VPC */
        {"100.64.8.0/22", "100.64.8.2", SERVER_KEY, NULL}, /* inside_ip not in it */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct nb_error e = {0};
        struct nc_state *s = parse(bad[i].clients, bad[i].peer, bad[i].key, bad[i].host, &e);
        if (s) {
            fail_msg("case %zu parsed", i);
        }
        assert_true(e.code == NB_ERR_INVALID || e.code == NB_ERR_MISSING);
    }
}

static void flows_route_clients_to_the_endpoint(void **state)
{
    (void)state;
    struct nb_error err = {0};
    struct nc_state *st = parse("100.64.0.0/22", "100.64.0.2", SERVER_KEY, NULL, &err);
    assert_non_null(st);
    struct nc_ofmap ports = {0};
    nc_ofmap_add(&ports, "eni-05", 5);
    nc_ofmap_add(&ports, "ext", 2);
    nc_ofmap_add(&ports, "vpn-in:rae-0a1b2c3d4e", 11);
    nc_ofmap_add(&ports, "vpn-out:rae-0a1b2c3d4e", 12);
    struct nc_flows f = {0};
    nc_compile(st, &ports, &f);
    char rm[18], im[18], buf[256];
    uint8_t rmac[6];
    nc_router_mac(101, rmac);
    nc_mac_str(rmac, rm);
    nc_mac_str(st->ras[0].inside_mac, im);
    /* The client CIDR, through the router, to the inside leg. */
    snprintf(buf, sizeof buf, "reg6=101,dl_dst=%s,ip,nw_dst=100.64.0.0/22 actions=set_field:%s", rm,
             rm);
    assert_true(has_flow(&f, buf));
    snprintf(buf, sizeof buf, "dl_dst=%s actions=set_field:11->reg7", im);
    assert_true(has_flow(&f, buf));
    /* The inside leg: sources from the client CIDR only; everything else dropped. */
    snprintf(buf, sizeof buf, "in_port=11,dl_src=%s,ip,nw_src=100.64.0.0/22 ", im);
    assert_true(has_flow(&f, buf));
    assert_true(has_flow(&f, "priority=100,in_port=11 actions=drop"));
    assert_true(has_flow(&f, "arp,arp_spa=100.64.0.1 actions"));
    /* The outside leg on the public network. */
    assert_true(has_flow(&f, "in_port=2,arp,arp_tpa=203.0.113.9 actions=output:12"));
    nc_flows_clear(&f);
    nc_state_free(st);

    /* Served by 10.250.0.12: the client CIDR goes through its tunnel. */
    st = parse("100.64.0.0/22", "100.64.0.2", NULL, "10.250.0.12", &err);
    assert_non_null(st);
    nc_ofmap_clear(&ports);
    nc_ofmap_add(&ports, "eni-05", 5);
    nc_ofmap_add(&ports, "tun:10.250.0.12", 9);
    nc_compile(st, &ports, &f);
    snprintf(buf, sizeof buf, "dl_dst=%s actions=set_field:101->tun_id,output:9", im);
    assert_true(has_flow(&f, buf));
    assert_true(has_flow(&f, "in_port=9,tun_id=101 actions=set_field:101->reg6"));
    assert_false(has_flow(&f, "nw_src=100.64.0.0/22"));
    nc_flows_clear(&f);
    nc_ofmap_clear(&ports);
    nc_state_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keys_are_made_and_checked),
        cmocka_unit_test(state_is_parsed_and_checked),
        cmocka_unit_test(flows_route_clients_to_the_endpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
