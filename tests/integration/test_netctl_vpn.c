/* Integration tests of the VPN gateway module (netctl/vpn.c) with real charons on this machine.
 *
 * Each case builds, in network namespaces named after this process's pid:
 *
 *     inst (10.20.0.5/16) --- host: bridge "brvpc" --- nvi-X | gateway namespace nvpn-X (vpn.c)
 *                             host: bridge "brpub" --- nvo-X |   in 10.20.0.3, out 203.0.113.10
 *     site (203.0.113.200/24, LAN 192.168.50.1/24) --- lan (192.168.50.10)
 *
 * The bridges stand in for Open vSwitch. "site" runs a charon of its own, set up by hand the way
 * the comment at the top of vpn.c describes, with the configuration nc_vpn_peer_swanctl renders.
 * TCP goes from "lan" to "inst" and back through the tunnel. Needs root; skipped otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "nbtest.h"

#include "nubo/clock.h"
#include "nubo/error.h"
#include "vpn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IP_BIN  "/sbin/ip"
#define PSK     "test.psk_0123456789"
#define PORT    8080
#define INST_IP "10.20.0.5"

struct fixture {
    bool root;
    char host[16], site[16], inst[16], lan[16]; /* network namespaces */
    char dir[64];                               /* everything on disk */
    char state[96];                             /* the module's state directory */
    char site_dir[96];                          /* the site charon's /var/run */
    char id[32];
    char in_peer[NC_VPN_IFNAME_MAX], out_peer[NC_VPN_IFNAME_MAX];
    pid_t site_charon;
    const char *remote[2];
    struct nc_vpn_conn conn;
};

/* ---- helpers -------------------------------------------------------------------------------- */

/* Runs 'argv' (argv[0] an absolute path, NULL-terminated), output discarded; returns its exit
 * status, or -1. */
