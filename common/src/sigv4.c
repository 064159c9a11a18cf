/* AWS Signature Version 4 for non-S3 services (see sigv4.h): parsing the claim a request makes,
 * verifying it, and signing or presigning a request.
 *
 * A claim comes either from an Authorization header or from X-Amz-* query parameters (a presigned
 * URL). This file parses either into a 'struct nb_sigv4_auth', checking every field it can check
 * without the secret, then verifies the claim: the request date against the server's clock, the
 * payload hash against the body, and the signature against the one computed over the canonical
 * request, which sigv4_canon.c builds. Everything a client sends is bounded before it is copied,
 * and every malformed part is reported by name. */
#include "nubo/sigv4.h"

#include "sigv4_priv.h"

#include "nubo/crypto.h"
#include "nubo/error.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

/* Bounds on what a client may send; a legitimate EC2 request is far below each. */
#define MAX_AUTH_PARAM 2048
#define MAX_EXPIRES    604800
#define MAX_TIME       253402300799LL /* 9999-12-31T23:59:59Z, the last YYYYMMDD date */

/* The longest SignedHeaders list that fits 'struct nb_sigv4_auth'. */
#define SIGNED_HEADERS_MAX (sizeof((struct nb_sigv4_auth){0}).signed_headers - 1)
/* Presigning parameter names are short: a longer raw name is none of them. */
#define MAX_PARAM_NAME 64

static bool is_lower_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
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
    while (nb_sigv4_is_space(*s)) {
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
    while (zlen > 0 && nb_sigv4_is_space(zone[zlen - 1])) {
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
    char q[NB_SIGV4_QUOTE_MAX + 4];
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
                     nb_sigv4_quote(s, n, q), parts);
        return NB_SIGV4_INCOMPLETE;
    }
    if (part_len[0] == 0) {
        nb_error_set(err, NB_ERR_INVALID, "credential scope \"%s\" has an empty access key",
                     nb_sigv4_quote(s, n, q));
        return NB_SIGV4_INCOMPLETE;
    }
    for (size_t i = 0; i < part_len[0]; i++) {
        unsigned char c = (unsigned char)part[0][i];
        if (c <= 0x20 || c >= 0x7f || c == ',') {
            nb_error_set(err, NB_ERR_INVALID,
                         "credential scope \"%s\" has an invalid character in its access key",
                         nb_sigv4_quote(s, n, q));
            return NB_SIGV4_INCOMPLETE;
        }
    }
    if (!copy_field(auth->access_key, sizeof auth->access_key, part[0], part_len[0])) {
        nb_error_set(err, NB_ERR_INVALID, "access key \"%s\" is longer than %zu characters",
                     nb_sigv4_quote(part[0], part_len[0], q), sizeof auth->access_key - 1);
        return NB_SIGV4_INCOMPLETE;
    }
    if (part_len[1] != 8 || !digits_at(part[1], 8)) {
        nb_error_set(err, NB_ERR_INVALID, "credential scope date \"%s\" is not YYYYMMDD",
                     nb_sigv4_quote(part[1], part_len[1], q));
        return NB_SIGV4_INCOMPLETE;
    }
    copy_field(auth->scope_date, sizeof auth->scope_date, part[1], 8);
    if (!is_scope_name(part[2], part_len[2]) ||
        !copy_field(auth->region, sizeof auth->region, part[2], part_len[2])) {
        nb_error_set(err, NB_ERR_INVALID, "credential scope region \"%s\" is malformed",
                     nb_sigv4_quote(part[2], part_len[2], q));
        return NB_SIGV4_INCOMPLETE;
    }
    if (!is_scope_name(part[3], part_len[3]) ||
        !copy_field(auth->service, sizeof auth->service, part[3], part_len[3])) {
        nb_error_set(err, NB_ERR_INVALID, "credential scope service \"%s\" is malformed",
                     nb_sigv4_quote(part[3], part_len[3], q));
        return NB_SIGV4_INCOMPLETE;
    }
    if (part_len[4] != strlen(NB_SIGV4_SCOPE_TERMINATOR) ||
        memcmp(part[4], NB_SIGV4_SCOPE_TERMINATOR, part_len[4]) != 0) {
        nb_error_set(err, NB_ERR_INVALID, "credential scope \"%s\" does not end in \"%s\"",
                     nb_sigv4_quote(s, n, q), NB_SIGV4_SCOPE_TERMINATOR);
        return NB_SIGV4_INCOMPLETE;
    }
    return NB_SIGV4_OK;
}

