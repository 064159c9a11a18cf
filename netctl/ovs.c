/* Open vSwitch through its command-line programs (ovs.h). */
#include "ovs.h"

#include "flows.h"
#include "model.h"
#include "nubo/buf.h"
#include "nubo/error.h"
#include "nubo/json.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define OVS_TIMEOUT_MS  20000
#define OVS_TIMEOUT_ARG "--timeout=20"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int nc_run(const char *const argv[], const char *input, size_t input_len, char **output,
           int timeout_ms, struct nb_error *err)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
        nb_error_errno(err, errno, "pipe");
        goto fail_pipes;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (input) {
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    } else {
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    }
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, out[1], 2);
    posix_spawnattr_t sa;
    posix_spawnattr_init(&sa);
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&sa, &all);
    posix_spawnattr_setsigmask(&sa, &none);
    posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, &sa, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&sa);
    close(in[0]);
    close(out[1]);
    in[0] = out[1] = -1;
    if (rc != 0) {
        nb_error_errno(err, rc, "could not run %s", argv[0]);
        goto fail_pipes;
    }
    if (!input) {
        close(in[1]);
        in[1] = -1;
    } else {
        fcntl(in[1], F_SETFL, O_NONBLOCK);
    }

    struct nb_buf buf = NB_BUF_INIT;
    size_t sent = 0;
    long long deadline = now_ms() + timeout_ms;
    bool timed_out = false;
    while (out[0] >= 0) {
        struct pollfd pf[2] = {{.fd = out[0], .events = POLLIN}, {.fd = in[1], .events = POLLOUT}};
        long long left = deadline - now_ms();
        if (left <= 0) {
            timed_out = true;
            kill(pid, SIGKILL);
            break;
        }
        if (poll(pf, in[1] >= 0 ? 2 : 1, (int)left) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (in[1] >= 0 && (pf[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = write(in[1], input + sent, input_len - sent);
            if (n > 0) {
                sent += (size_t)n;
            }
            if ((n < 0 && errno != EAGAIN) || sent == input_len) {
                close(in[1]);
                in[1] = -1;
            }
        }
        if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            char chunk[8192];
            ssize_t n = read(out[0], chunk, sizeof chunk);
            if (n > 0) {
                nb_buf_append(&buf, chunk, (size_t)n);
            } else if (n == 0 || errno != EINTR) {
                close(out[0]);
                out[0] = -1;
            }
        }
    }
    if (in[1] >= 0) {
        close(in[1]);
    }
    if (out[0] >= 0) {
        close(out[0]);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    const char *text = buf.data ? buf.data : "";
    if (timed_out || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        size_t tl = strlen(text);
        while (tl && (text[tl - 1] == '\n' || text[tl - 1] == ' ')) {
            tl--;
        }
        if (timed_out) {
            nb_error_set(err, NB_ERR_UNAVAILABLE, "%s did not finish within %d ms", argv[0],
                         timeout_ms);
        } else {
            nb_error_set(err, NB_ERR_INTERNAL, "%s %s failed (status %d): %.*s", argv[0],
                         argv[1] ? argv[1] : "", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                         (int)(tl > 400 ? 400 : tl), text);
        }
        nb_buf_free(&buf);
        return -1;
    }
    if (output) {
        *output = buf.data ? nb_buf_steal(&buf) : strdup("");
    }
    nb_buf_free(&buf);
    return 0;

fail_pipes:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0) {
            close(in[i]);
        }
        if (out[i] >= 0) {
            close(out[i]);
        }
    }
    return -1;
}

static int vsctl(const char *const *args, size_t n, char **output, struct nb_error *err)
{
    const char *argv[64];
    size_t k = 0;
    argv[k++] = "ovs-vsctl";
    argv[k++] = OVS_TIMEOUT_ARG;
    for (size_t i = 0; i < n && k < 63; i++) {
        argv[k++] = args[i];
    }
    argv[k] = NULL;
    return nc_run(argv, NULL, 0, output, OVS_TIMEOUT_MS, err);
}

int nc_ovs_bridge(const char *bridge, const char *datapath, struct nb_error *err)
{
    char dp[64];
    snprintf(dp, sizeof dp, "datapath_type=%s", datapath);
    const char *args[] = {"--may-exist",
                          "add-br",
                          bridge,
                          "--",
                          "set",
                          "bridge",
                          bridge,
                          dp,
                          "fail_mode=secure",
                          "protocols=OpenFlow10,OpenFlow13,OpenFlow14,OpenFlow15"};
    return vsctl(args, sizeof args / sizeof *args, NULL, err);
}

