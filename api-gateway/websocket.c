/* WebSocket server side (see websocket.h).
 *
 * The decoder gathers a frame's header (2 to 14 bytes: a client's frames always carry a mask)
 * before acting on it, so every check on the header happens once, with the whole header in
 * hand, before any payload is copied. Payloads are unmasked while copied: control frames into a
 * small fixed buffer (they may arrive between the fragments of a message), data frames at the
 * end of the message being reassembled. A message's buffer grows to the message's size, never
 * past the limit, and is reused for the next message. */
#include "websocket.h"

#include "nubo/error.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* RFC 6455 §1.3: the GUID appended to the client's key before hashing. */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* --- handshake --- */

static bool is_base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* True if 'key' is the base64 of 16 bytes: 22 characters of the alphabet and "==". */
static bool valid_key(const char *key)
{
    if (strlen(key) != 24 || key[22] != '=' || key[23] != '=') {
        return false;
    }
    for (int i = 0; i < 22; i++) {
        if (!is_base64_char(key[i])) {
            return false;
        }
    }
    return true;
}

int ws_accept_key(const char *client_key, char out[WS_ACCEPT_LEN + 1])
{
    out[0] = '\0';
    if (!client_key || !valid_key(client_key)) {
        return -1;
    }
    char joined[24 + sizeof ws_guid];
    memcpy(joined, client_key, 24);
    memcpy(joined + 24, ws_guid, sizeof ws_guid);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    if (EVP_Digest(joined, strlen(joined), digest, &dlen, EVP_sha1(), NULL) != 1 || dlen != 20) {
        return -1;
    }
    if (EVP_EncodeBlock((unsigned char *)out, digest, 20) != WS_ACCEPT_LEN) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

/* True if the comma-separated 'list' holds 'token' (compared case-insensitively when 'ci'). */
static bool has_token(const char *list, const char *token, bool ci)
{
    size_t tlen = strlen(token);
    const char *p = list;
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ',') {
            p++;
        }
        const char *start = p;
        while (*p && *p != ',') {
            p++;
        }
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t')) {
            end--;
        }
        if ((size_t)(end - start) == tlen &&
            (ci ? strncasecmp(start, token, tlen) : strncmp(start, token, tlen)) == 0) {
            return true;
        }
    }
    return false;
}

enum ws_handshake_result ws_check_handshake(const struct ws_handshake *hs,
                                            char accept[WS_ACCEPT_LEN + 1], const char **protocol,
                                            struct nb_error *err)
{
    accept[0] = '\0';
    *protocol = NULL;
    if (!hs->method || strcmp(hs->method, "GET") != 0) {
        nb_error_set(err, NB_ERR_INVALID, "WebSocket handshake must use GET, not \"%s\"",
                     hs->method ? hs->method : "");
        return WS_HANDSHAKE_BAD;
    }
    if (!hs->upgrade || !has_token(hs->upgrade, "websocket", true)) {
        nb_error_set(err, NB_ERR_INVALID, "WebSocket handshake lacks \"Upgrade: websocket\"");
        return WS_HANDSHAKE_BAD;
    }
    if (!hs->connection || !has_token(hs->connection, "upgrade", true)) {
        nb_error_set(err, NB_ERR_INVALID,
                     "WebSocket handshake lacks the \"upgrade\" token in its Connection header");
        return WS_HANDSHAKE_BAD;
    }
    if (!hs->version) {
        nb_error_set(err, NB_ERR_INVALID, "WebSocket handshake lacks Sec-WebSocket-Version");
        return WS_HANDSHAKE_BAD;
    }
    if (strcmp(hs->version, "13") != 0) {
        nb_error_set(err, NB_ERR_INVALID, "unsupported WebSocket version \"%.32s\"", hs->version);
        nb_error_detail(err, "only version 13 (RFC 6455) is supported");
        return WS_HANDSHAKE_VERSION;
    }
    if (!hs->key || ws_accept_key(hs->key, accept) < 0) {
        nb_error_set(err, NB_ERR_INVALID, "invalid Sec-WebSocket-Key \"%.64s\"",
                     hs->key ? hs->key : "");
        nb_error_detail(err, "the key must be the base64 encoding of 16 bytes");
        return WS_HANDSHAKE_BAD;
    }
    /* Subprotocol names are case-sensitive (RFC 6455 §4.1). */
    if (hs->protocols && has_token(hs->protocols, "binary", false)) {
        *protocol = "binary";
    }
    return WS_HANDSHAKE_OK;
}

/* --- decoding --- */

/* True if 'p' ('len' bytes) is well-formed UTF-8: no overlong forms, no surrogates, nothing
 * past U+10FFFF (RFC 3629). */
static bool valid_utf8(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = p[i];
        size_t n;
        uint32_t cp;
        uint32_t min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
            min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
            min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return false;
        }
        if (len - i - 1 < n) {
            return false;
        }
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xC0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        i += n + 1;
    }
    return true;
}

