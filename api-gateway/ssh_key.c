/* SSH keys for key pairs (see ssh_key.h).
 *
 * Wire formats: RFC 4251 section 5 (uint32, string, mpint), RFC 4253 section 6.6 ("ssh-rsa"
 * blob: string type, mpint e, mpint n), RFC 8709 ("ssh-ed25519" blob: string type, string key),
 * and OpenSSH's PROTOCOL.key for the "openssh-key-v1" private key container. */
#include "ssh_key.h"

#include "nubo/crypto.h"
#include "nubo/error.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TYPE_ED25519 "ssh-ed25519"
#define TYPE_RSA     "ssh-rsa"
#define ED25519_LEN  32
#define BLOB_MAX     4096 /* an RSA blob of SSH_KEY_RSA_MAX_BITS needs about 2,100 bytes */
#define MAX_COMMENT  4096
#define PEM_COLUMNS  70 /* OpenSSH wraps its private keys at 70 characters */
#define FORMAT_MSG   "Key is not in valid OpenSSH public key format"

/* --- wire format --------------------------------------------------------------------------- */

/* A writer into a fixed buffer; 'overflow' is set, and nothing more written, when it is full. */
struct wr {
    unsigned char *p;
    size_t len;
    size_t cap;
    bool overflow;
};

static void wr_bytes(struct wr *w, const void *data, size_t n)
{
    if (w->overflow || n > w->cap - w->len) {
        w->overflow = true;
        return;
    }
    if (n) {
        memcpy(w->p + w->len, data, n);
    }
    w->len += n;
}

static void wr_u32(struct wr *w, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    wr_bytes(w, b, sizeof b);
}

static void wr_string(struct wr *w, const void *data, size_t n)
{
    if (n > UINT32_MAX) {
        w->overflow = true;
        return;
    }
    wr_u32(w, (uint32_t)n);
    wr_bytes(w, data, n);
}

/* Writes 'bn' (not negative) as an mpint: big-endian, a zero byte first when the top bit of the
 * first byte is set, so that the value reads as positive. */
static void wr_mpint(struct wr *w, const BIGNUM *bn)
{
    size_t n = (size_t)BN_num_bytes(bn);
    size_t pad = BN_num_bits(bn) % 8 == 0 && n > 0 ? 1 : 0;
    wr_u32(w, (uint32_t)(n + pad));
    if (pad) {
        wr_bytes(w, "", 1);
    }
    if (w->overflow || n > w->cap - w->len) {
        w->overflow = true;
        return;
    }
    BN_bn2bin(bn, w->p + w->len);
    w->len += n;
}

/* A reader of a blob; every read checks the bytes are there. */
struct rd {
    const unsigned char *p;
    size_t left;
};

/* Reads an RFC 4251 string into '*s' and '*n' (pointing into the blob). Returns false if the
 * blob is too short. */
static bool rd_string(struct rd *r, const unsigned char **s, size_t *n)
{
    if (r->left < 4) {
        return false;
    }
    size_t len = (size_t)r->p[0] << 24 | (size_t)r->p[1] << 16 | (size_t)r->p[2] << 8 | r->p[3];
    if (len > r->left - 4) {
        return false;
    }
    *s = r->p + 4;
    *n = len;
    r->p += 4 + len;
    r->left -= 4 + len;
    return true;
}

/* --- helpers ------------------------------------------------------------------------------- */

/* Wipes 'n' bytes at 'p' (malloc()ed, or NULL) and frees them. */
static void clear_free(void *p, size_t n)
{
    if (p) {
        OPENSSL_cleanse(p, n);
        free(p);
    }
}

/* Sets 'err' to an internal error naming the failed step 'what' and OpenSSL's reason. */
static void ssl_error(struct nb_error *err, const char *what)
{
    unsigned long code = ERR_get_error();
    char reason[256] = "no reason given";
    if (code) {
        ERR_error_string_n(code, reason, sizeof reason);
    }
    ERR_clear_error();
    nb_error_set(err, NB_ERR_INTERNAL, "could not %s: %s", what, reason);
}

