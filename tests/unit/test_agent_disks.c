/* Unit tests of the per-instance disks (compute-agent/disks.c): the child-process runner (status,
 * captured output, deadline, reaping), the instance directory, root overlays and ephemeral disks
 * made by the real qemu-img, the NoCloud config drive made by the real genisoimage and read back
 * with isoinfo, crash repair, and removal. Cases needing a tool that is not installed are
 * skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "nbtest.h"

#include "disks.h"
#include "nubo/crypto.h"
#include "nubo/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ID "i-0123456789abcdef0"

struct fixture {
    char root[64];
    struct agent_disks_config cfg;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->root, sizeof f->root, "/tmp/nubo-disks-XXXXXX");
    if (!mkdtemp(f->root)) {
        return -1;
    }
    f->cfg.state_dir = f->root;
    f->cfg.tool_timeout_ms = 30000;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->root);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static bool have(const char *tool)
{
    char path[128];
    snprintf(path, sizeof path, "/usr/bin/%s", tool);
    if (access(path, X_OK) != 0) {
        print_message("%s is not installed: skipped\n", tool);
        return false;
    }
    return true;
}

/* Runs 'argv' and returns its output (the caller frees it); fails the test when it fails. */
static char *run_ok(const char *const *argv)
{
    char *out = NULL;
    struct nb_error err = {0};
    if (agent_disks_run(argv, 30000, &out, &err) != 0) {
        fail_msg("%s: %s (%s)", argv[0], err.msg, err.detail);
    }
    return out;
}

static void run_reports_status_output_and_deadline(void **state)
{
    struct nb_error err = {0};
    char *out = NULL;
    const char *ok[] = {"sh", "-c", "echo hello; echo world >&2", NULL};
    assert_zero(agent_disks_run(ok, 5000, &out, &err), err);
    assert_non_null(strstr(out, "hello"));
    assert_non_null(strstr(out, "world"));
    free(out);

    const char *bad[] = {"sh", "-c", "echo 'no such image' >&2; exit 3", NULL};
    assert_int_equal(agent_disks_run(bad, 5000, NULL, &err), -1);
    assert_int_equal(err.code, NB_ERR_INTERNAL);
    assert_non_null(strstr(err.msg, "exit status 3"));
    assert_non_null(strstr(err.detail, "no such image"));

    /* stdin is /dev/null: a tool that reads it does not hang. */
    const char *cat[] = {"cat", NULL};
    assert_zero(agent_disks_run(cat, 5000, NULL, &err), err);

    long t0 = nb_monotonic_ms();
    const char *slow[] = {"sleep", "10", NULL};
    assert_int_equal(agent_disks_run(slow, 200, NULL, &err), -1);
    assert_int_equal(err.code, NB_ERR_TIMEOUT);
    assert_true(nb_monotonic_ms() - t0 < 2000);
    /* Killed and reaped: no child is left. */
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);

    const char *missing[] = {"nubo-no-such-tool", NULL};
    assert_int_equal(agent_disks_run(missing, 5000, NULL, &err), -1);
}

static void instance_dir_is_traversable(void **state)
{
    struct fixture *f = *state;
    struct nb_error err = {0};
    char *dir = NULL;
    assert_zero(agent_disks_instance_dir(&f->cfg, ID, &dir, &err), err);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755);
    char want[128];
    snprintf(want, sizeof want, "%s/instances/%s", f->root, ID);
    assert_string_equal(dir, want);
    free(dir);
    assert_int_equal(agent_disks_instance_dir(&f->cfg, "i-../../x", &dir, &err), -1);
    assert_int_equal(err.code, NB_ERR_INVALID);
    char *log = agent_disks_path(&f->cfg, ID, "console.log", &err);
    snprintf(want, sizeof want, "%s/instances/%s/console.log", f->root, ID);
    assert_string_equal(log, want);
    free(log);
}

/* Returns `qemu-img info --output=json` of 'path' (the caller frees it). */
static char *img_info(const char *path)
{
    const char *argv[] = {"qemu-img", "info", "--output=json", "-U", path, NULL};
    return run_ok(argv);
}

static void make_raw_base(struct fixture *f, char *path, size_t size, const char *mb)
{
    snprintf(path, size, "%s/base.raw", f->root);
    const char *argv[] = {"qemu-img", "create", "-q", "-f", "raw", path, mb, NULL};
    free(run_ok(argv));
}

