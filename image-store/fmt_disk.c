/* Disk image formats: detection and structural validation of qcow2, VHD, VMDK and raw images
 * (see imgfmt.h). The point is to refuse what a hypervisor would open differently from what the
 * tenant may use: images that name other files (backing files, parents, extent descriptors),
 * encrypted images, and tables that point outside the data. Only headers and tables are read.
 *
 * qcow2 follows qemu's docs/interop/qcow2.txt, VHD Microsoft's "Virtual Hard Disk Image Format
 * Specification" 1.0 (big-endian), VMDK VMware's "Virtual Disk Format 5.0" (little-endian). */
#include "imgfmt.h"

#include "nubo/error.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <strings.h>

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const unsigned char *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static uint16_t le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static uint64_t le64(const unsigned char *p)
{
    return (uint64_t)le32(p + 4) << 32 | le32(p);
}

static bool is_pow2(uint64_t v)
{
    return v && !(v & (v - 1));
}

int64_t img_read_fd(void *ctx, void *buf, size_t len, uint64_t off, struct nb_error *err)
{
    ssize_t n = pread(*(const int *)ctx, buf, len, (off_t)off);
    if (n < 0) {
        nb_error_errno(err, errno, "cannot read the image file");
        return -1;
    }
    return n;
}

int img_read_full(img_read_fn rd, void *ctx, void *buf, size_t len, uint64_t off,
                  struct nb_error *err)
{
    size_t done = 0;
    while (done < len) {
        int64_t n = rd(ctx, (char *)buf + done, len - done, off + done, err);
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            nb_error_set(err, NB_ERR_IO, "short read at offset %" PRIu64 ": %zu of %zu bytes",
                         off + done, done, len);
            return -1;
        }
        if ((uint64_t)n > len - done) {
            nb_error_set(err, NB_ERR_INTERNAL,
                         "image reader returned %" PRId64 " bytes for a read of %zu", n,
                         len - done);
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

/* ---- qcow2 ------------------------------------------------------------------------------- */

#define QCOW2_V2_HEADER 72
#define QCOW2_V3_HEADER 104

/* Incompatible feature bits: 0 dirty, 1 corrupt, 2 external data file, 3 compression type,
 * 4 extended L2 entries. */
#define QCOW2_INCOMPAT_CORRUPT  (UINT64_C(1) << 1)
#define QCOW2_INCOMPAT_DATAFILE (UINT64_C(1) << 2)
#define QCOW2_INCOMPAT_KNOWN    UINT64_C(0x1f)

/* qemu's own limits (block/qcow2.h). */
#define QCOW2_MAX_L1_BYTES       (UINT64_C(32) << 20)
#define QCOW2_MAX_REFTABLE_BYTES (UINT64_C(8) << 20)
#define QCOW2_MAX_SNAPSHOTS      65536

/* Validates the qcow2 header 'h' ('hn' bytes, the start of the data). */
static int probe_qcow2(const unsigned char *h, size_t hn, uint64_t size, struct img_disk_info *out,
                       struct nb_error *err)
{
    if (hn < QCOW2_V2_HEADER) {
        nb_error_set(err, NB_ERR_INVALID,
                     "qcow2 truncated: the header needs %d bytes, the file has %" PRIu64,
                     QCOW2_V2_HEADER, size);
        return -1;
    }
    uint32_t version = be32(h + 4);
    uint64_t backing_off = be64(h + 8);
    uint32_t backing_len = be32(h + 16);
    uint32_t cluster_bits = be32(h + 20);
    uint64_t vsize = be64(h + 24);
    uint32_t crypt = be32(h + 32);
    uint32_t l1_size = be32(h + 36);
    uint64_t l1_off = be64(h + 40);
    uint64_t rt_off = be64(h + 48);
    uint32_t rt_clusters = be32(h + 56);
    uint32_t n_snap = be32(h + 60);
    uint64_t snap_off = be64(h + 64);

    if (version != 2 && version != 3) {
        nb_error_set(err, NB_ERR_INVALID, "qcow2 version %" PRIu32 " not supported (only 2 and 3)",
                     version);
        return -1;
    }
    if (backing_off || backing_len) {
        nb_error_set(err, NB_ERR_INVALID,
                     "qcow2 backing file refused: a tenant image may not name a backing file");
        return -1;
    }
    if (crypt != 0) {
        nb_error_set(err, NB_ERR_INVALID, "encrypted qcow2 refused (crypt_method %" PRIu32 ")",
                     crypt);
        return -1;
    }
    if (cluster_bits < 9 || cluster_bits > 21) {
        nb_error_set(err, NB_ERR_INVALID, "qcow2 cluster_bits %" PRIu32 " out of range 9..21",
                     cluster_bits);
        return -1;
    }
    uint64_t cluster = UINT64_C(1) << cluster_bits;
    if (vsize == 0 || vsize > IMG_DISK_MAX_VIRTUAL) {
        nb_error_set(err, NB_ERR_INVALID,
                     "qcow2 virtual size %" PRIu64 " out of range (1 byte to 64 TiB)", vsize);
        return -1;
    }
    if (version == 3) {
        if (hn < QCOW2_V3_HEADER) {
            nb_error_set(err, NB_ERR_INVALID,
                         "qcow2 truncated: the v3 header needs %d bytes, the file has %" PRIu64,
                         QCOW2_V3_HEADER, size);
            return -1;
        }
        uint64_t incompat = be64(h + 72);
        uint32_t refcount_order = be32(h + 96);
        uint32_t header_len = be32(h + 100);
        if (header_len < QCOW2_V3_HEADER || header_len % 8 || header_len > cluster) {
            nb_error_set(err, NB_ERR_INVALID,
                         "qcow2 header_length %" PRIu32
                         " invalid (a multiple of 8 from 104 to the cluster size)",
                         header_len);
            return -1;
        }
        if (incompat & QCOW2_INCOMPAT_DATAFILE) {
            nb_error_set(err, NB_ERR_INVALID,
                         "qcow2 with an external data file refused: a tenant image may not "
                         "name another file");
            return -1;
        }
        if (incompat & ~QCOW2_INCOMPAT_KNOWN) {
            nb_error_set(err, NB_ERR_INVALID,
                         "qcow2 unknown incompatible feature bits 0x%" PRIx64 " refused",
                         incompat & ~QCOW2_INCOMPAT_KNOWN);
            return -1;
        }
        if (incompat & QCOW2_INCOMPAT_CORRUPT) {
            nb_error_set(err, NB_ERR_INVALID, "qcow2 image is marked corrupt");
            return -1;
        }
        if (refcount_order > 6) {
            nb_error_set(err, NB_ERR_INVALID, "qcow2 refcount_order %" PRIu32 " out of range 0..6",
                         refcount_order);
            return -1;
        }
    }

    /* Each L1 entry maps one L2 table of cluster/8 entries of one cluster each. */
    uint64_t l1_span = cluster * (cluster / 8);
    uint64_t l1_needed = (vsize + l1_span - 1) / l1_span;
    uint64_t l1_bytes = (uint64_t)l1_size * 8;
    if (l1_size < l1_needed) {
        nb_error_set(err, NB_ERR_INVALID,
                     "qcow2 l1 table of %" PRIu32 " entries too small for a disk of %" PRIu64
                     " bytes (needs %" PRIu64 ")",
                     l1_size, vsize, l1_needed);
        return -1;
    }
    if (l1_bytes > QCOW2_MAX_L1_BYTES) {
        nb_error_set(err, NB_ERR_INVALID, "qcow2 l1 table of %" PRIu32 " entries too large",
                     l1_size);
        return -1;
    }
    if (l1_off % cluster) {
        nb_error_set(err, NB_ERR_INVALID,
                     "qcow2 l1 table offset 0x%" PRIx64 " is not cluster-aligned", l1_off);
        return -1;
    }
    if (l1_off < cluster || l1_off > size || l1_bytes > size - l1_off) {
        nb_error_set(err, NB_ERR_INVALID,
                     "qcow2 truncated: l1 table at offset %" PRIu64 " (%" PRIu64
                     " bytes) is not inside the file of %" PRIu64 " bytes",
                     l1_off, l1_bytes, size);
        return -1;
    }
    if (rt_off % cluster) {
        nb_error_set(err, NB_ERR_INVALID,
                     "qcow2 refcount table offset 0x%" PRIx64 " is not cluster-aligned", rt_off);
        return -1;
    }
    if (rt_clusters == 0 || (uint64_t)rt_clusters * cluster > QCOW2_MAX_REFTABLE_BYTES) {
        nb_error_set(err, NB_ERR_INVALID,
                     "qcow2 refcount table of %" PRIu32 " clusters out of range", rt_clusters);
        return -1;
    }
    if (rt_off < cluster || rt_off >= size) {
        nb_error_set(err, NB_ERR_INVALID,
                     "qcow2 truncated: refcount table at offset %" PRIu64
                     " is not inside the file of %" PRIu64 " bytes",
                     rt_off, size);
        return -1;
    }
    if (n_snap > QCOW2_MAX_SNAPSHOTS) {
        nb_error_set(err, NB_ERR_INVALID, "qcow2 has too many snapshots (%" PRIu32 ")", n_snap);
        return -1;
    }
    if (n_snap && (snap_off % cluster || snap_off < cluster || snap_off >= size)) {
        nb_error_set(err, NB_ERR_INVALID,
                     "qcow2 snapshot table offset %" PRIu64 " invalid for a file of %" PRIu64
                     " bytes",
                     snap_off, size);
        return -1;
    }
    snprintf(out->subformat, sizeof out->subformat, "v%" PRIu32, version);
    out->virtual_size = vsize;
    return 0;
}

/* ---- VHD --------------------------------------------------------------------------------- */

#define VHD_FOOTER      512
#define VHD_DYN_HEADER  1024
#define VHD_VERSION     UINT32_C(0x00010000)
#define VHD_FIXED       2
#define VHD_DYNAMIC     3
#define VHD_DIFFERENCE  4
#define VHD_BAT_UNUSED  UINT32_C(0xffffffff)
#define VHD_MAX_DYNAMIC (UINT64_C(2040) << 30) /* the specification's limit */
#define VHD_BAT_PIECE   (64 * 1024)

/* One's complement of the byte sum of 'len' bytes, the 4 bytes at 'skip' taken as zeros. */
static uint32_t vhd_checksum(const unsigned char *p, size_t len, size_t skip)
{
    uint32_t sum = 0;
    for (size_t i = 0; i < len; i++) {
        if (i < skip || i >= skip + 4) {
            sum += p[i];
        }
    }
    return ~sum;
}

/* True if the ranges [a, a+alen) and [b, b+blen) overlap. */
static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

/* Checks every BAT entry of the dynamic VHD: unused, or a block (bitmap and data) that lies
 * between the footer copy and the footer without covering the dynamic header or the BAT. */
static int vhd_check_bat(img_read_fn rd, void *ctx, uint64_t bat_off, uint32_t entries,
                         uint64_t block_bytes, uint64_t hdr_off, uint64_t footer_off,
                         struct nb_error *err)
{
    unsigned char *piece = malloc(VHD_BAT_PIECE);
    if (!piece) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        return -1;
    }
    uint64_t bat_bytes = ((uint64_t)entries * 4 + 511) / 512 * 512;
    int rc = 0;
    uint32_t i = 0;
    while (i < entries) {
        uint32_t n = entries - i < VHD_BAT_PIECE / 4 ? entries - i : VHD_BAT_PIECE / 4;
        if (img_read_full(rd, ctx, piece, (size_t)n * 4, bat_off + (uint64_t)i * 4, err) < 0) {
            rc = -1;
            break;
        }
        for (uint32_t j = 0; j < n; j++, i++) {
            uint32_t sector = be32(piece + (size_t)j * 4);
            if (sector == VHD_BAT_UNUSED) {
                continue;
            }
            uint64_t start = (uint64_t)sector * 512;
            if (start < VHD_FOOTER || start + block_bytes > footer_off) {
                nb_error_set(err, NB_ERR_INVALID,
                             "vhd bat entry %" PRIu32 " points past the end of the data: block "
                             "at offset %" PRIu64 " ends at %" PRIu64 ", footer at %" PRIu64,
                             i, start, start + block_bytes, footer_off);
                rc = -1;
                break;
            }
            if (overlaps(start, block_bytes, hdr_off, VHD_DYN_HEADER) ||
                overlaps(start, block_bytes, bat_off, bat_bytes)) {
                nb_error_set(err, NB_ERR_INVALID,
                             "vhd bat entry %" PRIu32 " points at the metadata: block at offset "
                             "%" PRIu64 " overlaps the dynamic header or the bat",
                             i, start);
                rc = -1;
                break;
            }
        }
        if (rc) {
            break;
        }
    }
    free(piece);
    return rc;
}

/* Validates the dynamic part of a VHD whose footer is 'f' (at 'footer_off', 'flen' bytes). */
static int probe_vhd_dynamic(img_read_fn rd, void *ctx, const unsigned char *f, size_t flen,
                             uint64_t footer_off, uint64_t vsize, struct nb_error *err)
{
    unsigned char copy[VHD_FOOTER];
    if (footer_off < VHD_FOOTER + VHD_DYN_HEADER) {
        nb_error_set(err, NB_ERR_INVALID,
                     "vhd truncated: a dynamic disk needs at least %d bytes, the file has %" PRIu64,
                     VHD_FOOTER * 2 + VHD_DYN_HEADER, footer_off + flen);
        return -1;
    }
    if (img_read_full(rd, ctx, copy, sizeof copy, 0, err) < 0) {
        return -1;
    }
    if (memcmp(copy, f, flen)) {
        nb_error_set(err, NB_ERR_INVALID,
                     "vhd footer copy at offset 0 differs from the footer at offset %" PRIu64,
                     footer_off);
        return -1;
    }
    if (vsize > VHD_MAX_DYNAMIC) {
        nb_error_set(err, NB_ERR_INVALID,
                     "vhd dynamic disk of %" PRIu64 " bytes exceeds the format's 2040 GiB limit",
                     vsize);
        return -1;
    }
    uint64_t hdr_off = be64(f + 16);
    if (hdr_off < VHD_FOOTER || hdr_off > footer_off - VHD_DYN_HEADER) {
        nb_error_set(err, NB_ERR_INVALID,
                     "vhd dynamic header offset %" PRIu64 " is not between the footer copy and "
                     "the footer at %" PRIu64,
                     hdr_off, footer_off);
        return -1;
    }
    unsigned char h[VHD_DYN_HEADER];
    if (img_read_full(rd, ctx, h, sizeof h, hdr_off, err) < 0) {
        return -1;
    }
    if (memcmp(h, "cxsparse", 8)) {
        nb_error_set(err, NB_ERR_INVALID,
                     "vhd dynamic header at offset %" PRIu64 " has no \"cxsparse\" cookie",
                     hdr_off);
        return -1;
    }
    uint32_t stored = be32(h + 36);
    uint32_t computed = vhd_checksum(h, sizeof h, 36);
    if (stored != computed) {
        nb_error_set(err, NB_ERR_INVALID,
                     "vhd dynamic header checksum mismatch: stored 0x%08" PRIx32
                     ", computed 0x%08" PRIx32,
                     stored, computed);
        return -1;
    }
    uint32_t version = be32(h + 24);
    if (version != VHD_VERSION) {
        nb_error_set(err, NB_ERR_INVALID,
                     "vhd dynamic header version 0x%08" PRIx32 " not supported", version);
        return -1;
    }
    uint64_t bat_off = be64(h + 16);
    uint32_t entries = be32(h + 28);
    uint32_t block = be32(h + 32);
    if (!is_pow2(block) || block < 512 || block > (UINT32_C(256) << 20)) {
        nb_error_set(err, NB_ERR_INVALID,
                     "vhd block size %" PRIu32 " is not a power of two from 512 bytes to 256 MiB",
                     block);
        return -1;
    }
    if ((uint64_t)entries * block < vsize) {
        nb_error_set(err, NB_ERR_INVALID,
                     "vhd bat of %" PRIu32 " blocks of %" PRIu32
                     " bytes does not cover the disk of %" PRIu64 " bytes",
                     entries, block, vsize);
        return -1;
    }
    uint64_t bat_bytes = ((uint64_t)entries * 4 + 511) / 512 * 512;
    if (bat_off < VHD_FOOTER || bat_off > footer_off || bat_bytes > footer_off - bat_off) {
        nb_error_set(err, NB_ERR_INVALID,
                     "vhd truncated: bat at offset %" PRIu64 " (%" PRIu64
                     " bytes) does not end before the footer at %" PRIu64,
                     bat_off, bat_bytes, footer_off);
        return -1;
    }
    /* A block is its sector bitmap (one bit per sector, padded to a sector) then its data. */
    uint64_t bitmap = ((uint64_t)block / 512 / 8 + 511) / 512 * 512;
    return vhd_check_bat(rd, ctx, bat_off, entries, bitmap + block, hdr_off, footer_off, err);
}

/* Validates a VHD whose footer is 'f' ('flen' bytes: 512, or 511 from old Virtual PC, the last
 * byte then 0) at 'footer_off'. */
static int probe_vhd(img_read_fn rd, void *ctx, const unsigned char *f, size_t flen,
                     uint64_t footer_off, struct img_disk_info *out, struct nb_error *err)
{
    uint32_t stored = be32(f + 64);
    uint32_t computed = vhd_checksum(f, VHD_FOOTER, 64);
    if (stored != computed) {
        nb_error_set(err, NB_ERR_INVALID,
                     "vhd footer checksum mismatch: stored 0x%08" PRIx32 ", computed 0x%08" PRIx32,
                     stored, computed);
        return -1;
    }
    uint32_t version = be32(f + 12);
    if (version != VHD_VERSION) {
        nb_error_set(err, NB_ERR_INVALID, "vhd file format version 0x%08" PRIx32 " not supported",
                     version);
        return -1;
    }
    uint64_t vsize = be64(f + 48);
    uint32_t type = be32(f + 60);
    if (type == VHD_DIFFERENCE) {
        nb_error_set(err, NB_ERR_INVALID, "differencing vhd refused: it needs a parent");
        return -1;
    }
    if (type != VHD_FIXED && type != VHD_DYNAMIC) {
        nb_error_set(err, NB_ERR_INVALID, "vhd disk type %" PRIu32 " unknown", type);
        return -1;
    }
    if (vsize == 0 || vsize > IMG_DISK_MAX_VIRTUAL) {
        nb_error_set(err, NB_ERR_INVALID,
                     "vhd current size %" PRIu64 " out of range (1 byte to 64 TiB)", vsize);
        return -1;
    }
    if (type == VHD_FIXED) {
        if (footer_off < vsize) {
            nb_error_set(err, NB_ERR_INVALID,
                         "vhd truncated: a fixed disk of %" PRIu64 " bytes needs %" PRIu64
                         " bytes, the file has %" PRIu64,
                         vsize, vsize + flen, footer_off + flen);
            return -1;
        }
        if (footer_off > vsize) {
            nb_error_set(err, NB_ERR_INVALID,
                         "vhd fixed disk of %" PRIu64 " bytes has %" PRIu64
                         " bytes of data before its footer",
                         vsize, footer_off);
            return -1;
        }
        snprintf(out->subformat, sizeof out->subformat, "fixed");
    } else {
        if (probe_vhd_dynamic(rd, ctx, f, flen, footer_off, vsize, err) < 0) {
            return -1;
        }
        snprintf(out->subformat, sizeof out->subformat, "dynamic");
    }
    out->virtual_size = vsize;
    return 0;
}

/* ---- VMDK -------------------------------------------------------------------------------- */

#define VMDK_FLAG_NL_TEST    (UINT32_C(1) << 0)
#define VMDK_FLAG_RGD        (UINT32_C(1) << 1)
#define VMDK_FLAG_COMPRESSED (UINT32_C(1) << 16)
#define VMDK_FLAG_MARKERS    (UINT32_C(1) << 17)
#define VMDK_GD_AT_END       UINT64_C(0xffffffffffffffff)

/* Checks that a grain directory of 'gd_bytes' at sector 'sector' lies inside 'size' bytes. */
static int vmdk_check_gd(const char *what, uint64_t sector, uint64_t gd_bytes, uint64_t size,
                         struct nb_error *err)
{
    if (sector == 0 || sector > size / 512 || gd_bytes > size - sector * 512) {
        nb_error_set(err, NB_ERR_INVALID,
                     "vmdk truncated: %s at sector %" PRIu64 " (%" PRIu64
                     " bytes) is not inside the file of %" PRIu64 " bytes",
                     what, sector, gd_bytes, size);
        return -1;
    }
    return 0;
}

static int probe_vmdk(img_read_fn rd, void *ctx, const unsigned char *h, size_t hn, uint64_t size,
                      struct img_disk_info *out, struct nb_error *err)
{
    if (hn < 512) {
        nb_error_set(err, NB_ERR_INVALID,
                     "vmdk truncated: the header needs 512 bytes, the file has %" PRIu64, size);
        return -1;
    }
    uint32_t version = le32(h + 4);
    uint32_t flags = le32(h + 8);
    uint64_t capacity = le64(h + 12);
    uint64_t grain = le64(h + 20);
    uint64_t desc_off = le64(h + 28);
    uint64_t desc_len = le64(h + 36);
    uint32_t gtes = le32(h + 44);
    uint64_t rgd_off = le64(h + 48);
    uint64_t gd_off = le64(h + 56);
    uint16_t compress = le16(h + 77);

