/* The client handle: configuration (arguments, environment, profile file), signed HTTP
 * requests over one libcurl handle with retries and back-off, streamed bodies (uploads read
 * from a file, downloads written to one, in bounded memory), and the API's error answers. */
#include "internal.h"
#include "sigv4.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct nubo_client {
    char *endpoint; /* as given, without a final '/' */
    char *origin;   /* "http://host:port" */
    char *prefix;   /* the endpoint's path, "" or "/api" */
    char *host;     /* the Host header, as botocore would send it */
    char *access_key;
    char *secret;
    char *region;
    CURL *curl;
    int attempts;
    int base_delay_ms;
    int timeout_s;
    unsigned int seed; /* back-off jitter */
};

NUBO_API const char *nubo_version(void)
{
    return NUBO_VERSION;
}

void nubo_err_set(struct nubo_error *err, int http_status, const char *code, const char *fmt, ...)
{
    if (!err) {
        return;
    }
    memset(err, 0, sizeof *err);
    err->http_status = http_status;
    snprintf(err->code, sizeof err->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

NUBO_API bool nubo_error_is_not_found(const struct nubo_error *err)
{
    size_t n = err ? strlen(err->code) : 0;
    return n >= 8 && !strcmp(err->code + n - 8, "NotFound");
}

NUBO_API bool nubo_error_is_auth(const struct nubo_error *err)
{
    static const char *const codes[] = {
        "AuthFailure",   "SignatureDoesNotMatch", "IncompleteSignature", "RequestExpired",
        "OptInRequired", "UnauthorizedOperation", "MissingCredentials"};
    for (size_t i = 0; err && i < sizeof codes / sizeof codes[0]; i++) {
        if (!strcmp(err->code, codes[i])) {
            return true;
        }
    }
    return false;
}

NUBO_API bool nubo_error_is_unavailable(const struct nubo_error *err)
{
    return err && (!strcmp(err->code, "ConnectionError") || !strcmp(err->code, "Timeout") ||
                   err->http_status >= 500 || err->http_status == 429);
}

/* --- construction ---------------------------------------------------------------------------- */

/* Splits 'endpoint' into the client's origin, path prefix and Host header. */
static int parse_endpoint(struct nubo_client *c, const char *endpoint, struct nubo_error *err)
{
    const char *scheme_end = strstr(endpoint, "://");
    bool https = !strncmp(endpoint, "https://", 8);
    if (!scheme_end || (!https && strncmp(endpoint, "http://", 7))) {
        nubo_err_set(err, 0, "ConfigError",
                     "invalid endpoint \"%s\": expected http://HOST[:PORT] or https://...",
                     endpoint);
        return -1;
    }
    const char *host = scheme_end + 3;
    size_t host_len = strcspn(host, "/?#");
    if (host_len == 0) {
        nubo_err_set(err, 0, "ConfigError", "invalid endpoint \"%s\": no host", endpoint);
        return -1;
    }
    c->endpoint = strdup(endpoint);
    c->origin = strndup(endpoint, (size_t)(host - endpoint) + host_len);
    c->prefix = strndup(host + host_len, strcspn(host + host_len, "?#"));
    /* botocore leaves the default port out of Host; so does curl. */
    const char *def = https ? ":443" : ":80";
    size_t hl = host_len;
    if (hl > strlen(def) && !strncmp(host + hl - strlen(def), def, strlen(def))) {
        hl -= strlen(def);
    }
    c->host = strndup(host, hl);
    if (!c->endpoint || !c->origin || !c->prefix || !c->host) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return -1;
    }
    size_t n = strlen(c->endpoint);
    while (n > 0 && c->endpoint[n - 1] == '/') {
        c->endpoint[--n] = '\0';
    }
    n = strlen(c->prefix);
    while (n > 0 && c->prefix[n - 1] == '/') {
        c->prefix[--n] = '\0';
    }
    return 0;
}

NUBO_API struct nubo_client *nubo_client_new(const char *endpoint, const char *access_key,
                                             const char *secret_key, const char *region,
                                             struct nubo_error *err)
{
    if (!endpoint || !*endpoint) {
        nubo_err_set(err, 0, "MissingCredentials",
                     "no endpoint: set NUBO_ENDPOINT, a profile's endpoint, or --endpoint");
        return NULL;
    }
    if (!access_key || !*access_key || !secret_key || !*secret_key) {
        nubo_err_set(err, 0, "MissingCredentials",
                     "no access key: set NUBO_ACCESS_KEY and NUBO_SECRET_KEY, or a profile");
        return NULL;
    }
    struct nubo_client *c = calloc(1, sizeof *c);
    if (!c) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return NULL;
    }
    c->attempts = 5;
    c->base_delay_ms = 200;
    c->timeout_s = 30;
    if (parse_endpoint(c, endpoint, err) < 0) {
        nubo_client_free(c);
        return NULL;
    }
    c->access_key = strdup(access_key);
    c->secret = strdup(secret_key);
    c->region = strdup(region && *region ? region : "nubo-1");
    c->curl = curl_easy_init();
    unsigned char seed[sizeof c->seed];
    if (RAND_bytes(seed, sizeof seed) == 1) {
        memcpy(&c->seed, seed, sizeof seed);
    }
    if (!c->access_key || !c->secret || !c->region || !c->curl) {
        nubo_err_set(err, 0, "ConfigError", "could not set up the client: out of memory");
        nubo_client_free(c);
        return NULL;
    }
    return c;
}