/* Sets 'err' to a rejection of imported key material. */
static void format_error(struct nb_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void format_error(struct nb_error *err, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    nb_error_set(err, NB_ERR_INVALID, FORMAT_MSG ": %s", why);
    nb_error_reason(err, "InvalidKey.Format");
}

/* Returns 'n' bytes of 'data' as lower-case hex pairs joined by ':' in a malloc()ed string. */
static char *colon_hex(const unsigned char *data, size_t n)
{
    char *out = malloc(n ? 3 * n : 1);
    if (!out) {
        return NULL;
    }
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        static const char digits[] = "0123456789abcdef";
        out[3 * i] = digits[data[i] >> 4];
        out[3 * i + 1] = digits[data[i] & 15];
        out[3 * i + 2] = i + 1 < n ? ':' : '\0';
    }
    return out;
}

/* Returns the digest 'md' of 'n' bytes of 'data' as colon-separated hex (malloc()ed), or NULL
 * with 'err'. */
static char *digest_colon_hex(const EVP_MD *md, const void *data, size_t n, struct nb_error *err)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int d_len = 0;
    if (!EVP_Digest(data, n, d, &d_len, md, NULL)) {
        ssl_error(err, "compute a key fingerprint");
        return NULL;
    }
    char *out = colon_hex(d, d_len);
    if (!out) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory computing a key fingerprint");
    }
    return out;
}

/* OpenSSH's SHA256 fingerprint of 'blob', without the "SHA256:" prefix: base64 of the digest with
 * the '=' padding removed. Returns a malloc()ed string, or NULL with 'err'. */
static char *sha256_fingerprint(const unsigned char *blob, size_t n, struct nb_error *err)
{
    uint8_t d[NB_SHA256_LEN];
    nb_sha256(blob, n, d);
    char *out = nb_base64_encode(d, sizeof d);
    if (!out) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory computing a key fingerprint");
        return NULL;
    }
    size_t len = strlen(out);
    while (len > 0 && out[len - 1] == '=') {
        out[--len] = '\0';
    }
    return out;
}

/* Returns "<type> <base64 of blob>" (malloc()ed), then " <comment>" if 'comment' is not NULL, or
 * NULL with 'err'. */
static char *make_line(const char *type, const unsigned char *blob, size_t n, const char *comment,
                       struct nb_error *err)
{
    char *b64 = nb_base64_encode(blob, n);
    char *line = NULL;
    if (b64) {
        size_t size = strlen(type) + strlen(b64) + (comment ? strlen(comment) + 1 : 0) + 2;
        line = malloc(size);
        if (line) {
            snprintf(line, size, "%s %s%s%s", type, b64, comment ? " " : "",
                     comment ? comment : "");
        }
    }
    free(b64);
    if (!line) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory encoding a public key");
    }
    return line;
}

/* Returns the MD5 of the DER SubjectPublicKeyInfo of 'pkey' as colon-separated hex (malloc()ed),
 * or NULL with 'err'. */
static char *spki_md5_fingerprint(const EVP_PKEY *pkey, struct nb_error *err)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(pkey, &der);
    if (n <= 0) {
        ssl_error(err, "encode a public key as DER");
        return NULL;
    }
    char *out = digest_colon_hex(EVP_md5(), der, (size_t)n, err);
    OPENSSL_free(der);
    return out;
}

/* Encodes 'pkey' with OpenSSL's encoder to 'type' ("PEM", "DER") and 'structure'. Returns the
 * bytes (OPENSSL_malloc()ed; the caller OPENSSL_clear_free()s them) with their length in '*n', or
 * NULL with 'err'. */
