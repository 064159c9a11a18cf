/* Unit tests of ssh_key.c: key generation, the OpenSSH encoders and the public key parser.
 *
 * The independent check is OpenSSH itself: ssh-keygen must read our private keys back to exactly
 * our public lines and compute the same SHA256 fingerprints, and keys it makes must import. The
 * RSA fingerprints EC2 defines (SHA-1 of PKCS#8, MD5 of SubjectPublicKeyInfo) are checked against
 * the openssl command. Tests that need ssh-keygen (package openssh-client) are skipped without
 * it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ssh_key.h"

#include "nubo/buf.h"
#include "nubo/crypto.h"
#include "nubo/error.h"

struct tmpdir {
    char path[64];
};

static int tmpdir_setup(void **state)
{
    struct tmpdir *d = calloc(1, sizeof *d);
    snprintf(d->path, sizeof d->path, "/tmp/nubo-test-ssh-key-XXXXXX");
    if (!mkdtemp(d->path)) {
        free(d);
        return -1;
    }
    *state = d;
    return 0;
}

static int tmpdir_teardown(void **state)
{
    struct tmpdir *d = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->path);
    int rc = system(cmd);
    free(d);
    return rc == 0 ? 0 : -1;
}

static bool have_ssh_keygen(void)
{
    return system("command -v ssh-keygen >/dev/null 2>&1") == 0;
}

/* Runs the shell command built from 'fmt' and returns its first output line without the newline
 * (malloc()ed), or NULL if it failed or printed nothing. */
static char *run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *run(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *f = popen(cmd, "r");
    if (!f) {
        return NULL;
    }
    char line[8192];
    char *out = NULL;
    if (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        out = strdup(line);
    }
    while (fgets(line, sizeof line, f)) {
    }
    if (pclose(f) != 0) {
        free(out);
        out = NULL;
    }
    return out;
}

/* Writes 'text' to '<dir>/<name>' with mode 0600 and stores the path in 'path' (128 bytes). */
static void write_file(const char *dir, const char *name, const char *text, char *path)
{
    snprintf(path, 128, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

/* Reads the whole file 'path' into a malloc()ed NUL-terminated string. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    struct nb_buf b = NB_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        nb_buf_append(&b, chunk, n);
    }
    fclose(f);
    return nb_buf_steal(&b);
}

/* Makes a key with "ssh-keygen -t 'type' -b 'bits'" in 'dir' as '<dir>/<name>' and returns its
 * public key file's contents (malloc()ed). */
static char *ssh_keygen_make(const char *dir, const char *name, const char *type, int bits)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ssh-keygen -q -t %s %s%.0d -N '' -C 'made by test' -f '%s/%s'", type,
             bits ? "-b " : "", bits, dir, name);
    if (system(cmd) != 0) {
        return NULL;
    }
    char path[128];
    snprintf(path, sizeof path, "%s/%s.pub", dir, name);
    return read_file(path);
}

/* "type base64" of a public key file's line: the line up to its second space. */
static char *type_and_blob(const char *line)
{
    const char *sp = strchr(line, ' ');
    assert_non_null(sp);
    size_t n = strcspn(sp + 1, " \r\n");
    return strndup(line, (size_t)(sp + 1 - line) + n);
}

/* Expects 'text' to be rejected as InvalidKey.Format with 'why' in the message. */
static void expect_rejected(const void *text, size_t len, const char *why)
{
    struct nb_error err = {0};
    struct ssh_key_pub key;
    assert_int_equal(ssh_key_parse_public(text, len, &key, &err), -1);
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_string_equal(err.reason, "InvalidKey.Format");
    if (!strstr(err.msg, why)) {
        fail_msg("message \"%s\" does not contain \"%s\"", err.msg, why);
    }
}

/* --- building blobs by hand ---------------------------------------------------------------- */

static void put_u32(struct nb_buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    nb_buf_append(b, x, 4);
}