static int run_argv(const char *const *argv)
{
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0) {
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define CMD(...) run_argv((const char *const[]){__VA_ARGS__, NULL})
#define IP(...)  CMD(IP_BIN, __VA_ARGS__)

/* The routes of 'ns' to exactly 'cidr', one a line ("" when none), into 'out'. */
static const char *routes_to(const char *ns, const char *cidr, char *out, size_t size)
{
    out[0] = '\0';
    int pfd[2];
    if (pipe(pfd) < 0) {
        return out;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 1);
        execl(IP_BIN, IP_BIN, "-n", ns, "-4", "route", "show", "exact", cidr, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    size_t len = 0;
    ssize_t r;
    while (len < size - 1 && (r = read(pfd[0], out + len, size - 1 - len)) > 0) {
        len += (size_t)r;
    }
    out[len] = '\0';
    close(pfd[0]);
    waitpid(pid, NULL, 0);
    return out;
}

static int join_netns(const char *name)
{
    char path[64];
    snprintf(path, sizeof path, "/run/netns/%s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
        return -1;
    }
    close(fd);
    return 0;
}

static int write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    if (!fp) {
        return -1;
    }
    int rc = fputs(text, fp) < 0 ? -1 : 0;
    return fclose(fp) < 0 ? -1 : rc;
}

static bool proc_alive(pid_t pid)
{
    char path[64], text[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *fp = fopen(path, "r");
    if (!fp) {
        return false;
    }
    size_t n = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[n] = '\0';
    const char *paren = strrchr(text, ')');
    return paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

static bool vici_answers(const char *path)
{
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len >= sizeof sa.sun_path) {
        len = sizeof sa.sun_path - 1;
    }
    memcpy(sa.sun_path, path, len);
    bool ok = s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (s >= 0) {
        close(s);
    }
    return ok;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- TCP through the tunnel ----------------------------------------------------------------- */

static int wait_fd(int fd, short events, int ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    return poll(&p, 1, ms) == 1 ? 0 : -1;
}

/* In "inst": accepts one connection, counts what arrives until end-of-file and sends the count
 * back as 8 bytes. Writes one byte to 'ready' once listening. */
static _Noreturn void tcp_server(const char *ns, int ready)
{
    int l = -1;
    if (join_netns(ns) < 0 || (l = socket(AF_INET, SOCK_STREAM, 0)) < 0) {
        _exit(2);
    }
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(PORT)};
    inet_pton(AF_INET, INST_IP, &sa.sin_addr);
    if (bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, 1) < 0 ||
        write(ready, "x", 1) != 1 || wait_fd(l, POLLIN, 20000) < 0) {
        _exit(3);
    }
    int c = accept(l, NULL, NULL);
    uint64_t total = 0;
    char buf[65536];
    ssize_t r;
    while (wait_fd(c, POLLIN, 10000) == 0 && (r = read(c, buf, sizeof buf)) > 0) {
        total += (uint64_t)r;
    }
    _exit(write(c, &total, sizeof total) == sizeof total ? 0 : 4);
}

/* In "lan": connects to the server (within 'connect_ms'), sends 'bytes' and checks the count
 * that comes back. Exits 0 on success. */
static _Noreturn void tcp_client(const char *ns, size_t bytes, int connect_ms)
{
    int s = -1;
    if (join_netns(ns) < 0 || (s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0) {
        _exit(2);
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(PORT)};
    inet_pton(AF_INET, INST_IP, &sa.sin_addr);
    int err = 0;
    socklen_t len = sizeof err;
    if ((connect(s, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) ||
        wait_fd(s, POLLOUT, connect_ms) < 0 || getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) ||
        err) {
        _exit(3);
    }
    fcntl(s, F_SETFL, 0);
    char *data = calloc(1, bytes);
    size_t sent = 0;
    while (sent < bytes) {
        if (wait_fd(s, POLLOUT, 10000) < 0) {
            _exit(4);
        }
        ssize_t w = write(s, data + sent, bytes - sent);
        if (w <= 0) {
            _exit(4);
        }
        sent += (size_t)w;
    }
    shutdown(s, SHUT_WR);
    uint64_t echoed = 0;
    if (wait_fd(s, POLLIN, 10000) < 0 || read(s, &echoed, sizeof echoed) != sizeof echoed) {
        _exit(5);
    }
    _exit(echoed == bytes ? 0 : 6);
}

/* Sends 'bytes' from "lan" to "inst" over TCP; returns the client's exit status (0: all there). */
static int tcp_through_tunnel(const struct fixture *f, size_t bytes, int connect_ms)
{
    int ready[2];
    if (pipe(ready) < 0) {
        return -1;
    }
    pid_t server = fork();
    if (server == 0) {
        close(ready[0]);
        tcp_server(f->inst, ready[1]);
    }
    close(ready[1]);
    char byte;
    bool listening = wait_fd(ready[0], POLLIN, 5000) == 0 && read(ready[0], &byte, 1) == 1;
    close(ready[0]);
    int status = -1;
    if (listening) {
        pid_t client = fork();
        if (client == 0) {
            tcp_client(f->lan, bytes, connect_ms);
        }
        waitpid(client, &status, 0);
        status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    kill(server, SIGKILL);
    waitpid(server, NULL, 0);
    return status;
}

/* ---- the site's charon ---------------------------------------------------------------------- */

static const char site_strongswan_conf[] =
    "charon {\n"
    "    load = random nonce aes sha1 sha2 hmac gmp kdf kernel-libipsec kernel-netlink "
    "socket-default vici\n"
    "    plugins {\n"
    "        vici {\n"
    "            socket = unix:///var/run/charon.vici\n"
    "        }\n"
    "    }\n"
    "    filelog {\n"
    "        charon {\n"
    "            path = /var/run/charon.log\n"
    "            default = 1\n"
    "            flush_line = yes\n"
    "        }\n"
    "    }\n"
    "    syslog {\n"
    "        daemon {\n"
    "            default = -1\n"
    "        }\n"
    "    }\n"
    "}\n"
    "swanctl {\n"
    "    load = pem\n"
    "}\n";

/* Starts the site's charon as a child (killed with this process), the recipe by hand, and loads
 * the customer-side configuration of 'f->conn'. */
static int start_site_charon(struct fixture *f)
{
    char path[160], vici[160];
    snprintf(path, sizeof path, "%s/strongswan.conf", f->site_dir);
    if (write_text(path, site_strongswan_conf) < 0) {
        return -1;
    }
    char *swan = nc_vpn_peer_swanctl(&f->conn, NULL);
    snprintf(path, sizeof path, "%s/swanctl.conf", f->site_dir);
    if (!swan || write_text(path, swan) < 0) {
        free(swan);
        return -1;
    }
    free(swan);
    snprintf(vici, sizeof vici, "%s/charon.vici", f->site_dir);

    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        char out[160];
        snprintf(out, sizeof out, "%s/charon.out", f->site_dir);
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 1);
        dup2(fd, 2);
        /* "$0" is the directory: no path is pasted into the script. */
        execl(IP_BIN, IP_BIN, "netns", "exec", f->site, "/usr/bin/unshare", "--mount",
              "--propagation", "private", "/bin/sh", "-c",
              "umount -l /run/netns 2>/dev/null; mount --bind \"$0\" /var/run && "
              "STRONGSWAN_CONF=/var/run/strongswan.conf exec /usr/lib/ipsec/charon",
              f->site_dir, (char *)NULL);
        _exit(127);
    }
    if (pid < 0) {
        return -1;
    }
    f->site_charon = pid;
    int64_t deadline = nb_monotonic_ms() + 10000;
    while (!vici_answers(vici)) {
        if (nb_monotonic_ms() > deadline || waitpid(pid, NULL, WNOHANG) == pid) {
            print_message("the site's charon did not start (see %s/charon.out)\n", f->site_dir);
            return -1;
        }
        sleep_ms(10);
    }
    char conf_env[200], uri[200];
    snprintf(conf_env, sizeof conf_env, "STRONGSWAN_CONF=%s/strongswan.conf", f->site_dir);
    snprintf(uri, sizeof uri, "unix://%s", vici);
    putenv(conf_env);
    int rc = CMD("/usr/sbin/swanctl", "--load-all", "--noprompt", "--file", path, "--uri", uri);
    unsetenv("STRONGSWAN_CONF");
    return rc == 0 ? 0 : -1;
}

/* ---- fixture -------------------------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->root) {
        struct nb_error err = {0};
        if (nc_vpn_down(f->id, f->host, f->state, &err) < 0) {
            print_message("nc_vpn_down in teardown: %s (%s)\n", err.msg, err.detail);
        }
        if (f->site_charon > 0) {
            kill(f->site_charon, SIGTERM);
            waitpid(f->site_charon, NULL, 0);
        }
        const char *all[] = {f->host, f->site, f->inst, f->lan};
        for (size_t i = 0; i < 4; i++) {
            IP("netns", "del", all[i]);
        }
        if (f->dir[0]) {
            nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        }
    }
    free(f);
    return 0;
}

static int build_topology(struct fixture *f)
{
    const char *all[] = {f->host, f->site, f->inst, f->lan};
    for (size_t i = 0; i < 4; i++) {
        if (IP("netns", "add", all[i]) || IP("-n", all[i], "link", "set", "lo", "up")) {
            return -1;
        }
    }
    const char *h = f->host, *s = f->site, *in = f->inst, *l = f->lan;
    return IP("-n", h, "link", "add", "brvpc", "type", "bridge") ||
                   IP("-n", h, "link", "set", "brvpc", "up") ||
                   IP("-n", h, "link", "add", "brpub", "type", "bridge") ||
                   IP("-n", h, "link", "set", "brpub", "up") ||
                   IP("-n", h, "link", "add", "vinst", "type", "veth", "peer", "name", "eth0",
                      "netns", in) ||
                   IP("-n", h, "link", "set", "vinst", "master", "brvpc", "up") ||
                   IP("-n", in, "addr", "add", INST_IP "/16", "dev", "eth0") ||
                   IP("-n", in, "link", "set", "eth0", "up") ||
                   IP("-n", in, "route", "add", "default", "via", "10.20.0.3") ||
                   IP("-n", h, "link", "add", "vsite", "type", "veth", "peer", "name", "pub",
                      "netns", s) ||
                   IP("-n", h, "link", "set", "vsite", "master", "brpub", "up") ||
                   IP("-n", s, "addr", "add", "203.0.113.200/24", "dev", "pub") ||
                   IP("-n", s, "link", "set", "pub", "up") ||
                   IP("-n", s, "link", "add", "lan", "type", "veth", "peer", "name", "eth0",
                      "netns", l) ||
                   IP("-n", s, "addr", "add", "192.168.50.1/24", "dev", "lan") ||
                   IP("-n", s, "link", "set", "lan", "up") ||
                   IP("-n", l, "addr", "add", "192.168.50.10/24", "dev", "eth0") ||
                   IP("-n", l, "link", "set", "eth0", "up") ||
                   IP("-n", l, "route", "add", "default", "via", "192.168.50.1") ||
                   IP("netns", "exec", s, "/sbin/sysctl", "-qw", "net.ipv4.ip_forward=1")
               ? -1
               : 0;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    *state = f;
    f->root = geteuid() == 0;
    if (!f->root) {
        return 0;
    }
    /* Names unique per run: namespaces and the VPN id (its last 8 digits name the gateway's
     * namespace and veths) carry the pid. */
    unsigned tag = (unsigned)getpid();
    snprintf(f->host, sizeof f->host, "nbv%x-h", tag);
    snprintf(f->site, sizeof f->site, "nbv%x-s", tag);
    snprintf(f->inst, sizeof f->inst, "nbv%x-i", tag);
    snprintf(f->lan, sizeof f->lan, "nbv%x-l", tag);
    snprintf(f->id, sizeof f->id, "vpn-0feedface%08x", tag);
    snprintf(f->dir, sizeof f->dir, "/tmp/nubo-vpn-XXXXXX");
    if (!mkdtemp(f->dir)) {
        f->dir[0] = '\0';
        teardown(state);
        return -1;
    }
    snprintf(f->state, sizeof f->state, "%s/state", f->dir);
    snprintf(f->site_dir, sizeof f->site_dir, "%s/site", f->dir);
    mkdir(f->site_dir, 0700);

    f->remote[0] = "192.168.50.0/24";
    f->remote[1] = "192.168.51.0/24";
    f->conn = (struct nc_vpn_conn){
        .id = f->id,
        .outside_ip = "203.0.113.10",
        .outside_prefix = 24,
        .outside_router = "203.0.113.1",
        .peer_ip = "203.0.113.200",
        .psk = PSK,
        .local_cidr = "10.20.0.0/16",
        .remote_cidrs = f->remote,
        .n_remote = 1,
        .inside_ip = "10.20.0.3",
        .inside_prefix = 16,
        .inside_mac = "02:00:0a:14:00:03",
        .outside_mac = "02:00:cb:00:71:0a",
    };
    if (build_topology(f) < 0 || start_site_charon(f) < 0) {
        print_message("could not build the test topology\n");
        teardown(state);
        return -1;
    }
    return 0;
}