static void root_overlay_over_base(void **state)
{
    struct fixture *f = *state;
    if (!have("qemu-img")) {
        skip();
    }
    char base[128];
    make_raw_base(f, base, sizeof base, "3G");
    struct nb_error err = {0};
    char *root = NULL;
    /* Asked for 1 GiB, the base is 3 GiB: the overlay is 3 GiB (never smaller than its base). */
    assert_zero(agent_disks_create_root(&f->cfg, ID, base, NULL, 1, &root, &err), err);
    char *info = img_info(root);
    assert_non_null(strstr(info, "\"format\": \"qcow2\""));
    assert_non_null(strstr(info, "\"virtual-size\": 3221225472"));
    assert_non_null(strstr(info, "\"backing-filename-format\": \"raw\""));
    assert_non_null(strstr(info, base));
    free(info);
    struct stat st1;
    assert_int_equal(stat(root, &st1), 0);
    assert_int_equal(st1.st_mode & 07777, 0644);

    /* Again (e.g. after a crash of the agent): the existing overlay, with the guest's data, is
     * kept as it is. */
    char *again = NULL;
    assert_zero(agent_disks_create_root(&f->cfg, ID, base, "raw", 8, &again, &err), err);
    struct stat st2;
    assert_int_equal(stat(again, &st2), 0);
    assert_int_equal(st1.st_ino, st2.st_ino);
    free(again);
    free(root);

    /* A bigger disk than the base for another instance. */
    assert_zero(agent_disks_create_root(&f->cfg, "i-00000001", base, "raw", 5, &root, &err), err);
    info = img_info(root);
    assert_non_null(strstr(info, "\"virtual-size\": 5368709120"));
    free(info);
    free(root);
}

/* A SIGKILL between qemu-img and the rename leaves "root.qcow2.tmp": the next call replaces it. */
static void crash_leftovers_are_repaired(void **state)
{
    struct fixture *f = *state;
    if (!have("qemu-img")) {
        skip();
    }
    char base[128];
    make_raw_base(f, base, sizeof base, "64M");
    struct nb_error err = {0};
    char *dir = NULL;
    assert_zero(agent_disks_instance_dir(&f->cfg, ID, &dir, &err), err);
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s/root.qcow2.tmp", dir);
    FILE *fp = fopen(tmp, "w");
    fputs("half-written garbage", fp);
    fclose(fp);
    char *root = NULL;
    assert_zero(agent_disks_create_root(&f->cfg, ID, base, NULL, 1, &root, &err), err);
    assert_int_equal(access(tmp, F_OK), -1);
    char *info = img_info(root);
    assert_non_null(strstr(info, "\"virtual-size\": 1073741824"));
    free(info);
    free(root);
    free(dir);
}

/* A user's qcow2 can name any host file as its backing file: such a base is refused. */
static void base_with_backing_file_is_refused(void **state)
{
    struct fixture *f = *state;
    if (!have("qemu-img")) {
        skip();
    }
    char base[128];
    make_raw_base(f, base, sizeof base, "64M");
    char evil[160];
    snprintf(evil, sizeof evil, "%s/evil.qcow2", f->root);
    const char *argv[] = {"qemu-img", "create", "-q", "-f", "qcow2", "-F",
                          "raw",      "-b",     base, evil, NULL};
    free(run_ok(argv));
    struct nb_error err = {0};
    char *root = NULL;
    assert_int_equal(agent_disks_create_root(&f->cfg, ID, evil, NULL, 1, &root, &err), -1);
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_non_null(strstr(err.msg, "backing file"));
    assert_null(root);
    assert_int_equal(agent_disks_create_root(&f->cfg, ID, "relative.img", NULL, 1, &root, &err),
                     -1);
    assert_int_equal(agent_disks_create_root(&f->cfg, ID, base, "vmdk", 1, &root, &err), -1);
}

static void ephemeral_disk(void **state)
{
    struct fixture *f = *state;
    if (!have("qemu-img")) {
        skip();
    }
    struct nb_error err = {0};
    char *path = NULL;
    assert_zero(agent_disks_create_ephemeral(&f->cfg, ID, 4, &path, &err), err);
    char *info = img_info(path);
    assert_non_null(strstr(info, "\"virtual-size\": 4294967296"));
    assert_null(strstr(info, "backing"));
    free(info);
    free(path);
    assert_int_equal(agent_disks_create_ephemeral(&f->cfg, ID, 0, &path, &err), -1);
}

/* The first 8 bytes of the disk image 'path' as qemu-io's hex dump, "41 41 41 41 ...". */
static char *first_bytes(const char *path)
{
    const char *argv[] = {"qemu-io", "-r", "-U", "-c", "read -v 0 8", path, NULL};
    char *out = run_ok(argv);
    char *line = strstr(out, "00000000:");
    assert_non_null(line);
    char *hex = strndup(line + 11, 23);
    free(out);
    return hex;
}