static void put_string(struct nb_buf *b, const void *data, size_t n)
{
    put_u32(b, (uint32_t)n);
    nb_buf_append(b, data, n);
}

/* Returns "<type> <base64 of blob>" (malloc()ed) and frees 'blob'. */
static char *line_of(const char *type, struct nb_buf *blob)
{
    char *b64 = nb_base64_encode(blob->data, blob->len);
    size_t size = strlen(type) + strlen(b64) + 2;
    char *line = malloc(size);
    snprintf(line, size, "%s %s", type, b64);
    free(b64);
    nb_buf_free(blob);
    return line;
}

/* An "ssh-rsa" line with exponent bytes 'e' and modulus bytes 'n' taken as they are. */
static char *rsa_line(const unsigned char *e, size_t e_len, const unsigned char *n, size_t n_len)
{
    struct nb_buf b = NB_BUF_INIT;
    put_string(&b, "ssh-rsa", 7);
    put_string(&b, e, e_len);
    put_string(&b, n, n_len);
    return line_of("ssh-rsa", &b);
}

/* --- generated keys ------------------------------------------------------------------------ */

static void test_type_names(void **state)
{
    enum ssh_key_type t;
    assert_int_equal(ssh_key_type_parse("rsa", &t), 0);
    assert_int_equal(t, SSH_KEY_RSA);
    assert_int_equal(ssh_key_type_parse("ed25519", &t), 0);
    assert_int_equal(t, SSH_KEY_ED25519);
    assert_int_equal(ssh_key_type_parse("ecdsa", &t), -1);
    assert_int_equal(ssh_key_type_parse("RSA", &t), -1);
    assert_int_equal(ssh_key_type_parse("", &t), -1);
    assert_string_equal(ssh_key_type_name(SSH_KEY_RSA), "rsa");
    assert_string_equal(ssh_key_type_name(SSH_KEY_ED25519), "ed25519");
}

