/* libnubo: the C client of nubo's REST API (/v1/...), documented in docs/api.md and
 * docs/openapi.yaml of the nubo source tree.
 *
 * Conventions of every function here:
 * - A function that fails returns -1 or NULL and, when 'err' is not NULL, fills '*err' with the
 *   API's error code ("InvalidInstanceID.NotFound"), its message, the request id and the HTTP
 *   status. Failures that happen before an answer use the codes "ConnectionError",
 *   "ConfigError", "InvalidParameterValue" (a bad argument), "ProtocolError" (an answer that is
 *   not what the API documents), "Timeout" (nubo_instance_wait(), nubo_image_task_wait()),
 *   "Cancelled" (a callback asked to stop), "FileError" (a local file could not be read or
 *   written) and "BadDigest" (downloaded bytes that are not what the API said), with HTTP
 *   status 0.
 * - Structs returned by the library are allocated by it and freed with the matching *_free()
 *   function, which accepts NULL. Their string fields are NUL-terminated UTF-8 owned by the
 *   struct; optional ones are NULL when absent. Fields are only ever appended to these structs
 *   in later versions, so callers must not allocate them themselves. Two kinds keep their
 *   layout for good: the items of a list struct (an old caller indexes the array with the old
 *   size) and the *_params structs callers fill (they carry no size); newer fields come in new
 *   structs and functions (nubo_instances_run_placed(), nubo_instance_placement_get()).
 * - Every struct returned has a 'json' field: the resource's JSON object as the API sent it
 *   (compact), for callers that want fields this version does not type.
 * - Thread safety: a struct nubo_client, and the iterators made from it, may be used by one
 *   thread at a time (it keeps one HTTP connection). Different clients may be used from
 *   different threads at once. Functions that take no client are thread-safe.
 *
 * Requests are signed with AWS Signature Version 4. GET, PUT and DELETE requests, and launches
 * and image copies (which carry a client token), are retried with exponential back-off on
 * connection errors and on HTTP 429, 502, 503 and 504. Image uploads and downloads stream
 * between a file and the network in bounded memory, whatever the image's size. */
#ifndef NUBO_NUBO_H
#define NUBO_NUBO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define NUBO_API __attribute__((visibility("default")))
#else
#define NUBO_API
#endif

#define NUBO_VERSION_MAJOR 0
#define NUBO_VERSION_MINOR 2
#define NUBO_VERSION_PATCH 0
#define NUBO_VERSION       "0.2.0"

/* Returns the library's version (NUBO_VERSION of the library that runs), a static string. */
NUBO_API const char *nubo_version(void);

/* --- errors ------------------------------------------------------------------------------- */

struct nubo_error {
    int http_status;     /* 0 when no answer came */
    char code[64];       /* "InvalidInstanceID.NotFound", "ConnectionError", ... */
    char message[512];   /* the API's message, or libnubo's */
    char request_id[64]; /* the x-amzn-RequestId of the answer, "" when there was none */
};

/* Returns true when 'err' says that a resource does not exist (a code ending in "NotFound"). */
NUBO_API bool nubo_error_is_not_found(const struct nubo_error *err);

/* Returns true when 'err' is an authentication or authorisation refusal (AuthFailure,
 * SignatureDoesNotMatch, IncompleteSignature, RequestExpired, OptInRequired,
 * UnauthorizedOperation), or missing credentials ("ConfigError" with HTTP status 0 is not). */
NUBO_API bool nubo_error_is_auth(const struct nubo_error *err);

/* Returns true when 'err' means the service could not be reached or did not answer in time
 * (ConnectionError, Timeout, HTTP 5xx, 429). */
NUBO_API bool nubo_error_is_unavailable(const struct nubo_error *err);

/* --- the client ---------------------------------------------------------------------------- */

struct nubo_client;

/* Returns a new client for 'endpoint' ("http://127.0.0.1:8773", a path prefix is allowed),
 * signing with 'access_key' and 'secret_key' for 'region' (NULL: "nubo-1"). The strings are
 * copied. Returns NULL with '*err' set on a malformed endpoint or missing credentials. The caller
 * frees the client with nubo_client_free(). Thread-safe. */
NUBO_API struct nubo_client *nubo_client_new(const char *endpoint, const char *access_key,
                                             const char *secret_key, const char *region,
                                             struct nubo_error *err);

/* Returns a new client configured from the environment and the profile file
 * ($NUBO_CONFIG_FILE, else $XDG_CONFIG_HOME/nubo/config, else ~/.config/nubo/config; an ini file
 * of [profile] sections with endpoint=, access_key=, secret_key=, region=).
 * 'profile' names the section; NULL means $NUBO_PROFILE, else "default". When 'profile' is NULL
 * the environment (NUBO_ENDPOINT, NUBO_ACCESS_KEY or AWS_ACCESS_KEY_ID, NUBO_SECRET_KEY or
 * AWS_SECRET_ACCESS_KEY, NUBO_REGION or AWS_DEFAULT_REGION) overrides the file; when it is
 * given, the file's section wins and the environment only fills what it lacks. A named profile
 * that the file does not have is an error. 'endpoint' (may be NULL) overrides both. The caller
 * frees the client with nubo_client_free(). Thread-safe. */
NUBO_API struct nubo_client *nubo_client_from_config(const char *profile, const char *endpoint,
                                                     struct nubo_error *err);

/* Frees 'client' and closes its connection. Accepts NULL. */
NUBO_API void nubo_client_free(struct nubo_client *client);

/* Sets how many times a retryable request is tried in all ('attempts' >= 1, default 5) and the
 * first back-off delay ('base_delay_ms', default 200; it doubles per retry, with jitter, up to
 * 5 s). */
NUBO_API void nubo_client_set_retries(struct nubo_client *client, int attempts, int base_delay_ms);

/* Sets the time limit of one HTTP attempt in seconds (default 30). */
NUBO_API void nubo_client_set_timeout(struct nubo_client *client, int seconds);

/* Returns the client's endpoint as given, without a final '/'; owned by the client. */
NUBO_API const char *nubo_client_endpoint(const struct nubo_client *client);

/* Sends one signed request: 'method' "GET"..., 'path' from the API root ("/v1/regions", already
 * percent-encoded where needed), 'query' an already encoded query string or NULL, 'body' JSON
 * text or NULL. On an answer of 2xx, stores the body in '*reply' (a new string the caller
 * free()s, "" for 204) and returns the HTTP status. Otherwise returns -1 with '*err' set. Retries
 * as described above when 'idempotent' is true. */
NUBO_API int nubo_client_request(struct nubo_client *client, const char *method, const char *path,
                                 const char *query, const char *body, bool idempotent, char **reply,
                                 struct nubo_error *err);

/* --- common types -------------------------------------------------------------------------- */

struct nubo_tag {
    char *key;
    char *value;
};

/* A list filter: 'name' is EC2's filter name ("instance-state-name", "tag:Name"), 'values' a
 * comma-separated list of values ("pending,running"). The library copies what it needs. */
struct nubo_filter {
    const char *name;
    const char *values;
};

/* --- catalogue ----------------------------------------------------------------------------- */

struct nubo_region {
    char *name;
    char *endpoint;
    char *json;
};

struct nubo_region_list {
    struct nubo_region *items;
    size_t n;
};

/* Returns the regions (one per gateway), or NULL with '*err' set. The caller frees the list with
 * nubo_region_list_free(). */
NUBO_API struct nubo_region_list *nubo_regions_list(struct nubo_client *client,
                                                    struct nubo_error *err);
NUBO_API void nubo_region_list_free(struct nubo_region_list *list);

