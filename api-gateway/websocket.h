/* The server side of the WebSocket protocol (RFC 6455), as the in-browser VM console (noVNC)
 * speaks it: the opening handshake's checks and Sec-WebSocket-Accept, an incremental decoder
 * of the frames a client sends, and the encoder of the frames a server sends.
 *
 * Everything here is pure (no sockets, no HTTP server): the decoder is fed whatever bytes
 * arrived and hands back one complete message or control frame at a time, so it can be fuzzed
 * and tested byte by byte. Messages are reassembled from their fragments up to a size limit. */
#ifndef NUBO_GW_WEBSOCKET_H
#define NUBO_GW_WEBSOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nb_error;

#define WS_ACCEPT_LEN       28        /* base64 of a SHA-1 digest, without the NUL */
#define WS_DEFAULT_MAX      (1 << 20) /* default limit on a reassembled message's payload */
#define WS_CONTROL_MAX      125       /* a control frame's payload limit (RFC 6455 §5.5) */
#define WS_FRAME_HEADER_MAX 10        /* the longest header of an unmasked frame */
#define WS_CONTROL_FRAME    (2 + WS_CONTROL_MAX) /* room for an encoded control frame */

enum ws_opcode {
    WS_OP_CONTINUATION = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

/* Close codes used by this module (RFC 6455 §7.4.1). */
enum ws_close_code {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_NO_STATUS = 1005, /* reported for a close frame without a code; never sent */
    WS_CLOSE_BAD_DATA = 1007,  /* a text message that is not UTF-8 */
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL = 1011,
};

/* Computes the Sec-WebSocket-Accept value for the client's Sec-WebSocket-Key 'client_key' into
 * 'out' (NUL-terminated). Returns 0, or -1 when the key is not the base64 of 16 bytes (as
 * RFC 6455 §4.2.1 requires) or OpenSSL failed; 'out' is then "". */
int ws_accept_key(const char *client_key, char out[WS_ACCEPT_LEN + 1]);

/* The opening handshake's request headers (values as received; NULL when absent). */
struct ws_handshake {
    const char *method;
    const char *upgrade;    /* Upgrade */
    const char *connection; /* Connection */
    const char *version;    /* Sec-WebSocket-Version */
    const char *key;        /* Sec-WebSocket-Key */
    const char *protocols;  /* Sec-WebSocket-Protocol, a comma-separated list */
};

enum ws_handshake_result {
    WS_HANDSHAKE_OK = 0,
    WS_HANDSHAKE_BAD = -1,     /* not a valid WebSocket request: answer 400 */
    WS_HANDSHAKE_VERSION = -2, /* another protocol version: answer 426 with
                                * "Sec-WebSocket-Version: 13" */
};

/* Checks the handshake 'hs': method GET, "Upgrade: websocket" (case-insensitive), a Connection
 * header with the token "upgrade", version 13 and a valid key. On success fills 'accept' with
 * the Sec-WebSocket-Accept value and sets '*protocol' to the subprotocol to answer with: the
 * static string "binary" when the client offered it, else NULL (send no Sec-WebSocket-Protocol
 * header; noVNC then speaks binary anyway). On failure sets 'err' (NB_ERR_INVALID) with what is
 * wrong. */
enum ws_handshake_result ws_check_handshake(const struct ws_handshake *hs,
                                            char accept[WS_ACCEPT_LEN + 1], const char **protocol,
                                            struct nb_error *err);

/* --- decoding client frames --- */

enum ws_event_type {
    WS_EV_NONE = 0, /* the bytes given so far make no complete event: feed more */
    WS_EV_TEXT,     /* a complete text message (valid UTF-8) */
    WS_EV_BINARY,   /* a complete binary message */
    WS_EV_PING,     /* answer with a pong carrying the same payload */
    WS_EV_PONG,
    WS_EV_CLOSE, /* 'close_code' (WS_CLOSE_NO_STATUS if none) and the reason in 'data' */
    WS_EV_ERROR, /* the client broke the protocol: send a close with 'close_code', then close */
};

struct ws_event {
    enum ws_event_type type;
    const uint8_t *data; /* the payload, unmasked; valid until the next call on the decoder */
    size_t len;
    uint16_t close_code;
    const char *error; /* WS_EV_ERROR: what was wrong (a static string) */
};

/* Decoder state. The fields are private; it lives wherever its owner likes (no allocation until
 * a data message arrives). */
struct ws_decoder {
    size_t max_payload;
    uint8_t hdr[14]; /* the frame header gathered so far */
    size_t hdr_len;
    size_t hdr_need;
    bool in_payload;
    uint8_t opcode;
    bool fin;
    uint64_t payload_len;
    uint64_t payload_got;
    uint8_t mask[4];
    uint8_t ctl[WS_CONTROL_MAX]; /* a control frame's payload */
    uint8_t *msg;                /* the data message being reassembled */
    size_t msg_len;
    size_t msg_cap;
    uint8_t msg_opcode; /* WS_OP_TEXT or WS_OP_BINARY while a message is open, else 0 */
    bool deliver_reset; /* the last event handed out the message buffer */
    bool failed;
    bool closed;
    uint16_t fail_code;
    const char *fail_reason;
};

/* Prepares 'd' for a new connection; messages over 'max_payload' bytes (WS_DEFAULT_MAX when 0)
 * are refused with close code 1009. */
void ws_decoder_init(struct ws_decoder *d, size_t max_payload);

/* Frees what 'd' holds (it can be initialised again). Accepts NULL. */
void ws_decoder_free(struct ws_decoder *d);

/* Consumes bytes from 'data' ('len' of them) until one event is complete or the bytes run out;
 * returns how many were consumed and fills 'ev' (WS_EV_NONE when more bytes are needed). The
 * caller calls again with the rest while it has bytes left. After WS_EV_ERROR every later call
 * returns the same error and consumes nothing; after WS_EV_CLOSE further bytes are consumed and
 * ignored (RFC 6455 §5.5.1: nothing follows a close). */
size_t ws_decoder_feed(struct ws_decoder *d, const uint8_t *data, size_t len, struct ws_event *ev);

/* --- encoding server frames (never masked) --- */

/* Writes into 'out' the header of a final frame of opcode 'op' with a payload of 'len' bytes;
 * the payload follows it unchanged. Returns the header's length (2, 4 or 10). */
size_t ws_frame_header(uint8_t out[WS_FRAME_HEADER_MAX], enum ws_opcode op, uint64_t len);

/* Writes into 'out' a whole control frame ('op' close, ping or pong) with the payload 'data'
 * ('len' bytes, cut to 125). Returns the frame's length. */
size_t ws_encode_control(uint8_t out[WS_CONTROL_FRAME], enum ws_opcode op, const void *data,
                         size_t len);

/* Writes into 'out' a close frame with 'code' and the reason 'reason' (may be NULL; cut to 123
 * bytes, at a UTF-8 character boundary). Returns the frame's length. */
size_t ws_encode_close(uint8_t out[WS_CONTROL_FRAME], uint16_t code, const char *reason);

#endif
