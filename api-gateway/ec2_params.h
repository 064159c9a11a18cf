/* EC2 Query API parameters: parsing a request's query string and form body into a parameter set,
 * and typed lookups that the actions use (strings, integers, booleans, "Name.N" lists, filters,
 * tag specifications, the common parameters), plus a redacted JSON copy for the request log.
 *
 * Wire rules, chosen to match what the AWS CLI and boto3 send:
 * - Query string and body are both "name=value&name=value" and their parameters are merged.
 *   Percent escapes are decoded in both; '+' means a space only in the form body (in a query
 *   string it is a literal '+', as RFC 3986 says). Empty segments ("a=1&&b=2") are skipped and a
 *   segment without '=' has the empty value.
 * - Decoded names and values must be valid UTF-8 without NUL bytes; a bad percent escape, a NUL,
 *   or invalid UTF-8 rejects the whole request with NB_ERR_INVALID.
 * - A name given twice (in the body, the query string, or across both) rejects the request with
 *   NB_ERR_INVALID naming it: EC2 has no use for repeated names, and accepting one of two
 *   conflicting values would hide a client bug.
 * - Names are case-sensitive.
 * - Lists are "Name.N" with N a decimal integer from 1 without leading zeros. N need not be
 *   contiguous (boto3 always sends 1..n, other clients leave gaps); items come back in order of N.
 *
 * Errors are NB_ERR_INVALID (the API layer answers InvalidParameterValue) or NB_ERR_MISSING
 * (MissingParameter); where EC2 has a more precise code, the error's 'reason' carries it
 * ("UnknownParameter", "MissingAction", "InvalidAction"). Messages quote names and values with
 * non-printable and non-ASCII bytes replaced by '?', so they are always safe to send back.
 *
 * Everything a parameter set holds (names, values, the arrays lookups return) lives in the arena
 * given to ec2_params_parse() and its lookups; nothing is freed separately. */
#ifndef NUBO_EC2_PARAMS_H
#define NUBO_EC2_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

struct json_t;
struct nb_arena;
struct nb_error;
struct ec2_params;

/* Bounds on one request. */
#define EC2_PARAMS_MAX_COUNT 10000      /* parameters, query string and body together */
#define EC2_PARAMS_MAX_BYTES (1 << 20)  /* raw bytes, query string and body together */
#define EC2_PARAMS_MAX_NAME  255        /* bytes of one decoded name */
#define EC2_PARAMS_MAX_INDEX 999999999u /* largest N in "Name.N" */
#define EC2_CLIENT_TOKEN_MAX 64         /* ClientToken: at most this many printable ASCII chars */
#define EC2_API_VERSION      "2016-11-15"

/* One parameter, decoded. */
struct ec2_params_entry {
    const char *name;
    const char *value;
};

/* A tag: "Tag.N.Key" / "Tag.N.Value". A tag without a Value has the value "". */
struct ec2_params_tag {
    const char *key;
    const char *value;
};

/* "Filter.N.Name" and its "Filter.N.Value.M", values in order of M. 'n_values' may be 0: whether
 * a filter without values is valid is the action's decision. */
struct ec2_params_filter {
    const char *name;
    const char **values;
    size_t n_values;
};

/* "TagSpecification.N.ResourceType" and its "TagSpecification.N.Tag.M.Key" / ".Value". */
struct ec2_params_tag_spec {
    const char *resource_type;
    struct ec2_params_tag *tags;
    size_t n_tags;
};

/* The parameters every action accepts. */
struct ec2_params_common {
    const char *action;       /* letters and digits, 1 to 64 of them */
    const char *version;      /* as sent, NULL when absent; any value is accepted and recorded */
    bool dry_run;             /* DryRun, false when absent */
    const char *client_token; /* ClientToken, NULL when absent */
};

/* Parses the raw query string 'query' ('query_len' bytes, without the '?'; may be NULL when
 * 'query_len' is 0) and the application/x-www-form-urlencoded body 'body' ('body_len' bytes; may
 * be NULL when 'body_len' is 0) into one parameter set. Neither input needs NUL termination.
 * Returns the set, allocated with everything it holds in 'arena' (the caller frees the arena, not
 * the set), or NULL with 'err' set: NB_ERR_INVALID for a malformed request (bad escape, NUL,
 * invalid UTF-8, empty or over-long name, duplicate name, more than EC2_PARAMS_MAX_COUNT
 * parameters or EC2_PARAMS_MAX_BYTES bytes). */
struct ec2_params *ec2_params_parse(struct nb_arena *arena, const char *query, size_t query_len,
                                    const char *body, size_t body_len, struct nb_error *err);

/* Returns the number of parameters in 'p'. */
size_t ec2_params_count(const struct ec2_params *p);

/* Returns parameter 'i' (0 <= 'i' < ec2_params_count()), in the order of the request: query
 * string first, then body. The entry is borrowed from the set. */
const struct ec2_params_entry *ec2_params_at(const struct ec2_params *p, size_t i);

/* Returns the value of parameter 'name', borrowed from the set, or NULL when it is absent. */
const char *ec2_params_get(const struct ec2_params *p, const char *name);

