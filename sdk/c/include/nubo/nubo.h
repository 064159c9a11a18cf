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
#define NUBO_VERSION_MINOR 1
#define NUBO_VERSION_PATCH 0
#define NUBO_VERSION       "0.1.0"

/* Returns the library's version ("0.1.0"), a static string. */
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

/* --- networks: VPCs, subnets, security groups ------------------------------------------------ */

struct nubo_vpc {
    char *id; /* "vpc-" and 17 hex digits */
    char *owner_id;
    char *cidr_block;  /* "10.0.0.0/16" */
    char *state;       /* pending, available */
    long long segment; /* the network's VLAN/VXLAN key */
    struct nubo_tag *tags;
    size_t n_tags;
    char *json;
};

struct nubo_vpc_list {
    struct nubo_vpc *items;
    size_t n;
};

/* Creates a VPC of 'cidr_block' (an IPv4 block of /16 to /28; it may overlap another tenant's)
 * with 'n_tags' 'tags' (may be NULL when 0), made with its "default" security group. Returns it,
 * which the caller frees with nubo_vpc_free(), or NULL with '*err' set ("InvalidVpc.Range",
 * "VpcLimitExceeded", "InvalidParameterValue"). Not retried. */
NUBO_API struct nubo_vpc *nubo_vpc_create(struct nubo_client *client, const char *cidr_block,
                                          const struct nubo_tag *tags, size_t n_tags,
                                          struct nubo_error *err);

/* Returns the caller's VPCs matching 'filters' ("vpc-id", "cidr", "state", "tag:KEY", ...),
 * ordered by id, or NULL with '*err' set. The caller frees the list with nubo_vpc_list_free(). */
NUBO_API struct nubo_vpc_list *nubo_vpcs_list(struct nubo_client *client,
                                              const struct nubo_filter *filters, size_t n_filters,
                                              struct nubo_error *err);

/* Returns the VPC 'id', or NULL with '*err' set ("InvalidVpcID.NotFound", also for another
 * tenant's). The caller frees it with nubo_vpc_free(). Retried (a GET). */
NUBO_API struct nubo_vpc *nubo_vpc_get(struct nubo_client *client, const char *id,
                                       struct nubo_error *err);

/* Deletes the VPC 'id' with its default group. Returns 0, or -1 with '*err' set
 * ("DependencyViolation" while it has subnets or other groups, "InvalidVpcID.NotFound"). */
NUBO_API int nubo_vpc_delete(struct nubo_client *client, const char *id, struct nubo_error *err);
NUBO_API void nubo_vpc_free(struct nubo_vpc *vpc);
NUBO_API void nubo_vpc_list_free(struct nubo_vpc_list *list);

struct nubo_subnet {
    char *id; /* "subnet-" and 17 hex digits */
    char *owner_id;
    char *vpc_id;
    char *zone;
    char *cidr_block;
    char *state;             /* pending, available */
    long long available_ips; /* the size less 5 reserved addresses and those in use */
    struct nubo_tag *tags;
    size_t n_tags;
    char *json;
};

struct nubo_subnet_list {
    struct nubo_subnet *items;
    size_t n;
};

/* What nubo_subnet_create() sends. */
struct nubo_subnet_params {
    const char *vpc_id;     /* required */
    const char *cidr_block; /* required: inside the VPC's, /16 to /28 */
    const char *zone;       /* NULL: the first available zone */
    const struct nubo_tag *tags;
    size_t n_tags;
};

/* Creates a subnet. Returns it, which the caller frees with nubo_subnet_free(), or NULL with
 * '*err' set ("InvalidVpcID.NotFound", "InvalidSubnet.Range" outside the VPC or not /16 to /28,
 * "InvalidSubnet.Conflict" overlapping another subnet of the VPC, "InvalidParameterValue").
 * Not retried. */
NUBO_API struct nubo_subnet *nubo_subnet_create(struct nubo_client *client,
                                                const struct nubo_subnet_params *params,
                                                struct nubo_error *err);

/* Returns the caller's subnets matching 'filters' ("subnet-id", "vpc-id", "cidr",
 * "availability-zone", "tag:KEY", ...), ordered by id, or NULL with '*err' set. The caller frees
 * the list with nubo_subnet_list_free(). */
NUBO_API struct nubo_subnet_list *nubo_subnets_list(struct nubo_client *client,
                                                    const struct nubo_filter *filters,
                                                    size_t n_filters, struct nubo_error *err);