struct nubo_zone {
    char *name;
    char *region;
    char *state;
    char *json;
};

struct nubo_zone_list {
    struct nubo_zone *items;
    size_t n;
};

/* Returns the availability zones that match every filter of 'filters' ('n_filters' of them, may
 * be 0), or NULL with '*err' set. The caller frees the list with nubo_zone_list_free(). */
NUBO_API struct nubo_zone_list *nubo_zones_list(struct nubo_client *client,
                                                const struct nubo_filter *filters, size_t n_filters,
                                                struct nubo_error *err);
NUBO_API void nubo_zone_list_free(struct nubo_zone_list *list);

struct nubo_instance_type {
    char *name;
    int vcpus;
    int memory_mib;
    int disk_gib;
    int ephemeral_gib;
    bool enabled;
    char *json;
};

struct nubo_instance_type_iter;

/* Returns an iterator over the instance types matching 'filters', fetched 'page_size' at a time
 * (0: the API's default). Nothing is sent before the first nubo_instance_type_iter_next(). The
 * caller frees it with nubo_instance_type_iter_free(). Returns NULL only when out of memory. */
NUBO_API struct nubo_instance_type_iter *
nubo_instance_type_iter_new(struct nubo_client *client, const struct nubo_filter *filters,
                            size_t n_filters, int page_size);

/* Stores the next instance type in '*out' and returns 1; returns 0 at the end, -1 with '*err'
 * set on failure. '*out' is owned by the iterator and valid until the next call or its free. */
NUBO_API int nubo_instance_type_iter_next(struct nubo_instance_type_iter *it,
                                          const struct nubo_instance_type **out,
                                          struct nubo_error *err);
NUBO_API void nubo_instance_type_iter_free(struct nubo_instance_type_iter *it);

/* --- images -------------------------------------------------------------------------------- */

struct nubo_image {
    char *id;
    char *owner_id;
    char *name;
    char *description;
    char *state;
    bool is_public;
    char *image_type;
    char *architecture;
    char *created_at;
    struct nubo_tag *tags;
    size_t n_tags;
    char *json;
};

struct nubo_image_list {
    struct nubo_image *items;
    size_t n;
};

/* Returns the images the caller may launch (its own and public ones) matching 'filters'; with
 * 'owner' ("self" or a tenant id, may be NULL) only that owner's. NULL with '*err' set on
 * failure. The caller frees the list with nubo_image_list_free(). */
NUBO_API struct nubo_image_list *nubo_images_list(struct nubo_client *client, const char *owner,
                                                  const struct nubo_filter *filters,
                                                  size_t n_filters, struct nubo_error *err);
NUBO_API void nubo_image_list_free(struct nubo_image_list *list);

/* Returns the image 'id', or NULL with '*err' set ("InvalidAMIID.NotFound" when the caller sees
 * no such image, "InvalidAMIID.Malformed"). The caller frees it with nubo_image_free(). */
NUBO_API struct nubo_image *nubo_image_get(struct nubo_client *client, const char *id,
                                           struct nubo_error *err);
NUBO_API void nubo_image_free(struct nubo_image *image);

struct nubo_image_params {
    const char *name;         /* required, unique within the tenant */
    const char *description;  /* NULL: "" */
    const char *image_type;   /* NULL: "machine" */
    const char *architecture; /* NULL: "x86_64" */
    bool is_public;           /* the operator only */
};

/* Registers an image record (metadata only: uploads wait for the image store). Returns the new
 * image, which the caller frees with nubo_image_free(), or NULL with '*err' set. Not retried. */
NUBO_API struct nubo_image *nubo_image_register(struct nubo_client *client,
                                                const struct nubo_image_params *params,
                                                struct nubo_error *err);

/* Registers an image whose bytes the caller uploads next with nubo_image_upload():
 * 'source_format' is the format of those bytes ("raw", "qcow2", "vhd", "vmdk" or "ova";
 * VHD, VMDK and OVA are converted by an import task after the upload). The image is "pending"
 * until then. 'params->is_public' needs the operator. Returns the new image, which the caller
 * frees with nubo_image_free(), or NULL with '*err' set ("InvalidAMIName.Duplicate",
 * "InvalidParameterValue"). Not retried. */
NUBO_API struct nubo_image *nubo_image_create(struct nubo_client *client,
                                              const struct nubo_image_params *params,
                                              const char *source_format, struct nubo_error *err);

/* What an image carries besides struct nubo_image's fields (which keeps its layout, since lists
 * hold arrays of it), read from its 'json'. Absent values are "" and 0. */
struct nubo_image_storage {
    char disk_format[16];     /* "raw" or "qcow2": the format of the stored bytes */
    long long size_bytes;     /* the size of the stored bytes */
    long long virtual_size;   /* the size of the disk the guest sees */
    char source_image_id[32]; /* the image this one was copied from */
    char state_reason[512];   /* why a "failed" image failed */
};

/* Fills '*out' from 'image'. Returns 0, or -1 when 'image' has no readable JSON ('*out' is then
 * all "" and 0). Thread-safe. */
NUBO_API int nubo_image_storage_get(const struct nubo_image *image, struct nubo_image_storage *out);

/* Deregisters the image 'id' (EC2's DeregisterImage): it is no longer listed nor launchable and
 * the image store deletes its bytes later. Returns 0, or -1 with '*err' set
 * ("InvalidAMIID.NotFound", "AuthFailure" for an image the caller sees but does not own). */
NUBO_API int nubo_image_delete(struct nubo_client *client, const char *id, struct nubo_error *err);

/* What a transfer is doing when it reports progress. */
enum nubo_transfer_phase {
    NUBO_TRANSFER_HASH,    /* reading the file to compute its SHA-256, before the upload */
    NUBO_TRANSFER_SEND,    /* sending the file */
    NUBO_TRANSFER_RECEIVE, /* receiving into the file; 'total' is 0 when unknown */
};

/* Called during uploads and downloads with the bytes done so far out of 'total', a few times a
 * second and at the end of each phase; a non-zero return stops the transfer (it then fails with
 * "Cancelled"). Called from the thread that called the transfer. */
typedef int (*nubo_transfer_fn)(enum nubo_transfer_phase phase, uint64_t done, uint64_t total,
                                void *arg);

struct nubo_upload_result {
    char image_id[32];
    char state[16];          /* "available" (raw, qcow2), or "pending" while an import runs */
    char import_task_id[64]; /* the import task (VHD, VMDK, OVA; see nubo_image_task_get()),
                              * "" for raw and qcow2 */
    char sha256[65];         /* what was signed: the file's SHA-256, or "UNSIGNED-PAYLOAD" */
    uint64_t bytes;          /* the size of the file sent */
};

/* Uploads the regular file at 'path' as the bytes of the image 'id' (made by
 * nubo_image_create(), still without bytes). The file is streamed from disk, never held in
 * memory: first read once to compute its SHA-256 (unless 'sha256' gives it: 64 hex digits, or
 * "UNSIGNED-PAYLOAD" to send it unsigned), then sent with that digest signed in the
 * x-amz-content-sha256 header; the API stores nothing unless the bytes match it. 'progress'
 * (may be NULL) is called with 'arg' for both passes. Stores the outcome in '*out' (may be
 * NULL) and returns 0, or -1 with '*err' set: "FileError" (the file cannot be read or is not a
 * regular file), "BadDigest" (the file changed while it was sent, or 'sha256' is wrong),
 * "InvalidParameterValue" (the bytes are not in the image's format, or are unsafe),
 * "IncorrectState" (the image has its bytes already), "ResourceLimitExceeded" (over the size
 * limit or the tenant's image-storage quota). Retried on connection errors and 429/5xx: each
 * attempt sends the file again. No overall time limit: it fails when the transfer stalls for the
 * client's timeout. */
