/* The image commands: list, show, register, upload (and import), download, export, task,
 * permissions, share, unshare, copy and delete. Uploads and downloads stream through libnubo
 * with a progress bar on standard error when it is a terminal; waits poll the image store's
 * tasks. */
#include "cli.h"

#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How long --wait waits by default, in seconds. */
#define DEFAULT_WAIT_S 600

/* --- output ----------------------------------------------------------------------------------- */

static const char *const image_cols[] = {"id",   "name", "state", "public",
                                         "type", "arch", "owner", "created"};

static const char *image_row(struct cli_table *t, const void *item)
{
    const struct nubo_image *m = item;
    const char *cells[] = {m->id,         m->name,         m->state,    m->is_public ? "yes" : "no",
                           m->image_type, m->architecture, m->owner_id, m->created_at};
    cli_table_add(t, cells);
    return m->json;
}

/* Formats 'n' bytes as "12.3 MiB" into 'out'. */
static void human_bytes(double n, char *out, size_t size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t u = 0;
    while (n >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
        n /= 1024;
        u++;
    }
    snprintf(out, size, u ? "%.1f %s" : "%.0f %s", n, units[u]);
}

/* Prints the image 'm' as JSON (its own, with 'extra' members merged in when not NULL) or as a
 * field table (with 'extra' string members appended). */
static void print_image(const struct cli *cli, const struct nubo_image *m, json_t *extra)
{
    if (cli->json) {
        json_t *doc = json_loads(m->json, 0, NULL);
        if (doc && extra) {
            json_object_update(doc, extra);
        }
        char *s = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
        puts(s ? s : m->json);
        free(s);
        json_decref(doc);
        return;
    }
    struct nubo_image_storage st;
    nubo_image_storage_get(m, &st);
    char *tags = cli_tags_text(m->tags, m->n_tags);
    char size[64] = "", vsize[64] = "";
    if (st.size_bytes) {
        snprintf(size, sizeof size, "%lld", st.size_bytes);
    }
    if (st.virtual_size) {
        snprintf(vsize, sizeof vsize, "%lld", st.virtual_size);
    }
    const char *pairs[2 * 20] = {"id",           m->id,
                                 "name",         m->name,
                                 "description",  m->description,
                                 "state",        m->state,
                                 "state_reason", st.state_reason,
                                 "public",       m->is_public ? "yes" : "no",
                                 "type",         m->image_type,
                                 "architecture", m->architecture,
                                 "disk_format",  st.disk_format,
                                 "size_bytes",   size,
                                 "virtual_size", vsize,
                                 "source_image", st.source_image_id,
                                 "owner",        m->owner_id,
                                 "created",      m->created_at,
                                 "tags",         tags};
    size_t n = 15;
    const char *key;
    json_t *v;
    json_object_foreach(extra, key, v)
    {
        if (json_is_string(v) && n < 20) {
            pairs[2 * n] = key;
            pairs[2 * n + 1] = json_string_value(v);
            n++;
        }
    }
    cli_print_fields(pairs, n);
    free(tags);
}

/* Prints a JSON document built by the command (--output json), indented, and drops it. */
static void print_json(json_t *doc)
{
    char *s = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
    puts(s ? s : "null");
    free(s);
    json_decref(doc);
}

/* --- progress --------------------------------------------------------------------------------- */

