/* Fuzz target: the RFB handshakes (api-gateway/rfb.c). The first byte picks the side (client
 * toward a VNC server, with or without a password; server toward a browser, letting it in or
 * refusing it) and the size of the pieces the rest is fed in, as a peer would send it. The
 * machines must never consume more than they are given, never overflow their output, and stop
 * once done or failed. */
#include "rfb.h"

#include "nubo/error.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    unsigned mode = data[0] & 3;
    size_t piece = (size_t)(data[0] >> 2) + 1;
    data++;
    size--;

    struct nb_error err = {0};
    struct rfb_client c;
    struct rfb_server s;
    if (mode < 2) {
        rfb_client_init(&c, mode == 0 ? "secret" : NULL);
    } else {
        rfb_server_init(&s, mode == 3 ? "the VM is not running" : NULL);
        s.out_len = 0;
    }
    size_t at = 0;
    enum rfb_status st = RFB_MORE;
    while (at < size && st == RFB_MORE) {
        size_t n = size - at < piece ? size - at : piece;
        size_t used = 0;
        if (mode < 2) {
            st = rfb_client_feed(&c, data + at, n, &used, &err);
            if (c.out_len > sizeof c.out) {
                abort();
            }
            c.out_len = 0;
            if (st == RFB_MORE && rfb_client_need(&c) == 0) {
                abort();
            }
        } else {
            st = rfb_server_feed(&s, data + at, n, &used, &err);
            if (s.out_len > sizeof s.out) {
                abort();
            }
            s.out_len = 0;
            if (st == RFB_MORE && rfb_server_need(&s) == 0) {
                abort();
            }
        }
        if (used > n || (used == 0 && st == RFB_MORE)) {
            abort();
        }
        at += used;
    }
    return 0;
}
