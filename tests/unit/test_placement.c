/* Unit tests of the scheduler's in-memory placement (scheduler/placement.c): filters, weighers,
 * placement groups, dedicated hosts, traits, zones, the "no valid host" explanation and batches
 * placed all-or-nothing down to MinCount. Hosts live in memory; no database. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "placement.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HOSTS 64

/* A host of 'vcpus'/'mem_gib'/'disk' in 'zone', up, live, ratios 1 unless set after. */
static struct place_host_in host(const char *id, const char *zone, int64_t vcpus, int64_t mem_gib,
                                 int64_t disk)
{
    return (struct place_host_in){
        .id = id,
        .name = id,
        .zone = zone,
        .state = PLACE_HOST_UP,
        .live = true,
        .simulated = true,
        .vcpus = vcpus,
        .memory_mib = mem_gib * 1024,
        .disk_gib = disk,
        .cpu_ratio = 1,
        .memory_ratio = 1,
        .disk_ratio = 1,
    };
}

static struct place_inst inst(const char *id, const char *zone, int64_t vcpus, int64_t mem_gib,
                              int64_t disk)
{
    return (struct place_inst){
        .id = id,
        .tenant_id = "111111111111",
        .instance_type = "t.test",
        .zone = zone,
        .vcpus = vcpus,
        .memory_mib = mem_gib * 1024,
        .disk_gib = disk,
    };
}

static struct place_snapshot *snapshot(const struct place_host_in *hosts, size_t n)
{
    struct place_snapshot *s = place_snapshot_new();
    assert_non_null(s);
    assert_int_equal(place_snapshot_load(s, hosts, n), 0);
    return s;
}

/* Places one instance alone (batch of one, min 1). Returns true when placed. */
static bool place1(struct place_snapshot *s, const struct place_config *cfg, struct place_inst *in,
                   const struct place_group *g)
{
    static uint64_t rng = 42;
    struct place_batch b = {.label = "r-test", .insts = in, .n = 1, .min_count = 1, .group = g};
    return place_batch(s, cfg, &b, &rng) == 1;
}

static void test_capacity_and_ratios(void **state)
{
    /* 2 vCPUs at ratio 4 take 8 one-vCPU instances; 4 GiB of memory at ratio 1 only 4. */
    struct place_host_in h = host("h-1", "az-1", 2, 4, 100);
    h.cpu_ratio = 4;
    struct place_snapshot *s = snapshot(&h, 1);
    struct place_config cfg;
    place_config_default(&cfg);
    for (int i = 0; i < 4; i++) {
        struct place_inst in = inst("i-x", "az-1", 1, 1, 10);
        assert_true(place1(s, &cfg, &in, NULL));
        assert_string_equal(in.host_id, "h-1");
    }
    struct place_inst in = inst("i-y", "az-1", 1, 1, 10);
    assert_false(place1(s, &cfg, &in, NULL));
    assert_non_null(strstr(in.reason, "capacity: 1 hosts lack 1 GiB memory"));
    int64_t v, m, d;
    assert_int_equal(place_snapshot_used(s, "h-1", &v, &m, &d), 0);
    assert_int_equal(v, 4);
    assert_int_equal(m, 4096);
    assert_int_equal(d, 40);
    place_snapshot_free(s);
}

static void test_reserved_resources(void **state)
{
    /* (total - reserved) * ratio >= used + requested: 8 - 6 reserved leaves 2 vCPUs. */
    struct place_host_in h = host("h-1", "az-1", 8, 64, 100);
    h.reserved_vcpus = 6;
    struct place_snapshot *s = snapshot(&h, 1);
    struct place_config cfg;
    place_config_default(&cfg);
    struct place_inst a = inst("i-a", "az-1", 2, 1, 1), b = inst("i-b", "az-1", 1, 1, 1);
    assert_true(place1(s, &cfg, &a, NULL));
    assert_false(place1(s, &cfg, &b, NULL));
    assert_non_null(strstr(b.reason, "1 hosts lack 1 vCPUs"));
    place_snapshot_free(s);
}

