/* AWS Signature Version 4 for non-S3 services (see sigv4.h).
 *
 * A signature covers a canonical form of the request:
 *
 *     METHOD \n canonical-uri \n canonical-query \n canonical-headers \n signed-headers \n payload
 *
 * which this file rebuilds from the request as received, exactly as botocore builds it when it
 * signs (tests/unit/test_sigv4_botocore.c checks this against botocore itself). Everything a client
 * sends is bounded before it is copied, and every malformed part is reported by name.
 *
 * The signing key (four chained HMACs of the secret) changes once a day per key, region and
 * service, so each thread keeps the last few in a small cache: a verification then costs one
 * SHA-256 of the canonical request, one of the body, and one HMAC. */
#include "nubo/sigv4.h"

#include "nubo/crypto.h"
#include "nubo/error.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#define ALGORITHM        "AWS4-HMAC-SHA256"
#define UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define SCOPE_TERMINATOR "aws4_request"

/* Bounds on what a client may send; a legitimate EC2 request is far below each. */
#define MAX_METHOD_LEN    32
#define MAX_PATH_LEN      8192
#define MAX_QUERY_LEN     65536
#define MAX_QUERY_PARAMS  2048
#define MAX_HEADERS       256
#define MAX_CANONICAL_LEN (1024 * 1024)
#define MAX_AUTH_PARAM    2048
#define MAX_EXPIRES       604800
#define MAX_TIME          253402300799LL /* 9999-12-31T23:59:59Z, the last YYYYMMDD date */

/* The longest SignedHeaders list that fits 'struct nb_sigv4_auth'. */
#define SIGNED_HEADERS_MAX (sizeof((struct nb_sigv4_auth){0}).signed_headers - 1)
/* Presigning parameter names are short: a longer raw name is none of them. */
#define MAX_PARAM_NAME 64

/* How an offending value is quoted in an error message: printable ASCII only, truncated. */
#define QUOTE_MAX 80

/* --- growable, bounded string -------------------------------------------------------------- */

struct sbuf {
    char *p;
    size_t len;
    size_t cap;
    bool overflow; /* MAX_CANONICAL_LEN reached or out of memory; the contents are then cut */
};

static void sb_free(struct sbuf *sb)
{
    free(sb->p);
    sb->p = NULL;
    sb->len = sb->cap = 0;
}

static bool sb_reserve(struct sbuf *sb, size_t extra)
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

static void sb_add(struct sbuf *sb, const char *s, size_t n)
{
    if (sb_reserve(sb, n)) {
        memcpy(sb->p + sb->len, s, n);
        sb->len += n;
        sb->p[sb->len] = '\0';
    }
}

static void sb_adds(struct sbuf *sb, const char *s)
{
    sb_add(sb, s, strlen(s));
}

static void sb_addc(struct sbuf *sb, char c)
{
    sb_add(sb, &c, 1);
}

static void sb_truncate(struct sbuf *sb, size_t len)
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
static void sb_add_encoded(struct sbuf *sb, const char *s, size_t n, bool keep_slash)
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

/* Writes a printable rendering of 'n' bytes of 's' into 'out' (QUOTE_MAX + 4 bytes) for an error
 * message: bytes outside printable ASCII and '"' become '?', long values end in "...". */