static unsigned char *encode_private(const EVP_PKEY *pkey, const char *type, const char *structure,
                                     size_t *n, struct nb_error *err)
{
    OSSL_ENCODER_CTX *ctx =
        OSSL_ENCODER_CTX_new_for_pkey(pkey, OSSL_KEYMGMT_SELECT_KEYPAIR, type, structure, NULL);
    unsigned char *data = NULL;
    if (!ctx || OSSL_ENCODER_CTX_get_num_encoders(ctx) == 0 ||
        !OSSL_ENCODER_to_data(ctx, &data, n)) {
        ssl_error(err, "encode a private key");
        data = NULL;
    }
    OSSL_ENCODER_CTX_free(ctx);
    return data;
}

/* --- public keys --------------------------------------------------------------------------- */

const char *ssh_key_type_name(enum ssh_key_type type)
{
    return type == SSH_KEY_ED25519 ? "ed25519" : "rsa";
}

int ssh_key_type_parse(const char *name, enum ssh_key_type *type)
{
    if (!strcmp(name, "ed25519")) {
        *type = SSH_KEY_ED25519;
        return 0;
    }
    if (!strcmp(name, "rsa")) {
        *type = SSH_KEY_RSA;
        return 0;
    }
    return -1;
}

/* Writes the SSH wire form of 'pkey' into 'buf' (BLOB_MAX bytes) and its length in '*n'. Returns
 * the type name ("ssh-rsa", ...), or NULL with 'err'. */
static const char *public_blob(const EVP_PKEY *pkey, unsigned char *buf, size_t *n,
                               struct nb_error *err)
{
    struct wr w = {buf, 0, BLOB_MAX, false};
    const char *type;
    if (EVP_PKEY_is_a(pkey, "ED25519")) {
        unsigned char pub[ED25519_LEN];
        size_t pub_len = sizeof pub;
        if (!EVP_PKEY_get_raw_public_key(pkey, pub, &pub_len) || pub_len != ED25519_LEN) {
            ssl_error(err, "read an ED25519 public key");
            return NULL;
        }
        type = TYPE_ED25519;
        wr_string(&w, type, strlen(type));
        wr_string(&w, pub, pub_len);
    } else if (EVP_PKEY_is_a(pkey, "RSA")) {
        BIGNUM *e = NULL, *mod = NULL;
        if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) ||
            !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &mod)) {
            BN_free(e);
            ssl_error(err, "read an RSA public key");
            return NULL;
        }
        type = TYPE_RSA;
        wr_string(&w, type, strlen(type));
        wr_mpint(&w, e);
        wr_mpint(&w, mod);
        BN_free(e);
        BN_free(mod);
    } else {
        nb_error_set(err, NB_ERR_INVALID, "cannot encode a %s key for SSH: only ED25519 and RSA",
                     EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "unknown");
        return NULL;
    }
    if (w.overflow) {
        nb_error_set(err, NB_ERR_INVALID, "cannot encode a public key of more than %d bytes",
                     BLOB_MAX);
        return NULL;
    }
    *n = w.len;
    return type;
}

char *ssh_key_public_line(const EVP_PKEY *pkey, const char *comment, struct nb_error *err)
{
    unsigned char blob[BLOB_MAX];
    size_t n;
    const char *type = public_blob(pkey, blob, &n, err);
    return type ? make_line(type, blob, n, comment, err) : NULL;
}

/* Parses the "ssh-rsa" key fields (after the type) in 'r' into '*out': bits, fingerprint.
 * Returns 0, or -1 with 'err'. */
