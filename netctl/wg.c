/* Remote-access endpoints with WireGuard (see wg.h).
 *
 * The recipe (Debian 12: wireguard-go 0.0.20220316, wireguard-tools; a kernel without the
 * WireGuard module):
 * - wireguard-go is started in the foreground (-f) by a grandchild that has joined the
 *   endpoint's network namespace with setns(2) only: no "ip netns exec", whose new mount
 *   namespace would hold a copy of every namespace mounted under /run/netns and keep them (and
 *   their veths) alive after "ip netns del" while wireguard-go runs. Its TUN device is made in
 *   that namespace; its control socket lands in /var/run/wireguard/, shared by all.
 * - wg(8) finds the socket by the interface's name and talks to it from the host's namespace:
 *   "wg set IF private-key FILE listen-port PORT peer KEY allowed-ips IP/32 ...". Peers are
 *   changed one by one ("peer KEY remove" for the ones that went) rather than with "wg setconf",
 *   which replaces every peer and so drops every user's session.
 * - The inside leg has a /32 of the client CIDR (no VPC address is free: see model.h) and a
 *   route to the VPC's CIDR through it; the client CIDR is routed into the WireGuard interface.
 *   Forwarding is on; nothing is NATed: the VPC sees the users' client addresses.
 * - Checksum offload off on both ends of both veths, as for the VPN gateways (the userspace
 *   datapath of Open vSwitch forwards bad TCP checksums otherwise).
 *
 * Layout of 'state_dir'/<id>/: key (the private key, mode 0600), net and peers (what was
 * applied, compared by the next nc_wg_up), wg.pid, wg.log (wireguard-go's output). */
#include "wg.h"

#include "netns.h"

#include "nubo/buf.h"
#include "nubo/clock.h"
#include "nubo/error.h"
#include "nubo/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IP_BIN     "/sbin/ip"
#define WG_BIN     "/usr/bin/wg"
#define WG_GO_BIN  "/usr/bin/wireguard-go"
#define WG_SOCKDIR "/var/run/wireguard"
#define TOOL_PATH  "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

#define CMD_TIMEOUT_MS 15000
#define START_MS       5000
#define TERM_MS        3000
#define OUTPUT_MAX     (64 * 1024)
#define KEY_LEN        44

extern char **environ;

struct wg_paths {
    char ns[NC_WG_IFNAME_MAX];
    char ifname[NC_WG_IFNAME_MAX];
    char in_peer[NC_WG_IFNAME_MAX];
    char out_peer[NC_WG_IFNAME_MAX];
    char ns_file[PATH_MAX];
    char sock[PATH_MAX];
    char dir[PATH_MAX - 16]; /* room for the file names below */
    char key[PATH_MAX];
    char net[PATH_MAX];
    char peers[PATH_MAX];
    char pidfile[PATH_MAX];
    char log[PATH_MAX];
};

/* ---- checking ------------------------------------------------------------------------------- */

static bool id_ok(const char *id)
{
    size_t len = id ? strlen(id) : 0;
    return len >= 12 && len <= 21 && !strncmp(id, "rae-", 4) &&
           strspn(id + 4, "0123456789abcdef") == len - 4;
}

static bool ip_ok(const char *s)
{
    struct in_addr a;
    return s && strlen(s) <= 15 && inet_pton(AF_INET, s, &a) == 1;
}

static bool cidr_ok(const char *s)
{
    char ip[16];
    const char *slash = s ? strchr(s, '/') : NULL;
    if (!slash || slash - s >= (long)sizeof ip || !slash[1] || strlen(slash + 1) > 2 ||
        strspn(slash + 1, "0123456789") != strlen(slash + 1) || atoi(slash + 1) > 32) {
        return false;
    }
    memcpy(ip, s, (size_t)(slash - s));
    ip[slash - s] = '\0';
    return ip_ok(ip);
}

static bool key_ok(const char *k)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    return k && strlen(k) == KEY_LEN && strspn(k, b64) == KEY_LEN - 1 && k[KEY_LEN - 1] == '=';
}

static bool mac_ok(const char *m)
{
    unsigned v[6];
    char tail;
    return m && strlen(m) == 17 &&
           sscanf(m, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                  &tail) == 6;
}

