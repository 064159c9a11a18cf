/* OVA archives (see imgfmt.h): a tar archive (POSIX ustar, with GNU and pax extensions for long
 * names and large sizes) holding an OVF descriptor first, optionally a manifest (.mf) of digests
 * and a certificate (.cert), then the disk files. The scanner refuses anything a tar extractor
 * could turn into a path outside its directory or into something other than a regular file. */
#include "imgfmt.h"

#include "nubo/error.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#define TAR_BLOCK     512
#define TAR_EXT_MAX   (64 * 1024) /* the largest pax or GNU long-name header data read */
#define MF_MAX_LEN    (1u << 20)
#define DIGEST_BUFFER (1u << 20)

bool img_name_plain(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 255 || !strcmp(name, ".") || !strcmp(name, "..")) {
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '/' || *p == '\\' || *p == ':') {
            return false;
        }
    }
    return true;
}

/* Copies at most 'len' bytes of 'src' (which may hold anything) into 'out' for an error
 * message: printable ASCII kept, the rest as '?', at most 'size' - 1 characters. */
static void printable(char *out, size_t size, const char *src, size_t len)
{
    size_t i = 0;
    for (; i < len && i + 1 < size && src[i]; i++) {
        unsigned char c = (unsigned char)src[i];
        out[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    out[i] = '\0';
}

/* ---- tar --------------------------------------------------------------------------------- */

static bool all_zero(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

/* Parses the octal numeric field 'f' of 'len' bytes (leading spaces, digits, then NULs or
 * spaces), or GNU's base-256 form (first byte 0x80, big-endian after it). Returns 0 or -1. */
static int tar_number(const unsigned char *f, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (f[0] == 0x80) {
        for (size_t i = 1; i < len; i++) {
            if (v >> 55) {
                return -1;
            }
            v = v << 8 | f[i];
        }
        *out = v;
        return 0;
    }
    size_t i = 0;
    while (i < len && f[i] == ' ') {
        i++;
    }
    size_t digits = 0;
    for (; i < len && f[i] >= '0' && f[i] <= '7'; i++, digits++) {
        v = v << 3 | (uint64_t)(f[i] - '0');
    }
    for (; i < len; i++) {
        if (f[i] != '\0' && f[i] != ' ') {
            return -1;
        }
    }
    *out = v;
    return digits ? 0 : -1;
}

/* The checksum of header 'h' as POSIX defines it (bytes summed unsigned, the checksum field
 * counted as spaces); 'sig' sums them signed, as some old tars did. */
static uint64_t tar_checksum(const unsigned char *h, bool sig)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < TAR_BLOCK; i++) {
        int c = i >= 148 && i < 156 ? ' ' : (sig ? (int)(signed char)h[i] : h[i]);
        sum += (uint64_t)(int64_t)c;
    }
    return sum;
}

/* What pax ('x') and GNU long-name ('L') headers say about the entry that follows them. */
struct tar_pending {
    char name[256];
    bool has_name;
    uint64_t size;
    bool has_size;
};

/* Parses the pax records of 'data' ('len' bytes: "LEN key=value\n" each) into 'p'. */
static int pax_parse(const char *data, size_t len, uint64_t hdr_off, struct tar_pending *p,
                     struct nb_error *err)
{
    size_t pos = 0;
    while (pos < len) {
        size_t rec = 0, i = pos;
        while (i < len && data[i] >= '0' && data[i] <= '9' && rec <= len) {
            rec = rec * 10 + (size_t)(data[i] - '0');
            i++;
        }
        if (i == pos || i >= len || data[i] != ' ' || rec > len - pos || rec <= i - pos + 1 ||
            data[pos + rec - 1] != '\n') {
            nb_error_set(err, NB_ERR_INVALID,
                         "tar pax header at offset %" PRIu64 ": malformed record at byte %zu",
                         hdr_off, pos);
            return -1;
        }
        const char *key = data + i + 1;
        const char *end = data + pos + rec - 1; /* the '\n' */
        const char *eq = memchr(key, '=', (size_t)(end - key));
        if (!eq) {
            nb_error_set(err, NB_ERR_INVALID,
                         "tar pax header at offset %" PRIu64 ": record without \"=\"", hdr_off);
            return -1;
        }
        size_t klen = (size_t)(eq - key), vlen = (size_t)(end - eq - 1);
        const char *val = eq + 1;
        if (klen == 4 && !memcmp(key, "path", 4)) {
            if (vlen >= sizeof p->name || memchr(val, '\0', vlen)) {
                nb_error_set(err, NB_ERR_INVALID,
                             "tar pax header at offset %" PRIu64 ": path too long or not text",
                             hdr_off);
                return -1;
            }
            memcpy(p->name, val, vlen);
            p->name[vlen] = '\0';
            p->has_name = true;
        } else if (klen == 4 && !memcmp(key, "size", 4)) {
            uint64_t v = 0;
            size_t j = 0;
            for (; j < vlen && val[j] >= '0' && val[j] <= '9' && v < UINT64_MAX / 10 - 10; j++) {
                v = v * 10 + (uint64_t)(val[j] - '0');
            }
            if (j == 0 || j != vlen) {
                nb_error_set(err, NB_ERR_INVALID,
                             "tar pax header at offset %" PRIu64 ": bad size record", hdr_off);
                return -1;
            }
            p->size = v;
            p->has_size = true;
        }
        pos += rec;
    }
    return 0;
}

/* Reads the data of an extended header ('len' bytes at 'off'), NUL-terminated, into a new
 * buffer the caller frees. */
static char *read_ext(img_read_fn rd, void *ctx, uint64_t off, uint64_t len, uint64_t hdr_off,
                      struct nb_error *err)
{
    if (len > TAR_EXT_MAX) {
        nb_error_set(err, NB_ERR_INVALID,
                     "tar extended header at offset %" PRIu64 " too large: %" PRIu64 " bytes",
                     hdr_off, len);
        return NULL;
    }
    char *data = malloc((size_t)len + 1);
    if (!data) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    if (img_read_full(rd, ctx, data, (size_t)len, off, err) < 0) {
        free(data);
        return NULL;
    }
    data[len] = '\0';
    return data;
}

/* The name of the regular-file header 'h' (ustar prefix joined), into 'out' (256 bytes).
 * Returns 0, or -1 if it does not fit. */
static int header_name(const unsigned char *h, char out[256])
{
    char name[101], prefix[156];
    memcpy(name, h, 100);
    name[100] = '\0';
    prefix[0] = '\0';
    /* Only POSIX ustar has a prefix field; GNU keeps other data there. */
    if (!memcmp(h + 257, "ustar\0", 6)) {
        memcpy(prefix, h + 345, 155);
        prefix[155] = '\0';
    }
    int n = prefix[0] ? snprintf(out, 256, "%s/%s", prefix, name) : snprintf(out, 256, "%s", name);
    return n < 256 ? 0 : -1;
}

static const char *tar_type_name(unsigned char t)
{
    switch (t) {
    case '1':
        return "a hard link";
    case '2':
        return "a symbolic link";
    case '3':
        return "a character device";
    case '4':
        return "a block device";
    case '5':
        return "a directory";
    case '6':
        return "a fifo";
    case 'K':
        return "a long link name";
    default:
        return NULL;
    }
}

/* Records the regular file of header 'h' at 'off' ('fsize' bytes of data after 'data_off') in
 * 'out', with the name and size of 'p' when extended headers gave them. */
static int add_entry(const unsigned char *h, uint64_t hdr_off, uint64_t data_off, uint64_t fsize,
                     const struct tar_pending *p, struct img_ova *out, struct nb_error *err)
{
    char name[256], shown[80];
    if (p->has_name) {
        memcpy(name, p->name, sizeof name);
    } else if (header_name(h, name) < 0) {
        nb_error_set(err, NB_ERR_INVALID, "tar entry at offset %" PRIu64 ": name too long",
                     hdr_off);
        return -1;
    }
    const char *plain = name;
    if (!strncmp(plain, "./", 2)) {
        plain += 2;
    }
    printable(shown, sizeof shown, name, sizeof name);
    if (!img_name_plain(plain)) {
        nb_error_set(err, NB_ERR_INVALID,
                     "tar entry \"%s\" at offset %" PRIu64 " refused: not a plain file name", shown,
                     hdr_off);
        return -1;
    }
    for (size_t i = 0; i < out->n; i++) {
        if (!strcmp(out->entries[i].name, plain)) {
            nb_error_set(err, NB_ERR_INVALID, "tar entry \"%s\" appears twice", shown);
            return -1;
        }
    }
    if (out->n == IMG_OVA_MAX_ENTRIES) {
        nb_error_set(err, NB_ERR_INVALID, "tar archive has more than %d files",
                     IMG_OVA_MAX_ENTRIES);
        return -1;
    }
    struct img_ova_entry *e = &out->entries[out->n++];
    snprintf(e->name, sizeof e->name, "%s", plain);
    e->offset = data_off;
    e->size = fsize;
    return 0;
}

int img_ova_scan(img_read_fn rd, void *ctx, uint64_t size, struct img_ova *out,
                 struct nb_error *err)
{
    memset(out, 0, sizeof *out);
    struct tar_pending p;
    memset(&p, 0, sizeof p);
    bool pending = false;
    uint64_t off = 0;
    unsigned char h[TAR_BLOCK];
    while (off < size) {
        if (size - off < TAR_BLOCK) {
            nb_error_set(err, NB_ERR_INVALID,
                         "tar truncated: partial header of %" PRIu64 " bytes at offset %" PRIu64,
                         size - off, off);
            return -1;
        }
        if (img_read_full(rd, ctx, h, sizeof h, off, err) < 0) {
            return -1;
        }
        if (all_zero(h, sizeof h)) {
            /* The end; a second zero block (or the end of the data) must follow, not a header
             * that a tar reader ignoring zero blocks would extract. */
            if (size - off >= 2 * TAR_BLOCK) {
                if (img_read_full(rd, ctx, h, sizeof h, off + TAR_BLOCK, err) < 0) {
                    return -1;
                }
                if (!all_zero(h, sizeof h)) {
                    nb_error_set(err, NB_ERR_INVALID,
                                 "tar has data after the end-of-archive block at offset %" PRIu64,
                                 off);
                    return -1;
                }
            }
            break;
        }
        uint64_t stored, hsize;
        if (tar_number(h + 148, 8, &stored) < 0) {
            nb_error_set(err, NB_ERR_INVALID,
                         "tar header at offset %" PRIu64 " has no valid checksum field", off);
            return -1;
        }
        if (stored != tar_checksum(h, false) && stored != tar_checksum(h, true)) {
            nb_error_set(err, NB_ERR_INVALID,
                         "tar header checksum mismatch at offset %" PRIu64 ": stored 0%" PRIo64
                         ", computed 0%" PRIo64,
                         off, stored, tar_checksum(h, false));
            return -1;
        }
        if (tar_number(h + 124, 12, &hsize) < 0) {
            nb_error_set(err, NB_ERR_INVALID, "tar header at offset %" PRIu64 ": bad size field",
                         off);
            return -1;
        }
        unsigned char type = h[156];
        uint64_t data_off = off + TAR_BLOCK;
        uint64_t fsize = hsize;
        if ((type == '0' || type == '\0' || type == '7') && p.has_size) {
            fsize = p.size;
        }
        char shown[80];
        if (p.has_name) {
            printable(shown, sizeof shown, p.name, sizeof p.name);
        } else {
            printable(shown, sizeof shown, (const char *)h, 100);
        }
        if (fsize > size - data_off) {
            nb_error_set(err, NB_ERR_INVALID,
                         "tar entry \"%s\" truncated: %" PRIu64 " bytes at offset %" PRIu64
                         ", the archive ends at %" PRIu64,
                         shown, fsize, data_off, size);
            return -1;
        }
        uint64_t next = data_off + (fsize + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;

        if (type == 'x' || type == 'L') {
            char *data = read_ext(rd, ctx, data_off, fsize, off, err);
            if (!data) {
                return -1;
            }
            int rc = 0;
            if (type == 'x') {
                rc = pax_parse(data, (size_t)fsize, off, &p, err);
            } else if (strlen(data) >= sizeof p.name) {
                nb_error_set(err, NB_ERR_INVALID,
                             "tar long name at offset %" PRIu64 " too long (at most 255 bytes)",
                             off);
                rc = -1;
            } else {
                snprintf(p.name, sizeof p.name, "%s", data);
                p.has_name = true;
            }
            free(data);
            if (rc < 0) {
                return -1;
            }
            pending = true;
        } else if (type == 'g') {
            /* A pax global header: defaults for every entry (times, owners); nothing we use. */
        } else if (type == '0' || type == '\0' || type == '7') {
            if (add_entry(h, off, data_off, fsize, &p, out, err) < 0) {
                return -1;
            }
            memset(&p, 0, sizeof p);
            pending = false;
        } else {
            const char *what = tar_type_name(type);
            if (what) {
                nb_error_set(err, NB_ERR_INVALID,
                             "tar entry \"%s\" at offset %" PRIu64 " is %s: only regular files "
                             "are allowed",
                             shown, off, what);
            } else {
                nb_error_set(err, NB_ERR_INVALID,
                             "tar entry \"%s\" at offset %" PRIu64 " has unsupported type 0x%02x",
                             shown, off, type);
            }
            return -1;
        }
        off = next;
    }
    if (pending) {
        nb_error_set(err, NB_ERR_INVALID, "tar truncated: extended header without its file");
        return -1;
    }
    return 0;
}

static void put_octal(unsigned char *f, size_t len, uint64_t v)
{
    /* len-1 digits and a NUL, as GNU tar writes them. */
    for (size_t i = len - 1; i-- > 0;) {
        f[i] = (unsigned char)('0' + (v & 7));
        v >>= 3;
    }
    f[len - 1] = '\0';
}

int img_tar_header(unsigned char hdr[512], const char *name, uint64_t size, int64_t mtime,
                   struct nb_error *err)
{
    memset(hdr, 0, TAR_BLOCK);
    if (!img_name_plain(name) || strlen(name) > 99) {
        char shown[80];
        printable(shown, sizeof shown, name, strlen(name));
        nb_error_set(err, NB_ERR_INVALID,
                     "tar entry name \"%s\" refused: not a plain file name of at most 99 bytes",
                     shown);
        return -1;
    }
    if (mtime < 0 || mtime >= (INT64_C(1) << 33)) {
        nb_error_set(err, NB_ERR_INVALID, "tar mtime %" PRId64 " out of range", mtime);
        return -1;
    }
    memcpy(hdr, name, strlen(name));
    put_octal(hdr + 100, 8, 0644);
    put_octal(hdr + 108, 8, 0);
    put_octal(hdr + 116, 8, 0);
    if (size < (UINT64_C(1) << 33)) {
        put_octal(hdr + 124, 12, size);
    } else {
        hdr[124] = 0x80;
        for (int i = 11; i >= 1; i--, size >>= 8) {
            hdr[124 + i] = (unsigned char)(size & 0xff);
        }
    }
    put_octal(hdr + 136, 12, (uint64_t)mtime);
    hdr[156] = '0';
    memcpy(hdr + 257,
           "ustar\0"
           "00",
           8);
    memcpy(hdr + 265, "root", 4);
    memcpy(hdr + 297, "root", 4);
    put_octal(hdr + 329, 8, 0);
    put_octal(hdr + 337, 8, 0);
    uint64_t sum = tar_checksum(hdr, false);
    put_octal(hdr + 148, 7, sum);
    hdr[155] = ' ';
    return 0;
}

/* ---- manifest ---------------------------------------------------------------------------- */

/* Parses one manifest line 'line' ('len' bytes, no newline) into 'e'. */
static int mf_line(const char *line, size_t len, size_t lineno, struct img_mf_entry *e,
                   struct nb_error *err)
{
    memset(e, 0, sizeof *e);
    size_t i = 0;
    while (i < len && isalnum((unsigned char)line[i])) {
        i++;
    }
    size_t alen = i;
    while (i < len && line[i] == ' ') {
        i++;
    }
    if (alen == 0 || i == len || line[i] != '(') {
        nb_error_set(err, NB_ERR_INVALID,
                     "manifest line %zu malformed: expected \"SHA256(file)= digest\"", lineno);
        return -1;
    }
    size_t want;
    if (alen == 4 && !strncasecmp(line, "SHA1", 4)) {
        snprintf(e->algo, sizeof e->algo, "SHA1");
        want = 40;
    } else if (alen == 6 && !strncasecmp(line, "SHA256", 6)) {
        snprintf(e->algo, sizeof e->algo, "SHA256");
        want = 64;
    } else {
        char shown[16];
        printable(shown, sizeof shown, line, alen);
        nb_error_set(err, NB_ERR_INVALID,
                     "manifest line %zu: digest algorithm \"%s\" not supported (SHA1 or SHA256)",
                     lineno, shown);
        return -1;
    }
    size_t name_start = i + 1;
    size_t close = len;
    for (size_t j = len; j-- > name_start;) {
        if (line[j] == ')') {
            close = j;
            break;
        }
    }
    if (close == len) {
        nb_error_set(err, NB_ERR_INVALID, "manifest line %zu malformed: no \")\"", lineno);
        return -1;
    }
    size_t nlen = close - name_start;
    if (nlen >= sizeof e->name || memchr(line + name_start, '\0', nlen)) {
        nb_error_set(err, NB_ERR_INVALID, "manifest line %zu: file name too long", lineno);
        return -1;
    }
    memcpy(e->name, line + name_start, nlen);
    e->name[nlen] = '\0';
    if (!img_name_plain(e->name)) {
        char shown[80];
        printable(shown, sizeof shown, e->name, nlen);
        nb_error_set(err, NB_ERR_INVALID, "manifest line %zu: \"%s\" is not a plain file name",
                     lineno, shown);
        return -1;
    }
    i = close + 1;
    while (i < len && line[i] == ' ') {
        i++;
    }
    if (i == len || line[i] != '=') {
        nb_error_set(err, NB_ERR_INVALID, "manifest line %zu malformed: no \"=\" after \")\"",
                     lineno);
        return -1;
    }
    i++;
    while (i < len && line[i] == ' ') {
        i++;
    }
    size_t hex = i;
    while (i < len && isxdigit((unsigned char)line[i])) {
        i++;
    }
    size_t hlen = i - hex;
    while (i < len && (line[i] == ' ' || line[i] == '\t')) {
        i++;
    }
    if (i != len || hlen != want) {
        nb_error_set(err, NB_ERR_INVALID,
                     "manifest line %zu: %s digest of \"%s\" must be %zu hex digits", lineno,
                     e->algo, e->name, want);
        return -1;
    }
    for (size_t k = 0; k < hlen; k++) {
        e->hex[k] = (char)tolower((unsigned char)line[hex + k]);
    }
    e->hex[hlen] = '\0';
    return 0;
}

int img_mf_parse(const char *text, size_t len, struct img_mf_entry *out, size_t max, size_t *n,
                 struct nb_error *err)
{
    *n = 0;
    size_t pos = 0, lineno = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t llen = end - pos;
        lineno++;
        if (llen && text[pos + llen - 1] == '\r') {
            llen--;
        }
        size_t k = 0;
        while (k < llen && (text[pos + k] == ' ' || text[pos + k] == '\t')) {
            k++;
        }
        if (k < llen) {
            if (*n == max) {
                nb_error_set(err, NB_ERR_INVALID, "manifest has more than %zu entries", max);
                return -1;
            }
            struct img_mf_entry *e = &out[*n];
            if (mf_line(text + pos + k, llen - k, lineno, e, err) < 0) {
                return -1;
            }
            for (size_t j = 0; j < *n; j++) {
                if (!strcmp(out[j].name, e->name)) {
                    nb_error_set(err, NB_ERR_INVALID, "manifest line %zu: \"%s\" listed twice",
                                 lineno, e->name);
                    return -1;
                }
            }
            (*n)++;
        }
        pos = end + 1;
    }
    return 0;
}

/* ---- verification ------------------------------------------------------------------------ */

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcasecmp(s + n - m, suffix);
}