/* A progress bar on standard error, drawn only when it is a terminal, at most 10 times a second. */
struct bar {
    bool tty;
    enum nubo_transfer_phase phase;
    bool drawn;
    double last;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int on_transfer(enum nubo_transfer_phase phase, uint64_t done, uint64_t total, void *arg)
{
    struct bar *b = arg;
    static const char *const names[] = {"hashing", "uploading", "downloading"};
    if (!b->tty) {
        return 0;
    }
    double now = now_s();
    bool end = total && done >= total;
    if (b->drawn && phase == b->phase && !end && now - b->last < 0.1) {
        return 0;
    }
    if (b->drawn && phase != b->phase) {
        fputc('\n', stderr);
    }
    b->phase = phase;
    b->drawn = true;
    b->last = now;
    char d[32], t[32], line[40];
    human_bytes((double)done, d, sizeof d);
    if (total) {
        int width = (int)(sizeof line - 1);
        int full = (int)((double)done / (double)total * width);
        memset(line, '#', (size_t)full);
        memset(line + full, '.', (size_t)(width - full));
        line[width] = '\0';
        human_bytes((double)total, t, sizeof t);
        fprintf(stderr, "\r%-11s [%s] %3.0f%%  %s / %s   ", names[phase], line,
                100.0 * (double)done / (double)total, d, t);
    } else {
        fprintf(stderr, "\r%-11s %s   ", names[phase], d);
    }
    return 0;
}

/* Ends the bar's line, if one was drawn. */
static void bar_done(struct bar *b)
{
    if (b->drawn) {
        fputc('\n', stderr);
        b->drawn = false;
    }
}

/* Shows a task's progress while waiting: one redrawn line on a terminal, else a line for each
 * change of state. */
struct task_progress {
    bool tty;
    char last[32];
};

static int on_task(const struct nubo_image_task *t, double elapsed, void *arg)
{
    struct task_progress *p = arg;
    if (p->tty) {
        fprintf(stderr, "\r%s %-10s %3d%% %5.0f s", t->id, t->state, t->progress, elapsed);
    } else if (strcmp(p->last, t->state)) {
        fprintf(stderr, "%s %s %d%% (%.0f s)\n", t->id, t->state, t->progress, elapsed);
    }
    snprintf(p->last, sizeof p->last, "%s", t->state);
    return 0;
}

/* Waits for the task 'id' to end. Returns CLI_OK when it completed (storing it in '*out' when
 * not NULL; the caller frees it), else an exit code after printing why. */
static int wait_task(struct nubo_client *client, const char *id, long long timeout,
                     struct nubo_image_task **out)
{
    struct nubo_error err;
    struct task_progress tp = {.tty = isatty(2)};
    struct nubo_image_task *t =
        nubo_image_task_wait(client, id, (double)timeout, 1000, on_task, &tp, &err);
    if (tp.tty) {
        fputc('\n', stderr);
    }
    if (!t) {
        if (!strcmp(err.code, "Timeout")) {
            fprintf(stderr, "nubo: timed out: %s\n", err.message);
            return CLI_UNAVAILABLE;
        }
        return cli_fail(&err);
    }
    if (strcmp(t->state, "completed")) {
        fprintf(stderr, "nubo: %s task %s failed: %s\n", t->kind ? t->kind : "image", t->id,
                t->status_message ? t->status_message : "no reason given");
        nubo_image_task_free(t);
        return CLI_API_ERROR;
    }
    if (out) {
        *out = t;
    } else {
        nubo_image_task_free(t);
    }
    return CLI_OK;
}

/* --- list, show, register ---------------------------------------------------------------------- */

static int image_list(struct cli *cli, int argc, char **argv)
{
    struct cli_filters f = {.n = 0};
    const char *owner = NULL;
    const struct cli_opt opts[] = {
        CLI_FN("filter", &f, cli_add_filter, NULL),
        CLI_STR("owner", &owner),
    };
    if (cli_parse_opts(argc, argv, "image list ", opts, CLI_N_OPTS(opts), "invalid option") < 0 ||
        cli_no_more_args(argc, argv, "image list ") != CLI_OK) {
        return CLI_USAGE;
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_image_list *l = nubo_images_list(client, owner, f.items, f.n, &err);
    if (!l) {
        return cli_fail(&err);
    }
    struct cli_table t = {8, image_cols, NULL, 0, 0};
    cli_print_list(cli, &t, l->items, l->n, sizeof *l->items, image_row);
    nubo_image_list_free(l);
    return CLI_OK;
}

static int image_show(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one image id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_image *m = nubo_image_get(client, argv[optind], &err);
    if (!m) {
        return cli_fail(&err);
    }
    print_image(cli, m, NULL);
    nubo_image_free(m);
    return CLI_OK;
}

static int image_register(struct cli *cli, int argc, char **argv)
{
    struct nubo_image_params p = {0};
    const struct cli_opt opts[] = {
        CLI_STR("name", &p.name),
        CLI_STR("description", &p.description),
        CLI_STR("image-type", &p.image_type),
        CLI_STR("architecture", &p.architecture),
        CLI_FLAG("public", &p.is_public),
    };
    if (cli_parse_opts(argc, argv, "image register ", opts, CLI_N_OPTS(opts), "invalid option") <
        0) {
        return CLI_USAGE;
    }
    if (!p.name || optind < argc) {
        return cli_usage_error("image register ", "--name is required (and nothing else)");
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_image *m = nubo_image_register(client, &p, &err);
    if (!m) {
        return cli_fail(&err);
    }
    print_image(cli, m, NULL);
    nubo_image_free(m);
    return CLI_OK;
}

/* --- upload, import ---------------------------------------------------------------------------- */

static const char *const formats[] = {"raw", "qcow2", "vhd", "vmdk", "ova"};

/* --format F: one of 'formats'. */
static int parse_format(char *arg, void *dest)
{
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        if (!strcmp(arg, formats[i])) {
            *(const char **)dest = formats[i];
            return 0;
        }
    }
    return -1;
}

/* The format that the extension of 'path' names ("disk.vhd": vhd; .img is raw), or NULL. */
static const char *format_of(const char *path)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash)) {
        return NULL;
    }
    if (!strcasecmp(dot + 1, "img")) {
        return "raw";
    }
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        if (!strcasecmp(dot + 1, formats[i])) {
            return formats[i];
        }
    }
    return NULL;
}