    if (version < 1 || version > 3) {
        nb_error_set(err, NB_ERR_INVALID, "vmdk version %" PRIu32 " not supported (only 1..3)",
                     version);
        return -1;
    }
    if (capacity == 0) {
        nb_error_set(err, NB_ERR_INVALID,
                     "vmdk capacity is 0: a descriptor naming other extents is refused");
        return -1;
    }
    if (capacity > IMG_DISK_MAX_VIRTUAL / 512) {
        nb_error_set(err, NB_ERR_INVALID,
                     "vmdk capacity of %" PRIu64 " sectors exceeds the 64 TiB limit", capacity);
        return -1;
    }
    if (!is_pow2(grain) || grain < 8 || grain > 2048) {
        nb_error_set(err, NB_ERR_INVALID,
                     "vmdk grain size of %" PRIu64 " sectors is not a power of two from 8 to 2048",
                     grain);
        return -1;
    }
    if (gtes == 0 || gtes > 512) {
        nb_error_set(err, NB_ERR_INVALID,
                     "vmdk grain table of %" PRIu32 " entries out of range 1..512", gtes);
        return -1;
    }
    if ((flags & VMDK_FLAG_NL_TEST) && memcmp(h + 73, "\n \r\n", 4)) {
        nb_error_set(err, NB_ERR_INVALID,
                     "vmdk line-end check failed: the file was corrupted by a text-mode transfer");
        return -1;
    }
    if ((flags & VMDK_FLAG_COMPRESSED) && compress != 1) {
        nb_error_set(err, NB_ERR_INVALID, "vmdk compression algorithm %u unknown",
                     (unsigned)compress);
        return -1;
    }
    if (desc_off && (desc_off > size / 512 || desc_len > (size - desc_off * 512) / 512)) {
        nb_error_set(err, NB_ERR_INVALID,
                     "vmdk truncated: embedded descriptor at sector %" PRIu64
                     " is not inside the file of %" PRIu64 " bytes",
                     desc_off, size);
        return -1;
    }
    uint64_t n_gts = (capacity + grain * gtes - 1) / (grain * gtes);
    uint64_t gd_bytes = n_gts * 4;
    if (gd_off == VMDK_GD_AT_END) {
        /* Stream-optimized: the real header is the footer, in the second-to-last sector (a
         * footer marker before it, an end-of-stream marker after it). */
        unsigned char foot[512];
        if (!(flags & VMDK_FLAG_MARKERS) || size < 2048) {
            nb_error_set(err, NB_ERR_INVALID,
                         "vmdk grain directory at the end without a stream footer");
            return -1;
        }
        if (img_read_full(rd, ctx, foot, sizeof foot, size - 1024, err) < 0) {
            return -1;
        }
        if (memcmp(foot, "KDMV", 4) || le64(foot + 56) == VMDK_GD_AT_END) {
            nb_error_set(err, NB_ERR_INVALID,
                         "vmdk truncated: no stream footer in the second-to-last sector");
            return -1;
        }
        /* qemu takes the whole footer for the header: it may not describe another disk. */
        if (le32(foot + 4) != version || le64(foot + 12) != capacity || le64(foot + 20) != grain ||
            le32(foot + 44) != gtes) {
            nb_error_set(err, NB_ERR_INVALID, "vmdk stream footer disagrees with the header");
            return -1;
        }
        gd_off = le64(foot + 56);
    }
    if (vmdk_check_gd("grain directory", gd_off, gd_bytes, size, err) < 0) {
        return -1;
    }
    if ((flags & VMDK_FLAG_RGD) && !(flags & VMDK_FLAG_MARKERS) &&
        vmdk_check_gd("redundant grain directory", rgd_off, gd_bytes, size, err) < 0) {
        return -1;
    }
    snprintf(out->subformat, sizeof out->subformat, "%s",
             flags & (VMDK_FLAG_COMPRESSED | VMDK_FLAG_MARKERS) ? "streamOptimized"
                                                                : "monolithicSparse");
    out->virtual_size = capacity * 512;
    return 0;
}

/* True if 'h' starts like a VMDK text descriptor (after blanks). */
static bool vmdk_descriptor_text(const unsigned char *h, size_t hn)
{
    static const char sig[] = "# disk descriptorfile";
    size_t i = 0;
    while (i < hn && (h[i] == ' ' || h[i] == '\t' || h[i] == '\r' || h[i] == '\n')) {
        i++;
    }
    return hn - i >= sizeof sig - 1 && strncasecmp((const char *)h + i, sig, sizeof sig - 1) == 0;
}

/* ---- detection --------------------------------------------------------------------------- */

static const char *const formats[] = {"raw", "qcow2", "vhd", "vmdk"};

int img_disk_probe(img_read_fn rd, void *ctx, uint64_t size, const char *expect,
                   struct img_disk_info *out, struct nb_error *err)
{
    memset(out, 0, sizeof *out);
    if (expect) {
        size_t i = 0;
        while (i < sizeof formats / sizeof formats[0] && strcmp(expect, formats[i])) {
            i++;
        }
        if (i == sizeof formats / sizeof formats[0]) {
            nb_error_set(err, NB_ERR_INVALID, "unknown disk format \"%.32s\"", expect);
            return -1;
        }
    }
    if (size == 0) {
        nb_error_set(err, NB_ERR_INVALID, "disk image is empty");
        return -1;
    }
    unsigned char head[512];
    size_t hn = size < sizeof head ? (size_t)size : sizeof head;
    if (img_read_full(rd, ctx, head, hn, 0, err) < 0) {
        return -1;
    }

