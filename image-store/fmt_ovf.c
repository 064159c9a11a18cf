/* OVF descriptors (DMTF DSP0243, 1.x and 2.x): the parser keeps what an import needs (the files,
 * disks, networks, CPU and memory of the one virtual system) and refuses what could make the
 * importer read outside the archive (hrefs that are paths or URLs) or be abused through XML
 * itself (DTDs with entities, network access); the writer produces the descriptor of an export.
 * See imgfmt.h. */
#include "imgfmt.h"

#include "nubo/error.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#define OVF_NS1   "http://schemas.dmtf.org/ovf/envelope/1"
#define OVF_NS2   "http://schemas.dmtf.org/ovf/envelope/2"
#define CIM_NS    "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"
#define RASD_NS   CIM_NS "CIM_ResourceAllocationSettingData"
#define VSSD_NS   CIM_NS "CIM_VirtualSystemSettingData"
#define SASD_NS   CIM_NS "CIM_StorageAllocationSettingData"
#define EPASD_NS  CIM_NS "CIM_EthernetPortAllocationSettingData"
#define MIB       (UINT64_C(1) << 20)
#define MAX_MEM   (UINT64_C(4) << 40)
#define MAX_VCPUS 256

/* CIM ResourceType values. */
#define RT_CPU      3
#define RT_MEMORY   4
#define RT_ETHERNET 10
#define RT_DISK     17

/* ---- format URIs ------------------------------------------------------------------------- */

static const struct {
    const char *uri;
    const char *name;
} format_uris[] = {
    /* The first URI of each name is the one img_ovf_format_uri() gives. */
    {"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized", "vmdk"},
    {"http://www.vmware.com/interfaces/specifications/vmdk.html#sparse", "vmdk"},
    {"http://www.vmware.com/interfaces/specifications/vmdk.html#monolithicSparse", "vmdk"},
    {"http://www.vmware.com/specifications/vmdk.html#sparse", "vmdk"},
    {"http://www.vmware.com/specifications/vmdk.html#streamOptimized", "vmdk"},
    {"http://technet.microsoft.com/en-us/library/bb676673.aspx", "vhd"},
    {"http://go.microsoft.com/fwlink/?LinkId=137171", "vhd"},
    {"http://www.gnome.org/~markmc/qcow-image-format.html", "qcow2"},
    {"http://en.wikipedia.org/wiki/Byte", "raw"},
    {"http://www.qemu.org/raw", "raw"},
};

const char *img_ovf_format_name(const char *uri)
{
    for (size_t i = 0; i < sizeof format_uris / sizeof format_uris[0]; i++) {
        if (!strcmp(uri, format_uris[i].uri)) {
            return format_uris[i].name;
        }
    }
    return NULL;
}

const char *img_ovf_format_uri(const char *name)
{
    for (size_t i = 0; i < sizeof format_uris / sizeof format_uris[0]; i++) {
        if (!strcmp(name, format_uris[i].name)) {
            return format_uris[i].uri;
        }
    }
    return NULL;
}

/* ---- parsing helpers --------------------------------------------------------------------- */

static bool is_elem(xmlNodePtr n, const char *ns, const char *name)
{
    return n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
           !strcmp((const char *)n->ns->href, ns) && !strcmp((const char *)n->name, name);
}

/* The first child element of 'parent' named 'name' in namespace 'ns', or NULL. */
static xmlNodePtr first_child(xmlNodePtr parent, const char *ns, const char *name)
{
    for (xmlNodePtr n = parent->children; n; n = n->next) {
        if (is_elem(n, ns, name)) {
            return n;
        }
    }
    return NULL;
}

/* The attribute 'name' of 'n' in the OVF namespace 'ns' (or, as some producers write them,
 * without a namespace). Returns a string the caller xmlFree()s, or NULL when absent. */
static char *ovf_attr(xmlNodePtr n, const char *ns, const char *name)
{
    xmlChar *v = xmlGetNsProp(n, (const xmlChar *)name, (const xmlChar *)ns);
    if (!v) {
        v = xmlGetNoNsProp(n, (const xmlChar *)name);
    }
    return (char *)v;
}

/* The text of 'n' without leading and trailing blanks; the caller xmlFree()s it. */
static char *text_of(xmlNodePtr n)
{
    char *t = (char *)xmlNodeGetContent(n);
    if (!t) {
        return NULL;
    }
    size_t start = 0, len = strlen(t);
    while (start < len && isspace((unsigned char)t[start])) {
        start++;
    }
    while (len > start && isspace((unsigned char)t[len - 1])) {
        len--;
    }
    memmove(t, t + start, len - start);
    t[len - start] = '\0';
    return t;
}