/* nc_vpn_up, then the outer ends into the bridges (what nubo-netctl does with OVS). */
static int gateway_up(struct fixture *f, struct nb_error *err)
{
    if (nc_vpn_up(&f->conn, f->host, f->state, f->in_peer, f->out_peer, err) < 0) {
        return -1;
    }
    if (IP("-n", f->host, "link", "set", f->in_peer, "master", "brvpc") ||
        IP("-n", f->host, "link", "set", f->out_peer, "master", "brpub")) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not attach the veths to the bridges");
        return -1;
    }
    return 0;
}

/* Waits up to 'ms' for the IKE and CHILD SA; returns the milliseconds it took, or -1. */
static long wait_established(const struct fixture *f, long ms, struct nc_vpn_status *st)
{
    int64_t t0 = nb_monotonic_ms();
    for (;;) {
        struct nb_error err = {0};
        if (nc_vpn_status(f->id, f->state, st, &err) == 0 && st->ike_established &&
            st->child_installed) {
            return (long)(nb_monotonic_ms() - t0);
        }
        if (nb_monotonic_ms() - t0 > ms) {
            return -1;
        }
        sleep_ms(5);
    }
}

/* ---- cases ---------------------------------------------------------------------------------- */

static void tunnel_carries_tcp_through_esp(void **state)
{
    struct fixture *f = *state;
    if (!f->root) {
        skip();
    }
    struct nb_error err = {0};
    int64_t t0 = nb_monotonic_ms();
    assert_zero(gateway_up(f, &err), err);
    long up_ms = (long)(nb_monotonic_ms() - t0);
    struct nc_vpn_status st;
    long sa_ms = wait_established(f, 20000, &st);
    assert_true(sa_ms >= 0);
    print_message("nc_vpn_up %ld ms, SAs established %ld ms after it returned\n", up_ms, sa_ms);
    assert_true(st.running);
    assert_true(st.charon_pid > 0);
    /* charon's private mount namespace pins no network namespace (it would outlive
     * "ip netns del", veths and all, for as long as charon runs). */
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/mountinfo", (int)st.charon_pid);
    FILE *mounts = fopen(path, "r");
    assert_non_null(mounts);
    int nsfs = 0;
    while (fgets(line, sizeof line, mounts)) {
        nsfs += strstr(line, " - nsfs ") != NULL;
    }
    fclose(mounts);
    assert_int_equal(nsfs, 0);

    char expect[NC_VPN_IFNAME_MAX];
    snprintf(expect, sizeof expect, "nvi-%s", f->id + strlen(f->id) - 8);
    assert_string_equal(f->in_peer, expect);
    snprintf(expect, sizeof expect, "nvo-%s", f->id + strlen(f->id) - 8);
    assert_string_equal(f->out_peer, expect);

    struct nc_vpn_status before = st;
    const size_t bytes = 2 * 1024 * 1024;
    assert_int_equal(tcp_through_tunnel(f, bytes, 5000), 0);
    assert_zero(nc_vpn_status(f->id, f->state, &st, &err), err);
    assert_true(st.ike_established && st.child_installed);
    /* The 2 MiB came in through the CHILD SA, as ESP. */
    print_message("CHILD SA bytes in %llu, out %llu\n", (unsigned long long)st.bytes_in,
                  (unsigned long long)st.bytes_out);
    assert_true(st.bytes_in >= before.bytes_in + bytes);
    assert_true(st.bytes_out > before.bytes_out);
    assert_true(st.packets_out > before.packets_out);

    char **ids;
    size_t n;
    assert_zero(nc_vpn_list(f->state, &ids, &n, &err), err);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], f->id);
    nc_vpn_list_free(ids, n);
}