/* RFC 6455 §7.4: the codes a peer may send (1004-1006 and 1015 are reserved for reports). */
static bool valid_close_code(uint16_t code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

void ws_decoder_init(struct ws_decoder *d, size_t max_payload)
{
    memset(d, 0, sizeof *d);
    d->max_payload = max_payload ? max_payload : WS_DEFAULT_MAX;
    d->hdr_need = 2;
}

void ws_decoder_free(struct ws_decoder *d)
{
    if (!d) {
        return;
    }
    free(d->msg);
    d->msg = NULL;
    d->msg_len = d->msg_cap = 0;
}

static size_t fail(struct ws_decoder *d, uint16_t code, const char *why, size_t used,
                   struct ws_event *ev)
{
    d->failed = true;
    d->fail_code = code;
    d->fail_reason = why;
    ev->type = WS_EV_ERROR;
    ev->close_code = code;
    ev->error = why;
    return used;
}

/* Makes room for 'more' bytes after the message's current end. Returns 0 or -1. */
static int reserve(struct ws_decoder *d, size_t more)
{
    size_t need = d->msg_len + more;
    if (need <= d->msg_cap) {
        return 0;
    }
    size_t cap = d->msg_cap ? d->msg_cap : 4096;
    while (cap < need && cap <= SIZE_MAX / 2) {
        cap *= 2;
    }
    if (cap < need || cap > d->max_payload) {
        cap = need; /* 'need' is within the limit: checked before */
    }
    uint8_t *m = realloc(d->msg, cap);
    if (!m) {
        return -1;
    }
    d->msg = m;
    d->msg_cap = cap;
    return 0;
}

/* Checks the complete header in d->hdr and prepares for the payload. Returns NULL, or the
 * reason to fail with (and '*code'). */
static const char *start_frame(struct ws_decoder *d, uint16_t *code)
{
    const uint8_t *h = d->hdr;
    uint8_t len7 = h[1] & 0x7F;
    uint64_t len = len7;
    size_t at = 2;
    if (len7 == 126) {
        len = ((uint64_t)h[2] << 8) | h[3];
        at = 4;
    } else if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++) {
            len = (len << 8) | h[2 + i];
        }
        at = 10;
    }
    memcpy(d->mask, h + at, 4);
    d->fin = (h[0] & 0x80) != 0;
    d->opcode = h[0] & 0x0F;
    d->payload_len = len;
    d->payload_got = 0;

    *code = WS_CLOSE_PROTOCOL;
    if (len7 == 127 && (h[2] & 0x80)) {
        return "frame length has its most significant bit set";
    }
    if (d->opcode & 0x08) {
        if (d->opcode != WS_OP_CLOSE && d->opcode != WS_OP_PING && d->opcode != WS_OP_PONG) {
            return "unknown control opcode";
        }
        if (!d->fin) {
            return "fragmented control frame";
        }
        if (len > WS_CONTROL_MAX) {
            return "control frame longer than 125 bytes";
        }
        return NULL;
    }
    if (d->opcode == WS_OP_CONTINUATION) {
        if (!d->msg_opcode) {
            return "continuation frame outside a fragmented message";
        }
    } else if (d->opcode == WS_OP_TEXT || d->opcode == WS_OP_BINARY) {
        if (d->msg_opcode) {
            return "new message inside a fragmented message";
        }
    } else {
        return "unknown data opcode";
    }
    if (len > d->max_payload - d->msg_len) {
        *code = WS_CLOSE_TOO_BIG;
        return "message too big";
    }
    if (reserve(d, (size_t)len) < 0) {
        *code = WS_CLOSE_INTERNAL;
        return "out of memory";
    }
    if (d->opcode != WS_OP_CONTINUATION) {
        d->msg_opcode = d->opcode;
    }
    return NULL;
}

/* The frame's payload has all arrived: fills 'ev' if it completes an event. Returns NULL, or a
 * reason to fail with (and '*code'). */