/* Copies 'src' into 'dst' ('size' bytes) or fails: a cut identifier would name something else. */
static int copy_field(char *dst, size_t size, const char *src, const char *what,
                      struct nb_error *err)
{
    size_t len = strlen(src);
    if (len >= size) {
        nb_error_set(err, NB_ERR_INVALID, "ovf %s too long: %zu bytes (at most %zu)", what, len,
                     size - 1);
        return -1;
    }
    memcpy(dst, src, len + 1);
    return 0;
}

/* Copies the UTF-8 'src' into 'dst' ('size' bytes), cut at a character boundary if needed. */
static void copy_cut(char *dst, size_t size, const char *src)
{
    size_t len = strlen(src);
    if (len >= size) {
        len = size - 1;
        while (len > 0 && ((unsigned char)src[len] & 0xc0) == 0x80) {
            len--;
        }
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* Parses a decimal unsigned integer, blanks around it allowed. Returns 0 or -1. */
static int parse_u64(const char *s, uint64_t *out)
{
    while (isspace((unsigned char)*s)) {
        s++;
    }
    uint64_t v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10) {
            return -1;
        }
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (p == s) {
        return -1;
    }
    while (isspace((unsigned char)*p)) {
        p++;
    }
    if (*p) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Parses DSP0004 programmatic units of bytes ("byte", "byte * 2^20", "byte * 1024",
 * "byte*10^9") and the names older producers write ("KB", "MegaBytes", ...; binary multiples,
 * as VMware means them) into a multiplier. Returns 0 or -1. */
static int parse_units(const char *s, uint64_t *mult)
{
    static const struct {
        const char *name;
        unsigned shift;
    } legacy[] = {
        {"B", 0},          {"KB", 10},        {"MB", 20},        {"GB", 30},        {"TB", 40},
        {"KiloBytes", 10}, {"MegaBytes", 20}, {"GigaBytes", 30}, {"TeraBytes", 40}, {"KiB", 10},
        {"MiB", 20},       {"GiB", 30},       {"TiB", 40},       {"bytes", 0},      {"byte", 0},
    };
    char buf[64];
    size_t n = 0;
    for (const char *p = s; *p; p++) {
        if (!isspace((unsigned char)*p)) {
            if (n + 1 >= sizeof buf) {
                return -1;
            }
            buf[n++] = *p;
        }
    }
    buf[n] = '\0';
    for (size_t i = 0; i < sizeof legacy / sizeof legacy[0]; i++) {
        if (!strcasecmp(buf, legacy[i].name)) {
            *mult = UINT64_C(1) << legacy[i].shift;
            return 0;
        }
    }
    const char *p = buf;
    if (!strncasecmp(p, "bytes", 5)) {
        p += 5;
    } else if (!strncasecmp(p, "byte", 4)) {
        p += 4;
    } else {
        return -1;
    }
    if (*p++ != '*') {
        return -1;
    }
    uint64_t base = 0, exp = 1;
    const char *q = p;
    for (; *q >= '0' && *q <= '9' && base < (UINT64_C(1) << 40); q++) {
        base = base * 10 + (uint64_t)(*q - '0');
    }
    if (q == p || base == 0) {
        return -1;
    }
    if (*q == '^') {
        const char *r = ++q;
        exp = 0;
        for (; *q >= '0' && *q <= '9' && exp < 100; q++) {
            exp = exp * 10 + (uint64_t)(*q - '0');
        }
        if (q == r) {
            return -1;
        }
    }
    if (*q) {
        return -1;
    }
    uint64_t m = 1;
    for (uint64_t i = 0; i < exp; i++) {
        if (m > UINT64_MAX / base) {
            return -1;
        }
        m *= base;
    }
    *mult = m;
    return 0;
}

/* Multiplies without overflow; returns -1 if it would. */
static int mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    if (b && a > UINT64_MAX / b) {
        return -1;
    }
    *out = a * b;
    return 0;
}

/* ---- sections ---------------------------------------------------------------------------- */

/* What a parse in progress needs besides its output. */
struct ovf_parse {
    const char *ns; /* the envelope's namespace */
    struct img_ovf *out;
    struct nb_error *err;
    bool have_cpu, have_mem;
};

static int parse_file(struct ovf_parse *ps, xmlNodePtr n)
{
    struct img_ovf *o = ps->out;
    if (o->n_files == IMG_OVF_MAX_ITEMS) {
        nb_error_set(ps->err, NB_ERR_INVALID, "ovf descriptor has more than %d files",
                     IMG_OVF_MAX_ITEMS);
        return -1;
    }
    struct img_ovf_file *f = &o->files[o->n_files];
    char *id = ovf_attr(n, ps->ns, "id");
    char *href = ovf_attr(n, ps->ns, "href");
    char *size = ovf_attr(n, ps->ns, "size");
    char *comp = ovf_attr(n, ps->ns, "compression");
    char *chunk = ovf_attr(n, ps->ns, "chunkSize");
    int rc = -1;
    if (!id || !*id || !href) {
        nb_error_set(ps->err, NB_ERR_INVALID, "ovf File without ovf:id or ovf:href");
        goto cleanup;
    }
    if (copy_field(f->id, sizeof f->id, id, "File id", ps->err) < 0 ||
        copy_field(f->href, sizeof f->href, href, "File href", ps->err) < 0) {
        goto cleanup;
    }
    if (!img_name_plain(href)) {
        nb_error_set(ps->err, NB_ERR_INVALID,
                     "ovf File \"%s\" href \"%s\" refused: not a plain relative file name (no "
                     "\"/\", \"..\" or url scheme)",
                     f->id, f->href);
        goto cleanup;
    }
    if (size && parse_u64(size, &f->size) < 0) {
        nb_error_set(ps->err, NB_ERR_INVALID, "ovf File \"%s\" size \"%.32s\" is not a number",
                     f->id, size);
        goto cleanup;
    }
    /* gzip-compressed or chunked files would need their own reader. */
    if ((comp && *comp && strcmp(comp, "identity")) || chunk) {
        nb_error_set(ps->err, NB_ERR_INVALID,
                     "ovf File \"%s\" is compressed or chunked: not supported", f->id);
        goto cleanup;
    }
    for (size_t i = 0; i < o->n_files; i++) {
        if (!strcmp(o->files[i].id, f->id) || !strcmp(o->files[i].href, f->href)) {
            nb_error_set(ps->err, NB_ERR_INVALID, "ovf File \"%s\" (\"%s\") declared twice", f->id,
                         f->href);
            goto cleanup;
        }
    }
    o->n_files++;
    rc = 0;
cleanup:
    xmlFree(id);
    xmlFree(href);
    xmlFree(size);
    xmlFree(comp);
    xmlFree(chunk);
    return rc;
}

static int parse_disk(struct ovf_parse *ps, xmlNodePtr n)
{
    struct img_ovf *o = ps->out;
    if (o->n_disks == IMG_OVF_MAX_ITEMS) {
        nb_error_set(ps->err, NB_ERR_INVALID, "ovf descriptor has more than %d disks",
                     IMG_OVF_MAX_ITEMS);
        return -1;
    }
    struct img_ovf_disk *d = &o->disks[o->n_disks];
    char *id = ovf_attr(n, ps->ns, "diskId");
    char *ref = ovf_attr(n, ps->ns, "fileRef");
    char *cap = ovf_attr(n, ps->ns, "capacity");
    char *units = ovf_attr(n, ps->ns, "capacityAllocationUnits");
    char *fmt = ovf_attr(n, ps->ns, "format");
    char *parent = ovf_attr(n, ps->ns, "parentRef");
    uint64_t count = 0, mult = 1;
    int rc = -1;
    if (!id || !*id) {
        nb_error_set(ps->err, NB_ERR_INVALID, "ovf Disk without ovf:diskId");
        goto cleanup;
    }
    if (copy_field(d->disk_id, sizeof d->disk_id, id, "Disk id", ps->err) < 0) {
        goto cleanup;
    }
    if (!ref || !*ref) {
        nb_error_set(ps->err, NB_ERR_INVALID,
                     "ovf Disk \"%s\" has no ovf:fileRef (blank disks are not supported)",
                     d->disk_id);
        goto cleanup;
    }
    if (parent) {
        nb_error_set(ps->err, NB_ERR_INVALID, "ovf Disk \"%s\" refused: it names a parent disk",
                     d->disk_id);
        goto cleanup;
    }
    if (copy_field(d->file_ref, sizeof d->file_ref, ref, "Disk fileRef", ps->err) < 0 ||
        copy_field(d->format, sizeof d->format, fmt ? fmt : "", "Disk format", ps->err) < 0) {
        goto cleanup;
    }
    if (!cap || parse_u64(cap, &count) < 0 || count == 0) {
        nb_error_set(ps->err, NB_ERR_INVALID,
                     "ovf Disk \"%s\" capacity \"%.32s\" is not a positive number", d->disk_id,
                     cap ? cap : "");
        goto cleanup;
    }
    if (units && parse_units(units, &mult) < 0) {
        nb_error_set(ps->err, NB_ERR_INVALID,
                     "ovf Disk \"%s\" capacityAllocationUnits \"%.32s\" not understood", d->disk_id,
                     units);
        goto cleanup;
    }
    if (mul_u64(count, mult, &d->capacity_bytes) < 0 || d->capacity_bytes > IMG_DISK_MAX_VIRTUAL) {
        nb_error_set(ps->err, NB_ERR_INVALID, "ovf Disk \"%s\" capacity exceeds 64 TiB",
                     d->disk_id);
        goto cleanup;
    }
    for (size_t i = 0; i < o->n_disks; i++) {
        if (!strcmp(o->disks[i].disk_id, d->disk_id)) {
            nb_error_set(ps->err, NB_ERR_INVALID, "ovf Disk \"%s\" declared twice", d->disk_id);
            goto cleanup;
        }
    }
    o->n_disks++;
    rc = 0;
cleanup:
    xmlFree(id);
    xmlFree(ref);
    xmlFree(cap);
    xmlFree(units);
    xmlFree(fmt);
    xmlFree(parent);
    return rc;
}

static int parse_network(struct ovf_parse *ps, xmlNodePtr n)
{
    struct img_ovf *o = ps->out;
    if (o->n_nets == IMG_OVF_MAX_ITEMS) {
        nb_error_set(ps->err, NB_ERR_INVALID, "ovf descriptor has more than %d networks",
                     IMG_OVF_MAX_ITEMS);
        return -1;
    }
    char *name = ovf_attr(n, ps->ns, "name");
    int rc = -1;
    if (!name || !*name) {
        nb_error_set(ps->err, NB_ERR_INVALID, "ovf Network without ovf:name");
    } else if (copy_field(o->nets[o->n_nets].name, sizeof o->nets[0].name, name, "Network name",
                          ps->err) == 0) {
        o->n_nets++;
        rc = 0;
    }
    xmlFree(name);
    return rc;
}

/* True if 'n' is in one of the CIM settings namespaces an Item's properties use. */
static bool cim_prop(xmlNodePtr n, const char *name)
{
    return is_elem(n, RASD_NS, name) || is_elem(n, SASD_NS, name) || is_elem(n, EPASD_NS, name);
}

/* The text of the first property 'name' of the item 'item' (caller xmlFree()s), or NULL. */
static char *item_prop(xmlNodePtr item, const char *name)
{
    for (xmlNodePtr n = item->children; n; n = n->next) {
        if (cim_prop(n, name)) {
            return text_of(n);
        }
    }
    return NULL;
}

/* Checks that 'host' ("ovf:/disk/ID" or "ovf:/file/ID") names a declared disk or file. */
static int check_host_resource(struct ovf_parse *ps, const char *host)
{
    const struct img_ovf *o = ps->out;
    const char *p = !strncmp(host, "ovf:", 4) ? host + 4 : host;
    if (!strncmp(p, "/disk/", 6)) {
        for (size_t i = 0; i < o->n_disks; i++) {
            if (!strcmp(o->disks[i].disk_id, p + 6)) {
                return 0;
            }
        }
    } else if (!strncmp(p, "/file/", 6)) {
        for (size_t i = 0; i < o->n_files; i++) {
            if (!strcmp(o->files[i].id, p + 6)) {
                return 0;
            }
        }
    } else {
        return 0;
    }
    nb_error_set(ps->err, NB_ERR_INVALID,
                 "ovf disk item HostResource \"%.100s\" names no Disk or File of the descriptor",
                 host);
    return -1;
}

static int parse_item(struct ovf_parse *ps, xmlNodePtr item)
{
    char *type = item_prop(item, "ResourceType");
    char *qty = item_prop(item, "VirtualQuantity");
    char *units = item_prop(item, "AllocationUnits");
    uint64_t rt = 0, q = 0;
    int rc = -1;
    if (!type || parse_u64(type, &rt) < 0) {
        nb_error_set(ps->err, NB_ERR_INVALID, "ovf hardware Item without a valid ResourceType");
        goto cleanup;
    }
    if (rt == RT_CPU) {
        if (ps->have_cpu) {
            nb_error_set(ps->err, NB_ERR_INVALID, "ovf descriptor has more than one cpu Item");
            goto cleanup;
        }
        if (!qty || parse_u64(qty, &q) < 0 || q < 1 || q > MAX_VCPUS) {
            nb_error_set(ps->err, NB_ERR_INVALID, "ovf vcpus \"%.32s\" out of range 1..%d",
                         qty ? qty : "", MAX_VCPUS);
            goto cleanup;
        }
        ps->out->vcpus = (int)q;
        ps->have_cpu = true;
    } else if (rt == RT_MEMORY) {
        uint64_t mult = MIB, bytes = 0;
        if (ps->have_mem) {
            nb_error_set(ps->err, NB_ERR_INVALID, "ovf descriptor has more than one memory Item");
            goto cleanup;
        }
        if (units && parse_units(units, &mult) < 0) {
            nb_error_set(ps->err, NB_ERR_INVALID,
                         "ovf memory AllocationUnits \"%.32s\" not understood", units);
            goto cleanup;
        }
        if (!qty || parse_u64(qty, &q) < 0 || mul_u64(q, mult, &bytes) < 0 || bytes < MIB ||
            bytes > MAX_MEM) {
            nb_error_set(ps->err, NB_ERR_INVALID,
                         "ovf memory \"%.32s\" x %" PRIu64 " bytes out of range 1 MiB..4 TiB",
                         qty ? qty : "", mult);
            goto cleanup;
        }
        ps->out->memory_mib = (bytes + MIB - 1) / MIB;
        ps->have_mem = true;
    } else if (rt == RT_DISK) {
        char *host = item_prop(item, "HostResource");
        int hrc = host ? check_host_resource(ps, host) : 0;
        xmlFree(host);
        if (hrc < 0) {
            goto cleanup;
        }
    }
    rc = 0;
cleanup:
    xmlFree(type);
    xmlFree(qty);
    xmlFree(units);
    return rc;
}

static int parse_virtual_system(struct ovf_parse *ps, xmlNodePtr vs)
{
    struct img_ovf *o = ps->out;
    char *id = ovf_attr(vs, ps->ns, "id");
    int rc = -1;
    if (id && *id) {
        rc = copy_field(o->name, sizeof o->name, id, "VirtualSystem id", ps->err);
    } else {
        xmlNodePtr name = first_child(vs, ps->ns, "Name");
        char *t = name ? text_of(name) : NULL;
        if (!t || !*t) {
            nb_error_set(ps->err, NB_ERR_INVALID, "ovf VirtualSystem has neither ovf:id nor Name");
        } else {
            rc = copy_field(o->name, sizeof o->name, t, "VirtualSystem name", ps->err);
        }
        xmlFree(t);
    }
    xmlFree(id);
    if (rc < 0) {
        return -1;
    }
    xmlNodePtr os = first_child(vs, ps->ns, "OperatingSystemSection");
    xmlNodePtr desc = os ? first_child(os, ps->ns, "Description") : NULL;
    if (desc) {
        char *t = text_of(desc);
        copy_cut(o->os_description, sizeof o->os_description, t ? t : "");
        xmlFree(t);
    }
    /* OVF 2 may offer several VirtualHardwareSections (one per hypervisor); the first one. */
    xmlNodePtr hw = first_child(vs, ps->ns, "VirtualHardwareSection");
    if (!hw) {
        nb_error_set(ps->err, NB_ERR_INVALID, "ovf VirtualSystem has no VirtualHardwareSection");
        return -1;
    }
    for (xmlNodePtr n = hw->children; n; n = n->next) {
        if ((is_elem(n, ps->ns, "Item") || is_elem(n, ps->ns, "StorageItem") ||
             is_elem(n, ps->ns, "EthernetPortItem")) &&
            parse_item(ps, n) < 0) {
            return -1;
        }
    }
    if (!ps->have_cpu) {
        nb_error_set(ps->err, NB_ERR_INVALID, "ovf descriptor declares no cpu Item");
        return -1;
    }
    if (!ps->have_mem) {
        nb_error_set(ps->err, NB_ERR_INVALID, "ovf descriptor declares no memory Item");
        return -1;
    }
    return 0;
}

static int parse_envelope(struct ovf_parse *ps, xmlNodePtr env)
{
    struct img_ovf *o = ps->out;
    xmlNodePtr vs = NULL;
    int n_vs = 0;
    for (xmlNodePtr n = env->children; n; n = n->next) {
        if (is_elem(n, ps->ns, "References")) {
            for (xmlNodePtr f = n->children; f; f = f->next) {
                if (is_elem(f, ps->ns, "File") && parse_file(ps, f) < 0) {
                    return -1;
                }
            }
        } else if (is_elem(n, ps->ns, "DiskSection")) {
            for (xmlNodePtr d = n->children; d; d = d->next) {
                if (is_elem(d, ps->ns, "Disk") && parse_disk(ps, d) < 0) {
                    return -1;
                }
            }
        } else if (is_elem(n, ps->ns, "NetworkSection")) {
            for (xmlNodePtr w = n->children; w; w = w->next) {
                if (is_elem(w, ps->ns, "Network") && parse_network(ps, w) < 0) {
                    return -1;
                }
            }
        } else if (is_elem(n, ps->ns, "VirtualSystemCollection")) {
            nb_error_set(ps->err, NB_ERR_INVALID,
                         "ovf VirtualSystemCollection refused: exactly one VirtualSystem is "
                         "supported");
            return -1;
        } else if (is_elem(n, ps->ns, "VirtualSystem")) {
            vs = n;
            n_vs++;
        }
    }
    if (n_vs != 1) {
        nb_error_set(ps->err, NB_ERR_INVALID,
                     "ovf descriptor must hold exactly one VirtualSystem, found %d", n_vs);
        return -1;
    }
    if (o->n_disks == 0) {
        nb_error_set(ps->err, NB_ERR_INVALID, "ovf descriptor declares no Disk");
        return -1;
    }
    for (size_t i = 0; i < o->n_disks; i++) {
        size_t f = 0;
        while (f < o->n_files && strcmp(o->files[f].id, o->disks[i].file_ref)) {
            f++;
        }
        if (f == o->n_files) {
            nb_error_set(ps->err, NB_ERR_INVALID,
                         "ovf Disk \"%s\" fileRef \"%s\" names no File of the References",
                         o->disks[i].disk_id, o->disks[i].file_ref);
            return -1;
        }
    }
    return parse_virtual_system(ps, vs);
}

int img_ovf_parse(const char *xml, size_t len, struct img_ovf *out, struct nb_error *err)
{
    memset(out, 0, sizeof *out);
    if (len > IMG_OVF_MAX_LEN) {
        nb_error_set(err, NB_ERR_INVALID, "ovf descriptor too large: %zu bytes (at most %u)", len,
                     IMG_OVF_MAX_LEN);
        return -1;
    }
    xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
    if (!ctxt) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        return -1;
    }
    /* No XML_PARSE_NOENT (entities stay unexpanded), no DTD loading, no network. */
    xmlDocPtr doc = xmlCtxtReadMemory(ctxt, xml, (int)len, "descriptor.ovf", NULL,
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    int rc = -1;
    if (!doc) {
        const xmlError *e = xmlCtxtGetLastError(ctxt);
        char msg[200];
        copy_cut(msg, sizeof msg, e && e->message ? e->message : "unknown error");
        size_t n = strlen(msg);
        while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) {
            msg[--n] = '\0';
        }
        nb_error_set(err, NB_ERR_INVALID, "ovf descriptor is not well-formed xml: line %d: %s",
                     e ? e->line : 0, msg);
        goto cleanup;
    }
    if (doc->intSubset || doc->extSubset) {
        nb_error_set(err, NB_ERR_INVALID,
                     "ovf descriptor with a DOCTYPE refused: no dtd or entity is allowed");
        goto cleanup;
    }
    xmlNodePtr root = xmlDocGetRootElement(doc);
    struct ovf_parse ps = {.out = out, .err = err};
    if (root && is_elem(root, OVF_NS1, "Envelope")) {
        ps.ns = OVF_NS1;
    } else if (root && is_elem(root, OVF_NS2, "Envelope")) {
        ps.ns = OVF_NS2;
    } else {
        nb_error_set(err, NB_ERR_INVALID,
                     "ovf descriptor root is not an Envelope in the ovf namespace " OVF_NS1
                     " or " OVF_NS2);
        goto cleanup;
    }
    rc = parse_envelope(&ps, root);
cleanup:
    if (rc < 0) {
        memset(out, 0, sizeof *out);
    }
    xmlFreeDoc(doc);
    xmlFreeParserCtxt(ctxt);
    return rc;
}