/* --part-size SIZE: bytes, or with a K, M or G suffix (binary: 64M is 64 MiB). */
static int parse_size(char *arg, void *dest)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    int shift = !strcasecmp(end, "K") || !strcasecmp(end, "KiB")   ? 10
                : !strcasecmp(end, "M") || !strcasecmp(end, "MiB") ? 20
                : !strcasecmp(end, "G") || !strcasecmp(end, "GiB") ? 30
                : !*end                                            ? 0
                                                                   : -1;
    if (errno || end == arg || arg[0] == '-' || shift < 0 || v > (5ULL << 30) >> shift ||
        (v << shift) < NUBO_UPLOAD_PART_SIZE_MIN) {
        return -1;
    }
    *(unsigned long long *)dest = v << shift;
    return 0;
}

/* The upload itself, whole or in parts; fills 'up' and the part counts of 'parts' (when in
 * parts). Returns 0, or -1 with '*err' set. */
static int send_file(struct nubo_client *client, const char *id, const char *path,
                     unsigned long long part_size, struct bar *bar, struct nubo_upload_result *up,
                     struct nubo_upload_parts_result *parts, struct nubo_error *err)
{
    if (!part_size) {
        return nubo_image_upload(client, id, path, NULL, on_transfer, bar, up, err);
    }
    if (nubo_image_upload_parts(client, id, path, part_size, on_transfer, bar, parts, err) < 0) {
        return -1;
    }
    memset(up, 0, sizeof *up);
    snprintf(up->image_id, sizeof up->image_id, "%s", parts->image_id);
    snprintf(up->state, sizeof up->state, "%s", parts->state);
    snprintf(up->import_task_id, sizeof up->import_task_id, "%s", parts->import_task_id);
    snprintf(up->sha256, sizeof up->sha256, "%s", parts->sha256);
    up->bytes = parts->bytes;
    return 0;
}

/* "image upload" and "image import" (which always waits for the import). With --part-size the
 * file goes in parts; with --resume, into an image made before, whose parts are kept. */