NUBO_API int nubo_image_upload(struct nubo_client *client, const char *id, const char *path,
                               const char *sha256, nubo_transfer_fn progress, void *arg,
                               struct nubo_upload_result *out, struct nubo_error *err);

/* The default and the smallest part size of nubo_image_upload_parts(). */
#define NUBO_UPLOAD_PART_SIZE     (64ULL << 20)
#define NUBO_UPLOAD_PART_SIZE_MIN (64ULL << 10)

struct nubo_upload_parts_result {
    char image_id[32];
    char state[16];          /* as in struct nubo_upload_result */
    char import_task_id[64]; /* as in struct nubo_upload_result */
    char sha256[65];         /* the whole file's SHA-256 */
    uint64_t bytes;          /* the size of the file */
    int parts;               /* how many parts the file was cut into */
    int parts_skipped;       /* parts the API had already, equal to the file's */
    int parts_sent;          /* parts sent by this call */
    uint64_t bytes_skipped, bytes_sent;
};

/* Uploads the regular file at 'path' as the bytes of the image 'id' in parts of 'part_size'
 * bytes (0: NUBO_UPLOAD_PART_SIZE; at least NUBO_UPLOAD_PART_SIZE_MIN; at most 10000 parts), a
 * multipart upload that survives a broken run: call it again with the same image id, file and
 * part size, and it sends only what is missing. It reads the file once to compute the SHA-256
 * of the whole and of each part (progress phase NUBO_TRANSFER_HASH), lists the parts the API
 * has (GET /v1/images/<id>/parts), skips each whose size and SHA-256 equal the file's, uploads
 * the others (PUT /v1/images/<id>/file?part=N, each streamed from the file and signed with its
 * own SHA-256; a part sent again replaces the earlier one), then joins them (POST
 * /v1/images/<id>/parts/complete with the whole file's SHA-256), which the API checks and stores
 * as nubo_image_upload() does. 'progress' (may be NULL) is called with 'arg' for the hash pass,
 * then (NUBO_TRANSFER_SEND) with the bytes skipped plus sent out of the file's size. Stores the
 * outcome in '*out' (may be NULL) and returns 0, or -1 with '*err' set, with the codes of
 * nubo_image_upload() and "InvalidParameterValue" for a part size out of bounds or an empty
 * file. The listing and each part are retried on connection errors and 429/5xx (each attempt
 * sends the part again); the join is not (after a failed one, a new call finds the parts). No
 * overall time limit. The parts are left on the API when it fails, for the next call. */
NUBO_API int nubo_image_upload_parts(struct nubo_client *client, const char *id, const char *path,
                                     uint64_t part_size, nubo_transfer_fn progress, void *arg,
                                     struct nubo_upload_parts_result *out, struct nubo_error *err);

struct nubo_download_result {
    uint64_t bytes;  /* written to the file */
    char sha256[65]; /* the SHA-256 of the whole image (or OVA) as the API announced it */
    bool verified;   /* the bytes written were checked against 'sha256' (a full download) */
};

/* Downloads the bytes of the image 'id' (one of the caller's own) into the file 'path', created
 * or truncated (mode 0666 less the umask), streamed to disk as they arrive. 'range' is NULL for
 * the whole image, or one HTTP range ("bytes=0-1048575", "bytes=1024-", "bytes=-512"). A whole
 * image is checked against the SHA-256 the API sends (x-nubo-sha256): a mismatch fails with
 * "BadDigest". 'progress' (may be NULL) is called with 'arg'. Stores the outcome in '*out' (may
 * be NULL) and returns 0, or -1 with '*err' set ("InvalidAMIID.NotFound", "InvalidRange" for a
 * range past the end, "FileError"); on failure 'path' is removed. Retried (a GET). */
NUBO_API int nubo_image_download(struct nubo_client *client, const char *id, const char *path,
                                 const char *range, nubo_transfer_fn progress, void *arg,
                                 struct nubo_download_result *out, struct nubo_error *err);

/* An import, export or copy of one of the caller's images, run by the image store. */
struct nubo_image_task {
    char *id;   /* "import-ami-...", "export-ami-...", "copy-ami-..." */
    char *kind; /* import, export, copy */
    char *image_id;
    char *state;          /* pending, active, completed, failed */
    int progress;         /* 0-100 */
    char *status_message; /* why it failed, or "done" */
    char *updated_at;
    long long result_bytes; /* an export's OVA size; 0 for other tasks */
    char *result_sha256;    /* an export's OVA SHA-256; NULL for other tasks */
    char *json;
};

/* Returns the image task 'id', or NULL with '*err' set (a code ending in "NotFound" for a task
 * that is not the caller's). The caller frees it with nubo_image_task_free(). Retried (a GET). */
NUBO_API struct nubo_image_task *nubo_image_task_get(struct nubo_client *client, const char *id,
                                                     struct nubo_error *err);
NUBO_API void nubo_image_task_free(struct nubo_image_task *task);

/* Called by nubo_image_task_wait() after every poll with the task as it is now and the seconds
 * waited; a non-zero return stops the wait (it then fails with "Cancelled"). */
typedef int (*nubo_task_wait_fn)(const struct nubo_image_task *task, double elapsed_s, void *arg);

/* Polls the image task 'id' every 'poll_ms' milliseconds (0: 1000) until it is "completed" or
 * "failed", for at most 'timeout_s' seconds. Returns the task in one of those states (the
 * caller checks which; 'status_message' says why it failed), which the caller frees with
 * nubo_image_task_free(), or NULL with '*err' set: "Timeout" (the last state and progress seen
 * are in the message), "Cancelled", or an API error. 'progress' may be NULL. */
NUBO_API struct nubo_image_task *nubo_image_task_wait(struct nubo_client *client, const char *id,
                                                      double timeout_s, int poll_ms,
                                                      nubo_task_wait_fn progress, void *arg,
                                                      struct nubo_error *err);

/* Polls the image 'id' as nubo_image_task_wait() polls a task, until it is no longer "pending"
 * (a copy or an import being made). Returns the image, "available" or "failed" (the caller
 * checks which), which the caller frees with nubo_image_free(), or NULL with '*err' set
 * ("Timeout", an API error). */
NUBO_API struct nubo_image *nubo_image_wait(struct nubo_client *client, const char *id,
                                            double timeout_s, int poll_ms, struct nubo_error *err);

/* Called by nubo_image_wait_progress() after every poll that finds the image still "pending",
 * with the image and the seconds waited so far; a non-zero return stops the wait (it then fails
 * with "Cancelled"). */
typedef int (*nubo_image_wait_fn)(const struct nubo_image *image, double elapsed_s, void *arg);

/* nubo_image_wait(), calling 'progress' (NULL: none) with 'arg' after each poll. */
NUBO_API struct nubo_image *nubo_image_wait_progress(struct nubo_client *client, const char *id,
                                                     double timeout_s, int poll_ms,
                                                     nubo_image_wait_fn progress, void *arg,
                                                     struct nubo_error *err);

struct nubo_export_result {
    char task_id[64]; /* "export-ami-...": poll it with nubo_image_task_wait() */
    char image_id[32];
    char state[16]; /* "pending" */
};

/* Starts an export of the image 'id' (the caller's, "available", with its bytes in the image
 * store) to an OVA: an OVF 1.0 descriptor, the disk as a streamOptimized VMDK and a SHA-256
 * manifest. Stores the task in '*out' and returns 0, or -1 with '*err' set ("IncorrectState").
 * Once the task is "completed", nubo_image_export_download() fetches the OVA. Not retried. */
