/* Unit tests of the domain XML writer (compute-agent/domxml.c): golden documents compared byte
 * for byte, escaping of hostile strings, spec validation, and acceptance of every generated
 * document by libvirt itself (defined on the test:///default driver, and checked against
 * libvirt's RNG schema with virt-xml-validate when it is installed).
 *
 * Golden files live in tests/golden/domxml/, relative to $NUBO_SRCDIR (default: the current
 * directory, the repository root). Run with NUBO_TEST_REGENERATE=1 to rewrite them from the
 * current output, then review the diff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "golden.h"

#include "disks.h"
#include "domxml.h"
#include "nubo/buf.h"
#include "nubo/error.h"
#include "virt.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Defines 'xml' on a private test:///default connection (libvirt's full parser and validation)
 * and undefines it again. */
static void assert_libvirt_accepts(const char *xml)
{
    virConnectPtr conn = virConnectOpen("test:///default");
    assert_non_null(conn);
    virDomainPtr dom = virDomainDefineXMLFlags(conn, xml, VIR_DOMAIN_DEFINE_VALIDATE);
    if (!dom) {
        fail_msg("libvirt refused the XML: %s\n%s", virGetLastErrorMessage(), xml);
    }
    /* The metadata is readable back through the API, which is how the provider finds ours. */
    char *meta = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, AGENT_VIRT_XMLNS, 0);
    assert_non_null(meta);
    assert_non_null(strstr(meta, "i-0123456789abcdef0"));
    free(meta);
    assert_int_equal(virDomainUndefine(dom), 0);
    virDomainFree(dom);
    virConnectClose(conn);
}

/* Runs virt-xml-validate on 'xml' when it is installed (libvirt-clients). */
static void assert_schema_valid(const char *xml)
{
    if (access("/usr/bin/virt-xml-validate", X_OK) != 0) {
        print_message("virt-xml-validate is not installed: schema check skipped\n");
        return;
    }
    char path[] = "/tmp/nubo-domxml-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, xml, strlen(xml)), (ssize_t)strlen(xml));
    close(fd);
    const char *argv[] = {"/usr/bin/virt-xml-validate", path, "domain", NULL};
    char *out = NULL;
    struct nb_error err = {0};
    int rc = agent_disks_run(argv, 30000, &out, &err);
    unlink(path);
    if (rc != 0) {
        fail_msg("virt-xml-validate: %s\n%s\n%s", err.msg, out ? out : "", xml);
    }
    free(out);
}

static struct agent_domxml_spec base_spec(void)
{
    struct agent_domxml_spec s = {
        .instance_id = "i-0123456789abcdef0",
        .tenant_id = "123456789012",
        .image_id = "ami-0a1b2c3d4e5f60718",
        .virt_type = "qemu",
        .vcpus = 1,
        .memory_mib = 512,
        .root_disk = "/var/lib/nubo/instances/i-0123456789abcdef0/root.qcow2",
        .console_log = "/var/lib/nubo/instances/i-0123456789abcdef0/console.log",
    };
    return s;
}

static void check_doc(const struct agent_domxml_spec *s, const char *golden)
{
    struct nb_error err = {0};
    char *xml = agent_domxml_build(s, &err);
    if (!xml) {
        fail_msg("agent_domxml_build: %s", err.msg);
    }
    assert_int_equal(nbtest_golden("domxml", golden, xml, strlen(xml)), 0);
    assert_libvirt_accepts(xml);
    assert_schema_valid(xml);
    free(xml);
}

/* The smallest instance: disk boot, no extra disks, no graphics, no balloon. */
static void golden_minimal_disk_boot(void **state)
{
    struct agent_domxml_spec s = base_spec();
    check_doc(&s, "minimal_disk_boot.xml");
}

/* Everything an EC2 launch can ask for: direct kernel boot (aki/ari), ephemeral disk, config
 * drive, VNC, balloon, KVM. */
static void golden_full_kernel_boot(void **state)
{
    struct agent_domxml_spec s = base_spec();
    s.virt_type = "kvm";
    s.instance_type = "t2.medium";
    s.uuid = "6f0f2a52-8a94-4c55-9c3c-2a1f4d1e9b01";
    s.vcpus = 2;
    s.memory_mib = 4096;
    s.kernel = "/var/lib/nubo/images/aki-0123abcd/vmlinuz";
    s.initrd = "/var/lib/nubo/images/ari-0123abcd/initrd.img";
    s.cmdline = "console=ttyS0 root=/dev/vda1 ro";
    s.ephemeral_disk = "/var/lib/nubo/instances/i-0123456789abcdef0/ephemeral.qcow2";
    s.config_drive = "/var/lib/nubo/instances/i-0123456789abcdef0/config.iso";
    s.vnc_listen = "127.0.0.1";
    s.vnc_password = "Xy7pQ2aZ";
    s.memballoon = true;
    check_doc(&s, "full_kernel_boot.xml");
}

