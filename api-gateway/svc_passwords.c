/* Console passwords (see svc_passwords.h). */
#include "svc_passwords.h"

#include "auth.h"
#include "gateway.h"
#include "session.h"
#include "svc.h"
#include "svc_sql.h"

#include "nubo/error.h"
#include "nubo/log.h"
#include "nubo/pg.h"

#include <stdlib.h>
#include <string.h>

static int check_policy(const char *password, struct nb_error *err)
{
    size_t n = strlen(password);
    if (n < GW_PASSWORD_MIN || n > GW_PASSWORD_MAX) {
        nb_error_set(err, NB_ERR_INVALID, "a password must have from %d to %d bytes, not %zu",
                     GW_PASSWORD_MIN, GW_PASSWORD_MAX, n);
        nb_error_reason(err, "InvalidParameterValue");
        return -1;
    }
    return 0;
}

static int no_sessions(struct nb_error *err)
{
    nb_error_set(err, NB_ERR_UNAVAILABLE, "console sign-in is not set up on this gateway");
    return -1;
}

/* Stores 'hash' for 'user_id' and signs its sessions out but 'keep_token''s, in one transaction.
 * Returns 0, or -1 with 'err' (InvalidUserID.NotFound). */
static int store(struct gw_ctx *gw, const char *user_id, const char *hash, const char *keep_token,
                 struct nb_error *err)
{
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    const char *p[] = {user_id, hash};
    PGresult *res = NULL;
    if (nb_pg_begin(conn, err) < 0) {
        goto cleanup;
    }
    res = nb_pg_exec(conn,
                     "UPDATE users SET password_hash = $2, password_changed_at = now() "
                     "WHERE id = $1",
                     2, p, err);
    if (!res) {
        goto cleanup;
    }
    if (atoi(PQcmdTuples(res)) != 1) {
        nb_error_set(err, NB_ERR_NOT_FOUND, "The user '%s' does not exist", user_id);
        nb_error_reason(err, "InvalidUserID.NotFound");
        goto cleanup;
    }
    int gone = gw_session_revoke_user(gw->sessions, conn, user_id, keep_token, err);
    if (gone < 0 || nb_pg_commit(conn, err) < 0) {
        goto cleanup;
    }
    nb_info("console password of user %s set; %d other session(s) signed out", user_id, gone);
    rc = 0;
cleanup:
    PQclear(res);
    if (rc < 0 && nb_pg_in_transaction(conn)) {
        nb_pg_rollback(conn);
    }
    nb_pg_release(conn);
    return rc;
}

int gw_password_set(struct gw_ctx *gw, const struct gw_principal *who, const char *user_id,
                    const char *password, struct nb_error *err)
{
    char hash[GW_KDF_MAX_TEXT];
    if (gw_require_admin(who, err) < 0 || check_policy(password, err) < 0) {
        return -1;
    }
    if (!gw->sessions) {
        return no_sessions(err);
    }
    if (gw_session_hash_password(gw->sessions, password, hash, err) < 0) {
        return -1;
    }
    return store(gw, user_id, hash, NULL, err);
}

int gw_password_change(struct gw_ctx *gw, const struct gw_principal *who, const char *current,
                       const char *password, const char *keep_token, struct nb_error *err)
{
    if (check_policy(password, err) < 0) {
        return -1;
    }
    if (!gw->sessions) {
        return no_sessions(err);
    }
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    const char *p[] = {who->user_id};
    PGresult *res = nb_pg_exec(conn, "SELECT password_hash FROM users WHERE id = $1", 1, p, err);
    nb_pg_release(conn);
    if (!res) {
        return -1;
    }
    char stored[GW_KDF_MAX_TEXT] = "";
    bool has = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0);
    if (has) {
        snprintf(stored, sizeof stored, "%s", PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    if (has) {
        int ok = current ? gw_session_check_password(gw->sessions, current, stored, NULL, err) : 0;
        memset(stored, 0, sizeof stored);
        if (ok < 0) {
            return -1;
        }
        if (ok == 0) {
            /* Not AuthFailure: the caller is authenticated, only this parameter is wrong. */
            nb_error_set(err, NB_ERR_INVALID, "the current password is not right");
            nb_error_reason(err, "InvalidParameterValue");
            return -1;
        }
    }
    char hash[GW_KDF_MAX_TEXT];
    if (gw_session_hash_password(gw->sessions, password, hash, err) < 0) {
        return -1;
    }
    return store(gw, who->user_id, hash, keep_token, err);
}