static const char *quote(const char *s, size_t n, char out[QUOTE_MAX + 4])
{
    size_t i;
    for (i = 0; i < n && i < QUOTE_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = c >= 0x20 && c < 0x7f && c != '"' ? (char)c : '?';
    }
    if (n > QUOTE_MAX) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
    return out;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Decodes 'n' bytes of form-encoded 's' ("%XX" escapes, '+' for a space) into 'out', which has
 * room for 'n' bytes. A '%' not followed by two hex digits stands for itself. Returns the decoded
 * length; the result may contain NUL bytes. */
static size_t form_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && hex_digit(s[i + 1]) >= 0 &&
                   hex_digit(s[i + 2]) >= 0) {
            out[o++] = (char)(hex_digit(s[i + 1]) << 4 | hex_digit(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    return o;
}

static bool is_lower_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

static const struct nb_sigv4_header *find_header(const struct nb_sigv4_request *req,
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
static void sb_add_trimmed(struct sbuf *sb, const char *value)
{
    const char *p = value ? value : "";
    bool pending_space = false;
    bool any = false;
    for (; *p; p++) {
        if (is_space(*p)) {
            pending_space = any;
            continue;
        }
        if (pending_space) {
            sb_addc(sb, ' ');
            pending_space = false;
        }
        const char *run = p;
        while (p[1] && !is_space(p[1])) {
            p++;
        }
        sb_add(sb, run, (size_t)(p - run + 1));
        any = true;
    }
}

/* Returns the trimmed value of header 'name' into 'out' if it is present once, else false. */
static bool header_value(const struct nb_sigv4_request *req, const char *name, char *out,
                         size_t out_size)
{
    int count;
    const struct nb_sigv4_header *h = find_header(req, name, strlen(name), &count);
    if (!h || count != 1) {
        return false;
    }
    struct sbuf sb = {0};
    sb_add_trimmed(&sb, h->value);
    bool ok = !sb.overflow && sb.len < out_size;
    if (ok) {
        memcpy(out, sb.p ? sb.p : "", sb.len + 1);
    }
    sb_free(&sb);
    return ok;
}

/* --- dates ----------------------------------------------------------------------------------- */

static bool digits_at(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

static int num_at(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Converts broken-down UTC fields to a time, rejecting impossible dates (Feb 30, hour 24). */
static bool make_time(int year, int mon, int day, int hour, int min, int sec, time_t *out)
{
    if (year < 1970 || year > 9999 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 ||
        min > 59 || sec > 59) {
        return false;
    }
    struct tm tm = {
        .tm_year = year - 1900,
        .tm_mon = mon - 1,
        .tm_mday = day,
        .tm_hour = hour,
        .tm_min = min,
        .tm_sec = sec,
    };
    time_t t = timegm(&tm);
    struct tm check;
    if (t == (time_t)-1 || !gmtime_r(&t, &check) || check.tm_mday != day ||
        check.tm_mon != mon - 1) {
        return false;
    }
    *out = t;
    return true;
}

/* Parses "YYYYMMDDTHHMMSSZ" ('n' bytes). */
static bool parse_amz_date(const char *s, size_t n, time_t *out)
{
    if (n != 16 || !digits_at(s, 8) || s[8] != 'T' || !digits_at(s + 9, 6) || s[15] != 'Z') {
        return false;
    }
    return make_time(num_at(s, 4), num_at(s + 4, 2), num_at(s + 6, 2), num_at(s + 9, 2),
                     num_at(s + 11, 2), num_at(s + 13, 2), out);
}

/* Parses an HTTP date in the IMF-fixdate form "Sun, 06 Nov 1994 08:49:37 GMT" (also with a
 * "+0000"/"-0000" or "UTC" zone, which is what Python's email.utils.formatdate() writes). */
static bool parse_http_date(const char *s, time_t *out)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    char *end;
    while (is_space(*s)) {
        s++;
    }
    const char *comma = strchr(s, ',');
    if (!comma || comma - s != 3) {
        return false;
    }
    s = comma + 1;
    while (*s == ' ') {
        s++;
    }
    if (!isdigit((unsigned char)s[0])) {
        return false;
    }
    long day = strtol(s, &end, 10);
    if (end - s > 2 || *end != ' ') {
        return false;
    }
    s = end + 1;
    int mon = 0;
    for (int i = 0; i < 12; i++) {
        if (strncmp(s, months + 3 * i, 3) == 0) {
            mon = i + 1;
        }
    }
    if (mon == 0 || s[3] != ' ' || !digits_at(s + 4, 4) || s[8] != ' ' || !digits_at(s + 9, 2) ||
        s[11] != ':' || !digits_at(s + 12, 2) || s[14] != ':' || !digits_at(s + 15, 2) ||
        s[17] != ' ') {
        return false;
    }
    const char *zone = s + 18;
    size_t zlen = strlen(zone);
    while (zlen > 0 && is_space(zone[zlen - 1])) {
        zlen--;
    }
    if (!((zlen == 3 && (strncmp(zone, "GMT", 3) == 0 || strncmp(zone, "UTC", 3) == 0)) ||
          (zlen == 5 && (strncmp(zone, "+0000", 5) == 0 || strncmp(zone, "-0000", 5) == 0)))) {
        return false;
    }
    return make_time(num_at(s + 4, 4), mon, (int)day, num_at(s + 9, 2), num_at(s + 12, 2),
                     num_at(s + 15, 2), out);
}

static void format_amz_date(time_t t, char out[17])
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16) {
        out[0] = '\0';
    }
}

/* --- parsing the claim ----------------------------------------------------------------------- */

static bool copy_field(char *dst, size_t dst_size, const char *s, size_t n)
{
    if (n >= dst_size) {
        return false;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

static bool is_scope_name(const char *s, size_t n)
{
    if (n == 0) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '-' || c == '_' || c == '.')) {
            return false;
        }
    }
    return true;
}

/* Parses "AKID/YYYYMMDD/region/service/aws4_request". */
static enum nb_sigv4_result parse_credential(const char *s, size_t n, struct nb_sigv4_auth *auth,
                                             struct nb_error *err)
{
    char q[QUOTE_MAX + 4];
    const char *part[5];
    size_t part_len[5];
    int parts = 0;
    const char *start = s;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '/') {
            if (parts < 5) {
                part[parts] = start;
                part_len[parts] = (size_t)(s + i - start);
            }
            parts++;
            start = s + i + 1;
        }
    }
    if (parts != 5) {
        nb_error_set(err, NB_ERR_INVALID, "credential scope \"%s\" has %d parts, expected 5",
                     quote(s, n, q), parts);
        return NB_SIGV4_INCOMPLETE;
    }
    if (part_len[0] == 0) {
        nb_error_set(err, NB_ERR_INVALID, "credential scope \"%s\" has an empty access key",
                     quote(s, n, q));
        return NB_SIGV4_INCOMPLETE;
    }
    for (size_t i = 0; i < part_len[0]; i++) {
        unsigned char c = (unsigned char)part[0][i];
        if (c <= 0x20 || c >= 0x7f || c == ',') {
            nb_error_set(err, NB_ERR_INVALID,
                         "credential scope \"%s\" has an invalid character in its access key",
                         quote(s, n, q));
            return NB_SIGV4_INCOMPLETE;
        }
    }
    if (!copy_field(auth->access_key, sizeof auth->access_key, part[0], part_len[0])) {
        nb_error_set(err, NB_ERR_INVALID, "access key \"%s\" is longer than %zu characters",
                     quote(part[0], part_len[0], q), sizeof auth->access_key - 1);
        return NB_SIGV4_INCOMPLETE;
    }
    if (part_len[1] != 8 || !digits_at(part[1], 8)) {
        nb_error_set(err, NB_ERR_INVALID, "credential scope date \"%s\" is not YYYYMMDD",
                     quote(part[1], part_len[1], q));
        return NB_SIGV4_INCOMPLETE;
    }
    copy_field(auth->scope_date, sizeof auth->scope_date, part[1], 8);
    if (!is_scope_name(part[2], part_len[2]) ||
        !copy_field(auth->region, sizeof auth->region, part[2], part_len[2])) {
        nb_error_set(err, NB_ERR_INVALID, "credential scope region \"%s\" is malformed",
                     quote(part[2], part_len[2], q));
        return NB_SIGV4_INCOMPLETE;
    }
    if (!is_scope_name(part[3], part_len[3]) ||
        !copy_field(auth->service, sizeof auth->service, part[3], part_len[3])) {
        nb_error_set(err, NB_ERR_INVALID, "credential scope service \"%s\" is malformed",
                     quote(part[3], part_len[3], q));
        return NB_SIGV4_INCOMPLETE;
    }
    if (part_len[4] != strlen(SCOPE_TERMINATOR) ||
        memcmp(part[4], SCOPE_TERMINATOR, part_len[4]) != 0) {
        nb_error_set(err, NB_ERR_INVALID, "credential scope \"%s\" does not end in \"%s\"",
                     quote(s, n, q), SCOPE_TERMINATOR);
        return NB_SIGV4_INCOMPLETE;
    }
    return NB_SIGV4_OK;
}

/* Checks a SignedHeaders list: lower-case header names, ';'-separated, sorted, no duplicates. */
static bool signed_headers_valid(const char *s, size_t n, struct nb_error *err)
{
    char q[QUOTE_MAX + 4];
    const char *prev = NULL;
    size_t prev_len = 0;
    size_t i = 0;
    if (n == 0) {
        nb_error_set(err, NB_ERR_INVALID, "signed headers list is empty");
        return false;
    }
    while (i <= n) {
        size_t start = i;
        while (i < n && s[i] != ';') {
            if (!is_lower_tchar(s[i])) {
                nb_error_set(err, NB_ERR_INVALID,
                             "signed headers \"%s\" contain an invalid character at offset %zu "
                             "(names must be lower case)",
                             quote(s, n, q), i);
                return false;
            }
            i++;
        }
        size_t len = i - start;
        if (len == 0) {
            nb_error_set(err, NB_ERR_INVALID, "signed headers \"%s\" contain an empty name",
                         quote(s, n, q));
            return false;
        }
        if (prev) {
            size_t m = prev_len < len ? prev_len : len;
            int c = memcmp(prev, s + start, m);
            if (c > 0 || (c == 0 && prev_len >= len)) {
                nb_error_set(err, NB_ERR_INVALID,
                             "signed headers \"%s\" are not sorted or contain a duplicate",
                             quote(s, n, q));
                return false;
            }
        }
        prev = s + start;
        prev_len = len;
        i++;
    }
    return true;
}