static int parse_rsa(struct rd *r, struct ssh_key_pub *out, struct nb_error *err)
{
    const unsigned char *e, *mod;
    size_t e_len, mod_len;
    if (!rd_string(r, &e, &e_len) || !rd_string(r, &mod, &mod_len)) {
        format_error(err, "the ssh-rsa key is truncated");
        return -1;
    }
    if (r->left) {
        format_error(err, "%zu unexpected bytes after the ssh-rsa key", r->left);
        return -1;
    }
    /* Both are positive mpints with no superfluous leading zero, as OpenSSH requires; then the
     * blob has one encoding per key and re-encoding it gives back the same bytes. */
    const unsigned char *ints[2] = {e, mod};
    size_t lens[2] = {e_len, mod_len};
    static const char *const names[2] = {"exponent", "modulus"};
    for (int k = 0; k < 2; k++) {
        if (lens[k] == 0) {
            format_error(err, "the RSA %s is zero", names[k]);
            return -1;
        }
        if (ints[k][0] & 0x80) {
            format_error(err, "the RSA %s is negative", names[k]);
            return -1;
        }
        if (ints[k][0] == 0 && (lens[k] == 1 || !(ints[k][1] & 0x80))) {
            format_error(err, "the RSA %s has a superfluous leading zero", names[k]);
            return -1;
        }
    }
    if (e[0] == 0) {
        e++, e_len--;
    }
    if (mod[0] == 0) {
        mod++, mod_len--;
    }
    if (e_len > 8 || !(e[e_len - 1] & 1) || (e_len == 1 && e[0] < 3)) {
        format_error(err, "the RSA public exponent must be odd, at least 3 and at most 64 bits");
        return -1;
    }
    if (mod_len > SSH_KEY_RSA_MAX_BITS / 8 || !(mod[mod_len - 1] & 1)) {
        format_error(err, "the RSA modulus must be odd and have at most %d bits",
                     SSH_KEY_RSA_MAX_BITS);
        return -1;
    }

    int rc = -1;
    BIGNUM *bn_e = BN_bin2bn(e, (int)e_len, NULL);
    BIGNUM *bn_n = BN_bin2bn(mod, (int)mod_len, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    if (!bn_e || !bn_n || !bld) {
        ssl_error(err, "read an RSA public key");
        goto cleanup;
    }
    out->bits = BN_num_bits(bn_n);
    if (out->bits < SSH_KEY_RSA_MIN_BITS) {
        format_error(err, "the RSA key has %d bits; at least %d are required", out->bits,
                     SSH_KEY_RSA_MIN_BITS);
        goto cleanup;
    }
    if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) ||
        !(params = OSSL_PARAM_BLD_to_param(bld)) ||
        !(ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) ||
        EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        ssl_error(err, "make an RSA public key");
        goto cleanup;
    }
    out->fingerprint = spki_md5_fingerprint(pkey, err);
    rc = out->fingerprint ? 0 : -1;

cleanup:
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_e);
    BN_free(bn_n);
    return rc;
}

/* Parses the blob 'out->blob', whose line named it 'type' ('type_len' bytes), filling the rest of
 * '*out'. Returns 0, or -1 with 'err'. */
static int parse_blob(const char *type, size_t type_len, struct ssh_key_pub *out,
                      struct nb_error *err)
{
    struct rd r = {out->blob, out->blob_len};
    const unsigned char *inner;
    size_t inner_len;
    if (!rd_string(&r, &inner, &inner_len)) {
        format_error(err, "the key blob is truncated");
        return -1;
    }
    if (inner_len != type_len || memcmp(inner, type, type_len) != 0) {
        format_error(err, "the key type in the blob is not the one before it");
        return -1;
    }
    if (out->type == SSH_KEY_ED25519) {
        const unsigned char *pub;
        size_t pub_len;
        if (!rd_string(&r, &pub, &pub_len)) {
            format_error(err, "the ssh-ed25519 key is truncated");
            return -1;
        }
        if (pub_len != ED25519_LEN || r.left) {
            format_error(err, "an ssh-ed25519 key must have exactly %d bytes", ED25519_LEN);
            return -1;
        }
        out->bits = 256;
        out->fingerprint = sha256_fingerprint(out->blob, out->blob_len, err);
        return out->fingerprint ? 0 : -1;
    }
    return parse_rsa(&r, out, err);
}