/* The value of 'key' in an OVSDB map in JSON form ["map", [[k, v], ...]], or NULL. */
static const char *ovsdb_map_get(const json_t *m, const char *key)
{
    const json_t *pairs = json_array_get(m, 1);
    for (size_t i = 0; i < json_array_size(pairs); i++) {
        const json_t *kv = json_array_get(pairs, i);
        const char *k = json_string_value(json_array_get(kv, 0));
        if (k && !strcmp(k, key)) {
            return json_string_value(json_array_get(kv, 1));
        }
    }
    return NULL;
}

int nc_ovs_ports(const char *bridge, struct nc_ofmap *map, struct nb_error *err)
{
    (void)bridge;
    const char *args[] = {"--format=json", "--columns=name,ofport,external_ids,options", "list",
                          "Interface"};
    char *text = NULL;
    if (vsctl(args, 4, &text, err) < 0) {
        return -1;
    }
    json_t *root = nb_json_parse_object(text, strlen(text), err);
    free(text);
    if (!root) {
        return -1;
    }
    nc_ofmap_clear(map);
    json_t *rows = json_object_get(root, "data");
    for (size_t i = 0; i < json_array_size(rows); i++) {
        const json_t *row = json_array_get(rows, i);
        const char *name = json_string_value(json_array_get(row, 0));
        const json_t *ofp = json_array_get(row, 1);
        const json_t *ext = json_array_get(row, 2), *opt = json_array_get(row, 3);
        if (!name || !json_is_integer(ofp) || json_integer_value(ofp) <= 0 ||
            json_integer_value(ofp) >= 65280) {
            continue;
        }
        int ofport = (int)json_integer_value(ofp);
        const char *v;
        char key[64];
        if ((v = ovsdb_map_get(ext, "iface-id")) && !strncmp(v, "eni-", 4)) {
            nc_ofmap_add(map, v, ofport);
        } else if (!strncmp(name, "vx", 2) && (v = ovsdb_map_get(opt, "remote_ip"))) {
            snprintf(key, sizeof key, "tun:%s", v);
            nc_ofmap_add(map, key, ofport);
        } else if ((v = ovsdb_map_get(ext, "nubo-role")) && !strcmp(v, "external")) {
            nc_ofmap_add(map, "ext", ofport);
        } else if ((v = ovsdb_map_get(ext, "nubo-vpn-in"))) {
            snprintf(key, sizeof key, "vpn-in:%s", v);
            nc_ofmap_add(map, key, ofport);
        } else if ((v = ovsdb_map_get(ext, "nubo-svc"))) {
            snprintf(key, sizeof key, "svc:%s", v);
            nc_ofmap_add(map, key, ofport);
        } else if ((v = ovsdb_map_get(ext, "nubo-vpn-out"))) {
            snprintf(key, sizeof key, "vpn-out:%s", v);
            nc_ofmap_add(map, key, ofport);
        }
    }
    json_decref(root);
    return 0;
}

int nc_ovs_cur_cfg(long long *out, struct nb_error *err)
{
    const char *args[] = {"get", "Open_vSwitch", ".", "cur_cfg"};
    char *text = NULL;
    if (vsctl(args, 4, &text, err) < 0) {
        return -1;
    }
    *out = strtoll(text, NULL, 10);
    free(text);
    return 0;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int nc_ovs_tunnels(const char *bridge, const uint32_t *remotes, size_t n, uint32_t local,
                   struct nb_error *err)
{
    const char *lsargs[] = {"list-ports", bridge};
    char *text = NULL;
    if (vsctl(lsargs, 2, &text, err) < 0) {
        return -1;
    }
    uint32_t *want = calloc(n + 1, sizeof *want);
    if (n) {
        memcpy(want, remotes, n * sizeof *want);
    }
    qsort(want, n, sizeof *want, u32_cmp);

    /* One ovs-vsctl transaction: deletions of tunnels no longer wanted, then additions. */
    const char **args = calloc(4 + 16 * (n + 64), sizeof *args);
    char(*strs)[80] = calloc(8 * (n + 64), sizeof *strs);
    size_t na = 0, ns = 0, existing = 0;
    uint32_t *have = calloc(n + 64, sizeof *have);
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        unsigned ip;
        char tail;
        if (sscanf(line, "vx%8x%c", &ip, &tail) != 1 || strlen(line) != 10) {
            continue;
        }
        if (bsearch(&ip, want, n, sizeof *want, u32_cmp) && existing < n + 64) {
            have[existing++] = ip;
        } else if (ns + 1 < 8 * (n + 64)) {
            snprintf(strs[ns], sizeof strs[ns], "%s", line);
            args[na++] = "--";
            args[na++] = "--if-exists";
            args[na++] = "del-port";
            args[na++] = bridge;
            args[na++] = strs[ns++];
        }
    }
    free(text);
    qsort(have, existing, sizeof *have, u32_cmp);
    for (size_t i = 0; i < n; i++) {
        if (bsearch(&want[i], have, existing, sizeof *have, u32_cmp) || ns + 4 >= 8 * (n + 64)) {
            continue;
        }
        char *name = strs[ns++], *ifname = name, *rip = strs[ns++], *lip = strs[ns++];
        char a[16];
        snprintf(name, 80, "vx%08x", want[i]);
        snprintf(rip, 80, "options:remote_ip=%s", nc_ip_str(want[i], a));
        snprintf(lip, 80, "options:local_ip=%s", nc_ip_str(local, a));
        args[na++] = "--";
        args[na++] = "--may-exist";
        args[na++] = "add-port";
        args[na++] = bridge;
        args[na++] = name;
        args[na++] = "--";
        args[na++] = "set";
        args[na++] = "interface";
        args[na++] = ifname;
        args[na++] = "type=vxlan";
        args[na++] = rip;
        args[na++] = "options:key=flow";
        if (local) {
            args[na++] = lip;
        }
    }
    int rc = 0;
    if (na) {
        /* The argument vector may be long: run it directly rather than through vsctl(). */
        const char **argv = calloc(na + 3, sizeof *argv);
        argv[0] = "ovs-vsctl";
        argv[1] = OVS_TIMEOUT_ARG;
        memcpy(argv + 2, args + 1, (na - 1) * sizeof *argv); /* skip the leading "--" */
        rc = nc_run(argv, NULL, 0, NULL, OVS_TIMEOUT_MS, err);
        free(argv);
    }
    free(args);
    free(strs);
    free(have);
    free(want);
    return rc;
}

