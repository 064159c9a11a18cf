/* DHCP and the instance metadata service of a host's tenant networks (svc.h).
 *
 * How it is built, and why:
 *
 * - Work inside another network namespace (a link's existence, checksum offload, the metadata
 *   server's listening socket, starting dnsmasq) runs on a short-lived thread that joined the
 *   namespace with setns(CLONE_NEWNET): the namespace is per thread, a socket keeps the
 *   namespace it was made in, and a child spawned from that thread is born in it. So dnsmasq
 *   needs no "ip netns exec" and its mount namespace stays ours, and the metadata server's
 *   worker threads (started from the node thread) stay in the host's namespace, where the
 *   control plane is reachable.
 * - dnsmasq (Debian's dnsmasq-base), one per service namespace, configured by one file that
 *   it reads at start as root (it rereads a --dhcp-hostsfile on SIGHUP as "nobody", which
 *   cannot enter the state directory): "port=0" (no DNS), "dhcp-range=<VPC base>,static,<VPC
 *   mask>" (static: only the listed MACs get an address; the range must be on the interface's
 *   network, hence the VPC-wide mask), a "dhcp-host" per local port, tagged with its subnet's
 *   router ("set:rN", and "dhcp-option=tag:rN,option:router,..."), and the MTU forced (busybox's
 *   udhcpc and others do not ask for it). Clients get the VPC's mask: the desired state does not
 *   carry the subnets' prefixes, and the flows answer ARP for every address of the VPC, so
 *   on-link delivery across subnets works.
 * - So dnsmasq is restarted when its ports change (about 10 ms). That also drops the leases it
 *   holds in memory: one for an address that passed to another MAC would keep the new instance
 *   from getting it ("not using configured address ... because it is leased to ..."). A client
 *   renewing later is answered all the same (dhcp-authoritative, static hosts).
 * - A veth deleted behind our back (the host's side gone) is made again by the next sync, and
 *   dnsmasq restarted with it.
 * - The metadata server is libmicrohttpd (nubo/http.h) with a thread per connection: a handler
 *   may wait for the control plane, which must not hold up the other instances' requests.
 *   Instances are told apart by their source address (the flows admit only a port's own
 *   address from it) within the namespace's network.
 */
#include "svc.h"

#include "model.h"
#include "netns.h"
#include "ovs.h"
#include "nubo/buf.h"
#include "nubo/clock.h"
#include "nubo/crypto.h"
#include "nubo/error.h"
#include "nubo/http.h"
#include "nubo/httpc.h"
#include "nubo/json.h"
#include "nubo/log.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#define IP_BIN      "/sbin/ip"
#define DNSMASQ_BIN "/usr/sbin/dnsmasq"
#define INNER_DEV   "svc"
#define GUEST_MTU   "1450" /* VXLAN's 50 bytes off a 1500-byte underlay */
#define LEASE_TIME  "1h"

#define CMD_TIMEOUT_MS     15000
#define DNSMASQ_STOP_MS    3000
#define META_FRESH_MS      5000   /* how long a metadata document is served without asking */
#define META_STALE_MS      600000 /* ...and, while the control plane cannot answer, at most */
#define CONTROL_TIMEOUT_MS 5000
#define TOKEN_TTL_MAX      21600
#define KEY_LEN            32
#define TOKEN_RAW_LEN      (8 + NB_SHA256_LEN)

/* --- state -------------------------------------------------------------------------------- */

struct svc_port {
    uint32_t ip;
    char id[NC_ID_MAX];
};

/* One service namespace. */
struct svc_net {
    struct nc_svc *s;
    int segment;
    char ns[32];    /* "nsvc-TTTTTT-SEG" */
    char outer[16]; /* "svTTTTTT-SEG", the end on the bridge */
    char dir[PATH_MAX];
    /* What this process built or checked: the next sync compares, NULL means "not yet". */
    char *net_text, *conf_text;
    struct nb_http_server *http;
    struct svc_port *ports; /* this host's ports of the network; under s->lock */
    size_t n_ports;
    bool wanted; /* scratch, during a sync */
};

struct meta_entry {
    char id[NC_ID_MAX];
    json_t *doc;
    long long fetched_ms;
};

struct nc_svc {
    char bridge[32];
    char host_netns[64]; /* "" for ours */
    char state_dir[PATH_MAX - 64];
    char control_url[256];
    char token[160];
    char tag[8]; /* 6 hex digits of a hash of 'state_dir' */
    uint8_t key[KEY_LEN];
    struct svc_net **nets;
    size_t n_nets;
    pthread_mutex_t lock; /* every net's 'ports', and the cache */
    struct meta_entry *cache;
    size_t n_cache;
};

static const char *host_ns(const struct nc_svc *s)
{
    return s->host_netns[0] ? s->host_netns : NULL;
}

/* --- small helpers ------------------------------------------------------------------------ */

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Returns the contents of 'path' as a new string the caller frees, or NULL when unreadable. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        return NULL;
    }
    struct nb_buf b = NB_BUF_INIT;
    nb_buf_puts(&b, "");
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        nb_buf_append(&b, chunk, n);
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        nb_buf_free(&b);
        return NULL;
    }
    return nb_buf_steal(&b);
}

