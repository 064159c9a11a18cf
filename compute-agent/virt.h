/* The hypervisor provider: nubo's instances as libvirt domains, one per instance, named by the
 * instance id ("i-0123456789abcdef0").
 *
 * Every libvirt call runs on a worker thread and the caller waits with a deadline
 * ('call_timeout_ms'): a hung libvirtd makes the call fail with NB_ERR_TIMEOUT instead of hanging
 * the agent. The abandoned call finishes (or not) on its own thread, which frees what it used.
 * At most AGENT_VIRT_MAX_ABANDONED calls may be abandoned at once; past that every call fails at
 * once with NB_ERR_UNAVAILABLE until some of them return. The connection also uses libvirt's
 * keep-alive (a process-wide libvirt event loop thread is started on the first open), so a dead
 * libvirtd is noticed by libvirt itself. A call that finds the connection closed (libvirtd
 * restarted, or keep-alive gave up) reconnects first, within the same deadline rules.
 *
 * Only domains whose definition carries nubo's metadata element (namespace AGENT_VIRT_XMLNS,
 * written by agent_domxml_build()) are ours. agent_virt_list() and agent_virt_stats() report only
 * those; the operations that take an id refuse (NB_ERR_CONFLICT) to touch a domain of that name
 * that is not ours.
 *
 * Thread-safety: a 'struct agent_virt' may be used from any number of threads at once; each call
 * is independent. Operations on the same instance from two threads at once are not serialised
 * here (the caller's per-instance state machine does that).
 *
 * Errors: NB_ERR_TIMEOUT (the call did not finish in time), NB_ERR_UNAVAILABLE (libvirtd cannot be
 * reached or too many calls are hung), NB_ERR_NOT_FOUND (no such domain, where absence is not
 * fine), NB_ERR_CONFLICT (the domain is not ours, or in a state that forbids the operation),
 * NB_ERR_INVALID (bad id or XML), NB_ERR_INTERNAL (anything else libvirt reports; its message is
 * in the error's detail). */
#ifndef NUBO_AGENT_VIRT_H
#define NUBO_AGENT_VIRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nb_error;
struct agent_virt;

/* The namespace of nubo's <metadata> element and its customary prefix. */
#define AGENT_VIRT_XMLNS  "https://nubo.dev/xmlns/instance/1"
#define AGENT_VIRT_PREFIX "nubo"

#define AGENT_VIRT_MAX_ABANDONED 8
/* Longest instance id plus NUL ("i-" and 17 hex digits). */
#define AGENT_VIRT_ID_MAX 20

struct agent_virt_config {
    const char *uri;          /* libvirt URI; "qemu:///system" when NULL or "" */
    long call_timeout_ms;     /* deadline of each libvirt call; 30000 when 0 */
    int keepalive_interval_s; /* seconds between keep-alive probes; 5 when 0, <0 disables */
    unsigned keepalive_count; /* unanswered probes before the connection is closed; 3 when 0 */
};

enum agent_virt_state {
    AGENT_VIRT_ABSENT = 0, /* no such domain */
    AGENT_VIRT_RUNNING,    /* running, blocked, or shutting down */
    AGENT_VIRT_PAUSED,     /* paused or suspended by the guest */
    AGENT_VIRT_SHUTOFF,    /* defined, not running */
    AGENT_VIRT_CRASHED,    /* QEMU or the guest crashed (with on_crash=destroy it is shut off) */
    AGENT_VIRT_UNKNOWN,    /* libvirt says "no state" */
};

/* A stable lower-case name for 'state': "absent", "running", "paused", "shutoff", "crashed",
 * "unknown". */
const char *agent_virt_state_name(enum agent_virt_state state);

/* Connects to 'cfg->uri' (the strings are copied). Returns a new provider the caller frees with
 * agent_virt_close(), or NULL with 'err' set (NB_ERR_UNAVAILABLE when libvirtd cannot be reached,
 * NB_ERR_TIMEOUT when the connection did not open in time). */