NUBO_API int nubo_image_export(struct nubo_client *client, const char *id,
                               struct nubo_export_result *out, struct nubo_error *err);

/* As nubo_image_download(), for the OVA of the latest completed export of the image 'id'. */
NUBO_API int nubo_image_export_download(struct nubo_client *client, const char *id,
                                        const char *path, const char *range,
                                        nubo_transfer_fn progress, void *arg,
                                        struct nubo_download_result *out, struct nubo_error *err);

/* Who besides its owner may launch an image. */
struct nubo_launch_permissions {
    char *image_id;
    bool is_public; /* every tenant may */
    char **tenants; /* 'n_tenants' tenant ids (12 digits), ordered */
    size_t n_tenants;
    char *json;
};

/* Returns the launch permissions of the caller's image 'id', or NULL with '*err' set
 * ("AuthFailure" for an image the caller sees but does not own). The caller frees them with
 * nubo_launch_permissions_free(). */
NUBO_API struct nubo_launch_permissions *
nubo_image_launch_permissions_get(struct nubo_client *client, const char *id,
                                  struct nubo_error *err);

/* A change of launch permissions: the tenants of 'remove' lose theirs, then those of 'add'
 * gain one, then 'set_public' applies (-1 leaves it, 0 makes the image private, 1 public). */
struct nubo_launch_permission_change {
    const char *const *add; /* 'n_add' tenant ids, may be NULL when 'n_add' is 0 */
    size_t n_add;
    const char *const *remove;
    size_t n_remove;
    int set_public;
};

/* Applies 'change' to the caller's image 'id' in one transaction. Returns the permissions as
 * they now are, which the caller frees with nubo_launch_permissions_free(), or NULL with '*err'
 * set ("InvalidAMIAttributeItemValue" for an unknown tenant in 'add'). Retried (a PUT: applying
 * it twice gives the same result). */
NUBO_API struct nubo_launch_permissions *
nubo_image_launch_permissions_modify(struct nubo_client *client, const char *id,
                                     const struct nubo_launch_permission_change *change,
                                     struct nubo_error *err);
NUBO_API void nubo_launch_permissions_free(struct nubo_launch_permissions *perms);

/* Copies the image 'id' (one the caller may launch, "available") into the caller's tenant as
 * 'name' (required), with 'description' (NULL: the source's). The copy is "pending" while the
 * image store copies the bytes (nubo_image_wait() waits for it). 'client_token' (NULL: the
 * library makes one) makes retries safe. Returns the new image, which the caller frees with
 * nubo_image_free(), or NULL with '*err' set ("InvalidAMIID.Unavailable",
 * "InvalidAMIName.Duplicate"). Retried. */
NUBO_API struct nubo_image *nubo_image_copy(struct nubo_client *client, const char *id,
                                            const char *name, const char *description,
                                            const char *client_token, struct nubo_error *err);

/* --- instances ----------------------------------------------------------------------------- */

struct nubo_instance {
    char *id;
    char *reservation_id;
    char *owner_id;
    int launch_index;
    char *image_id;
    char *instance_type;
    char *key_name; /* NULL when launched without a key pair */
    char *zone;
    char *state; /* pending, running, shutting-down, terminated, stopping, stopped, error */
    char *state_reason_code;    /* NULL when there is no state reason (an "error" has one) */
    char *state_reason_message; /* NULL when there is none */
    char *launch_time;
    int vcpus;
    int memory_mib;
    struct nubo_tag *tags;
    size_t n_tags;
    char *json;
};

struct nubo_instance_list {
    struct nubo_instance *items;
    size_t n;
};

NUBO_API void nubo_instance_free(struct nubo_instance *instance);
NUBO_API void nubo_instance_list_free(struct nubo_instance_list *list);

struct nubo_run_params {
    const char *image_id;      /* required */
    const char *instance_type; /* NULL: the API's default (t3.micro) */
    const char *key_name;      /* NULL: none */
    const char *zone;          /* NULL: the first available zone */
    const char *user_data;     /* base64, NULL: none */
    int min_count;             /* 0: 1 */
    int max_count;             /* 0: 'min_count' */
    const struct nubo_tag *tags;
    size_t n_tags;
    const char *client_token; /* NULL: the library generates one, so that retries are safe */
};

/* Launches instances. Returns the reservation's instances, which the caller frees with
 * nubo_instance_list_free(), or NULL with '*err' set. Retried like an idempotent call: the client
 * token makes a repeat return the first launch's reservation. */
NUBO_API struct nubo_instance_list *nubo_instances_run(struct nubo_client *client,
                                                       const struct nubo_run_params *params,
                                                       struct nubo_error *err);

/* Where to launch, beyond struct nubo_run_params (which callers allocate, so it does not grow:
 * these came later and go to nubo_instances_run_placed()). */
struct nubo_run_placement {
    const char *placement_group; /* the name of one of the tenant's placement groups; NULL: none */
    int partition_number;        /* 1-7, a partition of a partition group; 0: the scheduler picks */
    const char *tenancy;         /* "default" or "dedicated" (hosts dedicated to the tenant);
                                  * NULL: default */
};

/* As nubo_instances_run(), with 'placement' (may be NULL: as nubo_instances_run()). Fails with
 * "InvalidPlacementGroup.Unknown" for a group the tenant does not have,
 * "InvalidParameterCombination" for a partition without a group, "InvalidParameterValue" for a
 * bad tenancy or partition. The caller frees the list with nubo_instance_list_free(). Retried as
 * nubo_instances_run() is. */
NUBO_API struct nubo_instance_list *
nubo_instances_run_placed(struct nubo_client *client, const struct nubo_run_params *params,
                          const struct nubo_run_placement *placement, struct nubo_error *err);

/* Where an instance was put, read from its 'json' (struct nubo_instance keeps its layout, since
 * lists hold arrays of it). Every field is filled: tenancy "default" when the answer has none,
 * placement_group "" and partition_number 0 when the instance is in no group. */
struct nubo_instance_placement {
    char tenancy[16];
    char placement_group[256];
    int partition_number;
};

/* Fills '*out' from 'instance'. Returns 0, or -1 when 'instance' has no readable JSON ('*out' is
 * then the defaults). Thread-safe. */
NUBO_API int nubo_instance_placement_get(const struct nubo_instance *instance,
                                         struct nubo_instance_placement *out);

/* Where to connect an instance, beyond struct nubo_run_params and struct nubo_run_placement
 * (which do not grow: these go to nubo_instances_run_networked()). */
struct nubo_run_network {
    const char *subnet_id;  /* each instance gets an interface in this subnet (and its zone) */
    const char *private_ip; /* one instance only; NULL: the lowest free addresses */
    const char *const *security_group_ids; /* 'n_security_groups' groups of the subnet's VPC; */
    size_t n_security_groups;              /* 0: the VPC's default group. Needs 'subnet_id'. */
};

/* As nubo_instances_run_placed(), with 'network' (may be NULL: as nubo_instances_run_placed()).
 * Fails besides with "InvalidSubnetID.NotFound", "InsufficientFreeAddressesInSubnet",
 * "InvalidIPAddress.InUse", "InvalidGroup.NotFound". The caller frees the list with
 * nubo_instance_list_free(). Retried as nubo_instances_run() is. */
NUBO_API struct nubo_instance_list *
nubo_instances_run_networked(struct nubo_client *client, const struct nubo_run_params *params,
                             const struct nubo_run_placement *placement,
                             const struct nubo_run_network *network, struct nubo_error *err);

