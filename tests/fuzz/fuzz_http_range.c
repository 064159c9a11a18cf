/* Fuzz target: the HTTP Range header parser (nb_http_parse_range) that downloads of images and
 * blobs honour. Any bytes are a header value, against sizes around the edges; an accepted range
 * must lie inside the body. */
#include "nubo/http.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *h = malloc(size + 1);
    if (!h) {
        return 0;
    }
    memcpy(h, data, size);
    h[size] = '\0';
    static const uint64_t sizes[] = {0, 1, 511, 4096, UINT64_C(1) << 40, UINT64_MAX};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        uint64_t first = 7, last = 7;
        int r = nb_http_parse_range(h, sizes[i], &first, &last);
        if (r == 1 && (first > last || last >= sizes[i])) {
            abort();
        }
        if (r < -1 || r > 1) {
            abort();
        }
    }
    free(h);
    return 0;
}