static void up_again_is_a_no_op_and_new_cidrs_reload(void **state)
{
    struct fixture *f = *state;
    if (!f->root) {
        skip();
    }
    struct nb_error err = {0};
    assert_zero(gateway_up(f, &err), err);
    struct nc_vpn_status st;
    assert_true(wait_established(f, 20000, &st) >= 0);
    pid_t pid = st.charon_pid;

    int64_t t0 = nb_monotonic_ms();
    char in_peer[NC_VPN_IFNAME_MAX], out_peer[NC_VPN_IFNAME_MAX];
    assert_zero(nc_vpn_up(&f->conn, f->host, f->state, in_peer, out_peer, &err), err);
    print_message("nc_vpn_up again: %ld ms\n", (long)(nb_monotonic_ms() - t0));
    assert_string_equal(in_peer, f->in_peer);
    assert_string_equal(out_peer, f->out_peer);
    assert_zero(nc_vpn_status(f->id, f->state, &st, &err), err);
    assert_int_equal(st.charon_pid, pid);
    assert_true(st.ike_established && st.child_installed);

    /* A second customer network: the same charon reloads, the SAs come back, the route is
     * there, and the site (still configured for the first network only) narrows the CHILD SA. */
    f->conn.n_remote = 2;
    t0 = nb_monotonic_ms();
    assert_zero(nc_vpn_up(&f->conn, f->host, f->state, in_peer, out_peer, &err), err);
    print_message("nc_vpn_up with a new remote CIDR: %ld ms\n", (long)(nb_monotonic_ms() - t0));
    assert_true(wait_established(f, 20000, &st) >= 0);
    assert_int_equal(st.charon_pid, pid);
    char ns[16];
    snprintf(ns, sizeof ns, "nvpn-%s", f->id + strlen(f->id) - 8);
    char routes[512];
    routes_to(ns, "192.168.51.0/24", routes, sizeof routes);
    assert_non_null(strstr(routes, "192.168.51.0/24 dev ipsec0"));
    assert_non_null(strstr(routes, "unreachable 192.168.51.0/24"));
    assert_int_equal(tcp_through_tunnel(f, 64 * 1024, 5000), 0);

    /* And back: the route of the removed network goes. */
    f->conn.n_remote = 1;
    assert_zero(nc_vpn_up(&f->conn, f->host, f->state, in_peer, out_peer, &err), err);
    assert_true(wait_established(f, 20000, &st) >= 0);
    assert_int_equal(st.charon_pid, pid);
    assert_string_equal(routes_to(ns, "192.168.51.0/24", routes, sizeof routes), "");
    assert_non_null(strstr(routes_to(ns, "192.168.50.0/24", routes, sizeof routes), "ipsec0"));
    assert_int_equal(tcp_through_tunnel(f, 64 * 1024, 5000), 0);
}

