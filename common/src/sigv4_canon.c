/* The canonical request of AWS Signature Version 4 and the signature over it (see sigv4_priv.h).
 *
 * A signature covers a canonical form of the request:
 *
 *     METHOD \n canonical-uri \n canonical-query \n canonical-headers \n signed-headers \n payload
 *
 * which this file rebuilds from the request as received, exactly as botocore builds it when it
 * signs (tests/unit/test_sigv4_botocore.c checks this against botocore itself): the path's dot
 * segments resolved and its bytes percent-encoded, the query decoded, re-encoded and sorted, the
 * signed headers trimmed and joined. Everything is built in a bounded buffer, so a hostile request
 * cannot make it grow past MAX_CANONICAL_LEN.
 *
 * The signing key (four chained HMACs of the secret) changes once a day per key, region and
 * service, so each thread keeps the last few in a small cache: a verification then costs one
 * SHA-256 of the canonical request, one of the body, and one HMAC.
 *
 * sigv4.c, which parses, verifies and produces signatures, is the only user of this file. */
#include "sigv4_priv.h"

#include "nubo/crypto.h"
#include "nubo/error.h"
#include "nubo/sigv4.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

/* Bounds on what a client may send; a legitimate EC2 request is far below each. */
#define MAX_METHOD_LEN    32
#define MAX_PATH_LEN      8192
#define MAX_QUERY_PARAMS  2048
#define MAX_CANONICAL_LEN (1024 * 1024)

/* --- growable, bounded string -------------------------------------------------------------- */

void nb_sigv4_buf_free(struct nb_sigv4_buf *sb)
{
    free(sb->p);
    sb->p = NULL;
    sb->len = sb->cap = 0;
}

static bool sb_reserve(struct nb_sigv4_buf *sb, size_t extra)
{
    if (sb->overflow) {
        return false;
    }
    if (extra > MAX_CANONICAL_LEN - sb->len) {
        sb->overflow = true;
        return false;
    }
    if (sb->len + extra + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 1024;
        while (cap < sb->len + extra + 1) {
            cap *= 2;
        }
        char *p = realloc(sb->p, cap);
        if (!p) {
            sb->overflow = true;
            return false;
        }
        sb->p = p;
        sb->cap = cap;
    }
    return true;
}

void nb_sigv4_buf_add(struct nb_sigv4_buf *sb, const char *s, size_t n)
{
    if (sb_reserve(sb, n)) {
        memcpy(sb->p + sb->len, s, n);
        sb->len += n;
        sb->p[sb->len] = '\0';
    }
}

void nb_sigv4_buf_adds(struct nb_sigv4_buf *sb, const char *s)
{
    nb_sigv4_buf_add(sb, s, strlen(s));
}

void nb_sigv4_buf_addc(struct nb_sigv4_buf *sb, char c)
{
    nb_sigv4_buf_add(sb, &c, 1);
}

void nb_sigv4_buf_truncate(struct nb_sigv4_buf *sb, size_t len)
{
    if (len < sb->len) {
        sb->len = len;
        sb->p[len] = '\0';
    }
}

static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

/* Appends 'n' bytes of 's' percent-encoded by AWS's rules: unreserved characters (and '/' when
 * 'keep_slash') as they are, every other byte as %XX in upper case. */
void nb_sigv4_buf_add_encoded(struct nb_sigv4_buf *sb, const char *s, size_t n, bool keep_slash)
{
    static const char digits[] = "0123456789ABCDEF";
    if (!sb_reserve(sb, 3 * n)) {
        return;
    }
    char *o = sb->p + sb->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = digits[c >> 4];
            *o++ = digits[c & 15];
        }
    }
    sb->len = (size_t)(o - sb->p);
    sb->p[sb->len] = '\0';
}

/* --- small helpers --------------------------------------------------------------------------- */

/* Writes a printable rendering of 'n' bytes of 's' into 'out' (NB_SIGV4_QUOTE_MAX + 4 bytes) for an error
 * message: bytes outside printable ASCII and '"' become '?', long values end in "...". */
const char *nb_sigv4_quote(const char *s, size_t n, char out[NB_SIGV4_QUOTE_MAX + 4])
{
    size_t i;
    for (i = 0; i < n && i < NB_SIGV4_QUOTE_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = c >= 0x20 && c < 0x7f && c != '"' ? (char)c : '?';
    }
    if (n > NB_SIGV4_QUOTE_MAX) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
    return out;
}

