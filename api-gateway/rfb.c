/* RFB handshakes (see rfb.h).
 *
 * Each machine works in steps of a known size: it gathers the step's bytes in 'in', then acts
 * on them at once. The one step of unbounded size, a peer's failure reason, is consumed as it
 * comes, keeping its first RFB_REASON_MAX bytes for the error message.
 *
 * DES lives in OpenSSL 3's legacy provider. Loading that provider into the default library
 * context would make every other legacy algorithm available to the whole process, so DES is
 * fetched once from a private context that holds the legacy provider alone. */
#include "rfb.h"

#include "nubo/error.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
    RFB_SEC_INVALID = 0,
    RFB_SEC_NONE = 1,
    RFB_SEC_VNC_AUTH = 2,
};

enum client_state {
    C_VERSION,
    C_SEC_COUNT,  /* 3.7, 3.8: how many security types follow */
    C_SEC_TYPES,  /* 3.7, 3.8: the types */
    C_SEC_TYPE33, /* 3.3: the type the server chose */
    C_CHALLENGE,
    C_RESULT,
    C_REASON_LEN,
    C_REASON,
    C_DONE,
    C_FAILED,
};

enum server_state {
    S_VERSION,
    S_CHOICE,
    S_DONE,
    S_FAILED,
};

static uint32_t get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Parses a ProtocolVersion message ("RFB 003.008\n"). Returns 0 with the numbers, or -1. */
static int parse_version(const uint8_t v[12], int *major, int *minor)
{
    if (memcmp(v, "RFB ", 4) != 0 || v[7] != '.' || v[11] != '\n') {
        return -1;
    }
    int nums[2] = {0, 0};
    for (int part = 0; part < 2; part++) {
        for (int i = 0; i < 3; i++) {
            uint8_t ch = v[4 + part * 4 + i];
            if (ch < '0' || ch > '9') {
                return -1;
            }
            nums[part] = nums[part] * 10 + (ch - '0');
        }
    }
    *major = nums[0];
    *minor = nums[1];
    return 0;
}

/* The first 12 bytes of a peer's version message, printable, for error messages. */
static void printable(const uint8_t *p, size_t len, char *out, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < len && k + 1 < n; i++) {
        out[k++] = p[i] >= 0x20 && p[i] < 0x7F ? (char)p[i] : '?';
    }
    out[k] = '\0';
}

static void put_version(uint8_t *out, enum rfb_version v)
{
    memcpy(out, "RFB 003.00", 10);
    out[10] = (uint8_t)('0' + v);
    out[11] = '\n';
}

/* --- DES --- */

/* Set once by des_load() and never changed after: shared read-only by every thread. */
static pthread_once_t des_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *des_ecb;

static void des_load(void)
{
    OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();
    if (!libctx) {
        return;
    }
    /* The context and provider stay loaded for the life of the process, as 'des_ecb' needs. */
    if (!OSSL_PROVIDER_load(libctx, "legacy")) {
        OSSL_LIB_CTX_free(libctx);
        return;
    }
    des_ecb = EVP_CIPHER_fetch(libctx, "DES-ECB", NULL);
}

static uint8_t reverse_bits(uint8_t b)
{
    uint8_t r = 0;
    for (int i = 0; i < 8; i++) {
        r = (uint8_t)((r << 1) | ((b >> i) & 1));
    }
    return r;
}

static void make_key(const char *password, uint8_t key[8])
{
    memset(key, 0, 8);
    for (size_t i = 0; password && i < RFB_PASSWORD_MAX && password[i]; i++) {
        key[i] = reverse_bits((uint8_t)password[i]);
    }
}