/* Returns the subnet 'id', or NULL with '*err' set ("InvalidSubnetID.NotFound"). The caller
 * frees it with nubo_subnet_free(). */
NUBO_API struct nubo_subnet *nubo_subnet_get(struct nubo_client *client, const char *id,
                                             struct nubo_error *err);

/* Deletes the subnet 'id'. Returns 0, or -1 with '*err' set ("DependencyViolation" while
 * instances not terminated use it, "InvalidSubnetID.NotFound"). */
NUBO_API int nubo_subnet_delete(struct nubo_client *client, const char *id, struct nubo_error *err);
NUBO_API void nubo_subnet_free(struct nubo_subnet *subnet);
NUBO_API void nubo_subnet_list_free(struct nubo_subnet_list *list);

/* One rule of a security group, as the API answers it. */
struct nubo_sg_rule {
    char *id;        /* "sgr-..." */
    char *direction; /* ingress, egress */
    char *protocol;  /* tcp, udp, icmp, or "-1" (all) */
    int from_port;   /* -1: all (ICMP: the type) */
    int to_port;     /* -1: all (ICMP: the code) */
    char *cidr;      /* the peer range, or NULL when the peer is 'group_id' */
    char *group_id;  /* the peer group, or NULL when the peer is 'cidr' */
    char *description;
};

struct nubo_security_group {
    char *id; /* "sg-" and 17 hex digits */
    char *owner_id;
    char *vpc_id;
    char *name;
    char *description;
    struct nubo_sg_rule *rules; /* 'n_rules' of them, ingress first */
    size_t n_rules;
    struct nubo_tag *tags;
    size_t n_tags;
    char *json;
};

struct nubo_security_group_list {
    struct nubo_security_group *items;
    size_t n;
};

/* What nubo_security_group_create() sends. */
struct nubo_security_group_params {
    const char *name;        /* required; not "default", not starting with "sg-" */
    const char *description; /* required: 1 to 255 characters */
    const char *vpc_id;      /* required */
    const struct nubo_tag *tags;
    size_t n_tags;
};

/* A rule to add or remove: exactly one of 'cidr' and 'group_id'. */
struct nubo_sg_rule_spec {
    bool egress;             /* false: ingress */
    const char *protocol;    /* "tcp", "udp", "icmp", "-1" or "all"; required */
    int from_port, to_port;  /* -1: all; ignored for protocol "-1" */
    const char *cidr;        /* "0.0.0.0/0", or NULL */
    const char *group_id;    /* a group of the same VPC, or NULL */
    const char *description; /* NULL: "" */
};

/* Creates a security group in a VPC, with EC2's initial rule (egress anywhere). Returns it,
 * which the caller frees with nubo_security_group_free(), or NULL with '*err' set
 * ("InvalidVpcID.NotFound", "InvalidGroup.Duplicate", "InvalidGroup.Reserved"). Not retried. */
NUBO_API struct nubo_security_group *
nubo_security_group_create(struct nubo_client *client,
                           const struct nubo_security_group_params *params, struct nubo_error *err);

/* Returns the caller's security groups matching 'filters' ("group-id", "group-name", "vpc-id",
 * "tag:KEY", ...), by VPC then name, or NULL with '*err' set. The caller frees the list with
 * nubo_security_group_list_free(). */
NUBO_API struct nubo_security_group_list *
nubo_security_groups_list(struct nubo_client *client, const struct nubo_filter *filters,
                          size_t n_filters, struct nubo_error *err);

/* Returns the security group 'id' with its rules, or NULL with '*err' set
 * ("InvalidGroup.NotFound"). The caller frees it with nubo_security_group_free(). */
NUBO_API struct nubo_security_group *
nubo_security_group_get(struct nubo_client *client, const char *id, struct nubo_error *err);

/* Deletes the security group 'id'. Returns 0, or -1 with '*err' set ("CannotDelete" for a
 * VPC's default group, "DependencyViolation" while instances use it or another group's rule
 * refers to it, "InvalidGroup.NotFound"). */
NUBO_API int nubo_security_group_delete(struct nubo_client *client, const char *id,
                                        struct nubo_error *err);

/* Adds the 'n_rules' rules of 'rules' to the group 'id', all or none. Returns the group as it
 * now is, which the caller frees with nubo_security_group_free(), or NULL with '*err' set
 * ("InvalidPermission.Duplicate", "InvalidGroup.NotFound" for the group or a referenced group
 * not in its VPC, "InvalidPermission.Malformed" for neither or both of 'cidr' and 'group_id',
 * "InvalidParameterValue" for a protocol or ports). Not retried. */
