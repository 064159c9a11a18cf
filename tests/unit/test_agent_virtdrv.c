/* Unit tests of the libvirt provider (compute-agent/virt.c) against libvirt's own fake hypervisor,
 * the test:///default driver: the idempotent lifecycle, "ours" versus other domains, list, stats
 * and node info, and the deadline on every call (a hung libvirtd simulated by the test hook that
 * delays each call on its worker thread). The real thing (libvirtd + QEMU) is
 * tests/integration/test_agent_virt.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "nbtest.h"

#include "domxml.h"
#include "nubo/error.h"
#include "virt.h"
#include "virt_priv.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ID "i-0123456789abcdef0"

static struct agent_virt *open_test(long timeout_ms)
{
    struct agent_virt_config cfg = {.uri = "test:///default", .call_timeout_ms = timeout_ms};
    struct nb_error err = {0};
    struct agent_virt *v = agent_virt_open(&cfg, &err);
    if (!v) {
        fail_msg("agent_virt_open: %s", err.msg);
    }
    return v;
}

static char *domain_xml(const char *id)
{
    struct agent_domxml_spec s = {
        .instance_id = id,
        .tenant_id = "123456789012",
        .image_id = "ami-0a1b2c3d4e5f60718",
        .virt_type = "qemu",
        .vcpus = 1,
        .memory_mib = 64,
        .root_disk = "/nonexistent/root.qcow2",
        .console_log = "/nonexistent/console.log",
        .vnc_listen = "127.0.0.1",
        .vnc_password = "secret",
    };
    struct nb_error err = {0};
    char *xml = agent_domxml_build(&s, &err);
    assert_non_null(xml);
    return xml;
}

static enum agent_virt_state state_of(struct agent_virt *v, const char *id)
{
    enum agent_virt_state st = AGENT_VIRT_UNKNOWN;
    struct nb_error err = {0};
    assert_zero(agent_virt_state(v, id, &st, &err), err);
    return st;
}

static void node_info_reports_capacity(void **state)
{
    struct agent_virt *v = open_test(0);
    struct agent_virt_node node;
    struct nb_error err = {0};
    assert_zero(agent_virt_node_info(v, &node, &err), err);
    assert_true(node.cpus > 0);
    assert_true(node.memory_mib > 0);
    assert_string_equal(agent_virt_uri(v), "test:///default");
    agent_virt_close(v);
}

/* define+start, again (no-op), stop, define+start of a shut-off one, start, reboot, terminate
 * twice: each step idempotent and the state what EC2 would show. */
static void lifecycle_is_idempotent(void **state)
{
    struct agent_virt *v = open_test(0);
    struct nb_error err = {0};
    char *xml = domain_xml(ID);
    assert_int_equal(state_of(v, ID), AGENT_VIRT_ABSENT);
    assert_zero(agent_virt_define_start(v, ID, xml, &err), err);
    assert_int_equal(state_of(v, ID), AGENT_VIRT_RUNNING);
    assert_zero(agent_virt_define_start(v, ID, xml, &err), err);
    assert_int_equal(state_of(v, ID), AGENT_VIRT_RUNNING);

    bool forced = false;
    assert_zero(agent_virt_stop(v, ID, 0, &forced, &err), err);
    assert_true(forced);
    assert_int_equal(state_of(v, ID), AGENT_VIRT_SHUTOFF);
    assert_zero(agent_virt_stop(v, ID, 0, &forced, &err), err);
    assert_false(forced);

    assert_zero(agent_virt_define_start(v, ID, xml, &err), err);
    assert_int_equal(state_of(v, ID), AGENT_VIRT_RUNNING);
    assert_zero(agent_virt_start(v, ID, &err), err);
    assert_zero(agent_virt_reboot(v, ID, &err), err);
    assert_int_equal(state_of(v, ID), AGENT_VIRT_RUNNING);

    assert_zero(agent_virt_terminate(v, ID, &err), err);
    assert_int_equal(state_of(v, ID), AGENT_VIRT_ABSENT);
    assert_zero(agent_virt_terminate(v, ID, &err), err);

    assert_int_equal(agent_virt_start(v, ID, &err), -1);
    assert_int_equal(err.code, NB_ERR_NOT_FOUND);
    assert_int_equal(agent_virt_stop(v, ID, 1000, NULL, &err), -1);
    assert_int_equal(err.code, NB_ERR_NOT_FOUND);
    assert_int_equal(agent_virt_state(v, "../etc", &(enum agent_virt_state){0}, &err), -1);
    assert_int_equal(err.code, NB_ERR_INVALID);
    free(xml);
    agent_virt_close(v);
}