static int des_encrypt(const uint8_t key[8], const uint8_t in[16], uint8_t out[16],
                       struct nb_error *err)
{
    pthread_once(&des_once, des_load);
    if (!des_ecb) {
        nb_error_set(err, NB_ERR_INTERNAL,
                     "could not compute the VNC password answer: DES is unavailable");
        nb_error_detail(err, "VNC Authentication needs OpenSSL's legacy provider (legacy.so)");
        return -1;
    }
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n1 = 0;
    int n2 = 0;
    int ok = ctx && EVP_EncryptInit_ex2(ctx, des_ecb, key, NULL, NULL) == 1 &&
             EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
             EVP_EncryptUpdate(ctx, out, &n1, in, 16) == 1 &&
             EVP_EncryptFinal_ex(ctx, out + n1, &n2) == 1 && n1 + n2 == 16;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not compute the VNC password answer: DES failed");
        return -1;
    }
    return 0;
}

int rfb_vnc_auth_response(const char *password, const uint8_t challenge[16], uint8_t out[16],
                          struct nb_error *err)
{
    uint8_t key[8];
    make_key(password, key);
    int rc = des_encrypt(key, challenge, out, err);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

/* --- toward the VNC server --- */

void rfb_client_init(struct rfb_client *c, const char *password)
{
    memset(c, 0, sizeof *c);
    c->state = C_VERSION;
    c->need = 12;
    c->has_password = password != NULL;
    make_key(password, c->key);
}

size_t rfb_client_need(const struct rfb_client *c)
{
    if (c->state == C_DONE || c->state == C_FAILED) {
        return 0;
    }
    if (c->state == C_REASON) {
        return c->reason_len - c->reason_got;
    }
    return c->need - c->in_len;
}

static enum rfb_status client_fail(struct rfb_client *c)
{
    c->state = C_FAILED;
    OPENSSL_cleanse(c->key, sizeof c->key);
    return RFB_ERROR;
}

static void client_expect(struct rfb_client *c, enum client_state state, size_t need)
{
    c->state = state;
    c->need = need;
}

/* The server refused, with the reason gathered in c->reason ("" if it gave none). */
static enum rfb_status client_refused(struct rfb_client *c, struct nb_error *err)
{
    const char *sep = c->reason[0] ? ": " : "";
    if (c->sec_type == RFB_SEC_VNC_AUTH) {
        nb_error_set(err, NB_ERR_AUTH, "VNC server refused the password%s%s", sep, c->reason);
    } else {
        nb_error_set(err, NB_ERR_UNAVAILABLE, "VNC server refused the connection%s%s", sep,
                     c->reason);
    }
    return client_fail(c);
}

/* Picks the security type among the server's 'n' 'types'. */
static enum rfb_status client_choose(struct rfb_client *c, const uint8_t *types, size_t n,
                                     struct nb_error *err)
{
    uint8_t want = c->has_password ? RFB_SEC_VNC_AUTH : RFB_SEC_NONE;
    for (size_t i = 0; i < n; i++) {
        if (types[i] != want) {
            continue;
        }
        c->sec_type = want;
        c->out[c->out_len++] = want;
        if (want == RFB_SEC_VNC_AUTH) {
            client_expect(c, C_CHALLENGE, 16);
        } else if (c->version == RFB_V3_8) {
            client_expect(c, C_RESULT, 4);
        } else {
            c->state = C_DONE; /* 3.7 sends no SecurityResult after None (RFC 6143 §7.2.1) */
            return RFB_DONE;
        }
        return RFB_MORE;
    }
    char list[6 * 255 + 1] = "";
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        at += (size_t)snprintf(list + at, sizeof list - at, "%s%u", i ? ", " : "", types[i]);
    }
    nb_error_set(err, NB_ERR_INVALID, "VNC server offers no supported security type");
    nb_error_detail(err, "it offers %s; usable are %s", list,
                    c->has_password ? "2 (VNC Authentication), as a password is set"
                                    : "1 (None), as no password is set");
    return client_fail(c);
}