static bool signature_valid(const char *s, size_t n)
{
    if (n != 64) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

static enum nb_sigv4_result parse_signed_headers(const char *s, size_t n,
                                                 struct nb_sigv4_auth *auth, struct nb_error *err)
{
    if (n >= sizeof auth->signed_headers) {
        nb_error_set(err, NB_ERR_INVALID, "signed headers list is longer than %zu characters",
                     sizeof auth->signed_headers - 1);
        return NB_SIGV4_INCOMPLETE;
    }
    if (!signed_headers_valid(s, n, err)) {
        return NB_SIGV4_INCOMPLETE;
    }
    copy_field(auth->signed_headers, sizeof auth->signed_headers, s, n);
    return NB_SIGV4_OK;
}

static enum nb_sigv4_result parse_signature(const char *s, size_t n, struct nb_sigv4_auth *auth,
                                            struct nb_error *err)
{
    char q[QUOTE_MAX + 4];
    if (!signature_valid(s, n)) {
        nb_error_set(err, NB_ERR_INVALID, "signature \"%s\" is not 64 lower-case hex digits",
                     quote(s, n, q));
        return NB_SIGV4_INCOMPLETE;
    }
    copy_field(auth->signature, sizeof auth->signature, s, n);
    return NB_SIGV4_OK;
}

/* Parses the value of an Authorization header:
 * "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...". */
static enum nb_sigv4_result parse_authorization(const char *value, struct nb_sigv4_auth *auth,
                                                struct nb_error *err)
{
    static const char *const names[] = {"Credential", "SignedHeaders", "Signature"};
    char q[QUOTE_MAX + 4];
    const char *p = value;
    while (is_space(*p)) {
        p++;
    }
    if (*p == '\0') {
        nb_error_set(err, NB_ERR_INVALID, "authorization header is empty");
        return NB_SIGV4_INCOMPLETE;
    }
    const char *alg = p;
    while (*p && !is_space(*p)) {
        p++;
    }
    size_t alg_len = (size_t)(p - alg);
    if (alg_len != strlen(ALGORITHM) || memcmp(alg, ALGORITHM, alg_len) != 0) {
        nb_error_set(err, NB_ERR_INVALID, "authorization scheme \"%s\" is not supported",
                     quote(alg, alg_len, q));
        nb_error_detail(err, "expected \"%s\"", ALGORITHM);
        return NB_SIGV4_INCOMPLETE;
    }
    const char *found[3] = {NULL, NULL, NULL};
    size_t found_len[3] = {0, 0, 0};
    bool after_comma = false;
    for (;;) {
        while (is_space(*p)) {
            p++;
        }
        const char *comp = p;
        while (*p && *p != ',') {
            p++;
        }
        const char *comp_end = p;
        while (comp_end > comp && is_space(comp_end[-1])) {
            comp_end--;
        }
        size_t comp_len = (size_t)(comp_end - comp);
        if (comp_len == 0) {
            if (*p == '\0' && !after_comma) {
                break;
            }
            nb_error_set(err, NB_ERR_INVALID, "authorization header has an empty component");
            return NB_SIGV4_INCOMPLETE;
        }
        const char *eq = memchr(comp, '=', comp_len);
        if (!eq) {
            nb_error_set(err, NB_ERR_INVALID,
                         "authorization header component \"%s\" is not of the form name=value",
                         quote(comp, comp_len, q));
            return NB_SIGV4_INCOMPLETE;
        }
        size_t name_len = (size_t)(eq - comp);
        int which = -1;
        for (int i = 0; i < 3; i++) {
            if (name_len == strlen(names[i]) && memcmp(comp, names[i], name_len) == 0) {
                which = i;
            }
        }
        if (which < 0) {
            nb_error_set(err, NB_ERR_INVALID,
                         "authorization header has an unknown component \"%s\"",
                         quote(comp, name_len, q));
            return NB_SIGV4_INCOMPLETE;
        }
        if (found[which]) {
            nb_error_set(err, NB_ERR_INVALID,
                         "authorization header has more than one \"%s\" component", names[which]);
            return NB_SIGV4_INCOMPLETE;
        }
        const char *v = eq + 1;
        while (v < comp_end && is_space(*v)) {
            v++;
        }
        for (const char *c = v; c < comp_end; c++) {
            if (is_space(*c)) {
                nb_error_set(err, NB_ERR_INVALID,
                             "authorization header component \"%s\" contains white space "
                             "(a missing comma?)",
                             names[which]);
                return NB_SIGV4_INCOMPLETE;
            }
        }
        found[which] = v;
        found_len[which] = (size_t)(comp_end - v);
        if (*p != ',') {
            break;
        }
        p++;
        after_comma = true;
    }
    for (int i = 0; i < 3; i++) {
        if (!found[i]) {
            nb_error_set(err, NB_ERR_INVALID, "authorization header has no \"%s\" component",
                         names[i]);
            return NB_SIGV4_INCOMPLETE;
        }
    }
    enum nb_sigv4_result r = parse_credential(found[0], found_len[0], auth, err);
    if (r == NB_SIGV4_OK) {
        r = parse_signed_headers(found[1], found_len[1], auth, err);
    }
    if (r == NB_SIGV4_OK) {
        r = parse_signature(found[2], found_len[2], auth, err);
    }
    return r;
}

/* The query parameters of a presigned request, in the order of 'presign_names'. */
enum {
    QP_ALGORITHM,
    QP_CREDENTIAL,
    QP_DATE,
    QP_EXPIRES,
    QP_SIGNED_HEADERS,
    QP_SIGNATURE,
    QP_COUNT,
};
static const char *const presign_names[QP_COUNT] = {
    "X-Amz-Algorithm", "X-Amz-Credential",    "X-Amz-Date",
    "X-Amz-Expires",   "X-Amz-SignedHeaders", "X-Amz-Signature",
};

/* Finds the presigning parameters in 'query'. Stores in 'raw[i]'/'raw_len[i]' where the raw value
 * of parameter i is (NULL when absent). Returns NB_SIGV4_OK or NB_SIGV4_INCOMPLETE with 'err'
 * when one appears twice or the query is too long. */
static enum nb_sigv4_result find_presign_params(const char *query, const char *raw[QP_COUNT],
                                                size_t raw_len[QP_COUNT], struct nb_error *err)
{
    for (int i = 0; i < QP_COUNT; i++) {
        raw[i] = NULL;
        raw_len[i] = 0;
    }
    if (!query) {
        return NB_SIGV4_OK;
    }
    size_t qlen = strlen(query);
    if (qlen > MAX_QUERY_LEN) {
        nb_error_set(err, NB_ERR_INVALID, "query string is too long (%zu bytes, at most %d)", qlen,
                     MAX_QUERY_LEN);
        return NB_SIGV4_INCOMPLETE;
    }
    const char *p = query;
    while (*p) {
        const char *pair = p;
        while (*p && *p != '&') {
            p++;
        }
        size_t pair_len = (size_t)(p - pair);
        if (*p == '&') {
            p++;
        }
        const char *eq = memchr(pair, '=', pair_len);
        size_t name_len = eq ? (size_t)(eq - pair) : pair_len;
        if (name_len == 0 || name_len > MAX_PARAM_NAME) {
            continue;
        }
        char decoded[MAX_PARAM_NAME];
        size_t dlen = form_decode(pair, name_len, decoded);
        for (int i = 0; i < QP_COUNT; i++) {
            if (dlen == strlen(presign_names[i]) && memcmp(decoded, presign_names[i], dlen) == 0) {
                if (raw[i]) {
                    nb_error_set(err, NB_ERR_INVALID, "query parameter \"%s\" appears twice",
                                 presign_names[i]);
                    return NB_SIGV4_INCOMPLETE;
                }
                raw[i] = eq ? eq + 1 : pair + pair_len;
                raw_len[i] = eq ? pair_len - name_len - 1 : 0;
            }
        }
    }
    return NB_SIGV4_OK;
}

static enum nb_sigv4_result parse_presigned(const char *raw[QP_COUNT],
                                            const size_t raw_len[QP_COUNT],
                                            struct nb_sigv4_auth *auth, struct nb_error *err)
{
    char q[QUOTE_MAX + 4];
    char value[QP_COUNT][MAX_AUTH_PARAM];
    size_t len[QP_COUNT];
    for (int i = 0; i < QP_COUNT; i++) {
        if (!raw[i]) {
            nb_error_set(err, NB_ERR_INVALID, "presigned request has no \"%s\" query parameter",
                         presign_names[i]);
            return NB_SIGV4_INCOMPLETE;
        }
        if (raw_len[i] >= MAX_AUTH_PARAM) {
            nb_error_set(err, NB_ERR_INVALID, "query parameter \"%s\" is too long",
                         presign_names[i]);
            return NB_SIGV4_INCOMPLETE;
        }
        len[i] = form_decode(raw[i], raw_len[i], value[i]);
        if (memchr(value[i], '\0', len[i])) {
            nb_error_set(err, NB_ERR_INVALID, "query parameter \"%s\" contains a NUL byte",
                         presign_names[i]);
            return NB_SIGV4_INCOMPLETE;
        }
        value[i][len[i]] = '\0';
    }
    if (strcmp(value[QP_ALGORITHM], ALGORITHM) != 0) {
        nb_error_set(err, NB_ERR_INVALID, "signature algorithm \"%s\" is not supported",
                     quote(value[QP_ALGORITHM], len[QP_ALGORITHM], q));
        nb_error_detail(err, "expected \"%s\"", ALGORITHM);
        return NB_SIGV4_INCOMPLETE;
    }
    enum nb_sigv4_result r = parse_credential(value[QP_CREDENTIAL], len[QP_CREDENTIAL], auth, err);
    if (r != NB_SIGV4_OK) {
        return r;
    }
    time_t t;
    if (!parse_amz_date(value[QP_DATE], len[QP_DATE], &t)) {
        nb_error_set(err, NB_ERR_INVALID, "X-Amz-Date \"%s\" is not of the form YYYYMMDDTHHMMSSZ",
                     quote(value[QP_DATE], len[QP_DATE], q));
        return NB_SIGV4_INCOMPLETE;
    }
    copy_field(auth->amz_date, sizeof auth->amz_date, value[QP_DATE], 16);
    const char *e = value[QP_EXPIRES];
    if (len[QP_EXPIRES] == 0 || len[QP_EXPIRES] > 6 || !digits_at(e, len[QP_EXPIRES]) ||
        num_at(e, len[QP_EXPIRES]) < 1 || num_at(e, len[QP_EXPIRES]) > MAX_EXPIRES) {
        nb_error_set(err, NB_ERR_INVALID,
                     "X-Amz-Expires \"%s\" is not a number of seconds "
                     "from 1 to %d",
                     quote(e, len[QP_EXPIRES], q), MAX_EXPIRES);
        return NB_SIGV4_INCOMPLETE;
    }
    auth->expires = num_at(e, len[QP_EXPIRES]);
    r = parse_signed_headers(value[QP_SIGNED_HEADERS], len[QP_SIGNED_HEADERS], auth, err);
    if (r != NB_SIGV4_OK) {
        return r;
    }
    return parse_signature(value[QP_SIGNATURE], len[QP_SIGNATURE], auth, err);
}

/* Fills 'auth->amz_date' from the X-Amz-Date header, else from the Date header. */
static enum nb_sigv4_result parse_request_date(const struct nb_sigv4_request *req,
                                               struct nb_sigv4_auth *auth, struct nb_error *err)
{
    char q[QUOTE_MAX + 4];
    char v[64];
    time_t t;
    int n;
    const struct nb_sigv4_header *h = find_header(req, "x-amz-date", 10, &n);
    if (h) {
        if (!header_value(req, "x-amz-date", v, sizeof v) || !parse_amz_date(v, strlen(v), &t)) {
            const char *raw = h->value ? h->value : "";
            nb_error_set(err, NB_ERR_INVALID,
                         "X-Amz-Date header \"%s\" is not of the form YYYYMMDDTHHMMSSZ%s",
                         quote(raw, strlen(raw), q), n > 1 ? " (or is repeated)" : "");
            return NB_SIGV4_INCOMPLETE;
        }
        memcpy(auth->amz_date, v, sizeof auth->amz_date);
        return NB_SIGV4_OK;
    }
    h = find_header(req, "date", 4, &n);
    if (!h) {
        nb_error_set(err, NB_ERR_INVALID, "request has neither an X-Amz-Date nor a Date header");
        return NB_SIGV4_INCOMPLETE;
    }
    const char *raw = h->value ? h->value : "";
    if (n > 1 || !parse_http_date(raw, &t)) {
        nb_error_set(err, NB_ERR_INVALID, "Date header \"%s\" is not an HTTP date in GMT",
                     quote(raw, strlen(raw), q));
        return NB_SIGV4_INCOMPLETE;
    }
    format_amz_date(t, auth->amz_date);
    return NB_SIGV4_OK;
}

enum nb_sigv4_result nb_sigv4_parse(const struct nb_sigv4_request *req, struct nb_sigv4_auth *auth,
                                    struct nb_error *err)
{
    memset(auth, 0, sizeof *auth);
    if (!req) {
        nb_error_set(err, NB_ERR_MISSING, "request has no signature");
        return NB_SIGV4_MISSING;
    }
    if (req->n_headers > MAX_HEADERS) {
        nb_error_set(err, NB_ERR_INVALID, "request has too many headers (%zu, at most %d)",
                     req->n_headers, MAX_HEADERS);
        return NB_SIGV4_INCOMPLETE;
    }
    const char *raw[QP_COUNT];
    size_t raw_len[QP_COUNT];
    enum nb_sigv4_result r = find_presign_params(req->query, raw, raw_len, err);
    if (r != NB_SIGV4_OK) {
        return r;
    }
    bool any_param = false;
    for (int i = 0; i < QP_COUNT; i++) {
        any_param |= raw[i] != NULL && i != QP_DATE;
    }
    int n_authz;
    const struct nb_sigv4_header *authz = find_header(req, "authorization", 13, &n_authz);

    if (!authz) {
        if (!any_param) {
            nb_error_set(err, NB_ERR_MISSING, "request has no signature");
            nb_error_detail(err, "expected an Authorization header or X-Amz-Signature "
                                 "query parameters");
            return NB_SIGV4_MISSING;
        }
        auth->presigned = true;
        r = parse_presigned(raw, raw_len, auth, err);
        if (r != NB_SIGV4_OK) {
            memset(auth, 0, sizeof *auth);
        }
        return r;
    }
    if (n_authz > 1) {
        nb_error_set(err, NB_ERR_INVALID, "request has %d authorization headers", n_authz);
        return NB_SIGV4_INCOMPLETE;
    }
    if (any_param) {
        nb_error_set(err, NB_ERR_INVALID,
                     "request is signed both by an authorization header "
                     "and by query parameters");
        return NB_SIGV4_INCOMPLETE;
    }
    r = parse_authorization(authz->value ? authz->value : "", auth, err);
    if (r == NB_SIGV4_OK) {
        r = parse_request_date(req, auth, err);
    }
    if (r != NB_SIGV4_OK) {
        memset(auth, 0, sizeof *auth);
    }
    return r;
}

/* --- canonical request ----------------------------------------------------------------------- */

/* Appends the canonical URI of the raw 'path': dot segments and empty segments removed as botocore
 * does (RFC 3986 section 5.2.4, and AWS folds repeated slashes), then every byte other than an
 * unreserved character or '/' percent-encoded, so an escape "%2F" received becomes "%252F". */
static void canonical_uri(struct sbuf *sb, const char *path)
{
    if (!path || !*path) {
        sb_addc(sb, '/');
        return;
    }
    size_t base = sb->len;
    if (path[0] == '/') {
        sb_addc(sb, '/');
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
                sb_truncate(sb, cut > base ? cut - 1 : base);
                n_segments--;
            }
            continue;
        }
        if (n_segments > 0) {
            sb_addc(sb, '/');
        }
        sb_add_encoded(sb, seg, len, false);
        n_segments++;
    }
    if (n_segments > 0 && p[-1] == '/') {
        sb_addc(sb, '/');
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
static enum nb_sigv4_result canonical_query(struct sbuf *sb, const char *query, bool presigned,
                                            struct nb_error *err)
{
    if (!query || !*query) {
        return NB_SIGV4_OK;
    }
    size_t qlen = strlen(query);
    if (qlen > MAX_QUERY_LEN) {
        nb_error_set(err, NB_ERR_INVALID, "query string is too long (%zu bytes, at most %d)", qlen,
                     MAX_QUERY_LEN);
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
            size_t dlen = form_decode(src, src_len, decoded);
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
            sb_addc(sb, '&');
        }
        sb_adds(sb, params[i].name);
        sb_addc(sb, '=');
        sb_adds(sb, params[i].value);
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
static enum nb_sigv4_result canonical_headers(struct sbuf *sb, const struct nb_sigv4_request *req,
                                              const char *signed_headers, const char *override_name,
                                              const char *override_value, struct nb_error *err)
{
    char q[QUOTE_MAX + 4];
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
        sb_add(sb, name, len);
        sb_addc(sb, ':');
        if (override_name && strlen(override_name) == len &&
            memcmp(override_name, name, len) == 0) {
            sb_add_trimmed(sb, override_value);
            sb_addc(sb, '\n');
            continue;
        }
        bool found = false;
        for (size_t i = 0; i < req->n_headers; i++) {
            const char *h = req->headers[i].name;
            if (h && strncasecmp(h, name, len) == 0 && h[len] == '\0') {
                if (found) {
                    sb_addc(sb, ',');
                }
                sb_add_trimmed(sb, req->headers[i].value);
                found = true;
            }
        }
        if (!found) {
            nb_error_set(err, NB_ERR_AUTH, "signed header \"%s\" is not in the request",
                         quote(name, len, q));
            return NB_SIGV4_MISMATCH;
        }
        sb_addc(sb, '\n');
    }
    return NB_SIGV4_OK;
}

/* Appends everything of the canonical request before the payload hash: method, URI, query,
 * headers and the signed header list, each followed by '\n'. */
static enum nb_sigv4_result canonical_prefix(struct sbuf *sb, const struct nb_sigv4_request *req,
                                             bool presigned, const char *signed_headers,
                                             const char *override_name, const char *override_value,
                                             struct nb_error *err)
{
    char q[QUOTE_MAX + 4];
    const char *method = req->method ? req->method : "";
    size_t mlen = strlen(method);
    if (mlen == 0 || mlen > MAX_METHOD_LEN) {
        nb_error_set(err, NB_ERR_INVALID, "request method \"%s\" is malformed",
                     quote(method, mlen, q));
        return NB_SIGV4_INCOMPLETE;
    }
    size_t plen = req->path ? strlen(req->path) : 0;
    if (plen > MAX_PATH_LEN) {
        nb_error_set(err, NB_ERR_INVALID, "request path is too long (%zu bytes, at most %d)", plen,
                     MAX_PATH_LEN);
        return NB_SIGV4_INCOMPLETE;
    }
    if (req->n_headers > MAX_HEADERS) {
        nb_error_set(err, NB_ERR_INVALID, "request has too many headers (%zu, at most %d)",
                     req->n_headers, MAX_HEADERS);
        return NB_SIGV4_INCOMPLETE;
    }
    for (size_t i = 0; i < mlen; i++) {
        sb_addc(sb, (char)toupper((unsigned char)method[i]));
    }
    sb_addc(sb, '\n');
    canonical_uri(sb, req->path);
    sb_addc(sb, '\n');
    enum nb_sigv4_result r = canonical_query(sb, req->query, presigned, err);
    if (r != NB_SIGV4_OK) {
        return r;
    }
    sb_addc(sb, '\n');
    r = canonical_headers(sb, req, signed_headers, override_name, override_value, err);
    if (r != NB_SIGV4_OK) {
        return r;
    }
    sb_addc(sb, '\n');
    sb_adds(sb, signed_headers);
    sb_addc(sb, '\n');
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
    nb_hmac_sha256(kservice, sizeof kservice, SCOPE_TERMINATOR, strlen(SCOPE_TERMINATOR), out);
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
static void compute_signature(const char *secret, const char *amz_date, const char *scope_date,
                              const char *region, const char *service, const struct sbuf *cr,
                              char sig[65])
{
    char cr_hash[2 * NB_SHA256_LEN + 1];
    nb_sha256_hex(cr->p, cr->len, cr_hash);
    char sts[512];
    int n = snprintf(sts, sizeof sts, "%s\n%s\n%s/%s/%s/%s\n%s", ALGORITHM, amz_date, scope_date,
                     region, service, SCOPE_TERMINATOR, cr_hash);
    uint8_t key[NB_SHA256_LEN];
    uint8_t mac[NB_SHA256_LEN];
    signing_key(secret, scope_date, region, service, key);
    nb_hmac_sha256(key, sizeof key, sts, n > 0 && (size_t)n < sizeof sts ? (size_t)n : 0, mac);
    nb_hex_encode(mac, sizeof mac, sig);
    OPENSSL_cleanse(key, sizeof key);
}

/* --- verification ---------------------------------------------------------------------------- */

static bool list_has(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ';');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0) {
            return true;
        }
        p += len + (e ? 1 : 0);
    }
    return false;
}

