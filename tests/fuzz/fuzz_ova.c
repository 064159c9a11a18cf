/* Fuzz target: the OVA reader (image-store/fmt_ova.c): tar headers (ustar, GNU and pax
 * extensions), manifests, and the whole verification with the descriptor parse and the digest
 * checks. Every accepted entry must be a plain file name lying inside the archive. The input
 * is also parsed as a manifest on its own, since manifests are text from the tenant too. */
#include "imgfmt.h"
#include "nubo/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    xmlInitParser();
    return 0;
}

struct input {
    const uint8_t *data;
    size_t size;
};

static int64_t fuzz_read(void *ctx, void *buf, size_t len, uint64_t off, struct nb_error *err)
{
    const struct input *in = ctx;
    if (off >= in->size) {
        return 0;
    }
    size_t n = in->size - off < len ? in->size - (size_t)off : len;
    memcpy(buf, in->data + off, n);
    return (int64_t)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = {data, size};
    struct img_ova_info *info = malloc(sizeof *info);
    struct nb_error err = {0};
    if (!info) {
        abort();
    }
    if (img_ova_scan(fuzz_read, &in, size, &info->ova, &err) == 0) {
        for (size_t i = 0; i < info->ova.n; i++) {
            const struct img_ova_entry *e = &info->ova.entries[i];
            if (!img_name_plain(e->name) || e->offset > size || e->size > size - e->offset) {
                abort();
            }
        }
    }
    if (img_ova_verify(fuzz_read, &in, size, info, &err) == 0) {
        for (size_t d = 0; d < info->ovf.n_disks; d++) {
            if (info->disk_entry[d] < 1 || (size_t)info->disk_entry[d] >= info->ova.n) {
                abort();
            }
        }
    } else if (!err.msg[0]) {
        abort();
    }
    struct img_mf_entry mf[8];
    size_t n = 0;
    if (img_mf_parse((const char *)data, size, mf, 8, &n, &err) == 0) {
        for (size_t i = 0; i < n; i++) {
            if (!img_name_plain(mf[i].name) ||
                strlen(mf[i].hex) != (strcmp(mf[i].algo, "SHA1") ? 64u : 40u)) {
                abort();
            }
        }
    }
    free(info);
    return 0;
}