bool nb_sigv4_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Decodes 'n' bytes of form-encoded 's' ("%XX" escapes, '+' for a space) into 'out', which has
 * room for 'n' bytes. A '%' not followed by two hex digits stands for itself. Returns the decoded
 * length; the result may contain NUL bytes. */
size_t nb_sigv4_form_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && nb_hex_value(s[i + 1]) >= 0 &&
                   nb_hex_value(s[i + 2]) >= 0) {
            out[o++] = (char)(nb_hex_value(s[i + 1]) << 4 | nb_hex_value(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    return o;
}

const struct nb_sigv4_header *nb_sigv4_find_header(const struct nb_sigv4_request *req,
                                                   const char *name, size_t name_len, int *count)
{
    const struct nb_sigv4_header *found = NULL;
    *count = 0;
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *h = req->headers[i].name;
        if (h && strncasecmp(h, name, name_len) == 0 && h[name_len] == '\0') {
            if (!found) {
                found = &req->headers[i];
            }
            (*count)++;
        }
    }
    return found;
}

/* Appends 'value' with leading and trailing white space removed and inner runs of it folded into
 * one space. */
static void sb_add_trimmed(struct nb_sigv4_buf *sb, const char *value)
{
    const char *p = value ? value : "";
    bool pending_space = false;
    bool any = false;
    for (; *p; p++) {
        if (nb_sigv4_is_space(*p)) {
            pending_space = any;
            continue;
        }
        if (pending_space) {
            nb_sigv4_buf_addc(sb, ' ');
            pending_space = false;
        }
        const char *run = p;
        while (p[1] && !nb_sigv4_is_space(p[1])) {
            p++;
        }
        nb_sigv4_buf_add(sb, run, (size_t)(p - run + 1));
        any = true;
    }
}

/* Returns the trimmed value of header 'name' into 'out' if it is present once, else false. */
bool nb_sigv4_header_value(const struct nb_sigv4_request *req, const char *name, char *out,
                           size_t out_size)
{
    int count;
    const struct nb_sigv4_header *h = nb_sigv4_find_header(req, name, strlen(name), &count);
    if (!h || count != 1) {
        return false;
    }
    struct nb_sigv4_buf sb = {0};
    sb_add_trimmed(&sb, h->value);
    bool ok = !sb.overflow && sb.len < out_size;
    if (ok) {
        memcpy(out, sb.p ? sb.p : "", sb.len + 1);
    }
    nb_sigv4_buf_free(&sb);
    return ok;
}

/* --- canonical request ----------------------------------------------------------------------- */

/* Appends the canonical URI of the raw 'path': dot segments and empty segments removed as botocore
 * does (RFC 3986 section 5.2.4, and AWS folds repeated slashes), then every byte other than an
 * unreserved character or '/' percent-encoded, so an escape "%2F" received becomes "%252F". */
static void canonical_uri(struct nb_sigv4_buf *sb, const char *path)
{
    if (!path || !*path) {
        nb_sigv4_buf_addc(sb, '/');
        return;
    }
    size_t base = sb->len;
    if (path[0] == '/') {
        nb_sigv4_buf_addc(sb, '/');
        base++;
    }
    size_t n_segments = 0;
    const char *p = path;
    while (*p) {
        const char *seg = p;
        while (*p && *p != '/') {
            p++;
        }
        size_t len = (size_t)(p - seg);
        if (*p == '/') {
            p++;
        }
        if (len == 0 || (len == 1 && seg[0] == '.')) {
            continue;
        }
        if (len == 2 && seg[0] == '.' && seg[1] == '.') {
            if (n_segments > 0 && !sb->overflow) {
                /* Encoded segments contain no '/', so the last one starts after the last '/'. */
                size_t cut = sb->len;
                while (cut > base && sb->p[cut - 1] != '/') {
                    cut--;
                }
                nb_sigv4_buf_truncate(sb, cut > base ? cut - 1 : base);
                n_segments--;
            }
            continue;
        }
        if (n_segments > 0) {
            nb_sigv4_buf_addc(sb, '/');
        }
        nb_sigv4_buf_add_encoded(sb, seg, len, false);
        n_segments++;
    }
    if (n_segments > 0 && p[-1] == '/') {
        nb_sigv4_buf_addc(sb, '/');
    }
}

struct qparam {
    const char *name; /* canonical (encoded) forms, NUL-terminated */
    const char *value;
};

static int qparam_cmp(const void *a, const void *b)
{
    const struct qparam *x = a;
    const struct qparam *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

/* Appends the canonical query string of 'query': each name and value decoded, re-encoded by AWS's
 * rules, sorted by name then value; X-Amz-Signature left out when 'presigned'. Empty pairs
 * ("a=1&&b=2") are skipped. */
static enum nb_sigv4_result canonical_query(struct nb_sigv4_buf *sb, const char *query,
                                            bool presigned, struct nb_error *err)
{
    if (!query || !*query) {
        return NB_SIGV4_OK;
    }
    size_t qlen = strlen(query);
    if (qlen > NB_SIGV4_MAX_QUERY_LEN) {
        nb_error_set(err, NB_ERR_INVALID, "query string is too long (%zu bytes, at most %d)", qlen,
                     NB_SIGV4_MAX_QUERY_LEN);
        return NB_SIGV4_INCOMPLETE;
    }
    size_t n_pairs = 1;
    for (const char *p = query; *p; p++) {
        n_pairs += *p == '&';
    }
    if (n_pairs > MAX_QUERY_PARAMS) {
        nb_error_set(err, NB_ERR_INVALID, "query string has too many parameters (%zu, at most %d)",
                     n_pairs, MAX_QUERY_PARAMS);
        return NB_SIGV4_INCOMPLETE;
    }
    /* One block: the decoded bytes of a pair (at most its length), then its encoded name and
     * value (at most three times as long) with their NULs. */
    struct qparam *params = malloc(n_pairs * sizeof *params);
    char *decoded = malloc(qlen + 1);
    char *enc = malloc(3 * qlen + 2 * n_pairs + 1);
    enum nb_sigv4_result r = NB_SIGV4_OK;
    if (!params || !decoded || !enc) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory canonicalising a query string");
        r = NB_SIGV4_INCOMPLETE;
        goto cleanup;
    }
    size_t n = 0;
    char *e = enc;
    const char *p = query;
    static const char hex[] = "0123456789ABCDEF";
    while (*p) {
        const char *pair = p;
        while (*p && *p != '&') {
            p++;
        }
        size_t pair_len = (size_t)(p - pair);
        if (*p == '&') {
            p++;
        }
        if (pair_len == 0) {
            continue;
        }
        const char *eq = memchr(pair, '=', pair_len);
        size_t name_len = eq ? (size_t)(eq - pair) : pair_len;
        for (int part = 0; part < 2; part++) {
            const char *src = part == 0 ? pair : pair + name_len + 1;
            size_t src_len = part == 0 ? name_len : (eq ? pair_len - name_len - 1 : 0);
            size_t dlen = nb_sigv4_form_decode(src, src_len, decoded);
            char *start = e;
            for (size_t i = 0; i < dlen; i++) {
                unsigned char c = (unsigned char)decoded[i];
                if (is_unreserved(c)) {
                    *e++ = (char)c;
                } else {
                    *e++ = '%';
                    *e++ = hex[c >> 4];
                    *e++ = hex[c & 15];
                }
            }
            *e++ = '\0';
            if (part == 0) {
                params[n].name = start;
            } else {
                params[n].value = start;
            }
        }
        if (presigned && strcmp(params[n].name, "X-Amz-Signature") == 0) {
            continue;
        }
        n++;
    }
    qsort(params, n, sizeof *params, qparam_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            nb_sigv4_buf_addc(sb, '&');
        }
        nb_sigv4_buf_adds(sb, params[i].name);
        nb_sigv4_buf_addc(sb, '=');
        nb_sigv4_buf_adds(sb, params[i].value);
    }

cleanup:
    free(params);
    free(decoded);
    free(enc);
    return r;
}

