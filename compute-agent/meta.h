/* nubo's domain metadata element, read back from libvirt: the <nubo:instance> element that
 * agent_domxml_build() writes (namespace AGENT_VIRT_XMLNS), as virDomainGetMetadata() returns it.
 * Parsed with libxml2 (no network, no entities expanded beyond the predefined ones, no DTD);
 * pure and thread-safe. */
#ifndef NUBO_AGENT_META_H
#define NUBO_AGENT_META_H

#include <stdbool.h>
#include <stddef.h>

struct agent_meta {
    char id[20]; /* instance id */
    char tenant[64];
    char image[64];
    char host[32]; /* the owning agent's host id; "" when absent */
};

/* Parses 'len' bytes of 'xml' into '*m' (fields absent or too long are left ""). Returns true
 * when the document is well-formed and has an instance id; false otherwise (then '*m' holds
 * whatever was found). */
bool agent_meta_parse(const char *xml, size_t len, struct agent_meta *m);

#endif