static int find_entry(const struct img_ova *ova, const char *name)
{
    for (size_t i = 0; i < ova->n; i++) {
        if (!strcmp(ova->entries[i].name, name)) {
            return (int)i;
        }
    }
    return -1;
}

/* Reads the whole entry 'e' (at most 'max' bytes) into a new NUL-terminated buffer. */
static char *read_entry(img_read_fn rd, void *ctx, const struct img_ova_entry *e, uint64_t max,
                        const char *what, struct nb_error *err)
{
    if (e->size > max) {
        nb_error_set(err, NB_ERR_INVALID,
                     "%s \"%s\" too large: %" PRIu64 " bytes (at most %" PRIu64 ")", what, e->name,
                     e->size, max);
        return NULL;
    }
    char *buf = malloc((size_t)e->size + 1);
    if (!buf) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    if (img_read_full(rd, ctx, buf, (size_t)e->size, e->offset, err) < 0) {
        free(buf);
        return NULL;
    }
    buf[e->size] = '\0';
    return buf;
}

/* Streams entry 'e' through the digest 'algo' and compares with 'want_hex'. */
static int check_digest(img_read_fn rd, void *ctx, const struct img_ova_entry *e,
                        const struct img_mf_entry *m, unsigned char *buf, struct nb_error *err)
{
    const EVP_MD *md = !strcmp(m->algo, "SHA1") ? EVP_sha1() : EVP_sha256();
    EVP_MD_CTX *mdctx = EVP_MD_CTX_new();
    if (!mdctx || !EVP_DigestInit_ex(mdctx, md, NULL)) {
        EVP_MD_CTX_free(mdctx);
        nb_error_set(err, NB_ERR_INTERNAL, "openssl digest initialisation failed");
        return -1;
    }
    int rc = 0;
    for (uint64_t done = 0; done < e->size;) {
        size_t n = e->size - done < DIGEST_BUFFER ? (size_t)(e->size - done) : DIGEST_BUFFER;
        if (img_read_full(rd, ctx, buf, n, e->offset + done, err) < 0) {
            rc = -1;
            break;
        }
        if (!EVP_DigestUpdate(mdctx, buf, n)) {
            nb_error_set(err, NB_ERR_INTERNAL, "openssl digest update failed");
            rc = -1;
            break;
        }
        done += n;
    }
    unsigned char dig[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    if (rc == 0 && !EVP_DigestFinal_ex(mdctx, dig, &dlen)) {
        nb_error_set(err, NB_ERR_INTERNAL, "openssl digest final failed");
        rc = -1;
    }
    EVP_MD_CTX_free(mdctx);
    if (rc < 0) {
        return -1;
    }
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    for (unsigned int i = 0; i < dlen; i++) {
        snprintf(hex + 2 * i, 3, "%02x", dig[i]);
    }
    if (strcmp(hex, m->hex)) {
        nb_error_set(err, NB_ERR_INVALID,
                     "digest mismatch for \"%s\": the manifest says %s %s, computed %s", e->name,
                     m->algo, m->hex, hex);
        return -1;
    }
    return 0;
}

/* Checks the manifest 'mf' (entry index 'mfi') against the archive. */
static int verify_manifest(img_read_fn rd, void *ctx, const struct img_ova *ova, int mfi,
                           struct nb_error *err)
{
    const struct img_ova_entry *mfe = &ova->entries[mfi];
    char *text = read_entry(rd, ctx, mfe, MF_MAX_LEN, "manifest", err);
    if (!text) {
        return -1;
    }
    struct img_mf_entry *m = calloc(IMG_OVA_MAX_ENTRIES, sizeof *m);
    unsigned char *buf = malloc(DIGEST_BUFFER);
    size_t n = 0;
    int rc = -1;
    if (!m || !buf) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        goto cleanup;
    }
    if (img_mf_parse(text, (size_t)mfe->size, m, IMG_OVA_MAX_ENTRIES, &n, err) < 0) {
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        int k = find_entry(ova, m[i].name);
        if (k < 0) {
            nb_error_set(err, NB_ERR_INVALID,
                         "manifest \"%s\" names \"%s\", which is not in the archive", mfe->name,
                         m[i].name);
            goto cleanup;
        }
        if (k == mfi) {
            nb_error_set(err, NB_ERR_INVALID, "manifest \"%s\" lists itself", mfe->name);
            goto cleanup;
        }
        if (check_digest(rd, ctx, &ova->entries[k], &m[i], buf, err) < 0) {
            goto cleanup;
        }
    }
    for (size_t k = 0; k < ova->n; k++) {
        const char *name = ova->entries[k].name;
        if ((int)k == mfi || has_suffix(name, ".cert")) {
            continue;
        }
        size_t i = 0;
        while (i < n && strcmp(m[i].name, name)) {
            i++;
        }
        if (i == n) {
            nb_error_set(err, NB_ERR_INVALID, "file \"%s\" is not covered by the manifest \"%s\"",
                         name, mfe->name);
            goto cleanup;
        }
    }
    rc = 0;
cleanup:
    free(buf);
    free(m);
    free(text);
    return rc;
}

