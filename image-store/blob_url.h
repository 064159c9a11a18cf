/* The URLs compute agents fetch image blobs with: capability URLs of nubo-imaged,
 *     BASE/v1/blobs/KEY?sig=HEX
 * where HEX is HMAC-SHA256 over "KEY" with a key derived from the cloud's master key (the
 * gateway, which writes them into images.location, and nubo-imaged, which checks them, both
 * hold it). Only the control plane hands these URLs out, to the agents that boot the image. */
#ifndef NUBO_IMAGE_BLOB_URL_H
#define NUBO_IMAGE_BLOB_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nubo/crypto.h"

#define IMG_URL_KEY_LEN 32

/* Derives the URL-signing key from the master key. */
void img_blob_url_key(const uint8_t master_key[NB_MASTER_KEY_LEN], uint8_t out[IMG_URL_KEY_LEN]);

/* Writes the URL of blob 'key' under 'base' ("http://host:port", no final "/") to 'out'.
 * Returns 0, or -1 if it does not fit. */
int img_blob_url(const char *base, const uint8_t url_key[IMG_URL_KEY_LEN], const char *key,
                 char *out, size_t out_len);

/* True if 'sig' (hex) is the signature of blob 'key'; compared in constant time. */
bool img_blob_sig_ok(const uint8_t url_key[IMG_URL_KEY_LEN], const char *key, const char *sig);

/* True if 'url' (http or https) may be imported from: it starts with one of the
 * comma-separated prefixes of 'allowed' (images.import_url_prefixes; empty: none may). The
 * gateway checks it when a tenant asks, nubo-imaged again before it fetches. */
bool img_import_url_allowed(const char *allowed, const char *url);

#endif
