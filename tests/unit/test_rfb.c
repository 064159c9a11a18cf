/* Unit tests of the RFB handshakes (api-gateway/rfb.c): the client side against scripted VNC
 * servers of every version, the server side against scripted browsers, VNC Authentication's
 * DES against known answers, and the blocking driver over a socketpair. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rfb.h"

#include "nbtest.h"
#include "nubo/error.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Expected answers computed independently of this code, with OpenSSL's command line: the key
 * is the password zero-padded to 8 bytes, each byte's bits reversed ("secret" gives
 * ce a6 c6 4e a6 2e 00 00; "password" gives 0e 86 ce ce ee f6 4e 26):
 *
 *   printf 000102030405060708090a0b0c0d0e0f | xxd -r -p |
 *     openssl enc -des-ecb -provider legacy -provider default -nopad -K cea6c64ea62e0000 | xxd -p
 *   printf ffeeddccbbaa99887766554433221100 | xxd -r -p |
 *     openssl enc -des-ecb -provider legacy -provider default -nopad -K 0e86ceceeef64e26 | xxd -p
 */
static const uint8_t challenge_a[16] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                        0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
static const uint8_t answer_secret_a[16] = {0xee, 0x22, 0x53, 0x9f, 0x33, 0xa5, 0x98, 0x3e,
                                            0xc1, 0x2f, 0x9c, 0x2e, 0xdb, 0xc9, 0x95, 0xdd};
static const uint8_t challenge_b[16] = {0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88,
                                        0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00};
static const uint8_t answer_password_b[16] = {0x08, 0x6c, 0x5f, 0xea, 0xe2, 0x1b, 0xeb, 0x59,
                                              0x73, 0x8c, 0xfb, 0x96, 0x21, 0x67, 0x89, 0x19};

static void des_known_answers(void **state)
{
    struct nb_error err = {0};
    uint8_t out[16];
    assert_zero(rfb_vnc_auth_response("secret", challenge_a, out, &err), err);
    assert_memory_equal(out, answer_secret_a, 16);
    assert_zero(rfb_vnc_auth_response("password", challenge_b, out, &err), err);
    assert_memory_equal(out, answer_password_b, 16);
    /* Only 8 bytes count, as in every VNC server. */
    assert_zero(rfb_vnc_auth_response("password-and-more", challenge_b, out, &err), err);
    assert_memory_equal(out, answer_password_b, 16);
}

/* Feeds 'len' bytes to the client, checks the status and that all were used, and that the
 * output is 'want' ('want_len' bytes); clears the output. */
static enum rfb_status client_step(struct rfb_client *c, const void *in, size_t len,
                                   const void *want, size_t want_len, struct nb_error *err)
{
    size_t used = 0;
    enum rfb_status st = rfb_client_feed(c, in, len, &used, err);
    if (st != RFB_ERROR) {
        assert_int_equal(used, len);
    }
    assert_int_equal(c->out_len, want_len);
    if (want_len) {
        assert_memory_equal(c->out, want, want_len);
    }
    c->out_len = 0;
    return st;
}

static void client_v38_vnc_auth(void **state)
{
    struct nb_error err = {0};
    struct rfb_client c;
    uint8_t choice = 2;
    rfb_client_init(&c, "secret");
    assert_int_equal(rfb_client_need(&c), 12);
    assert_int_equal(client_step(&c, "RFB 003.008\n", 12, "RFB 003.008\n", 12, &err), RFB_MORE);
    assert_int_equal(c.version, RFB_V3_8);
    assert_int_equal(client_step(&c, "\x02\x01\x02", 3, &choice, 1, &err), RFB_MORE);
    assert_int_equal(rfb_client_need(&c), 16);
    assert_int_equal(client_step(&c, challenge_a, 16, answer_secret_a, 16, &err), RFB_MORE);
    assert_int_equal(client_step(&c, "\0\0\0\0", 4, NULL, 0, &err), RFB_DONE);
    assert_int_equal(rfb_client_need(&c), 0);
}

