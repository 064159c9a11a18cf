/* What libnubo's source files share and callers never see: the client's insides, the signed
 * request call, query strings, JSON field readers and paged iterators. None of it is exported
 * (the library is built with -fvisibility=hidden; only NUBO_API names are). */
#ifndef NUBO_SDK_INTERNAL_H
#define NUBO_SDK_INTERNAL_H

#include "nubo/nubo.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fills '*err' (may be NULL) with 'http_status', 'code' and a printf-style message. */
void nubo_err_set(struct nubo_error *err, int http_status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* --- query strings: "a=1&b=x%2Cy", RFC 3986-encoded, as SigV4 wants them --- */

struct nubo_query {
    char *s; /* NULL until something is added, or when memory ran out ('failed') */
    size_t len, cap;
    bool failed;
};

/* Appends 'name'='value', both percent-encoded. A NULL 'value' adds nothing. */
void nubo_query_add(struct nubo_query *q, const char *name, const char *value);

/* Appends every filter of 'filters'. */
void nubo_query_add_filters(struct nubo_query *q, const struct nubo_filter *filters, size_t n);

/* Returns the query text ("" when empty) or NULL when memory ran out; owned by 'q'. */
const char *nubo_query_text(const struct nubo_query *q);

/* Frees what 'q' holds (not 'q'). */
void nubo_query_clear(struct nubo_query *q);

/* Returns 's' percent-encoded (RFC 3986 unreserved characters kept) as a new string the
 * caller free()s, or NULL when out of memory. */
char *nubo_urlencode(const char *s);

/* --- calls ---------------------------------------------------------------------------------- */

/* Sends a signed request (as nubo_client_request()) with 'body' (borrowed, may be NULL) as JSON.
 * On 2xx, stores the parsed answer in '*reply' (a new reference, NULL for 204; may be NULL when
 * the caller wants nothing) and returns 0; else returns -1 with '*err' set. */
int nubo_call(struct nubo_client *client, const char *method, const char *path, const char *query,
              json_t *body, bool idempotent, json_t **reply, struct nubo_error *err);

/* A request whose body is streamed from a file, or whose answer is streamed into one. */
struct nubo_stream {
    int in_fd; /* -1: no body; else 'in_size' bytes of it from offset 'in_offset' (pread) */
    uint64_t in_size;
    uint64_t in_offset;
    const char *payload_hash;  /* the body's SHA-256 in hex or "UNSIGNED-PAYLOAD", signed */
    int out_fd;                /* -1: none; else where a 2xx answer's body goes, truncated and
                                 * rewritten from offset 0 on every attempt */
    const char *range;         /* a Range header ("bytes=0-99"), or NULL */
    const char *header;        /* one more header line ("Last-Event-ID: 4.2"), unsigned; or NULL */
    nubo_transfer_fn progress; /* may be NULL */
    void *arg;
    /* Instead of 'out_fd' (then -1): called with each piece of a 2xx answer's body as it
     * arrives, with 'sink_arg'; a non-zero return stops the transfer ("Cancelled"). With a
     * sink, 'progress' is called (about once a second while nothing comes) from the start,
     * before the answer too. */
    int (*sink)(const char *data, size_t n, void *sink_arg);
    void *sink_arg;
    /* Filled on success: */
    uint64_t written;     /* bytes written to 'out_fd' */
    char sha256[65];      /* the answer's x-nubo-sha256, "" when it had none */
    char body_sha256[65]; /* the SHA-256 of the bytes written to 'out_fd' */
};

/* As nubo_client_request(), for the stream 's' (set up by the caller, which owns its files).
 * A transfer has no overall time limit: it fails when no byte moves for the client's timeout.
 * Besides the usual codes, fails with "FileError" (reading or writing a file) and "Cancelled"
 * (the progress callback returned non-zero). */
int nubo_client_stream(struct nubo_client *client, const char *method, const char *path,
                       const char *query, struct nubo_stream *s, bool idempotent, char **reply,
                       struct nubo_error *err);

/* Returns "<base>/<id, percent-encoded><suffix>" ("/v1/images/ami-1/file") as a new string the
 * caller free()s, or NULL when out of memory. */
char *nubo_id_path(const char *base, const char *id, const char *suffix);

/* GETs 'path' with 'query' and parses its 'key' array into a new list (see nubo_list_new()).
 * Returns it, or NULL with '*err' set. */
void *nubo_get_list(struct nubo_client *c, const char *path, const char *query, const char *key,
                    size_t size, int (*parse)(const json_t *, void *), void (*clear)(void *),
                    struct nubo_error *err);

/* Adds 'n' filters to 'q' and returns its text (owned by 'q'), or NULL with '*err' set. */
const char *nubo_filters_query(struct nubo_query *q, const struct nubo_filter *f, size_t n,
                               struct nubo_error *err);

/* Sends 'body' (stolen; NULL means out of memory) to 'path' with 'method' and parses the answer
 * as one item of 'size' bytes. Returns a new item the caller frees with nubo_item_free(..,
 * 'clear'), or NULL with '*err' set. */
void *nubo_call_one(struct nubo_client *c, const char *method, const char *path, json_t *body,
                    bool idempotent, size_t size, int (*parse)(const json_t *, void *),
                    void (*clear)(void *), struct nubo_error *err);

/* An image (struct nubo_image) read from its JSON into the zeroed 'item', and what frees its
 * fields: images.c's, shared with compute.c (images made from instances). */
int nubo_image_parse(const json_t *o, void *item);
void nubo_image_clear(void *item);

/* Returns a monotonic clock's seconds. */
double nubo_now_s(void);

/* Sleeps 's' seconds (nothing when 's' <= 0), through signals. */
void nubo_sleep_s(double s);

/* Returns a new random client token (32 hex digits) the caller free()s, or NULL. */
char *nubo_client_token(void);

/* --- JSON fields ------------------------------------------------------------------------------ */

/* Returns a copy of the string member 'key' of 'o' (a new string, free()d by the caller), or
 * NULL when it is absent, null or not a string. */
char *nubo_js_str(const json_t *o, const char *key);

/* Returns the integer member 'key' of 'o', or 0. */
long long nubo_js_int(const json_t *o, const char *key);

/* Returns the boolean member 'key' of 'o', or false. */
bool nubo_js_bool(const json_t *o, const char *key);

/* Returns 'o' as compact JSON text, a new string the caller free()s. */
char *nubo_js_dump(const json_t *o);

/* Reads the object member 'key' ({"k": "v"}) into a new array '*tags' of '*n' tags. Returns 0, or
 * -1 when out of memory. */
int nubo_js_tags(const json_t *o, const char *key, struct nubo_tag **tags, size_t *n);

/* Frees 'n' tags and the array. */
void nubo_tags_free(struct nubo_tag *tags, size_t n);

/* Builds a JSON object {"k": "v", ...} of 'n' tags; a new reference. */
json_t *nubo_js_tags_object(const struct nubo_tag *tags, size_t n);

/* Parses an answer's 'key' array into a new array of '*n' items of 'size' bytes each, with
 * 'parse' (which fills a zeroed item and returns 0, or -1 on failure). Returns the array (NULL
 * with '*n' 0 for an empty list), or NULL with '*err' set; 'ok' tells the two apart. */
void *nubo_js_array(const json_t *reply, const char *key, size_t size,
                    int (*parse)(const json_t *o, void *item), void (*clear)(void *item), size_t *n,
                    bool *ok, struct nubo_error *err);

/* Sets '*err' to InvalidParameterValue "<what> is required" when 'value' is NULL or empty.
 * Returns 0, or -1. */
int nubo_need(const char *value, const char *what, struct nubo_error *err);

/* Every public list struct is laid out as { T *items; size_t n; }: these work on any of them.
 * Returns a new list holding 'items' (taken) and 'n', or NULL with '*err' set (clearing each
 * item of 'size' bytes with 'clear' and freeing 'items'). */
void *nubo_list_new(void *items, size_t n, size_t size, void (*clear)(void *item),
                    struct nubo_error *err);

/* Parses 'reply' (consumed) as nubo_js_array() does into a new list (see nubo_list_new()).
 * Returns it, or NULL with '*err' set. */
void *nubo_js_list(json_t *reply, const char *key, size_t size,
                   int (*parse)(const json_t *o, void *item), void (*clear)(void *item),
                   struct nubo_error *err);

/* Parses 'reply' (consumed) with 'parse' into a new zeroed item of 'size' bytes. Returns it (the
 * caller frees it with nubo_item_free(.., 'clear')), or NULL with '*err' set to ProtocolError
 * "could not read <what>". */
void *nubo_js_item(json_t *reply, size_t size, int (*parse)(const json_t *o, void *item),
                   void (*clear)(void *item), const char *what, struct nubo_error *err);

/* Clears each item of the list 'list' with 'clear' and frees the list. Accepts NULL. */
void nubo_list_free(void *list, size_t size, void (*clear)(void *item));

/* Clears 'item' with 'clear' and frees it. Accepts NULL. */
void nubo_item_free(void *item, void (*clear)(void *item));

/* --- paged iterators --------------------------------------------------------------------------- */

struct nubo_page_iter {
    struct nubo_client *client;
    const char *path;      /* static */
    const char *array_key; /* static: "instances" */
    char *query;           /* the filters, encoded */
    int page_size;
    json_t *page;
    size_t index;
    char *next_token;
    bool started;
    void *item; /* the current item, 'size' bytes */
    size_t size;
    int (*parse)(const json_t *o, void *item);
    void (*clear)(void *item);
};

/* Sets up 'it' (zeroed by the caller) to walk 'path'. Returns 0, or -1 when out of memory. */
int nubo_page_iter_init(struct nubo_page_iter *it, struct nubo_client *client, const char *path,
                        const char *array_key, const struct nubo_filter *filters, size_t n,
                        int page_size, void *item, size_t size,
                        int (*parse)(const json_t *o, void *item), void (*clear)(void *item));

/* Parses the next item into 'it->item' and returns 1; 0 at the end; -1 with '*err' set. */
int nubo_page_iter_next(struct nubo_page_iter *it, struct nubo_error *err);

/* Frees what 'it' holds (not 'it'). */
void nubo_page_iter_clear(struct nubo_page_iter *it);

#endif
