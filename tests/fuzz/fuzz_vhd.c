/* Fuzz target: the disk image prober (image-store/fmt_disk.c) on whole files: VHD footers,
 * dynamic headers and BATs, and the qcow2 and VMDK headers it tells them from. Uploaded images
 * are tenant-controlled bytes; every offset and size read from them must be checked before
 * use. The input is read through an img_read_fn as the store does, probed once to detect and
 * once more with the detected format expected, which must agree. */
#include "imgfmt.h"
#include "nubo/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    struct img_disk_info info, again;
    struct nb_error err = {0};
    int rc = img_disk_probe(fuzz_read, &in, size, NULL, &info, &err);
    if (strnlen(info.format, sizeof info.format) == sizeof info.format ||
        strnlen(info.subformat, sizeof info.subformat) == sizeof info.subformat ||
        strnlen(err.msg, sizeof err.msg) == sizeof err.msg) {
        abort();
    }
    if (rc == 0) {
        /* Accepted: a known format with a size, and the same answer when it is expected. */
        if (!info.format[0] || info.virtual_size == 0 || info.virtual_size > IMG_DISK_MAX_VIRTUAL ||
            img_disk_probe(fuzz_read, &in, size, info.format, &again, &err) != 0 ||
            memcmp(&info, &again, sizeof info)) {
            abort();
        }
    } else if (err.code != NB_ERR_INVALID || !err.msg[0] || info.format[0]) {
        abort();
    }
    return 0;
}