/* The same server, its bytes arriving one at a time, and then all at once with more behind. */
static void client_any_split(void **state)
{
    uint8_t script[12 + 2 + 16 + 4 + 5];
    memcpy(script, "RFB 003.008\n\x01\x02", 14);
    memcpy(script + 14, challenge_a, 16);
    memcpy(script + 30,
           "\0\0\0\0"
           "after",
           9);
    uint8_t want[12 + 1 + 16];
    memcpy(want, "RFB 003.008\n\x02", 13);
    memcpy(want + 13, answer_secret_a, 16);

    struct nb_error err = {0};
    struct rfb_client c;
    rfb_client_init(&c, "secret");
    uint8_t out[64];
    size_t out_len = 0;
    enum rfb_status st = RFB_MORE;
    size_t i = 0;
    for (; st == RFB_MORE; i++) {
        size_t used;
        st = rfb_client_feed(&c, script + i, 1, &used, &err);
        memcpy(out + out_len, c.out, c.out_len);
        out_len += c.out_len;
        c.out_len = 0;
    }
    assert_int_equal(st, RFB_DONE);
    assert_int_equal(i, 34);
    assert_int_equal(out_len, sizeof want);
    assert_memory_equal(out, want, sizeof want);

    rfb_client_init(&c, "secret");
    size_t used;
    assert_int_equal(rfb_client_feed(&c, script, sizeof script, &used, &err), RFB_DONE);
    assert_int_equal(used, 34); /* "after" belongs to the relay */
    assert_int_equal(c.out_len, sizeof want);
    assert_memory_equal(c.out, want, sizeof want);
}

static void client_versions(void **state)
{
    struct nb_error err = {0};
    struct rfb_client c;
    uint8_t choice = 2;
    const struct {
        const char *server;
        const char *reply;
    } ok[] = {
        {"RFB 003.003\n", "RFB 003.003\n"}, {"RFB 003.005\n", "RFB 003.003\n"},
        {"RFB 003.007\n", "RFB 003.007\n"}, {"RFB 003.008\n", "RFB 003.008\n"},
        {"RFB 003.889\n", "RFB 003.008\n"}, {"RFB 004.001\n", "RFB 003.008\n"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        rfb_client_init(&c, "secret");
        assert_int_equal(client_step(&c, ok[i].server, 12, ok[i].reply, 12, &err), RFB_MORE);
        if (c.version == RFB_V3_3) {
            /* 3.3: the server names the type, as a u32. */
            assert_int_equal(client_step(&c, "\0\0\0\x02", 4, NULL, 0, &err), RFB_MORE);
        } else {
            assert_int_equal(client_step(&c, "\x01\x02", 2, &choice, 1, &err), RFB_MORE);
        }
        assert_int_equal(client_step(&c, challenge_a, 16, answer_secret_a, 16, &err), RFB_MORE);
        assert_int_equal(client_step(&c, "\0\0\0\0", 4, NULL, 0, &err), RFB_DONE);
    }
    const char *bad[] = {"RFB 003.002\n", "RFB 002.009\n", "RFB 003.00x\n", "HTTP/1.1 200",
                         "RFB 003.008 "};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        rfb_client_init(&c, "secret");
        assert_int_equal(client_step(&c, bad[i], 12, NULL, 0, &err), RFB_ERROR);
        assert_int_equal(err.code, NB_ERR_INVALID);
        assert_non_null(strstr(err.msg, "VNC server sent an unsupported version"));
    }
}

static void client_wrong_password(void **state)
{
    struct nb_error err = {0};
    struct rfb_client c;
    uint8_t choice = 2;

    /* 3.8: a reason follows. */
    rfb_client_init(&c, "wrong");
    client_step(&c, "RFB 003.008\n", 12, "RFB 003.008\n", 12, &err);
    client_step(&c, "\x01\x02", 2, &choice, 1, &err);
    size_t used;
    rfb_client_feed(&c, challenge_a, 16, &used, &err);
    assert_memory_not_equal(c.out, answer_secret_a, 16);
    c.out_len = 0;
    assert_int_equal(client_step(&c, "\0\0\0\x01\0\0\0\x15", 8, NULL, 0, &err), RFB_MORE);
    assert_int_equal(rfb_client_need(&c), 21);
    assert_int_equal(client_step(&c, "Authentication failed", 21, NULL, 0, &err), RFB_ERROR);
    assert_int_equal(err.code, NB_ERR_AUTH);
    assert_string_equal(err.msg, "VNC server refused the password: Authentication failed");
    /* A failed handshake stays failed. */
    assert_int_equal(rfb_client_feed(&c, (const uint8_t *)"x", 1, &used, &err), RFB_ERROR);

    /* 3.7 and 3.3: no reason. */
    const char *versions[] = {"RFB 003.007\n", "RFB 003.003\n"};
    for (int i = 0; i < 2; i++) {
        rfb_client_init(&c, "wrong");
        client_step(&c, versions[i], 12, versions[i], 12, &err);
        if (i == 0) {
            client_step(&c, "\x01\x02", 2, &choice, 1, &err);
        } else {
            client_step(&c, "\0\0\0\x02", 4, NULL, 0, &err);
        }
        rfb_client_feed(&c, challenge_a, 16, &used, &err);
        c.out_len = 0;
        assert_int_equal(client_step(&c, "\0\0\0\x01", 4, NULL, 0, &err), RFB_ERROR);
        assert_int_equal(err.code, NB_ERR_AUTH);
        assert_string_equal(err.msg, "VNC server refused the password");
    }
}