/* Replaces 'dir'/'name' with 'text' (a temporary file renamed over it). */
static int put_file(const char *dir, const char *name, const char *text, struct nb_error *err)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "we");
    if (!f) {
        nb_error_errno(err, errno, "could not create \"%s\"", tmp);
        return -1;
    }
    bool ok = fputs(text, f) >= 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) < 0) {
        nb_error_errno(err, errno, "could not write \"%s\"", path);
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* "ip-10-0-1-5", EC2's host name for an address. */
static void host_name(uint32_t ip, char out[24])
{
    snprintf(out, 24, "ip-%u-%u-%u-%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

/* Runs ip(8) with 'args' (NULL-terminated), in namespace 'netns' (ip -n) unless NULL. */
static int ip_cmd(struct nb_error *err, const char *netns, const char *const *args)
{
    const char *argv[24];
    size_t n = 0;
    argv[n++] = IP_BIN;
    if (netns) {
        argv[n++] = "-n";
        argv[n++] = netns;
    }
    for (size_t i = 0; args[i] && n < 23; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    return nc_run(argv, NULL, 0, NULL, CMD_TIMEOUT_MS, err);
}

#define IP(err, netns, ...) ip_cmd(err, netns, (const char *const[]){__VA_ARGS__, NULL})

/* --- work inside a network namespace ------------------------------------------------------ */

typedef int (*ns_fn)(void *arg, struct nb_error *err);

struct ns_call {
    const char *netns;
    ns_fn fn;
    void *arg;
    struct nb_error *err;
    int rc;
};

static void *ns_thread(void *p)
{
    struct ns_call *c = p;
    c->rc = -1;
    if (c->netns) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, NC_NETNS_DIR "/%s", c->netns);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
            nb_error_errno(c->err, errno, "could not enter network namespace \"%s\"", c->netns);
            if (fd >= 0) {
                close(fd);
            }
            return NULL;
        }
        close(fd);
    }
    c->rc = c->fn(c->arg, c->err);
    return NULL;
}

/* Runs 'fn(arg, err)' on a new thread inside network namespace 'netns' (NULL: ours) and returns
 * what it returns; the thread, and with it the namespace change, ends with it. */
static int in_netns(const char *netns, ns_fn fn, void *arg, struct nb_error *err)
{
    struct ns_call c = {.netns = netns, .fn = fn, .arg = arg, .err = err};
    pthread_t t;
    int rc = pthread_create(&t, NULL, ns_thread, &c);
    if (rc) {
        nb_error_errno(err, rc, "could not start a thread");
        return -1;
    }
    pthread_join(t, NULL);
    return c.rc;
}

struct link_query {
    const char *name;
    bool exists;
};

static int ns_link_exists(void *arg, struct nb_error *err)
{
    (void)err;
    struct link_query *q = arg;
    q->exists = if_nametoindex(q->name) != 0;
    return 0;
}

static int link_exists(const char *netns, const char *name, bool *exists, struct nb_error *err)
{
    struct link_query q = {.name = name};
    int rc = in_netns(netns, ns_link_exists, &q, err);
    *exists = q.exists;
    return rc;
}

/* "ethtool -K NAME tx off": Open vSwitch's userspace datapath forwards TCP from a veth with
 * checksum offload on with bad checksums (MACHINE-NOTES). */
static int ns_tx_off(void *arg, struct nb_error *err)
{
    const char *name = arg;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ethtool_value ev = {.cmd = ETHTOOL_STXCSUM, .data = 0};
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
    ifr.ifr_data = (void *)&ev;
    if (fd < 0 || ioctl(fd, SIOCETHTOOL, &ifr) < 0) {
        nb_error_errno(err, errno, "could not turn checksum offload off on \"%s\"", name);
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    close(fd);
    return 0;
}

/* Makes the metadata server's listening socket, 169.254.169.254:80, into '*(int *)arg'. */
static int ns_listen(void *arg, struct nb_error *err)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(80)};
    sin.sin_addr.s_addr = htonl(NC_METADATA_IP);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(fd, 128) < 0) {
        nb_error_errno(err, errno, "could not listen on 169.254.169.254 port 80");
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    *(int *)arg = fd;
    return 0;
}

/* Runs the NULL-terminated 'arg' (an argv) to its end: dnsmasq's first process exits once the
 * daemon it forked is ready, or with the reason it is not. */
static int ns_run(void *arg, struct nb_error *err)
{
    return nc_run(arg, NULL, 0, NULL, CMD_TIMEOUT_MS, err);
}

/* --- names and what a network needs ------------------------------------------------------- */

static struct svc_net *net_new(struct nc_svc *s, int segment)
{
    struct svc_net *n = calloc(1, sizeof *n);
    if (!n) {
        abort();
    }
    n->s = s;
    n->segment = segment;
    snprintf(n->ns, sizeof n->ns, "nsvc-%s-%d", s->tag, segment);
    snprintf(n->outer, sizeof n->outer, "sv%s-%d", s->tag, segment);
    snprintf(n->dir, sizeof n->dir, "%s/svc-%d", s->state_dir, segment);
    return n;
}

static void net_forget(struct svc_net *n)
{
    free(n->net_text);
    free(n->conf_text);
    n->net_text = n->conf_text = NULL;
}

/* Stops 'n's metadata server and frees it; 'n' must be out of 's->nets'. */
static void net_free(struct svc_net *n)
{
    if (!n) {
        return;
    }
    nb_http_server_free(n->http);
    net_forget(n);
    free(n->ports);
    free(n);
}

static bool has_local_port(const struct nc_state *st, int segment)
{
    for (size_t i = 0; i < st->n_ports; i++) {
        if (!st->ports[i].host && st->ports[i].segment == segment) {
            return true;
        }
    }
    return false;
}

/* The index of the router of 'ip''s subnet in 'net->routers' (each subnet's first address + 1,
 * subnets never overlap: the highest router at or below 'ip'), or -1. */
static long router_of(const struct nc_network *net, uint32_t ip)
{
    long best = -1;
    for (size_t r = 0; r < net->n_routers; r++) {
        uint32_t a = net->routers[r];
        if (a <= ip && nc_cidr_contains(net->cidr, a) && (best < 0 || a > net->routers[best])) {
            best = (long)r;
        }
    }
    return best;
}

static uint32_t prefix_mask(int len)
{
    return len ? ~0u << (32 - len) : 0;
}

/* What the namespace is made of: a change means a rebuild. Its first line names the namespace
 * (for people and scripts cleaning up). */