/* Names the key type 'type' ('len' bytes, any bytes) in a rejection. */
static void unsupported_type(const char *type, size_t len, struct nb_error *err)
{
    static const struct {
        const char *prefix;
        const char *what;
    } known[] = {
        {"ssh-dss", "DSA keys"},
        {"ecdsa-", "ECDSA keys"},
        {"sk-", "security key (FIDO) keys"},
        {"x509v3-", "X.509 certificates"},
    };
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
        size_t n = strlen(known[k].prefix);
        if (len >= n && !memcmp(type, known[k].prefix, n)) {
            format_error(err, "%s are not supported; use ssh-ed25519 or ssh-rsa", known[k].what);
            return;
        }
    }
    static const char cert[] = "-cert-v01@openssh.com";
    if (len >= sizeof cert - 1 && !memcmp(type + len - (sizeof cert - 1), cert, sizeof cert - 1)) {
        format_error(err, "certificates are not supported; use ssh-ed25519 or ssh-rsa");
        return;
    }
    /* Echo the type only when it is short and printable: it may be any bytes. */
    bool printable = len <= 64;
    for (size_t i = 0; i < len && printable; i++) {
        printable = type[i] > 0x20 && type[i] < 0x7f && type[i] != '"';
    }
    if (printable) {
        format_error(err, "unsupported key type \"%.*s\"; use ssh-ed25519 or ssh-rsa", (int)len,
                     type);
    } else {
        format_error(err, "the line does not start with a key type (ssh-ed25519 or ssh-rsa)");
    }
}

static bool is_blank(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static bool is_space(unsigned char c)
{
    return is_blank(c) || c == '\r' || c == '\n';
}

int ssh_key_parse_public(const void *text, size_t len, struct ssh_key_pub *out,
                         struct nb_error *err)
{
    const unsigned char *p = text;
    memset(out, 0, sizeof *out);
    if (len > SSH_KEY_MAX_MATERIAL) {
        format_error(err, "the key material has %zu bytes, more than %d", len,
                     SSH_KEY_MAX_MATERIAL);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if ((p[i] < 0x20 && !is_space(p[i])) || p[i] == 0x7f) {
            format_error(err, "control character 0x%02x at offset %zu", p[i], i);
            return -1;
        }
    }

    /* "<type> <base64> [comment]", white space around; only white space after the line. */
    size_t i = 0;
    while (i < len && is_space(p[i])) {
        i++;
    }
    size_t type_at = i;
    while (i < len && !is_space(p[i])) {
        i++;
    }
    size_t type_len = i - type_at;
    const char *type = (const char *)p + type_at;
    if (type_len == 0) {
        format_error(err, "the key material is empty");
        return -1;
    }
    if (type_len == strlen(TYPE_ED25519) && !memcmp(type, TYPE_ED25519, type_len)) {
        out->type = SSH_KEY_ED25519;
    } else if (type_len == strlen(TYPE_RSA) && !memcmp(type, TYPE_RSA, type_len)) {
        out->type = SSH_KEY_RSA;
    } else {
        unsupported_type(type, type_len, err);
        return -1;
    }
    if (i == len || !is_blank(p[i])) {
        format_error(err, "no base64 key after the key type");
        return -1;
    }
    while (i < len && is_blank(p[i])) {
        i++;
    }
    size_t b64_at = i;
    while (i < len && !is_space(p[i])) {
        i++;
    }
    size_t b64_len = i - b64_at;
    if (b64_len == 0) {
        format_error(err, "no base64 key after the key type");
        return -1;
    }
    if (i < len && is_blank(p[i])) { /* the comment, which is dropped */
        while (i < len && p[i] != '\r' && p[i] != '\n') {
            i++;
        }
    }
    while (i < len && is_space(p[i])) {
        i++;
    }
    if (i < len) {
        format_error(err, "the material holds more than one line; import one key at a time");
        return -1;
    }

    char *b64 = malloc(b64_len + 1);
    if (!b64) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory parsing a public key");
        return -1;
    }
    memcpy(b64, p + b64_at, b64_len);
    b64[b64_len] = '\0';
    struct nb_error sub = {0};
    out->blob = nb_base64_decode(b64, &out->blob_len, &sub);
    free(b64);
    if (!out->blob) {
        format_error(err, "the key is not valid base64 (%s)", sub.msg);
        return -1;
    }
    if (parse_blob(type, type_len, out, err) < 0) {
        ssh_key_pub_clear(out);
        return -1;
    }
    out->line = make_line(out->type == SSH_KEY_RSA ? TYPE_RSA : TYPE_ED25519, out->blob,
                          out->blob_len, NULL, err);
    if (!out->line) {
        ssh_key_pub_clear(out);
        return -1;
    }
    return 0;
}