struct agent_virt *agent_virt_open(const struct agent_virt_config *cfg, struct nb_error *err);

/* Closes the connection (with the same deadline as any call) and frees 'v'. Abandoned calls still
 * running keep their own reference on the connection and release it when they return. Accepts
 * NULL. */
void agent_virt_close(struct agent_virt *v);

/* The URI that 'v' is connected to (owned by 'v'). */
const char *agent_virt_uri(const struct agent_virt *v);

/* Makes instance 'id' a persistent domain defined by 'xml' and running. Idempotent: a domain that
 * already exists and runs is left alone (its definition is not replaced), one that exists shut
 * off (or crashed) is started, a paused one is resumed. Returns 0, or -1 with 'err' set. */
int agent_virt_define_start(struct agent_virt *v, const char *id, const char *xml,
                            struct nb_error *err);

/* Starts the defined domain 'id'; a running one is fine, a paused one is resumed. Returns 0, or
 * -1 with 'err' set (NB_ERR_NOT_FOUND when it is not defined). */
int agent_virt_start(struct agent_virt *v, const char *id, struct nb_error *err);

/* Stops 'id' gracefully: an ACPI power-button press (virDomainShutdown), then polls until it is
 * shut off; after 'grace_ms' (0: at once, no ACPI) it is destroyed (powered off). A shut-off
 * domain is fine. '*forced' (may be NULL) tells whether it had to be destroyed. The wait for the
 * guest is not bounded by 'call_timeout_ms' (each libvirt call inside it is). Returns 0, or -1
 * with 'err' set (NB_ERR_NOT_FOUND when there is no such domain). */
int agent_virt_stop(struct agent_virt *v, const char *id, long grace_ms, bool *forced,
                    struct nb_error *err);

/* Reboots running 'id'. Chosen method: virDomainReboot with the ACPI power-button flag (the
 * guest's own orderly reboot, like EC2's RebootInstances; with on_reboot=restart QEMU resets the
 * machine when the guest does). When libvirt refuses the request (no ACPI in the domain, agent
 * errors) we fall back to virDomainReset, a hard reset like the reset button (QEMU and its disks
 * stay open, unlike destroy+start). A guest that accepts but ignores the ACPI event does not
 * reboot: the caller then uses agent_virt_stop() (which destroys after its grace time) and
 * agent_virt_start(). A shut-off domain is started instead. Returns 0, or -1 with 'err' set. */
int agent_virt_reboot(struct agent_virt *v, const char *id, struct nb_error *err);

/* Destroys 'id' if it runs and undefines it, with its NVRAM, managed-save image, snapshot and
 * checkpoint metadata. An absent domain is fine (idempotent). Does not touch disk files. Returns
 * 0, or -1 with 'err' set. */
int agent_virt_terminate(struct agent_virt *v, const char *id, struct nb_error *err);

/* Stores the state of 'id' in '*state' (AGENT_VIRT_ABSENT when there is no such domain, which is
 * not an error). Returns 0, or -1 with 'err' set. */
int agent_virt_state(struct agent_virt *v, const char *id, enum agent_virt_state *state,
                     struct nb_error *err);

/* One of our domains, as found in its metadata element. Empty strings when an item is missing. */
struct agent_virt_domain {
    char id[AGENT_VIRT_ID_MAX];
    char tenant[64];
    char image[64];
    char host[32]; /* the owning agent's host id; "" for a domain defined without one */
    enum agent_virt_state state;
};

/* Lists our domains (persistent and transient, running or not). Stores a malloc()ed array in
 * '*out' (the caller free()s it; NULL when '*n' is 0) and its length in '*n'. Returns 0, or -1
 * with 'err' set. */
int agent_virt_list(struct agent_virt *v, struct agent_virt_domain **out, size_t *n,
                    struct nb_error *err);

