/* SSH keys for key pairs: making ED25519 and RSA keys with OpenSSL, writing them in the forms
 * that OpenSSH reads (the one-line public key, the "openssh-key-v1" private key, PKCS#1 PEM), and
 * parsing a public key line that a user imports. No database; private to the gateway, used by
 * svc_keypairs.c and exposed on its own so that the parser can be fuzzed.
 *
 * Fingerprints are EC2's: SHA-1 of the DER PKCS#8 private key for a created RSA key, MD5 of the
 * DER SubjectPublicKeyInfo for an imported RSA key (both as lower-case hex pairs joined by ':'),
 * and for ED25519 keys the SHA-256 of the OpenSSH public key blob in base64 without '=' padding
 * (what "ssh-keygen -l" prints after "SHA256:"). */
#ifndef NUBO_GW_SSH_KEY_H
#define NUBO_GW_SSH_KEY_H

#include <openssl/types.h>
#include <stddef.h>

struct nb_error;

enum ssh_key_type {
    SSH_KEY_ED25519,
    SSH_KEY_RSA,
};

#define SSH_KEY_MAX_MATERIAL (16 * 1024) /* longest public key line that import accepts */
#define SSH_KEY_RSA_BITS     2048        /* size of the RSA keys nubo makes */
#define SSH_KEY_RSA_MIN_BITS 2048  /* smallest imported RSA key (EC2 accepts 1024; we do not) */
#define SSH_KEY_RSA_MAX_BITS 16384 /* largest imported RSA key, OpenSSH's own limit */

/* A public key as parsed from a line. Every pointer is malloc()ed; ssh_key_pub_clear() frees. */
struct ssh_key_pub {
    enum ssh_key_type type;
    int bits;            /* 256 for ED25519, the modulus size for RSA */
    unsigned char *blob; /* the key in SSH wire form (RFC 4253 section 6.6) */
    size_t blob_len;
    char *line;        /* "ssh-ed25519 AAAA...": type and base64 blob, no comment */
    char *fingerprint; /* EC2's fingerprint of an imported key of this type */
};

/* A key pair just made. Every pointer is malloc()ed; ssh_key_pair_clear() wipes and frees. */
struct ssh_key_pair {
    enum ssh_key_type type;
    char *public_line;  /* as in struct ssh_key_pub, no comment */
    char *private_text; /* PEM "RSA PRIVATE KEY" (PKCS#1) or "OPENSSH PRIVATE KEY" (ED25519) */
    char *fingerprint;  /* EC2's fingerprint of a created key of this type */
};

/* "rsa" or "ed25519" (EC2's KeyType) for 'type'. */
const char *ssh_key_type_name(enum ssh_key_type type);
/* Stores in '*type' the type EC2 calls 'name' ("rsa", "ed25519"). Returns 0, or -1 for any other
 * name. */
int ssh_key_type_parse(const char *name, enum ssh_key_type *type);

/* Parses 'len' bytes of 'text' (any bytes; need not be NUL-terminated) as one OpenSSH public key
 * line, "<type> <base64 blob> [comment]", with optional surrounding white space and a final
 * newline. Accepts "ssh-ed25519" (32-byte key) and "ssh-rsa" (modulus of SSH_KEY_RSA_MIN_BITS to
 * SSH_KEY_RSA_MAX_BITS bits, odd public exponent of at most 64 bits); the type in the blob must
 * be the one in the line, and integers must be minimally encoded. The comment is ignored.
 * On success fills '*out' (the caller calls ssh_key_pub_clear()) and returns 0. Otherwise
 * returns -1 with 'err' set, code NB_ERR_INVALID and reason "InvalidKey.Format" for rejected
 * material (NB_ERR_INTERNAL if OpenSSL fails), and '*out' needs no clearing. */
int ssh_key_parse_public(const void *text, size_t len, struct ssh_key_pub *out,
                         struct nb_error *err);

/* Frees what 'k' holds and zeroes it. Accepts NULL. */
void ssh_key_pub_clear(struct ssh_key_pub *k);

/* Makes a new key of 'type' (RSA keys have SSH_KEY_RSA_BITS bits), with 'comment' (may be NULL
 * for none; used in the OpenSSH private key only). Fills '*out' (the caller calls
 * ssh_key_pair_clear()) and returns 0, or returns -1 with 'err' set. */
int ssh_key_generate(enum ssh_key_type type, const char *comment, struct ssh_key_pair *out,
                     struct nb_error *err);

/* Wipes the private key, frees what 'kp' holds and zeroes it. Accepts NULL. */
void ssh_key_pair_clear(struct ssh_key_pair *kp);

/* Encoders, exposed for the tests. Each returns a malloc()ed NUL-terminated string that the
 * caller free()s, or NULL with 'err' set (NB_ERR_INVALID for a key of another kind).
 *
 * ssh_key_public_line(): the OpenSSH public key line of 'pkey' (an ED25519 or RSA key, public
 * half enough), "<type> <base64>", then " <comment>" when 'comment' is not NULL.
 *
 * ssh_key_openssh_private(): the "-----BEGIN OPENSSH PRIVATE KEY-----" text of the ED25519
 * private key 'pkey' (openssh-key-v1, unencrypted, one key, 'comment' or "" when NULL); the
 * caller should wipe it (OPENSSL_cleanse()) before free()ing it. */
char *ssh_key_public_line(const EVP_PKEY *pkey, const char *comment, struct nb_error *err);
char *ssh_key_openssh_private(const EVP_PKEY *pkey, const char *comment, struct nb_error *err);

#endif
