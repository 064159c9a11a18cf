/* Configuration: file < environment < flags (see config.h). */
#include "nubo/config.h"

#include "nubo/error.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct config_entry {
    char *key;
    char *value;
    int from_flag; /* flags beat the environment; file entries do not */
};

struct nb_config {
    struct config_entry *entries;
    size_t n, cap;
};

struct nb_config *nb_config_new(void)
{
    struct nb_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        abort();
    }
    return cfg;
}

void nb_config_free(struct nb_config *cfg)
{
    if (!cfg) {
        return;
    }
    for (size_t i = 0; i < cfg->n; i++) {
        free(cfg->entries[i].key);
        free(cfg->entries[i].value);
    }
    free(cfg->entries);
    free(cfg);
}

static struct config_entry *find(const struct nb_config *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->n; i++) {
        if (!strcmp(cfg->entries[i].key, key)) {
            return &cfg->entries[i];
        }
    }
    return NULL;
}

static void put(struct nb_config *cfg, const char *key, const char *value, int from_flag)
{
    struct config_entry *e = find(cfg, key);
    if (e) {
        if (e->from_flag && !from_flag) {
            return; /* a flag already set it */
        }
        char *v = strdup(value);
        if (!v) {
            abort();
        }
        free(e->value);
        e->value = v;
        e->from_flag = from_flag;
        return;
    }
    if (cfg->n == cfg->cap) {
        cfg->cap = cfg->cap ? cfg->cap * 2 : 16;
        cfg->entries = realloc(cfg->entries, cfg->cap * sizeof *cfg->entries);
        if (!cfg->entries) {
            abort();
        }
    }
    e = &cfg->entries[cfg->n++];
    e->key = strdup(key);
    e->value = strdup(value);
    if (!e->key || !e->value) {
        abort();
    }
    e->from_flag = from_flag;
}

void nb_config_set(struct nb_config *cfg, const char *key, const char *value)
{
    put(cfg, key, value, 1);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) {
        s++;
    }
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) {
        s[--n] = '\0';
    }
    return s;
}

static int valid_key(const char *k)
{
    if (!*k) {
        return 0;
    }
    for (; *k; k++) {
        if (!isalnum((unsigned char)*k) && *k != '.' && *k != '_' && *k != '-') {
            return 0;
        }
    }
    return 1;
}

int nb_config_load_file(struct nb_config *cfg, const char *path, struct nb_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        nb_error_errno(err, errno, "could not open config file \"%s\"", path);
        return -1;
    }
    char line[4096];
    int lineno = 0;
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) {
            *hash = '\0';
        }
        char *s = trim(line);
        if (!*s) {
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            nb_error_set(err, NB_ERR_INVALID,
                         "config file \"%s\", line %d: expected \"key = value\"", path, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = trim(s);
        char *value = trim(eq + 1);
        if (!valid_key(key)) {
            nb_error_set(err, NB_ERR_INVALID, "config file \"%s\", line %d: invalid key \"%s\"",
                         path, lineno, key);
            rc = -1;
            break;
        }
        put(cfg, key, value, 0);
    }
    fclose(f);
    return rc;
}

int nb_config_set_arg(struct nb_config *cfg, const char *arg, struct nb_error *err)
{
    const char *eq = strchr(arg, '=');
    char key[128];
    if (!eq || (size_t)(eq - arg) >= sizeof key) {
        nb_error_set(err, NB_ERR_INVALID, "invalid setting \"%s\": expected key=value", arg);
        return -1;
    }
    memcpy(key, arg, (size_t)(eq - arg));
    key[eq - arg] = '\0';
    if (!valid_key(key)) {
        nb_error_set(err, NB_ERR_INVALID, "invalid setting \"%s\": bad key", arg);
        return -1;
    }
    nb_config_set(cfg, key, eq + 1);
    return 0;
}

/* NUBO_ + key in upper case with '.' and '-' as '_'. */
static void env_name(const char *key, char *out, size_t size)
{
    size_t n = (size_t)snprintf(out, size, "NUBO_");
    for (; *key && n + 1 < size; key++) {
        char c = *key;
        out[n++] = (c == '.' || c == '-') ? '_' : (char)toupper((unsigned char)c);
    }
    out[n] = '\0';
}

const char *nb_config_get(const struct nb_config *cfg, const char *key, const char *def)
{
    const struct config_entry *e = find(cfg, key);
    if (e && e->from_flag) {
        return e->value;
    }
    char name[160];
    env_name(key, name, sizeof name);
    const char *env = getenv(name);
    if (env) {
        return env;
    }
    return e ? e->value : def;
}

int nb_config_get_int(const struct nb_config *cfg, const char *key, long long def, long long min,
                      long long max, long long *out, struct nb_error *err)
{
    const char *v = nb_config_get(cfg, key, NULL);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < min || x > max) {
        nb_error_set(err, NB_ERR_INVALID,
                     "invalid value \"%s\" for setting \"%s\": expected an integer in [%lld, %lld]",
                     v, key, min, max);
        return -1;
    }
    *out = x;
    return 0;
}

int nb_config_get_bool(const struct nb_config *cfg, const char *key, bool def, bool *out,
                       struct nb_error *err)
{
    const char *v = nb_config_get(cfg, key, NULL);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcmp(v, "1") ||
        !strcasecmp(v, "on")) {
        *out = true;
    } else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcmp(v, "0") ||
               !strcasecmp(v, "off")) {
        *out = false;
    } else {
        nb_error_set(err, NB_ERR_INVALID,
                     "invalid value \"%s\" for setting \"%s\": expected true or false", v, key);
        return -1;
    }
    return 0;
}