static int image_upload(struct cli *cli, int argc, char **argv)
{
    const char *cmd = cli->prefix;
    struct nubo_image_params p = {0};
    const char *format = NULL, *resume = NULL;
    unsigned long long part_size = 0;
    bool wait = !strcmp(cli->cmd->verb, "import");
    long long timeout = DEFAULT_WAIT_S;
    const struct cli_opt opts[] = {
        CLI_STR("name", &p.name),
        CLI_FN("format", &format, parse_format, "--format must be raw, qcow2, vhd, vmdk or ova"),
        CLI_STR("description", &p.description),
        CLI_STR("architecture", &p.architecture),
        CLI_FLAG("public", &p.is_public),
        CLI_FLAG("wait", &wait),
        CLI_INT("timeout", &timeout, 1, 86400, "--timeout must be 1-86400 seconds"),
        CLI_FN("part-size", &part_size, parse_size,
               "--part-size must be from 64K to 5G (a number of bytes, or with K, M or G)"),
        CLI_STR("resume", &resume),
    };
    if (cli_parse_opts(argc, argv, cmd, opts, CLI_N_OPTS(opts), "invalid option") < 0) {
        return CLI_USAGE;
    }
    if (resume && (p.name || format || p.description || p.architecture || p.is_public)) {
        return cli_usage_error(cmd, "--resume IMAGE_ID takes the image as it is: no --name, "
                                    "--format, --description, --architecture or --public");
    }
    if (argc - optind != 1 || (!p.name && !resume)) {
        return cli_usage_error(cmd, "expected FILE and --name NAME (or --resume IMAGE_ID)");
    }
    const char *path = argv[optind];
    if (!resume && !format && !(format = format_of(path))) {
        return cli_usage_error(cmd, "cannot tell the format of \"%s\" from its name: give --format",
                               path);
    }
    if (resume && !part_size) {
        part_size = NUBO_UPLOAD_PART_SIZE;
    }
    /* The file must be readable before an image is made for it. */
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "nubo: could not read \"%s\": %s\n", path,
                fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0) {
            close(fd);
        }
        return CLI_USAGE;
    }
    close(fd);
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_image *m =
        resume ? nubo_image_get(client, resume, &err) : nubo_image_create(client, &p, format, &err);
    if (!m) {
        return cli_fail(&err);
    }
    struct bar bar = {.tty = isatty(2)};
    struct nubo_upload_result up;
    struct nubo_upload_parts_result parts = {0};
    if (send_file(client, m->id, path, part_size, &bar, &up, &parts, &err) < 0) {
        bar_done(&bar);
        rc = cli_fail(&err);
        if (part_size) {
            /* The parts that arrived stay: the next run sends only the rest. */
            fprintf(stderr,
                    "nubo: to finish the upload: nubo image upload %s --resume %s "
                    "--part-size %llu\n",
                    path, m->id, part_size);
        } else {
            /* An image without bytes is of no use: drop it, so that the name is free again. */
            struct nubo_error e2;
            if (nubo_image_delete(client, m->id, &e2) == 0) {
                fprintf(stderr, "nubo: deleted image %s, which has no bytes\n", m->id);
            }
        }
        nubo_image_free(m);
        return rc;
    }
    bar_done(&bar);
    if (up.import_task_id[0] && wait) {
        rc = wait_task(client, up.import_task_id, timeout, NULL);
    }
    if (rc == CLI_OK || rc == CLI_UNAVAILABLE) {
        struct nubo_image *now = nubo_image_get(client, m->id, &err);
        if (now) {
            nubo_image_free(m);
            m = now;
        }
    }
    json_t *extra = json_pack("{s:s, s:s}", "sha256", up.sha256, "file", path);
    if (up.import_task_id[0]) {
        json_object_set_new(extra, "import_task_id", json_string(up.import_task_id));
    }
    if (part_size) {
        char text[96];
        snprintf(text, sizeof text, "%d (%d sent, %d already there)", parts.parts, parts.parts_sent,
                 parts.parts_skipped);
        json_object_set_new(
            extra, cli->json ? "upload_parts" : "parts",
            cli->json ? json_pack("{s:i, s:i, s:i, s:I, s:I, s:I}", "parts", parts.parts, "sent",
                                  parts.parts_sent, "skipped", parts.parts_skipped, "part_size",
                                  (json_int_t)part_size, "bytes_sent", (json_int_t)parts.bytes_sent,
                                  "bytes_skipped", (json_int_t)parts.bytes_skipped)
                      : json_string(text));
    }
    print_image(cli, m, extra);
    json_decref(extra);
    nubo_image_free(m);
    return rc;
}

