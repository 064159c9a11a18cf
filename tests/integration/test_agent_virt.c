/* Integration tests of the compute agent's hypervisor modules against the real libvirtd and QEMU
 * (TCG) on this machine: the KVM probe really boots, and one instance goes the whole way, every
 * module for real: its base image (a 512-byte boot sector that prints a marker on COM1) through
 * the image cache, a qcow2 overlay and a config drive made by qemu-img and genisoimage, the domain
 * XML, then define+start, state, the serial console log, the VNC port, list, stats, stop (the
 * guest ignores ACPI, so it is destroyed after the grace time), start, reboot, terminate.
 *
 * Starts the system libvirtd with deploy/libvirt-up.sh (it does nothing when libvirtd already
 * answers), as a fresh CI machine needs; a libvirtd that still does not answer fails the cases.
 * Run as root (QEMU reads the files as libvirt-qemu) from the top of the repository. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "nbtest.h"

#include "disks.h"
#include "domxml.h"
#include "imgcache.h"
#include "nubo/crypto.h"
#include "nubo/error.h"
#include "virt.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define URI    "qemu:///system"
#define MARKER "NUBO-INTEGRATION-GUEST-UP"

struct fixture {
    struct agent_virt *v;
    char dir[64];
    char id[AGENT_VIRT_ID_MAX];
};

static int start_libvirtd(void **state)
{
    (void)state;
    if (system("deploy/libvirt-up.sh") != 0) {
        print_message("deploy/libvirt-up.sh failed: libvirtd is needed here\n");
        return -1;
    }
    return 0;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    *state = f;
    struct agent_virt_config cfg = {.uri = URI, .call_timeout_ms = 30000};
    struct nb_error err = {0};
    f->v = agent_virt_open(&cfg, &err);
    if (!f->v) {
        print_message("libvirtd does not answer on %s (%s) after deploy/libvirt-up.sh\n", URI,
                      err.msg);
        return -1;
    }
    snprintf(f->dir, sizeof f->dir, "/tmp/nubo-agent-virt-XXXXXX");
    if (!mkdtemp(f->dir) || chmod(f->dir, 0755) < 0) {
        return -1;
    }
    /* A fresh instance id per run, so that a crashed earlier run cannot get in the way. */
    snprintf(f->id, sizeof f->id, "i-%08lx", (unsigned long)(time(NULL) ^ getpid()) & 0xfffffffUL);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->v) {
        struct nb_error err = {0};
        if (f->id[0]) {
            agent_virt_terminate(f->v, f->id, &err);
        }
        agent_virt_close(f->v);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
        if (system(cmd) != 0) {
            return -1;
        }
    }
    free(f);
    return 0;
}

static bool cpu_has_virt_extensions(void)
{
    FILE *fp = fopen("/proc/cpuinfo", "r");
    char line[4096];
    bool found = false;
    while (fp && !found && fgets(line, sizeof line, fp)) {
        if (strncmp(line, "flags", 5) == 0 && (strstr(line, " vmx") || strstr(line, " svm"))) {
            found = true;
        }
    }
    if (fp) {
        fclose(fp);
    }
    return found;
}

/* The probe boots a type='kvm' guest for real. On this machine (a VM without vmx/svm, nested
 * kvm_pvm) KVM guests die on MSR set-up or emulation failures, so the answer must be "qemu"; on a
 * host with working KVM either answer is accepted here. */
static void kvm_probe_boots(void **state)
{
    struct fixture *f = *state;
    long t0 = nb_monotonic_ms();
    const char *type = agent_virt_choose_type(f->v, "auto", f->dir, 5000);
    print_message("KVM probe chose \"%s\" in %ld ms\n", type, nb_monotonic_ms() - t0);
    assert_true(strcmp(type, "kvm") == 0 || strcmp(type, "qemu") == 0);
    if (!cpu_has_virt_extensions()) {
        assert_string_equal(type, "qemu");
    }
    assert_true(nb_monotonic_ms() - t0 < 20000);
}

static bool wait_for_file_text(const char *path, const char *needle, long timeout_ms)
{
    long deadline = nb_monotonic_ms() + timeout_ms;
    do {
        char buf[8192];
        int fd = open(path, O_RDONLY);
        if (fd >= 0) {
            ssize_t n = read(fd, buf, sizeof buf - 1);
            close(fd);
            for (ssize_t i = 0; i < n; i++) {
                if (buf[i] == '\0') {
                    buf[i] = ' ';
                }
            }
            buf[n > 0 ? n : 0] = '\0';
            if (strstr(buf, needle)) {
                return true;
            }
        }
        usleep(100000);
    } while (nb_monotonic_ms() < deadline);
    return false;
}