NUBO_API void nubo_client_free(struct nubo_client *c)
{
    if (!c) {
        return;
    }
    if (c->curl) {
        curl_easy_cleanup(c->curl);
    }
    if (c->secret) {
        explicit_bzero(c->secret, strlen(c->secret));
    }
    free(c->endpoint);
    free(c->origin);
    free(c->prefix);
    free(c->host);
    free(c->access_key);
    free(c->secret);
    free(c->region);
    free(c);
}

NUBO_API void nubo_client_set_retries(struct nubo_client *c, int attempts, int base_delay_ms)
{
    c->attempts = attempts < 1 ? 1 : attempts;
    c->base_delay_ms = base_delay_ms < 0 ? 0 : base_delay_ms;
}

NUBO_API void nubo_client_set_timeout(struct nubo_client *c, int seconds)
{
    c->timeout_s = seconds < 1 ? 1 : seconds;
}

NUBO_API const char *nubo_client_endpoint(const struct nubo_client *c)
{
    return c->endpoint;
}

/* --- configuration --------------------------------------------------------------------------- */

struct profile {
    char *endpoint, *access_key, *secret_key, *region;
    bool found;
};

static void profile_clear(struct profile *p)
{
    if (p->secret_key) {
        explicit_bzero(p->secret_key, strlen(p->secret_key));
    }
    free(p->endpoint);
    free(p->access_key);
    free(p->secret_key);
    free(p->region);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) {
        s++;
    }
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) {
        s[--n] = '\0';
    }
    return s;
}

static char *config_path(void)
{
    const char *f = getenv("NUBO_CONFIG_FILE");
    char buf[4096];
    if (f && *f) {
        return strdup(f);
    }
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    if (xdg && *xdg) {
        snprintf(buf, sizeof buf, "%s/nubo/config", xdg);
    } else if (home && *home) {
        snprintf(buf, sizeof buf, "%s/.config/nubo/config", home);
    } else {
        return NULL;
    }
    return strdup(buf);
}

/* Reads section 'name' ("[name]" or "[profile name]") of the ini file at 'path' into '*p'.
 * A missing file is no error. Returns 0, or -1 with '*err' set when the file cannot be read. */