/* A domain without our metadata (the driver's own "test" domain, and one named like an instance)
 * is never listed and never touched. */
static void other_domains_are_not_ours(void **state)
{
    struct agent_virt *v = open_test(0);
    struct nb_error err = {0};
    const char *foreign_id = "i-00000000";
    virConnectPtr conn = virConnectOpen("test:///default");
    assert_non_null(conn);
    char foreign[512];
    snprintf(foreign, sizeof foreign,
             "<domain type='test'><name>%s</name><memory>65536</memory>"
             "<os><type>hvm</type></os></domain>",
             foreign_id);
    virDomainPtr fd = virDomainDefineXML(conn, foreign);
    assert_non_null(fd);
    assert_int_equal(virDomainCreate(fd), 0);

    char *xml = domain_xml(ID);
    assert_zero(agent_virt_define_start(v, ID, xml, &err), err);

    struct agent_virt_domain *doms = NULL;
    size_t n = 0;
    assert_zero(agent_virt_list(v, &doms, &n, &err), err);
    assert_int_equal(n, 1);
    assert_string_equal(doms[0].id, ID);
    assert_string_equal(doms[0].tenant, "123456789012");
    assert_string_equal(doms[0].image, "ami-0a1b2c3d4e5f60718");
    assert_int_equal(doms[0].state, AGENT_VIRT_RUNNING);
    free(doms);

    assert_int_equal(agent_virt_terminate(v, foreign_id, &err), -1);
    assert_int_equal(err.code, NB_ERR_CONFLICT);
    assert_int_equal(agent_virt_stop(v, foreign_id, 0, NULL, &err), -1);
    assert_int_equal(err.code, NB_ERR_CONFLICT);
    assert_int_equal(virDomainIsActive(fd), 1);

    struct agent_virt_stats *stats = NULL;
    assert_zero(agent_virt_stats(v, &stats, &n, &err), err);
    assert_int_equal(n, 1);
    assert_string_equal(stats[0].id, ID);
    assert_int_equal(stats[0].state, AGENT_VIRT_RUNNING);
    free(stats);

    assert_zero(agent_virt_terminate(v, ID, &err), err);
    assert_zero(agent_virt_list(v, &doms, &n, &err), err);
    assert_int_equal(n, 0);
    assert_null(doms);

    virDomainDestroy(fd);
    virDomainUndefine(fd);
    virDomainFree(fd);
    virConnectClose(conn);
    free(xml);
    agent_virt_close(v);
}

static void wait_for_abandoned(struct agent_virt *v)
{
    long deadline = nb_monotonic_ms() + 10000;
    while (agent_virt_abandoned_calls(v) > 0 && nb_monotonic_ms() < deadline) {
        usleep(20000);
    }
    assert_int_equal(agent_virt_abandoned_calls(v), 0);
}

/* A call that does not return in time fails with NB_ERR_TIMEOUT at its deadline; the late call is
 * abandoned safely (AddressSanitizer would see a use-after-free or leak), and the provider works
 * again once libvirtd answers. */
static void hung_call_times_out(void **state)
{
    struct agent_virt *v = open_test(200);
    struct nb_error err = {0};
    agent_virt_set_test_delay(v, 1000);
    long t0 = nb_monotonic_ms();
    enum agent_virt_state st;
    assert_int_equal(agent_virt_state(v, ID, &st, &err), -1);
    long took = nb_monotonic_ms() - t0;
    assert_int_equal(err.code, NB_ERR_TIMEOUT);
    assert_true(took >= 190 && took < 800);
    assert_int_equal(agent_virt_abandoned_calls(v), 1);

    /* Outputs of abandoned list calls are freed by their workers too. */
    struct agent_virt_domain *doms = NULL;
    size_t n = 0;
    assert_int_equal(agent_virt_list(v, &doms, &n, &err), -1);
    assert_int_equal(err.code, NB_ERR_TIMEOUT);
    assert_null(doms);

    agent_virt_set_test_delay(v, 0);
    wait_for_abandoned(v);
    assert_int_equal(state_of(v, ID), AGENT_VIRT_ABSENT);
    agent_virt_close(v);
}

