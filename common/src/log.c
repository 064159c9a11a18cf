/* Logging: one line per event with one write(2), so lines from threads never interleave. */
#include "nubo/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Set once by nb_log_init() before threads start, read-only afterwards. */
static struct {
    char program[64];
    enum nb_log_level level;
    int fd;
} log_cfg = {"nubo", NB_LOG_INFO, STDERR_FILENO};

static _Thread_local char log_request_id[64];

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

int nb_log_init(const char *program, enum nb_log_level level, const char *path)
{
    snprintf(log_cfg.program, sizeof log_cfg.program, "%s", program ? program : "nubo");
    log_cfg.level = level;
    log_cfg.fd = STDERR_FILENO;
    if (path && *path) {
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0) {
            nb_err("could not open log file \"%s\": %s", path, strerror(errno));
            return -1;
        }
        log_cfg.fd = fd;
    }
    return 0;
}

int nb_log_parse_level(const char *text, enum nb_log_level *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (text && !strcasecmp(text, names[i])) {
            *out = (enum nb_log_level)i;
            return 0;
        }
    }
    return -1;
}

void nb_log_set_request_id(const char *request_id)
{
    snprintf(log_request_id, sizeof log_request_id, "%s", request_id ? request_id : "");
}

void nb_log(enum nb_log_level level, const char *fmt, ...)
{
    if (level < log_cfg.level) {
        return;
    }
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (long)(tv.tv_usec / 1000), level_names[level], log_cfg.program);
    if (log_request_id[0]) {
        n += snprintf(line + n, sizeof line - (size_t)n, "req=%s ", log_request_id);
    }
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2) {
        len = sizeof line - 2; /* truncated */
    }
    /* One event, one line: fold newlines a message might carry. */
    for (size_t i = (size_t)n; i < len; i++) {
        if (line[i] == '\n' || line[i] == '\r') {
            line[i] = ' ';
        }
    }
    line[len++] = '\n';
    ssize_t w = write(log_cfg.fd, line, len);
    (void)w; /* nowhere to report a failure to log */
}
