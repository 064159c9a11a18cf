/* Errors: the function that fails fills one 'struct nb_error'; its callers pass it up unchanged.
 *
 * Messages follow PostgreSQL's grammar (lower case, no final period, say what failed and why).
 * Only the API layer maps 'enum nb_errcode' to HTTP statuses and EC2 error codes. */
#ifndef NUBO_ERROR_H
#define NUBO_ERROR_H

#include <stdarg.h>

enum nb_errcode {
    NB_ERR_NONE = 0,
    NB_ERR_INTERNAL,    /* a bug or an unexpected library failure */
    NB_ERR_INVALID,     /* bad input from a caller: parameter, body, file */
    NB_ERR_MISSING,     /* a required input is absent */
    NB_ERR_NOT_FOUND,   /* no such object (or not visible to this tenant) */
    NB_ERR_CONFLICT,    /* the object exists, or its state forbids the operation */
    NB_ERR_AUTH,        /* authentication failed */
    NB_ERR_FORBIDDEN,   /* authenticated but not allowed */
    NB_ERR_LIMIT,       /* a quota or size limit was reached */
    NB_ERR_IO,          /* a file or socket operation failed */
    NB_ERR_DB,          /* PostgreSQL failed or is unreachable */
    NB_ERR_TIMEOUT,     /* an operation did not finish in time */
    NB_ERR_UNAVAILABLE, /* a dependency is down; retrying later may work */
};

#define NB_ERROR_MSG_MAX 512

struct nb_error {
    enum nb_errcode code;
    char msg[NB_ERROR_MSG_MAX];    /* what failed and why */
    char detail[NB_ERROR_MSG_MAX]; /* optional: more context, a hint; "" when none */
    /* Optional machine-readable reason in nubo's API vocabulary (EC2's error codes, e.g.
     * "InvalidInstanceID.NotFound"), set by service code that knows which one applies; "" when
     * none, and the API layer then derives one from 'code'. */
    char reason[64];
};

/* Sets 'err' (which may be NULL, then nothing happens) to 'code' and a printf-style message.
 * Clears any previous detail and reason. */
void nb_error_set(struct nb_error *err, enum nb_errcode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets the detail of 'err' (may be NULL). */
void nb_error_detail(struct nb_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Sets 'err' from errno: "<message>: <strerror(errnum)>", code NB_ERR_IO. */
void nb_error_errno(struct nb_error *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets the machine-readable reason of 'err' (may be NULL). */
void nb_error_reason(struct nb_error *err, const char *reason);

/* Resets 'err' to NB_ERR_NONE with empty strings. */
void nb_error_clear(struct nb_error *err);

/* Returns a static, stable name for 'code', e.g. "invalid". */
const char *nb_errcode_name(enum nb_errcode code);

#endif