void ssh_key_pub_clear(struct ssh_key_pub *k)
{
    if (!k) {
        return;
    }
    free(k->blob);
    free(k->line);
    free(k->fingerprint);
    memset(k, 0, sizeof *k);
}

/* --- private keys -------------------------------------------------------------------------- */

/* Returns 'n' bytes of 'data' in base64 wrapped at PEM_COLUMNS between "-----BEGIN <label>-----"
 * and "-----END <label>-----" lines, as a malloc()ed string, or NULL with 'err'. */
static char *pem_wrap(const char *label, const unsigned char *data, size_t n, struct nb_error *err)
{
    char *b64 = nb_base64_encode(data, n);
    if (!b64) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory encoding a private key");
        return NULL;
    }
    size_t b64_len = strlen(b64);
    size_t size = 2 * (strlen(label) + 17) + b64_len + b64_len / PEM_COLUMNS + 2;
    char *out = malloc(size);
    if (!out) {
        clear_free(b64, b64_len);
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory encoding a private key");
        return NULL;
    }
    size_t o = (size_t)snprintf(out, size, "-----BEGIN %s-----\n", label);
    for (size_t i = 0; i < b64_len; i += PEM_COLUMNS) {
        size_t chunk = b64_len - i < PEM_COLUMNS ? b64_len - i : PEM_COLUMNS;
        memcpy(out + o, b64 + i, chunk);
        o += chunk;
        out[o++] = '\n';
    }
    snprintf(out + o, size - o, "-----END %s-----\n", label);
    clear_free(b64, b64_len);
    return out;
}

char *ssh_key_openssh_private(const EVP_PKEY *pkey, const char *comment, struct nb_error *err)
{
    if (!EVP_PKEY_is_a(pkey, "ED25519")) {
        nb_error_set(err, NB_ERR_INVALID, "only ED25519 keys are written in OpenSSH's format");
        return NULL;
    }
    comment = comment ? comment : "";
    size_t comment_len = strlen(comment);
    if (comment_len > MAX_COMMENT) {
        nb_error_set(err, NB_ERR_INVALID, "key comment of %zu bytes is too long (at most %d)",
                     comment_len, MAX_COMMENT);
        return NULL;
    }
    unsigned char blob[BLOB_MAX];
    size_t blob_len;
    if (!public_blob(pkey, blob, &blob_len, err)) {
        return NULL;
    }
    /* OpenSSH keeps the 32-byte seed followed by the public key as the "private key". */
    unsigned char priv[2 * ED25519_LEN];
    size_t seed_len = ED25519_LEN;
    size_t pub_len = ED25519_LEN;
    uint32_t check;
    if (!EVP_PKEY_get_raw_private_key(pkey, priv, &seed_len) || seed_len != ED25519_LEN ||
        !EVP_PKEY_get_raw_public_key(pkey, priv + ED25519_LEN, &pub_len) ||
        pub_len != ED25519_LEN || RAND_bytes((unsigned char *)&check, sizeof check) != 1) {
        OPENSSL_cleanse(priv, sizeof priv);
        ssl_error(err, "read an ED25519 private key");
        return NULL;
    }

    /* The private section: check ints (equal, random), the key, the comment, then padding
     * 1, 2, 3... to the cipher's block size, 8 for "none". */
    size_t cap = 2 * blob_len + comment_len + 256;
    unsigned char *buf = malloc(2 * cap);
    if (!buf) {
        OPENSSL_cleanse(priv, sizeof priv);
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory encoding a private key");
        return NULL;
    }
    struct wr section = {buf, 0, cap, false};
    wr_u32(&section, check);
    wr_u32(&section, check);
    wr_string(&section, TYPE_ED25519, strlen(TYPE_ED25519));
    wr_string(&section, priv + ED25519_LEN, ED25519_LEN);
    wr_string(&section, priv, sizeof priv);
    wr_string(&section, comment, comment_len);
    for (unsigned char pad = 1; section.len % 8 != 0; pad++) {
        wr_bytes(&section, &pad, 1);
    }
    OPENSSL_cleanse(priv, sizeof priv);

    /* The container: magic, cipher, KDF and its options, one public key, the section. */
    static const char magic[] = "openssh-key-v1"; /* written with its NUL */
    struct wr w = {buf + cap, 0, cap, false};
    wr_bytes(&w, magic, sizeof magic);
    wr_string(&w, "none", 4);
    wr_string(&w, "none", 4);
    wr_string(&w, "", 0);
    wr_u32(&w, 1);
    wr_string(&w, blob, blob_len);
    wr_string(&w, section.p, section.len);

    char *out = NULL;
    if (section.overflow || w.overflow) {
        nb_error_set(err, NB_ERR_INTERNAL, "OpenSSH private key overflowed its %zu-byte buffer",
                     cap);
    } else {
        out = pem_wrap("OPENSSH PRIVATE KEY", w.p, w.len, err);
    }
    clear_free(buf, 2 * cap);
    return out;
}