/* Bounded copies of the fields of 'in', so that a hand-built, unterminated struct cannot make
 * verification read out of bounds. */
static bool auth_fields_valid(const struct nb_sigv4_auth *in, struct nb_error *err)
{
    if (strnlen(in->access_key, sizeof in->access_key) == sizeof in->access_key ||
        strnlen(in->scope_date, sizeof in->scope_date) != 8 ||
        strnlen(in->region, sizeof in->region) == sizeof in->region ||
        strnlen(in->service, sizeof in->service) == sizeof in->service ||
        !is_scope_name(in->region, strlen(in->region)) ||
        !is_scope_name(in->service, strlen(in->service)) ||
        strnlen(in->amz_date, sizeof in->amz_date) == sizeof in->amz_date ||
        strnlen(in->signed_headers, sizeof in->signed_headers) == sizeof in->signed_headers ||
        strnlen(in->signature, sizeof in->signature) == sizeof in->signature) {
        nb_error_set(err, NB_ERR_INVALID, "signature claim is malformed");
        return false;
    }
    if (!signed_headers_valid(in->signed_headers, strlen(in->signed_headers), err)) {
        return false;
    }
    if (!signature_valid(in->signature, strlen(in->signature))) {
        nb_error_set(err, NB_ERR_INVALID, "signature is not 64 lower-case hex digits");
        return false;
    }
    return true;
}