static void test_host_state_filter(void **state)
{
    struct place_host_in hs[4] = {host("h-up", "az-1", 1, 1, 10), host("h-down", "az-1", 8, 8, 99),
                                  host("h-dis", "az-1", 8, 8, 99),
                                  host("h-stale", "az-1", 8, 8, 99)};
    hs[1].state = PLACE_HOST_DOWN;
    hs[2].state = PLACE_HOST_DISABLED;
    hs[3].live = false; /* heartbeat too old */
    struct place_snapshot *s = snapshot(hs, 4);
    struct place_config cfg;
    place_config_default(&cfg);
    struct place_inst a = inst("i-a", "az-1", 1, 1, 1);
    assert_true(place1(s, &cfg, &a, NULL));
    assert_string_equal(a.host_id, "h-up");
    struct place_inst b = inst("i-b", "az-1", 1, 1, 1);
    assert_false(place1(s, &cfg, &b, NULL));
    assert_non_null(strstr(b.reason, "host-state: 2 hosts down, 1 disabled, 0 draining"));
    assert_non_null(strstr(b.reason, "capacity: 1 hosts lack"));
    place_snapshot_free(s);
}

static void test_availability_zone(void **state)
{
    struct place_host_in hs[3] = {host("h-a", "az-1", 8, 8, 99), host("h-b", "az-1", 8, 8, 99),
                                  host("h-c", "az-2", 16, 16, 99)};
    struct place_snapshot *s = snapshot(hs, 3);
    struct place_config cfg;
    place_config_default(&cfg);
    for (int i = 0; i < 10; i++) {
        struct place_inst in = inst("i-z", "az-2", 1, 1, 1);
        assert_true(place1(s, &cfg, &in, NULL));
        assert_string_equal(in.host_id, "h-c");
    }
    struct place_inst in = inst("i-q", "az-9", 1, 1, 1);
    assert_false(place1(s, &cfg, &in, NULL));
    assert_non_null(strstr(in.reason, "availability-zone: 3 hosts not in az-9"));
    place_snapshot_free(s);
}

static void test_traits(void **state)
{
    const char *gpu[] = {"gpu", "ssd"}, *ssd[] = {"ssd"};
    struct place_host_in hs[2] = {host("h-plain", "az-1", 8, 8, 99),
                                  host("h-gpu", "az-1", 8, 8, 99)};
    hs[0].traits = ssd;
    hs[0].n_traits = 1;
    hs[1].traits = gpu;
    hs[1].n_traits = 2;
    struct place_snapshot *s = snapshot(hs, 2);
    struct place_config cfg;
    place_config_default(&cfg);
    const char *need[] = {"gpu"};
    for (int i = 0; i < 5; i++) {
        struct place_inst in = inst("i-g", "az-1", 1, 1, 1);
        in.traits = need;
        in.n_traits = 1;
        assert_true(place1(s, &cfg, &in, NULL));
        assert_string_equal(in.host_id, "h-gpu");
    }
    const char *fpga[] = {"fpga"};
    struct place_inst in = inst("i-f", "az-1", 1, 1, 1);
    in.traits = fpga;
    in.n_traits = 1;
    assert_false(place1(s, &cfg, &in, NULL));
    assert_non_null(strstr(in.reason, "traits: 2 hosts lack fpga"));
    place_snapshot_free(s);
}

static void test_dedicated_hosts(void **state)
{
    struct place_host_in hs[3] = {host("h-shared", "az-1", 8, 8, 99),
                                  host("h-mine", "az-1", 8, 8, 99),
                                  host("h-theirs", "az-1", 64, 64, 999)};
    hs[1].dedicated_tenant = "111111111111";
    hs[2].dedicated_tenant = "222222222222";
    struct place_snapshot *s = snapshot(hs, 3);
    struct place_config cfg;
    place_config_default(&cfg);
    /* Tenancy dedicated: only the tenant's own dedicated host. */
    for (int i = 0; i < 5; i++) {
        struct place_inst in = inst("i-d", "az-1", 1, 1, 1);
        in.dedicated = true;
        assert_true(place1(s, &cfg, &in, NULL));
        assert_string_equal(in.host_id, "h-mine");
    }
    /* Another tenant never lands on a host dedicated to someone else, though it is emptiest. */
    for (int i = 0; i < 5; i++) {
        struct place_inst in = inst("i-o", "az-1", 1, 1, 1);
        in.tenant_id = "333333333333";
        assert_true(place1(s, &cfg, &in, NULL));
        assert_string_equal(in.host_id, "h-shared");
    }
    struct place_inst in = inst("i-d", "az-1", 1, 1, 1);
    in.tenant_id = "333333333333";
    in.dedicated = true;
    assert_false(place1(s, &cfg, &in, NULL));
    assert_non_null(strstr(in.reason, "tenancy: 2 hosts dedicated to other tenants"));
    assert_non_null(strstr(in.reason, "tenancy: 1 hosts not dedicated to tenant 333333333333"));
    place_snapshot_free(s);
}