/* ---- writer ------------------------------------------------------------------------------ */

struct ovf_writer {
    xmlNsPtr def;             /* the default namespace of the envelope's elements */
    xmlNsPtr ovf, rasd, vssd; /* prefixed, for attributes and properties */
    bool oom;
};

/* Adds the element 'name' (namespace 'ns', text 'text' escaped, or none when NULL) to 'parent'.
 * Returns it, or NULL (then 'w->oom' is set) if it or 'parent' could not be made. */
static xmlNodePtr add(struct ovf_writer *w, xmlNodePtr parent, xmlNsPtr ns, const char *name,
                      const char *text)
{
    xmlNodePtr n =
        parent ? xmlNewTextChild(parent, ns, (const xmlChar *)name, (const xmlChar *)text) : NULL;
    if (!n) {
        w->oom = true;
    }
    return n;
}

static void attr(struct ovf_writer *w, xmlNodePtr n, const char *name, const char *value)
{
    if (!n || !xmlNewNsProp(n, w->ovf, (const xmlChar *)name, (const xmlChar *)value)) {
        w->oom = true;
    }
}

/* Adds a rasd Item; 'props' are name/value pairs in the schema's (alphabetical) order, the
 * list ending with a NULL name; a NULL value skips its property. */
static void add_item(struct ovf_writer *w, xmlNodePtr hw, const char *const *props)
{
    xmlNodePtr item = add(w, hw, w->def, "Item", NULL);
    for (size_t i = 0; props[i]; i += 2) {
        if (props[i + 1]) {
            add(w, item, w->rasd, props[i], props[i + 1]);
        }
    }
}

