/* nubo-agent: the instance operations. See agent.h.
 *
 * A spawn writes the scheduler's spec to STATE/instances/<id>/spec.json first: the instance's
 * images are pinned in the cache by it (image_in_use() in agent.c), and a later start or reboot
 * after a node restart knows what the instance is.
 *
 * An instance launched into a subnet has network interfaces in its spec ("interfaces": [{"id",
 * "mac"}]): their taps are made and plugged into Open vSwitch before the domain starts (vif.h),
 * again before every start (a host reboot loses them), and removed after the domain is gone.
 *
 * A start may reset the disks first (non-persistent desktops): new disks from what spec.json
 * says, made while the domain is shut off; the request's id, kept in the instance directory,
 * tells a retry of that start from a new reset of a running desktop. */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "disks.h"
#include "domxml.h"
#include "imgcache.h"
#include "vif.h"
#include "virt.h"

#include <openssl/evp.h>

#include "nubo/clock.h"
#include "nubo/crypto.h"
#include "nubo/error.h"
#include "nubo/json.h"
#include "nubo/log.h"

#define DEFAULT_CMDLINE "console=ttyS0"
#define MAX_IFACES      8

static struct agent_disks_config disks_cfg(const struct agent_ctx *a)
{
    return (struct agent_disks_config){.state_dir = a->state_dir};
}

/* Writes 'text' to file 'name' of the instance directory, atomically (temporary file, fsync,
 * rename). */
static int save_file(struct agent_ctx *a, const char *id, const char *name, const char *text,
                     struct nb_error *err)
{
    struct agent_disks_config dc = disks_cfg(a);
    char *dir = NULL;
    if (agent_disks_instance_dir(&dc, id, &dir, err) < 0) {
        return -1;
    }
    char tmp[PATH_MAX], path[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    free(dir);
    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        nb_error_errno(err, errno, "could not create \"%s\"", tmp);
    } else {
        size_t len = strlen(text);
        if (write(fd, text, len) != (ssize_t)len || fsync(fd) < 0) {
            nb_error_errno(err, errno, "could not write \"%s\"", tmp);
        } else if (rename(tmp, path) < 0) {
            nb_error_errno(err, errno, "could not rename \"%s\"", tmp);
        } else {
            rc = 0;
        }
        close(fd);
    }
    return rc;
}

/* Writes 'spec' to the instance's spec.json. */
static int save_spec(struct agent_ctx *a, const char *id, const json_t *spec, struct nb_error *err)
{
    char *text = json_dumps(spec, JSON_INDENT(2) | JSON_SORT_KEYS);
    int rc = save_file(a, id, "spec.json", text, err);
    free(text);
    return rc;
}

/* The image object "key" of the spec ("image", "kernel", "ramdisk"), or NULL when absent. */
static const json_t *spec_image(const json_t *spec, const char *key)
{
    const json_t *img = json_object_get(spec, key);
    return json_is_object(img) ? img : NULL;
}

/* Fetches the image object 'img' into the cache; stores the cached path (malloc()ed). */
static int fetch(struct agent_ctx *a, const char *what, const json_t *img, char **path,
                 struct nb_error *err)
{
    const char *url = json_string_value(json_object_get(img, "location"));
    const char *sha = json_string_value(json_object_get(img, "sha256"));
    const char *image_id = json_string_value(json_object_get(img, "id"));
    json_int_t size = json_integer_value(json_object_get(img, "size_bytes"));
    if (!url || !sha) {
        nb_error_set(err, NB_ERR_INVALID,
                     "the %s image \"%s\" has no location and checksum: it cannot be booted", what,
                     image_id ? image_id : "?");
        nb_error_reason(err, "InvalidImage");
        return -1;
    }
    if (agent_imgcache_get(a->cache, url, sha, size > 0 ? (uint64_t)size : 0, path, err) < 0) {
        return -1;
    }
    /* The spec file pins it from now on (image_in_use() in agent.c). */
    agent_imgcache_release(a->cache, sha);
    return 0;
}

