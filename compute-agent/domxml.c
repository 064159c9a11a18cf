/* Domain XML writer (see domxml.h). Plain text building with nb_buf and nb_buf_xml_escape: the
 * format is small and fixed, and a golden-file test pins it byte for byte. */
#include "domxml.h"
#include "virt.h"

#include "nubo/buf.h"
#include "nubo/error.h"

#include <stdio.h>
#include <string.h>

static bool empty(const char *s)
{
    return s == NULL || *s == '\0';
}

/* Appends "name='escaped value'" preceded by a space. */
static void attr(struct nb_buf *b, const char *name, const char *value)
{
    nb_buf_printf(b, " %s='", name);
    nb_buf_xml_escape(b, value);
    nb_buf_puts(b, "'");
}

/* Appends an indented "<tag>escaped text</tag>\n". */
static void elem(struct nb_buf *b, int indent, const char *tag, const char *text)
{
    nb_buf_printf(b, "%*s", indent, "");
    nb_buf_xml_elem(b, tag, text);
    nb_buf_puts(b, "\n");
}

static void disk(struct nb_buf *b, const char *path, const char *format, const char *dev,
                 bool readonly)
{
    nb_buf_puts(b, "    <disk type='file' device='disk'>\n");
    /* No cache='none': it needs O_DIRECT, which tmpfs state directories lack. */
    nb_buf_printf(b, "      <driver name='qemu' type='%s'%s/>\n", format,
                  readonly ? "" : " discard='unmap'");
    nb_buf_puts(b, "      <source");
    attr(b, "file", path);
    nb_buf_puts(b, "/>\n");
    nb_buf_printf(b, "      <target dev='%s' bus='virtio'/>\n", dev);
    if (readonly) {
        nb_buf_puts(b, "      <readonly/>\n");
    }
    nb_buf_puts(b, "    </disk>\n");
}

static int check_iface(const struct agent_domxml_iface *ifc, size_t i, struct nb_error *err)
{
    if (ifc->kind == AGENT_DOMXML_IFACE_TAP) {
        if (empty(ifc->target_dev) || empty(ifc->mac)) {
            nb_error_set(err, NB_ERR_INVALID, "interface %zu: target device and mac are required",
                         i);
            return -1;
        }
    } else if (ifc->kind != AGENT_DOMXML_IFACE_OVS_BRIDGE) {
        nb_error_set(err, NB_ERR_INVALID, "interface %zu: unknown kind %d", i, (int)ifc->kind);
        return -1;
    } else if (empty(ifc->bridge) || empty(ifc->mac)) {
        nb_error_set(err, NB_ERR_INVALID, "interface %zu: bridge and mac are required", i);
        return -1;
    }
    if (ifc->vlan < 0 || ifc->vlan > 4094) {
        nb_error_set(err, NB_ERR_INVALID, "interface %zu: vlan %d is out of range", i, ifc->vlan);
        return -1;
    }
    if (ifc->target_dev && strlen(ifc->target_dev) > 15) {
        nb_error_set(err, NB_ERR_INVALID, "interface %zu: target device name is too long", i);
        return -1;
    }
    return 0;
}

static void iface_tap(struct nb_buf *b, const struct agent_domxml_iface *ifc)
{
    nb_buf_puts(b, "    <interface type='ethernet'>\n      <mac");
    attr(b, "address", ifc->mac);
    nb_buf_puts(b, "/>\n      <target");
    attr(b, "dev", ifc->target_dev);
    nb_buf_puts(b, " managed='no'/>\n      <model type='virtio'/>\n");
    if (ifc->no_tx_csum) {
        nb_buf_puts(b, "      <driver name='qemu'>\n        <host csum='off'/>\n      </driver>\n");
    }
    if (ifc->mtu > 0) {
        nb_buf_printf(b, "      <mtu size='%u'/>\n", ifc->mtu);
    }
    nb_buf_puts(b, "    </interface>\n");
}