static void client_security_types(void **state)
{
    struct nb_error err = {0};
    struct rfb_client c;
    uint8_t none = 1;

    /* A password is set but the server offers only None and Tight (16). */
    rfb_client_init(&c, "secret");
    client_step(&c, "RFB 003.008\n", 12, "RFB 003.008\n", 12, &err);
    assert_int_equal(client_step(&c, "\x02\x01\x10", 3, NULL, 0, &err), RFB_ERROR);
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_string_equal(err.msg, "VNC server offers no supported security type");
    assert_non_null(strstr(err.detail, "it offers 1, 16"));

    /* No password: None, with a SecurityResult in 3.8 only (RFC 6143 §7.2.1). */
    rfb_client_init(&c, NULL);
    client_step(&c, "RFB 003.008\n", 12, "RFB 003.008\n", 12, &err);
    assert_int_equal(client_step(&c, "\x02\x02\x01", 3, &none, 1, &err), RFB_MORE);
    assert_int_equal(client_step(&c, "\0\0\0\0", 4, NULL, 0, &err), RFB_DONE);
    rfb_client_init(&c, NULL);
    client_step(&c, "RFB 003.007\n", 12, "RFB 003.007\n", 12, &err);
    assert_int_equal(client_step(&c, "\x01\x01", 2, &none, 1, &err), RFB_DONE);
    rfb_client_init(&c, NULL);
    client_step(&c, "RFB 003.003\n", 12, "RFB 003.003\n", 12, &err);
    assert_int_equal(client_step(&c, "\0\0\0\x01", 4, NULL, 0, &err), RFB_DONE);

    /* No password but the server wants one. */
    rfb_client_init(&c, NULL);
    client_step(&c, "RFB 003.008\n", 12, "RFB 003.008\n", 12, &err);
    assert_int_equal(client_step(&c, "\x01\x02", 2, NULL, 0, &err), RFB_ERROR);
    assert_string_equal(err.msg, "VNC server offers no supported security type");
    rfb_client_init(&c, NULL);
    client_step(&c, "RFB 003.003\n", 12, "RFB 003.003\n", 12, &err);
    assert_int_equal(client_step(&c, "\0\0\0\x02", 4, NULL, 0, &err), RFB_ERROR);
    assert_non_null(strstr(err.detail, "no password is set"));
}

static void client_connection_refused(void **state)
{
    struct nb_error err = {0};
    struct rfb_client c;

    rfb_client_init(&c, "secret");
    client_step(&c, "RFB 003.008\n", 12, "RFB 003.008\n", 12, &err);
    assert_int_equal(client_step(&c,
                                 "\0\0\0\0\x03"
                                 "max",
                                 8, NULL, 0, &err),
                     RFB_ERROR);
    assert_int_equal(err.code, NB_ERR_UNAVAILABLE);
    assert_string_equal(err.msg, "VNC server refused the connection: max");

    /* 3.3, with a reason longer than what is kept and bytes that are not printable. */
    rfb_client_init(&c, "secret");
    client_step(&c, "RFB 003.003\n", 12, "RFB 003.003\n", 12, &err);
    assert_int_equal(client_step(&c, "\0\0\0\0\0\0\x01\x2c", 8, NULL, 0, &err), RFB_MORE);
    uint8_t reason[300];
    memset(reason, 'r', sizeof reason);
    reason[0] = '\n';
    assert_int_equal(client_step(&c, reason, 150, NULL, 0, &err), RFB_MORE);
    assert_int_equal(client_step(&c, reason, 150, NULL, 0, &err), RFB_ERROR);
    assert_int_equal(strlen(err.msg), strlen("VNC server refused the connection: ") + 255);
    assert_non_null(strstr(err.msg, ": ?rrr"));

    /* An empty reason. */
    rfb_client_init(&c, "secret");
    client_step(&c, "RFB 003.007\n", 12, "RFB 003.007\n", 12, &err);
    assert_int_equal(client_step(&c, "\0\0\0\0\0", 5, NULL, 0, &err), RFB_ERROR);
    assert_string_equal(err.msg, "VNC server refused the connection");
}

