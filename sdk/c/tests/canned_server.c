/* The canned loopback HTTP server and TAP checks of libnubo's unit tests: see canned_server.h. */
#include "canned_server.h"

#include "nubo/nubo.h"

#include <jansson.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define CANNED_MAX_BODY (64u << 20)

/* The one server of the test program: a test is a program of its own, so file scope is its
 * context. 'mu' guards the table and the counts; a connection's thread writes only its own
 * exchange, which the test reads once the answer came. */
static struct canned_exchange ex[CANNED_MAX_ANSWERS];
static int n_ex, served, taken; /* answers queued, answered, handed to a connection */
static int live;                /* connections being served */
static int listen_fd = -1;
static pthread_t thread;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle = PTHREAD_COND_INITIALIZER;
static int n_test, n_failed;

/* --- the server ------------------------------------------------------------------------------ */

/* Copies the value of header 'name' in 'head' (lines ending in CRLF, the first one the request
 * line) into 'out' of 'n' bytes. Returns 1 when found, else 0. */
static int header_find(const char *head, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *h = strstr(head, "\r\n"); h; h = strstr(h + 2, "\r\n")) {
        if (!strncasecmp(h + 2, name, nl) && h[2 + nl] == ':') {
            const char *v = h + 3 + nl;
            v += strspn(v, " \t");
            snprintf(out, n, "%.*s", (int)strcspn(v, "\r\n"), v);
            return 1;
        }
    }
    return 0;
}

/* Reads one request from 'fd' into 'e', answering an "Expect: 100-continue". Returns 0, or -1
 * when the client went away or sent what this server does not take. */
static int read_request(int fd, struct canned_exchange *e)
{
    char buf[8192];
    size_t len = 0;
    char *end = NULL;
    while (!end) {
        if (len == sizeof buf - 1) {
            return -1;
        }
        ssize_t got = read(fd, buf + len, sizeof buf - 1 - len);
        if (got <= 0) {
            return -1;
        }
        len += (size_t)got;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    sscanf(buf, "%15s %511s", e->method, e->target);
    free(e->head);
    e->head = strndup(buf, (size_t)(end + 2 - buf));
    char clen[32] = "0", expect[32] = "";
    if (!e->head) {
        return -1;
    }
    header_find(e->head, "Content-Length", clen, sizeof clen);
    header_find(e->head, "Expect", expect, sizeof expect);
    size_t want = strtoul(clen, NULL, 10);
    size_t have = len - (size_t)(end + 4 - buf);
    if (want > CANNED_MAX_BODY || have > want) {
        return -1;
    }
    free(e->body_in);
    e->body_in = malloc(want + 1);
    if (!e->body_in) {
        return -1;
    }
    if (!strcasecmp(expect, "100-continue") && have == 0 && want > 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (write(fd, cont, sizeof cont - 1) < 0) {
            return -1;
        }
    }
    memcpy(e->body_in, end + 4, have);
    while (have < want) {
        ssize_t got = read(fd, e->body_in + have, want - have);
        if (got <= 0) {
            return -1;
        }
        have += (size_t)got;
    }
    e->body_in[want] = '\0';
    e->body_len = want;
    return 0;
}

static void write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w <= 0) {
            return; /* the client went away: what it got is what it got */
        }
        s += w;
        n -= (size_t)w;
    }
}

/* Waits 'ms' milliseconds, or less if the client hangs up (the request was read whole, so
 * anything readable is its end). Returns 0, or -1 when the client is gone. */
static int wait_ms(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) > 0 ? -1 : 0;
}

/* Sends answer 'a' on 'fd'. */
static void send_answer(int fd, const struct canned_exchange *a)
{
    char head[256];
    int n;
    if (!a->pieces) {
        n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "x-amzn-RequestId: req-1\r\nConnection: close\r\n\r\n",
                     a->status, a->type, strlen(a->body));
        write_all(fd, head, (size_t)n);
        write_all(fd, a->body, strlen(a->body));
        return;
    }
    n = snprintf(head, sizeof head,
                 "HTTP/1.1 %d X\r\nContent-Type: %s\r\nx-amzn-RequestId: req-1\r\n"
                 "Connection: close\r\n\r\n",
                 a->status, a->type);
    write_all(fd, head, (size_t)n);
    for (const char *const *p = a->pieces; *p; p++) {
        if (p != a->pieces && wait_ms(fd, a->gap_ms) < 0) {
            return;
        }
        write_all(fd, *p, strlen(*p));
    }
    wait_ms(fd, a->hold_ms);
}