int nc_ovs_plug(const char *bridge, const char *ifname, const char *key, const char *value,
                struct nb_error *err)
{
    char ext[160];
    snprintf(ext, sizeof ext, "external_ids:%s=%s", key, value);
    const char *args[] = {"--may-exist", "add-port",  bridge, ifname, "--",
                          "set",         "interface", ifname, ext};
    return vsctl(args, sizeof args / sizeof *args, NULL, err);
}

int nc_ovs_unplug(const char *bridge, const char *ifname, struct nb_error *err)
{
    const char *args[] = {"--if-exists", "del-port", bridge, ifname};
    return vsctl(args, 4, NULL, err);
}

int nc_ovs_apply(const char *bridge, const char *bundle, size_t len, struct nb_error *err)
{
    if (!len) {
        return 0;
    }
    const char *argv[] = {"ovs-ofctl", "-O",   "OpenFlow15", "--bundle",
                          "add-flows", bridge, "-",          NULL};
    return nc_run(argv, bundle, len, NULL, OVS_TIMEOUT_MS, err);
}

char *nc_ovs_dump(const char *bridge, uint64_t tag, struct nb_error *err)
{
    char match[64];
    snprintf(match, sizeof match, "cookie=0x%016" PRIx64 "/0x%016llx", tag,
             (unsigned long long)NC_COOKIE_MASK);
    const char *argv[] = {"ovs-ofctl", "-O", "OpenFlow15", "dump-flows", bridge, match, NULL};
    char *out = NULL;
    return nc_run(argv, NULL, 0, &out, OVS_TIMEOUT_MS, err) < 0 ? NULL : out;
}

int nc_ovs_arp_probe(const char *bridge, int ofport, const uint8_t src_mac[6], uint32_t src_ip,
                     uint32_t target, struct nb_error *err)
{
    uint8_t f[42] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    memcpy(f + 6, src_mac, 6);
    f[12] = 0x08, f[13] = 0x06;                 /* ARP */
    f[14] = 0, f[15] = 1, f[16] = 8, f[17] = 0; /* Ethernet, IPv4 */
    f[18] = 6, f[19] = 4, f[20] = 0, f[21] = 1; /* lengths, request */
    memcpy(f + 22, src_mac, 6);
    for (int i = 0; i < 4; i++) {
        f[28 + i] = (uint8_t)(src_ip >> (24 - 8 * i));
        f[38 + i] = (uint8_t)(target >> (24 - 8 * i));
    }
    char spec[256], *p = spec;
    p += snprintf(p, sizeof spec, "in_port=controller packet=");
    for (size_t i = 0; i < sizeof f; i++) {
        p += snprintf(p, 3, "%02x", f[i]);
    }
    snprintf(p, sizeof spec - (size_t)(p - spec), " actions=output:%d", ofport);
    const char *argv[] = {"ovs-ofctl", "-O", "OpenFlow15", "packet-out", bridge, spec, NULL};
    return nc_run(argv, NULL, 0, NULL, OVS_TIMEOUT_MS, err);
}