static void test_spread_and_pack_weighers(void **state)
{
    struct place_host_in hs[3] = {host("h-1", "az-1", 16, 16, 999),
                                  host("h-2", "az-1", 16, 16, 999),
                                  host("h-3", "az-1", 16, 16, 999)};
    hs[0].used_vcpus = 8;
    hs[0].used_memory_mib = 8 * 1024;
    struct place_config cfg;
    place_config_default(&cfg);
    cfg.top_k = 1; /* deterministic */
    /* Spread: never the half-full host while the empty ones are emptier. */
    struct place_snapshot *s = snapshot(hs, 3);
    int count[3] = {0};
    for (int i = 0; i < 8; i++) {
        struct place_inst in = inst("i-s", "az-1", 1, 1, 1);
        assert_true(place1(s, &cfg, &in, NULL));
        count[in.host_id[2] - '1']++;
    }
    assert_int_equal(count[0], 0);
    assert_int_equal(count[1], 4);
    assert_int_equal(count[2], 4);
    place_snapshot_free(s);
    /* Pack: fill the fullest host first. */
    cfg.weigher = PLACE_PACK;
    s = snapshot(hs, 3);
    for (int i = 0; i < 8; i++) {
        struct place_inst in = inst("i-p", "az-1", 1, 1, 1);
        assert_true(place1(s, &cfg, &in, NULL));
        assert_string_equal(in.host_id, "h-1");
    }
    place_snapshot_free(s);
}

static void test_load_aware_weigher(void **state)
{
    struct place_host_in hs[2] = {host("h-busy", "az-1", 16, 16, 999),
                                  host("h-idle", "az-1", 16, 16, 999)};
    hs[0].cpu_load = 0.95;
    hs[1].cpu_load = 0.05;
    hs[1].used_vcpus = 4; /* a little fuller, but idle */
    struct place_snapshot *s = snapshot(hs, 2);
    struct place_config cfg;
    place_config_default(&cfg);
    cfg.top_k = 1;
    struct place_inst a = inst("i-a", "az-1", 1, 1, 1);
    assert_true(place1(s, &cfg, &a, NULL));
    assert_string_equal(a.host_id, "h-busy"); /* spread alone prefers the emptier host */
    place_finish(s, &a, false);
    cfg.w_load = 5;
    struct place_inst b = inst("i-b", "az-1", 1, 1, 1);
    assert_true(place1(s, &cfg, &b, NULL));
    assert_string_equal(b.host_id, "h-idle");
    place_snapshot_free(s);
}

static void test_top_k_randomises(void **state)
{
    struct place_host_in hs[4] = {
        host("h-1", "az-1", 64, 64, 999), host("h-2", "az-1", 64, 64, 999),
        host("h-3", "az-1", 64, 64, 999), host("h-4", "az-1", 64, 64, 999)};
    struct place_snapshot *s = snapshot(hs, 4);
    struct place_config cfg;
    place_config_default(&cfg);
    cfg.top_k = 4;
    bool seen[4] = {false};
    for (int i = 0; i < 40; i++) {
        struct place_inst in = inst("i-r", "az-1", 1, 1, 1);
        assert_true(place1(s, &cfg, &in, NULL));
        seen[in.host_id[2] - '1'] = true;
        place_finish(s, &in, false); /* keep the hosts equal */
    }
    assert_true(seen[0] && seen[1] && seen[2] && seen[3]);
    place_snapshot_free(s);
}