/* Once AGENT_VIRT_MAX_ABANDONED calls hang, later calls fail at once instead of piling up
 * threads. */
static void too_many_hung_calls_fail_fast(void **state)
{
    struct agent_virt *v = open_test(50);
    struct nb_error err = {0};
    agent_virt_set_test_delay(v, 1500);
    enum agent_virt_state st;
    for (int i = 0; i < AGENT_VIRT_MAX_ABANDONED; i++) {
        assert_int_equal(agent_virt_state(v, ID, &st, &err), -1);
        assert_int_equal(err.code, NB_ERR_TIMEOUT);
    }
    long t0 = nb_monotonic_ms();
    assert_int_equal(agent_virt_state(v, ID, &st, &err), -1);
    assert_int_equal(err.code, NB_ERR_UNAVAILABLE);
    assert_true(nb_monotonic_ms() - t0 < 40);
    agent_virt_set_test_delay(v, 0);
    wait_for_abandoned(v);
    assert_int_equal(state_of(v, ID), AGENT_VIRT_ABSENT);
    agent_virt_close(v);
}

/* Closing the provider while a call hangs does not free what the late call uses. */
static void close_with_hung_call(void **state)
{
    struct agent_virt *v = open_test(100);
    struct nb_error err = {0};
    agent_virt_set_test_delay(v, 400);
    enum agent_virt_state st;
    assert_int_equal(agent_virt_state(v, ID, &st, &err), -1);
    assert_int_equal(err.code, NB_ERR_TIMEOUT);
    agent_virt_close(v);
    usleep(700000); /* the late call finishes here, on freed-provider-safe state */
}

static void boot_sector_layout(void **state)
{
    unsigned char s[512];
    assert_int_equal(agent_virt_boot_sector("HELLO", s), 0);
    assert_int_equal(s[510], 0x55);
    assert_int_equal(s[511], 0xAA);
    assert_int_equal(s[0], 0xFA);
    /* mov si, imm16 points at the marker, loaded at 0x7c00. */
    unsigned si = s[7] | (unsigned)s[8] << 8;
    assert_true(si > 0x7c00 && si < 0x7c00 + 510);
    assert_memory_equal(s + (si - 0x7c00), "HELLO", 6);
    char big[402];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(agent_virt_boot_sector(big, s), -1);
}

/* Forcing skips the probe; on the test driver a "booted" domain prints nothing, so the probe must
 * answer "qemu" (which is also what a broken KVM gives). */
static void choose_type_forced_and_probe(void **state)
{
    struct agent_virt *v = open_test(0);
    assert_string_equal(agent_virt_choose_type(v, "kvm", "/nonexistent", 0), "kvm");
    assert_string_equal(agent_virt_choose_type(v, "qemu", "/nonexistent", 0), "qemu");
    char dir[] = "/tmp/nubo-probe-XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_string_equal(agent_virt_choose_type(v, "auto", dir, 300), "qemu");
    /* The probe cleans up after itself: no domain, no files. */
    virConnectPtr conn = virConnectOpen("test:///default");
    char name[64];
    snprintf(name, sizeof name, "nubo-kvm-probe-%ld", (long)getpid());
    virDomainPtr d = virDomainLookupByName(conn, name);
    assert_null(d);
    virConnectClose(conn);
    assert_int_equal(rmdir(dir), 0);
    agent_virt_close(v);
}

static void unreachable_uri_is_unavailable(void **state)
{
    struct agent_virt_config cfg = {.uri = "qemu+unix:///system?socket=/nonexistent/sock",
                                    .call_timeout_ms = 5000};
    struct nb_error err = {0};
    assert_null(agent_virt_open(&cfg, &err));
    assert_int_equal(err.code, NB_ERR_UNAVAILABLE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(node_info_reports_capacity),
        cmocka_unit_test(lifecycle_is_idempotent),
        cmocka_unit_test(other_domains_are_not_ours),
        cmocka_unit_test(hung_call_times_out),
        cmocka_unit_test(too_many_hung_calls_fail_fast),
        cmocka_unit_test(close_with_hung_call),
        cmocka_unit_test(boot_sector_layout),
        cmocka_unit_test(choose_type_forced_and_probe),
        cmocka_unit_test(unreachable_uri_is_unavailable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
