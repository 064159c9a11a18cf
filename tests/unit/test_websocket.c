/* Unit tests of the WebSocket server side (api-gateway/websocket.c): the handshake checks and
 * accept key, the client-frame decoder fed whole and byte by byte, and the server-frame
 * encoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "websocket.h"

#include "nbtest.h"
#include "nubo/error.h"

#include <stdlib.h>
#include <string.h>

/* Builds a masked client frame of opcode 'op' into 'out' (room for 'len' + 14). Returns its
 * length. 'fin' false leaves the message open; 'rsv' sets the reserved bits. */
static size_t client_frame(uint8_t *out, uint8_t op, bool fin, const void *payload, uint64_t len,
                           bool masked, uint8_t rsv)
{
    static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t at = 0;
    out[at++] = (uint8_t)((fin ? 0x80 : 0) | rsv | op);
    uint8_t m = masked ? 0x80 : 0;
    if (len < 126) {
        out[at++] = (uint8_t)(m | len);
    } else if (len <= 0xFFFF) {
        out[at++] = m | 126;
        out[at++] = (uint8_t)(len >> 8);
        out[at++] = (uint8_t)len;
    } else {
        out[at++] = m | 127;
        for (int i = 0; i < 8; i++) {
            out[at++] = (uint8_t)(len >> (56 - 8 * i));
        }
    }
    if (masked) {
        memcpy(out + at, mask, 4);
        at += 4;
    }
    const uint8_t *p = payload;
    for (uint64_t i = 0; p && i < len; i++) {
        out[at + i] = masked ? p[i] ^ mask[i & 3] : p[i];
    }
    return at + (size_t)(p ? len : 0);
}

/* Feeds 'len' bytes whole into 'd' (reset with limit 'max'), then again one byte at a time into a
 * fresh decoder, and checks both give the same first event, which is returned from the whole
 * feed ('d' holds its data). */
static void feed_both_ways(struct ws_decoder *d, const uint8_t *buf, size_t len, size_t max,
                           struct ws_event *ev, size_t *used)
{
    struct ws_decoder slow;
    struct ws_event ev2 = {0};
    size_t used2 = 0;
    ws_decoder_free(d); /* 'd' was initialised by the caller, maybe used */
    ws_decoder_init(d, max);
    *used = ws_decoder_feed(d, buf, len, ev);
    ws_decoder_init(&slow, max);
    while (used2 < len && ev2.type == WS_EV_NONE) {
        used2 += ws_decoder_feed(&slow, buf + used2, 1, &ev2);
    }
    assert_int_equal(ev2.type, ev->type);
    assert_int_equal(ev2.len, ev->len);
    assert_int_equal(ev2.close_code, ev->close_code);
    assert_int_equal(used2, *used);
    if (ev->len) {
        assert_memory_equal(ev2.data, ev->data, ev->len);
    }
    ws_decoder_free(&slow);
}

static void accept_key_rfc_example(void **state)
{
    char out[WS_ACCEPT_LEN + 1];
    /* RFC 6455 §1.3's example. */
    assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

    const char *bad[] = {"",
                         "dGhlIHNhbXBsZSBub25jZQ=",
                         "dGhlIHNhbXBsZSBub25jZQ===",
                         "dGhlIHNhbXBsZSBub25jZ!==",
                         "dGhlIHNhbXBsZSBub25jZQ",
                         "AAAAAAAAAAAAAAAAAAAAAAAA"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(ws_accept_key(bad[i], out), -1);
        assert_string_equal(out, "");
    }
}