static void write_pattern(const char *path, const char *fmt)
{
    const char *argv[] = {"qemu-io", "-f", fmt, "-c", "write -P 0x41 0 4096", path, NULL};
    free(run_ok(argv));
}

/* A reset discards the guest's writes to the root overlay and the ephemeral disk: new files over
 * the same base, the config drive kept; a leftover temporary from a crash is replaced. */
static void reset_discards_overlay_and_ephemeral(void **state)
{
    struct fixture *f = *state;
    if (!have("qemu-img") || !have("qemu-io")) {
        skip();
    }
    char base[128];
    make_raw_base(f, base, sizeof base, "64M");
    FILE *fp = fopen(base, "r+");
    fputs("NUBOBASE", fp);
    fclose(fp);
    struct nb_error err = {0};
    char *root = NULL, *eph = NULL, *iso = NULL;
    assert_zero(agent_disks_create_root(&f->cfg, ID, base, "raw", 1, &root, &err), err);
    assert_zero(agent_disks_create_ephemeral(&f->cfg, ID, 2, &eph, &err), err);
    struct agent_disks_cidata cd = {.hostname = "desk-1"};
    if (have("genisoimage")) {
        assert_zero(agent_disks_create_config_drive(&f->cfg, ID, &cd, &iso, &err), err);
    }
    char *hex = first_bytes(root);
    assert_string_equal(hex, "4e 55 42 4f 42 41 53 45"); /* "NUBOBASE", through the overlay */
    free(hex);

    /* What a user leaves behind. */
    write_pattern(root, "qcow2");
    write_pattern(eph, "qcow2");
    hex = first_bytes(root);
    assert_string_equal(hex, "41 41 41 41 41 41 41 41");
    free(hex);
    struct stat before, iso_before;
    assert_int_equal(stat(root, &before), 0);
    if (iso) {
        assert_int_equal(stat(iso, &iso_before), 0);
    }
    /* As a crash in an earlier reset would leave it. */
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s.tmp", root);
    fp = fopen(tmp, "w");
    fputs("half-written garbage", fp);
    fclose(fp);

    assert_zero(agent_disks_reset(&f->cfg, ID, base, "raw", 1, 2, &err), err);
    struct stat after;
    assert_int_equal(stat(root, &after), 0);
    assert_true(after.st_ino != before.st_ino);
    assert_int_equal(after.st_mode & 07777, 0644);
    assert_int_equal(access(tmp, F_OK), -1);
    hex = first_bytes(root);
    assert_string_equal(hex, "4e 55 42 4f 42 41 53 45");
    free(hex);
    char *info = img_info(root);
    assert_non_null(strstr(info, "\"virtual-size\": 1073741824"));
    assert_non_null(strstr(info, "\"backing-filename-format\": \"raw\""));
    assert_non_null(strstr(info, base));
    free(info);
    hex = first_bytes(eph);
    assert_string_equal(hex, "00 00 00 00 00 00 00 00");
    free(hex);
    info = img_info(eph);
    assert_non_null(strstr(info, "\"virtual-size\": 2147483648"));
    free(info);
    if (iso) {
        struct stat iso_after;
        assert_int_equal(stat(iso, &iso_after), 0);
        assert_int_equal(iso_after.st_ino, iso_before.st_ino);
    }

    /* Again: the same result (the scheduler may repeat a start). */
    assert_zero(agent_disks_reset(&f->cfg, ID, base, NULL, 1, 2, &err), err);
    hex = first_bytes(root);
    assert_string_equal(hex, "4e 55 42 4f 42 41 53 45");
    free(hex);

    assert_int_equal(agent_disks_reset(&f->cfg, ID, "relative.raw", "raw", 1, 0, &err), -1);
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_int_equal(agent_disks_reset(&f->cfg, ID, base, "vmdk", 1, 0, &err), -1);
    assert_int_equal(err.code, NB_ERR_INVALID);
    /* A refused reset leaves the disk alone. */
    struct stat last;
    assert_int_equal(stat(root, &last), 0);
    free(root);
    free(eph);
    free(iso);
}

