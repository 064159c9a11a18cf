/* Password hashing with scrypt (see kdf.h). */
#include "kdf.h"

#include "nubo/crypto.h"
#include "nubo/error.h"
#include "nubo/id.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SALT_LEN 16
#define KEY_LEN  32

static bool params_ok(const struct gw_kdf_params *p)
{
    return p->log2n >= 10 && p->log2n <= 22 && p->r >= 1 && p->r <= 32 && p->p >= 1 && p->p <= 16;
}

/* Derives the key of 'password' under 'salt'. Returns 0, or -1 with 'err'. */
static int derive(const char *password, size_t len, const uint8_t *salt, size_t salt_len,
                  const struct gw_kdf_params *p, uint8_t key[KEY_LEN], struct nb_error *err)
{
    uint64_t n = 1ULL << p->log2n;
    /* What scrypt needs (128 r N for V, 128 r p for B, 256 r for XY), and some room. */
    uint64_t maxmem = 128ULL * (uint64_t)p->r * (n + (uint64_t)p->p + 2) + (1 << 20);
    if (EVP_PBE_scrypt(password, len, salt, salt_len, n, (uint64_t)p->r, (uint64_t)p->p, maxmem,
                       key, KEY_LEN) != 1) {
        nb_error_set(err, NB_ERR_INTERNAL, "scrypt failed (ln=%d, r=%d, p=%d)", p->log2n, p->r,
                     p->p);
        return -1;
    }
    return 0;
}

/* Writes the stored text for 'salt' and 'key' into 'out'. */
static int format(const struct gw_kdf_params *p, const uint8_t salt[SALT_LEN],
                  const uint8_t key[KEY_LEN], char out[GW_KDF_MAX_TEXT], struct nb_error *err)
{
    char *s = nb_base64_encode(salt, SALT_LEN);
    char *k = nb_base64_encode(key, KEY_LEN);
    int n = s && k ? snprintf(out, GW_KDF_MAX_TEXT, "$scrypt$ln=%d,r=%d,p=%d$%s$%s", p->log2n, p->r,
                              p->p, s, k)
                   : -1;
    free(s);
    free(k);
    if (n < 0 || n >= GW_KDF_MAX_TEXT) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not format a password hash");
        return -1;
    }
    return 0;
}

int gw_kdf_hash(const char *password, size_t len, const struct gw_kdf_params *params,
                char out[GW_KDF_MAX_TEXT], struct nb_error *err)
{
    if (!params_ok(params)) {
        nb_error_set(err, NB_ERR_INVALID, "invalid scrypt parameters ln=%d, r=%d, p=%d",
                     params->log2n, params->r, params->p);
        return -1;
    }
    uint8_t salt[SALT_LEN], key[KEY_LEN];
    if (nb_random_bytes(salt, sizeof salt) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not read random bytes");
        return -1;
    }
    int rc = derive(password, len, salt, sizeof salt, params, key, err);
    if (rc == 0) {
        rc = format(params, salt, key, out, err);
    }
    memset(key, 0, sizeof key);
    return rc;
}

/* Decodes base64 'text' of exactly 'want' bytes into 'out'. Returns 0 or -1. */
static int decode_exact(const char *text, uint8_t *out, size_t want)
{
    struct nb_error ignored = {0};
    size_t n;
    uint8_t *b = nb_base64_decode(text, &n, &ignored);
    int rc = b && n == want ? 0 : -1;
    if (rc == 0) {
        memcpy(out, b, want);
    }
    free(b);
    return rc;
}

int gw_kdf_verify(const char *password, size_t len, const char *stored,
                  const struct gw_kdf_params *current, bool *weaker, struct nb_error *err)
{
    struct gw_kdf_params p;
    char salt_text[64], key_text[64];
    uint8_t salt[SALT_LEN], want[KEY_LEN], got[KEY_LEN];
    int used = 0;
    if (sscanf(stored, "$scrypt$ln=%d,r=%d,p=%d$%63[A-Za-z0-9+/=]$%63[A-Za-z0-9+/=]%n", &p.log2n,
               &p.r, &p.p, salt_text, key_text, &used) != 5 ||
        stored[used] != '\0' || !params_ok(&p) || decode_exact(salt_text, salt, SALT_LEN) < 0 ||
        decode_exact(key_text, want, KEY_LEN) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "stored password hash is not a scrypt hash");
        return -1;
    }
    if (derive(password, len, salt, sizeof salt, &p, got, err) < 0) {
        return -1;
    }
    bool match = nb_ct_equal(got, want, KEY_LEN);
    memset(got, 0, sizeof got);
    if (weaker && current) {
        *weaker = p.log2n != current->log2n || p.r != current->r || p.p != current->p;
    }
    return match ? 1 : 0;
}

void gw_kdf_dummy(const struct gw_kdf_params *params, char out[GW_KDF_MAX_TEXT])
{
    /* A key no derivation yields in practice; the salt is fixed, which does not matter here. */
    static const uint8_t salt[SALT_LEN] = {0x6e, 0x75, 0x62, 0x6f};
    static const uint8_t key[KEY_LEN] = {0};
    struct nb_error ignored = {0};
    if (format(params, salt, key, out, &ignored) < 0) {
        out[0] = '\0';
    }
}