NUBO_API struct nubo_security_group *
nubo_security_group_rules_add(struct nubo_client *client, const char *id,
                              const struct nubo_sg_rule_spec *rules, size_t n_rules,
                              struct nubo_error *err);

/* Removes the 'n_rules' rules of 'rules' (named as for adding them) from the group 'id', all
 * or none. Returns the group as it now is, which the caller frees with
 * nubo_security_group_free(), or NULL with '*err' set ("InvalidPermission.NotFound" when one
 * does not exist). Not retried. */
NUBO_API struct nubo_security_group *
nubo_security_group_rules_remove(struct nubo_client *client, const char *id,
                                 const struct nubo_sg_rule_spec *rules, size_t n_rules,
                                 struct nubo_error *err);
NUBO_API void nubo_security_group_free(struct nubo_security_group *group);
NUBO_API void nubo_security_group_list_free(struct nubo_security_group_list *list);

/* --- a VPC's edge: elastic IPs and site-to-site VPN (network_edge.c) ------------------------- */

struct nubo_address {
    char *id; /* the allocation id, "eipalloc-" and 17 hex digits */
    char *public_ip;
    char *association_id;       /* NULL while it is not associated */
    char *instance_id;          /* the instance of its interface, NULL likewise */
    char *network_interface_id; /* NULL likewise */
    char *private_ip;           /* the interface's address, NULL likewise */
    struct nubo_tag *tags;
    size_t n_tags;
    char *json;
};

struct nubo_address_list {
    struct nubo_address *items;
    size_t n;
};

/* Allocates an elastic IP from the cloud's public pool, tagged 'tags' ('n_tags' of them; may be
 * NULL when 0). Returns it, which the caller frees with nubo_address_free(), or NULL with '*err'
 * set ("AddressLimitExceeded" when the pool is empty). Not retried. */
NUBO_API struct nubo_address *nubo_address_allocate(struct nubo_client *client,
                                                    const struct nubo_tag *tags, size_t n_tags,
                                                    struct nubo_error *err);

/* Returns the caller's addresses matching 'filters' ("public-ip", "instance-id",
 * "association-id", ...), by address, or NULL with '*err' set. The caller frees the list with
 * nubo_address_list_free(). */
NUBO_API struct nubo_address_list *nubo_addresses_list(struct nubo_client *client,
                                                       const struct nubo_filter *filters,
                                                       size_t n_filters, struct nubo_error *err);

/* Returns the address of allocation id 'id', or NULL with '*err' set
 * ("InvalidAllocationID.NotFound"). The caller frees it with nubo_address_free(). */
NUBO_API struct nubo_address *nubo_address_get(struct nubo_client *client, const char *id,
                                               struct nubo_error *err);

/* Associates the address 'id' with the interface of instance 'instance_id' or with interface
 * 'network_interface_id' (exactly one of them); an address associated elsewhere moves only
 * with 'allow_reassociation'. Returns the address as it now is (free it with
 * nubo_address_free()), or NULL with '*err' set ("Gateway.NotAttached" when the VPC has no
 * internet gateway, "Resource.AlreadyAssociated", "InvalidInstanceID.NotFound", ...). */
NUBO_API struct nubo_address *nubo_address_associate(struct nubo_client *client, const char *id,
                                                     const char *instance_id,
                                                     const char *network_interface_id,
                                                     bool allow_reassociation,
                                                     struct nubo_error *err);

/* Disassociates the address 'id' (nothing to do when it is not). Returns it as it now is, or
 * NULL with '*err' set. */
NUBO_API struct nubo_address *nubo_address_disassociate(struct nubo_client *client, const char *id,
                                                        struct nubo_error *err);

/* Releases the address 'id' back to the pool. Returns 0, or -1 with '*err' set
 * ("InvalidIPAddress.InUse" while it is associated). */
NUBO_API int nubo_address_release(struct nubo_client *client, const char *id,
                                  struct nubo_error *err);
NUBO_API void nubo_address_free(struct nubo_address *address);
NUBO_API void nubo_address_list_free(struct nubo_address_list *list);