static void iface(struct nb_buf *b, const struct agent_domxml_iface *ifc)
{
    if (ifc->kind == AGENT_DOMXML_IFACE_TAP) {
        iface_tap(b, ifc);
        return;
    }
    nb_buf_puts(b, "    <interface type='bridge'>\n      <mac");
    attr(b, "address", ifc->mac);
    nb_buf_puts(b, "/>\n      <source");
    attr(b, "bridge", ifc->bridge);
    nb_buf_puts(b, "/>\n      <virtualport type='openvswitch'");
    if (!empty(ifc->iface_id)) {
        nb_buf_puts(b, ">\n        <parameters");
        attr(b, "interfaceid", ifc->iface_id);
        nb_buf_puts(b, "/>\n      </virtualport>\n");
    } else {
        nb_buf_puts(b, "/>\n");
    }
    if (ifc->vlan > 0) {
        nb_buf_printf(b, "      <vlan>\n        <tag id='%d'/>\n      </vlan>\n", ifc->vlan);
    }
    if (!empty(ifc->target_dev)) {
        nb_buf_puts(b, "      <target");
        attr(b, "dev", ifc->target_dev);
        nb_buf_puts(b, "/>\n");
    }
    nb_buf_puts(b, "      <model type='virtio'/>\n");
    if (ifc->mtu > 0) {
        nb_buf_printf(b, "      <mtu size='%u'/>\n", ifc->mtu);
    }
    nb_buf_puts(b, "    </interface>\n");
}

static int check_spec(const struct agent_domxml_spec *s, struct nb_error *err)
{
    const char *missing = NULL;
    if (empty(s->instance_id)) {
        missing = "instance_id";
    } else if (empty(s->virt_type)) {
        missing = "virt_type";
    } else if (empty(s->root_disk)) {
        missing = "root_disk";
    } else if (empty(s->console_log)) {
        missing = "console_log";
    } else if (!empty(s->vnc_listen) && empty(s->vnc_password)) {
        missing = "vnc_password";
    }
    if (missing) {
        nb_error_set(err, NB_ERR_INVALID, "domain spec has no %s", missing);
        return -1;
    }
    if (!agent_virt_valid_id(s->instance_id)) {
        nb_error_set(err, NB_ERR_INVALID, "\"%s\" is not an instance id", s->instance_id);
        return -1;
    }
    if (strcmp(s->virt_type, "kvm") != 0 && strcmp(s->virt_type, "qemu") != 0) {
        nb_error_set(err, NB_ERR_INVALID, "virt_type \"%s\" is neither \"kvm\" nor \"qemu\"",
                     s->virt_type);
        return -1;
    }
    if (s->vcpus < 1 || s->vcpus > 256) {
        nb_error_set(err, NB_ERR_INVALID, "vcpus %u is out of range 1..256", s->vcpus);
        return -1;
    }
    if (s->memory_mib < 16 || s->memory_mib > 16UL * 1024 * 1024) {
        nb_error_set(err, NB_ERR_INVALID, "memory_mib %lu is out of range", s->memory_mib);
        return -1;
    }
    if (empty(s->kernel) && (!empty(s->initrd) || !empty(s->cmdline))) {
        nb_error_set(err, NB_ERR_INVALID, "initrd or cmdline given without a kernel");
        return -1;
    }
    for (size_t i = 0; i < s->n_ifaces; i++) {
        if (check_iface(&s->ifaces[i], i, err) < 0) {
            return -1;
        }
    }
    return 0;
}