static bool netns_name_ok(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    return len > 0 && len < 64 && name[0] != '-' && name[0] != '.' &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == len;
}

static int check_endpoint(const struct nc_wg_endpoint *e, struct nb_error *err)
{
    const char *bad = !id_ok(e->id)                                       ? "id"
                      : !ip_ok(e->outside_ip)                             ? "outside address"
                      : e->outside_prefix < 1 || e->outside_prefix > 32   ? "outside prefix"
                      : e->outside_router && !ip_ok(e->outside_router)    ? "public router"
                      : !ip_ok(e->inside_ip)                              ? "inside address"
                      : !cidr_ok(e->vpc_cidr)                             ? "VPC CIDR"
                      : !cidr_ok(e->client_cidr)                          ? "client CIDR"
                      : !key_ok(e->private_key)                           ? "private key"
                      : e->listen_port < 1 || e->listen_port > 65535      ? "listen port"
                      : !mac_ok(e->inside_mac) || !mac_ok(e->outside_mac) ? "MAC address"
                                                                          : NULL;
    for (size_t i = 0; !bad && i < e->n_peers; i++) {
        if (!key_ok(e->peers[i].public_key) || !ip_ok(e->peers[i].ip)) {
            bad = "peer";
        }
    }
    if (bad) {
        nb_error_set(err, NB_ERR_INVALID, "invalid %s of remote-access endpoint \"%s\"", bad,
                     e->id && strlen(e->id) < 32 ? e->id : "?");
        return -1;
    }
    return 0;
}

static int wg_paths(const char *id, const char *state_dir, struct wg_paths *p, struct nb_error *err)
{
    memset(p, 0, sizeof *p);
    if (!state_dir || !*state_dir) {
        nb_error_set(err, NB_ERR_MISSING, "no remote-access state directory given");
        return -1;
    }
    const char *hex = id + strlen(id) - 8;
    snprintf(p->ns, sizeof p->ns, "nwg-%s", hex);
    snprintf(p->ifname, sizeof p->ifname, "wg-%s", hex);
    nc_wg_peer_names(id, p->in_peer, p->out_peer);
    snprintf(p->ns_file, sizeof p->ns_file, NC_NETNS_DIR "/%s", p->ns);
    snprintf(p->sock, sizeof p->sock, WG_SOCKDIR "/%s.sock", p->ifname);
    int n = snprintf(p->dir, sizeof p->dir, "%s/%s", state_dir, id);
    if (n < 0 || (size_t)n + 16 >= sizeof p->dir) {
        nb_error_set(err, NB_ERR_INVALID, "state directory \"%s\" is too long", state_dir);
        return -1;
    }
    snprintf(p->key, sizeof p->key, "%s/key", p->dir);
    snprintf(p->net, sizeof p->net, "%s/net", p->dir);
    snprintf(p->peers, sizeof p->peers, "%s/peers", p->dir);
    snprintf(p->pidfile, sizeof p->pidfile, "%s/wg.pid", p->dir);
    snprintf(p->log, sizeof p->log, "%s/wg.log", p->dir);
    return 0;
}

void nc_wg_peer_names(const char *id, char in_peer[NC_WG_IFNAME_MAX],
                      char out_peer[NC_WG_IFNAME_MAX])
{
    size_t len = strlen(id);
    const char *hex = len >= 8 ? id + len - 8 : id;
    snprintf(in_peer, NC_WG_IFNAME_MAX, "nwi-%s", hex);
    snprintf(out_peer, NC_WG_IFNAME_MAX, "nwo-%s", hex);
}

/* ---- files ---------------------------------------------------------------------------------- */

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        return NULL;
    }
    struct nb_buf b = NB_BUF_INIT;
    nb_buf_puts(&b, "");
    char chunk[4096];
    size_t r;
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0) {
        nb_buf_append(&b, chunk, r);
    }
    fclose(f);
    return nb_buf_steal(&b);
}

