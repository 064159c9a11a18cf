/* AWS Signature Version 4 for libnubo's requests (see sigv4.h). The gateway verifies with
 * common/src/sigv4.c; the SDK does not link common/ (its ABI is public), hence this small
 * signer of its own, checked against botocore's by sdk/c/tests/test_sdk_sigv4.c. */
#include "sigv4.h"

#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void nubo_sigv4_sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(data ? data : (const void *)"", len, md);
    hex_encode(md, sizeof md, hex);
}

void nubo_sigv4_format_date(long long t, char out[17])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static int hmac(const void *key, size_t key_len, const char *msg, unsigned char out[32])
{
    unsigned int len = 32;
    return HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out, &len)
               ? 0
               : -1;
}

/* A growing string; 'p' is NULL once memory ran out, and stays so. */
struct sbuf {
    char *p;
    size_t len, cap;
};

static void sb_addn(struct sbuf *b, const char *s, size_t n)
{
    if (!b->p && b->cap) {
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            free(b->p);
            b->p = NULL;
            b->cap = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_add(struct sbuf *b, const char *s)
{
    sb_addn(b, s, strlen(s));
}

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

/* The canonical URI: the path as sent, encoded once more ('/' kept), as botocore does. */
static void add_canonical_uri(struct sbuf *b, const char *path)
{
    if (!path || !*path) {
        sb_add(b, "/");
        return;
    }
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if (is_unreserved(*p) || *p == '/') {
            sb_addn(b, (const char *)p, 1);
        } else {
            char enc[4];
            snprintf(enc, sizeof enc, "%%%02X", *p);
            sb_add(b, enc);
        }
    }
}

struct qpair {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
};

static int qpair_cmp(const void *a, const void *b)
{
    const struct qpair *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (c || x->key_len != y->key_len) {
        return c ? c : (x->key_len < y->key_len ? -1 : 1);
    }
    n = x->value_len < y->value_len ? x->value_len : y->value_len;
    c = memcmp(x->value, y->value, n);
    if (c || x->value_len == y->value_len) {
        return c;
    }
    return x->value_len < y->value_len ? -1 : 1;
}

/* The canonical query: the pairs as sent (already RFC 3986-encoded), sorted by key, then
 * value. */
static int add_canonical_query(struct sbuf *b, const char *query)
{
    if (!query || !*query) {
        return 0;
    }
    size_t n = 1;
    for (const char *p = query; *p; p++) {
        n += *p == '&';
    }
    struct qpair *pairs = calloc(n, sizeof *pairs);
    if (!pairs) {
        return -1;
    }
    size_t k = 0;
    for (const char *p = query;;) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        pairs[k].key = p;
        pairs[k].key_len = eq ? (size_t)(eq - p) : len;
        pairs[k].value = eq ? eq + 1 : p + len;
        pairs[k].value_len = eq ? len - pairs[k].key_len - 1 : 0;
        k++;
        if (!end) {
            break;
        }
        p = end + 1;
    }
    qsort(pairs, k, sizeof *pairs, qpair_cmp);
    for (size_t i = 0; i < k; i++) {
        if (i) {
            sb_add(b, "&");
        }
        sb_addn(b, pairs[i].key, pairs[i].key_len);
        sb_add(b, "=");
        sb_addn(b, pairs[i].value, pairs[i].value_len);
    }
    free(pairs);
    return 0;
}

int nubo_sigv4_authorization(const struct nubo_sigv4_input *in, char *out, size_t out_size)
{
    struct sbuf cr = {0};
    char hash[65];
    sb_add(&cr, in->method);
    sb_add(&cr, "\n");
    add_canonical_uri(&cr, in->path);
    sb_add(&cr, "\n");
    if (add_canonical_query(&cr, in->query) < 0) {
        free(cr.p);
        return -1;
    }
    sb_add(&cr, "\n");
    if (in->content_type) {
        sb_add(&cr, "content-type:");
        sb_add(&cr, in->content_type);
        sb_add(&cr, "\n");
    }
    sb_add(&cr, "host:");
    sb_add(&cr, in->host);
    if (in->payload_hash) {
        sb_add(&cr, "\nx-amz-content-sha256:");
        sb_add(&cr, in->payload_hash);
    }
    sb_add(&cr, "\nx-amz-date:");
    sb_add(&cr, in->amz_date);
    sb_add(&cr, "\n\n");
    char signed_headers[64];
    snprintf(signed_headers, sizeof signed_headers, "%shost;%sx-amz-date",
             in->content_type ? "content-type;" : "",
             in->payload_hash ? "x-amz-content-sha256;" : "");
    sb_add(&cr, signed_headers);
    sb_add(&cr, "\n");
    if (in->payload_hash) {
        sb_add(&cr, in->payload_hash);
    } else {
        nubo_sigv4_sha256_hex(in->body, in->body_len, hash);
        sb_add(&cr, hash);
    }
    if (!cr.p) {
        return -1;
    }
    nubo_sigv4_sha256_hex(cr.p, cr.len, hash);
    free(cr.p);

    char date[9];
    memcpy(date, in->amz_date, 8);
    date[8] = '\0';
    char scope[256];
    if (snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", date, in->region, in->service) >=
        (int)sizeof scope) {
        return -1;
    }
    char sts[512];
    if (snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s", in->amz_date, scope, hash) >=
        (int)sizeof sts) {
        return -1;
    }

    char key[256];
    unsigned char k[32];
    if (snprintf(key, sizeof key, "AWS4%s", in->secret) >= (int)sizeof key) {
        return -1;
    }
    int rc = hmac(key, strlen(key), date, k);
    rc |= hmac(k, 32, in->region, k);
    rc |= hmac(k, 32, in->service, k);
    rc |= hmac(k, 32, "aws4_request", k);
    rc |= hmac(k, 32, sts, k);
    explicit_bzero(key, sizeof key);
    if (rc) {
        explicit_bzero(k, sizeof k);
        return -1;
    }
    char sig[65];
    hex_encode(k, 32, sig);
    explicit_bzero(k, sizeof k);
    int n =
        snprintf(out, out_size, "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                 in->access_key, scope, signed_headers, sig);
    return n < 0 || (size_t)n >= out_size ? -1 : 0;
}