static void charon_that_died_is_started_again(void **state)
{
    struct fixture *f = *state;
    if (!f->root) {
        skip();
    }
    struct nb_error err = {0};
    assert_zero(gateway_up(f, &err), err);
    struct nc_vpn_status st;
    assert_true(wait_established(f, 20000, &st) >= 0);
    pid_t old = st.charon_pid;
    kill(old, SIGKILL);
    for (int i = 0; i < 200 && proc_alive(old); i++) {
        sleep_ms(10);
    }
    assert_zero(nc_vpn_status(f->id, f->state, &st, &err), err);
    assert_false(st.running);

    assert_zero(gateway_up(f, &err), err);
    long ms = wait_established(f, 20000, &st);
    assert_true(ms >= 0);
    assert_true(st.charon_pid != old);
    print_message("restarted charon, SAs established %ld ms after nc_vpn_up\n", ms);
    assert_int_equal(tcp_through_tunnel(f, 64 * 1024, 5000), 0);
}

static void down_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    if (!f->root) {
        skip();
    }
    struct nb_error err = {0};
    assert_zero(gateway_up(f, &err), err);
    struct nc_vpn_status st;
    assert_true(wait_established(f, 20000, &st) >= 0);
    assert_int_equal(tcp_through_tunnel(f, 64 * 1024, 5000), 0);
    pid_t pid = st.charon_pid;

    int64_t t0 = nb_monotonic_ms();
    assert_zero(nc_vpn_down(f->id, f->host, f->state, &err), err);
    print_message("nc_vpn_down %ld ms\n", (long)(nb_monotonic_ms() - t0));

    assert_false(proc_alive(pid));
    char path[64];
    snprintf(path, sizeof path, "/run/netns/nvpn-%s", f->id + strlen(f->id) - 8);
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_not_equal(IP("-n", f->host, "link", "show", "dev", f->in_peer), 0);
    assert_int_not_equal(IP("-n", f->host, "link", "show", "dev", f->out_peer), 0);
    char dir[160];
    snprintf(dir, sizeof dir, "%s/%s", f->state, f->id);
    assert_int_not_equal(access(dir, F_OK), 0);
    char **ids;
    size_t n;
    assert_zero(nc_vpn_list(f->state, &ids, &n, &err), err);
    assert_int_equal(n, 0);
    nc_vpn_list_free(ids, n);
    assert_int_equal(nc_vpn_status(f->id, f->state, &st, &err), -1);
    assert_int_equal(err.code, NB_ERR_NOT_FOUND);

    /* The site's packets for the VPC now end in its own TUN device, without SA. */
    assert_int_not_equal(tcp_through_tunnel(f, 1024, 2000), 0);
    /* Gone already is no error. */
    assert_zero(nc_vpn_down(f->id, f->host, f->state, &err), err);
}

