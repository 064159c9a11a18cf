/* Growable byte buffers (see buf.h). */
#include "nubo/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reserve(struct nb_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap) {
        return;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) {
        fputs("nubo: out of memory\n", stderr);
        abort();
    }
    b->data = p;
    b->cap = cap;
}

void nb_buf_append(struct nb_buf *b, const void *data, size_t len)
{
    reserve(b, len);
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void nb_buf_puts(struct nb_buf *b, const char *s)
{
    nb_buf_append(b, s, strlen(s));
}

void nb_buf_printf(struct nb_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if ((size_t)n < sizeof small) {
        nb_buf_append(b, small, (size_t)n);
        return;
    }
    reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void nb_buf_xml_escape(struct nb_buf *b, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&apos;";
            break;
        default:
            if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n' && *s != '\r') {
                rep = "\xEF\xBF\xBD";
            }
        }
        if (rep) {
            nb_buf_append(b, run, (size_t)(s - run));
            nb_buf_puts(b, rep);
            run = s + 1;
        }
    }
    nb_buf_append(b, run, (size_t)(s - run));
}

void nb_buf_xml_elem(struct nb_buf *b, const char *tag, const char *text)
{
    nb_buf_printf(b, "<%s>", tag);
    nb_buf_xml_escape(b, text ? text : "");
    nb_buf_printf(b, "</%s>", tag);
}

void nb_buf_reset(struct nb_buf *b)
{
    b->len = 0;
    if (b->data) {
        b->data[0] = '\0';
    }
}

void nb_buf_free(struct nb_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *nb_buf_steal(struct nb_buf *b)
{
    if (!b->data) {
        reserve(b, 0);
        b->data[0] = '\0';
    }
    char *p = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