enum nb_sigv4_result nb_sigv4_verify(const struct nb_sigv4_request *req,
                                     const struct nb_sigv4_auth *auth, const char *secret,
                                     time_t now, struct nb_error *err)
{
    char q[QUOTE_MAX + 4];
    if (!req || !auth || !secret) {
        nb_error_set(err, NB_ERR_INVALID, "no request, signature or secret to verify");
        return NB_SIGV4_INCOMPLETE;
    }
    if (!auth_fields_valid(auth, err)) {
        return NB_SIGV4_INCOMPLETE;
    }
    if (now < 0 || now > MAX_TIME) {
        nb_error_set(err, NB_ERR_INTERNAL, "server time %lld is out of range", (long long)now);
        return NB_SIGV4_EXPIRED;
    }
    time_t t;
    if (!parse_amz_date(auth->amz_date, strlen(auth->amz_date), &t)) {
        nb_error_set(err, NB_ERR_INVALID,
                     "request date \"%s\" is not of the form "
                     "YYYYMMDDTHHMMSSZ",
                     quote(auth->amz_date, strlen(auth->amz_date), q));
        return NB_SIGV4_INCOMPLETE;
    }
    if (!list_has(auth->signed_headers, "host")) {
        nb_error_set(err, NB_ERR_INVALID, "signed headers \"%s\" do not include \"host\"",
                     quote(auth->signed_headers, strlen(auth->signed_headers), q));
        return NB_SIGV4_INCOMPLETE;
    }
    if (auth->presigned) {
        if (auth->expires < 1 || auth->expires > MAX_EXPIRES) {
            nb_error_set(err, NB_ERR_INVALID, "X-Amz-Expires %ld is not from 1 to %d",
                         auth->expires, MAX_EXPIRES);
            return NB_SIGV4_INCOMPLETE;
        }
        if (t - now > NB_SIGV4_MAX_SKEW) {
            nb_error_set(err, NB_ERR_AUTH, "request date %s is %lld seconds in the future",
                         auth->amz_date, (long long)(t - now));
            return NB_SIGV4_EXPIRED;
        }
        if (now > t + auth->expires) {
            nb_error_set(err, NB_ERR_AUTH, "presigned request expired %lld seconds ago",
                         (long long)(now - t - auth->expires));
            nb_error_detail(err, "signed at %s, valid for %ld seconds", auth->amz_date,
                            auth->expires);
            return NB_SIGV4_EXPIRED;
        }
    } else if (t - now > NB_SIGV4_MAX_SKEW || now - t > NB_SIGV4_MAX_SKEW) {
        nb_error_set(err, NB_ERR_AUTH,
                     "request date %s is %lld seconds from the server's time, more than %d",
                     auth->amz_date, (long long)(t > now ? t - now : now - t), NB_SIGV4_MAX_SKEW);
        return NB_SIGV4_EXPIRED;
    }
    if (memcmp(auth->scope_date, auth->amz_date, 8) != 0) {
        nb_error_set(err, NB_ERR_AUTH,
                     "credential scope date %s does not match the request date %s",
                     auth->scope_date, auth->amz_date);
        return NB_SIGV4_MISMATCH;
    }

    /* The payload hash: a signed x-amz-content-sha256 header, which must then be the body's. */
    char body_hash[2 * NB_SHA256_LEN + 1];
    char claimed[2 * NB_SHA256_LEN + 2];
    const char *payload = body_hash;
    bool try_unsigned = false;
    bool have_claim = false;
    if (list_has(auth->signed_headers, "x-amz-content-sha256")) {
        if (!header_value(req, "x-amz-content-sha256", claimed, sizeof claimed)) {
            nb_error_set(err, NB_ERR_AUTH,
                         "signed header \"x-amz-content-sha256\" is missing, "
                         "repeated or too long");
            return NB_SIGV4_MISMATCH;
        }
        have_claim = true;
    }
    if (have_claim && auth->presigned && strcmp(claimed, UNSIGNED_PAYLOAD) == 0) {
        payload = UNSIGNED_PAYLOAD;
    } else {
        nb_sha256_hex(req->body, req->body_len, body_hash);
        if (have_claim) {
            if (strlen(claimed) != 2 * NB_SHA256_LEN || strcasecmp(claimed, body_hash) != 0) {
                nb_error_set(err, NB_ERR_AUTH,
                             "x-amz-content-sha256 \"%s\" is not the SHA-256 of the body",
                             quote(claimed, strlen(claimed), q));
                return NB_SIGV4_MISMATCH;
            }
            payload = claimed;
        } else {
            /* botocore signs the body's hash in presigned requests of non-S3 services; S3 and
             * nb_sigv4_presign() sign "UNSIGNED-PAYLOAD". Either is accepted. */
            try_unsigned = auth->presigned;
        }
    }

    struct sbuf cr = {0};
    enum nb_sigv4_result r =
        canonical_prefix(&cr, req, auth->presigned, auth->signed_headers, NULL, NULL, err);
    if (r != NB_SIGV4_OK) {
        sb_free(&cr);
        return r;
    }
    size_t prefix_len = cr.len;
    char sig[65];
    sb_adds(&cr, payload);
    compute_signature(secret, auth->amz_date, auth->scope_date, auth->region, auth->service, &cr,
                      sig);
    bool match = !cr.overflow && nb_ct_equal(sig, auth->signature, 64);
    if (!match && try_unsigned) {
        sb_truncate(&cr, prefix_len);
        sb_adds(&cr, UNSIGNED_PAYLOAD);
        compute_signature(secret, auth->amz_date, auth->scope_date, auth->region, auth->service,
                          &cr, sig);
        match = !cr.overflow && nb_ct_equal(sig, auth->signature, 64);
    }
    sb_free(&cr);
    if (!match) {
        nb_error_set(err, NB_ERR_AUTH, "signature does not match the request");
        nb_error_detail(err, "check the secret key and the signing method");
        return NB_SIGV4_MISMATCH;
    }
    return NB_SIGV4_OK;
}

