/* Key pairs service: SSH key pairs that instances get at launch (CreateKeyPair, ImportKeyPair,
 * DeleteKeyPair, DescribeKeyPairs). Follows svc.h.
 *
 * nubo makes ED25519 and RSA (2048-bit) keys with OpenSSL (ssh_key.h) and keeps only the public
 * half, in OpenSSH's one-line form with the key pair's name as its comment ("ssh-ed25519 AAAA...
 * NAME", whether created or imported: the comment of an imported key is dropped). Fingerprints
 * follow EC2: a created RSA key has the SHA-1 of its PKCS#8 private key, an imported RSA key the
 * MD5 of its DER public key (both as colon-separated hex); ED25519 keys have OpenSSH's SHA256
 * fingerprint without the "SHA256:" prefix (base64 without padding). Imported RSA keys must have
 * at least 2048 bits (EC2 takes 1024). */
#ifndef NUBO_GW_SVC_KEYPAIRS_H
#define NUBO_GW_SVC_KEYPAIRS_H

#include <stddef.h>
#include <stdint.h>

#include "svc.h"

struct gw_ctx;
struct gw_principal;
struct nb_arena;
struct nb_error;

struct gw_keypair {
    const char *id; /* "key-" + 17 hex */
    const char *name;
    const char *key_type; /* "rsa" or "ed25519" */
    const char *fingerprint;
    const char *public_key; /* OpenSSH one-line form */
    int64_t created_ms;
    const struct gw_tag *tags;
    size_t n_tags;
    const char *private_key; /* only from gw_keypair_create(): PEM (RSA, "BEGIN RSA PRIVATE
                                KEY") or OpenSSH ("BEGIN OPENSSH PRIVATE KEY", ED25519) */
};

/* Creates key pair 'name' (1..255 ASCII characters) of 'key_type' ("rsa" when NULL, or
 * "ed25519"), tagged with 'tags'. Fills '*out', including the private key, which nubo does not
 * keep. InvalidKeyPair.Duplicate if the name is taken, InvalidParameterValue for a bad name or
 * type. */
int gw_keypair_create(struct gw_ctx *gw, const struct gw_principal *who, const char *name,
                      const char *key_type, const struct gw_tag *tags, size_t n_tags,
                      struct nb_arena *arena, struct gw_keypair *out, struct nb_error *err);

/* Imports 'material' ('len' bytes: an OpenSSH public key line "ssh-ed25519 AAAA... comment" or
 * "ssh-rsa AAAA...", as the EC2 API receives it after base64 decoding) as key pair 'name'.
 * InvalidKey.Format if the material is not a supported public key (see ssh_key_parse_public()),
 * and otherwise as gw_keypair_create(); '*out' has no private key. */
int gw_keypair_import(struct gw_ctx *gw, const struct gw_principal *who, const char *name,
                      const void *material, size_t len, const struct gw_tag *tags, size_t n_tags,
                      struct nb_arena *arena, struct gw_keypair *out, struct nb_error *err);

/* Deletes the key pair named 'name' or with id 'id' (exactly one of them non-NULL, else
 * MissingParameter or InvalidParameterCombination), and its tags. As on EC2, deleting a name that
 * does not exist succeeds; an unknown id is InvalidKeyPair.NotFound. Writes the deleted key
 * pair's id into 'deleted_id' (NB_ID_MAX bytes; "" when a name matched nothing). */
int gw_keypair_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *name,
                      const char *id, char deleted_id[32], struct nb_error *err);

/* Lists the tenant's key pairs, those named in 'names' and with ids in 'ids' when given
 * (InvalidKeyPair.NotFound for any unknown one), filtered by key-pair-id, key-name,
 * fingerprint, key-type, tag:KEY, tag-key, tag-value; ordered by name. */
int gw_keypairs_describe(struct gw_ctx *gw, const struct gw_principal *who,
                         const char *const *names, size_t n_names, const char *const *ids,
                         size_t n_ids, const struct gw_filter *filters, size_t n_filters,
                         struct nb_arena *arena, struct gw_keypair **out, size_t *n,
                         struct nb_error *err);

#endif