static char *render_net(const struct svc_net *n, const struct nc_network *net)
{
    uint8_t mac[6];
    char m[18], a[16];
    nc_service_mac(net->segment, mac);
    struct nb_buf b = NB_BUF_INIT;
    nb_buf_printf(&b, "netns %s\nveth %s\nmac %s\naddress %s/%d\n", n->ns, n->outer,
                  nc_mac_str(mac, m), nc_ip_str(nc_service_ip(net), a), net->cidr.len);
    return nb_buf_steal(&b);
}

/* --- dnsmasq ------------------------------------------------------------------------------ */

static void net_path(const struct svc_net *n, const char *name, char out[PATH_MAX])
{
    snprintf(out, PATH_MAX, "%.*s/%s", PATH_MAX - 32, n->dir, name);
}

/* dnsmasq's configuration for the local ports of 'net' (read as root at its start, before it
 * drops to "nobody"), and the table of those ports for the metadata server (a new array). */
static char *render_conf(const struct svc_net *n, const struct nc_state *st,
                         const struct nc_network *net, struct svc_port **ports, size_t *n_ports)
{
    char base[16], mask[16], path[PATH_MAX];
    struct nb_buf b = NB_BUF_INIT;
    nb_buf_printf(&b,
                  "# Written by nubo-netctl for segment %d; do not edit (see netctl/svc.c).\n"
                  "port=0\n"
                  "no-resolv\n"
                  "no-hosts\n"
                  "interface=" INNER_DEV "\n"
                  "user=nobody\n"
                  "dhcp-authoritative\n"
                  "quiet-dhcp\n"
                  "dhcp-range=%s,static,%s," LEASE_TIME "\n"
                  "dhcp-option-force=option:mtu," GUEST_MTU "\n",
                  net->segment, nc_ip_str(net->cidr.addr, base),
                  nc_ip_str(prefix_mask(net->cidr.len), mask));
    net_path(n, "leases", path);
    nb_buf_printf(&b, "dhcp-leasefile=%s\n", path);
    net_path(n, "dnsmasq.pid", path);
    nb_buf_printf(&b, "pid-file=%s\n", path);
    net_path(n, "dnsmasq.log", path);
    nb_buf_printf(&b, "log-facility=%s\n", path);
    for (size_t r = 0; r < net->n_routers; r++) {
        char a[16];
        nb_buf_printf(&b, "dhcp-option=tag:r%zu,option:router,%s\n", r,
                      nc_ip_str(net->routers[r], a));
    }
    *ports = calloc(st->n_ports + 1, sizeof **ports);
    *n_ports = 0;
    for (size_t i = 0; i < st->n_ports; i++) {
        const struct nc_port *p = &st->ports[i];
        if (p->host || p->segment != net->segment) {
            continue;
        }
        char m[18], a[16], name[24], tag[32] = "";
        long r = router_of(net, p->ip);
        if (r >= 0) {
            snprintf(tag, sizeof tag, "set:r%ld,", r);
        }
        host_name(p->ip, name);
        nb_buf_printf(&b, "dhcp-host=%s,%s%s,%s\n", nc_mac_str(p->mac, m), tag, nc_ip_str(p->ip, a),
                      name);
        (*ports)[*n_ports].ip = p->ip;
        snprintf((*ports)[*n_ports].id, sizeof(*ports)[*n_ports].id, "%s", p->id);
        (*n_ports)++;
    }
    return nb_buf_steal(&b);
}

/* The pid of the dnsmasq of 'n' if it runs: the pid file's process must be a live "dnsmasq"
 * in the namespace of 'n' (a pid file can outlive its process, and pids are reused). */
static pid_t dnsmasq_pid(const struct svc_net *n)
{
    char path[PATH_MAX], proc[64], comm[32];
    net_path(n, "dnsmasq.pid", path);
    char *pidtext = slurp(path);
    long pid = pidtext ? strtol(pidtext, NULL, 10) : 0;
    free(pidtext);
    if (pid <= 0 || pid > INT_MAX || !nc_netns_proc_alive((pid_t)pid, comm) ||
        strcmp(comm, "dnsmasq")) {
        return 0;
    }
    char ns_file[PATH_MAX];
    snprintf(ns_file, sizeof ns_file, NC_NETNS_DIR "/%s", n->ns);
    snprintf(proc, sizeof proc, "/proc/%ld/ns/net", pid);
    struct stat theirs, ours;
    if (stat(proc, &theirs) < 0 || stat(ns_file, &ours) < 0 || theirs.st_dev != ours.st_dev ||
        theirs.st_ino != ours.st_ino) {
        return 0;
    }
    return (pid_t)pid;
}