static const char *end_frame(struct ws_decoder *d, struct ws_event *ev, uint16_t *code)
{
    size_t len = (size_t)d->payload_len;
    d->in_payload = false;
    d->hdr_len = 0;
    d->hdr_need = 2;
    *code = WS_CLOSE_PROTOCOL;
    switch (d->opcode) {
    case WS_OP_PING:
    case WS_OP_PONG:
        ev->type = d->opcode == WS_OP_PING ? WS_EV_PING : WS_EV_PONG;
        ev->data = d->ctl;
        ev->len = len;
        return NULL;
    case WS_OP_CLOSE:
        if (len == 1) {
            return "close frame with a one-byte payload";
        }
        ev->close_code = WS_CLOSE_NO_STATUS;
        if (len >= 2) {
            ev->close_code = (uint16_t)((d->ctl[0] << 8) | d->ctl[1]);
            if (!valid_close_code(ev->close_code)) {
                return "invalid close code";
            }
            if (!valid_utf8(d->ctl + 2, len - 2)) {
                *code = WS_CLOSE_BAD_DATA;
                return "close reason is not UTF-8";
            }
            ev->data = d->ctl + 2;
            ev->len = len - 2;
        }
        ev->type = WS_EV_CLOSE;
        d->closed = true;
        return NULL;
    default:
        d->msg_len += len;
        if (!d->fin) {
            return NULL;
        }
        if (d->msg_opcode == WS_OP_TEXT && !valid_utf8(d->msg, d->msg_len)) {
            *code = WS_CLOSE_BAD_DATA;
            return "text message is not UTF-8";
        }
        ev->type = d->msg_opcode == WS_OP_TEXT ? WS_EV_TEXT : WS_EV_BINARY;
        ev->data = d->msg;
        ev->len = d->msg_len;
        d->deliver_reset = true;
        return NULL;
    }
}

size_t ws_decoder_feed(struct ws_decoder *d, const uint8_t *data, size_t len, struct ws_event *ev)
{
    memset(ev, 0, sizeof *ev);
    if (d->failed) {
        return fail(d, d->fail_code, d->fail_reason, 0, ev);
    }
    if (d->closed) {
        return len;
    }
    if (d->deliver_reset) {
        /* The caller is done with the message handed out last time. */
        d->deliver_reset = false;
        d->msg_len = 0;
        d->msg_opcode = 0;
    }
    size_t pos = 0;
    uint16_t code;
    const char *why;
    while (pos < len) {
        if (!d->in_payload) {
            while (pos < len && d->hdr_len < d->hdr_need) {
                d->hdr[d->hdr_len++] = data[pos++];
                if (d->hdr_len != 2) {
                    continue;
                }
                if (d->hdr[0] & 0x70) {
                    return fail(d, WS_CLOSE_PROTOCOL, "reserved bits set", pos, ev);
                }
                if (!(d->hdr[1] & 0x80)) {
                    return fail(d, WS_CLOSE_PROTOCOL, "client frame is not masked", pos, ev);
                }
                uint8_t len7 = d->hdr[1] & 0x7F;
                d->hdr_need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
            }
            if (d->hdr_len < d->hdr_need) {
                break;
            }
            why = start_frame(d, &code);
            if (why) {
                return fail(d, code, why, pos, ev);
            }
            d->in_payload = true;
        }
        uint64_t left = d->payload_len - d->payload_got;
        size_t k = left < (uint64_t)(len - pos) ? (size_t)left : len - pos;
        if (k) {
            /* Only with a payload: an empty message may have no buffer at all. */
            uint8_t *dst = (d->opcode & 0x08) ? d->ctl : d->msg + d->msg_len;
            for (size_t i = 0; i < k; i++) {
                dst[d->payload_got + i] = data[pos + i] ^ d->mask[(d->payload_got + i) & 3];
            }
        }
        pos += k;
        d->payload_got += k;
        if (d->payload_got < d->payload_len) {
            break;
        }
        why = end_frame(d, ev, &code);
        if (why) {
            memset(ev, 0, sizeof *ev);
            return fail(d, code, why, pos, ev);
        }
        if (ev->type != WS_EV_NONE) {
            return pos;
        }
    }
    return pos;
}

/* --- encoding --- */

size_t ws_frame_header(uint8_t out[WS_FRAME_HEADER_MAX], enum ws_opcode op, uint64_t len)
{
    out[0] = (uint8_t)(0x80 | (op & 0x0F));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++) {
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    }
    return 10;
}

size_t ws_encode_control(uint8_t out[WS_CONTROL_FRAME], enum ws_opcode op, const void *data,
                         size_t len)
{
    if (len > WS_CONTROL_MAX) {
        len = WS_CONTROL_MAX;
    }
    size_t h = ws_frame_header(out, op, len);
    if (len) {
        memcpy(out + h, data, len);
    }
    return h + len;
}

size_t ws_encode_close(uint8_t out[WS_CONTROL_FRAME], uint16_t code, const char *reason)
{
    uint8_t payload[WS_CONTROL_MAX];
    size_t rlen = reason ? strlen(reason) : 0;
    if (rlen > WS_CONTROL_MAX - 2) {
        rlen = WS_CONTROL_MAX - 2;
        /* A cut inside a character would make the reason invalid UTF-8, which the client
         * must treat as a protocol error. */
        while (rlen > 0 && ((uint8_t)reason[rlen] & 0xC0) == 0x80) {
            rlen--;
        }
    }
    payload[0] = (uint8_t)(code >> 8);
    payload[1] = (uint8_t)code;
    if (rlen) {
        memcpy(payload + 2, reason, rlen);
    }
    return ws_encode_control(out, WS_OP_CLOSE, payload, rlen + 2);
}
