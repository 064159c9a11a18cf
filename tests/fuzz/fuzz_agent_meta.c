/* Fuzz target: the agent's reader of nubo's domain metadata (compute-agent/meta.c). The text
 * comes from libvirt, where anyone with access to libvirtd can set a domain's metadata; the
 * agent decides from it which domains are its own and may destroy. */
#include "meta.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct agent_meta m;
    bool ok = agent_meta_parse((const char *)data, size, &m);
    /* Every field is NUL-terminated inside its array; an accepted document has an id. */
    if (strnlen(m.id, sizeof m.id) == sizeof m.id ||
        strnlen(m.host, sizeof m.host) == sizeof m.host ||
        strnlen(m.tenant, sizeof m.tenant) == sizeof m.tenant ||
        strnlen(m.image, sizeof m.image) == sizeof m.image || (ok && !m.id[0])) {
        abort();
    }
    return 0;
}
