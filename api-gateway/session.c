/* Web console sessions (see session.h). */
#include "session.h"

#include "nubo/crypto.h"
#include "nubo/error.h"
#include "nubo/id.h"
#include "nubo/log.h"
#include "nubo/pg.h"

#include <errno.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ACQUIRE_MS      5000
#define KDF_WAIT_S      10 /* how long a sign-in waits for a password-check slot */
#define SIGN_IN_FAILURE "incorrect account, user name or password"

struct gw_sessions {
    struct nb_pg_pool *pool;
    struct gw_session_config cfg;
    uint8_t csrf_key[NB_SHA256_LEN];
    uint8_t master_key[NB_MASTER_KEY_LEN]; /* unseals access keys' secrets (key sign-in) */
    char dummy_hash[GW_KDF_MAX_TEXT];
    sem_t kdf_slots;
};

struct gw_sessions *gw_sessions_new(struct nb_pg_pool *pool,
                                    const uint8_t master_key[NB_MASTER_KEY_LEN],
                                    const struct gw_session_config *cfg, struct nb_error *err)
{
    if (cfg->ttl_s < 60 || cfg->idle_s < 60 || cfg->kdf_threads < 1 || cfg->kdf_threads > 64) {
        nb_error_set(err, NB_ERR_INVALID, "invalid console session settings");
        nb_error_detail(err, "session lifetime and idle timeout must be at least 60 s, "
                             "kdf_threads from 1 to 64");
        return NULL;
    }
    const struct gw_kdf_params *k = &cfg->kdf;
    if (k->log2n < 10 || k->log2n > 22 || k->r < 1 || k->r > 32 || k->p < 1 || k->p > 16) {
        nb_error_set(err, NB_ERR_INVALID, "invalid scrypt parameters ln=%d, r=%d, p=%d", k->log2n,
                     k->r, k->p);
        return NULL;
    }
    struct gw_sessions *s = calloc(1, sizeof *s);
    if (!s) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    s->pool = pool;
    s->cfg = *cfg;
    static const char label[] = "nubo console csrf v1";
    nb_hmac_sha256(master_key, NB_MASTER_KEY_LEN, label, sizeof label - 1, s->csrf_key);
    memcpy(s->master_key, master_key, NB_MASTER_KEY_LEN);
    gw_kdf_dummy(&cfg->kdf, s->dummy_hash);
    sem_init(&s->kdf_slots, 0, (unsigned)cfg->kdf_threads);
    return s;
}

void gw_sessions_free(struct gw_sessions *s)
{
    if (!s) {
        return;
    }
    sem_destroy(&s->kdf_slots);
    memset(s, 0, sizeof *s);
    free(s);
}

const char *gw_session_cookie_name(const struct gw_sessions *s)
{
    return s->cfg.secure_cookie ? "__Host-nubo-session" : "nubo-session";
}

void gw_session_set_cookie(const struct gw_sessions *s, const char *token, char *out, size_t n)
{
    snprintf(out, n, "%s=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict%s",
             gw_session_cookie_name(s), token ? token : "", token ? s->cfg.ttl_s : 0,
             s->cfg.secure_cookie ? "; Secure" : "");
}

/* base64url without padding of 'len' bytes into 'out' (room for 4 * ceil(len / 3) + 1). */
static void base64url(const void *data, size_t len, char *out)
{
    char *b = nb_base64_encode(data, len);
    size_t j = 0;
    for (const char *p = b; p && *p && *p != '='; p++) {
        out[j++] = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    }
    out[j] = '\0';
    free(b);
}

int gw_token_new(char out[GW_TOKEN_LEN + 1], struct nb_error *err)
{
    uint8_t raw[32];
    if (nb_random_bytes(raw, sizeof raw) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not read random bytes");
        return -1;
    }
    base64url(raw, sizeof raw, out);
    explicit_bzero(raw, sizeof raw);
    return 0;
}

bool gw_token_well_formed(const char *token)
{
    return token && strlen(token) == GW_TOKEN_LEN &&
           strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
               GW_TOKEN_LEN;
}

void gw_token_key(const char *token, char key[GW_TOKEN_KEY_LEN], uint8_t *hash)
{
    uint8_t h[NB_SHA256_LEN];
    nb_sha256(token, strlen(token), h);
    key[0] = '\\';
    key[1] = 'x';
    nb_hex_encode(h, NB_SHA256_LEN, key + 2);
    if (hash) {
        memcpy(hash, h, NB_SHA256_LEN);
    }
}

