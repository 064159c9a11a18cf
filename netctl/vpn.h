/* Site-to-site IPsec VPN gateways: one network namespace per VPN connection, with a strongSwan
 * charon inside that does IKEv2 and ESP in userspace (kernel-libipsec), so that it works on kernels
 * without IPsec (xfrm). The caller (nubo-netctl) plugs the two veth ends this module leaves in the
 * host's namespace into Open vSwitch: "in" faces the VPC, "out" the public network.
 *
 * Each function runs ip(8), swanctl(8) and charon as child processes (fork/exec with an argument
 * vector, no shell) and reaps them. charon is a daemon of its own that outlives the caller, so that
 * restarting nubo-netctl does not drop the tunnels; it is tracked by its pid file under the state
 * directory. Calls for one id must not run concurrently; calls for different ids may.
 *
 * See the comment at the top of vpn.c for the recipe and its limits. */
#ifndef NUBO_NETCTL_VPN_H
#define NUBO_NETCTL_VPN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct nb_error;

#define NC_VPN_IFNAME_MAX 16 /* IFNAMSIZ */

/* One VPN connection as the gateway sees it. Every string is checked by nc_vpn_up() before use:
 * addresses and CIDRs are IPv4 (inet_pton, host bits of a CIDR zero), MACs "aa:bb:cc:dd:ee:ff". */
struct nc_vpn_conn {
    const char *id;             /* "vpn-" and 8 to 17 lower-case hex digits; the last 8 name the
                                   namespace "nvpn-<those 8 digits>" and the veths */
    const char *outside_ip;     /* the gateway's public address, e.g. "203.0.113.10" */
    int outside_prefix;         /* e.g. 24 */
    const char *outside_router; /* the public default route; NULL when none */
    const char *peer_ip;        /* the customer gateway's public address */
    const char *psk;            /* 8 to 64 characters of [A-Za-z0-9._] */
    const char *local_cidr;     /* the VPC's CIDR */
    const char *const *remote_cidrs; /* the customer's networks (1 to NC_VPN_REMOTE_MAX) */
    size_t n_remote;
    const char *inside_ip; /* the gateway's address inside the VPC, within 'local_cidr' */
    int inside_prefix;
    const char *inside_mac; /* of the "in" device (the VPC's flows know it) */
    const char *outside_mac;
};

#define NC_VPN_REMOTE_MAX 32

struct nc_vpn_status {
    bool running;                 /* charon runs for this id */
    pid_t charon_pid;             /* its pid, 0 when not running */
    bool ike_established;         /* an IKE SA is ESTABLISHED */
    bool child_installed;         /* a CHILD SA of it is INSTALLED */
    uint64_t bytes_in, bytes_out; /* summed over the current CHILD SAs (a rekey restarts them) */
    uint64_t packets_in, packets_out; /* likewise */
};

/* Brings up the VPN gateway of 'c': the network namespace "nvpn-" + the last 8 hex digits of the id, two veth pairs whose
 * inner ends are "in" (inside_ip, inside_mac) and "out" (outside_ip, outside_mac, default route
 * via outside_router) in that namespace, routes of the remote CIDRs through charon's TUN device
 * (with an "unreachable" fallback, so that no packet for the customer leaves unencrypted while
 * the tunnel is down), and a charon in that namespace with the connection loaded, initiating
 * (start_action=start, retried forever) and responding, DPD every 10 s, restarting on DPD
 * failure and on close. The outer ends, named "nvi-" and "nvo-" + the same 8 digits and written into
 * 'in_peer' and 'out_peer', are left up in the network namespace 'host_netns' (a name for
 * ip-netns(8); NULL means the caller's) for the caller to attach. Files go to 'state_dir'/<id>/
 * ('state_dir' is created if missing).
 *
 * Idempotent: when the state files say 'c' is what runs, the namespace exists and charon is
 * alive, it returns at once without running anything, leaving a charon started by an earlier
 * process alone. When only the remote CIDRs, the peer or the PSK changed, charon reloads the
 * connection (its SAs are re-established) and the routes follow, without a restart; a change of
 * addresses or MACs rebuilds the gateway. A charon that died is started again.
 *
 * Returns as soon as the connection is loaded, before the SAs are up (see nc_vpn_status()).
 * Returns 0, or -1 with 'err' set (NB_ERR_INVALID for a bad 'c', NB_ERR_CONFLICT when another id
 * in 'state_dir' has the same last 8 hex digits); what was created stays for nc_vpn_down(). */
int nc_vpn_up(const struct nc_vpn_conn *c, const char *host_netns, const char *state_dir,
              char in_peer[NC_VPN_IFNAME_MAX], char out_peer[NC_VPN_IFNAME_MAX],
              struct nb_error *err);

/* Stops the charon of 'id' (SIGTERM, then SIGKILL after 5 s), deletes its veths (the outer ends
 * in 'host_netns', NULL meaning the caller's), its namespace and 'state_dir'/<id>/. Whatever is
 * already gone is no error. Returns 0, or -1 with 'err' set. */
int nc_vpn_down(const char *id, const char *host_netns, const char *state_dir,
                struct nb_error *err);

/* Stores in '*ids' the ids that have state under 'state_dir' (running or left over by a crash),
 * so that the daemon can take down the ones no longer desired after a restart, and their number
 * in '*n'. A missing 'state_dir' lists nothing. Returns 0, or -1 with 'err' set. The caller frees
 * the array and each string with nc_vpn_list_free(). */
int nc_vpn_list(const char *state_dir, char ***ids, size_t *n, struct nb_error *err);
void nc_vpn_list_free(char **ids, size_t n);

/* Fills '*st' for 'id': whether charon runs, whether the IKE SA and a CHILD SA are up, and the
 * CHILD SAs' byte and packet counters (from swanctl --list-sas). A charon that does not run is no
 * error ('st->running' false). Returns 0, or -1 with 'err' set (NB_ERR_NOT_FOUND when 'id' has
 * no state). */
int nc_vpn_status(const char *id, const char *state_dir, struct nc_vpn_status *st,
                  struct nb_error *err);

/* Returns a new strongSwan swanctl.conf for the customer's side of 'c' (the reverse view: local
 * and remote swapped), for documentation and tests; 'site_ip' is the customer gateway's own
 * address if it differs from 'c->peer_ip' (behind NAT), else NULL. The customer traps (initiates
 * on traffic) and answers; the nubo side keeps the tunnel up. Returns NULL if 'c' is invalid.
 * The caller free()s the result. */
char *nc_vpn_peer_swanctl(const struct nc_vpn_conn *c, const char *site_ip);

#endif
