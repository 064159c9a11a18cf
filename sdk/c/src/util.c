/* JSON field readers, request helpers and the paged iterator that libnubo's resource modules
 * share. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

char *nubo_js_str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? strdup(s) : NULL;
}

long long nubo_js_int(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

bool nubo_js_bool(const json_t *o, const char *key)
{
    return json_is_true(json_object_get(o, key));
}

char *nubo_js_dump(const json_t *o)
{
    return json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY);
}

int nubo_js_tags(const json_t *o, const char *key, struct nubo_tag **tags, size_t *n)
{
    json_t *obj = json_object_get(o, key);
    *tags = NULL;
    *n = 0;
    if (!json_is_object(obj) || json_object_size(obj) == 0) {
        return 0;
    }
    *tags = calloc(json_object_size(obj), sizeof **tags);
    if (!*tags) {
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        struct nubo_tag *t = &(*tags)[(*n)++];
        t->key = strdup(k);
        t->value = strdup(json_is_string(v) ? json_string_value(v) : "");
        if (!t->key || !t->value) {
            return -1;
        }
    }
    return 0;
}

void nubo_tags_free(struct nubo_tag *tags, size_t n)
{
    for (size_t i = 0; tags && i < n; i++) {
        free(tags[i].key);
        free(tags[i].value);
    }
    free(tags);
}

json_t *nubo_js_tags_object(const struct nubo_tag *tags, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < n; i++) {
        json_object_set_new(o, tags[i].key, json_string(tags[i].value ? tags[i].value : ""));
    }
    return o;
}

void *nubo_js_array(const json_t *reply, const char *key, size_t size,
                    int (*parse)(const json_t *o, void *item), void (*clear)(void *item), size_t *n,
                    bool *ok, struct nubo_error *err)
{
    json_t *arr = json_object_get(reply, key);
    *n = 0;
    *ok = false;
    if (!json_is_array(arr)) {
        nubo_err_set(err, 0, "ProtocolError", "the answer has no \"%s\" array", key);
        return NULL;
    }
    size_t count = json_array_size(arr);
    if (count == 0) {
        *ok = true;
        return NULL;
    }
    char *items = calloc(count, size);
    if (!items) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        if (parse(json_array_get(arr, i), items + i * size) < 0) {
            for (size_t j = 0; j <= i; j++) {
                clear(items + j * size);
            }
            free(items);
            nubo_err_set(err, 0, "ProtocolError", "could not read item %zu of \"%s\"", i, key);
            return NULL;
        }
    }
    *n = count;
    *ok = true;
    return items;
}

char *nubo_id_path(const char *base, const char *id, const char *suffix)
{
    char *enc = nubo_urlencode(id);
    if (!enc) {
        return NULL;
    }
    size_t n = strlen(base) + strlen(enc) + strlen(suffix) + 2;
    char *p = malloc(n);
    if (p) {
        snprintf(p, n, "%s/%s%s", base, enc, suffix);
    }
    free(enc);
    return p;
}

void *nubo_get_list(struct nubo_client *c, const char *path, const char *query, const char *key,
                    size_t size, int (*parse)(const json_t *, void *), void (*clear)(void *),
                    struct nubo_error *err)
{
    json_t *reply = NULL;
    if (nubo_call(c, "GET", path, query, NULL, true, &reply, err) < 0) {
        return NULL;
    }
    return nubo_js_list(reply, key, size, parse, clear, err);
}

const char *nubo_filters_query(struct nubo_query *q, const struct nubo_filter *f, size_t n,
                               struct nubo_error *err)
{
    nubo_query_add_filters(q, f, n);
    const char *text = nubo_query_text(q);
    if (!text) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
    }
    return text;
}

void *nubo_call_one(struct nubo_client *c, const char *method, const char *path, json_t *body,
                    bool idempotent, size_t size, int (*parse)(const json_t *, void *),
                    void (*clear)(void *), struct nubo_error *err)
{
    json_t *reply = NULL;
    if (!body) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return NULL;
    }
    int rc = nubo_call(c, method, path, NULL, body, idempotent, &reply, err);
    json_decref(body);
    if (rc < 0) {
        return NULL;
    }
    void *item = calloc(1, size);
    if (!item || parse(reply, item) < 0) {
        if (item) {
            clear(item);
        }
        free(item);
        json_decref(reply);
        nubo_err_set(err, 0, "ProtocolError", "could not read the answer to %s %s", method, path);
        return NULL;
    }
    json_decref(reply);
    return item;
}

double nubo_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void nubo_sleep_s(double s)
{
    if (s <= 0) {
        return;
    }
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

int nubo_need(const char *value, const char *what, struct nubo_error *err)
{
    if (!value || !*value) {
        nubo_err_set(err, 0, "InvalidParameterValue", "%s is required", what);
        return -1;
    }
    return 0;
}

/* The shape shared by every public list struct. */
struct any_list {
    void *items;
    size_t n;
};