/* Acts on a complete step in c->in. */
static enum rfb_status client_step(struct rfb_client *c, struct nb_error *err)
{
    int major;
    int minor;
    uint32_t v;
    switch (c->state) {
    case C_VERSION:
        if (parse_version(c->in, &major, &minor) < 0 || major < 3 || (major == 3 && minor < 3)) {
            char text[13];
            printable(c->in, 12, text, sizeof text);
            nb_error_set(err, NB_ERR_INVALID, "VNC server sent an unsupported version \"%s\"",
                         text);
            return client_fail(c);
        }
        /* RFC 6143 §7.1.1: answer with the highest version we know that the server has too;
         * 3.4 to 3.6 (3.5 was announced by some servers) mean 3.3. */
        if (major > 3 || minor >= 8) {
            c->version = RFB_V3_8;
        } else if (minor == 7) {
            c->version = RFB_V3_7;
        } else {
            c->version = RFB_V3_3;
        }
        put_version(c->out + c->out_len, c->version);
        c->out_len += 12;
        if (c->version == RFB_V3_3) {
            client_expect(c, C_SEC_TYPE33, 4);
        } else {
            client_expect(c, C_SEC_COUNT, 1);
        }
        return RFB_MORE;
    case C_SEC_COUNT:
        if (c->in[0] == 0) {
            client_expect(c, C_REASON_LEN, 4);
        } else {
            client_expect(c, C_SEC_TYPES, c->in[0]);
        }
        return RFB_MORE;
    case C_SEC_TYPES:
        return client_choose(c, c->in, c->need, err);
    case C_SEC_TYPE33:
        v = get_u32(c->in);
        if (v == RFB_SEC_INVALID) {
            client_expect(c, C_REASON_LEN, 4);
            return RFB_MORE;
        }
        if (v == RFB_SEC_NONE) {
            c->sec_type = v;
            c->state = C_DONE;
            return RFB_DONE;
        }
        if (v == RFB_SEC_VNC_AUTH && c->has_password) {
            c->sec_type = v;
            client_expect(c, C_CHALLENGE, 16);
            return RFB_MORE;
        }
        nb_error_set(err, NB_ERR_INVALID, "VNC server offers no supported security type");
        nb_error_detail(err, "it asks for type %u%s", v,
                        v == RFB_SEC_VNC_AUTH ? " (VNC Authentication) but no password is set"
                                              : "");
        return client_fail(c);
    case C_CHALLENGE:
        if (des_encrypt(c->key, c->in, c->out + c->out_len, err) < 0) {
            return client_fail(c);
        }
        c->out_len += 16;
        OPENSSL_cleanse(c->key, sizeof c->key);
        client_expect(c, C_RESULT, 4);
        return RFB_MORE;
    case C_RESULT:
        if (get_u32(c->in) == 0) {
            c->state = C_DONE;
            return RFB_DONE;
        }
        if (c->version == RFB_V3_8) {
            client_expect(c, C_REASON_LEN, 4);
            return RFB_MORE;
        }
        return client_refused(c, err);
    case C_REASON_LEN:
        c->reason_len = get_u32(c->in);
        c->reason_got = 0;
        c->state = C_REASON;
        return c->reason_len == 0 ? client_refused(c, err) : RFB_MORE;
    default:
        nb_error_set(err, NB_ERR_INTERNAL, "VNC handshake is already over");
        return RFB_ERROR;
    }
}