/* The openssh-key-v1 container as PROTOCOL.key lays it out, read back field by field. */
static void test_ed25519_private_layout(void **state)
{
    struct nb_error err = {0};
    struct ssh_key_pair kp;
    assert_int_equal(ssh_key_generate(SSH_KEY_ED25519, "laptop key", &kp, &err), 0);
    const char *begin = "-----BEGIN OPENSSH PRIVATE KEY-----\n";
    const char *end = "-----END OPENSSH PRIVATE KEY-----\n";
    assert_memory_equal(kp.private_text, begin, strlen(begin));
    size_t len = strlen(kp.private_text);
    assert_string_equal(kp.private_text + len - strlen(end), end);

    /* Lines of 70 characters but the last; join them and decode. */
    struct nb_buf b64 = NB_BUF_INIT;
    const char *p = kp.private_text + strlen(begin);
    while (strncmp(p, "-----", 5) != 0) {
        size_t n = strcspn(p, "\n");
        assert_true(n <= 70);
        if (strncmp(p + n + 1, "-----", 5) != 0) {
            assert_int_equal(n, 70);
        }
        nb_buf_append(&b64, p, n);
        p += n + 1;
    }
    size_t raw_len;
    unsigned char *raw = nb_base64_decode(b64.data, &raw_len, &err);
    assert_non_null(raw);
    nb_buf_free(&b64);

    const unsigned char *r = raw;
    assert_memory_equal(r, "openssh-key-v1", 15); /* with its NUL */
    r += 15;
#define U32(q) ((uint32_t)(q)[0] << 24 | (uint32_t)(q)[1] << 16 | (uint32_t)(q)[2] << 8 | (q)[3])
    static const unsigned char header[] = {0,   0,   0,   4,   'n', 'o', 'n', 'e', 0, 0, 0, 4,
                                           'n', 'o', 'n', 'e', 0,   0,   0,   0,   0, 0, 0, 1};
    assert_memory_equal(r, header, sizeof header);
    r += sizeof header;
    uint32_t pub_len = U32(r);
    assert_int_equal(pub_len, 4 + 11 + 4 + 32);
    const unsigned char *pub = r + 4;
    r += 4 + pub_len;
    uint32_t sec_len = U32(r);
    r += 4;
    assert_int_equal(sec_len % 8, 0);
    assert_int_equal((size_t)(r - raw) + sec_len, raw_len);
    const unsigned char *sec = r;
    assert_int_equal(U32(sec), U32(sec + 4)); /* the two check ints */
    const unsigned char *q = sec + 8;
    assert_int_equal(U32(q), 11);
    assert_memory_equal(q + 4, "ssh-ed25519", 11);
    q += 15;
    assert_int_equal(U32(q), 32);
    assert_memory_equal(q + 4, pub + 4 + 11 + 4, 32);
    q += 36;
    assert_int_equal(U32(q), 64);
    assert_memory_equal(q + 4 + 32, pub + 4 + 11 + 4, 32); /* seed, then the public key */
    q += 68;
    assert_int_equal(U32(q), strlen("laptop key"));
    assert_memory_equal(q + 4, "laptop key", strlen("laptop key"));
    q += 4 + strlen("laptop key");
    for (unsigned char pad = 1; q < sec + sec_len; pad++, q++) {
        assert_int_equal(*q, pad);
    }
    assert_true(q - (sec + 8 + 15 + 36 + 68 + 4 + strlen("laptop key")) < 8);
#undef U32
    free(raw);

    /* The public line holds the same blob; the fingerprint is the unpadded base64 SHA-256. */
    struct ssh_key_pub parsed;
    assert_int_equal(ssh_key_parse_public(kp.public_line, strlen(kp.public_line), &parsed, &err),
                     0);
    assert_int_equal(parsed.type, SSH_KEY_ED25519);
    assert_int_equal(parsed.bits, 256);
    assert_int_equal(parsed.blob_len, pub_len);
    assert_string_equal(parsed.line, kp.public_line);
    assert_string_equal(parsed.fingerprint, kp.fingerprint);
    assert_int_equal(strlen(kp.fingerprint), 43);
    assert_null(strchr(kp.fingerprint, '='));
    ssh_key_pub_clear(&parsed);
    ssh_key_pair_clear(&kp);
    ssh_key_pair_clear(&kp); /* clearing twice is harmless */
}

static void test_ed25519_read_by_ssh_keygen(void **state)
{
    if (!have_ssh_keygen()) {
        skip();
    }
    struct tmpdir *d = *state;
    struct nb_error err = {0};
    struct ssh_key_pair kp;
    assert_int_equal(ssh_key_generate(SSH_KEY_ED25519, "my key", &kp, &err), 0);
    assert_memory_equal(kp.public_line, "ssh-ed25519 ", 12);
    char priv[128], pub[128];
    write_file(d->path, "id_ed25519", kp.private_text, priv);
    char *derived = run("ssh-keygen -y -f '%s'", priv);
    assert_non_null(derived);
    char expect[256];
    snprintf(expect, sizeof expect, "%s my key", kp.public_line); /* the comment survives too */
    assert_string_equal(derived, expect);
    free(derived);

    write_file(d->path, "id_ed25519.pub", kp.public_line, pub);
    char *fp = run("ssh-keygen -l -E sha256 -f '%s' | cut -d' ' -f2", pub);
    assert_non_null(fp);
    char want[64];
    snprintf(want, sizeof want, "SHA256:%s", kp.fingerprint);
    assert_string_equal(fp, want);
    free(fp);
    ssh_key_pair_clear(&kp);
}

