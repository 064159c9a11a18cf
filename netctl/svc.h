/* DHCP and the instance metadata service (169.254.169.254) for the tenant networks of one host.
 *
 * For every network (segment) with a port on this host, a "service namespace" holds one end of
 * a veth pair, "svc", with the network's service MAC (nc_service_mac), its service address (the
 * VPC's base address + 2, with the VPC's prefix) and 169.254.169.254/32; the other end stays in
 * the host's namespace, plugged into the integration bridge with external_ids:nubo-svc=<segment>,
 * where the flows of flows.c (service_port) connect it to the network's VM ports on this host.
 * In the namespace:
 *   - dnsmasq answers DHCP, for this host's ports of the network only (fixed address per MAC,
 *     the router of the port's subnet, MTU 1450, lease time 1 h, host name "ip-a-b-c-d"; no
 *     DNS). It is a daemon of its own: it outlives nubo-netctl, which finds it again by its pid
 *     file, and is restarted (not SIGHUPed) when its hosts change;
 *   - an HTTP server of nubo-netctl's own (libmicrohttpd, listening socket made inside the
 *     namespace) serves EC2's instance metadata: the instance is the host's port with the
 *     request's source address, its metadata comes from the control plane (GET
 *     /internal/v1/metadata with the node token, cached for a few seconds). IMDSv1 and IMDSv2
 *     (session tokens from PUT /latest/api/token, signed with a key held in memory: they do not
 *     survive a restart of nubo-netctl).
 *
 * Names, per host (several hosts may share a machine in tests): namespace "nsvc-TTTTTT-SEG",
 * host-side veth end "svTTTTTT-SEG", where TTTTTT is a hash of the state directory. Files go to
 * <state_dir>/svc-SEG/ (hosts and options of dnsmasq, its pid file, leases and log, and "net",
 * what was built, whose first line names the namespace).
 *
 * One thread calls nc_svc_sync() (the node loop); the HTTP servers run on threads of their own. */
#ifndef NUBO_NETCTL_SVC_H
#define NUBO_NETCTL_SVC_H

struct nb_error;
struct nc_state;
struct nc_svc;

/* Creates the service manager of a host: 'bridge' the integration bridge, 'host_netns' the
 * network namespace (an ip-netns(8) name) where the bridge's ports live, NULL for ours,
 * 'state_dir' where files go, 'control_url' and 'token' the control plane and this host's node
 * token. With an empty 'control_url' it does nothing at all (the benchmark). Copies every
 * string. Returns a new manager to free with nc_svc_free(). */
struct nc_svc *nc_svc_new(const char *bridge, const char *host_netns, const char *state_dir,
                          const char *control_url, const char *token);

/* Brings the service namespaces to 'st': one per network with a local port, with dnsmasq
 * serving exactly the network's local ports and the metadata server running; the service
 * namespaces of networks no longer there are torn down (also those left by an earlier process).
 * Idempotent; when nothing changed since the last call it runs no program. Works through all
 * networks even when one fails. Returns 0, or -1 with 'err' set by the first failure. */
int nc_svc_sync(struct nc_svc *s, const struct nc_state *st, struct nb_error *err);

/* Stops the metadata servers and frees 's'. Namespaces and dnsmasq stay: the next process
 * finds them. Accepts NULL. */
void nc_svc_free(struct nc_svc *s);

#endif
