/* Remote-access endpoints with WireGuard: one network namespace per endpoint, with a userspace
 * wireguard-go inside (these kernels have no WireGuard module; in production the kernel's would
 * do), configured with wg(8). The caller (nubo-netctl) plugs the two veth ends this module
 * leaves in the host's namespace into Open vSwitch: "in" faces the VPC, "out" the public
 * network, as a VPN gateway's (vpn.h).
 *
 * Inside the namespace "nwg-" + the id's last 8 hex digits: "in" (the inside address /32,
 * a route to the VPC's CIDR), "out" (the outside address, the public default route) and the
 * WireGuard interface "wg-" + the same 8 digits (the client CIDR routed into it). wireguard-go's control
 * socket is /var/run/wireguard/<interface>.sock, in the file system every namespace shares:
 * hence interface names unique per machine, and wg(8) can configure it from anywhere.
 *
 * wireguard-go is a daemon of its own that outlives the caller (a restart of nubo-netctl keeps
 * the users' sessions); it is tracked by its pid file under the state directory. Programs run as
 * child processes (fork/exec, no shell) and are reaped. Calls for one id must not run
 * concurrently. */
#ifndef NUBO_NETCTL_WG_H
#define NUBO_NETCTL_WG_H

#include <stddef.h>

struct nb_error;

#define NC_WG_IFNAME_MAX 16 /* IFNAMSIZ */

struct nc_wg_peer {
    const char *public_key; /* base64, 44 characters */
    const char *ip;         /* its address; allowed-ips ip/32 */
};

/* One endpoint. Every string is checked by nc_wg_up() before use. */
struct nc_wg_endpoint {
    const char *id;             /* "rae-" and 8 to 17 lower-case hex digits */
    const char *outside_ip;     /* on the public network */
    int outside_prefix;         /* of the public network */
    const char *outside_router; /* the public default route; NULL when none */
    const char *inside_ip;      /* the leg facing the VPC (an address of the client CIDR) */
    const char *vpc_cidr;       /* routed through "in" */
    const char *client_cidr;    /* routed into the WireGuard interface */
    const char *private_key;    /* base64, 44 characters; written to a file of mode 0600 */
    int listen_port;
    const struct nc_wg_peer *peers;
    size_t n_peers;
    const char *inside_mac, *outside_mac; /* "aa:bb:cc:dd:ee:ff" */
};

/* Brings endpoint 'e' up, or to 'e' if it runs: the namespace, the veths, wireguard-go, its key,
 * port and peers (peers no longer listed are removed, the others keep their sessions). The outer
 * ends of the veths, "nwi-" and "nwo-" + the same 8 digits, written into 'in_peer' and 'out_peer',
 * are left up in the network namespace 'host_netns' (NULL: the caller's). Files go to
 * 'state_dir'/<id>/ (created if missing). Idempotent: when the state files say 'e' is what runs
 * and wireguard-go is alive in the namespace, it returns at once without running anything; a
 * change of addresses or MACs rebuilds the endpoint. Returns 0, or -1 with 'err' set; what was
 * made stays for nc_wg_down(). */
int nc_wg_up(const struct nc_wg_endpoint *e, const char *host_netns, const char *state_dir,
             char in_peer[NC_WG_IFNAME_MAX], char out_peer[NC_WG_IFNAME_MAX], struct nb_error *err);

/* Stops the wireguard-go of 'id' (SIGTERM, SIGKILL after 3 s), deletes the veths (the outer
 * ends in 'host_netns'), the namespace and 'state_dir'/<id>/. What is gone already is no
 * error. Returns 0, or -1 with 'err' set. */
int nc_wg_down(const char *id, const char *host_netns, const char *state_dir, struct nb_error *err);

/* The outer veth ends of endpoint 'id' (for unplugging them). */
void nc_wg_peer_names(const char *id, char in_peer[NC_WG_IFNAME_MAX],
                      char out_peer[NC_WG_IFNAME_MAX]);

/* Stores in '*ids' the endpoint ids with state under 'state_dir' (running or left by a crash),
 * and their number in '*n'. A missing 'state_dir' lists nothing. Returns 0, or -1 with 'err'.
 * The caller frees them with nc_wg_list_free(). */
int nc_wg_list(const char *state_dir, char ***ids, size_t *n, struct nb_error *err);
void nc_wg_list_free(char **ids, size_t n);

#endif