/* --- signing --------------------------------------------------------------------------------- */

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Builds into 'out' the sorted, de-duplicated, lower-case names of 'req's headers without
 * Authorization, X-Amz-Date and the names in 'skip' (';'-separated), plus 'extra' if not NULL.
 * Returns 0, or -1 with 'err'. */
static int signed_header_list(const struct nb_sigv4_request *req, const char *extra,
                              struct sbuf *out, struct nb_error *err)
{
    char q[QUOTE_MAX + 4];
    if (req->n_headers > MAX_HEADERS) {
        nb_error_set(err, NB_ERR_INVALID, "request has too many headers (%zu, at most %d)",
                     req->n_headers, MAX_HEADERS);
        return -1;
    }
    char **names = calloc(req->n_headers + 1, sizeof *names);
    size_t n = 0;
    int rc = -1;
    bool has_host = false;
    if (!names) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory signing a request");
        return -1;
    }
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *h = req->headers[i].name ? req->headers[i].name : "";
        size_t len = strlen(h);
        if (len == 0 || len > 256) {
            nb_error_set(err, NB_ERR_INVALID, "header name \"%s\" is empty or too long",
                         quote(h, len, q));
            goto cleanup;
        }
        char *lower = malloc(len + 1);
        if (!lower) {
            nb_error_set(err, NB_ERR_INTERNAL, "out of memory signing a request");
            goto cleanup;
        }
        for (size_t j = 0; j <= len; j++) {
            lower[j] = (char)tolower((unsigned char)h[j]);
        }
        for (size_t j = 0; j < len; j++) {
            if (!is_lower_tchar(lower[j])) {
                nb_error_set(err, NB_ERR_INVALID, "header name \"%s\" is not a token",
                             quote(h, len, q));
                free(lower);
                goto cleanup;
            }
        }
        if (strcmp(lower, "authorization") == 0 || strcmp(lower, "x-amz-date") == 0) {
            free(lower);
            continue;
        }
        has_host |= strcmp(lower, "host") == 0;
        names[n++] = lower;
    }
    if (!has_host) {
        nb_error_set(err, NB_ERR_INVALID, "request to sign has no host header");
        goto cleanup;
    }
    if (extra) {
        names[n] = strdup(extra);
        if (!names[n]) {
            nb_error_set(err, NB_ERR_INTERNAL, "out of memory signing a request");
            goto cleanup;
        }
        n++;
    }
    qsort(names, n, sizeof *names, name_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(names[i], names[i - 1]) == 0) {
            continue;
        }
        if (out->len > 0) {
            sb_addc(out, ';');
        }
        sb_adds(out, names[i]);
    }
    if (out->overflow || out->len >= SIGNED_HEADERS_MAX) {
        nb_error_set(err, NB_ERR_LIMIT, "signed header list is too long");
        goto cleanup;
    }
    rc = 0;