/* Stats of one of our domains; counters are cumulative since QEMU started, 0 when shut off or not
 * reported. Block and net counters are summed over all disks / interfaces. */
struct agent_virt_stats {
    char id[AGENT_VIRT_ID_MAX];
    char host[32]; /* the owning agent's host id, from the metadata; "" when none */
    enum agent_virt_state state;
    uint64_t cpu_time_ns;
    uint64_t memory_kib;     /* current balloon size (the configured memory without a balloon) */
    uint64_t memory_rss_kib; /* resident set size of QEMU, when reported */
    uint64_t block_rd_bytes;
    uint64_t block_wr_bytes;
    uint64_t net_rx_bytes;
    uint64_t net_tx_bytes;
};

/* Bulk stats (one virConnectGetAllDomainStats-style call) of our domains. Stores a malloc()ed
 * array in '*out' (the caller free()s it; NULL when '*n' is 0) and its length in '*n'. Returns 0,
 * or -1 with 'err' set. */
int agent_virt_stats(struct agent_virt *v, struct agent_virt_stats **out, size_t *n,
                     struct nb_error *err);

/* The host's capacity. */
struct agent_virt_node {
    unsigned cpus;       /* logical CPUs */
    uint64_t memory_mib; /* physical memory */
    char model[32];      /* CPU model, e.g. "x86_64" */
};

/* Fills '*out' from virNodeGetInfo. Returns 0, or -1 with 'err' set. */
int agent_virt_node_info(struct agent_virt *v, struct agent_virt_node *out, struct nb_error *err);

/* Stores the VNC TCP port of running 'id' (from its live XML) in '*port'. Returns 0, or -1 with
 * 'err' set (NB_ERR_NOT_FOUND when the domain is absent or has no VNC graphics, NB_ERR_CONFLICT
 * when it is not running, so that no port is assigned). */
int agent_virt_vnc_port(struct agent_virt *v, const char *id, int *port, struct nb_error *err);

/* Decides the domain type to use on this host, "kvm" or "qemu" (static strings).
 *
 * 'mode' "kvm" or "qemu" forces that answer without probing. "auto" (or NULL) probes by booting:
 * a transient type='kvm' domain named "nubo-kvm-probe-<pid>" boots the probe guest of
 * agent_virt_set_probe_guest(), or else a 512-byte boot sector (made in 'workdir', which must
 * exist and be readable by QEMU's user), that prints a marker on its serial port; when the marker shows up in the serial log within 'timeout_ms' (5000 when 0) the
 * answer is "kvm". Any error, or no marker, gives "qemu" (TCG), and the reason is logged; the
 * probe domain is destroyed and its files removed in every case. Takes a few seconds at most;
 * call it once at start-up. */
const char *agent_virt_choose_type(struct agent_virt *v, const char *mode, const char *workdir,
                                   long timeout_ms);

/* A real guest for the KVM probe: a kernel (and initrd) that prints 'marker' on ttyS0 once it
 * is up (the test guest prints "NUBO-GUEST-READY"). On some nested hosts 16-bit code runs under
 * KVM while every 64-bit kernel hangs (tests/guest/kvm-probe-findings.md): booting a kernel is
 * the reliable probe, the boot sector the fallback when no kernel is configured. Strings are
 * copied; call before agent_virt_choose_type(). */
void agent_virt_set_probe_guest(struct agent_virt *v, const char *kernel, const char *initrd,
                                const char *marker);

/* Writes the probe's 512-byte boot sector into 'out': real-mode code that prints 'marker' (at most
 * 400 bytes, no NUL) on COM1 (0x3f8) in a loop of halts, ending with the 0x55AA signature. Returns
 * 0, or -1 when the marker is too long. Used by the probe and by tests that boot a guest. */
int agent_virt_boot_sector(const char *marker, unsigned char out[512]);

/* True when 'id' looks like an instance id: "i-" and 8 or 17 lower-case hex digits. */
bool agent_virt_valid_id(const char *id);

#endif
