/* The image store's format parsers: disk image formats (qcow2, VHD, VMDK, raw), OVF descriptors
 * and OVA archives (tar), checked before an upload or an import becomes an image.
 *
 * Everything here is pure: the parsers do no I/O of their own. Image bytes are read through a
 * caller-supplied 'img_read_fn' (a file, an object-store writer being validated, memory), and
 * every field that comes from the data is checked before it is used as an offset or a size.
 * Nothing is allocated in proportion to a field of the data without a cap: large tables are
 * read in pieces of at most 64 KiB, digests are computed through one 1 MiB buffer.
 *
 * Thread-safety: all functions are reentrant; they keep no state between calls and may run in
 * many threads at once on different arguments. The OVF functions use libxml2, whose
 * xmlInitParser() the program must call once before it starts threads (as every libxml2 user
 * must, libxml2 < 2.11). */
#ifndef NUBO_IMAGE_IMGFMT_H
#define NUBO_IMAGE_IMGFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nb_error;

/* Reads up to 'len' bytes at 'off' into 'buf'; returns the bytes read (short only at the end of
 * the data), or -1 with 'err' set. Called from the thread that called the parser. */
typedef int64_t (*img_read_fn)(void *ctx, void *buf, size_t len, uint64_t off,
                               struct nb_error *err);

/* An img_read_fn over an open file: 'ctx' points to its descriptor (an int); reads with
 * pread(). */
int64_t img_read_fd(void *ctx, void *buf, size_t len, uint64_t off, struct nb_error *err);

/* Reads exactly 'len' bytes at 'off' through 'rd' into 'buf'. Returns 0, or -1 with 'err' (read
 * errors of 'rd' passed up; NB_ERR_IO "short read at offset ..." if the data ends first). */
int img_read_full(img_read_fn rd, void *ctx, void *buf, size_t len, uint64_t off,
                  struct nb_error *err);

/* The largest virtual size accepted in any format: 64 TiB. */
#define IMG_DISK_MAX_VIRTUAL (UINT64_C(64) << 40)

struct img_disk_info {
    char format[16];       /* "raw", "qcow2", "vhd", "vmdk" */
    char subformat[32];    /* qcow2: "v2"/"v3"; vhd: "fixed"/"dynamic";
                            * vmdk: "monolithicSparse"/"streamOptimized"; raw: "" */
    uint64_t virtual_size; /* bytes the guest sees */
};

/* Detects the format of the 'size' bytes read through 'rd' (called with 'ctx') and validates
 * its structure: a qcow2 may not be encrypted or name a backing file or an external data file,
 * a VHD may not be differencing, a VMDK must be a single sparse extent (a text descriptor that
 * names other files is refused), and every table the format has lies inside the data. Anything
 * that is none of these formats is "raw" (size > 0).
 *
 * 'expect' NULL detects; otherwise ("raw", "qcow2", "vhd", "vmdk") the data must be of that
 * format, else NB_ERR_INVALID naming the format found.
 *
 * Fills '*out' and returns 0, or returns -1 with 'err': NB_ERR_INVALID with a reason naming
 * what is wrong (e.g. "vhd footer checksum mismatch: ..."), read errors of 'rd' passed up,
 * NB_ERR_IO if 'rd' returns less than 'size' promised. Reads only headers and tables. */
int img_disk_probe(img_read_fn rd, void *ctx, uint64_t size, const char *expect,
                   struct img_disk_info *out, struct nb_error *err);

/* True if 'name' is a plain relative file name, safe to use as a name inside an archive or a
 * directory: 1..255 bytes, not "." or "..", no "/" or "\", no ":" (so no URL scheme and no
 * drive letter), no control characters. */
bool img_name_plain(const char *name);

/* ---- OVF descriptors --------------------------------------------------------------------- */

#define IMG_OVF_MAX_ITEMS 16
#define IMG_OVF_MAX_LEN   (1u << 20) /* the largest descriptor accepted */