/* Appends the canonical headers ("name:value\n" for each name of 'signed_headers', the values of a
 * repeated header joined by ','). A header named 'override_name' takes 'override_value' instead
 * of the request's. Returns NB_SIGV4_OK, or NB_SIGV4_MISMATCH with 'err' when a signed header is
 * not in the request. */
static enum nb_sigv4_result canonical_headers(struct nb_sigv4_buf *sb,
                                              const struct nb_sigv4_request *req,
                                              const char *signed_headers, const char *override_name,
                                              const char *override_value, struct nb_error *err)
{
    char q[NB_SIGV4_QUOTE_MAX + 4];
    const char *p = signed_headers;
    while (*p) {
        const char *name = p;
        while (*p && *p != ';') {
            p++;
        }
        size_t len = (size_t)(p - name);
        if (*p == ';') {
            p++;
        }
        nb_sigv4_buf_add(sb, name, len);
        nb_sigv4_buf_addc(sb, ':');
        if (override_name && strlen(override_name) == len &&
            memcmp(override_name, name, len) == 0) {
            sb_add_trimmed(sb, override_value);
            nb_sigv4_buf_addc(sb, '\n');
            continue;
        }
        bool found = false;
        for (size_t i = 0; i < req->n_headers; i++) {
            const char *h = req->headers[i].name;
            if (h && strncasecmp(h, name, len) == 0 && h[len] == '\0') {
                if (found) {
                    nb_sigv4_buf_addc(sb, ',');
                }
                sb_add_trimmed(sb, req->headers[i].value);
                found = true;
            }
        }
        if (!found) {
            nb_error_set(err, NB_ERR_AUTH, "signed header \"%s\" is not in the request",
                         nb_sigv4_quote(name, len, q));
            return NB_SIGV4_MISMATCH;
        }
        nb_sigv4_buf_addc(sb, '\n');
    }
    return NB_SIGV4_OK;
}

