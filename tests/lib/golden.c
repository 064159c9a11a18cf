/* Golden files for the cmocka tests (golden.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "nubo/buf.h"

int nbtest_golden(const char *dir, const char *name, const char *data, size_t len)
{
    const char *srcdir = getenv("NUBO_SRCDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/golden/%s/%s", srcdir && *srcdir ? srcdir : ".", dir,
             name);
    const char *regen = getenv("NUBO_TEST_REGENERATE");
    if (regen && strcmp(regen, "1") == 0) {
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
            print_error("could not write golden file \"%s\"\n", path);
            return -1;
        }
        return 0;
    }
    static char want[1 << 16];
    FILE *f = fopen(path, "rb");
    if (!f) {
        print_error("could not open golden file \"%s\" (NUBO_TEST_REGENERATE=1 creates it)\n",
                    path);
        return -1;
    }
    size_t n = fread(want, 1, sizeof want, f);
    fclose(f);
    size_t i = 0;
    while (i < n && i < len && want[i] == data[i]) {
        i++;
    }
    if (i != n || i != len) {
        print_error("%s differs from the output at byte %zu:\n--- golden\n%.*s\n--- output\n%.*s\n",
                    path, i, (int)n, want, (int)len, data);
        return -1;
    }
    return 0;
}

int nbtest_golden_buf(const char *dir, const char *name, struct nb_buf *b)
{
    int rc = nbtest_golden(dir, name, b->data ? b->data : "", b->len);
    nb_buf_free(b);
    return rc;
}