static bool gone_within(pid_t pid, long long ms)
{
    long long deadline = nb_monotonic_ms() + ms;
    for (;;) {
        /* Ours only if we are a subreaper; then it must be reaped to go. */
        waitpid(pid, NULL, WNOHANG);
        char comm[32];
        if (!nc_netns_proc_alive(pid, comm)) {
            return true;
        }
        if (nb_monotonic_ms() > deadline) {
            return false;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void dnsmasq_stop(const struct svc_net *n)
{
    pid_t pid = dnsmasq_pid(n);
    if (pid > 0) {
        kill(pid, SIGTERM);
        if (!gone_within(pid, DNSMASQ_STOP_MS)) {
            nb_warn("dnsmasq %d of \"%s\" ignored SIGTERM: killing it", (int)pid, n->ns);
            kill(pid, SIGKILL);
            gone_within(pid, DNSMASQ_STOP_MS);
        }
    }
    char path[PATH_MAX];
    net_path(n, "dnsmasq.pid", path);
    unlink(path);
}

static int dnsmasq_start(const struct svc_net *n, struct nb_error *err)
{
    char path[PATH_MAX], conf[PATH_MAX + 16];
    static const char *const old[] = {"leases", "dnsmasq.pid", "dnsmasq.log"};
    for (size_t i = 0; i < sizeof old / sizeof *old; i++) {
        net_path(n, old[i], path);
        unlink(path);
    }
    net_path(n, "dnsmasq.conf", path);
    snprintf(conf, sizeof conf, "--conf-file=%s", path);
    const char *argv[] = {DNSMASQ_BIN, conf, NULL};
    if (in_netns(n->ns, ns_run, argv, err) < 0) {
        nb_error_detail(err, "starting dnsmasq in \"%s\"", n->ns);
        return -1;
    }
    pid_t p = dnsmasq_pid(n);
    if (p <= 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "dnsmasq in \"%s\" exited at once", n->ns);
        return -1;
    }
    nb_info("started dnsmasq %d for segment %d in \"%s\"", (int)p, n->segment, n->ns);
    return 0;
}

/* --- building and tearing down ------------------------------------------------------------ */

/* The namespace, the veth with its inner end configured and its outer end on the bridge.
 * Every step is idempotent. Sets '*fresh' when the namespace or the veth had to be made. */
static int build(struct nc_svc *s, struct svc_net *n, const struct nc_network *net, bool *fresh,
                 struct nb_error *err)
{
    char ns_file[PATH_MAX], mac[18], addr[24], a[16], seg[16];
    uint8_t m[6];
    nc_service_mac(net->segment, m);
    nc_mac_str(m, mac);
    snprintf(addr, sizeof addr, "%s/%d", nc_ip_str(nc_service_ip(net), a), net->cidr.len);
    snprintf(ns_file, sizeof ns_file, NC_NETNS_DIR "/%s", n->ns);
    snprintf(seg, sizeof seg, "%d", net->segment);
    bool inner = false, lone = false;
    *fresh = !file_exists(ns_file);
    if (*fresh && IP(err, NULL, "netns", "add", n->ns) < 0) {
        return -1;
    }
    if (link_exists(n->ns, INNER_DEV, &inner, err) < 0) {
        return -1;
    }
    if (!inner) {
        *fresh = true;
        /* A lone outer end (its peer went with a deleted namespace) is in the way. */
        if (link_exists(host_ns(s), n->outer, &lone, err) < 0 ||
            (lone && IP(err, host_ns(s), "link", "del", "dev", n->outer) < 0) ||
            IP(err, host_ns(s), "link", "add", n->outer, "type", "veth", "peer", "name", INNER_DEV,
               "netns", n->ns) < 0) {
            return -1;
        }
    }
    struct nb_buf batch = NB_BUF_INIT;
    nb_buf_printf(&batch,
                  "link set dev lo up\n"
                  "link set dev " INNER_DEV " address %s up\n"
                  "addr replace %s dev " INNER_DEV "\n"
                  "addr replace 169.254.169.254/32 dev " INNER_DEV "\n",
                  mac, addr);
    const char *argv[] = {IP_BIN, "-n", n->ns, "-batch", "-", NULL};
    int rc = nc_run(argv, batch.data, batch.len, NULL, CMD_TIMEOUT_MS, err);
    nb_buf_free(&batch);
    if (rc < 0 || IP(err, host_ns(s), "link", "set", "dev", n->outer, "up") < 0 ||
        in_netns(n->ns, ns_tx_off, (void *)INNER_DEV, err) < 0 ||
        in_netns(host_ns(s), ns_tx_off, n->outer, err) < 0 ||
        nc_ovs_plug(s->bridge, n->outer, "nubo-svc", seg, err) < 0) {
        return -1;
    }
    return 0;
}

/* Takes down everything of segment 'n->segment': dnsmasq, the bridge port, the veth, the
 * namespace and the directory. What is already gone is no error. */
static int tear_down(struct nc_svc *s, const struct svc_net *n, struct nb_error *err)
{
    char ns_file[PATH_MAX], host_file[PATH_MAX];
    snprintf(ns_file, sizeof ns_file, NC_NETNS_DIR "/%s", n->ns);
    snprintf(host_file, sizeof host_file, NC_NETNS_DIR "/%s", s->host_netns);
    dnsmasq_stop(n);
    if (nc_ovs_unplug(s->bridge, n->outer, err) < 0) {
        return -1;
    }
    /* Deleted by hand: with the namespace it would go too, but only once the kernel is done
     * destroying the namespace, later. A host namespace that is gone took it along. */
    bool outer = false;
    if ((!host_ns(s) || file_exists(host_file)) &&
        (link_exists(host_ns(s), n->outer, &outer, err) < 0 ||
         (outer && IP(err, host_ns(s), "link", "del", "dev", n->outer) < 0))) {
        return -1;
    }
    if (file_exists(ns_file) && IP(err, NULL, "netns", "del", n->ns) < 0) {
        return -1;
    }
    static const char *const files[] = {"net", "dnsmasq.conf", "leases", "dnsmasq.pid",
                                        "dnsmasq.log"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char path[PATH_MAX];
        net_path(n, files[i], path);
        unlink(path);
    }
    if (rmdir(n->dir) < 0 && errno != ENOENT) {
        nb_error_errno(err, errno, "could not remove \"%s\"", n->dir);
        return -1;
    }
    nb_info("service namespace \"%s\" of segment %d is down", n->ns, n->segment);
    return 0;
}

/* --- the metadata server ------------------------------------------------------------------ */

static void meta_handle(struct nb_http_req *req, void *arg);

static int http_start(struct svc_net *n, struct nb_error *err)
{
    int fd = -1;
    if (in_netns(n->ns, ns_listen, &fd, err) < 0) {
        nb_error_detail(err, "in \"%s\"", n->ns);
        return -1;
    }
    struct nb_http_config cfg = {.address = "169.254.169.254",
                                 .port = 80,
                                 .thread_per_connection = true,
                                 .max_body = 4096,
                                 .timeout_s = 10,
                                 .conn_memory = 16 * 1024,
                                 .listen_fd = fd};
    struct nb_http_server *srv = nb_http_server_new(&cfg, err);
    if (!srv) {
        close(fd);
        return -1;
    }
    if (nb_http_route(srv, NULL, "/*", meta_handle, n) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not add the metadata route");
        nb_http_server_free(srv);
        return -1;
    }
    if (nb_http_server_start(srv, err) < 0) {
        nb_http_server_free(srv);
        return -1;
    }
    n->http = srv;
    return 0;
}

/* The interface id of the local port with address 'ip' into 'id'. */
static bool port_of(struct nc_svc *s, const struct svc_net *n, uint32_t ip, char id[NC_ID_MAX])
{
    bool found = false;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < n->n_ports && !found; i++) {
        if (n->ports[i].ip == ip) {
            snprintf(id, NC_ID_MAX, "%s", n->ports[i].id);
            found = true;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return found;
}

/* Asks the control plane for the metadata of interface 'id'. Returns a new reference, or NULL
 * with 'err' (NB_ERR_NOT_FOUND when the control plane knows no such instance here). */
static json_t *meta_fetch(struct nc_svc *s, const char *id, struct nb_error *err)
{
    char url[512], auth[200];
    snprintf(url, sizeof url, "%s/internal/v1/metadata?interface=%s", s->control_url, id);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", s->token);
    const char *headers[] = {auth, NULL};
    struct nb_httpc_request rq = {.method = "GET",
                                  .url = url,
                                  .headers = headers,
                                  .timeout_ms = CONTROL_TIMEOUT_MS,
                                  .max_retries = 1,
                                  .max_response = 1u << 20};
    struct nb_httpc_response resp = {0};
    json_t *doc = NULL;
    if (nb_httpc_do(&rq, &resp, err) == 0) {
        if (resp.status == 200) {
            doc = nb_json_parse_object(resp.body, resp.body_len, err);
        } else {
            char why[256];
            nb_error_set(err, resp.status == 404 ? NB_ERR_NOT_FOUND : NB_ERR_UNAVAILABLE,
                         "control plane answered %ld for the metadata of \"%s\": %s", resp.status,
                         id, nb_json_error_text(resp.body, resp.body_len, why, sizeof why));
        }
    }
    nb_httpc_response_free(&resp);
    return doc;
}

static struct meta_entry *cache_find(struct nc_svc *s, const char *id)
{
    for (size_t i = 0; i < s->n_cache; i++) {
        if (!strcmp(s->cache[i].id, id)) {
            return &s->cache[i];
        }
    }
    return NULL;
}

static void cache_drop(struct nc_svc *s, size_t i)
{
    json_decref(s->cache[i].doc);
    s->cache[i] = s->cache[--s->n_cache];
}

/* The metadata of interface 'id', from the cache while fresh. Returns a new reference, or NULL
 * with 'err'. While the control plane fails, a document up to META_STALE_MS old is served. */
static json_t *meta_get(struct nc_svc *s, const char *id, struct nb_error *err)
{
    long long now = nb_monotonic_ms();
    json_t *stale = NULL, *doc = NULL;
    pthread_mutex_lock(&s->lock);
    struct meta_entry *e = cache_find(s, id);
    if (e && now - e->fetched_ms < META_FRESH_MS) {
        doc = json_incref(e->doc);
    } else if (e && now - e->fetched_ms < META_STALE_MS) {
        stale = json_incref(e->doc);
    }
    pthread_mutex_unlock(&s->lock);
    if (doc) {
        return doc;
    }
    doc = meta_fetch(s, id, err);
    pthread_mutex_lock(&s->lock);
    e = cache_find(s, id);
    if (doc) {
        if (!e) {
            struct meta_entry *grown = realloc(s->cache, (s->n_cache + 1) * sizeof *grown);
            if (!grown) {
                abort();
            }
            s->cache = grown;
            e = &s->cache[s->n_cache++];
            snprintf(e->id, sizeof e->id, "%s", id);
            e->doc = NULL;
        }
        json_decref(e->doc);
        e->doc = json_incref(doc);
        e->fetched_ms = now;
    } else if (e && err->code == NB_ERR_NOT_FOUND) {
        cache_drop(s, (size_t)(e - s->cache));
    }
    pthread_mutex_unlock(&s->lock);
    if (!doc && stale && err->code != NB_ERR_NOT_FOUND) {
        nb_warn("serving cached metadata of \"%s\": %s", id, err->msg);
        return stale;
    }
    json_decref(stale);
    return doc;
}

/* IMDSv2 session tokens: base64 of the expiry (monotonic ms, 8 bytes big-endian) and an
 * HMAC-SHA256 under the in-memory key of the expiry and the interface id. */
static void token_mac(const struct nc_svc *s, const uint8_t expiry[8], const char *id,
                      uint8_t out[NB_SHA256_LEN])
{
    uint8_t msg[8 + NC_ID_MAX];
    size_t len = strlen(id);
    memcpy(msg, expiry, 8);
    memcpy(msg + 8, id, len);
    nb_hmac_sha256(s->key, sizeof s->key, msg, 8 + len, out);
}

static char *token_new(const struct nc_svc *s, const char *id, long ttl_s)
{
    uint8_t raw[TOKEN_RAW_LEN];
    uint64_t expiry = (uint64_t)nb_monotonic_ms() + (uint64_t)ttl_s * 1000;
    for (int i = 0; i < 8; i++) {
        raw[i] = (uint8_t)(expiry >> (56 - 8 * i));
    }
    token_mac(s, raw, id, raw + 8);
    return nb_base64_encode(raw, sizeof raw);
}

static bool token_valid(const struct nc_svc *s, const char *token, const char *id)
{
    struct nb_error err = {0};
    size_t len = 0;
    uint8_t *raw = strlen(token) < 128 ? nb_base64_decode(token, &len, &err) : NULL;
    bool ok = raw && len == TOKEN_RAW_LEN;
    if (ok) {
        uint8_t mac[NB_SHA256_LEN];
        token_mac(s, raw, id, mac);
        uint64_t expiry = 0;
        for (int i = 0; i < 8; i++) {
            expiry = expiry << 8 | raw[i];
        }
        ok = nb_ct_equal(mac, raw + 8, sizeof mac) && expiry > (uint64_t)nb_monotonic_ms();
    }
    free(raw);
    return ok;
}

static void reply_text(struct nb_http_req *req, int status, const char *text)
{
    nb_http_reply(req, status, "text/plain", text, strlen(text));
}

/* PUT /latest/api/token. */
static void token_put(struct nb_http_req *req, const struct nc_svc *s, const char *id)
{
    const char *ttl = nb_http_req_header(req, "X-aws-ec2-metadata-token-ttl-seconds");
    /* EC2 refuses tokens to requests that went through a proxy. */
    if (nb_http_req_header(req, "X-Forwarded-For")) {
        reply_text(req, 403, "Forbidden");
        return;
    }
    char *end = NULL;
    long v = ttl && *ttl >= '0' && *ttl <= '9' ? strtol(ttl, &end, 10) : 0;
    if (!end || *end || v < 1 || v > TOKEN_TTL_MAX) {
        reply_text(req, 400, "Bad Request");
        return;
    }
    char *token = token_new(s, id, v);
    nb_http_reply_header(req, "X-aws-ec2-metadata-token-ttl-seconds", ttl);
    nb_http_reply_owned(req, 200, "text/plain", token, strlen(token));
}

static const char *str(const json_t *doc, const char *key)
{
    return json_string_value(json_object_get(doc, key));
}

/* The identity document (/latest/dynamic/instance-identity/document). */
static char *identity_document(const json_t *doc)
{
    json_t *d =
        json_pack("{s:s?, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s}", "accountId",
                  str(doc, "account_id"), "architecture", "x86_64", "availabilityZone",
                  str(doc, "availability_zone"), "imageId", str(doc, "image_id"), "instanceId",
                  str(doc, "instance_id"), "instanceType", str(doc, "instance_type"), "pendingTime",
                  str(doc, "launch_time"), "privateIp", str(doc, "local_ipv4"), "region",
                  str(doc, "region"), "version", "2017-09-30");
    char *text = d ? json_dumps(d, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(d);
    return text;
}

/* Whether 'v' is a version of the metadata API: "latest" or a date "YYYY-MM-DD" (cloud-init
 * asks for the versions it knows, EC2 serves them all alike). */
static bool is_version(const char *v, size_t len)
{
    if (len == 6 && !strncmp(v, "latest", 6)) {
        return true;
    }
    if (len != 10) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        bool dash = i == 4 || i == 7;
        if (dash ? v[i] != '-' : (v[i] < '0' || v[i] > '9')) {
            return false;
        }
    }
    return true;
}

/* Answers GET 'rest' (the path after the version, without leading or trailing slashes) from
 * the metadata 'doc'. */
static void meta_reply(struct nb_http_req *req, const json_t *doc, const char *rest)
{
    struct nb_buf b = NB_BUF_INIT;
    nb_buf_puts(&b, "");
    const char *user_data = str(doc, "user_data");
    const json_t *keys = json_object_get(doc, "public_keys");
    size_t n_keys = json_array_size(keys);
    const char *value = NULL;
    int status = 200;
    if (!*rest) {
        nb_buf_printf(&b, "dynamic\nmeta-data%s", user_data ? "\nuser-data" : "");
    } else if (!strcmp(rest, "meta-data")) {
        nb_buf_printf(&b,
                      "ami-id\nhostname\ninstance-id\ninstance-type\nlocal-hostname\nlocal-ipv4\n"
                      "mac\nplacement/%s%s\nsecurity-groups",
                      str(doc, "public_ipv4") ? "\npublic-ipv4" : "",
                      n_keys ? "\npublic-keys/" : "");
    } else if (!strcmp(rest, "meta-data/ami-id")) {
        value = str(doc, "image_id");
    } else if (!strcmp(rest, "meta-data/hostname") || !strcmp(rest, "meta-data/local-hostname")) {
        value = str(doc, "hostname");
    } else if (!strcmp(rest, "meta-data/instance-id")) {
        value = str(doc, "instance_id");
    } else if (!strcmp(rest, "meta-data/instance-type")) {
        value = str(doc, "instance_type");
    } else if (!strcmp(rest, "meta-data/local-ipv4")) {
        value = str(doc, "local_ipv4");
    } else if (!strcmp(rest, "meta-data/mac")) {
        value = str(doc, "mac");
    } else if (!strcmp(rest, "meta-data/public-ipv4")) {
        value = str(doc, "public_ipv4");
    } else if (!strcmp(rest, "meta-data/placement")) {
        nb_buf_puts(&b, "availability-zone\nregion");
    } else if (!strcmp(rest, "meta-data/placement/availability-zone")) {
        value = str(doc, "availability_zone");
    } else if (!strcmp(rest, "meta-data/placement/region")) {
        value = str(doc, "region");
    } else if (!strcmp(rest, "meta-data/security-groups")) {
        const json_t *g = json_object_get(doc, "security_groups");
        for (size_t i = 0; i < json_array_size(g); i++) {
            nb_buf_printf(&b, "%s%s", i ? "\n" : "", json_string_value(json_array_get(g, i)));
        }
    } else if (!strcmp(rest, "meta-data/public-keys") && n_keys) {
        for (size_t i = 0; i < n_keys; i++) {
            nb_buf_printf(&b, "%s%zu=%s", i ? "\n" : "", i, str(json_array_get(keys, i), "name"));
        }
    } else if (!strncmp(rest, "meta-data/public-keys/", 22)) {
        char *end = NULL;
        const char *k = rest + 22;
        unsigned long i = *k >= '0' && *k <= '9' ? strtoul(k, &end, 10) : ULONG_MAX;
        if (i >= n_keys) {
            status = 404;
        } else if (!*end) {
            nb_buf_puts(&b, "openssh-key");
        } else if (!strcmp(end, "/openssh-key")) {
            value = str(json_array_get(keys, i), "key");
        } else {
            status = 404;
        }
    } else if (!strcmp(rest, "user-data") && user_data) {
        struct nb_error err = {0};
        size_t len = 0;
        char *raw = nb_base64_decode(user_data, &len, &err);
        if (raw) {
            nb_buf_free(&b);
            nb_http_reply_owned(req, 200, "application/octet-stream", raw, len);
            return;
        }
        status = 500;
    } else if (!strcmp(rest, "dynamic")) {
        nb_buf_puts(&b, "instance-identity/");
    } else if (!strcmp(rest, "dynamic/instance-identity")) {
        nb_buf_puts(&b, "document");
    } else if (!strcmp(rest, "dynamic/instance-identity/document")) {
        char *text = identity_document(doc);
        if (text) {
            nb_buf_free(&b);
            nb_http_reply_owned(req, 200, "text/plain", text, strlen(text));
            return;
        }
        status = 500;
    } else {
        status = 404;
    }
    if (status == 200 && !b.len && !value && strcmp(rest, "meta-data/security-groups")) {
        status = 404; /* a value the instance does not have, e.g. public-ipv4 */
    }
    if (status != 200) {
        reply_text(req, status, status == 404 ? "Not Found" : "Internal Server Error");
    } else if (value) {
        reply_text(req, 200, value);
    } else {
        nb_http_reply(req, 200, "text/plain", b.data, b.len);
    }
    nb_buf_free(&b);
}

static void meta_handle(struct nb_http_req *req, void *arg)
{
    struct svc_net *n = arg;
    struct nc_svc *s = n->s;
    const char *method = nb_http_req_method(req), *path = nb_http_req_path(req);
    uint32_t src;
    char id[NC_ID_MAX];
    if (nc_parse_ip(nb_http_req_remote_addr(req), &src) < 0 || !port_of(s, n, src, id)) {
        reply_text(req, 404, "Not Found");
        return;
    }
    if (!strcmp(path, "/latest/api/token")) {
        if (strcmp(method, "PUT")) {
            nb_http_reply_header(req, "Allow", "PUT");
            reply_text(req, 405, "Method Not Allowed");
            return;
        }
        token_put(req, s, id);
        return;
    }
    if (strcmp(method, "GET")) {
        nb_http_reply_header(req, "Allow", "GET");
        reply_text(req, 405, "Method Not Allowed");
        return;
    }
    const char *token = nb_http_req_header(req, "X-aws-ec2-metadata-token");
    if (token && !token_valid(s, token, id)) {
        reply_text(req, 401, "Unauthorized");
        return;
    }
    /* "/VERSION/REST": the version alone lists the categories; "/" the versions. */
    const char *p = path + strspn(path, "/");
    size_t vlen = strcspn(p, "/");
    if (!*p) {
        reply_text(req, 200, "2009-04-04\n2016-09-02\n2018-09-24\n2021-03-23\nlatest");
        return;
    }
    if (!is_version(p, vlen)) {
        reply_text(req, 404, "Not Found");
        return;
    }
    char rest[256];
    const char *r = p + vlen + strspn(p + vlen, "/");
    snprintf(rest, sizeof rest, "%s", r);
    size_t rl = strlen(rest);
    while (rl && rest[rl - 1] == '/') {
        rest[--rl] = '\0';
    }
    struct nb_error err = {0};
    json_t *doc = meta_get(s, id, &err);
    if (!doc) {
        nb_warn("no metadata for %s (segment %d): %s", id, n->segment, err.msg);
        reply_text(req, err.code == NB_ERR_NOT_FOUND ? 404 : 503,
                   err.code == NB_ERR_NOT_FOUND ? "Not Found" : "Service Unavailable");
        return;
    }
    meta_reply(req, doc, rest);
    json_decref(doc);
}

/* --- the interface ------------------------------------------------------------------------ */

struct nc_svc *nc_svc_new(const char *bridge, const char *host_netns, const char *state_dir,
                          const char *control_url, const char *token)
{
    struct nc_svc *s = calloc(1, sizeof *s);
    if (!s) {
        abort();
    }
    snprintf(s->bridge, sizeof s->bridge, "%s", bridge);
    snprintf(s->host_netns, sizeof s->host_netns, "%s", host_netns ? host_netns : "");
    snprintf(s->state_dir, sizeof s->state_dir, "%s", state_dir);
    snprintf(s->control_url, sizeof s->control_url, "%s", control_url ? control_url : "");
    snprintf(s->token, sizeof s->token, "%s", token ? token : "");
    /* FNV-1a: the namespaces of two hosts on one machine differ by their state directories. */
    uint32_t h = 2166136261u;
    for (const char *c = state_dir; *c; c++) {
        h = (h ^ (uint8_t)*c) * 16777619u;
    }
    snprintf(s->tag, sizeof s->tag, "%06x", (h ^ (h >> 24)) & 0xffffff);
    if (RAND_bytes(s->key, sizeof s->key) != 1) {
        abort();
    }
    pthread_mutex_init(&s->lock, NULL);
    return s;
}

/* Brings network 'net' (it has local ports) to what 'st' wants. */
static int sync_net(struct nc_svc *s, struct svc_net *n, const struct nc_state *st,
                    const struct nc_network *net, struct nb_error *err)
{
    struct svc_port *ports = NULL;
    size_t n_ports = 0;
    char *net_text = render_net(n, net), *conf = render_conf(n, st, net, &ports, &n_ports);
    pthread_mutex_lock(&s->lock);
    free(n->ports);
    n->ports = ports;
    n->n_ports = n_ports;
    pthread_mutex_unlock(&s->lock);

    char ns_file[PATH_MAX];
    snprintf(ns_file, sizeof ns_file, NC_NETNS_DIR "/%s", n->ns);
    /* Built by this process, with its veth and a live dnsmasq: else the (idempotent) building
     * runs again. The checks run no program. */
    pid_t pid = 0;
    bool inner = false, fresh = false;
    struct nb_error ignored = {0};
    bool built = nc_netns_same_text(n->net_text, net_text) && file_exists(ns_file) &&
                 (pid = dnsmasq_pid(n)) > 0 &&
                 link_exists(n->ns, INNER_DEV, &inner, &ignored) == 0 && inner;
    int rc = -1;
    if (built && n->http && nc_netns_same_text(n->conf_text, conf)) {
        rc = 0; /* the common case: nothing to do, nothing run */
        goto done;
    }
    if (!built) {
        char path[PATH_MAX];
        net_path(n, "net", path);
        char *old = slurp(path);
        bool rebuild = old && strcmp(old, net_text);
        free(old);
        if (rebuild) {
            /* Other addresses for this segment: start over. */
            nb_info("segment %d changed: rebuilding \"%s\"", n->segment, n->ns);
            nb_http_server_free(n->http);
            n->http = NULL;
            if (tear_down(s, n, err) < 0) {
                goto done;
            }
        }
        net_forget(n);
        if (!file_exists(ns_file)) {
            /* A metadata server listening in a namespace that is gone serves nobody. */
            nb_http_server_free(n->http);
            n->http = NULL;
        }
        if (nc_netns_make_dir(s->state_dir, err) < 0 || nc_netns_make_dir(n->dir, err) < 0 ||
            build(s, n, net, &fresh, err) < 0 || put_file(n->dir, "net", net_text, err) < 0) {
            goto done;
        }
        n->net_text = net_text;
        net_text = NULL;
        pid = dnsmasq_pid(n);
    }
    /* dnsmasq: as it runs if its configuration is this one (also one an earlier process
     * started), unless its interface is new. */
    char path[PATH_MAX];
    net_path(n, "dnsmasq.conf", path);
    char *old_conf = slurp(path);
    bool current = pid > 0 && !fresh && nc_netns_same_text(old_conf, conf);
    free(old_conf);
    free(n->conf_text);
    n->conf_text = NULL;
    if (!current) {
        dnsmasq_stop(n);
        if (put_file(n->dir, "dnsmasq.conf", conf, err) < 0 || dnsmasq_start(n, err) < 0) {
            goto done;
        }
    }
    n->conf_text = conf;
    conf = NULL;
    if (!n->http && http_start(n, err) < 0) {
        goto done;
    }
    rc = 0;
done:
    free(net_text);
    free(conf);
    return rc;
}

static bool wanted_segment(const struct nc_state *st, int segment)
{
    return nc_state_network(st, segment) && has_local_port(st, segment);
}

int nc_svc_sync(struct nc_svc *s, const struct nc_state *st, struct nb_error *err)
{
    if (!s || !s->control_url[0]) {
        return 0;
    }
    bool failed = false;
    struct nb_error e = {0};
    for (size_t i = 0; i < s->n_nets; i++) {
        s->nets[i]->wanted = false;
    }
    for (size_t i = 0; i < st->n_networks; i++) {
        const struct nc_network *net = &st->networks[i];
        if (!has_local_port(st, net->segment)) {
            continue;
        }
        struct svc_net *n = NULL;
        for (size_t j = 0; j < s->n_nets && !n; j++) {
            n = s->nets[j]->segment == net->segment ? s->nets[j] : NULL;
        }
        if (!n) {
            struct svc_net **grown = realloc(s->nets, (s->n_nets + 1) * sizeof *grown);
            if (!grown) {
                abort();
            }
            s->nets = grown;
            n = s->nets[s->n_nets++] = net_new(s, net->segment);
        }
        n->wanted = true;
        nb_error_clear(&e);
        if (sync_net(s, n, st, net, &e) < 0) {
            nb_warn("service namespace of segment %d: %s%s%s", net->segment, e.msg,
                    e.detail[0] ? "; " : "", e.detail);
            if (!failed) {
                *err = e;
            }
            failed = true;
        }
    }
    /* Networks gone from this host: those this process serves, then any left in the state
     * directory by an earlier one. */
    for (size_t i = 0; i < s->n_nets;) {
        struct svc_net *n = s->nets[i];
        if (n->wanted) {
            i++;
            continue;
        }
        s->nets[i] = s->nets[--s->n_nets];
        nb_http_server_free(n->http);
        n->http = NULL;
        nb_error_clear(&e);
        if (tear_down(s, n, &e) < 0) {
            nb_warn("could not tear down \"%s\": %s", n->ns, e.msg);
        }
        net_free(n);
    }
    DIR *d = opendir(s->state_dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char *end = NULL;
        long seg = !strncmp(de->d_name, "svc-", 4) ? strtol(de->d_name + 4, &end, 10) : -1;
        if (!end || *end || seg < 0 || seg > 65535 || wanted_segment(st, (int)seg)) {
            continue;
        }
        struct svc_net *n = net_new(s, (int)seg);
        nb_error_clear(&e);
        if (tear_down(s, n, &e) < 0) {
            nb_warn("could not tear down \"%s\": %s", n->ns, e.msg);
        }
        net_free(n);
    }
    if (d) {
        closedir(d);
    }
    /* Cached metadata of ports no longer here. */
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n_cache;) {
        bool local = false;
        for (size_t j = 0; j < st->n_ports && !local; j++) {
            local = !st->ports[j].host && !strcmp(st->ports[j].id, s->cache[i].id);
        }
        if (local) {
            i++;
        } else {
            cache_drop(s, i);
        }
    }
    pthread_mutex_unlock(&s->lock);
    return failed ? -1 : 0;
}

void nc_svc_free(struct nc_svc *s)
{
    if (!s) {
        return;
    }
    for (size_t i = 0; i < s->n_nets; i++) {
        net_free(s->nets[i]);
    }
    free(s->nets);
    for (size_t i = 0; i < s->n_cache; i++) {
        json_decref(s->cache[i].doc);
    }
    free(s->cache);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