/* --- download, export, task -------------------------------------------------------------------- */

/* Prints what a download wrote. */
static void print_download(const struct cli *cli, const char *id, const char *path,
                           const struct nubo_download_result *r)
{
    if (cli->json) {
        print_json(json_pack("{s:s, s:s, s:I, s:s, s:b}", "image_id", id, "file", path, "bytes",
                             (json_int_t)r->bytes, "sha256", r->sha256, "verified", r->verified));
        return;
    }
    printf("wrote %llu bytes to %s%s\n", (unsigned long long)r->bytes, path,
           r->verified ? " (SHA-256 verified)" : "");
}

static int image_download(struct cli *cli, int argc, char **argv)
{
    const char *cmd = "image download ";
    const char *range = NULL;
    const struct cli_opt opts[] = {CLI_STR("range", &range)};
    if (cli_parse_opts(argc, argv, cmd, opts, CLI_N_OPTS(opts), "invalid option") < 0) {
        return CLI_USAGE;
    }
    if (argc - optind != 2) {
        return cli_usage_error(cmd, "expected IMAGE_ID FILE");
    }
    if (range && strncmp(range, "bytes=", 6)) {
        return cli_usage_error(cmd, "--range must be bytes=FIRST-LAST, bytes=FIRST- or bytes=-N");
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    const char *id = argv[optind], *path = argv[optind + 1];
    struct nubo_error err;
    struct bar bar = {.tty = isatty(2)};
    struct nubo_download_result r;
    int got = nubo_image_download(client, id, path, range, on_transfer, &bar, &r, &err);
    bar_done(&bar);
    if (got < 0) {
        return cli_fail(&err);
    }
    print_download(cli, id, path, &r);
    return CLI_OK;
}

static void print_task(const struct cli *cli, const struct nubo_image_task *t)
{
    if (cli->json) {
        struct cli_json *j = cli_json_new(false);
        cli_json_add(j, t->json);
        cli_json_print(j);
        return;
    }
    char progress[16], bytes[32] = "";
    snprintf(progress, sizeof progress, "%d%%", t->progress);
    if (t->result_sha256) {
        snprintf(bytes, sizeof bytes, "%lld", t->result_bytes);
    }
    const char *pairs[] = {
        "id",      t->id,         "kind",         t->kind,  "image",         t->image_id,
        "state",   t->state,      "progress",     progress, "status",        t->status_message,
        "updated", t->updated_at, "result_bytes", bytes,    "result_sha256", t->result_sha256};
    cli_print_fields(pairs, sizeof pairs / sizeof pairs[0] / 2);
}

static int image_export(struct cli *cli, int argc, char **argv)
{
    const char *cmd = "image export ";
    bool wait = false;
    long long timeout = DEFAULT_WAIT_S;
    const struct cli_opt opts[] = {
        CLI_FLAG("wait", &wait),
        CLI_INT("timeout", &timeout, 1, 86400, "--timeout must be 1-86400 seconds"),
    };
    if (cli_parse_opts(argc, argv, cmd, opts, CLI_N_OPTS(opts), "invalid option") < 0) {
        return CLI_USAGE;
    }
    if (argc - optind != 1 && argc - optind != 2) {
        return cli_usage_error(cmd, "expected IMAGE_ID [FILE]");
    }
    const char *id = argv[optind], *path = argc - optind == 2 ? argv[optind + 1] : NULL;
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_export_result ex;
    if (nubo_image_export(client, id, &ex, &err) < 0) {
        return cli_fail(&err);
    }
    if (!wait && !path) {
        if (cli->json) {
            print_json(json_pack("{s:s, s:s, s:s}", "export_task_id", ex.task_id, "image_id",
                                 ex.image_id, "state", ex.state));
        } else {
            printf("started export %s of %s: follow it with 'nubo image task %s --wait'\n",
                   ex.task_id, id, ex.task_id);
        }
        return CLI_OK;
    }
    struct nubo_image_task *t = NULL;
    rc = wait_task(client, ex.task_id, timeout, &t);
    if (rc != CLI_OK) {
        return rc;
    }
    if (!path) {
        print_task(cli, t);
        nubo_image_task_free(t);
        return CLI_OK;
    }
    nubo_image_task_free(t);
    struct bar bar = {.tty = isatty(2)};
    struct nubo_download_result r;
    int got = nubo_image_export_download(client, id, path, NULL, on_transfer, &bar, &r, &err);
    bar_done(&bar);
    if (got < 0) {
        return cli_fail(&err);
    }
    print_download(cli, id, path, &r);
    return CLI_OK;
}

static int image_task(struct cli *cli, int argc, char **argv)
{
    const char *cmd = "image task ";
    bool wait = false;
    long long timeout = DEFAULT_WAIT_S;
    const struct cli_opt opts[] = {
        CLI_FLAG("wait", &wait),
        CLI_INT("timeout", &timeout, 1, 86400, "--timeout must be 1-86400 seconds"),
    };
    if (cli_parse_opts(argc, argv, cmd, opts, CLI_N_OPTS(opts), "invalid option") < 0) {
        return CLI_USAGE;
    }
    if (argc - optind != 1) {
        return cli_usage_error(cmd, "expected one task id");
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_image_task *t = NULL;
    if (wait) {
        rc = wait_task(client, argv[optind], timeout, &t);
        if (rc != CLI_OK && rc != CLI_API_ERROR) {
            return rc;
        }
    }
    if (!t) { /* not waited for, or failed: show it as it is */
        t = nubo_image_task_get(client, argv[optind], &err);
        if (!t) {
            return cli_fail(&err);
        }
    }
    print_task(cli, t);
    nubo_image_task_free(t);
    return rc;
}

/* --- permissions, share, unshare, copy, delete ------------------------------------------------- */

static void print_perms(const struct cli *cli, const struct nubo_launch_permissions *p)
{
    if (cli->json) {
        struct cli_json *j = cli_json_new(false);
        cli_json_add(j, p->json);
        cli_json_print(j);
        return;
    }
    size_t len = 1;
    for (size_t i = 0; i < p->n_tenants; i++) {
        len += strlen(p->tenants[i]) + 1;
    }
    char *tenants = calloc(1, len);
    for (size_t i = 0; tenants && i < p->n_tenants; i++) {
        if (i) {
            strcat(tenants, ",");
        }
        strcat(tenants, p->tenants[i]);
    }
    const char *pairs[] = {"image",   p->image_id, "public", p->is_public ? "yes" : "no",
                           "tenants", tenants};
    cli_print_fields(pairs, sizeof pairs / sizeof pairs[0] / 2);
    free(tenants);
}

static int image_permissions(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one image id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_launch_permissions *p =
        nubo_image_launch_permissions_get(client, argv[optind], &err);
    if (!p) {
        return cli_fail(&err);
    }
    print_perms(cli, p);
    nubo_launch_permissions_free(p);
    return CLI_OK;
}

/* "image share ID [TENANT...] [--public]" and "image unshare ...": the verb says which. */
static int image_share(struct cli *cli, int argc, char **argv)
{
    const char *cmd = cli->prefix;
    bool share = !strcmp(cli->cmd->verb, "share");
    bool public = false;
    const struct cli_opt opts[] = {CLI_FLAG("public", &public)};
    if (cli_parse_opts(argc, argv, cmd, opts, CLI_N_OPTS(opts), "invalid option") < 0) {
        return CLI_USAGE;
    }
    if (argc - optind < 1 || (argc - optind == 1 && !public)) {
        return cli_usage_error(cmd, "expected IMAGE_ID and TENANT_ID... or --public");
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    const char *const *tenants = (const char *const *)argv + optind + 1;
    size_t n = (size_t)(argc - optind - 1);
    struct nubo_launch_permission_change ch = {
        .add = share ? tenants : NULL,
        .n_add = share ? n : 0,
        .remove = share ? NULL : tenants,
        .n_remove = share ? 0 : n,
        .set_public = public ? share : -1,
    };
    struct nubo_error err;
    struct nubo_launch_permissions *p =
        nubo_image_launch_permissions_modify(client, argv[optind], &ch, &err);
    if (!p) {
        return cli_fail(&err);
    }
    print_perms(cli, p);
    nubo_launch_permissions_free(p);
    return CLI_OK;
}

static int image_copy(struct cli *cli, int argc, char **argv)
{
    const char *cmd = "image copy ";
    const char *name = NULL, *description = NULL, *token = NULL;
    bool wait = false;
    long long timeout = DEFAULT_WAIT_S;
    const struct cli_opt opts[] = {
        CLI_STR("name", &name),
        CLI_STR("description", &description),
        CLI_STR("client-token", &token),
        CLI_FLAG("wait", &wait),
        CLI_INT("timeout", &timeout, 1, 86400, "--timeout must be 1-86400 seconds"),
    };
    if (cli_parse_opts(argc, argv, cmd, opts, CLI_N_OPTS(opts), "invalid option") < 0) {
        return CLI_USAGE;
    }
    if (argc - optind != 1 || !name) {
        return cli_usage_error(cmd, "expected IMAGE_ID and --name NAME");
    }
    int rc = CLI_OK;
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_image *m = nubo_image_copy(client, argv[optind], name, description, token, &err);
    if (!m) {
        return cli_fail(&err);
    }
    if (wait && !strcmp(m->state, "pending")) {
        struct nubo_image *done = nubo_image_wait(client, m->id, (double)timeout, 500, &err);
        if (!done) {
            nubo_image_free(m);
            if (!strcmp(err.code, "Timeout")) {
                fprintf(stderr, "nubo: timed out: %s\n", err.message);
                return CLI_UNAVAILABLE;
            }
            return cli_fail(&err);
        }
        nubo_image_free(m);
        m = done;
        if (strcmp(m->state, "available")) {
            struct nubo_image_storage st;
            nubo_image_storage_get(m, &st);
            fprintf(stderr, "nubo: the copy %s failed: %s\n", m->id,
                    st.state_reason[0] ? st.state_reason : "no reason given");
            rc = CLI_API_ERROR;
        }
    }
    print_image(cli, m, NULL);
    nubo_image_free(m);
    return rc;
}

static int image_delete(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one image id", &rc);
    if (!client) {
        return rc;
    }
    const char *id = argv[optind];
    struct nubo_error err;
    if (nubo_image_delete(client, id, &err) < 0) {
        return cli_fail(&err);
    }
    if (cli->json) {
        print_json(json_pack("{s:s, s:b}", "image_id", id, "deleted", 1));
    } else {
        printf("deleted image %s\n", id);
    }
    return CLI_OK;
}

#define UPLOAD_HELP                                                                                \
    "  --name NAME            unique within your tenant (required)\n"                              \
    "  --format FORMAT        raw, qcow2, vhd, vmdk or ova (default: from the file's\n"            \
    "                         extension; .img is raw)\n"                                           \
    "  --description TEXT\n"                                                                       \
    "  --architecture ARCH    default x86_64\n"                                                    \
    "  --public               visible to every tenant (operator only)\n"

#define PARTS_HELP                                                                                 \
    "  --part-size SIZE       upload in parts of SIZE (64K to 5G: 64M, 512K...), each its\n"       \
    "                         own request; a broken upload is finished with --resume\n"            \
    "  --resume IMAGE_ID      finish the upload in parts of IMAGE_ID: send only the parts\n"       \
    "                         missing or different (same FILE and --part-size; default 64M)\n"

const struct cli_cmd cli_image_cmds[] = {
    {"image", "list", image_list, "[--owner self|TENANT_ID] [--filter NAME=V1,V2]...",
     "list the images you may launch",
     "  --owner OWNER          only images of this owner (self or a tenant id)\n"
     "  --filter NAME=V1,V2    image-id, name, state, is-public, owner-id, image-type,\n"
     "                         architecture, tag:KEY, tag-key, tag-value\n"},
    {"image", "show", image_show, "IMAGE_ID", "show one image", NULL},
    {"image", "register", image_register, "--name NAME [OPTIONS]",
     "register an image record (metadata only)",
     "  --name NAME            unique within your tenant (required)\n"
     "  --description TEXT\n"
     "  --image-type TYPE      machine (default), kernel or ramdisk\n"
     "  --architecture ARCH    default x86_64\n"
     "  --public               visible to every tenant (operator only)\n"},
    {"image", "upload", image_upload, "FILE --name NAME [OPTIONS] | FILE --resume IMAGE_ID",
     "make an image from a disk file (streamed, SHA-256 signed; resumable in parts)",
     UPLOAD_HELP "  --wait                 wait for the import of a vhd, vmdk or ova\n"
                 "  --timeout SECONDS      how long --wait waits (default 600); exit 5 when "
                 "it runs out\n" PARTS_HELP},
    {"image", "import", image_upload, "FILE --name NAME [OPTIONS]",
     "upload a vhd, vmdk or ova and wait for its import",
     UPLOAD_HELP "  --timeout SECONDS      how long to wait (default 600); exit 5 when it runs "
                 "out\n" PARTS_HELP},
    {"image", "download", image_download, "IMAGE_ID FILE [--range bytes=A-B]",
     "download an image's bytes into FILE (checked against their SHA-256)",
     "  --range bytes=A-B      only these bytes (bytes=A-, bytes=-N: the last N)\n"},
    {"image", "export", image_export, "IMAGE_ID [FILE] [--wait]",
     "export an image to OVA; with FILE, wait and download it",
     "  --wait                 wait for the export task (implied by FILE)\n"
     "  --timeout SECONDS      how long to wait (default 600); exit 5 when it runs out\n"},
    {"image", "task", image_task, "TASK_ID [--wait]", "show an import, export or copy task",
     "  --wait                 wait until it has completed or failed (exit 1 when failed)\n"
     "  --timeout SECONDS      how long --wait waits (default 600); exit 5 when it runs out\n"},
    {"image", "permissions", image_permissions, "IMAGE_ID",
     "show who besides you may launch your image", NULL},
    {"image", "share", image_share, "IMAGE_ID [TENANT_ID...] [--public]",
     "let tenants (or, with --public, everybody) launch your image",
     "  --public               make the image public\n"},
    {"image", "unshare", image_share, "IMAGE_ID [TENANT_ID...] [--public]",
     "stop tenants (or, with --public, everybody) launching your image",
     "  --public               make the image private\n"},
    {"image", "copy", image_copy, "IMAGE_ID --name NAME [OPTIONS]",
     "copy an image you may launch into your tenant",
     "  --name NAME            the copy's name (required)\n"
     "  --description TEXT     default: the source's\n"
     "  --client-token TOKEN   make the copy idempotent (default: a random token)\n"
     "  --wait                 wait until the copy is available\n"
     "  --timeout SECONDS      how long --wait waits (default 600); exit 5 when it runs out\n"},
    {"image", "delete", image_delete, "IMAGE_ID", "deregister one of your images", NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