static void test_rsa_read_by_ssh_keygen(void **state)
{
    if (!have_ssh_keygen()) {
        skip();
    }
    struct tmpdir *d = *state;
    struct nb_error err = {0};
    struct ssh_key_pair kp;
    assert_int_equal(ssh_key_generate(SSH_KEY_RSA, "ignored for RSA", &kp, &err), 0);
    const char *begin = "-----BEGIN RSA PRIVATE KEY-----\n";
    assert_memory_equal(kp.private_text, begin, strlen(begin));
    assert_non_null(strstr(kp.private_text, "-----END RSA PRIVATE KEY-----\n"));
    assert_memory_equal(kp.public_line, "ssh-rsa ", 8);
    char priv[128];
    write_file(d->path, "id_rsa", kp.private_text, priv);
    char *derived = run("ssh-keygen -y -f '%s'", priv);
    assert_non_null(derived);
    char *derived_key = type_and_blob(derived);
    assert_string_equal(derived_key, kp.public_line);
    free(derived_key);
    free(derived);

    /* EC2's fingerprint of a created RSA key: SHA-1 of the PKCS#8 DER private key. */
    char *sha1 = run("openssl pkcs8 -topk8 -nocrypt -in '%s' -outform DER | openssl dgst -sha1 -c"
                     " | cut -d' ' -f2",
                     priv);
    assert_non_null(sha1);
    assert_string_equal(sha1, kp.fingerprint);
    assert_int_equal(strlen(kp.fingerprint), 59);
    free(sha1);

    struct ssh_key_pub parsed;
    assert_int_equal(ssh_key_parse_public(kp.public_line, strlen(kp.public_line), &parsed, &err),
                     0);
    assert_int_equal(parsed.type, SSH_KEY_RSA);
    assert_int_equal(parsed.bits, 2048);
    assert_string_equal(parsed.line, kp.public_line);
    ssh_key_pub_clear(&parsed);
    ssh_key_pair_clear(&kp);
}

static void test_public_line_with_comment(void **state)
{
    struct nb_error err = {0};
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(pkey);
    char *bare = ssh_key_public_line(pkey, NULL, &err);
    char *with = ssh_key_public_line(pkey, "a comment", &err);
    assert_non_null(bare);
    assert_non_null(with);
    assert_int_equal(strlen(with), strlen(bare) + strlen(" a comment"));
    assert_memory_equal(with, bare, strlen(bare));
    assert_string_equal(with + strlen(bare), " a comment");
    free(bare);
    free(with);
    EVP_PKEY_free(pkey);

    /* Other kinds of key are refused, not mis-encoded. */
    pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(pkey);
    nb_error_clear(&err);
    assert_null(ssh_key_public_line(pkey, NULL, &err));
    assert_int_equal(err.code, NB_ERR_INVALID);
    nb_error_clear(&err);
    assert_null(ssh_key_openssh_private(pkey, NULL, &err));
    assert_int_equal(err.code, NB_ERR_INVALID);
    EVP_PKEY_free(pkey);
}

/* --- importing ----------------------------------------------------------------------------- */

