/* EC2 Query API parameters (see ec2_params.h).
 *
 * Parsing decodes every "name=value" segment once into one arena block and keeps two views of
 * the entries: request order (for the log) and name order (binary search for lookups; the names
 * "Prefix.N..." of a list then sit next to each other, so a list is one contiguous range). */
#include "ec2_params.h"

#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nubo/arena.h"
#include "nubo/crypto.h"
#include "nubo/error.h"

struct ec2_params {
    struct ec2_params_entry *entries;       /* request order */
    const struct ec2_params_entry **sorted; /* name order */
    size_t n;
};

const char *const ec2_params_redact_default[] = {
    "UserData",      "PublicKeyMaterial",    "Signature", "X-Amz-Signature",
    "SecurityToken", "X-Amz-Security-Token", NULL,
};

/* ---- messages --------------------------------------------------------------------------- */

/* Untrusted text goes into messages through quote(): printable ASCII is kept, any other byte
 * becomes '?', and long text is cut with "...", so a message is always short, valid UTF-8 and
 * free of control characters. */
#define QUOTE_KEEP 64
#define QUOTE_BUF  (QUOTE_KEEP + 4)

static const char *quote(char *dst, const char *s, size_t n)
{
    size_t keep = n > QUOTE_KEEP ? QUOTE_KEEP : n;
    for (size_t i = 0; i < keep; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (keep < n) {
        memcpy(dst + keep, "...", 3);
        keep += 3;
    }
    dst[keep] = '\0';
    return dst;
}

static void set_missing(struct nb_error *err, const char *name)
{
    char q[QUOTE_BUF];
    nb_error_set(err, NB_ERR_MISSING, "missing required parameter \"%s\"",
                 quote(q, name, strlen(name)));
}

static void set_unknown(struct nb_error *err, const char *name)
{
    char q[QUOTE_BUF];
    nb_error_set(err, NB_ERR_INVALID, "unknown parameter \"%s\"", quote(q, name, strlen(name)));
    nb_error_reason(err, "UnknownParameter");
}

static void set_bad_value(struct nb_error *err, const char *name, const char *value,
                          const char *why)
{
    char qn[QUOTE_BUF], qv[QUOTE_BUF];
    nb_error_set(err, NB_ERR_INVALID, "invalid value \"%s\" for parameter \"%s\": %s",
                 quote(qv, value, strlen(value)), quote(qn, name, strlen(name)), why);
}

/* ---- decoding --------------------------------------------------------------------------- */

/* Accepts exactly the well-formed UTF-8 of RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
            min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
            min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return false;
        }
        if (n - i < len) {
            return false;
        }
        for (size_t k = 1; k < len; k++) {
            unsigned cc = s[i + k];
            if ((cc & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (cc & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += len;
    }
    return true;
}

/* Decodes 'n' bytes of 'src' into 'dst' (room for 'n' + 1 bytes) and NUL-terminates it.
 * Stores the decoded length into '*len'. Returns NULL, or why the text is not acceptable. */
static const char *decode(const char *src, size_t n, bool plus_space, char *dst, size_t *len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '%') {
            int hi = i + 2 < n ? nb_hex_value((unsigned char)src[i + 1]) : -1;
            int lo = hi >= 0 ? nb_hex_value((unsigned char)src[i + 2]) : -1;
            if (lo < 0) {
                return "bad percent escape";
            }
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        if (c == '\0') {
            return "contains a NUL byte";
        }
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
    *len = o;
    if (!utf8_valid((const unsigned char *)dst, o)) {
        return "not valid UTF-8";
    }
    return NULL;
}

static size_t count_segments(const char *s, size_t n)
{
    size_t count = 0;
    bool in_segment = false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '&') {
            in_segment = false;
        } else if (!in_segment) {
            in_segment = true;
            count++;
        }
    }
    return count;
}

/* Decodes the segments of 'text' into entries of 'p', writing the strings at '*store' and
 * advancing it. Returns 0, or -1 with 'err' set. */