static void handshake_checks(void **state)
{
    struct nb_error err = {0};
    char accept[WS_ACCEPT_LEN + 1];
    const char *proto = "unset";
    struct ws_handshake hs = {
        "GET", "websocket", "keep-alive, Upgrade", "13", "dGhlIHNhbXBsZSBub25jZQ==", NULL};

    assert_int_equal(ws_check_handshake(&hs, accept, &proto, &err), WS_HANDSHAKE_OK);
    assert_string_equal(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_null(proto);

    hs.upgrade = "WebSocket";
    hs.protocols = "chat, binary";
    assert_int_equal(ws_check_handshake(&hs, accept, &proto, &err), WS_HANDSHAKE_OK);
    assert_string_equal(proto, "binary");
    hs.protocols = "base64, Binary"; /* subprotocols are case-sensitive */
    assert_int_equal(ws_check_handshake(&hs, accept, &proto, &err), WS_HANDSHAKE_OK);
    assert_null(proto);

    struct ws_handshake bad = hs;
    bad.method = "POST";
    assert_int_equal(ws_check_handshake(&bad, accept, &proto, &err), WS_HANDSHAKE_BAD);
    assert_string_equal(err.msg, "WebSocket handshake must use GET, not \"POST\"");
    bad = hs;
    bad.upgrade = "h2c";
    assert_int_equal(ws_check_handshake(&bad, accept, &proto, &err), WS_HANDSHAKE_BAD);
    bad = hs;
    bad.connection = "keep-alive, upgrades";
    assert_int_equal(ws_check_handshake(&bad, accept, &proto, &err), WS_HANDSHAKE_BAD);
    bad = hs;
    bad.connection = NULL;
    assert_int_equal(ws_check_handshake(&bad, accept, &proto, &err), WS_HANDSHAKE_BAD);
    bad = hs;
    bad.version = "8";
    assert_int_equal(ws_check_handshake(&bad, accept, &proto, &err), WS_HANDSHAKE_VERSION);
    assert_string_equal(err.msg, "unsupported WebSocket version \"8\"");
    bad = hs;
    bad.version = NULL;
    assert_int_equal(ws_check_handshake(&bad, accept, &proto, &err), WS_HANDSHAKE_BAD);
    bad = hs;
    bad.key = "short==";
    assert_int_equal(ws_check_handshake(&bad, accept, &proto, &err), WS_HANDSHAKE_BAD);
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_string_equal(accept, "");
}

/* Every length class: 7-bit (0, 125), 16-bit (126, 65535), 64-bit (65536, 300000). */
static void data_frames_every_length(void **state)
{
    const uint64_t lens[] = {0, 1, 125, 126, 127, 65535, 65536, 300000};
    uint8_t *payload = malloc(300000);
    uint8_t *frame = malloc(300000 + 14);
    for (size_t i = 0; i < 300000; i++) {
        payload[i] = (uint8_t)(i * 31 + 7);
    }
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        struct ws_decoder d;
        struct ws_event ev;
        size_t used;
        ws_decoder_init(&d, 0);
        size_t flen = client_frame(frame, WS_OP_BINARY, true, payload, lens[i], true, 0);
        feed_both_ways(&d, frame, flen, 0, &ev, &used);
        assert_int_equal(ev.type, WS_EV_BINARY);
        assert_int_equal(used, flen);
        assert_int_equal(ev.len, lens[i]);
        if (lens[i]) {
            assert_memory_equal(ev.data, payload, lens[i]);
        }
        ws_decoder_free(&d);
    }
    free(payload);
    free(frame);
}

static void several_frames_in_one_buffer(void **state)
{
    uint8_t buf[256];
    size_t len = client_frame(buf, WS_OP_TEXT, true, "héllo", 6, true, 0);
    len += client_frame(buf + len, WS_OP_PING, true, "p", 1, true, 0);
    len += client_frame(buf + len, WS_OP_BINARY, true, "\x00\x01", 2, true, 0);
    struct ws_decoder d;
    struct ws_event ev;
    ws_decoder_init(&d, 0);
    size_t at = ws_decoder_feed(&d, buf, len, &ev);
    assert_int_equal(ev.type, WS_EV_TEXT);
    assert_int_equal(ev.len, 6);
    assert_memory_equal(ev.data, "héllo", 6);
    at += ws_decoder_feed(&d, buf + at, len - at, &ev);
    assert_int_equal(ev.type, WS_EV_PING);
    assert_memory_equal(ev.data, "p", 1);
    at += ws_decoder_feed(&d, buf + at, len - at, &ev);
    assert_int_equal(ev.type, WS_EV_BINARY);
    assert_int_equal(ev.len, 2);
    assert_int_equal(at, len);
    assert_int_equal(ws_decoder_feed(&d, buf, 0, &ev), 0);
    assert_int_equal(ev.type, WS_EV_NONE);
    ws_decoder_free(&d);
}