static int write_text(const char *path, const char *text, mode_t mode, struct nb_error *err)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    size_t len = strlen(text);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len || fchmod(fd, mode) < 0 || close(fd) < 0 ||
        rename(tmp, path) < 0) {
        nb_error_errno(err, errno, "could not write \"%s\"", path);
        if (fd >= 0) {
            close(fd);
        }
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* ---- programs ------------------------------------------------------------------------------- */

/* Runs 'argv' (absolute argv[0]) with standard output and error captured into '*out' (when not
 * NULL; the caller frees it), killed after CMD_TIMEOUT_MS. Returns 0 when it exited 0, else -1
 * with 'err' (may be NULL) naming the command, its output as detail. */
static int run(const char *const *argv, char **out, struct nb_error *err)
{
    static const char *const envp[] = {TOOL_PATH, "LC_ALL=C", NULL};
    if (out) {
        *out = NULL;
    }
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        nb_error_errno(err, errno, "could not create a pipe for \"%s\"", argv[0]);
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    posix_spawnattr_t sa;
    posix_spawnattr_init(&sa);
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&sa, &all);
    posix_spawnattr_setsigmask(&sa, &none);
    posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, &sa, (char *const *)argv, (char *const *)envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&sa);
    close(pfd[1]);
    if (rc) {
        close(pfd[0]);
        nb_error_errno(err, rc, "could not run \"%s\"", argv[0]);
        return -1;
    }
    struct nb_buf buf = NB_BUF_INIT;
    nb_buf_puts(&buf, "");
    int64_t deadline = nb_monotonic_ms() + CMD_TIMEOUT_MS;
    bool timed_out = false;
    for (;;) {
        int64_t left = deadline - nb_monotonic_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        struct pollfd pf = {.fd = pfd[0], .events = POLLIN};
        int n = poll(&pf, 1, (int)left);
        if (n < 0 && errno != EINTR) {
            break;
        }
        if (n <= 0) {
            continue;
        }
        char chunk[4096];
        ssize_t r = read(pfd[0], chunk, sizeof chunk);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        if (buf.len + (size_t)r <= OUTPUT_MAX) {
            nb_buf_append(&buf, chunk, (size_t)r);
        }
    }
    close(pfd[0]);
    if (timed_out) {
        kill(pid, SIGKILL);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    rc = timed_out || !WIFEXITED(status) || WEXITSTATUS(status) ? -1 : 0;
    if (rc < 0 && err) {
        char cmd[256] = "";
        size_t used = 0;
        for (size_t i = 0; argv[i] && used < sizeof cmd - 1; i++) {
            int n = snprintf(cmd + used, sizeof cmd - used, "%s%s", i ? " " : "", argv[i]);
            used += n > 0 ? (size_t)n : 0;
        }
        nb_error_set(err, timed_out ? NB_ERR_TIMEOUT : NB_ERR_INTERNAL,
                     "command \"%s\" failed (status %d)", cmd,
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        size_t len = strlen(buf.data);
        nb_error_detail(err, "%s", buf.data + (len > 1500 ? len - 1500 : 0));
    }
    if (out) {
        *out = nb_buf_steal(&buf);
    } else {
        nb_buf_free(&buf);
    }
    return rc;
}

#define ARGS_MAX 24

static int ip_run(struct nb_error *err, const char *netns, const char *const *args)
{
    const char *argv[ARGS_MAX + 4];
    size_t n = 0;
    argv[n++] = IP_BIN;
    if (netns) {
        argv[n++] = "-n";
        argv[n++] = netns;
    }
    for (size_t i = 0; i < ARGS_MAX && args[i]; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    return run(argv, NULL, err);
}

#define IP(err, netns, ...) ip_run(err, netns, (const char *const[]){__VA_ARGS__, NULL})

/* In the endpoint's namespace: forwarding on, checksum offload off on both legs. */
static int child_prepare_endpoint(const void *arg)
{
    (void)arg;
    if (nc_netns_write_proc("/proc/sys/net/ipv4/ip_forward", "1\n") < 0) {
        return 1;
    }
    return nc_netns_tx_csum_off("in") < 0 ? 2 : nc_netns_tx_csum_off("out") < 0 ? 3 : 0;
}

static int child_prepare_host(const void *arg)
{
    const struct wg_paths *p = arg;
    return nc_netns_tx_csum_off(p->in_peer) < 0 ? 1 : nc_netns_tx_csum_off(p->out_peer) < 0 ? 2 : 0;
}

/* ---- wireguard-go --------------------------------------------------------------------------- */

/* The pid of the wireguard-go of 'p' if it runs in the endpoint's namespace, else 0. */
static pid_t wg_running(const struct wg_paths *p)
{
    char *text = read_text(p->pidfile);
    long pid = text ? strtol(text, NULL, 10) : 0;
    free(text);
    if (pid <= 0 || pid > INT_MAX) {
        return 0;
    }
    char path[64], stat_text[256] = "";
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    size_t got = f ? fread(stat_text, 1, sizeof stat_text - 1, f) : 0;
    if (f) {
        fclose(f);
    }
    stat_text[got] = '\0';
    char *close_paren = strrchr(stat_text, ')');
    if (!strstr(stat_text, "(wireguard-go)") || !close_paren || close_paren[1] != ' ' ||
        close_paren[2] == 'Z') {
        return 0;
    }
    struct stat theirs, ours;
    snprintf(path, sizeof path, "/proc/%ld/ns/net", pid);
    if (stat(path, &theirs) < 0 || stat(p->ns_file, &ours) < 0 || theirs.st_ino != ours.st_ino ||
        theirs.st_dev != ours.st_dev) {
        return 0;
    }
    return (pid_t)pid;
}

static bool pid_gone(pid_t pid)
{
    char path[64], text[256] = "";
    waitpid(pid, NULL, WNOHANG);
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f) {
        return true;
    }
    size_t got = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[got] = '\0';
    char *close_paren = strrchr(text, ')');
    return !close_paren || close_paren[1] != ' ' || close_paren[2] == 'Z' || close_paren[2] == 'X';
}

static void wg_stop(const struct wg_paths *p)
{
    pid_t pid = wg_running(p);
    if (pid > 0) {
        kill(pid, SIGTERM);
        int64_t deadline = nb_monotonic_ms() + TERM_MS;
        while (!pid_gone(pid) && nb_monotonic_ms() < deadline) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (!pid_gone(pid)) {
            kill(pid, SIGKILL);
        }
        nb_info("stopped wireguard-go %d of \"%s\"", (int)pid, p->ifname);
    }
    unlink(p->pidfile);
    /* wireguard-go removes its socket when it exits; a killed one leaves it. */
    unlink(p->sock);
}

/* Starts wireguard-go for 'p' in its namespace (a grandchild in a session of its own, so that
 * it outlives us), records its pid and waits for its control socket. */
static int wg_spawn(const struct wg_paths *p, struct nb_error *err)
{
    int nsfd = open(p->ns_file, O_RDONLY | O_CLOEXEC);
    int logfd = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int pfd[2] = {-1, -1};
    int rc = -1;
    if (nsfd < 0 || logfd < 0 || nullfd < 0 || pipe2(pfd, O_CLOEXEC) < 0) {
        nb_error_errno(err, errno, "could not prepare wireguard-go for \"%s\"", p->ifname);
        goto done;
    }
    mkdir(WG_SOCKDIR, 0755);
    unlink(p->sock);
    const char *argv[] = {WG_GO_BIN, "-f", p->ifname, NULL};
    const char *envp[] = {"WG_PROCESS_FOREGROUND=1", "LOG_LEVEL=error", TOOL_PATH, NULL};
    pid_t child = fork();
    if (child == 0) {
        pid_t grandchild = setsid() < 0 ? -1 : fork();
        if (grandchild != 0) {
            ssize_t ignored = write(pfd[1], &grandchild, sizeof grandchild);
            (void)ignored;
            _exit(0);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < NSIG; sig++) {
            signal(sig, SIG_DFL);
        }
        if (setns(nsfd, CLONE_NEWNET) < 0 || dup2(nullfd, 0) < 0 || dup2(logfd, 1) < 0 ||
            dup2(logfd, 2) < 0) {
            _exit(126);
        }
        execve(argv[0], (char *const *)argv, (char *const *)envp);
        _exit(127);
    }
    close(pfd[1]);
    pfd[1] = -1;
    if (child < 0) {
        nb_error_errno(err, errno, "could not fork for wireguard-go");
        goto done;
    }
    pid_t pid = -1;
    ssize_t got = read(pfd[0], &pid, sizeof pid);
    while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {
    }
    if (got != (ssize_t)sizeof pid || pid <= 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not start wireguard-go for \"%s\"", p->ifname);
        goto done;
    }
    char text[24];
    snprintf(text, sizeof text, "%d\n", (int)pid);
    if (write_text(p->pidfile, text, 0600, err) < 0) {
        kill(pid, SIGKILL);
        goto done;
    }
    int64_t deadline = nb_monotonic_ms() + START_MS;
    while (!nc_netns_file_exists(p->sock)) {
        if (pid_gone(pid) || nb_monotonic_ms() > deadline) {
            char *log = read_text(p->log);
            size_t len = log ? strlen(log) : 0;
            nb_error_set(err, NB_ERR_INTERNAL,
                         "wireguard-go %d for \"%s\" did not make its control socket \"%s\"",
                         (int)pid, p->ifname, p->sock);
            nb_error_detail(err, "%s", log ? log + (len > 1000 ? len - 1000 : 0) : "");
            free(log);
            kill(pid, SIGKILL);
            goto done;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    nb_info("started wireguard-go %d for \"%s\" in \"%s\"", (int)pid, p->ifname, p->ns);
    rc = 0;
done:
    const int fds[] = {nsfd, logfd, nullfd, pfd[0], pfd[1]};
    for (size_t i = 0; i < sizeof fds / sizeof *fds; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
    }
    return rc;
}

/* ---- the namespace -------------------------------------------------------------------------- */

/* The veth pair 'peer' (in 'host_ns') <-> 'dev' (in the endpoint's namespace), with the inner
 * end's MAC and address 'addr' ("a.b.c.d/n"). */
static int veth_setup(const struct wg_paths *p, const char *host_ns, const char *peer,
                      const char *dev, const char *mac, const char *addr, struct nb_error *err)
{
    int have = nc_netns_link_exists(p->ns, dev, err);
    if (have < 0) {
        return -1;
    }
    if (!have) {
        int lone = nc_netns_link_exists(host_ns, peer, err);
        if (lone < 0 || (lone && IP(err, host_ns, "link", "del", "dev", peer) < 0) ||
            IP(err, host_ns, "link", "add", peer, "type", "veth", "peer", "name", dev, "netns",
               p->ns) < 0) {
            return -1;
        }
    }
    if (IP(err, p->ns, "link", "set", "dev", dev, "address", mac, "up") < 0 ||
        IP(err, p->ns, "addr", "replace", addr, "dev", dev) < 0 ||
        IP(err, host_ns, "link", "set", "dev", peer, "up") < 0) {
        return -1;
    }
    return 0;
}

static int net_setup(const struct wg_paths *p, const struct nc_wg_endpoint *e, const char *host_ns,
                     struct nb_error *err)
{
    char in_addr[24], out_addr[24];
    snprintf(in_addr, sizeof in_addr, "%s/32", e->inside_ip);
    snprintf(out_addr, sizeof out_addr, "%s/%d", e->outside_ip, e->outside_prefix);
    if (!nc_netns_file_exists(p->ns_file) && IP(err, NULL, "netns", "add", p->ns) < 0) {
        return -1;
    }
    if (IP(err, p->ns, "link", "set", "dev", "lo", "up") < 0 ||
        veth_setup(p, host_ns, p->in_peer, "in", e->inside_mac, in_addr, err) < 0 ||
        veth_setup(p, host_ns, p->out_peer, "out", e->outside_mac, out_addr, err) < 0 ||
        IP(err, p->ns, "route", "replace", e->vpc_cidr, "dev", "in", "src", e->inside_ip) < 0) {
        return -1;
    }
    if (e->outside_router &&
        IP(err, p->ns, "route", "replace", "default", "via", e->outside_router, "dev", "out") < 0) {
        return -1;
    }
    int rc = nc_netns_call(p->ns, child_prepare_endpoint, NULL, err);
    if (rc == 0) {
        rc = nc_netns_call(host_ns, child_prepare_host, p, err);
    }
    if (rc > 0) {
        nb_error_set(err, NB_ERR_INTERNAL,
                     "could not set forwarding or checksum offload for \"%s\" (step %d)", p->ns,
                     rc);
    }
    return rc ? -1 : 0;
}

/* Gives the WireGuard interface its key, port and peers, removing the peers it has that
 * 'e' does not list; brings it up with the client CIDR routed into it. */
static int wg_configure(const struct wg_paths *p, const struct nc_wg_endpoint *e,
                        struct nb_error *err)
{
    char *have = NULL;
    const char *show[] = {WG_BIN, "show", p->ifname, "peers", NULL};
    if (run(show, &have, err) < 0) {
        free(have);
        return -1;
    }
    size_t n_have = 0;
    for (const char *c = have; *c; c++) {
        n_have += *c == '\n';
    }
    const char **argv = calloc(8 + 4 * e->n_peers + 3 * n_have, sizeof *argv);
    char(*ips)[24] = calloc(e->n_peers + 1, sizeof *ips);
    char port[8];
    snprintf(port, sizeof port, "%d", e->listen_port);
    size_t n = 0;
    argv[n++] = WG_BIN;
    argv[n++] = "set";
    argv[n++] = p->ifname;
    argv[n++] = "private-key";
    argv[n++] = p->key;
    argv[n++] = "listen-port";
    argv[n++] = port;
    for (size_t i = 0; i < e->n_peers; i++) {
        snprintf(ips[i], sizeof ips[i], "%s/32", e->peers[i].ip);
        argv[n++] = "peer";
        argv[n++] = e->peers[i].public_key;
        argv[n++] = "allowed-ips";
        argv[n++] = ips[i];
    }
    char *save = NULL;
    for (char *k = strtok_r(have, "\n", &save); k; k = strtok_r(NULL, "\n", &save)) {
        bool wanted = false;
        for (size_t i = 0; i < e->n_peers && !wanted; i++) {
            wanted = !strcmp(k, e->peers[i].public_key);
        }
        if (!wanted && key_ok(k)) {
            argv[n++] = "peer";
            argv[n++] = k;
            argv[n++] = "remove";
        }
    }
    argv[n] = NULL;
    int rc = run(argv, NULL, err);
    free(argv);
    free(ips);
    free(have);
    if (rc < 0 || IP(err, p->ns, "link", "set", "dev", p->ifname, "up") < 0 ||
        IP(err, p->ns, "route", "replace", e->client_cidr, "dev", p->ifname) < 0) {
        return -1;
    }
    return 0;
}

static char *render_net(const struct nc_wg_endpoint *e)
{
    struct nb_buf b = NB_BUF_INIT;
    nb_buf_printf(&b, "outside %s/%d via %s\ninside %s %s\nvpc %s\nclients %s\nport %d\n",
                  e->outside_ip, e->outside_prefix, e->outside_router ? e->outside_router : "-",
                  e->inside_ip, e->inside_mac, e->vpc_cidr, e->client_cidr, e->listen_port);
    nb_buf_printf(&b, "outside-mac %s\n", e->outside_mac);
    return nb_buf_steal(&b);
}

static char *render_peers(const struct nc_wg_endpoint *e)
{
    struct nb_buf b = NB_BUF_INIT;
    nb_buf_puts(&b, "");
    for (size_t i = 0; i < e->n_peers; i++) {
        nb_buf_printf(&b, "%s %s\n", e->peers[i].public_key, e->peers[i].ip);
    }
    return nb_buf_steal(&b);
}

/* Stops wireguard-go, deletes the veths and the namespace of 'p'; keeps the state directory. */
static int teardown(const struct wg_paths *p, const char *host_ns, struct nb_error *err)
{
    wg_stop(p);
    char host_file[PATH_MAX];
    snprintf(host_file, sizeof host_file, NC_NETNS_DIR "/%s", host_ns ? host_ns : "");
    const char *peers[] = {p->in_peer, p->out_peer};
    for (size_t i = 0; (!host_ns || nc_netns_file_exists(host_file)) && i < 2; i++) {
        int have = nc_netns_link_exists(host_ns, peers[i], err);
        if (have < 0 || (have && IP(err, host_ns, "link", "del", "dev", peers[i]) < 0)) {
            return -1;
        }
    }
    if (nc_netns_file_exists(p->ns_file) && IP(err, NULL, "netns", "del", p->ns) < 0) {
        return -1;
    }
    unlink(p->net);
    unlink(p->peers);
    return 0;
}

/* ---- the interface -------------------------------------------------------------------------- */

int nc_wg_up(const struct nc_wg_endpoint *e, const char *host_netns, const char *state_dir,
             char in_peer[NC_WG_IFNAME_MAX], char out_peer[NC_WG_IFNAME_MAX], struct nb_error *err)
{
    struct wg_paths p;
    if (check_endpoint(e, err) < 0) {
        return -1;
    }
    if (host_netns && !netns_name_ok(host_netns)) {
        nb_error_set(err, NB_ERR_INVALID, "invalid network namespace name \"%s\"", host_netns);
        return -1;
    }
    if (wg_paths(e->id, state_dir, &p, err) < 0) {
        return -1;
    }
    snprintf(in_peer, NC_WG_IFNAME_MAX, "%s", p.in_peer);
    snprintf(out_peer, NC_WG_IFNAME_MAX, "%s", p.out_peer);
    char key[KEY_LEN + 2];
    snprintf(key, sizeof key, "%s\n", e->private_key);
    char *net = render_net(e), *peers = render_peers(e);
    char *old_net = read_text(p.net), *old_peers = read_text(p.peers), *old_key = read_text(p.key);
    pid_t pid = wg_running(&p);
    bool have_ns = nc_netns_file_exists(p.ns_file);
    int rc = -1;
    if (pid > 0 && have_ns && nc_netns_same_text(old_net, net) &&
        nc_netns_same_text(old_peers, peers) && nc_netns_same_text(old_key, key)) {
        rc = 0;
        goto cleanup;
    }
    nb_info("bringing up remote-access endpoint %s in \"%s\"", e->id, p.ns);
    if ((old_net && !nc_netns_same_text(old_net, net)) || (pid > 0 && !have_ns)) {
        if (teardown(&p, host_netns, err) < 0) {
            goto cleanup;
        }
        pid = 0;
    }
    if ((mkdir(state_dir, 0700) < 0 && errno != EEXIST) ||
        (mkdir(p.dir, 0700) < 0 && errno != EEXIST)) {
        nb_error_errno(err, errno, "could not create \"%s\"", p.dir);
        goto cleanup;
    }
    if (net_setup(&p, e, host_netns, err) < 0 || write_text(p.key, key, 0600, err) < 0 ||
        (pid == 0 && wg_spawn(&p, err) < 0) || wg_configure(&p, e, err) < 0 ||
        write_text(p.peers, peers, 0600, err) < 0 || write_text(p.net, net, 0600, err) < 0) {
        goto cleanup;
    }
    rc = 0;
cleanup:
    free(net);
    free(peers);
    free(old_net);
    free(old_peers);
    if (old_key) {
        memset(old_key, 0, strlen(old_key));
    }
    free(old_key);
    memset(key, 0, sizeof key);
    return rc;
}

int nc_wg_down(const char *id, const char *host_netns, const char *state_dir, struct nb_error *err)
{
    struct wg_paths p;
    if (!id_ok(id)) {
        nb_error_set(err, NB_ERR_INVALID, "invalid remote-access endpoint id \"%.32s\"",
                     id ? id : "");
        return -1;
    }
    if (host_netns && !netns_name_ok(host_netns)) {
        nb_error_set(err, NB_ERR_INVALID, "invalid network namespace name \"%s\"", host_netns);
        return -1;
    }
    if (wg_paths(id, state_dir, &p, err) < 0 || teardown(&p, host_netns, err) < 0) {
        return -1;
    }
    if (nc_netns_remove_tree(p.dir, err) < 0) {
        return -1;
    }
    nb_info("remote-access endpoint %s is down", id);
    return 0;
}

int nc_wg_list(const char *state_dir, char ***ids, size_t *n, struct nb_error *err)
{
    return nc_netns_list_dir(state_dir, id_ok, "state directory", ids, n, err);
}

void nc_wg_list_free(char **ids, size_t n)
{
    nc_netns_list_free(ids, n);
}