/* Imports a key ssh-keygen made and checks the line, size and fingerprint. */
static void import_ssh_keygen_key(const char *dir, const char *type, int bits)
{
    char name[32];
    snprintf(name, sizeof name, "%s%d", type, bits);
    char *file = ssh_keygen_make(dir, name, type, bits);
    assert_non_null(file);
    struct nb_error err = {0};
    struct ssh_key_pub key;
    if (ssh_key_parse_public(file, strlen(file), &key, &err) < 0) {
        fail_msg("import of %s failed: %s", name, err.msg);
    }
    char *expect = type_and_blob(file);
    assert_string_equal(key.line, expect);
    free(expect);

    char pub[128];
    snprintf(pub, sizeof pub, "%s/%s.pub", dir, name);
    if (!strcmp(type, "ed25519")) {
        assert_int_equal(key.type, SSH_KEY_ED25519);
        assert_int_equal(key.bits, 256);
        char *fp = run("ssh-keygen -l -E sha256 -f '%s' | cut -d' ' -f2", pub);
        assert_non_null(fp);
        assert_string_equal(fp + strlen("SHA256:"), key.fingerprint);
        free(fp);
    } else {
        assert_int_equal(key.type, SSH_KEY_RSA);
        assert_int_equal(key.bits, bits);
        /* EC2's fingerprint of an imported RSA key: MD5 of the DER SubjectPublicKeyInfo. */
        char *md5 = run("ssh-keygen -e -m PKCS8 -f '%s' | openssl pkey -pubin -outform DER | "
                        "openssl dgst -md5 -c | cut -d' ' -f2",
                        pub);
        assert_non_null(md5);
        assert_string_equal(md5, key.fingerprint);
        free(md5);
    }

    /* The derived line imports again to the same key. */
    struct ssh_key_pub again;
    assert_int_equal(ssh_key_parse_public(key.line, strlen(key.line), &again, &err), 0);
    assert_string_equal(again.fingerprint, key.fingerprint);
    assert_int_equal(again.blob_len, key.blob_len);
    assert_memory_equal(again.blob, key.blob, key.blob_len);
    ssh_key_pub_clear(&again);
    ssh_key_pub_clear(&key);
    free(file);
}

static void test_import_ssh_keygen_keys(void **state)
{
    if (!have_ssh_keygen()) {
        skip();
    }
    struct tmpdir *d = *state;
    import_ssh_keygen_key(d->path, "ed25519", 0);
    import_ssh_keygen_key(d->path, "rsa", 2048);
    import_ssh_keygen_key(d->path, "rsa", 3072);
    import_ssh_keygen_key(d->path, "rsa", 4096);
}

static void test_import_rejects_other_ssh_keygen_keys(void **state)
{
    if (!have_ssh_keygen()) {
        skip();
    }
    struct tmpdir *d = *state;
    char *ecdsa = ssh_keygen_make(d->path, "ecdsa", "ecdsa", 256);
    assert_non_null(ecdsa);
    expect_rejected(ecdsa, strlen(ecdsa), "ECDSA keys are not supported");
    free(ecdsa);
    char *small = ssh_keygen_make(d->path, "rsa1024", "rsa", 1024);
    assert_non_null(small);
    expect_rejected(small, strlen(small), "the RSA key has 1024 bits; at least 2048");
    free(small);
    char *dsa = ssh_keygen_make(d->path, "dsa", "dsa", 0); /* may be compiled out of OpenSSH */
    if (dsa) {
        expect_rejected(dsa, strlen(dsa), "DSA keys are not supported");
        free(dsa);
    }
}

static void test_import_tolerates_white_space(void **state)
{
    struct nb_error err = {0};
    struct ssh_key_pair kp;
    assert_int_equal(ssh_key_generate(SSH_KEY_ED25519, NULL, &kp, &err), 0);
    const char *b64 = strchr(kp.public_line, ' ') + 1;
    static const char *const forms[] = {
        "ssh-ed25519 %s",
        "ssh-ed25519 %s\n",
        "ssh-ed25519 %s\r\n",
        "  \n\tssh-ed25519 \t %s user@host with spaces  \r\n\n  ",
        "ssh-ed25519 %s comment\twith\ttabs\n",
        "ssh-ed25519 %s \xc3\xa9t\xc3\xa9 (UTF-8 comment)",
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, forms[i], b64);
        struct ssh_key_pub key;
        if (ssh_key_parse_public(text, strlen(text), &key, &err) < 0) {
            fail_msg("form %zu rejected: %s", i, err.msg);
        }
        assert_string_equal(key.line, kp.public_line);
        assert_string_equal(key.fingerprint, kp.fingerprint);
        ssh_key_pub_clear(&key);
    }
    /* Not NUL-terminated: only 'len' bytes are read. */
    char *copy = malloc(strlen(kp.public_line));
    memcpy(copy, kp.public_line, strlen(kp.public_line));
    struct ssh_key_pub key;
    assert_int_equal(ssh_key_parse_public(copy, strlen(kp.public_line), &key, &err), 0);
    ssh_key_pub_clear(&key);
    free(copy);
    ssh_key_pair_clear(&kp);
}