/* The first 'n' (at most 64) hex digits of HMAC-SHA-256(node token, 'msg') into 'out' (n + 1
 * bytes): secrets the control plane, which knows the token, can derive too. */
static void token_mac(const struct agent_ctx *a, const char *msg, size_t n, char *out)
{
    uint8_t mac[32];
    char hex[65];
    nb_hmac_sha256(a->token, strlen(a->token), msg, strlen(msg), mac);
    nb_hex_encode(mac, sizeof mac, hex);
    memcpy(out, hex, n);
    out[n] = '\0';
}

/* Parses the keys of the spec; returns the number found, pointers into 'spec'. */
static size_t spec_keys(const json_t *spec, const char **keys, size_t max)
{
    size_t n = 0, i;
    json_t *k;
    json_array_foreach(json_object_get(spec, "ssh_keys"), i, k)
    {
        if (json_is_string(k) && n < max) {
            keys[n++] = json_string_value(k);
        }
    }
    return n;
}

static struct agent_vif_config vif_cfg(const struct agent_ctx *a)
{
    return (struct agent_vif_config){.bridge = a->ovs_bridge, .rundir = a->ovs_rundir};
}

/* The network interfaces of 'spec' into 'out' (pointers into 'spec'), in order. Returns their
 * number, or -1 with 'err' set when one is malformed or there are more than MAX_IFACES. */
static int spec_ifaces(const json_t *spec, struct agent_vif *out, struct nb_error *err)
{
    const json_t *arr = json_object_get(spec, "interfaces");
    size_t i;
    json_t *v;
    if (json_array_size(arr) > MAX_IFACES) {
        nb_error_set(err, NB_ERR_INVALID, "an instance has at most %d network interfaces",
                     MAX_IFACES);
        return -1;
    }
    json_array_foreach(arr, i, v)
    {
        out[i] = (struct agent_vif){.id = json_string_value(json_object_get(v, "id")),
                                    .mac = json_string_value(json_object_get(v, "mac"))};
        if (!agent_vif_valid(&out[i])) {
            nb_error_set(err, NB_ERR_INVALID, "network interface %zu of the spec is malformed", i);
            return -1;
        }
    }
    return (int)json_array_size(arr);
}

/* Plugs the interfaces 'vifs' of instance 'id'; '*netdev' tells whether the bridge runs the
 * userspace datapath. */
static int plug_all(struct agent_ctx *a, const char *id, const struct agent_vif *vifs, int n,
                    bool *netdev, struct nb_error *err)
{
    struct agent_vif_config vc = vif_cfg(a);
    *netdev = false;
    for (int i = 0; i < n; i++) {
        if (agent_vif_plug(&vc, id, &vifs[i], netdev, err) < 0) {
            return -1;
        }
    }
    return 0;
}

/* The saved spec.json of instance 'id': a new reference, or NULL when it has none (or it is
 * unreadable). */
static json_t *load_spec(struct agent_ctx *a, const char *id)
{
    char path[PATH_MAX + 16];
    agent_instance_dir(a, id, path);
    strcat(path, "/spec.json");
    return json_load_file(path, 0, NULL);
}

int agent_plug_saved(struct agent_ctx *a, const char *id, struct nb_error *err)
{
    json_t *spec = load_spec(a, id);
    struct agent_vif vifs[MAX_IFACES];
    bool netdev;
    int n = spec ? spec_ifaces(spec, vifs, err) : 0;
    int rc = n < 0 ? -1 : plug_all(a, id, vifs, n, &netdev, err);
    json_decref(spec);
    return rc;
}