/* Appends everything of the canonical request before the payload hash: method, URI, query,
 * headers and the signed header list, each followed by '\n'. */
enum nb_sigv4_result nb_sigv4_canonical_prefix(struct nb_sigv4_buf *sb,
                                               const struct nb_sigv4_request *req, bool presigned,
                                               const char *signed_headers,
                                               const char *override_name,
                                               const char *override_value, struct nb_error *err)
{
    char q[NB_SIGV4_QUOTE_MAX + 4];
    const char *method = req->method ? req->method : "";
    size_t mlen = strlen(method);
    if (mlen == 0 || mlen > MAX_METHOD_LEN) {
        nb_error_set(err, NB_ERR_INVALID, "request method \"%s\" is malformed",
                     nb_sigv4_quote(method, mlen, q));
        return NB_SIGV4_INCOMPLETE;
    }
    size_t plen = req->path ? strlen(req->path) : 0;
    if (plen > MAX_PATH_LEN) {
        nb_error_set(err, NB_ERR_INVALID, "request path is too long (%zu bytes, at most %d)", plen,
                     MAX_PATH_LEN);
        return NB_SIGV4_INCOMPLETE;
    }
    if (req->n_headers > NB_SIGV4_MAX_HEADERS) {
        nb_error_set(err, NB_ERR_INVALID, "request has too many headers (%zu, at most %d)",
                     req->n_headers, NB_SIGV4_MAX_HEADERS);
        return NB_SIGV4_INCOMPLETE;
    }
    for (size_t i = 0; i < mlen; i++) {
        nb_sigv4_buf_addc(sb, (char)toupper((unsigned char)method[i]));
    }
    nb_sigv4_buf_addc(sb, '\n');
    canonical_uri(sb, req->path);
    nb_sigv4_buf_addc(sb, '\n');
    enum nb_sigv4_result r = canonical_query(sb, req->query, presigned, err);
    if (r != NB_SIGV4_OK) {
        return r;
    }
    nb_sigv4_buf_addc(sb, '\n');
    r = canonical_headers(sb, req, signed_headers, override_name, override_value, err);
    if (r != NB_SIGV4_OK) {
        return r;
    }
    nb_sigv4_buf_addc(sb, '\n');
    nb_sigv4_buf_adds(sb, signed_headers);
    nb_sigv4_buf_addc(sb, '\n');
    if (sb->overflow) {
        nb_error_set(err, NB_ERR_INVALID, "request is too large to verify its signature");
        return NB_SIGV4_INCOMPLETE;
    }
    return NB_SIGV4_OK;
}

/* --- signing key and signature --------------------------------------------------------------- */

#define KEY_CACHE_SIZE    8
#define KEY_CACHE_MAX_KEY 128

struct key_cache_entry {
    bool used;
    size_t secret_len;
    char secret[KEY_CACHE_MAX_KEY];
    char date[9];
    char region[64];
    char service[64];
    uint8_t key[NB_SHA256_LEN];
};