void *nubo_list_new(void *items, size_t n, size_t size, void (*clear)(void *item),
                    struct nubo_error *err)
{
    struct any_list *l = calloc(1, sizeof *l);
    if (!l) {
        for (size_t i = 0; i < n; i++) {
            clear((char *)items + i * size);
        }
        free(items);
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return NULL;
    }
    l->items = items;
    l->n = n;
    return l;
}

void *nubo_js_list(json_t *reply, const char *key, size_t size,
                   int (*parse)(const json_t *o, void *item), void (*clear)(void *item),
                   struct nubo_error *err)
{
    size_t n;
    bool ok;
    void *items = nubo_js_array(reply, key, size, parse, clear, &n, &ok, err);
    json_decref(reply);
    return ok ? nubo_list_new(items, n, size, clear, err) : NULL;
}

void *nubo_js_item(json_t *reply, size_t size, int (*parse)(const json_t *o, void *item),
                   void (*clear)(void *item), const char *what, struct nubo_error *err)
{
    void *item = calloc(1, size);
    if (!item || parse(reply, item) < 0) {
        nubo_item_free(item, clear);
        item = NULL;
        nubo_err_set(err, 0, "ProtocolError", "could not read %s", what);
    }
    json_decref(reply);
    return item;
}

void nubo_list_free(void *list, size_t size, void (*clear)(void *item))
{
    struct any_list *l = list;
    if (!l) {
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        clear((char *)l->items + i * size);
    }
    free(l->items);
    free(l);
}

void nubo_item_free(void *item, void (*clear)(void *item))
{
    if (item) {
        clear(item);
        free(item);
    }
}

int nubo_page_iter_init(struct nubo_page_iter *it, struct nubo_client *client, const char *path,
                        const char *array_key, const struct nubo_filter *filters, size_t n,
                        int page_size, void *item, size_t size,
                        int (*parse)(const json_t *o, void *item), void (*clear)(void *item))
{
    struct nubo_query q = {0};
    nubo_query_add_filters(&q, filters, n);
    const char *text = nubo_query_text(&q);
    it->query = text ? strdup(text) : NULL;
    nubo_query_clear(&q);
    it->client = client;
    it->path = path;
    it->array_key = array_key;
    it->page_size = page_size;
    it->item = item;
    it->size = size;
    it->parse = parse;
    it->clear = clear;
    return it->query ? 0 : -1;
}

/* Fetches the next page. Returns 0, or -1 with '*err' set. */
static int fetch(struct nubo_page_iter *it, struct nubo_error *err)
{
    char size[16];
    snprintf(size, sizeof size, "%d", it->page_size);
    /* The filters are encoded already: they go as they are, then the paging arguments. */
    struct nubo_query paging = {0};
    nubo_query_add(&paging, "max_results", it->page_size > 0 ? size : NULL);
    nubo_query_add(&paging, "next_token", it->next_token);
    const char *p = nubo_query_text(&paging);
    if (!p) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return -1;
    }
    size_t len = strlen(it->query) + strlen(p) + 2;
    char *query = malloc(len);
    if (!query) {
        nubo_query_clear(&paging);
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return -1;
    }
    snprintf(query, len, "%s%s%s", it->query, *it->query && *p ? "&" : "", p);
    nubo_query_clear(&paging);
    json_t *reply = NULL;
    int rc = nubo_call(it->client, "GET", it->path, query, NULL, true, &reply, err);
    free(query);
    if (rc < 0) {
        return -1;
    }
    if (!json_is_array(json_object_get(reply, it->array_key))) {
        json_decref(reply);
        nubo_err_set(err, 0, "ProtocolError", "the answer to GET %s has no \"%s\" array", it->path,
                     it->array_key);
        return -1;
    }
    json_decref(it->page);
    it->page = reply;
    it->index = 0;
    free(it->next_token);
    it->next_token = nubo_js_str(reply, "next_token");
    it->started = true;
    return 0;
}

int nubo_page_iter_next(struct nubo_page_iter *it, struct nubo_error *err)
{
    it->clear(it->item);
    memset(it->item, 0, it->size);
    for (;;) {
        if (!it->started && fetch(it, err) < 0) {
            return -1;
        }
        json_t *arr = json_object_get(it->page, it->array_key);
        if (it->index < json_array_size(arr)) {
            if (it->parse(json_array_get(arr, it->index++), it->item) < 0) {
                it->clear(it->item);
                memset(it->item, 0, it->size);
                nubo_err_set(err, 0, "ProtocolError", "could not read an item of \"%s\"",
                             it->array_key);
                return -1;
            }
            return 1;
        }
        if (!it->next_token) {
            return 0;
        }
        if (fetch(it, err) < 0) {
            return -1;
        }
    }
}

void nubo_page_iter_clear(struct nubo_page_iter *it)
{
    if (it->item) {
        it->clear(it->item);
    }
    json_decref(it->page);
    free(it->next_token);
    free(it->query);
}
