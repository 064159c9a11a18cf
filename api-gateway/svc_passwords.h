/* Console passwords: the operator sets any user's, a user changes their own. Follows svc.h.
 * Hashes are made by the sessions module (session.h: scrypt, a bounded number at a time); setting
 * a password signs the user's other console sessions out in the same transaction. */
#ifndef NUBO_GW_SVC_PASSWORDS_H
#define NUBO_GW_SVC_PASSWORDS_H

struct gw_ctx;
struct gw_principal;
struct nb_error;

#define GW_PASSWORD_MIN 10   /* bytes */
#define GW_PASSWORD_MAX 1024 /* bytes */

/* Sets the password of 'user_id' (any tenant's; the admin role only) and signs all of that
 * user's console sessions out. Returns 0, or -1 with 'err' (InvalidUserID.NotFound,
 * InvalidParameterValue for a password shorter than GW_PASSWORD_MIN or longer than
 * GW_PASSWORD_MAX bytes). */
int gw_password_set(struct gw_ctx *gw, const struct gw_principal *who, const char *user_id,
                    const char *password, struct nb_error *err);

/* Changes the caller's own password to 'password'. 'current' must be the present password when
 * the user has one (InvalidParameterValue otherwise; a user without one may set a first password
 * with an access key). Signs the user's other console sessions out, keeping the one of 'keep_token'
 * (the caller's cookie, or NULL). Readers may change their own password too. */
int gw_password_change(struct gw_ctx *gw, const struct gw_principal *who, const char *current,
                       const char *password, const char *keep_token, struct nb_error *err);

#endif