static int read_profile(const char *path, const char *name, struct profile *p,
                        struct nubo_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) {
            return 0;
        }
        nubo_err_set(err, 0, "ConfigError", "could not open \"%s\": %s", path, strerror(errno));
        return -1;
    }
    char line[4096];
    bool in = false;
    while (fgets(line, sizeof line, f)) {
        char *s = trim(line);
        if (!*s || *s == '#' || *s == ';') {
            continue;
        }
        if (*s == '[') {
            char *end = strchr(s, ']');
            if (end) {
                *end = '\0';
            }
            char *sec = trim(s + 1);
            if (!strncmp(sec, "profile ", 8)) {
                sec = trim(sec + 8);
            }
            in = !strcmp(sec, name);
            p->found |= in;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!in || !eq) {
            continue;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        char **slot = !strcmp(key, "endpoint")     ? &p->endpoint
                      : !strcmp(key, "access_key") ? &p->access_key
                      : !strcmp(key, "secret_key") ? &p->secret_key
                      : !strcmp(key, "region")     ? &p->region
                                                   : NULL;
        if (slot) {
            free(*slot);
            *slot = strdup(value);
        }
    }
    explicit_bzero(line, sizeof line);
    fclose(f);
    return 0;
}

static const char *env2(const char *a, const char *b)
{
    const char *v = getenv(a);
    if (!v || !*v) {
        v = b ? getenv(b) : NULL;
    }
    return v && *v ? v : NULL;
}

/* The file's value, or the environment's: which wins depends on 'file_first'. */
static const char *pick(const char *file, const char *env, bool file_first)
{
    if (file_first) {
        return file ? file : env;
    }
    return env ? env : file;
}

NUBO_API struct nubo_client *nubo_client_from_config(const char *profile, const char *endpoint,
                                                     struct nubo_error *err)
{
    bool named = profile && *profile;
    const char *name = named ? profile : env2("NUBO_PROFILE", NULL);
    if (!named && name) {
        named = true; /* $NUBO_PROFILE names a profile as much as the argument does */
    }
    if (!name) {
        name = "default";
    }
    struct profile p = {0};
    char *path = config_path();
    if (path && read_profile(path, name, &p, err) < 0) {
        free(path);
        profile_clear(&p);
        return NULL;
    }
    if (named && !p.found) {
        nubo_err_set(err, 0, "ConfigError", "profile \"%s\" not found in \"%s\"", name,
                     path ? path : "(no config file)");
        free(path);
        profile_clear(&p);
        return NULL;
    }
    free(path);
    const char *ep =
        endpoint && *endpoint ? endpoint : pick(p.endpoint, env2("NUBO_ENDPOINT", NULL), named);
    struct nubo_client *c =
        nubo_client_new(ep, pick(p.access_key, env2("NUBO_ACCESS_KEY", "AWS_ACCESS_KEY_ID"), named),
                        pick(p.secret_key, env2("NUBO_SECRET_KEY", "AWS_SECRET_ACCESS_KEY"), named),
                        pick(p.region, env2("NUBO_REGION", "AWS_DEFAULT_REGION"), named), err);
    profile_clear(&p);
    return c;
}

/* --- query strings ----------------------------------------------------------------------------- */

static bool unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

char *nubo_urlencode(const char *s)
{
    char *out = malloc(strlen(s) * 3 + 1);
    if (!out) {
        return NULL;
    }
    char *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (unreserved(*p)) {
            *o++ = (char)*p;
        } else {
            o += sprintf(o, "%%%02X", *p);
        }
    }
    *o = '\0';
    return out;
}

static void query_append(struct nubo_query *q, const char *s)
{
    size_t n = strlen(s);
    if (q->failed) {
        return;
    }
    if (q->len + n + 1 > q->cap) {
        size_t cap = (q->len + n + 1) * 2;
        char *p = realloc(q->s, cap);
        if (!p) {
            q->failed = true;
            return;
        }
        q->s = p;
        q->cap = cap;
    }
    memcpy(q->s + q->len, s, n + 1);
    q->len += n;
}