/* The typed getters below store the value into '*out' and return 1 when the parameter is present
 * and valid, 0 when it is absent and not 'required' ('*out' untouched), or -1 with 'err' set:
 * NB_ERR_MISSING naming the parameter when it is absent and 'required', NB_ERR_INVALID naming the
 * parameter and quoting the value when the value is not acceptable. */

/* '*out' is borrowed from the set. */
int ec2_params_get_string(const struct ec2_params *p, const char *name, bool required,
                          const char **out, struct nb_error *err);

/* Accepts an optional '-' and decimal digits, with a value from 'min' to 'max'. */
int ec2_params_get_int(const struct ec2_params *p, const char *name, bool required, long long min,
                       long long max, long long *out, struct nb_error *err);

/* Accepts "true" and "false", in any case. */
int ec2_params_get_bool(const struct ec2_params *p, const char *name, bool required, bool *out,
                        struct nb_error *err);

/* Collects the list "'prefix'.N" (e.g. prefix "InstanceId" for InstanceId.1, InstanceId.2, ...).
 * Stores into '*out' an array of '*n' values in order of N ('*out' is NULL when '*n' is 0); the
 * array is allocated in 'arena' and the strings are borrowed from the set. Returns 0, or -1 with
 * 'err' set (NB_ERR_INVALID) when a name "'prefix'.X" has an X that is not a valid index or has
 * anything after the index. The bare name 'prefix' is a different parameter and is ignored. */
int ec2_params_get_list(const struct ec2_params *p, struct nb_arena *arena, const char *prefix,
                        const char ***out, size_t *n, struct nb_error *err);

/* Collects "Filter.N.Name" / "Filter.N.Value.M" into '*out', an array of '*n' filters in order of
 * N, allocated in 'arena'. Returns 0, or -1 with 'err' set: NB_ERR_MISSING naming "Filter.N.Name"
 * for a filter without a name, NB_ERR_INVALID for a bad index or an unknown member such as
 * "Filter.1.Foo" (reason "UnknownParameter"). */
int ec2_params_get_filters(const struct ec2_params *p, struct nb_arena *arena,
                           struct ec2_params_filter **out, size_t *n, struct nb_error *err);

/* Collects the tags "'prefix'.N.Key" / "'prefix'.N.Value" (prefix "Tag" for CreateTags and
 * DeleteTags) into '*out', an array of '*n' tags in order of N, allocated in 'arena'. Returns 0,
 * or -1 with 'err' set: NB_ERR_MISSING naming "'prefix'.N.Key" for a tag without a key,
 * NB_ERR_INVALID for a bad index or an unknown member. */
int ec2_params_get_tags(const struct ec2_params *p, struct nb_arena *arena, const char *prefix,
                        struct ec2_params_tag **out, size_t *n, struct nb_error *err);

/* Collects "TagSpecification.N.ResourceType" and "TagSpecification.N.Tag.M.Key" / ".Value" into
 * '*out', an array of '*n' specifications in order of N, allocated in 'arena'. Returns 0, or -1
 * with 'err' set as ec2_params_get_tags() does, and NB_ERR_MISSING naming
 * "TagSpecification.N.ResourceType" when it is absent. */
int ec2_params_get_tag_specs(const struct ec2_params *p, struct nb_arena *arena,
                             struct ec2_params_tag_spec **out, size_t *n, struct nb_error *err);

/* Reads Action (required: NB_ERR_MISSING with reason "MissingAction"; letters and digits only,
 * else NB_ERR_INVALID with reason "InvalidAction"), Version, DryRun and ClientToken (printable
 * ASCII, at most EC2_CLIENT_TOKEN_MAX characters) into '*out'; strings are borrowed from the set.
 * Whether the action exists is the dispatcher's business. Returns 0, or -1 with 'err' set. */
int ec2_params_get_common(const struct ec2_params *p, struct ec2_params_common *out,
                          struct nb_error *err);

/* Reads the paging parameters: MaxResults, from 'min' to 'max', into '*max_results' ('dflt' when
 * absent), and NextToken into '*next_token' (borrowed; NULL when absent; its meaning is the
 * action's business). Returns 0, or -1 with 'err' set. */
int ec2_params_get_page(const struct ec2_params *p, long long min, long long max, long long dflt,
                        long long *max_results, const char **next_token, struct nb_error *err);

/* The redaction list for the request log: names whose values must never be written down.
 * NULL-terminated; pass it (or your own list) to ec2_params_to_json(). */
extern const char *const ec2_params_redact_default[];

/* Returns true when the value of parameter 'name' must be redacted: 'name' equals an entry of the
 * NULL-terminated list 'redact' (which may be NULL) or ends with "." and the entry (so that
 * "LaunchTemplateData.UserData" matches "UserData"), or it ends in "Password" or "Secret", or
 * contains "SecretAccessKey". All comparisons ignore case. */
bool ec2_params_redacted(const char *name, const char *const *redact);

/* Returns a JSON object mapping each parameter name of 'p' to its value, in request order, with
 * the value "(redacted)" where ec2_params_redacted('name', 'redact') holds. Returns a new
 * reference (the caller json_decref()s it). */
struct json_t *ec2_params_to_json(const struct ec2_params *p, const char *const *redact);

#endif