static int parse_part(struct ec2_params *p, const char *text, size_t n, bool form, char **store,
                      struct nb_error *err)
{
    if (n == 0) {
        return 0; /* 'text' may be NULL, and NULL + 0 is undefined */
    }
    const char *end = text + n;
    const char *seg = text;
    while (seg < end) {
        const char *amp = memchr(seg, '&', (size_t)(end - seg));
        const char *seg_end = amp ? amp : end;
        if (seg_end == seg) {
            seg++;
            continue;
        }
        const char *eq = memchr(seg, '=', (size_t)(seg_end - seg));
        const char *raw_name_end = eq ? eq : seg_end;
        size_t raw_name_len = (size_t)(raw_name_end - seg);
        char q[QUOTE_BUF];

        char *name = *store;
        size_t name_len;
        const char *why = decode(seg, raw_name_len, form, name, &name_len);
        if (why) {
            nb_error_set(err, NB_ERR_INVALID, "invalid parameter name \"%s\": %s",
                         quote(q, seg, raw_name_len), why);
            return -1;
        }
        if (name_len == 0) {
            nb_error_set(err, NB_ERR_INVALID, "empty parameter name");
            return -1;
        }
        if (name_len > EC2_PARAMS_MAX_NAME) {
            nb_error_set(err, NB_ERR_INVALID, "parameter name \"%s\" is longer than %d bytes",
                         quote(q, name, name_len), EC2_PARAMS_MAX_NAME);
            return -1;
        }
        char *value = name + name_len + 1;
        size_t value_len = 0;
        const char *raw_value = eq ? eq + 1 : seg_end;
        why = decode(raw_value, (size_t)(seg_end - raw_value), form, value, &value_len);
        if (why) {
            nb_error_set(err, NB_ERR_INVALID, "invalid value for parameter \"%s\": %s",
                         quote(q, name, name_len), why);
            return -1;
        }
        *store = value + value_len + 1;
        p->entries[p->n].name = name;
        p->entries[p->n].value = value;
        p->n++;
        seg = seg_end;
    }
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    const struct ec2_params_entry *const *x = a;
    const struct ec2_params_entry *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

struct ec2_params *ec2_params_parse(struct nb_arena *arena, const char *query, size_t query_len,
                                    const char *body, size_t body_len, struct nb_error *err)
{
    if (query_len > EC2_PARAMS_MAX_BYTES || body_len > EC2_PARAMS_MAX_BYTES - query_len) {
        nb_error_set(err, NB_ERR_INVALID, "request parameters are longer than %d bytes",
                     EC2_PARAMS_MAX_BYTES);
        return NULL;
    }
    size_t count = count_segments(query, query_len) + count_segments(body, body_len);
    if (count > EC2_PARAMS_MAX_COUNT) {
        nb_error_set(err, NB_ERR_INVALID, "too many parameters: more than %d",
                     EC2_PARAMS_MAX_COUNT);
        return NULL;
    }
    struct ec2_params *p = nb_arena_alloc(arena, sizeof *p);
    p->n = 0;
    p->entries = nb_arena_alloc(arena, (count ? count : 1) * sizeof *p->entries);
    p->sorted = nb_arena_alloc(arena, (count ? count : 1) * sizeof *p->sorted);

    /* Decoding never grows text; each segment gains at most two NUL terminators. */
    char *store = nb_arena_alloc(arena, query_len + body_len + 2 * count + 1);
    if (parse_part(p, query, query_len, false, &store, err) < 0 ||
        parse_part(p, body, body_len, true, &store, err) < 0) {
        return NULL;
    }
    for (size_t i = 0; i < p->n; i++) {
        p->sorted[i] = &p->entries[i];
    }
    if (p->n > 1) {
        qsort(p->sorted, p->n, sizeof *p->sorted, cmp_entry);
    }
    for (size_t i = 1; i < p->n; i++) {
        if (strcmp(p->sorted[i - 1]->name, p->sorted[i]->name) == 0) {
            const char *name = p->sorted[i]->name;
            char q[QUOTE_BUF];
            nb_error_set(err, NB_ERR_INVALID, "parameter \"%s\" is given more than once",
                         quote(q, name, strlen(name)));
            return NULL;
        }
    }
    return p;
}

size_t ec2_params_count(const struct ec2_params *p)
{
    return p->n;
}

const struct ec2_params_entry *ec2_params_at(const struct ec2_params *p, size_t i)
{
    return &p->entries[i];
}

/* ---- lookups ---------------------------------------------------------------------------- */

const char *ec2_params_get(const struct ec2_params *p, const char *name)
{
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(p->sorted[mid]->name, name);
        if (c == 0) {
            return p->sorted[mid]->value;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

int ec2_params_get_string(const struct ec2_params *p, const char *name, bool required,
                          const char **out, struct nb_error *err)
{
    const char *v = ec2_params_get(p, name);
    if (!v) {
        if (required) {
            set_missing(err, name);
            return -1;
        }
        return 0;
    }
    *out = v;
    return 1;
}

int ec2_params_get_int(const struct ec2_params *p, const char *name, bool required, long long min,
                       long long max, long long *out, struct nb_error *err)
{
    const char *v;
    int rc = ec2_params_get_string(p, name, required, &v, err);
    if (rc <= 0) {
        return rc;
    }
    /* By hand rather than strtoll(): no leading spaces, no '+', no locale. */
    const char *s = v;
    bool neg = *s == '-';
    s += neg;
    unsigned long long mag = 0;
    bool ok = *s != '\0';
    for (; *s && ok; s++) {
        if (*s < '0' || *s > '9' || mag > (ULLONG_MAX - 9) / 10) {
            ok = false;
        } else {
            mag = mag * 10 + (unsigned long long)(*s - '0');
        }
    }
    long long val = 0;
    if (ok) {
        if (neg && mag <= (unsigned long long)LLONG_MAX + 1) {
            val = mag == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)mag;
        } else if (!neg && mag <= (unsigned long long)LLONG_MAX) {
            val = (long long)mag;
        } else {
            ok = false;
        }
    }
    if (!ok || val < min || val > max) {
        char why[96];
        snprintf(why, sizeof why, "must be an integer from %lld to %lld", min, max);
        set_bad_value(err, name, v, why);
        return -1;
    }
    *out = val;
    return 1;
}

int ec2_params_get_bool(const struct ec2_params *p, const char *name, bool required, bool *out,
                        struct nb_error *err)
{
    const char *v;
    int rc = ec2_params_get_string(p, name, required, &v, err);
    if (rc <= 0) {
        return rc;
    }
    if (strcasecmp(v, "true") == 0) {
        *out = true;
    } else if (strcasecmp(v, "false") == 0) {
        *out = false;
    } else {
        set_bad_value(err, name, v, "must be \"true\" or \"false\"");
        return -1;
    }
    return 1;
}

/* ---- indexed members: "Prefix.N.Rest" --------------------------------------------------- */

/* One parameter seen under a prefix: the index N after it and the rest of the name after
 * "N." ("" when the name ends with N). */
struct member {
    unsigned idx;
    const char *rest;
    const struct ec2_params_entry *e;
};

/* Compares 'name' with the string 'prefix' + "." in strcmp() order. */
static int cmp_prefix_dot(const char *name, const char *prefix, size_t plen)
{
    int c = strncmp(name, prefix, plen);
    if (c != 0) {
        return c;
    }
    return (int)(unsigned char)name[plen] - '.';
}

/* Returns the entries whose names start with 'prefix' + "." as members with 'rest' the whole
 * name (index_members() then does the parsing). The array is allocated in 'a'. */
static struct member *prefix_range(const struct ec2_params *p, struct nb_arena *a,
                                   const char *prefix, size_t *n)
{
    size_t plen = strlen(prefix);
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_prefix_dot(p->sorted[mid]->name, prefix, plen) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    size_t end = lo;
    while (end < p->n && cmp_prefix_dot(p->sorted[end]->name, prefix, plen) == 0) {
        end++;
    }
    *n = end - lo;
    struct member *m = nb_arena_alloc(a, (*n ? *n : 1) * sizeof *m);
    for (size_t i = 0; i < *n; i++) {
        m[i].idx = 0;
        m[i].rest = p->sorted[lo + i]->name;
        m[i].e = p->sorted[lo + i];
    }
    return m;
}

/* Parses a list index at 's': 1 to EC2_PARAMS_MAX_INDEX, no leading zero, followed by the end
 * of the name or by "." and more. Returns the text after the index ("" or after the dot), or
 * NULL when the index is not valid. */
static const char *parse_index(const char *s, unsigned *idx)
{
    if (*s < '1' || *s > '9') {
        return NULL;
    }
    unsigned v = 0;
    int digits = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (++digits > 9) {
            return NULL;
        }
        v = v * 10 + (unsigned)(*s - '0');
    }
    if (v > EC2_PARAMS_MAX_INDEX) {
        return NULL;
    }
    *idx = v;
    if (*s == '\0') {
        return s;
    }
    if (*s == '.' && s[1] != '\0') {
        return s + 1;
    }
    return NULL;
}

static int cmp_member(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    if (x->idx != y->idx) {
        return x->idx < y->idx ? -1 : 1;
    }
    return strcmp(x->rest, y->rest);
}

/* Of the members 'in' (by their 'rest'), takes those whose rest starts with 'prefix' + "." and
 * stores into '*out' ('*nout' of them, allocated in 'a') with the index parsed and the rest
 * advanced past it, sorted by index then rest. Returns 0, or -1 with 'err' set when an index is
 * not valid. */
static int index_members(struct nb_arena *a, const struct member *in, size_t n, const char *prefix,
                         struct member **out, size_t *nout, struct nb_error *err)
{
    size_t plen = strlen(prefix);
    struct member *m = nb_arena_alloc(a, (n ? n : 1) * sizeof *m);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (cmp_prefix_dot(in[i].rest, prefix, plen) != 0) {
            continue;
        }
        unsigned idx;
        const char *rest = parse_index(in[i].rest + plen + 1, &idx);
        if (!rest) {
            const char *name = in[i].e->name;
            char q[QUOTE_BUF];
            nb_error_set(err, NB_ERR_INVALID,
                         "invalid list index in parameter \"%s\": an index is a whole number "
                         "from 1 to %u without leading zeros",
                         quote(q, name, strlen(name)), EC2_PARAMS_MAX_INDEX);
            return -1;
        }
        m[k].idx = idx;
        m[k].rest = rest;
        m[k].e = in[i].e;
        k++;
    }
    if (k > 1) {
        qsort(m, k, sizeof *m, cmp_member);
    }
    *out = m;
    *nout = k;
    return 0;
}