    /* The VHD footer ends the file: 512 bytes, or 511 from old Virtual PC versions. */
    unsigned char foot[VHD_FOOTER] = {0};
    size_t flen = 0;
    if (size >= VHD_FOOTER && memcmp(head, "QFI\xfb", 4) && memcmp(head, "KDMV", 4)) {
        if (img_read_full(rd, ctx, foot, VHD_FOOTER, size - VHD_FOOTER, err) < 0) {
            return -1;
        }
        if (!memcmp(foot, "conectix", 8)) {
            flen = VHD_FOOTER;
        } else if (!memcmp(foot + 1, "conectix", 8)) {
            memmove(foot, foot + 1, VHD_FOOTER - 1);
            foot[VHD_FOOTER - 1] = 0;
            flen = VHD_FOOTER - 1;
        }
    }

    const char *found = "raw";
    if (hn >= 4 && !memcmp(head, "QFI\xfb", 4)) {
        found = "qcow2";
    } else if (hn >= 4 && !memcmp(head, "KDMV", 4)) {
        found = "vmdk";
    } else if (flen || (hn >= 8 && !memcmp(head, "conectix", 8))) {
        found = "vhd";
    } else if (vmdk_descriptor_text(head, hn)) {
        found = "vmdk";
    }
    if (expect && strcmp(expect, found)) {
        if (!strcmp(found, "raw")) {
            nb_error_set(err, NB_ERR_INVALID,
                         "not a %s image: no %s header found (the data looks raw%s)", expect,
                         expect,
                         strcmp(expect, "vhd") ? "" : "; a vhd ends with a \"conectix\" footer");
        } else {
            nb_error_set(err, NB_ERR_INVALID, "image format is %s, expected %s", found, expect);
        }
        return -1;
    }
    snprintf(out->format, sizeof out->format, "%s", found);