/* Answers one connection, in its own thread. */
static void *serve_one(void *arg)
{
    int fd = (int)(intptr_t)arg;
    pthread_mutex_lock(&mu);
    int i = taken < n_ex ? taken++ : -1;
    pthread_mutex_unlock(&mu);
    struct canned_exchange none = {.status = 500, .type = "text/plain", .body = "no answer left"};
    struct canned_exchange *e = i >= 0 ? &ex[i] : &none;
    if (read_request(fd, e) == 0) {
        /* Counted before the answer goes: the client checks canned_served() once it has it.
         * What to send is copied: the test may reset the table while a stream is held. */
        pthread_mutex_lock(&mu);
        served += i >= 0;
        struct canned_exchange a = *e;
        pthread_mutex_unlock(&mu);
        send_answer(fd, &a);
    }
    free(none.head);
    free(none.body_in);
    close(fd);
    pthread_mutex_lock(&mu);
    live--;
    pthread_cond_broadcast(&idle);
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void *serve(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(listen_fd, NULL, NULL);
        if (fd < 0) {
            return NULL;
        }
        /* A client that never finishes its request cannot hold canned_stop() for ever. */
        struct timeval tv = {.tv_sec = 10};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        pthread_mutex_lock(&mu);
        live++;
        pthread_mutex_unlock(&mu);
        pthread_t th;
        if (pthread_create(&th, NULL, serve_one, (void *)(intptr_t)fd) != 0) {
            perror("canned server: pthread_create");
            close(fd);
            pthread_mutex_lock(&mu);
            live--;
            pthread_mutex_unlock(&mu);
            continue;
        }
        pthread_detach(th);
    }
}

int canned_start(char *origin, size_t size)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    signal(SIGPIPE, SIG_IGN);
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        listen(listen_fd, 8) < 0 || getsockname(listen_fd, (struct sockaddr *)&a, &alen) < 0 ||
        pthread_create(&thread, NULL, serve, NULL) != 0) {
        perror("canned server");
        return -1;
    }
    snprintf(origin, size, "127.0.0.1:%u", ntohs(a.sin_port));
    return 0;
}

void canned_stop(void)
{
    shutdown(listen_fd, SHUT_RDWR);
    close(listen_fd);
    pthread_join(thread, NULL);
    pthread_mutex_lock(&mu);
    while (live > 0) {
        pthread_cond_wait(&idle, &mu);
    }
    pthread_mutex_unlock(&mu);
    canned_reset();
}

struct nubo_client *canned_client(char *origin, size_t size)
{
    char endpoint[128];
    struct nubo_error err;
    if (canned_start(origin, size) < 0) {
        printf("Bail out! no loopback server\n");
        return NULL;
    }
    snprintf(endpoint, sizeof endpoint, "http://%s/api/", origin);
    struct nubo_client *c = nubo_client_new(endpoint, "NKIAEXAMPLE", "secret", NULL, &err);
    if (!c) {
        printf("Bail out! %s: %s\n", err.code, err.message);
        return NULL;
    }
    nubo_client_set_retries(c, 1, 1);
    return c;
}

int canned_finish(struct nubo_client *c)
{
    nubo_client_free(c);
    int rc = canned_done();
    canned_stop();
    return rc;
}

static void queue(const struct canned_exchange *e)
{
    pthread_mutex_lock(&mu);
    if (n_ex < CANNED_MAX_ANSWERS) {
        ex[n_ex++] = *e;
    } else {
        fprintf(stderr, "canned server: more than %d answers queued\n", CANNED_MAX_ANSWERS);
    }
    pthread_mutex_unlock(&mu);
}

void canned_answer_type(int status, const char *type, const char *body)
{
    queue(&(struct canned_exchange){.status = status, .type = type, .body = body});
}

void canned_answer(int status, const char *body)
{
    canned_answer_type(status, "application/json", body);
}

void canned_answer_stream(int status, const char *type, const char *const *pieces, int gap_ms,
                          int hold_ms)
{
    queue(&(struct canned_exchange){
        .status = status, .type = type, .pieces = pieces, .gap_ms = gap_ms, .hold_ms = hold_ms});
}

void canned_reset(void)
{
    pthread_mutex_lock(&mu);
    for (int i = 0; i < CANNED_MAX_ANSWERS; i++) {
        free(ex[i].head);
        free(ex[i].body_in);
    }
    memset(ex, 0, sizeof ex);
    n_ex = served = taken = 0;
    pthread_mutex_unlock(&mu);
}

const struct canned_exchange *canned_request(int i)
{
    return &ex[i >= 0 && i < CANNED_MAX_ANSWERS ? i : 0];
}

const char *canned_header(int i, const char *name, char *buf, size_t size)
{
    const char *head = canned_request(i)->head;
    return head && header_find(head, name, buf, size) ? buf : NULL;
}

int canned_served(void)
{
    pthread_mutex_lock(&mu);
    int n = served;
    pthread_mutex_unlock(&mu);
    return n;
}

/* --- TAP ------------------------------------------------------------------------------------- */

void canned_ok(int cond, const char *name)
{
    printf("%s %d - %s\n", cond ? "ok" : "not ok", ++n_test, name);
    n_failed += !cond;
}

void canned_is_str(const char *got, const char *want, const char *name)
{
    int same = (!got && !want) || (got && want && !strcmp(got, want));
    canned_ok(same, name);
    if (!same) {
        printf("    # got:  %s\n    # want: %s\n", got ? got : "(null)", want ? want : "(null)");
    }
}

void canned_body_is(int i, const char *want, const char *name)
{
    const char *got = canned_request(i)->body_in;
    json_t *a = got ? json_loads(got, 0, NULL) : NULL, *b = json_loads(want, 0, NULL);
    int same = a && b && json_equal(a, b);
    canned_ok(same, name);
    if (!same) {
        printf("    # got:  %s\n    # want: %s\n", got ? got : "(no request)", want);
    }
    json_decref(a);
    json_decref(b);
}

int canned_done(void)
{
    printf("1..%d\n", n_test);
    return n_failed ? 1 : 0;
}