int agent_unplug_saved(struct agent_ctx *a, const char *id, struct nb_error *err)
{
    json_t *spec = load_spec(a, id);
    struct agent_vif vifs[MAX_IFACES];
    struct agent_vif_config vc = vif_cfg(a);
    int n = spec ? spec_ifaces(spec, vifs, err) : 0, rc = n < 0 ? -1 : 0;
    for (int i = 0; i < n; i++) {
        /* One interface that cannot be unplugged (Open vSwitch down) must not keep the others,
         * nor the instance's disks, forever: its port is left behind, without its tap, which
         * nubo-netctl ignores (no OpenFlow port). */
        struct nb_error e = {0};
        if (agent_vif_unplug(&vc, vifs[i].id, &e) < 0) {
            nb_warn("instance %s: %s%s%s", id, e.msg, e.detail[0] ? ": " : "", e.detail);
        }
    }
    json_decref(spec);
    return rc;
}

static int spawn_locked(struct agent_ctx *a, const char *id, const json_t *spec,
                        struct nb_error *err)
{
    struct agent_virt *v = agent_virt_pick(a);
    enum agent_virt_state st;
    if (agent_virt_state(v, id, &st, err) < 0) {
        return -1;
    }
    if (st == AGENT_VIRT_RUNNING) {
        return 0; /* a retry of a spawn that worked */
    }
    const json_t *image = spec_image(spec, "image"), *kernel = spec_image(spec, "kernel");
    const json_t *ramdisk = spec_image(spec, "ramdisk");
    if (!image) {
        nb_error_set(err, NB_ERR_INVALID, "the spawn request of %s has no image", id);
        return -1;
    }
    if (save_spec(a, id, spec, err) < 0) {
        return -1;
    }
    struct agent_disks_config dc = disks_cfg(a);
    char *base = NULL, *kpath = NULL, *rpath = NULL, *root = NULL, *eph = NULL, *cfg = NULL;
    char *log = NULL, *xml = NULL;
    int rc = -1;
    json_int_t disk_gib = json_integer_value(json_object_get(spec, "disk_gib"));
    json_int_t eph_gib = json_integer_value(json_object_get(spec, "ephemeral_gib"));
    const char *format = json_string_value(json_object_get(image, "format"));
    const char *keys[16];
    struct agent_vif vifs[MAX_IFACES];
    struct agent_domxml_iface difs[MAX_IFACES];
    char taps[MAX_IFACES][AGENT_VIF_TAP_MAX];
    bool netdev = false;
    int n_vifs = spec_ifaces(spec, vifs, err);
    if (n_vifs < 0) {
        return -1;
    }
    struct agent_disks_cidata cd = {
        .hostname = json_string_value(json_object_get(spec, "hostname")),
        .public_keys = keys,
        .n_public_keys = spec_keys(spec, keys, 16),
        .user_data_b64 = json_string_value(json_object_get(spec, "user_data")),
    };
    long t0 = nb_monotonic_ms();
    if (fetch(a, "machine", image, &base, err) < 0 ||
        (kernel && fetch(a, "kernel", kernel, &kpath, err) < 0) ||
        (ramdisk && fetch(a, "ramdisk", ramdisk, &rpath, err) < 0)) {
        goto done;
    }
    long t_images = nb_monotonic_ms();
    if (plug_all(a, id, vifs, n_vifs, &netdev, err) < 0) {
        goto done;
    }
    for (int i = 0; i < n_vifs; i++) {
        agent_vif_tap_name(vifs[i].id, taps[i]);
        difs[i] = (struct agent_domxml_iface){.kind = AGENT_DOMXML_IFACE_TAP,
                                              .mac = vifs[i].mac,
                                              .target_dev = taps[i],
                                              .no_tx_csum = netdev};
    }
    if (agent_disks_create_root(&dc, id, base, format, (unsigned)disk_gib, &root, err) < 0 ||
        (eph_gib > 0 && agent_disks_create_ephemeral(&dc, id, (unsigned)eph_gib, &eph, err) < 0) ||
        agent_disks_create_config_drive(&dc, id, &cd, &cfg, err) < 0 ||
        !(log = agent_disks_path(&dc, id, "console.log", err))) {
        goto done;
    }
    const char *args = json_string_value(json_object_get(image, "kernel_args"));
    /* Derived from the node token, so that it needs no storage and the gateway's console proxy,
     * which knows the token, derives the same one (nb_vnc_password()). */
    char password[9];
    nb_vnc_password(a->token, id, password);
    struct agent_domxml_spec ds = {
        .instance_id = id,
        .tenant_id = json_string_value(json_object_get(spec, "tenant_id")),
        .image_id = json_string_value(json_object_get(image, "id")),
        .instance_type = json_string_value(json_object_get(spec, "instance_type")),
        .host_id = a->host_id,
        .virt_type = a->virt_type,
        .vcpus = (unsigned)json_integer_value(json_object_get(spec, "vcpus")),
        .memory_mib = (unsigned long)json_integer_value(json_object_get(spec, "memory_mib")),
        .kernel = kpath,
        .initrd = rpath,
        .cmdline = kpath ? (args ? args : DEFAULT_CMDLINE) : NULL,
        .root_disk = root,
        .ephemeral_disk = eph,
        .config_drive = cfg,
        .console_log = log,
        .vnc_listen = a->vnc_listen,
        .vnc_password = password,
        .memballoon = true,
        .ifaces = difs,
        .n_ifaces = (size_t)n_vifs,
    };
    long t_disks = nb_monotonic_ms();
    if (!(xml = agent_domxml_build(&ds, err)) || agent_virt_define_start(v, id, xml, err) < 0) {
        goto done;
    }
    nb_debug("instance %s: images %ld ms, %d interfaces, disks and config drive %ld ms, define "
             "and start %ld ms",
             id, t_images - t0, n_vifs, t_disks - t_images, nb_monotonic_ms() - t_disks);
    rc = 0;

done:
    free(base);
    free(kpath);
    free(rpath);
    free(root);
    free(eph);
    free(cfg);
    free(log);
    free(xml);
    return rc;
}

