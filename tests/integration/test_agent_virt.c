/* Integration tests of the compute agent's hypervisor modules against the real libvirtd and QEMU
 * (TCG) on this machine: the KVM probe really boots, and one instance goes the whole way, every
 * module for real: its base image (a 512-byte boot sector that prints a marker on COM1) through
 * the image cache, a qcow2 overlay and a config drive made by qemu-img and genisoimage, the domain
 * XML, then define+start, state, the serial console log, the VNC port, list, stats, stop (the
 * guest ignores ACPI, so it is destroyed after the grace time), start, reboot, terminate. Then
 * the whole agent (agent_open() and its HTTP routes, without a control plane) with the test guest
 * of tests/guest: the VNC endpoint and a VNC server behind it, and the reset of the root disk.
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

#include "agent.h"
#include "disks.h"
#include "domxml.h"
#include "imgcache.h"
#include "nubo/config.h"
#include "nubo/crypto.h"
#include "nubo/error.h"
#include "nubo/http.h"
#include "nubo/httpc.h"
#include "virt.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
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

/* --- the agent's HTTP API over a real guest: the VNC endpoint, the reset of the root disk ---- */

#define GUEST_DIR   "/var/cache/nubo/test-guest"
#define AGENT_TOKEN "h-0000000000000000a:0123456789abcdef0123456789abcdef"

/* The SHA-256 of file 'name' of the test guest, from its SHA256SUMS, into 'out'. */
static void guest_sum(const char *name, char out[65])
{
    FILE *fp = fopen(GUEST_DIR "/SHA256SUMS", "r");
    assert_non_null(fp);
    char line[256], sum[65], file[128];
    bool found = false;
    while (!found && fgets(line, sizeof line, fp)) {
        found = sscanf(line, "%64s %127s", sum, file) == 2 && !strcmp(file, name);
    }
    fclose(fp);
    assert_true(found);
    memcpy(out, sum, 65);
}

static json_t *guest_image(const char *id, const char *name, const char *format)
{
    char sum[65], url[128];
    guest_sum(name, sum);
    snprintf(url, sizeof url, "file://" GUEST_DIR "/%s", name);
    struct stat st;
    char path[128];
    snprintf(path, sizeof path, GUEST_DIR "/%s", name);
    assert_int_equal(stat(path, &st), 0);
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "id", id, "location", url, "sha256", sum,
                     "format", format, "size_bytes", (json_int_t)st.st_size, "kernel_args",
                     "console=ttyS0 quiet panic=-1");
}

/* A call of the agent's API at 'port' with the node token ('token' false: without). Returns the
 * status; the body into '*body' (the caller frees it) when 'body' is not NULL. */
static long agent_call(int port, const char *method, const char *path, const char *json, bool token,
                       char **body)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    const char *headers[] = {"Authorization: Bearer " AGENT_TOKEN, NULL};
    struct nb_httpc_request rq = {.method = method,
                                  .url = url,
                                  .headers = token ? headers : NULL,
                                  .body = json,
                                  .body_len = json ? strlen(json) : 0,
                                  .timeout_ms = 120000};
    struct nb_httpc_response resp = {0};
    struct nb_error err = {0};
    assert_zero(nb_httpc_do(&rq, &resp, &err), err);
    long status = resp.status;
    if (body) {
        *body = resp.body;
        resp.body = NULL;
    }
    nb_httpc_response_free(&resp);
    return status;
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : 0;
}