void nubo_query_add(struct nubo_query *q, const char *name, const char *value)
{
    if (!value) {
        return;
    }
    char *n = nubo_urlencode(name), *v = nubo_urlencode(value);
    if (!n || !v) {
        q->failed = true;
    } else {
        if (q->len) {
            query_append(q, "&");
        }
        query_append(q, n);
        query_append(q, "=");
        query_append(q, v);
    }
    free(n);
    free(v);
}

void nubo_query_add_filters(struct nubo_query *q, const struct nubo_filter *filters, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        nubo_query_add(q, filters[i].name, filters[i].values);
    }
}

const char *nubo_query_text(const struct nubo_query *q)
{
    return q->failed ? NULL : q->s ? q->s : "";
}

void nubo_query_clear(struct nubo_query *q)
{
    free(q->s);
    memset(q, 0, sizeof *q);
}

char *nubo_client_token(void)
{
    unsigned char r[16];
    if (RAND_bytes(r, sizeof r) != 1) {
        return NULL;
    }
    char *t = malloc(33);
    for (size_t i = 0; t && i < sizeof r; i++) {
        sprintf(t + 2 * i, "%02x", r[i]);
    }
    return t;
}

/* --- HTTP ---------------------------------------------------------------------------------------- */

/* What one attempt sends: a JSON body in memory, or a stream ('s'). */
struct request {
    const char *method;
    const char *url;
    const char *path; /* as signed: the endpoint's prefix and the API path */
    const char *query;
    const char *body; /* JSON, or NULL */
    struct nubo_stream *s;
};

/* What one attempt received. A streamed 2xx body goes to 's->out_fd', every other body here. */
struct answer {
    char *body;
    size_t len;
    char request_id[64];
    char sha256[65]; /* x-nubo-sha256 */
    bool oom;
    CURL *k;
    struct nubo_stream *s;
    EVP_MD_CTX *md;    /* the SHA-256 of what went to 's->out_fd' */
    uint64_t offset;   /* the next byte of 's->in_fd' to send */
    int file_errno;    /* reading 'in_fd' or writing 'out_fd' failed */
    bool file_writing; /* ... and it was the writing */
    bool cancelled;    /* the progress callback said stop */
};

/* Error answers to a stream are kept up to this size; the rest is dropped. */
#define MAX_ERROR_BODY (64 * 1024)

static bool answer_is_success(const struct answer *a)
{
    long status = 0;
    curl_easy_getinfo(a->k, CURLINFO_RESPONSE_CODE, &status);
    return status >= 200 && status < 300;
}

/* Writes 'n' bytes at 'data' to the stream's output file. Returns 0, or -1 with errno set. */
static int write_all(int fd, const char *data, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, data, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            if (w == 0) {
                errno = EIO;
            }
            return -1;
        }
        data += w;
        n -= (size_t)w;
    }
    return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct answer *a = arg;
    size_t n = size * nmemb;
    if (a->s && a->s->sink && answer_is_success(a)) {
        if (a->s->sink(data, n, a->s->sink_arg)) {
            a->cancelled = true;
            return 0;
        }
        a->s->written += n;
        return n;
    }
    if (a->s && a->s->out_fd >= 0 && answer_is_success(a)) {
        if (write_all(a->s->out_fd, data, n) < 0) {
            a->file_errno = errno;
            a->file_writing = true;
            return 0;
        }
        EVP_DigestUpdate(a->md, data, n);
        a->s->written += n;
        return n;
    }
    if (a->s && a->len + n > MAX_ERROR_BODY) {
        return n; /* the start of an answer says what went wrong */
    }
    char *p = realloc(a->body, a->len + n + 1);
    if (!p) {
        a->oom = true;
        return 0;
    }
    memcpy(p + a->len, data, n);
    a->body = p;
    a->len += n;
    a->body[a->len] = '\0';
    return n;
}

