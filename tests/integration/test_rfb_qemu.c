/* Integration test of the RFB client handshake (api-gateway/rfb.c) against a real QEMU VNC
 * server with a password, as libvirt's <graphics type='vnc' passwd=...> sets one up: the
 * right password gets through to ServerInit, a wrong one is refused. QEMU runs without a
 * machine (-machine none), which is enough for its VNC server to answer. The password is given
 * as a secret object at start, so no monitor command races the first connection. Skips when
 * qemu-system-x86_64 is not installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rfb.h"

#include "nbtest.h"
#include "nubo/error.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define VNC_PASSWORD "secret"

struct qemu {
    pid_t pid;
    int port;
};

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A TCP port of 5900 and up that nothing listens on right now (VNC displays start there). */
static int free_vnc_port(void)
{
    for (int port = 5900 + 100 + getpid() % 500; port < 6900; port++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int rc = bind(fd, (struct sockaddr *)&sin, sizeof sin);
        close(fd);
        if (rc == 0) {
            return port;
        }
    }
    return -1;
}

static int connect_vnc(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static int setup(void **state)
{
    if (system("command -v qemu-system-x86_64 >/dev/null 2>&1") != 0) {
        *state = NULL;
        return 0;
    }
    struct qemu *q = calloc(1, sizeof *q);
    q->port = free_vnc_port();
    if (q->port < 0) {
        free(q);
        return -1;
    }
    char vnc[128];
    snprintf(vnc, sizeof vnc, "127.0.0.1:%d,password-secret=vncpw", q->port - 5900);
    q->pid = fork();
    if (q->pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execlp("qemu-system-x86_64", "qemu-system-x86_64", "-machine", "none", "-nodefaults",
               "-display", "none", "-object", "secret,id=vncpw,data=" VNC_PASSWORD, "-vnc", vnc,
               (char *)NULL);
        _exit(127);
    }
    /* Up to 10 s for QEMU to listen. */
    for (int i = 0; i < 1000; i++) {
        int fd = connect_vnc(q->port);
        if (fd >= 0) {
            close(fd);
            *state = q;
            return 0;
        }
        if (waitpid(q->pid, NULL, WNOHANG) == q->pid) {
            fprintf(stderr, "qemu-system-x86_64 exited before listening\n");
            free(q);
            return -1;
        }
        sleep_ms(10);
    }
    kill(q->pid, SIGKILL);
    waitpid(q->pid, NULL, 0);
    free(q);
    return -1;
}

static int teardown(void **state)
{
    struct qemu *q = *state;
    if (q) {
        kill(q->pid, SIGTERM);
        waitpid(q->pid, NULL, 0);
        free(q);
    }
    return 0;
}

static size_t read_n(int fd, uint8_t *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    return got;
}

static void password_reaches_server_init(void **state)
{
    struct qemu *q = *state;
    if (!q) {
        skip();
    }
    int fd = connect_vnc(q->port);
    assert_true(fd >= 0);
    struct nb_error err = {0};
    enum rfb_version v = 0;
    assert_zero(rfb_client_handshake_fd(fd, VNC_PASSWORD, 5000, &v, &err), err);
    assert_int_equal(v, RFB_V3_8);

    /* ClientInit (shared), then ServerInit: width, height, pixel format, name. */
    assert_int_equal(write(fd, "\x01", 1), 1);
    uint8_t init[24];
    assert_int_equal(read_n(fd, init, sizeof init), sizeof init);
    unsigned width = (unsigned)(init[0] << 8 | init[1]);
    unsigned height = (unsigned)(init[2] << 8 | init[3]);
    uint32_t name_len =
        (uint32_t)init[20] << 24 | (uint32_t)init[21] << 16 | (uint32_t)init[22] << 8 | init[23];
    assert_true(width > 0);
    assert_true(height > 0);
    assert_true(name_len < 1024);
    uint8_t name[1024];
    assert_int_equal(read_n(fd, name, name_len), name_len);
    close(fd);
}

static void wrong_password_refused(void **state)
{
    struct qemu *q = *state;
    if (!q) {
        skip();
    }
    int fd = connect_vnc(q->port);
    assert_true(fd >= 0);
    struct nb_error err = {0};
    assert_int_equal(rfb_client_handshake_fd(fd, "not-it", 5000, NULL, &err), -1);
    assert_int_equal(err.code, NB_ERR_AUTH);
    assert_non_null(strstr(err.msg, "VNC server refused the password"));
    close(fd);

    /* Without a password there is nothing we can offer a server that asks for one. */
    fd = connect_vnc(q->port);
    assert_true(fd >= 0);
    assert_int_equal(rfb_client_handshake_fd(fd, NULL, 5000, NULL, &err), -1);
    assert_string_equal(err.msg, "VNC server offers no supported security type");
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(password_reaches_server_init, setup, teardown),
        cmocka_unit_test_setup_teardown(wrong_password_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
