/* Domain XML: the libvirt definition of one instance, written from a spec struct.
 *
 * The domain is named by the instance id, q35 / x86_64, with virtio disks (vda root overlay, vdb
 * ephemeral, vdc config drive), a serial console on a pty logged to a file, VNC graphics with a
 * per-instance password, on_poweroff/on_crash destroy and on_reboot restart, and nubo's metadata
 * element (namespace AGENT_VIRT_XMLNS from virt.h) that marks the domain as ours:
 *
 *   <metadata>
 *     <nubo:instance xmlns:nubo="https://nubo.dev/xmlns/instance/1">
 *       <nubo:id>i-0123456789abcdef0</nubo:id>
 *       <nubo:tenant>...</nubo:tenant>
 *       <nubo:image>ami-...</nubo:image>
 *       <nubo:type>t2.micro</nubo:type>   (only when given)
 *       <nubo:host>h-...</nubo:host>       (only when given: the owning agent's host)
 *     </nubo:instance>
 *   </metadata>
 *
 * Every string from the spec is XML-escaped. Pure functions: thread-safe, no I/O. */
#ifndef NUBO_AGENT_DOMXML_H
#define NUBO_AGENT_DOMXML_H

#include <stdbool.h>
#include <stddef.h>

struct nb_error;

/* How an interface reaches the host's switch. */
enum agent_domxml_iface_kind {
    /* libvirt plugs it: libvirtd creates the tap and runs ovs-vsctl itself (with libvirtd's
     * environment, hence its OVS_RUNDIR):
     *   <interface type='bridge'>
     *     <mac address='MAC'/>
     *     <source bridge='BRIDGE'/>
     *     <virtualport type='openvswitch'><parameters interfaceid='IFACE_ID'/></virtualport>
     *     <vlan><tag id='VLAN'/></vlan>          (only when 'vlan' > 0)
     *     <target dev='TARGET_DEV'/>             (only when given)
     *     <model type='virtio'/>
     *     <mtu size='MTU'/>                      (only when 'mtu' > 0)
     *   </interface> */
    AGENT_DOMXML_IFACE_OVS_BRIDGE = 0,
    /* A tap device that exists before the domain starts (made and plugged by the agent);
     * libvirt only opens it and neither creates nor deletes it:
     *   <interface type='ethernet'>
     *     <mac address='MAC'/>
     *     <target dev='TARGET_DEV' managed='no'/>
     *     <model type='virtio'/>
     *     <driver name='qemu'><host csum='off'/></driver>   (only with 'no_tx_csum')
     *     <mtu size='MTU'/>                      (only when 'mtu' > 0)
     *   </interface>
     * 'bridge', 'iface_id' and 'vlan' are not used; 'target_dev' is required. */
    AGENT_DOMXML_IFACE_TAP,
};

struct agent_domxml_iface {
    enum agent_domxml_iface_kind kind;
    const char *bridge;     /* required for OVS_BRIDGE, e.g. "br-int" */
    const char *mac;        /* required, "52:54:00:xx:xx:xx" */
    const char *iface_id;   /* OVS external_ids:iface-id; libvirt requires a UUID; NULL: none */
    const char *target_dev; /* tap device name (at most 15 characters); NULL: libvirt picks */
    int vlan;               /* 802.1Q tag 1..4094; 0: untagged */
    unsigned mtu;           /* 0: default */
    /* TAP only: the virtio device offers no transmit checksum offload, so the guest sends
     * complete checksums. Needed behind Open vSwitch's userspace datapath, which reads the
     * tap through a packet socket and forwards a packet whose checksum the guest left to the
     * host as it is: its TCP would be dropped by the receiver as corrupt. */
    bool no_tx_csum;
};

struct agent_domxml_spec {
    const char *instance_id;   /* required; the domain name */
    const char *tenant_id;     /* metadata; NULL: "" */
    const char *image_id;      /* metadata; NULL: "" */
    const char *instance_type; /* metadata; NULL: omitted */
    const char *host_id;       /* metadata: the host whose agent owns the domain; NULL: omitted */
    const char *uuid;          /* domain UUID; NULL: libvirt generates one */
    const char *virt_type;     /* "kvm" or "qemu"; required */
    unsigned vcpus;            /* 1..256 */
    unsigned long memory_mib;  /* >= 16 */

    /* Direct kernel boot (EC2 aki/ari) when 'kernel' is set: <kernel>, <initrd> (optional),
     * <cmdline> ("console=ttyS0" when NULL). Otherwise the guest boots from vda. */
    const char *kernel;
    const char *initrd;
    const char *cmdline;

    const char *root_disk;      /* required: the qcow2 overlay, vda */
    const char *ephemeral_disk; /* qcow2, vdb; NULL: none */
    const char *config_drive;   /* raw ISO9660, vdc, read-only; NULL: none */
    const char *console_log;    /* serial log file; required */

    const char *vnc_listen;   /* address for VNC; NULL: no graphics at all */
    const char *vnc_password; /* required with 'vnc_listen' (VNC uses at most 8 characters) */

    bool memballoon; /* true: <memballoon model='virtio'/> (memory stats); false: none */

    const struct agent_domxml_iface *ifaces; /* 'n_ifaces' interfaces, in order; may be NULL */
    size_t n_ifaces;
};

/* Writes the domain XML of 'spec'. Returns a malloc()ed NUL-terminated string the caller free()s,
 * or NULL with 'err' set to NB_ERR_INVALID (naming the field) when the spec is incomplete or out
 * of range. */
char *agent_domxml_build(const struct agent_domxml_spec *spec, struct nb_error *err);

#endif