cleanup:
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
    return rc;
}

static bool scope_args_valid(const char *access_key, const char *secret, const char *region,
                             const char *service, struct nb_error *err)
{
    char q[QUOTE_MAX + 4];
    if (!access_key || !*access_key || strlen(access_key) > 128 || strchr(access_key, '/') ||
        strpbrk(access_key, " ,\t\r\n")) {
        nb_error_set(err, NB_ERR_INVALID, "access key \"%s\" is malformed",
                     access_key ? quote(access_key, strlen(access_key), q) : "");
        return false;
    }
    if (!secret) {
        nb_error_set(err, NB_ERR_INVALID, "no secret key to sign with");
        return false;
    }
    if (!region || strlen(region) >= 64 || !is_scope_name(region, strlen(region))) {
        nb_error_set(err, NB_ERR_INVALID, "region \"%s\" is malformed",
                     region ? quote(region, strlen(region), q) : "");
        return false;
    }
    if (!service || strlen(service) >= 64 || !is_scope_name(service, strlen(service))) {
        nb_error_set(err, NB_ERR_INVALID, "service \"%s\" is malformed",
                     service ? quote(service, strlen(service), q) : "");
        return false;
    }
    return true;
}

int nb_sigv4_sign(const struct nb_sigv4_request *req, const char *access_key, const char *secret,
                  const char *region, const char *service, time_t now, char amz_date[17],
                  char *authz, size_t authz_size, struct nb_error *err)
{
    if (!req || !authz || !scope_args_valid(access_key, secret, region, service, err)) {
        if (!req || !authz) {
            nb_error_set(err, NB_ERR_INVALID, "no request or output buffer to sign into");
        }
        return -1;
    }
    format_amz_date(now, amz_date);
    if (strlen(amz_date) != 16) {
        nb_error_set(err, NB_ERR_INVALID, "time %lld cannot be written as a date", (long long)now);
        return -1;
    }
    char scope_date[9];
    memcpy(scope_date, amz_date, 8);
    scope_date[8] = '\0';

    struct sbuf names = {0};
    struct sbuf cr = {0};
    int rc = -1;
    if (signed_header_list(req, "x-amz-date", &names, err) != 0) {
        goto cleanup;
    }
    if (canonical_prefix(&cr, req, false, names.p, "x-amz-date", amz_date, err) != NB_SIGV4_OK) {
        goto cleanup;
    }
    char payload[2 * NB_SHA256_LEN + 2];
    if (!header_value(req, "x-amz-content-sha256", payload, sizeof payload)) {
        nb_sha256_hex(req->body, req->body_len, payload);
    }
    sb_adds(&cr, payload);
    char sig[65];
    compute_signature(secret, amz_date, scope_date, region, service, &cr, sig);
    int n = snprintf(authz, authz_size,
                     "%s Credential=%s/%s/%s/%s/%s, SignedHeaders=%s, "
                     "Signature=%s",
                     ALGORITHM, access_key, scope_date, region, service, SCOPE_TERMINATOR, names.p,
                     sig);
    if (n < 0 || (size_t)n >= authz_size) {
        nb_error_set(err, NB_ERR_LIMIT, "authorization header needs %d bytes, the buffer has %zu",
                     n + 1, authz_size);
        if (authz_size > 0) {
            authz[0] = '\0';
        }
        goto cleanup;
    }
    rc = 0;

cleanup:
    sb_free(&names);
    sb_free(&cr);
    return rc;
}

