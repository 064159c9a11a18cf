/* Cryptographic helpers over OpenSSL 3: SHA-256, HMAC-SHA256, hex and base64, constant-time
 * comparison, and AES-256-GCM sealing of secrets at rest under a master key file. */
#ifndef NUBO_CRYPTO_H
#define NUBO_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nb_error;

#define NB_SHA256_LEN     32
#define NB_MASTER_KEY_LEN 32

/* SHA-256 of 'len' bytes into 'out' (32 bytes). */
void nb_sha256(const void *data, size_t len, uint8_t out[NB_SHA256_LEN]);
/* Lower-case hex of the SHA-256 into 'out' (65 bytes, NUL-terminated). */
void nb_sha256_hex(const void *data, size_t len, char out[2 * NB_SHA256_LEN + 1]);

/* HMAC-SHA256 of 'data' under 'key' into 'out' (32 bytes). Thread-safe. */
void nb_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                    uint8_t out[NB_SHA256_LEN]);

/* Writes 2*len lower-case hex digits and a NUL into 'out'. */
void nb_hex_encode(const void *data, size_t len, char *out);
/* The value of hex digit 'c' (either case), or -1 if it is not one. */
int nb_hex_value(int c);

/* Decodes 'hex' (2*len digits, either case) into 'out'. Returns 0, or -1 on bad input. */
int nb_hex_decode(const char *hex, void *out, size_t len);

/* The VNC password of instance 'instance_id' on the node whose token is 'node_token': the first
 * 8 hex digits of HMAC-SHA256(node token, instance id), NUL-terminated, into 'out'. The agent
 * puts it in the domain's <graphics> and the gateway derives the same one to open the display,
 * so no password is stored anywhere. */
void nb_vnc_password(const char *node_token, const char *instance_id, char out[9]);

/* Compares 'len' bytes in time independent of their contents. True when equal. */
bool nb_ct_equal(const void *a, const void *b, size_t len);

/* Standard base64 (RFC 4648, with padding). encode returns a malloc()ed NUL-terminated string the
 * caller free()s. decode returns a malloc()ed buffer with its length in '*out_len', or NULL with
 * 'err' set on malformed input. */
char *nb_base64_encode(const void *data, size_t len);
void *nb_base64_decode(const char *text, size_t *out_len, struct nb_error *err);

/* Loads the 32-byte master key from 'path' (64 hex digits, optional trailing newline). If the
 * file does not exist and 'create' is true, creates it with mode 0600 from fresh randomness.
 * Returns 0, or -1 with 'err' set (also when the file is group/world readable). */
int nb_master_key_load(const char *path, bool create, uint8_t key[NB_MASTER_KEY_LEN],
                       struct nb_error *err);

/* Encrypts 'len' bytes with AES-256-GCM under 'key' and a fresh random 96-bit nonce, binding
 * 'aad' (may be NULL) as associated data. Returns a malloc()ed text "v1:<base64(nonce|ct|tag)>"
 * the caller free()s, or NULL with 'err' set. */
char *nb_seal(const uint8_t key[NB_MASTER_KEY_LEN], const void *plain, size_t len, const char *aad,
              struct nb_error *err);

/* Reverses nb_seal(). Returns a malloc()ed buffer (NUL-terminated for convenience, the NUL not
 * counted in '*out_len') the caller free()s, or NULL with 'err' set when the text is malformed,
 * the key is wrong, or the data or 'aad' were tampered with. */
void *nb_unseal(const uint8_t key[NB_MASTER_KEY_LEN], const char *sealed, const char *aad,
                size_t *out_len, struct nb_error *err);

#endif