int agent_spawn(struct agent_ctx *a, const char *id, const json_t *spec, struct nb_error *err)
{
    pthread_mutex_t *mu = agent_lock_of(a, id);
    long t0 = nb_monotonic_ms();
    pthread_mutex_lock(mu);
    int rc = spawn_locked(a, id, spec, err);
    pthread_mutex_unlock(mu);
    agent_count(a, "spawn", rc == 0, (double)(nb_monotonic_ms() - t0) / 1000.0);
    if (rc == 0) {
        nb_info("instance %s running", id);
    } else {
        nb_warn("instance %s: spawn failed: %s%s%s", id, err->msg, err->detail[0] ? ": " : "",
                err->detail);
    }
    return rc;
}

int agent_stop_instance(struct agent_ctx *a, const char *id, bool force, struct nb_error *err)
{
    pthread_mutex_t *mu = agent_lock_of(a, id);
    pthread_mutex_lock(mu);
    bool forced = false;
    int rc = agent_virt_stop(agent_virt_pick(a), id, force ? 0 : a->stop_grace_ms, &forced, err);
    pthread_mutex_unlock(mu);
    agent_count(a, "stop", rc == 0, 0);
    if (rc == 0) {
        nb_info("instance %s stopped%s", id,
                forced ? " (powered off: no clean shutdown within the grace time)" : "");
    }
    return rc;
}

/* The file of the instance directory that holds the request id of the last reset of its disks,
 * by which a repeated reset request is told from a new one. */
#define RESET_ID_FILE "reset_id"