/* The network interface of an instance launched into a subnet, read from its 'json'. */
struct nubo_instance_network {
    char *vpc_id;
    char *subnet_id;
    char *private_ip;
    char *mac_address;
    char *network_interface_id;
    char **security_group_ids; /* 'n_security_groups' of them, with their names alongside */
    char **security_group_names;
    size_t n_security_groups;
};

/* Returns the network interface of 'instance', which the caller frees with
 * nubo_instance_network_free(), or NULL when the instance is in no subnet (or it is
 * terminated), when its JSON is unreadable or when out of memory. Thread-safe. */
NUBO_API struct nubo_instance_network *
nubo_instance_network_get(const struct nubo_instance *instance);
NUBO_API void nubo_instance_network_free(struct nubo_instance_network *network);

/* An instance's serial console. */
struct nubo_console {
    char *instance_id;
    char *output; /* the tail of the console (up to 64 KiB), "" before the first boot */
    char *json;
};

/* Returns the tail of the serial console of the instance 'id', read from the agent of its host,
 * or NULL with '*err' set: "InvalidInstanceID.NotFound", "IncorrectInstanceState" (the instance
 * is on no host with an agent: not placed yet, or on a simulated host), "Unavailable" (the agent
 * did not answer). The caller frees it with nubo_console_free(). Retried (a GET). */
NUBO_API struct nubo_console *nubo_instance_console(struct nubo_client *client, const char *id,
                                                    struct nubo_error *err);
NUBO_API void nubo_console_free(struct nubo_console *console);

/* A single-use ticket that opens an instance's screen (its VNC display, through the gateway's
 * WebSocket proxy) in a browser: the in-browser VM console. Also what a VDI desktop's console
 * gives (nubo_vdi_desktop_console()). */
struct nubo_console_ticket {
    char *instance_id;
    char *token;         /* the secret the ticket is: whoever holds it may open the screen once */
    int expires_in;      /* seconds it stays valid, from its issue (the gateway's
                       * console.ticket_ttl_s, 30 by default) */
    char *websocket;     /* the API's path to open: "/v1/console/websocket?token=..." */
    char *viewer;        /* the console page (noVNC) that opens it: "/console/vnc.html?..." */
    char *viewer_url;    /* the client's endpoint followed by 'viewer': what to open in a browser */
    char *websocket_url; /* the endpoint (ws:// or wss://) followed by 'websocket' */
    char *json;
};

/* Issues a console ticket for the screen of the running instance 'id' (any role of the tenant
 * may ask: watching changes nothing, though keyboard and mouse reach the guest). Returns it,
 * which the caller frees with nubo_console_ticket_free() (it wipes the token), or NULL with
 * '*err' set: "InvalidInstanceID.NotFound" (also another tenant's), "IncorrectInstanceState"
 * (not running). Not retried: each call issues a new ticket. */
NUBO_API struct nubo_console_ticket *nubo_instance_vnc(struct nubo_client *client, const char *id,
                                                       struct nubo_error *err);
NUBO_API void nubo_console_ticket_free(struct nubo_console_ticket *ticket);

/* Returns the instance 'id', or NULL with '*err' set ("InvalidInstanceID.NotFound",
 * "InvalidInstanceID.Malformed"). The caller frees it with nubo_instance_free(). */
NUBO_API struct nubo_instance *nubo_instance_get(struct nubo_client *client, const char *id,
                                                 struct nubo_error *err);

struct nubo_instance_iter;

/* Returns an iterator over the caller's instances that match 'filters', fetched 'page_size' at a
 * time (0: all in one answer). Nothing is sent before the first nubo_instance_iter_next(). The
 * caller frees it with nubo_instance_iter_free(). Returns NULL only when out of memory. */
NUBO_API struct nubo_instance_iter *nubo_instance_iter_new(struct nubo_client *client,
                                                           const struct nubo_filter *filters,
                                                           size_t n_filters, int page_size);

/* Stores the next instance in '*out' and returns 1; returns 0 at the end, -1 with '*err' set.
 * '*out' is owned by the iterator and valid until the next call or its free. */
NUBO_API int nubo_instance_iter_next(struct nubo_instance_iter *it,
                                     const struct nubo_instance **out, struct nubo_error *err);
NUBO_API void nubo_instance_iter_free(struct nubo_instance_iter *it);

enum nubo_instance_op {
    NUBO_INSTANCE_STOP,
    NUBO_INSTANCE_START,
    NUBO_INSTANCE_REBOOT,
    NUBO_INSTANCE_TERMINATE,
};

struct nubo_state_change {
    char id[32];
    char previous_state[32];
    char state[32];
};

/* Applies 'op' to the instance 'id' and stores the state change in '*out' (may be NULL).
 * Returns 0, or -1 with '*err' set (e.g. "IncorrectInstanceState"). Not retried: repeating a
 * reboot reboots twice; stop, start and terminate are safe to repeat by hand. */
NUBO_API int nubo_instance_action(struct nubo_client *client, const char *id,
                                  enum nubo_instance_op op, struct nubo_state_change *out,
                                  struct nubo_error *err);

/* Called by nubo_instance_wait() after every poll with the instance as it is now and the
 * seconds waited so far; a non-zero return stops the wait (it then fails with "Cancelled"). */
typedef int (*nubo_wait_fn)(const struct nubo_instance *instance, double elapsed_s, void *arg);

/* Polls the instance 'id' every 'poll_ms' milliseconds (0: 1000) until its state is 'state'
 * ("running"...) or 'timeout_s' seconds have passed. Returns the instance in that state, which
 * the caller frees with nubo_instance_free(), or NULL with '*err' set: "Timeout" (the last state
 * seen is in the message), an API error, or "IncorrectInstanceState" when the instance reached
 * "terminated" while another state was awaited. 'progress' may be NULL. */
NUBO_API struct nubo_instance *nubo_instance_wait(struct nubo_client *client, const char *id,
                                                  const char *state, double timeout_s, int poll_ms,
                                                  nubo_wait_fn progress, void *arg,
                                                  struct nubo_error *err);

/* Makes an image of the caller's instance 'id' (EC2's CreateImage; "running" or "stopped", on a
 * host with a compute agent) named 'name' (required, unique within the tenant), with
 * 'description' (NULL: ""). The gateway answers once the host has saved the disk, which may take
 * longer than the client's timeout (raise it with nubo_client_set_timeout()); the image is then
 * "pending" while the image store imports the disk, and nubo_image_wait() waits until it is
 * "available" (or "failed"). Returns the new image as nubo_image_get() shows it, which the
 * caller frees with nubo_image_free(), or NULL with '*err' set: "InvalidInstanceID.NotFound",
 * "IncorrectInstanceState" (another state, or a host without an agent),
 * "InvalidAMIName.Duplicate", "UnauthorizedOperation" (a reader). Not retried: a repeat would
 * make a second image. Thread-safe like every call on a client. */
NUBO_API struct nubo_image *nubo_instance_create_image(struct nubo_client *client, const char *id,
                                                       const char *name, const char *description,
                                                       struct nubo_error *err);

/* --- key pairs ----------------------------------------------------------------------------- */

struct nubo_keypair {
    char *id;
    char *name;
    char *key_type; /* rsa, ed25519 */
    char *fingerprint;
    char *public_key;
    char *created_at;
    char *private_key; /* only in the answer to nubo_keypair_create(), else NULL */
    struct nubo_tag *tags;
    size_t n_tags;
    char *json;
};

struct nubo_keypair_list {
    struct nubo_keypair *items;
    size_t n;
};

