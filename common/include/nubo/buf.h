/* Growable byte buffers for building replies (XML, JSON text, SQL) without fixed-size guesses.
 * The struct is public so callers can read 'data' and 'len'; 'data' is always NUL-terminated. */
#ifndef NUBO_BUF_H
#define NUBO_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct nb_buf {
    char *data; /* malloc()ed, NUL-terminated; NULL until the first append */
    size_t len;
    size_t cap;
};

#define NB_BUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* Appends; all abort on out-of-memory. */
void nb_buf_append(struct nb_buf *b, const void *data, size_t len);
void nb_buf_puts(struct nb_buf *b, const char *s);
void nb_buf_printf(struct nb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends 's' with &, <, >, " and ' escaped for XML text and attributes; other control
 * characters (invalid in XML 1.0) become U+FFFD. */
void nb_buf_xml_escape(struct nb_buf *b, const char *s);
/* Appends "<tag>escaped text</tag>". */
void nb_buf_xml_elem(struct nb_buf *b, const char *tag, const char *text);

/* Empties 'b' but keeps its memory. */
void nb_buf_reset(struct nb_buf *b);
/* Frees the memory; 'b' is empty and reusable afterwards. */
void nb_buf_free(struct nb_buf *b);
/* Returns the contents ("" if none) as a malloc()ed string the caller free()s; 'b' is empty. */
char *nb_buf_steal(struct nb_buf *b);

#endif