static void test_spread_group(void **state)
{
    struct place_host_in hs[4] = {
        host("h-1", "az-1", 64, 64, 999), host("h-2", "az-1", 64, 64, 999),
        host("h-3", "az-1", 64, 64, 999), host("h-4", "az-1", 64, 64, 999)};
    struct place_snapshot *s = snapshot(hs, 4);
    struct place_config cfg;
    place_config_default(&cfg);
    cfg.weigher = PLACE_PACK; /* would put all on one host without the group */
    const char *members[] = {"h-4"};
    int parts[] = {0};
    struct place_group g = {.id = "pg-spread",
                            .strategy = PLACE_GROUP_SPREAD,
                            .member_hosts = members,
                            .member_partitions = parts,
                            .n_members = 1};
    struct place_inst in[4] = {inst("i-1", "az-1", 1, 1, 1), inst("i-2", "az-1", 1, 1, 1),
                               inst("i-3", "az-1", 1, 1, 1), inst("i-4", "az-1", 1, 1, 1)};
    struct place_batch b = {.label = "r-1", .insts = in, .n = 4, .min_count = 1, .group = &g};
    uint64_t rng = 7;
    assert_int_equal(place_batch(s, &cfg, &b, &rng), 3);
    bool used[4] = {false};
    for (int i = 0; i < 3; i++) {
        assert_true(in[i].placed);
        int h = in[i].host_id[2] - '1';
        assert_false(used[h]);
        assert_int_not_equal(h, 3); /* h-4 already holds a member */
        used[h] = true;
    }
    assert_false(in[3].placed);
    assert_non_null(strstr(in[3].reason, "placement-group: 4 hosts already used by spread group"));
    place_snapshot_free(s);
}

static void test_cluster_group(void **state)
{
    struct place_host_in hs[3] = {host("h-1", "az-1", 8, 8, 999), host("h-2", "az-1", 64, 64, 999),
                                  host("h-3", "az-1", 64, 64, 999)};
    struct place_snapshot *s = snapshot(hs, 3);
    struct place_config cfg;
    place_config_default(&cfg); /* spread: would scatter them without the group */
    struct place_group g = {.id = "pg-cluster", .strategy = PLACE_GROUP_CLUSTER};
    struct place_inst in[5];
    for (int i = 0; i < 5; i++) {
        in[i] = inst("i-c", "az-1", 1, 1, 1);
    }
    struct place_batch b = {.label = "r-1", .insts = in, .n = 5, .min_count = 5, .group = &g};
    uint64_t rng = 9;
    assert_int_equal(place_batch(s, &cfg, &b, &rng), 5);
    for (int i = 1; i < 5; i++) {
        assert_string_equal(in[i].host_id, in[0].host_id);
    }
    /* Later launches join the group's host while it has room, then fail with the reason. */
    const char *members[] = {"h-1"};
    int parts[] = {0};
    struct place_group g2 = {.id = "pg-c2",
                             .strategy = PLACE_GROUP_CLUSTER,
                             .member_hosts = members,
                             .member_partitions = parts,
                             .n_members = 1};
    struct place_inst x = inst("i-x", "az-1", 8, 8, 1);
    assert_false(place1(s, &cfg, &x, &g2));
    assert_non_null(strstr(x.reason, "placement-group: 2 hosts not used by cluster group pg-c2"));
    assert_non_null(strstr(x.reason, "capacity: 1 hosts lack 8 GiB memory"));
    place_snapshot_free(s);
}