/* Creates a key pair 'name' of 'key_type' ("rsa", "ed25519"; NULL: rsa). Returns it with its
 * private key (returned this once), or NULL with '*err' set ("InvalidKeyPair.Duplicate"). The
 * caller frees it with nubo_keypair_free(), which wipes the private key. Not retried. */
NUBO_API struct nubo_keypair *nubo_keypair_create(struct nubo_client *client, const char *name,
                                                  const char *key_type, struct nubo_error *err);

/* Imports 'public_key' (an OpenSSH public key line) as key pair 'name'. Returns it, which the
 * caller frees with nubo_keypair_free(), or NULL with '*err' set ("InvalidKey.Format"). */
NUBO_API struct nubo_keypair *nubo_keypair_import(struct nubo_client *client, const char *name,
                                                  const char *public_key, struct nubo_error *err);

/* Returns the caller's key pairs matching 'filters', or NULL with '*err' set. The caller frees
 * the list with nubo_keypair_list_free(). */
NUBO_API struct nubo_keypair_list *nubo_keypairs_list(struct nubo_client *client,
                                                      const struct nubo_filter *filters,
                                                      size_t n_filters, struct nubo_error *err);

/* Deletes the key pair 'name'; deleting a name that does not exist succeeds (as on EC2).
 * Returns 0, or -1 with '*err' set. */
NUBO_API int nubo_keypair_delete(struct nubo_client *client, const char *name,
                                 struct nubo_error *err);
NUBO_API void nubo_keypair_free(struct nubo_keypair *keypair);
NUBO_API void nubo_keypair_list_free(struct nubo_keypair_list *list);

/* --- tags ---------------------------------------------------------------------------------- */

struct nubo_tag_row {
    char *resource_id;
    char *resource_type; /* instance, image, key-pair */
    char *key;
    char *value;
    char *json;
};

struct nubo_tag_iter;

/* Returns an iterator over the tags of the caller's resources that match 'filters' ("key",
 * "value", "resource-id", "resource-type"), fetched 'page_size' at a time (0: all at once). The
 * caller frees it with nubo_tag_iter_free(). Returns NULL only when out of memory. */
NUBO_API struct nubo_tag_iter *nubo_tag_iter_new(struct nubo_client *client,
                                                 const struct nubo_filter *filters,
                                                 size_t n_filters, int page_size);

/* As nubo_instance_iter_next(), for tags. */
NUBO_API int nubo_tag_iter_next(struct nubo_tag_iter *it, const struct nubo_tag_row **out,
                                struct nubo_error *err);
NUBO_API void nubo_tag_iter_free(struct nubo_tag_iter *it);

/* Adds or overwrites 'n_tags' tags on 'resource_id' (all or nothing). Returns 0, or -1 with
 * '*err' set. */
NUBO_API int nubo_tags_set(struct nubo_client *client, const char *resource_id,
                           const struct nubo_tag *tags, size_t n_tags, struct nubo_error *err);

/* Removes the tag 'key' of 'resource_id', or every tag when 'key' is NULL. Returns 0, or -1
 * with '*err' set. */
NUBO_API int nubo_tags_delete(struct nubo_client *client, const char *resource_id, const char *key,
                              struct nubo_error *err);

/* --- billing ----------------------------------------------------------------------------------- */

/* Money is integer micro-units of the invoice's currency (1 USD = 1000000). */

struct nubo_usage_meter {
    char *meter;    /* "instance-running" */
    char *sku;      /* "t3.micro" */
    char *unit;     /* "hour" */
    char *quantity; /* a decimal in the meter's base unit (seconds, GiB-seconds, byte-seconds) */
    bool priced;    /* false when no price applies ('amount_micros' is then 0) */
    long long amount_micros;
};

struct nubo_usage {
    char *tenant_id;
    char *period;           /* "2026-02" (UTC) */
    char *aggregated_until; /* how far nubo-billing has aggregated; NULL before it has */
    long long total_micros;
    struct nubo_usage_meter *meters; /* 'n_meters' of them */
    size_t n_meters;
    char *json;
};

/* Returns the current month's usage not yet billed, rated as an invoice would bill it, of the
 * caller's tenant ('tenant_id' NULL) or of 'tenant_id' (the admin role only; another role gets
 * "UnauthorizedOperation"). The caller frees it with nubo_usage_free(). NULL with '*err' set
 * on failure. Retried (a GET). */
NUBO_API struct nubo_usage *nubo_usage_get(struct nubo_client *client, const char *tenant_id,
                                           struct nubo_error *err);
NUBO_API void nubo_usage_free(struct nubo_usage *usage);

struct nubo_invoice_line {
    long long line_no;
    char *kind; /* usage, adjustment */
    char *meter;
    char *sku;
    char *resource_id;
    char *plan_id;
    char *unit;
    long long unit_quantity;
    long long unit_price_micros;
    long long discount_bp;   /* basis points */
    char *quantity;          /* a decimal, in base units */
    char *exact_micros;      /* a decimal: may hold a fraction of a micro-unit */
    long long amount_micros; /* billed: rounded half-up to the cent */
    char *first_hour;
    char *last_hour;
};

struct nubo_invoice {
    char *invoice_id; /* "inv-202602-123456789012" */
    char *tenant_id;
    char *period;
    char *state; /* draft, closed */
    char *currency;
    long long total_micros;
    char *created_at;
    char *closed_at;                 /* NULL while a draft */
    struct nubo_invoice_line *lines; /* only from nubo_invoice_get(); NULL in lists */
    size_t n_lines;
    char *json;
};

struct nubo_invoice_list {
    struct nubo_invoice *items;
    size_t n;
};

/* Returns the invoices of the caller's tenant ('tenant_id' NULL), newest period first; the admin
 * role sees every tenant's, or one tenant's with 'tenant_id' (another role giving another
 * tenant's id gets "UnauthorizedOperation"). The items have no lines. NULL with '*err' set on
 * failure. The caller frees the list with nubo_invoice_list_free(). */
NUBO_API struct nubo_invoice_list *
nubo_invoices_list(struct nubo_client *client, const char *tenant_id, struct nubo_error *err);

/* Returns the invoice 'id' with its lines, or NULL with '*err' set ("InvalidInvoiceID.NotFound",
 * also for another tenant's unless the caller has the admin role). The caller frees it with
 * nubo_invoice_free(). */
NUBO_API struct nubo_invoice *nubo_invoice_get(struct nubo_client *client, const char *id,
                                               struct nubo_error *err);

/* Returns the invoice 'id' as the API's CSV text (a header row, then one row per line, as
 * nubo-billing --export --format csv writes them; UTF-8, CRLF or LF as the API sends it), a new
 * string the caller free()s, or NULL with '*err' set (as nubo_invoice_get()). Retried (a GET). */
NUBO_API char *nubo_invoice_csv(struct nubo_client *client, const char *id, struct nubo_error *err);
NUBO_API void nubo_invoice_free(struct nubo_invoice *invoice);
NUBO_API void nubo_invoice_list_free(struct nubo_invoice_list *list);

struct nubo_budget_alert {
    char *period;
    long long threshold_micros; /* the threshold that was reached */
    long long amount_micros;    /* the month's rated usage then */
    char *at;
};

struct nubo_budget {
    char *tenant_id;
    bool has_threshold; /* false when no budget is set ('threshold_micros' is then 0) */
    long long threshold_micros;
    struct nubo_budget_alert *alerts; /* 'n_alerts' alerts raised, one per month at most */
    size_t n_alerts;
    char *json;
};

/* Returns the budget of the caller's tenant ('tenant_id' NULL) or of 'tenant_id' (the admin role
 * only), or NULL with '*err' set. The caller frees it with nubo_budget_free(). */