char *agent_domxml_build(const struct agent_domxml_spec *s, struct nb_error *err)
{
    if (check_spec(s, err) < 0) {
        return NULL;
    }
    struct nb_buf b = NB_BUF_INIT;
    nb_buf_printf(&b, "<domain type='%s'>\n", s->virt_type);
    elem(&b, 2, "name", s->instance_id);
    if (!empty(s->uuid)) {
        elem(&b, 2, "uuid", s->uuid);
    }
    nb_buf_puts(&b, "  <metadata>\n");
    nb_buf_printf(&b, "    <%s:instance xmlns:%s='%s'>\n", AGENT_VIRT_PREFIX, AGENT_VIRT_PREFIX,
                  AGENT_VIRT_XMLNS);
    elem(&b, 6, AGENT_VIRT_PREFIX ":id", s->instance_id);
    elem(&b, 6, AGENT_VIRT_PREFIX ":tenant", s->tenant_id ? s->tenant_id : "");
    elem(&b, 6, AGENT_VIRT_PREFIX ":image", s->image_id ? s->image_id : "");
    if (!empty(s->instance_type)) {
        elem(&b, 6, AGENT_VIRT_PREFIX ":type", s->instance_type);
    }
    if (!empty(s->host_id)) {
        elem(&b, 6, AGENT_VIRT_PREFIX ":host", s->host_id);
    }
    nb_buf_printf(&b, "    </%s:instance>\n", AGENT_VIRT_PREFIX);
    nb_buf_puts(&b, "  </metadata>\n");
    nb_buf_printf(&b, "  <memory unit='MiB'>%lu</memory>\n", s->memory_mib);
    nb_buf_printf(&b, "  <vcpu placement='static'>%u</vcpu>\n", s->vcpus);

    nb_buf_puts(&b, "  <os>\n    <type arch='x86_64' machine='q35'>hvm</type>\n");
    if (!empty(s->kernel)) {
        elem(&b, 4, "kernel", s->kernel);
        if (!empty(s->initrd)) {
            elem(&b, 4, "initrd", s->initrd);
        }
        elem(&b, 4, "cmdline", empty(s->cmdline) ? "console=ttyS0" : s->cmdline);
    } else {
        nb_buf_puts(&b, "    <boot dev='hd'/>\n");
    }
    nb_buf_puts(&b, "  </os>\n");
    nb_buf_puts(&b, "  <features>\n    <acpi/>\n    <apic/>\n  </features>\n");
    /* host-model needs KVM; TCG gets QEMU's default CPU model. */
    if (strcmp(s->virt_type, "kvm") == 0) {
        nb_buf_puts(&b, "  <cpu mode='host-model'/>\n");
    }
    nb_buf_puts(&b, "  <clock offset='utc'/>\n");
    nb_buf_puts(&b, "  <on_poweroff>destroy</on_poweroff>\n");
    nb_buf_puts(&b, "  <on_reboot>restart</on_reboot>\n");
    nb_buf_puts(&b, "  <on_crash>destroy</on_crash>\n");

    nb_buf_puts(&b, "  <devices>\n");
    disk(&b, s->root_disk, "qcow2", "vda", false);
    if (!empty(s->ephemeral_disk)) {
        disk(&b, s->ephemeral_disk, "qcow2", "vdb", false);
    }
    if (!empty(s->config_drive)) {
        disk(&b, s->config_drive, "raw", "vdc", true);
    }
    for (size_t i = 0; i < s->n_ifaces; i++) {
        iface(&b, &s->ifaces[i]);
    }
    nb_buf_puts(&b, "    <serial type='pty'>\n      <log");
    attr(&b, "file", s->console_log);
    nb_buf_puts(&b, " append='on'/>\n      <target port='0'/>\n    </serial>\n");
    nb_buf_puts(&b, "    <console type='pty'>\n      <target type='serial' port='0'/>\n"
                    "    </console>\n");
    if (!empty(s->vnc_listen)) {
        nb_buf_puts(&b, "    <graphics type='vnc' port='-1' autoport='yes'");
        attr(&b, "listen", s->vnc_listen);
        attr(&b, "passwd", s->vnc_password);
        nb_buf_puts(&b, ">\n      <listen type='address'");
        attr(&b, "address", s->vnc_listen);
        nb_buf_puts(&b, "/>\n    </graphics>\n");
        nb_buf_puts(&b, "    <video>\n      <model type='vga'/>\n    </video>\n");
    }
    if (s->memballoon) {
        nb_buf_puts(&b, "    <memballoon model='virtio'>\n      <stats period='10'/>\n"
                        "    </memballoon>\n");
    } else {
        nb_buf_puts(&b, "    <memballoon model='none'/>\n");
    }
    nb_buf_puts(&b, "  </devices>\n</domain>\n");
    return nb_buf_steal(&b);
}