struct nubo_vpn_gateway {
    char *id;     /* "vgw-" and 17 hex digits */
    char *type;   /* "ipsec.1" */
    char *state;  /* "available" */
    char *vpc_id; /* the VPC it is attached to, NULL when detached */
    long long amazon_side_asn;
    struct nubo_tag *tags;
    size_t n_tags;
    char *json;
};

struct nubo_vpn_gateway_list {
    struct nubo_vpn_gateway *items;
    size_t n;
};

/* Creates a detached VPN gateway with BGP ASN 'amazon_side_asn' (0: 64512). Returns it (free it
 * with nubo_vpn_gateway_free()), or NULL with '*err' set. Not retried. */
NUBO_API struct nubo_vpn_gateway *nubo_vpn_gateway_create(struct nubo_client *client,
                                                          long long amazon_side_asn,
                                                          const struct nubo_tag *tags,
                                                          size_t n_tags, struct nubo_error *err);
NUBO_API struct nubo_vpn_gateway_list *nubo_vpn_gateways_list(struct nubo_client *client,
                                                              const struct nubo_filter *filters,
                                                              size_t n_filters,
                                                              struct nubo_error *err);
NUBO_API struct nubo_vpn_gateway *nubo_vpn_gateway_get(struct nubo_client *client, const char *id,
                                                       struct nubo_error *err);
/* Attaches ('attach') the gateway 'id' to VPC 'vpc_id', or detaches it from it. Returns the
 * gateway as it now is, or NULL with '*err' set ("VpnGatewayAttachmentLimitExceeded",
 * "InvalidVpnGatewayAttachment.NotFound", ...). */
NUBO_API struct nubo_vpn_gateway *nubo_vpn_gateway_attach(struct nubo_client *client,
                                                          const char *id, const char *vpc_id,
                                                          bool attach, struct nubo_error *err);
/* Deletes the gateway 'id'. Returns 0, or -1 with '*err' set ("IncorrectState" while it is
 * attached or has connections). */
NUBO_API int nubo_vpn_gateway_delete(struct nubo_client *client, const char *id,
                                     struct nubo_error *err);
NUBO_API void nubo_vpn_gateway_free(struct nubo_vpn_gateway *gateway);
NUBO_API void nubo_vpn_gateway_list_free(struct nubo_vpn_gateway_list *list);

struct nubo_customer_gateway {
    char *id;         /* "cgw-" and 17 hex digits */
    char *type;       /* "ipsec.1" */
    char *state;      /* "available" */
    char *ip_address; /* the customer's device */
    long long bgp_asn;
    char *device_name; /* NULL when none */
    struct nubo_tag *tags;
    size_t n_tags;
    char *json;
};

struct nubo_customer_gateway_list {
    struct nubo_customer_gateway *items;
    size_t n;
};

/* Creates a customer gateway for the device at IPv4 'ip_address' with BGP ASN 'bgp_asn' (0:
 * 65000) named 'device_name' (may be NULL); an identical one answers the existing gateway.
 * Returns it (free it with nubo_customer_gateway_free()), or NULL with '*err' set. */
NUBO_API struct nubo_customer_gateway *
nubo_customer_gateway_create(struct nubo_client *client, const char *ip_address, long long bgp_asn,
                             const char *device_name, const struct nubo_tag *tags, size_t n_tags,
                             struct nubo_error *err);
NUBO_API struct nubo_customer_gateway_list *
nubo_customer_gateways_list(struct nubo_client *client, const struct nubo_filter *filters,
                            size_t n_filters, struct nubo_error *err);
NUBO_API struct nubo_customer_gateway *
nubo_customer_gateway_get(struct nubo_client *client, const char *id, struct nubo_error *err);
/* Deletes the gateway 'id'. Returns 0, or -1 with '*err' set ("IncorrectState" while
 * connections use it). */
NUBO_API int nubo_customer_gateway_delete(struct nubo_client *client, const char *id,
                                          struct nubo_error *err);
NUBO_API void nubo_customer_gateway_free(struct nubo_customer_gateway *gateway);
NUBO_API void nubo_customer_gateway_list_free(struct nubo_customer_gateway_list *list);