/* Copies the value of the header line 'data' ('n' bytes) into 'out' when it is 'name' (lower
 * case, with its ':'). */
static void header_value(const char *data, size_t n, const char *name, char *out, size_t size)
{
    size_t nl = strlen(name);
    if (n <= nl || strncasecmp(data, name, nl)) {
        return;
    }
    size_t i = nl;
    while (i < n && (data[i] == ' ' || data[i] == '\t')) {
        i++;
    }
    size_t j = n;
    while (j > i && isspace((unsigned char)data[j - 1])) {
        j--;
    }
    size_t len = j - i < size - 1 ? j - i : size - 1;
    memcpy(out, data + i, len);
    out[len] = '\0';
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    struct answer *a = arg;
    size_t n = size * nmemb;
    header_value(data, n, "x-amzn-requestid:", a->request_id, sizeof a->request_id);
    header_value(data, n, "x-nubo-sha256:", a->sha256, sizeof a->sha256);
    return n;
}

/* Hands curl the next bytes of the streamed body, read from 'in_fd' at 'offset'. */
static size_t on_read(char *buf, size_t size, size_t nmemb, void *arg)
{
    struct answer *a = arg;
    size_t want = size * nmemb;
    uint64_t left = a->s->in_size - a->offset;
    if (want > left) {
        want = (size_t)left;
    }
    if (want == 0) {
        return 0;
    }
    ssize_t got;
    do {
        got = pread(a->s->in_fd, buf, want, (off_t)(a->s->in_offset + a->offset));
    } while (got < 0 && errno == EINTR);
    if (got <= 0) {
        /* A file that shrinks under us would send less than the Content-Length announced. */
        a->file_errno = got < 0 ? errno : EIO;
        return CURL_READFUNC_ABORT;
    }
    a->offset += (uint64_t)got;
    return (size_t)got;
}

/* curl rewinds the body when it must send it again (a redirect, an authentication retry). */
static int on_seek(void *arg, curl_off_t offset, int origin)
{
    struct answer *a = arg;
    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > a->s->in_size) {
        return CURL_SEEKFUNC_CANTSEEK;
    }
    a->offset = (uint64_t)offset;
    return CURL_SEEKFUNC_OK;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct answer *a = arg;
    (void)ultotal;
    int stop;
    if (a->s->in_fd >= 0) {
        stop = a->s->progress(NUBO_TRANSFER_SEND, (uint64_t)ulnow, a->s->in_size, a->s->arg);
    } else if (!answer_is_success(a) && !a->s->sink) {
        stop = 0; /* a download reports only its file's bytes; a sink's caller keeps time */
    } else {
        stop = a->s->progress(NUBO_TRANSFER_RECEIVE, (uint64_t)dlnow,
                              dltotal > 0 ? (uint64_t)dltotal : 0, a->s->arg);
    }
    a->cancelled |= stop != 0;
    return stop;
}

