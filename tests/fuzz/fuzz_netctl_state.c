/* Fuzz target: nubo-netctl's desired-state parser (netctl/model.c) and the flow compiler behind
 * it (netctl/flows.c). The state comes from the control plane over HTTP; whatever the parser
 * accepts must compile (every port plugged) into a sorted, duplicate-free flow set whose diff
 * with itself is empty and whose diff from nothing adds every flow. */
#include "flows.h"
#include "model.h"
#include "nubo/buf.h"
#include "nubo/error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nb_error err = {0};
    struct nc_state *st = nc_state_parse((const char *)data, size, &err);
    if (!st) {
        if (!err.msg[0]) {
            abort(); /* a refusal always says why */
        }
        return 0;
    }
    struct nc_ofmap m = {0};
    int ofport = 1;
    for (size_t i = 0; i < st->n_ports; i++) {
        char name[48];
        if (st->ports[i].host) {
            uint32_t h = st->ports[i].host;
            snprintf(name, sizeof name, "tun:%u.%u.%u.%u", h >> 24, (h >> 16) & 255, (h >> 8) & 255,
                     h & 255);
        } else {
            snprintf(name, sizeof name, "%s", st->ports[i].id);
        }
        nc_ofmap_add(&m, name, ofport++);
    }
    nc_ofmap_add(&m, "ext", ofport++);
    struct nc_flows f = {0}, none = {0};
    nc_compile(st, &m, &f);
    for (size_t i = 1; i < f.n; i++) {
        if (f.v[i - 1].cookie >= f.v[i].cookie) {
            abort();
        }
    }
    struct nb_buf b = NB_BUF_INIT;
    size_t adds, dels;
    if (nc_diff(&f, &f, &b, &adds, &dels) != 0 || nc_diff(&none, &f, &b, &adds, &dels) != f.n ||
        adds != f.n || dels != 0) {
        abort();
    }
    nb_buf_free(&b);
    nc_flows_clear(&f);
    nc_ofmap_clear(&m);
    nc_state_free(st);
    return 0;
}