NUBO_API struct nubo_budget *nubo_budget_get(struct nubo_client *client, const char *tenant_id,
                                             struct nubo_error *err);

/* Sets the budget threshold of the caller's tenant ('tenant_id' NULL) or of 'tenant_id' (the
 * admin role only) to 'threshold_micros' (>= 1); when the month's rated usage reaches it,
 * nubo-billing raises one alert for the month. Needs the member or admin role. Returns the
 * budget as it now is, which the caller frees with nubo_budget_free(), or NULL with '*err' set
 * ("InvalidParameterValue"). Retried (a PUT). */
NUBO_API struct nubo_budget *nubo_budget_set(struct nubo_client *client, const char *tenant_id,
                                             long long threshold_micros, struct nubo_error *err);
NUBO_API void nubo_budget_free(struct nubo_budget *budget);

/* One price of a price plan: 'price_micros' for every 'unit_quantity' base units of 'meter'
 * (seconds, GiB-seconds, bytes...), shown as one 'unit' ("hour", "GB-month"). */
struct nubo_price {
    char *meter; /* "instance-running" */
    char *sku;   /* "t3.micro"; "" for every sku without a price of its own */
    char *unit;
    long long unit_quantity;
    long long price_micros;
};

struct nubo_price_plan {
    char *id; /* "plan-default-1" */
    char *name;
    char *effective_from; /* NULL when the plan applies from the beginning of time */
    char *currency;       /* "USD" */
    long long min_run_seconds;
    bool current;              /* the plan in effect now */
    struct nubo_price *prices; /* 'n_prices' of them, by meter then sku */
    size_t n_prices;
    char *json;
};

struct nubo_price_plan_list {
    struct nubo_price_plan *items;
    size_t n;
};

/* Returns every price plan with its prices, newest first (the admin role only; another role
 * gets "UnauthorizedOperation"). Tenants' price overrides are not in it. NULL with '*err' set on
 * failure. The caller frees the list with nubo_price_plan_list_free(). Retried (a GET);
 * thread-safe like every call on a client. */
NUBO_API struct nubo_price_plan_list *nubo_admin_prices(struct nubo_client *client,
                                                        struct nubo_error *err);
NUBO_API void nubo_price_plan_list_free(struct nubo_price_plan_list *list);

/* --- operator (admin role) ----------------------------------------------------------------- */

struct nubo_tenant {
    char *tenant_id;
    char *name;
    bool enabled;        /* true for a tenant just created */
    char *created_at;    /* NULL in the answer to nubo_admin_tenant_create() */
    long long instances; /* instances not terminated; 0 for a tenant just created */
    char *json;
};

struct nubo_tenant_list {
    struct nubo_tenant *items;
    size_t n;
};

/* Returns every tenant, or NULL with '*err' set. The caller frees the list with
 * nubo_tenant_list_free(). */
NUBO_API struct nubo_tenant_list *nubo_admin_tenants_list(struct nubo_client *client,
                                                          struct nubo_error *err);

/* Creates tenant 'name' with the default quota and no users. Returns it, which the caller frees
 * with nubo_tenant_free(), or NULL with '*err' set ("InvalidTenant.Duplicate"). */
NUBO_API struct nubo_tenant *nubo_admin_tenant_create(struct nubo_client *client, const char *name,
                                                      struct nubo_error *err);
NUBO_API void nubo_tenant_free(struct nubo_tenant *tenant);
NUBO_API void nubo_tenant_list_free(struct nubo_tenant_list *list);

struct nubo_user {
    char *user_id;
    char *tenant_id;
    char *name;
    char *role;
    char *json;
};

/* Creates user 'name' with 'role' ("admin", "member", "reader", "desktop": a VDI user, who may
 * use the desktop broker alone, see nubo/vdi.h; NULL: member) in 'tenant_id'.
 * Returns it, which the caller frees with nubo_user_free(), or NULL with '*err' set. */
NUBO_API struct nubo_user *nubo_admin_user_create(struct nubo_client *client, const char *tenant_id,
                                                  const char *name, const char *role,
                                                  struct nubo_error *err);
NUBO_API void nubo_user_free(struct nubo_user *user);

struct nubo_access_key {
    char *access_key_id;
    char *secret_access_key; /* only in this answer */
    char *user_id;
    char *json;
};

/* Creates an access key for 'user_id'. Returns it with its secret (shown this once), which the
 * caller frees with nubo_access_key_free() (it wipes the secret), or NULL with '*err' set. */
NUBO_API struct nubo_access_key *nubo_admin_key_create(struct nubo_client *client,
                                                       const char *user_id, struct nubo_error *err);
NUBO_API void nubo_access_key_free(struct nubo_access_key *key);

enum nubo_admin_kind {
    NUBO_ADMIN_TENANT,
    NUBO_ADMIN_USER,
    NUBO_ADMIN_KEY,
};

/* Sets the web console password of user 'user_id' (10 to 1024 bytes; the gateway keeps a scrypt
 * hash) and ends the user's console sessions. Idempotent; thread-safe like every call on a
 * client. Returns 0, or -1 with '*err' set ("InvalidParameterValue" for a short one). */
NUBO_API int nubo_admin_user_set_password(struct nubo_client *client, const char *user_id,
                                          const char *password, struct nubo_error *err);

/* Changes the web console password of the user whose key (or console session) 'client' signs
 * with, any role, to 'password' (10 to 1024 bytes), after checking 'current_password' (NULL or
 * "": not sent, for a user who has none yet). Ends the user's other console sessions. Returns 0,
 * or -1 with '*err' set: "InvalidParameterValue" (a wrong current password, with the gateway's
 * message, or a short new one). The strings are not kept. Not retried: after an answer lost on
 * the way, a repeat would be refused, the current password having changed. Thread-safe like
 * every call on a client. */
NUBO_API int nubo_my_password_set(struct nubo_client *client, const char *current_password,
                                  const char *password, struct nubo_error *err);

/* An instance type as nubo_instance_type_put() sets it: the whole type, every field sent. */
struct nubo_instance_type_params {
    const char *name;  /* required: "t3.large" */
    int vcpus;         /* 1-1024 */
    int memory_mib;    /* 64 and above */
    int disk_gib;      /* the root disk, 0-65536 */
    int ephemeral_gib; /* 0-65536 */
    bool disabled;     /* true: kept, but no new launches */
};

/* Creates the instance type 'params->name', or replaces it whole (the admin role only; another
 * role gets "UnauthorizedOperation"). Returns the type as it now is, which the caller frees
 * with nubo_instance_type_free(), or NULL with '*err' set ("InvalidParameterValue", also before
 * sending for a missing name, vcpus or memory_mib below 1, a negative disk). Retried (a PUT of
 * the whole type). Thread-safe like every call on a client. */
NUBO_API struct nubo_instance_type *
nubo_instance_type_put(struct nubo_client *client, const struct nubo_instance_type_params *params,
                       struct nubo_error *err);

/* Frees an instance type returned by nubo_instance_type_put() (not one an iterator owns).
 * Accepts NULL. */
NUBO_API void nubo_instance_type_free(struct nubo_instance_type *type);

/* Enables or disables the tenant, user or access key 'id'. Returns 0, or -1 with '*err' set. */
NUBO_API int nubo_admin_set_enabled(struct nubo_client *client, enum nubo_admin_kind kind,
                                    const char *id, bool enabled, struct nubo_error *err);

