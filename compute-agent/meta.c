/* nubo's domain metadata: see meta.h. */
#include "meta.h"

#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

/* Copies the text of the child element of 'root' with local name 'name' into 'out' ('size'
 * bytes); leaves "" when it is absent or does not fit (a truncated id would name another
 * instance). */
static void child_text(xmlNodePtr root, const char *name, char *out, size_t size)
{
    out[0] = '\0';
    for (xmlNodePtr n = root->children; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, name)) {
            continue;
        }
        xmlChar *text = xmlNodeGetContent(n);
        if (text && strlen((const char *)text) < size) {
            memcpy(out, text, strlen((const char *)text) + 1);
        }
        xmlFree(text);
        return;
    }
}

bool agent_meta_parse(const char *xml, size_t len, struct agent_meta *m)
{
    memset(m, 0, sizeof *m);
    if (len > 1 << 20) {
        return false;
    }
    xmlDocPtr doc = xmlReadMemory(xml, (int)len, "metadata.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) {
        return false;
    }
    xmlNodePtr root = xmlDocGetRootElement(doc);
    if (root && !strcmp((const char *)root->name, "instance")) {
        child_text(root, "id", m->id, sizeof m->id);
        child_text(root, "tenant", m->tenant, sizeof m->tenant);
        child_text(root, "image", m->image, sizeof m->image);
        child_text(root, "host", m->host, sizeof m->host);
    }
    xmlFreeDoc(doc);
    return m->id[0] != '\0';
}