enum rfb_status rfb_client_feed(struct rfb_client *c, const uint8_t *in, size_t len, size_t *used,
                                struct nb_error *err)
{
    size_t pos = 0;
    enum rfb_status st = RFB_MORE;
    *used = 0;
    if (c->state == C_DONE) {
        return RFB_DONE;
    }
    if (c->state == C_FAILED) {
        nb_error_set(err, NB_ERR_INTERNAL, "VNC handshake already failed");
        return RFB_ERROR;
    }
    while (st == RFB_MORE && pos < len) {
        if (c->state == C_REASON) {
            size_t k = len - pos;
            if (k > c->reason_len - c->reason_got) {
                k = c->reason_len - c->reason_got;
            }
            size_t keep = c->reason_got < RFB_REASON_MAX ? RFB_REASON_MAX - c->reason_got : 0;
            if (keep > 0) {
                printable(in + pos, k < keep ? k : keep, c->reason + c->reason_got,
                          (k < keep ? k : keep) + 1);
            }
            c->reason_got += k;
            pos += k;
            if (c->reason_got == c->reason_len) {
                st = client_refused(c, err);
            }
            continue;
        }
        size_t k = c->need - c->in_len;
        if (k > len - pos) {
            k = len - pos;
        }
        memcpy(c->in + c->in_len, in + pos, k);
        c->in_len += k;
        pos += k;
        if (c->in_len == c->need) {
            c->in_len = 0;
            st = client_step(c, err);
        }
    }
    *used = pos;
    return st;
}

/* --- toward the browser --- */

void rfb_server_init(struct rfb_server *s, const char *fail_reason)
{
    memset(s, 0, sizeof *s);
    s->state = S_VERSION;
    s->need = 12;
    if (fail_reason) {
        snprintf(s->fail, sizeof s->fail, "%s", fail_reason);
        if (!s->fail[0]) {
            snprintf(s->fail, sizeof s->fail, "refused");
        }
    }
    put_version(s->out, RFB_V3_8);
    s->out_len = 12;
}

size_t rfb_server_need(const struct rfb_server *s)
{
    if (s->state == S_DONE || s->state == S_FAILED) {
        return 0;
    }
    return s->need - s->in_len;
}

/* Appends a failure reason (u32 length, then the text) to 'out'. */
static void server_put_reason(struct rfb_server *s, const char *reason)
{
    size_t len = strlen(reason);
    put_u32(s->out + s->out_len, (uint32_t)len);
    memcpy(s->out + s->out_len + 4, reason, len);
    s->out_len += 4 + len;
}

static enum rfb_status server_step(struct rfb_server *s, struct nb_error *err)
{
    int major;
    int minor;
    if (s->state == S_CHOICE) {
        if (s->in[0] != RFB_SEC_NONE) {
            if (s->version == RFB_V3_8) {
                put_u32(s->out + s->out_len, 1);
                s->out_len += 4;
                server_put_reason(s, "security type not offered");
            }
            nb_error_set(err, NB_ERR_INVALID,
                         "VNC client chose security type %u, which was not offered", s->in[0]);
            s->state = S_FAILED;
            return RFB_ERROR;
        }
        if (s->version == RFB_V3_8) {
            put_u32(s->out + s->out_len, 0);
            s->out_len += 4;
        }
        s->state = S_DONE;
        return RFB_DONE;
    }
    /* A client answers with a version no higher than ours; 3.4 to 3.6 mean 3.3. */
    if (parse_version(s->in, &major, &minor) < 0 || major != 3 || minor < 3 || minor > 8) {
        char text[13];
        printable(s->in, 12, text, sizeof text);
        nb_error_set(err, NB_ERR_INVALID, "VNC client sent an unsupported version \"%s\"", text);
        s->state = S_FAILED;
        return RFB_ERROR;
    }
    s->version = minor == 8 ? RFB_V3_8 : minor == 7 ? RFB_V3_7 : RFB_V3_3;
    if (s->fail[0]) {
        /* Zero security types (3.7, 3.8) or type 0 (3.3), then the reason. */
        if (s->version == RFB_V3_3) {
            put_u32(s->out + s->out_len, RFB_SEC_INVALID);
            s->out_len += 4;
        } else {
            s->out[s->out_len++] = 0;
        }
        server_put_reason(s, s->fail);
        nb_error_set(err, NB_ERR_UNAVAILABLE, "refused the VNC client: %s", s->fail);
        s->state = S_FAILED;
        return RFB_ERROR;
    }
    if (s->version == RFB_V3_3) {
        /* 3.3: the server decides, and None is followed by nothing. */
        put_u32(s->out + s->out_len, RFB_SEC_NONE);
        s->out_len += 4;
        s->state = S_DONE;
        return RFB_DONE;
    }
    s->out[s->out_len++] = 1;
    s->out[s->out_len++] = RFB_SEC_NONE;
    s->state = S_CHOICE;
    s->need = 1;
    return RFB_MORE;
}