/* Returns the end of the group of members sharing the index of 'm[start]'. */
static size_t group_end(const struct member *m, size_t n, size_t start)
{
    size_t end = start + 1;
    while (end < n && m[end].idx == m[start].idx) {
        end++;
    }
    return end;
}

/* The values of the plain list 'prefix'.N among 'in', in order of N. */
static int values_of(struct nb_arena *a, const struct member *in, size_t n, const char *prefix,
                     const char ***out, size_t *nout, struct nb_error *err)
{
    struct member *m;
    size_t k;
    if (index_members(a, in, n, prefix, &m, &k, err) < 0) {
        return -1;
    }
    const char **values = NULL;
    if (k > 0) {
        values = nb_arena_alloc(a, k * sizeof *values);
    }
    for (size_t i = 0; i < k; i++) {
        if (m[i].rest[0] != '\0') {
            set_unknown(err, m[i].e->name);
            return -1;
        }
        values[i] = m[i].e->value; /* names are unique, so indices are too */
    }
    *out = values;
    *nout = k;
    return 0;
}

int ec2_params_get_list(const struct ec2_params *p, struct nb_arena *arena, const char *prefix,
                        const char ***out, size_t *n, struct nb_error *err)
{
    size_t count;
    struct member *in = prefix_range(p, arena, prefix, &count);
    return values_of(arena, in, count, prefix, out, n, err);
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

int ec2_params_get_filters(const struct ec2_params *p, struct nb_arena *arena,
                           struct ec2_params_filter **out, size_t *n, struct nb_error *err)
{
    size_t count, k;
    struct member *in = prefix_range(p, arena, "Filter", &count);
    struct member *m;
    if (index_members(arena, in, count, "Filter", &m, &k, err) < 0) {
        return -1;
    }
    struct ec2_params_filter *filters = NULL;
    size_t nf = 0;
    if (k > 0) {
        filters = nb_arena_alloc(arena, k * sizeof *filters);
    }
    for (size_t start = 0; start < k;) {
        size_t end = group_end(m, k, start);
        struct ec2_params_filter *f = &filters[nf++];
        f->name = NULL;
        for (size_t i = start; i < end; i++) {
            if (strcmp(m[i].rest, "Name") == 0) {
                f->name = m[i].e->value;
            } else if (!starts_with(m[i].rest, "Value.")) {
                set_unknown(err, m[i].e->name);
                return -1;
            }
        }
        if (!f->name) {
            char name[64];
            snprintf(name, sizeof name, "Filter.%u.Name", m[start].idx);
            set_missing(err, name);
            return -1;
        }
        if (values_of(arena, m + start, end - start, "Value", &f->values, &f->n_values, err) < 0) {
            return -1;
        }
        start = end;
    }
    *out = filters;
    *n = nf;
    return 0;
}

/* The tags 'prefix'.N.Key / .Value among 'in'; 'base' is the full name of 'prefix' for messages
 * (e.g. "TagSpecification.2.Tag"). */
static int tags_of(struct nb_arena *a, const struct member *in, size_t n, const char *prefix,
                   const char *base, struct ec2_params_tag **out, size_t *nout,
                   struct nb_error *err)
{
    struct member *m;
    size_t k;
    if (index_members(a, in, n, prefix, &m, &k, err) < 0) {
        return -1;
    }
    struct ec2_params_tag *tags = NULL;
    size_t nt = 0;
    if (k > 0) {
        tags = nb_arena_alloc(a, k * sizeof *tags);
    }
    for (size_t start = 0; start < k;) {
        size_t end = group_end(m, k, start);
        struct ec2_params_tag *t = &tags[nt++];
        t->key = NULL;
        t->value = "";
        for (size_t i = start; i < end; i++) {
            if (strcmp(m[i].rest, "Key") == 0) {
                t->key = m[i].e->value;
            } else if (strcmp(m[i].rest, "Value") == 0) {
                t->value = m[i].e->value;
            } else {
                set_unknown(err, m[i].e->name);
                return -1;
            }
        }
        if (!t->key) {
            char name[EC2_PARAMS_MAX_NAME + 32];
            snprintf(name, sizeof name, "%s.%u.Key", base, m[start].idx);
            set_missing(err, name);
            return -1;
        }
        start = end;
    }
    *out = tags;
    *nout = nt;
    return 0;
}

int ec2_params_get_tags(const struct ec2_params *p, struct nb_arena *arena, const char *prefix,
                        struct ec2_params_tag **out, size_t *n, struct nb_error *err)
{
    size_t count;
    struct member *in = prefix_range(p, arena, prefix, &count);
    return tags_of(arena, in, count, prefix, prefix, out, n, err);
}

int ec2_params_get_tag_specs(const struct ec2_params *p, struct nb_arena *arena,
                             struct ec2_params_tag_spec **out, size_t *n, struct nb_error *err)
{
    size_t count, k;
    struct member *in = prefix_range(p, arena, "TagSpecification", &count);
    struct member *m;
    if (index_members(arena, in, count, "TagSpecification", &m, &k, err) < 0) {
        return -1;
    }
    struct ec2_params_tag_spec *specs = NULL;
    size_t ns = 0;
    if (k > 0) {
        specs = nb_arena_alloc(arena, k * sizeof *specs);
    }
    for (size_t start = 0; start < k;) {
        size_t end = group_end(m, k, start);
        struct ec2_params_tag_spec *s = &specs[ns++];
        s->resource_type = NULL;
        for (size_t i = start; i < end; i++) {
            if (strcmp(m[i].rest, "ResourceType") == 0) {
                s->resource_type = m[i].e->value;
            } else if (!starts_with(m[i].rest, "Tag.")) {
                set_unknown(err, m[i].e->name);
                return -1;
            }
        }
        if (!s->resource_type) {
            char name[64];
            snprintf(name, sizeof name, "TagSpecification.%u.ResourceType", m[start].idx);
            set_missing(err, name);
            return -1;
        }
        char base[64];
        snprintf(base, sizeof base, "TagSpecification.%u.Tag", m[start].idx);
        if (tags_of(arena, m + start, end - start, "Tag", base, &s->tags, &s->n_tags, err) < 0) {
            return -1;
        }
        start = end;
    }
    *out = specs;
    *n = ns;
    return 0;
}

/* ---- common parameters ------------------------------------------------------------------ */

#define ACTION_MAX 64

int ec2_params_get_common(const struct ec2_params *p, struct ec2_params_common *out,
                          struct nb_error *err)
{
    const char *action = ec2_params_get(p, "Action");
    if (!action) {
        set_missing(err, "Action");
        nb_error_reason(err, "MissingAction");
        return -1;
    }
    size_t len = strlen(action);
    bool ok = len > 0 && len <= ACTION_MAX;
    for (const char *s = action; *s && ok; s++) {
        ok = (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9');
    }
    if (!ok) {
        char q[QUOTE_BUF];
        nb_error_set(err, NB_ERR_INVALID, "invalid action \"%s\"", quote(q, action, len));
        nb_error_reason(err, "InvalidAction");
        return -1;
    }
    out->action = action;
    out->version = ec2_params_get(p, "Version");
    out->dry_run = false;
    if (ec2_params_get_bool(p, "DryRun", false, &out->dry_run, err) < 0) {
        return -1;
    }
    out->client_token = ec2_params_get(p, "ClientToken");
    if (out->client_token) {
        const char *t = out->client_token;
        ok = strlen(t) <= EC2_CLIENT_TOKEN_MAX;
        for (; *t && ok; t++) {
            ok = *t >= 0x20 && *t < 0x7f;
        }
        if (!ok) {
            char why[80];
            snprintf(why, sizeof why, "must be at most %d printable ASCII characters",
                     EC2_CLIENT_TOKEN_MAX);
            set_bad_value(err, "ClientToken", out->client_token, why);
            return -1;
        }
    }
    return 0;
}

int ec2_params_get_page(const struct ec2_params *p, long long min, long long max, long long dflt,
                        long long *max_results, const char **next_token, struct nb_error *err)
{
    *max_results = dflt;
    if (ec2_params_get_int(p, "MaxResults", false, min, max, max_results, err) < 0) {
        return -1;
    }
    *next_token = ec2_params_get(p, "NextToken");
    return 0;
}

/* ---- the request log -------------------------------------------------------------------- */

static bool ends_with_ci(const char *s, size_t len, const char *suffix)
{
    size_t sl = strlen(suffix);
    return len >= sl && strcasecmp(s + len - sl, suffix) == 0;
}

bool ec2_params_redacted(const char *name, const char *const *redact)
{
    size_t len = strlen(name);
    for (; redact && *redact; redact++) {
        size_t rl = strlen(*redact);
        if (ends_with_ci(name, len, *redact) && (len == rl || name[len - rl - 1] == '.')) {
            return true;
        }
    }
    return ends_with_ci(name, len, "Password") || ends_with_ci(name, len, "Secret") ||
           strcasestr(name, "SecretAccessKey") != NULL;
}

json_t *ec2_params_to_json(const struct ec2_params *p, const char *const *redact)
{
    json_t *obj = json_object();
    if (!obj) {
        return NULL;
    }
    for (size_t i = 0; i < p->n; i++) {
        const struct ec2_params_entry *e = &p->entries[i];
        const char *v = ec2_params_redacted(e->name, redact) ? "(redacted)" : e->value;
        /* Parsing checked that names and values are UTF-8, so the unchecked calls are safe. */
        json_object_set_new_nocheck(obj, e->name, json_string_nocheck(v));
    }
    return obj;
}
