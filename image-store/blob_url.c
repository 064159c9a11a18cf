/* Signed blob URLs of nubo-imaged (blob_url.h). */
#include <stdio.h>
#include <string.h>

#include "blob_url.h"

void img_blob_url_key(const uint8_t master_key[NB_MASTER_KEY_LEN], uint8_t out[IMG_URL_KEY_LEN])
{
    static const char label[] = "nubo image-store blob URLs v1";
    nb_hmac_sha256(master_key, NB_MASTER_KEY_LEN, label, sizeof label - 1, out);
}

static void sign(const uint8_t url_key[IMG_URL_KEY_LEN], const char *key,
                 char hex[2 * NB_SHA256_LEN + 1])
{
    uint8_t mac[NB_SHA256_LEN];
    nb_hmac_sha256(url_key, IMG_URL_KEY_LEN, key, strlen(key), mac);
    nb_hex_encode(mac, sizeof mac, hex);
}

int img_blob_url(const char *base, const uint8_t url_key[IMG_URL_KEY_LEN], const char *key,
                 char *out, size_t out_len)
{
    char hex[2 * NB_SHA256_LEN + 1];
    sign(url_key, key, hex);
    int n = snprintf(out, out_len, "%s/v1/blobs/%s?sig=%s", base, key, hex);
    return n > 0 && (size_t)n < out_len ? 0 : -1;
}

bool img_blob_sig_ok(const uint8_t url_key[IMG_URL_KEY_LEN], const char *key, const char *sig)
{
    char hex[2 * NB_SHA256_LEN + 1];
    if (!sig || strlen(sig) != 2 * NB_SHA256_LEN) {
        return false;
    }
    sign(url_key, key, hex);
    return nb_ct_equal(hex, sig, 2 * NB_SHA256_LEN);
}

bool img_import_url_allowed(const char *allowed, const char *url)
{
    if (!allowed || !url || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))) {
        return false;
    }
    const char *p = allowed;
    while (*p) {
        while (*p == ',' || *p == ' ') {
            p++;
        }
        size_t len = strcspn(p, ", ");
        if (len > 0 && !strncmp(url, p, len)) {
            return true;
        }
        p += len;
    }
    return false;
}
