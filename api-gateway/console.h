/* The web console (docs/console.md): the static files under /console/, read from the directory
 * 'console.dir' (the repository's web/ by default, resolved like db.migrations); the console's
 * own API routes (/v1/session: sign-in and out; /v1/events: the event stream); and the settings
 * of both. Everything else the console does goes through the REST API, authenticated with the
 * session cookie (rest_console.h). */
#ifndef NUBO_GW_CONSOLE_H
#define NUBO_GW_CONSOLE_H

#include <stddef.h>

struct gw_ctx;
struct gw_console;
struct gw_sessions;
struct nb_error;

#define GW_CONSOLE_DEFAULT_DIR "web"

/* Reads the console.* session settings and returns the sessions module (session.h), which the
 * caller frees with gw_sessions_free(); NULL with 'err' for bad settings. */
struct gw_sessions *gw_console_open_sessions(struct gw_ctx *gw, struct nb_error *err);

/* Opens the static directory (a missing one is logged and leaves /console/ answering 404),
 * starts the event stream (gw->events) and registers /console/, /v1/session and /v1/events on
 * gw->http, ahead of the REST API's "/v1*". Sets gw->console. Returns 0, or -1 with 'err'. */
int gw_console_start(struct gw_ctx *gw, struct nb_error *err);

/* Frees what gw_console_start() made (not gw->events). Accepts NULL. */
void gw_console_free(struct gw_console *console);

/* Turns the request path 'path' (percent-decoded, starting with "/console/") into the name of a
 * file of the static directory: "index.html" for "/console/". Returns 0, or -1 when the path may
 * not name a file there: only segments of letters, digits, '.', '_' and '-' that do not start
 * with '.', so no "..", no hidden files, no empty segments, at most 255 bytes. */
int gw_console_file_name(const char *path, char *out, size_t n);

/* The Content-Type for file 'name', by its extension (application/octet-stream if unknown). */
const char *gw_console_content_type(const char *name);

#endif