static void test_import_rejects_malformed(void **state)
{
    struct nb_error err = {0};
    struct ssh_key_pair kp;
    assert_int_equal(ssh_key_generate(SSH_KEY_ED25519, NULL, &kp, &err), 0);
    const char *line = kp.public_line;
    const char *b64 = strchr(line, ' ') + 1;
    char text[20000];

    expect_rejected("", 0, "empty");
    expect_rejected(" \r\n\t ", 5, "empty");
    expect_rejected("garbage", 7, "unsupported key type \"garbage\"");
    expect_rejected("\xff\xfe\x80", 3, "does not start with a key type");
    expect_rejected("ssh-ed25519", 11, "no base64 key");
    expect_rejected("ssh-ed25519 \n", 13, "no base64 key");
    expect_rejected("ssh-ed25519\nAAAA", 16, "no base64 key");
    expect_rejected("ssh-dss AAAAB3NzaC1kc3M=", 24, "DSA keys are not supported");
    expect_rejected("sk-ssh-ed25519@openssh.com AAAA", 31, "security key");
    expect_rejected("ssh-ed25519-cert-v01@openssh.com AAAA", 37, "certificates");
    expect_rejected("ssh-ed25519 !!!!", 16, "not valid base64");
    expect_rejected("ssh-ed25519 AAAA", 16, "truncated");

    /* Control characters, an embedded NUL, a second line. */
    snprintf(text, sizeof text, "%s\x01", line);
    expect_rejected(text, strlen(text), "control character 0x01");
    memcpy(text, line, strlen(line) + 1);
    text[5] = '\0';
    expect_rejected(text, strlen(line), "control character 0x00");
    snprintf(text, sizeof text, "%s\n%s\n", line, line);
    expect_rejected(text, strlen(text), "more than one line");

    /* Truncated base64: the blob no longer decodes or is cut short. */
    for (size_t cut = 1; cut < strlen(b64); cut++) {
        snprintf(text, sizeof text, "ssh-ed25519 %.*s", (int)(strlen(b64) - cut), b64);
        expect_rejected(text, strlen(text), "");
    }

    /* Oversized. */
    memset(text, ' ', sizeof text);
    memcpy(text, line, strlen(line));
    expect_rejected(text, 16 * 1024 + 1, "more than 16384");

    /* The type in the blob differs from the one on the line. */
    snprintf(text, sizeof text, "ssh-rsa %s", b64);
    expect_rejected(text, strlen(text), "not the one before it");

    /* ED25519 keys of the wrong size, trailing bytes. */
    unsigned char pub[33] = {0};
    struct nb_buf b = NB_BUF_INIT;
    put_string(&b, "ssh-ed25519", 11);
    put_string(&b, pub, 31);
    char *l = line_of("ssh-ed25519", &b);
    expect_rejected(l, strlen(l), "exactly 32 bytes");
    free(l);
    put_string(&b, "ssh-ed25519", 11);
    put_string(&b, pub, 33);
    l = line_of("ssh-ed25519", &b);
    expect_rejected(l, strlen(l), "exactly 32 bytes");
    free(l);
    put_string(&b, "ssh-ed25519", 11);
    put_string(&b, pub, 32);
    nb_buf_append(&b, "x", 1);
    l = line_of("ssh-ed25519", &b);
    expect_rejected(l, strlen(l), "exactly 32 bytes");
    free(l);
    put_string(&b, "ssh-ed25519", 11);
    put_u32(&b, 0xffffffffu); /* a length far past the end */
    l = line_of("ssh-ed25519", &b);
    expect_rejected(l, strlen(l), "truncated");
    free(l);
    ssh_key_pair_clear(&kp);
}