/* Whether the last reset of instance 'id' was made by request 'reset_id'. */
static bool reset_done_by(struct agent_ctx *a, const char *id, const char *reset_id)
{
    char path[PATH_MAX + 16], buf[AGENT_RESET_ID_MAX + 2];
    agent_instance_dir(a, id, path);
    strcat(path, "/" RESET_ID_FILE);
    FILE *f = fopen(path, "r");
    if (!f) {
        return false;
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return !strcmp(buf, reset_id);
}

/* The reset of a start request: with the domain shut off, new disks from the saved spec
 * (agent_disks_reset()). Returns 1 when there is nothing to do because request 'reset_id'
 * already reset the disks and started the domain (a retry), 0 when reset, -1 with 'err'. */
static int reset_locked(struct agent_ctx *a, struct agent_virt *v, const char *id,
                        const char *reset_id, struct nb_error *err)
{
    enum agent_virt_state st;
    if (agent_virt_state(v, id, &st, err) < 0) {
        return -1;
    }
    if (st == AGENT_VIRT_ABSENT) {
        nb_error_set(err, NB_ERR_NOT_FOUND, "no domain \"%s\" on this node", id);
        return -1;
    }
    if (st != AGENT_VIRT_SHUTOFF && st != AGENT_VIRT_CRASHED) {
        if (reset_id && (st == AGENT_VIRT_RUNNING || st == AGENT_VIRT_PAUSED) &&
            reset_done_by(a, id, reset_id)) {
            return 1;
        }
        /* Resetting under a live QEMU would pull the disk from under the guest. */
        nb_error_set(err, NB_ERR_CONFLICT,
                     "instance %s is %s: its disks can be reset only while it is stopped", id,
                     agent_virt_state_name(st));
        nb_error_reason(err, "IncorrectInstanceState");
        return -1;
    }
    json_t *spec = load_spec(a, id);
    const json_t *image = spec ? spec_image(spec, "image") : NULL;
    if (!image) {
        nb_error_set(err, NB_ERR_NOT_FOUND,
                     "instance %s has no saved spec with an image on this node: its disks cannot "
                     "be reset",
                     id);
        json_decref(spec);
        return -1;
    }
    struct agent_disks_config dc = disks_cfg(a);
    char *base = NULL;
    json_int_t disk_gib = json_integer_value(json_object_get(spec, "disk_gib"));
    json_int_t eph_gib = json_integer_value(json_object_get(spec, "ephemeral_gib"));
    const char *format = json_string_value(json_object_get(image, "format"));
    char path[PATH_MAX + 16];
    agent_instance_dir(a, id, path);
    strcat(path, "/" RESET_ID_FILE);
    /* The old record goes first: a crash after the disks are new and before the record of this
     * request is written must not let an older request id pass for this one. */
    int rc = unlink(path) < 0 && errno != ENOENT ? -1 : 0;
    if (rc < 0) {
        nb_error_errno(err, errno, "could not remove \"%s\"", path);
    }
    if (rc == 0 &&
        (fetch(a, "machine", image, &base, err) < 0 ||
         agent_disks_reset(&dc, id, base, format, (unsigned)(disk_gib > 0 ? disk_gib : 0),
                           (unsigned)(eph_gib > 0 ? eph_gib : 0), err) < 0 ||
         (reset_id && save_file(a, id, RESET_ID_FILE, reset_id, err) < 0))) {
        rc = -1;
    }
    if (rc == 0) {
        nb_info("instance %s: disks reset to image %s%s", id,
                json_string_value(json_object_get(image, "id")),
                eph_gib > 0 ? " (and a new, empty ephemeral disk)" : "");
    }
    free(base);
    json_decref(spec);
    return rc;
}

int agent_start_instance(struct agent_ctx *a, const char *id, bool reset_root, const char *reset_id,
                         struct nb_error *err)
{
    if (reset_id &&
        (!*reset_id || strlen(reset_id) > AGENT_RESET_ID_MAX || strpbrk(reset_id, "/\n"))) {
        nb_error_set(err, NB_ERR_INVALID, "\"reset_id\" must be 1 to %d characters, no '/'",
                     AGENT_RESET_ID_MAX);
        return -1;
    }
    struct agent_virt *v = agent_virt_pick(a);
    pthread_mutex_t *mu = agent_lock_of(a, id);
    pthread_mutex_lock(mu);
    int rc = reset_root ? reset_locked(a, v, id, reset_id, err) : 0;
    if (rc == 0) {
        rc = agent_plug_saved(a, id, err) < 0 ? -1 : agent_virt_start(v, id, err);
    } else if (rc == 1) {
        rc = 0;
    }
    pthread_mutex_unlock(mu);
    agent_count(a, reset_root ? "start_reset" : "start", rc == 0, 0);
    return rc;
}

int agent_vnc_port(struct agent_ctx *a, const char *id, int *port, struct nb_error *err)
{
    if (agent_virt_vnc_port(a->virt, id, port, err) == 0) {
        return 0;
    }
    if (err->code == NB_ERR_CONFLICT) {
        nb_error_reason(err, "IncorrectInstanceState");
    } else if (err->code == NB_ERR_NOT_FOUND) {
        nb_error_set(err, NB_ERR_NOT_FOUND, "instance %s has no VNC display on this node", id);
    }
    return -1;
}

int agent_reboot_instance(struct agent_ctx *a, const char *id, struct nb_error *err)
{
    pthread_mutex_t *mu = agent_lock_of(a, id);
    pthread_mutex_lock(mu);
    /* A shut-off domain is started instead: its taps must be there. */
    int rc = agent_plug_saved(a, id, err) < 0 ? -1 : agent_virt_reboot(agent_virt_pick(a), id, err);
    pthread_mutex_unlock(mu);
    agent_count(a, "reboot", rc == 0, 0);
    return rc;
}

int agent_terminate(struct agent_ctx *a, const char *id, struct nb_error *err)
{
    struct agent_disks_config dc = disks_cfg(a);
    pthread_mutex_t *mu = agent_lock_of(a, id);
    pthread_mutex_lock(mu);
    /* The taps after the domain (QEMU holds them open), the disks last (the spec names the
     * taps). */
    int rc =
        agent_virt_terminate(agent_virt_pick(a), id, err) < 0 || agent_unplug_saved(a, id, err) < 0
            ? -1
            : agent_disks_remove(&dc, id, err);
    pthread_mutex_unlock(mu);
    agent_count(a, "terminate", rc == 0, 0);
    if (rc == 0) {
        nb_info("instance %s terminated: domain and disks removed", id);
    }
    return rc;
}

char *agent_console(struct agent_ctx *a, const char *id, size_t max, struct nb_error *err)
{
    struct agent_disks_config dc = disks_cfg(a);
    char *path = agent_disks_path(&dc, id, "console.log", err);
    if (!path) {
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        nb_error_set(err, NB_ERR_NOT_FOUND, "instance %s has no console log on this node", id);
        free(path);
        return NULL;
    }
    free(path);
    struct stat sb;
    char *out = NULL;
    if (fstat(fd, &sb) == 0) {
        off_t from = sb.st_size > (off_t)max ? sb.st_size - (off_t)max : 0;
        size_t len = (size_t)(sb.st_size - from);
        out = malloc(len + 1);
        ssize_t got = out ? pread(fd, out, len, from) : -1;
        if (got < 0) {
            free(out);
            out = NULL;
            nb_error_errno(err, errno, "could not read the console log of %s", id);
        } else {
            out[got] = '\0';
        }
    } else {
        nb_error_errno(err, errno, "could not stat the console log of %s", id);
    }
    close(fd);
    return out;
}

const char *agent_instance_state(struct agent_ctx *a, const char *id, struct nb_error *err)
{
    enum agent_virt_state st;
    if (agent_virt_state(a->virt, id, &st, err) < 0) {
        return NULL;
    }
    switch (st) {
    case AGENT_VIRT_RUNNING:
        return "running";
    case AGENT_VIRT_SHUTOFF:
        return "stopped";
    case AGENT_VIRT_ABSENT:
        return "absent";
    default:
        return agent_virt_state_name(st);
    }
}

/* --- snapshots (CreateImage) ------------------------------------------------------------------ */

void agent_snapshot_sig(const struct agent_ctx *a, const char *image_id, char out[33])
{
    char msg[96];
    snprintf(msg, sizeof msg, "snapshot:%s", image_id);
    token_mac(a, msg, 32, out);
}

/* SHA-256 (hex) and size of the file 'path', read in 1 MiB pieces. */
static int hash_file(const char *path, char hex[65], uint64_t *size, struct nb_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        nb_error_errno(err, errno, "could not open \"%s\"", path);
        return -1;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    char *buf = malloc(1 << 20);
    int rc = -1;
    *size = 0;
    if (md && buf && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1) {
        ssize_t n;
        while ((n = read(fd, buf, 1 << 20)) > 0) {
            EVP_DigestUpdate(md, buf, (size_t)n);
            *size += (uint64_t)n;
        }
        uint8_t digest[32];
        if (n == 0 && EVP_DigestFinal_ex(md, digest, NULL) == 1) {
            nb_hex_encode(digest, sizeof digest, hex);
            rc = 0;
        } else {
            nb_error_errno(err, errno, "could not read \"%s\"", path);
        }
    } else {
        nb_error_set(err, NB_ERR_INTERNAL, "could not start a SHA-256 digest");
    }
    free(buf);
    EVP_MD_CTX_free(md);
    close(fd);
    return rc;
}

static bool valid_image_id(const char *id)
{
    if (strncmp(id, "ami-", 4) || strlen(id) != 21) {
        return false;
    }
    for (const char *p = id + 4; *p; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
            return false;
        }
    }
    return true;
}

