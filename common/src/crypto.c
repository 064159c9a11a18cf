/* Cryptographic helpers over OpenSSL 3 (see crypto.h).
 *
 * HMAC-SHA256 and SHA-256 sit on the gateway's hot path (every request is signed), so the
 * algorithm objects are fetched from the provider once per process and each thread keeps its own
 * reusable contexts: OpenSSL 3's one-shot HMAC() and EVP_sha256() would look the algorithm up
 * again on every call. The fetched objects are written once under pthread_once() and only read
 * afterwards. */
#include "nubo/crypto.h"

#include "nubo/error.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#define GCM_NONCE_LEN 12
#define GCM_TAG_LEN   16
#define SEAL_PREFIX   "v1:"

/* Algorithms fetched once; NULL when the fetch failed (then the slow paths are used). */
static pthread_once_t algs_once = PTHREAD_ONCE_INIT;
static EVP_MAC *alg_hmac;
static EVP_MD *alg_sha256;
static EVP_CIPHER *alg_aes_gcm;
static pthread_key_t tls_key;
static int tls_key_ok;

/* Per-thread contexts, reinitialised on each use. Freed by the pthread key's destructor when the
 * thread exits; 'tls' keeps the pointer visible to leak checkers for the main thread. */
struct crypto_tls {
    EVP_MAC_CTX *mac;
    EVP_MD_CTX *md;
};
static __thread struct crypto_tls *tls;

static void tls_free(void *p)
{
    struct crypto_tls *t = p;
    if (t) {
        EVP_MAC_CTX_free(t->mac);
        EVP_MD_CTX_free(t->md);
        free(t);
    }
    tls = NULL;
}

static void algs_init(void)
{
    alg_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    alg_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    alg_aes_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    tls_key_ok = pthread_key_create(&tls_key, tls_free) == 0;
}

/* Returns this thread's contexts, creating them on first use, or NULL if that failed. */
static struct crypto_tls *tls_get(void)
{
    if (tls) {
        return tls;
    }
    pthread_once(&algs_once, algs_init);
    if (!alg_hmac || !alg_sha256 || !tls_key_ok) {
        return NULL;
    }
    struct crypto_tls *t = calloc(1, sizeof *t);
    if (!t) {
        return NULL;
    }
    t->mac = EVP_MAC_CTX_new(alg_hmac);
    t->md = EVP_MD_CTX_new();
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (!t->mac || !t->md || !EVP_MAC_CTX_set_params(t->mac, params) ||
        pthread_setspecific(tls_key, t) != 0) {
        EVP_MAC_CTX_free(t->mac);
        EVP_MD_CTX_free(t->md);
        free(t);
        return NULL;
    }
    tls = t;
    return t;
}

/* OpenSSL failing to compute a hash with its built-in provider means the process cannot work
 * safely at all; the functions that hash have no error path, so they stop here. */
static void crypto_fatal(const char *what)
{
    fprintf(stderr, "nubo: fatal: %s failed in OpenSSL\n", what);
    abort();
}

void nb_sha256(const void *data, size_t len, uint8_t out[NB_SHA256_LEN])
{
    static const char empty[1];
    struct crypto_tls *t = tls_get();
    if (!data) {
        data = empty;
    }
    if (t && EVP_DigestInit_ex(t->md, alg_sha256, NULL) && EVP_DigestUpdate(t->md, data, len) &&
        EVP_DigestFinal_ex(t->md, out, NULL)) {
        return;
    }
    if (!EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL)) {
        crypto_fatal("SHA-256");
    }
}

void nb_sha256_hex(const void *data, size_t len, char out[2 * NB_SHA256_LEN + 1])
{
    uint8_t md[NB_SHA256_LEN];
    nb_sha256(data, len, md);
    nb_hex_encode(md, sizeof md, out);
}

void nb_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                    uint8_t out[NB_SHA256_LEN])
{
    /* EVP_MAC_init() with a NULL key keeps the previous key: an empty key must not be NULL. */
    static const char empty[1];
    struct crypto_tls *t = tls_get();
    size_t out_len = 0;
    if (!key || key_len == 0) {
        key = empty;
        key_len = 0;
    }
    if (!data) {
        data = empty;
    }
    if (t && EVP_MAC_init(t->mac, key, key_len, NULL) && EVP_MAC_update(t->mac, data, len) &&
        EVP_MAC_final(t->mac, out, &out_len, NB_SHA256_LEN) && out_len == NB_SHA256_LEN) {
        return;
    }
    if (key_len > INT_MAX || !HMAC(EVP_sha256(), key, (int)key_len, data, len, out, NULL)) {
        crypto_fatal("HMAC-SHA256");
    }
}

