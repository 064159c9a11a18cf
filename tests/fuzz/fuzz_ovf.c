/* Fuzz target: the OVF descriptor parser and writer (image-store/fmt_ovf.c). Descriptors come
 * from tenants' OVA imports. Whatever the parser accepts must satisfy its own checks (plain
 * hrefs, fileRefs that resolve, bounded counts), and written back it must parse to the same
 * struct. */
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

static void check(const struct img_ovf *o)
{
    if (o->n_files > IMG_OVF_MAX_ITEMS || o->n_disks < 1 || o->n_disks > IMG_OVF_MAX_ITEMS ||
        o->n_nets > IMG_OVF_MAX_ITEMS || o->vcpus < 1 || o->vcpus > 256 || o->memory_mib < 1 ||
        o->memory_mib > (UINT64_C(4) << 20) || !o->name[0]) {
        abort();
    }
    for (size_t i = 0; i < o->n_files; i++) {
        if (!img_name_plain(o->files[i].href)) {
            abort();
        }
    }
    for (size_t d = 0; d < o->n_disks; d++) {
        size_t i = 0;
        while (i < o->n_files && strcmp(o->files[i].id, o->disks[d].file_ref)) {
            i++;
        }
        if (i == o->n_files) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct img_ovf *o = malloc(sizeof *o), *back = malloc(sizeof *back);
    struct nb_error err = {0};
    if (!o || !back) {
        abort();
    }
    if (img_ovf_parse((const char *)data, size, o, &err) == 0) {
        check(o);
        char *xml = img_ovf_write(o);
        if (!xml || img_ovf_parse(xml, strlen(xml), back, &err) != 0 ||
            memcmp(o, back, sizeof *o)) {
            abort();
        }
        free(xml);
    } else if (err.code != NB_ERR_INVALID || !err.msg[0] || o->n_files || o->n_disks) {
        abort();
    }
    free(o);
    free(back);
    return 0;
}