static void test_import_rejects_bad_rsa(void **state)
{
    unsigned char mod[257];
    memset(mod, 0xc5, sizeof mod); /* 2048 bits, top bit set, odd */
    mod[0] = 0;
    static const unsigned char e65537[] = {1, 0, 1};
    char *l;

    /* A well-formed one first, so that the rejections below are about one field each. */
    l = rsa_line(e65537, 3, mod, sizeof mod);
    struct nb_error err = {0};
    struct ssh_key_pub key;
    assert_int_equal(ssh_key_parse_public(l, strlen(l), &key, &err), 0);
    assert_int_equal(key.bits, 2048);
    assert_int_equal(strlen(key.fingerprint), 47); /* 16 bytes as colon hex */
    ssh_key_pub_clear(&key);
    free(l);

    l = rsa_line(e65537, 3, mod + 1, sizeof mod - 1);
    expect_rejected(l, strlen(l), "negative");
    free(l);
    static const unsigned char e_zero_lead[] = {0, 1, 0, 1};
    l = rsa_line(e_zero_lead, 4, mod, sizeof mod);
    expect_rejected(l, strlen(l), "superfluous leading zero");
    free(l);
    l = rsa_line(e65537, 0, mod, sizeof mod);
    expect_rejected(l, strlen(l), "exponent is zero");
    free(l);
    static const unsigned char e_even[] = {1, 0, 0};
    l = rsa_line(e_even, 3, mod, sizeof mod);
    expect_rejected(l, strlen(l), "must be odd");
    free(l);
    static const unsigned char e_one[] = {1};
    l = rsa_line(e_one, 1, mod, sizeof mod);
    expect_rejected(l, strlen(l), "at least 3");
    free(l);
    static const unsigned char e_big[] = {1, 0, 0, 0, 0, 0, 0, 0, 1};
    l = rsa_line(e_big, sizeof e_big, mod, sizeof mod);
    expect_rejected(l, strlen(l), "at most 64 bits");
    free(l);
    mod[sizeof mod - 1] = 0xc4;
    l = rsa_line(e65537, 3, mod, sizeof mod);
    expect_rejected(l, strlen(l), "modulus must be odd");
    free(l);
    mod[sizeof mod - 1] = 0xc5;
    l = rsa_line(e65537, 3, mod, 129); /* 1024 bits */
    expect_rejected(l, strlen(l), "has 1024 bits");
    free(l);

    /* Missing modulus, trailing bytes. */
    struct nb_buf b = NB_BUF_INIT;
    put_string(&b, "ssh-rsa", 7);
    put_string(&b, e65537, 3);
    l = line_of("ssh-rsa", &b);
    expect_rejected(l, strlen(l), "truncated");
    free(l);
    put_string(&b, "ssh-rsa", 7);
    put_string(&b, e65537, 3);
    put_string(&b, mod, sizeof mod);
    nb_buf_append(&b, "\0\0", 2);
    l = line_of("ssh-rsa", &b);
    expect_rejected(l, strlen(l), "2 unexpected bytes");
    free(l);

    /* Larger than OpenSSH's 16384-bit limit. */
    unsigned char *huge = malloc(16384 / 8 + 2);
    memset(huge, 0x45, 16384 / 8 + 2);
    l = rsa_line(e65537, 3, huge, 16384 / 8 + 2);
    expect_rejected(l, strlen(l), "at most 16384 bits");
    free(l);
    free(huge);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_ed25519_private_layout),
        cmocka_unit_test_setup_teardown(test_ed25519_read_by_ssh_keygen, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_rsa_read_by_ssh_keygen, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test(test_public_line_with_comment),
        cmocka_unit_test_setup_teardown(test_import_ssh_keygen_keys, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_import_rejects_other_ssh_keygen_keys, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test(test_import_tolerates_white_space),
        cmocka_unit_test(test_import_rejects_malformed),
        cmocka_unit_test(test_import_rejects_bad_rsa),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