/* --- toward the browser --- */

static enum rfb_status server_step(struct rfb_server *s, const void *in, size_t len,
                                   const void *want, size_t want_len, struct nb_error *err)
{
    size_t used = 0;
    enum rfb_status st = rfb_server_feed(s, in, len, &used, err);
    assert_int_equal(used, len);
    assert_int_equal(s->out_len, want_len);
    if (want_len) {
        assert_memory_equal(s->out, want, want_len);
    }
    s->out_len = 0;
    return st;
}

static void server_every_version(void **state)
{
    struct nb_error err = {0};
    struct rfb_server s;

    rfb_server_init(&s, NULL);
    assert_int_equal(s.out_len, 12);
    assert_memory_equal(s.out, "RFB 003.008\n", 12);
    s.out_len = 0;
    assert_int_equal(server_step(&s, "RFB 003.008\n", 12, "\x01\x01", 2, &err), RFB_MORE);
    assert_int_equal(s.version, RFB_V3_8);
    assert_int_equal(server_step(&s, "\x01", 1, "\0\0\0\0", 4, &err), RFB_DONE);
    assert_int_equal(rfb_server_need(&s), 0);

    rfb_server_init(&s, NULL);
    s.out_len = 0;
    assert_int_equal(server_step(&s, "RFB 003.007\n", 12, "\x01\x01", 2, &err), RFB_MORE);
    assert_int_equal(server_step(&s, "\x01", 1, NULL, 0, &err), RFB_DONE); /* no result */

    rfb_server_init(&s, NULL);
    s.out_len = 0;
    assert_int_equal(server_step(&s, "RFB 003.003\n", 12, "\0\0\0\x01", 4, &err), RFB_DONE);
    assert_int_equal(s.version, RFB_V3_3);

    /* The whole client side in one go, ClientInit included: that byte is not used. */
    rfb_server_init(&s, NULL);
    s.out_len = 0;
    size_t used;
    assert_int_equal(rfb_server_feed(&s, (const uint8_t *)"RFB 003.008\n\x01\x01", 14, &used, &err),
                     RFB_DONE);
    assert_int_equal(used, 13);
    assert_int_equal(s.out_len, 6);
}

static void server_bad_clients(void **state)
{
    struct nb_error err = {0};
    struct rfb_server s;
    const char *bad[] = {"RFB 003.009\n", "RFB 004.000\n", "RFB 003.002\n", "GET / HTTP/1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        rfb_server_init(&s, NULL);
        s.out_len = 0;
        assert_int_equal(server_step(&s, bad[i], 12, NULL, 0, &err), RFB_ERROR);
        assert_int_equal(err.code, NB_ERR_INVALID);
        assert_non_null(strstr(err.msg, "VNC client sent an unsupported version"));
    }

    /* Choosing a type that was not offered: 3.8 says why. */
    rfb_server_init(&s, NULL);
    s.out_len = 0;
    server_step(&s, "RFB 003.008\n", 12, "\x01\x01", 2, &err);
    assert_int_equal(
        server_step(&s, "\x02", 1, "\0\0\0\x01\0\0\0\x19security type not offered", 33, &err),
        RFB_ERROR);
    assert_string_equal(err.msg, "VNC client chose security type 2, which was not offered");
    rfb_server_init(&s, NULL);
    s.out_len = 0;
    server_step(&s, "RFB 003.007\n", 12, "\x01\x01", 2, &err);
    assert_int_equal(server_step(&s, "\x02", 1, NULL, 0, &err), RFB_ERROR);
}

static void server_refuses_with_reason(void **state)
{
    struct nb_error err = {0};
    struct rfb_server s;

    rfb_server_init(&s, "VM is not running");
    s.out_len = 0;
    assert_int_equal(
        server_step(&s, "RFB 003.008\n", 12, "\0\0\0\0\x11VM is not running", 22, &err), RFB_ERROR);
    assert_int_equal(err.code, NB_ERR_UNAVAILABLE);
    assert_string_equal(err.msg, "refused the VNC client: VM is not running");

    rfb_server_init(&s, "VM is not running");
    s.out_len = 0;
    assert_int_equal(
        server_step(&s, "RFB 003.003\n", 12, "\0\0\0\0\0\0\0\x11VM is not running", 25, &err),
        RFB_ERROR);
}