/* A tenant's quota. In nubo_admin_quota_set(), a field of -1 is left as it is. */
struct nubo_quota {
    char tenant_id[32];
    long long max_instances;
    long long max_vcpus;
    long long max_memory_mib;
    long long max_elastic_ips;
    long long max_image_bytes;
};

/* Stores the quota of 'tenant_id' in '*out'. Returns 0, or -1 with '*err' set. */
NUBO_API int nubo_admin_quota_get(struct nubo_client *client, const char *tenant_id,
                                  struct nubo_quota *out, struct nubo_error *err);

/* Changes the fields of 'tenant_id''s quota that are not -1 in '*set' and stores the result in
 * '*out' (may be NULL). Returns 0, or -1 with '*err' set. */
NUBO_API int nubo_admin_quota_set(struct nubo_client *client, const char *tenant_id,
                                  const struct nubo_quota *set, struct nubo_quota *out,
                                  struct nubo_error *err);

struct nubo_request_query {
    const char *tenant_id;  /* NULL: any */
    const char *action;     /* exact, "RunInstances" or "POST /v1/instances"; NULL: any */
    const char *error_code; /* NULL: any */
    bool errors_only;
    long long from_us; /* microseconds since the epoch, inclusive; 0: no bound */
    long long to_us;   /* exclusive; 0: no bound */
    int limit;         /* 1-1000, 0: the API's default (100) */
};

struct nubo_request_record {
    char *request_id;
    char *time;
    char *tenant_id;     /* NULL when the request was not authenticated */
    char *access_key_id; /* NULL when none was claimed */
    char *action;
    int http_status;
    char *error_code; /* NULL on success */
    long long latency_us;
    char *source_addr;
    char *user_agent;
    char *api; /* ec2, rest, other */
    char *json;
};

struct nubo_request_list {
    struct nubo_request_record *items;
    size_t n;
};

/* Returns the request log records matching 'query' (may be NULL), newest first, or NULL with
 * '*err' set. The caller frees the list with nubo_request_list_free(). */
NUBO_API struct nubo_request_list *nubo_admin_requests(struct nubo_client *client,
                                                       const struct nubo_request_query *query,
                                                       struct nubo_error *err);
NUBO_API void nubo_request_list_free(struct nubo_request_list *list);

/* --- compute hosts (admin role) ------------------------------------------------------------ */

/* An amount of each resource a host has, reserves or has claimed. */
struct nubo_host_resources {
    long long vcpus;
    long long memory_mib;
    long long disk_gib;
};

struct nubo_host {
    char *id; /* "h-" and 17 hex digits */
    char *name;
    char *zone;
    char *state;        /* up, down (no heartbeat), disabled, draining */
    char *state_reason; /* NULL when there is none */
    bool simulated;     /* no agent: the scheduler plays it */
    char *agent_url;    /* NULL when none */
    struct nubo_host_resources capacity;
    struct nubo_host_resources reserved;
    struct nubo_host_resources used; /* what its live instances claim */
    long long used_instances;
    double cpu_ratio, memory_ratio, disk_ratio; /* allocation ratios */
    char **traits;                              /* 'n_traits' strings */
    size_t n_traits;
    char *dedicated_tenant; /* NULL when the host is shared */
    double cpu_load;
    char *last_heartbeat; /* NULL before the first heartbeat */
    char *node_token;     /* only in the answer to nubo_admin_host_create() for a real host */
    char *json;           /* also holds "stats", the agent's last report */
};

struct nubo_host_list {
    struct nubo_host *items;
    size_t n;
};

/* What nubo_admin_host_create() and nubo_admin_host_update() send. Set it up with
 * nubo_host_params_init(): a field left as that sets it is not sent (the API's default on create, no
 * change on update). */
struct nubo_host_params {
    const char *name;      /* create only; required */
    const char *zone;      /* create only; NULL: the first zone */
    bool simulated;        /* create only */
    const char *agent_url; /* create only; NULL: none */
    const char *state;     /* update only: "up", "disabled" or "draining"; NULL: no change */
    /* -1: not sent. Capacity applies to simulated hosts (a real one's agent reports it). */
    long long vcpus, memory_mib, disk_gib;
    long long reserved_vcpus, reserved_memory_mib, reserved_disk_gib;
    double cpu_ratio, memory_ratio, disk_ratio; /* <= 0: not sent */
    const char *const *traits;                  /* NULL: not sent; else 'n_traits' of them */
    size_t n_traits;                            /* (0 with 'traits' set: clears them) */
    const char *dedicated_tenant; /* NULL: not sent; "": shared (null); else a tenant id */
};

/* Sets every field of '*params' to "not sent". Thread-safe. */
NUBO_API void nubo_host_params_init(struct nubo_host_params *params);

/* Returns every compute host, by name, or NULL with '*err' set. The caller frees the list with
 * nubo_host_list_free(). */
NUBO_API struct nubo_host_list *nubo_admin_hosts_list(struct nubo_client *client,
                                                      struct nubo_error *err);

/* Returns the host 'id', or NULL with '*err' set ("InvalidHostID.NotFound"). The caller frees it
 * with nubo_host_free(). */
NUBO_API struct nubo_host *nubo_admin_host_get(struct nubo_client *client, const char *id,
                                               struct nubo_error *err);

/* Registers a host. For a real (not simulated) host the answer's 'node_token' is its agent's
 * credential, returned this once. Returns the host, which the caller frees with nubo_host_free()
 * (it wipes the token), or NULL with '*err' set ("InvalidHost.Duplicate" for a name in use,
 * "InvalidParameterValue"). Not retried. */
NUBO_API struct nubo_host *nubo_admin_host_create(struct nubo_client *client,
                                                  const struct nubo_host_params *params,
                                                  struct nubo_error *err);

/* Changes what 'params' sets of the host 'id' (state, capacity of a simulated host, reserved
 * resources, ratios, traits, dedication; name, zone and agent_url are refused). Returns the
 * host as it is now, which the caller frees with nubo_host_free(), or NULL with '*err' set.
 * Not retried. */
NUBO_API struct nubo_host *nubo_admin_host_update(struct nubo_client *client, const char *id,
                                                  const struct nubo_host_params *params,
                                                  struct nubo_error *err);

/* Removes the host 'id'. Returns 0, or -1 with '*err' set ("IncorrectState" while live instances
 * are on it, "InvalidHostID.NotFound"). Not retried. */
NUBO_API int nubo_admin_host_delete(struct nubo_client *client, const char *id,
                                    struct nubo_error *err);

struct nubo_evacuation {
    char *host_id;
    char **instances; /* the ids of the instances handed back to the scheduler */
    size_t n_instances;
    char *json;
};

/* Hands the live instances of the down or disabled host 'id' back to the scheduler, which boots
 * them elsewhere from their images. Returns what moved, which the caller frees with
 * nubo_evacuation_free(), or NULL with '*err' set ("IncorrectState" when the host is up or
 * draining). Not retried. */
NUBO_API struct nubo_evacuation *nubo_admin_host_evacuate(struct nubo_client *client,
                                                          const char *id, struct nubo_error *err);

NUBO_API void nubo_host_free(struct nubo_host *host);
NUBO_API void nubo_host_list_free(struct nubo_host_list *list);
NUBO_API void nubo_evacuation_free(struct nubo_evacuation *evacuation);

/* Tenant networks: VPCs, subnets, security groups, elastic IPs, VPN, internet gateways, route
 * tables and remote access, in a header of their own. */
#include "network.h"

/* Hosted VDI desktops: desktop pools and the connection broker, in a header of their own. */
#include "vdi.h"

/* The live event stream (instance state changes, image-task progress), in a header of its own. */
#include "events.h"

#ifdef __cplusplus
}
#endif

#endif
