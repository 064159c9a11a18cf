/* Password hashing for the web console's sign-in: scrypt (OpenSSL's EVP_PBE_scrypt) with a random
 * 16-byte salt per password, stored as a self-describing text
 *
 *     $scrypt$ln=17,r=8,p=1$<base64 salt>$<base64 32-byte key>
 *
 * so that the cost can be raised later without invalidating stored hashes (each hash is checked
 * with its own parameters; gw_kdf_verify() says when one is weaker than today's). Pure functions:
 * no database, no HTTP. Thread-safe. */
#ifndef NUBO_GW_KDF_H
#define NUBO_GW_KDF_H

#include <stdbool.h>
#include <stddef.h>

struct nb_error;

#define GW_KDF_MAX_TEXT 128 /* room for the stored text, NUL included */

/* scrypt's cost: N = 2^log2n, block size r, parallelism p. Memory is 128 * r * N bytes. */
struct gw_kdf_params {
    int log2n;
    int r;
    int p;
};

/* OWASP's recommendation: N = 2^17, r = 8, p = 1 (128 MiB, about 0.4 s on one core here). */
#define GW_KDF_DEFAULT_LOG2N 17

/* Hashes 'password' ('len' bytes) with a fresh salt into 'out'. Returns 0, or -1 with 'err'
 * (parameters out of range: log2n 10..22, r 1..32, p 1..16; no randomness; OpenSSL failed). */
int gw_kdf_hash(const char *password, size_t len, const struct gw_kdf_params *params,
                char out[GW_KDF_MAX_TEXT], struct nb_error *err);

/* Checks 'password' against 'stored' (a gw_kdf_hash() text) in time that does not depend on
 * where they differ. Returns 1 on a match, 0 on a mismatch, -1 with 'err' when 'stored' is not a
 * hash this module made or the KDF fails. When 'current' is not NULL, '*weaker' tells whether
 * 'stored' was made with other parameters than 'current' (rehash it after a match). */
int gw_kdf_verify(const char *password, size_t len, const char *stored,
                  const struct gw_kdf_params *current, bool *weaker, struct nb_error *err);

/* A well-formed hash with 'params' that no password matches: checking an unknown user's password
 * against it costs what checking a real one does, so timing does not tell which users exist. */
void gw_kdf_dummy(const struct gw_kdf_params *params, char out[GW_KDF_MAX_TEXT]);

#endif