/* Our client handshake against our server handshake: both agree, whatever the split. */
static void client_meets_server(void **state)
{
    struct nb_error err = {0};
    struct rfb_client c;
    struct rfb_server s;
    rfb_client_init(&c, NULL);
    rfb_server_init(&s, NULL);
    enum rfb_status cs = RFB_MORE;
    enum rfb_status ss = RFB_MORE;
    for (int round = 0; round < 10 && (cs != RFB_DONE || ss != RFB_DONE); round++) {
        size_t used;
        if (s.out_len) {
            cs = rfb_client_feed(&c, s.out, s.out_len, &used, &err);
            assert_int_not_equal(cs, RFB_ERROR);
            s.out_len = 0;
        }
        if (c.out_len) {
            ss = rfb_server_feed(&s, c.out, c.out_len, &used, &err);
            assert_int_not_equal(ss, RFB_ERROR);
            c.out_len = 0;
        }
    }
    assert_int_equal(cs, RFB_DONE);
    assert_int_equal(ss, RFB_DONE);
    assert_int_equal(c.version, RFB_V3_8);
    assert_int_equal(s.version, RFB_V3_8);
}

/* --- the blocking driver, against a scripted server on a socketpair --- */

struct fake_server {
    int fd;
    const char *password; /* what it expects */
    bool speak;           /* false: say nothing (the client times out) */
    bool answer_ok;
};

static bool read_full(int fd, uint8_t *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n <= 0) {
            return false;
        }
        got += (size_t)n;
    }
    return true;
}

static void *fake_server_main(void *arg)
{
    struct fake_server *f = arg;
    uint8_t buf[64];
    if (!f->speak) {
        return NULL;
    }
    if (write(f->fd, "RFB 003.008\n\x01\x02", 14) != 14 || !read_full(f->fd, buf, 13) ||
        buf[12] != 2 || write(f->fd, challenge_b, 16) != 16 || !read_full(f->fd, buf, 16)) {
        return NULL;
    }
    uint8_t want[16];
    struct nb_error err = {0};
    rfb_vnc_auth_response(f->password, challenge_b, want, &err);
    f->answer_ok = memcmp(buf, want, 16) == 0;
    if (f->answer_ok) {
        (void)!write(f->fd,
                     "\0\0\0\0"
                     "SI",
                     6); /* "SI": what follows the handshake */
    } else {
        (void)!write(f->fd, "\0\0\0\x01\0\0\0\x04nope", 12);
    }
    return NULL;
}

static void driver_over_socket(void **state)
{
    struct {
        const char *password;
        bool speak;
        int rc;
        enum nb_errcode code;
    } cases[] = {
        {"password", true, 0, NB_ERR_NONE},
        {"wrong", true, -1, NB_ERR_AUTH},
        {"password", false, -1, NB_ERR_TIMEOUT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        struct fake_server f = {sv[1], "password", cases[i].speak, false};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, fake_server_main, &f), 0);
        struct nb_error err = {0};
        enum rfb_version v = 0;
        int rc = rfb_client_handshake_fd(sv[0], cases[i].password, 300, &v, &err);
        assert_int_equal(rc, cases[i].rc);
        if (rc == 0) {
            assert_int_equal(v, RFB_V3_8);
            char next[2];
            /* Nothing past the handshake was read. */
            assert_int_equal(read(sv[0], next, 2), 2);
            assert_memory_equal(next, "SI", 2);
        } else {
            assert_int_equal(err.code, cases[i].code);
        }
        pthread_join(t, NULL);
        close(sv[0]);
        close(sv[1]);
    }

    /* A server that hangs up early. */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(write(sv[1], "RFB 003.0", 9), 9);
    close(sv[1]);
    struct nb_error err = {0};
    assert_int_equal(rfb_client_handshake_fd(sv[0], "x", 1000, NULL, &err), -1);
    assert_string_equal(err.msg, "VNC server closed the connection during the handshake");
    close(sv[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(des_known_answers),         cmocka_unit_test(client_v38_vnc_auth),
        cmocka_unit_test(client_any_split),          cmocka_unit_test(client_versions),
        cmocka_unit_test(client_wrong_password),     cmocka_unit_test(client_security_types),
        cmocka_unit_test(client_connection_refused), cmocka_unit_test(server_every_version),
        cmocka_unit_test(server_bad_clients),        cmocka_unit_test(server_refuses_with_reason),
        cmocka_unit_test(client_meets_server),       cmocka_unit_test(driver_over_socket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