enum rfb_status rfb_server_feed(struct rfb_server *s, const uint8_t *in, size_t len, size_t *used,
                                struct nb_error *err)
{
    size_t pos = 0;
    enum rfb_status st = RFB_MORE;
    *used = 0;
    if (s->state == S_DONE) {
        return RFB_DONE;
    }
    if (s->state == S_FAILED) {
        nb_error_set(err, NB_ERR_INTERNAL, "VNC handshake already failed");
        return RFB_ERROR;
    }
    while (st == RFB_MORE && pos < len) {
        size_t k = s->need - s->in_len;
        if (k > len - pos) {
            k = len - pos;
        }
        memcpy(s->in + s->in_len, in + pos, k);
        s->in_len += k;
        pos += k;
        if (s->in_len == s->need) {
            s->in_len = 0;
            st = server_step(s, err);
        }
    }
    *used = pos;
    return st;
}

/* --- blocking driver --- */

static long ms_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

/* Waits until 'fd' is ready for 'events', within what is left of 'timeout_ms'. */
static int wait_fd(int fd, short events, const struct timespec *start, int timeout_ms,
                   struct nb_error *err)
{
    for (;;) {
        int wait = -1;
        if (timeout_ms > 0) {
            long left = timeout_ms - ms_since(start);
            if (left <= 0) {
                nb_error_set(err, NB_ERR_TIMEOUT, "VNC handshake timed out after %d ms",
                             timeout_ms);
                return -1;
            }
            wait = (int)left;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, wait);
        if (n > 0) {
            return 0;
        }
        if (n < 0 && errno != EINTR) {
            nb_error_errno(err, errno, "could not wait for the VNC server");
            return -1;
        }
    }
}

static int send_all(int fd, const uint8_t *p, size_t len, const struct timespec *start,
                    int timeout_ms, struct nb_error *err)
{
    while (len > 0) {
        if (wait_fd(fd, POLLOUT, start, timeout_ms, err) < 0) {
            return -1;
        }
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            nb_error_errno(err, errno, "could not write to the VNC server");
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int rfb_client_handshake_fd(int fd, const char *password, int timeout_ms, enum rfb_version *version,
                            struct nb_error *err)
{
    struct rfb_client c;
    struct timespec start;
    int rc = -1;
    clock_gettime(CLOCK_MONOTONIC, &start);
    rfb_client_init(&c, password);
    for (;;) {
        size_t need = rfb_client_need(&c);
        uint8_t buf[256];
        if (need > sizeof buf) {
            need = sizeof buf;
        }
        if (wait_fd(fd, POLLIN, &start, timeout_ms, err) < 0) {
            goto cleanup;
        }
        ssize_t n = recv(fd, buf, need, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        if (n < 0) {
            nb_error_errno(err, errno, "could not read from the VNC server");
            goto cleanup;
        }
        if (n == 0) {
            nb_error_set(err, NB_ERR_UNAVAILABLE,
                         "VNC server closed the connection during the handshake");
            goto cleanup;
        }
        size_t used;
        enum rfb_status st = rfb_client_feed(&c, buf, (size_t)n, &used, err);
        if (st == RFB_ERROR) {
            goto cleanup; /* nothing left worth sending: we hang up */
        }
        if (c.out_len && send_all(fd, c.out, c.out_len, &start, timeout_ms, err) < 0) {
            goto cleanup;
        }
        c.out_len = 0;
        if (st == RFB_DONE) {
            break;
        }
    }
    if (version) {
        *version = c.version;
    }
    rc = 0;
cleanup:
    OPENSSL_cleanse(&c, sizeof c);
    return rc;
}