struct nubo_vpn_connection {
    char *id;    /* "vpn-" and 17 hex digits */
    char *state; /* pending, available, deleting, deleted */
    char *customer_gateway_id;
    char *vpn_gateway_id;
    char *outside_ip;     /* our end of the tunnel */
    char *customer_ip;    /* the customer gateway's address */
    char *pre_shared_key; /* the tunnel's key */
    char *vpc_cidr;       /* the VPN gateway's VPC's CIDR, NULL while it is detached */
    char **routes;        /* 'n_routes' static routes: the customer's networks */
    size_t n_routes;
    char *tunnel_status; /* "UP" or "DOWN" */
    char *configuration; /* the customer gateway configuration (XML), NULL once deleted */
    struct nubo_tag *tags;
    size_t n_tags;
    char *json;
};

struct nubo_vpn_connection_list {
    struct nubo_vpn_connection *items;
    size_t n;
};

/* Creates a VPN connection (one IPsec tunnel, static routes) between the customer gateway
 * 'customer_gateway_id' and the VPN gateway 'vpn_gateway_id'. Returns it (free it with
 * nubo_vpn_connection_free()), or NULL with '*err' set ("VpnConnectionLimitExceeded", ...).
 * Not retried. */
NUBO_API struct nubo_vpn_connection *
nubo_vpn_connection_create(struct nubo_client *client, const char *customer_gateway_id,
                           const char *vpn_gateway_id, const struct nubo_tag *tags, size_t n_tags,
                           struct nubo_error *err);
NUBO_API struct nubo_vpn_connection_list *
nubo_vpn_connections_list(struct nubo_client *client, const struct nubo_filter *filters,
                          size_t n_filters, struct nubo_error *err);
NUBO_API struct nubo_vpn_connection *
nubo_vpn_connection_get(struct nubo_client *client, const char *id, struct nubo_error *err);
/* Adds ('add') or removes the static route to 'destination' (a CIDR block of the customer's)
 * of connection 'id'. Returns the connection as it now is, or NULL with '*err' set
 * ("RouteAlreadyExists", "InvalidRoute.NotFound", ...). */
NUBO_API struct nubo_vpn_connection *nubo_vpn_connection_route(struct nubo_client *client,
                                                               const char *id,
                                                               const char *destination, bool add,
                                                               struct nubo_error *err);
/* Deletes connection 'id' (it stays visible, deleted, for an hour). Returns 0, or -1 with '*err'
 * set. */
NUBO_API int nubo_vpn_connection_delete(struct nubo_client *client, const char *id,
                                        struct nubo_error *err);
NUBO_API void nubo_vpn_connection_free(struct nubo_vpn_connection *connection);
NUBO_API void nubo_vpn_connection_list_free(struct nubo_vpn_connection_list *list);

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

/* Creates user 'name' with 'role' ("admin", "member", "reader"; NULL: member) in 'tenant_id'.
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

/* --- internet gateways, route tables and remote access (network_routing.c) ----------------- */

struct nubo_internet_gateway {
    char *id;     /* "igw-" and 17 hex digits */
    char *vpc_id; /* the VPC it is attached to, NULL when detached */
    struct nubo_tag *tags;
    size_t n_tags;
    char *json;
};

struct nubo_internet_gateway_list {
    struct nubo_internet_gateway *items;
    size_t n;
};

/* Creates a detached internet gateway tagged 'tags' ('n_tags'; may be NULL when 0). Returns it
 * (free it with nubo_internet_gateway_free()), or NULL with '*err' set. Not retried. */
NUBO_API struct nubo_internet_gateway *nubo_internet_gateway_create(struct nubo_client *client,
                                                                    const struct nubo_tag *tags,
                                                                    size_t n_tags,
                                                                    struct nubo_error *err);

/* Returns the caller's internet gateways matching 'filters' ("internet-gateway-id",
 * "attachment.vpc-id", "tag:KEY", ...), or NULL with '*err' set. The caller frees the list with
 * nubo_internet_gateway_list_free(). */
NUBO_API struct nubo_internet_gateway_list *
nubo_internet_gateways_list(struct nubo_client *client, const struct nubo_filter *filters,
                            size_t n_filters, struct nubo_error *err);

/* Returns the internet gateway 'id' (free it with nubo_internet_gateway_free()), or NULL with
 * '*err' set ("InvalidInternetGatewayID.NotFound"). */
NUBO_API struct nubo_internet_gateway *
nubo_internet_gateway_get(struct nubo_client *client, const char *id, struct nubo_error *err);

/* Attaches ('attach') the gateway 'id' to VPC 'vpc_id', or detaches it from it. Returns the
 * gateway as it now is (free it with nubo_internet_gateway_free()), or NULL with '*err' set
 * ("Resource.AlreadyAssociated", "Gateway.NotAttached", ...). Not retried. */