/* Fragments reassemble, with a control frame in between (RFC 6455 §5.4). */
static void fragmentation(void **state)
{
    uint8_t buf[256];
    size_t len = client_frame(buf, WS_OP_BINARY, false, "abc", 3, true, 0);
    len += client_frame(buf + len, WS_OP_CONTINUATION, false, "", 0, true, 0);
    len += client_frame(buf + len, WS_OP_PONG, true, "x", 1, true, 0);
    len += client_frame(buf + len, WS_OP_CONTINUATION, true, "defg", 4, true, 0);
    struct ws_decoder d;
    struct ws_event ev;
    ws_decoder_init(&d, 0);
    size_t at = ws_decoder_feed(&d, buf, len, &ev);
    assert_int_equal(ev.type, WS_EV_PONG);
    assert_memory_equal(ev.data, "x", 1);
    at += ws_decoder_feed(&d, buf + at, len - at, &ev);
    assert_int_equal(ev.type, WS_EV_BINARY);
    assert_int_equal(ev.len, 7);
    assert_memory_equal(ev.data, "abcdefg", 7);
    assert_int_equal(at, len);
    ws_decoder_free(&d);

    /* A continuation with no message open, and a new message inside an open one. */
    const struct {
        uint8_t first;
        bool first_fin;
        uint8_t second;
    } bad[] = {{WS_OP_CONTINUATION, true, 0}, {WS_OP_TEXT, false, WS_OP_BINARY}};
    for (size_t i = 0; i < 2; i++) {
        len = client_frame(buf, bad[i].first, bad[i].first_fin, "a", 1, true, 0);
        if (bad[i].second) {
            len += client_frame(buf + len, bad[i].second, true, "b", 1, true, 0);
        }
        ws_decoder_init(&d, 0);
        ws_decoder_feed(&d, buf, len, &ev);
        assert_int_equal(ev.type, WS_EV_ERROR);
        assert_int_equal(ev.close_code, WS_CLOSE_PROTOCOL);
        ws_decoder_free(&d);
    }
}