struct img_ovf_file { /* References/File */
    char id[64];
    char href[256]; /* a plain file name (img_name_plain) */
    uint64_t size;  /* ovf:size, 0 when not given */
};

struct img_ovf_disk {        /* DiskSection/Disk */
    char disk_id[64];        /* ovf:diskId */
    char file_ref[64];       /* ovf:fileRef: the id of one of the files */
    uint64_t capacity_bytes; /* ovf:capacity times ovf:capacityAllocationUnits ("byte * 2^30") */
    char format[256];        /* ovf:format, a URI (img_ovf_format_name() maps it), or "" */
};

struct img_ovf_net { /* NetworkSection/Network */
    char name[64];
};

struct img_ovf {
    char name[128];           /* VirtualSystem ovf:id, or its Name when it has no id */
    char os_description[128]; /* OperatingSystemSection/Description, "" if none (truncated) */
    int vcpus;                /* VirtualHardwareSection Item ResourceType 3 VirtualQuantity */
    uint64_t memory_mib;      /* ResourceType 4, honouring AllocationUnits (byte * 2^20 etc.) */
    struct img_ovf_file files[IMG_OVF_MAX_ITEMS];
    size_t n_files;
    struct img_ovf_disk disks[IMG_OVF_MAX_ITEMS];
    size_t n_disks;
    struct img_ovf_net nets[IMG_OVF_MAX_ITEMS];
    size_t n_nets;
};

/* Parses the OVF 1.x/2.x descriptor 'xml' ('len' bytes, at most IMG_OVF_MAX_LEN) into '*out'.
 *
 * Namespace-aware: the Envelope and its sections must be in the OVF envelope namespace
 * (http://schemas.dmtf.org/ovf/envelope/1 or /2), Item properties in the CIM rasd namespace.
 * No network access and no entities: a document with a DTD (where entities are declared) is
 * refused before anything is read from it.
 *
 * Checks: exactly one VirtualSystem (no VirtualSystemCollection), every Disk's fileRef names a
 * File, ids are unique, hrefs are plain relative file names (img_name_plain), at least one
 * disk, at most IMG_OVF_MAX_ITEMS files, disks and networks, vcpus 1..256, memory 1 MiB..4 TiB,
 * disk HostResources name a Disk. A value that does not fit its field is refused, not cut
 * (except os_description, which is only informative).
 *
 * Returns 0, or -1 with 'err' (NB_ERR_INVALID saying what is wrong). */
int img_ovf_parse(const char *xml, size_t len, struct img_ovf *out, struct nb_error *err);

/* Writes an OVF 1.0 descriptor for 'ovf': References with the files, DiskSection with the
 * disks (capacities in bytes, format URIs as given), NetworkSection, and one VirtualSystem
 * with its OperatingSystemSection (when os_description is not "") and a VirtualHardwareSection
 * with the CPU and memory items, one disk item per disk and one ethernet item per network.
 * Strings must be UTF-8. The output parses back with img_ovf_parse() to the same struct.
 *
 * Returns a malloc()ed NUL-terminated string the caller free()s, or NULL on out of memory. */
char *img_ovf_write(const struct img_ovf *ovf);

/* Maps an OVF disk format URI to our format name: the VMDK URIs
 * "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized" and "...#sparse"
 * (and "...#monolithicSparse") to "vmdk", VHD's
 * "http://technet.microsoft.com/en-us/library/bb676673.aspx" to "vhd", qcow2's
 * "http://www.gnome.org/~markmc/qcow-image-format.html" to "qcow2", and the raw URIs to "raw".
 * Returns a static string, or NULL if the URI is unknown. */
const char *img_ovf_format_name(const char *uri);

/* The URI img_ovf_write() callers use for our format 'name' ("vmdk" gives the streamOptimized
 * one). Returns a static string, or NULL if 'name' is unknown. */
const char *img_ovf_format_uri(const char *name);

/* ---- OVA archives ------------------------------------------------------------------------ */

#define IMG_OVA_MAX_ENTRIES 64

struct img_ova_entry {
    char name[256];
    uint64_t offset; /* of the data in the archive */
    uint64_t size;
};