static void test_partition_group(void **state)
{
    struct place_host_in hs[6];
    char ids[6][24];
    for (int i = 0; i < 6; i++) {
        snprintf(ids[i], sizeof ids[i], "h-%d", i);
        hs[i] = host(ids[i], "az-1", 64, 64, 999);
    }
    struct place_snapshot *s = snapshot(hs, 6);
    struct place_config cfg;
    place_config_default(&cfg);
    cfg.top_k = 6;
    struct place_group g = {
        .id = "pg-part", .strategy = PLACE_GROUP_PARTITION, .partition_count = 3};
    struct place_inst in[12];
    for (int i = 0; i < 12; i++) {
        in[i] = inst("i-p", "az-1", 1, 1, 1);
    }
    struct place_batch b = {.label = "r-1", .insts = in, .n = 12, .min_count = 12, .group = &g};
    uint64_t rng = 11;
    assert_int_equal(place_batch(s, &cfg, &b, &rng), 12);
    /* Partitions chosen round-robin by count, and each host serves one partition only. */
    int per[4] = {0};
    for (int i = 0; i < 12; i++) {
        assert_in_range(in[i].out_partition, 1, 3);
        per[in[i].out_partition]++;
        for (int j = 0; j < 12; j++) {
            if (!strcmp(in[i].host_id, in[j].host_id)) {
                assert_int_equal(in[i].out_partition, in[j].out_partition);
            }
        }
    }
    assert_int_equal(per[1], 4);
    assert_int_equal(per[2], 4);
    assert_int_equal(per[3], 4);
    /* A requested partition that does not exist is explained. */
    struct place_inst bad = inst("i-b", "az-1", 1, 1, 1);
    bad.partition = 5;
    assert_false(place1(s, &cfg, &bad, &g));
    assert_non_null(strstr(bad.reason, "partition 5 does not exist"));
    place_snapshot_free(s);
}

static void test_partition_members_disjoint(void **state)
{
    struct place_host_in hs[2] = {host("h-a", "az-1", 64, 64, 999),
                                  host("h-b", "az-1", 64, 64, 999)};
    struct place_snapshot *s = snapshot(hs, 2);
    struct place_config cfg;
    place_config_default(&cfg);
    const char *members[] = {"h-a", "h-b"};
    int parts[] = {1, 2};
    struct place_group g = {.id = "pg-p",
                            .strategy = PLACE_GROUP_PARTITION,
                            .partition_count = 3,
                            .member_hosts = members,
                            .member_partitions = parts,
                            .n_members = 2};
    struct place_inst in = inst("i-3", "az-1", 1, 1, 1);
    in.partition = 3;
    assert_false(place1(s, &cfg, &in, &g));
    assert_non_null(strstr(in.reason, "placement-group: 2 hosts used by other partitions of group "
                                      "pg-p (partition 3)"));
    in.partition = 2;
    assert_true(place1(s, &cfg, &in, &g));
    assert_string_equal(in.host_id, "h-b");
    place_snapshot_free(s);
}

static void test_tried_hosts_are_skipped(void **state)
{
    struct place_host_in hs[2] = {host("h-bad", "az-1", 64, 64, 999),
                                  host("h-ok", "az-1", 1, 1, 9)};
    struct place_snapshot *s = snapshot(hs, 2);
    struct place_config cfg;
    place_config_default(&cfg);
    const char *tried[] = {"h-bad"};
    struct place_inst in = inst("i-t", "az-1", 1, 1, 1);
    in.tried = tried;
    in.n_tried = 1;
    assert_true(place1(s, &cfg, &in, NULL));
    assert_string_equal(in.host_id, "h-ok");
    struct place_inst again = in;
    assert_false(place1(s, &cfg, &again, NULL));
    assert_non_null(strstr(again.reason, "retry: 1 hosts already failed to spawn it"));
    place_snapshot_free(s);
}

static void test_explanation_text(void **state)
{
    /* The example: which filter removed how many hosts, in one message. */
    struct place_host_in hs[MAX_HOSTS];
    char ids[MAX_HOSTS][24];
    int n = 0;
    for (int i = 0; i < 37; i++, n++) { /* az-2, too little memory */
        snprintf(ids[n], sizeof ids[n], "h-full-%d", i);
        hs[n] = host(ids[n], "az-2", 64, 4, 999);
    }
    for (int i = 0; i < 12; i++, n++) { /* other zone */
        snprintf(ids[n], sizeof ids[n], "h-az1-%d", i);
        hs[n] = host(ids[n], "az-1", 64, 64, 999);
    }
    struct place_snapshot *s = snapshot(hs, (size_t)n);
    struct place_config cfg;
    place_config_default(&cfg);
    struct place_inst in = inst("i-e", "az-2", 2, 8, 32);
    in.instance_type = "m5.large";
    assert_false(place1(s, &cfg, &in, NULL));
    assert_string_equal(in.reason,
                        "no valid host for m5.large (2 vCPUs, 8 GiB memory, 32 GiB disk) among 49 "
                        "hosts: availability-zone: 12 hosts not in az-2; capacity: 37 hosts lack "
                        "8 GiB memory");
    place_snapshot_free(s);
    s = snapshot(NULL, 0);
    assert_false(place1(s, &cfg, &in, NULL));
    assert_non_null(strstr(in.reason, "there are no hosts"));
    place_snapshot_free(s);
}