char *nb_sigv4_presign(const struct nb_sigv4_request *req, const char *access_key,
                       const char *secret, const char *region, const char *service, time_t now,
                       long expires, struct nb_error *err)
{
    if (!req) {
        nb_error_set(err, NB_ERR_INVALID, "no request to presign");
        return NULL;
    }
    if (!scope_args_valid(access_key, secret, region, service, err)) {
        return NULL;
    }
    if (expires < 1 || expires > MAX_EXPIRES) {
        nb_error_set(err, NB_ERR_INVALID, "expiry %ld is not from 1 to %d seconds", expires,
                     MAX_EXPIRES);
        return NULL;
    }
    const char *raw[QP_COUNT];
    size_t raw_len[QP_COUNT];
    if (find_presign_params(req->query, raw, raw_len, err) != NB_SIGV4_OK) {
        return NULL;
    }
    for (int i = 0; i < QP_COUNT; i++) {
        if (raw[i]) {
            nb_error_set(err, NB_ERR_INVALID, "query to presign already has \"%s\"",
                         presign_names[i]);
            return NULL;
        }
    }
    char amz_date[17];
    format_amz_date(now, amz_date);
    if (strlen(amz_date) != 16) {
        nb_error_set(err, NB_ERR_INVALID, "time %lld cannot be written as a date", (long long)now);
        return NULL;
    }
    char scope[384];
    snprintf(scope, sizeof scope, "%s/%.8s/%s/%s/%s", access_key, amz_date, region, service,
             SCOPE_TERMINATOR);
    char scope_date[9];
    memcpy(scope_date, amz_date, 8);
    scope_date[8] = '\0';

    struct sbuf names = {0};
    struct sbuf query = {0};
    struct sbuf cr = {0};
    char *result = NULL;
    if (signed_header_list(req, NULL, &names, err) != 0) {
        goto cleanup;
    }
    if (req->query && *req->query) {
        sb_adds(&query, req->query);
        sb_addc(&query, '&');
    }
    char expires_text[16];
    snprintf(expires_text, sizeof expires_text, "%ld", expires);
    sb_adds(&query, "X-Amz-Algorithm=" ALGORITHM "&X-Amz-Credential=");
    sb_add_encoded(&query, scope, strlen(scope), false);
    sb_adds(&query, "&X-Amz-Date=");
    sb_adds(&query, amz_date);
    sb_adds(&query, "&X-Amz-Expires=");
    sb_adds(&query, expires_text);
    sb_adds(&query, "&X-Amz-SignedHeaders=");
    sb_add_encoded(&query, names.p, names.len, false);
    if (query.overflow) {
        nb_error_set(err, NB_ERR_LIMIT, "presigned query string is too long");
        goto cleanup;
    }
    struct nb_sigv4_request signed_req = *req;
    signed_req.query = query.p;
    if (canonical_prefix(&cr, &signed_req, true, names.p, NULL, NULL, err) != NB_SIGV4_OK) {
        goto cleanup;
    }
    sb_adds(&cr, UNSIGNED_PAYLOAD);
    char sig[65];
    compute_signature(secret, amz_date, scope_date, region, service, &cr, sig);
    sb_adds(&query, "&X-Amz-Signature=");
    sb_adds(&query, sig);
    if (query.overflow || cr.overflow) {
        nb_error_set(err, NB_ERR_LIMIT, "presigned query string is too long");
        goto cleanup;
    }
    result = query.p;
    query.p = NULL;

cleanup:
    sb_free(&names);
    sb_free(&query);
    sb_free(&cr);
    return result;
}
