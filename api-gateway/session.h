/* Web console sessions: sign-in with an account (tenant name or id), a user name and a password,
 * and the cookie that then authenticates the browser's REST calls.
 *
 * The cookie holds 43 characters (32 random bytes, base64url); the database keeps only their
 * SHA-256 (console_sessions, deploy/migrations/0012_console.sql), with the user, tenant and role,
 * an absolute expiry and an idle timeout. The CSRF token of a session is an HMAC of that hash
 * under a key derived from the master key: every gateway of the cloud computes the same one, and
 * it is never stored. Requests that change anything must echo it in the X-CSRF-Token header.
 *
 * Passwords are checked with scrypt (kdf.h), at most 'kdf_threads' at a time: a burst of sign-ins
 * queues instead of taking all the memory and cores. Thread-safe. */
#ifndef NUBO_GW_SESSION_H
#define NUBO_GW_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "kdf.h"
#include "nubo/crypto.h"

struct nb_error;
struct nb_pg_conn;
struct nb_pg_pool;

#define GW_SESSION_TOKEN_LEN   GW_TOKEN_LEN /* the cookie is a gw_token_new() token */
#define GW_SESSION_CSRF_LEN    43
#define GW_SESSION_CSRF_HEADER "X-CSRF-Token"
#define GW_SESSION_KEY_PREFIX  "console:" /* the request log's access_key_id: console:<user id> */

struct gw_session_config {
    int ttl_s;          /* absolute lifetime of a session */
    int idle_s;         /* a session unused this long is over */
    bool secure_cookie; /* add Secure and use the __Host- prefix (set when served over TLS) */
    int kdf_threads;    /* password checks at once */
    struct gw_kdf_params kdf;
};

/* A signed-in user, as a request sees it. */
struct gw_session {
    struct gw_principal who; /* who.key_id is "console:<user id>" */
    char tenant_name[72];
    char user_name[72];
    char csrf[GW_SESSION_CSRF_LEN + 1];
    long long expires_unix;
};

struct gw_sessions;

/* The random tokens the console hands out (session cookies, VM console tickets): 32 random
 * bytes as unpadded base64url; the database keeps only their SHA-256. */
#define GW_TOKEN_LEN     43                          /* characters, without the NUL */
#define GW_TOKEN_KEY_LEN (2 + 2 * NB_SHA256_LEN + 1) /* "\x" + hex + NUL */

/* Makes a new token into 'out'. Returns 0, or -1 with 'err' (no random bytes). */
int gw_token_new(char out[GW_TOKEN_LEN + 1], struct nb_error *err);
/* True when 'token' has the form of one gw_token_new() makes. */
bool gw_token_well_formed(const char *token);
/* The database key of 'token': bytea input text "\x<64 hex digits>"; its raw SHA-256 into
 * 'hash' when not NULL. */
void gw_token_key(const char *token, char key[GW_TOKEN_KEY_LEN], uint8_t *hash);

/* Returns the sessions module over 'pool' (borrowed), deriving its CSRF key from 'master_key'.
 * Free with gw_sessions_free() (accepts NULL). Returns NULL with 'err' on bad parameters. */
struct gw_sessions *gw_sessions_new(struct nb_pg_pool *pool,
                                    const uint8_t master_key[NB_MASTER_KEY_LEN],
                                    const struct gw_session_config *cfg, struct nb_error *err);
void gw_sessions_free(struct gw_sessions *s);

/* The cookie's name: "nubo-session", or "__Host-nubo-session" with secure cookies. */
const char *gw_session_cookie_name(const struct gw_sessions *s);
/* Writes the Set-Cookie value for 'token' into 'out' ('n' bytes): HttpOnly, SameSite=Strict,
 * Path=/, Max-Age the session's lifetime, Secure when configured. A NULL 'token' writes the
 * value that deletes the cookie. */
void gw_session_set_cookie(const struct gw_sessions *s, const char *token, char *out, size_t n);

/* Signs 'user' of 'account' (a tenant's name or 12-digit id) in with 'password'. On success
 * returns 1, writes the cookie value into 'token' and fills '*out'. Returns 0 with 'err' set to
 * a message safe to show (the same whatever was wrong: no such account or user, no password set,
 * a wrong password, a disabled user or tenant), or -1 with 'err' when the database cannot be
 * reached. Also forgets expired sessions. */
int gw_session_sign_in(struct gw_sessions *s, const char *account, const char *user,
                       const char *password, const char *source_addr, const char *user_agent,
                       char token[GW_SESSION_TOKEN_LEN + 1], struct gw_session *out,
                       struct nb_error *err);

/* As gw_session_sign_in(), with an access key pair instead of a password: the key's user is
 * signed in if 'secret' is the key's secret and the key, its user and its tenant are enabled. */
int gw_session_sign_in_key(struct gw_sessions *s, const char *key_id, const char *secret,
                           const char *source_addr, const char *user_agent,
                           char token[GW_SESSION_TOKEN_LEN + 1], struct gw_session *out,
                           struct nb_error *err);

enum gw_session_result {
    GW_SESSION_OK,
    GW_SESSION_INVALID,     /* malformed, unknown, expired, idle too long, or user disabled */
    GW_SESSION_UNAVAILABLE, /* the database cannot be reached */
};

/* Looks the session of cookie value 'token' up, filling '*out'. */
enum gw_session_result gw_session_lookup(struct gw_sessions *s, const char *token,
                                         struct gw_session *out, struct nb_error *err);

/* True when 'header' (may be NULL) is the CSRF token of 'sess'; compared in constant time. */
bool gw_session_csrf_ok(const struct gw_session *sess, const char *header);

/* Signs the session of 'token' out (deletes it). Returns 0, or -1 with 'err'. */
int gw_session_sign_out(struct gw_sessions *s, const char *token, struct nb_error *err);

/* Deletes every session of 'user_id' but the one of 'keep_token' (may be NULL), on 'conn' in the
 * caller's transaction. Returns the number deleted, or -1 with 'err'. */
int gw_session_revoke_user(struct gw_sessions *s, struct nb_pg_conn *conn, const char *user_id,
                           const char *keep_token, struct nb_error *err);

/* Hashes a new password with today's parameters (waiting for a KDF slot). Returns 0 or -1. */
int gw_session_hash_password(struct gw_sessions *s, const char *password, char out[GW_KDF_MAX_TEXT],
                             struct nb_error *err);
/* Checks 'password' against 'stored' (NULL: a user without password, checked against a dummy
 * hash so that it costs the same and fails). Returns 1, 0 or -1 as gw_kdf_verify(). */
int gw_session_check_password(struct gw_sessions *s, const char *password, const char *stored,
                              bool *weaker, struct nb_error *err);

#endif