static void close_frames(void **state)
{
    uint8_t buf[256];
    struct ws_decoder d;
    ws_decoder_init(&d, 0);
    struct ws_event ev;
    size_t used;

    size_t len = client_frame(buf, WS_OP_CLOSE, true,
                              "\x03\xe8"
                              "bye",
                              5, true, 0);
    feed_both_ways(&d, buf, len, 0, &ev, &used);
    assert_int_equal(ev.type, WS_EV_CLOSE);
    assert_int_equal(ev.close_code, 1000);
    assert_int_equal(ev.len, 3);
    assert_memory_equal(ev.data, "bye", 3);
    /* Nothing after a close counts. */
    assert_int_equal(ws_decoder_feed(&d, (const uint8_t *)"junk", 4, &ev), 4);
    assert_int_equal(ev.type, WS_EV_NONE);
    ws_decoder_free(&d);

    len = client_frame(buf, WS_OP_CLOSE, true, NULL, 0, true, 0);
    feed_both_ways(&d, buf, len, 0, &ev, &used);
    assert_int_equal(ev.type, WS_EV_CLOSE);
    assert_int_equal(ev.close_code, WS_CLOSE_NO_STATUS);

    const struct {
        const char *payload;
        size_t len;
        uint16_t code;
    } bad[] = {
        {"\x03", 1, WS_CLOSE_PROTOCOL},         /* one byte */
        {"\x03\xed", 2, WS_CLOSE_PROTOCOL},     /* 1005 may not be sent */
        {"\x00\x10", 2, WS_CLOSE_PROTOCOL},     /* 16 */
        {"\x03\xe8\xff", 3, WS_CLOSE_BAD_DATA}, /* reason not UTF-8 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        len = client_frame(buf, WS_OP_CLOSE, true, bad[i].payload, bad[i].len, true, 0);
        feed_both_ways(&d, buf, len, 0, &ev, &used);
        assert_int_equal(ev.type, WS_EV_ERROR);
        assert_int_equal(ev.close_code, bad[i].code);
    }
    ws_decoder_free(&d);
}

static void protocol_errors(void **state)
{
    uint8_t buf[512];
    uint8_t big[200] = {0};
    struct ws_decoder d;
    ws_decoder_init(&d, 0);
    struct ws_event ev;
    size_t used;
    size_t len = client_frame(buf, WS_OP_BINARY, true, "a", 1, false, 0);
    feed_both_ways(&d, buf, len, 0, &ev, &used);
    assert_int_equal(ev.type, WS_EV_ERROR);
    assert_int_equal(ev.close_code, WS_CLOSE_PROTOCOL);
    assert_string_equal(ev.error, "client frame is not masked");
    assert_int_equal(used, 2); /* nothing past the header byte that told */
    /* The error sticks. */
    assert_int_equal(ws_decoder_feed(&d, buf, 10, &ev), 0);
    assert_int_equal(ev.type, WS_EV_ERROR);

    len = client_frame(buf, WS_OP_BINARY, true, "a", 1, true, 0x40);
    feed_both_ways(&d, buf, len, 0, &ev, &used);
    assert_int_equal(ev.type, WS_EV_ERROR);
    assert_string_equal(ev.error, "reserved bits set");

    len = client_frame(buf, 0x3, true, "a", 1, true, 0);
    feed_both_ways(&d, buf, len, 0, &ev, &used);
    assert_string_equal(ev.error, "unknown data opcode");
    len = client_frame(buf, 0xB, true, "a", 1, true, 0);
    feed_both_ways(&d, buf, len, 0, &ev, &used);
    assert_string_equal(ev.error, "unknown control opcode");

    len = client_frame(buf, WS_OP_PING, true, big, 126, true, 0);
    feed_both_ways(&d, buf, len, 0, &ev, &used);
    assert_string_equal(ev.error, "control frame longer than 125 bytes");
    len = client_frame(buf, WS_OP_PING, false, "a", 1, true, 0);
    feed_both_ways(&d, buf, len, 0, &ev, &used);
    assert_string_equal(ev.error, "fragmented control frame");

    len = client_frame(buf, WS_OP_TEXT, true, "\xc0\xaf", 2, true, 0); /* overlong '/' */
    feed_both_ways(&d, buf, len, 0, &ev, &used);
    assert_int_equal(ev.close_code, WS_CLOSE_BAD_DATA);
    len = client_frame(buf, WS_OP_TEXT, true, "\xed\xa0\x80", 3, true, 0); /* a surrogate */
    feed_both_ways(&d, buf, len, 0, &ev, &used);
    assert_int_equal(ev.close_code, WS_CLOSE_BAD_DATA);

    /* A 64-bit length with its top bit set. */
    memcpy(buf, "\x82\xff\x80\x00\x00\x00\x00\x00\x00\x01mask", 14);
    feed_both_ways(&d, buf, 14, 0, &ev, &used);
    assert_int_equal(ev.close_code, WS_CLOSE_PROTOCOL);
    ws_decoder_free(&d);
}

static void oversize_messages(void **state)
{
    uint8_t buf[512];
    uint8_t payload[200] = {0};
    struct ws_decoder d;
    ws_decoder_init(&d, 0);
    struct ws_event ev;
    size_t used;

    /* One frame over the limit: refused from its header, before any payload. */
    size_t len = client_frame(buf, WS_OP_BINARY, true, payload, 101, true, 0);
    feed_both_ways(&d, buf, len, 100, &ev, &used);
    assert_int_equal(ev.type, WS_EV_ERROR);
    assert_int_equal(ev.close_code, WS_CLOSE_TOO_BIG);
    assert_int_equal(used, 6); /* the header only */

    /* Exactly the limit is fine; fragments adding up past it are not. */
    len = client_frame(buf, WS_OP_BINARY, true, payload, 100, true, 0);
    feed_both_ways(&d, buf, len, 100, &ev, &used);
    assert_int_equal(ev.type, WS_EV_BINARY);
    ws_decoder_free(&d);
    len = client_frame(buf, WS_OP_BINARY, false, payload, 60, true, 0);
    len += client_frame(buf + len, WS_OP_CONTINUATION, true, payload, 60, true, 0);
    feed_both_ways(&d, buf, len, 100, &ev, &used);
    assert_int_equal(ev.close_code, WS_CLOSE_TOO_BIG);
    ws_decoder_free(&d);

    /* A header announcing 2^62 bytes, with the default 1 MiB limit. */
    memcpy(buf, "\x82\xff\x40\x00\x00\x00\x00\x00\x00\x00mask", 14);
    feed_both_ways(&d, buf, 14, 0, &ev, &used);
    assert_int_equal(ev.close_code, WS_CLOSE_TOO_BIG);
    ws_decoder_free(&d);
}

static void garbage_never_crashes(void **state)
{
    /* A deterministic stream of bytes: whatever comes out, the decoder stays consistent. */
    uint8_t buf[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 1103515245 + 12345;
        buf[i] = (uint8_t)(x >> 16);
    }
    for (int round = 0; round < 50; round++) {
        struct ws_decoder d;
        struct ws_event ev;
        ws_decoder_init(&d, 4096);
        size_t at = (size_t)round * 13;
        for (int guard = 0; at < sizeof buf && guard < 10000; guard++) {
            size_t n = ws_decoder_feed(&d, buf + at, sizeof buf - at, &ev);
            at += n;
            if (ev.type == WS_EV_ERROR) {
                assert_true(ev.close_code == WS_CLOSE_PROTOCOL ||
                            ev.close_code == WS_CLOSE_TOO_BIG ||
                            ev.close_code == WS_CLOSE_BAD_DATA);
                break;
            }
            if (n == 0 && ev.type == WS_EV_NONE) {
                break;
            }
        }
        ws_decoder_free(&d);
    }
}

static void encoder(void **state)
{
    uint8_t h[WS_FRAME_HEADER_MAX];
    assert_int_equal(ws_frame_header(h, WS_OP_BINARY, 5), 2);
    assert_memory_equal(h, "\x82\x05", 2);
    assert_int_equal(ws_frame_header(h, WS_OP_BINARY, 126), 4);
    assert_memory_equal(h, "\x82\x7e\x00\x7e", 4);
    assert_int_equal(ws_frame_header(h, WS_OP_BINARY, 65535), 4);
    assert_memory_equal(h, "\x82\x7e\xff\xff", 4);
    assert_int_equal(ws_frame_header(h, WS_OP_BINARY, 65536), 10);
    assert_memory_equal(h, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);

    uint8_t f[WS_CONTROL_FRAME];
    assert_int_equal(ws_encode_control(f, WS_OP_PONG, "abc", 3), 5);
    assert_memory_equal(f,
                        "\x8a\x03"
                        "abc",
                        5);
    assert_int_equal(ws_encode_close(f, 1009, "too big"), 11);
    assert_memory_equal(f,
                        "\x88\x09\x03\xf1"
                        "too big",
                        11);
    assert_int_equal(ws_encode_close(f, 1000, NULL), 4);
    assert_memory_equal(f, "\x88\x02\x03\xe8", 4);

    /* A long reason is cut at a character boundary: 61 two-byte characters are 122 bytes. */
    char reason[200] = "";
    for (int i = 0; i < 70; i++) {
        strcat(reason, "é");
    }
    size_t n = ws_encode_close(f, 1011, reason);
    assert_int_equal(n, 2 + 2 + 122);
    assert_int_equal(f[1], 124);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accept_key_rfc_example),
        cmocka_unit_test(handshake_checks),
        cmocka_unit_test(data_frames_every_length),
        cmocka_unit_test(several_frames_in_one_buffer),
        cmocka_unit_test(fragmentation),
        cmocka_unit_test(close_frames),
        cmocka_unit_test(protocol_errors),
        cmocka_unit_test(oversize_messages),
        cmocka_unit_test(garbage_never_crashes),
        cmocka_unit_test(encoder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
