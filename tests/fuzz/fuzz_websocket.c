/* Fuzz target: the WebSocket frame decoder (api-gateway/websocket.c), fed the input in pieces
 * whose size the first byte picks, with a small message limit so that the size checks are
 * reached; also the accept-key check on the input's start, and the close frame encoder with the
 * input as reason. The decoder must always make progress or report an event, and never hand out
 * more than the limit. */
#include "websocket.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_PAYLOAD 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    size_t piece = (size_t)data[0] % 64 + 1;
    data++;
    size--;

    struct ws_decoder d;
    ws_decoder_init(&d, FUZZ_MAX_PAYLOAD);
    size_t at = 0;
    while (at < size) {
        size_t n = size - at < piece ? size - at : piece;
        struct ws_event ev;
        size_t used = ws_decoder_feed(&d, data + at, n, &ev);
        if (used > n) {
            abort();
        }
        if (ev.type == WS_EV_ERROR) {
            break;
        }
        if ((ev.type == WS_EV_TEXT || ev.type == WS_EV_BINARY) && ev.len > FUZZ_MAX_PAYLOAD) {
            abort();
        }
        if ((ev.type == WS_EV_PING || ev.type == WS_EV_PONG) && ev.len > WS_CONTROL_MAX) {
            abort();
        }
        if (used == 0 && ev.type == WS_EV_NONE) {
            abort(); /* no progress and nothing to say */
        }
        if (ev.len && !ev.data) {
            abort();
        }
        at += used;
    }
    ws_decoder_free(&d);

    char text[64];
    size_t tlen = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, tlen);
    text[tlen] = '\0';
    char accept[WS_ACCEPT_LEN + 1];
    if (ws_accept_key(text, accept) == 0 && strlen(accept) != WS_ACCEPT_LEN) {
        abort();
    }
    uint8_t frame[WS_CONTROL_FRAME];
    if (ws_encode_close(frame, WS_CLOSE_NORMAL, text) > WS_CONTROL_FRAME) {
        abort();
    }
    return 0;
}