/* Checks a SignedHeaders list: lower-case header names, ';'-separated, sorted, no duplicates. */
static bool signed_headers_valid(const char *s, size_t n, struct nb_error *err)
{
    char q[NB_SIGV4_QUOTE_MAX + 4];
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
                             nb_sigv4_quote(s, n, q), i);
                return false;
            }
            i++;
        }
        size_t len = i - start;
        if (len == 0) {
            nb_error_set(err, NB_ERR_INVALID, "signed headers \"%s\" contain an empty name",
                         nb_sigv4_quote(s, n, q));
            return false;
        }
        if (prev) {
            size_t m = prev_len < len ? prev_len : len;
            int c = memcmp(prev, s + start, m);
            if (c > 0 || (c == 0 && prev_len >= len)) {
                nb_error_set(err, NB_ERR_INVALID,
                             "signed headers \"%s\" are not sorted or contain a duplicate",
                             nb_sigv4_quote(s, n, q));
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
    char q[NB_SIGV4_QUOTE_MAX + 4];
    if (!signature_valid(s, n)) {
        nb_error_set(err, NB_ERR_INVALID, "signature \"%s\" is not 64 lower-case hex digits",
                     nb_sigv4_quote(s, n, q));
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
    char q[NB_SIGV4_QUOTE_MAX + 4];
    const char *p = value;
    while (nb_sigv4_is_space(*p)) {
        p++;
    }
    if (*p == '\0') {
        nb_error_set(err, NB_ERR_INVALID, "authorization header is empty");
        return NB_SIGV4_INCOMPLETE;
    }
    const char *alg = p;
    while (*p && !nb_sigv4_is_space(*p)) {
        p++;
    }
    size_t alg_len = (size_t)(p - alg);
    if (alg_len != strlen(NB_SIGV4_ALGORITHM) || memcmp(alg, NB_SIGV4_ALGORITHM, alg_len) != 0) {
        nb_error_set(err, NB_ERR_INVALID, "authorization scheme \"%s\" is not supported",
                     nb_sigv4_quote(alg, alg_len, q));
        nb_error_detail(err, "expected \"%s\"", NB_SIGV4_ALGORITHM);
        return NB_SIGV4_INCOMPLETE;
    }
    const char *found[3] = {NULL, NULL, NULL};
    size_t found_len[3] = {0, 0, 0};
    bool after_comma = false;
    for (;;) {
        while (nb_sigv4_is_space(*p)) {
            p++;
        }
        const char *comp = p;
        while (*p && *p != ',') {
            p++;
        }
        const char *comp_end = p;
        while (comp_end > comp && nb_sigv4_is_space(comp_end[-1])) {
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
                         nb_sigv4_quote(comp, comp_len, q));
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
                         nb_sigv4_quote(comp, name_len, q));
            return NB_SIGV4_INCOMPLETE;
        }
        if (found[which]) {
            nb_error_set(err, NB_ERR_INVALID,
                         "authorization header has more than one \"%s\" component", names[which]);
            return NB_SIGV4_INCOMPLETE;
        }
        const char *v = eq + 1;
        while (v < comp_end && nb_sigv4_is_space(*v)) {
            v++;
        }
        for (const char *c = v; c < comp_end; c++) {
            if (nb_sigv4_is_space(*c)) {
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
    if (qlen > NB_SIGV4_MAX_QUERY_LEN) {
        nb_error_set(err, NB_ERR_INVALID, "query string is too long (%zu bytes, at most %d)", qlen,
                     NB_SIGV4_MAX_QUERY_LEN);
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
        size_t dlen = nb_sigv4_form_decode(pair, name_len, decoded);
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
    char q[NB_SIGV4_QUOTE_MAX + 4];
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
        len[i] = nb_sigv4_form_decode(raw[i], raw_len[i], value[i]);
        if (memchr(value[i], '\0', len[i])) {
            nb_error_set(err, NB_ERR_INVALID, "query parameter \"%s\" contains a NUL byte",
                         presign_names[i]);
            return NB_SIGV4_INCOMPLETE;
        }
        value[i][len[i]] = '\0';
    }
    if (strcmp(value[QP_ALGORITHM], NB_SIGV4_ALGORITHM) != 0) {
        nb_error_set(err, NB_ERR_INVALID, "signature algorithm \"%s\" is not supported",
                     nb_sigv4_quote(value[QP_ALGORITHM], len[QP_ALGORITHM], q));
        nb_error_detail(err, "expected \"%s\"", NB_SIGV4_ALGORITHM);
        return NB_SIGV4_INCOMPLETE;
    }
    enum nb_sigv4_result r = parse_credential(value[QP_CREDENTIAL], len[QP_CREDENTIAL], auth, err);
    if (r != NB_SIGV4_OK) {
        return r;
    }
    time_t t;
    if (!parse_amz_date(value[QP_DATE], len[QP_DATE], &t)) {
        nb_error_set(err, NB_ERR_INVALID, "X-Amz-Date \"%s\" is not of the form YYYYMMDDTHHMMSSZ",
                     nb_sigv4_quote(value[QP_DATE], len[QP_DATE], q));
        return NB_SIGV4_INCOMPLETE;
    }
    copy_field(auth->amz_date, sizeof auth->amz_date, value[QP_DATE], 16);
    const char *e = value[QP_EXPIRES];
    if (len[QP_EXPIRES] == 0 || len[QP_EXPIRES] > 6 || !digits_at(e, len[QP_EXPIRES]) ||
        num_at(e, len[QP_EXPIRES]) < 1 || num_at(e, len[QP_EXPIRES]) > MAX_EXPIRES) {
        nb_error_set(err, NB_ERR_INVALID,
                     "X-Amz-Expires \"%s\" is not a number of seconds "
                     "from 1 to %d",
                     nb_sigv4_quote(e, len[QP_EXPIRES], q), MAX_EXPIRES);
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
    char q[NB_SIGV4_QUOTE_MAX + 4];
    char v[64];
    time_t t;
    int n;
    const struct nb_sigv4_header *h = nb_sigv4_find_header(req, "x-amz-date", 10, &n);
    if (h) {
        if (!nb_sigv4_header_value(req, "x-amz-date", v, sizeof v) ||
            !parse_amz_date(v, strlen(v), &t)) {
            const char *raw = h->value ? h->value : "";
            nb_error_set(err, NB_ERR_INVALID,
                         "X-Amz-Date header \"%s\" is not of the form YYYYMMDDTHHMMSSZ%s",
                         nb_sigv4_quote(raw, strlen(raw), q), n > 1 ? " (or is repeated)" : "");
            return NB_SIGV4_INCOMPLETE;
        }
        memcpy(auth->amz_date, v, sizeof auth->amz_date);
        return NB_SIGV4_OK;
    }
    h = nb_sigv4_find_header(req, "date", 4, &n);
    if (!h) {
        nb_error_set(err, NB_ERR_INVALID, "request has neither an X-Amz-Date nor a Date header");
        return NB_SIGV4_INCOMPLETE;
    }
    const char *raw = h->value ? h->value : "";
    if (n > 1 || !parse_http_date(raw, &t)) {
        nb_error_set(err, NB_ERR_INVALID, "Date header \"%s\" is not an HTTP date in GMT",
                     nb_sigv4_quote(raw, strlen(raw), q));
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
    if (req->n_headers > NB_SIGV4_MAX_HEADERS) {
        nb_error_set(err, NB_ERR_INVALID, "request has too many headers (%zu, at most %d)",
                     req->n_headers, NB_SIGV4_MAX_HEADERS);
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
    const struct nb_sigv4_header *authz = nb_sigv4_find_header(req, "authorization", 13, &n_authz);

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
    char q[NB_SIGV4_QUOTE_MAX + 4];
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
                     nb_sigv4_quote(auth->amz_date, strlen(auth->amz_date), q));
        return NB_SIGV4_INCOMPLETE;
    }
    if (!list_has(auth->signed_headers, "host")) {
        nb_error_set(err, NB_ERR_INVALID, "signed headers \"%s\" do not include \"host\"",
                     nb_sigv4_quote(auth->signed_headers, strlen(auth->signed_headers), q));
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
        if (!nb_sigv4_header_value(req, "x-amz-content-sha256", claimed, sizeof claimed)) {
            nb_error_set(err, NB_ERR_AUTH,
                         "signed header \"x-amz-content-sha256\" is missing, "
                         "repeated or too long");
            return NB_SIGV4_MISMATCH;
        }
        have_claim = true;
    }
    if (req->body_streamed) {
        if (!have_claim ||
            (strcmp(claimed, UNSIGNED_PAYLOAD) != 0 && strlen(claimed) != 2 * NB_SHA256_LEN)) {
            nb_error_set(err, NB_ERR_AUTH,
                         "a streamed upload must sign an x-amz-content-sha256 header: "
                         "\"UNSIGNED-PAYLOAD\" or the body's SHA-256 in hex");
            return NB_SIGV4_MISMATCH;
        }
        payload = claimed;
    } else if (have_claim && auth->presigned && strcmp(claimed, UNSIGNED_PAYLOAD) == 0) {
        payload = UNSIGNED_PAYLOAD;
    } else {
        nb_sha256_hex(req->body, req->body_len, body_hash);
        if (have_claim) {
            if (strlen(claimed) != 2 * NB_SHA256_LEN || strcasecmp(claimed, body_hash) != 0) {
                nb_error_set(err, NB_ERR_AUTH,
                             "x-amz-content-sha256 \"%s\" is not the SHA-256 of the body",
                             nb_sigv4_quote(claimed, strlen(claimed), q));
                return NB_SIGV4_MISMATCH;
            }
            payload = claimed;
        } else {
            /* botocore signs the body's hash in presigned requests of non-S3 services; S3 and
             * nb_sigv4_presign() sign "UNSIGNED-PAYLOAD". Either is accepted. */
            try_unsigned = auth->presigned;
        }
    }

    struct nb_sigv4_buf cr = {0};
    enum nb_sigv4_result r =
        nb_sigv4_canonical_prefix(&cr, req, auth->presigned, auth->signed_headers, NULL, NULL, err);
    if (r != NB_SIGV4_OK) {
        nb_sigv4_buf_free(&cr);
        return r;
    }
    size_t prefix_len = cr.len;
    char sig[65];
    nb_sigv4_buf_adds(&cr, payload);
    nb_sigv4_compute_signature(secret, auth->amz_date, auth->scope_date, auth->region,
                               auth->service, &cr, sig);
    bool match = !cr.overflow && nb_ct_equal(sig, auth->signature, 64);
    if (!match && try_unsigned) {
        nb_sigv4_buf_truncate(&cr, prefix_len);
        nb_sigv4_buf_adds(&cr, UNSIGNED_PAYLOAD);
        nb_sigv4_compute_signature(secret, auth->amz_date, auth->scope_date, auth->region,
                                   auth->service, &cr, sig);
        match = !cr.overflow && nb_ct_equal(sig, auth->signature, 64);
    }
    nb_sigv4_buf_free(&cr);
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
                              struct nb_sigv4_buf *out, struct nb_error *err)
{
    char q[NB_SIGV4_QUOTE_MAX + 4];
    if (req->n_headers > NB_SIGV4_MAX_HEADERS) {
        nb_error_set(err, NB_ERR_INVALID, "request has too many headers (%zu, at most %d)",
                     req->n_headers, NB_SIGV4_MAX_HEADERS);
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
                         nb_sigv4_quote(h, len, q));
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
                             nb_sigv4_quote(h, len, q));
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
            nb_sigv4_buf_addc(out, ';');
        }
        nb_sigv4_buf_adds(out, names[i]);
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
    char q[NB_SIGV4_QUOTE_MAX + 4];
    if (!access_key || !*access_key || strlen(access_key) > 128 || strchr(access_key, '/') ||
        strpbrk(access_key, " ,\t\r\n")) {
        nb_error_set(err, NB_ERR_INVALID, "access key \"%s\" is malformed",
                     access_key ? nb_sigv4_quote(access_key, strlen(access_key), q) : "");
        return false;
    }
    if (!secret) {
        nb_error_set(err, NB_ERR_INVALID, "no secret key to sign with");
        return false;
    }
    if (!region || strlen(region) >= 64 || !is_scope_name(region, strlen(region))) {
        nb_error_set(err, NB_ERR_INVALID, "region \"%s\" is malformed",
                     region ? nb_sigv4_quote(region, strlen(region), q) : "");
        return false;
    }
    if (!service || strlen(service) >= 64 || !is_scope_name(service, strlen(service))) {
        nb_error_set(err, NB_ERR_INVALID, "service \"%s\" is malformed",
                     service ? nb_sigv4_quote(service, strlen(service), q) : "");
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

    struct nb_sigv4_buf names = {0};
    struct nb_sigv4_buf cr = {0};
    int rc = -1;
    if (signed_header_list(req, "x-amz-date", &names, err) != 0) {
        goto cleanup;
    }
    if (nb_sigv4_canonical_prefix(&cr, req, false, names.p, "x-amz-date", amz_date, err) !=
        NB_SIGV4_OK) {
        goto cleanup;
    }
    char payload[2 * NB_SHA256_LEN + 2];
    if (!nb_sigv4_header_value(req, "x-amz-content-sha256", payload, sizeof payload)) {
        nb_sha256_hex(req->body, req->body_len, payload);
    }
    nb_sigv4_buf_adds(&cr, payload);
    char sig[65];
    nb_sigv4_compute_signature(secret, amz_date, scope_date, region, service, &cr, sig);
    int n = snprintf(authz, authz_size,
                     "%s Credential=%s/%s/%s/%s/%s, SignedHeaders=%s, "
                     "Signature=%s",
                     NB_SIGV4_ALGORITHM, access_key, scope_date, region, service,
                     NB_SIGV4_SCOPE_TERMINATOR, names.p, sig);
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
    nb_sigv4_buf_free(&names);
    nb_sigv4_buf_free(&cr);
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
             NB_SIGV4_SCOPE_TERMINATOR);
    char scope_date[9];
    memcpy(scope_date, amz_date, 8);
    scope_date[8] = '\0';

    struct nb_sigv4_buf names = {0};
    struct nb_sigv4_buf query = {0};
    struct nb_sigv4_buf cr = {0};
    char *result = NULL;
    if (signed_header_list(req, NULL, &names, err) != 0) {
        goto cleanup;
    }
    if (req->query && *req->query) {
        nb_sigv4_buf_adds(&query, req->query);
        nb_sigv4_buf_addc(&query, '&');
    }
    char expires_text[16];
    snprintf(expires_text, sizeof expires_text, "%ld", expires);
    nb_sigv4_buf_adds(&query, "X-Amz-Algorithm=" NB_SIGV4_ALGORITHM "&X-Amz-Credential=");
    nb_sigv4_buf_add_encoded(&query, scope, strlen(scope), false);
    nb_sigv4_buf_adds(&query, "&X-Amz-Date=");
    nb_sigv4_buf_adds(&query, amz_date);
    nb_sigv4_buf_adds(&query, "&X-Amz-Expires=");
    nb_sigv4_buf_adds(&query, expires_text);
    nb_sigv4_buf_adds(&query, "&X-Amz-SignedHeaders=");
    nb_sigv4_buf_add_encoded(&query, names.p, names.len, false);
    if (query.overflow) {
        nb_error_set(err, NB_ERR_LIMIT, "presigned query string is too long");
        goto cleanup;
    }
    struct nb_sigv4_request signed_req = *req;
    signed_req.query = query.p;
    if (nb_sigv4_canonical_prefix(&cr, &signed_req, true, names.p, NULL, NULL, err) !=
        NB_SIGV4_OK) {
        goto cleanup;
    }
    nb_sigv4_buf_adds(&cr, UNSIGNED_PAYLOAD);
    char sig[65];
    nb_sigv4_compute_signature(secret, amz_date, scope_date, region, service, &cr, sig);
    nb_sigv4_buf_adds(&query, "&X-Amz-Signature=");
    nb_sigv4_buf_adds(&query, sig);
    if (query.overflow || cr.overflow) {
        nb_error_set(err, NB_ERR_LIMIT, "presigned query string is too long");
        goto cleanup;
    }
    result = query.p;
    query.p = NULL;

cleanup:
    nb_sigv4_buf_free(&names);
    nb_sigv4_buf_free(&query);
    nb_sigv4_buf_free(&cr);
    return result;
}