static void write_hardware(struct ovf_writer *w, xmlNodePtr vs, const struct img_ovf *ovf)
{
    char buf[64], buf2[64], id[16], parent[16], addr[16], host[80];
    xmlNodePtr hw = add(w, vs, w->def, "VirtualHardwareSection", NULL);
    add(w, hw, w->def, "Info", "Virtual hardware requirements");
    xmlNodePtr sys = add(w, hw, w->def, "System", NULL);
    add(w, sys, w->vssd, "ElementName", "Virtual Hardware Family");
    add(w, sys, w->vssd, "InstanceID", "0");
    add(w, sys, w->vssd, "VirtualSystemIdentifier", ovf->name);
    add(w, sys, w->vssd, "VirtualSystemType", "vmx-07");

    snprintf(buf, sizeof buf, "%d virtual CPU(s)", ovf->vcpus);
    snprintf(buf2, sizeof buf2, "%d", ovf->vcpus);
    add_item(w, hw,
             (const char *const[]){"AllocationUnits", "hertz * 10^6", "Description",
                                   "Number of Virtual CPUs", "ElementName", buf, "InstanceID", "1",
                                   "ResourceType", "3", "VirtualQuantity", buf2, NULL});
    snprintf(buf, sizeof buf, "%" PRIu64 "MB of memory", ovf->memory_mib);
    snprintf(buf2, sizeof buf2, "%" PRIu64, ovf->memory_mib);
    add_item(w, hw,
             (const char *const[]){"AllocationUnits", "byte * 2^20", "Description", "Memory Size",
                                   "ElementName", buf, "InstanceID", "2", "ResourceType", "4",
                                   "VirtualQuantity", buf2, NULL});
    size_t n_disks = ovf->n_disks < IMG_OVF_MAX_ITEMS ? ovf->n_disks : IMG_OVF_MAX_ITEMS;
    size_t n_nets = ovf->n_nets < IMG_OVF_MAX_ITEMS ? ovf->n_nets : IMG_OVF_MAX_ITEMS;
    /* SCSI controllers of 7 disks each (unit 7 belongs to the controller), ids 3, 4, 5. */
    size_t n_ctl = (n_disks + 6) / 7;
    for (size_t c = 0; c < n_ctl; c++) {
        snprintf(buf, sizeof buf, "SCSI Controller %zu", c);
        snprintf(id, sizeof id, "%zu", 3 + c);
        snprintf(addr, sizeof addr, "%zu", c);
        add_item(w, hw,
                 (const char *const[]){"Address", addr, "Description", "SCSI Controller",
                                       "ElementName", buf, "InstanceID", id, "ResourceSubType",
                                       "lsilogic", "ResourceType", "6", NULL});
    }
    size_t next_id = 3 + n_ctl;
    for (size_t i = 0; i < n_disks; i++, next_id++) {
        snprintf(buf, sizeof buf, "Hard Disk %zu", i + 1);
        snprintf(id, sizeof id, "%zu", next_id);
        snprintf(parent, sizeof parent, "%zu", 3 + i / 7);
        snprintf(addr, sizeof addr, "%zu", i % 7);
        snprintf(host, sizeof host, "ovf:/disk/%s", ovf->disks[i].disk_id);
        add_item(w, hw,
                 (const char *const[]){"AddressOnParent", addr, "ElementName", buf, "HostResource",
                                       host, "InstanceID", id, "Parent", parent, "ResourceType",
                                       "17", NULL});
    }
    for (size_t i = 0; i < n_nets; i++, next_id++) {
        snprintf(buf, sizeof buf, "Ethernet adapter %zu", i + 1);
        snprintf(id, sizeof id, "%zu", next_id);
        add_item(w, hw,
                 (const char *const[]){"AutomaticAllocation", "true", "Connection",
                                       ovf->nets[i].name, "ElementName", buf, "InstanceID", id,
                                       "ResourceSubType", "VmxNet3", "ResourceType", "10", NULL});
    }
}