int img_ova_verify(img_read_fn rd, void *ctx, uint64_t size, struct img_ova_info *out,
                   struct nb_error *err)
{
    memset(out, 0, sizeof *out);
    out->mf_entry = -1;
    for (size_t i = 0; i < IMG_OVF_MAX_ITEMS; i++) {
        out->disk_entry[i] = -1;
    }
    struct img_ova *ova = &out->ova;
    if (img_ova_scan(rd, ctx, size, ova, err) < 0) {
        return -1;
    }
    if (ova->n == 0) {
        nb_error_set(err, NB_ERR_INVALID, "ova archive holds no file");
        return -1;
    }
    const struct img_ova_entry *desc = &ova->entries[0];
    if (!has_suffix(desc->name, ".ovf")) {
        nb_error_set(err, NB_ERR_INVALID,
                     "the first file of an ova must be the .ovf descriptor, found \"%s\"",
                     desc->name);
        return -1;
    }
    char *xml = read_entry(rd, ctx, desc, IMG_OVF_MAX_LEN, "descriptor", err);
    if (!xml) {
        return -1;
    }
    int rc = img_ovf_parse(xml, (size_t)desc->size, &out->ovf, err);
    free(xml);
    if (rc < 0) {
        return -1;
    }
    const struct img_ovf *ovf = &out->ovf;
    for (size_t i = 0; i < ovf->n_files; i++) {
        const struct img_ovf_file *f = &ovf->files[i];
        int k = find_entry(ova, f->href);
        if (k < 0) {
            nb_error_set(err, NB_ERR_INVALID,
                         "file \"%s\" named by the descriptor is not in the archive", f->href);
            return -1;
        }
        if (k == 0) {
            nb_error_set(err, NB_ERR_INVALID, "file \"%s\" of the descriptor is the descriptor",
                         f->href);
            return -1;
        }
        if (f->size && f->size != ova->entries[k].size) {
            nb_error_set(err, NB_ERR_INVALID,
                         "file \"%s\" is %" PRIu64 " bytes in the archive, the descriptor says "
                         "%" PRIu64,
                         f->href, ova->entries[k].size, f->size);
            return -1;
        }
    }
    for (size_t d = 0; d < ovf->n_disks; d++) {
        for (size_t i = 0; i < ovf->n_files; i++) {
            if (!strcmp(ovf->files[i].id, ovf->disks[d].file_ref)) {
                out->disk_entry[d] = find_entry(ova, ovf->files[i].href);
            }
        }
    }
    for (size_t k = 1; k < ova->n; k++) {
        if (!has_suffix(ova->entries[k].name, ".mf")) {
            continue;
        }
        if (out->mf_entry >= 0) {
            nb_error_set(err, NB_ERR_INVALID,
                         "more than one manifest in the archive (\"%s\", \"%s\")",
                         ova->entries[out->mf_entry].name, ova->entries[k].name);
            return -1;
        }
        out->mf_entry = (int)k;
    }
    if (out->mf_entry >= 0) {
        if (verify_manifest(rd, ctx, ova, out->mf_entry, err) < 0) {
            return -1;
        }
        out->had_manifest = true;
    }
    return 0;
}