static void instance_lifecycle(void **state)
{
    struct fixture *f = *state;
    struct nb_error err = {0};

    /* The base image: a boot sector, published as a file:// URL, fetched into the cache. */
    unsigned char sector[512];
    assert_int_equal(agent_virt_boot_sector(MARKER, sector), 0);
    char src[128];
    snprintf(src, sizeof src, "%s/boot.img", f->dir);
    FILE *fp = fopen(src, "wb");
    assert_int_equal(fwrite(sector, 1, sizeof sector, fp), sizeof sector);
    fclose(fp);
    char sha[65];
    nb_sha256_hex(sector, sizeof sector, sha);
    char url[160];
    snprintf(url, sizeof url, "file://%s", src);
    char cache_dir[128];
    snprintf(cache_dir, sizeof cache_dir, "%s/images", f->dir);
    struct agent_imgcache_config icfg = {.dir = cache_dir, .max_bytes = 1 << 20};
    struct agent_imgcache *cache = agent_imgcache_open(&icfg, &err);
    assert_non_null(cache);
    char *base = NULL;
    assert_zero(agent_imgcache_get(cache, url, sha, sizeof sector, &base, &err), err);

    /* Its disks. */
    struct agent_disks_config dcfg = {.state_dir = f->dir};
    char *root = NULL;
    char *iso = NULL;
    assert_zero(agent_disks_create_root(&dcfg, f->id, base, "raw", 1, &root, &err), err);
    const char *keys[] = {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBogus test"};
    struct agent_disks_cidata cd = {.public_keys = keys, .n_public_keys = 1};
    assert_zero(agent_disks_create_config_drive(&dcfg, f->id, &cd, &iso, &err), err);
    char *log = agent_disks_path(&dcfg, f->id, "console.log", &err);

    /* Its domain. */
    struct agent_domxml_spec spec = {
        .instance_id = f->id,
        .tenant_id = "123456789012",
        .image_id = "ami-00000000000000001",
        .virt_type = "qemu",
        .vcpus = 1,
        .memory_mib = 64,
        .root_disk = root,
        .config_drive = iso,
        .console_log = log,
        .vnc_listen = "127.0.0.1",
        .vnc_password = "pw123456",
        .memballoon = true,
    };
    char *xml = agent_domxml_build(&spec, &err);
    assert_non_null(xml);

    long t0 = nb_monotonic_ms();
    assert_zero(agent_virt_define_start(f->v, f->id, xml, &err), err);
    print_message("define+start %ld ms\n", nb_monotonic_ms() - t0);
    assert_zero(agent_virt_define_start(f->v, f->id, xml, &err), err); /* idempotent */
    enum agent_virt_state st;
    assert_zero(agent_virt_state(f->v, f->id, &st, &err), err);
    assert_int_equal(st, AGENT_VIRT_RUNNING);

    t0 = nb_monotonic_ms();
    if (!wait_for_file_text(log, MARKER, 30000)) {
        fail_msg("no \"%s\" in the console log \"%s\"", MARKER, log);
    }
    print_message("serial marker after %ld ms\n", nb_monotonic_ms() - t0);

    int port = 0;
    assert_zero(agent_virt_vnc_port(f->v, f->id, &port, &err), err);
    assert_true(port >= 5900 && port < 65536);

    struct agent_virt_domain *doms = NULL;
    size_t n = 0;
    assert_zero(agent_virt_list(f->v, &doms, &n, &err), err);
    bool listed = false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(doms[i].id, f->id) == 0) {
            listed = true;
            assert_string_equal(doms[i].tenant, "123456789012");
            assert_string_equal(doms[i].image, "ami-00000000000000001");
            assert_int_equal(doms[i].state, AGENT_VIRT_RUNNING);
        }
    }
    free(doms);
    assert_true(listed);

    struct agent_virt_stats *stats = NULL;
    assert_zero(agent_virt_stats(f->v, &stats, &n, &err), err);
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(stats[i].id, f->id) == 0) {
            found = true;
            print_message("stats: cpu %llu ns, memory %llu KiB, block rd %llu B\n",
                          (unsigned long long)stats[i].cpu_time_ns,
                          (unsigned long long)stats[i].memory_kib,
                          (unsigned long long)stats[i].block_rd_bytes);
            assert_true(stats[i].cpu_time_ns > 0);
            assert_true(stats[i].memory_kib > 0);
            assert_true(stats[i].block_rd_bytes >= 512); /* SeaBIOS read the boot sector */
        }
    }
    free(stats);
    assert_true(found);

    struct agent_virt_node node;
    assert_zero(agent_virt_node_info(f->v, &node, &err), err);
    assert_true(node.cpus > 0 && node.memory_mib > 0);

    /* The boot sector ignores ACPI: stop destroys it after the grace time. */
    bool forced = false;
    t0 = nb_monotonic_ms();
    assert_zero(agent_virt_stop(f->v, f->id, 1000, &forced, &err), err);
    long took = nb_monotonic_ms() - t0;
    print_message("stop (grace 1000 ms) %ld ms\n", took);
    assert_true(forced);
    assert_true(took >= 1000);
    assert_zero(agent_virt_state(f->v, f->id, &st, &err), err);
    assert_int_equal(st, AGENT_VIRT_SHUTOFF);
    assert_int_equal(agent_virt_vnc_port(f->v, f->id, &port, &err), -1);
    assert_int_equal(err.code, NB_ERR_CONFLICT);

    assert_zero(agent_virt_start(f->v, f->id, &err), err);
    assert_zero(agent_virt_reboot(f->v, f->id, &err), err);
    assert_zero(agent_virt_state(f->v, f->id, &st, &err), err);
    assert_int_equal(st, AGENT_VIRT_RUNNING);

    t0 = nb_monotonic_ms();
    assert_zero(agent_virt_terminate(f->v, f->id, &err), err);
    print_message("terminate %ld ms\n", nb_monotonic_ms() - t0);
    assert_zero(agent_virt_state(f->v, f->id, &st, &err), err);
    assert_int_equal(st, AGENT_VIRT_ABSENT);
    assert_zero(agent_virt_terminate(f->v, f->id, &err), err);
    assert_zero(agent_disks_remove(&dcfg, f->id, &err), err);

    agent_imgcache_release(cache, sha);
    agent_imgcache_close(cache);
    free(base);
    free(root);
    free(iso);
    free(log);
    free(xml);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(kvm_probe_boots, setup, teardown),
        cmocka_unit_test_setup_teardown(instance_lifecycle, setup, teardown),
    };
    return cmocka_run_group_tests(tests, start_libvirtd, NULL);
}
