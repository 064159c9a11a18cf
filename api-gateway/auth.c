/* Authentication: SigV4 verification with a small TTL cache of unsealed keys (see auth.h). */
#include "auth.h"

#include "nubo/error.h"
#include "nubo/http.h"
#include "nubo/pg.h"
#include "nubo/sigv4.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS     1024 /* power of two */
#define MAX_SIG_HEADERS 64

struct key_entry {
    char key_id[132];
    char secret[64];
    struct gw_principal who;
    bool enabled; /* key, user and tenant all enabled */
    bool known;   /* false: a cached "no such key", so floods of bad ids stay cheap */
    time_t fetched;
};

struct gw_auth {
    struct nb_pg_pool *pool;
    char region[64];
    uint8_t master_key[NB_MASTER_KEY_LEN];
    pthread_rwlock_t lock;
    struct key_entry slots[CACHE_SLOTS]; /* direct-mapped by hash of the key id */
};

struct gw_auth *gw_auth_new(struct nb_pg_pool *pool, const uint8_t master_key[NB_MASTER_KEY_LEN],
                            const char *region)
{
    struct gw_auth *auth = calloc(1, sizeof *auth);
    if (!auth) {
        abort();
    }
    auth->pool = pool;
    snprintf(auth->region, sizeof auth->region, "%s", region);
    memcpy(auth->master_key, master_key, NB_MASTER_KEY_LEN);
    pthread_rwlock_init(&auth->lock, NULL);
    return auth;
}

void gw_auth_free(struct gw_auth *auth)
{
    if (!auth) {
        return;
    }
    pthread_rwlock_destroy(&auth->lock);
    memset(auth, 0, sizeof *auth);
    free(auth);
}

static size_t slot_of(const char *key_id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key_id; *p; p++) {
        h = (h ^ *p) * 16777619u;
    }
    return h & (CACHE_SLOTS - 1);
}

/* Reads key 'key_id' from the database into '*e'. Returns 0 (e->known tells whether it exists),
 * or -1 with 'err' when the database cannot answer. */
static int fetch_key(struct gw_auth *auth, const char *key_id, struct key_entry *e,
                     struct nb_error *err)
{
    memset(e, 0, sizeof *e);
    snprintf(e->key_id, sizeof e->key_id, "%s", key_id);
    struct nb_pg_conn *conn = nb_pg_acquire(auth->pool, 5000, err);
    if (!conn) {
        return -1;
    }
    const char *params[] = {key_id};
    PGresult *res = nb_pg_exec(conn,
                               "SELECT k.secret_sealed, u.id, u.tenant_id, u.role, "
                               "k.enabled AND u.enabled AND t.enabled "
                               "FROM access_keys k JOIN users u ON u.id = k.user_id "
                               "JOIN tenants t ON t.id = u.tenant_id WHERE k.id = $1",
                               1, params, err);
    nb_pg_release(conn);
    if (!res) {
        return -1;
    }
    if (PQntuples(res) == 1) {
        size_t len;
        char *secret = nb_unseal(auth->master_key, PQgetvalue(res, 0, 0), key_id, &len, err);
        if (!secret) {
            /* A key sealed under another master key: treat as unknown, say so in the log. */
            PQclear(res);
            return -1;
        }
        snprintf(e->secret, sizeof e->secret, "%s", secret);
        memset(secret, 0, len);
        free(secret);
        snprintf(e->who.user_id, sizeof e->who.user_id, "%s", PQgetvalue(res, 0, 1));
        snprintf(e->who.tenant_id, sizeof e->who.tenant_id, "%s", PQgetvalue(res, 0, 2));
        snprintf(e->who.key_id, sizeof e->who.key_id, "%s", key_id);
        if (gw_role_parse(PQgetvalue(res, 0, 3), &e->who.role) < 0) {
            e->who.role = GW_ROLE_READER;
        }
        e->enabled = PQgetvalue(res, 0, 4)[0] == 't';
        e->known = true;
    }
    PQclear(res);
    return 0;
}

/* Copies the cached entry for 'key_id' into '*out' if it is fresh. */
static bool cache_get(struct gw_auth *auth, const char *key_id, time_t now, struct key_entry *out)
{
    const struct key_entry *e = &auth->slots[slot_of(key_id)];
    bool hit = false;
    pthread_rwlock_rdlock(&auth->lock);
    if (e->fetched && now - e->fetched < GW_AUTH_CACHE_TTL && !strcmp(e->key_id, key_id)) {
        *out = *e;
        hit = true;
    }
    pthread_rwlock_unlock(&auth->lock);
    return hit;
}

static void cache_put(struct gw_auth *auth, const struct key_entry *e)
{
    pthread_rwlock_wrlock(&auth->lock);
    auth->slots[slot_of(e->key_id)] = *e;
    pthread_rwlock_unlock(&auth->lock);
}