/* Per-thread: the derived keys in use, replaced round-robin. */
static __thread struct key_cache_entry key_cache[KEY_CACHE_SIZE];
static __thread unsigned key_cache_next;

static void derive_key(const char *secret, const char *date, const char *region,
                       const char *service, uint8_t out[NB_SHA256_LEN])
{
    size_t slen = strlen(secret);
    char stack_buf[4 + 256];
    char *k = slen <= sizeof stack_buf - 4 ? stack_buf : malloc(4 + slen);
    uint8_t kdate[NB_SHA256_LEN];
    uint8_t kregion[NB_SHA256_LEN];
    uint8_t kservice[NB_SHA256_LEN];
    if (k) {
        memcpy(k, "AWS4", 4);
        memcpy(k + 4, secret, slen);
        nb_hmac_sha256(k, 4 + slen, date, strlen(date), kdate);
        OPENSSL_cleanse(k, 4 + slen);
        if (k != stack_buf) {
            free(k);
        }
    } else {
        /* Out of memory for a huge secret: derive from a key nobody holds, so it cannot match. */
        nb_hmac_sha256("", 0, "nubo: out of memory", 19, kdate);
    }
    nb_hmac_sha256(kdate, sizeof kdate, region, strlen(region), kregion);
    nb_hmac_sha256(kregion, sizeof kregion, service, strlen(service), kservice);
    nb_hmac_sha256(kservice, sizeof kservice, NB_SIGV4_SCOPE_TERMINATOR,
                   strlen(NB_SIGV4_SCOPE_TERMINATOR), out);
    OPENSSL_cleanse(kdate, sizeof kdate);
    OPENSSL_cleanse(kregion, sizeof kregion);
    OPENSSL_cleanse(kservice, sizeof kservice);
}

static void signing_key(const char *secret, const char *date, const char *region,
                        const char *service, uint8_t out[NB_SHA256_LEN])
{
    size_t slen = strlen(secret);
    if (slen > KEY_CACHE_MAX_KEY || strlen(region) >= sizeof key_cache[0].region ||
        strlen(service) >= sizeof key_cache[0].service) {
        derive_key(secret, date, region, service, out);
        return;
    }
    for (int i = 0; i < KEY_CACHE_SIZE; i++) {
        struct key_cache_entry *e = &key_cache[i];
        if (e->used && e->secret_len == slen && memcmp(e->secret, secret, slen) == 0 &&
            strcmp(e->date, date) == 0 && strcmp(e->region, region) == 0 &&
            strcmp(e->service, service) == 0) {
            memcpy(out, e->key, NB_SHA256_LEN);
            return;
        }
    }
    struct key_cache_entry *e = &key_cache[key_cache_next++ % KEY_CACHE_SIZE];
    derive_key(secret, date, region, service, e->key);
    e->used = true;
    e->secret_len = slen;
    memcpy(e->secret, secret, slen);
    snprintf(e->date, sizeof e->date, "%s", date);
    snprintf(e->region, sizeof e->region, "%s", region);
    snprintf(e->service, sizeof e->service, "%s", service);
    memcpy(out, e->key, NB_SHA256_LEN);
}

/* Computes the hex signature of the canonical request 'cr'. */
void nb_sigv4_compute_signature(const char *secret, const char *amz_date, const char *scope_date,
                                const char *region, const char *service,
                                const struct nb_sigv4_buf *cr, char sig[65])
{
    char cr_hash[2 * NB_SHA256_LEN + 1];
    nb_sha256_hex(cr->p, cr->len, cr_hash);
    char sts[512];
    int n = snprintf(sts, sizeof sts, "%s\n%s\n%s/%s/%s/%s\n%s", NB_SIGV4_ALGORITHM, amz_date,
                     scope_date, region, service, NB_SIGV4_SCOPE_TERMINATOR, cr_hash);
    uint8_t key[NB_SHA256_LEN];
    uint8_t mac[NB_SHA256_LEN];
    signing_key(secret, scope_date, region, service, key);
    nb_hmac_sha256(key, sizeof key, sts, n > 0 && (size_t)n < sizeof sts ? (size_t)n : 0, mac);
    nb_hex_encode(mac, sizeof mac, sig);
    OPENSSL_cleanse(key, sizeof key);
}