NUBO_API struct nubo_internet_gateway *nubo_internet_gateway_attach(struct nubo_client *client,
                                                                    const char *id,
                                                                    const char *vpc_id, bool attach,
                                                                    struct nubo_error *err);

/* Deletes the gateway 'id'. Returns 0, or -1 with '*err' set ("DependencyViolation" while it
 * is attached). */
NUBO_API int nubo_internet_gateway_delete(struct nubo_client *client, const char *id,
                                          struct nubo_error *err);
NUBO_API void nubo_internet_gateway_free(struct nubo_internet_gateway *gateway);
NUBO_API void nubo_internet_gateway_list_free(struct nubo_internet_gateway_list *list);

struct nubo_route {
    char *destination; /* a CIDR */
    char *gateway_id;  /* "local", "igw-...", "vgw-..." */
    char *state;       /* "active", "blackhole" */
    char *origin;      /* "CreateRouteTable", "CreateRoute" */
};

struct nubo_route_association {
    char *id;        /* "rtbassoc-" and 17 hex digits */
    char *subnet_id; /* NULL for the main association */
    bool main;
};

struct nubo_route_table {
    char *id; /* "rtb-" and 17 hex digits */
    char *vpc_id;
    bool main; /* the VPC's main route table */
    struct nubo_route *routes;
    size_t n_routes;
    struct nubo_route_association *associations;
    size_t n_associations;
    struct nubo_tag *tags;
    size_t n_tags;
    char *json;
};

struct nubo_route_table_list {
    struct nubo_route_table *items;
    size_t n;
};

/* A subnet's association with a route table, as nubo_route_table_associate() answers it. */
struct nubo_route_table_association {
    char *id; /* "rtbassoc-" and 17 hex digits */
    char *route_table_id;
    char *subnet_id;
    char *json;
};

/* Creates a route table in VPC 'vpc_id' (with its local route), tagged 'tags'. Returns it (free
 * it with nubo_route_table_free()), or NULL with '*err' set ("InvalidVpcID.NotFound"). Not
 * retried. */
NUBO_API struct nubo_route_table *nubo_route_table_create(struct nubo_client *client,
                                                          const char *vpc_id,
                                                          const struct nubo_tag *tags,
                                                          size_t n_tags, struct nubo_error *err);

/* Returns the caller's route tables matching 'filters' ("route-table-id", "vpc-id",
 * "association.subnet-id", "association.route-table-association-id", ...), or NULL with '*err'
 * set. The caller frees the list with nubo_route_table_list_free(). */
NUBO_API struct nubo_route_table_list *nubo_route_tables_list(struct nubo_client *client,
                                                              const struct nubo_filter *filters,
                                                              size_t n_filters,
                                                              struct nubo_error *err);

/* Returns the route table 'id' (free it with nubo_route_table_free()), or NULL with '*err' set
 * ("InvalidRouteTableID.NotFound"). */
NUBO_API struct nubo_route_table *nubo_route_table_get(struct nubo_client *client, const char *id,
                                                       struct nubo_error *err);

/* Deletes the route table 'id'. Returns 0, or -1 with '*err' set ("DependencyViolation" for
 * the main table or one with subnets associated). */
NUBO_API int nubo_route_table_delete(struct nubo_client *client, const char *id,
                                     struct nubo_error *err);

/* Adds ('add') to the table 'id' the route to 'destination' through 'gateway_id' (an internet
 * or VPN gateway attached to its VPC), or deletes the route to 'destination' ('gateway_id'
 * unused, may be NULL). Returns the table as it now is (free it with nubo_route_table_free()),
 * or NULL with '*err' set ("RouteAlreadyExists", "InvalidRoute.NotFound",
 * "InvalidGatewayID.NotFound", ...). Not retried. */
NUBO_API struct nubo_route_table *nubo_route_table_route(struct nubo_client *client, const char *id,
                                                         const char *destination,
                                                         const char *gateway_id, bool add,
                                                         struct nubo_error *err);

/* Associates subnet 'subnet_id' with the table 'id' (in place of the main table). Returns the
 * association (free it with nubo_route_table_association_free()), or NULL with '*err' set
 * ("Resource.AlreadyAssociated", "InvalidSubnetID.NotFound", ...). Not retried. */
NUBO_API struct nubo_route_table_association *nubo_route_table_associate(struct nubo_client *client,
                                                                         const char *id,
                                                                         const char *subnet_id,
                                                                         struct nubo_error *err);