void nb_hex_encode(const void *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 0xf];
    }
    out[2 * len] = '\0';
}

void nb_vnc_password(const char *node_token, const char *instance_id, char out[9])
{
    uint8_t mac[NB_SHA256_LEN];
    nb_hmac_sha256(node_token, strlen(node_token), instance_id, strlen(instance_id), mac);
    /* 4 bytes give the 8 hex digits: VNC authentication uses at most 8 password bytes. */
    nb_hex_encode(mac, 4, out);
}

int nb_hex_value(int c)
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

int nb_hex_decode(const char *hex, void *out, size_t len)
{
    uint8_t *p = out;
    if (!hex) {
        return -1;
    }
    /* A short string fails on its NUL, which is not a hex digit, before reading past it. */
    for (size_t i = 0; i < len; i++) {
        int hi = nb_hex_value((unsigned char)hex[2 * i]);
        if (hi < 0) {
            return -1;
        }
        int lo = nb_hex_value((unsigned char)hex[2 * i + 1]);
        if (lo < 0) {
            return -1;
        }
        p[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

bool nb_ct_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *nb_base64_encode(const void *data, size_t len)
{
    const uint8_t *p = data;
    if (len > (SIZE_MAX - 1) / 4 * 3 - 2) {
        return NULL;
    }
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!out) {
        return NULL;
    }
    char *o = out;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = b64_alphabet[(v >> 6) & 63];
        *o++ = b64_alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = b64_alphabet[(v >> 6) & 63];
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

void *nb_base64_decode(const char *text, size_t *out_len, struct nb_error *err)
{
    if (!text) {
        nb_error_set(err, NB_ERR_INVALID, "invalid base64: no input");
        return NULL;
    }
    size_t len = strlen(text);
    if (len % 4 != 0) {
        nb_error_set(err, NB_ERR_INVALID, "invalid base64: length %zu is not a multiple of 4", len);
        return NULL;
    }
    size_t pad = 0;
    if (len > 0 && text[len - 1] == '=') {
        pad = len > 1 && text[len - 2] == '=' ? 2 : 1;
    }
    uint8_t *out = malloc(len / 4 * 3 + 1);
    if (!out) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory decoding base64");
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i += 4) {
        uint32_t v = 0;
        size_t quad_end = i + 4 == len ? 4 - pad : 4;
        for (size_t j = 0; j < 4; j++) {
            int d = 0;
            if (j < quad_end) {
                d = b64_value((unsigned char)text[i + j]);
            }
            if (d < 0) {
                unsigned char c = (unsigned char)text[i + j];
                if (c >= 0x21 && c < 0x7f) {
                    nb_error_set(err, NB_ERR_INVALID,
                                 "invalid base64: unexpected character \"%c\" at offset %zu", c,
                                 i + j);
                } else {
                    nb_error_set(err, NB_ERR_INVALID,
                                 "invalid base64: unexpected byte 0x%02x at offset %zu", c, i + j);
                }
                free(out);
                return NULL;
            }
            v = v << 6 | (uint32_t)d;
        }
        /* Bits beyond the last byte must be zero, so that each byte string has one encoding. */
        if ((quad_end == 2 && (v & 0xffff) != 0) || (quad_end == 3 && (v & 0xff) != 0)) {
            nb_error_set(err, NB_ERR_INVALID, "invalid base64: non-zero padding bits at offset %zu",
                         i);
            free(out);
            return NULL;
        }
        out[n++] = (uint8_t)(v >> 16);
        if (quad_end > 2) {
            out[n++] = (uint8_t)(v >> 8);
        }
        if (quad_end > 3) {
            out[n++] = (uint8_t)v;
        }
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

/* Reads the key from the open file 'fd' of 'path'. */
static int master_key_read(int fd, const char *path, uint8_t key[NB_MASTER_KEY_LEN],
                           struct nb_error *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        nb_error_errno(err, errno, "could not stat master key file \"%s\"", path);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        nb_error_set(err, NB_ERR_INVALID, "master key file \"%s\" is not a regular file", path);
        return -1;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        nb_error_set(err, NB_ERR_INVALID,
                     "master key file \"%s\" is accessible by group or others (mode %04o)", path,
                     (unsigned)(st.st_mode & 07777));
        nb_error_detail(err, "run: chmod 600 %s", path);
        return -1;
    }
    /* 64 digits and a newline; one more byte to notice trailing garbage. */
    char buf[2 * NB_MASTER_KEY_LEN + 3];
    size_t n = 0;
    while (n < sizeof buf) {
        ssize_t r = read(fd, buf + n, sizeof buf - n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            nb_error_errno(err, errno, "could not read master key file \"%s\"", path);
            OPENSSL_cleanse(buf, sizeof buf);
            return -1;
        }
        if (r == 0) {
            break;
        }
        n += (size_t)r;
    }
    int rc = 0;
    bool trailer_ok =
        n == 2 * NB_MASTER_KEY_LEN || (n == 2 * NB_MASTER_KEY_LEN + 1 && buf[n - 1] == '\n');
    if (!trailer_ok || nb_hex_decode(buf, key, NB_MASTER_KEY_LEN) != 0) {
        nb_error_set(err, NB_ERR_INVALID,
                     "master key file \"%s\" is malformed: expected 64 hex digits", path);
        OPENSSL_cleanse(key, NB_MASTER_KEY_LEN);
        rc = -1;
    }
    OPENSSL_cleanse(buf, sizeof buf);
    return rc;
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0) {
            return -1;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Creates 'path' with a fresh key. The key is written to a private temporary file that is then
 * linked into place, so that a concurrent reader never sees a partial file, and two concurrent
 * creators agree on one key (the loser of link() loads the winner's). */
static int master_key_create(const char *path, uint8_t key[NB_MASTER_KEY_LEN], struct nb_error *err)
{
    char tmp[PATH_MAX];
    /* mkstemp()'s template: the path, a dot, and six 'X' that mkstemp() replaces. */
    char pattern[7];
    memset(pattern, 'X', 6);
    pattern[6] = '\0';
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.%s", path, pattern) >= sizeof tmp) {
        nb_error_set(err, NB_ERR_INVALID, "master key path \"%s\" is too long", path);
        return -1;
    }
    if (RAND_bytes(key, NB_MASTER_KEY_LEN) != 1) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not generate a master key: no randomness");
        return -1;
    }
    char hex[2 * NB_MASTER_KEY_LEN + 2];
    nb_hex_encode(key, NB_MASTER_KEY_LEN, hex);
    hex[2 * NB_MASTER_KEY_LEN] = '\n';
    hex[2 * NB_MASTER_KEY_LEN + 1] = '\0';

    int rc = -1;
    int fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
    if (fd < 0) {
        nb_error_errno(err, errno, "could not create master key file \"%s\"", path);
        goto cleanup;
    }
    if (fchmod(fd, 0600) != 0 || write_all(fd, hex, 2 * NB_MASTER_KEY_LEN + 1) != 0 ||
        fsync(fd) != 0) {
        nb_error_errno(err, errno, "could not write master key file \"%s\"", tmp);
        goto cleanup;
    }
    if (link(tmp, path) != 0) {
        if (errno != EEXIST) {
            nb_error_errno(err, errno, "could not create master key file \"%s\"", path);
            goto cleanup;
        }
        int rfd = open(path, O_RDONLY | O_CLOEXEC);
        if (rfd < 0) {
            nb_error_errno(err, errno, "could not open master key file \"%s\"", path);
            goto cleanup;
        }
        rc = master_key_read(rfd, path, key, err);
        close(rfd);
        goto cleanup;
    }
    rc = 0;

cleanup:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    if (rc != 0) {
        OPENSSL_cleanse(key, NB_MASTER_KEY_LEN);
    }
    OPENSSL_cleanse(hex, sizeof hex);
    return rc;
}

int nb_master_key_load(const char *path, bool create, uint8_t key[NB_MASTER_KEY_LEN],
                       struct nb_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT && create) {
            return master_key_create(path, key, err);
        }
        nb_error_errno(err, errno, "could not open master key file \"%s\"", path);
        return -1;
    }
    int rc = master_key_read(fd, path, key, err);
    close(fd);
    return rc;
}

static const EVP_CIPHER *aes_gcm(void)
{
    pthread_once(&algs_once, algs_init);
    return alg_aes_gcm ? alg_aes_gcm : EVP_aes_256_gcm();
}

char *nb_seal(const uint8_t key[NB_MASTER_KEY_LEN], const void *plain, size_t len, const char *aad,
              struct nb_error *err)
{
    static const char empty[1];
    size_t aad_len = aad ? strlen(aad) : 0;
    if (len > INT_MAX - GCM_NONCE_LEN - GCM_TAG_LEN || aad_len > INT_MAX) {
        nb_error_set(err, NB_ERR_LIMIT, "could not seal %zu bytes: too large", len);
        return NULL;
    }
    if (!plain) {
        plain = empty;
    }
    size_t raw_len = GCM_NONCE_LEN + len + GCM_TAG_LEN;
    uint8_t *raw = malloc(raw_len);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    char *b64 = NULL;
    char *out = NULL;
    int n = 0;
    if (!raw || !ctx) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory sealing a secret");
        goto cleanup;
    }
    uint8_t *nonce = raw;
    uint8_t *ct = raw + GCM_NONCE_LEN;
    if (RAND_bytes(nonce, GCM_NONCE_LEN) != 1) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not seal a secret: no randomness for the nonce");
        goto cleanup;
    }
    if (!EVP_EncryptInit_ex2(ctx, aes_gcm(), key, nonce, NULL) ||
        (aad_len > 0 && !EVP_EncryptUpdate(ctx, NULL, &n, (const uint8_t *)aad, (int)aad_len)) ||
        !EVP_EncryptUpdate(ctx, ct, &n, plain, (int)len) || !EVP_EncryptFinal_ex(ctx, ct + n, &n) ||
        !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG_LEN, ct + len)) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not seal a secret: AES-256-GCM failed");
        goto cleanup;
    }
    b64 = nb_base64_encode(raw, raw_len);
    out = b64 ? malloc(strlen(SEAL_PREFIX) + strlen(b64) + 1) : NULL;
    if (!out) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory sealing a secret");
        goto cleanup;
    }
    strcpy(out, SEAL_PREFIX);
    strcat(out, b64);