    int rc = 0;
    if (!strcmp(found, "qcow2")) {
        rc = probe_qcow2(head, hn, size, out, err);
    } else if (!strcmp(found, "vmdk")) {
        if (memcmp(head, "KDMV", 4)) {
            nb_error_set(err, NB_ERR_INVALID,
                         "vmdk descriptor file refused: it names other extent files (upload a "
                         "monolithicSparse or streamOptimized vmdk)");
            rc = -1;
        } else {
            rc = probe_vmdk(rd, ctx, head, hn, size, out, err);
        }
    } else if (!strcmp(found, "vhd")) {
        if (!flen) {
            nb_error_set(err, NB_ERR_INVALID,
                         "vhd truncated: the footer copy is at offset 0 but the last 512 bytes "
                         "of the %" PRIu64 "-byte file are not a footer",
                         size);
            rc = -1;
        } else {
            rc = probe_vhd(rd, ctx, foot, flen, size - flen, out, err);
        }
    } else {
        if (size > IMG_DISK_MAX_VIRTUAL) {
            nb_error_set(err, NB_ERR_INVALID,
                         "raw image of %" PRIu64 " bytes exceeds the 64 TiB limit", size);
            rc = -1;
        }
        out->virtual_size = size;
    }
    if (rc < 0) {
        memset(out, 0, sizeof *out);
    }
    return rc;
}