static void csrf_of(const struct gw_sessions *s, const uint8_t hash[NB_SHA256_LEN],
                    char out[GW_SESSION_CSRF_LEN + 1])
{
    uint8_t mac[NB_SHA256_LEN];
    nb_hmac_sha256(s->csrf_key, sizeof s->csrf_key, hash, NB_SHA256_LEN, mac);
    base64url(mac, sizeof mac, out);
}

bool gw_session_csrf_ok(const struct gw_session *sess, const char *header)
{
    return header && strlen(header) == GW_SESSION_CSRF_LEN &&
           nb_ct_equal(header, sess->csrf, GW_SESSION_CSRF_LEN);
}

/* Takes a password-check slot; false when none came free within KDF_WAIT_S. */
static bool kdf_enter(struct gw_sessions *s, struct nb_error *err)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += KDF_WAIT_S;
    while (sem_timedwait(&s->kdf_slots, &until) < 0) {
        if (errno != EINTR) {
            nb_error_set(err, NB_ERR_UNAVAILABLE, "too many sign-ins at once, try again");
            return false;
        }
    }
    return true;
}

int gw_session_hash_password(struct gw_sessions *s, const char *password, char out[GW_KDF_MAX_TEXT],
                             struct nb_error *err)
{
    if (!kdf_enter(s, err)) {
        return -1;
    }
    int rc = gw_kdf_hash(password, strlen(password), &s->cfg.kdf, out, err);
    sem_post(&s->kdf_slots);
    return rc;
}

int gw_session_check_password(struct gw_sessions *s, const char *password, const char *stored,
                              bool *weaker, struct nb_error *err)
{
    if (!kdf_enter(s, err)) {
        return -1;
    }
    int rc = gw_kdf_verify(password, strlen(password), stored ? stored : s->dummy_hash, &s->cfg.kdf,
                           weaker, err);
    sem_post(&s->kdf_slots);
    return stored ? rc : (rc < 0 ? -1 : 0);
}

/* Copies column 'col' of row 0 into 'out'. */
static void copy_col(const PGresult *res, int col, char *out, size_t n)
{
    snprintf(out, n, "%s", PQgetvalue(res, 0, col));
}

/* Opens a session for the principal in '*out' (signed in by password or by key): a new cookie
 * value into 'token', the CSRF token and expiry into '*out'. Returns 1, or -1 with 'err'. */
static int open_session(struct gw_sessions *s, const char *source_addr, const char *user_agent,
                        char token[GW_SESSION_TOKEN_LEN + 1], struct gw_session *out,
                        struct nb_error *err)
{
    uint8_t hash[NB_SHA256_LEN];
    char key[GW_TOKEN_KEY_LEN], ttl[16];
    if (gw_token_new(token, err) < 0) {
        return -1;
    }
    gw_token_key(token, key, hash);
    snprintf(ttl, sizeof ttl, "%d", s->cfg.ttl_s);
    snprintf(out->who.key_id, sizeof out->who.key_id, GW_SESSION_KEY_PREFIX "%s", out->who.user_id);
    csrf_of(s, hash, out->csrf);

