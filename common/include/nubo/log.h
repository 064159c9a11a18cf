/* Logging: one line per event, to stderr or a file, with level, time, program and request id.
 *
 *   2026-11-22T04:51:07.123Z INFO nubo-gateway req=0f3a... listening on 127.0.0.1:8773
 *
 * Thread-safe: each line is written with one write(2). The request id is per thread. */
#ifndef NUBO_LOG_H
#define NUBO_LOG_H

enum nb_log_level { NB_LOG_DEBUG, NB_LOG_INFO, NB_LOG_WARN, NB_LOG_ERROR };

/* Configures the process-wide logger: program name (copied), minimum level, and the file to
 * append to ('path' NULL or "" means stderr). Returns 0, or -1 if the file cannot be opened
 * (logging then stays on stderr). Call once at start-up, before threads. */
int nb_log_init(const char *program, enum nb_log_level level, const char *path);

/* Parses "debug", "info", "warn" or "error" into '*out'. Returns 0, or -1 for other text. */
int nb_log_parse_level(const char *text, enum nb_log_level *out);

/* Sets the request id printed on this thread's lines (copied; NULL clears it). */
void nb_log_set_request_id(const char *request_id);

void nb_log(enum nb_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define nb_debug(...) nb_log(NB_LOG_DEBUG, __VA_ARGS__)
#define nb_info(...)  nb_log(NB_LOG_INFO, __VA_ARGS__)
#define nb_warn(...)  nb_log(NB_LOG_WARN, __VA_ARGS__)
#define nb_err(...)   nb_log(NB_LOG_ERROR, __VA_ARGS__)

#endif