/* Waits for 'needle' in file 'path' past byte 'from' (a console log keeps earlier boots). */
static bool wait_for_text_after(const char *path, off_t from, const char *needle, long timeout_ms)
{
    long deadline = nb_monotonic_ms() + timeout_ms;
    do {
        int fd = open(path, O_RDONLY);
        if (fd >= 0) {
            char buf[65536];
            ssize_t n = pread(fd, buf, sizeof buf - 1, from);
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

/* Waits for the guest's root disk marker to be 'marker' past 'from' in 'log', and for the guest
 * to be ready. */
static void expect_marker(const char *log, off_t from, const char *marker)
{
    char needle[128];
    snprintf(needle, sizeof needle, "NUBO-ROOT-DISK marker=%s\r\n", marker); /* a tty's ends */
    if (!wait_for_text_after(log, from, needle, 90000)) {
        fail_msg("no \"%s\" in the console log \"%s\" past byte %lld", needle, log,
                 (long long)from);
    }
    if (!wait_for_text_after(log, from, "NUBO-GUEST-READY", 60000)) {
        fail_msg("the guest did not get ready (\"%s\")", log);
    }
}

/* The first bytes a VNC server sends: its protocol version. */
static void expect_rfb_banner(const char *address, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    assert_int_equal(inet_pton(AF_INET, address, &sa.sin_addr), 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char banner[13] = "";
    size_t got = 0;
    while (got < 12) {
        ssize_t n = read(fd, banner + got, 12 - got);
        assert_true(n > 0);
        got += (size_t)n;
    }
    close(fd);
    assert_string_equal(banner, "RFB 003.008\n");
}

/* The real agent (agent_open(), its HTTP routes, no control plane) spawns the test guest; its VNC
 * endpoint answers a wildcard listen with the address the caller used, and a VNC server is there;
 * a write to the root overlay while stopped survives a start, and a start with reset_root
 * discards it: the guest reads its image's marker again. */
static void agent_vnc_and_reset_root(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(system("tests/guest/build-guest.sh >/dev/null"), 0);
    char state_dir[128];
    snprintf(state_dir, sizeof state_dir, "%s/agent", f->dir);
    struct nb_config *cfg = nb_config_new();
    nb_config_set(cfg, "agent.token", AGENT_TOKEN);
    nb_config_set(cfg, "agent.control_url", "http://127.0.0.1:9"); /* not called here */
    nb_config_set(cfg, "agent.state_dir", state_dir);
    nb_config_set(cfg, "agent.virt_type", "qemu");
    nb_config_set(cfg, "agent.vnc_listen", "0.0.0.0");
    nb_config_set(cfg, "agent.stop_grace_s", "5");
    struct nb_error err = {0};
    struct agent_ctx *a = agent_open(cfg, &err);
    assert_ok(a, err);
    struct nb_http_config hcfg = {.port = 0, .thread_per_connection = true};
    struct nb_http_server *srv = nb_http_server_new(&hcfg, &err);
    assert_ok(srv, err);
    assert_int_equal(agent_http_routes(a, srv), 0);
    assert_ok(nb_http_server_start(srv, &err) == 0, err);
    int port = nb_http_server_port(srv);

    json_t *spec = json_pack(
        "{s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:n, s:[], s:[], s:o, s:o, s:o}", "instance_id",
        f->id, "tenant_id", "123456789012", "hostname", "desk-1", "instance_type", "t3.nano",
        "vcpus", 1, "memory_mib", 256, "disk_gib", 1, "ephemeral_gib", 0, "user_data", "ssh_keys",
        "interfaces", "image", guest_image("ami-00000000000000001", "disk.raw", "raw"), "kernel",
        guest_image("aki-00000000000000001", "vmlinux", "raw"), "ramdisk",
        guest_image("ari-00000000000000001", "initrd.img", "raw"));
    char *spec_text = json_dumps(spec, 0);
    json_decref(spec);
    char path[128], *body = NULL;
    snprintf(path, sizeof path, "/v1/instances/%s", f->id);
    long t0 = nb_monotonic_ms();
    assert_int_equal(agent_call(port, "PUT", path, spec_text, true, NULL), 200);
    print_message("spawn %ld ms\n", nb_monotonic_ms() - t0);
    free(spec_text);
    char log[256];
    snprintf(log, sizeof log, "%s/instances/%s/console.log", state_dir, f->id);
    expect_marker(log, 0, "NUBO-TEST-DISK-v1");

    /* VNC: the node token is needed; the address is the one this call reached the agent at. */
    snprintf(path, sizeof path, "/v1/instances/%s/vnc", f->id);
    assert_int_equal(agent_call(port, "GET", path, NULL, false, NULL), 401);
    assert_int_equal(agent_call(port, "GET", path, NULL, true, &body), 200);
    json_t *vnc = json_loads(body, 0, NULL);
    assert_non_null(vnc);
    assert_string_equal(json_string_value(json_object_get(vnc, "address")), "127.0.0.1");
    int vnc_port = (int)json_integer_value(json_object_get(vnc, "port"));
    assert_true(vnc_port >= 5900 && vnc_port < 65536);
    json_decref(vnc);
    free(body);
    expect_rfb_banner("127.0.0.1", vnc_port);
    assert_int_equal(
        agent_call(port, "GET", "/v1/instances/i-00000000000000bad/vnc", NULL, true, NULL), 404);

    /* A running desktop cannot be reset. */
    char start[128];
    snprintf(start, sizeof start, "/v1/instances/%s/start", f->id);
    assert_int_equal(agent_call(port, "POST", start, "{\"reset_root\": true}", true, &body), 409);
    assert_non_null(strstr(body, "IncorrectInstanceState"));
    free(body);

    /* Stopped, its overlay written from the host: a plain start keeps what was written. */
    char stop[128];
    snprintf(stop, sizeof stop, "/v1/instances/%s/stop", f->id);
    assert_int_equal(agent_call(port, "POST", stop, "{\"force\": false}", true, NULL), 200);
    assert_int_equal(agent_call(port, "GET", path, NULL, true, &body), 409);
    assert_non_null(strstr(body, "IncorrectInstanceState"));
    free(body);
    char root[256], cmd[512];
    snprintf(root, sizeof root, "%s/instances/%s/root.qcow2", state_dir, f->id);
    snprintf(cmd, sizeof cmd, "qemu-io -f qcow2 -c 'write -P 0x41 0 512' '%s' >/dev/null", root);
    assert_int_equal(system(cmd), 0);
    off_t from = file_size(log);
    assert_int_equal(agent_call(port, "POST", start, "{}", true, NULL), 200);
    expect_marker(log, from, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");

    /* Stopped again, started with reset_root: the image's marker is back. */
    assert_int_equal(agent_call(port, "POST", stop, NULL, true, NULL), 200);
    from = file_size(log);
    t0 = nb_monotonic_ms();
    assert_int_equal(
        agent_call(port, "POST", start, "{\"reset_root\": true, \"reset_id\": \"7\"}", true, NULL),
        200);
    print_message("reset and start %ld ms\n", nb_monotonic_ms() - t0);
    expect_marker(log, from, "NUBO-TEST-DISK-v1");
    /* The same request again (a retry after a lost answer) succeeds without a second reset;
     * another one finds the desktop running. */
    assert_int_equal(
        agent_call(port, "POST", start, "{\"reset_root\": true, \"reset_id\": \"7\"}", true, NULL),
        200);
    assert_int_equal(
        agent_call(port, "POST", start, "{\"reset_root\": true, \"reset_id\": \"8\"}", true, NULL),
        409);

    snprintf(path, sizeof path, "/v1/instances/%s", f->id);
    assert_int_equal(agent_call(port, "DELETE", path, NULL, true, NULL), 200);
    f->id[0] = '\0';
    nb_http_server_free(srv);
    agent_close(a);
    nb_config_free(cfg);
}

int main(void)
{
    nb_httpc_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(kvm_probe_boots, setup, teardown),
        cmocka_unit_test_setup_teardown(instance_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(agent_vnc_and_reset_root, setup, teardown),
    };
    return cmocka_run_group_tests(tests, start_libvirtd, NULL);
}
