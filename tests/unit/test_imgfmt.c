/* Unit tests of the image store's format parsers (image-store/fmt_disk.c, fmt_ovf.c,
 * fmt_ova.c), on real files: disk images are made at test time by qemu-img in a scratch
 * directory (qcow2 v2/v3, with a backing file, with an external data file, LUKS-encrypted; VHD
 * fixed and dynamic; VMDK monolithicSparse, streamOptimized and a text descriptor), then
 * corrupted byte by byte the way a hostile upload would be; each refusal must name its reason.
 * OVF descriptors are parsed (every field checked), hostile ones refused (paths and URLs in
 * hrefs, dangling fileRefs, two systems, XXE), and written descriptors parse back to the same
 * struct. OVA archives are built with img_tar_header() and checked against GNU tar in both
 * directions (GNU tar lists ours, we scan GNU tar's ustar, gnu and pax archives).
 *
 * Tests that need qemu-img or tar skip themselves when the tool is missing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "nbtest.h"

#include "imgfmt.h"
#include "nubo/error.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

/* ---- fixture and helpers ----------------------------------------------------------------- */

struct fixture {
    char dir[64];
    char pattern[128]; /* a 5 MiB raw image with data in its first and third 2 MiB */
};

struct blob {
    unsigned char *data;
    size_t len;
};

static bool have(const char *tool)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
    return system(cmd) == 0;
}

/* Runs a shell command made from 'fmt' in the fixture directory; fails the test unless it
 * exits 0. */
