/* Fuzz target: configuration files. The input is written to an in-memory file and loaded; then
 * the typed getters read the keys a daemon reads. Nothing may crash or leak, whatever the lines. */
#include "nubo/config.h"
#include "nubo/error.h"

#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz-config", 0);
    if (fd < 0) {
        return 0;
    }
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    struct nb_config *cfg = nb_config_new();
    struct nb_error err = {0};
    if (nb_config_load_file(cfg, path, &err) == 0) {
        long long v;
        bool b;
        nb_config_get(cfg, "db.conninfo", NULL);
        nb_config_get_int(cfg, "http.port", 8773, 0, 65535, &v, &err);
        nb_config_get_bool(cfg, "db.migrate", true, &b, &err);
    }
    nb_config_set_arg(cfg, (const char *)"key=value", &err);
    nb_config_free(cfg);
    close(fd);
    return 0;
}
