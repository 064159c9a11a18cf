/* The opening handshakes of the RFB protocol (VNC, RFC 6143) for the in-browser console, which
 * the gateway relays between the browser (noVNC) and the VM's VNC server (QEMU):
 *
 *   - toward the VNC server the gateway is the client ('struct rfb_client'): it agrees on a
 *     version and answers VNC Authentication with the VM's password itself;
 *   - toward the browser the gateway is the server ('struct rfb_server'): it offers security
 *     type None only, so the browser never learns the password.
 *
 * Once both handshakes are over, everything after (ClientInit, ServerInit, the session) is
 * relayed byte for byte: those messages do not depend on the version either side chose.
 *
 * Both handshakes are state machines over bytes, without sockets, so they can be fuzzed: the
 * caller feeds what the peer sent, sends what the machine produced ('out', 'out_len'), and asks
 * how many bytes the next step needs (rfb_*_need()), which lets a driver read exactly that many
 * and so never read past the handshake. rfb_client_handshake_fd() is such a driver over a
 * blocking socket. */
#ifndef NUBO_GW_RFB_H
#define NUBO_GW_RFB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nb_error;

#define RFB_PASSWORD_MAX 8   /* VNC Authentication uses at most 8 bytes of the password */
#define RFB_REASON_MAX   255 /* bytes of a peer's failure reason that are kept */

enum rfb_status {
    RFB_MORE = 0,   /* feed more bytes (rfb_*_need() says how many the next step wants) */
    RFB_DONE = 1,   /* the handshake is over; what follows is relayed */
    RFB_ERROR = -1, /* failed, with 'err' set; send 'out' first if it holds anything */
};

/* Protocol versions, as minor numbers of "RFB 003.00x". */
enum rfb_version {
    RFB_V3_3 = 3,
    RFB_V3_7 = 7,
    RFB_V3_8 = 8,
};

/* The handshake toward a VNC server. The fields are private except 'out', 'out_len' and
 * 'version'. */
struct rfb_client {
    uint8_t out[32]; /* bytes to send to the server; the caller sends them and zeroes 'out_len' */
    size_t out_len;
    enum rfb_version version; /* agreed on, once the server's version was read */
    int state;
    uint8_t in[255]; /* the step's bytes gathered so far (at most 255 security types) */
    size_t in_len;
    size_t need;
    uint8_t key[8]; /* the DES key made from the password */
    bool has_password;
    uint32_t sec_type;
    uint32_t reason_len; /* a failure reason's bytes still to come */
    char reason[RFB_REASON_MAX + 1];
    size_t reason_got;
};

/* Starts a handshake toward a VNC server; 'password' (may be NULL: none) is what VNC
 * Authentication will answer with (only its first 8 bytes count, as in every VNC server). */
void rfb_client_init(struct rfb_client *c, const char *password);

/* How many bytes the next step needs at least (0 once done or failed). */
size_t rfb_client_need(const struct rfb_client *c);

/* Consumes up to 'len' bytes the server sent ('*used' says how many; never more than the
 * handshake needs, so leftover bytes belong to the relay). Returns RFB_MORE, RFB_DONE, or
 * RFB_ERROR with 'err': NB_ERR_AUTH when the server refused the password, NB_ERR_UNAVAILABLE
 * when it refused the connection otherwise (e.g. too many attempts), NB_ERR_INVALID when it
 * broke the protocol or offers nothing usable. */
enum rfb_status rfb_client_feed(struct rfb_client *c, const uint8_t *in, size_t len, size_t *used,
                                struct nb_error *err);

/* The handshake toward a VNC client (the browser). The fields are private except 'out',
 * 'out_len' and 'version'. */
struct rfb_server {
    uint8_t out[32 + RFB_REASON_MAX];
    size_t out_len;
    enum rfb_version version; /* the client's, once read */
    int state;
    uint8_t in[16];
    size_t in_len;
    size_t need;
    char fail[RFB_REASON_MAX + 1]; /* "" unless the handshake is to refuse the client */
};

/* Starts a handshake toward a client: puts the server's version in 'out'. With 'fail_reason'
 * (may be NULL) the handshake refuses the client with that reason instead of letting it in, the
 * way RFC 6143 lets a server say why (e.g. the VM's VNC server could not be reached); the
 * client shows it. */
void rfb_server_init(struct rfb_server *s, const char *fail_reason);

/* How many bytes the next step needs at least (0 once done or failed). */
size_t rfb_server_need(const struct rfb_server *s);

/* As rfb_client_feed(), with what the client sent. RFB_ERROR with NB_ERR_INVALID when the
 * client broke the protocol, NB_ERR_UNAVAILABLE once a refusal ('fail_reason') was put in
 * 'out'. */
enum rfb_status rfb_server_feed(struct rfb_server *s, const uint8_t *in, size_t len, size_t *used,
                                struct nb_error *err);

/* Computes VNC Authentication's answer to the 16-byte 'challenge': DES-ECB under the password's
 * first 8 bytes (zero-padded), each key byte's bits reversed (a quirk every VNC server shares).
 * Returns 0, or -1 with 'err' when DES is unavailable (OpenSSL's legacy provider is missing). */
int rfb_vnc_auth_response(const char *password, const uint8_t challenge[16], uint8_t out[16],
                          struct nb_error *err);

/* Runs the client handshake on the connected socket 'fd' (in blocking mode), giving up after
 * 'timeout_ms' in all (<= 0: wait forever). Reads no byte past the handshake: the next bytes
 * on 'fd' are the server's answer to ClientInit. Returns 0 with the agreed version in
 * '*version' (may be NULL), or -1 with 'err' (also NB_ERR_IO, NB_ERR_TIMEOUT). */
int rfb_client_handshake_fd(int fd, const char *password, int timeout_ms, enum rfb_version *version,
                            struct nb_error *err);

#endif