static void sh(const struct fixture *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sh(const struct fixture *f, const char *fmt, ...)
{
    char cmd[2048];
    int n = snprintf(cmd, sizeof cmd, "cd '%s' && ", f->dir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
    va_end(ap);
    if (system(cmd) != 0) {
        fail_msg("command failed: %s", cmd);
    }
}

static void path_of(const struct fixture *f, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", f->dir, name);
}

static struct blob slurp(const struct fixture *f, const char *name)
{
    char path[256];
    path_of(f, name, path, sizeof path);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fail_msg("could not open \"%s\"", path);
    }
    struct stat st;
    assert_int_equal(fstat(fileno(fp), &st), 0);
    struct blob b = {malloc((size_t)st.st_size + 1), (size_t)st.st_size};
    assert_non_null(b.data);
    assert_int_equal(fread(b.data, 1, b.len, fp), b.len);
    fclose(fp);
    return b;
}

static void spit(const struct fixture *f, const char *name, const void *data, size_t len)
{
    char path[256];
    path_of(f, name, path, sizeof path);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static struct blob copy_blob(const struct blob *b)
{
    struct blob c = {malloc(b->len + 1), b->len};
    assert_non_null(c.data);
    memcpy(c.data, b->data, b->len);
    return c;
}

static int64_t mem_read(void *ctx, void *buf, size_t len, uint64_t off, struct nb_error *err)
{
    const struct blob *b = ctx;
    if (off >= b->len) {
        return 0;
    }
    size_t n = b->len - off < len ? b->len - (size_t)off : len;
    memcpy(buf, b->data + off, n);
    return (int64_t)n;
}

static int probe(const struct blob *b, const char *expect, struct img_disk_info *info,
                 struct nb_error *err)
{
    return img_disk_probe(mem_read, (void *)b, b->len, expect, info, err);
}

static void expect_probe_ok(const struct blob *b, const char *expect, const char *format,
                            const char *subformat, uint64_t vsize)
{
    struct img_disk_info info;
    struct nb_error err = {0};
    assert_zero(probe(b, expect, &info, &err), err);
    assert_string_equal(info.format, format);
    assert_string_equal(info.subformat, subformat);
    if (vsize) {
        assert_int_equal(info.virtual_size, vsize);
    }
}

static void expect_refused(int rc, const struct nb_error *err, const char *needle)
{
    if (rc == 0) {
        fail_msg("expected a refusal containing \"%s\", got success", needle);
    }
    if (err->code != NB_ERR_INVALID) {
        fail_msg("expected NB_ERR_INVALID for \"%s\", got %s: %s", needle,
                 nb_errcode_name(err->code), err->msg);
    }
    if (!strstr(err->msg, needle)) {
        fail_msg("error \"%s\" does not mention \"%s\"", err->msg, needle);
    }
}

static void expect_probe_fails(const struct blob *b, const char *expect, const char *needle)
{
    struct img_disk_info info;
    struct nb_error err = {0};
    int rc = probe(b, expect, &info, &err);
    expect_refused(rc, &err, needle);
    assert_string_equal(info.format, "");
}

static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const unsigned char *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void put_be64(unsigned char *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

/* Recomputes the checksum of the VHD structure 'p' ('len' bytes, checksum field at 'at'). */
static void vhd_fix_checksum(unsigned char *p, size_t len, size_t at)
{
    uint32_t sum = 0;
    put_be32(p + at, 0);
    for (size_t i = 0; i < len; i++) {
        sum += p[i];
    }
    put_be32(p + at, ~sum);
}

static int group_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/nubo-imgfmt-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    /* Data in blocks 0 and 2 of a 2 MiB-block image; the rest reads as zeros. */
    size_t len = 5u << 20;
    unsigned char *raw = calloc(1, len);
    for (size_t i = 0; i < 8192; i++) {
        raw[i] = (unsigned char)(i * 7 + 1);
        raw[(4u << 20) + i] = (unsigned char)(i * 13 + 5);
    }
    snprintf(f->pattern, sizeof f->pattern, "%s/pattern.raw", f->dir);
    FILE *fp = fopen(f->pattern, "wb");
    int ok = fp && fwrite(raw, 1, len, fp) == len;
    if (fp && fclose(fp) != 0) {
        ok = 0;
    }
    free(raw);
    *state = f;
    return ok ? 0 : -1;
}

static int group_teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

#define NEED(tool)                                                                                 \
    do {                                                                                           \
        if (!have(tool)) {                                                                         \
            print_message("%s is not installed: test skipped\n", tool);                            \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* ---- qcow2 ------------------------------------------------------------------------------- */

static void qcow2_versions_detected(void **state)
{
    struct fixture *f = *state;
    NEED("qemu-img");
    sh(f, "qemu-img create -q -f qcow2 v3.qcow2 64M");
    sh(f, "qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 1G");
    sh(f, "qemu-img convert -q -O qcow2 -o cluster_size=4096 pattern.raw data.qcow2");

    struct blob v3 = slurp(f, "v3.qcow2");
    expect_probe_ok(&v3, NULL, "qcow2", "v3", 64u << 20);
    expect_probe_ok(&v3, "qcow2", "qcow2", "v3", 64u << 20);
    expect_probe_fails(&v3, "vhd", "image format is qcow2, expected vhd");
    expect_probe_fails(&v3, "raw", "image format is qcow2, expected raw");
    struct blob v2 = slurp(f, "v2.qcow2");
    expect_probe_ok(&v2, NULL, "qcow2", "v2", UINT64_C(1) << 30);
    struct blob data = slurp(f, "data.qcow2");
    expect_probe_ok(&data, NULL, "qcow2", "v3", 5u << 20);

    /* The same through a file descriptor. */
    char path[256];
    path_of(f, "data.qcow2", path, sizeof path);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct img_disk_info info;
    struct nb_error err = {0};
    assert_zero(img_disk_probe(img_read_fd, &fd, data.len, NULL, &info, &err), err);
    assert_string_equal(info.format, "qcow2");
    close(fd);
    free(v3.data);
    free(v2.data);
    free(data.data);
}

static void qcow2_refusals(void **state)
{
    struct fixture *f = *state;
    NEED("qemu-img");
    sh(f, "qemu-img create -q -f qcow2 base.qcow2 16M");
    sh(f, "qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 overlay.qcow2");
    sh(f, "qemu-img create -q -f qcow2 -o data_file=ext.raw extdata.qcow2 16M");
    sh(f, "qemu-img create -q -f qcow2 --object secret,id=sec0,data=hunter22 "
          "-o encrypt.format=aes,encrypt.key-secret=sec0 aes.qcow2 16M");
    /* LUKS creation times its key derivation with getrusage(), which fails now and then on a
     * busy machine ("Unable to get accurate CPU usage"): a few attempts. */
    sh(f, "for i in 1 2 3 4 5; do qemu-img create -q -f qcow2 --object secret,id=sec0,"
          "data=hunter22 -o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10 "
          "luks.qcow2 16M 2>/dev/null && exit 0; done; exit 1");

    struct blob overlay = slurp(f, "overlay.qcow2");
    expect_probe_fails(&overlay, NULL, "a tenant image may not name a backing file");
    struct blob ext = slurp(f, "extdata.qcow2");
    expect_probe_fails(&ext, NULL, "external data file");
    struct blob aes = slurp(f, "aes.qcow2");
    expect_probe_fails(&aes, NULL, "encrypted qcow2 refused (crypt_method 1)");
    struct blob luks = slurp(f, "luks.qcow2");
    expect_probe_fails(&luks, NULL, "encrypted qcow2 refused (crypt_method 2)");

    struct blob base = slurp(f, "base.qcow2");
    expect_probe_ok(&base, NULL, "qcow2", "v3", 16u << 20);
    struct blob b = copy_blob(&base);
    put_be32(b.data + 32, 1); /* crypt_method AES */
    expect_probe_fails(&b, NULL, "encrypted qcow2 refused (crypt_method 1)");

    memcpy(b.data, base.data, b.len);
    put_be32(b.data + 4, 1);
    expect_probe_fails(&b, NULL, "qcow2 version 1 not supported");

    memcpy(b.data, base.data, b.len);
    put_be32(b.data + 20, 22);
    expect_probe_fails(&b, NULL, "cluster_bits 22 out of range");

    memcpy(b.data, base.data, b.len);
    put_be64(b.data + 24, 0);
    expect_probe_fails(&b, NULL, "virtual size 0 out of range");
    put_be64(b.data + 24, (UINT64_C(64) << 40) + 1);
    expect_probe_fails(&b, NULL, "out of range (1 byte to 64 TiB)");

    memcpy(b.data, base.data, b.len);
    put_be64(b.data + 72, UINT64_C(1) << 40); /* an incompatible feature from the future */
    expect_probe_fails(&b, NULL, "unknown incompatible feature bits 0x10000000000");
    put_be64(b.data + 72, 2);
    expect_probe_fails(&b, NULL, "marked corrupt");

    memcpy(b.data, base.data, b.len);
    put_be32(b.data + 100, 100);
    expect_probe_fails(&b, NULL, "header_length 100 invalid");

    memcpy(b.data, base.data, b.len);
    put_be64(b.data + 40, get_be64(base.data + 40) + 512);
    expect_probe_fails(&b, NULL, "l1 table offset 0x30200 is not cluster-aligned");

    memcpy(b.data, base.data, b.len);
    put_be64(b.data + 48, UINT64_C(1) << 40);
    expect_probe_fails(&b, NULL, "refcount table at offset 1099511627776 is not inside");

    /* Cut before the end of the L1 table. */
    memcpy(b.data, base.data, b.len);
    b.len = (size_t)get_be64(base.data + 40) + 4;
    expect_probe_fails(&b, NULL, "qcow2 truncated: l1 table at offset 196608");
    b.len = 50;
    expect_probe_fails(&b, NULL, "qcow2 truncated: the header needs 72 bytes");

    free(overlay.data);
    free(ext.data);
    free(luks.data);
    free(aes.data);
    free(base.data);
    free(b.data);
}

/* ---- VHD --------------------------------------------------------------------------------- */

static void vhd_fixed_and_dynamic(void **state)
{
    struct fixture *f = *state;
    NEED("qemu-img");
    sh(f, "qemu-img convert -q -O vpc -o subformat=fixed pattern.raw fixed.vhd");
    sh(f, "qemu-img convert -q -O vpc -o subformat=dynamic pattern.raw dynamic.vhd");
    struct blob fx = slurp(f, "fixed.vhd");
    /* qemu rounds the size up to a whole CHS geometry: what the guest sees. */
    uint64_t vsize = get_be64(fx.data + fx.len - 512 + 48);
    assert_true(vsize >= (5u << 20));
    assert_int_equal(fx.len, vsize + 512);
    expect_probe_ok(&fx, NULL, "vhd", "fixed", vsize);
    expect_probe_ok(&fx, "vhd", "vhd", "fixed", vsize);
    expect_probe_fails(&fx, "qcow2", "image format is vhd, expected qcow2");

    struct blob dy = slurp(f, "dynamic.vhd");
    expect_probe_ok(&dy, "vhd", "vhd", "dynamic", vsize);
    /* Blocks 0 and 2 hold data: two allocated blocks of 2 MiB plus their bitmaps. */
    assert_true(dy.len > (4u << 20));
    free(fx.data);
    free(dy.data);
}

/* Offsets of the parts of the dynamic VHD 'b'. */
struct vhd_layout {
    size_t footer, header, bat;
};

static struct vhd_layout vhd_layout(const struct blob *b)
{
    struct vhd_layout l = {.footer = b->len - 512};
    l.header = (size_t)get_be64(b->data + l.footer + 16);
    l.bat = (size_t)get_be64(b->data + l.header + 16);
    return l;
}

/* Sets the 32-bit field at 'at' of both footers of the dynamic VHD 'b' and fixes their
 * checksums, as a careful forger would. */
static void vhd_patch_footers(struct blob *b, size_t at, uint32_t v)
{
    struct vhd_layout l = vhd_layout(b);
    put_be32(b->data + l.footer + at, v);
    vhd_fix_checksum(b->data + l.footer, 512, 64);
    memcpy(b->data, b->data + l.footer, 512);
}

static void vhd_refusals(void **state)
{
    struct fixture *f = *state;
    NEED("qemu-img");
    sh(f, "qemu-img convert -q -O vpc -o subformat=fixed pattern.raw fixed2.vhd");
    sh(f, "qemu-img convert -q -O vpc -o subformat=dynamic pattern.raw dynamic2.vhd");
    struct blob fixed = slurp(f, "fixed2.vhd");
    struct blob dyn = slurp(f, "dynamic2.vhd");
    struct vhd_layout l = vhd_layout(&dyn);
    assert_int_equal(l.header, 512);
    assert_memory_equal(dyn.data + l.header, "cxsparse", 8);

    /* A flipped byte in the footer's unique id. */
    struct blob b = copy_blob(&dyn);
    b.data[l.footer + 70] ^= 0x40;
    expect_probe_fails(&b, NULL, "vhd footer checksum mismatch: stored 0x");
    struct blob fb = copy_blob(&fixed);
    fb.data[fb.len - 512 + 70] ^= 0x01;
    expect_probe_fails(&fb, NULL, "vhd footer checksum mismatch");

    /* The footer copy at offset 0 differs (checksum valid). */
    memcpy(b.data, dyn.data, b.len);
    b.data[70] ^= 0x40;
    vhd_fix_checksum(b.data, 512, 64);
    expect_probe_fails(&b, NULL, "vhd footer copy at offset 0 differs");

    /* Differencing: disk type 4 in both footers, checksums fixed. */
    memcpy(b.data, dyn.data, b.len);
    vhd_patch_footers(&b, 60, 4);
    expect_probe_fails(&b, NULL, "differencing vhd refused: it needs a parent");
    memcpy(b.data, dyn.data, b.len);
    vhd_patch_footers(&b, 60, 5);
    expect_probe_fails(&b, NULL, "vhd disk type 5 unknown");
    memcpy(b.data, dyn.data, b.len);
    vhd_patch_footers(&b, 12, 0x00020000);
    expect_probe_fails(&b, NULL, "vhd file format version 0x00020000 not supported");

    /* Dynamic header: bad checksum, bad cookie, bad block size, BAT too small. */
    memcpy(b.data, dyn.data, b.len);
    b.data[l.header + 800] = 0x55;
    expect_probe_fails(&b, NULL, "vhd dynamic header checksum mismatch");
    memcpy(b.data, dyn.data, b.len);
    memcpy(b.data + l.header, "cxsparsX", 8);
    vhd_fix_checksum(b.data + l.header, 1024, 36);
    expect_probe_fails(&b, NULL, "has no \"cxsparse\" cookie");
    memcpy(b.data, dyn.data, b.len);
    put_be32(b.data + l.header + 32, 3000000);
    vhd_fix_checksum(b.data + l.header, 1024, 36);
    expect_probe_fails(&b, NULL, "vhd block size 3000000 is not a power of two");
    memcpy(b.data, dyn.data, b.len);
    put_be32(b.data + l.header + 28, 1);
    vhd_fix_checksum(b.data + l.header, 1024, 36);
    expect_probe_fails(&b, NULL, "does not cover the disk");
    memcpy(b.data, dyn.data, b.len);
    put_be64(b.data + l.header + 16, b.len);
    vhd_fix_checksum(b.data + l.header, 1024, 36);
    expect_probe_fails(&b, NULL, "bat at offset");

    /* BAT entries: the first block is allocated; move it past the end, then onto the BAT. */
    uint32_t first = get_be32(dyn.data + l.bat);
    assert_int_not_equal(first, 0xffffffff);
    memcpy(b.data, dyn.data, b.len);
    put_be32(b.data + l.bat, 0x00ffffff);
    expect_probe_fails(&b, NULL, "vhd bat entry 0 points past the end of the data");
    memcpy(b.data, dyn.data, b.len);
    put_be32(b.data + l.bat + 4, (uint32_t)(l.bat / 512));
    expect_probe_fails(&b, NULL, "vhd bat entry 1 points at the metadata");
    /* The last allocated block, one sector further: it would end past the footer. */
    memcpy(b.data, dyn.data, b.len);
    put_be32(b.data + l.bat + 8, get_be32(dyn.data + l.bat + 8) + 1);
    expect_probe_fails(&b, NULL, "vhd bat entry 2 points past the end");

    /* Truncated: the footer is gone but the copy at offset 0 says vhd. */
    memcpy(b.data, dyn.data, b.len);
    b.len = dyn.len - 512;
    expect_probe_fails(&b, NULL, "vhd truncated: the footer copy is at offset 0");
    b.len = 1000;
    expect_probe_fails(&b, "vhd", "vhd truncated");
    /* A fixed vhd loses its only footer: it is raw data now, and not a vhd if one is due. */
    fb.len = fixed.len - 100;
    memcpy(fb.data, fixed.data, fb.len);
    expect_probe_fails(&fb, "vhd", "not a vhd image");
    expect_probe_ok(&fb, NULL, "raw", "", fb.len);

    /* A fixed vhd with a wrong cookie: no footer. */
    fb.len = fixed.len;
    memcpy(fb.data, fixed.data, fb.len);
    memcpy(fb.data + fb.len - 512, "conectiX", 8);
    expect_probe_fails(&fb, "vhd", "no vhd header found");
    /* A fixed vhd whose size does not match its footer (a block removed in the middle). */
    memmove(fb.data + 512, fb.data + 1024, fb.len - 1024);
    fb.len -= 512;
    memcpy(fb.data + fb.len - 512, fixed.data + fixed.len - 512, 512);
    expect_probe_fails(&fb, NULL, "vhd truncated: a fixed disk of");
    /* ... or has data appended before a copy of its footer. */
    struct blob longer = {malloc(fixed.len + 512), fixed.len + 512};
    assert_non_null(longer.data);
    memcpy(longer.data, fixed.data, fixed.len);
    memcpy(longer.data + fixed.len, fixed.data + fixed.len - 512, 512);
    expect_probe_fails(&longer, NULL, "bytes of data before its footer");
    free(longer.data);

    /* Old Virtual PC's 511-byte footer (its last, reserved byte missing) is found too. */
    fb.len = fixed.len - 1;
    memcpy(fb.data, fixed.data, fb.len);
    expect_probe_ok(&fb, "vhd", "vhd", "fixed", fixed.len - 512);

    free(fixed.data);
    free(dyn.data);
    free(b.data);
    free(fb.data);
}

/* ---- VMDK and raw ------------------------------------------------------------------------ */

static void vmdk_detected_and_refused(void **state)
{
    struct fixture *f = *state;
    NEED("qemu-img");
    sh(f, "qemu-img convert -q -O vmdk -o subformat=streamOptimized pattern.raw so.vmdk");
    sh(f, "qemu-img convert -q -O vmdk pattern.raw ms.vmdk");
    sh(f, "qemu-img create -q -f vmdk -o subformat=monolithicFlat flat.vmdk 8M");
    sh(f, "qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse split.vmdk 8M");

    struct blob so = slurp(f, "so.vmdk");
    expect_probe_ok(&so, NULL, "vmdk", "streamOptimized", 5u << 20);
    expect_probe_ok(&so, "vmdk", "vmdk", "streamOptimized", 5u << 20);
    struct blob ms = slurp(f, "ms.vmdk");
    expect_probe_ok(&ms, NULL, "vmdk", "monolithicSparse", 5u << 20);
    expect_probe_fails(&ms, "qcow2", "image format is vmdk, expected qcow2");

    struct blob flat = slurp(f, "flat.vmdk");
    expect_probe_fails(&flat, NULL, "vmdk descriptor file refused: it names other extent files");
    expect_probe_fails(&flat, "raw", "image format is vmdk, expected raw");
    struct blob split = slurp(f, "split.vmdk");
    expect_probe_fails(&split, "vmdk", "vmdk descriptor file refused");

    /* VMware's stream layout: the header says "grain directory at the end" and the real
     * header follows the data as a footer (footer marker, footer, end-of-stream marker). qemu
     * writes the directory offset in the header; move it to a footer, check qemu agrees. */
    struct blob st = {malloc(so.len + 1536), so.len + 1536};
    assert_non_null(st.data);
    memcpy(st.data, so.data, so.len);
    memset(st.data + so.len, 0, 1536);
    st.data[so.len] = 1;      /* footer marker: 1 sector, size 0 */
    st.data[so.len + 12] = 3; /* type footer */
    memcpy(st.data + so.len + 512, so.data, 512);
    memset(st.data + 56, 0xff, 8); /* gdOffset = GD_AT_END */
    spit(f, "stream.vmdk", st.data, st.len);
    sh(f, "qemu-img info -f vmdk stream.vmdk >/dev/null");
    expect_probe_ok(&st, NULL, "vmdk", "streamOptimized", 5u << 20);
    st.data[so.len + 512 + 13] ^= 1; /* the footer's capacity differs */
    expect_probe_fails(&st, NULL, "vmdk stream footer disagrees with the header");
    memset(st.data + so.len + 512, 0, 4);
    expect_probe_fails(&st, NULL, "no stream footer in the second-to-last sector");
    free(st.data);

    struct blob b = copy_blob(&ms);
    memset(b.data + 12, 0, 8); /* capacity 0: qemu would follow the embedded descriptor */
    expect_probe_fails(&b, NULL, "vmdk capacity is 0");
    memcpy(b.data, ms.data, b.len);
    b.data[4] = 4;
    expect_probe_fails(&b, NULL, "vmdk version 4 not supported");
    memcpy(b.data, ms.data, b.len);
    b.data[20] = 100; /* grain size of 100 sectors */
    expect_probe_fails(&b, NULL, "vmdk grain size of 100 sectors");
    memcpy(b.data, ms.data, b.len);
    b.data[75] = '\n'; /* "\r\n" mangled into "\n\n" */
    expect_probe_fails(&b, NULL, "text-mode transfer");
    memcpy(b.data, ms.data, b.len);
    b.len = 4096; /* the embedded descriptor is cut off */
    expect_probe_fails(&b, NULL, "vmdk truncated: embedded descriptor at sector 1");
    uint64_t gd = (uint64_t)ms.data[56] | (uint64_t)ms.data[57] << 8; /* little-endian, small */
    b.len = gd * 512 + 2; /* the grain directory is cut off */
    expect_probe_fails(&b, NULL, "vmdk truncated: grain directory at sector");
    b.len = 100;
    expect_probe_fails(&b, NULL, "vmdk truncated: the header needs 512 bytes");

    free(so.data);
    free(ms.data);
    free(flat.data);
    free(split.data);
    free(b.data);
}

static void raw_and_reader_errors(void **state)
{
    struct fixture *f = *state;
    struct blob raw = slurp(f, "pattern.raw");
    expect_probe_ok(&raw, NULL, "raw", "", 5u << 20);
    expect_probe_ok(&raw, "raw", "raw", "", 5u << 20);
    expect_probe_fails(&raw, "qcow2", "not a qcow2 image");
    expect_probe_fails(&raw, "ext4", "unknown disk format \"ext4\"");
    struct blob tiny = {(unsigned char *)"x", 1};
    expect_probe_ok(&tiny, NULL, "raw", "", 1);
    struct blob empty = {(unsigned char *)"", 0};
    expect_probe_fails(&empty, NULL, "disk image is empty");

    /* The reader's own errors pass up unchanged; data shorter than announced is an I/O error. */
    struct img_disk_info info;
    struct nb_error err = {0};
    int fd = -1;
    assert_int_equal(img_disk_probe(img_read_fd, &fd, 4096, NULL, &info, &err), -1);
    assert_int_equal(err.code, NB_ERR_IO);
    assert_non_null(strstr(err.msg, "cannot read the image file"));
    struct blob half = {raw.data, 1000};
    assert_int_equal(img_disk_probe(mem_read, &half, 4096, NULL, &info, &err), -1);
    assert_int_equal(err.code, NB_ERR_IO);
    assert_non_null(strstr(err.msg, "short read at offset"));
    free(raw.data);
}

/* ---- OVF --------------------------------------------------------------------------------- */

#define VMDK_SO "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"

/* A descriptor as VMware's ovftool writes them (trimmed). */
static const char good_ovf[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<Envelope vmw:buildId=\"build-7362\" xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\" "
    "xmlns:cim=\"http://schemas.dmtf.org/wbem/wscim/1/common\" "
    "xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\" "
    "xmlns:rasd=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"
    "CIM_ResourceAllocationSettingData\" "
    "xmlns:vmw=\"http://www.vmware.com/schema/ovf\" "
    "xmlns:vssd=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"
    "CIM_VirtualSystemSettingData\" "
    "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n"
    "  <References>\n"
    "    <File ovf:href=\"web-disk1.vmdk\" ovf:id=\"file1\" ovf:size=\"68608\"/>\n"
    "    <File ovf:href=\"web data.vmdk\" ovf:id=\"file2\"/>\n"
    "  </References>\n"
    "  <DiskSection>\n"
    "    <Info>Virtual disk information</Info>\n"
    "    <Disk ovf:capacity=\"10\" ovf:capacityAllocationUnits=\"byte * 2^30\" "
    "ovf:diskId=\"vmdisk1\" ovf:fileRef=\"file1\" ovf:format=\"" VMDK_SO "\" "
    "ovf:populatedSize=\"0\"/>\n"
    "    <Disk ovf:capacity=\"536870912\" ovf:diskId=\"vmdisk2\" ovf:fileRef=\"file2\" "
    "ovf:format=\"" VMDK_SO "\"/>\n"
    "  </DiskSection>\n"
    "  <NetworkSection>\n"
    "    <Info>The list of logical networks</Info>\n"
    "    <Network ovf:name=\"VM Network\"><Description>The VM Network</Description></Network>\n"
    "    <Network ovf:name=\"backend\"/>\n"
    "  </NetworkSection>\n"
    "  <x:VirtualSystem xmlns:x=\"urn:not-ovf\" ovf:id=\"decoy\"/>\n"
    "  <VirtualSystem ovf:id=\"web-01\">\n"
    "    <Info>A virtual machine</Info>\n"
    "    <Name>web-01 server</Name>\n"
    "    <OperatingSystemSection ovf:id=\"94\" vmw:osType=\"ubuntu64Guest\">\n"
    "      <Info>The kind of installed guest operating system</Info>\n"
    "      <Description> Ubuntu Linux (64-bit) </Description>\n"
    "    </OperatingSystemSection>\n"
    "    <VirtualHardwareSection>\n"
    "      <Info>Virtual hardware requirements</Info>\n"
    "      <System>\n"
    "        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>\n"
    "        <vssd:InstanceID>0</vssd:InstanceID>\n"
    "        <vssd:VirtualSystemType>vmx-10</vssd:VirtualSystemType>\n"
    "      </System>\n"
    "      <Item>\n"
    "        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>\n"
    "        <rasd:ElementName>2 virtual CPU(s)</rasd:ElementName>\n"
    "        <rasd:InstanceID>1</rasd:InstanceID>\n"
    "        <rasd:ResourceType>3</rasd:ResourceType>\n"
    "        <rasd:VirtualQuantity>2</rasd:VirtualQuantity>\n"
    "      </Item>\n"
    "      <Item>\n"
    "        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>\n"
    "        <rasd:ElementName>2048MB of memory</rasd:ElementName>\n"
    "        <rasd:InstanceID>2</rasd:InstanceID>\n"
    "        <rasd:ResourceType>4</rasd:ResourceType>\n"
    "        <rasd:VirtualQuantity>2048</rasd:VirtualQuantity>\n"
    "      </Item>\n"
    "      <Item>\n"
    "        <rasd:ElementName>SCSI controller 0</rasd:ElementName>\n"
    "        <rasd:InstanceID>3</rasd:InstanceID>\n"
    "        <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>\n"
    "        <rasd:ResourceType>6</rasd:ResourceType>\n"
    "      </Item>\n"
    "      <Item>\n"
    "        <rasd:AddressOnParent>0</rasd:AddressOnParent>\n"
    "        <rasd:ElementName>Hard disk 1</rasd:ElementName>\n"
    "        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>\n"
    "        <rasd:InstanceID>4</rasd:InstanceID>\n"
    "        <rasd:Parent>3</rasd:Parent>\n"
    "        <rasd:ResourceType>17</rasd:ResourceType>\n"
    "      </Item>\n"
    "      <Item>\n"
    "        <rasd:AddressOnParent>1</rasd:AddressOnParent>\n"
    "        <rasd:ElementName>Hard disk 2</rasd:ElementName>\n"
    "        <rasd:HostResource>ovf:/disk/vmdisk2</rasd:HostResource>\n"
    "        <rasd:InstanceID>5</rasd:InstanceID>\n"
    "        <rasd:Parent>3</rasd:Parent>\n"
    "        <rasd:ResourceType>17</rasd:ResourceType>\n"
    "      </Item>\n"
    "      <Item>\n"
    "        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>\n"
    "        <rasd:Connection>VM Network</rasd:Connection>\n"
    "        <rasd:ElementName>Network adapter 1</rasd:ElementName>\n"
    "        <rasd:InstanceID>6</rasd:InstanceID>\n"
    "        <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>\n"
    "        <rasd:ResourceType>10</rasd:ResourceType>\n"
    "      </Item>\n"
    "    </VirtualHardwareSection>\n"
    "  </VirtualSystem>\n"
    "</Envelope>\n";

/* Returns 'text' with the first occurrence of 'from' replaced by 'to' (malloc()ed). */
static char *subst(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    if (!at) {
        fail_msg("\"%s\" is not in the template", from);
    }
    size_t pre = (size_t)(at - text), flen = strlen(from), tlen = strlen(to);
    char *out = malloc(strlen(text) - flen + tlen + 1);
    assert_non_null(out);
    memcpy(out, text, pre);
    memcpy(out + pre, to, tlen);
    strcpy(out + pre + tlen, at + flen);
    return out;
}

static void check_good_ovf(const struct img_ovf *o)
{
    assert_string_equal(o->name, "web-01");
    assert_string_equal(o->os_description, "Ubuntu Linux (64-bit)");
    assert_int_equal(o->vcpus, 2);
    assert_int_equal(o->memory_mib, 2048);
    assert_int_equal(o->n_files, 2);
    assert_string_equal(o->files[0].id, "file1");
    assert_string_equal(o->files[0].href, "web-disk1.vmdk");
    assert_int_equal(o->files[0].size, 68608);
    assert_string_equal(o->files[1].id, "file2");
    assert_string_equal(o->files[1].href, "web data.vmdk");
    assert_int_equal(o->files[1].size, 0);
    assert_int_equal(o->n_disks, 2);
    assert_string_equal(o->disks[0].disk_id, "vmdisk1");
    assert_string_equal(o->disks[0].file_ref, "file1");
    assert_int_equal(o->disks[0].capacity_bytes, UINT64_C(10) << 30);
    assert_string_equal(o->disks[0].format, VMDK_SO);
    assert_string_equal(o->disks[1].disk_id, "vmdisk2");
    assert_string_equal(o->disks[1].file_ref, "file2");
    assert_int_equal(o->disks[1].capacity_bytes, 512u << 20);
    assert_int_equal(o->n_nets, 2);
    assert_string_equal(o->nets[0].name, "VM Network");
    assert_string_equal(o->nets[1].name, "backend");
}

static void ovf_good_descriptor(void **state)
{
    struct img_ovf o;
    struct nb_error err = {0};
    assert_zero(img_ovf_parse(good_ovf, strlen(good_ovf), &o, &err), err);
    check_good_ovf(&o);
    assert_string_equal(img_ovf_format_name(o.disks[0].format), "vmdk");

    /* OVF 2.0, another prefix for the envelope namespace, memory in GiB, no Name fallback. */
    char *v2 = subst(good_ovf, "xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\"",
                     "xmlns=\"http://schemas.dmtf.org/ovf/envelope/2\"");
    char *v2b = subst(v2, "xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\"",
                      "xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/2\"");
    char *v2c =
        subst(v2b, "byte * 2^20</rasd:AllocationUnits>", "byte*2^30</rasd:AllocationUnits>");
    char *v2d = subst(v2c, ">2048</rasd:VirtualQuantity>", ">4</rasd:VirtualQuantity>");
    char *v2e = subst(v2d, "<VirtualSystem ovf:id=\"web-01\">", "<VirtualSystem>");
    assert_zero(img_ovf_parse(v2e, strlen(v2e), &o, &err), err);
    assert_int_equal(o.memory_mib, 4096);
    assert_string_equal(o.name, "web-01 server");
    assert_int_equal(o.disks[0].capacity_bytes, UINT64_C(10) << 30);
    free(v2);
    free(v2b);
    free(v2c);
    free(v2d);
    free(v2e);

    /* Legacy unit names. */
    char *mb =
        subst(good_ovf, "byte * 2^20</rasd:AllocationUnits>", "MegaBytes</rasd:AllocationUnits>");
    assert_zero(img_ovf_parse(mb, strlen(mb), &o, &err), err);
    assert_int_equal(o.memory_mib, 2048);
    free(mb);

    assert_string_equal(img_ovf_format_name("http://technet.microsoft.com/en-us/library/"
                                            "bb676673.aspx"),
                        "vhd");
    assert_string_equal(
        img_ovf_format_name("http://www.vmware.com/interfaces/specifications/vmdk.html#sparse"),
        "vmdk");
    assert_string_equal(img_ovf_format_name("http://www.gnome.org/~markmc/qcow-image-format.html"),
                        "qcow2");
    assert_null(img_ovf_format_name("http://example.com/mystery"));
    assert_string_equal(img_ovf_format_uri("vmdk"), VMDK_SO);
    assert_string_equal(img_ovf_format_name(img_ovf_format_uri("raw")), "raw");
    assert_string_equal(img_ovf_format_name(img_ovf_format_uri("vhd")), "vhd");
    assert_string_equal(img_ovf_format_name(img_ovf_format_uri("qcow2")), "qcow2");
    assert_null(img_ovf_format_uri("vdi"));
}

static void expect_ovf_refused(const char *from, const char *to, const char *needle)
{
    char *xml = subst(good_ovf, from, to);
    struct img_ovf o;
    struct nb_error err = {0};
    int rc = img_ovf_parse(xml, strlen(xml), &o, &err);
    expect_refused(rc, &err, needle);
    assert_int_equal(o.n_files, 0);
    free(xml);
}

static void ovf_hostile_descriptors(void **state)
{
    expect_ovf_refused("ovf:href=\"web-disk1.vmdk\"", "ovf:href=\"../x\"",
                       "href \"../x\" refused: not a plain relative file name");
    expect_ovf_refused("ovf:href=\"web-disk1.vmdk\"", "ovf:href=\"http://evil.example/x.vmdk\"",
                       "href \"http://evil.example/x.vmdk\" refused");
    expect_ovf_refused("ovf:href=\"web-disk1.vmdk\"", "ovf:href=\"/etc/shadow\"",
                       "not a plain relative file name");
    expect_ovf_refused("ovf:href=\"web-disk1.vmdk\"", "ovf:href=\"..\"", "refused");
    expect_ovf_refused("ovf:href=\"web-disk1.vmdk\"", "ovf:href=\"file:disk.vmdk\"", "refused");
    expect_ovf_refused("ovf:fileRef=\"file2\"", "ovf:fileRef=\"file9\"",
                       "Disk \"vmdisk2\" fileRef \"file9\" names no File");
    expect_ovf_refused("ovf:id=\"file2\"", "ovf:id=\"file1\"", "declared twice");
    expect_ovf_refused("  </VirtualSystem>\n",
                       "  </VirtualSystem>\n  <VirtualSystem ovf:id=\"two\"/>\n",
                       "exactly one VirtualSystem, found 2");
    expect_ovf_refused("<VirtualSystem ovf:id=\"web-01\">", "<VirtualSystemX ovf:id=\"web-01\">",
                       "not well-formed xml");
    expect_ovf_refused("  <x:VirtualSystem", "  <VirtualSystemCollection ovf:id=\"c\"/>\n  <x:VS",
                       "VirtualSystemCollection refused");
    expect_ovf_refused(">2</rasd:VirtualQuantity>", ">0</rasd:VirtualQuantity>",
                       "vcpus \"0\" out of range 1..256");
    expect_ovf_refused(">2</rasd:VirtualQuantity>", ">257</rasd:VirtualQuantity>",
                       "vcpus \"257\" out of range");
    expect_ovf_refused(">2048</rasd:VirtualQuantity>", ">8388608</rasd:VirtualQuantity>",
                       "memory \"8388608\" x 1048576 bytes out of range 1 MiB..4 TiB");
    expect_ovf_refused("byte * 2^20</rasd:AllocationUnits>", "byte * 2^8</rasd:AllocationUnits>",
                       "out of range 1 MiB..4 TiB");
    expect_ovf_refused("byte * 2^20</rasd:AllocationUnits>", "furlongs</rasd:AllocationUnits>",
                       "AllocationUnits \"furlongs\" not understood");
    expect_ovf_refused("<rasd:ResourceType>3</rasd:ResourceType>",
                       "<rasd:ResourceType>33</rasd:ResourceType>", "declares no cpu Item");
    expect_ovf_refused("ovf:capacity=\"10\"", "ovf:capacity=\"${disk.size}\"",
                       "capacity \"${disk.size}\" is not a positive number");
    expect_ovf_refused("ovf:/disk/vmdisk2<", "ovf:/disk/vmdisk7<",
                       "HostResource \"ovf:/disk/vmdisk7\" names no Disk");
    expect_ovf_refused("xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\"",
                       "xmlns=\"http://example.com/ovf\"", "root is not an Envelope");
    expect_ovf_refused("ovf:href=\"web-disk1.vmdk\" ovf:id=\"file1\"",
                       "ovf:href=\"web-disk1.vmdk\" ovf:compression=\"gzip\" ovf:id=\"file1\"",
                       "compressed or chunked");

    /* No disk at all. */
    char *a = subst(good_ovf, "ovf:diskId=\"vmdisk1\"", "ovf:diskId=\"x\"");
    char *nodisk = subst(a, "<DiskSection>", "<DiskSectionX>");
    char *nodisk2 = subst(nodisk, "</DiskSection>", "</DiskSectionX>");
    char *nodisk3 = subst(nodisk2, "ovf:/disk/vmdisk1", "x");
    char *nodisk4 = subst(nodisk3, "ovf:/disk/vmdisk2", "y");
    struct img_ovf o;
    struct nb_error err = {0};
    expect_refused(img_ovf_parse(nodisk4, strlen(nodisk4), &o, &err), &err, "declares no Disk");
    free(a);
    free(nodisk);
    free(nodisk2);
    free(nodisk3);
    free(nodisk4);

    /* A name too long for its field is refused, not cut. */
    char longid[200];
    memset(longid, 'a', 150);
    snprintf(longid + 150, sizeof longid - 150, "\">");
    char from[] = "web-01\">";
    char *big = subst(good_ovf, from, longid);
    expect_refused(img_ovf_parse(big, strlen(big), &o, &err), &err, "VirtualSystem id too long");
    free(big);

    /* Bounded input. */
    size_t huge = IMG_OVF_MAX_LEN + 1;
    char *junk = calloc(1, huge + 1);
    memset(junk, ' ', huge);
    expect_refused(img_ovf_parse(junk, huge, &o, &err), &err, "ovf descriptor too large");
    free(junk);
    expect_refused(img_ovf_parse("", 0, &o, &err), &err, "not well-formed");
}

/* External and internal entities: the document is refused, the file is never read. */
static void ovf_entities_refused(void **state)
{
    struct fixture *f = *state;
    spit(f, "secret", "TOPSECRET-0x5eed\n", 17);
    char decl[512];
    snprintf(decl, sizeof decl,
             "<?xml version=\"1.0\"?>\n<!DOCTYPE Envelope [<!ENTITY x SYSTEM "
             "\"file://%s/secret\">]>\n<Envelope",
             f->dir);
    char *t1 = subst(good_ovf, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Envelope", decl);
    char *xxe = subst(t1, "<Name>web-01 server</Name>", "<Name>&x;</Name>");
    struct img_ovf o;
    struct nb_error err = {0};
    expect_refused(img_ovf_parse(xxe, strlen(xxe), &o, &err), &err, "DOCTYPE refused");
    assert_null(strstr(err.msg, "TOPSECRET"));
    assert_null(strstr(o.name, "TOPSECRET"));

    /* The same entity in an href. */
    char *xxe2 = subst(t1, "ovf:href=\"web-disk1.vmdk\"", "ovf:href=\"&x;\"");
    expect_refused(img_ovf_parse(xxe2, strlen(xxe2), &o, &err), &err, "ovf descriptor");
    assert_null(strstr(err.msg, "TOPSECRET"));

    /* A parameter entity and a billion laughs. */
    static const char pe[] = "<?xml version=\"1.0\"?>\n"
                             "<!DOCTYPE Envelope [<!ENTITY % p SYSTEM \"file:///etc/passwd\"> %p;]>"
                             "<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\"/>";
    int rc = img_ovf_parse(pe, strlen(pe), &o, &err);
    assert_int_equal(rc, -1);
    assert_null(strstr(err.msg, "root:"));
    static const char lol[] =
        "<?xml version=\"1.0\"?>\n<!DOCTYPE Envelope [<!ENTITY a \"aaaaaaaaaa\">"
        "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;\">"
        "<!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\"><!ENTITY e \"&d;&d;&d;&d;&d;&d;&d;&d;\">]>"
        "<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\"><Name>&e;</Name></Envelope>";
    expect_refused(img_ovf_parse(lol, strlen(lol), &o, &err), &err, "ovf descriptor");
    free(t1);
    free(xxe);
    free(xxe2);
}

static void assert_ovf_equal(const struct img_ovf *a, const struct img_ovf *b)
{
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->os_description, b->os_description);
    assert_int_equal(a->vcpus, b->vcpus);
    assert_int_equal(a->memory_mib, b->memory_mib);
    assert_int_equal(a->n_files, b->n_files);
    assert_int_equal(a->n_disks, b->n_disks);
    assert_int_equal(a->n_nets, b->n_nets);
    /* Parsed structs are zeroed first, so whole-struct equality holds too. */
    assert_memory_equal(a, b, sizeof *a);
}

static void ovf_write_round_trips(void **state)
{
    struct img_ovf o, back;
    struct nb_error err = {0};
    assert_zero(img_ovf_parse(good_ovf, strlen(good_ovf), &o, &err), err);
    char *xml = img_ovf_write(&o);
    assert_non_null(xml);
    assert_zero(img_ovf_parse(xml, strlen(xml), &back, &err), err);
    assert_ovf_equal(&o, &back);
    check_good_ovf(&back);
    free(xml);

    /* Every slot used, strings that need escaping, sizes in every unit. */
    memset(&o, 0, sizeof o);
    snprintf(o.name, sizeof o.name, "vm <&> \"quoted\" 'x' \xc3\xa9t\xc3\xa9");
    snprintf(o.os_description, sizeof o.os_description, "Debian & friends <64-bit>");
    o.vcpus = 256;
    o.memory_mib = UINT64_C(4) << 20;
    for (size_t i = 0; i < IMG_OVF_MAX_ITEMS; i++) {
        snprintf(o.files[i].id, sizeof o.files[i].id, "file-%zu", i);
        snprintf(o.files[i].href, sizeof o.files[i].href, "disk %zu & <co>.vmdk", i);
        o.files[i].size = i * 1000;
        snprintf(o.disks[i].disk_id, sizeof o.disks[i].disk_id, "disk-%zu", i);
        snprintf(o.disks[i].file_ref, sizeof o.disks[i].file_ref, "file-%zu", i);
        o.disks[i].capacity_bytes = i % 3 == 0   ? (i + 1) << 30
                                    : i % 3 == 1 ? (i + 1) << 20
                                                 : i * 512 + 1;
        snprintf(o.disks[i].format, sizeof o.disks[i].format, "%s",
                 i % 2 ? img_ovf_format_uri("vhd") : "");
        snprintf(o.nets[i].name, sizeof o.nets[i].name, "net \"%zu\"", i);
    }
    o.n_files = o.n_disks = o.n_nets = IMG_OVF_MAX_ITEMS;
    xml = img_ovf_write(&o);
    assert_non_null(xml);
    assert_zero(img_ovf_parse(xml, strlen(xml), &back, &err), err);
    assert_ovf_equal(&o, &back);

    /* xmllint agrees that it is well-formed. */
    struct fixture *f = *state;
    if (have("xmllint")) {
        spit(f, "written.ovf", xml, strlen(xml));
        sh(f, "xmllint --noout written.ovf");
    }
    free(xml);
}

/* ---- manifests --------------------------------------------------------------------------- */

static void mf_parse_forms(void **state)
{
    static const char text[] =
        "SHA256(disk1.vmdk)= 0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\n"
        "\n"
        "SHA1 (desc.ovf) = 0123456789abcdef0123456789abcdef01234567\r\n"
        "  SHA256(a (b).vmdk)=0000000000000000000000000000000000000000000000000000000000000000";
    struct img_mf_entry e[4];
    size_t n = 0;
    struct nb_error err = {0};
    assert_zero(img_mf_parse(text, strlen(text), e, 4, &n, &err), err);
    assert_int_equal(n, 3);
    assert_string_equal(e[0].algo, "SHA256");
    assert_string_equal(e[0].name, "disk1.vmdk");
    assert_string_equal(e[0].hex,
                        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    assert_string_equal(e[1].algo, "SHA1");
    assert_string_equal(e[1].name, "desc.ovf");
    assert_string_equal(e[1].hex, "0123456789abcdef0123456789abcdef01234567");
    assert_string_equal(e[2].name, "a (b).vmdk");

    struct {
        const char *text, *needle;
    } bad[] = {
        {"MD5(x)= 0123456789abcdef0123456789abcdef", "algorithm \"MD5\" not supported"},
        {"SHA256(x)= 0123", "SHA256 digest of \"x\" must be 64 hex digits"},
        {"SHA1(x)= 0123456789abcdef0123456789abcdef0123456z", "must be 40 hex digits"},
        {"SHA1(../x)= 0123456789abcdef0123456789abcdef01234567", "not a plain file name"},
        {"SHA1 x = 0123", "line 1 malformed"},
        {"SHA1(x) 0123456789abcdef0123456789abcdef01234567", "no \"=\""},
        {"SHA1(x)= 0123456789abcdef0123456789abcdef01234567\n"
         "SHA1(x)= 0123456789abcdef0123456789abcdef01234567",
         "line 2: \"x\" listed twice"},
        {"SHA1(a)= 0123456789abcdef0123456789abcdef01234567\n"
         "SHA1(b)= 0123456789abcdef0123456789abcdef01234567\n"
         "SHA1(c)= 0123456789abcdef0123456789abcdef01234567\n"
         "SHA1(d)= 0123456789abcdef0123456789abcdef01234567\n"
         "SHA1(e)= 0123456789abcdef0123456789abcdef01234567\n",
         "more than 4 entries"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = img_mf_parse(bad[i].text, strlen(bad[i].text), e, 4, &n, &err);
        expect_refused(rc, &err, bad[i].needle);
    }
}

/* ---- OVA --------------------------------------------------------------------------------- */

struct member {
    const char *name;
    const void *data;
    size_t len;
};

/* Builds a tar archive of 'n' members with img_tar_header(), ending with two zero blocks. */
static struct blob build_tar(const struct member *m, size_t n)
{
    size_t cap = 1024;
    for (size_t i = 0; i < n; i++) {
        cap += 512 + (m[i].len + 511) / 512 * 512;
    }
    struct blob b = {calloc(1, cap), cap};
    assert_non_null(b.data);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        struct nb_error err = {0};
        assert_zero(img_tar_header(b.data + off, m[i].name, m[i].len, 1700000000, &err), err);
        memcpy(b.data + off + 512, m[i].data, m[i].len);
        off += 512 + (m[i].len + 511) / 512 * 512;
    }
    return b;
}

static void sha_hex(const char *algo, const void *data, size_t len, char *hex)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    const EVP_MD *type = strcmp(algo, "SHA1") ? EVP_sha256() : EVP_sha1();
    assert_int_equal(EVP_Digest(data, len, md, &mdlen, type, NULL), 1);
    for (unsigned int i = 0; i < mdlen; i++) {
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
}

/* The parts of a test OVA: a descriptor written by img_ovf_write() naming a real
 * streamOptimized disk, and a manifest of both. */
struct ova_parts {
    struct blob disk;
    char *ovf;
    char mf[512];
};

static void make_parts(struct fixture *f, struct ova_parts *p, const char *algo)
{
    sh(f, "test -f so2.vmdk || "
          "qemu-img convert -q -O vmdk -o subformat=streamOptimized pattern.raw so2.vmdk");
    p->disk = slurp(f, "so2.vmdk");
    struct img_ovf o = {.vcpus = 1, .memory_mib = 512, .n_files = 1, .n_disks = 1, .n_nets = 1};
    snprintf(o.name, sizeof o.name, "imported");
    snprintf(o.files[0].id, sizeof o.files[0].id, "file1");
    snprintf(o.files[0].href, sizeof o.files[0].href, "disk1.vmdk");
    o.files[0].size = p->disk.len;
    snprintf(o.disks[0].disk_id, sizeof o.disks[0].disk_id, "vmdisk1");
    snprintf(o.disks[0].file_ref, sizeof o.disks[0].file_ref, "file1");
    o.disks[0].capacity_bytes = 5u << 20;
    snprintf(o.disks[0].format, sizeof o.disks[0].format, "%s", img_ovf_format_uri("vmdk"));
    snprintf(o.nets[0].name, sizeof o.nets[0].name, "default");
    p->ovf = img_ovf_write(&o);
    assert_non_null(p->ovf);
    char h1[129], h2[129];
    sha_hex(algo, p->ovf, strlen(p->ovf), h1);
    sha_hex(algo, p->disk.data, p->disk.len, h2);
    snprintf(p->mf, sizeof p->mf, "%s(vm.ovf)= %s\n%s(disk1.vmdk)= %s\n", algo, h1, algo, h2);
}

static void free_parts(struct ova_parts *p)
{
    free(p->disk.data);
    free(p->ovf);
}

static int verify(const struct blob *b, struct img_ova_info *info, struct nb_error *err)
{
    return img_ova_verify(mem_read, (void *)b, b->len, info, err);
}

static void expect_verify_fails(const struct blob *b, const char *needle)
{
    struct img_ova_info *info = malloc(sizeof *info);
    struct nb_error err = {0};
    expect_refused(verify(b, info, &err), &err, needle);
    free(info);
}

/* Reads a sub-range of a blob: one entry of an archive, as the store reads it. */
struct slice {
    const struct blob *b;
    uint64_t off;
};

static int64_t slice_read(void *ctx, void *buf, size_t len, uint64_t off, struct nb_error *err)
{
    struct slice *s = ctx;
    return mem_read((void *)s->b, buf, len, s->off + off, err);
}

static void ova_verified(void **state)
{
    struct fixture *f = *state;
    NEED("qemu-img");
    struct ova_parts p;
    make_parts(f, &p, "SHA256");
    struct member m[] = {
        {"vm.ovf", p.ovf, strlen(p.ovf)},
        {"vm.mf", p.mf, strlen(p.mf)},
        {"disk1.vmdk", p.disk.data, p.disk.len},
    };
    struct blob ova = build_tar(m, 3);
    struct img_ova_info *info = malloc(sizeof *info);
    struct nb_error err = {0};
    assert_zero(verify(&ova, info, &err), err);
    assert_true(info->had_manifest);
    assert_int_equal(info->ova.n, 3);
    assert_int_equal(info->mf_entry, 1);
    assert_int_equal(info->disk_entry[0], 2);
    assert_int_equal(info->disk_entry[1], -1);
    assert_string_equal(info->ovf.name, "imported");
    const struct img_ova_entry *e = &info->ova.entries[2];
    assert_string_equal(e->name, "disk1.vmdk");
    assert_int_equal(e->size, p.disk.len);
    assert_memory_equal(ova.data + e->offset, p.disk.data, p.disk.len);
    /* The disk inside probes as what the descriptor says. */
    struct slice s = {&ova, e->offset};
    struct img_disk_info di;
    assert_zero(img_disk_probe(slice_read, &s, e->size,
                               img_ovf_format_name(info->ovf.disks[0].format), &di, &err),
                err);
    assert_string_equal(di.subformat, "streamOptimized");

    /* GNU tar reads our archive back, byte for byte. */
    if (have("tar")) {
        spit(f, "ours.ova", ova.data, ova.len);
        sh(f, "mkdir -p out && tar -xf ours.ova -C out && cmp out/disk1.vmdk so2.vmdk && "
              "test \"$(tar -tf ours.ova | tr '\\n' ' ')\" = 'vm.ovf vm.mf disk1.vmdk '");
    }

    /* No manifest: still valid. */
    struct member nomf[] = {m[0], m[2]};
    struct blob ova2 = build_tar(nomf, 2);
    assert_zero(verify(&ova2, info, &err), err);
    assert_false(info->had_manifest);
    assert_int_equal(info->disk_entry[0], 1);

    /* SHA1 manifests, and a certificate the manifest need not cover. */
    struct ova_parts p1;
    make_parts(f, &p1, "SHA1");
    struct member sha1[] = {
        {"vm.ovf", p1.ovf, strlen(p1.ovf)},
        {"vm.mf", p1.mf, strlen(p1.mf)},
        {"vm.cert", "cert", 4},
        {"disk1.vmdk", p1.disk.data, p1.disk.len},
    };
    struct blob ova3 = build_tar(sha1, 4);
    assert_zero(verify(&ova3, info, &err), err);
    assert_true(info->had_manifest);
    assert_int_equal(info->disk_entry[0], 3);

    free(info);
    free(ova.data);
    free(ova2.data);
    free(ova3.data);
    free_parts(&p);
    free_parts(&p1);
}

/* Rewrites the checksum of the tar header at 'h' after a test changed it. */
static void tar_fix_checksum(unsigned char *h)
{
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < 512; i++) {
        sum += h[i];
    }
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
}

static void ova_refusals(void **state)
{
    struct fixture *f = *state;
    NEED("qemu-img");
    struct ova_parts p;
    make_parts(f, &p, "SHA256");
    struct member m[] = {
        {"vm.ovf", p.ovf, strlen(p.ovf)},
        {"vm.mf", p.mf, strlen(p.mf)},
        {"disk1.vmdk", p.disk.data, p.disk.len},
        {"extra.txt", "hello", 5},
    };
    size_t disk_hdr =
        512 + (strlen(p.ovf) + 511) / 512 * 512 + 512 + (strlen(p.mf) + 511) / 512 * 512;

    /* A wrong digest (one byte of the disk changed). */
    struct blob b = build_tar(m, 3);
    b.data[disk_hdr + 512 + 100] ^= 1;
    expect_verify_fails(&b, "digest mismatch for \"disk1.vmdk\": the manifest says SHA256");
    free(b.data);

    /* The disk named by the descriptor is missing (the manifest no longer names it either). */
    char mf_ovf_only[200];
    snprintf(mf_ovf_only, sizeof mf_ovf_only, "%.*s", (int)(strchr(p.mf, '\n') - p.mf + 1), p.mf);
    struct member missing[] = {m[0], {"vm.mf", mf_ovf_only, strlen(mf_ovf_only)}};
    b = build_tar(missing, 2);
    expect_verify_fails(&b, "file \"disk1.vmdk\" named by the descriptor is not in the archive");
    free(b.data);

    /* A file the manifest does not cover. */
    b = build_tar(m, 4);
    expect_verify_fails(&b, "file \"extra.txt\" is not covered by the manifest \"vm.mf\"");
    free(b.data);

    /* The manifest names a file that is not there. */
    char mf_more[600];
    snprintf(mf_more, sizeof mf_more,
             "%sSHA1(ghost.iso)= 0123456789abcdef0123456789abcdef01234567\n", p.mf);
    struct member ghost[] = {m[0], {"vm.mf", mf_more, strlen(mf_more)}, m[2]};
    b = build_tar(ghost, 3);
    expect_verify_fails(&b, "names \"ghost.iso\", which is not in the archive");
    free(b.data);

    /* The descriptor must come first. */
    struct member order[] = {m[2], m[0]};
    b = build_tar(order, 2);
    expect_verify_fails(&b,
                        "first file of an ova must be the .ovf descriptor, found \"disk1.vmdk\"");
    free(b.data);

    /* The declared size differs from the archived one. */
    struct member shorter[] = {m[0], {"disk1.vmdk", p.disk.data, p.disk.len - 512}};
    b = build_tar(shorter, 2);
    expect_verify_fails(&b, "\"disk1.vmdk\" is");
    free(b.data);

    /* A header checksum off by one. */
    b = build_tar(m, 3);
    b.data[disk_hdr + 148 + 5] ^= 1;
    expect_verify_fails(&b, "tar header checksum mismatch at offset");
    free(b.data);

    /* Truncated in the middle of the disk. */
    b = build_tar(m, 3);
    b.len = disk_hdr + 512 + p.disk.len / 2;
    expect_verify_fails(&b, "tar entry \"disk1.vmdk\" truncated");
    b.len = disk_hdr + 100;
    expect_verify_fails(&b, "tar truncated: partial header");
    free(b.data);

    /* "../evil" and "/etc/cron.d/x" (made by patching a valid header). */
    b = build_tar(m, 3);
    memset(b.data + disk_hdr, 0, 100);
    memcpy(b.data + disk_hdr, "../evil", 7);
    tar_fix_checksum(b.data + disk_hdr);
    expect_verify_fails(&b, "tar entry \"../evil\" at offset");
    expect_verify_fails(&b, "not a plain file name");
    memset(b.data + disk_hdr, 0, 100);
    memcpy(b.data + disk_hdr, "/etc/cron.d/x", 13);
    tar_fix_checksum(b.data + disk_hdr);
    expect_verify_fails(&b, "not a plain file name");

    /* A directory, a symlink, a device. */
    memset(b.data + disk_hdr, 0, 100);
    memcpy(b.data + disk_hdr, "disk1.vmdk", 10);
    b.data[disk_hdr + 156] = '5';
    tar_fix_checksum(b.data + disk_hdr);
    expect_verify_fails(&b, "is a directory: only regular files are allowed");
    b.data[disk_hdr + 156] = '2';
    tar_fix_checksum(b.data + disk_hdr);
    expect_verify_fails(&b, "is a symbolic link");
    b.data[disk_hdr + 156] = '3';
    tar_fix_checksum(b.data + disk_hdr);
    expect_verify_fails(&b, "is a character device");
    free(b.data);

    /* Two entries of one name. */
    struct member dup[] = {m[0], m[2], m[2]};
    b = build_tar(dup, 3);
    expect_verify_fails(&b, "tar entry \"disk1.vmdk\" appears twice");
    free(b.data);

    /* A header hidden after the end-of-archive block. */
    b = build_tar(m, 3);
    size_t end = b.len - 1024;
    unsigned char *grown = realloc(b.data, b.len + 1024);
    assert_non_null(grown);
    b.data = grown;
    memset(b.data + end + 512, 0, 1536);
    struct nb_error err = {0};
    assert_zero(img_tar_header(b.data + end + 512, "hidden.sh", 0, 0, &err), err);
    b.len += 1024;
    expect_verify_fails(&b, "tar has data after the end-of-archive block");
    free(b.data);

    /* A hostile descriptor inside an otherwise valid archive. */
    char *bad = subst(p.ovf, "ovf:href=\"disk1.vmdk\"", "ovf:href=\"../../disk1.vmdk\"");
    struct member badovf[] = {{"vm.ovf", bad, strlen(bad)}, m[2]};
    b = build_tar(badovf, 2);
    expect_verify_fails(&b, "href \"../../disk1.vmdk\" refused");
    free(b.data);
    free(bad);

    struct blob none = {(unsigned char *)"", 0};
    expect_verify_fails(&none, "ova archive holds no file");
    free_parts(&p);
}

static void tar_header_writer(void **state)
{
    unsigned char h[512];
    struct nb_error err = {0};
    expect_refused(img_tar_header(h, "../x", 1, 0, &err), &err, "not a plain file name");
    expect_refused(img_tar_header(h, "a/b", 1, 0, &err), &err, "not a plain file name");
    char longname[101];
    memset(longname, 'n', 100);
    longname[100] = '\0';
    expect_refused(img_tar_header(h, longname, 1, 0, &err), &err, "at most 99 bytes");
    expect_refused(img_tar_header(h, "x", 1, -1, &err), &err, "mtime -1 out of range");

    /* A file of 8 GiB + 1 gets a base-256 size; the scanner reads it back (the data is never
     * read: the archive is announced as the header and the data, which ends it). */
    uint64_t big = (UINT64_C(8) << 30) + 1;
    assert_zero(img_tar_header(h, "huge.img", big, 1700000000, &err), err);
    assert_int_equal(h[124], 0x80);
    struct blob hdr = {h, 512};
    struct img_ova ova;
    assert_zero(img_ova_scan(mem_read, &hdr, 512 + big, &ova, &err), err);
    assert_int_equal(ova.n, 1);
    assert_string_equal(ova.entries[0].name, "huge.img");
    assert_int_equal(ova.entries[0].offset, 512);
    assert_int_equal(ova.entries[0].size, big);

    /* Small sizes are octal, as GNU tar writes them. */
    assert_zero(img_tar_header(h, "vm.ovf", 1234, 1700000000, &err), err);
    assert_memory_equal(h + 124, "00000002322", 12);
    assert_memory_equal(h + 257,
                        "ustar\0"
                        "00",
                        8);
}

/* GNU tar's own archives: ustar, gnu (long names as 'L' entries) and pax ('x' headers). */
static void gnu_tar_archives_scan(void **state)
{
    struct fixture *f = *state;
    NEED("qemu-img");
    NEED("tar");
    struct ova_parts p;
    make_parts(f, &p, "SHA256");
    sh(f, "rm -rf gt && mkdir gt");
    spit(f, "gt/desc.ovf", p.ovf, strlen(p.ovf));
    spit(f, "gt/disk.vmdk", p.disk.data, p.disk.len);
    spit(f, "gt/x.mf", p.mf, strlen(p.mf));
    sh(f, "cd gt && tar --format=ustar -cf ../x.ova desc.ovf disk.vmdk x.mf");
    struct blob ova = slurp(f, "x.ova");
    struct img_ova scan;
    struct nb_error err = {0};
    assert_zero(img_ova_scan(mem_read, &ova, ova.len, &scan, &err), err);
    assert_int_equal(scan.n, 3);
    assert_string_equal(scan.entries[0].name, "desc.ovf");
    assert_string_equal(scan.entries[1].name, "disk.vmdk");
    assert_string_equal(scan.entries[2].name, "x.mf");
    assert_int_equal(scan.entries[0].size, strlen(p.ovf));
    assert_memory_equal(ova.data + scan.entries[0].offset, p.ovf, strlen(p.ovf));
    assert_int_equal(scan.entries[1].size, p.disk.len);
    assert_memory_equal(ova.data + scan.entries[1].offset, p.disk.data, p.disk.len);
    assert_memory_equal(ova.data + scan.entries[2].offset, p.mf, strlen(p.mf));
    /* GNU tar pads to 10 KiB records: the zero blocks that end it are accepted. */
    assert_int_equal(ova.len % 10240, 0);
    free(ova.data);

    /* Long names: GNU 'L' and pax 'x' headers; "./" prefixes dropped. */
    char lname[200];
    memset(lname, 'L', 150);
    snprintf(lname + 150, sizeof lname - 150, ".vmdk");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cp gt/disk.vmdk 'gt/%s'", lname);
    sh(f, "%s", cmd);
    const char *formats[] = {"gnu", "pax"};
    for (size_t i = 0; i < 2; i++) {
        sh(f, "cd gt && tar --format=%s -cf ../long.ova ./desc.ovf ./%s", formats[i], lname);
        struct blob lo = slurp(f, "long.ova");
        assert_zero(img_ova_scan(mem_read, &lo, lo.len, &scan, &err), err);
        assert_int_equal(scan.n, 2);
        assert_string_equal(scan.entries[0].name, "desc.ovf");
        assert_string_equal(scan.entries[1].name, lname);
        assert_memory_equal(lo.data + scan.entries[1].offset, p.disk.data, p.disk.len);
        free(lo.data);
    }

    /* A directory in a GNU tar archive. */
    sh(f, "mkdir -p gt/sub && cd gt && tar --format=ustar -cf ../dir.ova desc.ovf sub");
    struct blob dir_ova = slurp(f, "dir.ova");
    expect_refused(img_ova_scan(mem_read, &dir_ova, dir_ova.len, &scan, &err), &err,
                   "is a directory: only regular files are allowed");
    assert_non_null(strstr(err.msg, "tar entry \"sub/\" at offset"));
    free(dir_ova.data);
    free_parts(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(qcow2_versions_detected),
        cmocka_unit_test(qcow2_refusals),
        cmocka_unit_test(vhd_fixed_and_dynamic),
        cmocka_unit_test(vhd_refusals),
        cmocka_unit_test(vmdk_detected_and_refused),
        cmocka_unit_test(raw_and_reader_errors),
        cmocka_unit_test(ovf_good_descriptor),
        cmocka_unit_test(ovf_hostile_descriptors),
        cmocka_unit_test(ovf_entities_refused),
        cmocka_unit_test(ovf_write_round_trips),
        cmocka_unit_test(mf_parse_forms),
        cmocka_unit_test(ova_verified),
        cmocka_unit_test(ova_refusals),
        cmocka_unit_test(tar_header_writer),
        cmocka_unit_test(gnu_tar_archives_scan),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
