/* Errors: filling 'struct nb_error' where a failure happens (see error.h). */
#include "nubo/error.h"

#include <stdio.h>
#include <string.h>

static void set_msg(char *dst, const char *fmt, va_list ap)
{
    vsnprintf(dst, NB_ERROR_MSG_MAX, fmt, ap);
}

void nb_error_set(struct nb_error *err, enum nb_errcode code, const char *fmt, ...)
{
    if (!err) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    err->code = code;
    set_msg(err->msg, fmt, ap);
    err->detail[0] = '\0';
    err->reason[0] = '\0';
    va_end(ap);
}

void nb_error_reason(struct nb_error *err, const char *reason)
{
    if (err) {
        snprintf(err->reason, sizeof err->reason, "%s", reason);
    }
}

void nb_error_detail(struct nb_error *err, const char *fmt, ...)
{
    if (!err) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    set_msg(err->detail, fmt, ap);
    va_end(ap);
}

void nb_error_errno(struct nb_error *err, int errnum, const char *fmt, ...)
{
    if (!err) {
        return;
    }
    char what[NB_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    set_msg(what, fmt, ap);
    va_end(ap);
    char buf[128];
    const char *why = strerror_r(errnum, buf, sizeof buf);
    err->code = NB_ERR_IO;
    snprintf(err->msg, sizeof err->msg, "%.380s: %.120s", what, why);
    err->detail[0] = '\0';
    err->reason[0] = '\0';
}

void nb_error_clear(struct nb_error *err)
{
    if (err) {
        err->code = NB_ERR_NONE;
        err->msg[0] = '\0';
        err->detail[0] = '\0';
        err->reason[0] = '\0';
    }
}

const char *nb_errcode_name(enum nb_errcode code)
{
    switch (code) {
    case NB_ERR_NONE:
        return "none";
    case NB_ERR_INTERNAL:
        return "internal";
    case NB_ERR_INVALID:
        return "invalid";
    case NB_ERR_MISSING:
        return "missing";
    case NB_ERR_NOT_FOUND:
        return "not-found";
    case NB_ERR_CONFLICT:
        return "conflict";
    case NB_ERR_AUTH:
        return "auth";
    case NB_ERR_FORBIDDEN:
        return "forbidden";
    case NB_ERR_LIMIT:
        return "limit";
    case NB_ERR_IO:
        return "io";
    case NB_ERR_DB:
        return "db";
    case NB_ERR_TIMEOUT:
        return "timeout";
    case NB_ERR_UNAVAILABLE:
        return "unavailable";
    }
    return "unknown";
}