/* Fills 'out' with the texts of the new key 'pkey'. Returns 0, or -1 with 'err'. */
static int describe_new_key(EVP_PKEY *pkey, const char *comment, struct ssh_key_pair *out,
                            struct nb_error *err)
{
    out->public_line = ssh_key_public_line(pkey, NULL, err);
    if (!out->public_line) {
        return -1;
    }
    if (out->type == SSH_KEY_ED25519) {
        unsigned char blob[BLOB_MAX];
        size_t n;
        if (!public_blob(pkey, blob, &n, err) ||
            !(out->fingerprint = sha256_fingerprint(blob, n, err))) {
            return -1;
        }
        out->private_text = ssh_key_openssh_private(pkey, comment, err);
        return out->private_text ? 0 : -1;
    }

    /* RSA: EC2's fingerprint is the SHA-1 of the PKCS#8 DER; the key goes out as PKCS#1 PEM. */
    size_t n;
    unsigned char *der = encode_private(pkey, "DER", "PrivateKeyInfo", &n, err);
    if (!der) {
        return -1;
    }
    out->fingerprint = digest_colon_hex(EVP_sha1(), der, n, err);
    OPENSSL_clear_free(der, n);
    if (!out->fingerprint) {
        return -1;
    }
    unsigned char *pem = encode_private(pkey, "PEM", "type-specific", &n, err);
    if (!pem) {
        return -1;
    }
    out->private_text = malloc(n + 1);
    if (out->private_text) {
        memcpy(out->private_text, pem, n);
        out->private_text[n] = '\0';
    } else {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory encoding a private key");
    }
    OPENSSL_clear_free(pem, n);
    return out->private_text ? 0 : -1;
}

int ssh_key_generate(enum ssh_key_type type, const char *comment, struct ssh_key_pair *out,
                     struct nb_error *err)
{
    memset(out, 0, sizeof *out);
    out->type = type;
    EVP_PKEY *pkey = type == SSH_KEY_ED25519
                         ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
                         : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)SSH_KEY_RSA_BITS);
    if (!pkey) {
        ssl_error(err, "generate a key");
        return -1;
    }
    int rc = describe_new_key(pkey, comment, out, err);
    EVP_PKEY_free(pkey);
    if (rc < 0) {
        ssh_key_pair_clear(out);
    }
    return rc;
}

void ssh_key_pair_clear(struct ssh_key_pair *kp)
{
    if (!kp) {
        return;
    }
    if (kp->private_text) {
        clear_free(kp->private_text, strlen(kp->private_text));
    }
    free(kp->public_line);
    free(kp->fingerprint);
    memset(kp, 0, sizeof *kp);
}