struct img_ova {
    struct img_ova_entry entries[IMG_OVA_MAX_ENTRIES];
    size_t n;
};

/* Walks the tar headers of the 'size' bytes read through 'rd': ustar, GNU (long names, base-256
 * sizes) and pax (path and size records) headers, each header's checksum verified. Only regular
 * files are accepted (directories, links, devices and fifos are refused); names must be plain
 * file names (a leading "./" is dropped) and unique; every entry's data lies inside 'size'. The
 * archive ends with a zero block (which may not be followed by another header) or at 'size'.
 *
 * Fills '*out' in archive order and returns 0, or returns -1 with 'err' (NB_ERR_INVALID naming
 * the entry or the offset at fault, read errors passed up). Reads headers only. */
int img_ova_scan(img_read_fn rd, void *ctx, uint64_t size, struct img_ova *out,
                 struct nb_error *err);

struct img_mf_entry {
    char algo[8];   /* "SHA1" or "SHA256" */
    char name[256]; /* a plain file name */
    char hex[65];   /* the digest in lower-case hex (40 or 64 digits) */
};

/* Parses the OVF manifest 'text' ('len' bytes): one line per file, "SHA256(disk1.vmdk)= <hex>"
 * or "SHA1(x)= <hex>" (spaces around the parentheses and "=" tolerated, CRLF too, blank lines
 * skipped). Stores at most 'max' entries in 'out' and their number in '*n'.
 *
 * Returns 0, or -1 with 'err' (NB_ERR_INVALID naming the line: a malformed line, an unknown
 * algorithm, a digest of the wrong length, a name that is not plain, a name listed twice, more
 * than 'max' entries). */
int img_mf_parse(const char *text, size_t len, struct img_mf_entry *out, size_t max, size_t *n,
                 struct nb_error *err);

struct img_ova_info {
    struct img_ova ova;                /* the archive's entries */
    struct img_ovf ovf;                /* the descriptor */
    int disk_entry[IMG_OVF_MAX_ITEMS]; /* for ovf.disks[i], the index in 'ova' of its file */
    int ovf_entry;                     /* index of the descriptor in 'ova' (always 0) */
    int mf_entry;                      /* index of the manifest, -1 if none */
    bool had_manifest;
};

/* Verifies the whole OVA of 'size' bytes read through 'rd': it scans (img_ova_scan), its first
 * entry is the .ovf descriptor (at most IMG_OVF_MAX_LEN bytes), which parses (img_ovf_parse);
 * every File of the descriptor is in the archive with the declared size (when one is given);
 * the manifest (an entry named *.mf, at most one, at most 1 MiB), if there is one, lists only
 * files of the archive, with digests that all match (computed by streaming each file through
 * 'rd' with OpenSSL, one 1 MiB buffer), and covers every file of the archive except itself and
 * a *.cert (whose signature is not checked here). The disks' contents are not probed here:
 * callers run img_disk_probe() on each disk entry.
 *
 * Fills '*out' and returns 0, or returns -1 with 'err' (NB_ERR_INVALID naming the file at
 * fault, read errors passed up, NB_ERR_INTERNAL if OpenSSL fails). */
int img_ova_verify(img_read_fn rd, void *ctx, uint64_t size, struct img_ova_info *out,
                   struct nb_error *err);

/* Fills the 512-byte POSIX ustar header 'hdr' for a regular file 'name' (a plain file name of
 * at most 99 bytes) of 'size' bytes, mode 0644, owner root (0), modified at 'mtime' (seconds
 * since the epoch, not negative). Sizes of 8 GiB or more are written in GNU's base-256 form,
 * which GNU tar, bsdtar and img_ova_scan() read. The data follows, padded with zeros to a
 * multiple of 512; an archive ends with two zero blocks.
 *
 * Returns 0, or -1 with 'err' (NB_ERR_INVALID for a bad name or mtime). */
int img_tar_header(unsigned char hdr[512], const char *name, uint64_t size, int64_t mtime,
                   struct nb_error *err);

#endif