static void bad_input_is_refused(void **state)
{
    struct fixture *f = *state;
    if (!f->root) {
        skip();
    }
    struct nb_error err = {0};
    char in_peer[NC_VPN_IFNAME_MAX], out_peer[NC_VPN_IFNAME_MAX];
    struct nc_vpn_conn c = f->conn;
    const char *bad_remote[] = {"192.168.50.1/24"};

    c.id = "vpn-../../etc";
    assert_int_equal(nc_vpn_up(&c, f->host, f->state, in_peer, out_peer, &err), -1);
    assert_int_equal(err.code, NB_ERR_INVALID);
    c = f->conn;
    c.psk = "secret\"\n}";
    assert_int_equal(nc_vpn_up(&c, f->host, f->state, in_peer, out_peer, &err), -1);
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_null(strstr(err.msg, "secret"));
    c = f->conn;
    c.remote_cidrs = bad_remote;
    assert_int_equal(nc_vpn_up(&c, f->host, f->state, in_peer, out_peer, &err), -1);
    assert_int_equal(err.code, NB_ERR_INVALID);
    c = f->conn;
    c.local_cidr = "10.20.0.0/33";
    assert_int_equal(nc_vpn_up(&c, f->host, f->state, in_peer, out_peer, &err), -1);
    c = f->conn;
    c.inside_ip = "10.21.0.3";
    assert_int_equal(nc_vpn_up(&c, f->host, f->state, in_peer, out_peer, &err), -1);
    c = f->conn;
    c.outside_mac = "03:00:00:00:00:01";
    assert_int_equal(nc_vpn_up(&c, f->host, f->state, in_peer, out_peer, &err), -1);
    assert_int_equal(nc_vpn_up(&f->conn, "-n", f->state, in_peer, out_peer, &err), -1);
    assert_null(nc_vpn_peer_swanctl(&c, NULL));

    /* Nothing was created. */
    char path[64];
    snprintf(path, sizeof path, "/run/netns/nvpn-%s", f->id + strlen(f->id) - 8);
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_not_equal(access(f->state, F_OK), 0);

    /* Another id ending in the same 8 digits would share the namespace. */
    assert_zero(nc_vpn_up(&f->conn, f->host, f->state, in_peer, out_peer, &err), err);
    char twin[32];
    snprintf(twin, sizeof twin, "vpn-1%s", f->id + 5);
    c = f->conn;
    c.id = twin;
    assert_int_equal(nc_vpn_up(&c, f->host, f->state, in_peer, out_peer, &err), -1);
    assert_int_equal(err.code, NB_ERR_CONFLICT);
    assert_zero(nc_vpn_down(twin, f->host, f->state, &err), err);
    snprintf(path, sizeof path, "/run/netns/nvpn-%s", f->id + strlen(f->id) - 8);
    assert_int_equal(access(path, F_OK), 0);
}

