/* The switch provider (see vif.h): tap devices made with the tun driver's ioctls, plugged into
 * Open vSwitch with ovs-vsctl. */
#include "vif.h"

#include "disks.h"

#include "nubo/error.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool agent_vif_valid(const struct agent_vif *vif)
{
    if (!vif->id || strncmp(vif->id, "eni-", 4) || strlen(vif->id) != 21) {
        return false;
    }
    for (const char *p = vif->id + 4; *p; p++) {
        if (!is_hex(*p)) {
            return false;
        }
    }
    if (!vif->mac || strlen(vif->mac) != 17) {
        return false;
    }
    for (int i = 0; i < 17; i++) {
        char c = vif->mac[i];
        if (i % 3 == 2 ? c != ':' : !is_hex((char)(c | 0x20))) {
            return false;
        }
    }
    return true;
}

void agent_vif_tap_name(const char *id, char out[AGENT_VIF_TAP_MAX])
{
    snprintf(out, AGENT_VIF_TAP_MAX, "tap%.8s", strncmp(id, "eni-", 4) ? id : id + 4);
}

static const char *bridge_of(const struct agent_vif_config *cfg)
{
    return cfg->bridge && *cfg->bridge ? cfg->bridge : "br-int";
}

/* Runs ovs-vsctl with 'args' (NULL-terminated, at most 32) after the database and timeout
 * options; its output goes to '*output' when not NULL. */
static int vsctl(const struct agent_vif_config *cfg, const char *const *args, char **output,
                 struct nb_error *err)
{
    long timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 10000;
    char db[4200], timeout[32];
    const char *argv[40];
    size_t n = 0;
    argv[n++] = "ovs-vsctl";
    if (cfg->rundir && *cfg->rundir) {
        snprintf(db, sizeof db, "--db=unix:%s/db.sock", cfg->rundir);
        argv[n++] = db;
    }
    /* ovs-vsctl's own deadline, below ours: it then says what it waited for. */
    snprintf(timeout, sizeof timeout, "--timeout=%ld",
             timeout_ms > 2000 ? timeout_ms / 1000 - 1 : 1);
    argv[n++] = timeout;
    for (size_t i = 0; args[i] && n < 39; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    return agent_disks_run(argv, timeout_ms, output, err);
}

/* Opens the tun device 'name' (making it when absent). Returns the descriptor, or -1 with
 * 'err' set. */
static int tun_open(const char *name, struct nb_error *err)
{
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        nb_error_errno(err, errno, "could not open \"/dev/net/tun\"");
        return -1;
    }
    struct ifreq ifr = {0};
    /* IFF_VNET_HDR as libvirt opens it for QEMU; the flags of a persistent tap are reset by
     * whoever attaches to it anyway. */
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        nb_error_errno(err, errno, "could not attach to tap device \"%s\"", name);
        close(fd);
        return -1;
    }
    return fd;
}

/* Makes the persistent tap 'name' unless it exists, and sets it up. */
static int tap_ensure(const char *name, struct nb_error *err)
{
    if (if_nametoindex(name) == 0) {
        int fd = tun_open(name, err);
        if (fd < 0) {
            return -1;
        }
        int rc = ioctl(fd, TUNSETPERSIST, 1);
        int e = errno;
        close(fd);
        if (rc < 0) {
            nb_error_errno(err, e, "could not make tap device \"%s\" persistent", name);
            return -1;
        }
    }
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        nb_error_errno(err, errno, "could not open a socket to set \"%s\" up", name);
        return -1;
    }
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
    int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
    if (rc == 0 && !(ifr.ifr_flags & IFF_UP)) {
        ifr.ifr_flags |= IFF_UP;
        rc = ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    int e = errno;
    close(s);
    if (rc < 0) {
        nb_error_errno(err, e, "could not set tap device \"%s\" up", name);
        return -1;
    }
    return 0;
}

/* Deletes the persistent tap 'name'; absent is fine. */
static int tap_delete(const char *name, struct nb_error *err)
{
    if (if_nametoindex(name) == 0) {
        return 0;
    }
    int fd = tun_open(name, err);
    if (fd < 0) {
        return -1;
    }
    int rc = ioctl(fd, TUNSETPERSIST, 0);
    int e = errno;
    close(fd); /* the last reference of a non-persistent tap: the device goes */
    if (rc < 0) {
        nb_error_errno(err, e, "could not delete tap device \"%s\"", name);
        return -1;
    }
    return 0;
}

int agent_vif_plug(const struct agent_vif_config *cfg, const char *instance_id,
                   const struct agent_vif *vif, bool *netdev, struct nb_error *err)
{
    if (!agent_vif_valid(vif)) {
        nb_error_set(err, NB_ERR_INVALID, "\"%s\" (MAC \"%s\") is not a network interface",
                     vif->id ? vif->id : "", vif->mac ? vif->mac : "");
        return -1;
    }
    char tap[AGENT_VIF_TAP_MAX];
    agent_vif_tap_name(vif->id, tap);
    if (tap_ensure(tap, err) < 0) {
        return -1;
    }
    const char *bridge = bridge_of(cfg);
    char ids[4][128];
    snprintf(ids[0], sizeof ids[0], "external_ids:iface-id=%s", vif->id);
    snprintf(ids[1], sizeof ids[1], "external_ids:attached-mac=\"%s\"", vif->mac);
    snprintf(ids[2], sizeof ids[2], "external_ids:vm-id=%s", instance_id);
    snprintf(ids[3], sizeof ids[3], "external_ids:iface-status=active");
    /* One transaction: the port, its identity, and what the bridge's datapath is. */
    const char *args[] = {"--",     "--may-exist", "add-port",      bridge, tap,
                          "--",     "set",         "Interface",     tap,    ids[0],
                          ids[1],   ids[2],        ids[3],          "--",   "get",
                          "Bridge", bridge,        "datapath_type", NULL};
    char *out = NULL;
    int rc = vsctl(cfg, args, &out, err);
    if (rc < 0) {
        char detail[sizeof err->detail];
        snprintf(detail, sizeof detail, "%s", err->detail);
        nb_error_set(err, err->code, "could not plug interface %s (tap %s) into bridge \"%s\"",
                     vif->id, tap, bridge);
        nb_error_detail(err, "%s", detail);
    } else if (netdev) {
        *netdev = out && strstr(out, "netdev") != NULL;
    }
    free(out);
    return rc;
}

int agent_vif_unplug(const struct agent_vif_config *cfg, const char *id, struct nb_error *err)
{
    char tap[AGENT_VIF_TAP_MAX];
    agent_vif_tap_name(id, tap);
    const char *args[] = {"--", "--if-exists", "del-port", tap, NULL};
    /* The tap goes even when Open vSwitch cannot be reached; the first failure is reported. */
    struct nb_error e = {0};
    int rc_port = vsctl(cfg, args, NULL, err);
    int rc_tap = tap_delete(tap, rc_port < 0 ? &e : err);
    return rc_port < 0 || rc_tap < 0 ? -1 : 0;
}
