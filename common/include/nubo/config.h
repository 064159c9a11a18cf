/* Configuration: "key = value" files, overridden by environment, overridden by flags.
 *
 * A key "db.conninfo" is read, in order of precedence, from:
 *   1. a flag "--set db.conninfo=..." (nb_config_set);
 *   2. the environment variable NUBO_DB_CONNINFO (upper case, '.' and '-' become '_');
 *   3. the config file, lines "db.conninfo = ..." ('#' starts a comment);
 *   4. the default given by the caller.
 * Each program documents its keys in its --help and in docs/configuration.md. */
#ifndef NUBO_CONFIG_H
#define NUBO_CONFIG_H

#include <stdbool.h>

struct nb_config;
struct nb_error;

/* Returns a new, empty configuration; free it with nb_config_free(). Never NULL. */
struct nb_config *nb_config_new(void);
void nb_config_free(struct nb_config *cfg);

/* Reads 'path' into 'cfg'. Returns 0, or -1 with 'err' set (unreadable file, or a line that is
 * not "key = value", with its line number). */
int nb_config_load_file(struct nb_config *cfg, const char *path, struct nb_error *err);

/* Sets 'key' to 'value' at flag precedence. Both are copied. */
void nb_config_set(struct nb_config *cfg, const char *key, const char *value);

/* Parses "key=value" (as given to --set) into 'cfg'. Returns 0, or -1 with 'err' set. */
int nb_config_set_arg(struct nb_config *cfg, const char *arg, struct nb_error *err);

/* Returns the value of 'key' or 'def'. The string is owned by 'cfg' (or is 'def'). */
const char *nb_config_get(const struct nb_config *cfg, const char *key, const char *def);

/* Integer and boolean forms: return 0 and store the value (or 'def'), or -1 with 'err' set when
 * the value is present but not a valid integer in [min, max] / a boolean (true/false/yes/no/1/0). */
int nb_config_get_int(const struct nb_config *cfg, const char *key, long long def, long long min,
                      long long max, long long *out, struct nb_error *err);
int nb_config_get_bool(const struct nb_config *cfg, const char *key, bool def, bool *out,
                       struct nb_error *err);

#endif