json_t *agent_snapshot(struct agent_ctx *a, const char *id, const char *image_id,
                       struct nb_error *err)
{
    if (!valid_image_id(image_id)) {
        nb_error_set(err, NB_ERR_INVALID, "\"%s\" is not an image id (ami-...)", image_id);
        return NULL;
    }
    struct agent_disks_config dc = disks_cfg(a);
    char *root = agent_disks_path(&dc, id, "root.qcow2", err);
    if (!root) {
        return NULL;
    }
    char dir[PATH_MAX - 64], tmp[PATH_MAX], path[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/snapshots", a->state_dir);
    snprintf(tmp, sizeof tmp, "%s/%s.qcow2.tmp", dir, image_id);
    snprintf(path, sizeof path, "%s/%s.qcow2", dir, image_id);
    json_t *out = NULL;
    pthread_mutex_t *mu = agent_lock_of(a, id);
    pthread_mutex_lock(mu);
    struct stat sb;
    if (stat(root, &sb) < 0) {
        nb_error_set(err, NB_ERR_NOT_FOUND, "instance %s has no root disk on this node", id);
        goto done;
    }
    if (agent_disks_make_dir(dir, err) < 0) {
        goto done;
    }
    /* -U: the running guest holds the image's lock; the copy is crash-consistent, as a
     * snapshot of a running EC2 instance with NoReboot is. */
    const char *argv[] = {"qemu-img", "convert", "-U", "-O", "qcow2", root, tmp, NULL};
    char hex[65], sig[33], location[1024];
    uint64_t size;
    if (agent_disks_run(argv, 30 * 60 * 1000L, NULL, err) < 0 ||
        hash_file(tmp, hex, &size, err) < 0) {
        unlink(tmp);
        goto done;
    }
    if (rename(tmp, path) < 0) {
        nb_error_errno(err, errno, "could not rename \"%s\"", tmp);
        unlink(tmp);
        goto done;
    }
    agent_snapshot_sig(a, image_id, sig);
    snprintf(location, sizeof location, "%s/v1/snapshots/%s?sig=%s", a->advertise_url, image_id,
             sig);
    out = json_pack("{s:s, s:s, s:I, s:s}", "location", location, "sha256", hex, "size_bytes",
                    (json_int_t)size, "format", "qcow2");
    nb_info("instance %s: root disk saved as image %s (%llu bytes)", id, image_id,
            (unsigned long long)size);

done:
    pthread_mutex_unlock(mu);
    free(root);
    return out;
}