static void meta_data_text(void **state)
{
    const char *keys[] = {"ssh-ed25519 AAAAC3Nza key1", "ssh-rsa AAAAB3 \"quoted\" \\ key"};
    struct agent_disks_cidata cd = {
        .hostname = "ip-10-0-0-5", .public_keys = keys, .n_public_keys = 2};
    char *md = agent_disks_meta_data(ID, &cd);
    assert_string_equal(md, "instance-id: \"i-0123456789abcdef0\"\n"
                            "local-hostname: \"ip-10-0-0-5\"\n"
                            "public-keys:\n"
                            "  - \"ssh-ed25519 AAAAC3Nza key1\"\n"
                            "  - \"ssh-rsa AAAAB3 \\\"quoted\\\" \\\\ key\"\n");
    free(md);
    md = agent_disks_meta_data(ID, NULL);
    assert_string_equal(md, "instance-id: \"i-0123456789abcdef0\"\n"
                            "local-hostname: \"i-0123456789abcdef0\"\n");
    free(md);
}

static char *iso_file(const char *iso, const char *name)
{
    const char *argv[] = {"isoinfo", "-R", "-i", iso, "-x", name, NULL};
    return run_ok(argv);
}

static void config_drive_is_nocloud(void **state)
{
    struct fixture *f = *state;
    if (!have("genisoimage") || !have("isoinfo")) {
        skip();
    }
    const char *keys[] = {"ssh-ed25519 AAAAC3Nza key1"};
    const char *script = "#!/bin/sh\necho hello from user-data\n";
    char *b64 = nb_base64_encode(script, strlen(script));
    struct agent_disks_cidata cd = {.public_keys = keys, .n_public_keys = 1, .user_data_b64 = b64};
    struct nb_error err = {0};
    char *iso = NULL;
    assert_zero(agent_disks_create_config_drive(&f->cfg, ID, &cd, &iso, &err), err);
    const char *pvd[] = {"isoinfo", "-d", "-i", iso, NULL};
    char *d = run_ok(pvd);
    assert_non_null(strstr(d, "Volume id: cidata"));
    assert_non_null(strstr(d, "Rock Ridge"));
    assert_non_null(strstr(d, "Joliet"));
    free(d);
    char *ud = iso_file(iso, "/user-data");
    assert_string_equal(ud, script);
    free(ud);
    char *md = iso_file(iso, "/meta-data");
    assert_non_null(strstr(md, "instance-id: \"i-0123456789abcdef0\""));
    assert_non_null(strstr(md, "  - \"ssh-ed25519 AAAAC3Nza key1\""));
    free(md);
    free(iso);
    free(b64);

    /* Rebuilt on every call; no user data gives an empty file; no staging left behind. */
    struct agent_disks_cidata none = {0};
    assert_zero(agent_disks_create_config_drive(&f->cfg, ID, &none, &iso, &err), err);
    ud = iso_file(iso, "/user-data");
    assert_string_equal(ud, "");
    free(ud);
    char staging[256];
    snprintf(staging, sizeof staging, "%s/instances/%s/cidata.tmp", f->root, ID);
    assert_int_equal(access(staging, F_OK), -1);
    free(iso);

    struct agent_disks_cidata bad = {.user_data_b64 = "!!not base64!!"};
    assert_int_equal(agent_disks_create_config_drive(&f->cfg, ID, &bad, &iso, &err), -1);
    assert_int_equal(err.code, NB_ERR_INVALID);
}

static void remove_is_idempotent(void **state)
{
    struct fixture *f = *state;
    struct nb_error err = {0};
    char *dir = NULL;
    assert_zero(agent_disks_instance_dir(&f->cfg, ID, &dir, &err), err);
    char sub[256];
    snprintf(sub, sizeof sub, "%s/cidata.tmp", dir);
    mkdir(sub, 0755);
    snprintf(sub, sizeof sub, "%s/cidata.tmp/meta-data", dir);
    fclose(fopen(sub, "w"));
    assert_zero(agent_disks_remove(&f->cfg, ID, &err), err);
    assert_int_equal(access(dir, F_OK), -1);
    assert_zero(agent_disks_remove(&f->cfg, ID, &err), err);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(run_reports_status_output_and_deadline),
        cmocka_unit_test_setup_teardown(instance_dir_is_traversable, setup, teardown),
        cmocka_unit_test_setup_teardown(root_overlay_over_base, setup, teardown),
        cmocka_unit_test_setup_teardown(crash_leftovers_are_repaired, setup, teardown),
        cmocka_unit_test_setup_teardown(base_with_backing_file_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(ephemeral_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(reset_discards_overlay_and_ephemeral, setup, teardown),
        cmocka_unit_test(meta_data_text),
        cmocka_unit_test_setup_teardown(config_drive_is_nocloud, setup, teardown),
        cmocka_unit_test_setup_teardown(remove_is_idempotent, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