char *img_ovf_write(const struct img_ovf *ovf)
{
    struct ovf_writer w = {0};
    char num[32];
    char *result = NULL;
    xmlDocPtr doc = xmlNewDoc((const xmlChar *)"1.0");
    xmlNodePtr env = doc ? xmlNewDocNode(doc, NULL, (const xmlChar *)"Envelope", NULL) : NULL;
    if (!env) {
        xmlFreeDoc(doc);
        return NULL;
    }
    xmlDocSetRootElement(doc, env);
    xmlNsPtr def = w.def = xmlNewNs(env, (const xmlChar *)OVF_NS1, NULL);
    w.ovf = xmlNewNs(env, (const xmlChar *)OVF_NS1, (const xmlChar *)"ovf");
    w.rasd = xmlNewNs(env, (const xmlChar *)RASD_NS, (const xmlChar *)"rasd");
    w.vssd = xmlNewNs(env, (const xmlChar *)VSSD_NS, (const xmlChar *)"vssd");
    if (!def || !w.ovf || !w.rasd || !w.vssd) {
        xmlFreeDoc(doc);
        return NULL;
    }
    xmlSetNs(env, def);
    attr(&w, env, "version", "1.0");

    size_t n_files = ovf->n_files < IMG_OVF_MAX_ITEMS ? ovf->n_files : IMG_OVF_MAX_ITEMS;
    size_t n_disks = ovf->n_disks < IMG_OVF_MAX_ITEMS ? ovf->n_disks : IMG_OVF_MAX_ITEMS;
    size_t n_nets = ovf->n_nets < IMG_OVF_MAX_ITEMS ? ovf->n_nets : IMG_OVF_MAX_ITEMS;
    xmlNodePtr refs = add(&w, env, def, "References", NULL);
    for (size_t i = 0; i < n_files; i++) {
        xmlNodePtr f = add(&w, refs, def, "File", NULL);
        attr(&w, f, "href", ovf->files[i].href);
        attr(&w, f, "id", ovf->files[i].id);
        if (ovf->files[i].size) {
            snprintf(num, sizeof num, "%" PRIu64, ovf->files[i].size);
            attr(&w, f, "size", num);
        }
    }
    xmlNodePtr ds = add(&w, env, def, "DiskSection", NULL);
    add(&w, ds, def, "Info", "Virtual disk information");
    for (size_t i = 0; i < n_disks; i++) {
        const struct img_ovf_disk *d = &ovf->disks[i];
        xmlNodePtr dn = add(&w, ds, def, "Disk", NULL);
        unsigned shift = d->capacity_bytes && !(d->capacity_bytes & ((UINT64_C(1) << 30) - 1)) ? 30
                         : d->capacity_bytes && !(d->capacity_bytes & (MIB - 1))               ? 20
                                                                                               : 0;
        snprintf(num, sizeof num, "%" PRIu64, d->capacity_bytes >> shift);
        attr(&w, dn, "capacity", num);
        attr(&w, dn, "capacityAllocationUnits",
             shift == 30   ? "byte * 2^30"
             : shift == 20 ? "byte * 2^20"
                           : "byte");
        attr(&w, dn, "diskId", d->disk_id);
        attr(&w, dn, "fileRef", d->file_ref);
        if (d->format[0]) {
            attr(&w, dn, "format", d->format);
        }
    }
    if (n_nets) {
        xmlNodePtr ns = add(&w, env, def, "NetworkSection", NULL);
        add(&w, ns, def, "Info", "The list of logical networks");
        for (size_t i = 0; i < n_nets; i++) {
            xmlNodePtr net = add(&w, ns, def, "Network", NULL);
            attr(&w, net, "name", ovf->nets[i].name);
            add(&w, net, def, "Description", "A network");
        }
    }
    xmlNodePtr vs = add(&w, env, def, "VirtualSystem", NULL);
    attr(&w, vs, "id", ovf->name);
    add(&w, vs, def, "Info", "A virtual machine");
    add(&w, vs, def, "Name", ovf->name);
    if (ovf->os_description[0]) {
        xmlNodePtr os = add(&w, vs, def, "OperatingSystemSection", NULL);
        attr(&w, os, "id", "1");
        add(&w, os, def, "Info", "The guest operating system");
        add(&w, os, def, "Description", ovf->os_description);
    }
    write_hardware(&w, vs, ovf);

    xmlChar *mem = NULL;
    int size = 0;
    if (!w.oom) {
        xmlDocDumpFormatMemoryEnc(doc, &mem, &size, "UTF-8", 1);
    }
    if (mem && size >= 0) {
        result = malloc((size_t)size + 1);
        if (result) {
            memcpy(result, mem, (size_t)size);
            result[size] = '\0';
        }
    }
    xmlFree(mem);
    xmlFreeDoc(doc);
    return result;
}
