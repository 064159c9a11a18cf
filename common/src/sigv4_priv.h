/* Internals shared by the two halves of the SigV4 module: sigv4.c (parsing, verification,
 * signing) and sigv4_canon.c (the canonical request and the signature over it). Nothing outside
 * common/src/sigv4*.c includes this header; the module's interface is nubo/sigv4.h. */
#ifndef NUBO_SIGV4_PRIV_H
#define NUBO_SIGV4_PRIV_H

#include "nubo/sigv4.h"

#include <stdbool.h>
#include <stddef.h>

struct nb_error;

#define NB_SIGV4_ALGORITHM        "AWS4-HMAC-SHA256"
#define NB_SIGV4_SCOPE_TERMINATOR "aws4_request"

/* Bounds on what a client may send that both halves check. */
#define NB_SIGV4_MAX_QUERY_LEN 65536
#define NB_SIGV4_MAX_HEADERS   256

/* How an offending value is quoted in an error message: printable ASCII only, truncated. */
#define NB_SIGV4_QUOTE_MAX 80

/* A growable string bounded by the largest canonical request accepted (1 MiB). Start from
 * '{0}'. Once an append would pass the bound or runs out of memory, 'overflow' is set, the
 * contents are cut and further appends do nothing; callers check 'overflow' once at the end.
 * 'p' is NUL-terminated whenever it is not NULL. */
struct nb_sigv4_buf {
    char *p;
    size_t len;
    size_t cap;
    bool overflow;
};

/* Frees the contents of 'sb' (not 'sb' itself) and empties it; 'overflow' is kept. */
void nb_sigv4_buf_free(struct nb_sigv4_buf *sb);

/* Append 'n' bytes of 's', the string 's', or the character 'c' to 'sb'. */
void nb_sigv4_buf_add(struct nb_sigv4_buf *sb, const char *s, size_t n);
void nb_sigv4_buf_adds(struct nb_sigv4_buf *sb, const char *s);
void nb_sigv4_buf_addc(struct nb_sigv4_buf *sb, char c);

/* Cuts 'sb' back to its first 'len' bytes; does nothing if it is not longer. */
void nb_sigv4_buf_truncate(struct nb_sigv4_buf *sb, size_t len);

/* Appends 'n' bytes of 's' percent-encoded by AWS's rules: unreserved characters (and '/' when
 * 'keep_slash') as they are, every other byte as %XX in upper case. */
void nb_sigv4_buf_add_encoded(struct nb_sigv4_buf *sb, const char *s, size_t n, bool keep_slash);

/* Writes a printable rendering of 'n' bytes of 's' into 'out' (NB_SIGV4_QUOTE_MAX + 4 bytes)
 * for an error message: bytes outside printable ASCII and '"' become '?', long values end in
 * "...". Returns 'out'. */
const char *nb_sigv4_quote(const char *s, size_t n, char out[NB_SIGV4_QUOTE_MAX + 4]);

/* Returns whether 'c' is white space in the sense of C's isspace() in the "C" locale. */
bool nb_sigv4_is_space(char c);

/* Decodes 'n' bytes of form-encoded 's' ("%XX" escapes, '+' for a space) into 'out', which has
 * room for 'n' bytes. A '%' not followed by two hex digits stands for itself. Returns the decoded
 * length; the result is not NUL-terminated and may contain NUL bytes. */
size_t nb_sigv4_form_decode(const char *s, size_t n, char *out);

/* Returns the first header of 'req' named 'name' ('name_len' bytes, any case), or NULL, and
 * stores in '*count' how many headers have that name. The result points into 'req'. */
const struct nb_sigv4_header *nb_sigv4_find_header(const struct nb_sigv4_request *req,
                                                   const char *name, size_t name_len, int *count);

/* Copies the value of header 'name' of 'req', trimmed with inner white space folded, into 'out'
 * ('out_size' bytes). Returns false, leaving 'out' untouched, when the header is absent,
 * repeated, or its value does not fit. */
bool nb_sigv4_header_value(const struct nb_sigv4_request *req, const char *name, char *out,
                           size_t out_size);

/* Appends to 'sb' everything of the canonical request of 'req' before the payload hash: method,
 * URI, query (without X-Amz-Signature when 'presigned'), the headers named in 'signed_headers'
 * (';'-separated, lower case) and that list, each followed by '\n'. A header named
 * 'override_name' (may be NULL) takes 'override_value' instead of the request's. Returns
 * NB_SIGV4_OK; NB_SIGV4_INCOMPLETE with 'err' when the request is malformed or too large; or
 * NB_SIGV4_MISMATCH with 'err' when a signed header is not in the request. */
enum nb_sigv4_result nb_sigv4_canonical_prefix(struct nb_sigv4_buf *sb,
                                               const struct nb_sigv4_request *req, bool presigned,
                                               const char *signed_headers,
                                               const char *override_name,
                                               const char *override_value, struct nb_error *err);

/* Writes into 'sig' the lower-case hex signature of the canonical request 'cr' made with
 * 'secret' for the scope 'scope_date'/'region'/'service' at 'amz_date' (YYYYMMDDTHHMMSSZ).
 * The derived signing key is cached in the calling thread. */
void nb_sigv4_compute_signature(const char *secret, const char *amz_date, const char *scope_date,
                                const char *region, const char *service,
                                const struct nb_sigv4_buf *cr, char sig[65]);

#endif /* NUBO_SIGV4_PRIV_H */