/* The hook for the network issue: interfaces on an OVS bridge, with and without VLAN. */
static void golden_interfaces(void **state)
{
    struct agent_domxml_iface ifaces[] = {
        {.bridge = "br-int",
         .mac = "52:54:00:12:34:56",
         .iface_id = "0b5c8d8e-3f7a-4c1e-9a55-6c2f1e0d9a11",
         .target_dev = "tap0123456789a",
         .vlan = 101,
         .mtu = 1450},
        {.bridge = "br-ext", .mac = "52:54:00:ab:cd:ef"},
    };
    struct agent_domxml_spec s = base_spec();
    s.ifaces = ifaces;
    s.n_ifaces = 2;
    check_doc(&s, "interfaces.xml");
}

/* The agent's own interfaces: taps it made and plugged (vif.h), one without transmit checksum
 * offload (the userspace datapath), one with it (the kernel's). */
static void golden_tap_interfaces(void **state)
{
    struct agent_domxml_iface ifaces[] = {
        {.kind = AGENT_DOMXML_IFACE_TAP,
         .mac = "02:c9:01:ed:cc:91",
         .target_dev = "tap0123abcd",
         .no_tx_csum = true},
        {.kind = AGENT_DOMXML_IFACE_TAP,
         .mac = "02:c9:01:ed:cc:92",
         .target_dev = "tap0123abce",
         .mtu = 1450},
    };
    struct agent_domxml_spec s = base_spec();
    s.ifaces = ifaces;
    s.n_ifaces = 2;
    check_doc(&s, "tap_interfaces.xml");
}

/* Strings from users (tenant, paths, password, cmdline) cannot break out of their attribute or
 * element. */
static void golden_hostile_strings(void **state)
{
    struct agent_domxml_spec s = base_spec();
    s.tenant_id = "</nubo:tenant><evil a='1'>&amp;";
    s.image_id = "ami-\"quoted\"";
    s.root_disk = "/tmp/it's <root>&.qcow2";
    s.console_log = "/tmp/log'/><x y='";
    s.kernel = "/tmp/k&k";
    s.cmdline = "console=ttyS0 a=\"<b>\" c='d'";
    s.vnc_listen = "127.0.0.1";
    s.vnc_password = "p'\"<&>";
    check_doc(&s, "hostile_strings.xml");
}

static void expect_invalid(const struct agent_domxml_spec *s, const char *needle)
{
    struct nb_error err = {0};
    char *xml = agent_domxml_build(s, &err);
    if (xml) {
        fail_msg("expected a refusal containing \"%s\", got:\n%s", needle, xml);
    }
    assert_int_equal(err.code, NB_ERR_INVALID);
    if (!strstr(err.msg, needle)) {
        fail_msg("error \"%s\" does not mention \"%s\"", err.msg, needle);
    }
}

static void invalid_specs_are_refused(void **state)
{
    struct agent_domxml_spec s = base_spec();
    s.instance_id = NULL;
    expect_invalid(&s, "instance_id");
    s = base_spec();
    s.instance_id = "../../etc";
    expect_invalid(&s, "not an instance id");
    s = base_spec();
    s.virt_type = "xen";
    expect_invalid(&s, "virt_type");
    s = base_spec();
    s.vcpus = 0;
    expect_invalid(&s, "vcpus");
    s = base_spec();
    s.memory_mib = 1;
    expect_invalid(&s, "memory_mib");
    s = base_spec();
    s.root_disk = "";
    expect_invalid(&s, "root_disk");
    s = base_spec();
    s.vnc_listen = "0.0.0.0";
    expect_invalid(&s, "vnc_password");
    s = base_spec();
    s.initrd = "/boot/initrd";
    expect_invalid(&s, "without a kernel");
    struct agent_domxml_iface bad = {.bridge = "br-int", .mac = "52:54:00:00:00:01", .vlan = 5000};
    s = base_spec();
    s.ifaces = &bad;
    s.n_ifaces = 1;
    expect_invalid(&s, "vlan");
    struct agent_domxml_iface notap = {.kind = AGENT_DOMXML_IFACE_TAP, .mac = "02:00:00:00:00:01"};
    s = base_spec();
    s.ifaces = &notap;
    s.n_ifaces = 1;
    expect_invalid(&s, "target device");
}

static void quiet(void *data, virErrorPtr e)
{
}

int main(void)
{
    /* libvirt prints every error on stderr by default; the tests read them themselves. */
    virSetErrorFunc(NULL, quiet);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_minimal_disk_boot), cmocka_unit_test(golden_full_kernel_boot),
        cmocka_unit_test(golden_interfaces),        cmocka_unit_test(golden_tap_interfaces),
        cmocka_unit_test(golden_hostile_strings),   cmocka_unit_test(invalid_specs_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