    struct nb_pg_conn *conn = nb_pg_acquire(s->pool, ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    const char *q[] = {key, out->who.user_id, out->who.tenant_id, gw_role_name(out->who.role),
                       ttl, source_addr,      user_agent};
    PGresult *res =
        nb_pg_exec(conn,
                   "WITH gone AS (DELETE FROM console_sessions WHERE expires_at < now()) "
                   "INSERT INTO console_sessions (id_hash, user_id, tenant_id, role, expires_at, "
                   "source_addr, user_agent) VALUES ($1::bytea, $2, $3, $4, "
                   "now() + $5::int * interval '1 second', $6::inet, left($7, 512)) "
                   "RETURNING extract(epoch FROM expires_at)::bigint",
                   7, q, err);
    if (res) {
        out->expires_unix = atoll(PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    nb_pg_release(conn);
    return res ? 1 : -1;
}

int gw_session_sign_in(struct gw_sessions *s, const char *account, const char *user,
                       const char *password, const char *source_addr, const char *user_agent,
                       char token[GW_SESSION_TOKEN_LEN + 1], struct gw_session *out,
                       struct nb_error *err)
{
    memset(out, 0, sizeof *out);
    struct nb_pg_conn *conn = nb_pg_acquire(s->pool, ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    const char *p[] = {account, user};
    PGresult *res = nb_pg_exec(conn,
                               "SELECT u.id, u.tenant_id, u.role, u.name, t.name, u.password_hash, "
                               "u.enabled AND t.enabled FROM users u "
                               "JOIN tenants t ON t.id = u.tenant_id "
                               "WHERE (t.name = $1 OR t.id = $1) AND u.name = $2",
                               2, p, err);
    /* The password check takes a while: no connection is held meanwhile. */
    nb_pg_release(conn);
    if (!res) {
        return -1;
    }
    bool found = PQntuples(res) == 1;
    char stored[GW_KDF_MAX_TEXT] = "";
    bool has_password = found && !PQgetisnull(res, 0, 5);
    bool enabled = found && PQgetvalue(res, 0, 6)[0] == 't';
    if (found) {
        copy_col(res, 0, out->who.user_id, sizeof out->who.user_id);
        copy_col(res, 1, out->who.tenant_id, sizeof out->who.tenant_id);
        if (gw_role_parse(PQgetvalue(res, 0, 2), &out->who.role) < 0) {
            out->who.role = GW_ROLE_READER;
        }
        copy_col(res, 3, out->user_name, sizeof out->user_name);
        copy_col(res, 4, out->tenant_name, sizeof out->tenant_name);
        if (has_password) {
            copy_col(res, 5, stored, sizeof stored);
        }
    }
    PQclear(res);

    bool weaker = false;
    int ok = gw_session_check_password(s, password, has_password ? stored : NULL, &weaker, err);
    memset(stored, 0, sizeof stored);
    if (ok < 0 && err->code == NB_ERR_UNAVAILABLE) {
        return -1;
    }
    if (ok != 1 || !enabled) {
        nb_info("console sign-in refused for user \"%.64s\" of account \"%.64s\" from %s: %s", user,
                account, source_addr ? source_addr : "?",
                !found          ? "no such user"
                : !has_password ? "no password set"
                : ok != 1       ? "wrong password"
                                : "user or account disabled");
        memset(out, 0, sizeof *out);
        nb_error_set(err, NB_ERR_AUTH, SIGN_IN_FAILURE);
        return 0;
    }

    int rc = open_session(s, source_addr, user_agent, token, out, err);
    if (rc == 1 && weaker) {
        /* Stored with weaker parameters than today's: store it again, now that it is known. */
        char again[GW_KDF_MAX_TEXT];
        struct nb_error ignored = {0};
        if (gw_session_hash_password(s, password, again, &ignored) == 0 &&
            (conn = nb_pg_acquire(s->pool, ACQUIRE_MS, &ignored))) {
            const char *r[] = {out->who.user_id, again};
            PGresult *u = nb_pg_exec(conn, "UPDATE users SET password_hash = $2 WHERE id = $1", 2,
                                     r, &ignored);
            PQclear(u);
            nb_pg_release(conn);
        }
    }
    return rc;
}

int gw_session_sign_in_key(struct gw_sessions *s, const char *key_id, const char *secret,
                           const char *source_addr, const char *user_agent,
                           char token[GW_SESSION_TOKEN_LEN + 1], struct gw_session *out,
                           struct nb_error *err)
{
    memset(out, 0, sizeof *out);
    struct nb_pg_conn *conn = nb_pg_acquire(s->pool, ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    const char *p[] = {key_id};
    PGresult *res =
        nb_pg_exec(conn,
                   "SELECT u.id, u.tenant_id, u.role, u.name, t.name, k.secret_sealed, "
                   "k.enabled AND u.enabled AND t.enabled FROM access_keys k "
                   "JOIN users u ON u.id = k.user_id JOIN tenants t ON t.id = u.tenant_id "
                   "WHERE k.id = $1",
                   1, p, err);
    nb_pg_release(conn);
    if (!res) {
        return -1;
    }
    bool found = PQntuples(res) == 1, match = false;
    bool enabled = found && PQgetvalue(res, 0, 6)[0] == 't';
    if (found) {
        copy_col(res, 0, out->who.user_id, sizeof out->who.user_id);
        copy_col(res, 1, out->who.tenant_id, sizeof out->who.tenant_id);
        if (gw_role_parse(PQgetvalue(res, 0, 2), &out->who.role) < 0) {
            out->who.role = GW_ROLE_READER;
        }
        copy_col(res, 3, out->user_name, sizeof out->user_name);
        copy_col(res, 4, out->tenant_name, sizeof out->tenant_name);
        size_t len = 0;
        struct nb_error uerr = {0};
        char *plain = nb_unseal(s->master_key, PQgetvalue(res, 0, 5), key_id, &len, &uerr);
        match = plain && len == strlen(secret) && nb_ct_equal(plain, secret, len);
        if (plain) {
            memset(plain, 0, len);
            free(plain);
        }
    }
    PQclear(res);
    if (!match || !enabled) {
        nb_info("console sign-in refused for access key \"%.32s\" from %s: %s", key_id,
                source_addr ? source_addr : "?",
                !found   ? "no such key"
                : !match ? "wrong secret"
                         : "key, user or account disabled");
        memset(out, 0, sizeof *out);
        nb_error_set(err, NB_ERR_AUTH, SIGN_IN_FAILURE);
        return 0;
    }
    return open_session(s, source_addr, user_agent, token, out, err);
}

enum gw_session_result gw_session_lookup(struct gw_sessions *s, const char *token,
                                         struct gw_session *out, struct nb_error *err)
{
    memset(out, 0, sizeof *out);
    if (!gw_token_well_formed(token)) {
        nb_error_set(err, NB_ERR_AUTH, "the session cookie is not valid; sign in again");
        return GW_SESSION_INVALID;
    }
    uint8_t hash[NB_SHA256_LEN];
    char key[GW_TOKEN_KEY_LEN], idle[16];
    gw_token_key(token, key, hash);
    snprintf(idle, sizeof idle, "%d", s->cfg.idle_s);
    struct nb_pg_conn *conn = nb_pg_acquire(s->pool, ACQUIRE_MS, err);
    if (!conn) {
        return GW_SESSION_UNAVAILABLE;
    }
    const char *p[] = {key, idle};
    /* last_used_at is refreshed at most once a minute: a write per request would cost more. */
    PGresult *res = nb_pg_exec(
        conn,
        "SELECT s.user_id, s.tenant_id, u.role, u.name, t.name, "
        "extract(epoch FROM s.expires_at)::bigint, "
        "s.last_used_at < now() - interval '60 seconds' "
        "FROM console_sessions s JOIN users u ON u.id = s.user_id "
        "JOIN tenants t ON t.id = s.tenant_id "
        "WHERE s.id_hash = $1::bytea AND s.expires_at > now() "
        "AND s.last_used_at > now() - $2::int * interval '1 second' AND u.enabled AND t.enabled",
        2, p, err);
    if (!res) {
        nb_pg_release(conn);
        return GW_SESSION_UNAVAILABLE;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        nb_pg_release(conn);
        nb_error_set(err, NB_ERR_AUTH,
                     "the console session has expired or was signed out; sign in again");
        return GW_SESSION_INVALID;
    }
    copy_col(res, 0, out->who.user_id, sizeof out->who.user_id);
    copy_col(res, 1, out->who.tenant_id, sizeof out->who.tenant_id);
    if (gw_role_parse(PQgetvalue(res, 0, 2), &out->who.role) < 0) {
        out->who.role = GW_ROLE_READER;
    }
    copy_col(res, 3, out->user_name, sizeof out->user_name);
    copy_col(res, 4, out->tenant_name, sizeof out->tenant_name);
    out->expires_unix = atoll(PQgetvalue(res, 0, 5));
    bool touch = PQgetvalue(res, 0, 6)[0] == 't';
    PQclear(res);
    if (touch) {
        struct nb_error ignored = {0};
        PQclear(nb_pg_exec(conn,
                           "UPDATE console_sessions SET last_used_at = now() WHERE id_hash = "
                           "$1::bytea",
                           1, p, &ignored));
    }
    nb_pg_release(conn);
    snprintf(out->who.key_id, sizeof out->who.key_id, GW_SESSION_KEY_PREFIX "%s", out->who.user_id);
    csrf_of(s, hash, out->csrf);
    return GW_SESSION_OK;
}

int gw_session_sign_out(struct gw_sessions *s, const char *token, struct nb_error *err)
{
    if (!gw_token_well_formed(token)) {
        return 0;
    }
    uint8_t hash[NB_SHA256_LEN];
    char key[GW_TOKEN_KEY_LEN];
    gw_token_key(token, key, hash);
    struct nb_pg_conn *conn = nb_pg_acquire(s->pool, ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    const char *p[] = {key};
    PGresult *res =
        nb_pg_exec(conn, "DELETE FROM console_sessions WHERE id_hash = $1::bytea", 1, p, err);
    nb_pg_release(conn);
    PQclear(res);
    return res ? 0 : -1;
}

int gw_session_revoke_user(struct gw_sessions *s, struct nb_pg_conn *conn, const char *user_id,
                           const char *keep_token, struct nb_error *err)
{
    uint8_t hash[NB_SHA256_LEN];
    char key[GW_TOKEN_KEY_LEN] = "\\x00";
    if (gw_token_well_formed(keep_token)) {
        gw_token_key(keep_token, key, hash);
    }
    const char *p[] = {user_id, key};
    PGresult *res = nb_pg_exec(conn,
                               "DELETE FROM console_sessions WHERE user_id = $1 "
                               "AND id_hash <> $2::bytea",
                               2, p, err);
    if (!res) {
        return -1;
    }
    int n = atoi(PQcmdTuples(res));
    PQclear(res);
    return n;
}