/* Fills '*err' from an error answer: the REST shape {"error": {...}}, or the status alone. */
static void answer_error(const struct answer *a, long status, struct nubo_error *err)
{
    json_t *doc = a->body ? json_loads(a->body, 0, NULL) : NULL;
    json_t *e = json_object_get(doc, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *rid = json_string_value(json_object_get(e, "request_id"));
    if (code) {
        nubo_err_set(err, (int)status, code, "%s", msg ? msg : "");
    } else {
        char first[200] = "";
        if (a->body) {
            snprintf(first, sizeof first, "%.*s", (int)strcspn(a->body, "\r\n"), a->body);
        }
        nubo_err_set(err, (int)status,
                     status == 429   ? "Throttling"
                     : status >= 500 ? "Unavailable"
                                     : "HttpError",
                     "HTTP %ld%s%s", status, first[0] ? ": " : "", first);
    }
    if (err) {
        snprintf(err->request_id, sizeof err->request_id, "%s", rid ? rid : a->request_id);
    }
    json_decref(doc);
}

/* Appends "Name: value" (formatted) to '*h'. Returns 0, or -1 when out of memory. */
static int add_header(struct curl_slist **h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int add_header(struct curl_slist **h, const char *fmt, ...)
{
    char line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    struct curl_slist *t = curl_slist_append(*h, line);
    explicit_bzero(line, sizeof line);
    if (!t) {
        return -1;
    }
    *h = t;
    return 0;
}

/* The headers of 'r', signed. Returns them (the caller frees them with curl_slist_free_all()),
 * or NULL with '*err' set. */
static struct curl_slist *signed_headers(struct nubo_client *c, const struct request *r,
                                         struct nubo_error *err)
{
    char amz_date[17], auth[1024];
    nubo_sigv4_format_date((long long)time(NULL), amz_date);
    size_t body_len = r->body ? strlen(r->body) : 0;
    const struct nubo_stream *s = r->s;
    const char *content_type = body_len ? "application/json" : NULL;
    if (s && s->in_fd >= 0) {
        content_type = "application/octet-stream";
    }
    struct nubo_sigv4_input in = {
        .method = r->method,
        .path = r->path,
        .query = r->query,
        .host = c->host,
        .content_type = content_type,
        .body = r->body,
        .body_len = body_len,
        .payload_hash = s && s->in_fd >= 0 ? s->payload_hash : NULL,
        .amz_date = amz_date,
        .access_key = c->access_key,
        .secret = c->secret,
        .region = c->region,
        .service = "nubo",
    };
    if (nubo_sigv4_authorization(&in, auth, sizeof auth) < 0) {
        nubo_err_set(err, 0, "ConfigError", "could not sign the request (key or region too long)");
        return NULL;
    }
    struct curl_slist *h = NULL;
    int rc = add_header(&h, "Host: %s", c->host);
    rc |= add_header(&h, "X-Amz-Date: %s", amz_date);
    rc |= add_header(&h, "Authorization: %s", auth);
    explicit_bzero(auth, sizeof auth);
    rc |= add_header(&h, "Content-Type:%s%s", content_type ? " " : "",
                     content_type ? content_type : "");
    if (in.payload_hash) {
        /* Expect: 100-continue stays (curl's default for uploads): a refusal then comes
         * before the body is sent. */
        rc |= add_header(&h, "x-amz-content-sha256: %s", in.payload_hash);
    } else {
        rc |= add_header(&h, "Expect:");
    }
    if (s && s->out_fd >= 0) {
        rc |= add_header(&h, "Accept: */*");
    } else {
        rc |= add_header(&h, "Accept: application/json");
    }
    if (s && s->range) {
        rc |= add_header(&h, "Range: %s", s->range);
    }
    if (s && s->header) {
        rc |= add_header(&h, "%s", s->header);
    }
    if (rc) {
        curl_slist_free_all(h);
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return NULL;
    }
    return h;
}

/* One attempt. Returns the HTTP status, or -1 with '*err' set when no answer came. */
static long attempt(struct nubo_client *c, const struct request *r, struct answer *a,
                    struct nubo_error *err)
{
    struct curl_slist *h = signed_headers(c, r, err);
    if (!h) {
        return -1;
    }
    struct nubo_stream *s = r->s;
    CURL *k = c->curl;
    a->k = k;
    a->s = s;
    curl_easy_reset(k);
    curl_easy_setopt(k, CURLOPT_URL, r->url);
    curl_easy_setopt(k, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(k, CURLOPT_USERAGENT, "libnubo/" NUBO_VERSION);
    curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(k, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(k, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(k, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(k, CURLOPT_HEADERDATA, a);
    if (s) {
        /* A transfer takes as long as it takes; one that stalls for the time limit fails. */
        curl_easy_setopt(k, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(k, CURLOPT_LOW_SPEED_TIME, (long)c->timeout_s);
        if (s->progress) {
            curl_easy_setopt(k, CURLOPT_NOPROGRESS, 0L);
            curl_easy_setopt(k, CURLOPT_XFERINFOFUNCTION, on_progress);
            curl_easy_setopt(k, CURLOPT_XFERINFODATA, a);
        }
    } else {
        curl_easy_setopt(k, CURLOPT_TIMEOUT, (long)c->timeout_s);
    }
    if (s && s->in_fd >= 0) {
        curl_easy_setopt(k, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(k, CURLOPT_CUSTOMREQUEST, r->method);
        curl_easy_setopt(k, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(k, CURLOPT_READDATA, a);
        curl_easy_setopt(k, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(k, CURLOPT_SEEKDATA, a);
        curl_easy_setopt(k, CURLOPT_INFILESIZE_LARGE, (curl_off_t)s->in_size);
    } else if (!strcmp(r->method, "GET")) {
        curl_easy_setopt(k, CURLOPT_HTTPGET, 1L);
    } else {
        size_t body_len = r->body ? strlen(r->body) : 0;
        curl_easy_setopt(k, CURLOPT_CUSTOMREQUEST, r->method);
        if (body_len || !strcmp(r->method, "POST")) {
            curl_easy_setopt(k, CURLOPT_POSTFIELDS, r->body ? r->body : "");
            curl_easy_setopt(k, CURLOPT_POSTFIELDSIZE, (long)body_len);
        }
    }
    CURLcode rc = curl_easy_perform(k);
    curl_slist_free_all(h);
    long status = 0;
    curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &status);
    if (a->oom) {
        nubo_err_set(err, 0, "ConnectionError", "out of memory reading the answer");
        return -1;
    }
    if (a->cancelled) {
        nubo_err_set(err, 0, "Cancelled", "the transfer was cancelled");
        return -1;
    }
    if (a->file_errno) {
        nubo_err_set(err, 0, "FileError", "could not %s the file: %s",
                     a->file_writing ? "write" : "read", strerror(a->file_errno));
        return -1;
    }
    /* A server may refuse an upload before it has read the body: its answer counts. */
    bool refused_early = s && s->in_fd >= 0 && status >= 400 && a->body;
    if (rc != CURLE_OK && !refused_early) {
        nubo_err_set(err, 0, rc == CURLE_OPERATION_TIMEDOUT ? "Timeout" : "ConnectionError",
                     "could not reach \"%s\": %s", c->endpoint, curl_easy_strerror(rc));
        return -1;
    }
    return status;
}
static void back_off(struct nubo_client *c, int retry)
{
    long long d = (long long)c->base_delay_ms << (retry < 10 ? retry : 10);
    if (d > 5000) {
        d = 5000;
    }
    d = d / 2 + (d > 1 ? rand_r(&c->seed) % (d / 2 + 1) : 0); /* jitter: [d/2, d] */
    struct timespec ts = {(time_t)(d / 1000), (long)(d % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* Sets a stream's output and digest back to nothing before an attempt. Returns 0, or -1 with
 * '*err' set. */
static int stream_rewind(struct nubo_stream *s, EVP_MD_CTX *md, struct nubo_error *err)
{
    s->written = 0;
    s->sha256[0] = '\0';
    if (s->out_fd >= 0 && (ftruncate(s->out_fd, 0) < 0 || lseek(s->out_fd, 0, SEEK_SET) < 0)) {
        nubo_err_set(err, 0, "FileError", "could not truncate the output file: %s",
                     strerror(errno));
        return -1;
    }
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        nubo_err_set(err, 0, "ConfigError", "could not set up SHA-256");
        return -1;
    }
    return 0;
}

/* Sends 'method' 'path'?'query' with the JSON 'body' or the stream 's' (one of them, or
 * neither), retrying when 'idempotent'. On 2xx stores the answer's body in '*reply' (a new
 * string, "" when there was none or it went to 's->out_fd') and returns the status; else
 * returns -1 with '*err' set. */
static int send_request(struct nubo_client *c, const char *method, const char *path,
                        const char *query, const char *body, struct nubo_stream *s, bool idempotent,
                        char **reply, struct nubo_error *err)
{
    struct nubo_error local;
    if (!err) {
        err = &local; /* the retry needs the code */
    }
    size_t n =
        strlen(c->origin) + strlen(c->prefix) + strlen(path) + (query ? strlen(query) : 0) + 2;
    char *full_path = malloc(strlen(c->prefix) + strlen(path) + 1);
    char *url = malloc(n);
    EVP_MD_CTX *md = s ? EVP_MD_CTX_new() : NULL;
    if (!url || !full_path || (s && !md)) {
        free(url);
        free(full_path);
        EVP_MD_CTX_free(md);
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return -1;
    }
    sprintf(full_path, "%s%s", c->prefix, path);
    sprintf(url, "%s%s%s%s", c->origin, full_path, query && *query ? "?" : "",
            query && *query ? query : "");
    struct request r = {method, url, full_path, query, body, s};
    int tries = idempotent ? c->attempts : 1;
    long status = -1;
    for (int i = 0; i < tries; i++) {
        struct answer a = {.md = md};
        if (i > 0) {
            back_off(c, i - 1);
        }
        if (s && stream_rewind(s, md, err) < 0) {
            status = -1;
            break;
        }
        status = attempt(c, &r, &a, err);
        bool retry = (status < 0 &&
                      (!strcmp(err->code, "ConnectionError") || !strcmp(err->code, "Timeout"))) ||
                     status == 429 || status == 502 || status == 503 || status == 504;
        if (status >= 200 && status < 300) {
            *reply = a.body ? a.body : strdup("");
            if (s) {
                unsigned char digest[EVP_MAX_MD_SIZE];
                unsigned int len = 0;
                EVP_DigestFinal_ex(md, digest, &len);
                for (unsigned int j = 0; j < len && j < 32; j++) {
                    snprintf(s->body_sha256 + 2 * j, 3, "%02x", digest[j]);
                }
                memcpy(s->sha256, a.sha256, sizeof s->sha256);
            }
            break;
        }
        if (status >= 0) {
            answer_error(&a, status, err);
        }
        free(a.body);
        if (!retry) {
            break;
        }
    }
    EVP_MD_CTX_free(md);
    free(url);
    free(full_path);
    return status >= 200 && status < 300 ? (int)status : -1;
}

NUBO_API int nubo_client_request(struct nubo_client *c, const char *method, const char *path,
                                 const char *query, const char *body, bool idempotent, char **reply,
                                 struct nubo_error *err)
{
    return send_request(c, method, path, query, body, NULL, idempotent, reply, err);
}

int nubo_client_stream(struct nubo_client *c, const char *method, const char *path,
                       const char *query, struct nubo_stream *s, bool idempotent, char **reply,
                       struct nubo_error *err)
{
    return send_request(c, method, path, query, NULL, s, idempotent, reply, err);
}

int nubo_call(struct nubo_client *c, const char *method, const char *path, const char *query,
              json_t *body, bool idempotent, json_t **reply, struct nubo_error *err)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    char *answer = NULL;
    if (body && !text) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return -1;
    }
    int status = nubo_client_request(c, method, path, query, text, idempotent, &answer, err);
    free(text);
    if (status < 0) {
        return -1;
    }
    if (reply) {
        *reply = NULL;
        if (*answer) {
            json_error_t je;
            *reply = json_loads(answer, 0, &je);
            if (!*reply || !json_is_object(*reply)) {
                json_decref(*reply);
                *reply = NULL;
                nubo_err_set(err, status, "ProtocolError",
                             "the answer to %s %s is no JSON "
                             "object: %s",
                             method, path, je.text);
                free(answer);
                return -1;
            }
        }
    }
    free(answer);
    return 0;
}
