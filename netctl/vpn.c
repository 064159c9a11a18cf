/* Site-to-site IPsec VPN gateways with userspace ESP (see vpn.h).
 *
 * The recipe, found by experiment on Debian 12 (strongSwan 5.9.8, a kernel without xfrm):
 *
 * - charon's ESP comes from the kernel-libipsec plugin (libcharon-extra-plugins): at start-up it
 *   creates a TUN device "ipsec0" (MTU 1400) in charon's network namespace; packets routed into
 *   it are encrypted by charon and sent as ESP in UDP on port 4500 (libipsec has no raw ESP
 *   socket, so it fakes NAT detection and both peers encapsulate: "TUNNEL-in-UDP" in swanctl).
 *   A charon loading only these plugins works:
 *       random nonce aes sha1 sha2 hmac gmp kdf kernel-libipsec kernel-netlink socket-default vici
 *   (sha1 is required: without it charon aborts with unmet "HASHER:HASH_SHA1" dependencies).
 *   The configuration file is chosen with the environment variable STRONGSWAN_CONF.
 * - charon's pid file, /var/run/charon.pid, is compiled in, and charon refuses to start while
 *   it names a live process. So every charon gets a private mount namespace with a directory of
 *   its own bind-mounted on /var/run (/run on Debian); the vici socket and the log go there too.
 *   By hand:
 *       ip netns exec NS unshare -m --propagation private sh -c \
 *           'umount -l /run/netns; mount --bind DIR /run &&
 *            STRONGSWAN_CONF=/run/strongswan.conf exec /usr/lib/ipsec/charon'
 *       STRONGSWAN_CONF=DIR/strongswan.conf swanctl --load-all --file F --uri unix://DIR/charon.vici
 *   The "umount -l /run/netns" matters: the new mount namespace holds a copy of every network
 *   namespace mounted under /run/netns at the time, which would keep those namespaces (and the
 *   veths in them) alive after "ip netns del" until this charon exits. Here the child process
 *   does the same with system calls and detaches every nsfs mount it inherited.
 * - start_action=trap does not work with kernel-libipsec: a packet without SA is dropped ("could
 *   not find an outbound IPsec SA for reqid") and no acquire reaches charon. The gateway therefore
 *   initiates itself (start_action=start, keyingtries=0: forever) and restarts on DPD failure and
 *   on close. The customer side (nc_vpn_peer_swanctl) traps and re-traps, so that the two sides
 *   do not race to re-initiate after a reload.
 * - kernel-libipsec routes each CHILD SA's (or trap's) remote traffic selector into ipsec0 in
 *   table 220 (rule priority 220) while the SA is up, whatever charon.install_routes says, with
 *   an address of the namespace inside the local traffic selector as source; without such an
 *   address the CHILD SA fails (TS_UNACCEPTABLE). The gateway's inside address is in the VPC's
 *   CIDR, so that holds. For the time without SA the gateway adds routes of its own to the main
 *   table: "CIDR dev ipsec0 src INSIDE_IP" (libipsec drops what has no SA) and "unreachable CIDR
 *   metric 4000" for when charon and its TUN device are gone, so that nothing for the customer
 *   leaves in clear text through the default route.
 * - Reloading (swanctl --load-all) a connection whose children changed closes its SAs and, with
 *   start_action=start, initiates new ones at once; the charon stays.
 * - mobike=no: both ends have fixed addresses, and MOBIKE only announced LAN addresses.
 * - DPD: dpd_delay 10 s, and retransmit_timeout 2 s with 3 tries instead of the defaults (4 s, 5
 *   tries: 165 s of retransmits). Measured with the site's link cut: the peer was declared dead
 *   and the restart began 33.8 s later; once the link was back, the SAs were up 2.5 s later.
 * - TCP worked through ipsec0 with checksum offload left on (the kernel completes checksums before
 *   a TUN read), but the veths face Open vSwitch's userspace datapath, which needs "tx off" on the
 *   sending side (MACHINE-NOTES): done here on the inner ends and on the outer ends.
 * - Measured: charon answers on vici 30 ms after exec; from loading the connection to the CHILD
 *   SA installed 5-30 ms; nc_vpn_up 85-160 ms (about 15 runs of ip(8), charon, swanctl); 20 MB of
 *   TCP through the tunnel at about 25 MB/s.
 * - Without tcpdump, ESP is checked with the CHILD SA's byte counters (swanctl --list-sas) or
 *   the counters of ipsec0 (ip -s link).
 *
 * Layout of 'state_dir'/<id>/: swanctl.conf (the connection and its PSK, mode 0600), net and
 * routes (what was applied, compared by the next nc_vpn_up), and charon/, which charon sees as
 * /var/run: strongswan.conf, charon.pid, charon.vici, charon.log, charon.out (its stderr). */
#include "vpn.h"

#include "netns.h"

#include "nubo/buf.h"
#include "nubo/clock.h"
#include "nubo/error.h"
#include "nubo/log.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IP_BIN      "/sbin/ip"
#define SWANCTL_BIN "/usr/sbin/swanctl"
#define CHARON_BIN  "/usr/lib/ipsec/charon"
#define PIDDIR      "/var/run" /* charon's compiled-in pid file directory */
#define TOOL_PATH   "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

#define NS_PREFIX       "nvpn-"
#define IN_PEER_PREFIX  "nvi-"
#define OUT_PEER_PREFIX "nvo-"
#define IN_DEV          "in"
#define OUT_DEV         "out"
#define TUN_DEV         "ipsec0"
#define FALLBACK_METRIC "4000"

#define PROPOSAL "aes256-sha256-modp2048"

#define CMD_TIMEOUT_MS  15000
#define CHARON_START_MS 10000
#define CHARON_TERM_MS  5000
#define CHARON_KILL_MS  2000
#define OUTPUT_MAX      (64 * 1024)
#define DETAIL_TAIL     1500
#define PSK_MIN         8
#define PSK_MAX         64

extern char **environ;

/* ---- checking the input --------------------------------------------------------------------- */

static bool is_lower_hex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

static int check_id(const char *id, struct nb_error *err)
{
    size_t len = id ? strlen(id) : 0;
    bool ok = len >= 12 && len <= 21 && strncmp(id, "vpn-", 4) == 0;
    for (size_t i = 4; ok && i < len; i++) {
        ok = is_lower_hex(id[i]);
    }
    if (!ok) {
        nb_error_set(err, NB_ERR_INVALID,
                     "invalid VPN connection id \"%s\": expected \"vpn-\" and 8 to 17 lower-case "
                     "hex digits",
                     id ? id : "(null)");
        return -1;
    }
    return 0;
}

/* A name for ip-netns(8): no path separators, nothing an argument parser could take for an
 * option. */