cleanup:
    EVP_CIPHER_CTX_free(ctx);
    free(raw);
    free(b64);
    return out;
}

void *nb_unseal(const uint8_t key[NB_MASTER_KEY_LEN], const char *sealed, const char *aad,
                size_t *out_len, struct nb_error *err)
{
    size_t aad_len = aad ? strlen(aad) : 0;
    if (!sealed || strncmp(sealed, SEAL_PREFIX, strlen(SEAL_PREFIX)) != 0) {
        nb_error_set(err, NB_ERR_INVALID, "could not unseal secret: missing \"%s\" prefix",
                     SEAL_PREFIX);
        return NULL;
    }
    if (aad_len > INT_MAX) {
        nb_error_set(err, NB_ERR_LIMIT, "could not unseal secret: associated data too large");
        return NULL;
    }
    struct nb_error b64_err;
    size_t raw_len = 0;
    uint8_t *raw = nb_base64_decode(sealed + strlen(SEAL_PREFIX), &raw_len, &b64_err);
    if (!raw) {
        nb_error_set(err, NB_ERR_INVALID, "could not unseal secret: %s", b64_err.msg);
        return NULL;
    }
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t *plain = NULL;
    void *result = NULL;
    size_t ct_len = 0;
    if (raw_len < GCM_NONCE_LEN + GCM_TAG_LEN || raw_len - GCM_NONCE_LEN - GCM_TAG_LEN > INT_MAX) {
        nb_error_set(err, NB_ERR_INVALID, "could not unseal secret: %zu bytes is too short",
                     raw_len);
        goto cleanup;
    }
    ct_len = raw_len - GCM_NONCE_LEN - GCM_TAG_LEN;
    const uint8_t *nonce = raw;
    const uint8_t *ct = raw + GCM_NONCE_LEN;
    uint8_t *tag = raw + GCM_NONCE_LEN + ct_len;
    ctx = EVP_CIPHER_CTX_new();
    plain = malloc(ct_len + 1);
    if (!ctx || !plain) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory unsealing a secret");
        goto cleanup;
    }
    int n = 0;
    int total = 0;
    if (!EVP_DecryptInit_ex2(ctx, aes_gcm(), key, nonce, NULL) ||
        (aad_len > 0 && !EVP_DecryptUpdate(ctx, NULL, &n, (const uint8_t *)aad, (int)aad_len)) ||
        !EVP_DecryptUpdate(ctx, plain, &n, ct, (int)ct_len) ||
        !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GCM_TAG_LEN, tag)) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not unseal secret: AES-256-GCM failed");
        goto cleanup;
    }
    total = n;
    if (EVP_DecryptFinal_ex(ctx, plain + total, &n) != 1) {
        nb_error_set(err, NB_ERR_INVALID,
                     "could not unseal secret: authentication failed (wrong key, or the data or "
                     "its associated data were altered)");
        goto cleanup;
    }
    total += n;
    plain[total] = '\0';
    *out_len = (size_t)total;
    result = plain;
    plain = NULL;

cleanup:
    if (plain) {
        OPENSSL_cleanse(plain, ct_len + 1);
        free(plain);
    }
    EVP_CIPHER_CTX_free(ctx);
    free(raw);
    return result;
}