/* Removes the association 'association_id' (its subnet goes back to the main table), finding
 * its route table first. Returns 0, or -1 with '*err' set ("InvalidAssociationID.NotFound"). */
NUBO_API int nubo_route_table_disassociate(struct nubo_client *client, const char *association_id,
                                           struct nubo_error *err);
NUBO_API void nubo_route_table_free(struct nubo_route_table *table);
NUBO_API void nubo_route_table_list_free(struct nubo_route_table_list *list);
NUBO_API void nubo_route_table_association_free(struct nubo_route_table_association *assoc);

/* A WireGuard remote access endpoint: clients ("peers") reach VPC 'vpc_id' through it. */
struct nubo_remote_access {
    char *id; /* "rae-" and 17 hex digits */
    char *vpc_id;
    char *vpc_cidr;
    char *client_cidr; /* the peers' addresses come from it */
    char *public_key;  /* the endpoint's WireGuard key */
    char *outside_ip;
    long long listen_port;
    char *state;
    char *host_id;     /* NULL until placed */
    char *description; /* may be "" */
    long long n_peers;
    char *json;
};

struct nubo_remote_access_list {
    struct nubo_remote_access *items;
    size_t n;
};

struct nubo_remote_access_peer {
    char *id;
    char *endpoint_id;
    char *name;
    char *public_key;
    char *address;       /* the peer's address in the client CIDR */
    char *client_config; /* a wg-quick configuration for the client (without its private key) */
    char *json;
};

struct nubo_remote_access_peer_list {
    struct nubo_remote_access_peer *items;
    size_t n;
};

/* Creates a remote access endpoint into VPC 'vpc_id' for clients in 'client_cidr', described
 * by 'description' (may be NULL). Returns it (free it with nubo_remote_access_free()), or NULL
 * with '*err' set ("InvalidVpcID.NotFound", "InvalidParameterValue", ...). Not retried. */
NUBO_API struct nubo_remote_access *
nubo_remote_access_create(struct nubo_client *client, const char *vpc_id, const char *client_cidr,
                          const char *description, struct nubo_error *err);

/* Returns the caller's remote access endpoints, or NULL with '*err' set. The caller frees the
 * list with nubo_remote_access_list_free(). */
NUBO_API struct nubo_remote_access_list *nubo_remote_accesses_list(struct nubo_client *client,
                                                                   struct nubo_error *err);

/* Returns the endpoint 'id' (free it with nubo_remote_access_free()), or NULL with '*err' set
 * (a "*.NotFound" code). */
NUBO_API struct nubo_remote_access *nubo_remote_access_get(struct nubo_client *client,
                                                           const char *id, struct nubo_error *err);

/* Deletes the endpoint 'id' and its peers. Returns 0, or -1 with '*err' set. */
NUBO_API int nubo_remote_access_delete(struct nubo_client *client, const char *id,
                                       struct nubo_error *err);

/* Adds a peer of WireGuard public key 'public_key' named 'name' (may be NULL) to endpoint
 * 'id'. Returns it with its client configuration (free it with
 * nubo_remote_access_peer_free()), or NULL with '*err' set. Not retried. */
NUBO_API struct nubo_remote_access_peer *
nubo_remote_access_peer_add(struct nubo_client *client, const char *id, const char *public_key,
                            const char *name, struct nubo_error *err);

/* Returns the peers of endpoint 'id', or NULL with '*err' set. The caller frees the list with
 * nubo_remote_access_peer_list_free(). */
NUBO_API struct nubo_remote_access_peer_list *
nubo_remote_access_peers_list(struct nubo_client *client, const char *id, struct nubo_error *err);

/* Deletes the peer 'peer_id' of endpoint 'id'. Returns 0, or -1 with '*err' set. */
NUBO_API int nubo_remote_access_peer_delete(struct nubo_client *client, const char *id,
                                            const char *peer_id, struct nubo_error *err);
NUBO_API void nubo_remote_access_free(struct nubo_remote_access *endpoint);
NUBO_API void nubo_remote_access_list_free(struct nubo_remote_access_list *list);
NUBO_API void nubo_remote_access_peer_free(struct nubo_remote_access_peer *peer);
NUBO_API void nubo_remote_access_peer_list_free(struct nubo_remote_access_peer_list *list);

#ifdef __cplusplus
}
#endif

#endif