static void test_batch_all_or_nothing(void **state)
{
    /* Room for 3: a batch of 5 with MinCount 5 places none, and claims nothing. */
    struct place_host_in h = host("h-1", "az-1", 3, 64, 999);
    struct place_snapshot *s = snapshot(&h, 1);
    struct place_config cfg;
    place_config_default(&cfg);
    struct place_inst in[5];
    for (int i = 0; i < 5; i++) {
        in[i] = inst("i-b", "az-1", 1, 1, 1);
    }
    struct place_batch b = {.label = "r-big", .insts = in, .n = 5, .min_count = 5};
    uint64_t rng = 3;
    assert_int_equal(place_batch(s, &cfg, &b, &rng), 0);
    for (int i = 0; i < 5; i++) {
        assert_false(in[i].placed);
        assert_non_null(strstr(in[i].reason, "only 3 of the 5 instances of r-big could be placed "
                                             "and MinCount is 5"));
    }
    int64_t v, m, d;
    assert_int_equal(place_snapshot_used(s, "h-1", &v, &m, &d), 0);
    assert_int_equal(v, 0);
    /* MinCount 2: as many as fit (3), the other two explained. */
    b.min_count = 2;
    assert_int_equal(place_batch(s, &cfg, &b, &rng), 3);
    assert_true(in[0].placed && in[1].placed && in[2].placed);
    assert_false(in[3].placed || in[4].placed);
    assert_non_null(strstr(in[4].reason, "capacity: 1 hosts lack 1 vCPUs"));
    place_snapshot_free(s);
}

static void test_reload_keeps_pending_and_newer(void **state)
{
    struct place_host_in h = host("h-1", "az-1", 8, 8, 99);
    h.generation = 5;
    struct place_snapshot *s = snapshot(&h, 1);
    struct place_config cfg;
    place_config_default(&cfg);
    struct place_inst in = inst("i-1", "az-1", 2, 2, 2);
    assert_true(place1(s, &cfg, &in, NULL));
    /* A reload of an older generation keeps the pending claim and newer db values. */
    place_snapshot_set_used(s, "h-1", 7, 1, 1024, 1, 1);
    assert_int_equal(place_snapshot_load(s, &h, 1), 0);
    int64_t v, m, d;
    assert_int_equal(place_snapshot_used(s, "h-1", &v, &m, &d), 0);
    assert_int_equal(v, 1 + 2);
    place_finish(s, &in, true);
    assert_int_equal(place_snapshot_used(s, "h-1", &v, &m, &d), 0);
    assert_int_equal(v, 3);
    /* A newer row wins. */
    h.generation = 9;
    h.used_vcpus = 6;
    assert_int_equal(place_snapshot_update(s, &h), 0);
    assert_int_equal(place_snapshot_used(s, "h-1", &v, &m, &d), 0);
    assert_int_equal(v, 6);
    place_snapshot_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capacity_and_ratios),
        cmocka_unit_test(test_reserved_resources),
        cmocka_unit_test(test_host_state_filter),
        cmocka_unit_test(test_availability_zone),
        cmocka_unit_test(test_traits),
        cmocka_unit_test(test_dedicated_hosts),
        cmocka_unit_test(test_spread_and_pack_weighers),
        cmocka_unit_test(test_load_aware_weigher),
        cmocka_unit_test(test_top_k_randomises),
        cmocka_unit_test(test_spread_group),
        cmocka_unit_test(test_cluster_group),
        cmocka_unit_test(test_partition_group),
        cmocka_unit_test(test_partition_members_disjoint),
        cmocka_unit_test(test_tried_hosts_are_skipped),
        cmocka_unit_test(test_explanation_text),
        cmocka_unit_test(test_batch_all_or_nothing),
        cmocka_unit_test(test_reload_keeps_pending_and_newer),
    };
    const char *filter = getenv("CMOCKA_TEST_FILTER");
    if (filter && *filter) {
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests_name("placement", tests, NULL, NULL);
}