void gw_auth_forget(struct gw_auth *auth, const char *key_id)
{
    pthread_rwlock_wrlock(&auth->lock);
    if (!key_id) {
        memset(auth->slots, 0, sizeof auth->slots);
    } else {
        struct key_entry *e = &auth->slots[slot_of(key_id)];
        if (!strcmp(e->key_id, key_id)) {
            memset(e, 0, sizeof *e);
        }
    }
    pthread_rwlock_unlock(&auth->lock);
}

struct header_list {
    struct nb_sigv4_header h[MAX_SIG_HEADERS];
    size_t n;
};

static void collect_header(const char *name, const char *value, void *arg)
{
    struct header_list *l = arg;
    if (l->n < MAX_SIG_HEADERS) {
        l->h[l->n].name = name;
        l->h[l->n].value = value;
        l->n++;
    }
}

enum gw_auth_result gw_auth_check(struct gw_auth *auth, struct nb_http_req *req, time_t now,
                                  struct gw_principal *who, struct nb_error *err)
{
    memset(who, 0, sizeof *who);
    struct header_list headers = {.n = 0};
    nb_http_req_headers(req, collect_header, &headers);
    if (headers.n == MAX_SIG_HEADERS) {
        nb_error_set(err, NB_ERR_INVALID, "too many request headers (at most %d)",
                     MAX_SIG_HEADERS - 1);
        return GW_AUTH_INCOMPLETE;
    }
    size_t body_len;
    const char *body = nb_http_req_body(req, &body_len);
    struct nb_sigv4_request sr = {
        .method = nb_http_req_method(req),
        .path = nb_http_req_raw_path(req),
        .query = nb_http_req_raw_query(req),
        .headers = headers.h,
        .n_headers = headers.n,
        .body = body,
        .body_len = body_len,
        .body_streamed = nb_http_req_is_streamed(req),
    };
    struct nb_sigv4_auth claim;
    enum nb_sigv4_result r = nb_sigv4_parse(&sr, &claim, err);
    if (r == NB_SIGV4_MISSING) {
        return GW_AUTH_MISSING;
    }
    if (r != NB_SIGV4_OK) {
        return GW_AUTH_INCOMPLETE;
    }
    snprintf(who->key_id, sizeof who->key_id, "%s", claim.access_key);
    if (strcmp(claim.region, auth->region)) {
        nb_error_set(err, NB_ERR_AUTH,
                     "Credential should be scoped to a valid region: '%s', not '%s'", auth->region,
                     claim.region);
        return GW_AUTH_MISMATCH;
    }

    struct key_entry e;
    if (!cache_get(auth, claim.access_key, now, &e)) {
        if (fetch_key(auth, claim.access_key, &e, err) < 0) {
            return GW_AUTH_UNAVAILABLE;
        }
        e.fetched = now;
        cache_put(auth, &e);
    }
    if (!e.known) {
        nb_error_set(err, NB_ERR_AUTH,
                     "AWS was not able to validate the provided access "
                     "credentials");
        return GW_AUTH_UNKNOWN_KEY;
    }
    switch (nb_sigv4_verify(&sr, &claim, e.secret, now, err)) {
    case NB_SIGV4_OK:
        break;
    case NB_SIGV4_EXPIRED:
        return GW_AUTH_EXPIRED;
    case NB_SIGV4_MISMATCH:
        return GW_AUTH_MISMATCH;
    default:
        return GW_AUTH_INCOMPLETE;
    }
    memset(e.secret, 0, sizeof e.secret);
    if (!e.enabled) {
        nb_error_set(err, NB_ERR_AUTH, "access key %s is disabled (or its user or account is)",
                     claim.access_key);
        return GW_AUTH_DISABLED;
    }
    *who = e.who;
    return GW_AUTH_OK;
}

const char *gw_auth_ec2_code(enum gw_auth_result r)
{
    switch (r) {
    case GW_AUTH_OK:
        return NULL;
    case GW_AUTH_MISSING:
    case GW_AUTH_UNKNOWN_KEY:
        return "AuthFailure";
    case GW_AUTH_INCOMPLETE:
        return "IncompleteSignature";
    case GW_AUTH_EXPIRED:
        return "RequestExpired";
    case GW_AUTH_MISMATCH:
        return "SignatureDoesNotMatch";
    case GW_AUTH_DISABLED:
        return "OptInRequired";
    case GW_AUTH_UNAVAILABLE:
        return "Unavailable";
    }
    return "AuthFailure";
}

const char *gw_role_name(enum gw_role role)
{
    switch (role) {
    case GW_ROLE_ADMIN:
        return "admin";
    case GW_ROLE_MEMBER:
        return "member";
    case GW_ROLE_READER:
        return "reader";
    case GW_ROLE_DESKTOP:
        return "desktop";
    }
    return "reader";
}

int gw_role_parse(const char *name, enum gw_role *out)
{
    if (!strcmp(name, "admin")) {
        *out = GW_ROLE_ADMIN;
    } else if (!strcmp(name, "member")) {
        *out = GW_ROLE_MEMBER;
    } else if (!strcmp(name, "reader")) {
        *out = GW_ROLE_READER;
    } else if (!strcmp(name, "desktop")) {
        *out = GW_ROLE_DESKTOP;
    } else {
        return -1;
    }
    return 0;
}
