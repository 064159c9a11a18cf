/* Unit tests of crypto.c: hashes and HMAC against published vectors, hex and base64, sealing
 * secrets with AES-256-GCM, and the master key file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nubo/crypto.h"
#include "nubo/error.h"

static void hmac_hex(const void *key, size_t key_len, const char *data, char out[65])
{
    uint8_t mac[NB_SHA256_LEN];
    nb_hmac_sha256(key, key_len, data, strlen(data), mac);
    nb_hex_encode(mac, sizeof mac, out);
}

static void test_sha256_vectors(void **state)
{
    char hex[65];
    nb_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    nb_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    uint8_t raw[NB_SHA256_LEN];
    nb_sha256("abc", 3, raw);
    assert_int_equal(raw[0], 0xba);
    assert_int_equal(raw[31], 0xad);
}

/* RFC 4231 test cases 1, 2 and 6 (key longer than a block), and an empty key. */
static void test_hmac_rfc4231(void **state)
{
    char hex[65];
    uint8_t key1[20];
    memset(key1, 0x0b, sizeof key1);
    hmac_hex(key1, sizeof key1, "Hi There", hex);
    assert_string_equal(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

    hmac_hex("Jefe", 4, "what do ya want for nothing?", hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

    uint8_t key6[131];
    memset(key6, 0xaa, sizeof key6);
    hmac_hex(key6, sizeof key6, "Test Using Larger Than Block-Size Key - Hash Key First", hex);
    assert_string_equal(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");

    /* An empty key after a non-empty one: the previous key must not be reused. */
    hmac_hex("", 0, "abc", hex);
    assert_string_equal(hex, "fd7adb152c05ef80dccf50a1fa4c05d5a3ec6da95575fc312ae7c5d091836351");
    hmac_hex(NULL, 0, "abc", hex);
    assert_string_equal(hex, "fd7adb152c05ef80dccf50a1fa4c05d5a3ec6da95575fc312ae7c5d091836351");
}

static void *hmac_thread(void *arg)
{
    int *failures = arg;
    for (int i = 0; i < 2000; i++) {
        char hex[65];
        hmac_hex("Jefe", 4, "what do ya want for nothing?", hex);
        if (strcmp(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843") != 0) {
            (*failures)++;
        }
        nb_sha256_hex("abc", 3, hex);
        if (strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") != 0) {
            (*failures)++;
        }
    }
    return NULL;
}

/* Each thread has its own contexts: concurrent use gives the right answers. */
static void test_hmac_threads(void **state)
{
    pthread_t threads[4];
    int failures[4] = {0};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&threads[i], NULL, hmac_thread, &failures[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(failures[i], 0);
    }
}

/* The expected value comes from `printf %s i-0123456789abcdef0 | openssl dgst -sha256 -hmac
 * <token>`: the agent and the gateway must agree with an independent HMAC. */
static void test_vnc_password(void **state)
{
    (void)state;
    static const char token[] =
        "h-0123456789abcdef0:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    char pw[9];
    memset(pw, 'x', sizeof pw);
    nb_vnc_password(token, "i-0123456789abcdef0", pw);
    assert_string_equal(pw, "148b78d3");

    /* Another instance, another password. */
    char other[9];
    nb_vnc_password(token, "i-0123456789abcdef1", other);
    assert_int_equal(strlen(other), 8);
    assert_string_not_equal(pw, other);
}

static void test_hex_round_trip(void **state)
{
    const uint8_t data[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    char hex[2 * sizeof data + 1];
    nb_hex_encode(data, sizeof data, hex);
    assert_string_equal(hex, "00017f80abff");
    uint8_t back[sizeof data];
    assert_int_equal(nb_hex_decode(hex, back, sizeof back), 0);
    assert_memory_equal(back, data, sizeof data);
    assert_int_equal(nb_hex_decode("00017F80ABFF", back, sizeof back), 0);
    assert_memory_equal(back, data, sizeof data);
}

static void test_hex_rejects(void **state)
{
    uint8_t out[3];
    assert_int_equal(nb_hex_decode("0g0000", out, 3), -1);
    assert_int_equal(nb_hex_decode("00 000", out, 3), -1);
    assert_int_equal(nb_hex_decode("0000", out, 3), -1); /* short */
    assert_int_equal(nb_hex_decode("00000", out, 3), -1);
    assert_int_equal(nb_hex_decode(NULL, out, 3), -1);
}

static void test_ct_equal(void **state)
{
    assert_true(nb_ct_equal("abcdef", "abcdef", 6));
    assert_false(nb_ct_equal("abcdef", "abcdeg", 6));
    assert_false(nb_ct_equal("xbcdef", "abcdef", 6));
    assert_true(nb_ct_equal("a", "b", 0));
}

/* RFC 4648 section 10. */
static void test_base64_vectors(void **state)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const encoded[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                          "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        char *e = nb_base64_encode(plain[i], strlen(plain[i]));
        assert_non_null(e);
        assert_string_equal(e, encoded[i]);
        free(e);
        size_t len = 99;
        struct nb_error err;
        char *d = nb_base64_decode(encoded[i], &len, &err);
        assert_non_null(d);
        assert_int_equal(len, strlen(plain[i]));
        assert_memory_equal(d, plain[i], len);
        free(d);
    }
}

static void test_base64_binary_round_trip(void **state)
{
    uint8_t data[256];
    for (size_t i = 0; i < sizeof data; i++) {
        data[i] = (uint8_t)(255 - i);
    }
    for (size_t n = 0; n <= sizeof data; n += 17) {
        char *e = nb_base64_encode(data, n);
        assert_non_null(e);
        size_t len;
        uint8_t *d = nb_base64_decode(e, &len, NULL);
        assert_non_null(d);
        assert_int_equal(len, n);
        assert_memory_equal(d, data, n);
        free(d);
        free(e);
    }
}

static void test_base64_rejects(void **state)
{
    static const char *const bad[] = {
        "Zm9",                                    /* length not a multiple of 4 */
        "Zm9v!A==",                               /* not in the alphabet */
        "Zg=a",                                   /* padding in the middle */
        "=Zm9",     "Zm9v====", "====",   "Zh==", /* non-zero bits after the last byte */
        "Zm9=",     "Zm 9v",    "Zm9v\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct nb_error err;
        nb_error_clear(&err);
        size_t len;
        void *d = nb_base64_decode(bad[i], &len, &err);
        if (d) {
            fail_msg("base64 \"%s\" was accepted", bad[i]);
        }
        assert_int_equal(err.code, NB_ERR_INVALID);
        assert_true(strncmp(err.msg, "invalid base64: ", 16) == 0);
    }
}

static void test_seal_round_trip(void **state)
{
    uint8_t key[NB_MASTER_KEY_LEN];
    memset(key, 0x42, sizeof key);
    struct nb_error err;
    const char *secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    char *sealed = nb_seal(key, secret, strlen(secret), "akid:AKIDEXAMPLE", &err);
    assert_non_null(sealed);
    assert_true(strncmp(sealed, "v1:", 3) == 0);
    size_t len;
    char *plain = nb_unseal(key, sealed, "akid:AKIDEXAMPLE", &len, &err);
    assert_non_null(plain);
    assert_int_equal(len, strlen(secret));
    assert_string_equal(plain, secret);
    free(plain);

    /* A fresh nonce each time: sealing twice gives two texts. */
    char *again = nb_seal(key, secret, strlen(secret), "akid:AKIDEXAMPLE", &err);
    assert_non_null(again);
    assert_string_not_equal(again, sealed);
    free(again);
    free(sealed);

    /* Empty plaintext and no associated data. */
    sealed = nb_seal(key, "", 0, NULL, &err);
    assert_non_null(sealed);
    plain = nb_unseal(key, sealed, NULL, &len, &err);
    assert_non_null(plain);
    assert_int_equal(len, 0);
    assert_string_equal(plain, "");
    free(plain);
    free(sealed);
}

static void expect_unseal_fails(const uint8_t *key, const char *sealed, const char *aad)
{
    struct nb_error err;
    nb_error_clear(&err);
    size_t len;
    void *plain = nb_unseal(key, sealed, aad, &len, &err);
    assert_null(plain);
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_true(strncmp(err.msg, "could not unseal secret: ", 25) == 0);
}

static void test_seal_tamper_rejected(void **state)
{
    uint8_t key[NB_MASTER_KEY_LEN];
    memset(key, 0x42, sizeof key);
    struct nb_error err;
    char *sealed = nb_seal(key, "s3cr3t-value", 12, "akid:A1", &err);
    assert_non_null(sealed);

    /* Every byte of nonce, ciphertext and tag is covered: flip one bit in each position. */
    size_t raw_len;
    uint8_t *raw = nb_base64_decode(sealed + 3, &raw_len, &err);
    assert_non_null(raw);
    assert_int_equal(raw_len, 12 + 12 + 16);
    for (size_t i = 0; i < raw_len; i++) {
        raw[i] ^= 0x01;
        char *b64 = nb_base64_encode(raw, raw_len);
        char text[128];
        snprintf(text, sizeof text, "v1:%s", b64);
        expect_unseal_fails(key, text, "akid:A1");
        free(b64);
        raw[i] ^= 0x01;
    }
    /* Truncated: no room for nonce and tag. */
    char *b64 = nb_base64_encode(raw, 27);
    char text[128];
    snprintf(text, sizeof text, "v1:%s", b64);
    expect_unseal_fails(key, text, "akid:A1");
    free(b64);
    free(raw);

    expect_unseal_fails(key, sealed, "akid:A2"); /* other associated data */
    expect_unseal_fails(key, sealed, NULL);
    uint8_t wrong[NB_MASTER_KEY_LEN];
    memcpy(wrong, key, sizeof wrong);
    wrong[31] ^= 0x80;
    expect_unseal_fails(wrong, sealed, "akid:A1");
    expect_unseal_fails(key, sealed + 3, "akid:A1"); /* no prefix */
    expect_unseal_fails(key, "v2:AAAA", "akid:A1");
    expect_unseal_fails(key, "v1:not base64!", "akid:A1");
    expect_unseal_fails(key, NULL, "akid:A1");
    free(sealed);
}

struct tmpdir {
    char path[64];
};

static int tmpdir_setup(void **state)
{
    struct tmpdir *d = calloc(1, sizeof *d);
    snprintf(d->path, sizeof d->path, "/tmp/nubo-test-crypto-XXXXXX");
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

static void test_master_key_create_and_reload(void **state)
{
    struct tmpdir *d = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/master.key", d->path);
    struct nb_error err;
    uint8_t key[NB_MASTER_KEY_LEN];
    uint8_t again[NB_MASTER_KEY_LEN];

    /* Absent and not to be created. */
    assert_int_equal(nb_master_key_load(path, false, key, &err), -1);
    assert_int_equal(err.code, NB_ERR_IO);

    assert_int_equal(nb_master_key_load(path, true, key, &err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 65);

    assert_int_equal(nb_master_key_load(path, false, again, &err), 0);
    assert_memory_equal(key, again, sizeof key);
    /* 'create' does not replace an existing key. */
    assert_int_equal(nb_master_key_load(path, true, again, &err), 0);
    assert_memory_equal(key, again, sizeof key);

    /* No temporary file is left behind. */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 1", d->path);
    assert_int_equal(system(cmd), 0);
}

static void test_master_key_readable_refused(void **state)
{
    struct tmpdir *d = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/master.key", d->path);
    struct nb_error err;
    uint8_t key[NB_MASTER_KEY_LEN];
    assert_int_equal(nb_master_key_load(path, true, key, &err), 0);

    assert_int_equal(chmod(path, 0644), 0);
    nb_error_clear(&err);
    assert_int_equal(nb_master_key_load(path, false, key, &err), -1);
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_non_null(strstr(err.msg, "accessible by group or others"));
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(nb_master_key_load(path, true, key, &err), -1);
    assert_int_equal(chmod(path, 0400), 0);
    assert_int_equal(nb_master_key_load(path, false, key, &err), 0);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_master_key_malformed(void **state)
{
    struct tmpdir *d = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/master.key", d->path);
    struct nb_error err;
    uint8_t key[NB_MASTER_KEY_LEN];
    const char *good = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    write_file(path, good, 0600); /* no newline is fine */
    assert_int_equal(nb_master_key_load(path, false, key, &err), 0);
    assert_int_equal(key[0], 0x00);
    assert_int_equal(key[31], 0x1f);

    static const char *const bad[] = {
        "",
        "00010203",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g\n",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n\n",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(path, bad[i], 0600);
        nb_error_clear(&err);
        assert_int_equal(nb_master_key_load(path, true, key, &err), -1);
        assert_int_equal(err.code, NB_ERR_INVALID);
        assert_non_null(strstr(err.msg, "is malformed"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test(test_hmac_threads),
        cmocka_unit_test(test_vnc_password),
        cmocka_unit_test(test_hex_round_trip),
        cmocka_unit_test(test_hex_rejects),
        cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_base64_vectors),
        cmocka_unit_test(test_base64_binary_round_trip),
        cmocka_unit_test(test_base64_rejects),
        cmocka_unit_test(test_seal_round_trip),
        cmocka_unit_test(test_seal_tamper_rejected),
        cmocka_unit_test_setup_teardown(test_master_key_create_and_reload, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_master_key_readable_refused, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_master_key_malformed, tmpdir_setup, tmpdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