static void peer_config_is_the_reverse(void **state)
{
    (void)state;
    const char *remote[] = {"192.168.50.0/24", "192.168.51.0/24"};
    struct nc_vpn_conn c = {
        .id = "vpn-0123456789abcdef0",
        .outside_ip = "203.0.113.10",
        .outside_prefix = 24,
        .peer_ip = "198.51.100.7",
        .psk = PSK,
        .local_cidr = "10.20.0.0/16",
        .remote_cidrs = remote,
        .n_remote = 2,
        .inside_ip = "10.20.0.3",
        .inside_prefix = 16,
        .inside_mac = "02:00:0a:14:00:03",
        .outside_mac = "02:00:cb:00:71:0a",
    };
    char *text = nc_vpn_peer_swanctl(&c, "192.168.1.2");
    assert_non_null(text);
    assert_non_null(strstr(text, "local_addrs = 192.168.1.2\n"));
    assert_non_null(strstr(text, "remote_addrs = 203.0.113.10\n"));
    assert_non_null(strstr(text, "id = 198.51.100.7\n"));
    assert_non_null(strstr(text, "local_ts = 192.168.50.0/24,192.168.51.0/24\n"));
    assert_non_null(strstr(text, "remote_ts = 10.20.0.0/16\n"));
    assert_non_null(strstr(text, "proposals = aes256-sha256-modp2048\n"));
    assert_non_null(strstr(text, "esp_proposals = aes256-sha256-modp2048\n"));
    assert_non_null(strstr(text, "secret = \"" PSK "\"\n"));
    assert_non_null(strstr(text, "start_action = trap\n"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(tunnel_carries_tcp_through_esp, setup, teardown),
        cmocka_unit_test_setup_teardown(up_again_is_a_no_op_and_new_cidrs_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(charon_that_died_is_started_again, setup, teardown),
        cmocka_unit_test_setup_teardown(down_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_input_is_refused, setup, teardown),
        cmocka_unit_test(peer_config_is_the_reverse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