static int check_netns_name(const char *name, struct nb_error *err)
{
    size_t len = name ? strlen(name) : 0;
    bool ok = len > 0 && len < 64 && name[0] != '-' && name[0] != '.';
    for (size_t i = 0; ok && i < len; i++) {
        char ch = name[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '-' || ch == '_' || ch == '.';
    }
    if (!ok) {
        nb_error_set(err, NB_ERR_INVALID, "invalid network namespace name \"%s\"",
                     name ? name : "(null)");
        return -1;
    }
    return 0;
}

static int parse_ip(const char *s, uint32_t *out)
{
    struct in_addr a;
    if (!s || strlen(s) > 15 || inet_pton(AF_INET, s, &a) != 1) {
        return -1;
    }
    *out = ntohl(a.s_addr);
    return 0;
}

static uint32_t prefix_mask(int len)
{
    return len ? ~0u << (32 - len) : 0;
}

/* Parses "a.b.c.d/n" whose host bits are zero. */
static int parse_cidr(const char *s, uint32_t *addr, int *len)
{
    char ip[16];
    const char *slash = s ? strchr(s, '/') : NULL;
    if (!slash || slash == s || slash - s >= (long)sizeof ip || strlen(slash + 1) > 2) {
        return -1;
    }
    memcpy(ip, s, (size_t)(slash - s));
    ip[slash - s] = '\0';
    int n = 0;
    for (const char *d = slash + 1; *d; d++) {
        if (*d < '0' || *d > '9') {
            return -1;
        }
        n = n * 10 + (*d - '0');
    }
    if (!slash[1] || n > 32 || parse_ip(ip, addr) < 0 || (*addr & ~prefix_mask(n))) {
        return -1;
    }
    *len = n;
    return 0;
}

static int check_ip(const char *what, const char *s, uint32_t *out, struct nb_error *err)
{
    uint32_t ignored;
    if (parse_ip(s, out ? out : &ignored) < 0) {
        nb_error_set(err, NB_ERR_INVALID, "invalid %s \"%s\": expected an IPv4 address", what,
                     s ? s : "(null)");
        return -1;
    }
    return 0;
}

static int check_cidr(const char *what, const char *s, uint32_t *addr, int *len,
                      struct nb_error *err)
{
    if (parse_cidr(s, addr, len) < 0) {
        nb_error_set(err, NB_ERR_INVALID,
                     "invalid %s \"%s\": expected an IPv4 CIDR with the host bits zero", what,
                     s ? s : "(null)");
        return -1;
    }
    return 0;
}

static int check_prefix(const char *what, int len, struct nb_error *err)
{
    if (len < 1 || len > 32) {
        nb_error_set(err, NB_ERR_INVALID, "invalid %s %d: expected 1 to 32", what, len);
        return -1;
    }
    return 0;
}

static int check_mac(const char *what, const char *s, struct nb_error *err)
{
    bool ok = s && strlen(s) == 17;
    for (int i = 0; ok && i < 17; i++) {
        char ch = s[i];
        ok = i % 3 == 2
                 ? ch == ':'
                 : (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
    }
    /* A unicast address: the low bit of the first octet clear. */
    if (ok) {
        unsigned first = (unsigned)strtoul(s, NULL, 16);
        ok = (first & 1) == 0;
    }
    if (!ok) {
        nb_error_set(err, NB_ERR_INVALID, "invalid %s \"%s\": expected a unicast MAC address", what,
                     s ? s : "(null)");
        return -1;
    }
    return 0;
}

/* The PSK goes between double quotes into swanctl.conf, hence the small alphabet. */
static int check_psk(const char *psk, struct nb_error *err)
{
    size_t len = psk ? strlen(psk) : 0;
    bool ok = len >= PSK_MIN && len <= PSK_MAX;
    for (size_t i = 0; ok && i < len; i++) {
        char ch = psk[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '.' || ch == '_';
    }
    if (!ok) {
        /* The key itself stays out of the message. */
        nb_error_set(err, NB_ERR_INVALID,
                     "invalid pre-shared key: expected %d to %d characters of letters, digits, "
                     "\".\" and \"_\"",
                     PSK_MIN, PSK_MAX);
        return -1;
    }
    return 0;
}

static bool cidrs_overlap(uint32_t a, int alen, uint32_t b, int blen)
{
    int len = alen < blen ? alen : blen;
    return ((a ^ b) & prefix_mask(len)) == 0;
}

static int check_conn(const struct nc_vpn_conn *c, struct nb_error *err)
{
    if (!c) {
        nb_error_set(err, NB_ERR_MISSING, "no VPN connection given");
        return -1;
    }
    uint32_t local, inside;
    int local_len;
    if (check_id(c->id, err) < 0 || check_ip("outside address", c->outside_ip, NULL, err) < 0 ||
        check_prefix("outside prefix length", c->outside_prefix, err) < 0 ||
        (c->outside_router && check_ip("outside router", c->outside_router, NULL, err) < 0) ||
        check_ip("peer address", c->peer_ip, NULL, err) < 0 || check_psk(c->psk, err) < 0 ||
        check_cidr("local CIDR", c->local_cidr, &local, &local_len, err) < 0 ||
        check_ip("inside address", c->inside_ip, &inside, err) < 0 ||
        check_prefix("inside prefix length", c->inside_prefix, err) < 0 ||
        check_mac("inside MAC", c->inside_mac, err) < 0 ||
        check_mac("outside MAC", c->outside_mac, err) < 0) {
        return -1;
    }
    if (((inside ^ local) & prefix_mask(local_len)) != 0) {
        nb_error_set(err, NB_ERR_INVALID, "inside address \"%s\" is not in the local CIDR \"%s\"",
                     c->inside_ip, c->local_cidr);
        return -1;
    }
    if (c->n_remote < 1 || c->n_remote > NC_VPN_REMOTE_MAX || !c->remote_cidrs) {
        nb_error_set(err, NB_ERR_INVALID, "a VPN connection needs 1 to %d remote CIDRs, not %zu",
                     NC_VPN_REMOTE_MAX, c->n_remote);
        return -1;
    }
    for (size_t i = 0; i < c->n_remote; i++) {
        uint32_t r;
        int rlen;
        if (check_cidr("remote CIDR", c->remote_cidrs[i], &r, &rlen, err) < 0) {
            return -1;
        }
        if (cidrs_overlap(r, rlen, local, local_len)) {
            nb_error_set(err, NB_ERR_INVALID, "remote CIDR \"%s\" overlaps the local CIDR \"%s\"",
                         c->remote_cidrs[i], c->local_cidr);
            return -1;
        }
    }
    return 0;
}

/* ---- names and paths ------------------------------------------------------------------------ */

struct vpn_paths {
    char ns[NC_VPN_IFNAME_MAX]; /* "nvpn-" and the id's last 8 hex digits */
    char in_peer[NC_VPN_IFNAME_MAX];
    char out_peer[NC_VPN_IFNAME_MAX];
    char ns_file[PATH_MAX]; /* /run/netns/<ns> */
    char dir[PATH_MAX];     /* <state_dir>/<id> */
    char swanctl_conf[PATH_MAX];
    char net[PATH_MAX];        /* the applied addresses and MACs */
    char routes[PATH_MAX];     /* the applied remote CIDRs, one a line */
    char charon_dir[PATH_MAX]; /* charon's /var/run */
    char strongswan_conf[PATH_MAX];
    char pidfile[PATH_MAX];
    char outfile[PATH_MAX];
    char logfile[PATH_MAX];
    char piddir[PATH_MAX]; /* where /var/run leads, for the bind mount */
    char uri[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
    char vici[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static int path_join(char *out, size_t size, const char *a, const char *b, struct nb_error *err)
{
    int n = snprintf(out, size, "%s/%s", a, b);
    if (n < 0 || (size_t)n >= size) {
        nb_error_set(err, NB_ERR_INVALID, "path \"%s/%s\" is too long", a, b);
        return -1;
    }
    return 0;
}

/* Fills 'p' for 'id' (checked) under 'state_dir'. */
static int vpn_paths(const char *id, const char *state_dir, struct vpn_paths *p,
                     struct nb_error *err)
{
    memset(p, 0, sizeof *p);
    if (!state_dir || !*state_dir) {
        nb_error_set(err, NB_ERR_MISSING, "no VPN state directory given");
        return -1;
    }
    const char *hex = id + strlen(id) - 8;
    snprintf(p->ns, sizeof p->ns, NS_PREFIX "%s", hex);
    snprintf(p->in_peer, sizeof p->in_peer, IN_PEER_PREFIX "%s", hex);
    snprintf(p->out_peer, sizeof p->out_peer, OUT_PEER_PREFIX "%s", hex);
    snprintf(p->ns_file, sizeof p->ns_file, NC_NETNS_DIR "/%s", p->ns);
    if (path_join(p->dir, sizeof p->dir, state_dir, id, err) < 0 ||
        path_join(p->swanctl_conf, sizeof p->swanctl_conf, p->dir, "swanctl.conf", err) < 0 ||
        path_join(p->net, sizeof p->net, p->dir, "net", err) < 0 ||
        path_join(p->routes, sizeof p->routes, p->dir, "routes", err) < 0 ||
        path_join(p->charon_dir, sizeof p->charon_dir, p->dir, "charon", err) < 0 ||
        path_join(p->strongswan_conf, sizeof p->strongswan_conf, p->charon_dir, "strongswan.conf",
                  err) < 0 ||
        path_join(p->pidfile, sizeof p->pidfile, p->charon_dir, "charon.pid", err) < 0 ||
        path_join(p->outfile, sizeof p->outfile, p->charon_dir, "charon.out", err) < 0 ||
        path_join(p->logfile, sizeof p->logfile, p->charon_dir, "charon.log", err) < 0 ||
        path_join(p->vici, sizeof p->vici, p->charon_dir, "charon.vici", err) < 0) {
        return -1;
    }
    snprintf(p->uri, sizeof p->uri, "unix://%s", p->vici);
    if (!realpath(PIDDIR, p->piddir)) {
        snprintf(p->piddir, sizeof p->piddir, "%s", PIDDIR);
    }
    return 0;
}

/* ---- files ---------------------------------------------------------------------------------- */

/* Returns the contents of 'path' as a new string (the caller frees it), or NULL if it cannot be
 * read (a missing file is the common case). */
static char *read_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return NULL;
    }
    struct nb_buf b = NB_BUF_INIT;
    nb_buf_puts(&b, "");
    char chunk[4096];
    ssize_t r;
    while ((r = read(fd, chunk, sizeof chunk)) > 0 || (r < 0 && errno == EINTR)) {
        if (r > 0) {
            nb_buf_append(&b, chunk, (size_t)r);
        }
    }
    close(fd);
    if (r < 0) {
        nb_buf_free(&b);
        return NULL;
    }
    return nb_buf_steal(&b);
}

/* Replaces 'path' with 'text' (write to a temporary file, then rename). */
static int write_file(const char *path, const char *text, mode_t mode, struct nb_error *err)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        nb_error_set(err, NB_ERR_INVALID, "path \"%s\" is too long", path);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        nb_error_errno(err, errno, "could not create \"%s\"", tmp);
        return -1;
    }
    size_t len = strlen(text);
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            nb_error_errno(err, errno, "could not write \"%s\"", tmp);
            close(fd);
            unlink(tmp);
            return -1;
        }
        done += (size_t)w;
    }
    if (fchmod(fd, mode) < 0 || close(fd) < 0) {
        nb_error_errno(err, errno, "could not write \"%s\"", tmp);
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) < 0) {
        nb_error_errno(err, errno, "could not rename \"%s\" to \"%s\"", tmp, path);
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* The last 'max' bytes of 'text', for an error's detail. */
static const char *tail_of(const char *text, size_t max)
{
    size_t len = text ? strlen(text) : 0;
    return !text ? "" : text + (len > max ? len - max : 0);
}

/* ---- running programs ----------------------------------------------------------------------- */

/* Runs 'argv' (argv[0] an absolute path) with the environment 'envp', standard input /dev/null,
 * standard output and error captured together; kills it after CMD_TIMEOUT_MS. Stores the output
 * in '*out' (a new string the caller frees) if 'out' is not NULL. Returns 0 if it exited with
 * status 0, else -1 with 'err' (may be NULL) naming the command and ending with its output. */
static int run(const char *const *argv, const char *const *envp, char **out, struct nb_error *err)
{
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
    /* Default signal handling and an empty mask in the child, whatever the daemon's are. */
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
    if (rc != 0) {
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
        if (buf.len < OUTPUT_MAX) {
            nb_buf_append(&buf, chunk,
                          buf.len + (size_t)r > OUTPUT_MAX ? OUTPUT_MAX - buf.len : (size_t)r);
        }
    }
    close(pfd[0]);
    if (timed_out) {
        kill(pid, SIGKILL);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }

    rc = timed_out || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ? -1 : 0;
    if (rc < 0 && err) {
        char cmd[256] = "";
        size_t used = 0;
        for (size_t i = 0; argv[i] && used < sizeof cmd - 1; i++) {
            int n = snprintf(cmd + used, sizeof cmd - used, "%s%s", i ? " " : "", argv[i]);
            used += n > 0 ? (size_t)n : 0;
        }
        if (timed_out) {
            nb_error_set(err, NB_ERR_TIMEOUT, "command \"%s\" did not finish within %d ms", cmd,
                         CMD_TIMEOUT_MS);
        } else if (WIFEXITED(status)) {
            nb_error_set(err, NB_ERR_INTERNAL, "command \"%s\" failed with exit status %d", cmd,
                         WEXITSTATUS(status));
        } else {
            nb_error_set(err, NB_ERR_INTERNAL, "command \"%s\" was killed by signal %d", cmd,
                         WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        }
        nb_error_detail(err, "%s", tail_of(buf.data, DETAIL_TAIL));
    }
    if (out) {
        *out = nb_buf_steal(&buf);
    } else {
        nb_buf_free(&buf);
    }
    return rc;
}

static const char *const tool_env[] = {TOOL_PATH, "LC_ALL=C", NULL};

#define ARGS_MAX 24

/* Runs ip(8) with the arguments 'args' (NULL-terminated), inside the network namespace 'netns'
 * (ip -n) unless it is NULL. Returns as run(); 'err' may be NULL. */
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
    return run(argv, tool_env, NULL, err);
}

#define IP(err, netns, ...) ip_run(err, netns, (const char *const[]){__VA_ARGS__, NULL})

/* Runs swanctl with the arguments 'args' (NULL-terminated) against the charon of 'p'; its output
 * into '*out' as run() does. */
static int swanctl_run(const struct vpn_paths *p, char **out, struct nb_error *err,
                       const char *const *args)
{
    char conf_env[PATH_MAX + 32];
    snprintf(conf_env, sizeof conf_env, "STRONGSWAN_CONF=%s", p->strongswan_conf);
    const char *envp[] = {conf_env, TOOL_PATH, "LC_ALL=C", NULL};
    const char *argv[ARGS_MAX + 4];
    size_t n = 0;
    argv[n++] = SWANCTL_BIN;
    for (size_t i = 0; i < ARGS_MAX && args[i]; i++) {
        argv[n++] = args[i];
    }
    argv[n++] = "--uri";
    argv[n++] = p->uri;
    argv[n] = NULL;
    return run(argv, envp, out, err);
}

#define SWANCTL(p, out, err, ...) swanctl_run(p, out, err, (const char *const[]){__VA_ARGS__, NULL})

/* ---- work inside a network namespace -------------------------------------------------------- */

/* In the gateway's namespace: forwarding on, checksum offload off on both inner ends, and ARP
 * retried after 100 ms instead of 1 s: the caller attaches the outer ends to the switch only
 * after nc_vpn_up() returns, when charon's first IKE packet already waits for an ARP answer
 * (measured: the SAs were up 1,040 ms after nc_vpn_up, then about 100 ms). */
static int child_prepare_gateway(const void *arg)
{
    (void)arg;
    if (nc_netns_write_proc("/proc/sys/net/ipv4/ip_forward", "1\n") < 0) {
        return 1;
    }
    if (nc_netns_tx_csum_off(IN_DEV) < 0) {
        return 2;
    }
    if (nc_netns_tx_csum_off(OUT_DEV) < 0) {
        return 3;
    }
    if (nc_netns_write_proc("/proc/sys/net/ipv4/neigh/" IN_DEV "/retrans_time_ms", "100\n") < 0 ||
        nc_netns_write_proc("/proc/sys/net/ipv4/neigh/" OUT_DEV "/retrans_time_ms", "100\n") < 0) {
        return 4;
    }
    return 0;
}

/* In the host's namespace: checksum offload off on both outer ends. */
static int child_prepare_host(const void *arg)
{
    const struct vpn_paths *p = arg;
    return nc_netns_tx_csum_off(p->in_peer) < 0 ? 1 : nc_netns_tx_csum_off(p->out_peer) < 0 ? 2 : 0;
}

/* ---- charon --------------------------------------------------------------------------------- */

/* Returns the pid of the charon of 'p' if it runs, else 0. The pid file alone could name a
 * recycled pid; the process must also be a "charon" whose /var/run is our directory. */
static pid_t charon_running(const struct vpn_paths *p)
{
    char *text = read_file(p->pidfile);
    long pid = text ? strtol(text, NULL, 10) : 0;
    free(text);
    char comm[32];
    if (pid <= 0 || pid > INT_MAX || !nc_netns_proc_alive((pid_t)pid, comm) ||
        strcmp(comm, "charon")) {
        return 0;
    }
    char root_dir[PATH_MAX + 64];
    snprintf(root_dir, sizeof root_dir, "/proc/%ld/root%s", pid, p->piddir);
    struct stat theirs, ours;
    if (stat(root_dir, &theirs) < 0 || stat(p->charon_dir, &ours) < 0 ||
        theirs.st_dev != ours.st_dev || theirs.st_ino != ours.st_ino) {
        return 0;
    }
    return (pid_t)pid;
}

/* Waits until 'pid' is gone (or a zombie; reaped here if it is our child). */
static bool wait_gone(pid_t pid, int64_t ms)
{
    int64_t deadline = nb_monotonic_ms() + ms;
    for (;;) {
        waitpid(pid, NULL, WNOHANG);
        if (!nc_netns_proc_alive(pid, NULL)) {
            return true;
        }
        if (nb_monotonic_ms() >= deadline) {
            return false;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

enum spawn_stage {
    STAGE_SETSID = 1,
    STAGE_FORK,
    STAGE_SETNS,
    STAGE_UNSHARE,
    STAGE_PRIVATE,
    STAGE_BIND,
    STAGE_EXEC,
};

static const char *const stage_names[] = {
    [STAGE_SETSID] = "setsid",
    [STAGE_FORK] = "fork",
    [STAGE_SETNS] = "setns",
    [STAGE_UNSHARE] = "unshare",
    [STAGE_PRIVATE] = "mount private",
    [STAGE_BIND] = "bind mount",
    [STAGE_EXEC] = "exec",
};

struct spawn_report {
    int stage;
    int errnum;
};

/* The report protocol on the pipe: the child writes the grandchild's pid (0 if it could not make
 * one), then whoever fails writes a 'struct spawn_report'; end-of-file after the pid means that
 * charon was exec'd (the pipe is close-on-exec). */
static _Noreturn void spawn_fail(int fd, int stage, bool before_pid)
{
    struct spawn_report r = {stage, errno};
    pid_t none = 0;
    ssize_t ignored = before_pid ? write(fd, &none, sizeof none) : 0;
    ignored = write(fd, &r, sizeof r);
    (void)ignored;
    _exit(127);
}

struct spawn_args {
    int report_fd, ns_fd, out_fd, null_fd;
    const char *charon_dir, *piddir;
    const char *const *argv, *const *envp;
};

/* The child of charon_spawn(): a new session, then a grandchild that joins the gateway's network
 * namespace, takes a private mount namespace with our directory on /var/run and a sysfs of that
 * network namespace, and becomes charon. Only async-signal-safe calls. */
static _Noreturn void spawn_child(const struct spawn_args *a)
{
    if (setsid() < 0) {
        spawn_fail(a->report_fd, STAGE_SETSID, true);
    }
    pid_t pid = fork();
    if (pid != 0) {
        if (pid < 0) {
            spawn_fail(a->report_fd, STAGE_FORK, true);
        }
        ssize_t ignored = write(a->report_fd, &pid, sizeof pid);
        (void)ignored;
        _exit(0);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        sigaction(sig, &dfl, NULL);
    }
    if (setns(a->ns_fd, CLONE_NEWNET) < 0) {
        spawn_fail(a->report_fd, STAGE_SETNS, false);
    }
    if (unshare(CLONE_NEWNS) < 0) {
        spawn_fail(a->report_fd, STAGE_UNSHARE, false);
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        spawn_fail(a->report_fd, STAGE_PRIVATE, false);
    }
    nc_netns_detach_nsfs_mounts();
    if (mount(a->charon_dir, a->piddir, NULL, MS_BIND, NULL) < 0) {
        spawn_fail(a->report_fd, STAGE_BIND, false);
    }
    /* As "ip netns exec" does; charon works without, but /sys/class/net should not lie. */
    if (umount2("/sys", MNT_DETACH) == 0) {
        mount("sysfs", "/sys", "sysfs", 0, NULL);
    }
    if (chdir("/") < 0 || dup2(a->null_fd, 0) < 0 || dup2(a->out_fd, 1) < 0 ||
        dup2(a->out_fd, 2) < 0) {
        spawn_fail(a->report_fd, STAGE_EXEC, false);
    }
    /* Nothing of the daemon's (listening sockets, database connections) may live on in charon. */
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
        for (int fd = 3; fd < 4096; fd++) {
            fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
    }
    umask(077);
    execve(a->argv[0], (char *const *)a->argv, (char *const *)a->envp);
    spawn_fail(a->report_fd, STAGE_EXEC, false);
}

/* The last lines charon wrote, for an error's detail. */
static void detail_charon_output(const struct vpn_paths *p, struct nb_error *err)
{
    char *out = read_file(p->outfile);
    char *log = read_file(p->logfile);
    nb_error_detail(err, "charon.out: %s charon.log: %s", tail_of(out, 400), tail_of(log, 800));
    free(out);
    free(log);
}

/* Whether a connection to the vici socket of 'p' succeeds. */
static bool vici_answers(const struct vpn_paths *p)
{
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        return false;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", p->vici);
    bool ok = connect(s, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(s);
    return ok;
}

/* Starts charon for 'p' as a daemon (it is not our child) and waits until its vici socket
 * answers. Stores its pid in '*pidp'. Returns 0, or -1 with 'err' set. */
static int charon_spawn(const struct vpn_paths *p, pid_t *pidp, struct nb_error *err)
{
    char conf_env[PATH_MAX + 32];
    snprintf(conf_env, sizeof conf_env, "STRONGSWAN_CONF=%s/strongswan.conf", p->piddir);
    const char *envp[] = {conf_env, TOOL_PATH, "LC_ALL=C", NULL};
    const char *argv[] = {CHARON_BIN, NULL};
    int report[2] = {-1, -1};
    int ns_fd = open(p->ns_file, O_RDONLY | O_CLOEXEC);
    int out_fd = open(p->outfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    int rc = -1;
    if (ns_fd < 0 || out_fd < 0 || null_fd < 0 || pipe2(report, O_CLOEXEC) < 0) {
        nb_error_errno(err, errno, "could not prepare charon for \"%s\"", p->ns);
        goto cleanup;
    }
    struct spawn_args a = {report[1], ns_fd, out_fd, null_fd, p->charon_dir, p->piddir, argv, envp};
    pid_t child = fork();
    if (child == 0) {
        spawn_child(&a);
    }
    if (child < 0) {
        nb_error_errno(err, errno, "could not fork for charon");
        goto cleanup;
    }
    close(report[1]);
    report[1] = -1;
    while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {
    }
    /* First the grandchild's pid from the child, then a report if the grandchild failed before
     * exec, or end-of-file (the pipe is close-on-exec) if charon runs. */
    pid_t pid = 0;
    struct spawn_report r = {0, 0};
    ssize_t n = read(report[0], &pid, sizeof pid);
    ssize_t m = n == sizeof pid ? read(report[0], &r, sizeof r) : 0;
    if (n != sizeof pid || pid <= 0 || m != 0) {
        int stage = m == sizeof r && r.stage > 0 && r.stage <= STAGE_EXEC ? r.stage : STAGE_FORK;
        nb_error_set(err, NB_ERR_INTERNAL, "could not start charon in \"%s\": %s failed: %s", p->ns,
                     stage_names[stage], strerror(r.errnum));
        if (pid > 0) {
            wait_gone(pid, 1000);
        }
        goto cleanup;
    }
    int64_t deadline = nb_monotonic_ms() + CHARON_START_MS;
    while (!vici_answers(p)) {
        if (!nc_netns_proc_alive(pid, NULL)) {
            nb_error_set(err, NB_ERR_INTERNAL, "charon in \"%s\" exited during start-up", p->ns);
            detail_charon_output(p, err);
            goto cleanup;
        }
        if (nb_monotonic_ms() > deadline) {
            nb_error_set(err, NB_ERR_TIMEOUT, "charon in \"%s\" did not open \"%s\" within %d ms",
                         p->ns, p->vici, CHARON_START_MS);
            detail_charon_output(p, err);
            kill(pid, SIGKILL);
            goto cleanup;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    *pidp = pid;
    rc = 0;
cleanup:
    for (int i = 0; i < 2; i++) {
        if (report[i] >= 0) {
            close(report[i]);
        }
    }
    if (ns_fd >= 0) {
        close(ns_fd);
    }
    if (out_fd >= 0) {
        close(out_fd);
    }
    if (null_fd >= 0) {
        close(null_fd);
    }
    return rc;
}

/* Stops the charon of 'p' if it runs and removes its pid file. */
static int charon_stop(const struct vpn_paths *p, struct nb_error *err)
{
    pid_t pid = charon_running(p);
    if (pid > 0) {
        kill(pid, SIGTERM);
        if (!wait_gone(pid, CHARON_TERM_MS)) {
            nb_warn("charon %d of \"%s\" ignored SIGTERM for %d ms, killing it", (int)pid, p->ns,
                    CHARON_TERM_MS);
            kill(pid, SIGKILL);
            if (!wait_gone(pid, CHARON_KILL_MS)) {
                nb_error_set(err, NB_ERR_INTERNAL, "could not stop charon %d of \"%s\"", (int)pid,
                             p->ns);
                return -1;
            }
        }
        nb_info("stopped charon %d of \"%s\"", (int)pid, p->ns);
    }
    unlink(p->pidfile);
    return 0;
}

/* ---- configuration files -------------------------------------------------------------------- */

/* strongswan.conf for charon (paths as charon sees them) and for swanctl. */
static char *render_strongswan_conf(const char *id)
{
    struct nb_buf b = NB_BUF_INIT;
    nb_buf_printf(&b,
                  "# Written by nubo-netctl for %s; do not edit (see netctl/vpn.c).\n"
                  "charon {\n"
                  "    load = random nonce aes sha1 sha2 hmac gmp kdf kernel-libipsec "
                  "kernel-netlink socket-default vici\n"
                  "    install_routes = no\n"
                  "    install_virtual_ip = no\n"
                  "    retransmit_timeout = 2\n"
                  "    retransmit_tries = 3\n"
                  "    plugins {\n"
                  "        vici {\n"
                  "            socket = unix://" PIDDIR "/charon.vici\n"
                  "        }\n"
                  "    }\n"
                  "    filelog {\n"
                  "        charon {\n"
                  "            path = " PIDDIR "/charon.log\n"
                  "            time_format = %%Y-%%m-%%dT%%H:%%M:%%S\n"
                  "            append = no\n"
                  "            flush_line = yes\n"
                  "            default = 1\n"
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
                  "}\n",
                  id);
    return nb_buf_steal(&b);
}

struct swanctl_side {
    const char *name;
    const char *local_addr, *local_id, *remote_addr, *remote_id;
    const char *const *local_ts;
    size_t n_local_ts;
    const char *const *remote_ts;
    size_t n_remote_ts;
    const char *psk;
    bool gateway; /* our side (initiates, restarts) or the customer's (traps) */
};

static void put_list(struct nb_buf *b, const char *const *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        nb_buf_printf(b, "%s%s", i ? "," : "", items[i]);
    }
}

static char *render_swanctl(const struct swanctl_side *s)
{
    struct nb_buf b = NB_BUF_INIT;
    if (s->gateway) {
        nb_buf_printf(&b, "# Written by nubo-netctl for %s; do not edit (see netctl/vpn.c).\n",
                      s->name);
    } else {
        nb_buf_printf(&b,
                      "# Customer gateway side of the nubo VPN connection %s (strongSwan 5.9,\n"
                      "# swanctl.conf). The nubo gateway sends ESP in UDP (port 4500): allow UDP\n"
                      "# 500 and 4500 from %s. It keeps the tunnel up; this side answers, and\n"
                      "# initiates on traffic where the kernel does IPsec (trap).\n",
                      s->name, s->remote_addr);
    }
    nb_buf_printf(&b,
                  "connections {\n"
                  "    %s {\n"
                  "        version = 2\n"
                  "        local_addrs = %s\n"
                  "        remote_addrs = %s\n"
                  "        proposals = " PROPOSAL "\n"
                  "        mobike = no\n"
                  "        keyingtries = 0\n"
                  "        dpd_delay = 10s\n",
                  s->name, s->local_addr, s->remote_addr);
    if (!s->gateway) {
        nb_buf_puts(&b, "        encap = yes\n");
    }
    nb_buf_printf(&b,
                  "        local {\n"
                  "            auth = psk\n"
                  "            id = %s\n"
                  "        }\n"
                  "        remote {\n"
                  "            auth = psk\n"
                  "            id = %s\n"
                  "        }\n"
                  "        children {\n"
                  "            %s {\n"
                  "                mode = tunnel\n"
                  "                local_ts = ",
                  s->local_id, s->remote_id, s->name);
    put_list(&b, s->local_ts, s->n_local_ts);
    nb_buf_puts(&b, "\n                remote_ts = ");
    put_list(&b, s->remote_ts, s->n_remote_ts);
    nb_buf_printf(&b,
                  "\n"
                  "                esp_proposals = " PROPOSAL "\n"
                  "                start_action = %s\n"
                  "                dpd_action = %s\n"
                  "                close_action = %s\n"
                  "            }\n"
                  "        }\n"
                  "    }\n"
                  "}\n"
                  "secrets {\n"
                  "    ike-%s {\n"
                  "        id-local = %s\n"
                  "        id-remote = %s\n"
                  "        secret = \"%s\"\n"
                  "    }\n"
                  "}\n",
                  s->gateway ? "start" : "trap", s->gateway ? "restart" : "trap",
                  s->gateway ? "restart" : "trap", s->name, s->local_id, s->remote_id, s->psk);
    return nb_buf_steal(&b);
}

static char *render_gateway_swanctl(const struct nc_vpn_conn *c)
{
    const char *local_ts[] = {c->local_cidr};
    struct swanctl_side s = {
        .name = c->id,
        .local_addr = c->outside_ip,
        .local_id = c->outside_ip,
        .remote_addr = c->peer_ip,
        .remote_id = c->peer_ip,
        .local_ts = local_ts,
        .n_local_ts = 1,
        .remote_ts = c->remote_cidrs,
        .n_remote_ts = c->n_remote,
        .psk = c->psk,
        .gateway = true,
    };
    return render_swanctl(&s);
}

char *nc_vpn_peer_swanctl(const struct nc_vpn_conn *c, const char *site_ip)
{
    if (check_conn(c, NULL) < 0 || (site_ip && check_ip("site address", site_ip, NULL, NULL) < 0)) {
        return NULL;
    }
    const char *remote_ts[] = {c->local_cidr};
    struct swanctl_side s = {
        .name = c->id,
        .local_addr = site_ip ? site_ip : c->peer_ip,
        .local_id = c->peer_ip,
        .remote_addr = c->outside_ip,
        .remote_id = c->outside_ip,
        .local_ts = c->remote_cidrs,
        .n_local_ts = c->n_remote,
        .remote_ts = remote_ts,
        .n_remote_ts = 1,
        .psk = c->psk,
        .gateway = false,
    };
    return render_swanctl(&s);
}

/* What the namespace's devices look like: a change means a rebuild. */
static char *render_net(const struct nc_vpn_conn *c)
{
    struct nb_buf b = NB_BUF_INIT;
    nb_buf_printf(&b, "outside %s/%d router %s mac %s\ninside %s/%d mac %s\n", c->outside_ip,
                  c->outside_prefix, c->outside_router ? c->outside_router : "none", c->outside_mac,
                  c->inside_ip, c->inside_prefix, c->inside_mac);
    return nb_buf_steal(&b);
}

static char *render_routes(const struct nc_vpn_conn *c)
{
    struct nb_buf b = NB_BUF_INIT;
    nb_buf_puts(&b, "");
    for (size_t i = 0; i < c->n_remote; i++) {
        nb_buf_printf(&b, "%s\n", c->remote_cidrs[i]);
    }
    return nb_buf_steal(&b);
}

/* ---- the namespace -------------------------------------------------------------------------- */

/* Makes sure that the veth pair 'peer' (in 'host_ns') <-> 'dev' (in the gateway's namespace)
 * exists, and sets the inner end's MAC and address. */
static int veth_setup(const struct vpn_paths *p, const char *host_ns, const char *peer,
                      const char *dev, const char *mac, const char *ip_addr, int prefix,
                      struct nb_error *err)
{
    int have = nc_netns_link_exists(p->ns, dev, err);
    if (have < 0) {
        return -1;
    }
    if (!have) {
        /* A lone outer end (a half-built pair) goes first. */
        int lone = nc_netns_link_exists(host_ns, peer, err);
        if (lone < 0 || (lone && IP(err, host_ns, "link", "del", "dev", peer) < 0) ||
            IP(err, host_ns, "link", "add", peer, "type", "veth", "peer", "name", dev, "netns",
               p->ns) < 0) {
            return -1;
        }
    }
    char addr[32];
    snprintf(addr, sizeof addr, "%s/%d", ip_addr, prefix);
    if (IP(err, p->ns, "link", "set", "dev", dev, "address", mac, "up") < 0 ||
        IP(err, p->ns, "addr", "replace", addr, "dev", dev) < 0 ||
        IP(err, host_ns, "link", "set", "dev", peer, "up") < 0) {
        return -1;
    }
    return 0;
}

static int net_setup(const struct vpn_paths *p, const struct nc_vpn_conn *c, const char *host_ns,
                     struct nb_error *err)
{
    if (!nc_netns_file_exists(p->ns_file) && IP(err, NULL, "netns", "add", p->ns) < 0) {
        return -1;
    }
    if (IP(err, p->ns, "link", "set", "dev", "lo", "up") < 0 ||
        veth_setup(p, host_ns, p->in_peer, IN_DEV, c->inside_mac, c->inside_ip, c->inside_prefix,
                   err) < 0 ||
        veth_setup(p, host_ns, p->out_peer, OUT_DEV, c->outside_mac, c->outside_ip,
                   c->outside_prefix, err) < 0) {
        return -1;
    }
    if (c->outside_router && IP(err, p->ns, "route", "replace", "default", "via", c->outside_router,
                                "dev", OUT_DEV) < 0) {
        return -1;
    }
    int rc = nc_netns_call(p->ns, child_prepare_gateway, NULL, err);
    if (rc != 0) {
        if (rc > 0) {
            nb_error_set(err, NB_ERR_INTERNAL,
                         "could not prepare network namespace \"%s\" (step %d: forwarding, "
                         "offload of \"" IN_DEV "\", of \"" OUT_DEV "\", ARP timing)",
                         p->ns, rc);
        }
        return -1;
    }
    rc = nc_netns_call(host_ns, child_prepare_host, p, err);
    if (rc != 0) {
        if (rc > 0) {
            nb_error_set(err, NB_ERR_INTERNAL,
                         "could not turn checksum offload off on \"%s\" or \"%s\" (step %d)",
                         p->in_peer, p->out_peer, rc);
        }
        return -1;
    }
    return 0;
}

/* Routes the remote CIDRs of 'c' into charon's TUN device, with the fallback, and removes those
 * of 'old_routes' (the previous list, may be NULL) that are no longer wanted. */
static int routes_apply(const struct vpn_paths *p, const struct nc_vpn_conn *c,
                        const char *old_routes, struct nb_error *err)
{
    for (size_t i = 0; i < c->n_remote; i++) {
        const char *cidr = c->remote_cidrs[i];
        if (IP(err, p->ns, "route", "replace", "unreachable", cidr, "metric", FALLBACK_METRIC) <
                0 ||
            IP(err, p->ns, "route", "replace", cidr, "dev", TUN_DEV, "src", c->inside_ip) < 0) {
            return -1;
        }
    }
    char *copy = old_routes ? strdup(old_routes) : NULL;
    char *save = NULL;
    for (char *line = copy ? strtok_r(copy, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        bool wanted = false;
        for (size_t i = 0; i < c->n_remote && !wanted; i++) {
            wanted = strcmp(line, c->remote_cidrs[i]) == 0;
        }
        uint32_t addr;
        int len;
        if (!wanted && parse_cidr(line, &addr, &len) == 0) {
            /* Already gone is fine. */
            IP(NULL, p->ns, "route", "del", line, "dev", TUN_DEV);
            IP(NULL, p->ns, "route", "del", "unreachable", line, "metric", FALLBACK_METRIC);
        }
    }
    free(copy);
    return 0;
}

/* Whether another id under 'state_dir' ends in the same 8 hex digits as 'id' (and so would use
 * the same namespace and veths). Stores it in 'other'. */
static bool name_taken(const char *state_dir, const char *id, char other[NAME_MAX + 1])
{
    DIR *d = opendir(state_dir);
    if (!d) {
        return false;
    }
    const char *hex = id + strlen(id) - 8;
    bool taken = false;
    struct dirent *e;
    while (!taken && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (check_id(e->d_name, NULL) == 0 && strcmp(e->d_name, id) != 0 &&
            strcmp(e->d_name + len - 8, hex) == 0) {
            snprintf(other, NAME_MAX + 1, "%s", e->d_name);
            taken = true;
        }
    }
    closedir(d);
    return taken;
}

/* Stops charon and deletes the veths and the namespace of 'p'; keeps the state directory. */
static int vpn_teardown(const struct vpn_paths *p, const char *host_ns, struct nb_error *err)
{
    if (charon_stop(p, err) < 0) {
        return -1;
    }
    /* The outer ends are deleted explicitly: deleting the namespace would take them along, but
     * only once the kernel has finished destroying it, which happens later. A host namespace
     * that is gone took them along already. */
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
    unlink(p->routes);
    return 0;
}

/* ---- the interface -------------------------------------------------------------------------- */

int nc_vpn_up(const struct nc_vpn_conn *c, const char *host_netns, const char *state_dir,
              char in_peer[NC_VPN_IFNAME_MAX], char out_peer[NC_VPN_IFNAME_MAX],
              struct nb_error *err)
{
    struct vpn_paths p;
    if (check_conn(c, err) < 0 || (host_netns && check_netns_name(host_netns, err) < 0) ||
        vpn_paths(c->id, state_dir, &p, err) < 0) {
        return -1;
    }
    snprintf(in_peer, NC_VPN_IFNAME_MAX, "%s", p.in_peer);
    snprintf(out_peer, NC_VPN_IFNAME_MAX, "%s", p.out_peer);

    int rc = -1;
    char *net = render_net(c);
    char *routes = render_routes(c);
    char *swan = render_gateway_swanctl(c);
    char *strongswan = render_strongswan_conf(c->id);
    char *old_net = read_file(p.net);
    char *old_routes = read_file(p.routes);
    char *old_swan = read_file(p.swanctl_conf);
    pid_t pid = charon_running(&p);
    bool have_ns = nc_netns_file_exists(p.ns_file);

    /* The common case: nothing changed since the last call, here or in an earlier process. */
    if (pid > 0 && have_ns && nc_netns_same_text(old_net, net) &&
        nc_netns_same_text(old_routes, routes) && nc_netns_same_text(old_swan, swan)) {
        rc = 0;
        goto cleanup;
    }
    nb_info("bringing up VPN gateway %s in \"%s\"", c->id, p.ns);

    char other[NAME_MAX + 1];
    if (name_taken(state_dir, c->id, other)) {
        nb_error_set(err, NB_ERR_CONFLICT,
                     "VPN connections \"%s\" and \"%s\" would share network namespace \"%s\"",
                     c->id, other, p.ns);
        goto cleanup;
    }
    /* New addresses or MACs, or a charon left in a namespace that someone deleted: start over. */
    if ((old_net && !nc_netns_same_text(old_net, net)) || (pid > 0 && !have_ns)) {
        if (vpn_teardown(&p, host_netns, err) < 0) {
            goto cleanup;
        }
        pid = 0;
        free(old_routes);
        old_routes = NULL;
    }
    if (nc_netns_make_dir(state_dir, err) < 0 || nc_netns_make_dir(p.dir, err) < 0 ||
        nc_netns_make_dir(p.charon_dir, err) < 0 || net_setup(&p, c, host_netns, err) < 0 ||
        write_file(p.strongswan_conf, strongswan, 0644, err) < 0 ||
        write_file(p.swanctl_conf, swan, 0600, err) < 0) {
        goto cleanup;
    }
    if (pid == 0) {
        /* charon refuses to start while its pid file names a live process (a recycled pid). */
        unlink(p.pidfile);
        if (charon_spawn(&p, &pid, err) < 0) {
            goto cleanup;
        }
        nb_info("started charon %d for VPN gateway %s", (int)pid, c->id);
        if (SWANCTL(&p, NULL, err, "--load-all", "--noprompt", "--file", p.swanctl_conf) < 0) {
            goto cleanup;
        }
    } else {
        /* Also when the file did not change: the last call may have failed before loading it.
         * charon keeps a connection whose configuration is unchanged, SAs and all. */
        nb_info("reloading VPN connection %s in charon %d", c->id, (int)pid);
        if (SWANCTL(&p, NULL, err, "--load-all", "--noprompt", "--file", p.swanctl_conf) < 0) {
            goto cleanup;
        }
    }
    /* Recorded last: a failure above leaves the old records, and the next call redoes the work. */
    if (routes_apply(&p, c, old_routes, err) < 0 || write_file(p.routes, routes, 0600, err) < 0 ||
        write_file(p.net, net, 0600, err) < 0) {
        goto cleanup;
    }
    rc = 0;
cleanup:
    free(net);
    free(routes);
    free(swan);
    free(strongswan);
    free(old_net);
    free(old_routes);
    free(old_swan);
    return rc;
}

int nc_vpn_down(const char *id, const char *host_netns, const char *state_dir, struct nb_error *err)
{
    struct vpn_paths p;
    if (check_id(id, err) < 0 || (host_netns && check_netns_name(host_netns, err) < 0) ||
        vpn_paths(id, state_dir, &p, err) < 0) {
        return -1;
    }
    /* Without state of its own, the namespace may belong to another id with the same digits. */
    char other[NAME_MAX + 1];
    if (!nc_netns_file_exists(p.dir) && name_taken(state_dir, id, other)) {
        return 0;
    }
    if (vpn_teardown(&p, host_netns, err) < 0 || nc_netns_remove_tree(p.dir, err) < 0) {
        return -1;
    }
    nb_info("VPN gateway %s is down", id);
    return 0;
}

/* Whether 'name' is a connection id (nc_netns_list_dir()'s filter). */
static bool is_conn_id(const char *name)
{
    return check_id(name, NULL) == 0;
}

int nc_vpn_list(const char *state_dir, char ***ids, size_t *n, struct nb_error *err)
{
    return nc_netns_list_dir(state_dir, is_conn_id, "VPN state directory", ids, n, err);
}

void nc_vpn_list_free(char **ids, size_t n)
{
    nc_netns_list_free(ids, n);
}

/* Reads the output of "swanctl --list-sas --raw": one line per IKE SA,
 *     list-sa event {NAME {key=value ... child-sas {NAME-N {key=value ...}}}}
 * so IKE SA keys are at depth 2 and CHILD SA keys at depth 4. Braces may touch the words next to
 * them; the values read here contain no spaces. */
static void parse_list_sas(const char *text, struct nc_vpn_status *st)
{
    int depth = 0;
    bool ike_up = false;   /* the IKE SA being read is ESTABLISHED */
    bool child_up = false; /* the CHILD SA being read is INSTALLED */
    uint64_t bytes_in = 0, bytes_out = 0, packets_in = 0, packets_out = 0;
    const char *s = text;
    while (*s) {
        if (*s == '{') {
            if (++depth == 4) {
                child_up = false;
                bytes_in = bytes_out = packets_in = packets_out = 0;
            } else if (depth == 2) {
                ike_up = false;
            }
            s++;
            continue;
        }
        if (*s == '}') {
            if (depth == 4 && ike_up && child_up) {
                st->child_installed = true;
                st->bytes_in += bytes_in;
                st->bytes_out += bytes_out;
                st->packets_in += packets_in;
                st->packets_out += packets_out;
            }
            depth--;
            s++;
            continue;
        }
        if (*s == ' ' || *s == '\n') {
            s++;
            continue;
        }
        size_t len = strcspn(s, " \n{}");
        char word[128];
        if (len < sizeof word) {
            memcpy(word, s, len);
            word[len] = '\0';
            char *eq = strchr(word, '=');
            const char *value = eq ? eq + 1 : "";
            if (eq) {
                *eq = '\0';
            }
            if (!eq) {
                /* a section name or a list item */
            } else if (depth == 2 && strcmp(word, "state") == 0) {
                ike_up = strcmp(value, "ESTABLISHED") == 0;
                st->ike_established = st->ike_established || ike_up;
            } else if (depth == 4 && strcmp(word, "state") == 0) {
                child_up = strcmp(value, "INSTALLED") == 0;
            } else if (depth == 4 && strcmp(word, "bytes-in") == 0) {
                bytes_in = strtoull(value, NULL, 10);
            } else if (depth == 4 && strcmp(word, "bytes-out") == 0) {
                bytes_out = strtoull(value, NULL, 10);
            } else if (depth == 4 && strcmp(word, "packets-in") == 0) {
                packets_in = strtoull(value, NULL, 10);
            } else if (depth == 4 && strcmp(word, "packets-out") == 0) {
                packets_out = strtoull(value, NULL, 10);
            }
        }
        s += len;
    }
}

int nc_vpn_status(const char *id, const char *state_dir, struct nc_vpn_status *st,
                  struct nb_error *err)
{
    memset(st, 0, sizeof *st);
    struct vpn_paths p;
    if (check_id(id, err) < 0 || vpn_paths(id, state_dir, &p, err) < 0) {
        return -1;
    }
    if (!nc_netns_file_exists(p.dir)) {
        nb_error_set(err, NB_ERR_NOT_FOUND, "VPN connection \"%s\" has no state in \"%s\"", id,
                     state_dir);
        return -1;
    }
    st->charon_pid = charon_running(&p);
    st->running = st->charon_pid > 0;
    if (!st->running) {
        return 0;
    }
    char *out = NULL;
    if (SWANCTL(&p, &out, err, "--list-sas", "--raw", "--ike", id) < 0) {
        free(out);
        return -1;
    }
    parse_list_sas(out, st);
    free(out);
    return 0;
}
